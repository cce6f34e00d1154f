#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "grepopctl/cli.h"
#include "shm/shm.h"

/* Option groups a command accepts beside --json and -t. */
#define GRP_FILTER	0x1		/* --status --pop --traffic-type --name --page */
#define GRP_COLUMNS	0x2		/* --source-ip ... --rate-mbps */
#define GRP_DRY_RUN	0x4
#define GRP_STREAM	0x8		/* --count --seconds */

#define MANY		1000000

struct cli_command {
	const char *noun;
	const char *verb;		/* NULL for one-word commands */
	enum cli_verb id;
	const char *args;		/* the rest of the usage line */
	unsigned min_args, max_args;
	unsigned groups;
};

#define FILTER_ARGS "[--status up|down|disabled] [--pop NAME] [--traffic-type T] " \
	"[--name SUBSTR] [--page N]"
#define COLUMN_ARGS "[--traffic-type T] [--services S] [--keepalive yes|no] " \
	"[--enabled yes|no] [--tenant T] [--key N] [--http-ports P;P] [--rate-mbps N]"

static const struct cli_command commands[] = {
	{ "site", "list", CLI_SITE_LIST, FILTER_ARGS, 0, 0, GRP_FILTER },
	{ "site", "show", CLI_SITE_SHOW, "NAME", 1, 1, 0 },
	{ "site", "add", CLI_SITE_ADD, "NAME --source-ip IP " COLUMN_ARGS, 1, 1, GRP_COLUMNS },
	{ "site", "edit", CLI_SITE_EDIT, "NAME [--source-ip IP] " COLUMN_ARGS, 1, 1,
	  GRP_COLUMNS },
	{ "site", "enable", CLI_SITE_ENABLE, "NAME...", 1, MANY, 0 },
	{ "site", "disable", CLI_SITE_DISABLE, "NAME...", 1, MANY, 0 },
	{ "site", "delete", CLI_SITE_DELETE, "NAME...", 1, MANY, 0 },
	{ "site", "import", CLI_SITE_IMPORT, "FILE.csv [--dry-run]", 1, 1, GRP_DRY_RUN },
	{ "site", "export", CLI_SITE_EXPORT, "", 0, 0, 0 },
	{ "pop", "show", CLI_POP_SHOW, "", 0, 0, 0 },
	{ "pop", "accept", CLI_POP_ACCEPT, "", 0, 0, 0 },
	{ "pop", "no-new", CLI_POP_NO_NEW, "", 0, 0, 0 },
	{ "pop", "drain", CLI_POP_DRAIN, "", 0, 0, 0 },
	{ "health", "show", CLI_HEALTH_SHOW, "", 0, 0, 0 },
	{ "reload", NULL, CLI_RELOAD, "", 0, 0, 0 },
	{ "watch", NULL, CLI_WATCH, FILTER_ARGS " [--count N] [--seconds N]", 0, 0,
	  GRP_FILTER | GRP_STREAM },
	{ "events", NULL, CLI_EVENTS, "[--count N] [--seconds N]", 0, 0, GRP_STREAM },
	{ "help", NULL, CLI_HELP, "", 0, 0, 0 },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Long options; values above 255 have no short form. */
enum {
	OPT_TIMEOUT = 't',
	OPT_JSON = 256,
	OPT_STATUS, OPT_POP, OPT_FILTER_TYPE, OPT_NAME, OPT_PAGE,
	OPT_DRY_RUN, OPT_COUNT, OPT_SECONDS,
	OPT_COLUMN,			/* + index into site_columns */
};

static const struct { const char *option, *column; } site_columns[] = {
	{ "source-ip", "source_ip" }, { "traffic-type", "traffic_type" },
	{ "services", "services" }, { "keepalive", "keepalive" },
	{ "enabled", "enabled" }, { "tenant", "tenant" }, { "key", "key" },
	{ "http-ports", "http_ports" }, { "rate-mbps", "rate_mbps" },
};

#define N_SITE_COLUMNS (sizeof(site_columns) / sizeof(site_columns[0]))

static char usage_line[CLI_ERR_MAX];

static int __attribute__((format(printf, 3, 4)))
usage_error(const struct cli *cli, char err[CLI_ERR_MAX], const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(err, CLI_ERR_MAX, fmt, ap);
	va_end(ap);
	if (n >= 0 && n < CLI_ERR_MAX)
		snprintf(err + n, CLI_ERR_MAX - n, "\nusage: grepopctl %s",
			 cli->usage ? cli->usage : "[-c FILE] [--json] [-t SECONDS] COMMAND ...");
	return -EINVAL;
}

static bool parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!text || !*text || *text == '-')
		return false;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* -t SECONDS: a positive number of seconds, fractions allowed, up to an hour. */
