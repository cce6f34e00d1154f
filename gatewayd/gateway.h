/*
 * gatewayd's shared context: the site and endpoint tables the workers read
 * and the control thread writes, and the workers themselves.
 *
 * Threads:
 *   - the control thread (main): configuration, sites, control socket,
 *     nftables, routes, events, logging, aging, systemd notifications. It is
 *     the only writer of the RCU tables and of the site identities in shared
 *     memory.
 *   - N workers: each reads GRE from its own raw socket (a BPF filter gives
 *     worker i the tunnels whose source IP hashes to i, so one tunnel's
 *     packets stay in order on one core) and from its own queue of every
 *     tenant's TUN, and counts into lane i of shared memory. Workers never
 *     log, allocate or lock; they read the tables inside RCU read-side
 *     sections and only add endpoints (from their own preallocated pool).
 */
#ifndef GATEWAYD_GATEWAY_H
#define GATEWAYD_GATEWAY_H

#include <linux/if_packet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <urcu.h>
#include <urcu/lfstack.h>
#include <urcu/rculfhash.h>
#include <xdp/xsk.h>

#include "gatewayd/gro.h"
#include "gatewayd/gso.h"
#include "gatewayd/l2.h"
#include "gatewayd/packet.h"
#include "gatewayd/rcu_tsan.h"
#include "lib/conf.h"
#include "lib/events.h"
#include "shm/shm.h"

#define GW_BATCH		64	/* packets per receive or send call */
#define GW_BUF_SIZE		9216	/* one packet: the largest tunnel MTU + headers */
#define GW_ENDPOINTS_PER_WORKER	(1u << 17)
#define GW_ENDPOINT_CACHE_SETS	(GW_ENDPOINTS_PER_WORKER / 2)	/* 4 MiB */
/*
 * io = xdp: each worker's frames (one page each: the largest frame an
 * AF_XDP socket takes without multi-buffer) and its receive ring.
 */
#define GW_XSK_FRAME_SIZE	4096u
#define GW_XSK_FRAMES		4096u
#define GW_XSK_RX_SIZE		2048u
#define GW_XSK_WAIT_NS		200000	/* after a poll that found less than a batch */
#define GW_TX_HDR_MAX		(32 + GSO_HDR_MAX)	/* GRE, then a segment's headers */
/* One read from a TUN queue: its virtio_net_hdr and the largest IP packet. */
#define GW_TUN_READ_MAX		(sizeof(struct virtio_net_hdr) + 65535 + 40)
/* Where TUN reads land: room for a batch of small ones or a few large ones. */
#define GW_TUN_ARENA		(GW_BATCH * 2048 + 2 * GW_TUN_READ_MAX)

/*
 * One site as the workers see it. Immutable once published, but the buckets.
 * The first cache line holds all that the lookup and most packets read (the
 * hash node, copies of the conf fields a lookup compares, where to count):
 * with 100,000 sites a packet's site is rarely cached, and each further
 * line is one more miss.
 */
struct gw_site {
	struct cds_lfht_node by_source;	/* in gw.sites, hashed by source IP */
	struct in_addr source_ip;	/* = conf.source_ip */
	uint32_t key;			/* = conf.key */
	bool has_key;			/* = conf.has_key */
	bool enabled;			/* = conf.enabled */
	uint8_t services;		/* = conf.services */
	uint8_t tenant;			/* index into conf.tenants */
	uint32_t slot;			/* shared-memory slot */
	struct shm_site *shm;
	uint64_t generation;		/* of the slot when this site took it */
	uint64_t rate_bps;		/* resolved: the site's or the POP's default */
	unsigned mtu;			/* inner MTU: tunnel_mtu less the key's 4 bytes */
	struct rcu_head rcu;
	struct site_conf conf;
	/* Per worker: each worker is its lane's only writer. */
	struct {
		struct token_bucket bucket;
		struct gw_endpoint *learned;	/* what endpoint_learn last found: a hint */
	} __attribute__((aligned(SHM_CACHELINE))) lane[SHM_MAX_LANES];
};

/*
 * Where an inner address lives: learned from decapsulated traffic. What a
 * lookup compares and a worker refreshes shares the node's cache line; the
 * pool aligns each endpoint to one.
 */
