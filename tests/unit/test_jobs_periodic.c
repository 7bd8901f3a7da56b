/*
 * Periodic and cron jobs in a running host, on a fake jobs clock that only
 * moves when the test (or a run) moves it: start-to-start ticks without
 * drift, overlap policies (skip, queue-one, parallel with a limit), run on
 * start, the per-run timeout, a DI scope per run, a failed run handed to
 * the restart policy, cancellation at shutdown, health (Degraded after
 * DegradedAfter without success), metrics, and configuration errors
 * (exit 78 naming the key and the position). Nothing sleeps: the test waits
 * until the job sleeps on the fake clock, then moves it.
 */
#include <pthread.h>

#include "jobstest.h"
#include "jobs/jobs_int.h"

/* ---- the fake clock ---------------------------------------------------------- */

#define SEC 1000000000ull
#define T0 (100 * SEC)

static pthread_mutex_t fk_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_cv = PTHREAD_COND_INITIALIZER;
static uint64_t fk_mono;
static int64_t fk_real0;
static int fk_sleep_calls;
static uint64_t fk_deadline; /* of the last sleep */

static uint64_t fk_mono_ns(void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&fk_mu);
    uint64_t v = fk_mono;
    pthread_mutex_unlock(&fk_mu);
    return v;
}

static int64_t fk_real_ns(void *ctx) { return fk_real0 + (int64_t)(fk_mono_ns(ctx) - T0); }

static void fk_wake(hk_token_t *t, void *d) {
    (void)t;
    (void)d;
    pthread_mutex_lock(&fk_mu);
    pthread_cond_broadcast(&fk_cv);
    pthread_mutex_unlock(&fk_mu);
}

static int fk_sleep_until(void *ctx, hk_token_t *token, uint64_t deadline) {
    (void)ctx;
    hk_token_reg_t reg = {0};
    if (hk_token_register(token, &reg, fk_wake, NULL) == 1)
        return -ECANCELED;
    pthread_mutex_lock(&fk_mu);
    fk_sleep_calls++;
    fk_deadline = deadline;
    pthread_cond_broadcast(&fk_cv);
    while (fk_mono < deadline && !hk_token_is_cancelled(token))
        pthread_cond_wait(&fk_cv, &fk_mu);
    pthread_mutex_unlock(&fk_mu);
    hk_token_unregister(&reg);
    return hk_token_is_cancelled(token) ? -ECANCELED : 0;
}

static void fk_advance(uint64_t ns) {
    pthread_mutex_lock(&fk_mu);
    fk_mono += ns;
    pthread_cond_broadcast(&fk_cv);
    pthread_mutex_unlock(&fk_mu);
}

static void fk_advance_to(uint64_t t) {
    pthread_mutex_lock(&fk_mu);
    if (t > fk_mono)
        fk_mono = t;
    pthread_cond_broadcast(&fk_cv);
    pthread_mutex_unlock(&fk_mu);
}

static int fk_calls(void) {
    pthread_mutex_lock(&fk_mu);
    int n = fk_sleep_calls;
    pthread_mutex_unlock(&fk_mu);
    return n;
}

static uint64_t fk_last_deadline(void) {
    pthread_mutex_lock(&fk_mu);
    uint64_t d = fk_deadline;
    pthread_mutex_unlock(&fk_mu);
    return d;
}

static bool calls_reached(void *arg) { return fk_calls() >= *(int *)arg; }
/* Waits until the job went to sleep n times in total. */
#define wait_sleeps(n_)                                                                            \
    do {                                                                                           \
        int n__ = (n_);                                                                            \
        if (!wait_until(calls_reached, &n__, 10000)) {                                             \
            capture_dump(cap);                                                                     \
            fail_msg("the job did not sleep %d times (%d)", n__, fk_calls());                      \
        }                                                                                          \
    } while (0)

static const hk__jobs_clock_t fake_clock = {fk_mono_ns, fk_real_ns, fk_sleep_until, NULL};

/* ---- a job that records its runs ------------------------------------------------ */

