/*
 * The request path on libmicrohttpd's threads: the URI-log callback creates
 * the request, the access handler runs limits, routing, middleware, body
 * reading, the handler (or 404/405, or a health/metrics endpoint) and queues
 * the response; the completed callback logs, counts and frees it.
 * May depend on: hostkit public headers, src/common, src/web (its headers), libmicrohttpd.
 *
 * Access handler calls per request (libmicrohttpd's contract):
 *   1st (headers in, *upload_data_size 0)  -> first_call: limits, route, before hooks
 *   Nth (*upload_data_size > 0)            -> body_call: buffer or stream the body
 *   last (*upload_data_size 0)             -> final_call: handler, after hooks, queue
 *   (async: final_call suspends; hk_web_complete resumes; one more final_call queues)
 * Responses are queued on the last call unless an early answer is needed (431,
 * 413, 400, a before hook that answered): queuing once the body was read keeps
 * the connection alive; an early answer with an unread body closes it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "web/web_int.h"

static const char *const known_methods[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                                            "PATCH", "OPTIONS", "TRACE", "CONNECT", "OTHER"};

/* Index in known_methods; arbitrary methods are OTHER (no unbounded series). */
static unsigned method_index(const char *m) {
    for (unsigned i = 0; i + 1 < HK_ARRAY_SIZE(known_methods); i++)
        if (!strcmp(m, known_methods[i]))
            return i;
    return (unsigned)HK_ARRAY_SIZE(known_methods) - 1;
}

/* The route's counter for (method, status): from its cache, else looked up
 * in the registry (a lock) and cached in a free slot. */
static hk_counter_t *route_counter(hk_web_t *web, web_route_t *r, unsigned mi, int status,
                                   const char *route) {
    unsigned key = (mi + 1) << 10 | (unsigned)status;
    for (int i = 0; r && i < WEB_ROUTE_COUNTERS; i++) {
        unsigned k = atomic_load_explicit(&r->mx.key[i], memory_order_acquire);
        if (k == key) {
            hk_counter_t *c = atomic_load_explicit(&r->mx.counter[i], memory_order_acquire);
            if (c)
                return c;
            break; /* being filled in by another thread */
        }
        if (k == 0)
            break;
    }
    hk_counter_t *c = NULL;
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    if (hk_metric_counter(web->m_total, HK_LABELS(known_methods[mi], route, st), &c) < 0)
        return NULL;
    for (int i = 0; r && i < WEB_ROUTE_COUNTERS; i++) {
        unsigned expect = 0;
        if (atomic_compare_exchange_strong(&r->mx.key[i], &expect, key)) {
            atomic_store_explicit(&r->mx.counter[i], c, memory_order_release);
            break;
        }
        if (expect == key)
            break;
    }
    return c;
}

/* ---- creation: the request line is in ----------------------------------------------- */

void *hk__web_uri_log(void *cls, const char *uri, struct MHD_Connection *conn) {
    (void)conn;
    web_listener_t *l = cls;
    hk_web_t *web = l->web;
    if (!uri)
        uri = "/";
    size_t n = strlen(uri) + 1;
    /* One allocation: the request, then its URI and the copy path is cut from. */
    hk_web_request_t *req = hk__malloc(sizeof *req + 2 * n);
    if (!req)
        return NULL;
    memset(req, 0, offsetof(hk_web_request_t, match)); /* match: see web_int.h */
    req->match.nparams = 0;
    req->uri = req->strs;
    req->path = req->strs + n;
    memcpy(req->uri, uri, n);
    memcpy(req->path, uri, n);
    char *q = strchr(req->path, '?');
    if (q) {
        *q = 0;
        req->query_raw = q + 1;
    }
    char *hash = strchr(req->query_raw ? req->query_raw : req->path, '#');
    if (hash)
        *hash = 0;
    req->web = web;
    req->ls = l;
    req->rfd = -1;
    req->status = 200;
    atomic_init(&req->refs, 1);
    pthread_mutex_init(&req->amu, NULL);
    req->t0 = hk__now_ns();
    req->method[0] = '?';
    atomic_fetch_add(&web->inflight, 1);
    return req;
}

