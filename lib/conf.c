/*
 * The configuration loader.
 *
 * libconfig parses the file; this file walks what it parsed against a
 * schema: one table of keys per group, each with its parser, the field it
 * fills and its range. Walking the settings that are present (rather than
 * looking up the keys that are expected) is what lets a misspelt key be
 * reported instead of silently ignored. Every message names the file, the
 * line of the offending setting and its path ("pop.tunnel_mtu",
 * "tenants[1].routes[0]"), and says what would be accepted.
 *
 * The load goes into a scratch structure that is copied out only when the
 * whole file was valid, so a caller never sees half a configuration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/conf.h"
#include "lib/conf_util.h"

/* ZeroMQ ipc:// paths must fit in sun_path (107 bytes) with the file name. */
#define CONF_RUNTIME_DIR_MAX	90

struct conf_loader {
	struct conf *conf;
	const char *file;
	char *err;
};

struct conf_key;
typedef int (*conf_key_parser)(struct conf_loader *ld, const config_setting_t *s,
			       const struct conf_key *key, void *base);

struct conf_key {
	const char *name;
	conf_key_parser parse;
	size_t offset;			/* of the field in BASE */
	size_t size;			/* of a string field */
	long long min, max;		/* integer range; min 1 = non-empty string */
	const struct conf_key *children;	/* of a group */
	bool required;
};

static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	const char *name = config_setting_name(s);
	size_t n;

	buf[0] = '\0';
	if (!parent)
		return;
	setting_path(parent, buf, len);
	n = strlen(buf);
	if (name)
		snprintf(buf + n, len - n, "%s%s", n ? "." : "", name);
	else
		snprintf(buf + n, len - n, "[%d]", config_setting_index(s));
}

static unsigned setting_line(const config_setting_t *s)
{
	for (; s; s = config_setting_parent(s))
		if (config_setting_source_line(s) > 0)
			return config_setting_source_line(s);
	return 1;
}

/* The file S came from: an @include'd one or the main file. */
static const char *setting_file(const struct conf_loader *ld, const config_setting_t *s)
{
	for (; s; s = config_setting_parent(s))
		if (config_setting_source_file(s))
			return config_setting_source_file(s);
	return ld->file;
}

/* "file:line: path: message" about setting S. Returns -1. */
__attribute__((format(printf, 3, 4)))
static int conf_fail(struct conf_loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	char path[128];
	va_list ap;
	int n;

	setting_path(s, path, sizeof(path));
	n = snprintf(ld->err, CONF_ERR_MAX, "%s:%u: %s%s", setting_file(ld, s), setting_line(s),
		     path, path[0] ? ": " : "");
	if (n < 0 || n >= CONF_ERR_MAX)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *setting_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group { }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a floating-point number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [ ]";
	case CONFIG_TYPE_LIST:
		return "a list ( )";
	}
	return "nothing";
}

static int conf_fail_type(struct conf_loader *ld, const config_setting_t *s, const char *want)
{
	return conf_fail(ld, s, "expected %s, got %s", want, setting_type_name(s));
}

static void *field_at(void *base, const struct conf_key *key)
{
	return (char *)base + key->offset;
}

/* The string value of S, checked for type and printable characters. */
static const char *setting_text(struct conf_loader *ld, const config_setting_t *s)
{
	const char *text;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_fail_type(ld, s, "a string");
		return NULL;
	}
	text = config_setting_get_string(s);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c < 0x20 || *c == 0x7f) {
			conf_fail(ld, s, "control character 0x%02x in the string; remove it", *c);
			return NULL;
		}
	}
	return text;
}

static int key_string(struct conf_loader *ld, const config_setting_t *s,
		      const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (key->min > 0 && !text[0])
		return conf_fail(ld, s, "must not be empty");
	if (strlen(text) >= key->size)
		return conf_fail(ld, s, "\"%s\" is too long (at most %zu characters)", text,
				 key->size - 1);
	strcpy(field_at(base, key), text);
	return 0;
}

