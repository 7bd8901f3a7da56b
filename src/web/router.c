/*
 * The web host's router (router.h): routes are parsed into segments once;
 * a request path is percent-decoded into segments and compared with every
 * route (route tables are small; a linear scan with no allocation but the
 * parameter values, and the decoded path when it is 256 bytes or longer). Depends on libc and src/common only.
 *
 * Specificity: at each position a literal beats a parameter, which beats a
 * catch-all; the first position that differs decides. Among the routes
 * whose pattern matches the path, only those taking the method compete;
 * none -> 405 (if some pattern matched) or 404.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "web/router.h"

#define MAX_SEGS 64

typedef enum seg_kind { SEG_CATCHALL = 0, SEG_PARAM = 1, SEG_LITERAL = 2 } seg_kind_t;

typedef struct seg {
    seg_kind_t kind;
    char *text; /* literal text, or the parameter's name */
} seg_t;

typedef struct route {
    char *method; /* "GET", or "*" */
    char *pattern;
    seg_t *segs;
    size_t nsegs;
    size_t nparams;
    void *ctx;
} route_t;

struct hk__router {
    route_t *routes;
    size_t n, cap;
};

int hk__router_new(hk__router_t **ret) {
    hk__router_t *r = hk__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    *ret = r;
    return 0;
}

static void route_free(route_t *rt) {
    for (size_t i = 0; i < rt->nsegs; i++)
        hk__free(rt->segs[i].text);
    hk__free(rt->segs);
    hk__free(rt->method);
    hk__free(rt->pattern);
}

void hk__router_free(hk__router_t *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        route_free(&r->routes[i]);
    hk__free(r->routes);
    hk__free(r);
}

