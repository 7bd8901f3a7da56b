/*
 * Typed options (hostkit/options.h, options_int.h): binds a configuration
 * section onto a described struct, validates it, publishes it as an immutable
 * ref-counted snapshot; the duration/size parsers, unknown keys, --help lines.
 * Depends on libc, pthreads, src/common and only the config store's public
 * API (hk_config_get, _source_of, _count, _key_at).
 *
 * Snapshot lifecycle (refs and current are only touched under opts->mu):
 *
 *     hk__options_bind            hk_options_acquire   hk_options_release
 *   new ---------------> CURRENT (refs = 1 + readers) <-------------------->
 *                           |  next successful hk__options_bind, or
 *                           |  hk__options_free: the current ref is dropped
 *                           v
 *                        RETIRED (refs = readers) --last release--> freed
 *
 * Invariants:
 *  - A snapshot is never written after it became current: readers share it
 *    without further locking, the mutex hand-off orders the bind's writes
 *    before every reader's reads.
 *  - Whoever drops refs to 0 frees the snapshot, after unlocking.
 *  - A failed bind frees its half-built snapshot and leaves current alone.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "config/options_int.h"

typedef struct snap {
    size_t refs;        /* readers, + 1 while current */
    max_align_t data[]; /* def.size bytes: the user's struct */
} snap_t;

struct hk_options_s {
    hk_options_def_t def;
    pthread_mutex_t mu;
    snap_t *current; /* NULL before the first successful bind */
};

#define E6 UINT64_C(1000000)
#define E18 UINT64_C(1000000000000000000)

/* ---- text: a message buffer that starts on the stack ----------------------
 * Messages must still be delivered when memory is short, so a failed growth
 * truncates the text instead of failing. Never copy a text_t. */

typedef struct text {
    char *s;
    size_t len, cap;
    char buf[256];
} text_t;

static void text_init(text_t *t) {
    t->s = t->buf;
    t->len = 0;
    t->cap = sizeof t->buf;
    t->buf[0] = '\0';
}

static void text_done(text_t *t) {
    if (t->s != t->buf)
        hk__free(t->s);
}

static void text_vadd(text_t *t, const char *fmt, va_list ap) HK_PRINTF(2, 0);
static void text_vadd(text_t *t, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    if ((size_t)n < t->cap - t->len) {
        t->len += (size_t)n;
        return;
    }
    size_t need = t->len + (size_t)n + 1;
    size_t cap = t->cap * 2 > need ? t->cap * 2 : need;
    char *p = t->s == t->buf ? hk__malloc(cap) : hk__realloc(t->s, cap);
    if (!p) { /* keep what vsnprintf managed to write */
        t->len = t->cap - 1;
        return;
    }
    if (t->s == t->buf)
        memcpy(p, t->buf, t->len + 1);
    t->s = p;
    t->cap = cap;
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    t->len += (size_t)n;
}

static void text_add(text_t *t, const char *fmt, ...) HK_PRINTF(2, 3);
static void text_add(text_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    text_vadd(t, fmt, ap);
    va_end(ap);
}

/* ---- number scanning shared by the parsers --------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* digits ['.' digits]: the integer part (with a flag when it overflows)
 * and the fraction digits, which are left as text for exact arithmetic. */
typedef struct num {
    uint64_t ipart;
    bool overflow;
    const char *frac; /* NULL without a '.' */
    size_t nfrac;
} num_t;

/* Scans a number at p; returns the end, or NULL when p holds none. */
static const char *scan_num(const char *p, num_t *n) {
    if (!is_digit(*p))
        return NULL;
    *n = (num_t){0};
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n->ipart > (UINT64_MAX - d) / 10)
            n->overflow = true;
        else
            n->ipart = n->ipart * 10 + d;
    }
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return NULL;
        n->frac = p;
        while (is_digit(*p))
            p++;
        n->nfrac = (size_t)(p - n->frac);
    }
    return p;
}

/*
 * 0.<digits> * unit, exactly for the first 18 digits (later ones are below
 * 1e-18 of the unit and ignored): *ret_int whole units of the result plus
 * *ret_rem / 1e18. unit must be below 1.8e13 (TiB is 1.1e12). The fraction
 * F (18 digits) is split into three 6-digit limbs so no product overflows.
 */
static void frac_times(const char *digits, size_t n, uint64_t unit, uint64_t *ret_int,
                       uint64_t *ret_rem) {
    uint64_t f = 0;
    for (size_t i = 0; i < 18; i++)
        f = f * 10 + (i < n ? (uint64_t)(digits[i] - '0') : 0);
    uint64_t hi = f / (E6 * E6), mid = f / E6 % E6, lo = f % E6;
    uint64_t a = unit * lo;           /* units of 1e-18 */
    uint64_t b = unit * mid + a / E6; /* units of 1e-12 */
    uint64_t c = unit * hi + b / E6;  /* units of 1e-6 */
    *ret_int = c / E6;
    *ret_rem = c % E6 * E6 * E6 + b % E6 * E6 + a % E6;
}

