/*
 * Unit tests for the log's delivery (src/log/log.c): the bounded queue and
 * its writer thread. QueueFullMode=Wait blocks producers and loses nothing;
 * DropWrite counts drops and reports them in a warning; many threads never
 * interleave or reorder a thread's lines; flush waits for everything queued;
 * freeing drains; a sink may log; the host flushes on its exit paths.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hosttest.h"
#include "log/log.h"
#include "testutil.h"

/* ---- a custom sink with a gate ------------------------------------------- */

typedef struct gsink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gated;          /* write blocks while set */
    int in_write;        /* a write is blocked at the gate */
    atomic_int in_flight;
    atomic_bool overlapped;
    char **lines;
    size_t n, cap;
    int flushes, reopens, destroyed;
    hk_log_t *log;       /* for sinks that log or flush from write */
    bool log_from_write, flush_from_write;
    atomic_int writer_tid;
} gsink_t;

static void gsink_init(gsink_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void gsink_fini(gsink_t *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->lines[i]);
    free(s->lines);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static void g_write(void *data, const hk_log_record_t *r) {
    gsink_t *s = data;
    if (atomic_fetch_add(&s->in_flight, 1) != 0)
        atomic_store(&s->overlapped, true);
    atomic_store(&s->writer_tid, current_tid());
    pthread_mutex_lock(&s->mu);
    while (s->gated) {
        s->in_write = 1;
        pthread_cond_wait(&s->cv, &s->mu);
    }
    s->in_write = 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->lines = realloc(s->lines, s->cap * sizeof *s->lines);
    }
    char *line = malloc(strlen(r->category) + strlen(r->message) + 32);
    sprintf(line, "%s|%s|%s", hk_log_level_tag(r->level), r->category, r->message);
    s->lines[s->n++] = line;
    pthread_mutex_unlock(&s->mu);
    if (s->flush_from_write)
        hk_log_flush(s->log); /* must return at once on the writer thread */
    if (s->log_from_write && strncmp(r->message, "echo", 4) != 0)
        hk_info(hk_log_get(s->log, "Sink"), "echo of %s", r->message);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void g_flush(void *data) {
    gsink_t *s = data;
    pthread_mutex_lock(&s->mu);
    s->flushes++;
    pthread_mutex_unlock(&s->mu);
}

static void g_reopen(void *data) {
    gsink_t *s = data;
    pthread_mutex_lock(&s->mu);
    s->reopens++;
    pthread_mutex_unlock(&s->mu);
}

static void g_destroy(void *data) { ((gsink_t *)data)->destroyed++; }

static const hk_log_sink_ops_t g_ops = {g_write, g_flush, g_reopen, g_destroy};

static void gate(gsink_t *s, bool on) {
    pthread_mutex_lock(&s->mu);
    s->gated = on;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static bool gate_reached(void *p) {
    gsink_t *s = p;
    pthread_mutex_lock(&s->mu);
    bool r = s->in_write;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static size_t count(gsink_t *s, const char *needle) {
    size_t c = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        if (strstr(s->lines[i], needle))
            c++;
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* A log whose console is silenced, with the gated sink and some settings. */
typedef struct fixture {
    hk_log_t *log;
    hk_config_t *cfg;
    gsink_t sink;
    hk_logger_t *lg;
} fixture_t;

static void configure(fixture_t *f, const char *const *kv) {
    for (size_t i = 0; kv && kv[i]; i += 2)
        assert_int_equal(hk_config_set(f->cfg, kv[i], kv[i + 1]), 0);
    assert_int_equal(hk_config_set(f->cfg, "Logging:Console:LogLevel:Default", "None"), 0);
    assert_int_equal(hk__log_configure(f->log, f->cfg), 0);
}

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || hk__log_new(&f->log) < 0 || hk_config_new(&f->cfg) < 0)
        return -1;
    gsink_init(&f->sink);
    f->sink.log = f->log;
    if (hk_log_add_sink(f->log, "Gate", &g_ops, &f->sink) < 0)
        return -1;
    f->lg = hk_log_get(f->log, "Q");
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    gate(&f->sink, false);
    hk__log_free(f->log);
    hk_config_free(f->cfg);
    gsink_fini(&f->sink);
    free(f);
    return 0;
}

/* ---- Wait mode --------------------------------------------------------------- */

typedef struct producer {
    hk_logger_t *lg;
    int from, n;
    atomic_int done;
    atomic_int tid;
} producer_t;

static void *produce(void *p) {
    producer_t *pr = p;
    atomic_store(&pr->tid, current_tid());
    for (int i = 0; i < pr->n; i++) {
        hk_info(pr->lg, "msg %d", pr->from + i);
        atomic_fetch_add(&pr->done, 1);
    }
    return NULL;
}

static bool producer_blocked(void *p) {
    producer_t *pr = p;
    int tid = atomic_load(&pr->tid);
    return tid && tid_is_blocked(tid) && atomic_load(&pr->done) < pr->n;
}

static void full_queue_in_wait_mode_blocks_the_producer_and_loses_nothing(void **state) {
    fixture_t *f = *state;
    configure(f, (const char *const[]){"Logging:MaxQueueLength", "4", NULL});
    gate(&f->sink, true);
    producer_t pr = {.lg = f->lg, .from = 0, .n = 50};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce, &pr), 0);
    assert_true(wait_until(gate_reached, &f->sink, 10000));
    assert_true(wait_until(producer_blocked, &pr, 10000));
    /* at most one batch (<= 4) in the sink's hands, at most 4 queued, the rest waits */
    int done = atomic_load(&pr.done);
    assert_true(done <= 4 + 4);
    assert_true(done < 50);
    gate(&f->sink, false);
    pthread_join(th, NULL);
    hk_log_flush(f->log);
    assert_int_equal(f->sink.n, 50);
    for (int i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "info|Q|msg %d", i);
        assert_string_equal(f->sink.lines[i], want);
    }
    hk_log_stats_t st;
    hk_log_stats(f->log, &st);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.messages[HK_LOG_INFO], 50);
}

