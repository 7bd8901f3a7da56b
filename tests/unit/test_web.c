/*
 * The web host's application API over real sockets on 127.0.0.1:0:
 * routing results (404, 405 + Allow, HEAD), request accessors, responses
 * and JSON, async completion from another thread, the per-request scope,
 * middleware order, request logs and the two HTTP metric series.
 */
#include "webtest.h"

/* ---- handlers ------------------------------------------------------------------------ */

static int h_describe(hk_web_request_t *req, void *data) {
    (void)data;
    json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "method",
                          hk_web_request_method(req), "path", hk_web_request_path(req), "route",
                          hk_web_request_route(req), "id", hk_web_request_param(req, "id"), "q",
                          hk_web_request_query(req, "q"), "x", hk_web_request_query(req, "x"),
                          "hdr", hk_web_request_header(req, "x-test"), "missing",
                          hk_web_request_query(req, "nope"));
    hk_web_response_header(req, "X-Handler", "describe");
    return hk_web_response_json(req, 200, j);
}

static int h_json_in(hk_web_request_t *req, void *data) {
    (void)data;
    json_t *in = NULL;
    char err[128];
    int rc = hk_web_request_json(req, &in, err, sizeof err);
    if (rc < 0)
        return hk_web_response_json(req, 400, json_pack("{s:s}", "error", err));
    json_t *n = json_object_get(in, "n");
    json_t *out = json_pack("{s:I}", "twice", (json_int_t)(json_integer_value(n) * 2));
    json_decref(in);
    return hk_web_response_json(req, 201, out);
}

static int h_fail(hk_web_request_t *req, void *data) {
    (void)req;
    (void)data;
    return -EIO;
}

static int h_file(hk_web_request_t *req, void *data) {
    int rc = hk_web_response_file(req, data, NULL);
    if (rc < 0)
        return hk_web_response_text(req, 404, NULL, "no file");
    return 0;
}

