#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "healthd/daemon.h"
#include "lib/log.h"
#include "lib/timeutil.h"

static unsigned healthd_interval_ms(const struct conf *conf)
{
	return conf->health_interval_ms ? conf->health_interval_ms : 1000;
}

static uint64_t healthd_tick_ns(const struct healthd *hd)
{
	uint64_t tick = (uint64_t)healthd_interval_ms(hd->conf) * NSEC_PER_MSEC;
	uint64_t half_watchdog = hd->watchdog_usec * 1000 / 2;

	return hd->watchdog_usec && half_watchdog < tick ? half_watchdog : tick;
}

/* The next deadline after NOW; a loop that fell far behind does not race. */
static uint64_t healthd_advance(uint64_t deadline, uint64_t period, uint64_t now)
{
	deadline += period;
	return deadline > now ? deadline : now + period;
}

static void healthd_notify_status(struct healthd *hd, bool ready)
{
	char status[HEALTHD_STATUS_MAX];

	health_status_format(hd->svc, status, sizeof(status));
	if (!ready && strcmp(status, hd->status) == 0)
		return;
	memcpy(hd->status, status, sizeof(status));
	sd_notifyf(0, "%sSTATUS=%s", ready ? "READY=1\n" : "", status);
}

/* One state change: one info line and one event, nothing else. */
static void healthd_report(struct healthd *hd, const struct health_change *c)
{
	char line[512];
	json_t *fields;

	log_info("%s", health_change_format(c, line, sizeof(line)));
	if (!hd->events)
		return;
	fields = json_pack("{s:s, s:s, s:s, s:s}", "service", shm_service_name(c->service),
			   "from", shm_health_name(c->from), "to", shm_health_name(c->to),
			   "reason", c->reason);
	if (!fields)
		return;
	if (events_send(hd->events, c->to == SHM_HEALTH_UP ? "service.up" : "service.down",
			fields) < 0)
		log_debug("event of service %s dropped (statsd not reading)",
			  shm_service_name(c->service));
}

/* Services nobody configured a check for are up (see health.h). */
static void healthd_mark_unchecked(struct healthd *hd)
{
	struct health_change change;
	bool checked[SHM_SVC_COUNT] = { false };

	for (unsigned i = 0; i < probe_count(hd->probes); i++)
		checked[probe_check(hd->probes, i)->service] = true;
	for (int s = 0; s < SHM_SVC_COUNT; s++)
		if (!checked[s] && health_set_unchecked(&hd->svc[s], s, now_realtime_ns(), &change))
			healthd_report(hd, &change);
}

static void healthd_judge(struct healthd *hd)
{
	struct health_verdict v[SHM_SVC_COUNT];
	struct health_change change;
	uint64_t now = now_realtime_ns();

	for (int s = 0; s < SHM_SVC_COUNT; s++)
		health_verdict_init(&v[s]);
	for (unsigned i = 0; i < probe_count(hd->probes); i++) {
		const struct probe_result *r = probe_result(hd->probes, i);
		const char *target = probe_target(hd->probes, i);

		log_debug("check %s of %s: %s", target,
			  shm_service_name(probe_check(hd->probes, i)->service),
			  r->ok ? "passed" : r->reason);
		health_verdict_add(&v[probe_check(hd->probes, i)->service], r->ok, r->reason,
				   target);
	}
	for (int s = 0; s < SHM_SVC_COUNT; s++)
		if (health_update(&hd->svc[s], s, &v[s], hd->conf->health_rise,
				  hd->conf->health_fall, now, &change))
			healthd_report(hd, &change);
	hd->round_open = false;
	health_publish(hd->shm.hdr, hd->svc);
	healthd_notify_status(hd, false);
}

static void healthd_start_round(struct healthd *hd)
{
	int r = probe_round_start(hd->probes);

	/* Out of memory in curl: this round is skipped, the next one retries. */
	if (r < 0)
		log_warning("cannot start the checks: %s; retrying next interval", strerror(-r));
	hd->round_open = r == 0;
}

