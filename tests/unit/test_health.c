/*
 * The health registry on its own (include/hostkit/health.h, src/health):
 * status aggregation, tags, results with data, timeouts (a check that
 * ignores its token), the cache (with an injected clock), checks running
 * concurrently, reports sharing a run, cancellation, JSON parsed back with
 * jansson, the status line, and failed allocations.
 *
 * No sleeps: checks block on tokens the test owns; "blocked" is observed
 * with tid_is_blocked / wait_until; the cache is driven by a fake clock.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/health_int.h"
#include "testutil.h"

#define DEADLINE_MS 10000

/* ---- fake clock ------------------------------------------------------------------ */

static _Atomic uint64_t fake_now = 1000000000u;
static uint64_t fake_clock(void *data) {
    (void)data;
    return atomic_load(&fake_now);
}
static void advance_ms(uint64_t ms) { atomic_fetch_add(&fake_now, ms * 1000000u); }

/* ---- test checks --------------------------------------------------------------------- */

typedef struct tcheck {
    hk_health_status_t status;
    const char *desc;
    hk_token_t *gate;       /* when set: block on it, ignoring the check's own token */
    atomic_int calls, returned;
    atomic_bool saw_cancel; /* its own token was cancelled when the gate opened */
    atomic_int tid;         /* thread that ran it */
    struct tcheck *peer;    /* rendezvous partner */
    atomic_bool in;
    atomic_int destroyed;
} tcheck_t;

static bool peer_in(void *arg) { return atomic_load(&((tcheck_t *)arg)->in); }

static hk_health_status_t t_check(hk_health_result_t *r, hk_token_t *token, void *data) {
    tcheck_t *t = data;
    int call = atomic_fetch_add(&t->calls, 1) + 1;
    atomic_store(&t->tid, current_tid());
    atomic_store(&t->in, true);
    hk_health_status_t st = t->status;
    if (t->peer && !wait_until(peer_in, t->peer, 5000)) {
        hk_health_result_describe(r, "peer never ran concurrently");
        st = HK_HEALTH_UNHEALTHY;
    } else if (t->gate) {
        hk_token_wait(t->gate);
        atomic_store(&t->saw_cancel, hk_token_is_cancelled(token));
    } else if (t->desc) {
        hk_health_result_describe(r, "%s", t->desc);
    }
    if (t->gate)
        hk_health_result_describe(r, "late %d", call);
    atomic_fetch_add(&t->returned, 1);
    return st;
}

static void t_destroy(void *data) { atomic_fetch_add(&((tcheck_t *)data)->destroyed, 1); }

static tcheck_t *tc(tcheck_t *t, hk_health_status_t st) {
    memset(t, 0, sizeof *t);
    t->status = st;
    return t;
}

static int add(hk_health_t *h, const char *name, tcheck_t *t, const char *tags, unsigned timeout_ms) {
    hk_health_check_def_t def = {.name = name,
                                 .check = t_check,
                                 .data = t,
                                 .destroy = t_destroy,
                                 .tags = tags,
                                 .timeout_ms = timeout_ms};
    return hk_health_add(h, &def);
}

static hk_health_t *new_health(void) {
    hk_health_t *h = NULL;
    assert_int_equal(hk_health_new(&h), 0);
    hk__health_set_clock(h, fake_clock, NULL);
    return h;
}

static hk_health_report_t *report(hk_health_t *h, const char *tag) {
    hk_health_report_t *r = NULL;
    assert_int_equal(hk_health_report(h, tag, NULL, &r), 0);
    assert_non_null(r);
    return r;
}

static const hk_health_entry_t *entry(const hk_health_report_t *r, const char *name) {
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->entries[i].name, name))
            return &r->entries[i];
    fail_msg("no entry %s in the report", name);
    return NULL;
}

static int setup(void **state) {
    (void)state;
    failalloc_install();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    long live = alloc_live();
    failalloc_uninstall();
    if (live != 0)
        fail_msg("%ld hostkit allocations leaked", live);
    return 0;
}

