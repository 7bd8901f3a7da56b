/*
 * Concurrency tests for the metrics registry (src/metrics): many threads
 * updating the same children (exact totals asserted), creating children and
 * registering metrics while others scrape. Meant to run under TSan too
 * (make test-tsan). Depends on cmocka, pthreads and testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 8, ROUNDS = 20000 };

typedef struct shared {
    hk_metrics_t *m;
    hk_metric_t *fam;
    hk_counter_t *counter;
    hk_gauge_t *gauge;
    hk_histogram_t *hist;
    atomic_int ready;
    atomic_bool go;
    atomic_bool stop_scraping;
    int idx;
} shared_t;

typedef struct arg {
    shared_t *sh;
    int idx;
    int rc;
} arg_t;

static void start_line(shared_t *sh) {
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go))
        sched_yield(); /* all threads start together (a barrier, not a sleep) */
}

static void *updater(void *p) {
    arg_t *a = p;
    shared_t *sh = a->sh;
    /* every thread also looks up its own child and a shared one */
    char mine[16];
    snprintf(mine, sizeof mine, "t%d", a->idx);
    hk_counter_t *own = NULL, *common = NULL;
    start_line(sh);
    if ((a->rc = hk_metric_counter(sh->fam, HK_LABELS(mine), &own)) < 0 ||
        (a->rc = hk_metric_counter(sh->fam, HK_LABELS("common"), &common)) < 0)
        return NULL;
    for (int i = 0; i < ROUNDS; i++) {
        hk_counter_inc(sh->counter);
        hk_counter_add(sh->counter, 0.5); /* the CAS path */
        hk_gauge_inc(sh->gauge);
        hk_gauge_add(sh->gauge, -0.5);
        hk_histogram_observe(sh->hist, (double)(i % 4)); /* 0,1,2,3 */
        hk_counter_inc(own);
        hk_counter_inc(common);
    }
    return NULL;
}

static int discard(const char *data, size_t len, void *arg) {
    (void)data;
    *(size_t *)arg += len;
    return 0;
}

static void *scraper(void *p) {
    arg_t *a = p;
    shared_t *sh = a->sh;
    start_line(sh);
    int n = 0;
    while (!atomic_load(&sh->stop_scraping) || n < 3) {
        size_t bytes = 0;
        if ((a->rc = hk_metrics_write(sh->m, discard, &bytes)) < 0)
            return NULL;
        if (bytes == 0) {
            a->rc = -EIO;
            return NULL;
        }
        n++;
    }
    return NULL;
}

static void *registrar(void *p) {
    arg_t *a = p;
    shared_t *sh = a->sh;
    start_line(sh);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "late_%03d_total", i);
        hk_counter_t *c;
        if ((a->rc = hk_metrics_counter(sh->m, name, "Late.", &c)) < 0)
            return NULL;
        hk_counter_inc(c);
    }
    return NULL;
}

static void collect(hk_scrape_t *s, void *data) {
    (void)data;
    hk_scrape_family(s, HK_METRIC_GAUGE, "collected", "C.", NULL);
    hk_scrape_sample(s, NULL, 1);
}

