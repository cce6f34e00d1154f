/*
 * Receive-side coalescing (see gro.h).
 *
 * A flow is one tenant's TUN queue, one site's lane, one IP version, one
 * pair of addresses and ports, TCP or UDP. The first packet of a flow is
 * copied whole into the flow's buffer; each later one that may follow it
 * adds only its payload. A later packet may follow when the kernel, cutting
 * the large packet again, rebuilds it exactly:
 *   - IPv4 without options, not a fragment, the same TOS, TTL and DF, and
 *     without DF an identification one more than the previous one; IPv6
 *     without extension headers, the same first word and hop limit;
 *   - TCP: flags ACK (PSH allowed, and it ends the flow), the next sequence
 *     number, the same acknowledgement, window and option bytes;
 *   - every payload the size of the first one, but a shorter last one that
 *     ends the flow; at most GRO_MAX_SEGS packets and GRO_MAX_IP bytes;
 *   - a correct TCP or UDP checksum (the kernel computes the large packet's
 *     checksum anew: a bad segment must stay alone so that its receiver
 *     drops it), and for UDP over IPv4 a checksum at all.
 * Anything else of a held flow first writes what the flow holds, then goes
 * on its own or starts the flow anew, so packets of a flow keep their order.
 *
 * Written out, a flow of several packets carries the first packet's
 * headers with the new lengths, the IPv4 header checksum recomputed, PSH
 * if any segment had it, and in the TCP or UDP checksum field the sum of
 * the pseudo-header only; the virtio_net_hdr tells the kernel where the
 * checksum goes (NEEDS_CSUM) and how to cut (gso_type, gso_size).
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "gatewayd/gro.h"
#include "gatewayd/tun.h"

/* Debian 12's kernel headers predate it (Linux 6.2); the value is the kernel's ABI. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4	5
#endif

#define IP4_HDR		20
#define IP6_HDR		40
#define UDP_HDR		8
#define TCP_ACK		0x10
#define TCP_PSH		0x08
#define IP4_DF		0x4000
#define IP4_FRAG	0x3fff	/* MF and the offset */

/* What identifies a flow; zeroed before it is filled, so it compares with memcmp. */
struct gro_key {
	const struct shm_site_lane *lane;
	int fd;
	uint8_t family;
	uint8_t proto;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t src[16];
	uint8_t dst[16];
};

struct gro_flow {
	struct gro_key key;
	struct shm_site_lane *lane;
	bool open;
	bool closed;		/* no further packet may join */
	uint16_t l3_len;	/* IP header bytes */
	uint16_t hdr_len;	/* IP and transport header bytes */
	uint16_t seg_size;	/* payload bytes of the first packet */
	uint16_t segs;
	uint16_t ip_id;		/* IPv4: the identification the next packet must carry */
	uint32_t next_seq;	/* TCP: the sequence number the next packet must carry */
	uint32_t len;		/* IP bytes in buf */
	uint8_t buf[GRO_MAX_IP];
};

struct gro_table {
	uint64_t now_ns;
	unsigned n_open;
	unsigned evict;		/* the flow to write out when all are taken */
	struct gro_flow flow[GRO_FLOWS];
};

/* A candidate packet, parsed once. */
struct gro_pkt {
	const uint8_t *ip;
	const struct inner_info *info;
	uint16_t l3_len;
	uint16_t hdr_len;
	uint16_t payload;
};

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int gro_create(struct gro_table **out)
{
	struct gro_table *t = malloc(sizeof(*t));

	if (!t)
		return -ENOMEM;
	memset(t, 0, offsetof(struct gro_table, flow));
	for (unsigned i = 0; i < GRO_FLOWS; i++)
		t->flow[i].open = false;
	*out = t;
	return 0;
}

void gro_destroy(struct gro_table *t)
{
	free(t);
}

static void key_fill(struct gro_key *k, int fd, const struct shm_site_lane *lane,
		     const struct inner_info *info)
{
	size_t alen = info->family == AF_INET ? 4 : 16;

	memset(k, 0, sizeof(*k));
	k->lane = lane;
	k->fd = fd;
	k->family = (uint8_t)info->family;
	k->proto = info->proto;
	k->src_port = info->src_port;
	k->dst_port = info->dst_port;
	memcpy(k->src, &info->src, alen);
	memcpy(k->dst, &info->dst, alen);
}

/* The pseudo-header sum of an L4 segment of L4_LEN bytes, not folded into 16 bits. */
static uint32_t pseudo_sum(const uint8_t *ip, uint8_t proto, size_t l4_len)
{
	uint32_t sum = (uint32_t)proto + (uint32_t)l4_len;

	if ((ip[0] >> 4) == 4)
		return csum_partial(ip + 12, 8, sum);
	return csum_partial(ip + 8, 32, sum);
}

