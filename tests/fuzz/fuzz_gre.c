/*
 * libFuzzer harness for gatewayd's receive path: the bytes a raw GRE socket
 * delivers go through gre_parse, inner_parse, inner_classify, policy_allows,
 * tcp_clamp_mss (on a copy), icmp_build_too_big and icmp_echo_to_reply, and
 * the invariants each promises are checked with abort() so that the
 * sanitizers and the fuzzer report them. `make fuzz` builds and runs it
 * (tests/fuzz/run.sh: corpus, dictionary, scratch directory).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gatewayd/packet.h"

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();					\
		}							\
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pkt[65536];
static uint8_t before[65536];
static uint8_t out[1500];

static bool within(const uint8_t *p, size_t len, const uint8_t *base, size_t base_len)
{
	return p >= base && len <= base_len && (size_t)(p - base) <= base_len - len;
}

/* The one's-complement sum of a TCP segment is what the clamp must keep. */
static void check_clamp(const struct inner_info *in, size_t ip_len)
{
	size_t off = (size_t)(in->l4 - pkt);
	uint32_t sum_before;
	unsigned changed = 0;

	memcpy(before, pkt, ip_len);
	if (!tcp_clamp_mss(pkt, in, 1000)) {
		CHECK(memcmp(before, pkt, ip_len) == 0);
		return;
	}
	CHECK(in->proto == IPPROTO_TCP && in->tcp_syn);
	for (size_t i = 0; i < ip_len; i++)
		changed += before[i] != pkt[i];
	CHECK(changed >= 1 && changed <= 4);
	sum_before = csum_partial(before + off, in->l4_len, 0);
	CHECK(csum_partial(pkt + off, in->l4_len, 0) == sum_before);
	memcpy(pkt, before, ip_len);
}

static void check_too_big(const struct inner_info *in)
{
	struct in_addr from = { htonl(0x6440ff01) };
	size_t n = icmp_build_too_big(out, sizeof(out), pkt, in, 1476, from, &in6addr_loopback);
	uint32_t sum;

	if (!n)
		return;
	CHECK(in->l4);
	if (in->family == AF_INET) {
		CHECK(n == 28 + (in->ip_len < 548 ? in->ip_len : 548));
		CHECK(csum_partial(out, 20, 0) == 0xffff);
		CHECK(csum_partial(out + 20, n - 20, 0) == 0xffff);
		return;
	}
	CHECK(n == 48 + (in->ip_len < 1232 ? in->ip_len : 1232));
	sum = csum_partial(out + 8, 32, (uint32_t)(n - 40) + IPPROTO_ICMPV6);
	CHECK(csum_partial(out + 40, n - 40, sum) == 0xffff);
}

static void check_inner(const uint8_t *data, size_t len, int family)
{
	static const uint16_t http_ports[] = { 8080, 8443 };
	struct in_addr site = { htonl(0xc6120002) }, probe = { htonl(0x6440ff01) };
	struct inner_info in;
	enum inner_kind kind;
	int rc;

	memcpy(pkt, data, len);
	rc = inner_parse(pkt, len, family, &in);
	if (rc) {
		CHECK(rc == SHM_DROP_BAD_INNER);
		return;
	}
	CHECK(in.family == family && in.ip_len <= len);
	CHECK(!in.l4 || within(in.l4, in.l4_len, pkt, in.ip_len));
	CHECK(in.l4 || in.l4_len == 0);
	kind = inner_classify(pkt, &in, site, probe);
	CHECK(kind == INNER_DATA || kind == INNER_KEEPALIVE || kind == INNER_REFLECT ||
	      kind == INNER_PROBE);
	CHECK(kind != INNER_KEEPALIVE || (family == AF_INET && in.dst.v4.s_addr == site.s_addr));
	for (uint8_t svc = 0; svc < 4; svc++)
		if (policy_allows(&in, svc, http_ports, 2))
			CHECK(svc && (in.proto == IPPROTO_TCP || svc & SHM_SVC_BIT(SHM_SVC_CFW)));
	if (in.l4)
		check_clamp(&in, in.ip_len);
	check_too_big(&in);
	if (kind == INNER_PROBE) {
		CHECK(icmp_echo_to_reply(pkt, &in));
		CHECK(csum_partial(pkt, (size_t)(pkt[0] & 0x0f) * 4, 0) == 0xffff);
	}
}

