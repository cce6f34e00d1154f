/*
 * grepopctl's pure parts: site list filtering, sorting and paging, table
 * alignment, ages and throughput, the views of documented stats messages,
 * argument parsing with its usage errors, and the exact control requests
 * built from options.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grepopctl/cli.h"
#include "grepopctl/render.h"
#include "lib/timeutil.h"

/* 2026-12-03T13:24:05Z */
#define NOW_S		1796304245ULL
#define NOW		(NOW_S * NSEC_PER_SEC)

/* Output of F(ARGS..., stream) as a string the caller frees. */
#define CAPTURE(buf, call)						\
	do {								\
		size_t len_;						\
		FILE *out = open_memstream(&(buf), &len_);		\
		call;							\
		fclose(out);						\
	} while (0)

static json_t *site(const char *name, const char *status, const char *type, const char *pop)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s?, s:s?, s:f, s:f}",
			 "name", name, "source_ip", "198.18.0.2", "status", status,
			 "traffic_type", type, "pop", pop, "pop_backup", "ams1",
			 "keepalive_status", strcmp(status, "up") == 0 ? "seen" : "not seen",
			 "last_keepalive",
			 strcmp(status, "up") == 0 ? "2026-12-03T13:23:53Z" : NULL,
			 "last_user_traffic", NULL, "rx_kbps", 12.5, "tx_kbps", 1300.2);
}

/* 250 sites "s000".."s249" inserted in reverse order, every 5th down. */
static json_t *many_sites(void)
{
	json_t *arr = json_array();
	char name[16];

	for (int i = 249; i >= 0; i--) {
		snprintf(name, sizeof(name), "s%03d", i);
		json_array_append_new(arr, site(name, i % 5 ? "up" : "down",
						i % 2 ? "iot" : "user", "fra1"));
	}
	return arr;
}

static const char *name_at(const json_t *arr, size_t i)
{
	return json_string_value(json_object_get(json_array_get(arr, i), "name"));
}

static void test_paging(void)
{
	struct render_filter none = { 0 };
	struct render_page page;
	json_t *all = many_sites();

	CU_ASSERT_EQUAL(render_select_sites(all, &none, 1, &page), 0);
	CU_ASSERT_EQUAL(page.total, 250);
	CU_ASSERT_EQUAL(page.pages, 3);
	CU_ASSERT_EQUAL(json_array_size(page.sites), 100);
	CU_ASSERT_STRING_EQUAL(name_at(page.sites, 0), "s000");	/* sorted by name */
	CU_ASSERT_STRING_EQUAL(name_at(page.sites, 99), "s099");
	json_decref(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &none, 3, &page), 0);
	CU_ASSERT_EQUAL(json_array_size(page.sites), 50);
	CU_ASSERT_STRING_EQUAL(name_at(page.sites, 0), "s200");
	CU_ASSERT_STRING_EQUAL(name_at(page.sites, 49), "s249");
	json_decref(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &none, 4, &page), -ERANGE);
	CU_ASSERT_EQUAL(page.pages, 3);
	CU_ASSERT_PTR_NULL(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &none, 0, &page), 0);	/* every match */
	CU_ASSERT_EQUAL(json_array_size(page.sites), 250);
	json_decref(page.sites);
	json_decref(all);
}

static void test_paging_empty(void)
{
	struct render_filter none = { 0 };
	struct render_page page;
	json_t *empty = json_array();

	CU_ASSERT_EQUAL(render_select_sites(empty, &none, 1, &page), 0);
	CU_ASSERT_EQUAL(page.pages, 1);
	CU_ASSERT_EQUAL(page.total, 0);
	json_decref(page.sites);
	CU_ASSERT_EQUAL(render_select_sites(empty, &none, 2, &page), -ERANGE);
	json_decref(empty);
}

static void test_filters(void)
{
	struct render_filter down = { .status = "down" };
	struct render_filter iot_up = { .status = "up", .traffic_type = "iot" };
	struct render_filter name = { .name = "s24" };
	struct render_filter backup = { .pop = "ams1" }, other = { .pop = "lon1" };
	struct render_page page;
	json_t *all = many_sites();

	CU_ASSERT_EQUAL(render_select_sites(all, &down, 1, &page), 0);
	CU_ASSERT_EQUAL(page.total, 50);
	CU_ASSERT_STRING_EQUAL(name_at(page.sites, 1), "s005");
	json_decref(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &iot_up, 1, &page), 0);
	CU_ASSERT_EQUAL(page.total, 100);		/* 125 odd, 25 of them down */
	json_decref(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &name, 1, &page), 0);
	CU_ASSERT_EQUAL(page.total, 10);		/* s240..s249 */
	json_decref(page.sites);

	CU_ASSERT_EQUAL(render_select_sites(all, &backup, 0, &page), 0);
	CU_ASSERT_EQUAL(page.total, 250);		/* the backup POP matches too */
	json_decref(page.sites);
	CU_ASSERT_EQUAL(render_select_sites(all, &other, 0, &page), 0);
	CU_ASSERT_EQUAL(page.total, 0);
	json_decref(page.sites);
	json_decref(all);
}

