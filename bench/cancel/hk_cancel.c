/*
 * Cancellation benchmark, hostkit side: how long a thread that waits on a
 * token takes to wake up once another thread cancels it.
 *
 * For each of N fresh tokens (hk_token_new, not timed): the main thread hands
 * the token to a waiter thread, waits until the waiter has announced that it
 * is about to wait and then 50 us more (so it is asleep in the kernel, not
 * spinning), records t0 and calls hk_token_cancel; the waiter records t1 as
 * soon as its wait returns. Latency = t1 - t0, both from
 * clock_gettime(CLOCK_MONOTONIC). The first WARMUP cancels are not counted.
 *
 * Modes (argv[1]):
 *   wait  the waiter blocks in hk_token_wait (mutex + condition variable);
 *   fd    the waiter blocks in poll() on hk_token_fd (an eventfd; created by
 *         the main thread before the hand-over, not timed).
 * argv[2]: N (default 10000).
 *
 * Prints one JSON line: {"impl":"hostkit","mode":...,"n":...,"p50_ns":...,
 * "p99_ns":...,"max_ns":...}; bench/run reads it. The Go peer
 * (bench/peers/cancel/go) does the same with context.WithCancel and
 * <-ctx.Done(). Depends on the public API (hostkit/token.h), libc, pthreads.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hostkit/token.h>

enum { WARMUP = 200, SETTLE_NS = 50000 };

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "hk_cancel: " __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

typedef struct shared {
    bool use_fd;
    long total;               /* WARMUP + N */
    hk_token_t *token;        /* the current round's token, handed over through `go` */
    int fd;                   /* its fd in fd mode */
    sem_t go, done;
    atomic_long ready;        /* round number + 1, set just before the waiter waits */
    uint64_t *t1;             /* per round: when the waiter woke */
} shared_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sem_wait_intr(sem_t *s) {
    while (sem_wait(s) < 0 && errno == EINTR) {
    }
}

static void *waiter_main(void *arg) {
    shared_t *sh = arg;
    for (long i = 0; i < sh->total; i++) {
        sem_wait_intr(&sh->go);
        hk_token_t *t = sh->token;
        int fd = sh->fd;
        atomic_store_explicit(&sh->ready, i + 1, memory_order_release);
        if (sh->use_fd) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
        } else {
            (void)hk_token_wait(t);
        }
        sh->t1[i] = now_ns();
        sem_post(&sh->done);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "wait";
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
    if ((strcmp(mode, "wait") != 0 && strcmp(mode, "fd") != 0) || n < 1)
        DIE("usage: hk_cancel [wait|fd] [N]");

    shared_t sh = {.use_fd = strcmp(mode, "fd") == 0, .total = WARMUP + n, .fd = -1};
    uint64_t *t0 = calloc((size_t)sh.total, sizeof *t0);
    sh.t1 = calloc((size_t)sh.total, sizeof *sh.t1);
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    if (!t0 || !sh.t1 || !lat)
        DIE("out of memory");
    sem_init(&sh.go, 0, 0);
    sem_init(&sh.done, 0, 0);
    atomic_init(&sh.ready, 0);

    pthread_t waiter;
    int rc = pthread_create(&waiter, NULL, waiter_main, &sh);
    if (rc != 0)
        DIE("pthread_create: %s", strerror(rc));

    const struct timespec settle = {0, SETTLE_NS};
    for (long i = 0; i < sh.total; i++) {
        hk_token_t *t = NULL;
        if (hk_token_new(&t) < 0)
            DIE("hk_token_new failed");
        sh.token = t;
        if (sh.use_fd && (sh.fd = hk_token_fd(t)) < 0)
            DIE("hk_token_fd: %s", strerror(-sh.fd));
        sem_post(&sh.go);
        while (atomic_load_explicit(&sh.ready, memory_order_acquire) != i + 1) {
        }
        nanosleep(&settle, NULL);
        t0[i] = now_ns();
        hk_token_cancel(t);
        sem_wait_intr(&sh.done);
        hk_token_free(t);
    }
    pthread_join(waiter, NULL);

    for (long i = 0; i < n; i++)
        lat[i] = sh.t1[WARMUP + i] - t0[WARMUP + i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    size_t p99 = (size_t)((double)n * 0.99);
    if (p99 >= (size_t)n)
        p99 = (size_t)n - 1;
    printf("{\"impl\":\"hostkit\",\"mode\":\"%s\",\"n\":%ld,\"p50_ns\":%llu,\"p99_ns\":%llu,"
           "\"max_ns\":%llu}\n",
           mode, n, (unsigned long long)lat[n / 2], (unsigned long long)lat[p99],
           (unsigned long long)lat[n - 1]);
    free(t0);
    free(sh.t1);
    free(lat);
    sem_destroy(&sh.go);
    sem_destroy(&sh.done);
    return 0;
}
