/* The in-process gatewayd of the gateway harnesses; see gw_fixture.h. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/control.h"
#include "lib/timeutil.h"
#include "tests/fuzz/gw_fixture.h"

const char fixture_sites_csv[] =
	"name,source_ip,traffic_type,services,keepalive,enabled,tenant,key,http_ports,rate_mbps\n"
	"a,198.18.0.2,user,swg+cfw,yes,yes,default,,,\n"
	"b,198.18.0.3,user,swg,yes,yes,default,42,8443,\n"
	"c,198.18.0.4,iot,swg+cfw,no,no,default,,,\n"
	"d,198.18.0.3,machine,cfw,no,yes,default,43,,\n"
	"e,198.18.0.5,mixed,cfw,yes,yes,corp,,,1\n"
	"f,198.18.0.6,guest-wifi,cfw,yes,yes,default,,,\n";

static char dir[64];

static void die(const char *what, const char *why)
{
	fprintf(stderr, "gw_fixture: %s: %s\n", what, why);
	exit(1);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static void remove_dir(void)
{
	nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Whatever the user, no capability that could change the host's network. */
static void drop_net_caps(void)
{
	cap_value_t net[] = { CAP_NET_ADMIN, CAP_NET_RAW };
	cap_t caps = cap_get_proc();

	if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 2, net, CAP_CLEAR) < 0 ||
	    cap_set_flag(caps, CAP_PERMITTED, 2, net, CAP_CLEAR) < 0 || cap_set_proc(caps) < 0)
		die("capabilities", "cannot drop CAP_NET_ADMIN and CAP_NET_RAW");
	cap_free(caps);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die(path, "cannot write");
}

static void write_conf(const char *path)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "pop = { name = \"fz1\"; gateway_ip = \"%s\"; probe_ip = \"%s\"; };\n"
		 "runtime_dir = \"%s\";\nstate_dir = \"%s\";\nsites_file = \"%s/sites.csv\";\n"
		 "tenants = (\n"
		 "  { name = \"default\"; tun = \"fz0\"; routes = ( \"10.0.0.0/8\" ); },\n"
		 "  { name = \"corp\"; tun = \"fz1\"; table = 101;\n"
		 "    routes = ( \"172.16.0.0/12\" ); } );\n"
		 "gateway = { workers = 1; max_sites = 16; };\n",
		 FIXTURE_GATEWAY, FIXTURE_PROBE, dir, dir, dir);
	write_file(path, text);
}

void fixture_gw_init(struct gw *gw)
{
	char path[128], err[CONF_ERR_MAX];
	struct sites sites;

	drop_net_caps();
	snprintf(dir, sizeof(dir), "%s/grepop-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		die(dir, "cannot create");
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/grepop.conf", dir);
	write_conf(path);
	if (conf_load(&gw->conf, path, err) < 0)
		die("configuration", err);
	gw->n_workers = 1;
	gw->health_stale_ns = 3 * NSEC_PER_SEC;
	snprintf(path, sizeof(path), "%s/state", dir);
	if (shm_open_or_create(&gw->shm, path, 16, 1) < 0)
		die(path, "cannot create shared memory");
	rcu_register_thread();
	if (sitetab_init(gw) < 0)
		die("sitetab_init", "failed");
	if (sites_parse(&sites, "fixture.csv", fixture_sites_csv, strlen(fixture_sites_csv),
			&gw->conf, err) < 0 || gw_sites_replace(gw, &sites, true, err) < 0)
		die("sites", err);
	/* As gatewayd at start: packets to this host's addresses are loops. */
	if (local_addrs_refresh(gw) < 0)
		die("local_addrs_refresh", "cannot read this host's addresses");
}

void fixture_worker_init(struct gw *gw, struct gw_worker *w)
{
	w->gw = gw;
	w->index = 0;
	w->gre_fd = w->pk_fd = w->epoll_fd = -1;
	w->rx_buf = aligned_alloc(64, sizeof(*w->rx_buf) * GW_BATCH);
	w->tx_buf = aligned_alloc(64, sizeof(*w->tx_buf) * GW_BATCH);
	if (!w->rx_buf || !w->tx_buf || endpoint_pool_init(w) < 0 || site_cache_init(w) < 0 ||
	    endpoint_cache_init(w) < 0)
		die("worker", "out of memory");
	for (unsigned t = 0; t < gw->conf.n_tenants; t++) {
		w->tun_fd[t] = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (w->tun_fd[t] < 0)
			die("/dev/null", "cannot open");
	}
	w->tx_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->tx_fd < 0)
		die("worker", "cannot open an AF_UNIX socket");
}

