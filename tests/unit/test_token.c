/*
 * Unit tests for cancellation tokens (include/hostkit/token.h, src/core/token.c):
 * argument checks, cancel and is_cancelled, waking sleep/wait/fd waiters,
 * the callback registration rules, linked tokens, cancel_after and the
 * out-of-memory paths. The multi-threaded race loops are in test_token_races.c.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <hostkit/token.h>

#define MS 1000000ull        /* nanoseconds per millisecond */
#define LONG_MS 10000u       /* a wait that must be cut short by a cancel */
#define BOUND_NS (5000 * MS) /* "returned well before LONG_MS", generous for valgrind */
#define SENTINEL ((hk_token_t *)(uintptr_t)0x5e17)

/* ---- helpers --------------------------------------------------------------- */

static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool thread_count_is(void *arg) { return thread_count() == *(int *)arg; }

/* The tid of a thread of this process that is not in before[0..n), or 0. */
static int tid_not_in(const int *before, int n) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        int tid = atoi(e->d_name);
        found = tid;
        for (int i = 0; tid && i < n; i++)
            if (before[i] == tid)
                found = 0;
    }
    closedir(d);
    return found;
}

static int list_tids(int *out, int max) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; n < max && (e = readdir(d));)
        if (atoi(e->d_name) > 0)
            out[n++] = atoi(e->d_name);
    closedir(d);
    return n;
}

static bool tid_blocked_cond(void *arg) { return tid_is_blocked(*(int *)arg); }

static void *noop_main(void *arg) { return arg; }

/* Runs a thread first: a sanitizer's lazily started helper thread then exists already.
 * A joined thread can stay listed in /proc/self/task for a moment after pthread_join
 * returns (the kernel reaps it a little later), so poll until the count holds still. */
static int stable_thread_count(void) {
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, noop_main, NULL), 0);
    pthread_join(th, NULL);
    struct timespec tick = {0, 2000000};
    int last = thread_count(), same = 0;
    for (int i = 0; i < 500 && same < 5; i++) {
        nanosleep(&tick, NULL);
        int c = thread_count();
        same = c == last ? same + 1 : 0;
        last = c;
    }
    return last;
}

/* 1 if fd is readable now, 0 if not (poll with a 0 timeout). */
static int readable_now(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, 0);
    return rc == 1 && (p.revents & POLLIN) ? 1 : rc;
}

/* Callbacks that write down who ran, in which order, on which thread. */
#define MAX_ENTRIES 16
typedef struct {
    atomic_int n;
    int order[MAX_ENTRIES];
    pthread_t thread[MAX_ENTRIES];
} journal_t;

typedef struct {
    hk_token_reg_t reg;
    journal_t *journal;
    int id;
    atomic_int runs;
    hk_token_t *token_seen;
} entry_t;

static void journal_cb(hk_token_t *token, void *data) {
    entry_t *e = data;
    int i = atomic_fetch_add(&e->journal->n, 1);
    if (i < MAX_ENTRIES) {
        e->journal->order[i] = e->id;
        e->journal->thread[i] = pthread_self();
    }
    e->token_seen = token;
    atomic_fetch_add(&e->runs, 1);
}

static void entries_init(entry_t *e, int n, journal_t *j) {
    memset(j, 0, sizeof *j);
    memset(e, 0, (size_t)n * sizeof *e);
    for (int i = 0; i < n; i++) {
        e[i].journal = j;
        e[i].id = i;
    }
}

/* A callback that stamps when and where it ran. */
typedef struct {
    hk_token_reg_t reg;
    atomic_int runs;
    atomic_bool ran;
    uint64_t at_ns;
    pthread_t thread;
} stamp_t;

static void stamp_cb(hk_token_t *token, void *data) {
    (void)token;
    stamp_t *s = data;
    s->at_ns = mono_ns();
    s->thread = pthread_self();
    atomic_fetch_add(&s->runs, 1);
    atomic_store(&s->ran, true);
}

static bool stamp_ran(void *arg) { return atomic_load(&((stamp_t *)arg)->ran); }

/* A thread blocked in hk_token_sleep, hk_token_wait or poll on hk_token_fd. */
enum { DO_SLEEP, DO_WAIT, DO_POLL };
typedef struct {
    hk_token_t *token;
    int mode;
    uint64_t ms;
    atomic_int tid;
    atomic_bool done;
    int rc;
    uint64_t elapsed_ns;
} waiter_t;

static void *waiter_main(void *arg) {
    waiter_t *w = arg;
    int fd = w->mode == DO_POLL ? hk_token_fd(w->token) : -1;
    atomic_store(&w->tid, current_tid());
    uint64_t t0 = mono_ns();
    int rc;
    if (w->mode == DO_SLEEP) {
        rc = hk_token_sleep(w->token, w->ms);
    } else if (w->mode == DO_WAIT) {
        rc = hk_token_wait(w->token);
    } else {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        rc = poll(&p, 1, (int)w->ms);
        if (rc == 1 && !(p.revents & POLLIN))
            rc = -EIO;
    }
    w->elapsed_ns = mono_ns() - t0;
    w->rc = rc;
    atomic_store(&w->done, true);
    return NULL;
}

static bool waiter_done(void *arg) { return atomic_load(&((waiter_t *)arg)->done); }

static bool waiter_blocked_or_done(void *arg) {
    waiter_t *w = arg;
    int tid = atomic_load(&w->tid);
    return atomic_load(&w->done) || (tid && tid_is_blocked(tid));
}

/* Starts a waiter, waits until it is blocked, cancels from this thread, expects it back early with
 * expect_rc. */
