/*
 * Health results and report output: the result builder a check fills
 * (hk_health_result_*), result reference counting, the JSON text of a
 * report and its one-line summary for systemd's STATUS=.
 * Depends on src/common and jansson (only here and in src/config/json.c).
 *
 * jansson's allocation hooks are process-wide, so they are left alone (as in
 * src/config/json.c): the JSON tree uses malloc; the text handed to the
 * caller is copied into hostkit's allocator.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/health_int.h"

/* ---- results ------------------------------------------------------------------ */

int hk__health_result_new(hk_health_result_t **ret) {
    hk_health_result_t *r = hk__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    atomic_init(&r->refs, 1);
    r->status = HK_HEALTH_HEALTHY;
    *ret = r;
    return 0;
}

void hk__health_result_ref(hk_health_result_t *r) {
    if (r)
        atomic_fetch_add(&r->refs, 1);
}

void hk__health_result_unref(hk_health_result_t *r) {
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->ndata; i++) {
        hk__free((char *)r->data[i].key);
        hk__free((char *)r->data[i].value);
    }
    hk__free(r->data);
    hk__free(r->description);
    hk__free(r);
}

int hk_health_result_describe(hk_health_result_t *r, const char *fmt, ...) {
    if (!r || !fmt)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    char *d = hk__vasprintf(fmt, ap);
    va_end(ap);
    if (!d)
        return -ENOMEM;
    hk__free(r->description);
    r->description = d;
    return 0;
}

/* Stores key = value (value owned by the result from now on, even on failure). */
static int put(hk_health_result_t *r, const char *key, char *value, bool is_number, double number) {
    if (!value)
        return -ENOMEM;
    for (size_t i = 0; i < r->ndata; i++) {
        if (!strcmp(r->data[i].key, key)) {
            hk__free((char *)r->data[i].value);
            r->data[i].value = value;
            r->data[i].is_number = is_number;
            r->data[i].number = number;
            return 0;
        }
    }
    if (r->ndata == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        hk_health_data_t *nd = hk__realloc(r->data, cap * sizeof *nd);
        if (!nd) {
            hk__free(value);
            return -ENOMEM;
        }
        r->data = nd;
        r->cap = cap;
    }
    char *k = hk__strdup(key);
    if (!k) {
        hk__free(value);
        return -ENOMEM;
    }
    r->data[r->ndata++] = (hk_health_data_t){k, value, is_number, number};
    return 0;
}

int hk_health_result_set(hk_health_result_t *r, const char *key, const char *fmt, ...) {
    if (!r || !key || !*key || !fmt)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    char *v = hk__vasprintf(fmt, ap);
    va_end(ap);
    return put(r, key, v, false, 0);
}

int hk_health_result_set_number(hk_health_result_t *r, const char *key, double value) {
    if (!r || !key || !*key)
        return -EINVAL;
    return put(r, key, hk__asprintf("%.17g", value), true, value);
}

/* ---- JSON ---------------------------------------------------------------------- */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* Adds value under key, dropping the reference either way; false when out of memory. */
static bool set_new(json_t *obj, const char *key, json_t *value) {
    return value && json_object_set_new(obj, key, value) == 0;
}

static json_t *entry_json(const hk_health_entry_t *e) {
    json_t *o = json_object(), *tags = json_array(), *data = json_object();
    bool ok = o && tags && data;
    for (const char *p = e->tags; ok && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        ok = json_array_append_new(tags, json_stringn(p, n)) == 0;
        p += n + (end ? 1 : 0);
    }
    for (size_t i = 0; ok && i < e->ndata; i++) {
        const hk_health_data_t *d = &e->data[i];
        ok = set_new(data, d->key, d->is_number ? json_real(d->number) : json_string(d->value));
    }
    ok = ok && set_new(o, "name", json_string(e->name)) &&
         set_new(o, "status", json_string(hk_health_status_name(e->status))) &&
         set_new(o, "description", json_string(e->description)) &&
         set_new(o, "durationMs", json_real(ms(e->duration_ns))) &&
         json_object_set(o, "tags", tags) == 0 &&
         set_new(o, "timedOut", json_boolean(e->timed_out)) &&
         set_new(o, "cached", json_boolean(e->cached)) && json_object_set(o, "data", data) == 0;
    json_decref(tags);
    json_decref(data);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int hk_health_report_json(const hk_health_report_t *report, char **ret_json) {
    if (!report || !ret_json)
        return -EINVAL;
    json_t *root = json_object(), *checks = json_array();
    bool ok = root && checks;
    for (size_t i = 0; ok && i < report->n; i++) {
        json_t *e = entry_json(&report->entries[i]);
        ok = e && json_array_append_new(checks, e) == 0;
    }
    ok = ok && set_new(root, "status", json_string(hk_health_status_name(report->status))) &&
         set_new(root, "durationMs", json_real(ms(report->duration_ns))) &&
         json_object_set(root, "checks", checks) == 0;
    json_decref(checks);
    /* 15 significant digits: durations read as 0.1705, not 0.17055300000000001 */
    char *text = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(root);
    if (!text)
        return -ENOMEM;
    char *copy = hk__strdup(text);
    free(text); /* jansson's default allocator */
    if (!copy)
        return -ENOMEM;
    *ret_json = copy;
    return 0;
}

void hk_health_json_free(char *json) { hk__free(json); }

/* ---- status line --------------------------------------------------------------- */

typedef struct line {
    char *buf;
    size_t len, off; /* off counts the full length, even past len */
} line_t;

/* Appends text, with newlines turned into spaces (STATUS= is one line). */
static void add(line_t *l, const char *text) {
    for (const char *p = text; *p; p++, l->off++)
        if (l->off + 1 < l->len)
            l->buf[l->off] = *p == '\n' || *p == '\r' ? ' ' : *p;
}

int hk_health_report_status_line(const hk_health_report_t *report, char *buf, size_t len) {
    if (!report || (!buf && len > 0))
        return -EINVAL;
    line_t l = {buf, len, 0};
    add(&l, hk_health_status_name(report->status));
    bool first = true;
    for (size_t i = 0; i < report->n; i++) {
        const hk_health_entry_t *e = &report->entries[i];
        if (e->status == HK_HEALTH_HEALTHY)
            continue;
        add(&l, first ? ": " : ", ");
        first = false;
        add(&l, e->name);
        add(&l, "=");
        add(&l, hk_health_status_name(e->status));
        if (e->description[0]) {
            add(&l, " (");
            add(&l, e->description);
            add(&l, ")");
        }
    }
    if (len > 0)
        buf[l.off < len ? l.off : len - 1] = '\0';
    return l.off > (size_t)INT32_MAX ? INT32_MAX : (int)l.off;
}
