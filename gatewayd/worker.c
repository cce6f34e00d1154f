/*
 * The data-plane workers: decapsulate GRE from the routers into the tenants'
 * TUN devices, and encapsulate what comes back.
 *
 * A worker owns lane `index` of every counter in shared memory, its own
 * sockets and its own queue of every TUN. Per batch it takes the time and
 * reads the POP's health and acceptance mode once (a health flip reaches the
 * data path within one batch), then handles each packet inside one RCU
 * read-side section. Every packet ends in exactly one counter.
 *
 * Decisions for a packet from a router, in order: the GRE header
 * (bad_header, bad_checksum, unsupported_protocol), the site (unknown_source,
 * bad_key, disabled), the tunnel (a tunnel idle longer than tunnel_idle_s is
 * new and is refused as auth_failure unless the POP accepts new tunnels for
 * the site's services), the inner packet (bad_inner), then what it is:
 * a keepalive (reflected while the site is served, else not_serving), a
 * probe (answered likewise), GRE that is not a keepalive (reflect), or data
 * (loop, policy, too_big, rate, then MSS clamp and delivery).
 *
 * The return path reads TUN queues that may hand over, with gateway.offload,
 * a 64 KiB TCP or UDP packet at a time. Such a packet is cut into segments
 * (gso.c) whose headers go into the tx slot after the GRE header while the
 * iovec of the payload points into the read itself, so nothing is copied;
 * reads therefore stay put in the worker's TUN arena until the tx batch that
 * points into them is sent.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <linux/sock_diag.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "gatewayd/l2.h"
#include "gatewayd/tun.h"
#include "lib/timeutil.h"

#define GW_GRE_BUDGET	8	/* receive batches before looking at the TUNs again */
/*
 * 64 MiB of ring in 128 blocks of 512 KiB. The kernel hands a block over
 * when it is full or GW_RING_TOV_MS old. Their number is how long a worker
 * kept from reading (its core busy with the kernel's receive) loses
 * nothing: slow traffic retires a block a millisecond, so 128 ride out
 * 128 ms where 16 held 16. Their size is how much a worker finds per
 * wake-up once traffic fills them faster: at 3.7 Gbit/s of bulk TCP a
 * worker woke 1,000 times a second with 512 KiB blocks and 3,300 with
 * 128 KiB ones, merged 12.9 segments per TUN write instead of 9.7, and
 * spent a quarter less CPU per segment.
 */
#define GW_RING_BLOCK	(1u << 19)	/* bytes of one ring block */
#define GW_RING_BLOCKS	128
#define GW_RING_FRAME	2048	/* the kernel's unit; packets may span several */
#define GW_RING_TOV_MS	1	/* a partly filled block is handed over after this */
#define GW_EPOLL_GRE	0xffffu

static inline struct shm_pop_lane *pop_lane(struct gw_worker *w)
{
	return &w->gw->shm.hdr->pop.lane[w->index];
}

/* Drops count the wire packets the one being handled stands for. */
static inline void pop_drop(struct gw_worker *w, int reason)
{
	shm_add(&pop_lane(w)->drops[reason], 1u + w->more_segs);
}

static inline struct shm_site_lane *site_lane(struct gw_worker *w, const struct gw_site *site)
{
	return &site->shm->lane[w->index];
}

static inline void site_drop(struct gw_worker *w, const struct gw_site *site, int reason)
{
	shm_add(&site_lane(w, site)->drops[reason], 1u + w->more_segs);
}

/*
 * About once a second, what the kernel dropped since the last look because
 * this worker's receive queue was full: the ring's own count (read and
 * reset by PACKET_STATISTICS), the raw socket's running one (SO_MEMINFO),
 * or the AF_XDP socket's (XDP_STATISTICS: its ring full, or no free frame).
 * One system call a second, never per packet.
 */
