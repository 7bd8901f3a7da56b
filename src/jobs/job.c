/*
 * Periodic and cron jobs: a background service whose execute waits for the
 * next tick on the jobs clock and runs the job's callback (inline, or on
 * run threads with the parallel overlap policy), with a DI scope and a
 * linked token per run, metrics, a health check, and the failure of a run
 * handed to the host's supervision as the failure of execute.
 * Depends on src/common, src/config (recording errors), src/core
 * (hk__builder_fail), src/health (removing a check) and the public headers.
 *
 * Invariants: schedule state (anchor, rng) is touched only by the service's
 * execute thread (executes of one service never overlap); the status shown
 * by the health check is guarded by job->mu; the job struct is shared by the
 * service and the health check and freed by the last of them (refs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "config/config_int.h"
#include "core/host_int.h"
#include "health/health_int.h"
#include "hostkit/jobs.h"
#include "hostkit/metrics.h"
#include "jobs/jobs_int.h"

/* ---- the clock ------------------------------------------------------------- */

static uint64_t real_mono(void *ctx) {
    (void)ctx;
    return hk__now_ns();
}

static int64_t real_real(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int real_sleep_until(void *ctx, hk_token_t *token, uint64_t deadline) {
    (void)ctx;
    for (;;) {
        uint64_t now = hk__now_ns();
        if (now >= deadline)
            return hk_token_is_cancelled(token) ? -ECANCELED : 0;
        uint64_t ms = (deadline - now + 999999) / 1000000;
        if (hk_token_sleep(token, ms) < 0)
            return -ECANCELED;
    }
}

static const hk__jobs_clock_t real_clock = {real_mono, real_real, real_sleep_until, NULL};
static hk__jobs_clock_t g_clock = {real_mono, real_real, real_sleep_until, NULL};

void hk__jobs_set_clock(const hk__jobs_clock_t *clock) { g_clock = clock ? *clock : real_clock; }

/* ---- the job ---------------------------------------------------------------- */

enum outcome { OUT_SUCCESS, OUT_FAILURE, OUT_TIMEOUT, OUT_CANCELLED, OUT_SKIPPED, OUT_N };
static const char *const outcome_names[OUT_N] = {"success", "failure", "timeout", "cancelled",
                                                 "skipped"};

typedef struct job {
    atomic_int refs;
    char *name;
    hk_job_cb run;
    void *data;
    hk_destroy_cb destroy;
    hk_cron_t *cron; /* NULL: periodic */
    bool utc;
    int64_t interval_ns;
    hk_job_overlap_t overlap;
    unsigned max_parallel;
    bool run_on_start;
    uint64_t jitter_ns, timeout_ms, degraded_after_ns;
    hk__jobs_clock_t clock;
    hk_logger_t *lg;
    hk_counter_t *runs_total[OUT_N];
    hk_histogram_t *duration;

    /* schedule (execute thread only) */
    bool anchored;
    int64_t anchor;
    uint64_t rng;

    atomic_ullong number; /* runs started */
    pthread_mutex_t mu;   /* guards the status below */
    bool started;
    uint64_t started_ns, last_success_ns, last_end_ns; /* jobs clock (mono) */
    bool has_success, has_end;
    int last_outcome;
    char last_error[256];
    uint64_t successes, failures;
} job_t;

/* One run's private state, behind hk_job_run_t._priv. */
typedef struct run_priv {
    char msg[256];
    bool has_msg;
} run_priv_t;

static void job_unref(job_t *j) {
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    hk_cron_free(j->cron);
    pthread_mutex_destroy(&j->mu);
    hk__free(j->name);
    hk__free(j);
}

/* The service's destroy: the user's data goes now, the rest with the last reference. */
static void job_service_destroy(void *data) {
    job_t *j = data;
    if (j->destroy)
        j->destroy(j->data);
    j->destroy = NULL;
    job_unref(j);
}

static void job_health_destroy(void *data) { job_unref(data); }

int hk_job_fail(const hk_job_run_t *run, int err, const char *fmt, ...) {
    if (err >= 0)
        err = -EIO;
    if (!run || !run->_priv || !fmt)
        return err;
    run_priv_t *p = run->_priv;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    p->has_msg = true;
    return err;
}

/* Now in the job's time base: monotonic ns (periodic) or realtime ns (cron). */
static int64_t job_now(const job_t *j) {
    return j->cron ? j->clock.real_ns(j->clock.ctx) : (int64_t)j->clock.mono_ns(j->clock.ctx);
}

/* The first tick strictly after t (INT64_MAX when a cron never fires again). */
static int64_t tick_after(const job_t *j, int64_t t) {
    if (!j->cron) {
        if (t < j->anchor)
            return j->anchor;
        return j->anchor + ((t - j->anchor) / j->interval_ns + 1) * j->interval_ns;
    }
    int64_t secs = t >= 0 ? t / 1000000000 : (t - 999999999) / 1000000000, next;
    if (hk_cron_next(j->cron, secs, j->utc, &next) < 0)
        return INT64_MAX;
    return next * 1000000000;
}

/* Ticks in (from, to]. */
static uint64_t ticks_between(const job_t *j, int64_t from, int64_t to) {
    uint64_t n = 0;
    for (int64_t t = tick_after(j, from); t <= to && n < 1000000; t = tick_after(j, t))
        n++;
    return n;
}

static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* Waits until the job's clock reaches t; 0, or -ECANCELED. */
static int wait_for(const job_t *j, hk_token_t *token, int64_t t) {
    if (t == INT64_MAX)
        return hk_token_wait(token);
    if (!j->cron)
        return j->clock.sleep_until(j->clock.ctx, token, t < 0 ? 0 : (uint64_t)t);
    /* Wall time: sleep on the monotonic clock in chunks of at most a minute,
     * so a wall clock that is set meanwhile is noticed. */
    for (;;) {
        int64_t now = j->clock.real_ns(j->clock.ctx);
        if (now >= t)
            return hk_token_is_cancelled(token) ? -ECANCELED : 0;
        uint64_t d = (uint64_t)(t - now);
        if (d > 60000000000u)
            d = 60000000000u;
        if (j->clock.sleep_until(j->clock.ctx, token, j->clock.mono_ns(j->clock.ctx) + d) < 0)
            return -ECANCELED;
    }
}

static void set_status(job_t *j, int outcome, const char *err) {
    uint64_t now = j->clock.mono_ns(j->clock.ctx);
    pthread_mutex_lock(&j->mu);
    j->last_outcome = outcome;
    j->last_end_ns = now;
    j->has_end = true;
    if (outcome == OUT_SUCCESS) {
        j->has_success = true;
        j->last_success_ns = now;
        j->successes++;
        j->last_error[0] = '\0';
    } else if (outcome == OUT_FAILURE || outcome == OUT_TIMEOUT) {
        j->failures++;
        snprintf(j->last_error, sizeof j->last_error, "%s", err ? err : "");
    }
    pthread_mutex_unlock(&j->mu);
}

/*
 * One run: scope, token (linked to parent; timeout), callback, outcome,
 * metrics, status. Returns 0 (success or cancelled by shutdown) or the
 * failure's negative errno with its message in err.
 */
static int do_run(job_t *j, hk_service_t *svc, hk_token_t *parent, hk_token_t *stopping,
                  int64_t scheduled, char *err, size_t err_len) {
    uint64_t number = atomic_fetch_add(&j->number, 1) + 1;
    hk_token_t *tok = NULL;
    hk_scope_t *scope = NULL;
    int rc = hk_token_new_linked(&parent, 1, &tok);
    if (rc == 0 && j->timeout_ms)
        rc = hk_token_cancel_after(tok, j->timeout_ms);
    if (rc == 0)
        rc = hk_scope_new(hk_host_services(hk_service_host(svc)), &scope);
    if (rc < 0) {
        snprintf(err, err_len, "run %llu: cannot set up the run: %s", (unsigned long long)number,
                 hk_strerror(rc));
        hk_token_free(tok);
        hk_counter_inc(j->runs_total[OUT_FAILURE]);
        set_status(j, OUT_FAILURE, err);
        return rc;
    }
    run_priv_t priv = {{0}, false};
    hk_job_run_t run = {.name = j->name,
                        .service = svc,
                        .token = tok,
                        .scope = scope,
                        .number = number,
                        .scheduled_ns = scheduled,
                        .data = j->data,
                        ._priv = &priv};
    uint64_t t0 = hk__now_ns();
    rc = j->run(&run);
    double secs = (double)(hk__now_ns() - t0) / 1e9;
    bool shutdown = hk_token_is_cancelled(stopping) || hk_token_is_cancelled(parent);
    bool timed_out = !shutdown && j->timeout_ms && hk_token_is_cancelled(tok);
    hk_scope_free(scope);
    hk_token_free(tok);
    hk_histogram_observe(j->duration, secs);

    int outcome;
    if (timed_out) {
        outcome = OUT_TIMEOUT;
        rc = -ETIMEDOUT;
        snprintf(err, err_len, "run %llu timed out after %llu ms (Jobs:%s:Timeout)",
                 (unsigned long long)number, (unsigned long long)j->timeout_ms, j->name);
    } else if (rc != 0 && shutdown) {
        outcome = OUT_CANCELLED;
        rc = 0;
    } else if (rc != 0) {
        outcome = OUT_FAILURE;
        if (rc > 0)
            rc = -EIO;
        if (priv.has_msg)
            snprintf(err, err_len, "run %llu: %.200s", (unsigned long long)number, priv.msg);
        else
            snprintf(err, err_len, "run %llu failed", (unsigned long long)number);
    } else {
        outcome = OUT_SUCCESS;
    }
    hk_counter_inc(j->runs_total[outcome]);
    set_status(j, outcome, err);
    if (outcome == OUT_SUCCESS)
        hk_log_debug(j->lg, "Job {Job} run {Run} succeeded in {ElapsedMs} ms", j->name,
                     (unsigned long long)number, secs * 1e3);
    else if (outcome == OUT_CANCELLED)
        hk_log_debug(j->lg, "Job {Job} run {Run} was cancelled by shutdown", j->name,
                     (unsigned long long)number);
    return rc;
}

/* ---- parallel runs ------------------------------------------------------------ */

typedef struct slot {
    job_t *j;
    hk_service_t *svc;
    hk_token_t *parent, *stopping;
    int64_t scheduled;
    pthread_t th;
    bool used;
    atomic_bool done;
    int rc;
    char err[256];
} slot_t;

static void *slot_main(void *arg) {
    slot_t *s = arg;
    s->rc = do_run(s->j, s->svc, s->parent, s->stopping, s->scheduled, s->err, sizeof s->err);
    if (s->rc < 0)
        hk_token_cancel(s->parent); /* wakes execute, which fails the service */
    atomic_store(&s->done, true);
    return NULL;
}

/* Joins finished slots; returns the number still running. Keeps the first failure. */
static unsigned reap(slot_t *slots, unsigned n, bool all, int *ret_rc, char *err, size_t err_len) {
    unsigned active = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!slots[i].used)
            continue;
        if (!all && !atomic_load(&slots[i].done)) {
            active++;
            continue;
        }
        pthread_join(slots[i].th, NULL);
        slots[i].used = false;
        if (slots[i].rc < 0 && *ret_rc == 0) {
            *ret_rc = slots[i].rc;
            snprintf(err, err_len, "%s", slots[i].err);
        }
    }
    return active;
}

