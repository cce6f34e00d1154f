/*
 * statsd: what the POP is doing, for people and programs.
 *
 *   owns      the stats feed (PUB, stats.feed), the snapshot endpoint
 *             (ROUTER, stats.snapshot), HTTP (stats.http: /metrics,
 *             /api/v1/sites, /api/v1/pop), its heartbeat in shared memory
 *   reads     shared memory (<runtime_dir>/state), the configuration
 *   talks to  gatewayd and healthd push events to it (PULL,
 *             <runtime_dir>/events.sock); subscribers and HTTP clients
 *   privilege none
 *
 * One thread scans shared memory every stats.interval_ms, derives events
 * and publishes; it also serves the event and snapshot sockets between
 * scans. libmicrohttpd runs HTTP on its own thread.
 *
 * Signals: SIGTERM/SIGINT exit, SIGHUP reloads the configuration (kept as
 * it was when the new one does not load).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

#include "lib/conf.h"
#include "lib/log.h"
#include "lib/options.h"
#include "lib/timeutil.h"
#include "shm/shm.h"
#include "statsd/collect.h"
#include "statsd/feed.h"
#include "statsd/http.h"


static volatile sig_atomic_t quit, reload;

static struct conf confs[2];	/* the live one and the one a reload fills */
static int live;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload = 1;
	else
		quit = 1;
}

static void signals_setup(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must end zmq_poll so the loop sees it. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: statsd [-c FILE] [-n] [-d] [-h]\n"
		"  -c FILE  configuration (default " OPTIONS_DEFAULT_CONF ")\n"
		"  -n       check the configuration and sites file, print them, exit\n"
		"  -d       debug logging\n"
		"  -h       this help\n");
}

/* Endpoints are bound once; a reload that moves them needs a restart. */
static void reload_conf(struct collect *c, const char *path)
{
	struct conf *next = &confs[!live];
	const struct conf *cur = &confs[live];
	char err[CONF_ERR_MAX];

	if (conf_load(next, path, err) < 0) {
		log_warning("reload: %s; keeping the running configuration", err);
		return;
	}
	if (strcmp(next->stats_feed, cur->stats_feed) ||
	    strcmp(next->stats_http, cur->stats_http) ||
	    strcmp(next->stats_snapshot, cur->stats_snapshot) ||
	    strcmp(next->runtime_dir, cur->runtime_dir))
		log_warning("reload: endpoints or runtime_dir changed; they apply at restart");
	collect_set_conf(c, next);
	live = !live;
	log_info("configuration reloaded from %s", path);
}

/* Publish a derived event, and say it in the debug log. */
static void on_site_event(void *arg, const char *type, const struct collect_site *s,
			  uint64_t time_ns)
{
	feed_site_event(arg, type, s, time_ns);
	log_debug("%s: %s", s->id.name, type);
}

/* Malformed pushed events: counted by the feed, said here at most once a minute. */
static void report_bad_events(const struct feed *f)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 1);
	static uint64_t reported;

	if (f->events_bad == reported || !log_ratelimit_ok(&rl))
		return;
	log_warning("%llu malformed events on the events socket dropped",
		    (unsigned long long)(f->events_bad - reported));
	reported = f->events_bad;
}

static void scan_once(struct collect *c, struct feed *f, const struct shm *shm, bool watchdog)
{
	static unsigned last_total = UINT32_MAX, last_up, last_down;
	uint64_t real = now_realtime_ns();

	collect_scan(c, now_monotonic_ns(), real, on_site_event, f);
	feed_publish_scan(f);
	report_bad_events(f);
	shm_set(&shm->hdr->pop.statsd_heartbeat_ns, real);
	if (watchdog)
		sd_notify(0, "WATCHDOG=1");
	if (c->pop.total != last_total || c->pop.up != last_up || c->pop.down != last_down) {
		last_total = c->pop.total;
		last_up = c->pop.up;
		last_down = c->pop.down;
		sd_notifyf(0, "STATUS=%u sites, %u up, %u down", last_total, last_up, last_down);
	}
}

static void run(struct collect *c, struct feed *f, const struct shm *shm, const char *path)
{
	uint64_t usec = 0;
	bool watchdog = sd_watchdog_enabled(0, &usec) > 0;
	uint64_t next = now_monotonic_ns();

	while (!quit) {
		uint64_t now = now_monotonic_ns();
		uint64_t interval = (uint64_t)confs[live].stats_interval_ms * NSEC_PER_MSEC;

		if (reload) {
			reload = 0;
			reload_conf(c, path);
		}
		if (now >= next) {
			scan_once(c, f, shm, watchdog);
			next += interval;
			/* Behind by more than an interval (a stall): start again from now. */
			if (next <= now)
				next = now + interval;
			continue;
		}
		feed_poll(f, (long)((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
	}
}

static int serve(const char *path)
{
	const struct conf *conf = &confs[live];
	char state[PATH_MAX + 16];
	struct collect collect;
	struct feed feed;
	struct http *http;
	struct shm shm;
	const char *what = "";
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t lanes = conf->workers ? conf->workers :
			 (uint32_t)(cpus < 1 ? 1 : cpus > SHM_MAX_LANES ? SHM_MAX_LANES : cpus);
	int r;

	conf_runtime_path(conf, SHM_FILE_NAME, state, sizeof(state));
	r = shm_open_or_create(&shm, state, conf->max_sites, lanes);
	if (r < 0)
		fatal("shared memory %s: %s", state, shm_describe_error(r));
	if (collect_init(&collect, &shm, conf) < 0)
		fatal("out of memory for %u site slots", shm.hdr->site_capacity);
	r = feed_open(&feed, conf, &collect, &what);
	if (r < 0)
		fatal("cannot bind %s: %s", what, zmq_strerror(-r));
	http = http_start(conf->stats_http, &collect, &feed);
	if (!http)
		fatal("cannot serve HTTP on %s: %s", conf->stats_http, strerror(errno));
	signals_setup();
	log_info("serving: feed %s, snapshot %s, http %s, %u site slots", conf->stats_feed,
		 conf->stats_snapshot, conf->stats_http, shm.hdr->site_capacity);
	sd_notify(0, "READY=1");
	run(&collect, &feed, &shm, path);
	sd_notify(0, "STOPPING=1");
	http_stop(http);
	feed_close(&feed);
	collect_free(&collect);
	shm_detach(&shm);
	return 0;
}

int main(int argc, char **argv)
{
	struct options opts;
	char err[CONF_ERR_MAX];
	int r;

	r = options_parse(argc, argv, false, usage, &opts);
	if (r >= 0)
		return r;
	log_init("statsd", opts.debug);
	if (conf_load(&confs[live], opts.conf_path, err) < 0)
		fatal("%s", err);
	return serve(opts.conf_path);
}
