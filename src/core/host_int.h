/*
 * Private structures of the host (src/core/host.c), its services
 * (src/core/service.c) and its control thread (src/core/control.c).
 * Depends on libuv, pthreads, src/common, src/log and the public headers.
 */
#ifndef HK_SRC_HOST_INT_H
#define HK_SRC_HOST_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <uv.h>

#include "common/common.h"
#include "hostkit/host.h"
#include "hostkit/metrics.h"
#include "hostkit/options.h"
#include "hostkit/systemd.h"
#include "systemd/systemd_int.h"

/* A thread running one service callback: execute, or start/stop in concurrent mode. */
typedef enum task_kind { TASK_EXECUTE, TASK_START, TASK_STOP } task_kind_t;
typedef struct task {
    hk_service_t *svc;
    task_kind_t kind;
    pthread_t thread;
    bool launched; /* pthread_create succeeded */
    bool joined;
    atomic_bool done; /* release-stored after rc and done_ns */
    int rc;
    uint64_t done_ns; /* when the callback returned */
} task_t;

struct hk_service_s {
    char *name;
    hk_service_def_t def;
    hk_host_t *host;
    hk_token_t *stopping; /* execute's token; NULL for hosted services */
    task_t exec;
    task_t phase;
    bool started;   /* start succeeded and its thread (if any) launched */
    bool destroyed; /* destroy hook ran */
    pthread_mutex_t error_mu; /* execute and stop may fail on two threads at once */
    char *instance_key; /* def.instance, copied */
    void *instance;     /* resolved from the registry before start */
    bool resolved;
    char *error;      /* from hk_service_fail in start/stop; cleared before each call */
    char *exec_error; /* ... in execute (its own thread) */

    /* supervision (src/core/supervise.c); host thread only unless noted */
    hk_restart_policy_t restart; /* resolved at build: defaults, API, configuration */
    char **dep_names;            /* def.depends_on, copied (NULL-terminated) */
    size_t *deps;                /* indices of the services it depends on (at build) */
    size_t ndeps;
    uint64_t *fail_ns;           /* ring of the last restart.max_restarts+1 failure times */
    size_t nfail, fail_head;
    bool held;            /* stopped because a dependency restarts; restarted after it */
    bool restart_pending; /* its backoff timer runs or it waits for held dependents */
    bool mark;            /* scratch for dependents walks */
    bool stop_launched;   /* shutdown with dependencies: its stop phase began */
    bool stop_pending;    /* to be stopped for a restart once its dependents are down */
    int cstate;           /* concurrent start with dependencies */
    uv_timer_t backoff;
    bool backoff_open;
    hk_scope_t *scope; /* the scope of the current restart (NULL: the root scope) */
    pthread_mutex_t state_mu; /* guards the status below (read from any thread) */
    hk_service_state_t state;
    unsigned restarts;
    int last_error;
    char last_error_text[256];
    uint64_t state_since_ns;
    /* heartbeats (src/core/hosthealth.c): registry clock of the last one; set
     * when execute starts; exec_live while execute runs */
    _Atomic uint64_t beat_ns;
    atomic_bool exec_live;
};

/* A hk_host_on_config_change registration. */
struct hk__config_watcher {
    char *section;
    hk_config_change_cb cb;
    void *data;
};

/* What the control thread is timing. */
typedef enum deadline_kind {
    DEADLINE_NONE,
    DEADLINE_STARTUP,
    DEADLINE_SHUTDOWN,
    DEADLINE_START_GRACE /* concurrent start, after a start-up timeout */
} deadline_kind_t;

typedef struct hk__control {
    int rfd, wfd;           /* self-pipe: hk_host_stop and the signal handler write bytes */
    atomic_int wfd_pub;     /* wfd while writers may use it, else -1 */
    atomic_int writers;     /* writers between loading wfd_pub and finishing their write */
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;     /* guards the deadline */
    uint64_t deadline_ns;
    deadline_kind_t deadline_kind;
    bool owns_signals;
    struct sigaction old_int, old_term, old_quit, old_pipe, old_hup, old_usr1;
    int signals_seen;       /* control thread only */
} hk__control_t;

typedef enum host_phase { PHASE_BUILT, PHASE_STARTING, PHASE_RUNNING, PHASE_STOPPING, PHASE_DONE } host_phase_t;