static int key_name(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (!conf_name_valid(text))
		return conf_fail(ld, s, "\"%s\" is not a valid name (1 to %d characters of "
				 "A-Z a-z 0-9 . _ -)", text, SHM_NAME_MAX - 1);
	strcpy(field_at(base, key), text);
	return 0;
}

static int key_ifname(struct conf_loader *ld, const config_setting_t *s,
		      const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (!conf_ifname_valid(text))
		return conf_fail(ld, s, "\"%s\" is not a valid interface name (1 to %d "
				 "characters, no '/', ':' or spaces)", text, IFNAMSIZ - 1);
	strcpy(field_at(base, key), text);
	return 0;
}

static int key_path(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (text[0] != '/')
		return conf_fail(ld, s, "\"%s\" is not an absolute path (it must start with /)",
				 text);
	if (strlen(text) > (size_t)key->max)
		return conf_fail(ld, s, "path is %zu characters long, at most %lld allowed",
				 strlen(text), key->max);
	strcpy(field_at(base, key), text);
	return 0;
}

static int setting_integer(struct conf_loader *ld, const config_setting_t *s,
			   const struct conf_key *key, long long *value)
{
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
		return conf_fail_type(ld, s, "an integer");
	*value = config_setting_get_int64(s);
	if (*value < key->min || *value > key->max)
		return conf_fail(ld, s, "%lld is out of range (%lld..%lld)%s", *value, key->min,
				 key->max, type == CONFIG_TYPE_INT && *value < 0 && key->min >= 0 ?
				 "; integers above 2147483647 need an L suffix" : "");
	return 0;
}

static int key_uint(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	long long value = 0;

	if (setting_integer(ld, s, key, &value) < 0)
		return -1;
	*(unsigned *)field_at(base, key) = (unsigned)value;
	return 0;
}

/* Mbit/s in the file, bit/s in the structure. */
static int key_rate(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	long long value = 0;

	if (setting_integer(ld, s, key, &value) < 0)
		return -1;
	*(uint64_t *)field_at(base, key) = (uint64_t)value * 1000000;
	return 0;
}

/* MIN 0: 0.0.0.0 allowed (meaning "none"); MIN 1: a unicast address. */
static int key_ipv4(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);
	struct in_addr addr;

	if (!text)
		return -1;
	if (inet_pton(AF_INET, text, &addr) != 1)
		return conf_fail(ld, s, "\"%s\" is not an IPv4 address (a.b.c.d)", text);
	if (!(key->min == 0 && addr.s_addr == 0) && !conf_ipv4_unicast(addr))
		return conf_fail(ld, s, "%s is not a unicast address", text);
	*(struct in_addr *)field_at(base, key) = addr;
	return 0;
}

static int key_io(struct conf_loader *ld, const config_setting_t *s,
		  const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);
	enum conf_io *io = field_at(base, key);

	if (!text)
		return -1;
	if (!strcmp(text, "socket"))
		*io = CONF_IO_SOCKET;
	else if (!strcmp(text, "ring"))
		*io = CONF_IO_RING;
	else if (!strcmp(text, "xdp"))
		*io = CONF_IO_XDP;
	else
		return conf_fail(ld, s, "\"%s\" is not an I/O mode (socket, ring or xdp)", text);
	return 0;
}

static int key_bool(struct conf_loader *ld, const config_setting_t *s,
		    const struct conf_key *key, void *base)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_fail_type(ld, s, "true or false");
	*(bool *)field_at(base, key) = config_setting_get_bool(s);
	return 0;
}

static int key_hostport(struct conf_loader *ld, const config_setting_t *s,
			const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (strlen(text) >= key->size || !conf_hostport_valid(text))
		return conf_fail(ld, s, "\"%s\" is not an IPv4:port address", text);
	strcpy(field_at(base, key), text);
	return 0;
}

