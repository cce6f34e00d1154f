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
 * feed->refresh_scans scans. refresh_scans is 1 (every site, every scan) up
 * to FEED_SITES_PER_SCAN sites and grows with the number of sites above it,
 * so the feed's cost per scan stays bounded. Changed sites are limited to
 * FEED_SITES_PER_SCAN per scan too; the rest go out in the next scans. The
 * counters in a message are cumulative, so a subscriber loses no traffic by
 * seeing a site less often.
 *
 * Why: jansson takes about 30 us to build and encode one site message, so
 * 100,000 messages per second would need three cores (statsd_bench -a).
 * 5000 per scan costs about a quarter of one core at 100,000 sites.
 *
 * Snapshots are served in chunks of FEED_SNAPSHOT_CHUNK sites between
 * other work, so a snapshot of 100,000 sites delays neither the scan nor
 * events. The end marker carries the feed's seq N when the request
 * arrived; each site's message carries the seq current when it was built
 * (>= N), so a client may skip feed messages of that site up to it.
 *
 * All functions run on statsd's main thread; feed_seq() may be read from any.
 */
#ifndef STATSD_FEED_H
#define STATSD_FEED_H

#include <jansson.h>
#include <stdint.h>

#include "lib/conf.h"
#include "statsd/collect.h"

#define FEED_SITES_PER_SCAN	5000	/* steady-state site messages per scan */
#define FEED_TOPIC_PREFIX	"grepop.v1."
#define FEED_PUB_HWM		(4 * FEED_SITES_PER_SCAN)	/* queued per subscriber */
#define FEED_SNAPSHOT_JOBS	16	/* snapshots in progress; more are refused */
#define FEED_SNAPSHOT_CHUNK	2000	/* sites per job per loop turn */
#define FEED_IDENTITY_MAX	255	/* ZeroMQ routing ids are at most 255 bytes */

/* One snapshot being sent. */
struct feed_snapshot {
	bool active;
	bool delimiter;			/* the request had an empty frame (REQ) */
	uint8_t id_len;
	char id[FEED_IDENTITY_MAX];
	uint64_t seq;			/* feed seq when the request arrived */
	uint32_t next;			/* next slot to send */
};

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
	uint64_t snapshots_refused;	/* FEED_SNAPSHOT_JOBS were busy */
	struct feed_snapshot snapshot[FEED_SNAPSHOT_JOBS];
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
 * Wait up to TIMEOUT_MS (not at all while a snapshot is in progress) for
 * events and snapshot requests, serve them, then send one chunk of every
 * snapshot in progress. Returns 0, or -EINTR when a signal interrupted
 * the wait.
 */
int feed_poll(struct feed *f, long timeout_ms);

/* Send [TOPIC, OBJ] on the feed with the next sequence number. OBJ is kept. */
int feed_publish(struct feed *f, const char *topic, json_t *obj);

/*
 * Start a snapshot for the client IDENTITY (ID_LEN bytes): sends the POP
 * message now; feed_snapshot_step() sends the sites and the end marker.
 * Returns 0, or -EBUSY when FEED_SNAPSHOT_JOBS are in progress. Takes the
 * collect lock.
 */
int feed_snapshot_start(struct feed *f, const void *identity, size_t id_len, bool delimiter);

/* Send one chunk of every snapshot in progress; true while some remain. */
bool feed_snapshot_step(struct feed *f);

#endif
