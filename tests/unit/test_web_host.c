/*
 * The web server as a hosted service: health and metrics endpoints, the
 * management URL, bind errors (exit 1 naming the URL, bad URL exit 78),
 * unix sockets, keep-alive, and the graceful drain (a slow request in flight
 * at stop completes with 200; a connection after the listener closed is
 * refused; an async request never completed is answered 503 at the timeout).
 */
#include <sys/un.h>

#include "webtest.h"

static hk_health_status_t check_unhealthy(hk_health_result_t *r, hk_token_t *t, void *d) {
    (void)t;
    (void)d;
    hk_health_result_describe(r, "broken on purpose");
    return HK_HEALTH_UNHEALTHY;
}

static void test_health_and_metrics_endpoints(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_health_check_def_t def = {.name = "db", .check = check_unhealthy, .tags = "ready"};
    assert_int_equal(hk_health_add(hk_builder_health(b), &def), 0);
    hk_config_set(hk_builder_config(b), "Management:LivePath", "/alive");
    hk_web_map(web, "GET", "/", h_text, "root");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    resp_t r;
    char v[128];
    assert_int_equal(http_do(s.port, GET("/healthz"), &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(resp_header(&r, "Content-Type", v, sizeof v), "application/json");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "Unhealthy");
    json_decref(j);
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/healthz/ready"), &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "broken on purpose"));
    resp_free(&r);
    /* live: the db check is not tagged live */
    assert_int_equal(http_do(s.port, GET("/alive"), &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "\"db\""));
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/healthz/live"), &r), 0); /* moved: now a 404 */
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(http_do(s.port, "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/metrics"), &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Type", v, sizeof v), HK_METRICS_CONTENT_TYPE);
    /* earlier requests were counted after their responses went out; this one
     * came after them on the same thread... but not necessarily the same
     * engine thread, so only check the series exists */
    assert_non_null(strstr(r.body, "# TYPE hostkit_http_requests_total counter"));
    assert_non_null(strstr(r.body, "process_cpu_seconds_total"));
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_management_url_for_a_worker_without_routes(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Management:Urls", "http://127.0.0.1:0");
    hk_web_t *web = NULL;
    assert_int_equal(hk_builder_add_web(b, &web), 0);
    srv_t s;
    assert_true(srv_start(&s, b, web));
    assert_int_equal(hk_web_listener_count(web), 1); /* no application listener */
    assert_true(hk_web_listener_is_management(web, 0));
    resp_t r;
    assert_int_equal(http_do(s.port, GET("/healthz/ready"), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/metrics"), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(http_do(s.port, GET("/"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
    assert_logged("(health and metrics)");
}

static void test_endpoints_move_to_the_management_url(void **state) {
    (void)state;
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Management:Urls", "http://127.0.0.1:0");
    hk_web_map(web, "GET", "/", h_text, "root");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    assert_int_equal(hk_web_listener_count(web), 2);
    assert_false(hk_web_listener_is_management(web, 0));
    assert_true(hk_web_listener_is_management(web, 1));
    int mport = hk_web_listener_port(web, 1);
    resp_t r;
    assert_int_equal(http_do(s.port, GET("/healthz"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(http_do(mport, GET("/healthz"), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(http_do(mport, GET("/"), &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_bind_error_exits_1_naming_the_url(void **state) {
    (void)state;
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(busy, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(busy, 1), 0);
    socklen_t al = sizeof a;
    getsockname(busy, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Web:Urls", url);
    hk_web_t *web;
    assert_int_equal(hk_builder_add_web(b, &web), 0);
    hk_web_map(web, "GET", "/", h_text, "x");
    assert_int_equal(run_until_started(b), 1);
    char msg[128];
    snprintf(msg, sizeof msg, "cannot listen on %s: Address already in use", url);
    assert_logged(msg);
    close(busy);
}

static void test_bad_url_fails_the_build_with_78(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Web:Urls", "http://127.0.0.1:0;ftp://x:1");
    hk_web_t *web;
    assert_int_equal(hk_builder_add_web(b, &web), 0);
    assert_int_equal(run_until_started(b), 78);
    assert_logged("Web:Urls");
    assert_logged("ftp://x:1");
}

static int h_noop(hk_web_request_t *req, void *data) {
    (void)req;
    (void)data;
    return 0;
}

static void test_bad_or_duplicate_route_fails_the_build_with_78(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_web_t *web;
    assert_int_equal(hk_builder_add_web(b, &web), 0);
    assert_int_equal(hk_web_map(web, "GET", "/users/{id}", h_noop, NULL), 0);
    assert_int_equal(hk_web_map(web, "GET", "/users/{name}", h_noop, NULL), -EEXIST);
    assert_int_equal(hk_web_map(web, "GET", "/files/{*rest}/x", h_noop, NULL), -EINVAL);
    hk_host_t *h = NULL;
    assert_true(hk_builder_build(b, &h) < 0);
    assert_int_equal(hk_builder_exit_code(b), 78);
    hk_builder_free(b);
    assert_logged("Web: route /users/{name}: route GET /users/{name}: already mapped as GET /users/{id}");
    assert_logged("Web: route /files/{*rest}/x: route \"/files/{*rest}/x\": {*rest} must be the last segment");
}

static void test_unix_socket_and_keep_alive(void **state) {
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/hk_web_%d.sock", (int)getpid());
    char url[96];
    snprintf(url, sizeof url, "http://unix:%s", path);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Web:Urls", url);
    hk_web_map(web, "GET", "/", h_text, "over unix");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    assert_string_equal(hk_web_listener_url(web, 0), url);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&un, sizeof un), 0);
    resp_t r;
    /* three requests on one connection: keep-alive */
    for (int i = 0; i < 3; i++) {
        http_send(fd, GET("/"), strlen(GET("/")));
        assert_int_equal(http_read(fd, &r, false, 5000), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "over unix");
        assert_false(r.closed);
        resp_free(&r);
    }
    /* pipelined */
    const char two[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    http_send(fd, two, strlen(two));
    assert_int_equal(http_read(fd, &r, false, 5000), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(http_read(fd, &r, false, 5000), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    close(fd);
    assert_int_equal(srv_stop(&s), 0);
    assert_int_equal(access(path, F_OK), -1); /* removed at stop */
}

/* ---- drain ------------------------------------------------------------------------------ */

static hk_web_request_t *_Atomic held;

static int h_hold(hk_web_request_t *req, void *data) {
    (void)data;
    atomic_store(&held, req);
    return HK_WEB_ASYNC;
}

static bool request_held(void *arg) {
    (void)arg;
    return atomic_load(&held) != NULL;
}

static bool listener_refuses(void *arg) {
    int fd = http_connect(*(int *)arg);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    return fd == -ECONNREFUSED;
}

static void test_drain_completes_in_flight_and_refuses_new(void **state) {
    (void)state;
    atomic_store(&held, NULL);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_web_map(web, "GET", "/slow", h_hold, NULL);
    hk_web_map(web, "GET", "/", h_text, "x");
    srv_t s;
    assert_true(srv_start(&s, b, web));
    int slow = http_connect(s.port);
    http_send(slow, GET("/slow"), strlen(GET("/slow")));
    assert_true(wait_until(request_held, NULL, 5000));
    /* an idle keep-alive connection, open when the stop begins */
    int idle = http_connect(s.port);
    resp_t r;
    http_send(idle, GET("/"), strlen(GET("/")));
    assert_int_equal(http_read(idle, &r, false, 5000), 0);
    resp_free(&r);

    hk_host_stop(s.h); /* as SIGTERM does */
    assert_true(wait_until(listener_refuses, &s.port, 5000));
    /* the idle connection is still open while the slow request runs */
    hk_web_request_t *req = atomic_load(&held);
    hk_web_response_text(req, 200, NULL, "finally");
    hk_web_complete(req);
    assert_int_equal(http_read(slow, &r, false, 5000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "finally");
    assert_true(r.closed); /* draining: Connection: close */
    resp_free(&r);
    assert_true(peer_closes(idle, 5000));
    pthread_join(s.th, NULL);
    assert_int_equal(s.rc, 0);
    hk_host_free(s.h);
    close(slow);
    close(idle);
    /* 1 or 2: the idle connection's request may not have reported completion yet */
    assert_logged(" request(s) in flight");
}

static void test_async_never_completed_is_answered_503_at_the_timeout(void **state) {
    (void)state;
    atomic_store(&held, NULL);
    hk_web_t *web;
    hk_builder_t *b = web_builder(&web);
    hk_config_set(hk_builder_config(b), "Host:ShutdownTimeoutSeconds", "0.3");
    hk_web_map(web, "GET", "/slow", h_hold, NULL);
    srv_t s;
    assert_true(srv_start(&s, b, web));
    int slow = http_connect(s.port);
    http_send(slow, GET("/slow"), strlen(GET("/slow")));
    assert_true(wait_until(request_held, NULL, 5000));
    hk_host_stop(s.h);
    resp_t r;
    assert_int_equal(http_read(slow, &r, false, 5000), 0);
    assert_int_equal(r.status, 503);
    resp_free(&r);
    pthread_join(s.th, NULL);
    /* late completion after the server answered: safe, only releases */
    hk_web_request_t *req = atomic_load(&held);
    hk_web_response_text(req, 200, NULL, "too late");
    hk_web_complete(req);
    hk_host_free(s.h);
    close(slow);
    assert_logged("still in flight are cut off");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_and_metrics_endpoints, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_management_url_for_a_worker_without_routes, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_move_to_the_management_url, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_bind_error_exits_1_naming_the_url, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_bad_url_fails_the_build_with_78, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_bad_or_duplicate_route_fails_the_build_with_78, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_and_keep_alive, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_drain_completes_in_flight_and_refuses_new, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(test_async_never_completed_is_answered_503_at_the_timeout, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
