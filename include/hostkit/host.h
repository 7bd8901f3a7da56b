/*
 * hostkit/host.h - the host: builder -> host -> run.
 *
 * A builder collects configuration, logging and services; hk_builder_build
 * turns it into a host; hk_host_run starts the services, runs the host's
 * event loop (libuv, on the calling thread) until shutdown, stops the
 * services and returns the process exit code:
 *
 *      0  graceful stop
 *      1  a service failed to start, failed while running (StopHost), was
 *         given up by its restart policy, failed to stop or did not stop in
 *         time; also a host that cannot be built
 *     64  malformed command line
 *     78  invalid configuration
 *  128+N  forced by a second signal N (130 for a second Ctrl+C)
 *
 * Services. A service has a name and up to three callbacks:
 *  - start(svc, token): on the host thread, in registration order (dependencies first), before
 *    the host counts as started; may block start-up (keep it short). The
 *    token is cancelled when a stop is requested or the start-up timeout
 *    expires. Loop services create their libuv handles here. With
 *    Host:ServicesStartConcurrently each start runs on a thread of its own
 *    (do not touch the loop there).
 *  - execute(svc, stopping): on a thread of its own, launched right after
 *    start without waiting for it (with concurrent start: once every start
 *    has succeeded); the host does not wait for it to finish.
 *    Returns 0 when it finished its work (the host keeps running) or a
 *    negative errno value on failure (see Host:BackgroundServiceException-
 *    Behavior and the restart policy). `stopping` is cancelled when the host
 *    stops (or the service is stopped for a restart); each restart gets a
 *    new one.
 *  - stop(svc, token): on the host thread, in reverse (dependency) order,
 *    after every stopping token was cancelled (with
 *    Host:ServicesStopConcurrently: each on a thread of its own). The token
 *    is cancelled when the shutdown timeout expires.
 * A service with execute is a "background service"; one with only start/stop
 * is a "hosted service". Both may be combined.
 *
 * Supervision (docs/supervision.md). A service may declare the services it
 * depends on (def.depends_on): starts follow dependency order (ties: the
 * registration order above), stops the reverse; unknown names and cycles
 * fail the build (78). A restart policy (def.restart, or configuration
 * Services:{Name}:Restart:*) restarts a failed execute with exponential
 * backoff and full jitter, stopping and restarting its dependents; too many
 * failures in the window give it up and stop the host with exit code 1.
 * execute may return HK_SERVICE_DONE or HK_SERVICE_STOP_HOST. Every service
 * has a state (hk_host_service_status, any thread).
 *
 * Phases (details, diagram and threading model in docs/host.md):
 *   run: start services -> started -> loop -> stop requested -> stopping
 *        (readiness Unhealthy) -> [Host:ShutdownDelaySeconds, loop still
 *        running] -> cancel stopping tokens -> stop services (reverse) -> join
 *        background threads -> stopped -> destroy hooks (reverse) -> return.
 *
 * Host settings read from configuration at build (key: type, default):
 *   Host:ShutdownTimeoutSeconds: number, 30      Host:StartupTimeoutSeconds: number, 0 (none)
 *   Host:ServicesStartConcurrently: bool, false  Host:ServicesStopConcurrently: bool, false
 *   Host:BackgroundServiceExceptionBehavior: StopHost|Ignore, StopHost
 *   Host:SuppressStatusMessages: bool, false     Host:HandleSignals: bool, true
 *   Host:ConfigReloadDebounceMs: int, 250 (wait after a file change before reloading)
 *   Host:ReloadConfigOnChange: bool, true (watch the files; SIGHUP reloads either way)
 *   Host:ShutdownDelaySeconds: number, 0 (keep serving that long after readiness
 *     turned Unhealthy at shutdown begin, before services are stopped)
 *   Health:CacheSeconds: number, 1 (health results reused that long; 0: never)
 *   Health:HeartbeatMissedIntervals: int, 3 (missed heartbeats before Unhealthy)
 *   environment (HOSTKIT_ENVIRONMENT, --environment): string, Production
 *   contentRoot (HOSTKIT_CONTENTROOT, --contentRoot): string, the working directory
 */
