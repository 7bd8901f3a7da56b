/*
 * The host's lifecycle rules (docs/host.md, "Lifecycle rules"): start order,
 * rollback of a failed start, stop order, background services, exit codes,
 * lifetime events, start-up and shutdown deadlines, concurrency options.
 */
#include "hosttest.h"

#include <uv.h>

/* ---- rule 1: start ------------------------------------------------------- */

static void hosted_services_start_in_registration_order_and_stop_in_reverse(void **state) {
    (void)state;
    tsvc_t a, b2, c;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    add_hosted(b, tsvc(&c, "c"));
    assert_int_equal(run_until_started(b), 0);
    assert_before("start", "a", "start", "b");
    assert_before("start", "b", "start", "c");
    assert_before("start", "c", "stop", "c");
    assert_before("stop", "c", "stop", "b");
    assert_before("stop", "b", "stop", "a");
    assert_before("stop", "a", "destroy", "c");
    assert_before("destroy", "c", "destroy", "b");
    assert_before("destroy", "b", "destroy", "a");
    /* start and stop run on the host thread (this one) */
    assert_true(pthread_equal(a.start_thread, pthread_self()));
    assert_true(pthread_equal(c.stop_thread, pthread_self()));
}

static void host_logs_lifetime_messages_once_started(void **state) {
    (void)state;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "environment", "Staging");
    hk_config_set(hk_builder_config(b), "contentRoot", "/srv/app");
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    int started = capture_find(cap, "info: hostkit.lifetime[0] Application started. Press Ctrl+C to shut down.", 0);
    assert_true(started >= 0);
    assert_int_equal(capture_find(cap, "info: hostkit.lifetime[0] Hosting environment: Staging", 0), started + 1);
    assert_int_equal(capture_find(cap, "info: hostkit.lifetime[0] Content root path: /srv/app", 0), started + 2);
    assert_true(capture_find(cap, "info: hostkit.lifetime[0] Application is shutting down...", 0) > started);
    assert_true(capture_find(cap, "dbug: hostkit.host[0] Starting service a", 0) < started);
    assert_true(capture_find(cap, "dbug: hostkit.host[0] Started service a", 0) < started);
    assert_true(capture_find(cap, "dbug: hostkit.host[0] Stopping service a", 0) > started);
    assert_true(capture_find(cap, "dbug: hostkit.host[0] Stopped service a", 0) > started);
}

static void suppress_status_messages_hides_lifetime_lines(void **state) {
    (void)state;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:SuppressStatusMessages", "true");
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    assert_not_logged("Application started");
    assert_not_logged("Hosting environment");
    assert_not_logged("Application is shutting down");
}

static void environment_defaults_to_production_and_content_root_to_cwd(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_string_equal(hk_host_environment(h), "Production");
    assert_string_equal(hk_host_content_root(h), cwd);
    hk_host_free(h);
}

static void relative_content_root_is_made_absolute(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "contentRoot", "data");
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    char cwd[4096], want[4200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/data", cwd);
    assert_string_equal(hk_host_content_root(h), want);
    hk_host_free(h);
}

typedef struct gate {
    atomic_bool open;
} gate_t;
static bool gate_open(void *arg) { return atomic_load(&((gate_t *)arg)->open); }

static gate_t exec_gate;
/* Blocks until the host has started: proves execute does not block start-up. */
static int exec_waits_for_started(hk_service_t *svc, hk_token_t *stopping) {
    (void)stopping;
    rec_add("exec", hk_service_name(svc));
    bool ok = wait_until(gate_open, &exec_gate, 5000);
    rec_add(ok ? "exec-saw-started" : "exec-timeout", hk_service_name(svc));
    return 0;
}
static void open_gate(hk_token_t *t, void *data) {
    (void)t;
    atomic_store(&((gate_t *)data)->open, true);
}

