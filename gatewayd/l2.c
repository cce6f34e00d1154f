/*
 * Next-hop MACs through rtnetlink (libmnl), on the control thread: ask the
 * kernel's route for a site's source IP, then the neighbour entry of its
 * next hop on the route's interface, and publish the answer for the
 * workers (gw->l2_words, one atomic word per shared-memory slot). See l2.h.
 *
 * A refresh pass walks the slots a bounded number at a time, so a POP with
 * 100,000 sites spreads the work over several periodic calls; sites mostly
 * share one router, so a pass remembers the next hops it already looked up.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "gatewayd/l2.h"
#include "gatewayd/netlink.h"

#define L2_NL_BUF	8192
#define L2_NUD_USABLE	(NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT)

/* What one reply said: route (oif, gateway, type) or neighbour (state, MAC). */
struct l2_reply {
	bool seen;			/* an answer of either kind arrived */
	unsigned oif;
	uint8_t type;
	bool has_gateway;
	struct in_addr gateway;
	uint16_t state;
	bool has_mac;
	uint8_t mac[L2_MAC_LEN];
};

/* The Ethernet address of interface IFINDEX. */
static int l2_interface_mac(int ifindex, uint8_t mac[L2_MAC_LEN])
{
	struct ifreq ifr = { 0 };
	int fd, r = 0;

	if (!if_indextoname((unsigned)ifindex, ifr.ifr_name))
		return -ENODEV;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		r = -errno;
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		r = -EPFNOSUPPORT;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, L2_MAC_LEN);
	close(fd);
	return r;
}

int l2_open(struct l2_resolver *r)
{
	memset(r, 0, sizeof(*r));
	return nl_socket_open(NETLINK_ROUTE, &r->nl);
}

void l2_close(struct l2_resolver *r)
{
	if (r->nl)
		mnl_socket_close(r->nl);
	r->nl = NULL;
}

int l2_iface_index(struct l2_resolver *r, int ifindex)
{
	struct l2_iface *f;
	int ret;

	for (unsigned i = 0; i < r->n_ifaces; i++)
		if (r->iface[i].ifindex == ifindex)
			return (int)i;
	if (r->n_ifaces == L2_IFACES)
		return -ENOSPC;
	f = &r->iface[r->n_ifaces];
	ret = l2_interface_mac(ifindex, f->mac);
	if (ret < 0)
		return ret;
	f->ifindex = ifindex;
	/* Workers read the entry once a word names it; words are stored with release. */
	return (int)r->n_ifaces++;
}

static int l2_route_attr(const struct nlattr *attr, void *data)
{
	struct l2_reply *rep = data;

	switch (mnl_attr_get_type(attr)) {
	case RTA_OIF:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			rep->oif = mnl_attr_get_u32(attr);
		break;
	case RTA_GATEWAY:
		if (mnl_attr_get_payload_len(attr) == sizeof(rep->gateway)) {
			memcpy(&rep->gateway, mnl_attr_get_payload(attr), sizeof(rep->gateway));
			rep->has_gateway = true;
		}
		break;
	}
	return MNL_CB_OK;
}

static int l2_neigh_attr(const struct nlattr *attr, void *data)
{
	struct l2_reply *rep = data;

	if (mnl_attr_get_type(attr) == NDA_LLADDR &&
	    mnl_attr_get_payload_len(attr) == L2_MAC_LEN) {
		memcpy(rep->mac, mnl_attr_get_payload(attr), L2_MAC_LEN);
		rep->has_mac = true;
	}
	return MNL_CB_OK;
}

static int l2_reply_cb(const struct nlmsghdr *nlh, void *data)
{
	struct l2_reply *rep = data;

	rep->seen = true;
	if (nlh->nlmsg_type == RTM_NEWROUTE) {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

		rep->type = rtm->rtm_type;
		return mnl_attr_parse(nlh, sizeof(*rtm), l2_route_attr, rep);
	}
	if (nlh->nlmsg_type == RTM_NEWNEIGH) {
		const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);

		rep->state = ndm->ndm_state;
		return mnl_attr_parse(nlh, sizeof(*ndm), l2_neigh_attr, rep);
	}
	return MNL_CB_OK;
}

/* Send the get request NLH and parse its one answer into REP. 0 or -errno. */
static int l2_ask(struct l2_resolver *r, struct nlmsghdr *nlh, struct l2_reply *rep)
{
	char buf[L2_NL_BUF];
	unsigned portid = mnl_socket_get_portid(r->nl);
	ssize_t n;
	int ret;

	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++r->seq;
	memset(rep, 0, sizeof(*rep));
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(r->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, l2_reply_cb, rep);
	} while (ret == MNL_CB_OK && !rep->seen);
	return ret < 0 ? -errno : 0;
}

