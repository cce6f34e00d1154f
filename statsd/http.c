#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "lib/timeutil.h"
#include "statsd/http.h"
#include "statsd/www.h"

#ifndef GREPOP_VERSION
#define GREPOP_VERSION "dev"
#endif

struct http {
	struct MHD_Daemon *mhd;
	struct collect *collect;
	const struct feed *feed;
};

/* --- /metrics --- */

/* A label value with \, " and newline escaped, as the text format wants. */
static void put_label(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', out);
		if (*s == '\n') {
			fputs("\\n", out);
			continue;
		}
		fputc(*s, out);
	}
}

static void put_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP grepop_%s %s\n# TYPE grepop_%s %s\n", name, help, name, type);
}

/* One series: grepop_NAME{LABEL="VALUE"} V; LABEL may be NULL. */
static void put_u64(FILE *out, const char *name, const char *label, const char *value,
		    uint64_t v)
{
	fprintf(out, "grepop_%s", name);
	if (label) {
		fprintf(out, "{%s=\"", label);
		put_label(out, value);
		fputs("\"}", out);
	}
	fprintf(out, " %llu\n", (unsigned long long)v);
}

static void metrics_pop(const struct collect *c, FILE *out)
{
	const struct collect_pop *pop = &c->pop;
	uint64_t hb = pop->healthd_heartbeat_ns;

	put_head(out, "build_info", "gauge", "Version of the running statsd.");
	fprintf(out, "grepop_build_info{version=\"%s\"} 1\n", GREPOP_VERSION);
	put_head(out, "info", "gauge", "The POP this statsd reports.");
	fputs("grepop_info{pop=\"", out);
	put_label(out, c->conf->pop_name);
	fputs("\"} 1\n", out);
	put_head(out, "pop_accepting_new_tunnels", "gauge",
		 "1 while the acceptance mode lets new tunnels in.");
	put_u64(out, "pop_accepting_new_tunnels", NULL, NULL,
		pop->accept_mode == SHM_ACCEPT_ACCEPT);
	put_head(out, "pop_accept_mode", "gauge", "1 for the current acceptance mode.");
	for (int m = SHM_ACCEPT_ACCEPT; m <= SHM_ACCEPT_DRAIN; m++)
		put_u64(out, "pop_accept_mode", "mode", shm_accept_name(m),
			pop->accept_mode == (uint32_t)m);
	put_head(out, "service_up", "gauge", "1 while healthd finds the downstream service up.");
	for (int s = 0; s < SHM_SVC_COUNT; s++)
		put_u64(out, "service_up", "service", shm_service_name(s),
			pop->service[s].health == SHM_HEALTH_UP);
	put_head(out, "healthd_heartbeat_age_seconds", "gauge",
		 "Seconds since healthd's last heartbeat (+Inf: never).");
	if (hb == 0)
		fputs("grepop_healthd_heartbeat_age_seconds +Inf\n", out);
	else
		fprintf(out, "grepop_healthd_heartbeat_age_seconds %.3f\n",
			collect_age_ns(c->scan_real_ns, hb) / 1e9);
}

static void metrics_pop_totals(const struct collect *c, FILE *out)
{
	const struct collect_pop *pop = &c->pop;

	put_head(out, "pop_sites", "gauge", "Sites configured, by status.");
	put_u64(out, "pop_sites", "status", "up", pop->up);
	put_u64(out, "pop_sites", "status", "down", pop->down);
	put_u64(out, "pop_sites", "status", "disabled", pop->disabled);
	put_head(out, "pop_rx_packets_total", "counter", "Packets delivered from every site.");
	put_u64(out, "pop_rx_packets_total", NULL, NULL, pop->totals.rx_packets);
	put_head(out, "pop_rx_bytes_total", "counter", "Inner bytes delivered from every site.");
	put_u64(out, "pop_rx_bytes_total", NULL, NULL, pop->totals.rx_bytes);
	put_head(out, "pop_tx_packets_total", "counter", "Packets encapsulated to every site.");
	put_u64(out, "pop_tx_packets_total", NULL, NULL, pop->totals.tx_packets);
	put_head(out, "pop_tx_bytes_total", "counter", "Inner bytes encapsulated to every site.");
	put_u64(out, "pop_tx_bytes_total", NULL, NULL, pop->totals.tx_bytes);
	put_head(out, "pop_drops_total", "counter", "Packets dropped, by reason, POP-wide.");
	for (int d = 0; d < SHM_DROP_COUNT; d++)
		put_u64(out, "pop_drops_total", "reason", shm_drop_name(d), pop->totals.drops[d]);
	put_head(out, "pop_rx_queue_drops_total", "counter",
		 "GRE packets the kernel dropped before gatewayd read them (receive queue full).");
	put_u64(out, "pop_rx_queue_drops_total", NULL, NULL, pop->totals.rx_queue_drops);
}

