/*
 * The host's side of health checks: the built-in checks (`host`, `services`,
 * `heartbeat:{service}`), hk_service_heartbeat, and the monitor thread that
 * runs the live checks off the loop so that the systemd watchdog (a
 * liveness callback, src/core/sdhost.c) stops pinging while one is
 * Unhealthy. Depends on src/health, src/log, pthreads and host_int.h.
 *
 * Readiness: the `host` check is Healthy only between `started` and the
 * moment a stop is requested (hk__host_request_stop, which also drops the
 * cached results so no probe sees a stale Healthy), i.e. before `stopping`.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/host_int.h"
#include "health/health_int.h"
#include "log/log.h"

/* ---- host ---------------------------------------------------------------------- */

static hk_health_status_t host_check(hk_health_result_t *r, hk_token_t *token, void *data) {
    (void)token;
    hk_host_t *h = data;
    if (atomic_load(&h->stop_requested) || hk_token_is_cancelled(h->stopping)) {
        hk_health_result_describe(r, "stopping");
        return HK_HEALTH_UNHEALTHY;
    }
    if (!hk_token_is_cancelled(h->started)) {
        hk_health_result_describe(r, "starting");
        return HK_HEALTH_UNHEALTHY;
    }
    hk_health_result_describe(r, "running");
    return HK_HEALTH_HEALTHY;
}

/* ---- heartbeats ------------------------------------------------------------------ */

void hk_service_heartbeat(hk_service_t *svc) {
    if (!svc || !svc->def.heartbeat_ms || !svc->host)
        return;
    atomic_store_explicit(&svc->beat_ns, hk__health_now(svc->host->health), memory_order_release);
}

void hk__health_exec_begin(hk_service_t *svc) {
    if (!svc->def.heartbeat_ms)
        return;
    atomic_store(&svc->beat_ns, hk__health_now(svc->host->health));
    atomic_store(&svc->exec_live, true);
}

void hk__health_exec_end(hk_service_t *svc) { atomic_store(&svc->exec_live, false); }

static hk_health_status_t heartbeat_check(hk_health_result_t *r, hk_token_t *token, void *data) {
    (void)token;
    hk_service_t *svc = data;
    hk_host_t *h = svc->host;
    uint64_t interval_ns = (uint64_t)svc->def.heartbeat_ms * 1000000u;
    hk_health_result_set_number(r, "intervalMs", svc->def.heartbeat_ms);
    if (!atomic_load(&svc->exec_live)) {
        hk_health_result_describe(r, "not running");
        return HK_HEALTH_HEALTHY;
    }
    uint64_t last = atomic_load_explicit(&svc->beat_ns, memory_order_acquire);
    uint64_t now = hk__health_now(h->health);
    uint64_t age = now > last ? now - last : 0;
    hk_health_result_set_number(r, "lastHeartbeatMs", (double)(age / 1000000u));
    uint64_t limit = h->heartbeat_missed && interval_ns > UINT64_MAX / h->heartbeat_missed
                         ? UINT64_MAX /* no overflow for huge HeartbeatMissedIntervals */
                         : interval_ns * h->heartbeat_missed;
    if (age > limit) {
        char secs[32];
        hk__fmt_seconds(secs, sizeof secs, (double)(age / 1000000u) / 1e3);
        hk_health_result_describe(r, "no heartbeat for %s (expected every %u ms)", secs,
                                  svc->def.heartbeat_ms);
        return HK_HEALTH_UNHEALTHY;
    }
    hk_health_result_describe(r, "last heartbeat %llu ms ago",
                              (unsigned long long)(age / 1000000u));
    return HK_HEALTH_HEALTHY;
}

/* ---- services -------------------------------------------------------------------
 * Running -> Healthy, BackingOff -> Degraded, Failed -> Unhealthy; the others
 * (before start, while stopping) Healthy: readiness covers them through `host`.
 * One data pair per service (name -> state). */
static hk_health_status_t services_check(hk_health_result_t *r, hk_token_t *token, void *data) {
    (void)token;
    hk_host_t *h = data;
    size_t n = h->nsvcs;
    hk_service_status_t *st = n ? hk__calloc(n, sizeof *st) : NULL;
    if (n && !st) {
        hk_health_result_describe(r, "out of memory");
        return HK_HEALTH_UNHEALTHY;
    }
    n = hk_host_service_status(h, st, n);
    hk_health_status_t worst = HK_HEALTH_HEALTHY;
    size_t backing = 0, failed = 0;
    for (size_t i = 0; i < n && i < h->nsvcs; i++) {
        hk_health_status_t s = HK_HEALTH_HEALTHY;
        if (st[i].state == HK_SERVICE_FAILED) {
            s = HK_HEALTH_UNHEALTHY;
            failed++;
        } else if (st[i].state == HK_SERVICE_BACKING_OFF) {
            s = HK_HEALTH_DEGRADED;
            backing++;
        }
        hk_health_result_set(r, st[i].name, "%s", hk_service_state_name(st[i].state));
        if (s > worst)
            worst = s;
    }
    if (failed || backing)
        hk_health_result_describe(r, "%zu failed, %zu restarting, of %zu services", failed,
                                  backing, n);
    else
        hk_health_result_describe(r, "%zu services, none failed or restarting", n);
    hk__free(st);
    return worst;
}

static int add_services_check(hk_host_t *h, hk_health_t *health, const char **names, size_t *n) {
    hk_health_check_def_t def = {
        .name = "services", .check = services_check, .data = h, .tags = "ready"};
    int rc = hk_health_add(health, &def);
    if (rc == 0)
        names[(*n)++] = "services";
    return rc;
}

/* ---- registration ---------------------------------------------------------------- */