static void expect_waiter_woken_by_cancel(int mode, uint64_t ms, int expect_rc) {
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    waiter_t w = {.token = t, .mode = mode, .ms = ms};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    assert_true(wait_until(waiter_blocked_or_done, &w, 5000));
    assert_false(atomic_load(&w.done)); /* still waiting: it did not return before the cancel */
    assert_true(hk_token_cancel(t));
    assert_true(wait_until(waiter_done, &w, 5000));
    pthread_join(th, NULL);
    assert_int_equal(w.rc, expect_rc);
    assert_true(w.elapsed_ns < BOUND_NS);
    hk_token_free(t);
}

/* ---- new / free / cancel / arguments -------------------------------------- */

static void new_token_is_not_cancelled_until_cancel_which_returns_true_once(void **state) {
    (void)state;
    hk_token_t *t = NULL;
    assert_int_equal(hk_token_new(&t), 0);
    assert_non_null(t);
    assert_false(hk_token_is_cancelled(t));
    assert_true(hk_token_cancel(t));
    assert_true(hk_token_is_cancelled(t));
    assert_false(hk_token_cancel(t));
    assert_false(hk_token_cancel(t));
    assert_true(hk_token_is_cancelled(t));
    hk_token_free(t);
}

static void free_accepts_null_and_an_unused_token(void **state) {
    (void)state;
    hk_token_free(NULL);
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    hk_token_free(t);
}

static void null_arguments_return_einval_and_leave_outputs_untouched(void **state) {
    (void)state;
    hk_token_t *t, *out = SENTINEL;
    assert_int_equal(hk_token_new(&t), 0);
    hk_token_t *parents[2] = {t, NULL};
    hk_token_reg_t reg = {0};
    entry_t e[1];
    journal_t j;
    entries_init(e, 1, &j);

    assert_int_equal(hk_token_new(NULL), -EINVAL);
    assert_int_equal(hk_token_new_linked(NULL, 1, &out), -EINVAL);
    assert_int_equal(hk_token_new_linked(parents, 0, &out), -EINVAL);
    assert_int_equal(hk_token_new_linked(parents, 2, &out), -EINVAL); /* parents[1] is NULL */
    assert_int_equal(hk_token_new_linked(parents, 1, NULL), -EINVAL);
    assert_ptr_equal(out, SENTINEL);
    assert_int_equal(hk_token_register(NULL, &reg, journal_cb, &e[0]), -EINVAL);
    assert_int_equal(hk_token_register(t, NULL, journal_cb, &e[0]), -EINVAL);
    assert_int_equal(hk_token_register(t, &reg, NULL, &e[0]), -EINVAL);
    assert_int_equal(hk_token_sleep(NULL, 1), -EINVAL);
    assert_int_equal(hk_token_wait(NULL), -EINVAL);
    assert_int_equal(hk_token_fd(NULL), -EINVAL);
    assert_int_equal(hk_token_cancel_after(NULL, 1), -EINVAL);
    assert_false(hk_token_cancel(NULL));
    assert_false(hk_token_is_cancelled(NULL));
    assert_int_equal(hk_token_unregister(NULL), 0);

    /* An error return means no callback, even once the token is cancelled. */
    assert_true(hk_token_cancel(t));
    assert_int_equal(hk_token_register(t, &reg, NULL, &e[0]), -EINVAL);
    assert_int_equal(atomic_load(&e[0].runs), 0);
    assert_int_equal(atomic_load(&j.n), 0);
    hk_token_free(t);
}

/* ---- sleep / wait ---------------------------------------------------------- */

static void sleep_returns_0_after_the_full_duration(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_sleep(t, 50), 0);
    assert_true(mono_ns() - t0 >= 50 * MS);
    assert_int_equal(hk_token_sleep(t, 0), 0);
    assert_false(hk_token_is_cancelled(t));
    hk_token_free(t);
}

/* cancel_after() broadcasts the token's condition variable; a sleeper must not take that for its
 * timeout. */
static void sleep_is_not_cut_short_by_unrelated_wake_ups(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0); /* starts the timer thread */
    waiter_t w = {.token = t, .mode = DO_SLEEP, .ms = 300};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
    assert_true(wait_until(waiter_blocked_or_done, &w, 5000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0); /* each one wakes the sleeper */
    assert_true(wait_until(waiter_done, &w, 5000));
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_true(w.elapsed_ns >= 300 * MS);
    assert_false(hk_token_is_cancelled(t));
    hk_token_free(t);
}

static void sleep_returns_ecanceled_at_once_when_already_cancelled(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_true(hk_token_cancel(t));
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_sleep(t, LONG_MS), -ECANCELED);
    assert_int_equal(hk_token_sleep(t, 0), -ECANCELED);
    assert_true(mono_ns() - t0 < BOUND_NS);
    hk_token_free(t);
}

static void sleep_returns_ecanceled_early_when_another_thread_cancels(void **state) {
    (void)state;
    expect_waiter_woken_by_cancel(DO_SLEEP, LONG_MS, -ECANCELED);
}

/* UINT64_MAX ms must not overflow into a deadline in the past (an immediate 0). */
static void sleep_with_a_huge_duration_sleeps_until_cancelled(void **state) {
    (void)state;
    expect_waiter_woken_by_cancel(DO_SLEEP, UINT64_MAX, -ECANCELED);
}

static void wait_blocks_until_another_thread_cancels(void **state) {
    (void)state;
    expect_waiter_woken_by_cancel(DO_WAIT, 0, -ECANCELED);
}

