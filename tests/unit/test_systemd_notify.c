/*
 * The systemd notify protocol as the host speaks it (include/hostkit/systemd.h;
 * src/core/sdhost.c, src/core/control.c, src/systemd/notify.c): the exact
 * datagrams of a run, a failed start, a reload (applied or refused), a
 * shutdown timeout, the watchdog and its liveness checks, EXTEND_TIMEOUT_USEC
 * ticks and the public notify calls. A fake service manager (a datagram
 * socket bound to a path or to an abstract name, drained by a thread that
 * records every datagram) stands in for systemd; NOTIFY_SOCKET points at it.
 *
 * Ordering without sleeps: datagrams from one socket arrive in order, so
 * fake_sync() sends a marker and waits for the recorder to see it; every
 * datagram the host sent before the marker has been recorded by then (the
 * marker is sent from the thread that sent them, or after they were sent).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "hosttest.h"
#include "fakesd.h"

/* Generous: a passing test never waits for it (sanitizer builds are slow). */
#define DEADLINE_MS 10000

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* want matches got exactly; a want ending in '*' matches its prefix followed
 * by one or more decimal digits (for MONOTONIC_USEC=). */
static bool msg_matches(const char *got, const char *want) {
    size_t wl = strlen(want);
    if (wl == 0 || want[wl - 1] != '*')
        return strcmp(got, want) == 0;
    if (strncmp(got, want, wl - 1) != 0)
        return false;
    const char *d = got + wl - 1;
    if (!*d)
        return false;
    for (; *d; d++)
        if (*d < '0' || *d > '9')
            return false;
    return true;
}

/* Every datagram received, in order, is exactly `want` (n of them). */
static void assert_datagrams(const char *const *want, size_t n) {
    assert_true(fake_sync());
    bool ok = fake_n() == n;
    char got[8192];
    for (size_t i = 0; ok && i < n; i++)
        ok = fake_get(i, got, sizeof got, NULL) && msg_matches(got, want[i]);
    if (!ok) {
        fprintf(stderr, "  datagrams expected (%zu):\n", n);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, "  [%zu] \"", i);
            for (const char *p = want[i]; *p; p++)
                *p == '\n' ? (void)fputs("\\n", stderr) : (void)fputc(*p, stderr);
            fputs("\"\n", stderr);
        }
        fake_dump();
        capture_dump(cap);
        fail_msg("the notify datagrams differ from the expected sequence");
    }
}

/* ======================================================================== */
/* fixtures                                                                 */
/* ======================================================================== */

static const char *const sd_vars[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                                      "INVOCATION_ID", "JOURNAL_STREAM", "LISTEN_PID",
                                      "LISTEN_FDS",    "LISTEN_FDNAMES"};

static void unset_sd_vars(void) {
    for (size_t i = 0; i < ARRAY_SIZE(sd_vars); i++)
        unsetenv(sd_vars[i]);
}

