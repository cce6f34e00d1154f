/*
 * Next-hop MACs (gatewayd/l2.c): the per-slot word the workers read, the
 * Ethernet header built from it, and resolution against the real kernel:
 * a veth pair in a network namespace of this process's own (unshare at the
 * start of main), routes through a gateway and static neighbour entries.
 * Everything goes with the process. Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <CUnit/Basic.h>

#include "gatewayd/gateway.h"
#include "gatewayd/l2.h"

#define WAN		"l2wan0"
#define OTHER		"l2oth0"
#define WAN_MAC		"02:00:00:00:00:01"
#define ROUTER		"192.0.2.2"
#define ROUTER_MAC	"02:00:00:00:00:02"
#define STALE		"192.0.2.5"
#define STALE_MAC	"02:00:00:00:00:05"
#define BEHIND		"203.0.113.5"	/* via ROUTER */
#define BEHIND2		"203.0.113.6"

static const uint8_t wan_mac[6] = { 2, 0, 0, 0, 0, 1 };
static const uint8_t router_mac[6] = { 2, 0, 0, 0, 0, 2 };
static const uint8_t new_router_mac[6] = { 2, 0, 0, 0, 0, 0x22 };

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a;
}

static int sh(const char *cmd)
{
	return system(cmd);
}

static void test_word(void)
{
	uint8_t mac[6] = { 0 }, want[6] = { 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54 };
	uint64_t word = l2_word_encode(want, 13, ip(BEHIND));
	unsigned iface = 0;

	CU_ASSERT((word & L2_VALID) != 0);
	CU_ASSERT_EQUAL(word & 0xffffffffffffULL, 0xfedcba987654ULL);
	CU_ASSERT(l2_word_decode(word, ip(BEHIND), mac, &iface));
	CU_ASSERT_EQUAL(memcmp(mac, want, 6), 0);
	CU_ASSERT_EQUAL(iface, 13);
	/* Resolved for another address (a previous site of the slot): not used. */
	memset(mac, 0, sizeof(mac));
	CU_ASSERT_NOT_EQUAL(l2_tag(ip(BEHIND)), l2_tag(ip(BEHIND2)));
	CU_ASSERT_FALSE(l2_word_decode(word, ip(BEHIND2), mac, &iface));
	CU_ASSERT_FALSE(l2_word_decode(0, ip(BEHIND), mac, &iface));
	CU_ASSERT_FALSE(l2_word_decode(word & ~L2_VALID, ip(BEHIND), mac, &iface));
	CU_ASSERT_EQUAL(mac[0], 0);
	/* The fields do not spill into each other. */
	word = l2_word_encode((const uint8_t[6]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 0,
			      ip(BEHIND));
	CU_ASSERT(l2_word_decode(word, ip(BEHIND), mac, &iface));
	CU_ASSERT_EQUAL(iface, 0);
	CU_ASSERT_EQUAL(mac[0], 0xff);
}

/* Packet socket or raw socket: a frame header only for a valid word. */
static void test_frame_header(void)
{
	struct l2_iface ifaces[L2_IFACES] = { [2] = { 7, { 2, 0, 0, 0, 0, 1 } } };
	uint8_t eth[ETH_HLEN], want[ETH_HLEN] = {
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
	};
	uint64_t word = l2_word_encode(router_mac, 2, ip(BEHIND));
	int ifindex = 0;

	CU_ASSERT(l2_frame_header(word, ip(BEHIND), ifaces, eth, &ifindex));
	CU_ASSERT_EQUAL(memcmp(eth, want, ETH_HLEN), 0);
	CU_ASSERT_EQUAL(ifindex, 7);
	CU_ASSERT_FALSE(l2_frame_header(0, ip(BEHIND), ifaces, eth, &ifindex));
	CU_ASSERT_FALSE(l2_frame_header(word, ip(BEHIND2), ifaces, eth, &ifindex));
}

static void test_ifaces(void)
{
	struct l2_resolver r;
	int wan = (int)if_nametoindex(WAN), other = (int)if_nametoindex(OTHER);

	CU_ASSERT_EQUAL_FATAL(l2_open(&r), 0);
	CU_ASSERT_EQUAL(l2_iface_index(&r, wan), 0);
	CU_ASSERT_EQUAL(memcmp(r.iface[0].mac, wan_mac, 6), 0);
	CU_ASSERT_EQUAL(r.iface[0].ifindex, wan);
	CU_ASSERT_EQUAL(l2_iface_index(&r, other), 1);
	CU_ASSERT_EQUAL(l2_iface_index(&r, wan), 0);
	/* No Ethernet address: nothing to write frames from. */
	CU_ASSERT_EQUAL(l2_iface_index(&r, (int)if_nametoindex("lo")), -EPFNOSUPPORT);
	CU_ASSERT_EQUAL(l2_iface_index(&r, 99999), -ENODEV);
	CU_ASSERT_EQUAL(r.n_ifaces, 2);
	l2_close(&r);
}

static void test_route(void)
{
	struct l2_resolver r;
	struct in_addr hop = { 0 };
	int ifindex = 0;

	CU_ASSERT_EQUAL_FATAL(l2_open(&r), 0);
	CU_ASSERT_EQUAL(l2_route(&r, ip(ROUTER), &ifindex, &hop), 0);
	CU_ASSERT_EQUAL(hop.s_addr, ip(ROUTER).s_addr);		/* directly connected */
	CU_ASSERT_EQUAL(ifindex, (int)if_nametoindex(WAN));
	CU_ASSERT_EQUAL(l2_route(&r, ip(BEHIND), &ifindex, &hop), 0);
	CU_ASSERT_EQUAL(hop.s_addr, ip(ROUTER).s_addr);		/* via the router */
	CU_ASSERT_EQUAL(l2_route(&r, ip("10.9.0.7"), &ifindex, &hop), 0);
	CU_ASSERT_EQUAL(ifindex, (int)if_nametoindex(OTHER));
	CU_ASSERT_EQUAL(l2_route(&r, ip("192.0.2.1"), &ifindex, &hop), -ENETUNREACH);
	CU_ASSERT(l2_route(&r, ip("198.51.100.1"), &ifindex, &hop) < 0);	/* no route */
	l2_close(&r);
}

static void test_neighbour(void)
{
	struct l2_resolver r;
	int wan = (int)if_nametoindex(WAN);
	uint8_t mac[6];
	bool usable = true;

	CU_ASSERT_EQUAL_FATAL(l2_open(&r), 0);
	CU_ASSERT_EQUAL(l2_neighbour(&r, wan, ip(ROUTER), mac, &usable), 0);
	CU_ASSERT(usable);
	CU_ASSERT_EQUAL(memcmp(mac, router_mac, 6), 0);
	CU_ASSERT_EQUAL(l2_neighbour(&r, wan, ip(STALE), mac, &usable), 0);
	CU_ASSERT(usable);
	CU_ASSERT_EQUAL(mac[5], 5);
	CU_ASSERT_EQUAL(l2_neighbour(&r, wan, ip("192.0.2.77"), mac, &usable), 0);
	CU_ASSERT_FALSE(usable);					/* no entry */
	/* The entry is on WAN, not on the other link. */
	CU_ASSERT_EQUAL(l2_neighbour(&r, (int)if_nametoindex(OTHER), ip(ROUTER), mac, &usable),
			0);
	CU_ASSERT_FALSE(usable);
	l2_close(&r);
}

/* One neighbour lookup per next hop within a pass; a new pass asks again. */
static void test_resolve_and_cache(void)
{
	struct l2_resolver r;
	uint8_t mac[6];
	unsigned iface = L2_IFACES;
	uint64_t word;

	CU_ASSERT_EQUAL_FATAL(l2_open(&r), 0);
	l2_pass_begin(&r);
	word = l2_resolve(&r, ip(BEHIND));
	CU_ASSERT(l2_word_decode(word, ip(BEHIND), mac, &iface));
	CU_ASSERT_EQUAL(memcmp(mac, router_mac, 6), 0);
	CU_ASSERT_EQUAL(r.iface[iface].ifindex, (int)if_nametoindex(WAN));
	CU_ASSERT_EQUAL(l2_resolve(&r, ip("192.0.2.77")), 0);	/* no neighbour */
	CU_ASSERT_EQUAL(l2_resolve(&r, ip("10.9.0.7")), 0);	/* none there either */
	CU_ASSERT_EQUAL(l2_resolve(&r, ip("192.0.2.1")), 0);	/* local */

	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace " ROUTER " lladdr 02:00:00:00:00:22 "
				 "dev " WAN " nud permanent"), 0);
	word = l2_resolve(&r, ip(BEHIND2));
	CU_ASSERT(l2_word_decode(word, ip(BEHIND2), mac, &iface));
	CU_ASSERT_EQUAL(memcmp(mac, router_mac, 6), 0);		/* from the pass's cache */
	l2_pass_begin(&r);
	word = l2_resolve(&r, ip(BEHIND2));
	CU_ASSERT(l2_word_decode(word, ip(BEHIND2), mac, &iface));
	CU_ASSERT_EQUAL(memcmp(mac, new_router_mac, 6), 0);
	l2_close(&r);
	CU_ASSERT_EQUAL(sh("ip neigh replace " ROUTER " lladdr " ROUTER_MAC " dev " WAN
			   " nud permanent"), 0);
}