static void count_queue_drops(struct gw_worker *w)
{
	socklen_t len;

	if (w->now_ns - w->queue_drops_read_ns < NSEC_PER_SEC || w->gre_fd < 0)
		return;
	w->queue_drops_read_ns = w->now_ns;
	if (w->xsk.sock) {
		struct xdp_statistics st;

		len = sizeof(st);
		if (getsockopt(w->gre_fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
			uint64_t total = st.rx_dropped + st.rx_ring_full;

			shm_add(&pop_lane(w)->rx_queue_drops, total - w->xsk.drops_seen);
			w->xsk.drops_seen = total;
		}
	} else if (w->ring.map) {
		struct tpacket_stats_v3 st;

		len = sizeof(st);
		if (getsockopt(w->gre_fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			shm_add(&pop_lane(w)->rx_queue_drops, st.tp_drops);
	} else {
		uint32_t mem[SK_MEMINFO_VARS];

		len = sizeof(mem);
		if (getsockopt(w->gre_fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
		    len > SK_MEMINFO_DROPS * sizeof(mem[0])) {
			shm_add(&pop_lane(w)->rx_queue_drops,
				(uint32_t)(mem[SK_MEMINFO_DROPS] - w->socket_drops_seen));
			w->socket_drops_seen = mem[SK_MEMINFO_DROPS];
		}
	}
}

void worker_begin_batch(struct gw_worker *w)
{
	struct shm_pop *pop = &w->gw->shm.hdr->pop;
	uint64_t heartbeat = shm_load(&pop->healthd_heartbeat_ns);
	uint64_t stale_ns = __atomic_load_n(&w->gw->health_stale_ns, __ATOMIC_RELAXED);
	uint8_t mask = 0;

	w->now_ns = now_realtime_ns();
	/* No heartbeat from healthd for a while: health unknown, fail closed. */
	if (heartbeat && (int64_t)(w->now_ns - heartbeat) < (int64_t)stale_ns) {
		for (int s = 0; s < SHM_SVC_COUNT; s++)
			if (__atomic_load_n(&pop->service[s].health, __ATOMIC_RELAXED) ==
			    SHM_HEALTH_UP)
				mask |= SHM_SVC_BIT(s);
	}
	w->serving_mask = mask;
	w->accept_mode = (uint8_t)__atomic_load_n(&pop->accept_mode, __ATOMIC_RELAXED);
	shm_set(&pop_lane(w)->heartbeat_ns, w->now_ns);
	count_queue_drops(w);
}

static inline bool site_served(const struct gw_worker *w, const struct gw_site *site)
{
	return (site->services & ~w->serving_mask) == 0;
}

/*
 * io = ring: write slot I's Ethernet header and interface when SITE's next
 * hop is known for DST, so the slot goes out through the packet socket.
 */
static inline bool tx_frame(struct gw_worker *w, const struct gw_site *site, struct in_addr dst,
			    unsigned i)
{
	uint64_t word;
	int ifindex;

	if (w->pk_fd < 0 || !w->gw->l2_words)
		return false;
	word = __atomic_load_n(&w->gw->l2_words[site->slot], __ATOMIC_ACQUIRE);
	if (!l2_frame_header(word, dst, w->gw->l2->iface, w->tx_eth[i], &ifindex))
		return false;
	w->tx_ll[i] = (struct sockaddr_ll){ .sll_family = AF_PACKET, .sll_ifindex = ifindex,
					    .sll_protocol = htons(ETH_P_IP),
					    .sll_halen = ETH_ALEN };
	return true;
}

/*
 * Queue PAYLOAD (with HDR_LEN bytes of w->tx_hdr[slot] before it) for DST
 * behind SITE; BYTES of it are the inner packet, as counted once sent.
 */
static void tx_push(struct gw_worker *w, const struct gw_site *site, struct in_addr dst,
		    size_t hdr_len, const void *payload, size_t len, size_t bytes,
		    enum gw_tx_kind kind)
{
	unsigned i = w->tx_count;
	struct msghdr *mh;

	w->tx_iov[i][0] = (struct iovec){ w->tx_eth[i], ETH_HLEN };
	w->tx_iov[i][1] = (struct iovec){ w->tx_hdr[i], hdr_len };
	w->tx_iov[i][2] = (struct iovec){ (void *)payload, len };
	if (tx_frame(w, site, dst, i)) {
		w->tx_pk_slot[w->tx_pk_n] = (uint8_t)i;
		mh = &w->pk_msg[w->tx_pk_n++].msg_hdr;
		*mh = (struct msghdr){ .msg_name = &w->tx_ll[i],
				       .msg_namelen = sizeof(w->tx_ll[i]),
				       .msg_iov = w->tx_iov[i], .msg_iovlen = 3 };
	} else {
		w->tx_addr[i] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr = dst };
		w->tx_raw_slot[w->tx_raw_n] = (uint8_t)i;
		mh = &w->tx_msg[w->tx_raw_n++].msg_hdr;
		*mh = (struct msghdr){ .msg_name = &w->tx_addr[i],
				       .msg_namelen = sizeof(w->tx_addr[i]),
				       .msg_iov = w->tx_iov[i] + 1, .msg_iovlen = 2 };
	}
	w->tx_meta[i] = (struct gw_tx){ site_lane(w, site), (uint8_t)kind, (uint32_t)bytes };
	if (++w->tx_count == GW_BATCH)
		worker_flush_tx(w);
}

/* Queue PAYLOAD (with HDR_LEN bytes of w->tx_hdr[slot] before it) for DST. */
static void tx_queue(struct gw_worker *w, const struct gw_site *site, struct in_addr dst,
		     size_t hdr_len, const void *payload, size_t len, enum gw_tx_kind kind)
{
	tx_push(w, site, dst, hdr_len, payload, len, len, kind);
}

static void tx_account(struct gw_worker *w, const struct gw_tx *tx, bool sent)
{
	if (!sent) {
		if (tx->kind != GW_TX_ERROR)
			shm_add(&tx->lane->drops[SHM_DROP_IO], 1);
		return;
	}
	shm_add(&pop_lane(w)->tx_packets, 1);
	shm_add(&pop_lane(w)->tx_bytes, tx->bytes);
	switch (tx->kind) {
	case GW_TX_DATA:
		shm_add(&tx->lane->tx_packets, 1);
		shm_add(&tx->lane->tx_bytes, tx->bytes);
		break;
	case GW_TX_KEEPALIVE:
		shm_add(&tx->lane->keepalives, 1);
		break;
	case GW_TX_PROBE:
		shm_add(&tx->lane->probes, 1);
		break;
	case GW_TX_ERROR:
		break;
	}
}

/* Send COUNT messages of MSG through FD; SLOT[k] is message k's batch slot. */
static void tx_send(struct gw_worker *w, int fd, struct mmsghdr *msg, const uint8_t *slot,
		    unsigned count)
{
	unsigned done = 0;

	while (done < count) {
		int n = sendmmsg(fd, &msg[done], count - done, MSG_DONTWAIT);

		if (n <= 0) {
			/* The kernel refused the first one: count it, go on with the rest. */
			tx_account(w, &w->tx_meta[slot[done]], false);
			done++;
			continue;
		}
		for (int i = 0; i < n; i++)
			tx_account(w, &w->tx_meta[slot[done + i]], true);
		done += n;
	}
}

/* Send what the batch queued toward the routers: it may point into what was read. */
static void worker_send_tx(struct gw_worker *w)
{
	tx_send(w, w->pk_fd, w->pk_msg, w->tx_pk_slot, w->tx_pk_n);
	tx_send(w, w->tx_fd, w->tx_msg, w->tx_raw_slot, w->tx_raw_n);
	w->tx_count = w->tx_pk_n = w->tx_raw_n = 0;
}

void worker_flush_tx(struct gw_worker *w)
{
	if (w->gro)
		gro_flush(w->gro);
	worker_send_tx(w);
}

/* Encapsulate an inner packet of PROTO toward SITE. */
static void tx_encapsulate(struct gw_worker *w, const struct gw_site *site, uint16_t proto,
			   const void *inner, size_t len, enum gw_tx_kind kind)
{
	size_t hdr_len = gre_build_header(w->tx_hdr[w->tx_count], w->gw->conf.gateway_ip,
					  site->conf.source_ip, site->conf.has_key,
					  site->conf.key, proto, len, w->ip_id++);

	tx_queue(w, site, site->conf.source_ip, hdr_len, inner, len, kind);
}

/* The address our ICMP errors come from. */
static struct in_addr icmp_source(const struct gw *gw)
{
	return gw->conf.probe_ip.s_addr ? gw->conf.probe_ip : gw->conf.gateway_ip;
}

static void icmp_source6(const struct gw *gw, struct in6_addr *out)
{
	struct in_addr v4 = icmp_source(gw);

	/* XXX: no IPv6 address is configured; use the IPv4-mapped probe address
	 * until the configuration has a probe_ip6 key. */
	memset(out, 0, sizeof(*out));
	out->s6_addr[10] = 0xff;
	out->s6_addr[11] = 0xff;
	memcpy(&out->s6_addr[12], &v4.s_addr, 4);
}

/* Build the too-big error for PKT into a free tx buffer; its length or 0. */
static size_t build_too_big(struct gw_worker *w, const uint8_t *pkt, const struct inner_info *info,
			    unsigned mtu)
{
	struct in6_addr from6;

	icmp_source6(w->gw, &from6);
	return icmp_build_too_big(w->tx_buf[w->tx_count], GW_BUF_SIZE, pkt, info, mtu,
				  icmp_source(w->gw), &from6);
}

/* The TCP MSS that fits the site's tunnel: its MTU less IP and TCP headers. */
static inline uint16_t site_mss(const struct gw_site *site, int family)
{
	return (uint16_t)(site->mtu - (family == AF_INET ? 40 : 60));
}

/*
 * Whether the tunnel of SITE is established, establishing it if the POP
 * accepts new tunnels for the site now. Idle longer than tunnel_idle_s on
 * every lane means new.
 */
static bool tunnel_admit(struct gw_worker *w, const struct gw_site *site)
{
	struct shm_site_lane *lane = site_lane(w, site);
	unsigned idle_s = __atomic_load_n(&w->gw->conf.tunnel_idle_s, __ATOMIC_RELAXED);
	int64_t idle = (int64_t)idle_s * (int64_t)NSEC_PER_SEC;
	bool established = (int64_t)(w->now_ns - shm_load(&lane->last_seen_ns)) < idle;

	for (uint32_t i = 0; !established && i < w->gw->shm.hdr->lanes; i++)
		established = (int64_t)(w->now_ns - shm_load(&site->shm->lane[i].last_seen_ns)) <
			      idle;
	if (!established) {
		if (w->accept_mode != SHM_ACCEPT_ACCEPT || !site_served(w, site)) {
			shm_add(&lane->drops[SHM_DROP_AUTH_FAILURE], 1u + w->more_segs);
			return false;
		}
		shm_set(&lane->established_ns, w->now_ns);
	}
	if (lane->last_seen_ns != w->now_ns)
		shm_set(&lane->last_seen_ns, w->now_ns);
	return true;
}

/* A keepalive or probe arrived: note it; whether to answer it. */
static bool keepalive_arrived(struct gw_worker *w, const struct gw_site *site)
{
	struct shm_site_lane *lane = site_lane(w, site);

	shm_set(&lane->last_keepalive_ns, w->now_ns);
	if (w->accept_mode != SHM_ACCEPT_DRAIN && site_served(w, site))
		return true;
	shm_add(&lane->drops[SHM_DROP_NOT_SERVING], 1u + w->more_segs);
	return false;
}

static void handle_keepalive(struct gw_worker *w, const struct gw_site *site, const uint8_t *inner,
			     const struct inner_info *info)
{
	if (!keepalive_arrived(w, site))
		return;
	/* The inner packet is a whole IPv4 packet to the router: send it as is. */
	tx_queue(w, site, info->dst.v4, 0, inner, info->ip_len, GW_TX_KEEPALIVE);
}

static void handle_probe(struct gw_worker *w, const struct gw_site *site, uint8_t *inner,
			 const struct inner_info *info)
{
	if (!keepalive_arrived(w, site))
		return;
	if (!icmp_echo_to_reply(inner, info)) {
		site_drop(w, site, SHM_DROP_BAD_INNER);
		return;
	}
	tx_encapsulate(w, site, GRE_PROTO_IPV4, inner, info->ip_len, GW_TX_PROBE);
}

/* To this host (any of its addresses, loopback, the probe IP), or from the gateway IP. */
static bool is_pop_address(struct gw *gw, const struct inner_info *info)
{
	if (info->family != AF_INET)
		return IN6_IS_ADDR_LOOPBACK(&info->dst.v6) ||
		       local_addrs_has(gw, AF_INET6, &info->dst.v6);
	return ntohl(info->dst.v4.s_addr) >> 24 == IN_LOOPBACKNET ||
	       info->src.v4.s_addr == gw->conf.gateway_ip.s_addr ||
	       (gw->conf.probe_ip.s_addr && info->dst.v4.s_addr == gw->conf.probe_ip.s_addr) ||
	       local_addrs_has(gw, AF_INET, &info->dst.v4);
}

/*
 * An ordinary inner packet: enforce, clamp, learn, deliver. RX says whether
 * the kernel merged it from segments: then each segment must fit the
 * tunnel, the rate is charged for all of them, and it goes out whole.
 */
static void handle_data(struct gw_worker *w, struct gw_site *site, uint8_t *inner,
			struct inner_info *info, const struct gw_rx *rx)
{
	struct gw *gw = w->gw;
	struct shm_site_lane *lane = site_lane(w, site);
	size_t largest = rx->gso_hdr ? (size_t)rx->gso_hdr + rx->gso_size : info->ip_len;
	uint64_t bytes = info->ip_len + (uint64_t)(rx->segs - 1) * rx->gso_hdr;
	int reason;
	size_t n;

	if (is_pop_address(gw, info)) {
		reason = SHM_DROP_LOOP;
		goto drop;
	}
	if (!policy_allows(info, site->conf.services, site->conf.http_ports,
			   site->conf.n_http_ports)) {
		reason = SHM_DROP_POLICY;
		goto drop;
	}
	if (largest > site->mtu) {
		if (info->df && (n = build_too_big(w, inner, info, site->mtu)) > 0)
			tx_encapsulate(w, site, info->family == AF_INET ? GRE_PROTO_IPV4 :
					GRE_PROTO_IPV6, w->tx_buf[w->tx_count], n, GW_TX_ERROR);
		reason = SHM_DROP_TOO_BIG;
		goto drop;
	}
	if (!token_bucket_take(&site->lane[w->index].bucket, w->now_ns, site->rate_bps, bytes)) {
		reason = SHM_DROP_RATE;
		goto drop;
	}
	if (info->tcp_syn)
		tcp_clamp_mss(inner, info, site_mss(site, info->family));
	endpoint_learn(w, site->tenant, info->family, &info->src, site);
	if (rx->gso_hdr) {
		struct gro_merged m = { rx->gso_size, rx->gso_type, rx->gso_hdr, rx->segs };

		gro_add_merged(w->gro, w->tun_fd[site->tenant], lane, inner, info, &m, w->now_ns);
		return;
	}
	if (w->offload) {
		/* Delivered and counted now or at the end of the batch. */
		gro_add(w->gro, w->tun_fd[site->tenant], lane, inner, info, w->now_ns);
		return;
	}
	if (tun_write(w->tun_fd[site->tenant], inner, info->ip_len) != (ssize_t)info->ip_len) {
		reason = SHM_DROP_IO;
		goto drop;
	}
	shm_add(&lane->rx_packets, 1);
	shm_add(&lane->rx_bytes, info->ip_len);
	shm_set(&lane->last_user_ns, w->now_ns);
	return;
drop:
	shm_add(&lane->drops[reason], 1u + w->more_segs);
}

/*
 * The first pass over a GRE packet: count it, parse it, find its site. A
 * merged one counts as its segments would have, each with its own outer
 * and inner headers.
 */
static void gre_parse_rx(struct gw_worker *w, struct gw_rx *rx)
{
	unsigned segs = 1;
	uint64_t bytes = rx->len;

	memset(&rx->g, 0, sizeof(rx->g));
	rx->site = rx->other = NULL;
	rx->set = NULL;
	rx->ep_set = NULL;
	rx->cached = false;
	rx->gso_hdr = 0;
	rx->reason = gre_parse(rx->pkt, rx->len, &rx->g);
	if (rx->gso_type != VIRTIO_NET_HDR_GSO_NONE && rx->reason == 0) {
		/* Only IP the GRE header calls IP can have been merged. */
		unsigned version = rx->g.inner_len ? rx->g.inner[0] >> 4 : 0;

		if ((rx->g.proto == GRE_PROTO_IPV4 && version == 4) ||
		    (rx->g.proto == GRE_PROTO_IPV6 && version == 6))
			rx->gso_hdr = (uint16_t)gro_merged_parse(rx->g.inner, rx->g.inner_len,
								 rx->gso_size, rx->gso_type, &segs);
		if (rx->gso_hdr == 0)
			rx->reason = SHM_DROP_BAD_INNER;
	}
	rx->segs = (uint16_t)segs;
	if (segs > 1)
		bytes += (uint64_t)(segs - 1) * (size_t)(rx->g.inner - rx->pkt + rx->gso_hdr);
	shm_add(&pop_lane(w)->rx_packets, segs);
	shm_add(&pop_lane(w)->rx_bytes, bytes);
}

/* Whether RX names a tunnel to look up: one whose outer header parsed. */
static bool rx_has_source(const struct gw_rx *rx)
{
	return !(rx->reason && rx->g.src.s_addr == 0);
}

/* RX's site: the cache's candidate if it holds, else the table's answer, remembered. */
static void rx_lookup(struct gw_worker *w, struct gw_rx *rx)
{
	struct gw_site *site = site_cache_site(rx);

	if (site) {
		rx->site = site;
		return;
	}
	rx->site = sitetab_lookup(w->gw, rx->g.src, rx->g.has_key, rx->g.key, &rx->other);
	if (rx->site)
		site_cache_put(w, rx, rx->site);
}

/* One packet on its own: parsed and looked up, each stage in turn. */
static void gre_classify(struct gw_worker *w, struct gw_rx *rx)
{
	gre_parse_rx(w, rx);
	if (!rx_has_source(rx))
		return;
	site_cache_set(w, rx);
	site_cache_probe(w, rx);
	site_cache_fetch(w, rx);
	rx_lookup(w, rx);
}

/* The second pass: every decision after the site lookup. */
static void gre_handle(struct gw_worker *w, struct gw_rx *rx)
{
	struct gw_site *site = rx->site;
	const struct gre_packet *g = &rx->g;
	struct inner_info info;

	if (rx->reason && g->src.s_addr == 0) {
		pop_drop(w, rx->reason);
		return;
	}
	if (!site && !rx->other) {
		pop_drop(w, SHM_DROP_UNKNOWN_SOURCE);
		return;
	}
	if (rx->reason) {
		if (rx->reason == SHM_DROP_UNSUPPORTED_PROTO)
			shm_add(&pop_lane(w)->unsupported_proto[gre_proto_kind(g->proto)], 1);
		site_drop(w, site ? site : rx->other, rx->reason);
		return;
	}
	if (!site) {
		site_drop(w, rx->other, SHM_DROP_BAD_KEY);
		return;
	}
	if (!site->enabled) {
		site_drop(w, site, SHM_DROP_DISABLED);
		return;
	}
	if (!tunnel_admit(w, site))
		return;
	if (g->proto == GRE_PROTO_KEEPALIVE) {
		/* An answer to a keepalive: the router's side of the tunnel is up. */
		shm_set(&site_lane(w, site)->last_keepalive_ns, w->now_ns);
		shm_add(&site_lane(w, site)->keepalives, 1);
		return;
	}
	if (inner_parse(g->inner, g->inner_len, g->proto == GRE_PROTO_IPV4 ? AF_INET : AF_INET6,
			&info)) {
		site_drop(w, site, SHM_DROP_BAD_INNER);
		return;
	}
	switch (inner_classify(g->inner, &info, site->conf.source_ip, w->gw->conf.probe_ip)) {
	case INNER_KEEPALIVE:
		handle_keepalive(w, site, g->inner, &info);
		break;
	case INNER_PROBE:
		handle_probe(w, site, (uint8_t *)g->inner, &info);
		break;
	case INNER_REFLECT:
		site_drop(w, site, SHM_DROP_REFLECT);
		break;
	case INNER_KEEPALIVE_REPLY:
	case INNER_DATA:
		handle_data(w, site, (uint8_t *)g->inner, &info, rx);
		break;
	}
}

/* The second pass for one packet; drops count its segments. */
static void gre_handle_counted(struct gw_worker *w, struct gw_rx *rx)
{
	w->more_segs = (uint16_t)(rx->segs - 1);
	gre_handle(w, rx);
	w->more_segs = 0;
}

void worker_handle_gre(struct gw_worker *w, uint8_t *pkt, size_t len)
{
	struct gw_rx rx = { .pkt = pkt, .len = len };

	gre_classify(w, &rx);
	gre_handle_counted(w, &rx);
}

void worker_handle_gre_merged(struct gw_worker *w, uint8_t *pkt, size_t len, uint16_t gso_size,
			      uint8_t gso_type)
{
	struct gw_rx rx = { .pkt = pkt, .len = len, .gso_size = gso_size, .gso_type = gso_type };

	gre_classify(w, &rx);
	gre_handle_counted(w, &rx);
}

/*
 * Ask for the lines of SITE the second pass will write or read beyond the
 * one the lookup brought in: its counters in shared memory (the lane's
 * first line and its times), the policy's fields, and the worker's own
 * line of the site (token bucket, endpoint hint).
 */
static inline void site_prefetch(struct gw_worker *w, const struct gw_site *site)
{
	struct shm_site_lane *lane = site_lane(w, site);

	__builtin_prefetch(lane, 1);
	__builtin_prefetch(&lane->last_seen_ns, 1);
	__builtin_prefetch(&site->conf.services);
	__builtin_prefetch(&site->conf.n_http_ports);
	__builtin_prefetch(&site->lane[w->index], 1);
}

/*
 * A batch in stages. With many sites, what a packet's site lookup and
 * handling touch is rarely in the cache, and one packet at a time each miss
 * would stall in turn. So each stage runs over the whole batch and requests
 * what the next one reads: the packet's site-cache set and inner headers,
 * the slot the set names, the site in that slot, then the site's counters,
 * policy and lane and the inner source's set in the endpoint cache, then
 * the endpoint that lane last learned and the one the set holds; the last
 * stage finds them arriving or there. A tunnel the cache does not hold is
 * looked up in the RCU table at the fourth stage.
 */
static void handle_rx_batch(struct gw_worker *w, struct gw_rx *rx, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		gre_parse_rx(w, &rx[i]);
		if (!rx_has_source(&rx[i]))
			continue;
		site_cache_set(w, &rx[i]);
		/* The inner headers: the kernel wrote them on another core. */
		if (rx[i].g.inner_len > 0)
			__builtin_prefetch(rx[i].g.inner);
		if (rx[i].g.inner_len > 40)
			__builtin_prefetch(rx[i].g.inner + 40);
	}
	for (unsigned i = 0; i < n; i++)
		site_cache_probe(w, &rx[i]);
	for (unsigned i = 0; i < n; i++)
		site_cache_fetch(w, &rx[i]);
	for (unsigned i = 0; i < n; i++) {
		if (!rx_has_source(&rx[i]))
			continue;
		rx_lookup(w, &rx[i]);
		if (rx[i].site) {
			site_prefetch(w, rx[i].site);
			endpoint_cache_set(w, &rx[i]);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (rx[i].site)
			endpoint_hint_prefetch(w, rx[i].site);
		endpoint_cache_probe(&rx[i]);
	}
	for (unsigned i = 0; i < n; i++)
		gre_handle_counted(w, &rx[i]);
}

void worker_handle_gre_batch(struct gw_worker *w, uint8_t *const *pkt, const size_t *len,
			     unsigned n)
{
	struct gw_rx *rx = w->rx_pending;

	for (unsigned i = 0; i < n; i++) {
		rx[i].pkt = pkt[i];
		rx[i].len = len[i];
		rx[i].gso_type = VIRTIO_NET_HDR_GSO_NONE;
	}
	handle_rx_batch(w, rx, n);
}

/*
 * The site that a packet (or COUNT segments) from TENANT's TUN goes back
 * to, or NULL with the drop counted.
 */
static struct gw_site *tun_site(struct gw_worker *w, uint8_t tenant,
				const struct inner_info *info, unsigned count)
{
	struct gw_site *site = endpoint_find(w, tenant, info->family, &info->dst);
	int reason;

	if (!site) {
		/* Multicast and link-local are the POP's own stack talking to the link. */
		reason = info->family == AF_INET6 && (info->dst.v6.s6_addr[0] == 0xff ||
						      IN6_IS_ADDR_LINKLOCAL(&info->dst.v6)) ?
			 SHM_DROP_LOCAL : SHM_DROP_NO_ROUTE_BACK;
		shm_add(&pop_lane(w)->drops[reason], count);
		return NULL;
	}
	if (!site->conf.enabled) {
		shm_add(&site_lane(w, site)->drops[SHM_DROP_DISABLED], count);
		return NULL;
	}
	return site;
}

/* The service sent more than the tunnel carries: tell it, as a router would. */
static void tun_too_big(struct gw_worker *w, uint8_t tenant, const struct gw_site *site,
			const uint8_t *pkt, const struct inner_info *info, unsigned count)
{
	size_t n;

	if (info->df && (n = build_too_big(w, pkt, info, site->mtu)) > 0 &&
	    tun_write(w->tun_fd[tenant], w->tx_buf[w->tx_count], n) < 0)
		pop_drop(w, SHM_DROP_IO);
	shm_add(&site_lane(w, site)->drops[SHM_DROP_TOO_BIG], count);
}

static void tun_handle_parsed(struct gw_worker *w, uint8_t tenant, uint8_t *pkt,
			      const struct inner_info *info)
{
	struct gw_site *site = tun_site(w, tenant, info, 1);

	if (!site)
		return;
	if (info->ip_len > site->mtu) {
		tun_too_big(w, tenant, site, pkt, info, 1);
		return;
	}
	if (info->tcp_syn)
		tcp_clamp_mss(pkt, info, site_mss(site, info->family));
	tx_encapsulate(w, site, info->family == AF_INET ? GRE_PROTO_IPV4 : GRE_PROTO_IPV6, pkt,
		       info->ip_len, GW_TX_DATA);
}

void worker_handle_tun(struct gw_worker *w, uint8_t tenant, uint8_t *pkt, size_t len)
{
	struct inner_info info;
	int family = len > 0 && (pkt[0] >> 4) == 6 ? AF_INET6 : AF_INET;

	if (inner_parse(pkt, len, family, &info)) {
		pop_drop(w, SHM_DROP_BAD_INNER);
		return;
	}
	tun_handle_parsed(w, tenant, pkt, &info);
}

/*
 * Each segment of GP toward SITE: the GRE header and the segment's headers
 * in the slot's header area, the payload where it lies in the read.
 */
static void tun_send_segments(struct gw_worker *w, const struct gw_site *site,
			      const struct gso_packet *gp)
{
	uint16_t proto = gp->family == AF_INET ? GRE_PROTO_IPV4 : GRE_PROTO_IPV6;
	const struct site_conf *sc = &site->conf;

	for (unsigned k = 0; k < gp->segments; k++) {
		uint8_t *hdr = w->tx_hdr[w->tx_count];
		size_t seg_len = gso_segment_len(gp, k), gre_len, inner_hdr;
		const uint8_t *payload;

		gre_len = gre_build_header(hdr, w->gw->conf.gateway_ip, sc->source_ip, sc->has_key,
					   sc->key, proto, seg_len, w->ip_id++);
		inner_hdr = gso_build_segment(gp, k, hdr + gre_len, &payload);
		tx_push(w, site, sc->source_ip, gre_len + inner_hdr, payload,
			seg_len - inner_hdr, seg_len, GW_TX_DATA);
	}
}

void worker_handle_tun_read(struct gw_worker *w, uint8_t tenant, uint8_t *buf, size_t len)
{
	struct virtio_net_hdr vh;
	struct inner_info info;
	struct gso_packet gp;
	struct gw_site *site;
	uint8_t *pkt = buf + TUN_VNET_HDR_LEN;

	if (len <= TUN_VNET_HDR_LEN) {
		pop_drop(w, SHM_DROP_BAD_INNER);
		return;
	}
	len -= TUN_VNET_HDR_LEN;
	/* Without offloads the header says nothing. */
	if (!w->offload) {
		worker_handle_tun(w, tenant, pkt, len);
		return;
	}
	memcpy(&vh, buf, sizeof(vh));
	if (gso_prepare(&vh, pkt, len, &info, &gp) < 0) {
		pop_drop(w, SHM_DROP_BAD_INNER);
		return;
	}
	if (gp.segments == 0) {
		tun_handle_parsed(w, tenant, pkt, &info);
		return;
	}
	site = tun_site(w, tenant, &info, gp.segments);
	if (!site)
		return;
	/* The first segment is the largest: if it fits, all do. */
	if (gso_segment_len(&gp, 0) > site->mtu) {
		tun_too_big(w, tenant, site, pkt, &info, gp.segments);
		return;
	}
	tun_send_segments(w, site, &gp);
}

static void worker_poll_gre(struct gw_worker *w)
{
	uint8_t *pkt[GW_BATCH];
	size_t len[GW_BATCH];

	for (int budget = GW_GRE_BUDGET; budget > 0; budget--) {
		int n = recvmmsg(w->gre_fd, w->rx_msg, GW_BATCH, MSG_DONTWAIT, NULL);

		if (n <= 0)
			return;
		worker_begin_batch(w);
		rcu_read_lock();
		for (int i = 0; i < n; i++) {
			pkt[i] = w->rx_buf[i];
			len[i] = w->rx_msg[i].msg_len;
		}
		worker_handle_gre_batch(w, pkt, len, (unsigned)n);
		worker_flush_tx(w);
		rcu_read_unlock();
		if (n < GW_BATCH)
			return;
	}
}

/*
 * The packets of one ring block, GW_BATCH at a time. With PACKET_VNET_HDR
 * a virtio_net_hdr precedes each: a GSO type there means the kernel's GRO
 * merged segments into the packet.
 */
static void ring_handle_block(struct gw_worker *w, struct tpacket_block_desc *bd)
{
	struct tpacket3_hdr *h = (struct tpacket3_hdr *)(void *)((uint8_t *)bd +
								 bd->hdr.bh1.offset_to_first_pkt);
	struct gw_rx *rx = w->rx_pending;
	unsigned n = 0;

	for (uint32_t i = 0; i < bd->hdr.bh1.num_pkts; i++) {
		/* The snapshot starts at the link header, the packet after it. */
		uint32_t link = (uint32_t)(h->tp_net - h->tp_mac);

		rx[n].pkt = (uint8_t *)h + h->tp_net;
		rx[n].len = h->tp_snaplen > link ? h->tp_snaplen - link : 0;
		rx[n].gso_type = VIRTIO_NET_HDR_GSO_NONE;
		if (w->ring.vnet) {
			struct virtio_net_hdr vh;

			memcpy(&vh, (uint8_t *)h + h->tp_mac - sizeof(vh), sizeof(vh));
			rx[n].gso_size = le16toh(vh.gso_size);
			rx[n].gso_type = vh.gso_type;
		}
		if (++n == GW_BATCH) {
			handle_rx_batch(w, rx, n);
			n = 0;
		}
		h = (struct tpacket3_hdr *)(void *)((uint8_t *)h + h->tp_next_offset);
	}
	if (n > 0)
		handle_rx_batch(w, rx, n);
}

/*
 * io = ring: each block the kernel filled is one batch, handled in place
 * and given back. Replies may point into the block: they are sent first
 * (what gro holds is a copy, but it is written then too).
 */
/*
 * The filled blocks, GW_GRE_BUDGET at most. A block goes back to the
 * kernel once what was queued to send from it has left; what coalescing
 * holds is a copy, so a flow spans the blocks of one pass and is written at
 * its end, in the same read section (no slot a held flow counts for can
 * change owner meanwhile).
 */
static void worker_poll_ring(struct gw_worker *w)
{
	rcu_read_lock();
	for (int budget = GW_GRE_BUDGET; budget > 0; budget--) {
		struct tpacket_block_desc *bd = (struct tpacket_block_desc *)
			(void *)(w->ring.map + (size_t)w->ring.next * w->ring.block_size);

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER))
			break;
		worker_begin_batch(w);
		ring_handle_block(w, bd);
		worker_send_tx(w);
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		w->ring.next = (w->ring.next + 1) % w->ring.block_nr;
	}
	worker_flush_tx(w);
	rcu_read_unlock();
}

/*
 * io = xdp: the frames the socket's receive ring holds, GW_BATCH at a time,
 * GW_GRE_BUDGET batches at most. As with the ring, a batch's frames go
 * back to the fill ring once what was queued to send from them has left.
 * In copy mode the kernel fills the frames on its own; a driver that
 * delivers in place may ask to be woken to take the frames given back.
 */
static unsigned worker_poll_xdp(struct gw_worker *w)
{
	struct gw_xsk *x = &w->xsk;
	struct gw_rx *rx = w->rx_pending;
	unsigned handled = 0;

	rcu_read_lock();
	for (int budget = GW_GRE_BUDGET; budget > 0; budget--) {
		uint32_t at, fill_at, n = xsk_ring_cons__peek(&x->rx, GW_BATCH, &at);

		if (n == 0)
			break;
		worker_begin_batch(w);
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, at + i);
			uint8_t *frame = xsk_umem__get_data(x->area, d->addr);

			x->held[i] = d->addr;
			rx[i].pkt = frame + ETH_HLEN;
			rx[i].len = d->len > ETH_HLEN ? d->len - ETH_HLEN : 0;
			rx[i].gso_type = VIRTIO_NET_HDR_GSO_NONE;
		}
		xsk_ring_cons__release(&x->rx, n);
		handled += n;
		handle_rx_batch(w, rx, n);
		worker_send_tx(w);
		/* The fill ring has room for every frame: this never waits. */
		if (xsk_ring_prod__reserve(&x->fill, n, &fill_at) == n) {
			for (uint32_t i = 0; i < n; i++)
				*xsk_ring_prod__fill_addr(&x->fill, fill_at + i) = x->held[i];
			xsk_ring_prod__submit(&x->fill, n);
		}
		if (n < GW_BATCH)
			break;
	}
	worker_flush_tx(w);
	rcu_read_unlock();
	if (xsk_ring_prod__needs_wakeup(&x->fill))
		recvfrom(w->gre_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	return handled;
}

