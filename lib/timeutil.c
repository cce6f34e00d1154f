#include <stdio.h>

#include "lib/timeutil.h"

const char *time_format_iso(uint64_t realtime_ns, char *buf, size_t len)
{
	time_t secs = (time_t)(realtime_ns / NSEC_PER_SEC);
	struct tm tm;

	if (realtime_ns == 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	gmtime_r(&secs, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}