/* A gw with CAP slots, the given sites in them, as sitetab would have them. */
static struct gw *fake_gw(uint32_t cap)
{
	struct gw *gw = calloc(1, sizeof(*gw));

	gw->shm.hdr = calloc(1, sizeof(*gw->shm.hdr));
	gw->shm.hdr->site_capacity = cap;
	gw->by_slot = calloc(cap, sizeof(*gw->by_slot));
	return gw;
}

static void fake_gw_free(struct gw *gw)
{
	l2_gw_close(gw);
	CU_ASSERT_PTR_NULL(gw->l2_words);
	free(gw->by_slot);
	free(gw->shm.hdr);
	free(gw);
}

/* The MAC in SLOT's word for DST, or NULL when the word is not valid for it. */
static const uint8_t *slot_mac(const struct gw *gw, uint32_t slot, const char *dst)
{
	static uint8_t mac[6];
	unsigned iface;

	return l2_word_decode(gw->l2_words[slot], ip(dst), mac, &iface) ? mac : NULL;
}

/* gatewayd's side: one word per slot; sites already there, then changes. */
static void test_gw_slots(void)
{
	struct gw *gw = fake_gw(5);
	struct gw_site *sites = calloc(3, sizeof(*sites));
	const uint8_t *mac;

	sites[0].conf.source_ip = ip(BEHIND);
	sites[1].conf.source_ip = ip(ROUTER);
	sites[2].conf.source_ip = ip("192.0.2.77");		/* no neighbour yet */
	gw->by_slot[0] = &sites[0];
	gw->by_slot[3] = &sites[1];
	gw->by_slot[4] = &sites[2];

	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 0);			/* not open: a no-op */
	CU_ASSERT_EQUAL_FATAL(l2_gw_open(gw), 0);
	/* Bounded: 2 requests are one slot's route and its neighbour. */
	CU_ASSERT_EQUAL(l2_refresh(gw, 2), 2);
	CU_ASSERT_PTR_NOT_NULL(slot_mac(gw, 0, BEHIND));
	CU_ASSERT_EQUAL(gw->l2_words[3], 0);
	/* The rest: two routes and their neighbours (each refresh asks anew). */
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 4);
	mac = slot_mac(gw, 3, ROUTER);
	CU_ASSERT(mac && memcmp(mac, router_mac, 6) == 0);
	CU_ASSERT_EQUAL(gw->l2_words[4], 0);
	/* Routes are kept: a sweep asks each next hop's neighbour once. */
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 2);
	CU_ASSERT_EQUAL(gw->l2_words[4], 0);

	/* The neighbour appears: the next sweep finds it. */
	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace 192.0.2.77 lladdr 02:00:00:00:00:77 dev "
				 WAN " nud reachable"), 0);
	l2_refresh(gw, 10);
	mac = slot_mac(gw, 4, "192.0.2.77");
	CU_ASSERT(mac && mac[5] == 0x77);
	/* A slot taken by another site: no word until its route is known. */
	sites[0].conf.source_ip = ip(BEHIND2);
	l2_slot_set(gw, 0, ip(BEHIND2));
	CU_ASSERT_EQUAL(gw->l2_words[0], 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 3);			/* its route, 2 neighbours */
	CU_ASSERT_PTR_NOT_NULL(slot_mac(gw, 0, BEHIND2));
	/* The same source again (an edit of other fields): nothing to ask. */
	l2_slot_set(gw, 0, ip(BEHIND2));
	CU_ASSERT_PTR_NOT_NULL(slot_mac(gw, 0, BEHIND2));
	l2_slot_clear(gw, 4);
	CU_ASSERT_EQUAL(gw->l2_words[4], 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 1);			/* one next hop left */
	CU_ASSERT_EQUAL(gw->l2_words[4], 0);
	fake_gw_free(gw);
	free(sites);
}

