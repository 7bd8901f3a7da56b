/*
 * Work queues: try_enqueue on a full queue (-EAGAIN), blocking enqueue with
 * a timeout, a cancellation token and room appearing, shutdown that drains
 * (and refuses new items), discards (destroying left-overs, cancelling the
 * items' token) or runs out of drain time, failed items, many producers and
 * workers with exact counts (run under TSan by make test-tsan), left-overs
 * of a host that never ran, and configuration errors (exit 78).
 * Waits poll with deadlines; the only real-time waits are the timeouts
 * under test.
 */
#include <pthread.h>
#include <sched.h>

#include "jobstest.h"

static atomic_int ran, destroyed, sum;
static hk_token_t *release; /* items with arg == &release wait for it */

static int work(void *arg, hk_token_t *token) {
    (void)token;
    int *v = arg;
    atomic_fetch_add(&sum, *v);
    atomic_fetch_add(&ran, 1);
    return 0;
}

static atomic_bool blocker_running;
static int blocker(void *arg, hk_token_t *token) {
    (void)arg;
    atomic_store(&blocker_running, true);
    if (release)
        hk_token_wait(release);
    else
        hk_token_wait(token); /* until the queue discards */
    atomic_fetch_add(&ran, 1);
    return 0;
}

static int failing(void *arg, hk_token_t *token) {
    (void)arg;
    (void)token;
    atomic_fetch_add(&ran, 1);
    return -EIO;
}

static void destroy_int(void *arg) {
    atomic_fetch_add(&destroyed, 1);
    free(arg);
}

static int *num(int v) {
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = v;
    return p;
}

static void reset(void) {
    atomic_store(&ran, 0);
    atomic_store(&destroyed, 0);
    atomic_store(&sum, 0);
    atomic_store(&blocker_running, false);
    release = NULL;
}

static bool is_true(void *arg) { return atomic_load((atomic_bool *)arg); }
static bool ran_reached(void *arg) { return atomic_load(&ran) >= *(int *)arg; }
static bool logged(void *arg) { return capture_find(cap, arg, 0) >= 0; }

static hk_queue_t *add_queue(hk_builder_t *b, unsigned workers, size_t capacity) {
    hk_queue_t *q = NULL;
    hk_queue_def_t def = {.name = "q", .workers = workers, .capacity = capacity};
    assert_int_equal(hk_builder_add_queue(b, &def, &q), 0);
    assert_non_null(q);
    return q;
}

/* ---- tests ------------------------------------------------------------------------ */

static void try_enqueue_fails_at_once_when_full(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 1, 2);
    assert_int_equal(hk_queue_capacity(q), 2);
    assert_int_equal(hk_queue_workers(q), 1);
    int *a = num(1), *c = num(2), *d = num(3);
    assert_int_equal(hk_queue_try_enqueue(q, work, a, destroy_int), 0);
    assert_int_equal(hk_queue_try_enqueue(q, work, c, destroy_int), 0);
    assert_int_equal(hk_queue_try_enqueue(q, work, d, destroy_int), -EAGAIN);
    assert_int_equal(hk_queue_depth(q), 2);
    assert_int_equal(atomic_load(&destroyed), 0); /* a refused item stays the caller's */
    free(d);
    assert_int_equal(hk_queue_try_enqueue(q, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(hk_queue_try_enqueue(NULL, work, NULL, NULL), -EINVAL);
    /* the host never runs: the left-overs are destroyed with the builder, never run */
    hk_builder_free(b);
    assert_int_equal(atomic_load(&destroyed), 2);
    assert_int_equal(atomic_load(&ran), 0);
}

static void enqueue_waits_up_to_its_timeout(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 1, 1);
    assert_int_equal(hk_queue_enqueue(q, work, num(1), destroy_int, 0, NULL), 0);
    int *x = num(2);
    uint64_t t0 = mono_ns();
    assert_int_equal(hk_queue_enqueue(q, work, x, destroy_int, 30, NULL), -ETIMEDOUT);
    assert_true(mono_ns() - t0 >= 30000000u);
    assert_int_equal(hk_queue_enqueue(q, work, x, destroy_int, 0, NULL), -ETIMEDOUT);
    free(x);
    hk_builder_free(b);
    assert_int_equal(atomic_load(&destroyed), 1);
}

