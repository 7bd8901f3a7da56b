/*
 * Work queue throughput (bench/run, scenario jobs): P producer threads put
 * N items in total on a hostkit queue (hk_queue_enqueue, blocking when
 * full) drained by W worker threads; each item is a function that adds 1
 * to a counter. Timed from just before the producers start until the last
 * item ran. Same protocol as bench/peers/jobs/go/main.go.
 * argv: PRODUCERS WORKERS ITEMS CAPACITY. Prints one JSON line.
 * Depends on libhostkit only.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hostkit/hostkit.h>

static atomic_long done;
static long total;
static hk_token_t *all_done;
static hk_queue_t *queue;
static long per_producer;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int item(void *arg, hk_token_t *token) {
    (void)arg;
    (void)token;
    if (atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1 == total)
        hk_token_cancel(all_done);
    return 0;
}

static void *producer(void *arg) {
    (void)arg;
    for (long i = 0; i < per_producer; i++)
        if (hk_queue_enqueue(queue, item, NULL, NULL, UINT64_MAX, NULL) != 0)
            abort();
    return NULL;
}

static void *host_main(void *arg) {
    return (void *)(intptr_t)hk_host_run(arg);
}

int main(int argc, char **argv) {
    int producers = argc > 1 ? atoi(argv[1]) : 1;
    int workers = argc > 2 ? atoi(argv[2]) : 2;
    total = argc > 3 ? atol(argv[3]) : 1000000;
    long capacity = argc > 4 ? atol(argv[4]) : 1024;
    if (producers < 1 || workers < 1 || total < producers || capacity < 1)
        return 2;
    per_producer = total / producers;
    total = per_producer * producers;
    hk_builder_t *b = hk_builder_new(0, NULL);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:HandleSignals", "false");
    hk_config_set(c, "Logging:LogLevel:Default", "Warning");
    hk_queue_def_t def = {.name = "bench", .workers = (unsigned)workers, .capacity = (size_t)capacity};
    if (hk_builder_add_queue(b, &def, &queue) < 0 || hk_token_new(&all_done) < 0)
        return 1;
    hk_host_t *h = NULL;
    if (hk_builder_build(b, &h) < 0)
        return hk_builder_exit_code(b);
    hk_builder_free(b);
    pthread_t ht;
    pthread_create(&ht, NULL, host_main, h);
    hk_token_wait(hk_host_started(h));

    pthread_t th[64];
    uint64_t t0 = now_ns();
    for (int i = 0; i < producers && i < 64; i++)
        pthread_create(&th[i], NULL, producer, NULL);
    hk_token_wait(all_done);
    uint64_t t1 = now_ns();
    for (int i = 0; i < producers && i < 64; i++)
        pthread_join(th[i], NULL);
    hk_host_stop(h);
    void *rc;
    pthread_join(ht, &rc);
    hk_host_free(h);
    hk_token_free(all_done);
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"items\": %ld, \"ns\": %llu, \"items_s\": %.0f}\n", total, (unsigned long long)(t1 - t0),
           (double)total / secs);
    return (int)(intptr_t)rc;
}