/* ---- execute ---------------------------------------------------------------------- */

static void log_skipped(job_t *j, uint64_t n, const char *why) {
    if (!n)
        return;
    hk_counter_add(j->runs_total[OUT_SKIPPED], (double)n);
    hk_log_debug(j->lg, "Job {Job} skipped {Ticks} tick(s): {Reason}", j->name,
                 (unsigned long long)n, why);
}

static int job_execute(hk_service_t *svc, hk_token_t *stopping) {
    job_t *j = hk_service_data(svc);
    hk_token_t *exec_tok = NULL;
    int rc = hk_token_new_linked(&stopping, 1, &exec_tok);
    if (rc < 0)
        return hk_service_fail(svc, rc, "cannot create the job's token");
    slot_t *slots = NULL;
    if (j->overlap == HK_JOB_PARALLEL) {
        slots = hk__calloc(j->max_parallel, sizeof *slots);
        if (!slots) {
            hk_token_free(exec_tok);
            return hk_service_fail(svc, -ENOMEM, "out of memory");
        }
    }
    int64_t now = job_now(j);
    pthread_mutex_lock(&j->mu);
    if (!j->started) {
        j->started = true;
        j->started_ns = j->clock.mono_ns(j->clock.ctx);
    }
    pthread_mutex_unlock(&j->mu);
    if (!j->anchored) {
        j->anchor = now;
        j->anchored = true;
    }
    bool immediate = j->run_on_start;
    int64_t next = tick_after(j, now);
    if (j->cron && next == INT64_MAX)
        hk_warn(j->lg, "Job %s: its cron expression never fires again", j->name);
    char err[256] = "";
    int fail = 0;
    for (;;) {
        int64_t scheduled;
        if (immediate) {
            scheduled = job_now(j);
            immediate = false;
        } else {
            int64_t at = next;
            if (j->jitter_ns && next != INT64_MAX)
                at += (int64_t)(next_random(&j->rng) % (j->jitter_ns + 1));
            if (wait_for(j, exec_tok, at) < 0)
                break;
            scheduled = next;
        }
        if (slots) {
            unsigned active = reap(slots, j->max_parallel, false, &fail, err, sizeof err);
            if (fail)
                break;
            if (active >= j->max_parallel) {
                log_skipped(j, 1, "MaxParallel runs are still going");
            } else {
                slot_t *s = NULL;
                for (unsigned i = 0; i < j->max_parallel && !s; i++)
                    if (!slots[i].used)
                        s = &slots[i];
                *s = (slot_t){.j = j, .svc = svc, .parent = exec_tok, .stopping = stopping,
                              .scheduled = scheduled, .used = true};
                atomic_init(&s->done, false);
                int prc = pthread_create(&s->th, NULL, slot_main, s);
                if (prc != 0) {
                    s->used = false;
                    fail = -prc;
                    snprintf(err, sizeof err, "cannot start a run thread");
                    break;
                }
            }
            next = tick_after(j, job_now(j) > scheduled ? job_now(j) : scheduled);
            continue;
        }
        int r = do_run(j, svc, exec_tok, stopping, scheduled, err, sizeof err);
        if (r < 0) {
            fail = r;
            break;
        }
        if (hk_token_is_cancelled(exec_tok))
            break;
        now = job_now(j);
        uint64_t missed = ticks_between(j, scheduled, now);
        if (missed > 0 && j->overlap == HK_JOB_QUEUE_ONE) {
            immediate = true;
            log_skipped(j, missed - 1, "the previous run was still going (one run queued)");
        } else {
            log_skipped(j, missed, "the previous run was still going");
        }
        next = tick_after(j, now);
    }
    if (slots) {
        hk_token_cancel(exec_tok); /* a failure cancels the sibling runs */
        reap(slots, j->max_parallel, true, &fail, err, sizeof err);
        hk__free(slots);
    }
    hk_token_free(exec_tok);
    if (fail < 0 && !hk_token_is_cancelled(stopping))
        return hk_service_fail(svc, fail, "%s", err);
    return 0;
}

