/*
 * The configuration store (include/hostkit/config.h): keys and values with
 * their source, the environment and command-line sources, typed getters.
 * Depends on libc and src/common only.
 *
 * Layout: `entries` keeps keys in insertion order; `index` is an
 * open-addressing table (linear probing, power-of-two size, load <= 1/2)
 * of positions in `entries`, hashed on the ASCII-lowercased key, so a lookup
 * is one hash and usually one strcasecmp. Keys are never removed.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "hostkit/config.h"

typedef struct entry {
    char *key;
    char *value;
    char *origin; /* "command line", "environment variable X", ... */
    hk_config_source_t source;
} entry_t;

struct hk_config_s {
    entry_t *entries;
    size_t n, cap;
    uint32_t *index; /* 0 = empty, else position + 1 */
    size_t index_cap;
    pthread_mutex_t err_mu; /* getters on several threads may record errors */
    char **errors;
    size_t nerrors, errors_cap;
    size_t nlost;   /* errors not stored for lack of memory, listed after errors[] */
    bool last_lost; /* the newest error is one of them */
};

static uint32_t key_hash(const char *k) {
    uint32_t h = 2166136261u; /* FNV-1a over the lowercased key */
    for (; *k; k++) {
        h ^= (uint8_t)tolower((unsigned char)*k);
        h *= 16777619u;
    }
    return h;
}

int hk_config_new(hk_config_t **ret_config) {
    if (!ret_config)
        return -EINVAL;
    hk_config_t *c = hk__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->err_mu, NULL);
    *ret_config = c;
    return 0;
}

void hk_config_free(hk_config_t *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        hk__free(c->entries[i].key);
        hk__free(c->entries[i].value);
        hk__free(c->entries[i].origin);
    }
    hk__free(c->entries);
    hk__free(c->index);
    for (size_t i = 0; i < c->nerrors; i++)
        hk__free(c->errors[i]);
    hk__free(c->errors);
    pthread_mutex_destroy(&c->err_mu);
    hk__free(c);
}

static entry_t *find(const hk_config_t *c, const char *key) {
    if (!c || !key || !c->index_cap)
        return NULL;
    size_t mask = c->index_cap - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
        uint32_t pos = c->index[i];
        if (!pos)
            return NULL;
        if (strcasecmp(c->entries[pos - 1].key, key) == 0)
            return &c->entries[pos - 1];
    }
}

static int index_grow(hk_config_t *c) {
    size_t cap = c->index_cap ? c->index_cap * 2 : 64;
    uint32_t *idx = hk__calloc(cap, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    for (size_t p = 0; p < c->n; p++) {
        size_t i = key_hash(c->entries[p].key) & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)(p + 1);
    }
    hk__free(c->index);
    c->index = idx;
    c->index_cap = cap;
    return 0;
}

static const char *source_name(hk_config_source_t s) {
    switch (s) {
    case HK_CONFIG_DEFAULT: return "default";
    case HK_CONFIG_HOST_ENV:
    case HK_CONFIG_ENV: return "environment";
    case HK_CONFIG_COMMAND_LINE: return "command line";
    case HK_CONFIG_OVERRIDE: return "override";
    }
    return "unknown";
}

int hk_config_set_source(hk_config_t *c, const char *key, const char *value,
                         hk_config_source_t source, const char *origin) {
    if (!c || !key || !*key || !value || (unsigned)source > HK_CONFIG_OVERRIDE)
        return -EINVAL;
    entry_t *e = find(c, key);
    if (e && e->source > source)
        return 0; /* a higher-precedence source already set it */
    char *v = hk__strdup(value);
    char *o = hk__strdup(origin ? origin : source_name(source));
    if (!v || !o) {
        hk__free(v);
        hk__free(o);
        return -ENOMEM;
    }
    if (e) {
        hk__free(e->value);
        hk__free(e->origin);
        e->value = v;
        e->origin = o;
        e->source = source;
        return 0;
    }
    char *k = hk__strdup(key);
    if (!k)
        goto oom;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        entry_t *ne = hk__realloc(c->entries, cap * sizeof *ne);
        if (!ne)
            goto oom;
        c->entries = ne;
        c->cap = cap;
    }
    if ((c->n + 1) * 2 > c->index_cap && index_grow(c) < 0)
        goto oom;
    c->entries[c->n] = (entry_t){k, v, o, source};
    size_t mask = c->index_cap - 1;
    size_t i = key_hash(k) & mask;
    while (c->index[i])
        i = (i + 1) & mask;
    c->index[i] = (uint32_t)(c->n + 1);
    c->n++;
    return 0;
oom:
    hk__free(k);
    hk__free(v);
    hk__free(o);
    return -ENOMEM;
}

int hk_config_set(hk_config_t *c, const char *key, const char *value) {
    return hk_config_set_source(c, key, value, HK_CONFIG_OVERRIDE, NULL);
}

int hk_config_set_default(hk_config_t *c, const char *key, const char *value) {
    return hk_config_set_source(c, key, value, HK_CONFIG_DEFAULT, NULL);
}

const char *hk_config_get(const hk_config_t *c, const char *key) {
    entry_t *e = find(c, key);
    return e ? e->value : NULL;
}