static void wait_returns_ecanceled_at_once_when_already_cancelled(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(hk_token_wait(t), -ECANCELED);
    hk_token_free(t);
}

/* ---- fd ---------------------------------------------------------------------- */

static void fd_becomes_readable_on_cancel_and_stays_readable(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    int fd = hk_token_fd(t);
    assert_true(fd >= 0);
    assert_int_equal(hk_token_fd(t), fd);
    assert_int_equal(readable_now(fd), 0);
    assert_int_equal(readable_now(fd), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(readable_now(fd), 1);
    assert_int_equal(readable_now(fd), 1);
    assert_false(hk_token_cancel(t));
    assert_int_equal(hk_token_fd(t), fd);
    assert_int_equal(readable_now(fd), 1);
    hk_token_free(t);
}

static void fd_created_after_cancel_is_readable_at_once(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_true(hk_token_cancel(t));
    int fd = hk_token_fd(t);
    assert_true(fd >= 0);
    assert_int_equal(readable_now(fd), 1);
    assert_int_equal(readable_now(fd), 1);
    hk_token_free(t);
}

static void fd_is_close_on_exec_and_closed_by_free(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    int fd = hk_token_fd(t);
    assert_true(fd >= 0);
    int flags = fcntl(fd, F_GETFD);
    assert_true(flags >= 0);
    assert_true(flags & FD_CLOEXEC);
    hk_token_free(t);
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* no other thread opens fds in this process */
    assert_int_equal(errno, EBADF);
}

/* With no descriptor left hk_token_fd fails with -EMFILE, the token still works, and a later call
 * succeeds. */
static void fd_returns_emfile_when_descriptors_run_out_and_succeeds_later(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(lowest_free >= 0);
    close(lowest_free);
    struct rlimit low = {.rlim_cur = (rlim_t)lowest_free, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc1 = hk_token_fd(t), rc2 = hk_token_fd(t);
    bool cancelled = hk_token_cancel(t);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0); /* restore before any assertion */
    assert_int_equal(rc1, -EMFILE);
    assert_int_equal(rc2, -EMFILE);
    assert_true(cancelled);
    int fd = hk_token_fd(t);
    assert_true(fd >= 0);
    assert_int_equal(readable_now(fd), 1);
    hk_token_free(t);
}

static void fd_wakes_a_poll_blocked_in_another_thread(void **state) {
    (void)state;
    expect_waiter_woken_by_cancel(DO_POLL, LONG_MS, 1);
}

/* ---- callbacks ----------------------------------------------------------------- */

typedef struct {
    hk_token_t *token;
    bool result;
    pthread_t self;
} canceller_t;

static void *canceller_main(void *arg) {
    canceller_t *c = arg;
    c->self = pthread_self();
    c->result = hk_token_cancel(c->token);
    return NULL;
}

static void
cancel_runs_callbacks_once_in_registration_order_on_the_cancelling_thread(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[5];
    journal_t j;
    entries_init(e, 5, &j);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hk_token_register(t, &e[i].reg, journal_cb, &e[i]), 0);
    assert_int_equal(atomic_load(&j.n), 0);

    canceller_t c = {.token = t};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, canceller_main, &c), 0);
    pthread_join(th, NULL);
    assert_true(c.result);
    assert_int_equal(atomic_load(&j.n), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(j.order[i], i);
        assert_true(pthread_equal(j.thread[i], c.self));
        assert_false(pthread_equal(j.thread[i], pthread_self()));
        assert_int_equal(atomic_load(&e[i].runs), 1);
        assert_ptr_equal(e[i].token_seen, t);
    }
    assert_false(hk_token_cancel(t));
    assert_int_equal(atomic_load(&j.n), 5);
    hk_token_free(t);
}

static void
register_on_a_cancelled_token_runs_the_callback_at_once_on_this_thread_and_returns_1(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_true(hk_token_cancel(t));
    entry_t e[1];
    journal_t j;
    entries_init(e, 1, &j);
    assert_int_equal(hk_token_register(t, &e[0].reg, journal_cb, &e[0]), 1);
    assert_int_equal(atomic_load(&e[0].runs), 1); /* before register returned */
    assert_true(pthread_equal(j.thread[0], pthread_self()));
    assert_ptr_equal(e[0].token_seen, t);
    assert_int_equal(hk_token_unregister(&e[0].reg), 0);
    hk_token_free(t);
    assert_int_equal(atomic_load(&e[0].runs), 1);
}

static void unregister_before_cancel_returns_1_and_the_callback_never_runs(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[5];
    journal_t j;
    entries_init(e, 5, &j);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hk_token_register(t, &e[i].reg, journal_cb, &e[i]), 0);
    /* head, middle and tail of the list */
    assert_int_equal(hk_token_unregister(&e[0].reg), 1);
    assert_int_equal(hk_token_unregister(&e[2].reg), 1);
    assert_int_equal(hk_token_unregister(&e[4].reg), 1);
    assert_true(hk_token_cancel(t));
    assert_int_equal(atomic_load(&j.n), 2);
    assert_int_equal(j.order[0], 1);
    assert_int_equal(j.order[1], 3);
    assert_int_equal(atomic_load(&e[0].runs) + atomic_load(&e[2].runs) + atomic_load(&e[4].runs),
                     0);
    /* a second unregister of a removed registration is harmless */
    assert_int_equal(hk_token_unregister(&e[0].reg), 0);
    assert_int_equal(hk_token_unregister(&e[4].reg), 0);
    assert_int_equal(atomic_load(&j.n), 2);
    hk_token_free(t);
}

