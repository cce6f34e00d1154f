/*
 * statsd's view of the shared memory: one scan per stats interval copies
 * every slot's identity and summed counters into statsd's own memory, and
 * computes what the feed, the snapshot and HTTP show.
 *
 * Per slot, statsd keeps the previous totals keyed by slot and generation.
 * A generation change is another site in the slot: its rates restart from
 * a new baseline. A counter lower than its previous value (the shared
 * memory was recreated) is a reset too: never a negative or huge rate.
 *
 * Clocks: rates divide by the CLOCK_MONOTONIC time between two scans, so a
 * wall-clock step cannot distort them; ages ("seen 5 s ago") compare
 * CLOCK_REALTIME stamps from shared memory with the scan's CLOCK_REALTIME,
 * and a stamp in the future counts as age 0.
 *
 * The scan runs on statsd's main thread; the HTTP thread reads the same
 * memory. Both hold collect_lock() while they touch struct collect.
 */
#ifndef STATSD_COLLECT_H
#define STATSD_COLLECT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/conf.h"
#include "shm/shm.h"

#define COLLECT_AVG_WINDOW_S	300	/* the "5m" averages */
#define COLLECT_HEALTHD_STALE	3	/* healthd intervals without a heartbeat */
#define COLLECT_MAX_EVENTS	3	/* derived events per site per scan */

enum collect_status {
	COLLECT_DOWN,
	COLLECT_UP,
	COLLECT_DISABLED
};

enum collect_keepalive {
	COLLECT_KA_NOT_SEEN,
	COLLECT_KA_SEEN,
	COLLECT_KA_OFF
};

enum collect_tunnel {
	COLLECT_TUNNEL_IDLE,
	COLLECT_TUNNEL_ESTABLISHED
};

/* The three states a site's events are derived from. */
struct collect_state {
	uint8_t status;			/* enum collect_status */
	uint8_t keepalive;		/* enum collect_keepalive */
	uint8_t tunnel;			/* enum collect_tunnel */
};

/* A byte counter's rate: the last interval and a 5-minute average. */
struct collect_rate {
	uint64_t last;			/* counter value at the previous sample */
	double kbps;
	double kbps_avg;
};

/* statsd's memory of one slot. */
struct collect_site {
	bool in_use;
	bool changed;			/* identity or state moved since the last publish */
	uint64_t generation;
	struct shm_site_id id;
	struct shm_site_totals totals;
	struct collect_rate rx, tx;
	struct collect_state state;
};

/* Limits the states are computed with, from the configuration. */
struct collect_limits {
	unsigned keepalive_window_s;
	unsigned tunnel_idle_s;
};

struct collect_pop {
	unsigned total, up, down, disabled;
	struct shm_pop_totals totals;	/* drops: POP reasons + every site's */
	struct {
		unsigned sites;
		uint64_t rx_bytes, tx_bytes;
	} usage[SHM_TRAFFIC_COUNT];
	uint32_t accept_mode;
	uint64_t healthd_heartbeat_ns;
	struct shm_service_state service[SHM_SVC_COUNT];
};

struct collect {
	pthread_mutex_t lock;
	const struct shm *shm;
	const struct conf *conf;	/* owned by main; swapped under the lock */
	uint32_t n_slots;
	struct collect_site *site;	/* n_slots of them */
	struct collect_pop pop;
	uint64_t scans;			/* completed scans */
	uint64_t scan_mono_ns;		/* CLOCK_MONOTONIC of the last scan */
	uint64_t scan_real_ns;		/* CLOCK_REALTIME of the last scan */
};

/* Called once per derived event, during collect_scan, with the lock held. */
typedef void (*collect_event_fn)(void *arg, const char *type, const struct collect_site *site,
				 uint64_t time_ns);

/* --- Pure functions (no shared memory, no clock): unit-tested. --- */

