/*
 * Segmentation of what a TUN queue with offloads hands us: one large TCP or
 * UDP packet (up to 64 KiB) that the kernel left for the "hardware" to cut
 * into segments of gso_size, or a packet whose transport checksum holds only
 * the pseudo-header sum. The routers at the far end of a tunnel expect
 * ordinary packets, so the gateway does here what a NIC would.
 *
 * Pure functions on caller-owned buffers, like packet.h: no I/O, no
 * allocation, no logging. A segment is its headers (built into a small
 * caller buffer) plus a slice of the large packet's payload (never copied),
 * so a sender can point an iovec at each part.
 */
#ifndef GATEWAYD_GSO_H
#define GATEWAYD_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_net.h>

#include "gatewayd/packet.h"

/* Newer than Debian 12's kernel headers; the values are the kernel's ABI. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4	5
#endif

#define GSO_HDR_MAX		192	/* IP with options or extensions + TCP with options */
#define GSO_SEGMENTS_MAX	1024	/* TCP's smallest MSS (88) cuts 64 KiB into 745 */

/* A large packet checked and ready to be cut. Pointers are into the caller's buffer. */
struct gso_packet {
	const uint8_t *pkt;
	size_t hdr_len;			/* IP header, extensions and L4 header */
	size_t l4_off;
	size_t payload_len;		/* everything after hdr_len, up to the IP length */
	uint16_t seg_size;		/* payload bytes per segment, the last may be less */
	unsigned segments;		/* 0: not a GSO packet, handle it as it is */
	int family;			/* AF_INET or AF_INET6 */
	uint8_t proto;			/* IPPROTO_TCP or IPPROTO_UDP */
};

/*
 * Check the virtio_net_hdr VH that came with the IP packet PKT of LEN bytes
 * (read from a TUN queue, header stripped) and parse PKT into INFO. A packet
 * that needs its checksum completed (F_NEEDS_CSUM, no GSO) gets it now, in
 * place. A GSO packet fills GP (GP->segments > 0) and is left as it is: its
 * segments are built by gso_build_segment. Any per-packet worker may call
 * it. Returns 0, or -EINVAL for anything inconsistent: an IP packet that
 * does not parse, csum_start or hdr_len beyond the packet, a GSO type that
 * does not match the packet or is unknown, gso_size 0, headers longer than
 * GSO_HDR_MAX, more than GSO_SEGMENTS_MAX segments.
 */
int gso_prepare(const struct virtio_net_hdr *vh, uint8_t *pkt, size_t len,
		struct inner_info *info, struct gso_packet *gp);

/* Bytes of payload in segment K (0 <= K < GP->segments). */
static inline size_t gso_payload_len(const struct gso_packet *gp, unsigned k)
{
	size_t off = (size_t)k * gp->seg_size;
	size_t left = gp->payload_len - off;

	return left < gp->seg_size ? left : gp->seg_size;
}

/* Bytes of segment K as an IP packet: its headers and its payload. */
static inline size_t gso_segment_len(const struct gso_packet *gp, unsigned k)
{
	return gp->hdr_len + gso_payload_len(gp, k);
}

/*
 * Write the headers of segment K of GP into HDR (GP->hdr_len bytes, at most
 * GSO_HDR_MAX): IPv4 total length, identification + K and header checksum,
 * or IPv6 payload length; TCP sequence number advanced by K segments, CWR
 * only on the first, FIN and PSH only on the last, or the UDP length; the
 * full transport checksum over these headers and the payload, which starts
 * at *PAYLOAD (inside GP->pkt) and is gso_payload_len(GP, K) bytes long.
 * Returns GP->hdr_len.
 */
size_t gso_build_segment(const struct gso_packet *gp, unsigned k, uint8_t *hdr,
			 const uint8_t **payload);

#endif
