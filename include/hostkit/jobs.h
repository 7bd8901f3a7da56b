/*
 * hostkit/jobs.h - timed and queued background work: periodic jobs (every
 * N ms, start-to-start without drift), cron jobs (5-field expressions, local
 * time or UTC) and bounded in-memory work queues drained by worker threads.
 * docs/jobs.md has the rules in full (cron syntax, DST, overlap, shutdown).
 *
 * Jobs. hk_builder_add_job registers an ordinary background service named
 * after the job; its execute runs the schedule, so the host's supervision
 * applies: a failed run (the callback returns a negative errno, or times
 * out) ends execute with that error, and the service's restart policy
 * (def.restart or Services:{Name}:Restart:*) or
 * Host:BackgroundServiceExceptionBehavior decides what happens next. The
 * schedule survives restarts (a periodic job keeps its grid). Each run gets
 * a fresh DI scope (freed after the run) and a token cancelled at shutdown
 * or when the run's timeout expires.
 *
 * Configuration (read when the job is registered, section Jobs:{Name};
 * every key wins over the field of hk_job_def_t it names):
 *   Interval       duration (500ms, 30s, 5m, 1h ...)      .interval_ms
 *   Cron           5-field expression or @hourly ...      .cron
 *   TimeZone       Local | Utc                            .utc
 *   Overlap        skip | queue-one | parallel            .overlap
 *   MaxParallel    int 1..1024 (parallel only)            .max_parallel (0: 4)
 *   RunOnStart     bool                                   .run_on_start
 *   Jitter         duration added at random to each tick  .jitter_ms
 *   Timeout        duration per run (0: none)             .timeout_ms
 *   DegradedAfter  duration without success -> Degraded   .degraded_after_ms
 * Exactly one of Interval and Cron must end up set. A bad value is a
 * configuration error (the build fails with exit code 78) naming the key,
 * the value, the 1-based position of the error in it and its source, e.g.
 *   Jobs:report:Cron: "0 25 * * *": hour 25 is out of range 0-23 at position 3 (from command line)
 *
 * Metrics (on the builder's registry): hostkit_job_runs_total{job,outcome}
 * (outcome: success, failure, timeout, cancelled, skipped) and
 * hostkit_job_duration_seconds{job}; queues: hostkit_queue_depth{queue},
 * hostkit_queue_enqueued_total, _processed_total, _failed_total,
 * _rejected_total {queue}, hostkit_queue_wait_seconds{queue} and
 * hostkit_queue_run_seconds{queue}.
 * Health: one check "job:{name}" per job (tags: def.health_tags, default
 * "ready"), Degraded while the last finished run failed or no run succeeded
 * for DegradedAfter (default: three intervals for periodic jobs; cron jobs
 * only when it is set).
 *
 * Threading: registration functions are for set-up (one thread, before
 * hk_builder_build). Queue enqueue functions may be called from any thread.
 */
#ifndef HOSTKIT_JOBS_H
#define HOSTKIT_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "host.h"
#include "services.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- jobs ---------------------------------------------------------------- */

/* One run of a job, as its callback sees it. Valid only during the call. */
typedef struct hk_job_run {
    const char *name;     /* the job's (and its service's) name */
    hk_service_t *service;
    hk_token_t *token;    /* cancelled at shutdown, or when the run's timeout expires */
    hk_scope_t *scope;    /* a DI scope of this run alone, freed after it returns */
    uint64_t number;      /* 1 for the first run, counting every run of the job */
    int64_t scheduled_ns; /* the tick this run is for: CLOCK_MONOTONIC ns for periodic jobs,
                             CLOCK_REALTIME ns (since the epoch) for cron jobs */
    void *data;           /* def.data */
    void *_priv;          /* private */
} hk_job_run_t;

/*
 * A job's work. Return 0 on success or a negative errno on failure (a
 * failure ends the job's execute with it: see the restart policy). Return
 * -ECANCELED (or anything) once run->token is cancelled by shutdown: a run
 * cancelled by shutdown is counted "cancelled", never as a failure. Runs of
 * one job never overlap unless its overlap policy is parallel.
 */
typedef int (*hk_job_cb)(const hk_job_run_t *run);

