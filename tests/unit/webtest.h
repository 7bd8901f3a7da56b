/*
 * Helpers for the web host tests: a host running on a thread of its own
 * with the web server on 127.0.0.1:0, and a tiny HTTP/1.1 client on plain
 * sockets (send raw bytes, read one response, see the peer close), and the
 * handlers and checks several web tests share.
 */
#ifndef HK_WEBTEST_H
#define HK_WEBTEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hostkit/web.h>

#include "hosttest.h"

/* ---- a server on a thread ---------------------------------------------------------- */

typedef struct srv {
    hk_host_t *h;
    hk_web_t *web;
    pthread_t th;
    int rc;
    int port;
} srv_t;

static void *srv_main(void *arg) {
    srv_t *s = arg;
    s->rc = hk_host_run(s->h);
    return NULL;
}

static bool srv_started_or_stopped(void *arg) {
    srv_t *s = arg;
    return hk_token_is_cancelled(hk_host_started(s->h)) ||
           hk_token_is_cancelled(hk_host_stopped(s->h));
}

/* A builder with logs captured and the web server on an ephemeral port. */
static inline hk_builder_t *web_builder(hk_web_t **ret_web) {
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Web:Urls", "http://127.0.0.1:0");
    hk_config_set(hk_builder_config(b), "Web:Threads", "2");
    assert_int_equal(hk_builder_add_web(b, ret_web), 0);
    return b;
}

/* Builds, runs on a thread, waits until started. Returns false if the start failed. */
static inline bool srv_start(srv_t *s, hk_builder_t *b, hk_web_t *web) {
    memset(s, 0, sizeof *s);
    s->web = web;
    assert_int_equal(hk_builder_build(b, &s->h), 0);
    hk_builder_free(b);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
    assert_true(wait_until(srv_started_or_stopped, s, 10000));
    if (!hk_token_is_cancelled(hk_host_started(s->h)))
        return false;
    s->port = web && hk_web_listener_count(web) ? hk_web_listener_port(web, 0) : 0;
    return true;
}

/* Requests a stop, joins, frees; returns the exit code. */
static inline int srv_stop(srv_t *s) {
    hk_host_stop(s->h);
    pthread_join(s->th, NULL);
    hk_host_free(s->h);
    s->h = NULL;
    return s->rc;
}

/* ---- the client ----------------------------------------------------------------------- */

static inline int http_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static inline void http_send(int fd, const char *raw, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, raw + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close early (413, 431): the response tells */
        off += (size_t)n;
    }
}

typedef struct resp {
    int status;
    char head[8192];
    char *body;
    size_t body_len;
    bool closed; /* the server closed the connection after this response */
} resp_t;

static inline void resp_free(resp_t *r) {
    free(r->body);
    r->body = NULL;
}

/* A header value from the response head (case-insensitive name), copied to buf; NULL if absent. */
static inline const char *resp_header(const resp_t *r, const char *name, char *buf, size_t len) {
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            snprintf(buf, len, "%.*s", (int)vl, v);
            return buf;
        }
    }
    return NULL;
}

/* Reads with a deadline; returns bytes, 0 on EOF, -1 on timeout or error. */
static inline ssize_t read_some(int fd, char *buf, size_t len, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, len, 0);
    return n < 0 ? (errno == ECONNRESET ? 0 : -1) : n;
}

/* Reads one response (head, then Content-Length bytes; HEAD: no body). Returns 0 or -1. */
static inline int http_read(int fd, resp_t *r, bool head_request, int timeout_ms) {
    memset(r, 0, sizeof *r);
    size_t hl = 0;
    char *end = NULL;
    while (!(end = strstr(r->head, "\r\n\r\n"))) {
        if (hl + 1 >= sizeof r->head)
            return -1;
        /* byte by byte so nothing past this response is consumed */
        ssize_t n = read_some(fd, r->head + hl, 1, timeout_ms);
        if (n <= 0)
            return -1;
        hl += (size_t)n;
        r->head[hl] = 0;
    }
    end[2] = 0; /* keep the last header's CRLF for resp_header */
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    char v[64];
    size_t cl = resp_header(r, "Content-Length", v, sizeof v) ? strtoul(v, NULL, 10) : 0;
    if (head_request)
        cl = 0;
    r->body = calloc(1, cl + 1);
    while (r->body_len < cl) {
        ssize_t n = read_some(fd, r->body + r->body_len, cl - r->body_len, timeout_ms);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
    }
    const char *c = resp_header(r, "Connection", v, sizeof v);
    r->closed = c && !strcasecmp(c, "close");
    return 0;
}

/* Whether the peer closes the connection within timeout_ms (reads and drops any data). */
static inline bool peer_closes(int fd, int timeout_ms) {
    char buf[4096];
    uint64_t until = mono_ns() + (uint64_t)timeout_ms * 1000000u;
    while (mono_ns() < until) {
        ssize_t n = read_some(fd, buf, sizeof buf, 50);
        if (n == 0)
            return true;
    }
    return false;
}

/* One request on a new connection. */
static inline int http_do(int port, const char *raw, resp_t *r) {
    int fd = http_connect(port);
    if (fd < 0)
        return fd;
    http_send(fd, raw, strlen(raw));
    int rc = http_read(fd, r, !strncmp(raw, "HEAD ", 5), 5000);
    close(fd);
    return rc;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- shared handlers and checks --------------------------------------------------------- */

/* Answers 200 with the route's data (a string) as text/plain. */
static inline int h_text(hk_web_request_t *req, void *data) {
    return hk_web_response_text(req, 200, NULL, data);
}

/* Answers 200 with the request body (buffered) as it came. */
static inline int h_echo(hk_web_request_t *req, void *data) {
    (void)data;
    size_t n;
    const char *body = hk_web_request_body(req, &n);
    return hk_web_response_body(req, body, n);
}

/* GET / on a new connection is answered 200 (the test maps "/" to h_text). */
static inline void still_serves(int port) {
    resp_t r;
    assert_int_equal(http_do(port, GET("/"), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

/* Sends raw on a new connection: the one response has `status`, then the
 * server closes the connection. */
static inline void expect_status_then_close(int port, const char *raw, int status) {
    resp_t r;
    int fd = http_connect(port);
    http_send(fd, raw, strlen(raw));
    assert_int_equal(http_read(fd, &r, false, 5000), 0);
    assert_int_equal(r.status, status);
    resp_free(&r);
    assert_true(peer_closes(fd, 5000));
    close(fd);
}

#endif
