#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/timeutil.h"
#include "statsd/collect.h"

uint64_t collect_age_ns(uint64_t now_ns, uint64_t then_ns)
{
	return then_ns > now_ns ? 0 : now_ns - then_ns;
}

void collect_rate_reset(struct collect_rate *r, uint64_t value)
{
	r->last = value;
	r->kbps = 0;
	r->kbps_avg = 0;
}

void collect_rate_update(struct collect_rate *r, uint64_t value, uint64_t dt_ns)
{
	double alpha;

	if (value < r->last) {
		collect_rate_reset(r, value);
		return;
	}
	if (dt_ns == 0)
		return;
	/* bytes * 8 bits / 1000 per kilobit, over dt_ns / 1e9 seconds */
	r->kbps = (double)(value - r->last) * 8e6 / (double)dt_ns;
	r->last = value;
	/* An exponential average whose weight follows the real interval. */
	alpha = 1.0 - exp(-(double)dt_ns / (COLLECT_AVG_WINDOW_S * 1e9));
	r->kbps_avg += alpha * (r->kbps - r->kbps_avg);
}

enum collect_keepalive collect_keepalive_state(bool keepalive, uint64_t last_keepalive_ns,
					       uint64_t now_ns, unsigned window_s)
{
	if (!keepalive)
		return COLLECT_KA_OFF;
	if (last_keepalive_ns == 0 ||
	    collect_age_ns(now_ns, last_keepalive_ns) >= (uint64_t)window_s * NSEC_PER_SEC)
		return COLLECT_KA_NOT_SEEN;
	return COLLECT_KA_SEEN;
}

enum collect_tunnel collect_tunnel_state(uint64_t last_seen_ns, uint64_t now_ns, unsigned idle_s)
{
	if (last_seen_ns == 0 ||
	    collect_age_ns(now_ns, last_seen_ns) >= (uint64_t)idle_s * NSEC_PER_SEC)
		return COLLECT_TUNNEL_IDLE;
	return COLLECT_TUNNEL_ESTABLISHED;
}

enum collect_status collect_site_status(bool enabled, bool keepalive,
					enum collect_keepalive ka, enum collect_tunnel tunnel)
{
	if (!enabled)
		return COLLECT_DISABLED;
	if (keepalive)
		return ka == COLLECT_KA_SEEN ? COLLECT_UP : COLLECT_DOWN;
	return tunnel == COLLECT_TUNNEL_ESTABLISHED ? COLLECT_UP : COLLECT_DOWN;
}

struct collect_state collect_state_of(const struct shm_site_id *id,
				      const struct shm_site_totals *t, uint64_t now_ns,
				      const struct collect_limits *lim)
{
	struct collect_state st;

	st.keepalive = collect_keepalive_state(id->keepalive, t->last_keepalive_ns, now_ns,
					       lim->keepalive_window_s);
	st.tunnel = collect_tunnel_state(t->last_seen_ns, now_ns, lim->tunnel_idle_s);
	st.status = collect_site_status(id->enabled, id->keepalive, st.keepalive, st.tunnel);
	return st;
}

unsigned collect_derive_events(struct collect_state before, struct collect_state after,
			       const char *types[COLLECT_MAX_EVENTS])
{
	unsigned n = 0;

	if (before.tunnel != after.tunnel)
		types[n++] = after.tunnel == COLLECT_TUNNEL_ESTABLISHED ?
			     "tunnel.established" : "tunnel.expired";
	/* To or from "off" is a configuration change, which gatewayd reports. */
	if (before.keepalive != after.keepalive && before.keepalive != COLLECT_KA_OFF &&
	    after.keepalive != COLLECT_KA_OFF)
		types[n++] = after.keepalive == COLLECT_KA_SEEN ? "keepalive.seen" :
			     "keepalive.not_seen";
	/* Likewise enabling and disabling: only up <-> down is derived here. */
	if (before.status != after.status && before.status != COLLECT_DISABLED &&
	    after.status != COLLECT_DISABLED)
		types[n++] = after.status == COLLECT_UP ? "site.up" : "site.down";
	return n;
}

