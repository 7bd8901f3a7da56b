/*
 * Cancellation tokens (include/hostkit/token.h).
 * Depends on libc, pthreads and src/common.
 *
 * Invariants:
 *  - `cancelled` goes false -> true once, under `mu`; readers outside the
 *    lock use an acquire load, so everything written before the cancel is
 *    visible to whoever sees the flag.
 *  - A registration is PENDING while it is on the list, and leaves the list
 *    under `mu`, either by hk_token_unregister or by the cancel that runs it
 *    (`running` points at it while its callback runs). The cancel never
 *    touches a registration after its callback returned: the callback may
 *    have freed it.
 *  - Every change that a waiter may wait for (cancel, a callback finishing,
 *    a new timer deadline) broadcasts `cond`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "hostkit/token.h"

enum { REG_IDLE = 0, REG_PENDING = 1, REG_DONE = 2 };

struct hk_token_s {
    atomic_bool cancelled;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    hk_token_reg_t *head, *tail;
    hk_token_reg_t *running; /* callback running in hk_token_cancel, or NULL */
    pthread_t canceller;     /* valid while cancelling */
    bool cancelling;
    int efd;
    /* linked tokens */
    size_t nparents;
    hk_token_reg_t *parent_regs;
    /* hk_token_cancel_after */
    bool timer_started, timer_quit;
    uint64_t deadline_ns;
    pthread_t timer;
};

static void deadline_to_timespec(uint64_t ns, struct timespec *ts) {
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}


static hk_token_t *token_alloc(void) {
    hk_token_t *t = hk__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->cancelled, false);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    t->efd = -1;
    return t;
}

int hk_token_new(hk_token_t **ret_token) {
    if (!ret_token)
        return -EINVAL;
    hk_token_t *t = token_alloc();
    if (!t)
        return -ENOMEM;
    *ret_token = t;
    return 0;
}

static void link_cb(hk_token_t *parent, void *data) {
    HK_UNUSED(parent);
    hk_token_cancel((hk_token_t *)data);
}

int hk_token_new_linked(hk_token_t *const *parents, size_t n, hk_token_t **ret_token) {
    if (!parents || n == 0 || !ret_token)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!parents[i])
            return -EINVAL;
    hk_token_t *t = token_alloc();
    if (!t)
        return -ENOMEM;
    t->parent_regs = hk__calloc(n, sizeof *t->parent_regs);
    if (!t->parent_regs) {
        hk_token_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        t->nparents = i + 1;
        (void)hk_token_register(parents[i], &t->parent_regs[i], link_cb, t);
    }
    *ret_token = t;
    return 0;
}

void hk_token_free(hk_token_t *t) {
    if (!t)
        return;
    /* Detach from parents first: waits out a parent's cancel that is running link_cb on us. */
    for (size_t i = 0; i < t->nparents; i++)
        (void)hk_token_unregister(&t->parent_regs[i]);
    hk__free(t->parent_regs);

    pthread_mutex_lock(&t->mu);
    t->timer_quit = true;
    pthread_cond_broadcast(&t->cond);
    bool join = t->timer_started;
    for (hk_token_reg_t *r = t->head; r; r = r->_next) {
        r->_state = REG_IDLE;
        r->_token = NULL;
    }
    t->head = t->tail = NULL;
    pthread_mutex_unlock(&t->mu);
    if (join)
        pthread_join(t->timer, NULL);

    if (t->efd >= 0)
        close(t->efd);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    hk__free(t);
}

bool hk_token_is_cancelled(const hk_token_t *t) {
    return t && atomic_load_explicit(&t->cancelled, memory_order_acquire);
}

static void list_remove(hk_token_t *t, hk_token_reg_t *r) {
    if (r->_prev)
        r->_prev->_next = r->_next;
    else
        t->head = r->_next;
    if (r->_next)
        r->_next->_prev = r->_prev;
    else
        t->tail = r->_prev;
    r->_prev = r->_next = NULL;
}

