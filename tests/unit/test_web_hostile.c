/*
 * Hostile input on raw sockets, one test per issue the review of src/web
 * (and fuzz_web_request) found, plus the cases the review checked:
 *  - a file response on a FIFO must not block an engine thread;
 *  - dot segments ("..", ".", also percent-encoded) in a path are 400, so a
 *    catch-all value never climbs out of a directory;
 *  - 405 from a health/metrics endpoint carries Allow;
 *  - a huge MaxRequestHeadersBytes does not make every connection fail
 *    (the engine's per-connection memory is capped, not size * 2);
 *  - repeated Content-Length or Transfer-Encoding headers are 400 and close
 *    (the engine frames by the first one: request smuggling);
 *  - an async request whose client went away before hk_web_complete is
 *    released, and the server keeps serving;
 *  - many pipelined requests in one write are all answered, in order;
 *  - a body trickled byte by byte is cut off (slow body: the watchdog's
 *    minimum body rate, after the header timeout as a grace period).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "webtest.h"
#include "web/web_int.h"

static srv_t S;

/* Every request and connection the server tracked is released. */
static bool released(void *arg) {
    hk_web_t *web = arg;
    pthread_mutex_lock(&web->mu);
    bool idle = web->inflight == 0 && web->suspended == NULL;
    pthread_mutex_unlock(&web->mu);
    return idle;
}

/* ---- file responses -------------------------------------------------------------------- */

static int h_file(hk_web_request_t *req, void *data) {
    int rc = hk_web_response_file(req, data, NULL);
    if (rc < 0)
        return hk_web_response_text(req, 404, NULL, hk_strerror(rc));
    return 0;
}

