/*
 * The RCU tables under concurrency: two worker-like reader threads look up
 * sites, learn endpoints and look them up again inside RCU read-side
 * sections, while this (control) thread adds, removes and edits sites with
 * sitetab_apply and ages endpoints out, for a bounded number of rounds and
 * about four seconds (twelve at most on a loaded machine). Each reader
 * keeps only POOL endpoint nodes, so aged nodes come back to it after a
 * grace period and are learned again.
 *
 * A reader must only ever see the site configured for the source IP and key
 * it asked for, or nothing, and that site's shared-memory identity must
 * still be its own (a slot is cleared only after a grace period). Under
 * AddressSanitizer a site or endpoint used after it was freed fails the
 * test; under ThreadSanitizer so does any access not ordered after the
 * object's publication or before its free (make check runs the test in the
 * normal, AddressSanitizer and ThreadSanitizer builds; gatewayd/rcu_tsan.h
 * says how TSan learns liburcu's orderings).
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "lib/timeutil.h"

#define READERS		2
#define SOLO_SITES	12	/* s00..s11 on 198.18.1.1..12, no key */
#define PAIRS		4	/* p0-a/p0-b .. on 198.18.2.1..4, keys 1 and 2 */
_Static_assert(SOLO_SITES + 2 * PAIRS <= 32, "a site's index fits an address's low 5 bits");
#define ROUNDS		3000
#define MAX_NS		(4 * NSEC_PER_SEC)
/* On a loaded machine, go on past MAX_NS until this many rounds, or HARD_MAX_NS. */
#define MIN_ROUNDS	12
#define HARD_MAX_NS	(12 * NSEC_PER_SEC)
#define READER_LOOPS	50000000UL
#define POOL		4096	/* endpoints a reader may hold: aged ones come back */

static struct gw gw;
static struct gw_worker workers[READERS];
static char dir[] = "/tmp/grepop-rcu-XXXXXX";
static atomic_bool stop;

struct reader_stats {
	unsigned long lookups, hits, endpoint_hits, wrong_site, wrong_endpoint;
};

static struct reader_stats stats[READERS];

static void noop_changed(struct gw *g, const struct site_conf *a, const struct site_conf *b)
{
}

/* The name of the site configured for SOURCE (198.18.G.N) and KEY. */
static void expected_name(struct in_addr source, uint32_t key, char *buf, size_t len)
{
	uint32_t ip = ntohl(source.s_addr);

	if ((ip >> 8 & 0xff) == 1)
		snprintf(buf, len, "s%02u", (ip & 0xff) - 1);
	else
		snprintf(buf, len, "p%u-%c", (ip & 0xff) - 1, key == 1 ? 'a' : 'b');
}

static bool site_is(const struct gw_site *site, struct in_addr source, bool has_key,
		    uint32_t key)
{
	char want[SHM_NAME_MAX];
	struct shm_site_id id;

	expected_name(source, key, want, sizeof(want));
	if (site->conf.source_ip.s_addr != source.s_addr || site->conf.has_key != has_key ||
	    strcmp(site->conf.name, want) != 0)
		return false;
	/* The slot stays the site's until a grace period after it left. */
	return shm_site_read_id(site->shm, &id, NULL) && strcmp(id.name, want) == 0;
}

/* Site I of the test: a solo site or one of a pair. */
static void site_source(unsigned i, struct in_addr *source, bool *has_key, uint32_t *key)
{
	if (i < SOLO_SITES) {
		source->s_addr = htonl(0xc6120100 | (i + 1));
		*has_key = false;
		*key = 0;
		return;
	}
	i -= SOLO_SITES;
	source->s_addr = htonl(0xc6120200 | (i / 2 + 1));
	*has_key = true;
	*key = i % 2 + 1;
}

/* One packet's worth of table work for reader T: lookup, learn, look up again. */
static void reader_step(struct gw_worker *w, struct reader_stats *st, unsigned i, uint32_t n)
{
	struct gw_site *site, *other = NULL, *back;
	struct in_addr source, inner;
	uint32_t key;
	bool has_key;

	site_source(i, &source, &has_key, &key);
	/*
	 * Mostly addresses of this reader's own (bits 22-23 are the reader, the
	 * low 5 bits name the site) that keep the pools turning; every eighth
	 * packet the site's 10.255.0.I, which both readers learn again and
	 * again while the control thread ages it (the path that updates an
	 * endpoint in place).
	 */
	if (n % 8 == 0)
		inner.s_addr = htonl(0x0aff0000u | i);
	else
		inner.s_addr = htonl(0x0a000000u | (uint32_t)w->index << 22 |
				     (n & 0x1ffff) << 5 | i);
	rcu_read_lock();
	st->lookups++;
	site = sitetab_lookup(w->gw, source, has_key, key, &other);
	if (site) {
		st->hits++;
		st->wrong_site += !site_is(site, source, has_key, key);
		endpoint_learn(w, 0, AF_INET, &inner, site);
	}
	back = endpoint_find(w, 0, AF_INET, &inner);	/* the return path's, cache first */
	if (back) {
		st->endpoint_hits++;
		st->wrong_endpoint += !site_is(back, source, has_key, key);
	}
	rcu_read_unlock();
}

static void *reader_main(void *arg)
{
	struct gw_worker *w = arg;
	struct reader_stats *st = &stats[w->index];
	unsigned seed = w->index + 1;

	rcu_register_thread();
	for (unsigned long n = 0; n < READER_LOOPS && !atomic_load(&stop); n++) {
		if (n % 256 == 0)
			w->now_ns = now_realtime_ns();
		reader_step(w, st, (unsigned)rand_r(&seed) % (SOLO_SITES + 2 * PAIRS),
			    (uint32_t)n);
	}
	rcu_unregister_thread();
	return NULL;
}

