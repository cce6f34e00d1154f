/*
 * The return path with offloads: large TCP and UDP packets read from a TUN
 * queue with their virtio_net_hdr, cut into segments and sent as GRE, and
 * partial checksums completed. Each segment is caught as it leaves and
 * checked as a router would: its IP and transport headers, sequence
 * numbers, flags, IDs and the full checksum, and the payload of all
 * segments together must be the original's.
 *
 * As in test_gatewayd_worker.c, the test runs in its own network namespace
 * where 198.18.0.0/24 is local, the tenant's TUN is a SOCK_SEQPACKET pair
 * and a raw GRE socket catches what the worker sends to the routers.
 */
#include <arpa/inet.h>
#include <CUnit/Basic.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "gatewayd/gso.h"
#include "gatewayd/tun.h"
#include "tests/unit/worker_fixture.h"
#include "lib/timeutil.h"

#define GATEWAY		"198.18.0.11"
#define ROUTER_A	"198.18.0.2"	/* site a: swg+cfw, no key: inner MTU 1476 */
#define ROUTER_B	"198.18.0.3"	/* site b: swg+cfw, key 42: inner MTU 1472 */
#define HOST_A4		"10.1.0.2"	/* behind site a */
#define HOST_A6		"fd00:1::2"
#define HOST_B4		"10.2.0.2"	/* behind site b */
#define SERVICE4	"198.19.0.2"
#define SERVICE6	"fd00:99::2"
#define OUTER_LEN	24		/* outer IPv4 + GRE without key */
#define BIG		65535

static char dir[] = "/tmp/grepop-tso-XXXXXX";

/* The payload every large packet carries: no two segments look alike. */
static uint8_t pattern[BIG];

static int add_site(struct sites *sites, const char *name, const char *src, const char *key)
{
	struct site_conf sc;
	char err[CONF_ERR_MAX];

	site_conf_init(&sc);
	if (site_conf_set(&sc, "name", name, err) < 0 ||
	    site_conf_set(&sc, "source_ip", src, err) < 0 ||
	    site_conf_set(&sc, "key", key, err) < 0 ||
	    site_conf_set(&sc, "services", "swg+cfw", err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return sites_add(sites, &sc);
}

static int write_conf(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "pop = { name = \"t1\"; gateway_ip = \"%s\"; tunnel_mtu = 1476; };\n"
		   "runtime_dir = \"%s\";\nstate_dir = \"%s\";\nsites_file = \"%s/sites.csv\";\n"
		   "gateway = { workers = 1; max_sites = 16; offload = true; };\n",
		GATEWAY, dir, dir, dir);
	return fclose(f);
}

static int suite_init(void)
{
	char path[256];
	struct sites sites = { 0 };

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + i / 251);
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	if (system("ip link set lo up && ip addr add " GATEWAY "/32 dev lo && "
		   "ip route add local 198.18.0.0/24 dev lo") != 0)
		return -1;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/grepop.conf", dir);
	if (write_conf(path) < 0 || add_site(&sites, "a", ROUTER_A, "") < 0 ||
	    add_site(&sites, "b", ROUTER_B, "42") < 0)
		return -1;
	return fixture_open(dir, &sites);
}

static int suite_clean(void)
{
	return fixture_close(dir);
}

/* Packet builders. */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
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

/* An IP header of FAMILY for L4_LEN bytes of PROTO; returns its length. */
static size_t ip_header(uint8_t *p, int family, uint8_t proto, size_t l4_len)
{
	if (family == AF_INET6) {
		memset(p, 0, 40);
		p[0] = 0x60;
		put16(p + 4, (uint16_t)l4_len);
		p[6] = proto;
		p[7] = 64;
		inet_pton(AF_INET6, SERVICE6, p + 8);
		inet_pton(AF_INET6, HOST_A6, p + 24);
		return 40;
	}
	memset(p, 0, 20);
	p[0] = 0x45;
	put16(p + 2, (uint16_t)(20 + l4_len));
	put16(p + 4, 0x1234);
	p[6] = 0x40;
	p[8] = 64;
	p[9] = proto;
	inet_pton(AF_INET, SERVICE4, p + 12);
	inet_pton(AF_INET, HOST_A4, p + 16);
	put16(p + 10, (uint16_t)~csum_fold(csum_partial(p, 20, 0)));
	return 20;
}

