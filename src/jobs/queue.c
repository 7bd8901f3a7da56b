/*
 * In-memory work queues: a bounded ring of work items (function, argument,
 * destroy) under one mutex with two condition variables, drained by worker
 * threads that a background service starts and stops; shutdown drains
 * (within a timeout) or discards, and left-over items are destroyed.
 * Depends on src/common, src/config (recording errors), src/core
 * (hk__builder_fail) and the public headers.
 *
 * States of a queue (guarded by mu):
 *   open (accepting; workers run items while execute runs)
 *     -- stopping token cancelled (queue_execute) --> closed
 *   closed + Discard: items taken out and destroyed, workers exit
 *   closed + Drain: workers exit once the ring is empty; at the drain
 *     deadline `abort` is cancelled and what is left is destroyed
 * A restart of the service opens the queue again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "config/config_int.h"
#include "core/host_int.h"
#include "hostkit/jobs.h"
#include "hostkit/metrics.h"
#include "jobs/jobs_int.h"

typedef struct item {
    hk_work_cb fn;
    void *arg;
    hk_destroy_cb destroy;
    uint64_t enq_ns;
} item_t;

struct hk_queue_s {
    char *name;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, idle; /* CLOCK_MONOTONIC */
    item_t *ring;
    size_t cap, head, count;
    atomic_size_t count_hint; /* count, readable without mu (idle workers spin on it) */
    unsigned waiting_producers, waiting_consumers;
    bool closed;       /* not accepting */
    bool exit_workers; /* workers leave once the ring is empty */
    unsigned alive;    /* worker threads that have not finished */
    unsigned workers;
    hk_queue_on_stop_t on_stop;
    uint64_t drain_timeout_ms;
    hk_token_t *abort; /* handed to items; cancelled when work is discarded */
    atomic_ullong processed_in_stop;
    hk_logger_t *lg;
    hk_gauge_t *depth;
    hk_counter_t *enqueued, *processed, *failed, *rejected;
    hk_histogram_t *wait_s, *run_s;
};

static void destroy_item(item_t *it) {
    if (it->destroy)
        it->destroy(it->arg);
}

static void queue_free(void *data) {
    hk_queue_t *q = data;
    for (size_t i = 0; i < q->count; i++)
        destroy_item(&q->ring[(q->head + i) % q->cap]);
    hk_token_free(q->abort);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->idle);
    pthread_mutex_destroy(&q->mu);
    hk__free(q->ring);
    hk__free(q->name);
    hk__free(q);
}

/* ---- producers ------------------------------------------------------------- */

/* Pushes under mu (room checked by the caller). */
static void push_locked(hk_queue_t *q, hk_work_cb fn, void *arg, hk_destroy_cb destroy) {
    size_t at = q->head + q->count;
    q->ring[at >= q->cap ? at - q->cap : at] = (item_t){fn, arg, destroy, hk__now_ns()};
    q->count++;
    atomic_store_explicit(&q->count_hint, q->count, memory_order_relaxed);
    if (q->waiting_consumers)
        pthread_cond_signal(&q->not_empty);
}

static void pushed(hk_queue_t *q) {
    hk_gauge_inc(q->depth);
    hk_counter_inc(q->enqueued);
}

int hk_queue_try_enqueue(hk_queue_t *q, hk_work_cb fn, void *arg, hk_destroy_cb destroy) {
    if (!q || !fn)
        return -EINVAL;
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (q->closed)
        rc = -ESHUTDOWN;
    else if (q->count == q->cap)
        rc = -EAGAIN;
    else
        push_locked(q, fn, arg, destroy);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0)
        pushed(q);
    else
        hk_counter_inc(q->rejected);
    return rc;
}

