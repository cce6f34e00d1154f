/*
 * statsd_bench: the CPU statsd spends per stats interval on a full POP.
 *
 * Fills a temporary shared-memory file with N sites (default 100,000),
 * moves every site's counters and keepalive times before each interval,
 * then times what statsd does per interval: the scan (collect_scan) and the
 * feed (JSON + PUB sends, feed_publish_scan). A forked subscriber reads the
 * feed over TCP on loopback so the sends are real. Prints ms per interval
 * and the share of one core at a 1-second interval.
 *
 * It then times the two answers that cover every site at once: one
 * snapshot (to a client that does not read) and one /metrics page.
 *
 *   statsd_bench [-n SITES] [-i INTERVALS] [-a]
 *     -a  publish every site every interval (no spreading), to see that cost
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "lib/timeutil.h"
#include "shm/shm.h"
#include "statsd/collect.h"
#include "statsd/feed.h"
#include "statsd/http.h"

struct bench {
	unsigned sites;
	unsigned intervals;
	bool all;
	char dir[64];
	char path[128];
	struct shm shm;
	struct conf conf;
	struct collect collect;
	struct feed feed;
};

static uint64_t cpu_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void bench_fill(struct bench *b)
{
	for (uint32_t i = 0; i < b->sites; i++) {
		struct shm_site *s = shm_site_at(&b->shm, i);

		shm_site_write_begin(s);
		snprintf(s->id.name, sizeof(s->id.name), "site-%06u", i);
		s->id.source_ip.s_addr = htonl(0x0a000000 + i);
		s->id.enabled = 1;
		s->id.keepalive = i % 4 != 0;
		s->id.traffic_type = i % SHM_TRAFFIC_COUNT;
		s->id.services = 3;
		s->generation = 1;
		s->in_use = 1;
		shm_site_write_end(s);
	}
}

/* What gatewayd's workers would do in one interval: every site moves. */
static void bench_move(struct bench *b, unsigned round)
{
	uint64_t now = now_realtime_ns();

	for (uint32_t i = 0; i < b->sites; i++) {
		struct shm_site_lane *l = &shm_site_at(&b->shm, i)->lane[i % b->shm.hdr->lanes];

		shm_add(&l->rx_packets, 10 + i % 7);
		shm_add(&l->rx_bytes, 12000 + (i % 13) * 100);
		shm_add(&l->tx_packets, 20);
		shm_add(&l->tx_bytes, 30000 + round);
		shm_set(&l->last_seen_ns, now);
		if (l->established_ns == 0)
			shm_set(&l->established_ns, now);
		if ((i + round) % 10 != 0)
			shm_set(&l->last_keepalive_ns, now);
	}
	shm_set(&b->shm.hdr->pop.healthd_heartbeat_ns, now);
}

static void bench_conf(struct bench *b)
{
	struct conf *c = &b->conf;

	snprintf(c->pop_name, sizeof(c->pop_name), "bench");
	snprintf(c->runtime_dir, sizeof(c->runtime_dir), "%s", b->dir);
	c->n_tenants = 1;
	snprintf(c->tenants[0].name, sizeof(c->tenants[0].name), "default");
	c->keepalive_window_s = 60;
	c->tunnel_idle_s = 1800;
	c->health_interval_ms = 1000;
	c->stats_interval_ms = 1000;
	snprintf(c->stats_feed, sizeof(c->stats_feed), "tcp://127.0.0.1:17491");
	snprintf(c->stats_snapshot, sizeof(c->stats_snapshot), "tcp://127.0.0.1:17492");
}

/* A subscriber in a child process: reads and counts until killed. */
static pid_t bench_subscriber(const char *endpoint)
{
	pid_t pid = fork();
	char buf[4096];

	if (pid != 0)
		return pid;
	void *ctx = zmq_ctx_new();
	void *sub = zmq_socket(ctx, ZMQ_SUB);
	int hwm = 0;

	zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	zmq_connect(sub, endpoint);
	for (;;)
		zmq_recv(sub, buf, sizeof(buf), 0);
}

