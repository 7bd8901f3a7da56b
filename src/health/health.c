/*
 * The health registry (include/hostkit/health.h): checks, their runs on
 * threads of their own, timeouts, the result cache and reports.
 * Depends on src/common, the public token API (src/core/token.c) and
 * pthreads; nothing else (the host's side is src/core/hosthealth.c).
 *
 * Objects and who owns them:
 *  - the registry (hk_health_t) is reference-counted: 1 for its owner and 1
 *    per run thread still alive, so a thread abandoned after a timeout and
 *    hk_health_free never touches freed memory; the last reference frees the
 *    checks (running their destroy hooks) on whichever thread drops it;
 *  - a check (check_t) lives as long as the registry; `run` is its run in
 *    flight (at most one per cache generation), `last` its cached result;
 *  - a run (run_t) is one call of a check on its own thread; references
 *    (under `mu`): 1 for the thread until it is joined (or, once detached,
 *    until it returns) + 1 per report waiting for it;
 *  - results are immutable once their run finished and reference-counted
 *    (atomics): the cache and every report hold their own reference.
 *
 * Invariants (all under `mu`):
 *  - a run is on `active` from creation until its thread set `done`, then on
 *    `finished` until someone joins it, unless it was detached by
 *    hk_health_free (then it frees itself);
 *  - a timed-out run never fills the cache: its late result is dropped;
 *  - check->run is cleared only by its own thread when it returns, so no
 *    second run of a hung check starts (reports say "timed out" at once).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "health/health_int.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_CACHE_MS 1000u

typedef struct run run_t;

typedef struct check {
    char *name;
    char *tags; /* "a,b" or "" */
    hk_health_check_cb cb;
    void *data;
    hk_destroy_cb destroy;
    uint64_t timeout_ns;
    run_t *run;               /* newest run in flight, or NULL */
    hk_health_result_t *last; /* cached result, or NULL */
    uint64_t last_at;         /* registry clock when it completed */
} check_t;

struct run {
    hk_health_t *health;
    check_t *check;
    pthread_t thread;
    hk_token_t *token;
    hk_health_result_t *res;         /* filled by the thread */
    hk_health_result_t *timeout_res; /* set when it timed out (NULL if that allocation failed) */
    int refs;
    bool done, timed_out, detached;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    uint64_t gen;
    run_t *cancel_next; /* a list of runs to cancel once the lock is let go */
    run_t *next;
};

struct hk_health_s {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a run finished, a cancel token fired */
    atomic_int refs;
    check_t **checks;
    size_t n;
    uint64_t cache_ns;
    uint64_t gen; /* bumped by hk__health_invalidate */
    _Atomic(hk__health_clock_fn) clock; /* atomics: heartbeats read it lock-free */
    _Atomic(void *) clock_data;
    run_t *active, *finished;
};

static uint64_t mono_clock(void *data) {
    (void)data;
    return hk__now_ns();
}

const char *hk_health_status_name(hk_health_status_t s) {
    switch (s) {
    case HK_HEALTH_HEALTHY: return "Healthy";
    case HK_HEALTH_DEGRADED: return "Degraded";
    case HK_HEALTH_UNHEALTHY: return "Unhealthy";
    }
    return "Unknown";
}

/* ---- registry --------------------------------------------------------------- */

int hk_health_new(hk_health_t **ret) {
    if (!ret)
        return -EINVAL;
    hk_health_t *h = hk__calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&h->refs, 1);
    h->cache_ns = (uint64_t)DEFAULT_CACHE_MS * 1000000u;
    atomic_init(&h->clock, mono_clock);
    atomic_init(&h->clock_data, NULL);
    *ret = h;
    return 0;
}

static void check_free(check_t *c) {
    if (c->destroy)
        c->destroy(c->data);
    hk__health_result_unref(c->last);
    hk__free(c->name);
    hk__free(c->tags);
    hk__free(c);
}

static void health_unref(hk_health_t *h) {
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    for (size_t i = 0; i < h->n; i++)
        check_free(h->checks[i]);
    hk__free(h->checks);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    hk__free(h);
}

static void run_free(run_t *r) {
    hk_token_free(r->token);
    hk__health_result_unref(r->res);
    hk__health_result_unref(r->timeout_res);
    hk__free(r);
}

/* Drops a reference (caller holds mu). Returns the run if it must be freed
 * (after unlocking). */