typedef struct probe {
    atomic_int runs, active, max_active;
    int64_t scheduled[64];
    uint64_t advance_ns;       /* each run moves the fake clock this far */
    int advance_runs;          /* ... only runs 1..advance_runs (0: every run) */
    int fail_runs;             /* runs 1..fail_runs fail with -EIO */
    bool wait_token;           /* runs wait for their token, then return -ECANCELED */
    hk_token_t *release;       /* runs wait for it (parallel) */
    bool token_cancelled[64];  /* the run saw its token cancelled */
    int ctx[64][2];            /* serial of the scoped "Ctx" resolved twice per run */
    bool use_scope;
} probe_t;

static atomic_int ctx_created, ctx_freed;
/* Guards the per-run arrays of a probe (written by run threads, read by the test). */
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;

static int ctx_create(hk_scope_t *scope, void *data, void **ret) {
    (void)scope;
    (void)data;
    int *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = atomic_fetch_add(&ctx_created, 1) + 1;
    *ret = p;
    return 0;
}

static void ctx_free(void *inst, void *data) {
    (void)data;
    atomic_fetch_add(&ctx_freed, 1);
    free(inst);
}

static int probe_run(const hk_job_run_t *run) {
    probe_t *p = run->data;
    int n = atomic_fetch_add(&p->runs, 1) + 1;
    int act = atomic_fetch_add(&p->active, 1) + 1;
    int m = atomic_load(&p->max_active);
    while (act > m && !atomic_compare_exchange_weak(&p->max_active, &m, act)) {
    }
    pthread_mutex_lock(&pm);
    if (n <= 64)
        p->scheduled[n - 1] = run->scheduled_ns;
    pthread_mutex_unlock(&pm);
    if (p->use_scope && n <= 64) {
        int *a = NULL, *b = NULL;
        if (hk_scope_get(run->scope, "Ctx", (void **)&a) == 0 &&
            hk_scope_get(run->scope, "Ctx", (void **)&b) == 0) {
            pthread_mutex_lock(&pm);
            p->ctx[n - 1][0] = *a;
            p->ctx[n - 1][1] = a == b ? *b : -1;
            pthread_mutex_unlock(&pm);
        }
    }
    if (p->advance_ns && (!p->advance_runs || n <= p->advance_runs))
        fk_advance(p->advance_ns);
    int rc = 0;
    if (p->release)
        hk_token_wait(p->release);
    if (p->wait_token) {
        hk_token_wait(run->token);
        pthread_mutex_lock(&pm);
        if (n <= 64)
            p->token_cancelled[n - 1] = true;
        pthread_mutex_unlock(&pm);
        rc = -ECANCELED;
    }
    if (n <= p->fail_runs)
        rc = hk_job_fail(run, -EIO, "disk full on run %d", n);
    atomic_fetch_sub(&p->active, 1);
    return rc;
}

/* Locked reads of a probe's per-run arrays. */
static int64_t sched_of(probe_t *p, int i) {
    pthread_mutex_lock(&pm);
    int64_t v = p->scheduled[i];
    pthread_mutex_unlock(&pm);
    return v;
}
static bool cancelled_of(probe_t *p, int i) {
    pthread_mutex_lock(&pm);
    bool v = p->token_cancelled[i];
    pthread_mutex_unlock(&pm);
    return v;
}
static int ctx_of(probe_t *p, int i, int j) {
    pthread_mutex_lock(&pm);
    int v = p->ctx[i][j];
    pthread_mutex_unlock(&pm);
    return v;
}

typedef struct runs_at_least {
    probe_t *p;
    int n;
} runs_at_least_t;
static bool runs_reached(void *arg) {
    runs_at_least_t *r = arg;
    return atomic_load(&r->p->runs) >= r->n;
}
#define wait_runs(p_, n_)                                                                          \
    do {                                                                                           \
        runs_at_least_t r__ = {(p_), (n_)};                                                        \
        if (!wait_until(runs_reached, &r__, 10000)) {                                              \
            capture_dump(cap);                                                                     \
            fail_msg("expected %d runs, saw %d", r__.n, atomic_load(&(p_)->runs));                 \
        }                                                                                          \
    } while (0)

/* ---- the host (jobstest.h runs it on a thread) on the fake clock ---------------- */