#ifndef HOSTKIT_HOST_H
#define HOSTKIT_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "options.h"
#include "services.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_builder_s hk_builder_t;
typedef struct hk_host_s hk_host_t;
typedef struct hk_service_s hk_service_t;

/* uv_loop_t without making every user include <uv.h>. */
struct uv_loop_s;

typedef int (*hk_service_start_cb)(hk_service_t *svc, hk_token_t *token);
typedef int (*hk_service_execute_cb)(hk_service_t *svc, hk_token_t *stopping);
typedef int (*hk_service_stop_cb)(hk_service_t *svc, hk_token_t *token);

/*
 * Restart policies (docs/supervision.md). What the host does when a
 * background service's execute returns while the host runs:
 *   HK_RESTART_NEVER       .NET behaviour: 0 means completed, an error goes to
 *                          Host:BackgroundServiceExceptionBehavior (default).
 *   HK_RESTART_ON_FAILURE  restart when execute returns an error (< 0).
 *   HK_RESTART_ALWAYS      restart when it returns an error or 0.
 */
typedef enum hk_restart_mode {
    HK_RESTART_NEVER = 0,
    HK_RESTART_ON_FAILURE = 1,
    HK_RESTART_ALWAYS = 2
} hk_restart_mode_t;

/*
 * A service's restart policy. Configuration keys
 * Services:{Name}:Restart:Policy|BackoffInitialMs|BackoffMaxMs|MaxRestarts|
 * WithinSeconds win over these fields (read once, at build). A zero field
 * selects the default shown.
 * Backoff before restart n (1 for the first restart in the window): a random
 * delay in [0, min(backoff_max_ms, backoff_initial_ms * 2^(n-1))] ms (full
 * jitter). More than max_restarts failures within within_seconds: the
 * service is given up (state Failed) and the host stops with exit code 1.
 */
typedef struct hk_restart_policy {
    hk_restart_mode_t policy;
    unsigned backoff_initial_ms; /* 0: 100 */
    unsigned backoff_max_ms;     /* 0: 30000 */
    unsigned max_restarts;       /* 0: 5 */
    unsigned within_seconds;     /* 0: 60 */
} hk_restart_policy_t;

/*
 * Codes an execute callback may return besides 0 and a negative errno; they
 * win over the restart policy (they are positive, so never an -errno):
 *   HK_SERVICE_DONE       the service finished for good: not restarted, the
 *                         host keeps running ("Background service NAME completed").
 *   HK_SERVICE_STOP_HOST  stop the whole host gracefully (exit code 0 unless
 *                         something else failed), as hk_host_stop() would.
 */
#define HK_SERVICE_DONE 0x10000
#define HK_SERVICE_STOP_HOST 0x10001

/*
 * A service definition. Fill it with designated initialisers; fields added
 * later default to zero. The name is copied; it must be unique in the host,
 * 1..63 characters, and is how logs, errors and configuration name the
 * service. At least one of start, execute, stop must be set.
 */
typedef struct hk_service_def {
    const char *name;
    hk_service_start_cb start;
    hk_service_execute_cb execute;
    hk_service_stop_cb stop;
    hk_destroy_cb destroy; /* called with data at the end of run (or by hk_host_free /
                              hk_builder_free when the host never ran) */
    void *data;
    /*
     * Optional: a key in the host's service registry (hk_builder_services).
     * The host resolves it from the root scope (with its dependencies) just
     * before the service starts; read it with hk_service_instance(). It
     * must be a singleton or transient registration (checked at build).
     */
    const char *instance;
    /* Optional restart policy (see hk_restart_policy_t); zero: never. */
    hk_restart_policy_t restart;
    /*
     * Optional: a NULL-terminated list of the names of services this one
     * depends on (copied at registration). It starts after them and stops
     * before them, and is restarted after any of them restarts. An unknown
     * name or a cycle fails the build (exit 78, naming the chain).
     */
    const char *const *depends_on;
    /*
     * Optional, background services only: the interval (ms) at which execute
     * promises to call hk_service_heartbeat(). The host then registers a
     * health check "heartbeat:{name}" tagged live that is Unhealthy when no
     * heartbeat came for Health:HeartbeatMissedIntervals (default 3)
     * intervals while execute runs (counting from when it started).
     * 0: no heartbeat check.
     */
    unsigned heartbeat_ms;
} hk_service_def_t;

