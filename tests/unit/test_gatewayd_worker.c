/*
 * The worker's decisions, packet by packet, through the real receive and
 * return paths: site lookup, keys, tunnel admission, health, acceptance,
 * keepalives, probes, policy, MTU, MSS, endpoints and counting.
 *
 * The test runs in a network namespace of its own, where 198.18.0.0/24 is
 * local: the worker's raw sockets are real, and what it sends to a router is
 * caught here by a raw GRE socket. The tenant's TUN is a SOCK_SEQPACKET
 * pair, so each write is one packet read back whole.
 */
#include <arpa/inet.h>
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>

#include "gatewayd/gateway.h"
#include "gatewayd/tun.h"
#include "tests/unit/worker_fixture.h"
#include "lib/timeutil.h"

#define GATEWAY		"198.18.0.11"
#define ROUTER_A	"198.18.0.2"	/* site a: swg+cfw, no key */
#define ROUTER_B	"198.18.0.3"	/* site b: swg only, key 42, http_ports 8443 */
#define ROUTER_C	"198.18.0.4"	/* site c: disabled */
#define PROBE_IP	"100.64.255.1"
#define OTHER_LOCAL	"192.0.2.77"	/* another address of the POP host */

static char dir[] = "/tmp/grepop-worker-XXXXXX";

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a;
}

static int add_site(struct sites *sites, const char *name, const char *src, const char *key,
		    const char *services, const char *enabled, const char *ports)
{
	struct site_conf sc;
	char err[CONF_ERR_MAX];

	site_conf_init(&sc);
	if (site_conf_set(&sc, "name", name, err) < 0 ||
	    site_conf_set(&sc, "source_ip", src, err) < 0 ||
	    site_conf_set(&sc, "key", key, err) < 0 ||
	    site_conf_set(&sc, "services", services, err) < 0 ||
	    site_conf_set(&sc, "enabled", enabled, err) < 0 ||
	    site_conf_set(&sc, "http_ports", ports, err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return sites_add(sites, &sc);
}

/* Services up and a fresh healthd heartbeat, or not. */
static void set_health(int swg, int cfw, bool heartbeat)
{
	struct shm_pop *pop = &gw.shm.hdr->pop;

	pop->service[SHM_SVC_SWG].health = swg;
	pop->service[SHM_SVC_CFW].health = cfw;
	pop->healthd_heartbeat_ns = heartbeat ? now_realtime_ns() : 1;
	pop->accept_mode = SHM_ACCEPT_ACCEPT;
}

static int run_cmd(const char *cmd)
{
	return system(cmd);
}

static int suite_init(void)
{
	char path[256];
	struct sites sites = { 0 };
	FILE *f;

	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	if (run_cmd("ip link set lo up && ip addr add " GATEWAY "/32 dev lo && "
		    "ip addr add " OTHER_LOCAL "/32 dev lo && "
		    "ip route add local 198.18.0.0/24 dev lo") != 0)
		return -1;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/grepop.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "pop = { name = \"t1\"; gateway_ip = \"%s\"; probe_ip = \"%s\"; "
		   "tunnel_mtu = 1476; };\nruntime_dir = \"%s\";\nstate_dir = \"%s\";\n"
		   "sites_file = \"%s/sites.csv\";\n"
		   "gateway = { workers = 1; max_sites = 16; tunnel_idle_s = 1800; };\n",
		GATEWAY, PROBE_IP, dir, dir, dir);
	fclose(f);
	if (add_site(&sites, "a", ROUTER_A, "", "swg+cfw", "yes", "") < 0 ||
	    add_site(&sites, "b", ROUTER_B, "42", "swg", "yes", "8443") < 0 ||
	    add_site(&sites, "c", ROUTER_C, "", "swg+cfw", "no", "") < 0)
		return -1;
	return fixture_open(dir, &sites);
}

static int suite_clean(void)
{
	return fixture_close(dir);
}

/* Packet builders: an IPv4 header, then GRE around it. */

static size_t ipv4(uint8_t *p, const char *src, const char *dst, uint8_t proto, size_t payload,
		   bool df)
{
	struct in_addr s = ip(src), d = ip(dst);
	uint16_t total = htons((uint16_t)(20 + payload)), sum;

	memset(p, 0, 20);
	p[0] = 0x45;
	memcpy(p + 2, &total, 2);
	p[6] = df ? 0x40 : 0;
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, &s, 4);
	memcpy(p + 16, &d, 4);
	sum = htons((uint16_t)~csum_fold(csum_partial(p, 20, 0)));
	memcpy(p + 10, &sum, 2);
	return 20 + payload;
}

static size_t udp(uint8_t *p, const char *src, const char *dst, uint16_t dport, size_t data)
{
	uint8_t *u = p + 20;

	memset(u, 0, 8 + data);
	u[0] = 0x30;
	u[1] = 0x39;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)((8 + data) >> 8);
	u[5] = (uint8_t)(8 + data);
	return ipv4(p, src, dst, IPPROTO_UDP, 8 + data, false);
}

/* A TCP SYN with an MSS option of MSS, checksum correct. */
static size_t tcp_syn(uint8_t *p, const char *src, const char *dst, uint16_t dport, uint16_t mss)
{
	uint8_t *t = p + 20;
	uint32_t sum;
	uint16_t c;
	size_t n;

	memset(t, 0, 24);
	t[0] = 0x9c;
	t[1] = 0x40;
	t[2] = (uint8_t)(dport >> 8);
	t[3] = (uint8_t)dport;
	t[12] = 6 << 4;
	t[13] = 0x02;
	t[14] = 0xff;
	t[20] = 2;
	t[21] = 4;
	t[22] = (uint8_t)(mss >> 8);
	t[23] = (uint8_t)mss;
	n = ipv4(p, src, dst, IPPROTO_TCP, 24, true);
	sum = csum_partial(p + 12, 8, 0) + IPPROTO_TCP + 24;
	c = htons((uint16_t)~csum_fold(csum_partial(t, 24, sum)));
	memcpy(t + 16, &c, 2);
	return n;
}

