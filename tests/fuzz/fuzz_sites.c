/*
 * libFuzzer harness for the sites-file parser. Not built by the Makefile;
 * by hand, from the repository root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *       tests/fuzz/fuzz_sites.c lib/sites.c lib/sites_set.c lib/site_conf.c \
 *       lib/conf.c lib/conf_util.c lib/conf_print.c shm/shm.c \
 *       -lconfig -lcsv -o build-fuzz/fuzz_sites
 *   mkdir -p build-fuzz/corpus-sites && cp tests/golden/sites/*.csv build-fuzz/corpus-sites
 *   build-fuzz/fuzz_sites -dict=tests/fuzz/sites.dict build-fuzz/corpus-sites
 *
 * (libFuzzer adds inputs to the corpus directory: never point it at
 * tests/golden.)
 *
 * Every input must either load, print and load again to the same set, or
 * fail with a "file:row:column: message" and leave the set empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reprint(const struct sites *sites)
{
	struct sites again;
	char err[CONF_ERR_MAX], *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	sites_write(sites, out);
	fclose(out);
	if (sites_parse(&again, "again.csv", text, len, NULL, err) != 0 || again.n != sites->n ||
	    (sites->n && memcmp(again.site, sites->site, sites->n * sizeof(sites->site[0]))))
		abort();
	sites_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sites sites;
	char err[CONF_ERR_MAX];

	if (sites_parse(&sites, "fuzz.csv", (const char *)data, size, NULL, err) != 0) {
		if (sites.n || sites.site || strncmp(err, "fuzz.csv:", 9) || strchr(err, '\n'))
			abort();
		return 0;
	}
	check_reprint(&sites);
	sites_free(&sites);
	return 0;
}
