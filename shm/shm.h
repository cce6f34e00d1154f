/*
 * The shared-memory state of a grepop POP.
 *
 * One file under the runtime directory (default /run/grepop/state) is mapped
 * by every process. It is created once, by whichever process starts first,
 * and attached again by every later start, so that no restart of one process
 * resets or loses a counter. Layout:
 *
 *   struct shm_header     magic, layout version, sizes, capacities
 *   struct shm_pop        POP-wide state and per-lane POP counters
 *   struct shm_site[cap]  one slot per site: identity + per-lane counters
 *
 * Who writes what:
 *
 *   - gatewayd's control thread writes the site identities (shm_site.id),
 *     the acceptance mode and the site generation. Identity changes are
 *     guarded by a per-slot sequence counter (odd while being written), so
 *     a reader copies the identity and retries when the counter moved.
 *   - gatewayd's data-plane worker N writes lane N of every counter block
 *     and nothing else. Each lane is a whole number of cache lines, so no two
 *     writers ever share a line and no lock or atomic read-modify-write is
 *     needed: a worker increments with a relaxed load and a relaxed store,
 *     which is an ordinary mov on x86_64. Readers sum the lanes with relaxed
 *     64-bit loads; every counter is monotonic, so a sum is always a value
 *     the counter really passed through.
 *   - healthd writes the per-service health and its heartbeat.
 *   - statsd writes nothing here but its own heartbeat.
 *
 * Slot reuse: before gatewayd gives a freed slot to a new site it waits for
 * an RCU grace period (no worker still holds the old site) and then zeroes
 * the counters, and only then publishes the identity with a new generation.
 * A reader that sees the slot generation change knows the counters restarted
 * from zero for another site.
 *
 * Compatibility: a reader attaching to a segment whose magic or layout
 * version differs gets -EPROTO and a message naming both versions; the way
 * forward is to stop the service set, remove the file and start again (the
 * counters of the old layout are lost, the sites file is not).
 */
#ifndef GREPOP_SHM_H
#define GREPOP_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define SHM_MAGIC		0x31504f5045524700ULL	/* "\0GREPOP1" little-endian */
#define SHM_LAYOUT_VERSION	1
#define SHM_FILE_NAME		"state"
#define SHM_CACHELINE		64

#define SHM_MAX_LANES		8	/* data-plane workers that can count */
#define SHM_DEFAULT_SITES	100000
#define SHM_NAME_MAX		64	/* site, tenant and POP names, with NUL */
#define SHM_MAX_HTTP_PORTS	8

enum shm_service {
	SHM_SVC_SWG,
	SHM_SVC_CFW,
	SHM_SVC_COUNT
};

/* Bits of shm_site_id.services. */
#define SHM_SVC_BIT(s)		(1u << (s))

enum shm_health {
	SHM_HEALTH_UNKNOWN,	/* never probed, or healthd's heartbeat stopped */
	SHM_HEALTH_UP,
	SHM_HEALTH_DOWN
};

enum shm_accept {
	SHM_ACCEPT_ACCEPT,	/* normal */
	SHM_ACCEPT_NO_NEW,	/* serve established tunnels, refuse new ones */
	SHM_ACCEPT_DRAIN	/* also withhold keepalives so routers move away */
};

enum shm_traffic_type {
	SHM_TRAFFIC_USER,
	SHM_TRAFFIC_IOT,
	SHM_TRAFFIC_MIXED,
	SHM_TRAFFIC_MACHINE,
	SHM_TRAFFIC_GUEST_WIFI,
	SHM_TRAFFIC_COUNT
};

/*
 * Why a packet was dropped. Every packet gatewayd reads ends in exactly one
 * place: delivered, keepalive, probe, or one of these. Reasons that happen
 * before a site is known count in the POP lanes; the rest in the site's.
 */