static int setup(void **state) {
    (void)state;
    unset_sd_vars(); /* a test run from a systemd unit must not see its own manager */
    rec_reset();
    cap = capture_new();
    const char *tmp = getenv("TMPDIR");
    /* short: the socket path must fit in sun_path */
    snprintf(tmpdir, sizeof tmpdir, "%s/hk-sd-XXXXXX",
             tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fake_close();
    unset_sd_vars();
    capture_free(cap);
    cap = NULL;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool clock_passed(void *arg) { return now_ns() >= *(uint64_t *)arg; }
/* Waits until CLOCK_MONOTONIC reaches `until` (the window is the measurement). */
static bool wait_clock(uint64_t until) { return wait_until(clock_passed, &until, DEADLINE_MS); }

/* Works for ms without sleeping: a timed wait on a condition nobody signals. */
static void work_for_ms(int ms) {
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_condattr_t attr;
    pthread_cond_t cv;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &attr);
    pthread_condattr_destroy(&attr);
    uint64_t until = now_ns() + (uint64_t)ms * 1000000u;
    struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
    pthread_mutex_lock(&mu);
    while (now_ns() < until)
        (void)pthread_cond_timedwait(&cv, &mu, &ts);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}

#define READY "READY=1\nSTATUS=Running"
#define STOPPING "STOPPING=1\nSTATUS=Stopping"
#define RELOADING "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=*"
#define PING "WATCHDOG=1"
#define L_LIVENESS "warn: hostkit.host[0] A liveness check failed; not pinging the systemd watchdog"

/* ======================================================================== */
/* a run: start-up, ready, stopping                                         */
/* ======================================================================== */

static void run_two_hosted_and_one_background(void) {
    tsvc_t a, b2, c;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    add_background(b, tsvc(&c, "c"));
    assert_int_equal(run_until_started(b), 0);
    static const char *const want[] = {
        "STATUS=Starting 1/3: a",
        "STATUS=Starting 2/3: b",
        "STATUS=Starting 3/3: c",
        READY,
        STOPPING,
        /* in stop order; c has no stop callback, so no line of its own */
        "STATUS=Stopping 2/3: b",
        "STATUS=Stopping 3/3: a",
    };
    assert_datagrams(want, ARRAY_SIZE(want));
}

static void run_sends_starting_ready_stopping_and_nothing_after_to_a_path_socket(void **state) {
    (void)state;
    fake_open(false);
    run_two_hosted_and_one_background();
}

static void run_sends_the_same_sequence_to_an_abstract_socket(void **state) {
    (void)state;
    fake_open(true);
    run_two_hosted_and_one_background();
}

static void failed_start_reports_the_service_and_errno_last_and_never_ready(void **state) {
    (void)state;
    fake_open(false);
    tsvc_t a, b2, c;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_hosted(b, tsvc(&b2, "b"));
    add_hosted(b, tsvc(&c, "c"));
    b2.start_rc = -EADDRINUSE;
    assert_int_equal(run_until_started(b), 1);
    char failed[256];
    snprintf(failed, sizeof failed,
             "STATUS=Failed: service b failed to start: b refuses to start (%s)\nERRNO=%d",
             hk_strerror(-EADDRINUSE), EADDRINUSE);
    const char *const want[] = {
        "STATUS=Starting 1/3: a", "STATUS=Starting 2/3: b", STOPPING, "STATUS=Stopping 3/3: a",
        failed,
    };
    assert_datagrams(want, ARRAY_SIZE(want));
    assert_int_equal(fake_count(READY), 0);
}

static void failing_background_service_reports_failed_status_with_its_errno(void **state) {
    (void)state;
    fake_open(false);
    tsvc_t w;
    hk_builder_t *b = test_builder(cap);
    add_background(b, tsvc(&w, "w"));
    w.exec_mode = EXEC_RETURN_NOW;
    w.exec_rc = -ECONNRESET;
    hk_host_t *h = build(b);
    assert_int_equal(hk_host_run(h), 1);
    hk_host_free(h);
    char failed[256];
    snprintf(failed, sizeof failed,
             "STATUS=Failed: background service w failed: w gave up (%s)\nERRNO=%d",
             hk_strerror(-ECONNRESET), ECONNRESET);
    /* The failure may come before or after READY=1 (the thread races start-up);
     * it is always last, after STOPPING=1. */
    assert_true(fake_sync());
    size_t n = fake_n();
    char last[512], prev[512];
    if (n < 3 || !fake_get(n - 1, last, sizeof last, NULL) || !fake_get(n - 2, prev, sizeof prev, NULL) ||
        strcmp(last, failed) != 0 || strcmp(prev, STOPPING) != 0) {
        fake_dump();
        fail_msg("expected ... \"" STOPPING "\", \"%s\" at the end", failed);
    }
    assert_true(fake_find("STATUS=Starting 1/1: w", 0) == 0);
}

/* ======================================================================== */
/* reload                                                                   */
/* ======================================================================== */

static void write_file(const char *name, const char *text) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

/* A builder with the content root tmpdir; file-change reloads debounced for a
 * minute, so only the test's own request reloads. */
static hk_builder_t *content_root_builder(void) {
    char a0[] = "test_systemd_notify", a1[] = "--contentRoot";
    char *argv[] = {a0, a1, tmpdir, NULL};
    hk_builder_t *b = hk_builder_new(3, argv);
    assert_non_null(b);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    hk_config_t *c = hk_builder_config(b);
    assert_int_equal(hk_config_set(c, "Host:HandleSignals", "false"), 0);
    assert_int_equal(hk_config_set(c, "Host:ConfigReloadDebounceMs", "60000"), 0);
    assert_int_equal(hk_config_set(c, "Logging:LogLevel:hostkit", "Debug"), 0);
    return b;
}

static const char *new_json;

static void body_reload(void) {
    /* the started token is cancelled just before READY=1 is sent */
    CHECK_MSG(wait_datagrams(READY, 1), "no READY=1 once started");
    if (new_json) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/appsettings.json", tmpdir);
        FILE *fp = fopen(path, "w");
        CHECK(fp != NULL);
        fputs(new_json, fp);
        CHECK(fclose(fp) == 0);
    }
    hk_config_request_reload(hk_host_config(scn_host));
    CHECK_MSG(wait_datagrams(READY, 2), "no second READY=1 after the reload");
}

