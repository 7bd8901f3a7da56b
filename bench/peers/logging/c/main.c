/*
 * Logging benchmark, C floor (bench/README.md, scenario 3): no logging
 * library, THREADS threads calling fprintf on one FILE * (stdio's default
 * buffer, its own lock per call), a UTC timestamp with microseconds
 * (clock_gettime, gmtime_r cached per second), the same values as the
 * hostkit program. simple: a line like hostkit's simple formatter; json: an
 * object with the three values (no escaping: the strings are known to be
 * safe, which a real JSON formatter cannot assume). fclose at the end is
 * inside the timed region. Not a peer: it shows what writing the bytes costs.
 *
 * Usage: logging-c file simple|json THREADS N PATH
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const USERS[4] = {"alice", "bob", "carol", "dave"};
static FILE *out;
static int json;
static pthread_barrier_t start;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct prod {
    pthread_t th;
    long n;
    uint64_t t0, t1;
} prod_t;

static void *produce(void *arg) {
    prod_t *p = arg;
    time_t c_sec = -1;
    char c_ts[32] = "";
    pthread_barrier_wait(&start);
    p->t0 = now_ns();
    for (long i = 0; i < p->n; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != c_sec) {
            struct tm tm;
            gmtime_r(&ts.tv_sec, &tm);
            strftime(c_ts, sizeof c_ts, "%Y-%m-%dT%H:%M:%S", &tm);
            c_sec = ts.tv_sec;
        }
        double ms = (double)(i & 1023) * 0.25;
        if (json)
            fprintf(out, "{\"Timestamp\":\"%s.%06ldZ\",\"LogLevel\":\"Information\",\"Category\":"
                         "\"Bench.Worker\",\"Message\":\"Processed %ld items in %g ms for %s\","
                         "\"State\":{\"Count\":%ld,\"ElapsedMs\":%g,\"User\":\"%s\"}}\n",
                    c_ts, ts.tv_nsec / 1000, i, ms, USERS[i & 3], i, ms, USERS[i & 3]);
        else
            fprintf(out, "%s.%06ldZ info: Bench.Worker[0] Processed %ld items in %g ms for %s\n",
                    c_ts, ts.tv_nsec / 1000, i, ms, USERS[i & 3]);
    }
    p->t1 = now_ns();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6 || strcmp(argv[1], "file") != 0) {
        fprintf(stderr, "usage: logging-c file simple|json THREADS N PATH\n");
        return 2;
    }
    json = strcmp(argv[2], "json") == 0;
    int threads = atoi(argv[3]);
    long n = atol(argv[4]);
    if (threads < 1 || threads > 16 || n < threads)
        return 2;
    if (!(out = fopen(argv[5], "w"))) {
        perror(argv[5]);
        return 1;
    }
    prod_t p[16];
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        p[i] = (prod_t){.n = n / threads + (i < n % threads)};
        pthread_create(&p[i].th, NULL, produce, &p[i]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns(), last = 0;
    double caller = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].th, NULL);
        caller += (double)(p[i].t1 - p[i].t0) / (double)p[i].n / threads;
        if (p[i].t1 > last)
            last = p[i].t1;
    }
    if (fclose(out) != 0) {
        perror("fclose");
        return 1;
    }
    uint64_t t1 = now_ns();
    printf("{\"impl\":\"c\",\"mode\":\"file\",\"format\":\"%s\",\"threads\":%d,\"n\":%ld,"
           "\"caller_ns\":%.1f,\"calls_s\":%.6f,\"total_s\":%.6f,\"dropped\":0}\n",
           argv[2], threads, n, caller, (double)(last - t0) / 1e9, (double)(t1 - t0) / 1e9);
    return 0;
}