static hk_builder_t *job_builder(void) {
    pthread_mutex_lock(&fk_mu);
    fk_mono = T0;
    fk_real0 = 1700000000 * (int64_t)SEC; /* 2023-11-14T22:13:20Z */
    fk_sleep_calls = 0;
    fk_deadline = 0;
    pthread_mutex_unlock(&fk_mu);
    hk__jobs_set_clock(&fake_clock);
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Health:CacheSeconds", "0");
    return b;
}

/* start_host (jobstest.h) after the fake clock is unset for later builders. */
static void start_job_host(hk_builder_t *b, running_t *r) {
    hk__jobs_set_clock(NULL); /* the jobs registered keep the fake one */
    start_host(b, r);
}

static int add_probe(hk_builder_t *b, probe_t *p, hk_job_def_t def) {
    def.name = def.name ? def.name : "tick";
    def.run = probe_run;
    def.data = p;
    return hk_builder_add_job(b, &def);
}

/* ---- tests ----------------------------------------------------------------------- */

static void ticks_are_start_to_start_without_drift(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.advance_ns = 300000000; /* each run takes 300 ms of a 1 s interval */
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), 0);
    running_t r;
    start_job_host(b, &r);
    for (int k = 1; k <= 4; k++) {
        wait_sleeps(k);
        assert_int_equal(fk_last_deadline(), T0 + (uint64_t)k * SEC); /* not k * 1.3 s */
        assert_int_equal(atomic_load(&p.runs), k - 1);
        fk_advance_to(T0 + (uint64_t)k * SEC);
        wait_runs(&p, k);
        assert_int_equal(sched_of(&p, k - 1), (int64_t)(T0 + (uint64_t)k * SEC));
    }
    wait_sleeps(5);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"success\"} 4");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"skipped\"} 0");
    assert_contains(m, "hostkit_job_duration_seconds_count{job=\"tick\"} 4");
    assert_logged("Job tick run 1 succeeded in");
}

static void skip_drops_the_ticks_a_long_run_overlapped(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.advance_ns = 2500000000ull; /* 2.5 intervals: the ticks at +2 s and +3 s pass */
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_sleeps(1);
    fk_advance_to(T0 + SEC);
    wait_sleeps(2);
    assert_int_equal(fk_last_deadline(), T0 + 4 * SEC);
    assert_int_equal(atomic_load(&p.runs), 1);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"skipped\"} 2");
    assert_logged("dbug: hostkit.jobs[0] Job tick skipped 2 tick(s): the previous run was still going");
}

static void queue_one_runs_once_more_right_after(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Jobs:tick:Overlap", "queue-one");
    p.advance_ns = 2500000000ull;
    p.advance_runs = 1;
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_sleeps(1);
    fk_advance_to(T0 + SEC);
    wait_runs(&p, 2); /* run 2 starts without the clock being moved */
    wait_sleeps(2);
    /* run 1 ended at 3.5 s, overlapping the ticks at 2 s and 3 s: one queued run then, one
     * skipped; the grid goes on at 4 s */
    assert_int_equal(sched_of(&p, 1), (int64_t)(T0 + 3500000000ull));
    assert_int_equal(fk_last_deadline(), T0 + 4 * SEC);
    assert_int_equal(atomic_load(&p.runs), 2);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"skipped\"} 1");
    assert_logged("Job tick skipped 1 tick(s): the previous run was still going (one run queued)");
}

static bool active_is(void *arg) {
    probe_t *p = arg;
    return atomic_load(&p->active) == 2;
}

static void parallel_runs_up_to_the_limit_then_skips(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(hk_token_new(&p.release), 0);
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000,
                                                     .overlap = HK_JOB_PARALLEL,
                                                     .max_parallel = 2}),
                     0);
    running_t r;
    start_job_host(b, &r);
    for (int k = 1; k <= 3; k++) {
        wait_sleeps(k);
        fk_advance_to(T0 + (uint64_t)k * SEC);
        if (k <= 2)
            wait_runs(&p, k);
    }
    wait_sleeps(4); /* the third tick was handled (skipped) */
    assert_true(wait_until(active_is, &p, 10000));
    assert_int_equal(atomic_load(&p.runs), 2);
    hk_token_cancel(p.release);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_int_equal(atomic_load(&p.max_active), 2);
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"success\"} 2");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"skipped\"} 1");
    assert_logged("Job tick skipped 1 tick(s): MaxParallel runs are still going");
    hk_token_free(p.release);
}