/* ---- builder ------------------------------------------------------------ */

/*
 * Creates a builder: a configuration store loaded from the environment and
 * from argv (argc may be 0 and argv NULL), and a log writing to stderr.
 * A malformed command line does not fail here: it is recorded, and the build
 * fails with exit code 64. Returns NULL only when out of memory.
 * Single-threaded: one thread uses a builder at a time.
 */
HK_EXTERN hk_builder_t *hk_builder_new(int argc, char **argv);

/*
 * Frees the builder and everything it still owns (services that were not
 * moved into a host get their destroy hooks called, in reverse order).
 * Accepts NULL.
 */
HK_EXTERN void hk_builder_free(hk_builder_t *builder);

/* The builder's configuration store and log; they move into the host at build. */
HK_EXTERN hk_config_t *hk_builder_config(hk_builder_t *builder);
HK_EXTERN hk_log_t *hk_builder_log(hk_builder_t *builder);
/*
 * The service registry (hostkit/services.h) shared by the program's
 * services: register singletons, scoped and transient services here. The
 * build validates it (missing dependencies, captive dependencies, cycles:
 * exit 78 listing every problem); the host frees it, destroying singletons
 * in reverse creation order, after every service stopped.
 */
HK_EXTERN hk_services_t *hk_builder_services(hk_builder_t *builder);
HK_EXTERN hk_services_t *hk_host_services(hk_host_t *host);

/*
 * The health registry (hostkit/health.h): register the program's checks
 * here. It moves into the host at build, which adds the built-in checks
 * (`host`, tagged ready; `heartbeat:{service}`, tagged live, for services
 * with heartbeat_ms) and applies Health:CacheSeconds; the host frees it.
 * The names "host" and "heartbeat:..." are reserved (the build fails with
 * exit code 1 when a program check takes one). See docs/health.md.
 */
HK_EXTERN hk_health_t *hk_builder_health(hk_builder_t *builder);
HK_EXTERN hk_health_t *hk_host_health(hk_host_t *host);

/* Shorthand for hk_log_get(hk_builder_log(builder), category). */
HK_EXTERN hk_logger_t *hk_builder_logger(hk_builder_t *builder, const char *category);

/*
 * Registers a service (see hk_service_def_t). On success the host owns
 * def->data from now on (its destroy hook runs at the end of hk_host_run,
 * in reverse registration order, or when the builder or a host that never
 * ran is freed); on failure nothing is kept, destroy is not called, the error is
 * recorded in the builder (the build will fail with it) and returned:
 * -EINVAL (no name, bad name, no callback), -EEXIST (name taken), -ENOMEM.
 */
HK_EXTERN int hk_builder_add_service(hk_builder_t *builder, const hk_service_def_t *def);

/* Shorthands for hk_builder_add_service. */
HK_EXTERN int hk_builder_add_background(hk_builder_t *builder, const char *name,
                                        hk_service_execute_cb execute, void *data,
                                        hk_destroy_cb destroy);
HK_EXTERN int hk_builder_add_hosted(hk_builder_t *builder, const char *name,
                                    hk_service_start_cb start, hk_service_stop_cb stop,
                                    void *data, hk_destroy_cb destroy);

/*
 * Adds a JSON configuration file (see hk_config_add_json_file); a relative
 * path is relative to the content root. The builder already added
 * appsettings.json and appsettings.{Environment}.json from the content root
 * (optional, reloaded on change). Files added later win over earlier ones;
 * environment variables and the command line win over all files.
 * Returns 0, -EINVAL (recorded: the build fails with 78) or -ENOMEM.
 */
HK_EXTERN int hk_builder_add_json_file(hk_builder_t *builder, const char *path, bool optional,
                                       bool reload_on_change);

/*
 * Registers typed options for a configuration section (hostkit/options.h).
 * The build binds and validates them, listing every problem (exit 78), and
 * warns about unknown keys in the section; every reload binds them again.
 * *ret_opts is owned by the builder, then the host, until hk_host_free.
 * def and its fields must outlive the host (use static const tables).
 * Returns 0, -EINVAL or -ENOMEM (recorded: the build fails).
 */
