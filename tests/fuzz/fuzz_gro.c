/*
 * libFuzzer harness for receive-side coalescing (gatewayd/gro.c): a run of
 * inner packets, each validated by inner_parse as the worker does, goes
 * through gro_add for one of two sites, then gro_flush; what was written
 * comes back from a SOCK_SEQPACKET pair.
 *
 * Input: records of one byte (bit 0: the second site; bit 1: gro_flush
 * before this packet), two bytes of length (big-endian) and the packet.
 * Checked: every packet that passed inner_parse is counted once (delivered
 * or an io drop); every plain write is a packet inner_parse accepts; every
 * GSO write is one IP packet of at most 65535 bytes and 64 segments whose
 * lengths are right, whose header the kernel would accept, and whose
 * checksum, completed from the partial one as the kernel does, verifies.
 */
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/gro.h"
#include "gatewayd/packet.h"
#include "gatewayd/tun.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gro_table *gro;
static struct shm_site_lane lanes[2];
static int out_fd = -1, in_fd = -1;
static uint8_t raw[TUN_VNET_HDR_LEN + GRO_MAX_IP + 64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2], size = 16 << 20;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0 || gro_create(&gro) < 0)
		abort();
	out_fd = sv[0];
	in_fd = sv[1];
	if (setsockopt(out_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(out_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return 0;
}

static int family_of(const uint8_t *pkt, size_t len)
{
	return len > 0 && (pkt[0] >> 4) == 6 ? AF_INET6 : AF_INET;
}

/* A GSO write: one IP packet the kernel can cut into what was coalesced. */
static void check_gso(const struct virtio_net_hdr *vh, uint8_t *pkt, size_t len)
{
	struct inner_info info;
	size_t start = vh->csum_start, field = start + vh->csum_offset, segs;
	uint32_t pseudo;
	uint16_t c;

	CHECK(inner_parse(pkt, len, family_of(pkt, len), &info) == 0);
	CHECK(info.ip_len == len && len <= GRO_MAX_IP);
	CHECK(vh->flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && vh->gso_size > 0);
	CHECK(info.l4 == pkt + start && vh->hdr_len < len);
	CHECK(len - vh->hdr_len > vh->gso_size);
	segs = (len - vh->hdr_len + vh->gso_size - 1) / vh->gso_size;
	CHECK(segs >= 2 && segs <= GRO_MAX_SEGS);
	if (info.proto == IPPROTO_UDP) {
		CHECK(vh->csum_offset == 6 && vh->hdr_len == start + 8);
	} else {
		CHECK(info.proto == IPPROTO_TCP && vh->csum_offset == 16 &&
		      vh->hdr_len == start + (size_t)(info.l4[12] >> 4) * 4);
	}
	/* Complete the checksum as the kernel does, then verify it whole. */
	c = (uint16_t)~csum_fold(csum_partial(pkt + start, len - start, 0));
	pkt[field] = (uint8_t)(c >> 8);
	pkt[field + 1] = (uint8_t)c;
	pseudo = info.family == AF_INET ? csum_partial(pkt + 12, 8, 0) :
		 csum_partial(pkt + 8, 32, 0);
	pseudo += info.proto + (uint32_t)(len - start);
	CHECK(csum_partial(pkt + start, len - start, pseudo) == 0xffff);
}

/* Read back every write; returns the packets they carried. */
static unsigned drain(void)
{
	unsigned n = 0;
	ssize_t r;

	while ((r = recv(in_fd, raw, sizeof(raw), MSG_DONTWAIT)) >= 0) {
		struct virtio_net_hdr vh;
		struct inner_info info;
		uint8_t *pkt = raw + TUN_VNET_HDR_LEN;
		size_t len = (size_t)r - TUN_VNET_HDR_LEN;

		CHECK(r >= (ssize_t)TUN_VNET_HDR_LEN);
		memcpy(&vh, raw, sizeof(vh));
		if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
			CHECK(vh.flags == 0);
			CHECK(inner_parse(pkt, len, family_of(pkt, len), &info) == 0);
			n++;
			continue;
		}
		check_gso(&vh, pkt, len);
		n += (unsigned)((len - vh.hdr_len + vh.gso_size - 1) / vh.gso_size);
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[GRO_MAX_IP];
	unsigned added = 0, written = 0;
	size_t off = 0;

	memset(lanes, 0, sizeof(lanes));
	while (size - off >= 3) {
		uint8_t flags = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		struct inner_info info;

		off += 3;
		len = len < size - off ? len : size - off;
		memcpy(pkt, data + off, len);
		off += len;
		if (flags & 2) {
			gro_flush(gro);
			written += drain();
		}
		if (inner_parse(pkt, len, family_of(pkt, len), &info))
			continue;
		gro_add(gro, out_fd, &lanes[flags & 1], pkt, &info, 1);
		added++;
		/* The caller's buffer is reused at once: gro keeps copies. */
		memset(pkt, 0xa5, len);
	}
	gro_flush(gro);
	written += drain();
	CHECK(lanes[0].drops[SHM_DROP_IO] + lanes[1].drops[SHM_DROP_IO] == 0);
	CHECK(lanes[0].rx_packets + lanes[1].rx_packets == added);
	CHECK(written == added);
	return 0;
}