static void unregister_after_the_callback_ran_returns_0_every_time(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[1];
    journal_t j;
    entries_init(e, 1, &j);
    assert_int_equal(hk_token_register(t, &e[0].reg, journal_cb, &e[0]), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(hk_token_unregister(&e[0].reg), 0);
    assert_int_equal(hk_token_unregister(&e[0].reg), 0);
    assert_int_equal(atomic_load(&e[0].runs), 1);
    hk_token_free(t);
}

static void unregister_of_a_zero_initialised_registration_returns_0(void **state) {
    (void)state;
    hk_token_reg_t reg;
    memset(&reg, 0, sizeof reg);
    assert_int_equal(hk_token_unregister(&reg), 0);
    assert_int_equal(hk_token_unregister(&reg), 0);
}

static void registering_an_in_use_registration_returns_einval_and_never_calls_back(void **state) {
    (void)state;
    hk_token_t *t1, *t2, *t3;
    assert_int_equal(hk_token_new(&t1), 0);
    assert_int_equal(hk_token_new(&t2), 0);
    assert_int_equal(hk_token_new(&t3), 0);
    assert_true(hk_token_cancel(t3));
    entry_t e[1];
    journal_t j;
    entries_init(e, 1, &j);
    assert_int_equal(hk_token_register(t1, &e[0].reg, journal_cb, &e[0]), 0);
    assert_int_equal(hk_token_register(t1, &e[0].reg, journal_cb, &e[0]), -EINVAL);
    assert_int_equal(hk_token_register(t2, &e[0].reg, journal_cb, &e[0]), -EINVAL);
    assert_int_equal(hk_token_register(t3, &e[0].reg, journal_cb, &e[0]), -EINVAL); /* cancelled */
    assert_int_equal(atomic_load(&e[0].runs), 0);
    assert_true(hk_token_cancel(t2));
    assert_int_equal(atomic_load(&e[0].runs), 0);
    assert_true(hk_token_cancel(t1));
    assert_int_equal(atomic_load(&e[0].runs), 1); /* registered once, ran once */
    hk_token_free(t1);
    hk_token_free(t2);
    hk_token_free(t3);
}

static void a_registration_is_reusable_after_unregister_or_after_it_ran(void **state) {
    (void)state;
    hk_token_t *t1, *t2;
    assert_int_equal(hk_token_new(&t1), 0);
    assert_int_equal(hk_token_new(&t2), 0);
    entry_t e[1];
    journal_t j;
    entries_init(e, 1, &j);
    assert_int_equal(hk_token_register(t1, &e[0].reg, journal_cb, &e[0]), 0);
    assert_int_equal(hk_token_unregister(&e[0].reg), 1);
    assert_int_equal(hk_token_register(t1, &e[0].reg, journal_cb, &e[0]), 0);
    assert_true(hk_token_cancel(t1));
    assert_int_equal(atomic_load(&e[0].runs), 1);
    assert_ptr_equal(e[0].token_seen, t1);
    assert_int_equal(hk_token_register(t2, &e[0].reg, journal_cb, &e[0]), 0);
    assert_true(hk_token_cancel(t2));
    assert_int_equal(atomic_load(&e[0].runs), 2);
    assert_ptr_equal(e[0].token_seen, t2);
    hk_token_free(t1);
    hk_token_free(t2);
}

static void free_drops_pending_callbacks_without_running_them(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[3];
    journal_t j;
    entries_init(e, 3, &j);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hk_token_register(t, &e[i].reg, journal_cb, &e[i]), 0);
    hk_token_free(t);
    assert_int_equal(atomic_load(&j.n), 0);
    /* The registrations no longer point at the freed token (ASan proves it). */
    assert_true(hk_token_unregister(&e[1].reg) >= 0);
    assert_int_equal(hk_token_new(&t), 0);
    assert_int_equal(hk_token_register(t, &e[1].reg, journal_cb, &e[1]), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(atomic_load(&j.n), 1);
    assert_int_equal(j.order[0], 1);
    hk_token_free(t);
}

/* A heap object whose registration is not at offset 0, so a stale reg pointer is a real UAF. */
typedef struct {
    char pad[24];
    hk_token_reg_t reg;
    journal_t *journal;
    int id;
    int *unregister_rv;
} heap_entry_t;

static void unregister_self_and_free_cb(hk_token_t *token, void *data) {
    (void)token;
    heap_entry_t *h = data;
    int i = atomic_fetch_add(&h->journal->n, 1);
    h->journal->order[i] = h->id;
    *h->unregister_rv = hk_token_unregister(&h->reg);
    free(h);
}

static heap_entry_t *heap_entry_new(journal_t *j, int id, int *rv) {
    heap_entry_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->journal = j;
    h->id = id;
    h->unregister_rv = rv;
    return h;
}

static void a_callback_may_unregister_itself_and_free_its_registration(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[4];
    journal_t j;
    entries_init(e, 4, &j);
    int rv_mid = -1, rv_tail = -1;
    heap_entry_t *mid = heap_entry_new(&j, 1, &rv_mid);
    heap_entry_t *tail = heap_entry_new(&j, 3, &rv_tail);
    assert_int_equal(hk_token_register(t, &e[0].reg, journal_cb, &e[0]), 0);
    assert_int_equal(hk_token_register(t, &mid->reg, unregister_self_and_free_cb, mid), 0);
    assert_int_equal(hk_token_register(t, &e[2].reg, journal_cb, &e[2]), 0);
    assert_int_equal(hk_token_register(t, &tail->reg, unregister_self_and_free_cb, tail), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(atomic_load(&j.n), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(j.order[i], i);
    assert_int_equal(rv_mid, 0); /* running on this thread: 0, no deadlock */
    assert_int_equal(rv_tail, 0);
    hk_token_free(t);
}

typedef struct {
    entry_t *self;
    heap_entry_t *victim;
    int rv;
} killer_t;

static void unregister_and_free_a_later_one_cb(hk_token_t *token, void *data) {
    killer_t *k = data;
    journal_cb(token, k->self);
    k->rv = hk_token_unregister(&k->victim->reg);
    free(k->victim);
}

static void a_callback_may_unregister_and_free_a_later_registration(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    entry_t e[3];
    journal_t j;
    entries_init(e, 3, &j);
    int unused = -1;
    killer_t k = {.self = &e[0], .victim = heap_entry_new(&j, 1, &unused), .rv = -1};
    assert_int_equal(hk_token_register(t, &e[0].reg, unregister_and_free_a_later_one_cb, &k), 0);
    assert_int_equal(hk_token_register(t, &k.victim->reg, unregister_self_and_free_cb, k.victim),
                     0);
    assert_int_equal(hk_token_register(t, &e[2].reg, journal_cb, &e[2]), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(k.rv, 1);
    assert_int_equal(atomic_load(&j.n), 2);
    assert_int_equal(j.order[0], 0);
    assert_int_equal(j.order[1], 2);
    assert_int_equal(unused, -1);
    hk_token_free(t);
}

typedef struct {
    entry_t *self;
    hk_token_t *other;
    bool other_result, own_result;
    int nested_register_rv;
    entry_t *nested;
} chain_t;

static void cancel_other_and_self_cb(hk_token_t *token, void *data) {
    chain_t *c = data;
    journal_cb(token, c->self);
    c->other_result = hk_token_cancel(c->other);
    c->own_result = hk_token_cancel(token);
    c->nested_register_rv = hk_token_register(token, &c->nested->reg, journal_cb, c->nested);
}

static void a_callback_may_cancel_another_token_its_own_and_register_on_it(void **state) {
    (void)state;
    hk_token_t *t1, *t2;
    assert_int_equal(hk_token_new(&t1), 0);
    assert_int_equal(hk_token_new(&t2), 0);
    entry_t e[4];
    journal_t j;
    entries_init(e, 4, &j);
    chain_t c = {.self = &e[0], .other = t2, .nested = &e[2], .nested_register_rv = -1};
    assert_int_equal(hk_token_register(t1, &e[0].reg, cancel_other_and_self_cb, &c), 0);
    assert_int_equal(hk_token_register(t1, &e[3].reg, journal_cb, &e[3]), 0);
    assert_int_equal(hk_token_register(t2, &e[1].reg, journal_cb, &e[1]), 0);
    assert_true(hk_token_cancel(t1));
    assert_true(c.other_result);
    assert_false(c.own_result);
    assert_int_equal(c.nested_register_rv, 1);
    assert_true(hk_token_is_cancelled(t2));
    /* t2's callback and the nested one ran inside e[0]'s callback, before e[3]. */
    assert_int_equal(atomic_load(&j.n), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(j.order[i], i);
        assert_true(pthread_equal(j.thread[i], pthread_self()));
        assert_int_equal(atomic_load(&e[i].runs), 1);
    }
    assert_ptr_equal(e[1].token_seen, t2);
    hk_token_free(t2);
    hk_token_free(t1);
}

/* ---- linked tokens ----------------------------------------------------------------- */

static void linked_token_is_cancelled_when_any_parent_is(void **state) {
    (void)state;
    hk_token_t *p[3], *c;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hk_token_new(&p[i]), 0);
    assert_int_equal(hk_token_new_linked(p, 3, &c), 0);
    assert_false(hk_token_is_cancelled(c));
    stamp_t s = {0};
    assert_int_equal(hk_token_register(c, &s.reg, stamp_cb, &s), 0);
    int fd = hk_token_fd(c);
    assert_true(fd >= 0);
    assert_true(hk_token_cancel(p[1]));
    assert_true(hk_token_is_cancelled(c));
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_true(pthread_equal(s.thread, pthread_self()));
    assert_int_equal(readable_now(fd), 1);
    assert_false(hk_token_is_cancelled(p[0]));
    assert_false(hk_token_is_cancelled(p[2]));
    assert_true(hk_token_cancel(p[2]));
    assert_int_equal(atomic_load(&s.runs), 1);
    hk_token_free(c);
    for (int i = 0; i < 3; i++)
        hk_token_free(p[i]);
}

static void linked_token_of_an_already_cancelled_parent_starts_cancelled(void **state) {
    (void)state;
    hk_token_t *p[2], *c;
    assert_int_equal(hk_token_new(&p[0]), 0);
    assert_int_equal(hk_token_new(&p[1]), 0);
    assert_true(hk_token_cancel(p[1]));
    assert_int_equal(hk_token_new_linked(p, 2, &c), 0);
    assert_true(hk_token_is_cancelled(c));
    assert_int_equal(readable_now(hk_token_fd(c)), 1);
    assert_int_equal(hk_token_sleep(c, LONG_MS), -ECANCELED);
    assert_false(hk_token_is_cancelled(p[0]));
    hk_token_free(c);
    hk_token_free(p[0]);
    hk_token_free(p[1]);
}

static void cancelling_a_linked_token_leaves_its_parents_alone(void **state) {
    (void)state;
    hk_token_t *p[2], *c;
    assert_int_equal(hk_token_new(&p[0]), 0);
    assert_int_equal(hk_token_new(&p[1]), 0);
    entry_t e[2];
    journal_t j;
    entries_init(e, 2, &j);
    assert_int_equal(hk_token_register(p[0], &e[0].reg, journal_cb, &e[0]), 0);
    assert_int_equal(hk_token_new_linked(p, 2, &c), 0);
    assert_int_equal(hk_token_register(p[1], &e[1].reg, journal_cb, &e[1]), 0);
    assert_true(hk_token_cancel(c));
    assert_false(hk_token_is_cancelled(p[0]));
    assert_false(hk_token_is_cancelled(p[1]));
    assert_int_equal(atomic_load(&j.n), 0);
    /* the parents still work, and cancelling one reaches the already cancelled child harmlessly */
    assert_true(hk_token_cancel(p[0]));
    assert_int_equal(atomic_load(&j.n), 1);
    hk_token_free(c);
    hk_token_free(p[0]);
    hk_token_free(p[1]);
}

static void freeing_a_linked_token_detaches_it_from_its_parents(void **state) {
    (void)state;
    hk_token_t *p[2], *c;
    assert_int_equal(hk_token_new(&p[0]), 0);
    assert_int_equal(hk_token_new(&p[1]), 0);
    entry_t e[4];
    journal_t j;
    entries_init(e, 4, &j);
    assert_int_equal(hk_token_register(p[0], &e[0].reg, journal_cb, &e[0]), 0);
    assert_int_equal(hk_token_new_linked(p, 2, &c), 0);
    assert_int_equal(hk_token_register(p[0], &e[1].reg, journal_cb, &e[1]), 0);
    assert_int_equal(hk_token_register(p[1], &e[2].reg, journal_cb, &e[2]), 0);
    assert_int_equal(hk_token_register(c, &e[3].reg, journal_cb, &e[3]), 0);
    hk_token_free(c); /* afterwards a parent's cancel must not touch it (ASan) */
    assert_true(hk_token_cancel(p[0]));
    assert_true(hk_token_cancel(p[1]));
    assert_int_equal(atomic_load(&j.n), 3);
    assert_int_equal(j.order[0], 0);
    assert_int_equal(j.order[1], 1);
    assert_int_equal(j.order[2], 2);
    assert_int_equal(atomic_load(&e[3].runs), 0);
    hk_token_free(p[0]);
    hk_token_free(p[1]);
}

static void freeing_a_linked_token_after_its_parent_was_cancelled_is_safe(void **state) {
    (void)state;
    hk_token_t *p, *c;
    assert_int_equal(hk_token_new(&p), 0);
    assert_int_equal(hk_token_new_linked(&p, 1, &c), 0);
    assert_true(hk_token_cancel(p));
    assert_true(hk_token_is_cancelled(c));
    hk_token_free(c);
    hk_token_free(p);
}

static void linked_chain_passes_a_cancel_down_from_grandparent_to_child_but_never_up(void **state) {
    (void)state;
    for (int cancel_at = 0; cancel_at < 3; cancel_at++) {
        hk_token_t *tok[3]; /* grandparent, parent, child */
        assert_int_equal(hk_token_new(&tok[0]), 0);
        assert_int_equal(hk_token_new_linked(&tok[0], 1, &tok[1]), 0);
        assert_int_equal(hk_token_new_linked(&tok[1], 1, &tok[2]), 0);
        stamp_t s[3] = {0};
        for (int i = 0; i < 3; i++)
            assert_int_equal(hk_token_register(tok[i], &s[i].reg, stamp_cb, &s[i]), 0);
        assert_true(hk_token_cancel(tok[cancel_at]));
        for (int i = 0; i < 3; i++) {
            assert_int_equal(hk_token_is_cancelled(tok[i]), i >= cancel_at);
            assert_int_equal(atomic_load(&s[i].runs), i >= cancel_at);
        }
        hk_token_free(tok[2]);
        hk_token_free(tok[1]);
        hk_token_free(tok[0]);
    }
}

static void linked_token_may_name_the_same_parent_twice(void **state) {
    (void)state;
    hk_token_t *p[2], *c;
    assert_int_equal(hk_token_new(&p[0]), 0);
    p[1] = p[0];
    assert_int_equal(hk_token_new_linked(p, 2, &c), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(c, &s.reg, stamp_cb, &s), 0);
    assert_true(hk_token_cancel(p[0]));
    assert_true(hk_token_is_cancelled(c));
    assert_int_equal(atomic_load(&s.runs), 1);
    hk_token_free(c);
    hk_token_free(p[0]);
}

/* ---- cancel_after ------------------------------------------------------------------ */

static void cancel_after_cancels_on_the_timer_thread_after_the_delay_and_not_before(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_cancel_after(t, 100), 0);
    assert_true(wait_until(stamp_ran, &s, 5000));
    assert_true(s.at_ns - t0 >= 100 * MS);
    assert_false(pthread_equal(s.thread, pthread_self()));
    assert_int_equal(atomic_load(&s.runs), 1);
    hk_token_free(t);
}

static void cancel_after_wakes_a_sleeper_after_the_delay(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_cancel_after(t, 50), 0);
    assert_int_equal(hk_token_sleep(t, LONG_MS), -ECANCELED);
    uint64_t elapsed = mono_ns() - t0;
    assert_true(elapsed >= 50 * MS);
    assert_true(elapsed < BOUND_NS);
    hk_token_free(t);
}

static void cancel_after_0_cancels_at_once_on_this_thread_without_a_timer_thread(void **state) {
    (void)state;
    int base = stable_thread_count();
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
    assert_int_equal(hk_token_cancel_after(t, 0), 0);
    assert_true(hk_token_is_cancelled(t));
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_true(pthread_equal(s.thread, pthread_self()));
    assert_int_equal(thread_count(), base);
    hk_token_free(t);
}

static void cancel_after_again_replaces_the_deadline_with_a_later_one(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_cancel_after(t, 20), 0);
    assert_int_equal(hk_token_cancel_after(t, 250), 0);
    assert_true(wait_until(stamp_ran, &s, 5000));
    assert_true(s.at_ns - t0 >= 250 * MS);
    assert_int_equal(atomic_load(&s.runs), 1);
    hk_token_free(t);
}

