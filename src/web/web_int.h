/*
 * Private structures of the web host (libhostkit-web), shared by
 * src/web/web.c (service, listeners, drain, slow-client watchdog),
 * src/web/engine.c (libmicrohttpd callbacks, endpoints, logs, metrics) and
 * src/web/request.c (request/response accessors).
 * May depend on: hostkit public headers, src/common, src/web/router.h,
 * libmicrohttpd, jansson.
 *
 * Invariants:
 *  - a request (hk_web_request_t) is created by the URI-log callback when
 *    the request line is in and freed when its last reference goes: the
 *    engine's (dropped in the request-completed callback) and, for an async
 *    handler, the application's (dropped by hk_web_complete);
 *  - web->inflight (an atomic) counts requests between those two engine
 *    callbacks; the drain waits for it to reach 0 under web->mu, and the
 *    callback that takes it to 0 while draining broadcasts web->cv under
 *    web->mu (draining is set before inflight is read: one of the two sees
 *    the other);
 *  - everything in hk_web_t except `mu`-guarded fields is written before
 *    the listeners start and read-only afterwards.
 */
#ifndef HK_SRC_WEB_INT_H
#define HK_SRC_WEB_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "hostkit/web.h"
#include "web/router.h"

/* Metric handles of a route, found once and kept: (method, status) -> counter. */
#define WEB_ROUTE_COUNTERS 8
typedef struct web_route_metrics {
    _Atomic unsigned key[WEB_ROUTE_COUNTERS]; /* method index << 10 | status; 0: free */
    _Atomic(hk_counter_t *) counter[WEB_ROUTE_COUNTERS];
    _Atomic(hk_histogram_t *) duration;
} web_route_metrics_t;

typedef struct web_route {
    hk_web_route_def_t def; /* method and pattern point at the copies below */
    char *method;
    char *pattern;
    web_route_metrics_t mx;
} web_route_t;

typedef struct web_mw {
    hk_web_before_cb before;
    hk_web_after_cb after;
    void *data;
} web_mw_t;

enum web_endpoint { EP_NONE = 0, EP_HEALTH, EP_LIVE, EP_READY, EP_METRICS };

/*
 * A tracked connection (slow-client watchdog). The list links and `killed`
 * are guarded by web->mu; the request state is written without the lock by
 * the connection's engine thread and read by the watchdog, each packed in
 * one atomic word so it is read whole:
 *  - state: since_ns << 2 | WEB_CONN_SERVED | WEB_CONN_IN_REQUEST
 *    (since_ns: accepted, or last request completed; SERVED: a request was
 *    completed on it; IN_REQUEST: between the first handler call and the
 *    request's completion);
 *  - body: body_since_ns << 1 | 1 while a request body is being received
 *    (the slow-body rule), 0 otherwise. body_bytes is reset (release) before
 *    body is set; the watchdog reads body_bytes (acquire) before body, so a
 *    count of the new body is never judged against an old start time.
 */
#define WEB_CONN_IN_REQUEST 1u
#define WEB_CONN_SERVED 2u
typedef struct web_conn {
    struct web_conn *prev, *next;
    int fd;
    bool killed;
    _Atomic uint64_t state;
    _Atomic uint64_t body;
    atomic_uint_fast64_t body_bytes; /* added to without the lock */
} web_conn_t;

typedef struct web_listener {
    hk_web_t *web;
    struct MHD_Daemon *daemon;
    int fd;              /* listen fd until handed to the daemon */
    bool management;
    bool activated;      /* came from socket activation */
    char url[160];       /* as bound */
    char *unix_path;     /* to unlink after stop (not for activated sockets) */
    int port;
} web_listener_t;

/*
 * The slow-body rule: once RequestHeadersTimeoutSeconds have passed since a
 * request's headers came in, its body must have arrived at this average rate
 * at least (as Kestrel's MinRequestBodyDataRate), or the watchdog closes the
 * connection. The engine's idle timeout alone is reset by every byte.
 */
