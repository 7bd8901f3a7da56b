/*
 * Turning a logging call into a queued record, on the calling thread:
 * message templates ({Name} holes bound to typed values by position),
 * value rendering, the thread's scope stack, and one allocation per record
 * holding every string it refers to. Depends on libc, src/common, log_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log/log_int.h"

/* ---- growable buffer ---- */

void hk__buf_reserve(hk__buf_t *b, size_t extra) {
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = hk__realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}


void hk__buf_printf(hk__buf_t *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        hk__buf_put(b, tmp, (size_t)n);
        return;
    }
    hk__buf_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hk__buf_free(hk__buf_t *b) {
    hk__free(b->p);
    *b = (hk__buf_t){0};
}

long hk__gettid(void) {
    static _Thread_local long tid;
    if (!tid)
        tid = (long)syscall(SYS_gettid);
    return tid;
}

/* ---- values ---- */

/* Decimal text of an integer (cap >= 24), without printf. */
static int fmt_int(char *out, size_t cap, bool neg, uint64_t u) {
    char rev[24];
    int n = 0;
    do {
        rev[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int len = 0;
    if (cap < 24)
        return snprintf(out, cap, "?");
    if (neg)
        out[len++] = '-';
    while (n)
        out[len++] = rev[--n];
    out[len] = '\0';
    return len;
}

/* Shortest text that reads back as the same double. */
static int fmt_double(char *out, size_t cap, double d) {
    if (isnan(d))
        return snprintf(out, cap, "NaN");
    if (isinf(d))
        return snprintf(out, cap, d > 0 ? "Infinity" : "-Infinity");
    /* Fast path for values with at most 6 decimals (durations, ratios): k =
     * d * 10^6 rounded; k / 10^6 is correctly rounded by IEEE division, as
     * strtod of its decimal text would be, so equality proves the text reads
     * back as d. */
    if (d != 0 && d > -1e9 && d < 1e9 && cap >= 32) {
        double r = d * 1e6;
        long long k = (long long)(r < 0 ? r - 0.5 : r + 0.5); /* no libm */
        if ((double)k / 1e6 == d) {
            unsigned long long u = k < 0 ? (unsigned long long)-k : (unsigned long long)k;
            unsigned long long ip = u / 1000000, fp = u % 1000000;
            int n = fmt_int(out, cap, k < 0, ip);
            if (fp) {
                char frac[8];
                int digits = 6;
                while (fp % 10 == 0) {
                    fp /= 10;
                    digits--;
                }
                for (int i = digits - 1; i >= 0; i--) {
                    frac[i] = (char)('0' + fp % 10);
                    fp /= 10;
                }
                out[n++] = '.';
                memcpy(out + n, frac, (size_t)digits);
                n += digits;
                out[n] = '\0';
            }
            return n;
        }
    }
    int n = snprintf(out, cap, "%.15g", d);
    if (n > 0 && (size_t)n < cap && strtod(out, NULL) != d)
        n = snprintf(out, cap, "%.17g", d);
    return n;
}

static int fmt_time(char *out, size_t cap, int64_t ns) {
    time_t s = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        s--;
    }
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        return snprintf(out, cap, "%" PRId64, ns);
    return snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac / 1000);
}