/* ---- responses ----------------------------------------------------------------------- */

static enum MHD_Result queue_static(struct MHD_Connection *conn, unsigned status, const char *text,
                                    bool close) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (close)
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void run_after_hooks(hk_web_request_t *req) {
    hk_web_t *web = req->web;
    for (size_t i = req->before_ran; i-- > 0;)
        if (web->mws[i].after)
            web->mws[i].after(req, web->mws[i].data);
    req->before_ran = 0;
}

/* Runs the after hooks and hands the response to the engine. */
static enum MHD_Result finish(hk_web_request_t *req) {
    hk_web_t *web = req->web;
    req->handled = true;
    run_after_hooks(req);
    struct MHD_Response *r;
    if (req->rfd >= 0) {
        r = MHD_create_response_from_fd64(req->rfd_size, req->rfd);
        if (r) {
            req->rfd = -1; /* the response closes it */
            req->bytes = req->rfd_size;
        }
    } else if (req->rbody_len) {
        r = MHD_create_response_from_buffer_with_free_callback(req->rbody_len, req->rbody,
                                                               hk__free);
        if (r) {
            req->rbody = NULL;
            req->bytes = req->rbody_len;
        }
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        req->bytes = 0;
    }
    if (!r) {
        req->status = 500;
        req->queued = queue_static(req->conn, 500, "", true) == MHD_YES;
        return req->queued ? MHD_YES : MHD_NO;
    }
    for (size_t i = 0; i < req->nheaders; i++)
        if (MHD_add_response_header(r, req->headers[i].name, req->headers[i].value) != MHD_YES)
            hk_warn(web->log, "web: header %s rejected by the engine", req->headers[i].name);
    if (!req->has_ctype && req->bytes)
        MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (req->close || atomic_load(&web->draining))
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    req->queued = rc == MHD_YES;
    return rc;
}

/* An answer decided by the server (limits, errors): status and a short text. */
static enum MHD_Result answer(hk_web_request_t *req, int status, const char *text, bool close) {
    hk__web_response_reset(req);
    hk_web_response_text(req, status, NULL, text);
    if (close)
        req->close = true;
    return finish(req);
}

/* ---- the endpoints ---------------------------------------------------------------------- */

static int grow_append(hk_web_request_t *req, const char *data, size_t len) {
    if (req->rbody_len + len + 1 > req->rbody_cap) {
        size_t cap = req->rbody_cap ? req->rbody_cap * 2 : 8192;
        while (cap < req->rbody_len + len + 1)
            cap *= 2;
        char *g = hk__realloc(req->rbody, cap);
        if (!g)
            return -ENOMEM;
        req->rbody = g;
        req->rbody_cap = cap;
    }
    memcpy(req->rbody + req->rbody_len, data, len);
    req->rbody_len += len;
    return 0;
}

static int metrics_sink(const char *data, size_t len, void *arg) {
    return grow_append(arg, data, len);
}

static void serve_endpoint(hk_web_request_t *req) {
    hk_web_t *web = req->web;
    hk__web_response_reset(req);
    hk_web_response_header(req, "Cache-Control", "no-store");
    if (req->ep == EP_METRICS) {
        int rc = hk_metrics_write(hk_host_metrics(web->host), metrics_sink, req);
        if (rc < 0) {
            hk__web_response_reset(req);
            hk_web_response_status(req, 500);
            return;
        }
        hk_web_response_header(req, "Content-Type", HK_METRICS_CONTENT_TYPE);
        return;
    }
    const char *tag = req->ep == EP_LIVE ? "live" : req->ep == EP_READY ? "ready" : NULL;
    hk_health_report_t *rep = NULL;
    char *json = NULL;
    if (hk_health_report(hk_host_health(web->host), tag, NULL, &rep) < 0 ||
        hk_health_report_json(rep, &json) < 0) {
        hk_health_report_free(rep);
        hk_web_response_status(req, 500);
        return;
    }
    hk_web_response_status(req, hk_health_http_status(rep));
    hk_web_response_header(req, "Content-Type", "application/json");
    hk_web_response_body(req, json, strlen(json));
    hk_health_json_free(json);
    hk_health_report_free(rep);
}

