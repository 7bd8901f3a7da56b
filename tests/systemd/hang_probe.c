/*
 * hang_probe: a host whose own loop stops responding, for
 * tests/systemd/test_sd_watchdog_hang.sh (build/bin/hang_probe, test only).
 * Its hosted service "hang" arms a timer on the host's loop at start;
 * Probe:HangAfterMs later the timer callback blocks the host thread for good,
 * so the host stops pinging the systemd watchdog. With Probe:MarkerFile set it
 * hangs only when it can create that file (O_EXCL): the first run hangs, the
 * run systemd restarts keeps going. Depends on libhostkit and libuv only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <hostkit/hostkit.h>

typedef struct probe {
    uv_timer_t timer;
    int64_t hang_after_ms;
    char *marker; /* NULL: hang on every run */
    hk_host_t *host;
    hk_logger_t *log;
} probe_t;

/* On the host thread: from here on the loop never turns again. */
static void hang_now(uv_timer_t *t) {
    probe_t *p = t->data;
    hk_warn(p->log, "Host loop hangs now (Probe:HangAfterMs=%lld)", (long long)p->hang_after_ms);
    hk_log_flush(hk_host_log(p->host)); /* the line reaches the journal before the hang */
    for (;;)
        pause();
}

static int hang_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    probe_t *p = hk_service_data(svc);
    hk_host_t *host = hk_service_host(svc);
    p->host = host;
    p->log = hk_host_logger(host, "Probe");
    if (p->marker) {
        int fd = open(p->marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno != EEXIST)
                return hk_service_fail(svc, -errno, "cannot create %s", p->marker);
            hk_info(p->log, "%s exists: this run does not hang", p->marker);
            return 0;
        }
        close(fd);
    }
    int rc = uv_timer_init(hk_host_loop(host), &p->timer);
    if (rc < 0)
        return hk_service_fail(svc, rc, "uv_timer_init: %s", uv_strerror(rc));
    p->timer.data = p;
    uv_timer_start(&p->timer, hang_now, (uint64_t)p->hang_after_ms, 0);
    hk_info(p->log, "The host loop will hang in %lld ms", (long long)p->hang_after_ms);
    return 0;
}

static int hang_stop(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    probe_t *p = hk_service_data(svc);
    if (p->timer.loop && !uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, NULL);
    return 0;
}

int main(int argc, char **argv) {
    static probe_t probe;
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_config_t *cfg = hk_builder_config(b);
    hk_config_get_int(cfg, "Probe:HangAfterMs", 500, 0, 3600000, &probe.hang_after_ms);
    const char *marker = hk_config_get_string(cfg, "Probe:MarkerFile", NULL);
    probe.marker = marker ? strdup(marker) : NULL;
    hk_service_def_t def = {.name = "hang", .start = hang_start, .stop = hang_stop, .data = &probe};
    hk_builder_add_service(b, &def);
    hk_host_t *host = NULL;
    if (hk_builder_build(b, &host) < 0) {
        int code = hk_builder_exit_code(b);
        hk_builder_free(b);
        free(probe.marker);
        return code;
    }
    hk_builder_free(b);
    int code = hk_host_run(host);
    hk_host_free(host);
    free(probe.marker);
    return code;
}
