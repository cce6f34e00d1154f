/*
 * A gatewayd inside a fuzz harness: the real tables, shared memory, control
 * code and worker, with nothing that reaches the kernel's network state.
 *
 * The configuration, sites file, acceptance file and shared memory live in
 * a temporary directory (on /dev/shm when it exists: the control requests
 * fsync), removed at exit. CAP_NET_ADMIN and CAP_NET_RAW are dropped first,
 * so nftables updates fail with EPERM (gatewayd warns and carries on, as
 * without the capability) even when the harness runs as root. The worker's
 * TUN queues are /dev/null and its send socket is an unconnected AF_UNIX
 * datagram socket: every send fails and is counted as an io drop.
 */
#ifndef TESTS_FUZZ_GW_FIXTURE_H
#define TESTS_FUZZ_GW_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "gatewayd/gateway.h"

/* A broken promise: abort, so that libFuzzer keeps the input. */
#define FIXTURE_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();					\
		}							\
	} while (0)

#define FIXTURE_GATEWAY		"198.18.0.11"
#define FIXTURE_PROBE		"100.64.255.1"

/*
 * The sites, all on tenant "default" but e (tenant "corp"):
 *   a 198.18.0.2  swg+cfw, no key        b 198.18.0.3  swg, key 42, 8443
 *   c 198.18.0.4  disabled               d 198.18.0.3  cfw, key 43
 *   e 198.18.0.5  cfw, rate 1 Mbit/s, tenant corp
 *   f 198.18.0.6  cfw
 */
extern const char fixture_sites_csv[];

/*
 * Load the configuration, create shared memory (16 slots, one lane), make
 * the tables and apply fixture_sites_csv through gw_sites_replace (so the
 * sites file is written). The calling thread is registered with RCU.
 * Exits the process on failure: a harness cannot run without it.
 */
void fixture_gw_init(struct gw *gw);

/* Worker 0 of GW with its pool and buffers, set up as described above. */
void fixture_worker_init(struct gw *gw, struct gw_worker *w);

/*
 * Set what the worker sees for the next batch from the bits of STATE:
 * bit 0 swg up, bit 1 cfw up, bit 2 healthd heartbeat stale, bits 3-4 the
 * acceptance mode (3 = accept), bit 5 every tunnel idle (else established
 * now). Then worker_begin_batch.
 */
void fixture_set_state(struct gw_worker *w, uint8_t state);

/*
 * The sum of the counters where a packet's handling ends: every drop (POP
 * and site), and the sites' delivered, encapsulated, keepalive and probe
 * counts. Each packet a worker handles adds exactly one.
 */
uint64_t fixture_endings(const struct gw *gw);

/* Learn inner address TEXT (IPv4 or IPv6) behind SITE_SOURCE, as data would. */
void fixture_learn(struct gw_worker *w, const char *site_source, bool has_key, uint32_t key,
		   const char *inner);

#endif
