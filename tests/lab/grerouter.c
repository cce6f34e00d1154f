/*
 * grerouter: the GRE side of a branch router, for the test lab.
 *
 * It is an independent peer of gatewayd and shares none of its packet code,
 * so the end-to-end tests cross-check both sides of the wire.
 *
 * Packets read from a TUN device are encapsulated in GRE (RFC 2784/2890,
 * optionally Cisco MetaData) and sent over a raw IPPROTO_GRE socket to the
 * active POP; the kernel adds the outer IPv4 header. GRE from a configured
 * POP is decapsulated into the TUN.
 *
 * Tunnel liveness, per POP, by one or both of:
 *   keepalives (Cisco): GRE carrying IPv4(POP -> local, proto 47) + GRE
 *     proto 0; the POP decapsulates and sends the inner packet back to us.
 *   probes (Juniper style): ICMP echo inside the tunnel to a probe IP.
 * A mechanism goes down after RETRIES consecutive unanswered checks and up
 * again after RISE consecutive answers; a tunnel is up while every enabled
 * mechanism is up. Traffic goes to the primary while it is up, else to the
 * backup while that is up, else nowhere. Checks go to both POPs always.
 *
 * State changes are printed to stdout, one line each, and the status file
 * (JSON) is rewritten atomically on every change and once a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define PKT_MAX		65536
#define HEADROOM	64		/* GRE + options + MetaData + inner IPv4 */

#define GRE_C		0x8000
#define GRE_R		0x4000
#define GRE_K		0x2000
#define GRE_S		0x1000
#define GRE_RESERVED	0x0ff8
#define GRE_VERSION	0x0007

#define PROTO_KEEPALIVE	0x0000
#define PROTO_IPV4	0x0800
#define PROTO_IPV6	0x86dd
#define PROTO_META	0x8909
#define META_LEN	8

#define ICMP_ID_BASE	0x4752		/* "GR"; + POP index */

enum { POP_PRIMARY, POP_BACKUP, POP_MAX };

struct check_opts {
	bool on;
	unsigned period_s;
	unsigned retries;
};

struct opts {
	const char *tun;
	unsigned mtu;
	struct in_addr local;
	struct in_addr pop_ip[POP_MAX];
	unsigned n_pops;
	bool has_key;
	uint32_t key;
	bool checksum;
	bool seq;
	bool meta;
	uint16_t sgt;
	struct check_opts keepalive;
	struct check_opts probe;
	struct in_addr probe_ip;
	struct in_addr probe_src;
	unsigned rise;
	const char *status;
};

/* One liveness mechanism toward one POP. */
struct check {
	bool up;
	bool pending;			/* sent, not answered yet */
	unsigned misses;		/* consecutive */
	unsigned answers;		/* consecutive */
};

struct pop {
	const char *role;
	struct in_addr ip;
	bool up;
	uint32_t seq;
	uint16_t probe_seq;
	uint64_t sent;
	uint64_t answered;
	struct check ka;
	struct check probe;
};

struct router {
	struct opts o;
	int tun_fd;
	int raw_fd;
	int sig_fd;
	int ka_fd;
	int probe_fd;
	int tick_fd;
	struct pop pop[POP_MAX];
	int active;			/* POP index or -1 */
	uint64_t tx_packets;
	uint64_t rx_packets;
	uint64_t drops;
	bool dirty;
	uint8_t buf[HEADROOM + PKT_MAX];
};

/* Internet checksum (RFC 1071) of LEN bytes, inverted, in network order. */
static uint16_t csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static size_t gre_len(const struct opts *o, bool meta)
{
	return 4 + (o->checksum ? 4 : 0) + (o->has_key ? 4 : 0) + (o->seq ? 4 : 0) +
	       (meta ? META_LEN : 0);
}

/*
 * Write the tunnel's GRE header (and MetaData when META) in front of the
 * LEN bytes at PAYLOAD, which must have gre_len() bytes of headroom.
 * Returns the start of the header; *TOTAL gets header + payload length.
 */