static run_t *run_unref_locked(run_t *r) { return --r->refs == 0 ? r : NULL; }

static void list_remove(run_t **head, run_t *r) {
    for (run_t **p = head; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            r->next = NULL;
            return;
        }
}

/* Joins the runs on `list` (taken from h->finished) and drops their
 * thread's reference. */
static void join_finished(hk_health_t *h, run_t *list) {
    while (list) {
        run_t *r = list, *dead;
        list = r->next;
        pthread_join(r->thread, NULL);
        pthread_mutex_lock(&h->mu);
        dead = run_unref_locked(r);
        pthread_mutex_unlock(&h->mu);
        if (dead)
            run_free(dead);
    }
}

void hk_health_free(hk_health_t *h) {
    if (!h)
        return;
    run_t *cancel = NULL; /* token callbacks run synchronously: never under the lock */
    pthread_mutex_lock(&h->mu);
    for (run_t *r = h->active; r; r = r->next) {
        pthread_detach(r->thread);
        r->detached = true;
        if (!r->timed_out) {
            r->refs++;
            r->cancel_next = cancel;
            cancel = r;
        }
    }
    run_t *fin = h->finished;
    h->finished = NULL;
    pthread_mutex_unlock(&h->mu);
    for (run_t *r = cancel; r; r = r->cancel_next)
        hk_token_cancel(r->token);
    for (run_t *r = cancel, *next; r; r = next) {
        next = r->cancel_next;
        pthread_mutex_lock(&h->mu);
        run_t *dead = run_unref_locked(r);
        pthread_mutex_unlock(&h->mu);
        if (dead)
            run_free(dead);
    }
    join_finished(h, fin);
    health_unref(h);
}

/* Names: 1..63 of letters, digits, '.', '_', '-', ':'. */
static bool valid_word(const char *s, size_t len) {
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == ':'))
            return false;
    }
    return true;
}

/* "live, ready db" -> "live,ready,db"; NULL when a tag is invalid or out of memory (*bad set). */
static char *normalise_tags(const char *tags, bool *bad) {
    *bad = false;
    size_t len = tags ? strlen(tags) : 0;
    char *out = hk__malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    const char *p = tags ? tags : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != ',')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0)
            break;
        if (!valid_word(start, n)) {
            *bad = true;
            hk__free(out);
            return NULL;
        }
        if (o != out)
            *o++ = ',';
        memcpy(o, start, n);
        o += n;
    }
    *o = '\0';
    return out;
}

static bool has_tag(const char *tags, const char *tag) {
    size_t tl = strlen(tag);
    for (const char *p = tags; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == tl && strncasecmp(p, tag, n) == 0)
            return true;
        p += n + (e ? 1 : 0);
    }
    return false;
}

int hk_health_add(hk_health_t *h, const hk_health_check_def_t *def) {
    if (!h || !def || !def->name || !def->check || !valid_word(def->name, strlen(def->name)))
        return -EINVAL;
    bool bad;
    check_t *c = hk__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->tags = normalise_tags(def->tags, &bad);
    c->name = hk__strdup(def->name);
    if (!c->tags || !c->name) {
        hk__free(c->tags);
        hk__free(c->name);
        hk__free(c);
        return bad ? -EINVAL : -ENOMEM;
    }
    c->cb = def->check;
    c->data = def->data;
    c->destroy = def->destroy;
    c->timeout_ns = (uint64_t)(def->timeout_ms ? def->timeout_ms : DEFAULT_TIMEOUT_MS) * 1000000u;
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n && rc == 0; i++)
        if (strcasecmp(h->checks[i]->name, c->name) == 0)
            rc = -EEXIST;
    if (rc == 0) {
        check_t **nc = hk__realloc(h->checks, (h->n + 1) * sizeof *nc);
        if (nc) {
            h->checks = nc;
            h->checks[h->n++] = c;
        } else {
            rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) {
        c->destroy = NULL; /* a failed add keeps nothing */
        check_free(c);
    }
    return rc;
}

