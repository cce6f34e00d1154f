#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/timeutil.h"

bool log_debug_enabled;

static const char *log_ident = "grepop";
static bool log_to_journal;

void log_init(const char *ident, bool debug)
{
	log_ident = ident;
	log_debug_enabled = debug;
	/* systemd sets JOURNAL_STREAM when stderr is connected to journald. */
	log_to_journal = getenv("JOURNAL_STREAM") != NULL || getenv("NOTIFY_SOCKET") != NULL;
}

static const char *level_word(int priority)
{
	switch (priority) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void __attribute__((format(printf, 2, 0)))
log_vmsg(int priority, const char *fmt, va_list ap)
{
	char line[1024];
	char when[32];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_journal) {
		fprintf(stderr, "<%d>%s\n", priority, line);
		return;
	}
	time_format_iso(now_realtime_ns(), when, sizeof(when));
	fprintf(stderr, "%s %s[%d] %s: %s\n", when, log_ident, (int)getpid(),
		level_word(priority), line);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	uint64_t now = now_monotonic_ns();

	if (rl->window_start_ns == 0 || now - rl->window_start_ns >= rl->interval_ns) {
		if (rl->suppressed > 0)
			log_msg(LOG_INFO, "%llu similar messages suppressed",
				(unsigned long long)rl->suppressed);
		rl->window_start_ns = now;
		rl->left = rl->burst;
		rl->suppressed = 0;
	}
	if (rl->left > 0) {
		rl->left--;
		return true;
	}
	rl->suppressed++;
	return false;
}
