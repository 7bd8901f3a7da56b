/*
 * Restart policies: never/on-failure/always, the done and stop-host codes,
 * full-jitter backoff bounds, the stopping token ending a backoff wait, the
 * intensity window and its exit code, configuration over the API, fresh
 * token and scope per restart, service states, and failed allocations while
 * restarting. The clock and the random source are injected (no real
 * backoff is slept through); waits poll states with a deadline.
 */
#include "supertest.h"

typedef struct flaky {
    char name[32];
    atomic_int runs;
    int fail_runs;      /* runs 1..fail_runs return rc; -1: every run */
    int rc;             /* < 0: hk_service_fail(rc); else returned as is */
    bool advance_clock; /* each failing run moves the fake clock 61 s on */
    long failalloc_at;  /* > 0: run 1 arms the failing allocator before returning */
    hk_token_t *tokens[64];
    bool cancelled_at_entry[64];
    int serial[64]; /* the instance's serial number per run (0: none) */
} flaky_t;

static int flaky_exec(hk_service_t *svc, hk_token_t *stopping) {
    flaky_t *f = hk_service_data(svc);
    int run = atomic_fetch_add(&f->runs, 1) + 1;
    rec_add("exec", f->name);
    if (run <= 64) {
        f->tokens[run - 1] = stopping;
        f->cancelled_at_entry[run - 1] = hk_token_is_cancelled(stopping);
        int *inst = hk_service_instance(svc);
        f->serial[run - 1] = inst ? *inst : 0;
    }
    if (f->fail_runs < 0 || run <= f->fail_runs) {
        if (f->advance_clock)
            atomic_fetch_add(&fake_now, 61000000000ull);
        int rc = f->rc < 0 ? hk_service_fail(svc, f->rc, "boom %d", run) : f->rc;
        if (f->failalloc_at > 0 && run == 1)
            failalloc_set(f->failalloc_at, false);
        return rc;
    }
    hk_token_wait(stopping);
    return 0;
}

typedef struct runs_wait {
    flaky_t *f;
    int n;
} runs_wait_t;
static bool runs_reached(void *arg) {
    runs_wait_t *w = arg;
    return atomic_load(&w->f->runs) >= w->n;
}
/* The state turns Running when the thread is launched: wait for it to run. */
#define wait_runs(f_, n_)                                                                          \
    do {                                                                                           \
        runs_wait_t rw_ = {(f_), (n_)};                                                            \
        assert_true(wait_until(runs_reached, &rw_, 10000));                                        \
    } while (0)

static flaky_t *flaky(flaky_t *f, const char *name, int fail_runs, int rc) {
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->fail_runs = fail_runs;
    f->rc = rc;
    return f;
}

static void add_flaky(hk_builder_t *b, flaky_t *f, hk_restart_policy_t policy, const char *instance) {
    hk_service_def_t def = {
        .name = f->name, .execute = flaky_exec, .data = f, .restart = policy, .instance = instance};
    assert_int_equal(hk_builder_add_service(b, &def), 0);
}

static int setup(void **state) {
    host_setup(state);
    hooks_install(0); /* delays of 0 ms unless a test says otherwise */
    return 0;
}
static int teardown(void **state) {
    hooks_remove();
    return host_teardown(state);
}

/* ---- backoff ----------------------------------------------------------------- */

static void backoff_delays_stay_within_the_growing_cap(void **state) {
    (void)state;
    uint64_t bcap;
    uint64_t rnds[] = {0, 1, 0x5555555555555555u, 0x8000000000000000u, 0xDEADBEEFCAFEF00Du,
                       UINT64_MAX - 1, UINT64_MAX};
    for (unsigned n = 1; n <= 40; n++) {
        uint64_t expect = 100;
        for (unsigned i = 1; i < n && expect < 30000; i++)
            expect *= 2;
        if (expect > 30000)
            expect = 30000;
        for (size_t r = 0; r < HK_ARRAY_SIZE(rnds); r++) {
            uint64_t d = hk__backoff_ms(100, 30000, n, rnds[r], &bcap);
            assert_int_equal(bcap, expect);
            assert_true(d <= bcap);
        }
        assert_int_equal(hk__backoff_ms(100, 30000, n, 0, NULL), 0);
        assert_int_equal(hk__backoff_ms(100, 30000, n, UINT64_MAX, NULL), expect);
    }
    /* full jitter: the whole range is used (the host's own random source) */
    hooks_remove();
    uint64_t st = 42, lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t d = hk__backoff_ms(100, 30000, 3, hk__sup_random(&st), &bcap);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 40);
    assert_true(hi > 360 && hi <= 400);
    /* initial above max: capped; initial 0: no wait */
    assert_int_equal(hk__backoff_ms(500, 200, 1, UINT64_MAX, &bcap), 200);
    assert_int_equal(hk__backoff_ms(0, 200, 7, UINT64_MAX, &bcap), 0);
}

