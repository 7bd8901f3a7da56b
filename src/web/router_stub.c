/*
 * TEMPORARY stub of src/web/router.h until the real router lands on main
 * (then this file is deleted). Linear scan, literal > param > catch-all not
 * ranked beyond "first literal match wins". Depends on src/common only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "web/router.h"

typedef struct sroute {
    char method[16];
    char *pattern;
    void *ctx;
    char names[HK__ROUTE_MAX_PARAMS][32];
} sroute_t;

struct hk__router {
    sroute_t r[64];
    size_t n;
};

int hk__router_new(hk__router_t **ret) {
    hk__router_t *r = hk__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    *ret = r;
    return 0;
}

void hk__router_free(hk__router_t *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        hk__free(r->r[i].pattern);
    hk__free(r);
}

int hk__router_add(hk__router_t *r, const char *method, const char *pattern, void *ctx, char *err,
                   size_t errlen) {
    if (!method || !*method || strlen(method) >= 16 || !pattern || pattern[0] != '/') {
        snprintf(err, errlen, "bad route %s %s", method ? method : "", pattern ? pattern : "");
        return -EINVAL;
    }
    if (r->n == 64)
        return -ENOMEM;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->r[i].method, method) && !strcmp(r->r[i].pattern, pattern)) {
            snprintf(err, errlen, "duplicate route %s %s", method, pattern);
            return -EEXIST;
        }
    snprintf(r->r[r->n].method, 16, "%s", method);
    r->r[r->n].pattern = hk__strdup(pattern);
    if (!r->r[r->n].pattern)
        return -ENOMEM;
    size_t k = 0;
    for (const char *p = pattern; (p = strchr(p, '{')) && k < HK__ROUTE_MAX_PARAMS; k++) {
        p += p[1] == '*' ? 2 : 1;
        size_t l = strcspn(p, "}");
        snprintf(r->r[r->n].names[k], 32, "%.*s", (int)l, p);
    }
    r->r[r->n++].ctx = ctx;
    return 0;
}

static int unhex(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *decode(const char *s, size_t n) {
    char *o = hk__malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
            o[j++] = (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
            i += 2;
        } else
            o[j++] = s[i];
    }
    o[j] = 0;
    return o;
}

/* Path match; fills m params. Returns 1 on match. */
static int path_match(const sroute_t *s, const char *path, hk__route_match_t *m) {
    const char *pat = s->pattern;
    m->nparams = 0;
    while (*pat && *path) {
        if (*pat != '/' || *path != '/')
            return 0;
        pat++, path++;
        const char *pe = strchr(pat, '/'), *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat), sl = se ? (size_t)(se - path) : strlen(path);
        if (pat[0] == '{') {
            bool rest = pat[1] == '*';
            m->names[m->nparams] = s->names[m->nparams];
            m->values[m->nparams] = decode(path, rest ? strlen(path) : sl);
            m->nparams++;
            if (rest)
                return 1;
        } else if (pl != sl || strncmp(pat, path, pl))
            return 0;
        pat += pl, path += sl;
    }
    return !*pat && !*path;
}

static void clear_vals(hk__route_match_t *m) {
    for (size_t i = 0; i < m->nparams; i++)
        hk__free(m->values[i]);
    m->nparams = 0;
}

int hk__router_match(const hk__router_t *r, const char *method, const char *path,
                     hk__route_match_t *m) {
    memset(m, 0, sizeof *m);
    bool path_found = false;
    for (int pass = 0; pass < 2; pass++) { /* literal routes first */
        for (size_t i = 0; i < r->n; i++) {
            const sroute_t *s = &r->r[i];
            bool lit = !strchr(s->pattern, '{');
            if ((pass == 0) != lit)
                continue;
            hk__route_match_t t = {0};
            if (!path_match(s, path, &t)) {
                clear_vals(&t);
                continue;
            }
            path_found = true;
            bool ok = !strcmp(s->method, "*") || !strcmp(s->method, method) ||
                      (!strcmp(method, "HEAD") && !strcmp(s->method, "GET"));
            if (!ok) {
                size_t al = strlen(m->allow);
                snprintf(m->allow + al, sizeof m->allow - al, "%s%s", al ? ", " : "", s->method);
                if (!strcmp(s->method, "GET")) {
                    al = strlen(m->allow);
                    snprintf(m->allow + al, sizeof m->allow - al, ", HEAD");
                }
                clear_vals(&t);
                continue;
            }
            t.ctx = s->ctx;
            t.pattern = s->pattern;
            memcpy(t.allow, m->allow, sizeof t.allow);
            *m = t;
            return 0;
        }
    }
    return path_found ? HK__ROUTE_NO_METHOD : -ENOENT;
}

void hk__route_match_clear(hk__route_match_t *m) { clear_vals(m); }
