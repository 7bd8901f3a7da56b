/*
 * A fake systemd service manager for the unit tests: a datagram socket
 * bound to a path or to an abstract name, drained by a thread that records
 * every datagram; NOTIFY_SOCKET points at it. Shared by
 * test_systemd_notify.c and test_health_host.c.
 *
 * Ordering without sleeps: datagrams from one socket arrive in order, so
 * fake_sync() sends a marker and waits for the recorder to see it; every
 * datagram the host sent before the marker has been recorded by then.
 * The test sets `tmpdir` (short: <tmpdir>/notify.sock must fit in sun_path).
 * The last section is the host side both tests share: build, the scenario
 * run (scenario.h) that reports the datagrams on failure, and waits on
 * datagrams and log lines.
 */
#ifndef HK_FAKESD_H
#define HK_FAKESD_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ftw.h>
#include <sys/stat.h>

#include "scenario.h"
#include "testutil.h"

#ifndef FAKESD_DEADLINE_MS
#define FAKESD_DEADLINE_MS 10000
#endif

/* ======================================================================== */
/* the fake service manager                                                 */
/* ======================================================================== */

#define SYNC_PREFIX "HK_TEST_SYNC="

typedef struct dgram {
    char *text;
    uint64_t at_ns; /* CLOCK_MONOTONIC when the recorder read it */
} dgram_t;

typedef struct fake {
    bool open;
    int fd;
    char env[108];     /* the NOTIFY_SOCKET value: a path or "@name" */
    char fs_path[108]; /* the socket file to unlink, or "" (abstract) */
    struct sockaddr_un addr;
    socklen_t addr_len;
    pthread_t thread;
    atomic_bool quit;
    pthread_mutex_t mu;
    dgram_t *msgs;
    size_t n, cap;
    unsigned syncs_sent;
    atomic_uint syncs_seen;
} fake_t;

static fake_t F = {.fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};
static unsigned abstract_seq;
static char tmpdir[80]; /* short: <tmpdir>/notify.sock must fit in sun_path */

static inline void *fake_main(void *arg) {
    fake_t *f = arg;
    char buf[8192];
    for (;;) {
        struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
        int n = poll(&pfd, 1, 10);
        if (n <= 0) {
            if (atomic_load(&f->quit))
                return NULL;
            continue;
        }
        ssize_t got = recv(f->fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (got < 0)
            continue;
        buf[got] = '\0';
        uint64_t at = mono_ns();
        if (!strncmp(buf, SYNC_PREFIX, strlen(SYNC_PREFIX))) {
            atomic_store(&f->syncs_seen, (unsigned)strtoul(buf + strlen(SYNC_PREFIX), NULL, 10));
            continue;
        }
        pthread_mutex_lock(&f->mu);
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->msgs = realloc(f->msgs, f->cap * sizeof *f->msgs);
        }
        f->msgs[f->n++] = (dgram_t){strdup(buf), at};
        pthread_mutex_unlock(&f->mu);
    }
}

/* Binds the fake (to <tmpdir>/notify.sock, or to "@hk-test-<pid>-<n>") and
 * points NOTIFY_SOCKET at it. */
static inline void fake_open(bool abstract) {
    fake_t *f = &F;
    memset(&f->addr, 0, sizeof f->addr);
    f->addr.sun_family = AF_UNIX;
    if (abstract) {
        snprintf(f->env, sizeof f->env, "@hk-test-%ld-%u", (long)getpid(), ++abstract_seq);
        f->fs_path[0] = '\0';
        memcpy(f->addr.sun_path + 1, f->env + 1, strlen(f->env) - 1); /* sun_path[0] = '\0' */
        f->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(f->env));
    } else {
        int n = snprintf(f->fs_path, sizeof f->fs_path, "%s/notify.sock", tmpdir);
        assert_true(n > 0 && (size_t)n < sizeof f->addr.sun_path);
        memcpy(f->env, f->fs_path, sizeof f->env);
        memcpy(f->addr.sun_path, f->fs_path, strlen(f->fs_path));
        f->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(f->fs_path) + 1);
    }
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    assert_int_equal(bind(f->fd, (const struct sockaddr *)&f->addr, f->addr_len), 0);
    f->n = 0;
    f->syncs_sent = 0;
    atomic_store(&f->syncs_seen, 0);
    atomic_store(&f->quit, false);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    f->open = true;
    assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
}

static inline void fake_close(void) {
    fake_t *f = &F;
    unsetenv("NOTIFY_SOCKET");
    if (!f->open)
        return;
    atomic_store(&f->quit, true);
    pthread_join(f->thread, NULL);
    close(f->fd);
    f->fd = -1;
    if (f->fs_path[0])
        unlink(f->fs_path);
    for (size_t i = 0; i < f->n; i++)
        free(f->msgs[i].text);
    free(f->msgs);
    f->msgs = NULL;
    f->n = f->cap = 0;
    f->open = false;
}

static inline bool sync_seen(void *arg) { return atomic_load(&F.syncs_seen) >= *(unsigned *)arg; }

