/*
 * The web host's router (src/web/router.c): method + path templates with
 * parameters ("GET /users/{id}", "/files/{*rest}"), literal segments beating
 * parameters, 404 / 405 with the allowed methods, HEAD served by GET.
 * Pure logic, no I/O: depends on src/common only.
 */
#ifndef HK_SRC_WEB_ROUTER_H
#define HK_SRC_WEB_ROUTER_H

#include <stddef.h>

#define HK__ROUTE_MAX_PARAMS 16

typedef struct hk__router hk__router_t;

int hk__router_new(hk__router_t **ret_router);
void hk__router_free(hk__router_t *router);

/*
 * Adds a route. method: an upper-case token ("GET", "POST", ...) or "*"
 * (any method). pattern: starts with '/'; segments are literals (not "." or ".."), "{name}"
 * (one segment, name [A-Za-z0-9_]+) or, as the last segment only,
 * "{*name}" (the rest of the path, possibly empty). ctx is returned by
 * match. Returns 0, -EINVAL (bad method or pattern; err says why), -EEXIST
 * (the same method and pattern shape is taken; err names it) or -ENOMEM.
 * Not thread-safe: add every route before matching starts.
 */
int hk__router_add(hk__router_t *router, const char *method, const char *pattern, void *ctx,
                   char *err, size_t errlen);

typedef struct hk__route_match {
    void *ctx;
    const char *pattern; /* the route's template, owned by the router */
    size_t nparams;
    const char *names[HK__ROUTE_MAX_PARAMS]; /* owned by the router */
    char *values[HK__ROUTE_MAX_PARAMS];      /* percent-decoded; owned by the match */
    char allow[128]; /* on -EMETHOD: "GET, HEAD, POST" */
} hk__route_match_t;

enum { HK__ROUTE_NO_METHOD = 1 };

/*
 * Matches a request (path without the query string, still percent-encoded).
 * Segments are compared after percent-decoding; a literal segment beats a
 * parameter, a parameter beats a catch-all, at each position (so the most
 * specific route wins). HEAD matches a HEAD route, else a GET route.
 * Returns 0 (found: fill *m; free with hk__route_match_clear), -ENOENT (no
 * route has this path: 404), HK__ROUTE_NO_METHOD (the path exists for other
 * methods: 405, m->allow lists them), -EINVAL (a malformed path: bad
 * percent-encoding, an encoded '/' or NUL in a segment, a "." or ".."
 * segment, more than 64 segments: 400) or -ENOMEM.
 * Thread-safe once every route is added (read-only).
 */
int hk__router_match(const hk__router_t *router, const char *method, const char *path,
                     hk__route_match_t *m);
void hk__route_match_clear(hk__route_match_t *m);

#endif