/* The pseudo-header sum of the IP packet P for its L4_LEN transport bytes. */
static uint32_t pseudo(const uint8_t *p, size_t l4_len)
{
	if ((p[0] >> 4) == 6)
		return csum_partial(p + 8, 32, (uint32_t)l4_len + p[6]);
	return csum_partial(p + 12, 8, (uint32_t)l4_len + p[9]);
}

/*
 * A large TCP packet as the kernel hands it with TSO: FLAGS, sequence
 * SEQ, 12 bytes of options, PAYLOAD bytes of the pattern, the checksum
 * field holding the pseudo-header sum only. Returns the IP length.
 */
static size_t big_tcp(uint8_t *p, int family, uint8_t flags, uint32_t seq, size_t payload)
{
	size_t ip = ip_header(p, family, IPPROTO_TCP, 32 + payload);
	uint8_t *t = p + ip;

	memset(t, 0, 32);
	put16(t, 443);
	put16(t + 2, 50000);
	put32(t + 4, seq);
	put32(t + 8, 777);
	t[12] = 8 << 4;
	t[13] = flags;
	put16(t + 14, 512);
	t[20] = 1;
	t[21] = 1;
	t[22] = 8;	/* timestamps */
	t[23] = 10;
	memcpy(t + 32, pattern, payload);
	put16(t + 16, csum_fold(pseudo(p, 32 + payload)));
	return ip + 32 + payload;
}

static size_t big_udp(uint8_t *p, int family, size_t payload)
{
	size_t ip = ip_header(p, family, IPPROTO_UDP, 8 + payload);
	uint8_t *u = p + ip;

	put16(u, 5000);
	put16(u + 2, 6000);
	put16(u + 4, (uint16_t)(8 + payload));
	memcpy(u + 8, pattern, payload);
	put16(u + 6, csum_fold(pseudo(p, 8 + payload)));
	return ip + 8 + payload;
}

static struct virtio_net_hdr vnet(uint8_t gso_type, uint16_t gso_size, size_t l4_off,
				  uint8_t proto)
{
	return (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = gso_type,
		.gso_size = gso_size,
		.hdr_len = (uint16_t)(l4_off + (proto == IPPROTO_TCP ? 32 : 8)),
		.csum_start = (uint16_t)l4_off,
		.csum_offset = proto == IPPROTO_TCP ? 16 : 6,
	};
}

/* Hand the worker one read: VH, then the IP packet PKT. */
static void from_tun(const struct virtio_net_hdr *vh, const uint8_t *pkt, size_t len)
{
	static uint8_t buf[TUN_VNET_HDR_LEN + BIG + 40];

	memcpy(buf, vh, TUN_VNET_HDR_LEN);
	memcpy(buf + TUN_VNET_HDR_LEN, pkt, len);
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_tun_read(w, 0, buf, TUN_VNET_HDR_LEN + len);
	worker_flush_tx(w);
	rcu_read_unlock();
}

