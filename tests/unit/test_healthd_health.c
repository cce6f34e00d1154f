/*
 * Unit tests of healthd's state machine (healthd/health.c): hysteresis,
 * the first verdict from UNKNOWN, flapping, several checks per service,
 * reasons and log lines, the shared-memory writes, and the offsets that
 * tests/e2e/shmlayout.py hard-codes.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "healthd/health.h"

#define RISE	2
#define FALL	3
#define URL	"http://198.19.0.2/healthz"

static struct health_service svc;
static struct health_change change;
static uint64_t now = 1000;

static void verdict_one(struct health_verdict *v, bool ok, const char *reason)
{
	health_verdict_init(v);
	health_verdict_add(v, ok, reason, ok ? NULL : URL);
}

/* One round of a single check; true when the state changed. */
static bool round_one(bool ok, const char *reason)
{
	struct health_verdict v;

	verdict_one(&v, ok, reason);
	return health_update(&svc, SHM_SVC_SWG, &v, RISE, FALL, ++now, &change);
}

static void reset(void)
{
	health_service_init(&svc);
	memset(&change, 0, sizeof(change));
}

static void test_unknown_rises_to_up(void)
{
	reset();
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_FALSE(round_one(true, NULL));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_TRUE(round_one(true, NULL));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(change.from, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_EQUAL(change.to, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(change.service, SHM_SVC_SWG);
	CU_ASSERT_EQUAL(svc.since_ns, now);
	/* More passes change nothing. */
	CU_ASSERT_FALSE(round_one(true, NULL));
	CU_ASSERT_EQUAL(svc.since_ns, now - 1);
}

static void test_unknown_falls_to_down(void)
{
	reset();
	CU_ASSERT_FALSE(round_one(false, "HTTP 503"));
	CU_ASSERT_FALSE(round_one(false, "HTTP 503"));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_TRUE(round_one(false, "HTTP 503"));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_DOWN);
	CU_ASSERT_EQUAL(change.from, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_STRING_EQUAL(change.reason, "HTTP 503");
	CU_ASSERT_STRING_EQUAL(change.target, URL);
}

static void test_up_falls_after_fall(void)
{
	reset();
	round_one(true, NULL);
	round_one(true, NULL);
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
	CU_ASSERT_FALSE(round_one(false, "HTTP 503"));
	CU_ASSERT_FALSE(round_one(false, "HTTP 503"));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
	CU_ASSERT_TRUE(round_one(false, "HTTP 503"));
	CU_ASSERT_EQUAL(change.from, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(change.to, SHM_HEALTH_DOWN);
	/* Staying down is no change. */
	CU_ASSERT_FALSE(round_one(false, "HTTP 503"));
	CU_ASSERT_FALSE(round_one(true, NULL));
	CU_ASSERT_TRUE(round_one(true, NULL));
	CU_ASSERT_EQUAL(change.from, SHM_HEALTH_DOWN);
	CU_ASSERT_EQUAL(change.to, SHM_HEALTH_UP);
	CU_ASSERT_STRING_EQUAL(change.reason, "all checks passed");
	CU_ASSERT_STRING_EQUAL(change.target, "");
}

static void test_flapping_holds_state(void)
{
	int changes = 0;

	reset();
	round_one(true, NULL);
	round_one(true, NULL);
	/* fail, fail, pass, ...: never FALL failures in a row. */
	for (int i = 0; i < 30; i++)
		changes += round_one(i % 3 == 2, "HTTP 500");
	CU_ASSERT_EQUAL(changes, 0);
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);

	/* From DOWN, pass/fail alternation never reaches RISE. */
	for (int i = 0; i < FALL; i++)
		round_one(false, "HTTP 500");
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_DOWN);
	changes = 0;
	for (int i = 0; i < 30; i++)
		changes += round_one(i % 2 == 0, "HTTP 500");
	CU_ASSERT_EQUAL(changes, 0);
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_DOWN);
}