const char *hk_config_source_of(const hk_config_t *c, const char *key) {
    entry_t *e = find(c, key);
    return e ? e->origin : NULL;
}

size_t hk_config_count(const hk_config_t *c) { return c ? c->n : 0; }

const char *hk_config_key_at(const hk_config_t *c, size_t i) {
    return c && i < c->n ? c->entries[i].key : NULL;
}

/* ---- errors -------------------------------------------------------------- */

/* Stands for an error whose message or slot could not be allocated: the
 * error still counts (the host must not start), only its text is lost. */
static const char oom_error[] = "out of memory while recording a configuration error";

static void record_error(hk_config_t *c, char *msg /* owned, may be NULL (OOM) */) {
    pthread_mutex_lock(&c->err_mu);
    if (msg && c->nerrors == c->errors_cap) {
        size_t cap = c->errors_cap ? c->errors_cap * 2 : 8;
        char **ne = hk__realloc(c->errors, cap * sizeof *ne);
        if (ne) {
            c->errors = ne;
            c->errors_cap = cap;
        } else {
            hk__free(msg);
            msg = NULL;
        }
    }
    if (msg)
        c->errors[c->nerrors++] = msg;
    else
        c->nlost++;
    c->last_lost = !msg;
    pthread_mutex_unlock(&c->err_mu);
}

size_t hk_config_error_count(const hk_config_t *c) {
    if (!c)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&c->err_mu);
    size_t n = c->nerrors + c->nlost;
    pthread_mutex_unlock((pthread_mutex_t *)&c->err_mu);
    return n;
}

const char *hk_config_error(const hk_config_t *c, size_t i) {
    if (!c)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&c->err_mu);
    const char *e = i < c->nerrors ? c->errors[i] : i - c->nerrors < c->nlost ? oom_error : NULL;
    pthread_mutex_unlock((pthread_mutex_t *)&c->err_mu);
    return e;
}

const char *hk_config_last_error(const hk_config_t *c) {
    if (!c)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&c->err_mu);
    const char *e = c->last_lost ? oom_error : c->nerrors ? c->errors[c->nerrors - 1] : NULL;
    pthread_mutex_unlock((pthread_mutex_t *)&c->err_mu);
    return e;
}

/* ---- sources ------------------------------------------------------------- */

/* Copies name[0..len) mapping "__" to ':'. */
static char *env_key(const char *name, size_t len) {
    char *k = hk__malloc(len + 1);
    if (!k)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '_' && i + 1 < len && name[i + 1] == '_') {
            k[j++] = ':';
            i++;
        } else {
            k[j++] = name[i];
        }
    }
    k[j] = '\0';
    return k;
}

static int add_env_pass(hk_config_t *c, char *const *envp, bool host_only) {
    static const char prefix[] = "HOSTKIT_";
    const size_t plen = sizeof prefix - 1;
    for (char *const *p = envp; *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p)
            continue;
        size_t nlen = (size_t)(eq - *p);
        const char *name = *p;
        if (host_only) {
            if (nlen <= plen || strncmp(name, prefix, plen) != 0)
                continue;
            name += plen;
            nlen -= plen;
        }
        char *key = env_key(name, nlen);
        char *origin = hk__asprintf("environment variable %.*s", (int)(eq - *p), *p);
        int rc = (key && origin) ? 0 : -ENOMEM;
        if (rc == 0 && *key)
            rc = hk_config_set_source(c, key, eq + 1, host_only ? HK_CONFIG_HOST_ENV : HK_CONFIG_ENV,
                                      origin);
        hk__free(key);
        hk__free(origin);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int hk_config_add_env(hk_config_t *c, char *const *envp) {
    if (!c)
        return -EINVAL;
    if (!envp)
        return 0;
    int rc = add_env_pass(c, envp, true);
    return rc < 0 ? rc : add_env_pass(c, envp, false);
}

typedef struct kv {
    const char *key;
    size_t key_len;
    const char *value;
} kv_t;

static int arg_error(hk_config_t *c, kv_t *pairs, const char *fmt, ...) HK_PRINTF(3, 4);
static int arg_error(hk_config_t *c, kv_t *pairs, const char *fmt, ...) {
    hk__free(pairs);
    va_list ap;
    va_start(ap, fmt);
    record_error(c, hk__vasprintf(fmt, ap));
    va_end(ap);
    return -EINVAL;
}

int hk_config_add_args(hk_config_t *c, int argc, char *const *argv) {
    if (!c || argc < 0 || (argc > 0 && !argv))
        return -EINVAL;
    if (argc <= 1)
        return 0;
    /* Parse everything first, apply only when all of it is well-formed. */
    kv_t *pairs = hk__calloc((size_t)argc, sizeof *pairs);
    if (!pairs)
        return -ENOMEM;
    size_t np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!a)
            continue;
        const char *body;
        bool is_switch = false;
        if (a[0] == '-' && a[1] == '-') {
            body = a + 2;
            is_switch = true;
        } else if (a[0] == '/') {
            body = a + 1;
            is_switch = true;
        } else if (a[0] == '-') {
            return arg_error(c, pairs,
                             "malformed command line: unknown option '%s' (options are "
                             "--Key=Value, --Key Value, /Key=Value or Key=Value)",
                             a);
        } else {
            body = a;
        }
        const char *eq = strchr(body, '=');
        if (eq) {
            if (eq == body)
                return arg_error(c, pairs, "malformed command line: empty key in '%s'", a);
            pairs[np++] = (kv_t){body, (size_t)(eq - body), eq + 1};
        } else if (is_switch) {
            if (!*body)
                return arg_error(c, pairs, "malformed command line: empty key in '%s'", a);
            if (i + 1 >= argc || !argv[i + 1])
                return arg_error(c, pairs, "malformed command line: missing value for '%s'", a);
            pairs[np++] = (kv_t){body, strlen(body), argv[++i]};
        } else {
            return arg_error(c, pairs,
                             "malformed command line: unexpected argument '%s' (options are "
                             "--Key=Value, --Key Value, /Key=Value or Key=Value)",
                             a);
        }
    }
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        char *key = hk__strndup(pairs[i].key, pairs[i].key_len);
        rc = key ? hk_config_set_source(c, key, pairs[i].value, HK_CONFIG_COMMAND_LINE, NULL)
                 : -ENOMEM;
        hk__free(key);
    }
    hk__free(pairs);
    return rc;
}

