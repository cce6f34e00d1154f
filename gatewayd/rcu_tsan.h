/*
 * What liburcu orders, told to ThreadSanitizer.
 *
 * Debian's liburcu is not built with -fsanitize=thread (0.13 has no TSan
 * support of its own), so TSan sees none of the orderings it provides: a
 * site published with cds_lfht_add or rcu_assign_pointer looks unordered
 * with the worker that finds it, and a free after synchronize_rcu() or in a
 * call_rcu() callback looks unordered with the readers it waited for. A
 * suppression of liburcu cannot help there: the reported accesses are ours,
 * and the frees after grace periods are the ones worth checking. So these
 * annotations state the two edges liburcu guarantees, and TSan checks
 * everything else in our code as usual (tests/tsan.supp only silences
 * liburcu's own allocations):
 *
 *   publication: the writer calls tsan_publish(obj) after filling OBJ and
 *   before making it reachable (hash table add, rcu_assign_pointer, a
 *   lock-free stack push); a reader calls tsan_found(obj) as soon as it
 *   holds OBJ from a lookup, an iteration, rcu_dereference or a pop, before
 *   it reads the object.
 *
 *   grace periods: one token collects, by release, what each thread did up
 *   to its rcu_read_unlock() and up to its call_rcu(); whoever waited for a
 *   grace period (after synchronize_rcu() or rcu_barrier(), at the top of a
 *   call_rcu callback) acquires it. A callback that hands its object on
 *   rather than freeing it ends with tsan_before_grace(), for rcu_barrier().
 *
 * The token joins every reader, so it orders a little more than liburcu
 * promises (a reader section that began after the grace period did), never
 * less; workers never acquire it, so races between workers, and between a
 * worker and the control thread outside grace periods, are still reported.
 *
 * In a TSan build this header wraps rcu_read_unlock, call_rcu,
 * synchronize_rcu and rcu_barrier of the flavour <urcu.h> selected, so no
 * call site changes (gateway.h includes it, so all of gatewayd and its
 * tests get the wrappers). In any other build the annotations are empty,
 * nothing is wrapped and nothing is added to the per-packet path.
 */
#ifndef GATEWAYD_RCU_TSAN_H
#define GATEWAYD_RCU_TSAN_H

#include <urcu.h>

#if defined(__SANITIZE_THREAD__)
#define GW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GW_TSAN 1
#endif
#endif

#ifdef GW_TSAN
#include <sanitizer/tsan_interface.h>

/* The grace-period token (defined in sitetab.c). */
extern char tsan_grace;

static inline void tsan_publish(const void *obj)
{
	__tsan_release((void *)obj);
}

/* NULL (nothing found) is allowed. */
static inline void tsan_found(const void *obj)
{
	if (obj)
		__tsan_acquire((void *)obj);
}

#define tsan_before_grace()	__tsan_release(&tsan_grace)
#define tsan_after_grace()	__tsan_acquire(&tsan_grace)

/* Defined before the #undefs below, so these call the flavour's functions. */
static inline void tsan_read_unlock(void)
{
	tsan_before_grace();
	rcu_read_unlock();
}

static inline void tsan_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *))
{
	tsan_before_grace();
	call_rcu(head, func);
}

static inline void tsan_synchronize_rcu(void)
{
	synchronize_rcu();
	tsan_after_grace();
}

static inline void tsan_rcu_barrier(void)
{
	rcu_barrier();
	tsan_after_grace();
}

#undef rcu_read_unlock
#define rcu_read_unlock		tsan_read_unlock
#undef call_rcu
#define call_rcu		tsan_call_rcu
#undef synchronize_rcu
#define synchronize_rcu		tsan_synchronize_rcu
#undef rcu_barrier
#define rcu_barrier		tsan_rcu_barrier

#else
#define tsan_publish(obj)	((void)0)
#define tsan_found(obj)		((void)0)
#define tsan_before_grace()	((void)0)
#define tsan_after_grace()	((void)0)
#endif

#endif