static void run_on_start_runs_at_once_then_keeps_the_grid(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Jobs:tick:RunOnStart", "true");
    hk_config_set(hk_builder_config(b), "Jobs:tick:Interval", "5m");
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_runs(&p, 1);
    wait_sleeps(1);
    assert_int_equal(sched_of(&p, 0), (int64_t)T0);
    assert_int_equal(fk_last_deadline(), T0 + 300 * SEC); /* configuration won: 5m */
    assert_int_equal(finish_host(&r, NULL, 0), 0);
}

static void jitter_delays_each_tick_within_its_bound(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .jitter_ms = 200}), 0);
    running_t r;
    start_job_host(b, &r);
    for (int k = 1; k <= 5; k++) {
        wait_sleeps(k);
        uint64_t d = fk_last_deadline(), tick = T0 + (uint64_t)k * SEC;
        assert_true(d >= tick && d <= tick + 200000000ull);
        fk_advance_to(tick + 200000000ull);
        wait_runs(&p, k);
        assert_int_equal(sched_of(&p, k - 1), (int64_t)tick); /* the tick, not the jittered time */
    }
    assert_int_equal(finish_host(&r, NULL, 0), 0);
}

static void a_run_that_times_out_fails_the_service(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.wait_token = true;
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .timeout_ms = 20,
                                                     .run_on_start = true}),
                     0);
    running_t r;
    start_job_host(b, &r);
    pthread_join(r.th, NULL); /* the failure stops the host (StopHost) */
    char m[16384];
    hk_metrics_print(hk_host_metrics(r.h), m, sizeof m, NULL);
    hk_host_free(r.h);
    assert_int_equal(r.code, 1);
    assert_true(cancelled_of(&p, 0));
    assert_logged("Background service tick failed: run 1 timed out after 20 ms (Jobs:tick:Timeout)");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"timeout\"} 1");
}

static void a_run_cancelled_by_shutdown_is_not_a_failure(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.wait_token = true;
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .run_on_start = true}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_runs(&p, 1);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_true(cancelled_of(&p, 0));
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"cancelled\"} 1");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"failure\"} 0");
    assert_not_logged("failed");
}

static void each_run_gets_its_own_scope(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.use_scope = true;
    atomic_store(&ctx_created, 0);
    atomic_store(&ctx_freed, 0);
    hk_builder_t *b = job_builder();
    assert_int_equal(hk_services_add_scoped(hk_builder_services(b), "Ctx", ctx_create, ctx_free,
                                            NULL, NULL),
                     0);
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .run_on_start = true}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_sleeps(1);
    assert_int_equal(atomic_load(&ctx_freed), 1); /* disposed when run 1 ended */
    fk_advance_to(T0 + SEC);
    wait_sleeps(2);
    assert_int_equal(finish_host(&r, NULL, 0), 0);
    assert_int_equal(atomic_load(&p.runs), 2);
    assert_int_equal(ctx_of(&p, 0, 0), 1);
    assert_int_equal(ctx_of(&p, 0, 1), 1); /* one instance within a run */
    assert_int_equal(ctx_of(&p, 1, 0), 2); /* a new one for the next run */
    assert_int_equal(ctx_of(&p, 1, 1), 2);
    assert_int_equal(atomic_load(&ctx_created), 2);
    assert_int_equal(atomic_load(&ctx_freed), 2);
}

static void a_failed_run_follows_the_restart_policy(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.fail_runs = 1;
    hk_builder_t *b = job_builder();
    hk_job_def_t def = {.interval_ms = 1000,
                        .run_on_start = true,
                        .restart = {.policy = HK_RESTART_ON_FAILURE, .backoff_initial_ms = 1,
                                    .backoff_max_ms = 1}};
    assert_int_equal(add_probe(b, &p, def), 0);
    running_t r;
    start_job_host(b, &r);
    wait_runs(&p, 2); /* restarted; run on start runs again */
    wait_sleeps(1);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_logged("Service tick failed: run 1: disk full on run 1 (Input/output error); restarting in");
    assert_logged("Service tick restarted");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"failure\"} 1");
    assert_contains(m, "hostkit_job_runs_total{job=\"tick\",outcome=\"success\"} 1");
}