/* ---- health ---------------------------------------------------------------------------- */

static hk_health_status_t job_check(hk_health_result_t *res, hk_token_t *token, void *data) {
    (void)token;
    job_t *j = data;
    uint64_t now = j->clock.mono_ns(j->clock.ctx);
    pthread_mutex_lock(&j->mu);
    bool started = j->started, has_success = j->has_success, has_end = j->has_end;
    uint64_t since = has_success ? j->last_success_ns : j->started_ns;
    int last = j->last_outcome;
    uint64_t successes = j->successes, failures = j->failures;
    char last_error[256];
    snprintf(last_error, sizeof last_error, "%s", j->last_error);
    pthread_mutex_unlock(&j->mu);

    hk_health_result_set_number(res, "runs", (double)atomic_load(&j->number));
    hk_health_result_set_number(res, "failures", (double)failures);
    hk_health_result_set_number(res, "successes", (double)successes);
    if (has_end)
        hk_health_result_set(res, "lastOutcome", "%s", outcome_names[last]);
    if (!started) {
        hk_health_result_describe(res, "not started");
        return HK_HEALTH_HEALTHY;
    }
    double age_s = now > since ? (double)(now - since) / 1e9 : 0;
    if (has_end && (last == OUT_FAILURE || last == OUT_TIMEOUT)) {
        hk_health_result_describe(res, "last run failed: %s", last_error);
        return HK_HEALTH_DEGRADED;
    }
    if (j->degraded_after_ns && now > since && now - since > j->degraded_after_ns) {
        hk_health_result_describe(res, "no successful run for %.0fs", age_s);
        return HK_HEALTH_DEGRADED;
    }
    if (has_success)
        hk_health_result_describe(res, "last success %.0fs ago", age_s);
    else
        hk_health_result_describe(res, "no run finished yet");
    return HK_HEALTH_HEALTHY;
}