/* *acc += v unless that exceeds max. */
static bool add_within(uint64_t *acc, uint64_t v, uint64_t max) {
    if (*acc > max || v > max - *acc)
        return false;
    *acc += v;
    return true;
}

/* ---- durations -------------------------------------------------------------- */

enum { UNIT_D, UNIT_H, UNIT_M, UNIT_S, UNIT_MS };
static const uint64_t unit_ms[] = {86400000, 3600000, 60000, 1000, 1};
static const char *const unit_name[] = {"d", "h", "m", "s", "ms"};

/* The unit at *p (advancing past it), or -1. "ms" is tried before "m". */
static int scan_unit(const char **p) {
    const char *s = *p;
    int u;
    if (s[0] == 'm' && s[1] == 's')
        u = UNIT_MS;
    else if (s[0] == 'd')
        u = UNIT_D;
    else if (s[0] == 'h')
        u = UNIT_H;
    else if (s[0] == 'm')
        u = UNIT_M;
    else if (s[0] == 's')
        u = UNIT_S;
    else
        return -1;
    *p = s + strlen(unit_name[u]);
    return u;
}

/* Adds whole units plus the remainder (1e-18 ms) of a fraction to a total. */
typedef struct dur_acc {
    uint64_t ms, rem;
    bool overflow;
} dur_acc_t;

static void dur_add(dur_acc_t *acc, const num_t *n, uint64_t unit) {
    if (n->overflow || n->ipart > (uint64_t)INT64_MAX / unit ||
        !add_within(&acc->ms, n->ipart * unit, INT64_MAX)) {
        acc->overflow = true;
        return;
    }
    if (n->frac) {
        uint64_t whole, rem;
        frac_times(n->frac, n->nfrac, unit, &whole, &rem);
        acc->rem += rem; /* both < 1e18: no overflow */
        if (acc->rem >= E18) {
            acc->rem -= E18;
            whole++;
        }
        if (!add_within(&acc->ms, whole, INT64_MAX))
            acc->overflow = true;
    }
}

/* Rounds to the nearest ms (halves up) and stores the result. */
static int dur_finish(dur_acc_t *acc, int64_t *ret_ms) {
    if (!acc->overflow && acc->rem >= E18 / 2 && !add_within(&acc->ms, 1, INT64_MAX))
        acc->overflow = true;
    if (acc->overflow)
        return -ERANGE;
    *ret_ms = (int64_t)acc->ms;
    return 0;
}

/* 1h30m: numbers with units, largest unit first, each unit at most once. */
static int parse_unit_sum(const char *p, int64_t *ret_ms) {
    dur_acc_t acc = {0};
    int last = -1;
    while (*p) {
        num_t n;
        p = scan_num(p, &n);
        if (!p)
            return -EINVAL;
        int u = scan_unit(&p);
        if (u < 0 || u <= last)
            return -EINVAL;
        last = u;
        dur_add(&acc, &n, unit_ms[u]);
    }
    if (last < 0)
        return -EINVAL;
    return dur_finish(&acc, ret_ms);
}

/* 1 or 2 digits at *p, advancing; -1 when there are none or more. */
static int scan_2digits(const char **p) {
    const char *s = *p;
    if (!is_digit(s[0]))
        return -1;
    int v = s[0] - '0';
    size_t n = 1;
    if (is_digit(s[1])) {
        v = v * 10 + (s[1] - '0');
        n = 2;
    }
    if (is_digit(s[n]))
        return -1;
    *p = s + n;
    return v;
}

/* .NET TimeSpan: [d.]hh:mm:ss[.fff], hh < 24, mm and ss < 60. */
static int parse_timespan(const char *p, int64_t *ret_ms) {
    dur_acc_t acc = {0};
    num_t days = {0};
    size_t nd = strspn(p, "0123456789");
    if (nd && p[nd] == '.') { /* "d." ahead of the hours */
        for (; is_digit(*p); p++) {
            unsigned d = (unsigned)(*p - '0');
            if (days.ipart > (UINT64_MAX - d) / 10)
                days.overflow = true;
            else
                days.ipart = days.ipart * 10 + d;
        }
        p++;
    }
    int hh = scan_2digits(&p);
    if (hh < 0 || *p++ != ':')
        return -EINVAL;
    int mm = scan_2digits(&p);
    if (mm < 0 || *p++ != ':')
        return -EINVAL;
    int ss = scan_2digits(&p);
    if (ss < 0)
        return -EINVAL;
    num_t frac = {0};
    if (*p == '.') {
        frac.frac = ++p;
        while (is_digit(*p))
            p++;
        frac.nfrac = (size_t)(p - frac.frac);
        if (!frac.nfrac)
            return -EINVAL;
    }
    if (*p || hh > 23 || mm > 59 || ss > 59)
        return -EINVAL;
    dur_add(&acc, &days, unit_ms[UNIT_D]);
    frac.ipart = (uint64_t)hh * 3600 + (uint64_t)mm * 60 + (uint64_t)ss;
    dur_add(&acc, &frac, 1000);
    return dur_finish(&acc, ret_ms);
}

