/*
 * grepopctl: the operator's and automation's tool for one POP.
 *
 * | owns    | nothing                                                      |
 * | reads   | the configuration (-c), to find the runtime directory and    |
 * |         | statsd's endpoints                                           |
 * | talks   | gatewayd's control socket (REQ), statsd's snapshot (DEALER)  |
 * |         | and feed (SUB)                                               |
 * | needs   | read/write access to the runtime directory for control       |
 *
 * Exit codes: 0 ok, 1 refused or not found, 2 usage, 3 a daemon did not
 * answer.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "grepopctl/cli.h"
#include "grepopctl/commands.h"
#include "lib/conf.h"

static const struct {
	enum cli_verb verb;
	int (*run)(struct ctl *ctl);
} dispatch[] = {
	{ CLI_SITE_LIST, cmd_site_list },
	{ CLI_SITE_SHOW, cmd_site_show },
	{ CLI_SITE_ADD, cmd_control },
	{ CLI_SITE_EDIT, cmd_control },
	{ CLI_SITE_ENABLE, cmd_control },
	{ CLI_SITE_DISABLE, cmd_control },
	{ CLI_SITE_DELETE, cmd_control },
	{ CLI_SITE_IMPORT, cmd_control },
	{ CLI_SITE_EXPORT, cmd_control },
	{ CLI_POP_SHOW, cmd_pop_show },
	{ CLI_POP_ACCEPT, cmd_control },
	{ CLI_POP_NO_NEW, cmd_control },
	{ CLI_POP_DRAIN, cmd_control },
	{ CLI_HEALTH_SHOW, cmd_health_show },
	{ CLI_RELOAD, cmd_control },
	{ CLI_WATCH, cmd_watch },
	{ CLI_EVENTS, cmd_events },
};

/* statsd may bind to every address (tcp, star, port): connect to this host. */
static void client_endpoint(const char *bound, char *buf, size_t len)
{
	if (strncmp(bound, "tcp://*:", 8) == 0)
		snprintf(buf, len, "tcp://127.0.0.1:%s", bound + 8);
	else
		snprintf(buf, len, "%s", bound);
}

static int load_endpoints(struct ctl *ctl, const char *path)
{
	char err[CONF_ERR_MAX];
	struct conf *conf = malloc(sizeof(*conf));

	if (!conf)
		return -ENOMEM;
	if (conf_load(conf, path, err) < 0) {
		fprintf(stderr, "grepopctl: %s\n", err);
		free(conf);
		return -ENOENT;
	}
	conf_ctl_endpoint(conf, ctl->ctl_endpoint, sizeof(ctl->ctl_endpoint));
	client_endpoint(conf->stats_snapshot, ctl->snapshot_endpoint,
			sizeof(ctl->snapshot_endpoint));
	client_endpoint(conf->stats_feed, ctl->feed_endpoint, sizeof(ctl->feed_endpoint));
	free(conf);
	return 0;
}

static void on_signal(int sig)
{
	ctl_stop = 1;
}

/* No SA_RESTART: a blocking wait on the feed returns EINTR and the loop ends. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int run(const struct cli *cli)
{
	struct ctl ctl = { .cli = cli, .out = stdout };
	int r;

	r = load_endpoints(&ctl, cli->conf_path);
	if (r < 0)
		return r;
	r = client_open(&ctl.client, cli->timeout_ms);
	if (r < 0)
		return r;
	catch_signals();
	for (size_t i = 0; i < sizeof(dispatch) / sizeof(dispatch[0]); i++)
		if (dispatch[i].verb == cli->verb)
			r = dispatch[i].run(&ctl);
	client_close(&ctl.client);
	return r;
}

int main(int argc, char **argv)
{
	char err[CLI_ERR_MAX];
	struct cli cli;
	int r;

	r = cli_parse(&cli, argc, argv, err);
	if (r < 0) {
		fprintf(stderr, "grepopctl: %s\n", err);
		return cli_exit_code(r);
	}
	if (cli.verb == CLI_HELP) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	r = run(&cli);
	if (fflush(stdout) != 0 && r == 0)
		r = -EIO;
	return cli_exit_code(r);
}
