/*
 * The service registry inside the host: validated at build (exit 78 with
 * every problem), instances resolved for services before they start,
 * singletons destroyed after every service stopped, scopes per unit of work.
 */
#include "hosttest.h"

typedef struct obj {
    char name[32];
    int value;
} obj_t;

static int make_obj(hk_scope_t *scope, void *data, void **ret) {
    (void)scope;
    obj_t *o = calloc(1, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", (const char *)data);
    rec_add("create", o->name);
    *ret = o;
    return 0;
}
static void free_obj(void *instance, void *data) {
    (void)data;
    obj_t *o = instance;
    rec_add("free", o->name);
    free(o);
}
static int failing_factory(hk_scope_t *scope, void *data, void **ret) {
    (void)data;
    (void)ret;
    return hk_scope_fail(scope, -ECONNREFUSED, "database is down");
}

/* A service that depends on Repo (which depends on Db). */
static int make_repo(hk_scope_t *scope, void *data, void **ret) {
    void *db = NULL;
    int rc = hk_scope_get(scope, "Db", &db);
    if (rc < 0)
        return rc;
    return make_obj(scope, data, ret);
}

static int uses_instance_start(hk_service_t *svc, hk_token_t *t) {
    (void)t;
    obj_t *o = hk_service_instance(svc);
    rec_add(o ? "start-with" : "start-without", o ? o->name : "none");
    return 0;
}
static int uses_instance_stop(hk_service_t *svc, hk_token_t *t) {
    (void)t;
    obj_t *o = hk_service_instance(svc);
    rec_add("stop-with", o ? o->name : "none");
    return 0;
}
static void svc_destroy(void *data) {
    (void)data;
    rec_add("destroy", "svc");
}

static void hosted_service_gets_its_instance_and_singletons_outlive_it(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_services_t *s = hk_builder_services(b);
    static const char *const repo_deps[] = {"Db", NULL};
    assert_int_equal(hk_services_add_singleton(s, "Db", make_obj, free_obj, "db", NULL), 0);
    assert_int_equal(hk_services_add_singleton(s, "Repo", make_repo, free_obj, "repo", repo_deps), 0);
    hk_service_def_t def = {.name = "svc", .start = uses_instance_start, .stop = uses_instance_stop,
                            .destroy = svc_destroy, .instance = "Repo"};
    assert_int_equal(hk_builder_add_service(b, &def), 0);
    assert_int_equal(run_until_started(b), 0);
    assert_before("create", "db", "create", "repo"); /* dependencies first */
    assert_before("create", "repo", "start-with", "repo");
    assert_before("stop-with", "repo", "destroy", "svc");
    assert_before("destroy", "svc", "free", "repo"); /* singletons after every service */
    assert_before("free", "repo", "free", "db");     /* reverse creation order */
}

static void registry_problems_fail_the_build_with_78_listing_each(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_services_t *s = hk_builder_services(b);
    static const char *const cache_deps[] = {"DbSession", NULL};
    static const char *const repo_deps[] = {"Db", NULL};
    hk_services_add_scoped(s, "DbSession", make_obj, free_obj, "session", NULL);
    hk_services_add_singleton(s, "Cache", make_obj, free_obj, "cache", cache_deps);
    hk_services_add_singleton(s, "OrderRepository", make_obj, free_obj, "repo", repo_deps);
    hk_service_def_t a = {.name = "a", .start = uses_instance_start, .instance = "Missing"};
    hk_service_def_t c = {.name = "c", .start = uses_instance_start, .instance = "DbSession"};
    hk_builder_add_service(b, &a);
    hk_builder_add_service(b, &c);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_int_equal(hk_builder_exit_code(b), 78);
    assert_logged("Invalid configuration: No service registered for \"Db\" (required by \"OrderRepository\")");
    assert_logged("Invalid configuration: Cannot consume scoped service \"DbSession\" from singleton \"Cache\"");
    assert_logged("Invalid configuration: No service registered for \"Missing\" (required by hosted service \"a\")");
    assert_logged("Invalid configuration: Cannot consume scoped service \"DbSession\" from hosted service \"c\"");
    hk_builder_free(b);
    assert_int_equal(rec_count(), 0); /* nothing was created */
}

static void failing_instance_factory_fails_startup_naming_the_service(void **state) {
    (void)state;
    tsvc_t first;
    hk_builder_t *b = test_builder(cap);
    hk_services_add_singleton(hk_builder_services(b), "Db", failing_factory, NULL, NULL, NULL);
    add_hosted(b, tsvc(&first, "first"));
    hk_service_def_t def = {.name = "svc", .start = uses_instance_start, .instance = "Db"};
    hk_builder_add_service(b, &def);
    assert_int_equal(run_until_started(b), 1);
    assert_logged("crit: hostkit.host[0] Service svc failed to start: Cannot create \"Db\": database is down");
    assert_int_equal(rec_at("start-without", "none"), -1); /* its start never ran */
    assert_true(rec_at("stop", "first") >= 0);           /* rolled back */
}

/* The scope-per-unit-of-work pattern: a background service creates a scope
 * per iteration, resolves a scoped object, disposes the scope. */
static int per_iteration(hk_service_t *svc, hk_token_t *stopping) {
    hk_services_t *s = hk_host_services(hk_service_host(svc));
    hk_handle_t unit = hk_services_handle(s, "Unit");
    for (int i = 0; i < 3 && !hk_token_is_cancelled(stopping); i++) {
        hk_scope_t *scope = NULL;
        if (hk_scope_new(s, &scope) < 0)
            return -ENOMEM;
        obj_t *a = NULL, *b2 = NULL;
        int rc = hk_scope_get_handle(scope, unit, (void **)&a);
        if (rc == 0)
            rc = hk_scope_get_handle(scope, unit, (void **)&b2);
        rec_add(rc == 0 && a == b2 ? "same-in-scope" : "broken", "unit");
        hk_scope_free(scope);
    }
    hk_host_stop(hk_service_host(svc));
    return 0;
}

static void background_service_uses_a_scope_per_unit_of_work(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_services_add_scoped(hk_builder_services(b), "Unit", make_obj, free_obj, "unit", NULL);
    hk_builder_add_background(b, "loop", per_iteration, NULL, NULL);
    assert_int_equal(hk_builder_run(b), 0);
    int created = 0, freed = 0, same = 0;
    for (int i = 0; i < rec_count(); i++) {
        pthread_mutex_lock(&R.mu);
        created += !strcmp(R.ev[i], "create:unit");
        freed += !strcmp(R.ev[i], "free:unit");
        same += !strcmp(R.ev[i], "same-in-scope:unit");
        pthread_mutex_unlock(&R.mu);
    }
    assert_int_equal(created, 3); /* one per scope */
    assert_int_equal(freed, 3);   /* disposed with each scope */
    assert_int_equal(same, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, host_setup, host_teardown)
        T(hosted_service_gets_its_instance_and_singletons_outlive_it),
        T(registry_problems_fail_the_build_with_78_listing_each),
        T(failing_instance_factory_fails_startup_naming_the_service),
        T(background_service_uses_a_scope_per_unit_of_work),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
