/*
 * libFuzzer harness for GRE packets the kernel's GRO merged, as a packet
 * ring with PACKET_VNET_HDR hands them to a worker: worker_handle_gre_merged
 * on the fixture's gatewayd (gw_fixture.h), through gro_merged_parse, the
 * per-segment MTU and rate checks and gro_add_merged.
 *
 * Input: one byte of POP state (fixture_set_state), one byte choosing the
 * GSO type the ring reports (low two bits: none, TCPv4, TCPv6, UDP; the top
 * bit adds ECN), two bytes of segment size (little-endian, as in a
 * virtio_net_hdr), then the packet (outer IPv4, GRE, inner). Checked: the
 * packet counts as read as often as it ended in a counter, at least once,
 * and at most as many times as segments of one byte could fill it.
 */
#include <linux/virtio_net.h>
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
	static const uint8_t types[4] = { VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
					  VIRTIO_NET_HDR_GSO_TCPV6, 5 /* UDP_L4 */ };
	uint64_t ended, read = gw.shm.hdr->pop.lane[0].rx_packets;
	uint8_t type;
	uint16_t gso_size;
	uint8_t *pkt;
	size_t len;

	if (size < 4 || size > 65535 + 4)
		return 0;
	type = (uint8_t)(types[data[1] & 3] | (data[1] & 0x80 ? VIRTIO_NET_HDR_GSO_ECN : 0));
	gso_size = (uint16_t)(data[2] | data[3] << 8);
	len = size - 4;
	/* A copy of the exact size: the worker rewrites packets in place. */
	pkt = malloc(len ? len : 1);
	memcpy(pkt, data + 4, len);
	fixture_set_state(&w, data[0]);
	ended = fixture_endings(&gw);
	rcu_read_lock();
	worker_handle_gre_merged(&w, pkt, len, gso_size, type);
	worker_flush_tx(&w);
	rcu_read_unlock();
	read = gw.shm.hdr->pop.lane[0].rx_packets - read;
	FIXTURE_CHECK(read >= 1 && read <= (len > 1 ? len : 1));
	FIXTURE_CHECK(fixture_endings(&gw) == ended + read);
	free(pkt);
	return 0;
}
