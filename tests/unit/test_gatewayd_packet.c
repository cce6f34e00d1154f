/*
 * Unit tests of gatewayd/packet.c.
 *
 * Packets are built byte by byte here, with their own small writers; every
 * checksum is verified with a separate, deliberately naive RFC 1071 sum
 * (ref_add/ref_fold below), never with the code under test. The arrays named
 * scapy_* were generated with python3-scapy 2.5 (the expression that made
 * each is in its comment) as a second opinion on the wire format.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "gatewayd/packet.h"

#define OUTER_SRC	"198.18.0.2"
#define OUTER_DST	"192.0.2.1"
#define SITE_SOURCE	OUTER_SRC
#define POP_GATEWAY	OUTER_DST
#define PROBE_IP	"100.64.255.1"

static uint8_t buf[4096];
static uint8_t inner[2048];

/* --- writers and an independent checksum --------------------------------- */

static void w16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void w32(uint8_t *p, uint32_t v)
{
	w16(p, v >> 16);
	w16(p + 2, v & 0xffff);
}

static uint16_t r16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t r32(const uint8_t *p)
{
	return (uint32_t)r16(p) << 16 | r16(p + 2);
}

static struct in_addr a4(const char *s)
{
	struct in_addr a;

	CU_ASSERT_FATAL(inet_pton(AF_INET, s, &a) == 1);
	return a;
}

static struct in6_addr a6(const char *s)
{
	struct in6_addr a;

	CU_ASSERT_FATAL(inet_pton(AF_INET6, s, &a) == 1);
	return a;
}

/* The 4 bytes at P are the IPv4 address S. */
static bool is_addr4(const uint8_t *p, const char *s)
{
	struct in_addr a = a4(s);

	return memcmp(p, &a, 4) == 0;
}

static uint32_t ref_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += r16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint16_t ref_csum(const uint8_t *p, size_t n)
{
	return (uint16_t)~ref_fold(ref_add(0, p, n));
}

static bool ref_valid(const uint8_t *p, size_t n)
{
	return ref_fold(ref_add(0, p, n)) == 0xffff;
}

/* The transport checksum of IPv4 packet IP (no options) sums to 0xffff. */
static bool l4_valid4(const uint8_t *ip)
{
	size_t len = r16(ip + 2) - 20;
	uint32_t sum = ref_add(0, ip + 12, 8) + ip[9] + (uint32_t)len;

	if (ip[9] == IPPROTO_ICMP)
		sum = 0;
	return ref_fold(ref_add(sum, ip + 20, len)) == 0xffff;
}

/* The transport checksum of IPv6 packet IP (no extension headers). */
static bool l4_valid6(const uint8_t *ip)
{
	size_t len = r16(ip + 4);
	uint32_t sum = ref_add(0, ip + 8, 32) + ip[6] + (uint32_t)len;

	return ref_fold(ref_add(sum, ip + 40, len)) == 0xffff;
}

static void fix_ip4(uint8_t *p)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;

	w16(p + 10, 0);
	w16(p + 10, ref_csum(p, ihl));
}

/* A 20-byte IPv4 header in front of PAYLOAD bytes, checksum filled. */
static size_t put_ip4(uint8_t *p, uint8_t proto, const char *src, const char *dst,
		      size_t payload, uint16_t frag)
{
	memset(p, 0, 20);
	p[0] = 0x45;
	w16(p + 2, (uint16_t)(20 + payload));
	w16(p + 4, 0x1234);
	w16(p + 6, frag);
	p[8] = 61;
	p[9] = proto;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	fix_ip4(p);
	return 20;
}

static size_t put_ip6(uint8_t *p, uint8_t next, const char *src, const char *dst, size_t payload)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	w16(p + 4, (uint16_t)payload);
	p[6] = next;
	p[7] = 64;
	inet_pton(AF_INET6, src, p + 8);
	inet_pton(AF_INET6, dst, p + 24);
	return 40;
}

/* A TCP header with OLEN bytes of options (a multiple of 4), checksum 0. */
static size_t put_tcp(uint8_t *p, uint16_t sport, uint16_t dport, uint8_t flags,
		      const uint8_t *opts, size_t olen)
{
	memset(p, 0, 20);
	w16(p, sport);
	w16(p + 2, dport);
	w32(p + 4, 1000);
	p[12] = (uint8_t)(((20 + olen) / 4) << 4);
	p[13] = flags;
	w16(p + 14, 65535);
	if (olen)
		memcpy(p + 20, opts, olen);
	return 20 + olen;
}

static void fix_tcp4(uint8_t *ip)
{
	size_t len = r16(ip + 2) - 20;
	uint32_t sum = ref_add(0, ip + 12, 8) + IPPROTO_TCP + (uint32_t)len;

	w16(ip + 36, 0);
	w16(ip + 36, (uint16_t)~ref_fold(ref_add(sum, ip + 20, len)));
}

static void fix_tcp6(uint8_t *ip)
{
	size_t len = r16(ip + 4);
	uint32_t sum = ref_add(0, ip + 8, 32) + IPPROTO_TCP + (uint32_t)len;

	w16(ip + 56, 0);
	w16(ip + 56, (uint16_t)~ref_fold(ref_add(sum, ip + 40, len)));
}

/* IPv4 TCP packet from a site host into P; returns its length. */
static size_t mk_tcp4(uint8_t *p, uint16_t dport, uint8_t flags, const uint8_t *opts,
		      size_t olen, size_t data)
{
	size_t t = put_tcp(p + 20, 40000, dport, flags, opts, olen);

	for (size_t i = 0; i < data; i++)
		p[20 + t + i] = (uint8_t)(i * 7);
	put_ip4(p, IPPROTO_TCP, "10.1.0.5", "93.184.216.34", t + data, 0x4000);
	fix_tcp4(p);
	return 20 + t + data;
}

static size_t mk_tcp6(uint8_t *p, uint16_t dport, uint8_t flags, const uint8_t *opts,
		      size_t olen, size_t data)
{
	size_t t = put_tcp(p + 40, 40001, dport, flags, opts, olen);

	for (size_t i = 0; i < data; i++)
		p[40 + t + i] = (uint8_t)(i * 13);
	put_ip6(p, IPPROTO_TCP, "2001:db8::5", "2001:db8:1::1", t + data);
	fix_tcp6(p);
	return 40 + t + data;
}

/* IPv4 UDP packet with DATA bytes of payload. */
static size_t mk_udp4(uint8_t *p, const char *src, const char *dst, size_t data)
{
	memset(p + 20, 0, 8);
	w16(p + 20, 5353);
	w16(p + 22, 53);
	w16(p + 24, (uint16_t)(8 + data));
	for (size_t i = 0; i < data; i++)
		p[28 + i] = (uint8_t)i;
	put_ip4(p, IPPROTO_UDP, src, dst, 8 + data, 0);
	return 28 + data;
}

static size_t mk_icmp4(uint8_t *p, const char *dst, uint8_t type, uint8_t code, size_t data)
{
	uint8_t *icmp = p + 20;

	icmp[0] = type;
	icmp[1] = code;
	w16(icmp + 2, 0);
	w32(icmp + 4, 0x42420003);
	for (size_t i = 0; i < data; i++)
		icmp[8 + i] = (uint8_t)('a' + i % 26);
	w16(icmp + 2, ref_csum(icmp, 8 + data));
	put_ip4(p, IPPROTO_ICMP, "10.1.0.5", dst, 8 + data, 0);
	return 28 + data;
}

/* Outer IPv4 + GRE with FLAGS and PROTO around PAYLOAD; a C checksum is right. */
static size_t mk_gre(uint8_t *p, uint16_t flags, uint16_t proto, uint32_t key, uint32_t seq,
		     const uint8_t *payload, size_t plen)
{
	uint8_t *g = p + 20;
	size_t off = 4;

	w16(g, flags);
	w16(g + 2, proto);
	if (flags & GRE_FLAG_C) {
		w32(g + 4, 0);
		off += 4;
	}
	if (flags & GRE_FLAG_K) {
		w32(g + off, key);
		off += 4;
	}
	if (flags & GRE_FLAG_S) {
		w32(g + off, seq);
		off += 4;
	}
	if (plen)
		memmove(g + off, payload, plen);
	if (flags & GRE_FLAG_C)
		w16(g + 4, ref_csum(g, off + plen));
	put_ip4(p, IPPROTO_GRE, OUTER_SRC, OUTER_DST, off + plen, 0);
	return 20 + off + plen;
}

/* A Cisco MetaData header carrying ETHERTYPE and SGT. */
static void put_meta(uint8_t *p, uint16_t ethertype, uint8_t version, uint8_t units,
		     uint16_t sgt)
{
	w16(p, ethertype);
	p[2] = version;
	p[3] = units;
	w16(p + 4, 1);
	w16(p + 6, sgt);
}

/* --- checksum -------------------------------------------------------------- */

static uint32_t lcg = 12345;

static uint8_t rnd8(void)
{
	lcg = lcg * 1103515245 + 12345;
	return (uint8_t)(lcg >> 16);
}

static void check_csum(const uint8_t *data, size_t len, uint32_t sum)
{
	uint32_t want = ref_fold(ref_add(sum, data, len));

	CU_ASSERT_EQUAL(csum_partial(data, len, sum), want);
	CU_ASSERT_EQUAL(csum_partial_portable(data, len, sum), want);
}

