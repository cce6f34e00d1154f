/*
 * gregen: the benchmark's traffic generator. Sends GRE packets, built
 * ahead of time, as fast as one core can through an AF_PACKET socket on
 * one interface, and prints what it sent.
 *
 *   gregen --ifname IF --dst-mac MAC --gateway IP [--profile P] [--sites N]
 *          [--count N] [--seconds S] [--rate PPS] [--plain SRC [--udp-gso SEG]]
 *
 * Every packet is Ethernet + outer IPv4 (site IP -> gateway IP) + GRE
 * (4 bytes, no options) + an inner IPv4 packet. Site s (0..N-1) sends from
 * outer source SITE_BASE + s and its inner packets come from INNER_BASE + s,
 * so a sites file that lists SITE_BASE .. SITE_BASE + N - 1 admits them
 * all. Flows are spread over the sites round robin.
 *
 * Profiles: udp64, udp512, udp1400 (UDP inner packets of that IP length),
 * imix (64, 576 and 1400 bytes, 7:4:1), tcp (bulk flows: a SYN with MSS
 * 1460 first, then 1400-byte segments with consecutive sequence numbers,
 * every checksum valid, PSH on every 32nd as a bulk sender's socket writes
 * end), imix-tcp (the same TCP flows, but flow f's segments are of one IMIX
 * size: of every 12 flows 7 send 64-byte, 4 576-byte and one 1476-byte
 * segments, the largest that fits the tunnel), keepalive (Cisco keepalives:
 * inner IPv4 gateway -> site carrying GRE protocol 0).
 *
 * With --plain SRC the packets have no outer IP and GRE: the inner packet
 * from SRC to INNER_BASE + s, for flooding the return path from the
 * services' side (UDP profiles only). With --udp-gso SEG as well they are
 * not built here: a UDP socket bound to SRC writes 47 x SEG bytes per call
 * with UDP_SEGMENT, so the kernel carries each write as one large packet
 * (to be segmented by whoever handles it last); counts are in segments.
 *
 * Frames go out through a PACKET_TX_RING (one send() per batch, the frames
 * written in place; --tx sendmmsg for the plain socket calls instead), past
 * the qdisc (PACKET_QDISC_BYPASS).
 *
 * --rate PPS paces the sending to PPS packets a second (in bursts of at most
 * a batch); without it gregen sends as fast as it can. The output says what
 * it achieved.
 *
 * It is independent of gatewayd's packet code: the headers are written and
 * checksummed here. Bounded by --count and --seconds; stops by itself.
 * Output, one line:
 *   gregen profile=P sites=N packets=N inner_bytes=N wire_bytes=N seconds=S errors=N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GEN_BATCH	128
#define GEN_FRAME_MAX	1600
#define RING_FRAME	2048		/* a ring slot: tpacket2_hdr + frame */
#define RING_BLOCK	65536
#define RING_BLOCKS	8		/* 256 slots, twice a batch */
#define RING_SLOTS	(RING_BLOCK / RING_FRAME * RING_BLOCKS)
/* Where the frame starts in a TX ring slot (TPACKET_V2, no PACKET_TX_HAS_OFF). */
#define RING_DATA	TPACKET_ALIGN(sizeof(struct tpacket2_hdr))
#define ETH_LEN		14
#define OUTER_LEN	24		/* IPv4 20 + GRE 4 */
#define TCP_SEGMENT	1400		/* IP length of a bulk TCP segment */
#define TCP_MSS		1460
#define IMIX_CYCLE	12
#define PSH_EVERY	32		/* data segments of a flow per PSH */
#define GSO_SEGMENTS	47		/* per UDP_SEGMENT write: 47 x 1372 < 64 KiB */
#define GSO_SEGMENT_MAX	1394		/* 47 x 1394 + 8 fits a UDP length */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif

enum gen_profile { P_UDP64, P_UDP512, P_UDP1400, P_IMIX, P_TCP, P_IMIX_TCP, P_KEEPALIVE };

static const char *const profile_names[] = {
	"udp64", "udp512", "udp1400", "imix", "tcp", "imix-tcp", "keepalive",
};

/* IP lengths of the IMIX cycle, 7:4:1; TCP's largest is the tunnel's MTU. */
static const uint16_t imix_udp[IMIX_CYCLE] = { 64, 64, 64, 64, 64, 64, 64, 576, 576, 576,
					       576, 1400 };
