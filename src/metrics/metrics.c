/*
 * The metrics registry (include/hostkit/metrics.h): name rules, registration,
 * children per label-value set, the lock-free updates and collectors.
 * Depends on pthreads, C11 atomics and src/common; the exposition writer is
 * in expose.c, the process collector in process.c.
 *
 * Locks: reg->mu guards the family and collector lists, fam->mu a family's
 * children; reg->mu is never taken while holding a fam->mu. Updates take no
 * lock: a counter is a relaxed atomic add on an integer (whole increments)
 * or a CAS loop on a double's bits (fractions); a gauge a store or a CAS
 * loop; a histogram an atomic add on one bucket plus a CAS loop on the sum.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_int.h"

const double hk_metrics_default_buckets[HK_METRICS_DEFAULT_BUCKETS_N] = {
    .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

/* ======================================================================== */
/* errors and names                                                         */
/* ======================================================================== */

static _Thread_local char tl_error[384];

const char *hk_metrics_last_error(void) { return tl_error; }

int hk__metrics_error(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_error, sizeof tl_error, fmt, ap);
    va_end(ap);
    return err;
}

static bool is_alpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool hk__metric_name_ok(const char *name) {
    if (!name || !(is_alpha_(name[0]) || name[0] == ':'))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!is_alpha_(*p) && !is_digit(*p) && *p != ':')
            return false;
    return true;
}

bool hk__label_name_ok(const char *name) {
    if (!name || !is_alpha_(name[0]) || (name[0] == '_' && name[1] == '_'))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!is_alpha_(*p) && !is_digit(*p))
            return false;
    return true;
}

bool hk__utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        p += n + 1;
    }
    return true;
}

const char *hk__type_name(hk_metric_type_t t) {
    switch (t) {
    case HK_METRIC_COUNTER: return "counter";
    case HK_METRIC_GAUGE: return "gauge";
    case HK_METRIC_HISTOGRAM: return "histogram";
    case HK_METRIC_UNTYPED: return "untyped";
    }
    return "?";
}

int hk__check_labels(const char *metric, hk_metric_type_t type, const char *const *labels,
                     size_t *ret_n) {
    size_t n = 0;
    for (; labels && labels[n]; n++) {
        const char *l = labels[n];
        if (!hk__label_name_ok(l))
            return hk__metrics_error(-EINVAL,
                                     "metric \"%s\": invalid label name \"%s\" (must match "
                                     "[a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\")",
                                     metric, l);
        if (type == HK_METRIC_HISTOGRAM && !strcmp(l, "le"))
            return hk__metrics_error(-EINVAL,
                                     "metric \"%s\": label name \"le\" is reserved in histograms",
                                     metric);
        for (size_t j = 0; j < n; j++)
            if (!strcmp(labels[j], l))
                return hk__metrics_error(-EINVAL, "metric \"%s\": duplicate label name \"%s\"",
                                         metric, l);
    }
    *ret_n = n;
    return 0;
}

/* Whether name is base followed by suffix. */
static bool is_suffixed(const char *name, const char *base, const char *suffix) {
    size_t bl = strlen(base);
    return !strncmp(name, base, bl) && !strcmp(name + bl, suffix);
}

/* The series names a family writes: name itself, or name_bucket/_sum/_count. */
static bool writes_series(const char *fam, hk_metric_type_t t, const char *series) {
    if (t != HK_METRIC_HISTOGRAM)
        return !strcmp(fam, series);
    return is_suffixed(series, fam, "_bucket") || is_suffixed(series, fam, "_sum") ||
           is_suffixed(series, fam, "_count");
}