static void test_unknown_mixed_stays_unknown(void)
{
	reset();
	for (int i = 0; i < 20; i++)
		CU_ASSERT_FALSE(round_one(i % 2 == 0, "timeout after 500 ms"));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_EQUAL(svc.since_ns, 0);
}

static void test_rise_fall_one(void)
{
	struct health_verdict v;

	reset();
	verdict_one(&v, false, "HTTP 404");
	CU_ASSERT_TRUE(health_update(&svc, SHM_SVC_CFW, &v, 0, 0, 5, &change));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_DOWN);
	CU_ASSERT_EQUAL(change.service, SHM_SVC_CFW);
	verdict_one(&v, true, NULL);
	CU_ASSERT_TRUE(health_update(&svc, SHM_SVC_CFW, &v, 1, 1, 6, &change));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
}

static void test_several_checks(void)
{
	struct health_verdict v;

	reset();
	/* One of three failing fails the round; the first failure is kept. */
	health_verdict_init(&v);
	health_verdict_add(&v, true, NULL, NULL);
	health_verdict_add(&v, false, "connect: Connection refused", "127.0.0.1:9");
	health_verdict_add(&v, false, "HTTP 503", URL);
	CU_ASSERT_EQUAL(v.checks, 3);
	CU_ASSERT_EQUAL(v.failed, 2);
	CU_ASSERT_STRING_EQUAL(v.reason, "connect: Connection refused");
	CU_ASSERT_STRING_EQUAL(v.target, "127.0.0.1:9");
	for (int i = 0; i < FALL; i++)
		health_update(&svc, SHM_SVC_CFW, &v, RISE, FALL, ++now, &change);
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_DOWN);
	CU_ASSERT_STRING_EQUAL(change.reason, "connect: Connection refused");
	CU_ASSERT_EQUAL(svc.checks_ok, FALL * 1);
	CU_ASSERT_EQUAL(svc.checks_failed, FALL * 2);

	/* All passing, RISE times: up. */
	health_verdict_init(&v);
	health_verdict_add(&v, true, NULL, NULL);
	health_verdict_add(&v, true, NULL, NULL);
	health_verdict_add(&v, true, NULL, NULL);
	CU_ASSERT_FALSE(health_update(&svc, SHM_SVC_CFW, &v, RISE, FALL, ++now, &change));
	CU_ASSERT_TRUE(health_update(&svc, SHM_SVC_CFW, &v, RISE, FALL, ++now, &change));
	CU_ASSERT_EQUAL(svc.checks_ok, FALL * 1 + 6);

	/* An empty verdict (no check reported) is no evidence either way. */
	health_verdict_init(&v);
	CU_ASSERT_FALSE(health_update(&svc, SHM_SVC_CFW, &v, 1, 1, ++now, &change));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
}

