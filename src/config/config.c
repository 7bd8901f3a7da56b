/*
 * The configuration store (include/hostkit/config.h): keys and values with
 * their source; the environment, command-line, JSON-file and custom
 * providers; typed getters; the two-phase reload used by the host.
 * Depends on libc, pthreads, src/common and src/config/json (jansson).
 *
 * Layout: `entries` keeps keys in insertion order; `index` is an
 * open-addressing table (linear probing, power-of-two size, load <= 1/2)
 * of positions in `entries`, hashed on the ASCII-lowercased key, so a lookup
 * is one hash and usually one strcasecmp. A view is never shrunk in place:
 * a reload builds a new one (keys may disappear there) and retires the old.
 */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "config/config_int.h"
#include "config/json.h"
#include "hostkit/config.h"

typedef struct entry {
    char *key;
    char *value;
    char *origin; /* "command line", "environment variable X", "appsettings.json" ... */
    int rank;     /* precedence of the provider that set it */
} entry_t;

/* Keys in insertion order plus an open-addressing index over them. */
typedef struct table {
    entry_t *entries;
    size_t n, cap;
    uint32_t *index; /* 0 = empty, else position + 1 */
    size_t index_cap;
} table_t;

typedef enum prov_kind { PROV_MEMORY, PROV_JSON, PROV_CUSTOM } prov_kind_t;

/*
 * A source of keys. Memory providers (defaults, environment, command line,
 * overrides) hold what was set into them; JSON and custom providers refill
 * `data` on every (re)load. The merged view is rebuilt from all of them on
 * a reload, in rank order.
 */
typedef struct provider {
    prov_kind_t kind;
    int rank;
    char *name; /* origin of its values: "appsettings.json", a custom name */
    char *path; /* JSON: the file to read */
    bool optional, reload_on_change;
    hk_config_provider_t custom;
    table_t data;
} provider_t;

/* Ranks: the five built-in sources, with files and custom providers between
 * the HOSTKIT_ variables and the plain environment variables. */
enum {
    RANK_DEFAULT = 0,
    RANK_HOST_ENV = 100,
    RANK_FILES = 200, /* appsettings.json 200, appsettings.{Env}.json 201, then added ones */
    RANK_ENV = 10000,
    RANK_COMMAND_LINE = 10100,
    RANK_OVERRIDE = 10200,
};

struct hk_config_s {
    table_t *_Atomic cur;   /* merged view; readers load it with acquire */
    table_t **retired;      /* earlier views, kept so returned strings stay valid */
    size_t nretired;
    provider_t **provs;     /* ascending rank */
    size_t nprovs;
    int next_file_rank;
    unsigned flags;         /* HK__FLAG_* from the command line */
    table_t **staged;       /* pending reload: new data per provider (NULL: unchanged) */
    size_t nstaged;
    void (*_Atomic hook)(void *); /* hk_config_request_reload goes here */
    void *_Atomic hook_data;
    atomic_bool reload_pending;
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

/* ---- tables ------------------------------------------------------------- */

static void table_clear(table_t *t) {
    for (size_t i = 0; i < t->n; i++) {
        hk__free(t->entries[i].key);
        hk__free(t->entries[i].value);
        hk__free(t->entries[i].origin);
    }
    hk__free(t->entries);
    hk__free(t->index);
    memset(t, 0, sizeof *t);
}

static void table_free(table_t *t) {
    if (t) {
        table_clear(t);
        hk__free(t);
    }
}

static entry_t *table_find(const table_t *t, const char *key) {
    if (!t || !key || !t->index_cap)
        return NULL;
    size_t mask = t->index_cap - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
        uint32_t pos = t->index[i];
        if (!pos)
            return NULL;
        if (strcasecmp(t->entries[pos - 1].key, key) == 0)
            return &t->entries[pos - 1];
    }
}

static int index_grow(table_t *t) {
    size_t cap = t->index_cap ? t->index_cap * 2 : 64;
    uint32_t *idx = hk__calloc(cap, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    for (size_t p = 0; p < t->n; p++) {
        size_t i = key_hash(t->entries[p].key) & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)(p + 1);
    }
    hk__free(t->index);
    t->index = idx;
    t->index_cap = cap;
    return 0;
}

