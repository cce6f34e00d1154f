/*
 * GRE decapsulation and the per-packet rewrites of gatewayd.
 *
 * Every function reads the network's bytes, so every field is read through
 * a bounds check first: a length is compared with what the caller said is
 * there before any byte past it is touched, and multi-byte fields are read
 * with memcpy (no alignment is ever assumed). Nothing here allocates, logs,
 * locks or divides by a variable: these run once or several times for each
 * packet on every worker, and the whole of their cost is meant to stay
 * around 1 % of a packet's.
 *
 * Checksums: the Internet checksum is byte-order independent (RFC 1071), so
 * sums are accumulated over native-order words, 32 or 64 bytes at a time in
 * vector lanes, and only the folded 16-bit result is turned into a number. Rewrites of one field
 * (MSS clamp, echo reply) adjust the checksum incrementally (RFC 1624,
 * equation 3) instead of summing the whole segment again.
 *
 * The token bucket counts credit in units of 1e-9 bit, so that refilling is
 * a multiplication of elapsed nanoseconds by bits/s with no rounding and no
 * division, and a refill that would overflow simply fills the bucket.
 */
#include <arpa/inet.h>
#include <byteswap.h>
#include <string.h>
#include <sys/socket.h>

#include "gatewayd/packet.h"

#define IPV4_HDR_LEN		20
#define IPV4_MF			0x2000
#define IPV4_DF			0x4000
#define IPV4_OFFSET_MASK	0x1fff
#define IPV6_HDR_LEN		40
#define IPV6_EXT_MAX		8	/* extension headers walked before giving up */
#define IPV6_FRAG_OFFSET_MASK	0xfff8
#define IPV6_FRAG_MORE		0x0001
#define GRE_HDR_MIN		4
#define TCP_HDR_MIN		20
#define TCP_FLAG_SYN		0x02
#define TCPOPT_EOL		0
#define TCPOPT_NOP		1
#define TCPOPT_MSS		2
#define TCPOLEN_MSS		4
#define UDP_HDR_LEN		8
#define ICMP_HDR_LEN		8
#define ICMP_ECHO_REPLY		0
#define ICMP_UNREACH		3
#define ICMP_UNREACH_NEEDFRAG	4
#define ICMP_ECHO		8
#define ICMP6_PACKET_TOO_BIG	2
#define ICMP6_INFO_MIN		128	/* types below are errors */
/* Echo, router advertisement and solicitation, timestamp, information, mask. */
#define ICMP4_QUERY_TYPES	(1u << 0 | 1u << 8 | 1u << 9 | 1u << 10 | 1u << 13 | 1u << 14 | \
				 1u << 15 | 1u << 16 | 1u << 17 | 1u << 18)
#define ICMP4_ERROR_MAX		576	/* RFC 1812 4.3.2.3 */
#define ICMP6_ERROR_MAX		1280	/* RFC 4443 2.4 (c) */
#define IPTOS_INTERNETCONTROL	0xc0
#define REPLY_TTL		64
#define CISCO_META_VERSION	1
#define CISCO_META_UNITS	1	/* its length, in 8-byte units */
#define CISCO_META_OPT_SGT	1

/* 8 bytes of credit per bit and 1e9 per second: 1e-9 bit units. */
#define TB_UNITS_PER_BYTE	8000000000ULL
#define TB_BURST_NS		10000000ULL	/* 10 ms at the rate */
#define TB_BURST_MIN		(65536 * TB_UNITS_PER_BYTE)
#define TB_RATE_MAX		1000000000000ULL	/* 1 Tbit/s, above = unlimited */