/* Every length to past a full-sized segment, at each alignment, both ways of summing. */
static void test_csum_reference(void)
{
	static uint8_t data[65536 + 4];

	for (size_t len = 0; len < 1600; len++) {
		for (size_t off = 0; off < 4; off++) {
			for (size_t i = 0; i < len + off; i++)
				data[i] = rnd8();
			check_csum(data + off, len, 0);
			check_csum(data + off, len, 0x1fffe);
		}
	}
	/* The largest packet of all ones: every lane carries as much as it ever will. */
	memset(data, 0xff, sizeof(data));
	check_csum(data + 1, 65535, 0xffff);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = rnd8();
	check_csum(data + 3, 65535, 0);
}

static void test_csum_chain_and_fold(void)
{
	uint8_t data[64];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(0xf0 + i);
	CU_ASSERT_EQUAL(csum_partial(data + 16, 47, csum_partial(data, 16, 0)),
			csum_partial(data, 63, 0));
	memset(data, 0xff, sizeof(data));
	CU_ASSERT_EQUAL(csum_partial(data, 64, 0), 0xffff);
	CU_ASSERT_EQUAL(csum_partial(data, 0, 0), 0);
	CU_ASSERT_EQUAL(csum_fold(0x1fffe), 0xffff);
	CU_ASSERT_EQUAL(csum_fold(0x10000), 1);
	CU_ASSERT_EQUAL(csum_fold(0xffffffff), 0xffff);
	CU_ASSERT_EQUAL(csum_fold(0x1234), 0x1234);
}

/* --- outer IPv4 and GRE ---------------------------------------------------- */

static size_t mk_inner_udp(void)
{
	return mk_udp4(inner, "10.1.0.5", "93.184.216.34", 4);
}

static void test_gre_plain(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, 0, GRE_PROTO_IPV4, 0, 0, inner, ilen);

	CU_ASSERT_EQUAL(len, 24 + ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_EQUAL(g.src.s_addr, a4(OUTER_SRC).s_addr);
	CU_ASSERT_EQUAL(g.dst.s_addr, a4(OUTER_DST).s_addr);
	CU_ASSERT_EQUAL(g.flags, 0);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_IPV4);
	CU_ASSERT_FALSE(g.has_key);
	CU_ASSERT_FALSE(g.has_seq);
	CU_ASSERT_FALSE(g.has_meta);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 24);
	CU_ASSERT_EQUAL(g.inner_len, ilen);
	CU_ASSERT_EQUAL(memcmp(g.inner, inner, ilen), 0);
}

static void test_gre_checksum(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, GRE_FLAG_C, GRE_PROTO_IPV4, 0, 0, inner, ilen);

	CU_ASSERT_TRUE(ref_valid(buf + 20, len - 20));
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 28);
	CU_ASSERT_EQUAL(g.inner_len, ilen);
	/* One flipped payload bit, then a wrong checksum field. */
	buf[len - 1] ^= 0x01;
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_CHECKSUM);
	buf[len - 1] ^= 0x01;
	buf[24] ^= 0x80;
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_CHECKSUM);
	buf[24] ^= 0x80;
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
}

static void test_gre_key_and_seq(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, GRE_FLAG_K, GRE_PROTO_IPV4, 0xdeadbeef, 0, inner, ilen);

	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_TRUE(g.has_key);
	CU_ASSERT_EQUAL(g.key, 0xdeadbeef);
	CU_ASSERT_FALSE(g.has_seq);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 28);

	len = mk_gre(buf, GRE_FLAG_S, GRE_PROTO_IPV4, 0, 77, inner, ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_FALSE(g.has_key);
	CU_ASSERT_TRUE(g.has_seq);
	CU_ASSERT_EQUAL(g.seq, 77);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 28);
}

static void test_gre_all_options(void)
{
	struct gre_packet g;
	uint16_t flags = GRE_FLAG_C | GRE_FLAG_K | GRE_FLAG_S;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, flags, GRE_PROTO_IPV4, 0x01020304, 0xa0b0c0d0, inner, ilen);

	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_EQUAL(g.flags, flags);
	CU_ASSERT_TRUE(g.has_key && g.has_seq);
	CU_ASSERT_EQUAL(g.key, 0x01020304);
	CU_ASSERT_EQUAL(g.seq, 0xa0b0c0d0);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 36);
	CU_ASSERT_EQUAL(g.inner_len, ilen);
	/* The key is covered by the checksum too. */
	buf[31] ^= 0x10;
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_CHECKSUM);
}

static void test_gre_metadata(void)
{
	struct gre_packet g;
	uint8_t payload[256];
	size_t ilen = mk_inner_udp(), len;

	put_meta(payload, GRE_PROTO_IPV4, 1, 1, 0x1234);
	memcpy(payload + 8, inner, ilen);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 8 + ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_TRUE(g.has_meta);
	CU_ASSERT_EQUAL(g.sgt, 0x1234);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_IPV4);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 32);
	CU_ASSERT_EQUAL(g.inner_len, ilen);

	len = mk_gre(buf, GRE_FLAG_K, GRE_PROTO_CISCO_META, 9, 0, payload, 8 + ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_TRUE(g.has_meta && g.has_key);
	CU_ASSERT_EQUAL(g.key, 9);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + 36);
	CU_ASSERT_EQUAL(g.inner_len, ilen);

	put_meta(payload, GRE_PROTO_IPV6, 1, 1, 7);
	len = mk_gre(buf, GRE_FLAG_C, GRE_PROTO_CISCO_META, 0, 0, payload, 8 + ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_IPV6);
	CU_ASSERT_EQUAL(g.sgt, 7);
}

static void test_gre_metadata_bad(void)
{
	struct gre_packet g;
	uint8_t payload[64];
	size_t len;

	put_meta(payload, GRE_PROTO_IPV4, 2, 1, 1);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 8);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	put_meta(payload, GRE_PROTO_IPV4, 1, 2, 1);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 8);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	put_meta(payload, GRE_PROTO_IPV4, 1, 0, 1);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 8);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	/* Truncated MetaData: every length short of its 8 bytes. */
	put_meta(payload, GRE_PROTO_IPV4, 1, 1, 1);
	for (size_t cut = 0; cut < 8; cut++) {
		len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, cut);
		CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	}
	/* What follows MetaData must itself be a carried protocol. */
	put_meta(payload, GRE_PROTO_TEB, 1, 1, 1);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 8);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_UNSUPPORTED_PROTO);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_TEB);
	put_meta(payload, GRE_PROTO_CISCO_META, 1, 1, 1);
	put_meta(payload + 8, GRE_PROTO_IPV4, 1, 1, 1);
	len = mk_gre(buf, 0, GRE_PROTO_CISCO_META, 0, 0, payload, 16);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_UNSUPPORTED_PROTO);
}

static void test_gre_reserved_bits(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp(), len;
	unsigned n = 0;

	for (uint16_t bit = 0x0008; bit <= 0x0800; bit <<= 1) {
		len = mk_gre(buf, bit, GRE_PROTO_IPV4, 0, 0, inner, ilen);
		CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
		n++;
	}
	CU_ASSERT_EQUAL(n, 9);
	/* Routing, with room for a routing field behind it. */
	len = mk_gre(buf, GRE_FLAG_R, GRE_PROTO_IPV4, 0, 0, inner, ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	len = mk_gre(buf, GRE_FLAG_R | GRE_FLAG_C, GRE_PROTO_IPV4, 0, 0, inner, ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
}

static void test_gre_versions(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp(), len;

	for (uint16_t v = 1; v <= 7; v++) {
		len = mk_gre(buf, v, GRE_PROTO_IPV4, 0, 0, inner, ilen);
		CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
		len = mk_gre(buf, GRE_FLAG_K | v, GRE_PROTO_IPV4, 1, 0, inner, ilen);
		CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	}
	len = mk_gre(buf, 0, GRE_PROTO_IPV4, 0, 0, inner, ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
}

/*
 * Cut a C+K+S keepalive reply (no payload, 36 bytes) at every length: as
 * received (total length still says 36) and as sent (total length says so).
 */
static void test_gre_truncated(void)
{
	struct gre_packet g;
	uint16_t flags = GRE_FLAG_C | GRE_FLAG_K | GRE_FLAG_S;
	uint8_t copy[64];
	size_t full = mk_gre(buf, flags, GRE_PROTO_KEEPALIVE, 5, 6, NULL, 0);

	CU_ASSERT_EQUAL(full, 36);
	CU_ASSERT_EQUAL(gre_parse(buf, full, &g), 0);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_KEEPALIVE);
	CU_ASSERT_EQUAL(g.inner_len, 0);
	for (size_t cut = 0; cut < full; cut++) {
		memcpy(copy, buf, full);
		CU_ASSERT_EQUAL(gre_parse(copy, cut, &g), SHM_DROP_BAD_HEADER);
		if (cut < 20)
			continue;
		w16(copy + 2, (uint16_t)cut);
		fix_ip4(copy);
		CU_ASSERT_EQUAL(gre_parse(copy, cut, &g), SHM_DROP_BAD_HEADER);
		CU_ASSERT_EQUAL(gre_parse(copy, full, &g), SHM_DROP_BAD_HEADER);
	}
}

/* Flags announce fields that the packet does not have room for. */
static void test_gre_options_missing(void)
{
	struct gre_packet g;
	size_t len;

	len = mk_gre(buf, 0, GRE_PROTO_KEEPALIVE, 0, 0, NULL, 0);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	w16(buf + 20, GRE_FLAG_K);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	w16(buf + 20, GRE_FLAG_S);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);

	len = mk_gre(buf, GRE_FLAG_K, GRE_PROTO_KEEPALIVE, 1, 0, NULL, 0);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	w16(buf + 20, GRE_FLAG_K | GRE_FLAG_S);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
	w16(buf + 20, GRE_FLAG_C | GRE_FLAG_K);
	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_BAD_HEADER);
}

