/*
 * The shared-memory segment: creation, re-attachment, refusal of another
 * layout or a damaged file, the per-slot identity sequence counter under a
 * concurrent writer, and lane sums. (tests/unit/test_statsd_collect.c checks
 * the offsets tests/e2e/shmlayout.py uses.)
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/shm.h"

static char dir[] = "/tmp/grepop-shm-XXXXXX";
static char path[128];

static void test_create_and_attach(void)
{
	struct shm a, b;

	unlink(path);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&a, path, 1000, 2), 0);
	CU_ASSERT(a.created);
	CU_ASSERT_EQUAL(a.hdr->site_capacity, 1000);
	CU_ASSERT_EQUAL(a.hdr->lanes, 2);
	CU_ASSERT_EQUAL(a.hdr->pop.accept_mode, SHM_ACCEPT_ACCEPT);
	shm_site_at(&a, 999)->lane[1].rx_packets = 77;
	a.hdr->pop.accept_mode = SHM_ACCEPT_DRAIN;

	/* A second start attaches what is there, whatever it asks for. */
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&b, path, 5, 8), 0);
	CU_ASSERT(!b.created);
	CU_ASSERT_EQUAL(b.hdr->site_capacity, 1000);
	CU_ASSERT_EQUAL(b.hdr->lanes, 2);
	CU_ASSERT_EQUAL(shm_site_at(&b, 999)->lane[1].rx_packets, 77);
	CU_ASSERT_EQUAL(b.hdr->pop.accept_mode, SHM_ACCEPT_DRAIN);
	shm_detach(&b);
	shm_detach(&a);

	CU_ASSERT_EQUAL_FATAL(shm_attach(&b, path, false), 0);
	CU_ASSERT_EQUAL(shm_site_at(&b, 999)->lane[1].rx_packets, 77);
	shm_detach(&b);
	CU_ASSERT_EQUAL(shm_attach(&b, "/nonexistent/grepop/state", false), -ENOENT);
}

static void *open_racer(void *arg)
{
	struct shm *s = arg;

	return (void *)(intptr_t)shm_open_or_create(s, path, 100, 2);
}

/* Processes starting together: one creates, every one attaches a whole segment. */
static void test_concurrent_creation(void)
{
	struct shm s[4];
	pthread_t t[4];
	int created = 0;

	for (int round = 0; round < 20; round++) {
		unlink(path);
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, open_racer, &s[i]);
		for (int i = 0; i < 4; i++) {
			void *r;

			pthread_join(t[i], &r);
			CU_ASSERT_EQUAL((intptr_t)r, 0);
			if ((intptr_t)r != 0)
				continue;
			created += s[i].created;
			CU_ASSERT_EQUAL(s[i].hdr->site_capacity, 100);
			shm_detach(&s[i]);
		}
	}
	CU_ASSERT_EQUAL(created, 20);
}

/* Two workers' default: a site slot within the 512-byte budget. */
static void test_site_size(void)
{
	CU_ASSERT_EQUAL(sizeof(struct shm_site_lane) % SHM_CACHELINE, 0);
	CU_ASSERT_EQUAL(sizeof(struct shm_site) % SHM_CACHELINE, 0);
	CU_ASSERT(shm_site_stride(2) <= 512);
	CU_ASSERT_EQUAL(shm_segment_size(100000, 2),
			sizeof(struct shm_header) + 100000 * shm_site_stride(2));
}

static void patch_file(off_t off, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

static void test_refuses_other_layouts(void)
{
	uint32_t version = SHM_LAYOUT_VERSION + 1;
	uint64_t magic = 0x1234;
	struct shm s;

	unlink(path);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&s, path, 10, 1), 0);
	shm_detach(&s);
	patch_file(offsetof(struct shm_header, layout_version), &version, sizeof(version));
	CU_ASSERT_EQUAL(shm_attach(&s, path, false), -EPROTO);
	CU_ASSERT_EQUAL(shm_open_or_create(&s, path, 10, 1), -EPROTO);
	CU_ASSERT(strstr(shm_describe_error(-EPROTO), "layout version") != NULL);
	CU_ASSERT(strstr(shm_describe_error(-EPROTO), "remove the state file") != NULL);

	version = SHM_LAYOUT_VERSION;
	patch_file(offsetof(struct shm_header, layout_version), &version, sizeof(version));
	patch_file(offsetof(struct shm_header, magic), &magic, sizeof(magic));
	CU_ASSERT_EQUAL(shm_attach(&s, path, false), -EINVAL);

	/* Truncated: shorter than its header says. */
	unlink(path);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&s, path, 10, 1), 0);
	shm_detach(&s);
	CU_ASSERT_EQUAL(truncate(path, sizeof(struct shm_header) + 10), 0);
	CU_ASSERT_EQUAL(shm_attach(&s, path, false), -EINVAL);
}

