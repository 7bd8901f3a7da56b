/*
 * The Prometheus text exposition writer, format 0.0.4
 * (include/hostkit/metrics.h): value formatting, escaping, the registered
 * metrics in name order, then the collectors' families through hk_scrape_t.
 * Depends on src/common and the registry in metrics.c (metrics_int.h).
 *
 * Output goes through a small buffer flushed to the caller's callback, so a
 * scrape makes a few calls of a few KiB whatever the number of series. Once
 * the callback failed, nothing more is written and every later step returns
 * the same error.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_int.h"

enum { OUT_BUF = 4096 };

/* A family written by a collector in this scrape (for the clash check). */
typedef struct seen {
    char *name;
    hk_metric_type_t type;
} seen_t;

struct hk_scrape_s {
    hk_metrics_t *reg;
    hk_metrics_write_cb cb;
    void *arg;
    int err; /* first write error or -ENOMEM; sticky */
    size_t len;
    char buf[OUT_BUF];
    /* the collector family in progress */
    bool fam_ok;
    size_t fam_nlabels;
    const char *fam_name;  /* points into seen[] */
    char **fam_labels;     /* copies of the label names */
    seen_t *seen;
    size_t nseen, seencap;
    hk_metric_t **fams; /* the registered metrics this scrape writes */
    size_t nfams;
};

/* ---- output -------------------------------------------------------------- */

static void flush(hk_scrape_t *s) {
    if (s->err || s->len == 0)
        return;
    int rc = s->cb(s->buf, s->len, s->arg);
    if (rc < 0)
        s->err = rc;
    s->len = 0;
}

static void put(hk_scrape_t *s, const char *p, size_t n) {
    while (n > 0 && !s->err) {
        size_t room = OUT_BUF - s->len;
        size_t k = n < room ? n : room;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        p += k;
        n -= k;
        if (s->len == OUT_BUF)
            flush(s);
    }
}

static void puts_(hk_scrape_t *s, const char *p) { put(s, p, strlen(p)); }

/* Label values escape \, " and newline; help texts \ and newline. */
static void put_escaped(hk_scrape_t *s, const char *p, bool quotes) {
    const char *run = p;
    for (; *p; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '"' && quotes)
            esc = "\\\"";
        if (esc) {
            put(s, run, (size_t)(p - run));
            puts_(s, esc);
            run = p + 1;
        }
    }
    put(s, run, (size_t)(p - run));
}

void hk__fmt_value(char *buf, size_t len, double v) {
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Whole numbers (counters, bucket counts, most gauges): digits directly. */
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
        char tmp[24];
        int64_t n = (int64_t)v;
        uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
        size_t i = sizeof tmp;
        tmp[--i] = '\0';
        do {
            tmp[--i] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (n < 0)
            tmp[--i] = '-';
        snprintf(buf, len, "%s", tmp + i);
        return;
    }
    /* The fewest significant digits that read back as the same double: a
     * decimal of at most 15 digits is the only one of its length that rounds
     * to its double, so the first of 15, 16, 17 digits that reads back,
     * without its trailing zeros, is the shortest. Written without an
     * exponent for 1e-4 <= |v| < 1e21 (0.005, not 5e-03). */
    char e[40];
    int p = 15;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    char *ex = strchr(e, 'e');
    for (const char *z = ex - 1; *z == '0' && p > 1; z--)
        p--;
    int x = atoi(ex + 1); /* decimal exponent */
    if (x >= -4 && x < 21) {
        snprintf(buf, len, "%.*f", p - 1 - x > 0 ? p - 1 - x : 0, v);
        if (strtod(buf, NULL) == v)
            return;
    }
    snprintf(buf, len, "%.*e", p - 1, v);
}

static void put_value(hk_scrape_t *s, double v) {
    char b[40];
    hk__fmt_value(b, sizeof b, v);
    puts_(s, b);
}

static void put_header(hk_scrape_t *s, const char *name, const char *help, hk_metric_type_t t) {
    if (help && *help) {
        puts_(s, "# HELP ");
        puts_(s, name);
        puts_(s, " ");
        put_escaped(s, help, false);
        puts_(s, "\n");
    }
    puts_(s, "# TYPE ");
    puts_(s, name);
    puts_(s, " ");
    puts_(s, hk__type_name(t));
    puts_(s, "\n");
}

/*
 * One sample line: name{l1="v1",...,extra="extra_val"} value
 * extra (may be NULL) is the histogram's le label, written last.
 */
static void put_sample(hk_scrape_t *s, const char *name, const char *suffix, char *const *labels,
                       const char *const *values, size_t n, const char *extra,
                       const char *extra_val, double v) {
    puts_(s, name);
    if (suffix)
        puts_(s, suffix);
    if (n || extra) {
        puts_(s, "{");
        for (size_t i = 0; i < n; i++) {
            if (i)
                puts_(s, ",");
            puts_(s, labels[i]);
            puts_(s, "=\"");
            put_escaped(s, values[i], true);
            puts_(s, "\"");
        }
        if (extra) {
            if (n)
                puts_(s, ",");
            puts_(s, extra);
            puts_(s, "=\"");
            puts_(s, extra_val);
            puts_(s, "\"");
        }
        puts_(s, "}");
    }
    puts_(s, " ");
    put_value(s, v);
    puts_(s, "\n");
}