static void count(struct shm_site_lane *lane, unsigned n, uint64_t bytes, bool sent,
		  uint64_t now_ns)
{
	if (!sent) {
		shm_add(&lane->drops[SHM_DROP_IO], n);
		return;
	}
	shm_add(&lane->rx_packets, n);
	shm_add(&lane->rx_bytes, bytes);
	if (lane->last_user_ns != now_ns)
		shm_set(&lane->last_user_ns, now_ns);
}

static void write_one(struct gro_table *t, int fd, struct shm_site_lane *lane, const uint8_t *pkt,
		      size_t len)
{
	count(lane, 1, len, tun_write(fd, pkt, len) == (ssize_t)len, t->now_ns);
}

/*
 * Whether PKT may be coalesced at all; fills P. IPv4 without options and
 * unfragmented, IPv6 without extension headers, TCP with only ACK (and
 * PSH) or UDP, a payload, and a checksum that verifies.
 */
static bool pkt_parse(const uint8_t *pkt, const struct inner_info *info, struct gro_pkt *p)
{
	const uint8_t *l4 = info->l4;
	size_t l3 = info->family == AF_INET ? IP4_HDR : IP6_HDR, l4_hdr;

	if (!l4 || (size_t)(l4 - pkt) != l3 || info->ip_len > GRO_MAX_IP)
		return false;
	if (info->family == AF_INET ? (get16(pkt + 6) & IP4_FRAG) != 0 : pkt[6] != info->proto)
		return false;
	if (info->proto == IPPROTO_TCP) {
		if ((l4[13] & ~TCP_PSH) != TCP_ACK)
			return false;
		l4_hdr = (size_t)(l4[12] >> 4) * 4;
	} else if (info->proto == IPPROTO_UDP) {
		if (get16(l4 + 4) != info->l4_len || get16(l4 + 6) == 0)
			return false;
		l4_hdr = UDP_HDR;
	} else {
		return false;
	}
	if (info->l4_len <= l4_hdr)
		return false;
	if (csum_partial(l4, info->l4_len, pseudo_sum(pkt, info->proto, info->l4_len)) != 0xffff)
		return false;
	*p = (struct gro_pkt){ pkt, info, (uint16_t)l3, (uint16_t)(l3 + l4_hdr),
			       (uint16_t)(info->l4_len - l4_hdr) };
	return true;
}

/* Whether the IP header of P may follow the one of flow F. */
static bool ip_follows(const struct gro_flow *f, const struct gro_pkt *p)
{
	const uint8_t *a = f->buf, *b = p->ip;

	if (p->info->family == AF_INET6)
		return memcmp(a, b, 4) == 0 && a[7] == b[7];
	if (a[1] != b[1] || a[8] != b[8] || ((get16(a + 6) ^ get16(b + 6)) & IP4_DF))
		return false;
	return (get16(b + 6) & IP4_DF) || get16(b + 4) == f->ip_id;
}

/* Whether the TCP header of P may follow the one of flow F. */
static bool tcp_follows(const struct gro_flow *f, const struct gro_pkt *p)
{
	const uint8_t *a = f->buf + f->l3_len, *b = p->ip + p->l3_len;

	if (get32(b + 4) != f->next_seq || memcmp(a + 8, b + 8, 4) != 0 ||
	    memcmp(a + 14, b + 14, 2) != 0)
		return false;
	/* The options, in 4-byte words (a data offset counts words): few, so inline. */
	for (size_t i = 20; i < (size_t)(f->hdr_len - f->l3_len); i += 4)
		if (memcmp(a + i, b + i, 4) != 0)
			return false;
	return true;
}

/* Whether P may be appended to the open flow F. */
static bool flow_accepts(const struct gro_flow *f, const struct gro_pkt *p)
{
	if (f->closed || f->segs >= GRO_MAX_SEGS || p->hdr_len != f->hdr_len ||
	    p->payload > f->seg_size || f->len + p->payload > GRO_MAX_IP)
		return false;
	if (!ip_follows(f, p))
		return false;
	return p->info->proto != IPPROTO_TCP || tcp_follows(f, p);
}

