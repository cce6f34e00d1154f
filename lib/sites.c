/*
 * The sites file loader.
 *
 * libcsv splits the text into fields and rows; this file gives each field a
 * place. Positions in messages are the file's lines (so an editor finds
 * them, even with blank lines or quoted newlines in between) and the field's
 * number within its row. The first non-blank row is the header; it names
 * the columns, in any order. Each later row becomes one site, checked field
 * by field as it arrives; the rules that span rows (unique names, shared
 * source IPs only with distinct keys) run once the whole file is read, and
 * point at the later of the two rows.
 *
 * Loading fills a private set that is handed over only when the whole file
 * was valid.
 */
#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/conf.h"
#include "lib/conf_util.h"

#define SITES_FIELD_MAX	255

struct sites_parser {
	const char *file;
	char *err;
	const struct conf *conf;
	bool failed;
	unsigned line;			/* where the parser is now */
	bool after_cr;			/* the last row ended with CR */
	unsigned row_line;		/* where the current row began */
	unsigned field;			/* fields seen in the current row */
	bool have_header;
	unsigned n_columns;
	enum sites_column columns[SITES_COL_COUNT];	/* of each field */
	int field_of[SITES_COL_COUNT];	/* of each column, -1 if absent */
	struct site_conf row;
	struct sites sites;		/* in file order until the end */
	unsigned *lines;		/* the line of each site */
};

/* "file:line:column: message". Returns -1 and stops the parse. */
__attribute__((format(printf, 4, 5)))
static int parser_fail(struct sites_parser *sp, unsigned line, unsigned column,
		       const char *fmt, ...)
{
	va_list ap;
	int n;

	sp->failed = true;
	n = snprintf(sp->err, CONF_ERR_MAX, "%s:%u:%u: ", sp->file, line, column);
	if (n < 0 || n >= CONF_ERR_MAX)
		return -1;
	va_start(ap, fmt);
	vsnprintf(sp->err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static void parser_header_field(struct sites_parser *sp, const char *name, unsigned line)
{
	int col = sites_column_find(name);

	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		if (*c < ' ' || *c == 0x7f) {
			parser_fail(sp, line, sp->field + 1, "control character 0x%02x in a "
				    "column name", *c);
			return;
		}
	}
	if (col < 0) {
		parser_fail(sp, line, sp->field + 1, "unknown column \"%.64s\" (known: name, "
			    "source_ip, traffic_type, services, keepalive, enabled, tenant, key, "
			    "http_ports, rate_mbps)", name);
		return;
	}
	if (sp->field_of[col] >= 0) {
		parser_fail(sp, line, sp->field + 1, "column \"%s\" appears twice (also "
			    "column %d)", name, sp->field_of[col] + 1);
		return;
	}
	sp->field_of[col] = (int)sp->field;
	sp->columns[sp->field] = (enum sites_column)col;
	sp->n_columns++;
}

static void parser_data_field(struct sites_parser *sp, const char *value, unsigned line)
{
	char msg[CONF_ERR_MAX];

	if (sp->field >= sp->n_columns) {
		parser_fail(sp, line, sp->field + 1, "more fields than the header's %u; quote "
			    "values that contain a comma", sp->n_columns);
		return;
	}
	if (site_conf_set_column(&sp->row, sp->columns[sp->field], value, msg) < 0)
		parser_fail(sp, line, sp->field + 1, "%s", msg);
}

/* libcsv: one field of LEN bytes has been read. */
static void parser_on_field(void *data, size_t len, void *opaque)
{
	struct sites_parser *sp = opaque;
	unsigned line = sp->line;
	char value[SITES_FIELD_MAX + 1];

	sp->after_cr = false;
	for (size_t i = 0; i < len; i++)
		sp->line += ((const char *)data)[i] == '\n';
	if (sp->failed)
		return;
	if (sp->field == 0) {
		sp->row_line = line;
		site_conf_init(&sp->row);
	}
	if (len > SITES_FIELD_MAX || memchr(data, '\0', len)) {
		parser_fail(sp, line, sp->field + 1, "%s", len > SITES_FIELD_MAX ?
			    "value longer than 255 bytes" : "NUL byte in the value");
		return;
	}
	memcpy(value, data, len);
	value[len] = '\0';
	if (!sp->have_header)
		parser_header_field(sp, value, line);
	else
		parser_data_field(sp, value, line);
	sp->field++;
}

static void parser_end_header(struct sites_parser *sp)
{
	sp->have_header = true;
	if (sp->field_of[SITES_COL_NAME] < 0)
		parser_fail(sp, sp->row_line, 1, "the header has no \"name\" column (required)");
	else if (sp->field_of[SITES_COL_SOURCE_IP] < 0)
		parser_fail(sp, sp->row_line, 1, "the header has no \"source_ip\" column "
			    "(required)");
}

/* The column number of COL in this file, or 1 when the file lacks it. */
static unsigned parser_column(const struct sites_parser *sp, enum sites_column col)
{
	return sp->field_of[col] >= 0 ? (unsigned)sp->field_of[col] + 1 : 1;
}

/* "tenants: a, b" of CONF, for messages. */
static void tenant_names(const struct conf *conf, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "tenants:");

	for (unsigned i = 0; i < conf->n_tenants && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s %s", i ? "," : "",
				      conf->tenants[i].name);
}