/* ---- registered metrics --------------------------------------------------- */

static void write_child(hk_scrape_t *s, const hk_metric_t *f, hk__child_t *c) {
    const char *const *vals = (const char *const *)c->values;
    switch (f->type) {
    case HK_METRIC_COUNTER:
        put_sample(s, f->name, NULL, f->labels, vals, f->nlabels, NULL, NULL,
                   hk_counter_value((hk_counter_t *)c));
        break;
    case HK_METRIC_GAUGE:
        put_sample(s, f->name, NULL, f->labels, vals, f->nlabels, NULL, NULL,
                   hk_gauge_value((hk_gauge_t *)c));
        break;
    case HK_METRIC_HISTOGRAM: {
        hk_histogram_t *h = (hk_histogram_t *)c;
        uint64_t cum = 0;
        char le[40];
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
            if (i < f->nbounds)
                hk__fmt_value(le, sizeof le, f->bounds[i]);
            else
                snprintf(le, sizeof le, "+Inf");
            put_sample(s, f->name, "_bucket", f->labels, vals, f->nlabels, "le", le, (double)cum);
        }
        put_sample(s, f->name, "_sum", f->labels, vals, f->nlabels, NULL, NULL,
                   hk_histogram_sum(h));
        put_sample(s, f->name, "_count", f->labels, vals, f->nlabels, NULL, NULL, (double)cum);
        break;
    }
    case HK_METRIC_UNTYPED:
        break;
    }
}

static void write_metric(hk_scrape_t *s, hk_metric_t *f) {
    pthread_mutex_lock(&f->mu);
    if (f->nchildren > 0) { /* a labelled metric with no child yet writes nothing */
        put_header(s, f->name, f->help, f->type);
        for (size_t i = 0; i < f->nchildren && !s->err; i++)
            write_child(s, f, f->children[i]);
    }
    pthread_mutex_unlock(&f->mu);
}

/* ---- collectors ------------------------------------------------------------ */

static void end_family(hk_scrape_t *s) {
    for (size_t i = 0; i < s->fam_nlabels; i++)
        hk__free(s->fam_labels[i]);
    hk__free(s->fam_labels);
    s->fam_labels = NULL;
    s->fam_nlabels = 0;
    s->fam_ok = false;
    s->fam_name = NULL;
}

int hk_scrape_family(hk_scrape_t *s, hk_metric_type_t type, const char *name, const char *help,
                     const char *const *labels) {
    if (!s)
        return hk__metrics_error(-EINVAL, "hk_scrape_family: scrape is NULL");
    end_family(s);
    if (s->err)
        return s->err;
    if (!name || !hk__metric_name_ok(name))
        return hk__metrics_error(-EINVAL,
                                 "collector: invalid metric name \"%s\" (must match "
                                 "[a-zA-Z_:][a-zA-Z0-9_:]*)",
                                 name ? name : "(null)");
    if (type != HK_METRIC_COUNTER && type != HK_METRIC_GAUGE && type != HK_METRIC_UNTYPED)
        return hk__metrics_error(-EINVAL,
                                 "collector: metric \"%s\": type must be counter, gauge or untyped",
                                 name);
    if (help && !hk__utf8_ok(help))
        return hk__metrics_error(-EINVAL, "collector: metric \"%s\": help is not UTF-8", name);
    size_t nl;
    int rc = hk__check_labels(name, type, labels, &nl);
    if (rc < 0)
        return rc;
    /* Clashes with the registered metrics this scrape wrote (or skipped for
     * having no child yet), then with earlier collector families. */
    for (size_t i = 0; i < s->nfams && rc == 0; i++) {
        const hk_metric_t *g = s->fams[i];
        if (hk__names_clash(g->name, g->type, name, type))
            rc = hk__metrics_error(-EEXIST,
                                   "collector: metric \"%s\" clashes with the registered %s \"%s\"",
                                   name, hk__type_name(g->type), g->name);
    }
    for (size_t i = 0; i < s->nseen && rc == 0; i++)
        if (hk__names_clash(s->seen[i].name, s->seen[i].type, name, type))
            rc = hk__metrics_error(-EEXIST,
                                   "collector: metric \"%s\" clashes with \"%s\", already written "
                                   "by a collector",
                                   name, s->seen[i].name);
    if (rc < 0)
        return rc;
    if (s->nseen == s->seencap) {
        size_t ncap = s->seencap ? s->seencap * 2 : 16;
        seen_t *ns = hk__realloc(s->seen, ncap * sizeof *ns);
        if (!ns)
            goto oom;
        s->seen = ns;
        s->seencap = ncap;
    }
    char *copy = hk__strdup(name);
    if (!copy)
        goto oom;
    s->fam_labels = hk__calloc(nl ? nl : 1, sizeof *s->fam_labels);
    if (!s->fam_labels) {
        hk__free(copy);
        goto oom;
    }
    for (size_t i = 0; i < nl; i++) {
        s->fam_labels[i] = hk__strdup(labels[i]);
        if (!s->fam_labels[i]) {
            s->fam_nlabels = i;
            end_family(s);
            hk__free(copy);
            goto oom;
        }
    }
    s->fam_nlabels = nl;
    s->seen[s->nseen++] = (seen_t){.name = copy, .type = type};
    s->fam_name = copy;
    s->fam_ok = true;
    put_header(s, name, help, type);
    return s->err;
oom:
    s->err = -ENOMEM;
    return hk__metrics_error(-ENOMEM, "out of memory writing collector metric \"%s\"", name);
}