/*
 * A set in two steps, so that a set touching two tables changes neither
 * when memory runs out: prep allocates everything (and grows capacity,
 * which changes no content); commit cannot fail.
 */
typedef struct prep {
    entry_t *existing;
    char *key, *value, *origin;
} prep_t;

static void prep_discard(prep_t *p) {
    hk__free(p->key);
    hk__free(p->value);
    hk__free(p->origin);
    memset(p, 0, sizeof *p);
}

static int table_prep(table_t *t, const char *key, const char *value, const char *origin, prep_t *p) {
    memset(p, 0, sizeof *p);
    p->existing = table_find(t, key);
    p->value = hk__strdup(value);
    p->origin = hk__strdup(origin);
    if (!p->value || !p->origin)
        goto oom;
    if (p->existing)
        return 0;
    p->key = hk__strdup(key);
    if (!p->key)
        goto oom;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        entry_t *ne = hk__realloc(t->entries, cap * sizeof *ne);
        if (!ne)
            goto oom;
        t->entries = ne;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->index_cap && index_grow(t) < 0)
        goto oom;
    return 0;
oom:
    prep_discard(p);
    return -ENOMEM;
}

static void table_commit(table_t *t, prep_t *p, int rank) {
    if (p->existing) {
        hk__free(p->existing->value);
        hk__free(p->existing->origin);
        p->existing->value = p->value;
        p->existing->origin = p->origin;
        p->existing->rank = rank;
    } else {
        t->entries[t->n] = (entry_t){p->key, p->value, p->origin, rank};
        size_t mask = t->index_cap - 1;
        size_t i = key_hash(p->key) & mask;
        while (t->index[i])
            i = (i + 1) & mask;
        t->index[i] = (uint32_t)(t->n + 1);
        t->n++;
    }
    memset(p, 0, sizeof *p);
}

static int table_set(table_t *t, const char *key, const char *value, const char *origin, int rank) {
    prep_t p;
    int rc = table_prep(t, key, value, origin, &p);
    if (rc == 0)
        table_commit(t, &p, rank);
    return rc;
}

/* ---- the store ------------------------------------------------------------ */

static table_t *cur(const hk_config_t *c) {
    return c ? atomic_load_explicit(&((hk_config_t *)c)->cur, memory_order_acquire) : NULL;
}

int hk_config_new(hk_config_t **ret_config) {
    if (!ret_config)
        return -EINVAL;
    hk_config_t *c = hk__calloc(1, sizeof *c);
    table_t *t = hk__calloc(1, sizeof *t);
    if (!c || !t) {
        hk__free(c);
        hk__free(t);
        return -ENOMEM;
    }
    atomic_init(&c->cur, t);
    c->next_file_rank = RANK_FILES + 10;
    pthread_mutex_init(&c->err_mu, NULL);
    *ret_config = c;
    return 0;
}

static void provider_free(provider_t *p) {
    if (!p)
        return;
    table_clear(&p->data);
    if (p->kind == PROV_CUSTOM && p->custom.destroy)
        p->custom.destroy(p->custom.data);
    hk__free(p->name);
    hk__free(p->path);
    hk__free(p);
}

void hk_config_free(hk_config_t *c) {
    if (!c)
        return;
    table_free(cur(c));
    for (size_t i = 0; i < c->nstaged; i++)
        table_free(c->staged[i]);
    hk__free(c->staged);
    for (size_t i = 0; i < c->nretired; i++)
        table_free(c->retired[i]);
    hk__free(c->retired);
    for (size_t i = 0; i < c->nprovs; i++)
        provider_free(c->provs[i]);
    hk__free(c->provs);
    for (size_t i = 0; i < c->nerrors; i++)
        hk__free(c->errors[i]);
    hk__free(c->errors);
    pthread_mutex_destroy(&c->err_mu);
    hk__free(c);
}

