/*
 * The RCU tables of gatewayd: sites by tunnel source IP, sites by
 * shared-memory slot, and endpoints (inner addresses) by tenant and address.
 *
 * Sites: a liburcu lock-free hash table keyed by source IP. Several sites
 * may share one source IP when each has its own GRE key; they are
 * duplicates under one hash and a lookup walks them. Only the control
 * thread changes the table: a changed site is a new object added before the
 * old one is removed, so a worker always finds one of the two; the old one
 * is freed after a grace period.
 *
 * Endpoints: workers learn them on the per-packet path, so nothing there
 * may allocate: each worker owns a preallocated pool. A worker takes a node
 * from its private free list and adds it with cds_lfht_add_unique (another
 * worker may race it for the same address: the loser keeps its node). The
 * control thread ages endpoints out and, after a grace period, pushes each
 * node onto its owner's "returned" stack, which only the owner pops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gatewayd/gateway.h"
#include "gatewayd/l2.h"
#include "lib/timeutil.h"

#ifdef GW_TSAN
char tsan_grace;
#endif

static uint64_t hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static unsigned long hash_source(struct in_addr ip)
{
	return hash_mix(ip.s_addr);
}

static int match_source(struct cds_lfht_node *node, const void *key)
{
	const struct gw_site *site = caa_container_of(node, struct gw_site, by_source);

	tsan_found(site);	/* every node a lookup returns was matched here */
	return site->source_ip.s_addr == ((const struct in_addr *)key)->s_addr;
}

/* Whether SITE's tunnel carries KEY (when HAS_KEY), or none as it does not. */
static bool site_takes_key(const struct gw_site *site, bool has_key, uint32_t key)
{
	return site->has_key == has_key && (!has_key || site->key == key);
}

struct gw_site *sitetab_lookup(struct gw *gw, struct in_addr source, bool has_key, uint32_t key,
			       struct gw_site **key_mismatch)
{
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;
	struct gw_site *first = NULL;

	cds_lfht_lookup(gw->sites_by_source, hash_source(source), match_source, &source, &iter);
	for (node = cds_lfht_iter_get_node(&iter); node;
	     cds_lfht_next_duplicate(gw->sites_by_source, match_source, &source, &iter),
	     node = cds_lfht_iter_get_node(&iter)) {
		struct gw_site *site = caa_container_of(node, struct gw_site, by_source);

		if (site_takes_key(site, has_key, key))
			return site;
		if (!first)
			first = site;
	}
	*key_mismatch = first;
	return NULL;
}

/*
 * A site as an endpoint names it, in one word: the slot in the low 20 bits
 * (gateway.max_sites is at most 1,000,000) and the low 44 bits of the
 * slot's generation above it, which a slot would need 2^44 reuses to wrap.
 */
#define REF_SLOT_BITS	20
#define REF_SLOT_MASK	((1ull << REF_SLOT_BITS) - 1)

static uint64_t site_ref(const struct gw_site *site)
{
	return site->generation << REF_SLOT_BITS | site->slot;
}

/* The site in REF's slot now, whatever its generation, or NULL. */
static struct gw_site *slot_site(struct gw *gw, uint64_t ref)
{
	uint32_t slot = (uint32_t)(ref & REF_SLOT_MASK);
	struct gw_site *site;

	if (slot >= gw->shm.hdr->site_capacity)
		return NULL;
	site = rcu_dereference(gw->by_slot[slot]);
	tsan_found(site);
	return site;
}

/* The site REF names, if its slot still holds that generation. */
static struct gw_site *site_by_ref(struct gw *gw, uint64_t ref)
{
	struct gw_site *site = slot_site(gw, ref);

	return site && site_ref(site) == ref ? site : NULL;
}

/* The smallest power of two >= N, at least 1024. */
static unsigned long buckets_for(unsigned long n)
{
	unsigned long b = 1024;

	while (b < n)
		b <<= 1;
	return b;
}