static void wake_producers(hk_token_t *token, void *data) {
    (void)token;
    hk_queue_t *q = data;
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

int hk_queue_enqueue(hk_queue_t *q, hk_work_cb fn, void *arg, hk_destroy_cb destroy,
                     uint64_t timeout_ms, hk_token_t *cancel) {
    if (!q || !fn)
        return -EINVAL;
    int rc = hk_queue_try_enqueue(q, fn, arg, destroy);
    if (rc != -EAGAIN)
        return rc;
    /* Full: wait for room, the deadline, the token or the queue closing. */
    struct timespec dl = {0};
    bool timed = timeout_ms != UINT64_MAX;
    if (timed) {
        uint64_t at = hk__deadline_ns(timeout_ms); /* clamped: no overflow */
        dl.tv_sec = (time_t)(at / 1000000000u);
        dl.tv_nsec = (long)(at % 1000000000u);
    }
    hk_token_reg_t reg = {0};
    if (cancel && hk_token_register(cancel, &reg, wake_producers, q) == 1) {
        hk_counter_inc(q->rejected);
        return -ECANCELED;
    }
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->closed) {
            rc = -ESHUTDOWN;
            break;
        }
        if (q->count < q->cap) {
            push_locked(q, fn, arg, destroy);
            rc = 0;
            break;
        }
        if (cancel && hk_token_is_cancelled(cancel)) {
            rc = -ECANCELED;
            break;
        }
        q->waiting_producers++;
        int w = timed ? pthread_cond_timedwait(&q->not_full, &q->mu, &dl)
                      : pthread_cond_wait(&q->not_full, &q->mu);
        q->waiting_producers--;
        if (w == ETIMEDOUT && !q->closed && q->count == q->cap) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (cancel)
        hk_token_unregister(&reg);
    if (rc == 0)
        pushed(q);
    else
        hk_counter_inc(q->rejected);
    return rc;
}

size_t hk_queue_depth(hk_queue_t *q) {
    if (!q)
        return 0;
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t hk_queue_capacity(const hk_queue_t *q) { return q ? q->cap : 0; }
unsigned hk_queue_workers(const hk_queue_t *q) { return q ? q->workers : 0; }

/* ---- workers --------------------------------------------------------------- */

static void run_item(hk_queue_t *q, item_t *it, bool in_stop) {
    uint64_t t0 = hk__now_ns();
    hk_histogram_observe(q->wait_s, (double)(t0 - it->enq_ns) / 1e9);
    int rc = it->fn(it->arg, q->abort);
    hk_histogram_observe(q->run_s, (double)(hk__now_ns() - t0) / 1e9);
    if (rc < 0) {
        hk_counter_inc(q->failed);
        hk_log_warn(q->lg, "Queue {Queue}: a work item failed: {Error}", q->name, hk_log_errno(rc));
    }
    hk_counter_inc(q->processed);
    if (in_stop)
        atomic_fetch_add(&q->processed_in_stop, 1);
    destroy_item(it);
}

/* Up to this many items leave the ring per lock acquisition. */
#define TAKE_MAX 16
/* An idle worker re-checks this many times before sleeping on the condition
 * variable: a producer that keeps up then needs no futex wake-up per item. */
#define SPIN_ROUNDS 2000

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg) {
    hk_queue_t *q = arg;
    item_t batch[TAKE_MAX];
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->count == 0 && !q->exit_workers) {
            pthread_mutex_unlock(&q->mu);
            for (int i = 0; i < SPIN_ROUNDS && atomic_load_explicit(&q->count_hint, memory_order_relaxed) == 0; i++)
                cpu_relax();
            pthread_mutex_lock(&q->mu);
        }
        while (q->count == 0 && !q->exit_workers) {
            q->waiting_consumers++;
            pthread_cond_wait(&q->not_empty, &q->mu);
            q->waiting_consumers--;
        }
        if (q->count == 0)
            break;
        /* a share of what is queued, so the other workers get some too */
        size_t n = q->count / q->workers;
        n = n < 1 ? 1 : n > TAKE_MAX ? TAKE_MAX : n;
        for (size_t i = 0; i < n; i++) {
            batch[i] = q->ring[q->head];
            q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
        }
        q->count -= n;
        atomic_store_explicit(&q->count_hint, q->count, memory_order_relaxed);
        bool in_stop = q->closed;
        if (q->waiting_producers)
            pthread_cond_broadcast(&q->not_full);
        pthread_mutex_unlock(&q->mu);
        hk_gauge_add(q->depth, -(double)n);
        for (size_t i = 0; i < n; i++)
            run_item(q, &batch[i], in_stop);
        pthread_mutex_lock(&q->mu);
    }
    q->alive--;
    pthread_cond_broadcast(&q->idle);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Takes every queued item out and destroys it; returns how many. */