static inline uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return ntohs(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	v = htons(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t fold64(uint64_t s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

typedef uint64_t u64x4 __attribute__((vector_size(32)));

/*
 * The sum of LEN bytes as native-order 32-bit words (an odd tail as 16-bit
 * and 8-bit ones), not folded. Two vectors of four 64-bit lanes take 64
 * bytes a turn, each lane adding the low and the high half of a word pair:
 * no carry is lost before 2^31 turns. Written with the compiler's generic
 * vectors, this is two SSE2 halves per vector by default and one AVX2
 * register where it is inlined into sum_avx2.
 */
static inline __attribute__((always_inline)) uint64_t sum_words(const uint8_t *p, size_t len)
{
	const u64x4 low = { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff };
	u64x4 a = { 0 }, b = { 0 }, x, y;
	uint64_t sum;
	uint32_t w;
	uint16_t h = 0;

	for (; len >= 64; p += 64, len -= 64) {
		memcpy(&x, p, 32);
		memcpy(&y, p + 32, 32);
		a += (x & low) + (x >> 32);
		b += (y & low) + (y >> 32);
	}
	a += b;
	sum = a[0] + a[1] + a[2] + a[3];
	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&w, p, 4);
		sum += w;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* A last odd byte is the high byte of a word padded with zero. */
		h = 0;
		memcpy(&h, p, 1);
		sum += h;
	}
	return sum;
}

static uint64_t sum_portable(const uint8_t *p, size_t len)
{
	return sum_words(p, len);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t len)
{
	return sum_words(p, len);
}

/* Chosen once, before main and so before any worker runs. */
static uint64_t (*sum_native)(const uint8_t *p, size_t len) = sum_portable;

__attribute__((constructor)) static void sum_choose(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		sum_native = sum_avx2;
}
#else
#define sum_native sum_portable
#endif

static inline uint32_t csum_with(uint64_t native, uint32_t sum)
{
	return fold64((uint64_t)ntohs(fold64(native)) + sum);
}

uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	return csum_with(sum_native(data, len), sum);
}

uint32_t csum_partial_portable(const void *data, size_t len, uint32_t sum)
{
	return csum_with(sum_portable(data, len), sum);
}

uint16_t csum_fold(uint32_t sum)
{
	return fold64(sum);
}

static inline bool csum_ok(const uint8_t *p, size_t len)
{
	return csum_partial(p, len, 0) == 0xffff;
}

/* The sum of a 20-byte IPv4 header without options, inline: every packet has two. */
static inline uint16_t ipv4_sum20(const uint8_t *p)
{
	uint32_t w[5];

	memcpy(w, p, sizeof(w));
	return ntohs(fold64((uint64_t)w[0] + w[1] + w[2] + w[3] + w[4]));
}

static inline bool ipv4_csum_ok(const uint8_t *p, size_t ihl)
{
	if (ihl == IPV4_HDR_LEN)
		return ipv4_sum20(p) == 0xffff;
	return csum_ok(p, ihl);
}

/* RFC 1624 eqn. 3: the checksum after one 16-bit word went from OLD to NEW. */
static inline uint16_t csum_replace16(uint16_t check, uint16_t old, uint16_t new)
{
	uint32_t s = (uint32_t)(uint16_t)~check + (uint16_t)~old + new;

	return (uint16_t)~csum_fold(s);
}

/* Bytes of a GRE header with these flags: 4, plus 4 per optional field. */
static inline size_t gre_header_len(uint16_t flags)
{
	return GRE_HDR_MIN + ((flags >> 13) & 4) + ((flags >> 11) & 4) + ((flags >> 10) & 4);
}

static inline bool gre_flags_ok(uint16_t flags)
{
	return !(flags & (GRE_FLAG_R | GRE_FLAGS_RESERVED | GRE_VERSION_MASK));
}

/* The outer IPv4 header: returns its length, or 0 if it is not usable GRE. */
static size_t outer_check(const uint8_t *pkt, size_t len, size_t *tot_len)
{
	size_t ihl, tot;

	if (len < IPV4_HDR_LEN || pkt[0] >> 4 != 4)
		return 0;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	tot = get16(pkt + 2);
	if (ihl < IPV4_HDR_LEN || tot < ihl || tot > len)
		return 0;
	if (pkt[9] != IPPROTO_GRE || get16(pkt + 6) & (IPV4_MF | IPV4_OFFSET_MASK))
		return 0;
	if (!ipv4_csum_ok(pkt, ihl))
		return 0;
	*tot_len = tot;
	return ihl;
}