struct writer {
	struct shm *shm;
	atomic_bool stop;
	unsigned long writes;
};

/* Rewrites slot 0 with names and source IPs that always agree. */
static void *identity_writer(void *arg)
{
	struct writer *wr = arg;
	struct shm_site *site = shm_site_at(wr->shm, 0);

	while (!atomic_load(&wr->stop)) {
		uint32_t n = (uint32_t)(wr->writes++ % 1000);
		struct shm_site_id id = { .source_ip.s_addr = n };

		snprintf(id.name, sizeof(id.name), "site-%u", n);
		shm_site_write_begin(site);
		shm_site_set_id(site, &id, true, 1);
		shm_site_write_end(site);
	}
	return NULL;
}

static void test_identity_reads_are_consistent(void)
{
	struct writer wr = { 0 };
	struct shm s;
	pthread_t t;
	unsigned torn = 0, reads = 0;

	unlink(path);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&s, path, 4, 1), 0);
	wr.shm = &s;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, identity_writer, &wr), 0);
	while (reads < 200000) {
		struct shm_site_id id;
		char want[SHM_NAME_MAX];

		if (!shm_site_read_id(shm_site_at(&s, 0), &id, NULL))
			continue;
		snprintf(want, sizeof(want), "site-%u", id.source_ip.s_addr);
		torn += strcmp(want, id.name) != 0;
		reads++;
	}
	atomic_store(&wr.stop, true);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(torn, 0);
	CU_ASSERT(wr.writes > 0);
	shm_detach(&s);
}

static void test_sums(void)
{
	struct shm s;
	struct shm_site_totals t;
	struct shm_pop_totals p;
	struct shm_site *site;

	unlink(path);
	CU_ASSERT_EQUAL_FATAL(shm_open_or_create(&s, path, 4, 3), 0);
	site = shm_site_at(&s, 2);
	for (int l = 0; l < 3; l++) {
		shm_add(&site->lane[l].rx_packets, 10 + l);
		shm_add(&site->lane[l].drops[SHM_DROP_POLICY], 1);
		shm_set(&site->lane[l].last_keepalive_ns, 100 * (l == 1 ? 5 : 1));
		shm_add(&s.hdr->pop.lane[l].drops[SHM_DROP_UNKNOWN_SOURCE], 2);
	}
	shm_site_sum(&s, site, &t);
	CU_ASSERT_EQUAL(t.rx_packets, 33);
	CU_ASSERT_EQUAL(t.drops[SHM_DROP_POLICY], 3);
	CU_ASSERT_EQUAL(t.last_keepalive_ns, 500);
	shm_pop_sum(&s, &p);
	CU_ASSERT_EQUAL(p.drops[SHM_DROP_UNKNOWN_SOURCE], 6);
	shm_detach(&s);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(shm_drop_name(SHM_DROP_AUTH_FAILURE), "auth_failure");
	CU_ASSERT_STRING_EQUAL(shm_drop_name(SHM_DROP_NO_ROUTE_BACK), "no_route_back");
	CU_ASSERT_STRING_EQUAL(shm_drop_name(SHM_DROP_COUNT), "unknown");
	for (int d = 0; d < SHM_DROP_COUNT; d++)
		CU_ASSERT_STRING_NOT_EQUAL(shm_drop_name(d), "unknown");
	CU_ASSERT_EQUAL(shm_accept_parse("no-new"), SHM_ACCEPT_NO_NEW);
	CU_ASSERT_EQUAL(shm_accept_parse("nonsense"), -1);
	CU_ASSERT_EQUAL(shm_traffic_type_parse("guest-wifi"), SHM_TRAFFIC_GUEST_WIFI);
	CU_ASSERT_EQUAL(shm_service_parse("cfw"), SHM_SVC_CFW);
	CU_ASSERT_STRING_EQUAL(shm_health_name(SHM_HEALTH_DOWN), "down");
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/state", dir);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("shm", NULL, NULL);
	CU_add_test(s, "create and attach", test_create_and_attach);
	CU_add_test(s, "site size", test_site_size);
	CU_add_test(s, "concurrent creation", test_concurrent_creation);
	CU_add_test(s, "refuses other layouts", test_refuses_other_layouts);
	CU_add_test(s, "identity reads are consistent", test_identity_reads_are_consistent);
	CU_add_test(s, "sums", test_sums);
	CU_add_test(s, "names", test_names);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		failed++;
	return failed ? 1 : 0;
}