unsigned collect_site_update(struct collect_site *s, bool in_use, const struct shm_site_id *id,
			     uint64_t generation, const struct shm_site_totals *t,
			     uint64_t dt_ns, uint64_t now_ns, const struct collect_limits *lim,
			     const char *types[COLLECT_MAX_EVENTS])
{
	struct collect_state st;
	unsigned n = 0;

	if (!in_use) {
		if (s->in_use)
			memset(s, 0, sizeof(*s));
		return 0;
	}
	st = collect_state_of(id, t, now_ns, lim);
	if (!s->in_use || s->generation != generation) {
		memset(s, 0, sizeof(*s));
		s->in_use = true;
		s->generation = generation;
		collect_rate_reset(&s->rx, t->rx_bytes);
		collect_rate_reset(&s->tx, t->tx_bytes);
		s->changed = true;
	} else {
		n = collect_derive_events(s->state, st, types);
		collect_rate_update(&s->rx, t->rx_bytes, dt_ns);
		collect_rate_update(&s->tx, t->tx_bytes, dt_ns);
		if (n > 0 || memcmp(&s->id, id, sizeof(*id)) != 0 ||
		    memcmp(&s->state, &st, sizeof(st)) != 0)
			s->changed = true;
	}
	s->id = *id;
	s->totals = *t;
	s->state = st;
	return n;
}

static const char *const status_names[] = { "down", "up", "disabled" };
static const char *const keepalive_names[] = { "not seen", "seen", "off" };
static const char *const tunnel_names[] = { "idle", "established" };

const char *collect_status_name(enum collect_status s)
{
	return (unsigned)s < 3 ? status_names[s] : "unknown";
}

const char *collect_keepalive_name(enum collect_keepalive k)
{
	return (unsigned)k < 3 ? keepalive_names[k] : "unknown";
}

const char *collect_tunnel_name(enum collect_tunnel t)
{
	return (unsigned)t < 2 ? tunnel_names[t] : "unknown";
}

