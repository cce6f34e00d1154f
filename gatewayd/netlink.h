/*
 * Routes, links and policy-routing rules through rtnetlink (libmnl), for
 * gatewayd's control thread: at start-up, when tenants or sites change and
 * at exit. Never on the per-packet path.
 *
 * How two tenants with the same customer prefix (say both use 10.1.0.0/24)
 * are kept apart without VRFs: each tenant has its own routing table that
 * holds its customer prefixes via its TUN. Replies from the downstream
 * services arrive on one downstream interface (or VLAN) per tenant, so a
 * rule "iif <tenant's downstream interface> lookup <tenant's table>" sends
 * them into the right TUN. The destination alone cannot tell the tenants
 * apart; the incoming interface can. Traffic leaving a tenant's TUN towards
 * the services is steered the same way with "iif <tenant's TUN> lookup
 * <table>" when that table holds the tenant's route to its services. The
 * rules need priorities below the main table's (32766). A tenant on table
 * 0 (main) needs no rule; a "to <prefix>" rule is enough only while no two
 * tenants share a prefix.
 *
 * Every function opens its own socket, so the functions are independent;
 * they are not thread-safe (the error message is one static buffer) and
 * are meant for one control thread. Failures return a negative errno and
 * leave a message for the log in nl_last_error(), with the kernel's own
 * explanation (extended ack) when it gave one.
 */
#ifndef GATEWAYD_NETLINK_H
#define GATEWAYD_NETLINK_H

#include <stdint.h>

#include "lib/conf.h"

#define NL_ERR_MAX		512

/*
 * A bound netlink socket of BUS (NETLINK_ROUTE, NETLINK_NETFILTER) that asks
 * for extended acknowledgements. 0 or -errno; the caller closes *OUT.
 */
struct mnl_socket;
int nl_socket_open(int bus, struct mnl_socket **out);

/* Set the MTU of interface NAME and bring it up. 0 or -errno. */
int nl_link_setup(const char *name, unsigned mtu);

/*
 * Route PREFIX (IPv4 or IPv6) via interface IFNAME in routing table TABLE
 * (0 = main). An existing route for the same prefix in that table is
 * replaced. 0 or -errno.
 */
int nl_route_add(const struct conf_prefix *prefix, const char *ifname, uint32_t table);

/*
 * Delete the route for PREFIX via IFNAME in TABLE (0 = main). A route that
 * is not there is not an error: returns 0. Otherwise 0 or -errno.
 */
int nl_route_del(const struct conf_prefix *prefix, const char *ifname, uint32_t table);

/*
 * Add the rule "[iif IIFNAME] [to PREFIX] lookup TABLE" at PRIORITY for
 * FAMILY (AF_INET or AF_INET6). IIFNAME and PREFIX may each be NULL (no
 * such selector); PREFIX, when given, must be of FAMILY. TABLE must not be
 * 0. Adding a rule that exists already with the same selectors, table and
 * priority succeeds without adding a second one. 0 or -errno.
 */
int nl_rule_add(int family, uint32_t table, const char *iifname,
		const struct conf_prefix *prefix, uint32_t priority);

/* Delete that rule; a rule that is not there returns 0. 0 or -errno. */
int nl_rule_del(int family, uint32_t table, const char *iifname,
		const struct conf_prefix *prefix, uint32_t priority);

/*
 * What the last failing call of this module tried and why, e.g.
 * "add route 10.1.0.0/24 dev tun-a table 100: No such device". Valid until
 * the next call; "" before any failure.
 */
const char *nl_last_error(void);

#endif