/* The reload's datagrams and MONOTONIC_USEC close to CLOCK_MONOTONIC. */
static void assert_reload_datagrams(void) {
    static const char *const want[] = {
        "STATUS=Starting 1/1: scenario", READY, RELOADING, READY, STOPPING,
    };
    assert_datagrams(want, ARRAY_SIZE(want));
    char msg[256];
    uint64_t at_ns = 0;
    assert_true(fake_get(2, msg, sizeof msg, &at_ns));
    unsigned long long usec = strtoull(strstr(msg, "MONOTONIC_USEC=") + strlen("MONOTONIC_USEC="), NULL, 10);
    uint64_t at_usec = at_ns / 1000u;
    /* taken before sending, read soon after: within a second before arrival */
    if (usec > at_usec || at_usec - usec > 1000000u)
        fail_msg("MONOTONIC_USEC=%llu but CLOCK_MONOTONIC read %llu us on arrival", usec,
                 (unsigned long long)at_usec);
}

static void reload_sends_reloading_with_monotonic_usec_then_ready(void **state) {
    (void)state;
    write_file("appsettings.json", "{\"Sd\": {\"Value\": 1}}");
    new_json = "{\"Sd\": {\"Value\": 2}}";
    fake_open(false);
    hk_builder_t *b = content_root_builder();
    scn_add(b, body_reload);
    hk_host_t *h = build(b);
    assert_string_equal(hk_config_get(hk_host_config(h), "Sd:Value"), "1");
    assert_int_equal(scn_run(h), 0);
    assert_logged("info: hostkit.host[0] Configuration reloaded (on request): 1 key changed");
    assert_reload_datagrams();
}

static void refused_reload_still_sends_ready_after_reloading(void **state) {
    (void)state;
    write_file("appsettings.json", "{\"Sd\": {\"Value\": 1}}");
    new_json = "{\"Sd\": {\"Value\": ";
    fake_open(false);
    hk_builder_t *b = content_root_builder();
    scn_add(b, body_reload);
    assert_int_equal(scn_run(build(b)), 0);
    assert_logged("fail: hostkit.host[0] Keeping the previous configuration");
    assert_reload_datagrams();
}

/* ======================================================================== */
/* shutdown timeout                                                         */
/* ======================================================================== */

static bool destroyed_hung(void *arg) {
    (void)arg;
    return rec_at("destroy", "hung") >= 0;
}
static bool alloc_back_to(void *arg) { return alloc_live() == *(long *)arg; }

static void shutdown_timeout_reports_failed_status_naming_the_service_with_etimedout(void **state) {
    (void)state;
    fake_open(false);
    hk_token_t *release;
    assert_int_equal(hk_token_new(&release), 0);
    long baseline = alloc_live();
    tsvc_t a, hung;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ShutdownTimeoutSeconds", "0.05");
    add_hosted(b, tsvc(&a, "a"));
    add_background(b, tsvc(&hung, "hung"));
    hung.exec_mode = EXEC_IGNORE_CANCEL;
    hung.release = release;
    assert_int_equal(run_until_started(b), 1);
    static const char *const want[] = {
        "STATUS=Starting 1/2: a",
        "STATUS=Starting 2/2: hung",
        READY,
        STOPPING,
        "STATUS=Stopping 2/2: a",
        "STATUS=Failed: shutdown timed out; still running: hung\nERRNO=110",
    };
    assert_datagrams(want, ARRAY_SIZE(want));
    /* Let the abandoned thread finish; it frees the host on its way out. */
    hk_token_cancel(release);
    assert_true(wait_until(destroyed_hung, NULL, DEADLINE_MS));
    assert_true(wait_until(alloc_back_to, &baseline, DEADLINE_MS));
    hk_token_free(release);
    /* nothing from the late thread either */
    assert_datagrams(want, ARRAY_SIZE(want));
}

/* ======================================================================== */
/* watchdog                                                                 */
/* ======================================================================== */

#define WATCHDOG_USEC "100000" /* pings every 50 ms */
#define PING_NS 50000000u

static void body_rate(void) {
    CHECK_MSG(wait_datagrams(PING, 1), "no WATCHDOG=1 once started");
    uint64_t t0 = now_ns(), t1 = t0 + 600000000u; /* 600 ms: 12 intervals */
    CHECK(wait_clock(t1));
    t1 = now_ns();
    int got = fake_count_in_window(PING, t0, t1);
    double expected = (double)(t1 - t0) / PING_NS;
    CHECK_MSG(got >= 0.4 * expected && got <= 1.5 * expected,
              "%d WATCHDOG=1 in %.0f ms, expected about %.1f (40%%..150%%)", got,
              (double)(t1 - t0) / 1e6, expected);
}

