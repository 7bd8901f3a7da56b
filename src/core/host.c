/*
 * The host builder and the host lifecycle (include/hostkit/host.h).
 * Depends on libuv, pthreads, src/common, src/config, src/log, and the
 * service and control parts of src/core.
 *
 * Lifecycle (host thread; each arrow names the function doing it):
 *
 *   BUILT --hk_host_run--> STARTING --start_services ok--> RUNNING
 *     |                       | failure / stop requested      | stop requested (signal,
 *     |                       v                               v  hk_host_stop, StopHost)
 *     |                    STOPPING <----------------------- uv_stop in on_wake
 *     |                       | stop_services: cancel stopping, [shutdown_delay: loop
 *     |                       |   runs Host:ShutdownDelaySeconds], cancel service tokens,
 *     |                       v   stop in reverse, wait for threads (deadline)
 *     +-- hk_host_free     DONE --teardown_loop, destroy_services--> run returns
 *
 * Invariants:
 *  - Only the host thread changes `phase`, `exit_code`, `started` flags and
 *    joins threads; other threads only set atomics and wake the loop.
 *  - A service thread holds a reference on the host; the host's memory is
 *    freed when the owner called hk_host_free and every thread has returned,
 *    so a thread abandoned at the shutdown deadline never touches freed memory.
 *  - Safe points (stop requests are honoured there during start-up) are
 *    before each service's start and after the last one.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_int.h"
#include "config/options_int.h"
#include "core/host_int.h"
#include "di/services_int.h"
#include "health/health_int.h"
#include "log/log.h"

extern char **environ;

#define EXIT_FAILED 1
#define EXIT_USAGE 64
#define EXIT_CONFIG 78

static const char *const bg_behaviors[] = {"StopHost", "Ignore"};
enum { BG_STOP_HOST = 0, BG_IGNORE = 1 };

struct hk_builder_s {
    hk_config_t *config;
    hk_log_t *log;
    char *prog, *version;        /* for --help and --version */
    char *environment, *content_root;
    hk_options_t **opts;
    size_t nopts;
    hk_services_t *services;
    hk_metrics_t *metrics; /* with the process collector; moves into the host */
    hk_host_t **metrics_host; /* the hostkit_* collector's host (set at build; owned by it) */
    hk_health_t *health;
    hk__listen_t listen; /* socket activation, read once at creation */
    hk_service_t **svcs;
    size_t nsvcs, cap;
    char **errors; /* registration errors */
    size_t nerrors, lost_errors;
    bool args_malformed;
    int exit_code;
    char *first_error;
};

/* ======================================================================== */
/* builder                                                                  */
/* ======================================================================== */

static int builder_error(hk_builder_t *b, int err, const char *fmt, ...) HK_PRINTF(3, 4);

/* dir + "/" + name, without doubling the slash when dir ends in one ("/"). */
static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    return hk__asprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* The content root as an absolute path: contentRoot if set, else the cwd. */
static char *resolve_content_root(const char *configured) {
    char cwd[PATH_MAX];
    if (configured && configured[0] == '/')
        return hk__strdup(configured);
    if (!getcwd(cwd, sizeof cwd))
        return hk__strdup(configured ? configured : ".");
    if (!configured || !strcmp(configured, "."))
        return hk__strdup(cwd);
    return path_join(cwd, configured);
}

/* Adds <content root>/name, optional and watched, named `name` in messages. */
static int add_app_json(hk_builder_t *b, const char *name) {
    char *path = path_join(b->content_root, name);
    if (!path)
        return -ENOMEM;
    int rc = hk__config_add_json_file(b->config, path, name, true, true);
    hk__free(path);
    return rc == -EINVAL ? 0 : rc; /* a bad file is recorded: the build reports it */
}

hk_builder_t *hk_builder_new(int argc, char **argv) {
    hk_builder_t *b = hk__calloc(1, sizeof *b);
    if (!b)
        return NULL;
    const char *prog = argc > 0 && argv && argv[0] ? argv[0] : "app";
    const char *slash = strrchr(prog, '/');
    b->prog = hk__strdup(slash ? slash + 1 : prog);
    if (!b->prog || hk_config_new(&b->config) < 0 || hk__log_new(&b->log) < 0 ||
        hk_services_new(&b->services) < 0 || hk_metrics_new(&b->metrics) < 0 ||
        hk_metrics_add_process_collector(b->metrics) < 0 ||
        !(b->metrics_host = hk__host_metrics_add(b->metrics)) ||
        hk_health_new(&b->health) < 0)
        goto fail;
    /* Host configuration first (environment, command line): it decides which files to read. */
    if (hk_config_add_env(b->config, environ) < 0)
        goto fail;
    int rc = hk_config_add_args(b->config, argc, argv);
    if (rc == -EINVAL)
        b->args_malformed = true;
    else if (rc < 0)
        goto fail;
    if (hk__listen_read(&b->listen) < 0)
        goto fail;
    const char *env = hk__config_get_host(b->config, "environment");
    b->environment = hk__strdup(env ? env : "Production");
    b->content_root = resolve_content_root(hk__config_get_host(b->config, "contentRoot"));
    if (!b->environment || !b->content_root)
        goto fail;
    if (!b->args_malformed) {
        char *env_file = hk__asprintf("appsettings.%s.json", b->environment);
        if (!env_file)
            goto fail;
        rc = add_app_json(b, "appsettings.json");
        if (rc == 0)
            rc = add_app_json(b, env_file);
        hk__free(env_file);
        if (rc < 0)
            goto fail;
    }
    return b;
fail:
    hk_builder_free(b);
    return NULL;
}

int hk_builder_add_json_file(hk_builder_t *b, const char *path, bool optional, bool reload_on_change) {
    if (!b || !path || !*path)
        return -EINVAL;
    char *full = path[0] == '/' ? hk__strdup(path) : path_join(b->content_root, path);
    if (!full)
        return -ENOMEM;
    int rc = hk__config_add_json_file(b->config, full, path, optional, reload_on_change);
    hk__free(full);
    return rc;
}

int hk_builder_add_options(hk_builder_t *b, const hk_options_def_t *def, hk_options_t **ret_opts) {
    if (!b || !def || !ret_opts)
        return -EINVAL;
    hk_options_t **no = hk__realloc(b->opts, (b->nopts + 1) * sizeof *no);
    if (!no)
        return builder_error(b, -ENOMEM, "out of memory registering options %s",
                             def->section ? def->section : "(null)");
    b->opts = no;
    hk_options_t *o = NULL;
    int rc = hk__options_new(def, &o);
    if (rc < 0)
        return builder_error(b, rc, "cannot register options for section %s: %s",
                             def->section ? def->section : "(null)", hk_strerror(rc));
    b->opts[b->nopts++] = o;
    *ret_opts = o;
    return 0;
}

int hk_builder_set_version(hk_builder_t *b, const char *version) {
    if (!b || !version)
        return -EINVAL;
    char *v = hk__strdup(version);
    if (!v)
        return -ENOMEM;
    hk__free(b->version);
    b->version = v;
    return 0;
}

static void free_services(hk_service_t **svcs, size_t n) {
    for (size_t i = n; i-- > 0;)
        hk__service_destroy_data(svcs[i]);
    for (size_t i = 0; i < n; i++)
        hk__service_free(svcs[i]);
}

void hk_builder_free(hk_builder_t *b) {
    if (!b)
        return;
    free_services(b->svcs, b->nsvcs);
    hk__free(b->svcs);
    hk_services_free(b->services);
    hk_metrics_free(b->metrics);
    hk_health_free(b->health);
    hk__listen_free(&b->listen);
    for (size_t i = 0; i < b->nerrors; i++)
        hk__free(b->errors[i]);
    hk__free(b->errors);
    hk__free(b->first_error);
    for (size_t i = 0; i < b->nopts; i++)
        hk__options_free(b->opts[i]);
    hk__free(b->opts);
    hk__free(b->prog);
    hk__free(b->version);
    hk__free(b->environment);
    hk__free(b->content_root);
    hk_config_free(b->config);
    hk__log_free(b->log);
    hk__free(b);
}

hk_config_t *hk_builder_config(hk_builder_t *b) { return b ? b->config : NULL; }
hk_services_t *hk_builder_services(hk_builder_t *b) { return b ? b->services : NULL; }
hk_metrics_t *hk_builder_metrics(hk_builder_t *b) { return b ? b->metrics : NULL; }
hk_health_t *hk_builder_health(hk_builder_t *b) { return b ? b->health : NULL; }
hk_log_t *hk_builder_log(hk_builder_t *b) { return b ? b->log : NULL; }
hk_logger_t *hk_builder_logger(hk_builder_t *b, const char *category) {
    return b ? hk_log_get(b->log, category) : NULL;
}

static int builder_error(hk_builder_t *b, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = hk__vasprintf(fmt, ap);
    va_end(ap);
    char **ne = hk__realloc(b->errors, (b->nerrors + 1) * sizeof *ne);
    if (ne)
        b->errors = ne;
    if (!msg || !ne) {
        hk__free(msg);
        b->lost_errors++; /* still fails the build: an error never passes silently */
        return err;
    }
    b->errors = ne;
    b->errors[b->nerrors++] = msg;
    return err;
}

int hk__builder_fail(hk_builder_t *b, int err, const char *msg) {
    return b ? builder_error(b, err, "%s", msg) : err;
}

