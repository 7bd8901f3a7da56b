/*
 * The example worker (build/bin/worker): hostkit's Worker Service template.
 * Its Worker section is bound onto worker_opts_t and validated at start-up;
 * Worker:Count background services "worker-N" log every Worker:IntervalMs
 * (re-read on every loop, so a reload changes it live) and sleep on their
 * cancellation token; a hosted service "audit" logs on start and stop.
 * Services come from the registry: a singleton "Stats" counts the runs of
 * every worker, and each run creates a scope and resolves a scoped
 * "RunContext" (the .NET pattern for scoped work in background services);
 * "audit" gets Stats as its instance and reports the total when it stops.
 * Knobs to see failure behaviour: Worker:FailAfterMs (worker-1 fails),
 * Worker:HangOnStopMs (worker-1 ignores cancellation that long),
 * Worker:FailStart=true (audit fails to start). With a restart policy,
 * --Services:worker-1:Restart:Policy=on-failure --Worker:FailAfterMs=100,
 * worker-1 keeps failing and is restarted with growing backoff until the
 * intensity limit gives it up and stops the host with exit code 1 (see
 * docs/supervision.md). Workers send heartbeats (a live health check each;
 * docs/health.md), and the host's metrics registry has the hostkit_*
 * series (docs/metrics.md). Logging uses message templates and a scope per
 * run (docs/logging.md).
 * Timed and queued work (docs/jobs.md): every run of a worker puts a work
 * item on the queue "work" (Queues:work:Workers, default 2 threads;
 * Queues:work:Capacity, default 100), whose workers count it; the periodic
 * job "report" logs the totals every Worker:ReportInterval (default 10s;
 * Jobs:report:* configures it further, e.g. Jobs:report:Cron). At shutdown
 * the queue drains what is left and says so. With
 * --Management:Urls=http://127.0.0.1:9090 it serves /healthz, /healthz/live,
 * /healthz/ready and /metrics (docs/web.md). Depends on libhostkit, and on
 * libhostkit-web for those endpoints only.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hostkit/hostkit.h>
#include <hostkit/web.h>

/* Workers promise a heartbeat at least this often (docs/health.md). */
#define HEARTBEAT_MS 1000

/* The Worker configuration section, bound and validated by the host. */
typedef struct worker_opts {
    int64_t count;
    int64_t interval_ms;
    int64_t fail_after_ms; /* -1: never */
    int64_t hang_on_stop_ms;
    bool fail_start;
    int64_t report_interval_ms;
} worker_opts_t;

static const hk_option_t worker_fields[] = {
    HK_OPT_INT(worker_opts_t, count, "Count", "3", 0, 1000, "Number of background workers"),
    HK_OPT_INT(worker_opts_t, interval_ms, "IntervalMs", "1000", 1, 86400000,
               "Milliseconds between two runs of a worker (reloadable)"),
    HK_OPT_INT(worker_opts_t, fail_after_ms, "FailAfterMs", "-1", -1, 86400000,
               "worker-1 fails after this many ms (-1: never)"),
    HK_OPT_INT(worker_opts_t, hang_on_stop_ms, "HangOnStopMs", "0", 0, 86400000,
               "worker-1 ignores cancellation for this many ms"),
    HK_OPT_BOOL(worker_opts_t, fail_start, "FailStart", "false", "the audit service fails to start"),
    {HK__OPT(worker_opts_t, report_interval_ms, "ReportInterval", HK_OPTION_DURATION, "10s",
             "Time between two reports of the report job"),
     .has_range = true, .min = 1, .max = 86400000},
};
static const hk_options_def_t worker_def = HK_OPTIONS_DEF("Worker", worker_opts_t, worker_fields);

typedef struct worker {
    int id;
    hk_options_t *opts;
    hk_logger_t *log;
    hk_handle_t run_context; /* resolved once, O(1) per run */
} worker_t;

/* The queue "work": registered before the build, read-only from then on. */
static hk_queue_t *work_queue;

typedef struct audit {
    hk_options_t *opts;
    hk_logger_t *log;
} audit_t;

/* Singleton "Stats": shared by every worker. */
typedef struct stats {
    atomic_long runs;
    atomic_long processed; /* work items the queue's workers ran */
} stats_t;

/* One item on the work queue: made by a worker run, run by a queue worker. */
typedef struct work_item {
    stats_t *stats;
    int worker;
    long run;
} work_item_t;

/* Scoped "RunContext": one per run, disposed with the run's scope. */
typedef struct run_context {
    stats_t *stats;
    long number;
} run_context_t;

static int stats_create(hk_scope_t *scope, void *data, void **ret) {
    (void)scope;
    (void)data;
    stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *ret = s;
    return 0;
}

static void instance_free(void *instance, void *data) {
    (void)data;
    free(instance);
}

