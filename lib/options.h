/*
 * The command line every daemon shares: -c FILE, -n, -d, -h (and -s FILE
 * for gatewayd), with the same meanings and exit statuses everywhere.
 */
#ifndef GREPOP_OPTIONS_H
#define GREPOP_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#define OPTIONS_DEFAULT_CONF	"/etc/grepop/grepop.conf"

struct options {
	const char *conf_path;		/* -c, default OPTIONS_DEFAULT_CONF */
	const char *sites_path;		/* -s, NULL for the configuration's */
	bool debug;			/* -d */
};

/*
 * Parse ARGV into OPTS. -s is accepted only when WITH_SITES. Returns -1
 * when the daemon should go on, or the exit status main() returns: 0 after
 * -h (USAGE printed to stdout) or a good -n check, 1 after a bad -n check,
 * 2 for a usage error (USAGE printed to stderr).
 */
int options_parse(int argc, char **argv, bool with_sites, void (*usage)(FILE *out),
		  struct options *opts);

#endif
