#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthd/probe.h"
#include "lib/timeutil.h"

struct probe {
	struct conf_check check;
	char url[CONF_ADDR_MAX + 16];		/* what curl is given */
	CURL *easy;
	bool running;
	uint64_t started_ns;			/* CLOCK_MONOTONIC */
	struct probe_result result;
	char errbuf[CURL_ERROR_SIZE];
};

struct probe_set {
	CURLM *multi;
	unsigned n;
	unsigned running;
	bool started;
	unsigned timeout_ms;
	struct probe probe[CONF_MAX_CHECKS];
};

/* The body of an answer is not needed: only its status. */
static size_t probe_discard(char *data, size_t size, size_t nmemb, void *user)
{
	return size * nmemb;
}

static int probe_setup(struct probe *p, unsigned timeout_ms)
{
	char url[sizeof(p->url)];
	CURL *e = curl_easy_init();

	if (!e)
		return -ENOMEM;
	if (p->check.type == CONF_CHECK_TCP) {
		/* Connect-only: curl stops once the TCP handshake is done. */
		snprintf(url, sizeof(url), "http://%s/", p->check.address);
		curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	} else {
		snprintf(url, sizeof(url), "%s", p->check.url);
	}
	memcpy(p->url, url, sizeof(url));
	curl_easy_setopt(e, CURLOPT_URL, p->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, p);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "grepop-healthd");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_discard);
	p->easy = e;
	return 0;
}

int probe_set_new(struct probe_set **out, const struct conf_check *checks, unsigned n,
		  unsigned timeout_ms)
{
	struct probe_set *ps;
	int r;

	if (n > CONF_MAX_CHECKS)
		return -EINVAL;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->multi = curl_multi_init();
	if (!ps->multi) {
		free(ps);
		return -ENOMEM;
	}
	ps->timeout_ms = timeout_ms ? timeout_ms : 1;
	for (; ps->n < n; ps->n++) {
		ps->probe[ps->n].check = checks[ps->n];
		r = probe_setup(&ps->probe[ps->n], ps->timeout_ms);
		if (r < 0) {
			probe_set_free(ps);
			return r;
		}
	}
	*out = ps;
	return 0;
}

static void probe_finish(struct probe_set *ps, struct probe *p)
{
	curl_multi_remove_handle(ps->multi, p->easy);
	p->running = false;
	p->result.done = true;
	ps->running--;
}

void probe_set_free(struct probe_set *ps)
{
	if (!ps)
		return;
	for (unsigned i = 0; i < ps->n; i++) {
		if (ps->probe[i].running)
			probe_finish(ps, &ps->probe[i]);
		curl_easy_cleanup(ps->probe[i].easy);
	}
	curl_multi_cleanup(ps->multi);
	free(ps);
}

unsigned probe_count(const struct probe_set *ps)
{
	return ps->n;
}

const struct conf_check *probe_check(const struct probe_set *ps, unsigned i)
{
	return &ps->probe[i].check;
}

const char *probe_target(const struct probe_set *ps, unsigned i)
{
	const struct conf_check *c = &ps->probe[i].check;

	return c->type == CONF_CHECK_TCP ? c->address : c->url;
}

const struct probe_result *probe_result(const struct probe_set *ps, unsigned i)
{
	return &ps->probe[i].result;
}

bool probe_round_done(const struct probe_set *ps)
{
	return ps->started && ps->running == 0;
}

void probe_round_stop(struct probe_set *ps)
{
	uint64_t now = now_monotonic_ns();

	for (unsigned i = 0; i < ps->n; i++) {
		struct probe *p = &ps->probe[i];

		if (!p->running)
			continue;
		p->result.ok = false;
		snprintf(p->result.reason, sizeof(p->result.reason), "timeout after %llu ms",
			 (unsigned long long)((now - p->started_ns) / NSEC_PER_MSEC));
		probe_finish(ps, p);
	}
}

int probe_round_start(struct probe_set *ps)
{
	uint64_t now = now_monotonic_ns();

	probe_round_stop(ps);
	ps->started = true;
	for (unsigned i = 0; i < ps->n; i++) {
		struct probe *p = &ps->probe[i];

		memset(&p->result, 0, sizeof(p->result));
		p->errbuf[0] = '\0';
		if (curl_multi_add_handle(ps->multi, p->easy) != CURLM_OK) {
			probe_round_stop(ps);
			return -ENOMEM;
		}
		p->running = true;
		p->started_ns = now;
		ps->running++;
	}
	return 0;
}

/* The one-line reason of a failed transfer. */
static void probe_describe(struct probe_set *ps, struct probe *p, CURLcode rc)
{
	char *reason = p->result.reason;
	size_t len = sizeof(p->result.reason);
	long os_errno = 0;

	curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(reason, len, "timeout after %u ms", ps->timeout_ms);
	else if (rc == CURLE_COULDNT_CONNECT && os_errno)
		snprintf(reason, len, "connect: %s", strerror((int)os_errno));
	else if (p->errbuf[0])
		snprintf(reason, len, "%.*s", (int)len - 1, p->errbuf);
	else
		snprintf(reason, len, "%s", curl_easy_strerror(rc));
}

static void probe_complete(struct probe_set *ps, struct probe *p, CURLcode rc)
{
	long status = 0;

	if (rc != CURLE_OK) {
		probe_describe(ps, p, rc);
	} else if (p->check.type == CONF_CHECK_TCP) {
		p->result.ok = true;
	} else {
		curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
		p->result.ok = status >= 200 && status <= 299;
		if (!p->result.ok)
			snprintf(p->result.reason, sizeof(p->result.reason), "HTTP %ld", status);
	}
	probe_finish(ps, p);
}

int probe_poll(struct probe_set *ps, struct curl_waitfd *extra, unsigned n_extra,
	       int timeout_ms)
{
	CURLMsg *msg;
	int running, left;

	if (curl_multi_poll(ps->multi, extra, n_extra, timeout_ms, NULL) != CURLM_OK)
		return -EIO;
	if (curl_multi_perform(ps->multi, &running) != CURLM_OK)
		return -EIO;
	while ((msg = curl_multi_info_read(ps->multi, &left))) {
		void *priv = NULL;
		struct probe *p;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		p = priv;
		if (p && p->running)
			probe_complete(ps, p, msg->data.result);
	}
	return 0;
}