struct hk_host_s {
    atomic_int refs; /* 1 for the owner + 1 per live service thread */
    hk_config_t *config;
    hk_log_t *log;
    hk_logger_t *lg_host, *lg_lifetime;

    hk_service_t **svcs;
    size_t nsvcs;
    size_t *order;   /* start order (dependencies first, then registration order) */
    bool has_deps;   /* some service declared dependencies */
    uint64_t rng;    /* backoff jitter state (host thread) */
    hk_options_t **opts;
    size_t nopts;
    hk_services_t *services;
    hk_metrics_t *metrics;

    /* health (src/core/hosthealth.c) */
    hk_health_t *health;
    double shutdown_delay_s;      /* Host:ShutdownDelaySeconds */
    unsigned heartbeat_missed;    /* Health:HeartbeatMissedIntervals */
    struct hk__health_monitor *monitor; /* live checks for the watchdog, inside run */
    atomic_int live_status;       /* last hk_health_status_t of the live checks */

    /* configuration reload (src/core/reload.c) */
    struct hk__config_watcher *watchers; /* on_config_change registrations */
    size_t nwatchers;
    struct hk__reload *reload;           /* file watches and debounce, inside run */
    atomic_bool reload_requested;
    int debounce_ms;
    bool reload_on_change; /* Host:ReloadConfigOnChange */
    bool watching;         /* hk__reload_start ran */

    uv_loop_t loop;
    uv_async_t wake;
    pthread_mutex_t wake_mu; /* guards wake_open against late service threads */
    bool wake_open;

    hk_token_t *started, *stopping, *stopped;
    hk_token_t *start_token, *stop_token;

    /* settings */
    double shutdown_timeout_s, startup_timeout_s;
    uint64_t startup_deadline_ns, shutdown_deadline_ns;
    atomic_bool start_grace_over; /* concurrent start: the wait after a start-up timeout is over */
    bool start_concurrently, stop_concurrently, suppress_status, handle_signals;
    int bg_behavior; /* 0 StopHost, 1 Ignore */
    char *environment, *content_root;

    atomic_bool stop_requested;
    atomic_bool startup_timed_out, shutdown_timed_out;
    host_phase_t phase; /* host thread only */
    int exit_code;      /* host thread only */
    bool ran, freed, loop_closed;

    hk__control_t ctl;

    /* systemd (src/systemd, driven from here and control.c) */
    hk__notify_t notify;
    bool under_systemd;
    uint64_t watchdog_usec;
    uv_timer_t watchdog;
    bool watchdog_on;
    struct hk__liveness { hk_liveness_cb cb; void *data; } *liveness;
    size_t nliveness;
    hk__listen_t listen;
    double extend_s;                 /* Systemd:ExtendTimeoutSeconds */
    atomic_int notify_phase;         /* 1 starting, 2 stopping, 0 otherwise (for control.c) */
    _Atomic uint64_t progress_ns;    /* last time a service started or stopped */
    char failure[256];               /* first failure, for STATUS=Failed: */
    int failure_errno;
};

/* service.c */
hk_service_t *hk__service_new(const hk_service_def_t *def);
void hk__service_free(hk_service_t *svc);
void hk__service_destroy_data(hk_service_t *svc);
void hk__service_clear_error(hk_service_t *svc, bool exec);
/* Marks this thread as svc's execute thread (for hk_service_fail). */
void hk__service_enter_exec(const hk_service_t *svc);
/* "message: strerror" for a failed callback (owned by svc until the next call). */
const char *hk__service_describe(hk_service_t *svc, bool exec, int rc, char *buf, size_t len);

/* supervise.c: restart policies, states, dependencies */
typedef struct hk__sup_hooks {
    uint64_t (*now_ns)(void *data); /* intensity window and state times; NULL: hk__now_ns */
    uint64_t (*random)(void *data); /* backoff jitter, uniform 64 bits; NULL: the host's PRNG */
    void *data;
} hk__sup_hooks_t;
/* Test hook: replaces the clock and the random source (NULL restores both).
 * Set it while no host runs. */
void hk__sup_set_hooks(const hk__sup_hooks_t *hooks);
uint64_t hk__sup_now_ns(void);
uint64_t hk__sup_random(uint64_t *state);
/* Full-jitter backoff for restart `attempt` (1-based): rnd scaled onto
 * [0, min(max_ms, initial_ms * 2^(attempt-1))]. Also returns the cap. */
