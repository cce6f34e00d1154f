/*
 * Golden tests of the configuration and sites loaders: parse, print, diff.
 *
 * For every input X (tests/golden/conf/X.conf, tests/golden/sites/X.csv):
 * when X.out exists the load must succeed and print exactly X.out; when
 * X.err exists the load must fail with exactly the first line of X.err.
 * The sites files are read against tests/golden/sites/golden.conf. Run from
 * the repository root (tests/run.sh does).
 *
 * GOLDEN_UPDATE=1 rewrites X.out or X.err from what the loaders do now;
 * review the diff before committing it.
 */
#include <CUnit/Basic.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/conf.h"

#define GOLDEN_CONF_DIR		"tests/golden/conf"
#define GOLDEN_SITES_DIR	"tests/golden/sites"

static struct conf golden_conf;
static bool updating;

/* The whole file, or NULL if it does not exist. */
static char *slurp(const char *path)
{
	FILE *in = fopen(path, "re");
	char *buf;
	long len;

	if (!in)
		return NULL;
	fseek(in, 0, SEEK_END);
	len = ftell(in);
	rewind(in);
	buf = calloc(1, (size_t)len + 1);
	if (buf && fread(buf, 1, (size_t)len, in) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	fclose(in);
	return buf;
}

static void spill(const char *path, const char *text, const char *end)
{
	FILE *out = fopen(path, "we");

	CU_ASSERT_FATAL(out != NULL);
	fprintf(out, "%s%s", text, end);
	fclose(out);
}

/* Expected file of INPUT with its extension replaced by EXT. */
static void sibling(const char *input, const char *ext, char *buf, size_t len)
{
	const char *dot = strrchr(input, '.');

	snprintf(buf, len, "%.*s%s", (int)(dot - input), input, ext);
}

/* Compare one case: OK and TEXT (the print, or the error) against the files. */
static int golden_compare(const char *input, bool ok, const char *text)
{
	char out_path[PATH_MAX], err_path[PATH_MAX];
	char *want_out, *want_err;
	int failed = 0;

	sibling(input, ".out", out_path, sizeof(out_path));
	sibling(input, ".err", err_path, sizeof(err_path));
	if (updating) {
		unlink(ok ? err_path : out_path);
		spill(ok ? out_path : err_path, text, ok ? "" : "\n");
	}
	want_out = slurp(out_path);
	want_err = slurp(err_path);
	if (want_err)
		want_err[strcspn(want_err, "\n")] = '\0';
	if (!want_out && !want_err) {
		fprintf(stderr, "%s: neither %s nor %s exists\n", input, out_path, err_path);
		failed = 1;
	} else if (want_out && (!ok || strcmp(want_out, text))) {
		fprintf(stderr, "%s: expected %s, got %s:\n%s\n", input, out_path,
			ok ? "other output" : "an error", text);
		failed = 1;
	} else if (want_err && (ok || strcmp(want_err, text))) {
		fprintf(stderr, "%s: expected the error\n  %s\ngot %s\n  %s\n", input, want_err,
			ok ? "success, printing" : "", ok ? "" : text);
		failed = 1;
	}
	free(want_out);
	free(want_err);
	return failed;
}

/* Load one configuration; its print or its error into a new string. */
static bool golden_run_conf(const char *path, char **text)
{
	static struct conf conf;
	char err[CONF_ERR_MAX];
	size_t len;
	FILE *out;

	if (conf_load(&conf, path, err) < 0) {
		*text = strdup(err);
		return false;
	}
	out = open_memstream(text, &len);
	conf_print(&conf, out);
	fclose(out);
	return true;
}

static bool golden_run_sites(const char *path, char **text)
{
	struct sites sites;
	char err[CONF_ERR_MAX];
	size_t len;
	FILE *out;

	if (sites_load(&sites, path, &golden_conf, err) < 0) {
		CU_ASSERT(sites.n == 0 && sites.site == NULL);
		*text = strdup(err);
		return false;
	}
	out = open_memstream(text, &len);
	sites_write(&sites, out);
	fclose(out);
	sites_free(&sites);
	return true;
}

static void golden_walk(const char *pattern, bool (*run)(const char *, char **),
			unsigned min_cases)
{
	glob_t g;
	unsigned failed = 0;

	CU_ASSERT_FATAL(glob(pattern, 0, NULL, &g) == 0);
	CU_ASSERT(g.gl_pathc >= min_cases);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *text = NULL;
		bool ok = run(g.gl_pathv[i], &text);

		CU_ASSERT_FATAL(text != NULL);
		failed += (unsigned)golden_compare(g.gl_pathv[i], ok, text);
		free(text);
	}
	fprintf(stderr, "%s: %zu cases, %u failed\n", pattern, g.gl_pathc, failed);
	CU_ASSERT_EQUAL(failed, 0);
	globfree(&g);
}

static void test_golden_conf(void)
{
	golden_walk(GOLDEN_CONF_DIR "/*.conf", golden_run_conf, 12);
}

static void test_golden_sites(void)
{
	char err[CONF_ERR_MAX];

	CU_ASSERT_EQUAL_FATAL(conf_load(&golden_conf, GOLDEN_SITES_DIR "/golden.conf", err), 0);
	CU_ASSERT_EQUAL(conf_tenant_find(&golden_conf, "acme"), 1);
	golden_walk(GOLDEN_SITES_DIR "/*.csv", golden_run_sites, 15);
}

/* A printed configuration reads back to the same print. */
static void test_golden_conf_reprint(void)
{
	glob_t g;

	CU_ASSERT_FATAL(glob(GOLDEN_CONF_DIR "/*.out", 0, NULL, &g) == 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *again = NULL, *want = slurp(g.gl_pathv[i]);

		CU_ASSERT_FATAL(want != NULL);
		CU_ASSERT(golden_run_conf(g.gl_pathv[i], &again));
		if (again && strcmp(want, again))
			fprintf(stderr, "%s does not read back to itself\n", g.gl_pathv[i]);
		CU_ASSERT_STRING_EQUAL(want, again);
		free(want);
		free(again);
	}
	globfree(&g);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	updating = getenv("GOLDEN_UPDATE") && !strcmp(getenv("GOLDEN_UPDATE"), "1");
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("golden", NULL, NULL);
	CU_add_test(suite, "configuration files", test_golden_conf);
	CU_add_test(suite, "sites files", test_golden_sites);
	CU_add_test(suite, "printed configuration reads back", test_golden_conf_reprint);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
