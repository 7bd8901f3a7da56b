/*
 * Shared test helpers (see testutil.h). Depends on libc, pthreads, cmocka
 * and libhostkit.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Tests run the same whether or not the runner is a systemd unit: drop the
 * variables systemd sets before any test runs (tests that need them set
 * their own). */
__attribute__((constructor)) static void hermetic_environment(void) {
    static const char *const vars[] = {"INVOCATION_ID", "NOTIFY_SOCKET", "JOURNAL_STREAM",
                                       "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID",
                                       "LISTEN_FDS", "LISTEN_FDNAMES"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

struct capture {
    pthread_mutex_t mu;
    char **lines;
    size_t n, cap;
};

capture_t *capture_new(void) {
    capture_t *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void capture_free(capture_t *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    free(c->lines);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void capture_sink(const hk_log_record_t *rec, void *data) {
    capture_t *c = data;
    pthread_mutex_lock(&c->mu);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
    }
    c->lines[c->n++] = strndup(rec->line, rec->len);
    pthread_mutex_unlock(&c->mu);
}

int capture_find(capture_t *c, const char *needle, int from) {
    pthread_mutex_lock(&c->mu);
    int found = -1;
    for (size_t i = from < 0 ? 0 : (size_t)from; i < c->n; i++) {
        if (strstr(c->lines[i], needle)) {
            found = (int)i;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

int capture_count(capture_t *c, const char *needle) {
    pthread_mutex_lock(&c->mu);
    int n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (strstr(c->lines[i], needle))
            n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t capture_lines(capture_t *c) {
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void capture_dump(capture_t *c) {
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++)
        fprintf(stderr, "  [%zu] %s", i, c->lines[i]);
    pthread_mutex_unlock(&c->mu);
}

bool wait_until(bool (*cond)(void *), void *arg, int timeout_ms) {
    struct timespec start, now, tick = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond(arg))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > timeout_ms)
            return cond(arg);
        nanosleep(&tick, NULL);
    }
}

/* ---- scenario checks -------------------------------------------------------- */

static pthread_mutex_t scn_mu = PTHREAD_MUTEX_INITIALIZER;
static char scn_buf[2048];

void scn_fail(int line, const char *fmt, ...) {
    pthread_mutex_lock(&scn_mu);
    if (!scn_buf[0]) { /* the first failure is the one to report */
        int n = snprintf(scn_buf, sizeof scn_buf, "line %d: ", line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(scn_buf + n, sizeof scn_buf - (size_t)n, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&scn_mu);
}

const char *scn_failure(void) {
    pthread_mutex_lock(&scn_mu);
    const char *f = scn_buf[0] ? scn_buf : NULL;
    pthread_mutex_unlock(&scn_mu);
    return f;
}

void scn_reset(void) {
    pthread_mutex_lock(&scn_mu);
    scn_buf[0] = '\0';
    pthread_mutex_unlock(&scn_mu);
}

/* ---- time and threads ------------------------------------------------------ */

uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int current_tid(void) { return (int)syscall(SYS_gettid); }

bool tid_is_blocked(int tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

/* ---- failing allocator ---------------------------------------------------- */

static atomic_long fa_count;
static atomic_long fa_live;
static atomic_long fa_at;
static atomic_bool fa_persistent;

static bool fa_fail(void) {
    long n = atomic_fetch_add(&fa_count, 1) + 1;
    long at = atomic_load(&fa_at);
    if (at <= 0)
        return false;
    return atomic_load(&fa_persistent) ? n >= at : n == at;
}
static void *counted(void *p) {
    if (p)
        atomic_fetch_add(&fa_live, 1);
    return p;
}
static void *fa_malloc(size_t s) { return fa_fail() ? NULL : counted(malloc(s)); }
static void *fa_calloc(size_t n, size_t s) { return fa_fail() ? NULL : counted(calloc(n, s)); }
static void *fa_realloc(void *p, size_t s) {
    if (fa_fail())
        return NULL;
    return p ? realloc(p, s) : counted(realloc(p, s));
}
static void fa_free(void *p) {
    if (p)
        atomic_fetch_sub(&fa_live, 1);
    free(p);
}
long alloc_live(void) { return atomic_load(&fa_live); }

void failalloc_install(void) {
    atomic_store(&fa_count, 0);
    atomic_store(&fa_at, 0);
    hk_replace_allocator(fa_malloc, fa_realloc, fa_calloc, fa_free);
}
void failalloc_set(long fail_at, bool persistent) {
    atomic_store(&fa_count, 0);
    atomic_store(&fa_persistent, persistent);
    atomic_store(&fa_at, fail_at);
}
long failalloc_count(void) { return atomic_load(&fa_count); }
void failalloc_uninstall(void) { hk_replace_allocator(malloc, realloc, calloc, free); }