struct gw_endpoint {
	struct cds_lfht_node node;	/* in gw.endpoints */
	uint8_t tenant;
	uint8_t family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	/*
	 * Written by any worker with relaxed stores, read by all. The site
	 * is one word, slot and generation (sitetab.c: site_ref), so a
	 * reader never pairs one site's slot with another's generation.
	 */
	uint64_t site_ref;
	uint64_t last_seen_ns;
	/* Cold: only when the endpoint is freed and its node given back. */
	struct rcu_head rcu __attribute__((aligned(SHM_CACHELINE)));
	struct cds_lfs_node free_node;	/* on its worker's returned stack */
	struct __cds_lfs_stack *owner;	/* the returned stack of its worker */
	struct gw_endpoint *free_next;	/* on its worker's private free list */
};

struct gw;
struct bpf_link;
struct bpf_object;

/*
 * One set of a worker's site cache (sitetab.c): four tunnels and the site
 * each found last, in one cache line.
 */
#define GW_SITE_CACHE_WAYS	4

struct gw_site_cache_set {
	struct {
		uint32_t source;	/* tunnel source IP, network order; 0: empty */
		uint32_t key;		/* its GRE key, 0 without one */
		uint64_t ref;		/* the site (sitetab.c: site_ref) */
	} way[GW_SITE_CACHE_WAYS];
} __attribute__((aligned(SHM_CACHELINE)));

/*
 * One set of a worker's endpoint cache (sitetab.c): four inner addresses,
 * each by a tag from its hash, and the endpoint it found last. 48 bytes in
 * one cache line.
 */
#define GW_ENDPOINT_CACHE_WAYS	4

struct gw_endpoint_cache_set {
	uint32_t tag[GW_ENDPOINT_CACHE_WAYS];	/* 0: empty */
	struct gw_endpoint *ep[GW_ENDPOINT_CACHE_WAYS];
} __attribute__((aligned(SHM_CACHELINE)));

/*
 * A GRE packet between the passes of a batch: parsed and its site
 * looked up in the first, handled in the second.
 */
struct gw_rx {
	uint8_t *pkt;
	size_t len;
	uint8_t gso_type;		/* merged by the kernel: VIRTIO_NET_HDR_GSO_*, else 0 */
	uint16_t gso_size;		/* then the payload bytes of each segment */
	uint16_t gso_hdr;		/* and their header bytes (0 if not merged) */
	uint16_t segs;			/* packets on the wire it stands for */
	int reason;			/* gre_parse's drop reason, or 0 */
	struct gre_packet g;
	struct gw_site *site;		/* the tunnel's site, or NULL */
	struct gw_site *other;		/* no site: the source's, if only the key differs */
	struct gw_site_cache_set *set;	/* its set in the site cache, or NULL */
	bool cached;			/* the set held it: */
	uint64_t ref;			/* the site it found last */
	struct gw_endpoint_cache_set *ep_set;	/* the inner source's, or NULL */
	uint32_t ep_tag;		/* and its tag there */
};

enum gw_tx_kind {
	GW_TX_DATA,			/* a reply from TUN, encapsulated */
	GW_TX_KEEPALIVE,		/* a keepalive's inner packet, reflected */
	GW_TX_PROBE,			/* an echo reply to a probe */
	GW_TX_ERROR,			/* an ICMP error we built */
};

struct gw_worker {
	struct gw *gw;
	unsigned index;			/* also the shared-memory lane */
	pthread_t thread;
	int gre_fd;			/* raw IPPROTO_GRE, or the packet ring's socket */
	struct gw_ring {		/* io = ring: a TPACKET_V3 receive ring */
		uint8_t *map;		/* NULL in io = socket */
		size_t block_size;
		unsigned block_nr;
		unsigned next;		/* the block to look at next */
		bool vnet;		/* a virtio_net_hdr before each packet */
	} ring;
	struct gw_xsk {			/* io = xdp: the AF_XDP socket of queue index */
		struct xsk_socket *sock;	/* NULL otherwise, or no such queue */
		struct xsk_umem *umem;
		struct xsk_ring_cons rx;
		struct xsk_ring_prod fill;
		struct xsk_ring_cons comp;	/* unused: nothing is sent through it */
		uint8_t *area;			/* the frames, GW_XSK_FRAMES of them */
		uint64_t held[GW_BATCH];	/* the frames of the batch in hand */
		uint64_t drops_seen;		/* XDP_STATISTICS' running count */
	} xsk;
	int tx_fd;			/* raw IPPROTO_RAW for what we send */
	int pk_fd;			/* io = ring: AF_PACKET for whole frames, or -1 */
	int tun_fd[CONF_MAX_TENANTS];
	int epoll_fd;

