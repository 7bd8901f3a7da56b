/*
 * The service registry (include/hostkit/services.h): registrations under
 * string keys with a lifetime, graph validation, scopes, and resolution with
 * an O(1) hot path by handle. Depends on libc, pthreads and src/common only.
 *
 * Layout:
 *  - `regs[handle - 1]` is a registration; `ktab` (open addressing, at most
 *    half full) maps a key to its first and last registration, and
 *    `reg.next_same` chains the registrations of one key in registration
 *    order (get uses `last`, get_all walks from `first`).
 *  - A scope owns `slots` (one per registration, allocated on its first
 *    scoped instance) and `ents`, the instances it created in creation order.
 *    The root scope is embedded in the registry; its `ents` hold every
 *    singleton and every transient resolved from it, guarded by `root_mu`.
 *
 * Invariants:
 *  1. Registrations are only added before the registry is frozen (first
 *     validation, hk_services_root or hk_scope_new); after that `regs`,
 *     `nregs` and `ktab` never change, so readers need no lock.
 *  2. Singleton state machine, per registration, transitions under `sing_mu`
 *     (one mutex and condition variable for the registry: creation is rare,
 *     and cross-thread cycle detection needs every creator's state at once):
 *
 *       NONE --get_singleton: claim--> CREATING --factory ok--> CREATED
 *         ^                               |
 *         +-------- factory failed -------+
 *
 *     `ready` is published (release) before the state becomes CREATED and
 *     never changes again; the hot path is one acquire load of it. A NULL
 *     instance is stored as &null_instance so that NULL means "not yet".
 *     A thread resolving a CREATING singleton it creates itself has found a
 *     cycle; another thread waits on `sing_cv`, unless following the chain
 *     "creator waits for a singleton whose creator waits for ..." leads back
 *     to it (a cycle across threads), which is reported instead of waiting.
 *  3. A scope's `ents` only grow, except on a failed resolution: everything
 *     that resolution created in the scope after its mark is destroyed again
 *     in reverse order (scoped slots cleared). The root scope is shared, so
 *     there entries are tagged with the creating thread, never move, and are
 *     tombstoned (`dead`) instead of removed; singletons are never rolled
 *     back once their own factory succeeded, and what that factory created
 *     in the root scope is untagged (adopted) so it stays with them.
 *  4. Each thread keeps a chain of `frame`s, one per factory running on it
 *     (tl_frame); it detects run-time cycles of scoped and transient services
 *     and carries the failure message outwards ("creating "Db": ...").
 *
 * Validation builds the dependency graph once per call (an edge to every
 * registration of a dep key) and reports missing keys, captive scoped
 * services (a walk from each singleton through transients) and every
 * elementary cycle (Johnson's algorithm, capped at CYCLES_MAX).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "di/services_int.h"
#include "hostkit/services.h"

#define KEY_MAX 127
#define MSG_MAX 1024
#define ENTS_INITIAL 16

enum { S_NONE = 0, S_CREATING = 1, S_CREATED = 2 };

/* Per-thread record for cross-thread cycle detection (under sing_mu). */
struct thread_rec {
    const struct reg *waiting_for;
};

struct reg {
    _Atomic(void *) ready; /* singleton: wrapped instance once created (invariant 2) */
    hk_lifetime_t lifetime;
    hk_factory_cb factory;
    hk_instance_free_cb free_cb;
    void *data;
    hk_destroy_cb data_destroy;
    const char *key;  /* in block */
    const char **deps; /* in block, ndeps entries */
    uint32_t ndeps;
    uint32_t next_same; /* index + 1 of the next registration under key, 0: none */
    /* singleton slow path, under services->sing_mu */
    int state;
    const struct thread_rec *creator;
    void *block; /* one allocation: deps array, key and dep strings */
};

struct kslot {
    const char *key; /* NULL: empty slot */
    uint32_t hash;
    uint32_t first, last, count;
};

struct entry {
    void *instance;
    uint32_t idx;
    bool dead;         /* root only: rolled back */
    const void *owner; /* root only: the creating thread's &tl_thread */
};

struct hk_scope_s {
    hk_services_t *services;
    bool root;
    void **slots; /* scoped instances by index (wrapped), NULL until first scoped */
    struct entry *ents;
    size_t n, cap;
    void ***arrays; /* get_all results, freed with the scope */
    size_t narrays, arrays_cap;
};

struct hk_services_s {
    struct reg *regs;
    uint32_t nregs, regs_cap;
    struct kslot *ktab;
    uint32_t kcap, nkeys;
    atomic_bool frozen;
    pthread_mutex_t sing_mu;
    pthread_cond_t sing_cv;
    pthread_mutex_t root_mu;
    struct hk_scope_s root;
};

/* One factory running on this thread (invariant 4). */
struct frame {
    struct frame *parent;
    unsigned long id; /* unique on this thread, never 0 */
    const struct reg *reg;
    const hk_scope_t *scope;
    bool child_failed; /* a resolution made by this factory failed */
    bool child_plain;  /* ... with a complete message (not "creating X") */
    const char *child_key;
};

static _Thread_local struct thread_rec tl_thread;
static _Thread_local struct frame *tl_frame;
static _Thread_local unsigned long tl_frame_seq;
static _Thread_local unsigned long tl_msg_owner; /* id of the frame whose hk_scope_fail wrote tl_msg */
static _Thread_local char tl_msg[MSG_MAX];  /* why the latest failure happened */
static _Thread_local char tl_last[MSG_MAX]; /* hk_services_last_error() */

static char null_instance;

static inline void *wrap(void *p) { return p ? p : (void *)&null_instance; }
static inline void *unwrap(void *p) { return p == (void *)&null_instance ? NULL : p; }

/* ---- messages ------------------------------------------------------------------ */