/* Inserts p keeping ascending rank order. Takes ownership on success. */
static int add_provider(hk_config_t *c, provider_t *p) {
    provider_t **np = hk__realloc(c->provs, (c->nprovs + 1) * sizeof *np);
    if (!np)
        return -ENOMEM;
    c->provs = np;
    size_t i = c->nprovs;
    while (i > 0 && c->provs[i - 1]->rank > p->rank) {
        c->provs[i] = c->provs[i - 1];
        i--;
    }
    c->provs[i] = p;
    c->nprovs++;
    return 0;
}

static provider_t *find_provider(hk_config_t *c, int rank) {
    for (size_t i = 0; i < c->nprovs; i++)
        if (c->provs[i]->rank == rank)
            return c->provs[i];
    return NULL;
}

static int source_rank(hk_config_source_t s) {
    switch (s) {
    case HK_CONFIG_DEFAULT: return RANK_DEFAULT;
    case HK_CONFIG_HOST_ENV: return RANK_HOST_ENV;
    case HK_CONFIG_ENV: return RANK_ENV;
    case HK_CONFIG_COMMAND_LINE: return RANK_COMMAND_LINE;
    case HK_CONFIG_OVERRIDE: return RANK_OVERRIDE;
    }
    return -1;
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

/* The memory provider behind a built-in source, created on first use. */
static provider_t *memory_provider(hk_config_t *c, hk_config_source_t s) {
    int rank = source_rank(s);
    provider_t *p = find_provider(c, rank);
    if (p)
        return p;
    p = hk__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->kind = PROV_MEMORY;
    p->rank = rank;
    if (add_provider(c, p) < 0) {
        hk__free(p);
        return NULL;
    }
    return p;
}

/* Sets key in provider p and, if p wins for it, in the merged view; all or nothing. */
static int provider_set(hk_config_t *c, provider_t *p, const char *key, const char *value,
                        const char *origin) {
    table_t *view = cur(c);
    entry_t *e = table_find(view, key);
    bool wins = !e || e->rank <= p->rank;
    prep_t pp, pv;
    int rc = table_prep(&p->data, key, value, origin, &pp);
    if (rc < 0)
        return rc;
    if (wins && (rc = table_prep(view, key, value, origin, &pv)) < 0) {
        prep_discard(&pp);
        return rc;
    }
    table_commit(&p->data, &pp, p->rank);
    if (wins)
        table_commit(view, &pv, p->rank);
    return 0;
}

int hk_config_set_source(hk_config_t *c, const char *key, const char *value,
                         hk_config_source_t source, const char *origin) {
    if (!c || !key || !*key || !value || (unsigned)source > HK_CONFIG_OVERRIDE)
        return -EINVAL;
    provider_t *p = memory_provider(c, source);
    if (!p)
        return -ENOMEM;
    return provider_set(c, p, key, value, origin ? origin : source_name(source));
}

int hk_config_set(hk_config_t *c, const char *key, const char *value) {
    return hk_config_set_source(c, key, value, HK_CONFIG_OVERRIDE, NULL);
}

int hk_config_set_default(hk_config_t *c, const char *key, const char *value) {
    return hk_config_set_source(c, key, value, HK_CONFIG_DEFAULT, NULL);
}

const char *hk_config_get(const hk_config_t *c, const char *key) {
    entry_t *e = table_find(cur(c), key);
    return e ? e->value : NULL;
}

const char *hk_config_source_of(const hk_config_t *c, const char *key) {
    entry_t *e = table_find(cur(c), key);
    return e ? e->origin : NULL;
}

size_t hk_config_count(const hk_config_t *c) {
    table_t *t = cur(c);
    return t ? t->n : 0;
}

const char *hk_config_key_at(const hk_config_t *c, size_t i) {
    table_t *t = cur(c);
    return t && i < t->n ? t->entries[i].key : NULL;
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

int hk_config_record_error(hk_config_t *c, const char *fmt, ...) {
    if (!c || !fmt)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    char *msg = hk__vasprintf(fmt, ap);
    va_end(ap);
    int rc = msg ? 0 : -ENOMEM;
    record_error(c, msg);
    return rc;
}

static int arg_error(hk_config_t *c, kv_t *pairs, const char *fmt, ...) HK_PRINTF(3, 4);
static int arg_error(hk_config_t *c, kv_t *pairs, const char *fmt, ...) {
    hk__free(pairs);
    va_list ap;
    va_start(ap, fmt);
    record_error(c, hk__vasprintf(fmt, ap));
    va_end(ap);
    return -EINVAL;
}

/* --help (-h, -?, /?), --version, --print-config: switches, not keys. */
static unsigned reserved_flag(const char *a) {
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "-?") || !strcmp(a, "/?"))
        return HK__FLAG_HELP;
    if (!strcmp(a, "--version"))
        return HK__FLAG_VERSION;
    if (!strcmp(a, "--print-config"))
        return HK__FLAG_PRINT_CONFIG;
    return 0;
}