static void test_gre_keepalive_reply(void)
{
	struct gre_packet g;
	size_t len = mk_gre(buf, GRE_FLAG_K, GRE_PROTO_KEEPALIVE, 0x1234, 0, NULL, 0);

	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_KEEPALIVE);
	CU_ASSERT_EQUAL(g.key, 0x1234);
	CU_ASSERT_EQUAL(g.inner_len, 0);
	CU_ASSERT_PTR_EQUAL(g.inner, buf + len);
}

static void test_gre_unsupported(void)
{
	static const struct {
		uint16_t proto;
		int kind;
	} cases[] = {
		{ GRE_PROTO_TEB, SHM_PROTO_TEB },
		{ GRE_PROTO_ERSPAN2, SHM_PROTO_ERSPAN },
		{ GRE_PROTO_ERSPAN3, SHM_PROTO_ERSPAN },
		{ GRE_PROTO_WCCP, SHM_PROTO_WCCP },
		{ 0x0004, SHM_PROTO_OTHER },
		{ 0x0806, SHM_PROTO_OTHER },
		{ 0xffff, SHM_PROTO_OTHER },
	};
	struct gre_packet g;
	size_t ilen = mk_inner_udp(), len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = mk_gre(buf, GRE_FLAG_K, cases[i].proto, 3, 0, inner, ilen);
		CU_ASSERT_EQUAL(gre_parse(buf, len, &g), SHM_DROP_UNSUPPORTED_PROTO);
		CU_ASSERT_EQUAL(g.proto, cases[i].proto);
		CU_ASSERT_EQUAL(gre_proto_kind(g.proto), cases[i].kind);
	}
}

static void test_outer_ipv4(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, 0, GRE_PROTO_IPV4, 0, 0, inner, ilen);
	uint8_t copy[256];

	CU_ASSERT_EQUAL(gre_parse(buf, len, &g), 0);
	/* Trailing bytes after the total length are ignored. */
	CU_ASSERT_EQUAL(gre_parse(buf, len + 9, &g), 0);
	CU_ASSERT_EQUAL(g.inner_len, ilen);

	memcpy(copy, buf, len);
	copy[0] = 0x65;
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);
	copy[0] = 0x44;
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);

	memcpy(copy, buf, len);
	w16(copy + 2, (uint16_t)(len + 1));
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);
	w16(copy + 2, 19);
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);

	memcpy(copy, buf, len);
	copy[9] = IPPROTO_UDP;
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);

	memcpy(copy, buf, len);
	copy[10] ^= 0xff;
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);
	/* A refused outer header leaves no source to charge... */
	CU_ASSERT_EQUAL(g.src.s_addr, 0);
	/* ...a refused GRE header behind a valid one does. */
	memcpy(copy, buf, len);
	copy[21] |= 0x01;
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);
	CU_ASSERT_EQUAL(g.src.s_addr, a4(OUTER_SRC).s_addr);

	/* Fragments: more-fragments, an offset, both. DF alone is fine. */
	static const uint16_t frags[] = { 0x2000, 0x0001, 0x1fff, 0x20b9 };
	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		memcpy(copy, buf, len);
		w16(copy + 6, frags[i]);
		fix_ip4(copy);
		CU_ASSERT_EQUAL(gre_parse(copy, len, &g), SHM_DROP_BAD_HEADER);
	}
	memcpy(copy, buf, len);
	w16(copy + 6, 0x4000);
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len, &g), 0);
}

/* An outer header with 8 bytes of options (IHL 7) still finds GRE. */
static void test_outer_options(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp();
	size_t len = mk_gre(buf, GRE_FLAG_K, GRE_PROTO_IPV4, 42, 0, inner, ilen);
	uint8_t copy[256];

	memcpy(copy, buf, 20);
	memset(copy + 20, 0x01, 8);	/* NOP options */
	memcpy(copy + 28, buf + 20, len - 20);
	copy[0] = 0x47;
	w16(copy + 2, (uint16_t)(len + 8));
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len + 8, &g), 0);
	CU_ASSERT_EQUAL(g.key, 42);
	CU_ASSERT_PTR_EQUAL(g.inner, copy + 36);
	CU_ASSERT_EQUAL(g.inner_len, ilen);
	/* Options that run past the total length. */
	copy[0] = 0x4f;
	w16(copy + 2, 40);
	fix_ip4(copy);
	CU_ASSERT_EQUAL(gre_parse(copy, len + 8, &g), SHM_DROP_BAD_HEADER);
}

/*
 * scapy: IP(src="198.18.0.2", dst="192.0.2.1", id=1, ttl=255)/
 *   GRE(key_present=1, key=0x1234)/IP(src="192.0.2.1", dst="198.18.0.2",
 *   id=2, ttl=255)/GRE(key_present=1, key=0x1234, proto=0)
 */
static const uint8_t scapy_keepalive_key[] = {
	0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0xff, 0x2f, 0x33, 0x80,
	0xc6, 0x12, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x20, 0x00, 0x08, 0x00,
	0x00, 0x00, 0x12, 0x34, 0x45, 0x00, 0x00, 0x1c, 0x00, 0x02, 0x00, 0x00,
	0xff, 0x2f, 0x33, 0x9b, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x12, 0x00, 0x02,
	0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34,
};

/*
 * scapy: IP(src="198.18.0.2", dst="192.0.2.1", id=3)/GRE(chksum_present=1,
 *   seqnum_present=1, seqence_number=7)/IP(src="10.1.0.5",
 *   dst="93.184.216.34", id=4)/UDP(sport=5353, dport=53)/b"hello"
 */
static const uint8_t scapy_gre_csum_seq[] = {
	0x45, 0x00, 0x00, 0x41, 0x00, 0x03, 0x00, 0x00, 0x40, 0x2f, 0xf2, 0x75,
	0xc6, 0x12, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x90, 0x00, 0x08, 0x00,
	0xa7, 0xf7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x45, 0x00, 0x00, 0x21,
	0x00, 0x04, 0x00, 0x00, 0x40, 0x11, 0x3a, 0xe8, 0x0a, 0x01, 0x00, 0x05,
	0x5d, 0xb8, 0xd8, 0x22, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x67, 0x03,
	0x68, 0x65, 0x6c, 0x6c, 0x6f,
};