static void a_failed_run_without_policy_stops_the_host(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.fail_runs = 1;
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .run_on_start = true}), 0);
    running_t r;
    start_job_host(b, &r);
    pthread_join(r.th, NULL);
    hk_host_free(r.h);
    assert_int_equal(r.code, 1);
    assert_logged("Background service tick failed: run 1: disk full on run 1 (Input/output error)");
}

static hk_health_status_t job_health(hk_host_t *h, char *desc, size_t len) {
    hk_health_report_t *rep = NULL;
    assert_int_equal(hk_health_report(hk_host_health(h), "ready", NULL, &rep), 0);
    hk_health_status_t st = HK_HEALTH_UNHEALTHY;
    bool found = false;
    for (size_t i = 0; i < rep->n; i++)
        if (!strcmp(rep->entries[i].name, "job:tick")) {
            st = rep->entries[i].status;
            snprintf(desc, len, "%s", rep->entries[i].description);
            found = true;
        }
    hk_health_report_free(rep);
    assert_true(found);
    return st;
}

static void health_turns_degraded_without_success(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Jobs:tick:DegradedAfter", "90s");
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 600000, .run_on_start = true}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_sleeps(1);
    char desc[256];
    assert_int_equal(job_health(r.h, desc, sizeof desc), HK_HEALTH_HEALTHY);
    assert_string_equal(desc, "last success 0s ago");
    /* the job only sleeps (its next tick is 600 s away); 91 s without success: Degraded */
    pthread_mutex_lock(&fk_mu);
    fk_mono = T0 + 91 * SEC; /* no broadcast: the job keeps sleeping until woken */
    pthread_mutex_unlock(&fk_mu);
    assert_int_equal(job_health(r.h, desc, sizeof desc), HK_HEALTH_DEGRADED);
    assert_string_equal(desc, "no successful run for 91s");
    assert_int_equal(finish_host(&r, NULL, 0), 0);
}

static bool service_failed(void *arg) {
    hk_service_status_t st;
    hk_host_service_status(arg, &st, 1);
    return st.state == HK_SERVICE_FAILED;
}

static void health_is_degraded_after_a_failed_run(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    p.fail_runs = 1;
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Host:BackgroundServiceExceptionBehavior", "Ignore");
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000, .run_on_start = true}), 0);
    running_t r;
    start_job_host(b, &r);
    wait_runs(&p, 1);
    char desc[256];
    assert_true(wait_until(service_failed, r.h, 10000)); /* the host reaped the failed execute */
    assert_int_equal(job_health(r.h, desc, sizeof desc), HK_HEALTH_DEGRADED);
    assert_string_equal(desc, "last run failed: run 1: disk full on run 1");
    assert_int_equal(finish_host(&r, NULL, 0), 0);
}

static void cron_jobs_wait_for_the_wall_clock(void **state) {
    (void)state;
    static probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Jobs:tick:Cron", "*/5 * * * *");
    hk_config_set(hk_builder_config(b), "Jobs:tick:TimeZone", "Utc");
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 0}), 0);
    running_t r;
    start_job_host(b, &r);
    /* real clock starts at 22:13:20Z: the next fire is 22:15:00Z, 100 s away */
    wait_sleeps(1);
    assert_int_equal(fk_last_deadline(), T0 + 60 * SEC); /* slept in chunks of at most a minute */
    fk_advance_to(T0 + 60 * SEC);
    wait_sleeps(2);
    assert_int_equal(fk_last_deadline(), T0 + 100 * SEC);
    assert_int_equal(atomic_load(&p.runs), 0);
    fk_advance_to(T0 + 100 * SEC);
    wait_runs(&p, 1);
    assert_int_equal(sched_of(&p, 0), (int64_t)1700000100 * (int64_t)SEC);
    wait_sleeps(3);
    assert_int_equal(finish_host(&r, NULL, 0), 0);
}