/* ---- DropWrite --------------------------------------------------------------------- */

static void full_queue_in_drop_mode_counts_and_reports_the_drops(void **state) {
    fixture_t *f = *state;
    configure(f, (const char *const[]){"Logging:MaxQueueLength", "4", "Logging:QueueFullMode",
                                       "DropWrite", NULL});
    gate(&f->sink, true);
    hk_info(f->lg, "first");
    assert_true(wait_until(gate_reached, &f->sink, 10000)); /* the writer holds "first" */
    for (int i = 0; i < 30; i++)
        hk_info(f->lg, "msg %d", i); /* never blocks: 4 queued, 26 dropped */
    hk_log_stats_t st;
    hk_log_stats(f->log, &st);
    assert_int_equal(st.dropped, 26);
    gate(&f->sink, false);
    hk_log_flush(f->log);
    assert_int_equal(count(&f->sink, "info|Q|"), 1 + 4);
    for (int i = 0; i < 4; i++) {
        char want[32];
        snprintf(want, sizeof want, "info|Q|msg %d", i);
        assert_string_equal(f->sink.lines[1 + i], want);
    }
    assert_int_equal(count(&f->sink, "warn|hostkit.logging|26 log messages dropped"), 1);
    /* reported once: more traffic without drops adds no warning */
    hk_info(f->lg, "later");
    hk_log_flush(f->log);
    assert_int_equal(count(&f->sink, "log messages dropped"), 1);
    assert_int_equal(count(&f->sink, "info|Q|later"), 1);
}

/* ---- many threads ------------------------------------------------------------------ */

#define NTHREADS 8
#define NMSG 3000

static void many_threads_never_interleave_or_reorder_a_threads_lines(void **state) {
    fixture_t *f = *state;
    configure(f, (const char *const[]){"Logging:MaxQueueLength", "64", NULL});
    producer_t pr[NTHREADS];
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        char cat[16];
        snprintf(cat, sizeof cat, "T%d", t);
        pr[t] = (producer_t){.lg = hk_log_get(f->log, cat), .from = 0, .n = NMSG};
        assert_int_equal(pthread_create(&th[t], NULL, produce, &pr[t]), 0);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    hk_log_flush(f->log);
    assert_false(atomic_load(&f->sink.overlapped));
    assert_int_equal(f->sink.n, (size_t)NTHREADS * NMSG);
    int next[NTHREADS] = {0};
    for (size_t i = 0; i < f->sink.n; i++) {
        int t, seq;
        if (sscanf(f->sink.lines[i], "info|T%d|msg %d", &t, &seq) != 2 || t < 0 || t >= NTHREADS)
            fail_msg("mangled line %zu: %s", i, f->sink.lines[i]);
        if (seq != next[t])
            fail_msg("thread %d: got %d, expected %d", t, seq, next[t]);
        next[t]++;
    }
    /* written on one thread that is none of the producers */
    assert_int_not_equal(atomic_load(&f->sink.writer_tid), current_tid());
}