/* Skip the Cisco MetaData header at OUT->inner; its ethertype becomes proto. */
static int meta_skip(struct gre_packet *out)
{
	const uint8_t *m = out->inner;

	if (out->inner_len < CISCO_META_LEN || m[2] != CISCO_META_VERSION ||
	    m[3] != CISCO_META_UNITS)
		return SHM_DROP_BAD_HEADER;
	out->has_meta = true;
	out->proto = get16(m);
	if (get16(m + 4) == CISCO_META_OPT_SGT)
		out->sgt = get16(m + 6);
	out->inner += CISCO_META_LEN;
	out->inner_len -= CISCO_META_LEN;
	return 0;
}

/* The GRE header of LEN bytes (header and payload) at GRE into OUT. */
static int gre_header_parse(const uint8_t *gre, size_t len, struct gre_packet *out)
{
	size_t hlen, off = GRE_HDR_MIN;
	uint16_t flags;

	if (len < GRE_HDR_MIN)
		return SHM_DROP_BAD_HEADER;
	flags = get16(gre);
	hlen = gre_header_len(flags);
	if (!gre_flags_ok(flags) || hlen > len)
		return SHM_DROP_BAD_HEADER;
	if (flags & GRE_FLAG_C) {
		if (!csum_ok(gre, len))
			return SHM_DROP_BAD_CHECKSUM;
		off += 4;
	}
	out->flags = flags;
	out->proto = get16(gre + 2);
	out->has_key = flags & GRE_FLAG_K;
	if (out->has_key) {
		out->key = get32(gre + off);
		off += 4;
	}
	out->has_seq = flags & GRE_FLAG_S;
	if (out->has_seq)
		out->seq = get32(gre + off);
	out->inner = gre + hlen;
	out->inner_len = len - hlen;
	return 0;
}

int gre_parse(const uint8_t *pkt, size_t len, struct gre_packet *out)
{
	size_t ihl, tot = 0;
	int err;

	memset(out, 0, sizeof(*out));
	ihl = outer_check(pkt, len, &tot);
	if (!ihl)
		return SHM_DROP_BAD_HEADER;
	memcpy(&out->src, pkt + 12, 4);
	memcpy(&out->dst, pkt + 16, 4);
	err = gre_header_parse(pkt + ihl, tot - ihl, out);
	if (err)
		return err;
	if (out->proto == GRE_PROTO_CISCO_META) {
		err = meta_skip(out);
		if (err)
			return err;
	}
	switch (out->proto) {
	case GRE_PROTO_IPV4:
	case GRE_PROTO_IPV6:
	case GRE_PROTO_KEEPALIVE:
		return 0;
	default:
		return SHM_DROP_UNSUPPORTED_PROTO;
	}
}

int gre_proto_kind(uint16_t proto)
{
	switch (proto) {
	case GRE_PROTO_TEB:
		return SHM_PROTO_TEB;
	case GRE_PROTO_ERSPAN2:
	case GRE_PROTO_ERSPAN3:
		return SHM_PROTO_ERSPAN;
	case GRE_PROTO_WCCP:
		return SHM_PROTO_WCCP;
	default:
		return SHM_PROTO_OTHER;
	}
}

/*
 * The transport header of INFO->proto at L4. WHOLE is false for a first
 * fragment, whose UDP length covers bytes that are not here.
 */
static int l4_parse(const uint8_t *l4, size_t l4_len, struct inner_info *info, bool whole)
{
	size_t doff, ulen;

	info->l4 = l4;
	info->l4_len = l4_len;
	switch (info->proto) {
	case IPPROTO_TCP:
		if (l4_len < TCP_HDR_MIN)
			return SHM_DROP_BAD_INNER;
		doff = (size_t)(l4[12] >> 4) * 4;
		if (doff < TCP_HDR_MIN || doff > l4_len)
			return SHM_DROP_BAD_INNER;
		info->tcp_syn = l4[13] & TCP_FLAG_SYN;
		break;
	case IPPROTO_UDP:
		if (l4_len < UDP_HDR_LEN)
			return SHM_DROP_BAD_INNER;
		ulen = get16(l4 + 4);
		if (whole && (ulen < UDP_HDR_LEN || ulen > l4_len))
			return SHM_DROP_BAD_INNER;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return l4_len < ICMP_HDR_LEN ? SHM_DROP_BAD_INNER : 0;
	default:
		return 0;
	}
	info->src_port = get16(l4);
	info->dst_port = get16(l4 + 2);
	return 0;
}