unsigned hk__config_flags(const hk_config_t *c) { return c ? c->flags : 0; }

const char *hk__config_get_host(hk_config_t *c, const char *key) {
    /* Highest rank first: overrides, command line, HOSTKIT_ variables, defaults. */
    static const int ranks[] = {RANK_OVERRIDE, RANK_COMMAND_LINE, RANK_HOST_ENV, RANK_DEFAULT};
    for (size_t i = 0; c && i < HK_ARRAY_SIZE(ranks); i++) {
        provider_t *p = find_provider(c, ranks[i]);
        entry_t *e = p ? table_find(&p->data, key) : NULL;
        if (e && e->value[0])
            return e->value;
    }
    return NULL;
}

int hk_config_add_args(hk_config_t *c, int argc, char *const *argv) {
    if (!c || argc < 0 || (argc > 0 && !argv))
        return -EINVAL;
    if (argc <= 1)
        return 0;
    /* Reserved switches count wherever they are, even after a bad argument. */
    for (int i = 1; i < argc; i++)
        if (argv[i])
            c->flags |= reserved_flag(argv[i]);
    /* Parse everything first, apply only when all of it is well-formed. */
    kv_t *pairs = hk__calloc((size_t)argc, sizeof *pairs);
    if (!pairs)
        return -ENOMEM;
    size_t np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!a)
            continue;
        if (reserved_flag(a))
            continue; /* handled by the host before configuration */
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
    const entry_t *e = table_find(cur(c), key);
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
        snprintf(what, sizeof what, "is out of range [%.15g, %.15g]", min, max);
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

/* ======================================================================== */
/* JSON files and custom providers                                          */
/* ======================================================================== */

struct hk_config_sink_s {
    table_t *table;
    const char *origin;
    int rank;
};

int hk_config_sink_set(hk_config_sink_t *sink, const char *key, const char *value) {
    if (!sink || !key || !*key || !value)
        return -EINVAL;
    return table_set(sink->table, key, value, sink->origin, sink->rank);
}

/* JSON keys: case-insensitive after flattening, so {"Count":1,"count":2} and
 * {"A:B":1,"A":{"B":2}} are duplicates, as in .NET. */
typedef struct json_sink {
    hk_config_sink_t sink;
    char *error;
} json_sink_t;

static int json_cb(void *data, const char *key, const char *value) {
    json_sink_t *js = data;
    entry_t *e = table_find(js->sink.table, key);
    if (e) {
        js->error = hk__asprintf("%s: duplicate key \"%s\" (keys are case-insensitive and \"%s\" "
                                 "was already set)",
                                 js->sink.origin, key, e->key);
        return js->error ? -EEXIST : -ENOMEM;
    }
    int rc = hk_config_sink_set(&js->sink, key, value);
    return rc == -EINVAL ? 0 : rc; /* an empty key cannot be addressed: skip it */
}

#define MAX_FILE_BYTES (64u << 20)

/* Reads a whole file. Returns 0, -ENOENT, -EFBIG, -ENOMEM or another -errno. */
static int read_file(const char *path, char **ret_buf, size_t *ret_len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    for (;;) {
        if (cap > MAX_FILE_BYTES + 1) {
            rc = -EFBIG;
            goto out;
        }
        char *nb = hk__realloc(buf, cap);
        if (!nb) {
            rc = -ENOMEM;
            goto out;
        }
        buf = nb;
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap)
            cap *= 2;
    }
