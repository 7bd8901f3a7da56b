/*
 * Unit tests for the service registry (include/hostkit/services.h,
 * src/di/services.c): lifetimes, keys with several registrations, scopes and
 * disposal order, handles, validation messages, run-time failures and their
 * cleanup, run-time cycles, threads, and out of memory at every allocation.
 * Depends on cmocka, pthreads and the test helpers in testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hostkit/services.h>

#include "common/common.h"

#define DEPS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- a generic service: resolves keys, then fails or creates an object ------------ */

typedef struct spec {
    const char *key;
    const char *const *resolve; /* resolved in order by the factory (hk_scope_get) */
    int fail;                   /* < 0: the factory returns this after resolving */
    const char *msg;            /* ... through hk_scope_fail when set */
    bool null_instance;         /* the instance is NULL */
    bool quiet;                 /* no event log (threaded tests) */
} spec_t;

typedef struct obj {
    const spec_t *spec;
    int serial;
} obj_t;

static atomic_int n_created, n_destroyed, n_serial;
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static char events[8192];

static void event(const char *sign, const char *key) {
    pthread_mutex_lock(&ev_mu);
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s%s%s", n ? " " : "", sign, key);
    pthread_mutex_unlock(&ev_mu);
}

static int gen_factory(hk_scope_t *scope, void *data, void **ret_instance) {
    const spec_t *sp = data;
    for (const char *const *k = sp->resolve; k && *k; k++) {
        void *dep;
        int r = hk_scope_get(scope, *k, &dep);
        if (r < 0)
            return r;
    }
    if (sp->fail)
        return sp->msg ? hk_scope_fail(scope, sp->fail, "%s", sp->msg) : sp->fail;
    atomic_fetch_add(&n_created, 1);
    if (!sp->quiet)
        event("+", sp->key);
    if (sp->null_instance) {
        *ret_instance = NULL;
        return 0;
    }
    obj_t *o = malloc(sizeof *o);
    o->spec = sp;
    o->serial = atomic_fetch_add(&n_serial, 1);
    *ret_instance = o;
    return 0;
}

static void gen_free(void *instance, void *data) {
    const spec_t *sp = data;
    atomic_fetch_add(&n_destroyed, 1);
    if (!sp->quiet)
        event("-", sp->key);
    free(instance);
}

/* Registers sp; deps default to the keys it resolves. */
static void add(hk_services_t *s, hk_lifetime_t lt, spec_t *sp, const char *const *deps) {
    hk_service_desc_t d = {.key = sp->key, .lifetime = lt, .factory = gen_factory, .free = gen_free,
                           .data = sp, .deps = deps ? deps : sp->resolve};
    assert_int_equal(hk_services_add(s, &d), 0);
}

static hk_services_t *registry(void) {
    hk_services_t *s = NULL;
    assert_int_equal(hk_services_new(&s), 0);
    assert_non_null(s);
    return s;
}

static int reset(void **state) {
    (void)state;
    atomic_store(&n_created, 0);
    atomic_store(&n_destroyed, 0);
    events[0] = '\0';
    return 0;
}

static void *get(hk_scope_t *sc, const char *key) {
    void *p = (void *)&p;
    int r = hk_scope_get(sc, key, &p);
    if (r != 0)
        fail_msg("hk_scope_get(%s) = %d: %s", key, r, hk_services_last_error());
    return p;
}

typedef struct msgs {
    int n;
    char m[32][256];
} msgs_t;

static void collect(void *data, const char *msg) {
    msgs_t *m = data;
    if (m->n < 32)
        snprintf(m->m[m->n], sizeof m->m[0], "%s", msg);
    m->n++;
}

static int validate(hk_services_t *s, msgs_t *m) {
    memset(m, 0, sizeof *m);
    int r = hk_services_validate(s, collect, m);
    if (r >= 0)
        assert_int_equal(r, m->n);
    return r;
}

/* ---- lifetimes ---------------------------------------------------------------------- */

