/*
 * Configuration benchmark: how long loading a large appsettings-like JSON
 * file takes, and what a key lookup costs once it is loaded. Not a test: it
 * prints numbers and fails only if the library misbehaves.
 *
 * Depends on the public API (hostkit/config.h) and libc only. Run it from a
 * Release build: `make bench-config` (bench/README.md).
 *
 * What it does:
 *  1. writes a ~1 MB JSON file (nested sections, arrays of scalars and of
 *     objects, strings, integers, reals, booleans, nulls; ~25k keys) into a
 *     fresh directory under $TMPDIR (default /tmp), from a fixed seed, so
 *     every run reads the same document;
 *  2. load: hk_config_add_json_file on a fresh store, LOAD_RUNS times;
 *     median and minimum (store creation and freeing are not timed);
 *  3. hit: hk_config_get of NKEYS existing keys spelled in random case,
 *     LOOKUPS lookups per trial, TRIALS trials, median trial reported;
 *  4. miss: the same for NKEYS keys that are not set;
 *  5. get_int: hk_config_get_int of one existing integer key (lookup and
 *     parse), LOOKUPS calls per trial;
 * then prints a Markdown table and removes the file and the directory.
 * Times come from clock_gettime(CLOCK_MONOTONIC).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostkit/config.h"

enum {
    SERVICES = 1100, /* sections under "Services": most of the keys */
    LOAD_RUNS = 20,
    NKEYS = 1000,
    TRIALS = 3,
};
#define LOOKUPS 10000000L /* per trial: NKEYS keys, LOOKUPS / NKEYS rounds */

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "bench_config: " __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a fixed seed gives the same document and keys on every run. */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}
static unsigned rng_below(unsigned n) { return (unsigned)(rng() % n); }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_u64);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A copy of s with every ASCII letter's case flipped at random. */
static char *random_case(const char *s) {
    size_t n = strlen(s);
    char *r = malloc(n + 1);
    if (!r)
        DIE("out of memory");
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) && (rng() & 1))
            c ^= 0x20;
        r[i] = c;
    }
    return r;
}

/* ---- the document ------------------------------------------------------------- */

static const char *const levels[] = {"Trace", "Debug", "Information", "Warning", "Error"};
static const char *const tags[] = {"alpha", "beta", "gamma", "delta", "edge", "internal", "eu-west"};

static void write_service(FILE *f, unsigned i, int last) {
    fprintf(f, "    \"Service%04u\": {\n", i);
    fprintf(f, "      \"Enabled\": %s,\n", rng_below(4) ? "true" : "false");
    fprintf(f, "      \"Name\": \"service-%04u\",\n", i);
    fprintf(f, "      \"Port\": %u,\n", 8000 + i);
    fprintf(f, "      \"Timeout\": \"%us\",\n", 5 + rng_below(55));
    fprintf(f, "      \"Weight\": %.2f,\n", (double)rng_below(1000) / 100.0);
    fprintf(f, "      \"MaxBodySize\": \"%uMiB\",\n", 1 + rng_below(64));
    fprintf(f, "      \"Description\": %s,\n",
            rng_below(3) ? "\"Handles requests for the \\\"orders\\\" domain: validates, prices "
                           "and routes them to the fulfilment queue of the nearest region\""
                         : "null");
    fprintf(f, "      \"Owner\": {\"Team\": \"team-%02u\", \"Email\": \"team-%02u@example.com\"},\n",
            i % 40, i % 40);
    unsigned ntags = 1 + rng_below(5);
    fprintf(f, "      \"Tags\": [");
    for (unsigned t = 0; t < ntags; t++)
        fprintf(f, "%s\"%s\"", t ? ", " : "", tags[rng_below(sizeof tags / sizeof tags[0])]);
    fprintf(f, "],\n");
    unsigned neps = 1 + rng_below(3);
    fprintf(f, "      \"Endpoints\": [\n");
    for (unsigned e = 0; e < neps; e++)
        fprintf(f,
                "        {\n          \"Url\": \"https://svc-%04u-%u.internal.example:%u/api/v%u\",\n"
                "          \"Retries\": %u,\n          \"Primary\": %s\n        }%s\n",
                i, e, 8443 + e, 1 + rng_below(3), rng_below(6), e ? "false" : "true",
                e + 1 < neps ? "," : "");
    fprintf(f, "      ],\n");
    fprintf(f, "      \"Limits\": {\"Requests\": %u, \"Burst\": %u, \"Window\": \"1m\"},\n",
            100 * (1 + rng_below(100)), 10 * (1 + rng_below(10)));
    fprintf(f,
            "      \"Retry\": {\"Count\": %u, \"Backoff\": {\"Initial\": \"%ums\", \"Max\": "
            "\"10s\", \"Multiplier\": %.1f}}\n",
            rng_below(6), 50 * (1 + rng_below(10)), 1.0 + (double)rng_below(20) / 10.0);
    fprintf(f, "    }%s\n", last ? "" : ",");
}

