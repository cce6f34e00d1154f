/*
 * Unit tests of healthd's checks (healthd/probe.c) against real servers on
 * loopback, run by a thread of this test: an HTTP server whose status can
 * be switched, a listener that accepts nothing and answers nothing, and a
 * port with nobody listening. Every wait is bounded.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "healthd/probe.h"
#include "lib/timeutil.h"

struct server {
	int fd;
	int port;
	int status;			/* what the HTTP server answers */
	bool stop;
	pthread_t thread;
};

static struct server http;
static int silent_fd, silent_port, closed_port;

static int listen_any(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

static void serve_one(struct server *s, int c)
{
	char req[2048], resp[128];
	size_t used = 0;
	struct pollfd p = { .fd = c, .events = POLLIN };

	/* Read the request head, at most 2 s and 2 KiB. */
	while (used < sizeof(req) - 1 && poll(&p, 1, 2000) == 1) {
		ssize_t n = read(c, req + used, sizeof(req) - 1 - used);

		if (n <= 0)
			break;
		used += (size_t)n;
		req[used] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n"
		 "Connection: close\r\n\r\nok", __atomic_load_n(&s->status, __ATOMIC_RELAXED));
	if (write(c, resp, strlen(resp)) < 0)
		perror("write");
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		int c;

		if (poll(&p, 1, 50) != 1)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(s, c);
		close(c);
	}
	return NULL;
}

static int suite_init(void)
{
	int fd;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	http.status = 200;
	http.fd = listen_any(&http.port);
	silent_fd = listen_any(&silent_port);
	/* A port that was free a moment ago: connections are refused. */
	fd = listen_any(&closed_port);
	if (http.fd < 0 || silent_fd < 0 || fd < 0)
		return -1;
	close(fd);
	return pthread_create(&http.thread, NULL, server_main, &http);
}

static int suite_clean(void)
{
	__atomic_store_n(&http.stop, true, __ATOMIC_RELAXED);
	pthread_join(http.thread, NULL);
	close(http.fd);
	close(silent_fd);
	curl_global_cleanup();
	return 0;
}

static struct conf_check http_check(int port, const char *path)
{
	struct conf_check c = { .service = SHM_SVC_SWG, .type = CONF_CHECK_HTTP };

	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d%s", port, path);
	return c;
}

static struct conf_check tcp_check(int port)
{
	struct conf_check c = { .service = SHM_SVC_CFW, .type = CONF_CHECK_TCP };

	snprintf(c.address, sizeof(c.address), "127.0.0.1:%d", port);
	return c;
}

/* Poll until the round is done or MAX_MS passed; returns the ms it took. */
static uint64_t run_round(struct probe_set *ps, unsigned max_ms)
{
	uint64_t start = now_monotonic_ns();
	uint64_t end = start + max_ms * NSEC_PER_MSEC;

	CU_ASSERT_EQUAL_FATAL(probe_round_start(ps), 0);
	while (!probe_round_done(ps) && now_monotonic_ns() < end)
		CU_ASSERT_EQUAL_FATAL(probe_poll(ps, NULL, 0, 20), 0);
	return (now_monotonic_ns() - start) / NSEC_PER_MSEC;
}

static void test_results_and_reasons(void)
{
	struct conf_check checks[5] = {
		http_check(http.port, "/healthz"), http_check(silent_port, "/healthz"),
		http_check(closed_port, "/"), tcp_check(http.port), tcp_check(closed_port),
	};
	struct probe_set *ps;
	uint64_t ms;

	CU_ASSERT_EQUAL_FATAL(probe_set_new(&ps, checks, 5, 300), 0);
	CU_ASSERT_EQUAL(probe_count(ps), 5);
	CU_ASSERT_FALSE(probe_round_done(ps));
	ms = run_round(ps, 3000);
	CU_ASSERT_TRUE(probe_round_done(ps));
	/* The silent one sets the pace: about the timeout, not the sum. */
	CU_ASSERT(ms >= 290 && ms < 1000);

	CU_ASSERT_TRUE(probe_result(ps, 0)->ok);
	CU_ASSERT_FALSE(probe_result(ps, 1)->ok);
	CU_ASSERT_STRING_EQUAL(probe_result(ps, 1)->reason, "timeout after 300 ms");
	CU_ASSERT_FALSE(probe_result(ps, 2)->ok);
	CU_ASSERT_STRING_EQUAL(probe_result(ps, 2)->reason, "connect: Connection refused");
	CU_ASSERT_TRUE(probe_result(ps, 3)->ok);
	CU_ASSERT_FALSE(probe_result(ps, 4)->ok);
	CU_ASSERT_STRING_EQUAL(probe_result(ps, 4)->reason, "connect: Connection refused");
	CU_ASSERT_STRING_EQUAL(probe_target(ps, 4), checks[4].address);
	CU_ASSERT_STRING_EQUAL(probe_target(ps, 0), checks[0].url);

	/* The next round sees the server's new answer. */
	__atomic_store_n(&http.status, 503, __ATOMIC_RELAXED);
	run_round(ps, 3000);
	CU_ASSERT_FALSE(probe_result(ps, 0)->ok);
	CU_ASSERT_STRING_EQUAL(probe_result(ps, 0)->reason, "HTTP 503");
	__atomic_store_n(&http.status, 204, __ATOMIC_RELAXED);
	run_round(ps, 3000);
	CU_ASSERT_TRUE(probe_result(ps, 0)->ok);
	__atomic_store_n(&http.status, 200, __ATOMIC_RELAXED);
	probe_set_free(ps);
}