static void singleton_is_created_lazily_once_and_shared_by_every_scope(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cfg = {.key = "Config"};
    add(s, HK_LIFETIME_SINGLETON, &cfg, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    assert_int_equal(n_created, 0); /* validation runs no factory */

    hk_scope_t *a, *b;
    assert_int_equal(hk_scope_new(s, &a), 0);
    assert_int_equal(hk_scope_new(s, &b), 0);
    assert_int_equal(n_created, 0);
    void *x = get(a, "Config");
    assert_int_equal(n_created, 1);
    assert_ptr_equal(get(a, "Config"), x);
    assert_ptr_equal(get(b, "Config"), x);
    assert_ptr_equal(get(hk_services_root(s), "Config"), x);
    assert_int_equal(n_created, 1);
    hk_scope_free(a);
    hk_scope_free(b);
    assert_int_equal(n_destroyed, 0); /* singletons outlive scopes */
    hk_services_free(s);
    assert_int_equal(n_destroyed, 1);
}

static void scoped_is_created_once_per_scope_and_destroyed_with_it(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t db = {.key = "DbSession"};
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    hk_scope_t *a, *b;
    assert_int_equal(hk_scope_new(s, &a), 0);
    assert_int_equal(hk_scope_new(s, &b), 0);
    void *x = get(a, "DbSession");
    assert_ptr_equal(get(a, "DbSession"), x);
    void *y = get(b, "DbSession");
    assert_ptr_not_equal(x, y);
    assert_int_equal(n_created, 2);
    hk_scope_free(a);
    assert_int_equal(n_destroyed, 1);
    assert_ptr_equal(get(b, "DbSession"), y);
    hk_scope_free(b);
    assert_int_equal(n_destroyed, 2);
    hk_services_free(s);
}

static void transient_is_new_on_every_resolution_and_owned_by_the_asking_scope(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t h = {.key = "Handler"};
    add(s, HK_LIFETIME_TRANSIENT, &h, NULL);
    hk_scope_t *a;
    assert_int_equal(hk_scope_new(s, &a), 0);
    void *x = get(a, "Handler"), *y = get(a, "Handler"), *z = get(a, "Handler");
    assert_ptr_not_equal(x, y);
    assert_ptr_not_equal(y, z);
    assert_int_equal(n_created, 3);
    assert_int_equal(n_destroyed, 0);
    hk_scope_free(a);
    assert_int_equal(n_destroyed, 3);
    hk_services_free(s);
}

static void transient_resolved_from_the_root_scope_lives_until_the_registry_is_freed(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t h = {.key = "Handler"};
    add(s, HK_LIFETIME_TRANSIENT, &h, NULL);
    hk_scope_t *root = hk_services_root(s);
    assert_ptr_not_equal(get(root, "Handler"), get(root, "Handler"));
    hk_scope_free(root); /* ignored */
    assert_int_equal(n_destroyed, 0);
    hk_services_free(s);
    assert_int_equal(n_destroyed, 2);
}

static void null_is_a_valid_instance_and_is_still_created_once(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "NullSingleton", .null_instance = true};
    spec_t b = {.key = "NullScoped", .null_instance = true};
    add(s, HK_LIFETIME_SINGLETON, &a, NULL);
    add(s, HK_LIFETIME_SCOPED, &b, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    hk_handle_t ha = hk_services_handle(s, "NullSingleton"), hb = hk_services_handle(s, "NullScoped");
    for (int i = 0; i < 3; i++) {
        assert_null(get(sc, "NullSingleton"));
        assert_null(get(sc, "NullScoped"));
        void *p = &p;
        assert_int_equal(hk_scope_get_handle(sc, ha, &p), 0);
        assert_null(p);
        p = &p;
        assert_int_equal(hk_scope_get_handle(sc, hb, &p), 0);
        assert_null(p);
    }
    assert_int_equal(n_created, 2);
    hk_scope_free(sc);
    hk_services_free(s);
    assert_int_equal(n_destroyed, 2);
}

static void dependencies_are_created_first_and_destroyed_after_their_consumer(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cfg = {.key = "Config"};
    spec_t db = {.key = "Db", .resolve = DEPS("Config")};
    spec_t repo = {.key = "Repo", .resolve = DEPS("Db", "Clock")};
    spec_t clock = {.key = "Clock"};
    add(s, HK_LIFETIME_SINGLETON, &cfg, NULL);
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &repo, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &clock, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    get(sc, "Repo");
    assert_string_equal(events, "+Config +Db +Clock +Repo");
    hk_scope_free(sc);
    assert_string_equal(events, "+Config +Db +Clock +Repo -Repo -Clock -Db");
    hk_services_free(s);
    assert_string_equal(events, "+Config +Db +Clock +Repo -Repo -Clock -Db -Config");
}

static void scope_free_destroys_what_it_created_in_reverse_creation_order(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A"}, b = {.key = "B"}, c = {.key = "C"};
    add(s, HK_LIFETIME_SCOPED, &a, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &b, NULL);
    add(s, HK_LIFETIME_SCOPED, &c, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    get(sc, "C");
    get(sc, "B");
    get(sc, "A");
    get(sc, "C");
    get(sc, "B");
    hk_scope_free(sc);
    assert_string_equal(events, "+C +B +A +B -B -A -B -C");
    hk_services_free(s);
}

static void singletons_are_destroyed_in_reverse_creation_order_when_the_registry_is_freed(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A"}, b = {.key = "B"}, c = {.key = "C"};
    add(s, HK_LIFETIME_SINGLETON, &a, NULL);
    add(s, HK_LIFETIME_SINGLETON, &b, NULL);
    add(s, HK_LIFETIME_SINGLETON, &c, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    get(sc, "B");
    get(sc, "C");
    get(sc, "A");
    hk_scope_free(sc);
    assert_string_equal(events, "+B +C +A");
    hk_services_free(s);
    assert_string_equal(events, "+B +C +A -A -C -B");
}

static void transient_dependency_of_a_singleton_is_destroyed_after_it(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cache = {.key = "Cache", .resolve = DEPS("Clock")};
    spec_t clock = {.key = "Clock"};
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &clock, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    get(sc, "Cache");
    hk_scope_free(sc);
    assert_string_equal(events, "+Clock +Cache"); /* the singleton's transient is not the scope's */
    hk_services_free(s);
    assert_string_equal(events, "+Clock +Cache -Cache -Clock");
}

/* ---- keys and several registrations -------------------------------------------------- */

static void get_returns_the_last_registration_and_get_all_every_one_in_order(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t p1 = {.key = "Plugin"}, p2 = {.key = "Plugin"}, p3 = {.key = "Plugin"}, o = {.key = "Other"};
    add(s, HK_LIFETIME_SINGLETON, &p1, NULL);
    add(s, HK_LIFETIME_SCOPED, &p2, NULL);
    add(s, HK_LIFETIME_SINGLETON, &o, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &p3, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    obj_t *last = get(sc, "Plugin");
    assert_ptr_equal(last->spec, &p3);

    void *const *all = NULL;
    assert_int_equal(hk_scope_get_all(sc, "Plugin", &all), 3);
    assert_ptr_equal(((obj_t *)all[0])->spec, &p1);
    assert_ptr_equal(((obj_t *)all[1])->spec, &p2);
    assert_ptr_equal(((obj_t *)all[2])->spec, &p3);
    assert_ptr_not_equal(all[2], last); /* transient: a new one */

    void *const *again = NULL;
    assert_int_equal(hk_scope_get_all(sc, "Plugin", &again), 3);
    assert_ptr_equal(again[0], all[0]); /* singleton */
    assert_ptr_equal(again[1], all[1]); /* scoped, same scope */
    assert_ptr_not_equal(again[2], all[2]);
    assert_ptr_equal(((obj_t *)all[0])->spec, &p1); /* the first array is still valid */

    void *const *none = (void *const *)&none;
    assert_int_equal(hk_scope_get_all(sc, "Nothing", &none), 0);
    assert_null(none);
    hk_scope_free(sc);
    hk_services_free(s);
    assert_int_equal(n_created, n_destroyed);
}

static void keys_are_case_sensitive_and_unknown_keys_are_enoent(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "Db"};
    add(s, HK_LIFETIME_SINGLETON, &a, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p = &p;
    assert_int_equal(hk_scope_get(sc, "db", &p), -ENOENT);
    assert_ptr_equal(p, &p); /* untouched on failure */
    assert_string_equal(hk_services_last_error(), "No service registered for \"db\"");
    assert_int_equal(hk_services_handle(s, "db"), HK_HANDLE_NONE);
    hk_scope_free(sc);
    hk_services_free(s);
}

/* ---- handles ------------------------------------------------------------------------ */

static void handle_resolves_the_same_instances_as_the_key(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a1 = {.key = "A"}, a2 = {.key = "A"}, b = {.key = "B"}, t = {.key = "T"};
    add(s, HK_LIFETIME_SINGLETON, &a1, NULL);
    add(s, HK_LIFETIME_SINGLETON, &a2, NULL);
    add(s, HK_LIFETIME_SCOPED, &b, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &t, NULL);
    hk_handle_t ha = hk_services_handle(s, "A"), hb = hk_services_handle(s, "B"),
                ht = hk_services_handle(s, "T");
    assert_int_equal(ha, 2); /* the last registration under "A" */
    assert_int_equal(hb, 3);
    assert_int_equal(ht, 4);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *pa = NULL, *pb = NULL, *pt = NULL;
    assert_int_equal(hk_scope_get_handle(sc, ha, &pa), 0); /* slow path: creates */
    assert_ptr_equal(((obj_t *)pa)->spec, &a2);
    assert_int_equal(hk_scope_get_handle(sc, hb, &pb), 0);
    for (int i = 0; i < 1000; i++) { /* fast path: the same instances */
        void *p = NULL;
        assert_int_equal(hk_scope_get_handle(sc, ha, &p), 0);
        assert_ptr_equal(p, pa);
        assert_int_equal(hk_scope_get_handle(sc, hb, &p), 0);
        assert_ptr_equal(p, pb);
    }
    assert_ptr_equal(get(sc, "A"), pa);
    assert_ptr_equal(get(sc, "B"), pb);
    assert_int_equal(hk_scope_get_handle(sc, ht, &pt), 0);
    assert_ptr_not_equal(get(sc, "T"), pt);
    assert_int_equal(n_created, 4);

    void *p = &p;
    assert_int_equal(hk_scope_get_handle(sc, HK_HANDLE_NONE, &p), -ENOENT);
    assert_int_equal(hk_scope_get_handle(sc, 5, &p), -ENOENT);
    assert_ptr_equal(p, &p);
    assert_int_equal(hk_scope_get_handle(NULL, ha, &p), -EINVAL);
    assert_int_equal(hk_scope_get_handle(sc, ha, NULL), -EINVAL);
    hk_scope_free(sc);
    hk_services_free(s);
}

static void typed_macro_resolves_into_a_typed_pointer(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A"};
    add(s, HK_LIFETIME_SINGLETON, &a, NULL);
    obj_t *o = NULL;
    assert_int_equal(HK_SCOPE_GET(hk_services_root(s), "A", obj_t, &o), 0);
    assert_non_null(o);
    assert_ptr_equal(o->spec, &a);
    assert_ptr_equal(hk_scope_services(hk_services_root(s)), s);
    hk_services_free(s);
}

/* ---- registration ------------------------------------------------------------------- */

static int dummy_factory(hk_scope_t *scope, void *data, void **ret_instance) {
    (void)scope;
    *ret_instance = data;
    return 0;
}

static atomic_int n_data_destroyed;
static void data_destroy(void *data) {
    (void)data;
    atomic_fetch_add(&n_data_destroyed, 1);
}

static void add_rejects_bad_descriptions_and_keeps_nothing(void **state) {
    (void)state;
    hk_services_t *s = registry();
    char longkey[200];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    hk_service_desc_t ok = {.key = "A", .factory = dummy_factory};
    hk_service_desc_t d = ok;
    assert_int_equal(hk_services_add(NULL, &d), -EINVAL);
    assert_int_equal(hk_services_add(s, NULL), -EINVAL);
    d.key = NULL;
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    d.key = "";
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    d.key = longkey;
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    longkey[127] = '\0'; /* 127 characters: the longest key */
    assert_int_equal(hk_services_add(s, &d), 0);
    d = ok;
    d.factory = NULL;
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    d = ok;
    d.lifetime = (hk_lifetime_t)3;
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    d = ok;
    d.deps = DEPS("");
    assert_int_equal(hk_services_add(s, &d), -EINVAL);
    assert_int_equal(hk_services_add_singleton(s, NULL, dummy_factory, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(hk_services_handle(s, "A"), HK_HANDLE_NONE);
    assert_int_equal(hk_services_handle(s, longkey), 1);
    hk_services_free(s);
}

static void add_after_the_registry_is_frozen_is_ebusy(void **state) {
    (void)state;
    hk_services_t *s = registry();
    assert_int_equal(hk_services_add_singleton(s, "A", dummy_factory, NULL, NULL, NULL), 0);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    assert_int_equal(hk_services_add_singleton(s, "B", dummy_factory, NULL, NULL, NULL), -EBUSY);
    hk_services_free(s);

    s = registry();
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    assert_int_equal(hk_services_add_scoped(s, "B", dummy_factory, NULL, NULL, NULL), -EBUSY);
    hk_scope_free(sc);
    hk_services_free(s);
}

static void registry_releases_data_on_free_and_shorthands_leave_it_alone(void **state) {
    (void)state;
    atomic_store(&n_data_destroyed, 0);
    hk_services_t *s = registry();
    hk_service_desc_t d = {.key = "A", .factory = dummy_factory, .data = &d, .data_destroy = data_destroy};
    assert_int_equal(hk_services_add(s, &d), 0);
    assert_int_equal(hk_services_add_transient(s, "B", dummy_factory, NULL, NULL, NULL), 0);
    assert_int_equal(hk_services_add_scoped(s, "C", dummy_factory, NULL, NULL, DEPS("A", "B")), 0);
    assert_int_equal(n_data_destroyed, 0);
    hk_services_free(s);
    assert_int_equal(n_data_destroyed, 1);
}

static void free_functions_accept_null_and_ignore_the_root_scope(void **state) {
    (void)state;
    hk_services_free(NULL);
    hk_scope_free(NULL);
    hk_services_t *s = registry();
    hk_scope_free(hk_services_root(s));
    assert_null(hk_services_root(NULL));
    assert_null(hk_scope_services(NULL));
    assert_int_equal(hk_services_new(NULL), -EINVAL);
    assert_int_equal(hk_scope_new(NULL, NULL), -EINVAL);
    assert_int_equal(hk_services_validate(NULL, NULL, NULL), -EINVAL);
    assert_int_equal(hk_services_handle(NULL, "A"), HK_HANDLE_NONE);
    void *p;
    void *const *all;
    assert_int_equal(hk_scope_get(NULL, "A", &p), -EINVAL);
    assert_int_equal(hk_scope_get(hk_services_root(s), NULL, &p), -EINVAL);
    assert_int_equal(hk_scope_get_all(hk_services_root(s), "A", NULL), -EINVAL);
    assert_int_equal(hk_scope_get_all(NULL, "A", &all), -EINVAL);
    hk_services_free(s);
}

/* ---- validation --------------------------------------------------------------------- */

static void validation_names_a_missing_dependency_and_who_requires_it(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t repo = {.key = "OrderRepository", .resolve = DEPS("Db", "Db")};
    add(s, HK_LIFETIME_SCOPED, &repo, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 1);
    assert_string_equal(m.m[0], "No service registered for \"Db\" (required by \"OrderRepository\")");
    assert_int_equal(hk_services_validate(s, NULL, NULL), 1); /* on_error may be NULL */
    hk_services_free(s);
}

static void validation_refuses_a_scoped_service_consumed_by_a_singleton(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cache = {.key = "Cache", .resolve = DEPS("DbSession")};
    spec_t db = {.key = "DbSession"};
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 1);
    assert_string_equal(m.m[0], "Cannot consume scoped service \"DbSession\" from singleton \"Cache\"");
    hk_services_free(s);
}

static void validation_refuses_a_scoped_service_reached_through_a_transient(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cache = {.key = "Cache", .resolve = DEPS("Formatter")};
    spec_t fmt = {.key = "Formatter", .resolve = DEPS("Clock", "Repo")};
    spec_t clock = {.key = "Clock"};
    spec_t repo = {.key = "Repo", .resolve = DEPS("DbSession")};
    spec_t db = {.key = "DbSession"};
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &fmt, NULL);
    add(s, HK_LIFETIME_SINGLETON, &clock, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &repo, NULL);
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 1);
    assert_string_equal(m.m[0], "Cannot consume scoped service \"DbSession\" from singleton \"Cache\"");
    hk_services_free(s);
}

static void validation_reports_a_cycle_with_its_path(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("C")};
    spec_t c = {.key = "C", .resolve = DEPS("A")};
    spec_t self = {.key = "Self", .resolve = DEPS("Self")};
    add(s, HK_LIFETIME_SCOPED, &a, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &b, NULL);
    add(s, HK_LIFETIME_SCOPED, &c, NULL);
    add(s, HK_LIFETIME_SINGLETON, &self, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 2);
    assert_string_equal(m.m[0], "Circular dependency: A -> B -> C -> A");
    assert_string_equal(m.m[1], "Circular dependency: Self -> Self");
    hk_services_free(s);
}

static void validation_reports_each_distinct_cycle_once(void **state) {
    (void)state;
    hk_services_t *s = registry();
    /* A -> B -> C -> A and B -> A share nodes; D and E both lead into the first cycle;
     * two registrations of "C" make the same printed cycle twice. */
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("C", "A")};
    spec_t c1 = {.key = "C", .resolve = DEPS("A")};
    spec_t c2 = {.key = "C", .resolve = DEPS("A")};
    spec_t d = {.key = "D", .resolve = DEPS("B")};
    spec_t e = {.key = "E", .resolve = DEPS("C", "D")};
    add(s, HK_LIFETIME_SCOPED, &d, NULL);
    add(s, HK_LIFETIME_SCOPED, &a, NULL);
    add(s, HK_LIFETIME_SCOPED, &b, NULL);
    add(s, HK_LIFETIME_SCOPED, &c1, NULL);
    add(s, HK_LIFETIME_SCOPED, &c2, NULL);
    add(s, HK_LIFETIME_SCOPED, &e, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 2);
    assert_string_equal(m.m[0], "Circular dependency: A -> B -> C -> A");
    assert_string_equal(m.m[1], "Circular dependency: A -> B -> A");
    hk_services_free(s);
}

static void validation_lists_every_problem_at_once(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t repo = {.key = "OrderRepository", .resolve = DEPS("Db", "Clock")};
    spec_t cache = {.key = "Cache", .resolve = DEPS("DbSession", "Metrics")};
    spec_t db = {.key = "DbSession"};
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("A")};
    spec_t ok = {.key = "Fine", .resolve = DEPS("A")};
    add(s, HK_LIFETIME_SCOPED, &repo, NULL);
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &a, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &b, NULL);
    add(s, HK_LIFETIME_SCOPED, &ok, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 5);
    assert_string_equal(m.m[0], "No service registered for \"Db\" (required by \"OrderRepository\")");
    assert_string_equal(m.m[1], "No service registered for \"Clock\" (required by \"OrderRepository\")");
    assert_string_equal(m.m[2], "No service registered for \"Metrics\" (required by \"Cache\")");
    assert_string_equal(m.m[3], "Cannot consume scoped service \"DbSession\" from singleton \"Cache\"");
    assert_string_equal(m.m[4], "Circular dependency: A -> B -> A");
    assert_int_equal(n_created, 0);
    /* Validating again gives the same answer. */
    assert_int_equal(validate(s, &m), 5);
    hk_services_free(s);
}