static bool parse_timeout(const char *text, unsigned *ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(text, &end);
	if (errno || end == text || *end || !(s >= 0.001 && s <= 3600))
		return false;
	*ms = (unsigned)(s * 1000 + 0.5);
	return true;
}

static const struct cli_command *command_find(const char *noun, const char *verb)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].noun, noun) != 0)
			continue;
		if (!commands[i].verb || (verb && strcmp(commands[i].verb, verb) == 0))
			return &commands[i];
	}
	return NULL;
}

/* The verbs of NOUN, "list, show, add" for an error message. */
static void noun_verbs(const char *noun, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_COMMANDS && n < len; i++)
		if (strcmp(commands[i].noun, noun) == 0 && commands[i].verb)
			n += snprintf(buf + n, len - n, "%s%s", n ? ", " : "", commands[i].verb);
}

static void add_option(struct option *opts, size_t *n, const char *name, int has_arg, int val)
{
	opts[*n] = (struct option){ name, has_arg, NULL, val };
	(*n)++;
}

/* The long options of one command: its groups plus --json and --timeout. */
static void command_options(const struct cli_command *cmd, struct option *opts)
{
	size_t n = 0;

	add_option(opts, &n, "json", no_argument, OPT_JSON);
	add_option(opts, &n, "timeout", required_argument, OPT_TIMEOUT);
	add_option(opts, &n, "help", no_argument, 'h');
	if (cmd->groups & GRP_FILTER) {
		add_option(opts, &n, "status", required_argument, OPT_STATUS);
		add_option(opts, &n, "pop", required_argument, OPT_POP);
		add_option(opts, &n, "traffic-type", required_argument, OPT_FILTER_TYPE);
		add_option(opts, &n, "name", required_argument, OPT_NAME);
		add_option(opts, &n, "page", required_argument, OPT_PAGE);
	}
	if (cmd->groups & GRP_COLUMNS)
		for (size_t i = 0; i < N_SITE_COLUMNS; i++)
			add_option(opts, &n, site_columns[i].option, required_argument,
				   OPT_COLUMN + (int)i);
	if (cmd->groups & GRP_DRY_RUN)
		add_option(opts, &n, "dry-run", no_argument, OPT_DRY_RUN);
	if (cmd->groups & GRP_STREAM) {
		add_option(opts, &n, "count", required_argument, OPT_COUNT);
		add_option(opts, &n, "seconds", required_argument, OPT_SECONDS);
	}
	opts[n] = (struct option){ 0 };
}

static int set_column(struct cli *cli, const char *column, const char *value,
		      char err[CLI_ERR_MAX])
{
	for (unsigned i = 0; i < cli->n_set; i++)
		if (strcmp(cli->set_column[i], column) == 0) {
			cli->set_value[i] = value;	/* the last one given wins */
			return 0;
		}
	if (cli->n_set == CLI_MAX_COLUMNS)
		return usage_error(cli, err, "too many options");
	cli->set_column[cli->n_set] = column;
	cli->set_value[cli->n_set++] = value;
	return 0;
}

static int filter_option(struct cli *cli, int opt, const char *arg, char err[CLI_ERR_MAX])
{
	switch (opt) {
	case OPT_STATUS:
		if (strcmp(arg, "up") && strcmp(arg, "down") && strcmp(arg, "disabled"))
			return usage_error(cli, err, "--status %s: expected up, down or disabled",
					   arg);
		cli->filter.status = arg;
		return 0;
	case OPT_POP:
		cli->filter.pop = arg;
		return 0;
	case OPT_FILTER_TYPE:
		if (shm_traffic_type_parse(arg) < 0)
			return usage_error(cli, err, "--traffic-type %s: expected user, iot, "
					   "mixed, machine or guest-wifi", arg);
		cli->filter.traffic_type = arg;
		return 0;
	case OPT_NAME:
		cli->filter.name = arg;
		return 0;
	case OPT_PAGE:
		if (!parse_uint(arg, 1, MANY, &cli->page))
			return usage_error(cli, err, "--page %s: expected a page number from 1",
					   arg);
		return 0;
	}
	return usage_error(cli, err, "internal: option %d", opt);
}

