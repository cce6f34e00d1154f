/*
 * Unit tests of statsd/collect.c: rates, states, events, the scan over a
 * real shared-memory file, and the layout tests/e2e/shmlayout.py assumes.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/timeutil.h"
#include "statsd/collect.h"
#include "statsd/http.h"

#define SEC		NSEC_PER_SEC
#define T0		(1764770000ULL * SEC)	/* a realtime "now" */

static const struct collect_limits lim = { .keepalive_window_s = 60, .tunnel_idle_s = 1800 };

static void test_rate_normal(void)
{
	struct collect_rate r;

	collect_rate_reset(&r, 1000);
	collect_rate_update(&r, 1000 + 125000, SEC);	/* 1 Mbit in 1 s */
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 1000.0, 1e-9);
	collect_rate_update(&r, 1000 + 125000 + 62500, SEC / 2);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 1000.0, 1e-9);
	CU_ASSERT_EQUAL(r.last, 1000 + 125000 + 62500);
}

static void test_rate_backwards(void)
{
	struct collect_rate r;

	collect_rate_reset(&r, 5000000);
	collect_rate_update(&r, 6000000, SEC);
	CU_ASSERT(r.kbps > 0);
	/* Shared memory recreated: the counter restarts lower. */
	collect_rate_update(&r, 100, SEC);
	CU_ASSERT_EQUAL(r.kbps, 0);
	CU_ASSERT_EQUAL(r.kbps_avg, 0);
	CU_ASSERT_EQUAL(r.last, 100);
	collect_rate_update(&r, 100 + 1250, SEC);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 10.0, 1e-9);
}

static void test_rate_clock(void)
{
	struct collect_rate r;

	collect_rate_reset(&r, 0);
	collect_rate_update(&r, 125000, SEC);
	/* No monotonic time passed: nothing changes, nothing divides by 0. */
	collect_rate_update(&r, 250000, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 1000.0, 1e-9);
	CU_ASSERT_EQUAL(r.last, 125000);
	/* The next sample covers both intervals. */
	collect_rate_update(&r, 375000, SEC);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 2000.0, 1e-9);
	/* An hour between scans (a stall, a suspend): the mean over the hour. */
	collect_rate_update(&r, 375000 + 450000000ULL, 3600 * SEC);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps, 1000.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps_avg, 1000.0, 0.01);
	CU_ASSERT(isfinite(r.kbps_avg));
}

static void test_rate_average(void)
{
	struct collect_rate r;
	uint64_t v = 0;

	collect_rate_reset(&r, 0);
	for (int i = 0; i < COLLECT_AVG_WINDOW_S; i++) {
		v += 125000;
		collect_rate_update(&r, v, SEC);
	}
	/* One window of a constant rate: 1 - 1/e of the way there. */
	CU_ASSERT_DOUBLE_EQUAL(r.kbps_avg, 1000.0 * (1 - exp(-1)), 1.0);
	for (int i = 0; i < 4 * COLLECT_AVG_WINDOW_S; i++) {
		v += 125000;
		collect_rate_update(&r, v, SEC);
	}
	CU_ASSERT_DOUBLE_EQUAL(r.kbps_avg, 1000.0, 10.0);
	/* Traffic stops: the average decays, the last interval is 0 at once. */
	for (int i = 0; i < COLLECT_AVG_WINDOW_S; i++)
		collect_rate_update(&r, v, SEC);
	CU_ASSERT_EQUAL(r.kbps, 0);
	CU_ASSERT_DOUBLE_EQUAL(r.kbps_avg, 1000.0 * exp(-1), 10.0);
}

static void test_age(void)
{
	CU_ASSERT_EQUAL(collect_age_ns(T0, T0 - 5 * SEC), 5 * SEC);
	CU_ASSERT_EQUAL(collect_age_ns(T0, T0 + 5 * SEC), 0);	/* clock stepped back */
	CU_ASSERT_EQUAL(collect_age_ns(T0, 0), T0);
}