static int ipv4_parse(const uint8_t *pkt, size_t len, struct inner_info *info)
{
	size_t ihl, tot;
	uint16_t frag;

	if (len < IPV4_HDR_LEN || pkt[0] >> 4 != 4)
		return SHM_DROP_BAD_INNER;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	tot = get16(pkt + 2);
	if (ihl < IPV4_HDR_LEN || tot < ihl || tot > len || !ipv4_csum_ok(pkt, ihl))
		return SHM_DROP_BAD_INNER;
	frag = get16(pkt + 6);
	info->family = AF_INET;
	info->proto = pkt[9];
	info->ip_len = tot;
	info->df = frag & IPV4_DF;
	memcpy(&info->src.v4, pkt + 12, 4);
	memcpy(&info->dst.v4, pkt + 16, 4);
	if (frag & IPV4_OFFSET_MASK)
		return 0;
	return l4_parse(pkt + ihl, tot - ihl, info, !(frag & IPV4_MF));
}

/* Walk the extension headers of an IPv6 packet of IP_LEN bytes to its L4. */
static int ipv6_walk(const uint8_t *pkt, size_t ip_len, struct inner_info *info)
{
	size_t off = IPV6_HDR_LEN, ext_len;
	uint8_t next = pkt[6];
	bool whole = true;
	uint16_t frag;

	/* One pass per extension header, and one more for the transport. */
	for (unsigned i = 0; i <= IPV6_EXT_MAX; i++) {
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (ip_len - off < 2)
				return SHM_DROP_BAD_INNER;
			ext_len = ((size_t)pkt[off + 1] + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			if (ip_len - off < 8)
				return SHM_DROP_BAD_INNER;
			frag = get16(pkt + off + 2);
			if (frag & IPV6_FRAG_OFFSET_MASK) {
				info->proto = pkt[off];
				return 0;
			}
			whole = !(frag & IPV6_FRAG_MORE);
			ext_len = 8;
			break;
		default:
			info->proto = next;
			return l4_parse(pkt + off, ip_len - off, info, whole);
		}
		if (ip_len - off < ext_len)
			return SHM_DROP_BAD_INNER;
		next = pkt[off];
		off += ext_len;
	}
	return SHM_DROP_BAD_INNER;
}

static int ipv6_parse(const uint8_t *pkt, size_t len, struct inner_info *info)
{
	size_t ip_len;

	if (len < IPV6_HDR_LEN || pkt[0] >> 4 != 6)
		return SHM_DROP_BAD_INNER;
	ip_len = IPV6_HDR_LEN + (size_t)get16(pkt + 4);
	if (ip_len > len)
		return SHM_DROP_BAD_INNER;
	info->family = AF_INET6;
	info->ip_len = ip_len;
	info->df = true;
	memcpy(&info->src.v6, pkt + 8, 16);
	memcpy(&info->dst.v6, pkt + 24, 16);
	return ipv6_walk(pkt, ip_len, info);
}

int inner_parse(const uint8_t *pkt, size_t len, int family, struct inner_info *info)
{
	info->proto = 0;
	info->l4 = NULL;
	info->l4_len = 0;
	info->src_port = 0;
	info->dst_port = 0;
	info->tcp_syn = false;
	if (family == AF_INET)
		return ipv4_parse(pkt, len, info);
	if (family == AF_INET6)
		return ipv6_parse(pkt, len, info);
	return SHM_DROP_BAD_INNER;
}