static void test_routes_accessors_and_responses(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    assert_int_equal(hk_web_map(web, "GET", "/users/{id}", h_describe, NULL), 0);
    assert_int_equal(hk_web_map(web, "POST", "/users/{id}", h_describe, NULL), 0);
    assert_int_equal(hk_web_map(web, "POST", "/json", h_json_in, NULL), 0);
    assert_int_equal(hk_web_map(web, "GET", "/fail", h_fail, NULL), 0);
    assert_int_equal(hk_web_map(web, "GET", "/text", h_text, "plain text"), 0);
    assert_int_equal(hk_web_map(web, "GET", "/file", h_file, "/proc/self/../version"), 0);
    assert_int_equal(hk_web_map(web, "GET", "/nofile", h_file, "/nonexistent/x.txt"), 0);
    srv_t s;
    assert_true(srv_start(&s, b, web));
    assert_int_not_equal(s.port, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    assert_string_equal(hk_web_listener_url(web, 0), url);
    assert_false(hk_web_listener_is_management(web, 0));
    assert_logged("Now listening on: http://127.0.0.1:");

    resp_t r;
    assert_int_equal(http_do(s.port,
                             "GET /users/a%20b?q=one+two&x=%41%42 HTTP/1.1\r\nHost: t\r\n"
                             "X-Test: hi\r\n\r\n",
                             &r),
                     0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/users/a%20b");
    assert_string_equal(json_string_value(json_object_get(j, "route")), "/users/{id}");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "a b");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "one two");
    assert_string_equal(json_string_value(json_object_get(j, "x")), "AB");
    assert_string_equal(json_string_value(json_object_get(j, "hdr")), "hi");
    assert_true(json_is_null(json_object_get(j, "missing")));
    json_decref(j);
    char v[128];
    assert_string_equal(resp_header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_string_equal(resp_header(&r, "X-Handler", v, sizeof v), "describe");
    resp_free(&r);

    /* HEAD from GET: headers with the GET body's length, no body. */
    assert_int_equal(http_do(s.port, "HEAD /text HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Length", v, sizeof v), "10");
    resp_free(&r);

    assert_int_equal(http_do(s.port, GET("/nowhere"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    assert_int_equal(http_do(s.port, "DELETE /users/1 HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(resp_header(&r, "Allow", v, sizeof v));
    assert_non_null(strstr(v, "GET"));
    assert_non_null(strstr(v, "POST"));
    resp_free(&r);

    /* JSON in and out; bad JSON answered 400 by the handler. */
    assert_int_equal(http_do(s.port,
                             "POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n{\"n\":21}",
                             &r),
                     0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"twice\":42}");
    resp_free(&r);
    assert_int_equal(http_do(s.port,
                             "POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n{x}", &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "error"));
    resp_free(&r);

    /* A failing handler: 500, logged. */
    assert_int_equal(http_do(s.port, GET("/fail"), &r), 0);
    assert_int_equal(r.status, 500);
    resp_free(&r);

    assert_int_equal(http_do(s.port, GET("/text"), &r), 0);
    assert_string_equal(r.body, "plain text");
    assert_string_equal(resp_header(&r, "Content-Type", v, sizeof v), "text/plain; charset=utf-8");
    resp_free(&r);

    assert_int_equal(http_do(s.port, GET("/nofile"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    assert_int_equal(srv_stop(&s), 0);
    assert_logged("handler for {GET /fail} failed");
}

static void test_file_response(void **state) {
    (void)state;
    char path[] = "/tmp/hk_web_fileXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
    close(fd);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/f", h_file, path);
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    assert_int_equal(http_do(s.port, GET("/f"), &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof big);
    assert_memory_equal(r.body, big, sizeof big);
    char v[64];
    assert_string_equal(resp_header(&r, "Content-Type", v, sizeof v), "application/octet-stream");
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
    unlink(path);
}

/* ---- async ------------------------------------------------------------------------------ */

static void *complete_later(void *arg) {
    hk_web_request_t *req = arg;
    hk_web_response_text(req, 202, NULL, "done elsewhere");
    hk_web_complete(req);
    return NULL;
}

static pthread_t async_thread;
static atomic_int handler_tid;

static int h_async(hk_web_request_t *req, void *data) {
    (void)data;
    atomic_store(&handler_tid, current_tid());
    pthread_create(&async_thread, NULL, complete_later, req);
    return HK_WEB_ASYNC;
}

static int h_async_now(hk_web_request_t *req, void *data) {
    (void)data;
    /* completed before the handler returns: must not be lost or doubled */
    hk_web_response_text(req, 200, NULL, "early");
    hk_web_complete(req);
    return HK_WEB_ASYNC;
}

static void test_async_completion_from_another_thread(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/async", h_async, NULL);
    hk_web_map(web, "GET", "/early", h_async_now, NULL);
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(http_do(s.port, GET("/async"), &r), 0);
        pthread_join(async_thread, NULL);
        assert_int_equal(r.status, 202);
        assert_string_equal(r.body, "done elsewhere");
        resp_free(&r);
    }
    /* keep-alive across async responses */
    int fd = http_connect(s.port);
    for (int i = 0; i < 3; i++) {
        http_send(fd, GET("/early"), strlen(GET("/early")));
        assert_int_equal(http_read(fd, &r, false, 5000), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "early");
        assert_false(r.closed);
        resp_free(&r);
    }
    close(fd);
    assert_int_equal(srv_stop(&s), 0);
}

/* ---- scopes ----------------------------------------------------------------------------- */

static atomic_int scoped_created, scoped_freed;

static int make_scoped(hk_scope_t *scope, void *data, void **ret) {
    (void)scope;
    (void)data;
    atomic_fetch_add(&scoped_created, 1);
    *ret = malloc(1);
    return 0;
}
static void free_scoped(void *inst, void *data) {
    (void)data;
    free(inst);
    atomic_fetch_add(&scoped_freed, 1);
}

static int h_scoped(hk_web_request_t *req, void *data) {
    (void)data;
    void *a = NULL, *b = NULL;
    hk_scope_t *sc = hk_web_request_scope(req);
    if (!sc || hk_scope_get(sc, "Session", &a) < 0 || hk_scope_get(sc, "Session", &b) < 0)
        return -EIO;
    char t[64];
    snprintf(t, sizeof t, "same=%d freed=%d", a == b, atomic_load(&scoped_freed));
    return hk_web_response_text(req, 200, NULL, t);
}

static bool one_freed(void *arg) {
    (void)arg;
    return atomic_load(&scoped_freed) == 1;
}

static void test_scope_per_request_freed_after_response(void **state) {
    (void)state;
    atomic_store(&scoped_created, 0);
    atomic_store(&scoped_freed, 0);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    assert_int_equal(hk_services_add_scoped(hk_builder_services(b), "Session", make_scoped,
                                            free_scoped, NULL, NULL),
                     0);
    hk_web_map(web, "GET", "/s", h_scoped, NULL);
    hk_web_map(web, "GET", "/t", h_text, "no scope");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    assert_int_equal(http_do(s.port, GET("/s"), &r), 0);
    assert_string_equal(r.body, "same=1 freed=0");
    resp_free(&r);
    assert_true(wait_until(one_freed, NULL, 5000));
    assert_int_equal(atomic_load(&scoped_created), 1);
    /* A request that never asks for its scope creates nothing. */
    assert_int_equal(http_do(s.port, GET("/t"), &r), 0);
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/s"), &r), 0);
    assert_string_equal(r.body, "same=1 freed=1");
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
    assert_int_equal(atomic_load(&scoped_created), 2);
    assert_int_equal(atomic_load(&scoped_freed), 2);
}

/* ---- middleware ------------------------------------------------------------------------------ */

static int mw_before(hk_web_request_t *req, void *data) {
    rec_add("before", data);
    const char *route = hk_web_request_route(req);
    if (!strcmp(data, "auth") && route && !strcmp(route, "/secret") &&
        !hk_web_request_header(req, "Authorization")) {
        hk_web_response_text(req, 401, NULL, "no");
        return HK_WEB_DONE;
    }
    if (!strcmp(data, "cors") && !strcmp(hk_web_request_method(req), "OPTIONS")) {
        hk_web_response_status(req, 204);
        return HK_WEB_DONE;
    }
    return 0;
}

static void mw_after(hk_web_request_t *req, void *data) {
    rec_add("after", data);
    char h[32];
    snprintf(h, sizeof h, "X-After-%s", (const char *)data);
    hk_web_response_header(req, h, "1");
}

static int h_recorded(hk_web_request_t *req, void *data) {
    rec_add("handler", "h");
    return hk_web_response_text(req, 200, NULL, data);
}

static void test_middleware_order_and_short_circuit(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    assert_int_equal(hk_web_use(web, mw_before, mw_after, "cors"), 0);
    assert_int_equal(hk_web_use(web, mw_before, mw_after, "auth"), 0);
    assert_int_equal(hk_web_use(web, NULL, mw_after, "tail"), 0);
    assert_int_equal(hk_web_use(web, NULL, NULL, "x"), -EINVAL);
    hk_web_map(web, "GET", "/open", h_recorded, "open");
    hk_web_map(web, "GET", "/secret", h_recorded, "secret");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    char v[16];
    rec_reset();
    assert_int_equal(http_do(s.port, GET("/open"), &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(resp_header(&r, "X-After-cors", v, sizeof v));
    assert_non_null(resp_header(&r, "X-After-tail", v, sizeof v));
    resp_free(&r);
    assert_before("before", "cors", "before", "auth");
    assert_before("before", "auth", "handler", "h");
    assert_before("handler", "h", "after", "tail");
    assert_before("after", "tail", "after", "auth");
    assert_before("after", "auth", "after", "cors");

    rec_reset();
    assert_int_equal(http_do(s.port, GET("/secret"), &r), 0);
    assert_int_equal(r.status, 401);
    assert_int_equal(rec_at("handler", "h"), -1);
    assert_true(rec_at("after", "auth") >= 0);
    assert_true(rec_at("after", "cors") >= 0);
    /* the tail middleware was never entered: its after hook does not run */
    assert_int_equal(rec_at("after", "tail"), -1);
    resp_free(&r);

    assert_int_equal(http_do(s.port,
                             "GET /secret HTTP/1.1\r\nHost: t\r\nAuthorization: yes\r\n\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* CORS preflight on a path with no OPTIONS route: the hook answers. */
    assert_int_equal(http_do(s.port, "OPTIONS /open HTTP/1.1\r\nHost: t\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
}

/* ---- logs and metrics ------------------------------------------------------------------------ */

/* The series are counted when the engine reports the response sent, which
 * can be just after the client read it: poll. */
typedef struct mwait {
    hk_host_t *h;
    const char *needle;
} mwait_t;
static bool metrics_have(void *arg) {
    mwait_t *w = arg;
    static char text[65536];
    return hk_metrics_print(hk_host_metrics(w->h), text, sizeof text, NULL) == 0 &&
           strstr(text, w->needle);
}

static void test_request_log_and_metrics(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:RequestLogLevel", "Warning");
    hk_web_map(web, "GET", "/items/{id}", h_text, "item");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    for (int i = 0; i < 3; i++) {
        char req[64];
        snprintf(req, sizeof req, "GET /items/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        assert_int_equal(http_do(s.port, req, &r), 0);
        resp_free(&r);
    }
    assert_int_equal(http_do(s.port, GET("/zzz"), &r), 0);
    resp_free(&r);
    mwait_t w = {s.h, "hostkit_http_requests_total{method=\"GET\",route=\"\",status=\"404\"} 1"};
    assert_true(wait_until(metrics_have, &w, 5000));
    w.needle = "hostkit_http_request_duration_seconds_count{route=\"/items/{id}\"} 3";
    assert_true(wait_until(metrics_have, &w, 5000));
    static char text[65536];
    assert_int_equal(hk_metrics_print(hk_host_metrics(s.h), text, sizeof text, NULL), 0);
    assert_non_null(strstr(text, "hostkit_http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"} 3"));
    assert_non_null(strstr(text, "hostkit_http_requests_total{method=\"GET\",route=\"\",status=\"404\"} 1"));
    assert_non_null(strstr(text, "hostkit_http_request_duration_seconds_count{route=\"/items/{id}\"} 3"));
    /* never by raw path */
    assert_null(strstr(text, "/items/1"));
    assert_int_equal(srv_stop(&s), 0);
    assert_logged("warn: hostkit.web[0] GET /items/2 -> 200 in ");
    assert_logged("(4 bytes)");
    assert_logged("GET /zzz -> 404");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_accessors_and_responses, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_file_response, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_async_completion_from_another_thread, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_scope_per_request_freed_after_response, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_middleware_order_and_short_circuit, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_request_log_and_metrics, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