/* A ZeroMQ endpoint: tcp://IPv4:port, tcp://(star):port or ipc:///path. */
static int key_endpoint(struct conf_loader *ld, const config_setting_t *s,
			const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);
	bool ok;

	if (!text)
		return -1;
	if (!strncmp(text, "tcp://*:", 8))
		ok = conf_port_valid(text + 8, NULL);
	else if (!strncmp(text, "tcp://", 6))
		ok = conf_hostport_valid(text + 6);
	else
		ok = !strncmp(text, "ipc:///", 7);
	if (!ok || strlen(text) >= key->size)
		return conf_fail(ld, s, "\"%s\" is not a ZeroMQ endpoint (tcp://IPv4:port, "
				 "tcp://*:port or ipc:///path)", text);
	strcpy(field_at(base, key), text);
	return 0;
}

/* http://IPv4[:port]/path */
static int key_url(struct conf_loader *ld, const config_setting_t *s,
		   const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);

	if (!text)
		return -1;
	if (strlen(text) >= key->size || !conf_http_url_valid(text))
		return conf_fail(ld, s, "\"%s\" is not an http://IPv4[:port]/path URL", text);
	strcpy(field_at(base, key), text);
	return 0;
}

static int key_service(struct conf_loader *ld, const config_setting_t *s,
		       const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);
	int svc;

	if (!text)
		return -1;
	svc = shm_service_parse(text);
	if (svc < 0)
		return conf_fail(ld, s, "\"%s\" is not a service (swg or cfw)", text);
	*(enum shm_service *)field_at(base, key) = (enum shm_service)svc;
	return 0;
}

static int key_check_type(struct conf_loader *ld, const config_setting_t *s,
			  const struct conf_key *key, void *base)
{
	const char *text = setting_text(ld, s);
	enum conf_check_type *type = field_at(base, key);

	if (!text)
		return -1;
	if (!strcmp(text, "http"))
		*type = CONF_CHECK_HTTP;
	else if (!strcmp(text, "tcp"))
		*type = CONF_CHECK_TCP;
	else
		return conf_fail(ld, s, "\"%s\" is not a check type (http or tcp)", text);
	return 0;
}

static const struct conf_key *key_find(const struct conf_key *table, const char *name)
{
	for (; table->name; table++)
		if (!strcmp(table->name, name))
			return table;
	return NULL;
}

static int conf_fail_unknown(struct conf_loader *ld, const config_setting_t *s,
			     const struct conf_key *table)
{
	char known[256] = "";
	size_t n = 0;

	for (; table->name && n < sizeof(known); table++)
		n += snprintf(known + n, sizeof(known) - n, "%s%s", n ? ", " : "", table->name);
	return conf_fail(ld, s, "unknown setting (known here: %s)", known);
}

/* Parse every member of GROUP with TABLE into BASE; then the required ones. */
static int conf_parse_members(struct conf_loader *ld, const config_setting_t *group,
			      const struct conf_key *table, void *base)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, i);
		const struct conf_key *key = key_find(table, config_setting_name(s));

		if (!key)
			return conf_fail_unknown(ld, s, table);
		if (key->parse(ld, s, key, base) < 0)
			return -1;
	}
	for (; table->name; table++) {
		if (table->required && !config_setting_get_member(group, table->name)) {
			char path[128];

			setting_path(group, path, sizeof(path));
			snprintf(ld->err, CONF_ERR_MAX, "%s:%u: %s%s%s is missing; it has no "
				 "default", setting_file(ld, group), setting_line(group), path,
				 path[0] ? "." : "", table->name);
			return -1;
		}
	}
	return 0;
}

static int key_group(struct conf_loader *ld, const config_setting_t *s,
		     const struct conf_key *key, void *base)
{
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return conf_fail_type(ld, s, "a group { }");
	return conf_parse_members(ld, s, key->children, base);
}

static bool setting_is_sequence(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_LIST ||
	       config_setting_type(s) == CONFIG_TYPE_ARRAY;
}