static void restart_delays_double_up_to_the_maximum(void **state) {
    (void)state;
    hooks_install(UINT64_MAX); /* every delay is its cap */
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", 5, -EIO),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .backoff_initial_ms = 1,
                                    .backoff_max_ms = 8, .max_restarts = 10},
              NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_RUNNING, 5);
    wait_runs(&f, 6);
    assert_int_equal(atomic_load(&f.runs), 6);
    assert_logged("warn: hostkit.host[0] Service flaky failed: boom 1 (Input/output error); restarting "
                  "in 1 ms (attempt 1, backoff up to 1 ms)");
    assert_logged("restarting in 2 ms (attempt 2, backoff up to 2 ms)");
    assert_logged("restarting in 4 ms (attempt 3, backoff up to 4 ms)");
    assert_logged("Service flaky failed: boom 4 (Input/output error); restarting in 8 ms (attempt 4");
    assert_logged("Service flaky failed: boom 5 (Input/output error); restarting in 8 ms (attempt 5, "
                  "backoff up to 8 ms)");
    assert_logged("info: hostkit.host[0] Service flaky restarted");
    assert_int_equal(bg_stop_join(&r), 0);
}

/* ---- policies -------------------------------------------------------------------- */

static void never_keeps_the_stophost_behaviour(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, -EIO), (hk_restart_policy_t){0}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 1);
    assert_int_equal(atomic_load(&f.runs), 1);
    assert_logged("fail: hostkit.host[0] Background service flaky failed: boom 1 (Input/output error)");
    assert_not_logged("restarting");
}

static void never_with_ignore_keeps_running(void **state) {
    (void)state;
    flaky_t f, other;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:BackgroundServiceExceptionBehavior", "Ignore");
    add_flaky(b, flaky(&f, "flaky", -1, -EIO), (hk_restart_policy_t){0}, NULL);
    add_flaky(b, flaky(&other, "other", 0, 0), (hk_restart_policy_t){0}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_FAILED, 0);
    hk_service_status_t s = status_of(r.h, "flaky");
    assert_int_equal(s.last_error, -EIO);
    assert_string_equal(s.last_error_text, "boom 1 (Input/output error)");
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(atomic_load(&f.runs), 1);
}

static void on_failure_restarts_until_it_runs(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", 3, -ECONNREFUSED),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_RUNNING, 3);
    wait_runs(&f, 4);
    hk_service_status_t s = status_of(r.h, "flaky");
    assert_int_equal(s.restarts, 3);
    assert_int_equal(s.last_error, -ECONNREFUSED);
    assert_int_equal(atomic_load(&f.runs), 4);
    assert_logged("warn: hostkit.host[0] Service flaky failed: boom 1 (Connection refused); restarting "
                  "in 0 ms (attempt 1, backoff up to 100 ms)");
    assert_logged("restarting in 0 ms (attempt 2, backoff up to 200 ms)");
    assert_logged("restarting in 0 ms (attempt 3, backoff up to 400 ms)");
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(atomic_load(&f.runs), 4);
}

static void on_failure_does_not_restart_a_service_that_returns_0(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, 0), (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE},
              NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_STOPPED, 0);
    assert_logged("Background service flaky completed");
    assert_false(atomic_load(&r.done)); /* the host keeps running */
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(atomic_load(&f.runs), 1);
}

static void always_restarts_a_service_that_returns_0(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", 2, 0), (hk_restart_policy_t){.policy = HK_RESTART_ALWAYS}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_RUNNING, 2);
    wait_runs(&f, 3);
    assert_int_equal(atomic_load(&f.runs), 3);
    assert_logged("Service flaky failed: execute returned 0 (Restart:Policy=always); restarting in 0 ms "
                  "(attempt 1, backoff up to 100 ms)");
    assert_int_equal(status_of(r.h, "flaky").last_error, 0);
    assert_int_equal(bg_stop_join(&r), 0);
}

static void done_code_wins_over_always(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, HK_SERVICE_DONE),
              (hk_restart_policy_t){.policy = HK_RESTART_ALWAYS}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_STOPPED, 0);
    assert_logged("info: hostkit.host[0] Background service flaky completed");
    assert_false(atomic_load(&r.done));
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(atomic_load(&f.runs), 1);
    assert_not_logged("restarting");
}

