/*
 * Receive-side coalescing: segments built here go through gro_add and
 * gro_flush to one end of a SOCK_SEQPACKET pair standing in for a TUN
 * queue; each write arrives at the other end whole, virtio_net_hdr first.
 * A coalesced packet is checked as the kernel would use it: the header's
 * fields, the IP and transport lengths, the checksum completed from the
 * partial one compared with one computed here from scratch, and the payload
 * against the segments' payloads. What must not merge comes out as it went
 * in, in order.
 */
#include <arpa/inet.h>
#include <CUnit/Basic.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/gro.h"
#include "gatewayd/packet.h"
#include "gatewayd/tun.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4	5
#endif

#define ACK	0x10
#define PSH	0x08
#define FIN	0x01
#define SYN	0x02

/* One segment to build; seg_init gives a plain mergeable one. */
struct seg {
	int family;
	uint8_t proto;
	uint32_t seq;		/* TCP; for UDP the stream offset of the payload pattern */
	uint32_t ack;
	uint16_t win;
	uint8_t flags;
	size_t payload;
	uint16_t id;
	bool df;
	bool mf;
	uint8_t ttl;
	bool ts;		/* TCP timestamps option (12 bytes) */
	uint32_t tsval;
	uint16_t sport;
	bool bad_csum;
	bool zero_csum;		/* UDP: no checksum */
};

static struct gro_table *gro;
static int out_fd = -1, in_fd = -1;
static struct shm_site_lane lanes[2];

static void seg_init(struct seg *s, int family, uint8_t proto)
{
	*s = (struct seg){ .family = family, .proto = proto, .seq = 1000, .ack = 77,
			   .win = 512, .flags = ACK, .payload = 1000, .df = true, .ttl = 63,
			   .ts = true, .tsval = 5, .sport = 40000 };
}

static uint8_t pattern(uint32_t off)
{
	return (uint8_t)(off * 7 + (off >> 8) + 3);
}

/* A from-scratch Internet checksum, independent of packet.c's. */
static uint16_t naive_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t naive_pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len)
{
	bool v4 = (ip[0] >> 4) == 4;

	return naive_sum(ip + (v4 ? 12 : 8), v4 ? 8 : 32, 0) + proto + (uint32_t)l4_len;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static size_t build_l4(uint8_t *l4, const struct seg *s)
{
	size_t h = s->proto == IPPROTO_UDP ? 8 : s->ts ? 32 : 20;

	memset(l4, 0, h);
	put16(l4, s->sport);
	put16(l4 + 2, 443);
	if (s->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint32_t)(h + s->payload));
	} else {
		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->ack);
		l4[12] = (uint8_t)(h / 4 << 4);
		l4[13] = s->flags;
		put16(l4 + 14, s->win);
		if (s->ts) {
			l4[20] = 1;
			l4[21] = 1;
			l4[22] = 8;
			l4[23] = 10;
			put32(l4 + 24, s->tsval);
			put32(l4 + 28, 99);
		}
	}
	for (size_t i = 0; i < s->payload; i++)
		l4[h + i] = pattern(s->seq + (uint32_t)i);
	return h + s->payload;
}

static size_t build_ip(uint8_t *p, const struct seg *s, size_t l4_len)
{
	if (s->family == AF_INET6) {
		memset(p, 0, 40);
		p[0] = 0x60;
		put16(p + 4, (uint32_t)l4_len);
		p[6] = s->proto;
		p[7] = s->ttl;
		inet_pton(AF_INET6, "fd00:1::2", p + 8);
		inet_pton(AF_INET6, "fd00:2::9", p + 24);
		return 40;
	}
	memset(p, 0, 20);
	p[0] = 0x45;
	put16(p + 2, (uint32_t)(20 + l4_len));
	put16(p + 4, s->id);
	put16(p + 6, (s->df ? 0x4000u : 0) | (s->mf ? 0x2000u : 0));
	p[8] = s->ttl;
	p[9] = s->proto;
	inet_pton(AF_INET, "10.1.0.2", p + 12);
	inet_pton(AF_INET, "198.19.0.2", p + 16);
	put16(p + 10, (uint16_t)~naive_sum(p, 20, 0));
	return 20;
}

