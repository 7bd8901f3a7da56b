/*
 * The host's control thread: turns signals and hk_host_stop() into stop
 * requests (SIGHUP and hk_config_request_reload into reload requests, SIGUSR1
 * into log file reopening), enforces the start-up and shutdown deadlines, and performs the
 * forced shutdown on a second signal. It exists only inside hk_host_run.
 * Depends on pthreads, POSIX signals, src/log and host_int.h.
 *
 * Why a thread: the host thread may be busy in a service's start or stop
 * callback when a signal or a deadline arrives; the control thread can
 * still cancel tokens, log and, on a second signal, end the process.
 *
 * Delivery: the signal handler and hk_host_stop write one byte to a
 * non-blocking self-pipe (async-signal-safe). Teardown unpublishes the write
 * end (wfd_pub = -1), waits for writers already past that check, then
 * closes, so a late writer never writes into a recycled descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/host_int.h"
#include "log/log.h"

/* The one host per process that owns SIGINT/SIGTERM/SIGQUIT. */
static atomic_int g_sig_fd = -1;
static atomic_int g_sig_writers;
static atomic_bool g_sig_owned;

static void write_byte(atomic_int *fdp, atomic_int *writers, unsigned char b) {
    atomic_fetch_add(writers, 1);
    int fd = atomic_load(fdp);
    if (fd >= 0)
        (void)!write(fd, &b, 1); /* full pipe: a wake is already pending */
    atomic_fetch_sub(writers, 1);
}

static void on_signal(int sig) {
    int saved = errno;
    write_byte(&g_sig_fd, &g_sig_writers, (unsigned char)(CTL_SIGNAL_BASE + sig));
    errno = saved;
}

void hk__control_post(hk__control_t *ctl, unsigned char msg) {
    write_byte(&ctl->wfd_pub, &ctl->writers, msg);
}

static void unpublish(atomic_int *fdp, atomic_int *writers) {
    atomic_store(fdp, -1);
    while (atomic_load(writers) > 0)
        sched_yield();
}

static const char *signame(int sig, char *buf, size_t len) {
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

void hk__control_set_deadline(hk_host_t *host, deadline_kind_t kind, double seconds) {
    hk__control_t *ctl = &host->ctl;
    pthread_mutex_lock(&ctl->mu);
    /* seconds < 0: no deadline; 0: due at once. */
    ctl->deadline_kind = seconds >= 0 ? kind : DEADLINE_NONE;
    ctl->deadline_ns = seconds >= 0 ? hk__now_ns() + (uint64_t)(seconds * 1e9) : 0;
    pthread_mutex_unlock(&ctl->mu);
    hk__control_post(ctl, CTL_WAKE);
}

static void on_deadline(hk_host_t *host, deadline_kind_t kind) {
    if (kind == DEADLINE_STARTUP) {
        atomic_store(&host->startup_timed_out, true);
        hk_token_cancel(host->start_token);
    } else if (kind == DEADLINE_SHUTDOWN) {
        atomic_store(&host->shutdown_timed_out, true);
        hk_token_cancel(host->stop_token);
    } else if (kind == DEADLINE_START_GRACE) {
        atomic_store(&host->start_grace_over, true);
    }
    hk__host_wake(host);
}

static _Noreturn void forced_shutdown(hk_host_t *host, int sig) {
    char name[32];
    hk_log(host->lg_lifetime, HK_LOG_CRITICAL,
           "Forced shutdown: second %s received while stopping; exiting with code %d",
           signame(sig, name, sizeof name), 128 + sig);
    /* bounded: a blocked terminal must not stop a forced exit */
    (void)hk__log_flush_timeout(host->log, 2000);
    _exit(128 + sig);
}

static void request_reload(hk_host_t *host) {
    atomic_store(&host->reload_requested, true);
    hk__host_wake(host);
}

static void on_signal_msg(hk_host_t *host, int sig) {
    char name[32];
    if (sig == SIGUSR1) {
        hk_log(host->lg_lifetime, HK_LOG_DEBUG, "Received SIGUSR1; reopening the log files");
        hk_log_reopen(host->log);
        return;
    }
    if (sig == SIGHUP) {
        hk_log(host->lg_lifetime, HK_LOG_DEBUG, "Received SIGHUP; reloading the configuration");
        request_reload(host);
        return;
    }
    if (++host->ctl.signals_seen > 1)
        forced_shutdown(host, sig);
    hk_log(host->lg_lifetime, HK_LOG_DEBUG, "Received %s; stopping gracefully (send it again to force)",
           signame(sig, name, sizeof name));
    hk__host_request_stop(host);
}

/*
 * EXTEND_TIMEOUT_USEC (Systemd:ExtendTimeoutSeconds): while a start or stop
 * phase runs, every half period, as long as it made progress within the
 * last period. Returns the poll timeout (ms) until the next tick, or -1.
 */
static int extend_tick(hk_host_t *host, uint64_t *next_ns) {
    if (host->extend_s <= 0 || host->notify.fd < 0 || atomic_load(&host->notify_phase) == 0) {
        *next_ns = 0;
        return -1;
    }
    uint64_t now = hk__now_ns(), period = (uint64_t)(host->extend_s * 1e9);
    if (*next_ns == 0)
        *next_ns = now + period / 2;
    if (now >= *next_ns) {
        if (now - atomic_load(&host->progress_ns) <= period) {
            char msg[64];
            snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)(period / 1000u));
            (void)hk__notify_send(&host->notify, msg);
        }
        *next_ns = now + period / 2;
    }
    uint64_t ms = (*next_ns - now + 999999u) / 1000000u;
    return ms > 60000 ? 60000 : (int)ms;
}