	/* The endpoint pool: a private free list plus nodes given back. */
	struct gw_endpoint *pool;
	struct gw_endpoint *free_list;	/* linked through node.next, private */
	struct __cds_lfs_stack returned;

	/* The site cache (sitetab.c), private: site_cache_mask + 1 sets. */
	struct gw_site_cache_set *site_cache;
	uint32_t site_cache_mask;
	/* The endpoint cache (sitetab.c), private: GW_ENDPOINT_CACHE_SETS. */
	struct gw_endpoint_cache_set *endpoint_cache;
	uint64_t endpoint_cache_hits;	/* found there, not by the table's lookup */

	/* Receive and send batches, preallocated. */
	struct mmsghdr rx_msg[GW_BATCH];
	struct iovec rx_iov[GW_BATCH];
	uint8_t (*rx_buf)[GW_BUF_SIZE];
	/*
	 * Slot i of the batch: its Ethernet header, headers and payload
	 * (tx_iov[i]; the raw socket sends from tx_iov[i] + 1) and what it
	 * counts. The slots go to one of two lists of messages: through the
	 * packet socket when the site's next-hop MAC is known, else raw.
	 */
	struct mmsghdr tx_msg[GW_BATCH];	/* raw */
	uint8_t tx_raw_slot[GW_BATCH];
	unsigned tx_raw_n;
	struct mmsghdr pk_msg[GW_BATCH];	/* packet socket */
	uint8_t tx_pk_slot[GW_BATCH];
	unsigned tx_pk_n;
	uint8_t tx_eth[GW_BATCH][16];		/* 14 used */
	struct sockaddr_ll tx_ll[GW_BATCH];	/* the interface a frame leaves by */
	struct iovec tx_iov[GW_BATCH][3];
	struct sockaddr_in tx_addr[GW_BATCH];
	uint8_t tx_hdr[GW_BATCH][GW_TX_HDR_MAX];
	uint8_t (*tx_buf)[GW_BUF_SIZE];	/* errors we build (ICMP) */
	struct gw_tx {
		struct shm_site_lane *lane;	/* counted there once sent */
		uint8_t kind;			/* enum gw_tx_kind */
		uint32_t bytes;
	} tx_meta[GW_BATCH];
	unsigned tx_count;
	struct gw_rx rx_pending[GW_BATCH];	/* GRE between the passes of a batch */

	/*
	 * TUN reads, one after another in one area: what the tx batch sends
	 * may point into it, so it is reused from the start only once the
	 * batch is empty.
	 */
	uint8_t *tun_arena;		/* GW_TUN_ARENA bytes */
	size_t tun_used;

	/* Per batch: the time and what the POP may do now. */
	uint64_t now_ns;
	uint8_t serving_mask;		/* SHM_SVC_BIT of healthy services */
	uint8_t accept_mode;
	uint16_t ip_id;
	uint16_t more_segs;		/* merged: segments after the first of the one handled */
	/* What the kernel dropped before we read it: when last asked, and its total then. */
	uint64_t queue_drops_read_ns;
	uint32_t socket_drops_seen;	/* io = socket: SO_MEMINFO's running count */

	/*
	 * gateway.offload at setup (reload keeps it): coalesce what goes to
	 * the TUNs (gro.h), cut large reads from them (gso.h).
	 */
	bool offload;
	struct gro_table *gro;		/* NULL when offload is off */
};

/*
 * What the control thread last saw of a slot's site, for logs and events.
 * Kept by slot, beside the slots, so that its once-a-second walk over
 * every site reads memory in order and never the sites themselves.
 */
struct gw_slot_watch {
	uint64_t auth_failures_seen;
	uint64_t auth_failure_logged_ns;
};

struct gw {
	struct conf conf;		/* the running configuration */
	struct sites sites;		/* the running sites, as in the sites file */
	struct shm shm;
	unsigned n_workers;
	struct gw_worker *workers;
	atomic_bool stopping;