static void test_table_alignment(void)
{
	static const char *const headers[] = { "NAME", "STATUS", "POP" };
	static const char *const row1[] = { "a", "up", "fra1" };
	static const char *const row2[] = { "longer-name", NULL, "Zürich" };
	struct table t;
	char *text;

	CU_ASSERT_EQUAL(table_init(&t, 3, headers), 0);
	CU_ASSERT_EQUAL(table_add_row(&t, row1), 0);
	CU_ASSERT_EQUAL(table_add_row(&t, row2), 0);
	CAPTURE(text, table_print(&t, out));
	CU_ASSERT_STRING_EQUAL(text,
			       "NAME         STATUS  POP\n"
			       "a            up      fra1\n"
			       "longer-name  -       Zürich\n");
	free(text);
	table_free(&t);
}

static void test_ago(void)
{
	char buf[32];

	render_ago(NOW, NOW - 12 * NSEC_PER_SEC, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "12s ago");
	render_ago(NOW, NOW - 59 * NSEC_PER_SEC - 999, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "59s ago");
	render_ago(NOW, NOW - 60 * NSEC_PER_SEC, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1m ago");
	render_ago(NOW, NOW - 3599 * NSEC_PER_SEC, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "59m ago");
	render_ago(NOW, NOW - 7200 * NSEC_PER_SEC, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2h ago");
	render_ago(NOW, NOW - 3 * 86400 * NSEC_PER_SEC, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "3d ago");
	render_ago(NOW, NOW + 5 * NSEC_PER_SEC, buf, sizeof(buf));	/* clock skew */
	CU_ASSERT_STRING_EQUAL(buf, "0s ago");
}

static void test_kbps(void)
{
	char buf[32];

	render_kbps(0, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0.0");
	render_kbps(12.54, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "12.5");
	render_kbps(999.94, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "999.9");
	render_kbps(1300.6, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1301");
	render_kbps(-1, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "-");
}

static void test_parse_time(void)
{
	uint64_t ns = 0;

	CU_ASSERT_TRUE(render_parse_time("2026-12-03T13:24:05Z", &ns));
	CU_ASSERT_EQUAL(ns, NOW);
	CU_ASSERT_TRUE(render_parse_time("2026-12-03T13:24:05.25Z", &ns));
	CU_ASSERT_EQUAL(ns, NOW + 250 * NSEC_PER_MSEC);
	CU_ASSERT_FALSE(render_parse_time("2026-12-03 13:24:05", &ns));
	CU_ASSERT_FALSE(render_parse_time("2026-12-03T13:24:05+01:00", &ns));
	CU_ASSERT_FALSE(render_parse_time("never", &ns));
}

static void test_site_cells(void)
{
	char cells[RENDER_SITE_COLS][RENDER_CELL_MAX];
	json_t *s = site("branch-1", "up", "user", "fra1");

	json_object_set_new(s, "last_user_traffic", json_string("2026-12-03T13:21:00Z"));
	render_site_cells(s, NOW, cells);
	CU_ASSERT_STRING_EQUAL(cells[0], "branch-1");
	CU_ASSERT_STRING_EQUAL(cells[2], "up");
	CU_ASSERT_STRING_EQUAL(cells[3], "seen 12s ago");
	CU_ASSERT_STRING_EQUAL(cells[4], "fra1 (ams1)");
	CU_ASSERT_STRING_EQUAL(cells[5], "12.5/1300");
	CU_ASSERT_STRING_EQUAL(cells[6], "3m ago");
	CU_ASSERT_STRING_EQUAL(cells[7], "user");
	json_decref(s);

	s = json_pack("{s:s, s:s, s:s, s:n, s:[]}", "name", "x", "status", "disabled",
		      "keepalive_status", "off", "last_user_traffic", "pop_backup");
	render_site_cells(s, NOW, cells);
	CU_ASSERT_STRING_EQUAL(cells[1], "-");		/* missing fields never fail */
	CU_ASSERT_STRING_EQUAL(cells[3], "off");
	CU_ASSERT_STRING_EQUAL(cells[4], "-");
	CU_ASSERT_STRING_EQUAL(cells[5], "-/-");
	CU_ASSERT_STRING_EQUAL(cells[6], "-");
	json_decref(s);
}

static void test_site_list_footer(void)
{
	struct render_filter none = { 0 };
	struct render_page page;
	json_t *all = many_sites();
	char *text, *last;

	render_select_sites(all, &none, 2, &page);
	CAPTURE(text, render_site_list(&page, NOW, out));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "NAME  SOURCE IP   STATUS  KEEPALIVE     POP"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text,
				      "\ns100  198.18.0.2  down    not seen      fra1 (ams1)"));
	last = strrchr(text, '\n');
	*last = '\0';
	CU_ASSERT_STRING_EQUAL(strrchr(text, '\n'), "\npage 2 of 3 (250 sites)");
	free(text);
	json_decref(page.sites);
	json_decref(all);
}

static void test_site_show(void)
{
	json_t *s = site("branch-1", "up", "user", "fra1");
	char *text;

	json_object_set_new(s, "drops", json_pack("{s:i, s:i}", "policy", 3, "rate", 0));
	json_object_set_new(s, "key", json_null());
	json_object_set_new(s, "new_field", json_integer(7));
	CAPTURE(text, render_site_show(s, NOW, out));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "name                   branch-1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "key                    none\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text,
				      "last keepalive         2026-12-03T13:23:53Z (12s ago)\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "drops policy           3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "drops rate             0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "new_field              7\n"));
	free(text);
	json_decref(s);
}

static void test_health_show(void)
{
	json_t *pop = json_pack("{s:s, s:s, s:{s:{s:s, s:s, s:i, s:i}}}",
				"healthd", "alive", "healthd_heartbeat", "2026-12-03T13:24:04Z",
				"services", "swg", "health", "up", "since", "2026-12-03T13:21:05Z",
				"checks_ok", 180, "checks_failed", 2);
	char *text;

	CAPTURE(text, render_health_show(pop, NOW, out));
	CU_ASSERT_STRING_EQUAL(text,
			       "healthd alive, last heartbeat 1s ago\n\n"
			       "SERVICE  HEALTH  SINCE                          "
			       "CHECKS OK  CHECKS FAILED\n"
			       "swg      up      2026-12-03T13:21:05Z (3m ago)  180        2\n");
	free(text);
	json_decref(pop);
}

static void test_event_line(void)
{
	json_t *ev = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:i}", "type", "service.down",
			       "time_ns", (json_int_t)NOW, "service", "swg", "from", "up",
			       "to", "down", "reason", "HTTP 503", "pop", "fra1", "seq", 9);
	char *text;

	CAPTURE(text, render_event_line(ev, out));
	CU_ASSERT_STRING_EQUAL(text, "2026-12-03T13:24:05Z fra1 service.down service=swg "
			       "from=up to=down reason=\"HTTP 503\"\n");
	free(text);
	json_decref(ev);
}