/*
 * Inside a run: records why it failed (printf-style; the host logs it as
 * the service's failure, "Service NAME failed: run N: <message> (<errno
 * text>)") and returns err, so a callback can write
 *     return hk_job_fail(run, -ECONNREFUSED, "connecting to %s", addr);
 * err must be negative (a non-negative err becomes -EIO). Any run's thread.
 */
HK_EXTERN int hk_job_fail(const hk_job_run_t *run, int err, const char *fmt, ...) HK_PRINTF(3, 4);

/* What happens when a tick comes while a run is still going. */
typedef enum hk_job_overlap {
    HK_JOB_SKIP = 0,      /* skip the tick (logged at Debug, counted "skipped") */
    HK_JOB_QUEUE_ONE = 1, /* run once more right after the current run, however many ticks passed */
    HK_JOB_PARALLEL = 2   /* start another run on a thread of its own, up to max_parallel */
} hk_job_overlap_t;

/*
 * A job definition. Fill it with designated initialisers; fields added
 * later default to zero. Configuration (see above) wins over every field.
 */
typedef struct hk_job_def {
    const char *name;       /* service name (1-63 of [A-Za-z0-9._-]) and Jobs:{name} section */
    hk_job_cb run;          /* required */
    void *data;             /* owned by the job after a successful registration */
    hk_destroy_cb destroy;  /* called with data once the host (or builder) is done with it */
    uint64_t interval_ms;   /* periodic: start-to-start interval */
    const char *cron;       /* cron: a 5-field expression (copied) */
    bool utc;               /* cron in UTC rather than local time (TZ) */
    hk_job_overlap_t overlap;
    unsigned max_parallel;  /* parallel only; 0: 4 */
    bool run_on_start;      /* run at once each time the service starts, then follow the schedule */
    uint64_t jitter_ms;     /* each tick is delayed by a random 0..jitter_ms (never accumulates) */
    uint64_t timeout_ms;    /* per-run timeout (0: none); a timed-out run counts as a failure */
    uint64_t degraded_after_ms; /* see Health above; 0: the default */
    const char *health_tags;    /* tags of the job's health check; NULL: "ready" */
    hk_restart_policy_t restart;     /* the service's restart policy */
    const char *const *depends_on;   /* the service's dependencies (see hk_service_def_t) */
} hk_job_def_t;

/*
 * Registers a job: reads its configuration, registers a background service
 * named def->name, its health check and its metrics. On success the job
 * owns def->data (destroy runs at the end of hk_host_run, or when the
 * builder or a host that never ran is freed). On failure nothing is kept
 * and destroy is not called: -EINVAL (no name or callback, neither or both
 * of interval and cron, a bad value in def or in configuration; a
 * configuration error is recorded so the build fails with 78, any other is
 * recorded in the builder), -EEXIST (name taken) or -ENOMEM.
 * Set-up only (the thread that owns the builder).
 */
HK_EXTERN int hk_builder_add_job(hk_builder_t *builder, const hk_job_def_t *def);

/* ---- cron expressions (exposed for programs and tests) ------------------- */

typedef struct hk_cron_s hk_cron_t;

/*
 * Parses a cron expression: five fields (minute hour day-of-month month
 * day-of-week) or @yearly, @annually, @monthly, @weekly, @daily, @midnight,
 * @hourly. Each field: '*', a value, a range a-b, a step (*, a-b or a
 * followed by /n), or a comma-separated list of those; months jan..dec,
 * weekdays sun..sat (0 or 7 is Sunday), case-insensitive. Day-of-month and
 * day-of-week combine as in Vixie cron: when both are restricted (neither
 * starts with '*') a day matches if either does. On success *ret_cron must
 * be freed with hk_cron_free. On failure returns -EINVAL (or -ENOMEM) and,
 * when err is not NULL, writes a message ("hour 25 is out of range 0-23")
 * into err and the 1-based position of the offending character into
 * *ret_pos (may be NULL). Any thread.
 */
HK_EXTERN int hk_cron_parse(const char *expr, hk_cron_t **ret_cron, char *err, size_t err_len,
                            size_t *ret_pos);
HK_EXTERN void hk_cron_free(hk_cron_t *cron);

