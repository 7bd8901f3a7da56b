/*
 * The example worker (build/bin/worker): hostkit's Worker Service template.
 * Worker:Count background services "worker-N" log every Worker:IntervalMs and
 * sleep on their cancellation token; a hosted service "audit" logs on start
 * and stop. Knobs to see failure behaviour: Worker:FailAfterMs (worker-1
 * fails), Worker:HangOnStopMs (worker-1 ignores cancellation that long),
 * Worker:FailStart=true (audit fails to start). Depends on libhostkit only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hostkit/hostkit.h>

typedef struct worker {
    int id;
    int64_t interval_ms;
    int64_t fail_after_ms; /* -1: never */
    int64_t hang_on_stop_ms;
    hk_logger_t *log;
} worker_t;

typedef struct audit {
    bool fail_start;
    int64_t workers;
    hk_logger_t *log;
} audit_t;

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

static int worker_execute(hk_service_t *svc, hk_token_t *stopping) {
    worker_t *w = hk_service_data(svc);
    uint64_t begin = now_ms();
    char ts[96];
    while (!hk_token_is_cancelled(stopping)) {
        hk_info(w->log, "Worker %d running at %s", w->id, timestamp(ts, sizeof ts));
        uint64_t wait = (uint64_t)w->interval_ms;
        if (w->fail_after_ms >= 0) {
            uint64_t elapsed = now_ms() - begin;
            if (elapsed >= (uint64_t)w->fail_after_ms)
                return hk_service_fail(svc, -EIO, "simulated failure after %lld ms (Worker:FailAfterMs)",
                                       (long long)w->fail_after_ms);
            if ((uint64_t)w->fail_after_ms - elapsed < wait)
                wait = (uint64_t)w->fail_after_ms - elapsed;
        }
        hk_token_sleep(stopping, wait);
    }
    if (w->hang_on_stop_ms > 0) {
        hk_warn(w->log, "Worker %d ignores cancellation for %lld ms (Worker:HangOnStopMs)", w->id,
                (long long)w->hang_on_stop_ms);
        struct timespec d = {(time_t)(w->hang_on_stop_ms / 1000), (long)(w->hang_on_stop_ms % 1000) * 1000000L};
        while (nanosleep(&d, &d) < 0 && errno == EINTR) {
        }
    }
    return 0;
}

static int audit_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    audit_t *a = hk_service_data(svc);
    if (a->fail_start)
        return hk_service_fail(svc, -EIO, "simulated start failure (Worker:FailStart=true)");
    hk_info(a->log, "Audit started: watching %lld workers", (long long)a->workers);
    return 0;
}

static int audit_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    audit_t *a = hk_service_data(svc);
    hk_info(a->log, "Audit stopped");
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_config_t *cfg = hk_builder_config(b);
    int64_t count = 3, interval = 1000, fail_after = -1, hang = 0;
    bool fail_start = false;
    /* A bad value is recorded; the build then fails with exit code 78 naming it. */
    hk_config_get_int(cfg, "Worker:Count", 3, 0, 1000, &count);
    hk_config_get_int(cfg, "Worker:IntervalMs", 1000, 1, 86400000, &interval);
    hk_config_get_int(cfg, "Worker:FailAfterMs", -1, -1, 86400000, &fail_after);
    hk_config_get_int(cfg, "Worker:HangOnStopMs", 0, 0, 86400000, &hang);
    hk_config_get_bool(cfg, "Worker:FailStart", false, &fail_start);

    hk_logger_t *log = hk_builder_logger(b, "Worker");
    for (int i = 1; i <= count; i++) {
        worker_t *w = calloc(1, sizeof *w);
        if (!w)
            break;
        *w = (worker_t){i, interval, i == 1 ? fail_after : -1, i == 1 ? hang : 0, log};
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i);
        if (hk_builder_add_background(b, name, worker_execute, w, free) < 0)
            free(w); /* the build reports the error */
    }
    audit_t *a = calloc(1, sizeof *a);
    if (a) {
        *a = (audit_t){fail_start, count, hk_builder_logger(b, "Audit")};
        if (hk_builder_add_hosted(b, "audit", audit_start, audit_stop, a, free) < 0)
            free(a);
    }
    return hk_builder_run(b);
}