static void background_service_runs_on_its_own_thread_without_blocking_startup(void **state) {
    (void)state;
    atomic_store(&exec_gate.open, false);
    hk_builder_t *b = test_builder(cap);
    hk_builder_add_background(b, "bg", exec_waits_for_started, NULL, NULL);
    tsvc_t after;
    add_hosted(b, tsvc(&after, "after"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_token_reg_t r1 = {0}, r2 = {0};
    hk_token_register(hk_host_started(h), &r1, open_gate, &exec_gate);
    hk_token_register(hk_host_started(h), &r2, stop_host_cb, h);
    assert_int_equal(hk_host_run(h), 0);
    hk_host_free(h);
    /* The thread waited for "started" while the host went on starting "after". */
    assert_true(rec_at("exec-saw-started", "bg") >= 0);
    assert_true(rec_at("start", "after") >= 0);
}

static void background_thread_is_not_the_host_thread(void **state) {
    (void)state;
    tsvc_t w;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    assert_int_equal(run_until_started(b), 0);
    assert_true(rec_at("exec", "w") >= 0);
    assert_false(pthread_equal(w.exec_thread, pthread_self()));
    assert_before("exec-end", "w", "destroy", "w");
}

/* ---- rule 2: failed start ------------------------------------------------ */

static void failed_start_at(int pos) {
    tsvc_t s[3];
    const char *names[] = {"s0", "s1", "s2"};
    hk_builder_t *b = test_builder(cap);
    for (int i = 0; i < 3; i++) {
        tsvc(&s[i], names[i]);
        if (i == pos)
            s[i].start_rc = -ECONNREFUSED;
        add_hosted(b, &s[i]);
    }
    assert_int_equal(run_until_started(b), 1);
    char line[128];
    snprintf(line, sizeof line, "Service %s failed to start: %s refuses to start (Connection refused)",
             names[pos], names[pos]);
    assert_logged(line);
    assert_not_logged("Application started");
    for (int i = 0; i < 3; i++) {
        if (i < pos) { /* started before the failure: stopped, in reverse */
            assert_true(rec_at("stop", names[i]) >= 0);
        } else { /* the failed one and those after it: not stopped */
            assert_int_equal(rec_at("stop", names[i]), -1);
        }
        if (i > pos)
            assert_int_equal(rec_at("start", names[i]), -1);
        assert_true(rec_at("destroy", names[i]) >= 0); /* data always released */
    }
    if (pos == 2)
        assert_before("stop", "s1", "stop", "s0");
}

static void failed_start_of_first_service_stops_nothing(void **state) {
    (void)state;
    failed_start_at(0);
}
static void failed_start_of_middle_service_stops_the_first(void **state) {
    (void)state;
    failed_start_at(1);
}
static void failed_start_of_last_service_stops_the_others_in_reverse(void **state) {
    (void)state;
    failed_start_at(2);
}

static void failed_start_cancels_started_background_services(void **state) {
    (void)state;
    tsvc_t w, bad;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    add_hosted(b, tsvc(&bad, "bad"));
    bad.start_rc = -EIO;
    assert_int_equal(run_until_started(b), 1);
    assert_true(rec_at("exec-end", "w") >= 0); /* token cancelled, thread joined */
    assert_before("exec-end", "w", "destroy", "w");
}

static void startup_timeout_fails_startup_naming_the_service(void **state) {
    (void)state;
    tsvc_t a, slow, never;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:StartupTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&slow, "slow"));
    slow.start_waits_token = true;
    add_hosted(b, tsvc(&never, "never"));
    assert_int_equal(run_until_started(b), 1);
    assert_logged("Start-up timed out after 0.05s while starting service slow");
    assert_true(rec_at("stop", "a") >= 0);
    assert_int_equal(rec_at("stop", "slow"), -1);
    assert_int_equal(rec_at("start", "never"), -1);
}

/* ---- stop requested during start-up ---------------------------------------- */

static void stop_requested_during_startup_is_honoured_at_the_next_safe_point(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    a.stop_host_in_start = true; /* as if SIGTERM arrived while a was starting */
    add_hosted(b, tsvc(&b2, "b"));
    assert_int_equal(run_until_started(b), 0);
    assert_true(rec_at("stop", "a") >= 0);      /* a had started: stopped */
    assert_int_equal(rec_at("start", "b"), -1); /* b never started */
    assert_logged("Stop requested during start-up");
    assert_not_logged("Application started");
}

