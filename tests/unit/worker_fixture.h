/*
 * What the worker unit tests share (test_gatewayd_worker.c and
 * test_gatewayd_tso.c): a gatewayd loaded from a configuration the test
 * wrote, one worker whose tenant TUN is a SOCK_SEQPACKET pair (each write
 * is one packet, read back whole) and a raw GRE socket that catches what
 * the worker sends to the routers, in a network namespace of the test's
 * own. Included by one file per test program: everything here is static.
 */
#ifndef TESTS_UNIT_WORKER_FIXTURE_H
#define TESTS_UNIT_WORKER_FIXTURE_H

#include <CUnit/Basic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "lib/timeutil.h"

static struct gw gw;
static struct gw_worker *w;
static int tun_peer = -1;	/* what the worker writes to the TUN arrives here */
static int capture = -1;	/* GRE the worker sends to routers arrives here */

static void noop_changed(struct gw *g, const struct site_conf *a, const struct site_conf *b)
{
}

/*
 * Load DIR/grepop.conf, create the shared memory in DIR, publish SITES
 * (freed here) and start the one worker with its TUN pair and the capture
 * socket. Returns 0, or -1 with the reason on stderr when there is one.
 */
static int fixture_open(const char *dir, struct sites *sites)
{
	char path[256], err[CONF_ERR_MAX];
	int sv[2], size = 8 << 20;

	snprintf(path, sizeof(path), "%s/grepop.conf", dir);
	if (conf_load(&gw.conf, path, err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	gw.health_stale_ns = 3 * NSEC_PER_SEC;
	gw.n_workers = 1;
	snprintf(path, sizeof(path), "%s/state", dir);
	if (shm_open_or_create(&gw.shm, path, 16, 1) < 0)
		return -1;
	rcu_register_thread();
	if (sitetab_init(&gw) < 0 || local_addrs_refresh(&gw) < 0 ||
	    sitetab_apply(&gw, sites, noop_changed) < 0)
		return -1;
	sites_free(sites);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->tun_fd[0] = sv[0];
	tun_peer = sv[1];
	if (worker_setup(&gw, w, 0) < 0)
		return -1;
	/* Room for every segment of the largest packets the tests send. */
	capture = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_GRE);
	if (capture < 0 || setsockopt(capture, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		return -1;
	return 0;
}

/* Undo fixture_open and remove DIR. */
static int fixture_close(const char *dir)
{
	char cmd[128];

	sitetab_destroy(&gw);	/* first: the endpoints live in the worker's pool */
	local_addrs_free(&gw);
	worker_teardown(w);
	free(w);
	close(tun_peer);
	close(capture);
	shm_detach(&gw.shm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The next GRE packet sent to a router (outer IPv4 header first), or -1. */
static ssize_t sent_read(uint8_t *buf, size_t size)
{
	struct pollfd pfd = { .fd = capture, .events = POLLIN };

	if (poll(&pfd, 1, 200) <= 0)
		return -1;
	return recv(capture, buf, size, 0);
}

/* Site NAME's counter at OFFSET in lane 0. */
static uint64_t site_counter(const char *name, size_t offset)
{
	for (uint32_t s = 0; s < gw.shm.hdr->site_capacity; s++) {
		struct shm_site *slot = shm_site_at(&gw.shm, s);

		if (slot->in_use && strcmp(slot->id.name, name) == 0)
			return *(uint64_t *)((char *)&slot->lane[0] + offset);
	}
	CU_FAIL("no such site");
	return 0;
}

#define SITE(name, field) site_counter(name, offsetof(struct shm_site_lane, field))
#define SITE_DROP(name, reason) \
	site_counter(name, offsetof(struct shm_site_lane, drops) + 8 * (reason))
#define POP_DROP(reason) (gw.shm.hdr->pop.lane[0].drops[reason])

#endif
