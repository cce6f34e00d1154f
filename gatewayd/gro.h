/*
 * Receive-side coalescing for the TUN devices: consecutive TCP segments
 * and same-sized UDP datagrams of one flow, decapsulated in one batch, go
 * to the kernel as one large packet with a virtio_net_hdr that asks it to
 * segment them again (GSO), so the kernel builds one skb per batch and flow
 * instead of one per packet.
 *
 * One table per worker, preallocated: no allocation, lock or log per
 * packet. Packets are copied into the table, so the caller's buffers may
 * be reused once gro_add returns; everything is written by gro_flush at
 * the end of the batch at the latest.
 */
#ifndef GATEWAYD_GRO_H
#define GATEWAYD_GRO_H

#include <stdint.h>

#include "gatewayd/packet.h"
#include "shm/shm.h"

#define GRO_FLOWS		16	/* flows open at once per worker */
#define GRO_MAX_SEGS		64	/* packets in one coalesced packet */
#define GRO_MAX_IP		65535	/* bytes of one coalesced IP packet */

struct gro_table;

/*
 * Allocate a table into *OUT (at worker setup, not on the data path).
 * Returns 0 or -ENOMEM.
 */
int gro_create(struct gro_table **out);

/* Free a table from gro_create (NULL is fine); write nothing still held. */
void gro_destroy(struct gro_table *t);

/*
 * Deliver the validated inner packet PKT (INFO from inner_parse, policy,
 * MTU and rate already passed, MSS clamped) to the TUN queue FD, which
 * carries a virtio_net_hdr before each packet. LANE is the site's lane of
 * the calling worker: on delivery the packet counts rx_packets, rx_bytes
 * and last_user_ns (NOW_NS) there; when the write fails, one
 * SHM_DROP_IO. The packet may be held until gro_flush; a packet that
 * cannot be coalesced is written at once, after any held packet of its
 * flow, so order within a flow is kept. Only the owning worker calls it.
 */
void gro_add(struct gro_table *t, int fd, struct shm_site_lane *lane, const uint8_t *pkt,
	     const struct inner_info *info, uint64_t now_ns);

/*
 * Write every held flow: one plain packet as it arrived, several as one
 * GSO packet. Call at the end of each batch, while the RCU read section
 * that covered gro_add is still held (LANE pointers stay valid).
 */
void gro_flush(struct gro_table *t);

/*
 * Packets the kernel's own GRO merged before gatewayd read them (a packet
 * ring with PACKET_VNET_HDR on a WAN interface with GRO on): one inner IP
 * packet carrying the payload of several segments of one TCP (or UDP) flow.
 */
struct gro_merged {
	uint16_t gso_size;	/* payload bytes of each segment, the last may be fewer */
	uint8_t gso_type;	/* VIRTIO_NET_HDR_GSO_TCPV4, _TCPV6 or _UDP_L4, maybe | _ECN */
	uint16_t hdr_len;	/* IP and TCP or UDP header bytes, in every segment */
	uint16_t segs;		/* how many segments */
};

/*
 * For INNER, LEN bytes of a GRE payload that the kernel merged from
 * segments of GSO_SIZE payload bytes of GSO_TYPE (as the virtio_net_hdr
 * says): the bytes of its IP and TCP or UDP headers, and in *SEGS how many
 * segments it holds. 0 (and *SEGS 1) when its headers are not ones the
 * kernel's GRO builds for that type.
 */
unsigned gro_merged_parse(const uint8_t *inner, size_t len, uint16_t gso_size, uint8_t gso_type,
			  unsigned *segs);

/*
 * Deliver the merged packet PKT (validated as for gro_add, M from
 * gro_merged_parse) to the TUN queue FD as one GSO write: its checksum
 * field made the pseudo-header sum the kernel finishes per segment. It
 * counts as M->segs packets of their wire sizes in LANE (or M->segs
 * SHM_DROP_IO). Whatever T (NULL when offload is off) holds for the flow is
 * written first.
 */
void gro_add_merged(struct gro_table *t, int fd, struct shm_site_lane *lane, uint8_t *pkt,
		    const struct inner_info *info, const struct gro_merged *m, uint64_t now_ns);

#endif
