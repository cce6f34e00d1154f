#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "lib/timeutil.h"
#include "statsd/feed.h"

#define FEED_DUMP_FLAGS		(JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
#define FEED_EVENTS_PER_POLL	1000	/* then serve the other sockets */
#define FEED_EVENT_MAX		65536	/* bytes of one pushed event */

uint64_t feed_seq(const struct feed *f)
{
	return __atomic_load_n(&f->seq, __ATOMIC_RELAXED);
}

static int feed_bind(void *sock, const char *endpoint, int hwm)
{
	int linger = 0, off = 0, type = 0;
	size_t len = sizeof(type);

	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_getsockopt(sock, ZMQ_TYPE, &type, &len);
	/* Off: a reply to a client that is gone is dropped, never an error. */
	if (type == ZMQ_ROUTER)
		zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &off, sizeof(off));
	if (zmq_bind(sock, endpoint) < 0)
		return -errno;
	return 0;
}

int feed_open(struct feed *f, const struct conf *conf, struct collect *c, const char **what)
{
	static char events[CONF_ADDR_MAX + PATH_MAX];
	int router_hwm = (int)(c->n_slots < INT32_MAX - 16 ? c->n_slots + 16 : INT32_MAX);
	int r;

	memset(f, 0, sizeof(*f));
	f->collect = c;
	f->refresh_scans = 1;
	f->sites_per_scan = FEED_SITES_PER_SCAN;
	f->ctx = zmq_ctx_new();
	if (!f->ctx)
		return -errno;
	f->pub = zmq_socket(f->ctx, ZMQ_PUB);
	f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
	f->pull = zmq_socket(f->ctx, ZMQ_PULL);
	if (!f->pub || !f->router || !f->pull)
		return -errno;
	*what = conf->stats_feed;
	r = feed_bind(f->pub, conf->stats_feed, FEED_PUB_HWM);
	if (r < 0)
		return r;
	*what = conf->stats_snapshot;
	r = feed_bind(f->router, conf->stats_snapshot, router_hwm);
	if (r < 0)
		return r;
	/* A socket file left by a statsd that died would make bind fail. */
	conf_events_endpoint(conf, events, sizeof(events));
	unlink(events + strlen("ipc://"));
	*what = events;
	return feed_bind(f->pull, events, 1000);
}

