/*
 * gatewayd: the GRE data plane of a grepop POP.
 *
 *   owns      the raw GRE sockets, one TUN per tenant (one queue per worker),
 *             the tenants' routes, the nftables table "ip grepop", the site
 *             identities and data-plane counters in shared memory, the
 *             acceptance mode (state_dir/accept)
 *   reads     the configuration, the sites file, service health and
 *             healthd's heartbeat in shared memory
 *   talks to  grepopctl over ipc://<runtime_dir>/gatewayd.ctl (REP);
 *             statsd over ipc://<runtime_dir>/events.sock (PUSH, events)
 *   keeps     CAP_NET_ADMIN (TUN, routes, nftables) and CAP_NET_RAW (sockets)
 *             for start-up; only CAP_NET_ADMIN once the sockets are open
 *
 * The main thread is the control thread; the workers are in worker.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <zmq.h>

#include "gatewayd/control.h"
#include "gatewayd/l2.h"
#include "gatewayd/netlink.h"
#include "gatewayd/nft.h"
#include "gatewayd/tun.h"
#include "gatewayd/xdp.h"
#include "lib/log.h"
#include "lib/options.h"
#include "lib/timeutil.h"

#define CTL_MAX_REQUEST	(64 << 20)	/* a site import of 100,000 rows fits */

struct gatewayd {
	struct gw gw;
	int tun_fds[CONF_MAX_TENANTS][SHM_MAX_LANES];
	unsigned tuns_open;
	bool nft_ready;
	void *zmq;
	void *ctl;
	int signal_fd;
	bool health_known;		/* what the last check of healthd's heartbeat said */
	uint64_t last_periodic_ns;
	uint64_t last_age_ns;		/* realtime of the last endpoint aging */
};

static void usage(FILE *out)
{
	fprintf(out, "usage: gatewayd [-c FILE] [-s SITES.csv] [-n] [-d] [-h]\n"
		     "  -c FILE   configuration (default " OPTIONS_DEFAULT_CONF ")\n"
		     "  -s FILE   sites file (default: the configuration's sites_file)\n"
		     "  -n        check the configuration and sites, print them normalised, exit\n"
		     "  -d        debug logging\n");
}

static unsigned default_workers(const struct conf *conf)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (conf->workers)
		return conf->workers;
	if (cores < 1)
		return 1;
	return cores > SHM_MAX_LANES ? SHM_MAX_LANES : (unsigned)cores;
}

static void open_shared_memory(struct gatewayd *d)
{
	struct gw *gw = &d->gw;
	char path[PATH_MAX + 16];
	int r;

	if (mkdir(gw->conf.runtime_dir, 0755) < 0 && errno != EEXIST)
		fatal("cannot create %s: %m", gw->conf.runtime_dir);
	conf_runtime_path(&gw->conf, SHM_FILE_NAME, path, sizeof(path));
	r = shm_open_or_create(&gw->shm, path, gw->conf.max_sites, default_workers(&gw->conf));
	if (r < 0)
		fatal("%s: %s", path, shm_describe_error(r));
	gw->n_workers = default_workers(&gw->conf);
	if (gw->n_workers > gw->shm.hdr->lanes) {
		log_warning("%s has %u counter lanes: running %u workers instead of %u", path,
			    gw->shm.hdr->lanes, gw->shm.hdr->lanes, gw->n_workers);
		gw->n_workers = gw->shm.hdr->lanes;
	}
	log_info("shared memory %s %s: %u site slots, %u lanes", path,
		 gw->shm.created ? "created" : "attached", gw->shm.hdr->site_capacity,
		 gw->shm.hdr->lanes);
}

#define TENANT_RULE_PRIORITY	1000	/* + tenant index; before main (32766) */

/* The default route of a tenant's table: on-link via its downstream interface. */
static const struct conf_prefix default_v4 = { .family = AF_INET };
static const struct conf_prefix default_v6 = { .family = AF_INET6 };

/*
 * A tenant with its own table: what comes out of its TUN and what comes
 * back from its services is routed by that table, so two tenants may use
 * the same prefixes. No VRF here: "iif" rules do the separation.
 */