static int errf(char *err, size_t len, int rc, const char *fmt, ...) HK_PRINTF(4, 5);
static int errf(char *err, size_t len, int rc, const char *fmt, ...) {
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool valid_method(const char *m) {
    if (!m || !*m)
        return false;
    if (strcmp(m, "*") == 0)
        return true;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return strlen(m) <= 16;
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses one pattern segment [s, s+n). */
static int parse_seg(const char *s, size_t n, bool last, seg_t *out, const char *pattern,
                     char *err, size_t errlen) {
    if (n == 0)
        return errf(err, errlen, -EINVAL, "route \"%s\": empty segment", pattern);
    if (s[0] != '{') {
        for (size_t i = 0; i < n; i++)
            if (s[i] == '{' || s[i] == '}')
                return errf(err, errlen, -EINVAL,
                            "route \"%s\": a segment is either literal text or one {parameter}",
                            pattern);
        if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
            return errf(err, errlen, -EINVAL,
                        "route \"%s\": a \".\" or \"..\" segment never matches (such paths are 400)",
                        pattern);
        out->kind = SEG_LITERAL;
        out->text = hk__strndup(s, n);
        return out->text ? 0 : -ENOMEM;
    }
    if (s[n - 1] != '}')
        return errf(err, errlen, -EINVAL,
                    "route \"%s\": a segment is either literal text or one {parameter}", pattern);
    const char *name = s + 1;
    size_t nlen = n - 2;
    out->kind = SEG_PARAM;
    if (nlen && name[0] == '*') {
        if (!last)
            return errf(err, errlen, -EINVAL, "route \"%s\": {*%.*s} must be the last segment",
                        pattern, (int)(nlen - 1), name + 1);
        out->kind = SEG_CATCHALL;
        name++;
        nlen--;
    }
    if (nlen == 0)
        return errf(err, errlen, -EINVAL, "route \"%s\": a parameter needs a name", pattern);
    for (size_t i = 0; i < nlen; i++)
        if (!name_char(name[i]))
            return errf(err, errlen, -EINVAL,
                        "route \"%s\": parameter names are letters, digits and _", pattern);
    out->text = hk__strndup(name, nlen);
    return out->text ? 0 : -ENOMEM;
}

static bool same_shape(const route_t *a, const route_t *b) {
    if (a->nsegs != b->nsegs || strcmp(a->method, b->method) != 0)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == SEG_LITERAL && strcasecmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

int hk__router_add(hk__router_t *r, const char *method, const char *pattern, void *ctx, char *err,
                   size_t errlen) {
    if (err && errlen)
        err[0] = '\0';
    if (!r || !valid_method(method))
        return errf(err, errlen, -EINVAL, "bad HTTP method \"%s\" (upper-case token or *)",
                    method ? method : "(null)");
    if (!pattern || pattern[0] != '/')
        return errf(err, errlen, -EINVAL, "route \"%s\": must start with /",
                    pattern ? pattern : "(null)");
    route_t rt = {0};
    int rc = -ENOMEM;
    rt.segs = hk__calloc(MAX_SEGS, sizeof *rt.segs);
    rt.method = hk__strdup(method);
    rt.pattern = hk__strdup(pattern);
    if (!rt.segs || !rt.method || !rt.pattern)
        goto fail;
    rt.ctx = ctx;
    /* "/" is the root: no segments; one trailing slash is ignored */
    const char *p = pattern + 1;
    size_t plen = strlen(p);
    if (plen && p[plen - 1] == '/')
        plen--;
    size_t i = 0;
    while (i < plen) {
        const char *slash = memchr(p + i, '/', plen - i);
        size_t n = slash ? (size_t)(slash - (p + i)) : plen - i;
        if (rt.nsegs == MAX_SEGS) {
            rc = errf(err, errlen, -EINVAL, "route \"%s\": more than %d segments", pattern,
                      MAX_SEGS);
            goto fail;
        }
        rc = parse_seg(p + i, n, !slash || i + n + 1 >= plen, &rt.segs[rt.nsegs], pattern, err,
                       errlen);
        if (rc < 0)
            goto fail;
        if (rt.segs[rt.nsegs].kind != SEG_LITERAL) {
            for (size_t k = 0; k < rt.nsegs; k++)
                if (rt.segs[k].kind != SEG_LITERAL &&
                    strcmp(rt.segs[k].text, rt.segs[rt.nsegs].text) == 0) {
                    rc = errf(err, errlen, -EINVAL, "route \"%s\": parameter {%s} appears twice",
                              pattern, rt.segs[k].text);
                    rt.nsegs++;
                    goto fail;
                }
            if (++rt.nparams > HK__ROUTE_MAX_PARAMS) {
                rc = errf(err, errlen, -EINVAL, "route \"%s\": more than %d parameters",
                          pattern, HK__ROUTE_MAX_PARAMS);
                rt.nsegs++;
                goto fail;
            }
        }
        rt.nsegs++;
        i += n + 1;
    }
    for (size_t k = 0; k < r->n; k++)
        if (same_shape(&r->routes[k], &rt)) {
            rc = errf(err, errlen, -EEXIST, "route %s %s: already mapped as %s %s", method,
                      pattern, r->routes[k].method, r->routes[k].pattern);
            goto fail;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        route_t *nr = hk__realloc(r->routes, cap * sizeof *nr);
        if (!nr) {
            rc = -ENOMEM;
            goto fail;
        }
        r->routes = nr;
        r->cap = cap;
    }
    r->routes[r->n++] = rt;
    return 0;
fail:
    route_free(&rt);
    if (rc == -ENOMEM)
        errf(err, errlen, -ENOMEM, "out of memory");
    return rc;
}

/* ---- matching ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

typedef struct path {
    char *buf;               /* decoded segments, each NUL-terminated: small or allocated */
    char small[256];         /* most paths: no allocation per match */
    const char *segs[MAX_SEGS];
    size_t nsegs;
} path_t;

/*
 * Splits and decodes the path. -EINVAL: bad escape, encoded '/' or NUL, too
 * many segments, or a dot segment ("." or "..", also percent-encoded): the
 * engine does not normalise paths, so a "{*rest}" value could otherwise climb
 * out of the directory an application serves files from (RFC 3986 section
 * 5.2.4 has clients remove them; a request that still has them is refused).
 */
static int split_path(const char *path, path_t *out) {
    if (!path || path[0] != '/')
        return -EINVAL;
    size_t len = strlen(path);
    out->buf = len < sizeof out->small ? out->small : hk__malloc(len + 1);
    if (!out->buf)
        return -ENOMEM;
    out->nsegs = 0;
    const char *p = path + 1;
    size_t plen = len - 1;
    if (plen && p[plen - 1] == '/') /* one trailing slash is ignored */
        plen--;
    char *w = out->buf;
    size_t i = 0;
    while (i < plen) {
        if (out->nsegs == MAX_SEGS)
            return -EINVAL;
        out->segs[out->nsegs++] = w;
        while (i < plen && p[i] != '/') {
            char c = p[i];
            if (c == '%') {
                int hi = i + 2 < plen ? hexval(p[i + 1]) : -1;
                int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return -EINVAL;
                c = (char)(hi * 16 + lo);
                if (c == '/' || c == '\0')
                    return -EINVAL;
                i += 3;
            } else {
                i++;
            }
            *w++ = c;
        }
        *w++ = '\0';
        const char *seg = out->segs[out->nsegs - 1];
        if (seg[0] == '.' && (seg[1] == '\0' || (seg[1] == '.' && seg[2] == '\0')))
            return -EINVAL;
        i++; /* the '/' */
    }
    return 0;
}

static void path_free(path_t *pa) {
    if (pa->buf != pa->small)
        hk__free(pa->buf);
}

/* Whether rt matches the path; fills kinds (for specificity) when it does. */
static bool pattern_matches(const route_t *rt, const path_t *pa) {
    size_t n = rt->nsegs;
    bool catchall = n && rt->segs[n - 1].kind == SEG_CATCHALL;
    if (catchall ? pa->nsegs < n - 1 : pa->nsegs != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const seg_t *s = &rt->segs[i];
        if (s->kind == SEG_CATCHALL)
            return true;
        if (s->kind == SEG_LITERAL ? strcasecmp(s->text, pa->segs[i]) != 0 : !pa->segs[i][0])
            return false;
    }
    return true;
}

/* >0 when a is more specific than b. */
static int specificity(const route_t *a, const route_t *b) {
    size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return (int)a->segs[i].kind - (int)b->segs[i].kind;
    /* a catch-all that takes nothing vs. a shorter exact route: the exact one wins */
    return (int)b->nsegs - (int)a->nsegs;
}

static bool takes_method(const route_t *rt, const char *method) {
    return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0;
}

static void add_allow(char *allow, size_t cap, const char *m) {
    size_t ml = strlen(m), al = strlen(allow);
    for (const char *p = allow; (p = strstr(p, m)); p += ml)
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
    if (al + ml + 3 > cap)
        return;
    if (al) {
        memcpy(allow + al, ", ", 2);
        al += 2;
    }
    memcpy(allow + al, m, ml + 1);
}

static char *join_rest(const path_t *pa, size_t from) {
    size_t len = 0;
    for (size_t i = from; i < pa->nsegs; i++)
        len += strlen(pa->segs[i]) + 1;
    char *s = hk__malloc(len + 1);
    if (!s)
        return NULL;
    char *w = s;
    for (size_t i = from; i < pa->nsegs; i++) {
        if (i > from)
            *w++ = '/';
        size_t n = strlen(pa->segs[i]);
        memcpy(w, pa->segs[i], n);
        w += n;
    }
    *w = '\0';
    return s;
}

int hk__router_match(const hk__router_t *r, const char *method, const char *path,
                     hk__route_match_t *m) {
    /* names and values are read up to nparams only: no need to clear 400 bytes */
    m->ctx = NULL;
    m->pattern = NULL;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (!r || !method || !path)
        return -EINVAL;
    path_t pa;
    pa.buf = NULL;
    pa.nsegs = 0;
    int rc = split_path(path, &pa);
    if (rc < 0) {
        path_free(&pa);
        return rc;
    }
    const route_t *best = NULL, *best_head_get = NULL;
    bool any = false;
    bool head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < r->n; i++) {
        const route_t *rt = &r->routes[i];
        if (!pattern_matches(rt, &pa))
            continue;
        any = true;
        if (takes_method(rt, method)) {
            int cmp = best ? specificity(rt, best) : 1;
            /* equally specific: an exact method beats "*" */
            if (cmp > 0 || (cmp == 0 && strcmp(best->method, "*") == 0 && strcmp(rt->method, "*") != 0))
                best = rt;
        } else if (head && strcmp(rt->method, "GET") == 0) {
            if (!best_head_get || specificity(rt, best_head_get) > 0)
                best_head_get = rt;
        }
    }
    if (!best)
        best = best_head_get;
    if (!best) {
        rc = any ? HK__ROUTE_NO_METHOD : -ENOENT;
        if (any) {
            for (size_t i = 0; i < r->n; i++) {
                const route_t *rt = &r->routes[i];
                if (!pattern_matches(rt, &pa))
                    continue;
                add_allow(m->allow, sizeof m->allow, rt->method);
                if (strcmp(rt->method, "GET") == 0)
                    add_allow(m->allow, sizeof m->allow, "HEAD");
            }
        }
        path_free(&pa);
        return rc;
    }
    m->ctx = best->ctx;
    m->pattern = best->pattern;
    for (size_t i = 0; i < best->nsegs; i++) {
        const seg_t *s = &best->segs[i];
        if (s->kind == SEG_LITERAL)
            continue;
        char *v = s->kind == SEG_CATCHALL ? join_rest(&pa, i) : hk__strdup(pa.segs[i]);
        if (!v) {
            hk__route_match_clear(m);
            path_free(&pa);
            return -ENOMEM;
        }
        m->names[m->nparams] = s->text;
        m->values[m->nparams++] = v;
    }
    path_free(&pa);
    return 0;
}

void hk__route_match_clear(hk__route_match_t *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nparams; i++)
        hk__free(m->values[i]);
    memset(m, 0, sizeof *m);
}
