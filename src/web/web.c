/*
 * The web host as a hosted service: set-up (routes, middleware, options),
 * listeners (URLs, socket activation), start (bind, then start the engine's
 * daemons), the slow-client watchdog and the graceful drain on stop.
 * May depend on: hostkit public headers, src/common, src/web (its headers), libmicrohttpd.
 *
 * Service states (host.h drives the transitions):
 *
 *   built --web_start--> listening --web_stop: quiesce--> draining
 *     (listeners closed, new connections refused; responses say
 *      Connection: close)
 *   draining --inflight == 0 or stop token (shutdown timeout)--> stopping
 *     (async requests still suspended are answered 503)
 *   stopping --MHD_stop_daemon (joins engine threads, closes idle
 *     keep-alive connections)--> stopped
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hostkit/systemd.h"
#include "web/web_int.h"

/* ---- options ----------------------------------------------------------------- */

typedef struct web_opts {
    char *urls;
    int64_t threads;
    char *listen_fd_name;
    int request_log_level;
    char *limits_placeholder;
} web_opts_t;

typedef struct limits_opts {
    uint64_t max_headers;
    uint64_t max_body;
    double headers_timeout;
    double keepalive_timeout;
    int64_t max_connections;
} limits_opts_t;

typedef struct mgmt_opts {
    char *urls;
    char *health, *live, *ready, *metrics;
} mgmt_opts_t;

static const char *const level_names[] = {"Trace", "Debug", "Information", "Warning",
                                          "Error", "Critical", "None", NULL};

int hk__web_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err,
                      size_t errlen);

static int validate_urls(const void *field, char *err, size_t errlen) {
    const char *s = *(char *const *)field;
    if (!s)
        return 0;
    char *copy = hk__strdup(s);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *u = strtok_r(copy, ";", &save); u; u = strtok_r(NULL, ";", &save)) {
        while (*u == ' ')
            u++;
        if (!*u)
            continue;
        char host[128];
        int port;
        if ((rc = hk__web_parse_url(u, host, sizeof host, &port, err, errlen)) < 0)
            break;
    }
    hk__free(copy);
    return rc;
}

static const hk_option_t web_fields[] = {
    {HK__OPT(web_opts_t, urls, "Urls", HK_OPTION_STRING, NULL,
             "';'-separated listen URLs (http://0.0.0.0:8080, http://unix:/path.sock)"),
     .validate = validate_urls},
    HK_OPT_INT(web_opts_t, threads, "Threads", "0", 0, 1024, "engine threads per listener (0: CPUs)"),
    HK_OPT_STRING(web_opts_t, listen_fd_name, "ListenFdName", "",
                  "socket-activated descriptor name to serve (empty: all but \"management\")"),
    HK_OPT_ENUM(web_opts_t, request_log_level, "RequestLogLevel", "Information", level_names,
                "level of the per-request log line (category hostkit.web)"),
    /* Names the Web:Limits:* subsection so its keys are not reported as unknown. */
    HK_OPT_STRING(web_opts_t, limits_placeholder, "Limits", NULL, "(a section: Web:Limits:*)"),
};
static const hk_options_def_t web_def = HK_OPTIONS_DEF("Web", web_opts_t, web_fields);

static const hk_option_t limits_fields[] = {
    HK_OPT_SIZE(limits_opts_t, max_headers, "MaxRequestHeadersBytes", "32KiB",
                "request line and headers above this: 431"),
    HK_OPT_SIZE(limits_opts_t, max_body, "MaxRequestBodyBytes", "30MB",
                "request body above this: 413"),
    HK_OPT_DOUBLE(limits_opts_t, headers_timeout, "RequestHeadersTimeoutSeconds", "30", 0.01,
                  86400, "time to receive a request's headers"),
    HK_OPT_DOUBLE(limits_opts_t, keepalive_timeout, "KeepAliveTimeoutSeconds", "120", 1, 86400,
                  "idle keep-alive connections are closed after this"),
    HK_OPT_INT(limits_opts_t, max_connections, "MaxConnections", "0", 0, 1000000,
               "concurrent connections per listener (0: engine default)"),
};
static const hk_options_def_t limits_def = HK_OPTIONS_DEF("Web:Limits", limits_opts_t, limits_fields);