bool hk__names_clash(const char *a, hk_metric_type_t ta, const char *b, hk_metric_type_t tb) {
    if (!strcmp(a, b))
        return true;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    if (ta != HK_METRIC_HISTOGRAM && tb != HK_METRIC_HISTOGRAM)
        return false;
    if (ta == HK_METRIC_HISTOGRAM && tb == HK_METRIC_HISTOGRAM) {
        /* a_s1 == b_s2 with different bases: only when one base is the other plus a
         * suffix difference, e.g. "x" (x_count) and ... never for these suffixes unless
         * the bases are equal, but check every pair to be sure. */
        char buf[512];
        for (size_t i = 0; i < 3; i++) {
            if (snprintf(buf, sizeof buf, "%s%s", a, sfx[i]) >= (int)sizeof buf)
                continue;
            if (writes_series(b, tb, buf))
                return true;
        }
        return false;
    }
    if (ta == HK_METRIC_HISTOGRAM)
        return writes_series(a, ta, b);
    return writes_series(b, tb, a);
}

/* ======================================================================== */
/* registry                                                                 */
/* ======================================================================== */

int hk_metrics_new(hk_metrics_t **ret_metrics) {
    if (!ret_metrics)
        return hk__metrics_error(-EINVAL, "hk_metrics_new: ret_metrics is NULL");
    hk_metrics_t *m = hk__calloc(1, sizeof *m);
    if (!m)
        return hk__metrics_error(-ENOMEM, "out of memory creating a metrics registry");
    pthread_mutex_init(&m->mu, NULL);
    *ret_metrics = m;
    return 0;
}

static void free_strv(char **v, size_t n) {
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        hk__free(v[i]);
    hk__free(v);
}

static char **dup_strv(const char *const *v, size_t n) {
    char **out = hk__calloc(n ? n : 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = hk__strdup(v[i]);
        if (!out[i]) {
            free_strv(out, i);
            return NULL;
        }
    }
    return out;
}

static void child_free(hk__child_t *c, size_t nlabels) {
    if (!c)
        return;
    free_strv(c->values, nlabels);
    hk__free(c);
}

static void metric_free(hk_metric_t *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->nchildren; i++)
        child_free(f->children[i], f->nlabels);
    hk__free(f->children);
    free_strv(f->labels, f->nlabels);
    hk__free(f->bounds);
    hk__free(f->name);
    hk__free(f->help);
    pthread_mutex_destroy(&f->mu);
    hk__free(f);
}

void hk_metrics_free(hk_metrics_t *m) {
    if (!m)
        return;
    for (size_t i = m->ncols; i-- > 0;)
        if (m->cols[i].destroy)
            m->cols[i].destroy(m->cols[i].data);
    hk__free(m->cols);
    for (size_t i = 0; i < m->nfams; i++)
        metric_free(m->fams[i]);
    hk__free(m->fams);
    pthread_mutex_destroy(&m->mu);
    hk__free(m);
}

/* Index of the first family whose name is >= name. */
static size_t fam_lower_bound(const hk_metrics_t *m, const char *name) {
    size_t lo = 0, hi = m->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->fams[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* "{a,b}" for messages. */
static void fmt_labels(char *buf, size_t len, char *const *names, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "{");
    for (size_t i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "", names[i]);
    if (o < len)
        snprintf(buf + o, len - o, "}");
}

/* Checks and copies the buckets into f. */
static int set_buckets(hk_metric_t *f, const hk_metric_def_t *def) {
    const double *b = def->buckets ? def->buckets : hk_metrics_default_buckets;
    size_t n = def->buckets ? def->nbuckets : HK_METRICS_DEFAULT_BUCKETS_N;
    if (def->buckets && n == 0)
        return hk__metrics_error(-EINVAL, "histogram \"%s\": buckets given but nbuckets is 0",
                                 def->name);
    if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0)
        n--; /* a trailing +Inf is implied anyway */
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]))
            return hk__metrics_error(-EINVAL, "histogram \"%s\": bucket %zu is not finite",
                                     def->name, i);
        if (i > 0 && !(b[i] > b[i - 1]))
            return hk__metrics_error(-EINVAL,
                                     "histogram \"%s\": buckets must be strictly increasing "
                                     "(bucket %zu is %g after %g)",
                                     def->name, i, b[i], b[i - 1]);
    }
    f->bounds = hk__malloc((n ? n : 1) * sizeof *f->bounds);
    if (!f->bounds)
        return -ENOMEM;
    if (n)
        memcpy(f->bounds, b, n * sizeof *b);
    f->nbounds = n;
    return 0;
}