/* Returns once every datagram sent before this call has been recorded. */
static inline bool fake_sync(void) {
    char msg[64];
    unsigned k = ++F.syncs_sent;
    snprintf(msg, sizeof msg, SYNC_PREFIX "%u", k);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ssize_t w = sendto(fd, msg, strlen(msg), 0, (const struct sockaddr *)&F.addr, F.addr_len);
    close(fd);
    return w == (ssize_t)strlen(msg) && wait_until(sync_seen, &k, FAKESD_DEADLINE_MS);
}

static inline size_t fake_n(void) {
    pthread_mutex_lock(&F.mu);
    size_t n = F.n;
    pthread_mutex_unlock(&F.mu);
    return n;
}

/* The i-th datagram (copied into buf) and when it arrived; false past the end. */
static inline bool fake_get(size_t i, char *buf, size_t len, uint64_t *ret_at) {
    pthread_mutex_lock(&F.mu);
    bool ok = i < F.n;
    if (ok) {
        snprintf(buf, len, "%s", F.msgs[i].text);
        if (ret_at)
            *ret_at = F.msgs[i].at_ns;
    }
    pthread_mutex_unlock(&F.mu);
    return ok;
}

/* Datagrams equal to text. */
static inline int fake_count(const char *text) {
    pthread_mutex_lock(&F.mu);
    int c = 0;
    for (size_t i = 0; i < F.n; i++)
        c += strcmp(F.msgs[i].text, text) == 0;
    pthread_mutex_unlock(&F.mu);
    return c;
}

/* Index of the first datagram equal to text at or after from, or -1. */
static inline int fake_find(const char *text, size_t from) {
    pthread_mutex_lock(&F.mu);
    int at = -1;
    for (size_t i = from; i < F.n && at < 0; i++)
        if (!strcmp(F.msgs[i].text, text))
            at = (int)i;
    pthread_mutex_unlock(&F.mu);
    return at;
}

/* Datagrams equal to text whose index is in [from, to). */
static inline int fake_count_between(const char *text, size_t from, size_t to) {
    pthread_mutex_lock(&F.mu);
    int c = 0;
    for (size_t i = from; i < to && i < F.n; i++)
        c += strcmp(F.msgs[i].text, text) == 0;
    pthread_mutex_unlock(&F.mu);
    return c;
}

/* Datagrams equal to text that arrived in [from_ns, to_ns]. */
static inline int fake_count_in_window(const char *text, uint64_t from_ns, uint64_t to_ns) {
    pthread_mutex_lock(&F.mu);
    int c = 0;
    for (size_t i = 0; i < F.n; i++)
        c += F.msgs[i].at_ns >= from_ns && F.msgs[i].at_ns <= to_ns && !strcmp(F.msgs[i].text, text);
    pthread_mutex_unlock(&F.mu);
    return c;
}

static inline void fake_dump(void) {
    pthread_mutex_lock(&F.mu);
    fprintf(stderr, "  datagrams received (%zu):\n", F.n);
    for (size_t i = 0; i < F.n; i++) {
        fprintf(stderr, "  [%zu] \"", i);
        for (const char *p = F.msgs[i].text; *p; p++)
            *p == '\n' ? (void)fputs("\\n", stderr) : (void)fputc(*p, stderr);
        fputs("\"\n", stderr);
    }
    pthread_mutex_unlock(&F.mu);
}

/* ======================================================================== */
/* the host side: build, scenario run, waits                                */
/* ======================================================================== */

/* nftw callback removing every entry of `tmpdir` (teardown). */
static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Builds b (dumping the log and failing the test on error) and frees it. */
static inline hk_host_t *build(hk_builder_t *b) {
    hk_host_t *h = NULL;
    if (hk_builder_build(b, &h) < 0) {
        capture_dump(cap);
        fail_msg("build failed: %s", hk_builder_error(b) ? hk_builder_error(b) : "?");
    }
    hk_builder_free(b);
    return h;
}

/* Runs the host until the scenario stops it, frees it, reports the body's
 * failure (with the datagrams and the log). Returns the exit code. */
static inline int scn_run(hk_host_t *h) {
    scn_host = h;
    int code = hk_host_run(h);
    hk_host_free(h);
    scn_host = NULL;
    if (scn_failure()) {
        fake_dump();
        capture_dump(cap);
        fail_msg("%s", scn_failure());
    }
    return code;
}

typedef struct fake_count_wait {
    const char *text;
    int n;
} fake_count_wait_t;

static inline bool fake_count_reached(void *arg) {
    fake_count_wait_t *w = arg;
    return fake_count(w->text) >= w->n;
}
/* Until n datagrams equal to text have arrived (deadline). */
static inline bool wait_datagrams(const char *text, int n) {
    fake_count_wait_t w = {text, n};
    return wait_until(fake_count_reached, &w, FAKESD_DEADLINE_MS);
}

static inline bool fake_logged_n(void *arg) {
    fake_count_wait_t *w = arg;
    return capture_count(cap, w->text) >= w->n;
}
/* Until the log holds n lines containing needle (deadline). */
static inline bool wait_logged(const char *needle, int n) {
    fake_count_wait_t w = {needle, n};
    return wait_until(fake_logged_n, &w, FAKESD_DEADLINE_MS);
}

#endif
