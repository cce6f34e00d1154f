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

#endif