static void stop_host_code_stops_the_host_gracefully(void **state) {
    (void)state;
    flaky_t f, other;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&other, "other", 0, 0), (hk_restart_policy_t){0}, NULL);
    add_flaky(b, flaky(&f, "flaky", -1, HK_SERVICE_STOP_HOST),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 0); /* nobody called hk_host_stop */
    assert_int_equal(atomic_load(&f.runs), 1);
    assert_logged("info: hostkit.host[0] Service flaky asked the host to stop");
    assert_not_logged("restarting");
}

static void stop_host_code_works_with_policy_never(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, HK_SERVICE_STOP_HOST), (hk_restart_policy_t){0}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 0);
    assert_logged("Service flaky asked the host to stop");
}

/* ---- intensity --------------------------------------------------------------------- */

static void too_many_failures_in_the_window_give_up_with_exit_1(void **state) {
    (void)state;
    flaky_t f, other;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, -EIO),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .max_restarts = 3,
                                    .within_seconds = 10},
              NULL);
    add_flaky(b, flaky(&other, "other", 0, 0), (hk_restart_policy_t){0}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 1);
    assert_int_equal(atomic_load(&f.runs), 4); /* the first run and 3 restarts */
    assert_logged("fail: hostkit.host[0] Service flaky failed: boom 4 (Input/output error)");
    assert_logged("crit: hostkit.host[0] Service flaky failed 4 times in 10s; giving up");
    assert_int_equal(capture_count(cap, "restarting in"), 3);
}

static void failures_outside_the_window_are_forgotten(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", 10, -EIO),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .max_restarts = 2,
                                    .within_seconds = 60},
              NULL);
    f.advance_clock = true; /* 61 s between two failures */
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_RUNNING, 10);
    wait_runs(&f, 11);
    assert_int_equal(atomic_load(&f.runs), 11);
    assert_not_logged("giving up");
    /* each failure is the first in its window: the backoff starts over */
    assert_int_equal(capture_count(cap, "(attempt "), 10);
    assert_int_equal(capture_count(cap, "backoff up to 100 ms)"), 10);
    assert_int_equal(bg_stop_join(&r), 0);
}

static void zero_max_restarts_from_configuration_gives_up_at_once(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Services:flaky:Restart:MaxRestarts", "0");
    add_flaky(b, flaky(&f, "flaky", -1, -EIO), (hk_restart_policy_t){.policy = HK_RESTART_ALWAYS},
              NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 1);
    assert_int_equal(atomic_load(&f.runs), 1);
    assert_logged("Service flaky failed 1 times in 60s; giving up");
}

/* ---- the stopping token ends a backoff wait -------------------------------------------- */

static void a_stop_ends_the_backoff_wait_at_once(void **state) {
    (void)state;
    hooks_install(UINT64_MAX);
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    add_flaky(b, flaky(&f, "flaky", -1, -EIO),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .backoff_initial_ms = 600000,
                                    .backoff_max_ms = 600000},
              NULL);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_BACKING_OFF, 1);
    assert_logged("restarting in 600000 ms");
    uint64_t t0 = mono_ns();
    int code = bg_stop_join(&r);
    assert_int_equal(code, 0);
    assert_true(mono_ns() - t0 < 30000000000ull); /* not the 10-minute delay */
    assert_int_equal(atomic_load(&f.runs), 1);
}

/* ---- configuration ---------------------------------------------------------------------- */

static void configuration_wins_over_the_api(void **state) {
    (void)state;
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Services:flaky:Restart:Policy", "on-failure");
    hk_config_set(c, "Services:flaky:Restart:MaxRestarts", "1");
    hk_config_set(c, "Services:flaky:Restart:WithinSeconds", "5");
    hk_config_set(c, "Services:flaky:Restart:BackoffInitialMs", "0");
    hk_config_set(c, "Services:flaky:Restart:BackoffMaxMs", "7");
    add_flaky(b, flaky(&f, "flaky", -1, -EIO), (hk_restart_policy_t){0}, NULL);
    bg_run_t r;
    bg_start(&r, b);
    assert_int_equal(bg_join(&r), 1);
    assert_int_equal(atomic_load(&f.runs), 2);
    assert_logged("restarting in 0 ms (attempt 1, backoff up to 0 ms)");
    assert_logged("Service flaky failed 2 times in 5s; giving up");
}

static int build_code_with(const char *key, const char *value) {
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), key, value);
    add_flaky(b, flaky(&f, "flaky", -1, -EIO), (hk_restart_policy_t){0}, NULL);
    hk_host_t *h = NULL;
    int rc = hk_builder_build(b, &h);
    int code = hk_builder_exit_code(b);
    assert_true(rc < 0);
    assert_null(h);
    hk_builder_free(b);
    return code;
}

