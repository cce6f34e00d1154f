/*
 * Unit tests of statsd/feed.c over real ZeroMQ sockets on loopback: which
 * sites a scan publishes (budget and refresh), derived events on the feed,
 * and a chunked snapshot.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "lib/timeutil.h"
#include "statsd/collect.h"
#include "statsd/feed.h"

#define SITES		10
#define BUDGET		4	/* sites_per_scan in these tests */

static char dir[] = "/tmp/test_statsd_feed.XXXXXX";
static char path[64];
static struct conf conf;
static struct shm shm;
static struct collect collect;
static struct feed feed;
static void *sub, *dealer;
static uint64_t mono = NSEC_PER_SEC;

static int setup(void)
{
	const char *what;
	char endpoint[64];
	size_t len = sizeof(endpoint);
	int timeout_ms = 1000;

	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/state", dir);
	if (shm_open_or_create(&shm, path, 64, 2) < 0)
		return -1;
	strcpy(conf.pop_name, "unit");
	strcpy(conf.runtime_dir, dir);
	conf.n_tenants = 1;
	strcpy(conf.tenants[0].name, "default");
	conf.keepalive_window_s = 60;
	conf.tunnel_idle_s = 1800;
	conf.health_interval_ms = 1000;
	strcpy(conf.stats_feed, "tcp://127.0.0.1:*");
	strcpy(conf.stats_snapshot, "tcp://127.0.0.1:*");
	if (collect_init(&collect, &shm, &conf) < 0 || feed_open(&feed, &conf, &collect, &what) < 0)
		return -1;
	feed.sites_per_scan = BUDGET;
	sub = zmq_socket(feed.ctx, ZMQ_SUB);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	/* A missing message fails the test instead of hanging it. */
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_getsockopt(feed.pub, ZMQ_LAST_ENDPOINT, endpoint, &len);
	zmq_connect(sub, endpoint);
	dealer = zmq_socket(feed.ctx, ZMQ_DEALER);
	zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	len = sizeof(endpoint);
	zmq_getsockopt(feed.router, ZMQ_LAST_ENDPOINT, endpoint, &len);
	zmq_connect(dealer, endpoint);
	usleep(200000);		/* the subscription reaches the PUB socket */
	return 0;
}

static int teardown(void)
{
	int zero = 0;

	zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(sub);
	zmq_close(dealer);
	feed_close(&feed);
	collect_free(&collect);
	shm_detach(&shm);
	unlink(path);
	rmdir(dir);
	return 0;
}

/* One scan and its publication; returns the site messages sent. */
static uint64_t scan(void)
{
	mono += NSEC_PER_SEC;
	collect_scan(&collect, mono, now_realtime_ns(), feed_site_event, &feed);
	feed_publish_scan(&feed);
	return feed.site_messages;
}

/* Read every message waiting on SOCK; count topics starting with PREFIX. */
static unsigned drain(void *sock, const char *prefix, char *last_body, size_t body_len)
{
	char topic[128], body[4096];
	unsigned n = 0;

	for (int i = 0; i < 10000; i++) {
		int t = zmq_recv(sock, topic, sizeof(topic) - 1, i == 0 ? 0 : ZMQ_DONTWAIT);
		int b;

		if (t < 0 && i > 0) {
			/* Loopback TCP may deliver a batch in parts: one more short wait. */
			usleep(20000);
			t = zmq_recv(sock, topic, sizeof(topic) - 1, ZMQ_DONTWAIT);
		}
		if (t < 0)
			break;
		b = zmq_recv(sock, body, sizeof(body) - 1, 0);
		topic[t < (int)sizeof(topic) ? t : (int)sizeof(topic) - 1] = '\0';
		if (strncmp(topic, prefix, strlen(prefix)) != 0)
			continue;
		n++;
		if (b >= 0 && last_body) {
			body[b < (int)sizeof(body) ? b : (int)sizeof(body) - 1] = '\0';
			snprintf(last_body, body_len, "%s", body);
		}
	}
	return n;
}