int hk_scrape_sample(hk_scrape_t *s, const char *const *values, double value) {
    if (!s)
        return hk__metrics_error(-EINVAL, "hk_scrape_sample: scrape is NULL");
    if (s->err)
        return s->err;
    if (!s->fam_ok)
        return hk__metrics_error(-EINVAL, "collector: sample without a family (or its family was "
                                          "rejected)");
    size_t n = 0;
    while (values && values[n])
        n++;
    if (n != s->fam_nlabels)
        return hk__metrics_error(-EINVAL, "collector: metric \"%s\": %zu label values for %zu labels",
                                 s->fam_name, n, s->fam_nlabels);
    for (size_t i = 0; i < n; i++)
        if (!hk__utf8_ok(values[i]))
            return hk__metrics_error(-EINVAL,
                                     "collector: metric \"%s\": value of label \"%s\" is not UTF-8",
                                     s->fam_name, s->fam_labels[i]);
    put_sample(s, s->fam_name, NULL, s->fam_labels, values, n, NULL, NULL, value);
    return s->err;
}

/* ---- the exposition --------------------------------------------------------- */

int hk_metrics_write(hk_metrics_t *m, hk_metrics_write_cb cb, void *arg) {
    if (!m || !cb)
        return hk__metrics_error(-EINVAL, "hk_metrics_write: no registry or no callback");
    hk_scrape_t *s = hk__calloc(1, sizeof *s);
    if (!s)
        return hk__metrics_error(-ENOMEM, "out of memory writing metrics");
    s->reg = m;
    s->cb = cb;
    s->arg = arg;

    /* Work on a copy of both lists: families are never freed before the
     * registry, and neither they nor the collectors may run under the
     * registry's lock (a collector may take its own locks, read the host ...;
     * a family's children are written under the family's lock). */
    pthread_mutex_lock(&m->mu);
    size_t nfams = m->nfams, ncols = m->ncols;
    hk_metric_t **fams = hk__malloc((nfams ? nfams : 1) * sizeof *fams);
    hk__collector_t *cols = hk__malloc((ncols ? ncols : 1) * sizeof *cols);
    if (fams && cols) {
        if (nfams)
            memcpy(fams, m->fams, nfams * sizeof *fams);
        if (ncols)
            memcpy(cols, m->cols, ncols * sizeof *cols);
    } else {
        s->err = -ENOMEM;
    }
    pthread_mutex_unlock(&m->mu);
    s->fams = fams;
    s->nfams = fams ? nfams : 0;
    for (size_t i = 0; i < nfams && !s->err; i++)
        write_metric(s, fams[i]);
    for (size_t i = 0; i < ncols && !s->err; i++) {
        cols[i].cb(s, cols[i].data);
        end_family(s);
    }
    hk__free(fams);
    hk__free(cols);
    flush(s);
    int rc = s->err;
    if (rc == -ENOMEM)
        hk__metrics_error(rc, "out of memory writing metrics");
    else if (rc < 0)
        hk__metrics_error(rc, "writing metrics: the sink failed: %s", hk_strerror(rc));
    end_family(s);
    for (size_t i = 0; i < s->nseen; i++)
        hk__free(s->seen[i].name);
    hk__free(s->seen);
    hk__free(s);
    return rc;
}

typedef struct print_buf {
    char *buf;
    size_t cap, len;
} print_buf_t;

static int print_cb(const char *data, size_t len, void *arg) {
    print_buf_t *p = arg;
    if (p->cap > 0 && p->len < p->cap - 1) {
        size_t room = p->cap - 1 - p->len;
        memcpy(p->buf + p->len, data, len < room ? len : room);
    }
    p->len += len;
    return 0;
}

int hk_metrics_print(hk_metrics_t *m, char *buf, size_t cap, size_t *ret_len) {
    if (!m || (!buf && cap > 0))
        return hk__metrics_error(-EINVAL, "hk_metrics_print: no registry or no buffer");
    print_buf_t p = {.buf = buf, .cap = cap};
    int rc = hk_metrics_write(m, print_cb, &p);
    if (cap > 0)
        buf[p.len < cap ? p.len : cap - 1] = '\0';
    if (rc < 0)
        return rc;
    if (ret_len)
        *ret_len = p.len;
    if (p.len >= cap)
        return hk__metrics_error(-ENOBUFS, "metrics exposition needs %zu bytes, buffer has %zu",
                                 p.len + 1, cap);
    return 0;
}