/* ---- registration ---------------------------------------------------------------------- */

/* Reads a duration key; false after recording an error. */
static bool read_duration(hk_config_t *c, const char *section, const char *name, uint64_t *ms,
                          bool positive) {
    char key[160];
    snprintf(key, sizeof key, "%s:%s", section, name);
    const char *text = hk_config_get_string(c, key, NULL);
    if (!text)
        return true;
    int64_t v;
    int rc = hk_parse_duration_ms(text, &v);
    const char *src = hk_config_source_of(c, key);
    if (rc == -EINVAL) {
        size_t pos = hk__duration_error_pos(text);
        if (pos)
            hk_config_record_error(c, "%s: \"%s\" is not a duration (use 500ms, 30s, 5m, 1h or "
                                       "hh:mm:ss): unexpected character at position %zu (from %s)",
                                    key, text, pos, src);
        else
            hk_config_record_error(c, "%s: \"%s\" is not a duration (use 500ms, 30s, 5m, 1h or "
                                       "hh:mm:ss) (from %s)", key, text, src);
        return false;
    }
    if (rc < 0 || v < 0 || (positive && v == 0)) {
        hk_config_record_error(c, "%s: \"%s\" must be %s (from %s)", key, text,
                                positive ? "a positive duration" : "a duration of 0 or more", src);
        return false;
    }
    *ms = (uint64_t)v;
    return true;
}