static size_t discard_all(hk_queue_t *q) {
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    item_t *items = n ? hk__malloc(n * sizeof *items) : NULL;
    if (n && !items) { /* out of memory: destroy them under the lock */
        for (size_t i = 0; i < n; i++)
            destroy_item(&q->ring[(q->head + i) % q->cap]);
    } else {
        for (size_t i = 0; i < n; i++)
            items[i] = q->ring[(q->head + i) % q->cap];
    }
    q->head = 0;
    q->count = 0;
    atomic_store_explicit(&q->count_hint, 0, memory_order_relaxed);
    pthread_mutex_unlock(&q->mu);
    hk_gauge_add(q->depth, -(double)n);
    for (size_t i = 0; items && i < n; i++)
        destroy_item(&items[i]);
    hk__free(items);
    return n;
}

static int queue_execute(hk_service_t *svc, hk_token_t *stopping) {
    hk_queue_t *q = hk_service_data(svc);
    hk_token_t *abort_tok = NULL;
    if (hk_token_new(&abort_tok) < 0)
        return hk_service_fail(svc, -ENOMEM, "cannot create the queue's token");
    pthread_t *th = hk__calloc(q->workers, sizeof *th);
    if (!th) {
        hk_token_free(abort_tok);
        return hk_service_fail(svc, -ENOMEM, "out of memory starting %u workers", q->workers);
    }
    pthread_mutex_lock(&q->mu);
    hk_token_free(q->abort); /* the previous execute's, if restarted */
    q->abort = abort_tok;
    q->closed = false;
    q->exit_workers = false;
    q->alive = 0;
    pthread_mutex_unlock(&q->mu);
    atomic_store(&q->processed_in_stop, 0);

    unsigned n = 0;
    int err = 0;
    for (; n < q->workers; n++) {
        pthread_mutex_lock(&q->mu);
        q->alive++;
        pthread_mutex_unlock(&q->mu);
        int prc = pthread_create(&th[n], NULL, worker_main, q);
        if (prc != 0) {
            pthread_mutex_lock(&q->mu);
            q->alive--;
            pthread_mutex_unlock(&q->mu);
            err = -prc;
            break;
        }
    }
    hk_log_debug(q->lg, "Queue {Queue} started {Workers} workers (capacity {Capacity})", q->name, n,
                 (unsigned long long)q->cap);
    if (!err)
        hk_token_wait(stopping);

    /* Stop accepting; wake producers that wait for room. */
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    size_t queued = q->count;
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);

    size_t left = 0;
    bool discard = q->on_stop == HK_QUEUE_DISCARD || err;
    if (discard) {
        left = discard_all(q); /* before the cancel: a worker it frees must find nothing */
        hk_token_cancel(q->abort);
    } else if (queued) {
        hk_log_info(q->lg, "Queue {Queue} draining {Count} queued items", q->name,
                    (unsigned long long)queued);
    }
    pthread_mutex_lock(&q->mu);
    q->exit_workers = true;
    pthread_cond_broadcast(&q->not_empty);
    if (!discard) {
        uint64_t at = hk__deadline_ns(q->drain_timeout_ms);
        struct timespec dl = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
        while (q->alive > 0)
            if (pthread_cond_timedwait(&q->idle, &q->mu, &dl) == ETIMEDOUT)
                break;
    }
    bool late = q->alive > 0;
    pthread_mutex_unlock(&q->mu);
    if (late) {
        hk_log_warn(q->lg, "Queue {Queue} could not drain within {TimeoutMs} ms; discarding the rest",
                    q->name, (unsigned long long)q->drain_timeout_ms);
        left += discard_all(q);
        hk_token_cancel(q->abort);
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    hk__free(th);
    unsigned long long processed = atomic_load(&q->processed_in_stop);
    hk_log_info(q->lg,
                "Queue {Queue} stopped ({OnStop}): {Processed} items processed during shutdown, "
                "{Left} left over and destroyed",
                q->name, discard ? "Discard" : "Drain", processed, (unsigned long long)left);
    if (err)
        return hk_service_fail(svc, err, "cannot start worker thread %u of %u", n + 1, q->workers);
    return 0;
}

