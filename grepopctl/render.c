#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grepopctl/render.h"
#include "lib/timeutil.h"

int table_init(struct table *t, unsigned ncols, const char *const headers[])
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	if (!headers)
		return 0;
	return table_add_row(t, headers);
}

int table_add_row(struct table *t, const char *const cells[])
{
	if (t->nrows == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		char **grown = realloc(t->cells, (size_t)cap * t->ncols * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		t->cells = grown;
		t->cap = cap;
	}

	char **row = t->cells + (size_t)t->nrows * t->ncols;

	for (unsigned c = 0; c < t->ncols; c++) {
		row[c] = strdup(cells[c] ? cells[c] : "-");
		if (!row[c]) {
			while (c-- > 0)
				free(row[c]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

/* Characters, not bytes: a location such as "Zürich" must still align. */
static unsigned text_width(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

void table_print(const struct table *t, FILE *out)
{
	unsigned *width = calloc(t->ncols ? t->ncols : 1, sizeof(*width));

	if (!width)
		return;
	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			unsigned w = text_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}

	for (unsigned r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;

			fputs(cell, out);
			if (!last)
				fprintf(out, "%*s", (int)(width[c] - text_width(cell) + 2), "");
		}
		fputc('\n', out);
	}
	free(width);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

void render_ago(uint64_t now_ns, uint64_t then_ns, char *buf, size_t len)
{
	uint64_t s = now_ns > then_ns ? (now_ns - then_ns) / NSEC_PER_SEC : 0;

	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m ago", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d ago", s / 86400);
}

void render_kbps(double kbps, char *buf, size_t len)
{
	if (!(kbps >= 0))			/* negative or NaN */
		snprintf(buf, len, "-");
	else if (kbps < 1000)
		snprintf(buf, len, "%.1f", kbps);
	else
		snprintf(buf, len, "%.0f", kbps);
}

bool render_parse_time(const char *text, uint64_t *ns)
{
	struct tm tm = { 0 };
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	uint64_t frac = 0, scale = NSEC_PER_SEC;
	time_t secs;

	if (!end)
		return false;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9'; end++)
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*end - '0') * scale;
			}
	}
	if (strcmp(end, "Z") != 0)
		return false;
	secs = timegm(&tm);
	if (secs < 0)
		return false;
	*ns = (uint64_t)secs * NSEC_PER_SEC + frac;
	return true;
}

static const char *field_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Any JSON scalar as text: strings as they are, true/false as yes/no. */
static void value_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.1f", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(buf, len, "-");
}

static void field_text(const json_t *obj, const char *key, char *buf, size_t len)
{
	value_text(json_object_get(obj, key), buf, len);
}

/* "3m ago" for a time field, or "-" when absent or null. */
static void field_ago(const json_t *obj, const char *key, uint64_t now_ns, char *buf, size_t len)
{
	const char *text = field_str(obj, key);
	uint64_t ns;

	if (text && render_parse_time(text, &ns))
		render_ago(now_ns, ns, buf, len);
	else
		snprintf(buf, len, "-");
}

/* "2026-12-03T13:20:00Z (4m ago)" or "-". */
static void field_time(const json_t *obj, const char *key, uint64_t now_ns, char *buf, size_t len)
{
	const char *text = field_str(obj, key);
	char ago[32];
	uint64_t ns;

	if (text && render_parse_time(text, &ns)) {
		render_ago(now_ns, ns, ago, sizeof(ago));
		snprintf(buf, len, "%s (%s)", text, ago);
	} else {
		snprintf(buf, len, "-");
	}
}

static void field_kbps(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_number(v))
		render_kbps(json_number_value(v), buf, len);
	else
		snprintf(buf, len, "-");
}

/* "ams1, lon1" from an array of strings; "-" when empty. */
static void field_list(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *arr = json_object_get(obj, key);
	size_t n = 0, i;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(arr, i, v)
		if (json_is_string(v) && n < len)
			n += snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
				      json_string_value(v));
	if (!buf[0])
		snprintf(buf, len, "-");
}

bool render_filter_match(const struct render_filter *filter, const json_t *site)
{
	const char *name = field_str(site, "name");
	const char *status = field_str(site, "status");

	if (filter->status && (!status || strcmp(status, filter->status) != 0))
		return false;
	if (filter->traffic_type) {
		const char *type = field_str(site, "traffic_type");

		if (!type || strcmp(type, filter->traffic_type) != 0)
			return false;
	}
	if (filter->name && (!name || !strstr(name, filter->name)))
		return false;
	if (filter->pop) {
		const char *pop = field_str(site, "pop");
		const json_t *backup = json_object_get(site, "pop_backup");
		size_t i;
		json_t *v;

		if (pop && strcmp(pop, filter->pop) == 0)
			return true;
		json_array_foreach(backup, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), filter->pop) == 0)
				return true;
		return false;
	}
	return true;
}