static void set_last(const char *msg) { snprintf(tl_last, sizeof tl_last, "%s", msg); }

/* A failure with a complete message (not a factory's): unknown key, cycle, root scope... */
static int fail_plain(int err, const char *fmt, ...) HK_PRINTF(2, 3);
static int fail_plain(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    tl_msg_owner = 0;
    set_last(tl_msg);
    if (tl_frame) {
        tl_frame->child_failed = true;
        tl_frame->child_plain = true;
    }
    return err;
}

/* Prepends `creating "key": ` to tl_msg, truncating its end if needed. */
static void msg_prepend_creating(const char *key) {
    char head[KEY_MAX + 32];
    int hn = snprintf(head, sizeof head, "creating \"%s\": ", key);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return;
    size_t tn = strlen(tl_msg);
    if ((size_t)hn + tn >= sizeof tl_msg)
        tn = sizeof tl_msg - 1 - (size_t)hn;
    memmove(tl_msg + hn, tl_msg, tn);
    memcpy(tl_msg, head, (size_t)hn);
    tl_msg[(size_t)hn + tn] = '\0';
}

/* Frame f (already popped) failed with err: build the message, tell the parent. */
static int fail_creation(const struct frame *f, int err, bool own_msg_allowed) {
    if (own_msg_allowed && tl_msg_owner == f->id) {
        /* the factory's own hk_scope_fail message */
    } else if (own_msg_allowed && f->child_failed) {
        if (!f->child_plain)
            msg_prepend_creating(f->child_key);
    } else {
        snprintf(tl_msg, sizeof tl_msg, "%s", hk_strerror(err));
    }
    tl_msg_owner = 0;
    int n = snprintf(tl_last, sizeof tl_last, "Cannot create \"%s\": ", f->reg->key);
    if (n > 0 && (size_t)n < sizeof tl_last) { /* then as much of tl_msg as fits */
        size_t l = strnlen(tl_msg, sizeof tl_last - 1 - (size_t)n);
        memcpy(tl_last + n, tl_msg, l);
        tl_last[(size_t)n + l] = '\0';
    }
    if (f->parent) {
        f->parent->child_failed = true;
        f->parent->child_plain = false;
        f->parent->child_key = f->reg->key;
    }
    return err;
}

/* Run-time cycle: frames from the one creating `reg` (in `scope`, or any when
 * any_scope) to the innermost, then reg again. */
static int fail_cycle(const struct reg *reg, const hk_scope_t *scope, bool any_scope) {
    const struct frame *start = NULL;
    for (const struct frame *f = tl_frame; f; f = f->parent)
        if (f->reg == reg && (any_scope || f->scope == scope))
            start = f;
    /* start is the outermost match; list start .. innermost by walking inner frames. */
    const struct frame *chain[64];
    size_t n = 0;
    for (const struct frame *f = tl_frame; f && n < HK_ARRAY_SIZE(chain); f = f->parent) {
        chain[n++] = f;
        if (f == start)
            break;
    }
    char buf[MSG_MAX];
    size_t len = (size_t)snprintf(buf, sizeof buf, "Circular dependency: ");
    for (size_t k = n; k-- > 0 && len < sizeof buf;)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s -> ", chain[k]->reg->key);
    if (len < sizeof buf)
        snprintf(buf + len, sizeof buf - len, "%s", reg->key);
    return fail_plain(-EINVAL, "%s", buf);
}

int hk_scope_fail(hk_scope_t *scope, int err, const char *fmt, ...) {
    HK_UNUSED(scope);
    if (err >= 0)
        err = -EIO;
    tl_msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
        va_end(ap);
    }
    tl_msg_owner = tl_frame ? tl_frame->id : 0;
    if (!tl_frame)
        set_last(tl_msg);
    return err;
}

const char *hk_services_last_error(void) { return tl_last; }

/* ---- key table ------------------------------------------------------------------- */

static uint32_t hash_key(const char *k) {
    uint32_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

static struct kslot *ktab_find(const hk_services_t *s, const char *key) {
    if (!s->kcap)
        return NULL;
    uint32_t h = hash_key(key), mask = s->kcap - 1;
    for (uint32_t j = h & mask;; j = (j + 1) & mask) {
        struct kslot *ks = &s->ktab[j];
        if (!ks->key)
            return NULL;
        if (ks->hash == h && strcmp(ks->key, key) == 0)
            return ks;
    }
}

static struct kslot *ktab_slot_for(struct kslot *tab, uint32_t cap, uint32_t h) {
    for (uint32_t j = h & (cap - 1);; j = (j + 1) & (cap - 1))
        if (!tab[j].key)
            return &tab[j];
}

/* Makes room for one more key. */
static int ktab_reserve(hk_services_t *s) {
    if ((s->nkeys + 1) * 2 <= s->kcap)
        return 0;
    uint32_t cap = s->kcap ? s->kcap * 2 : 16;
    struct kslot *tab = hk__calloc(cap, sizeof *tab);
    if (!tab)
        return -ENOMEM;
    for (uint32_t j = 0; j < s->kcap; j++)
        if (s->ktab[j].key)
            *ktab_slot_for(tab, cap, s->ktab[j].hash) = s->ktab[j];
    hk__free(s->ktab);
    s->ktab = tab;
    s->kcap = cap;
    return 0;
}

/* ---- registry ---------------------------------------------------------------------- */

static void scope_init(hk_scope_t *sc, hk_services_t *s, bool root) {
    memset(sc, 0, sizeof *sc);
    sc->services = s;
    sc->root = root;
}

int hk_services_new(hk_services_t **ret_services) {
    if (!ret_services)
        return -EINVAL;
    hk_services_t *s = hk__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->frozen, false);
    pthread_mutex_init(&s->sing_mu, NULL);
    pthread_cond_init(&s->sing_cv, NULL);
    pthread_mutex_init(&s->root_mu, NULL);
    scope_init(&s->root, s, true);
    *ret_services = s;
    return 0;
}

