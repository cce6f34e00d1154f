/*
 * libFuzzer harness for gatewayd's control socket: any bytes as a request
 * to control_handle on the fixture's gatewayd (gw_fixture.h). Requests
 * that change sites really run: copy, validate, write the sites file (in
 * the fixture's temporary directory), apply to the RCU tables and shared
 * memory; the nftables update fails without CAP_NET_ADMIN, which gatewayd
 * tolerates with a warning.
 *
 * Checked for every input: the reply is a JSON object with a boolean "ok";
 * a refusal carries an "error" string and changed no site; and afterwards
 * every running site is what the table finds for its source IP and key.
 * Each input starts from the fixture's sites and the accept mode.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "gatewayd/control.h"
#include "tests/fuzz/gw_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw gw;
static struct sites baseline;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fixture_gw_init(&gw);
	if (sites_copy(&baseline, &gw.sites) < 0)
		abort();
	return 0;
}

static bool sites_same(const struct sites *a, const struct sites *b)
{
	return a->n == b->n &&
	       (a->n == 0 || memcmp(a->site, b->site, a->n * sizeof(a->site[0])) == 0);
}

/* Back to the fixture's state, through the same code a request uses. */
static void reset(void)
{
	char err[CONF_ERR_MAX];
	struct sites next;

	if (!sites_same(&gw.sites, &baseline)) {
		FIXTURE_CHECK(sites_copy(&next, &baseline) == 0);
		FIXTURE_CHECK(gw_sites_replace(&gw, &next, true, err) == 0);
	}
	if (gw.shm.hdr->pop.accept_mode != SHM_ACCEPT_ACCEPT)
		FIXTURE_CHECK(gw_set_accept_mode(&gw, SHM_ACCEPT_ACCEPT, err) == 0);
}

/* The tables hold exactly the running sites, each under its source and key. */
static void check_tables(void)
{
	rcu_read_lock();
	for (unsigned i = 0; i < gw.sites.n; i++) {
		const struct site_conf *sc = &gw.sites.site[i];
		struct gw_site *other = NULL;
		struct gw_site *site = sitetab_lookup(&gw, sc->source_ip, sc->has_key, sc->key,
						      &other);

		FIXTURE_CHECK(site && strcmp(site->conf.name, sc->name) == 0);
		FIXTURE_CHECK(strcmp(site->shm->id.name, sc->name) == 0);
	}
	rcu_read_unlock();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sites before;
	json_t *reply;
	char *text;

	reset();
	FIXTURE_CHECK(sites_copy(&before, &gw.sites) == 0);
	text = control_handle(&gw, (const char *)data, size);
	FIXTURE_CHECK(text);
	reply = json_loads(text, 0, NULL);
	FIXTURE_CHECK(json_is_object(reply) && json_is_boolean(json_object_get(reply, "ok")));
	if (json_is_false(json_object_get(reply, "ok"))) {
		FIXTURE_CHECK(json_is_string(json_object_get(reply, "error")));
		FIXTURE_CHECK(sites_same(&gw.sites, &before));
	}
	check_tables();
	json_decref(reply);
	free(text);
	sites_free(&before);
	return 0;
}