int hk_parse_duration_ms(const char *text, int64_t *ret_ms) {
    if (!text || !ret_ms)
        return -EINVAL;
    return strchr(text, ':') ? parse_timespan(text, ret_ms) : parse_unit_sum(text, ret_ms);
}

/* The shortest exact spelling hk_parse_duration_ms reads back: "1m30s", "0ms". */
static void fmt_duration(char *buf, size_t len, int64_t ms) {
    size_t at = 0;
    uint64_t v = (uint64_t)ms;
    if (ms < 0) {
        at += (size_t)snprintf(buf, len, "-");
        v = (uint64_t)0 - v;
    }
    if (v == 0) {
        snprintf(buf + at, len - at, "0ms");
        return;
    }
    for (int u = UNIT_D; u <= UNIT_MS && at < len; u++) {
        uint64_t k = v / unit_ms[u];
        v %= unit_ms[u];
        if (k)
            at += (size_t)snprintf(buf + at, len - at, "%llu%s", (unsigned long long)k,
                                   unit_name[u]);
    }
}

/* ---- sizes ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint64_t bytes;
} size_units[] = {
    {"TiB", UINT64_C(1) << 40}, {"GiB", UINT64_C(1) << 30}, {"MiB", UINT64_C(1) << 20},
    {"KiB", UINT64_C(1) << 10}, {"TB", UINT64_C(1000000000000)}, {"GB", UINT64_C(1000000000)},
    {"MB", UINT64_C(1000000)},  {"KB", UINT64_C(1000)},         {"B", 1},
};

int hk_parse_size(const char *text, uint64_t *ret_bytes) {
    if (!text || !ret_bytes)
        return -EINVAL;
    num_t n;
    const char *p = scan_num(text, &n);
    if (!p)
        return -EINVAL;
    uint64_t unit = 0;
    if (!*p && !n.frac) {
        unit = 1; /* plain bytes; a fraction needs a unit */
    } else {
        for (size_t i = 0; i < HK_ARRAY_SIZE(size_units) && !unit; i++)
            if (strcmp(p, size_units[i].name) == 0)
                unit = size_units[i].bytes;
        if (!unit)
            return -EINVAL;
    }
    if (n.overflow || n.ipart > UINT64_MAX / unit)
        return -ERANGE;
    uint64_t v = n.ipart * unit;
    if (n.frac) {
        uint64_t whole, rem;
        frac_times(n.frac, n.nfrac, unit, &whole, &rem); /* rounded down: rem dropped */
        if (!add_within(&v, whole, UINT64_MAX))
            return -ERANGE;
    }
    *ret_bytes = v;
    return 0;
}

