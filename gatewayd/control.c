/*
 * gatewayd's control thread side: applying site changes and answering
 * control requests (docs/architecture.md, "Control protocol").
 *
 * A change is built on a copy of the running sites, validated whole, written
 * to the sites file, and only then applied to the tables, nftables and
 * shared memory. A refused change leaves every one of them as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <jansson.h>

#include "gatewayd/control.h"
#include "gatewayd/l2.h"
#include "gatewayd/nft.h"
#include "lib/log.h"
#include "lib/timeutil.h"

static void site_changed(struct gw *gw, const struct site_conf *before,
			 const struct site_conf *after)
{
	const char *name = after ? after->name : before->name;
	const char *type;

	if (!before)
		type = "site.added";
	else if (!after)
		type = "site.deleted";
	else if (before->enabled != after->enabled)
		type = after->enabled ? "site.enabled" : "site.disabled";
	else
		type = "site.changed";
	log_info("site %s: %s", name, type + 5);
	if (gw->events)
		events_send(gw->events, type, json_pack("{s:s}", "site", name));
}

/* The source IPs nftables must let through: every configured site's. */
static int sync_nft(struct gw *gw, const struct sites *sites)
{
	struct in_addr *ips = calloc(sites->n + 1, sizeof(*ips));
	int r;

	if (!ips)
		return -ENOMEM;
	for (unsigned i = 0; i < sites->n; i++)
		ips[i] = sites->site[i].source_ip;
	r = nft_set_sites(ips, sites->n);
	free(ips);
	return r;
}

int gw_sites_replace(struct gw *gw, struct sites *next, bool persist, char err[CONF_ERR_MAX])
{
	int r;

	if (next->n > gw->shm.hdr->site_capacity) {
		snprintf(err, CONF_ERR_MAX, "%u sites do not fit the %u slots of shared memory "
			 "(raise gateway.max_sites and recreate the state file)", next->n,
			 gw->shm.hdr->site_capacity);
		return -ENOSPC;
	}
	if (persist) {
		r = sites_save(next, gw->conf.sites_file);
		if (r < 0) {
			snprintf(err, CONF_ERR_MAX, "cannot write %s: %s", gw->conf.sites_file,
				 strerror(-r));
			return r;
		}
	}
	r = sitetab_apply(gw, next, site_changed);
	if (r < 0) {
		snprintf(err, CONF_ERR_MAX, "cannot apply sites: %s", strerror(-r));
		return r;
	}
	/* io = ring: new sites' next hops now; what remains at the next ticks. */
	l2_refresh(gw, L2_REFRESH_PER_TICK);
	r = sync_nft(gw, next);
	if (r < 0)
		log_warning("nftables: cannot update the set of site source IPs: %s (GRE from "
			    "new sites may be dropped by the kernel until the next change)",
			    nft_last_error());
	sites_free(&gw->sites);
	gw->sites = *next;
	memset(next, 0, sizeof(*next));
	return 0;
}

int gw_set_accept_mode(struct gw *gw, enum shm_accept mode, char err[CONF_ERR_MAX])
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 24];
	enum shm_accept old = gw->shm.hdr->pop.accept_mode;
	FILE *f;

	snprintf(path, sizeof(path), "%s/accept", gw->conf.state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", shm_accept_name(mode)) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, CONF_ERR_MAX, "cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	__atomic_store_n(&gw->shm.hdr->pop.accept_mode, mode, __ATOMIC_RELEASE);
	if (old != mode) {
		log_info("POP acceptance: %s -> %s", shm_accept_name(old), shm_accept_name(mode));
		if (gw->events)
			events_send(gw->events, "pop.accept_mode",
				    json_pack("{s:s,s:s}", "mode", shm_accept_name(mode), "from",
					      shm_accept_name(old)));
	}
	return 0;
}

enum shm_accept gw_load_accept_mode(const struct conf *conf)
{
	char path[PATH_MAX + 16], word[32] = "";
	FILE *f;
	int mode;

	snprintf(path, sizeof(path), "%s/accept", conf->state_dir);
	f = fopen(path, "r");
	if (!f)
		return SHM_ACCEPT_ACCEPT;
	if (fscanf(f, "%31s", word) != 1)
		word[0] = '\0';
	fclose(f);
	mode = shm_accept_parse(word);
	if (mode < 0) {
		log_warning("%s: unknown acceptance mode '%s', using accept", path, word);
		return SHM_ACCEPT_ACCEPT;
	}
	return mode;
}

/* Requests */

