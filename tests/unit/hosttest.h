/*
 * Helpers for the host unit tests: an event recorder, configurable test
 * services (start/stop/execute behaviours), and a builder preset that
 * captures logs and does not own process signals.
 */
#ifndef HK_HOSTTEST_H
#define HK_HOSTTEST_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- event recorder ------------------------------------------------------ */
typedef struct recorder {
    pthread_mutex_t mu;
    char ev[512][64];
    int n;
} recorder_t;

static recorder_t R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static inline void rec_reset(void) {
    pthread_mutex_lock(&R.mu);
    R.n = 0;
    pthread_mutex_unlock(&R.mu);
}

static inline void rec_add(const char *what, const char *name) {
    pthread_mutex_lock(&R.mu);
    if (R.n < 512)
        snprintf(R.ev[R.n++], sizeof R.ev[0], "%s:%s", what, name);
    pthread_mutex_unlock(&R.mu);
}

/* Index of event "what:name", or -1. */
static inline int rec_at(const char *what, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "%s:%s", what, name);
    pthread_mutex_lock(&R.mu);
    int idx = -1;
    for (int i = 0; i < R.n; i++)
        if (!strcmp(R.ev[i], key)) {
            idx = i;
            break;
        }
    pthread_mutex_unlock(&R.mu);
    return idx;
}

static inline int rec_count(void) {
    pthread_mutex_lock(&R.mu);
    int n = R.n;
    pthread_mutex_unlock(&R.mu);
    return n;
}

static inline void rec_dump(void) {
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.n; i++)
        fprintf(stderr, "  ev[%d] %s\n", i, R.ev[i]);
    pthread_mutex_unlock(&R.mu);
}

#define assert_before(a_what, a_name, b_what, b_name)                                              \
    do {                                                                                           \
        int ia_ = rec_at(a_what, a_name), ib_ = rec_at(b_what, b_name);                            \
        if (ia_ < 0 || ib_ < 0 || ia_ >= ib_) {                                                    \
            rec_dump();                                                                            \
            fail_msg("expected %s:%s (%d) before %s:%s (%d)", a_what, a_name, ia_, b_what, b_name, \
                     ib_);                                                                         \
        }                                                                                          \
    } while (0)

/* ---- test services ------------------------------------------------------- */
enum exec_mode {
    EXEC_WAIT_TOKEN = 0, /* wait for the stopping token, return exec_rc */
    EXEC_RETURN_NOW,     /* return exec_rc at once */
    EXEC_IGNORE_CANCEL,  /* wait for `release` (test-controlled), return exec_rc */
};

typedef struct tsvc {
    char name[32];
    int start_rc, stop_rc, exec_rc;
    enum exec_mode exec_mode;
    bool start_waits_token; /* start blocks until its token is cancelled, returns -ECANCELED */
    bool start_waits_token_then_ok; /* ... then returns 0 (started, late) */
    bool stop_waits_token;  /* stop blocks until its token is cancelled */
    bool stop_host_in_start;
    hk_token_t *release;      /* for EXEC_IGNORE_CANCEL (owned by the test) */
    pthread_t start_thread, stop_thread, exec_thread;
    atomic_bool in_start, in_stop;
    struct tsvc *peer;        /* rendezvous partner for concurrency tests */
    bool rendezvous_start, rendezvous_stop;
} tsvc_t;

static inline bool peer_in_start(void *arg) { return atomic_load(&((tsvc_t *)arg)->in_start); }
static inline bool peer_in_stop(void *arg) { return atomic_load(&((tsvc_t *)arg)->in_stop); }

static inline int t_start(hk_service_t *svc, hk_token_t *token) {
    tsvc_t *t = hk_service_data(svc);
    t->start_thread = pthread_self();
    atomic_store(&t->in_start, true);
    rec_add("start", t->name);
    if (t->stop_host_in_start)
        hk_host_stop(hk_service_host(svc));
    if (t->rendezvous_start && !wait_until(peer_in_start, t->peer, 5000))
        return hk_service_fail(svc, -ETIMEDOUT, "peer %s never started concurrently", t->peer->name);
    if (t->start_waits_token)
        return hk_token_wait(token);
    if (t->start_waits_token_then_ok) {
        hk_token_wait(token);
        return 0;
    }
    if (t->start_rc < 0)
        return hk_service_fail(svc, t->start_rc, "%s refuses to start", t->name);
    return 0;
}