/*
 * Read TENANT's queue until it is empty or a batch's worth was read. Each
 * read lands after the previous one in the arena and is handled at once;
 * the arena starts over whenever the tx batch is empty (nothing points
 * into it), or after sending the batch when a largest read no longer fits.
 */
static unsigned worker_poll_tun(struct gw_worker *w, uint8_t tenant)
{
	bool begun = false;
	unsigned n;

	w->tun_used = 0;
	for (n = 0; n < GW_BATCH; n++) {
		uint8_t *buf;
		ssize_t r;

		if (w->tx_count && GW_TUN_ARENA - w->tun_used < GW_TUN_READ_MAX)
			worker_flush_tx(w);
		if (w->tx_count == 0)
			w->tun_used = 0;
		buf = w->tun_arena + w->tun_used;
		r = read(w->tun_fd[tenant], buf, GW_TUN_READ_MAX);
		if (r <= 0)
			break;
		if (!begun) {
			worker_begin_batch(w);
			rcu_read_lock();
			begun = true;
		}
		w->tun_used += ((size_t)r + 63) & ~(size_t)63;
		worker_handle_tun_read(w, tenant, buf, (size_t)r);
	}
	if (!begun)
		return 0;
	worker_flush_tx(w);
	rcu_read_unlock();
	return n;
}