out:
    close(fd);
    if (rc < 0) {
        hk__free(buf);
        return rc;
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

/*
 * Loads provider p into *t (empty on entry). Returns 0, -ENOMEM, or -EINVAL
 * with *ret_error set (allocated) naming the source and the problem.
 */
static int provider_load(provider_t *p, table_t *t, char **ret_error) {
    hk_config_sink_t sink = {t, p->name, p->rank};
    if (p->kind == PROV_CUSTOM) {
        char err[256] = "";
        int rc = p->custom.load(p->custom.data, &sink, err, sizeof err);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0) {
            *ret_error = hk__asprintf("%s: %s", p->name, err[0] ? err : hk_strerror(rc));
            return *ret_error ? -EINVAL : -ENOMEM;
        }
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(p->path, &buf, &len);
    if (rc == -ENOENT && p->optional)
        return 0;
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        *ret_error = rc == -ENOENT ? hk__asprintf("%s: file not found (required)", p->name)
                                   : hk__asprintf("%s: cannot read: %s", p->name, hk_strerror(rc));
        return *ret_error ? -EINVAL : -ENOMEM;
    }
    json_sink_t js = {sink, NULL};
    rc = hk__json_flatten(buf, len, p->name, json_cb, &js, ret_error);
    hk__free(buf);
    if (rc == -EEXIST) {
        *ret_error = js.error;
        return -EINVAL;
    }
    return rc;
}