static size_t icmp_echo(uint8_t *p, const char *src, const char *dst)
{
	uint8_t *m = p + 20;
	uint16_t c;

	memset(m, 0, 16);
	m[0] = 8;
	m[4] = 0x12;
	m[6] = 0x00;
	m[7] = 0x01;
	c = htons((uint16_t)~csum_fold(csum_partial(m, 16, 0)));
	memcpy(m + 2, &c, 2);
	return ipv4(p, src, dst, IPPROTO_ICMP, 16, false);
}

/* A Cisco keepalive: inner IPv4 GRE protocol 0 from INNER_SRC to INNER_DST. */
static size_t keepalive(uint8_t *p, const char *inner_src, const char *inner_dst, bool key)
{
	uint8_t *g = p + 20;
	size_t glen = key ? 8 : 4;

	memset(g, 0, glen);
	if (key) {
		g[0] = 0x20;
		g[7] = 42;
	}
	return ipv4(p, inner_src, inner_dst, IPPROTO_GRE, glen, false);
}

/* Wrap INNER in outer IPv4 + GRE from SRC to the gateway. */
static size_t gre(uint8_t *out, const char *src, bool key, uint32_t keyval, uint16_t proto,
		  const uint8_t *inner, size_t len)
{
	size_t h = gre_build_header(out, ip(src), ip(GATEWAY), key, keyval, proto, len, 7);

	memcpy(out + h, inner, len);
	return h + len;
}

static void receive(const uint8_t *pkt, size_t len)
{
	static uint8_t copy[GW_BUF_SIZE];

	memcpy(copy, pkt, len);
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_gre(w, copy, len);
	worker_flush_tx(w);
	rcu_read_unlock();
}

static void from_tun(const uint8_t *pkt, size_t len)
{
	static uint8_t copy[GW_BUF_SIZE];

	memcpy(copy, pkt, len);
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_tun(w, 0, copy, len);
	worker_flush_tx(w);
	rcu_read_unlock();
}

/* The next packet written to the TUN, or -1 when there is none. */
static ssize_t tun_read(uint8_t *buf)
{
	static const struct virtio_net_hdr plain = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	uint8_t raw[TUN_VNET_HDR_LEN + GW_BUF_SIZE];
	ssize_t n = read(tun_peer, raw, sizeof(raw));

	if (n < 0)
		return n;
	/* A plain packet: the header asks the kernel for nothing. */
	CU_ASSERT_FATAL(n >= (ssize_t)TUN_VNET_HDR_LEN);
	CU_ASSERT(memcmp(raw, &plain, TUN_VNET_HDR_LEN) == 0);
	memcpy(buf, raw + TUN_VNET_HDR_LEN, (size_t)n - TUN_VNET_HDR_LEN);
	return n - (ssize_t)TUN_VNET_HDR_LEN;
}

static void drain(void)
{
	uint8_t buf[GW_BUF_SIZE];

	while (tun_read(buf) > 0)
		;
	while (recv(capture, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void test_deliver_and_establish(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	n = gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
		udp(in, "10.1.0.2", "198.19.0.2", 53, 10));
	receive(pkt, n);
	CU_ASSERT_EQUAL(tun_read(out), 38);
	CU_ASSERT(memcmp(out, in, 38) == 0);
	CU_ASSERT_EQUAL(SITE("a", rx_packets), 1);
	CU_ASSERT_EQUAL(SITE("a", rx_bytes), 38);
	CU_ASSERT(SITE("a", established_ns) > 0);
	CU_ASSERT(SITE("a", last_user_ns) > 0);
}

static void test_unknown_key_disabled(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t len = udp(in, "10.2.0.2", "198.19.0.2", 443, 0);
	uint64_t unknown = POP_DROP(SHM_DROP_UNKNOWN_SOURCE);

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	receive(pkt, gre(pkt, "198.18.0.99", false, 0, GRE_PROTO_IPV4, in, len));
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_UNKNOWN_SOURCE), unknown + 1);
	receive(pkt, gre(pkt, ROUTER_B, true, 41, GRE_PROTO_IPV4, in, len));
	receive(pkt, gre(pkt, ROUTER_B, false, 0, GRE_PROTO_IPV4, in, len));
	CU_ASSERT_EQUAL(SITE_DROP("b", SHM_DROP_BAD_KEY), 2);
	receive(pkt, gre(pkt, ROUTER_C, false, 0, GRE_PROTO_IPV4, in, len));
	CU_ASSERT_EQUAL(SITE_DROP("c", SHM_DROP_DISABLED), 1);
	CU_ASSERT_EQUAL(tun_read(out), -1);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);
}

static void test_policy_swg_only(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	receive(pkt, gre(pkt, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
			 udp(in, "10.3.0.2", "198.19.0.2", 53, 4)));
	CU_ASSERT_EQUAL(SITE_DROP("b", SHM_DROP_POLICY), 1);
	receive(pkt, gre(pkt, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
			 tcp_syn(in, "10.3.0.2", "198.19.0.2", 8443, 1200)));
	CU_ASSERT(tun_read(out) > 0);
	receive(pkt, gre(pkt, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
			 tcp_syn(in, "10.3.0.2", "198.19.0.2", 22, 1200)));
	CU_ASSERT_EQUAL(SITE_DROP("b", SHM_DROP_POLICY), 2);
	CU_ASSERT_EQUAL(SITE("b", rx_packets), 1);
}

