/*
 * Private side of the health registry (src/health): the result object
 * shared by runs, caches and reports, the injectable clock and the hooks the
 * host uses (src/core/hosthealth.c). Depends on src/common and pthreads.
 */
#ifndef HK_SRC_HEALTH_INT_H
#define HK_SRC_HEALTH_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "hostkit/health.h"

/*
 * A check's result: filled by one run through the hk_health_result_*
 * builder, then immutable and shared (reference-counted) by the check's
 * cache and by every report that shows it.
 */
struct hk_health_result_s {
    atomic_int refs;
    hk_health_status_t status;
    char *description;
    hk_health_data_t *data; /* key and value strings owned here */
    size_t ndata, cap;
    uint64_t duration_ns;
    bool timed_out;
};

/* The registry's clock, for cache ages and heartbeats (CLOCK_MONOTONIC ns
 * unless a test injects another). */
typedef uint64_t (*hk__health_clock_fn)(void *data);
void hk__health_set_clock(hk_health_t *health, hk__health_clock_fn fn, void *data);
uint64_t hk__health_now(hk_health_t *health);

/* Drops every cached result; runs already in flight will not fill the
 * cache. Used when readiness changes (shutdown begins). Any thread. */
void hk__health_invalidate(hk_health_t *health);

/* Removes a check that has no run in flight, without calling its destroy
 * hook (the host undoes its built-ins with it when a build fails).
 * Returns 0, -ENOENT or -EBUSY. */
int hk__health_remove(hk_health_t *health, const char *name);

/* Checks registered (any tag). */
size_t hk__health_count(hk_health_t *health);

/* Checks carrying tag. */
size_t hk__health_count_tag(hk_health_t *health, const char *tag);

/* report.c */
int hk__health_result_new(hk_health_result_t **ret);
void hk__health_result_ref(hk_health_result_t *r);
void hk__health_result_unref(hk_health_result_t *r);

#endif