static void bad_restart_configuration_fails_the_build_with_78(void **state) {
    (void)state;
    assert_int_equal(build_code_with("Services:flaky:Restart:Policy", "sometimes"), 78);
    assert_logged("Invalid configuration: Services:flaky:Restart:Policy: \"sometimes\" is not one of "
                  "never, on-failure, always");
    assert_int_equal(build_code_with("Services:flaky:Restart:MaxRestarts", "-1"), 78);
    assert_logged("Services:flaky:Restart:MaxRestarts: \"-1\" is out of range");
    assert_int_equal(build_code_with("Services:flaky:Restart:BackoffMaxMs", "soon"), 78);
    assert_logged("Services:flaky:Restart:BackoffMaxMs: \"soon\" is not an integer");
    assert_int_equal(build_code_with("Services:flaky:Restart:WithinSeconds", "0.5"), 78);
    assert_logged("Services:flaky:Restart:WithinSeconds");
}

/* ---- fresh token and scope ------------------------------------------------------------------ */

static atomic_int thing_serial;
static int thing_create(hk_scope_t *scope, void *data, void **ret) {
    (void)scope;
    (void)data;
    int *v = malloc(sizeof *v);
    if (!v)
        return -ENOMEM;
    *v = atomic_fetch_add(&thing_serial, 1) + 1;
    *ret = v;
    return 0;
}
static void thing_free(void *inst, void *data) {
    (void)data;
    free(inst);
}

static void each_restart_gets_a_fresh_token_and_scope(void **state) {
    (void)state;
    atomic_store(&thing_serial, 0);
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_services_add_transient(hk_builder_services(b), "Thing", thing_create,
                                               thing_free, NULL, NULL),
                     0);
    add_flaky(b, flaky(&f, "flaky", 2, -EIO), (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE},
              "Thing");
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "flaky", HK_SERVICE_RUNNING, 2);
    wait_runs(&f, 3);
    assert_int_equal(bg_stop_join(&r), 0);
    assert_int_equal(atomic_load(&f.runs), 3);
    for (int i = 0; i < 3; i++)
        assert_false(f.cancelled_at_entry[i]);
    assert_ptr_not_equal(f.tokens[0], f.tokens[1]);
    assert_ptr_not_equal(f.tokens[1], f.tokens[2]);
    /* a transient instance: a new one, from a new scope, for each restart */
    assert_int_equal(f.serial[0], 1);
    assert_int_equal(f.serial[1], 2);
    assert_int_equal(f.serial[2], 3);
}

/* ---- states ----------------------------------------------------------------------------------- */

static int hosted_start(hk_service_t *svc, hk_token_t *token) {
    (void)svc;
    (void)token;
    return 0;
}

static void states_are_visible_through_the_status_api(void **state) {
    (void)state;
    assert_string_equal(hk_service_state_name(HK_SERVICE_CREATED), "Created");
    assert_string_equal(hk_service_state_name(HK_SERVICE_STARTING), "Starting");
    assert_string_equal(hk_service_state_name(HK_SERVICE_RUNNING), "Running");
    assert_string_equal(hk_service_state_name(HK_SERVICE_BACKING_OFF), "BackingOff");
    assert_string_equal(hk_service_state_name(HK_SERVICE_STOPPING), "Stopping");
    assert_string_equal(hk_service_state_name(HK_SERVICE_STOPPED), "Stopped");
    assert_string_equal(hk_service_state_name(HK_SERVICE_FAILED), "Failed");
    assert_string_equal(hk_service_state_name((hk_service_state_t)99), "Unknown");
    assert_int_equal(hk_host_service_status(NULL, NULL, 0), 0);

    hooks_install(UINT64_MAX);
    flaky_t f;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_builder_add_hosted(b, "web", hosted_start, NULL, NULL, NULL), 0);
    add_flaky(b, flaky(&f, "flaky", 1, -EPIPE),
              (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .backoff_initial_ms = 600000,
                                    .backoff_max_ms = 600000},
              NULL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_service_status_t st[2];
    assert_int_equal(hk_host_service_status(h, NULL, 0), 2);
    assert_int_equal(hk_host_service_status(h, st, 1), 2); /* writes one */
    assert_string_equal(st[0].name, "web");
    assert_int_equal(st[0].state, HK_SERVICE_CREATED);
    assert_int_equal(hk_host_service_status(h, st, 2), 2);
    assert_string_equal(st[1].name, "flaky");
    assert_int_equal(st[1].state, HK_SERVICE_CREATED);
    assert_int_equal(st[1].state_since_ns, 1000000000u);
    assert_string_equal(st[1].last_error_text, "");

    bg_run_t r = {.h = h};
    assert_int_equal(pthread_create(&r.thread, NULL, bg_run_main, &r), 0);
    wait_state(h, "flaky", HK_SERVICE_BACKING_OFF, 1);
    hk_service_status_t s = status_of(h, "flaky");
    assert_int_equal(s.last_error, -EPIPE);
    assert_string_equal(s.last_error_text, "boom 1 (Broken pipe)");
    assert_int_equal(status_of(h, "web").state, HK_SERVICE_RUNNING);
    atomic_fetch_add(&fake_now, 5000000000ull);
    hk_host_stop(h);
    assert_true(wait_until(bg_done, &r, 20000));
    pthread_join(r.thread, NULL);
    assert_int_equal(r.code, 0);
    s = status_of(h, "flaky");
    assert_int_equal(s.state, HK_SERVICE_STOPPED);
    assert_int_equal(s.state_since_ns, 6000000000u);
    assert_int_equal(status_of(h, "web").state, HK_SERVICE_STOPPED);
    hk_host_free(h);
}