static void test_scapy_vectors(void)
{
	struct gre_packet g;
	struct inner_info in;
	uint8_t copy[sizeof(scapy_gre_csum_seq)];

	CU_ASSERT_EQUAL(gre_parse(scapy_keepalive_key, sizeof(scapy_keepalive_key), &g), 0);
	CU_ASSERT_EQUAL(g.key, 0x1234);
	CU_ASSERT_EQUAL(g.proto, GRE_PROTO_IPV4);
	CU_ASSERT_EQUAL(inner_parse(g.inner, g.inner_len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(inner_classify(g.inner, &in, a4(SITE_SOURCE), a4(PROBE_IP)),
			INNER_KEEPALIVE);

	CU_ASSERT_EQUAL(gre_parse(scapy_gre_csum_seq, sizeof(copy), &g), 0);
	CU_ASSERT_TRUE(g.has_seq);
	CU_ASSERT_EQUAL(g.seq, 7);
	CU_ASSERT_EQUAL(inner_parse(g.inner, g.inner_len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(in.dst_port, 53);
	memcpy(copy, scapy_gre_csum_seq, sizeof(copy));
	copy[sizeof(copy) - 1] = 'O';
	CU_ASSERT_EQUAL(gre_parse(copy, sizeof(copy), &g), SHM_DROP_BAD_CHECKSUM);
}

/* --- inner packets --------------------------------------------------------- */

static const uint8_t opt_mss1460[] = { 2, 4, 0x05, 0xb4 };

static void test_inner_ipv4_tcp(void)
{
	struct inner_info in;
	size_t len = mk_tcp4(inner, 443, 0x02, opt_mss1460, 4, 10);

	CU_ASSERT_EQUAL(inner_parse(inner, len + 5, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(in.family, AF_INET);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_TCP);
	CU_ASSERT_PTR_EQUAL(in.l4, inner + 20);
	CU_ASSERT_EQUAL(in.l4_len, len - 20);
	CU_ASSERT_EQUAL(in.ip_len, len);
	CU_ASSERT_EQUAL(in.src_port, 40000);
	CU_ASSERT_EQUAL(in.dst_port, 443);
	CU_ASSERT_TRUE(in.tcp_syn);
	CU_ASSERT_TRUE(in.df);
	CU_ASSERT_EQUAL(in.src.v4.s_addr, a4("10.1.0.5").s_addr);
	CU_ASSERT_EQUAL(in.dst.v4.s_addr, a4("93.184.216.34").s_addr);

	len = mk_tcp4(inner, 80, 0x10, NULL, 0, 0);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_FALSE(in.tcp_syn);
}

/* IHL 6: a 4-byte option (router alert) between the header and TCP. */
static void test_inner_ipv4_options(void)
{
	struct inner_info in;
	uint8_t p[128];
	size_t len = mk_tcp4(inner, 443, 0x02, NULL, 0, 0);

	memcpy(p, inner, 20);
	memcpy(p + 20, "\x94\x04\x00\x00", 4);
	memcpy(p + 24, inner + 20, len - 20);
	p[0] = 0x46;
	w16(p + 2, (uint16_t)(len + 4));
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len + 4, AF_INET, &in), 0);
	CU_ASSERT_PTR_EQUAL(in.l4, p + 24);
	CU_ASSERT_EQUAL(in.dst_port, 443);
	p[22] ^= 0x01;
	CU_ASSERT_EQUAL(inner_parse(p, len + 4, AF_INET, &in), SHM_DROP_BAD_INNER);
}

static void test_inner_ipv4_broken(void)
{
	struct inner_info in;
	uint8_t p[128];
	size_t len = mk_tcp4(inner, 443, 0x02, opt_mss1460, 4, 0);

	memcpy(p, inner, len);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET6, &in), SHM_DROP_BAD_INNER);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_UNSPEC, &in), SHM_DROP_BAD_INNER);
	p[0] = 0x55;
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	p[0] = 0x44;
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	memcpy(p, inner, len);
	w16(p + 2, (uint16_t)(len + 1));	/* longer than what arrived */
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	w16(p + 2, 16);				/* shorter than its header */
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	w16(p + 2, 20 + 19);			/* a TCP header cut short */
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	w16(p + 2, 20 + 20);			/* options cut off */
	fix_ip4(p);
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	memcpy(p, inner, len);
	p[11] ^= 1;
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	memcpy(p, inner, len);
	p[32] = 0x40;				/* TCP data offset 4 */
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	p[32] = 0xf0;				/* 60 bytes, only 24 here */
	CU_ASSERT_EQUAL(inner_parse(p, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	for (size_t cut = 0; cut < len; cut++)
		CU_ASSERT_EQUAL(inner_parse(inner, cut, AF_INET, &in), SHM_DROP_BAD_INNER);
}

static void test_inner_ipv4_udp_icmp(void)
{
	struct inner_info in;
	size_t len = mk_udp4(inner, "10.1.0.5", "8.8.8.8", 12);

	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(in.src_port, 5353);
	CU_ASSERT_EQUAL(in.dst_port, 53);
	CU_ASSERT_FALSE(in.df);
	w16(inner + 24, (uint16_t)(8 + 13));	/* UDP length past the IP length */
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	w16(inner + 24, 7);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	len = mk_udp4(inner, "10.1.0.5", "8.8.8.8", 0);
	w16(inner + 2, 27);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);

	len = mk_icmp4(inner, PROBE_IP, 8, 0, 4);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_ICMP);
	CU_ASSERT_EQUAL(in.l4_len, 12);
	w16(inner + 2, 27);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);
}

static void test_inner_ipv4_fragments(void)
{
	struct inner_info in;
	size_t len = mk_udp4(inner, "10.1.0.5", "8.8.8.8", 40);

	/* A first fragment: its UDP length covers more than it carries. */
	w16(inner + 6, 0x2000);
	w16(inner + 2, 20 + 32);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_PTR_EQUAL(in.l4, inner + 20);
	CU_ASSERT_EQUAL(in.dst_port, 53);
	/* A later fragment: no transport header. */
	w16(inner + 6, 0x0004);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_PTR_NULL(in.l4);
	CU_ASSERT_EQUAL(in.l4_len, 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(in.dst_port, 0);
	/* A later fragment too short for any transport header is fine. */
	w16(inner + 2, 21);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, 21, AF_INET, &in), 0);
	/* A first fragment with a TCP header split in two is not. */
	len = mk_tcp4(inner, 443, 0x02, opt_mss1460, 4, 0);
	w16(inner + 6, 0x2000);
	w16(inner + 2, 20 + 16);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);
}

static void test_inner_ipv6(void)
{
	struct inner_info in;
	struct in6_addr src = a6("2001:db8::5"), dst = a6("2001:db8:1::1");
	size_t len = mk_tcp6(inner, 80, 0x12, opt_mss1460, 4, 3);

	CU_ASSERT_EQUAL(inner_parse(inner, len + 2, AF_INET6, &in), 0);
	CU_ASSERT_EQUAL(in.family, AF_INET6);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_TCP);
	CU_ASSERT_PTR_EQUAL(in.l4, inner + 40);
	CU_ASSERT_EQUAL(in.l4_len, len - 40);
	CU_ASSERT_EQUAL(in.ip_len, len);
	CU_ASSERT_EQUAL(in.dst_port, 80);
	CU_ASSERT_TRUE(in.tcp_syn);
	CU_ASSERT_TRUE(in.df);
	CU_ASSERT_EQUAL(memcmp(&in.src.v6, &src, 16), 0);
	CU_ASSERT_EQUAL(memcmp(&in.dst.v6, &dst, 16), 0);

	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), SHM_DROP_BAD_INNER);
	CU_ASSERT_EQUAL(inner_parse(inner, len - 1, AF_INET6, &in), SHM_DROP_BAD_INNER);
	for (size_t cut = 0; cut < 40; cut++)
		CU_ASSERT_EQUAL(inner_parse(inner, cut, AF_INET6, &in), SHM_DROP_BAD_INNER);
	inner[0] = 0x40;
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), SHM_DROP_BAD_INNER);
	inner[0] = 0x60;
	w16(inner + 4, 19);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), SHM_DROP_BAD_INNER);
}

/* Hop-by-hop (8), routing (16), destination options (8), fragment, UDP (12). */
static size_t mk_ipv6_ext(uint8_t *p, uint16_t frag)
{
	size_t off = 40;

	memset(p, 0, 128);
	p[off] = IPPROTO_ROUTING;
	off += 8;
	p[off] = IPPROTO_DSTOPTS;
	p[off + 1] = 1;
	off += 16;
	p[off] = IPPROTO_FRAGMENT;
	off += 8;
	p[off] = IPPROTO_UDP;
	w16(p + off + 2, frag);
	off += 8;
	w16(p + off, 1000);
	w16(p + off + 2, 2000);
	w16(p + off + 4, 12);
	off += 12;
	put_ip6(p, IPPROTO_HOPOPTS, "2001:db8::5", "2001:db8:1::1", off - 40);
	return off;
}

static void test_inner_ipv6_extensions(void)
{
	struct inner_info in;
	size_t len = mk_ipv6_ext(inner, 0);

	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_UDP);
	CU_ASSERT_PTR_EQUAL(in.l4, inner + 80);
	CU_ASSERT_EQUAL(in.l4_len, 12);
	CU_ASSERT_EQUAL(in.dst_port, 2000);
	/* A first fragment (M set), then a later one. */
	mk_ipv6_ext(inner, 0x0001);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), 0);
	CU_ASSERT_PTR_EQUAL(in.l4, inner + 80);
	mk_ipv6_ext(inner, 0x0008);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), 0);
	CU_ASSERT_PTR_NULL(in.l4);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_UDP);
	/* An extension header that runs past the payload length. */
	mk_ipv6_ext(inner, 0);
	inner[48 + 1] = 10;
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), SHM_DROP_BAD_INNER);
	/* Every truncation of the chain. */
	for (size_t plen = 0; plen < 52; plen++) {
		mk_ipv6_ext(inner, 0);
		w16(inner + 4, (uint16_t)plen);
		CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET6, &in), SHM_DROP_BAD_INNER);
	}
}

static void test_inner_ipv6_too_many_extensions(void)
{
	struct inner_info in;
	size_t off = 40;

	memset(inner, 0, 256);
	for (int i = 0; i < 8; i++) {
		inner[off] = IPPROTO_DSTOPTS;
		off += 8;
	}
	inner[off - 8] = IPPROTO_NONE;
	put_ip6(inner, IPPROTO_DSTOPTS, "2001:db8::5", "2001:db8:1::1", off - 40);
	/* Eight are walked (the last names "no next header")... */
	CU_ASSERT_EQUAL(inner_parse(inner, off, AF_INET6, &in), 0);
	CU_ASSERT_EQUAL(in.proto, IPPROTO_NONE);
	/* ...a ninth is too many. */
	inner[off - 8] = IPPROTO_DSTOPTS;
	inner[off] = IPPROTO_NONE;
	off += 8;
	w16(inner + 4, (uint16_t)(off - 40));
	CU_ASSERT_EQUAL(inner_parse(inner, off, AF_INET6, &in), SHM_DROP_BAD_INNER);
}

/* --- classification -------------------------------------------------------- */

/* An inner keepalive: IPv4 POP -> router, GRE with FLAGS and PROTO. */
static size_t mk_keepalive(uint8_t *p, const char *dst, uint16_t flags, uint16_t proto,
			   size_t gre_len)
{
	memset(p + 20, 0, 16);
	w16(p + 20, flags);
	w16(p + 22, proto);
	if (flags & GRE_FLAG_K)
		w32(p + 24, 0x1234);
	put_ip4(p, IPPROTO_GRE, POP_GATEWAY, dst, gre_len, 0);
	return 20 + gre_len;
}

static enum inner_kind classify(const uint8_t *p, size_t len, int family)
{
	struct inner_info in;