static json_t *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *reply_error(const char *fmt, ...)
{
	char msg[CONF_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * Messages quote the request, and jansson's "near '...'" and the
	 * truncation above cut anywhere, even inside a UTF-8 sequence, which
	 * json_pack refuses. Keep them ASCII so that every request gets a reply.
	 */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

json_t *site_conf_to_json(const struct site_conf *sc)
{
	char ip[INET_ADDRSTRLEN];
	json_t *ports = json_array();

	for (unsigned i = 0; i < sc->n_http_ports; i++)
		json_array_append_new(ports, json_integer(sc->http_ports[i]));
	inet_ntop(AF_INET, &sc->source_ip, ip, sizeof(ip));
	return json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:s,s:o,s:o,s:I}", "name", sc->name,
			 "source_ip", ip, "traffic_type", shm_traffic_type_name(sc->traffic_type),
			 "services", sites_services_name(sc->services), "keepalive", sc->keepalive,
			 "enabled", sc->enabled, "tenant", sc->tenant, "key",
			 sc->has_key ? json_integer(sc->key) : json_null(), "http_ports", ports,
			 "rate_mbps", (json_int_t)(sc->rate_bps / 1000000));
}

/* A JSON value as the text a sites-file cell would hold. */
static int cell_text(json_t *value, char *buf, size_t len)
{
	switch (json_typeof(value)) {
	case JSON_STRING:
		snprintf(buf, len, "%s", json_string_value(value));
		return 0;
	case JSON_INTEGER:
		snprintf(buf, len, "%lld", (long long)json_integer_value(value));
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, len, "%s", json_is_true(value) ? "yes" : "no");
		return 0;
	case JSON_NULL:
		buf[0] = '\0';
		return 0;
	case JSON_ARRAY: {
		size_t i, used = 0;
		json_t *item;

		buf[0] = '\0';
		json_array_foreach(value, i, item) {
			if (!json_is_integer(item))
				return -EINVAL;
			used += snprintf(buf + used, used < len ? len - used : 0, "%s%lld",
					 i ? ";" : "", (long long)json_integer_value(item));
		}
		return used < len ? 0 : -EINVAL;
	}
	default:
		return -EINVAL;
	}
}

/* Apply the columns of FIELDS to SC; NULL or an error reply. */
static json_t *apply_fields(struct site_conf *sc, json_t *fields, bool allow_name)
{
	char text[1024], err[CONF_ERR_MAX];
	const char *column;
	json_t *value;

	if (!json_is_object(fields))
		return reply_error("the site's fields must be an object of column: value");
	json_object_foreach(fields, column, value) {
		if (!allow_name && strcmp(column, "name") == 0)
			return reply_error("a site cannot be renamed; delete it and add it again");
		if (cell_text(value, text, sizeof(text)) < 0)
			return reply_error("%s: expected text, a number or yes/no", column);
		if (site_conf_set(sc, column, text, err) < 0)
			return reply_error("%s", err);
	}
	return NULL;
}

/* Validate NEXT, write it and apply it; the reply. NEXT is consumed. */
static json_t *commit_sites(struct gw *gw, struct sites *next, json_t *reply)
{
	char err[CONF_ERR_MAX];

	if (sites_validate(next, &gw->conf, err) < 0 || gw_sites_replace(gw, next, true, err) < 0) {
		sites_free(next);
		json_decref(reply);
		return reply_error("%s", err);
	}
	return reply;
}

static json_t *cmd_site_list(struct gw *gw, json_t *req)
{
	json_t *list = json_array();

	for (unsigned i = 0; i < gw->sites.n; i++)
		json_array_append_new(list, site_conf_to_json(&gw->sites.site[i]));
	return json_pack("{s:b,s:o}", "ok", 1, "sites", list);
}

static json_t *cmd_site_add(struct gw *gw, json_t *req)
{
	json_t *fields = json_object_get(req, "site"), *bad;
	struct site_conf sc;
	struct sites next;

	site_conf_init(&sc);
	bad = apply_fields(&sc, fields, true);
	if (bad)
		return bad;
	if (!json_object_get(fields, "name") || !json_object_get(fields, "source_ip"))
		return reply_error("a new site needs a name and a source_ip");
	if (sites_find(&gw->sites, sc.name))
		return reply_error("site %s exists already (use site edit)", sc.name);
	if (sites_copy(&next, &gw->sites) < 0 || sites_add(&next, &sc) < 0) {
		sites_free(&next);
		return reply_error("out of memory");
	}
	return commit_sites(gw, &next, json_pack("{s:b,s:o}", "ok", 1, "site",
						 site_conf_to_json(&sc)));
}

