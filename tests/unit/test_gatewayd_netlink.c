/*
 * gatewayd's kernel plumbing against the real kernel: TUN queues, links,
 * routes and rules (rtnetlink), the nftables table. Needs root; runs in a
 * network namespace of its own (unshare at the start of main), so nothing
 * it creates is visible outside and everything goes with the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>
#include <jansson.h>
#include <libmnl/libmnl.h>
#include <netinet/ip.h>
#include <linux/fib_rules.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "gatewayd/netlink.h"
#include "gatewayd/nft.h"
#include "gatewayd/tun.h"
#include "lib/timeutil.h"

#define TUN_A		"grepop-t0"
#define TABLE		100

static struct conf_prefix prefix_v4(const char *addr, uint8_t len)
{
	struct conf_prefix p = { .family = AF_INET, .len = len };

	inet_pton(AF_INET, addr, &p.addr.v4);
	return p;
}

static struct conf_prefix prefix_v6(const char *addr, uint8_t len)
{
	struct conf_prefix p = { .family = AF_INET6, .len = len };

	inet_pton(AF_INET6, addr, &p.addr.v6);
	return p;
}

/* --- an independent look at the kernel's tables: our own netlink dumps --- */

struct dump_match {
	int family;
	uint32_t table;
	const struct conf_prefix *dst;	/* routes and rules; NULL = no selector */
	unsigned oif;			/* routes */
	const char *iifname;		/* rules; NULL = none */
	uint32_t priority;		/* rules */
	unsigned found;
};

struct dump_attrs {
	const struct nlattr *tb[FRA_MAX > RTA_MAX ? FRA_MAX + 1 : RTA_MAX + 1];
	int max;
};

static int dump_attr_cb(const struct nlattr *attr, void *data)
{
	struct dump_attrs *a = data;

	if (mnl_attr_get_type(attr) <= a->max)
		a->tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static bool dump_dst_matches(const struct conf_prefix *want, uint8_t len,
			     const struct nlattr *attr)
{
	size_t alen = want->family == AF_INET ? 4 : 16;

	if (!attr)
		return false;
	return len == want->len && mnl_attr_get_payload_len(attr) == alen &&
	       memcmp(mnl_attr_get_payload(attr), &want->addr, alen) == 0;
}

static int dump_route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct dump_match *m = data;
	struct dump_attrs a = { .max = RTA_MAX };

	mnl_attr_parse(nlh, sizeof(*rtm), dump_attr_cb, &a);
	if (!a.tb[RTA_TABLE] || mnl_attr_get_u32(a.tb[RTA_TABLE]) != m->table)
		return MNL_CB_OK;
	if (!a.tb[RTA_OIF] || mnl_attr_get_u32(a.tb[RTA_OIF]) != m->oif)
		return MNL_CB_OK;
	if (dump_dst_matches(m->dst, rtm->rtm_dst_len, a.tb[RTA_DST]))
		m->found++;
	return MNL_CB_OK;
}

static int dump_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct dump_match *m = data;
	struct dump_attrs a = { .max = FRA_MAX };

	mnl_attr_parse(nlh, sizeof(*frh), dump_attr_cb, &a);
	if (!a.tb[FRA_TABLE] || mnl_attr_get_u32(a.tb[FRA_TABLE]) != m->table)
		return MNL_CB_OK;
	if (!a.tb[FRA_PRIORITY] || mnl_attr_get_u32(a.tb[FRA_PRIORITY]) != m->priority)
		return MNL_CB_OK;
	if (!m->iifname != !a.tb[FRA_IIFNAME])
		return MNL_CB_OK;
	if (m->iifname && strcmp(mnl_attr_get_str(a.tb[FRA_IIFNAME]), m->iifname) != 0)
		return MNL_CB_OK;
	if (m->dst ? dump_dst_matches(m->dst, frh->dst_len, a.tb[FRA_DST]) : !a.tb[FRA_DST])
		m->found++;
	return MNL_CB_OK;
}