/* ---- access handler ---------------------------------------------------------------------- */

/* One walk over the request headers: their size, how many Content-Length
 * and Transfer-Encoding headers, and the first value of those and of Host
 * (the ones MHD_lookup_connection_value would return). */
typedef struct header_scan {
    uint64_t bytes;
    unsigned content_length; /* how many Content-Length headers */
    unsigned transfer_encoding;
    unsigned host;
    const char *cl, *te, *host_value;
} header_scan_t;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    header_scan_t *hs = cls;
    size_t kl = strlen(key);
    hs->bytes += kl + (value ? strlen(value) : 0) + 4;
    if (kl == 14 && !strcasecmp(key, "Content-Length")) {
        if (!hs->content_length++)
            hs->cl = value;
    } else if (kl == 17 && !strcasecmp(key, "Transfer-Encoding")) {
        if (!hs->transfer_encoding++)
            hs->te = value;
    } else if (kl == 4 && !strcasecmp(key, "Host")) {
        if (!hs->host++)
            hs->host_value = value;
    }
    return MHD_YES;
}

/* a.b.c.d without the printf machinery (inet_ntop formats with sprintf) */
static void format_ipv4(char *out, const unsigned char *a) {
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

static void set_peer(hk_web_request_t *req) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    memcpy(req->peer, "unix", 5);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        format_ipv4(req->peer,
                    (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->peer,
                  sizeof req->peer);
}

static enum web_endpoint endpoint_of(const hk_web_t *web, const char *path) {
    for (int e = EP_HEALTH; e <= EP_METRICS; e++)
        if (web->set.paths[e] && !strcmp(web->set.paths[e], path))
            return (enum web_endpoint)e;
    return EP_NONE;
}

/* RFC 9110 token characters (a method must be one): visible ASCII but these. */
static const bool not_tchar[128] = {
    ['"'] = true, ['('] = true, [')'] = true, [','] = true, ['/'] = true, [':'] = true,
    [';'] = true, ['<'] = true, ['='] = true, ['>'] = true, ['?'] = true, ['@'] = true,
    ['['] = true, ['\\'] = true, [']'] = true, ['{'] = true, ['}'] = true,
};

static bool is_token(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || not_tchar[c])
            return false;
    }
    return true;
}