enum shm_drop {
	/* Reasons counted per site (the site is known when they happen). */
	SHM_DROP_DISABLED,		/* the site is disabled */
	SHM_DROP_BAD_KEY,		/* key missing, unexpected or wrong */
	SHM_DROP_BAD_HEADER,		/* truncated, version, routing/reserved bits */
	SHM_DROP_BAD_CHECKSUM,		/* GRE checksum present and wrong */
	SHM_DROP_BAD_INNER,		/* inner packet fails validation */
	SHM_DROP_UNSUPPORTED_PROTO,	/* GRE protocol type we do not carry */
	SHM_DROP_TOO_BIG,		/* above tunnel_mtu (DF answered, else silent) */
	SHM_DROP_POLICY,		/* not allowed by the site's services */
	SHM_DROP_RATE,			/* above the site's rate */
	SHM_DROP_AUTH_FAILURE,		/* new tunnel refused: GRE AUTH FAILURE */
	SHM_DROP_REFLECT,		/* keepalive not addressed to its sender */
	SHM_DROP_NOT_SERVING,		/* keepalive/probe withheld (health, drain) */
	SHM_DROP_LOOP,			/* inner packet addressed to the POP itself */
	SHM_DROP_IO,			/* the kernel refused a write */
	SHM_DROP_SITE_COUNT,
	/* Reasons counted per POP only (no site to charge). */
	SHM_DROP_UNKNOWN_SOURCE = SHM_DROP_SITE_COUNT,	/* no site has this source */
	SHM_DROP_NO_ROUTE_BACK,		/* return packet with no known site */
	SHM_DROP_LOCAL,			/* the POP's own link-local/multicast from a TUN */
	SHM_DROP_COUNT
};

/*
 * One worker's counters for one site: exactly 3 cache lines, one writer.
 * With the default two workers a whole site slot is 512 bytes.
 */
struct shm_site_lane {
	uint64_t rx_packets;		/* router -> POP, delivered to TUN */
	uint64_t rx_bytes;		/* inner bytes of those */
	uint64_t tx_packets;		/* POP -> router, encapsulated replies */
	uint64_t tx_bytes;
	uint64_t keepalives;		/* keepalives reflected, or their answers received */
	uint64_t probes;		/* ICMP probes answered */
	uint64_t drops[SHM_DROP_SITE_COUNT];
	uint64_t last_keepalive_ns;	/* CLOCK_REALTIME of the last keepalive seen */
	uint64_t last_user_ns;		/* of the last user packet delivered */
	uint64_t last_seen_ns;		/* of the last packet accepted into the tunnel */
	uint64_t established_ns;	/* when this lane last established the tunnel */
} __attribute__((aligned(SHM_CACHELINE)));

/* What a site is. Written by gatewayd's control thread only. */
struct shm_site_id {
	char name[SHM_NAME_MAX];
	struct in_addr source_ip;
	uint32_t key;
	uint64_t rate_bps;		/* per-tunnel rate, 0 = unlimited */
	uint16_t http_ports[SHM_MAX_HTTP_PORTS];
	uint8_t n_http_ports;
	uint8_t has_key;
	uint8_t enabled;
	uint8_t keepalive;		/* keepalives expected from this site */
	uint8_t traffic_type;		/* enum shm_traffic_type */
	uint8_t services;		/* SHM_SVC_BIT() set */
	uint8_t tenant;			/* index into the configuration's tenants */
	uint8_t pad;
};

struct shm_site {
	uint32_t seq;			/* odd while id is being written */
	uint32_t in_use;
	uint64_t generation;		/* bumped each time the slot changes owner */
	struct shm_site_id id;
	struct shm_site_lane lane[];	/* shm_header.lanes of them */
} __attribute__((aligned(SHM_CACHELINE)));

/* POP-wide counters of one worker, for packets that match no site. */
struct shm_pop_lane {
	uint64_t rx_packets;		/* every GRE packet read */
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t drops[SHM_DROP_COUNT];
	uint64_t unsupported_proto[4];	/* by kind, see SHM_PROTO_* */
	uint64_t heartbeat_ns;		/* the worker's last loop, for the watchdog */
	/*
	 * GRE the kernel dropped because the worker's receive queue (socket
	 * buffer or ring) was full: read from the kernel about once a second.
	 * In the last line's spare room, so no offset moved.
	 */
	uint64_t rx_queue_drops;
} __attribute__((aligned(SHM_CACHELINE)));

enum {
	SHM_PROTO_TEB,			/* 0x6558 transparent Ethernet bridging */
	SHM_PROTO_ERSPAN,		/* 0x88be, 0x22eb */
	SHM_PROTO_WCCP,			/* 0x883e */
	SHM_PROTO_OTHER
};

struct shm_service_state {
	uint32_t health;		/* enum shm_health, written by healthd */
	uint32_t pad;
	uint64_t since_ns;		/* when it entered this state */
	uint64_t checks_ok;		/* probes that succeeded, cumulative */
	uint64_t checks_failed;
};

struct shm_pop {
	uint32_t accept_mode;		/* enum shm_accept, written by gatewayd */
	uint32_t gatewayd_pid;
	uint64_t site_generation;	/* bumped by gatewayd on any site change */
	uint64_t healthd_heartbeat_ns;	/* CLOCK_REALTIME, written by healthd */
	uint64_t statsd_heartbeat_ns;
	uint64_t gatewayd_started_ns;
	struct shm_service_state service[SHM_SVC_COUNT];
	struct shm_pop_lane lane[SHM_MAX_LANES];
};