int sitetab_init(struct gw *gw)
{
	unsigned long sites = buckets_for(gw->shm.hdr->site_capacity);

	/*
	 * Sites: sized for every slot from the start, and no
	 * CDS_LFHT_ACCOUNTING: with it liburcu grows a table only once it holds
	 * 8 items per bucket, and at 100,000 sites the long chains tripled the
	 * cost of a lookup. Endpoints keep it: they churn (learned, aged out),
	 * and without counting the table only grows, on chain lengths seen
	 * during adds; under test_gatewayd_rcu's churn lookups and aging slowed
	 * down a hundredfold.
	 */
	gw->sites_by_source = cds_lfht_new(sites, sites, 0, CDS_LFHT_AUTO_RESIZE, NULL);
	gw->endpoints = cds_lfht_new(65536, 65536, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				     NULL);
	gw->by_slot = calloc(gw->shm.hdr->site_capacity, sizeof(*gw->by_slot));
	gw->watch = calloc(gw->shm.hdr->site_capacity, sizeof(*gw->watch));
	if (!gw->sites_by_source || !gw->endpoints || !gw->by_slot || !gw->watch)
		return -ENOMEM;
	return 0;
}

static void site_free_rcu(struct rcu_head *head)
{
	tsan_after_grace();
	free(caa_container_of(head, struct gw_site, rcu));
}

void sitetab_destroy(struct gw *gw)
{
	struct cds_lfht_iter iter;
	struct gw_site *site;
	struct gw_endpoint *ep;

	if (gw->sites_by_source) {
		rcu_read_lock();
		cds_lfht_for_each_entry(gw->sites_by_source, &iter, site, by_source) {
			cds_lfht_del(gw->sites_by_source, &site->by_source);
			call_rcu(&site->rcu, site_free_rcu);
		}
		rcu_read_unlock();
	}
	if (gw->endpoints) {
		rcu_read_lock();
		cds_lfht_for_each_entry(gw->endpoints, &iter, ep, node)
			cds_lfht_del(gw->endpoints, &ep->node);
		rcu_read_unlock();
	}
	synchronize_rcu();
	rcu_barrier();
	if (gw->sites_by_source)
		cds_lfht_destroy(gw->sites_by_source, NULL);
	if (gw->endpoints)
		cds_lfht_destroy(gw->endpoints, NULL);
	free(gw->by_slot);
	free(gw->watch);
	gw->watch = NULL;
	gw->sites_by_source = NULL;
	gw->endpoints = NULL;
	gw->by_slot = NULL;
}

/* Write a site's identity into its shared-memory slot (control thread). */
static void slot_write_id(struct shm_site *slot, const struct site_conf *sc, uint8_t tenant,
			  uint64_t rate_bps)
{
	struct shm_site_id id;

	memset(&id, 0, sizeof(id));
	snprintf(id.name, sizeof(id.name), "%s", sc->name);
	id.source_ip = sc->source_ip;
	id.has_key = sc->has_key;
	id.key = sc->key;
	id.rate_bps = rate_bps;
	id.n_http_ports = sc->n_http_ports;
	memcpy(id.http_ports, sc->http_ports, sizeof(id.http_ports));
	id.enabled = sc->enabled;
	id.keepalive = sc->keepalive;
	id.traffic_type = sc->traffic_type;
	id.services = sc->services;
	id.tenant = tenant;
	shm_site_write_begin(slot);
	shm_site_set_id(slot, &id, true, slot->generation);
	shm_site_write_end(slot);
}

/* Give a slot back: counters zeroed, identity cleared, a new generation. */
static void slot_clear(struct gw *gw, struct shm_site *slot)
{
	static const struct shm_site_id none;

	shm_site_write_begin(slot);
	shm_site_set_id(slot, &none, false, slot->generation + 1);
	memset(slot->lane, 0, (size_t)gw->shm.hdr->lanes * sizeof(struct shm_site_lane));
	shm_site_write_end(slot);
}

struct name_slot {
	const char *name;
	uint32_t slot;
};

static int name_slot_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_slot *)a)->name, ((const struct name_slot *)b)->name);
}

/*
 * Every slot in use, running or left by an earlier run, sorted by name, so
 * that a site keeps its slot (and its counters) across changes and restarts.
 */
static struct name_slot *slots_by_name(struct gw *gw, size_t *n)
{
	uint32_t cap = gw->shm.hdr->site_capacity;
	struct name_slot *index = calloc(cap + 1, sizeof(*index));

