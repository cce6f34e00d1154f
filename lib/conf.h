/*
 * The POP configuration (libconfig, etc/grepop.conf) and the sites file
 * (CSV), as every process reads them.
 *
 * Loading is all or nothing: a loader fills a fresh structure and returns an
 * error with "file:line: message" (configuration) or "file:row:column:
 * message" (sites) in the caller's buffer, leaving nothing half loaded. The
 * daemons load into a new structure and swap it in only when it loaded.
 */
#ifndef GREPOP_CONF_H
#define GREPOP_CONF_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shm/shm.h"

#define CONF_ERR_MAX		512
#define CONF_MAX_TENANTS	32
#define CONF_MAX_ROUTES		64
#define CONF_MAX_CHECKS		16
#define CONF_MAX_BACKUP_POPS	8
#define CONF_ADDR_MAX		256	/* URLs and ZeroMQ endpoints */

struct conf_prefix {
	int family;			/* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	uint8_t len;
};

struct conf_tenant {
	char name[SHM_NAME_MAX];
	char tun[IFNAMSIZ];
	uint32_t table;			/* routing table, 0 = main */
	char downstream[IFNAMSIZ];	/* with a table: the interface toward this
					 * tenant's services; "" = none */
	unsigned n_routes;
	struct conf_prefix routes[CONF_MAX_ROUTES];
};

enum conf_check_type {
	CONF_CHECK_HTTP,		/* GET url, 2xx within the timeout */
	CONF_CHECK_TCP,			/* connect to address */
};

struct conf_check {
	enum shm_service service;
	enum conf_check_type type;
	char url[CONF_ADDR_MAX];	/* http */
	char address[CONF_ADDR_MAX];	/* tcp: "IPv4:port" */
};

enum conf_io {
	CONF_IO_SOCKET,			/* recvmmsg on a raw GRE socket */
	CONF_IO_RING,			/* AF_PACKET TPACKET_V3 ring on wan_interface */
	CONF_IO_XDP,			/* AF_XDP sockets on wan_interface's queues */
};

/* The I/O modes that read GRE on pop.wan_interface, ahead of IP input. */
static inline bool conf_io_on_wan(enum conf_io io)
{
	return io != CONF_IO_SOCKET;
}

static inline const char *conf_io_name(enum conf_io io)
{
	return io == CONF_IO_XDP ? "xdp" : io == CONF_IO_RING ? "ring" : "socket";
}

struct conf {
	char path[PATH_MAX];		/* the file it was read from */

	/* pop { } */
	char pop_name[SHM_NAME_MAX];
	char location[128];
	struct in_addr gateway_ip;
	struct in_addr probe_ip;	/* 0.0.0.0 (default): probes not answered */
	char wan_interface[IFNAMSIZ];
	unsigned tunnel_mtu;		/* 576..9000, default 1476 */
	unsigned n_backup_pops;
	char backup_pops[CONF_MAX_BACKUP_POPS][SHM_NAME_MAX];

	char runtime_dir[PATH_MAX];	/* default /run/grepop */
	char state_dir[PATH_MAX];	/* default /var/lib/grepop: acceptance mode */
	char sites_file[PATH_MAX];	/* default /var/lib/grepop/sites.csv */

	unsigned n_tenants;
	struct conf_tenant tenants[CONF_MAX_TENANTS];

	/* gateway { } : data-plane tuning, all optional */
	unsigned workers;		/* 0 = one per core, at most SHM_MAX_LANES */
	enum conf_io io;
	bool offload;			/* GSO/TSO with the TUN devices, default true */
	unsigned max_sites;		/* shared-memory slots, default 100000 */
	unsigned keepalive_window_s;	/* Seen while one arrived this recently, 60 */
	unsigned tunnel_idle_s;		/* established tunnel expires, 1800 */
	uint64_t default_rate_bps;	/* per tunnel, default 1 Gbps, 0 = unlimited */
	unsigned endpoint_idle_s;	/* learned inner addresses age out, 600 */

	/* health { } */
	unsigned health_interval_ms;	/* default 1000 */
	unsigned health_timeout_ms;	/* default 500 */
	unsigned health_rise;		/* default 2 */
	unsigned health_fall;		/* default 3 */
	unsigned n_checks;
	struct conf_check checks[CONF_MAX_CHECKS];

	/* stats { } */
	unsigned stats_interval_ms;	/* default 1000 */
	char stats_feed[CONF_ADDR_MAX];
	char stats_snapshot[CONF_ADDR_MAX];
	char stats_http[CONF_ADDR_MAX];	/* "IPv4:port" */
};

/*
 * Read PATH into CONF (fully overwritten, defaults applied). Returns 0, or
 * -1 with "file:line: message" in ERR and CONF untouched. The message names
 * the setting ("pop.tunnel_mtu", "tenants[1].routes[0]") and what it
 * accepts; unknown keys are errors. Line 0 means the file could not be read.
 */
int conf_load(struct conf *conf, const char *path, char err[CONF_ERR_MAX]);

/*
 * Print the normalised configuration (every key, defaults filled in) in
 * libconfig syntax, in a fixed order; conf_load reads it back to the same
 * structure.
 */
