/*
 * Multi-threaded tests for cancellation tokens (src/core/token.c): unregister and free wait
 * out a callback running on another thread, and race loops (concurrent cancel, register and
 * unregister during a cancel, many waiters, linked free vs parent cancel, fd creation,
 * cancel_after vs free). Some invariants are only checked by TSan and ASan: run them there.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <hostkit/token.h>

#define MS 1000000ull
#define LONG_MS 10000u       /* a wait that must be cut short by a cancel */
#define BOUND_NS (5000 * MS) /* "returned well before LONG_MS", generous for valgrind */
#define ROUNDS 200

/* ---- helpers --------------------------------------------------------------- */

/* Varies the interleaving from round to round; a delay, never synchronisation. */
static unsigned next_rand(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void spin(unsigned n) {
    for (volatile unsigned i = 0; i < n; i++) {
    }
}

/*
 * The barrier wakes threads in no particular order, and a worker's whole loop is
 * shorter than a wake-up: the canceller raises `go` once it runs, the others
 * start when they see it, so that its cancel can land inside their loops.
 */
static void wait_for_go(atomic_bool *go) {
    while (!atomic_load(go))
        sched_yield(); /* let the canceller run */
}

/* The canceller's side: watch a counter closely, yielding only now and then. */
static void wait_for_count(atomic_int *n, int target) {
    for (unsigned i = 1; atomic_load(n) < target; i++) {
        spin(10);
        if (i % 1024 == 0)
            sched_yield();
    }
}

/* First failed check of the main thread, reported after the worker threads are stopped. */
static char failure[256];
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond) && !failure[0])                                                                \
            snprintf(failure, sizeof failure, "%s:%d: round %d: %s", __FILE__, __LINE__, round,    \
                     #cond);                                                                       \
    } while (0)

/* A crew of threads that run fn(ctx, worker, round) together, once per round, between two barriers.
 */
#define MAX_CREW 10
typedef void (*crew_fn)(void *ctx, int worker, int round);
typedef struct crew crew_t;
typedef struct {
    crew_t *crew;
    int index;
} crew_arg_t;
struct crew {
    int n;
    pthread_t th[MAX_CREW];
    crew_arg_t args[MAX_CREW];
    atomic_int tid[MAX_CREW];
    pthread_barrier_t start, end;
    crew_fn fn;
    void *ctx;
    int round;
    bool quit;
};

static void *crew_main(void *arg) {
    crew_arg_t *a = arg;
    crew_t *c = a->crew;
    atomic_store(&c->tid[a->index], current_tid());
    for (;;) {
        pthread_barrier_wait(&c->start);
        if (c->quit)
            return NULL;
        c->fn(c->ctx, a->index, c->round);
        pthread_barrier_wait(&c->end);
    }
}

static void crew_start(crew_t *c, int n, crew_fn fn, void *ctx) {
    memset(c, 0, sizeof *c);
    failure[0] = '\0';
    c->n = n;
    c->fn = fn;
    c->ctx = ctx;
    assert_int_equal(pthread_barrier_init(&c->start, NULL, (unsigned)n + 1), 0);
    assert_int_equal(pthread_barrier_init(&c->end, NULL, (unsigned)n + 1), 0);
    for (int i = 0; i < n; i++) {
        c->args[i] = (crew_arg_t){c, i};
        assert_int_equal(pthread_create(&c->th[i], NULL, crew_main, &c->args[i]), 0);
    }
}

static void crew_round(crew_t *c, int round) {
    c->round = round;
    pthread_barrier_wait(&c->start);
    pthread_barrier_wait(&c->end);
}

/* Stops the crew, then fails the test if a check failed. */
static void crew_stop(crew_t *c) {
    c->quit = true;
    pthread_barrier_wait(&c->start);
    for (int i = 0; i < c->n; i++)
        pthread_join(c->th[i], NULL);
    pthread_barrier_destroy(&c->start);
    pthread_barrier_destroy(&c->end);
    if (failure[0])
        fail_msg("%s", failure);
}