static bool valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int hk_builder_add_service(hk_builder_t *b, const hk_service_def_t *def) {
    if (!b)
        return -EINVAL;
    if (!def || !def->name)
        return builder_error(b, -EINVAL, "a service was registered without a name");
    if (!valid_name(def->name))
        return builder_error(b, -EINVAL,
                             "invalid service name \"%s\": use 1-63 letters, digits, '.', '_' or '-'",
                             def->name);
    if (!def->start && !def->execute && !def->stop)
        return builder_error(b, -EINVAL, "service %s has no start, execute or stop callback",
                             def->name);
    if (def->heartbeat_ms && !def->execute)
        return builder_error(b, -EINVAL,
                             "service %s declares heartbeat_ms but has no execute callback",
                             def->name);
    for (size_t i = 0; i < b->nsvcs; i++)
        if (strcasecmp(b->svcs[i]->name, def->name) == 0)
            return builder_error(b, -EEXIST, "a service named %s is already registered",
                                 def->name);
    if (b->nsvcs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        hk_service_t **ns = hk__realloc(b->svcs, cap * sizeof *ns);
        if (!ns)
            return builder_error(b, -ENOMEM, "out of memory registering service %s", def->name);
        b->svcs = ns;
        b->cap = cap;
    }
    hk_service_t *svc = hk__service_new(def);
    if (!svc)
        return builder_error(b, -ENOMEM, "out of memory registering service %s", def->name);
    b->svcs[b->nsvcs++] = svc;
    return 0;
}

int hk_builder_add_background(hk_builder_t *b, const char *name, hk_service_execute_cb execute,
                              void *data, hk_destroy_cb destroy) {
    hk_service_def_t def = {.name = name, .execute = execute, .data = data, .destroy = destroy};
    if (b && !execute)
        return builder_error(b, -EINVAL, "background service %s has no execute callback",
                             name ? name : "(null)");
    return hk_builder_add_service(b, &def);
}

int hk_builder_add_hosted(hk_builder_t *b, const char *name, hk_service_start_cb start,
                          hk_service_stop_cb stop, void *data, hk_destroy_cb destroy) {
    hk_service_def_t def = {
        .name = name, .start = start, .stop = stop, .data = data, .destroy = destroy};
    return hk_builder_add_service(b, &def);
}

int hk_builder_exit_code(const hk_builder_t *b) { return b ? b->exit_code : EXIT_FAILED; }
const char *hk_builder_error(const hk_builder_t *b) { return b ? b->first_error : NULL; }

static void set_first_error(hk_builder_t *b, const char *msg) {
    if (!b->first_error)
        b->first_error = hk__strdup(msg);
}

typedef struct settings {
    double shutdown_timeout_s, startup_timeout_s;
    bool start_concurrently, stop_concurrently, suppress_status, handle_signals;
    int bg_behavior;
    int64_t debounce_ms;
    double extend_s;
    bool reload_on_change;
    double shutdown_delay_s, health_cache_s;
    int64_t heartbeat_missed;
} settings_t;

static void read_settings(hk_config_t *c, settings_t *s) {
    (void)hk_config_get_double(c, "Host:ShutdownTimeoutSeconds", 30, 0, 1e9, &s->shutdown_timeout_s);
    (void)hk_config_get_double(c, "Host:StartupTimeoutSeconds", 0, 0, 1e9, &s->startup_timeout_s);
    (void)hk_config_get_bool(c, "Host:ServicesStartConcurrently", false, &s->start_concurrently);
    (void)hk_config_get_bool(c, "Host:ServicesStopConcurrently", false, &s->stop_concurrently);
    (void)hk_config_get_bool(c, "Host:SuppressStatusMessages", false, &s->suppress_status);
    (void)hk_config_get_bool(c, "Host:HandleSignals", true, &s->handle_signals);
    (void)hk_config_get_enum(c, "Host:BackgroundServiceExceptionBehavior", bg_behaviors,
                             HK_ARRAY_SIZE(bg_behaviors), BG_STOP_HOST, &s->bg_behavior);
    (void)hk_config_get_int(c, "Host:ConfigReloadDebounceMs", 250, 0, 60000, &s->debounce_ms);
    (void)hk_config_get_bool(c, "Host:ReloadConfigOnChange", true, &s->reload_on_change);
    (void)hk_config_get_double(c, "Systemd:ExtendTimeoutSeconds", 0, 0, 86400, &s->extend_s);
    (void)hk_config_get_double(c, "Host:ShutdownDelaySeconds", 0, 0, 86400, &s->shutdown_delay_s);
    (void)hk_config_get_double(c, "Health:CacheSeconds", 1, 0, 86400, &s->health_cache_s);
    (void)hk_config_get_int(c, "Health:HeartbeatMissedIntervals", 3, 1, 1000000, &s->heartbeat_missed);
}

static void host_free_core(hk_host_t *h);

/* Configuration errors to report at build, each once (a value read by the
 * program and bound as an option would otherwise be reported twice). */
typedef struct errlist {
    char **msgs;
    size_t n;
    size_t lost; /* out of memory: counted, not kept */
} errlist_t;

static void errlist_add(void *data, const char *msg) {
    errlist_t *el = data;
    for (size_t i = 0; i < el->n; i++)
        if (!strcmp(el->msgs[i], msg))
            return;
    char **nm = hk__realloc(el->msgs, (el->n + 1) * sizeof *nm);
    char *copy = hk__strdup(msg);
    if (nm)
        el->msgs = nm;
    if (!nm || !copy) {
        hk__free(copy);
        el->lost++;
        return;
    }
    el->msgs[el->n++] = copy;
}

static void errlist_free(errlist_t *el) {
    for (size_t i = 0; i < el->n; i++)
        hk__free(el->msgs[i]);
    hk__free(el->msgs);
}

static void check_instance(hk_services_t *services, const hk_service_t *svc, errlist_t *errs) {
    if (!svc->instance_key)
        return;
    char msg[320];
    hk_handle_t h = hk_services_handle(services, svc->instance_key);
    if (h == HK_HANDLE_NONE)
        snprintf(msg, sizeof msg, "No service registered for \"%s\" (required by hosted service \"%s\")",
                 svc->instance_key, svc->name);
    else if (hk__services_lifetime(services, h) == HK_LIFETIME_SCOPED)
        snprintf(msg, sizeof msg, "Cannot consume scoped service \"%s\" from hosted service \"%s\"",
                 svc->instance_key, svc->name);
    else
        return;
    errlist_add(errs, msg);
}

static void log_unknown(void *data, const char *msg) { hk_log((hk_logger_t *)data, HK_LOG_WARN, "%s", msg); }

static void print_line(void *data, const char *line) { fprintf((FILE *)data, "%s\n", line); }

static void print_help(hk_builder_t *b, FILE *out) {
    fprintf(out, "Usage: %s [--Key=Value | --Key Value | /Key=Value | Key=Value]...\n", b->prog);
    for (size_t i = 0; i < b->nopts; i++) {
        fprintf(out, "\n%s options:\n", hk_options_def(b->opts[i])->section);
        hk__options_describe(b->opts[i], print_line, out);
    }
    fprintf(out,
            "\nHost options:\n"
            "  --environment <name>                              Production, Development, ... "
            "(default: Production; also HOSTKIT_ENVIRONMENT)\n"
            "  --contentRoot <path>                              where appsettings.json is read "
            "(default: the working directory)\n"
            "  --Logging:LogLevel:Default <level>                Trace, Debug, Information, Warning, "
            "Error, Critical or None (default: Information)\n"
            "  --Logging:LogLevel:<category> <level>             level for categories starting with "
            "<category>\n"
            "  --Host:ShutdownTimeoutSeconds <number>            time services get to stop (default: 30)\n"
            "  --Host:StartupTimeoutSeconds <number>             time services get to start (default: 0, "
            "none)\n"
            "  --Host:ServicesStartConcurrently <bool>           start services concurrently (default: "
            "false)\n"
            "  --Host:ServicesStopConcurrently <bool>            stop services concurrently (default: "
            "false)\n"
            "  --Host:BackgroundServiceExceptionBehavior <StopHost|Ignore>  what a failed background "
            "service does (default: StopHost)\n"
            "  --Host:SuppressStatusMessages <bool>              hide the lifetime messages (default: "
            "false)\n"
            "  --Host:HandleSignals <bool>                       stop on SIGINT/SIGTERM/SIGQUIT, reload on "
            "SIGHUP (default: true)\n"
            "  --Host:ConfigReloadDebounceMs <int>               wait after a file change before reloading "
            "(default: 250)\n"
            "  --Host:ReloadConfigOnChange <bool>                watch configuration files (default: true; "
            "SIGHUP reloads either way)\n"
            "  --Logging:Console:FormatterName <simple|systemd>  line format (default: systemd when "
            "stderr is the journal)\n"
            "  --Services:<name>:Restart:Policy <never|on-failure|always>  restart a failed background "
            "service (default: never; also BackoffInitialMs, BackoffMaxMs, MaxRestarts, WithinSeconds)\n"
            "  --Systemd:ExtendTimeoutSeconds <number>           ask systemd for more time in slow "
            "start/stop phases (default: 0, off)\n"
            "  --Host:ShutdownDelaySeconds <number>              keep serving after readiness drops, "
            "before services stop (default: 0)\n"
            "  --Health:CacheSeconds <number>                    reuse health check results (default: 1)\n"
            "  --Health:HeartbeatMissedIntervals <int>           missed heartbeats before a service is "
            "Unhealthy (default: 3)\n"
            "\nSwitches:\n"
            "  --help, -h        show this help and exit\n"
            "  --version         show the version and exit\n"
            "  --print-config    show every configuration key, its value and source, and exit\n"
            "\nEvery option can also come from appsettings.json, appsettings.<environment>.json in the "
            "content root,\nor an environment variable with __ for ':' (Worker__Count=5).\n");
}