static int register_metrics(hk_metrics_t *m, job_t *j) {
    const hk_metric_def_t runs_def = {
        .type = HK_METRIC_COUNTER,
        .name = "hostkit_job_runs_total",
        .help = "Runs of scheduled jobs by outcome (success, failure, timeout, cancelled, skipped).",
        .labels = HK_LABELS("job", "outcome")};
    static const double buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
    const hk_metric_def_t dur_def = {.type = HK_METRIC_HISTOGRAM,
                                            .name = "hostkit_job_duration_seconds",
                                            .help = "How long runs of scheduled jobs took.",
                                            .labels = HK_LABELS("job"),
                                            .buckets = buckets,
                                            .nbuckets = HK_ARRAY_SIZE(buckets)};
    hk_metric_t *runs, *dur;
    int rc = hk_metrics_register(m, &runs_def, &runs);
    if (rc == 0)
        rc = hk_metrics_register(m, &dur_def, &dur);
    for (int i = 0; rc == 0 && i < OUT_N; i++)
        rc = hk_metric_counter(runs, HK_LABELS(j->name, outcome_names[i]), &j->runs_total[i]);
    if (rc == 0)
        rc = hk_metric_histogram(dur, HK_LABELS(j->name), &j->duration);
    return rc;
}

static const char *const overlap_names[] = {"skip", "queue-one", "parallel"};
static const char *const tz_names[] = {"Local", "Utc"};

/* Reads Jobs:{Name}:* over the definition's values into j; false when an error was recorded. */
static bool read_config(hk_config_t *c, const hk_job_def_t *def, job_t *j) {
    char section[96], key[160];
    snprintf(section, sizeof section, "Jobs:%s", def->name);
    bool ok = true;
    uint64_t interval = def->interval_ms, jitter = def->jitter_ms, timeout = def->timeout_ms,
             degraded = def->degraded_after_ms;
    ok &= read_duration(c, section, "Interval", &interval, true);
    ok &= read_duration(c, section, "Jitter", &jitter, false);
    ok &= read_duration(c, section, "Timeout", &timeout, false);
    ok &= read_duration(c, section, "DegradedAfter", &degraded, false);

    snprintf(key, sizeof key, "%s:Interval", section);
    bool interval_set = hk_config_get_string(c, key, NULL) != NULL;
    snprintf(key, sizeof key, "%s:Cron", section);
    const char *cron = hk_config_get_string(c, key, NULL);
    const char *cron_src = cron ? hk_config_source_of(c, key) : "the job definition";
    if (!cron && !interval_set)
        cron = def->cron;
    if (cron && interval_set && hk_config_get_string(c, key, NULL)) {
        hk_config_record_error(c, "%s: set Interval or Cron, not both", section);
        return false;
    }
    if (cron) {
        char msg[160];
        size_t pos = 0;
        int rc = hk_cron_parse(cron, &j->cron, msg, sizeof msg, &pos);
        if (rc == -ENOMEM)
            return false;
        if (rc < 0) {
            hk_config_record_error(c, "%s: \"%s\": %s at position %zu (from %s)", key, cron, msg,
                                    pos, cron_src);
            ok = false;
        }
    } else if (!interval) {
        hk_config_record_error(c, "%s: no schedule: set %s:Interval or %s:Cron", section, section,
                                section);
        ok = false;
    }
    int tz = def->utc ? 1 : 0, overlap = (int)def->overlap;
    snprintf(key, sizeof key, "%s:TimeZone", section);
    ok &= hk_config_get_enum(c, key, tz_names, 2, tz, &tz) == 0;
    snprintf(key, sizeof key, "%s:Overlap", section);
    if (overlap < 0 || overlap > 2)
        overlap = 0;
    ok &= hk_config_get_enum(c, key, overlap_names, 3, overlap, &overlap) == 0;
    int64_t maxp = def->max_parallel ? def->max_parallel : 4;
    snprintf(key, sizeof key, "%s:MaxParallel", section);
    ok &= hk_config_get_int(c, key, maxp, 1, 1024, &maxp) == 0;
    bool ros = def->run_on_start;
    snprintf(key, sizeof key, "%s:RunOnStart", section);
    ok &= hk_config_get_bool(c, key, ros, &ros) == 0;

    j->utc = tz == 1;
    j->overlap = (hk_job_overlap_t)overlap;
    j->max_parallel = (unsigned)maxp;
    j->run_on_start = ros;
    j->interval_ns = (int64_t)interval * 1000000;
    j->jitter_ns = jitter * 1000000;
    j->timeout_ms = timeout;
    if (!degraded && !j->cron)
        degraded = 3 * interval;
    j->degraded_after_ns = degraded * 1000000;
    return ok;
}