size_t hk__value_chars(char *tmp, size_t cap, const hk_log_value_t *v, const char **ret_str) {
    int n = 0;
    *ret_str = NULL;
    tmp[0] = '\0'; /* MISSING and errors: empty text */
    switch (v->type) {
    case HK_LOG_T_STR:
        *ret_str = v->v.s ? v->v.s : "(null)";
        return strlen(*ret_str);
    case HK_LOG_T_I64:
        n = fmt_int(tmp, cap, v->v.i < 0, v->v.i < 0 ? 0 - (uint64_t)v->v.i : (uint64_t)v->v.i);
        break;
    case HK_LOG_T_U64:
        n = fmt_int(tmp, cap, false, v->v.u);
        break;
    case HK_LOG_T_F64:
        n = fmt_double(tmp, cap, v->v.d);
        break;
    case HK_LOG_T_BOOL:
        *ret_str = v->v.b ? "true" : "false";
        return strlen(*ret_str);
    case HK_LOG_T_TIME:
        n = fmt_time(tmp, cap, v->v.i);
        break;
    case HK_LOG_T_ERRNO:
        *ret_str = hk_strerror(v->v.i > INT32_MAX ? -EINVAL : -(int)v->v.i);
        return strlen(*ret_str);
    case HK_LOG_T_MISSING:
    default:
        return 0;
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void hk__value_text(hk__buf_t *b, const hk_log_value_t *v) {
    char tmp[64];
    const char *s;
    size_t n = hk__value_chars(tmp, sizeof tmp, v, &s);
    hk__buf_put(b, s ? s : tmp, n);
}

/* ---- templates ---- */

/* A fixed-size output that truncates with "..." (no allocation on this path). */
typedef struct out {
    char *p;
    size_t len, cap;
    bool full;
} out_t;

static void out_put(out_t *o, const char *s, size_t n) {
    if (o->full)
        return;
    if (o->len + n >= o->cap) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->p + o->len, s, room);
        o->len += room;
        if (o->cap >= 4)
            memcpy(o->p + o->cap - 4, "...", 3);
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_value(out_t *o, const hk_log_value_t *v) {
    char tmp[64];
    const char *s;
    size_t n = hk__value_chars(tmp, sizeof tmp, v, &s);
    out_put(o, s ? s : tmp, n);
}

size_t hk__render_template(const char *tmpl, const hk_log_value_t *args, size_t nargs, char *msg,
                           size_t cap, hk_log_field_t *fields, size_t max, size_t *ret_nfields,
                           char *names, size_t names_cap) {
    out_t o = {msg, 0, cap, false};
    size_t nf = 0, ni = 0, used = 0;
    const char *p = tmpl;
    while (*p) {
        const char *brace = strpbrk(p, "{}");
        if (!brace) {
            out_put(&o, p, strlen(p));
            break;
        }
        out_put(&o, p, (size_t)(brace - p));
        if (brace[0] == brace[1]) { /* {{ or }} */
            out_put(&o, brace, 1);
            p = brace + 2;
            continue;
        }
        if (*brace == '}') { /* a lone '}' is literal */
            out_put(&o, brace, 1);
            p = brace + 1;
            continue;
        }
        const char *close = strchr(brace + 1, '}');
        if (!close) { /* no closing brace: the rest is literal */
            out_put(&o, brace, strlen(brace));
            break;
        }
        const char *name = brace + 1;
        size_t nlen = strcspn(name, ":,}");
        if (nlen > (size_t)(close - name))
            nlen = (size_t)(close - name);
        const hk_log_value_t *v = ni < nargs ? &args[ni] : NULL;
        ni++;
        if (v)
            out_value(&o, v);
        else
            out_put(&o, brace, (size_t)(close - brace) + 1);
        if (nf < max && used + nlen + 1 <= names_cap) {
            memcpy(names + used, name, nlen);
            names[used + nlen] = '\0';
            fields[nf].name = names + used;
            if (v) {
                fields[nf].value = *v;
            } else {
                fields[nf].value.type = HK_LOG_T_MISSING;
                fields[nf].value.v.s = NULL;
            }
            used += nlen + 1;
            nf++;
        }
        p = close + 1;
    }
    if (ni < nargs) { /* surplus arguments: visible, not lost */
        out_put(&o, " [extra:", 8);
        for (size_t i = ni; i < nargs; i++) {
            out_put(&o, " ", 1);
            out_value(&o, &args[i]);
        }
        out_put(&o, "]", 1);
    }
    o.p[o.len] = '\0';
    *ret_nfields = nf;
    return o.len;
}

/* ---- scopes ---- */

static _Thread_local hk_log_scope_t *tl_scope;

void hk_log_scope_push(hk_log_scope_t *scope, const char *name, hk_log_value_t value) {
    if (!scope)
        return;
    scope->field.name = name ? name : "Scope";
    scope->field.value = value;
    scope->_prev = tl_scope;
    tl_scope = scope;
}

void hk_log_scope_pop(hk_log_scope_t *scope) {
    if (!scope)
        return;
    for (hk_log_scope_t **pp = &tl_scope; *pp; pp = &(*pp)->_prev) {
        if (*pp == scope) {
            *pp = scope->_prev;
            break;
        }
    }
    scope->_prev = NULL;
}

/* ---- records ---- */

static size_t value_extra(const hk_log_value_t *v) {
    return v->type == HK_LOG_T_STR && v->v.s ? strlen(v->v.s) + 1 : 0;
}

static char *copy_str(char **cursor, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = *cursor;
    memcpy(d, s, n);
    *cursor += n;
    return d;
}

static void copy_field(hk_log_field_t *dst, const hk_log_field_t *src, char **cursor) {
    dst->name = copy_str(cursor, src->name ? src->name : "");
    dst->value = src->value;
    if (src->value.type == HK_LOG_T_STR && src->value.v.s)
        dst->value.v.s = copy_str(cursor, src->value.v.s);
}

hk__rec_t *hk__rec_new(hk_log_t *log, hk_logger_t *lg, const char *category, hk_log_level_t level, int event_id,
                       const char *file, int line, const char *func, const char *format,
                       const char *message, size_t msglen, const hk_log_field_t *fields,
                       size_t nfields) {
    size_t nscopes = 0;
    size_t size = sizeof(hk__rec_t) + msglen + 1 + (format ? strlen(format) + 1 : 0);
    for (const hk_log_scope_t *s = tl_scope; s; s = s->_prev) {
        nscopes++;
        size += strlen(s->field.name) + 1 + value_extra(&s->field.value);
    }
    for (size_t i = 0; i < nfields; i++)
        size += strlen(fields[i].name) + 1 + value_extra(&fields[i].value);
    size += (nfields + nscopes) * sizeof(hk_log_field_t);

    bool pooled = false;
    hk__rec_t *rec = hk__log_rec_alloc(log, size, &pooled);
    if (!rec)
        return NULL;
    hk_log_field_t *fv = (hk_log_field_t *)(void *)(rec + 1);
    hk_log_field_t *sv = fv + nfields;
    char *cursor = (char *)(sv + nscopes);

    rec->next = NULL;
    rec->logger = lg;
    rec->pooled = pooled;
    hk_log_record_t *r = &rec->r;
    memset(r, 0, sizeof *r);
    r->level = level;
    r->category = category;
    r->event_id = event_id;
    char *m = cursor;
    memcpy(m, message, msglen);
    m[msglen] = '\0';
    cursor += msglen + 1;
    r->message = m;
    r->format = format ? copy_str(&cursor, format) : NULL;
    for (size_t i = 0; i < nfields; i++) {
        copy_field(&fv[i], &fields[i], &cursor);
        if (!r->err && fields[i].value.type == HK_LOG_T_ERRNO)
            r->err = (int)fields[i].value.v.i;
    }
    r->fields = nfields ? fv : NULL;
    r->nfields = nfields;
    /* scopes: the list runs innermost first; store outermost first */
    size_t k = nscopes;
    for (const hk_log_scope_t *s = tl_scope; s; s = s->_prev)
        copy_field(&sv[--k], &s->field, &cursor);
    r->scopes = nscopes ? sv : NULL;
    r->nscopes = nscopes;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    r->file = file;
    r->line_no = line;
    r->func = func;
    r->tid = hk__gettid();
    return rec;
}
