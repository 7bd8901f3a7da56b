/*
 * Helpers shared by the jobs tests (test_jobs_periodic.c, test_jobs_queue.c):
 * a host running on a thread of its own (build, run, stop, join, copy the
 * metrics exposition) and a substring assertion for that exposition.
 */
#ifndef HK_JOBSTEST_H
#define HK_JOBSTEST_H

#include <pthread.h>
#include <string.h>

#include "hosttest.h"

/* ---- a host on its own thread -------------------------------------------------- */

typedef struct running {
    hk_host_t *h;
    pthread_t th;
    int code;
} running_t;

static inline void *host_main(void *arg) {
    running_t *r = arg;
    r->code = hk_host_run(r->h);
    return NULL;
}

/* Builds b (dumping the log and failing the test on error), frees it, runs
 * the host on a new thread. */
static inline void start_host(hk_builder_t *b, running_t *r) {
    r->h = NULL;
    if (hk_builder_build(b, &r->h) < 0) {
        capture_dump(cap);
        fail_msg("build failed: %s", hk_builder_error(b));
    }
    hk_builder_free(b);
    assert_int_equal(pthread_create(&r->th, NULL, host_main, r), 0);
}

/* Stops the host (if still running), joins it, copies the metrics exposition
 * to metrics (when not NULL), frees it. Returns the exit code. */
static inline int finish_host(running_t *r, char *metrics, size_t len) {
    hk_host_stop(r->h);
    pthread_join(r->th, NULL);
    if (metrics)
        hk_metrics_print(hk_host_metrics(r->h), metrics, len, NULL);
    hk_host_free(r->h);
    return r->code;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                                   \
    } while (0)

#endif