static const uint16_t imix_tcp[IMIX_CYCLE] = { 64, 64, 64, 64, 64, 64, 64, 576, 576, 576,
					       576, 1476 };

struct gen_opts {
	char ifname[IFNAMSIZ];
	uint8_t dst_mac[6];
	bool have_mac;
	struct in_addr gateway, site_base, inner_base, inner_dst, plain_src;
	bool plain;
	bool flow_hosts;		/* each flow from its own inner address */
	enum gen_profile profile;
	uint32_t sites, flows, udp_gso;
	uint32_t burst;			/* packets of a flow in a row */
	bool sendmmsg;
	uint64_t count;
	double seconds, rate;
};

struct gen {
	struct gen_opts o;
	uint8_t src_mac[6];
	int fd;
	uint8_t buf[GEN_BATCH][GEN_FRAME_MAX];
	struct iovec iov[GEN_BATCH];
	struct mmsghdr msg[GEN_BATCH];
	uint32_t inner_len[GEN_BATCH], frame_len[GEN_BATCH];
	uint8_t *ring;			/* the TX ring, or NULL with --tx sendmmsg */
	unsigned ring_head;
	uint64_t packets, inner_bytes, wire_bytes, errors;
};

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* An IPv4 header without options at IP; the checksum is computed. */
static void ip_header(uint8_t *ip, size_t total, uint8_t proto, struct in_addr src,
		      struct in_addr dst, uint16_t id, bool df)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)total);
	put16(ip + 4, id);
	ip[6] = df ? 0x40 : 0;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
}

static struct in_addr addr_plus(struct in_addr base, uint32_t n)
{
	return (struct in_addr){ htonl(ntohl(base.s_addr) + n) };
}

/* A UDP packet of TOTAL IP bytes (no UDP checksum: allowed over IPv4). */
static void inner_udp(uint8_t *ip, size_t total, struct in_addr src, struct in_addr dst,
		      uint16_t sport, uint16_t id)
{
	uint8_t *udp = ip + 20;

	uint32_t sum;

	/* DF and a checksum, as a Linux sender's datagrams have them. */
	ip_header(ip, total, IPPROTO_UDP, src, dst, id, true);
	put16(udp, sport);
	put16(udp + 2, 9);
	put16(udp + 4, (uint16_t)(total - 20));
	put16(udp + 6, 0);
	memset(udp + 8, 0x5a, total - 28);
	sum = sum16(ip + 12, 8, IPPROTO_UDP + (uint32_t)(total - 20));
	sum = (uint16_t)~fold(sum16(udp, total - 20, sum));
	put16(udp + 6, (uint16_t)(sum ? sum : 0xffff));
}

/* A TCP segment of TOTAL IP bytes: a SYN with MSS (TOTAL ignored), or
 * data (ACK, and PSH when PSH). */
static size_t inner_tcp(uint8_t *ip, size_t total, bool syn, bool psh, uint32_t seq,
			struct in_addr src, struct in_addr dst, uint16_t sport, uint16_t id)
{
	size_t hl = syn ? 24 : 20;
	uint8_t *tcp = ip + 20;
	uint32_t sum;

	total = syn ? 20 + hl : total;
	ip_header(ip, total, IPPROTO_TCP, src, dst, id, true);
	memset(tcp, 0, hl);
	put16(tcp, sport);
	put16(tcp + 2, 5001);
	put32(tcp + 4, seq);
	put32(tcp + 8, syn ? 0 : 1);
	tcp[12] = (uint8_t)(hl / 4) << 4;
	tcp[13] = syn ? 0x02 : psh ? 0x18 : 0x10;
	put16(tcp + 14, 65535);
	if (syn) {
		tcp[20] = 2;		/* MSS */
		tcp[21] = 4;
		put16(tcp + 22, TCP_MSS);
	} else {
		memset(tcp + hl, 0xa5, total - 20 - hl);
	}
	sum = sum16(ip + 12, 8, IPPROTO_TCP + (uint32_t)(total - 20));
	put16(tcp + 16, (uint16_t)~fold(sum16(tcp, total - 20, sum)));
	return total;
}

