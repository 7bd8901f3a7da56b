/*
 * sd_probe: a socket-activated host for tests/e2e/test_socket_activation.sh
 * (run under systemd-socket-activate --fdname=web). Its hosted service "web"
 * finds the passed descriptor by name on start and logs what it got; its
 * background service "serve", once the host has started, accepts one
 * connection on it, writes "hello\n", closes it and stops the host (exit 0). The host closes the listening
 * descriptor when it is freed. Depends on libhostkit only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hostkit/hostkit.h>

typedef struct probe {
    int fd; /* the listening socket named "web", owned by the host */
    hk_logger_t *log;
} probe_t;

static int web_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    probe_t *p = hk_service_data(svc);
    hk_host_t *h = hk_service_host(svc);
    p->log = hk_host_logger(h, "Probe");
    size_t n = hk_host_listen_fd_count(h);
    p->fd = hk_host_listen_fd_by_name(h, "web");
    if (p->fd < 0)
        return hk_service_fail(svc, -ENOENT, "no descriptor named web among the %zu passed", n);
    int flags = fcntl(p->fd, F_GETFD);
    bool env_left = getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES");
    hk_info(p->log, "listening on fd %d named web", p->fd);
    hk_info(p->log, "%zu descriptor%s passed, FD_CLOEXEC %s, LISTEN_* %s", n, n == 1 ? "" : "s",
            flags >= 0 && (flags & FD_CLOEXEC) ? "set" : "not set", env_left ? "still set" : "unset");
    return 0;
}

/* Waits until fd is readable or the stopping token is cancelled (false). */
static bool wait_readable(int fd, hk_token_t *stopping) {
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = hk_token_fd(stopping), .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            return false;
        if (pfd[1].revents)
            return false;
        if (pfd[0].revents)
            return true;
    }
}

static int serve(hk_service_t *svc, hk_token_t *stopping) {
    probe_t *p = hk_service_data(svc);
    /* The connection that made systemd-socket-activate start us is already
     * waiting: serve it only once the host has started, so that the stop
     * below stops a running host, not one still starting. */
    int started = hk_token_fd(hk_host_started(hk_service_host(svc)));
    if (started < 0)
        return hk_service_fail(svc, started, "hk_token_fd");
    if (!wait_readable(started, stopping) || !wait_readable(p->fd, stopping))
        return 0; /* stopped first */
    int c = accept4(p->fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return hk_service_fail(svc, -errno, "accept on fd %d", p->fd);
    static const char hello[] = "hello\n";
    ssize_t w = write(c, hello, sizeof hello - 1);
    int err = w < 0 ? -errno : 0;
    close(c);
    if (w != (ssize_t)(sizeof hello - 1))
        return hk_service_fail(svc, err ? err : -EIO, "writing hello");
    hk_info(p->log, "served one connection");
    hk_host_stop(hk_service_host(svc));
    return 0;
}

int main(int argc, char **argv) {
    static probe_t probe = {.fd = -1};
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_builder_add_hosted(b, "web", web_start, NULL, &probe, NULL);
    hk_builder_add_background(b, "serve", serve, &probe, NULL);
    return hk_builder_run(b);
}