static const hk_option_t mgmt_fields[] = {
    {HK__OPT(mgmt_opts_t, urls, "Urls", HK_OPTION_STRING, NULL,
             "listen URLs for the health and metrics endpoints only"),
     .validate = validate_urls},
    HK_OPT_STRING(mgmt_opts_t, health, "HealthPath", "/healthz", "all health checks (\"\": off)"),
    HK_OPT_STRING(mgmt_opts_t, live, "LivePath", "/healthz/live", "checks tagged live (\"\": off)"),
    HK_OPT_STRING(mgmt_opts_t, ready, "ReadyPath", "/healthz/ready", "checks tagged ready (\"\": off)"),
    HK_OPT_STRING(mgmt_opts_t, metrics, "MetricsPath", "/metrics", "Prometheus metrics (\"\": off)"),
};
static const hk_options_def_t mgmt_def = HK_OPTIONS_DEF("Management", mgmt_opts_t, mgmt_fields);

/* ---- URLs ------------------------------------------------------------------------ */

/*
 * Parses "http://HOST:PORT" (HOST: name, IPv4, [IPv6]) or "http://unix:/path".
 * For unix sockets host gets "unix:/path" and port 0. Returns 0 or -EINVAL.
 */
int hk__web_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err,
                      size_t errlen) {
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "\"%s\" is not an http:// URL", url);
        return -EINVAL;
    }
    const char *h = url + 7;
    if (!strncasecmp(h, "unix:", 5)) {
        const char *p = h + 5;
        if (p[0] != '/' || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "\"%s\": a unix socket needs an absolute path under 108 bytes",
                     url);
            return -EINVAL;
        }
        snprintf(host, hostlen, "%s", h);
        *port = 0;
        return 0;
    }
    const char *colon;
    const char *hs = h, *he;
    if (*h == '[') {
        he = strchr(h, ']');
        if (!he) {
            snprintf(err, errlen, "\"%s\": missing ']'", url);
            return -EINVAL;
        }
        hs = h + 1;
        colon = he + 1;
    } else {
        colon = strchr(h, ':');
        he = colon ? colon : h + strcspn(h, "/");
    }
    if (he == hs || (size_t)(he - hs) >= hostlen) {
        snprintf(err, errlen, "\"%s\": no host", url);
        return -EINVAL;
    }
    if (!colon || *colon != ':') {
        snprintf(err, errlen, "\"%s\": no port (write http://host:port)", url);
        return -EINVAL;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end && strcmp(end, "/")) || p < 0 || p > 65535 || errno) {
        snprintf(err, errlen, "\"%s\": bad port", url);
        return -EINVAL;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    *port = (int)p;
    return 0;
}

/* ---- set-up -------------------------------------------------------------------------- */

static void web_destroy(void *data);
static int web_start(hk_service_t *svc, hk_token_t *token);
static int web_stop(hk_service_t *svc, hk_token_t *token);

/* A bad route is a configuration error: the build fails with 78 naming it.
 * (Mapped after the build, too late for that: the start fails with it.) The
 * store is the builder's, which the host keeps: valid whenever this runs. */
static void set_error(hk_web_t *web, const char *what, const char *why) {
    hk_config_record_error(web->config, "Web: route %s: %s", what, why);
    if (!web->error[0])
        snprintf(web->error, sizeof web->error, "web: route %s: %s", what, why);
}

