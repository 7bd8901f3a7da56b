/*
 * Service dependencies: start in dependency order (ties by registration
 * order), stop in reverse, concurrent start and stop respecting them,
 * unknown dependencies and cycles failing the build with 78 and the chain,
 * and rest_for_one: the dependents of a restarting service are stopped
 * (reverse order) and started again after it.
 */
#include "supertest.h"

static int setup(void **state) {
    host_setup(state);
    hooks_install(0); /* restart delays of 0 ms */
    return 0;
}
static int teardown(void **state) {
    hooks_remove();
    return host_teardown(state);
}

/* start/stop that also record when they return */
static int d_start(hk_service_t *svc, hk_token_t *token) {
    tsvc_t *t = hk_service_data(svc);
    int rc = t_start(svc, token);
    rec_add("started", t->name);
    return rc;
}
static int d_stop(hk_service_t *svc, hk_token_t *token) {
    tsvc_t *t = hk_service_data(svc);
    int rc = t_stop(svc, token);
    rec_add("stopped", t->name);
    return rc;
}

static void add_dep(hk_builder_t *b, tsvc_t *t, bool hosted, bool background, const char *const *deps,
                    hk_restart_policy_t policy) {
    hk_service_def_t def = {.name = t->name,
                            .start = hosted ? d_start : NULL,
                            .stop = hosted ? d_stop : NULL,
                            .execute = background ? t_exec : NULL,
                            .data = t,
                            .destroy = t_destroy,
                            .depends_on = deps,
                            .restart = policy};
    assert_int_equal(hk_builder_add_service(b, &def), 0);
}

static const hk_restart_policy_t NEVER = {0};

static void start_and_stop_follow_dependencies(void **state) {
    (void)state;
    tsvc_t a, b2, c;
    static const char *const c_deps[] = {"b", NULL}, *const b_deps[] = {"a", NULL};
    hk_builder_t *b = test_builder(cap);
    add_dep(b, tsvc(&c, "c"), true, false, c_deps, NEVER);
    add_dep(b, tsvc(&b2, "b"), true, false, b_deps, NEVER);
    add_dep(b, tsvc(&a, "a"), true, false, NULL, NEVER);
    assert_int_equal(run_until_started(b), 0);
    assert_before("started", "a", "start", "b");
    assert_before("started", "b", "start", "c");
    assert_before("stopped", "c", "stop", "b");
    assert_before("stopped", "b", "stop", "a");
    assert_before("stopped", "a", "destroy", "c"); /* destroy hooks: reverse registration order */
    assert_before("destroy", "a", "destroy", "b");
}

static void ties_keep_registration_order(void **state) {
    (void)state;
    tsvc_t x, y, z, w;
    static const char *const y_deps[] = {"Z", NULL}; /* names match case-insensitively */
    hk_builder_t *b = test_builder(cap);
    add_dep(b, tsvc(&x, "x"), true, false, NULL, NEVER);
    add_dep(b, tsvc(&y, "y"), true, false, y_deps, NEVER);
    add_dep(b, tsvc(&z, "z"), true, false, NULL, NEVER);
    add_dep(b, tsvc(&w, "w"), true, false, NULL, NEVER);
    assert_int_equal(run_until_started(b), 0);
    assert_before("started", "x", "start", "z");
    assert_before("started", "z", "start", "y");
    assert_before("started", "y", "start", "w");
    assert_before("stopped", "w", "stop", "y");
    assert_before("stopped", "y", "stop", "z");
    assert_before("stopped", "z", "stop", "x");
}

static void a_background_dependent_stops_before_its_dependency(void **state) {
    (void)state;
    tsvc_t a, d;
    static const char *const d_deps[] = {"a", NULL};
    hk_builder_t *b = test_builder(cap);
    add_dep(b, tsvc(&d, "d"), false, true, d_deps, NEVER);
    add_dep(b, tsvc(&a, "a"), false, true, NULL, NEVER);
    assert_int_equal(run_until_started(b), 0);
    assert_before("exec-end", "d", "exec-end", "a");
}

static int build_fails(hk_builder_t *b) {
    hk_host_t *h = NULL;
    int rc = hk_builder_build(b, &h);
    assert_true(rc < 0);
    assert_null(h);
    return hk_builder_exit_code(b);
}