static uint8_t *gre_push(struct pop *p, const struct opts *o, uint8_t *payload, size_t len,
			 uint16_t proto, bool meta, size_t *total)
{
	uint8_t *h = payload - gre_len(o, meta);
	uint16_t flags = (o->checksum ? GRE_C : 0) | (o->has_key ? GRE_K : 0) |
			 (o->seq ? GRE_S : 0);
	uint8_t *f = h + 4;

	put16(h, flags);
	put16(h + 2, meta ? PROTO_META : proto);
	if (o->checksum) {
		put32(f, 0);
		f += 4;
	}
	if (o->has_key) {
		put32(f, o->key);
		f += 4;
	}
	if (o->seq) {
		put32(f, p->seq++);
		f += 4;
	}
	if (meta) {
		put16(f, proto);
		f[2] = 1;		/* version */
		f[3] = 1;		/* length in 8-byte units */
		put16(f + 4, 1);	/* option: SGT */
		put16(f + 6, o->sgt);
	}
	*total = (size_t)(payload - h) + len;
	if (o->checksum)
		memcpy(h + 4, &(uint16_t){ csum(h, *total) }, 2);
	return h;
}

/* Write a 20-byte IPv4 header for LEN bytes of payload in front of PAYLOAD. */
static uint8_t *ipv4_push(uint8_t *payload, size_t len, struct in_addr src, struct in_addr dst,
			  uint8_t proto)
{
	uint8_t *h = payload - 20;

	memset(h, 0, 20);
	h[0] = 0x45;
	put16(h + 2, (uint16_t)(20 + len));
	h[8] = 255;
	h[9] = proto;
	memcpy(h + 12, &src, 4);
	memcpy(h + 16, &dst, 4);
	memcpy(h + 10, &(uint16_t){ csum(h, 20) }, 2);
	return h;
}