	*n = 0;
	if (!index)
		return NULL;
	for (uint32_t s = 0; s < cap; s++) {
		struct shm_site *slot = shm_site_at(&gw->shm, s);

		if (gw->by_slot[s])
			index[(*n)++] = (struct name_slot){ gw->by_slot[s]->conf.name, s };
		else if (slot->in_use)
			index[(*n)++] = (struct name_slot){ slot->id.name, s };
	}
	qsort(index, *n, sizeof(*index), name_slot_cmp);
	return index;
}

static int slot_find_free(struct gw *gw, const uint8_t *taken, uint32_t *hint)
{
	uint32_t cap = gw->shm.hdr->site_capacity;

	for (uint32_t n = 0; n < cap; n++) {
		uint32_t i = (*hint + n) % cap;

		if (!taken[i] && !shm_site_at(&gw->shm, i)->in_use) {
			*hint = i + 1;
			return (int)i;
		}
	}
	return -1;
}

static struct gw_site *site_new(struct gw *gw, const struct site_conf *sc, uint32_t slot)
{
	struct gw_site *site = aligned_alloc(SHM_CACHELINE,
					     (sizeof(*site) + SHM_CACHELINE - 1) &
					     ~(size_t)(SHM_CACHELINE - 1));
	int tenant;

	if (!site)
		return NULL;
	memset(site, 0, sizeof(*site));
	site->conf = *sc;
	site->source_ip = sc->source_ip;
	site->key = sc->key;
	site->has_key = sc->has_key;
	site->enabled = sc->enabled;
	site->services = sc->services;
	site->slot = slot;
	site->shm = shm_site_at(&gw->shm, slot);
	tenant = conf_tenant_find(&gw->conf, sc->tenant);
	site->tenant = tenant < 0 ? 0 : (uint8_t)tenant;
	site->rate_bps = sc->rate_bps ? sc->rate_bps : gw->conf.default_rate_bps;
	/* tunnel_mtu counts the basic 4-byte GRE header; a key takes 4 more. */
	site->mtu = gw->conf.tunnel_mtu - (sc->has_key ? 4 : 0);
	/* A kept slot (an edit, a restart) counted earlier refusals: not news. */
	gw->watch[slot] = (struct gw_slot_watch){ 0 };
	for (uint32_t l = 0; l < gw->shm.hdr->lanes; l++)
		gw->watch[slot].auth_failures_seen +=
			shm_load(&site->shm->lane[l].drops[SHM_DROP_AUTH_FAILURE]);
	cds_lfht_node_init(&site->by_source);
	return site;
}