static int run_context_create(hk_scope_t *scope, void *data, void **ret) {
    (void)data;
    stats_t *stats = NULL;
    int rc = hk_scope_get(scope, "Stats", (void **)&stats);
    if (rc < 0)
        return rc;
    run_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->stats = stats;
    ctx->number = atomic_fetch_add(&stats->runs, 1) + 1;
    *ret = ctx;
    return 0;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Local time as 2026-11-25T19:08:29.123+00:00 */
static const char *timestamp(char *buf, size_t len) { /* len >= 48 */
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char date[64], zone[8];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof zone, "%z", &tm); /* +0000 -> +00:00 */
    snprintf(buf, len, "%s.%03ld%.3s:%s", date, ts.tv_nsec / 1000000, zone, zone + 3);
    return buf;
}

static int process_item(void *arg, hk_token_t *token) {
    (void)token;
    work_item_t *it = arg;
    atomic_fetch_add(&it->stats->processed, 1);
    return 0;
}

/* Hands one item to the queue; a full queue is backpressure the worker sees at once. */
static void feed_queue(worker_t *w, stats_t *stats, long run) {
    work_item_t *it = malloc(sizeof *it);
    if (!it)
        return;
    *it = (work_item_t){stats, w->id, run};
    int rc = hk_queue_try_enqueue(work_queue, process_item, it, free);
    if (rc < 0) {
        free(it);
        if (rc == -EAGAIN)
            hk_warn(w->log, "Worker %d: the work queue is full; item of run %ld dropped", w->id, run);
    }
}

/* The periodic job "report": the totals so far, from the Stats singleton (via the run's scope). */
static int report_run(const hk_job_run_t *run) {
    hk_logger_t *log = run->data;
    stats_t *stats = NULL;
    int rc = hk_scope_get(run->scope, "Stats", (void **)&stats);
    if (rc < 0)
        return hk_job_fail(run, rc, "%s", hk_services_last_error());
    hk_log_info(log, "Report {Number}: {Runs} worker runs, {Processed} items processed",
                (unsigned long long)run->number, (long)atomic_load(&stats->runs),
                (long)atomic_load(&stats->processed));
    return 0;
}

static int worker_execute(hk_service_t *svc, hk_token_t *stopping) {
    worker_t *w = hk_service_data(svc);
    uint64_t begin = now_ms();
    char ts[96];
    while (!hk_token_is_cancelled(stopping)) {
        const worker_opts_t *o = hk_options_acquire(w->opts); /* the current snapshot */
        uint64_t wait = (uint64_t)o->interval_ms;
        int64_t fail_after = w->id == 1 ? o->fail_after_ms : -1;
        hk_options_release(w->opts, o);

        /* One unit of work: a scope, the scoped objects it needs, then dispose. */
        hk_scope_t *scope = NULL;
        run_context_t *ctx = NULL;
        int rc = hk_scope_new(hk_host_services(hk_service_host(svc)), &scope);
        if (rc == 0)
            rc = hk_scope_get_handle(scope, w->run_context, (void **)&ctx);
        if (rc < 0) {
            hk_scope_free(scope);
            return hk_service_fail(svc, rc, "%s", hk_services_last_error());
        }
        /* Structured logging: named holes, and a scope every line of this run carries. */
        hk_log_scope_t run_scope;
        hk_log_scope_begin(&run_scope, "Run", ctx->number);
        hk_log_info(w->log, "Worker {WorkerId} running at {Time}", w->id, timestamp(ts, sizeof ts));
        hk_log_debug(w->log, "Worker {WorkerId} finished run {Run}", w->id, ctx->number);
        hk_log_scope_end(&run_scope);
        feed_queue(w, ctx->stats, ctx->number);
        hk_scope_free(scope);

        if (fail_after >= 0) {
            uint64_t elapsed = now_ms() - begin;
            if (elapsed >= (uint64_t)fail_after)
                return hk_service_fail(svc, -EIO, "simulated failure after %lld ms (Worker:FailAfterMs)",
                                       (long long)fail_after);
            if ((uint64_t)fail_after - elapsed < wait)
                wait = (uint64_t)fail_after - elapsed;
        }
        /* Sleep in slices of at most one heartbeat, beating before each:
         * the heartbeat:worker-N health check (tagged live) sees the thread
         * alive whatever Worker:IntervalMs is. */
        while (wait > 0 && !hk_token_is_cancelled(stopping)) {
            uint64_t slice = wait < HEARTBEAT_MS ? wait : HEARTBEAT_MS;
            hk_service_heartbeat(svc);
            hk_token_sleep(stopping, slice);
            wait -= slice;
        }
    }
    const worker_opts_t *o = hk_options_acquire(w->opts);
    int64_t hang = w->id == 1 ? o->hang_on_stop_ms : 0;
    hk_options_release(w->opts, o);
    if (hang > 0) {
        hk_warn(w->log, "Worker %d ignores cancellation for %lld ms (Worker:HangOnStopMs)", w->id,
                (long long)hang);
        struct timespec d = {(time_t)(hang / 1000), (long)(hang % 1000) * 1000000L};
        while (nanosleep(&d, &d) < 0 && errno == EINTR) {
        }
    }
    return 0;
}

