/*
 * Next-hop Ethernet addresses for io = ring, where gatewayd sends GRE
 * through a packet socket on the WAN interface and so writes the Ethernet
 * header itself.
 *
 * The control thread resolves, for each site's source IP, the kernel's
 * route (gateway, or directly connected) and then the neighbour entry of
 * that next hop, and publishes the result per shared-memory slot as one
 * 64-bit word: the MAC in the low 48 bits and L2_VALID. Workers read the
 * word with one relaxed load and never wait; a word without L2_VALID sends
 * the packet through the raw socket instead, which also makes the kernel
 * resolve the neighbour, so the next refresh finds it.
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
#define L2_TAG_SHIFT		48	/* bits 48-62: a tag of the IP it was resolved for */
#define L2_TAG_MASK		0x7fffULL
#define L2_REFRESH_PER_TICK	4096	/* sites resolved per periodic call */
#define L2_CACHE_SIZE		16	/* next hops remembered within a pass */

/* 15 bits of DST, so a word left in a slot by a previous site is not used. */
static inline uint64_t l2_tag(struct in_addr dst)
{
	return ((uint64_t)(ntohl(dst.s_addr) * 0x9e3779b1u) >> 17) & L2_TAG_MASK;
}

/*
 * The word for MAC, resolved for DST: valid, DST's tag, MAC in the low 48
 * bits, most significant byte first.
 */
static inline uint64_t l2_word_encode(const uint8_t mac[L2_MAC_LEN], struct in_addr dst)
{
	uint64_t word = 0;

	for (int i = 0; i < L2_MAC_LEN; i++)
		word = word << 8 | mac[i];
	return word | l2_tag(dst) << L2_TAG_SHIFT | L2_VALID;
}

/*
 * The MAC in WORD into MAC when WORD is valid and was resolved for DST;
 * otherwise false and MAC untouched. Safe on the per-packet path.
 */
static inline bool l2_word_decode(uint64_t word, struct in_addr dst, uint8_t mac[L2_MAC_LEN])
{
	if (!(word & L2_VALID) || (word >> L2_TAG_SHIFT & L2_TAG_MASK) != l2_tag(dst))
		return false;
	for (int i = L2_MAC_LEN - 1; i >= 0; i--, word >>= 8)
		mac[i] = (uint8_t)word;
	return true;
}

/*
 * The Ethernet header of a frame from SRC to the MAC in WORD, for IPv4,
 * into ETH (ETH_HLEN bytes) when WORD is valid for DST; else false.
 * Safe on the per-packet path.
 */
static inline bool l2_frame_header(uint64_t word, struct in_addr dst,
				   const uint8_t src[L2_MAC_LEN], uint8_t eth[ETH_HLEN])
{
	if (!l2_word_decode(word, dst, eth))
		return false;
	memcpy(eth + L2_MAC_LEN, src, L2_MAC_LEN);
	eth[12] = ETH_P_IP >> 8;
	eth[13] = ETH_P_IP & 0xff;
	return true;
}

struct mnl_socket;

/* A resolver for one interface: its netlink socket and what it knows. */
struct l2_resolver {
	struct mnl_socket *nl;
	unsigned ifindex;		/* the WAN interface */
	uint8_t mac[L2_MAC_LEN];	/* its own address */
	uint32_t seq;
	struct {
		struct in_addr next_hop;
		uint8_t mac[L2_MAC_LEN];
	} cache[L2_CACHE_SIZE];		/* usable ones, within one pass */
	unsigned cached;
};

/*
 * Open a resolver for interface IFNAME: a netlink socket and the
 * interface's index and MAC. 0 or -errno (-ENODEV: no such interface).
 * No capability is needed.
 */
int l2_open(struct l2_resolver *r, const char *ifname);
void l2_close(struct l2_resolver *r);

/*
 * The next hop toward DST in *NEXT_HOP: the route's gateway, or DST itself
 * when directly connected. -ENETUNREACH when the route leaves through
 * another interface than the resolver's (or is not unicast); else 0 or -errno.
 */
int l2_route(struct l2_resolver *r, struct in_addr dst, struct in_addr *next_hop);

/*
 * The MAC of neighbour NEXT_HOP on the interface into MAC, and *USABLE
 * whether its state allows sending to it (reachable, stale, delay, probe,
 * permanent). No entry: 0 with *USABLE false. Otherwise 0 or -errno.
 */
int l2_neighbour(struct l2_resolver *r, struct in_addr next_hop, uint8_t mac[L2_MAC_LEN],
		 bool *usable);

/*
 * The word for DST (l2_word_encode): route, then neighbour, the latter
 * taken from the pass's cache when an earlier lookup found the same next
 * hop usable.
 * 0 when unresolved, for any reason. l2_pass_begin empties the cache.
 */
uint64_t l2_resolve(struct l2_resolver *r, struct in_addr dst);
void l2_pass_begin(struct l2_resolver *r);

/*
 * gatewayd's side, control thread only. l2_gw_open (io = ring, before the
 * workers start): gw->l2_words for every slot and a resolver on
 * pop.wan_interface; 0 or -errno. l2_gw_close at exit, after the workers.
 */
struct gw;
int l2_gw_open(struct gw *gw);
void l2_gw_close(struct gw *gw);

/*
 * Resolve the sites whose slot has no word for their source IP yet (new or
 * changed sites, next hops still unknown), at most BUDGET of them. Returns
 * how many were looked up. A no-op without l2_gw_open.
 */
unsigned l2_refresh_unresolved(struct gw *gw, unsigned budget);

/*
 * The periodic refresh: the next BUDGET slots of a rolling pass over all
 * sites, so MACs that changed or went stale are seen again. A no-op
 * without l2_gw_open.
 */
void l2_refresh_tick(struct gw *gw, unsigned budget);

#endif
