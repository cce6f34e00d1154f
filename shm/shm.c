#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/shm.h"

static uint64_t shm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

size_t shm_site_stride(uint32_t lanes)
{
	return sizeof(struct shm_site) + (size_t)lanes * sizeof(struct shm_site_lane);
}

size_t shm_segment_size(uint32_t capacity, uint32_t lanes)
{
	return sizeof(struct shm_header) + (size_t)capacity * shm_site_stride(lanes);
}

/* Check a mapped header against what this build understands. */
static int shm_validate(const struct shm_header *hdr, size_t file_size)
{
	if (file_size < sizeof(*hdr))
		return -EINVAL;
	if (hdr->magic != SHM_MAGIC)
		return -EINVAL;
	if (hdr->layout_version != SHM_LAYOUT_VERSION)
		return -EPROTO;
	if (hdr->lanes == 0 || hdr->lanes > SHM_MAX_LANES)
		return -EINVAL;
	if (hdr->site_stride != shm_site_stride(hdr->lanes) ||
	    hdr->sites_offset != sizeof(struct shm_header) ||
	    hdr->size != shm_segment_size(hdr->site_capacity, hdr->lanes) ||
	    hdr->size > file_size)
		return -EINVAL;
	return 0;
}

static int shm_map(struct shm *shm, int fd, bool writable)
{
	struct stat st;
	void *p;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < sizeof(struct shm_header))
		return -EINVAL;
	p = mmap(NULL, st.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
		 fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	r = shm_validate(p, st.st_size);
	if (r < 0) {
		munmap(p, st.st_size);
		return r;
	}
	shm->hdr = p;
	shm->size = st.st_size;
	shm->fd = fd;
	return 0;
}

/* Fill a new, zeroed file: the header last, so a half-made file is invalid. */
static int shm_format(int fd, uint32_t capacity, uint32_t lanes)
{
	size_t size = shm_segment_size(capacity, lanes);
	struct shm_header *hdr;

	if (ftruncate(fd, size) < 0)
		return -errno;
	hdr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hdr == MAP_FAILED)
		return -errno;
	hdr->layout_version = SHM_LAYOUT_VERSION;
	hdr->lanes = lanes;
	hdr->size = size;
	hdr->site_capacity = capacity;
	hdr->site_stride = shm_site_stride(lanes);
	hdr->created_ns = shm_now_ns();
	hdr->sites_offset = sizeof(struct shm_header);
	hdr->pop.accept_mode = SHM_ACCEPT_ACCEPT;
	__atomic_store_n(&hdr->magic, SHM_MAGIC, __ATOMIC_RELEASE);
	msync(hdr, sizeof(*hdr), MS_SYNC);
	munmap(hdr, size);
	return 0;
}

/*
 * Make the segment under a temporary name and link it into place, so that
 * nobody ever sees a file that is not formatted yet. Returns 0, -EEXIST if
 * another process got there first (its segment is the one to use), or
 * another negative errno.
 */
static int shm_create(const char *path, uint32_t capacity, uint32_t lanes)
{
	char tmp[PATH_MAX];
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errno == EEXIST ? -EIO : -errno;
	r = fchmod(fd, 0644) < 0 ? -errno : shm_format(fd, capacity, lanes);
	if (r == 0 && link(tmp, path) < 0)
		r = -errno;
	unlink(tmp);
	close(fd);
	return r;
}

int shm_open_or_create(struct shm *shm, const char *path, uint32_t capacity, uint32_t lanes)
{
	bool created = false;
	int fd, r;

	memset(shm, 0, sizeof(*shm));
	shm->fd = -1;
	if (capacity == 0 || lanes == 0 || lanes > SHM_MAX_LANES)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		r = shm_create(path, capacity, lanes);
		if (r < 0 && r != -EEXIST)
			return r;
		created = r == 0;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	r = shm_map(shm, fd, true);
	if (r < 0) {
		close(fd);
		return r;
	}
	shm->created = created;
	return 0;
}

int shm_attach(struct shm *shm, const char *path, bool writable)
{
	int fd, r;

	memset(shm, 0, sizeof(*shm));
	shm->fd = -1;
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = shm_map(shm, fd, writable);
	if (r < 0)
		close(fd);
	return r;
}