static void *worker_main(void *arg)
{
	struct gw_worker *w = arg;
	struct epoll_event ev[CONF_MAX_TENANTS + 1];

	rcu_register_thread();
	while (!atomic_load_explicit(&w->gw->stopping, memory_order_relaxed)) {
		/* Wake at least every 100 ms so the heartbeat shows progress. */
		int n = epoll_wait(w->epoll_fd, ev, CONF_MAX_TENANTS + 1, 100);
		unsigned xdp_read = GW_BATCH;
		bool tun_full = false;

		if (n <= 0)
			worker_begin_batch(w);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u32 == GW_EPOLL_GRE && w->ring.map)
				worker_poll_ring(w);
			else if (ev[i].data.u32 == GW_EPOLL_GRE && w->xsk.sock)
				xdp_read = worker_poll_xdp(w);
			else if (ev[i].data.u32 == GW_EPOLL_GRE)
				worker_poll_gre(w);
			else if (worker_poll_tun(w, (uint8_t)ev[i].data.u32) == GW_BATCH)
				tun_full = true;
		}
		/*
		 * io = xdp: a socket is readable from its first packet, where
		 * the ring hands over a block when it is full or 1 ms old. A
		 * worker that found less than a batch waits a little for
		 * more, as a NIC holds its interrupt back, so a wakeup and a
		 * coalesced TUN write are shared by many packets. Not while
		 * a TUN queue had a batch waiting: replies in bulk to a trickle
		 * of requests must not be paced by the trickle.
		 */
		if (xdp_read > 0 && xdp_read < GW_BATCH && !tun_full)
			nanosleep(&(struct timespec){ .tv_nsec = GW_XSK_WAIT_NS }, NULL);
	}
	rcu_unregister_thread();
	return NULL;
}

