/*
 * Loads and attaches the XDP program of gateway.io = "xdp" (see xdp.h) with
 * libbpf. The program is built into gatewayd (gatewayd/bpf/embed.S); only
 * main.c calls this file, so the tests and fuzzers that link the workers do
 * not need the object.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "gatewayd/gateway.h"
#include "gatewayd/xdp.h"

/* The object file, between these two symbols. */
extern const char gw_xdp_object[], gw_xdp_object_end[];

/* The program's socket map has this many entries: one per queue. */
#define XDP_MAX_QUEUES	64u

/* How many receive queues IFNAME has (rx-N in sysfs), or -errno. */
static int count_rx_queues(const char *ifname)
{
	char path[64 + IF_NAMESIZE];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((e = readdir(dir)))
		n += strncmp(e->d_name, "rx-", 3) == 0;
	closedir(dir);
	return n;
}

int gw_xdp_load(struct gw *gw, char *err, size_t len)
{
	const char *ifname = gw->conf.wan_interface;
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "grepop");
	struct bpf_map *addr_map, *xsks_map;
	uint32_t zero = 0, addr = gw->conf.gateway_ip.s_addr;
	int queues, r;

	gw->xsks_fd = -1;
	queues = count_rx_queues(ifname);
	if (queues < 0) {
		snprintf(err, len, "gateway.io = \"xdp\": no interface %s (pop.wan_interface): %s",
			 ifname, strerror(-queues));
		return -1;
	}
	if ((unsigned)queues > gw->n_workers || (unsigned)queues > XDP_MAX_QUEUES) {
		snprintf(err, len, "gateway.io = \"xdp\": %s has %d receive queues and gatewayd %u "
			 "workers, so GRE on the queues no worker reads would be lost: set "
			 "gateway.workers to %d (at most 8), or 'ethtool -L %s combined %u'",
			 ifname, queues, gw->n_workers, queues, ifname, gw->n_workers);
		return -1;
	}
	gw->wan_queues = (unsigned)queues;
	gw->xdp_obj = bpf_object__open_mem(gw_xdp_object,
					   (size_t)(gw_xdp_object_end - gw_xdp_object), &opts);
	if (!gw->xdp_obj) {
		r = -errno;
		goto fail;
	}
	r = bpf_object__load(gw->xdp_obj);
	if (r < 0)
		goto fail;
	addr_map = bpf_object__find_map_by_name(gw->xdp_obj, "grepop_addr");
	xsks_map = bpf_object__find_map_by_name(gw->xdp_obj, "grepop_xsks");
	if (!addr_map || !xsks_map) {
		r = -ENOENT;
		goto fail;
	}
	r = bpf_map_update_elem(bpf_map__fd(addr_map), &zero, &addr, BPF_ANY);
	if (r < 0)
		goto fail;
	gw->xsks_fd = bpf_map__fd(xsks_map);
	return 0;
fail:
	snprintf(err, len, "gateway.io = \"xdp\": cannot load the XDP program (it needs "
		 "CAP_BPF and CAP_NET_ADMIN, or root): %s", strerror(-r));
	bpf_object__close(gw->xdp_obj);
	gw->xdp_obj = NULL;
	return -1;
}

int gw_xdp_attach(struct gw *gw, char *err, size_t len)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(gw->xdp_obj, "grepop_gre");
	int ifindex = (int)if_nametoindex(gw->conf.wan_interface);

	/* A link: the driver's own XDP if it has it, else the kernel's generic one. */
	gw->xdp_link = prog && ifindex ? bpf_program__attach_xdp(prog, ifindex) : NULL;
	if (!gw->xdp_link) {
		snprintf(err, len, "gateway.io = \"xdp\": cannot attach the XDP program to %s "
			 "(another program there?): %s", gw->conf.wan_interface,
			 strerror(ifindex ? errno : ENODEV));
		return -1;
	}
	return 0;
}

void gw_xdp_close(struct gw *gw)
{
	bpf_link__destroy(gw->xdp_link);
	gw->xdp_link = NULL;
	bpf_object__close(gw->xdp_obj);
	gw->xdp_obj = NULL;
	gw->xsks_fd = -1;
}
