/*
 * Events from gatewayd and healthd to statsd, over a ZeroMQ PUSH socket at
 * ipc://<runtime_dir>/events.sock (docs/architecture.md lists the types).
 *
 * Sending never blocks: an event that cannot be queued at once (statsd down
 * and the queue full) is dropped and counted. The state an event describes
 * also lives in shared memory, so a dropped event loses nothing for good.
 * Not for the per-packet path: call from a control or main thread only.
 */
#ifndef GREPOP_EVENTS_H
#define GREPOP_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "lib/conf.h"

struct events;

/* Connect to statsd's event socket. NULL with errno on failure. */
struct events *events_open(const struct conf *conf);

/*
 * Send one event of TYPE; FIELDS (may be NULL) is an object whose members
 * are added, and is released by this call. "type" and "time_ns" are set
 * here. Returns 0, or -EAGAIN when the event was dropped.
 */
int events_send(struct events *ev, const char *type, json_t *fields);

/* Events dropped since open because the queue was full. */
uint64_t events_dropped(const struct events *ev);

void events_close(struct events *ev);

#endif
