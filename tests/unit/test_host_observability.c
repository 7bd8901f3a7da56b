/*
 * Unit tests for where supervision, health and metrics meet in the host:
 * the built-in `services` health check (Running healthy, BackingOff
 * degraded, Failed unhealthy) and the built-in hostkit_* metric series
 * (service up/state/restarts, health status, log counters) of a live host.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "supertest.h"

/* A background service that fails its first `fails` runs, then waits for the stop. */
typedef struct flaky {
    int fails;
    atomic_int runs;
} flaky_t;

static int flaky_exec(hk_service_t *svc, hk_token_t *stopping) {
    flaky_t *f = hk_service_data(svc);
    if (atomic_fetch_add(&f->runs, 1) < f->fails)
        return hk_service_fail(svc, -EIO, "flaky run");
    hk_token_wait(stopping);
    return 0;
}

static void add_flaky(hk_builder_t *b, const char *name, flaky_t *f, hk_restart_mode_t mode) {
    hk_service_def_t def = {.name = name, .execute = flaky_exec, .data = f,
                            .restart = {.policy = mode}};
    assert_int_equal(hk_builder_add_service(b, &def), 0);
}

/* The entry of check `name` in a fresh report (report stays owned by the caller). */
static const hk_health_entry_t *entry(hk_health_report_t *rep, const char *name) {
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->entries[i].name, name))
            return &rep->entries[i];
    fail_msg("no check %s in the report", name);
    return NULL;
}

static const char *data_of(const hk_health_entry_t *e, const char *key) {
    for (size_t i = 0; i < e->ndata; i++)
        if (!strcmp(e->data[i].key, key))
            return e->data[i].value;
    return NULL;
}

static hk_health_report_t *report(hk_host_t *h) {
    hk_health_report_t *rep = NULL;
    assert_int_equal(hk_health_report(hk_host_health(h), NULL, NULL, &rep), 0);
    assert_non_null(rep);
    return rep;
}

static char *expose(hk_host_t *h) {
    size_t need = 0;
    assert_int_equal(hk_metrics_print(hk_host_metrics(h), NULL, 0, &need), -ENOBUFS);
    for (;;) {
        char *buf = malloc(need + 1);
        assert_non_null(buf);
        size_t got = 0;
        int rc = hk_metrics_print(hk_host_metrics(h), buf, need + 1, &got);
        if (rc == 0)
            return buf;
        assert_int_equal(rc, -ENOBUFS); /* a counter grew meanwhile */
        free(buf);
        need = got;
    }
}

static void assert_has(const char *text, const char *line) {
    if (!strstr(text, line))
        fail_msg("exposition lacks \"%s\":\n%s", line, text);
}

static hk_builder_t *builder(void) {
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Health:CacheSeconds", "0");
    return b;
}

static void running_services_are_healthy_and_counted_up(void **state) {
    (void)state;
    hooks_install(0); /* no backoff delay */
    flaky_t a = {.fails = 1}, b2 = {.fails = 0};
    hk_builder_t *b = builder();
    add_flaky(b, "alpha", &a, HK_RESTART_ON_FAILURE);
    add_flaky(b, "beta", &b2, HK_RESTART_NEVER);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "alpha", HK_SERVICE_RUNNING, 1);
    wait_state(r.h, "beta", HK_SERVICE_RUNNING, 0);

    hk_health_report_t *rep = report(r.h);
    const hk_health_entry_t *e = entry(rep, "services");
    assert_int_equal(e->status, HK_HEALTH_HEALTHY);
    assert_string_equal(data_of(e, "alpha"), "Running");
    assert_string_equal(data_of(e, "beta"), "Running");
    assert_non_null(strstr(e->tags, "ready"));
    hk_health_report_free(rep);

    char *text = expose(r.h);
    assert_has(text, "\nhostkit_service_up{service=\"alpha\"} 1\n");
    assert_has(text, "\nhostkit_service_up{service=\"beta\"} 1\n");
    assert_has(text, "\nhostkit_service_restarts_total{service=\"alpha\"} 1\n");
    assert_has(text, "\nhostkit_service_restarts_total{service=\"beta\"} 0\n");
    assert_has(text, "\nhostkit_service_state{service=\"alpha\",state=\"Running\"} 1\n");
    assert_has(text, "\nhostkit_service_state{service=\"alpha\",state=\"Failed\"} 0\n");
    assert_has(text, "\nhostkit_health_status{check=\"services\"} 2\n");
    assert_has(text, "\nhostkit_health_status{check=\"host\"} 2\n");
    assert_has(text, "\nhostkit_log_dropped_total 0\n");
    assert_has(text, "# TYPE hostkit_log_messages_total counter\n");
    /* the restart warning was counted */
    const char *w = strstr(text, "\nhostkit_log_messages_total{level=\"warning\"} ");
    assert_non_null(w);
    assert_true(atof(w + strlen("\nhostkit_log_messages_total{level=\"warning\"} ")) >= 1);
    free(text);
    assert_int_equal(bg_stop_join(&r), 0);
    hooks_remove();
}