static inline int t_stop(hk_service_t *svc, hk_token_t *token) {
    tsvc_t *t = hk_service_data(svc);
    t->stop_thread = pthread_self();
    atomic_store(&t->in_stop, true);
    rec_add("stop", t->name);
    if (t->rendezvous_stop && !wait_until(peer_in_stop, t->peer, 5000))
        return hk_service_fail(svc, -ETIMEDOUT, "peer %s never stopped concurrently", t->peer->name);
    if (t->stop_waits_token)
        hk_token_wait(token);
    return t->stop_rc;
}

static inline int t_exec(hk_service_t *svc, hk_token_t *stopping) {
    tsvc_t *t = hk_service_data(svc);
    t->exec_thread = pthread_self();
    rec_add("exec", t->name);
    switch (t->exec_mode) {
    case EXEC_WAIT_TOKEN: hk_token_wait(stopping); break;
    case EXEC_RETURN_NOW: break;
    case EXEC_IGNORE_CANCEL: hk_token_wait(t->release); break;
    }
    rec_add("exec-end", t->name);
    if (t->exec_rc < 0)
        return hk_service_fail(svc, t->exec_rc, "%s gave up", t->name);
    return t->exec_rc;
}

static inline void t_destroy(void *data) {
    tsvc_t *t = data;
    rec_add("destroy", t->name);
}

static inline tsvc_t *tsvc(tsvc_t *t, const char *name) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static inline int add_hosted(hk_builder_t *b, tsvc_t *t) {
    return hk_builder_add_hosted(b, t->name, t_start, t_stop, t, t_destroy);
}
static inline int add_background(hk_builder_t *b, tsvc_t *t) {
    return hk_builder_add_background(b, t->name, t_exec, t, t_destroy);
}

/* ---- the log capture and per-test set-up most host tests share ------------ */

/* Every log line of the test's host (test_builder installs it as the sink). */
static capture_t *cap __attribute__((unused));

static inline int host_setup(void **state) {
    (void)state;
    rec_reset();
    cap = capture_new();
    return 0;
}

static inline int host_teardown(void **state) {
    (void)state;
    capture_free(cap);
    cap = NULL;
    return 0;
}

#define assert_logged(text)                                                                        \
    do {                                                                                           \
        if (capture_find(cap, (text), 0) < 0) {                                                    \
            capture_dump(cap);                                                                     \
            fail_msg("log line not found: %s", (text));                                            \
        }                                                                                          \
    } while (0)
#define assert_not_logged(text)                                                                    \
    do {                                                                                           \
        if (capture_find(cap, (text), 0) >= 0) {                                                   \
            capture_dump(cap);                                                                     \
            fail_msg("unexpected log line: %s", (text));                                           \
        }                                                                                          \
    } while (0)

/* ---- builder preset ------------------------------------------------------ */

/* A builder with no command line, logs captured, signals left alone. */
static inline hk_builder_t *test_builder(capture_t *sink) {
    hk_builder_t *b = hk_builder_new(0, NULL);
    assert_non_null(b);
    hk_log_set_sink(hk_builder_log(b), capture_sink, sink);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:HandleSignals", "false");
    hk_config_set(c, "Logging:LogLevel:Default", "Debug");
    return b;
}

static inline void stop_host_cb(hk_token_t *token, void *data) {
    (void)token;
    hk_host_stop(data);
}

/* Builds, arranges for a stop as soon as the host has started, runs, frees. */
static inline int run_until_started(hk_builder_t *b) {
    hk_host_t *h = NULL;
    int rc = hk_builder_build(b, &h);
    if (rc < 0) {
        int code = hk_builder_exit_code(b);
        hk_builder_free(b);
        return code;
    }
    hk_builder_free(b);
    hk_token_reg_t reg = {0};
    hk_token_register(hk_host_started(h), &reg, stop_host_cb, h);
    int code = hk_host_run(h);
    hk_host_free(h);
    return code;
}

#endif