void shm_detach(struct shm *shm)
{
	if (shm->hdr)
		munmap(shm->hdr, shm->size);
	if (shm->fd >= 0)
		close(shm->fd);
	shm->hdr = NULL;
	shm->fd = -1;
}

const char *shm_describe_error(int err)
{
	switch (err) {
	case -EPROTO:
		return "shared memory has another layout version (stop every grepop process, "
		       "remove the state file and start again; the sites file is kept)";
	case -EINVAL:
		return "shared memory file is damaged or not a grepop state file";
	default:
		return strerror(-err);
	}
}

/*
 * The identity seqlock. The sequence counter tells a reader to retry; the
 * identity itself moves in 8-byte words with atomic accesses, so that a
 * read overlapping a write is defined behaviour (C11 has no benign data
 * race) and ThreadSanitizer can check the protocol. Each word is stored
 * with release, which orders the odd counter before it, and loaded with
 * acquire, which orders the reader's second look at the counter after it:
 * a reader that saw any new word sees the counter moved. No fences are
 * needed, and on x86_64 every one of these is a plain mov.
 */
typedef uint64_t __attribute__((may_alias)) shm_word;

#define SHM_ID_WORDS	(sizeof(struct shm_site_id) / sizeof(shm_word))
_Static_assert(sizeof(struct shm_site_id) % sizeof(shm_word) == 0, "identity in whole words");
_Static_assert(offsetof(struct shm_site, id) % sizeof(shm_word) == 0, "identity word aligned");

void shm_site_write_begin(struct shm_site *site)
{
	__atomic_store_n(&site->seq, site->seq + 1, __ATOMIC_RELAXED);
}

void shm_site_set_id(struct shm_site *site, const struct shm_site_id *id, bool in_use,
		     uint64_t generation)
{
	shm_word *dst = (shm_word *)(void *)&site->id;
	shm_word src[SHM_ID_WORDS];

	memcpy(src, id, sizeof(src));
	for (size_t i = 0; i < SHM_ID_WORDS; i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELEASE);
	__atomic_store_n(&site->in_use, in_use, __ATOMIC_RELEASE);
	__atomic_store_n(&site->generation, generation, __ATOMIC_RELEASE);
}

void shm_site_write_end(struct shm_site *site)
{
	__atomic_store_n(&site->seq, site->seq + 1, __ATOMIC_RELEASE);
}

bool shm_site_read_id(const struct shm_site *site, struct shm_site_id *out, uint64_t *generation)
{
	const shm_word *src = (const shm_word *)(const void *)&site->id;
	shm_word words[SHM_ID_WORDS];
	uint32_t before, after;
	uint64_t gen;
	bool in_use;

	do {
		while ((before = __atomic_load_n(&site->seq, __ATOMIC_ACQUIRE)) & 1)
			__builtin_ia32_pause();
		in_use = __atomic_load_n(&site->in_use, __ATOMIC_ACQUIRE);
		for (size_t i = 0; i < SHM_ID_WORDS; i++)
			words[i] = __atomic_load_n(&src[i], __ATOMIC_ACQUIRE);
		gen = __atomic_load_n(&site->generation, __ATOMIC_ACQUIRE);
		after = __atomic_load_n(&site->seq, __ATOMIC_RELAXED);
	} while (before != after);

	memcpy(out, words, sizeof(*out));
	out->name[SHM_NAME_MAX - 1] = '\0';
	if (generation)
		*generation = gen;
	return in_use;
}

void shm_site_sum(const struct shm *shm, const struct shm_site *site,
		  struct shm_site_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < shm->hdr->lanes; i++) {
		const struct shm_site_lane *l = &site->lane[i];
		uint64_t t;

		out->rx_packets += shm_load(&l->rx_packets);
		out->rx_bytes += shm_load(&l->rx_bytes);
		out->tx_packets += shm_load(&l->tx_packets);
		out->tx_bytes += shm_load(&l->tx_bytes);
		out->keepalives += shm_load(&l->keepalives);
		out->probes += shm_load(&l->probes);
		for (int d = 0; d < SHM_DROP_SITE_COUNT; d++)
			out->drops[d] += shm_load(&l->drops[d]);
		t = shm_load(&l->last_keepalive_ns);
		if (t > out->last_keepalive_ns)
			out->last_keepalive_ns = t;
		t = shm_load(&l->last_user_ns);
		if (t > out->last_user_ns)
			out->last_user_ns = t;
		t = shm_load(&l->last_seen_ns);
		if (t > out->last_seen_ns)
			out->last_seen_ns = t;
		t = shm_load(&l->established_ns);
		if (t > out->established_ns)
			out->established_ns = t;
	}
}