static int bench_run(struct bench *b)
{
	uint64_t scan_total = 0, feed_total = 0, proc_total = 0, msgs = 0;
	unsigned measured = 0;
	/* Every site is new at start and goes out once, at most a budget per scan. */
	unsigned warmup = (b->sites + b->feed.sites_per_scan - 1) / b->feed.sites_per_scan + 1;

	printf("warm-up: %u intervals (the first message of every site)\n", warmup);
	for (unsigned round = 0; round < warmup + b->intervals; round++) {
		uint64_t t0, t1, t2, p0;

		bench_move(b, round);
		p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
		t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		collect_scan(&b->collect, now_monotonic_ns(), now_realtime_ns(), feed_site_event,
			     &b->feed);
		t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		feed_publish_scan(&b->feed);
		t2 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		usleep(200000);		/* let the I/O thread drain; its CPU counts */
		if (round < warmup)
			continue;
		scan_total += t1 - t0;
		feed_total += t2 - t1;
		proc_total += cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;
		msgs += b->feed.site_messages;
		measured++;
	}
	printf("sites %u, intervals %u, site messages per interval %.0f (refresh every %u)\n",
	       b->sites, measured, (double)msgs / measured, b->feed.refresh_scans);
	printf("scan     %8.1f ms per interval\n", scan_total / 1e6 / measured);
	printf("feed     %8.1f ms per interval (JSON + send)\n", feed_total / 1e6 / measured);
	printf("process  %8.1f ms per interval (with the ZeroMQ I/O thread)\n",
	       proc_total / 1e6 / measured);
	printf("at a 1 s interval: %.1f %% of one core\n", proc_total / 1e7 / measured);
	return 0;
}

/* One snapshot and one /metrics page over every site. */
static void bench_whole(struct bench *b)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	uint64_t t0, t1, t2;

	t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	feed_snapshot_start(&b->feed, "bench", 5, false);
	while (feed_snapshot_step(&b->feed))
		;
	t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	out = open_memstream(&text, &len);
	if (!out)
		return;
	http_write_metrics(&b->collect, out);
	fclose(out);
	t2 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	printf("snapshot %8.1f ms (every site, once; in chunks of %d sites)\n",
	       (t1 - t0) / 1e6, FEED_SNAPSHOT_CHUNK);
	printf("metrics  %8.1f ms (%.1f MB of text)\n", (t2 - t1) / 1e6, len / 1e6);
	free(text);
}

static int bench_setup(struct bench *b)
{
	const char *what = "";
	int r;

	snprintf(b->dir, sizeof(b->dir), "/tmp/statsd_bench.XXXXXX");
	if (!mkdtemp(b->dir))
		return -errno;
	snprintf(b->path, sizeof(b->path), "%s/state", b->dir);
	r = shm_open_or_create(&b->shm, b->path, b->sites, 2);
	if (r < 0)
		return r;
	bench_conf(b);
	bench_fill(b);
	r = collect_init(&b->collect, &b->shm, &b->conf);
	if (r < 0)
		return r;
	r = feed_open(&b->feed, &b->conf, &b->collect, &what);
	if (r < 0)
		fprintf(stderr, "statsd_bench: bind %s: %s\n", what, strerror(-r));
	if (b->all)
		b->feed.sites_per_scan = UINT32_MAX;
	return r;
}

int main(int argc, char **argv)
{
	struct bench b = { .sites = 100000, .intervals = 10 };
	pid_t sub;
	int opt, r;

	while ((opt = getopt(argc, argv, "n:i:ah")) != -1) {
		if (opt == 'n')
			b.sites = strtoul(optarg, NULL, 10);
		else if (opt == 'i')
			b.intervals = strtoul(optarg, NULL, 10);
		else if (opt == 'a')
			b.all = true;
		else {
			fprintf(stderr, "usage: statsd_bench [-n SITES] [-i INTERVALS] [-a]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (b.sites == 0 || b.intervals == 0)
		return 2;
	r = bench_setup(&b);
	if (r < 0) {
		fprintf(stderr, "statsd_bench: setup: %s\n", strerror(-r));
		return 1;
	}
	sub = bench_subscriber(b.conf.stats_feed);
	usleep(300000);		/* the subscription reaches the PUB socket */
	bench_run(&b);
	bench_whole(&b);
	kill(sub, SIGKILL);
	waitpid(sub, NULL, 0);
	feed_close(&b.feed);
	collect_free(&b.collect);
	shm_detach(&b.shm);
	unlink(b.path);
	rmdir(b.dir);
	return 0;
}