static void watchdog_pings_every_half_interval_while_the_host_runs(void **state) {
    (void)state;
    fake_open(false);
    assert_int_equal(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
    hk_builder_t *b = test_builder(cap);
    scn_add(b, body_rate);
    assert_int_equal(scn_run(build(b)), 0);
    assert_logged("dbug: hostkit.host[0] Pinging the systemd watchdog every 50 ms");
}

/* A loop service: a 60 ms repeating timer on the host loop that stops the
 * host at its third tick. If the watchdog timer (50 ms, on the same loop)
 * existed, it would have fired at least three times by then. */
typedef struct ticker {
    uv_timer_t timer;
    int ticks;
    hk_host_t *host;
} ticker_t;

static void on_tick(uv_timer_t *t) {
    ticker_t *tk = t->data;
    if (++tk->ticks == 3)
        hk_host_stop(tk->host);
}

static int ticker_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    ticker_t *tk = hk_service_data(svc);
    tk->host = hk_service_host(svc);
    uv_timer_init(hk_host_loop(tk->host), &tk->timer);
    tk->timer.data = tk;
    uv_timer_start(&tk->timer, on_tick, 60, 60);
    return 0;
}

static int ticker_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    ticker_t *tk = hk_service_data(svc);
    uv_close((uv_handle_t *)&tk->timer, NULL);
    return 0;
}

/* Runs a host with the ticker; returns the WATCHDOG=1 datagrams received. */
static int pings_in_three_ticks(void) {
    static ticker_t tk;
    memset(&tk, 0, sizeof tk);
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_builder_add_hosted(b, "ticker", ticker_start, ticker_stop, &tk, NULL), 0);
    hk_host_t *h = build(b);
    int code = hk_host_run(h);
    hk_host_free(h);
    assert_int_equal(code, 0);
    assert_int_equal(tk.ticks, 3);
    assert_true(fake_sync());
    return fake_count(PING);
}

