/*
 * Logging for the daemons: to stderr, with a syslog priority prefix ("<3>")
 * when run by systemd (journald turns it into the level), with a time and
 * level word on a terminal.
 *
 * Levels have fixed meanings: error, a failure that stops something;
 * warning, a failure tolerated (the message says what is done instead);
 * info, a state change an operator cares about; debug, everything else,
 * compiled to nothing unless enabled. Library code never logs; the
 * per-packet path never logs, it counts.
 */
#ifndef GREPOP_LOG_H
#define GREPOP_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* Call once from main() before anything logs. */
void log_init(const char *ident, bool debug);

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)		log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)		log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)							\
	do {								\
		if (log_debug_enabled)					\
			log_msg(LOG_DEBUG, __VA_ARGS__);		\
	} while (0)

extern bool log_debug_enabled;

/* Log at error level and exit 1. Only at start-up or on a broken invariant. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A token bucket for repeated events: at most BURST in a row, then one
 * every INTERVAL_MS. Not thread-safe: one per thread that uses it.
 */
struct log_ratelimit {
	uint64_t interval_ns;
	unsigned burst;
	unsigned left;
	uint64_t window_start_ns;
	uint64_t suppressed;
};

#define LOG_RATELIMIT_INIT(interval_ms, burst_) \
	{ .interval_ns = (uint64_t)(interval_ms) * 1000000, .burst = (burst_) }

/* True if the event may be logged now; counts the suppressed ones. */
bool log_ratelimit_ok(struct log_ratelimit *rl);

#endif
