/*
 * statsd's ZeroMQ side: the stats feed (PUB), the snapshot endpoint
 * (ROUTER) and the events socket (PULL) that gatewayd and healthd push to.
 * Formats and topics are in docs/architecture.md.
 *
 * Nothing here ever waits for a peer: the PUB socket drops for subscribers
 * above its high-water mark, the ROUTER drops replies to a client that is
 * gone or not reading, and every send is ZMQ_DONTWAIT.
 *
 * Which sites a scan publishes: every site whose identity or state changed,
 * plus a share of the others so that each site is sent at least every
 * feed->refresh_scans scans. refresh_scans is 1 (every site, every scan) up to
 * FEED_SITES_PER_SCAN sites and grows with the number of sites above it, so
 * the feed's cost per scan stays bounded. The counters in a message are
 * cumulative, so a subscriber loses no traffic by seeing a site less often.
 *
 * All functions run on statsd's main thread; feed_seq() may be read from any.
 */
#ifndef STATSD_FEED_H
#define STATSD_FEED_H

#include <jansson.h>
#include <stdint.h>

#include "lib/conf.h"
#include "statsd/collect.h"

#define FEED_SITES_PER_SCAN	10000	/* steady-state site messages per scan */
#define FEED_TOPIC_PREFIX	"grepop.v1."
#define FEED_PUB_HWM		100000	/* messages queued per subscriber */

struct feed {
	void *ctx;
	void *pub;
	void *router;
	void *pull;
	struct collect *collect;
	uint64_t seq;			/* of the last message; __atomic for readers */
	unsigned refresh_scans;		/* every site at least this often */
	unsigned sites_per_scan;	/* FEED_SITES_PER_SCAN; a benchmark may raise it */
	uint64_t events_in, events_bad;
	uint64_t site_messages;		/* site messages of the last publish */
	char *buf;			/* JSON text of the message being sent */
	size_t buf_size;
};

/*
 * Bind the feed, snapshot and events endpoints of CONF (a stale events
 * socket file is removed first). Returns 0 or a negative errno, with the
 * endpoint that failed in WHAT.
 */
int feed_open(struct feed *f, const struct conf *conf, struct collect *c, const char **what);
void feed_close(struct feed *f);

/* The sequence number of the last published message. Any thread. */
uint64_t feed_seq(const struct feed *f);

/*
 * Publish the POP message and the sites due after a scan (see above).
 * Takes the collect lock.
 */
void feed_publish_scan(struct feed *f);

/*
 * A collect_event_fn: publish a derived event of site S. Called by
 * collect_scan with the collect lock held; ARG is the struct feed.
 */
void feed_site_event(void *arg, const char *type, const struct collect_site *s,
		     uint64_t time_ns);

/*
 * Wait up to TIMEOUT_MS for events and snapshot requests and serve them.
 * Returns 0, or -EINTR when a signal interrupted the wait.
 */
int feed_poll(struct feed *f, long timeout_ms);

/* Send [TOPIC, OBJ] on the feed with the next sequence number. OBJ is kept. */
int feed_publish(struct feed *f, const char *topic, json_t *obj);

/*
 * Serve one snapshot to the client IDENTITY (ID_LEN bytes): the POP
 * message, every site, the end marker. Takes the collect lock.
 */
void feed_send_snapshot(struct feed *f, const void *identity, size_t id_len, bool delimiter);

#endif