/* Encapsulate the inner packet again and parse it back. */
static void check_roundtrip(const struct gre_packet *g)
{
	struct gre_packet back;
	size_t hlen = gre_build_header(pkt, g->dst, g->src, g->has_key, g->key, g->proto,
				       g->inner_len, 7);

	CHECK(hlen == (g->has_key ? 28u : 24u) || (hlen == 0 && g->inner_len > 65535 - 28));
	if (!hlen)
		return;
	memcpy(pkt + hlen, g->inner, g->inner_len);
	CHECK(gre_parse(pkt, hlen + g->inner_len, &back) == 0);
	CHECK(back.inner_len == g->inner_len && back.key == g->key && back.proto == g->proto);
}

/* Store a correct checksum over LEN bytes at P into the field at FIELD. */
static void fix_csum(uint8_t *p, size_t len, uint8_t *field)
{
	uint16_t c;

	field[0] = field[1] = 0;
	c = (uint16_t)~csum_partial(p, len, 0);
	field[0] = c >> 8;
	field[1] = c & 0xff;
}

/*
 * Make the checksums of a copy right (inner IPv4 header, GRE, outer IPv4
 * header, in that order), so that mutations reach past them too.
 */
static void fix_checksums(uint8_t *p, size_t size)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4, tot = (size_t)p[2] << 8 | p[3], hlen, iihl;
	uint8_t *gre = p + ihl, *ip;
	uint16_t flags;

	if (ihl < 20 || tot < ihl + 4 || tot > size)
		return;
	flags = (uint16_t)(gre[0] << 8 | gre[1]);
	hlen = 4 + (flags & GRE_FLAG_C ? 4 : 0) + (flags & GRE_FLAG_K ? 4 : 0) +
	       (flags & GRE_FLAG_S ? 4 : 0);
	if (gre[2] == 0x89 && gre[3] == 0x09)
		hlen += CISCO_META_LEN;
	ip = gre + hlen;
	if (tot >= ihl + hlen + 20 && ip[0] >> 4 == 4) {
		iihl = (size_t)(ip[0] & 0x0f) * 4;
		if (iihl >= 20 && tot >= ihl + hlen + iihl)
			fix_csum(ip, iihl, ip + 10);
	}
	if (flags & GRE_FLAG_C && tot >= ihl + 8)
		fix_csum(gre, tot - ihl, gre + 4);
	fix_csum(p, ihl, p + 10);
}

static void check_packet(const uint8_t *data, size_t size)
{
	struct gre_packet g;
	struct token_bucket tb = { 0 };
	int rc;

	rc = gre_parse(data, size, &g);
	if (rc == SHM_DROP_UNSUPPORTED_PROTO) {
		CHECK(gre_proto_kind(g.proto) >= SHM_PROTO_TEB);
		CHECK(gre_proto_kind(g.proto) <= SHM_PROTO_OTHER);
		return;
	}
	if (rc) {
		CHECK(rc == SHM_DROP_BAD_HEADER || rc == SHM_DROP_BAD_CHECKSUM);
		return;
	}
	CHECK(within(g.inner, g.inner_len, data, size));
	CHECK(g.proto == GRE_PROTO_IPV4 || g.proto == GRE_PROTO_IPV6 ||
	      g.proto == GRE_PROTO_KEEPALIVE);
	check_roundtrip(&g);
	CHECK(token_bucket_take(&tb, size, (uint64_t)g.key * 1000, g.inner_len) ||
	      g.inner_len > 65536);
	if (g.proto != GRE_PROTO_KEEPALIVE)
		check_inner(g.inner, g.inner_len, g.proto == GRE_PROTO_IPV4 ? AF_INET : AF_INET6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fixed[65536];

	if (size > 65535)
		return 0;
	check_packet(data, size);
	if (size < 20)
		return 0;
	memcpy(fixed, data, size);
	fix_checksums(fixed, size);
	check_packet(fixed, size);
	return 0;
}