static int failing_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    return hk_service_fail(svc, -EACCES, "no access");
}

static void a_failed_start_is_state_failed(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_builder_add_hosted(b, "web", failing_start, NULL, NULL, NULL), 0);
    assert_int_equal(hk_builder_add_hosted(b, "later", hosted_start, NULL, NULL, NULL), 0);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_int_equal(hk_host_run(h), 1);
    hk_service_status_t s = status_of(h, "web");
    assert_int_equal(s.state, HK_SERVICE_FAILED);
    assert_int_equal(s.last_error, -EACCES);
    assert_string_equal(s.last_error_text, "no access (Permission denied)");
    assert_int_equal(status_of(h, "later").state, HK_SERVICE_CREATED);
    hk_host_free(h);
}

/* ---- failed allocations while restarting ------------------------------------------------------ */

static void failed_allocations_while_restarting_do_not_crash(void **state) {
    (void)state;
    failalloc_install();
    for (long n = 1; n <= 40; n++) {
        rec_reset();
        capture_free(cap);
        cap = capture_new();
        atomic_store(&thing_serial, 0);
        flaky_t f;
        hk_builder_t *b = test_builder(cap);
        assert_int_equal(hk_services_add_transient(hk_builder_services(b), "Thing", thing_create,
                                                   thing_free, NULL, NULL),
                         0);
        add_flaky(b, flaky(&f, "flaky", 1, -EIO),
                  (hk_restart_policy_t){.policy = HK_RESTART_ON_FAILURE, .max_restarts = 3}, "Thing");
        f.failalloc_at = n; /* the nth allocation after run 1 failed */
        bg_run_t r;
        bg_start(&r, b);
        state_wait_t w = {r.h, "flaky", HK_SERVICE_RUNNING, 1};
        bool back = wait_until(state_reached, &w, 10000);
        int code = bg_stop_join(&r);
        failalloc_set(0, false);
        /* Either it came back (a failed restart is retried) or the host gave up cleanly. */
        if (back)
            assert_int_equal(code, 0);
        else
            assert_int_equal(code, 1);
    }
    failalloc_uninstall();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(backoff_delays_stay_within_the_growing_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_delays_double_up_to_the_maximum, setup, teardown),
        cmocka_unit_test_setup_teardown(never_keeps_the_stophost_behaviour, setup, teardown),
        cmocka_unit_test_setup_teardown(never_with_ignore_keeps_running, setup, teardown),
        cmocka_unit_test_setup_teardown(on_failure_restarts_until_it_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(on_failure_does_not_restart_a_service_that_returns_0, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(always_restarts_a_service_that_returns_0, setup, teardown),
        cmocka_unit_test_setup_teardown(done_code_wins_over_always, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_host_code_stops_the_host_gracefully, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_host_code_works_with_policy_never, setup, teardown),
        cmocka_unit_test_setup_teardown(too_many_failures_in_the_window_give_up_with_exit_1, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failures_outside_the_window_are_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_max_restarts_from_configuration_gives_up_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stop_ends_the_backoff_wait_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(configuration_wins_over_the_api, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_restart_configuration_fails_the_build_with_78, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(each_restart_gets_a_fresh_token_and_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(states_are_visible_through_the_status_api, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_start_is_state_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_allocations_while_restarting_do_not_crash, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