static void watchdog_pid_of_this_process_gets_pings_from_the_host_loop(void **state) {
    (void)state;
    fake_open(false);
    assert_int_equal(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    int pings = pings_in_three_ticks();
    if (pings < 3) {
        fake_dump();
        fail_msg("%d WATCHDOG=1 in 180 ms of loop time, expected at least 3", pings);
    }
}

static void watchdog_pid_of_another_process_or_a_bad_interval_means_no_pings(void **state) {
    (void)state;
    char other[32];
    snprintf(other, sizeof other, "%ld", (long)getppid());
    const struct {
        const char *usec, *pid;
    } cases[] = {
        {WATCHDOG_USEC, other}, {WATCHDOG_USEC, "junk"}, {"0", NULL}, {"100ms", NULL}, {"-1", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        fake_open(false);
        assert_int_equal(setenv("WATCHDOG_USEC", cases[i].usec, 1), 0);
        if (cases[i].pid)
            assert_int_equal(setenv("WATCHDOG_PID", cases[i].pid, 1), 0);
        else
            unsetenv("WATCHDOG_PID");
        int pings = pings_in_three_ticks();
        if (pings != 0) {
            fake_dump();
            fail_msg("WATCHDOG_USEC=%s WATCHDOG_PID=%s: %d pings, expected none", cases[i].usec,
                     cases[i].pid ? cases[i].pid : "(unset)", pings);
        }
        assert_true(fake_find(READY, 0) >= 0); /* the fake was reachable */
        fake_close();
    }
}

static void watchdog_without_notify_socket_sends_nothing(void **state) {
    (void)state;
    fake_open(false);
    unsetenv("NOTIFY_SOCKET"); /* the fake listens, but nobody tells the host */
    assert_int_equal(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
    assert_int_equal(pings_in_three_ticks(), 0);
    assert_int_equal(fake_n(), 0);
}

static atomic_bool healthy;
static atomic_int liveness_calls;

static bool liveness(hk_host_t *host, void *data) {
    (void)data;
    if (host != scn_host)
        return false;
    atomic_fetch_add(&liveness_calls, 1);
    return atomic_load(&healthy);
}

static void body_liveness(void) {
    CHECK_MSG(wait_datagrams(PING, 2), "no WATCHDOG=1 while healthy");
    atomic_store(&healthy, false);
    /* Every tick after the first warning sees the flag false: no ping after it. */
    int warned = capture_count(cap, L_LIVENESS);
    CHECK_MSG(wait_logged(L_LIVENESS, warned + 1), "no warning for the failing liveness check");
    CHECK(fake_sync());
    int before = fake_count(PING);
    warned = capture_count(cap, L_LIVENESS);
    CHECK_MSG(wait_logged(L_LIVENESS, warned + 3), "the host stopped checking liveness");
    CHECK(fake_sync());
    CHECK_MSG(fake_count(PING) == before, "%d WATCHDOG=1 sent while the liveness check failed",
              fake_count(PING) - before);
    atomic_store(&healthy, true);
    CHECK_MSG(wait_datagrams(PING, before + 2), "pings did not resume once the check passed");
}

static void failing_liveness_check_stops_pings_with_a_warning_and_passing_resumes_them(void **state) {
    (void)state;
    fake_open(false);
    assert_int_equal(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
    atomic_store(&healthy, true);
    atomic_store(&liveness_calls, 0);
    hk_builder_t *b = test_builder(cap);
    scn_add(b, body_liveness);
    hk_host_t *h = build(b);
    assert_int_equal(hk_host_add_liveness_check(h, liveness, NULL), 0);
    assert_int_equal(hk_host_add_liveness_check(h, NULL, NULL), -EINVAL);
    assert_int_equal(hk_host_add_liveness_check(NULL, liveness, NULL), -EINVAL);
    assert_int_equal(scn_run(h), 0);
    assert_true(atomic_load(&liveness_calls) >= 5);
}

/* A loop callback that blocks the host thread for 300 ms (6 intervals). */
typedef struct blocker {
    uv_timer_t timer;
    int pings_at_entry, pings_at_exit;
    atomic_bool done;
} blocker_t;

static blocker_t blk;

static void on_block(uv_timer_t *t) {
    blocker_t *bk = t->data;
    /* The marker follows every ping the host thread sent before this callback. */
    bk->pings_at_entry = fake_sync() ? fake_count(PING) : -1;
    work_for_ms(300);
    bk->pings_at_exit = fake_sync() ? fake_count(PING) : -1;
    atomic_store(&bk->done, true);
}

static int blocker_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    blocker_t *bk = hk_service_data(svc);
    uv_timer_init(hk_host_loop(hk_service_host(svc)), &bk->timer);
    bk->timer.data = bk;
    uv_timer_start(&bk->timer, on_block, 120, 0);
    return 0;
}

static int blocker_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    blocker_t *bk = hk_service_data(svc);
    uv_close((uv_handle_t *)&bk->timer, NULL);
    return 0;
}

static bool block_done(void *arg) {
    (void)arg;
    return atomic_load(&blk.done);
}

static void body_blocked(void) {
    CHECK_MSG(wait_until(block_done, NULL, DEADLINE_MS), "the loop callback never ran");
    CHECK(blk.pings_at_entry >= 1);
    CHECK_MSG(blk.pings_at_exit == blk.pings_at_entry,
              "%d WATCHDOG=1 sent while the host loop was blocked",
              blk.pings_at_exit - blk.pings_at_entry);
    CHECK_MSG(wait_datagrams(PING, blk.pings_at_exit + 2), "pings did not resume after the block");
}

static void blocked_host_loop_sends_no_watchdog_pings(void **state) {
    (void)state;
    fake_open(false);
    assert_int_equal(setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1), 0);
    memset(&blk, 0, sizeof blk);
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_builder_add_hosted(b, "blocker", blocker_start, blocker_stop, &blk, NULL), 0);
    scn_add(b, body_blocked);
    assert_int_equal(scn_run(build(b)), 0);
}

/* ======================================================================== */
/* EXTEND_TIMEOUT_USEC                                                      */
/* ======================================================================== */

#define EXTEND "EXTEND_TIMEOUT_USEC=200000"

static int slow_start_ms;
static int slow_start(hk_service_t *svc, hk_token_t *token) {
    (void)svc;
    (void)token;
    work_for_ms(slow_start_ms);
    return 0;
}

/* Like slow_start, asking for more time every 100 ms. */
static int extending_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    for (int i = 0; i < 7; i++) {
        work_for_ms(100);
        if (hk_host_extend_timeout(hk_service_host(svc), 1000000) != 1)
            return -EIO;
    }
    return 0;
}