static void test_states(void)
{
	CU_ASSERT_EQUAL(collect_keepalive_state(false, T0, T0, 60), COLLECT_KA_OFF);
	CU_ASSERT_EQUAL(collect_keepalive_state(true, 0, T0, 60), COLLECT_KA_NOT_SEEN);
	CU_ASSERT_EQUAL(collect_keepalive_state(true, T0 - 59 * SEC, T0, 60), COLLECT_KA_SEEN);
	CU_ASSERT_EQUAL(collect_keepalive_state(true, T0 - 60 * SEC, T0, 60),
			COLLECT_KA_NOT_SEEN);
	CU_ASSERT_EQUAL(collect_keepalive_state(true, T0 + 30 * SEC, T0, 60), COLLECT_KA_SEEN);
	CU_ASSERT_EQUAL(collect_tunnel_state(0, T0, 1800), COLLECT_TUNNEL_IDLE);
	CU_ASSERT_EQUAL(collect_tunnel_state(T0 - 10 * SEC, T0, 1800),
			COLLECT_TUNNEL_ESTABLISHED);
	CU_ASSERT_EQUAL(collect_tunnel_state(T0 - 1800 * SEC, T0, 1800), COLLECT_TUNNEL_IDLE);

	CU_ASSERT_EQUAL(collect_site_status(false, true, COLLECT_KA_SEEN,
					    COLLECT_TUNNEL_ESTABLISHED), COLLECT_DISABLED);
	CU_ASSERT_EQUAL(collect_site_status(true, true, COLLECT_KA_SEEN, COLLECT_TUNNEL_IDLE),
			COLLECT_UP);
	/* With keepalives, traffic alone does not make a site up. */
	CU_ASSERT_EQUAL(collect_site_status(true, true, COLLECT_KA_NOT_SEEN,
					    COLLECT_TUNNEL_ESTABLISHED), COLLECT_DOWN);
	CU_ASSERT_EQUAL(collect_site_status(true, false, COLLECT_KA_OFF,
					    COLLECT_TUNNEL_ESTABLISHED), COLLECT_UP);
	CU_ASSERT_EQUAL(collect_site_status(true, false, COLLECT_KA_OFF, COLLECT_TUNNEL_IDLE),
			COLLECT_DOWN);
	CU_ASSERT_STRING_EQUAL(collect_keepalive_name(COLLECT_KA_NOT_SEEN), "not seen");
	CU_ASSERT_EQUAL(collect_status_parse("disabled"), COLLECT_DISABLED);
	CU_ASSERT_EQUAL(collect_status_parse("sideways"), -1);
}

static struct collect_state st(int status, int ka, int tunnel)
{
	return (struct collect_state){ .status = status, .keepalive = ka, .tunnel = tunnel };
}

static void test_derive_events(void)
{
	const char *types[COLLECT_MAX_EVENTS];
	unsigned n;

	n = collect_derive_events(st(COLLECT_DOWN, COLLECT_KA_NOT_SEEN, COLLECT_TUNNEL_IDLE),
				  st(COLLECT_UP, COLLECT_KA_SEEN, COLLECT_TUNNEL_ESTABLISHED),
				  types);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(types[0], "tunnel.established");
	CU_ASSERT_STRING_EQUAL(types[1], "keepalive.seen");
	CU_ASSERT_STRING_EQUAL(types[2], "site.up");

	n = collect_derive_events(st(COLLECT_UP, COLLECT_KA_SEEN, COLLECT_TUNNEL_ESTABLISHED),
				  st(COLLECT_DOWN, COLLECT_KA_NOT_SEEN,
				     COLLECT_TUNNEL_ESTABLISHED), types);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(types[0], "keepalive.not_seen");
	CU_ASSERT_STRING_EQUAL(types[1], "site.down");

	n = collect_derive_events(st(COLLECT_UP, COLLECT_KA_OFF, COLLECT_TUNNEL_ESTABLISHED),
				  st(COLLECT_DOWN, COLLECT_KA_OFF, COLLECT_TUNNEL_IDLE), types);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(types[0], "tunnel.expired");
	CU_ASSERT_STRING_EQUAL(types[1], "site.down");

	/* Disabling is gatewayd's event, not a site.down. */
	n = collect_derive_events(st(COLLECT_UP, COLLECT_KA_SEEN, COLLECT_TUNNEL_ESTABLISHED),
				  st(COLLECT_DISABLED, COLLECT_KA_SEEN,
				     COLLECT_TUNNEL_ESTABLISHED), types);
	CU_ASSERT_EQUAL(n, 0);
	n = collect_derive_events(st(COLLECT_UP, COLLECT_KA_SEEN, COLLECT_TUNNEL_IDLE),
				  st(COLLECT_UP, COLLECT_KA_SEEN, COLLECT_TUNNEL_IDLE), types);
	CU_ASSERT_EQUAL(n, 0);
}