static void test_mss_clamped(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	n = tcp_syn(in, "10.1.0.2", "198.19.0.2", 443, 1460);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(tun_read(out), (ssize_t)n);
	CU_ASSERT_EQUAL((out[42] << 8) | out[43], 1436);
	/* The checksum still verifies: pseudo-header + segment sums to 0xffff. */
	CU_ASSERT_EQUAL(csum_fold(csum_partial(out + 20, 24, csum_partial(out + 12, 8, 0) +
					       IPPROTO_TCP + 24)), 0xffff);
}

/* A key takes 4 of the tunnel's bytes: a keyed site's MSS is 4 less. */
static void test_mss_clamped_keyed(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	n = tcp_syn(in, "10.3.0.2", "198.19.0.2", 443, 1460);
	receive(pkt, gre(pkt, ROUTER_B, true, 42, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(tun_read(out), (ssize_t)n);
	CU_ASSERT_EQUAL((out[42] << 8) | out[43], 1432);
}

static void test_keepalive_reflected(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t n;
	uint64_t before = SITE("b", keepalives);

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	n = keepalive(in, GATEWAY, ROUTER_B, true);
	receive(pkt, gre(pkt, ROUTER_B, true, 42, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE("b", keepalives), before + 1);
	CU_ASSERT(SITE("b", last_keepalive_ns) > 0);
	/* What went out is the inner packet, unchanged: GRE protocol 0 to the router. */
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), (ssize_t)n);
	CU_ASSERT(memcmp(out + 12, in + 12, 8) == 0);
	CU_ASSERT_EQUAL(out[20 + 2], 0);
	CU_ASSERT_EQUAL(out[20 + 3], 0);
	CU_ASSERT_EQUAL(tun_read(out), -1);
}

static void test_keepalive_reflection_refused(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	/* A keepalive whose inner destination is someone else. */
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
			 keepalive(in, GATEWAY, "198.18.0.77", false)));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_REFLECT), 1);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);
}

static void test_withheld_when_unhealthy(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	size_t n = keepalive(in, GATEWAY, ROUTER_A, false);
	uint64_t withheld = SITE_DROP("a", SHM_DROP_NOT_SERVING);

	drain();
	set_health(SHM_HEALTH_DOWN, SHM_HEALTH_UP, true);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, false);	/* healthd silent: unknown */
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	gw.shm.hdr->pop.accept_mode = SHM_ACCEPT_DRAIN;
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_NOT_SERVING), withheld + 3);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);

	/* Draining still carries the established tunnel's traffic. */
	n = udp(in, "10.1.0.2", "198.19.0.2", 53, 0);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(tun_read(out), (ssize_t)n);

	/* no-new answers keepalives of established tunnels. */
	gw.shm.hdr->pop.accept_mode = SHM_ACCEPT_NO_NEW;
	n = keepalive(in, GATEWAY, ROUTER_A, false);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), (ssize_t)n);
	gw.shm.hdr->pop.accept_mode = SHM_ACCEPT_ACCEPT;
}

static void test_new_tunnel_refused(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	struct shm_site *slot = NULL;
	size_t n = udp(in, "10.1.0.2", "198.19.0.2", 53, 0);

	for (uint32_t s = 0; s < gw.shm.hdr->site_capacity; s++)
		if (strcmp(shm_site_at(&gw.shm, s)->id.name, "a") == 0)
			slot = shm_site_at(&gw.shm, s);
	CU_ASSERT_FATAL(slot != NULL);
	drain();
	/* Make site a's tunnel idle for longer than tunnel_idle_s. */
	slot->lane[0].last_seen_ns = now_realtime_ns() - 3600 * NSEC_PER_SEC;
	set_health(SHM_HEALTH_UP, SHM_HEALTH_DOWN, true);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_AUTH_FAILURE), 1);
	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	gw.shm.hdr->pop.accept_mode = SHM_ACCEPT_NO_NEW;
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_AUTH_FAILURE), 2);
	CU_ASSERT_EQUAL(tun_read(out), -1);
	gw.shm.hdr->pop.accept_mode = SHM_ACCEPT_ACCEPT;
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(tun_read(out), (ssize_t)n);
	/* Established now: a health flip no longer stops its traffic. */
	set_health(SHM_HEALTH_DOWN, SHM_HEALTH_DOWN, true);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(tun_read(out), (ssize_t)n);
}

static void test_probe_answered(void)
{
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	uint64_t probes = SITE("a", probes);

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
			 icmp_echo(in, "10.1.0.1", PROBE_IP)));
	CU_ASSERT_EQUAL(SITE("a", probes), probes + 1);
	/* Back through the tunnel: outer 20 + GRE 4 + IPv4 20 + echo reply. */
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), 20 + 4 + 36);
	CU_ASSERT_EQUAL(out[24 + 20], 0);
	CU_ASSERT(memcmp(out + 24 + 16, in + 12, 4) == 0);	/* to the prober */
	/* An echo to any other address is ordinary traffic. */
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
			 icmp_echo(in, "10.1.0.1", "198.19.0.2")));
	CU_ASSERT(tun_read(out) > 0);
	CU_ASSERT_EQUAL(SITE("a", probes), probes + 1);
}

static void test_too_big(void)
{
	uint8_t in[2000], pkt[2100], out[GW_BUF_SIZE];
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	n = tcp_syn(in, "10.1.0.2", "198.19.0.2", 443, 1400);
	/* Grow it to 1500 bytes with DF. */
	memset(in + n, 0, 1500 - n);
	n = ipv4(in, "10.1.0.2", "198.19.0.2", IPPROTO_TCP, 1480, true);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_TOO_BIG), 1);
	CU_ASSERT(sent_read(out, GW_BUF_SIZE) > 24 + 28);
	CU_ASSERT_EQUAL(out[24 + 20], 3);	/* destination unreachable */
	CU_ASSERT_EQUAL(out[24 + 21], 4);	/* fragmentation needed */
	CU_ASSERT_EQUAL((out[24 + 26] << 8) | out[24 + 27], 1476);
	/* Without DF: dropped in silence. */
	n = ipv4(in, "10.1.0.2", "198.19.0.2", IPPROTO_TCP, 1480, false);
	receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, n));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_TOO_BIG), 2);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);
	CU_ASSERT_EQUAL(tun_read(out), -1);
}

