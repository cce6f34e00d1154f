/*
 * rtnetlink requests, one socket per call: send one request with NLM_F_ACK
 * and read until its acknowledgement. The kernel is asked for extended
 * acks so that its explanation of a refusal ends up in the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "gatewayd/netlink.h"

/* Fixed sizes: MNL_SOCKET_BUFFER_SIZE depends on the page size (a VLA). */
#define NL_BUF_SIZE	8192

static char nl_err[NL_ERR_MAX];
static char nl_extack[256];

const char *nl_last_error(void)
{
	return nl_err;
}

/* Record "WHAT: reason (kernel's explanation)" and return ERR. */
static int __attribute__((format(printf, 2, 3))) nl_fail(int err, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (nl_extack[0])
		snprintf(nl_err, sizeof(nl_err), "%s: %s (%s)", what, strerror(-err), nl_extack);
	else
		snprintf(nl_err, sizeof(nl_err), "%s: %s", what, strerror(-err));
	return err;
}

static int nl_extack_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(nl_extack, sizeof(nl_extack), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* An acknowledgement ends the exchange; an error sets errno and the extack. */
static int nl_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (err->error == 0)
		return MNL_CB_STOP;
	/* NETLINK_CAP_ACK: only the header of our request is echoed back. */
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
		mnl_attr_parse(nlh, sizeof(*err), nl_extack_attr_cb, NULL);
	errno = -err->error;
	return MNL_CB_ERROR;
}

int nl_socket_open(int bus, struct mnl_socket **out)
{
	struct mnl_socket *nl;
	int one = 1;

	nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(nl);
		return err;
	}
	/* Both are best effort: without them, errors just lose their detail. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	*out = nl;
	return 0;
}

/* Send NLH as a request and wait for its acknowledgement. 0 or -errno. */
static int nl_talk(struct nlmsghdr *nlh)
{
	static mnl_cb_t ctl_cb[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = nl_error_cb };
	char buf[NL_BUF_SIZE];
	struct mnl_socket *nl = NULL;
	unsigned portid;
	ssize_t n;
	int ret;

	nl_extack[0] = '\0';
	ret = nl_socket_open(NETLINK_ROUTE, &nl);
	if (ret < 0)
		return ret;

	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto close_socket;
	}

	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			ret = -errno;
			goto close_socket;
		}
		ret = mnl_cb_run2(buf, n, nlh->nlmsg_seq, portid, NULL, NULL,
				  ctl_cb, NLMSG_MIN_TYPE);
	} while (ret == MNL_CB_OK);
	ret = ret < 0 ? -errno : 0;

close_socket:
	mnl_socket_close(nl);
	return ret;
}

/* RTM_NEWLINK for interface INDEX changing FLAGS (under CHANGE). */
static struct nlmsghdr *nl_link_msg(char *buf, unsigned index, unsigned flags, unsigned change)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)index;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
	return nlh;
}

int nl_link_setup(const char *name, unsigned mtu)
{
	char buf[NL_BUF_SIZE];
	struct nlmsghdr *nlh;
	struct nlattr *af, *inet6;
	unsigned index;
	int ret;

	nl_extack[0] = '\0';
	index = if_nametoindex(name);
	if (index == 0)
		return nl_fail(-errno, "set link %s mtu %u up", name, mtu);

	/*
	 * MTU, and no IPv6 link-local address, while the link is still down:
	 * it then sends no router solicitations or DAD of its own, which would
	 * only come back out of the TUN as packets for nobody. IPv6 routes
	 * through it still work.
	 */
	nlh = nl_link_msg(buf, index, 0, 0);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	af = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	inet6 = mnl_attr_nest_start(nlh, AF_INET6);
	mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	mnl_attr_nest_end(nlh, inet6);
	mnl_attr_nest_end(nlh, af);
	ret = nl_talk(nlh);
	if (ret == 0)
		ret = nl_talk(nl_link_msg(buf, index, IFF_UP, IFF_UP));
	if (ret < 0)
		return nl_fail(ret, "set link %s mtu %u up", name, mtu);
	return 0;
}

/* "10.1.0.0/24" into BUF; "" for a family that is neither. */
static const char *nl_prefix_str(const struct conf_prefix *prefix, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (!inet_ntop(prefix->family, &prefix->addr, addr, sizeof(addr)))
		addr[0] = '\0';
	snprintf(buf, len, "%s/%u", addr, prefix->len);
	return buf;
}

static int nl_prefix_check(const struct conf_prefix *prefix)
{
	if (prefix->family == AF_INET)
		return prefix->len <= 32 ? 0 : -EINVAL;
	if (prefix->family == AF_INET6)
		return prefix->len <= 128 ? 0 : -EINVAL;
	return -EAFNOSUPPORT;
}

static size_t nl_prefix_addr_len(const struct conf_prefix *prefix)
{
	return prefix->family == AF_INET ? sizeof(prefix->addr.v4) : sizeof(prefix->addr.v6);
}

/* Tables above 255 only fit in the attribute; the header field says so. */
static uint8_t nl_table_hdr(uint32_t table)
{
	return table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
}

