/*
 * The host's side of systemd integration: status lines through start-up
 * and shutdown, READY/STOPPING/RELOADING, the failure report, the watchdog
 * timer on the host loop (pinging only while every liveness check passes),
 * and the public notify helpers of hostkit/systemd.h.
 * Depends on libuv, src/systemd and host_int.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/host_int.h"
#include "log/log.h"

static void sendf(hk_host_t *h, const char *fmt, ...) HK_PRINTF(2, 3);
static void sendf(hk_host_t *h, const char *fmt, ...) {
    if (h->notify.fd < 0)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rc = hk__notify_send(&h->notify, msg);
    if (rc < 0)
        hk_log(h->lg_host, HK_LOG_DEBUG, "Cannot notify systemd (%s): %s", msg, hk_strerror(rc));
}

void hk__sd_progress(hk_host_t *h) { atomic_store(&h->progress_ns, hk__now_ns()); }

void hk__sd_starting(hk_host_t *h, size_t i, const hk_service_t *svc) {
    sendf(h, "STATUS=Starting %zu/%zu: %s", i + 1, h->nsvcs, svc->name);
}

void hk__sd_started(hk_host_t *h) { sendf(h, "READY=1\nSTATUS=Running"); }

void hk__sd_stopping(hk_host_t *h) { sendf(h, "STOPPING=1\nSTATUS=Stopping"); }

void hk__sd_stopping_service(hk_host_t *h, size_t i, const hk_service_t *svc) {
    sendf(h, "STATUS=Stopping %zu/%zu: %s", h->nsvcs - i, h->nsvcs, svc->name);
}

void hk__host_failure(hk_host_t *h, int err, const char *fmt, ...) {
    if (h->failure[0])
        return; /* the first failure is the one to report */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->failure, sizeof h->failure, fmt, ap);
    va_end(ap);
    h->failure_errno = err < 0 ? -err : err;
}

void hk__sd_failed(hk_host_t *h) {
    if (h->failure_errno > 0)
        sendf(h, "STATUS=Failed: %s\nERRNO=%d", h->failure[0] ? h->failure : "see the log",
              h->failure_errno);
    else
        sendf(h, "STATUS=Failed: %s", h->failure[0] ? h->failure : "see the log");
}

void hk__sd_reloading(hk_host_t *h) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sendf(h, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%llu",
          (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
}

void hk__sd_reloaded(hk_host_t *h) { sendf(h, "READY=1\nSTATUS=Running"); }

/* ---- watchdog -------------------------------------------------------------- */

static void on_watchdog(uv_timer_t *t) {
    hk_host_t *h = t->data;
    for (size_t i = 0; i < h->nliveness; i++) {
        if (!h->liveness[i].cb(h, h->liveness[i].data)) {
            hk_log(h->lg_host, HK_LOG_WARN, "A liveness check failed; not pinging the systemd watchdog");
            return;
        }
    }
    sendf(h, "WATCHDOG=1");
}

void hk__sd_watchdog_start(hk_host_t *h) {
    if (h->notify.fd < 0 || h->watchdog_usec == 0)
        return;
    uint64_t ms = h->watchdog_usec / 2000u;
    if (ms == 0)
        ms = 1;
    uv_timer_init(&h->loop, &h->watchdog);
    h->watchdog.data = h;
    uv_unref((uv_handle_t *)&h->watchdog);
    uv_timer_start(&h->watchdog, on_watchdog, 0, ms);
    h->watchdog_on = true;
    hk_log(h->lg_host, HK_LOG_DEBUG, "Pinging the systemd watchdog every %llu ms",
           (unsigned long long)ms);
}

void hk__sd_watchdog_stop(hk_host_t *h) {
    if (!h->watchdog_on)
        return;
    uv_close((uv_handle_t *)&h->watchdog, NULL);
    h->watchdog_on = false;
}

/* ---- public ---------------------------------------------------------------- */

int hk_host_notify(hk_host_t *h, const char *message) {
    if (!h || !message)
        return -EINVAL;
    return hk__notify_send(&h->notify, message);
}

int hk_host_set_status(hk_host_t *h, const char *fmt, ...) {
    if (!h || !fmt)
        return -EINVAL;
    char text[400], msg[420];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++) /* one line: a newline would start another assignment */
        if (*p == '\n')
            *p = ' ';
    snprintf(msg, sizeof msg, "STATUS=%s", text);
    return hk__notify_send(&h->notify, msg);
}

int hk_host_notify_mainpid(hk_host_t *h, pid_t pid) {
    if (!h || pid <= 0)
        return -EINVAL;
    char msg[64];
    snprintf(msg, sizeof msg, "MAINPID=%ld", (long)pid);
    return hk__notify_send(&h->notify, msg);
}

int hk_host_extend_timeout(hk_host_t *h, unsigned long long usec) {
    if (!h)
        return -EINVAL;
    hk__sd_progress(h);
    char msg[64];
    snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu", usec);
    return hk__notify_send(&h->notify, msg);
}

int hk_host_watchdog_trigger(hk_host_t *h) {
    return h ? hk__notify_send(&h->notify, "WATCHDOG=trigger") : -EINVAL;
}

int hk_host_add_liveness_check(hk_host_t *h, hk_liveness_cb cb, void *data) {
    if (!h || !cb)
        return -EINVAL;
    struct hk__liveness *nl = hk__realloc(h->liveness, (h->nliveness + 1) * sizeof *nl);
    if (!nl)
        return -ENOMEM;
    h->liveness = nl;
    h->liveness[h->nliveness++] = (struct hk__liveness){cb, data};
    return 0;
}

size_t hk_host_listen_fd_count(const hk_host_t *h) { return h ? h->listen.n : 0; }

int hk_host_listen_fd(const hk_host_t *h, size_t i) {
    return h && i < h->listen.n ? h->listen.fds[i] : -1;
}

const char *hk_host_listen_fd_name(const hk_host_t *h, size_t i) {
    return h && i < h->listen.n ? h->listen.names[i] : NULL;
}

int hk_host_listen_fd_by_name(const hk_host_t *h, const char *name) {
    for (size_t i = 0; h && name && i < h->listen.n; i++)
        if (h->listen.fds[i] >= 0 && !strcmp(h->listen.names[i], name))
            return h->listen.fds[i];
    return -1;
}

int hk_host_take_listen_fd(hk_host_t *h, size_t i) {
    if (!h || i >= h->listen.n)
        return -1;
    int fd = h->listen.fds[i];
    h->listen.fds[i] = -1;
    return fd;
}