/* The value of one per-site metric. */
typedef uint64_t (*site_value_fn)(const struct collect_site *s);

static uint64_t site_up(const struct collect_site *s)
{
	return s->state.status == COLLECT_UP;
}

static uint64_t site_enabled(const struct collect_site *s)
{
	return s->id.enabled;
}

static uint64_t site_ka_seen(const struct collect_site *s)
{
	return s->state.keepalive == COLLECT_KA_SEEN;
}

static uint64_t site_established(const struct collect_site *s)
{
	return s->state.tunnel == COLLECT_TUNNEL_ESTABLISHED;
}

static uint64_t site_last_ka(const struct collect_site *s)
{
	return s->totals.last_keepalive_ns / NSEC_PER_SEC;
}

#define SITE_COUNTER(field) \
	static uint64_t site_##field(const struct collect_site *s) { return s->totals.field; }
SITE_COUNTER(rx_packets)
SITE_COUNTER(rx_bytes)
SITE_COUNTER(tx_packets)
SITE_COUNTER(tx_bytes)
SITE_COUNTER(keepalives)
SITE_COUNTER(probes)

static const struct site_metric {
	const char *name, *type, *help;
	site_value_fn value;
} site_metrics[] = {
	{ "site_up", "gauge", "1 while the site is up (keepalive seen or tunnel established).",
	  site_up },
	{ "site_enabled", "gauge", "1 while the site is enabled.", site_enabled },
	{ "site_keepalive_seen", "gauge", "1 while a keepalive arrived within the window.",
	  site_ka_seen },
	{ "site_tunnel_established", "gauge", "1 while the tunnel carries packets.",
	  site_established },
	{ "site_last_keepalive_timestamp_seconds", "gauge",
	  "Unix time of the last keepalive (0: never).", site_last_ka },
	{ "site_rx_packets_total", "counter", "Packets from the site delivered.",
	  site_rx_packets },
	{ "site_rx_bytes_total", "counter", "Inner bytes from the site delivered.",
	  site_rx_bytes },
	{ "site_tx_packets_total", "counter", "Packets encapsulated to the site.",
	  site_tx_packets },
	{ "site_tx_bytes_total", "counter", "Inner bytes encapsulated to the site.",
	  site_tx_bytes },
	{ "site_keepalives_total", "counter", "Keepalives reflected.", site_keepalives },
	{ "site_probes_total", "counter", "ICMP probes answered.", site_probes },
};

/* The lock is taken per metric so that a scan waits for one, not for all. */
static void metrics_sites(struct collect *c, FILE *out)
{
	for (size_t m = 0; m < sizeof(site_metrics) / sizeof(site_metrics[0]); m++) {
		const struct site_metric *sm = &site_metrics[m];

		put_head(out, sm->name, sm->type, sm->help);
		collect_lock(c);
		for (uint32_t i = 0; i < c->n_slots; i++)
			if (c->site[i].in_use)
				put_u64(out, sm->name, "site", c->site[i].id.name,
					sm->value(&c->site[i]));
		collect_unlock(c);
	}
}

