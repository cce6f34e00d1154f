#ifndef GREPOP_TIMEUTIL_H
#define GREPOP_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC	1000000000ULL
#define NSEC_PER_MSEC	1000000ULL

/* Wall-clock time in ns, as stored in shared memory. */
static inline uint64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Monotonic time in ns, for intervals inside one process. */
static inline uint64_t now_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* "2026-12-03T13:24:05Z" into BUF (at least 21 bytes); "never" for 0. */
const char *time_format_iso(uint64_t realtime_ns, char *buf, size_t len);

#endif