static int compare_site_names(const void *a, const void *b)
{
	const char *x = field_str(*(json_t *const *)a, "name");
	const char *y = field_str(*(json_t *const *)b, "name");

	return strcmp(x ? x : "", y ? y : "");
}

int render_select_sites(const json_t *sites, const struct render_filter *filter,
			unsigned page, struct render_page *out)
{
	size_t n = json_array_size(sites), kept = 0, first, last, i;
	json_t **match = calloc(n ? n : 1, sizeof(*match));
	json_t *v;

	memset(out, 0, sizeof(*out));
	if (!match)
		return -ENOMEM;
	json_array_foreach(sites, i, v)
		if (json_is_object(v) && render_filter_match(filter, v))
			match[kept++] = v;
	qsort(match, kept, sizeof(*match), compare_site_names);

	out->total = kept;
	out->pages = kept ? (kept + RENDER_PAGE_SIZE - 1) / RENDER_PAGE_SIZE : 1;
	out->page = page;
	if (page > out->pages) {
		free(match);
		return -ERANGE;
	}
	first = page ? (size_t)(page - 1) * RENDER_PAGE_SIZE : 0;
	last = page && first + RENDER_PAGE_SIZE < kept ? first + RENDER_PAGE_SIZE : kept;

	out->sites = json_array();
	for (i = first; out->sites && i < last; i++)
		json_array_append(out->sites, match[i]);
	free(match);
	return out->sites ? 0 : -ENOMEM;
}

const char *const render_site_headers[RENDER_SITE_COLS] = {
	"NAME", "SOURCE IP", "STATUS", "KEEPALIVE", "POP", "THROUGHPUT KBPS",
	"LAST USER TRAFFIC", "TRAFFIC TYPE",
};

/* "seen 12s ago", "not seen 5m ago", "not seen", "off". */
static void site_keepalive_cell(const json_t *site, uint64_t now_ns, char *buf, size_t len)
{
	const char *status = field_str(site, "keepalive_status");
	char ago[32];

	field_ago(site, "last_keepalive", now_ns, ago, sizeof(ago));
	if (!status)
		snprintf(buf, len, "-");
	else if (strcmp(status, "off") == 0 || strcmp(ago, "-") == 0)
		snprintf(buf, len, "%s", status);
	else
		snprintf(buf, len, "%s %s", status, ago);
}

/* "fra1 (ams1, lon1)": the primary POP and its backups. */
static void site_pop_cell(const json_t *site, char *buf, size_t len)
{
	const char *pop = field_str(site, "pop");
	char backups[RENDER_CELL_MAX];

	field_list(site, "pop_backup", backups, sizeof(backups));
	if (strcmp(backups, "-") == 0)
		snprintf(buf, len, "%s", pop ? pop : "-");
	else
		snprintf(buf, len, "%s (%s)", pop ? pop : "-", backups);
}

void render_site_cells(const json_t *site, uint64_t now_ns,
		       char cells[RENDER_SITE_COLS][RENDER_CELL_MAX])
{
	char rx[32], tx[32];

	field_text(site, "name", cells[0], RENDER_CELL_MAX);
	field_text(site, "source_ip", cells[1], RENDER_CELL_MAX);
	field_text(site, "status", cells[2], RENDER_CELL_MAX);
	site_keepalive_cell(site, now_ns, cells[3], RENDER_CELL_MAX);
	site_pop_cell(site, cells[4], RENDER_CELL_MAX);
	field_kbps(site, "rx_kbps", rx, sizeof(rx));
	field_kbps(site, "tx_kbps", tx, sizeof(tx));
	snprintf(cells[5], RENDER_CELL_MAX, "%s/%s", rx, tx);
	field_ago(site, "last_user_traffic", now_ns, cells[6], RENDER_CELL_MAX);
	field_text(site, "traffic_type", cells[7], RENDER_CELL_MAX);
}

json_t *render_site_summary(const json_t *site)
{
	static const char *const keys[] = {
		"name", "source_ip", "status", "keepalive_status", "last_keepalive", "pop",
		"pop_backup", "rx_kbps", "tx_kbps", "last_user_traffic", "traffic_type",
	};
	json_t *copy = json_object();

	for (size_t i = 0; copy && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(site, keys[i]);

		if (v)
			json_object_set(copy, keys[i], v);
	}
	return copy;
}