void feed_close(struct feed *f)
{
	if (f->pub)
		zmq_close(f->pub);
	if (f->router)
		zmq_close(f->router);
	if (f->pull)
		zmq_close(f->pull);
	if (f->ctx)
		zmq_ctx_term(f->ctx);
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

/* OBJ's text into f->buf; its length, or 0 if it cannot be encoded. */
static size_t feed_dump(struct feed *f, const json_t *obj)
{
	size_t n = json_dumpb(obj, f->buf, f->buf_size, FEED_DUMP_FLAGS);

	if (n > f->buf_size) {
		char *p = realloc(f->buf, n * 2);

		if (!p)
			return 0;
		f->buf = p;
		f->buf_size = n * 2;
		n = json_dumpb(obj, f->buf, f->buf_size, FEED_DUMP_FLAGS);
	}
	return n;
}

/* Send frames PREFIX (optional), TOPIC, then OBJ's text on SOCK. */
static int feed_send(struct feed *f, void *sock, const void *prefix, size_t prefix_len,
		     bool delimiter, const char *topic, const json_t *obj)
{
	size_t n = feed_dump(f, obj);

	if (n == 0)
		return -ENOMEM;
	if (prefix && zmq_send(sock, prefix, prefix_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	if (delimiter && zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	if (zmq_send(sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	if (zmq_send(sock, f->buf, n, ZMQ_DONTWAIT) < 0)
		return -errno;
	return 0;
}

int feed_publish(struct feed *f, const char *topic, json_t *obj)
{
	uint64_t seq = f->seq + 1;

	__atomic_store_n(&f->seq, seq, __ATOMIC_RELAXED);
	json_object_set_new(obj, "seq", json_integer((json_int_t)seq));
	return feed_send(f, f->pub, NULL, 0, false, topic, obj);
}

/* "grepop.v1.site.<name>" */
static void feed_site_topic(char *buf, size_t len, const struct collect_site *s)
{
	snprintf(buf, len, FEED_TOPIC_PREFIX "site.%s", s->id.name);
}

/* Scans between two messages of an unchanged site, spread evenly over the slots. */
static unsigned feed_refresh_scans(unsigned sites, unsigned per_scan)
{
	return sites <= per_scan ? 1 : (sites + per_scan - 1) / per_scan;
}

void feed_publish_scan(struct feed *f)
{
	struct collect *c = f->collect;
	char topic[SHM_NAME_MAX + 32];
	uint64_t sent = 0, changed_left = f->sites_per_scan;
	json_t *o;

	collect_lock(c);
	f->refresh_scans = feed_refresh_scans(c->pop.total, f->sites_per_scan);
	o = collect_pop_json(c, 0);
	feed_publish(f, FEED_TOPIC_PREFIX "pop", o);
	json_decref(o);
	for (uint32_t i = 0; i < c->n_slots; i++) {
		struct collect_site *s = &c->site[i];

		bool due = (c->scans + i) % f->refresh_scans == 0;

		if (!s->in_use)
			continue;
		/*
		 * Changes beyond the budget (a start, a whole import) wait for
		 * the next scans instead of making this one slow.
		 */
		if (!due && (!s->changed || changed_left == 0))
			continue;
		if (!due)
			changed_left--;
		o = collect_site_json(c, i, 0);
		feed_site_topic(topic, sizeof(topic), s);
		feed_publish(f, topic, o);
		json_decref(o);
		s->changed = false;
		sent++;
	}
	f->site_messages = sent;
	collect_unlock(c);
}

void feed_site_event(void *arg, const char *type, const struct collect_site *s,
		     uint64_t time_ns)
{
	struct feed *f = arg;
	json_t *o = json_object();

	collect_add_common(f->collect, o, 0, time_ns);
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "site", json_string(s->id.name));
	feed_publish(f, FEED_TOPIC_PREFIX "event", o);
	json_decref(o);
}

/* Republish one pushed event with pop, seq and time added. */
static void feed_republish(struct feed *f, const char *text, size_t len)
{
	json_t *o = json_loadb(text, len, 0, NULL);
	json_t *ns;
	uint64_t time_ns;

	if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "type"))) {
		f->events_bad++;
		json_decref(o);
		return;
	}
	ns = json_object_get(o, "time_ns");
	time_ns = json_is_integer(ns) && json_integer_value(ns) > 0 ?
		  (uint64_t)json_integer_value(ns) : now_realtime_ns();
	collect_lock(f->collect);
	collect_add_common(f->collect, o, 0, time_ns);
	collect_unlock(f->collect);
	f->events_in++;
	feed_publish(f, FEED_TOPIC_PREFIX "event", o);
	json_decref(o);
}

static void feed_read_events(struct feed *f)
{
	static char buf[FEED_EVENT_MAX];

	for (int i = 0; i < FEED_EVENTS_PER_POLL; i++) {
		int n = zmq_recv(f->pull, buf, sizeof(buf), ZMQ_DONTWAIT);
		int more = 0;
		size_t more_len = sizeof(more);

		if (n < 0)
			return;
		zmq_getsockopt(f->pull, ZMQ_RCVMORE, &more, &more_len);
		/* One frame per event; a truncated or multipart one is refused. */
		if (more || n > (int)sizeof(buf)) {
			f->events_bad++;
			while (more && zmq_recv(f->pull, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
				zmq_getsockopt(f->pull, ZMQ_RCVMORE, &more, &more_len);
			continue;
		}
		feed_republish(f, buf, n);
	}
}

int feed_snapshot_start(struct feed *f, const void *identity, size_t id_len, bool delimiter)
{
	struct feed_snapshot *job = NULL;
	json_t *o;

	for (int i = 0; i < FEED_SNAPSHOT_JOBS && !job; i++)
		if (!f->snapshot[i].active)
			job = &f->snapshot[i];
	if (!job || id_len > FEED_IDENTITY_MAX) {
		f->snapshots_refused++;
		return -EBUSY;
	}
	job->active = true;
	job->delimiter = delimiter;
	job->id_len = id_len;
	memcpy(job->id, identity, id_len);
	job->seq = f->seq;
	job->next = 0;
	collect_lock(f->collect);
	o = collect_pop_json(f->collect, job->seq);
	collect_unlock(f->collect);
	feed_send(f, f->router, job->id, job->id_len, job->delimiter, FEED_TOPIC_PREFIX "pop", o);
	json_decref(o);
	return 0;
}

/* Up to FEED_SNAPSHOT_CHUNK sites of JOB, then the end marker when done. */
static void feed_snapshot_chunk(struct feed *f, struct feed_snapshot *job)
{
	struct collect *c = f->collect;
	uint32_t end = job->next + FEED_SNAPSHOT_CHUNK;
	char topic[SHM_NAME_MAX + 32];
	json_t *o;

	collect_lock(c);
	for (; job->next < c->n_slots && job->next < end; job->next++) {
		o = collect_site_json(c, job->next, f->seq);
		if (!o)
			continue;
		feed_site_topic(topic, sizeof(topic), &c->site[job->next]);
		feed_send(f, f->router, job->id, job->id_len, job->delimiter, topic, o);
		json_decref(o);
	}
	collect_unlock(c);
	if (job->next < c->n_slots)
		return;
	o = json_pack("{sI}", "seq", (json_int_t)job->seq);
	feed_send(f, f->router, job->id, job->id_len, job->delimiter,
		  FEED_TOPIC_PREFIX "snapshot.end", o);
	json_decref(o);
	job->active = false;
}

bool feed_snapshot_step(struct feed *f)
{
	bool more = false;

	for (int i = 0; i < FEED_SNAPSHOT_JOBS; i++) {
		if (!f->snapshot[i].active)
			continue;
		feed_snapshot_chunk(f, &f->snapshot[i]);
		more |= f->snapshot[i].active;
	}
	return more;
}

static bool feed_snapshot_pending(const struct feed *f)
{
	for (int i = 0; i < FEED_SNAPSHOT_JOBS; i++)
		if (f->snapshot[i].active)
			return true;
	return false;
}

/*
 * One request on the ROUTER: [identity, ("" from REQ clients,) "snapshot"].
 * Anything else is read and ignored.
 */
static void feed_read_request(struct feed *f)
{
	char frames[3][256];
	int len[3] = { 0 }, n = 0, more = 1;
	size_t more_len = sizeof(more);

	while (more) {
		int r = zmq_recv(f->router, frames[n < 3 ? n : 2], sizeof(frames[0]),
				 ZMQ_DONTWAIT);

		if (r < 0)
			return;
		if (n < 3)
			len[n] = r;
		n++;
		zmq_getsockopt(f->router, ZMQ_RCVMORE, &more, &more_len);
	}
	if (len[0] > FEED_IDENTITY_MAX)
		return;
	if (n == 2 && len[1] == 8 && memcmp(frames[1], "snapshot", 8) == 0)
		feed_snapshot_start(f, frames[0], len[0], false);
	else if (n == 3 && len[1] == 0 && len[2] == 8 && memcmp(frames[2], "snapshot", 8) == 0)
		feed_snapshot_start(f, frames[0], len[0], true);
}

int feed_poll(struct feed *f, long timeout_ms)
{
	zmq_pollitem_t items[] = {
		{ .socket = f->pull, .events = ZMQ_POLLIN },
		{ .socket = f->router, .events = ZMQ_POLLIN },
	};
	int r = zmq_poll(items, 2, feed_snapshot_pending(f) ? 0 : timeout_ms);

	if (r < 0)
		return -errno;
	if (items[0].revents & ZMQ_POLLIN)
		feed_read_events(f);
	if (items[1].revents & ZMQ_POLLIN)
		feed_read_request(f);
	feed_snapshot_step(f);
	return 0;
}
