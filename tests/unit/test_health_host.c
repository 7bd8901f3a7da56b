/*
 * Health checks inside the host (src/core/hosthealth.c, host.c): the
 * built-in `host` readiness check through start-up, running and the start of
 * shutdown; Host:ShutdownDelaySeconds (ordering: readiness drops, the loop
 * keeps serving, then services stop); heartbeats with an injected clock;
 * the systemd watchdog silenced while a live check is Unhealthy (fake
 * NOTIFY_SOCKET from fakesd.h); build errors for reserved names and a
 * heartbeat without execute.
 */
#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <uv.h>

#include "health/health_int.h"
#include "hosttest.h"
#include "fakesd.h"

#define DEADLINE_MS 10000

static int setup(void **state) {
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    rec_reset();
    scn_reset();
    cap = capture_new();
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/hk-hh-XXXXXX", tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fake_close();
    unsetenv("WATCHDOG_USEC");
    capture_free(cap);
    cap = NULL;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The status of check `name` in a report of `tag` (-1 when missing or on error). */
static int status_of(hk_host_t *h, const char *tag, const char *name, char *desc, size_t len) {
    hk_health_report_t *r = NULL;
    if (hk_health_report(hk_host_health(h), tag, NULL, &r) < 0)
        return -1;
    int st = -1;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].name, name)) {
            st = (int)r->entries[i].status;
            if (desc)
                snprintf(desc, len, "%s", r->entries[i].description);
        }
    hk_health_report_free(r);
    return st;
}

/* ======================================================================== */
/* readiness                                                                */
/* ======================================================================== */

static atomic_int ready_in_start = -2, ready_in_stopping = -2;
static char start_desc[64], stopping_desc[64];

static int ready_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    atomic_store(&ready_in_start, status_of(hk_service_host(svc), "ready", "host", start_desc,
                                            sizeof start_desc));
    return 0;
}

static void on_stopping_check_ready(hk_token_t *token, void *data) {
    (void)token;
    atomic_store(&ready_in_stopping, status_of(data, "ready", "host", stopping_desc, sizeof stopping_desc));
}

static void body_ready(void) {
    char desc[64];
    CHECK(status_of(scn_host, "ready", "host", desc, sizeof desc) == HK_HEALTH_HEALTHY);
    CHECK(!strcmp(desc, "running"));
    /* cached for 60 s from here on: shutdown must still be seen at once */
}

static void readiness_is_healthy_only_between_started_and_shutdown_begin(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Health:CacheSeconds", "60");
    assert_int_equal(hk_builder_add_hosted(b, "probe", ready_start, NULL, NULL, NULL), 0);
    scn_add(b, body_ready);
    hk_host_t *h = build(b);
    hk_token_reg_t reg = {0};
    assert_int_equal(hk_token_register(hk_host_stopping(h), &reg, on_stopping_check_ready, h), 0);
    assert_int_equal(scn_run(h), 0);
    assert_int_equal(atomic_load(&ready_in_start), HK_HEALTH_UNHEALTHY);
    assert_string_equal(start_desc, "starting");
    assert_int_equal(atomic_load(&ready_in_stopping), HK_HEALTH_UNHEALTHY);
    assert_string_equal(stopping_desc, "stopping");
}

/* ======================================================================== */
/* shutdown delay                                                           */
/* ======================================================================== */

static struct {
    hk_host_t *host;
    uv_timer_t timer;
    _Atomic(hk_token_t *) bg_token;
    atomic_int ready;
    bool bg_token_cancelled;
} D;

static void on_delay_probe(uv_timer_t *t) {
    rec_add("served", "during-delay");
    hk_token_t *bgt = atomic_load(&D.bg_token);
    D.bg_token_cancelled = !bgt || hk_token_is_cancelled(bgt);
    atomic_store(&D.ready, status_of(D.host, "ready", "host", NULL, 0));
    uv_close((uv_handle_t *)t, NULL);
}

static void on_stopping_arm_probe(hk_token_t *token, void *data) {
    (void)token;
    (void)data;
    rec_add("lifetime", "stopping");
    /* Due at once: it runs on the loop's first turn inside the delay. */
    uv_timer_init(hk_host_loop(D.host), &D.timer);
    uv_timer_start(&D.timer, on_delay_probe, 0, 0);
}

static int bg_exec(hk_service_t *svc, hk_token_t *stopping) {
    atomic_store(&D.bg_token, stopping);
    /* shutdown begins once it runs, after start-up (a stop during start-up has no delay) */
    if (!wait_until(token_cancelled, hk_host_started(hk_service_host(svc)), DEADLINE_MS))
        scn_fail(__LINE__, "the host never started");
    hk_host_stop(hk_service_host(svc));
    return t_exec(svc, stopping);
}