/* Give worker INDEX of N the tunnels whose source IP is INDEX modulo N. */
static int attach_share_filter(int fd, unsigned index, unsigned n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),		/* outer source IP */
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, index, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	return 0;
}

static int open_gre_socket(struct gw *gw, unsigned index)
{
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr = gw->conf.gateway_ip };
	int size = 8 << 20;
	int fd, r;

	fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_GRE);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (gw->n_workers > 1) {
		r = attach_share_filter(fd, index, gw->n_workers);
		if (r < 0)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

/*
 * io = ring: an AF_PACKET TPACKET_V3 ring on the WAN interface that sees
 * only GRE to the gateway IP (a BPF filter), shared among the workers by a
 * hash fanout (one tunnel, one flow hash, one worker). The packets skip the
 * kernel's IP input: nftables drops them at the interface's ingress hook.
 * Outer IP fragments are not reassembled on this path: they are counted
 * as bad_header.
 */
static int open_ring(struct gw *gw, struct gw_worker *w)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 9),	/* IP protocol */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_GRE, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),	/* destination */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(gw->conf.gateway_ip.s_addr), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	struct tpacket_req3 req = {
		.tp_block_size = GW_RING_BLOCK, .tp_block_nr = GW_RING_BLOCKS,
		.tp_frame_size = GW_RING_FRAME,
		.tp_frame_nr = GW_RING_BLOCK / GW_RING_FRAME * GW_RING_BLOCKS,
		.tp_retire_blk_tov = GW_RING_TOV_MS,
	};
	/*
	 * Every protocol, so the ring is one of the taps the kernel serves
	 * before the ingress hook, where nftables drops the GRE it took
	 * (nft_setup) before IP input spends anything on it; never what this
	 * host sends. No protocol until bind: nothing arrives before the filter.
	 */
	struct sockaddr_ll ll = {
		.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = (int)if_nametoindex(gw->conf.wan_interface),
	};
	int version = TPACKET_V3, fanout = (getpid() & 0xffff) | (PACKET_FANOUT_HASH << 16), r;
	int one = 1;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/*
	 * Before the ring exists, and only a SOCK_RAW socket may: the segment
	 * size of what the kernel merged, in a header before the link header.
	 */
	w->ring.vnet = setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0;
	if (ll.sll_ifindex == 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		goto fail;
	w->ring.map = mmap(NULL, (size_t)GW_RING_BLOCK * GW_RING_BLOCKS, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0);
	if (w->ring.map == MAP_FAILED) {
		w->ring.map = NULL;
		goto fail;
	}
	w->ring.block_size = GW_RING_BLOCK;
	w->ring.block_nr = GW_RING_BLOCKS;
	if (bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0 ||
	    (gw->n_workers > 1 &&
	     setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fanout, sizeof(fanout)) < 0))
		goto fail;
	return fd;