int hk_builder_add_web(hk_builder_t *builder, hk_web_t **ret_web) {
    if (!builder)
        return -EINVAL;
    hk_web_t *web = hk__calloc(1, sizeof *web);
    if (!web)
        return -ENOMEM;
    web->builder = builder;
    web->config = hk_builder_config(builder);
    pthread_mutex_init(&web->mu, NULL);
    /* The watchdog's deadlines are CLOCK_MONOTONIC: so must the condition variable be. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&web->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = hk__router_new(&web->router);
    if (rc < 0) {
        web_destroy(web);
        return rc;
    }
    if ((rc = hk_builder_add_options(builder, &web_def, &web->opts)) < 0 ||
        (rc = hk_builder_add_options(builder, &limits_def, &web->lopts)) < 0 ||
        (rc = hk_builder_add_options(builder, &mgmt_def, &web->mopts)) < 0) {
        web_destroy(web);
        return rc;
    }
    hk_service_def_t def = {
        .name = "web", .start = web_start, .stop = web_stop, .destroy = web_destroy, .data = web};
    rc = hk_builder_add_service(builder, &def);
    if (rc < 0) {
        web_destroy(web);
        return rc;
    }
    if (ret_web)
        *ret_web = web;
    return 0;
}

static void route_free(web_route_t *r) {
    if (!r)
        return;
    hk__free(r->method);
    hk__free(r->pattern);
    hk__free(r);
}

int hk_web_add_route(hk_web_t *web, const hk_web_route_def_t *def) {
    if (!web || !def || !def->method || !def->pattern || !def->handler) {
        if (web)
            set_error(web, def && def->pattern ? def->pattern : "(null)",
                      "needs a method, a pattern and a handler");
        return -EINVAL;
    }
    web_route_t *r = hk__calloc(1, sizeof *r);
    web_route_t **grown = hk__realloc(web->routes, (web->nroutes + 1) * sizeof *grown);
    if (!r || !grown) {
        hk__free(r);
        if (grown)
            web->routes = grown;
        return -ENOMEM;
    }
    web->routes = grown;
    r->def = *def;
    r->method = hk__strdup(def->method);
    r->pattern = hk__strdup(def->pattern);
    if (!r->method || !r->pattern) {
        route_free(r);
        return -ENOMEM;
    }
    r->def.method = r->method;
    r->def.pattern = r->pattern;
    char err[200] = "";
    int rc = hk__router_add(web->router, r->method, r->pattern, r, err, sizeof err);
    if (rc < 0) {
        if (rc != -ENOMEM)
            set_error(web, def->pattern, err);
        route_free(r);
        return rc;
    }
    web->routes[web->nroutes++] = r;
    return 0;
}

int hk_web_map(hk_web_t *web, const char *method, const char *pattern, hk_web_handler_cb handler,
               void *data) {
    hk_web_route_def_t def = {.method = method, .pattern = pattern, .handler = handler, .data = data};
    return hk_web_add_route(web, &def);
}

int hk_web_use(hk_web_t *web, hk_web_before_cb before, hk_web_after_cb after, void *data) {
    if (!web || (!before && !after))
        return -EINVAL;
    web_mw_t *grown = hk__realloc(web->mws, (web->nmws + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    web->mws = grown;
    web->mws[web->nmws++] = (web_mw_t){before, after, data};
    return 0;
}

size_t hk_web_listener_count(const hk_web_t *web) { return web ? web->nls : 0; }

const char *hk_web_listener_url(const hk_web_t *web, size_t i) {
    return web && i < web->nls ? web->ls[i].url : NULL;
}

int hk_web_listener_port(const hk_web_t *web, size_t i) {
    return web && i < web->nls ? web->ls[i].port : 0;
}

bool hk_web_listener_is_management(const hk_web_t *web, size_t i) {
    return web && i < web->nls && web->ls[i].management;
}

/* ---- listeners -------------------------------------------------------------------- */

static int add_listener(hk_web_t *web, int fd, bool management, bool activated) {
    web_listener_t *grown = hk__realloc(web->ls, (web->nls + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    web->ls = grown;
    web_listener_t *l = &web->ls[web->nls++];
    memset(l, 0, sizeof *l);
    l->web = web;
    l->fd = fd;
    l->management = management;
    l->activated = activated;
    /* The URL as bound. */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char a[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
            l->port = ntohs(in->sin_port);
            snprintf(l->url, sizeof l->url, "http://%s:%d", a, l->port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
            l->port = ntohs(in6->sin6_port);
            snprintf(l->url, sizeof l->url, "http://[%s]:%d", a, l->port);
        } else if (ss.ss_family == AF_UNIX) {
            struct sockaddr_un *un = (struct sockaddr_un *)&ss;
            snprintf(l->url, sizeof l->url, "http://unix:%.*s", (int)sizeof un->sun_path,
                     un->sun_path);
        }
    }
    return 0;
}

/* Binds one URL; on failure records why (naming the URL) through the service. */
static int bind_url(hk_web_t *web, const char *url, bool management) {
    char host[128], err[256];
    int port;
    int rc = hk__web_parse_url(url, host, sizeof host, &port, err, sizeof err);
    if (rc < 0)
        return hk_service_fail(web->svc, rc, "cannot listen on %s: %s", url, err);
    int fd = -1;
    char *unix_path = NULL;
    if (!strncmp(host, "unix:", 5)) {
        const char *path = host + 5;
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        memcpy(un.sun_path, path, strlen(path) + 1); /* length checked by the parser */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return hk_service_fail(web->svc, -errno, "cannot listen on %s: socket: %s", url,
                                   strerror(errno));
        /* A stale socket file from an earlier run would make bind fail. */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&un, sizeof un) < 0 || listen(fd, 1024) < 0) {
            int e = errno;
            close(fd);
            return hk_service_fail(web->svc, -e, "cannot listen on %s: %s", url, strerror(e));
        }
        unix_path = hk__strdup(path);
        if (!unix_path) {
            close(fd);
            (void)unlink(path);
            return -ENOMEM;
        }
    } else {
        const char *h = host;
        if (!strcasecmp(h, "localhost"))
            h = "127.0.0.1";
        else if (!strcmp(h, "*") || !strcmp(h, "+"))
            h = "0.0.0.0";
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        char ps[8];
        snprintf(ps, sizeof ps, "%d", port);
        int g = getaddrinfo(h, ps, &hints, &ai);
        if (g != 0)
            return hk_service_fail(web->svc, -EINVAL, "cannot listen on %s: %s", url,
                                   gai_strerror(g));
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            int e = errno;
            freeaddrinfo(ai);
            return hk_service_fail(web->svc, -e, "cannot listen on %s: socket: %s", url,
                                   strerror(e));
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
            int e = errno;
            close(fd);
            freeaddrinfo(ai);
            return hk_service_fail(web->svc, -e, "cannot listen on %s: %s", url, strerror(e));
        }
        freeaddrinfo(ai);
    }
    rc = add_listener(web, fd, management, false);
    if (rc < 0) {
        close(fd);
        if (unix_path)
            (void)unlink(unix_path);
        hk__free(unix_path);
        return rc;
    }
    web->ls[web->nls - 1].unix_path = unix_path;
    return 0;
}

