/*
 * Supervision building blocks: restart policies (API defaults overridden by
 * Services:{Name}:Restart:* configuration), the full-jitter backoff, the
 * intensity window, service states and their snapshot API, and the
 * dependency graph (unknown names, cycles, start order). The decisions that
 * use them (restart, give up, rest_for_one) live in host.c, on the host
 * thread. Depends on src/common, src/config and host_int.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/host_int.h"

/* ---- test hooks: clock and random source -------------------------------- */

static hk__sup_hooks_t g_hooks;

void hk__sup_set_hooks(const hk__sup_hooks_t *hooks) {
    if (hooks)
        g_hooks = *hooks;
    else
        memset(&g_hooks, 0, sizeof g_hooks);
}

uint64_t hk__sup_now_ns(void) { return g_hooks.now_ns ? g_hooks.now_ns(g_hooks.data) : hk__now_ns(); }

/* xorshift64*: plenty for jitter; the state lives in the host (host thread). */
uint64_t hk__sup_random(uint64_t *state) {
    if (g_hooks.random)
        return g_hooks.random(g_hooks.data);
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15u ^ hk__now_ns();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}

uint64_t hk__backoff_ms(unsigned initial_ms, unsigned max_ms, unsigned attempt, uint64_t rnd,
                        uint64_t *ret_cap) {
    uint64_t cap = initial_ms;
    for (unsigned i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    if (ret_cap)
        *ret_cap = cap;
    /* rnd scaled onto [0, cap]: 0 -> 0, UINT64_MAX -> cap. */
    return (uint64_t)(((unsigned __int128)rnd * (cap + 1)) >> 64);
}

/* ---- states --------------------------------------------------------------- */

const char *hk_service_state_name(hk_service_state_t st) {
    switch (st) {
    case HK_SERVICE_CREATED: return "Created";
    case HK_SERVICE_STARTING: return "Starting";
    case HK_SERVICE_RUNNING: return "Running";
    case HK_SERVICE_BACKING_OFF: return "BackingOff";
    case HK_SERVICE_STOPPING: return "Stopping";
    case HK_SERVICE_STOPPED: return "Stopped";
    case HK_SERVICE_FAILED: return "Failed";
    }
    return "Unknown";
}

void hk__svc_set_state(hk_service_t *svc, hk_service_state_t st) {
    uint64_t now = hk__sup_now_ns();
    pthread_mutex_lock(&svc->state_mu);
    if (svc->state != st) {
        svc->state = st;
        svc->state_since_ns = now;
    }
    pthread_mutex_unlock(&svc->state_mu);
}

void hk__svc_set_error(hk_service_t *svc, int err, const char *text) {
    pthread_mutex_lock(&svc->state_mu);
    svc->last_error = err > 0 ? -EIO : err;
    snprintf(svc->last_error_text, sizeof svc->last_error_text, "%s", text ? text : "");
    pthread_mutex_unlock(&svc->state_mu);
}

size_t hk_host_service_status(hk_host_t *h, hk_service_status_t *out, size_t cap) {
    if (!h)
        return 0;
    for (size_t i = 0; i < h->nsvcs && out && i < cap; i++) {
        hk_service_t *svc = h->svcs[i];
        hk_service_status_t *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", svc->name);
        pthread_mutex_lock(&svc->state_mu);
        o->state = svc->state;
        o->restarts = svc->restarts;
        o->last_error = svc->last_error;
        memcpy(o->last_error_text, svc->last_error_text, sizeof o->last_error_text);
        o->state_since_ns = svc->state_since_ns;
        pthread_mutex_unlock(&svc->state_mu);
    }
    return h->nsvcs;
}

/* ---- policies ------------------------------------------------------------------ */

static const char *const policy_names[] = {"never", "on-failure", "always"};

static void read_uint(hk_config_t *c, const hk_service_t *svc, const char *what, int64_t max,
                      unsigned *val) {
    char key[128];
    snprintf(key, sizeof key, "Services:%s:Restart:%s", svc->name, what);
    int64_t v = *val;
    if (hk_config_get_int(c, key, v, 0, max, &v) == 0)
        *val = (unsigned)v;
}

void hk__sup_read_policy(hk_config_t *c, hk_service_t *svc) {
    hk_restart_policy_t *p = &svc->restart;
    *p = svc->def.restart;
    if ((unsigned)p->policy > HK_RESTART_ALWAYS)
        p->policy = HK_RESTART_NEVER;
    if (!p->backoff_initial_ms)
        p->backoff_initial_ms = 100;
    if (!p->backoff_max_ms)
        p->backoff_max_ms = 30000;
    if (!p->max_restarts)
        p->max_restarts = 5;
    if (!p->within_seconds)
        p->within_seconds = 60;
    char key[128];
    snprintf(key, sizeof key, "Services:%s:Restart:Policy", svc->name);
    int mode = (int)p->policy;
    if (hk_config_get_enum(c, key, policy_names, HK_ARRAY_SIZE(policy_names), mode, &mode) == 0)
        p->policy = (hk_restart_mode_t)mode;
    read_uint(c, svc, "BackoffInitialMs", 86400000, &p->backoff_initial_ms);
    read_uint(c, svc, "BackoffMaxMs", 86400000, &p->backoff_max_ms);
    read_uint(c, svc, "MaxRestarts", 10000, &p->max_restarts);
    read_uint(c, svc, "WithinSeconds", 86400, &p->within_seconds);
}

int hk__sup_prepare(hk_service_t *svc) {
    hk__free(svc->fail_ns);
    svc->fail_ns = NULL;
    svc->nfail = svc->fail_head = 0;
    if (svc->restart.policy == HK_RESTART_NEVER)
        return 0;
    svc->fail_ns = hk__calloc((size_t)svc->restart.max_restarts + 1, sizeof *svc->fail_ns);
    return svc->fail_ns ? 0 : -ENOMEM;
}

size_t hk__sup_record_failure(hk_service_t *svc, uint64_t now) {
    size_t cap = (size_t)svc->restart.max_restarts + 1;
    svc->fail_ns[svc->fail_head] = now;
    svc->fail_head = (svc->fail_head + 1) % cap;
    if (svc->nfail < cap)
        svc->nfail++;
    uint64_t window = (uint64_t)svc->restart.within_seconds * 1000000000u;
    size_t n = 0;
    for (size_t i = 0; i < svc->nfail; i++)
        if (now - svc->fail_ns[i] < window)
            n++;
    return n;
}

/* ---- dependencies ----------------------------------------------------------------- */

static void dep_error(void (*err)(void *, const char *), void *data, const char *fmt, ...)
    HK_PRINTF(3, 4);
static void dep_error(void (*err)(void *, const char *), void *data, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err(data, msg);
}

/* Depth-first search for a cycle; color 0 white, 1 on the stack, 2 done. */
static bool find_cycle(hk_service_t **svcs, size_t v, unsigned char *color, size_t *stack,
                       size_t depth, char *chain, size_t len) {
    color[v] = 1;
    stack[depth] = v;
    for (size_t k = 0; k < svcs[v]->ndeps; k++) {
        size_t w = svcs[v]->deps[k];
        if (color[w] == 1) {
            size_t off = 0, from = 0;
            while (stack[from] != w)
                from++;
            for (size_t i = from; i <= depth && off + 1 < len; i++) {
                int m = snprintf(chain + off, len - off, "%s -> ", svcs[stack[i]]->name);
                if (m > 0)
                    off += (size_t)m;
            }
            if (off + 1 < len)
                snprintf(chain + off, len - off, "%s", svcs[w]->name);
            return true;
        }
        if (color[w] == 0 && find_cycle(svcs, w, color, stack, depth + 1, chain, len))
            return true;
    }
    color[v] = 2;
    return false;
}

int hk__sup_resolve_deps(hk_service_t **svcs, size_t n, size_t **ret_order,
                         void (*err)(void *data, const char *msg), void *data) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        hk_service_t *svc = svcs[i];
        hk__free(svc->deps);
        svc->deps = NULL;
        svc->ndeps = 0;
        size_t cnt = 0;
        while (svc->dep_names && svc->dep_names[cnt])
            cnt++;
        if (!cnt)
            continue;
        svc->deps = hk__calloc(cnt, sizeof *svc->deps);
        if (!svc->deps)
            return -ENOMEM;
        for (size_t k = 0; k < cnt; k++) {
            size_t j = 0;
            while (j < n && strcasecmp(svcs[j]->name, svc->dep_names[k]) != 0)
                j++;
            if (j == n) {
                dep_error(err, data, "service %s depends on %s, which is not registered", svc->name,
                          svc->dep_names[k]);
                rc = -EINVAL;
                continue;
            }
            bool dup = false;
            for (size_t m = 0; m < svc->ndeps; m++)
                dup = dup || svc->deps[m] == j;
            if (!dup)
                svc->deps[svc->ndeps++] = j;
        }
    }
    if (rc < 0)
        return rc;
    unsigned char *color = hk__calloc(n ? n : 1, 1);
    size_t *stack = hk__calloc(n ? n : 1, sizeof *stack);
    size_t *order = hk__calloc(n ? n : 1, sizeof *order);
    if (!color || !stack || !order) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char chain[1024];
        if (color[i] == 0 && find_cycle(svcs, i, color, stack, 0, chain, sizeof chain)) {
            dep_error(err, data, "service dependency cycle: %s", chain);
            rc = -EINVAL;
            goto out;
        }
    }
    /* Kahn's algorithm, taking the first ready service in registration order:
     * without dependencies the order is the registration order. */
    memset(color, 0, n);
    for (size_t k = 0; k < n; k++) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++) {
            if (color[i])
                continue;
            bool ready = true;
            for (size_t d = 0; d < svcs[i]->ndeps && ready; d++)
                ready = color[svcs[i]->deps[d]] != 0;
            if (ready)
                pick = i;
        }
        if (pick == n) { /* cannot happen after the cycle check; never index past the end */
            dep_error(err, data, "service dependency cycle (unresolved order)");
            rc = -EINVAL;
            goto out;
        }
        color[pick] = 1;
        order[k] = pick;
    }
    *ret_order = order;
    order = NULL;
out:
    hk__free(color);
    hk__free(stack);
    hk__free(order);
    return rc;
}