static int tenant_rules(const struct conf_tenant *ten, unsigned index, bool add)
{
	int (*rule)(int, uint32_t, const char *, const struct conf_prefix *, uint32_t) =
		add ? nl_rule_add : nl_rule_del;
	int (*route)(const struct conf_prefix *, const char *, uint32_t) =
		add ? nl_route_add : nl_route_del;
	uint32_t prio = TENANT_RULE_PRIORITY + index;
	int r = 0;

	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		const struct conf_prefix *dflt = f ? &default_v6 : &default_v4;

		r = r ? r : rule(family, ten->table, ten->tun, NULL, prio);
		if (ten->downstream[0]) {
			r = r ? r : rule(family, ten->table, ten->downstream, NULL, prio);
			r = r ? r : route(dflt, ten->downstream, ten->table);
		}
	}
	return r;
}

/*
 * gateway.offload: large reads from every queue of TUN (the workers cut
 * them into segments). Without them the workers read one packet at a time,
 * which is slower but correct, so a failure is only a warning. Returns the
 * TUN_F_* flags now on.
 */
static unsigned tenant_offload(struct gatewayd *d, unsigned t)
{
	const struct conf_tenant *ten = &d->gw.conf.tenants[t];
	unsigned flags = 0;
	int r = 0;

	for (unsigned i = 0; r == 0 && i < d->gw.n_workers; i++)
		r = tun_enable_offload(d->tun_fds[t][i], &flags);
	if (r == 0)
		return flags;
	log_warning("tenant %s: cannot enable offloads on %s (%s): reading one packet at a "
		    "time", ten->name, ten->tun, strerror(-r));
	return 0;
}

static void log_offload(const struct gw *gw, unsigned flags)
{
	if (!gw->conf.offload) {
		log_info("TUN offloads off (gateway.offload = false)");
		return;
	}
	if (flags == 0)
		return;
	log_info("TUN offloads on:%s%s%s%s%s", flags & TUN_F_CSUM ? " checksum" : "",
		 flags & TUN_F_TSO4 ? " tso4" : "", flags & TUN_F_TSO6 ? " tso6" : "",
		 flags & TUN_F_TSO_ECN ? " ecn" : "", flags & TUN_F_USO4 ? " uso4 uso6" : "");
}

static void setup_tenants(struct gatewayd *d)
{
	struct gw *gw = &d->gw;
	unsigned offload = ~0u;
	int r;

	for (unsigned t = 0; t < gw->conf.n_tenants; t++) {
		const struct conf_tenant *ten = &gw->conf.tenants[t];

		r = tun_open_queues(ten->tun, gw->n_workers, true, d->tun_fds[t]);
		if (r < 0)
			fatal("tenant %s: cannot create TUN %s: %s", ten->name, ten->tun,
			      strerror(-r));
		d->tuns_open = t + 1;
		if (gw->conf.offload)
			offload &= tenant_offload(d, t);
		r = nl_link_setup(ten->tun, gw->conf.tunnel_mtu);
		if (r < 0)
			fatal("tenant %s: cannot bring %s up with MTU %u: %s", ten->name, ten->tun,
			      gw->conf.tunnel_mtu, nl_last_error());
		for (unsigned i = 0; i < ten->n_routes; i++) {
			r = nl_route_add(&ten->routes[i], ten->tun, ten->table);
			if (r < 0)
				fatal("tenant %s: cannot add route %u via %s: %s", ten->name, i + 1,
				      ten->tun, nl_last_error());
		}
		if (ten->table && tenant_rules(ten, t, true) < 0)
			fatal("tenant %s: cannot route by table %u: %s", ten->name, ten->table,
			      nl_last_error());
	}
	log_offload(gw, gw->conf.n_tenants ? offload : 0);
}

static void teardown_tenants(struct gatewayd *d)
{
	struct gw *gw = &d->gw;

	for (unsigned t = 0; t < d->tuns_open; t++) {
		const struct conf_tenant *ten = &gw->conf.tenants[t];

		for (unsigned i = 0; i < ten->n_routes; i++)
			nl_route_del(&ten->routes[i], ten->tun, ten->table);
		if (ten->table)
			tenant_rules(ten, t, false);
		tun_close_queues(d->tun_fds[t], gw->n_workers);
	}
	d->tuns_open = 0;
}

/*
 * Most NICs merge consecutive TCP segments of a tunnel into one large GRE
 * packet before anyone reads them (GRO). A packet ring with PACKET_VNET_HDR
 * says how to cut such a packet again, and the workers forward it whole; a
 * raw socket does not, and its buffer would cut the packet short. So
 * without that, GRO goes off on the WAN interface.
 */
