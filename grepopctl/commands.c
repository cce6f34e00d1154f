#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grepopctl/commands.h"
#include "lib/timeutil.h"

#define CSV_MAX_BYTES		(64u << 20)	/* far above 100000 sites */
#define REDRAW_INTERVAL_MS	200

volatile sig_atomic_t ctl_stop;

static void print_json(const struct ctl *ctl, const json_t *v, bool one_line)
{
	json_dumpf(v, ctl->out, one_line ? JSON_COMPACT : JSON_INDENT(2));
	fputc('\n', ctl->out);
	fflush(ctl->out);
}

static double timeout_s(const struct ctl *ctl)
{
	return ctl->cli->timeout_ms / 1000.0;
}

/*
 * ZeroMQ connects to an ipc:// path in the background and only times out
 * later; a missing or forbidden socket file says more, and says it now.
 */
static int check_ipc(const char *daemon, const char *endpoint, const char *conf_key)
{
	const char *path;

	if (strncmp(endpoint, "ipc://", 6) != 0)
		return 0;
	path = endpoint + 6;
	if (access(path, F_OK) < 0) {
		fprintf(stderr, "grepopctl: cannot reach %s: %s does not exist: %s may not be "
			"running, or -c names a configuration with another %s\n",
			daemon, path, daemon, conf_key);
		return -EHOSTDOWN;
	}
	if (access(path, R_OK | W_OK) < 0) {
		fprintf(stderr, "grepopctl: cannot use %s: %m: run as root or as a user "
			"with write access to the runtime directory\n", path);
		return -EACCES;
	}
	return 0;
}

/* The message for a failed exchange with DAEMON; returns ERR. */
static int report_exchange(const struct ctl *ctl, const char *daemon, const char *endpoint,
			   int err)
{
	if (err == -ETIMEDOUT || err == -EHOSTDOWN)
		fprintf(stderr, "grepopctl: no answer from %s at %s within %.1f s: %s may not "
			"be running (-t sets how long to wait)\n", daemon, endpoint,
			timeout_s(ctl), daemon);
	else if (err == -EPROTO)
		fprintf(stderr, "grepopctl: %s at %s sent a message that does not follow the "
			"protocol (docs/architecture.md): is it another version?\n", daemon,
			endpoint);
	else
		fprintf(stderr, "grepopctl: %s at %s: %s\n", daemon, endpoint, strerror(-err));
	return err;
}

/* Send REQ to gatewayd; a refusal is printed and returns -EPERM. */
static int control(struct ctl *ctl, const json_t *req, json_t **reply)
{
	const char *error;
	int r;

	r = check_ipc("gatewayd", ctl->ctl_endpoint, "runtime_dir");
	if (r < 0)
		return r;
	r = client_request(&ctl->client, ctl->ctl_endpoint, req, reply);
	if (r < 0)
		return report_exchange(ctl, "gatewayd", ctl->ctl_endpoint, r);
	if (json_is_true(json_object_get(*reply, "ok")))
		return 0;

	error = json_string_value(json_object_get(*reply, "error"));
	if (ctl->cli->json)
		print_json(ctl, *reply, false);
	fprintf(stderr, "grepopctl: gatewayd refused: %s\n", error ? error : "(no reason given)");
	json_decref(*reply);
	*reply = NULL;
	return -EPERM;
}

/* The file named by "site import", whole, as text. */
static int read_csv(const char *path, char **text)
{
	struct stat st;
	size_t n;
	FILE *f;

	f = fopen(path, "r");
	if (!f || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > CSV_MAX_BYTES) {
		fprintf(stderr, "grepopctl: %s: %s\n", path, !f ? strerror(errno) :
			"not a regular file of at most 64 MiB");
		if (f)
			fclose(f);
		return -ENOENT;
	}
	*text = malloc((size_t)st.st_size + 1);
	n = *text ? fread(*text, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!*text)
		return -ENOMEM;
	(*text)[n] = '\0';
	if (strlen(*text) != n) {
		fprintf(stderr, "grepopctl: %s: contains a NUL byte: not a CSV file\n", path);
		free(*text);
		return -EBADMSG;
	}
	return 0;
}