static int key_backup_pops(struct conf_loader *ld, const config_setting_t *s,
			   const struct conf_key *key, void *base)
{
	struct conf *conf = base;
	struct conf_key elem_key = { .name = "", .size = SHM_NAME_MAX };
	int n = config_setting_length(s);

	if (!setting_is_sequence(s))
		return conf_fail_type(ld, s, "a list ( \"name\", ... )");
	if (n > CONF_MAX_BACKUP_POPS)
		return conf_fail(ld, s, "%d backup POPs, at most %d allowed", n,
				 CONF_MAX_BACKUP_POPS);
	conf->n_backup_pops = 0;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		elem_key.offset = offsetof(struct conf, backup_pops[i]);
		if (key_name(ld, e, &elem_key, conf) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			if (!strcmp(conf->backup_pops[j], conf->backup_pops[i]))
				return conf_fail(ld, e, "\"%s\" is listed twice",
						 conf->backup_pops[i]);
		conf->n_backup_pops++;
	}
	return 0;
}

static int key_routes(struct conf_loader *ld, const config_setting_t *s,
		      const struct conf_key *key, void *base)
{
	struct conf_tenant *tenant = base;
	int n = config_setting_length(s);

	if (!setting_is_sequence(s))
		return conf_fail_type(ld, s, "a list ( \"prefix/len\", ... )");
	if (n > CONF_MAX_ROUTES)
		return conf_fail(ld, s, "%d routes, at most %d allowed", n, CONF_MAX_ROUTES);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *text = setting_text(ld, e);
		struct conf_prefix *p = &tenant->routes[i];
		char why[128];

		if (!text)
			return -1;
		if (conf_prefix_parse(p, text, why, sizeof(why)) < 0)
			return conf_fail(ld, e, "%s", why);
		for (int j = 0; j < i; j++)
			if (conf_prefix_equal(&tenant->routes[j], p))
				return conf_fail(ld, e, "%s is listed twice", text);
	}
	tenant->n_routes = (unsigned)n;
	return 0;
}

static int key_table(struct conf_loader *ld, const config_setting_t *s,
		     const struct conf_key *key, void *base)
{
	long long value = 0;

	if (setting_integer(ld, s, key, &value) < 0)
		return -1;
	if (value >= 253 && value <= 255)
		return conf_fail(ld, s, "table %lld is reserved by the kernel (253 default, "
				 "254 main, 255 local); use 0 for the main table", value);
	*(uint32_t *)field_at(base, key) = (uint32_t)value;
	return 0;
}

#define TENANT_KEY(f) \
	.offset = offsetof(struct conf_tenant, f), .size = sizeof(((struct conf_tenant *)0)->f)

static const struct conf_key tenant_keys[] = {
	{ .name = "name", .parse = key_name, TENANT_KEY(name), .required = true },
	{ .name = "tun", .parse = key_ifname, TENANT_KEY(tun), .required = true },
	{ .name = "table", .parse = key_table, TENANT_KEY(table), .max = UINT32_MAX },
	{ .name = "downstream", .parse = key_ifname, TENANT_KEY(downstream) },
	{ .name = "routes", .parse = key_routes },
	{ .name = NULL }
};

/* Index of the first route of T that U routes in the same table, or -1. */
static int tenant_route_clash(const struct conf_tenant *t, const struct conf_tenant *u)
{
	if (t->table != u->table)
		return -1;
	for (unsigned r = 0; r < t->n_routes; r++)
		for (unsigned q = 0; q < u->n_routes; q++)
			if (conf_prefix_equal(&t->routes[r], &u->routes[q]))
				return (int)r;
	return -1;
}

/* Names and TUN devices are unique; one table routes a prefix only once. */
static int tenant_check_unique(struct conf_loader *ld, const config_setting_t *elem,
			       const struct conf *conf, unsigned i)
{
	const struct conf_tenant *t = &conf->tenants[i];
	const config_setting_t *routes = config_setting_get_member(elem, "routes");

	for (unsigned j = 0; j < i; j++) {
		const struct conf_tenant *u = &conf->tenants[j];
		int clash = tenant_route_clash(t, u);

		if (!strcmp(u->name, t->name))
			return conf_fail(ld, config_setting_get_member(elem, "name"),
					 "tenant \"%s\" is already defined in tenants[%u]",
					 t->name, j);
		if (!strcmp(u->tun, t->tun))
			return conf_fail(ld, config_setting_get_member(elem, "tun"),
					 "\"%s\" is already the TUN device of tenant \"%s\"",
					 t->tun, u->name);
		if (clash >= 0)
			return conf_fail(ld, config_setting_get_elem(routes, (unsigned)clash),
					 "this prefix is already routed to tenant \"%s\" in the "
					 "same table (%u)", u->name, u->table);
	}
	return 0;
}