/*
 * Many sites behind one router: after their routes are known, a sweep is one
 * request, and a new MAC of the router reaches every slot in that sweep.
 */
static void test_gw_many_sites(void)
{
	enum { N = 2000 };
	struct gw *gw = fake_gw(N);
	struct gw_site *sites = calloc(N, sizeof(*sites));
	char addr[32];
	unsigned changed = 0;

	for (uint32_t s = 0; s < N; s++) {
		snprintf(addr, sizeof(addr), "203.0.%u.%u", s / 250, s % 250 + 1);
		sites[s].conf.source_ip = ip(addr);
		gw->by_slot[s] = &sites[s];
	}
	CU_ASSERT_EQUAL_FATAL(sh("ip route replace 203.0.0.0/16 via " ROUTER), 0);
	CU_ASSERT_EQUAL_FATAL(l2_gw_open(gw), 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 4 * N), N + 1);	/* every route, one neighbour */
	CU_ASSERT_EQUAL(l2_refresh(gw, 4 * N), 1);
	CU_ASSERT_EQUAL_FATAL(sh("ip neigh replace " ROUTER " lladdr 02:00:00:00:00:22 dev "
				 WAN " nud permanent"), 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 4 * N), 1);
	for (uint32_t s = 0; s < N; s++) {
		unsigned iface;
		uint8_t mac[6];

		changed += l2_word_decode(gw->l2_words[s], sites[s].conf.source_ip, mac, &iface) &&
			   memcmp(mac, new_router_mac, 6) == 0;
	}
	CU_ASSERT_EQUAL(changed, N);
	CU_ASSERT_EQUAL(sh("ip neigh replace " ROUTER " lladdr " ROUTER_MAC " dev " WAN
			   " nud permanent && ip route del 203.0.0.0/16"), 0);
	fake_gw_free(gw);
	free(sites);
}