static int build(hk_builder_t *b, hk_host_t **ret_host);

/* A failed build's errors are on their way to the sinks: the program may
 * exit right after, so they are written before it returns. */
int hk_builder_build(hk_builder_t *b, hk_host_t **ret_host) {
    int rc = build(b, ret_host);
    if (rc < 0 && b)
        hk_log_flush(b->log);
    return rc;
}

static int build(hk_builder_t *b, hk_host_t **ret_host) {
    if (!b || !ret_host)
        return -EINVAL;
    hk_logger_t *lg = hk_log_get(b->log, "hostkit.host");
    unsigned flags = hk__config_flags(b->config);

    /* Reserved switches come before everything, even a bad command line. */
    if (flags & HK__FLAG_HELP) {
        print_help(b, stdout);
        b->exit_code = 0;
        return -ECANCELED;
    }
    if (flags & HK__FLAG_VERSION) {
        if (b->version)
            printf("%s %s (hostkit %s)\n", b->prog, b->version, hk_version());
        else
            printf("%s (hostkit %s)\n", b->prog, hk_version());
        b->exit_code = 0;
        return -ECANCELED;
    }

    if (b->args_malformed) {
        const char *msg = hk_config_error(b->config, 0);
        hk_log(lg, HK_LOG_CRITICAL, "%s", msg ? msg : "malformed command line");
        set_first_error(b, msg ? msg : "malformed command line");
        b->exit_code = EXIT_USAGE;
        return -EINVAL;
    }

    /* The program's options first: their errors are listed first. */
    errlist_t errs = {0};
    for (size_t i = 0; i < b->nopts; i++) {
        int r = hk__options_bind(b->opts[i], b->config, errlist_add, &errs);
        if (r == -ENOMEM) {
            errlist_free(&errs);
            b->exit_code = EXIT_FAILED;
            return -ENOMEM;
        }
        hk__options_check_unknown(b->opts[i], b->config, log_unknown, lg);
    }

    /* The service registry and the services that take their instance from it. */
    int nbad = hk_services_validate(b->services, errlist_add, &errs);
    if (nbad == -ENOMEM) {
        errlist_free(&errs);
        b->exit_code = EXIT_FAILED;
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->nsvcs; i++)
        check_instance(b->services, b->svcs[i], &errs);

    /* Restart policies (configuration wins) and the dependency graph. */
    size_t *order = NULL;
    for (size_t i = 0; i < b->nsvcs; i++)
        hk__sup_read_policy(b->config, b->svcs[i]);
    int drc = hk__sup_resolve_deps(b->svcs, b->nsvcs, &order, errlist_add, &errs);
    for (size_t i = 0; i < b->nsvcs && drc != -ENOMEM; i++)
        if (hk__sup_prepare(b->svcs[i]) < 0)
            drc = -ENOMEM;
    if (drc == -ENOMEM) {
        hk__free(order);
        errlist_free(&errs);
        b->exit_code = EXIT_FAILED;
        return -ENOMEM;
    }

    settings_t s;
    read_settings(b->config, &s);
    int lrc = hk__log_configure(b->log, b->config);
    if (lrc == -ENOMEM) {
        hk__free(order);
        errlist_free(&errs);
        b->exit_code = EXIT_FAILED;
        return -ENOMEM;
    }
    const char *environment = hk__config_get_host(b->config, "environment");
    const char *content_root = hk__config_get_host(b->config, "contentRoot");
    if (!environment)
        environment = "Production";

    /* Every configuration error recorded (files, getters the program and the
     * host settings ran), after every problem binding the program's options. */
    for (size_t i = 0; i < hk_config_error_count(b->config); i++)
        errlist_add(&errs, hk_config_error(b->config, i));

    if (flags & HK__FLAG_PRINT_CONFIG) {
        hk__config_print(b->config, stdout);
        fflush(stdout);
    }

    size_t nconf = errs.n + errs.lost;
    for (size_t i = 0; i < errs.n; i++) {
        hk_log(lg, HK_LOG_CRITICAL, "Invalid configuration: %s", errs.msgs[i]);
        set_first_error(b, errs.msgs[i]);
    }
    if (errs.lost)
        hk_log(lg, HK_LOG_CRITICAL, "Invalid configuration: %zu more errors (out of memory listing them)",
               errs.lost);
    errlist_free(&errs);
    for (size_t i = 0; i < b->nerrors; i++) {
        hk_log(lg, HK_LOG_CRITICAL, "Invalid host setup: %s", b->errors[i]);
        set_first_error(b, b->errors[i]);
    }
    if (b->lost_errors)
        hk_log(lg, HK_LOG_CRITICAL, "Invalid host setup: %zu more errors (out of memory recording them)",
               b->lost_errors);
    if (nconf > 0 || b->nerrors > 0 || b->lost_errors > 0) {
        hk__free(order);
        b->exit_code = nconf > 0 ? EXIT_CONFIG : EXIT_FAILED;
        return -EINVAL;
    }
    if (flags & HK__FLAG_PRINT_CONFIG) {
        hk__free(order);
        b->exit_code = 0;
        return -ECANCELED;
    }

    hk_host_t *h = hk__calloc(1, sizeof *h);
    if (!h)
        goto oom;
    atomic_init(&h->refs, 1);
    h->notify.fd = -1;
    pthread_mutex_init(&h->wake_mu, NULL);
    h->ctl.rfd = h->ctl.wfd = -1;
    atomic_init(&h->ctl.wfd_pub, -1);
    pthread_mutex_init(&h->ctl.mu, NULL);
    if (hk_token_new(&h->started) < 0 || hk_token_new(&h->stopping) < 0 ||
        hk_token_new(&h->stopped) < 0 || hk_token_new(&h->start_token) < 0 ||
        hk_token_new(&h->stop_token) < 0)
        goto oom;
    h->environment = hk__strdup(environment);
    h->content_root = resolve_content_root(content_root);
    if (!h->environment || !h->content_root)
        goto oom;
    const char *hname = NULL; /* before the loop exists: the failure paths below free no loop */
    int rc = hk__health_add_builtins(h, b->health, b->svcs, b->nsvcs, &hname);
    if (rc == -EEXIST) {
        hk_log(lg, HK_LOG_CRITICAL, "Invalid host setup: the health check name %s is reserved", hname);
        set_first_error(b, "a health check uses a reserved name");
        host_free_core(h);
        hk__free(order);
        b->exit_code = EXIT_FAILED;
        return -EINVAL;
    }
    if (rc < 0)
        goto oom;
    rc = uv_loop_init(&h->loop);
    if (rc < 0) {
        hk_log(lg, HK_LOG_CRITICAL, "Cannot create the event loop: %s", uv_strerror(rc));
        hk__health_remove_builtins(b->health, b->svcs, b->nsvcs);
        host_free_core(h);
        hk__free(order);
        b->exit_code = EXIT_FAILED;
        return rc;
    }
    h->loop.data = h;
    h->shutdown_timeout_s = s.shutdown_timeout_s;
    h->startup_timeout_s = s.startup_timeout_s;
    h->start_concurrently = s.start_concurrently;
    h->stop_concurrently = s.stop_concurrently;
    h->suppress_status = s.suppress_status;
    h->handle_signals = s.handle_signals;
    h->bg_behavior = s.bg_behavior;
    h->debounce_ms = (int)s.debounce_ms;
    h->reload_on_change = s.reload_on_change;
    h->extend_s = s.extend_s;
    const char *nerr = NULL;
    int nrc = hk__notify_open(&h->notify, &nerr);
    if (nrc < 0)
        hk_log(lg, HK_LOG_WARN, "Not notifying systemd: %s: %s", nerr, hk_strerror(nrc));
    h->watchdog_usec = hk__watchdog_usec();
    h->under_systemd = hk_under_systemd();
    if (b->listen.warning)
        hk_log(lg, HK_LOG_WARN, "%s", b->listen.warning);

    /* Move everything: nothing below can fail. */
    h->config = b->config;
    h->log = b->log;
    h->svcs = b->svcs;
    h->nsvcs = b->nsvcs;
    h->order = order;
    for (size_t i = 0; i < h->nsvcs; i++)
        h->has_deps = h->has_deps || h->svcs[i]->ndeps > 0;
    h->opts = b->opts;
    h->nopts = b->nopts;
    b->opts = NULL;
    b->nopts = 0;
    h->services = b->services;
    b->services = NULL;
    *b->metrics_host = h; /* the built-in hostkit_* series now describe this host */
    h->metrics = b->metrics;
    b->metrics = NULL;
    h->health = b->health;
    b->health = NULL;
    (void)hk_health_set_cache_ms(h->health, (uint64_t)(s.health_cache_s * 1e3));
    h->shutdown_delay_s = s.shutdown_delay_s;
    h->heartbeat_missed = (unsigned)s.heartbeat_missed;
    h->listen = b->listen;
    memset(&b->listen, 0, sizeof b->listen);
    b->config = NULL;
    b->log = NULL;
    b->svcs = NULL;
    b->nsvcs = b->cap = 0;
    h->lg_host = hk_log_get(h->log, "hostkit.host");
    h->lg_lifetime = hk_log_get(h->log, "hostkit.lifetime");
    for (size_t i = 0; i < h->nsvcs; i++)
        h->svcs[i]->host = h;
    h->phase = PHASE_BUILT;
    *ret_host = h;
    return 0;
oom:
    hk__free(order);
    hk_log(lg, HK_LOG_CRITICAL, "Out of memory building the host");
    if (h) {
        h->loop.data = NULL; /* loop not initialised */
        host_free_core(h);
    }
    b->exit_code = EXIT_FAILED;
    return -ENOMEM;
}

