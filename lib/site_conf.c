/*
 * One row of the sites file: the text of each column to and from its field.
 * An empty value means the column's default, except for the two required
 * columns. Messages read "column: what is wrong"; the caller adds where.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/conf_util.h"

#define SITE_MAX_RATE_MBPS	100000

const char *const sites_column_names[SITES_COL_COUNT] = {
	[SITES_COL_NAME] = "name",
	[SITES_COL_SOURCE_IP] = "source_ip",
	[SITES_COL_TRAFFIC_TYPE] = "traffic_type",
	[SITES_COL_SERVICES] = "services",
	[SITES_COL_KEEPALIVE] = "keepalive",
	[SITES_COL_ENABLED] = "enabled",
	[SITES_COL_TENANT] = "tenant",
	[SITES_COL_KEY] = "key",
	[SITES_COL_HTTP_PORTS] = "http_ports",
	[SITES_COL_RATE_MBPS] = "rate_mbps",
};

int sites_column_find(const char *name)
{
	for (int i = 0; i < SITES_COL_COUNT; i++)
		if (!strcmp(sites_column_names[i], name))
			return i;
	return -1;
}

void site_conf_init(struct site_conf *site)
{
	memset(site, 0, sizeof(*site));
	site->traffic_type = SHM_TRAFFIC_USER;
	site->services = SHM_SVC_BIT(SHM_SVC_SWG) | SHM_SVC_BIT(SHM_SVC_CFW);
	site->keepalive = true;
	site->enabled = true;
	strcpy(site->tenant, "default");
}

const char *sites_services_name(uint8_t services)
{
	switch (services) {
	case SHM_SVC_BIT(SHM_SVC_SWG):
		return "swg";
	case SHM_SVC_BIT(SHM_SVC_CFW):
		return "cfw";
	case SHM_SVC_BIT(SHM_SVC_SWG) | SHM_SVC_BIT(SHM_SVC_CFW):
		return "swg+cfw";
	}
	return "none";
}

/* "column: message". Returns -1. */
__attribute__((format(printf, 3, 4)))
static int site_fail(char *err, enum sites_column column, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, CONF_ERR_MAX, "%s: ", sites_column_names[column]);
	va_start(ap, fmt);
	vsnprintf(err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int set_name(char *field, enum sites_column column, const char *value, char *err)
{
	if (!conf_name_valid(value))
		return site_fail(err, column, "\"%.80s\" is not a valid name (1 to %d characters "
				 "of A-Z a-z 0-9 . _ -)", value, SHM_NAME_MAX - 1);
	strcpy(field, value);
	return 0;
}

static int set_source_ip(struct site_conf *site, const char *value, char *err)
{
	struct in_addr addr;

	if (inet_pton(AF_INET, value, &addr) != 1)
		return site_fail(err, SITES_COL_SOURCE_IP, "\"%.80s\" is not an IPv4 address "
				 "(a.b.c.d)", value);
	if (!conf_ipv4_unicast(addr))
		return site_fail(err, SITES_COL_SOURCE_IP, "%s is not a unicast address", value);
	site->source_ip = addr;
	return 0;
}

static int set_traffic_type(struct site_conf *site, const char *value, char *err)
{
	int type = value[0] ? shm_traffic_type_parse(value) : SHM_TRAFFIC_USER;

	if (type < 0)
		return site_fail(err, SITES_COL_TRAFFIC_TYPE, "\"%.80s\" is not a traffic type "
				 "(user, iot, mixed, machine or guest-wifi)", value);
	site->traffic_type = (enum shm_traffic_type)type;
	return 0;
}

/* "swg", "cfw", "swg+cfw" (either order). */
static int set_services(struct site_conf *site, const char *value, char *err)
{
	char copy[16], *save = NULL;
	uint8_t services = 0;
	int svc;

	if (!value[0]) {
		site->services = SHM_SVC_BIT(SHM_SVC_SWG) | SHM_SVC_BIT(SHM_SVC_CFW);
		return 0;
	}
	if (strlen(value) >= sizeof(copy) || value[strlen(value) - 1] == '+')
		goto bad;
	strcpy(copy, value);
	for (char *tok = strtok_r(copy, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		svc = shm_service_parse(tok);
		if (svc < 0 || services & SHM_SVC_BIT(svc))
			goto bad;
		services |= (uint8_t)SHM_SVC_BIT(svc);
	}
	if (!services || value[0] == '+' || strstr(value, "++"))
		goto bad;
	site->services = services;
	return 0;
bad:
	return site_fail(err, SITES_COL_SERVICES, "\"%.80s\" is not a set of services (swg, "
			 "cfw or swg+cfw)", value);
}

static int set_yes_no(bool *field, enum sites_column column, const char *value, char *err)
{
	if (!value[0] || !strcmp(value, "yes"))
		*field = true;
	else if (!strcmp(value, "no"))
		*field = false;
	else
		return site_fail(err, column, "\"%.80s\" is neither yes nor no", value);
	return 0;
}

static int set_key(struct site_conf *site, const char *value, char *err)
{
	uint64_t key;

	if (!value[0]) {
		site->has_key = false;
		site->key = 0;
		return 0;
	}
	if (!conf_parse_u64(value, UINT32_MAX, &key))
		return site_fail(err, SITES_COL_KEY, "\"%.80s\" is not a GRE key (a decimal "
				 "number 0..4294967295, or empty for none)", value);
	site->has_key = true;
	site->key = (uint32_t)key;
	return 0;
}

static int port_compare(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* "80;8080": sorted, no duplicates, at most SHM_MAX_HTTP_PORTS. */
static int set_http_ports(struct site_conf *site, const char *value, char *err)
{
	uint16_t ports[SHM_MAX_HTTP_PORTS] = { 0 };
	unsigned n = 0;
	const char *p = value;
	char text[8];

	while (*p) {
		size_t len = strcspn(p, ";");

		if (n == SHM_MAX_HTTP_PORTS)
			return site_fail(err, SITES_COL_HTTP_PORTS, "more than %d ports",
					 SHM_MAX_HTTP_PORTS);
		if (len == 0 || len >= sizeof(text))
			goto bad;
		memcpy(text, p, len);
		text[len] = '\0';
		if (!conf_port_valid(text, &ports[n]))
			goto bad;
		for (unsigned i = 0; i < n; i++)
			if (ports[i] == ports[n])
				return site_fail(err, SITES_COL_HTTP_PORTS,
						 "port %u is listed twice", ports[n]);
		n++;
		p += len;
		if (*p == ';' && !*++p)
			goto bad;
	}
	qsort(ports, n, sizeof(ports[0]), port_compare);
	memcpy(site->http_ports, ports, sizeof(ports));
	site->n_http_ports = n;
	return 0;
bad:
	return site_fail(err, SITES_COL_HTTP_PORTS, "\"%.80s\" is not a list of ports "
			 "(1..65535 separated by ';', e.g. 80;8080)", value);
}

static int set_rate(struct site_conf *site, const char *value, char *err)
{
	uint64_t mbps = 0;

	if (value[0] && (!conf_parse_u64(value, SITE_MAX_RATE_MBPS, &mbps) || mbps == 0))
		return site_fail(err, SITES_COL_RATE_MBPS, "\"%.80s\" is not a rate in Mbit/s "
				 "(1..%d, or empty for the POP's default)", value,
				 SITE_MAX_RATE_MBPS);
	site->rate_bps = mbps * 1000000;
	return 0;
}

int site_conf_set_column(struct site_conf *site, enum sites_column column, const char *value,
			 char err[CONF_ERR_MAX])
{
	if (!value[0] && (column == SITES_COL_NAME || column == SITES_COL_SOURCE_IP))
		return site_fail(err, column, "must not be empty");
	for (const unsigned char *c = (const unsigned char *)value; *c; c++)
		if (*c < ' ' || *c == 0x7f)
			return site_fail(err, column, "control character 0x%02x in the value", *c);
	switch (column) {
	case SITES_COL_NAME:
		return set_name(site->name, column, value, err);
	case SITES_COL_SOURCE_IP:
		return set_source_ip(site, value, err);
	case SITES_COL_TRAFFIC_TYPE:
		return set_traffic_type(site, value, err);
	case SITES_COL_SERVICES:
		return set_services(site, value, err);
	case SITES_COL_KEEPALIVE:
		return set_yes_no(&site->keepalive, column, value, err);
	case SITES_COL_ENABLED:
		return set_yes_no(&site->enabled, column, value, err);
	case SITES_COL_TENANT:
		return set_name(site->tenant, column, value[0] ? value : "default", err);
	case SITES_COL_KEY:
		return set_key(site, value, err);
	case SITES_COL_HTTP_PORTS:
		return set_http_ports(site, value, err);
	case SITES_COL_RATE_MBPS:
		return set_rate(site, value, err);
	case SITES_COL_COUNT:
		break;
	}
	return site_fail(err, SITES_COL_NAME, "internal error: bad column %d", column);
}

int site_conf_set(struct site_conf *site, const char *column, const char *value,
		  char err[CONF_ERR_MAX])
{
	int col = sites_column_find(column);

	if (col < 0) {
		snprintf(err, CONF_ERR_MAX, "%.64s: unknown column (known: name, source_ip, "
			 "traffic_type, services, keepalive, enabled, tenant, key, http_ports, "
			 "rate_mbps)", column);
		return -1;
	}
	return site_conf_set_column(site, (enum sites_column)col, value, err);
}

void site_conf_format(const struct site_conf *site, enum sites_column column, char *buf,
		      size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	switch (column) {
	case SITES_COL_NAME:
		snprintf(buf, len, "%s", site->name);
		break;
	case SITES_COL_SOURCE_IP:
		inet_ntop(AF_INET, &site->source_ip, buf, (socklen_t)len);
		break;
	case SITES_COL_TRAFFIC_TYPE:
		snprintf(buf, len, "%s", shm_traffic_type_name(site->traffic_type));
		break;
	case SITES_COL_SERVICES:
		snprintf(buf, len, "%s", sites_services_name(site->services));
		break;
	case SITES_COL_KEEPALIVE:
		snprintf(buf, len, "%s", site->keepalive ? "yes" : "no");
		break;
	case SITES_COL_ENABLED:
		snprintf(buf, len, "%s", site->enabled ? "yes" : "no");
		break;
	case SITES_COL_TENANT:
		snprintf(buf, len, "%s", site->tenant);
		break;
	case SITES_COL_KEY:
		if (site->has_key)
			snprintf(buf, len, "%u", site->key);
		break;
	case SITES_COL_HTTP_PORTS:
		for (unsigned i = 0; i < site->n_http_ports && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%s%u", i ? ";" : "",
					      site->http_ports[i]);
		break;
	case SITES_COL_RATE_MBPS:
		if (site->rate_bps)
			snprintf(buf, len, "%llu", (unsigned long long)(site->rate_bps / 1000000));
		break;
	case SITES_COL_COUNT:
		break;
	}
}