/* A GRE keepalive the router sent itself by way of us: see packet.h. */
static bool keepalive_match(const struct inner_info *info, struct in_addr site_source)
{
	const uint8_t *gre = info->l4;
	uint16_t flags;

	if (info->family != AF_INET || !gre || info->l4_len < GRE_HDR_MIN ||
	    info->dst.v4.s_addr != site_source.s_addr)
		return false;
	flags = get16(gre);
	return gre_flags_ok(flags) && gre_header_len(flags) <= info->l4_len &&
	       get16(gre + 2) == GRE_PROTO_KEEPALIVE;
}

/* An unfragmented ICMP echo request to the probe IP. */
static bool probe_match(const uint8_t *pkt, const struct inner_info *info, struct in_addr probe_ip)
{
	return probe_ip.s_addr != INADDR_ANY && info->family == AF_INET &&
	       info->proto == IPPROTO_ICMP && info->dst.v4.s_addr == probe_ip.s_addr &&
	       info->l4 && info->l4[0] == ICMP_ECHO && info->l4[1] == 0 &&
	       !(get16(pkt + 6) & (IPV4_MF | IPV4_OFFSET_MASK));
}

enum inner_kind inner_classify(const uint8_t *pkt, const struct inner_info *info,
			       struct in_addr site_source, struct in_addr probe_ip)
{
	if (info->proto == IPPROTO_GRE)
		return keepalive_match(info, site_source) ? INNER_KEEPALIVE : INNER_REFLECT;
	if (probe_match(pkt, info, probe_ip))
		return INNER_PROBE;
	return INNER_DATA;
}

bool policy_allows(const struct inner_info *info, uint8_t services, const uint16_t *http_ports,
		   unsigned n_http_ports)
{
	if (services & SHM_SVC_BIT(SHM_SVC_CFW)) {
		switch (info->proto) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
			return true;
		case IPPROTO_ICMP:
			return info->family == AF_INET;
		case IPPROTO_ICMPV6:
			return info->family == AF_INET6;
		default:
			return false;
		}
	}
	/* Later fragments have no ports: web-only sites never pass them. */
	if (!(services & SHM_SVC_BIT(SHM_SVC_SWG)) || info->proto != IPPROTO_TCP || !info->l4)
		return false;
	if (info->dst_port == 80 || info->dst_port == 443)
		return true;
	for (unsigned i = 0; i < n_http_ports; i++)
		if (http_ports[i] == info->dst_port)
			return true;
	return false;
}