static void validation_checks_every_registration_under_a_dependency_key(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cache = {.key = "Cache", .resolve = DEPS("Plugin")};
    spec_t p1 = {.key = "Plugin"}; /* earlier, scoped: reachable through get_all */
    spec_t p2 = {.key = "Plugin"};
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    add(s, HK_LIFETIME_SCOPED, &p1, NULL);
    add(s, HK_LIFETIME_SINGLETON, &p2, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 1);
    assert_string_equal(m.m[0], "Cannot consume scoped service \"Plugin\" from singleton \"Cache\"");
    hk_services_free(s);
}

static void validation_accepts_a_valid_graph(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cfg = {.key = "Config"}, log = {.key = "Log", .resolve = DEPS("Config")};
    spec_t db = {.key = "Db", .resolve = DEPS("Config", "Log")};
    spec_t h = {.key = "Handler", .resolve = DEPS("Db", "Log", "Clock")};
    spec_t clock = {.key = "Clock"};
    spec_t cache = {.key = "Cache", .resolve = DEPS("Clock", "Log")}; /* singleton -> transient: fine */
    add(s, HK_LIFETIME_SINGLETON, &cfg, NULL);
    add(s, HK_LIFETIME_SINGLETON, &log, NULL);
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &h, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &clock, NULL);
    add(s, HK_LIFETIME_SINGLETON, &cache, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    assert_int_equal(n_created, 0);
    hk_services_free(s);
}

