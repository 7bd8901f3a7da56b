/*
 * hostkit/metrics.h - counters, gauges and histograms with labels, and the
 * Prometheus text exposition format (version 0.0.4) to publish them.
 *
 * A registry (hk_metrics_t) holds metrics. A metric (hk_metric_t) has a
 * type, a name, a help text and a fixed list of label names; each set of
 * label values is a child: an hk_counter_t, hk_gauge_t or hk_histogram_t.
 * Look a child up once (hk_metric_counter ...), keep the handle, and update
 * it on the hot path: an update is one or two atomic operations, lock-free,
 * safe from any thread, and allocates nothing. Children live as long as the
 * registry.
 *
 * Series computed when the exposition is written (process CPU time, service
 * states, ...) come from collectors: callbacks that declare families and
 * append samples to the scrape in progress (hk_metrics_add_collector).
 *
 * Names follow Prometheus' rules: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" ("le" is reserved in
 * histograms); label values and help texts are any UTF-8. Name counters with
 * a _total suffix and use base units (seconds, bytes): not enforced, but
 * `promtool check metrics` warns otherwise.
 *
 * Errors: 0 (or a count) / a negative errno value, and a message for this
 * thread in hk_metrics_last_error(), e.g.
 *   metric "http_requests_total" is already registered as a counter with
 *   labels {method,code}; cannot register it as a counter with labels {code}
 * Every update function accepts a NULL handle and does nothing, so a failed
 * registration cannot crash the code that updates the metric.
 *
 * Threading: everything here may be called from any thread at any time,
 * except hk_metrics_free (no other call may run on that registry).
 */
#ifndef HOSTKIT_METRICS_H
#define HOSTKIT_METRICS_H

#include <stddef.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_metrics_s hk_metrics_t;
typedef struct hk_metric_s hk_metric_t;
typedef struct hk_counter_s hk_counter_t;
typedef struct hk_gauge_s hk_gauge_t;
typedef struct hk_histogram_s hk_histogram_t;
typedef struct hk_scrape_s hk_scrape_t;

/* The Content-Type of the exposition (for an HTTP /metrics endpoint). */
#define HK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A NULL-terminated list of label names or values: HK_LABELS("method", "code"). */
#define HK_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef enum hk_metric_type {
    HK_METRIC_COUNTER = 0,   /* only goes up (or resets with the process) */
    HK_METRIC_GAUGE = 1,     /* goes up and down */
    HK_METRIC_HISTOGRAM = 2, /* observations counted in buckets, plus sum and count */
    HK_METRIC_UNTYPED = 3    /* collectors only: written with "# TYPE name untyped" */
} hk_metric_type_t;

/* Prometheus' default histogram buckets, in seconds:
 * .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (and +Inf, always implied). */
#define HK_METRICS_DEFAULT_BUCKETS_N 11
HK_EXTERN extern const double hk_metrics_default_buckets[HK_METRICS_DEFAULT_BUCKETS_N];

/* A metric definition. Fill it with designated initialisers. */
typedef struct hk_metric_def {
    hk_metric_type_t type;     /* counter, gauge or histogram */
    const char *name;          /* copied */
    const char *help;          /* copied; NULL or "" writes no HELP line */
    const char *const *labels; /* label names, NULL-terminated (HK_LABELS); NULL: none */
    /*
     * Histograms only: the buckets' upper bounds (inclusive), finite and
     * strictly increasing; a last +Inf is accepted and ignored (the +Inf
     * bucket always exists). NULL: hk_metrics_default_buckets. Copied.
     */
    const double *buckets;
    size_t nbuckets;
} hk_metric_def_t;

/* ---- registry ------------------------------------------------------------ */

/* Creates an empty registry. Returns 0 or -ENOMEM (*ret_metrics untouched). */
HK_EXTERN int hk_metrics_new(hk_metrics_t **ret_metrics);

/*
 * Frees the registry, every metric and child (their handles become invalid)
 * and calls each collector's destroy hook, in reverse registration order.
 * No other call on the registry may be running. Accepts NULL.
 */
HK_EXTERN void hk_metrics_free(hk_metrics_t *metrics);

/*
 * This thread's last error message from a metrics call ("" if none).
 * Thread-local; overwritten by the next failing call on this thread.
 */
HK_EXTERN const char *hk_metrics_last_error(void);