static void wan_gro_check(struct gw *gw)
{
	const char *ifname = gw->conf.wan_interface;
	const char *why = gw->conf.io == CONF_IO_RING ?
		"this kernel's packet ring does not report how it merged packets" :
		gw->conf.io == CONF_IO_XDP ?
		"an AF_XDP socket takes no packet larger than its frames" :
		"a raw GRE socket cannot cut merged packets again";
	struct ethtool_value ev = { .cmd = ETHTOOL_GGRO };
	struct ifreq ifr;
	int fd;

	if (gw->conf.io == CONF_IO_RING && gw->workers[0].ring.vnet)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
		if (errno != ENODEV)
			log_warning("%s: cannot tell whether it merges received packets (GRO): %m",
				    ifname);
	} else if (ev.data) {
		ev = (struct ethtool_value){ .cmd = ETHTOOL_SGRO, .data = 0 };
		if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
			log_warning("%s merges received packets (GRO) and it cannot be turned off "
				    "(%m), but %s: merged GRE packets will be dropped; run "
				    "'ethtool -K %s gro off'", ifname, why, ifname);
		else
			log_info("%s: GRO turned off: %s", ifname, why);
	}
	if (fd >= 0)
		close(fd);
}

static void start_workers(struct gatewayd *d)
{
	struct gw *gw = &d->gw;
	char err[CONF_ERR_MAX];
	int r;

	gw->workers = calloc(gw->n_workers, sizeof(*gw->workers));
	if (!gw->workers)
		fatal("out of memory");
	if (gw->conf.io == CONF_IO_XDP && gw_xdp_load(gw, err, sizeof(err)) < 0)
		fatal("%s", err);
	for (unsigned i = 0; i < gw->n_workers; i++) {
		for (unsigned t = 0; t < gw->conf.n_tenants; t++)
			gw->workers[i].tun_fd[t] = d->tun_fds[t][i];
		r = worker_setup(gw, &gw->workers[i], i);
		if (r < 0)
			fatal("worker %u: cannot set up %s (raw and packet sockets need "
			      "CAP_NET_RAW; %s must be an address of this host, %s one of its "
			      "interfaces): %s", i, gw->conf.io == CONF_IO_RING ? "a packet ring" :
			      gw->conf.io == CONF_IO_XDP ? "its AF_XDP socket (its frames are "
			      "locked memory: CAP_IPC_LOCK or RLIMIT_MEMLOCK)" :
			      "its GRE socket", inet_ntoa(gw->conf.gateway_ip),
			      gw->conf.wan_interface, strerror(-r));
	}
	if (gw->conf.io == CONF_IO_XDP) {
		if (gw_xdp_attach(gw, err, sizeof(err)) < 0)
			fatal("%s", err);
		log_info("%s: GRE to %s goes to AF_XDP sockets on %u receive queues",
			 gw->conf.wan_interface, inet_ntoa(gw->conf.gateway_ip), gw->wan_queues);
	}
	wan_gro_check(gw);
	for (unsigned i = 0; i < gw->n_workers; i++) {
		r = worker_start(&gw->workers[i]);
		if (r < 0)
			fatal("worker %u: cannot start: %s", i, strerror(-r));
	}
}

/*
 * Once the sockets and TUNs are open, keep only CAP_NET_ADMIN: the control
 * thread still changes routes, nftables and TUN queues; nothing needs
 * CAP_NET_RAW (or, when run as root, anything else) any more.
 */
static void drop_privileges(void)
{
	const cap_value_t keep = CAP_NET_ADMIN;
	cap_flag_value_t have = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (!caps)
		fatal("cannot read capabilities: %m");
	cap_get_flag(caps, CAP_SETPCAP, CAP_EFFECTIVE, &have);
	for (cap_value_t c = 0; have == CAP_SET && c <= CAP_LAST_CAP; c++)
		if (c != keep)
			prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	cap_get_flag(caps, keep, CAP_PERMITTED, &have);
	cap_clear(caps);
	if (have == CAP_SET) {
		cap_set_flag(caps, CAP_PERMITTED, 1, &keep, CAP_SET);
		cap_set_flag(caps, CAP_EFFECTIVE, 1, &keep, CAP_SET);
	}
	if (cap_set_proc(caps) < 0)
		fatal("cannot drop capabilities: %m");
	cap_free(caps);
}