	struct cds_lfht *sites_by_source;
	struct gw_site **by_slot;	/* RCU pointers, site_capacity of them */
	struct gw_slot_watch *watch;	/* control thread only, site_capacity of them */
	struct cds_lfht *endpoints;
	uint64_t health_stale_ns;	/* healthd heartbeat older than this: unknown;
					 * reload stores it, workers load it (relaxed) */
	struct events *events;		/* to statsd; control thread only */
	struct gw_local_addrs *local;	/* RCU: this host's own addresses */
	/*
	 * io = ring: the next-hop word of each slot (l2.h), stored by the
	 * control thread with release, loaded by workers with acquire, and the
	 * resolver whose interface table the words name; NULL otherwise.
	 */
	uint64_t *l2_words;
	struct l2_resolver *l2;		/* control thread, but for its interfaces */
	struct l2_slot *l2_slots;	/* control thread: each slot's route */
	uint32_t l2_cursor;		/* the slot the next refresh starts at */
	/* io = xdp (xdp.c): the program on pop.wan_interface, its socket map. */
	struct bpf_object *xdp_obj;
	struct bpf_link *xdp_link;
	int xsks_fd;			/* -1 unless io = xdp */
	unsigned wan_queues;		/* the interface's receive queues */
};

/* sitetab.c: the RCU tables. */

/*
 * Find the site for a tunnel from SOURCE carrying KEY (when HAS_KEY).
 * Returns NULL and, when the source IP is known but no site's key matches,
 * *KEY_MISMATCH = that IP's first site (for counting). Caller holds the RCU
 * read lock; the result is valid until it drops it.
 */
struct gw_site *sitetab_lookup(struct gw *gw, struct in_addr source, bool has_key, uint32_t key,
			       struct gw_site **key_mismatch);

/*
 * Make the tables and shared memory match SITES (control thread only):
 * new sites get a slot (the one they had before, by name, if the segment
 * has it), changed sites are replaced, removed ones are unpublished and,
 * after a grace period, their slot is cleared. Calls CHANGED for each site
 * added, changed or removed (the old one, or NULL when added; the new one,
 * or NULL when removed). Returns 0 or -ENOSPC when the segment is full, in
 * which case nothing changed.
 */
int sitetab_apply(struct gw *gw, const struct sites *sites,
		  void (*changed)(struct gw *gw, const struct site_conf *before,
				  const struct site_conf *after));

int sitetab_init(struct gw *gw);
void sitetab_destroy(struct gw *gw);

/*
 * Note that inner address ADDR of FAMILY in TENANT lives behind SITE (a
 * worker, RCU read lock held). Allocation-free: takes a node from the
 * worker's pool; when the pool is empty the address is not learned. Writes
 * only SITE's lane of worker W (its hint).
 */
void endpoint_learn(struct gw_worker *w, uint8_t tenant, int family, const void *addr,
		    struct gw_site *site);

/*
 * Request the endpoint SITE's lane of W last learned, which endpoint_learn
 * checks first (the lane's line should be on its way already).
 */
void endpoint_hint_prefetch(const struct gw_worker *w, const struct gw_site *site);

/*
 * The endpoint cache: a worker's memory of the endpoint each inner source
 * address found, for a site whose hosts take turns (its hint then holds
 * only the last). endpoint_learn checks the hint, then the cache, then
 * the table, and remembers what it found in both; endpoint_find, for the
 * return path, the cache and then the table. A hit is checked like
 * the hint (in the table, and still that address's), so an endpoint aged
 * out or given to another address is never taken for this one.
 *
 * For a batch, after the site lookup: endpoint_cache_set requests RX's set,
 * from the inner source address the GRE header announces (a glance: the
 * packet is parsed properly later); endpoint_cache_probe requests the
 * endpoint in the way whose tag matches. RCU read lock held.
 */
int endpoint_cache_init(struct gw_worker *w);
void endpoint_cache_free(struct gw_worker *w);
void endpoint_cache_set(struct gw_worker *w, struct gw_rx *rx);
void endpoint_cache_probe(const struct gw_rx *rx);

/* The site behind ADDR, or NULL. RCU read lock held. */
struct gw_site *endpoint_lookup(struct gw *gw, uint8_t tenant, int family, const void *addr);

/* The same for worker W, which asks its endpoint cache first (see above). */
struct gw_site *endpoint_find(struct gw_worker *w, uint8_t tenant, int family, const void *addr);

/* Remove endpoints idle longer than IDLE_NS or whose site is gone (control thread). */
unsigned endpoint_age(struct gw *gw, uint64_t now_ns, uint64_t idle_ns);