static void drain(void)
{
	uint8_t buf[BIG];

	while (recv(capture, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	while (recv(tun_peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Teach the worker that HOST lives behind ROUTER: one packet up the tunnel. */
static void learn(const char *router, bool key, const char *host, int family)
{
	uint8_t in[128], pkt[256];
	size_t n, h;

	n = ip_header(in, family, IPPROTO_UDP, 8);
	memset(in + n, 0, 8);
	put16(in + n + 4, 8);
	/* ip_header builds service -> A; turn it around: HOST -> service. */
	if (family == AF_INET) {
		inet_pton(AF_INET, host, in + 12);
		inet_pton(AF_INET, SERVICE4, in + 16);
		put16(in + 10, 0);
		put16(in + 10, (uint16_t)~csum_fold(csum_partial(in, 20, 0)));
	} else {
		inet_pton(AF_INET6, host, in + 8);
		inet_pton(AF_INET6, SERVICE6, in + 24);
	}
	h = gre_build_header(pkt, (struct in_addr){ inet_addr(router) },
			     (struct in_addr){ inet_addr(GATEWAY) }, key, 42,
			     family == AF_INET ? GRE_PROTO_IPV4 : GRE_PROTO_IPV6, n + 8, 1);
	memcpy(pkt + h, in, n + 8);
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_gre(w, pkt, h + n + 8);
	worker_flush_tx(w);
	rcu_read_unlock();
}

static void set_up(void)
{
	struct shm_pop *pop = &gw.shm.hdr->pop;

	pop->service[SHM_SVC_SWG].health = SHM_HEALTH_UP;
	pop->service[SHM_SVC_CFW].health = SHM_HEALTH_UP;
	pop->healthd_heartbeat_ns = now_realtime_ns();
	pop->accept_mode = SHM_ACCEPT_ACCEPT;
	w->offload = true;
	learn(ROUTER_A, false, HOST_A4, AF_INET);
	learn(ROUTER_A, false, HOST_A6, AF_INET6);
	learn(ROUTER_B, true, HOST_B4, AF_INET);
	drain();
}

/* Whether the transport checksum of the IP packet P (IP_LEN bytes, L4 at L4_OFF) is right. */
static bool l4_csum_ok(const uint8_t *p, size_t l4_off, size_t ip_len)
{
	return csum_partial(p + l4_off, ip_len - l4_off, pseudo(p, ip_len - l4_off)) == 0xffff;
}

/* What the segments of one large packet must share and what each must say. */
struct expect {
	const uint8_t *orig;		/* the large packet */
	size_t l4_off, hdr_len, payload, seg_size;
	unsigned segments;
};

static void check_ip(const struct expect *e, unsigned k, const uint8_t *seg, size_t seg_len)
{
	if ((seg[0] >> 4) == 6) {
		CU_ASSERT_EQUAL(get16(seg + 4), seg_len - 40);
		CU_ASSERT(memcmp(seg + 6, e->orig + 6, 34) == 0);
		return;
	}
	CU_ASSERT_EQUAL(get16(seg + 2), seg_len);
	CU_ASSERT_EQUAL(get16(seg + 4), 0x1234 + k);
	CU_ASSERT_EQUAL(csum_partial(seg, 20, 0), 0xffff);
	CU_ASSERT(memcmp(seg + 12, e->orig + 12, 8) == 0);
}

static void check_tcp(const struct expect *e, unsigned k, const uint8_t *t)
{
	uint8_t flags = e->orig[e->l4_off + 13], want = flags;

	CU_ASSERT_EQUAL(get32(t + 4), (uint32_t)(get32(e->orig + e->l4_off + 4) + k * e->seg_size));
	if (k > 0)
		want &= (uint8_t)~0x80;				/* CWR */
	if (k + 1 < e->segments)
		want &= (uint8_t)~(0x01 | 0x08);		/* FIN, PSH */
	CU_ASSERT_EQUAL(t[13], want);
	CU_ASSERT(memcmp(t + 20, e->orig + e->l4_off + 20, 12) == 0);	/* options */
}

/* Catch E's segments: headers, checksums, and the payload in order. Returns the count. */
static unsigned catch_segments(const struct expect *e, const char *router)
{
	static uint8_t got[BIG];
	uint8_t out[GW_BUF_SIZE];
	size_t done = 0;
	unsigned k = 0;
	ssize_t n;

	while (k <= e->segments && (n = sent_read(out, sizeof(out))) > 0) {
		const uint8_t *seg = out + OUTER_LEN;
		size_t seg_len = (size_t)n - OUTER_LEN, chunk = seg_len - e->hdr_len;
		struct in_addr dst;

		memcpy(&dst, out + 16, 4);
		CU_ASSERT_STRING_EQUAL(inet_ntoa(dst), router);
		CU_ASSERT(chunk == e->seg_size || (k + 1 == e->segments && chunk < e->seg_size));
		check_ip(e, k, seg, seg_len);
		if (e->orig[(e->orig[0] >> 4) == 6 ? 6 : 9] == IPPROTO_TCP)
			check_tcp(e, k, seg + e->l4_off);
		else
			CU_ASSERT_EQUAL(get16(seg + e->l4_off + 4), seg_len - e->l4_off);
		CU_ASSERT(l4_csum_ok(seg, e->l4_off, seg_len));
		if (done + chunk <= sizeof(got))
			memcpy(got + done, seg + e->hdr_len, chunk);
		done += chunk;
		k++;
	}
	CU_ASSERT_EQUAL(done, e->payload);
	CU_ASSERT(done == e->payload && memcmp(got, e->orig + e->hdr_len, done) == 0);
	return k;
}

static void test_tcp4_segmented(void)
{
	static uint8_t p[BIG];
	size_t payload = 64000, n = big_tcp(p, AF_INET, 0x80 | 0x18 | 0x01, 1000, payload);
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 1400,
					20, IPPROTO_TCP);
	struct expect e = { p, 20, 52, payload, 1400, (unsigned)((payload + 1399) / 1400) };
	uint64_t pkts, bytes;

	set_up();
	pkts = SITE("a", tx_packets);
	bytes = SITE("a", tx_bytes);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(catch_segments(&e, ROUTER_A), 46);
	CU_ASSERT_EQUAL(SITE("a", tx_packets), pkts + 46);
	CU_ASSERT_EQUAL(SITE("a", tx_bytes), bytes + payload + 46 * 52);
}

static void test_tcp6_segmented(void)
{
	static uint8_t p[BIG];
	size_t payload = 10 * 1380 + 17, n = big_tcp(p, AF_INET6, 0x18, 0xfffff000, payload);
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV6, 1380, 40, IPPROTO_TCP);
	struct expect e = { p, 40, 72, payload, 1380, 11 };

	set_up();
	/* The sequence number wraps inside this packet. */
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(catch_segments(&e, ROUTER_A), 11);
}

static void test_udp_segmented(void)
{
	static uint8_t p[BIG];
	size_t payload = 20 * 1200, n;
	struct expect e = { p, 20, 28, payload, 1200, 20 };
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_UDP_L4, 1200, 20, IPPROTO_UDP);

	set_up();
	n = big_udp(p, AF_INET, payload);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(catch_segments(&e, ROUTER_A), 20);
	n = big_udp(p, AF_INET6, payload - 100);
	e = (struct expect){ p, 40, 48, payload - 100, 1200, 20 };
	vh = vnet(VIRTIO_NET_HDR_GSO_UDP_L4, 1200, 40, IPPROTO_UDP);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(catch_segments(&e, ROUTER_A), 20);
}

/* More segments than a tx batch holds, to a keyed site: the batch is sent as it fills. */
static void test_more_than_a_batch(void)
{
	static uint8_t p[BIG];
	size_t payload = 65000, n = big_tcp(p, AF_INET, 0x10, 5, payload);
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 536, 20, IPPROTO_TCP);
	struct expect e = { p, 20, 52, payload, 536, (unsigned)((payload + 535) / 536) };

	set_up();
	inet_pton(AF_INET, HOST_B4, p + 16);
	put16(p + 10, 0);
	put16(p + 10, (uint16_t)~csum_fold(csum_partial(p, 20, 0)));
	put16(p + 36, csum_fold(pseudo(p, n - 20)));
	from_tun(&vh, p, n);
	/* GRE with a key: 4 more outer bytes; look past them. */
	{
		uint8_t out[GW_BUF_SIZE];
		unsigned k = 0;
		ssize_t r;

		while (k < 200 && (r = sent_read(out, sizeof(out))) > 0) {
			CU_ASSERT_EQUAL(out[20], 0x20);
			CU_ASSERT(l4_csum_ok(out + 28, 20, (size_t)r - 28));
			CU_ASSERT_EQUAL(get32(out + 28 + 24), 5 + k * 536);
			k++;
		}
		CU_ASSERT_EQUAL(k, e.segments);
	}
}

/* No GSO, but the checksum left to us: completed before sending. */
static void test_needs_csum(void)
{
	static uint8_t p[2000];
	uint8_t out[GW_BUF_SIZE];
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_NONE, 0, 20, IPPROTO_UDP);
	size_t n;

	set_up();
	n = big_udp(p, AF_INET, 1001);
	CU_ASSERT(!l4_csum_ok(p, 20, n));
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), (ssize_t)(OUTER_LEN + n));
	CU_ASSERT(l4_csum_ok(out + OUTER_LEN, 20, n));
	CU_ASSERT(memcmp(out + OUTER_LEN + 28, pattern, 1001) == 0);
	n = big_tcp(p, AF_INET6, 0x18, 1, 900);
	vh = vnet(VIRTIO_NET_HDR_GSO_NONE, 0, 40, IPPROTO_TCP);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), (ssize_t)(OUTER_LEN + n));
	CU_ASSERT(l4_csum_ok(out + OUTER_LEN, 40, n));
	/* DATA_VALID: nothing to do, sent as it is. */
	vh = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_DATA_VALID };
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), (ssize_t)(OUTER_LEN + n));
	CU_ASSERT(memcmp(out + OUTER_LEN, p, n) == 0);
	/* A SYN-ACK with its checksum left to us: completed, then the MSS clamped. */
	n = big_tcp(p, AF_INET, 0x12, 1, 0);
	memcpy(p + 40, (const uint8_t[]){ 2, 4, 0x05, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1 }, 12);
	put16(p + 36, csum_fold(pseudo(p, n - 20)));
	vh = vnet(VIRTIO_NET_HDR_GSO_NONE, 0, 20, IPPROTO_TCP);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), (ssize_t)(OUTER_LEN + n));
	CU_ASSERT_EQUAL(get16(out + OUTER_LEN + 42), 1476 - 40);
	CU_ASSERT(l4_csum_ok(out + OUTER_LEN, 20, n));
}