static void cancel_after_again_replaces_the_deadline_with_a_sooner_one(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
    (void)stable_thread_count();
    int before[64], n = list_tids(before, 64);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0);
    /* The timer thread must already wait for the long deadline: only a wake-up can shorten it. */
    int timer = tid_not_in(before, n);
    assert_true(timer > 0);
    assert_true(wait_until(tid_blocked_cond, &timer, 5000));
    assert_int_equal(hk_token_cancel_after(t, 20), 0);
    assert_true(wait_until(stamp_ran, &s, 5000));
    assert_true(s.at_ns - t0 >= 20 * MS);
    assert_true(s.at_ns - t0 < BOUND_NS);
    hk_token_free(t);
}

static void free_before_the_deadline_stops_and_joins_the_timer_thread(void **state) {
    (void)state;
    int base = stable_thread_count();
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    stamp_t s = {0};
    assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0);
    assert_int_equal(thread_count(), base + 1);
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0); /* still one timer thread */
    assert_int_equal(thread_count(), base + 1);
    uint64_t t0 = mono_ns();
    hk_token_free(t);
    assert_true(mono_ns() - t0 < BOUND_NS);
    assert_true(wait_until(thread_count_is, &base, 5000));
    assert_int_equal(atomic_load(&s.runs), 0);
}