/* ---- flush, free, recursion ----------------------------------------------------- */

typedef struct releaser {
    gsink_t *sink;
    int waiter_tid;
    bool saw_block;
} releaser_t;

static bool waiter_blocked(void *p) { return tid_is_blocked(((releaser_t *)p)->waiter_tid); }

/* Opens the gate once the flushing thread sleeps in hk_log_flush. */
static void *release_when_waiting(void *p) {
    releaser_t *r = p;
    r->saw_block = wait_until(waiter_blocked, r, 10000);
    gate(r->sink, false);
    return NULL;
}

static void flush_waits_until_a_slow_sink_has_everything(void **state) {
    fixture_t *f = *state;
    configure(f, NULL);
    gate(&f->sink, true);
    for (int i = 0; i < 10; i++)
        hk_info(f->lg, "msg %d", i);
    assert_true(wait_until(gate_reached, &f->sink, 10000));
    releaser_t r = {&f->sink, current_tid(), false};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_when_waiting, &r), 0);
    hk_log_flush(f->log); /* returns only after the gate opened and all 10 were written */
    assert_int_equal(f->sink.n, 10);
    pthread_join(th, NULL);
    assert_true(r.saw_block);
    assert_true(f->sink.flushes >= 1);
}

static void free_drains_the_queue_then_destroys_the_sinks(void **state) {
    fixture_t *f = *state;
    configure(f, NULL);
    for (int i = 0; i < 100; i++)
        hk_info(f->lg, "msg %d", i);
    hk__log_free(f->log); /* no flush first */
    assert_int_equal(f->sink.n, 100);
    assert_int_equal(f->sink.destroyed, 1);
    assert_int_equal(hk__log_new(&f->log), 0); /* for teardown */
}

static void a_sink_may_log_and_flush_without_deadlock(void **state) {
    fixture_t *f = *state;
    configure(f, (const char *const[]){"Logging:MaxQueueLength", "2", NULL});
    f->sink.log_from_write = true;
    f->sink.flush_from_write = true;
    for (int i = 0; i < 20; i++)
        hk_info(f->lg, "msg %d", i);
    hk_log_flush(f->log);
    hk_log_flush(f->log); /* the echoes queued by the last batch */
    assert_int_equal(count(&f->sink, "info|Q|msg"), 20);
    assert_int_equal(count(&f->sink, "info|Sink|echo of msg"), 20);
}

static void count_line(const hk_log_record_t *rec, void *data) {
    (void)rec;
    (*(int *)data)++;
}

/* Synchronous delivery (a console callback is set): a custom sink that logs
 * from its write gets its message written after the current one, on the same
 * thread, not recursively (which would wait for the lock this thread holds). */
static void a_sink_may_log_while_the_log_is_synchronous(void **state) {
    fixture_t *f = *state;
    configure(f, NULL);
    int console = 0;
    hk_log_set_sink(f->log, count_line, &console);
    f->sink.log_from_write = true;
    for (int i = 0; i < 5; i++)
        hk_info(f->lg, "msg %d", i);
    /* no flush needed: synchronous */
    assert_int_equal(count(&f->sink, "info|Q|msg"), 5);
    assert_int_equal(count(&f->sink, "info|Sink|echo of msg"), 5);
    for (int i = 0; i < 5; i++) { /* each echo right after its message */
        char want[32];
        snprintf(want, sizeof want, "info|Sink|echo of msg %d", i);
        assert_string_equal(f->sink.lines[2 * i + 1], want);
    }
    hk_log_set_sink(f->log, NULL, NULL);
}

static void reopen_reaches_custom_sinks(void **state) {
    fixture_t *f = *state;
    configure(f, NULL);
    hk_info(f->lg, "before");
    hk_log_reopen(f->log);
    hk_info(f->lg, "after");
    hk_log_flush(f->log);
    pthread_mutex_lock(&f->sink.mu);
    int reopens = f->sink.reopens;
    pthread_mutex_unlock(&f->sink.mu);
    assert_int_equal(reopens, 1);
}

