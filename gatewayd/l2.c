/*
 * Next-hop MACs through rtnetlink (libmnl), on the control thread: ask the
 * kernel's route for a site's source IP, then the neighbour entry of its
 * next hop on the route's interface, and publish the answer for the
 * workers (gw->l2_words, one atomic word per shared-memory slot). See l2.h.
 *
 * Each slot keeps the route it was resolved over, so a refresh asks the
 * kernel only for the neighbours of the next hops, once each per sweep;
 * routes are asked again after rtnetlink announces a change (l2.h).
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

/* What moves a route: routes and rules themselves, addresses, links going down. */
#define L2_CHANGE_GROUPS	(RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV4_IFADDR | \
				 RTMGRP_LINK)

static int l2_changes_open(struct mnl_socket **out)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, L2_CHANGE_GROUPS, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(nl);
		return err;
	}
	*out = nl;
	return 0;
}

int l2_open(struct l2_resolver *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->route_gen = 1;
	ret = nl_socket_open(NETLINK_ROUTE, &r->nl);
	if (ret < 0)
		return ret;
	ret = l2_changes_open(&r->changes);
	if (ret < 0)
		l2_close(r);
	return ret;
}

void l2_close(struct l2_resolver *r)
{
	if (r->nl)
		mnl_socket_close(r->nl);
	if (r->changes)
		mnl_socket_close(r->changes);
	r->nl = r->changes = NULL;
}

bool l2_routes_changed(struct l2_resolver *r)
{
	char buf[L2_NL_BUF];
	bool changed = false;

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(r->changes, buf, sizeof(buf));

		if (n > 0 || (n < 0 && errno == ENOBUFS)) {
			changed = true;		/* lost ones (ENOBUFS) were changes too */
			continue;
		}
		if (n == 0 || errno != EINTR)
			break;			/* EAGAIN: all read */
	}
	if (changed && ++r->route_gen == 0)
		r->route_gen = 1;
	return changed;
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

/* The sweep's cache entry for next hop HOP on IFINDEX, or -1. */
static int l2_cache_find(const struct l2_resolver *r, int ifindex, struct in_addr hop)
{
	for (unsigned i = 0; i < r->cached; i++)
		if (r->cache[i].ifindex == ifindex && r->cache[i].next_hop.s_addr == hop.s_addr)
			return (int)i;
	return -1;
}

uint64_t l2_hop_word(struct l2_resolver *r, int ifindex, struct in_addr next_hop,
		     struct in_addr dst)
{
	uint8_t mac[L2_MAC_LEN];
	int iface = l2_iface_index(r, ifindex);
	int known;
	bool usable;

	if (iface < 0)
		return 0;
	known = l2_cache_find(r, ifindex, next_hop);
	if (known >= 0)
		return r->cache[known].usable ?
			l2_word_encode(r->cache[known].mac, (unsigned)iface, dst) : 0;
	if (l2_neighbour(r, ifindex, next_hop, mac, &usable) < 0)
		return 0;			/* an error is not an answer: asked again */
	if (r->cached < L2_CACHE_SIZE) {
		r->cache[r->cached].ifindex = ifindex;
		r->cache[r->cached].next_hop = next_hop;
		r->cache[r->cached].usable = usable;
		memcpy(r->cache[r->cached++].mac, mac, L2_MAC_LEN);
	}
	return usable ? l2_word_encode(mac, (unsigned)iface, dst) : 0;
}

uint64_t l2_resolve(struct l2_resolver *r, struct in_addr dst)
{
	struct in_addr hop;
	int ifindex;

	if (l2_route(r, dst, &ifindex, &hop) < 0)
		return 0;
	return l2_hop_word(r, ifindex, hop, dst);
}

/* --- gatewayd: one word per shared-memory slot --- */

int l2_gw_open(struct gw *gw)
{
	uint32_t capacity = gw->shm.hdr->site_capacity;
	int r;

	gw->l2_words = calloc(capacity, sizeof(*gw->l2_words));
	gw->l2_slots = calloc(capacity, sizeof(*gw->l2_slots));
	gw->l2 = calloc(1, sizeof(*gw->l2));
	if (!gw->l2_words || !gw->l2_slots || !gw->l2) {
		l2_gw_close(gw);
		return -ENOMEM;
	}
	r = l2_open(gw->l2);
	if (r < 0) {
		l2_gw_close(gw);
		return r;
	}
	for (uint32_t s = 0; s < capacity; s++)
		if (gw->by_slot[s])
			gw->l2_slots[s].dst = gw->by_slot[s]->conf.source_ip;
	return 0;
}

void l2_gw_close(struct gw *gw)
{
	if (gw->l2)
		l2_close(gw->l2);
	free(gw->l2);
	free(gw->l2_words);
	free(gw->l2_slots);
	gw->l2 = NULL;
	gw->l2_words = NULL;
	gw->l2_slots = NULL;
}

static void l2_publish(struct gw *gw, uint32_t slot, uint64_t word)
{
	/* Only a change is stored: the workers' cache line stays theirs. */
	if (gw->l2_words[slot] != word)
		__atomic_store_n(&gw->l2_words[slot], word, __ATOMIC_RELEASE);
}

void l2_slot_set(struct gw *gw, uint32_t slot, struct in_addr dst)
{
	struct l2_slot *ls;

	if (!gw->l2)
		return;
	ls = &gw->l2_slots[slot];
	if (ls->dst.s_addr == dst.s_addr)
		return;				/* the same tunnel source: the same route */
	*ls = (struct l2_slot){ .dst = dst };
	l2_publish(gw, slot, 0);
}

void l2_slot_clear(struct gw *gw, uint32_t slot)
{
	if (!gw->l2)
		return;
	gw->l2_slots[slot] = (struct l2_slot){ 0 };
	l2_publish(gw, slot, 0);
}

/*
 * LS's word now, its route asked first when it has none of this
 * generation. No route, or one through an interface frames cannot take,
 * is an answer kept until routes change; a failed request is asked again.
 */
static uint64_t l2_slot_word(struct l2_resolver *r, struct l2_slot *ls)
{
	if (ls->route_gen != r->route_gen) {
		int ret = l2_route(r, ls->dst, &ls->ifindex, &ls->next_hop);

		if (ret < 0 && ret != -ENETUNREACH)
			return 0;
		if (ret < 0 || l2_iface_index(r, ls->ifindex) < 0)
			ls->ifindex = 0;
		ls->route_gen = r->route_gen;
	}
	return ls->ifindex ? l2_hop_word(r, ls->ifindex, ls->next_hop, ls->dst) : 0;
}

unsigned l2_refresh(struct gw *gw, unsigned budget)
{
	uint32_t capacity = gw->shm.hdr->site_capacity;
	struct l2_resolver *r = gw->l2;
	uint32_t first;

	if (!r || capacity == 0)
		return 0;
	l2_routes_changed(r);
	l2_pass_begin(r);
	first = r->seq;
	for (uint32_t n = 0; n < capacity && r->seq - first < budget; n++) {
		uint32_t s = gw->l2_cursor;

		gw->l2_cursor = s + 1 < capacity ? s + 1 : 0;
		if (gw->l2_slots[s].dst.s_addr)
			l2_publish(gw, s, l2_slot_word(r, &gw->l2_slots[s]));
	}
	return r->seq - first;
}
