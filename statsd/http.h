/*
 * statsd's HTTP endpoint (libmicrohttpd, its own polling thread):
 *
 *   /metrics        Prometheus text format, names prefixed grepop_
 *   /api/v1/sites   site messages as on the feed; filters status,
 *                   traffic_type, name (substring), page, per_page
 *   /api/v1/pop     the POP message
 *
 * Anything else is 404; methods other than GET and HEAD are 405. Handlers
 * run on libmicrohttpd's thread and read statsd's memory under the collect
 * lock.
 */
#ifndef STATSD_HTTP_H
#define STATSD_HTTP_H

#include <stdio.h>

#include "statsd/collect.h"
#include "statsd/feed.h"

#define HTTP_CONNECTION_LIMIT	64
#define HTTP_CONNECTION_TIMEOUT_S	10
#define HTTP_PER_PAGE_DEFAULT	100
#define HTTP_PER_PAGE_MAX	1000

struct http;

/*
 * Serve on ADDRESS ("IPv4:port"). C and F must outlive the server.
 * Returns NULL with errno set (EINVAL for a bad address).
 */
struct http *http_start(const char *address, struct collect *c, const struct feed *f);
void http_stop(struct http *h);

/*
 * The /metrics text of C into OUT. Takes the collect lock once per metric
 * name, so the page may span two scans (as any scrape of live counters may).
 */
void http_write_metrics(struct collect *c, FILE *out);

/* Query of /api/v1/sites, validated. */
struct http_site_query {
	int status;			/* enum collect_status, -1 for any */
	int traffic_type;		/* enum shm_traffic_type, -1 for any */
	char name[SHM_NAME_MAX];	/* substring, "" for any */
	unsigned page;			/* from 1 */
	unsigned per_page;
	bool descending;		/* order=desc: by name, Z to A */
};

void http_site_query_init(struct http_site_query *q);

/*
 * Apply one query parameter KEY=VALUE to Q. Returns false with a message
 * in ERR (ERR_LEN bytes) for an unknown key or a bad value.
 */
bool http_site_query_set(struct http_site_query *q, const char *key, const char *value,
			 char *err, size_t err_len);

/* The /api/v1/sites answer for Q; caller holds the lock and owns it. */
json_t *http_sites_json(const struct collect *c, const struct http_site_query *q,
			uint64_t seq);

#endif