int collect_status_parse(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

int collect_init(struct collect *c, const struct shm *shm, const struct conf *conf)
{
	memset(c, 0, sizeof(*c));
	c->shm = shm;
	c->conf = conf;
	c->n_slots = shm->hdr->site_capacity;
	c->site = calloc(c->n_slots, sizeof(*c->site));
	if (!c->site)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void collect_free(struct collect *c)
{
	if (!c->site)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->site);
	c->site = NULL;
}

void collect_lock(struct collect *c)
{
	pthread_mutex_lock(&c->lock);
}

void collect_unlock(struct collect *c)
{
	pthread_mutex_unlock(&c->lock);
}

void collect_set_conf(struct collect *c, const struct conf *conf)
{
	collect_lock(c);
	c->conf = conf;
	collect_unlock(c);
}

/* Add one site's figures to the POP's. */
static void collect_pop_add(struct collect_pop *pop, const struct collect_site *s)
{
	const struct shm_site_totals *t = &s->totals;
	unsigned type = s->id.traffic_type < SHM_TRAFFIC_COUNT ? s->id.traffic_type : 0;

	pop->total++;
	if (s->state.status == COLLECT_UP)
		pop->up++;
	else if (s->state.status == COLLECT_DOWN)
		pop->down++;
	else
		pop->disabled++;
	pop->totals.rx_packets += t->rx_packets;
	pop->totals.rx_bytes += t->rx_bytes;
	pop->totals.tx_packets += t->tx_packets;
	pop->totals.tx_bytes += t->tx_bytes;
	for (int d = 0; d < SHM_DROP_SITE_COUNT; d++)
		pop->totals.drops[d] += t->drops[d];
	pop->usage[type].sites++;
	pop->usage[type].rx_bytes += t->rx_bytes;
	pop->usage[type].tx_bytes += t->tx_bytes;
}

/* The POP-wide state: POP lanes for drops before a site is known, health. */
static void collect_pop_read(struct collect_pop *pop, const struct shm *shm)
{
	const struct shm_pop *p = &shm->hdr->pop;
	struct shm_pop_totals lanes;

	shm_pop_sum(shm, &lanes);
	for (int d = SHM_DROP_SITE_COUNT; d < SHM_DROP_COUNT; d++)
		pop->totals.drops[d] = lanes.drops[d];
	memcpy(pop->totals.unsupported_proto, lanes.unsupported_proto,
	       sizeof(lanes.unsupported_proto));
	pop->totals.rx_queue_drops = lanes.rx_queue_drops;
	pop->accept_mode = __atomic_load_n(&p->accept_mode, __ATOMIC_RELAXED);
	pop->healthd_heartbeat_ns = shm_load(&p->healthd_heartbeat_ns);
	for (int s = 0; s < SHM_SVC_COUNT; s++) {
		pop->service[s].health = __atomic_load_n(&p->service[s].health,
							 __ATOMIC_RELAXED);
		pop->service[s].since_ns = shm_load(&p->service[s].since_ns);
		pop->service[s].checks_ok = shm_load(&p->service[s].checks_ok);
		pop->service[s].checks_failed = shm_load(&p->service[s].checks_failed);
	}
}

void collect_scan(struct collect *c, uint64_t mono_ns, uint64_t real_ns, collect_event_fn event,
		  void *arg)
{
	struct collect_limits lim;
	uint64_t dt_ns;

	collect_lock(c);
	lim.keepalive_window_s = c->conf->keepalive_window_s;
	lim.tunnel_idle_s = c->conf->tunnel_idle_s;
	dt_ns = c->scans > 0 ? collect_age_ns(mono_ns, c->scan_mono_ns) : 0;
	memset(&c->pop, 0, sizeof(c->pop));
	for (uint32_t i = 0; i < c->n_slots; i++) {
		const struct shm_site *slot = shm_site_at(c->shm, i);
		struct collect_site *s = &c->site[i];
		const char *types[COLLECT_MAX_EVENTS];
		struct shm_site_totals t;
		struct shm_site_id id;
		uint64_t gen;
		bool in_use;
		unsigned n;

		in_use = shm_site_read_id(slot, &id, &gen);
		if (in_use)
			shm_site_sum(c->shm, slot, &t);
		n = collect_site_update(s, in_use, &id, gen, &t, dt_ns, real_ns, &lim, types);
		if (!in_use)
			continue;
		collect_pop_add(&c->pop, s);
		for (unsigned e = 0; e < n && event; e++)
			event(arg, types[e], s, real_ns);
	}
	collect_pop_read(&c->pop, c->shm);
	c->scans++;
	c->scan_mono_ns = mono_ns;
	c->scan_real_ns = real_ns;
	collect_unlock(c);
}

bool collect_healthd_alive(const struct collect *c)
{
	uint64_t hb = c->pop.healthd_heartbeat_ns;
	uint64_t limit = (uint64_t)COLLECT_HEALTHD_STALE * c->conf->health_interval_ms *
			 NSEC_PER_MSEC;

	return hb != 0 && collect_age_ns(c->scan_real_ns, hb) <= limit;
}

/* An ISO 8601 time, or null for "never". */
static json_t *json_time(uint64_t ns)
{
	char buf[32];

	if (ns == 0)
		return json_null();
	return json_string(time_format_iso(ns, buf, sizeof(buf)));
}

/* Kilobits per second to one decimal. */
static json_t *json_kbps(double kbps)
{
	return json_real(round(kbps * 10) / 10);
}

static json_t *json_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *json_ipv4(struct in_addr a)
{
	char buf[INET_ADDRSTRLEN];

	return json_string(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
}

static json_t *json_backup_pops(const struct conf *conf)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < conf->n_backup_pops; i++)
		json_array_append_new(a, json_string(conf->backup_pops[i]));
	return a;
}