/* Build S into P with correct checksums (unless asked otherwise); its length. */
static size_t build(uint8_t *p, const struct seg *s)
{
	size_t l3 = s->family == AF_INET6 ? 40 : 20;
	size_t l4_len = build_l4(p + l3, s);
	size_t off = s->proto == IPPROTO_UDP ? 6 : 16;
	uint16_t c;

	build_ip(p, s, l4_len);
	c = (uint16_t)~naive_sum(p + l3, l4_len, naive_pseudo(p, s->proto, l4_len));
	if (s->proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	if (s->zero_csum)
		c = 0;
	if (s->bad_csum)
		c ^= 0x0101;
	put16(p + l3 + off, c);
	return l3 + l4_len;
}

/* Build S and hand it to gro for lane LANE; keep the bytes in COPY when given. */
static void feed_lane(const struct seg *s, int lane, uint8_t *copy, size_t *len)
{
	static uint8_t pkt[GRO_MAX_IP];
	struct inner_info info;
	size_t n = build(pkt, s);

	CU_ASSERT_EQUAL_FATAL(inner_parse(pkt, n, s->family, &info), 0);
	if (copy)
		memcpy(copy, pkt, n);
	if (len)
		*len = n;
	gro_add(gro, out_fd, &lanes[lane], pkt, &info, 1234);
	/* The caller's buffer is free again: gro must have copied it. */
	memset(pkt, 0xee, n);
}

static void feed(const struct seg *s)
{
	feed_lane(s, 0, NULL, NULL);
}

/* The next write: its vnet header into VH, the packet into PKT; its length or -1. */
static ssize_t next_out(struct virtio_net_hdr *vh, uint8_t *pkt)
{
	static uint8_t raw[TUN_VNET_HDR_LEN + GRO_MAX_IP + 16];
	ssize_t n = recv(in_fd, raw, sizeof(raw), MSG_DONTWAIT);

	if (n < 0)
		return -1;
	CU_ASSERT_FATAL(n >= (ssize_t)TUN_VNET_HDR_LEN);
	memcpy(vh, raw, TUN_VNET_HDR_LEN);
	memcpy(pkt, raw + TUN_VNET_HDR_LEN, (size_t)n - TUN_VNET_HDR_LEN);
	return n - (ssize_t)TUN_VNET_HDR_LEN;
}

/* The next write is EXPECT (LEN bytes) as it went in, with a plain header. */
static void expect_plain(const uint8_t *expect, size_t len)
{
	static uint8_t pkt[GRO_MAX_IP];
	struct virtio_net_hdr vh;

	CU_ASSERT_EQUAL_FATAL(next_out(&vh, pkt), (ssize_t)len);
	CU_ASSERT_EQUAL(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	CU_ASSERT_EQUAL(vh.flags, 0);
	CU_ASSERT(memcmp(pkt, expect, len) == 0);
}

static void expect_nothing(void)
{
	static uint8_t pkt[GRO_MAX_IP];
	struct virtio_net_hdr vh;

	CU_ASSERT_EQUAL(next_out(&vh, pkt), -1);
}

/* The checksum completed as the kernel does, against one computed from scratch. */
static void check_csum(uint8_t *pkt, size_t len, const struct virtio_net_hdr *vh)
{
	size_t start = vh->csum_start, field = start + vh->csum_offset;
	uint16_t partial = (uint16_t)(pkt[field] << 8 | pkt[field + 1]), done, want;
	uint8_t proto = pkt[(pkt[0] >> 4) == 4 ? 9 : 6];

	done = (uint16_t)~naive_sum(pkt + start, len - start, 0);
	pkt[field] = pkt[field + 1] = 0;
	want = naive_sum(pkt + start, len - start, naive_pseudo(pkt, proto, len - start));
	want = (uint16_t)~want;
	CU_ASSERT_EQUAL(done, want);
	CU_ASSERT_NOT_EQUAL(partial, 0);
	put16(pkt + field, partial);
}

/*
 * The next write is one coalesced packet of the N segments described by
 * FIRST with payloads SIZES[i] (consecutive stream offsets): the header,
 * lengths, checksum and payload are what the kernel needs to rebuild them.
 */
static void expect_merged(const struct seg *first, const size_t *sizes, unsigned n, bool psh)
{
	static uint8_t pkt[GRO_MAX_IP], want[GRO_MAX_IP];
	struct virtio_net_hdr vh;
	struct seg s = *first;
	size_t l3 = first->family == AF_INET6 ? 40 : 20, total = 0, hdr, len;
	bool udp = first->proto == IPPROTO_UDP;

	for (unsigned i = 0; i < n; i++)
		total += sizes[i];
	s.payload = sizes[0];
	hdr = build(want, &s) - sizes[0];
	CU_ASSERT_EQUAL_FATAL(next_out(&vh, pkt), (ssize_t)(hdr + total));
	len = hdr + total;
	CU_ASSERT_EQUAL(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CU_ASSERT_EQUAL(vh.gso_type, udp ? VIRTIO_NET_HDR_GSO_UDP_L4 :
			first->family == AF_INET ? VIRTIO_NET_HDR_GSO_TCPV4 :
			VIRTIO_NET_HDR_GSO_TCPV6);
	CU_ASSERT_EQUAL(vh.hdr_len, hdr);
	CU_ASSERT_EQUAL(vh.gso_size, sizes[0]);
	CU_ASSERT_EQUAL(vh.csum_start, l3);
	CU_ASSERT_EQUAL(vh.csum_offset, udp ? 6 : 16);
	if (first->family == AF_INET) {
		CU_ASSERT_EQUAL(pkt[2] << 8 | pkt[3], len);
		CU_ASSERT_EQUAL(naive_sum(pkt, 20, 0), 0xffff);
		CU_ASSERT(memcmp(pkt + 4, want + 4, 6) == 0);	/* id, DF, TTL, protocol */
	} else {
		CU_ASSERT_EQUAL(pkt[4] << 8 | pkt[5], len - 40);
	}
	if (udp) {
		CU_ASSERT_EQUAL(pkt[l3 + 4] << 8 | pkt[l3 + 5], len - l3);
	} else {
		CU_ASSERT_EQUAL(pkt[l3 + 13], ACK | (psh ? PSH : 0));
	}
	check_csum(pkt, len, &vh);
	/* Headers as the first segment's but lengths, checksums and flags. */
	CU_ASSERT(memcmp(pkt + l3, want + l3, 4) == 0);
	if (!udp) {
		CU_ASSERT(memcmp(pkt + l3 + 4, want + l3 + 4, 9) == 0 &&
			  memcmp(pkt + l3 + 14, want + l3 + 14, 2) == 0 &&
			  memcmp(pkt + l3 + 18, want + l3 + 18, hdr - l3 - 18) == 0);
	}
	for (size_t i = 0; i < total; i++)
		if (pkt[hdr + i] != pattern(first->seq + (uint32_t)i)) {
			CU_FAIL("payload differs");
			break;
		}
}

static void reset_lanes(void)
{
	memset(lanes, 0, sizeof(lanes));
}

/* N segments of SIZE after S (which is advanced), each fed. */
static void feed_run(struct seg *s, unsigned n, size_t size)
{
	for (unsigned i = 0; i < n; i++) {
		s->payload = size;
		feed(s);
		s->seq += (uint32_t)size;
		s->id++;
	}
}

static void test_tcp4_merged(void)
{
	struct seg s, first;
	size_t sizes[5] = { 1000, 1000, 1000, 1000, 1000 };

	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	first = s;
	feed_run(&s, 5, 1000);
	expect_nothing();	/* held until the end of the batch */
	gro_flush(gro);
	expect_merged(&first, sizes, 5, false);
	expect_nothing();
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 5);
	CU_ASSERT_EQUAL(lanes[0].rx_bytes, 5 * (20 + 32 + 1000));
	CU_ASSERT_EQUAL(lanes[0].last_user_ns, 1234);
}

static void test_tcp6_merged_psh_closes(void)
{
	struct seg s, first;
	size_t sizes[4] = { 1200, 1200, 1200, 300 };
	uint8_t after[2000];
	size_t after_len;

	reset_lanes();
	seg_init(&s, AF_INET6, IPPROTO_TCP);
	s.ts = false;
	first = s;
	feed_run(&s, 3, 1200);
	s.flags = ACK | PSH;
	feed_run(&s, 1, 300);
	/* The flow is closed: the next segment starts another one. */
	s.flags = ACK;
	s.payload = 1200;
	feed_lane(&s, 0, after, &after_len);
	gro_flush(gro);
	expect_merged(&first, sizes, 4, true);
	expect_plain(after, after_len);
	expect_nothing();
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 5);
	CU_ASSERT_EQUAL(lanes[0].rx_bytes, 4 * 60 + 3900 + 1260);
}

static void test_udp_merged(void)
{
	for (int family = AF_INET; family <= AF_INET6; family += AF_INET6 - AF_INET) {
		struct seg s, first;
		size_t sizes[4] = { 500, 500, 500, 120 };
		uint8_t after[600];
		size_t after_len;

		reset_lanes();
		seg_init(&s, family, IPPROTO_UDP);
		first = s;
		feed_run(&s, 3, 500);
		feed_run(&s, 1, 120);
		s.payload = 500;
		feed_lane(&s, 0, after, &after_len);
		gro_flush(gro);
		expect_merged(&first, sizes, 4, false);
		expect_plain(after, after_len);
		expect_nothing();
		CU_ASSERT_EQUAL(lanes[0].rx_packets, 5);
	}
}

/* A then B, where B must not join A: both come out as they went in, in order. */
static void expect_apart(const struct seg *a, const struct seg *b, int lane_b)
{
	uint8_t pa[2000], pb[2000];
	size_t la, lb;

	reset_lanes();
	feed_lane(a, 0, pa, &la);
	feed_lane(b, lane_b, pb, &lb);
	gro_flush(gro);
	expect_plain(pa, la);
	expect_plain(pb, lb);
	expect_nothing();
	CU_ASSERT_EQUAL(lanes[0].rx_packets + lanes[1].rx_packets, 2);
	CU_ASSERT_EQUAL(lanes[0].drops[SHM_DROP_IO], 0);
}

static void test_not_merged(void)
{
	struct seg a, b;

	seg_init(&a, AF_INET, IPPROTO_TCP);
	b = a;
	b.seq += 1000 + 1;		/* a gap */
	expect_apart(&a, &b, 0);
	b.seq = a.seq + 1000;
	b.ack++;			/* another acknowledgement */
	expect_apart(&a, &b, 0);
	b = a;
	b.seq += 1000;
	b.flags = ACK | FIN;
	expect_apart(&a, &b, 0);
	b.flags = ACK | SYN;
	expect_apart(&a, &b, 0);
	b.flags = ACK;
	b.win++;			/* another window */
	expect_apart(&a, &b, 0);
	b.win = a.win;
	b.tsval++;			/* options differ */
	expect_apart(&a, &b, 0);
	b.tsval = a.tsval;
	b.bad_csum = true;
	expect_apart(&a, &b, 0);
	b.bad_csum = false;
	b.ttl--;
	expect_apart(&a, &b, 0);
	b.ttl = a.ttl;
	expect_apart(&a, &b, 1);	/* another site */
	b.payload = 1001;		/* larger than the first */
	expect_apart(&a, &b, 0);
	b.payload = 1000;
	b.sport++;			/* another flow: two flows of one packet each */
	expect_apart(&a, &b, 0);
}

static void test_not_merged_ip(void)
{
	struct seg a, b;

	/* Without DF the identifications must follow each other. */
	seg_init(&a, AF_INET, IPPROTO_TCP);
	a.df = false;
	b = a;
	b.seq += 1000;
	b.id = (uint16_t)(a.id + 2);
	expect_apart(&a, &b, 0);
	/* A first fragment is never coalesced. */
	seg_init(&a, AF_INET, IPPROTO_UDP);
	a.mf = true;
	a.df = false;
	b = a;
	b.mf = false;
	expect_apart(&a, &b, 0);
	/* UDP over IPv4 without a checksum. */
	seg_init(&a, AF_INET, IPPROTO_UDP);
	a.zero_csum = true;
	b = a;
	expect_apart(&a, &b, 0);
	/* A bad UDP checksum. */
	seg_init(&a, AF_INET6, IPPROTO_UDP);
	b = a;
	b.bad_csum = true;
	expect_apart(&a, &b, 0);
}

static void test_ids_consecutive(void)
{
	struct seg s, first;
	size_t sizes[3] = { 1000, 1000, 1000 };

	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	s.df = false;
	s.id = 0xffff;		/* and wrapping */
	first = s;
	feed_run(&s, 3, 1000);
	gro_flush(gro);
	expect_merged(&first, sizes, 3, false);
	expect_nothing();
}

static void test_middle_size_differs(void)
{
	struct seg s, first;
	size_t sizes[2] = { 1000, 500 };
	uint8_t last[2000];
	size_t last_len;

	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	first = s;
	feed_run(&s, 1, 1000);
	feed_run(&s, 1, 500);		/* shorter: closes the flow */
	s.payload = 1000;
	feed_lane(&s, 0, last, &last_len);
	gro_flush(gro);
	expect_merged(&first, sizes, 2, false);
	expect_plain(last, last_len);
	expect_nothing();
}

static void test_limits(void)
{
	struct seg s, first;
	size_t sizes[64];

	/* 46 segments of 1400 bytes fit 65535 IP bytes, 47 would not. */
	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	s.ts = false;
	first = s;
	feed_run(&s, 50, 1400);
	gro_flush(gro);
	for (unsigned i = 0; i < 64; i++)
		sizes[i] = 1400;
	expect_merged(&first, sizes, 46, false);
	first.seq += 46 * 1400;
	first.id += 46;
	expect_merged(&first, sizes, 4, false);
	expect_nothing();
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 50);

	/* At most 64 segments. */
	seg_init(&s, AF_INET6, IPPROTO_UDP);
	first = s;
	feed_run(&s, 70, 100);
	gro_flush(gro);
	for (unsigned i = 0; i < 64; i++)
		sizes[i] = 100;
	expect_merged(&first, sizes, 64, false);
	first.seq += 64 * 100;
	expect_merged(&first, sizes, 6, false);
	expect_nothing();
}