static void stop_before_run_starts_nothing(void **state) {
    (void)state;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_host_stop(h);
    assert_int_equal(hk_host_run(h), 0);
    assert_true(hk_token_is_cancelled(hk_host_stopped(h)));
    assert_false(hk_token_is_cancelled(hk_host_started(h)));
    hk_host_free(h);
    assert_int_equal(rec_at("start", "a"), -1);
    assert_true(rec_at("destroy", "a") >= 0);
}

typedef struct stopper {
    hk_host_t *host;
    tsvc_t *waiter;
} stopper_t;
static void *stop_when_in_start(void *arg) {
    stopper_t *s = arg;
    if (wait_until(peer_in_start, s->waiter, 5000))
        hk_host_stop(s->host);
    return NULL;
}

static void stop_from_another_thread_cancels_a_blocking_start(void **state) {
    (void)state;
    tsvc_t first, blocking, never;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&first, "first"));
    add_hosted(b, tsvc(&blocking, "blocking"));
    blocking.start_waits_token = true;
    add_hosted(b, tsvc(&never, "never"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    stopper_t s = {h, &blocking};
    pthread_t th;
    pthread_create(&th, NULL, stop_when_in_start, &s);
    assert_int_equal(hk_host_run(h), 0); /* a requested stop is not a failure */
    pthread_join(th, NULL);
    hk_host_free(h);
    assert_true(rec_at("stop", "first") >= 0);
    assert_int_equal(rec_at("stop", "blocking"), -1);
    assert_int_equal(rec_at("start", "never"), -1);
    assert_not_logged("failed to start");
}

/* ---- rule 3: stop ---------------------------------------------------------- */

static bool stopping_seen_by_stop;
static hk_host_t *current_host;
static int stop_checks_stopping(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    stopping_seen_by_stop = hk_token_is_cancelled(hk_host_stopping(hk_service_host(svc)));
    return 0;
}

static void stop_fires_stopping_then_stops_services_then_fires_stopped(void **state) {
    (void)state;
    stopping_seen_by_stop = false;
    hk_builder_t *b = test_builder(cap);
    hk_builder_add_hosted(b, "s", NULL, stop_checks_stopping, NULL, NULL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    current_host = h;
    hk_token_reg_t reg = {0};
    hk_token_register(hk_host_started(h), &reg, stop_host_cb, h);
    assert_false(hk_token_is_cancelled(hk_host_stopped(h)));
    assert_int_equal(hk_host_run(h), 0);
    assert_true(stopping_seen_by_stop);
    assert_true(hk_token_is_cancelled(hk_host_started(h)));
    assert_true(hk_token_is_cancelled(hk_host_stopping(h)));
    assert_true(hk_token_is_cancelled(hk_host_stopped(h)));
    hk_host_free(h);
}

static void background_tokens_are_cancelled_before_stop_callbacks_run(void **state) {
    (void)state;
    tsvc_t w, h1;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    add_hosted(b, tsvc(&h1, "h1"));
    h1.rendezvous_stop = false;
    assert_int_equal(run_until_started(b), 0);
    /* w's thread ends after its token is cancelled, which precedes any stop callback;
     * the thread may finish before or after h1's stop runs, but it must finish. */
    assert_true(rec_at("exec-end", "w") >= 0);
    assert_true(rec_at("stop", "h1") >= 0);
}

static int lifetime_order[8];
static int lifetime_n;
static pthread_t lifetime_thread[8];
static void lifetime_cb(hk_token_t *t, void *data) {
    (void)t;
    lifetime_thread[lifetime_n] = pthread_self();
    lifetime_order[lifetime_n++] = (int)(intptr_t)data;
}

static void lifetime_events_fire_in_order_on_the_host_thread(void **state) {
    (void)state;
    lifetime_n = 0;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_token_reg_t r[4] = {{0}};
    hk_token_register(hk_host_stopped(h), &r[0], lifetime_cb, (void *)3);
    hk_token_register(hk_host_stopping(h), &r[1], lifetime_cb, (void *)2);
    hk_token_register(hk_host_started(h), &r[2], lifetime_cb, (void *)1);
    hk_token_register(hk_host_started(h), &r[3], stop_host_cb, h);
    assert_int_equal(hk_host_run(h), 0);
    assert_int_equal(lifetime_n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lifetime_order[i], i + 1);
        assert_true(pthread_equal(lifetime_thread[i], pthread_self()));
    }
    /* a callback registered after the event runs at once */
    hk_token_reg_t late = {0};
    assert_int_equal(hk_token_register(hk_host_started(h), &late, lifetime_cb, (void *)9), 1);
    assert_int_equal(lifetime_n, 4);
    hk_host_free(h);
}

static void stop_failure_is_logged_and_exits_1(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    b2.stop_rc = -EBUSY;
    assert_int_equal(run_until_started(b), 1);
    assert_logged("Service b failed to stop: Device or resource busy");
    assert_not_logged("Stopped service b"); /* it did not stop cleanly */
    assert_logged("Stopped service a");
    assert_true(rec_at("stop", "a") >= 0); /* the others still stop */
}

static void hk_host_stop_twice_and_from_many_threads_is_one_graceful_stop(void **state) {
    (void)state;
    tsvc_t w;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_token_reg_t r1 = {0}, r2 = {0};
    hk_token_register(hk_host_started(h), &r1, stop_host_cb, h);
    hk_token_register(hk_host_started(h), &r2, stop_host_cb, h);
    assert_int_equal(hk_host_run(h), 0);
    hk_host_stop(h); /* after run: harmless */
    hk_host_free(h);
    assert_int_equal(capture_count(cap, "Application is shutting down..."), 1);
    assert_int_equal(capture_count(cap, "Stopped service w"), 1);
}

static void run_twice_returns_1(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_host_stop(h);
    assert_int_equal(hk_host_run(h), 0);
    assert_int_equal(hk_host_run(h), 1);
    assert_logged("hk_host_run was called twice");
    hk_host_free(h);
}

/* ---- rule 4: shutdown timeout ---------------------------------------------- */

static bool alloc_back_to(void *arg) { return alloc_live() == *(long *)arg; }

static void shutdown_timeout_names_the_hung_background_service_and_exits_1(void **state) {
    (void)state;
    tsvc_t good, hung;
    hk_token_t *release;
    assert_int_equal(hk_token_new(&release), 0);
    long baseline = alloc_live();
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ShutdownTimeoutSeconds", "0.05");
    add_background(b, tsvc(&good, "good"));
    add_background(b, tsvc(&hung, "hung"));
    hung.exec_mode = EXEC_IGNORE_CANCEL;
    hung.release = release;
    assert_int_equal(run_until_started(b), 1);
    assert_logged("fail: hostkit.host[0] Shutdown timed out after 0.05s; still running: hung");
    assert_true(rec_at("destroy", "good") >= 0);
    assert_int_equal(rec_at("destroy", "hung"), -1); /* its data is still in use */
    /* Let the abandoned thread finish; it frees the host's memory on its way out. */
    hk_token_cancel(hung.release);
    assert_true(wait_until(alloc_back_to, &baseline, 5000));
    assert_true(rec_at("destroy", "hung") >= 0); /* released once its thread returned */
    hk_token_free(release);
}

static void shutdown_timeout_cancels_the_stop_token(void **state) {
    (void)state;
    tsvc_t slow;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ShutdownTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&slow, "slow"));
    slow.stop_waits_token = true;
    assert_int_equal(run_until_started(b), 1);
    assert_logged("Shutdown timed out after 0.05s; still running: slow");
}