static void test_return_path(void)
{
	uint8_t in[256], out[GW_BUF_SIZE];
	uint64_t no_route = POP_DROP(SHM_DROP_NO_ROUTE_BACK), hits;
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	/* Site b's endpoint 10.3.0.2 was learned by test_policy_swg_only. */
	n = udp(in, "198.19.0.2", "10.3.0.2", 4000, 20);
	hits = w->endpoint_cache_hits;
	from_tun(in, n);
	CU_ASSERT_EQUAL(w->endpoint_cache_hits, hits + 1);	/* as learned */
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), (ssize_t)(20 + 8 + n));
	CU_ASSERT_EQUAL(out[20], 0x20);				/* K bit */
	CU_ASSERT_EQUAL(out[20 + 7], 42);			/* site b's key */
	CU_ASSERT(memcmp(out + 16, &(struct in_addr){ ip(ROUTER_B).s_addr }, 4) == 0);
	CU_ASSERT(memcmp(out + 28, in, n) == 0);
	CU_ASSERT_EQUAL(SITE("b", tx_packets), 1);
	/* Nobody behind this one. */
	from_tun(in, udp(in, "198.19.0.2", "10.99.0.1", 4000, 20));
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_NO_ROUTE_BACK), no_route + 1);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);
}

static struct gw_site *site_named(const char *name)
{
	for (uint32_t s = 0; s < gw.shm.hdr->site_capacity; s++)
		if (gw.by_slot[s] && strcmp(gw.by_slot[s]->conf.name, name) == 0)
			return gw.by_slot[s];
	CU_FAIL("no such site");
	return NULL;
}

/*
 * The next IPv4 GRE frame on the capture side of the veth, or -1 within
 * 200 ms; the link's own chatter (IPv6 solicitations) is skipped.
 */
static ssize_t frame_read(int fd, uint8_t *buf)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (int i = 0; i < 32 && poll(&pfd, 1, 200) > 0; i++) {
		ssize_t n = recv(fd, buf, GW_BUF_SIZE, 0);

		if (n >= 34 && buf[12] == 0x08 && buf[13] == 0x00 && buf[14 + 9] == IPPROTO_GRE)
			return n;
	}
	return -1;
}

/*
 * io = ring's send path: with a next hop published for site b's slot the
 * reply leaves as a frame through the packet socket on that interface;
 * a word resolved for another address sends it raw, as before.
 */
static void test_frames_to_next_hop(void)
{
	static const uint8_t hop_mac[6] = { 2, 0, 0, 0, 0, 0xb };
	static const uint8_t own_mac[6] = { 2, 0, 0, 0, 0, 0xa };
	uint8_t in[256], out[GW_BUF_SIZE];
	struct gw_site *b = site_named("b");
	uint64_t sent = SITE("b", tx_packets);
	int tap;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(run_cmd("ip link add pk0 type veth peer name pk1 && "
				      "ip link set pk0 up && ip link set pk1 up"), 0);
	tap = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	CU_ASSERT_FATAL(tap >= 0 && b);
	CU_ASSERT_FATAL(bind(tap, (struct sockaddr *)&(struct sockaddr_ll){
		.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)if_nametoindex("pk1") }, sizeof(struct sockaddr_ll)) == 0);
	gw.l2 = calloc(1, sizeof(*gw.l2));
	gw.l2_words = calloc(gw.shm.hdr->site_capacity, sizeof(*gw.l2_words));
	gw.l2->iface[3] = (struct l2_iface){ (int)if_nametoindex("pk0"), { 0 } };
	memcpy(gw.l2->iface[3].mac, own_mac, 6);
	w->pk_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(w->pk_fd >= 0);
	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	/* Site b's endpoint 10.3.0.2 again: the aging test removed it. */
	n = gre(out, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
		tcp_syn(in, "10.3.0.2", "198.19.0.2", 443, 1460));
	receive(out, n);
	drain();
	sent = SITE("b", tx_packets);

	gw.l2_words[b->slot] = l2_word_encode(hop_mac, 3, ip(ROUTER_B));
	n = udp(in, "198.19.0.2", "10.3.0.2", 4000, 20);
	from_tun(in, n);
	CU_ASSERT_EQUAL(frame_read(tap, out), (ssize_t)(14 + 20 + 8 + n));
	CU_ASSERT(memcmp(out, hop_mac, 6) == 0);
	CU_ASSERT(memcmp(out + 6, own_mac, 6) == 0);
	CU_ASSERT(out[12] == 0x08 && out[13] == 0x00);
	CU_ASSERT(memcmp(out + 14 + 16, &(struct in_addr){ ip(ROUTER_B).s_addr }, 4) == 0);
	CU_ASSERT_EQUAL(out[14 + 20 + 7], 42);			/* site b's key */
	CU_ASSERT(memcmp(out + 14 + 28, in, n) == 0);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);			/* not raw too */
	CU_ASSERT_EQUAL(SITE("b", tx_packets), sent + 1);

	/* A word another site left in the slot: raw, no frame. */
	gw.l2_words[b->slot] = l2_word_encode(hop_mac, 3, ip(ROUTER_A));
	from_tun(in, n);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), (ssize_t)(20 + 8 + n));
	CU_ASSERT_EQUAL(frame_read(tap, out), -1);
	CU_ASSERT_EQUAL(SITE("b", tx_packets), sent + 2);

	close(w->pk_fd);
	w->pk_fd = -1;
	close(tap);
	free(gw.l2_words);
	free(gw.l2);
	gw.l2_words = NULL;
	gw.l2 = NULL;
	run_cmd("ip link del pk0");
}