static void print_control_result(struct ctl *ctl, const json_t *reply)
{
	const struct cli *cli = ctl->cli;

	switch (cli->verb) {
	case CLI_SITE_ADD:
	case CLI_SITE_EDIT:
		fprintf(ctl->out, "site %s %s\n", cli->args[0],
			cli->verb == CLI_SITE_ADD ? "added" : "changed");
		render_siteconf(json_object_get(reply, "site"), ctl->out);
		break;
	case CLI_SITE_ENABLE:
	case CLI_SITE_DISABLE:
	case CLI_SITE_DELETE:
		render_names(cli->verb == CLI_SITE_ENABLE ? "enabled" :
			     cli->verb == CLI_SITE_DISABLE ? "disabled" : "deleted",
			     json_object_get(reply, "names"), ctl->out);
		break;
	case CLI_SITE_IMPORT:
		render_import(reply, cli->dry_run, ctl->out);
		break;
	case CLI_SITE_EXPORT:
		fputs(json_string_value(json_object_get(reply, "csv")) ?: "", ctl->out);
		break;
	case CLI_RELOAD:
		fprintf(ctl->out, "reloaded: %" JSON_INTEGER_FORMAT " sites\n",
			json_integer_value(json_object_get(reply, "sites")));
		break;
	default:
		fprintf(ctl->out, "acceptance mode: %s\n",
			json_string_value(json_object_get(reply, "mode")) ?: "?");
		break;
	}
}

int cmd_control(struct ctl *ctl)
{
	char *csv = NULL;
	json_t *req, *reply = NULL;
	int r;

	if (ctl->cli->verb == CLI_SITE_IMPORT) {
		r = read_csv(ctl->cli->args[0], &csv);
		if (r < 0)
			return r;
	}
	req = cli_request(ctl->cli, csv);
	free(csv);
	if (!req)
		return -ENOMEM;
	r = control(ctl, req, &reply);
	json_decref(req);
	if (r < 0)
		return r;
	if (ctl->cli->json)
		print_json(ctl, reply, false);
	else
		print_control_result(ctl, reply);
	json_decref(reply);
	return 0;
}

/*
 * What each command keeps of a snapshot's site messages.
 * XXX: a summary still costs about 2 KB in jansson, 250 MB for a POP of
 * 100000 sites; keep rendered rows instead if a POP ever holds more.
 */
struct keep_list {
	const struct render_filter *filter;
	bool whole;			/* --json prints the messages as they came */
};

static json_t *keep_listed(json_t *site, void *arg)
{
	const struct keep_list *k = arg;

	if (!render_filter_match(k->filter, site))
		return NULL;
	return k->whole ? json_incref(site) : render_site_summary(site);
}

static json_t *keep_named(json_t *site, void *name)
{
	const char *n = json_string_value(json_object_get(site, "name"));

	return n && strcmp(n, name) == 0 ? json_incref(site) : NULL;
}

static json_t *keep_none(json_t *site, void *arg)
{
	return NULL;
}

static int snapshot(struct ctl *ctl, client_keep_fn *keep, void *arg,
		    struct client_snapshot *snap)
{
	int r = check_ipc("statsd", ctl->snapshot_endpoint, "stats.snapshot");

	if (r < 0)
		return r;
	r = client_snapshot(&ctl->client, ctl->snapshot_endpoint, keep, arg, snap);
	if (r < 0)
		return report_exchange(ctl, "statsd", ctl->snapshot_endpoint, r);
	return 0;
}

static void print_page_json(struct ctl *ctl, const struct render_page *page)
{
	json_t *out = json_pack("{s:O, s:I}", "sites", page->sites, "total",
				(json_int_t)page->total);

	if (page->page) {
		json_object_set_new(out, "page", json_integer(page->page));
		json_object_set_new(out, "pages", json_integer(page->pages));
	}
	print_json(ctl, out, false);
	json_decref(out);
}

int cmd_site_list(struct ctl *ctl)
{
	const struct cli *cli = ctl->cli;
	unsigned want = cli->page ? cli->page : (cli->json ? 0 : 1);
	struct keep_list keep = { .filter = &cli->filter, .whole = cli->json };
	struct client_snapshot snap;
	struct render_page page;
	int r;

	r = snapshot(ctl, keep_listed, &keep, &snap);
	if (r < 0)
		return r;
	r = render_select_sites(snap.sites, &cli->filter, want, &page);
	client_snapshot_free(&snap);
	if (r == -ERANGE) {
		fprintf(stderr, "grepopctl: there is no page %u: %u site%s, %u page%s\n",
			want, page.total, page.total == 1 ? " matches" : "s match", page.pages,
			page.pages == 1 ? "" : "s");
		return -ENOENT;
	}
	if (r < 0)
		return r;
	if (cli->json)
		print_page_json(ctl, &page);
	else
		r = render_site_list(&page, now_realtime_ns(), ctl->out);
	json_decref(page.sites);
	return r;
}