static void test_hanging_checks_run_concurrently(void)
{
	struct conf_check checks[8];
	struct probe_set *ps;
	uint64_t ms;

	for (int i = 0; i < 8; i++)
		checks[i] = http_check(silent_port, "/slow");
	CU_ASSERT_EQUAL_FATAL(probe_set_new(&ps, checks, 8, 250), 0);
	ms = run_round(ps, 3000);
	CU_ASSERT_TRUE(probe_round_done(ps));
	CU_ASSERT(ms < 8 * 250 / 2);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_STRING_EQUAL(probe_result(ps, i)->reason, "timeout after 250 ms");
	probe_set_free(ps);
}

static void test_stop_ends_round(void)
{
	struct conf_check checks[2] = { http_check(silent_port, "/"), tcp_check(http.port) };
	struct probe_set *ps;
	unsigned ms;
	uint64_t start = now_monotonic_ns();

	CU_ASSERT_EQUAL_FATAL(probe_set_new(&ps, checks, 2, 10000), 0);
	CU_ASSERT_EQUAL_FATAL(probe_round_start(ps), 0);
	while (now_monotonic_ns() - start < 150 * NSEC_PER_MSEC)
		probe_poll(ps, NULL, 0, 20);
	CU_ASSERT_FALSE(probe_round_done(ps));
	CU_ASSERT_TRUE(probe_result(ps, 1)->done && probe_result(ps, 1)->ok);
	probe_round_stop(ps);
	CU_ASSERT_TRUE(probe_round_done(ps));
	CU_ASSERT_FALSE(probe_result(ps, 0)->ok);
	CU_ASSERT_EQUAL(sscanf(probe_result(ps, 0)->reason, "timeout after %u ms", &ms), 1);
	CU_ASSERT(ms >= 150 && ms < 1000);
	/* A new round restarts cleanly, and freeing a running set is safe. */
	CU_ASSERT_EQUAL(probe_round_start(ps), 0);
	CU_ASSERT_FALSE(probe_result(ps, 1)->done);
	probe_set_free(ps);
}

static void test_extra_fd_wakes_poll(void)
{
	struct conf_check check = tcp_check(http.port);
	struct probe_set *ps;
	struct curl_waitfd w;
	uint64_t start;
	int pipefd[2];

	CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
	CU_ASSERT_EQUAL_FATAL(probe_set_new(&ps, &check, 1, 100), 0);
	CU_ASSERT_EQUAL(write(pipefd[1], "x", 1), 1);
	w = (struct curl_waitfd){ .fd = pipefd[0], .events = CURL_WAIT_POLLIN };
	start = now_monotonic_ns();
	CU_ASSERT_EQUAL(probe_poll(ps, &w, 1, 5000), 0);
	CU_ASSERT(now_monotonic_ns() - start < 1000 * NSEC_PER_MSEC);
	CU_ASSERT(w.revents & CURL_WAIT_POLLIN);
	probe_set_free(ps);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("healthd_probe", suite_init, suite_clean);
	CU_add_test(suite, "results and reasons", test_results_and_reasons);
	CU_add_test(suite, "hanging checks run concurrently", test_hanging_checks_run_concurrently);
	CU_add_test(suite, "stop ends the round", test_stop_ends_round);
	CU_add_test(suite, "caller's descriptor wakes the poll", test_extra_fd_wakes_poll);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
