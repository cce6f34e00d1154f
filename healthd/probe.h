/*
 * The checks of the downstream services, run concurrently with libcurl's
 * multi interface so that no check can hold up another or the main loop.
 *
 * A probe set holds one transfer per configured check. A round starts every
 * check at once; each ends on its own with a result: http checks pass on a
 * 2xx answer to a GET of the URL, tcp checks when a connection to the
 * address is made (curl's connect-only mode), both within the timeout. The
 * caller's loop waits in probe_poll, which also watches the caller's own
 * descriptors, so one thread serves the checks, signals and timers.
 *
 * Proxies from the environment are ignored, connections are never reused:
 * each check measures a fresh connection to the service itself.
 */
#ifndef HEALTHD_PROBE_H
#define HEALTHD_PROBE_H

#include <curl/curl.h>
#include <stdbool.h>

#include "lib/conf.h"

#define PROBE_REASON_MAX	128

struct probe_result {
	bool done;			/* the check finished in this round */
	bool ok;
	char reason[PROBE_REASON_MAX];	/* why it failed: "HTTP 503", ... */
};

struct probe_set;

/*
 * Make a set for the N checks of CHECKS (copied), each bounded by
 * TIMEOUT_MS. The caller must have called curl_global_init. Returns 0 with
 * *OUT set, or a negative errno.
 */
int probe_set_new(struct probe_set **out, const struct conf_check *checks, unsigned n,
		  unsigned timeout_ms);

/* Stop any check still running and free the set. NULL is allowed. */
void probe_set_free(struct probe_set *ps);

/* Checks in the set, and the configuration of check I (< count). */
unsigned probe_count(const struct probe_set *ps);
const struct conf_check *probe_check(const struct probe_set *ps, unsigned i);

/* "http://198.19.0.2/healthz" or "127.0.0.1:443": what check I probes. */
const char *probe_target(const struct probe_set *ps, unsigned i);

/*
 * Start a round: every check begins again. A check still running from the
 * last round is stopped first (see probe_round_stop). Returns 0 or a
 * negative errno (then the round holds no running check).
 */
int probe_round_start(struct probe_set *ps);

/*
 * End the round now: every check still running fails with "timeout after
 * N ms" (N measured). Results stay readable until the next start.
 */
void probe_round_stop(struct probe_set *ps);

/* True when a round was started and every check of it has finished. */
bool probe_round_done(const struct probe_set *ps);

/* The result of check I (< count) in the current round. */
const struct probe_result *probe_result(const struct probe_set *ps, unsigned i);

/*
 * Wait at most TIMEOUT_MS for the checks' sockets, libcurl's own timers or
 * one of the N_EXTRA caller descriptors (their revents are filled), then
 * drive the transfers and collect the checks that finished. Returns 0 or a
 * negative errno.
 */
int probe_poll(struct probe_set *ps, struct curl_waitfd *extra, unsigned n_extra,
	       int timeout_ms);

#endif