/* Inner packets to the POP itself: its gateway and probe IPs, its loopback. */
static void test_loop(void)
{
	static const char *const dst[] = {
		GATEWAY, PROBE_IP, "127.0.0.1", "127.9.9.9", OTHER_LOCAL
	};
	uint8_t in[256], pkt[300], out[GW_BUF_SIZE];
	uint64_t loops = SITE_DROP("a", SHM_DROP_LOOP);

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	for (size_t i = 0; i < sizeof(dst) / sizeof(dst[0]); i++)
		receive(pkt, gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
				 udp(in, "10.1.0.2", dst[i], 9, 10)));
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_LOOP), loops + 5);
	CU_ASSERT_EQUAL(tun_read(out), -1);
	CU_ASSERT_EQUAL(sent_read(out, GW_BUF_SIZE), -1);
}

/*
 * A batch takes the same decisions as packet by packet, in order, whatever
 * sits between a site's packets: other sites, unknown sources, bad keys,
 * disabled sites, a truncated packet.
 */
static void test_batch(void)
{
	static uint8_t pkts[8][300];
	uint8_t in[256], out[GW_BUF_SIZE], *p[8];
	size_t len[8], n = 0;
	uint64_t rx = SITE("a", rx_packets), unknown = POP_DROP(SHM_DROP_UNKNOWN_SOURCE);
	uint64_t bad_header = POP_DROP(SHM_DROP_BAD_HEADER);
	uint64_t bad_key = SITE_DROP("b", SHM_DROP_BAD_KEY);
	uint64_t disabled = SITE_DROP("c", SHM_DROP_DISABLED);
	const char *src[3] = { "10.1.0.2", "10.1.0.3", "10.1.0.4" };

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	for (int i = 0; i < 3; i++) {
		p[n] = pkts[n];
		len[n] = gre(pkts[n], ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
			     udp(in, src[i], "198.19.0.2", 53, 10));
		n++;
		p[n] = pkts[n];
		len[n] = gre(pkts[n], i == 0 ? "198.18.0.99" : i == 1 ? ROUTER_B : ROUTER_C,
			     false, 0, GRE_PROTO_IPV4, in, udp(in, src[i], "198.19.0.2", 53, 10));
		n++;
	}
	p[n] = pkts[n];
	len[n++] = 10;			/* shorter than an IPv4 header */
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_gre_batch(w, p, len, (unsigned)n);
	worker_flush_tx(w);
	rcu_read_unlock();
	for (int i = 0; i < 3; i++) {
		struct in_addr a = ip(src[i]);

		CU_ASSERT_EQUAL(tun_read(out), 38);
		CU_ASSERT(memcmp(out + 12, &a, 4) == 0);	/* in order */
	}
	CU_ASSERT_EQUAL(tun_read(out), -1);
	CU_ASSERT_EQUAL(SITE("a", rx_packets), rx + 3);
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_UNKNOWN_SOURCE), unknown + 1);
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_BAD_HEADER), bad_header + 1);
	CU_ASSERT_EQUAL(SITE_DROP("b", SHM_DROP_BAD_KEY), bad_key + 1);
	CU_ASSERT_EQUAL(SITE_DROP("c", SHM_DROP_DISABLED), disabled + 1);
	/* The return path found what the batch learned. */
	rcu_read_lock();
	for (int i = 0; i < 3; i++) {
		struct in_addr a = ip(src[i]);

		CU_ASSERT_PTR_NOT_NULL(endpoint_lookup(&gw, 0, AF_INET, &a));
	}
	rcu_read_unlock();
}

/* A TCP data segment (ACK) of LEN payload bytes at SEQ, checksum correct. */
static size_t tcp_data(uint8_t *p, uint32_t seq, size_t len)
{
	uint8_t *t = p + 20;
	uint16_t c;
	size_t n;

	memset(t, 0, 20);
	t[0] = 0x9c;
	t[1] = 0x40;
	t[2] = 443 >> 8;
	t[3] = 443 & 0xff;
	for (int i = 0; i < 4; i++)
		t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
	t[11] = 1;
	t[12] = 5 << 4;
	t[13] = 0x10;
	t[14] = 0x10;
	memset(t + 20, 0x5c, len);
	n = ipv4(p, "10.1.0.2", "198.19.0.2", IPPROTO_TCP, 20 + len, true);
	c = htons((uint16_t)~csum_fold(csum_partial(t, 20 + len, csum_partial(p + 12, 8, 0) +
						    IPPROTO_TCP + 20 + len)));
	memcpy(t + 16, &c, 2);
	return n;
}

