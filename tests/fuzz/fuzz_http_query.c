/*
 * libFuzzer harness for the query string of statsd's /api/v1/sites: the
 * input is split into key=value pairs and unescaped as libmicrohttpd does
 * for GET arguments (a key without "=" has no value), and each pair goes
 * through http_site_query_set, the validation the server uses. A query
 * that passes is then answered by http_sites_json over a collector that
 * scanned the fixture's shared memory (gw_fixture.h, six sites).
 *
 * Checked: a refused pair leaves a message; an answer lists at most
 * per_page sites, each matching the filters, and echoes page and per_page.
 */
#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>
#include <string.h>

#include "lib/timeutil.h"
#include "statsd/http.h"
#include "tests/fuzz/gw_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct collect collect;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fixture_gw_init(&gw);
	if (collect_init(&collect, &gw.shm, &gw.conf) < 0)
		abort();
	collect_scan(&collect, now_monotonic_ns(), now_realtime_ns(), NULL, NULL);
	return 0;
}

/* One pair, unescaped in place; false when the query is refused. */
static bool query_pair(struct http_site_query *q, char *pair)
{
	char *value = strchr(pair, '='), err[160] = "";

	if (value) {
		*value++ = '\0';
		MHD_http_unescape(value);
	}
	MHD_http_unescape(pair);
	if (http_site_query_set(q, pair, value, err, sizeof(err)))
		return true;
	FIXTURE_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	return false;
}

static void check_answer(const struct http_site_query *q)
{
	json_t *o = http_sites_json(&collect, q, 1), *site;
	json_t *list = json_object_get(o, "sites");
	size_t i;

	FIXTURE_CHECK(json_is_array(list) && json_array_size(list) <= q->per_page);
	FIXTURE_CHECK(json_integer_value(json_object_get(o, "total")) <= 6);
	FIXTURE_CHECK(json_integer_value(json_object_get(o, "page")) == q->page);
	FIXTURE_CHECK(json_integer_value(json_object_get(o, "per_page")) == q->per_page);
	json_array_foreach(list, i, site) {
		const char *name = json_string_value(json_object_get(site, "name"));
		const char *type = json_string_value(json_object_get(site, "traffic_type"));
		const char *status = json_string_value(json_object_get(site, "status"));

		FIXTURE_CHECK(name && strstr(name, q->name));
		FIXTURE_CHECK(q->traffic_type < 0 ||
			      strcmp(type, shm_traffic_type_name(q->traffic_type)) == 0);
		FIXTURE_CHECK(q->status < 0 || strcmp(status, collect_status_name(q->status)) == 0);
	}
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size), *save = NULL, *pair;
	struct http_site_query q;
	bool ok = true;

	if (!text)
		return 0;
	http_site_query_init(&q);
	for (pair = strtok_r(text, "&", &save); ok && pair; pair = strtok_r(NULL, "&", &save))
		ok = query_pair(&q, pair);
	if (ok) {
		collect_lock(&collect);
		check_answer(&q);
		collect_unlock(&collect);
	}
	free(text);
	return 0;
}