/* Offset of the MSS value in the options of a TCP header of HLEN, or 0. */
static size_t tcp_mss_find(const uint8_t *tcp, size_t hlen)
{
	size_t i = TCP_HDR_MIN, optlen;

	while (i < hlen) {
		if (tcp[i] == TCPOPT_EOL)
			return 0;
		if (tcp[i] == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (hlen - i < 2)
			return 0;
		optlen = tcp[i + 1];
		if (optlen < 2 || optlen > hlen - i)
			return 0;
		if (tcp[i] == TCPOPT_MSS)
			return optlen == TCPOLEN_MSS ? i + 2 : 0;
		i += optlen;
	}
	return 0;
}

bool tcp_clamp_mss(uint8_t *pkt, const struct inner_info *info, uint16_t mss)
{
	uint8_t *tcp;
	size_t hlen, off;
	uint16_t old, w_old, w_new;

	if (!info->tcp_syn || info->proto != IPPROTO_TCP || !info->l4 ||
	    info->l4_len < TCP_HDR_MIN)
		return false;
	tcp = pkt + (info->l4 - pkt);
	hlen = (size_t)(tcp[12] >> 4) * 4;
	if (hlen > info->l4_len)
		return false;
	off = tcp_mss_find(tcp, hlen);
	if (!off)
		return false;
	old = get16(tcp + off);
	if (old <= mss)
		return false;
	put16(tcp + off, mss);
	/* At an odd offset the value straddles two checksum words, byte-swapped. */
	w_old = off & 1 ? bswap_16(old) : old;
	w_new = off & 1 ? bswap_16(mss) : mss;
	put16(tcp + 16, csum_replace16(get16(tcp + 16), w_old, w_new));
	return true;
}

/* A 20-byte IPv4 header without options, DF clear, checksum computed. */
static void ipv4_header_write(uint8_t *h, struct in_addr src, struct in_addr dst, uint8_t proto,
			      uint8_t tos, size_t tot_len, uint16_t id)
{
	h[0] = 0x45;
	h[1] = tos;
	put16(h + 2, (uint16_t)tot_len);
	put16(h + 4, id);
	put16(h + 6, 0);
	h[8] = REPLY_TTL;
	h[9] = proto;
	put16(h + 10, 0);
	memcpy(h + 12, &src, 4);
	memcpy(h + 16, &dst, 4);
	put16(h + 10, (uint16_t)~ipv4_sum20(h));
}

/* ICMP messages that are not errors, which an error may answer. */
static bool icmp4_is_query(uint8_t type)
{
	return type < 32 && (ICMP4_QUERY_TYPES >> type & 1);
}

/* RFC 1812 4.3.2.7: never about errors, later fragments or non-unicast. */
static bool icmp4_may_answer(const struct inner_info *info)
{
	uint32_t src = ntohl(info->src.v4.s_addr), dst = ntohl(info->dst.v4.s_addr);

	if (!info->l4 || src >> 24 == 0 || src >> 24 == 127 || src >= 0xe0000000 ||
	    dst >= 0xe0000000)
		return false;
	return info->proto != IPPROTO_ICMP || icmp4_is_query(info->l4[0]);
}

static size_t icmp4_too_big(uint8_t *out, size_t out_size, const uint8_t *pkt,
			    const struct inner_info *info, unsigned mtu, struct in_addr from)
{
	size_t head = IPV4_HDR_LEN + ICMP_HDR_LEN, quote = info->ip_len;
	size_t room = out_size < ICMP4_ERROR_MAX ? out_size : ICMP4_ERROR_MAX;
	size_t need = (size_t)(pkt[0] & 0x0f) * 4 + 8;

	if (!icmp4_may_answer(info) || room < head + need)
		return 0;
	if (quote > room - head)
		quote = room - head;
	memmove(out + head, pkt, quote);
	out[20] = ICMP_UNREACH;
	out[21] = ICMP_UNREACH_NEEDFRAG;
	put16(out + 22, 0);
	put16(out + 24, 0);
	put16(out + 26, mtu > 0xffff ? 0xffff : (uint16_t)mtu);
	put16(out + 22, (uint16_t)~csum_partial(out + 20, ICMP_HDR_LEN + quote, 0));
	ipv4_header_write(out, from, info->src.v4, IPPROTO_ICMP, IPTOS_INTERNETCONTROL,
			  head + quote, 0);
	return head + quote;
}

/* RFC 4443 2.4: never about errors, later fragments or non-unicast sources. */
static bool icmp6_may_answer(const struct inner_info *info)
{
	const struct in6_addr *src = &info->src.v6;

	if (!info->l4 || IN6_IS_ADDR_UNSPECIFIED(src) || IN6_IS_ADDR_LOOPBACK(src) ||
	    IN6_IS_ADDR_MULTICAST(src))
		return false;
	return info->proto != IPPROTO_ICMPV6 || info->l4[0] >= ICMP6_INFO_MIN;
}

static size_t icmp6_too_big(uint8_t *out, size_t out_size, const uint8_t *pkt,
			    const struct inner_info *info, unsigned mtu,
			    const struct in6_addr *from)
{
	size_t head = IPV6_HDR_LEN + ICMP_HDR_LEN, quote = info->ip_len, len;
	size_t room = out_size < ICMP6_ERROR_MAX ? out_size : ICMP6_ERROR_MAX;
	uint8_t *icmp = out + IPV6_HDR_LEN;
	uint32_t sum;

	if (!from || !icmp6_may_answer(info) || room < head + IPV6_HDR_LEN + 8)
		return 0;
	if (quote > room - head)
		quote = room - head;
	memmove(out + head, pkt, quote);
	len = ICMP_HDR_LEN + quote;
	put32(out, 0x60000000);
	put16(out + 4, (uint16_t)len);
	out[6] = IPPROTO_ICMPV6;
	out[7] = REPLY_TTL;
	memcpy(out + 8, from, 16);
	memcpy(out + 24, &info->src.v6, 16);
	icmp[0] = ICMP6_PACKET_TOO_BIG;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put32(icmp + 4, mtu);
	/* Pseudo header: both addresses, the length and the next header. */
	sum = csum_partial(out + 8, 32, (uint32_t)len + IPPROTO_ICMPV6);
	put16(icmp + 2, (uint16_t)~csum_partial(icmp, len, sum));
	return IPV6_HDR_LEN + len;
}

size_t icmp_build_too_big(uint8_t *out, size_t out_size, const uint8_t *pkt,
			  const struct inner_info *info, unsigned mtu, struct in_addr from_v4,
			  const struct in6_addr *from_v6)
{
	if (info->family == AF_INET)
		return icmp4_too_big(out, out_size, pkt, info, mtu, from_v4);
	if (info->family == AF_INET6)
		return icmp6_too_big(out, out_size, pkt, info, mtu, from_v6);
	return 0;
}

bool icmp_echo_to_reply(uint8_t *pkt, const struct inner_info *info)
{
	uint8_t *icmp, addr[4];
	size_t ihl;

	if (info->family != AF_INET || info->proto != IPPROTO_ICMP || !info->l4 ||
	    info->l4_len < ICMP_HDR_LEN || get16(pkt + 6) & (IPV4_MF | IPV4_OFFSET_MASK))
		return false;
	icmp = pkt + (info->l4 - pkt);
	if (icmp[0] != ICMP_ECHO)
		return false;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	memcpy(addr, pkt + 12, 4);
	memmove(pkt + 12, pkt + 16, 4);
	memcpy(pkt + 16, addr, 4);
	pkt[8] = REPLY_TTL;
	put16(pkt + 10, 0);
	put16(pkt + 10, (uint16_t)~csum_partial(pkt, ihl, 0));
	icmp[0] = ICMP_ECHO_REPLY;
	put16(icmp + 2, csum_replace16(get16(icmp + 2), (uint16_t)(ICMP_ECHO << 8 | icmp[1]),
				       (uint16_t)(ICMP_ECHO_REPLY << 8 | icmp[1])));
	return true;
}

size_t gre_build_header(uint8_t *hdr, struct in_addr src, struct in_addr dst, bool has_key,
			uint32_t key, uint16_t proto, size_t inner_len, uint16_t id)
{
	size_t hlen = IPV4_HDR_LEN + GRE_HDR_MIN + (has_key ? 4 : 0);

	if (inner_len > 0xffff - hlen)
		return 0;
	ipv4_header_write(hdr, src, dst, IPPROTO_GRE, 0, hlen + inner_len, id);
	put16(hdr + 20, has_key ? GRE_FLAG_K : 0);
	put16(hdr + 22, proto);
	if (has_key)
		put32(hdr + 24, key);
	return hlen;
}

bool token_bucket_take(struct token_bucket *tb, uint64_t now_ns, uint64_t rate_bps, size_t len)
{
	uint64_t burst, refill, need;

	if (rate_bps == 0 || rate_bps > TB_RATE_MAX)
		return true;
	burst = rate_bps * TB_BURST_NS;
	if (burst < TB_BURST_MIN)
		burst = TB_BURST_MIN;
	if (tb->last_ns == 0 || tb->tokens > burst) {
		/* A zeroed bucket starts full; a lower rate caps what was saved. */
		tb->tokens = burst;
	} else if (now_ns > tb->last_ns) {
		if (__builtin_mul_overflow(now_ns - tb->last_ns, rate_bps, &refill) ||
		    refill >= burst - tb->tokens)
			tb->tokens = burst;
		else
			tb->tokens += refill;
	}
	/* A clock that went back refills nothing and restarts from here. */
	tb->last_ns = now_ns;
	if (__builtin_mul_overflow((uint64_t)len, TB_UNITS_PER_BYTE, &need) || need > tb->tokens)
		return false;
	tb->tokens -= need;
	return true;
}
