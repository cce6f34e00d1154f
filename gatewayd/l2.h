/*
 * Next-hop Ethernet addresses for io = ring, where gatewayd sends GRE
 * through a packet socket and so writes the Ethernet header itself.
 *
 * The control thread resolves, for each site's source IP, the kernel's
 * route (interface, and gateway or directly connected) and then the
 * neighbour entry of that next hop, and publishes the result per
 * shared-memory slot as one 64-bit word:
 *
 *   bit 63      valid
 *   bits 59-62  the interface: an index into the resolver's interface table
 *   bits 48-58  a tag of the IP it was resolved for, so a word left in a
 *               slot by the slot's previous site is not used for the next
 *   bits 0-47   the next hop's MAC, most significant byte first
 *
 * Workers read the word with one acquire load and never wait; a word that
 * is not valid for the packet's destination sends it through the raw
 * socket instead, which also makes the kernel resolve the neighbour, so
 * the next refresh finds it. Interface table entries are written once,
 * before the first word that names them is stored with release order.
 *
 * What it costs with many sites: a slot remembers its route (interface and
 * next hop), asked once when its site arrives and again only after the
 * kernel announced a change of routes, rules, addresses or links (an
 * rtnetlink subscription). Each refresh sweeps the slots and asks only for
 * the neighbour entries of the next hops they name, once per next hop per
 * sweep, usable or not: 100,000 sites behind one router cost one request.
 */
#ifndef GATEWAYD_L2_H
#define GATEWAYD_L2_H

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define L2_VALID		(1ULL << 63)
#define L2_MAC_LEN		6
#define L2_IFACES		16	/* interfaces next hops may be on */
#define L2_IFACE_SHIFT		59
#define L2_TAG_SHIFT		48
#define L2_TAG_MASK		0x7ffULL
#define L2_REFRESH_PER_TICK	4096	/* netlink requests per refresh, at most */
#define L2_CACHE_SIZE		16	/* next hops remembered within a sweep */

/* An interface frames leave through: its index and its own address. */
struct l2_iface {
	int ifindex;
	uint8_t mac[L2_MAC_LEN];
};

/* 11 bits of DST. */
static inline uint64_t l2_tag(struct in_addr dst)
{
	return ((uint64_t)(ntohl(dst.s_addr) * 0x9e3779b1u) >> 21) & L2_TAG_MASK;
}

/* The word for MAC on interface IFACE (< L2_IFACES), resolved for DST. */
static inline uint64_t l2_word_encode(const uint8_t mac[L2_MAC_LEN], unsigned iface,
				      struct in_addr dst)
{
	uint64_t word = 0;

	for (int i = 0; i < L2_MAC_LEN; i++)
		word = word << 8 | mac[i];
	return word | l2_tag(dst) << L2_TAG_SHIFT | (uint64_t)(iface & (L2_IFACES - 1))
		<< L2_IFACE_SHIFT | L2_VALID;
}

/*
 * The MAC and interface in WORD into MAC and *IFACE when WORD is valid and
 * was resolved for DST; otherwise false and nothing written. Safe on the
 * per-packet path.
 */
static inline bool l2_word_decode(uint64_t word, struct in_addr dst, uint8_t mac[L2_MAC_LEN],
				  unsigned *iface)
{
	if (!(word & L2_VALID) || (word >> L2_TAG_SHIFT & L2_TAG_MASK) != l2_tag(dst))
		return false;
	*iface = (unsigned)(word >> L2_IFACE_SHIFT) & (L2_IFACES - 1);
	for (int i = L2_MAC_LEN - 1; i >= 0; i--, word >>= 8)
		mac[i] = (uint8_t)word;
	return true;
}

/*
 * The Ethernet header of an IPv4 frame to the next hop in WORD, from its
 * interface in IFACES, into ETH (ETH_HLEN bytes), and that interface's
 * index into *IFINDEX, when WORD is valid for DST; else false. Safe on the
 * per-packet path.
 */
static inline bool l2_frame_header(uint64_t word, struct in_addr dst,
				   const struct l2_iface *ifaces, uint8_t eth[ETH_HLEN],
				   int *ifindex)
{
	unsigned iface;

	if (!l2_word_decode(word, dst, eth, &iface))
		return false;
	memcpy(eth + L2_MAC_LEN, ifaces[iface].mac, L2_MAC_LEN);
	eth[12] = ETH_P_IP >> 8;
	eth[13] = ETH_P_IP & 0xff;
	*ifindex = ifaces[iface].ifindex;
	return true;
}

struct mnl_socket;