/* Registers n scoped services "N<i>", each depending on the keys picked by edge(i, j). */
static void add_generated(hk_services_t *s, int n, bool (*edge)(int i, int j, int n)) {
    char keys[64][16];
    for (int i = 0; i < n; i++)
        snprintf(keys[i], sizeof keys[i], "N%d", i);
    for (int i = 0; i < n; i++) {
        const char *deps[65];
        int k = 0;
        for (int j = 0; j < n; j++)
            if (edge(i, j, n))
                deps[k++] = keys[j];
        deps[k] = NULL;
        assert_int_equal(hk_services_add_scoped(s, keys[i], dummy_factory, NULL, NULL, deps), 0);
    }
}

/* 8 layers of 8, each node depending on every node of the next layer: 8^7 paths. */
static bool layered(int i, int j, int n) {
    (void)n;
    return j / 8 == i / 8 + 1;
}
static bool complete(int i, int j, int n) {
    (void)n;
    return i != j;
}

static void validation_of_a_graph_with_many_paths_is_quick(void **state) {
    (void)state;
    hk_services_t *s = registry();
    add_generated(s, 64, layered);
    uint64_t t0 = hk__now_ns();
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    assert_true(hk__now_ns() - t0 < 2000000000u); /* linear, not one walk per path */
    hk_services_free(s);
}