static int command_option(struct cli *cli, int opt, const char *arg, char err[CLI_ERR_MAX])
{
	if (opt >= OPT_COLUMN && opt < OPT_COLUMN + (int)N_SITE_COLUMNS)
		return set_column(cli, site_columns[opt - OPT_COLUMN].column, arg, err);
	switch (opt) {
	case OPT_JSON:
		cli->json = true;
		return 0;
	case OPT_TIMEOUT:
		if (!parse_timeout(arg, &cli->timeout_ms))
			return usage_error(cli, err, "-t %s: expected seconds, e.g. 3 or 0.5",
					   arg);
		return 0;
	case OPT_DRY_RUN:
		cli->dry_run = true;
		return 0;
	case OPT_COUNT:
	case OPT_SECONDS:
		if (!parse_uint(arg, 1, MANY, opt == OPT_COUNT ? &cli->count : &cli->seconds))
			return usage_error(cli, err, "--%s %s: expected a whole number from 1",
					   opt == OPT_COUNT ? "count" : "seconds", arg);
		return 0;
	}
	return filter_option(cli, opt, arg, err);
}

/* What getopt rejected: the option as the user typed it. */
static int option_error(struct cli *cli, int opt, char **argv, char err[CLI_ERR_MAX])
{
	const char *word = argv[optind - 1];

	if (opt == ':')
		return usage_error(cli, err, "%s needs a value", word);
	if (optopt && optopt < 256 && strncmp(word, "--", 2) != 0)
		return usage_error(cli, err, "unknown option -%c", optopt);
	return usage_error(cli, err, "unknown option %s", word);
}

/* Options and positional arguments after the command words. */
static int parse_command(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
			 char err[CLI_ERR_MAX])
{
	struct option opts[32];
	int opt, r;

	command_options(cmd, opts);
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return option_error(cli, opt, argv, err);
		if (opt == 'h') {
			cli->verb = CLI_HELP;
			return 0;
		}
		r = command_option(cli, opt, optarg, err);
		if (r < 0)
			return r;
	}
	cli->args = argv + optind;
	cli->n_args = (unsigned)(argc - optind);
	if (cli->n_args < cmd->min_args)
		return usage_error(cli, err, "missing %s", cmd->args);
	if (cli->n_args > cmd->max_args)
		return usage_error(cli, err, "unexpected argument \"%s\"",
				   cli->args[cmd->max_args]);
	return 0;
}

/* Rules between options, once all are read. */
static int check_command(struct cli *cli, char err[CLI_ERR_MAX])
{
	bool has_source = false;

	for (unsigned i = 0; i < cli->n_set; i++)
		if (strcmp(cli->set_column[i], "source_ip") == 0)
			has_source = true;
	if (cli->verb == CLI_SITE_ADD && !has_source)
		return usage_error(cli, err, "site add needs --source-ip");
	if (cli->verb == CLI_SITE_EDIT && cli->n_set == 0)
		return usage_error(cli, err, "site edit needs at least one option to change");
	return 0;
}

/* -c FILE, --json and -t before the command words. */
static int parse_global(struct cli *cli, int argc, char **argv, char err[CLI_ERR_MAX])
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:c:t:h", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return option_error(cli, opt, argv, err);
		if (opt == 'c') {
			cli->conf_path = optarg;
		} else if (opt == 'h') {
			cli->verb = CLI_HELP;
		} else {
			r = command_option(cli, opt, optarg, err);
			if (r < 0)
				return r;
		}
	}
	return optind;
}

int cli_parse(struct cli *cli, int argc, char **argv, char err[CLI_ERR_MAX])
{
	const struct cli_command *cmd;
	char verbs[128];
	int first;

	memset(cli, 0, sizeof(*cli));
	cli->conf_path = CLI_DEFAULT_CONF;
	cli->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	cli->verb = CLI_VERB_COUNT;
	first = parse_global(cli, argc, argv, err);
	if (first < 0)
		return first;
	if (cli->verb == CLI_HELP)
		return 0;
	if (first >= argc)
		return usage_error(cli, err, "missing command (try: grepopctl help)");

	cmd = command_find(argv[first], first + 1 < argc ? argv[first + 1] : NULL);
	if (!cmd) {
		noun_verbs(argv[first], verbs, sizeof(verbs));
		if (verbs[0] && first + 1 < argc)
			return usage_error(cli, err, "unknown command \"%s %s\": expected %s "
					   "followed by one of: %s", argv[first], argv[first + 1],
					   argv[first], verbs);
		if (verbs[0])
			return usage_error(cli, err, "\"%s\" needs one of: %s", argv[first], verbs);
		return usage_error(cli, err, "unknown command \"%s\" (try: grepopctl help)",
				   argv[first]);
	}
	cli->verb = cmd->id;
	snprintf(usage_line, sizeof(usage_line), "%s%s%s%s%s", cmd->noun, cmd->verb ? " " : "",
		 cmd->verb ? cmd->verb : "", cmd->args[0] ? " " : "", cmd->args);
	cli->usage = usage_line;

	first += cmd->verb ? 1 : 0;
	int r = parse_command(cli, cmd, argc - first, argv + first, err);

	if (r < 0 || cli->verb == CLI_HELP)
		return r;
	return check_command(cli, err);
}