/* ---- unregister / free wait for a callback running on another thread -------------- */

typedef struct {
    char pad[40]; /* reg not at offset 0: a stale pointer into a freed blocker is a real UAF */
    hk_token_reg_t reg;
    int release[2];
    atomic_bool entered, finished;
} blocker_t;

static void blocking_cb(hk_token_t *token, void *data) {
    (void)token;
    blocker_t *b = data;
    atomic_store(&b->entered, true);
    char ch;
    while (read(b->release[0], &ch, 1) < 0 && errno == EINTR) {
    }
    atomic_store(&b->finished, true);
}

static blocker_t *blocker_new(void) {
    blocker_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    assert_int_equal(pipe2(b->release, O_CLOEXEC), 0);
    return b;
}

static void blocker_free(blocker_t *b) {
    close(b->release[0]);
    close(b->release[1]);
    free(b);
}

static bool blocker_entered(void *arg) { return atomic_load(&((blocker_t *)arg)->entered); }

/* One thread doing one call: cancel a token, unregister a registration or free a token. */
typedef struct {
    hk_token_t *token;
    blocker_t *blocker;
    atomic_int tid;
    atomic_bool returned;
    int rv;
    bool finished_at_return;
} actor_t;

static void *cancel_main(void *arg) {
    actor_t *a = arg;
    a->rv = hk_token_cancel(a->token);
    return NULL;
}

static void *unregister_main(void *arg) {
    actor_t *a = arg;
    atomic_store(&a->tid, current_tid());
    a->rv = hk_token_unregister(&a->blocker->reg);
    a->finished_at_return = atomic_load(&a->blocker->finished);
    atomic_store(&a->returned, true);
    return NULL;
}

static void *free_main(void *arg) {
    actor_t *a = arg;
    atomic_store(&a->tid, current_tid());
    hk_token_free(a->token);
    a->finished_at_return = atomic_load(&a->blocker->finished);
    atomic_store(&a->returned, true);
    return NULL;
}

static bool actor_returned(void *arg) { return atomic_load(&((actor_t *)arg)->returned); }

static bool actor_blocked_or_returned(void *arg) {
    actor_t *a = arg;
    int tid = atomic_load(&a->tid);
    return atomic_load(&a->returned) || (tid && tid_is_blocked(tid));
}

/*
 * cancel_token's cancel runs b's callback on thread C, which blocks; then thread U
 * runs fn (unregister or free). U must still be inside fn when it is seen blocked, and
 * must see "finished" when fn returns: it waited for the callback to end.
 */
static void expect_call_waits_for_running_callback(hk_token_t *cancel_token, blocker_t *b,
                                                   void *(*fn)(void *), actor_t *u) {
    actor_t c = {.token = cancel_token};
    pthread_t cth, uth;
    assert_int_equal(pthread_create(&cth, NULL, cancel_main, &c), 0);
    assert_true(wait_until(blocker_entered, b, 5000));
    assert_int_equal(pthread_create(&uth, NULL, fn, u), 0);
    assert_true(wait_until(actor_blocked_or_returned, u, 5000));
    assert_false(atomic_load(&u->returned)); /* it is waiting for the callback */
    assert_false(atomic_load(&b->finished));
    assert_int_equal(write(b->release[1], "x", 1), 1);
    assert_true(wait_until(actor_returned, u, 5000));
    pthread_join(uth, NULL);
    pthread_join(cth, NULL);
    assert_true(u->finished_at_return);
    assert_int_equal(c.rv, 1);
}

static void unregister_waits_for_the_callback_running_on_another_thread_to_finish(void **state) {
    (void)state;
    hk_token_t *t;
    assert_int_equal(hk_token_new(&t), 0);
    blocker_t *b = blocker_new();
    assert_int_equal(hk_token_register(t, &b->reg, blocking_cb, b), 0);
    actor_t u = {.blocker = b, .rv = -1};
    expect_call_waits_for_running_callback(t, b, unregister_main, &u);
    assert_int_equal(u.rv, 0);
    blocker_free(b); /* allowed once unregister returned; the cancel must not touch it (ASan) */
    hk_token_free(t);
}