static void an_unknown_dependency_fails_the_build_with_78(void **state) {
    (void)state;
    tsvc_t a;
    static const char *const deps[] = {"nope", NULL};
    hk_builder_t *b = test_builder(cap);
    add_dep(b, tsvc(&a, "a"), true, false, deps, NEVER);
    assert_int_equal(build_fails(b), 78);
    assert_string_equal(hk_builder_error(b), "service a depends on nope, which is not registered");
    assert_logged("crit: hostkit.host[0] Invalid configuration: service a depends on nope, which is not "
                  "registered");
    hk_builder_free(b);
    assert_int_equal(rec_at("start", "a"), -1);
}

static void a_cycle_fails_the_build_naming_the_chain(void **state) {
    (void)state;
    tsvc_t a, b2, c, x;
    static const char *const a_deps[] = {"b", NULL}, *const b_deps[] = {"c", NULL},
                             *const c_deps[] = {"a", NULL};
    hk_builder_t *b = test_builder(cap);
    add_dep(b, tsvc(&x, "x"), true, false, NULL, NEVER);
    add_dep(b, tsvc(&a, "a"), true, false, a_deps, NEVER);
    add_dep(b, tsvc(&b2, "b"), true, false, b_deps, NEVER);
    add_dep(b, tsvc(&c, "c"), true, false, c_deps, NEVER);
    assert_int_equal(build_fails(b), 78);
    assert_string_equal(hk_builder_error(b), "service dependency cycle: a -> b -> c -> a");
    hk_builder_free(b);
    assert_int_equal(rec_count(), 4); /* four destroy hooks, nothing started */
    assert_int_equal(rec_at("start", "x"), -1);

    static const char *const self[] = {"s", NULL};
    tsvc_t s;
    b = test_builder(cap);
    add_dep(b, tsvc(&s, "s"), true, false, self, NEVER);
    assert_int_equal(build_fails(b), 78);
    assert_string_equal(hk_builder_error(b), "service dependency cycle: s -> s");
    hk_builder_free(b);
}

static void concurrent_start_waits_for_dependencies_only(void **state) {
    (void)state;
    tsvc_t a, b2, c;
    static const char *const c_deps[] = {"a", "b", NULL};
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ServicesStartConcurrently", "true");
    add_dep(b, tsvc(&c, "c"), true, false, c_deps, NEVER);
    add_dep(b, tsvc(&a, "a"), true, false, NULL, NEVER);
    add_dep(b, tsvc(&b2, "b"), true, false, NULL, NEVER);
    /* a and b start at the same time: each waits until the other is in its start */
    a.peer = &b2;
    b2.peer = &a;
    a.rendezvous_start = b2.rendezvous_start = true;
    assert_int_equal(run_until_started(b), 0);
    assert_before("started", "a", "start", "c");
    assert_before("started", "b", "start", "c");
    assert_false(pthread_equal(a.start_thread, b2.start_thread));
}

static void concurrent_stop_waits_for_dependents(void **state) {
    (void)state;
    tsvc_t a, b2, c;
    static const char *const c_deps[] = {"a", NULL};
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ServicesStopConcurrently", "true");
    add_dep(b, tsvc(&a, "a"), true, false, NULL, NEVER);
    add_dep(b, tsvc(&c, "c"), true, false, c_deps, NEVER);
    add_dep(b, tsvc(&b2, "b"), true, false, NULL, NEVER);
    /* b and c are independent: they stop at the same time */
    b2.peer = &c;
    c.peer = &b2;
    b2.rendezvous_stop = c.rendezvous_stop = true;
    assert_int_equal(run_until_started(b), 0);
    assert_before("stopped", "c", "stop", "a");
    assert_false(pthread_equal(b2.stop_thread, c.stop_thread));
}

/* ---- rest_for_one ---------------------------------------------------------------- */

static atomic_int s_runs;
static int s_exec(hk_service_t *svc, hk_token_t *stopping) {
    int run = atomic_fetch_add(&s_runs, 1) + 1;
    rec_add("exec", "S");
    if (run == 1) {
        hk_token_wait(hk_host_started(hk_service_host(svc)));
        return hk_service_fail(svc, -EIO, "S broke");
    }
    hk_token_wait(stopping);
    return 0;
}

static int s_start(hk_service_t *svc, hk_token_t *token) {
    (void)svc;
    (void)token;
    rec_add("start", "S");
    return 0;
}

static bool d2_ran_twice(void *arg) {
    (void)arg;
    return rec_nth("exec", "D2", 2) >= 0;
}