static int pop_send(struct router *r, struct pop *p, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = p->ip };

	if (sendto(r->raw_fd, pkt, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* Encapsulate the inner IP packet at PAYLOAD (with headroom) toward P. */
static int pop_send_inner(struct router *r, struct pop *p, uint8_t *payload, size_t len)
{
	uint16_t proto = (payload[0] >> 4) == 6 ? PROTO_IPV6 : PROTO_IPV4;
	size_t total;
	uint8_t *h = gre_push(p, &r->o, payload, len, proto, r->o.meta, &total);

	return pop_send(r, p, h, total);
}

static int keepalive_send(struct router *r, struct pop *p)
{
	uint8_t *end = r->buf + HEADROOM;
	size_t len;
	uint8_t *h = gre_push(p, &r->o, end, 0, PROTO_KEEPALIVE, false, &len);

	h = ipv4_push(h, len, p->ip, r->o.local, IPPROTO_GRE);
	return pop_send_inner(r, p, h, len + 20);
}

static int probe_send(struct router *r, struct pop *p)
{
	uint8_t *icmp = r->buf + HEADROOM;
	uint8_t *h;

	memset(icmp, 0, 16);
	icmp[0] = 8;			/* echo request */
	put16(icmp + 4, ICMP_ID_BASE + (uint16_t)(p - r->pop));
	put16(icmp + 6, p->probe_seq++);
	memcpy(icmp + 8, "grerouter", 8);
	memcpy(icmp + 2, &(uint16_t){ csum(icmp, 16) }, 2);
	h = ipv4_push(icmp, 16, r->o.probe_src, r->o.probe_ip, IPPROTO_ICMP);
	return pop_send_inner(r, p, h, 36);
}

/* Choose the POP that carries traffic; true if that changed. */
static bool router_select(struct router *r)
{
	int active = -1;

	if (r->pop[POP_PRIMARY].up)
		active = POP_PRIMARY;
	else if (r->o.n_pops > POP_BACKUP && r->pop[POP_BACKUP].up)
		active = POP_BACKUP;
	if (active == r->active)
		return false;
	r->active = active;
	return true;
}

static void print_active(const struct router *r)
{
	if (r->active < 0)
		printf("active none\n");
	else
		printf("active %s %s\n", r->pop[r->active].role, inet_ntoa(r->pop[r->active].ip));
	fflush(stdout);
}

static int status_write(struct router *r);

/* The status file is rewritten before the lines are printed, so whoever
 * reads a line finds the file already saying the same. */
static void pop_update(struct router *r, struct pop *p, const char *why)
{
	bool up = (!r->o.keepalive.on || p->ka.up) && (!r->o.probe.on || p->probe.up);
	bool switched;

	r->dirty = true;
	if (up == p->up)
		return;
	p->up = up;
	switched = router_select(r);
	status_write(r);
	printf("tunnel %s %s %s (%s)\n", p->role, inet_ntoa(p->ip), up ? "up" : "down", why);
	if (switched)
		print_active(r);
	fflush(stdout);
}

/* A check is due: count the previous one as missed if it is still pending. */
static void check_tick(struct router *r, struct pop *p, struct check *c, unsigned retries,
		       const char *what)
{
	char why[64];

	if (c->pending) {
		c->answers = 0;
		c->misses++;
		if (c->up && c->misses >= retries) {
			c->up = false;
			snprintf(why, sizeof(why), "%u %s unanswered", c->misses, what);
			pop_update(r, p, why);
		}
	}
	c->pending = true;
	p->sent++;
	r->dirty = true;
}

static void check_answer(struct router *r, struct pop *p, struct check *c, const char *what)
{
	char why[64];

	if (!c->pending)
		return;		/* duplicate or late: already counted */
	c->pending = false;
	c->misses = 0;
	c->answers++;
	p->answered++;
	r->dirty = true;
	if (!c->up && c->answers >= r->o.rise) {
		c->up = true;
		snprintf(why, sizeof(why), "%u %s answered", c->answers, what);
		pop_update(r, p, why);
	}
}

static struct pop *pop_find(struct router *r, struct in_addr ip)
{
	for (unsigned i = 0; i < r->o.n_pops; i++)
		if (r->pop[i].ip.s_addr == ip.s_addr)
			return &r->pop[i];
	return NULL;
}

/* Is the inner IPv4 packet an answer to one of our probes sent to P? */
static bool probe_is_reply(const struct router *r, const struct pop *p, const uint8_t *pkt,
			   size_t len)
{
	size_t ihl;

	if (!r->o.probe.on || len < 20 || (pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_ICMP)
		return false;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	if (ihl < 20 || len < ihl + 8 || memcmp(pkt + 12, &r->o.probe_ip, 4) != 0)
		return false;
	return pkt[ihl] == 0 && get16(pkt + ihl + 4) == ICMP_ID_BASE + (p - r->pop);
}

/*
 * Parse GRE at PKT (LEN bytes, after the outer IPv4 header). Returns the
 * inner protocol and sets *OFF to the payload offset, or -1 if malformed or
 * not for this tunnel.
 */
static int gre_parse(const struct opts *o, const uint8_t *pkt, size_t len, size_t *off)
{
	uint16_t flags;
	uint16_t proto;
	size_t n = 4;

	if (len < 4)
		return -1;
	flags = get16(pkt);
	proto = get16(pkt + 2);
	if (flags & (GRE_R | GRE_RESERVED | GRE_VERSION))
		return -1;
	n += (flags & GRE_C ? 4 : 0) + (flags & GRE_K ? 4 : 0) + (flags & GRE_S ? 4 : 0);
	if (len < n || ((flags & GRE_C) && csum(pkt, len) != 0))
		return -1;
	if (!!(flags & GRE_K) != o->has_key)
		return -1;
	if ((flags & GRE_K) && get32(pkt + 4 + (flags & GRE_C ? 4 : 0)) != o->key)
		return -1;
	if (proto == PROTO_META) {
		if (len < n + META_LEN)
			return -1;
		proto = get16(pkt + n);
		n += META_LEN;
	}
	*off = n;
	return proto;
}

/* The payload of GRE from P: an answer to a check, or traffic for the TUN. */
static int inner_deliver(struct router *r, struct pop *p, int proto, const uint8_t *pkt,
			 size_t len)
{
	if (proto == PROTO_KEEPALIVE && r->o.keepalive.on) {
		check_answer(r, p, &p->ka, "keepalives");
		return 0;
	}
	if (proto == PROTO_IPV4 && probe_is_reply(r, p, pkt, len)) {
		check_answer(r, p, &p->probe, "probes");
		return 0;
	}
	if ((proto != PROTO_IPV4 && proto != PROTO_IPV6) || len == 0)
		return -EPROTO;
	if (write(r->tun_fd, pkt, len) < 0)
		return -errno;
	r->rx_packets++;
	return 0;
}

static void raw_receive(struct router *r)
{
	const uint8_t *pkt = r->buf;
	ssize_t n = recv(r->raw_fd, r->buf, PKT_MAX, MSG_DONTWAIT);
	struct in_addr src;
	struct pop *p;
	size_t ihl, off;
	int proto;

	if (n < 20)
		return;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	memcpy(&src, pkt + 12, 4);
	p = pop_find(r, src);
	if (!p || ihl < 20 || (size_t)n < ihl || memcmp(pkt + 16, &r->o.local, 4) != 0)
		goto drop;
	proto = gre_parse(&r->o, pkt + ihl, (size_t)n - ihl, &off);
	if (proto < 0)
		goto drop;
	off += ihl;
	if (inner_deliver(r, p, proto, pkt + off, (size_t)n - off) < 0)
		goto drop;
	return;
drop:
	r->drops++;
}

static void tun_receive(struct router *r)
{
	uint8_t *payload = r->buf + HEADROOM;
	ssize_t n = read(r->tun_fd, payload, PKT_MAX);

	if (n <= 0)
		return;
	if (r->active < 0 || pop_send_inner(r, &r->pop[r->active], payload, (size_t)n) < 0) {
		r->drops++;
		return;
	}
	r->tx_packets++;
}

static json_t *pop_json(const struct pop *p)
{
	return json_pack("{s:s, s:b, s:I, s:I}", "ip", inet_ntoa(p->ip), "up", p->up,
			 "sent", (json_int_t)p->sent, "answered", (json_int_t)p->answered);
}

static int status_write(struct router *r)
{
	char tmp[4096];
	json_t *st;
	int ret;

	r->dirty = false;
	if (!r->o.status)
		return 0;
	st = json_pack("{s:s, s:o, s:I, s:I, s:I}",
		       "active", r->active < 0 ? "none" : r->pop[r->active].role,
		       "primary", pop_json(&r->pop[POP_PRIMARY]),
		       "tx_packets", (json_int_t)r->tx_packets,
		       "rx_packets", (json_int_t)r->rx_packets, "drops", (json_int_t)r->drops);
	if (!st)
		return -ENOMEM;
	json_object_set_new(st, "backup", r->o.n_pops > POP_BACKUP ?
			    pop_json(&r->pop[POP_BACKUP]) : json_null());
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->o.status);
	ret = json_dump_file(st, tmp, JSON_SORT_KEYS) ? -EIO : 0;
	json_decref(st);
	if (ret == 0 && rename(tmp, r->o.status) < 0)
		ret = -errno;
	return ret;
}

/* Bring the interface of IFR up with MTU, through the socket ioctls. */
static int link_up(struct ifreq *ifr, unsigned mtu)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (s < 0)
		return -errno;
	ifr->ifr_mtu = (int)mtu;
	if (ioctl(s, SIOCSIFMTU, ifr) < 0 || ioctl(s, SIOCGIFFLAGS, ifr) < 0)
		ret = -errno;
	ifr->ifr_flags |= IFF_UP;
	if (ret == 0 && ioctl(s, SIOCSIFFLAGS, ifr) < 0)
		ret = -errno;
	close(s);
	return ret;
}

/* A TUN device that disappears when the returned descriptor is closed. */
static int tun_open(const char *name, unsigned mtu)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	int ret;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ret = ioctl(fd, TUNSETIFF, &ifr) < 0 ? -errno : link_up(&ifr, mtu);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int raw_open(struct in_addr local)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = local };
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_GRE);
	int err;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int timer_open(unsigned period_s)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = period_s },
		.it_value = { .tv_sec = 0, .tv_nsec = 1000000 },	/* first check at once */
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static bool timer_fired(int fd)
{
	uint64_t n;

	return read(fd, &n, sizeof(n)) == sizeof(n);
}