int hk_builder_run(hk_builder_t *b) {
    if (!b)
        return EXIT_FAILED;
    hk_host_t *h = NULL;
    if (hk_builder_build(b, &h) < 0) {
        int code = hk_builder_exit_code(b);
        hk_builder_free(b);
        return code;
    }
    hk_builder_free(b);
    int code = hk_host_run(h);
    hk_host_free(h);
    return code;
}

/* ======================================================================== */
/* host: accessors, references, stop requests                               */
/* ======================================================================== */

hk_token_t *hk_host_started(hk_host_t *h) { return h ? h->started : NULL; }
hk_token_t *hk_host_stopping(hk_host_t *h) { return h ? h->stopping : NULL; }
hk_token_t *hk_host_stopped(hk_host_t *h) { return h ? h->stopped : NULL; }
hk_config_t *hk_host_config(hk_host_t *h) { return h ? h->config : NULL; }
hk_services_t *hk_host_services(hk_host_t *h) { return h ? h->services : NULL; }
hk_metrics_t *hk_host_metrics(hk_host_t *h) { return h ? h->metrics : NULL; }
hk_health_t *hk_host_health(hk_host_t *h) { return h ? h->health : NULL; }
hk_log_t *hk_host_log(hk_host_t *h) { return h ? h->log : NULL; }
hk_logger_t *hk_host_logger(hk_host_t *h, const char *category) {
    return h ? hk_log_get(h->log, category) : NULL;
}
struct uv_loop_s *hk_host_loop(hk_host_t *h) { return h ? &h->loop : NULL; }
const char *hk_host_environment(const hk_host_t *h) { return h ? h->environment : NULL; }
const char *hk_host_content_root(const hk_host_t *h) { return h ? h->content_root : NULL; }

static void host_free_core(hk_host_t *h) {
    /* Every thread has returned: the data of services abandoned at a
     * shutdown timeout can be released now (others were released in run). */
    for (size_t i = h->nsvcs; i-- > 0;)
        hk__service_destroy_data(h->svcs[i]);
    /* Health checks may use singletons: they go first. */
    hk_health_free(h->health);
    /* Restart scopes, then singletons: both outlive every service (which may have used them). */
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_scope_free(h->svcs[i]->scope);
        h->svcs[i]->scope = NULL;
    }
    hk_services_free(h->services);
    hk_metrics_free(h->metrics); /* after the services: they may hold metric handles */
    for (size_t i = 0; i < h->nsvcs; i++)
        hk__service_free(h->svcs[i]);
    hk__free(h->svcs);
    hk__free(h->order);
    for (size_t i = 0; i < h->nopts; i++)
        hk__options_free(h->opts[i]);
    hk__free(h->opts);
    for (size_t i = 0; i < h->nwatchers; i++)
        hk__free(h->watchers[i].section);
    hk__free(h->watchers);
    hk_token_free(h->started);
    hk_token_free(h->stopping);
    hk_token_free(h->stopped);
    hk_token_free(h->start_token);
    hk_token_free(h->stop_token);
    hk__free(h->environment);
    hk__free(h->content_root);
    hk__notify_close(&h->notify);
    hk__listen_free(&h->listen);
    hk__free(h->liveness);
    hk_config_free(h->config);
    hk__log_free(h->log);
    pthread_mutex_destroy(&h->ctl.mu);
    pthread_mutex_destroy(&h->wake_mu);
    hk__free(h);
}

void hk__host_unref(hk_host_t *h) {
    if (atomic_fetch_sub(&h->refs, 1) == 1)
        host_free_core(h);
}

void hk__host_wake(hk_host_t *h) {
    pthread_mutex_lock(&h->wake_mu);
    if (h->wake_open)
        uv_async_send(&h->wake);
    pthread_mutex_unlock(&h->wake_mu);
}

void hk__host_request_stop(hk_host_t *h) {
    atomic_store(&h->stop_requested, true);
    hk__health_invalidate(h->health); /* readiness: no cached Healthy from now on */
    hk_token_cancel(h->start_token);
    hk__host_wake(h);
}

void hk_host_stop(hk_host_t *h) {
    if (!h)
        return;
    int saved = errno; /* async-signal-safe: a signal handler's errno must survive */
    atomic_store(&h->stop_requested, true);
    hk__control_post(&h->ctl, CTL_STOP);
    errno = saved;
}

static bool stop_requested(hk_host_t *h) { return atomic_load(&h->stop_requested); }

/* ======================================================================== */
/* service threads                                                          */
/* ======================================================================== */

static void *task_main(void *arg) {
    task_t *t = arg;
    hk_service_t *svc = t->svc;
    hk_host_t *h = svc->host;
    int rc;
    hk__service_clear_error(svc, t->kind == TASK_EXECUTE);
    hk__service_enter_exec(t->kind == TASK_EXECUTE ? svc : NULL);
    switch (t->kind) {
    case TASK_EXECUTE:
        hk__health_exec_begin(svc);
        rc = svc->def.execute(svc, svc->stopping);
        hk__health_exec_end(svc);
        break;
    case TASK_START: rc = svc->def.start(svc, h->start_token); break;
    default: rc = svc->def.stop(svc, h->stop_token); break;
    }
    t->rc = rc;
    t->done_ns = hk__now_ns();
    hk__sd_progress(h); /* a concurrent start/stop or a background service finished */
    atomic_store_explicit(&t->done, true, memory_order_release);
    hk__host_wake(h);
    hk__host_unref(h);
    return NULL;
}

static int task_launch(hk_host_t *h, task_t *t, task_kind_t kind) {
    t->kind = kind;
    t->launched = false; /* a failed launch must not look like the task before it */
    t->joined = false;
    t->rc = 0;
    atomic_store(&t->done, false);
    /* Service threads never take the host's signals: they go to the host and
     * control threads, so services are not interrupted by EINTR. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    atomic_fetch_add(&h->refs, 1);
    int rc = pthread_create(&t->thread, NULL, task_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_fetch_sub(&h->refs, 1);
        return -rc;
    }
    t->launched = true;
    return 0;
}

static bool task_running(const task_t *t) { return t->launched && !t->joined; }

/* Joins the task if it finished. Returns true if it is (now) joined. */
static bool task_reap(task_t *t) {
    if (!task_running(t))
        return t->launched;
    if (!atomic_load_explicit(&t->done, memory_order_acquire))
        return false;
    pthread_join(t->thread, NULL);
    t->joined = true;
    return true;
}

/* ======================================================================== */
/* background service results                                               */
/* ======================================================================== */

static void report_exec(hk_host_t *h, hk_service_t *svc, int rc) {
    char why[512];
    bool cancelled = hk_token_is_cancelled(svc->stopping);
    /* Threads reaped while stopping, or in the teardown after a shutdown
     * timeout (PHASE_DONE), were stopped, not "completed". */
    bool stopping = h->phase >= PHASE_STOPPING;
    if (rc == 0 || (rc == -ECANCELED && cancelled)) {
        if (stopping)
            hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
        else
            hk_log(h->lg_host, HK_LOG_INFO, "Background service %s completed", svc->name);
        if (!svc->def.stop || !stopping)
            hk__svc_set_state(svc, HK_SERVICE_STOPPED);
        return;
    }
    hk__service_describe(svc, true, rc, why, sizeof why);
    hk__svc_set_error(svc, rc, why);
    hk__svc_set_state(svc, HK_SERVICE_FAILED);
    if (h->bg_behavior == BG_IGNORE) {
        hk_log(h->lg_host, HK_LOG_ERROR,
               "Background service %s failed: %s; the host keeps running "
               "(Host:BackgroundServiceExceptionBehavior=Ignore)",
               svc->name, why);
        return;
    }
    hk_log(h->lg_host, HK_LOG_ERROR, "Background service %s failed: %s", svc->name, why);
    hk__host_failure(h, rc, "background service %s failed: %s", svc->name, why);
    h->exit_code = EXIT_FAILED;
    if (!stopping)
        hk__host_request_stop(h);
}

static void on_exec_exit(hk_host_t *h, hk_service_t *svc, int rc);

/* Joins every finished background thread and reports its result. */
static void reap_exec(hk_host_t *h) {
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[i];
        if (task_running(&svc->exec) && task_reap(&svc->exec))
            on_exec_exit(h, svc, svc->exec.rc);
    }
}

static void on_wake(uv_async_t *async) {
    hk_host_t *h = async->data;
    reap_exec(h);
    if (h->phase == PHASE_RUNNING && atomic_exchange(&h->reload_requested, false))
        hk__reload_now(h, "on request");
    if (h->phase == PHASE_RUNNING && stop_requested(h))
        uv_stop(&h->loop);
}

/* Lets the loop process what is pending (wake-ups, loop services' callbacks). */
static void pump(hk_host_t *h) { uv_run(&h->loop, UV_RUN_NOWAIT); }

/* ======================================================================== */
/* start                                                                    */
/* ======================================================================== */

static bool launch_exec(hk_host_t *h, hk_service_t *svc) {
    if (!svc->def.execute)
        return true;
    int rc = task_launch(h, &svc->exec, TASK_EXECUTE);
    if (rc < 0) {
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Service %s failed to start: cannot create its thread: %s",
               svc->name, hk_strerror(rc));
        hk__host_failure(h, rc, "service %s failed to start: cannot create its thread", svc->name);
        hk__svc_set_error(svc, rc, "cannot create its thread");
        hk__svc_set_state(svc, HK_SERVICE_FAILED);
        h->exit_code = EXIT_FAILED;
        return false;
    }
    return true;
}