uint64_t hk__backoff_ms(unsigned initial_ms, unsigned max_ms, unsigned attempt, uint64_t rnd,
                        uint64_t *ret_cap);
void hk__svc_set_state(hk_service_t *svc, hk_service_state_t st);
void hk__svc_set_error(hk_service_t *svc, int err, const char *text);
/* Reads Services:{Name}:Restart:* over the API's policy; errors are recorded in the store. */
void hk__sup_read_policy(hk_config_t *config, hk_service_t *svc);
/* Resolves names to indices and computes the start order. Returns 0, -ENOMEM,
 * or -EINVAL after calling err(data, message) for each problem. */
int hk__sup_resolve_deps(hk_service_t **svcs, size_t n, size_t **ret_order,
                         void (*err)(void *data, const char *msg), void *data);
/* Prepares the failure ring. Returns 0 or -ENOMEM. */
int hk__sup_prepare(hk_service_t *svc);
/* Records a failure at now; returns the number of failures within the window. */
size_t hk__sup_record_failure(hk_service_t *svc, uint64_t now);

/* control.c: the control thread owns signals, hk_host_stop delivery and deadlines. */
int hk__control_start(hk_host_t *host);
void hk__control_stop(hk_host_t *host);
void hk__control_set_deadline(hk_host_t *host, deadline_kind_t kind, double seconds);
void hk__control_post(hk__control_t *ctl, unsigned char msg);
enum { CTL_WAKE = 1, CTL_STOP = 2, CTL_QUIT = 3, CTL_RELOAD = 4, CTL_SIGNAL_BASE = 64 };

/* reload.c: configuration reload on the host thread */
int hk__reload_start(hk_host_t *host);
void hk__reload_stop(hk_host_t *host);
void hk__reload_now(hk_host_t *host, const char *why);
void hk__reload_free(hk_host_t *host);

/* systemd integration (src/core/sdhost.c) */
void hk__sd_starting(hk_host_t *host, size_t i, const hk_service_t *svc);
void hk__sd_started(hk_host_t *host);
void hk__sd_stopping(hk_host_t *host);
void hk__sd_stopping_service(hk_host_t *host, size_t i, const hk_service_t *svc);
void hk__sd_failed(hk_host_t *host);
void hk__sd_reloading(hk_host_t *host);
void hk__sd_reloaded(hk_host_t *host);
void hk__sd_watchdog_start(hk_host_t *host);
void hk__sd_watchdog_stop(hk_host_t *host);
void hk__sd_progress(hk_host_t *host);
/* Records the first failure (for STATUS=Failed: ... ERRNO=...). */
void hk__host_failure(hk_host_t *host, int err, const char *fmt, ...) HK_PRINTF(3, 4);

/* health integration (src/core/hosthealth.c) */
/* Adds the built-in checks (host, heartbeat:{service}) to the registry the
 * host is about to own; on failure adds none and returns -ENOMEM/-EEXIST
 * with *ret_name naming the check. */
int hk__health_add_builtins(hk_host_t *host, hk_health_t *health, hk_service_t **svcs, size_t n,
                            const char **ret_name);
/* Undoes hk__health_add_builtins (a build that fails after it). */
void hk__health_remove_builtins(hk_health_t *health, hk_service_t **svcs, size_t n);
/* Starts / stops running the live checks off the loop for the watchdog. */
void hk__health_monitor_start(hk_host_t *host);
void hk__health_monitor_stop(hk_host_t *host);
/* Execute of svc begins / ended (heartbeat interval counting). */
void hk__health_exec_begin(hk_service_t *svc);
void hk__health_exec_end(hk_service_t *svc);

/* hostmetrics.c: adds the collector of the built-in hostkit_* series to a
 * builder's registry; returns the slot (owned by the collector) the build
 * fills with the host, or NULL when out of memory. */
hk_host_t **hk__host_metrics_add(hk_metrics_t *metrics);

/* host.c, for control.c */
void hk__host_request_stop(hk_host_t *host);
void hk__host_wake(hk_host_t *host);
void hk__host_unref(hk_host_t *host);

/* Records a set-up error in the builder (the build then fails with exit code
 * 1), as hk_builder_add_service does; returns err. For other subsystems'
 * registration functions (src/jobs). */
int hk__builder_fail(hk_builder_t *builder, int err, const char *msg);

#endif