static int bind_urls(hk_web_t *web, const char *urls, bool management) {
    char *copy = hk__strdup(urls);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *u = strtok_r(copy, ";", &save); u && rc == 0; u = strtok_r(NULL, ";", &save)) {
        while (*u == ' ')
            u++;
        size_t n = strlen(u);
        while (n && u[n - 1] == ' ')
            u[--n] = 0;
        if (*u)
            rc = bind_url(web, u, management);
    }
    hk__free(copy);
    return rc;
}

/* ---- the slow-client watchdog ------------------------------------------------------ */

/*
 * libmicrohttpd's own timeout is an idle timeout (reset by every byte), so
 * a client trickling header bytes (slowloris) would never hit it. This
 * thread closes (shutdown(2)) connections that have not delivered a
 * request's headers within RequestHeadersTimeoutSeconds of being accepted
 * (or, on a keep-alive connection, KeepAliveTimeoutSeconds plus that after
 * its last response). The engine then sees EOF and frees the connection.
 * While a request body comes in, the slow-body rule (HK__WEB_MIN_BODY_RATE,
 * web_int.h) applies instead: a body trickled byte by byte is cut off too.
 * The fd stays valid while the entry is listed: the engine's "closed"
 * notification removes it (under web->mu) before the engine closes the fd.
 * The per-request state it reads is atomic, written without the lock
 * (web_conn_t in web_int.h): a request costs no web->mu round trip.
 */