int endpoint_pool_init(struct gw_worker *w);
void endpoint_pool_free(struct gw_worker *w);

/*
 * The site cache: a worker's memory of which site each tunnel found, so
 * that a batch's lookups can be fetched ahead, stage by stage, instead of
 * each walking the RCU table's bucket and nodes in turn (worker.c,
 * handle_rx_batch). Only the owning worker reads or writes it; a hit
 * is checked against the slot table and the site's own source IP and key,
 * so a site that changed, moved or went away is never returned for a
 * tunnel that is no longer its own: the table answers then.
 *
 * The stages, each over a whole batch before the next, all with the RCU
 * read lock held. site_cache_set: RX's set, from its parsed source IP and
 * key, requested into the cache. site_cache_probe: whether the set holds
 * the tunnel (rx->cached, rx->ref), and that slot's entry requested.
 * site_cache_fetch: the site in that slot as rx->site, requested.
 * site_cache_site: rx->site if it still is the tunnel's own, else NULL;
 * then sitetab_lookup answers and site_cache_put remembers its answer.
 */
int site_cache_init(struct gw_worker *w);
void site_cache_free(struct gw_worker *w);
void site_cache_set(struct gw_worker *w, struct gw_rx *rx);
void site_cache_probe(struct gw_worker *w, struct gw_rx *rx);
void site_cache_fetch(struct gw_worker *w, struct gw_rx *rx);
struct gw_site *site_cache_site(const struct gw_rx *rx);
void site_cache_put(struct gw_worker *w, const struct gw_rx *rx, const struct gw_site *site);

/* localaddr.c: this host's own addresses. */

/* Read them again and publish them if they changed (control thread). */
int local_addrs_refresh(struct gw *gw);

/* Whether ADDR of FAMILY is one of them. RCU read lock held. */
bool local_addrs_has(struct gw *gw, int family, const void *addr);

/* At exit, after the workers stopped and a grace period. */
void local_addrs_free(struct gw *gw);

/* worker.c */
int worker_setup(struct gw *gw, struct gw_worker *w, unsigned index);
int worker_start(struct gw_worker *w);
void worker_stop_all(struct gw *gw);
void worker_teardown(struct gw_worker *w);

/* Exposed for unit tests: handle one GRE packet read by worker W. */
void worker_handle_gre(struct gw_worker *w, uint8_t *pkt, size_t len);
/*
 * Handle N (at most GW_BATCH) GRE packets PKT[i] of LEN[i] bytes as one
 * batch, in order: the same decisions and counters as worker_handle_gre
 * for each. Inside an RCU read-side section, after worker_begin_batch.
 */
void worker_handle_gre_batch(struct gw_worker *w, uint8_t *const *pkt, const size_t *len,
			     unsigned n);
/*
 * A GRE packet the kernel's GRO merged from segments of one inner TCP (or
 * UDP) flow, as a packet ring with PACKET_VNET_HDR reports it: GSO_SIZE
 * payload bytes per segment, GSO_TYPE its VIRTIO_NET_HDR_GSO_* type. It is
 * counted as the segments it stands for and goes to the TUN as one GSO
 * write. The same context as worker_handle_gre_batch.
 */
void worker_handle_gre_merged(struct gw_worker *w, uint8_t *pkt, size_t len, uint16_t gso_size,
			      uint8_t gso_type);
/* And one plain IP packet read from TENANT's TUN. */
void worker_handle_tun(struct gw_worker *w, uint8_t tenant, uint8_t *pkt, size_t len);
/*
 * One read of LEN bytes from TENANT's TUN queue, its virtio_net_hdr first:
 * with offloads, a large packet is cut into segments queued one by one
 * (the batch is sent whenever it fills). The tx batch may point into BUF
 * until the next worker_flush_tx. Inside worker_begin_batch and an RCU
 * read-side section, as worker_handle_tun.
 */
void worker_handle_tun_read(struct gw_worker *w, uint8_t tenant, uint8_t *buf, size_t len);
/* Refresh W's per-batch view of the time, health and acceptance. */
void worker_begin_batch(struct gw_worker *w);
/*
 * Send what the batch queued: first what is held for the TUNs (gro_flush),
 * then the GRE packets to the routers. Inside the batch's RCU read section.
 */
void worker_flush_tx(struct gw_worker *w);

#endif