static int add_site(struct sites *sites, unsigned i, const char *services)
{
	char name[SHM_NAME_MAX], ip[INET_ADDRSTRLEN], key_text[16] = "";
	char err[CONF_ERR_MAX];
	struct site_conf sc;
	struct in_addr source;
	uint32_t key;
	bool has_key;

	site_source(i, &source, &has_key, &key);
	expected_name(source, key, name, sizeof(name));
	inet_ntop(AF_INET, &source, ip, sizeof(ip));
	if (has_key)
		snprintf(key_text, sizeof(key_text), "%u", key);
	site_conf_init(&sc);
	if (site_conf_set(&sc, "name", name, err) < 0 ||
	    site_conf_set(&sc, "source_ip", ip, err) < 0 ||
	    site_conf_set(&sc, "key", key_text, err) < 0 ||
	    site_conf_set(&sc, "services", services, err) < 0)
		return -1;
	return sites_add(sites, &sc);
}

/* Round R's sites: about a quarter missing, half of the rest edited. */
static int apply_round(unsigned r)
{
	struct sites sites = { 0 };
	int rc = 0;

	for (unsigned i = 0; rc == 0 && i < SOLO_SITES + 2 * PAIRS; i++) {
		if ((i + r) % 4 == 0)
			continue;
		rc = add_site(&sites, i, (i + r / 2) % 2 ? "cfw" : "swg+cfw");
	}
	if (rc == 0)
		rc = sitetab_apply(&gw, &sites, noop_changed);
	sites_free(&sites);
	return rc;
}

/* Keep the first N nodes of W's pool: a pool that runs dry takes aged nodes back. */
static void pool_shrink(struct gw_worker *w, unsigned n)
{
	struct gw_endpoint *ep = w->free_list;

	for (unsigned i = 1; ep && i < n; i++)
		ep = (struct gw_endpoint *)ep->node.next;
	if (ep)
		ep->node.next = NULL;
}

static int suite_init(void)
{
	char path[256], err[CONF_ERR_MAX];
	FILE *f;

	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/grepop.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "pop = { name = \"t1\"; gateway_ip = \"198.18.0.11\"; };\n"
		   "runtime_dir = \"%s\";\nstate_dir = \"%s\";\nsites_file = \"%s/sites.csv\";\n"
		   "gateway = { workers = 2; max_sites = 64; };\n", dir, dir, dir);
	fclose(f);
	if (conf_load(&gw.conf, path, err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/state", dir);
	if (shm_open_or_create(&gw.shm, path, 64, READERS) < 0)
		return -1;
	gw.n_workers = READERS;
	gw.workers = workers;
	rcu_register_thread();
	if (sitetab_init(&gw) < 0)
		return -1;
	for (unsigned i = 0; i < READERS; i++) {
		workers[i].gw = &gw;
		workers[i].index = i;
		if (endpoint_pool_init(&workers[i]) < 0 || endpoint_cache_init(&workers[i]) < 0)
			return -1;
		pool_shrink(&workers[i], POOL);
	}
	return 0;
}

static int suite_clean(void)
{
	char cmd[128];

	sitetab_destroy(&gw);	/* first: the endpoints live in the workers' pools */
	for (unsigned i = 0; i < READERS; i++) {
		endpoint_pool_free(&workers[i]);
		endpoint_cache_free(&workers[i]);
	}
	rcu_unregister_thread();
	shm_detach(&gw.shm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_readers_see_whole_sites(void)
{
	pthread_t t[READERS];
	uint64_t start = now_monotonic_ns(), aged = 0;
	unsigned r;

	CU_ASSERT_EQUAL_FATAL(apply_round(0), 0);
	for (unsigned i = 0; i < READERS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, reader_main, &workers[i]), 0);
	for (r = 1; r < ROUNDS; r++) {
		uint64_t spent = now_monotonic_ns() - start;

		if (spent >= HARD_MAX_NS || (spent >= MAX_NS && r > MIN_ROUNDS))
			break;
		CU_ASSERT_EQUAL(apply_round(r), 0);
		/* Every other round ages every endpoint out, else only stale ones. */
		aged += endpoint_age(&gw, now_realtime_ns(), r % 2 ? 0 : NSEC_PER_SEC);
		usleep(200);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);

	printf("\n  %u rounds, %llu endpoints aged", r, (unsigned long long)aged);
	for (unsigned i = 0; i < READERS; i++) {
		printf("; reader %u: %lu lookups, %lu hits, %lu endpoint hits, %llu from its"
		       " cache", i, stats[i].lookups, stats[i].hits, stats[i].endpoint_hits,
		       (unsigned long long)workers[i].endpoint_cache_hits);
		CU_ASSERT_EQUAL(stats[i].wrong_site, 0);
		CU_ASSERT_EQUAL(stats[i].wrong_endpoint, 0);
		/* Both outcomes happened: the test raced something. */
		CU_ASSERT(stats[i].hits > 0 && stats[i].hits < stats[i].lookups);
		CU_ASSERT(stats[i].endpoint_hits > 0);
		/* The endpoint cache answered too, with the same checks above. */
		CU_ASSERT(workers[i].endpoint_cache_hits > 0);
	}
	printf("\n");
	CU_ASSERT(r > 10);
	CU_ASSERT(aged > READERS * POOL);	/* so nodes came back and were learned again */
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gatewayd RCU tables", suite_init, suite_clean);
	CU_add_test(s, "readers see whole sites", test_readers_see_whole_sites);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