/* A route that changes is seen through the kernel's announcement, at once. */
static void test_gw_route_change(void)
{
	struct gw *gw = fake_gw(2);
	struct gw_site site = { 0 };
	const uint8_t *mac;
	uint8_t stale_mac[6] = { 2, 0, 0, 0, 0, 5 };

	site.conf.source_ip = ip("198.51.100.9");
	gw->by_slot[1] = &site;
	CU_ASSERT_EQUAL_FATAL(sh("ip route replace 198.51.100.0/24 via " ROUTER), 0);
	CU_ASSERT_EQUAL_FATAL(l2_gw_open(gw), 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 2);
	mac = slot_mac(gw, 1, "198.51.100.9");
	CU_ASSERT(mac && memcmp(mac, router_mac, 6) == 0);
	CU_ASSERT_FALSE(l2_routes_changed(gw->l2));		/* nothing since */

	CU_ASSERT_EQUAL_FATAL(sh("ip route replace 198.51.100.0/24 via " STALE), 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 2);		/* the route again, its hop */
	mac = slot_mac(gw, 1, "198.51.100.9");
	CU_ASSERT(mac && memcmp(mac, stale_mac, 6) == 0);
	/* No route at all: no word, and not asked again until routes change. */
	CU_ASSERT_EQUAL_FATAL(sh("ip route del 198.51.100.0/24"), 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 1);
	CU_ASSERT_EQUAL(gw->l2_words[1], 0);
	CU_ASSERT_EQUAL(l2_refresh(gw, 10), 0);
	fake_gw_free(gw);
}

static int lab_setup(void)
{
	return sh("ip link set lo up && "
		  "ip link add " WAN " address " WAN_MAC " type veth peer name l2wan1 && "
		  "ip link add " OTHER " type veth peer name l2oth1 && "
		  "ip link set " WAN " up && ip link set l2wan1 up && "
		  "ip link set " OTHER " up && ip link set l2oth1 up && "
		  "ip addr add 192.0.2.1/24 dev " WAN " && ip addr add 10.9.0.1/24 dev " OTHER
		  " && ip route add 203.0.113.0/24 via " ROUTER " && "
		  "ip neigh add " ROUTER " lladdr " ROUTER_MAC " dev " WAN " nud permanent && "
		  "ip neigh add " STALE " lladdr " STALE_MAC " dev " WAN " nud stale");
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (geteuid() != 0) {
		fprintf(stderr, "test_gatewayd_l2: needs root (network namespaces)\n");
		return 1;
	}
	/* A namespace of our own: everything below disappears when we exit. */
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return 1;
	}
	if (lab_setup() != 0) {
		fprintf(stderr, "test_gatewayd_l2: cannot set up the veth pairs\n");
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("word", NULL, NULL);
	CU_add_test(suite, "encode, decode, tag", test_word);
	CU_add_test(suite, "Ethernet header or raw", test_frame_header);
	suite = CU_add_suite("netlink", NULL, NULL);
	CU_add_test(suite, "interfaces: index and MAC", test_ifaces);
	CU_add_test(suite, "route: gateway, connected, elsewhere", test_route);
	CU_add_test(suite, "neighbour states", test_neighbour);
	CU_add_test(suite, "resolve, cached within a pass", test_resolve_and_cache);
	CU_add_test(suite, "slots: sites there, changes, kept routes", test_gw_slots);
	CU_add_test(suite, "slots: 2,000 sites behind one router", test_gw_many_sites);
	CU_add_test(suite, "slots: a route change announced", test_gw_route_change);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
