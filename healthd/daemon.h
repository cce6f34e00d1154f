/*
 * healthd's main loop: one thread that waits on the checks' sockets, a
 * signalfd and its own deadlines, and so keeps writing the heartbeat and
 * feeding systemd's watchdog whatever the checks do.
 *
 * Every health_interval_ms a probe round starts. A round is judged when its
 * last check finishes, or when the next round is due (a check still running
 * then fails as a timeout: a check gets at most min(timeout, interval)).
 * Heartbeat and watchdog run on their own tick: the interval, or half the
 * watchdog period when that is shorter.
 */
#ifndef HEALTHD_DAEMON_H
#define HEALTHD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "healthd/health.h"
#include "healthd/probe.h"
#include "lib/conf.h"
#include "lib/events.h"
#include "shm/shm.h"

#define HEALTHD_STATUS_MAX	256

struct healthd {
	const char *conf_path;
	struct conf *conf;			/* the one in force */
	struct shm shm;
	struct events *events;			/* NULL when statsd's socket failed */
	struct probe_set *probes;
	struct health_service svc[SHM_SVC_COUNT];
	int sigfd;
	bool round_open;			/* started and not judged yet */
	bool stop;
	uint64_t watchdog_usec;			/* 0 when systemd wants none */
	uint64_t tick_ns;			/* heartbeat and watchdog period */
	uint64_t next_tick_ns;			/* CLOCK_MONOTONIC deadlines */
	uint64_t next_round_ns;
	char status[HEALTHD_STATUS_MAX];	/* last STATUS= sent */
};

/*
 * Load CONF_PATH, attach (or create) the shared memory, connect to statsd,
 * start the first round and tell systemd READY=1. Logs what failed and
 * returns a negative errno; then healthd_stop still must be called.
 */
int healthd_start(struct healthd *hd, const char *conf_path);

/* Serve until SIGTERM or SIGINT. Returns 0, or a negative errno (logged). */
int healthd_run(struct healthd *hd);

/* Release everything. The health and heartbeat in shared memory stay. */
void healthd_stop(struct healthd *hd);

#endif
