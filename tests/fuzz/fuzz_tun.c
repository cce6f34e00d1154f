/*
 * libFuzzer harness for the return path: bytes as read from a tenant's TUN
 * go through worker_handle_tun on the fixture's gatewayd (gw_fixture.h):
 * inner parsing, the endpoint lookup, the site's state, MTU (with the
 * ICMP error written back to the TUN), MSS clamping and encapsulation.
 *
 * Before fuzzing, endpoints are learned as in production, from valid GRE
 * data packets through worker_handle_gre: 10.1.0.1 and 2001:db8:1::1 behind
 * a, 10.2.0.1 behind b (key 42), 10.3.0.1 behind d (same source, key 43),
 * 172.16.0.1 behind e (tenant corp) and 10.6.0.1 behind f, which a control
 * request then disables. Input: one byte whose low bit is the tenant, then
 * the packet. Checked: the packet ends in exactly one counter.
 */
#include <stdint.h>
#include <string.h>

#include "gatewayd/control.h"
#include "tests/fuzz/gw_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct gw_worker w;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char disable_f[] = "{\"command\":\"site.disable\",\"names\":[\"f\"]}";
	char *reply;

	fixture_gw_init(&gw);
	fixture_worker_init(&gw, &w);
	fixture_learn(&w, "198.18.0.2", false, 0, "10.1.0.1");
	fixture_learn(&w, "198.18.0.2", false, 0, "2001:db8:1::1");
	fixture_learn(&w, "198.18.0.3", true, 42, "10.2.0.1");
	fixture_learn(&w, "198.18.0.3", true, 43, "10.3.0.1");
	fixture_learn(&w, "198.18.0.5", false, 0, "172.16.0.1");
	fixture_learn(&w, "198.18.0.6", false, 0, "10.6.0.1");
	reply = control_handle(&gw, disable_f, strlen(disable_f));
	FIXTURE_CHECK(reply && strstr(reply, "\"ok\":true"));
	free(reply);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t ended;
	uint8_t *pkt;

	if (size < 1 || size > GW_BUF_SIZE + 1)
		return 0;
	/* A copy of the exact size: the MSS clamp rewrites it in place. */
	pkt = malloc(size - 1 ? size - 1 : 1);
	memcpy(pkt, data + 1, size - 1);
	worker_begin_batch(&w);
	ended = fixture_endings(&gw);
	rcu_read_lock();
	worker_handle_tun(&w, data[0] & 1, pkt, size - 1);
	worker_flush_tx(&w);
	rcu_read_unlock();
	FIXTURE_CHECK(fixture_endings(&gw) == ended + 1);
	free(pkt);
	return 0;
}