static void log_start_timeout(hk_host_t *h, const char *what, const char *names) {
    char secs[32];
    hk__fmt_seconds(secs, sizeof secs, h->startup_timeout_s);
    hk_log(h->lg_host, HK_LOG_CRITICAL, "Start-up timed out after %s %s %s", secs, what, names);
    hk__host_failure(h, -ETIMEDOUT, "start-up timed out %s %s", what, names);
    h->exit_code = EXIT_FAILED;
}

/* A stop requested during start-up: not a failure. */
static bool start_abort_requested(hk_host_t *h) {
    if (!stop_requested(h))
        return false;
    hk_log(h->lg_host, HK_LOG_INFO, "Stop requested during start-up; stopping what has started");
    return true;
}

static bool start_failed(hk_host_t *h, hk_service_t *svc, int rc) {
    char why[512];
    if (rc == -ECANCELED && stop_requested(h)) {
        hk__svc_set_state(svc, HK_SERVICE_STOPPED);
        return start_abort_requested(h);
    }
    hk_log(h->lg_host, HK_LOG_CRITICAL, "Service %s failed to start: %s", svc->name,
           hk__service_describe(svc, false, rc, why, sizeof why));
    hk__svc_set_error(svc, rc, why);
    hk__svc_set_state(svc, HK_SERVICE_FAILED);
    hk__host_failure(h, rc, "service %s failed to start: %s", svc->name, why);
    h->exit_code = EXIT_FAILED;
    return true;
}

/* Resolves def.instance from the registry's root scope. Logs and fails start-up on error. */
static bool resolve_instance(hk_host_t *h, hk_service_t *svc) {
    if (!svc->instance_key || svc->resolved)
        return true;
    int rc = hk_scope_get(hk_services_root(h->services), svc->instance_key, &svc->instance);
    if (rc < 0) {
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Service %s failed to start: %s", svc->name,
               hk_services_last_error());
        hk__host_failure(h, rc, "service %s failed to start: %s", svc->name, hk_services_last_error());
        h->exit_code = EXIT_FAILED;
        return false;
    }
    svc->resolved = true;
    return true;
}

static bool start_sequential(hk_host_t *h) {
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[h->order[i]];
        pump(h);
        if (start_abort_requested(h))
            return false;
        hk_log(h->lg_host, HK_LOG_DEBUG, "Starting service %s", svc->name);
        hk__sd_starting(h, i, svc);
        hk__svc_set_state(svc, HK_SERVICE_STARTING);
        if (!resolve_instance(h, svc))
            return false;
        if (svc->def.start) {
            hk__service_clear_error(svc, false);
            int rc = svc->def.start(svc, h->start_token);
            if (atomic_load(&h->startup_timed_out)) {
                svc->started = rc == 0; /* so that the rollback stops it */
                log_start_timeout(h, "while starting service", svc->name);
                return false;
            }
            if (rc < 0) {
                start_failed(h, svc, rc);
                return false;
            }
        }
        svc->started = true; /* its start succeeded: a rollback must stop it */
        if (!launch_exec(h, svc))
            return false;
        hk__svc_set_state(svc, HK_SERVICE_RUNNING);
        hk__sd_progress(h);
        hk_log(h->lg_host, HK_LOG_DEBUG, "Started service %s", svc->name);
    }
    return true;
}

/* Appends "a, b" names of services whose phase (or exec) task is still running. */
static void running_names(hk_host_t *h, bool exec, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->nsvcs && off + 1 < len; i++) {
        task_t *t = exec ? &h->svcs[i]->exec : &h->svcs[i]->phase;
        if (task_running(t)) {
            int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", h->svcs[i]->name);
            if (n > 0)
                off += (size_t)n;
        }
    }
}

/* Waits (running the loop) until no phase task runs or the flag is set. */
static void wait_phase_tasks(hk_host_t *h, atomic_bool *timed_out) {
    for (;;) {
        bool any = false;
        for (size_t i = 0; i < h->nsvcs; i++)
            if (task_running(&h->svcs[i]->phase) && !task_reap(&h->svcs[i]->phase))
                any = true;
        if (!any || atomic_load(timed_out))
            return;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
}

static bool start_concurrent(hk_host_t *h) {
    pump(h);
    if (start_abort_requested(h))
        return false;
    for (size_t i = 0; i < h->nsvcs; i++) /* on the host thread, before any start */
        if (!resolve_instance(h, h->svcs[i]))
            return false;
    bool ok = true, halt = false;
    /* A service starts once every service it depends on started (without
     * dependencies: all at once); none starts after a failure. */
    enum { CS_PENDING, CS_RUNNING, CS_OK, CS_FAILED };
    for (size_t i = 0; i < h->nsvcs; i++)
        h->svcs[i]->cstate = CS_PENDING;
    for (;;) {
        bool launched = false, running = false;
        for (size_t k = 0; k < h->nsvcs && !halt && !atomic_load(&h->startup_timed_out); k++) {
            hk_service_t *svc = h->svcs[h->order[k]];
            if (svc->cstate != CS_PENDING || (h->has_deps && stop_requested(h)))
                continue;
            bool ready = true;
            for (size_t d = 0; d < svc->ndeps && ready; d++)
                ready = h->svcs[svc->deps[d]]->cstate == CS_OK;
            if (!ready)
                continue;
            hk_log(h->lg_host, HK_LOG_DEBUG, "Starting service %s", svc->name);
            hk__sd_starting(h, k, svc);
            hk__svc_set_state(svc, HK_SERVICE_STARTING);
            svc->cstate = CS_OK;
            launched = true;
            if (!svc->def.start)
                continue;
            int rc = task_launch(h, &svc->phase, TASK_START);
            svc->cstate = rc < 0 ? CS_FAILED : CS_RUNNING;
            if (rc < 0) {
                svc->phase.rc = rc;
                svc->phase.launched = false;
                ok = false;
                halt = true;
                start_failed(h, svc, rc);
            }
        }
        for (size_t i = 0; i < h->nsvcs; i++) {
            hk_service_t *svc = h->svcs[i];
            if (svc->cstate != CS_RUNNING)
                continue;
            if (task_reap(&svc->phase)) {
                svc->cstate = svc->phase.rc == 0 ? CS_OK : CS_FAILED;
                halt = halt || svc->phase.rc != 0;
                launched = launched || svc->phase.rc == 0; /* may make others ready */
            } else {
                running = true;
            }
        }
        if (launched)
            continue;
        if (!running || atomic_load(&h->startup_timed_out))
            break;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    if (atomic_load(&h->startup_timed_out)) {
        /* Their tokens are cancelled: give the starts still running up to the
         * shutdown timeout to return, so that those that return 0 are counted
         * as started and stopped by the rollback, not abandoned. */
        hk__control_set_deadline(h, DEADLINE_START_GRACE, h->shutdown_timeout_s);
        wait_phase_tasks(h, &h->start_grace_over);
        hk__control_set_deadline(h, DEADLINE_NONE, -1);
        /* Those whose start had not returned by the deadline, even if they
         * returned once their token was cancelled. */
        char names[1024] = "";
        size_t off = 0;
        for (size_t i = 0; i < h->nsvcs && off + 1 < sizeof names; i++) {
            task_t *t = &h->svcs[i]->phase;
            if (t->launched && (!atomic_load(&t->done) || t->done_ns >= h->startup_deadline_ns)) {
                int n = snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "",
                                 h->svcs[i]->name);
                if (n > 0)
                    off += (size_t)n;
            }
        }
        log_start_timeout(h, "while starting", names[0] ? names : "(none)");
        ok = false;
    }
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[i];
        if (!svc->def.start || !svc->phase.joined)
            continue;
        if (svc->phase.rc == 0)
            svc->started = true; /* rollback stops it if another failed */
        else if (ok || !atomic_load(&h->startup_timed_out))
            ok = !start_failed(h, svc, svc->phase.rc) && ok;
    }
    if (!ok || start_abort_requested(h))
        return false;
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[h->order[i]];
        svc->started = true; /* its start succeeded: a rollback must stop it */
        if (!launch_exec(h, svc))
            return false;
        hk__svc_set_state(svc, HK_SERVICE_RUNNING);
        hk__sd_progress(h);
        hk_log(h->lg_host, HK_LOG_DEBUG, "Started service %s", svc->name);
    }
    return true;
}

static bool start_services(hk_host_t *h) {
    if (h->startup_timeout_s > 0) {
        h->startup_deadline_ns = hk__now_ns() + (uint64_t)(h->startup_timeout_s * 1e9);
        hk__control_set_deadline(h, DEADLINE_STARTUP, h->startup_timeout_s);
    }
    bool ok = h->start_concurrently ? start_concurrent(h) : start_sequential(h);
    if (ok) {
        pump(h);
        ok = !start_abort_requested(h);
    }
    if (h->startup_timeout_s > 0)
        hk__control_set_deadline(h, DEADLINE_NONE, -1);
    return ok;
}

/* ======================================================================== */
/* supervision: restarts, backoff, intensity, rest_for_one (host thread)    */
/* ======================================================================== */
/*
 * A background service's execute returned while the host runs (on_exec_exit):
 *
 *   RUNNING --HK_SERVICE_DONE, 0 (never/on-failure)--> STOPPED
 *      |    --failure, policy never--> FAILED (Host:BackgroundServiceExceptionBehavior)
 *      |    --HK_SERVICE_STOP_HOST--> STOPPED, host stop requested
 *      +--restart due (supervise_failure)--> BACKING_OFF --on_backoff, try_restarts,
 *         |  dependents stopped first           restart_service--> STARTING --> RUNNING
 *         +--more than MaxRestarts in WithinSeconds--> FAILED, host stops with 1
 *
 * Dependents (transitively) of a restarting service are "held": stopped in
 * reverse start order (hosted: stop; background: token cancelled, thread
 * joined as it returns), BACKING_OFF while they wait, restarted in start
 * order once it runs again (restart_held). The service restarts only once
 * every held dependent's thread has returned.
 */