void shm_pop_sum(const struct shm *shm, struct shm_pop_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < SHM_MAX_LANES; i++) {
		const struct shm_pop_lane *l = &shm->hdr->pop.lane[i];

		out->rx_packets += shm_load(&l->rx_packets);
		out->rx_bytes += shm_load(&l->rx_bytes);
		out->tx_packets += shm_load(&l->tx_packets);
		out->tx_bytes += shm_load(&l->tx_bytes);
		for (int d = 0; d < SHM_DROP_COUNT; d++)
			out->drops[d] += shm_load(&l->drops[d]);
		for (int p = 0; p < 4; p++)
			out->unsupported_proto[p] += shm_load(&l->unsupported_proto[p]);
		out->rx_queue_drops += shm_load(&l->rx_queue_drops);
	}
}

static const char *const drop_names[SHM_DROP_COUNT] = {
	[SHM_DROP_DISABLED] = "disabled",
	[SHM_DROP_BAD_KEY] = "bad_key",
	[SHM_DROP_BAD_HEADER] = "bad_header",
	[SHM_DROP_BAD_CHECKSUM] = "bad_checksum",
	[SHM_DROP_BAD_INNER] = "bad_inner",
	[SHM_DROP_UNSUPPORTED_PROTO] = "unsupported_protocol",
	[SHM_DROP_TOO_BIG] = "too_big",
	[SHM_DROP_POLICY] = "policy",
	[SHM_DROP_RATE] = "rate",
	[SHM_DROP_AUTH_FAILURE] = "auth_failure",
	[SHM_DROP_REFLECT] = "reflect",
	[SHM_DROP_NOT_SERVING] = "not_serving",
	[SHM_DROP_LOOP] = "loop",
	[SHM_DROP_IO] = "io",
	[SHM_DROP_UNKNOWN_SOURCE] = "unknown_source",
	[SHM_DROP_NO_ROUTE_BACK] = "no_route_back",
	[SHM_DROP_LOCAL] = "local",
};

static const char *const service_names[SHM_SVC_COUNT] = { "swg", "cfw" };
static const char *const health_names[] = { "unknown", "up", "down" };
static const char *const accept_names[] = { "accept", "no-new", "drain" };
static const char *const traffic_names[SHM_TRAFFIC_COUNT] = {
	"user", "iot", "mixed", "machine", "guest-wifi"
};

#define NAME_OR_UNKNOWN(table, i) \
	((unsigned)(i) < sizeof(table) / sizeof((table)[0]) && (table)[i] ? (table)[i] : "unknown")

const char *shm_drop_name(enum shm_drop reason)
{
	return NAME_OR_UNKNOWN(drop_names, reason);
}

const char *shm_service_name(enum shm_service svc)
{
	return NAME_OR_UNKNOWN(service_names, svc);
}

const char *shm_health_name(enum shm_health health)
{
	return NAME_OR_UNKNOWN(health_names, health);
}

const char *shm_accept_name(enum shm_accept mode)
{
	return NAME_OR_UNKNOWN(accept_names, mode);
}

const char *shm_traffic_type_name(enum shm_traffic_type type)
{
	return NAME_OR_UNKNOWN(traffic_names, type);
}

static int name_index(const char *const *table, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (table[i] && strcmp(table[i], name) == 0)
			return i;
	return -1;
}

int shm_accept_parse(const char *name)
{
	return name_index(accept_names, 3, name);
}

int shm_traffic_type_parse(const char *name)
{
	return name_index(traffic_names, SHM_TRAFFIC_COUNT, name);
}

int shm_service_parse(const char *name)
{
	return name_index(service_names, SHM_SVC_COUNT, name);
}