static void concurrent_updates_add_up_exactly_while_others_scrape_and_register(void **state) {
    (void)state;
    shared_t sh = {0};
    assert_int_equal(hk_metrics_new(&sh.m), 0);
    assert_int_equal(hk_metrics_add_process_collector(sh.m), 0);
    assert_int_equal(hk_metrics_add_collector(sh.m, collect, NULL, NULL), 0);
    assert_int_equal(hk_metrics_counter(sh.m, "ops_total", "Ops.", &sh.counter), 0);
    assert_int_equal(hk_metrics_gauge(sh.m, "level", "Level.", &sh.gauge), 0);
    static const double b[] = {0.5, 1.5, 2.5};
    assert_int_equal(hk_metrics_histogram(sh.m, "sizes", "Sizes.", b, 3, &sh.hist), 0);
    assert_int_equal(hk_metrics_register(sh.m,
                                         &(hk_metric_def_t){.type = HK_METRIC_COUNTER,
                                                            .name = "per_thread_total",
                                                            .help = "Per thread.",
                                                            .labels = HK_LABELS("thread")},
                                         &sh.fam),
                     0);

    pthread_t th[THREADS + 2];
    arg_t args[THREADS + 2];
    for (int i = 0; i < THREADS + 2; i++) {
        args[i] = (arg_t){.sh = &sh, .idx = i};
        void *(*fn)(void *) = i < THREADS ? updater : i == THREADS ? scraper : registrar;
        assert_int_equal(pthread_create(&th[i], NULL, fn, &args[i]), 0);
    }
    while (atomic_load(&sh.ready) < THREADS + 2)
        sched_yield();
    atomic_store(&sh.go, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(th[THREADS + 1], NULL);
    atomic_store(&sh.stop_scraping, true);
    pthread_join(th[THREADS], NULL);
    for (int i = 0; i < THREADS + 2; i++)
        assert_int_equal(args[i].rc, 0);

    const double n = (double)THREADS * ROUNDS;
    assert_true(hk_counter_value(sh.counter) == n * 1.5);
    assert_true(hk_gauge_value(sh.gauge) == n * 0.5);
    assert_int_equal(hk_histogram_count(sh.hist), (unsigned long long)n);
    assert_true(hk_histogram_sum(sh.hist) == n * 1.5); /* mean of 0,1,2,3 */
    hk_counter_t *common;
    assert_int_equal(hk_metric_counter(sh.fam, HK_LABELS("common"), &common), 0);
    assert_true(hk_counter_value(common) == n);

    /* and the exposition agrees */
    size_t need = 0;
    assert_int_equal(hk_metrics_print(sh.m, NULL, 0, &need), -ENOBUFS);
    char *text = malloc(need + 4096);
    assert_non_null(text);
    assert_int_equal(hk_metrics_print(sh.m, text, need + 4096, NULL), 0);
    char want[128];
    snprintf(want, sizeof want, "\nops_total %.0f\n", n * 1.5);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nsizes_bucket{le=\"0.5\"} %.0f\n", n / 4);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nsizes_bucket{le=\"2.5\"} %.0f\n", n * 3 / 4);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nsizes_count %.0f\n", n);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nper_thread_total{thread=\"t3\"} %d\n", ROUNDS);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "\nlate_199_total 1\n"));
    free(text);
    hk_metrics_free(sh.m);
}

/* Many threads creating the same children at once get the same handles. */
static void *lookup(void *p) {
    arg_t *a = p;
    shared_t *sh = a->sh;
    start_line(sh);
    for (int i = 0; i < 64; i++) {
        char v[16];
        snprintf(v, sizeof v, "%02d", i);
        hk_gauge_t *g;
        if ((a->rc = hk_metric_gauge(sh->fam, HK_LABELS(v), &g)) < 0)
            return NULL;
        hk_gauge_inc(g);
    }
    return NULL;
}

static void concurrent_lookups_of_one_label_set_share_a_child(void **state) {
    (void)state;
    shared_t sh = {0};
    assert_int_equal(hk_metrics_new(&sh.m), 0);
    assert_int_equal(hk_metrics_register(sh.m,
                                         &(hk_metric_def_t){.type = HK_METRIC_GAUGE,
                                                            .name = "g",
                                                            .labels = HK_LABELS("k")},
                                         &sh.fam),
                     0);
    pthread_t th[THREADS];
    arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (arg_t){.sh = &sh, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, lookup, &args[i]), 0);
    }
    while (atomic_load(&sh.ready) < THREADS)
        sched_yield();
    atomic_store(&sh.go, true);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    for (int i = 0; i < 64; i++) {
        char v[16];
        snprintf(v, sizeof v, "%02d", i);
        hk_gauge_t *g;
        assert_int_equal(hk_metric_gauge(sh.fam, HK_LABELS(v), &g), 0);
        assert_true(hk_gauge_value(g) == THREADS);
    }
    hk_metrics_free(sh.m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_updates_add_up_exactly_while_others_scrape_and_register),
        cmocka_unit_test(concurrent_lookups_of_one_label_set_share_a_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