	CU_ASSERT_EQUAL_FATAL(inner_parse(p, len, family, &in), 0);
	return inner_classify(p, &in, a4(SITE_SOURCE), a4(PROBE_IP));
}

static void test_classify_keepalive(void)
{
	size_t len;

	len = mk_keepalive(inner, SITE_SOURCE, 0, 0, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_KEEPALIVE);
	len = mk_keepalive(inner, SITE_SOURCE, GRE_FLAG_K, 0, 8);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_KEEPALIVE);
	len = mk_keepalive(inner, SITE_SOURCE, GRE_FLAG_C | GRE_FLAG_K | GRE_FLAG_S, 0, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_KEEPALIVE);

	/* Addressed elsewhere: the POP would be a reflector. */
	len = mk_keepalive(inner, "203.0.113.9", 0, 0, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	/* Not protocol 0, or a malformed inner GRE header. */
	len = mk_keepalive(inner, SITE_SOURCE, 0, GRE_PROTO_IPV4, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, GRE_FLAG_K, 0, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, 1, 0, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, GRE_FLAG_R, 0, 8);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, 0x0100, 0, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, 0, 0, 3);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	len = mk_keepalive(inner, SITE_SOURCE, 0, 0, 0);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	/* A later fragment of GRE. */
	len = mk_keepalive(inner, SITE_SOURCE, 0, 0, 4);
	w16(inner + 6, 0x0010);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_REFLECT);
	/* GRE in IPv6 is never a keepalive. */
	memset(inner + 40, 0, 4);
	put_ip6(inner, IPPROTO_GRE, "2001:db8::1", "2001:db8::2", 4);
	CU_ASSERT_EQUAL(classify(inner, 44, AF_INET6), INNER_REFLECT);
}

static void test_classify_probe(void)
{
	size_t len;

	len = mk_icmp4(inner, PROBE_IP, 8, 0, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_PROBE);
	len = mk_icmp4(inner, "100.64.255.2", 8, 0, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_icmp4(inner, PROBE_IP, 0, 0, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_icmp4(inner, PROBE_IP, 8, 1, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_icmp4(inner, PROBE_IP, 13, 0, 16);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_icmp4(inner, PROBE_IP, 8, 0, 16);
	w16(inner + 6, 0x2000);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);

	/* Probe IP 0.0.0.0: probes are off. */
	struct inner_info in;
	len = mk_icmp4(inner, "0.0.0.0", 8, 0, 16);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(inner_classify(inner, &in, a4(SITE_SOURCE), a4("0.0.0.0")), INNER_DATA);
	len = mk_icmp4(inner, PROBE_IP, 8, 0, 16);
	CU_ASSERT_EQUAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_EQUAL(inner_classify(inner, &in, a4(SITE_SOURCE), a4("0.0.0.0")), INNER_DATA);
}

static void test_classify_data(void)
{
	size_t len = mk_tcp4(inner, 443, 0x02, NULL, 0, 0);

	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_udp4(inner, "10.1.0.5", PROBE_IP, 4);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET), INNER_DATA);
	len = mk_tcp6(inner, 80, 0x10, NULL, 0, 0);
	CU_ASSERT_EQUAL(classify(inner, len, AF_INET6), INNER_DATA);
}

/* --- policy ---------------------------------------------------------------- */

static void test_policy_matrix(void)
{
	enum { TCP80, TCP443, TCP8080, TCP22, UDP53, ICMP4, ICMP6, GRE, ESP, TCPFRAG, ICMP_IN6,
	       N_PKT };
	static const uint8_t svc[] = {
		0,
		SHM_SVC_BIT(SHM_SVC_SWG),
		SHM_SVC_BIT(SHM_SVC_CFW),
		SHM_SVC_BIT(SHM_SVC_SWG) | SHM_SVC_BIT(SHM_SVC_CFW),
	};
	/* Rows: svc[]; columns: the packets above. */
	static const bool expect[4][N_PKT] = {
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0 },
		{ 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0 },
	};
	static const uint16_t http_ports[] = { 8443, 8080 };
	struct inner_info pkt[N_PKT];
	static const uint8_t tcp_hdr[20];

	memset(pkt, 0, sizeof(pkt));
	for (int i = 0; i < N_PKT; i++) {
		pkt[i].family = AF_INET;
		pkt[i].proto = IPPROTO_TCP;
		pkt[i].l4 = tcp_hdr;
		pkt[i].l4_len = sizeof(tcp_hdr);
	}
	pkt[TCP80].dst_port = 80;
	pkt[TCP443].dst_port = 443;
	pkt[TCP8080].dst_port = 8080;
	pkt[TCP22].dst_port = 22;
	pkt[UDP53].proto = IPPROTO_UDP;
	pkt[UDP53].dst_port = 53;
	pkt[ICMP4].proto = IPPROTO_ICMP;
	pkt[ICMP6].family = AF_INET6;
	pkt[ICMP6].proto = IPPROTO_ICMPV6;
	pkt[GRE].proto = IPPROTO_GRE;
	pkt[ESP].proto = IPPROTO_ESP;
	pkt[TCPFRAG].l4 = NULL;
	pkt[ICMP_IN6].family = AF_INET6;
	pkt[ICMP_IN6].proto = IPPROTO_ICMP;
	for (int s = 0; s < 4; s++)
		for (int p = 0; p < N_PKT; p++)
			CU_ASSERT_EQUAL(policy_allows(&pkt[p], svc[s], http_ports, 2),
					expect[s][p]);
	/* Without the extra ports swg is 80 and 443 only. */
	CU_ASSERT_FALSE(policy_allows(&pkt[TCP8080], svc[1], http_ports, 0));
	CU_ASSERT_TRUE(policy_allows(&pkt[TCP443], svc[1], NULL, 0));
}

/* --- MSS clamping ---------------------------------------------------------- */

/*
 * scapy: IP(src="10.1.0.5", dst="93.184.216.34", id=5, flags="DF")/
 *   TCP(sport=40000, dport=443, flags="S", seq=1000, options=[("MSS", M),
 *   ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)])
 * with M = 1460, and the same with M = 1436 for the expected result.
 */
static const uint8_t scapy_syn4[] = {
	0x45, 0x00, 0x00, 0x3c, 0x00, 0x05, 0x40, 0x00, 0x40, 0x06, 0xfa, 0xd6,
	0x0a, 0x01, 0x00, 0x05, 0x5d, 0xb8, 0xd8, 0x22, 0x9c, 0x40, 0x01, 0xbb,
	0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0x20, 0x00,
	0x46, 0x3b, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};