int render_site_list(const struct render_page *page, uint64_t now_ns, FILE *out)
{
	char cells[RENDER_SITE_COLS][RENDER_CELL_MAX];
	const char *row[RENDER_SITE_COLS];
	struct table t;
	size_t i;
	json_t *site;
	int r;

	r = table_init(&t, RENDER_SITE_COLS, render_site_headers);
	for (unsigned c = 0; c < RENDER_SITE_COLS; c++)
		row[c] = cells[c];
	json_array_foreach(page->sites, i, site) {
		if (r < 0)
			break;
		render_site_cells(site, now_ns, cells);
		r = table_add_row(&t, row);
	}
	if (r == 0) {
		table_print(&t, out);
		fprintf(out, "page %u of %u (%u site%s)\n", page->page ? page->page : 1,
			page->page ? page->pages : 1, page->total, page->total == 1 ? "" : "s");
	}
	table_free(&t);
	return r;
}

/* A two-column "field  value" table, printed and freed by kv_end. */
static void kv_add(struct table *t, int *r, const char *field, const char *value)
{
	const char *row[2] = { field, value };

	if (*r == 0)
		*r = table_add_row(t, row);
}

static int kv_end(struct table *t, int r, FILE *out)
{
	if (r == 0)
		table_print(t, out);
	table_free(t);
	return r;
}

static void kv_field(struct table *t, int *r, const char *label, const json_t *obj,
		     const char *key)
{
	char buf[RENDER_CELL_MAX];

	field_text(obj, key, buf, sizeof(buf));
	kv_add(t, r, label, buf);
}

/* Keys render_site_show labels itself; others are printed as they come. */
static const char *const site_known_keys[] = {
	"pop", "seq", "time", "time_ns", "name", "source_ip", "tenant", "traffic_type",
	"services", "enabled", "keepalive", "key", "status", "keepalive_status",
	"last_keepalive", "last_user_traffic", "tunnel", "established_since", "rx_kbps",
	"tx_kbps", "rx_kbps_5m", "tx_kbps_5m", "rx_packets", "rx_bytes", "tx_packets",
	"tx_bytes", "keepalives", "probes", "drops", "pop_backup", NULL
};

static bool key_known(const char *const *known, const char *key)
{
	for (; *known; known++)
		if (strcmp(*known, key) == 0)
			return true;
	return false;
}

static void site_show_identity(struct table *t, int *r, const json_t *site)
{
	char buf[RENDER_CELL_MAX];

	kv_field(t, r, "name", site, "name");
	kv_field(t, r, "source ip", site, "source_ip");
	kv_field(t, r, "tenant", site, "tenant");
	kv_field(t, r, "traffic type", site, "traffic_type");
	kv_field(t, r, "services", site, "services");
	kv_field(t, r, "enabled", site, "enabled");
	kv_field(t, r, "keepalive", site, "keepalive");
	field_text(site, "key", buf, sizeof(buf));
	kv_add(t, r, "key", strcmp(buf, "-") == 0 ? "none" : buf);
	site_pop_cell(site, buf, sizeof(buf));
	kv_add(t, r, "pop (backups)", buf);
}

static void site_show_state(struct table *t, int *r, const json_t *site, uint64_t now_ns)
{
	char buf[RENDER_CELL_MAX], rx[32], tx[32];

	kv_field(t, r, "status", site, "status");
	site_keepalive_cell(site, now_ns, buf, sizeof(buf));
	kv_add(t, r, "keepalive status", buf);
	field_time(site, "last_keepalive", now_ns, buf, sizeof(buf));
	kv_add(t, r, "last keepalive", buf);
	kv_field(t, r, "tunnel", site, "tunnel");
	field_time(site, "established_since", now_ns, buf, sizeof(buf));
	kv_add(t, r, "established since", buf);
	field_time(site, "last_user_traffic", now_ns, buf, sizeof(buf));
	kv_add(t, r, "last user traffic", buf);
	field_kbps(site, "rx_kbps", rx, sizeof(rx));
	field_kbps(site, "tx_kbps", tx, sizeof(tx));
	snprintf(buf, sizeof(buf), "%s/%s", rx, tx);
	kv_add(t, r, "throughput kbps rx/tx", buf);
	field_kbps(site, "rx_kbps_5m", rx, sizeof(rx));
	field_kbps(site, "tx_kbps_5m", tx, sizeof(tx));
	snprintf(buf, sizeof(buf), "%s/%s", rx, tx);
	kv_add(t, r, "throughput kbps 5m", buf);
}