HK_EXTERN int hk_builder_add_options(hk_builder_t *builder, const hk_options_def_t *def,
                                     hk_options_t **ret_opts);

/* The program's version, shown by --version. Copied. Returns 0, -EINVAL, -ENOMEM. */
HK_EXTERN int hk_builder_set_version(hk_builder_t *builder, const char *version);

/*
 * Builds the host: reads the host settings, checks every recorded error and
 * the logging configuration. On success moves the configuration, log and
 * services into *ret_host and returns 0 (free the builder afterwards). On
 * failure logs every error, leaves the builder as it was and returns -EINVAL
 * or -ENOMEM; hk_builder_exit_code() then tells the exit code (64, 78 or 1)
 * and hk_builder_error() the first error message.
 * The reserved switches are handled here, before anything else (wherever
 * they are on the command line, even next to a malformed argument): --help
 * (-h, -?, /?) prints usage with every registered option, --version the version,
 * --print-config every key with its value and source (secrets as ***);
 * each to stdout, then it returns -ECANCELED with exit code 0 (78 for
 * --print-config when the configuration is invalid).
 */
HK_EXTERN int hk_builder_build(hk_builder_t *builder, hk_host_t **ret_host);
HK_EXTERN int hk_builder_exit_code(const hk_builder_t *builder);
HK_EXTERN const char *hk_builder_error(const hk_builder_t *builder);

/*
 * The whole program in one call: build, run, free host and builder. Returns
 * the exit code for main(). Accepts NULL (out of memory in hk_builder_new)
 * and returns 1 for it.
 */
HK_EXTERN int hk_builder_run(hk_builder_t *builder);

/* ---- host --------------------------------------------------------------- */

/*
 * Runs the host (see the phases above) and returns the process exit code.
 * Call it once, from the thread that will own the loop; a second call
 * returns 1 and logs an error. Unless Host:HandleSignals=false, SIGINT,
 * SIGTERM and SIGQUIT request a graceful stop while it runs (one host per
 * process can own them; a second concurrent host runs without), a second
 * such signal logs "Forced shutdown" and ends the process at once with
 * 128+signal (_exit, after the log is flushed). SIGHUP reloads the
 * configuration (every file and provider) and SIGPIPE is ignored. Previous
 * signal dispositions are restored before it returns.
 */
HK_EXTERN int hk_host_run(hk_host_t *host);

/*
 * Frees the host: destroy hooks run in reverse registration order if run did
 * not run them, then the configuration and log are freed. A service still
 * running after a shutdown timeout keeps the host's memory alive until its
 * thread returns; its destroy hook then runs on that thread, last (if the
 * process has not exited by then). Accepts NULL.
 * Must not be called while hk_host_run runs.
 */
HK_EXTERN void hk_host_free(hk_host_t *host);

/*
 * Requests a graceful stop (.NET's StopApplication). Returns at once; the
 * stop happens on the host thread. Before or during start-up it is honoured
 * at the next safe point (before each service's start, and after the last),
 * so a stop requested before run starts nothing and run returns 0. Safe from
 * any thread and from a signal handler (async-signal-safe). Idempotent.
 */
HK_EXTERN void hk_host_stop(hk_host_t *host);

/*
 * Lifetime events as tokens that are cancelled when the event happens (the
 * .NET IHostApplicationLifetime model): started once every service started;
 * stopping when shutdown begins (readiness turns Unhealthy at the same
 * moment; with Host:ShutdownDelaySeconds the services' own tokens and stop
 * callbacks follow only after the delay); stopped after every service stopped. Wait on
 * them, poll them or register callbacks (run on the host thread; a callback
 * registered after the event runs at once). stopping and stopped also fire
 * when start-up fails; started then never does. Owned by the host.
 */
HK_EXTERN hk_token_t *hk_host_started(hk_host_t *host);
HK_EXTERN hk_token_t *hk_host_stopping(hk_host_t *host);
HK_EXTERN hk_token_t *hk_host_stopped(hk_host_t *host);

/*
 * Calls cb on the host thread after a configuration reload changed any key
 * in section (the key itself or any key under "section:"); "" matches every
 * change. Register before run or on the host thread. Returns 0, -EINVAL,
 * -ENOMEM.
 */