/* Time for the next keepalive (or probe, with PROBE) to every POP. */
static void checks_tick(struct router *r, bool probe)
{
	for (unsigned i = 0; i < r->o.n_pops; i++) {
		struct pop *p = &r->pop[i];

		if (probe)
			check_tick(r, p, &p->probe, r->o.probe.retries, "probes");
		else
			check_tick(r, p, &p->ka, r->o.keepalive.retries, "keepalives");
		if ((probe ? probe_send(r, p) : keepalive_send(r, p)) < 0)
			r->drops++;
	}
}

/* Returns 0 on SIGTERM/SIGINT, or a negative errno if polling failed. */
static int router_run(struct router *r)
{
	struct pollfd pfd[] = {
		{ .fd = r->sig_fd, .events = POLLIN },
		{ .fd = r->tun_fd, .events = POLLIN },
		{ .fd = r->raw_fd, .events = POLLIN },
		{ .fd = r->tick_fd, .events = POLLIN },
		{ .fd = r->ka_fd, .events = POLLIN },
		{ .fd = r->probe_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 6, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents)
			return 0;
		for (int i = 0; i < 64 && (pfd[1].revents & POLLIN); i++)
			tun_receive(r);
		for (int i = 0; i < 64 && (pfd[2].revents & POLLIN); i++)
			raw_receive(r);
		if ((pfd[3].revents & POLLIN) && timer_fired(r->tick_fd))
			r->dirty = true;
		if ((pfd[4].revents & POLLIN) && timer_fired(r->ka_fd))
			checks_tick(r, false);
		if ((pfd[5].revents & POLLIN) && timer_fired(r->probe_fd))
			checks_tick(r, true);
		if (r->dirty && status_write(r) < 0)
			fprintf(stderr, "grerouter: cannot write %s, retrying\n", r->o.status);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: grerouter --local IP --pop IP [options]\n"
		"The GRE side of a branch router: TUN <-> GRE to a primary or backup POP.\n\n"
		"  --local IP             outer source address (the router's WAN address)\n"
		"  --pop IP               primary POP (gateway IP)\n"
		"  --backup IP            backup POP, used while the primary is down\n"
		"  --tun NAME             TUN device to create (default gre-r)\n"
		"  --mtu N                TUN MTU (default 1476 less 4 bytes per GRE option\n"
		"                         and 8 for MetaData, as a 1500-byte WAN allows)\n"
		"  --key N                GRE key (K bit)\n"
		"  --checksum             GRE checksum (C bit)\n"
		"  --seq                  GRE sequence numbers (S bit)\n"
		"  --cisco-meta SGT       insert Cisco MetaData carrying this SGT\n"
		"  --keepalive P,R        Cisco keepalive every P s, down after R missed\n"
		"  --probe IP,P,R         ICMP echo to IP in the tunnel every P s, R missed\n"
		"  --probe-src IP         inner source of the probes (required with --probe)\n"
		"  --rise N               answers in a row to bring a tunnel up (default 2)\n"
		"  --status FILE          JSON status, rewritten on changes and every second\n"
		"  -h, --help             this text\n\n"
		"Prints one line per state change: 'tunnel ROLE IP up|down (why)', "
		"'active ROLE IP'.\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno == 0 && end != s && *end == '\0' && *s != '-' && *out <= max;
}

static bool parse_ip(const char *s, struct in_addr *ip)
{
	return inet_pton(AF_INET, s, ip) == 1;
}

/* "P,R" into C. */
static bool parse_check(const char *s, struct check_opts *c)
{
	unsigned long period, retries;
	char buf[64], *comma;

	snprintf(buf, sizeof(buf), "%s", s);
	comma = strchr(buf, ',');
	if (!comma)
		return false;
	*comma = '\0';
	if (!parse_uint(buf, 3600, &period) || !parse_uint(comma + 1, 100, &retries) ||
	    period == 0 || retries == 0)
		return false;
	*c = (struct check_opts){ .on = true, .period_s = (unsigned)period,
				  .retries = (unsigned)retries };
	return true;
}

/* "IP,P,R" */
static bool parse_probe(const char *s, struct opts *o)
{
	char buf[64], *comma;

	snprintf(buf, sizeof(buf), "%s", s);
	comma = strchr(buf, ',');
	if (!comma)
		return false;
	*comma = '\0';
	return parse_ip(buf, &o->probe_ip) && parse_check(comma + 1, &o->probe);
}

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "grerouter: %s %s: %s\n", opt, val, want);
	return -1;
}