/* With gateway.offload, consecutive segments of one batch reach the TUN as one. */
static void test_batch_coalesced(void)
{
	static uint8_t in[2][1500], pkt[2][1600], raw[TUN_VNET_HDR_LEN + 4000];
	struct virtio_net_hdr vh;
	uint64_t rx = SITE("a", rx_packets), bytes = SITE("a", rx_bytes);
	size_t n[2];
	ssize_t got;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	CU_ASSERT_FATAL(w->offload);
	for (int i = 0; i < 2; i++)
		n[i] = gre(pkt[i], ROUTER_A, false, 0, GRE_PROTO_IPV4, in[i],
			   tcp_data(in[i], 1000 + 1400 * (uint32_t)i, 1400));
	worker_begin_batch(w);
	rcu_read_lock();
	for (int i = 0; i < 2; i++)
		worker_handle_gre(w, pkt[i], n[i]);
	worker_flush_tx(w);
	rcu_read_unlock();
	got = read(tun_peer, raw, sizeof(raw));
	CU_ASSERT_EQUAL_FATAL(got, (ssize_t)(TUN_VNET_HDR_LEN + 40 + 2 * 1400));
	memcpy(&vh, raw, sizeof(vh));
	CU_ASSERT_EQUAL(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	CU_ASSERT_EQUAL(vh.gso_size, 1400);
	CU_ASSERT_EQUAL(read(tun_peer, raw, sizeof(raw)), -1);
	/* Counted per packet as it arrived. */
	CU_ASSERT_EQUAL(SITE("a", rx_packets), rx + 2);
	CU_ASSERT_EQUAL(SITE("a", rx_bytes), bytes + 2 * 1440);
}

/*
 * A GRE packet the kernel's GRO merged (the ring reports GSO_SIZE and
 * GSO_TYPE), handled in a batch of its own; the TUN write it made, its
 * virtio_net_hdr in *VH, or -1.
 */
static ssize_t merged(uint8_t *pkt, size_t len, uint16_t gso_size, uint8_t gso_type,
		      uint8_t *out, size_t size, struct virtio_net_hdr *vh)
{
	ssize_t got;

	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_gre_merged(w, pkt, len, gso_size, gso_type);
	worker_flush_tx(w);
	rcu_read_unlock();
	got = read(tun_peer, out, size);
	if (got < (ssize_t)sizeof(*vh))
		return -1;
	memcpy(vh, out, sizeof(*vh));
	return got - (ssize_t)sizeof(*vh);
}

/*
 * What the kernel merged from segments of one flow goes to the TUN whole,
 * asking the kernel to cut it at the segment size again, and counts as
 * the segments did on the wire: in the site and in the POP's totals.
 */
static void test_kernel_merged(void)
{
	static uint8_t in[8000], pkt[8100], out[TUN_VNET_HDR_LEN + 8000];
	const uint16_t sizes[2][3] = { { 1400, 1400, 1400 }, { 1400, 1400, 600 } };
	struct virtio_net_hdr vh;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	for (int t = 0; t < 2; t++) {
		size_t payload = (size_t)sizes[t][0] + sizes[t][1] + sizes[t][2], n;
		uint64_t rx = SITE("a", rx_packets), bytes = SITE("a", rx_bytes);
		uint64_t pop_rx = gw.shm.hdr->pop.lane[0].rx_packets;
		uint64_t pop_bytes = gw.shm.hdr->pop.lane[0].rx_bytes;
		uint8_t *ip = out + TUN_VNET_HDR_LEN;
		uint16_t check;

		n = gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
			tcp_data(in, 7000 + 10000 * (uint32_t)t, payload));
		CU_ASSERT_EQUAL_FATAL(merged(pkt, n, 1400, VIRTIO_NET_HDR_GSO_TCPV4, out,
					     sizeof(out), &vh), (ssize_t)(40 + payload));
		CU_ASSERT_EQUAL(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
		CU_ASSERT_EQUAL(vh.gso_size, 1400);
		CU_ASSERT_EQUAL(vh.hdr_len, 40);
		CU_ASSERT_EQUAL(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		CU_ASSERT_EQUAL(vh.csum_start, 20);
		CU_ASSERT_EQUAL(vh.csum_offset, 16);
		/* The kernel finishes each segment's checksum from the pseudo-header's. */
		check = (uint16_t)(ip[36] << 8 | ip[37]);
		CU_ASSERT_EQUAL(check,
				csum_fold(csum_partial(ip + 12, 8, IPPROTO_TCP + 20 + payload)));
		CU_ASSERT_EQUAL(csum_fold(csum_partial(ip, 20, 0)), 0xffff);
		CU_ASSERT_EQUAL(SITE("a", rx_packets), rx + 3);
		CU_ASSERT_EQUAL(SITE("a", rx_bytes), bytes + 3 * 40 + payload);
		CU_ASSERT_EQUAL(gw.shm.hdr->pop.lane[0].rx_packets, pop_rx + 3);
		CU_ASSERT_EQUAL(gw.shm.hdr->pop.lane[0].rx_bytes,
				pop_bytes + 3 * (24 + 40) + payload);
	}
	CU_ASSERT_EQUAL(read(tun_peer, out, sizeof(out)), -1);
}

/*
 * Segments larger than the tunnel allows are too big, each of them; a
 * merged packet whose headers do not match its GSO type is one bad inner
 * packet. Neither reaches the TUN.
 */
static void test_kernel_merged_refused(void)
{
	static uint8_t in[8000], pkt[8100], out[TUN_VNET_HDR_LEN + 8000];
	uint64_t too_big = SITE_DROP("a", SHM_DROP_TOO_BIG);
	uint64_t bad = SITE_DROP("a", SHM_DROP_BAD_INNER), rx = SITE("a", rx_packets);
	struct virtio_net_hdr vh;
	size_t n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	/* 40 + 1440 > the tunnel MTU of 1476. */
	n = gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, tcp_data(in, 1, 4 * 1440));
	CU_ASSERT_EQUAL(merged(pkt, n, 1440, VIRTIO_NET_HDR_GSO_TCPV4, out, sizeof(out), &vh), -1);
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_TOO_BIG), too_big + 4);
	n = gre(pkt, ROUTER_A, false, 0, GRE_PROTO_IPV4, in, tcp_data(in, 1, 4 * 1400));
	CU_ASSERT_EQUAL(merged(pkt, n, 1400, VIRTIO_NET_HDR_GSO_UDP_L4, out, sizeof(out), &vh), -1);
	CU_ASSERT_EQUAL(merged(pkt, n, 1400, VIRTIO_NET_HDR_GSO_TCPV6, out, sizeof(out), &vh), -1);
	CU_ASSERT_EQUAL(merged(pkt, n, 0, VIRTIO_NET_HDR_GSO_TCPV4, out, sizeof(out), &vh), -1);
	CU_ASSERT_EQUAL(SITE_DROP("a", SHM_DROP_BAD_INNER), bad + 3);
	CU_ASSERT_EQUAL(SITE("a", rx_packets), rx);
	drain();
}