typedef struct producer {
    hk_queue_t *q;
    hk_token_t *cancel;
    atomic_int tid;
    int rc;
    int *item;
} producer_t;

static void *produce_blocking(void *arg) {
    producer_t *p = arg;
    atomic_store(&p->tid, current_tid());
    p->rc = hk_queue_enqueue(p->q, work, p->item, destroy_int, UINT64_MAX, p->cancel);
    return NULL;
}

static bool producer_blocked(void *arg) {
    producer_t *p = arg;
    int tid = atomic_load(&p->tid);
    return tid && tid_is_blocked(tid);
}

static void enqueue_is_cancelled_by_its_token(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 1, 1);
    assert_int_equal(hk_queue_enqueue(q, work, num(1), destroy_int, 0, NULL), 0);
    producer_t p = {.q = q, .item = num(2)};
    assert_int_equal(hk_token_new(&p.cancel), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce_blocking, &p), 0);
    assert_true(wait_until(producer_blocked, &p, 10000));
    hk_token_cancel(p.cancel);
    pthread_join(th, NULL);
    assert_int_equal(p.rc, -ECANCELED);
    /* an already cancelled token fails at once, also with a timeout */
    assert_int_equal(hk_queue_enqueue(q, work, p.item, destroy_int, 1000000, p.cancel), -ECANCELED);
    free(p.item);
    hk_token_free(p.cancel);
    hk_builder_free(b);
    assert_int_equal(atomic_load(&destroyed), 1);
}

static void a_blocked_enqueue_goes_in_when_room_appears(void **state) {
    (void)state;
    reset();
    hk_token_new(&release);
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 1, 1);
    running_t r;
    start_host(b, &r);
    assert_int_equal(hk_queue_enqueue(q, blocker, NULL, NULL, UINT64_MAX, NULL), 0);
    assert_true(wait_until(is_true, &blocker_running, 10000));
    assert_int_equal(hk_queue_enqueue(q, work, num(5), destroy_int, 0, NULL), 0); /* fills it */
    producer_t p = {.q = q, .item = num(7)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce_blocking, &p), 0);
    assert_true(wait_until(producer_blocked, &p, 10000));
    hk_token_cancel(release);
    pthread_join(th, NULL);
    assert_int_equal(p.rc, 0);
    int three = 3;
    assert_true(wait_until(ran_reached, &three, 10000));
    assert_int_equal(atomic_load(&sum), 12);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_int_equal(atomic_load(&destroyed), 2);
    assert_contains(m, "hostkit_queue_enqueued_total{queue=\"q\"} 3");
    assert_contains(m, "hostkit_queue_processed_total{queue=\"q\"} 3");
    assert_contains(m, "hostkit_queue_depth{queue=\"q\"} 0");
    assert_contains(m, "hostkit_queue_wait_seconds_count{queue=\"q\"} 3");
    assert_contains(m, "hostkit_queue_run_seconds_count{queue=\"q\"} 3");
    hk_token_free(release);
    release = NULL;
}

/* Starts a host with one worker busy on a blocker and 5 items queued behind it, then stops it. */
static void stop_with_backlog(hk_builder_t *b, hk_queue_t *q, running_t *r) {
    start_host(b, r);
    assert_int_equal(hk_queue_enqueue(q, blocker, NULL, NULL, UINT64_MAX, NULL), 0);
    assert_true(wait_until(is_true, &blocker_running, 10000));
    for (int i = 1; i <= 5; i++)
        assert_int_equal(hk_queue_try_enqueue(q, work, num(i), destroy_int), 0);
    hk_host_stop(r->h);
}