/* ---- aggregation ------------------------------------------------------------------------ */

static void overall_status_is_the_worst_and_degraded_still_passes(void **state) {
    (void)state;
    tcheck_t a, b, c, d;
    hk_health_t *h = new_health();
    hk_health_report_t *r = report(h, NULL);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->status, HK_HEALTH_HEALTHY);
    assert_int_equal(hk_health_http_status(r), 200);
    hk_health_report_free(r);

    assert_int_equal(add(h, "a", tc(&a, HK_HEALTH_HEALTHY), "x", 0), 0);
    assert_int_equal(add(h, "b", tc(&b, HK_HEALTH_DEGRADED), "x", 0), 0);
    r = report(h, "x");
    assert_int_equal(r->status, HK_HEALTH_DEGRADED);
    assert_int_equal(hk_health_http_status(r), 200);
    hk_health_report_free(r);

    assert_int_equal(add(h, "c", tc(&c, HK_HEALTH_UNHEALTHY), "y", 0), 0);
    assert_int_equal(add(h, "d", tc(&d, (hk_health_status_t)42), "z", 0), 0); /* out of range */
    r = report(h, NULL);
    assert_int_equal(r->n, 4);
    assert_string_equal(r->entries[0].name, "a"); /* registration order */
    assert_string_equal(r->entries[3].name, "d");
    assert_int_equal(entry(r, "d")->status, HK_HEALTH_UNHEALTHY);
    assert_int_equal(r->status, HK_HEALTH_UNHEALTHY);
    assert_int_equal(hk_health_http_status(r), 503);
    assert_int_equal(hk_health_http_status(NULL), 503);
    hk_health_report_free(r);
    hk_health_free(h);
    assert_int_equal(atomic_load(&a.destroyed) + atomic_load(&d.destroyed), 2);
    assert_string_equal(hk_health_status_name(HK_HEALTH_DEGRADED), "Degraded");
    assert_string_equal(hk_health_status_name((hk_health_status_t)9), "Unknown");
}

static void tags_filter_reports_case_insensitively_and_are_normalised(void **state) {
    (void)state;
    tcheck_t a, b, c;
    hk_health_t *h = new_health();
    assert_int_equal(add(h, "a", tc(&a, HK_HEALTH_HEALTHY), "live", 0), 0);
    assert_int_equal(add(h, "b", tc(&b, HK_HEALTH_UNHEALTHY), " ready, db ", 0), 0);
    assert_int_equal(add(h, "c", tc(&c, HK_HEALTH_HEALTHY), NULL, 0), 0);

    hk_health_report_t *r = report(h, "ready");
    assert_int_equal(r->n, 1);
    assert_string_equal(r->entries[0].name, "b");
    assert_string_equal(r->entries[0].tags, "ready,db");
    assert_int_equal(r->status, HK_HEALTH_UNHEALTHY);
    hk_health_report_free(r);

    r = report(h, "DB");
    assert_int_equal(r->n, 1);
    hk_health_report_free(r);
    r = report(h, "live");
    assert_int_equal(r->n, 1);
    assert_int_equal(r->status, HK_HEALTH_HEALTHY);
    hk_health_report_free(r);
    r = report(h, "nothing");
    assert_int_equal(r->n, 0);
    hk_health_report_free(r);
    r = report(h, "");
    assert_int_equal(r->n, 3);
    assert_string_equal(entry(r, "c")->tags, "");
    hk_health_report_free(r);
    /* only the checks of the filter ran */
    assert_int_equal(atomic_load(&c.calls), 1);
    hk_health_free(h);
}