/* Dump TYPE for M->family and count the entries that match M. */
static int dump_count(uint16_t type, mnl_cb_t cb, struct dump_match *m)
{
	char buf[32768];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct rtgenmsg *gen;
	ssize_t n;
	int ret;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -1;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = 1;
	gen = mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg));
	gen->rtgen_family = (uint8_t)m->family;
	m->found = 0;
	ret = mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -1 : MNL_CB_OK;
	while (ret == MNL_CB_OK) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		ret = n < 0 ? -1 : mnl_cb_run(buf, n, 1, mnl_socket_get_portid(nl), cb, m);
	}
	mnl_socket_close(nl);
	return ret < 0 ? -1 : (int)m->found;
}

static int route_count(const struct conf_prefix *dst, const char *ifname, uint32_t table)
{
	struct dump_match m = {
		.family = dst->family, .table = table, .dst = dst,
		.oif = if_nametoindex(ifname),
	};

	return dump_count(RTM_GETROUTE, dump_route_cb, &m);
}

static int rule_count(int family, uint32_t table, const char *iifname,
		      const struct conf_prefix *dst, uint32_t priority)
{
	struct dump_match m = {
		.family = family, .table = table, .dst = dst, .iifname = iifname,
		.priority = priority,
	};

	return dump_count(RTM_GETRULE, dump_rule_cb, &m);
}

static int link_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
	int fd, ret;

	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, req, ifr) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* --- TUN --- */

static void test_tun_queues(void)
{
	int fds[2] = { -1, -1 };
	struct ifreq ifr;
	unsigned i;

	CU_ASSERT_EQUAL_FATAL(tun_open_queues(TUN_A, 2, false, fds), 0);
	CU_ASSERT(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1]);
	for (i = 0; i < 2; i++) {
		memset(&ifr, 0, sizeof(ifr));
		CU_ASSERT_EQUAL(ioctl(fds[i], TUNGETIFF, &ifr), 0);
		CU_ASSERT_STRING_EQUAL(ifr.ifr_name, TUN_A);
		CU_ASSERT_EQUAL(ifr.ifr_flags & (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE |
						 IFF_VNET_HDR),
				IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE);
	}
	CU_ASSERT(if_nametoindex(TUN_A) > 0);

	CU_ASSERT_EQUAL(tun_close_queues(fds, 2), 0);
	CU_ASSERT(fds[0] == -1 && fds[1] == -1);
	/* Not persistent: gone with its last queue. */
	CU_ASSERT_EQUAL(if_nametoindex(TUN_A), 0);
}

static void test_tun_vnet_hdr(void)
{
	int fds[3];
	struct ifreq ifr;

	CU_ASSERT_EQUAL_FATAL(tun_open_queues(TUN_A, 3, true, fds), 0);
	memset(&ifr, 0, sizeof(ifr));
	CU_ASSERT_EQUAL(ioctl(fds[2], TUNGETIFF, &ifr), 0);
	CU_ASSERT(ifr.ifr_flags & IFF_VNET_HDR);
	tun_close_queues(fds, 3);
}

static void test_tun_bad_args(void)
{
	int fds[1] = { 7 };

	CU_ASSERT_EQUAL(tun_open_queues(TUN_A, 0, false, fds), -EINVAL);
	CU_ASSERT_EQUAL(tun_open_queues("a-name-far-too-long-for-a-link", 1, false, fds),
			-EINVAL);
	CU_ASSERT_EQUAL(if_nametoindex(TUN_A), 0);
}

/* --- links, routes and rules --- */

static int tun_fds[2] = { -1, -1 };

static void test_link_setup(void)
{
	struct ifreq ifr;

	CU_ASSERT_EQUAL_FATAL(tun_open_queues(TUN_A, 2, false, tun_fds), 0);
	CU_ASSERT_EQUAL(nl_link_setup(TUN_A, 1476), 0);
	CU_ASSERT_EQUAL(link_ioctl(TUN_A, SIOCGIFMTU, &ifr), 0);
	CU_ASSERT_EQUAL(ifr.ifr_mtu, 1476);
	CU_ASSERT_EQUAL(link_ioctl(TUN_A, SIOCGIFFLAGS, &ifr), 0);
	CU_ASSERT(ifr.ifr_flags & IFF_UP);
	/* With both queues attached the carrier is on: the link is running. */
	CU_ASSERT(ifr.ifr_flags & IFF_RUNNING);
}

