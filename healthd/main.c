/*
 * healthd: probes the downstream security services and publishes their
 * health for gatewayd.
 *
 *   owns        pop.service[].health, since_ns, checks_ok, checks_failed
 *               and pop.healthd_heartbeat_ns in shared memory
 *               (<runtime_dir>/state; whichever grepop process starts first
 *               creates the segment, the others attach it as it is)
 *   reads       the configuration: health { } checks, interval, timeout,
 *               rise, fall; runtime_dir and the segment's size
 *   talks to    the services (HTTP GET, TCP connect); statsd (events PUSH,
 *               ipc://<runtime_dir>/events.sock); systemd (sd_notify)
 *   privileges  none: the checks are ordinary outgoing connections
 *
 * On exit the health stays as it was: gatewayd sees the heartbeat age and
 * fails closed by itself, so a healthd that dies and one that stops look
 * the same to it.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "healthd/daemon.h"
#include "lib/conf.h"
#include "lib/log.h"
#include "lib/options.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: healthd [-c FILE] [-n] [-d] [-h]\n"
		     "  -c FILE  configuration (default " OPTIONS_DEFAULT_CONF ")\n"
		     "  -n       check the configuration, print it and exit\n"
		     "  -d       debug logging (every probe result)\n"
		     "  -h       this help\n");
}

int main(int argc, char **argv)
{
	struct options opts;
	struct healthd hd;
	int r;

	r = options_parse(argc, argv, false, usage, &opts);
	if (r >= 0)
		return r;
	log_init("healthd", opts.debug);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("libcurl failed to initialise");
	r = healthd_start(&hd, opts.conf_path);
	if (r == 0)
		r = healthd_run(&hd);
	healthd_stop(&hd);
	curl_global_cleanup();
	return r < 0 ? 1 : 0;
}
