/*
 * Flattens a JSON configuration document into configuration keys (see
 * json.h). Depends on jansson and src/common.
 *
 * jansson's allocation hooks are process-wide, so they are left alone (the
 * program may use jansson itself): its temporary tree uses malloc.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "config/json.h"

typedef struct flat {
    hk__kv_cb cb;
    void *data;
    const char *name;
    char *key;     /* current path */
    size_t len, cap;
    char **error;
} flat_t;

static int push(flat_t *f, const char *part, size_t plen, size_t *saved) {
    *saved = f->len;
    size_t need = f->len + (f->len ? 1 : 0) + plen + 1;
    if (need > f->cap) {
        size_t cap = f->cap ? f->cap : 64;
        while (cap < need)
            cap *= 2;
        char *nk = hk__realloc(f->key, cap);
        if (!nk)
            return -ENOMEM;
        f->key = nk;
        f->cap = cap;
    }
    if (f->len)
        f->key[f->len++] = ':';
    memcpy(f->key + f->len, part, plen);
    f->len += plen;
    f->key[f->len] = '\0';
    return 0;
}

static void pop(flat_t *f, size_t saved) {
    f->len = saved;
    if (f->key)
        f->key[saved] = '\0';
}

/* Shortest text that parses back to the same double (0.1 -> "0.1"). */
static void fmt_real(double v, char *buf, size_t len) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int fail_empty_key(flat_t *f) {
    char *msg = hk__asprintf("%s: empty property name under \"%s\"", f->name,
                             f->len ? f->key : "(top level)");
    if (!msg)
        return -ENOMEM;
    *f->error = msg;
    return -EINVAL;
}

static int walk(flat_t *f, json_t *v);

/* Walks child with `part` appended to the current key. */
static int walk_child(flat_t *f, const char *part, size_t plen, json_t *child) {
    size_t saved;
    if (push(f, part, plen, &saved) < 0)
        return -ENOMEM;
    int rc = walk(f, child);
    pop(f, saved);
    return rc;
}

static int walk(flat_t *f, json_t *v) {
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) {
            if (!*k)
                return fail_empty_key(f);
            int rc = walk_child(f, k, strlen(k), child);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            int n = snprintf(num, sizeof num, "%zu", i);
            int rc = walk_child(f, num, (size_t)n, child);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_STRING: return f->cb(f->data, f->key, json_string_value(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return f->cb(f->data, f->key, num);
    case JSON_REAL:
        fmt_real(json_real_value(v), num, sizeof num);
        return f->cb(f->data, f->key, num);
    case JSON_TRUE: return f->cb(f->data, f->key, "true");
    case JSON_FALSE: return f->cb(f->data, f->key, "false");
    case JSON_NULL: return f->cb(f->data, f->key, "");
    }
    return 0;
}

int hk__json_flatten(const char *buf, size_t len, const char *name, hk__kv_cb cb, void *data,
                     char **ret_error) {
    json_error_t err;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return -ENOMEM;
        char *msg = err.line > 0 ? hk__asprintf("%s:%d:%d: %s", name, err.line, err.column, err.text)
                                 : hk__asprintf("%s: %s", name, err.text);
        if (!msg)
            return -ENOMEM;
        *ret_error = msg;
        return -EINVAL;
    }
    flat_t f = {.cb = cb, .data = data, .name = name, .error = ret_error};
    int rc;
    if (!json_is_object(root)) {
        char *msg = hk__asprintf("%s:1:1: the top level must be a JSON object", name);
        rc = msg ? -EINVAL : -ENOMEM;
        if (msg)
            *ret_error = msg;
    } else {
        rc = walk(&f, root);
    }
    hk__free(f.key);
    json_decref(root);
    return rc;
}