void fixture_set_state(struct gw_worker *w, uint8_t state)
{
	struct gw *gw = w->gw;
	struct shm_pop *pop = &gw->shm.hdr->pop;
	uint64_t now = now_realtime_ns();

	pop->service[SHM_SVC_SWG].health = state & 1 ? SHM_HEALTH_UP : SHM_HEALTH_DOWN;
	pop->service[SHM_SVC_CFW].health = state & 2 ? SHM_HEALTH_UP : SHM_HEALTH_DOWN;
	pop->healthd_heartbeat_ns = state & 4 ? now - 10 * NSEC_PER_SEC : now;
	pop->accept_mode = (state >> 3 & 3) == 3 ? SHM_ACCEPT_ACCEPT : (state >> 3 & 3);
	for (uint32_t i = 0; i < gw->shm.hdr->site_capacity; i++)
		for (uint32_t l = 0; l < gw->shm.hdr->lanes; l++)
			shm_site_at(&gw->shm, i)->lane[l].last_seen_ns = state & 32 ? 0 : now;
	worker_begin_batch(w);
}

uint64_t fixture_endings(const struct gw *gw)
{
	const struct shm_header *hdr = gw->shm.hdr;
	uint64_t sum = 0;

	for (uint32_t l = 0; l < hdr->lanes; l++)
		for (int d = 0; d < SHM_DROP_COUNT; d++)
			sum += hdr->pop.lane[l].drops[d];
	for (uint32_t i = 0; i < hdr->site_capacity; i++) {
		const struct shm_site *s = shm_site_at(&gw->shm, i);

		for (uint32_t l = 0; l < hdr->lanes; l++) {
			const struct shm_site_lane *lane = &s->lane[l];

			sum += lane->rx_packets + lane->tx_packets + lane->keepalives +
			       lane->probes;
			for (int d = 0; d < SHM_DROP_SITE_COUNT; d++)
				sum += lane->drops[d];
		}
	}
	return sum;
}

/* An inner TCP SYN to port 443 from INNER to a documentation address. */
static size_t inner_syn(uint8_t *p, const char *inner)
{
	bool v6 = strchr(inner, ':') != NULL;
	size_t ip = v6 ? 40 : 20;
	uint8_t *tcp = p + ip;

	memset(p, 0, ip + 20);
	if (v6) {
		p[0] = 0x60;
		p[5] = 20;
		p[6] = IPPROTO_TCP;
		p[7] = 64;
		inet_pton(AF_INET6, inner, p + 8);
		inet_pton(AF_INET6, "2001:db8:ffff::1", p + 24);
	} else {
		uint16_t sum;

		p[0] = 0x45;
		p[3] = 40;
		p[8] = 64;
		p[9] = IPPROTO_TCP;
		inet_pton(AF_INET, inner, p + 12);
		inet_pton(AF_INET, "192.0.2.80", p + 16);
		sum = htons((uint16_t)~csum_fold(csum_partial(p, 20, 0)));
		memcpy(p + 10, &sum, 2);
	}
	tcp[0] = 0xc0;
	tcp[2] = 443 >> 8;
	tcp[3] = 443 & 0xff;
	tcp[12] = 5 << 4;
	tcp[13] = 0x02;
	tcp[14] = 0xff;
	return ip + 20;
}

void fixture_learn(struct gw_worker *w, const char *site_source, bool has_key, uint32_t key,
		   const char *inner)
{
	uint8_t pkt[128], in[64];
	struct in_addr src, dst;
	size_t n = inner_syn(in, inner), h;
	bool v6 = in[0] >> 4 == 6, found = false;

	inet_pton(AF_INET, site_source, &src);
	inet_pton(AF_INET, FIXTURE_GATEWAY, &dst);
	h = gre_build_header(pkt, src, dst, has_key, key,
			     v6 ? GRE_PROTO_IPV6 : GRE_PROTO_IPV4, n, 1);
	memcpy(pkt + h, in, n);
	fixture_set_state(w, 0x1b);
	rcu_read_lock();
	worker_handle_gre(w, pkt, h + n);
	for (unsigned t = 0; t < w->gw->conf.n_tenants; t++)
		found = found || endpoint_lookup(w->gw, t, v6 ? AF_INET6 : AF_INET,
						 in + (v6 ? 8 : 12)) != NULL;
	rcu_read_unlock();
	if (!found)
		die(inner, "not learned from a data packet");
}
