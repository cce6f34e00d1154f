/*
 * lfht_bench: what one site lookup costs in a table of N sites, with the
 * liburcu hash-table flags gatewayd uses and without the accounting flag.
 *
 *   lfht_bench [-n SITES] [-r ROUNDS]
 *
 * Builds N struct gw_site (gatewayd's real layout, so each node is a cache
 * miss as it is in gatewayd), inserts them by source IP from one thread as
 * the control thread does, gives the table's resize a second, then looks
 * every site up ROUNDS times in random order. Prints ns per lookup for
 * CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING and for CDS_LFHT_AUTO_RESIZE
 * alone, each twice, alternating. The bench (`make bench`, profile udp64-sites100000) shows what
 * the difference does to gatewayd's packet rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gatewayd/gateway.h"
#include "lib/timeutil.h"

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int match(struct cds_lfht_node *node, const void *key)
{
	const struct gw_site *site = caa_container_of(node, struct gw_site, by_source);

	return site->conf.source_ip.s_addr == *(const uint32_t *)key;
}

/* Nanoseconds per lookup of every site in ORDER, ROUNDS times. */
static double time_lookups(struct cds_lfht *ht, const uint32_t *order, unsigned n,
			   unsigned rounds)
{
	uint64_t start = now_monotonic_ns();
	unsigned found = 0;

	rcu_read_lock();
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < n; i++) {
			struct cds_lfht_iter iter;

			cds_lfht_lookup(ht, mix(order[i]), match, &order[i], &iter);
			found += cds_lfht_iter_get_node(&iter) != NULL;
		}
	}
	rcu_read_unlock();
	if (found != n * rounds)
		fprintf(stderr, "lfht_bench: %u of %u lookups missed\n", n * rounds - found,
			n * rounds);
	return (double)(now_monotonic_ns() - start) / ((double)n * rounds);
}

static double run(int flags, struct gw_site *sites, const uint32_t *order, unsigned n,
		  unsigned rounds)
{
	struct cds_lfht *ht = cds_lfht_new(1024, 1024, 0, flags, NULL);
	double ns;

	if (!ht)
		return -1;
	rcu_read_lock();
	for (unsigned i = 0; i < n; i++) {
		cds_lfht_node_init(&sites[i].by_source);
		cds_lfht_add(ht, mix(sites[i].conf.source_ip.s_addr), &sites[i].by_source);
	}
	rcu_read_unlock();
	sleep(3);	/* resizes run in liburcu's worker thread */
	ns = time_lookups(ht, order, n, rounds);
	rcu_read_lock();
	for (unsigned i = 0; i < n; i++)
		cds_lfht_del(ht, &sites[i].by_source);
	rcu_read_unlock();
	synchronize_rcu();
	cds_lfht_destroy(ht, NULL);
	return ns;
}

int main(int argc, char **argv)
{
	unsigned n = 100000, rounds = 10;
	struct gw_site *sites;
	uint32_t *order;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n')
			n = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			rounds = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	sites = calloc(n, sizeof(*sites));
	order = calloc(n, sizeof(*order));
	if (n == 0 || !sites || !order)
		return 1;
	rcu_register_thread();
	for (unsigned i = 0; i < n; i++) {
		sites[i].conf.source_ip.s_addr = htonl(0xac100001u + i);
		order[i] = sites[i].conf.source_ip.s_addr;
	}
	srandom(1);
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)random() % (i + 1);
		uint32_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	/* Each variant twice, alternating, so a disturbance shows as a spread. */
	for (int i = 0; i < 4; i++) {
		int flags = CDS_LFHT_AUTO_RESIZE | (i % 2 ? 0 : CDS_LFHT_ACCOUNTING);

		printf("lfht_bench sites=%u node=%zu bytes %s ns_per_lookup=%.0f\n", n,
		       sizeof(*sites), i % 2 ? "auto_resize" : "auto_resize+accounting",
		       run(flags, sites, order, n, rounds));
		fflush(stdout);
	}
	rcu_unregister_thread();
	free(order);
	free(sites);
	return 0;
}
