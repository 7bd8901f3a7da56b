/*
 * Metrics benchmark: what an update costs on the hot path, alone and with
 * a second thread hammering the same series (or a different one), and what
 * writing an exposition costs. Not a test: it prints numbers and fails only
 * if the library misbehaves (a wrong total).
 *
 * Depends on the public API (hostkit/metrics.h), pthreads and libc only. Run
 * it from a Release build: `make bench-metrics` (bench/README.md).
 *
 * Each row is the median of TRIALS trials; a trial times OPS updates per
 * thread with clock_gettime(CLOCK_MONOTONIC) around the loop (threads start
 * together on a spin barrier; the slowest thread's time counts). ns/op is
 * per update on one thread. On a 2-core machine the two-thread rows show
 * cache-line contention, not parallel speed-up.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hostkit/metrics.h"

enum { TRIALS = 5 };
#define OPS 20000000L
#define SERIES 1000

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "bench_metrics: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef enum op { OP_INC, OP_ADD_FRAC, OP_GAUGE_ADD, OP_OBSERVE } op_t;

typedef struct worker {
    op_t op;
    hk_counter_t *c;
    hk_gauge_t *g;
    hk_histogram_t *h;
    atomic_int *ready;
    atomic_bool *go;
    uint64_t ns;
} worker_t;

static void *run(void *p) {
    worker_t *w = p;
    atomic_fetch_add(w->ready, 1);
    while (!atomic_load(w->go))
        ;
    uint64_t t0 = now_ns();
    switch (w->op) {
    case OP_INC:
        for (long i = 0; i < OPS; i++)
            hk_counter_inc(w->c);
        break;
    case OP_ADD_FRAC:
        for (long i = 0; i < OPS; i++)
            hk_counter_add(w->c, 0.5);
        break;
    case OP_GAUGE_ADD:
        for (long i = 0; i < OPS; i++)
            hk_gauge_add(w->g, 1);
        break;
    case OP_OBSERVE:
        for (long i = 0; i < OPS; i++)
            hk_histogram_observe(w->h, (double)(i & 1023) * 0.01);
        break;
    }
    w->ns = now_ns() - t0;
    return NULL;
}

/* ns per update with nthreads threads; shared: all on the same series. */
static double measure(hk_metrics_t *m, op_t op, int nthreads, int shared) {
    static int serial;
    double ns[TRIALS];
    for (int t = 0; t < TRIALS; t++) {
        worker_t w[2];
        pthread_t th[2];
        atomic_int ready = 0;
        atomic_bool go = false;
        for (int i = 0; i < nthreads; i++) {
            /* fresh series per trial: b<serial>_<i>_total, b<serial>_<i>, b<serial>_<i>_seconds */
            char name[64], cname[72], hname[72];
            snprintf(name, sizeof name, "b%d_%d", serial, shared ? 0 : i);
            snprintf(cname, sizeof cname, "%s_total", name);
            snprintf(hname, sizeof hname, "%s_seconds", name);
            w[i] = (worker_t){.op = op, .ready = &ready, .go = &go};
            if (hk_metrics_counter(m, cname, "Bench.", &w[i].c) < 0 ||
                hk_metrics_gauge(m, name, "Bench.", &w[i].g) < 0 ||
                hk_metrics_histogram(m, hname, "Bench.", NULL, 0, &w[i].h) < 0)
                DIE("registration: %s", hk_metrics_last_error());
        }
        serial++;
        for (int i = 0; i < nthreads; i++)
            if (pthread_create(&th[i], NULL, run, &w[i]) != 0)
                DIE("pthread_create failed");
        while (atomic_load(&ready) < nthreads)
            sched_yield();
        atomic_store(&go, true);
        uint64_t slowest = 0;
        for (int i = 0; i < nthreads; i++) {
            pthread_join(th[i], NULL);
            if (w[i].ns > slowest)
                slowest = w[i].ns;
        }
        /* exact totals, or the numbers mean nothing */
        double want = (double)OPS * (shared ? nthreads : 1);
        double got = op == OP_INC        ? hk_counter_value(w[0].c)
                     : op == OP_ADD_FRAC ? hk_counter_value(w[0].c) * 2
                     : op == OP_GAUGE_ADD ? hk_gauge_value(w[0].g)
                                          : (double)hk_histogram_count(w[0].h);
        if (got != want)
            DIE("wrong total: %.0f, want %.0f", got, want);
        ns[t] = (double)slowest / OPS;
    }
    return median(ns, TRIALS);
}

static int sink(const char *data, size_t len, void *arg) {
    (void)data;
    *(size_t *)arg += len;
    return 0;
}

int main(void) {
    hk_metrics_t *m;
    if (hk_metrics_new(&m) < 0)
        DIE("hk_metrics_new failed");
    static const struct {
        const char *what;
        op_t op;
        int threads, shared;
    } rows[] = {
        {"hk_counter_inc, 1 thread", OP_INC, 1, 1},
        {"hk_counter_inc, 2 threads, same counter", OP_INC, 2, 1},
        {"hk_counter_inc, 2 threads, own counters", OP_INC, 2, 0},
        {"hk_counter_add(0.5) (CAS), 1 thread", OP_ADD_FRAC, 1, 1},
        {"hk_counter_add(0.5) (CAS), 2 threads, same counter", OP_ADD_FRAC, 2, 1},
        {"hk_gauge_add, 1 thread", OP_GAUGE_ADD, 1, 1},
        {"hk_histogram_observe (11 buckets), 1 thread", OP_OBSERVE, 1, 1},
        {"hk_histogram_observe, 2 threads, same histogram", OP_OBSERVE, 2, 1},
    };
    printf("| update | ns/op (median of %d) |\n|---|---|\n", TRIALS);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("| %s | %.2f |\n", rows[i].what,
               measure(m, rows[i].op, rows[i].threads, rows[i].shared));
    hk_metrics_free(m);

    /* exposition of SERIES labelled counters */
    if (hk_metrics_new(&m) < 0)
        DIE("hk_metrics_new failed");
    hk_metric_t *f;
    hk_metric_def_t def = {.type = HK_METRIC_COUNTER, .name = "req_total", .help = "Requests.",
                           .labels = HK_LABELS("path", "code")};
    if (hk_metrics_register(m, &def, &f) < 0)
        DIE("register: %s", hk_metrics_last_error());
    for (int i = 0; i < SERIES; i++) {
        char path[32];
        snprintf(path, sizeof path, "/api/v1/item/%d", i);
        hk_counter_t *c;
        if (hk_metric_counter(f, HK_LABELS(path, "200"), &c) < 0)
            DIE("child: %s", hk_metrics_last_error());
        hk_counter_add(c, i);
    }
    double us[TRIALS];
    size_t bytes = 0;
    for (int t = 0; t < TRIALS; t++) {
        bytes = 0;
        uint64_t t0 = now_ns();
        for (int k = 0; k < 100; k++)
            if (hk_metrics_write(m, sink, &bytes) < 0)
                DIE("write: %s", hk_metrics_last_error());
        us[t] = (double)(now_ns() - t0) / 100 / 1000;
        bytes /= 100;
    }
    printf("\n| exposition | us per write (median of %d) | bytes |\n|---|---|---|\n", TRIALS);
    printf("| %d labelled counters | %.1f | %zu |\n", SERIES, median(us, TRIALS), bytes);
    hk_metrics_free(m);
    return 0;
}