static void flow_append(struct gro_flow *f, const struct gro_pkt *p)
{
	memcpy(f->buf + f->len, p->ip + p->hdr_len, p->payload);
	f->len += p->payload;
	f->segs++;
	f->ip_id++;
	f->next_seq += p->payload;
	if (p->info->proto == IPPROTO_TCP && (p->ip[p->l3_len + 13] & TCP_PSH)) {
		f->buf[f->l3_len + 13] |= TCP_PSH;
		f->closed = true;
	}
	if (p->payload < f->seg_size)
		f->closed = true;
}

static void flow_start(struct gro_table *t, struct gro_flow *f, const struct gro_key *k,
		       struct shm_site_lane *lane, const struct gro_pkt *p)
{
	memcpy(&f->key, k, sizeof(*k));	/* with its zeroed padding */
	f->lane = lane;
	f->open = true;
	f->l3_len = p->l3_len;
	f->hdr_len = p->hdr_len;
	f->seg_size = p->payload;
	f->segs = 1;
	f->len = p->info->ip_len;
	memcpy(f->buf, p->ip, f->len);
	f->ip_id = (uint16_t)(get16(p->ip + 4) + 1);
	f->closed = false;
	if (p->info->proto == IPPROTO_TCP) {
		f->next_seq = get32(p->ip + p->l3_len + 4) + p->payload;
		f->closed = (p->ip[p->l3_len + 13] & TCP_PSH) != 0;
	}
	t->n_open++;
}

/* Turn the headers in F->buf into those of one large packet; fill its vnet header. */
static void flow_finish(struct gro_flow *f, struct virtio_net_hdr *vh)
{
	uint8_t *ip = f->buf, *l4 = ip + f->l3_len;
	uint8_t proto = f->key.proto;
	size_t l4_len = f->len - f->l3_len;

	if (f->key.family == AF_INET) {
		put16(ip + 2, (uint16_t)f->len);
		put16(ip + 10, 0);
		put16(ip + 10, (uint16_t)~csum_fold(csum_partial(ip, IP4_HDR, 0)));
	} else {
		put16(ip + 4, (uint16_t)l4_len);
	}
	if (proto == IPPROTO_UDP)
		put16(l4 + 4, (uint16_t)l4_len);
	put16(l4 + (proto == IPPROTO_TCP ? 16 : 6), csum_fold(pseudo_sum(ip, proto, l4_len)));
	*vh = (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = proto == IPPROTO_UDP ? VIRTIO_NET_HDR_GSO_UDP_L4 :
			    f->key.family == AF_INET ? VIRTIO_NET_HDR_GSO_TCPV4 :
			    VIRTIO_NET_HDR_GSO_TCPV6,
		.hdr_len = htole16(f->hdr_len),
		.gso_size = htole16(f->seg_size),
		.csum_start = htole16(f->l3_len),
		.csum_offset = htole16(proto == IPPROTO_TCP ? 16 : 6),
	};
}

static void flow_write(struct gro_table *t, struct gro_flow *f)
{
	struct virtio_net_hdr vh;
	struct iovec iov[2] = { { &vh, sizeof(vh) }, { f->buf, f->len } };
	uint64_t bytes = f->len + (uint64_t)(f->segs - 1) * f->hdr_len;

	f->open = false;
	t->n_open--;
	if (f->segs == 1) {
		write_one(t, f->key.fd, f->lane, f->buf, f->len);
		return;
	}
	flow_finish(f, &vh);
	count(f->lane, f->segs, bytes, writev(f->key.fd, iov, 2) == (ssize_t)(sizeof(vh) + f->len),
	      t->now_ns);
}

static struct gro_flow *flow_find(struct gro_table *t, const struct gro_key *k)
{
	if (t->n_open == 0)
		return NULL;
	for (unsigned i = 0; i < GRO_FLOWS; i++)
		if (t->flow[i].open && memcmp(&t->flow[i].key, k, sizeof(*k)) == 0)
			return &t->flow[i];
	return NULL;
}

/* A flow slot to start a new flow in: a free one, or the next one written out. */
static struct gro_flow *flow_take(struct gro_table *t)
{
	struct gro_flow *f;

	for (unsigned i = 0; t->n_open < GRO_FLOWS && i < GRO_FLOWS; i++)
		if (!t->flow[i].open)
			return &t->flow[i];
	f = &t->flow[t->evict];
	t->evict = (t->evict + 1) % GRO_FLOWS;
	flow_write(t, f);
	return f;
}