static void destroy_instance(const struct reg *r, void *instance) {
    if (r->free_cb)
        r->free_cb(instance, r->data);
}

static void scope_release(hk_scope_t *sc) {
    const hk_services_t *s = sc->services;
    while (sc->n > 0) {
        struct entry *e = &sc->ents[--sc->n];
        if (!e->dead)
            destroy_instance(&s->regs[e->idx], e->instance);
    }
    for (size_t k = 0; k < sc->narrays; k++)
        hk__free(sc->arrays[k]);
    hk__free(sc->arrays);
    hk__free(sc->ents);
    hk__free(sc->slots);
}

void hk_services_free(hk_services_t *s) {
    if (!s)
        return;
    scope_release(&s->root);
    for (uint32_t i = s->nregs; i-- > 0;) {
        struct reg *r = &s->regs[i];
        if (r->data_destroy)
            r->data_destroy(r->data);
        hk__free(r->block);
    }
    hk__free(s->regs);
    hk__free(s->ktab);
    pthread_mutex_destroy(&s->sing_mu);
    pthread_cond_destroy(&s->sing_cv);
    pthread_mutex_destroy(&s->root_mu);
    hk__free(s);
}

static bool key_ok(const char *k) {
    if (!k)
        return false;
    size_t n = strnlen(k, KEY_MAX + 1);
    return n >= 1 && n <= KEY_MAX;
}

int hk_services_add(hk_services_t *s, const hk_service_desc_t *d) {
    if (!s || !d || !key_ok(d->key) || !d->factory)
        return -EINVAL;
    if (d->lifetime != HK_LIFETIME_SINGLETON && d->lifetime != HK_LIFETIME_SCOPED &&
        d->lifetime != HK_LIFETIME_TRANSIENT)
        return -EINVAL;
    if (atomic_load_explicit(&s->frozen, memory_order_relaxed))
        return -EBUSY;
    if (s->nregs >= (uint32_t)INT32_MAX)
        return -ENOMEM;

    /* One block: deps pointer array, then the key and every dep string. */
    size_t ndeps = 0, strs = strlen(d->key) + 1;
    for (; d->deps && d->deps[ndeps]; ndeps++) {
        if (!key_ok(d->deps[ndeps]))
            return -EINVAL;
        strs += strlen(d->deps[ndeps]) + 1;
    }
    char *block = hk__malloc(ndeps * sizeof(char *) + strs);
    if (!block)
        return -ENOMEM;
    const char **deps = (const char **)(void *)block;
    char *p = block + ndeps * sizeof(char *);
    size_t kl = strlen(d->key) + 1;
    memcpy(p, d->key, kl);
    const char *key = p;
    p += kl;
    for (size_t k = 0; k < ndeps; k++) {
        size_t l = strlen(d->deps[k]) + 1;
        memcpy(p, d->deps[k], l);
        deps[k] = p;
        p += l;
    }

    if (s->nregs == s->regs_cap) {
        uint32_t cap = s->regs_cap ? s->regs_cap * 2 : 8;
        struct reg *regs = hk__realloc(s->regs, cap * sizeof *regs);
        if (!regs)
            goto nomem;
        s->regs = regs;
        s->regs_cap = cap;
    }
    struct kslot *ks = ktab_find(s, key);
    if (!ks) {
        if (ktab_reserve(s) < 0)
            goto nomem;
        uint32_t h = hash_key(key);
        ks = ktab_slot_for(s->ktab, s->kcap, h);
        *ks = (struct kslot){.key = key, .hash = h, .first = s->nregs, .last = s->nregs};
        s->nkeys++;
    } else {
        s->regs[ks->last].next_same = s->nregs + 1;
        ks->last = s->nregs;
    }
    ks->count++;

    struct reg *r = &s->regs[s->nregs++];
    memset(r, 0, sizeof *r);
    atomic_init(&r->ready, NULL);
    r->lifetime = d->lifetime;
    r->factory = d->factory;
    r->free_cb = d->free;
    r->data = d->data;
    r->data_destroy = d->data_destroy;
    r->key = key;
    r->deps = deps;
    r->ndeps = (uint32_t)ndeps;
    r->block = block;
    return 0;
nomem:
    hk__free(block);
    return -ENOMEM;
}

static int add_lt(hk_services_t *s, hk_lifetime_t lt, const char *key, hk_factory_cb factory,
                  hk_instance_free_cb free_cb, void *data, const char *const *deps) {
    hk_service_desc_t d = {.key = key, .lifetime = lt, .factory = factory, .free = free_cb,
                           .data = data, .deps = deps};
    return hk_services_add(s, &d);
}

int hk_services_add_singleton(hk_services_t *s, const char *key, hk_factory_cb factory,
                              hk_instance_free_cb free_cb, void *data, const char *const *deps) {
    return add_lt(s, HK_LIFETIME_SINGLETON, key, factory, free_cb, data, deps);
}

int hk_services_add_scoped(hk_services_t *s, const char *key, hk_factory_cb factory,
                           hk_instance_free_cb free_cb, void *data, const char *const *deps) {
    return add_lt(s, HK_LIFETIME_SCOPED, key, factory, free_cb, data, deps);
}

int hk_services_add_transient(hk_services_t *s, const char *key, hk_factory_cb factory,
                              hk_instance_free_cb free_cb, void *data, const char *const *deps) {
    return add_lt(s, HK_LIFETIME_TRANSIENT, key, factory, free_cb, data, deps);
}

int hk__services_lifetime(const hk_services_t *s, hk_handle_t h) {
    return s && h != HK_HANDLE_NONE && h <= s->nregs ? (int)s->regs[h - 1].lifetime : -1;
}