/*
 * Registers a metric. Registering the same name again with the same type,
 * help, label names and buckets returns the existing metric (so two pieces
 * of code may share a metric); anything else is an error. Returns 0 with
 * *ret_metric set (owned by the registry), or
 *   -EINVAL  bad name, label name, type or buckets; duplicate label name;
 *   -EEXIST  the name, or a series name it writes (a histogram "x" writes
 *            x_bucket, x_sum and x_count), is taken by a different metric;
 *   -ENOMEM.
 * Any thread.
 */
HK_EXTERN int hk_metrics_register(hk_metrics_t *metrics, const hk_metric_def_t *def,
                                  hk_metric_t **ret_metric);

/*
 * Shorthands for metrics without labels: register and return the only
 * child. Same errors as hk_metrics_register. buckets may be NULL (defaults).
 */
HK_EXTERN int hk_metrics_counter(hk_metrics_t *metrics, const char *name, const char *help,
                                 hk_counter_t **ret_counter);
HK_EXTERN int hk_metrics_gauge(hk_metrics_t *metrics, const char *name, const char *help,
                               hk_gauge_t **ret_gauge);
HK_EXTERN int hk_metrics_histogram(hk_metrics_t *metrics, const char *name, const char *help,
                                   const double *buckets, size_t nbuckets,
                                   hk_histogram_t **ret_histogram);

/*
 * The child of a metric for one set of label values (one per label name,
 * in the same order; NULL-terminated, e.g. HK_LABELS("GET", "200"); NULL
 * for a metric without labels), created at the first call. The values are
 * copied. Look it up once and keep the handle: this call takes a lock and
 * searches, the updates do not. Returns 0 with *ret set (owned by the
 * registry, valid until hk_metrics_free), or -EINVAL (wrong metric type,
 * wrong number of values, a value that is not UTF-8) or -ENOMEM. Any thread.
 */
HK_EXTERN int hk_metric_counter(hk_metric_t *metric, const char *const *values,
                                hk_counter_t **ret_counter);
HK_EXTERN int hk_metric_gauge(hk_metric_t *metric, const char *const *values, hk_gauge_t **ret_gauge);
HK_EXTERN int hk_metric_histogram(hk_metric_t *metric, const char *const *values,
                                  hk_histogram_t **ret_histogram);

/* The metric's name (owned by the metric). */
HK_EXTERN const char *hk_metric_name(const hk_metric_t *metric);

/* ---- updates: lock-free, any thread, NULL handle = no-op ------------------ */

/* Adds 1 (one atomic add). */
HK_EXTERN void hk_counter_inc(hk_counter_t *counter);
/* Adds v >= 0 (an atomic add for whole numbers below 2^53, else a
 * compare-and-swap loop). Returns 0, or -EINVAL for v < 0 or NaN (no change). */
HK_EXTERN int hk_counter_add(hk_counter_t *counter, double v);
/* The current value (0 for NULL). */
HK_EXTERN double hk_counter_value(const hk_counter_t *counter);

/* Sets, adds (v may be negative), adds 1, subtracts 1. */
HK_EXTERN void hk_gauge_set(hk_gauge_t *gauge, double v);
HK_EXTERN void hk_gauge_add(hk_gauge_t *gauge, double v);
HK_EXTERN void hk_gauge_inc(hk_gauge_t *gauge);
HK_EXTERN void hk_gauge_dec(hk_gauge_t *gauge);
/* The current value (0 for NULL). */
HK_EXTERN double hk_gauge_value(const hk_gauge_t *gauge);

/* Records one observation: the first bucket whose bound is >= v counts it.
 * Returns 0, or -EINVAL for NaN (not recorded). */
HK_EXTERN int hk_histogram_observe(hk_histogram_t *histogram, double v);
/* The number of observations and their sum (0 for NULL). */
HK_EXTERN unsigned long long hk_histogram_count(const hk_histogram_t *histogram);
HK_EXTERN double hk_histogram_sum(const hk_histogram_t *histogram);

/*
 * Bucket helpers: write count bounds start, start+width, ... (linear) or
 * start, start*factor, ... (exponential) into out. Return count, or
 * -EINVAL (count 0, width <= 0, start <= 0 or factor <= 1 for exponential).
 */
HK_EXTERN int hk_metrics_linear_buckets(double start, double width, size_t count, double *out);
HK_EXTERN int hk_metrics_exponential_buckets(double start, double factor, size_t count, double *out);

/* ---- collectors: series computed at scrape time ------------------------- */