static void *watchdog_main(void *arg) {
    hk_web_t *web = arg;
    uint64_t tick = web->set.headers_timeout_ms / 4;
    if (tick < 20)
        tick = 20;
    if (tick > 1000)
        tick = 1000;
    pthread_mutex_lock(&web->mu);
    while (!web->wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        for (web_conn_t *c = web->conns; c; c = c->next) {
            if (c->killed)
                continue;
            /* body_bytes before body (web_int.h): both acquire. The engine threads stamp
             * without the lock: a stamp may be later than `now` (then it is fresh). */
            uint64_t bytes = atomic_load_explicit(&c->body_bytes, memory_order_acquire);
            uint64_t body = atomic_load_explicit(&c->body, memory_order_acquire);
            if (body & 1) { /* slow body: too few bytes since the headers */
                uint64_t grace = web->set.headers_timeout_ms * 1000000u;
                uint64_t t = now > body >> 1 ? now - (body >> 1) : 0;
                if (t > grace && bytes < (t - grace) / 1000000u * HK__WEB_MIN_BODY_RATE / 1000u) {
                    c->killed = true;
                    (void)shutdown(c->fd, SHUT_RDWR);
                }
                continue;
            }
            uint64_t st = atomic_load_explicit(&c->state, memory_order_acquire);
            if (st & WEB_CONN_IN_REQUEST)
                continue;
            uint64_t limit = web->set.headers_timeout_ms;
            if (st & WEB_CONN_SERVED)
                limit += web->set.keepalive_timeout_ms;
            if (now > st >> 2 && now - (st >> 2) > limit * 1000000u) {
                c->killed = true;
                (void)shutdown(c->fd, SHUT_RDWR);
            }
        }
        uint64_t until = now + tick * 1000000u;
        ts.tv_sec = (time_t)(until / 1000000000u);
        ts.tv_nsec = (long)(until % 1000000000u);
        pthread_cond_timedwait(&web->cv, &web->mu, &ts);
    }
    pthread_mutex_unlock(&web->mu);
    return NULL;
}

/* ---- start ------------------------------------------------------------------------------ */

/* clang's -Wformat-nonliteral needs the attribute to accept vsnprintf(fmt). */
static void mhd_log(void *cls, const char *fmt, va_list ap) HK_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    hk_web_t *web = cls;
    if (!hk_logger_enabled(web->log, HK_LOG_DEBUG))
        return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    hk_debug(web->log, "libmicrohttpd: %s", buf);
}

#define MAX_CONNECTION_MEMORY (4u * 1024 * 1024) /* the engine's pool per connection */