static enum MHD_Result first_call(hk_web_request_t *req, struct MHD_Connection *conn,
                                  const char *method, const char *version) {
    hk_web_t *web = req->web;
    req->started = true;
    req->conn = conn;
    size_t ml = strlen(method);
    if (ml >= sizeof req->method) /* truncated, as snprintf would */
        ml = sizeof req->method - 1;
    memcpy(req->method, method, ml);
    req->method[ml] = 0;
    set_peer(req);
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (si && si->socket_context) {
        req->wc = si->socket_context;
        /* only this thread writes it (web_int.h) */
        uint64_t st = atomic_load_explicit(&req->wc->state, memory_order_relaxed);
        atomic_store_explicit(&req->wc->state, st | WEB_CONN_IN_REQUEST, memory_order_release);
    }

    /* Limits: header size (431), framing (400), declared body size (413). */
    header_scan_t hs = {.bytes = strlen(method) + strlen(req->uri) + 12};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &hs);
    uint64_t hb = hs.bytes;
    const char *te = hs.te;
    const char *cl = hs.cl;
    bool has_body = te || (cl && strcmp(cl, "0"));
    if (hb > web->set.max_headers)
        return answer(req, 431, "Request Header Fields Too Large", true);
    /* Gaps in the engine's checks (0.9.75): a method that is not a token, a
     * HTTP/1.1 request without Host (RFC 9112 section 3.2). */
    if (!is_token(method))
        return answer(req, 400, "Bad Request: malformed method", true);
    if (version && !strcmp(version, "HTTP/1.1") && !hs.host_value)
        return answer(req, 400, "Bad Request: no Host header", has_body);
    if (te && cl)
        return answer(req, 400, "Bad Request: both Content-Length and Transfer-Encoding", true);
    /* The engine frames the body by the first of several Content-Length (or
     * Transfer-Encoding) headers; the rest of the body would be read as the
     * next request (request smuggling behind a proxy that used another one).
     * RFC 9112 section 6.3: unrecoverable, 400 and close. */
    if (hs.content_length > 1 || hs.transfer_encoding > 1)
        return answer(req, 400, "Bad Request: repeated Content-Length or Transfer-Encoding", true);
    if (te && strcasecmp(te, "chunked"))
        return answer(req, 400, "Bad Request: unsupported Transfer-Encoding", true);

    bool eps = req->ls->management || web->set.endpoints_on_app;
    req->ep = eps ? endpoint_of(web, req->path) : EP_NONE;
    req->body_limit = web->set.max_body;
    if (req->ep != EP_NONE) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            /* not answer(): it resets the headers, Allow with them */
            hk__web_response_reset(req);
            hk_web_response_text(req, 405, NULL, "Method Not Allowed");
            hk_web_response_header(req, "Allow", "GET, HEAD");
            req->close = has_body;
            return finish(req);
        }
        return MHD_YES;
    }
    if (req->ls->management)
        return answer(req, 404, "Not Found", has_body);

    req->route_rc = hk__router_match(web->router, method, req->path, &req->match);
    if (req->route_rc == 0) {
        req->matched = true;
        req->route = req->match.ctx;
        if (req->route->def.max_body_bytes)
            req->body_limit = req->route->def.max_body_bytes;
    } else if (req->route_rc == -EINVAL) {
        return answer(req, 400, "Bad Request: malformed path", has_body);
    } else if (req->route_rc < 0 && req->route_rc != -ENOENT) {
        return answer(req, 500, "Internal Server Error", true);
    }
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && *end == 0 && n > req->body_limit)
            return answer(req, 413, "Content Too Large", true);
    }

    if (has_body && req->wc) { /* the watchdog's slow-body rule starts now (web_int.h) */
        atomic_store_explicit(&req->wc->body_bytes, 0, memory_order_release);
        atomic_store_explicit(&req->wc->body, hk__now_ns() << 1 | 1, memory_order_release);
    }

    /* Middleware: before hooks, in order. */
    for (size_t i = 0; i < web->nmws; i++) {
        req->before_ran = i + 1;
        if (!web->mws[i].before)
            continue;
        int r = web->mws[i].before(req, web->mws[i].data);
        if (r == HK_WEB_DONE) {
            req->close = has_body;
            return finish(req);
        }
        if (r < 0) {
            hk_error(web->log, "web: middleware failed for %s %s: %s", req->method, req->path,
                     hk_strerror(r));
            return answer(req, 500, "Internal Server Error", has_body);
        }
    }
    return MHD_YES;
}

/*
 * libmicrohttpd (0.9.75) cannot send a response while a request body is
 * being received: a response queued mid-body is refused. So a body over
 * the limit is read and dropped, and 413 goes out (with Connection: close)
 * once it ended; past OVERRUN_BUDGET dropped bytes the connection is cut.
 */
#define OVERRUN_BUDGET (1024u * 1024u)