static void timer_thread_ends_when_the_token_is_cancelled_by_someone_else(void **state) {
    (void)state;
    int base = stable_thread_count();
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0);
    assert_int_equal(thread_count(), base + 1);
    assert_true(hk_token_cancel(t));
    assert_true(wait_until(thread_count_is, &base, 5000));
    assert_int_equal(hk_token_cancel_after(t, 1), 0); /* cancelled: starts nothing */
    assert_int_equal(thread_count(), base);
    hk_token_free(t);
}

static void cancel_after_on_a_cancelled_token_returns_0_and_starts_no_thread(void **state) {
    (void)state;
    int base = stable_thread_count();
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_true(hk_token_cancel(t));
    assert_int_equal(hk_token_cancel_after(t, LONG_MS), 0);
    assert_int_equal(hk_token_cancel_after(t, 0), 0);
    assert_true(wait_until(thread_count_is, &base, 2000)); /* no timer thread appeared */
    hk_token_free(t);
}

/* UINT64_MAX ms must not overflow into a deadline in the past. */
static void cancel_after_a_huge_delay_does_not_cancel_early(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    assert_int_equal(hk_token_cancel_after(t, UINT64_MAX), 0);
    assert_int_equal(hk_token_sleep(t, 50), 0);
    assert_false(hk_token_is_cancelled(t));
    hk_token_free(t);
}