void conf_print(const struct conf *conf, FILE *out);

/* Index of the tenant called NAME, or -1. */
int conf_tenant_find(const struct conf *conf, const char *name);

/* Path of a file under the runtime directory ("state", "gatewayd.ctl"). */
void conf_runtime_path(const struct conf *conf, const char *name, char *buf, size_t len);

/* ZeroMQ endpoints under the runtime directory. */
void conf_ctl_endpoint(const struct conf *conf, char *buf, size_t len);	/* gatewayd */
void conf_events_endpoint(const struct conf *conf, char *buf, size_t len);	/* statsd PULL */

/* One row of the sites file. */
struct site_conf {
	char name[SHM_NAME_MAX];
	struct in_addr source_ip;
	enum shm_traffic_type traffic_type;
	uint8_t services;		/* SHM_SVC_BIT() set */
	bool keepalive;
	bool enabled;
	char tenant[SHM_NAME_MAX];
	bool has_key;
	uint32_t key;
	unsigned n_http_ports;
	uint16_t http_ports[SHM_MAX_HTTP_PORTS];
	uint64_t rate_bps;		/* 0 = the POP's default_rate_bps */
};

struct sites {
	unsigned n;
	unsigned cap;
	struct site_conf *site;		/* sorted by name */
};

/*
 * Parse CSV text (from FILE_NAME, used in messages) into SITES. Validates
 * every row and the file as a whole: unknown columns, missing required
 * columns, bad values, duplicate names, a source IP shared without distinct
 * keys on every site that shares it, unknown tenants and more rows than
 * gateway.max_sites (when CONF is not NULL). Returns 0, or -1 with
 * "file:row:column: message" in ERR and SITES left empty. Rows count from 1
 * for the header; columns from 1.
 *
 * Rows are the file's lines (blank lines count, and are otherwise ignored),
 * so an editor finds them; for a rule between two rows the later row is
 * reported and the message names the earlier one. A UTF-8 BOM and CRLF line
 * ends are accepted. SITES is an output: whatever it held is overwritten,
 * not freed; on success the caller owns it (sites_free).
 */
int sites_parse(struct sites *sites, const char *file_name, const char *text, size_t len,
		const struct conf *conf, char err[CONF_ERR_MAX]);

/*
 * sites_parse on a file's contents. When the file cannot be read the
 * message is "file:0:0: cannot read the file: reason" and errno says why
 * (ENOENT for a missing file).
 */
int sites_load(struct sites *sites, const char *path, const struct conf *conf,
	       char err[CONF_ERR_MAX]);

/*
 * Check a whole set (after an add or edit): the same file-wide rules as
 * sites_parse (CONF may be NULL). Returns 0 or -1 with a message naming the
 * site: 'site "name": column: message'.
 */
int sites_validate(const struct sites *sites, const struct conf *conf, char err[CONF_ERR_MAX]);

/* Write SITES as CSV with a header row, every column, sorted by name. */
void sites_write(const struct sites *sites, FILE *out);

/* Write to PATH atomically (temporary file, fsync, rename). 0 or -errno. */
int sites_save(const struct sites *sites, const char *path);

/* Find by name; NULL if absent. */
struct site_conf *sites_find(const struct sites *sites, const char *name);

/*
 * Set one field of SITE from its CSV column name and text, as the loader
 * does (grepopctl's "site add/edit --column value" uses it). An empty value
 * sets the column's default (an error for name and source_ip). Returns 0 or
 * -1 with "column: message" in ERR and SITE unchanged.
 */
int site_conf_set(struct site_conf *site, const char *column, const char *value,
		  char err[CONF_ERR_MAX]);

/* Defaults of a new row: user, swg+cfw, keepalive yes, enabled, "default". */
void site_conf_init(struct site_conf *site);

/*
 * A zeroed struct sites is an empty set. sites_add copies SITE in at its
 * place by name: 0, -EEXIST (name taken) or -ENOMEM; it checks no file-wide
 * rule (sites_validate does). sites_remove of an absent name does nothing.
 * sites_copy overwrites DST (free it first if it holds rows): 0 or -ENOMEM.
 * sites_free leaves an empty set.
 */
int sites_add(struct sites *sites, const struct site_conf *site);	/* keeps order */
void sites_remove(struct sites *sites, const char *name);
int sites_copy(struct sites *dst, const struct sites *src);
void sites_free(struct sites *sites);

/*
 * The -n option of every process: load CONF_PATH and the sites file
 * (SITES_PATH, or the one the configuration names when NULL; a missing
 * sites file is an empty set), print both normalised to stdout and return
 * 0, or print "file:line: message" / "file:row:column: message" to stderr
 * and return 1. The output is, in this order:
 *
 *   # configuration: CONF_PATH
 *   conf_print's output (libconfig syntax; the line above is a comment)
 *   # sites: SITES_PATH (N[, the file does not exist])
 *   sites_write's output (CSV with header)
 */
int conf_check_main(const char *conf_path, const char *sites_path);

/* "swg", "cfw", "swg+cfw" */
const char *sites_services_name(uint8_t services);

#endif