/* ---- rule 5: background service results ------------------------------------ */

static void background_failure_stops_the_host_with_exit_1(void **state) {
    (void)state;
    tsvc_t bad, other;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&other, "other"));
    add_background(b, tsvc(&bad, "bad"));
    bad.exec_mode = EXEC_RETURN_NOW;
    bad.exec_rc = -ENOSPC;
    /* no stop requested by the test: the failure alone must stop the host */
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_int_equal(hk_host_run(h), 1);
    hk_host_free(h);
    assert_logged("fail: hostkit.host[0] Background service bad failed: bad gave up (No space left on device)");
    assert_true(rec_at("exec-end", "other") >= 0);
}

static capture_t *watch_cap;
static const char *watch_text;
static bool watched_line_logged(void *arg) {
    (void)arg;
    return capture_find(watch_cap, watch_text, 0) >= 0;
}
static bool host_started(void *arg) { return hk_token_is_cancelled(hk_host_started(arg)); }

/* A background service that stops the host once it has started and
 * watch_text was logged (a stop during start-up would skip the lines the
 * tests compare with). */
static int stop_after_watched_line(hk_service_t *svc, hk_token_t *stopping) {
    (void)stopping;
    hk_host_t *h = hk_service_host(svc);
    if (wait_until(host_started, h, 5000) && wait_until(watched_line_logged, NULL, 5000))
        rec_add("saw-line", "stopper");
    hk_host_stop(h);
    return 0;
}