/* Only reasons that happened: 14 series per site would dwarf the rest. */
static void metrics_site_drops(struct collect *c, FILE *out)
{
	put_head(out, "site_drops_total", "counter",
		 "Packets of the site dropped, by reason (reasons never seen are omitted).");
	collect_lock(c);
	for (uint32_t i = 0; i < c->n_slots; i++) {
		const struct collect_site *s = &c->site[i];

		if (!s->in_use)
			continue;
		for (int d = 0; d < SHM_DROP_SITE_COUNT; d++) {
			if (s->totals.drops[d] == 0)
				continue;
			fputs("grepop_site_drops_total{site=\"", out);
			put_label(out, s->id.name);
			fprintf(out, "\",reason=\"%s\"} %llu\n", shm_drop_name(d),
				(unsigned long long)s->totals.drops[d]);
		}
	}
	collect_unlock(c);
}

void http_write_metrics(struct collect *c, FILE *out)
{
	collect_lock(c);
	metrics_pop(c, out);
	metrics_pop_totals(c, out);
	collect_unlock(c);
	metrics_sites(c, out);
	metrics_site_drops(c, out);
}

/* --- /api/v1/sites --- */

void http_site_query_init(struct http_site_query *q)
{
	memset(q, 0, sizeof(*q));
	q->status = -1;
	q->traffic_type = -1;
	q->page = 1;
	q->per_page = HTTP_PER_PAGE_DEFAULT;
}

/* A whole decimal number in [MIN, MAX]. */
static bool parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!text || *text < '0' || *text > '9')
		return false;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool http_site_query_set(struct http_site_query *q, const char *key, const char *value,
			 char *err, size_t err_len)
{
	if (!value)
		value = "";
	if (strcmp(key, "status") == 0) {
		q->status = collect_status_parse(value);
		if (q->status < 0)
			snprintf(err, err_len, "status must be up, down or disabled");
		return q->status >= 0;
	}
	if (strcmp(key, "traffic_type") == 0) {
		q->traffic_type = shm_traffic_type_parse(value);
		if (q->traffic_type < 0)
			snprintf(err, err_len, "unknown traffic_type \"%.64s\"", value);
		return q->traffic_type >= 0;
	}
	if (strcmp(key, "name") == 0) {
		if (strlen(value) >= sizeof(q->name)) {
			snprintf(err, err_len, "name is longer than %d characters",
				 SHM_NAME_MAX - 1);
			return false;
		}
		strcpy(q->name, value);
		return true;
	}
	if (strcmp(key, "order") == 0) {
		q->descending = strcmp(value, "desc") == 0;
		if (!q->descending && strcmp(value, "asc") != 0)
			snprintf(err, err_len, "order must be asc or desc");
		return q->descending || strcmp(value, "asc") == 0;
	}
	if (strcmp(key, "page") == 0 && parse_uint(value, 1, INT_MAX, &q->page))
		return true;
	if (strcmp(key, "per_page") == 0 &&
	    parse_uint(value, 1, HTTP_PER_PAGE_MAX, &q->per_page))
		return true;
	if (strcmp(key, "page") == 0 || strcmp(key, "per_page") == 0)
		snprintf(err, err_len, "%s must be a whole number from 1%s", key,
			 key[0] == 'p' && key[1] == 'e' ? " to 1000" : "");
	else
		snprintf(err, err_len, "unknown parameter \"%.64s\"", key);
	return false;
}

static bool site_matches(const struct collect_site *s, const struct http_site_query *q)
{
	if (!s->in_use)
		return false;
	if (q->status >= 0 && s->state.status != q->status)
		return false;
	if (q->traffic_type >= 0 && s->id.traffic_type != q->traffic_type)
		return false;
	return q->name[0] == '\0' || strstr(s->id.name, q->name) != NULL;
}

static int slot_by_name(const void *a, const void *b, void *arg)
{
	const struct collect *c = arg;
	const struct collect_site *sa = &c->site[*(const uint32_t *)a];
	const struct collect_site *sb = &c->site[*(const uint32_t *)b];

	return strcmp(sa->id.name, sb->id.name);
}