int hk_builder_add_job(hk_builder_t *b, const hk_job_def_t *def) {
    if (!b)
        return -EINVAL;
    if (!def || !def->name || !def->name[0])
        return hk__builder_fail(b, -EINVAL, "a job was registered without a name");
    if (!def->run)
        return hk__builder_fail(b, -EINVAL, "job has no run callback");
    if (strlen(def->name) > 63)
        return hk__builder_fail(b, -EINVAL, "job name longer than 63 characters");
    job_t *j = hk__calloc(1, sizeof *j);
    if (!j)
        return hk__builder_fail(b, -ENOMEM, "out of memory registering a job");
    atomic_init(&j->refs, 1);
    atomic_init(&j->number, 0);
    pthread_mutex_init(&j->mu, NULL);
    j->name = hk__strdup(def->name);
    j->run = def->run;
    j->data = def->data;
    j->clock = g_clock;
    j->lg = hk_builder_logger(b, "hostkit.jobs");
    j->rng = 0x9E3779B97F4A7C15u ^ hk__now_ns() ^ (uint64_t)(uintptr_t)j;
    if (!j->name) {
        job_unref(j);
        return hk__builder_fail(b, -ENOMEM, "out of memory registering a job");
    }
    if (!read_config(hk_builder_config(b), def, j)) {
        job_unref(j);
        return -EINVAL; /* recorded in the configuration: the build fails with 78 */
    }
    int rc = register_metrics(hk_builder_metrics(b), j);
    if (rc < 0) {
        job_unref(j);
        return hk__builder_fail(b, rc, hk_metrics_last_error());
    }
    char check[80];
    snprintf(check, sizeof check, "job:%s", def->name);
    hk_health_check_def_t hc = {.name = check,
                                .check = job_check,
                                .data = j,
                                .destroy = job_health_destroy,
                                .tags = def->health_tags ? def->health_tags : "ready"};
    atomic_fetch_add(&j->refs, 1);
    rc = hk_health_add(hk_builder_health(b), &hc);
    if (rc < 0) {
        atomic_fetch_sub(&j->refs, 1);
        job_unref(j);
        char msg[128];
        snprintf(msg, sizeof msg, "cannot register the health check %s: %s", check, hk_strerror(rc));
        return hk__builder_fail(b, rc, msg);
    }
    hk_service_def_t sd = {.name = def->name,
                           .execute = job_execute,
                           .destroy = job_service_destroy,
                           .data = j,
                           .restart = def->restart,
                           .depends_on = def->depends_on};
    rc = hk_builder_add_service(b, &sd);
    if (rc < 0) {
        (void)hk__health_remove(hk_builder_health(b), check);
        atomic_fetch_sub(&j->refs, 1);
        job_unref(j);
        return rc;
    }
    j->destroy = def->destroy; /* from now on the service owns data */
    return 0;
}