static bool site_conf_equal(const struct site_conf *a, const struct site_conf *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * Find every site's slot before touching anything, so that running out of
 * slots changes nothing. SLOT_OF[i] is the slot of SITES->site[i].
 */
static int plan_slots(struct gw *gw, const struct sites *sites, int *slot_of, uint8_t *taken)
{
	struct name_slot *index, *hit;
	uint32_t hint = 0;
	size_t n;

	index = slots_by_name(gw, &n);
	if (!index)
		return -ENOMEM;
	for (unsigned i = 0; i < sites->n; i++) {
		struct name_slot key = { sites->site[i].name, 0 };

		hit = bsearch(&key, index, n, sizeof(*index), name_slot_cmp);
		slot_of[i] = hit && !taken[hit->slot] ? (int)hit->slot : -1;
		if (slot_of[i] >= 0)
			taken[slot_of[i]] = 1;
	}
	free(index);
	for (unsigned i = 0; i < sites->n; i++) {
		if (slot_of[i] >= 0)
			continue;
		slot_of[i] = slot_find_free(gw, taken, &hint);
		if (slot_of[i] < 0)
			return -ENOSPC;
		taken[slot_of[i]] = 1;
	}
	return 0;
}

/* Publish the sites of the plan: new and changed ones first. */
static int publish_sites(struct gw *gw, const struct sites *sites, const int *slot_of,
			 void (*changed)(struct gw *, const struct site_conf *,
					 const struct site_conf *))
{
	for (unsigned i = 0; i < sites->n; i++) {
		const struct site_conf *sc = &sites->site[i];
		struct shm_site *slot = shm_site_at(&gw->shm, slot_of[i]);
		struct gw_site *old = gw->by_slot[slot_of[i]];
		struct gw_site *site;

		if (old && site_conf_equal(&old->conf, sc))
			continue;
		site = site_new(gw, sc, slot_of[i]);
		if (!site)
			return -ENOMEM;
		slot_write_id(slot, sc, site->tenant, site->rate_bps);
		site->generation = slot->generation;
		tsan_publish(site);
		cds_lfht_add(gw->sites_by_source, hash_source(sc->source_ip), &site->by_source);
		rcu_assign_pointer(gw->by_slot[slot_of[i]], site);
		l2_slot_set(gw, (uint32_t)slot_of[i], sc->source_ip);
		if (old) {
			cds_lfht_del(gw->sites_by_source, &old->by_source);
			call_rcu(&old->rcu, site_free_rcu);
		}
		changed(gw, old ? &old->conf : NULL, sc);
	}
	return 0;
}

int sitetab_apply(struct gw *gw, const struct sites *sites,
		  void (*changed)(struct gw *gw, const struct site_conf *before,
				  const struct site_conf *after))
{
	uint32_t cap = gw->shm.hdr->site_capacity;
	uint8_t *taken = calloc(cap, 1);
	int *slot_of = calloc(sites->n + 1, sizeof(*slot_of));
	struct gw_site **gone = calloc(cap, sizeof(*gone));
	unsigned n_gone = 0;
	int r;

	if (!taken || !slot_of || !gone) {
		r = -ENOMEM;
		goto out;
	}
	r = plan_slots(gw, sites, slot_of, taken);
	if (r < 0)
		goto out;

	rcu_read_lock();
	r = publish_sites(gw, sites, slot_of, changed);
	rcu_read_unlock();
	if (r < 0)
		goto out;

	/* Sites no longer configured, and stale slots of an earlier run. */
	for (uint32_t s = 0; s < cap; s++) {
		struct gw_site *old = gw->by_slot[s];

		if (taken[s])
			continue;
		if (old) {
			rcu_read_lock();
			cds_lfht_del(gw->sites_by_source, &old->by_source);
			rcu_read_unlock();
			rcu_assign_pointer(gw->by_slot[s], NULL);
			l2_slot_clear(gw, s);
			gone[n_gone++] = old;
			changed(gw, &old->conf, NULL);
		} else if (shm_site_at(&gw->shm, s)->in_use) {
			/* Left by an earlier run; no worker can hold it. */
			slot_clear(gw, shm_site_at(&gw->shm, s));
		}
	}
	if (n_gone > 0) {
		/* No worker holds a removed site after this: clear their slots. */
		synchronize_rcu();
		for (unsigned i = 0; i < n_gone; i++) {
			slot_clear(gw, gone[i]->shm);
			free(gone[i]);
		}
	}
	gw->shm.hdr->pop.site_generation++;
out:
	free(taken);
	free(slot_of);
	free(gone);
	return r;
}

/* Endpoints */

struct endpoint_key {
	uint8_t tenant;
	uint8_t family;
	const void *addr;
};

static unsigned long hash_endpoint(uint8_t tenant, int family, const void *addr)
{
	uint64_t h = ((uint64_t)tenant << 8) | (uint64_t)family;

	if (family == AF_INET) {
		uint32_t a;

		memcpy(&a, addr, 4);
		return hash_mix(h << 32 ^ a);
	}
	for (int i = 0; i < 16; i += 8) {
		uint64_t part;

		memcpy(&part, (const uint8_t *)addr + i, 8);
		h = hash_mix(h ^ part);
	}
	return h;
}

/* Two addresses of FAMILY; a length the compiler knows, so no call to memcmp on every packet. */
static inline bool addr_equal(const void *a, const void *b, int family)
{
	return family == AF_INET ? memcmp(a, b, 4) == 0 : memcmp(a, b, 16) == 0;
}

static int match_endpoint(struct cds_lfht_node *node, const void *key)
{
	const struct gw_endpoint *ep = caa_container_of(node, struct gw_endpoint, node);
	const struct endpoint_key *k = key;

	tsan_found(ep);
	if (ep->tenant != k->tenant || ep->family != k->family)
		return 0;
	return addr_equal(&ep->addr, k->addr, k->family);
}

/* The table's endpoint for ADDR, whose hash is HASH, or NULL. */
static struct gw_endpoint *table_find(struct gw *gw, unsigned long hash, uint8_t tenant,
				      int family, const void *addr)
{
	struct endpoint_key key = { tenant, (uint8_t)family, addr };
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;

	cds_lfht_lookup(gw->endpoints, hash, match_endpoint, &key, &iter);
	node = cds_lfht_iter_get_node(&iter);
	return node ? caa_container_of(node, struct gw_endpoint, node) : NULL;
}

static struct gw_site *endpoint_site(struct gw *gw, const struct gw_endpoint *ep)
{
	return ep ? site_by_ref(gw, __atomic_load_n(&ep->site_ref, __ATOMIC_RELAXED)) : NULL;
}

struct gw_site *endpoint_lookup(struct gw *gw, uint8_t tenant, int family, const void *addr)
{
	return endpoint_site(gw, table_find(gw, hash_endpoint(tenant, family, addr), tenant,
					    family, addr));
}

/*
 * The private free list links through free_next, never through the node:
 * a node's next keeps the mark cds_lfht_del left on it until the node is
 * added again, which is what lets a site's hint tell a removed endpoint.
 */
static struct gw_endpoint *pool_take(struct gw_worker *w)
{
	struct gw_endpoint *ep = w->free_list;
	struct cds_lfs_head *head;

	if (!ep) {
		/* Only this worker pops its returned stack: no ABA. */
		head = __cds_lfs_pop_all(&w->returned);
		if (!head)
			return NULL;
		for (struct cds_lfs_node *n = &head->node; n;) {
			struct cds_lfs_node *next = n->next;
			struct gw_endpoint *e = caa_container_of(n, struct gw_endpoint, free_node);

			tsan_found(e);
			e->free_next = w->free_list;
			w->free_list = e;
			n = next;
		}
		ep = w->free_list;
	}
	w->free_list = ep->free_next;
	return ep;
}

static void pool_put(struct gw_worker *w, struct gw_endpoint *ep)
{
	ep->free_next = w->free_list;
	w->free_list = ep;
}

static bool endpoint_is(const struct gw_endpoint *ep, uint8_t tenant, int family,
			const void *addr)
{
	return ep->tenant == tenant && ep->family == family && addr_equal(&ep->addr, addr, family);
}

/*
 * The endpoint SITE's lane of W last learned, when it still is ADDR's and
 * in the table: one cache line read instead of a lookup's two or more.
 * A node taken from a pool is never in a hint until it is in the table; a
 * node that lost an add has family 0 and matches nothing.
 */
static struct gw_endpoint *remembered(struct gw_endpoint *ep, uint8_t tenant, int family,
				      const void *addr)
{
	if (!ep || cds_lfht_is_node_deleted(&ep->node))
		return NULL;
	cmm_smp_rmb();		/* what was written before the add, after its mark */
	return endpoint_is(ep, tenant, family, addr) ? ep : NULL;
}

static struct gw_endpoint *learned_hint(struct gw_worker *w, const struct gw_site *site,
					uint8_t tenant, int family, const void *addr)
{
	return remembered(site->lane[w->index].learned, tenant, family, addr);
}

void endpoint_hint_prefetch(const struct gw_worker *w, const struct gw_site *site)
{
	const struct gw_endpoint *ep = site->lane[w->index].learned;

	/* Only requested: a stale hint costs a line, never a fault. */
	if (ep)
		__builtin_prefetch(ep);
}

/* EP is ADDR's, and SITE's: note that it was seen now. */
static void endpoint_refresh(struct gw_worker *w, struct gw_endpoint *ep,
			     const struct gw_site *site)
{
	/* Touch shared lines only when something changed or a second passed. */
	uint64_t ref = site_ref(site);

	if (__atomic_load_n(&ep->site_ref, __ATOMIC_RELAXED) != ref)
		__atomic_store_n(&ep->site_ref, ref, __ATOMIC_RELAXED);
	if (w->now_ns - __atomic_load_n(&ep->last_seen_ns, __ATOMIC_RELAXED) > NSEC_PER_SEC)
		__atomic_store_n(&ep->last_seen_ns, w->now_ns, __ATOMIC_RELAXED);
}

/* HASH's set in W's endpoint cache, and its tag there (never 0: empty). */
static struct gw_endpoint_cache_set *cache_set_of(const struct gw_worker *w, unsigned long hash,
						  uint32_t *tag)
{
	*tag = (uint32_t)(hash >> 32) | 1;
	return &w->endpoint_cache[hash % GW_ENDPOINT_CACHE_SETS];
}

/* The endpoint a way of SET under TAG holds for ADDR, if it still is ADDR's; counted. */
static struct gw_endpoint *cache_find(struct gw_worker *w, const struct gw_endpoint_cache_set *set,
				      uint32_t tag, uint8_t tenant, int family, const void *addr)
{
	struct gw_endpoint *ep;

	for (unsigned i = 0; i < GW_ENDPOINT_CACHE_WAYS; i++) {
		if (set->tag[i] == tag && (ep = remembered(set->ep[i], tenant, family, addr))) {
			w->endpoint_cache_hits++;
			return ep;
		}
	}
	return NULL;
}

/* EP in SET under TAG: the way that had the tag, else an empty one, else one by the tag. */
static void cache_put(struct gw_endpoint_cache_set *set, uint32_t tag, struct gw_endpoint *ep)
{
	unsigned i;

	for (i = 0; i < GW_ENDPOINT_CACHE_WAYS && set->tag[i] != tag; i++)
		;
	for (unsigned j = 0; i == GW_ENDPOINT_CACHE_WAYS && j < GW_ENDPOINT_CACHE_WAYS; j++)
		if (set->tag[j] == 0)
			i = j;
	if (i == GW_ENDPOINT_CACHE_WAYS)
		i = (tag >> 8) % GW_ENDPOINT_CACHE_WAYS;
	set->tag[i] = tag;
	set->ep[i] = ep;
}

void endpoint_learn(struct gw_worker *w, uint8_t tenant, int family, const void *addr,
		    struct gw_site *site)
{
	struct gw *gw = w->gw;
	unsigned long hash;
	struct endpoint_key key = { tenant, (uint8_t)family, addr };
	struct gw_endpoint_cache_set *set;
	uint32_t tag;
	struct gw_endpoint *ep = learned_hint(w, site, tenant, family, addr);

	if (ep) {
		endpoint_refresh(w, ep, site);
		return;
	}
	hash = hash_endpoint(tenant, family, addr);
	set = cache_set_of(w, hash, &tag);
	ep = cache_find(w, set, tag, tenant, family, addr);
	if (!ep && (ep = table_find(gw, hash, tenant, family, addr)))
		cache_put(set, tag, ep);
	if (ep) {
		endpoint_refresh(w, ep, site);
		site->lane[w->index].learned = ep;
		return;
	}
	ep = pool_take(w);
	if (!ep)
		return;
	ep->tenant = tenant;
	ep->family = (uint8_t)family;
	memset(&ep->addr, 0, sizeof(ep->addr));
	memcpy(&ep->addr, addr, family == AF_INET ? 4 : 16);
	ep->site_ref = site_ref(site);
	ep->last_seen_ns = w->now_ns;
	cds_lfht_node_init(&ep->node);
	tsan_publish(ep);
	if (cds_lfht_add_unique(gw->endpoints, hash, match_endpoint, &key, &ep->node) !=
	    &ep->node) {
		ep->family = 0;		/* never in the table: no hint may match it */
		pool_put(w, ep);
		return;
	}
	site->lane[w->index].learned = ep;
	cache_put(set, tag, ep);
}

struct gw_site *endpoint_find(struct gw_worker *w, uint8_t tenant, int family, const void *addr)
{
	unsigned long hash = hash_endpoint(tenant, family, addr);
	uint32_t tag;
	struct gw_endpoint_cache_set *set = cache_set_of(w, hash, &tag);
	struct gw_endpoint *ep = cache_find(w, set, tag, tenant, family, addr);

	if (!ep && (ep = table_find(w->gw, hash, tenant, family, addr)))
		cache_put(set, tag, ep);
	return endpoint_site(w->gw, ep);
}

void endpoint_cache_set(struct gw_worker *w, struct gw_rx *rx)
{
	const uint8_t *inner = rx->g.inner;

	rx->ep_set = NULL;
	if (!rx->site || rx->reason)
		return;
	if (rx->g.proto == GRE_PROTO_IPV4 && rx->g.inner_len >= 20 && inner[0] >> 4 == 4)
		rx->ep_set = cache_set_of(w, hash_endpoint(rx->site->tenant, AF_INET, inner + 12),
					  &rx->ep_tag);
	else if (rx->g.proto == GRE_PROTO_IPV6 && rx->g.inner_len >= 40 && inner[0] >> 4 == 6)
		rx->ep_set = cache_set_of(w, hash_endpoint(rx->site->tenant, AF_INET6, inner + 8),
					  &rx->ep_tag);
	if (rx->ep_set)
		__builtin_prefetch(rx->ep_set);
}

void endpoint_cache_probe(const struct gw_rx *rx)
{
	const struct gw_endpoint_cache_set *set = rx->ep_set;

	if (!set)
		return;
	for (unsigned i = 0; i < GW_ENDPOINT_CACHE_WAYS; i++)
		if (set->tag[i] == rx->ep_tag && set->ep[i])
			__builtin_prefetch(set->ep[i]);
}

/*
 * BYTES of a worker's private memory, zeroed: one anonymous mapping that
 * asks for huge pages, every page touched now so that the per-packet path
 * never takes a page fault in it. NULL and errno set on failure.
 */
static void *worker_map(size_t bytes)
{
	void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED)
		return NULL;
	madvise(map, bytes, MADV_HUGEPAGE);
	memset(map, 0, bytes);
	return map;
}

