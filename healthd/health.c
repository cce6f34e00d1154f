#include <stdio.h>
#include <string.h>

#include "healthd/health.h"

static void copy_text(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

void health_verdict_init(struct health_verdict *v)
{
	memset(v, 0, sizeof(*v));
}

void health_verdict_add(struct health_verdict *v, bool ok, const char *reason,
			const char *target)
{
	v->checks++;
	if (ok)
		return;
	if (v->failed++ > 0)
		return;
	copy_text(v->reason, sizeof(v->reason), reason ? reason : "check failed");
	copy_text(v->target, sizeof(v->target), target);
}

void health_service_init(struct health_service *svc)
{
	memset(svc, 0, sizeof(*svc));
	svc->state = SHM_HEALTH_UNKNOWN;
}

static void health_enter(struct health_service *svc, enum shm_service service,
			 enum shm_health to, uint64_t now_ns, struct health_change *change)
{
	change->service = service;
	change->from = svc->state;
	change->to = to;
	svc->state = to;
	svc->since_ns = now_ns;
}

bool health_update(struct health_service *svc, enum shm_service service,
		   const struct health_verdict *v, unsigned rise, unsigned fall,
		   uint64_t now_ns, struct health_change *change)
{
	if (v->checks == 0)
		return false;
	svc->checks_ok += v->checks - v->failed;
	svc->checks_failed += v->failed;

	if (v->failed == 0) {
		svc->failures = 0;
		svc->passes++;
		if (svc->state == SHM_HEALTH_UP || svc->passes < (rise ? rise : 1))
			return false;
		health_enter(svc, service, SHM_HEALTH_UP, now_ns, change);
		copy_text(change->reason, sizeof(change->reason), "all checks passed");
		change->target[0] = '\0';
		svc->reason[0] = svc->target[0] = '\0';
		return true;
	}

	svc->passes = 0;
	svc->failures++;
	/* While down, the status line shows the latest cause, not the first. */
	copy_text(svc->reason, sizeof(svc->reason), v->reason);
	copy_text(svc->target, sizeof(svc->target), v->target);
	if (svc->state == SHM_HEALTH_DOWN || svc->failures < (fall ? fall : 1))
		return false;
	health_enter(svc, service, SHM_HEALTH_DOWN, now_ns, change);
	copy_text(change->reason, sizeof(change->reason), v->reason);
	copy_text(change->target, sizeof(change->target), v->target);
	return true;
}

bool health_set_unchecked(struct health_service *svc, enum shm_service service,
			  uint64_t now_ns, struct health_change *change)
{
	svc->passes = svc->failures = 0;
	svc->reason[0] = svc->target[0] = '\0';
	if (svc->state == SHM_HEALTH_UP)
		return false;
	health_enter(svc, service, SHM_HEALTH_UP, now_ns, change);
	copy_text(change->reason, sizeof(change->reason), "no check configured");
	change->target[0] = '\0';
	return true;
}

const char *health_change_format(const struct health_change *change, char *buf, size_t len)
{
	if (change->target[0])
		snprintf(buf, len, "service %s: %s -> %s (%s from %s)",
			 shm_service_name(change->service), shm_health_name(change->from),
			 shm_health_name(change->to), change->reason, change->target);
	else
		snprintf(buf, len, "service %s: %s -> %s (%s)", shm_service_name(change->service),
			 shm_health_name(change->from), shm_health_name(change->to),
			 change->reason);
	return buf;
}

const char *health_status_format(const struct health_service svc[SHM_SVC_COUNT], char *buf,
				 size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < SHM_SVC_COUNT && used < len; i++) {
		const char *sep = i ? ", " : "";
		int n;

		if (svc[i].state == SHM_HEALTH_DOWN && svc[i].reason[0])
			n = snprintf(buf + used, len - used, "%s%s down (%s)", sep,
				     shm_service_name(i), svc[i].reason);
		else
			n = snprintf(buf + used, len - used, "%s%s %s", sep, shm_service_name(i),
				     shm_health_name(svc[i].state));
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

void health_publish(struct shm_header *hdr, const struct health_service svc[SHM_SVC_COUNT])
{
	for (int i = 0; i < SHM_SVC_COUNT; i++) {
		struct shm_service_state *s = &hdr->pop.service[i];

		shm_set(&s->since_ns, svc[i].since_ns);
		shm_set(&s->checks_ok, svc[i].checks_ok);
		shm_set(&s->checks_failed, svc[i].checks_failed);
		/* The state last, so a reader that sees it also sees its since. */
		__atomic_store_n(&s->health, (uint32_t)svc[i].state, __ATOMIC_RELEASE);
	}
}

void health_heartbeat(struct shm_header *hdr, uint64_t realtime_ns)
{
	__atomic_store_n(&hdr->pop.healthd_heartbeat_ns, realtime_ns, __ATOMIC_RELEASE);
}

void health_adopt(struct health_service svc[SHM_SVC_COUNT], const struct shm_header *hdr,
		  uint64_t now_ns, uint64_t max_age_ns)
{
	uint64_t beat = __atomic_load_n(&hdr->pop.healthd_heartbeat_ns, __ATOMIC_ACQUIRE);
	bool fresh = beat != 0 && beat <= now_ns && now_ns - beat <= max_age_ns;

	for (int i = 0; i < SHM_SVC_COUNT; i++) {
		const struct shm_service_state *s = &hdr->pop.service[i];
		uint32_t state = __atomic_load_n(&s->health, __ATOMIC_ACQUIRE);

		svc[i].checks_ok = shm_load(&s->checks_ok);
		svc[i].checks_failed = shm_load(&s->checks_failed);
		if (!fresh || (state != SHM_HEALTH_UP && state != SHM_HEALTH_DOWN))
			continue;
		svc[i].state = state;
		svc[i].since_ns = shm_load(&s->since_ns);
	}
}
