/*
 * How long gatewayd's per-packet logic takes: outer and inner parsing,
 * classification, policy, MSS clamp and the token bucket, on a full-size
 * data packet and on a SYN, in ns per packet. A packet costs a userspace
 * GRE forwarder about 3-4 us in all on a small VM (syscalls, the kernel's
 * IP stack, TUN), so the target for this logic is a few tens of ns: ~1 %.
 *
 *   build/tools/bench_packet [iterations]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gatewayd/packet.h"
#include "lib/timeutil.h"

static void put_csum(uint8_t *field, uint16_t c)
{
	field[0] = c >> 8;
	field[1] = c & 0xff;
}

/* Outer IPv4 + GRE with a key around an inner IPv4 TCP packet of LEN bytes. */
static size_t build(uint8_t *p, size_t len, uint8_t tcp_flags)
{
	uint8_t *ip = p + 28, *tcp = ip + 20;
	struct in_addr src = { htonl(0xc6120002) }, dst = { htonl(0xc0000201) };

	memset(ip, 0, len);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(len >> 8);
	ip[3] = (uint8_t)len;
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, "\x0a\x01\x00\x05\x5d\xb8\xd8\x22", 8);
	put_csum(ip + 10, (uint16_t)~csum_partial(ip, 20, 0));
	tcp[2] = 443 >> 8;
	tcp[3] = 443 & 0xff;
	tcp[12] = 0x60;
	tcp[13] = tcp_flags;
	memcpy(tcp + 20, "\x02\x04\x05\xb4", 4);
	return gre_build_header(p, src, dst, true, 42, GRE_PROTO_IPV4, len, 1) + len;
}

/* One packet through the receive path; returns something so it is not elided. */
static unsigned receive(uint8_t *p, size_t len, struct token_bucket *tb, uint64_t now)
{
	static const uint16_t ports[] = { 8080 };
	struct in_addr site = { htonl(0xc6120002) }, probe = { htonl(0x6440ff01) };
	struct gre_packet g;
	struct inner_info in;
	unsigned r;

	if (gre_parse(p, len, &g) || inner_parse(p + (g.inner - p), g.inner_len, AF_INET, &in))
		return 1;
	r = inner_classify(g.inner, &in, site, probe);
	r += policy_allows(&in, SHM_SVC_BIT(SHM_SVC_SWG), ports, 1);
	r += tcp_clamp_mss(p + (g.inner - p), &in, 1436);
	r += token_bucket_take(tb, now, 1000000000, len);
	return r;
}

static void run(const char *name, size_t inner_len, uint8_t flags, unsigned long n)
{
	static uint8_t pkt[2048];
	struct token_bucket tb = { 0 };
	size_t len = build(pkt, inner_len, flags);
	uint64_t start, ns;
	unsigned sink = 0;

	start = now_monotonic_ns();
	for (unsigned long i = 0; i < n; i++)
		sink += receive(pkt, len, &tb, start + i * 20);
	ns = now_monotonic_ns() - start;
	printf("%-28s %6.1f ns/packet (%u)\n", name, (double)ns / (double)n, sink & 1);
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000;

	run("1500-byte TCP data", 1476, 0x10, n);
	run("64-byte TCP SYN (clamped)", 64, 0x02, n);
	return 0;
}