static int start_daemon(hk_web_t *web, web_listener_t *l) {
    /*
     * poll(), not epoll: libmicrohttpd 0.9.75 has an open race between
     * MHD_quiesce_daemon() and its epoll threads (both remove the listen fd
     * from the epoll set; the loser gets ENOENT and MHD_PANIC() aborts the
     * process), hit by our drain about once in 20 stops under test. With
     * poll, quiescing only signals the threads (ITC) and they rebuild their
     * poll sets without the listen socket. The cost: each wake-up scans the
     * thread's connections (O(n) rather than O(ready)), noticeable only
     * with many thousands of connections per thread.
     */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem o[16];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, web};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->fd, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)hk__web_uri_log, l};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)hk__web_completed, l};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)hk__web_conn_notify, l};
    unsigned timeout_s = (unsigned)((web->set.keepalive_timeout_ms + 999) / 1000);
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, NULL};
    /*
     * Room for the headers we check ourselves (431), the read buffer and the
     * response headers. libmicrohttpd 0.9.75 zeroes the whole pool after
     * every request (MHD_pool_reset), so its size is paid per request and
     * stays resident on every idle keep-alive connection: headers + 8 KiB.
     * Capped: a huge MaxRequestHeadersBytes (a TiB) must not ask the engine
     * for a pool it cannot allocate, which made every connection fail;
     * headers beyond the cap get the engine's own 431.
     */
    uint64_t mem = web->set.max_headers < MAX_CONNECTION_MEMORY - 8192
                       ? web->set.max_headers + 8192
                       : MAX_CONNECTION_MEMORY;
    if (mem < 16384)
        mem = 16384;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)mem, NULL};
    if (web->set.max_connections)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, web->set.max_connections, NULL};
    if (web->set.threads > 1)
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, web->set.threads, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, hk__web_access, l, MHD_OPTION_ARRAY, o,
                                 MHD_OPTION_END);
    if (!l->daemon)
        return hk_service_fail(web->svc, -EIO, "cannot serve %s: libmicrohttpd failed to start",
                               l->url);
    l->fd = -1; /* the daemon owns it now */
    return 0;
}

static char *path_or_null(const char *p) { return p && *p ? hk__strdup(p) : NULL; }

static int read_settings(hk_web_t *web, const char **ret_urls, char **ret_murls) {
    const web_opts_t *o = hk_options_acquire(web->opts);
    const mgmt_opts_t *m = hk_options_acquire(web->mopts);
    const limits_opts_t *lim = hk_options_acquire(web->lopts);
    web_settings_t *s = &web->set;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = o->threads > 0 ? (unsigned)o->threads : (cpus > 0 ? (unsigned)cpus : 1);
    s->log_level = (hk_log_level_t)o->request_log_level;
    s->max_headers = lim->max_headers;
    s->max_body = lim->max_body;
    s->headers_timeout_ms = (uint64_t)(lim->headers_timeout * 1000);
    s->keepalive_timeout_ms = (uint64_t)(lim->keepalive_timeout * 1000);
    s->max_connections = (unsigned)lim->max_connections;
    s->paths[EP_HEALTH] = path_or_null(m->health);
    s->paths[EP_LIVE] = path_or_null(m->live);
    s->paths[EP_READY] = path_or_null(m->ready);
    s->paths[EP_METRICS] = path_or_null(m->metrics);
    int rc = 0;
    char *urls = o->urls && *o->urls ? hk__strdup(o->urls) : NULL;
    if (!urls) {
        const char *env = hk_config_get(hk_host_config(web->host), "Urls");
        if (env && *env) {
            char err[256];
            char *tmp = (char *)env;
            if (validate_urls(&tmp, err, sizeof err) < 0) {
                rc = hk_service_fail(web->svc, -EINVAL, "Urls (HOSTKIT_URLS): %s", err);
            } else
                urls = hk__strdup(env);
        } else if (web->nroutes)
            urls = hk__strdup("http://localhost:5000");
    }
    *ret_murls = m->urls && *m->urls ? hk__strdup(m->urls) : NULL;
    s->endpoints_on_app = *ret_murls == NULL;
    *ret_urls = urls;
    hk_options_release(web->lopts, lim);
    hk_options_release(web->mopts, m);
    hk_options_release(web->opts, o);
    return rc;
}

/* Socket-activated descriptors: "management" ones serve the endpoints, the others the app. */
static int take_activated(hk_web_t *web, bool *ret_app, bool *ret_mgmt) {
    const web_opts_t *o = hk_options_acquire(web->opts);
    char want[64];
    snprintf(want, sizeof want, "%s", o->listen_fd_name ? o->listen_fd_name : "");
    hk_options_release(web->opts, o);
    size_t n = hk_host_listen_fd_count(web->host);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *name = hk_host_listen_fd_name(web->host, i);
        bool mgmt = name && !strcmp(name, "management");
        if (!mgmt && want[0] && (!name || strcmp(name, want)))
            continue;
        if (hk_host_listen_fd(web->host, i) < 0)
            continue;
        int fd = hk_host_take_listen_fd(web->host, i);
        if (fd < 0)
            continue;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        rc = add_listener(web, fd, mgmt, true);
        if (rc < 0) {
            close(fd);
            break;
        }
        web->ls[web->nls - 1].activated = true;
        *(mgmt ? ret_mgmt : ret_app) = true;
    }
    return rc;
}

