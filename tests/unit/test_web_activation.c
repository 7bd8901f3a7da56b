/*
 * The web host on a socket-activated listener (src/web/web.c take_activated,
 * web_stop): the descriptor is shared with the service manager, which keeps
 * listening on it after the service stopped (and starts the service again on
 * the next connection). So the drain must stop accepting on it without
 * shutdown(2), which would take the shared socket out of LISTEN for systemd
 * too (systemd 252: "Got POLLHUP on a listening socket", the .socket unit
 * fails with result 'resources', the port refuses connections).
 *
 * Each case runs in a forked child, where descriptor 3 and LISTEN_* can be
 * arranged as a service manager does; it reports its first failure through a
 * pipe and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hostkit/web.h>

#include "childtest.h"

#define DEADLINE_MS 10000

/* ---- in the child --------------------------------------------------------------------- */

static int hello(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, "text/plain", "hi");
}

typedef struct run {
    hk_host_t *h;
    int rc;
} run_t;

static void *run_main(void *arg) {
    run_t *r = arg;
    r->rc = hk_host_run(r->h);
    return NULL;
}

static bool started_or_stopped(void *arg) {
    hk_host_t *h = arg;
    return hk_token_is_cancelled(hk_host_started(h)) || hk_token_is_cancelled(hk_host_stopped(h));
}

static int connect_to(int port) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHILD_CHECK(c >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(c);
        return -1;
    }
    return c;
}

/* One GET / on a new connection: true when "200" and the body "hi" came back. */
static bool get_hello(int port) {
    int c = connect_to(port);
    if (c < 0)
        return false;
    static const char rq[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHILD_CHECK(write(c, rq, sizeof rq - 1) == (ssize_t)(sizeof rq - 1));
    char buf[1024];
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {.fd = c, .events = POLLIN};
        CHILD_CHECK(poll(&pfd, 1, DEADLINE_MS) == 1);
        ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(c);
    buf[got] = '\0';
    return strncmp(buf, "HTTP/1.1 200 ", 13) == 0 && got >= 2 && !strcmp(buf + got - 2, "hi");
}

static void served_activated_socket_still_listens_for_the_manager_after_stop_body(void) {
    /* What systemd does: a listening socket it keeps, a copy on fd 3. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHILD_CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHILD_CHECK(listen(l, 16) == 0);
    socklen_t sl = sizeof sa;
    CHILD_CHECK(getsockname(l, (struct sockaddr *)&sa, &sl) == 0);
    int port = ntohs(sa.sin_port);
    int manager = fcntl(l, F_DUPFD_CLOEXEC, 30); /* the manager's own copy */
    CHILD_CHECK(manager >= 30);
    if (l != 3) {
        CHILD_CHECK(dup2(l, 3) == 3);
        close(l);
    }
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    CHILD_CHECK(setenv("LISTEN_PID", pid, 1) == 0);
    CHILD_CHECK(setenv("LISTEN_FDS", "1", 1) == 0);
    CHILD_CHECK(setenv("LISTEN_FDNAMES", "web", 1) == 0);

    hk_builder_t *b = hk_builder_new(0, NULL);
    CHILD_CHECK(b != NULL);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    hk_config_t *cfg = hk_builder_config(b);
    CHILD_CHECK(hk_config_set(cfg, "Host:HandleSignals", "false") == 0);
    CHILD_CHECK(hk_config_set(cfg, "Web:ListenFdName", "web") == 0);
    CHILD_CHECK(hk_config_set(cfg, "Web:Threads", "2") == 0);
    hk_web_t *web = NULL;
    CHILD_CHECK(hk_builder_add_web(b, &web) == 0);
    CHILD_CHECK(hk_web_map(web, "GET", "/", hello, NULL) == 0);
    run_t r = {0};
    CHILD_CHECK(hk_builder_build(b, &r.h) == 0);
    hk_builder_free(b);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, NULL, run_main, &r) == 0);
    CHILD_CHECK(wait_until(started_or_stopped, r.h, DEADLINE_MS));
    CHILD_CHECK(hk_token_is_cancelled(hk_host_started(r.h)));
    CHILD_CHECK(hk_web_listener_count(web) == 1);
    CHILD_CHECK(hk_web_listener_port(web, 0) == port); /* the passed socket, nothing bound */
    CHILD_CHECK(get_hello(port));

    hk_host_stop(r.h);
    CHILD_CHECK(pthread_join(th, NULL) == 0);
    CHILD_CHECK(r.rc == 0);
    CHILD_CHECK(capture_find(cap, "Now listening on: http://127.0.0.1:", 0) >= 0);
    hk_host_free(r.h);
    CHILD_CHECK(fcntl(3, F_GETFD) < 0 && errno == EBADF); /* the host's copy is closed */

    /* The manager's copy still listens: no hang-up, a new connection queues on it. */
    struct pollfd pfd = {.fd = manager, .events = POLLIN};
    CHILD_CHECK(poll(&pfd, 1, 0) == 0); /* no POLLHUP/POLLERR, nothing pending */
    int acc;
    socklen_t al = sizeof acc;
    CHILD_CHECK(getsockopt(manager, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1);
    int c = connect_to(port);
    CHILD_CHECK(c >= 0); /* ECONNREFUSED when the drain shut the shared socket down */
    pfd.revents = 0;
    CHILD_CHECK(poll(&pfd, 1, DEADLINE_MS) == 1 && pfd.revents == POLLIN);
    int a = accept4(manager, NULL, NULL, SOCK_CLOEXEC);
    CHILD_CHECK(a >= 0);
    close(a);
    close(c);
    close(manager);
}

static void served_activated_socket_still_listens_for_the_manager_after_stop(void **state) {
    (void)state;
    run_child(served_activated_socket_still_listens_for_the_manager_after_stop_body, false);
}

/* The control: a listener the host bound itself (Web:Urls) refuses connections
 * once the drain began, and after the stop. */
static void own_listener_refuses_connections_after_stop_body(void) {
    hk_builder_t *b = hk_builder_new(0, NULL);
    CHILD_CHECK(b != NULL);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    hk_config_t *cfg = hk_builder_config(b);
    CHILD_CHECK(hk_config_set(cfg, "Host:HandleSignals", "false") == 0);
    CHILD_CHECK(hk_config_set(cfg, "Web:Urls", "http://127.0.0.1:0") == 0);
    hk_web_t *web = NULL;
    CHILD_CHECK(hk_builder_add_web(b, &web) == 0);
    CHILD_CHECK(hk_web_map(web, "GET", "/", hello, NULL) == 0);
    run_t r = {0};
    CHILD_CHECK(hk_builder_build(b, &r.h) == 0);
    hk_builder_free(b);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, NULL, run_main, &r) == 0);
    CHILD_CHECK(wait_until(started_or_stopped, r.h, DEADLINE_MS));
    int port = hk_web_listener_port(web, 0);
    CHILD_CHECK(port > 0);
    CHILD_CHECK(get_hello(port));
    hk_host_stop(r.h);
    CHILD_CHECK(pthread_join(th, NULL) == 0);
    CHILD_CHECK(r.rc == 0);
    hk_host_free(r.h);
    int c = connect_to(port);
    CHILD_CHECK(c < 0 && errno == ECONNREFUSED);
}

static void own_listener_refuses_connections_after_stop(void **state) {
    (void)state;
    run_child(own_listener_refuses_connections_after_stop_body, false);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(served_activated_socket_still_listens_for_the_manager_after_stop),
        cmocka_unit_test(own_listener_refuses_connections_after_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