/* Headers that do not match the packet: counted, nothing sent, nothing read out of bounds. */
static void test_malformed(void)
{
	static uint8_t p[BIG];
	uint8_t out[GW_BUF_SIZE];
	size_t n = big_tcp(p, AF_INET, 0x10, 1, 3000);
	struct virtio_net_hdr bad[8];
	uint64_t before = POP_DROP(SHM_DROP_BAD_INNER);
	unsigned i = 0;

	set_up();
	bad[i] = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 0, 20, IPPROTO_TCP);		/* gso_size 0 */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_UDP, 1400, 20, IPPROTO_TCP);	/* UFO */
	bad[++i] = vnet(0x42, 1400, 20, IPPROTO_TCP);				/* unknown */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_TCPV6, 1400, 20, IPPROTO_TCP);	/* not IPv6 */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_UDP_L4, 1400, 20, IPPROTO_TCP);	/* not UDP */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 1400, 20, IPPROTO_TCP);
	bad[i].hdr_len = (uint16_t)(n + 1);					/* beyond */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_NONE, 0, 20, IPPROTO_TCP);
	bad[i].csum_start = (uint16_t)(n - 1);					/* beyond */
	bad[++i] = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 2, 20, IPPROTO_TCP);	/* 1500 segments */
	for (unsigned j = 0; j <= i; j++)
		from_tun(&bad[j], p, n);
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_BAD_INNER), before + 8);
	/* A read shorter than its header, and a truncated IP packet. */
	from_tun(&bad[0], p, 0);
	from_tun(&bad[5], p, 30);
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_BAD_INNER), before + 10);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), -1);
}

