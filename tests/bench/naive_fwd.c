/*
 * naive_fwd: the benchmark's baseline, the simplest GRE forwarder there is.
 *
 *   naive_fwd --mode forward|return --gateway IP --tun NAME --mtu N
 *             --route PREFIX [--route PREFIX ...] [--peer IP]
 *
 * It creates the TUN device NAME the way gatewayd creates a tenant's (the
 * same flags, MTU and routes, through gatewayd's own tun and netlink code),
 * so decapsulated packets take the same kernel path, then does one thing:
 *
 *   forward: recvmmsg on a raw IPPROTO_GRE socket bound to the gateway IP,
 *            strip a fixed 24 bytes (outer IPv4 + GRE, no validation at
 *            all) and write() each packet to the TUN;
 *   return:  read() each packet from the TUN, put a fixed IPv4 + GRE
 *            header (gateway IP -> PEER) before it and send it on a raw
 *            IPPROTO_RAW socket, one packet per call.
 *
 * No site table, no counters, no policy: what gatewayd does on top of this
 * is what the benchmark prices. Prints "ready" once it forwards; runs until
 * a signal ends it (the TUN and its routes go with the process).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gatewayd/netlink.h"
#include "gatewayd/tun.h"

#define NAIVE_BATCH	64
#define NAIVE_BUF	9216
#define NAIVE_OUTER	24		/* IPv4 without options + GRE without options */

struct naive_opts {
	bool forward;
	struct in_addr gateway, peer;
	char tun[IFNAMSIZ];
	unsigned mtu;
	struct conf_prefix routes[CONF_MAX_ROUTES];
	unsigned n_routes;
};

static uint8_t bufs[NAIVE_BATCH][NAIVE_BUF];

static void die(const char *what, int err)
{
	fprintf(stderr, "naive_fwd: %s: %s\n", what, strerror(err));
	exit(1);
}

static int open_gre_socket(struct in_addr gateway)
{
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr = gateway };
	int size = 8 << 20;	/* as gatewayd's, so both queue as much */
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);

	if (fd < 0)
		die("raw GRE socket", errno);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0)
		die("bind to the gateway IP", errno);
	return fd;
}

static void run_forward(const struct naive_opts *o, int tun)
{
	static struct mmsghdr msg[NAIVE_BATCH];
	static struct iovec iov[NAIVE_BATCH];
	int fd = open_gre_socket(o->gateway);

	for (int i = 0; i < NAIVE_BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], NAIVE_BUF };
		msg[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = recvmmsg(fd, msg, NAIVE_BATCH, MSG_WAITFORONE, NULL);

		for (int i = 0; i < n; i++)
			if (msg[i].msg_len > NAIVE_OUTER)
				(void)!write(tun, bufs[i] + NAIVE_OUTER,
					     msg[i].msg_len - NAIVE_OUTER);
	}
}

static void run_return(const struct naive_opts *o, int tun)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr = o->peer };
	uint8_t hdr[NAIVE_OUTER] = { 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IPPROTO_GRE };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { bufs[0], 0 } };
	struct msghdr mh = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = iov,
			     .msg_iovlen = 2 };
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);

	if (fd < 0)
		die("raw IP socket", errno);
	/* The kernel fills in the total length, identification and checksum. */
	memcpy(hdr + 12, &o->gateway, 4);
	memcpy(hdr + 16, &o->peer, 4);
	hdr[22] = 0x08;		/* GRE protocol IPv4 */
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		ssize_t n = read(tun, bufs[0], NAIVE_BUF);

		if (n <= 0)
			continue;
		iov[1].iov_len = (size_t)n;
		(void)!sendmsg(fd, &mh, 0);
	}
}

static bool parse_prefix(const char *s, struct conf_prefix *p)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	char *end;
	unsigned long len;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	len = strtoul(slash + 1, &end, 10);
	if (*end || end == slash + 1 || len > 32 || inet_pton(AF_INET, addr, &p->addr.v4) != 1)
		return false;
	p->family = AF_INET;
	p->len = (uint8_t)len;
	return true;
}

static bool parse_opt(struct naive_opts *o, int c, const char *v)
{
	switch (c) {
	case 'M':
		o->forward = strcmp(v, "forward") == 0;
		return o->forward || strcmp(v, "return") == 0;
	case 'g': return inet_pton(AF_INET, v, &o->gateway) == 1;
	case 'p': return inet_pton(AF_INET, v, &o->peer) == 1;
	case 't': snprintf(o->tun, sizeof(o->tun), "%s", v); return *v != 0;
	case 'm': o->mtu = (unsigned)atoi(v); return o->mtu >= 576 && o->mtu <= 9000;
	case 'r': return o->n_routes < CONF_MAX_ROUTES &&
			 parse_prefix(v, &o->routes[o->n_routes++]);
	default: return false;
	}
}

static void parse_args(struct naive_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mode", 1, NULL, 'M' }, { "gateway", 1, NULL, 'g' }, { "peer", 1, NULL, 'p' },
		{ "tun", 1, NULL, 't' }, { "mtu", 1, NULL, 'm' }, { "route", 1, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	bool ok = true, have_mode = false;
	int c;

	while (ok && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		have_mode |= c == 'M';
		ok = parse_opt(o, c, optarg);
	}
	if (!ok || !have_mode || !o->gateway.s_addr || !o->tun[0] || !o->mtu ||
	    (!o->forward && !o->peer.s_addr) || optind != argc) {
		fprintf(stderr, "usage: naive_fwd --mode forward|return --gateway IP --tun NAME "
				"--mtu N --route PREFIX... [--peer IP]\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct naive_opts o = { 0 };
	int tun, r;

	parse_args(&o, argc, argv);
	r = tun_open_queues(o.tun, 1, false, &tun);
	if (r < 0)
		die(o.tun, -r);
	/* Blocking I/O: the simplest loop sleeps in the kernel when idle. */
	if (fcntl(tun, F_SETFL, 0) < 0)
		die("fcntl", errno);
	if (nl_link_setup(o.tun, o.mtu) < 0)
		die(nl_last_error(), EINVAL);
	for (unsigned i = 0; i < o.n_routes; i++)
		if (nl_route_add(&o.routes[i], o.tun, 0) < 0)
			die(nl_last_error(), EINVAL);
	if (o.forward)
		run_forward(&o, tun);
	else
		run_return(&o, tun);
	return 0;
}