/* A Cisco keepalive's inner packet: gateway -> site, GRE protocol 0. */
static size_t inner_keepalive(uint8_t *ip, struct in_addr gateway, struct in_addr site,
			      uint16_t id)
{
	ip_header(ip, 24, IPPROTO_GRE, gateway, site, id, false);
	memset(ip + 20, 0, 4);
	return 24;
}

static size_t udp_size(enum gen_profile p, uint64_t k)
{
	switch (p) {
	case P_UDP64: return 64;
	case P_UDP512: return 512;
	case P_IMIX: return imix_udp[k % IMIX_CYCLE];
	default: return 1400;
	}
}

/*
 * Packet K, the N-th of flow F: a SYN first, then data with consecutive
 * sequence numbers. A function of K alone, so a batch built again after a
 * short send carries the same segments, and no flow skips numbers.
 */
static size_t tcp_segment(const struct gen *g, uint64_t k, uint32_t f, uint8_t *ip,
			  struct in_addr src, uint16_t sport, uint16_t id)
{
	const struct gen_opts *o = &g->o;
	uint64_t n = k / ((uint64_t)o->burst * o->flows) * o->burst + k % o->burst;
	size_t total = o->profile == P_IMIX_TCP ? imix_tcp[f % IMIX_CYCLE] : TCP_SEGMENT;
	uint32_t seq = f * 1000003u + (n == 0 ? 0 : 1 + (uint32_t)(n - 1) * (uint32_t)(total - 40));

	return inner_tcp(ip, total, n == 0, n > 0 && n % PSH_EVERY == 0, seq, src, o->inner_dst,
			 sport, id);
}

/* Packet K's flow: BURST packets of one flow, then the next one's. */
static uint32_t flow_of(const struct gen_opts *o, uint64_t k)
{
	return (uint32_t)(k / o->burst % o->flows);
}

/* Write packet K's inner IPv4 packet at IP; returns its length. */
static size_t build_inner(struct gen *g, uint64_t k, uint8_t *ip)
{
	const struct gen_opts *o = &g->o;
	uint32_t f = flow_of(o, k), s = f % o->sites;
	uint16_t sport = (uint16_t)(10000 + f / o->sites % 50000), id = (uint16_t)k;
	struct in_addr site = addr_plus(o->site_base, s);
	struct in_addr inner = addr_plus(o->inner_base, o->flow_hosts ? f : s);
	size_t len;

	if (o->profile == P_KEEPALIVE)
		return inner_keepalive(ip, o->gateway, site, id);
	if (o->plain) {
		len = udp_size(o->profile, k);
		inner_udp(ip, len, o->plain_src, inner, sport, id);
		return len;
	}
	if (o->profile == P_TCP || o->profile == P_IMIX_TCP)
		return tcp_segment(g, k, f, ip, inner, sport, id);
	len = udp_size(o->profile, k);
	inner_udp(ip, len, inner, o->inner_dst, sport, id);
	return len;
}

/* Write packet K, slot I of the batch, at ETH: Ethernet, outer IPv4 + GRE,
 * inner. */
static void build_frame(struct gen *g, uint8_t *eth, unsigned i, uint64_t k)
{
	const struct gen_opts *o = &g->o;
	size_t outer = o->plain ? 0 : OUTER_LEN;
	size_t inner = build_inner(g, k, eth + ETH_LEN + outer);
	uint32_t s = flow_of(o, k) % o->sites;

	memcpy(eth, o->dst_mac, 6);
	memcpy(eth + 6, g->src_mac, 6);
	put16(eth + 12, ETHERTYPE_IP);
	if (!o->plain) {
		ip_header(eth + ETH_LEN, OUTER_LEN + inner, IPPROTO_GRE,
			  addr_plus(o->site_base, s), o->gateway, (uint16_t)k, true);
		put16(eth + ETH_LEN + 20, 0);
		put16(eth + ETH_LEN + 22, 0x0800);
	}
	g->frame_len[i] = (uint32_t)(ETH_LEN + outer + inner);
	g->inner_len[i] = (uint32_t)inner;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How many of the next N packets are due ELAPSED seconds in at --rate; when
 * none is, sleeps until the next one is (at most 1 ms) and returns 0. */
static unsigned gen_due(const struct gen *g, double elapsed, unsigned n)
{
	double due;
	struct timespec nap;

	if (g->o.rate <= 0)
		return n;
	due = g->o.rate * elapsed - (double)g->packets;
	if (due >= 1)
		return due < n ? (unsigned)due : n;
	nap = (struct timespec){ 0, (long)((1 - due) / g->o.rate * 1e9) };
	if (nap.tv_nsec > 1000000)
		nap.tv_nsec = 1000000;
	nanosleep(&nap, NULL);
	return 0;
}

/* The next batch's size: what is left of --count, paced to --rate. */
static unsigned gen_batch(const struct gen *g, double elapsed, unsigned max)
{
	uint64_t left = g->o.count - g->packets;

	return gen_due(g, elapsed, left < max ? (unsigned)left : max);
}

/* N packets with one sendmmsg(); how many went. */
static int send_batch(struct gen *g, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		build_frame(g, g->buf[i], i, g->packets + i);
		g->iov[i].iov_len = g->frame_len[i];
	}
	return sendmmsg(g->fd, g->msg, n, 0);
}