static const json_t *find_site(const json_t *sites, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(sites, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));

		if (n && strcmp(n, name) == 0)
			return v;
	}
	return NULL;
}

int cmd_site_show(struct ctl *ctl)
{
	char *name = ctl->cli->args[0];
	struct client_snapshot snap;
	const json_t *site;
	int r;

	r = snapshot(ctl, keep_named, name, &snap);
	if (r < 0)
		return r;
	site = find_site(snap.sites, name);
	if (!site) {
		fprintf(stderr, "grepopctl: no site named \"%s\" (grepopctl site list shows "
			"them)\n", name);
		r = -ENOENT;
	} else if (ctl->cli->json) {
		print_json(ctl, site, false);
	} else {
		r = render_site_show(site, now_realtime_ns(), ctl->out);
	}
	client_snapshot_free(&snap);
	return r;
}

/* pop show and health show: both read the POP message. */
static int show_pop(struct ctl *ctl, int (*render)(const json_t *, uint64_t, FILE *))
{
	struct client_snapshot snap;
	int r;

	r = snapshot(ctl, keep_none, NULL, &snap);
	if (r < 0)
		return r;
	if (!snap.pop)
		r = report_exchange(ctl, "statsd", ctl->snapshot_endpoint, -EPROTO);
	else if (ctl->cli->json)
		print_json(ctl, snap.pop, false);
	else
		r = render(snap.pop, now_realtime_ns(), ctl->out);
	client_snapshot_free(&snap);
	return r;
}

int cmd_pop_show(struct ctl *ctl)
{
	return show_pop(ctl, render_pop_show);
}

int cmd_health_show(struct ctl *ctl)
{
	return show_pop(ctl, render_health_show);
}

/* What "watch" shows on a terminal: the clone of statsd's state. */
struct watch {
	json_t *pop;
	json_t *sites;			/* name -> latest site message */
	uint64_t seq;			/* the snapshot's: older feed messages are stale */
	bool dirty;
	uint64_t drawn_ns;		/* monotonic */
};

static json_t *keep_summary(json_t *site, void *arg)
{
	return render_site_summary(site);
}

static int watch_load(struct ctl *ctl, struct watch *w)
{
	struct client_snapshot snap;
	size_t i;
	json_t *v;
	int r;

	r = snapshot(ctl, keep_summary, NULL, &snap);
	if (r < 0)
		return r;
	w->pop = json_incref(snap.pop);
	w->seq = snap.seq;
	json_array_foreach(snap.sites, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));

		if (name)
			json_object_set(w->sites, name, v);
	}
	client_snapshot_free(&snap);
	w->dirty = true;
	return 0;
}

static void watch_apply(struct watch *w, const char *topic, json_t *msg)
{
	const char *name = json_string_value(json_object_get(msg, "name"));
	const char *type = json_string_value(json_object_get(msg, "type"));

	if (strcmp(topic, "grepop.v1.pop") == 0) {
		json_decref(w->pop);
		w->pop = json_incref(msg);
	} else if (strncmp(topic, "grepop.v1.site.", 15) == 0 && name) {
		json_object_set_new(w->sites, name, render_site_summary(msg));
	} else if (type && strcmp(type, "site.deleted") == 0) {
		const char *site = json_string_value(json_object_get(msg, "site"));

		if (site)
			json_object_del(w->sites, site);
	}
	w->dirty = true;
}

static void watch_draw(struct ctl *ctl, struct watch *w)
{
	uint64_t now = now_realtime_ns();
	struct render_page page;
	json_t *all = json_array();
	char time[32];
	const char *k;
	json_t *v;

	json_object_foreach(w->sites, k, v)
		json_array_append(all, v);
	fputs("\033[H\033[J", ctl->out);	/* home, clear the screen */
	fprintf(ctl->out, "grepopctl watch  %s  (Ctrl-C to stop)\n\n",
		time_format_iso(now, time, sizeof(time)));
	if (w->pop)
		render_pop_show(w->pop, now, ctl->out);
	fputc('\n', ctl->out);
	if (render_select_sites(all, &ctl->cli->filter, ctl->cli->page ? ctl->cli->page : 1,
				&page) == 0) {
		render_site_list(&page, now, ctl->out);
		json_decref(page.sites);
	} else {
		fprintf(ctl->out, "no page %u: %u pages\n", ctl->cli->page, page.pages);
	}
	json_decref(all);
	fflush(ctl->out);
	w->dirty = false;
	w->drawn_ns = now_monotonic_ns();
}