static void make_site(struct shm_site_id *id, const char *name, bool keepalive)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->name, sizeof(id->name), "%s", name);
	id->enabled = 1;
	id->keepalive = keepalive;
}

static void test_site_update(void)
{
	struct collect_site s = { 0 };
	struct shm_site_totals t = { 0 };
	struct shm_site_id id;
	const char *types[COLLECT_MAX_EVENTS];
	unsigned n;

	make_site(&id, "branch-1", true);
	t.rx_bytes = 1000;
	t.last_keepalive_ns = T0 - SEC;
	t.last_seen_ns = T0 - SEC;
	/* First sample: a baseline, no events even though the site is up. */
	n = collect_site_update(&s, true, &id, 7, &t, SEC, T0, &lim, types);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT(s.changed);
	CU_ASSERT_EQUAL(s.state.status, COLLECT_UP);
	CU_ASSERT_EQUAL(s.rx.kbps, 0);

	s.changed = false;
	t.rx_bytes += 125000;
	n = collect_site_update(&s, true, &id, 7, &t, SEC, T0 + SEC, &lim, types);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_FALSE(s.changed);
	CU_ASSERT_DOUBLE_EQUAL(s.rx.kbps, 1000.0, 1e-9);

	/* gatewayd restarted between two samples: same slot, counters go on. */
	t.rx_bytes += 125000;
	n = collect_site_update(&s, true, &id, 7, &t, SEC, T0 + 2 * SEC, &lim, types);
	CU_ASSERT_DOUBLE_EQUAL(s.rx.kbps, 1000.0, 1e-9);

	/* Keepalives stop: after the window, not seen and down, once. */
	n = collect_site_update(&s, true, &id, 7, &t, SEC, T0 + 61 * SEC, &lim, types);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(types[0], "keepalive.not_seen");
	CU_ASSERT_STRING_EQUAL(types[1], "site.down");
	CU_ASSERT(s.changed);
	n = collect_site_update(&s, true, &id, 7, &t, SEC, T0 + 62 * SEC, &lim, types);
	CU_ASSERT_EQUAL(n, 0);

	/* Another site in the slot: a baseline again, even with big counters. */
	make_site(&id, "branch-2", true);
	t.rx_bytes = 999999999;
	n = collect_site_update(&s, true, &id, 8, &t, SEC, T0 + 63 * SEC, &lim, types);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(s.rx.kbps, 0);
	CU_ASSERT_EQUAL(s.generation, 8);
	CU_ASSERT_STRING_EQUAL(s.id.name, "branch-2");

	/* The slot is freed. */
	n = collect_site_update(&s, false, &id, 8, &t, SEC, T0 + 64 * SEC, &lim, types);
	CU_ASSERT_FALSE(s.in_use);
}