static void background_failure_with_ignore_keeps_the_host_running(void **state) {
    (void)state;
    tsvc_t bad;
    watch_cap = cap;
    watch_text = "Background service bad failed";
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:BackgroundServiceExceptionBehavior", "ignore");
    add_background(b, tsvc(&bad, "bad"));
    bad.exec_mode = EXEC_RETURN_NOW;
    bad.exec_rc = -EIO;
    hk_builder_add_background(b, "stopper", stop_after_watched_line, NULL, NULL);
    assert_int_equal(hk_builder_run(b), 0); /* would be 1 with StopHost */
    assert_true(rec_at("saw-line", "stopper") >= 0);
    assert_logged("fail: hostkit.host[0] Background service bad failed: bad gave up (Input/output error); "
                  "the host keeps running (Host:BackgroundServiceExceptionBehavior=Ignore)");
    /* the host was still running after the failure: it stopped only on request */
    assert_true(capture_find(cap, "Application is shutting down...", 0) >
                capture_find(cap, "Background service bad failed", 0));
}

static void background_completion_is_logged_and_the_host_keeps_running(void **state) {
    (void)state;
    tsvc_t done, w;
    watch_cap = cap;
    watch_text = "info: hostkit.host[0] Background service done completed";
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&done, "done"));
    done.exec_mode = EXEC_RETURN_NOW;
    add_background(b, tsvc(&w, "w"));
    hk_builder_add_background(b, "stopper", stop_after_watched_line, NULL, NULL);
    assert_int_equal(hk_builder_run(b), 0);
    assert_true(rec_at("saw-line", "stopper") >= 0);
    /* w kept running after done completed, until the stop */
    assert_true(rec_at("exec-end", "w") > rec_at("exec-end", "done"));
}

static void cancelled_background_service_may_return_ecanceled(void **state) {
    (void)state;
    tsvc_t w;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    w.exec_rc = -ECANCELED;
    assert_int_equal(run_until_started(b), 0);
    assert_not_logged("failed");
}

/* ---- concurrency options --------------------------------------------------- */

static void services_start_concurrently_when_configured(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ServicesStartConcurrently", "true");
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    a.peer = &b2;
    b2.peer = &a;
    a.rendezvous_start = b2.rendezvous_start = true; /* each waits to see the other inside start */
    assert_int_equal(run_until_started(b), 0);
    assert_not_logged("never started concurrently");
}