/* Room for one more site and its line. */
static int parser_grow(struct sites_parser *sp)
{
	unsigned cap = sp->sites.cap ? 2 * sp->sites.cap : 64;
	struct site_conf *site;
	unsigned *lines;

	if (sp->sites.n < sp->sites.cap)
		return 0;
	site = realloc(sp->sites.site, cap * sizeof(*site));
	if (!site)
		return -ENOMEM;
	sp->sites.site = site;
	lines = realloc(sp->lines, cap * sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	sp->lines = lines;
	sp->sites.cap = cap;
	return 0;
}

static void parser_end_site(struct sites_parser *sp)
{
	const struct conf *conf = sp->conf;

	if (sp->field < sp->n_columns) {
		parser_fail(sp, sp->row_line, sp->field + 1, "%u fields, the header has %u",
			    sp->field, sp->n_columns);
		return;
	}
	if (conf && conf_tenant_find(conf, sp->row.tenant) < 0) {
		char known[CONF_ERR_MAX / 2];

		tenant_names(conf, known, sizeof(known));
		parser_fail(sp, sp->row_line, parser_column(sp, SITES_COL_TENANT), "tenant: "
			    "\"%s\" is not a tenant of the configuration (%s)", sp->row.tenant,
			    known);
		return;
	}
	if (conf && sp->sites.n >= conf->max_sites) {
		parser_fail(sp, sp->row_line, 1, "more than gateway.max_sites (%u) sites",
			    conf->max_sites);
		return;
	}
	if (parser_grow(sp) < 0) {
		parser_fail(sp, sp->row_line, 1, "out of memory");
		return;
	}
	/* In file order for now; sorted once the file-wide rules have run. */
	sp->lines[sp->sites.n] = sp->row_line;
	memcpy(&sp->sites.site[sp->sites.n++], &sp->row, sizeof(sp->row));
}

/* libcsv: a row ended (C is the terminator, -1 at the end of the text). */
static void parser_on_row(int c, void *opaque)
{
	struct sites_parser *sp = opaque;

	if (!sp->failed && sp->field > 0) {
		if (!sp->have_header)
			parser_end_header(sp);
		else
			parser_end_site(sp);
	}
	sp->field = 0;
	/* A line ends at LF, CRLF or a lone CR, as in an editor. */
	if (c == '\r' || (c == '\n' && !sp->after_cr))
		sp->line++;
	sp->after_cr = c == '\r';
}

/*
 * The file-wide rules. A conflict is between two sites; LATER is the one
 * that comes second in the array (file order when loading) and is the one
 * reported.
 */
enum sites_rule {
	SITES_RULE_NAME,		/* the name is taken */
	SITES_RULE_NO_KEY,		/* a shared source IP and one of them has no key */
	SITES_RULE_SAME_KEY,		/* a shared source IP with the same key */
};

struct sites_conflict {
	enum sites_rule rule;
	unsigned later, earlier;	/* indices into the set */
};

static int order_by_name(const void *a, const void *b, void *opaque)
{
	const struct site_conf *site = opaque;
	unsigned i = *(const unsigned *)a, j = *(const unsigned *)b;
	int cmp = strcmp(site[i].name, site[j].name);

	return cmp ? cmp : (i > j) - (i < j);
}

/* By source IP, keyless first, then key, then position. */
static int order_by_source(const void *a, const void *b, void *opaque)
{
	const struct site_conf *site = opaque;
	unsigned i = *(const unsigned *)a, j = *(const unsigned *)b;
	const struct site_conf *x = &site[i], *y = &site[j];
	uint32_t xa = ntohl(x->source_ip.s_addr), ya = ntohl(y->source_ip.s_addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	if (x->has_key != y->has_key)
		return x->has_key ? 1 : -1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (i > j) - (i < j);
}

static void conflict_keep(struct sites_conflict *best, bool *found, enum sites_rule rule,
			  unsigned later, unsigned earlier)
{
	if (*found && best->later <= later)
		return;
	*found = true;
	best->rule = rule;
	best->later = later;
	best->earlier = earlier;
}

static void find_name_conflicts(const struct site_conf *site, unsigned *idx, unsigned n,
				struct sites_conflict *best, bool *found)
{
	qsort_r(idx, n, sizeof(*idx), order_by_name, (void *)site);
	for (unsigned k = 1, first = 0; k < n; k++) {
		if (strcmp(site[idx[k]].name, site[idx[first]].name)) {
			first = k;
			continue;
		}
		conflict_keep(best, found, SITES_RULE_NAME, idx[k], idx[first]);
	}
}

/* One group of sites sharing a source IP: IDX[from..to). */
static void find_source_conflicts_in(const struct site_conf *site, const unsigned *idx,
				     unsigned from, unsigned to, struct sites_conflict *best,
				     bool *found)
{
	unsigned eldest = idx[from], keyless = site[idx[from]].has_key ? to : from;
	unsigned same_key = from;

	for (unsigned k = from; k < to; k++)
		if (idx[k] < eldest)
			eldest = idx[k];
	for (unsigned k = from; k < to; k++) {
		unsigned m = idx[k];

		if (k > from && (!site[m].has_key || site[m].key != site[idx[k - 1]].key ||
				 !site[idx[k - 1]].has_key))
			same_key = k;
		if (m == eldest)
			continue;
		if (!site[m].has_key)
			conflict_keep(best, found, SITES_RULE_NO_KEY, m, eldest);
		else if (keyless < to && idx[keyless] < m)
			conflict_keep(best, found, SITES_RULE_NO_KEY, m, idx[keyless]);
		else if (same_key < k)
			conflict_keep(best, found, SITES_RULE_SAME_KEY, m, idx[same_key]);
	}
}

static void find_source_conflicts(const struct site_conf *site, unsigned *idx, unsigned n,
				  struct sites_conflict *best, bool *found)
{
	qsort_r(idx, n, sizeof(*idx), order_by_source, (void *)site);
	for (unsigned from = 0, to; from < n; from = to) {
		in_addr_t ip = site[idx[from]].source_ip.s_addr;

		for (to = from + 1; to < n && site[idx[to]].source_ip.s_addr == ip; to++)
			continue;
		if (to - from > 1)
			find_source_conflicts_in(site, idx, from, to, best, found);
	}
}

/* The conflict whose later site comes first. 1 if found, 0, or -ENOMEM. */
static int sites_find_conflict(const struct site_conf *site, unsigned n,
			       struct sites_conflict *conflict)
{
	unsigned *idx = malloc((n ? n : 1) * sizeof(*idx));
	bool found = false;

	if (!idx)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		idx[i] = i;
	find_name_conflicts(site, idx, n, conflict, &found);
	find_source_conflicts(site, idx, n, conflict, &found);
	free(idx);
	return found;
}

/* "column: what" about a conflict; WHERE names the earlier site's row, or "". */
static enum sites_column conflict_describe(const struct site_conf *site,
					   const struct sites_conflict *c, const char *where,
					   char *buf, size_t len)
{
	const struct site_conf *later = &site[c->later], *earlier = &site[c->earlier];
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &later->source_ip, ip, sizeof(ip));
	switch (c->rule) {
	case SITES_RULE_NAME:
		snprintf(buf, len, "name: \"%s\" is already used%s", later->name, where);
		return SITES_COL_NAME;
	case SITES_RULE_NO_KEY:
		snprintf(buf, len, "source_ip: %s is also the source IP of \"%s\"%s, and %s no "
			 "key; sites that share a source IP need distinct keys", ip,
			 earlier->name, where, later->has_key ? "that site has" : "this site has");
		return SITES_COL_SOURCE_IP;
	case SITES_RULE_SAME_KEY:
		snprintf(buf, len, "key: %u is also the key of \"%s\"%s, which has the same "
			 "source IP %s; sites that share a source IP need distinct keys",
			 later->key, earlier->name, where, ip);
		return SITES_COL_KEY;
	}
	return SITES_COL_NAME;
}

static int parser_check_conflicts(struct sites_parser *sp)
{
	struct sites_conflict c;
	char where[32], msg[CONF_ERR_MAX - 64];
	enum sites_column col;
	int ret = sites_find_conflict(sp->sites.site, sp->sites.n, &c);

	if (ret < 0)
		return parser_fail(sp, 1, 1, "out of memory");
	if (ret == 0)
		return 0;
	snprintf(where, sizeof(where), " on row %u", sp->lines[c.earlier]);
	col = conflict_describe(sp->sites.site, &c, where, msg, sizeof(msg));
	return parser_fail(sp, sp->lines[c.later], parser_column(sp, col), "%s", msg);
}

static int site_compare(const void *a, const void *b)
{
	return strcmp(((const struct site_conf *)a)->name, ((const struct site_conf *)b)->name);
}

/* Feed TEXT to libcsv; a quoting error is reported at its line. */
static int parser_run(struct sites_parser *sp, const char *text, size_t len)
{
	struct csv_parser csv;
	size_t done;
	int ret = 0;

	if (csv_init(&csv, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL) != 0)
		return parser_fail(sp, 1, 1, "out of memory");
	done = csv_parse(&csv, text, len, parser_on_field, parser_on_row, sp);
	if (!sp->failed && done < len) {
		unsigned line = 1;

		for (size_t i = 0; i < done; i++)
			line += text[i] == '\n' ||
				(text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n'));
		ret = parser_fail(sp, line, sp->field + 1, "bad quoting: a quote inside an "
				  "unquoted field or after a closing quote; quote the whole field "
				  "and double any quote inside it");
	} else if (!sp->failed && csv_fini(&csv, parser_on_field, parser_on_row, sp) != 0) {
		ret = parser_fail(sp, sp->line, sp->field + 1, "a quoted field is never closed");
	}
	csv_free(&csv);
	return sp->failed ? -1 : ret;
}

int sites_parse(struct sites *sites, const char *file_name, const char *text, size_t len,
		const struct conf *conf, char err[CONF_ERR_MAX])
{
	struct sites_parser sp = { .file = file_name, .err = err, .conf = conf, .line = 1 };

	memset(sites, 0, sizeof(*sites));
	err[0] = '\0';
	for (int i = 0; i < SITES_COL_COUNT; i++)
		sp.field_of[i] = -1;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;
		len -= 3;
	}
	if (parser_run(&sp, text, len) < 0)
		goto out_free;
	if (!sp.have_header) {
		parser_fail(&sp, 1, 1, "no header row (it names the columns: at least "
			    "name,source_ip)");
		goto out_free;
	}
	if (parser_check_conflicts(&sp) < 0)
		goto out_free;
	if (sp.sites.n)
		qsort(sp.sites.site, sp.sites.n, sizeof(sp.sites.site[0]), site_compare);
	*sites = sp.sites;
	free(sp.lines);
	return 0;
out_free:
	free(sp.sites.site);
	free(sp.lines);
	return -1;
}

/* The whole file in a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len)
{
	FILE *in = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int saved;

	if (!in)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *grown = realloc(buf, cap + 65536);

			if (!grown)
				goto out_fail;
			buf = grown;
			cap += 65536;
		}
		n += fread(buf + n, 1, cap - n - 1, in);
		if (ferror(in))
			goto out_fail;
		if (feof(in))
			break;
	}
	fclose(in);
	buf[n] = '\0';
	*len = n;
	return buf;
out_fail:
	saved = errno ? errno : EIO;
	free(buf);
	fclose(in);
	errno = saved;
	return NULL;
}

int sites_load(struct sites *sites, const char *path, const struct conf *conf,
	       char err[CONF_ERR_MAX])
{
	size_t len;
	char *text = read_file(path, &len);
	int ret;

	if (!text) {
		int saved = errno;

		memset(sites, 0, sizeof(*sites));
		snprintf(err, CONF_ERR_MAX, "%.300s:0:0: cannot read the file: %s", path,
			 strerror(saved));
		errno = saved;
		return -1;
	}
	ret = sites_parse(sites, path, text, len, conf, err);
	free(text);
	return ret;
}

int sites_validate(const struct sites *sites, const struct conf *conf, char err[CONF_ERR_MAX])
{
	struct sites_conflict c;
	char msg[CONF_ERR_MAX - 80];
	int ret;

	for (unsigned i = 0; i < sites->n; i++) {
		const struct site_conf *s = &sites->site[i];

		if (conf && conf_tenant_find(conf, s->tenant) < 0) {
			char known[CONF_ERR_MAX / 2];

			tenant_names(conf, known, sizeof(known));
			snprintf(err, CONF_ERR_MAX, "site \"%s\": tenant: \"%s\" is not a tenant "
				 "of the configuration (%s)", s->name, s->tenant, known);
			return -1;
		}
	}
	if (conf && sites->n > conf->max_sites) {
		snprintf(err, CONF_ERR_MAX, "%u sites, more than gateway.max_sites (%u)",
			 sites->n, conf->max_sites);
		return -1;
	}
	ret = sites_find_conflict(sites->site, sites->n, &c);
	if (ret == 0)
		return 0;
	if (ret < 0) {
		snprintf(err, CONF_ERR_MAX, "out of memory");
		return -1;
	}
	conflict_describe(sites->site, &c, "", msg, sizeof(msg));
	snprintf(err, CONF_ERR_MAX, "site \"%s\": %s", sites->site[c.later].name, msg);
	return -1;
}