static json_t *cmd_site_edit(struct gw *gw, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	struct site_conf *sc;
	struct sites next;
	json_t *bad;

	if (!name)
		return reply_error("site.edit needs a name");
	if (!sites_find(&gw->sites, name))
		return reply_error("no site named %s", name);
	if (sites_copy(&next, &gw->sites) < 0)
		return reply_error("out of memory");
	sc = sites_find(&next, name);
	bad = apply_fields(sc, json_object_get(req, "set"), false);
	if (bad) {
		sites_free(&next);
		return bad;
	}
	return commit_sites(gw, &next, json_pack("{s:b,s:o}", "ok", 1, "site",
						 site_conf_to_json(sc)));
}

/* site.enable, site.disable and site.delete: all names or none. */
static json_t *cmd_site_each(struct gw *gw, json_t *req, const char *what)
{
	json_t *names = json_object_get(req, "names"), *item;
	struct sites next;
	size_t i;

	if (!json_is_array(names) || json_array_size(names) == 0)
		return reply_error("site.%s needs \"names\": a list of site names", what);
	json_array_foreach(names, i, item) {
		if (!json_is_string(item) || !sites_find(&gw->sites, json_string_value(item)))
			return reply_error("no site named %s; nothing was changed",
					   json_is_string(item) ? json_string_value(item) : "?");
	}
	if (sites_copy(&next, &gw->sites) < 0)
		return reply_error("out of memory");
	json_array_foreach(names, i, item) {
		const char *name = json_string_value(item);

		if (strcmp(what, "delete") == 0)
			sites_remove(&next, name);
		else if (sites_find(&next, name))
			sites_find(&next, name)->enabled = strcmp(what, "enable") == 0;
	}
	return commit_sites(gw, &next, json_pack("{s:b,s:O}", "ok", 1, "names", names));
}

static json_t *cmd_site_import(struct gw *gw, json_t *req)
{
	const char *csv = json_string_value(json_object_get(req, "csv"));
	const char *file = json_string_value(json_object_get(req, "file"));
	json_t *added, *changed, *removed, *reply;
	char err[CONF_ERR_MAX];
	struct sites next;

	if (!csv)
		return reply_error("site.import needs \"csv\": the file's text");
	if (sites_parse(&next, file ? file : "import", csv, strlen(csv), &gw->conf, err) < 0)
		return reply_error("%s", err);
	added = json_array();
	changed = json_array();
	removed = json_array();
	for (unsigned i = 0; i < next.n; i++) {
		const struct site_conf *old = sites_find(&gw->sites, next.site[i].name);

		if (!old)
			json_array_append_new(added, json_string(next.site[i].name));
		else if (memcmp(old, &next.site[i], sizeof(*old)) != 0)
			json_array_append_new(changed, json_string(next.site[i].name));
	}
	for (unsigned i = 0; i < gw->sites.n; i++)
		if (!sites_find(&next, gw->sites.site[i].name))
			json_array_append_new(removed, json_string(gw->sites.site[i].name));
	reply = json_pack("{s:b,s:o,s:o,s:o,s:b}", "ok", 1, "added", added, "changed", changed,
			  "removed", removed, "dry_run", json_is_true(json_object_get(req,
										 "dry_run")));
	if (json_is_true(json_object_get(req, "dry_run"))) {
		sites_free(&next);
		return reply;
	}
	return commit_sites(gw, &next, reply);
}

static json_t *cmd_site_export(struct gw *gw, json_t *req)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	json_t *reply;

	if (!f)
		return reply_error("out of memory");
	sites_write(&gw->sites, f);
	fclose(f);
	reply = json_pack("{s:b,s:s}", "ok", 1, "csv", text ? text : "");
	free(text);
	return reply;
}

static json_t *cmd_pop_accept(struct gw *gw, json_t *req)
{
	const char *word = json_string_value(json_object_get(req, "mode"));
	int mode = word ? shm_accept_parse(word) : -1;
	char err[CONF_ERR_MAX];

	if (mode < 0)
		return reply_error("pop.accept needs \"mode\": accept, no-new or drain");
	if (gw_set_accept_mode(gw, mode, err) < 0)
		return reply_error("%s", err);
	return json_pack("{s:b,s:s}", "ok", 1, "mode", shm_accept_name(mode));
}

static json_t *cmd_reload(struct gw *gw, json_t *req)
{
	char err[CONF_ERR_MAX];

	if (gw_reload(gw, err) < 0)
		return reply_error("%s", err);
	return json_pack("{s:b,s:i}", "ok", 1, "sites", (int)gw->sites.n);
}