/*
 * The first time strictly after `after` (seconds since the epoch) that the
 * expression matches, in UTC (utc true) or local time (the process's TZ).
 * DST: a local time that does not exist (clocks spring forward) fires at
 * the first valid minute after it, once, however many such times fall into
 * the gap; a local time that occurs twice (clocks fall back) fires once, at
 * its first occurrence. Returns 0 with *ret_next, or -ENOENT when nothing
 * matches within 28 years (e.g. "0 0 30 2 *"). Any thread.
 */
HK_EXTERN int hk_cron_next(const hk_cron_t *cron, int64_t after, bool utc, int64_t *ret_next);

/* ---- work queues ------------------------------------------------------------- */

typedef struct hk_queue_s hk_queue_t;

/*
 * One work item: runs on a worker thread with its argument and a token
 * cancelled when the queue discards work at shutdown (OnStop=Discard, or a
 * drain that ran out of time). Returns 0, or a negative errno (counted in
 * hostkit_queue_failed_total and logged at Warning). The item's destroy
 * (if any) is called with arg after it ran.
 */
typedef int (*hk_work_cb)(void *arg, hk_token_t *token);

typedef enum hk_queue_on_stop {
    HK_QUEUE_DRAIN = 0,  /* run what is queued, within the drain timeout (default) */
    HK_QUEUE_DISCARD = 1 /* destroy what is queued without running it */
} hk_queue_on_stop_t;

/*
 * A queue definition. Configuration Queues:{Name}:Workers, Capacity, OnStop
 * (Drain | Discard) and DrainTimeout (duration; default 80% of
 * Host:ShutdownTimeoutSeconds) win over the fields.
 */
typedef struct hk_queue_def {
    const char *name;     /* service name (1-63 of [A-Za-z0-9._-]) and Queues:{name} section */
    unsigned workers;     /* worker threads; 0: 1 */
    size_t capacity;      /* items it holds at most; 0: 1024 */
    hk_queue_on_stop_t on_stop;
    uint64_t drain_timeout_ms; /* 0: the default above */
    const char *const *depends_on; /* the service's dependencies */
} hk_queue_def_t;

/*
 * Registers a queue and the background service (named def->name) whose
 * worker threads drain it. *ret_queue stays valid until hk_host_run
 * returns (or the builder, or a host that never ran, is freed); enqueue
 * from the host's services or any thread they control. Before the host
 * runs items are accepted and wait for the workers. Returns 0, -EINVAL
 * (bad definition or configuration: recorded, the build fails), -EEXIST or
 * -ENOMEM; on failure *ret_queue is untouched. Set-up only.
 */
HK_EXTERN int hk_builder_add_queue(hk_builder_t *builder, const hk_queue_def_t *def,
                                   hk_queue_t **ret_queue);

/*
 * Enqueues fn(arg) and waits while the queue is full, up to timeout_ms
 * (UINT64_MAX: no limit) or until cancel (may be NULL) is cancelled.
 * On success the queue owns arg: destroy(arg) (may be NULL) runs after fn,
 * or instead of it when the item is discarded or left over. On failure
 * nothing is kept and destroy is not called: -EINVAL (NULL queue or fn),
 * -ETIMEDOUT, -ECANCELED, -ESHUTDOWN (the queue stopped accepting: its
 * service is stopping or stopped). Any thread; never call it from a work
 * item of the same queue with a long timeout (a full queue would wait on
 * itself).
 */
HK_EXTERN int hk_queue_enqueue(hk_queue_t *queue, hk_work_cb fn, void *arg, hk_destroy_cb destroy,
                               uint64_t timeout_ms, hk_token_t *cancel);

/* Like hk_queue_enqueue without waiting: -EAGAIN at once when the queue is full. */
HK_EXTERN int hk_queue_try_enqueue(hk_queue_t *queue, hk_work_cb fn, void *arg,
                                   hk_destroy_cb destroy);

/* Items waiting (not running). Any thread; 0 for NULL. */
HK_EXTERN size_t hk_queue_depth(hk_queue_t *queue);
/* The configured capacity and worker count (after configuration). */
HK_EXTERN size_t hk_queue_capacity(const hk_queue_t *queue);
HK_EXTERN unsigned hk_queue_workers(const hk_queue_t *queue);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_JOBS_H */