static void test_link_errors(void)
{
	CU_ASSERT_EQUAL(nl_link_setup("grepop-none", 1476), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(nl_last_error(), "grepop-none"));

	/* The kernel explains this refusal (extended ack): it must reach us. */
	CU_ASSERT_EQUAL(nl_link_setup(TUN_A, 100000), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strcasestr(nl_last_error(), "mtu"));
	printf("\n    refusal as logged: %s\n", nl_last_error());
}

static void route_roundtrip(const struct conf_prefix *p, uint32_t table, uint32_t seen_table)
{
	CU_ASSERT_EQUAL(route_count(p, TUN_A, seen_table), 0);
	CU_ASSERT_EQUAL(nl_route_add(p, TUN_A, table), 0);
	CU_ASSERT_EQUAL(route_count(p, TUN_A, seen_table), 1);
	/* Adding again replaces: still exactly one. */
	CU_ASSERT_EQUAL(nl_route_add(p, TUN_A, table), 0);
	CU_ASSERT_EQUAL(route_count(p, TUN_A, seen_table), 1);
	CU_ASSERT_EQUAL(nl_route_del(p, TUN_A, table), 0);
	CU_ASSERT_EQUAL(route_count(p, TUN_A, seen_table), 0);
	/* Deleting what is gone is not an error. */
	CU_ASSERT_EQUAL(nl_route_del(p, TUN_A, table), 0);
}

static void test_routes(void)
{
	struct conf_prefix v4 = prefix_v4("10.1.0.0", 24);
	struct conf_prefix v6 = prefix_v6("2001:db8:1::", 48);
	struct conf_prefix big = prefix_v4("10.2.0.0", 16);

	route_roundtrip(&v4, 0, RT_TABLE_MAIN);
	route_roundtrip(&v4, TABLE, TABLE);
	route_roundtrip(&v6, 0, RT_TABLE_MAIN);
	route_roundtrip(&v6, TABLE, TABLE);
	route_roundtrip(&v4, 70000, 70000);	/* a table number beyond 8 bits */

	/* The same prefix in two tables is two routes. */
	CU_ASSERT_EQUAL(nl_route_add(&big, TUN_A, 0), 0);
	CU_ASSERT_EQUAL(nl_route_add(&big, TUN_A, TABLE), 0);
	CU_ASSERT_EQUAL(route_count(&big, TUN_A, RT_TABLE_MAIN), 1);
	CU_ASSERT_EQUAL(route_count(&big, TUN_A, TABLE), 1);
	CU_ASSERT_EQUAL(nl_route_del(&big, TUN_A, TABLE), 0);
	CU_ASSERT_EQUAL(route_count(&big, TUN_A, RT_TABLE_MAIN), 1);
	CU_ASSERT_EQUAL(nl_route_del(&big, TUN_A, 0), 0);
}

static void test_route_errors(void)
{
	struct conf_prefix v4 = prefix_v4("10.1.0.0", 24);
	struct conf_prefix bad = prefix_v4("10.1.0.0", 33);

	CU_ASSERT_EQUAL(nl_route_add(&v4, "grepop-none", 0), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(nl_last_error(), "add route 10.1.0.0/24 dev grepop-none"));
	CU_ASSERT_EQUAL(nl_route_add(&bad, TUN_A, 0), -EINVAL);
	CU_ASSERT_EQUAL(nl_route_del(&v4, "grepop-none", 0), 0);
}