void collect_add_common(const struct collect *c, json_t *obj, uint64_t seq, uint64_t time_ns)
{
	json_object_set_new(obj, "pop", json_string(c->conf->pop_name));
	json_object_set_new(obj, "seq", json_u64(seq));
	json_object_set_new(obj, "time", json_time(time_ns));
	json_object_set_new(obj, "time_ns", json_u64(time_ns));
}

static void site_json_identity(const struct collect *c, const struct shm_site_id *id,
			       json_t *o)
{
	const struct conf *conf = c->conf;
	const char *tenant = id->tenant < conf->n_tenants ? conf->tenants[id->tenant].name :
			     "unknown";

	json_object_set_new(o, "name", json_string(id->name));
	json_object_set_new(o, "source_ip", json_ipv4(id->source_ip));
	json_object_set_new(o, "tenant", json_string(tenant));
	json_object_set_new(o, "traffic_type",
			    json_string(shm_traffic_type_name(id->traffic_type)));
	json_object_set_new(o, "services", json_string(sites_services_name(id->services)));
	json_object_set_new(o, "enabled", json_boolean(id->enabled));
	json_object_set_new(o, "keepalive", json_boolean(id->keepalive));
	json_object_set_new(o, "key", id->has_key ? json_u64(id->key) : json_null());
	json_object_set_new(o, "pop_backup", json_backup_pops(conf));
}

static void site_json_counters(const struct collect_site *s, json_t *o)
{
	const struct shm_site_totals *t = &s->totals;
	json_t *drops = json_object();

	json_object_set_new(o, "rx_kbps", json_kbps(s->rx.kbps));
	json_object_set_new(o, "tx_kbps", json_kbps(s->tx.kbps));
	json_object_set_new(o, "rx_kbps_5m", json_kbps(s->rx.kbps_avg));
	json_object_set_new(o, "tx_kbps_5m", json_kbps(s->tx.kbps_avg));
	json_object_set_new(o, "rx_packets", json_u64(t->rx_packets));
	json_object_set_new(o, "rx_bytes", json_u64(t->rx_bytes));
	json_object_set_new(o, "tx_packets", json_u64(t->tx_packets));
	json_object_set_new(o, "tx_bytes", json_u64(t->tx_bytes));
	json_object_set_new(o, "keepalives", json_u64(t->keepalives));
	json_object_set_new(o, "probes", json_u64(t->probes));
	for (int d = 0; d < SHM_DROP_SITE_COUNT; d++)
		json_object_set_new(drops, shm_drop_name(d), json_u64(t->drops[d]));
	json_object_set_new(o, "drops", drops);
}

json_t *collect_site_json(const struct collect *c, uint32_t slot, uint64_t seq)
{
	const struct collect_site *s;
	json_t *o;

	if (slot >= c->n_slots || !c->site[slot].in_use)
		return NULL;
	s = &c->site[slot];
	o = json_object();
	collect_add_common(c, o, seq, c->scan_real_ns);
	site_json_identity(c, &s->id, o);
	json_object_set_new(o, "status", json_string(collect_status_name(s->state.status)));
	json_object_set_new(o, "keepalive_status",
			    json_string(collect_keepalive_name(s->state.keepalive)));
	json_object_set_new(o, "last_keepalive", json_time(s->totals.last_keepalive_ns));
	json_object_set_new(o, "last_user_traffic", json_time(s->totals.last_user_ns));
	json_object_set_new(o, "tunnel", json_string(collect_tunnel_name(s->state.tunnel)));
	json_object_set_new(o, "established_since",
			    json_time(s->state.tunnel == COLLECT_TUNNEL_ESTABLISHED ?
				      s->totals.established_ns : 0));
	site_json_counters(s, o);
	return o;
}