/* ---- registration ------------------------------------------------------------ */

static int register_metrics(hk_metrics_t *m, hk_queue_t *q) {
    static const double wait_buckets[] = {1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 60};
    const hk_metric_def_t defs[] = {
        {.type = HK_METRIC_GAUGE, .name = "hostkit_queue_depth",
         .help = "Work items waiting in the queue.", .labels = HK_LABELS("queue")},
        {.type = HK_METRIC_COUNTER, .name = "hostkit_queue_enqueued_total",
         .help = "Work items accepted by the queue.", .labels = HK_LABELS("queue")},
        {.type = HK_METRIC_COUNTER, .name = "hostkit_queue_processed_total",
         .help = "Work items run by the queue's workers.", .labels = HK_LABELS("queue")},
        {.type = HK_METRIC_COUNTER, .name = "hostkit_queue_failed_total",
         .help = "Work items that returned an error.", .labels = HK_LABELS("queue")},
        {.type = HK_METRIC_COUNTER, .name = "hostkit_queue_rejected_total",
         .help = "Enqueue attempts refused (full, timed out, cancelled, shut down).",
         .labels = HK_LABELS("queue")},
        {.type = HK_METRIC_HISTOGRAM, .name = "hostkit_queue_wait_seconds",
         .help = "Time work items waited in the queue.", .labels = HK_LABELS("queue"),
         .buckets = wait_buckets, .nbuckets = HK_ARRAY_SIZE(wait_buckets)},
        {.type = HK_METRIC_HISTOGRAM, .name = "hostkit_queue_run_seconds",
         .help = "Time work items ran.", .labels = HK_LABELS("queue"), .buckets = wait_buckets,
         .nbuckets = HK_ARRAY_SIZE(wait_buckets)},
    };
    hk_metric_t *mt[HK_ARRAY_SIZE(defs)];
    for (size_t i = 0; i < HK_ARRAY_SIZE(defs); i++) {
        int rc = hk_metrics_register(m, &defs[i], &mt[i]);
        if (rc < 0)
            return rc;
    }
    const char *const *lv = HK_LABELS(q->name);
    int rc = hk_metric_gauge(mt[0], lv, &q->depth);
    if (rc == 0)
        rc = hk_metric_counter(mt[1], lv, &q->enqueued);
    if (rc == 0)
        rc = hk_metric_counter(mt[2], lv, &q->processed);
    if (rc == 0)
        rc = hk_metric_counter(mt[3], lv, &q->failed);
    if (rc == 0)
        rc = hk_metric_counter(mt[4], lv, &q->rejected);
    if (rc == 0)
        rc = hk_metric_histogram(mt[5], lv, &q->wait_s);
    if (rc == 0)
        rc = hk_metric_histogram(mt[6], lv, &q->run_s);
    return rc;
}

static const char *const on_stop_names[] = {"Drain", "Discard"};