static void test_rules(void)
{
	struct conf_prefix v4 = prefix_v4("10.1.0.0", 24);
	struct conf_prefix v6 = prefix_v6("2001:db8:1::", 48);

	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, TABLE, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, "down-a", NULL, 1000), 1);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, TABLE, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, "down-a", NULL, 1000), 1);

	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, TABLE, NULL, &v4, 1001), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, NULL, &v4, 1001), 1);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET6, 70000, TUN_A, &v6, 1002), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET6, 70000, TUN_A, &v6, 1002), 1);

	CU_ASSERT_EQUAL(nl_rule_del(AF_INET, TABLE, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, NULL, &v4, 1001), 1);
	CU_ASSERT_EQUAL(nl_rule_del(AF_INET, TABLE, NULL, &v4, 1001), 0);
	CU_ASSERT_EQUAL(nl_rule_del(AF_INET6, 70000, TUN_A, &v6, 1002), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET, TABLE, NULL, &v4, 1001), 0);
	CU_ASSERT_EQUAL(rule_count(AF_INET6, 70000, TUN_A, &v6, 1002), 0);
	CU_ASSERT_EQUAL(nl_rule_del(AF_INET, TABLE, "down-a", NULL, 1000), 0);

	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, 0, "down-a", NULL, 1000), -EINVAL);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET6, TABLE, NULL, &v4, 1000), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(nl_last_error(), "add rule pref 1000"));
}

/*
 * The scheme of netlink.h end to end: two tenants with the same prefix in
 * tables 100 and 101, told apart by the interface a reply comes in on.
 * The kernel's answer to "which route would you take" (RTM_GETROUTE with
 * RTA_IIF) is checked with "ip route get", a second opinion.
 */
static void test_overlapping_tenants(void)
{
	struct conf_prefix p = prefix_v4("10.1.0.0", 24);
	int fds_b[2] = { -1, -1 }, rc;
	char out[512];
	FILE *f;

	CU_ASSERT_EQUAL_FATAL(tun_open_queues("grepop-t1", 2, false, fds_b), 0);
	CU_ASSERT_EQUAL(nl_link_setup("grepop-t1", 1476), 0);
	/* The downstream interfaces: each tenant's replies come in on its own. */
	rc = system("ip link add down-a type veth peer name down-a-p && "
		    "ip link add down-b type veth peer name down-b-p && "
		    "ip link set down-a-p up && ip link set down-b-p up && "
		    "ip link set down-a up && ip link set down-b up && "
		    "ip addr add 192.0.2.1/24 dev down-a && "
		    "ip addr add 198.51.100.1/24 dev down-b");
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(nl_route_add(&p, TUN_A, 100), 0);
	CU_ASSERT_EQUAL(nl_route_add(&p, "grepop-t1", 101), 0);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, 100, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(nl_rule_add(AF_INET, 101, "down-b", NULL, 1001), 0);
	CU_ASSERT_EQUAL(system("sysctl -qw net.ipv4.ip_forward=1"), 0);

	f = popen("ip -o route get 10.1.0.7 from 192.0.2.9 iif down-a; "
		  "ip -o route get 10.1.0.7 from 198.51.100.9 iif down-b", "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_PTR_NOT_NULL(fgets(out, sizeof(out), f));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "dev " TUN_A " table 100"));
	CU_ASSERT_PTR_NOT_NULL(fgets(out, sizeof(out), f));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "dev grepop-t1 table 101"));
	pclose(f);

	CU_ASSERT_EQUAL(nl_rule_del(AF_INET, 100, "down-a", NULL, 1000), 0);
	CU_ASSERT_EQUAL(nl_rule_del(AF_INET, 101, "down-b", NULL, 1001), 0);
	CU_ASSERT_EQUAL(nl_route_del(&p, TUN_A, 100), 0);
	tun_close_queues(fds_b, 2);
	/* The second tenant's route went with its device. */
	CU_ASSERT_EQUAL(nl_route_del(&p, "grepop-t1", 101), 0);
	CU_ASSERT_EQUAL(system("ip link del down-a && ip link del down-b"), 0);
}

static void test_link_teardown(void)
{
	CU_ASSERT_EQUAL(tun_close_queues(tun_fds, 2), 0);
	CU_ASSERT_EQUAL(if_nametoindex(TUN_A), 0);
}

/* --- nftables --- */

#define GATEWAY_IP	"192.0.2.1"
#define PEER_IP		"192.0.2.2"
#define KNOWN_SITE	"198.18.0.2"
#define UNKNOWN_SRC	"203.0.113.9"

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a;
}

/* Run CMD and keep its stdout in BUF. 0 if it exited 0. */
static int run_capture(const char *cmd, char *buf, size_t len)
{
	size_t n = 0, r;
	FILE *f;

	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < len && (r = fread(buf + n, 1, len - n - 1, f)) > 0)
		n += r;
	buf[n] = '\0';
	return pclose(f) == 0 ? 0 : -1;
}