static void nl_route_build(struct nlmsghdr *nlh, const struct conf_prefix *prefix,
			   unsigned oif, uint32_t table, bool add)
{
	struct rtmsg *rtm;

	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)prefix->family;
	rtm->rtm_dst_len = prefix->len;
	rtm->rtm_table = nl_table_hdr(table);
	rtm->rtm_type = RTN_UNICAST;
	/* A delete matches routes of any origin and scope, as "ip route del" does. */
	rtm->rtm_protocol = add ? RTPROT_STATIC : RTPROT_UNSPEC;
	rtm->rtm_scope = add ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
	mnl_attr_put(nlh, RTA_DST, nl_prefix_addr_len(prefix), &prefix->addr);
	mnl_attr_put_u32(nlh, RTA_OIF, oif);
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
}

static int nl_route_change(const struct conf_prefix *prefix, const char *ifname,
			   uint32_t table, bool add)
{
	char buf[NL_BUF_SIZE], pfx[INET6_ADDRSTRLEN + 4];
	const char *verb = add ? "add" : "delete";
	struct nlmsghdr *nlh;
	unsigned oif;
	int ret;

	nl_extack[0] = '\0';
	if (table == 0)
		table = RT_TABLE_MAIN;
	nl_prefix_str(prefix, pfx, sizeof(pfx));
	ret = nl_prefix_check(prefix);
	if (ret < 0)
		return nl_fail(ret, "%s route %s dev %s table %u", verb, pfx, ifname, table);

	oif = if_nametoindex(ifname);
	if (oif == 0) {
		/* The kernel removed the device's routes with the device. */
		if (!add && errno == ENODEV)
			return 0;
		return nl_fail(-errno, "%s route %s dev %s table %u", verb, pfx, ifname, table);
	}

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_REPLACE : 0;
	nl_route_build(nlh, prefix, oif, table, add);

	ret = nl_talk(nlh);
	if (ret == -ESRCH && !add)
		return 0;
	if (ret < 0)
		return nl_fail(ret, "%s route %s dev %s table %u", verb, pfx, ifname, table);
	return 0;
}

int nl_route_add(const struct conf_prefix *prefix, const char *ifname, uint32_t table)
{
	return nl_route_change(prefix, ifname, table, true);
}

int nl_route_del(const struct conf_prefix *prefix, const char *ifname, uint32_t table)
{
	return nl_route_change(prefix, ifname, table, false);
}

static void nl_rule_build(struct nlmsghdr *nlh, int family, uint32_t table,
			  const char *iifname, const struct conf_prefix *prefix,
			  uint32_t priority)
{
	struct fib_rule_hdr *frh;

	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (uint8_t)family;
	frh->table = nl_table_hdr(table);
	frh->action = FR_ACT_TO_TBL;
	mnl_attr_put_u32(nlh, FRA_TABLE, table);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, priority);
	if (iifname)
		mnl_attr_put_strz(nlh, FRA_IIFNAME, iifname);
	if (prefix) {
		frh->dst_len = prefix->len;
		mnl_attr_put(nlh, FRA_DST, nl_prefix_addr_len(prefix), &prefix->addr);
	}
}

/* "rule pref 100 iif down-a to 10.1.0.0/24 table 100" for the log. */
static void nl_rule_str(char *buf, size_t len, uint32_t table, const char *iifname,
			const struct conf_prefix *prefix, uint32_t priority)
{
	char pfx[INET6_ADDRSTRLEN + 4] = "all";

	if (prefix)
		nl_prefix_str(prefix, pfx, sizeof(pfx));
	snprintf(buf, len, "rule pref %u iif %s to %s table %u", priority,
		 iifname ? iifname : "any", pfx, table);
}

static int nl_rule_change(int family, uint32_t table, const char *iifname,
			  const struct conf_prefix *prefix, uint32_t priority, bool add)
{
	char buf[NL_BUF_SIZE], desc[128];
	const char *verb = add ? "add" : "delete";
	struct nlmsghdr *nlh;
	int ret = 0;

	nl_extack[0] = '\0';
	nl_rule_str(desc, sizeof(desc), table, iifname, prefix, priority);
	if (family != AF_INET && family != AF_INET6)
		ret = -EAFNOSUPPORT;
	else if (table == 0 || (iifname && strlen(iifname) >= IFNAMSIZ))
		ret = -EINVAL;
	else if (prefix && (prefix->family != family || nl_prefix_check(prefix) < 0))
		ret = -EINVAL;
	if (ret < 0)
		return nl_fail(ret, "%s %s", verb, desc);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	nl_rule_build(nlh, family, table, iifname, prefix, priority);

	ret = nl_talk(nlh);
	if ((add && ret == -EEXIST) || (!add && ret == -ENOENT))
		return 0;
	if (ret < 0)
		return nl_fail(ret, "%s %s", verb, desc);
	return 0;
}

int nl_rule_add(int family, uint32_t table, const char *iifname,
		const struct conf_prefix *prefix, uint32_t priority)
{
	return nl_rule_change(family, table, iifname, prefix, priority, true);
}

int nl_rule_del(int family, uint32_t table, const char *iifname,
		const struct conf_prefix *prefix, uint32_t priority)
{
	return nl_rule_change(family, table, iifname, prefix, priority, false);
}