fail:
	r = errno && ll.sll_ifindex ? -errno : -ENODEV;
	if (w->ring.map)
		munmap(w->ring.map, (size_t)GW_RING_BLOCK * GW_RING_BLOCKS);
	w->ring.map = NULL;
	close(fd);
	return r;
}

/*
 * io = xdp: worker W's AF_XDP socket on the queue of its index, its frames
 * all given to the kernel, and its place in the program's map. Copy mode
 * unless the driver offers zero copy; nothing is sent through it. Returns
 * the socket's descriptor, 0 when the interface has no such queue (the
 * worker then serves only its TUN queues), or -errno.
 */
static int open_xsk(struct gw *gw, struct gw_worker *w)
{
	struct gw_xsk *x = &w->xsk;
	const struct xsk_umem_config ucfg = {
		.fill_size = GW_XSK_FRAMES, .comp_size = XSK_RING_CONS__DEFAULT_NUM_DESCS,
		.frame_size = GW_XSK_FRAME_SIZE, .frame_headroom = 0,
	};
	const struct xsk_socket_config scfg = {
		.rx_size = GW_XSK_RX_SIZE,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP,
	};
	size_t size = (size_t)GW_XSK_FRAMES * GW_XSK_FRAME_SIZE;
	uint32_t at, key = w->index;
	int fd, r;

	if (w->index >= gw->wan_queues)
		return 0;
	x->area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		return -ENOMEM;
	}
	r = xsk_umem__create(&x->umem, x->area, size, &x->fill, &x->comp, &ucfg);
	if (r < 0)
		return r;
	r = xsk_socket__create(&x->sock, gw->conf.wan_interface, w->index, x->umem, &x->rx,
			       NULL, &scfg);
	if (r < 0) {
		x->sock = NULL;
		return r;
	}
	if (xsk_ring_prod__reserve(&x->fill, GW_XSK_FRAMES, &at) != GW_XSK_FRAMES)
		return -ENOSPC;
	for (uint32_t i = 0; i < GW_XSK_FRAMES; i++)
		*xsk_ring_prod__fill_addr(&x->fill, at + i) = (uint64_t)i * GW_XSK_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fill, GW_XSK_FRAMES);
	fd = xsk_socket__fd(x->sock);
	if (bpf_map_update_elem(gw->xsks_fd, &key, &fd, BPF_ANY) < 0)
		return -errno;
	return fd;
}