static void healthd_tick(struct healthd *hd)
{
	health_heartbeat(hd->shm.hdr, now_realtime_ns());
	if (hd->watchdog_usec)
		sd_notify(0, "WATCHDOG=1");
}

static void healthd_timers(struct healthd *hd)
{
	uint64_t now = now_monotonic_ns();

	if (now >= hd->next_tick_ns) {
		healthd_tick(hd);
		hd->next_tick_ns = healthd_advance(hd->next_tick_ns, hd->tick_ns, now);
	}
	if (now < hd->next_round_ns)
		return;
	if (hd->round_open) {
		probe_round_stop(hd->probes);
		healthd_judge(hd);
	}
	healthd_start_round(hd);
	hd->next_round_ns = healthd_advance(hd->next_round_ns,
					    (uint64_t)healthd_interval_ms(hd->conf) * NSEC_PER_MSEC,
					    now);
}

/* Milliseconds until the next deadline, rounded up. */
static int healthd_wait_ms(const struct healthd *hd)
{
	uint64_t now = now_monotonic_ns();
	uint64_t next = hd->next_tick_ns < hd->next_round_ns ? hd->next_tick_ns : hd->next_round_ns;

	if (next <= now)
		return 0;
	return (int)((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
}

static int healthd_load(struct conf **out, const char *path, char err[CONF_ERR_MAX])
{
	struct conf *conf = malloc(sizeof(*conf));

	if (!conf) {
		snprintf(err, CONF_ERR_MAX, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	if (conf_load(conf, path, err) < 0) {
		free(conf);
		return -EINVAL;
	}
	*out = conf;
	return 0;
}

/* SIGHUP: a new configuration, or the old one and a warning. */
static void healthd_reload(struct healthd *hd)
{
	char err[CONF_ERR_MAX];
	struct probe_set *probes;
	struct conf *conf;
	int r;

	if (healthd_load(&conf, hd->conf_path, err) < 0) {
		log_warning("reload: %s; keeping the previous configuration", err);
		return;
	}
	r = probe_set_new(&probes, conf->checks, conf->n_checks, conf->health_timeout_ms);
	if (r < 0) {
		log_warning("reload: cannot set up the checks: %s; keeping the previous "
			    "configuration", strerror(-r));
		free(conf);
		return;
	}
	if (strcmp(conf->runtime_dir, hd->conf->runtime_dir) != 0) {
		log_warning("reload: runtime_dir %s takes effect at the next start; still using %s",
			    conf->runtime_dir, hd->conf->runtime_dir);
		memcpy(conf->runtime_dir, hd->conf->runtime_dir, sizeof(conf->runtime_dir));
	}
	/* The unfinished round belongs to the old checks: it is not judged. */
	probe_set_free(hd->probes);
	free(hd->conf);
	hd->probes = probes;
	hd->conf = conf;
	hd->round_open = false;
	for (int s = 0; s < SHM_SVC_COUNT; s++)
		hd->svc[s].passes = hd->svc[s].failures = 0;
	healthd_mark_unchecked(hd);
	health_publish(hd->shm.hdr, hd->svc);
	healthd_notify_status(hd, false);
	hd->tick_ns = healthd_tick_ns(hd);
	hd->next_tick_ns = hd->next_round_ns = now_monotonic_ns();
	log_info("configuration reloaded from %s: %u checks every %u ms", hd->conf_path,
		 conf->n_checks, healthd_interval_ms(conf));
}

static void healthd_signals(struct healthd *hd)
{
	struct signalfd_siginfo si;

	while (read(hd->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			healthd_reload(hd);
			continue;
		}
		log_info("stopping on %s", strsignal((int)si.ssi_signo));
		hd->stop = true;
	}
}

int healthd_run(struct healthd *hd)
{
	int r = 0;

	while (!hd->stop) {
		struct curl_waitfd sig = { .fd = hd->sigfd, .events = CURL_WAIT_POLLIN };

		r = probe_poll(hd->probes, &sig, 1, healthd_wait_ms(hd));
		if (r < 0) {
			log_error("waiting for the checks: %s", strerror(-r));
			break;
		}
		if (sig.revents)
			healthd_signals(hd);
		if (hd->stop)
			break;
		if (hd->round_open && probe_round_done(hd->probes))
			healthd_judge(hd);
		healthd_timers(hd);
	}
	sd_notify(0, "STOPPING=1");
	return r;
}

static int healthd_open_signals(struct healthd *hd)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	hd->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return hd->sigfd < 0 ? -errno : 0;
}

static int healthd_attach(struct healthd *hd)
{
	const struct conf *conf = hd->conf;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t lanes = conf->workers;
	char path[PATH_MAX];
	int r;

	/* gatewayd's rule: one lane per worker, one worker per core by default. */
	if (lanes == 0)
		lanes = cores < 1 ? 1 : cores > SHM_MAX_LANES ? SHM_MAX_LANES : (uint32_t)cores;
	conf_runtime_path(conf, SHM_FILE_NAME, path, sizeof(path));
	r = shm_open_or_create(&hd->shm, path, conf->max_sites, lanes);
	if (r < 0) {
		log_error("%s: %s", path, shm_describe_error(r));
		return r;
	}
	if (hd->shm.created)
		log_info("created shared memory %s (%u sites, %u lanes)", path,
			 conf->max_sites, lanes);
	return 0;
}

int healthd_start(struct healthd *hd, const char *conf_path)
{
	char err[CONF_ERR_MAX];
	uint64_t interval_ns;
	int r;

	memset(hd, 0, sizeof(*hd));
	hd->sigfd = -1;
	hd->shm.fd = -1;
	hd->conf_path = conf_path;
	for (int s = 0; s < SHM_SVC_COUNT; s++)
		health_service_init(&hd->svc[s]);
	r = healthd_load(&hd->conf, conf_path, err);
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	r = healthd_open_signals(hd);
	if (r < 0) {
		log_error("signalfd: %s", strerror(-r));
		return r;
	}
	r = healthd_attach(hd);
	if (r < 0)
		return r;
	r = probe_set_new(&hd->probes, hd->conf->checks, hd->conf->n_checks,
			  hd->conf->health_timeout_ms);
	if (r < 0) {
		log_error("cannot set up the checks: %s", strerror(-r));
		return r;
	}
	hd->events = events_open(hd->conf);
	if (!hd->events)
		log_warning("events to statsd: %s; health changes go to shared memory only",
			    strerror(errno));

	/* A state younger than fall intervals could not have been disproved yet. */
	interval_ns = (uint64_t)healthd_interval_ms(hd->conf) * NSEC_PER_MSEC;
	health_adopt(hd->svc, hd->shm.hdr, now_realtime_ns(),
		     (hd->conf->health_fall ? hd->conf->health_fall : 1) * interval_ns);
	healthd_mark_unchecked(hd);
	health_publish(hd->shm.hdr, hd->svc);

	sd_watchdog_enabled(0, &hd->watchdog_usec);
	hd->tick_ns = healthd_tick_ns(hd);
	healthd_start_round(hd);
	healthd_notify_status(hd, true);
	healthd_tick(hd);
	hd->next_tick_ns = now_monotonic_ns() + hd->tick_ns;
	hd->next_round_ns = now_monotonic_ns() + interval_ns;
	log_info("started: %u checks every %u ms, rise %u, fall %u", hd->conf->n_checks,
		 healthd_interval_ms(hd->conf), hd->conf->health_rise, hd->conf->health_fall);
	return 0;
}

void healthd_stop(struct healthd *hd)
{
	probe_set_free(hd->probes);
	events_close(hd->events);
	if (hd->shm.hdr)
		shm_detach(&hd->shm);
	if (hd->sigfd >= 0)
		close(hd->sigfd);
	free(hd->conf);
	hd->probes = NULL;
	hd->events = NULL;
	hd->conf = NULL;
	hd->sigfd = -1;
}