static enum MHD_Result body_call(hk_web_request_t *req, const char *data, size_t len) {
    req->body_seen += len;
    if (req->wc)
        atomic_fetch_add(&req->wc->body_bytes, len);
    if (req->body_failed) {
        if (req->body_seen - req->body_limit > OVERRUN_BUDGET)
            return MHD_NO; /* closes the connection */
        return MHD_YES;
    }
    if (req->body_limit != UINT64_MAX && req->body_seen > req->body_limit) {
        req->body_failed = true;
        req->fail_status = 413;
        hk__free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return MHD_YES;
    }
    if (req->ep != EP_NONE || !req->matched)
        return MHD_YES; /* no handler will read it */
    if (req->route->def.on_body) {
        int r = req->route->def.on_body(req, data, len, req->route->def.data);
        if (r < 0) {
            req->body_failed = true;
            req->fail_status = req->status >= 400 ? req->status : 400;
            req->body_limit = req->body_seen; /* the overrun budget counts from here */
        }
        return MHD_YES;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        char *g = hk__realloc(req->body, cap);
        if (!g) {
            req->body_failed = true;
            req->fail_status = 500;
            req->body_limit = req->body_seen;
            return MHD_YES;
        }
        req->body = g;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = 0;
    return MHD_YES;
}

static void unlist_suspended(hk_web_request_t *req) {
    hk_web_t *web = req->web;
    if (!req->listed)
        return;
    pthread_mutex_lock(&web->mu);
    req->listed = false;
    if (req->sprev)
        req->sprev->snext = req->snext;
    else if (web->suspended == req)
        web->suspended = req->snext;
    if (req->snext)
        req->snext->sprev = req->sprev;
    req->snext = req->sprev = NULL;
    pthread_cond_broadcast(&web->cv);
    pthread_mutex_unlock(&web->mu);
}

static enum MHD_Result finish_async(hk_web_request_t *req) {
    unlist_suspended(req);
    if (req->forced) {
        /* The application may still be writing its response: leave it alone. */
        req->handled = true;
        req->status = 503;
        req->bytes = 0;
        req->queued = queue_static(req->conn, 503, "", true) == MHD_YES;
        return req->queued ? MHD_YES : MHD_NO;
    }
    return finish(req);
}

static void body_done(hk_web_request_t *req) {
    if (req->wc && atomic_load_explicit(&req->wc->body, memory_order_relaxed))
        atomic_store_explicit(&req->wc->body, 0, memory_order_release);
}

static enum MHD_Result final_call(hk_web_request_t *req) {
    hk_web_t *web = req->web;
    body_done(req);
    if (req->queued)
        return MHD_YES;
    if (req->async)
        return finish_async(req);
    if (req->body_failed) {
        int st = req->fail_status;
        return answer(req, st, st == 413 ? "Content Too Large" : st == 500 ? "Internal Server Error" : "Bad Request", true);
    }
    if (req->ep != EP_NONE) {
        serve_endpoint(req);
        return finish(req);
    }
    if (req->route_rc == -ENOENT) {
        hk_web_response_text(req, 404, NULL, "Not Found");
        return finish(req);
    }
    if (req->route_rc == HK__ROUTE_NO_METHOD) {
        hk_web_response_header(req, "Allow", req->match.allow);
        hk_web_response_text(req, 405, NULL, "Method Not Allowed");
        return finish(req);
    }
    if (req->body == NULL && !req->route->def.on_body)
        req->body = req->empty_body; /* "" (the request holds it) */
    atomic_store(&req->refs, 2); /* the handler may hand it to another thread */
    int r = req->route->def.handler(req, req->route->def.data);
    if (r == HK_WEB_ASYNC) {
        pthread_mutex_lock(&web->mu);
        req->snext = web->suspended;
        if (web->suspended)
            web->suspended->sprev = req;
        web->suspended = req;
        req->listed = true;
        pthread_mutex_unlock(&web->mu);
        pthread_mutex_lock(&req->amu);
        if (req->completed) { /* completed before we got here */
            pthread_mutex_unlock(&req->amu);
            return finish_async(req);
        }
        req->async = req->suspended = true;
        MHD_suspend_connection(req->conn);
        pthread_mutex_unlock(&req->amu);
        return MHD_YES;
    }
    atomic_fetch_sub(&req->refs, 1); /* never the last: the engine holds one */
    if (r < 0) {
        hk_error(web->log, "web: handler for {%s %s} failed: %s", req->method, req->route->pattern,
                 hk_strerror(r));
        return answer(req, 500, "", false);
    }
    return finish(req);
}

enum MHD_Result hk__web_access(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls) {
    (void)cls;
    (void)url;
    hk_web_request_t *req = *req_cls;
    if (!req) /* out of memory when the request line came in */
        return queue_static(conn, 503, "Service Unavailable", true);
    if (!req->started)
        return first_call(req, conn, method, version);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return body_call(req, upload_data, n);
    }
    return final_call(req);
}