static void shutdown_delay_keeps_serving_after_readiness_drops_then_stops_services(void **state) {
    (void)state;
    tsvc_t web, bg;
    memset(&D, 0, sizeof D);
    atomic_store(&D.ready, -2);
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:ShutdownDelaySeconds", "0.2");
    add_hosted(b, tsvc(&web, "web"));
    tsvc(&bg, "bg");
    assert_int_equal(hk_builder_add_background(b, "bg", bg_exec, &bg, NULL), 0);
    hk_host_t *h = build(b);
    D.host = h;
    hk_token_reg_t reg = {0};
    assert_int_equal(hk_token_register(hk_host_stopping(h), &reg, on_stopping_arm_probe, NULL), 0);
    assert_int_equal(hk_host_run(h), 0);
    hk_host_free(h);
    if (scn_failure())
        fail_msg("%s", scn_failure());
    assert_before("lifetime", "stopping", "served", "during-delay");
    assert_before("served", "during-delay", "stop", "web");
    assert_before("served", "during-delay", "exec-end", "bg");
    assert_false(D.bg_token_cancelled);
    assert_int_equal(atomic_load(&D.ready), HK_HEALTH_UNHEALTHY);
    assert_logged("info: hostkit.host[0] Readiness is Unhealthy; stopping services in 0.2s "
                  "(Host:ShutdownDelaySeconds)");
}

/* ======================================================================== */
/* heartbeats                                                               */
/* ======================================================================== */

static _Atomic uint64_t fake_now = 5000000000u;
static uint64_t fake_clock(void *data) {
    (void)data;
    return atomic_load(&fake_now);
}
static void advance_ms(uint64_t ms) { atomic_fetch_add(&fake_now, ms * 1000000u); }

static _Atomic(hk_service_t *) beating;

static int beat_exec(hk_service_t *svc, hk_token_t *stopping) {
    atomic_store(&beating, svc);
    hk_token_wait(stopping);
    return 0;
}

static bool beating_set(void *arg) {
    (void)arg;
    return atomic_load(&beating) != NULL;
}

static int missed_allowed = 3;

static void body_heartbeat(void) {
    char desc[128];
    CHECK(wait_until(beating_set, NULL, DEADLINE_MS));
    CHECK(status_of(scn_host, "live", "heartbeat:worker", desc, sizeof desc) == HK_HEALTH_HEALTHY);
    CHECK_MSG(!strcmp(desc, "last heartbeat 0 ms ago"), "%s", desc);
    advance_ms(100u * (unsigned)missed_allowed); /* exactly the allowed intervals: still fine */
    CHECK(status_of(scn_host, "live", "heartbeat:worker", NULL, 0) == HK_HEALTH_HEALTHY);
    advance_ms(1);
    CHECK(status_of(scn_host, "live", "heartbeat:worker", desc, sizeof desc) == HK_HEALTH_UNHEALTHY);
    char want[128];
    snprintf(want, sizeof want, "no heartbeat for %gs (expected every 100 ms)",
             (double)(100 * missed_allowed + 1) / 1e3);
    CHECK_MSG(!strcmp(desc, want), "\"%s\", expected \"%s\"", desc, want);
    hk_service_heartbeat(atomic_load(&beating)); /* from this (another) thread */
    CHECK(status_of(scn_host, "live", "heartbeat:worker", NULL, 0) == HK_HEALTH_HEALTHY);
    advance_ms(50);
    hk_service_heartbeat(atomic_load(&beating));
    advance_ms(100u * (unsigned)missed_allowed);
    CHECK(status_of(scn_host, "live", "heartbeat:worker", NULL, 0) == HK_HEALTH_HEALTHY);
}

static void run_heartbeat(const char *missed) {
    atomic_store(&beating, NULL);
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Health:CacheSeconds", "0");
    if (missed)
        hk_config_set(hk_builder_config(b), "Health:HeartbeatMissedIntervals", missed);
    missed_allowed = missed ? atoi(missed) : 3;
    hk_service_def_t def = {.name = "worker", .execute = beat_exec, .heartbeat_ms = 100};
    assert_int_equal(hk_builder_add_service(b, &def), 0);
    scn_add(b, body_heartbeat);
    hk_host_t *h = build(b);
    hk__health_set_clock(hk_host_health(h), fake_clock, NULL);
    /* Before execute started: not running, healthy. */
    char desc[64];
    assert_int_equal(status_of(h, "live", "heartbeat:worker", desc, sizeof desc), HK_HEALTH_HEALTHY);
    assert_string_equal(desc, "not running");
    assert_int_equal(scn_run(h), 0);
}

static void heartbeat_check_turns_unhealthy_after_three_missed_intervals(void **state) {
    (void)state;
    run_heartbeat(NULL);
}

static void heartbeat_missed_intervals_come_from_configuration(void **state) {
    (void)state;
    run_heartbeat("5");
}