/*
 * A collector is called each time the exposition is written, on the
 * writing thread, after the registered metrics; collectors run in
 * registration order. It declares families with hk_scrape_family and
 * appends each family's samples with hk_scrape_sample right after it:
 *
 *     static void collect(hk_scrape_t *s, void *data) {
 *         struct pool *p = data;
 *         hk_scrape_family(s, HK_METRIC_GAUGE, "pool_connections", "Open connections.",
 *                          HK_LABELS("state"));
 *         hk_scrape_sample(s, HK_LABELS("idle"), p->idle);
 *         hk_scrape_sample(s, HK_LABELS("busy"), p->busy);
 *     }
 *
 * A collector must not register metrics or collectors on, or write, the
 * registry it belongs to, and must not keep the scrape. It must not repeat
 * a label set within a family.
 */
typedef void (*hk_metrics_collect_cb)(hk_scrape_t *scrape, void *data);

/*
 * Adds a collector. On success the registry owns data: destroy (may be
 * NULL) is called with it by hk_metrics_free. On failure nothing is kept
 * and destroy is not called. Returns 0, -EINVAL (no callback) or -ENOMEM.
 * Any thread.
 */
HK_EXTERN int hk_metrics_add_collector(hk_metrics_t *metrics, hk_metrics_collect_cb collect,
                                       void *data, hk_destroy_cb destroy);

/*
 * Adds the standard process_* series, read from /proc at each scrape (the
 * names and meanings of the Prometheus client libraries):
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds. A value that cannot be read is left out.
 * Returns 0, -EEXIST (already added to this registry) or -ENOMEM.
 */
HK_EXTERN int hk_metrics_add_process_collector(hk_metrics_t *metrics);

/*
 * Inside a collector: starts a family. type is counter, gauge or untyped
 * (histograms are not supported here); labels as in hk_metric_def_t.
 * Returns 0, -EINVAL (bad name, label names or type) or -EEXIST (the name,
 * or a series name, is already written in this exposition); on an error
 * the family and the samples added to it are left out of the exposition.
 * Also returns the exposition's write error once the sink failed.
 */
HK_EXTERN int hk_scrape_family(hk_scrape_t *scrape, hk_metric_type_t type, const char *name,
                               const char *help, const char *const *labels);

/*
 * Inside a collector: appends a sample to the current family, with one
 * value per label name (NULL-terminated; NULL without labels). Returns 0,
 * -EINVAL (no family, the family was rejected, wrong number of values, a
 * value that is not UTF-8; the sample is left out) or the write error.
 */
HK_EXTERN int hk_scrape_sample(hk_scrape_t *scrape, const char *const *values, double value);

/* ---- exposition --------------------------------------------------------- */

/*
 * Receives the exposition in pieces, in order. Return 0 to go on, or a
 * negative errno value to stop writing (hk_metrics_write returns it).
 */
typedef int (*hk_metrics_write_cb)(const char *data, size_t len, void *arg);

/*
 * Writes the Prometheus text exposition (format 0.0.4; Content-Type
 * HK_METRICS_CONTENT_TYPE) to write, in pieces of at most a few KiB:
 * registered metrics sorted by name, each metric's children sorted by their
 * label values, then the collectors' families in registration order.
 * Histograms write cumulative name_bucket{le="..."} series ending with
 * le="+Inf", then name_sum and name_count. Returns 0, the sink's negative
 * error, or -ENOMEM. Any thread; concurrent writes and updates are fine
 * (each value is read atomically; a histogram's sum may lag its buckets by
 * the observations in flight, its count always equals its +Inf bucket).
 */
HK_EXTERN int hk_metrics_write(hk_metrics_t *metrics, hk_metrics_write_cb write, void *arg);

/*
 * Writes the exposition into buf (snprintf-style: always NUL-terminated
 * when cap > 0). *ret_len (may be NULL) gets the exposition's full length.
 * Returns 0 when it fits (length < cap), -ENOBUFS when it was truncated
 * (retry with *ret_len + 1 bytes, plus room for growth), or -ENOMEM/-EINVAL.
 */
HK_EXTERN int hk_metrics_print(hk_metrics_t *metrics, char *buf, size_t cap, size_t *ret_len);

/* ---- the host's registry --------------------------------------------------- */

/*
 * Every builder creates a registry with the process collector added; it
 * moves into the host at build and is freed with the host (hk_host_free) or
 * with a builder that was never built. Register metrics on it before or
 * after build; publish it with hk_metrics_write. Any thread.
 */
struct hk_builder_s;
struct hk_host_s;
HK_EXTERN hk_metrics_t *hk_builder_metrics(struct hk_builder_s *builder);
HK_EXTERN hk_metrics_t *hk_host_metrics(struct hk_host_s *host);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_METRICS_H */