/*
 * A resolver: its request socket (seq counts its requests), its
 * subscription to route changes, the interfaces it met, a sweep's cache.
 */
struct l2_resolver {
	struct mnl_socket *nl;
	uint32_t seq;
	struct mnl_socket *changes;	/* non-blocking; any message means routes moved */
	uint32_t route_gen;		/* bumped per change seen; never 0 */
	struct l2_iface iface[L2_IFACES];	/* read by workers: see the top */
	unsigned n_ifaces;
	struct {
		int ifindex;
		struct in_addr next_hop;
		bool usable;
		uint8_t mac[L2_MAC_LEN];
	} cache[L2_CACHE_SIZE];		/* neighbours asked within one sweep */
	unsigned cached;
};

/* What the control thread knows of one slot's route (gatewayd's side). */
struct l2_slot {
	struct in_addr dst;		/* the site's source IP; 0: the slot is free */
	struct in_addr next_hop;	/* the route's gateway, or dst itself */
	int ifindex;			/* the route's interface; 0: none usable */
	uint32_t route_gen;		/* the resolver's route_gen when asked; 0: never */
};

/*
 * Open a resolver: a request socket and a subscription to IPv4 route,
 * rule, address and link changes (no capability needed). 0 or -errno.
 */
int l2_open(struct l2_resolver *r);
void l2_close(struct l2_resolver *r);

/*
 * The route toward DST: its interface in *IFINDEX and the next hop in
 * *NEXT_HOP (the gateway, or DST itself when directly connected).
 * -ENETUNREACH when the route is not unicast (local, blackhole...); else 0
 * or -errno (-ENETUNREACH too when there is no route).
 */
int l2_route(struct l2_resolver *r, struct in_addr dst, int *ifindex,
	     struct in_addr *next_hop);

/*
 * The MAC of neighbour NEXT_HOP on interface IFINDEX into MAC, and *USABLE
 * whether its state allows sending to it (reachable, stale, delay, probe,
 * permanent). No entry: 0 with *USABLE false. Otherwise 0 or -errno.
 */
int l2_neighbour(struct l2_resolver *r, int ifindex, struct in_addr next_hop,
		 uint8_t mac[L2_MAC_LEN], bool *usable);

/*
 * Interface IFINDEX's place in the table, added with its MAC when new.
 * -EPFNOSUPPORT for an interface without Ethernet addresses, -ENOSPC when
 * the table is full; else the index.
 */
int l2_iface_index(struct l2_resolver *r, int ifindex);

/*
 * The word for DST (l2_word_encode) over the route toward it through
 * interface IFINDEX and NEXT_HOP: the interface, then the neighbour, taken
 * from the sweep's cache when the sweep asked for that next hop already
 * (usable or not). 0 when unresolved, for any reason. l2_pass_begin
 * empties the cache; l2_resolve asks the route first.
 */
uint64_t l2_hop_word(struct l2_resolver *r, int ifindex, struct in_addr next_hop,
		     struct in_addr dst);
uint64_t l2_resolve(struct l2_resolver *r, struct in_addr dst);
void l2_pass_begin(struct l2_resolver *r);

/*
 * Read every change announced since the last call; true when there was
 * one (or the kernel dropped some for a full socket buffer), and then
 * route_gen has moved on, so every slot's route is asked again.
 */
bool l2_routes_changed(struct l2_resolver *r);

/*
 * gatewayd's side, control thread only. l2_gw_open (io = ring, before the
 * workers start): gw->l2_words and gw->l2_slots for every slot, seeded with
 * the sites already in gw->by_slot, and gw->l2; 0 or -errno. l2_gw_close at
 * exit, after the workers stopped.
 */
struct gw;
int l2_gw_open(struct gw *gw);
void l2_gw_close(struct gw *gw);

/*
 * Site table changes (sitetab.c): SLOT now holds a site whose source IP is
 * DST (its route is asked at the next refresh; a new DST clears the word
 * first), or no site. No-ops without l2_gw_open.
 */
void l2_slot_set(struct gw *gw, uint32_t slot, struct in_addr dst);
void l2_slot_clear(struct gw *gw, uint32_t slot);

/*
 * A refresh: take in announced route changes, then sweep the slots from
 * where the last refresh stopped, asking routes the slots lack and the
 * neighbours of their next hops, and store each word that changed. Stops
 * after one whole sweep or BUDGET requests, whichever comes first; returns
 * the requests made. A no-op without l2_gw_open.
 */
unsigned l2_refresh(struct gw *gw, unsigned budget);

#endif