static void site_show_counters(struct table *t, int *r, const json_t *site)
{
	const json_t *drops = json_object_get(site, "drops");
	char label[RENDER_CELL_MAX];
	const char *key;
	json_t *v;

	kv_field(t, r, "rx packets", site, "rx_packets");
	kv_field(t, r, "rx bytes", site, "rx_bytes");
	kv_field(t, r, "tx packets", site, "tx_packets");
	kv_field(t, r, "tx bytes", site, "tx_bytes");
	kv_field(t, r, "keepalives", site, "keepalives");
	kv_field(t, r, "probes", site, "probes");
	json_object_foreach((json_t *)drops, key, v) {
		snprintf(label, sizeof(label), "drops %s", key);
		kv_field(t, r, label, drops, key);
	}
	json_object_foreach((json_t *)site, key, v)
		if (!key_known(site_known_keys, key) && !json_is_object(v) && !json_is_array(v))
			kv_field(t, r, key, site, key);
}

int render_site_show(const json_t *site, uint64_t now_ns, FILE *out)
{
	struct table t;
	int r = table_init(&t, 2, NULL);

	site_show_identity(&t, &r, site);
	site_show_state(&t, &r, site, now_ns);
	site_show_counters(&t, &r, site);
	return kv_end(&t, r, out);
}

/* One row per service of the POP message's "services" object. */
static int services_table(const json_t *pop, uint64_t now_ns, bool checks, FILE *out)
{
	static const char *const short_headers[] = { "SERVICE", "HEALTH", "SINCE" };
	static const char *const long_headers[] = {
		"SERVICE", "HEALTH", "SINCE", "CHECKS OK", "CHECKS FAILED"
	};
	char health[32], since[RENDER_CELL_MAX], ok[32], failed[32];
	const char *row[] = { NULL, health, since, ok, failed };
	struct table t;
	const char *name;
	json_t *svc;
	int r;

	r = table_init(&t, checks ? 5 : 3, checks ? long_headers : short_headers);
	json_object_foreach(json_object_get(pop, "services"), name, svc) {
		row[0] = name;
		field_text(svc, "health", health, sizeof(health));
		field_time(svc, "since", now_ns, since, sizeof(since));
		field_text(svc, "checks_ok", ok, sizeof(ok));
		field_text(svc, "checks_failed", failed, sizeof(failed));
		if (r == 0)
			r = table_add_row(&t, row);
	}
	return kv_end(&t, r, out);
}

static void pop_sites_summary(const json_t *pop, char *buf, size_t len)
{
	const json_t *sites = json_object_get(pop, "sites");
	char total[32], up[32], down[32], disabled[32];

	field_text(sites, "total", total, sizeof(total));
	field_text(sites, "up", up, sizeof(up));
	field_text(sites, "down", down, sizeof(down));
	field_text(sites, "disabled", disabled, sizeof(disabled));
	snprintf(buf, len, "%s (%s up, %s down, %s disabled)", total, up, down, disabled);
}

int render_pop_show(const json_t *pop, uint64_t now_ns, FILE *out)
{
	char buf[RENDER_CELL_MAX];
	struct table t;
	int r = table_init(&t, 2, NULL);

	kv_field(&t, &r, "name", pop, "name");
	kv_field(&t, &r, "location", pop, "location");
	kv_field(&t, &r, "gateway ip", pop, "gateway_ip");
	kv_field(&t, &r, "probe ip", pop, "probe_ip");
	kv_field(&t, &r, "acceptance mode", pop, "accept_mode");
	kv_field(&t, &r, "accepting new tunnels", pop, "accepting_new_tunnels");
	field_list(pop, "backup_pops", buf, sizeof(buf));
	kv_add(&t, &r, "backup pops", buf);
	kv_field(&t, &r, "healthd", pop, "healthd");
	pop_sites_summary(pop, buf, sizeof(buf));
	kv_add(&t, &r, "sites", buf);
	r = kv_end(&t, r, out);
	if (r < 0)
		return r;
	fputc('\n', out);
	return services_table(pop, now_ns, false, out);
}

int render_health_show(const json_t *pop, uint64_t now_ns, FILE *out)
{
	char state[32], ago[32];

	field_text(pop, "healthd", state, sizeof(state));
	field_ago(pop, "healthd_heartbeat", now_ns, ago, sizeof(ago));
	fprintf(out, "healthd %s, last heartbeat %s\n\n", state,
		strcmp(ago, "-") == 0 ? "never seen" : ago);
	return services_table(pop, now_ns, true, out);
}

/* " key=value", the value quoted when it holds blanks, quotes or '='. */
static void print_pair(const char *key, const char *value, FILE *out)
{
	if (strpbrk(value, " \t\"="))
		fprintf(out, " %s=\"%s\"", key, value);
	else
		fprintf(out, " %s=%s", key, value);
}

