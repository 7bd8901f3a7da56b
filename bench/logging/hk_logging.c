/*
 * Logging benchmark, hostkit side (bench/README.md, scenario 3): what a
 * filtered call costs, what an enabled call costs the calling thread, and
 * how many lines per second reach a file through the queue and the writer
 * thread. Depends on the public API (hostkit/host.h, hostkit/log.h), libc
 * and pthreads; the peers in bench/peers/logging/ do the same work.
 *
 * The log comes from a host built with no services (hk_builder_new, then
 * hk_builder_build, then hk_host_log), configured through the store:
 *   Logging:Console:LogLevel:Default=None   nothing on stderr
 *   Logging:File:Path=PATH, Logging:File:FormatterName=simple|json
 *   Logging:File:MaxFileSizeBytes=0          no rolling
 *   Logging:File:FormatterOptions:UseUtcTimestamp=true, TimestampFormat=
 *       yyyy-MM-ddTHH:mm:ss.ffffffK (simple writes none by default; every
 *       peer writes one)
 *   Logging:QueueFullMode=Wait, Logging:MaxQueueLength=Q (default 2500)
 *
 * Modes (one JSON line on stdout, read by bench/run):
 *   filtered N
 *       N calls at Debug (disabled: the minimum level is Information) of a
 *       template with three holes, and N of the printf macro; median of 5
 *       trials, in ns per call, and an empty loop of the same shape.
 *   file FORMAT THREADS N PATH [QUEUE]
 *       THREADS threads start together (a barrier) and log N/THREADS
 *       messages each: hk_log_info(lg, "Processed {Count} items in
 *       {ElapsedMs} ms for {User}", int64, double, string). Reports the
 *       caller-side cost (each thread's loop time / its calls, averaged),
 *       the time until hk_log_flush returned (every line written), and
 *       hk_log_stats (queued, dropped, write errors). bench/run counts the
 *       lines in PATH afterwards.
 * Times: clock_gettime(CLOCK_MONOTONIC).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hostkit/host.h>
#include <hostkit/log.h>

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "hk_logging: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

enum { TRIALS = 5, MAX_THREADS = 16 };

static const char *const USERS[4] = {"alice", "bob", "carol", "dave"};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static hk_host_t *make_host(const char *const *kv, size_t n) {
    hk_builder_t *b = hk_builder_new(0, NULL);
    if (!b)
        DIE("out of memory");
    hk_config_t *c = hk_builder_config(b);
    for (size_t i = 0; i + 1 < n; i += 2)
        if (hk_config_set(c, kv[i], kv[i + 1]) < 0)
            DIE("cannot set %s", kv[i]);
    hk_host_t *host = NULL;
    if (hk_builder_build(b, &host) < 0)
        DIE("build failed (exit code %d): %s", hk_builder_exit_code(b), hk_builder_error(b));
    hk_builder_free(b);
    return host;
}

/* ---- filtered ---------------------------------------------------------------- */

static volatile int64_t sink_i; /* keeps the arguments' computation alive */

static uint64_t time_filtered_tmpl(hk_logger_t *lg, long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        hk_log_debug(lg, "Processed {Count} items in {ElapsedMs} ms for {User}", (int64_t)i,
                     (double)i * 0.5, USERS[i & 3]);
    return now_ns() - t0;
}

static uint64_t time_filtered_printf(hk_logger_t *lg, long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        hk_debug(lg, "Processed %ld items in %.1f ms for %s", i, (double)i * 0.5, USERS[i & 3]);
    return now_ns() - t0;
}

/* The same loop shape with the check replaced by a volatile load. */
static volatile int level_gate = 6;
static uint64_t time_empty(long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (level_gate < 2)
            sink_i = i;
    return now_ns() - t0;
}

static void run_filtered(long n) {
    static const char *const kv[] = {"Logging:LogLevel:Default", "Information"};
    hk_host_t *host = make_host(kv, 2);
    hk_logger_t *lg = hk_host_logger(host, "Bench.Worker");
    if (!lg || hk_logger_enabled(lg, HK_LOG_DEBUG) || !hk_logger_enabled(lg, HK_LOG_INFO))
        DIE("unexpected logger state");
    uint64_t t[3][TRIALS];
    for (int k = 0; k < TRIALS; k++) {
        t[0][k] = time_filtered_tmpl(lg, n);
        t[1][k] = time_filtered_printf(lg, n);
        t[2][k] = time_empty(n);
    }
    for (int j = 0; j < 3; j++)
        qsort(t[j], TRIALS, sizeof t[j][0], cmp_u64);
    hk_log_stats_t st;
    hk_log_stats(hk_host_log(host), &st);
    uint64_t queued = 0;
    for (int i = 0; i < 6; i++)
        queued += st.messages[i];
    printf("{\"impl\":\"hostkit\",\"mode\":\"filtered\",\"n\":%ld,\"tmpl_ns\":%.3f,"
           "\"printf_ns\":%.3f,\"empty_ns\":%.3f,\"queued\":%" PRIu64 "}\n",
           n, (double)t[0][TRIALS / 2] / (double)n, (double)t[1][TRIALS / 2] / (double)n,
           (double)t[2][TRIALS / 2] / (double)n, queued);
    hk_host_free(host);
}

