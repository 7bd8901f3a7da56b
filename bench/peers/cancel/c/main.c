/*
 * Cancellation benchmark, bare C floor: the same protocol as
 * bench/cancel/hk_cancel.c without hostkit, to show what the kernel and
 * glibc alone cost for a cross-thread wake-up on this machine.
 *
 * For each of N rounds a fresh "token" (a flag, a mutex and a condition
 * variable, or an eventfd) is handed to a waiter thread; the main thread
 * waits until the waiter announced that it is about to wait, then 50 us,
 * records t0 and cancels; the waiter records t1 when its wait returns.
 * Modes (argv[1]):
 *   cond           set the flag and pthread_cond_broadcast with the mutex
 *                  held, then unlock (what hk_token_cancel does);
 *   cond-unlocked  set the flag under the mutex, unlock, then broadcast: the
 *                  woken waiter does not find the mutex still held;
 *   eventfd        write to an eventfd the waiter polls.
 * argv[2]: N (default 10000).
 * Prints one JSON line like hk_cancel. Depends on libc and pthreads only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { WARMUP = 200, SETTLE_NS = 50000 };

typedef struct token {
    bool cancelled;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int efd;
} token_t;

typedef struct shared {
    bool use_fd;
    long total;
    token_t *token;
    sem_t go, done;
    atomic_long ready;
    uint64_t *t1;
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
        token_t *t = sh->token;
        atomic_store_explicit(&sh->ready, i + 1, memory_order_release);
        if (sh->use_fd) {
            struct pollfd p = {.fd = t->efd, .events = POLLIN};
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
        } else {
            pthread_mutex_lock(&t->mu);
            while (!t->cancelled)
                pthread_cond_wait(&t->cond, &t->mu);
            pthread_mutex_unlock(&t->mu);
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
    const char *mode = argc > 1 ? argv[1] : "cond";
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
    bool late = strcmp(mode, "cond-unlocked") == 0;
    if ((strcmp(mode, "cond") != 0 && !late && strcmp(mode, "eventfd") != 0) || n < 1) {
        fprintf(stderr, "usage: cancel-c [cond|cond-unlocked|eventfd] [N]\n");
        return 1;
    }
    shared_t sh = {.use_fd = strcmp(mode, "eventfd") == 0, .total = WARMUP + n};
    uint64_t *t0 = calloc((size_t)sh.total, sizeof *t0);
    sh.t1 = calloc((size_t)sh.total, sizeof *sh.t1);
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    if (!t0 || !sh.t1 || !lat)
        return 1;
    sem_init(&sh.go, 0, 0);
    sem_init(&sh.done, 0, 0);
    pthread_t waiter;
    if (pthread_create(&waiter, NULL, waiter_main, &sh) != 0)
        return 1;

    const struct timespec settle = {0, SETTLE_NS};
    for (long i = 0; i < sh.total; i++) {
        token_t *t = calloc(1, sizeof *t);
        if (!t)
            return 1;
        pthread_mutex_init(&t->mu, NULL);
        pthread_cond_init(&t->cond, NULL);
        t->efd = sh.use_fd ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
        sh.token = t;
        sem_post(&sh.go);
        while (atomic_load_explicit(&sh.ready, memory_order_acquire) != i + 1) {
        }
        nanosleep(&settle, NULL);
        t0[i] = now_ns();
        if (sh.use_fd) {
            uint64_t one = 1;
            (void)!write(t->efd, &one, sizeof one);
        } else {
            pthread_mutex_lock(&t->mu);
            t->cancelled = true;
            if (!late)
                pthread_cond_broadcast(&t->cond);
            pthread_mutex_unlock(&t->mu);
            if (late) /* safe here: the token is freed only after `done` */
                pthread_cond_broadcast(&t->cond);
        }
        sem_wait_intr(&sh.done);
        if (t->efd >= 0)
            close(t->efd);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
    pthread_join(waiter, NULL);
    for (long i = 0; i < n; i++)
        lat[i] = sh.t1[WARMUP + i] - t0[WARMUP + i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    size_t p99 = (size_t)((double)n * 0.99);
    if (p99 >= (size_t)n)
        p99 = (size_t)n - 1;
    printf("{\"impl\":\"c\",\"mode\":\"%s\",\"n\":%ld,\"p50_ns\":%llu,\"p99_ns\":%llu,\"max_ns\":%llu}\n",
           mode, n, (unsigned long long)lat[n / 2], (unsigned long long)lat[p99],
           (unsigned long long)lat[n - 1]);
    return 0;
}