hk_handle_t hk_services_handle(const hk_services_t *s, const char *key) {
    if (!s || !key)
        return HK_HANDLE_NONE;
    const struct kslot *ks = ktab_find(s, key);
    return ks ? ks->last + 1 : HK_HANDLE_NONE;
}

static void freeze(hk_services_t *s) {
    if (!atomic_load_explicit(&s->frozen, memory_order_relaxed))
        atomic_store_explicit(&s->frozen, true, memory_order_relaxed);
}

hk_scope_t *hk_services_root(hk_services_t *s) {
    if (!s)
        return NULL;
    freeze(s);
    return &s->root;
}

hk_services_t *hk_scope_services(const hk_scope_t *scope) { return scope ? scope->services : NULL; }

/* ---- validation -------------------------------------------------------------------- */

/*
 * The graph: one node per registration, an edge to every registration of
 * every key it depends on (get resolves the last, get_all every one), kept
 * as forward and reverse adjacency arrays (CSR) for the time of one call.
 */
struct graph {
    uint32_t n, e;
    uint32_t *off, *adj;   /* edges of v: adj[off[v] .. off[v + 1]) */
    uint32_t *roff, *radj; /* reverse edges */
};

struct vctx {
    const hk_services_t *s;
    void (*on_error)(void *data, const char *msg);
    void *data;
    char **msgs; /* reported so far, to report each problem once */
    size_t nmsgs, cap;
};

/* At most this many cycles are enumerated: their number can grow exponentially. */
#define CYCLES_MAX 256

/* Reports msg (taking it) unless already reported; 1 if new, 0 if not, -ENOMEM. */
static int report(struct vctx *v, char *msg) {
    if (!msg)
        return -ENOMEM;
    for (size_t k = 0; k < v->nmsgs; k++) {
        if (strcmp(v->msgs[k], msg) == 0) {
            hk__free(msg);
            return 0;
        }
    }
    if (v->nmsgs == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        char **m = hk__realloc(v->msgs, cap * sizeof *m);
        if (!m) {
            hk__free(msg);
            return -ENOMEM;
        }
        v->msgs = m;
        v->cap = cap;
    }
    v->msgs[v->nmsgs++] = msg;
    if (v->on_error)
        v->on_error(v->data, msg);
    return 1;
}

