/*
 * hostkit/web.h - the web host (libhostkit-web): an HTTP server that runs as
 * a hosted service of the host, serves the application's routes, the health
 * and metrics endpoints, and drains gracefully on stop. Engine: GNU
 * libmicrohttpd (epoll, internal thread pool). See docs/web.md.
 *
 * This header is not included from hostkit.h: it belongs to a separate
 * library (link hostkit-web: pkg-config hostkit-web, CMake
 * hostkit::hostkit_web), so programs without HTTP do not pull in
 * libmicrohttpd. It includes hostkit.h and <jansson.h>.
 *
 *     hk_web_t *web;
 *     hk_builder_add_web(b, &web);
 *     hk_web_map(web, "GET", "/hello/{name}", hello, NULL);
 *     return hk_builder_run(b);
 *
 * Objects:
 *   hk_web_t          the server; owned by the builder, then the host. Map
 *                     routes and add middleware before the host runs.
 *   hk_web_request_t  one request and its response. Valid from the handler
 *                     call until the response was handed to the engine
 *                     (return 0 from the handler, or hk_web_complete for an
 *                     async handler); middleware "after" hooks see it last.
 *
 * Request flow, on an engine thread:
 *   headers complete -> limits (431, 413, 400) -> route match -> before hooks
 *   (in order; may answer) -> body read (buffered, or streamed to on_body)
 *   -> handler (or 404 / 405 with Allow) -> [async: suspended until
 *   hk_web_complete] -> after hooks (reverse order) -> response sent ->
 *   request log, metrics -> scope freed.
 *
 * Configuration (read at build; bad values fail the build with exit 78):
 *   Web:Urls (or HOSTKIT_URLS, key "Urls")  ';'-separated listen URLs:
 *       http://0.0.0.0:8080  http://[::]:8080  http://localhost:0 (127.0.0.1,
 *       ephemeral port)  http://unix:/run/app/web.sock. Default
 *       http://localhost:5000 when routes are mapped; with no route and no
 *       Web:Urls, no application listener is opened (management only).
 *   Web:Threads                       engine threads per listener (0: CPUs)
 *   Web:ListenFdName                  socket-activated fd name to use ("":
 *                                     every fd not named "management")
 *   Web:RequestLogLevel               Trace..Critical, None (Information)
 *   Web:Limits:MaxRequestHeadersBytes size, 32KiB (431 above)
 *   Web:Limits:MaxRequestBodyBytes    size, 30MB (413 above)
 *   Web:Limits:RequestHeadersTimeoutSeconds  30 (connection closed)
 *   Web:Limits:KeepAliveTimeoutSeconds       120 (idle connection closed)
 *   Web:Limits:MaxConnections                0 (engine default, ~FD_SETSIZE-4)
 *   Management:Urls                   listen URLs for the health and metrics
 *       endpoints only; when set they are served there and not on Web:Urls.
 *   Management:HealthPath /healthz, LivePath /healthz/live, ReadyPath
 *       /healthz/ready, MetricsPath /metrics ("" turns one off).
 *
 * Threading: the map/use functions run before the host runs, on the
 * builder's thread. Handlers and hooks run on engine threads, concurrently;
 * a request is used by one thread at a time (the one running its handler or
 * hook, or the one that owns it between an async return and hk_web_complete).
 */
#ifndef HOSTKIT_WEB_H
#define HOSTKIT_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hostkit.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_web_s hk_web_t;
typedef struct hk_web_request_s hk_web_request_t;

/* Handler and hook results besides 0 and a negative errno. */
#define HK_WEB_ASYNC 1 /* handler: the response is completed later with hk_web_complete */
#define HK_WEB_DONE 2  /* before hook: the hook answered; skip the handler and later hooks */

/*
 * A route handler. Set the response (hk_web_response_*) and return 0; or
 * return HK_WEB_ASYNC and call hk_web_complete(req) later, from any thread
 * (do not block an engine thread: hand slow work to another thread); or
 * return a negative errno: 500 with an empty body (the error is logged).
 * A response with no status set is 200; with no body, empty.
 */
typedef int (*hk_web_handler_cb)(hk_web_request_t *req, void *data);

/*
 * Streaming upload: called on an engine thread with each piece of the body
 * as it arrives (the body is then not buffered: hk_web_request_body gives
 * NULL), before the handler. Return 0 to go on or a negative errno to stop
 * reading: the request is answered 400 unless the callback set a status
 * (>= 400) with hk_web_response_status; the connection is closed.
 */