static void a_service_backing_off_makes_services_degraded(void **state) {
    (void)state;
    hooks_install(UINT64_MAX); /* the whole cap: a 60 s backoff the stop interrupts */
    flaky_t a = {.fails = 100};
    hk_builder_t *b = builder();
    hk_config_set(hk_builder_config(b), "Services:alpha:Restart:BackoffInitialMs", "60000");
    hk_config_set(hk_builder_config(b), "Services:alpha:Restart:BackoffMaxMs", "60000");
    add_flaky(b, "alpha", &a, HK_RESTART_ON_FAILURE);
    bg_run_t r;
    bg_start(&r, b);
    wait_state(r.h, "alpha", HK_SERVICE_BACKING_OFF, 0);

    hk_health_report_t *rep = report(r.h);
    const hk_health_entry_t *e = entry(rep, "services");
    assert_int_equal(e->status, HK_HEALTH_DEGRADED);
    assert_string_equal(data_of(e, "alpha"), "BackingOff");
    assert_non_null(strstr(e->description, "1 restarting"));
    assert_int_equal(rep->status, HK_HEALTH_DEGRADED);
    assert_int_equal(hk_health_http_status(rep), 200);
    hk_health_report_free(rep);

    char *text = expose(r.h);
    assert_has(text, "\nhostkit_service_up{service=\"alpha\"} 0\n");
    assert_has(text, "\nhostkit_service_state{service=\"alpha\",state=\"BackingOff\"} 1\n");
    assert_has(text, "\nhostkit_health_status{check=\"services\"} 1\n");
    free(text);
    assert_int_equal(bg_stop_join(&r), 0);
    hooks_remove();
}

static void a_service_given_up_makes_services_unhealthy(void **state) {
    (void)state;
    hooks_install(0);
    flaky_t a = {.fails = 100};
    hk_builder_t *b = builder();
    hk_config_set(hk_builder_config(b), "Services:alpha:Restart:MaxRestarts", "0");
    add_flaky(b, "alpha", &a, HK_RESTART_ON_FAILURE);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_int_equal(hk_host_run(h), 1); /* given up: the host stops with 1 */
    hk_health_report_t *rep = report(h);
    const hk_health_entry_t *e = entry(rep, "services");
    assert_int_equal(e->status, HK_HEALTH_UNHEALTHY);
    assert_string_equal(data_of(e, "alpha"), "Failed");
    assert_int_equal(hk_health_http_status(rep), 503);
    hk_health_report_free(rep);
    char *text = expose(h);
    assert_has(text, "\nhostkit_service_state{service=\"alpha\",state=\"Failed\"} 1\n");
    assert_has(text, "\nhostkit_health_status{check=\"services\"} 0\n");
    free(text);
    hk_host_free(h);
    hooks_remove();
}

static void an_unbuilt_builder_exposes_no_host_series(void **state) {
    (void)state;
    hk_builder_t *b = builder();
    size_t need = 0;
    assert_int_equal(hk_metrics_print(hk_builder_metrics(b), NULL, 0, &need), -ENOBUFS);
    char *buf = malloc(need + 64);
    assert_non_null(buf);
    size_t got = 0;
    assert_int_equal(hk_metrics_print(hk_builder_metrics(b), buf, need + 64, &got), 0);
    assert_null(strstr(buf, "hostkit_"));
    assert_non_null(strstr(buf, "process_open_fds"));
    free(buf);
    hk_builder_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(running_services_are_healthy_and_counted_up, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_service_backing_off_makes_services_degraded, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_service_given_up_makes_services_unhealthy, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(an_unbuilt_builder_exposes_no_host_series, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