void cli_print_usage(FILE *out)
{
	fputs("usage: grepopctl [-c FILE] [--json] [-t SECONDS] COMMAND ...\n\n"
	      "  -c FILE     configuration (default " CLI_DEFAULT_CONF ")\n"
	      "  --json      machine output: the daemons' objects, one per line for streams\n"
	      "  -t SECONDS  how long to wait for a daemon (default 3)\n\n"
	      "commands:\n", out);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %s%s%s%s%s\n", commands[i].noun, commands[i].verb ? " " : "",
			commands[i].verb ? commands[i].verb : "", commands[i].args[0] ? " " : "",
			commands[i].args);
	fputs("\nexit codes: 0 ok, 1 refused or not found, 2 usage, 3 a daemon did not answer\n",
	      out);
}

static json_t *request_new(const char *command)
{
	return json_pack("{s:s}", "command", command);
}

/* The columns given as options; NAME first when not NULL, as in the file. */
static json_t *request_columns(const struct cli *cli, const char *name)
{
	json_t *set = name ? json_pack("{s:s}", "name", name) : json_object();

	for (unsigned i = 0; set && i < cli->n_set; i++)
		json_object_set_new(set, cli->set_column[i], json_string(cli->set_value[i]));
	return set;
}

static json_t *request_names(const struct cli *cli, const char *command)
{
	json_t *req = request_new(command);
	json_t *names = json_array();

	for (unsigned i = 0; names && i < cli->n_args; i++)
		json_array_append_new(names, json_string(cli->args[i]));
	json_object_set_new(req, "names", names);
	return req;
}

static json_t *request_site(const struct cli *cli)
{
	if (cli->verb == CLI_SITE_EDIT)
		return json_pack("{s:s, s:s, s:o}", "command", "site.edit", "name", cli->args[0],
				 "set", request_columns(cli, NULL));
	return json_pack("{s:s, s:o}", "command", "site.add", "site",
			 request_columns(cli, cli->args[0]));
}

json_t *cli_request(const struct cli *cli, const char *csv_text)
{
	switch (cli->verb) {
	case CLI_SITE_ADD:
	case CLI_SITE_EDIT:
		return request_site(cli);
	case CLI_SITE_ENABLE:
		return request_names(cli, "site.enable");
	case CLI_SITE_DISABLE:
		return request_names(cli, "site.disable");
	case CLI_SITE_DELETE:
		return request_names(cli, "site.delete");
	case CLI_SITE_IMPORT:
		return json_pack("{s:s, s:s, s:s, s:b}", "command", "site.import",
				 "csv", csv_text ? csv_text : "", "file", cli->args[0],
				 "dry_run", cli->dry_run);
	case CLI_SITE_EXPORT:
		return request_new("site.export");
	case CLI_POP_ACCEPT:
		return json_pack("{s:s, s:s}", "command", "pop.accept", "mode", "accept");
	case CLI_POP_NO_NEW:
		return json_pack("{s:s, s:s}", "command", "pop.accept", "mode", "no-new");
	case CLI_POP_DRAIN:
		return json_pack("{s:s, s:s}", "command", "pop.accept", "mode", "drain");
	case CLI_RELOAD:
		return request_new("reload");
	default:
		return NULL;
	}
}

int cli_exit_code(int err)
{
	if (err >= 0)
		return CLI_EXIT_OK;
	if (err == -EINVAL)
		return CLI_EXIT_USAGE;
	if (err == -ETIMEDOUT || err == -EHOSTDOWN)
		return CLI_EXIT_UNREACHABLE;
	return CLI_EXIT_REFUSED;
}