static int web_start(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    hk_web_t *web = hk_service_data(svc);
    web->svc = svc;
    web->host = hk_service_host(svc);
    web->log = hk_host_logger(web->host, "hostkit.web");
    if (web->error[0])
        return hk_service_fail(svc, -EINVAL, "%s", web->error);
    const char *urls = NULL;
    char *murls = NULL;
    int rc = read_settings(web, &urls, &murls);
    if (rc < 0)
        goto out;

    /* Metrics: the two HTTP series, by route template. */
    hk_metrics_t *mx = hk_host_metrics(web->host);
    hk_metric_def_t total = {.type = HK_METRIC_COUNTER,
                             .name = "hostkit_http_requests_total",
                             .help = "HTTP requests answered, by method, route template and status.",
                             .labels = HK_LABELS("method", "route", "status")};
    hk_metric_def_t dur = {.type = HK_METRIC_HISTOGRAM,
                           .name = "hostkit_http_request_duration_seconds",
                           .help = "HTTP request duration, from the request line to the response sent, by route template.",
                           .labels = HK_LABELS("route")};
    if ((rc = hk_metrics_register(mx, &total, &web->m_total)) < 0 ||
        (rc = hk_metrics_register(mx, &dur, &web->m_duration)) < 0) {
        rc = hk_service_fail(svc, rc, "web: metrics: %s", hk_metrics_last_error());
        goto out;
    }

    bool act_app = false, act_mgmt = false;
    if ((rc = take_activated(web, &act_app, &act_mgmt)) < 0)
        goto out;
    if (!act_app && urls && (rc = bind_urls(web, urls, false)) < 0)
        goto out;
    if (!act_mgmt && murls && (rc = bind_urls(web, murls, true)) < 0)
        goto out;
    if (act_mgmt)
        web->set.endpoints_on_app = false;
    if (web->nls == 0) {
        /* expected for a worker that only offers the management endpoints and
           was not given Management:Urls; a warning when routes are mapped */
        hk_log(web->log, web->nroutes ? HK_LOG_WARN : HK_LOG_DEBUG,
               "web: no listener (set Web:Urls, or Management:Urls for the health and metrics "
               "endpoints)");
        goto out;
    }
    for (size_t i = 0; i < web->nls && rc == 0; i++)
        rc = start_daemon(web, &web->ls[i]);
    if (rc < 0)
        goto out;
    if (pthread_create(&web->wd, NULL, watchdog_main, web) != 0) {
        rc = hk_service_fail(svc, -EAGAIN, "web: cannot start the watchdog thread");
        goto out;
    }
    web->wd_running = true;
    for (size_t i = 0; i < web->nls; i++)
        hk_log_info(web->log, "Now listening on: {Url}{Kind}", web->ls[i].url,
                    web->ls[i].management ? " (health and metrics)" : "");
out:
    hk__free((char *)urls);
    hk__free(murls);
    return rc; /* on failure, web_stop is not called: web_destroy releases the listeners */
}

/* ---- stop: the drain ------------------------------------------------------------------ */

static void wake(hk_token_t *token, void *data) {
    (void)token;
    hk_web_t *web = data;
    pthread_mutex_lock(&web->mu);
    pthread_cond_broadcast(&web->cv);
    pthread_mutex_unlock(&web->mu);
}

