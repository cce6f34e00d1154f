/*
 * The commands of grepopctl, one function each, called from main()'s
 * dispatch table. This is the tool's boundary: each command prints its
 * result to stdout and its one error message to stderr ("grepopctl: what
 * failed: what to do"), and returns 0 or a negative errno that
 * cli_exit_code() turns into the exit code.
 */
#ifndef GREPOPCTL_COMMANDS_H
#define GREPOPCTL_COMMANDS_H

#include <limits.h>
#include <signal.h>
#include <stdio.h>

#include "grepopctl/cli.h"
#include "grepopctl/client.h"

#define CTL_ENDPOINT_MAX	(PATH_MAX + 16)

struct ctl {
	const struct cli *cli;
	struct client client;
	char ctl_endpoint[CTL_ENDPOINT_MAX];		/* gatewayd, ipc://... */
	char snapshot_endpoint[CTL_ENDPOINT_MAX];	/* statsd */
	char feed_endpoint[CTL_ENDPOINT_MAX];		/* statsd */
	FILE *out;
};

/* Set by main()'s SIGINT/SIGTERM handler: watch and events stop. */
extern volatile sig_atomic_t ctl_stop;

/* gatewayd control requests: site add/edit/enable/..., pop accept, reload. */
int cmd_control(struct ctl *ctl);

/* From statsd's snapshot. */
int cmd_site_list(struct ctl *ctl);
int cmd_site_show(struct ctl *ctl);
int cmd_pop_show(struct ctl *ctl);
int cmd_health_show(struct ctl *ctl);

/* From statsd's feed, until --count, --seconds or SIGINT/SIGTERM. */
int cmd_watch(struct ctl *ctl);
int cmd_events(struct ctl *ctl);

#endif