/* NOW - THEN in ns; 0 when THEN is later than NOW (a clock step). */
uint64_t collect_age_ns(uint64_t now_ns, uint64_t then_ns);

/* Start R over at counter value VALUE: rates and average back to 0. */
void collect_rate_reset(struct collect_rate *r, uint64_t value);

/*
 * Account counter VALUE sampled DT_NS (monotonic) after the previous one.
 * A counter that went backwards restarts R at VALUE with rate 0. With
 * DT_NS 0 nothing changes (the next sample covers both).
 */
void collect_rate_update(struct collect_rate *r, uint64_t value, uint64_t dt_ns);

/* keepalive_status, tunnel and status as docs/architecture.md defines them. */
enum collect_keepalive collect_keepalive_state(bool keepalive, uint64_t last_keepalive_ns,
					       uint64_t now_ns, unsigned window_s);
enum collect_tunnel collect_tunnel_state(uint64_t last_seen_ns, uint64_t now_ns,
					 unsigned idle_s);
enum collect_status collect_site_status(bool enabled, bool keepalive,
					enum collect_keepalive ka, enum collect_tunnel tunnel);

/* The state of a site from its identity and totals at NOW_NS. */
struct collect_state collect_state_of(const struct shm_site_id *id,
				      const struct shm_site_totals *t, uint64_t now_ns,
				      const struct collect_limits *lim);

/*
 * Event types for the move from BEFORE to AFTER into TYPES (at most
 * COLLECT_MAX_EVENTS, static strings); returns how many.
 */
unsigned collect_derive_events(struct collect_state before, struct collect_state after,
			       const char *types[COLLECT_MAX_EVENTS]);

/*
 * Feed one sample of a slot into S. IN_USE false frees S. A new site
 * (first sample, another generation) sets a baseline and derives nothing;
 * otherwise rates advance by DT_NS and TYPES receives the events. Returns
 * the number of events.
 */
unsigned collect_site_update(struct collect_site *s, bool in_use, const struct shm_site_id *id,
			     uint64_t generation, const struct shm_site_totals *t,
			     uint64_t dt_ns, uint64_t now_ns, const struct collect_limits *lim,
			     const char *types[COLLECT_MAX_EVENTS]);

/* Names for JSON and metrics; never NULL. */
const char *collect_status_name(enum collect_status s);
const char *collect_keepalive_name(enum collect_keepalive k);
const char *collect_tunnel_name(enum collect_tunnel t);
int collect_status_parse(const char *name);	/* -1 if unknown */

/* --- The collector. --- */

/*
 * Size C for every slot of SHM and remember CONF (not copied: the caller
 * keeps it alive and swaps it with collect_set_conf). 0 or -ENOMEM.
 */
int collect_init(struct collect *c, const struct shm *shm, const struct conf *conf);
void collect_free(struct collect *c);

/* Take the lock, swap the configuration, release. */
void collect_set_conf(struct collect *c, const struct conf *conf);

void collect_lock(struct collect *c);
void collect_unlock(struct collect *c);

/*
 * Scan every slot and the POP state at MONO_NS/REAL_NS, calling EVENT for
 * each derived event. The first scan only sets baselines. Takes the lock.
 */
void collect_scan(struct collect *c, uint64_t mono_ns, uint64_t real_ns, collect_event_fn event,
		  void *arg);

/*
 * The feed's JSON for a site slot and for the POP, with the common fields
 * (pop, seq, time, time_ns of the last scan). Caller holds the lock and owns
 * the result. collect_site_json returns NULL for a free slot.
 */
json_t *collect_site_json(const struct collect *c, uint32_t slot, uint64_t seq);
json_t *collect_pop_json(const struct collect *c, uint64_t seq);

/* The common fields of every message, into OBJ (caller holds the lock). */
void collect_add_common(const struct collect *c, json_t *obj, uint64_t seq, uint64_t time_ns);

/* "alive" or "stale", from the last scan. */
bool collect_healthd_alive(const struct collect *c);

#endif