/* Runs hosts whose starts take their time; returns EXTEND datagrams before READY=1. */
static int extends_during_start_up(const char *extend_s, hk_service_start_cb start, int nsvcs) {
    hk_builder_t *b = test_builder(cap);
    if (extend_s)
        assert_int_equal(hk_config_set(hk_builder_config(b), "Systemd:ExtendTimeoutSeconds", extend_s), 0);
    for (int i = 0; i < nsvcs; i++) {
        char name[16];
        snprintf(name, sizeof name, "slow%d", i + 1);
        assert_int_equal(hk_builder_add_hosted(b, name, start, NULL, NULL, NULL), 0);
    }
    assert_int_equal(run_until_started(b), 0);
    assert_true(fake_sync());
    int ready = fake_find(READY, 0);
    assert_true(ready > 0);
    return fake_count_between(EXTEND, 0, (size_t)ready);
}

static void extend_timeout_is_sent_while_a_slow_start_up_makes_progress(void **state) {
    (void)state;
    fake_open(false);
    slow_start_ms = 120;
    /* 3 x 120 ms; ticks every 100 ms, each within 200 ms of a service starting */
    int n = extends_during_start_up("0.2", slow_start, 3);
    if (n < 1) {
        fake_dump();
        fail_msg("%d " EXTEND " during a 360 ms start-up, expected about 3", n);
    }
    assert_true(fake_find("STATUS=Starting 1/3: slow1", 0) < fake_find(EXTEND, 0));
}

static void extend_timeout_is_off_by_default(void **state) {
    (void)state;
    fake_open(false);
    slow_start_ms = 120;
    assert_int_equal(extends_during_start_up(NULL, slow_start, 3), 0);
    assert_int_equal(fake_count(EXTEND), 0);
    /* nothing with another value either */
    char msg[512];
    for (size_t i = 0; fake_get(i, msg, sizeof msg, NULL); i++)
        assert_null(strstr(msg, "EXTEND_TIMEOUT_USEC"));
}

static void extend_timeout_stops_when_start_up_makes_no_progress(void **state) {
    (void)state;
    fake_open(false);
    slow_start_ms = 700;
    /* one start of 700 ms: ticks at 100 and (maybe) 200 ms, then no progress
     * within the last 200 ms: none at 300..700 ms */
    int n = extends_during_start_up("0.2", slow_start, 1);
    if (n < 1 || n > 3) {
        fake_dump();
        fail_msg("%d " EXTEND " during a 700 ms start without progress, expected 1..2 (at most 3)", n);
    }
}

static void extend_timeout_continues_while_a_service_calls_hk_host_extend_timeout(void **state) {
    (void)state;
    fake_open(false);
    int n = extends_during_start_up("0.2", extending_start, 1);
    /* ticks at 100..700 ms, each within 200 ms of the service's call: about 6 */
    if (n < 4) {
        fake_dump();
        fail_msg("%d " EXTEND " during a 700 ms start that kept extending, expected about 6", n);
    }
    assert_int_equal(fake_count("EXTEND_TIMEOUT_USEC=1000000"), 7);
}

/* ---- one service after another finishing, 150 ms apart -----------------------
 * Five services whose start, stop or execute (after its stopping token)
 * takes its data in ms: 150 ms each one after the other, or 150, 300, ...
 * 750 ms side by side (concurrent modes, background services). Either way
 * one finishes every 150 ms, within every 200 ms period, so the header's
 * rule sends a tick every 100 ms for 750 ms: about 7. Without progress
 * after the phase began there would be at most 2 (see the test above). */

#define STAGGER_MS 150
#define NSTAGGER 5

static int timed_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    work_for_ms((int)(intptr_t)hk_service_data(svc));
    return 0;
}

static int timed_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    work_for_ms((int)(intptr_t)hk_service_data(svc));
    return 0;
}

static int timed_exec(hk_service_t *svc, hk_token_t *stopping) {
    hk_token_wait(stopping);
    work_for_ms((int)(intptr_t)hk_service_data(svc));
    return 0;
}

typedef enum stagger { SEQ_START, CONCURRENT_START, SEQ_STOP, CONCURRENT_STOP, BACKGROUND_STOP } stagger_t;