/* An exact spelling hk_parse_size reads back: the largest unit dividing it. */
static void fmt_size(char *buf, size_t len, uint64_t bytes) {
    for (size_t i = 0; bytes && i + 1 < HK_ARRAY_SIZE(size_units); i++) {
        if (bytes % size_units[i].bytes == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(bytes / size_units[i].bytes),
                     size_units[i].name);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* ---- ranges ------------------------------------------------------------------ */

/*
 * ceil (up) or floor of d, clamped into int64 / uint64 (NaN: the lowest).
 * Written out rather than calling ceil()/floor(): libhostkit does not link
 * libm, and unoptimised builds would need it.
 */
static int64_t to_i64(double d, bool up) {
    if (!(d > -9223372036854775808.0))
        return INT64_MIN;
    if (d >= 9223372036854775808.0)
        return INT64_MAX;
    int64_t t = (int64_t)d; /* toward zero; exact, as is (double)t */
    if (up && (double)t < d)
        t++;
    else if (!up && (double)t > d)
        t--;
    return t;
}

static uint64_t to_u64(double d, bool up) {
    if (!(d > 0))
        return 0;
    if (d >= 18446744073709551616.0)
        return UINT64_MAX;
    uint64_t t = (uint64_t)d;
    if (up && (double)t < d)
        t++;
    return t;
}

/* The inclusive range of an INT or DURATION field (durations are never negative). */
static void range_i64(const hk_option_t *f, int64_t *lo, int64_t *hi) {
    int64_t bottom = f->type == HK_OPTION_DURATION ? 0 : INT64_MIN;
    *lo = f->has_range ? to_i64(f->min, true) : bottom;
    *hi = f->has_range ? to_i64(f->max, false) : INT64_MAX;
    if (*lo < bottom)
        *lo = bottom;
}

/* The inclusive range of a UINT or SIZE field. */
static void range_u64(const hk_option_t *f, uint64_t *lo, uint64_t *hi) {
    *lo = f->has_range ? to_u64(f->min, true) : 0;
    *hi = f->has_range ? to_u64(f->max, false) : UINT64_MAX;
}

/* "0..1000", "100ms..1h", "1KiB..10MiB"; empty without a range. */
static void fmt_range(char *buf, size_t len, const hk_option_t *f) {
    char a[48], b[48];
    int64_t ilo, ihi;
    uint64_t ulo, uhi;
    buf[0] = '\0';
    if (!f->has_range)
        return;
    switch (f->type) {
    case HK_OPTION_INT:
        range_i64(f, &ilo, &ihi);
        snprintf(buf, len, "%lld..%lld", (long long)ilo, (long long)ihi);
        break;
    case HK_OPTION_UINT:
        range_u64(f, &ulo, &uhi);
        snprintf(buf, len, "%llu..%llu", (unsigned long long)ulo, (unsigned long long)uhi);
        break;
    case HK_OPTION_DOUBLE:
        snprintf(buf, len, "%g..%g", f->min, f->max);
        break;
    case HK_OPTION_DURATION:
        range_i64(f, &ilo, &ihi);
        fmt_duration(a, sizeof a, ilo);
        fmt_duration(b, sizeof b, ihi);
        snprintf(buf, len, "%s..%s", a, b);
        break;
    case HK_OPTION_SIZE:
        range_u64(f, &ulo, &uhi);
        fmt_size(a, sizeof a, ulo);
        fmt_size(b, sizeof b, uhi);
        snprintf(buf, len, "%s..%s", a, b);
        break;
    default:
        break;
    }
}

/* ---- definitions and snapshots ---------------------------------------------- */

static size_t type_size(hk_option_type_t t) {
    switch (t) {
    case HK_OPTION_STRING: return sizeof(char *);
    case HK_OPTION_BOOL: return sizeof(bool);
    case HK_OPTION_INT:
    case HK_OPTION_DURATION: return sizeof(int64_t);
    case HK_OPTION_UINT:
    case HK_OPTION_SIZE: return sizeof(uint64_t);
    case HK_OPTION_DOUBLE: return sizeof(double);
    case HK_OPTION_ENUM: return sizeof(int);
    case HK_OPTION_LIST: return sizeof(hk_strlist_t);
    }
    return 0;
}

/* Field names are single path components: binding and the unknown-key check
 * split keys at ':'. */
static bool def_valid(const hk_options_def_t *def) {
    if (!def || !def->section || !*def->section || !def->size || (def->nfields && !def->fields))
        return false;
    for (size_t i = 0; i < def->nfields; i++) {
        const hk_option_t *f = &def->fields[i];
        size_t sz = type_size(f->type);
        if (!f->name || !*f->name || strchr(f->name, ':') || !sz || f->offset > def->size ||
            sz > def->size - f->offset)
            return false;
        if (f->type == HK_OPTION_ENUM && (!f->choices || !f->choices[0]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(def->fields[j].name, f->name) == 0)
                return false;
    }
    return true;
}

int hk__options_new(const hk_options_def_t *def, hk_options_t **ret) {
    if (!ret || !def_valid(def))
        return -EINVAL;
    hk_options_t *o = hk__calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->def = *def;
    pthread_mutex_init(&o->mu, NULL);
    *ret = o;
    return 0;
}

static void *field_ptr(snap_t *s, const hk_option_t *f) { return (unsigned char *)s->data + f->offset; }

/* Frees a snapshot with whatever strings and lists it owns (NULL ones too). */
static void snap_free(const hk_options_def_t *def, snap_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < def->nfields; i++) {
        const hk_option_t *f = &def->fields[i];
        if (f->type == HK_OPTION_STRING) {
            hk__free(*(char **)field_ptr(s, f));
        } else if (f->type == HK_OPTION_LIST) {
            hk_strlist_t *l = field_ptr(s, f);
            for (size_t j = 0; j < l->n; j++)
                hk__free(l->items[j]);
            hk__free(l->items);
        }
    }
    hk__free(s);
}

/* Drops one reference; frees the snapshot when it was the last. */
static void snap_unref(hk_options_t *o, snap_t *s) {
    pthread_mutex_lock(&o->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&o->mu);
    if (last)
        snap_free(&o->def, s);
}

void hk__options_free(hk_options_t *o) {
    if (!o)
        return;
    /* Every reader must have released: current holds the only reference. */
    assert(!o->current || o->current->refs == 1);
    snap_free(&o->def, o->current);
    pthread_mutex_destroy(&o->mu);
    hk__free(o);
}

const void *hk_options_acquire(hk_options_t *o) {
    if (!o)
        return NULL;
    pthread_mutex_lock(&o->mu);
    snap_t *s = o->current;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&o->mu);
    return s ? (const void *)s->data : NULL;
}

void hk_options_release(hk_options_t *o, const void *snapshot) {
    if (!o || !snapshot)
        return;
    snap_unref(o, (snap_t *)(uintptr_t)((const char *)snapshot - offsetof(snap_t, data)));
}

const hk_options_def_t *hk_options_def(const hk_options_t *o) { return o ? &o->def : NULL; }

/* ---- binding ------------------------------------------------------------------ */

typedef struct bind {
    const hk_options_def_t *def;
    const hk_config_t *config;
    hk__msg_cb on_error;
    void *data;
    size_t nerrors;
} bind_t;

static void emit(bind_t *b, const char *msg) {
    b->nerrors++;
    if (b->on_error)
        b->on_error(b->data, msg);
}

/* Reports `key: "value" <what> (from src)`; returns 1 (an error was reported). */
static int bad(bind_t *b, const char *key, const char *value, const char *src, const char *fmt, ...)
    HK_PRINTF(5, 6);
static int bad(bind_t *b, const char *key, const char *value, const char *src, const char *fmt,
               ...) {
    text_t t;
    text_init(&t);
    text_add(&t, "%s: \"%s\" ", key, value);
    va_list ap;
    va_start(ap, fmt);
    text_vadd(&t, fmt, ap);
    va_end(ap);
    text_add(&t, " (from %s)", src);
    emit(b, t.s);
    text_done(&t);
    return 1;
}

static int choice_index(const char *const *choices, const char *text) {
    for (int i = 0; choices[i]; i++)
        if (strcasecmp(choices[i], text) == 0)
            return i;
    return -1;
}

static int bad_choice(bind_t *b, const hk_option_t *f, const char *key, const char *value,
                      const char *src) {
    text_t names;
    text_init(&names);
    for (size_t i = 0; f->choices[i]; i++)
        text_add(&names, "%s%s", i ? ", " : "", f->choices[i]);
    bad(b, key, value, src, "is not one of %s", names.s);
    text_done(&names);
    return 1;
}

static int out_of_range_i64(bind_t *b, const hk_option_t *f, const char *key, const char *value,
                            const char *src) {
    int64_t lo, hi;
    range_i64(f, &lo, &hi);
    if (f->type != HK_OPTION_DURATION)
        return bad(b, key, value, src, "is out of range [%lld, %lld]", (long long)lo, (long long)hi);
    char a[48], z[48];
    fmt_duration(a, sizeof a, lo);
    fmt_duration(z, sizeof z, hi);
    return bad(b, key, value, src, "is out of range [%s, %s]", a, z);
}

static int out_of_range_u64(bind_t *b, const hk_option_t *f, const char *key, const char *value,
                            const char *src) {
    uint64_t lo, hi;
    range_u64(f, &lo, &hi);
    if (f->type != HK_OPTION_SIZE)
        return bad(b, key, value, src, "is out of range [%llu, %llu]", (unsigned long long)lo,
                   (unsigned long long)hi);
    char a[48], z[48];
    fmt_size(a, sizeof a, lo);
    fmt_size(z, sizeof z, hi);
    return bad(b, key, value, src, "is out of range [%s, %s]", a, z);
}

/*
 * Parses text into the scalar field at p and checks its range and choices.
 * Returns 0, 1 when an error was reported, or -ENOMEM.
 */
static int bind_scalar(bind_t *b, const hk_option_t *f, const char *key, const char *text,
                       const char *src, void *p) {
    char *end;
    switch (f->type) {
    case HK_OPTION_STRING: {
        const char *v = text;
        if (f->choices) {
            int i = choice_index(f->choices, text);
            if (i < 0)
                return bad_choice(b, f, key, text, src);
            v = f->choices[i]; /* the canonical spelling */
        }
        char *s = hk__strdup(v);
        if (!s)
            return -ENOMEM;
        *(char **)p = s;
        return 0;
    }
    case HK_OPTION_BOOL:
        if (strcasecmp(text, "true") == 0)
            *(bool *)p = true;
        else if (strcasecmp(text, "false") == 0)
            *(bool *)p = false;
        else
            return bad(b, key, text, src, "is not a boolean (true or false)");
        return 0;
    case HK_OPTION_INT: {
        int64_t lo, hi;
        range_i64(f, &lo, &hi);
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end || isspace((unsigned char)*text))
            return bad(b, key, text, src, "is not an integer");
        if (errno == ERANGE || v < lo || v > hi)
            return out_of_range_i64(b, f, key, text, src);
        *(int64_t *)p = v;
        return 0;
    }
    case HK_OPTION_UINT: {
        uint64_t lo, hi;
        range_u64(f, &lo, &hi);
        const char *s = text;
        bool neg = *s == '-';
        if (*s == '-' || *s == '+')
            s++;
        if (!is_digit(*s)) /* also rejects whitespace and strtoull's own sign handling */
            return bad(b, key, text, src, "is not an integer");
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end)
            return bad(b, key, text, src, "is not an integer");
        if (neg && v) /* "-0" is zero */
            return out_of_range_u64(b, f, key, text, src);
        if (errno == ERANGE || v < lo || v > hi)
            return out_of_range_u64(b, f, key, text, src);
        *(uint64_t *)p = v;
        return 0;
    }
    case HK_OPTION_DOUBLE: {
        double v = strtod(text, &end);
        /* strtod also takes hex, inf and nan: accept plain decimal notation only. */
        bool plain = strspn(text, "+-0123456789.eE") == strlen(text);
        if (end == text || *end || !plain || !isfinite(v))
            return bad(b, key, text, src, "is not a number");
        if (f->has_range && (v < f->min || v > f->max))
            return bad(b, key, text, src, "is out of range [%g, %g]", f->min, f->max);
        *(double *)p = v;
        return 0;
    }
    case HK_OPTION_DURATION: {
        int64_t v, lo, hi;
        range_i64(f, &lo, &hi);
        int rc = hk_parse_duration_ms(text, &v);
        if (rc == -EINVAL)
            return bad(b, key, text, src,
                       "is not a duration (use 500ms, 30s, 5m, 1h or hh:mm:ss)");
        if (rc < 0 || v < lo || v > hi)
            return out_of_range_i64(b, f, key, text, src);
        *(int64_t *)p = v;
        return 0;
    }
    case HK_OPTION_SIZE: {
        uint64_t v, lo, hi;
        range_u64(f, &lo, &hi);
        int rc = hk_parse_size(text, &v);
        if (rc == -EINVAL)
            return bad(b, key, text, src, "is not a size (use 512, 64KiB or 10MB)");
        if (rc < 0 || v < lo || v > hi)
            return out_of_range_u64(b, f, key, text, src);
        *(uint64_t *)p = v;
        return 0;
    }
    case HK_OPTION_ENUM: {
        int i = choice_index(f->choices, text);
        if (i < 0)
            return bad_choice(b, f, key, text, src);
        *(int *)p = i;
        return 0;
    }
    case HK_OPTION_LIST:
        break;
    }
    return 0;
}