static int key_tenants(struct conf_loader *ld, const config_setting_t *s,
		       const struct conf_key *key, void *base)
{
	struct conf *conf = base;
	int n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return conf_fail_type(ld, s, "a list ( { name = ...; tun = ...; }, ... )");
	if (n < 1 || n > CONF_MAX_TENANTS)
		return conf_fail(ld, s, "%d tenants, 1 to %d allowed", n, CONF_MAX_TENANTS);
	memset(conf->tenants, 0, sizeof(conf->tenants));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return conf_fail_type(ld, e, "a group { name = ...; tun = ...; }");
		if (conf_parse_members(ld, e, tenant_keys, &conf->tenants[i]) < 0)
			return -1;
		if (tenant_check_unique(ld, e, conf, (unsigned)i) < 0)
			return -1;
		if (conf->tenants[i].downstream[0] && !conf->tenants[i].table)
			return conf_fail(ld, config_setting_get_member(e, "downstream"),
					 "a downstream interface needs the tenant's own table "
					 "(table = 1..252 or above 255)");
	}
	conf->n_tenants = (unsigned)n;
	return 0;
}

#define CHECK_KEY(f) \
	.offset = offsetof(struct conf_check, f), .size = sizeof(((struct conf_check *)0)->f)

static const struct conf_key check_keys[] = {
	{ .name = "service", .parse = key_service, CHECK_KEY(service), .required = true },
	{ .name = "type", .parse = key_check_type, CHECK_KEY(type), .required = true },
	{ .name = "url", .parse = key_url, CHECK_KEY(url) },
	{ .name = "address", .parse = key_hostport, CHECK_KEY(address) },
	{ .name = NULL }
};

/* An http check needs a url and no address; a tcp check the reverse. */
static int check_check_target(struct conf_loader *ld, const config_setting_t *elem,
			      const struct conf_check *check)
{
	bool http = check->type == CONF_CHECK_HTTP;
	const char *needed = http ? "url" : "address";
	const char *unused = http ? "address" : "url";
	const char *form = http ? "a url (http://IPv4[:port]/path)" : "an address (IPv4:port)";
	const config_setting_t *extra = config_setting_get_member(elem, unused);

	if (!config_setting_get_member(elem, needed))
		return conf_fail(ld, elem, "a %s check needs %s", http ? "http" : "tcp", form);
	if (extra)
		return conf_fail(ld, extra, "not used by a %s check; remove it",
				 http ? "http" : "tcp");
	return 0;
}

static int key_checks(struct conf_loader *ld, const config_setting_t *s,
		      const struct conf_key *key, void *base)
{
	struct conf *conf = base;
	int n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return conf_fail_type(ld, s, "a list ( { service = ...; type = ...; }, ... )");
	if (n > CONF_MAX_CHECKS)
		return conf_fail(ld, s, "%d checks, at most %d allowed", n, CONF_MAX_CHECKS);
	memset(conf->checks, 0, sizeof(conf->checks));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return conf_fail_type(ld, e, "a group { service = ...; type = ...; }");
		if (conf_parse_members(ld, e, check_keys, &conf->checks[i]) < 0 ||
		    check_check_target(ld, e, &conf->checks[i]) < 0)
			return -1;
	}
	conf->n_checks = (unsigned)n;
	return 0;
}

#define CONF_KEY(f) .offset = offsetof(struct conf, f), .size = sizeof(((struct conf *)0)->f)
#define RANGE_KEY(key, parser, f, lo, hi) \
	{ .name = key, .parse = parser, CONF_KEY(f), .min = lo, .max = hi }