static void stats_count_messages_per_level(void **state) {
    fixture_t *f = *state;
    configure(f, (const char *const[]){"Logging:LogLevel:Default", "Trace", NULL});
    hk_trace(f->lg, "t");
    hk_debug(f->lg, "d");
    hk_log_warn(f->lg, "w {N}", 1);
    hk_log_warn(f->lg, "w {N}", 2);
    hk_critical(f->lg, "c");
    hk_log_flush(f->log);
    hk_log_stats_t st;
    hk_log_stats(f->log, &st);
    assert_int_equal(st.messages[HK_LOG_TRACE], 1);
    assert_int_equal(st.messages[HK_LOG_DEBUG], 1);
    assert_int_equal(st.messages[HK_LOG_INFO], 0);
    assert_int_equal(st.messages[HK_LOG_WARN], 2);
    assert_int_equal(st.messages[HK_LOG_ERROR], 0);
    assert_int_equal(st.messages[HK_LOG_CRITICAL], 1);
    hk_log_stats(NULL, &st);
    assert_int_equal(st.messages[HK_LOG_CRITICAL], 0);
}

static void bad_queue_settings_are_configuration_errors(void **state) {
    fixture_t *f = *state;
    assert_int_equal(hk_config_set(f->cfg, "Logging:MaxQueueLength", "0"), 0);
    assert_int_equal(hk_config_set(f->cfg, "Logging:QueueFullMode", "Block"), 0);
    assert_true(hk__log_configure(f->log, f->cfg) < 0);
    assert_int_equal(hk_config_error_count(f->cfg), 2);
    const char *e0 = hk_config_error(f->cfg, 0), *e1 = hk_config_error(f->cfg, 1);
    assert_true(strstr(e0, "Logging:MaxQueueLength") || strstr(e1, "Logging:MaxQueueLength"));
    assert_true(strstr(e0, "Logging:QueueFullMode") || strstr(e1, "Logging:QueueFullMode"));
}

/* ---- the host's exit paths flush ------------------------------------------------ */

static gsink_t *g_host_sink;

static hk_builder_t *host_builder(gsink_t *s) {
    hk_builder_t *b = hk_builder_new(0, NULL);
    assert_non_null(b);
    hk_log_t *log = hk_builder_log(b);
    assert_int_equal(hk_log_add_sink(log, "Gate", &g_ops, s), 0);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:HandleSignals", "false");
    hk_config_set(c, "Logging:Console:LogLevel:Default", "None");
    return b;
}

static void failed_build_has_written_its_errors_when_build_returns(void **state) {
    (void)state;
    gsink_t s;
    gsink_init(&s);
    hk_builder_t *b = host_builder(&s);
    hk_config_set(hk_builder_config(b), "Host:ShutdownTimeoutSeconds", "soon");
    hk_host_t *h = NULL;
    assert_true(hk_builder_build(b, &h) < 0);
    assert_int_equal(hk_builder_exit_code(b), 78);
    /* no flush here: the build did it */
    assert_true(count(&s, "Host:ShutdownTimeoutSeconds") >= 1);
    hk_builder_free(b);
    gsink_fini(&s);
}

static int fail_start(hk_service_t *svc, hk_token_t *t) {
    (void)t;
    return hk_service_fail(svc, -ECONNREFUSED, "connecting to the database");
}

static void failed_run_has_written_every_line_when_run_returns(void **state) {
    (void)state;
    gsink_t s;
    gsink_init(&s);
    g_host_sink = &s;
    hk_builder_t *b = host_builder(&s);
    assert_int_equal(hk_builder_add_hosted(b, "db", fail_start, NULL, NULL, NULL), 0);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_int_equal(hk_host_run(h), 1);
    /* no flush here: run did it */
    assert_true(count(&s, "connecting to the database") >= 1);
    hk_host_free(h);
    assert_int_equal(s.destroyed, 1);
    gsink_fini(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_queue_in_wait_mode_blocks_the_producer_and_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(full_queue_in_drop_mode_counts_and_reports_the_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(many_threads_never_interleave_or_reorder_a_threads_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_waits_until_a_slow_sink_has_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(free_drains_the_queue_then_destroys_the_sinks, setup, teardown),
        cmocka_unit_test_setup_teardown(a_sink_may_log_and_flush_without_deadlock, setup, teardown),
        cmocka_unit_test_setup_teardown(a_sink_may_log_while_the_log_is_synchronous, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_reaches_custom_sinks, setup, teardown),
        cmocka_unit_test_setup_teardown(stats_count_messages_per_level, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_queue_settings_are_configuration_errors, setup, teardown),
        cmocka_unit_test(failed_build_has_written_its_errors_when_build_returns),
        cmocka_unit_test(failed_run_has_written_every_line_when_run_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