int endpoint_cache_init(struct gw_worker *w)
{
	w->endpoint_cache = worker_map(GW_ENDPOINT_CACHE_SETS * sizeof(*w->endpoint_cache));
	return w->endpoint_cache ? 0 : -errno;
}

void endpoint_cache_free(struct gw_worker *w)
{
	if (w->endpoint_cache)
		munmap(w->endpoint_cache, GW_ENDPOINT_CACHE_SETS * sizeof(*w->endpoint_cache));
	w->endpoint_cache = NULL;
}

static void endpoint_free_rcu(struct rcu_head *head)
{
	struct gw_endpoint *ep = caa_container_of(head, struct gw_endpoint, rcu);
	struct __cds_lfs_stack *owner;

	tsan_after_grace();
	owner = ep->owner;
	tsan_publish(ep);	/* to its owner, who pops it */
	tsan_before_grace();	/* kept, not freed: rcu_barrier() waits for this */
	cds_lfs_push(owner, &ep->free_node);
}

unsigned endpoint_age(struct gw *gw, uint64_t now_ns, uint64_t idle_ns)
{
	struct cds_lfht_iter iter;
	struct gw_endpoint *ep;
	unsigned n = 0;

	rcu_read_lock();
	cds_lfht_for_each_entry(gw->endpoints, &iter, ep, node) {
		uint64_t seen;
		bool idle;

		tsan_found(ep);
		seen = __atomic_load_n(&ep->last_seen_ns, __ATOMIC_RELAXED);
		idle = now_ns > seen && now_ns - seen > idle_ns;

		if (!idle && site_by_ref(gw, __atomic_load_n(&ep->site_ref, __ATOMIC_RELAXED)))
			continue;
		if (cds_lfht_del(gw->endpoints, &ep->node) == 0) {
			call_rcu(&ep->rcu, endpoint_free_rcu);
			n++;
		}
	}
	rcu_read_unlock();
	return n;
}