static const struct conf_key pop_keys[] = {
	{ .name = "name", .parse = key_name, CONF_KEY(pop_name), .required = true },
	{ .name = "location", .parse = key_string, CONF_KEY(location) },
	{ .name = "gateway_ip", .parse = key_ipv4, CONF_KEY(gateway_ip), .min = 1,
	  .required = true },
	{ .name = "probe_ip", .parse = key_ipv4, CONF_KEY(probe_ip) },
	{ .name = "wan_interface", .parse = key_ifname, CONF_KEY(wan_interface) },
	RANGE_KEY("tunnel_mtu", key_uint, tunnel_mtu, 576, 9000),
	{ .name = "backup_pops", .parse = key_backup_pops },
	{ .name = NULL }
};

static const struct conf_key gateway_keys[] = {
	RANGE_KEY("workers", key_uint, workers, 0, SHM_MAX_LANES),
	{ .name = "io", .parse = key_io, CONF_KEY(io) },
	{ .name = "offload", .parse = key_bool, CONF_KEY(offload) },
	RANGE_KEY("max_sites", key_uint, max_sites, 1, 1000000),
	RANGE_KEY("keepalive_window_s", key_uint, keepalive_window_s, 1, 3600),
	RANGE_KEY("tunnel_idle_s", key_uint, tunnel_idle_s, 1, 86400),
	RANGE_KEY("default_rate_mbps", key_rate, default_rate_bps, 0, 100000),
	RANGE_KEY("endpoint_idle_s", key_uint, endpoint_idle_s, 1, 86400),
	{ .name = NULL }
};

static const struct conf_key health_keys[] = {
	RANGE_KEY("interval_ms", key_uint, health_interval_ms, 10, 3600000),
	RANGE_KEY("timeout_ms", key_uint, health_timeout_ms, 1, 3600000),
	RANGE_KEY("rise", key_uint, health_rise, 1, 100),
	RANGE_KEY("fall", key_uint, health_fall, 1, 100),
	{ .name = "checks", .parse = key_checks },
	{ .name = NULL }
};

static const struct conf_key stats_keys[] = {
	RANGE_KEY("interval_ms", key_uint, stats_interval_ms, 100, 3600000),
	{ .name = "feed", .parse = key_endpoint, CONF_KEY(stats_feed) },
	{ .name = "snapshot", .parse = key_endpoint, CONF_KEY(stats_snapshot) },
	{ .name = "http", .parse = key_hostport, CONF_KEY(stats_http) },
	{ .name = NULL }
};

static const struct conf_key root_keys[] = {
	{ .name = "pop", .parse = key_group, .children = pop_keys, .required = true },
	{ .name = "runtime_dir", .parse = key_path, CONF_KEY(runtime_dir),
	  .max = CONF_RUNTIME_DIR_MAX },
	{ .name = "state_dir", .parse = key_path, CONF_KEY(state_dir), .max = PATH_MAX - 64 },
	{ .name = "sites_file", .parse = key_path, CONF_KEY(sites_file), .max = PATH_MAX - 64 },
	{ .name = "tenants", .parse = key_tenants },
	{ .name = "gateway", .parse = key_group, .children = gateway_keys },
	{ .name = "health", .parse = key_group, .children = health_keys },
	{ .name = "stats", .parse = key_group, .children = stats_keys },
	{ .name = NULL }
};