/* ---- typed getters ------------------------------------------------------- */

/* The value to parse, or NULL when the default applies. */
static const entry_t *lookup(const hk_config_t *c, const char *key) {
    const entry_t *e = find(c, key);
    return e && e->value[0] ? e : NULL;
}

static int bad_value(hk_config_t *c, const char *key, const entry_t *e, int err, const char *what) {
    record_error(c, hk__asprintf("%s: \"%s\" %s (from %s)", key, e->value, what, e->origin));
    return err;
}

int hk_config_get_int(hk_config_t *c, const char *key, int64_t def, int64_t min, int64_t max,
                      int64_t *ret) {
    if (!c || !key || !ret || min > max)
        return -EINVAL;
    const entry_t *e = lookup(c, key);
    if (!e) {
        *ret = def;
        return 0;
    }
    const char *s = e->value;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || isspace((unsigned char)*s))
        return bad_value(c, key, e, -EINVAL, "is not an integer");
    if (errno == ERANGE || v < min || v > max) {
        char what[96];
        snprintf(what, sizeof what, "is out of range [%lld, %lld]", (long long)min, (long long)max);
        return bad_value(c, key, e, -ERANGE, what);
    }
    *ret = v;
    return 0;
}

int hk_config_get_double(hk_config_t *c, const char *key, double def, double min, double max,
                         double *ret) {
    if (!c || !key || !ret || !(min <= max))
        return -EINVAL;
    const entry_t *e = lookup(c, key);
    if (!e) {
        *ret = def;
        return 0;
    }
    const char *s = e->value;
    char *end;
    double v = strtod(s, &end);
    /* strtod also takes hex, inf and nan: accept plain decimal notation only. */
    bool plain = strspn(s, "+-0123456789.eE") == strlen(s);
    if (end == s || *end || !plain || !isfinite(v))
        return bad_value(c, key, e, -EINVAL, "is not a number");
    if (v < min || v > max) {
        char what[96];
        snprintf(what, sizeof what, "is out of range [%g, %g]", min, max);
        return bad_value(c, key, e, -ERANGE, what);
    }
    *ret = v;
    return 0;
}

int hk_config_get_bool(hk_config_t *c, const char *key, bool def, bool *ret) {
    if (!c || !key || !ret)
        return -EINVAL;
    const entry_t *e = lookup(c, key);
    if (!e) {
        *ret = def;
        return 0;
    }
    if (strcasecmp(e->value, "true") == 0)
        *ret = true;
    else if (strcasecmp(e->value, "false") == 0)
        *ret = false;
    else
        return bad_value(c, key, e, -EINVAL, "is not a boolean (true or false)");
    return 0;
}

int hk_config_get_enum(hk_config_t *c, const char *key, const char *const *names, size_t n, int def,
                       int *ret) {
    if (!c || !key || !names || !n || !ret)
        return -EINVAL;
    const entry_t *e = lookup(c, key);
    if (!e) {
        *ret = def;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i] && strcasecmp(e->value, names[i]) == 0) {
            *ret = (int)i;
            return 0;
        }
    }
    /* "is not one of A, B, C" */
    size_t len = 16;
    for (size_t i = 0; i < n; i++)
        len += (names[i] ? strlen(names[i]) : 0) + 2;
    char *what = hk__malloc(len);
    if (!what)
        return bad_value(c, key, e, -EINVAL, "is not an allowed value");
    strcpy(what, "is not one of ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(what, ", ");
        strcat(what, names[i] ? names[i] : "");
    }
    int rc = bad_value(c, key, e, -EINVAL, what);
    hk__free(what);
    return rc;
}

const char *hk_config_get_string(const hk_config_t *c, const char *key, const char *def) {
    const entry_t *e = lookup(c, key);
    return e ? e->value : def;
}