static void open_control(struct gatewayd *d)
{
	char endpoint[PATH_MAX + 16], path[PATH_MAX + 16];
	int64_t max = CTL_MAX_REQUEST;
	int linger = 0;

	d->zmq = zmq_ctx_new();
	d->ctl = zmq_socket(d->zmq, ZMQ_REP);
	if (!d->ctl)
		fatal("control socket: %s", zmq_strerror(errno));
	zmq_setsockopt(d->ctl, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	zmq_setsockopt(d->ctl, ZMQ_LINGER, &linger, sizeof(linger));
	conf_runtime_path(&d->gw.conf, "gatewayd.ctl", path, sizeof(path));
	unlink(path);	/* left by a crashed run */
	conf_ctl_endpoint(&d->gw.conf, endpoint, sizeof(endpoint));
	if (zmq_bind(d->ctl, endpoint) < 0)
		fatal("control socket %s: %s", endpoint, zmq_strerror(errno));
}

static void serve_control(struct gatewayd *d)
{
	zmq_msg_t msg;
	char *reply;

	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, d->ctl, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&msg);
		return;
	}
	reply = control_handle(&d->gw, zmq_msg_data(&msg), zmq_msg_size(&msg));
	zmq_msg_close(&msg);
	if (!reply)
		reply = strdup("{\"ok\":false,\"error\":\"out of memory\"}");
	zmq_send(d->ctl, reply, reply ? strlen(reply) : 0, 0);
	free(reply);
}

/* "swg up, cfw down" for the services of SITE, or why the health is unknown. */
static void site_health_text(const struct gatewayd *d, const struct gw_site *site, char *buf,
			     size_t len)
{
	const struct shm_pop *pop = &d->gw.shm.hdr->pop;
	size_t n = 0;

	buf[0] = '\0';
	if (!d->health_known) {
		snprintf(buf, len, "health unknown: healthd stale");
		return;
	}
	for (int s = 0; s < SHM_SVC_COUNT && n < len; s++) {
		uint32_t health = __atomic_load_n(&pop->service[s].health, __ATOMIC_RELAXED);

		if (site->conf.services & SHM_SVC_BIT(s))
			n += snprintf(buf + n, len - n, "%s%s %s", n ? ", " : "",
				      shm_service_name(s), shm_health_name(health));
	}
}

/* Log and publish SITE's new GRE AUTH FAILUREs (TOTAL so far), at most once a minute. */
static void report_auth_failures(struct gatewayd *d, const struct gw_site *site, uint64_t total,
				 uint64_t now)
{
	struct gw *gw = &d->gw;
	struct gw_slot_watch *watch = &gw->watch[site->slot];
	uint64_t count = total - watch->auth_failures_seen;
	char health[64];

	watch->auth_failures_seen = total;
	if (now - watch->auth_failure_logged_ns < 60 * NSEC_PER_SEC)
		return;
	site_health_text(d, site, health, sizeof(health));
	log_info("site %s: GRE AUTH FAILURE: new tunnel refused (%llu packet%s; POP %s; %s)",
		 site->conf.name, (unsigned long long)count, count == 1 ? "" : "s",
		 shm_accept_name(gw->shm.hdr->pop.accept_mode), health);
	if (gw->events)
		events_send(gw->events, "gre.auth_failure",
			    json_pack("{s:s,s:I}", "site", site->conf.name, "count",
				      (json_int_t)total));
	watch->auth_failure_logged_ns = now;
}

#define SCAN_AHEAD	8	/* slots prefetched ahead of scan_sites */

/* Ask for the lines of SLOT that scan_sites reads. */
static void scan_prefetch(const struct gw *gw, const struct shm_site *slot)
{
	for (uint32_t l = 0; l < gw->shm.hdr->lanes; l++) {
		__builtin_prefetch(&slot->lane[l].drops[SHM_DROP_AUTH_FAILURE]);
		__builtin_prefetch(&slot->lane[l].last_seen_ns);
	}
}

/*
 * One pass over the sites: report new GRE AUTH FAILUREs and count the
 * established tunnels. It runs every second and, with 100,000 sites, was
 * the control thread's largest cost, on a core it may share with a worker.
 * So it walks the slots in order (the shared-memory slots, by_slot and
 * watch are arrays by slot: the hardware prefetches them), reads only the
 * two counters it needs of each lane, and touches a site only to report.
 */