int l2_route(struct l2_resolver *r, struct in_addr dst, int *ifindex,
	     struct in_addr *next_hop)
{
	char buf[L2_NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct l2_reply rep;
	struct rtmsg *rtm;
	int ret;

	nlh->nlmsg_type = RTM_GETROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	ret = l2_ask(r, nlh, &rep);
	if (ret < 0)
		return ret;
	if (rep.type != RTN_UNICAST || rep.oif == 0)
		return -ENETUNREACH;
	*ifindex = (int)rep.oif;
	*next_hop = rep.has_gateway ? rep.gateway : dst;
	return 0;
}

int l2_neighbour(struct l2_resolver *r, int ifindex, struct in_addr next_hop,
		 uint8_t mac[L2_MAC_LEN], bool *usable)
{
	char buf[L2_NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct l2_reply rep;
	struct ndmsg *ndm;
	int ret;

	*usable = false;
	nlh->nlmsg_type = RTM_GETNEIGH;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = AF_INET;
	ndm->ndm_ifindex = ifindex;
	mnl_attr_put(nlh, NDA_DST, sizeof(next_hop), &next_hop);
	ret = l2_ask(r, nlh, &rep);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	*usable = (rep.state & L2_NUD_USABLE) && rep.has_mac;
	memcpy(mac, rep.mac, L2_MAC_LEN);
	return 0;
}

void l2_pass_begin(struct l2_resolver *r)
{
	r->cached = 0;
}

/* The MAC of the usable next hop HOP on IFINDEX from the pass's cache, or NULL. */
static const uint8_t *l2_cache_find(const struct l2_resolver *r, int ifindex, struct in_addr hop)
{
	for (unsigned i = 0; i < r->cached; i++)
		if (r->cache[i].ifindex == ifindex && r->cache[i].next_hop.s_addr == hop.s_addr)
			return r->cache[i].mac;
	return NULL;
}

uint64_t l2_resolve(struct l2_resolver *r, struct in_addr dst)
{
	uint8_t mac[L2_MAC_LEN];
	const uint8_t *known;
	struct in_addr hop;
	int ifindex, iface;
	bool usable;

	if (l2_route(r, dst, &ifindex, &hop) < 0)
		return 0;
	iface = l2_iface_index(r, ifindex);
	if (iface < 0)
		return 0;
	known = l2_cache_find(r, ifindex, hop);
	if (known)
		return l2_word_encode(known, (unsigned)iface, dst);
	if (l2_neighbour(r, ifindex, hop, mac, &usable) < 0 || !usable)
		return 0;
	/* Only answers are kept: a missing neighbour is asked again, it may appear. */
	if (r->cached < L2_CACHE_SIZE) {
		r->cache[r->cached].ifindex = ifindex;
		r->cache[r->cached].next_hop = hop;
		memcpy(r->cache[r->cached++].mac, mac, L2_MAC_LEN);
	}
	return l2_word_encode(mac, (unsigned)iface, dst);
}

/* --- gatewayd: one word per shared-memory slot --- */

int l2_gw_open(struct gw *gw)
{
	int r;

	gw->l2_words = calloc(gw->shm.hdr->site_capacity, sizeof(*gw->l2_words));
	gw->l2 = calloc(1, sizeof(*gw->l2));
	if (!gw->l2_words || !gw->l2) {
		l2_gw_close(gw);
		return -ENOMEM;
	}
	r = l2_open(gw->l2);
	if (r < 0)
		l2_gw_close(gw);
	return r;
}

void l2_gw_close(struct gw *gw)
{
	if (gw->l2)
		l2_close(gw->l2);
	free(gw->l2);
	free(gw->l2_words);
	gw->l2 = NULL;
	gw->l2_words = NULL;
}

/* Resolve SITE again and publish its word, whatever it is now. */
static void l2_publish(struct gw *gw, const struct gw_site *site)
{
	uint64_t word = l2_resolve(gw->l2, site->conf.source_ip);

	__atomic_store_n(&gw->l2_words[site->slot], word, __ATOMIC_RELEASE);
}

unsigned l2_refresh_unresolved(struct gw *gw, unsigned budget)
{
	uint8_t mac[L2_MAC_LEN];
	unsigned done = 0, iface;

	if (!gw->l2)
		return 0;
	for (uint32_t s = 0; s < gw->shm.hdr->site_capacity && done < budget; s++) {
		const struct gw_site *site = gw->by_slot[s];

		if (!site || l2_word_decode(gw->l2_words[s], site->conf.source_ip, mac, &iface))
			continue;
		l2_publish(gw, site);
		done++;
	}
	return done;
}

void l2_refresh_tick(struct gw *gw, unsigned budget)
{
	uint32_t capacity;

	if (!gw->l2)
		return;
	capacity = gw->shm.hdr->site_capacity;
	if (gw->l2_cursor >= capacity)
		gw->l2_cursor = 0;
	if (gw->l2_cursor == 0)
		l2_pass_begin(gw->l2);
	for (unsigned n = 0; n < budget && gw->l2_cursor < capacity; n++) {
		const struct gw_site *site = gw->by_slot[gw->l2_cursor++];

		if (site)
			l2_publish(gw, site);
	}
}