/* Segments larger than the site's tunnel: one ICMP error back into the TUN, each counted. */
static void test_segments_too_big(void)
{
	static uint8_t p[BIG];
	uint8_t out[GW_BUF_SIZE];
	size_t n = big_tcp(p, AF_INET, 0x10, 1, 4 * 1460);
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 1460, 20, IPPROTO_TCP);
	uint64_t before = SITE_DROP("a", SHM_DROP_TOO_BIG);
	ssize_t r;

	set_up();
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_TOO_BIG), before + 4);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), -1);
	r = recv(tun_peer, out, sizeof(out), MSG_DONTWAIT);
	CU_ASSERT(r > (ssize_t)(TUN_VNET_HDR_LEN + 28));
	CU_ASSERT_EQUAL(out[TUN_VNET_HDR_LEN + 20], 3);		/* unreachable */
	CU_ASSERT_EQUAL(out[TUN_VNET_HDR_LEN + 21], 4);		/* fragmentation needed */
	CU_ASSERT_EQUAL(get16(out + TUN_VNET_HDR_LEN + 26), 1476);
}

/* gateway.offload = false: the header is not looked at, as before offloads existed. */
static void test_offload_off(void)
{
	static uint8_t p[BIG];
	uint8_t out[GW_BUF_SIZE];
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 1400, 20, IPPROTO_TCP);
	uint64_t too_big = SITE_DROP("a", SHM_DROP_TOO_BIG);
	size_t n;

	set_up();
	w->offload = false;
	n = big_tcp(p, AF_INET, 0x10, 1, 500);
	put16(p + 36, 0xbeef);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), (ssize_t)(OUTER_LEN + n));
	CU_ASSERT(memcmp(out + OUTER_LEN, p, n) == 0);		/* checksum untouched */
	n = big_tcp(p, AF_INET, 0x10, 1, 3000);
	from_tun(&vh, p, n);
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_TOO_BIG), too_big + 1);
	CU_ASSERT_EQUAL(sent_read(out, sizeof(out)), -1);
	w->offload = true;
}