/* ---- out of memory ----------------------------------------------------------------- */

static int uninstall_failalloc(void **state) {
    (void)state;
    failalloc_uninstall();
    return 0;
}

/*
 * Fails allocation n = 1, 2, ... (only that one, then that one and all later
 * ones) until create() succeeds; every earlier try must return -ENOMEM with
 * *ret untouched. Leaks are caught by LSan and valgrind. Returns the
 * successfully created token.
 */
static hk_token_t *create_under_oom(int (*create)(void *arg, hk_token_t **ret), void *arg,
                                    bool persistent) {
    failalloc_install();
    for (long n = 1; n <= 64; n++) {
        failalloc_set(n, persistent);
        hk_token_t *t = SENTINEL;
        int rc = create(arg, &t);
        long used = failalloc_count();
        failalloc_set(0, false);
        if (rc == 0) {
            failalloc_uninstall();
            assert_true(n > 1); /* at least one allocation was failed on the way */
            assert_true(used < n);
            assert_non_null(t);
            assert_ptr_not_equal(t, SENTINEL);
            return t;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_ptr_equal(t, SENTINEL);
        assert_true(used >= n); /* it really reached the failing allocation */
    }
    fail_msg("still failing after 64 allocations");
    return NULL;
}

static int create_plain(void *arg, hk_token_t **ret) {
    (void)arg;
    return hk_token_new(ret);
}

static int create_linked(void *arg, hk_token_t **ret) { return hk_token_new_linked(arg, 2, ret); }

static void new_returns_enomem_for_each_failing_allocation_and_leaks_nothing(void **state) {
    (void)state;
    for (int persistent = 0; persistent < 2; persistent++) {
        hk_token_t *t = create_under_oom(create_plain, NULL, persistent);
        stamp_t s = {0};
        assert_int_equal(hk_token_register(t, &s.reg, stamp_cb, &s), 0);
        assert_true(hk_token_cancel(t));
        assert_int_equal(atomic_load(&s.runs), 1);
        hk_token_free(t);
    }
}

static void
new_linked_returns_enomem_for_each_failing_allocation_and_leaves_parents_intact(void **state) {
    (void)state;
    for (int persistent = 0; persistent < 2; persistent++) {
        hk_token_t *p[2];
        assert_int_equal(hk_token_new(&p[0]), 0);
        assert_int_equal(hk_token_new(&p[1]), 0);
        entry_t e[2];
        journal_t j;
        entries_init(e, 2, &j);
        assert_int_equal(hk_token_register(p[0], &e[0].reg, journal_cb, &e[0]), 0);
        hk_token_t *c = create_under_oom(create_linked, p, persistent);
        assert_int_equal(hk_token_register(p[0], &e[1].reg, journal_cb, &e[1]), 0);
        stamp_t s = {0};
        assert_int_equal(hk_token_register(c, &s.reg, stamp_cb, &s), 0);
        /* a failed try that left a registration behind would be reached here (ASan) */
        assert_true(hk_token_cancel(p[0]));
        assert_int_equal(atomic_load(&j.n), 2);
        assert_int_equal(j.order[0], 0);
        assert_int_equal(j.order[1], 1);
        assert_true(hk_token_is_cancelled(c));
        assert_int_equal(atomic_load(&s.runs), 1);
        assert_false(hk_token_is_cancelled(p[1]));
        hk_token_free(c);
        hk_token_free(p[0]);
        hk_token_free(p[1]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_token_is_not_cancelled_until_cancel_which_returns_true_once),
        cmocka_unit_test(free_accepts_null_and_an_unused_token),
        cmocka_unit_test(null_arguments_return_einval_and_leave_outputs_untouched),
        cmocka_unit_test(sleep_returns_0_after_the_full_duration),
        cmocka_unit_test(sleep_is_not_cut_short_by_unrelated_wake_ups),
        cmocka_unit_test(sleep_returns_ecanceled_at_once_when_already_cancelled),
        cmocka_unit_test(sleep_returns_ecanceled_early_when_another_thread_cancels),
        cmocka_unit_test(sleep_with_a_huge_duration_sleeps_until_cancelled),
        cmocka_unit_test(wait_blocks_until_another_thread_cancels),
        cmocka_unit_test(wait_returns_ecanceled_at_once_when_already_cancelled),
        cmocka_unit_test(fd_becomes_readable_on_cancel_and_stays_readable),
        cmocka_unit_test(fd_created_after_cancel_is_readable_at_once),
        cmocka_unit_test(fd_is_close_on_exec_and_closed_by_free),
        cmocka_unit_test(fd_returns_emfile_when_descriptors_run_out_and_succeeds_later),
        cmocka_unit_test(fd_wakes_a_poll_blocked_in_another_thread),
        cmocka_unit_test(cancel_runs_callbacks_once_in_registration_order_on_the_cancelling_thread),
        cmocka_unit_test(
            register_on_a_cancelled_token_runs_the_callback_at_once_on_this_thread_and_returns_1),
        cmocka_unit_test(unregister_before_cancel_returns_1_and_the_callback_never_runs),
        cmocka_unit_test(unregister_after_the_callback_ran_returns_0_every_time),
        cmocka_unit_test(unregister_of_a_zero_initialised_registration_returns_0),
        cmocka_unit_test(registering_an_in_use_registration_returns_einval_and_never_calls_back),
        cmocka_unit_test(a_registration_is_reusable_after_unregister_or_after_it_ran),
        cmocka_unit_test(free_drops_pending_callbacks_without_running_them),
        cmocka_unit_test(a_callback_may_unregister_itself_and_free_its_registration),
        cmocka_unit_test(a_callback_may_unregister_and_free_a_later_registration),
        cmocka_unit_test(a_callback_may_cancel_another_token_its_own_and_register_on_it),
        cmocka_unit_test(linked_token_is_cancelled_when_any_parent_is),
        cmocka_unit_test(linked_token_of_an_already_cancelled_parent_starts_cancelled),
        cmocka_unit_test(cancelling_a_linked_token_leaves_its_parents_alone),
        cmocka_unit_test(freeing_a_linked_token_detaches_it_from_its_parents),
        cmocka_unit_test(freeing_a_linked_token_after_its_parent_was_cancelled_is_safe),
        cmocka_unit_test(linked_chain_passes_a_cancel_down_from_grandparent_to_child_but_never_up),
        cmocka_unit_test(linked_token_may_name_the_same_parent_twice),
        cmocka_unit_test(cancel_after_cancels_on_the_timer_thread_after_the_delay_and_not_before),
        cmocka_unit_test(cancel_after_wakes_a_sleeper_after_the_delay),
        cmocka_unit_test(cancel_after_0_cancels_at_once_on_this_thread_without_a_timer_thread),
        cmocka_unit_test(cancel_after_again_replaces_the_deadline_with_a_later_one),
        cmocka_unit_test(cancel_after_again_replaces_the_deadline_with_a_sooner_one),
        cmocka_unit_test(free_before_the_deadline_stops_and_joins_the_timer_thread),
        cmocka_unit_test(timer_thread_ends_when_the_token_is_cancelled_by_someone_else),
        cmocka_unit_test(cancel_after_on_a_cancelled_token_returns_0_and_starts_no_thread),
        cmocka_unit_test(cancel_after_a_huge_delay_does_not_cancel_early),
        cmocka_unit_test_teardown(new_returns_enomem_for_each_failing_allocation_and_leaks_nothing,
                                  uninstall_failalloc),
        cmocka_unit_test_teardown(
            new_linked_returns_enomem_for_each_failing_allocation_and_leaves_parents_intact,
            uninstall_failalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
