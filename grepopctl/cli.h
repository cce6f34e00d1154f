/*
 * grepopctl's command line: the table of commands, their options
 * (getopt_long per command), and the control requests built from them.
 *
 *   grepopctl [-c FILE] [--json] [-t SECONDS] COMMAND ...
 *
 * Parsing never exits and never prints: it fills struct cli or returns
 * -EINVAL with a message that names what is wrong and the usage line of the
 * command, for main() to print and turn into exit code 2.
 */
#ifndef GREPOPCTL_CLI_H
#define GREPOPCTL_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "grepopctl/render.h"

#define CLI_DEFAULT_CONF	"/etc/grepop/grepop.conf"
#define CLI_DEFAULT_TIMEOUT_MS	3000
#define CLI_MAX_COLUMNS		16
#define CLI_ERR_MAX		512

/* Exit codes. */
#define CLI_EXIT_OK		0
#define CLI_EXIT_REFUSED	1	/* refused, not found, bad input file */
#define CLI_EXIT_USAGE		2
#define CLI_EXIT_UNREACHABLE	3	/* a daemon did not answer */

enum cli_verb {
	CLI_HELP,
	CLI_SITE_LIST,
	CLI_SITE_SHOW,
	CLI_SITE_ADD,
	CLI_SITE_EDIT,
	CLI_SITE_ENABLE,
	CLI_SITE_DISABLE,
	CLI_SITE_DELETE,
	CLI_SITE_IMPORT,
	CLI_SITE_EXPORT,
	CLI_POP_SHOW,
	CLI_POP_ACCEPT,
	CLI_POP_NO_NEW,
	CLI_POP_DRAIN,
	CLI_HEALTH_SHOW,
	CLI_RELOAD,
	CLI_WATCH,
	CLI_EVENTS,
	CLI_VERB_COUNT
};

struct cli {
	const char *conf_path;
	bool json;
	unsigned timeout_ms;
	enum cli_verb verb;
	const char *usage;		/* "site list [--status ...]", static */

	/* site list, watch */
	struct render_filter filter;
	unsigned page;			/* 0 when not given */

	/* the positional arguments: site names or a file (point into argv) */
	unsigned n_args;
	char **args;

	/* site add, site edit: sites-file columns and their text */
	unsigned n_set;
	const char *set_column[CLI_MAX_COLUMNS];
	const char *set_value[CLI_MAX_COLUMNS];

	bool dry_run;			/* site import */
	unsigned count;			/* watch, events: stop after N messages */
	unsigned seconds;		/* watch, events: stop after N seconds */
};

/*
 * Parse ARGV (argv[0] is the program). ARGV may be permuted and CLI points
 * into it. Returns 0, or -EINVAL with "what is wrong" and a usage line in
 * ERR. Not reentrant (getopt).
 */
int cli_parse(struct cli *cli, int argc, char **argv, char err[CLI_ERR_MAX]);

/* Every command with its options, for --help and "help". */
void cli_print_usage(FILE *out);

/*
 * The control request (docs/architecture.md, "Control protocol") for
 * commands that gatewayd serves; CSV_TEXT is the file read for site import.
 * Returns a new reference, or NULL for commands served elsewhere.
 */
json_t *cli_request(const struct cli *cli, const char *csv_text);

/*
 * Exit code for a command's result: 0, -EINVAL (usage) -> 2, -ETIMEDOUT or
 * -EHOSTDOWN (a daemon did not answer) -> 3, any other error -> 1.
 */
int cli_exit_code(int err);

#endif