/* Where the return path sends ADDR now: the site's name, or NULL. */
static const char *endpoint_site(const char *addr)
{
	struct in_addr a = ip(addr);
	const struct gw_site *site;
	const char *name;

	rcu_read_lock();
	site = endpoint_lookup(&gw, 0, AF_INET, &a);
	name = site ? site->conf.name : NULL;
	rcu_read_unlock();
	return name;
}

/* Every endpoint aged out as idle, its node back in its worker's pool. */
static void age_all_endpoints(void)
{
	CU_ASSERT(endpoint_age(&gw, now_realtime_ns() + 60 * NSEC_PER_SEC, NSEC_PER_SEC) > 0);
	synchronize_rcu();
	rcu_barrier();
}

/*
 * A site remembers the endpoint it last learned, to skip the lookup: an
 * address that moved to another site comes back, and one aged out of the
 * table is learned again, though the site's hint still points at it.
 */
static void test_endpoint_moved_and_aged(void)
{
	uint8_t in[256], pkt_a[300], pkt_b[300];
	size_t len_a, len_b;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	len_a = gre(pkt_a, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
		    udp(in, "10.1.0.9", "198.19.0.2", 53, 10));
	len_b = gre(pkt_b, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
		    tcp_syn(in, "10.1.0.9", "198.19.0.2", 443, 1460));
	receive(pkt_a, len_a);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.0.9"), "a");
	receive(pkt_b, len_b);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.0.9"), "b");
	receive(pkt_a, len_a);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.0.9"), "a");

	/* Everything idle: removed, and its node back in the pool. */
	age_all_endpoints();
	CU_ASSERT_PTR_NULL(endpoint_site("10.1.0.9"));
	receive(pkt_a, len_a);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.0.9"), "a");
	drain();
}

/*
 * Hosts behind one site that take turns miss the site's hint each time;
 * the worker's endpoint cache finds them instead of the table. An endpoint
 * aged out and its node learned again for another address is not taken
 * for the first one.
 */
static void test_endpoint_cache(void)
{
	uint8_t in[256], pkt_x[300], pkt_y[300], pkt_z[300];
	size_t len_x, len_y, len_z;
	uint64_t hits = w->endpoint_cache_hits;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	len_x = gre(pkt_x, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
		    udp(in, "10.1.7.1", "198.19.0.2", 53, 10));
	len_y = gre(pkt_y, ROUTER_A, false, 0, GRE_PROTO_IPV4, in,
		    udp(in, "10.1.7.2", "198.19.0.2", 53, 10));
	len_z = gre(pkt_z, ROUTER_B, true, 42, GRE_PROTO_IPV4, in,
		    tcp_syn(in, "10.1.7.3", "198.19.0.2", 443, 1460));
	receive(pkt_x, len_x);
	receive(pkt_y, len_y);
	CU_ASSERT_EQUAL(w->endpoint_cache_hits, hits);	/* both new */
	for (int i = 0; i < 3; i++) {
		receive(pkt_x, len_x);
		receive(pkt_y, len_y);
	}
	CU_ASSERT_EQUAL(w->endpoint_cache_hits, hits + 6);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.7.1"), "a");
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.7.2"), "a");

	/* All aged out; a new address takes a node back from the pool. */
	age_all_endpoints();
	CU_ASSERT_PTR_NULL(endpoint_site("10.1.7.1"));
	receive(pkt_z, len_z);
	receive(pkt_x, len_x);
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.7.3"), "b");
	CU_ASSERT_STRING_EQUAL(endpoint_site("10.1.7.1"), "a");
	CU_ASSERT_PTR_NULL(endpoint_site("10.1.7.2"));
	CU_ASSERT_EQUAL(w->endpoint_cache_hits, hits + 6);	/* the stale ways were refused */
	drain();
}

/* Every packet read ends in exactly one counter. */
static void test_every_packet_counted(void)
{
	struct shm_pop_totals pop;
	uint64_t ends = 0;

	shm_pop_sum(&gw.shm, &pop);
	for (int d = 0; d < SHM_DROP_COUNT; d++)
		ends += pop.drops[d];
	for (uint32_t s = 0; s < gw.shm.hdr->site_capacity; s++) {
		struct shm_site *slot = shm_site_at(&gw.shm, s);
		struct shm_site_totals t;

		if (!slot->in_use)
			continue;
		shm_site_sum(&gw.shm, slot, &t);
		ends += t.rx_packets + t.tx_packets + t.keepalives + t.probes;
		for (int d = 0; d < SHM_DROP_SITE_COUNT; d++)
			ends += t.drops[d];
	}
	/* Packets in: GRE read plus TUN read (the TUN ones: tx or a POP drop). */
	CU_ASSERT_EQUAL(ends, pop.rx_packets + 2);
}

/* Publish sites a, b and c as the suite started, plus N_MORE named m0.. from MORE. */
static void apply_sites(const char *a_source, const char *z_source, char more[][16],
			unsigned n_more)
{
	struct sites sites = { 0 };
	char name[8];

	CU_ASSERT_FATAL(add_site(&sites, "a", a_source, "", "swg+cfw", "yes", "") == 0);
	CU_ASSERT_FATAL(add_site(&sites, "b", ROUTER_B, "42", "swg", "yes", "8443") == 0);
	CU_ASSERT_FATAL(add_site(&sites, "c", ROUTER_C, "", "swg+cfw", "no", "") == 0);
	if (z_source)
		CU_ASSERT_FATAL(add_site(&sites, "z", z_source, "", "swg+cfw", "yes", "") == 0);
	for (unsigned i = 0; i < n_more; i++) {
		snprintf(name, sizeof(name), "m%u", i);
		CU_ASSERT_FATAL(add_site(&sites, name, more[i], "", "swg+cfw", "yes", "") == 0);
	}
	CU_ASSERT_FATAL(sitetab_apply(&gw, &sites, noop_changed) == 0);
	sites_free(&sites);
}