static void shutdown_drains_what_is_queued_and_refuses_more(void **state) {
    (void)state;
    reset();
    hk_token_new(&release);
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 1, 16);
    running_t r;
    stop_with_backlog(b, q, &r);
    assert_true(wait_until(logged, "Queue q draining 5 queued items", 10000));
    int *x = num(100);
    assert_int_equal(hk_queue_try_enqueue(q, work, x, destroy_int), -ESHUTDOWN);
    assert_int_equal(hk_queue_enqueue(q, work, x, destroy_int, 1000, NULL), -ESHUTDOWN);
    free(x);
    hk_token_cancel(release);
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_int_equal(atomic_load(&ran), 6);
    assert_int_equal(atomic_load(&sum), 15);
    assert_int_equal(atomic_load(&destroyed), 5);
    assert_logged("info: hostkit.jobs[0] Queue q stopped (Drain): 5 items processed during shutdown, "
                  "0 left over and destroyed");
    assert_contains(m, "hostkit_queue_rejected_total{queue=\"q\"} 2");
    hk_token_free(release);
    release = NULL;
}

static void shutdown_discards_and_destroys_what_is_queued(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Queues:q:OnStop", "discard");
    hk_queue_t *q = add_queue(b, 1, 16);
    running_t r;
    stop_with_backlog(b, q, &r); /* the blocker waits for the items' token */
    assert_int_equal(finish_host(&r, NULL, 0), 0);
    assert_int_equal(atomic_load(&ran), 1); /* only the blocker, whose token was cancelled */
    assert_int_equal(atomic_load(&sum), 0);
    assert_int_equal(atomic_load(&destroyed), 5);
    assert_logged("info: hostkit.jobs[0] Queue q stopped (Discard): 0 items processed during "
                  "shutdown, 5 left over and destroyed");
}

static void a_drain_that_runs_out_of_time_discards_the_rest(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Queues:q:DrainTimeout", "50ms");
    hk_queue_t *q = add_queue(b, 1, 16);
    running_t r;
    stop_with_backlog(b, q, &r); /* the blocker waits until the drain gives up */
    assert_int_equal(finish_host(&r, NULL, 0), 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(atomic_load(&destroyed), 5);
    assert_logged("warn: hostkit.jobs[0] Queue q could not drain within 50 ms; discarding the rest");
    assert_logged("Queue q stopped (Drain): 0 items processed during shutdown, 5 left over and "
                  "destroyed");
}

static void failed_items_are_counted_and_logged(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_queue_t *q = add_queue(b, 2, 4);
    running_t r;
    start_host(b, &r);
    assert_int_equal(hk_queue_enqueue(q, failing, num(0), destroy_int, UINT64_MAX, NULL), 0);
    int one = 1;
    assert_true(wait_until(ran_reached, &one, 10000));
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0);
    assert_int_equal(atomic_load(&destroyed), 1); /* destroyed after a failed run too */
    assert_contains(m, "hostkit_queue_failed_total{queue=\"q\"} 1");
    assert_logged("warn: hostkit.jobs[0] Queue q: a work item failed: Input/output error");
}

/* ---- many producers ---------------------------------------------------------------- */

#define PRODUCERS 8
#define PER_PRODUCER 4000

typedef struct many {
    hk_queue_t *q;
    int base;
    int failures;
} many_t;

static void *produce_many(void *arg) {
    many_t *m = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        int *v = malloc(sizeof *v);
        if (!v) {
            m->failures++;
            continue;
        }
        *v = m->base + i;
        /* alternate the blocking and the non-blocking call */
        int rc;
        if (i % 2)
            rc = hk_queue_enqueue(m->q, work, v, destroy_int, UINT64_MAX, NULL);
        else
            while ((rc = hk_queue_try_enqueue(m->q, work, v, destroy_int)) == -EAGAIN)
                sched_yield();
        if (rc != 0) {
            free(v);
            m->failures++;
        }
    }
    return NULL;
}