static void test_unchecked_is_up(void)
{
	reset();
	CU_ASSERT_TRUE(health_set_unchecked(&svc, SHM_SVC_CFW, 77, &change));
	CU_ASSERT_EQUAL(svc.state, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(svc.since_ns, 77);
	CU_ASSERT_STRING_EQUAL(change.reason, "no check configured");
	CU_ASSERT_FALSE(health_set_unchecked(&svc, SHM_SVC_CFW, 78, &change));
	CU_ASSERT_EQUAL(svc.since_ns, 77);
}

static void test_formats(void)
{
	struct health_service all[SHM_SVC_COUNT];
	char buf[256];

	reset();
	for (int i = 0; i < RISE; i++)
		round_one(true, NULL);
	for (int i = 0; i < FALL; i++)
		round_one(false, "HTTP 503");
	CU_ASSERT_STRING_EQUAL(health_change_format(&change, buf, sizeof(buf)),
			       "service swg: up -> down (HTTP 503 from " URL ")");
	/* The latest cause shows while down. */
	round_one(false, "timeout after 500 ms");
	all[SHM_SVC_SWG] = svc;
	health_service_init(&all[SHM_SVC_CFW]);
	CU_ASSERT_STRING_EQUAL(health_status_format(all, buf, sizeof(buf)),
			       "swg down (timeout after 500 ms), cfw unknown");
	all[SHM_SVC_CFW].state = SHM_HEALTH_UP;
	all[SHM_SVC_SWG].state = SHM_HEALTH_UP;
	CU_ASSERT_STRING_EQUAL(health_status_format(all, buf, sizeof(buf)), "swg up, cfw up");
	/* A short buffer truncates, never overflows. */
	CU_ASSERT_STRING_EQUAL(health_status_format(all, buf, 6), "swg u");

	round_one(true, NULL);
	round_one(true, NULL);
	CU_ASSERT_STRING_EQUAL(health_change_format(&change, buf, sizeof(buf)),
			       "service swg: down -> up (all checks passed)");
}

static void test_shm_writes(void)
{
	char path[] = "/tmp/grepop-test-healthd-XXXXXX";
	struct health_service all[SHM_SVC_COUNT];
	struct shm shm, reader;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	unlink(path);	/* shm_open_or_create makes it anew */
	CU_ASSERT_FATAL(shm_open_or_create(&shm, path, 4, 2) == 0);
	CU_ASSERT_FATAL(shm_attach(&reader, path, false) == 0);

	health_service_init(&all[SHM_SVC_SWG]);
	health_service_init(&all[SHM_SVC_CFW]);
	all[SHM_SVC_SWG].state = SHM_HEALTH_DOWN;
	all[SHM_SVC_SWG].since_ns = 123;
	all[SHM_SVC_SWG].checks_ok = 4;
	all[SHM_SVC_SWG].checks_failed = 5;
	all[SHM_SVC_CFW].state = SHM_HEALTH_UP;
	health_publish(shm.hdr, all);
	health_heartbeat(shm.hdr, 987654321);

	/* Seen through another mapping, as gatewayd and statsd see it. */
	CU_ASSERT_EQUAL(reader.hdr->pop.service[SHM_SVC_SWG].health, SHM_HEALTH_DOWN);
	CU_ASSERT_EQUAL(reader.hdr->pop.service[SHM_SVC_SWG].since_ns, 123);
	CU_ASSERT_EQUAL(reader.hdr->pop.service[SHM_SVC_SWG].checks_ok, 4);
	CU_ASSERT_EQUAL(reader.hdr->pop.service[SHM_SVC_SWG].checks_failed, 5);
	CU_ASSERT_EQUAL(reader.hdr->pop.service[SHM_SVC_CFW].health, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(reader.hdr->pop.healthd_heartbeat_ns, 987654321);
	health_heartbeat(shm.hdr, 987654322);
	CU_ASSERT_EQUAL(reader.hdr->pop.healthd_heartbeat_ns, 987654322);
	/* Nothing else of the POP block was touched. */
	CU_ASSERT_EQUAL(reader.hdr->pop.statsd_heartbeat_ns, 0);
	CU_ASSERT_EQUAL(reader.hdr->pop.accept_mode, SHM_ACCEPT_ACCEPT);

	shm_detach(&reader);
	shm_detach(&shm);
	unlink(path);
}

static void test_adopt(void)
{
	char path[] = "/tmp/grepop-test-healthd-XXXXXX";
	struct health_service old[SHM_SVC_COUNT], svc2[SHM_SVC_COUNT];
	struct shm shm;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	unlink(path);
	CU_ASSERT_FATAL(shm_open_or_create(&shm, path, 4, 1) == 0);
	health_service_init(&old[SHM_SVC_SWG]);
	health_service_init(&old[SHM_SVC_CFW]);
	old[SHM_SVC_SWG].state = SHM_HEALTH_UP;
	old[SHM_SVC_SWG].since_ns = 500;
	old[SHM_SVC_SWG].checks_ok = 10;
	old[SHM_SVC_CFW].state = SHM_HEALTH_DOWN;
	old[SHM_SVC_CFW].checks_failed = 7;
	health_publish(shm.hdr, old);
	health_heartbeat(shm.hdr, 1000);

	/* A recent heartbeat: state, since and counters carry over. */
	health_service_init(&svc2[SHM_SVC_SWG]);
	health_service_init(&svc2[SHM_SVC_CFW]);
	health_adopt(svc2, shm.hdr, 1500, 600);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].state, SHM_HEALTH_UP);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].since_ns, 500);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].checks_ok, 10);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_CFW].state, SHM_HEALTH_DOWN);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_CFW].checks_failed, 7);
	/* Runs start afresh: one failure does not take it down. */
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].failures, 0);

	/* A stale heartbeat: only the counters, the state is UNKNOWN. */
	health_service_init(&svc2[SHM_SVC_SWG]);
	health_service_init(&svc2[SHM_SVC_CFW]);
	health_adopt(svc2, shm.hdr, 1601, 600);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].state, SHM_HEALTH_UNKNOWN);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].since_ns, 0);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].checks_ok, 10);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_CFW].state, SHM_HEALTH_UNKNOWN);

	/* A heartbeat from the future (clock stepped back) is not trusted. */
	health_service_init(&svc2[SHM_SVC_SWG]);
	health_adopt(svc2, shm.hdr, 900, 600);
	CU_ASSERT_EQUAL(svc2[SHM_SVC_SWG].state, SHM_HEALTH_UNKNOWN);

	shm_detach(&shm);
	unlink(path);
}

