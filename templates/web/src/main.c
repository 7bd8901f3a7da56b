/*
 * {{name}} - a web application on hostkit, the Generic Host for C.
 * Created by `hostkit new web {{name}}`; from here on it is yours.
 *
 * What is in it:
 *  - The web host (libhostkit-web): an HTTP server that runs as a hosted
 *    service. It listens on Web:Urls (appsettings.json: http://localhost:8080),
 *    or on the socket systemd passes ({{name}}.socket), once the host starts,
 *    and drains on stop: requests in flight finish, new connections are
 *    refused. Besides the routes below it serves /healthz, /healthz/live,
 *    /healthz/ready (JSON; 200 or 503) and /metrics (Prometheus).
 *  - Routes, each answered by a handler on one of the server's threads:
 *      GET  /              "Hello World!" (text/plain)
 *      GET  /hello/{name}  {"message":"Hello, {name}!"} (application/json)
 *      POST /echo          the request body, with its Content-Type
 *    Handlers run concurrently: keep shared state atomic or locked, and hand
 *    slow work to another thread (return HK_WEB_ASYNC, then hk_web_complete).
 *  - Middleware: an "after" hook that counts the answered requests.
 *  - A background service "stats", on a thread of its own until the host
 *    stops, which logs that count every Stats:Interval (an option bound from
 *    the "Stats" section and validated before anything starts; a bad value
 *    stops start-up with exit code 78 naming the key).
 *
 * Configuration, lowest precedence first: appsettings.json,
 * appsettings.{Environment}.json, environment variables (Web__Urls=...) and
 * the command line (--Web:Urls=http://0.0.0.0:8080). Ctrl+C or SIGTERM stops
 * it gracefully (exit code 0). README.md tells how to build, run and install it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hostkit/hostkit.h>
#include <hostkit/web.h>

#ifndef APP_VERSION
#define APP_VERSION "0.1.0" /* CMakeLists.txt passes the project's version */
#endif

/* ---- options: the "Stats" section ---------------------------------------------------- */

typedef struct stats_options {
    int64_t interval_ms; /* Stats:Interval, time between two reports */
} stats_options_t;

static const hk_option_t stats_fields[] = {
    {.name = "Interval", .type = HK_OPTION_DURATION,
     .offset = offsetof(stats_options_t, interval_ms), .def = "1m",
     .has_range = true, .min = 10, .max = 24 * 60 * 60 * 1000.0,
     .description = "Time between two reports of the request count: 10s, 1m, ..."},
};

static const hk_options_def_t stats_options_def =
    HK_OPTIONS_DEF("Stats", stats_options_t, stats_fields);

/* ---- shared state ------------------------------------------------------------------------ */

/* What the middleware and the background service share; lives in main. */
typedef struct stats {
    hk_options_t *options;
    atomic_long requests; /* application requests answered (not health or metrics) */
} stats_t;

/* ---- routes --------------------------------------------------------------------------------- */

/* GET / */
static int hello_world(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, NULL, "Hello World!"); /* NULL: text/plain */
}

/* GET /hello/{name}: the route value arrives percent-decoded. */
static int hello_name(hk_web_request_t *req, void *data) {
    (void)data;
    json_t *message = json_sprintf("Hello, %s!", hk_web_request_param(req, "name"));
    if (!message) /* the name is not UTF-8 (or memory ran out) */
        return hk_web_response_text(req, 400, NULL, "The name must be UTF-8 text.\n");
    /* "o" hands message over to the object; hk_web_response_json takes the object. */
    return hk_web_response_json(req, 200, json_pack("{s:o}", "message", message));
}

/* POST /echo: the body is buffered (up to Web:Limits:MaxRequestBodyBytes, else 413). */
static int echo(hk_web_request_t *req, void *data) {
    (void)data;
    size_t len;
    const char *body = hk_web_request_body(req, &len);
    const char *type = hk_web_request_header(req, "Content-Type");
    int r = hk_web_response_header(req, "Content-Type", type ? type : "application/octet-stream");
    return r < 0 ? r : hk_web_response_body(req, body, len);
}

/* Middleware, after the response is complete: count it. */
static void count_request(hk_web_request_t *req, void *data) {
    (void)req;
    stats_t *stats = data;
    atomic_fetch_add(&stats->requests, 1);
}

/* ---- the background service "stats" ------------------------------------------------------ */

static int stats_execute(hk_service_t *svc, hk_token_t *stopping) {
    stats_t *stats = hk_service_data(svc);
    hk_logger_t *log = hk_host_logger(hk_service_host(svc), "Stats");
    while (!hk_token_is_cancelled(stopping)) {
        /* The current snapshot: a reload may have replaced it since the last report. */
        const stats_options_t *o = hk_options_acquire(stats->options);
        uint64_t interval_ms = (uint64_t)o->interval_ms;
        hk_options_release(stats->options, o);
        hk_token_sleep(stopping, interval_ms); /* returns early when the host stops */
        hk_info(log, "%ld requests answered", atomic_load(&stats->requests));
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

/* Adds the web host, its routes and middleware, and the background service. */
static int add_services(hk_builder_t *b, stats_t *stats) {
    hk_web_t *web;
    int r = hk_builder_add_web(b, &web);
    if (r == 0)
        r = hk_web_map(web, "GET", "/", hello_world, NULL);
    if (r == 0)
        r = hk_web_map(web, "GET", "/hello/{name}", hello_name, NULL);
    if (r == 0)
        r = hk_web_map(web, "POST", "/echo", echo, NULL);
    if (r == 0)
        r = hk_web_use(web, NULL, count_request, stats);
    if (r == 0) /* stats outlives the host: nothing to destroy */
        r = hk_builder_add_background(b, "stats", stats_execute, stats, NULL);
    return r;
}

int main(int argc, char **argv) {
    /* Configuration from appsettings*.json, the environment and the command line. */
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_builder_set_version(b, APP_VERSION);
    stats_t stats = {.options = NULL};
    atomic_init(&stats.requests, 0);
    hk_builder_add_options(b, &stats_options_def, &stats.options);
    int r = add_services(b, &stats);
    if (r < 0 && r != -EINVAL) { /* -EINVAL is recorded in the builder: the build reports it */
        hk_critical(hk_builder_logger(b, "Program"), "Cannot register the services: %s",
                    hk_strerror(r));
        hk_builder_free(b);
        return 1;
    }
    /* Build (exit 64 or 78 on a bad command line or configuration), run until
     * Ctrl+C or SIGTERM, free everything; returns the exit code. */
    return hk_builder_run(b);
}