static void freeing_a_linked_token_waits_for_its_callback_running_in_a_parent_cancel(void **state) {
    (void)state;
    hk_token_t *p, *c;
    assert_int_equal(hk_token_new(&p), 0);
    assert_int_equal(hk_token_new_linked(&p, 1, &c), 0);
    blocker_t *b = blocker_new();
    assert_int_equal(hk_token_register(c, &b->reg, blocking_cb, b), 0);
    actor_t f = {.token = c, .blocker = b};
    /* The parent's cancel is inside the child's cancel; freeing the child early would be a UAF. */
    expect_call_waits_for_running_callback(p, b, free_main, &f);
    blocker_free(b);
    hk_token_free(p);
}

/* ---- concurrent cancels ---------------------------------------------------------------- */

#define NCB 16
typedef struct {
    hk_token_reg_t reg;
    atomic_int runs;
    int seq;
    pthread_t ran_on;
    atomic_int *counter;
} rec_t;

static void rec_cb(hk_token_t *token, void *data) {
    (void)token;
    rec_t *r = data;
    r->seq = atomic_fetch_add(r->counter, 1);
    r->ran_on = pthread_self();
    atomic_fetch_add(&r->runs, 1);
}

typedef struct {
    hk_token_t *token;
    rec_t recs[NCB];
    atomic_int counter, ready;
    bool won[MAX_CREW];
} cancel_race_t;

static void cancel_race_fn(void *ctx, int w, int round) {
    cancel_race_t *r = ctx;
    unsigned seed = (unsigned)(round * 8 + w);
    /* a spinning start line: the threads that are on a CPU leave it together */
    atomic_fetch_add(&r->ready, 1);
    wait_for_count(&r->ready, 8);
    spin(next_rand(&seed) % 64);
    r->won[w] = hk_token_cancel(r->token);
}