/* The real read loop: large reads from the queue, one after another. */
static void test_poll_reads(void)
{
	static uint8_t p[BIG], buf[TUN_VNET_HDR_LEN + BIG];
	struct virtio_net_hdr vh = vnet(VIRTIO_NET_HDR_GSO_TCPV4, 1400, 20, IPPROTO_TCP);
	size_t payload = 30000, n = big_tcp(p, AF_INET, 0x10, 1, payload);
	uint8_t out[GW_BUF_SIZE];
	unsigned got = 0;
	ssize_t r;

	set_up();
	memcpy(buf, &vh, TUN_VNET_HDR_LEN);
	memcpy(buf + TUN_VNET_HDR_LEN, p, n);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(write(tun_peer, buf, TUN_VNET_HDR_LEN + n),
				(ssize_t)(TUN_VNET_HDR_LEN + n));
	/* The worker thread reads, segments and sends them. */
	CU_ASSERT_EQUAL(worker_start(w), 0);
	while (got < 5 * 22 && (r = sent_read(out, sizeof(out))) > 0) {
		CU_ASSERT(l4_csum_ok(out + OUTER_LEN, 20, (size_t)r - OUTER_LEN));
		got++;
	}
	atomic_store(&gw.stopping, true);
	pthread_join(w->thread, NULL);
	w->thread = 0;
	atomic_store(&gw.stopping, false);
	CU_ASSERT_EQUAL(got, 5 * 22);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gatewayd tso", suite_init, suite_clean);
	CU_add_test(s, "TCPv4 segmented", test_tcp4_segmented);
	CU_add_test(s, "TCPv6 segmented", test_tcp6_segmented);
	CU_add_test(s, "UDP segmented", test_udp_segmented);
	CU_add_test(s, "more segments than a batch", test_more_than_a_batch);
	CU_add_test(s, "partial checksum completed", test_needs_csum);
	CU_add_test(s, "malformed headers dropped", test_malformed);
	CU_add_test(s, "segments too big", test_segments_too_big);
	CU_add_test(s, "offload off", test_offload_off);
	CU_add_test(s, "read loop", test_poll_reads);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