static int parse_num(const char *opt, const char *arg, unsigned long min, unsigned long max,
		     unsigned long *v)
{
	char want[64];

	if (parse_uint(arg, max, v) && *v >= min)
		return 0;
	snprintf(want, sizeof(want), "want a number %lu..%lu", min, max);
	return bad(opt, arg, want);
}

static int parse_addr(const char *opt, const char *arg, struct in_addr *ip)
{
	return parse_ip(arg, ip) ? 0 : bad(opt, arg, "not an IPv4 address");
}

/* One option; returns 0, 1 for --help, or -1 after printing the error. */
static int parse_opt(struct opts *o, int c, const char *arg)
{
	unsigned long v = 0;
	int ret = 0;

	switch (c) {
	case 'l': return parse_addr("--local", arg, &o->local);
	case 'p': return parse_addr("--pop", arg, &o->pop_ip[POP_PRIMARY]);
	case 'b':
		o->n_pops = 2;
		return parse_addr("--backup", arg, &o->pop_ip[POP_BACKUP]);
	case 't':
		o->tun = arg;
		return strlen(arg) < IFNAMSIZ ? 0 : bad("--tun", arg, "name too long");
	case 'm':
		ret = parse_num("--mtu", arg, 68, 65535, &v);
		o->mtu = (unsigned)v;
		return ret;
	case 'k':
		ret = parse_num("--key", arg, 0, UINT32_MAX, &v);
		o->has_key = true;
		o->key = (uint32_t)v;
		return ret;
	case 'c': o->checksum = true; return 0;
	case 'q': o->seq = true; return 0;
	case 'g':
		ret = parse_num("--cisco-meta", arg, 0, 65535, &v);
		o->meta = true;
		o->sgt = (uint16_t)v;
		return ret;
	case 'K': return parse_check(arg, &o->keepalive) ? 0 :
			 bad("--keepalive", arg, "want PERIOD,RETRIES (e.g. 10,3)");
	case 'P': return parse_probe(arg, o) ? 0 :
			 bad("--probe", arg, "want IP,PERIOD,RETRIES (e.g. 100.64.255.1,5,3)");
	case 's': return parse_addr("--probe-src", arg, &o->probe_src);
	case 'r':
		ret = parse_num("--rise", arg, 1, 100, &v);
		o->rise = (unsigned)v;
		return ret;
	case 'S': o->status = arg; return 0;
	case 'h': return 1;
	default: return -1;	/* getopt said why */
	}
}