/* Marks the services that depend on svc, directly or not (start order is topological). */
static void mark_dependents(hk_host_t *h, hk_service_t *root) {
    for (size_t i = 0; i < h->nsvcs; i++)
        h->svcs[i]->mark = false;
    root->mark = true;
    for (size_t k = 0; k < h->nsvcs; k++) {
        hk_service_t *svc = h->svcs[h->order[k]];
        for (size_t d = 0; d < svc->ndeps && !svc->mark; d++)
            svc->mark = h->svcs[svc->deps[d]]->mark;
    }
    root->mark = false;
}

/* Stops svc for a restart (its own, or a dependency's): stop callback, token. */
static void stop_for_restart(hk_host_t *h, hk_service_t *svc) {
    if (!svc->started)
        return;
    hk__svc_set_state(svc, HK_SERVICE_STOPPING);
    if (task_running(&svc->exec))
        hk_token_cancel(svc->stopping);
    if (svc->def.stop) {
        hk__service_clear_error(svc, false);
        int rc = svc->def.stop(svc, h->stop_token);
        if (rc < 0) {
            char why[512];
            hk__service_describe(svc, false, rc, why, sizeof why);
            hk_log(h->lg_host, HK_LOG_WARN, "Service %s failed to stop before its restart: %s",
                   svc->name, why);
            hk__svc_set_error(svc, rc, why);
        }
    }
    svc->started = false;
    if (!task_running(&svc->exec))
        hk__svc_set_state(svc, HK_SERVICE_BACKING_OFF);
}

/* rest_for_one: stops the started dependents of svc in reverse start order. */
static void hold_dependents(hk_host_t *h, hk_service_t *svc) {
    mark_dependents(h, svc);
    for (size_t k = h->nsvcs; k-- > 0;) {
        hk_service_t *d = h->svcs[h->order[k]];
        if (!d->mark)
            continue;
        if (d->restart_pending) { /* its own restart waits for its dependency's now */
            uv_timer_stop(&d->backoff);
            d->restart_pending = false;
            d->held = true;
            continue;
        }
        if (!d->started || d->held || d->state == HK_SERVICE_STOPPED || d->state == HK_SERVICE_FAILED)
            continue; /* not running (a completed background service stays completed) */
        hk_log(h->lg_host, HK_LOG_INFO, "Stopping service %s: it depends on %s, which restarts",
               d->name, svc->name);
        d->held = true;
        d->stop_pending = true;
    }
}

/* Stops, in reverse start order, each service waiting to be stopped for a
 * restart whose dependents are down (stop returned, execute joined). Called
 * again whenever a held service's thread returns. */
static void advance_stops(hk_host_t *h) {
    for (size_t k = h->nsvcs; k-- > 0;) {
        hk_service_t *svc = h->svcs[h->order[k]];
        if (!svc->stop_pending)
            continue;
        bool ready = true;
        for (size_t j = 0; j < h->nsvcs && ready; j++) {
            hk_service_t *o = h->svcs[j];
            for (size_t d = 0; d < o->ndeps && ready; d++)
                if (h->svcs[o->deps[d]] == svc && (o->stop_pending || task_running(&o->exec)))
                    ready = false;
        }
        if (!ready)
            continue;
        svc->stop_pending = false;
        stop_for_restart(h, svc);
    }
}

static void give_up(hk_host_t *h, hk_service_t *svc, int rc, const char *why, size_t n) {
    if (svc->restart.policy == HK_RESTART_NEVER) {
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Service %s failed to restart: %s", svc->name, why);
        hk__host_failure(h, rc, "service %s failed to restart: %s", svc->name, why);
    } else {
        hk_log(h->lg_host, HK_LOG_ERROR, "Service %s failed: %s", svc->name, why);
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Service %s failed %zu times in %us; giving up", svc->name,
               n, svc->restart.within_seconds);
        hk__host_failure(h, rc < 0 ? rc : -EIO, "service %s failed %zu times in %us; giving up", svc->name, n,
                         svc->restart.within_seconds);
    }
    hk__svc_set_state(svc, HK_SERVICE_FAILED);
    h->exit_code = EXIT_FAILED;
    hk__host_request_stop(h);
}

static void on_backoff(uv_timer_t *timer);

/* A supervised failure: give up, or stop svc and its dependents and schedule the restart. */
static void supervise_failure(hk_host_t *h, hk_service_t *svc, int rc, const char *why) {
    hk__svc_set_error(svc, rc, why);
    size_t n = svc->restart.policy == HK_RESTART_NEVER
                   ? 0
                   : hk__sup_record_failure(svc, hk__sup_now_ns());
    if (svc->restart.policy == HK_RESTART_NEVER || n > svc->restart.max_restarts) {
        give_up(h, svc, rc, why, n);
        return;
    }
    uint64_t cap = 0;
    uint64_t delay = hk__backoff_ms(svc->restart.backoff_initial_ms, svc->restart.backoff_max_ms,
                                    (unsigned)n, hk__sup_random(&h->rng), &cap);
    pthread_mutex_lock(&svc->state_mu);
    unsigned attempt = ++svc->restarts;
    pthread_mutex_unlock(&svc->state_mu);
    hk_log(h->lg_host, HK_LOG_WARN,
           "Service %s failed: %s; restarting in %llu ms (attempt %u, backoff up to %llu ms)", svc->name,
           why, (unsigned long long)delay, attempt, (unsigned long long)cap);
    hold_dependents(h, svc);
    svc->stop_pending = svc->started;
    hk__svc_set_state(svc, HK_SERVICE_BACKING_OFF);
    advance_stops(h);
    svc->restart_pending = true;
    uv_timer_start(&svc->backoff, on_backoff, delay, 0);
}

/* Fresh token and scope, start, execute. False (and the failure handled) on error. */
static bool restart_service(hk_host_t *h, hk_service_t *svc) {
    char why[512];
    int rc = 0;
    hk__svc_set_state(svc, HK_SERVICE_STARTING);
    if (svc->def.execute) {
        hk_token_t *t = NULL;
        if ((rc = hk_token_new(&t)) < 0) {
            snprintf(why, sizeof why, "out of memory creating its stopping token");
            goto fail;
        }
        hk_token_free(svc->stopping); /* its thread has been joined */
        svc->stopping = t;
    }
    hk_scope_free(svc->scope); /* the previous run's scope */
    svc->scope = NULL;
    if (svc->instance_key) {
        hk_scope_t *scope = NULL;
        if ((rc = hk_scope_new(h->services, &scope)) < 0) {
            snprintf(why, sizeof why, "out of memory creating its scope");
            goto fail;
        }
        if ((rc = hk_scope_get(scope, svc->instance_key, &svc->instance)) < 0) {
            snprintf(why, sizeof why, "%s", hk_services_last_error());
            hk_scope_free(scope);
            goto fail;
        }
        svc->scope = scope;
    }
    if (svc->def.start) {
        hk__service_clear_error(svc, false);
        rc = svc->def.start(svc, h->start_token);
        if (rc < 0) {
            hk__service_describe(svc, false, rc, why, sizeof why);
            goto fail;
        }
    }
    svc->started = true;
    if (svc->def.execute && (rc = task_launch(h, &svc->exec, TASK_EXECUTE)) < 0) {
        snprintf(why, sizeof why, "cannot create its thread: %s", hk_strerror(rc));
        goto fail;
    }
    hk_log(h->lg_host, HK_LOG_INFO, "Service %s restarted", svc->name);
    hk__svc_set_state(svc, HK_SERVICE_RUNNING);
    return true;
fail:
    supervise_failure(h, svc, rc, why);
    return false;
}

/* Held services whose dependencies all run again are restarted, in start order. */
static void restart_held(hk_host_t *h) {
    for (size_t k = 0; k < h->nsvcs; k++) {
        hk_service_t *svc = h->svcs[h->order[k]];
        if (!svc->held || svc->stop_pending || task_running(&svc->exec) || stop_requested(h))
            continue;
        bool ready = true;
        for (size_t d = 0; d < svc->ndeps && ready; d++) {
            hk_service_t *dep = h->svcs[svc->deps[d]];
            ready = dep->started && !dep->held && !dep->restart_pending;
        }
        if (!ready)
            continue;
        svc->held = false;
        pthread_mutex_lock(&svc->state_mu);
        svc->restarts++;
        pthread_mutex_unlock(&svc->state_mu);
        restart_service(h, svc);
    }
}

/* Restarts every service whose backoff is over and whose held dependents have stopped. */
static void try_restarts(hk_host_t *h) {
    if (h->phase >= PHASE_STOPPING || stop_requested(h))
        return;
    for (size_t k = 0; k < h->nsvcs; k++) {
        hk_service_t *svc = h->svcs[h->order[k]];
        if (!svc->restart_pending || uv_is_active((uv_handle_t *)&svc->backoff))
            continue;
        mark_dependents(h, svc);
        bool waiting = svc->stop_pending;
        for (size_t i = 0; i < h->nsvcs && !waiting; i++)
            waiting = h->svcs[i]->mark && (h->svcs[i]->stop_pending || task_running(&h->svcs[i]->exec));
        if (waiting)
            continue; /* a dependent's thread has not returned yet: on_exec_exit calls again */
        svc->restart_pending = false;
        restart_service(h, svc);
    }
    restart_held(h);
}

