/*
 * The POP's own addresses, so that nothing from a tunnel reaches the POP
 * host itself: an inner packet addressed to any address of this host is
 * dropped and counted as a loop, whatever interface the address is on.
 *
 * The control thread reads the addresses (getifaddrs) at start and once a
 * second, and publishes a new array through RCU only when they changed;
 * workers search the current one inside their read-side section.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd/gateway.h"

struct gw_local_addrs {
	struct rcu_head rcu;
	unsigned n;
	struct gw_local_addr {
		uint8_t family;
		union {
			struct in_addr v4;
			struct in6_addr v6;
		} a;
	} addr[];
};

static size_t local_size(unsigned n)
{
	return sizeof(struct gw_local_addrs) + n * sizeof(struct gw_local_addr);
}

static struct gw_local_addrs *local_read(void)
{
	struct ifaddrs *ifa, *i;
	struct gw_local_addrs *set;
	unsigned n = 0;

	if (getifaddrs(&ifa) < 0)
		return NULL;
	for (i = ifa; i; i = i->ifa_next)
		n += i->ifa_addr && (i->ifa_addr->sa_family == AF_INET ||
				     i->ifa_addr->sa_family == AF_INET6);
	set = calloc(1, local_size(n));
	for (i = ifa; set && i; i = i->ifa_next) {
		struct gw_local_addr *a = &set->addr[set->n];

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			a->a.v4 = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6)
			a->a.v6 = ((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
		else
			continue;
		a->family = (uint8_t)i->ifa_addr->sa_family;
		set->n++;
	}
	freeifaddrs(ifa);
	return set;
}

static void local_free_rcu(struct rcu_head *head)
{
	tsan_after_grace();
	free(caa_container_of(head, struct gw_local_addrs, rcu));
}

int local_addrs_refresh(struct gw *gw)
{
	struct gw_local_addrs *cur = gw->local, *next = local_read();

	if (!next)
		return -errno ? -errno : -ENOMEM;
	if (cur && cur->n == next->n &&
	    memcmp(cur->addr, next->addr, next->n * sizeof(next->addr[0])) == 0) {
		free(next);
		return 0;
	}
	tsan_publish(next);
	rcu_assign_pointer(gw->local, next);
	if (cur)
		call_rcu(&cur->rcu, local_free_rcu);
	return 0;
}

bool local_addrs_has(struct gw *gw, int family, const void *addr)
{
	const struct gw_local_addrs *set = rcu_dereference(gw->local);
	size_t len = family == AF_INET ? 4 : 16;

	tsan_found(set);
	for (unsigned i = 0; set && i < set->n; i++)
		if (set->addr[i].family == family && memcmp(&set->addr[i].a, addr, len) == 0)
			return true;
	return false;
}

void local_addrs_free(struct gw *gw)
{
	free(gw->local);
	gw->local = NULL;
}
