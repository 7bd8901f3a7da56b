/*
 * Private structures of the metrics registry (src/metrics/metrics.c), its
 * exposition writer (expose.c) and the process collector (process.c).
 * Depends on pthreads, C11 atomics, src/common and hostkit/metrics.h.
 *
 * Invariants:
 *  - reg->fams is sorted by name; fam->children by label values. Both only
 *    grow (nothing is unregistered), under reg->mu and fam->mu respectively.
 *  - A child's value fields are only touched with atomic operations; its
 *    other fields never change after it was published.
 *  - Doubles live in _Atomic uint64_t as their bit pattern (memcpy).
 */
#ifndef HK_SRC_METRICS_INT_H
#define HK_SRC_METRICS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "hostkit/metrics.h"

/* What every child starts with. */
typedef struct hk__child {
    hk_metric_t *metric;
    char **values; /* metric->nlabels strings */
} hk__child_t;

/*
 * Counters and gauges are padded to a cache line: children are separate
 * small allocations, and without the padding two of them share a line, so
 * threads updating different series slow each other down (false sharing;
 * bench/metrics measured 2 ns -> 4 ns per increment).
 */
enum { HK__CACHE_LINE = 64 };

struct hk_counter_s {
    hk__child_t base;       /* first: a child pointer is a counter pointer */
    _Atomic uint64_t whole; /* sum of whole-number increments */
    _Atomic uint64_t frac;  /* double bits: sum of the other increments */
    char pad[HK__CACHE_LINE];
};

struct hk_gauge_s {
    hk__child_t base;
    _Atomic uint64_t bits; /* double bits */
    char pad[HK__CACHE_LINE];
};

struct hk_histogram_s {
    hk__child_t base;
    _Atomic uint64_t sum;      /* double bits */
    _Atomic uint64_t counts[]; /* nbounds + 1, not cumulative; the last is +Inf */
};

struct hk_metric_s {
    hk_metrics_t *reg;
    hk_metric_type_t type;
    char *name, *help;
    char **labels;
    size_t nlabels;
    double *bounds; /* histograms: finite, increasing */
    size_t nbounds;
    pthread_mutex_t mu; /* guards children */
    hk__child_t **children;
    size_t nchildren, cap;
};

typedef struct hk__collector {
    hk_metrics_collect_cb cb;
    void *data;
    hk_destroy_cb destroy;
} hk__collector_t;

struct hk_metrics_s {
    pthread_mutex_t mu; /* guards fams, cols, has_process */
    hk_metric_t **fams;
    size_t nfams, cap;
    hk__collector_t *cols;
    size_t ncols, colcap;
    bool has_process;
};

/* metrics.c */
int hk__metrics_error(int err, const char *fmt, ...) HK_PRINTF(2, 3);
bool hk__metric_name_ok(const char *name);
bool hk__label_name_ok(const char *name);
bool hk__utf8_ok(const char *s);
/* Checks a label name list for a metric of this type; 0 or -EINVAL with a message. */
int hk__check_labels(const char *metric, hk_metric_type_t type, const char *const *labels,
                     size_t *ret_n);
/* Whether two metric names would write a series of the same name. */
bool hk__names_clash(const char *a, hk_metric_type_t ta, const char *b, hk_metric_type_t tb);
const char *hk__type_name(hk_metric_type_t t);
static inline double hk__bits_to_double(uint64_t u) {
    double d;
    __builtin_memcpy(&d, &u, sizeof d);
    return d;
}
static inline uint64_t hk__double_to_bits(double d) {
    uint64_t u;
    __builtin_memcpy(&u, &d, sizeof u);
    return u;
}

/* expose.c: formats a sample value the shortest way that reads back exactly
 * ("+Inf", "-Inf", "NaN" for the specials). buf of at least 32 bytes. */
void hk__fmt_value(char *buf, size_t len, double v);

/* process.c: the process collector reading <proc_root>/self/... and
 * <proc_root>/stat (proc_root is "/proc" outside tests). */
void hk__process_collect(hk_scrape_t *scrape, const char *proc_root);

#endif