/* The offsets tests/e2e/shmlayout.py hard-codes. */
static void test_layout(void)
{
	CU_ASSERT_EQUAL(offsetof(struct shm_header, lanes), 12);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, site_capacity), 24);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, site_stride), 28);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, sites_offset), 40);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, pop), 64);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, accept_mode), 0);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, site_generation), 8);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, healthd_heartbeat_ns), 16);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, statsd_heartbeat_ns), 24);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, service), 40);
	CU_ASSERT_EQUAL(sizeof(struct shm_service_state), 32);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop, lane), 128);
	CU_ASSERT_EQUAL(sizeof(struct shm_pop_lane), 256);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop_lane, drops), 32);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop_lane, unsupported_proto), 168);
	CU_ASSERT_EQUAL(offsetof(struct shm_pop_lane, rx_queue_drops), 208);
	CU_ASSERT_EQUAL(sizeof(struct shm_header), 2240);
	CU_ASSERT_EQUAL(offsetof(struct shm_site, seq), 0);
	CU_ASSERT_EQUAL(offsetof(struct shm_site, in_use), 4);
	CU_ASSERT_EQUAL(offsetof(struct shm_site, generation), 8);
	CU_ASSERT_EQUAL(offsetof(struct shm_site, id), 16);
	CU_ASSERT_EQUAL(offsetof(struct shm_site, lane), 128);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, source_ip), 64);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, key), 68);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, has_key), 97);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, enabled), 98);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, keepalive), 99);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, traffic_type), 100);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, services), 101);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_id, tenant), 102);
	CU_ASSERT_EQUAL(sizeof(struct shm_site_lane), 192);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, keepalives), 32);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, probes), 40);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, drops), 48);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, last_keepalive_ns), 160);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, last_user_ns), 168);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, last_seen_ns), 176);
	CU_ASSERT_EQUAL(offsetof(struct shm_site_lane, established_ns), 184);
	CU_ASSERT_EQUAL(SHM_DROP_SITE_COUNT, 14);
	CU_ASSERT_EQUAL(SHM_DROP_COUNT, 17);
}

struct seen_events {
	unsigned n;
	char types[8][32];
};

static void record_event(void *arg, const char *type, const struct collect_site *s,
			 uint64_t time_ns)
{
	struct seen_events *e = arg;

	if (e->n < 8)
		snprintf(e->types[e->n++], sizeof(e->types[0]), "%s", type);
}

