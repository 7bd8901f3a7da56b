/*
 * {{name}} - a background worker on hostkit, the Generic Host for C.
 * Created by `hostkit new worker {{name}}`; from here on it is yours.
 *
 * What is in it:
 *  - Options. The "Worker" section of the configuration is bound onto
 *    worker_options_t and validated before anything starts; a bad value stops
 *    start-up with exit code 78 and a message naming the key, the value and
 *    where it came from. Sources, lowest precedence first: appsettings.json,
 *    appsettings.{Environment}.json (both in the content root), environment
 *    variables (Worker__Interval=2s) and the command line
 *    (--Worker:Interval=2s). The files are reloaded when they change and on
 *    SIGHUP; the worker reads its options again on every iteration, so a new
 *    value applies from the next one.
 *  - Services. The registry holds a singleton "Stats", one for the whole
 *    program, and a scoped "Job", one per unit of work. Each iteration of the
 *    worker creates a scope, resolves its Job there and frees the scope, which
 *    destroys the Job: the place for what one unit of work needs (a database
 *    session, a buffer, a connection from a pool).
 *  - A background service "worker", which runs on a thread of its own until
 *    its token is cancelled, and a hosted service "audit", whose start and
 *    stop callbacks run on the host thread, in order with the other services.
 *
 * Ctrl+C or SIGTERM stops it gracefully (exit code 0). Run it with --help to
 * see every setting. README.md tells how to build, run and install it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hostkit/hostkit.h>

#ifndef APP_VERSION
#define APP_VERSION "0.1.0" /* CMakeLists.txt passes the project's version */
#endif

/* ---- options: the "Worker" section ------------------------------------------------ */

typedef struct worker_options {
    int64_t interval_ms; /* Worker:Interval, time between two jobs */
    char *message;       /* Worker:Message, what each job logs */
} worker_options_t;

/* A field validator: field points at the bound value (here a char *). */
static int validate_message(const void *field, char *err, size_t err_len) {
    const char *message = *(char *const *)field;
    if (message && message[strspn(message, " \t")] != '\0')
        return 0;
    snprintf(err, err_len, "must not be blank");
    return -EINVAL;
}

static const hk_option_t worker_fields[] = {
    {.name = "Interval", .type = HK_OPTION_DURATION,
     .offset = offsetof(worker_options_t, interval_ms), .def = "5s",
     .has_range = true, .min = 10, .max = 24 * 60 * 60 * 1000.0,
     .description = "Time between two jobs: 500ms, 5s, 1m, ..."},
    {.name = "Message", .type = HK_OPTION_STRING,
     .offset = offsetof(worker_options_t, message), .def = "Hello from {{name}}",
     .validate = validate_message, .description = "What each job logs"},
};

static const hk_options_def_t worker_options_def =
    HK_OPTIONS_DEF("Worker", worker_options_t, worker_fields);

/* ---- services: a singleton and a scoped object --------------------------------------- */

/* Singleton "Stats": shared by every job, destroyed after every service stopped. */
typedef struct stats {
    atomic_long jobs; /* jobs created so far */
} stats_t;

/* Scoped "Job": one per iteration of the worker, destroyed with its scope. */
typedef struct job {
    stats_t *stats;
    long number;
} job_t;

static int stats_create(hk_scope_t *scope, void *data, void **ret_instance) {
    (void)data;
    stats_t *stats = malloc(sizeof *stats);
    if (!stats)
        return hk_scope_fail(scope, -ENOMEM, "out of memory");
    atomic_init(&stats->jobs, 0);
    *ret_instance = stats;
    return 0;
}

static int job_create(hk_scope_t *scope, void *data, void **ret_instance) {
    (void)data;
    stats_t *stats;
    int r = HK_SCOPE_GET(scope, "Stats", stats_t, &stats); /* declared in job_deps */
    if (r < 0)
        return r;
    job_t *job = malloc(sizeof *job);
    if (!job)
        return hk_scope_fail(scope, -ENOMEM, "out of memory");
    job->stats = stats;
    job->number = atomic_fetch_add(&stats->jobs, 1) + 1;
    *ret_instance = job;
    return 0;
}

static void free_instance(void *instance, void *data) {
    (void)data;
    free(instance);
}

/* ---- the background service "worker" ------------------------------------------------- */