static unsigned scan_sites(struct gatewayd *d, uint64_t now)
{
	struct gw *gw = &d->gw;
	uint64_t idle = (uint64_t)gw->conf.tunnel_idle_s * NSEC_PER_SEC;
	unsigned established = 0;

	for (uint32_t s = 0; s < gw->shm.hdr->site_capacity; s++) {
		const struct shm_site *slot = shm_site_at(&gw->shm, s);
		uint64_t auth = 0, seen = 0;

		/* In order, but page by page: the hardware stops at page ends. */
		if (s + SCAN_AHEAD < gw->shm.hdr->site_capacity)
			scan_prefetch(gw, shm_site_at(&gw->shm, s + SCAN_AHEAD));
		if (!gw->by_slot[s])
			continue;
		for (uint32_t l = 0; l < gw->shm.hdr->lanes; l++) {
			uint64_t t = shm_load(&slot->lane[l].last_seen_ns);

			auth += shm_load(&slot->lane[l].drops[SHM_DROP_AUTH_FAILURE]);
			seen = t > seen ? t : seen;
		}
		if (now - seen < idle)
			established++;
		if (auth != gw->watch[s].auth_failures_seen)
			report_auth_failures(d, gw->by_slot[s], auth, now);
	}
	return established;
}

static void check_health_heartbeat(struct gatewayd *d, uint64_t now)
{
	struct gw *gw = &d->gw;
	uint64_t beat = shm_load(&gw->shm.hdr->pop.healthd_heartbeat_ns);
	bool known = beat && (int64_t)(now - beat) < (int64_t)gw->health_stale_ns;

	if (known == d->health_known)
		return;
	d->health_known = known;
	if (known) {
		log_info("healthd heartbeat is back: serving by service health again");
		return;
	}
	log_warning("healthd heartbeat stopped (%s): health unknown, failing closed: "
		    "keepalives and probes withheld, new tunnels refused",
		    beat ? "older than 3 intervals" : "never seen");
	if (gw->events)
		events_send(gw->events, "health.unknown", NULL);
}

/* Workers made progress in the last two seconds: tell the watchdog. */
static bool workers_alive(const struct gw *gw, uint64_t now)
{
	for (unsigned i = 0; i < gw->n_workers; i++) {
		uint64_t beat = shm_load(&gw->shm.hdr->pop.lane[i].heartbeat_ns);

		if ((int64_t)(now - beat) > 2 * (int64_t)NSEC_PER_SEC)
			return false;
	}
	return true;
}

/*
 * How often to age endpoints: an eighth of their idle time, within 1 to 10
 * seconds. Each pass walks every endpoint (one per branch host), so it does
 * not run every second; a lookup checks the site's generation anyway.
 */
static uint64_t age_interval_ns(const struct gw *gw)
{
	uint64_t s = gw->conf.endpoint_idle_s / 8;

	return (s < 1 ? 1 : s > 10 ? 10 : s) * NSEC_PER_SEC;
}

static void periodic(struct gatewayd *d)
{
	struct gw *gw = &d->gw;
	uint64_t now = now_realtime_ns();
	unsigned established;

	if (now - d->last_age_ns >= age_interval_ns(gw)) {
		endpoint_age(gw, now, (uint64_t)gw->conf.endpoint_idle_s * NSEC_PER_SEC);
		d->last_age_ns = now;
	}
	if (local_addrs_refresh(gw) < 0)
		log_warning("cannot read this host's addresses: %m (keeping the last ones)");
	l2_refresh(gw, L2_REFRESH_PER_TICK);
	check_health_heartbeat(d, now);	/* first: the auth failure lines name the health */
	established = scan_sites(d, now);
	if (workers_alive(gw, now))
		sd_notify(0, "WATCHDOG=1");
	sd_notifyf(0, "STATUS=%u sites, %u tunnels established, acceptance %s, health %s",
		   gw->sites.n, established, shm_accept_name(gw->shm.hdr->pop.accept_mode),
		   d->health_known ? "known" : "unknown (failing closed)");
}

static int open_signals(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		fatal("cannot block signals");
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		fatal("signalfd: %m");
	return fd;
}