static void dependents_restart_after_the_failed_service(void **state) {
    (void)state;
    atomic_store(&s_runs, 0);
    tsvc_t d1, d2, i;
    static const char *const d1_deps[] = {"S", NULL}, *const d2_deps[] = {"D1", NULL};
    hk_builder_t *b = test_builder(cap);
    hk_service_def_t s = {.name = "S", .start = s_start, .execute = s_exec,
                          .restart = {.policy = HK_RESTART_ON_FAILURE}};
    assert_int_equal(hk_builder_add_service(b, &s), 0);
    add_dep(b, tsvc(&d1, "D1"), true, false, d1_deps, NEVER);
    add_dep(b, tsvc(&d2, "D2"), false, true, d2_deps, NEVER);
    add_dep(b, tsvc(&i, "I"), true, false, NULL, NEVER);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "S", HK_SERVICE_RUNNING, 1);
    wait_state(r.h, "D2", HK_SERVICE_RUNNING, 1);
    wait_state(r.h, "D1", HK_SERVICE_RUNNING, 1);
    assert_true(wait_until(d2_ran_twice, NULL, 10000)); /* Running once its thread is launched */
    /* stopped in reverse order, then S, then the dependents in order */
    int d2_end = rec_nth("exec-end", "D2", 1), d1_stop = rec_nth("stop", "D1", 1);
    int s2 = rec_nth("start", "S", 2), d1_start2 = rec_nth("start", "D1", 2);
    int d2_exec2 = rec_nth("exec", "D2", 2);
    if (!(d2_end >= 0 && d2_end < d1_stop && d1_stop < s2 && s2 < d1_start2 && d1_start2 < d2_exec2)) {
        rec_dump();
        fail_msg("rest_for_one order: D2 end %d, D1 stop %d, S start 2 %d, D1 start 2 %d, D2 run 2 %d",
                 d2_end, d1_stop, s2, d1_start2, d2_exec2);
    }
    assert_logged("info: hostkit.host[0] Stopping service D1: it depends on S, which restarts");
    assert_logged("info: hostkit.host[0] Stopping service D2: it depends on S, which restarts");
    assert_logged("info: hostkit.host[0] Service D2 restarted");
    assert_not_logged("Background service D2");
    assert_int_equal(status_of(r.h, "I").restarts, 0);
    assert_int_equal(status_of(r.h, "D1").restarts, 1);
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(rec_times("start", "I"), 1);
    assert_int_equal(rec_times("stop", "I"), 1);
    assert_int_equal(rec_times("stop", "D1"), 2);
    assert_int_equal(rec_times("exec", "D2"), 2);
}

static atomic_int d_starts;
static int fails_second_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    rec_add("start", "D");
    if (atomic_fetch_add(&d_starts, 1) == 1)
        return hk_service_fail(svc, -ENOSPC, "disk full");
    return 0;
}

static void a_dependent_that_cannot_restart_stops_the_host(void **state) {
    (void)state;
    atomic_store(&s_runs, 0);
    atomic_store(&d_starts, 0);
    static const char *const d_deps[] = {"S", NULL};
    hk_builder_t *b = test_builder(cap);
    hk_service_def_t s = {.name = "S", .execute = s_exec,
                          .restart = {.policy = HK_RESTART_ON_FAILURE}};
    hk_service_def_t d = {.name = "D", .start = fails_second_start, .depends_on = d_deps};
    assert_int_equal(hk_builder_add_service(b, &s), 0);
    assert_int_equal(hk_builder_add_service(b, &d), 0);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 1);
    assert_logged("crit: hostkit.host[0] Service D failed to restart: disk full (No space left on device)");
    assert_int_equal(atomic_load(&d_starts), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(start_and_stop_follow_dependencies, setup, teardown),
        cmocka_unit_test_setup_teardown(ties_keep_registration_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_background_dependent_stops_before_its_dependency, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unknown_dependency_fails_the_build_with_78, setup, teardown),
        cmocka_unit_test_setup_teardown(a_cycle_fails_the_build_naming_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_start_waits_for_dependencies_only, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_stop_waits_for_dependents, setup, teardown),
        cmocka_unit_test_setup_teardown(dependents_restart_after_the_failed_service, setup, teardown),
        cmocka_unit_test_setup_teardown(a_dependent_that_cannot_restart_stops_the_host, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