/* The set's elements as the nft tool lists them (-1 if it cannot). */
static json_t *nft_list_elems(void)
{
	json_t *root, *items, *item, *elems;
	json_error_t jerr;
	size_t i;
	FILE *f;

	f = popen("nft -j list set ip " NFT_TABLE " " NFT_SET, "r");
	if (!f)
		return NULL;
	root = json_loadf(f, 0, &jerr);
	pclose(f);
	items = json_object_get(root, "nftables");
	json_array_foreach(items, i, item) {
		if (!json_object_get(item, "set"))
			continue;
		elems = json_object_get(json_object_get(item, "set"), "elem");
		elems = elems ? json_incref(elems) : json_array();
		json_decref(root);
		return elems;
	}
	json_decref(root);
	return NULL;
}

static bool elems_contain(json_t *elems, const char *addr)
{
	json_t *e;
	size_t i;

	json_array_foreach(elems, i, e) {
		if (json_is_string(e) && strcmp(json_string_value(e), addr) == 0)
			return true;
	}
	return false;
}

static void test_nft_setup(void)
{
	struct in_addr gw = ip4(GATEWAY_IP);
	uint64_t packets = 7, bytes = 7;
	char out[4096];

	CU_ASSERT_EQUAL_FATAL(nft_setup(&gw, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(run_capture("nft list table ip grepop", out, sizeof(out)), 0);
	printf("\n%s", out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "set sites {\n\t\ttype ipv4_addr\n\t}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "chain input {\n\t\ttype filter hook input "
				      "priority raw; policy accept;\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t\tip daddr 192.0.2.1 ip protocol gre "
				      "ip saddr != @sites counter packets 0 bytes 0 drop\n"));
	CU_ASSERT_EQUAL(nft_read_drop_counter(&packets, &bytes), 0);
	CU_ASSERT(packets == 0 && bytes == 0);
}

/* A table left by a crashed run, changed by hand: replaced as a whole. */
static void test_nft_setup_replaces(void)
{
	struct in_addr gw = ip4(GATEWAY_IP);
	char out[4096];

	CU_ASSERT_EQUAL(system("nft add chain ip grepop junk && "
			       "nft add element ip grepop sites '{ 10.9.9.9 }'"), 0);
	CU_ASSERT_EQUAL(nft_setup(&gw, NULL), 0);
	CU_ASSERT_EQUAL(run_capture("nft list table ip grepop", out, sizeof(out)), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "junk"));
	CU_ASSERT_PTR_NULL(strstr(out, "10.9.9.9"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ip saddr != @sites counter"));
}

/*
 * With the packet ring: the netdev table drops the ring's GRE at the WAN
 * interface's ingress; a refused setup changes nothing; a setup without
 * the ring removes the netdev table a ring run left.
 */
static void test_nft_setup_ring(void)
{
	struct in_addr gw = ip4(GATEWAY_IP);
	char out[4096];

	CU_ASSERT_EQUAL_FATAL(system("ip link add nft-wan type veth peer name nft-wan-p"), 0);
	CU_ASSERT_EQUAL_FATAL(nft_setup(&gw, "nft-wan"), 0);
	CU_ASSERT_EQUAL_FATAL(run_capture("nft list table netdev grepop", out, sizeof(out)), 0);
	printf("\n%s", out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "chain wan {\n\t\ttype filter hook ingress device "
				      "\"nft-wan\" priority -500; policy accept;\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ip daddr 192.0.2.1 ip protocol gre drop\n"));
	CU_ASSERT_EQUAL(run_capture("nft list table ip grepop", out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\t\tip daddr 192.0.2.1 ip protocol gre "
				      "counter packets 0 bytes 0 drop\n"));

	/* A name no interface can have: refused whole, the tables stay. */
	CU_ASSERT(nft_setup(&gw, "nft-name-longer-than-ifnamsiz") < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(nft_last_error(), "ingress on nft-name-longer"));
	printf("    refusal as logged: %s\n", nft_last_error());
	CU_ASSERT_EQUAL(run_capture("nft list table netdev grepop", out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "device \"nft-wan\""));

	CU_ASSERT_EQUAL(nft_setup(&gw, NULL), 0);
	CU_ASSERT_NOT_EQUAL(run_capture("nft list table netdev grepop 2>/dev/null", out,
					sizeof(out)), 0);
	CU_ASSERT_EQUAL(system("ip link del nft-wan"), 0);
}

static void test_nft_sites_small(void)
{
	struct in_addr first[3] = { ip4("198.18.0.2"), ip4("198.18.0.3"), ip4("198.18.0.4") };
	struct in_addr second[4] = {
		ip4("198.18.0.4"), ip4("198.18.0.3"), ip4("198.18.9.9"), ip4("198.18.9.9"),
	};
	json_t *elems;

	CU_ASSERT_EQUAL(nft_set_sites(first, 3), 0);
	elems = nft_list_elems();
	CU_ASSERT_EQUAL(json_array_size(elems), 3);
	CU_ASSERT(elems_contain(elems, "198.18.0.2") && elems_contain(elems, "198.18.0.3") &&
		  elems_contain(elems, "198.18.0.4"));
	json_decref(elems);

	/* Kept, dropped and new addresses, one given twice: exactly the new list. */
	CU_ASSERT_EQUAL(nft_set_sites(second, 4), 0);
	elems = nft_list_elems();
	CU_ASSERT_EQUAL(json_array_size(elems), 3);
	CU_ASSERT(!elems_contain(elems, "198.18.0.2"));
	CU_ASSERT(elems_contain(elems, "198.18.0.3") && elems_contain(elems, "198.18.0.4") &&
		  elems_contain(elems, "198.18.9.9"));
	json_decref(elems);

	CU_ASSERT_EQUAL(nft_set_sites(NULL, 0), 0);
	elems = nft_list_elems();
	CU_ASSERT_EQUAL(json_array_size(elems), 0);
	json_decref(elems);
}

static double set_sites_ms(const struct in_addr *ips, size_t n)
{
	uint64_t start = now_monotonic_ns();

	CU_ASSERT_EQUAL(nft_set_sites(ips, n), 0);
	return (double)(now_monotonic_ns() - start) / 1e6;
}

static void test_nft_sites_100k(void)
{
	enum { N = 100000 };
	struct in_addr *ips = calloc(N, sizeof(*ips));
	double fill, replace, shift;
	json_t *elems;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ips);
	for (i = 0; i < N; i++)
		ips[i].s_addr = htonl(0x0a000000 + (uint32_t)i);	/* 10.0.0.0 on */
	fill = set_sites_ms(ips, N);
	replace = set_sites_ms(ips, N);
	for (i = 0; i < N; i++)
		ips[i].s_addr = htonl(0x0a000000 + N / 2 + (uint32_t)i);
	shift = set_sites_ms(ips, N);
	printf("\n    100000 sites: empty -> full %.0f ms, same again %.0f ms, "
	       "half replaced %.0f ms\n", fill, replace, shift);

	elems = nft_list_elems();
	CU_ASSERT_EQUAL(json_array_size(elems), N);
	CU_ASSERT(elems_contain(elems, "10.0.195.80"));		/* 10.0.0.0 + N/2 */
	CU_ASSERT(elems_contain(elems, "10.2.73.223"));		/* the last */
	CU_ASSERT(!elems_contain(elems, "10.0.195.79"));
	json_decref(elems);
	free(ips);
}

/*
 * Packets through the rule: a child process in a network namespace of its
 * own, joined to ours by a veth pair, sends GRE with spoofed sources (raw
 * socket, IP_HDRINCL) when told to over a pipe.
 */
static int send_gre(const char *src)
{
	struct {
		struct iphdr ip;
		uint16_t gre[2];
		uint8_t payload[20];
	} __attribute__((packed)) pkt;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_addr = ip4(GATEWAY_IP) };
	int fd, ret;

	memset(&pkt, 0, sizeof(pkt));
	pkt.ip.version = 4;
	pkt.ip.ihl = 5;
	pkt.ip.ttl = 64;
	pkt.ip.protocol = IPPROTO_GRE;
	pkt.ip.tot_len = htons(sizeof(pkt));
	pkt.ip.saddr = ip4(src).s_addr;
	pkt.ip.daddr = dst.sin_addr.s_addr;
	pkt.gre[1] = htons(0x0800);
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		return -1;
	ret = sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, sizeof(dst));
	close(fd);
	return ret == (int)sizeof(pkt) ? 0 : -1;
}