/* print_pair for each scalar member of OBJ not in SKIP. */
static void print_members(const json_t *obj, const char *const *skip, FILE *out)
{
	char buf[RENDER_CELL_MAX];
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		if (key_known(skip, key) || json_is_object(v) || json_is_array(v))
			continue;
		value_text(v, buf, sizeof(buf));
		print_pair(key, buf, out);
	}
}

static void print_time(const json_t *msg, FILE *out)
{
	const char *time = field_str(msg, "time");
	json_int_t ns = json_integer_value(json_object_get(msg, "time_ns"));
	char buf[32];

	if (!time)
		time = time_format_iso(ns > 0 ? (uint64_t)ns : 0, buf, sizeof(buf));
	fputs(time, out);
}

void render_event_line(const json_t *event, FILE *out)
{
	static const char *const skip[] = { "type", "time", "time_ns", "pop", "seq", NULL };
	const char *pop = field_str(event, "pop");
	const char *type = field_str(event, "type");

	print_time(event, out);
	fprintf(out, " %s %s", pop ? pop : "-", type ? type : "-");
	print_members(event, skip, out);
	fputc('\n', out);
}

static void print_keys(const json_t *msg, const char *const *keys, FILE *out)
{
	char buf[RENDER_CELL_MAX];

	for (; *keys; keys++) {
		field_text(msg, *keys, buf, sizeof(buf));
		print_pair(*keys, buf, out);
	}
}

void render_feed_line(const char *topic, const json_t *msg, FILE *out)
{
	static const char *const site_keys[] = {
		"name", "status", "keepalive_status", "tunnel", "rx_kbps", "tx_kbps", NULL
	};
	static const char *const pop_keys[] = {
		"name", "accept_mode", "accepting_new_tunnels", "healthd", NULL
	};
	char buf[RENDER_CELL_MAX];

	if (strcmp(topic, "grepop.v1.event") == 0) {
		fputs("event ", out);
		render_event_line(msg, out);
	} else if (strncmp(topic, "grepop.v1.site.", 15) == 0) {
		fputs("site ", out);
		print_time(msg, out);
		print_keys(msg, site_keys, out);
		fputc('\n', out);
	} else if (strcmp(topic, "grepop.v1.pop") == 0) {
		fputs("pop ", out);
		print_time(msg, out);
		print_keys(msg, pop_keys, out);
		pop_sites_summary(msg, buf, sizeof(buf));
		print_pair("sites", buf, out);
		fputc('\n', out);
	} else {
		fprintf(out, "%s ", topic);
		print_time(msg, out);
		fputc('\n', out);
	}
}

/* SITECONF value as the sites file writes it: arrays joined with ';'. */
static void siteconf_value(const json_t *v, char *buf, size_t len)
{
	size_t n = 0, i;
	json_t *e;

	if (json_is_null(v)) {
		snprintf(buf, len, "none");
		return;
	}
	if (!json_is_array(v)) {
		value_text(v, buf, len);
		return;
	}
	buf[0] = '\0';
	json_array_foreach(v, i, e)
		if (n < len)
			n += snprintf(buf + n, len - n, "%s%" JSON_INTEGER_FORMAT, n ? ";" : "",
				      json_integer_value(e));
	if (!buf[0])
		snprintf(buf, len, "-");
}

int render_siteconf(const json_t *site, FILE *out)
{
	char label[RENDER_CELL_MAX], buf[RENDER_CELL_MAX];
	struct table t;
	int r = table_init(&t, 2, NULL);
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)site, key, v) {
		snprintf(label, sizeof(label), "%s", key);
		for (char *p = label; *p; p++)
			if (*p == '_')
				*p = ' ';
		siteconf_value(v, buf, sizeof(buf));
		kv_add(&t, &r, label, buf);
	}
	return kv_end(&t, r, out);
}

void render_names(const char *label, const json_t *names, FILE *out)
{
	size_t i;
	json_t *v;

	fprintf(out, "%s (%zu):", label, json_array_size(names));
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);

		fprintf(out, "%s%s", i ? ", " : " ", name ? name : "?");
	}
	fputs(json_array_size(names) ? "\n" : " -\n", out);
}

void render_import(const json_t *reply, bool dry_run, FILE *out)
{
	render_names(dry_run ? "would add" : "added", json_object_get(reply, "added"), out);
	render_names(dry_run ? "would change" : "changed", json_object_get(reply, "changed"), out);
	render_names(dry_run ? "would remove" : "removed", json_object_get(reply, "removed"), out);
	if (dry_run)
		fputs("dry run: nothing was changed\n", out);
}