static void remove_builtins(hk_health_t *health, const char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        (void)hk__health_remove(health, names[i]);
}

int hk__health_add_builtins(hk_host_t *h, hk_health_t *health, hk_service_t **svcs, size_t nsvcs,
                            const char **ret_name) {
    /* Names to undo on failure: "host", "services", one per heartbeat. */
    size_t cap = nsvcs + 2, n = 0;
    const char **names = hk__calloc(cap, sizeof *names);
    char **owned = hk__calloc(nsvcs ? nsvcs : 1, sizeof *owned);
    int rc = names && owned ? 0 : -ENOMEM;
    *ret_name = "host";
    if (rc == 0) {
        hk_health_check_def_t def = {.name = "host", .check = host_check, .data = h, .tags = "ready"};
        rc = hk_health_add(health, &def);
        if (rc == 0)
            names[n++] = "host";
    }
    if (rc == 0) {
        *ret_name = "services";
        rc = add_services_check(h, health, names, &n);
    }
    for (size_t i = 0; rc == 0 && i < nsvcs; i++) {
        hk_service_t *svc = svcs[i];
        if (!svc->def.heartbeat_ms)
            continue;
        owned[i] = hk__asprintf("heartbeat:%s", svc->name);
        *ret_name = svc->name;
        if (!owned[i]) {
            rc = -ENOMEM;
            break;
        }
        hk_health_check_def_t def = {
            .name = owned[i], .check = heartbeat_check, .data = svc, .tags = "live"};
        rc = hk_health_add(health, &def);
        if (rc == 0)
            names[n++] = owned[i];
    }
    if (rc < 0 && names)
        remove_builtins(health, names, n);
    for (size_t i = 0; owned && i < nsvcs; i++)
        hk__free(owned[i]);
    hk__free(owned);
    hk__free(names);
    return rc;
}

void hk__health_remove_builtins(hk_health_t *health, hk_service_t **svcs, size_t nsvcs) {
    (void)hk__health_remove(health, "host");
    (void)hk__health_remove(health, "services"); /* -ENOENT until the merge adds it */
    for (size_t i = 0; i < nsvcs; i++) {
        char name[80];
        snprintf(name, sizeof name, "heartbeat:%s", svcs[i]->name);
        if (svcs[i]->def.heartbeat_ms)
            (void)hk__health_remove(health, name);
    }
}

/* ---- the live monitor (watchdog) ------------------------------------------------- */

struct hk__health_monitor {
    hk_host_t *host;
    hk_token_t *stop;
    pthread_t thread;
    uint64_t interval_ms;
};

static void log_transition(hk_host_t *h, const hk_health_report_t *rep, int before) {
    if ((int)rep->status == before)
        return;
    if (rep->status == HK_HEALTH_UNHEALTHY) {
        char line[400];
        hk_health_report_status_line(rep, line, sizeof line);
        hk_log(h->lg_host, HK_LOG_WARN, "Live health checks failing; not pinging the systemd watchdog: %s",
               line);
        (void)hk_host_set_status(h, "%s", line); /* systemctl status shows why */
    } else if (before == HK_HEALTH_UNHEALTHY) {
        hk_log(h->lg_host, HK_LOG_INFO, "Live health checks passing again (%s)",
               hk_health_status_name(rep->status));
        (void)hk_host_set_status(h, "Running");
    }
}

static void *monitor_main(void *arg) {
    struct hk__health_monitor *m = arg;
    hk_host_t *h = m->host;
    while (!hk_token_is_cancelled(m->stop)) {
        hk_health_report_t *rep = NULL;
        int rc = hk_health_report(h->health, "live", m->stop, &rep);
        if (rc == 0) {
            log_transition(h, rep, atomic_load(&h->live_status));
            atomic_store(&h->live_status, (int)rep->status);
            hk_health_report_free(rep);
        } else if (rc != -ECANCELED) {
            hk_log(h->lg_host, HK_LOG_DEBUG, "Cannot run the live health checks: %s", hk_strerror(rc));
        }
        (void)hk_token_sleep(m->stop, m->interval_ms);
    }
    return NULL;
}

static bool live_ok(hk_host_t *h, void *data) {
    (void)data;
    return atomic_load(&h->live_status) != HK_HEALTH_UNHEALTHY;
}

void hk__health_monitor_start(hk_host_t *h) {
    atomic_store(&h->live_status, HK_HEALTH_HEALTHY);
    if (!h->watchdog_on || hk__health_count_tag(h->health, "live") == 0)
        return;
    struct hk__health_monitor *m = hk__calloc(1, sizeof *m);
    int rc = m ? hk_token_new(&m->stop) : -ENOMEM;
    if (rc == 0)
        rc = hk_host_add_liveness_check(h, live_ok, NULL);
    if (rc == 0) {
        m->host = h;
        m->interval_ms = h->watchdog_usec / 2000u ? h->watchdog_usec / 2000u : 1;
        sigset_t set, old; /* the control thread takes the process's signals */
        sigfillset(&set);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        rc = -pthread_create(&m->thread, NULL, monitor_main, m);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc < 0)
            h->nliveness--; /* the callback just added: nothing feeds it */
    }
    if (rc < 0) {
        hk_log(h->lg_host, HK_LOG_WARN,
               "Cannot run the live health checks for the systemd watchdog: %s", hk_strerror(rc));
        if (m)
            hk_token_free(m->stop);
        hk__free(m);
        return;
    }
    h->monitor = m;
}

void hk__health_monitor_stop(hk_host_t *h) {
    struct hk__health_monitor *m = h->monitor;
    if (!m)
        return;
    hk_token_cancel(m->stop);
    pthread_join(m->thread, NULL);
    hk_token_free(m->stop);
    hk__free(m);
    h->monitor = NULL;
}