/* N packets written into the TX ring's next slots, then one blocking send()
 * that returns once the kernel has sent them all; how many of the first
 * went (a slot the kernel refused is handed back and counted as an error). */
static int send_ring(struct gen *g, unsigned n)
{
	int sent = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *slot = g->ring + (size_t)((g->ring_head + i) % RING_SLOTS) * RING_FRAME;
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)slot;

		build_frame(g, slot + RING_DATA, i, g->packets + i);
		h->tp_len = g->frame_len[i];
		__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	}
	/* Even when it fails, some may have gone: the slots tell. */
	(void)send(g->fd, NULL, 0, 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *slot = g->ring + (size_t)((g->ring_head + i) % RING_SLOTS) * RING_FRAME;
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)slot;

		if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) == TP_STATUS_AVAILABLE &&
		    sent == (int)i)
			sent++;
		h->tp_status = TP_STATUS_AVAILABLE;
	}
	g->ring_head = (g->ring_head + n) % RING_SLOTS;
	return sent;
}

/* Send until --count packets went out or --seconds passed; returns the seconds. */
static double gen_run(struct gen *g)
{
	double start = now_s(), now = start;

	while (g->packets < g->o.count && now - start < g->o.seconds) {
		unsigned n = gen_batch(g, now - start, GEN_BATCH);
		int sent = 0;

		if (n == 0) {
			now = now_s();
			continue;
		}
		sent = g->ring ? send_ring(g, n) : send_batch(g, n);
		if (sent < (int)n)
			g->errors++;
		for (int i = 0; i < sent; i++) {
			g->inner_bytes += g->inner_len[i];
			g->wire_bytes += g->frame_len[i];
		}
		if (sent > 0)
			g->packets += (unsigned)sent;
		now = now_s();
	}
	return now - start;
}

/* --udp-gso: each write one large UDP packet of GSO_SEGMENTS segments, to
 * the sites' inner addresses in turn; counted as its segments. */
static double gen_run_udp_gso(struct gen *g)
{
	static uint8_t payload[GSO_SEGMENTS * GSO_SEGMENT_MAX];
	size_t len = (size_t)GSO_SEGMENTS * g->o.udp_gso;
	double start = now_s(), now = start;
	uint64_t k = 0;

	while (g->packets < g->o.count && now - start < g->o.seconds) {
		struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(9),
					   .sin_addr = addr_plus(g->o.inner_base,
								 (uint32_t)(k++ % g->o.sites)) };

		/* Paced by the write: one whole write once a packet is due. */
		if (gen_batch(g, now - start, 1) == 0) {
			now = now_s();
			continue;
		}
		if (sendto(g->fd, payload, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			g->errors++;
		} else {
			g->packets += GSO_SEGMENTS;
			g->inner_bytes += len + GSO_SEGMENTS * 28;
			g->wire_bytes += len + GSO_SEGMENTS * (28 + ETH_LEN);
		}
		now = now_s();
	}
	return now - start;
}

