/*
 * The health state machine of the downstream services, one per service
 * (swg, cfw), with rise/fall hysteresis as HAProxy and keepalived use it.
 *
 * Each probe round gives every service one verdict: it passed when every
 * one of its checks passed, and failed when any one failed (the first
 * failure is kept as the reason). The machine counts consecutive verdicts:
 *
 *   UNKNOWN --rise passes--> UP      UNKNOWN --fall failures--> DOWN
 *   DOWN    --rise passes--> UP      UP      --fall failures--> DOWN
 *
 * A verdict of the other kind resets the run. So a service starts UNKNOWN
 * (and gatewayd treats UNKNOWN as not healthy) until it has earned either
 * state, and a flapping service stays where it is. A service with no check
 * configured is UP at once: nobody asked healthd to watch it, and failing
 * closed on it would take the POP down for a configuration omission.
 *
 * Everything here is pure and single-threaded: no I/O but the stores into
 * the caller's shared memory, no logging, no allocation. healthd's main
 * loop is the only caller.
 */
#ifndef HEALTHD_HEALTH_H
#define HEALTHD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"
#include "shm/shm.h"

#define HEALTH_REASON_MAX	128

/* One round of one service: what its checks said. */
struct health_verdict {
	unsigned checks;			/* checks that reported */
	unsigned failed;
	char reason[HEALTH_REASON_MAX];		/* first failure: "HTTP 503" */
	char target[CONF_ADDR_MAX];		/* its URL or address */
};

struct health_service {
	enum shm_health state;
	unsigned passes;			/* consecutive passed rounds */
	unsigned failures;			/* consecutive failed rounds */
	uint64_t since_ns;			/* CLOCK_REALTIME of the last change */
	uint64_t checks_ok;			/* single checks, cumulative */
	uint64_t checks_failed;
	char reason[HEALTH_REASON_MAX];		/* latest failure, kept while DOWN */
	char target[CONF_ADDR_MAX];
};

/* A state change, for the one log line and the one event it causes. */
struct health_change {
	enum shm_service service;
	enum shm_health from;
	enum shm_health to;
	char reason[HEALTH_REASON_MAX];		/* "HTTP 503", "all checks passed" */
	char target[CONF_ADDR_MAX];		/* empty when no single check is to blame */
};

/* An empty verdict, before the round's results are added. */
void health_verdict_init(struct health_verdict *v);

/*
 * Add one check's result. REASON and TARGET describe a failure and may be
 * NULL for a success; the first failure of the round is the one kept.
 */
void health_verdict_add(struct health_verdict *v, bool ok, const char *reason,
			const char *target);

/* A service that was never probed: UNKNOWN, all counts zero. */
void health_service_init(struct health_service *svc);

/*
 * Feed one round's verdict into SVC (a verdict with no checks is ignored).
 * RISE and FALL below 1 count as 1. Returns true when the state changed,
 * with CHANGE filled (its service is set to SERVICE).
 */
bool health_update(struct health_service *svc, enum shm_service service,
		   const struct health_verdict *v, unsigned rise, unsigned fall,
		   uint64_t now_ns, struct health_change *change);

/*
 * A service with no check configured: UP at once. Returns true when that
 * is a change, with CHANGE filled.
 */
bool health_set_unchecked(struct health_service *svc, enum shm_service service,
			  uint64_t now_ns, struct health_change *change);

/*
 * "service swg: up -> down (HTTP 503 from http://198.19.0.2/healthz)", the
 * info line of a change, into BUF. Returns BUF.
 */
const char *health_change_format(const struct health_change *change, char *buf, size_t len);

/*
 * One line for systemd's STATUS=: "swg up, cfw down (HTTP 503)". Returns
 * BUF.
 */
const char *health_status_format(const struct health_service svc[SHM_SVC_COUNT], char *buf,
				 size_t len);

/*
 * Store the state, since and counters of every service into the segment's
 * POP block. Only healthd's main loop may call it: it is the one writer.
 */
void health_publish(struct shm_header *hdr, const struct health_service svc[SHM_SVC_COUNT]);

/*
 * Take over what an earlier healthd left in the segment: the cumulative
 * check counters always (no restart resets a counter), the state and its
 * since only when the old heartbeat is at most MAX_AGE_NS older than
 * NOW_NS, so that a quick restart does not send a healthy POP through
 * UNKNOWN. SVC must be freshly initialised. Same caller rule.
 */
void health_adopt(struct health_service svc[SHM_SVC_COUNT], const struct shm_header *hdr,
		  uint64_t now_ns, uint64_t max_age_ns);

/* Store healthd's heartbeat (CLOCK_REALTIME ns). Same caller rule. */
void health_heartbeat(struct shm_header *hdr, uint64_t realtime_ns);

#endif