static void concurrent_start_failure_stops_the_services_that_started(void **state) {
    (void)state;
    tsvc_t ok1, bad, ok2;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ServicesStartConcurrently", "true");
    add_hosted(b, tsvc(&ok1, "ok1"));
    add_hosted(b, tsvc(&bad, "bad"));
    bad.start_rc = -EACCES;
    add_hosted(b, tsvc(&ok2, "ok2"));
    assert_int_equal(run_until_started(b), 1);
    assert_logged("Service bad failed to start: bad refuses to start (Permission denied)");
    assert_true(rec_at("stop", "ok1") >= 0);
    assert_true(rec_at("stop", "ok2") >= 0);
    assert_int_equal(rec_at("stop", "bad"), -1);
    assert_before("stop", "ok2", "stop", "ok1");
}

static void concurrent_startup_timeout_names_only_the_slow_service(void **state) {
    (void)state;
    tsvc_t quick, slow;
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:ServicesStartConcurrently", "true");
    hk_config_set(c, "Host:StartupTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&quick, "quick"));
    add_hosted(b, tsvc(&slow, "slow"));
    slow.start_waits_token = true; /* returns promptly once cancelled, but only then */
    assert_int_equal(run_until_started(b), 1);
    assert_logged("crit: hostkit.host[0] Start-up timed out after 0.05s while starting slow\n");
    assert_true(rec_at("stop", "quick") >= 0); /* started: rolled back */
    assert_int_equal(rec_at("stop", "slow"), -1);
}

static void concurrent_start_returning_0_after_the_timeout_is_rolled_back(void **state) {
    (void)state;
    tsvc_t late;
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:ServicesStartConcurrently", "true");
    hk_config_set(c, "Host:StartupTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&late, "late"));
    late.start_waits_token_then_ok = true; /* started, but after the deadline */
    assert_int_equal(run_until_started(b), 1);
    assert_logged("Start-up timed out after 0.05s while starting late");
    assert_true(rec_at("stop", "late") >= 0); /* its start returned 0: it is stopped */
    assert_before("stop", "late", "destroy", "late");
}

static bool slow_destroyed(void *arg) {
    (void)arg;
    return rec_at("destroy", "slow") >= 0;
}

static void concurrent_stop_past_the_deadline_is_a_timeout(void **state) {
    (void)state;
    /* static: the abandoned stop thread still reads it after run returns */
    static tsvc_t slow;
    tsvc_t quick;
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:ServicesStopConcurrently", "true");
    hk_config_set(c, "Host:ShutdownTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&quick, "quick"));
    add_hosted(b, tsvc(&slow, "slow"));
    slow.stop_waits_token = true; /* returns once the deadline cancels its token */
    assert_int_equal(run_until_started(b), 1);
    assert_logged("fail: hostkit.host[0] Shutdown timed out after 0.05s; still running: slow\n");
    /* its thread runs the destroy hook last: wait for it before the next test */
    assert_true(wait_until(slow_destroyed, NULL, 10000));
}

static void services_stop_concurrently_when_configured(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ServicesStopConcurrently", "true");
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    a.peer = &b2;
    b2.peer = &a;
    a.rendezvous_stop = b2.rendezvous_stop = true;
    assert_int_equal(run_until_started(b), 0);
    assert_not_logged("never stopped concurrently");
    assert_logged("Stopped service a");
    assert_logged("Stopped service b");
}

/* ---- rule 7 and loop services ---------------------------------------------- */

typedef struct loopsvc {
    uv_timer_t timer;
    int ticks;
    bool close_in_stop;
    pthread_t tick_thread;
    hk_host_t *host;
} loopsvc_t;

static void on_tick(uv_timer_t *t) {
    loopsvc_t *ls = t->data;
    ls->tick_thread = pthread_self();
    if (++ls->ticks == 3)
        hk_host_stop(ls->host);
}

static int loop_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    loopsvc_t *ls = hk_service_data(svc);
    ls->host = hk_service_host(svc);
    uv_timer_init(hk_host_loop(ls->host), &ls->timer);
    ls->timer.data = ls;
    uv_timer_start(&ls->timer, on_tick, 1, 1);
    return 0;
}

static int loop_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    loopsvc_t *ls = hk_service_data(svc);
    if (ls->close_in_stop)
        uv_close((uv_handle_t *)&ls->timer, NULL);
    return 0;
}

static void loop_services_run_timers_on_the_host_thread(void **state) {
    (void)state;
    loopsvc_t ls = {.close_in_stop = true};
    hk_builder_t *b = test_builder(cap);
    hk_builder_add_hosted(b, "ticker", loop_start, loop_stop, &ls, NULL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_int_equal(hk_host_run(h), 0); /* stops itself after 3 ticks */
    hk_host_free(h);
    assert_true(ls.ticks >= 3);
    assert_true(pthread_equal(ls.tick_thread, pthread_self()));
    assert_not_logged("left open");
}

static void handles_left_open_are_closed_with_a_warning(void **state) {
    (void)state;
    loopsvc_t ls = {.close_in_stop = false};
    hk_builder_t *b = test_builder(cap);
    hk_builder_add_hosted(b, "leaky", loop_start, loop_stop, &ls, NULL);
    assert_int_equal(hk_builder_run(b), 0);
    assert_logged("warn: hostkit.host[0] A libuv timer handle was left open by a service; closing it");
}

static void host_frees_everything_it_allocated(void **state) {
    (void)state;
    long before = alloc_live();
    tsvc_t a, w;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_background(b, tsvc(&w, "w"));
    assert_int_equal(run_until_started(b), 0);
    assert_int_equal(alloc_live(), before);
}

static void destroy_hooks_run_when_a_host_is_freed_without_running(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_host_free(h);
    assert_before("destroy", "b", "destroy", "a");
    assert_int_equal(rec_at("start", "a"), -1);
}

int main(void) {
    failalloc_install(); /* counts live allocations; never fails unless asked */
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, host_setup, host_teardown)
        T(hosted_services_start_in_registration_order_and_stop_in_reverse),
        T(host_logs_lifetime_messages_once_started),
        T(suppress_status_messages_hides_lifetime_lines),
        T(environment_defaults_to_production_and_content_root_to_cwd),
        T(relative_content_root_is_made_absolute),
        T(background_service_runs_on_its_own_thread_without_blocking_startup),
        T(background_thread_is_not_the_host_thread),
        T(failed_start_of_first_service_stops_nothing),
        T(failed_start_of_middle_service_stops_the_first),
        T(failed_start_of_last_service_stops_the_others_in_reverse),
        T(failed_start_cancels_started_background_services),
        T(startup_timeout_fails_startup_naming_the_service),
        T(stop_requested_during_startup_is_honoured_at_the_next_safe_point),
        T(stop_before_run_starts_nothing),
        T(stop_from_another_thread_cancels_a_blocking_start),
        T(stop_fires_stopping_then_stops_services_then_fires_stopped),
        T(background_tokens_are_cancelled_before_stop_callbacks_run),
        T(lifetime_events_fire_in_order_on_the_host_thread),
        T(stop_failure_is_logged_and_exits_1),
        T(hk_host_stop_twice_and_from_many_threads_is_one_graceful_stop),
        T(run_twice_returns_1),
        T(shutdown_timeout_names_the_hung_background_service_and_exits_1),
        T(shutdown_timeout_cancels_the_stop_token),
        T(background_failure_stops_the_host_with_exit_1),
        T(background_failure_with_ignore_keeps_the_host_running),
        T(background_completion_is_logged_and_the_host_keeps_running),
        T(cancelled_background_service_may_return_ecanceled),
        T(services_start_concurrently_when_configured),
        T(concurrent_start_failure_stops_the_services_that_started),
        T(concurrent_startup_timeout_names_only_the_slow_service),
        T(concurrent_start_returning_0_after_the_timeout_is_rolled_back),
        T(concurrent_stop_past_the_deadline_is_a_timeout),
        T(services_stop_concurrently_when_configured),
        T(loop_services_run_timers_on_the_host_thread),
        T(handles_left_open_are_closed_with_a_warning),
        T(host_frees_everything_it_allocated),
        T(destroy_hooks_run_when_a_host_is_freed_without_running),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