static void on_backoff(uv_timer_t *timer) { try_restarts(((hk_service_t *)timer->data)->host); }

static void on_exec_exit(hk_host_t *h, hk_service_t *svc, int rc) {
    char why[512];
    if (svc->held) { /* stopped for a dependency's restart */
        hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
        hk__svc_set_state(svc, h->phase >= PHASE_STOPPING ? HK_SERVICE_STOPPED : HK_SERVICE_BACKING_OFF);
        if (h->phase < PHASE_STOPPING)
            advance_stops(h);
        try_restarts(h);
        return;
    }
    if (h->phase >= PHASE_STOPPING || (rc == -ECANCELED && hk_token_is_cancelled(svc->stopping))) {
        report_exec(h, svc, rc == HK_SERVICE_DONE || rc == HK_SERVICE_STOP_HOST ? 0 : rc);
        return;
    }
    if (rc == HK_SERVICE_STOP_HOST) {
        hk_log(h->lg_host, HK_LOG_INFO, "Service %s asked the host to stop", svc->name);
        hk__svc_set_state(svc, HK_SERVICE_STOPPED);
        hk__host_request_stop(h);
        return;
    }
    if (rc == HK_SERVICE_DONE || svc->restart.policy == HK_RESTART_NEVER ||
        (rc == 0 && svc->restart.policy == HK_RESTART_ON_FAILURE)) {
        report_exec(h, svc, rc == HK_SERVICE_DONE ? 0 : rc);
        return;
    }
    if (rc == 0)
        snprintf(why, sizeof why, "execute returned 0 (Restart:Policy=always)");
    else
        hk__service_describe(svc, true, rc, why, sizeof why);
    supervise_failure(h, svc, rc == 0 ? 0 : rc, why);
}

/* ======================================================================== */
/* stop                                                                     */
/* ======================================================================== */

static void stop_failed(hk_host_t *h, hk_service_t *svc, int rc) {
    char why[512];
    if (rc == -ECANCELED && atomic_load(&h->shutdown_timed_out))
        return; /* reported with the timeout */
    hk_log(h->lg_host, HK_LOG_ERROR, "Service %s failed to stop: %s", svc->name,
           hk__service_describe(svc, false, rc, why, sizeof why));
    hk__host_failure(h, rc, "service %s failed to stop: %s", svc->name, why);
    hk__svc_set_error(svc, rc, why);
    hk__svc_set_state(svc, HK_SERVICE_FAILED);
    h->exit_code = EXIT_FAILED;
}

static void stop_sequential(hk_host_t *h, char *late, size_t late_len) {
    size_t off = 0;
    for (size_t i = h->nsvcs; i-- > 0;) {
        hk_service_t *svc = h->svcs[i];
        if (!svc->started || !svc->def.stop)
            continue;
        bool was_late = atomic_load(&h->shutdown_timed_out);
        hk_log(h->lg_host, HK_LOG_DEBUG, "Stopping service %s", svc->name);
        hk__sd_stopping_service(h, i, svc);
        hk__svc_set_state(svc, HK_SERVICE_STOPPING);
        hk__service_clear_error(svc, false);
        int rc = svc->def.stop(svc, h->stop_token);
        if (rc < 0)
            stop_failed(h, svc, rc);
        if (!was_late && atomic_load(&h->shutdown_timed_out) && off + 1 < late_len) {
            int n = snprintf(late + off, late_len - off, "%s%s", off ? ", " : "", svc->name);
            if (n > 0)
                off += (size_t)n;
        }
        if (!svc->def.execute && rc >= 0)
            hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
        hk__sd_progress(h);
        pump(h);
    }
}

/* Appends name to a ", "-separated list. */
static void list_add(char *buf, size_t len, const char *name) {
    size_t off = strlen(buf);
    if (off + 1 < len)
        snprintf(buf + off, len - off, "%s%s", off ? ", " : "", name);
}

static void stop_concurrent(hk_host_t *h, char *late, size_t late_len) {
    for (size_t i = h->nsvcs; i-- > 0;) {
        hk_service_t *svc = h->svcs[i];
        if (!svc->started || !svc->def.stop)
            continue;
        hk_log(h->lg_host, HK_LOG_DEBUG, "Stopping service %s", svc->name);
        hk__svc_set_state(svc, HK_SERVICE_STOPPING);
        int rc = task_launch(h, &svc->phase, TASK_STOP);
        if (rc < 0) /* no thread: stop it here rather than not at all */
            rc = svc->def.stop(svc, h->stop_token);
        if (rc < 0)
            stop_failed(h, svc, rc);
    }
    wait_phase_tasks(h, &h->shutdown_timed_out);
    for (size_t i = h->nsvcs; i-- > 0;) {
        hk_service_t *svc = h->svcs[i];
        /* A stop that returned only after the deadline (e.g. once its token was
         * cancelled) did not stop in time, as in sequential mode. */
        if (svc->started && svc->def.stop && svc->phase.joined && atomic_load(&h->shutdown_timed_out) &&
            svc->phase.done_ns >= h->shutdown_deadline_ns)
            list_add(late, late_len, svc->name);
        if (svc->started && svc->def.stop && svc->phase.joined) {
            if (svc->phase.rc < 0)
                stop_failed(h, svc, svc->phase.rc);
            else if (!svc->def.execute)
                hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
        }
    }
}

/*
 * Shutdown with declared dependencies: a service stops (its token is
 * cancelled, its stop called, sequentially on this thread or on a thread
 * of its own with Host:ServicesStopConcurrently) once every started service
 * that depends on it has stopped: stop returned and execute's thread
 * joined. Independent services stop in reverse start order (sequential) or
 * together (concurrent).
 */
static bool stopped_down(const hk_service_t *svc) {
    return svc->stop_launched && !task_running(&svc->phase) && !task_running(&svc->exec);
}

static void stop_by_dependencies(hk_host_t *h, char *late, size_t late_len) {
    for (size_t i = 0; i < h->nsvcs; i++)
        h->svcs[i]->stop_launched = !h->svcs[i]->started && !task_running(&h->svcs[i]->exec);
    for (;;) {
        bool progress = false;
        for (size_t k = h->nsvcs; k-- > 0;) {
            hk_service_t *svc = h->svcs[h->order[k]];
            if (svc->stop_launched)
                continue;
            bool ready = true; /* every service depending on it is down */
            for (size_t j = 0; j < h->nsvcs && ready; j++) {
                hk_service_t *o = h->svcs[j];
                for (size_t d = 0; d < o->ndeps && ready; d++)
                    if (h->svcs[o->deps[d]] == svc)
                        ready = stopped_down(o);
            }
            if (!ready)
                continue;
            progress = true;
            svc->stop_launched = true;
            hk_log(h->lg_host, HK_LOG_DEBUG, "Stopping service %s", svc->name);
            hk__sd_stopping_service(h, k, svc);
            hk__svc_set_state(svc, HK_SERVICE_STOPPING);
            if (task_running(&svc->exec))
                hk_token_cancel(svc->stopping);
            if (!svc->started || !svc->def.stop)
                continue;
            int rc = h->stop_concurrently ? task_launch(h, &svc->phase, TASK_STOP) : -EAGAIN;
            if (rc < 0) { /* sequential, or no thread: stop it here */
                bool was_late = atomic_load(&h->shutdown_timed_out);
                hk__service_clear_error(svc, false);
                rc = svc->def.stop(svc, h->stop_token);
                if (rc < 0)
                    stop_failed(h, svc, rc);
                else if (!svc->def.execute)
                    hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
                if (!was_late && atomic_load(&h->shutdown_timed_out))
                    list_add(late, late_len, svc->name);
                hk__sd_progress(h);
            }
        }
        bool all_down = true;
        for (size_t i = 0; i < h->nsvcs; i++) {
            hk_service_t *svc = h->svcs[i];
            if (task_running(&svc->phase) && task_reap(&svc->phase)) {
                progress = true;
                if (svc->phase.done_ns >= h->shutdown_deadline_ns && atomic_load(&h->shutdown_timed_out))
                    list_add(late, late_len, svc->name);
                if (svc->phase.rc < 0)
                    stop_failed(h, svc, svc->phase.rc);
                else if (!svc->def.execute)
                    hk_log(h->lg_host, HK_LOG_DEBUG, "Stopped service %s", svc->name);
            }
            all_down = all_down && stopped_down(svc);
        }
        if (all_down || atomic_load(&h->shutdown_timed_out))
            return;
        if (!progress)
            uv_run(&h->loop, UV_RUN_ONCE); /* reaps execute threads (on_wake) */
    }
}

static bool exec_running(hk_host_t *h) {
    for (size_t i = 0; i < h->nsvcs; i++)
        if (task_running(&h->svcs[i]->exec))
            return true;
    return false;
}

static bool service_hung(const hk_service_t *svc);
static void on_delay_over(uv_timer_t *t) { *(bool *)t->data = true; }

/* Host:ShutdownDelaySeconds: readiness is already Unhealthy and `stopping`
 * fired; the loop keeps running (services keep serving) for the delay, then
 * the services are stopped. A second signal still forces an exit (the control
 * thread handles it); further stop requests change nothing. */
