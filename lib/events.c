#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "lib/events.h"
#include "lib/timeutil.h"

struct events {
	void *ctx;
	void *sock;
	uint64_t dropped;
};

struct events *events_open(const struct conf *conf)
{
	struct events *ev = calloc(1, sizeof(*ev));
	char endpoint[PATH_MAX + 16];
	int hwm = 1000, linger = 0;

	if (!ev)
		return NULL;
	ev->ctx = zmq_ctx_new();
	if (!ev->ctx)
		goto free_ev;
	ev->sock = zmq_socket(ev->ctx, ZMQ_PUSH);
	if (!ev->sock)
		goto term_ctx;
	zmq_setsockopt(ev->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(ev->sock, ZMQ_LINGER, &linger, sizeof(linger));
	conf_events_endpoint(conf, endpoint, sizeof(endpoint));
	/* connect succeeds before statsd binds; messages queue up to the HWM. */
	if (zmq_connect(ev->sock, endpoint) < 0)
		goto close_sock;
	return ev;

close_sock:
	zmq_close(ev->sock);
term_ctx:
	zmq_ctx_term(ev->ctx);
free_ev:
	free(ev);
	return NULL;
}

int events_send(struct events *ev, const char *type, json_t *fields)
{
	json_t *obj = fields ? fields : json_object();
	char *text;
	int r = 0;

	json_object_set_new(obj, "type", json_string(type));
	json_object_set_new(obj, "time_ns", json_integer((json_int_t)now_realtime_ns()));
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (!text)
		return -ENOMEM;
	if (zmq_send(ev->sock, text, strlen(text), ZMQ_DONTWAIT) < 0) {
		ev->dropped++;
		r = -EAGAIN;
	}
	free(text);
	return r;
}

uint64_t events_dropped(const struct events *ev)
{
	return ev->dropped;
}

void events_close(struct events *ev)
{
	if (!ev)
		return;
	zmq_close(ev->sock);
	zmq_ctx_term(ev->ctx);
	free(ev);
}