static void stop_daemons(hk_web_t *web) {
    pthread_mutex_lock(&web->mu);
    web->wd_stop = true;
    pthread_cond_broadcast(&web->cv);
    pthread_mutex_unlock(&web->mu);
    if (web->wd_running) {
        pthread_join(web->wd, NULL);
        web->wd_running = false;
    }
    for (size_t i = 0; i < web->nls; i++) {
        web_listener_t *l = &web->ls[i];
        if (l->daemon) {
            MHD_stop_daemon(l->daemon);
            l->daemon = NULL;
        }
        if (l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
        if (l->unix_path) {
            (void)unlink(l->unix_path);
            hk__free(l->unix_path);
            l->unix_path = NULL;
        }
    }
}

static int web_stop(hk_service_t *svc, hk_token_t *token) {
    hk_web_t *web = hk_service_data(svc);
    /* 1. Close the listeners: new connections are refused from here on. */
    for (size_t i = 0; i < web->nls; i++) {
        web_listener_t *l = &web->ls[i];
        if (!l->daemon)
            continue;
        MHD_socket fd = MHD_quiesce_daemon(l->daemon);
        /*
         * The engine's thread may still touch the descriptor (poll) after
         * quiesce returns, so it is closed only after the engine
         * stopped (stop_daemons). shutdown(2) on a listening socket takes it
         * out of LISTEN at once on Linux: new connections are refused now.
         * Not a socket-activated one: the service manager shares it and keeps
         * listening (connections queue for the next start); shut down, it
         * would hang up for systemd too, which fails the .socket unit.
         */
        if (fd != MHD_INVALID_SOCKET) {
            if (!l->activated)
                (void)shutdown(fd, SHUT_RDWR);
            l->fd = fd;
        }
        if (l->unix_path) {
            (void)unlink(l->unix_path);
            hk__free(l->unix_path);
            l->unix_path = NULL;
        }
    }
    /* 2. Let in-flight requests finish, until the shutdown timeout. */
    hk_token_reg_t reg = {0};
    hk_token_register(token, &reg, wake, web);
    pthread_mutex_lock(&web->mu);
    web->draining = true;
    if (web->inflight)
        hk_log_info(web->log, "Listeners closed; waiting for {Count} request(s) in flight",
                    (int64_t)web->inflight);
    while (web->inflight > 0 && !hk_token_is_cancelled(token))
        pthread_cond_wait(&web->cv, &web->mu);
    long left = web->inflight;
    /* 3. Answer async requests nobody completed: 503. */
    for (hk_web_request_t *r = web->suspended; r; r = r->snext) {
        pthread_mutex_lock(&r->amu);
        if (!r->completed) {
            r->forced = r->completed = true;
            if (r->suspended)
                MHD_resume_connection(r->conn);
        }
        pthread_mutex_unlock(&r->amu);
    }
    pthread_mutex_unlock(&web->mu);
    hk_token_unregister(&reg);
    if (left > 0) {
        hk_log_warn(web->log, "Shutdown timeout: {Count} request(s) still in flight are cut off",
                    (int64_t)left);
        /* Give the engine a moment to send the 503s queued above, i.e. until
         * their requests completed (sent), not merely left the suspended
         * list (queued); bounded. */
        pthread_mutex_lock(&web->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* web->cv runs on CLOCK_MONOTONIC */
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        while (web->inflight > 0 && pthread_cond_timedwait(&web->cv, &web->mu, &ts) == 0)
            ;
        pthread_mutex_unlock(&web->mu);
    }
    /* 4. Stop the engine: joins its threads, closes idle keep-alive connections. */
    stop_daemons(web);
    return 0;
}

static void web_destroy(void *data) {
    hk_web_t *web = data;
    if (!web)
        return;
    stop_daemons(web);
    for (size_t i = 0; i < web->nroutes; i++)
        route_free(web->routes[i]);
    hk__free(web->routes);
    hk__free(web->mws);
    hk__free(web->ls);
    for (size_t i = 0; i < HK_ARRAY_SIZE(web->set.paths); i++)
        hk__free(web->set.paths[i]);
    hk__router_free(web->router);
    pthread_cond_destroy(&web->cv);
    pthread_mutex_destroy(&web->mu);
    hk__free(web);
}
