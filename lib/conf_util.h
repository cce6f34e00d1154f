/*
 * Value checks shared by the configuration and sites loaders. Pure
 * functions of their arguments; none of them keeps state.
 */
#ifndef GREPOP_CONF_UTIL_H
#define GREPOP_CONF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/conf.h"

/* 1 to SHM_NAME_MAX - 1 characters of A-Z a-z 0-9 . _ - */
bool conf_name_valid(const char *name);

/* A name Linux accepts for a network device: 1..15 bytes, no '/', ':', space. */
bool conf_ifname_valid(const char *name);

/* Not 0.0.0.0/8, multicast, 240.0.0.0/4 or the broadcast address. */
bool conf_ipv4_unicast(struct in_addr addr);

/* Decimal 1..65535 without sign or leading zero; PORT may be NULL. */
bool conf_port_valid(const char *text, uint16_t *port);

/* "a.b.c.d:port" */
bool conf_hostport_valid(const char *text);

/* "http://a.b.c.d[:port][/path]" */
bool conf_http_url_valid(const char *url);

/*
 * Parse "addr/len" (IPv4 or IPv6) with no host bits set. Returns 0, or -1
 * with the reason (and the corrected prefix when only host bits are wrong)
 * in WHY.
 */
int conf_prefix_parse(struct conf_prefix *prefix, const char *text, char *why, size_t len);

bool conf_prefix_equal(const struct conf_prefix *a, const struct conf_prefix *b);

/* "addr/len" into BUF (INET6_ADDRSTRLEN + 4 is enough). */
void conf_prefix_format(const struct conf_prefix *prefix, char *buf, size_t len);

/* Decimal digits only, at most MAX; false on anything else or overflow. */
bool conf_parse_u64(const char *text, uint64_t max, uint64_t *value);

/* The sites file's columns, in the order sites_write prints them. */
enum sites_column {
	SITES_COL_NAME,
	SITES_COL_SOURCE_IP,
	SITES_COL_TRAFFIC_TYPE,
	SITES_COL_SERVICES,
	SITES_COL_KEEPALIVE,
	SITES_COL_ENABLED,
	SITES_COL_TENANT,
	SITES_COL_KEY,
	SITES_COL_HTTP_PORTS,
	SITES_COL_RATE_MBPS,
	SITES_COL_COUNT
};

extern const char *const sites_column_names[SITES_COL_COUNT];

/* The column called NAME, or -1. */
int sites_column_find(const char *name);

/* site_conf_set by column number. */
int site_conf_set_column(struct site_conf *site, enum sites_column column, const char *value,
			 char err[CONF_ERR_MAX]);

/* The text of one column of SITE as sites_write prints it, into BUF. */
void site_conf_format(const struct site_conf *site, enum sites_column column, char *buf,
		      size_t len);

#endif