static void write_document(FILE *f) {
    fprintf(f, "{\n  \"Logging\": {\n    \"LogLevel\": {\n      \"Default\": \"Information\"");
    for (unsigned i = 0; i < 200; i++)
        fprintf(f, ",\n      \"App.Category%03u\": \"%s\"", i, levels[rng_below(5)]);
    fprintf(f, "\n    }\n  },\n  \"ConnectionStrings\": {\n");
    for (unsigned i = 0; i < 100; i++)
        fprintf(f,
                "    \"Db%03u\": \"Server=db%03u.internal;Database=app%u;User Id=app;"
                "Pooling=true;Max Pool Size=%u\"%s\n",
                i, i, i, 10 + rng_below(90), i + 1 < 100 ? "," : "");
    fprintf(f, "  },\n  \"Services\": {\n");
    for (unsigned i = 0; i < SERVICES; i++)
        write_service(f, i, i + 1 == SERVICES);
    fprintf(f, "  },\n  \"Features\": {\n");
    for (unsigned i = 0; i < 500; i++)
        fprintf(f, "    \"Flag%03u\": %s%s\n", i, rng_below(2) ? "true" : "false",
                i + 1 < 500 ? "," : "");
    fprintf(f, "  },\n  \"AllowedHosts\": \"*\"\n}\n");
}

/* ---- measurements --------------------------------------------------------------- */

/* ns per hk_config_get over keys[0..NKEYS), median of TRIALS; checks hit/miss. */
static double time_lookups(const hk_config_t *config, char *const *keys, int expect_hit) {
    uint64_t trial[TRIALS];
    for (int t = 0; t < TRIALS; t++) {
        uintptr_t sink = 0;
        long wrong = 0;
        uint64_t t0 = now_ns();
        for (long r = 0; r < LOOKUPS / NKEYS; r++) {
            for (size_t k = 0; k < NKEYS; k++) {
                const char *v = hk_config_get(config, keys[k]);
                wrong += (v != NULL) != expect_hit;
                sink += (uintptr_t)v;
            }
        }
        trial[t] = now_ns() - t0;
        if (wrong)
            DIE("%ld lookups %s", wrong, expect_hit ? "missed an existing key" : "found a missing key");
        __asm__ volatile("" : : "r"(sink) : "memory");
    }
    return (double)median(trial, TRIALS) / (double)LOOKUPS;
}

static double time_get_int(hk_config_t *config, const char *key, int64_t expect) {
    uint64_t trial[TRIALS];
    for (int t = 0; t < TRIALS; t++) {
        int64_t sum = 0;
        uint64_t t0 = now_ns();
        for (long i = 0; i < LOOKUPS; i++) {
            int64_t v = 0;
            if (hk_config_get_int(config, key, -1, 0, 65535, &v) < 0)
                DIE("hk_config_get_int(%s): %s", key, hk_config_last_error(config));
            sum += v;
        }
        trial[t] = now_ns() - t0;
        if (sum != expect * LOOKUPS)
            DIE("hk_config_get_int(%s) returned the wrong value", key);
    }
    return (double)median(trial, TRIALS) / (double)LOOKUPS;
}