static void test_order_kept(void)
{
	struct seg s, first, t, tfirst;
	size_t sizes[2] = { 1000, 1000 };
	uint8_t fin[2000], more[2000];
	size_t fin_len, more_len;

	/* Two flows interleaved: each coalesced on its own. */
	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	seg_init(&t, AF_INET, IPPROTO_TCP);
	t.sport = 40001;
	first = s;
	tfirst = t;
	for (int i = 0; i < 2; i++) {
		feed_run(&s, 1, 1000);
		feed_run(&t, 1, 1000);
	}
	/* A FIN of the first flow writes what it holds first, then goes alone. */
	s.flags = ACK | FIN;
	s.payload = 0;
	feed_lane(&s, 0, fin, &fin_len);
	expect_merged(&first, sizes, 2, false);
	expect_plain(fin, fin_len);
	expect_nothing();
	/* A bad segment of the second flow likewise. */
	t.bad_csum = true;
	feed_lane(&t, 0, more, &more_len);
	expect_merged(&tfirst, sizes, 2, false);
	expect_plain(more, more_len);
	gro_flush(gro);
	expect_nothing();
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 6);
}

static void test_many_flows(void)
{
	struct seg s;
	unsigned n = 0, segs = 0;
	uint8_t pkt[GRO_MAX_IP];
	struct virtio_net_hdr vh;
	ssize_t len;

	/* More flows than the table holds: every packet still goes out once. */
	reset_lanes();
	for (int round = 0; round < 3; round++)
		for (int f = 0; f < GRO_FLOWS + 4; f++) {
			seg_init(&s, AF_INET, IPPROTO_UDP);
			s.sport = (uint16_t)(1000 + f);
			s.seq = (uint32_t)round * 200;
			s.payload = 200;
			feed(&s);
		}
	gro_flush(gro);
	while ((len = next_out(&vh, pkt)) > 0) {
		n++;
		segs += vh.gso_size ? (unsigned)(len - vh.hdr_len + vh.gso_size - 1) / vh.gso_size
				    : 1;
	}
	CU_ASSERT(n >= GRO_FLOWS + 4);
	CU_ASSERT_EQUAL(segs, 3 * (GRO_FLOWS + 4));
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 3 * (GRO_FLOWS + 4));
}