static const uint8_t scapy_syn4_mss1436[] = {
	0x45, 0x00, 0x00, 0x3c, 0x00, 0x05, 0x40, 0x00, 0x40, 0x06, 0xfa, 0xd6,
	0x0a, 0x01, 0x00, 0x05, 0x5d, 0xb8, 0xd8, 0x22, 0x9c, 0x40, 0x01, 0xbb,
	0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0x20, 0x00,
	0x46, 0x53, 0x00, 0x00, 0x02, 0x04, 0x05, 0x9c, 0x04, 0x02, 0x08, 0x0a,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

/*
 * scapy: IPv6(src="2001:db8::5", dst="2001:db8:1::1")/TCP(sport=40001,
 *   dport=80, flags="S", seq=2000, options=[("NOP", None), ("MSS", M),
 *   ("WScale", 7)]) with M = 1440, and M = 1416 for the result. The MSS
 * value sits at an odd offset.
 */
static const uint8_t scapy_syn6[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x9c, 0x41, 0x00, 0x50, 0x00, 0x00, 0x07, 0xd0,
	0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x20, 0x00, 0xc7, 0xee, 0x00, 0x00,
	0x01, 0x02, 0x04, 0x05, 0xa0, 0x03, 0x03, 0x07,
};
static const uint8_t scapy_syn6_mss1416[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x9c, 0x41, 0x00, 0x50, 0x00, 0x00, 0x07, 0xd0,
	0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x20, 0x00, 0xdf, 0xee, 0x00, 0x00,
	0x01, 0x02, 0x04, 0x05, 0x88, 0x03, 0x03, 0x07,
};

/* Clamp P (LEN bytes of FAMILY) to MSS; returns what tcp_clamp_mss said. */
static bool clamp(uint8_t *p, size_t len, int family, uint16_t mss)
{
	struct inner_info in;

	CU_ASSERT_EQUAL_FATAL(inner_parse(p, len, family, &in), 0);
	return tcp_clamp_mss(p, &in, mss);
}

static void test_mss_scapy(void)
{
	uint8_t p[128];

	memcpy(p, scapy_syn4, sizeof(scapy_syn4));
	CU_ASSERT_TRUE(clamp(p, sizeof(scapy_syn4), AF_INET, 1436));
	CU_ASSERT_EQUAL(memcmp(p, scapy_syn4_mss1436, sizeof(scapy_syn4)), 0);
	memcpy(p, scapy_syn6, sizeof(scapy_syn6));
	CU_ASSERT_TRUE(clamp(p, sizeof(scapy_syn6), AF_INET6, 1416));
	CU_ASSERT_EQUAL(memcmp(p, scapy_syn6_mss1416, sizeof(scapy_syn6)), 0);
}

/* Every MSS position parity, family and many values against a full recompute. */
static void test_mss_clamp_checksums(void)
{
	static const uint8_t lead[][4] = {
		{ 2, 4, 0, 0 },
		{ 1, 2, 4, 0 },		/* NOP, then MSS at an odd offset */
	};
	uint8_t opts[8], p[256];
	size_t len;

	for (unsigned v = 0; v < 2; v++) {
		for (unsigned old = 536; old < 65535; old += 977) {
			memcpy(opts, lead[v], 4);
			memset(opts + 4, 1, 4);
			w16(opts + 2 + v, (uint16_t)old);
			len = mk_tcp4(p, 443, 0x02, opts, 8, 33);
			CU_ASSERT_EQUAL(clamp(p, len, AF_INET, 1436), old > 1436);
			CU_ASSERT_EQUAL(r16(p + 40 + 2 + v), old > 1436 ? 1436 : old);
			CU_ASSERT_TRUE(l4_valid4(p));
			len = mk_tcp6(p, 443, 0x12, opts, 8, 33);
			CU_ASSERT_EQUAL(clamp(p, len, AF_INET6, 1416), old > 1416);
			CU_ASSERT_EQUAL(r16(p + 60 + 2 + v), old > 1416 ? 1416 : old);
			CU_ASSERT_TRUE(l4_valid6(p));
		}
	}
}

static void test_mss_after_other_options(void)
{
	/* SACK-permitted, timestamps, NOP, window scale, then MSS. */
	static const uint8_t opts[] = {
		4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 2, 4, 0x23, 0x28,
	};
	uint8_t p[128];
	size_t len = mk_tcp4(p, 443, 0x02, opts, sizeof(opts), 0);

	CU_ASSERT_TRUE(clamp(p, len, AF_INET, 1436));
	CU_ASSERT_EQUAL(r16(p + 20 + 20 + 18), 1436);
	CU_ASSERT_TRUE(l4_valid4(p));
}

/* Options that must stop the walk: the packet comes back unchanged. */
static void test_mss_malformed(void)
{
	static const uint8_t cases[][8] = {
		{ 0, 0, 0, 0, 2, 4, 0x05, 0xb4 },	/* EOL before MSS */
		{ 3, 0, 0, 0, 2, 4, 0x05, 0xb4 },	/* option length 0 */
		{ 3, 1, 0, 0, 2, 4, 0x05, 0xb4 },	/* option length 1 */
		{ 3, 9, 0, 0, 2, 4, 0x05, 0xb4 },	/* runs past the header */
		{ 2, 3, 0x05, 0xb4, 1, 1, 1, 1 },	/* MSS of length 3 */
		{ 2, 5, 0x05, 0xb4, 0, 1, 1, 1 },	/* MSS of length 5 */
		{ 1, 1, 1, 1, 1, 1, 1, 2 },		/* MSS kind in the last byte */
		{ 1, 1, 1, 1, 1, 1, 2, 4 },		/* MSS without its value */
		{ 1, 1, 1, 1, 1, 1, 1, 1 },		/* absent */
	};
	uint8_t p[128], before[128];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = mk_tcp4(p, 443, 0x02, cases[i], 8, 0);
		memcpy(before, p, len);
		CU_ASSERT_FALSE(clamp(p, len, AF_INET, 1000));
		CU_ASSERT_EQUAL(memcmp(p, before, len), 0);
	}
	/* No options at all, and an MSS on a segment that is not a SYN. */
	len = mk_tcp4(p, 443, 0x02, NULL, 0, 0);
	CU_ASSERT_FALSE(clamp(p, len, AF_INET, 1000));
	len = mk_tcp4(p, 443, 0x10, opt_mss1460, 4, 0);
	memcpy(before, p, len);
	CU_ASSERT_FALSE(clamp(p, len, AF_INET, 1000));
	CU_ASSERT_EQUAL(memcmp(p, before, len), 0);
	/* Not TCP. */
	len = mk_udp4(p, "10.1.0.5", "8.8.8.8", 8);
	CU_ASSERT_FALSE(clamp(p, len, AF_INET, 1000));
}

/* --- ICMP too big ---------------------------------------------------------- */

/*
 * scapy: big = IP(src="10.1.0.5", dst="93.184.216.34", id=7, flags="DF")/
 *   UDP(sport=1000, dport=2000)/(bytes(range(256)) * 6)[:1472]
 *   IP(src="100.64.255.1", dst="10.1.0.5", id=0, ttl=64, tos=0xc0, flags=0)/
 *   ICMP(type=3, code=4, nexthopmtu=1476)/raw(big)[:548]
 * Its first 28 bytes; the rest is the quoted original.
 */
static const uint8_t scapy_frag_needed_head[] = {
	0x45, 0xc0, 0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x0a, 0xb6,
	0x64, 0x40, 0xff, 0x01, 0x0a, 0x01, 0x00, 0x05, 0x03, 0x04, 0x35, 0xc5,
	0x00, 0x00, 0x05, 0xc4,
};

/* The 1500-byte UDP packet of the scapy vector above, byte by byte. */
static size_t mk_big_udp4(uint8_t *p)
{
	size_t len = mk_udp4(p, "10.1.0.5", "93.184.216.34", 1472);

	w16(p + 4, 7);
	w16(p + 6, 0x4000);
	p[8] = 64;
	fix_ip4(p);
	w16(p + 20, 1000);
	w16(p + 22, 2000);
	w16(p + 26, 0x2363);	/* scapy's UDP checksum */
	return len;
}

static void test_frag_needed(void)
{
	struct inner_info in;
	uint8_t out[1500];
	size_t len = mk_big_udp4(inner), n;

	CU_ASSERT_EQUAL(len, 1500);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
	n = icmp_build_too_big(out, sizeof(out), inner, &in, 1476, a4(PROBE_IP), NULL);
	CU_ASSERT_EQUAL_FATAL(n, 576);
	CU_ASSERT_EQUAL(memcmp(out, scapy_frag_needed_head, 28), 0);
	CU_ASSERT_EQUAL(memcmp(out + 28, inner, 548), 0);
	/* The same, checked field by field with the reference sum. */
	CU_ASSERT_EQUAL(out[0], 0x45);
	CU_ASSERT_EQUAL(r16(out + 2), 576);
	CU_ASSERT_EQUAL(r16(out + 6), 0);
	CU_ASSERT_EQUAL(out[8], 64);
	CU_ASSERT_EQUAL(out[9], IPPROTO_ICMP);
	CU_ASSERT_TRUE(ref_valid(out, 20));
	CU_ASSERT_TRUE(is_addr4(out + 12, PROBE_IP));
	CU_ASSERT_TRUE(is_addr4(out + 16, "10.1.0.5"));
	CU_ASSERT_EQUAL(out[20], 3);
	CU_ASSERT_EQUAL(out[21], 4);
	CU_ASSERT_EQUAL(r16(out + 26), 1476);
	CU_ASSERT_TRUE(ref_valid(out + 20, 556));

	/* A small original is quoted whole; a huge MTU saturates the field. */
	len = mk_tcp4(inner, 443, 0x10, NULL, 0, 60);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
	n = icmp_build_too_big(out, sizeof(out), inner, &in, 70000, a4(PROBE_IP), NULL);
	CU_ASSERT_EQUAL(n, 28 + len);
	CU_ASSERT_EQUAL(r16(out + 26), 0xffff);
	CU_ASSERT_EQUAL(memcmp(out + 28, inner, len), 0);
	CU_ASSERT_TRUE(ref_valid(out, 20));
	CU_ASSERT_TRUE(ref_valid(out + 20, n - 20));
	/* A smaller buffer gets a shorter quote, down to header + 8 bytes. */
	n = icmp_build_too_big(out, 28 + 28, inner, &in, 1476, a4(PROBE_IP), NULL);
	CU_ASSERT_EQUAL(n, 56);
	CU_ASSERT_TRUE(ref_valid(out + 20, n - 20));
	CU_ASSERT_EQUAL(icmp_build_too_big(out, 55, inner, &in, 1476, a4(PROBE_IP), NULL), 0);
}

static size_t too_big4(uint8_t *p, size_t len)
{
	struct inner_info in;
	uint8_t out[600];

	CU_ASSERT_EQUAL_FATAL(inner_parse(p, len, AF_INET, &in), 0);
	return icmp_build_too_big(out, sizeof(out), p, &in, 1476, a4(PROBE_IP), NULL);
}

static void test_frag_needed_refused(void)
{
	static const char *const bad_src[] = {
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.1.1.1", "240.0.0.1",
		"255.255.255.255",
	};
	size_t len;

	for (size_t i = 0; i < sizeof(bad_src) / sizeof(bad_src[0]); i++) {
		len = mk_udp4(inner, bad_src[i], "93.184.216.34", 100);
		CU_ASSERT_EQUAL(too_big4(inner, len), 0);
	}
	len = mk_udp4(inner, "10.1.0.5", "224.0.0.251", 100);
	CU_ASSERT_EQUAL(too_big4(inner, len), 0);
	len = mk_udp4(inner, "10.1.0.5", "255.255.255.255", 100);
	CU_ASSERT_EQUAL(too_big4(inner, len), 0);
	/* ICMP errors are never answered; queries are. */
	for (uint8_t type = 0; type < 20; type++) {
		bool query = type == 0 || type == 8 || type == 13 || type == 15 ||
			     type == 17 || type == 9 || type == 10 || type == 14 ||
			     type == 16 || type == 18;

		len = mk_icmp4(inner, "93.184.216.34", type, 0, 100);
		CU_ASSERT_EQUAL(too_big4(inner, len) != 0, query);
	}
	/* A later fragment, then a first one (answered). */
	len = mk_udp4(inner, "10.1.0.5", "93.184.216.34", 100);
	w16(inner + 6, 0x4000 | 0x0010);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(too_big4(inner, len), 0);
	w16(inner + 6, 0x2000);
	fix_ip4(inner);
	CU_ASSERT_EQUAL(too_big4(inner, len), 28 + len);
}