/* The numbers tests/e2e/shmlayout.py hard-codes: change both together. */
static void test_reader_offsets(void)
{
	size_t pop = offsetof(struct shm_header, pop);

	CU_ASSERT_EQUAL(offsetof(struct shm_header, magic), 0);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, layout_version), 8);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, lanes), 12);
	CU_ASSERT_EQUAL(offsetof(struct shm_header, size), 16);
	CU_ASSERT_EQUAL(pop, 64);
	CU_ASSERT_EQUAL(pop + offsetof(struct shm_pop, healthd_heartbeat_ns), 80);
	CU_ASSERT_EQUAL(pop + offsetof(struct shm_pop, service), 104);
	CU_ASSERT_EQUAL(sizeof(struct shm_service_state), 32);
	CU_ASSERT_EQUAL(offsetof(struct shm_service_state, health), 0);
	CU_ASSERT_EQUAL(offsetof(struct shm_service_state, since_ns), 8);
	CU_ASSERT_EQUAL(offsetof(struct shm_service_state, checks_ok), 16);
	CU_ASSERT_EQUAL(offsetof(struct shm_service_state, checks_failed), 24);
	CU_ASSERT_EQUAL(SHM_SVC_SWG, 0);
	CU_ASSERT_EQUAL(SHM_SVC_CFW, 1);
	CU_ASSERT_EQUAL(SHM_HEALTH_UNKNOWN, 0);
	CU_ASSERT_EQUAL(SHM_HEALTH_UP, 1);
	CU_ASSERT_EQUAL(SHM_HEALTH_DOWN, 2);
	CU_ASSERT_EQUAL(SHM_MAGIC, 0x31504f5045524700ULL);
	CU_ASSERT_EQUAL(SHM_LAYOUT_VERSION, 1);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("healthd_health", NULL, NULL);
	CU_add_test(suite, "unknown rises to up", test_unknown_rises_to_up);
	CU_add_test(suite, "unknown falls to down", test_unknown_falls_to_down);
	CU_add_test(suite, "up falls after fall", test_up_falls_after_fall);
	CU_add_test(suite, "flapping holds state", test_flapping_holds_state);
	CU_add_test(suite, "unknown with mixed results", test_unknown_mixed_stays_unknown);
	CU_add_test(suite, "rise and fall of 0 or 1", test_rise_fall_one);
	CU_add_test(suite, "several checks per service", test_several_checks);
	CU_add_test(suite, "service without checks", test_unchecked_is_up);
	CU_add_test(suite, "log and status lines", test_formats);
	CU_add_test(suite, "shared memory writes", test_shm_writes);
	CU_add_test(suite, "adopt an earlier healthd's state", test_adopt);
	CU_add_test(suite, "offsets used by shmlayout.py", test_reader_offsets);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