static int audit_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    audit_t *a = hk_service_data(svc);
    const worker_opts_t *o = hk_options_acquire(a->opts);
    bool fail = o->fail_start;
    long long count = (long long)o->count;
    hk_options_release(a->opts, o);
    if (fail)
        return hk_service_fail(svc, -EIO, "simulated start failure (Worker:FailStart=true)");
    hk_log_info(a->log, "Audit started: watching {Workers} workers", count);
    return 0;
}

static void on_worker_section_changed(hk_host_t *host, const char *section, void *data) {
    (void)data;
    hk_info(hk_host_logger(host, "Audit"), "Section %s changed; workers pick it up on their next run",
            section);
}

static int audit_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    audit_t *a = hk_service_data(svc);
    stats_t *stats = hk_service_instance(svc);
    hk_log_info(a->log, "Audit counted {Runs} worker runs", (long)atomic_load(&stats->runs));
    hk_info(a->log, "Audit stopped");
    return 0;
}

/* Worker:ReportInterval as the job's interval (a bad value fails the options binding: 78). */
static uint64_t report_interval_ms(hk_builder_t *b) {
    int64_t ms = 10000;
    const char *text = hk_config_get_string(hk_builder_config(b), "Worker:ReportInterval", NULL);
    if (text && (hk_parse_duration_ms(text, &ms) < 0 || ms < 1))
        ms = 10000;
    return (uint64_t)ms;
}

/* Registers the services once the options are bound (their count is configuration). */
static int add_services(hk_builder_t *b, hk_options_t *opts, int64_t count) {
    hk_services_t *services = hk_builder_services(b);
    static const char *const run_context_deps[] = {"Stats", NULL};
    hk_services_add_singleton(services, "Stats", stats_create, instance_free, NULL, NULL);
    hk_services_add_scoped(services, "RunContext", run_context_create, instance_free, NULL,
                           run_context_deps);
    hk_handle_t run_context = hk_services_handle(services, "RunContext");
    hk_logger_t *log = hk_builder_logger(b, "Worker");
    for (int i = 1; i <= count; i++) {
        worker_t *w = calloc(1, sizeof *w);
        if (!w)
            return -ENOMEM;
        *w = (worker_t){i, opts, log, run_context};
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i);
        hk_service_def_t def = {.name = name, .execute = worker_execute, .data = w,
                                .destroy = free, .heartbeat_ms = HEARTBEAT_MS};
        if (hk_builder_add_service(b, &def) < 0)
            free(w); /* the build reports the error */
    }
    audit_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    *a = (audit_t){opts, hk_builder_logger(b, "Audit")};
    hk_service_def_t audit = {.name = "audit", .start = audit_start, .stop = audit_stop,
                              .destroy = free, .data = a, .instance = "Stats"};
    if (hk_builder_add_service(b, &audit) < 0)
        free(a);
    /* Registered after audit, so they start after it (and not at all when it fails);
     * items the workers make before the queue's threads run wait in it. */
    hk_queue_def_t work = {.name = "work", .workers = 2, .capacity = 100};
    hk_builder_add_queue(b, &work, &work_queue); /* an error is recorded: the build reports it */
    hk_job_def_t report = {.name = "report", .run = report_run, .data = hk_builder_logger(b, "Report"),
                           .interval_ms = report_interval_ms(b)};
    hk_builder_add_job(b, &report); /* an error is recorded: the build reports it */
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_builder_set_version(b, "0.1.0");
    hk_options_t *opts = NULL;
    hk_builder_add_options(b, &worker_def, &opts);
    /* Worker:Count decides how many services exist, so it is read before the
     * build; a bad value is recorded and the build fails with 78 naming it. */
    int64_t count = 3;
    hk_config_get_int(hk_builder_config(b), "Worker:Count", 3, 0, 1000, &count);
    /* Health and metrics over HTTP for a worker with no routes: nothing
     * listens unless Management:Urls is set (e.g. http://127.0.0.1:9090).
     * Registered first, so it starts first and stops last: the endpoints
     * answer for the whole shutdown. */
    hk_builder_add_web(b, NULL);
    if (add_services(b, opts, count) < 0) {
        hk_builder_free(b);
        return 1;
    }
    hk_host_t *host = NULL;
    if (hk_builder_build(b, &host) < 0) {
        int code = hk_builder_exit_code(b);
        hk_builder_free(b);
        return code;
    }
    hk_builder_free(b);
    hk_host_on_config_change(host, "Worker", on_worker_section_changed, NULL);
    int code = hk_host_run(host);
    hk_host_free(host);
    return code;
}
