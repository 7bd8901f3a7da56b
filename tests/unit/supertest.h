/*
 * Helpers for the supervision and dependency tests: a host running on a
 * thread of its own (so the test thread can watch its states), a flaky
 * background service, injectable clock and random source, and state
 * polling with a deadline.
 */
#ifndef HK_SUPERTEST_H
#define HK_SUPERTEST_H

#include "core/host_int.h"
#include "hosttest.h"

/* ---- a host on its own thread -------------------------------------------- */
typedef struct bg_run {
    hk_host_t *h;
    pthread_t thread;
    int code;
    atomic_bool done;
} bg_run_t;

static void *bg_run_main(void *arg) {
    bg_run_t *r = arg;
    r->code = hk_host_run(r->h);
    atomic_store(&r->done, true);
    return NULL;
}

/* Builds b (freeing it) and runs the host on a thread. Fails the test if the build fails. */
static inline void bg_start(bg_run_t *r, hk_builder_t *b) {
    memset(r, 0, sizeof *r);
    int rc = hk_builder_build(b, &r->h);
    if (rc < 0)
        capture_dump(cap);
    assert_int_equal(rc, 0);
    hk_builder_free(b);
    assert_int_equal(pthread_create(&r->thread, NULL, bg_run_main, r), 0);
}

static bool bg_done(void *arg) { return atomic_load(&((bg_run_t *)arg)->done); }

/* Waits for run to return (deadline 20 s), frees the host, returns the exit code. */
static inline int bg_join(bg_run_t *r) {
    assert_true(wait_until(bg_done, r, 20000));
    pthread_join(r->thread, NULL);
    hk_host_free(r->h);
    return r->code;
}

static inline int bg_stop_join(bg_run_t *r) {
    hk_host_stop(r->h);
    return bg_join(r);
}

/* ---- status polling ---------------------------------------------------------- */
static inline hk_service_status_t status_of(hk_host_t *h, const char *name) {
    hk_service_status_t all[16];
    size_t n = hk_host_service_status(h, all, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (!strcmp(all[i].name, name))
            return all[i];
    fail_msg("no service %s", name);
    return all[0];
}

typedef struct state_wait {
    hk_host_t *h;
    const char *name;
    hk_service_state_t state;
    unsigned min_restarts;
} state_wait_t;

static bool state_reached(void *arg) {
    state_wait_t *w = arg;
    hk_service_status_t s = status_of(w->h, w->name);
    return s.state == w->state && s.restarts >= w->min_restarts;
}

#define wait_state(h_, name_, state_, restarts_)                                                   \
    do {                                                                                           \
        state_wait_t w_ = {(h_), (name_), (state_), (restarts_)};                                 \
        if (!wait_until(state_reached, &w_, 10000)) {                                              \
            capture_dump(cap);                                                                     \
            hk_service_status_t s_ = status_of((h_), (name_));                                    \
            fail_msg("%s: state %s restarts %u, expected %s with >= %u restarts", (name_),         \
                     hk_service_state_name(s_.state), s_.restarts,                                 \
                     hk_service_state_name(state_), (unsigned)(restarts_));                        \
        }                                                                                          \
    } while (0)

/* ---- injectable clock and random source ----------------------------------------- */
static _Atomic uint64_t fake_now = 1000000000u;
static _Atomic uint64_t fake_rand;
static uint64_t hook_now(void *data) {
    (void)data;
    return atomic_load(&fake_now);
}
static uint64_t hook_rand(void *data) {
    (void)data;
    return atomic_load(&fake_rand);
}
/* Fixed clock (advanced only by the test) and a fixed random value. */
static inline void hooks_install(uint64_t rnd) {
    atomic_store(&fake_now, 1000000000u);
    atomic_store(&fake_rand, rnd);
    hk__sup_hooks_t hooks = {hook_now, hook_rand, NULL};
    hk__sup_set_hooks(&hooks);
}
static inline void hooks_remove(void) { hk__sup_set_hooks(NULL); }

/* ---- nth event in the recorder ------------------------------------------------------- */
static inline int rec_nth(const char *what, const char *name, int nth) {
    char key[64];
    snprintf(key, sizeof key, "%s:%s", what, name);
    pthread_mutex_lock(&R.mu);
    int idx = -1, seen = 0;
    for (int i = 0; i < R.n; i++)
        if (!strcmp(R.ev[i], key) && ++seen == nth) {
            idx = i;
            break;
        }
    pthread_mutex_unlock(&R.mu);
    return idx;
}

static inline int rec_times(const char *what, const char *name) {
    int n = 0;
    while (rec_nth(what, name, n + 1) >= 0)
        n++;
    return n;
}

#endif