typedef int (*hk_web_body_cb)(hk_web_request_t *req, const void *chunk, size_t len, void *data);

/*
 * Middleware. before: runs once the headers are in and the route is known
 * (hk_web_request_route is NULL for a 404/405), before the body is read
 * (hk_web_request_body is not available yet). Return 0 to go on,
 * HK_WEB_DONE when the hook answered (it set the response: e.g. 401, or 204
 * for a CORS preflight), or a negative errno (500). after: runs when the
 * response is complete, before it is sent, for every request whose before
 * hook ran (also after HK_WEB_DONE and errors), in reverse order; it may add
 * headers or change the status. Not run for the health/metrics endpoints.
 */
typedef int (*hk_web_before_cb)(hk_web_request_t *req, void *data);
typedef void (*hk_web_after_cb)(hk_web_request_t *req, void *data);

/* A route definition. Fill it with designated initialisers. */
typedef struct hk_web_route_def {
    const char *method;  /* "GET", "POST", ... or "*" (any). GET also answers HEAD. */
    const char *pattern; /* "/users/{id}", "/files/{*rest}" (see docs/web.md) */
    hk_web_handler_cb handler;
    void *data;              /* passed to handler and on_body; not owned */
    hk_web_body_cb on_body;  /* optional: stream the body instead of buffering it */
    uint64_t max_body_bytes; /* 0: Web:Limits:MaxRequestBodyBytes; UINT64_MAX: no limit */
} hk_web_route_def_t;

/* ---- set-up --------------------------------------------------------------- */

/*
 * Creates the web server and registers it as the hosted service "web": it
 * starts listening during the host's start (start completes once every
 * listener is bound and accepting, so "Application started" means the port
 * answers) and drains on stop (docs/web.md: readiness drops, after
 * Host:ShutdownDelaySeconds the listeners close, in-flight requests finish
 * until the shutdown timeout, idle connections close). Reads the Web: and
 * Management: settings at build. A bind error (address in use, bad URL)
 * fails the start, naming the URL (exit code 1).
 * *ret_web (may be NULL: health and metrics on Management:Urls only) is
 * owned by the builder, then the host; valid until hk_host_free. Returns
 * 0, -EEXIST (already added), -EINVAL or -ENOMEM (recorded in the builder:
 * the build fails).
 */
HK_EXTERN int hk_builder_add_web(hk_builder_t *builder, hk_web_t **ret_web);

/*
 * Maps a route (see hk_web_route_def_t). Before the build. Returns 0,
 * -EINVAL (bad method or pattern), -EEXIST (same method and pattern shape)
 * or -ENOMEM; the first two are recorded as configuration errors, so the
 * build fails with exit code 78 naming the route (mapped after the build:
 * the service's start fails with it, exit 1).
 */
HK_EXTERN int hk_web_add_route(hk_web_t *web, const hk_web_route_def_t *def);
/* Shorthand: a buffered route. */
HK_EXTERN int hk_web_map(hk_web_t *web, const char *method, const char *pattern,
                         hk_web_handler_cb handler, void *data);

/*
 * Adds middleware (either hook may be NULL, not both). before hooks run in
 * the order added, after hooks in reverse. data is not owned. Before the
 * host runs only. Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_web_use(hk_web_t *web, hk_web_before_cb before, hk_web_after_cb after,
                         void *data);

/* ---- listeners (after start: e.g. from a started-token callback) ---------- */

/*
 * The listeners, application ones first, then the management ones, as
 * bound: URLs with the real port ("http://127.0.0.1:43121",
 * "http://[::]:8080", "http://unix:/run/app.sock"). Valid from the end of
 * the service's start until the host is freed (a stopped listener is still
 * listed). Any thread after start. Returns 0 / NULL past the end.
 */
HK_EXTERN size_t hk_web_listener_count(const hk_web_t *web);
HK_EXTERN const char *hk_web_listener_url(const hk_web_t *web, size_t i);
/* The bound TCP port (0 for a unix socket or past the end). */
HK_EXTERN int hk_web_listener_port(const hk_web_t *web, size_t i);
/* Whether listener i serves the management endpoints only. */
HK_EXTERN bool hk_web_listener_is_management(const hk_web_t *web, size_t i);

/* ---- request -------------------------------------------------------------- */