static void test_import_lists(void)
{
	json_t *reply = json_pack("{s:b, s:[s,s], s:[], s:[s]}", "ok", 1, "added", "a", "b",
				  "changed", "removed", "c");
	char *text;

	CAPTURE(text, render_import(reply, true, out));
	CU_ASSERT_STRING_EQUAL(text, "would add (2): a, b\nwould change (0): -\n"
			       "would remove (1): c\ndry run: nothing was changed\n");
	free(text);
	CAPTURE(text, render_import(reply, false, out));
	CU_ASSERT_STRING_EQUAL(text, "added (2): a, b\nchanged (0): -\nremoved (1): c\n");
	free(text);
	json_decref(reply);
}

/* Parse a command line given as one string of blank-separated words. */
static int parse(struct cli *cli, char *line, char err[CLI_ERR_MAX])
{
	static char *argv[64];
	int argc = 0;

	argv[argc++] = "grepopctl";
	for (char *w = strtok(line, " "); w && argc < 63; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	return cli_parse(cli, argc, argv, err);
}

/* The request as compact JSON with sorted keys, for exact comparison. */
static char *request_text(const struct cli *cli, const char *csv)
{
	json_t *req = cli_request(cli, csv);
	char *text = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(req);
	return text;
}

static void check_request(const char *args, const char *csv, const char *want)
{
	char line[512], err[CLI_ERR_MAX];
	struct cli cli;
	char *text;

	snprintf(line, sizeof(line), "%s", args);
	CU_ASSERT_EQUAL_FATAL(parse(&cli, line, err), 0);
	text = request_text(&cli, csv);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	if (strcmp(text, want) != 0)
		fprintf(stderr, "\n%s:\n  got  %s\n  want %s\n", args, text, want);
	CU_ASSERT_STRING_EQUAL(text, want);
	free(text);
}

static void test_requests(void)
{
	check_request("site add b1 --source-ip 198.18.0.2 --key 7 --http-ports 80;8080 "
		      "--keepalive no", NULL,
		      "{\"command\":\"site.add\",\"site\":{\"http_ports\":\"80;8080\","
		      "\"keepalive\":\"no\",\"key\":\"7\",\"name\":\"b1\","
		      "\"source_ip\":\"198.18.0.2\"}}");
	check_request("site edit b1 --rate-mbps 50 --traffic-type iot --enabled no", NULL,
		      "{\"command\":\"site.edit\",\"name\":\"b1\",\"set\":{\"enabled\":\"no\","
		      "\"rate_mbps\":\"50\",\"traffic_type\":\"iot\"}}");
	check_request("site disable a b c", NULL,
		      "{\"command\":\"site.disable\",\"names\":[\"a\",\"b\",\"c\"]}");
	check_request("site delete a", NULL, "{\"command\":\"site.delete\",\"names\":[\"a\"]}");
	check_request("site enable a", NULL, "{\"command\":\"site.enable\",\"names\":[\"a\"]}");
	check_request("site import new.csv --dry-run", "name,source_ip\n",
		      "{\"command\":\"site.import\",\"csv\":\"name,source_ip\\n\","
		      "\"dry_run\":true,\"file\":\"new.csv\"}");
	check_request("site import new.csv", "", "{\"command\":\"site.import\",\"csv\":\"\","
		      "\"dry_run\":false,\"file\":\"new.csv\"}");
	check_request("site export", NULL, "{\"command\":\"site.export\"}");
	check_request("pop no-new", NULL, "{\"command\":\"pop.accept\",\"mode\":\"no-new\"}");
	check_request("pop drain", NULL, "{\"command\":\"pop.accept\",\"mode\":\"drain\"}");
	check_request("pop accept", NULL, "{\"command\":\"pop.accept\",\"mode\":\"accept\"}");
	check_request("reload", NULL, "{\"command\":\"reload\"}");
}

static void test_request_order(void)
{
	char line[] = "site add b1 --source-ip 198.18.0.2 --tenant t1 --tenant t2";
	char err[CLI_ERR_MAX];
	struct cli cli;
	char *text;
	json_t *req;

	CU_ASSERT_EQUAL_FATAL(parse(&cli, line, err), 0);
	req = cli_request(&cli, NULL);
	text = json_dumps(req, JSON_COMPACT);
	/* The command first, the name first in the site; the last --tenant wins. */
	CU_ASSERT_STRING_EQUAL(text, "{\"command\":\"site.add\",\"site\":{\"name\":\"b1\","
			       "\"source_ip\":\"198.18.0.2\",\"tenant\":\"t2\"}}");
	free(text);
	json_decref(req);
}

static void test_parse_options(void)
{
	char line[] = "-c /tmp/x.conf -t 0.5 site list --status down --page 2 --json "
		      "--name br --pop fra1 --traffic-type guest-wifi";
	char line2[] = "events --count 3 --seconds 10";
	char line3[] = "site add --help";
	char err[CLI_ERR_MAX];
	struct cli cli;

	CU_ASSERT_EQUAL_FATAL(parse(&cli, line, err), 0);
	CU_ASSERT_EQUAL(cli.verb, CLI_SITE_LIST);
	CU_ASSERT_STRING_EQUAL(cli.conf_path, "/tmp/x.conf");
	CU_ASSERT_EQUAL(cli.timeout_ms, 500);
	CU_ASSERT_TRUE(cli.json);
	CU_ASSERT_EQUAL(cli.page, 2);
	CU_ASSERT_STRING_EQUAL(cli.filter.status, "down");
	CU_ASSERT_STRING_EQUAL(cli.filter.name, "br");
	CU_ASSERT_STRING_EQUAL(cli.filter.pop, "fra1");
	CU_ASSERT_STRING_EQUAL(cli.filter.traffic_type, "guest-wifi");
	CU_ASSERT_PTR_NULL(cli_request(&cli, NULL));	/* served by statsd */

	CU_ASSERT_EQUAL_FATAL(parse(&cli, line3, err), 0);	/* no NAME needed for help */
	CU_ASSERT_EQUAL(cli.verb, CLI_HELP);

	CU_ASSERT_EQUAL_FATAL(parse(&cli, line2, err), 0);
	CU_ASSERT_EQUAL(cli.verb, CLI_EVENTS);
	CU_ASSERT_STRING_EQUAL(cli.conf_path, CLI_DEFAULT_CONF);
	CU_ASSERT_EQUAL(cli.timeout_ms, CLI_DEFAULT_TIMEOUT_MS);
	CU_ASSERT_EQUAL(cli.count, 3);
	CU_ASSERT_EQUAL(cli.seconds, 10);
}

/* Each line must be refused as a usage error whose message contains WANT. */
static void check_usage_error(const char *args, const char *want)
{
	char line[512], err[CLI_ERR_MAX];
	struct cli cli;
	int r;

	snprintf(line, sizeof(line), "%s", args);
	r = parse(&cli, line, err);
	CU_ASSERT_EQUAL(r, -EINVAL);
	CU_ASSERT_EQUAL(cli_exit_code(r), CLI_EXIT_USAGE);
	if (r == -EINVAL && !strstr(err, want))
		fprintf(stderr, "\n%s: got \"%s\", want \"%s\"\n", args, err, want);
	CU_ASSERT_PTR_NOT_NULL(r == -EINVAL ? strstr(err, want) : NULL);
	CU_ASSERT_PTR_NOT_NULL(r == -EINVAL ? strstr(err, "\nusage: grepopctl ") : NULL);
}

static void test_usage_errors(void)
{
	check_usage_error("", "missing command");
	check_usage_error("frob", "unknown command \"frob\"");
	check_usage_error("site", "\"site\" needs one of: list, show");
	check_usage_error("site frob", "unknown command \"site frob\"");
	check_usage_error("site list --bogus", "unknown option --bogus");
	check_usage_error("site list --status sideways", "expected up, down or disabled");
	check_usage_error("site list --traffic-type cars", "expected user, iot");
	check_usage_error("site list --page 0", "expected a page number");
	check_usage_error("site list --page", "--page needs a value");
	check_usage_error("site list extra", "unexpected argument \"extra\"");
	check_usage_error("site show", "missing NAME");
	check_usage_error("site show a b", "unexpected argument \"b\"");
	check_usage_error("site add b1", "site add needs --source-ip");
	check_usage_error("site add b1 --source-ip", "needs a value");
	check_usage_error("site edit b1", "at least one option");
	check_usage_error("site enable", "missing NAME...");
	check_usage_error("site import", "missing FILE.csv");
	check_usage_error("site list --dry-run", "unknown option --dry-run");
	check_usage_error("pop show --count 2", "unknown option --count");
	check_usage_error("events --count x", "--count x: expected a whole number");
	check_usage_error("-t 0 pop show", "-t 0: expected seconds");
	check_usage_error("-x pop show", "unknown option -x");
	check_usage_error("site list --status", "usage: grepopctl site list [--status");
}

static void test_exit_codes(void)
{
	CU_ASSERT_EQUAL(cli_exit_code(0), 0);
	CU_ASSERT_EQUAL(cli_exit_code(-EPERM), 1);	/* refused by gatewayd */
	CU_ASSERT_EQUAL(cli_exit_code(-ENOENT), 1);	/* no such site */
	CU_ASSERT_EQUAL(cli_exit_code(-EPROTO), 1);
	CU_ASSERT_EQUAL(cli_exit_code(-EINVAL), 2);
	CU_ASSERT_EQUAL(cli_exit_code(-ETIMEDOUT), 3);
	CU_ASSERT_EQUAL(cli_exit_code(-EHOSTDOWN), 3);
}

int main(void)
{
	unsigned failed;
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("grepopctl render and cli", NULL, NULL);
	CU_add_test(s, "paging", test_paging);
	CU_add_test(s, "paging an empty list", test_paging_empty);
	CU_add_test(s, "filters", test_filters);
	CU_add_test(s, "table alignment", test_table_alignment);
	CU_add_test(s, "ages", test_ago);
	CU_add_test(s, "throughput", test_kbps);
	CU_add_test(s, "time parsing", test_parse_time);
	CU_add_test(s, "site cells", test_site_cells);
	CU_add_test(s, "site list and footer", test_site_list_footer);
	CU_add_test(s, "site show", test_site_show);
	CU_add_test(s, "health show", test_health_show);
	CU_add_test(s, "event line", test_event_line);
	CU_add_test(s, "import lists", test_import_lists);
	CU_add_test(s, "control requests", test_requests);
	CU_add_test(s, "request key order", test_request_order);
	CU_add_test(s, "options", test_parse_options);
	CU_add_test(s, "usage errors", test_usage_errors);
	CU_add_test(s, "exit codes", test_exit_codes);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