static int open_udp_gso_socket(struct gen *g)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = g->o.plain_src };
	int seg = (int)g->o.udp_gso, size = 4 << 20;

	g->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (g->fd < 0)
		return -errno;
	setsockopt(g->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	if (bind(g->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    setsockopt(g->fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) < 0)
		return -errno;
	return 0;
}

/* A TPACKET_V2 TX ring on the socket, mapped at g->ring. */
static int open_ring(struct gen *g)
{
	struct tpacket_req req = { .tp_block_size = RING_BLOCK, .tp_block_nr = RING_BLOCKS,
				   .tp_frame_size = RING_FRAME, .tp_frame_nr = RING_SLOTS };
	int version = TPACKET_V2;
	void *map;

	if (setsockopt(g->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0 ||
	    setsockopt(g->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
		return -errno;
	map = mmap(NULL, (size_t)RING_BLOCK * RING_BLOCKS, PROT_READ | PROT_WRITE, MAP_SHARED,
		   g->fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	g->ring = map;
	return 0;
}

static int open_socket(struct gen *g)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET };
	struct ifreq ifr;
	int one = 1, size = 16 << 20;

	/* Protocol 0: this socket only sends; it receives nothing. */
	g->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (g->fd < 0)
		return -errno;
	/*
	 * A packet is charged to the socket until the receiver frees it: with
	 * the receive on another core (RPS, a threaded NAPI), the default
	 * buffer would hold gregen back to the receiver's pace.
	 */
	setsockopt(g->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", g->o.ifname);
	if (ioctl(g->fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	memcpy(g->src_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (!g->o.sendmmsg && open_ring(g) < 0)
		return -errno;
	ll.sll_ifindex = (int)if_nametoindex(g->o.ifname);
	if (ll.sll_ifindex == 0)
		return -errno;
	if (bind(g->fd, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return -errno;
	/* Straight to the driver: the generator measures the receiver, not a qdisc. */
	setsockopt(g->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gregen --ifname IF --dst-mac MAC --gateway IP [options]\n"
		"  --profile P       udp64 udp512 udp1400 imix tcp imix-tcp keepalive\n"
		"                    (default udp64)\n"
		"  --sites N         distinct outer source IPs (default 1)\n"
		"  --flows N         flows, at least one per site (default 16)\n"
		"  --flow-hosts      each flow from its own inner address (default:\n"
		"                    one per site)\n"
		"  --burst N         packets of one flow in a row before the next flow's,\n"
		"                    as a sender's segmentation offload emits them (default 1)\n"
		"  --site-base IP    first site's outer source IP (default 172.16.0.1)\n"
		"  --inner-base IP   first site's inner source IP (default 10.1.0.2)\n"
		"  --inner-dst IP    inner destination (default 203.0.113.1)\n"
		"  --plain SRC       no outer IP and GRE: UDP from SRC to the inner sources\n"
		"  --udp-gso SEG     with --plain: UDP_SEGMENT writes of 47 x SEG bytes\n"
		"                    (SEG 64..1394)\n"
		"  --rate PPS        at most PPS packets a second (default: flat out)\n"
		"  --tx ring|sendmmsg  a TX ring (default) or sendmmsg() calls\n"
		"  --count N         stop after N packets (default unlimited)\n"
		"  --seconds S       stop after S seconds (default 5)\n");
}

static bool parse_mac(const char *s, uint8_t *mac)
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
		      &mac[4], &mac[5]) == 6;
}

static bool parse_profile(const char *s, enum gen_profile *p)
{
	for (size_t i = 0; i < sizeof(profile_names) / sizeof(profile_names[0]); i++) {
		if (strcmp(s, profile_names[i]) == 0) {
			*p = (enum gen_profile)i;
			return true;
		}
	}
	return false;
}

static bool parse_addr(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1;
}

/* One option; false when its value is bad. */
static bool parse_opt(struct gen_opts *o, int c, const char *v)
{
	char *end = NULL;

	switch (c) {
	case 'i': snprintf(o->ifname, sizeof(o->ifname), "%s", v); return *v != 0;
	case 'm': return (o->have_mac = parse_mac(v, o->dst_mac));
	case 'g': return parse_addr(v, &o->gateway);
	case 'p': return parse_profile(v, &o->profile);
	case 'b': return parse_addr(v, &o->site_base);
	case 'B': return parse_addr(v, &o->inner_base);
	case 'd': return parse_addr(v, &o->inner_dst);
	case 'P': o->plain = true; return parse_addr(v, &o->plain_src);
	case 's': o->sites = (uint32_t)strtoul(v, &end, 10); break;
	case 'f': o->flows = (uint32_t)strtoul(v, &end, 10); break;
	case 'H': o->flow_hosts = true; return true;
	case 'u': o->burst = (uint32_t)strtoul(v, &end, 10); break;
	case 'c': o->count = strtoull(v, &end, 10); break;
	case 'S': o->seconds = strtod(v, &end); break;
	case 'r': o->rate = strtod(v, &end); break;
	case 'G': o->udp_gso = (uint32_t)strtoul(v, &end, 10); break;
	case 'T':
		o->sendmmsg = strcmp(v, "sendmmsg") == 0;
		return o->sendmmsg || strcmp(v, "ring") == 0;
	default: return false;
	}
	return end && *end == 0 && end != v;
}

static int parse_args(struct gen_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ifname", 1, NULL, 'i' }, { "dst-mac", 1, NULL, 'm' },
		{ "gateway", 1, NULL, 'g' }, { "profile", 1, NULL, 'p' },
		{ "sites", 1, NULL, 's' }, { "flows", 1, NULL, 'f' },
		{ "burst", 1, NULL, 'u' }, { "flow-hosts", 0, NULL, 'H' },
		{ "site-base", 1, NULL, 'b' }, { "inner-base", 1, NULL, 'B' },
		{ "inner-dst", 1, NULL, 'd' }, { "plain", 1, NULL, 'P' },
		{ "count", 1, NULL, 'c' }, { "seconds", 1, NULL, 'S' },
		{ "rate", 1, NULL, 'r' }, { "udp-gso", 1, NULL, 'G' },
		{ "tx", 1, NULL, 'T' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct gen_opts){ .sites = 1, .flows = 16, .burst = 1, .count = UINT64_MAX,
				.seconds = 5 };
	parse_addr("172.16.0.1", &o->site_base);
	parse_addr("10.1.0.2", &o->inner_base);
	parse_addr("203.0.113.1", &o->inner_dst);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (!parse_opt(o, c, optarg ? optarg : "")) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->ifname[0] || !o->have_mac || (!o->gateway.s_addr && !o->plain) ||
	    o->sites == 0 || o->burst == 0 || o->seconds <= 0 || optind != argc || o->rate < 0 ||
	    (o->udp_gso && (!o->plain || o->udp_gso < 64 || o->udp_gso > GSO_SEGMENT_MAX)) ||
	    (o->plain && (o->profile == P_TCP || o->profile == P_IMIX_TCP ||
			  o->profile == P_KEEPALIVE))) {
		usage(stderr);
		return -EINVAL;
	}
	if (o->flows < o->sites)
		o->flows = o->sites;
	/* Whole IMIX cycles of flows, so the flows' sizes keep the mix. */
	if (o->profile == P_IMIX_TCP)
		o->flows = (o->flows + IMIX_CYCLE - 1) / IMIX_CYCLE * IMIX_CYCLE;
	return 0;
}

int main(int argc, char **argv)
{
	static struct gen g;
	double seconds;
	int r;

	if (parse_args(&g.o, argc, argv) < 0)
		return 2;
	r = g.o.udp_gso ? open_udp_gso_socket(&g) : open_socket(&g);
	if (r < 0) {
		fprintf(stderr, "gregen: %s: %s\n", g.o.ifname, strerror(-r));
		return 1;
	}
	for (unsigned i = 0; i < GEN_BATCH; i++) {
		g.iov[i].iov_base = g.buf[i];
		g.msg[i].msg_hdr = (struct msghdr){ .msg_iov = &g.iov[i], .msg_iovlen = 1 };
	}
	seconds = g.o.udp_gso ? gen_run_udp_gso(&g) : gen_run(&g);
	printf("gregen profile=%s sites=%u packets=%llu inner_bytes=%llu wire_bytes=%llu "
	       "seconds=%.3f errors=%llu\n", profile_names[g.o.profile], g.o.sites,
	       (unsigned long long)g.packets, (unsigned long long)g.inner_bytes,
	       (unsigned long long)g.wire_bytes, seconds, (unsigned long long)g.errors);
	close(g.fd);
	return 0;
}