/* A real segment with two sites, scanned twice. */
static void test_scan(void)
{
	char dir[] = "/tmp/test_statsd_collect.XXXXXX", path[64];
	struct conf conf = { .keepalive_window_s = 60, .tunnel_idle_s = 1800,
			     .health_interval_ms = 1000, .n_tenants = 1 };
	struct seen_events ev = { 0 };
	struct collect c;
	struct shm shm;
	struct shm_site *a, *b;
	uint64_t now = now_realtime_ns();
	json_t *o;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&shm, path, 4, 2), 0);
	strcpy(conf.pop_name, "fra1");
	strcpy(conf.tenants[0].name, "default");
	a = shm_site_at(&shm, 0);
	b = shm_site_at(&shm, 2);
	make_site(&a->id, "alpha", true);
	a->in_use = 1;
	a->generation = 1;
	a->lane[1].last_keepalive_ns = now;
	a->lane[0].rx_bytes = 100;
	a->lane[1].rx_bytes = 200;
	a->lane[0].drops[SHM_DROP_RATE] = 3;
	make_site(&b->id, "beta", false);
	b->id.enabled = 0;
	b->in_use = 1;
	b->generation = 1;
	shm.hdr->pop.lane[0].drops[SHM_DROP_UNKNOWN_SOURCE] = 5;
	shm.hdr->pop.healthd_heartbeat_ns = now;

	CU_ASSERT_EQUAL_FATAL(collect_init(&c, &shm, &conf), 0);
	collect_scan(&c, 1 * SEC, now, record_event, &ev);
	CU_ASSERT_EQUAL(ev.n, 0);
	CU_ASSERT_EQUAL(c.pop.total, 2);
	CU_ASSERT_EQUAL(c.pop.up, 1);
	CU_ASSERT_EQUAL(c.pop.disabled, 1);
	CU_ASSERT_EQUAL(c.pop.totals.rx_bytes, 300);
	CU_ASSERT_EQUAL(c.pop.totals.drops[SHM_DROP_RATE], 3);
	CU_ASSERT_EQUAL(c.pop.totals.drops[SHM_DROP_UNKNOWN_SOURCE], 5);
	CU_ASSERT(collect_healthd_alive(&c));

	/* Two seconds on, 250 kB more: 1000 kbps; keepalive then ages out. */
	a->lane[0].rx_bytes += 250000;
	collect_scan(&c, 3 * SEC, now + 61 * SEC, record_event, &ev);
	CU_ASSERT_DOUBLE_EQUAL(c.site[0].rx.kbps, 1000.0, 1e-6);
	CU_ASSERT_EQUAL_FATAL(ev.n, 2);
	CU_ASSERT_STRING_EQUAL(ev.types[0], "keepalive.not_seen");
	CU_ASSERT_STRING_EQUAL(ev.types[1], "site.down");
	CU_ASSERT_FALSE(collect_healthd_alive(&c));

	o = collect_site_json(&c, 0, 42);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "status")), "down");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "keepalive_status")),
			       "not seen");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "seq")), 42);
	CU_ASSERT_EQUAL(json_real_value(json_object_get(o, "rx_kbps")), 1000.0);
	CU_ASSERT(json_is_null(json_object_get(o, "last_user_traffic")));
	CU_ASSERT(json_is_null(json_object_get(o, "key")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(o, "drops"),
							   "rate")), 3);
	json_decref(o);
	CU_ASSERT_PTR_NULL(collect_site_json(&c, 1, 0));
	o = collect_pop_json(&c, 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "healthd")), "stale");
	json_decref(o);

	collect_free(&c);
	shm_detach(&shm);
	unlink(path);
	rmdir(dir);
}

static void test_query(void)
{
	struct http_site_query q;
	char err[160];

	http_site_query_init(&q);
	CU_ASSERT_EQUAL(q.per_page, HTTP_PER_PAGE_DEFAULT);
	CU_ASSERT(http_site_query_set(&q, "status", "up", err, sizeof(err)));
	CU_ASSERT_EQUAL(q.status, COLLECT_UP);
	CU_ASSERT(http_site_query_set(&q, "traffic_type", "guest-wifi", err, sizeof(err)));
	CU_ASSERT(http_site_query_set(&q, "page", "3", err, sizeof(err)));
	CU_ASSERT_EQUAL(q.page, 3);
	CU_ASSERT_FALSE(http_site_query_set(&q, "status", "sideways", err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "page", "0", err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "page", "-1", err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "page", "2x", err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "per_page", "1001", err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "per_page", NULL, err, sizeof(err)));
	CU_ASSERT_FALSE(http_site_query_set(&q, "color", "red", err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "color"));
}

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("statsd_collect", NULL, NULL);
	CU_add_test(suite, "rate: normal", test_rate_normal);
	CU_add_test(suite, "rate: counter backwards", test_rate_backwards);
	CU_add_test(suite, "rate: monotonic delta 0 and huge", test_rate_clock);
	CU_add_test(suite, "rate: 5-minute average", test_rate_average);
	CU_add_test(suite, "age: clamped", test_age);
	CU_add_test(suite, "status, keepalive, tunnel", test_states);
	CU_add_test(suite, "event derivation", test_derive_events);
	CU_add_test(suite, "site update: baseline, generation, restart", test_site_update);
	CU_add_test(suite, "shared-memory layout of shmlayout.py", test_layout);
	CU_add_test(suite, "scan of a real segment", test_scan);
	CU_add_test(suite, "sites API query validation", test_query);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