static void conf_defaults(struct conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	strcpy(conf->wan_interface, "eth0");
	conf->tunnel_mtu = 1476;
	strcpy(conf->runtime_dir, "/run/grepop");
	strcpy(conf->state_dir, "/var/lib/grepop");
	strcpy(conf->sites_file, "/var/lib/grepop/sites.csv");
	conf->n_tenants = 1;
	strcpy(conf->tenants[0].name, "default");
	strcpy(conf->tenants[0].tun, "grepop0");
	conf->io = CONF_IO_SOCKET;
	conf->offload = true;
	conf->max_sites = SHM_DEFAULT_SITES;
	conf->keepalive_window_s = 60;
	conf->tunnel_idle_s = 1800;
	conf->default_rate_bps = 1000ULL * 1000000;
	conf->endpoint_idle_s = 600;
	conf->health_interval_ms = 1000;
	conf->health_timeout_ms = 500;
	conf->health_rise = 2;
	conf->health_fall = 3;
	conf->stats_interval_ms = 1000;
	strcpy(conf->stats_feed, "tcp://127.0.0.1:7401");
	strcpy(conf->stats_snapshot, "tcp://127.0.0.1:7402");
	strcpy(conf->stats_http, "127.0.0.1:9476");
}

/* Rules between keys, once every key is read. */
static int conf_check_relations(struct conf_loader *ld, const config_t *cfg)
{
	const struct conf *conf = ld->conf;

	if (conf->health_timeout_ms >= conf->health_interval_ms) {
		const config_setting_t *s = config_lookup(cfg, "health.timeout_ms");

		if (!s)
			s = config_lookup(cfg, "health.interval_ms");
		return conf_fail(ld, s, "%u must be below health.interval_ms (%u)",
				 conf->health_timeout_ms, conf->health_interval_ms);
	}
	for (unsigned i = 0; i < conf->n_backup_pops; i++)
		if (!strcmp(conf->backup_pops[i], conf->pop_name))
			return conf_fail(ld, config_lookup(cfg, "pop.backup_pops"),
					 "\"%s\" is this POP's own name", conf->pop_name);
	return 0;
}

static int conf_read(struct conf_loader *ld, config_t *cfg, const char *path)
{
	if (config_read_file(cfg, path))
		return 0;
	if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
		struct stat st;
		int saved = errno;

		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			saved = EISDIR;

		snprintf(ld->err, CONF_ERR_MAX, "%.300s:0: cannot read the file: %s", path,
			 strerror(saved ? saved : EIO));
		return -1;
	}
	snprintf(ld->err, CONF_ERR_MAX, "%.300s:%d: %s", config_error_file(cfg) ?
		 config_error_file(cfg) : path, config_error_line(cfg), config_error_text(cfg));
	return -1;
}

int conf_load(struct conf *conf, const char *path, char err[CONF_ERR_MAX])
{
	struct conf_loader ld = { .file = path, .err = err };
	config_t cfg;
	int ret = -1;

	err[0] = '\0';
	if (strlen(path) >= sizeof(conf->path)) {
		snprintf(err, CONF_ERR_MAX, "%.64s...: path too long", path);
		return -1;
	}
	ld.conf = malloc(sizeof(*ld.conf));
	if (!ld.conf) {
		snprintf(err, CONF_ERR_MAX, "%.300s:0: out of memory", path);
		return -1;
	}
	conf_defaults(ld.conf);
	strcpy(ld.conf->path, path);
	config_init(&cfg);
	if (conf_read(&ld, &cfg, path) < 0)
		goto out_destroy;
	if (conf_parse_members(&ld, config_root_setting(&cfg), root_keys, ld.conf) < 0 ||
	    conf_check_relations(&ld, &cfg) < 0)
		goto out_destroy;
	memcpy(conf, ld.conf, sizeof(*conf));
	ret = 0;
out_destroy:
	config_destroy(&cfg);
	free(ld.conf);
	return ret;
}

int conf_tenant_find(const struct conf *conf, const char *name)
{
	for (unsigned i = 0; i < conf->n_tenants; i++)
		if (!strcmp(conf->tenants[i].name, name))
			return (int)i;
	return -1;
}

void conf_runtime_path(const struct conf *conf, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", conf->runtime_dir, name);
}

void conf_ctl_endpoint(const struct conf *conf, char *buf, size_t len)
{
	snprintf(buf, len, "ipc://%s/gatewayd.ctl", conf->runtime_dir);
}

void conf_events_endpoint(const struct conf *conf, char *buf, size_t len)
{
	snprintf(buf, len, "ipc://%s/events.sock", conf->runtime_dir);
}