static const struct {
	const char *name;
	json_t *(*run)(struct gw *gw, json_t *req);
} commands[] = {
	{ "site.list", cmd_site_list },
	{ "site.add", cmd_site_add },
	{ "site.edit", cmd_site_edit },
	{ "site.import", cmd_site_import },
	{ "site.export", cmd_site_export },
	{ "pop.accept", cmd_pop_accept },
	{ "reload", cmd_reload },
};

char *control_handle(struct gw *gw, const char *request, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(request, len, 0, &jerr), *reply = NULL;
	const char *command = json_string_value(json_object_get(req, "command"));
	char *text;

	if (!req || !json_is_object(req)) {
		reply = reply_error("request is not a JSON object: %s", req ? "" : jerr.text);
	} else if (!command) {
		reply = reply_error("request has no \"command\"");
	} else if (strcmp(command, "site.enable") == 0 || strcmp(command, "site.disable") == 0 ||
		   strcmp(command, "site.delete") == 0) {
		reply = cmd_site_each(gw, req, command + 5);
	} else {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !reply; i++)
			if (strcmp(command, commands[i].name) == 0)
				reply = commands[i].run(gw, req);
		if (!reply)
			reply = reply_error("unknown command '%s'", command);
	}
	json_decref(req);
	text = json_dumps(reply, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(reply);
	return text;
}

/* Name the keys of NEXT that differ from the running ones but need a restart. */
static void warn_restart_keys(const struct conf *cur, const struct conf *next)
{
	char keys[256] = "";

	if (cur->gateway_ip.s_addr != next->gateway_ip.s_addr)
		strcat(keys, " pop.gateway_ip");
	if (cur->probe_ip.s_addr != next->probe_ip.s_addr)
		strcat(keys, " pop.probe_ip");
	if (strcmp(cur->wan_interface, next->wan_interface) != 0)
		strcat(keys, " pop.wan_interface");
	if (cur->tunnel_mtu != next->tunnel_mtu)
		strcat(keys, " pop.tunnel_mtu");
	if (strcmp(cur->runtime_dir, next->runtime_dir) != 0)
		strcat(keys, " runtime_dir");
	if (cur->n_tenants != next->n_tenants ||
	    memcmp(cur->tenants, next->tenants, sizeof(cur->tenants[0]) * cur->n_tenants) != 0)
		strcat(keys, " tenants");
	if (cur->workers != next->workers || cur->io != next->io)
		strcat(keys, " gateway.workers/io");
	if (cur->offload != next->offload)
		strcat(keys, " gateway.offload");
	if (cur->max_sites != next->max_sites)
		strcat(keys, " gateway.max_sites");
	if (cur->default_rate_bps != next->default_rate_bps)
		strcat(keys, " gateway.default_rate_mbps");
	if (keys[0])
		log_warning("reload: changed keys need a restart and keep their running values:%s",
			    keys);
}

int gw_reload(struct gw *gw, char err[CONF_ERR_MAX])
{
	struct conf *next = malloc(sizeof(*next));
	struct sites sites = { 0 };
	int r = -EINVAL;

	if (!next) {
		snprintf(err, CONF_ERR_MAX, "out of memory");
		return -ENOMEM;
	}
	if (conf_load(next, gw->conf.path, err) < 0)
		goto out;
	if (sites_load(&sites, next->sites_file, next, err) < 0)
		goto out;
	warn_restart_keys(&gw->conf, next);
	r = gw_sites_replace(gw, &sites, false, err);
	if (r < 0) {
		sites_free(&sites);
		goto out;
	}
	/* Keys that apply live; the two the workers read, atomically (relaxed). */
	gw->conf.keepalive_window_s = next->keepalive_window_s;
	__atomic_store_n(&gw->conf.tunnel_idle_s, next->tunnel_idle_s, __ATOMIC_RELAXED);
	gw->conf.endpoint_idle_s = next->endpoint_idle_s;
	gw->conf.health_interval_ms = next->health_interval_ms;
	__atomic_store_n(&gw->health_stale_ns, 3ULL * next->health_interval_ms * NSEC_PER_MSEC,
			 __ATOMIC_RELAXED);
	memcpy(gw->conf.sites_file, next->sites_file, sizeof(next->sites_file));
	memcpy(gw->conf.location, next->location, sizeof(next->location));
	gw->conf.n_backup_pops = next->n_backup_pops;
	memcpy(gw->conf.backup_pops, next->backup_pops, sizeof(next->backup_pops));
	log_info("configuration reloaded: %u sites", gw->sites.n);
	r = 0;
out:
	free(next);
	return r;
}
