/*
 * The "scenario" harness for host tests whose checks run while the host
 * runs: the host runs on the test thread; a background service "scenario"
 * waits until the host started, runs the test's body, then stops the host.
 * The body runs on another thread, so it records its first failure with
 * CHECK/scn_fail (testutil.h) instead of cmocka's asserts; the test reports
 * it after run returns. Shared by test_config_reload.c, test_health_host.c
 * and test_systemd_notify.c (the last two run it through fakesd.h).
 */
#ifndef HK_SCENARIO_H
#define HK_SCENARIO_H

#include <stdbool.h>

#include "hosttest.h"

/* Generous: a passing test never waits for it (sanitizer builds are slow). */
#define SCN_DEADLINE_MS 10000

/* The body scenario_execute runs (set by scn_add). */
static void (*scn_body)(void) __attribute__((unused));
/* The running host, for bodies (set by the file's run helper; NULL outside a run). */
static hk_host_t *scn_host __attribute__((unused));

/* For wait_until: true once the token (e.g. hk_host_started) is cancelled. */
static inline bool token_cancelled(void *arg) { return hk_token_is_cancelled(arg); }

/* The "scenario" background service: once the host started, runs scn_body,
 * then stops the host. */
static inline int scenario_execute(hk_service_t *svc, hk_token_t *stopping) {
    (void)stopping;
    hk_host_t *h = hk_service_host(svc);
    if (wait_until(token_cancelled, hk_host_started(h), SCN_DEADLINE_MS))
        scn_body();
    else
        scn_fail(__LINE__, "the host never started");
    hk_host_stop(h);
    return 0;
}

/* Adds the "scenario" service running body to b; clears any recorded failure. */
static inline void scn_add(hk_builder_t *b, void (*body)(void)) {
    scn_body = body;
    scn_reset();
    assert_int_equal(hk_builder_add_background(b, "scenario", scenario_execute, NULL, NULL), 0);
}

#endif