int main(void) {
    /* 1. the document */
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/hk-bench-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        DIE("mkdtemp %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/appsettings.json", dir);
    FILE *f = fopen(path, "we");
    if (!f)
        DIE("fopen %s: %s", path, strerror(errno));
    write_document(f);
    if (fclose(f) != 0)
        DIE("writing %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) < 0)
        DIE("stat %s: %s", path, strerror(errno));

    /* 2. load */
    uint64_t load[LOAD_RUNS];
    size_t nkeys = 0;
    for (int i = 0; i < LOAD_RUNS; i++) {
        hk_config_t *c = NULL;
        if (hk_config_new(&c) < 0)
            DIE("hk_config_new failed");
        uint64_t t0 = now_ns();
        int rc = hk_config_add_json_file(c, path, false, false);
        load[i] = now_ns() - t0;
        if (rc < 0 || hk_config_error_count(c))
            DIE("hk_config_add_json_file(%s): %s", path,
                hk_config_last_error(c) ? hk_config_last_error(c) : hk_strerror(rc));
        nkeys = hk_config_count(c);
        hk_config_free(c);
    }
    uint64_t load_min = load[0];
    for (int i = 1; i < LOAD_RUNS; i++)
        load_min = load[i] < load_min ? load[i] : load_min;
    uint64_t load_med = median(load, LOAD_RUNS);

    /* 3-5. lookups on one loaded store */
    hk_config_t *config = NULL;
    if (hk_config_new(&config) < 0 || hk_config_add_json_file(config, path, false, false) < 0)
        DIE("loading %s failed", path);
    if (nkeys < NKEYS)
        DIE("only %zu keys", nkeys);
    /* NKEYS distinct keys, chosen by a partial Fisher-Yates shuffle. */
    size_t *order = malloc(nkeys * sizeof *order);
    if (!order)
        DIE("out of memory");
    for (size_t i = 0; i < nkeys; i++)
        order[i] = i;
    char *hits[NKEYS], *misses[NKEYS];
    for (size_t k = 0; k < NKEYS; k++) {
        size_t j = k + rng_below((unsigned)(nkeys - k));
        size_t pick = order[j];
        order[j] = order[k];
        order[k] = pick;
        const char *key = hk_config_key_at(config, pick);
        hits[k] = random_case(key);
        size_t n = strlen(key);
        char *m = malloc(n + sizeof ":Missing");
        if (!m)
            DIE("out of memory");
        memcpy(m, key, n);
        memcpy(m + n, ":Missing", sizeof ":Missing");
        misses[k] = random_case(m);
        free(m);
    }
    free(order);
    double hit_ns = time_lookups(config, hits, 1);
    double miss_ns = time_lookups(config, misses, 0);
    char *int_key = random_case("Services:Service0042:Port");
    double int_ns = time_get_int(config, int_key, 8042);

    printf("bench_config: %s, %.2f MB, %zu keys (%d services); "
           "%d loads, %d trials of %ld lookups over %d keys\n\n",
           "appsettings.json", (double)st.st_size / 1e6, nkeys, SERVICES, LOAD_RUNS, TRIALS,
           LOOKUPS, NKEYS);
    printf("| Measurement | Result |\n|---|---|\n");
    printf("| hk_config_add_json_file, median of %d | %.2f ms (%.0f MB/s, %.2f M keys/s) |\n",
           LOAD_RUNS, (double)load_med / 1e6, (double)st.st_size / ((double)load_med / 1e9) / 1e6,
           (double)nkeys / ((double)load_med / 1e9) / 1e6);
    printf("| load, minimum of %d | %.2f ms |\n", LOAD_RUNS, (double)load_min / 1e6);
    printf("| hk_config_get, hit (random case) | %.1f ns/lookup (%.1f M lookups/s) |\n", hit_ns,
           1e3 / hit_ns);
    printf("| hk_config_get, miss | %.1f ns/lookup (%.1f M lookups/s) |\n", miss_ns, 1e3 / miss_ns);
    printf("| hk_config_get_int, hot key | %.1f ns/call (%.1f M calls/s) |\n", int_ns, 1e3 / int_ns);

    for (size_t k = 0; k < NKEYS; k++) {
        free(hits[k]);
        free(misses[k]);
    }
    free(int_key);
    hk_config_free(config);
    if (unlink(path) < 0 || rmdir(dir) < 0)
        DIE("removing %s: %s", dir, strerror(errno));
    return 0;
}