typedef void (*hk_config_change_cb)(hk_host_t *host, const char *section, void *data);
HK_EXTERN int hk_host_on_config_change(hk_host_t *host, const char *section, hk_config_change_cb cb,
                                       void *data);

/* The host's configuration, log and a logger for a category (any thread). */
HK_EXTERN hk_config_t *hk_host_config(hk_host_t *host);
HK_EXTERN hk_log_t *hk_host_log(hk_host_t *host);
HK_EXTERN hk_logger_t *hk_host_logger(hk_host_t *host, const char *category);

/*
 * The host's libuv loop, for loop services: use it only on the host thread
 * (in start/stop and in loop callbacks) and close your handles in stop.
 * Valid from build to free; it runs only inside hk_host_run.
 */
HK_EXTERN struct uv_loop_s *hk_host_loop(hk_host_t *host);

/* "Production" unless configured; the content root (absolute path). */
HK_EXTERN const char *hk_host_environment(const hk_host_t *host);
HK_EXTERN const char *hk_host_content_root(const hk_host_t *host);

/* ---- service states ------------------------------------------------------- */

/*
 * The state of a service (docs/supervision.md draws the transitions):
 * Created (built, not started yet), Starting (its start runs), Running,
 * BackingOff (waiting to be restarted: its own backoff, or a dependency's
 * restart), Stopping, Stopped (stopped, completed or done), Failed (failed
 * to start, failed without a restart, or given up).
 */
typedef enum hk_service_state {
    HK_SERVICE_CREATED,
    HK_SERVICE_STARTING,
    HK_SERVICE_RUNNING,
    HK_SERVICE_BACKING_OFF,
    HK_SERVICE_STOPPING,
    HK_SERVICE_STOPPED,
    HK_SERVICE_FAILED
} hk_service_state_t;

/* "Created", "Starting", "Running", "BackingOff", "Stopping", "Stopped",
 * "Failed"; "Unknown" for any other value. Static strings; any thread. */
HK_EXTERN const char *hk_service_state_name(hk_service_state_t state);

/* One service's status, as copied by hk_host_service_status. */
typedef struct hk_service_status {
    char name[64];
    hk_service_state_t state;
    unsigned restarts;         /* restarts so far (its own and as a dependent) */
    int last_error;            /* 0 or negative errno of the last failure */
    char last_error_text[256]; /* "" or the last failure's message */
    uint64_t state_since_ns;   /* CLOCK_MONOTONIC ns when it entered the state */
} hk_service_status_t;

/*
 * Copies the status of every service, in registration order, into out (at
 * most cap entries; out may be NULL when cap is 0) and returns the number of
 * services. Each entry is consistent (taken under the service's lock); the
 * entries are not one atomic snapshot of the whole host. Any thread, from
 * build until hk_host_free. Returns 0 for a NULL host.
 */
HK_EXTERN size_t hk_host_service_status(hk_host_t *host, hk_service_status_t *out, size_t cap);

/* ---- inside a service --------------------------------------------------- */

HK_EXTERN const char *hk_service_name(const hk_service_t *svc);
HK_EXTERN void *hk_service_data(const hk_service_t *svc);
HK_EXTERN hk_host_t *hk_service_host(const hk_service_t *svc);
/* The instance resolved for def.instance (NULL without one, or before start). */
HK_EXTERN void *hk_service_instance(const hk_service_t *svc);

/*
 * Records why the service failed (printf-style; the host logs it with the
 * service's name) and returns err, so a callback can write
 *     return hk_service_fail(svc, -ECONNREFUSED, "connecting to %s", addr);
 * err must be negative; a non-negative err is replaced by -EIO. Call it only
 * from the service's own callbacks.
 */
HK_EXTERN int hk_service_fail(hk_service_t *svc, int err, const char *fmt, ...) HK_PRINTF(3, 4);

/*
 * Records a heartbeat of a background service declared with heartbeat_ms
 * (see hk_service_def_t): one atomic store, lock-free, from any thread.
 * Does nothing for NULL or a service without heartbeat_ms.
 */
HK_EXTERN void hk_service_heartbeat(hk_service_t *svc);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_HOST_H */
