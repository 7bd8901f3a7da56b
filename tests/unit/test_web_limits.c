/*
 * Limits and bad input on raw sockets: headers over the limit (431), body
 * over the limit by Content-Length and by chunks (413), a streaming route's
 * own limit, malformed requests (400), Content-Length with
 * Transfer-Encoding (400 and closed), bad chunking (400), slow headers
 * (slowloris: closed after RequestHeadersTimeoutSeconds), MaxConnections;
 * other clients keep being served.
 */
#include "webtest.h"

typedef struct stream_count {
    atomic_size_t bytes;
} stream_count_t;

static int on_chunk(hk_web_request_t *req, const void *chunk, size_t len, void *data) {
    (void)req;
    (void)chunk;
    stream_count_t *c = data;
    atomic_fetch_add(&c->bytes, len);
    return 0;
}

static int h_streamed(hk_web_request_t *req, void *data) {
    stream_count_t *c = data;
    char t[64];
    size_t n;
    snprintf(t, sizeof t, "%zu body=%s", atomic_load(&c->bytes),
             hk_web_request_body(req, &n) ? "buffered" : "none");
    return hk_web_response_text(req, 200, NULL, t);
}

static srv_t S;
static stream_count_t SC;

static void start(hk_builder_t *b, hk_web_t *web) {
    atomic_store(&SC.bytes, 0);
    hk_web_map(web, "POST", "/echo", h_echo, NULL);
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_route_def_t sd = {.method = "PUT", .pattern = "/upload", .handler = h_streamed,
                             .data = &SC, .on_body = on_chunk, .max_body_bytes = 1000000};
    assert_int_equal(hk_web_add_route(web, &sd), 0);
    assert_true(srv_start(&S, b, web));
}

static void test_limits(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Web:Limits:MaxRequestHeadersBytes", "4KiB");
    hk_config_set(c, "Web:Limits:MaxRequestBodyBytes", "1000");
    start(b, web);
    resp_t r;

    /* 431: one big header */
    char big[8192];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 5000);
    strcpy(big + n + 5000, "\r\n\r\n");
    assert_int_equal(http_do(S.port, big, &r), 0);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    /* just under the limit passes */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 3000);
    strcpy(big + n + 3000, "\r\n\r\n");
    assert_int_equal(http_do(S.port, big, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* 413 by Content-Length, answered before the body is sent */
    assert_int_equal(http_do(S.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 413);
    assert_true(r.closed);
    resp_free(&r);
    /* 413 by chunks */
    int fd = http_connect(S.port);
    const char *hdr = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    http_send(fd, hdr, strlen(hdr));
    char chunk[700 + 16];
    n = snprintf(chunk, sizeof chunk, "2bc\r\n");
    memset(chunk + n, 'x', 700);
    memcpy(chunk + n + 700, "\r\n", 2);
    http_send(fd, chunk, (size_t)n + 702);
    http_send(fd, chunk, (size_t)n + 702);
    http_send(fd, "0\r\n\r\n", 5);
    assert_int_equal(http_read(fd, &r, false, 5000), 0);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    assert_true(peer_closes(fd, 5000));
    close(fd);
    /* within the limit, chunked: echoed */
    assert_int_equal(http_do(S.port,
                             "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abcde");
    resp_free(&r);

    /* a streaming route with its own limit: not buffered */
    static char up[4096 + 256];
    n = snprintf(up, sizeof up, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n");
    memset(up + n, 'u', 4096);
    up[n + 4096] = 0;
    assert_int_equal(http_do(S.port, up, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "4096 body=none");
    resp_free(&r);

    /* 400: Content-Length and Transfer-Encoding together; the connection closes */
    expect_status_then_close(S.port,
                             "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                             400);

    /* 400: bad chunk size */
    expect_status_then_close(S.port,
                             "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "zz\r\nabc\r\n0\r\n\r\n",
                             400);

    /* a request line the engine cannot parse at all: closed without an answer */
    fd = http_connect(S.port);
    http_send(fd, "GARBAGE\r\n\r\n", 11);
    assert_true(peer_closes(fd, 5000));
    close(fd);
    /* 400: malformed method, malformed header line */
    assert_int_equal(http_do(S.port, "G\x01T / HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    assert_int_equal(http_do(S.port, "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    /* HTTP/1.1 without Host */
    assert_int_equal(http_do(S.port, "GET / HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

/* With the default 32 KiB limit (the engine's per-connection memory is sized
 * from it, MaxRequestHeadersBytes + 8 KiB): headers just under it are served,
 * again and again, and over it get 431. */
static void test_default_header_limit_boundary(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    start(b, web);
    static char big[40 * 1024];
    resp_t r;
    for (int round = 0; round < 3; round++) {
        int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
        memset(big + n, 'a', 31 * 1024);
        strcpy(big + n + 31 * 1024, "\r\n\r\n");
        assert_int_equal(http_do(S.port, big, &r), 0);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 33 * 1024);
    strcpy(big + n + 33 * 1024, "\r\n\r\n");
    assert_int_equal(http_do(S.port, big, &r), 0);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

static void test_slow_headers_are_cut_off(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Limits:RequestHeadersTimeoutSeconds", "0.3");
    start(b, web);
    int fd = http_connect(S.port);
    uint64_t t0 = mono_ns();
    /* trickle a header byte every 50 ms: never idle long enough for an idle timeout */
    const char *part = "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool closed = false;
    char buf[256];
    for (size_t i = 0; part[i] && !closed; i++) {
        if (send(fd, part + i, 1, MSG_NOSIGNAL) < 0) {
            closed = true;
            break;
        }
        ssize_t rn = read_some(fd, buf, sizeof buf, 50);
        if (rn == 0)
            closed = true;
    }
    if (!closed)
        closed = peer_closes(fd, 5000);
    assert_true(closed);
    /* not before the timeout */
    assert_true(mono_ns() - t0 >= 300000000u);
    close(fd);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

static void test_max_connections(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Threads", "1");
    hk_config_set(hk_builder_config(b), "Web:Limits:MaxConnections", "2");
    start(b, web);
    resp_t r;
    int a = http_connect(S.port), c2 = http_connect(S.port);
    http_send(a, GET("/"), strlen(GET("/")));
    assert_int_equal(http_read(a, &r, false, 5000), 0);
    resp_free(&r);
    http_send(c2, GET("/"), strlen(GET("/")));
    assert_int_equal(http_read(c2, &r, false, 5000), 0);
    resp_free(&r);
    /* a third one waits in the kernel's backlog: not served while two are open */
    int c3 = http_connect(S.port);
    assert_true(c3 >= 0);
    http_send(c3, GET("/"), strlen(GET("/")));
    char buf[64];
    assert_int_equal(read_some(c3, buf, sizeof buf, 300), -1);
    /* ... and served once a slot frees */
    close(a);
    assert_int_equal(http_read(c3, &r, false, 5000), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    close(c3);
    close(c2);
    srv_stop(&S);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limits, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_default_header_limit_boundary, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_slow_headers_are_cut_off, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_max_connections, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