int hk_health_set_cache_ms(hk_health_t *h, uint64_t ms) {
    if (!h || ms > UINT64_MAX / 1000000u)
        return -EINVAL;
    pthread_mutex_lock(&h->mu);
    h->cache_ns = ms * 1000000u;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

/* Set it before anything reads the clock (tests do, right after creation). */
void hk__health_set_clock(hk_health_t *h, hk__health_clock_fn fn, void *data) {
    atomic_store(&h->clock_data, fn ? data : NULL);
    atomic_store(&h->clock, fn ? fn : mono_clock);
}

uint64_t hk__health_now(hk_health_t *h) {
    hk__health_clock_fn fn = atomic_load(&h->clock);
    return fn(atomic_load(&h->clock_data));
}

void hk__health_invalidate(hk_health_t *h) {
    pthread_mutex_lock(&h->mu);
    h->gen++;
    hk_health_result_t *drop[32];
    size_t nd = 0;
    for (size_t i = 0; i < h->n; i++) {
        check_t *c = h->checks[i];
        if (c->last && nd < HK_ARRAY_SIZE(drop)) {
            drop[nd++] = c->last;
            c->last = NULL;
        } else if (c->last) {
            hk__health_result_unref(c->last); /* atomics only: fine under the lock */
            c->last = NULL;
        }
    }
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < nd; i++)
        hk__health_result_unref(drop[i]);
}

int hk__health_remove(hk_health_t *h, const char *name) {
    check_t *found = NULL;
    int rc = -ENOENT;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->checks[i]->name, name) != 0)
            continue;
        if (h->checks[i]->run) {
            rc = -EBUSY;
            break;
        }
        found = h->checks[i];
        memmove(&h->checks[i], &h->checks[i + 1], (h->n - i - 1) * sizeof *h->checks);
        h->n--;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&h->mu);
    if (found) {
        found->destroy = NULL; /* removed, not released: the caller keeps its data */
        check_free(found);
    }
    return rc;
}