static bool same_def(const hk_metric_t *f, const hk_metric_t *g) {
    if (f->type != g->type || f->nlabels != g->nlabels || strcmp(f->help, g->help))
        return false;
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(f->labels[i], g->labels[i]))
            return false;
    if (f->nbounds != g->nbounds)
        return false;
    for (size_t i = 0; i < f->nbounds; i++)
        if (f->bounds[i] != g->bounds[i])
            return false;
    return true;
}

/* Builds an unregistered family from def (checked). */
static int metric_build(const hk_metric_def_t *def, hk_metric_t **ret) {
    if (!def->name || !hk__metric_name_ok(def->name))
        return hk__metrics_error(-EINVAL,
                                 "invalid metric name \"%s\" (must match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                                 def->name ? def->name : "(null)");
    if (def->type != HK_METRIC_COUNTER && def->type != HK_METRIC_GAUGE &&
        def->type != HK_METRIC_HISTOGRAM)
        return hk__metrics_error(-EINVAL, "metric \"%s\": type must be counter, gauge or histogram",
                                 def->name);
    if (def->help && !hk__utf8_ok(def->help))
        return hk__metrics_error(-EINVAL, "metric \"%s\": help text is not valid UTF-8", def->name);
    if (def->type != HK_METRIC_HISTOGRAM && def->buckets)
        return hk__metrics_error(-EINVAL, "metric \"%s\": buckets given for a %s", def->name,
                                 hk__type_name(def->type));
    size_t nl;
    int rc = hk__check_labels(def->name, def->type, def->labels, &nl);
    if (rc < 0)
        return rc;
    hk_metric_t *f = hk__calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    pthread_mutex_init(&f->mu, NULL);
    f->type = def->type;
    f->name = hk__strdup(def->name);
    f->help = hk__strdup(def->help ? def->help : "");
    f->labels = dup_strv(def->labels, nl);
    f->nlabels = nl;
    if (!f->name || !f->help || !f->labels) {
        metric_free(f);
        return -ENOMEM;
    }
    if (f->type == HK_METRIC_HISTOGRAM && (rc = set_buckets(f, def)) < 0) {
        metric_free(f);
        return rc;
    }
    *ret = f;
    return 0;
}

int hk_metrics_register(hk_metrics_t *m, const hk_metric_def_t *def, hk_metric_t **ret_metric) {
    if (!m || !def || !ret_metric)
        return hk__metrics_error(-EINVAL, "hk_metrics_register: NULL argument");
    hk_metric_t *f = NULL;
    int rc = metric_build(def, &f);
    if (rc == -ENOMEM)
        return hk__metrics_error(rc, "out of memory registering metric \"%s\"", def->name);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&m->mu);
    size_t at = fam_lower_bound(m, f->name);
    if (at < m->nfams && !strcmp(m->fams[at]->name, f->name)) {
        hk_metric_t *old = m->fams[at];
        pthread_mutex_unlock(&m->mu);
        if (same_def(old, f)) {
            metric_free(f);
            *ret_metric = old;
            return 0;
        }
        char lo[256], ln[256];
        fmt_labels(lo, sizeof lo, old->labels, old->nlabels);
        fmt_labels(ln, sizeof ln, f->labels, f->nlabels);
        bool help_differs = strcmp(old->help, f->help) != 0;
        rc = hk__metrics_error(-EEXIST,
                               "metric \"%s\" is already registered as a %s with labels %s%s; "
                               "cannot register it as a %s with labels %s%s",
                               f->name, hk__type_name(old->type), lo,
                               old->type == HK_METRIC_HISTOGRAM ? " and its buckets" : "",
                               hk__type_name(f->type), ln,
                               help_differs ? " and a different help text"
                               : f->type == HK_METRIC_HISTOGRAM ? " and other buckets" : "");
        metric_free(f);
        return rc;
    }
    for (size_t i = 0; i < m->nfams; i++) {
        const hk_metric_t *g = m->fams[i];
        if (hk__names_clash(g->name, g->type, f->name, f->type)) {
            rc = hk__metrics_error(-EEXIST,
                                   "metric \"%s\" (%s) would write series named like those of "
                                   "the %s \"%s\"",
                                   f->name, hk__type_name(f->type), hk__type_name(g->type),
                                   g->name);
            pthread_mutex_unlock(&m->mu);
            metric_free(f);
            return rc;
        }
    }
    if (m->nfams == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        hk_metric_t **nf = hk__realloc(m->fams, ncap * sizeof *nf);
        if (!nf) {
            pthread_mutex_unlock(&m->mu);
            rc = hk__metrics_error(-ENOMEM, "out of memory registering metric \"%s\"", f->name);
            metric_free(f);
            return rc;
        }
        m->fams = nf;
        m->cap = ncap;
    }
    memmove(m->fams + at + 1, m->fams + at, (m->nfams - at) * sizeof *m->fams);
    m->fams[at] = f;
    m->nfams++;
    f->reg = m;
    pthread_mutex_unlock(&m->mu);
    *ret_metric = f;
    return 0;
}