/* ---- completion: log, metrics, release ----------------------------------------------------- */

void hk__web_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe) {
    (void)conn;
    web_listener_t *l = cls;
    hk_web_t *web = l->web;
    hk_web_request_t *req = *req_cls;
    *req_cls = NULL;
    if (!req)
        return;
    uint64_t now = hk__now_ns();
    double secs = (double)(now - req->t0) / 1e9;
    if (req->queued) {
        const char *route = req->route           ? req->route->pattern
                            : req->ep != EP_NONE ? web->set.paths[req->ep]
                                                 : "";
        web_route_t *r = req->route; /* handles cached per route; endpoints and 404s look up */
        hk_counter_inc(route_counter(web, r, method_index(req->method), req->status, route));
        hk_histogram_t *h = r ? atomic_load_explicit(&r->mx.duration, memory_order_acquire) : NULL;
        if (!h && hk_metric_histogram(web->m_duration, HK_LABELS(route), &h) == 0 && r)
            atomic_store_explicit(&r->mx.duration, h, memory_order_release);
        hk_histogram_observe(h, secs);
        hk_log_at(web->log, web->set.log_level, 0,
                  "{Method} {Path} -> {Status} in {ElapsedMs} ms ({Bytes} bytes)", req->method,
                  req->path, req->status, (double)((now - req->t0) / 1000u) / 1000.0, req->bytes);
    } else {
        hk_log_debug(web->log, "{Method} {Path}: connection ended before a response ({Reason})",
                     req->method, req->path, (int)toe);
    }
    if (req->wc) { /* lock-free: only this thread writes them (web_int.h) */
        atomic_store_explicit(&req->wc->body, 0, memory_order_release);
        atomic_store_explicit(&req->wc->state, now << 2 | WEB_CONN_SERVED, memory_order_release);
    }
    unlist_suspended(req); /* its links are other requests' to change: only the flag is read */
    hk_scope_free(req->scope);
    req->scope = NULL;
    /* Only the drain waits for zero; waking the watchdog on every idle moment costs a
     * futex wake-up (and a list walk) per request under load. Both seq_cst: the drain
     * sets draining, then reads inflight (web_int.h). Broadcast under the lock: the
     * drain checks and waits under it, so the wake-up cannot fall between the two. */
    if (atomic_fetch_sub(&web->inflight, 1) == 1 && atomic_load(&web->draining)) {
        pthread_mutex_lock(&web->mu);
        pthread_cond_broadcast(&web->cv);
        pthread_mutex_unlock(&web->mu);
    }
    hk__web_request_release(req);
}

/* ---- connections (for the watchdog) ----------------------------------------------------------- */

void hk__web_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe) {
    web_listener_t *l = cls;
    hk_web_t *web = l->web;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        web_conn_t *c = hk__calloc(1, sizeof *c);
        if (!c)
            return; /* not watched; the idle timeout still applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        atomic_init(&c->state, hk__now_ns() << 2);
        atomic_init(&c->body, 0);
        atomic_init(&c->body_bytes, 0);
        pthread_mutex_lock(&web->mu);
        c->next = web->conns;
        if (web->conns)
            web->conns->prev = c;
        web->conns = c;
        pthread_mutex_unlock(&web->mu);
        *socket_context = c;
        return;
    }
    web_conn_t *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&web->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        web->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&web->mu);
    *socket_context = NULL;
    hk__free(c);
}