static void many_producers_and_workers_lose_nothing(void **state) {
    (void)state;
    reset();
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Logging:LogLevel:Default", "Information");
    hk_queue_t *q = add_queue(b, 4, 64);
    running_t r;
    start_host(b, &r);
    pthread_t th[PRODUCERS];
    many_t ms[PRODUCERS];
    long long expect = 0;
    for (int p = 0; p < PRODUCERS; p++) {
        ms[p] = (many_t){q, p * PER_PRODUCER, 0};
        for (int i = 0; i < PER_PRODUCER; i++)
            expect += p * PER_PRODUCER + i;
        assert_int_equal(pthread_create(&th[p], NULL, produce_many, &ms[p]), 0);
    }
    for (int p = 0; p < PRODUCERS; p++) {
        pthread_join(th[p], NULL);
        assert_int_equal(ms[p].failures, 0);
    }
    char m[16384];
    assert_int_equal(finish_host(&r, m, sizeof m), 0); /* drains what is left */
    assert_int_equal(atomic_load(&ran), PRODUCERS * PER_PRODUCER);
    assert_int_equal(atomic_load(&destroyed), PRODUCERS * PER_PRODUCER);
    assert_int_equal((long long)atomic_load(&sum), expect);
    assert_contains(m, "hostkit_queue_enqueued_total{queue=\"q\"} 32000");
    assert_contains(m, "hostkit_queue_processed_total{queue=\"q\"} 32000");
    assert_contains(m, "hostkit_queue_depth{queue=\"q\"} 0");
}

/* ---- configuration ------------------------------------------------------------------- */

static void config_error(const char *key, const char *value, const char *line) {
    capture_free(cap);
    cap = capture_new();
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), key, value);
    hk_queue_t *q = NULL;
    hk_queue_def_t def = {.name = "q"};
    assert_int_equal(hk_builder_add_queue(b, &def, &q), -EINVAL);
    assert_null(q);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 78);
    hk_builder_free(b);
    assert_logged(line);
}

static void bad_queue_settings_fail_the_build_with_78(void **state) {
    (void)state;
    config_error("Queues:q:Workers", "0", "Invalid configuration: Queues:q:Workers: \"0\"");
    config_error("Queues:q:Capacity", "lots", "Invalid configuration: Queues:q:Capacity: \"lots\"");
    config_error("Queues:q:OnStop", "Keep",
                 "Invalid configuration: Queues:q:OnStop: \"Keep\" is not one of Drain, Discard "
                 "(from override)");
    config_error("Queues:q:DrainTimeout", "5 s",
                 "Invalid configuration: Queues:q:DrainTimeout: \"5 s\" is not a duration (use "
                 "500ms, 30s, 5m, 1h or hh:mm:ss): unexpected character at position 2 (from override)");
}

static void configuration_wins_over_the_definition(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Queues:q:Workers", "3");
    hk_config_set(hk_builder_config(b), "Queues:q:Capacity", "7");
    hk_queue_t *q = add_queue(b, 1, 100);
    assert_int_equal(hk_queue_workers(q), 3);
    assert_int_equal(hk_queue_capacity(q), 7);
    hk_builder_free(b);
    /* defaults: 1 worker, 1024 items */
    b = test_builder(cap);
    q = NULL;
    hk_queue_def_t def = {.name = "d"};
    assert_int_equal(hk_builder_add_queue(b, &def, &q), 0);
    assert_int_equal(hk_queue_workers(q), 1);
    assert_int_equal(hk_queue_capacity(q), 1024);
    hk_builder_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(try_enqueue_fails_at_once_when_full, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(enqueue_waits_up_to_its_timeout, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(enqueue_is_cancelled_by_its_token, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_blocked_enqueue_goes_in_when_room_appears, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(shutdown_drains_what_is_queued_and_refuses_more, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(shutdown_discards_and_destroys_what_is_queued, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(a_drain_that_runs_out_of_time_discards_the_rest, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(failed_items_are_counted_and_logged, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(many_producers_and_workers_lose_nothing, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(bad_queue_settings_fail_the_build_with_78, host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(configuration_wins_over_the_definition, host_setup, host_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