const char *hk_metric_name(const hk_metric_t *metric) { return metric ? metric->name : NULL; }

/* ======================================================================== */
/* children                                                                 */
/* ======================================================================== */

/* Compares a child's values with vals, label by label. */
static int cmp_values(char *const *a, const char *const *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i], b[i]);
        if (c)
            return c;
    }
    return 0;
}

static size_t child_size(const hk_metric_t *f) {
    switch (f->type) {
    case HK_METRIC_COUNTER: return sizeof(struct hk_counter_s);
    case HK_METRIC_GAUGE: return sizeof(struct hk_gauge_s);
    default: return sizeof(struct hk_histogram_s) + (f->nbounds + 1) * sizeof(_Atomic uint64_t);
    }
}

/* Finds or creates the child for values (checked against f). */
static int child_get(hk_metric_t *f, hk_metric_type_t want, const char *const *values,
                     hk__child_t **ret) {
    if (!f)
        return hk__metrics_error(-EINVAL, "metric is NULL");
    if (f->type != want)
        return hk__metrics_error(-EINVAL, "metric \"%s\" is a %s, not a %s", f->name,
                                 hk__type_name(f->type), hk__type_name(want));
    size_t n = 0;
    while (values && values[n])
        n++;
    if (n != f->nlabels)
        return hk__metrics_error(-EINVAL, "metric \"%s\": %zu label value%s given for %zu label%s",
                                 f->name, n, n == 1 ? "" : "s", f->nlabels,
                                 f->nlabels == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        if (!hk__utf8_ok(values[i]))
            return hk__metrics_error(-EINVAL, "metric \"%s\": value of label \"%s\" is not UTF-8",
                                     f->name, f->labels[i]);
    pthread_mutex_lock(&f->mu);
    size_t lo = 0, hi = f->nchildren;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_values(f->children[mid]->values, values, n);
        if (c == 0) {
            *ret = f->children[mid];
            pthread_mutex_unlock(&f->mu);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int rc = -ENOMEM;
    if (f->nchildren == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 4;
        hk__child_t **nc = hk__realloc(f->children, ncap * sizeof *nc);
        if (!nc)
            goto oom;
        f->children = nc;
        f->cap = ncap;
    }
    hk__child_t *c = hk__calloc(1, child_size(f));
    if (!c)
        goto oom;
    c->metric = f;
    c->values = dup_strv(values, n);
    if (!c->values) {
        hk__free(c);
        goto oom;
    }
    memmove(f->children + lo + 1, f->children + lo, (f->nchildren - lo) * sizeof *f->children);
    f->children[lo] = c;
    f->nchildren++;
    pthread_mutex_unlock(&f->mu);
    *ret = c;
    return 0;
oom:
    pthread_mutex_unlock(&f->mu);
    return hk__metrics_error(rc, "out of memory creating a child of metric \"%s\"", f->name);
}

int hk_metric_counter(hk_metric_t *metric, const char *const *values, hk_counter_t **ret) {
    hk__child_t *c;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metric_counter: ret_counter is NULL");
    int rc = child_get(metric, HK_METRIC_COUNTER, values, &c);
    if (rc == 0)
        *ret = (hk_counter_t *)c;
    return rc;
}

int hk_metric_gauge(hk_metric_t *metric, const char *const *values, hk_gauge_t **ret) {
    hk__child_t *c;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metric_gauge: ret_gauge is NULL");
    int rc = child_get(metric, HK_METRIC_GAUGE, values, &c);
    if (rc == 0)
        *ret = (hk_gauge_t *)c;
    return rc;
}

int hk_metric_histogram(hk_metric_t *metric, const char *const *values, hk_histogram_t **ret) {
    hk__child_t *c;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metric_histogram: ret_histogram is NULL");
    int rc = child_get(metric, HK_METRIC_HISTOGRAM, values, &c);
    if (rc == 0)
        *ret = (hk_histogram_t *)c;
    return rc;
}

int hk_metrics_counter(hk_metrics_t *m, const char *name, const char *help, hk_counter_t **ret) {
    hk_metric_t *f;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metrics_counter: ret_counter is NULL");
    hk_metric_def_t def = {.type = HK_METRIC_COUNTER, .name = name, .help = help};
    int rc = hk_metrics_register(m, &def, &f);
    return rc < 0 ? rc : hk_metric_counter(f, NULL, ret);
}

int hk_metrics_gauge(hk_metrics_t *m, const char *name, const char *help, hk_gauge_t **ret) {
    hk_metric_t *f;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metrics_gauge: ret_gauge is NULL");
    hk_metric_def_t def = {.type = HK_METRIC_GAUGE, .name = name, .help = help};
    int rc = hk_metrics_register(m, &def, &f);
    return rc < 0 ? rc : hk_metric_gauge(f, NULL, ret);
}

int hk_metrics_histogram(hk_metrics_t *m, const char *name, const char *help, const double *buckets,
                         size_t nbuckets, hk_histogram_t **ret) {
    hk_metric_t *f;
    if (!ret)
        return hk__metrics_error(-EINVAL, "hk_metrics_histogram: ret_histogram is NULL");
    hk_metric_def_t def = {.type = HK_METRIC_HISTOGRAM, .name = name, .help = help,
                           .buckets = buckets, .nbuckets = nbuckets};
    int rc = hk_metrics_register(m, &def, &f);
    return rc < 0 ? rc : hk_metric_histogram(f, NULL, ret);
}

/* ======================================================================== */
/* updates (hot path)                                                       */
/* ======================================================================== */

static void add_double(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
        uint64_t nw = hk__double_to_bits(hk__bits_to_double(old) + v);
        if (atomic_compare_exchange_weak_explicit(p, &old, nw, memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

void hk_counter_inc(hk_counter_t *c) {
    if (c)
        atomic_fetch_add_explicit(&c->whole, 1, memory_order_relaxed);
}

int hk_counter_add(hk_counter_t *c, double v) {
    if (!(v >= 0)) /* also NaN */
        return -EINVAL;
    if (!c)
        return 0;
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v)
        atomic_fetch_add_explicit(&c->whole, (uint64_t)v, memory_order_relaxed);
    else
        add_double(&c->frac, v);
    return 0;
}

double hk_counter_value(const hk_counter_t *c) {
    if (!c)
        return 0;
    hk_counter_t *m = (hk_counter_t *)c; /* atomic loads of a const object */
    return (double)atomic_load_explicit(&m->whole, memory_order_relaxed) +
           hk__bits_to_double(atomic_load_explicit(&m->frac, memory_order_relaxed));
}

void hk_gauge_set(hk_gauge_t *g, double v) {
    if (g)
        atomic_store_explicit(&g->bits, hk__double_to_bits(v), memory_order_relaxed);
}

void hk_gauge_add(hk_gauge_t *g, double v) {
    if (g)
        add_double(&g->bits, v);
}

void hk_gauge_inc(hk_gauge_t *g) { hk_gauge_add(g, 1); }
void hk_gauge_dec(hk_gauge_t *g) { hk_gauge_add(g, -1); }

double hk_gauge_value(const hk_gauge_t *g) {
    if (!g)
        return 0;
    hk_gauge_t *m = (hk_gauge_t *)g;
    return hk__bits_to_double(atomic_load_explicit(&m->bits, memory_order_relaxed));
}

int hk_histogram_observe(hk_histogram_t *h, double v) {
    if (isnan(v))
        return -EINVAL;
    if (!h)
        return 0;
    const hk_metric_t *f = h->base.metric;
    /* first bound >= v; nbounds (the +Inf bucket) when none */
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->bounds[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    add_double(&h->sum, v);
    return 0;
}

unsigned long long hk_histogram_count(const hk_histogram_t *h) {
    if (!h)
        return 0;
    hk_histogram_t *m = (hk_histogram_t *)h;
    unsigned long long n = 0;
    for (size_t i = 0; i <= h->base.metric->nbounds; i++)
        n += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
    return n;
}

double hk_histogram_sum(const hk_histogram_t *h) {
    if (!h)
        return 0;
    hk_histogram_t *m = (hk_histogram_t *)h;
    return hk__bits_to_double(atomic_load_explicit(&m->sum, memory_order_relaxed));
}

int hk_metrics_linear_buckets(double start, double width, size_t count, double *out) {
    if (!out || count == 0 || count > 10000 || !(width > 0) || !isfinite(start))
        return hk__metrics_error(-EINVAL, "linear buckets need count 1..10000 and width > 0");
    for (size_t i = 0; i < count; i++)
        out[i] = start + width * (double)i;
    return (int)count;
}

int hk_metrics_exponential_buckets(double start, double factor, size_t count, double *out) {
    if (!out || count == 0 || count > 10000 || !(start > 0) || !(factor > 1) || !isfinite(start))
        return hk__metrics_error(-EINVAL,
                                 "exponential buckets need count 1..10000, start > 0, factor > 1");
    double b = start;
    for (size_t i = 0; i < count; i++, b *= factor)
        out[i] = b;
    return (int)count;
}

/* ======================================================================== */
/* collectors                                                               */
/* ======================================================================== */

static int add_collector(hk_metrics_t *m, hk_metrics_collect_cb cb, void *data,
                         hk_destroy_cb destroy, bool process) {
    if (!m || !cb)
        return hk__metrics_error(-EINVAL, "hk_metrics_add_collector: no registry or no callback");
    pthread_mutex_lock(&m->mu);
    if (process && m->has_process) {
        pthread_mutex_unlock(&m->mu);
        return hk__metrics_error(-EEXIST, "the process collector is already added");
    }
    if (m->ncols == m->colcap) {
        size_t ncap = m->colcap ? m->colcap * 2 : 4;
        hk__collector_t *nc = hk__realloc(m->cols, ncap * sizeof *nc);
        if (!nc) {
            pthread_mutex_unlock(&m->mu);
            return hk__metrics_error(-ENOMEM, "out of memory adding a metrics collector");
        }
        m->cols = nc;
        m->colcap = ncap;
    }
    m->cols[m->ncols++] = (hk__collector_t){.cb = cb, .data = data, .destroy = destroy};
    if (process)
        m->has_process = true;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int hk_metrics_add_collector(hk_metrics_t *m, hk_metrics_collect_cb cb, void *data,
                             hk_destroy_cb destroy) {
    return add_collector(m, cb, data, destroy, false);
}

static void process_collect(hk_scrape_t *scrape, void *data) {
    HK_UNUSED(data);
    hk__process_collect(scrape, "/proc");
}

int hk_metrics_add_process_collector(hk_metrics_t *m) {
    return add_collector(m, process_collect, NULL, NULL, true);
}