static void shutdown_delay(hk_host_t *h) {
    char secs[32];
    hk__fmt_seconds(secs, sizeof secs, h->shutdown_delay_s);
    hk_log(h->lg_host, HK_LOG_INFO,
           "Readiness is Unhealthy; stopping services in %s (Host:ShutdownDelaySeconds)", secs);
    uv_timer_t timer;
    bool over = false;
    if (uv_timer_init(&h->loop, &timer) < 0)
        return;
    timer.data = &over;
    uv_update_time(&h->loop);
    uv_timer_start(&timer, on_delay_over, (uint64_t)(h->shutdown_delay_s * 1e3), 0);
    while (!over)
        uv_run(&h->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    pump(h); /* the close callback: the timer's memory is this frame's */
}

static void stop_services(hk_host_t *h, bool was_started) {
    h->phase = PHASE_STOPPING;
    if (was_started && !h->suppress_status)
        hk_log(h->lg_lifetime, HK_LOG_INFO, "Application is shutting down...");
    atomic_store(&h->notify_phase, 2);
    hk__control_post(&h->ctl, CTL_WAKE);
    hk__sd_progress(h);
    hk__sd_stopping(h);
    hk__health_invalidate(h->health);
    hk_token_cancel(h->stopping);
    if (was_started && h->shutdown_delay_s > 0)
        shutdown_delay(h);
    h->shutdown_deadline_ns = hk__now_ns() + (uint64_t)(h->shutdown_timeout_s * 1e9);
    hk__control_set_deadline(h, DEADLINE_SHUTDOWN, h->shutdown_timeout_s);

    /* A pending restart is abandoned at once (the backoff wait ends here). */
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[i];
        if (svc->backoff_open)
            uv_timer_stop(&svc->backoff);
        if ((svc->restart_pending || svc->held) && !svc->started && !task_running(&svc->exec))
            hk__svc_set_state(svc, HK_SERVICE_STOPPED);
        svc->restart_pending = false;
        svc->stop_pending = false; /* still started: the shutdown stops it in order */
    }

    for (size_t i = h->nsvcs; i-- > 0 && !h->has_deps;) {
        hk_service_t *svc = h->svcs[i];
        if (task_running(&svc->exec)) {
            if (!svc->def.stop)
                hk_log(h->lg_host, HK_LOG_DEBUG, "Stopping service %s", svc->name);
            hk__svc_set_state(svc, HK_SERVICE_STOPPING);
            hk_token_cancel(svc->stopping);
        }
    }

    char late[1024] = "";
    if (h->has_deps)
        stop_by_dependencies(h, late, sizeof late);
    else if (h->stop_concurrently)
        stop_concurrent(h, late, sizeof late);
    else
        stop_sequential(h, late, sizeof late);

    for (;;) {
        reap_exec(h);
        if (!exec_running(h) || atomic_load(&h->shutdown_timed_out))
            break;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    reap_exec(h);
    hk__control_set_deadline(h, DEADLINE_NONE, -1);
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[i];
        if (svc->state != HK_SERVICE_FAILED && svc->state != HK_SERVICE_CREATED && !service_hung(svc))
            hk__svc_set_state(svc, HK_SERVICE_STOPPED);
    }

    if (atomic_load(&h->shutdown_timed_out)) {
        char names[1024], secs[32];
        running_names(h, true, names, sizeof names);
        char phase_names[512];
        running_names(h, false, phase_names, sizeof phase_names);
        char all[2600];
        snprintf(all, sizeof all, "%s%s%s%s%s", late, late[0] && phase_names[0] ? ", " : "",
                 phase_names, (late[0] || phase_names[0]) && names[0] ? ", " : "", names);
        hk__fmt_seconds(secs, sizeof secs, h->shutdown_timeout_s);
        if (all[0]) {
            hk_log(h->lg_host, HK_LOG_ERROR, "Shutdown timed out after %s; still running: %s", secs,
                   all);
            hk__host_failure(h, -ETIMEDOUT, "shutdown timed out; still running: %s", all);
            h->exit_code = EXIT_FAILED;
        }
    }
}

/* ======================================================================== */
/* run                                                                      */
/* ======================================================================== */

static void close_leftover(uv_handle_t *handle, void *arg) {
    hk_host_t *h = arg;
    if (handle == (uv_handle_t *)&h->wake || uv_is_closing(handle))
        return;
    hk_log(h->lg_host, HK_LOG_WARN, "A libuv %s handle was left open by a service; closing it",
           uv_handle_type_name(uv_handle_get_type(handle)));
    uv_close(handle, NULL);
}

static void teardown_loop(hk_host_t *h) {
    pump(h);
    for (size_t i = 0; i < h->nsvcs; i++) {
        if (h->svcs[i]->backoff_open)
            uv_close((uv_handle_t *)&h->svcs[i]->backoff, NULL);
        h->svcs[i]->backoff_open = false;
    }
    uv_walk(&h->loop, close_leftover, h);
    pthread_mutex_lock(&h->wake_mu);
    h->wake_open = false;
    pthread_mutex_unlock(&h->wake_mu);
    uv_close((uv_handle_t *)&h->wake, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
}

static void close_loop(hk_host_t *h) {
    if (h->loop_closed)
        return;
    int rc = uv_loop_close(&h->loop);
    if (rc < 0)
        hk_log(h->lg_host, HK_LOG_ERROR, "The event loop still has open handles: %s",
               uv_strerror(rc));
    else
        h->loop_closed = true;
}

static bool service_hung(const hk_service_t *svc) {
    return task_running(&svc->exec) || task_running(&svc->phase);
}

static void destroy_services(hk_host_t *h) {
    for (size_t i = h->nsvcs; i-- > 0;) {
        hk_service_t *svc = h->svcs[i];
        if (service_hung(svc)) {
            /* Its thread keeps a reference on the host and frees nothing it uses. */
            task_t *tasks[] = {&svc->exec, &svc->phase};
            for (size_t k = 0; k < HK_ARRAY_SIZE(tasks); k++) {
                if (task_running(tasks[k])) {
                    pthread_detach(tasks[k]->thread);
                    tasks[k]->joined = true;
                }
            }
            continue; /* destroyed by host_free_core once its thread has returned */
        }
        hk__service_destroy_data(svc);
    }
}

int hk_host_run(hk_host_t *h) {
    if (!h)
        return EXIT_FAILED;
    if (h->ran) {
        hk_log(h->lg_host, HK_LOG_ERROR, "hk_host_run was called twice on the same host");
        return EXIT_FAILED;
    }
    h->ran = true;
    h->exit_code = 0;

    int rc = uv_async_init(&h->loop, &h->wake, on_wake);
    if (rc < 0) {
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Cannot start the host: uv_async_init: %s",
               uv_strerror(rc));
        hk_token_cancel(h->stopping);
        hk_token_cancel(h->stopped);
        destroy_services(h);
        return EXIT_FAILED;
    }
    h->wake.data = h;
    h->wake_open = true;
    for (size_t i = 0; i < h->nsvcs; i++) {
        hk_service_t *svc = h->svcs[i];
        if (svc->restart.policy != HK_RESTART_NEVER && uv_timer_init(&h->loop, &svc->backoff) == 0) {
            svc->backoff.data = svc;
            svc->backoff_open = true;
        }
    }
    rc = hk__control_start(h);
    bool ok = false;
    if (rc < 0) {
        hk_log(h->lg_host, HK_LOG_CRITICAL, "Cannot start the host's control thread: %s",
               hk_strerror(rc));
        h->exit_code = EXIT_FAILED;
    } else {
        if (hk__reload_start(h) < 0)
            hk_log(h->lg_host, HK_LOG_WARN,
                   "Out of memory watching configuration files: some changes may reload only on SIGHUP");
        h->phase = PHASE_STARTING;
        atomic_store(&h->notify_phase, 1);
        hk__control_post(&h->ctl, CTL_WAKE); /* the control thread starts its EXTEND_TIMEOUT ticks */
        hk__sd_progress(h);
        hk__sd_watchdog_start(h);
        hk__health_monitor_start(h);
        ok = start_services(h);
    }

    if (ok) {
        h->phase = PHASE_RUNNING;
        atomic_store(&h->notify_phase, 0);
        hk__sd_started(h); /* before the started callbacks: a status they set must win */
        hk__health_invalidate(h->health); /* readiness changes: no cached "starting" */
        hk_token_cancel(h->started);
        if (!h->suppress_status) {
            /* Under systemd nobody presses Ctrl+C. */
            hk_log(h->lg_lifetime, HK_LOG_INFO, "%s",
                   h->under_systemd ? "Application started."
                                    : "Application started. Press Ctrl+C to shut down.");
            hk_log(h->lg_lifetime, HK_LOG_INFO, "Hosting environment: %s", h->environment);
            hk_log(h->lg_lifetime, HK_LOG_INFO, "Content root path: %s", h->content_root);
        }
        if (atomic_exchange(&h->reload_requested, false)) /* asked for during start-up */
            hk__reload_now(h, "on request");
        while (!stop_requested(h))
            uv_run(&h->loop, UV_RUN_DEFAULT);
    }
    stop_services(h, ok);
    h->phase = PHASE_DONE;
    atomic_store(&h->notify_phase, 0);
    if (h->exit_code != 0)
        hk__sd_failed(h);
    hk_token_cancel(h->stopped);
    hk__control_stop(h);
    hk__reload_stop(h);
    hk__health_monitor_stop(h);
    hk__sd_watchdog_stop(h);
    teardown_loop(h);
    hk__reload_free(h);
    close_loop(h);
    destroy_services(h);
    hk_log_flush(h->log);
    return h->exit_code;
}

void hk_host_free(hk_host_t *h) {
    if (!h || h->freed)
        return;
    h->freed = true;
    if (!h->ran)
        destroy_services(h);
    close_loop(h);
    hk__host_unref(h);
}
