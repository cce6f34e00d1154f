#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "grepopctl/client.h"
#include "lib/timeutil.h"

#define SNAPSHOT_END		"grepop.v1.snapshot.end"
#define SNAPSHOT_MAX_MESSAGES	10000000	/* far above any POP's site count */

int client_open(struct client *c, unsigned timeout_ms)
{
	c->timeout_ms = timeout_ms;
	c->ctx = zmq_ctx_new();
	return c->ctx ? 0 : -errno;
}

void client_close(struct client *c)
{
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	c->ctx = NULL;
}

/*
 * A socket of TYPE connected to ENDPOINT that never lingers on close. A
 * ROUTER drops what does not fit its peer's pipe: UNLIMITED lifts this
 * side's receive limit (before connecting, when the pipe is made) so that a
 * snapshot of any size arrives whole.
 */
static void *socket_connect(struct client *c, int type, const char *endpoint, bool unlimited,
			    int *err)
{
	int linger = 0, timeout = (int)c->timeout_ms, zero = 0;
	void *sock = zmq_socket(c->ctx, type);

	if (!sock) {
		*err = -errno;
		return NULL;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout, sizeof(timeout));
	if (unlimited)
		zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof(zero));
	if (zmq_connect(sock, endpoint) < 0) {
		*err = -errno;
		zmq_close(sock);
		return NULL;
	}
	return sock;
}

/* One frame as a string, NUL-terminated; -EAGAIN becomes -ETIMEDOUT. */
static int recv_frame(void *sock, char **text, size_t *len, int *more)
{
	zmq_msg_t msg;
	size_t n;

	*more = 0;			/* nothing left to drain after a failure */
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) < 0) {
		int err = errno;

		zmq_msg_close(&msg);
		return err == EAGAIN ? -ETIMEDOUT : -err;
	}
	n = zmq_msg_size(&msg);
	*text = malloc(n + 1);
	if (*text) {
		memcpy(*text, zmq_msg_data(&msg), n);
		(*text)[n] = '\0';
	}
	*len = n;
	*more = zmq_msg_more(&msg);
	zmq_msg_close(&msg);
	return *text ? 0 : -ENOMEM;
}

/* Skip what is left of a multipart message after a bad frame. */
static void drain_parts(void *sock, int more)
{
	char *text;
	size_t len;

	for (int i = 0; more && i < 64; i++) {
		if (recv_frame(sock, &text, &len, &more) < 0)
			return;
		free(text);
	}
}

