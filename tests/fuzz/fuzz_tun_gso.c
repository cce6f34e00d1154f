/*
 * libFuzzer harness for large reads from TUN: a virtio_net_hdr and the
 * packet after it, as a queue with offloads hands them over, go through
 * worker_handle_tun_read on the fixture's gatewayd (gw_fixture.h) with
 * offloads on: the header's checks, checksum completion, segmentation and
 * each segment's encapsulation.
 *
 * Endpoints are learned as in fuzz_tun.c: 10.1.0.1 and 2001:db8:1::1 behind
 * a, 10.2.0.1 behind b (key 42). Input: one byte whose low bit is the
 * tenant, then the read. Checked: a read the checks refuse, or a plain
 * packet, ends in exactly one counter; a large packet in one per segment.
 */
#include <stdint.h>
#include <string.h>

#include "gatewayd/gso.h"
#include "gatewayd/tun.h"
#include "tests/fuzz/gw_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct gw_worker w;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fixture_gw_init(&gw);
	fixture_worker_init(&gw, &w);
	fixture_learn(&w, "198.18.0.2", false, 0, "10.1.0.1");
	fixture_learn(&w, "198.18.0.2", false, 0, "2001:db8:1::1");
	fixture_learn(&w, "198.18.0.3", true, 42, "10.2.0.1");
	/* Only now: the receive path, which learns, has no offload state here. */
	w.offload = true;
	return 0;
}

/* How many counters the read must end in: one per segment of a large packet. */
static uint64_t expected_endings(const uint8_t *read, size_t len)
{
	struct virtio_net_hdr vh;
	struct inner_info info;
	struct gso_packet gp;
	uint8_t *copy;
	uint64_t n = 1;

	if (len <= TUN_VNET_HDR_LEN)
		return 1;
	memcpy(&vh, read, sizeof(vh));
	copy = malloc(len - TUN_VNET_HDR_LEN);
	memcpy(copy, read + TUN_VNET_HDR_LEN, len - TUN_VNET_HDR_LEN);
	if (gso_prepare(&vh, copy, len - TUN_VNET_HDR_LEN, &info, &gp) == 0 && gp.segments)
		n = gp.segments;
	free(copy);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t ended, want;
	uint8_t *read;

	if (size < 1 || size > GW_TUN_READ_MAX + 1)
		return 0;
	/* A copy of the exact size: checksums are completed in place. */
	read = malloc(size - 1 ? size - 1 : 1);
	memcpy(read, data + 1, size - 1);
	want = expected_endings(read, size - 1);
	worker_begin_batch(&w);
	ended = fixture_endings(&gw);
	rcu_read_lock();
	worker_handle_tun_read(&w, data[0] & 1, read, size - 1);
	worker_flush_tx(&w);
	rcu_read_unlock();
	FIXTURE_CHECK(fixture_endings(&gw) == ended + want);
	free(read);
	return 0;
}
