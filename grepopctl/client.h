/*
 * grepopctl's side of the daemons' sockets (docs/architecture.md):
 *
 *   - gatewayd's control socket: REQ, one JSON request, one JSON reply;
 *   - statsd's snapshot endpoint: DEALER, one frame "snapshot", then
 *     [topic, json] messages up to "grepop.v1.snapshot.end";
 *   - statsd's feed: SUB, [topic, json] messages.
 *
 * Every wait is bounded by the client's timeout, so a dead or wedged daemon
 * makes a call fail with -ETIMEDOUT (or -EHOSTDOWN for the feed) instead of
 * hanging the tool. Nothing here prints.
 */
#ifndef GREPOPCTL_CLIENT_H
#define GREPOPCTL_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct client {
	void *ctx;			/* ZeroMQ context */
	unsigned timeout_ms;		/* for every wait on a reply */
};

/* 0 or -errno. */
int client_open(struct client *c, unsigned timeout_ms);
void client_close(struct client *c);

/*
 * Send REQUEST (not consumed) to the REP socket at ENDPOINT and wait for the
 * reply. Returns 0 with *REPLY (new reference: an object with "ok"),
 * -ETIMEDOUT when nothing came back in time, -EPROTO when the reply is not
 * such an object.
 */
int client_request(struct client *c, const char *endpoint, const json_t *request,
		   json_t **reply);

/*
 * What to keep of each site message: a new reference to store (the message
 * itself or a smaller copy), or NULL to drop it. A POP of 100000 sites
 * would otherwise hold every message whole.
 */
typedef json_t *client_keep_fn(json_t *site, void *arg);

struct client_snapshot {
	json_t *pop;			/* the POP message, or NULL if none came */
	json_t *sites;			/* array of kept site messages, in arrival order */
	uint64_t seq;			/* from grepop.v1.snapshot.end */
	uint64_t received;		/* site messages received, kept or not */
};

/*
 * Ask the snapshot endpoint for the whole state; KEEP (NULL keeps all)
 * chooses what is stored. Returns 0 with OUT filled (free with
 * client_snapshot_free), -ETIMEDOUT when a message took longer than the
 * timeout, -EPROTO for a message that breaks the protocol or a snapshot
 * whose end counts more or fewer sites than arrived.
 */
int client_snapshot(struct client *c, const char *endpoint, client_keep_fn *keep, void *arg,
		    struct client_snapshot *out);
void client_snapshot_free(struct client_snapshot *snap);

struct client_feed;

/*
 * Subscribe to the feed at ENDPOINT for topics starting with PREFIX and
 * wait until the connection is made. Returns 0, or -EHOSTDOWN when it was
 * not made within the timeout.
 */
int client_feed_open(struct client *c, const char *endpoint, const char *prefix,
		     struct client_feed **out);

/*
 * Wait up to TIMEOUT_MS (-1: no limit) for the next message. Returns 0 with
 * TOPIC and *MSG (new reference), -EAGAIN when none came, -EINTR when a
 * signal arrived, -EPROTO for a malformed message (skipped).
 */
int client_feed_recv(struct client_feed *f, int timeout_ms, char *topic, size_t topic_len,
		     json_t **msg);

void client_feed_close(struct client_feed *f);

#endif