static json_t *pop_json_services(const struct collect_pop *pop)
{
	json_t *services = json_object();

	for (int i = 0; i < SHM_SVC_COUNT; i++) {
		json_t *svc = json_object();

		json_object_set_new(svc, "health",
				    json_string(shm_health_name(pop->service[i].health)));
		json_object_set_new(svc, "since", json_time(pop->service[i].since_ns));
		json_object_set_new(svc, "checks_ok", json_u64(pop->service[i].checks_ok));
		json_object_set_new(svc, "checks_failed", json_u64(pop->service[i].checks_failed));
		json_object_set_new(services, shm_service_name(i), svc);
	}
	return services;
}

static json_t *pop_json_totals(const struct collect_pop *pop)
{
	json_t *totals = json_object();
	json_t *drops = json_object();

	json_object_set_new(totals, "rx_packets", json_u64(pop->totals.rx_packets));
	json_object_set_new(totals, "rx_bytes", json_u64(pop->totals.rx_bytes));
	json_object_set_new(totals, "tx_packets", json_u64(pop->totals.tx_packets));
	json_object_set_new(totals, "tx_bytes", json_u64(pop->totals.tx_bytes));
	json_object_set_new(totals, "rx_queue_drops", json_u64(pop->totals.rx_queue_drops));
	for (int d = 0; d < SHM_DROP_COUNT; d++)
		json_object_set_new(drops, shm_drop_name(d), json_u64(pop->totals.drops[d]));
	json_object_set_new(totals, "drops", drops);
	return totals;
}

static json_t *pop_json_usage(const struct collect_pop *pop)
{
	json_t *usage = json_object();

	for (int i = 0; i < SHM_TRAFFIC_COUNT; i++) {
		json_t *u = json_object();

		json_object_set_new(u, "sites", json_integer(pop->usage[i].sites));
		json_object_set_new(u, "rx_bytes", json_u64(pop->usage[i].rx_bytes));
		json_object_set_new(u, "tx_bytes", json_u64(pop->usage[i].tx_bytes));
		json_object_set_new(usage, shm_traffic_type_name(i), u);
	}
	return usage;
}

json_t *collect_pop_json(const struct collect *c, uint64_t seq)
{
	const struct conf *conf = c->conf;
	const struct collect_pop *pop = &c->pop;
	json_t *o = json_object();
	json_t *sites = json_object();

	collect_add_common(c, o, seq, c->scan_real_ns);
	json_object_set_new(o, "name", json_string(conf->pop_name));
	json_object_set_new(o, "location", json_string(conf->location));
	json_object_set_new(o, "gateway_ip", json_ipv4(conf->gateway_ip));
	json_object_set_new(o, "probe_ip", conf->probe_ip.s_addr ? json_ipv4(conf->probe_ip) :
			    json_null());
	json_object_set_new(o, "backup_pops", json_backup_pops(conf));
	json_object_set_new(o, "accept_mode", json_string(shm_accept_name(pop->accept_mode)));
	json_object_set_new(o, "accepting_new_tunnels",
			    json_boolean(pop->accept_mode == SHM_ACCEPT_ACCEPT));
	json_object_set_new(o, "healthd", json_string(collect_healthd_alive(c) ? "alive" :
							"stale"));
	json_object_set_new(o, "healthd_heartbeat", json_time(pop->healthd_heartbeat_ns));
	json_object_set_new(o, "services", pop_json_services(pop));
	json_object_set_new(sites, "total", json_integer(pop->total));
	json_object_set_new(sites, "up", json_integer(pop->up));
	json_object_set_new(sites, "down", json_integer(pop->down));
	json_object_set_new(sites, "disabled", json_integer(pop->disabled));
	json_object_set_new(o, "sites", sites);
	json_object_set_new(o, "totals", pop_json_totals(pop));
	json_object_set_new(o, "usage", pop_json_usage(pop));
	return o;
}