/* A list child: its index and its key as stored. */
typedef struct child {
    uint64_t index;
    const char *key;
} child_t;

static int child_cmp(const void *a, const void *b) {
    uint64_t x = ((const child_t *)a)->index, y = ((const child_t *)b)->index;
    return x < y ? -1 : x > y;
}

/*
 * When key is "<section>:<name>:<i>" (case-insensitive, i canonical decimal:
 * no sign, no leading zero, fits uint64), stores i and returns true.
 */
static bool child_index(const char *key, const char *section, const char *name, uint64_t *ret) {
    size_t sl = strlen(section), nl = strlen(name);
    if (strncasecmp(key, section, sl) != 0 || key[sl] != ':')
        return false;
    key += sl + 1;
    if (strncasecmp(key, name, nl) != 0 || key[nl] != ':')
        return false;
    key += nl + 1;
    if (!is_digit(*key) || (key[0] == '0' && key[1]))
        return false;
    uint64_t v = 0;
    for (; *key; key++) {
        unsigned d = (unsigned)(*key - '0');
        if (!is_digit(*key) || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *ret = v;
    return true;
}

/*
 * Collects "<key>:<i>" children in index order into the list at l. On
 * success *ret_src is the first item's source (NULL for an empty list).
 * Returns 0 or -ENOMEM (l then holds the items copied so far).
 */
static int bind_list(bind_t *b, const hk_option_t *f, hk_strlist_t *l, const char **ret_src) {
    size_t n = hk_config_count(b->config), m = 0;
    child_t *kids = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *k = hk_config_key_at(b->config, i);
        uint64_t idx;
        if (!k || !child_index(k, b->def->section, f->name, &idx))
            continue;
        if (!kids && !(kids = hk__malloc(n * sizeof *kids)))
            return -ENOMEM;
        kids[m++] = (child_t){idx, k};
    }
    *ret_src = NULL;
    if (!m)
        return 0;
    qsort(kids, m, sizeof *kids, child_cmp);
    int rc = 0;
    l->items = hk__calloc(m, sizeof *l->items);
    if (!l->items)
        rc = -ENOMEM;
    for (size_t i = 0; i < m && rc == 0; i++) {
        const char *v = hk_config_get(b->config, kids[i].key);
        if (!(l->items[i] = hk__strdup(v ? v : "")))
            rc = -ENOMEM;
        else
            l->n++;
    }
    if (rc == 0) {
        *ret_src = hk_config_source_of(b->config, kids[0].key);
        if (!*ret_src)
            *ret_src = "unknown";
    }
    hk__free(kids);
    return rc;
}

/* Calls the field's validator; its message goes between the value and the source. */
static void run_validator(bind_t *b, const hk_option_t *f, const char *key, const char *value,
                          const char *src, const void *p) {
    char err[256] = "";
    if (f->validate(p, err, sizeof err) >= 0)
        return;
    err[sizeof err - 1] = '\0';
    bad(b, key, value, src, "%s", err[0] ? err : "is not valid");
}

/*
 * A default that does not parse or lies outside the range is a programming
 * error: report it on every bind, also when a source supplies the value,
 * so it cannot hide until the day the key is missing.
 */
static int check_default(bind_t *b, const hk_option_t *f, const char *key) {
    union {
        char *str;
        bool flag;
        int64_t i64;
        uint64_t u64;
        double dbl;
        int index;
    } scratch = {0};
    int rc = bind_scalar(b, f, key, f->def, "default", &scratch);
    if (rc == 0 && f->type == HK_OPTION_STRING)
        hk__free(scratch.str);
    return rc < 0 ? rc : 0;
}

/* Binds one field into s. Returns 0 (errors, if any, were reported) or -ENOMEM. */
static int bind_field(bind_t *b, const hk_option_t *f, snap_t *s) {
    void *p = field_ptr(s, f);
    char *key = hk__asprintf("%s:%s", b->def->section, f->name);
    if (!key)
        return -ENOMEM;
    int rc = 0;
    if (f->type == HK_OPTION_LIST) {
        hk_strlist_t *l = p;
        const char *src;
        if (f->def) /* a programming error: HK_OPT_LIST has none */
            bad(b, key, f->def, "default", "is not allowed: list fields have no default");
        rc = bind_list(b, f, l, &src);
        if (rc == 0 && f->required && !l->n) {
            text_t t;
            text_init(&t);
            text_add(&t, "%s: is required but not set", key);
            emit(b, t.s);
            text_done(&t);
        } else if (rc == 0 && f->validate) {
            text_t joined;
            text_init(&joined);
            for (size_t i = 0; i < l->n; i++)
                text_add(&joined, "%s%s", i ? ", " : "", l->items[i]);
            run_validator(b, f, key, joined.s, src ? src : "default", p);
            text_done(&joined);
        }
        hk__free(key);
        return rc;
    }
    const char *text = hk_config_get(b->config, key), *src;
    bool have = text && *text;
    /* (when the default is the value, parsing it below is the check) */
    if (f->def && (have || f->required) && (rc = check_default(b, f, key)) < 0)
        goto out;
    if (have) {
        src = hk_config_source_of(b->config, key);
        if (!src)
            src = "unknown";
    } else if (f->required) {
        text_t t;
        text_init(&t);
        text_add(&t, "%s: is required but not set", key);
        emit(b, t.s);
        text_done(&t);
        goto out;
    } else {
        /* The default; without one the field stays zero / NULL, with nothing to
         * parse or range-check (the validator still sees it). */
        text = f->def;
        src = "default";
    }
    if (text)
        rc = bind_scalar(b, f, key, text, src, p);
    if (rc == 0 && f->validate)
        run_validator(b, f, key, text ? text : "", src, p);
    if (rc > 0)
        rc = 0;
out:
    hk__free(key);
    return rc;
}

int hk__options_stage(hk_options_t *o, hk_config_t *config, hk__msg_cb on_error, void *data,
                      void **ret_staged) {
    if (!o || !config || !ret_staged)
        return -EINVAL;
    const hk_options_def_t *def = &o->def;
    bind_t b = {def, config, on_error, data, 0};
    int rc = 0;
    snap_t *s = hk__calloc(1, offsetof(snap_t, data) + def->size);
    if (!s)
        rc = -ENOMEM;
    for (size_t i = 0; i < def->nfields && rc == 0; i++) {
        rc = bind_field(&b, &def->fields[i], s);
        if (rc < 0) {
            text_t t;
            text_init(&t);
            text_add(&t, "%s:%s: out of memory while binding", def->section, def->fields[i].name);
            emit(&b, t.s);
            text_done(&t);
        }
    }
    if (rc == -ENOMEM && !s) {
        text_t t;
        text_init(&t);
        text_add(&t, "%s: out of memory while binding", def->section);
        emit(&b, t.s);
        text_done(&t);
    }
    /* The struct validator sees only fully bound structs. */
    if (rc == 0 && b.nerrors == 0 && def->validate) {
        char err[256] = "";
        if (def->validate(s->data, err, sizeof err) < 0) {
            err[sizeof err - 1] = '\0';
            text_t t;
            text_init(&t);
            text_add(&t, "%s: %s", def->section, err[0] ? err : "is not valid");
            emit(&b, t.s);
            text_done(&t);
        }
    }
    if (rc == 0 && b.nerrors)
        rc = -EINVAL;
    if (rc < 0) {
        snap_free(def, s);
        return rc;
    }
    *ret_staged = s;
    return 0;
}

void hk__options_publish(hk_options_t *o, void *staged) {
    snap_t *s = staged;
    s->refs = 1; /* the current reference */
    pthread_mutex_lock(&o->mu);
    snap_t *old = o->current;
    o->current = s;
    pthread_mutex_unlock(&o->mu);
    if (old)
        snap_unref(o, old);
}

void hk__options_discard(hk_options_t *o, void *staged) {
    if (o && staged)
        snap_free(&o->def, staged);
}

int hk__options_bind(hk_options_t *o, hk_config_t *config, hk__msg_cb on_error, void *data) {
    void *staged = NULL;
    int rc = hk__options_stage(o, config, on_error, data, &staged);
    if (rc == 0)
        hk__options_publish(o, staged);
    return rc;
}

/* ---- unknown keys ---------------------------------------------------------------- */

/* Levenshtein distance, ASCII case-insensitive; nb must be at most 64. */
static size_t edit_distance(const char *a, size_t na, const char *bs, size_t nb) {
    size_t row[65];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)bs[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The field whose name is closest to comp, when close enough to suggest. */
static const hk_option_t *suggest(const hk_options_def_t *def, const char *comp, size_t len) {
    const hk_option_t *best = NULL;
    size_t best_d = 0, limit = len / 3 > 2 ? len / 3 : 2;
    if (!len)
        return NULL;
    for (size_t i = 0; i < def->nfields; i++) {
        const char *name = def->fields[i].name;
        size_t nl = strlen(name);
        if (nl > 64)
            continue;
        size_t d = edit_distance(comp, len, name, nl);
        if (d <= limit && (!best || d < best_d)) {
            best = &def->fields[i];
            best_d = d;
        }
    }
    return best;
}

static bool field_named(const hk_options_def_t *def, const char *comp, size_t len) {
    for (size_t i = 0; i < def->nfields; i++)
        if (strlen(def->fields[i].name) == len && strncasecmp(def->fields[i].name, comp, len) == 0)
            return true;
    return false;
}

void hk__options_check_unknown(hk_options_t *o, hk_config_t *config, hk__msg_cb warn, void *data) {
    if (!o || !config || !warn)
        return;
    const hk_options_def_t *def = &o->def;
    size_t sl = strlen(def->section), n = hk_config_count(config);
    for (size_t i = 0; i < n; i++) {
        const char *key = hk_config_key_at(config, i);
        if (!key || strncasecmp(key, def->section, sl) != 0 || key[sl] != ':')
            continue;
        const char *comp = key + sl + 1;
        size_t len = strcspn(comp, ":");
        if (field_named(def, comp, len))
            continue;
        bool seen = false; /* the store keeps keys unique; stay safe if it ever does not */
        for (size_t j = 0; j < i && !seen; j++) {
            const char *k = hk_config_key_at(config, j);
            seen = k && strcasecmp(k, key) == 0;
        }
        if (seen)
            continue;
        const char *src = hk_config_source_of(config, key);
        const hk_option_t *f = suggest(def, comp, len);
        text_t t;
        text_init(&t);
        text_add(&t, "Unknown key %s (from %s)", key, src ? src : "unknown");
        if (f)
            text_add(&t, "; did you mean %s:%s%s?", def->section, f->name, comp + len);
        warn(data, t.s);
        text_done(&t);
    }
}

/* ---- --help lines ---------------------------------------------------------------- */

/* "--Worker:Count <int>" */
static void describe_left(text_t *t, const hk_options_def_t *def, const hk_option_t *f) {
    static const char *const names[] = {
        [HK_OPTION_STRING] = "string", [HK_OPTION_BOOL] = "bool",
        [HK_OPTION_INT] = "int",       [HK_OPTION_UINT] = "uint",
        [HK_OPTION_DOUBLE] = "number", [HK_OPTION_DURATION] = "duration",
        [HK_OPTION_SIZE] = "size",     [HK_OPTION_ENUM] = "one of",
        [HK_OPTION_LIST] = "list",
    };
    text_add(t, "--%s:%s <", def->section, f->name);
    if (f->choices && (f->type == HK_OPTION_ENUM || f->type == HK_OPTION_STRING)) {
        text_add(t, "one of ");
        for (size_t i = 0; f->choices[i]; i++)
            text_add(t, "%s%s", i ? "|" : "", f->choices[i]);
    } else {
        text_add(t, "%s", names[f->type]);
    }
    text_add(t, ">");
}

void hk__options_describe(hk_options_t *o, hk__msg_cb line, void *data) {
    if (!o || !line)
        return;
    const hk_options_def_t *def = &o->def;
    size_t width = 0;
    for (size_t i = 0; i < def->nfields; i++) {
        text_t t;
        text_init(&t);
        describe_left(&t, def, &def->fields[i]);
        if (t.len > width)
            width = t.len;
        text_done(&t);
    }
    for (size_t i = 0; i < def->nfields; i++) {
        const hk_option_t *f = &def->fields[i];
        text_t t;
        text_init(&t);
        text_add(&t, "  ");
        describe_left(&t, def, f);
        size_t pad = width + 2 - (t.len - 2);
        char range[128];
        fmt_range(range, sizeof range, f);
        bool has_default = !f->required && f->def && f->type != HK_OPTION_LIST;
        bool has_desc = f->description && *f->description;
        bool has_paren = f->required || has_default || range[0];
        if (has_desc || has_paren)
            text_add(&t, "%*s", (int)pad, "");
        if (has_desc)
            text_add(&t, "%s%s", f->description, has_paren ? " " : "");
        if (has_paren) {
            text_add(&t, "(");
            if (f->required)
                text_add(&t, "required");
            else if (has_default)
                text_add(&t, "default: %s", *f->def ? f->def : "\"\"");
            if (range[0])
                text_add(&t, "%s%s", f->required || has_default ? "; " : "", range);
            text_add(&t, ")");
        }
        line(data, t.s);
        text_done(&t);
    }
}