json_t *http_sites_json(const struct collect *c, const struct http_site_query *q,
			uint64_t seq)
{
	uint32_t *slots = malloc(sizeof(*slots) * (c->n_slots ? c->n_slots : 1));
	json_t *o = json_object(), *list = json_array();
	uint32_t n = 0;
	uint64_t first = (uint64_t)(q->page - 1) * q->per_page;

	for (uint32_t i = 0; slots && i < c->n_slots; i++)
		if (site_matches(&c->site[i], q))
			slots[n++] = i;
	/* Paging needs a stable order: by name. */
	if (slots)
		qsort_r(slots, n, sizeof(*slots), slot_by_name, (void *)c);
	for (uint64_t i = first; i < n && i < first + q->per_page; i++)
		json_array_append_new(list, collect_site_json(c, slots[q->descending ?
									     n - 1 - i : i], seq));
	free(slots);
	json_object_set_new(o, "sites", list);
	json_object_set_new(o, "total", json_integer(n));
	json_object_set_new(o, "page", json_integer(q->page));
	json_object_set_new(o, "per_page", json_integer(q->per_page));
	json_object_set_new(o, "pages", json_integer((n + q->per_page - 1) / q->per_page));
	return o;
}

/* --- the server --- */

static enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned status,
				  const char *type, char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result http_reply_json(struct MHD_Connection *conn, unsigned status,
				       json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));

	json_decref(obj);
	if (!text)
		return MHD_NO;
	return http_reply(conn, status, "application/json", text, strlen(text));
}

static enum MHD_Result http_error(struct MHD_Connection *conn, unsigned status,
				  const char *message)
{
	return http_reply_json(conn, status, json_pack("{ss}", "error", message));
}

struct query_walk {
	struct http_site_query q;
	char err[160];
	bool bad;
};

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct query_walk *w = cls;

	if (!w->bad && !http_site_query_set(&w->q, key, value, w->err, sizeof(w->err)))
		w->bad = true;
	return MHD_YES;
}

static enum MHD_Result http_sites(struct http *h, struct MHD_Connection *conn)
{
	struct query_walk w = { .bad = false };
	json_t *o;

	http_site_query_init(&w.q);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg, &w);
	if (w.bad)
		return http_error(conn, MHD_HTTP_BAD_REQUEST, w.err);
	collect_lock(h->collect);
	o = http_sites_json(h->collect, &w.q, feed_seq(h->feed));
	collect_unlock(h->collect);
	return http_reply_json(conn, MHD_HTTP_OK, o);
}

static enum MHD_Result http_metrics(struct http *h, struct MHD_Connection *conn)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return MHD_NO;
	http_write_metrics(h->collect, out);
	if (fclose(out) != 0) {
		free(text);
		return MHD_NO;
	}
	return http_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
			  len);
}

/* The dashboard's files, from the binary; anything else is 404. */
static enum MHD_Result http_static(struct MHD_Connection *conn, const char *url)
{
	const struct www_file *f = www_find(url);
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (!f)
		return http_error(conn, MHD_HTTP_NOT_FOUND, "no such resource");
	resp = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size,
				   void **con_cls)
{
	struct http *h = cls;
	json_t *o;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return http_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
	if (strcmp(url, "/metrics") == 0)
		return http_metrics(h, conn);
	if (strcmp(url, "/api/v1/sites") == 0)
		return http_sites(h, conn);
	if (strcmp(url, "/api/v1/pop") == 0) {
		collect_lock(h->collect);
		o = collect_pop_json(h->collect, feed_seq(h->feed));
		collect_unlock(h->collect);
		return http_reply_json(conn, MHD_HTTP_OK, o);
	}
	return http_static(conn, url);
}

/* "IPv4:port" into SA. */
static bool parse_address(const char *text, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(text, ':');
	unsigned port;

	if (!colon || (size_t)(colon - text) >= sizeof(host))
		return false;
	memcpy(host, text, colon - text);
	host[colon - text] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || !parse_uint(colon + 1, 1, 65535, &port))
		return false;
	sa->sin_port = htons(port);
	return true;
}

struct http *http_start(const char *address, struct collect *c, const struct feed *f)
{
	struct sockaddr_in sa;
	struct http *h;

	if (!parse_address(address, &sa)) {
		errno = EINVAL;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->collect = c;
	h->feed = f;
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
				  ntohs(sa.sin_port), NULL, NULL, http_handle, h,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTION_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)HTTP_CONNECTION_TIMEOUT_S,
				  MHD_OPTION_END);
	if (!h->mhd) {
		free(h);
		errno = EADDRINUSE;
		return NULL;
	}
	return h;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	free(h);
}