/*
 * The pool is one anonymous mapping (zeroed, page aligned, so every
 * endpoint starts a cache line): 16 MiB that the workers touch at random,
 * so it asks for huge pages, one TLB entry per 2 MiB (a hint: without them
 * it works the same, slower).
 */
static size_t pool_bytes(void)
{
	return (size_t)GW_ENDPOINTS_PER_WORKER * sizeof(struct gw_endpoint);
}

int endpoint_pool_init(struct gw_worker *w)
{
	w->pool = worker_map(pool_bytes());
	if (!w->pool)
		return -errno;
	__cds_lfs_init(&w->returned);
	w->free_list = NULL;
	for (unsigned i = GW_ENDPOINTS_PER_WORKER; i-- > 0;) {
		w->pool[i].owner = &w->returned;
		pool_put(w, &w->pool[i]);
	}
	return 0;
}

void endpoint_pool_free(struct gw_worker *w)
{
	if (w->pool)
		munmap(w->pool, pool_bytes());
	w->pool = NULL;
	w->free_list = NULL;
}

/*
 * The site cache (gateway.h). Sets enough for twice the slots in ways, at
 * least 64 and at most 2^17 sets (8 MiB): at 100,000 sites a set holds 1.5
 * tunnels on average and more than four in about 2 % of sets. Like the
 * pool, from worker_map.
 */