static void test_write_fails(void)
{
	struct seg s;
	struct inner_info info;
	uint8_t pkt[2000];
	size_t n;

	/* A coalesced packet that cannot be written: each of its packets is a drop. */
	reset_lanes();
	seg_init(&s, AF_INET, IPPROTO_TCP);
	for (int i = 0; i < 3; i++) {
		n = build(pkt, &s);
		CU_ASSERT_EQUAL_FATAL(inner_parse(pkt, n, AF_INET, &info), 0);
		gro_add(gro, -1, &lanes[0], pkt, &info, 1);
		s.seq += 1000;
	}
	gro_flush(gro);
	CU_ASSERT_EQUAL(lanes[0].drops[SHM_DROP_IO], 3);
	CU_ASSERT_EQUAL(lanes[0].rx_packets, 0);
}

static int suite_init(void)
{
	int sv[2], size = 8 << 20;

	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	out_fd = sv[0];
	in_fd = sv[1];
	if (setsockopt(out_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(out_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return gro_create(&gro) < 0 ? -1 : 0;
}

static int suite_clean(void)
{
	gro_destroy(gro);
	close(out_fd);
	close(in_fd);
	return 0;
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gatewayd gro", suite_init, suite_clean);
	CU_add_test(s, "TCP over IPv4 coalesced", test_tcp4_merged);
	CU_add_test(s, "TCP over IPv6, PSH ends the flow", test_tcp6_merged_psh_closes);
	CU_add_test(s, "UDP coalesced, a short last one ends the flow", test_udp_merged);
	CU_add_test(s, "TCP segments that must stay apart", test_not_merged);
	CU_add_test(s, "IP headers that keep packets apart", test_not_merged_ip);
	CU_add_test(s, "consecutive IPv4 identifications", test_ids_consecutive);
	CU_add_test(s, "a shorter segment in the middle", test_middle_size_differs);
	CU_add_test(s, "65535 bytes and 64 segments", test_limits);
	CU_add_test(s, "order within a flow", test_order_kept);
	CU_add_test(s, "more flows than the table", test_many_flows);
	CU_add_test(s, "a failed write counts every packet", test_write_fails);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