static json_t *parse_object(const char *text, size_t len)
{
	json_t *v = json_loadb(text, len, 0, NULL);

	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

int client_request(struct client *c, const char *endpoint, const json_t *request,
		   json_t **reply)
{
	char *out = json_dumps(request, JSON_COMPACT), *text = NULL;
	int r = 0, more = 0;
	size_t len;
	void *sock;

	*reply = NULL;
	if (!out)
		return -ENOMEM;
	sock = socket_connect(c, ZMQ_REQ, endpoint, false, &r);
	if (!sock)
		goto free_out;
	if (zmq_send(sock, out, strlen(out), 0) < 0) {
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		goto close_sock;
	}
	r = recv_frame(sock, &text, &len, &more);
	if (r < 0)
		goto close_sock;
	*reply = parse_object(text, len);
	if (!*reply || !json_is_boolean(json_object_get(*reply, "ok"))) {
		json_decref(*reply);
		*reply = NULL;
		r = -EPROTO;
	}
	free(text);
close_sock:
	zmq_close(sock);
free_out:
	free(out);
	return r;
}

/* The end message: its seq, and the site count when the server sends one. */
static int snapshot_end(const json_t *msg, struct client_snapshot *out)
{
	json_int_t seq = json_integer_value(json_object_get(msg, "seq"));
	const json_t *sites = json_object_get(msg, "sites");

	out->seq = seq > 0 ? (uint64_t)seq : 0;
	if (json_is_integer(sites) && (uint64_t)json_integer_value(sites) != out->received)
		return -EPROTO;
	return 1;
}

static void snapshot_site(json_t *msg, client_keep_fn *keep, void *arg,
			  struct client_snapshot *out)
{
	json_t *kept = keep ? keep(msg, arg) : json_incref(msg);

	out->received++;
	if (kept)
		json_array_append_new(out->sites, kept);
}

/* One [topic, json] message of the snapshot, applied to OUT. 1 at the end. */
static int snapshot_apply(void *sock, client_keep_fn *keep, void *arg,
			  struct client_snapshot *out)
{
	char *topic, *body = NULL;
	size_t tlen, blen;
	int more, r;
	json_t *msg;

	r = recv_frame(sock, &topic, &tlen, &more);
	if (r < 0)
		return r;
	if (more)
		r = recv_frame(sock, &body, &blen, &more);
	else
		r = -EPROTO;
	msg = r == 0 ? parse_object(body, blen) : NULL;
	if (r == 0 && !msg)
		r = -EPROTO;
	if (r == 0 && strcmp(topic, SNAPSHOT_END) == 0) {
		r = snapshot_end(msg, out);
	} else if (r == 0 && strcmp(topic, "grepop.v1.pop") == 0) {
		json_decref(out->pop);
		out->pop = json_incref(msg);
	} else if (r == 0 && strncmp(topic, "grepop.v1.site.", 15) == 0) {
		snapshot_site(msg, keep, arg, out);
	}
	json_decref(msg);
	drain_parts(sock, more);
	free(topic);
	free(body);
	return r;
}

int client_snapshot(struct client *c, const char *endpoint, client_keep_fn *keep, void *arg,
		    struct client_snapshot *out)
{
	static const char request[] = "snapshot";
	int r = 0;
	void *sock;

	memset(out, 0, sizeof(*out));
	out->sites = json_array();
	if (!out->sites)
		return -ENOMEM;
	sock = socket_connect(c, ZMQ_DEALER, endpoint, true, &r);
	if (!sock)
		goto fail;
	if (zmq_send(sock, request, strlen(request), 0) < 0)
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
	for (unsigned i = 0; r == 0 && i < SNAPSHOT_MAX_MESSAGES; i++)
		r = snapshot_apply(sock, keep, arg, out);
	zmq_close(sock);
	if (r == 1)
		return 0;
	if (r == 0)
		r = -EPROTO;			/* no end after that many messages */
fail:
	client_snapshot_free(out);
	return r;
}

void client_snapshot_free(struct client_snapshot *snap)
{
	json_decref(snap->pop);
	json_decref(snap->sites);
	memset(snap, 0, sizeof(*snap));
}

struct client_feed {
	void *sock;
};

/*
 * A SUB socket connects in the background and never reports failure, so
 * watch its monitor for the connection to tell "statsd is not running"
 * from "nothing happened yet".
 */
static int wait_connected(struct client *c, void *sock, const char *endpoint)
{
	int r = -EHOSTDOWN, timeout = (int)c->timeout_ms, more;
	char addr[64], *frame;
	size_t len;
	void *mon;

	snprintf(addr, sizeof(addr), "inproc://grepopctl-monitor-%p", sock);
	if (zmq_socket_monitor(sock, addr, ZMQ_EVENT_CONNECTED) < 0)
		return -errno;
	mon = zmq_socket(c->ctx, ZMQ_PAIR);
	if (!mon || zmq_connect(mon, addr) < 0)
		goto stop;
	zmq_setsockopt(mon, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	if (zmq_connect(sock, endpoint) < 0) {
		r = -errno;
		goto stop;
	}
	/* Event frame: 16-bit event, 32-bit value; then the address frame. */
	if (recv_frame(mon, &frame, &len, &more) == 0) {
		r = len >= 2 ? 0 : -EPROTO;
		free(frame);
		drain_parts(mon, more);
	}
stop:
	zmq_socket_monitor(sock, NULL, 0);
	if (mon)
		zmq_close(mon);
	return r;
}

int client_feed_open(struct client *c, const char *endpoint, const char *prefix,
		     struct client_feed **out)
{
	struct client_feed *f = calloc(1, sizeof(*f));
	int linger = 0, r;

	if (!f)
		return -ENOMEM;
	f->sock = zmq_socket(c->ctx, ZMQ_SUB);
	if (!f->sock) {
		free(f);
		return -errno;
	}
	zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(f->sock, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
	r = wait_connected(c, f->sock, endpoint);
	if (r < 0) {
		client_feed_close(f);
		return r;
	}
	*out = f;
	return 0;
}

int client_feed_recv(struct client_feed *f, int timeout_ms, char *topic, size_t topic_len,
		     json_t **msg)
{
	zmq_pollitem_t item = { .socket = f->sock, .events = ZMQ_POLLIN };
	char *t, *body = NULL;
	size_t tlen, blen;
	int n, more, r;

	*msg = NULL;
	n = zmq_poll(&item, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EAGAIN;
	r = recv_frame(f->sock, &t, &tlen, &more);
	if (r < 0)
		return r;
	r = more ? recv_frame(f->sock, &body, &blen, &more) : -EPROTO;
	if (r == 0) {
		*msg = parse_object(body, blen);
		r = *msg ? 0 : -EPROTO;
	}
	snprintf(topic, topic_len, "%s", t);
	drain_parts(f->sock, more);
	free(t);
	free(body);
	return r;
}

void client_feed_close(struct client_feed *f)
{
	if (!f)
		return;
	zmq_close(f->sock);
	free(f);
}