/* "GET", ... as sent. */
HK_EXTERN const char *hk_web_request_method(const hk_web_request_t *req);
/* The path without the query string, as sent (still percent-encoded). */
HK_EXTERN const char *hk_web_request_path(const hk_web_request_t *req);
/* The matched route template ("/users/{id}"), NULL for 404/405/endpoints. */
HK_EXTERN const char *hk_web_request_route(const hk_web_request_t *req);
/* A route value by name, percent-decoded; NULL when there is none. */
HK_EXTERN const char *hk_web_request_param(const hk_web_request_t *req, const char *name);
/* The first query parameter with that name, decoded ('+' is a space); NULL when absent. */
HK_EXTERN const char *hk_web_request_query(const hk_web_request_t *req, const char *name);
/* A request header (name case-insensitive); NULL when absent. */
HK_EXTERN const char *hk_web_request_header(const hk_web_request_t *req, const char *name);
/*
 * The buffered body (NUL-terminated for convenience; *ret_len may be NULL)
 * in the handler and after hooks; NULL before it was read and for
 * streamed routes. An empty body gives "" and 0.
 */
HK_EXTERN const char *hk_web_request_body(const hk_web_request_t *req, size_t *ret_len);
/*
 * Parses the body as JSON. Returns 0 with *ret_json (a new reference: call
 * json_decref), or -EINVAL (not JSON: answer 400; err gets jansson's
 * message when err_len > 0) or -ENODATA (no body).
 */
HK_EXTERN int hk_web_request_json(const hk_web_request_t *req, json_t **ret_json, char *err,
                                  size_t err_len);
/* The peer's address as text ("127.0.0.1", "::1", "unix"); never NULL. */
HK_EXTERN const char *hk_web_request_peer(const hk_web_request_t *req);
/*
 * The request's DI scope (hostkit/services.h), created on first use from
 * the host's registry and freed after the response was sent. NULL when
 * out of memory. Resolve scoped services with hk_scope_get.
 */
HK_EXTERN hk_scope_t *hk_web_request_scope(hk_web_request_t *req);
/* The host the server runs in. */
HK_EXTERN hk_host_t *hk_web_request_host(const hk_web_request_t *req);
/*
 * One pointer of application data per request (middleware -> handler),
 * NULL until set. Not owned: free it in an after hook.
 */
HK_EXTERN void hk_web_request_set_item(hk_web_request_t *req, void *item);
HK_EXTERN void *hk_web_request_item(const hk_web_request_t *req);

/* ---- response ------------------------------------------------------------- */

/* Sets the status (100..599; other values: -EINVAL). Returns 0. */
HK_EXTERN int hk_web_response_status(hk_web_request_t *req, int status);
/* The status set so far (200 when none). */
HK_EXTERN int hk_web_response_get_status(const hk_web_request_t *req);
/*
 * Adds a header (copied; no CR/LF/NUL allowed: -EINVAL). Content-Length is
 * computed, not set. Adding Content-Type replaces the default. Returns 0,
 * -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_web_response_header(hk_web_request_t *req, const char *name, const char *value);
/* Sets the body, copied (replacing an earlier body). Returns 0 or -ENOMEM. */
HK_EXTERN int hk_web_response_body(hk_web_request_t *req, const void *data, size_t len);
/*
 * Status, Content-Type and a copied body in one call (content_type NULL:
 * "text/plain; charset=utf-8"). Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_web_response_text(hk_web_request_t *req, int status, const char *content_type,
                                   const char *text);
/*
 * Status and a JSON body ("application/json"): json is serialised compactly
 * and its reference is stolen (decref'd) on success and failure, so
 * hk_web_response_json(req, 200, json_pack(...)) is fine (a NULL json gives
 * -ENOMEM). Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_web_response_json(hk_web_request_t *req, int status, json_t *json);
/*
 * Sends a file as the body (read by the engine, not loaded into memory).
 * content_type NULL: guessed from the extension (html, css, js, json, txt,
 * png, svg, ...; else application/octet-stream). Returns 0, -ENOENT,
 * -EISDIR, -EACCES, -EINVAL (not a regular file: a FIFO, a device; opened
 * without blocking) (the caller decides the status: nothing is set) or
 * -ENOMEM.
 */
HK_EXTERN int hk_web_response_file(hk_web_request_t *req, const char *path,
                                   const char *content_type);

/*
 * Completes a request whose handler returned HK_WEB_ASYNC: the response set
 * so far is sent (after hooks run on an engine thread). Any thread, once per
 * request; the request must not be used afterwards. A request not completed
 * within the shutdown timeout is answered 503 by the server during stop;
 * hk_web_complete stays safe to call for it (it only releases the request).
 */
HK_EXTERN void hk_web_complete(hk_web_request_t *req);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_WEB_H */