static void
concurrent_cancels_from_8_threads_have_one_winner_that_runs_each_callback_once(void **state) {
    (void)state;
    cancel_race_t r;
    crew_t crew;
    crew_start(&crew, 8, cancel_race_fn, &r);
    for (int round = 0; round < ROUNDS && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(hk_token_new(&r.token), 0);
        for (int i = 0; i < NCB; i++) {
            r.recs[i].counter = &r.counter;
            assert_int_equal(hk_token_register(r.token, &r.recs[i].reg, rec_cb, &r.recs[i]), 0);
        }
        crew_round(&crew, round);
        int winners = 0, winner = 0;
        for (int w = 0; w < 8; w++)
            if (r.won[w]) {
                winners++;
                winner = w;
            }
        EXPECT(winners == 1);
        for (int i = 0; i < NCB; i++) {
            EXPECT(atomic_load(&r.recs[i].runs) == 1);
            EXPECT(r.recs[i].seq == i);
            EXPECT(pthread_equal(r.recs[i].ran_on, crew.th[winner]));
        }
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

/* ---- register / unregister racing with cancel ---------------------------------------- */

#define NREG_WORKERS 4
#define NSLOTS 16
static atomic_int violations;

typedef struct {
    hk_token_reg_t reg;
    pthread_t owner; /* the worker that registers and unregisters it */
    bool hold;       /* the callback waits until its owner has started to unregister it */
    int alive; /* plain int on purpose: TSan flags a callback running after unregister returned */
    atomic_bool unregistering;
    atomic_int runs;
    int reg_rv, unreg_rv, runs_at_unregister;
} slot_t;

static void slot_cb(hk_token_t *token, void *data) {
    (void)token;
    slot_t *s = data;
    if (!s->alive)
        atomic_fetch_add(&violations, 1);
    if (s->hold && !pthread_equal(pthread_self(), s->owner)) {
        /* Make the owner's unregister meet this callback running (bounded, in case of a bug). */
        uint64_t deadline = mono_ns() + BOUND_NS;
        while (!atomic_load(&s->unregistering) && mono_ns() < deadline)
            sched_yield();
    }
    spin(1000); /* an unregister that does not wait returns within this */
    if (!s->alive)
        atomic_fetch_add(&violations, 1);
    atomic_fetch_add(&s->runs, 1);
}

static void slot_unregister(slot_t *s) {
    atomic_store(&s->unregistering, true);
    s->unreg_rv = hk_token_unregister(&s->reg);
    s->runs_at_unregister = atomic_load(&s->runs);
    s->alive = 0;
}

typedef struct {
    hk_token_t *token;
    slot_t slots[NREG_WORKERS][NSLOTS];
    atomic_int registered;
    atomic_bool go;
    bool cancel_result;
} reg_race_t;

/*
 * Worker 0 cancels after a random number of registrations. The others register
 * their slots, unregister the odd ones at once and the even ones afterwards. In
 * odd rounds every callback run by the cancel is held until its owner calls
 * unregister, so unregister meets it running; in even rounds nothing is held.
 */
static void reg_race_fn(void *ctx, int w, int round) {
    reg_race_t *r = ctx;
    unsigned seed = (unsigned)(round * 16 + w);
    if (w == 0) {
        int after = (int)(next_rand(&seed) % (NREG_WORKERS * NSLOTS + 1));
        atomic_store(&r->go, true);
        wait_for_count(&r->registered, after);
        r->cancel_result = hk_token_cancel(r->token);
        return;
    }
    slot_t *s = r->slots[w - 1];
    wait_for_go(&r->go);
    for (int i = 0; i < NSLOTS; i++) {
        s[i].owner = pthread_self();
        s[i].hold = round % 2;
        s[i].alive = 1;
        s[i].reg_rv = hk_token_register(r->token, &s[i].reg, slot_cb, &s[i]);
        atomic_fetch_add(&r->registered, 1);
        if (i % 2)
            slot_unregister(&s[i]);
        spin(next_rand(&seed) % 300);
    }
    for (int i = 0; i < NSLOTS; i += 2)
        slot_unregister(&s[i]);
}

static void register_and_unregister_racing_with_cancel_run_each_callback_iff_unregister_returned_0(
    void **state) {
    (void)state;
    reg_race_t r;
    crew_t crew;
    atomic_store(&violations, 0);
    crew_start(&crew, 1 + NREG_WORKERS, reg_race_fn, &r);
    for (int round = 0; round < ROUNDS && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(hk_token_new(&r.token), 0);
        crew_round(&crew, round);
        EXPECT(r.cancel_result);
        for (int w = 0; w < NREG_WORKERS; w++)
            for (int i = 0; i < NSLOTS; i++) {
                slot_t *s = &r.slots[w][i];
                int runs = atomic_load(&s->runs);
                EXPECT(s->reg_rv == 0 || s->reg_rv == 1);
                EXPECT(s->unreg_rv == 0 || s->unreg_rv == 1);
                EXPECT(runs == (s->unreg_rv == 0));    /* ran once iff unregister returned 0 */
                EXPECT(s->runs_at_unregister == runs); /* finished before unregister returned */
                EXPECT(s->reg_rv == 0 || s->unreg_rv == 0);
            }
        EXPECT(atomic_load(&violations) == 0);
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

typedef struct {
    hk_token_t *token;
    rec_t recs[NREG_WORKERS][NSLOTS];
    int reg_rv[NREG_WORKERS][NSLOTS];
    atomic_int counter, registered;
    atomic_bool go;
} late_reg_t;

static void late_reg_fn(void *ctx, int w, int round) {
    late_reg_t *r = ctx;
    unsigned seed = (unsigned)(round * 16 + w);
    if (w == 0) { /* cancel after a random number of registrations, 0 to all of them */
        int after = (int)(next_rand(&seed) % (NREG_WORKERS * NSLOTS + 1));
        atomic_store(&r->go, true);
        wait_for_count(&r->registered, after);
        (void)hk_token_cancel(r->token);
        return;
    }
    wait_for_go(&r->go);
    for (int i = 0; i < NSLOTS; i++) {
        rec_t *rec = &r->recs[w - 1][i];
        r->reg_rv[w - 1][i] = hk_token_register(r->token, &rec->reg, rec_cb, rec);
        atomic_fetch_add(&r->registered, 1);
        spin(next_rand(&seed) % 300);
    }
}

static void
register_racing_with_cancel_runs_each_callback_once_on_the_right_thread_in_order(void **state) {
    (void)state;
    late_reg_t r;
    crew_t crew;
    crew_start(&crew, 1 + NREG_WORKERS, late_reg_fn, &r);
    for (int round = 0; round < ROUNDS && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(hk_token_new(&r.token), 0);
        for (int w = 0; w < NREG_WORKERS; w++)
            for (int i = 0; i < NSLOTS; i++)
                r.recs[w][i].counter = &r.counter;
        crew_round(&crew, round);
        for (int w = 0; w < NREG_WORKERS; w++) {
            int last_seq = -1;
            for (int i = 0; i < NSLOTS; i++) {
                rec_t *rec = &r.recs[w][i];
                int rv = r.reg_rv[w][i];
                EXPECT(atomic_load(&rec->runs) == 1);
                EXPECT(rv == 0 || rv == 1);
                EXPECT(i == 0 || rv >= r.reg_rv[w][i - 1]); /* once cancelled, always cancelled */
                /* 1: ran on the registering thread; 0: ran on the cancelling thread */
                EXPECT(pthread_equal(rec->ran_on, crew.th[rv == 1 ? w + 1 : 0]));
                if (rv == 0) {
                    EXPECT(rec->seq > last_seq); /* registration order */
                    last_seq = rec->seq;
                }
                EXPECT(hk_token_unregister(&rec->reg) == 0);
            }
        }
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

/* ---- many waiters ---------------------------------------------------------------------- */

#define NWAITERS 8
typedef struct {
    hk_token_t *token;
    crew_t *crew;
    atomic_int entering;
    atomic_bool go;
    int rc[NWAITERS + 1];
    uint64_t elapsed[NWAITERS + 1];
    bool all_seen_blocked;
} waiters_t;

static bool all_waiters_blocked(void *arg) {
    waiters_t *r = arg;
    if (atomic_load(&r->entering) != NWAITERS)
        return false;
    for (int w = 1; w <= NWAITERS; w++)
        if (!tid_is_blocked(atomic_load(&r->crew->tid[w])))
            return false;
    return true;
}

static void waiters_fn(void *ctx, int w, int round) {
    waiters_t *r = ctx;
    unsigned seed = (unsigned)(round * 16 + w);
    if (w == 0) {
        /* Round 0 cancels once every waiter is known to be blocked, later rounds just after
         * a random number of waiters set out to wait (or to create the fd). */
        if (round == 0) {
            r->all_seen_blocked = wait_until(all_waiters_blocked, r, 5000);
        } else {
            int after = 1 + (int)(next_rand(&seed) % NWAITERS);
            atomic_store(&r->go, true);
            wait_for_count(&r->entering, after);
            spin(next_rand(&seed) % 2000);
        }
        (void)hk_token_cancel(r->token);
        return;
    }
    if (round > 0)
        wait_for_go(&r->go);
    atomic_fetch_add(&r->entering, 1);
    uint64_t t0 = mono_ns();
    int mode = w % 3, fd = mode == 2 ? hk_token_fd(r->token) : -1;
    if (mode == 0) {
        r->rc[w] = hk_token_sleep(r->token, LONG_MS);
    } else if (mode == 1) {
        r->rc[w] = hk_token_wait(r->token);
    } else {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        r->rc[w] = poll(&p, 1, LONG_MS) == 1 && (p.revents & POLLIN) ? -ECANCELED : -EIO;
    }
    r->elapsed[w] = mono_ns() - t0;
}

static void sleepers_waiters_and_fd_pollers_all_wake_on_one_cancel(void **state) {
    (void)state;
    waiters_t r;
    crew_t crew;
    crew_start(&crew, 1 + NWAITERS, waiters_fn, &r);
    for (int round = 0; round < ROUNDS / 2 && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        r.crew = &crew;
        assert_int_equal(hk_token_new(&r.token), 0);
        crew_round(&crew, round);
        EXPECT(round > 0 || r.all_seen_blocked);
        for (int w = 1; w <= NWAITERS; w++) {
            EXPECT(r.rc[w] == -ECANCELED);
            EXPECT(r.elapsed[w] < BOUND_NS); /* a lost wake-up would sleep LONG_MS */
        }
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

/* ---- linked free racing with parent cancels --------------------------------------------- */

typedef struct {
    hk_token_t *parents[2], *child;
    rec_t rec;
    atomic_int counter;
} link_race_t;

static void link_race_fn(void *ctx, int w, int round) {
    link_race_t *r = ctx;
    unsigned seed = (unsigned)(round * 4 + w);
    spin(next_rand(&seed) % 4000);
    if (w < 2)
        (void)hk_token_cancel(r->parents[w]);
    else
        hk_token_free(r->child);
}

static void freeing_a_linked_token_while_its_parents_are_cancelled_elsewhere_is_safe(void **state) {
    (void)state;
    link_race_t r;
    crew_t crew;
    crew_start(&crew, 3, link_race_fn, &r);
    for (int round = 0; round < ROUNDS && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        r.rec.counter = &r.counter;
        assert_int_equal(hk_token_new(&r.parents[0]), 0);
        assert_int_equal(hk_token_new(&r.parents[1]), 0);
        assert_int_equal(hk_token_new_linked(r.parents, 2, &r.child), 0);
        assert_int_equal(hk_token_register(r.child, &r.rec.reg, rec_cb, &r.rec), 0);
        crew_round(&crew, round);
        EXPECT(atomic_load(&r.rec.runs) <= 1);
        EXPECT(hk_token_is_cancelled(r.parents[0]) && hk_token_is_cancelled(r.parents[1]));
        hk_token_free(r.parents[0]);
        hk_token_free(r.parents[1]);
    }
    crew_stop(&crew);
}

/* ---- fd created by many threads at once --------------------------------------------------- */

typedef struct {
    hk_token_t *token;
    int fd[MAX_CREW];
} fd_race_t;

static void fd_race_fn(void *ctx, int w, int round) {
    (void)round;
    fd_race_t *r = ctx;
    r->fd[w] = hk_token_fd(r->token);
}

static void concurrent_first_calls_to_fd_all_return_the_same_fd(void **state) {
    (void)state;
    fd_race_t r;
    crew_t crew;
    crew_start(&crew, 8, fd_race_fn, &r);
    for (int round = 0; round < ROUNDS / 2 && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(hk_token_new(&r.token), 0);
        if (round % 2)
            (void)hk_token_cancel(r.token);
        crew_round(&crew, round);
        for (int w = 0; w < 8; w++)
            EXPECT(r.fd[w] >= 0 && r.fd[w] == r.fd[0]);
        struct pollfd p = {.fd = r.fd[0], .events = POLLIN};
        EXPECT(poll(&p, 1, 0) == (round % 2));
        (void)hk_token_cancel(r.token);
        EXPECT(poll(&p, 1, 0) == 1);
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

/* ---- cancel_after racing with cancel, itself and free ---------------------------------- */

typedef struct {
    hk_token_t *token;
    rec_t rec;
    atomic_int counter;
    int rv[MAX_CREW];
} timer_race_t;

static void timer_race_fn(void *ctx, int w, int round) {
    timer_race_t *r = ctx;
    unsigned seed = (unsigned)(round * 4 + w);
    spin(next_rand(&seed) % 4000);
    if (w == 3)
        (void)hk_token_cancel(r->token); /* rv stays 0 */
    else
        r->rv[w] = hk_token_cancel_after(r->token, (uint64_t)((round + w) % 3));
}

static void cancel_after_racing_with_cancel_and_free_runs_the_callback_at_most_once(void **state) {
    (void)state;
    timer_race_t r;
    crew_t crew;
    crew_start(&crew, 4, timer_race_fn, &r);
    for (int round = 0; round < ROUNDS / 2 && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        r.rec.counter = &r.counter;
        assert_int_equal(hk_token_new(&r.token), 0);
        assert_int_equal(hk_token_register(r.token, &r.rec.reg, rec_cb, &r.rec), 0);
        crew_round(&crew, round);
        for (int w = 0; w < 4; w++)
            EXPECT(r.rv[w] == 0);
        EXPECT(hk_token_is_cancelled(r.token)); /* thread 3 cancelled */
        EXPECT(atomic_load(&r.rec.runs) == 1);
        hk_token_free(r.token);
    }
    crew_stop(&crew);

    /* free racing with a timer that is about to fire: the callback runs at most once */
    for (int round = 0; round < ROUNDS / 2; round++) {
        memset(&r, 0, sizeof r);
        r.rec.counter = &r.counter;
        assert_int_equal(hk_token_new(&r.token), 0);
        assert_int_equal(hk_token_register(r.token, &r.rec.reg, rec_cb, &r.rec), 0);
        assert_int_equal(hk_token_cancel_after(r.token, 1), 0);
        uint64_t until = mono_ns() + (uint64_t)(round % 20) * 100000u; /* 0 to 1.9 ms */
        while (mono_ns() < until)
            spin(50);
        hk_token_free(r.token);
        assert_true(atomic_load(&r.rec.runs) <= 1);
    }
}

/* ---- is_cancelled publishes what was written before the cancel ---------------------------- */

typedef struct {
    hk_token_t *token;
    int payload; /* plain int on purpose: TSan checks the acquire/release pairing */
    int seen;
} publish_t;

static void publish_fn(void *ctx, int w, int round) {
    publish_t *r = ctx;
    if (w == 0) {
        r->payload = round + 1;
        (void)hk_token_cancel(r->token);
    } else {
        while (!hk_token_is_cancelled(r->token))
            sched_yield();
        r->seen = r->payload;
    }
}

static void is_cancelled_publishes_writes_made_before_the_cancel(void **state) {
    (void)state;
    publish_t r;
    crew_t crew;
    crew_start(&crew, 2, publish_fn, &r);
    for (int round = 0; round < ROUNDS && !failure[0]; round++) {
        memset(&r, 0, sizeof r);
        assert_int_equal(hk_token_new(&r.token), 0);
        crew_round(&crew, round);
        EXPECT(r.seen == round + 1);
        hk_token_free(r.token);
    }
    crew_stop(&crew);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unregister_waits_for_the_callback_running_on_another_thread_to_finish),
        cmocka_unit_test(freeing_a_linked_token_waits_for_its_callback_running_in_a_parent_cancel),
        cmocka_unit_test(
            concurrent_cancels_from_8_threads_have_one_winner_that_runs_each_callback_once),
        cmocka_unit_test(
            register_and_unregister_racing_with_cancel_run_each_callback_iff_unregister_returned_0),
        cmocka_unit_test(
            register_racing_with_cancel_runs_each_callback_once_on_the_right_thread_in_order),
        cmocka_unit_test(sleepers_waiters_and_fd_pollers_all_wake_on_one_cancel),
        cmocka_unit_test(freeing_a_linked_token_while_its_parents_are_cancelled_elsewhere_is_safe),
        cmocka_unit_test(concurrent_first_calls_to_fd_all_return_the_same_fd),
        cmocka_unit_test(cancel_after_racing_with_cancel_and_free_runs_the_callback_at_most_once),
        cmocka_unit_test(is_cancelled_publishes_writes_made_before_the_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