size_t hk__health_count(hk_health_t *h) {
    pthread_mutex_lock(&h->mu);
    size_t n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

size_t hk__health_count_tag(hk_health_t *h, const char *tag) {
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n; i++)
        n += has_tag(h->checks[i]->tags, tag);
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* ---- runs ------------------------------------------------------------------ */

static hk_health_status_t clamp_status(hk_health_status_t s) {
    return s == HK_HEALTH_HEALTHY || s == HK_HEALTH_DEGRADED ? s : HK_HEALTH_UNHEALTHY;
}

static void *run_main(void *arg) {
    run_t *r = arg;
    hk_health_t *h = r->health;
    check_t *c = r->check;
    uint64_t t0 = hk__now_ns();
    hk_health_status_t st = c->cb(r->res, r->token, c->data);
    r->res->duration_ns = hk__now_ns() - t0;
    r->res->status = clamp_status(st);

    hk_health_result_t *old = NULL;
    run_t *dead = NULL;
    pthread_mutex_lock(&h->mu);
    r->done = true;
    list_remove(&h->active, r);
    if (!r->timed_out && r->gen == h->gen) {
        old = c->last;
        hk__health_result_ref(r->res);
        c->last = r->res;
        c->last_at = hk__health_now(h);
    }
    if (c->run == r)
        c->run = NULL;
    if (r->detached) {
        dead = run_unref_locked(r); /* nobody will join this thread */
    } else {
        r->next = h->finished;
        h->finished = r;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    hk__health_result_unref(old);
    if (dead)
        run_free(dead);
    health_unref(h);
    return NULL;
}

/* Starts a run of c (caller holds mu). Returns it with one reference for
 * the thread and one for the caller, or NULL with *err set. */
static run_t *run_start(hk_health_t *h, check_t *c, int *err) {
    run_t *r = hk__calloc(1, sizeof *r);
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }
    int rc = hk_token_new(&r->token);
    if (rc == 0)
        rc = hk__health_result_new(&r->res);
    if (rc < 0) {
        run_free(r);
        *err = rc;
        return NULL;
    }
    r->health = h;
    r->check = c;
    r->gen = h->gen;
    r->deadline_ns = hk__now_ns() + c->timeout_ns;
    r->refs = 2;
    /* Check threads never take the process's signals (the host's control
     * thread does): a check is not interrupted by EINTR. */
    sigset_t set, old;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    atomic_fetch_add(&h->refs, 1);
    rc = pthread_create(&r->thread, NULL, run_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_fetch_sub(&h->refs, 1);
        run_free(r);
        *err = -rc;
        return NULL;
    }
    r->next = h->active;
    h->active = r;
    c->run = r;
    return r;
}

/* An Unhealthy result made by the registry itself (timeout, no thread). */
static hk_health_result_t *synthetic(const char *fmt, ...) HK_PRINTF(1, 2);
static hk_health_result_t *synthetic(const char *fmt, ...) {
    hk_health_result_t *res = NULL;
    if (hk__health_result_new(&res) < 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    res->description = hk__vasprintf(fmt, ap);
    va_end(ap);
    if (!res->description) {
        hk__health_result_unref(res);
        return NULL;
    }
    res->status = HK_HEALTH_UNHEALTHY;
    return res;
}

/* ---- reports ------------------------------------------------------------------ */

typedef struct slot {
    check_t *check;
    run_t *run;              /* waited for (a reference), until res is known */
    run_t *dead;             /* its run, when the report held the last reference */
    hk_health_result_t *res; /* a reference */
    bool cached;
} slot_t;

typedef struct report_impl {
    hk_health_report_t pub;
    hk_health_entry_t *entries;
    hk_health_result_t **results;
} report_impl_t;

void hk_health_report_free(hk_health_report_t *report) {
    if (!report)
        return;
    report_impl_t *ri = (report_impl_t *)report;
    for (size_t i = 0; i < report->n; i++)
        hk__health_result_unref(ri->results[i]);
    hk__free(ri); /* entries, results and strings live in the same block */
}

/* One block: the report, its entries, result pointers, then names and tags. */
static report_impl_t *assemble(slot_t *slots, size_t n, uint64_t t0) {
    size_t strings = 0;
    for (size_t i = 0; i < n; i++)
        strings += strlen(slots[i].check->name) + strlen(slots[i].check->tags) + 2;
    size_t size = sizeof(report_impl_t) + n * sizeof(hk_health_entry_t) +
                  n * sizeof(hk_health_result_t *) + strings;
    report_impl_t *ri = hk__calloc(1, size);
    if (!ri)
        return NULL;
    ri->entries = (hk_health_entry_t *)(ri + 1);
    ri->results = (hk_health_result_t **)(ri->entries + n);
    char *pool = (char *)(ri->results + n);
    hk_health_status_t worst = HK_HEALTH_HEALTHY;
    for (size_t i = 0; i < n; i++) {
        hk_health_entry_t *e = &ri->entries[i];
        hk_health_result_t *res = slots[i].res;
        size_t nl = strlen(slots[i].check->name) + 1, tl = strlen(slots[i].check->tags) + 1;
        memcpy(pool, slots[i].check->name, nl);
        e->name = pool;
        pool += nl;
        memcpy(pool, slots[i].check->tags, tl);
        e->tags = pool;
        pool += tl;
        e->status = res->status;
        e->description = res->description ? res->description : "";
        e->duration_ns = res->duration_ns;
        e->timed_out = res->timed_out;
        e->cached = slots[i].cached;
        e->data = res->data;
        e->ndata = res->ndata;
        ri->results[i] = res;
        slots[i].res = NULL; /* the report owns the reference now */
        if (res->status > worst)
            worst = res->status;
    }
    ri->pub.status = worst;
    ri->pub.entries = ri->entries;
    ri->pub.n = n;
    ri->pub.duration_ns = hk__now_ns() - t0;
    return ri;
}

static void wake_waiters(hk_token_t *token, void *data) {
    (void)token;
    hk_health_t *h = data;
    pthread_mutex_lock(&h->mu);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* The result of a run that went past its deadline (caller holds mu). */
static void time_out(hk_health_t *h, run_t *r) {
    r->timed_out = true;
    char secs[32];
    hk__fmt_seconds(secs, sizeof secs, (double)r->check->timeout_ns / 1e9);
    r->timeout_res = synthetic("timed out after %s", secs);
    if (r->timeout_res) {
        r->timeout_res->timed_out = true;
        r->timeout_res->duration_ns = r->check->timeout_ns;
        if (r->gen == h->gen) {
            hk_health_result_t *old = r->check->last;
            hk__health_result_ref(r->timeout_res);
            r->check->last = r->timeout_res;
            r->check->last_at = hk__health_now(h);
            hk__health_result_unref(old); /* atomics only */
        }
    }
}

int hk_health_report(hk_health_t *h, const char *tag, hk_token_t *cancel,
                     hk_health_report_t **ret_report) {
    if (!h || !ret_report)
        return -EINVAL;
    uint64_t t0 = hk__now_ns();
    hk_token_reg_t reg = {0};
    if (cancel && hk_token_register(cancel, &reg, wake_waiters, h) < 0)
        return -EINVAL;
    bool all = !tag || !*tag;
    int rc = 0;
    slot_t *slots = NULL;
    size_t n = 0;
    run_t *to_cancel = NULL; /* cancelled once the lock is let go (callbacks run synchronously) */

    pthread_mutex_lock(&h->mu);
    run_t *fin = h->finished;
    h->finished = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < h->n; i++)
        cap += all || has_tag(h->checks[i]->tags, tag);
    slots = hk__calloc(cap ? cap : 1, sizeof *slots);
    if (!slots)
        rc = -ENOMEM;
    uint64_t now = hk__health_now(h);
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        check_t *c = h->checks[i];
        if (!all && !has_tag(c->tags, tag))
            continue;
        slot_t *s = &slots[n++];
        s->check = c;
        if (c->last && h->cache_ns > 0 && now - c->last_at < h->cache_ns) {
            hk__health_result_ref(c->last);
            s->res = c->last;
            s->cached = true;
        } else if (c->run && c->run->gen == h->gen) {
            s->run = c->run; /* share the run in flight */
            s->run->refs++;
        } else {
            int err = 0;
            s->run = run_start(h, c, &err);
            if (!s->run) {
                s->res = synthetic("cannot run the check: %s", hk_strerror(err));
                if (!s->res)
                    rc = -ENOMEM;
            }
        }
    }
    /* Wait for the runs: until each returned or passed its deadline. */
    while (rc == 0) {
        bool pending = false;
        uint64_t earliest = UINT64_MAX, mono = hk__now_ns();
        for (size_t i = 0; i < n; i++) {
            slot_t *s = &slots[i];
            if (!s->run || s->res)
                continue;
            run_t *r = s->run;
            if (!r->timed_out && !r->done && mono >= r->deadline_ns) {
                time_out(h, r);
                r->refs++;
                r->cancel_next = to_cancel;
                to_cancel = r;
            }
            if (r->timed_out) {
                s->res = r->timeout_res;
                if (!s->res) {
                    rc = -ENOMEM;
                    break;
                }
                hk__health_result_ref(s->res);
            } else if (r->done) {
                hk__health_result_ref(r->res);
                s->res = r->res;
            } else {
                pending = true;
                if (r->deadline_ns < earliest)
                    earliest = r->deadline_ns;
            }
        }
        if (rc < 0 || !pending)
            break;
        if (cancel && hk_token_is_cancelled(cancel)) {
            rc = -ECANCELED;
            break;
        }
        struct timespec ts = {(time_t)(earliest / 1000000000u), (long)(earliest % 1000000000u)};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    /* Let go of the runs: those whose last reference this was are freed
     * after the lock (each slot holds at most one). */
    for (size_t i = 0; i < n; i++) {
        if (!slots[i].run)
            continue;
        slots[i].dead = run_unref_locked(slots[i].run);
        slots[i].run = NULL;
    }
    pthread_mutex_unlock(&h->mu);

    for (run_t *r = to_cancel; r; r = r->cancel_next)
        hk_token_cancel(r->token);
    run_t *dead_cancelled = NULL;
    if (to_cancel) {
        pthread_mutex_lock(&h->mu);
        for (run_t *r = to_cancel, *next; r; r = next) {
            next = r->cancel_next;
            run_t *d = run_unref_locked(r);
            if (d) {
                d->cancel_next = dead_cancelled;
                dead_cancelled = d;
            }
        }
        pthread_mutex_unlock(&h->mu);
    }
    for (size_t i = 0; i < n; i++)
        if (slots[i].dead)
            run_free(slots[i].dead);
    for (run_t *r = dead_cancelled, *next; r; r = next) {
        next = r->cancel_next;
        run_free(r);
    }
    join_finished(h, fin);
    if (cancel)
        hk_token_unregister(&reg);

    report_impl_t *ri = NULL;
    if (rc == 0) {
        ri = assemble(slots, n, t0);
        if (!ri)
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        hk__health_result_unref(slots[i].res);
    hk__free(slots);
    if (rc < 0)
        return rc;
    *ret_report = &ri->pub;
    return 0;
}

int hk_health_http_status(const hk_health_report_t *report) {
    return report && report->status != HK_HEALTH_UNHEALTHY ? 200 : 503;
}
