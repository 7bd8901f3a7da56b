/*
 * libFuzzer driver for the web router (src/web/router.c; no I/O): the
 * input is lines. Lines before the first empty line are routes
 * ("METHOD PATTERN"), added with hk__router_add; the lines after it are
 * requests ("METHOD PATH"), matched with hk__router_match. A line without
 * a space is a pattern or path with method "GET". At most MAX_LINES lines.
 *
 * Checked on every input:
 *  - add returns 0, -EINVAL or -EEXIST, and an error message on failure;
 *  - match returns 0, -ENOENT, HK__ROUTE_NO_METHOD or -EINVAL; on 0 the
 *    context is one of the routes added, nparams is at most
 *    HK__ROUTE_MAX_PARAMS and every value is a string; on
 *    HK__ROUTE_NO_METHOD the Allow list is not empty; matching twice gives
 *    the same route;
 *  - a literal route (no '{', '}' or '%') matches its own pattern with its
 *    own method (some route wins, never 404/405/400);
 *  - nothing leaks, no out-of-bounds access (ASan), no UB (UBSan).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/router.h"

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct added {
    const char *method, *pattern;
    int tag;
} added_t;

/* Splits "METHOD REST" in place; a line with no space is "GET" and the whole line. */
static void split(char *line, const char **method, const char **rest) {
    char *sp = strchr(line, ' ');
    if (!sp) {
        *method = "GET";
        *rest = line;
        return;
    }
    *sp = '\0';
    *method = line;
    *rest = sp + 1;
}

static void check_match(const hk__router_t *r, const added_t *routes, size_t n, const char *method,
                        const char *path) {
    hk__route_match_t m;
    int rc = hk__router_match(r, method, path, &m);
    CHECK(rc == 0 || rc == -ENOENT || rc == HK__ROUTE_NO_METHOD || rc == -EINVAL);
    if (rc == HK__ROUTE_NO_METHOD)
        CHECK(m.allow[0] != '\0');
    if (rc != 0)
        return;
    const added_t *hit = m.ctx;
    CHECK(hit >= routes && hit < routes + n);
    CHECK(m.pattern && strcmp(m.pattern, hit->pattern) == 0);
    CHECK(m.nparams <= HK__ROUTE_MAX_PARAMS);
    for (size_t i = 0; i < m.nparams; i++)
        CHECK(m.names[i] && m.values[i] && strlen(m.values[i]) <= strlen(path));
    hk__route_match_t again;
    CHECK(hk__router_match(r, method, path, &again) == 0 && again.ctx == m.ctx &&
          again.nparams == m.nparams);
    hk__route_match_clear(&again);
    hk__route_match_clear(&m);
    CHECK(m.nparams == 0 && m.ctx == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    hk__router_t *r = NULL;
    CHECK(hk__router_new(&r) == 0);
    added_t routes[MAX_LINES];
    size_t nroutes = 0;
    bool matching = false;
    size_t lines = 0;
    /* strtok_r would merge empty lines; walk them by hand. */
    for (char *line = buf; line && lines < MAX_LINES; lines++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *next = nl ? nl + 1 : NULL;
        if (!matching && line[0] == '\0') {
            matching = true;
            line = next;
            continue;
        }
        const char *method, *rest;
        split(line, &method, &rest);
        if (!matching) {
            char err[256] = "x";
            added_t *a = &routes[nroutes];
            int rc = hk__router_add(r, method, rest, a, err, sizeof err);
            CHECK(rc == 0 || rc == -EINVAL || rc == -EEXIST);
            if (rc == 0) {
                CHECK(err[0] == '\0');
                a->method = method;
                a->pattern = rest;
                a->tag = (int)nroutes;
                nroutes++;
            } else {
                CHECK(err[0] != '\0');
            }
        } else {
            check_match(r, routes, nroutes, method, rest);
        }
        line = next;
    }
    /* Every literal route matches its own pattern. */
    for (size_t i = 0; i < nroutes; i++) {
        const added_t *a = &routes[i];
        if (strpbrk(a->pattern, "{}%") || strcmp(a->method, "*") == 0)
            continue;
        hk__route_match_t m;
        int rc = hk__router_match(r, a->method, a->pattern, &m);
        if (rc != 0)
            fprintf(stderr, "literal route %s %s: match gave %d\n", a->method, a->pattern, rc);
        CHECK(rc == 0);
        hk__route_match_clear(&m);
    }
    hk__router_free(r);
    free(buf);
    return 0;
}