/* The child: its own namespace, then one packet per command byte. */
static void peer_main(int cmd_fd, int ack_fd)
{
	char c;

	alarm(20);
	if (unshare(CLONE_NEWNET) < 0 || write(ack_fd, "r", 1) != 1)
		_exit(1);
	if (read(cmd_fd, &c, 1) != 1 ||
	    system("ip link set lo up && ip addr add " PEER_IP "/24 dev gp-peer && "
		   "ip link set gp-peer up") != 0)
		_exit(1);
	while (read(cmd_fd, &c, 1) == 1 && c != 'q') {
		c = send_gre(c == 'k' ? KNOWN_SITE : UNKNOWN_SRC) == 0 ? 's' : 'f';
		if (write(ack_fd, &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

struct peer {
	pid_t pid;
	int cmd_fd;
	int ack_fd;
};

static int peer_start(struct peer *p)
{
	int cmd[2], ack[2];
	char c, ip_cmd[512];

	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0)
		return -1;
	p->pid = fork();
	if (p->pid == 0)
		peer_main(cmd[0], ack[1]);
	close(cmd[0]);
	close(ack[1]);
	p->cmd_fd = cmd[1];
	p->ack_fd = ack[0];
	if (p->pid < 0 || read(p->ack_fd, &c, 1) != 1)
		return -1;
	/* Our end is gp-gw; the sources' routes point back at it (rp_filter). */
	snprintf(ip_cmd, sizeof(ip_cmd),
		 "ip link add gp-gw type veth peer name gp-peer netns %d && "
		 "ip addr add " GATEWAY_IP "/24 dev gp-gw && ip link set gp-gw up && "
		 "ip route add 198.18.0.0/24 dev gp-gw && ip route add 203.0.113.0/24 dev gp-gw",
		 (int)p->pid);
	if (system(ip_cmd) != 0)
		return -1;
	return write(p->cmd_fd, "g", 1) == 1 ? 0 : -1;
}

static int peer_send(struct peer *p, char what)
{
	char c = 0;

	if (write(p->cmd_fd, &what, 1) != 1 || read(p->ack_fd, &c, 1) != 1)
		return -1;
	return c == 's' ? 0 : -1;
}

/* The peer's namespace, and with it the veth pair, ends with the child. */
static void peer_stop(struct peer *p)
{
	int status;

	if (write(p->cmd_fd, "q", 1) != 1)
		kill(p->pid, SIGKILL);
	close(p->cmd_fd);
	close(p->ack_fd);
	waitpid(p->pid, &status, 0);
}

/* Wait up to TIMEOUT_MS for a GRE packet from SRC on the raw socket FD. */
static bool gre_received(int fd, const char *src, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t deadline = now_monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	struct iphdr ip;

	while (now_monotonic_ns() < deadline) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (recv(fd, &ip, sizeof(ip), MSG_DONTWAIT | MSG_TRUNC) < (ssize_t)sizeof(ip))
			continue;
		if (ip.saddr == ip4(src).s_addr)
			return true;
	}
	return false;
}

/* Poll the drop counter (veth delivers in softirq) for up to a second. */
static uint64_t drops_become(uint64_t want, uint64_t *bytes)
{
	uint64_t packets = 0;
	int i;

	for (i = 0; i < 100; i++) {
		if (nft_read_drop_counter(&packets, bytes) < 0 || packets == want)
			break;
		usleep(10000);
	}
	return packets;
}

static void test_nft_drops_unknown(void)
{
	struct in_addr gw = ip4(GATEWAY_IP), site = ip4(KNOWN_SITE);
	struct peer peer = { .pid = -1 };
	uint64_t bytes = 0;
	int fd;

	CU_ASSERT_EQUAL_FATAL(nft_setup(&gw, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(nft_set_sites(&site, 1), 0);
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);
	CU_ASSERT_FATAL(fd >= 0);
	if (peer_start(&peer) < 0) {
		CU_FAIL("peer namespace and veth pair");
		goto stop;
	}
	CU_ASSERT_EQUAL(drops_become(0, &bytes), 0);

	CU_ASSERT_EQUAL(peer_send(&peer, 'k'), 0);
	CU_ASSERT(gre_received(fd, KNOWN_SITE, 1000));
	CU_ASSERT_EQUAL(drops_become(0, &bytes), 0);

	CU_ASSERT_EQUAL(peer_send(&peer, 'u'), 0);
	CU_ASSERT_EQUAL(drops_become(1, &bytes), 1);
	CU_ASSERT_EQUAL(bytes, 44);		/* 20 IPv4 + 4 GRE + 20 payload */
	CU_ASSERT(!gre_received(fd, UNKNOWN_SRC, 300));

	/* The set is what decides: once the source is a site, it passes. */
	CU_ASSERT_EQUAL(nft_set_sites((struct in_addr[]){ site, ip4(UNKNOWN_SRC) }, 2), 0);
	CU_ASSERT_EQUAL(peer_send(&peer, 'u'), 0);
	CU_ASSERT(gre_received(fd, UNKNOWN_SRC, 1000));
	CU_ASSERT_EQUAL(drops_become(1, &bytes), 1);
stop:
	if (peer.pid > 0)
		peer_stop(&peer);
	close(fd);
}

static void test_nft_teardown(void)
{
	uint64_t packets, bytes;
	char out[256];

	CU_ASSERT_EQUAL(nft_teardown(), 0);
	CU_ASSERT_EQUAL(run_capture("nft list tables", out, sizeof(out)), 0);
	CU_ASSERT_PTR_NULL(strstr(out, NFT_TABLE));
	/* Gone twice is fine; reading a counter that is gone is not. */
	CU_ASSERT_EQUAL(nft_teardown(), 0);
	CU_ASSERT_EQUAL(nft_read_drop_counter(&packets, &bytes), -ENOENT);
	CU_ASSERT_EQUAL(nft_set_sites(NULL, 0), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(nft_last_error(), "flush set"));
	printf("\n    refusal as logged: %s\n", nft_last_error());
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (geteuid() != 0) {
		fprintf(stderr, "test_gatewayd_netlink: needs root (network namespaces)\n");
		return 1;
	}
	/* A namespace of our own: everything below disappears when we exit. */
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return 1;
	}
	if (nl_link_setup("lo", 65536) < 0) {
		fprintf(stderr, "lo up: %s\n", nl_last_error());
		return 1;
	}

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("tun", NULL, NULL);
	CU_add_test(suite, "two queues, removed with the last", test_tun_queues);
	CU_add_test(suite, "vnet header", test_tun_vnet_hdr);
	CU_add_test(suite, "bad arguments", test_tun_bad_args);
	suite = CU_add_suite("netlink", NULL, NULL);
	CU_add_test(suite, "link mtu and up", test_link_setup);
	CU_add_test(suite, "link errors with the kernel's message", test_link_errors);
	CU_add_test(suite, "routes in main and table 100, v4 and v6", test_routes);
	CU_add_test(suite, "route errors", test_route_errors);
	CU_add_test(suite, "rules", test_rules);
	CU_add_test(suite, "two tenants, one prefix", test_overlapping_tenants);
	CU_add_test(suite, "link teardown", test_link_teardown);
	suite = CU_add_suite("nft", NULL, NULL);
	CU_add_test(suite, "table, set, chain, rule", test_nft_setup);
	CU_add_test(suite, "a leftover table is replaced", test_nft_setup_replaces);
	CU_add_test(suite, "with the ring: the netdev table", test_nft_setup_ring);
	CU_add_test(suite, "sites: exactly the list given", test_nft_sites_small);
	CU_add_test(suite, "sites: 100000", test_nft_sites_100k);
	CU_add_test(suite, "GRE from unknown sources dropped and counted",
		    test_nft_drops_unknown);
	CU_add_test(suite, "teardown", test_nft_teardown);

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