#define SITE_CACHE_SETS_MIN	64u
#define SITE_CACHE_SETS_MAX	(1u << 17)

static size_t site_cache_bytes(const struct gw_worker *w)
{
	return ((size_t)w->site_cache_mask + 1) * sizeof(struct gw_site_cache_set);
}

int site_cache_init(struct gw_worker *w)
{
	uint32_t want = w->gw->shm.hdr->site_capacity / (GW_SITE_CACHE_WAYS / 2), sets;

	for (sets = SITE_CACHE_SETS_MIN; sets < want && sets < SITE_CACHE_SETS_MAX; sets <<= 1)
		;
	w->site_cache_mask = sets - 1;
	w->site_cache = worker_map(site_cache_bytes(w));
	return w->site_cache ? 0 : -errno;
}

void site_cache_free(struct gw_worker *w)
{
	if (w->site_cache)
		munmap(w->site_cache, site_cache_bytes(w));
	w->site_cache = NULL;
}

static uint64_t tunnel_hash(const struct gre_packet *g)
{
	return hash_mix((uint64_t)g->key << 32 | g->src.s_addr);
}

/* Whether a way holds G's tunnel (a packet without a key parses with key 0). */
static bool way_holds(const struct gw_site_cache_set *set, unsigned i, const struct gre_packet *g)
{
	return set->way[i].source == g->src.s_addr && set->way[i].key == g->key;
}