static hk_health_status_t live_probe(hk_health_result_t *r, hk_token_t *token, void *data);
static atomic_int destroyed;
static void count_destroy(void *data) {
    (void)data;
    atomic_fetch_add(&destroyed, 1);
}

static void heartbeat_without_execute_or_a_reserved_check_name_fails_the_build(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_service_def_t def = {.name = "svc", .start = t_start, .heartbeat_ms = 10};
    assert_int_equal(hk_builder_add_service(b, &def), -EINVAL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 1);
    assert_logged("service svc declares heartbeat_ms but has no execute callback");
    hk_builder_free(b);

    /* A program check named like a built-in (names compare without case). */
    tsvc_t t;
    b = test_builder(cap);
    add_background(b, tsvc(&t, "w"));
    hk_health_check_def_t mine = {.name = "Host", .check = live_probe, .destroy = count_destroy};
    assert_int_equal(hk_health_add(hk_builder_health(b), &mine), 0);
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_null(h);
    assert_int_equal(hk_builder_exit_code(b), 1);
    assert_logged("crit: hostkit.host[0] Invalid host setup: the health check name host is reserved");
    /* the builder is as it was: its registry still has exactly the program's check */
    assert_int_equal(hk__health_count(hk_builder_health(b)), 1);
    hk_builder_free(b);
    assert_int_equal(atomic_load(&destroyed), 1);
}

/* ======================================================================== */
/* watchdog                                                                 */
/* ======================================================================== */

#define PING "WATCHDOG=1"
#define L_LIVENESS "warn: hostkit.host[0] A liveness check failed; not pinging the systemd watchdog"
#define L_FAILING                                                                                  \
    "warn: hostkit.host[0] Live health checks failing; not pinging the systemd watchdog: "         \
    "Unhealthy: probe=Unhealthy (down)"
#define L_PASSING "info: hostkit.host[0] Live health checks passing again (Healthy)"

static atomic_bool live_healthy;

static hk_health_status_t live_probe(hk_health_result_t *r, hk_token_t *token, void *data) {
    (void)token;
    (void)data;
    if (atomic_load(&live_healthy))
        return HK_HEALTH_HEALTHY;
    hk_health_result_describe(r, "down");
    return HK_HEALTH_UNHEALTHY;
}

static void body_watchdog(void) {
    CHECK_MSG(wait_datagrams(PING, 2), "no WATCHDOG=1 while healthy");
    atomic_store(&live_healthy, false);
    CHECK_MSG(wait_logged(L_FAILING, 1), "the monitor never saw the live check fail");
    /* Every watchdog tick after this warning sees the Unhealthy status. */
    int warned = capture_count(cap, L_LIVENESS);
    CHECK_MSG(wait_logged(L_LIVENESS, warned + 1), "the watchdog kept pinging");
    CHECK(fake_sync());
    int before = fake_count(PING);
    warned = capture_count(cap, L_LIVENESS);
    CHECK_MSG(wait_logged(L_LIVENESS, warned + 3), "the watchdog stopped ticking");
    CHECK(fake_sync());
    CHECK_MSG(fake_count(PING) == before, "%d WATCHDOG=1 sent while a live check was Unhealthy",
              fake_count(PING) - before);
    /* systemctl status says why */
    CHECK_MSG(wait_datagrams("STATUS=Unhealthy: probe=Unhealthy (down)", 1),
              "no STATUS= naming the failing check");
    atomic_store(&live_healthy, true);
    CHECK_MSG(wait_logged(L_PASSING, 1), "the monitor never saw the live check pass again");
    CHECK_MSG(wait_datagrams(PING, before + 2), "pings did not resume");
    CHECK_MSG(wait_datagrams("STATUS=Running", 1), /* alone: not the READY=1 one */
              "STATUS=Running not sent once the checks passed again");
}

static void watchdog_is_silenced_while_a_live_check_is_unhealthy(void **state) {
    (void)state;
    fake_open(false);
    assert_int_equal(setenv("WATCHDOG_USEC", "100000", 1), 0); /* pings every 50 ms */
    atomic_store(&live_healthy, true);
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Health:CacheSeconds", "0");
    hk_health_check_def_t def = {.name = "probe", .check = live_probe, .tags = "live"};
    assert_int_equal(hk_health_add(hk_builder_health(b), &def), 0);
    scn_add(b, body_watchdog);
    assert_int_equal(scn_run(build(b)), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(readiness_is_healthy_only_between_started_and_shutdown_begin),
        T(shutdown_delay_keeps_serving_after_readiness_drops_then_stops_services),
        T(heartbeat_check_turns_unhealthy_after_three_missed_intervals),
        T(heartbeat_missed_intervals_come_from_configuration),
        T(heartbeat_without_execute_or_a_reserved_check_name_fails_the_build),
        T(watchdog_is_silenced_while_a_live_check_is_unhealthy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