/* Returns 0, 1 when --help was asked for, or -1 after printing the error. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "local", required_argument, NULL, 'l' },
		{ "pop", required_argument, NULL, 'p' },
		{ "backup", required_argument, NULL, 'b' },
		{ "tun", required_argument, NULL, 't' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "checksum", no_argument, NULL, 'c' },
		{ "seq", no_argument, NULL, 'q' },
		{ "cisco-meta", required_argument, NULL, 'g' },
		{ "keepalive", required_argument, NULL, 'K' },
		{ "probe", required_argument, NULL, 'P' },
		{ "probe-src", required_argument, NULL, 's' },
		{ "rise", required_argument, NULL, 'r' },
		{ "status", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_local = false, have_pop = false;
	int c, ret;

	*o = (struct opts){ .tun = "gre-r", .n_pops = 1, .rise = 2 };
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		ret = parse_opt(o, c, optarg);
		if (ret)
			return ret;
		have_local |= c == 'l';
		have_pop |= c == 'p';
	}
	if (optind < argc)
		return bad("argument", argv[optind], "unexpected");
	if (!have_local || !have_pop)
		return bad("--local and --pop", "", "are required (see --help)");
	if (o->probe.on && o->probe_src.s_addr == 0)
		return bad("--probe", "", "needs --probe-src");
	if (o->mtu == 0)	/* what fits a 1500-byte WAN with these options */
		o->mtu = (unsigned)(1500 - 20 - gre_len(o, o->meta));
	return 0;
}