int hk_builder_add_queue(hk_builder_t *b, const hk_queue_def_t *def, hk_queue_t **ret_queue) {
    if (!b)
        return -EINVAL;
    if (!def || !def->name || !def->name[0] || !ret_queue)
        return hk__builder_fail(b, -EINVAL, "a queue was registered without a name");
    if (strlen(def->name) > 63)
        return hk__builder_fail(b, -EINVAL, "queue name longer than 63 characters");
    hk_config_t *c = hk_builder_config(b);
    char key[160];
    bool ok = true;
    int64_t workers = def->workers ? def->workers : 1;
    snprintf(key, sizeof key, "Queues:%s:Workers", def->name);
    ok &= hk_config_get_int(c, key, workers, 1, 1024, &workers) == 0;
    int64_t cap = def->capacity ? (int64_t)def->capacity : 1024;
    snprintf(key, sizeof key, "Queues:%s:Capacity", def->name);
    ok &= hk_config_get_int(c, key, cap, 1, 100000000, &cap) == 0;
    int on_stop = def->on_stop == HK_QUEUE_DISCARD ? 1 : 0;
    snprintf(key, sizeof key, "Queues:%s:OnStop", def->name);
    ok &= hk_config_get_enum(c, key, on_stop_names, 2, on_stop, &on_stop) == 0;
    double shutdown_s = 30;
    (void)hk_config_get_double(c, "Host:ShutdownTimeoutSeconds", 30, 0, 1e9, &shutdown_s);
    uint64_t drain = def->drain_timeout_ms ? def->drain_timeout_ms : (uint64_t)(shutdown_s * 800);
    snprintf(key, sizeof key, "Queues:%s:DrainTimeout", def->name);
    const char *text = hk_config_get_string(c, key, NULL);
    if (text) {
        int64_t v;
        if (hk_parse_duration_ms(text, &v) < 0 || v < 0) {
            size_t pos = hk__duration_error_pos(text);
            if (pos)
                hk_config_record_error(c, "%s: \"%s\" is not a duration (use 500ms, 30s, 5m, 1h "
                                           "or hh:mm:ss): unexpected character at position %zu "
                                           "(from %s)", key, text, pos, hk_config_source_of(c, key));
            else
                hk_config_record_error(c, "%s: \"%s\" is not a duration (use 500ms, 30s, 5m, 1h "
                                           "or hh:mm:ss) (from %s)", key, text,
                                        hk_config_source_of(c, key));
            ok = false;
        } else {
            drain = (uint64_t)v;
        }
    }
    if (!ok)
        return -EINVAL;

    hk_queue_t *q = hk__calloc(1, sizeof *q);
    if (!q)
        return hk__builder_fail(b, -ENOMEM, "out of memory registering a queue");
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_cond_init(&q->idle, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&q->processed_in_stop, 0);
    q->name = hk__strdup(def->name);
    q->cap = (size_t)cap;
    q->ring = hk__calloc(q->cap, sizeof *q->ring);
    q->workers = (unsigned)workers;
    q->on_stop = on_stop ? HK_QUEUE_DISCARD : HK_QUEUE_DRAIN;
    q->drain_timeout_ms = drain;
    q->lg = hk_builder_logger(b, "hostkit.jobs");
    if (!q->name || !q->ring || hk_token_new(&q->abort) < 0) {
        queue_free(q);
        return hk__builder_fail(b, -ENOMEM, "out of memory registering a queue");
    }
    int rc = register_metrics(hk_builder_metrics(b), q);
    if (rc < 0) {
        queue_free(q);
        return hk__builder_fail(b, rc, hk_metrics_last_error());
    }
    hk_service_def_t sd = {.name = def->name,
                           .execute = queue_execute,
                           .destroy = queue_free,
                           .data = q,
                           .depends_on = def->depends_on};
    rc = hk_builder_add_service(b, &sd);
    if (rc < 0) {
        queue_free(q);
        return rc;
    }
    *ret_queue = q;
    return 0;
}