static void add_site(uint32_t slot, const char *name)
{
	struct shm_site *s = shm_site_at(&shm, slot);

	shm_site_write_begin(s);
	memset(&s->id, 0, sizeof(s->id));
	snprintf(s->id.name, sizeof(s->id.name), "%s", name);
	s->id.enabled = 1;
	s->id.keepalive = 1;
	s->in_use = 1;
	s->generation++;
	shm_site_write_end(s);
	shm_set(&s->lane[0].last_keepalive_ns, now_realtime_ns());
}

static void test_publish_budget(void)
{
	char name[16];
	uint64_t total = 0;

	for (int i = 0; i < SITES; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		add_site(i, name);
	}
	/* Ten new sites, a budget of four: refresh every 3 scans, backlog drains. */
	total += scan();
	CU_ASSERT_EQUAL(feed.refresh_scans, (SITES + BUDGET - 1) / BUDGET);
	CU_ASSERT(feed.site_messages <= 2 * BUDGET);
	for (int i = 0; i < 3; i++)
		total += scan();
	drain(sub, "grepop.v1.site.", NULL, 0);
	/* Steady state: no change, each site once per refresh period. */
	total = 0;
	for (unsigned i = 0; i < 3 * feed.refresh_scans; i++) {
		uint64_t n = scan();

		CU_ASSERT(n <= BUDGET);
		total += n;
	}
	CU_ASSERT_EQUAL(total, 3 * SITES);
	CU_ASSERT_EQUAL(drain(sub, "grepop.v1.site.", NULL, 0), 3 * SITES);
}

static void test_change_published_at_once(void)
{
	char body[4096] = "";
	struct shm_site *s = shm_site_at(&shm, 3);
	unsigned events;

	drain(sub, "", NULL, 0);
	/* Keepalive ages out: a state change, published in this very scan. */
	shm_set(&s->lane[0].last_keepalive_ns, now_realtime_ns() - 120 * NSEC_PER_SEC);
	scan();
	events = drain(sub, "grepop.v1.event", body, sizeof(body));
	CU_ASSERT_EQUAL(events, 2);	/* keepalive.not_seen, site.down */
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"type\":\"site.down\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"site\":\"s3\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"pop\":\"unit\""));
	CU_ASSERT_FALSE(collect.site[3].changed);
}

static void test_snapshot(void)
{
	char topic[128], body[4096], end[64];
	unsigned sites = 0, pops = 0;
	bool done = false;

	zmq_send(dealer, "snapshot", 8, 0);
	for (int i = 0; i < 100 && feed.snapshot[0].active == false; i++)
		feed_poll(&feed, 10);
	for (int i = 0; i < 100 && feed_snapshot_step(&feed); i++)
		;
	for (int i = 0; i < 1000 && !done; i++) {
		int t = zmq_recv(dealer, topic, sizeof(topic) - 1, 0);
		int b = zmq_recv(dealer, body, sizeof(body) - 1, 0);

		CU_ASSERT_FATAL(t > 0 && b > 0);
		topic[t] = '\0';
		body[b] = '\0';
		if (strcmp(topic, "grepop.v1.pop") == 0)
			pops++;
		else if (strncmp(topic, "grepop.v1.site.", 15) == 0)
			sites++;
		else if (strcmp(topic, "grepop.v1.snapshot.end") == 0)
			done = true;
	}
	CU_ASSERT(done);
	CU_ASSERT_EQUAL(pops, 1);
	CU_ASSERT_EQUAL(sites, SITES);
	snprintf(end, sizeof(end), "{\"seq\":%llu}", (unsigned long long)feed.seq);
	CU_ASSERT_STRING_EQUAL(body, end);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("statsd_feed", setup, teardown);
	CU_add_test(suite, "publish budget and refresh", test_publish_budget);
	CU_add_test(suite, "a change goes out at once, with its events",
		    test_change_published_at_once);
	CU_add_test(suite, "chunked snapshot", test_snapshot);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