typedef struct worker {
    hk_options_t *options;
    hk_logger_t *log;
    hk_handle_t job; /* "Job" resolved to a handle once: O(1) per iteration */
} worker_t;

/* One unit of work in a scope of its own: resolve the Job, do the work, dispose. */
static int run_job(hk_service_t *svc, const worker_t *w, const worker_options_t *o) {
    hk_scope_t *scope;
    int r = hk_scope_new(hk_host_services(hk_service_host(svc)), &scope);
    if (r < 0)
        return hk_service_fail(svc, r, "cannot create a scope: %s", hk_strerror(r));
    void *instance;
    r = hk_scope_get_handle(scope, w->job, &instance);
    if (r == 0) {
        const job_t *job = instance;
        /* The work goes here. */
        hk_info(w->log, "Job %ld: %s", job->number, o->message);
    } else {
        r = hk_service_fail(svc, r, "%s", hk_services_last_error());
    }
    hk_scope_free(scope); /* destroys the Job and whatever else the scope created */
    return r;
}

static int worker_execute(hk_service_t *svc, hk_token_t *stopping) {
    const worker_t *w = hk_service_data(svc);
    while (!hk_token_is_cancelled(stopping)) {
        /* The current snapshot: a reload may have replaced it since the last iteration. */
        const worker_options_t *o = hk_options_acquire(w->options);
        int r = run_job(svc, w, o);
        uint64_t interval_ms = (uint64_t)o->interval_ms;
        hk_options_release(w->options, o);
        if (r < 0)
            return r; /* the host logs it and stops with exit code 1 */
        hk_token_sleep(stopping, interval_ms); /* returns early when the host stops */
    }
    return 0;
}

/* ---- the hosted service "audit" --------------------------------------------------------- */

typedef struct audit {
    hk_options_t *options;
    hk_logger_t *log;
} audit_t;

static int audit_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    const audit_t *a = hk_service_data(svc);
    const worker_options_t *o = hk_options_acquire(a->options);
    hk_info(a->log, "Audit started: one job every %lld ms", (long long)o->interval_ms);
    hk_options_release(a->options, o);
    return 0;
}

static int audit_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    const audit_t *a = hk_service_data(svc);
    stats_t *stats = hk_service_instance(svc); /* the singleton, resolved by the host */
    hk_info(a->log, "Audit stopped after %ld jobs", atomic_load(&stats->jobs));
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

/*
 * Registers the services. The registry's errors are returned; a failed
 * hk_builder_add_* is recorded in the builder, and the build reports it.
 */
static int add_services(hk_builder_t *b, hk_options_t *options) {
    static const char *const job_deps[] = {"Stats", NULL};
    hk_services_t *services = hk_builder_services(b);
    int r = hk_services_add_singleton(services, "Stats", stats_create, free_instance, NULL, NULL);
    if (r == 0)
        r = hk_services_add_scoped(services, "Job", job_create, free_instance, NULL, job_deps);
    if (r < 0)
        return r;

    worker_t *w = malloc(sizeof *w);
    audit_t *a = malloc(sizeof *a);
    if (!w || !a) {
        free(w);
        free(a);
        return -ENOMEM;
    }
    *w = (worker_t){options, hk_builder_logger(b, "Worker"), hk_services_handle(services, "Job")};
    *a = (audit_t){options, hk_builder_logger(b, "Audit")};
    /* On success the host owns the data and frees it with destroy; on failure nothing is kept. */
    if (hk_builder_add_background(b, "worker", worker_execute, w, free) < 0)
        free(w);
    hk_service_def_t audit = {.name = "audit", .start = audit_start, .stop = audit_stop,
                              .destroy = free, .data = a, .instance = "Stats"};
    if (hk_builder_add_service(b, &audit) < 0)
        free(a);
    return 0;
}

int main(int argc, char **argv) {
    /* Configuration from appsettings*.json, the environment and the command line. */
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_builder_set_version(b, APP_VERSION);
    hk_options_t *options = NULL;
    hk_builder_add_options(b, &worker_options_def, &options);
    int r = add_services(b, options);
    if (r < 0) {
        hk_critical(hk_builder_logger(b, "Program"), "Cannot register the services: %s",
                    hk_strerror(r));
        hk_builder_free(b);
        return 1;
    }
    /* Build (exit 64 or 78 on a bad command line or configuration), run until
     * Ctrl+C or SIGTERM, free everything; returns the exit code. */
    return hk_builder_run(b);
}