/* Runs the five services; returns the ticks in the phase that was slow. */
static int extends_while_staggered(stagger_t mode) {
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    assert_int_equal(hk_config_set(c, "Systemd:ExtendTimeoutSeconds", "0.2"), 0);
    if (mode == CONCURRENT_START)
        assert_int_equal(hk_config_set(c, "Host:ServicesStartConcurrently", "true"), 0);
    if (mode == CONCURRENT_STOP)
        assert_int_equal(hk_config_set(c, "Host:ServicesStopConcurrently", "true"), 0);
    for (int i = 0; i < NSTAGGER; i++) {
        bool one_by_one = mode == SEQ_START || mode == SEQ_STOP;
        /* stop runs in reverse order: the first one stopped gets the shortest time */
        int k = mode == CONCURRENT_STOP ? NSTAGGER - i : i + 1;
        intptr_t ms = one_by_one ? STAGGER_MS : STAGGER_MS * k;
        char name[16];
        snprintf(name, sizeof name, "svc%d", i + 1);
        hk_service_def_t def = {.name = name, .data = (void *)ms};
        if (mode == SEQ_START || mode == CONCURRENT_START)
            def.start = timed_start;
        else if (mode == BACKGROUND_STOP)
            def.execute = timed_exec;
        else
            def.stop = timed_stop;
        assert_int_equal(hk_builder_add_service(b, &def), 0);
    }
    uint64_t t0 = now_ns();
    assert_int_equal(run_until_started(b), 0);
    uint64_t took_ms = (now_ns() - t0) / 1000000u;
    assert_true(fake_sync());
    int ready = fake_find(READY, 0), stopping = fake_find(STOPPING, 0);
    assert_true(ready > 0 && stopping > ready);
    bool start_phase = mode == SEQ_START || mode == CONCURRENT_START;
    int n = start_phase ? fake_count_between(EXTEND, 0, (size_t)ready)
                        : fake_count_between(EXTEND, (size_t)stopping, fake_n());
    if (n < 4) {
        fake_dump();
        fail_msg("%d " EXTEND " while five services finished %s one every %d ms (run took %llu ms); "
                 "expected about 7, at least 4",
                 n, start_phase ? "starting" : "stopping", STAGGER_MS, (unsigned long long)took_ms);
    }
    return n;
}

static void extend_timeout_continues_while_sequential_starts_finish_one_by_one(void **state) {
    (void)state;
    fake_open(false);
    (void)extends_while_staggered(SEQ_START);
}

static void extend_timeout_continues_while_concurrent_starts_finish_one_by_one(void **state) {
    (void)state;
    fake_open(false);
    (void)extends_while_staggered(CONCURRENT_START);
}

static void extend_timeout_continues_while_sequential_stops_finish_one_by_one(void **state) {
    (void)state;
    fake_open(false);
    (void)extends_while_staggered(SEQ_STOP);
}

static void extend_timeout_continues_while_concurrent_stops_finish_one_by_one(void **state) {
    (void)state;
    fake_open(false);
    (void)extends_while_staggered(CONCURRENT_STOP);
}

static void extend_timeout_continues_while_background_services_finish_stopping_one_by_one(void **state) {
    (void)state;
    fake_open(false);
    (void)extends_while_staggered(BACKGROUND_STOP);
}

/* ======================================================================== */
/* the public calls                                                         */
/* ======================================================================== */

static void notify_calls_send_exactly_their_messages(void **state) {
    (void)state;
    fake_open(false);
    hk_host_t *h = build(test_builder(cap));
    assert_int_equal(hk_host_set_status(h, "x %d", 1), 1);
    assert_int_equal(hk_host_set_status(h, "two\nlines%s", "\n"), 1);
    assert_int_equal(hk_host_notify_mainpid(h, 4242), 1);
    assert_int_equal(hk_host_extend_timeout(h, 5000000), 1);
    assert_int_equal(hk_host_notify(h, "CUSTOM=1\nOTHER=two"), 1);
    assert_int_equal(hk_host_watchdog_trigger(h), 1);
    static const char *const want[] = {
        "STATUS=x 1",
        "STATUS=two lines ", /* newlines would start new assignments: replaced by spaces */
        "MAINPID=4242",
        "EXTEND_TIMEOUT_USEC=5000000",
        "CUSTOM=1\nOTHER=two",
        "WATCHDOG=trigger",
    };
    assert_datagrams(want, ARRAY_SIZE(want));
    hk_host_free(h);
}

static void notify_calls_reject_bad_arguments_and_send_nothing(void **state) {
    (void)state;
    fake_open(false);
    hk_host_t *h = build(test_builder(cap));
    assert_int_equal(hk_host_notify(NULL, "READY=1"), -EINVAL);
    assert_int_equal(hk_host_notify(h, NULL), -EINVAL);
    assert_int_equal(hk_host_set_status(NULL, "x"), -EINVAL);
    assert_int_equal(hk_host_notify_mainpid(h, 0), -EINVAL);
    assert_int_equal(hk_host_notify_mainpid(h, -5), -EINVAL);
    assert_int_equal(hk_host_notify_mainpid(NULL, 1), -EINVAL);
    assert_int_equal(hk_host_extend_timeout(NULL, 1), -EINVAL);
    assert_int_equal(hk_host_watchdog_trigger(NULL), -EINVAL);
    assert_datagrams(NULL, 0);
    hk_host_free(h);
}