void gro_add(struct gro_table *t, int fd, struct shm_site_lane *lane, const uint8_t *pkt,
	     const struct inner_info *info, uint64_t now_ns)
{
	struct gro_key k;
	struct gro_flow *f = NULL;
	struct gro_pkt p;
	bool candidate;

	t->now_ns = now_ns;
	if ((info->proto != IPPROTO_TCP && info->proto != IPPROTO_UDP) || !info->l4) {
		write_one(t, fd, lane, pkt, info->ip_len);
		return;
	}
	key_fill(&k, fd, lane, info);
	f = flow_find(t, &k);
	candidate = pkt_parse(pkt, info, &p);
	if (f && candidate && flow_accepts(f, &p)) {
		flow_append(f, &p);
		return;
	}
	if (f)
		flow_write(t, f);
	if (!candidate) {
		write_one(t, fd, lane, pkt, info->ip_len);
		return;
	}
	flow_start(t, f ? f : flow_take(t), &k, lane, &p);
}

void gro_flush(struct gro_table *t)
{
	for (unsigned i = 0; t->n_open > 0 && i < GRO_FLOWS; i++)
		if (t->flow[i].open)
			flow_write(t, &t->flow[i]);
}

unsigned gro_merged_parse(const uint8_t *inner, size_t len, uint16_t gso_size, uint8_t gso_type,
			  unsigned *segs)
{
	uint8_t type = gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN, proto;
	size_t l3, ip_len, hdr;

	*segs = 1;
	if (gso_size == 0 || len < IP4_HDR)
		return 0;
	if (type == VIRTIO_NET_HDR_GSO_TCPV4 || (type == VIRTIO_NET_HDR_GSO_UDP_L4 &&
						  inner[0] >> 4 == 4)) {
		/* The kernel's GRO merges IPv4 only without options or fragments. */
		if (inner[0] != 0x45 || (get16(inner + 6) & IP4_FRAG))
			return 0;
		l3 = IP4_HDR;
		proto = inner[9];
		ip_len = get16(inner + 2);
	} else if (type == VIRTIO_NET_HDR_GSO_TCPV6 || type == VIRTIO_NET_HDR_GSO_UDP_L4) {
		if (len < IP6_HDR || inner[0] >> 4 != 6)
			return 0;
		l3 = IP6_HDR;
		proto = inner[6];
		ip_len = IP6_HDR + (size_t)get16(inner + 4);
	} else {
		return 0;
	}
	if (ip_len > len || proto != (type == VIRTIO_NET_HDR_GSO_UDP_L4 ? IPPROTO_UDP : IPPROTO_TCP) ||
	    ip_len < l3 + (proto == IPPROTO_TCP ? 20 : UDP_HDR))
		return 0;
	hdr = l3 + (proto == IPPROTO_TCP ? (size_t)(inner[l3 + 12] >> 4) * 4 : UDP_HDR);
	if (hdr < l3 + (proto == IPPROTO_TCP ? 20 : UDP_HDR) || hdr >= ip_len)
		return 0;
	*segs = (unsigned)((ip_len - hdr + gso_size - 1) / gso_size);
	return (unsigned)hdr;
}

void gro_add_merged(struct gro_table *t, int fd, struct shm_site_lane *lane, uint8_t *pkt,
		    const struct inner_info *info, const struct gro_merged *m, uint64_t now_ns)
{
	size_t l3 = info->family == AF_INET ? IP4_HDR : IP6_HDR, l4_len = info->ip_len - l3;
	bool tcp = info->proto == IPPROTO_TCP;
	struct virtio_net_hdr vh = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = m->gso_type,
		.hdr_len = htole16(m->hdr_len),
		.gso_size = htole16(m->gso_size),
		.csum_start = htole16(l3),
		.csum_offset = htole16(tcp ? 16 : 6),
	};
	struct iovec iov[2] = { { &vh, sizeof(vh) }, { pkt, info->ip_len } };
	uint64_t bytes = info->ip_len + (uint64_t)(m->segs - 1) * m->hdr_len;
	struct gro_key k;
	struct gro_flow *f;

	if (t) {
		/* What the flow holds arrived first. */
		t->now_ns = now_ns;
		key_fill(&k, fd, lane, info);
		f = flow_find(t, &k);
		if (f)
			flow_write(t, f);
	}
	if (info->family == AF_INET) {
		put16(pkt + 10, 0);
		put16(pkt + 10, (uint16_t)~csum_fold(csum_partial(pkt, IP4_HDR, 0)));
	}
	if (!tcp)
		put16(pkt + l3 + 4, (uint16_t)l4_len);
	put16(pkt + l3 + (tcp ? 16 : 6), csum_fold(pseudo_sum(pkt, info->proto, l4_len)));
	count(lane, m->segs, bytes, writev(fd, iov, 2) == (ssize_t)(sizeof(vh) + info->ip_len),
	      now_ns);
}