static void test_file_response_on_a_fifo_does_not_block(void **state) {
    (void)state;
    char dir[] = "/tmp/hk-web-hostile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Threads", "1"); /* a blocked thread stalls everyone */
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "GET", "/fifo", h_file, fifo);
    assert_true(srv_start(&S, b, web));
    resp_t r;
    /* open(2) on a FIFO with no writer would wait for one forever */
    assert_int_equal(http_do(S.port, GET("/fifo"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
    unlink(fifo);
    rmdir(dir);
}

/* ---- paths ------------------------------------------------------------------------------ */

static int h_rest(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, NULL, hk_web_request_param(req, "rest"));
}

static void test_dot_segments_are_400(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "GET", "/files/{*rest}", h_rest, NULL);
    assert_true(srv_start(&S, b, web));
    resp_t r;
    static const char *const bad[] = {
        GET("/files/../secret"),       GET("/files/a/../../secret"), GET("/files/%2e%2e/secret"),
        GET("/files/%2E%2e/%2e%2e/x"), GET("/files/./x"),            GET("/files/x/%2e"),
        GET("/files/.."),
    };
    for (size_t i = 0; i < HK_ARRAY_SIZE(bad); i++) {
        assert_int_equal(http_do(S.port, bad[i], &r), 0);
        if (r.status != 400)
            fail_msg("%s -> %d (%s)", bad[i], r.status, r.body);
        resp_free(&r);
    }
    /* dots inside a segment are fine */
    assert_int_equal(http_do(S.port, GET("/files/a..b/.c/d."), &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a..b/.c/d.");
    resp_free(&r);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

/* ---- endpoints ---------------------------------------------------------------------------- */

static void test_endpoint_405_has_allow(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/", h_text, "ok");
    assert_true(srv_start(&S, b, web));
    resp_t r;
    char v[64];
    assert_int_equal(http_do(S.port, "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(resp_header(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, HEAD");
    resp_free(&r);
    assert_int_equal(srv_stop(&S), 0);
}

/* ---- limits ------------------------------------------------------------------------------ */

static void test_huge_header_limit_still_serves(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Limits:MaxRequestHeadersBytes", "1TiB");
    hk_web_map(web, "GET", "/", h_text, "ok");
    assert_true(srv_start(&S, b, web));
    still_serves(S.port);
    /* headers beyond the engine's memory are still refused, not a crash */
    size_t big = 20u * 1024 * 1024;
    char *raw = malloc(big + 64);
    int n = snprintf(raw, 64, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(raw + n, 'a', big);
    memcpy(raw + n + big, "\r\n\r\n", 5);
    resp_t r;
    int rc = http_do(S.port, raw, &r);
    assert_true(rc < 0 || r.status == 431);
    if (rc == 0)
        resp_free(&r);
    free(raw);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

static void test_conflicting_content_lengths_are_400(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "POST", "/echo", h_echo, NULL);
    assert_true(srv_start(&S, b, web));
    expect_status_then_close(S.port,
                             "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
                             "abcdGET / HTTP/1.1\r\nHost: t\r\n\r\n",
                             400);
    /* the same with two Transfer-Encoding headers: the engine reads the first */
    expect_status_then_close(S.port,
                             "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                             "0\r\n\r\n",
                             400);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

/* ---- async ------------------------------------------------------------------------------ */

static _Atomic(hk_web_request_t *) parked;

static int h_park(hk_web_request_t *req, void *data) {
    (void)data;
    atomic_store(&parked, req);
    return HK_WEB_ASYNC;
}

static bool is_parked(void *arg) {
    (void)arg;
    return atomic_load(&parked) != NULL;
}

static void test_async_request_whose_client_left(void **state) {
    (void)state;
    atomic_store(&parked, NULL);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "GET", "/park", h_park, NULL);
    assert_true(srv_start(&S, b, web));
    int fd = http_connect(S.port);
    http_send(fd, GET("/park"), strlen(GET("/park")));
    assert_true(wait_until(is_parked, NULL, 5000));
    close(fd); /* gone before the application answers */
    still_serves(S.port);
    hk_web_request_t *req = atomic_exchange(&parked, NULL);
    hk_web_response_text(req, 200, NULL, "too late");
    hk_web_complete(req);
    assert_true(wait_until(released, web, 5000));
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

/* ---- pipelining ------------------------------------------------------------------------- */

static int h_name(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, NULL, hk_web_request_param(req, "n"));
}

static void test_pipelined_requests_answered_in_order(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "GET", "/n/{n}", h_name, NULL);
    assert_true(srv_start(&S, b, web));
    enum { N = 200 };
    static char raw[N * 64];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(raw + len, sizeof raw - len, "GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    int fd = http_connect(S.port);
    http_send(fd, raw, len);
    for (int i = 0; i < N; i++) {
        resp_t r;
        assert_int_equal(http_read(fd, &r, false, 5000), 0);
        assert_int_equal(r.status, 200);
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(r.body, want);
        resp_free(&r);
    }
    close(fd);
    assert_int_equal(srv_stop(&S), 0);
}

/* ---- slow body ------------------------------------------------------------------------ */

static void test_slow_body_is_cut_off(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Limits:RequestHeadersTimeoutSeconds", "0.3");
    hk_web_map(web, "GET", "/", h_text, "ok");
    hk_web_map(web, "POST", "/echo", h_echo, NULL);
    assert_true(srv_start(&S, b, web));
    /* a body within the limit arriving at once is fine */
    resp_t r;
    assert_int_equal(http_do(S.port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* headers at once, then one body byte every 50 ms (20 B/s): each byte
     * resets the engine's idle timeout, but not the minimum body rate */
    int fd = http_connect(S.port);
    const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n";
    http_send(fd, head, strlen(head));
    uint64_t t0 = mono_ns();
    bool closed = false;
    char buf[256];
    for (int i = 0; i < 1000 && !closed; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) < 0)
            closed = true;
        else if (read_some(fd, buf, sizeof buf, 50) == 0)
            closed = true;
    }
    assert_true(closed);
    /* not before the grace period (the header timeout) */
    assert_true(mono_ns() - t0 >= 300000000u);
    close(fd);
    still_serves(S.port);
    assert_int_equal(srv_stop(&S), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_response_on_a_fifo_does_not_block, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_dot_segments_are_400, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_endpoint_405_has_allow, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_huge_header_limit_still_serves, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_content_lengths_are_400, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_async_request_whose_client_left, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_requests_answered_in_order, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_slow_body_is_cut_off, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