static void bad_registrations_are_refused_and_keep_nothing(void **state) {
    (void)state;
    tcheck_t a;
    hk_health_t *h = new_health();
    tc(&a, HK_HEALTH_HEALTHY);
    assert_int_equal(add(h, "db", &a, NULL, 0), 0);
    assert_int_equal(add(h, "DB", &a, NULL, 0), -EEXIST);
    assert_int_equal(add(h, "", &a, NULL, 0), -EINVAL);
    assert_int_equal(add(h, "has space", &a, NULL, 0), -EINVAL);
    assert_int_equal(add(h, "x", &a, "ok bad/tag", 0), -EINVAL);
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    assert_int_equal(add(h, long_name, &a, NULL, 0), -EINVAL);
    hk_health_check_def_t nocb = {.name = "nocb"};
    assert_int_equal(hk_health_add(h, &nocb), -EINVAL);
    assert_int_equal(hk_health_add(NULL, &nocb), -EINVAL);
    assert_int_equal(hk_health_add(h, NULL), -EINVAL);
    assert_int_equal(hk_health_new(NULL), -EINVAL);
    assert_int_equal(hk_health_report(NULL, NULL, NULL, &(hk_health_report_t *){NULL}), -EINVAL);
    assert_int_equal(hk_health_report(h, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(hk_health_set_cache_ms(NULL, 1), -EINVAL);
    hk_health_free(h);
    assert_int_equal(atomic_load(&a.destroyed), 1); /* the one successful add */
    hk_health_free(NULL);
    hk_health_report_free(NULL);
}

static hk_health_status_t data_check(hk_health_result_t *r, hk_token_t *token, void *data) {
    (void)token;
    (void)data;
    hk_health_result_describe(r, "first");
    hk_health_result_describe(r, "%d connections\nin use", 3);
    hk_health_result_set(r, "server", "db-%d", 1);
    hk_health_result_set_number(r, "latencyMs", 12.5);
    hk_health_result_set(r, "server", "db-%d", 2); /* replaces */
    if (hk_health_result_set(r, "", "x") != -EINVAL || hk_health_result_set(r, NULL, "x") != -EINVAL ||
        hk_health_result_describe(NULL, "x") != -EINVAL)
        return HK_HEALTH_UNHEALTHY;
    return HK_HEALTH_DEGRADED;
}

static void description_and_data_reach_the_report(void **state) {
    (void)state;
    hk_health_t *h = new_health();
    hk_health_check_def_t def = {.name = "db", .check = data_check, .tags = "ready"};
    assert_int_equal(hk_health_add(h, &def), 0);
    hk_health_report_t *r = report(h, NULL);
    const hk_health_entry_t *e = entry(r, "db");
    assert_int_equal(e->status, HK_HEALTH_DEGRADED);
    assert_string_equal(e->description, "3 connections\nin use");
    assert_int_equal(e->ndata, 2);
    assert_string_equal(e->data[0].key, "server");
    assert_string_equal(e->data[0].value, "db-2");
    assert_false(e->data[0].is_number);
    assert_string_equal(e->data[1].key, "latencyMs");
    assert_true(e->data[1].is_number);
    assert_true(e->data[1].number == 12.5);
    assert_false(e->timed_out);
    assert_false(e->cached);
    hk_health_free(h); /* the report outlives the registry */
    assert_string_equal(e->name, "db");
    hk_health_report_free(r);
}

/* ---- timeouts ---------------------------------------------------------------------------- */

static bool returned_n(void *arg) { return atomic_load(&((tcheck_t *)arg)->returned) >= 1; }

static void check_past_its_timeout_is_unhealthy_and_its_late_result_is_dropped(void **state) {
    (void)state;
    tcheck_t slow, fast;
    hk_health_t *h = new_health();
    assert_int_equal(hk_health_set_cache_ms(h, 1000), 0);
    tc(&slow, HK_HEALTH_DEGRADED);
    assert_int_equal(hk_token_new(&slow.gate), 0);
    assert_int_equal(add(h, "slow", &slow, "live", 50), 0);
    assert_int_equal(add(h, "fast", tc(&fast, HK_HEALTH_HEALTHY), "live", 0), 0);

    hk_health_report_t *r = report(h, "live");
    const hk_health_entry_t *e = entry(r, "slow");
    assert_int_equal(e->status, HK_HEALTH_UNHEALTHY);
    assert_true(e->timed_out);
    assert_string_equal(e->description, "timed out after 0.05s");
    assert_int_equal(e->duration_ns, 50000000u);
    assert_int_equal(entry(r, "fast")->status, HK_HEALTH_HEALTHY);
    assert_int_equal(r->status, HK_HEALTH_UNHEALTHY);
    hk_health_report_free(r);

    /* Within the cache interval: the cached timeout. */
    r = report(h, "live");
    assert_true(entry(r, "slow")->cached);
    assert_true(entry(r, "slow")->timed_out);
    hk_health_report_free(r);

    /* Past the cache interval, while the first run still hangs: timed out at
     * once, no second thread. */
    advance_ms(1000);
    r = report(h, "live");
    assert_true(entry(r, "slow")->timed_out);
    assert_false(entry(r, "slow")->cached);
    assert_int_equal(atomic_load(&slow.calls), 1);
    assert_int_equal(atomic_load(&fast.calls), 2);
    hk_health_report_free(r);

    /* The hung run returns ("late 1", Degraded): its result is dropped, not
     * cached, so the next report (cache expired) runs the check again and
     * shows the second run's result. */
    hk_token_cancel(slow.gate);
    assert_true(wait_until(returned_n, &slow, DEADLINE_MS));
    assert_true(atomic_load(&slow.saw_cancel)); /* its token was cancelled at the timeout */
    r = report(h, "live");
    assert_int_equal(atomic_load(&slow.calls), 2);
    assert_false(entry(r, "slow")->cached);
    assert_int_equal(entry(r, "slow")->status, HK_HEALTH_DEGRADED);
    assert_string_equal(entry(r, "slow")->description, "late 2");
    hk_health_report_free(r);
    hk_health_free(h);
    hk_token_free(slow.gate);
}

static bool freed_everything(void *arg) {
    tcheck_t *t = arg;
    return atomic_load(&t->destroyed) == 1 && alloc_live() == 0;
}

static void free_while_a_check_hangs_releases_everything_once_it_returns(void **state) {
    (void)state;
    tcheck_t slow;
    hk_health_t *h = new_health();
    tc(&slow, HK_HEALTH_HEALTHY);
    assert_int_equal(hk_token_new(&slow.gate), 0);
    long gate_allocs = alloc_live();
    assert_int_equal(add(h, "slow", &slow, NULL, 20), 0);
    hk_health_report_t *r = report(h, NULL);
    assert_true(r->entries[0].timed_out);
    hk_health_report_free(r);
    hk_health_free(h); /* the run still blocks: its thread keeps what it uses */
    assert_int_equal(atomic_load(&slow.destroyed), 0);
    assert_true(alloc_live() > gate_allocs);
    hk_token_cancel(slow.gate);
    /* The thread returns, drops the last reference: destroy runs, memory goes. */
    assert_true(wait_until(returned_n, &slow, DEADLINE_MS));
    hk_token_free(slow.gate);
    assert_true(wait_until(freed_everything, &slow, DEADLINE_MS));
}

/* ---- concurrency ------------------------------------------------------------------------- */

static void checks_of_a_report_run_concurrently_off_the_callers_thread(void **state) {
    (void)state;
    tcheck_t a, b;
    hk_health_t *h = new_health();
    tc(&a, HK_HEALTH_HEALTHY);
    tc(&b, HK_HEALTH_HEALTHY);
    a.peer = &b; /* each waits until the other has started: only concurrent runs pass */
    b.peer = &a;
    assert_int_equal(add(h, "a", &a, NULL, 0), 0);
    assert_int_equal(add(h, "b", &b, NULL, 0), 0);
    hk_health_report_t *r = report(h, NULL);
    assert_int_equal(r->status, HK_HEALTH_HEALTHY);
    assert_int_not_equal(atomic_load(&a.tid), current_tid());
    assert_int_not_equal(atomic_load(&a.tid), atomic_load(&b.tid));
    hk_health_report_free(r);
    hk_health_free(h);
}

typedef struct reporter {
    hk_health_t *h;
    pthread_t thread;
    atomic_int tid;
    hk_health_report_t *r;
    int rc;
} reporter_t;

static void *reporter_main(void *arg) {
    reporter_t *rp = arg;
    atomic_store(&rp->tid, current_tid());
    rp->rc = hk_health_report(rp->h, NULL, NULL, &rp->r);
    return NULL;
}

static bool both_blocked(void *arg) {
    reporter_t *rp = arg;
    for (int i = 0; i < 2; i++) {
        int tid = atomic_load(&rp[i].tid);
        if (!tid || !tid_is_blocked(tid))
            return false;
    }
    return true;
}

static bool called_once(void *arg) { return atomic_load(&((tcheck_t *)arg)->calls) == 1; }

static void concurrent_reports_share_the_run_in_flight(void **state) {
    (void)state;
    tcheck_t slow;
    hk_health_t *h = new_health();
    assert_int_equal(hk_health_set_cache_ms(h, 0), 0);
    tc(&slow, HK_HEALTH_HEALTHY);
    assert_int_equal(hk_token_new(&slow.gate), 0);
    assert_int_equal(add(h, "slow", &slow, NULL, 60000), 0);
    reporter_t rp[2] = {{.h = h}, {.h = h}};
    assert_int_equal(pthread_create(&rp[0].thread, NULL, reporter_main, &rp[0]), 0);
    assert_true(wait_until(called_once, &slow, DEADLINE_MS));
    assert_int_equal(pthread_create(&rp[1].thread, NULL, reporter_main, &rp[1]), 0);
    /* Both reporters wait (the second for the first one's run). */
    assert_true(wait_until(both_blocked, rp, DEADLINE_MS));
    hk_token_cancel(slow.gate);
    for (int i = 0; i < 2; i++) {
        pthread_join(rp[i].thread, NULL);
        assert_int_equal(rp[i].rc, 0);
        assert_string_equal(rp[i].r->entries[0].description, "late 1");
        assert_false(rp[i].r->entries[0].timed_out);
        hk_health_report_free(rp[i].r);
    }
    assert_int_equal(atomic_load(&slow.calls), 1);
    hk_health_free(h);
    hk_token_free(slow.gate);
}

static void cancel_token_aborts_the_wait(void **state) {
    (void)state;
    tcheck_t slow;
    hk_health_t *h = new_health();
    tc(&slow, HK_HEALTH_HEALTHY);
    assert_int_equal(hk_token_new(&slow.gate), 0);
    assert_int_equal(add(h, "slow", &slow, NULL, 60000), 0);
    hk_token_t *cancel;
    assert_int_equal(hk_token_new(&cancel), 0);
    hk_token_cancel(cancel);
    hk_health_report_t *r = NULL;
    assert_int_equal(hk_health_report(h, NULL, cancel, &r), -ECANCELED);
    assert_null(r);
    hk_token_cancel(slow.gate);
    assert_true(wait_until(returned_n, &slow, DEADLINE_MS));
    hk_health_free(h);
    hk_token_free(cancel);
    hk_token_free(slow.gate);
}

/* ---- cache ------------------------------------------------------------------------------------ */

static void results_are_cached_for_the_interval_of_the_injected_clock(void **state) {
    (void)state;
    tcheck_t a;
    hk_health_t *h = new_health(); /* default interval: 1 s */
    assert_int_equal(add(h, "a", tc(&a, HK_HEALTH_HEALTHY), NULL, 0), 0);
    hk_health_report_free(report(h, NULL));
    assert_int_equal(atomic_load(&a.calls), 1);
    advance_ms(999);
    hk_health_report_t *r = report(h, NULL);
    assert_true(r->entries[0].cached);
    assert_int_equal(atomic_load(&a.calls), 1);
    hk_health_report_free(r);
    advance_ms(1);
    r = report(h, NULL);
    assert_false(r->entries[0].cached);
    assert_int_equal(atomic_load(&a.calls), 2);
    hk_health_report_free(r);

    /* Invalidation drops the cached result. */
    hk__health_invalidate(h);
    hk_health_report_free(report(h, NULL));
    assert_int_equal(atomic_load(&a.calls), 3);

    /* 0: never cached. */
    assert_int_equal(hk_health_set_cache_ms(h, 0), 0);
    hk_health_report_free(report(h, NULL));
    hk_health_report_free(report(h, NULL));
    assert_int_equal(atomic_load(&a.calls), 5);
    hk_health_free(h);
}

/* ---- output ------------------------------------------------------------------------------------ */

static void json_report_parses_back_with_every_field(void **state) {
    (void)state;
    tcheck_t ok;
    hk_health_t *h = new_health();
    hk_health_check_def_t def = {.name = "db", .check = data_check, .tags = "ready,db"};
    assert_int_equal(hk_health_add(h, &def), 0);
    assert_int_equal(add(h, "ok", tc(&ok, HK_HEALTH_HEALTHY), NULL, 0), 0);
    hk_health_report_t *r = report(h, NULL);
    char *text = NULL;
    assert_int_equal(hk_health_report_json(r, &text), 0);
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        fail_msg("invalid JSON (%s): %s", err.text, text);
    assert_string_equal(json_string_value(json_object_get(root, "status")), "Degraded");
    assert_true(json_is_number(json_object_get(root, "durationMs")));
    json_t *checks = json_object_get(root, "checks");
    assert_int_equal(json_array_size(checks), 2);
    json_t *db = json_array_get(checks, 0);
    assert_string_equal(json_string_value(json_object_get(db, "name")), "db");
    assert_string_equal(json_string_value(json_object_get(db, "status")), "Degraded");
    assert_string_equal(json_string_value(json_object_get(db, "description")), "3 connections\nin use");
    assert_true(json_is_number(json_object_get(db, "durationMs")));
    assert_true(json_is_false(json_object_get(db, "timedOut")));
    assert_true(json_is_false(json_object_get(db, "cached")));
    json_t *tags = json_object_get(db, "tags");
    assert_int_equal(json_array_size(tags), 2);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "db");
    json_t *data = json_object_get(db, "data");
    assert_string_equal(json_string_value(json_object_get(data, "server")), "db-2");
    assert_true(json_number_value(json_object_get(data, "latencyMs")) == 12.5);
    json_t *second = json_array_get(checks, 1);
    assert_string_equal(json_string_value(json_object_get(second, "description")), "");
    assert_int_equal(json_array_size(json_object_get(second, "tags")), 0);
    assert_int_equal(json_object_size(json_object_get(second, "data")), 0);
    json_decref(root);
    hk_health_json_free(text);
    assert_int_equal(hk_health_report_json(NULL, &text), -EINVAL);
    assert_int_equal(hk_health_report_json(r, NULL), -EINVAL);
    hk_health_report_free(r);
    hk_health_free(h);
}

static void status_line_names_the_failing_checks_on_one_line(void **state) {
    (void)state;
    tcheck_t ok, bad;
    hk_health_t *h = new_health();
    assert_int_equal(add(h, "ok", tc(&ok, HK_HEALTH_HEALTHY), NULL, 0), 0);
    hk_health_report_t *r = report(h, NULL);
    char line[256];
    assert_int_equal(hk_health_report_status_line(r, line, sizeof line), 7);
    assert_string_equal(line, "Healthy");
    hk_health_report_free(r);

    hk_health_check_def_t def = {.name = "db", .check = data_check};
    assert_int_equal(hk_health_add(h, &def), 0);
    tc(&bad, HK_HEALTH_UNHEALTHY);
    bad.desc = "refused";
    assert_int_equal(add(h, "cache", &bad, NULL, 0), 0);
    advance_ms(5000);
    r = report(h, NULL);
    const char *want = "Unhealthy: db=Degraded (3 connections in use), cache=Unhealthy (refused)";
    int n = hk_health_report_status_line(r, line, sizeof line);
    assert_string_equal(line, want);
    assert_int_equal(n, (int)strlen(want));
    char small[10];
    assert_int_equal(hk_health_report_status_line(r, small, sizeof small), (int)strlen(want));
    assert_string_equal(small, "Unhealthy");
    assert_int_equal(hk_health_report_status_line(r, NULL, 0), (int)strlen(want));
    assert_int_equal(hk_health_report_status_line(NULL, line, sizeof line), -EINVAL);
    hk_health_report_free(r);
    hk_health_free(h);
}

/* ---- failed allocations ---------------------------------------------------------------------- */

static void failed_allocations_give_enomem_or_an_unhealthy_entry_and_never_leak(void **state) {
    (void)state;
    static tcheck_t a;
    bool completed = false;
    for (long at = 1; !completed && at < 500; at++) {
        failalloc_set(at, false);
        hk_health_t *h = NULL;
        int rc = hk_health_new(&h);
        if (rc < 0) {
            assert_int_equal(rc, -ENOMEM);
            continue;
        }
        hk__health_set_clock(h, fake_clock, NULL);
        rc = add(h, "a", tc(&a, HK_HEALTH_HEALTHY), "live", 0);
        assert_true(rc == 0 || rc == -ENOMEM);
        if (rc == 0) {
            hk_health_check_def_t def = {.name = "db", .check = data_check, .tags = "live"};
            rc = hk_health_add(h, &def);
            assert_true(rc == 0 || rc == -ENOMEM);
        }
        hk_health_report_t *r = NULL;
        char *json = NULL;
        if (rc == 0) {
            rc = hk_health_report(h, "live", NULL, &r);
            assert_true(rc == 0 || rc == -ENOMEM);
        }
        if (rc == 0) {
            /* an entry whose run could not start is Unhealthy, not missing */
            assert_int_equal(r->n, 2);
            rc = hk_health_report_json(r, &json);
            assert_true(rc == 0 || rc == -ENOMEM);
        }
        if (rc == 0 && failalloc_count() < at) { /* no allocation failed: the full result */
            completed = true;
            assert_int_equal(r->entries[0].status, HK_HEALTH_HEALTHY);
            assert_int_equal(r->entries[1].status, HK_HEALTH_DEGRADED);
            assert_int_equal(r->entries[1].ndata, 2);
        }
        hk_health_json_free(json);
        hk_health_report_free(r);
        hk_health_free(h);
        failalloc_set(0, false);
        if (alloc_live() != 0)
            fail_msg("allocation %ld failed: %ld allocations leaked", at, alloc_live());
    }
    assert_true(completed);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(overall_status_is_the_worst_and_degraded_still_passes),
        T(tags_filter_reports_case_insensitively_and_are_normalised),
        T(bad_registrations_are_refused_and_keep_nothing),
        T(description_and_data_reach_the_report),
        T(check_past_its_timeout_is_unhealthy_and_its_late_result_is_dropped),
        T(free_while_a_check_hangs_releases_everything_once_it_returns),
        T(checks_of_a_report_run_concurrently_off_the_callers_thread),
        T(concurrent_reports_share_the_run_in_flight),
        T(cancel_token_aborts_the_wait),
        T(results_are_cached_for_the_interval_of_the_injected_clock),
        T(json_report_parses_back_with_every_field),
        T(status_line_names_the_failing_checks_on_one_line),
        T(failed_allocations_give_enomem_or_an_unhealthy_entry_and_never_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