/* ---- file -------------------------------------------------------------------- */

typedef struct producer {
    pthread_t th;
    hk_logger_t *lg;
    pthread_barrier_t *start;
    long n;
    uint64_t t0, t1;
} producer_t;

static void *produce(void *arg) {
    producer_t *p = arg;
    hk_logger_t *lg = p->lg;
    pthread_barrier_wait(p->start);
    p->t0 = now_ns();
    for (long i = 0; i < p->n; i++)
        hk_log_info(lg, "Processed {Count} items in {ElapsedMs} ms for {User}", (int64_t)i,
                    (double)(i & 1023) * 0.25, USERS[i & 3]);
    p->t1 = now_ns();
    return NULL;
}

static void run_file(const char *format, int threads, long n, const char *path, const char *queue) {
    if (threads < 1 || threads > MAX_THREADS || n < threads)
        DIE("bad arguments");
    bool simple = strcmp(format, "simple") == 0;
    const char *kv[] = {
        "Logging:LogLevel:Default", "Information",
        "Logging:Console:LogLevel:Default", "None",
        "Logging:File:Path", path,
        "Logging:File:FormatterName", format,
        "Logging:File:MaxFileSizeBytes", "0",
        "Logging:QueueFullMode", "Wait",
        "Logging:MaxQueueLength", queue,
        "Logging:File:FormatterOptions:UseUtcTimestamp", "true",
        /* ISO 8601 UTC with microseconds, as the peers write; set for json too, as the
           file sink's default format ends in a space that json would keep */
        "Logging:File:FormatterOptions:TimestampFormat",
        simple ? "yyyy-MM-ddTHH:mm:ss.ffffffK " : "yyyy-MM-ddTHH:mm:ss.ffffffK",
    };
    size_t nkv = sizeof kv / sizeof kv[0];
    hk_host_t *host = make_host(kv, nkv);
    hk_log_t *log = hk_host_log(host);
    hk_logger_t *lg = hk_host_logger(host, "Bench.Worker");
    if (!lg)
        DIE("no logger");
    producer_t p[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        p[i] = (producer_t){.lg = lg, .start = &start, .n = n / threads + (i < n % threads)};
        if (pthread_create(&p[i].th, NULL, produce, &p[i]) != 0)
            DIE("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    double caller = 0;
    uint64_t calls_end = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].th, NULL);
        caller += (double)(p[i].t1 - p[i].t0) / (double)p[i].n / threads;
        if (p[i].t1 > calls_end)
            calls_end = p[i].t1;
    }
    hk_log_flush(log);
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&start);
    hk_log_stats_t st;
    hk_log_stats(log, &st);
    printf("{\"impl\":\"hostkit\",\"mode\":\"file\",\"format\":\"%s\",\"threads\":%d,\"n\":%ld,"
           "\"caller_ns\":%.1f,\"calls_s\":%.6f,\"total_s\":%.6f,\"queued\":%" PRIu64
           ",\"dropped\":%" PRIu64 ",\"write_errors\":%" PRIu64 "}\n",
           format, threads, n, caller, (double)(calls_end - t0) / 1e9, (double)(t1 - t0) / 1e9,
           st.messages[HK_LOG_INFO], st.dropped, st.write_errors);
    hk_host_free(host);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "filtered") == 0) {
        run_filtered(argc > 2 ? atol(argv[2]) : 100000000L);
    } else if (argc >= 6 && strcmp(argv[1], "file") == 0) {
        run_file(argv[2], atoi(argv[3]), atol(argv[4]), argv[5], argc > 6 ? argv[6] : "2500");
    } else {
        fprintf(stderr, "usage: hk_logging filtered [N]\n"
                        "       hk_logging file simple|json THREADS N PATH [MAX_QUEUE]\n");
        return 2;
    }
    return 0;
}