/* Room for `extra` more keys without allocating in table_prep/commit. */
static int table_reserve(table_t *t, size_t extra) {
    size_t need = t->n + extra;
    if (need > t->cap) {
        size_t cap = t->cap ? t->cap : 32;
        while (cap < need)
            cap *= 2;
        entry_t *ne = hk__realloc(t->entries, cap * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        t->entries = ne;
        t->cap = cap;
    }
    while ((need + 1) * 2 > t->index_cap)
        if (index_grow(t) < 0)
            return -ENOMEM;
    return 0;
}

/* Merges a freshly loaded provider's keys into the current view (set-up
 * time), all or nothing: everything is allocated before anything changes. */
static int merge_into_view(hk_config_t *c, provider_t *p) {
    table_t *view = cur(c);
    size_t n = p->data.n, fresh = 0;
    for (size_t i = 0; i < n; i++)
        fresh += !table_find(view, p->data.entries[i].key);
    if (n == 0)
        return 0;
    prep_t *preps = hk__calloc(n, sizeof *preps);
    if (!preps || table_reserve(view, fresh) < 0) {
        hk__free(preps);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        entry_t *src = &p->data.entries[i];
        entry_t *e = table_find(view, src->key);
        if (e && e->rank > p->rank)
            continue; /* a higher-precedence source already set it */
        rc = table_prep(view, src->key, src->value, src->origin, &preps[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && preps[i].value)
            table_commit(view, &preps[i], p->rank);
        else
            prep_discard(&preps[i]);
    }
    hk__free(preps);
    return rc;
}

static void remove_provider(hk_config_t *c, provider_t *p) {
    for (size_t i = 0; i < c->nprovs; i++) {
        if (c->provs[i] == p) {
            memmove(&c->provs[i], &c->provs[i + 1], (c->nprovs - i - 1) * sizeof *c->provs);
            c->nprovs--;
            return;
        }
    }
}

/* Frees a provider that never became the store's: its data stays the caller's. */
static void provider_discard(provider_t *p) {
    p->custom.destroy = NULL;
    provider_free(p);
}

/*
 * Loads p, registers it and merges its keys. A load error (bad file) is
 * recorded and p stays registered, empty, so that a reload can pick up the
 * fixed file; out of memory leaves the store exactly as it was.
 */
static int add_and_load(hk_config_t *c, provider_t *p) {
    char *error = NULL;
    int rc = provider_load(p, &p->data, &error);
    if (rc < 0)
        table_clear(&p->data);
    if (rc == -ENOMEM || add_provider(c, p) < 0) {
        hk__free(error);
        provider_discard(p);
        return -ENOMEM;
    }
    if (rc == -EINVAL) {
        record_error(c, error);
        return -EINVAL;
    }
    if (merge_into_view(c, p) < 0) {
        remove_provider(c, p);
        provider_discard(p);
        return -ENOMEM;
    }
    return 0;
}

/* Files get ranks in the order added: appsettings.json, appsettings.{Env}.json, then others. */
static int file_rank(hk_config_t *c, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!find_provider(c, RANK_FILES) && !strcasecmp(base, "appsettings.json"))
        return RANK_FILES;
    if (!find_provider(c, RANK_FILES + 1) && !strncasecmp(base, "appsettings.", 12))
        return RANK_FILES + 1;
    return c->next_file_rank++;
}

int hk_config_add_json_file(hk_config_t *c, const char *path, bool optional, bool reload_on_change) {
    return hk__config_add_json_file(c, path, path, optional, reload_on_change);
}

int hk__config_add_json_file(hk_config_t *c, const char *path, const char *name, bool optional,
                             bool reload_on_change) {
    if (!c || !path || !*path || !name)
        return -EINVAL;
    provider_t *p = hk__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->kind = PROV_JSON;
    p->path = hk__strdup(path);
    p->name = hk__strdup(name);
    if (!p->path || !p->name) {
        provider_free(p);
        return -ENOMEM;
    }
    p->optional = optional;
    p->reload_on_change = reload_on_change;
    p->rank = file_rank(c, path);
    return add_and_load(c, p);
}

int hk_config_add_provider(hk_config_t *c, const hk_config_provider_t *prov) {
    if (!c || !prov || !prov->load || !prov->name || !*prov->name)
        return -EINVAL;
    provider_t *p = hk__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->kind = PROV_CUSTOM;
    p->custom = *prov;
    p->name = hk__strdup(prov->name);
    if (!p->name) {
        hk__free(p); /* not provider_free: data stays the caller's on failure */
        return -ENOMEM;
    }
    p->custom.name = p->name;
    p->rank = c->next_file_rank++;
    return add_and_load(c, p);
}

/* ======================================================================== */
/* reload                                                                   */
/* ======================================================================== */

int hk__config_reload_prepare(hk_config_t *c, hk_config_t **ret_pending, hk__msg_cb on_error,
                              void *data) {
    if (!c || !ret_pending)
        return -EINVAL;
    hk_config_t *pend = NULL;
    int rc = hk_config_new(&pend);
    if (rc < 0)
        return rc;
    pend->staged = hk__calloc(c->nprovs ? c->nprovs : 1, sizeof *pend->staged);
    if (!pend->staged) {
        hk_config_free(pend);
        return -ENOMEM;
    }
    pend->nstaged = c->nprovs;
    bool failed = false;
    for (size_t i = 0; i < c->nprovs && rc != -ENOMEM; i++) {
        provider_t *p = c->provs[i];
        if (p->kind == PROV_MEMORY)
            continue;
        table_t *t = hk__calloc(1, sizeof *t);
        if (!t) {
            rc = -ENOMEM;
            break;
        }
        pend->staged[i] = t;
        char *error = NULL;
        int r = provider_load(p, t, &error);
        if (r == -EINVAL) {
            if (on_error)
                on_error(data, error);
            hk__free(error);
            failed = true;
        } else if (r < 0) {
            rc = r;
        }
    }
    /* The merged view, in rank order. */
    table_t *view = cur(pend);
    for (size_t i = 0; i < c->nprovs && rc != -ENOMEM && !failed; i++) {
        const table_t *src = pend->staged[i] ? pend->staged[i] : &c->provs[i]->data;
        for (size_t k = 0; k < src->n && rc != -ENOMEM; k++)
            if (table_set(view, src->entries[k].key, src->entries[k].value, src->entries[k].origin,
                          c->provs[i]->rank) < 0)
                rc = -ENOMEM;
    }
    if (rc == -ENOMEM || failed) {
        hk__config_reload_abort(pend);
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    *ret_pending = pend;
    return 0;
}

void hk__config_reload_abort(hk_config_t *pend) { hk_config_free(pend); }

static void report_changes(const table_t *a, const table_t *b, hk__msg_cb changed, void *data) {
    for (size_t i = 0; i < a->n; i++) {
        entry_t *e = table_find(b, a->entries[i].key);
        if (!e || strcmp(e->value, a->entries[i].value) != 0)
            changed(data, a->entries[i].key);
    }
    for (size_t i = 0; i < b->n; i++)
        if (!table_find(a, b->entries[i].key))
            changed(data, b->entries[i].key);
}

int hk__config_reload_commit(hk_config_t *c, hk_config_t *pend, hk__msg_cb changed, void *data) {
    /* The old view is retired, not freed: strings handed out stay valid. */
    table_t **nr = hk__realloc(c->retired, (c->nretired + 1) * sizeof *nr);
    if (!nr) {
        hk__config_reload_abort(pend); /* no room to retire it: keep the old values */
        return -ENOMEM;
    }
    c->retired = nr;
    table_t *old = cur(c);
    c->retired[c->nretired++] = old;
    for (size_t i = 0; i < pend->nstaged && i < c->nprovs; i++) {
        if (!pend->staged[i])
            continue;
        table_clear(&c->provs[i]->data);
        c->provs[i]->data = *pend->staged[i]; /* moves the contents */
        hk__free(pend->staged[i]);
        pend->staged[i] = NULL;
    }
    table_t *fresh = cur(pend);
    atomic_store_explicit(&pend->cur, NULL, memory_order_relaxed);
    atomic_store_explicit(&c->cur, fresh, memory_order_release);
    if (changed)
        report_changes(old, fresh, changed, data);
    hk_config_free(pend);
    return 0;
}

const char *hk__config_watch_file(const hk_config_t *c, size_t i) {
    if (!c)
        return NULL;
    for (size_t k = 0; k < c->nprovs; k++) {
        provider_t *p = c->provs[k];
        if (p->kind == PROV_JSON && p->reload_on_change && i-- == 0)
            return p->path;
    }
    return NULL;
}

void hk__config_watch_start(hk_config_t *c) {
    for (size_t k = 0; c && k < c->nprovs; k++) {
        provider_t *p = c->provs[k];
        if (p->kind == PROV_CUSTOM && p->custom.watch)
            (void)p->custom.watch(p->custom.data, c);
    }
}

void hk__config_watch_stop(hk_config_t *c) {
    for (size_t k = 0; c && k < c->nprovs; k++) {
        provider_t *p = c->provs[k];
        if (p->kind == PROV_CUSTOM && p->custom.unwatch)
            p->custom.unwatch(p->custom.data);
    }
}

void hk__config_set_reload_hook(hk_config_t *c, void (*hook)(void *data), void *data) {
    if (!c)
        return;
    /* data first, then the hook that uses it; clearing leaves data in place,
     * so a request racing with the clear never sees a hook without its data. */
    if (hook)
        atomic_store(&c->hook_data, data);
    atomic_store(&c->hook, hook);
    if (hook && atomic_exchange(&c->reload_pending, false))
        hook(data);
}

void hk_config_request_reload(hk_config_t *c) {
    if (!c)
        return;
    void (*hook)(void *) = atomic_load(&c->hook);
    if (hook)
        hook(atomic_load(&c->hook_data));
    else
        atomic_store(&c->reload_pending, true);
}

/* ======================================================================== */
/* --print-config                                                           */
/* ======================================================================== */

static bool looks_secret(const char *key) {
    static const char *const words[] = {"password", "secret", "token", "key", "connectionstring"};
    for (size_t i = 0; i < HK_ARRAY_SIZE(words); i++)
        if (strcasestr(key, words[i]))
            return true;
    return false;
}

static int cmp_entry(const void *a, const void *b) {
    return strcasecmp((*(const entry_t *const *)a)->key, (*(const entry_t *const *)b)->key);
}

void hk__config_print(const hk_config_t *c, FILE *out) {
    table_t *t = cur(c);
    if (!t || !t->n)
        return;
    const entry_t **sorted = hk__calloc(t->n, sizeof *sorted);
    if (!sorted)
        return;
    for (size_t i = 0; i < t->n; i++)
        sorted[i] = &t->entries[i];
    qsort(sorted, t->n, sizeof *sorted, cmp_entry);
    for (size_t i = 0; i < t->n; i++)
        fprintf(out, "%s=%s (%s)\n", sorted[i]->key, looks_secret(sorted[i]->key) ? "***" : sorted[i]->value,
                sorted[i]->origin);
    hk__free(sorted);
}