struct shm_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t lanes;			/* counter lanes per site, fixed at creation */
	uint64_t size;			/* bytes of the whole segment */
	uint32_t site_capacity;
	uint32_t site_stride;		/* bytes between two struct shm_site */
	uint64_t created_ns;
	uint64_t sites_offset;		/* from the start of the segment */
	struct shm_pop pop;
} __attribute__((aligned(SHM_CACHELINE)));

/* A mapping of the segment, owned by the process that attached it. */
struct shm {
	struct shm_header *hdr;
	size_t size;
	int fd;
	bool created;			/* this process made the file */
};

/*
 * Open PATH, creating it with CAPACITY site slots and LANES counter lanes
 * if it does not exist (formatted under a temporary name, then linked into
 * place: no process ever maps a half-made segment, and of two that start
 * at once one creates it and the other attaches). An existing segment is
 * attached as it is, whatever CAPACITY and LANES say. Returns 0 or a
 * negative errno: -EPROTO for another layout (see shm_describe_error),
 * -EINVAL for a damaged file.
 */
int shm_open_or_create(struct shm *shm, const char *path, uint32_t capacity, uint32_t lanes);

/* Attach an existing segment, read-write or read-only. Same errors. */
int shm_attach(struct shm *shm, const char *path, bool writable);

void shm_detach(struct shm *shm);

/* Why the last failed open/attach on PATH failed, for a log line. */
const char *shm_describe_error(int err);

/* The slot at INDEX (< site_capacity). Never NULL for a valid index. */
static inline struct shm_site *shm_site_at(const struct shm *shm, uint32_t index)
{
	/*
	 * Byte arithmetic, then back to a slot through void *: the mapping is
	 * page aligned, and sites_offset and site_stride are whole cache lines
	 * (shm_attach refuses a segment whose values differ from the layout's),
	 * so the result has the slot's alignment.
	 */
	void *slot = (char *)shm->hdr + shm->hdr->sites_offset +
		     (size_t)index * shm->hdr->site_stride;

	return slot;
}

/* Bytes of one site slot for LANES lanes, and of a whole segment. */
size_t shm_site_stride(uint32_t lanes);
size_t shm_segment_size(uint32_t capacity, uint32_t lanes);

/*
 * Counter updates for the lane's single writer: a relaxed load and store,
 * no lock prefix. Only the worker that owns the lane may call these.
 */
static inline void shm_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void shm_set(uint64_t *field, uint64_t value)
{
	__atomic_store_n(field, value, __ATOMIC_RELAXED);
}

static inline uint64_t shm_load(const uint64_t *field)
{
	return __atomic_load_n(field, __ATOMIC_RELAXED);
}

/*
 * Identity updates, for gatewayd's control thread only. Between begin and
 * end, shm_site_set_id writes the identity, in_use and generation; readers
 * retry meanwhile. (Code that runs while no reader can, such as a
 * single-threaded test, may write the fields directly instead.)
 */
void shm_site_write_begin(struct shm_site *site);
void shm_site_set_id(struct shm_site *site, const struct shm_site_id *id, bool in_use,
		     uint64_t generation);
void shm_site_write_end(struct shm_site *site);

/*
 * Copy a consistent identity out of SITE. Returns false if the slot is
 * free. Any process may call it at any time.
 */
bool shm_site_read_id(const struct shm_site *site, struct shm_site_id *out,
		      uint64_t *generation);

/* The sum of every lane of one site, and the latest of its times. */
struct shm_site_totals {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t keepalives, probes;
	uint64_t drops[SHM_DROP_SITE_COUNT];
	uint64_t last_keepalive_ns, last_user_ns, last_seen_ns, established_ns;
};

void shm_site_sum(const struct shm *shm, const struct shm_site *site,
		  struct shm_site_totals *out);

struct shm_pop_totals {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t drops[SHM_DROP_COUNT];
	uint64_t unsupported_proto[4];
	uint64_t rx_queue_drops;
};

void shm_pop_sum(const struct shm *shm, struct shm_pop_totals *out);

/* Names used in logs, metrics, JSON and the CLI; never NULL. */
const char *shm_drop_name(enum shm_drop reason);
const char *shm_service_name(enum shm_service svc);
const char *shm_health_name(enum shm_health health);
const char *shm_accept_name(enum shm_accept mode);
const char *shm_traffic_type_name(enum shm_traffic_type type);

/* Parse those names back; -1 when unknown. */
int shm_accept_parse(const char *name);
int shm_traffic_type_parse(const char *name);
int shm_service_parse(const char *name);

#endif