/* Returns false when the process must stop. */
static bool handle_signal(struct gatewayd *d)
{
	struct signalfd_siginfo si;
	char err[CONF_ERR_MAX];

	while (read(d->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			return false;
		if (si.ssi_signo == SIGHUP && gw_reload(&d->gw, err) < 0)
			log_warning("reload refused, still running the previous configuration: %s",
				    err);
	}
	return true;
}

static void run(struct gatewayd *d)
{
	zmq_pollitem_t items[2] = {
		{ .socket = d->ctl, .events = ZMQ_POLLIN },
		{ .fd = d->signal_fd, .events = ZMQ_POLLIN },
	};

	for (;;) {
		uint64_t now;

		if (zmq_poll(items, 2, 200) < 0 && errno != EINTR)
			fatal("zmq_poll: %s", zmq_strerror(errno));
		if (items[1].revents & ZMQ_POLLIN && !handle_signal(d))
			return;
		if (items[0].revents & ZMQ_POLLIN)
			serve_control(d);
		now = now_monotonic_ns();
		if (now - d->last_periodic_ns >= NSEC_PER_SEC) {
			periodic(d);
			d->last_periodic_ns = now;
		}
	}
}

/* io = ring or xdp sends through a packet socket, to next hops the control thread resolves. */
static void open_next_hops(struct gw *gw)
{
	int r;

	if (!conf_io_on_wan(gw->conf.io))
		return;
	r = l2_gw_open(gw);
	if (r < 0)
		log_warning("cannot resolve next hops: %s (sending through the raw socket only)",
			    strerror(-r));
}

static void load_sites(struct gatewayd *d, const char *sites_path)
{
	struct gw *gw = &d->gw;
	char err[CONF_ERR_MAX];
	struct sites sites = { 0 };

	if (sites_path)
		snprintf(gw->conf.sites_file, sizeof(gw->conf.sites_file), "%s", sites_path);
	if (access(gw->conf.sites_file, F_OK) < 0 && errno == ENOENT) {
		log_warning("%s does not exist: starting with no sites", gw->conf.sites_file);
	} else if (sites_load(&sites, gw->conf.sites_file, &gw->conf, err) < 0) {
		fatal("%s", err);
	}
	if (gw_sites_replace(gw, &sites, false, err) < 0)
		fatal("%s", err);
}

static void shutdown_gateway(struct gatewayd *d)
{
	struct gw *gw = &d->gw;

	sd_notify(0, "STOPPING=1");
	log_info("stopping");
	worker_stop_all(gw);
	gw_xdp_close(gw);
	teardown_tenants(d);
	if (d->nft_ready)
		nft_teardown();
	sitetab_destroy(gw);	/* ends with a grace period and rcu_barrier */
	local_addrs_free(gw);
	for (unsigned i = 0; i < gw->n_workers; i++)
		worker_teardown(&gw->workers[i]);
	free(gw->workers);
	l2_gw_close(gw);
	events_close(gw->events);
	zmq_close(d->ctl);
	zmq_ctx_term(d->zmq);
	sites_free(&gw->sites);
	shm_detach(&gw->shm);	/* the segment stays for the next start */
	rcu_unregister_thread();
}

int main(int argc, char **argv)
{
	static struct gatewayd d;
	struct options opts;
	char err[CONF_ERR_MAX];
	int r;

	r = options_parse(argc, argv, true, usage, &opts);
	if (r >= 0)
		return r;

	log_init("gatewayd", opts.debug);
	if (conf_load(&d.gw.conf, opts.conf_path, err) < 0)
		fatal("%s", err);
	d.gw.health_stale_ns = 3ULL * d.gw.conf.health_interval_ms * NSEC_PER_MSEC;
	d.signal_fd = open_signals();
	rcu_register_thread();
	open_shared_memory(&d);
	d.gw.shm.hdr->pop.gatewayd_pid = (uint32_t)getpid();
	d.gw.shm.hdr->pop.gatewayd_started_ns = now_realtime_ns();
	__atomic_store_n(&d.gw.shm.hdr->pop.accept_mode, gw_load_accept_mode(&d.gw.conf),
			 __ATOMIC_RELEASE);
	if (sitetab_init(&d.gw) < 0)
		fatal("out of memory for the site tables");
	r = nft_setup(&d.gw.conf.gateway_ip,
		      conf_io_on_wan(d.gw.conf.io) ? d.gw.conf.wan_interface : NULL);
	if (r < 0)
		fatal("nftables: %s", nft_last_error());
	d.nft_ready = true;
	d.gw.events = events_open(&d.gw.conf);
	open_next_hops(&d.gw);
	load_sites(&d, opts.sites_path);
	setup_tenants(&d);
	/* Every site's next hop before the workers run: later only changes cost. */
	l2_refresh(&d.gw, UINT_MAX);
	if (local_addrs_refresh(&d.gw) < 0)
		fatal("cannot read this host's addresses: %m");
	start_workers(&d);
	drop_privileges();
	open_control(&d);
	log_info("POP %s serving GRE to %s with %u workers, %u tenants, %u sites",
		 d.gw.conf.pop_name, inet_ntoa(d.gw.conf.gateway_ip), d.gw.n_workers,
		 d.gw.conf.n_tenants, d.gw.sites.n);
	sd_notify(0, "READY=1");
	periodic(&d);
	run(&d);
	shutdown_gateway(&d);
	return 0;
}