#define HK__WEB_MIN_BODY_RATE 240u /* bytes per second */

typedef struct web_settings {
    unsigned threads;
    hk_log_level_t log_level;
    uint64_t max_headers;
    uint64_t max_body;
    uint64_t headers_timeout_ms;
    uint64_t keepalive_timeout_ms;
    unsigned max_connections;
    char *paths[5]; /* by web_endpoint; NULL: off */
    bool endpoints_on_app; /* health/metrics on the application listeners */
} web_settings_t;

struct hk_web_s {
    hk_builder_t *builder; /* until build (for the options) */
    hk_host_t *host;
    hk_service_t *svc;
    hk_options_t *opts, *lopts, *mopts;
    hk__router_t *router;
    web_route_t **routes;
    size_t nroutes;
    web_mw_t *mws;
    size_t nmws;
    hk_config_t *config; /* the builder's store (then the host's): set-up errors go there */
    char error[256]; /* the first set-up error, fails the start */

    web_settings_t set;
    hk_logger_t *log;
    hk_metric_t *m_total;
    hk_metric_t *m_duration;
    hk_histogram_t *h_unmatched;

    web_listener_t *ls;
    size_t nls;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_long inflight;
    atomic_bool draining;
    struct hk_web_request_s *suspended; /* async requests waiting (list) */
    web_conn_t *conns;
    bool wd_stop;
    bool wd_running;
    pthread_t wd;
};

typedef struct web_header {
    char *name, *value; /* one allocation: name's, value points into it */
} web_header_t;

typedef struct web_query {
    char *name, *value;
} web_query_t;

struct hk_web_request_s {
    hk_web_t *web;
    web_listener_t *ls;
    struct MHD_Connection *conn;
    web_conn_t *wc;
    atomic_int refs;
    uint64_t t0;

    char *uri; /* raw request target; path and query are cut from a copy */
    char *path; /* both point into strs[] (one allocation with the request) */
    char *query_raw;
    web_query_t *query;
    size_t nquery;
    bool query_parsed;
    char method[24];
    char peer[64];

    /* stages */
    bool started;
    bool handled;      /* handler (or the automatic answer) ran */
    bool queued;       /* a response went to the engine */
    bool close;        /* answer with Connection: close */
    int route_rc;
    web_route_t *route;
    bool matched;
    enum web_endpoint ep;
    size_t before_ran;

    /* body */
    char *body; /* NULL, empty_body (a GET's "") or allocated */
    char empty_body[1];
    size_t body_len, body_cap;
    uint64_t body_seen;
    uint64_t body_limit;
    bool body_failed;
    int fail_status;

    /* response */
    int status;
    web_header_t *headers; /* NULL, hinline or allocated */
    size_t nheaders, hcap;
    web_header_t hinline[4];
    bool has_ctype;
    char *rbody;
    size_t rbody_len, rbody_cap;
    int rfd;
    uint64_t rfd_size;
    uint64_t bytes; /* body bytes of the response queued */

    /* async */
    pthread_mutex_t amu;
    bool async, suspended, completed, forced;
    struct hk_web_request_s *snext, *sprev; /* web->suspended list, under web->mu */
    bool listed; /* on that list; written only by this request's own threads */

    hk_scope_t *scope;
    void *item;
    /* Last but strs: zeroed at creation only up to here (the router fills it
     * whole; nparams, read on release, is set 0). Valid when matched. */
    hk__route_match_t match;
    char strs[]; /* uri, then path */
};

/* engine.c */
void *hk__web_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result hk__web_access(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls);
void hk__web_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe);
void hk__web_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);

/* request.c */
void hk__web_request_release(hk_web_request_t *req);
void hk__web_response_reset(hk_web_request_t *req);
int hk__web_query_parse(hk_web_request_t *req);

#endif
