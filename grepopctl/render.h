/*
 * What grepopctl shows: aligned tables, ages ("12s ago"), throughput, and
 * the filtering, sorting and paging of site lists.
 *
 * Everything here is a pure function of its arguments: the JSON objects are
 * the documented stats messages (docs/architecture.md, "The stats feed and
 * snapshot"), the current time is passed in, and output goes to the FILE
 * given. Missing or mistyped fields render as "-" rather than failing, so a
 * newer statsd with more or fewer fields never breaks the tool.
 */
#ifndef GREPOPCTL_RENDER_H
#define GREPOPCTL_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RENDER_PAGE_SIZE	100
#define RENDER_CELL_MAX		128

/* An aligned table of text cells; the first row is the header. */
struct table {
	unsigned ncols;
	unsigned nrows;			/* header included */
	unsigned cap;
	char **cells;			/* nrows * ncols, owned */
};

/* Start a table with NCOLS columns named HEADERS. 0 or -ENOMEM. */
int table_init(struct table *t, unsigned ncols, const char *const headers[]);

/* Append a row; CELLS (NCOLS of them, NULL prints "-") are copied. */
int table_add_row(struct table *t, const char *const cells[]);

/*
 * Print every row, columns separated by two spaces and padded to the widest
 * cell (counted in UTF-8 characters), no trailing blanks.
 */
void table_print(const struct table *t, FILE *out);

void table_free(struct table *t);

/* "12s ago", "3m ago", "2h ago", "4d ago"; "0s ago" for times ahead of NOW. */
void render_ago(uint64_t now_ns, uint64_t then_ns, char *buf, size_t len);

/* Kbps with one decimal below 1000, whole numbers above; "-" if negative. */
void render_kbps(double kbps, char *buf, size_t len);

/*
 * Parse "2026-12-03T13:24:05Z" (optionally with a fraction of a second)
 * into ns since the epoch. False if TEXT is not such a time.
 */
bool render_parse_time(const char *text, uint64_t *ns);

/* What "site list" keeps; NULL members match everything. */
struct render_filter {
	const char *status;		/* "up", "down", "disabled" */
	const char *pop;		/* the primary or one of the backup POPs */
	const char *traffic_type;
	const char *name;		/* substring of the name */
};

/* True if the site message SITE passes FILTER. */
bool render_filter_match(const struct render_filter *filter, const json_t *site);

struct render_page {
	json_t *sites;			/* array, new reference: the selected page */
	unsigned page;			/* 1-based; 0 when every match was kept */
	unsigned pages;			/* at least 1 */
	unsigned total;			/* sites that passed the filter */
};

/*
 * Filter the array SITES, sort by name and keep page PAGE (1-based,
 * RENDER_PAGE_SIZE sites each; 0 keeps every match). Returns 0, -ERANGE when
 * PAGE is past the last page (OUT still holds total and pages), -ENOMEM.
 * The caller releases out->sites when 0 is returned.
 */
int render_select_sites(const json_t *sites, const struct render_filter *filter,
			unsigned page, struct render_page *out);

/* The cells of one site row, as "site list" shows them (RENDER_SITE_COLS). */
#define RENDER_SITE_COLS	8
extern const char *const render_site_headers[RENDER_SITE_COLS];
void render_site_cells(const json_t *site, uint64_t now_ns,
		       char cells[RENDER_SITE_COLS][RENDER_CELL_MAX]);

/*
 * A copy of SITE with only the members the site table shows (new
 * reference, NULL without memory): what "site list" and "watch" keep.
 */
json_t *render_site_summary(const json_t *site);

/* The site table of PAGE and its footer "page 1 of 3 (250 sites)". */
int render_site_list(const struct render_page *page, uint64_t now_ns, FILE *out);

/* Every field of one site message, counters and drops by reason. */
int render_site_show(const json_t *site, uint64_t now_ns, FILE *out);

/* The POP message: identity, acceptance, service health, backup POPs. */
int render_pop_show(const json_t *pop, uint64_t now_ns, FILE *out);

/* Health of each service and healthd's heartbeat, from the POP message. */
int render_health_show(const json_t *pop, uint64_t now_ns, FILE *out);

/* One line for an event: "TIME POP TYPE key=value ...". */
void render_event_line(const json_t *event, FILE *out);

/* One line for any feed message (site, POP or event), for "watch". */
void render_feed_line(const char *topic, const json_t *msg, FILE *out);

/* A SITECONF object (control protocol) as "field  value" lines. */
int render_siteconf(const json_t *site, FILE *out);

/* "LABEL (2): a, b" for an array of site names. */
void render_names(const char *label, const json_t *names, FILE *out);

/* The lists of a site.import reply: "would add (1): a" or "added (1): a". */
void render_import(const json_t *reply, bool dry_run, FILE *out);

#endif
