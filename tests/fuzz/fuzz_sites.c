/*
 * libFuzzer harness for the sites-file parser. `make fuzz` builds it and
 * fuzzes it from tests/golden/sites and tests/fuzz/corpus_sites.
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
