/*
 * webapp - the hostkit web host example: three routes, the health and
 * metrics endpoints, and a background service that counts ticks next to
 * the server. Run it and try:
 *   curl localhost:5000/            curl localhost:5000/hello/world
 *   curl -d hi localhost:5000/echo  curl localhost:5000/healthz
 *   curl localhost:5000/metrics
 * Listen elsewhere with --Web:Urls=http://0.0.0.0:8080 (or HOSTKIT_URLS).
 */
#include <hostkit/web.h>
#include <stdatomic.h>
#include <string.h>

static atomic_uint_fast64_t ticks;

static int hello_world(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, "text/plain", "Hello World!");
}

static int hello_name(hk_web_request_t *req, void *data) {
    (void)data;
    const char *name = hk_web_request_param(req, "name");
    json_t *msg = json_sprintf("Hello, %s!", name);
    return hk_web_response_json(req, 200, json_pack("{s:o?}", "message", msg));
}

static int echo(hk_web_request_t *req, void *data) {
    (void)data;
    size_t len;
    const char *body = hk_web_request_body(req, &len);
    const char *type = hk_web_request_header(req, "Content-Type");
    hk_web_response_header(req, "Content-Type", type ? type : "application/octet-stream");
    return hk_web_response_body(req, body, len);
}

/* The background service: ticks once a second until the host stops. */
static int ticker(hk_service_t *svc, hk_token_t *stopping) {
    hk_logger_t *log = hk_host_logger(hk_service_host(svc), "webapp.ticker");
    while (hk_token_sleep(stopping, 1000) == 0) {
        uint64_t n = atomic_fetch_add(&ticks, 1) + 1;
        if (n % 60 == 0)
            hk_log_info(log, "Still running after {Ticks} ticks", n);
    }
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_web_t *web = NULL;
    if (hk_builder_add_web(b, &web) == 0) {
        hk_web_map(web, "GET", "/", hello_world, NULL);
        hk_web_map(web, "GET", "/hello/{name}", hello_name, NULL);
        hk_web_map(web, "POST", "/echo", echo, NULL);
    }
    hk_builder_add_background(b, "ticker", ticker, NULL, NULL);
    return hk_builder_run(b);
}