void site_cache_set(struct gw_worker *w, struct gw_rx *rx)
{
	if (rx->g.src.s_addr == 0)
		return;
	rx->set = &w->site_cache[tunnel_hash(&rx->g) & w->site_cache_mask];
	__builtin_prefetch(rx->set);
}

void site_cache_probe(struct gw_worker *w, struct gw_rx *rx)
{
	const struct gw_site_cache_set *set = rx->set;

	if (!set)
		return;
	for (unsigned i = 0; i < GW_SITE_CACHE_WAYS; i++) {
		if (way_holds(set, i, &rx->g)) {
			rx->ref = set->way[i].ref;
			rx->cached = true;
			__builtin_prefetch(&w->gw->by_slot[rx->ref & REF_SLOT_MASK]);
			return;
		}
	}
}

void site_cache_fetch(struct gw_worker *w, struct gw_rx *rx)
{
	if (!rx->cached)
		return;
	rx->site = slot_site(w->gw, rx->ref);
	if (rx->site)
		__builtin_prefetch(rx->site);
}

struct gw_site *site_cache_site(const struct gw_rx *rx)
{
	const struct gw_site *site = rx->site;

	if (!site || site_ref(site) != rx->ref || site->source_ip.s_addr != rx->g.src.s_addr ||
	    !site_takes_key(site, rx->g.has_key, rx->g.key))
		return NULL;
	return rx->site;
}

void site_cache_put(struct gw_worker *w, const struct gw_rx *rx, const struct gw_site *site)
{
	struct gw_site_cache_set *set = rx->set;
	unsigned i;

	if (!set)
		return;
	/* The tunnel's own way if the set holds a stale one, else an empty one. */
	for (i = 0; i < GW_SITE_CACHE_WAYS && !way_holds(set, i, &rx->g); i++)
		;
	for (unsigned j = 0; i == GW_SITE_CACHE_WAYS && j < GW_SITE_CACHE_WAYS; j++)
		if (set->way[j].source == 0)
			i = j;
	/* A full set gives up a way picked by the hash's high bits: no state to keep. */
	if (i == GW_SITE_CACHE_WAYS)
		i = (unsigned)(tunnel_hash(&rx->g) >> 32) % GW_SITE_CACHE_WAYS;
	set->way[i].source = rx->g.src.s_addr;
	set->way[i].key = rx->g.key;
	set->way[i].ref = site_ref(site);
}