static void router_init(struct router *r)
{
	static const char *roles[POP_MAX] = { "primary", "backup" };

	r->active = -1;
	r->ka_fd = r->probe_fd = -1;
	for (unsigned i = 0; i < POP_MAX; i++) {
		r->pop[i] = (struct pop){ .role = roles[i], .ip = r->o.pop_ip[i], .up = true };
		/* Up until RETRIES checks go unanswered, as a Cisco tunnel is. */
		r->pop[i].ka.up = r->pop[i].probe.up = true;
	}
}

/* Open everything; on failure *WHAT names the step. */
static int router_open(struct router *r, const char **what)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	*what = "signals";
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	r->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sig_fd < 0)
		return -errno;
	*what = "timers";
	r->tick_fd = timer_open(1);
	if (r->tick_fd < 0)
		return r->tick_fd;
	if (r->o.keepalive.on && (r->ka_fd = timer_open(r->o.keepalive.period_s)) < 0)
		return r->ka_fd;
	if (r->o.probe.on && (r->probe_fd = timer_open(r->o.probe.period_s)) < 0)
		return r->probe_fd;
	*what = "raw GRE socket bound to the --local address";
	r->raw_fd = raw_open(r->o.local);
	if (r->raw_fd < 0)
		return r->raw_fd;
	*what = "TUN device";
	r->tun_fd = tun_open(r->o.tun, r->o.mtu);
	return r->tun_fd < 0 ? r->tun_fd : 0;
}

int main(int argc, char **argv)
{
	static struct router r;		/* large: the packet buffer */
	const char *what;
	int ret;

	ret = parse_args(&r.o, argc, argv);
	if (ret > 0) {
		usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "Try 'grerouter --help'.\n");
		return 2;
	}
	router_init(&r);
	ret = router_open(&r, &what);
	if (ret < 0) {
		fprintf(stderr, "grerouter: cannot open the %s: %s\n", what, strerror(-ret));
		return 1;
	}
	router_select(&r);
	status_write(&r);
	print_active(&r);
	ret = router_run(&r);
	close(r.tun_fd);	/* not persistent: the kernel removes the device */
	if (r.o.status)
		unlink(r.o.status);
	if (ret < 0) {
		fprintf(stderr, "grerouter: poll: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