/* Milliseconds to wait for the next message: the deadline, or the redraw. */
static int feed_wait_ms(const struct watch *w, uint64_t deadline_ns)
{
	uint64_t now = now_monotonic_ns();
	int64_t ms = -1;

	if (deadline_ns)
		ms = now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / NSEC_PER_MSEC) + 1;
	if (w && w->dirty && (ms < 0 || ms > REDRAW_INTERVAL_MS))
		ms = REDRAW_INTERVAL_MS;
	return (int)ms;
}

static void print_feed_message(struct ctl *ctl, const char *topic, const json_t *msg)
{
	bool event = strcmp(topic, "grepop.v1.event") == 0;

	if (ctl->cli->json && event && ctl->cli->verb == CLI_EVENTS) {
		print_json(ctl, msg, true);
	} else if (ctl->cli->json) {
		json_t *line = json_pack("{s:s, s:O}", "topic", topic, "message", msg);

		print_json(ctl, line, true);
		json_decref(line);
	} else if (event && ctl->cli->verb == CLI_EVENTS) {
		render_event_line(msg, ctl->out);
	} else {
		render_feed_line(topic, msg, ctl->out);
	}
	fflush(ctl->out);
}

/*
 * Read the feed until --count messages, --seconds or a signal. W is the
 * terminal view (NULL: print each message as a line).
 */
static int feed_loop(struct ctl *ctl, struct client_feed *feed, struct watch *w)
{
	const struct cli *cli = ctl->cli;
	uint64_t deadline = cli->seconds ? now_monotonic_ns() + cli->seconds * NSEC_PER_SEC : 0;
	unsigned received = 0;
	char topic[256];
	json_t *msg;
	int r;

	while (!ctl_stop && (!cli->count || received < cli->count)) {
		r = client_feed_recv(feed, feed_wait_ms(w, deadline), topic, sizeof(topic), &msg);
		if (w && w->dirty && now_monotonic_ns() - w->drawn_ns >=
		    REDRAW_INTERVAL_MS * NSEC_PER_MSEC)
			watch_draw(ctl, w);
		if (r == -EINTR)
			break;
		if (r == -EAGAIN && deadline && now_monotonic_ns() >= deadline)
			break;
		if (r < 0)
			continue;		/* a late redraw, or a malformed message skipped */
		json_int_t seq = json_integer_value(json_object_get(msg, "seq"));

		if (!w || seq <= 0 || (uint64_t)seq > w->seq) {
			received++;
			if (w)
				watch_apply(w, topic, msg);
			else
				print_feed_message(ctl, topic, msg);
		}
		json_decref(msg);
	}
	if (w && w->dirty)
		watch_draw(ctl, w);
	return 0;
}

static int feed_open(struct ctl *ctl, const char *prefix, struct client_feed **feed)
{
	int r = check_ipc("statsd", ctl->feed_endpoint, "stats.feed");

	if (r < 0)
		return r;
	r = client_feed_open(&ctl->client, ctl->feed_endpoint, prefix, feed);
	if (r < 0)
		return report_exchange(ctl, "statsd", ctl->feed_endpoint, r);
	return 0;
}

int cmd_watch(struct ctl *ctl)
{
	struct watch w = { .sites = json_object() };
	bool draw = !ctl->cli->json && isatty(fileno(ctl->out));
	struct client_feed *feed = NULL;
	int r;

	/* Subscribe first, then take the snapshot: nothing falls in between. */
	r = feed_open(ctl, "grepop.v1.", &feed);
	if (r == 0 && draw)
		r = watch_load(ctl, &w);
	if (r == 0)
		r = feed_loop(ctl, feed, draw ? &w : NULL);
	client_feed_close(feed);
	json_decref(w.pop);
	json_decref(w.sites);
	return r;
}

int cmd_events(struct ctl *ctl)
{
	struct client_feed *feed = NULL;
	int r;

	r = feed_open(ctl, "grepop.v1.event", &feed);
	if (r == 0)
		r = feed_loop(ctl, feed, NULL);
	client_feed_close(feed);
	return r;
}