static int open_tx_socket(void)
{
	int size = 4 << 20;
	int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

/*
 * io = ring: an AF_PACKET socket that sends whole frames, on the interface
 * each one names, past the qdisc, so a packet costs the driver's transmit and
 * not ip_local_out, netfilter, routing and the neighbour layer. It binds
 * to no protocol, so it receives nothing.
 */
static int open_packet_tx(void)
{
	int one = 1, size = 4 << 20;
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

static int epoll_watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * Prepare worker INDEX: sockets, buffers, endpoint pool. The caller has set
 * w->tun_fd[] for every tenant already.
 */
int worker_setup(struct gw *gw, struct gw_worker *w, unsigned index)
{
	int r;

	w->gw = gw;
	w->index = index;
	w->gre_fd = w->tx_fd = w->pk_fd = w->epoll_fd = -1;
	w->rx_buf = aligned_alloc(64, sizeof(*w->rx_buf) * GW_BATCH);
	w->tx_buf = aligned_alloc(64, sizeof(*w->tx_buf) * GW_BATCH);
	w->tun_arena = malloc(GW_TUN_ARENA);
	if (!w->rx_buf || !w->tx_buf || !w->tun_arena)
		return -ENOMEM;
	for (unsigned i = 0; i < GW_BATCH; i++) {
		w->rx_iov[i] = (struct iovec){ w->rx_buf[i], GW_BUF_SIZE };
		w->rx_msg[i].msg_hdr = (struct msghdr){ .msg_iov = &w->rx_iov[i], .msg_iovlen = 1 };
	}
	r = endpoint_pool_init(w);
	if (r < 0)
		return r;
	r = site_cache_init(w);
	if (r < 0)
		return r;
	r = endpoint_cache_init(w);
	if (r < 0)
		return r;
	/* The control thread may swap gw->conf on reload: the worker keeps its copy. */
	w->offload = gw->conf.offload;
	if (w->offload && (r = gro_create(&w->gro)) < 0)
		return r;
	switch (gw->conf.io) {
	case CONF_IO_RING:
		w->gre_fd = open_ring(gw, w);
		break;
	case CONF_IO_XDP:
		w->gre_fd = open_xsk(gw, w);
		if (w->gre_fd == 0)
			w->gre_fd = -1;
		else if (w->gre_fd < 0)
			return w->gre_fd;
		break;
	default:
		w->gre_fd = open_gre_socket(gw, index);
	}
	if (w->gre_fd < 0 && gw->conf.io != CONF_IO_XDP)
		return w->gre_fd;
	w->tx_fd = open_tx_socket();
	if (w->tx_fd < 0)
		return w->tx_fd;
	if (gw->l2) {
		w->pk_fd = open_packet_tx();
		if (w->pk_fd < 0)
			return w->pk_fd;
	}
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epoll_fd < 0)
		return -errno;
	r = w->gre_fd >= 0 ? epoll_watch(w->epoll_fd, w->gre_fd, GW_EPOLL_GRE) : 0;
	for (unsigned t = 0; r == 0 && t < gw->conf.n_tenants; t++)
		r = epoll_watch(w->epoll_fd, w->tun_fd[t], t);
	return r;
}

int worker_start(struct gw_worker *w)
{
	return -pthread_create(&w->thread, NULL, worker_main, w);
}

void worker_stop_all(struct gw *gw)
{
	atomic_store(&gw->stopping, true);
	for (unsigned i = 0; i < gw->n_workers; i++)
		if (gw->workers[i].thread)
			pthread_join(gw->workers[i].thread, NULL);
}

/* Close what worker_setup opened; the TUN queues belong to the caller. */
void worker_teardown(struct gw_worker *w)
{
	if (w->ring.map)
		munmap(w->ring.map, w->ring.block_size * w->ring.block_nr);
	if (w->xsk.sock)	/* closes gre_fd */
		xsk_socket__delete(w->xsk.sock);
	else if (w->gre_fd >= 0)
		close(w->gre_fd);
	w->xsk.sock = NULL;
	xsk_umem__delete(w->xsk.umem);
	w->xsk.umem = NULL;
	if (w->xsk.area)
		munmap(w->xsk.area, (size_t)GW_XSK_FRAMES * GW_XSK_FRAME_SIZE);
	w->xsk.area = NULL;
	if (w->tx_fd >= 0)
		close(w->tx_fd);
	if (w->pk_fd >= 0)
		close(w->pk_fd);
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	free(w->rx_buf);
	free(w->tx_buf);
	gro_destroy(w->gro);
	w->gro = NULL;
	free(w->tun_arena);
	endpoint_pool_free(w);
	site_cache_free(w);
	endpoint_cache_free(w);
}