/* Receive one UDP packet from the tunnel source SRC. */
static void receive_from(const char *src)
{
	uint8_t in[256], pkt[300];

	receive(pkt, gre(pkt, src, false, 0, GRE_PROTO_IPV4, in,
			 udp(in, "10.1.0.2", "198.19.0.2", 53, 10)));
}

/*
 * Tunnel sources that share one set of the worker's site cache: more than
 * it has ways. Into MORE; how many (at most MAX).
 */
static unsigned same_set_sources(char more[][16], unsigned max)
{
	struct gw_site_cache_set *first = NULL;
	unsigned n = 0;

	for (unsigned i = 0; i < 1024 && n < max; i++) {
		struct gw_rx rx = { 0 };
		char s[16];

		snprintf(s, sizeof(s), "198.18.%u.%u", 1 + i / 256, i % 256);
		rx.g.src = ip(s);
		site_cache_set(w, &rx);
		if (!first)
			first = rx.set;
		if (rx.set == first)
			memcpy(more[n++], s, sizeof(s));
	}
	return n;
}

/*
 * The worker's site cache never answers for a tunnel that is no longer its
 * site's: a source IP that moved to another site, a removed site, and more
 * tunnels in one cache set than it holds.
 */
static void test_site_cache_follows_changes(void)
{
	static uint8_t pkts[2 * 6][300];
	char more[6][16];
	uint8_t in[256], *p[2 * 6];
	size_t len[2 * 6];
	uint64_t a, unknown, before[6];
	unsigned n;

	set_health(SHM_HEALTH_UP, SHM_HEALTH_UP, true);
	drain();
	a = SITE("a", rx_packets);
	receive_from(ROUTER_A);
	CU_ASSERT_EQUAL(SITE("a", rx_packets), a + 1);

	/* a moves to another source; its old one is now z's. */
	apply_sites("198.18.0.5", ROUTER_A, NULL, 0);
	receive_from(ROUTER_A);
	CU_ASSERT_EQUAL(SITE("z", rx_packets), 1);
	CU_ASSERT_EQUAL(SITE("a", rx_packets), a + 1);
	receive_from("198.18.0.5");
	CU_ASSERT_EQUAL(SITE("a", rx_packets), a + 2);

	/* z goes away: its source is nobody's. */
	apply_sites("198.18.0.5", NULL, NULL, 0);
	unknown = POP_DROP(SHM_DROP_UNKNOWN_SOURCE);
	receive_from(ROUTER_A);
	CU_ASSERT_EQUAL(POP_DROP(SHM_DROP_UNKNOWN_SOURCE), unknown + 1);

	/* Six tunnels of one set, twice each in one batch: each to its own site. */
	n = same_set_sources(more, 6);
	CU_ASSERT_FATAL(n == 6);
	apply_sites(ROUTER_A, NULL, more, n);
	for (unsigned i = 0; i < n; i++) {
		char name[8];

		snprintf(name, sizeof(name), "m%u", i);
		before[i] = SITE(name, rx_packets);
	}
	for (unsigned i = 0; i < 2 * n; i++) {
		p[i] = pkts[i];
		len[i] = gre(pkts[i], more[i % n], false, 0, GRE_PROTO_IPV4, in,
			     udp(in, "10.1.0.2", "198.19.0.2", 53, 10));
	}
	worker_begin_batch(w);
	rcu_read_lock();
	worker_handle_gre_batch(w, p, len, 2 * n);
	worker_flush_tx(w);
	rcu_read_unlock();
	for (unsigned i = 0; i < n; i++) {
		char name[8];

		snprintf(name, sizeof(name), "m%u", i);
		CU_ASSERT_EQUAL(SITE(name, rx_packets), before[i] + 2);
	}
	apply_sites(ROUTER_A, NULL, NULL, 0);
	drain();
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gatewayd worker", suite_init, suite_clean);
	CU_add_test(s, "deliver and establish", test_deliver_and_establish);
	CU_add_test(s, "unknown source, bad key, disabled", test_unknown_key_disabled);
	CU_add_test(s, "policy: swg only", test_policy_swg_only);
	CU_add_test(s, "MSS clamped", test_mss_clamped);
	CU_add_test(s, "MSS clamped for a keyed site", test_mss_clamped_keyed);
	CU_add_test(s, "keepalive reflected", test_keepalive_reflected);
	CU_add_test(s, "keepalive reflection refused", test_keepalive_reflection_refused);
	CU_add_test(s, "withheld when unhealthy or draining", test_withheld_when_unhealthy);
	CU_add_test(s, "new tunnel refused", test_new_tunnel_refused);
	CU_add_test(s, "probe answered", test_probe_answered);
	CU_add_test(s, "too big", test_too_big);
	CU_add_test(s, "return path", test_return_path);
	CU_add_test(s, "loop", test_loop);
	CU_add_test(s, "a batch decides as packet by packet", test_batch);
	CU_add_test(s, "a batch coalesced", test_batch_coalesced);
	CU_add_test(s, "merged by the kernel: one write, counted per segment", test_kernel_merged);
	CU_add_test(s, "merged by the kernel: too big, or not as its type says",
		    test_kernel_merged_refused);
	CU_add_test(s, "endpoint moved, aged, learned again", test_endpoint_moved_and_aged);
	CU_add_test(s, "the endpoint cache: hosts in turn, stale ways refused",
		    test_endpoint_cache);
	CU_add_test(s, "every packet counted", test_every_packet_counted);
	/* Last: its TUN reads are not in the count above. */
	CU_add_test(s, "frames to a resolved next hop", test_frames_to_next_hop);
	CU_add_test(s, "the site cache follows site changes", test_site_cache_follows_changes);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