static int check_missing(struct vctx *v) {
    const hk_services_t *s = v->s;
    for (uint32_t i = 0; i < s->nregs; i++) {
        const struct reg *r = &s->regs[i];
        for (uint32_t k = 0; k < r->ndeps; k++) {
            if (ktab_find(s, r->deps[k]))
                continue;
            int rc = report(v, hk__asprintf("No service registered for \"%s\" (required by \"%s\")",
                                            r->deps[k], r->key));
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Adds every edge to g, or only counts the degrees while g->adj is NULL. */
static void graph_fill(const hk_services_t *s, struct graph *g) {
    for (uint32_t i = 0; i < s->nregs; i++) {
        const struct reg *r = &s->regs[i];
        for (uint32_t k = 0; k < r->ndeps; k++) {
            const struct kslot *ks = ktab_find(s, r->deps[k]);
            for (uint32_t t = ks ? ks->first + 1 : 0; t; t = s->regs[t - 1].next_same) {
                if (g->adj) {
                    g->adj[g->off[i + 1]++] = t - 1;
                    g->radj[g->roff[t]++] = i;
                } else {
                    g->off[i + 1]++;
                    g->roff[t]++;
                }
            }
        }
    }
}

static void graph_free(struct graph *g) {
    hk__free(g->off);
    hk__free(g->adj);
    hk__free(g->roff);
    hk__free(g->radj);
}

static int graph_build(const hk_services_t *s, struct graph *g) {
    memset(g, 0, sizeof *g);
    g->n = s->nregs;
    g->off = hk__calloc(g->n + 1, sizeof *g->off);
    g->roff = hk__calloc(g->n + 1, sizeof *g->roff);
    if (!g->off || !g->roff)
        return -ENOMEM;
    graph_fill(s, g); /* counts: off[i + 1] = out-degree of i */
    for (uint32_t i = 0; i < g->n; i++) {
        g->off[i + 1] += g->off[i];
        g->roff[i + 1] += g->roff[i];
    }
    g->e = g->off[g->n];
    g->adj = hk__calloc(g->e, sizeof *g->adj);
    g->radj = hk__calloc(g->e, sizeof *g->radj);
    if (!g->adj || !g->radj)
        return -ENOMEM;
    /* Fill again, using off[i + 1] / roff[i + 1] as cursors starting at the block's start. */
    for (uint32_t i = g->n; i > 0; i--) {
        g->off[i] = g->off[i - 1];
        g->roff[i] = g->roff[i - 1];
    }
    graph_fill(s, g); /* afterwards off[i + 1] is the end of i's block again */
    return 0;
}

/* Singletons reaching a scoped service directly or through transients. */
static int check_captive(struct vctx *v, const struct graph *g, uint32_t *visit, uint32_t *stack) {
    const hk_services_t *s = v->s;
    for (uint32_t i = 0; i < g->n; i++) {
        if (s->regs[i].lifetime != HK_LIFETIME_SINGLETON)
            continue;
        uint32_t stamp = i + 1, sp = 0;
        stack[sp++] = i;
        while (sp) {
            uint32_t u = stack[--sp];
            for (uint32_t k = g->off[u]; k < g->off[u + 1]; k++) {
                uint32_t t = g->adj[k];
                if (visit[t] == stamp)
                    continue;
                visit[t] = stamp;
                if (s->regs[t].lifetime == HK_LIFETIME_SCOPED) {
                    int rc = report(v, hk__asprintf("Cannot consume scoped service \"%s\" from "
                                                    "singleton \"%s\"",
                                                    s->regs[t].key, s->regs[i].key));
                    if (rc < 0)
                        return rc;
                } else if (s->regs[t].lifetime == HK_LIFETIME_TRANSIENT) {
                    stack[sp++] = t;
                }
            }
        }
    }
    return 0;
}

/* True when the graph has a cycle (depth-first search, a back edge). */
static bool has_cycle(const struct graph *g, unsigned char *color, uint32_t *stack, uint32_t *cursor) {
    enum { WHITE, GRAY, BLACK };
    for (uint32_t i = 0; i < g->n; i++) {
        if (color[i] != WHITE)
            continue;
        uint32_t sp = 0;
        stack[sp++] = i;
        cursor[i] = g->off[i];
        color[i] = GRAY;
        while (sp) {
            uint32_t u = stack[sp - 1];
            if (cursor[u] == g->off[u + 1]) {
                color[u] = BLACK;
                sp--;
                continue;
            }
            uint32_t t = g->adj[cursor[u]++];
            if (color[t] == GRAY)
                return true;
            if (color[t] == WHITE) {
                color[t] = GRAY;
                cursor[t] = g->off[t];
                stack[sp++] = t;
            }
        }
    }
    return false;
}

/* Working memory of Johnson's algorithm ("Finding all the elementary circuits
 * of a directed graph", 1975), which finds every elementary cycle once, from
 * its lowest-numbered node (the earliest registration), in O((n + e)(c + 1)). */
struct johnson {
    const struct graph *g;
    uint32_t s, stamp;
    uint32_t *comp;    /* comp[v] == stamp: v is in the strong component of s among nodes >= s */
    uint32_t *fwd;     /* fwd[v] == stamp: reachable from s */
    uint32_t *queue;   /* breadth-first queue, then the component's nodes */
    unsigned char *blocked;
    uint32_t *bhead;   /* B(v): list of pool entries (index + 1), 0: empty */
    uint32_t *pool_v, *pool_next, pool_free, pool_used;
    uint32_t *path;    /* nodes of the current path */
    uint32_t *cursor;  /* next edge per node on the path */
    unsigned char *found;
    uint32_t *work;    /* unblock worklist */
    unsigned cycles;
};

static void j_unblock(struct johnson *j, uint32_t u) {
    uint32_t n = 0;
    j->blocked[u] = 0;
    j->work[n++] = u;
    while (n) {
        uint32_t x = j->work[--n];
        while (j->bhead[x]) {
            uint32_t e = j->bhead[x] - 1, w = j->pool_v[e];
            j->bhead[x] = j->pool_next[e];
            j->pool_next[e] = j->pool_free;
            j->pool_free = e + 1;
            if (j->blocked[w]) {
                j->blocked[w] = 0;
                j->work[n++] = w;
            }
        }
    }
}

/* Adds v to B(w) unless already there. */
static void j_block_on(struct johnson *j, uint32_t w, uint32_t v) {
    for (uint32_t e = j->bhead[w]; e; e = j->pool_next[e - 1])
        if (j->pool_v[e - 1] == v)
            return;
    uint32_t e;
    if (j->pool_free) {
        e = j->pool_free - 1;
        j->pool_free = j->pool_next[e];
    } else {
        e = j->pool_used++; /* at most one entry per edge: the pool has e entries */
    }
    j->pool_v[e] = v;
    j->pool_next[e] = j->bhead[w];
    j->bhead[w] = e + 1;
}

static int j_report(struct vctx *v, const struct johnson *j, uint32_t depth) {
    const hk_services_t *s = v->s;
    static const char prefix[] = "Circular dependency: ";
    size_t len = sizeof prefix + strlen(s->regs[j->s].key);
    for (uint32_t k = 0; k < depth; k++)
        len += strlen(s->regs[j->path[k]].key) + 4;
    char *msg = hk__malloc(len), *p = msg;
    if (!msg)
        return -ENOMEM;
    memcpy(p, prefix, sizeof prefix - 1);
    p += sizeof prefix - 1;
    for (uint32_t k = 0; k < depth; k++) {
        const char *key = s->regs[j->path[k]].key;
        size_t l = strlen(key);
        memcpy(p, key, l);
        memcpy(p + l, " -> ", 4);
        p += l + 4;
    }
    strcpy(p, s->regs[j->s].key);
    return report(v, msg);
}

/* The strong component of s among nodes >= s: reachable from s and reaching it. */
static void j_component(struct johnson *j) {
    const struct graph *g = j->g;
    uint32_t s = j->s, head = 0, tail = 0;
    j->fwd[s] = j->stamp;
    j->queue[tail++] = s;
    while (head < tail) {
        uint32_t u = j->queue[head++];
        for (uint32_t k = g->off[u]; k < g->off[u + 1]; k++) {
            uint32_t w = g->adj[k];
            if (w >= s && j->fwd[w] != j->stamp) {
                j->fwd[w] = j->stamp;
                j->queue[tail++] = w;
            }
        }
    }
    head = tail = 0;
    j->comp[s] = j->stamp;
    j->queue[tail++] = s;
    while (head < tail) {
        uint32_t u = j->queue[head++];
        for (uint32_t k = g->roff[u]; k < g->roff[u + 1]; k++) {
            uint32_t w = g->radj[k];
            if (w >= s && j->fwd[w] == j->stamp && j->comp[w] != j->stamp) {
                j->comp[w] = j->stamp;
                j->queue[tail++] = w;
            }
        }
    }
    for (uint32_t k = 0; k < tail; k++) { /* fresh blocked flags and B lists */
        uint32_t u = j->queue[k];
        j->blocked[u] = 0;
        while (j->bhead[u]) {
            uint32_t e = j->bhead[u] - 1;
            j->bhead[u] = j->pool_next[e];
            j->pool_next[e] = j->pool_free;
            j->pool_free = e + 1;
        }
    }
}

/* Every elementary cycle through s within its component (Johnson's CIRCUIT, iterative). */
static int j_circuit(struct vctx *v, struct johnson *j) {
    const struct graph *g = j->g;
    uint32_t sp = 0, s = j->s;
    j->path[sp] = s;
    j->cursor[sp] = g->off[s];
    j->found[sp++] = 0;
    j->blocked[s] = 1;
    while (sp) {
        uint32_t u = j->path[sp - 1];
        if (j->cursor[sp - 1] < g->off[u + 1]) {
            uint32_t w = g->adj[j->cursor[sp - 1]++];
            if (j->comp[w] != j->stamp)
                continue;
            if (w == s) {
                int rc = j_report(v, j, sp);
                if (rc < 0)
                    return rc;
                j->found[sp - 1] = 1;
                if (++j->cycles >= CYCLES_MAX)
                    return 0;
            } else if (!j->blocked[w]) {
                j->blocked[w] = 1;
                j->path[sp] = w;
                j->cursor[sp] = g->off[w];
                j->found[sp++] = 0;
            }
            continue;
        }
        bool f = j->found[--sp];
        if (f) {
            j_unblock(j, u);
            if (sp)
                j->found[sp - 1] = 1;
        } else {
            for (uint32_t k = g->off[u]; k < g->off[u + 1]; k++)
                if (j->comp[g->adj[k]] == j->stamp)
                    j_block_on(j, g->adj[k], u);
        }
    }
    return 0;
}

static int check_cycles(struct vctx *v, const struct graph *g) {
    uint32_t n = g->n, e = g->e ? g->e : 1;
    struct johnson j = {.g = g};
    int rc = -ENOMEM;
    j.comp = hk__calloc(n, sizeof *j.comp);
    j.fwd = hk__calloc(n, sizeof *j.fwd);
    j.queue = hk__calloc(n, sizeof *j.queue);
    j.blocked = hk__calloc(n, sizeof *j.blocked);
    j.bhead = hk__calloc(n, sizeof *j.bhead);
    j.pool_v = hk__calloc(e, sizeof *j.pool_v);
    j.pool_next = hk__calloc(e, sizeof *j.pool_next);
    j.path = hk__calloc(n, sizeof *j.path);
    j.cursor = hk__calloc(n, sizeof *j.cursor);
    j.found = hk__calloc(n, sizeof *j.found);
    j.work = hk__calloc(n, sizeof *j.work);
    if (!j.comp || !j.fwd || !j.queue || !j.blocked || !j.bhead || !j.pool_v || !j.pool_next ||
        !j.path || !j.cursor || !j.found || !j.work)
        goto done;
    rc = 0;
    if (!has_cycle(g, j.blocked, j.queue, j.cursor))
        goto done;
    memset(j.blocked, 0, n);
    for (j.s = 0; j.s < n && j.cycles < CYCLES_MAX && rc == 0; j.s++) {
        j.stamp = j.s + 1;
        j_component(&j);
        rc = j_circuit(v, &j);
    }
done:
    hk__free(j.comp);
    hk__free(j.fwd);
    hk__free(j.queue);
    hk__free(j.blocked);
    hk__free(j.bhead);
    hk__free(j.pool_v);
    hk__free(j.pool_next);
    hk__free(j.path);
    hk__free(j.cursor);
    hk__free(j.found);
    hk__free(j.work);
    return rc;
}

int hk_services_validate(hk_services_t *s, void (*on_error)(void *data, const char *msg), void *data) {
    if (!s)
        return -EINVAL;
    freeze(s);
    struct vctx v = {.s = s, .on_error = on_error, .data = data};
    struct graph g = {0};
    uint32_t *visit = NULL, *stack = NULL;
    int rc = check_missing(&v);
    if (rc < 0 || s->nregs == 0)
        goto done;
    rc = graph_build(s, &g);
    if (rc < 0)
        goto done;
    rc = -ENOMEM;
    visit = hk__calloc(s->nregs, sizeof *visit);
    stack = hk__calloc(s->nregs, sizeof *stack);
    if (!visit || !stack)
        goto done;
    rc = check_captive(&v, &g, visit, stack);
    if (rc < 0)
        goto done;
    rc = check_cycles(&v, &g);
done:
    graph_free(&g);
    hk__free(visit);
    hk__free(stack);
    for (size_t k = 0; k < v.nmsgs; k++)
        hk__free(v.msgs[k]);
    hk__free(v.msgs);
    return rc < 0 ? rc : (int)v.nmsgs;
}

/* ---- scopes ------------------------------------------------------------------------ */

int hk_scope_new(hk_services_t *s, hk_scope_t **ret_scope) {
    if (!s || !ret_scope)
        return -EINVAL;
    freeze(s);
    hk_scope_t *sc = hk__malloc(sizeof *sc);
    if (!sc)
        return -ENOMEM;
    scope_init(sc, s, false);
    *ret_scope = sc;
    return 0;
}

void hk_scope_free(hk_scope_t *scope) {
    if (!scope || scope->root)
        return;
    scope_release(scope);
    hk__free(scope);
}

/* Grows ents for one more entry (caller holds root_mu for the root scope). */
static int ents_reserve(hk_scope_t *sc) {
    if (sc->n < sc->cap)
        return 0;
    size_t cap = sc->cap ? sc->cap * 2 : ENTS_INITIAL;
    struct entry *e = hk__realloc(sc->ents, cap * sizeof *e);
    if (!e)
        return -ENOMEM;
    sc->ents = e;
    sc->cap = cap;
    return 0;
}

static size_t scope_mark(hk_scope_t *sc) {
    if (!sc->root)
        return sc->n;
    pthread_mutex_lock(&sc->services->root_mu);
    size_t n = sc->n;
    pthread_mutex_unlock(&sc->services->root_mu);
    return n;
}

static int scope_append(hk_scope_t *sc, uint32_t idx, void *instance) {
    hk_services_t *s = sc->services;
    if (sc->root)
        pthread_mutex_lock(&s->root_mu);
    int rc = ents_reserve(sc);
    if (rc == 0)
        sc->ents[sc->n++] = (struct entry){.instance = instance, .idx = idx, .owner = &tl_thread};
    if (sc->root)
        pthread_mutex_unlock(&s->root_mu);
    return rc;
}

/* Destroys, newest first, what this thread created in sc since mark (invariant 3). */
static void scope_rollback(hk_scope_t *sc, size_t mark) {
    hk_services_t *s = sc->services;
    if (!sc->root) {
        while (sc->n > mark) {
            struct entry e = sc->ents[--sc->n];
            if (s->regs[e.idx].lifetime == HK_LIFETIME_SCOPED)
                sc->slots[e.idx] = NULL;
            destroy_instance(&s->regs[e.idx], e.instance);
        }
        return;
    }
    /* Root: entries never move; free callbacks run outside the lock. */
    pthread_mutex_lock(&s->root_mu);
    for (size_t k = sc->n; k > mark; k--) {
        struct entry *e = &sc->ents[k - 1];
        if (e->dead || e->owner != &tl_thread || s->regs[e->idx].lifetime == HK_LIFETIME_SINGLETON)
            continue;
        e->dead = true;
        struct entry copy = *e;
        pthread_mutex_unlock(&s->root_mu);
        destroy_instance(&s->regs[copy.idx], copy.instance);
        pthread_mutex_lock(&s->root_mu);
    }
    pthread_mutex_unlock(&s->root_mu);
}

/* A singleton succeeded: what its factory created in the root scope (transients)
 * is now part of it and no longer rolled back by an enclosing failure. */
static void scope_adopt(hk_scope_t *root, size_t mark) {
    hk_services_t *s = root->services;
    pthread_mutex_lock(&s->root_mu);
    for (size_t k = mark; k < root->n; k++)
        if (root->ents[k].owner == &tl_thread)
            root->ents[k].owner = NULL;
    pthread_mutex_unlock(&s->root_mu);
}

/* ---- resolution ---------------------------------------------------------------------- */

/* Runs reg's factory with sc as the owning scope and records the instance in sc. */
static int create(hk_scope_t *sc, const struct reg *r, uint32_t idx, void **ret) {
    size_t mark = scope_mark(sc);
    struct frame f = {.parent = tl_frame, .id = ++tl_frame_seq, .reg = r, .scope = sc};
    tl_frame = &f;
    void *inst = NULL;
    int rc = r->factory(sc, r->data, &inst);
    tl_frame = f.parent;
    if (rc < 0) {
        scope_rollback(sc, mark);
        return fail_creation(&f, rc, true);
    }
    if (scope_append(sc, idx, inst) < 0) {
        destroy_instance(r, inst);
        scope_rollback(sc, mark);
        return fail_creation(&f, -ENOMEM, false);
    }
    if (r->lifetime == HK_LIFETIME_SINGLETON)
        scope_adopt(sc, mark);
    *ret = inst;
    return 0;
}

/* True when the creator of r waits, directly or through other creators, for a
 * singleton this thread creates. Under sing_mu. */
static bool waits_for_me(const hk_services_t *s, const struct reg *r) {
    const struct thread_rec *t = r->creator;
    for (uint32_t hops = 0; t && hops <= s->nregs; hops++) {
        const struct reg *w = t->waiting_for;
        if (!w)
            return false;
        if (w->creator == &tl_thread)
            return true;
        t = w->creator;
    }
    return false;
}

static int get_singleton(hk_services_t *s, struct reg *r, uint32_t idx, void **ret) {
    pthread_mutex_lock(&s->sing_mu);
    for (;;) {
        void *p = atomic_load_explicit(&r->ready, memory_order_acquire);
        if (p) {
            pthread_mutex_unlock(&s->sing_mu);
            *ret = unwrap(p);
            return 0;
        }
        if (r->state == S_NONE)
            break;
        if (r->creator == &tl_thread) {
            pthread_mutex_unlock(&s->sing_mu);
            return fail_cycle(r, NULL, true);
        }
        if (waits_for_me(s, r)) {
            pthread_mutex_unlock(&s->sing_mu);
            return fail_plain(-EINVAL,
                              "Circular dependency: singleton \"%s\" is being created by another "
                              "thread that waits for a singleton this thread is creating",
                              r->key);
        }
        tl_thread.waiting_for = r;
        pthread_cond_wait(&s->sing_cv, &s->sing_mu);
        tl_thread.waiting_for = NULL;
    }
    r->state = S_CREATING;
    r->creator = &tl_thread;
    pthread_mutex_unlock(&s->sing_mu);

    void *inst = NULL;
    int rc = create(&s->root, r, idx, &inst);

    pthread_mutex_lock(&s->sing_mu);
    if (rc == 0) {
        atomic_store_explicit(&r->ready, wrap(inst), memory_order_release);
        r->state = S_CREATED;
    } else {
        r->state = S_NONE;
    }
    r->creator = NULL;
    pthread_cond_broadcast(&s->sing_cv);
    pthread_mutex_unlock(&s->sing_mu);
    if (rc == 0)
        *ret = inst;
    return rc;
}

static int fail_scoped_from_root(const struct reg *r) {
    /* Inside a singleton's factory (possibly through transients): a captive dependency. */
    for (const struct frame *f = tl_frame; f && f->scope->root; f = f->parent)
        if (f->reg->lifetime == HK_LIFETIME_SINGLETON)
            return fail_plain(-EINVAL, "Cannot consume scoped service \"%s\" from singleton \"%s\"",
                              r->key, f->reg->key);
    return fail_plain(-EINVAL,
                      "Cannot resolve scoped service \"%s\" from the root scope: create a scope "
                      "(hk_scope_new) and resolve it there",
                      r->key);
}

static int get_scoped(hk_scope_t *sc, const struct reg *r, uint32_t idx, void **ret) {
    if (sc->root)
        return fail_scoped_from_root(r);
    if (sc->slots && sc->slots[idx]) {
        *ret = unwrap(sc->slots[idx]);
        return 0;
    }
    for (const struct frame *f = tl_frame; f; f = f->parent)
        if (f->reg == r && f->scope == sc)
            return fail_cycle(r, sc, false);
    if (!sc->slots) {
        sc->slots = hk__calloc(sc->services->nregs, sizeof *sc->slots);
        if (!sc->slots)
            return fail_plain(-ENOMEM, "Cannot create \"%s\": %s", r->key, hk_strerror(-ENOMEM));
    }
    void *inst = NULL;
    int rc = create(sc, r, idx, &inst);
    if (rc < 0)
        return rc;
    sc->slots[idx] = wrap(inst);
    *ret = inst;
    return 0;
}

static int get_transient(hk_scope_t *sc, const struct reg *r, uint32_t idx, void **ret) {
    for (const struct frame *f = tl_frame; f; f = f->parent)
        if (f->reg == r)
            return fail_cycle(r, sc, true);
    return create(sc, r, idx, ret);
}

static int resolve(hk_scope_t *sc, uint32_t idx, void **ret) {
    hk_services_t *s = sc->services;
    struct reg *r = &s->regs[idx];
    switch (r->lifetime) {
    case HK_LIFETIME_SINGLETON:
        return get_singleton(s, r, idx, ret);
    case HK_LIFETIME_SCOPED:
        return get_scoped(sc, r, idx, ret);
    case HK_LIFETIME_TRANSIENT:
        return get_transient(sc, r, idx, ret);
    }
    return -EINVAL;
}

__attribute__((noinline)) static int get_slow(hk_scope_t *sc, hk_handle_t handle, void **ret) {
    if (handle - 1 >= sc->services->nregs)
        return fail_plain(-ENOENT, "No service registered for handle %u", (unsigned)handle);
    return resolve(sc, handle - 1, ret);
}

/* The hot path (invariant 2; a scoped instance already in the scope: an index). */
int hk_scope_get_handle(hk_scope_t *scope, hk_handle_t handle, void **ret_instance) {
    if (!scope || !ret_instance)
        return -EINVAL;
    const hk_services_t *s = scope->services;
    uint32_t i = handle - 1; /* wraps for HK_HANDLE_NONE */
    if (i < s->nregs) {
        struct reg *r = &s->regs[i];
        if (r->lifetime == HK_LIFETIME_SINGLETON) {
            void *p = atomic_load_explicit(&r->ready, memory_order_acquire);
            if (p) {
                *ret_instance = unwrap(p);
                return 0;
            }
        } else if (r->lifetime == HK_LIFETIME_SCOPED && scope->slots && scope->slots[i]) {
            *ret_instance = unwrap(scope->slots[i]);
            return 0;
        }
    }
    return get_slow(scope, handle, ret_instance);
}

int hk_scope_get(hk_scope_t *scope, const char *key, void **ret_instance) {
    if (!scope || !key || !ret_instance)
        return -EINVAL;
    hk_handle_t h = hk_services_handle(scope->services, key);
    if (h == HK_HANDLE_NONE)
        return fail_plain(-ENOENT, "No service registered for \"%.*s\"", KEY_MAX, key);
    return hk_scope_get_handle(scope, h, ret_instance);
}

/* Keeps arr until the scope is freed. */
static int scope_keep_array(hk_scope_t *sc, void **arr) {
    hk_services_t *s = sc->services;
    int rc = 0;
    if (sc->root)
        pthread_mutex_lock(&s->root_mu);
    if (sc->narrays == sc->arrays_cap) {
        size_t cap = sc->arrays_cap ? sc->arrays_cap * 2 : 4;
        void ***a = hk__realloc(sc->arrays, cap * sizeof *a);
        if (a) {
            sc->arrays = a;
            sc->arrays_cap = cap;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        sc->arrays[sc->narrays++] = arr;
    if (sc->root)
        pthread_mutex_unlock(&s->root_mu);
    return rc;
}

int hk_scope_get_all(hk_scope_t *scope, const char *key, void *const **ret_instances) {
    if (!scope || !key || !ret_instances)
        return -EINVAL;
    const struct kslot *ks = ktab_find(scope->services, key);
    if (!ks) {
        *ret_instances = NULL;
        return 0;
    }
    void **arr = hk__malloc(ks->count * sizeof *arr);
    if (!arr)
        return fail_plain(-ENOMEM, "Cannot resolve every \"%s\": %s", ks->key, hk_strerror(-ENOMEM));
    size_t mark = scope_mark(scope);
    uint32_t k = 0;
    for (uint32_t i = ks->first + 1; i; i = scope->services->regs[i - 1].next_same) {
        int rc = hk_scope_get_handle(scope, i, &arr[k++]);
        if (rc < 0) {
            scope_rollback(scope, mark);
            hk__free(arr);
            return rc;
        }
    }
    if (scope_keep_array(scope, arr) < 0) {
        scope_rollback(scope, mark);
        hk__free(arr);
        return fail_plain(-ENOMEM, "Cannot resolve every \"%s\": %s", ks->key, hk_strerror(-ENOMEM));
    }
    *ret_instances = arr;
    return (int)ks->count;
}