/* ---- configuration errors ---------------------------------------------------------- */

static void config_error(const char *key, const char *value, const char *line) {
    capture_free(cap);
    cap = capture_new();
    probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    if (key)
        hk_config_set(hk_builder_config(b), key, value);
    hk__jobs_set_clock(NULL);
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), -EINVAL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 78);
    hk_builder_free(b);
    assert_logged(line);
}

static void bad_schedules_fail_the_build_with_78_naming_key_and_position(void **state) {
    (void)state;
    config_error("Jobs:tick:Cron", "0 25 * * *",
                 "crit: hostkit.host[0] Invalid configuration: Jobs:tick:Cron: \"0 25 * * *\": hour 25 "
                 "is out of range 0-23 at position 3 (from override)");
    config_error("Jobs:tick:Cron", "0 0 * * * 2024",
                 "Jobs:tick:Cron: \"0 0 * * * 2024\": more than 5 fields (seconds and years are not "
                 "supported) at position 11 (from override)");
    config_error("Jobs:tick:Interval", "5 minutes",
                 "Jobs:tick:Interval: \"5 minutes\" is not a duration (use 500ms, 30s, 5m, 1h or "
                 "hh:mm:ss): unexpected character at position 2 (from override)");
    config_error("Jobs:tick:Interval", "0s",
                 "Jobs:tick:Interval: \"0s\" must be a positive duration (from override)");
    config_error("Jobs:tick:Overlap", "sometimes",
                 "Jobs:tick:Overlap: \"sometimes\" is not one of skip, queue-one, parallel (from override)");
    config_error("Jobs:tick:Timeout", "1x", "Jobs:tick:Timeout: \"1x\" is not a duration");
}

static void both_interval_and_cron_is_an_error(void **state) {
    (void)state;
    probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    hk_config_set(hk_builder_config(b), "Jobs:tick:Interval", "1s");
    hk_config_set(hk_builder_config(b), "Jobs:tick:Cron", "@daily");
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){0}), -EINVAL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 78);
    hk_builder_free(b);
    assert_logged("Invalid configuration: Jobs:tick: set Interval or Cron, not both");
    hk__jobs_set_clock(NULL);
}

static void no_schedule_is_an_error_and_a_missing_callback_a_setup_error(void **state) {
    (void)state;
    probe_t p;
    memset(&p, 0, sizeof p);
    hk_builder_t *b = job_builder();
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){0}), -EINVAL);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 78);
    hk_builder_free(b);
    assert_logged("Invalid configuration: Jobs:tick: no schedule: set Jobs:tick:Interval or "
                  "Jobs:tick:Cron");

    b = job_builder();
    hk_job_def_t def = {.name = "x", .interval_ms = 1000};
    assert_int_equal(hk_builder_add_job(b, &def), -EINVAL);
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 1);
    hk_builder_free(b);
    assert_logged("Invalid host setup: job has no run callback");
    /* a name taken by another service: nothing kept, destroy not called */
    b = job_builder();
    tsvc_t t;
    assert_int_equal(add_background(b, tsvc(&t, "tick")), 0);
    assert_int_equal(add_probe(b, &p, (hk_job_def_t){.interval_ms = 1000}), -EEXIST);
    hk_builder_free(b);
    hk__jobs_set_clock(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ticks_are_start_to_start_without_drift, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(skip_drops_the_ticks_a_long_run_overlapped, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(queue_one_runs_once_more_right_after, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(parallel_runs_up_to_the_limit_then_skips, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(run_on_start_runs_at_once_then_keeps_the_grid, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(jitter_delays_each_tick_within_its_bound, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_run_that_times_out_fails_the_service, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_run_cancelled_by_shutdown_is_not_a_failure, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(each_run_gets_its_own_scope, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_failed_run_follows_the_restart_policy, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_failed_run_without_policy_stops_the_host, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(health_turns_degraded_without_success, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(health_is_degraded_after_a_failed_run, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(cron_jobs_wait_for_the_wall_clock, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(bad_schedules_fail_the_build_with_78_naming_key_and_position, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(both_interval_and_cron_is_an_error, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(no_schedule_is_an_error_and_a_missing_callback_a_setup_error, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