static void test_packet_too_big(void)
{
	struct inner_info in;
	struct in6_addr from = a6("2001:db8:ffff::1");
	uint8_t out[1500];
	uint32_t sum;
	size_t len = mk_tcp6(inner, 443, 0x10, NULL, 0, 1440), n;

	CU_ASSERT_EQUAL(len, 1500);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET6, &in), 0);
	n = icmp_build_too_big(out, sizeof(out), inner, &in, 1456, a4(PROBE_IP), &from);
	CU_ASSERT_EQUAL_FATAL(n, 1280);
	CU_ASSERT_EQUAL(out[0] >> 4, 6);
	CU_ASSERT_EQUAL(r16(out + 4), 1240);
	CU_ASSERT_EQUAL(out[6], IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL(out[7], 64);
	CU_ASSERT_EQUAL(memcmp(out + 8, &from, 16), 0);
	CU_ASSERT_EQUAL(memcmp(out + 24, inner + 8, 16), 0);
	CU_ASSERT_EQUAL(out[40], 2);
	CU_ASSERT_EQUAL(out[41], 0);
	CU_ASSERT_EQUAL(r32(out + 44), 1456);
	CU_ASSERT_EQUAL(memcmp(out + 48, inner, 1232), 0);
	sum = ref_add(0, out + 8, 32) + 1240 + IPPROTO_ICMPV6;
	CU_ASSERT_EQUAL(ref_fold(ref_add(sum, out + 40, 1240)), 0xffff);
	CU_ASSERT_TRUE(l4_valid6(out));

	/* A small one is quoted whole. */
	len = mk_tcp6(inner, 443, 0x10, NULL, 0, 5);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET6, &in), 0);
	n = icmp_build_too_big(out, sizeof(out), inner, &in, 1280, a4(PROBE_IP), &from);
	CU_ASSERT_EQUAL(n, 48 + len);
	CU_ASSERT_TRUE(l4_valid6(out));
	CU_ASSERT_EQUAL(icmp_build_too_big(out, sizeof(out), inner, &in, 1280, a4(PROBE_IP),
					   NULL), 0);
}

static size_t too_big6(const char *src, uint8_t next, uint8_t type)
{
	struct inner_info in;
	struct in6_addr from = a6("2001:db8:ffff::1");
	uint8_t out[1300];

	memset(inner + 40, 0, 64);
	inner[40] = type;
	w16(inner + 44, 64);	/* the UDP length, inside the ICMPv6 body otherwise */
	put_ip6(inner, next, src, "2001:db8:1::1", 64);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, 104, AF_INET6, &in), 0);
	return icmp_build_too_big(out, sizeof(out), inner, &in, 1280, a4(PROBE_IP), &from);
}

static void test_packet_too_big_refused(void)
{
	CU_ASSERT_EQUAL(too_big6("2001:db8::5", IPPROTO_UDP, 0), 152);
	CU_ASSERT_EQUAL(too_big6("::", IPPROTO_UDP, 0), 0);
	CU_ASSERT_EQUAL(too_big6("::1", IPPROTO_UDP, 0), 0);
	CU_ASSERT_EQUAL(too_big6("ff02::1", IPPROTO_UDP, 0), 0);
	for (unsigned type = 0; type < 256; type++)
		CU_ASSERT_EQUAL(too_big6("2001:db8::5", IPPROTO_ICMPV6, (uint8_t)type) != 0,
				type >= 128);
	/* A later fragment. */
	struct inner_info in;
	uint8_t out[1300];
	size_t len = mk_ipv6_ext(inner, 0x0008);

	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET6, &in), 0);
	CU_ASSERT_EQUAL(icmp_build_too_big(out, sizeof(out), inner, &in, 1280, a4(PROBE_IP),
					   &in6addr_loopback), 0);
}

/* --- echo reply ------------------------------------------------------------ */

/*
 * scapy: IP(src="10.1.0.5", dst="100.64.255.1", id=9, ttl=61)/ICMP(type=8,
 *   id=0x4242, seq=3)/b"probe-payload", and the reply it expects:
 *   IP(src="100.64.255.1", dst="10.1.0.5", id=9, ttl=64)/ICMP(type=0, ...)
 */
static const uint8_t scapy_echo[] = {
	0x45, 0x00, 0x00, 0x29, 0x00, 0x09, 0x00, 0x00, 0x3d, 0x01, 0x10, 0x84,
	0x0a, 0x01, 0x00, 0x05, 0x64, 0x40, 0xff, 0x01, 0x08, 0x00, 0xb3, 0x88,
	0x42, 0x42, 0x00, 0x03, 0x70, 0x72, 0x6f, 0x62, 0x65, 0x2d, 0x70, 0x61,
	0x79, 0x6c, 0x6f, 0x61, 0x64,
};
static const uint8_t scapy_echo_reply[] = {
	0x45, 0x00, 0x00, 0x29, 0x00, 0x09, 0x00, 0x00, 0x40, 0x01, 0x0d, 0x84,
	0x64, 0x40, 0xff, 0x01, 0x0a, 0x01, 0x00, 0x05, 0x00, 0x00, 0xbb, 0x88,
	0x42, 0x42, 0x00, 0x03, 0x70, 0x72, 0x6f, 0x62, 0x65, 0x2d, 0x70, 0x61,
	0x79, 0x6c, 0x6f, 0x61, 0x64,
};

static void test_echo_reply(void)
{
	struct inner_info in;
	uint8_t p[64];
	size_t len;

	memcpy(p, scapy_echo, sizeof(scapy_echo));
	CU_ASSERT_EQUAL_FATAL(inner_parse(p, sizeof(scapy_echo), AF_INET, &in), 0);
	CU_ASSERT_EQUAL(inner_classify(p, &in, a4(SITE_SOURCE), a4(PROBE_IP)), INNER_PROBE);
	CU_ASSERT_TRUE(icmp_echo_to_reply(p, &in));
	CU_ASSERT_EQUAL(memcmp(p, scapy_echo_reply, sizeof(scapy_echo)), 0);

	for (size_t data = 0; data < 40; data += 3) {
		len = mk_icmp4(inner, PROBE_IP, 8, 0, data);
		CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
		CU_ASSERT_TRUE(icmp_echo_to_reply(inner, &in));
		CU_ASSERT_EQUAL(inner[20], 0);
		CU_ASSERT_EQUAL(inner[8], 64);
		CU_ASSERT_TRUE(is_addr4(inner + 12, PROBE_IP));
		CU_ASSERT_TRUE(is_addr4(inner + 16, "10.1.0.5"));
		CU_ASSERT_TRUE(ref_valid(inner, 20));
		CU_ASSERT_TRUE(ref_valid(inner + 20, len - 20));
	}
}

static void test_echo_reply_refused(void)
{
	struct inner_info in;
	size_t len;

	len = mk_icmp4(inner, PROBE_IP, 0, 0, 8);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_FALSE(icmp_echo_to_reply(inner, &in));
	CU_ASSERT_EQUAL(inner[20], 0);
	len = mk_icmp4(inner, PROBE_IP, 8, 0, 8);
	w16(inner + 6, 0x2000);
	fix_ip4(inner);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_FALSE(icmp_echo_to_reply(inner, &in));
	CU_ASSERT_EQUAL(inner[20], 8);
	len = mk_udp4(inner, "10.1.0.5", PROBE_IP, 8);
	CU_ASSERT_EQUAL_FATAL(inner_parse(inner, len, AF_INET, &in), 0);
	CU_ASSERT_FALSE(icmp_echo_to_reply(inner, &in));
}

/* --- encapsulation --------------------------------------------------------- */