static void *control_main(void *arg) {
    hk_host_t *host = arg;
    hk__control_t *ctl = &host->ctl;
    uint64_t next_extend = 0;
    for (;;) {
        pthread_mutex_lock(&ctl->mu);
        deadline_kind_t kind = ctl->deadline_kind;
        uint64_t deadline = ctl->deadline_ns;
        pthread_mutex_unlock(&ctl->mu);

        int timeout = extend_tick(host, &next_extend);
        if (kind != DEADLINE_NONE) {
            uint64_t now = hk__now_ns();
            if (now >= deadline) {
                pthread_mutex_lock(&ctl->mu);
                if (ctl->deadline_kind == kind && ctl->deadline_ns == deadline)
                    ctl->deadline_kind = DEADLINE_NONE;
                else
                    kind = DEADLINE_NONE; /* replaced meanwhile: re-read */
                pthread_mutex_unlock(&ctl->mu);
                if (kind != DEADLINE_NONE)
                    on_deadline(host, kind);
                continue;
            }
            uint64_t ms = (deadline - now + 999999u) / 1000000u;
            int t = ms > 60000 ? 60000 : (int)ms;
            timeout = timeout < 0 || t < timeout ? t : timeout;
        }
        struct pollfd pfd = {.fd = ctl->rfd, .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n <= 0)
            continue;
        unsigned char buf[64];
        ssize_t got = read(ctl->rfd, buf, sizeof buf);
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == CTL_QUIT)
                return NULL;
            if (buf[i] == CTL_STOP)
                hk__host_request_stop(host);
            else if (buf[i] == CTL_RELOAD)
                request_reload(host);
            else if (buf[i] >= CTL_SIGNAL_BASE)
                on_signal_msg(host, buf[i] - CTL_SIGNAL_BASE);
        }
    }
}

static void install_signals(hk_host_t *host) {
    hk__control_t *ctl = &host->ctl;
    bool expected = false;
    if (!host->handle_signals || !atomic_compare_exchange_strong(&g_sig_owned, &expected, true)) {
        if (host->handle_signals)
            hk_log(host->lg_host, HK_LOG_DEBUG,
                   "Another host owns the process signals; this one does not handle them");
        return;
    }
    atomic_store(&g_sig_fd, ctl->wfd);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &ctl->old_int);
    sigaction(SIGTERM, &sa, &ctl->old_term);
    sigaction(SIGQUIT, &sa, &ctl->old_quit);
    sigaction(SIGHUP, &sa, &ctl->old_hup);
    sigaction(SIGUSR1, &sa, &ctl->old_usr1);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &ctl->old_pipe);
    ctl->owns_signals = true;
}

static void restore_signals(hk__control_t *ctl) {
    if (!ctl->owns_signals)
        return;
    sigaction(SIGINT, &ctl->old_int, NULL);
    sigaction(SIGTERM, &ctl->old_term, NULL);
    sigaction(SIGQUIT, &ctl->old_quit, NULL);
    sigaction(SIGHUP, &ctl->old_hup, NULL);
    sigaction(SIGUSR1, &ctl->old_usr1, NULL);
    sigaction(SIGPIPE, &ctl->old_pipe, NULL);
    unpublish(&g_sig_fd, &g_sig_writers);
    ctl->owns_signals = false;
    atomic_store(&g_sig_owned, false);
}

int hk__control_start(hk_host_t *host) {
    hk__control_t *ctl = &host->ctl;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    ctl->rfd = fds[0];
    ctl->wfd = fds[1];
    ctl->signals_seen = 0;
    /* The thread must not take the signals it exists to handle in a way that
     * interrupts it mid-callback; it only polls, so it may receive them. */
    int rc = pthread_create(&ctl->thread, NULL, control_main, host);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return -rc;
    }
    ctl->running = true;
    atomic_store(&ctl->wfd_pub, ctl->wfd);
    install_signals(host);
    /* A stop requested before run (flag only) is seen at the first safe point. */
    return 0;
}

void hk__control_stop(hk_host_t *host) {
    hk__control_t *ctl = &host->ctl;
    if (!ctl->running)
        return;
    restore_signals(ctl);
    /* QUIT goes through the raw fd: the published one may already be gone. */
    unsigned char q = CTL_QUIT;
    while (write(ctl->wfd, &q, 1) < 0 && errno == EAGAIN) {
        /* pipe full of stale bytes: let the thread drain it */
        sched_yield();
    }
    pthread_join(ctl->thread, NULL);
    unpublish(&ctl->wfd_pub, &ctl->writers);
    close(ctl->rfd);
    close(ctl->wfd);
    ctl->rfd = ctl->wfd = -1;
    ctl->running = false;
}