static void validation_lists_at_most_256_cycles_of_a_dense_graph(void **state) {
    (void)state;
    hk_services_t *s = registry();
    add_generated(s, 12, complete); /* millions of elementary cycles */
    msgs_t m;
    assert_int_equal(validate(s, &m), 256);
    assert_string_equal(m.m[0], "Circular dependency: N0 -> N1 -> N0");
    assert_string_equal(m.m[1], "Circular dependency: N0 -> N1 -> N2 -> N0");
    hk_services_free(s);
}

/* ---- run-time errors ------------------------------------------------------------------ */

static void root_scope_refuses_a_scoped_service_with_a_clear_error(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t db = {.key = "DbSession"};
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    void *p = &p;
    assert_int_equal(hk_scope_get(hk_services_root(s), "DbSession", &p), -EINVAL);
    assert_ptr_equal(p, &p);
    assert_string_equal(hk_services_last_error(),
                        "Cannot resolve scoped service \"DbSession\" from the root scope: create a "
                        "scope (hk_scope_new) and resolve it there");
    void *const *all;
    assert_int_equal(hk_scope_get_all(hk_services_root(s), "DbSession", &all), -EINVAL);
    assert_int_equal(n_created, 0);
    hk_services_free(s);
}

static void singleton_resolving_a_scoped_service_at_run_time_is_refused(void **state) {
    (void)state;
    hk_services_t *s = registry();
    /* Not declared, so validation cannot see it: the run-time check names both. */
    spec_t cache = {.key = "Cache", .resolve = DEPS("Formatter")};
    spec_t fmt = {.key = "Formatter", .resolve = DEPS("DbSession")};
    spec_t db = {.key = "DbSession"};
    add(s, HK_LIFETIME_SINGLETON, &cache, DEPS("Formatter"));
    add(s, HK_LIFETIME_TRANSIENT, &fmt, DEPS("Log"));
    add(s, HK_LIFETIME_SCOPED, &db, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p;
    assert_int_equal(hk_scope_get(sc, "Cache", &p), -EINVAL);
    assert_string_equal(hk_services_last_error(),
                        "Cannot create \"Cache\": creating \"Formatter\": Cannot consume scoped "
                        "service \"DbSession\" from singleton \"Cache\"");
    assert_int_equal(n_created, 0);
    hk_scope_free(sc);
    hk_services_free(s);
}

static void factory_failure_returns_its_error_with_the_key_and_the_message(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t repo = {.key = "OrderRepository", .resolve = DEPS("Db")};
    spec_t db = {.key = "Db", .fail = -ECONNREFUSED, .msg = "connection refused"};
    add(s, HK_LIFETIME_SCOPED, &repo, NULL);
    add(s, HK_LIFETIME_SINGLETON, &db, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p = &p;
    assert_int_equal(hk_scope_get(sc, "OrderRepository", &p), -ECONNREFUSED);
    assert_ptr_equal(p, &p);
    assert_string_equal(hk_services_last_error(),
                        "Cannot create \"OrderRepository\": creating \"Db\": connection refused");
    assert_int_equal(hk_scope_get(sc, "Db", &p), -ECONNREFUSED);
    assert_string_equal(hk_services_last_error(), "Cannot create \"Db\": connection refused");
    hk_scope_free(sc);
    hk_services_free(s);
}

static void factory_failure_without_a_message_is_described_by_its_errno(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("C")};
    spec_t c = {.key = "C", .fail = -EACCES};
    add(s, HK_LIFETIME_TRANSIENT, &a, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &b, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &c, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p;
    assert_int_equal(hk_scope_get(sc, "A", &p), -EACCES);
    assert_string_equal(hk_services_last_error(),
                        "Cannot create \"A\": creating \"B\": creating \"C\": Permission denied");
    /* A successful resolution leaves the message alone. */
    c.fail = 0;
    get(sc, "A");
    assert_string_equal(hk_services_last_error(),
                        "Cannot create \"A\": creating \"B\": creating \"C\": Permission denied");
    hk_scope_free(sc);
    hk_services_free(s);
}

static void scope_fail_turns_a_non_negative_error_into_eio(void **state) {
    (void)state;
    assert_int_equal(hk_scope_fail(NULL, 0, "plain %d", 42), -EIO);
    assert_string_equal(hk_services_last_error(), "plain 42");
    assert_int_equal(hk_scope_fail(NULL, -ETIMEDOUT, "late"), -ETIMEDOUT);
}

static void failed_resolution_destroys_what_it_created_in_reverse_and_keeps_finished_singletons(
    void **state) {
    (void)state;
    hk_services_t *s = registry();
    /* Unit -> Session (scoped), Temp (transient), Clock (singleton, which resolves its own
     * transient Tick), then Broken fails: Temp and Session go, Clock and Tick stay. */
    spec_t unit = {.key = "Unit", .resolve = DEPS("Session", "Temp", "Clock", "Broken")};
    spec_t session = {.key = "Session", .resolve = DEPS("Temp")};
    spec_t temp = {.key = "Temp"};
    spec_t clock = {.key = "Clock", .resolve = DEPS("Tick")};
    spec_t tick = {.key = "Tick"};
    spec_t broken = {.key = "Broken", .resolve = DEPS("Session", "Temp"), .fail = -EIO, .msg = "disk"};
    add(s, HK_LIFETIME_SCOPED, &unit, NULL);
    add(s, HK_LIFETIME_SCOPED, &session, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &temp, NULL);
    add(s, HK_LIFETIME_SINGLETON, &clock, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &tick, NULL);
    add(s, HK_LIFETIME_SCOPED, &broken, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    get(sc, "Temp"); /* created before: not part of the failed resolution */
    events[0] = '\0';
    void *p;
    assert_int_equal(hk_scope_get(sc, "Unit", &p), -EIO);
    assert_string_equal(hk_services_last_error(), "Cannot create \"Unit\": creating \"Broken\": disk");
    assert_string_equal(events,
                        "+Temp +Session +Temp +Tick +Clock +Temp -Temp -Temp -Session -Temp");
    /* The scope is as before: Session is created again, Clock is not. */
    events[0] = '\0';
    get(sc, "Session");
    assert_string_equal(events, "+Temp +Session");
    hk_scope_free(sc);
    assert_string_equal(events, "+Temp +Session -Session -Temp -Temp");
    hk_services_free(s);
    assert_int_equal(n_created, n_destroyed);
}

static void failed_singleton_is_not_cached_and_is_created_on_a_later_try(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t db = {.key = "Db", .fail = -EAGAIN, .msg = "not yet"};
    add(s, HK_LIFETIME_SINGLETON, &db, NULL);
    hk_handle_t h = hk_services_handle(s, "Db");
    void *p;
    assert_int_equal(hk_scope_get_handle(hk_services_root(s), h, &p), -EAGAIN);
    db.fail = 0;
    assert_int_equal(hk_scope_get_handle(hk_services_root(s), h, &p), 0);
    assert_non_null(p);
    assert_int_equal(n_created, 1);
    hk_services_free(s);
    assert_int_equal(n_destroyed, 1);
}

static void failed_get_all_destroys_the_instances_it_created(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t p1 = {.key = "Plugin"}, p2 = {.key = "Plugin"};
    spec_t p3 = {.key = "Plugin", .fail = -EPERM, .msg = "no licence"};
    spec_t single = {.key = "Plugin"};
    add(s, HK_LIFETIME_SCOPED, &p1, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &p2, NULL);
    add(s, HK_LIFETIME_SINGLETON, &single, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &p3, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *const *all = NULL;
    assert_int_equal(hk_scope_get_all(sc, "Plugin", &all), -EPERM);
    assert_null(all);
    assert_string_equal(hk_services_last_error(), "Cannot create \"Plugin\": no licence");
    assert_string_equal(events, "+Plugin +Plugin +Plugin -Plugin -Plugin"); /* the singleton stays */
    hk_scope_free(sc);
    assert_int_equal(n_destroyed, 2);

    /* The root scope: transients rolled back, singleton kept. */
    hk_services_free(s);
    assert_int_equal(n_created, n_destroyed);

    s = registry();
    add(s, HK_LIFETIME_TRANSIENT, &p2, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &p3, NULL);
    assert_int_equal(hk_scope_get_all(hk_services_root(s), "Plugin", &all), -EPERM);
    assert_int_equal(n_created, n_destroyed);
    hk_services_free(s);
}

/* ---- run-time cycles -------------------------------------------------------------------- */

static void run_time_cycle_between_scoped_services_is_einval(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("A")};
    add(s, HK_LIFETIME_SCOPED, &a, DEPS("B"));
    add(s, HK_LIFETIME_SCOPED, &b, DEPS("C")); /* does not declare A */
    spec_t c = {.key = "C"};
    add(s, HK_LIFETIME_SCOPED, &c, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p;
    assert_int_equal(hk_scope_get(sc, "A", &p), -EINVAL);
    assert_string_equal(hk_services_last_error(),
                        "Cannot create \"A\": creating \"B\": Circular dependency: A -> B -> A");
    hk_scope_free(sc);
    hk_services_free(s);
}

static void run_time_cycle_through_transients_is_einval(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t t = {.key = "T", .resolve = DEPS("T")};
    add(s, HK_LIFETIME_TRANSIENT, &t, DEPS("X"));
    spec_t x = {.key = "X"};
    add(s, HK_LIFETIME_SINGLETON, &x, NULL);
    hk_scope_t *sc;
    assert_int_equal(hk_scope_new(s, &sc), 0);
    void *p;
    assert_int_equal(hk_scope_get(sc, "T", &p), -EINVAL);
    assert_string_equal(hk_services_last_error(), "Cannot create \"T\": Circular dependency: T -> T");
    assert_int_equal(n_created, 0);
    hk_scope_free(sc);
    hk_services_free(s);
}

static void run_time_cycle_of_singletons_on_one_thread_is_einval(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t a = {.key = "A", .resolve = DEPS("B")};
    spec_t b = {.key = "B", .resolve = DEPS("C")};
    spec_t c = {.key = "C", .resolve = DEPS("A")};
    add(s, HK_LIFETIME_SINGLETON, &a, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &b, NULL);
    add(s, HK_LIFETIME_SINGLETON, &c, DEPS("D"));
    spec_t d = {.key = "D"};
    add(s, HK_LIFETIME_SINGLETON, &d, NULL);
    void *p;
    assert_int_equal(hk_scope_get(hk_services_root(s), "A", &p), -EINVAL);
    assert_string_equal(hk_services_last_error(), "Cannot create \"A\": creating \"B\": creating \"C\": "
                                                  "Circular dependency: A -> B -> C -> A");
    /* Nothing is stuck "in progress": a second try fails the same way, not a hang. */
    assert_int_equal(hk_scope_get(hk_services_root(s), "C", &p), -EINVAL);
    assert_string_equal(hk_services_last_error(), "Cannot create \"C\": creating \"A\": creating \"B\": "
                                                  "Circular dependency: C -> A -> B -> C");
    hk_services_free(s);
}

/* Two singletons whose factories meet, each then resolving the other. */
static atomic_bool in_x, in_y;
static bool flag_set(void *arg) { return atomic_load((atomic_bool *)arg); }

static int meet_factory(hk_scope_t *scope, void *data, void **ret_instance) {
    bool is_x = strcmp(data, "X") == 0;
    atomic_store(is_x ? &in_x : &in_y, true);
    wait_until(flag_set, is_x ? &in_y : &in_x, 10000);
    void *other;
    int r = hk_scope_get(scope, is_x ? "Y" : "X", &other);
    if (r < 0)
        return r;
    *ret_instance = data;
    return 0;
}

typedef struct resolver {
    hk_services_t *s;
    const char *key;
    int rc;
    void *instance;
    char err[512];
} resolver_t;

static void *resolve_thread(void *arg) {
    resolver_t *r = arg;
    r->rc = hk_scope_get(hk_services_root(r->s), r->key, &r->instance);
    snprintf(r->err, sizeof r->err, "%s", hk_services_last_error());
    return NULL;
}

static void run_time_cycle_of_singletons_across_threads_fails_instead_of_deadlocking(void **state) {
    (void)state;
    atomic_store(&in_x, false);
    atomic_store(&in_y, false);
    hk_services_t *s = registry();
    assert_int_equal(hk_services_add_singleton(s, "X", meet_factory, NULL, "X", NULL), 0);
    assert_int_equal(hk_services_add_singleton(s, "Y", meet_factory, NULL, "Y", NULL), 0);
    resolver_t rx = {.s = s, .key = "X"}, ry = {.s = s, .key = "Y"};
    pthread_t tx, ty;
    assert_int_equal(pthread_create(&tx, NULL, resolve_thread, &rx), 0);
    assert_int_equal(pthread_create(&ty, NULL, resolve_thread, &ry), 0);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    assert_int_equal(rx.rc, -EINVAL);
    assert_int_equal(ry.rc, -EINVAL);
    assert_non_null(strstr(rx.err, "Circular dependency"));
    assert_non_null(strstr(ry.err, "Circular dependency"));
    hk_services_free(s);
}

/* ---- threads ---------------------------------------------------------------------------- */

#define THREADS 8

static atomic_int ready_threads;
static atomic_int thread_tids[THREADS];

/* True when the thread sleeps in the kernel (state S or D): it has reached a blocking call. */

/* Every other resolving thread has arrived and sleeps (waits for the singleton). */
static bool others_blocked(void *arg) {
    (void)arg;
    if (atomic_load(&ready_threads) < THREADS)
        return false;
    int me = current_tid(), blocked = 0;
    for (int i = 0; i < THREADS; i++) {
        int tid = atomic_load(&thread_tids[i]);
        if (tid != me && tid_is_blocked(tid))
            blocked++;
    }
    return blocked == THREADS - 1;
}

static int slow_factory(hk_scope_t *scope, void *data, void **ret_instance) {
    (void)scope;
    (void)data;
    atomic_fetch_add(&n_created, 1);
    wait_until(others_blocked, NULL, 5000); /* widen the window: everyone else asks meanwhile */
    *ret_instance = malloc(16);
    return 0;
}

static void free_instance(void *instance, void *data) {
    (void)data;
    atomic_fetch_add(&n_destroyed, 1);
    free(instance);
}

typedef struct first_arg {
    hk_services_t *s;
    hk_handle_t h;
    int index;
    bool own_scope;
    pthread_barrier_t *barrier;
    void *instance;
    int rc;
} first_arg_t;

static void *first_thread(void *p) {
    first_arg_t *a = p;
    hk_scope_t *sc = hk_services_root(a->s);
    if (a->own_scope && hk_scope_new(a->s, &sc) < 0)
        return NULL;
    atomic_store(&thread_tids[a->index], current_tid());
    pthread_barrier_wait(a->barrier);
    atomic_fetch_add(&ready_threads, 1);
    a->rc = hk_scope_get_handle(sc, a->h, &a->instance);
    if (a->own_scope)
        hk_scope_free(sc);
    return NULL;
}

static void concurrent_first_resolution_creates_a_singleton_exactly_once(void **state) {
    (void)state;
    for (int round = 0; round < 4; round++) {
        atomic_store(&n_created, 0);
        atomic_store(&ready_threads, 0);
        hk_services_t *s = registry();
        assert_int_equal(hk_services_add_singleton(s, "Pool", slow_factory, free_instance, NULL, NULL), 0);
        hk_handle_t h = hk_services_handle(s, "Pool");
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, THREADS);
        pthread_t t[THREADS];
        first_arg_t args[THREADS];
        for (int i = 0; i < THREADS; i++) {
            args[i] = (first_arg_t){.s = s, .h = h, .index = i, .own_scope = (i + round) % 2,
                                    .barrier = &barrier, .rc = 1};
            assert_int_equal(pthread_create(&t[i], NULL, first_thread, &args[i]), 0);
        }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&barrier);
        assert_int_equal(n_created, 1);
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(args[i].rc, 0);
            assert_non_null(args[i].instance);
            assert_ptr_equal(args[i].instance, args[0].instance);
        }
        hk_services_free(s);
    }
}

typedef struct worker_arg {
    hk_services_t *s;
    hk_handle_t handler, session;
    int failures;
} worker_arg_t;

static void *scope_worker(void *p) {
    worker_arg_t *a = p;
    for (int i = 0; i < 300; i++) {
        hk_scope_t *sc;
        if (hk_scope_new(a->s, &sc) < 0) {
            a->failures++;
            continue;
        }
        void *h1 = NULL, *h2 = NULL, *s1 = NULL, *s2 = NULL;
        void *const *all = NULL;
        if (hk_scope_get_handle(sc, a->handler, &h1) < 0 || hk_scope_get_handle(sc, a->handler, &h2) < 0 ||
            hk_scope_get_handle(sc, a->session, &s1) < 0 || hk_scope_get(sc, "Session", &s2) < 0 ||
            hk_scope_get_all(sc, "Handler", &all) != 1 || h1 == h2 || s1 != s2 || !all[0])
            a->failures++;
        hk_scope_free(sc);
    }
    return NULL;
}

static void many_threads_each_with_their_own_scope_share_singletons_only(void **state) {
    (void)state;
    hk_services_t *s = registry();
    spec_t cfg = {.key = "Config", .quiet = true};
    spec_t log = {.key = "Log", .resolve = DEPS("Config"), .quiet = true};
    spec_t session = {.key = "Session", .resolve = DEPS("Config", "Log"), .quiet = true};
    spec_t handler = {.key = "Handler", .resolve = DEPS("Session", "Log", "Clock"), .quiet = true};
    spec_t clock = {.key = "Clock", .quiet = true};
    add(s, HK_LIFETIME_SINGLETON, &cfg, NULL);
    add(s, HK_LIFETIME_SINGLETON, &log, NULL);
    add(s, HK_LIFETIME_SCOPED, &session, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &handler, NULL);
    add(s, HK_LIFETIME_TRANSIENT, &clock, NULL);
    msgs_t m;
    assert_int_equal(validate(s, &m), 0);
    pthread_t t[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){.s = s, .handler = hk_services_handle(s, "Handler"),
                                 .session = hk_services_handle(s, "Session")};
        assert_int_equal(pthread_create(&t[i], NULL, scope_worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    /* Per scope: Session, 3 Handlers, 3 Clocks; plus the two singletons. */
    assert_int_equal(n_created, THREADS * 300 * 7 + 2);
    assert_int_equal(n_destroyed, THREADS * 300 * 7);
    hk_services_free(s);
    assert_int_equal(n_destroyed, n_created);
}

/* ---- out of memory ------------------------------------------------------------------------ */

/* Registers, validates, resolves and frees; returns the first error (all -ENOMEM). */
static int oom_scenario(void) {
    spec_t cfg = {.key = "Config"};
    spec_t db = {.key = "Db", .resolve = DEPS("Config", "Clock")};
    spec_t clock = {.key = "Clock"};
    spec_t handler = {.key = "Handler", .resolve = DEPS("Db", "Config")};
    spec_t p1 = {.key = "Plugin"}, p2 = {.key = "Plugin", .resolve = DEPS("Db")};
    spec_t orphan = {.key = "Orphan", .resolve = DEPS("Nope")};
    spec_t c1 = {.key = "C1", .resolve = DEPS("C2")}, c2 = {.key = "C2", .resolve = DEPS("C1")};
    struct {
        spec_t *sp;
        hk_lifetime_t lt;
    } regs[] = {{&cfg, HK_LIFETIME_SINGLETON}, {&db, HK_LIFETIME_SCOPED},
                {&clock, HK_LIFETIME_TRANSIENT}, {&handler, HK_LIFETIME_TRANSIENT},
                {&p1, HK_LIFETIME_SINGLETON},    {&p2, HK_LIFETIME_SCOPED},
                {&orphan, HK_LIFETIME_SCOPED},   {&c1, HK_LIFETIME_SCOPED},
                {&c2, HK_LIFETIME_SCOPED}};
    hk_services_t *s = NULL;
    hk_scope_t *sc = NULL;
    int r = hk_services_new(&s);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        hk_service_desc_t d = {.key = regs[i].sp->key, .lifetime = regs[i].lt, .factory = gen_factory,
                               .free = gen_free, .data = regs[i].sp, .deps = regs[i].sp->resolve};
        if ((r = hk_services_add(s, &d)) < 0)
            goto out;
    }
    msgs_t m;
    r = validate(s, &m);
    if (r < 0)
        goto out;
    assert_int_equal(r, 2); /* the missing "Nope" and C1 -> C2 -> C1 */
    if ((r = hk_scope_new(s, &sc)) < 0)
        goto out;
    void *p, *q;
    void *const *all;
    if ((r = hk_scope_get(sc, "Handler", &p)) < 0)
        goto out;
    if ((r = hk_scope_get_handle(sc, hk_services_handle(s, "Handler"), &q)) < 0)
        goto out;
    if ((r = hk_scope_get_all(sc, "Plugin", &all)) < 0)
        goto out;
    assert_int_equal(r, 2);
    if ((r = hk_scope_get(hk_services_root(s), "Clock", &p)) < 0)
        goto out;
    if ((r = hk_scope_get_all(hk_services_root(s), "Config", &all)) < 0)
        goto out;
    r = 0;
out:
    if (r < 0) {
        assert_int_equal(r, -ENOMEM);
        if (s && sc) /* a failed resolution says so */
            assert_non_null(strstr(hk_services_last_error(), "Cannot allocate memory"));
    }
    hk_scope_free(sc);
    hk_services_free(s);
    return r;
}

static void out_of_memory_at_every_allocation_fails_cleanly_and_leaks_nothing(void **state) {
    (void)state;
    failalloc_install();
    for (int persistent = 0; persistent < 2; persistent++) {
        for (long n = 1;; n++) {
            atomic_store(&n_created, 0);
            atomic_store(&n_destroyed, 0);
            long base = alloc_live();
            failalloc_set(n, persistent);
            int r = oom_scenario();
            long used = failalloc_count();
            failalloc_set(0, false);
            if (alloc_live() != base || n_created != n_destroyed) {
                failalloc_uninstall();
                fail_msg("allocation %ld (%s): %ld blocks leaked, %d created, %d destroyed", n,
                         persistent ? "persistent" : "once", alloc_live() - base, n_created, n_destroyed);
            }
            if (used < n) { /* no allocation failed: the whole scenario ran */
                assert_int_equal(r, 0);
                assert_true(n > 10);
                break;
            }
            if (r != -ENOMEM) {
                failalloc_uninstall();
                fail_msg("allocation %ld (%s) failed but the scenario returned %d", n,
                         persistent ? "persistent" : "once", r);
            }
        }
    }
    failalloc_uninstall();
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup(name, reset)
        T(singleton_is_created_lazily_once_and_shared_by_every_scope),
        T(scoped_is_created_once_per_scope_and_destroyed_with_it),
        T(transient_is_new_on_every_resolution_and_owned_by_the_asking_scope),
        T(transient_resolved_from_the_root_scope_lives_until_the_registry_is_freed),
        T(null_is_a_valid_instance_and_is_still_created_once),
        T(dependencies_are_created_first_and_destroyed_after_their_consumer),
        T(scope_free_destroys_what_it_created_in_reverse_creation_order),
        T(singletons_are_destroyed_in_reverse_creation_order_when_the_registry_is_freed),
        T(transient_dependency_of_a_singleton_is_destroyed_after_it),
        T(get_returns_the_last_registration_and_get_all_every_one_in_order),
        T(keys_are_case_sensitive_and_unknown_keys_are_enoent),
        T(handle_resolves_the_same_instances_as_the_key),
        T(typed_macro_resolves_into_a_typed_pointer),
        T(add_rejects_bad_descriptions_and_keeps_nothing),
        T(add_after_the_registry_is_frozen_is_ebusy),
        T(registry_releases_data_on_free_and_shorthands_leave_it_alone),
        T(free_functions_accept_null_and_ignore_the_root_scope),
        T(validation_names_a_missing_dependency_and_who_requires_it),
        T(validation_refuses_a_scoped_service_consumed_by_a_singleton),
        T(validation_refuses_a_scoped_service_reached_through_a_transient),
        T(validation_reports_a_cycle_with_its_path),
        T(validation_reports_each_distinct_cycle_once),
        T(validation_lists_every_problem_at_once),
        T(validation_checks_every_registration_under_a_dependency_key),
        T(validation_accepts_a_valid_graph),
        T(validation_of_a_graph_with_many_paths_is_quick),
        T(validation_lists_at_most_256_cycles_of_a_dense_graph),
        T(root_scope_refuses_a_scoped_service_with_a_clear_error),
        T(singleton_resolving_a_scoped_service_at_run_time_is_refused),
        T(factory_failure_returns_its_error_with_the_key_and_the_message),
        T(factory_failure_without_a_message_is_described_by_its_errno),
        T(scope_fail_turns_a_non_negative_error_into_eio),
        T(failed_resolution_destroys_what_it_created_in_reverse_and_keeps_finished_singletons),
        T(failed_singleton_is_not_cached_and_is_created_on_a_later_try),
        T(failed_get_all_destroys_the_instances_it_created),
        T(run_time_cycle_between_scoped_services_is_einval),
        T(run_time_cycle_through_transients_is_einval),
        T(run_time_cycle_of_singletons_on_one_thread_is_einval),
        T(run_time_cycle_of_singletons_across_threads_fails_instead_of_deadlocking),
        T(concurrent_first_resolution_creates_a_singleton_exactly_once),
        T(many_threads_each_with_their_own_scope_share_singletons_only),
        T(out_of_memory_at_every_allocation_fails_cleanly_and_leaks_nothing),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