static void test_encap_header(void)
{
	struct gre_packet g;
	size_t ilen = mk_inner_udp(), n;

	n = gre_build_header(buf, a4(OUTER_DST), a4(OUTER_SRC), false, 0, GRE_PROTO_IPV4,
			     ilen, 0x4321);
	CU_ASSERT_EQUAL_FATAL(n, 24);
	CU_ASSERT_EQUAL(buf[0], 0x45);
	CU_ASSERT_EQUAL(buf[1], 0);
	CU_ASSERT_EQUAL(r16(buf + 2), 24 + ilen);
	CU_ASSERT_EQUAL(r16(buf + 4), 0x4321);
	CU_ASSERT_EQUAL(r16(buf + 6), 0);
	CU_ASSERT_EQUAL(buf[8], 64);
	CU_ASSERT_EQUAL(buf[9], IPPROTO_GRE);
	CU_ASSERT_TRUE(ref_valid(buf, 20));
	CU_ASSERT_EQUAL(r16(buf + 20), 0);
	CU_ASSERT_EQUAL(r16(buf + 22), GRE_PROTO_IPV4);
	memcpy(buf + n, inner, ilen);
	CU_ASSERT_EQUAL(gre_parse(buf, n + ilen, &g), 0);
	CU_ASSERT_EQUAL(g.src.s_addr, a4(OUTER_DST).s_addr);
	CU_ASSERT_EQUAL(g.inner_len, ilen);

	n = gre_build_header(buf, a4(OUTER_DST), a4(OUTER_SRC), true, 0xcafe0001,
			     GRE_PROTO_IPV6, 1400, 1);
	CU_ASSERT_EQUAL_FATAL(n, 28);
	CU_ASSERT_EQUAL(r16(buf + 2), 1428);
	CU_ASSERT_TRUE(ref_valid(buf, 20));
	CU_ASSERT_EQUAL(r16(buf + 20), GRE_FLAG_K);
	CU_ASSERT_EQUAL(r16(buf + 22), GRE_PROTO_IPV6);
	CU_ASSERT_EQUAL(r32(buf + 24), 0xcafe0001);
	memset(buf + n, 0, 1400);
	CU_ASSERT_EQUAL(gre_parse(buf, n + 1400, &g), 0);
	CU_ASSERT_EQUAL(g.key, 0xcafe0001);

	CU_ASSERT_EQUAL(gre_build_header(buf, a4(OUTER_DST), a4(OUTER_SRC), true, 1,
					 GRE_PROTO_IPV4, 65535 - 28, 1), 28);
	CU_ASSERT_EQUAL(r16(buf + 2), 65535);
	CU_ASSERT_EQUAL(gre_build_header(buf, a4(OUTER_DST), a4(OUTER_SRC), true, 1,
					 GRE_PROTO_IPV4, 65535 - 27, 1), 0);
}

/* --- token bucket ---------------------------------------------------------- */

#define MS	1000000ULL
#define SEC	1000000000ULL

/* Take packets of SIZE until refused; the bytes taken. */
static uint64_t drain(struct token_bucket *tb, uint64_t now, uint64_t rate, size_t size)
{
	uint64_t taken = 0;

	for (int i = 0; i < 10000000 && token_bucket_take(tb, now, rate, size); i++)
		taken += size;
	return taken;
}

static void test_bucket_burst(void)
{
	struct token_bucket tb = { 0 };

	/* 1 Gbit/s: 10 ms is 1.25 MB. */
	CU_ASSERT_EQUAL(drain(&tb, 5 * SEC, 1000000000, 1000), 1250000);
	/* 1 Mbit/s: 10 ms would be 1250 bytes, the floor is 64 KiB. */
	memset(&tb, 0, sizeof(tb));
	CU_ASSERT_EQUAL(drain(&tb, 5 * SEC, 1000000, 1), 65536);
	/* Unlimited. */
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_TRUE(token_bucket_take(&tb, 0, 0, 65535));
}

static void test_bucket_refill(void)
{
	struct token_bucket tb = { 0 };
	uint64_t now = 7 * SEC, rate = 1000000000;

	drain(&tb, now, rate, 1);
	CU_ASSERT_FALSE(token_bucket_take(&tb, now, rate, 1));
	/* 1 ms at 1 Gbit/s is exactly 125000 bytes. */
	now += MS;
	CU_ASSERT_FALSE(token_bucket_take(&tb, now, rate, 125001));
	CU_ASSERT_TRUE(token_bucket_take(&tb, now, rate, 125000));
	CU_ASSERT_FALSE(token_bucket_take(&tb, now, rate, 1));
	/* 8 ns is one byte; no fraction is lost over many tiny steps. */
	for (int i = 0; i < 8000; i++)
		token_bucket_take(&tb, ++now, rate, 0);
	CU_ASSERT_TRUE(token_bucket_take(&tb, now, rate, 1000));
	CU_ASSERT_FALSE(token_bucket_take(&tb, now, rate, 1));
	/* A long pause refills to the burst, not beyond. */
	now += 3600 * SEC;
	CU_ASSERT_EQUAL(drain(&tb, now, rate, 1000), 1250000);
	/* So does a short one on a bucket that is nearly full already. */
	now += 9 * MS;
	CU_ASSERT_TRUE(token_bucket_take(&tb, now, rate, 1000));
	now += 5 * MS;
	CU_ASSERT_EQUAL(drain(&tb, now, rate, 1000), 1250000);
}

/* Offered at twice the rate for one second: rate plus one burst goes through. */
static void test_bucket_rate(void)
{
	struct token_bucket tb = { 0 };
	uint64_t rate = 100000000, now = SEC, passed = 0;

	for (int i = 0; i < 16667; i++) {
		now += 60000;	/* 1500 bytes every 60 us: 200 Mbit/s */
		if (token_bucket_take(&tb, now, rate, 1500))
			passed += 1500;
	}
	/* 12.5 MB in the second plus the 125 kB burst, within one packet. */
	CU_ASSERT(passed >= 12500000 + 125000 - 1500 - 1500);
	CU_ASSERT(passed <= 12500000 + 125000 + 1500);
}

static void test_bucket_time_backwards(void)
{
	struct token_bucket tb = { 0 };
	uint64_t rate = 8000000;	/* 1 MB/s, burst 64 KiB */

	drain(&tb, 100 * SEC, rate, 1);
	/* Back by a second: nothing is refilled... */
	CU_ASSERT_FALSE(token_bucket_take(&tb, 99 * SEC, rate, 1));
	/* ...and refilling counts from the earlier time on. */
	CU_ASSERT_TRUE(token_bucket_take(&tb, 99 * SEC + 10 * MS, rate, 10000));
	CU_ASSERT_FALSE(token_bucket_take(&tb, 99 * SEC + 10 * MS, rate, 1));
	/* Huge gaps and rates never overflow into a small bucket. */
	memset(&tb, 0, sizeof(tb));
	drain(&tb, 1, 1000000000000ULL, 1 << 20);
	CU_ASSERT_TRUE(token_bucket_take(&tb, UINT64_MAX, 1000000000000ULL, 1 << 20));
	CU_ASSERT_TRUE(token_bucket_take(&tb, UINT64_MAX, UINT64_MAX, SIZE_MAX));
	CU_ASSERT_FALSE(token_bucket_take(&tb, UINT64_MAX, 8, SIZE_MAX));
	/* A lower rate caps what a higher one saved. */
	memset(&tb, 0, sizeof(tb));
	CU_ASSERT_TRUE(token_bucket_take(&tb, SEC, 1000000000, 1));
	CU_ASSERT_EQUAL(drain(&tb, SEC, 1000000, 1), 65536);
}

/* --- registry -------------------------------------------------------------- */

struct test_case {
	const char *name;
	CU_TestFunc fn;
};

static const struct test_case tests[] = {
	{ "csum matches the reference", test_csum_reference },
	{ "csum chaining and folding", test_csum_chain_and_fold },
	{ "gre plain", test_gre_plain },
	{ "gre checksum right and wrong", test_gre_checksum },
	{ "gre key and sequence", test_gre_key_and_seq },
	{ "gre C+K+S", test_gre_all_options },
	{ "gre Cisco MetaData", test_gre_metadata },
	{ "gre MetaData malformed", test_gre_metadata_bad },
	{ "gre reserved and routing bits", test_gre_reserved_bits },
	{ "gre versions 1..7", test_gre_versions },
	{ "gre truncated at every length", test_gre_truncated },
	{ "gre optional fields missing", test_gre_options_missing },
	{ "gre keepalive reply", test_gre_keepalive_reply },
	{ "gre unsupported protocols", test_gre_unsupported },
	{ "outer IPv4 checks", test_outer_ipv4 },
	{ "outer IPv4 options", test_outer_options },
	{ "scapy vectors", test_scapy_vectors },
	{ "inner IPv4 TCP", test_inner_ipv4_tcp },
	{ "inner IPv4 with options", test_inner_ipv4_options },
	{ "inner IPv4 broken", test_inner_ipv4_broken },
	{ "inner IPv4 UDP and ICMP", test_inner_ipv4_udp_icmp },
	{ "inner IPv4 fragments", test_inner_ipv4_fragments },
	{ "inner IPv6", test_inner_ipv6 },
	{ "inner IPv6 extension headers", test_inner_ipv6_extensions },
	{ "inner IPv6 too many extensions", test_inner_ipv6_too_many_extensions },
	{ "classify keepalive and reflect", test_classify_keepalive },
	{ "classify probe", test_classify_probe },
	{ "classify data", test_classify_data },
	{ "policy matrix", test_policy_matrix },
	{ "mss scapy vectors", test_mss_scapy },
	{ "mss checksums v4 and v6", test_mss_clamp_checksums },
	{ "mss after other options", test_mss_after_other_options },
	{ "mss malformed options", test_mss_malformed },
	{ "icmp frag needed", test_frag_needed },
	{ "icmp frag needed refused", test_frag_needed_refused },
	{ "icmpv6 packet too big", test_packet_too_big },
	{ "icmpv6 packet too big refused", test_packet_too_big_refused },
	{ "echo reply", test_echo_reply },
	{ "echo reply refused", test_echo_reply_refused },
	{ "encapsulation header", test_encap_header },
	{ "token bucket burst", test_bucket_burst },
	{ "token bucket refill", test_bucket_refill },
	{ "token bucket rate", test_bucket_rate },
	{ "token bucket time backwards", test_bucket_time_backwards },
};

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("gatewayd packet", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			suite = NULL;
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