bool hk_token_cancel(hk_token_t *t) {
    if (!t)
        return false;
    pthread_mutex_lock(&t->mu);
    if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    atomic_store_explicit(&t->cancelled, true, memory_order_release);
    t->cancelling = true;
    t->canceller = pthread_self();
    /* Wake sleepers and fd waiters before running callbacks: they are the
     * latency-critical ones. Broadcast after unlocking, so a woken waiter
     * does not block again on the mutex we hold (half the wake-up latency,
     * bench/RESULTS.md). No wake-up is lost: waiters test the flag under the
     * mutex, and it was set under it. A fd created from now on is made
     * readable by hk_token_fd itself (it sees the flag). */
    int efd = t->efd;
    pthread_mutex_unlock(&t->mu);
    pthread_cond_broadcast(&t->cond);
    if (efd >= 0) {
        uint64_t one = 1;
        (void)!write(efd, &one, sizeof one);
    }
    pthread_mutex_lock(&t->mu);
    while (t->head) {
        hk_token_reg_t *r = t->head;
        list_remove(t, r);
        r->_state = REG_DONE;
        hk_token_cb cb = r->_cb;
        void *data = r->_data;
        t->running = r;
        pthread_mutex_unlock(&t->mu);
        cb(t, data); /* r may be freed by now: do not touch it again */
        pthread_mutex_lock(&t->mu);
        t->running = NULL;
        pthread_cond_broadcast(&t->cond);
    }
    t->cancelling = false;
    pthread_mutex_unlock(&t->mu);
    return true;
}

int hk_token_register(hk_token_t *t, hk_token_reg_t *reg, hk_token_cb cb, void *data) {
    if (!t || !reg || !cb)
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    if (reg->_token && reg->_state == REG_PENDING) {
        pthread_mutex_unlock(&t->mu);
        return -EINVAL;
    }
    reg->_cb = cb;
    reg->_data = data;
    reg->_token = t;
    reg->_prev = reg->_next = NULL;
    if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
        reg->_state = REG_DONE;
        pthread_mutex_unlock(&t->mu);
        cb(t, data);
        return 1;
    }
    reg->_state = REG_PENDING;
    reg->_prev = t->tail;
    if (t->tail)
        t->tail->_next = reg;
    else
        t->head = reg;
    t->tail = reg;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int hk_token_unregister(hk_token_reg_t *reg) {
    if (!reg || !reg->_token)
        return 0;
    hk_token_t *t = reg->_token;
    pthread_mutex_lock(&t->mu);
    if (reg->_state == REG_PENDING) {
        list_remove(t, reg);
        reg->_state = REG_IDLE;
        pthread_mutex_unlock(&t->mu);
        return 1;
    }
    if (t->running == reg && !pthread_equal(t->canceller, pthread_self())) {
        while (t->running == reg)
            pthread_cond_wait(&t->cond, &t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}

int hk_token_sleep(hk_token_t *t, uint64_t ms) {
    if (!t)
        return -EINVAL;
    if (atomic_load_explicit(&t->cancelled, memory_order_acquire))
        return -ECANCELED;
    uint64_t deadline = hk__deadline_ns(ms);
    struct timespec ts;
    deadline_to_timespec(deadline, &ts);
    pthread_mutex_lock(&t->mu);
    while (!atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
        int rc = pthread_cond_timedwait(&t->cond, &t->mu, &ts);
        if (rc == ETIMEDOUT && hk__now_ns() >= deadline)
            break;
    }
    bool c = atomic_load_explicit(&t->cancelled, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return c ? -ECANCELED : 0;
}

int hk_token_wait(hk_token_t *t) {
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    while (!atomic_load_explicit(&t->cancelled, memory_order_relaxed))
        pthread_cond_wait(&t->cond, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return -ECANCELED;
}

int hk_token_fd(hk_token_t *t) {
    if (!t)
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    if (t->efd < 0) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            int err = -errno;
            pthread_mutex_unlock(&t->mu);
            return err;
        }
        t->efd = fd;
        if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
            uint64_t one = 1;
            (void)!write(fd, &one, sizeof one);
        }
    }
    int fd = t->efd;
    pthread_mutex_unlock(&t->mu);
    return fd;
}

static void *timer_main(void *arg) {
    hk_token_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->timer_quit && !atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
        if (hk__now_ns() >= t->deadline_ns) {
            pthread_mutex_unlock(&t->mu);
            hk_token_cancel(t);
            return NULL;
        }
        struct timespec ts;
        deadline_to_timespec(t->deadline_ns, &ts);
        pthread_cond_timedwait(&t->cond, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int hk_token_cancel_after(hk_token_t *t, uint64_t ms) {
    if (!t)
        return -EINVAL;
    if (ms == 0) {
        hk_token_cancel(t);
        return 0;
    }
    pthread_mutex_lock(&t->mu);
    if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    t->deadline_ns = hk__deadline_ns(ms);
    if (!t->timer_started) {
        int rc = pthread_create(&t->timer, NULL, timer_main, t);
        if (rc != 0) {
            pthread_mutex_unlock(&t->mu);
            return -rc;
        }
        t->timer_started = true;
    } else {
        pthread_cond_broadcast(&t->cond);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}