static void notify_to_a_socket_nobody_listens_on_returns_an_error(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/nobody.sock", tmpdir);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    hk_host_t *h = build(test_builder(cap));
    assert_int_equal(hk_host_notify(h, "READY=1"), -ENOENT);
    assert_int_equal(hk_host_set_status(h, "x"), -ENOENT);
    hk_host_free(h);
}

/* Every call on a host built without NOTIFY_SOCKET: 0, nothing sent. */
static void assert_calls_are_no_ops(hk_host_t *h) {
    assert_int_equal(hk_host_notify(h, "READY=1"), 0);
    assert_int_equal(hk_host_set_status(h, "x %d", 1), 0);
    assert_int_equal(hk_host_notify_mainpid(h, 4242), 0);
    assert_int_equal(hk_host_extend_timeout(h, 5000000), 0);
    assert_int_equal(hk_host_watchdog_trigger(h), 0);
}

static void without_notify_socket_every_call_returns_0_and_sends_nothing(void **state) {
    (void)state;
    fake_open(false);
    unsetenv("NOTIFY_SOCKET"); /* the fake listens, but nobody tells the host */
    hk_host_t *h = build(test_builder(cap));
    assert_calls_are_no_ops(h);
    hk_host_free(h);
    /* a whole run too */
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    assert_datagrams(NULL, 0);
    assert_logged("info: hostkit.lifetime[0] Application started. Press Ctrl+C to shut down.");
}

static void relative_notify_socket_logs_a_warning_and_sends_nothing(void **state) {
    (void)state;
    fake_open(false);
    /* "notify.sock" relative to tmpdir names the fake: were the host to use
     * it, the fake would receive the datagrams. */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "notify.sock", 1), 0);
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    hk_host_t *h = build(b);
    assert_logged("warn: hostkit.host[0] Not notifying systemd: NOTIFY_SOCKET is neither an absolute "
                  "path nor an abstract (@) socket name: Invalid argument");
    assert_int_equal(capture_count(cap, "Not notifying systemd"), 1);
    assert_calls_are_no_ops(h);
    hk_token_reg_t reg = {0};
    hk_token_register(hk_host_started(h), &reg, stop_host_cb, h);
    assert_int_equal(hk_host_run(h), 0);
    hk_host_free(h);
    assert_int_equal(chdir(cwd), 0);
    assert_datagrams(NULL, 0);
}

int main(void) {
    failalloc_install(); /* counts live allocations; never fails unless asked */
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(run_sends_starting_ready_stopping_and_nothing_after_to_a_path_socket),
        T(run_sends_the_same_sequence_to_an_abstract_socket),
        T(failed_start_reports_the_service_and_errno_last_and_never_ready),
        T(failing_background_service_reports_failed_status_with_its_errno),
        T(reload_sends_reloading_with_monotonic_usec_then_ready),
        T(refused_reload_still_sends_ready_after_reloading),
        T(shutdown_timeout_reports_failed_status_naming_the_service_with_etimedout),
        T(watchdog_pings_every_half_interval_while_the_host_runs),
        T(watchdog_pid_of_this_process_gets_pings_from_the_host_loop),
        T(watchdog_pid_of_another_process_or_a_bad_interval_means_no_pings),
        T(watchdog_without_notify_socket_sends_nothing),
        T(failing_liveness_check_stops_pings_with_a_warning_and_passing_resumes_them),
        T(blocked_host_loop_sends_no_watchdog_pings),
        T(extend_timeout_is_sent_while_a_slow_start_up_makes_progress),
        T(extend_timeout_is_off_by_default),
        T(extend_timeout_stops_when_start_up_makes_no_progress),
        T(extend_timeout_continues_while_a_service_calls_hk_host_extend_timeout),
        T(extend_timeout_continues_while_sequential_starts_finish_one_by_one),
        T(extend_timeout_continues_while_concurrent_starts_finish_one_by_one),
        T(extend_timeout_continues_while_sequential_stops_finish_one_by_one),
        T(extend_timeout_continues_while_concurrent_stops_finish_one_by_one),
        T(extend_timeout_continues_while_background_services_finish_stopping_one_by_one),
        T(notify_calls_send_exactly_their_messages),
        T(notify_calls_reject_bad_arguments_and_send_nothing),
        T(notify_to_a_socket_nobody_listens_on_returns_an_error),
        T(without_notify_socket_every_call_returns_0_and_sends_nothing),
        T(relative_notify_socket_logs_a_warning_and_sends_nothing),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
