/*
 * libFuzzer harness for a worker's whole receive path: worker_handle_gre on
 * the fixture's gatewayd (gw_fixture.h), so past the parsers that fuzz_gre
 * covers, through the real site lookup and keys, tunnel admission, health
 * and acceptance, keepalives, probes, policy, MTU, rate, MSS clamping,
 * endpoint learning and counting.
 *
 * Input: one byte of POP state (fixture_set_state: services, heartbeat,
 * acceptance mode, tunnels idle or not), then a packet as the raw GRE
 * socket delivers it (outer IPv4 header, GRE, inner packet). Checked: the
 * packet was counted as read and ended in exactly one counter.
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/gw_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct gw_worker w;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fixture_gw_init(&gw);
	fixture_worker_init(&gw, &w);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t ended, read = gw.shm.hdr->pop.lane[0].rx_packets;
	uint8_t *pkt;

	if (size < 1 || size > GW_BUF_SIZE + 1)
		return 0;
	/* A copy of the exact size: the worker rewrites packets in place. */
	pkt = malloc(size - 1 ? size - 1 : 1);
	memcpy(pkt, data + 1, size - 1);
	fixture_set_state(&w, data[0]);
	ended = fixture_endings(&gw);
	rcu_read_lock();
	worker_handle_gre(&w, pkt, size - 1);
	worker_flush_tx(&w);
	rcu_read_unlock();
	FIXTURE_CHECK(fixture_endings(&gw) == ended + 1);
	FIXTURE_CHECK(gw.shm.hdr->pop.lane[0].rx_packets == read + 1);
	free(pkt);
	return 0;
}
