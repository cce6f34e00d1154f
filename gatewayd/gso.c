/*
 * Cutting large TCP and UDP packets into segments, as a NIC does for TSO and
 * USO, and completing partial checksums.
 *
 * What the kernel promises with each packet read from a queue with offloads
 * is in its virtio_net_hdr, and none of it is trusted: the IP packet is
 * parsed again, the GSO type must match what it holds, and every offset is
 * checked against the length read. hdr_len is only a hint (the kernel
 * reports its linear part there), so the headers' length is taken from the
 * packet itself.
 *
 * Per segment, what changes from the large packet: the IP length (and the
 * IPv4 ID, +1 per segment, and header checksum), the TCP sequence number and
 * the flags that belong to one end (CWR to the first segment, FIN and PSH to
 * the last) or the UDP length, and the transport checksum, computed whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <endian.h>

#include "gatewayd/gso.h"

#define IPV4_HDR_MIN	20
#define IPV6_HDR_LEN	40
#define IPV4_FRAG_BITS	0x3fff	/* MF and the fragment offset */
#define UDP_HDR_LEN	8
#define TCP_FLAG_FIN	0x01
#define TCP_FLAG_PSH	0x08
#define TCP_FLAG_CWR	0x80
#define TCP_CSUM_OFF	16
#define UDP_CSUM_OFF	6

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* The pseudo-header sum of a transport header and payload of L4_LEN bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, int family, uint8_t proto, size_t l4_len)
{
	if (family == AF_INET)
		return csum_partial(ip + 12, 8, (uint32_t)l4_len + proto);
	return csum_partial(ip + 8, 32, (uint32_t)l4_len + proto);
}

/* The checksum to store: UDP sends a computed 0 as 0xffff, 0 meaning none. */
static inline uint16_t csum_final(uint32_t sum, uint8_t proto)
{
	uint16_t c = (uint16_t)~csum_fold(sum);

	return c == 0 && proto == IPPROTO_UDP ? 0xffff : c;
}

/*
 * F_NEEDS_CSUM without GSO: the field at csum_start + csum_offset holds the
 * pseudo-header sum; summing from csum_start over the rest completes it.
 */
static int csum_complete(const struct virtio_net_hdr *vh, uint8_t *pkt,
			 const struct inner_info *info)
{
	size_t start = le16toh(vh->csum_start), field = start + le16toh(vh->csum_offset);

	if (start >= info->ip_len || field + 2 > info->ip_len || field < start)
		return -EINVAL;
	put16(pkt + field, csum_final(csum_partial(pkt + start, info->ip_len - start, 0),
				      info->proto));
	return 0;
}

/* Whether the GSO type VH asks for is what the packet holds. */
static bool gso_type_matches(uint8_t gso_type, const struct inner_info *info)
{
	switch (gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return info->family == AF_INET && info->proto == IPPROTO_TCP;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return info->family == AF_INET6 && info->proto == IPPROTO_TCP;
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		return (gso_type & VIRTIO_NET_HDR_GSO_ECN) == 0 && info->proto == IPPROTO_UDP;
	default:
		return false;
	}
}

/* The large packet's layout, from the packet itself. */
static int gso_layout(const uint8_t *pkt, const struct inner_info *info, uint16_t seg_size,
		      struct gso_packet *gp)
{
	size_t l4_hdr;

	if (!info->l4 || seg_size == 0)
		return -EINVAL;
	if (info->family == AF_INET && (get16(pkt + 6) & IPV4_FRAG_BITS))
		return -EINVAL;
	l4_hdr = info->proto == IPPROTO_TCP ? (size_t)(info->l4[12] >> 4) * 4 : UDP_HDR_LEN;
	gp->pkt = pkt;
	gp->l4_off = (size_t)(info->l4 - pkt);
	gp->hdr_len = gp->l4_off + l4_hdr;
	if (gp->hdr_len > GSO_HDR_MAX || gp->hdr_len >= info->ip_len)
		return -EINVAL;
	gp->payload_len = info->ip_len - gp->hdr_len;
	gp->seg_size = seg_size;
	gp->segments = (unsigned)((gp->payload_len + seg_size - 1) / seg_size);
	gp->family = info->family;
	gp->proto = info->proto;
	return gp->segments > GSO_SEGMENTS_MAX ? -EINVAL : 0;
}

int gso_prepare(const struct virtio_net_hdr *vh, uint8_t *pkt, size_t len,
		struct inner_info *info, struct gso_packet *gp)
{
	int family = len > 0 && (pkt[0] >> 4) == 6 ? AF_INET6 : AF_INET;

	gp->segments = 0;
	if (inner_parse(pkt, len, family, info) || le16toh(vh->hdr_len) > len)
		return -EINVAL;
	if (vh->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? csum_complete(vh, pkt, info) : 0;
	if (!gso_type_matches(vh->gso_type, info))
		return -EINVAL;
	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (size_t)le16toh(vh->csum_start) + le16toh(vh->csum_offset) + 2 > len)
		return -EINVAL;
	return gso_layout(pkt, info, le16toh(vh->gso_size), gp);
}

static void ip_header_fix(const struct gso_packet *gp, unsigned k, uint8_t *hdr, size_t seg_len)
{
	size_t ihl;

	if (gp->family == AF_INET6) {
		put16(hdr + 4, (uint16_t)(seg_len - IPV6_HDR_LEN));
		return;
	}
	ihl = (size_t)(hdr[0] & 0x0f) * 4;
	put16(hdr + 2, (uint16_t)seg_len);
	put16(hdr + 4, (uint16_t)(get16(gp->pkt + 4) + k));
	put16(hdr + 10, 0);
	put16(hdr + 10, (uint16_t)~csum_fold(csum_partial(hdr, ihl, 0)));
}

size_t gso_build_segment(const struct gso_packet *gp, unsigned k, uint8_t *hdr,
			 const uint8_t **payload)
{
	size_t pay_len = gso_payload_len(gp, k), l4_len = gp->hdr_len - gp->l4_off + pay_len;
	uint8_t *l4 = hdr + gp->l4_off;
	uint32_t sum;

	memcpy(hdr, gp->pkt, gp->hdr_len);
	*payload = gp->pkt + gp->hdr_len + (size_t)k * gp->seg_size;
	ip_header_fix(gp, k, hdr, gp->hdr_len + pay_len);
	if (gp->proto == IPPROTO_TCP) {
		put32(l4 + 4, get32(l4 + 4) + (uint32_t)(k * gp->seg_size));
		if (k > 0)
			l4[13] &= (uint8_t)~TCP_FLAG_CWR;
		if (k + 1 < gp->segments)
			l4[13] &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
		put16(l4 + TCP_CSUM_OFF, 0);
	} else {
		put16(l4 + 4, (uint16_t)l4_len);
		put16(l4 + UDP_CSUM_OFF, 0);
	}
	/* The transport header is an even number of bytes: the sums chain. */
	sum = pseudo_sum(hdr, gp->family, gp->proto, l4_len);
	sum = csum_partial(l4, gp->hdr_len - gp->l4_off, sum);
	sum = csum_partial(*payload, pay_len, sum);
	put16(l4 + (gp->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF),
	      csum_final(sum, gp->proto));
	return gp->hdr_len;
}
