/*
 * Unit tests for the web host's router (src/web/router.c): pattern
 * validation and duplicates, literal beats parameter beats catch-all,
 * 404 / 405 with Allow, HEAD from GET, percent-decoding and malformed
 * paths, trailing slashes, case-insensitive literals, failing allocations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "web/router.h"

static int ids[32];
#define ID(i) (&ids[i])

static hk__router_t *router_with(const char *const *routes) {
    hk__router_t *r = NULL;
    assert_int_equal(hk__router_new(&r), 0);
    for (int i = 0; routes[2 * i]; i++) {
        char err[256];
        int rc = hk__router_add(r, routes[2 * i], routes[2 * i + 1], ID(i), err, sizeof err);
        if (rc < 0)
            fail_msg("adding %s %s: %s", routes[2 * i], routes[2 * i + 1], err);
    }
    return r;
}

/* Matches and returns the route index (or the negative / positive result code - 100). */
static int match(hk__router_t *r, const char *method, const char *path, hk__route_match_t *m) {
    int rc = hk__router_match(r, method, path, m);
    if (rc != 0)
        return rc - 100;
    return (int)((int *)m->ctx - ids);
}

static const char *value(const hk__route_match_t *m, const char *name) {
    for (size_t i = 0; i < m->nparams; i++)
        if (!strcmp(m->names[i], name))
            return m->values[i];
    return NULL;
}

static void literal_beats_parameter_beats_catchall(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){
        "GET", "/users/{id}",  "GET", "/users/me", "GET", "/users/{id}/posts/{post}",
        "GET", "/files/{*rest}", "GET", "/files/readme", "GET", "/", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "GET", "/users/me", &m), 1);
    assert_int_equal(m.nparams, 0);
    assert_string_equal(m.pattern, "/users/me");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/users/42", &m), 0);
    assert_string_equal(value(&m, "id"), "42");
    assert_string_equal(m.pattern, "/users/{id}");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/users/7/posts/x", &m), 2);
    assert_string_equal(value(&m, "id"), "7");
    assert_string_equal(value(&m, "post"), "x");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/files/readme", &m), 4);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/files/a/b/c.txt", &m), 3);
    assert_string_equal(value(&m, "rest"), "a/b/c.txt");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/files", &m), 3); /* the catch-all may be empty */
    assert_string_equal(value(&m, "rest"), "");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/", &m), 5);
    hk__route_match_clear(&m);
    hk__router_free(r);
}

static void unknown_path_is_404_and_wrong_method_405_with_allow(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){
        "GET", "/items/{id}", "DELETE", "/items/{id}", "POST", "/items", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "GET", "/nothing", &m), -ENOENT - 100);
    assert_int_equal(match(r, "GET", "/items/1/extra", &m), -ENOENT - 100);
    assert_int_equal(match(r, "PUT", "/items/1", &m), HK__ROUTE_NO_METHOD - 100);
    assert_string_equal(m.allow, "GET, HEAD, DELETE");
    assert_int_equal(match(r, "GET", "/items", &m), HK__ROUTE_NO_METHOD - 100);
    assert_string_equal(m.allow, "POST");
    hk__router_free(r);
}

static void head_is_served_by_get_unless_mapped(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){
        "GET", "/a", "GET", "/b", "HEAD", "/b", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "HEAD", "/a", &m), 0);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "HEAD", "/b", &m), 2);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "POST", "/a", &m), HK__ROUTE_NO_METHOD - 100);
    assert_string_equal(m.allow, "GET, HEAD");
    hk__router_free(r);
}

static void any_method_route_yields_to_an_exact_one(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){"*", "/x", "PUT", "/x", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "PUT", "/x", &m), 1);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "PATCH", "/x", &m), 0);
    hk__route_match_clear(&m);
    hk__router_free(r);
}

static void values_are_percent_decoded_and_bad_paths_are_400(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){
        "GET", "/hello/{name}", "GET", "/caf%C3%A9", "GET", "/raw/{*rest}", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "GET", "/hello/J%C3%BCrgen%20M", &m), 0);
    assert_string_equal(value(&m, "name"), "J\xc3\xbcrgen M");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/raw/a%3Fb/c", &m), 2);
    assert_string_equal(value(&m, "rest"), "a?b/c");
    hk__route_match_clear(&m);
    /* literal segments compare decoded too: the pattern's %C3%A9 is literal text */
    assert_int_equal(match(r, "GET", "/caf%25C3%25A9", &m), 1);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/hello/a%2Fb", &m), -EINVAL - 100);  /* encoded / */
    assert_int_equal(match(r, "GET", "/hello/a%00b", &m), -EINVAL - 100);  /* encoded NUL */
    assert_int_equal(match(r, "GET", "/hello/bad%zz", &m), -EINVAL - 100);
    assert_int_equal(match(r, "GET", "/hello/trunc%4", &m), -EINVAL - 100);
    assert_int_equal(match(r, "GET", "/hello/trunc%", &m), -EINVAL - 100);
    assert_int_equal(match(r, "GET", "relative", &m), -EINVAL - 100);
    assert_int_equal(match(r, "GET", "", &m), -EINVAL - 100);
    hk__router_free(r);
}

static void trailing_slash_case_and_empty_segments(void **state) {
    (void)state;
    hk__router_t *r = router_with((const char *const[]){
        "GET", "/Users/{id}", "GET", "/list/", NULL});
    hk__route_match_t m;
    assert_int_equal(match(r, "GET", "/users/1/", &m), 0);
    assert_string_equal(value(&m, "id"), "1");
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/USERS/abc", &m), 0);
    assert_string_equal(value(&m, "id"), "abc"); /* values keep their case */
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/list", &m), 1);
    hk__route_match_clear(&m);
    assert_int_equal(match(r, "GET", "/users//", &m), -ENOENT - 100); /* empty {id} */
    assert_int_equal(match(r, "GET", "/users/", &m), -ENOENT - 100);
    hk__router_free(r);
}

static void bad_patterns_and_duplicates_are_refused_with_a_reason(void **state) {
    (void)state;
    hk__router_t *r = NULL;
    assert_int_equal(hk__router_new(&r), 0);
    char err[256];
    struct { const char *method, *pattern, *reason; int rc; } bad[] = {
        {"get", "/a", "bad HTTP method", -EINVAL},
        {"", "/a", "bad HTTP method", -EINVAL},
        {NULL, "/a", "bad HTTP method", -EINVAL},
        {"GET", "a", "must start with /", -EINVAL},
        {"GET", NULL, "must start with /", -EINVAL},
        {"GET", "/a//b", "empty segment", -EINVAL},
        {"GET", "/file{id}.txt", "either literal text or one {parameter}", -EINVAL},
        {"GET", "/{id", "either literal text or one {parameter}", -EINVAL},
        {"GET", "/{}", "needs a name", -EINVAL},
        {"GET", "/{a-b}", "letters, digits and _", -EINVAL},
        {"GET", "/{*rest}/x", "must be the last segment", -EINVAL},
        {"GET", "/{id}/{id}", "appears twice", -EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = hk__router_add(r, bad[i].method, bad[i].pattern, NULL, err, sizeof err);
        if (rc != bad[i].rc || !strstr(err, bad[i].reason))
            fail_msg("%s %s: rc %d, \"%s\" (expected \"%s\")", bad[i].method ? bad[i].method : "NULL",
                     bad[i].pattern ? bad[i].pattern : "NULL", rc, err, bad[i].reason);
    }
    assert_int_equal(hk__router_add(r, "GET", "/u/{id}", NULL, err, sizeof err), 0);
    assert_int_equal(hk__router_add(r, "GET", "/U/{name}", NULL, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "already mapped as GET /u/{id}"));
    assert_int_equal(hk__router_add(r, "POST", "/u/{id}", NULL, err, sizeof err), 0);
    hk__route_match_t m;
    assert_int_equal(hk__router_match(r, "GET", "/nothing-added-matches", &m), -ENOENT);
    hk__router_free(r);
}

static void more_params_than_the_limit_is_refused(void **state) {
    (void)state;
    hk__router_t *r = NULL;
    assert_int_equal(hk__router_new(&r), 0);
    char pattern[512] = "";
    for (int i = 0; i <= HK__ROUTE_MAX_PARAMS; i++)
        snprintf(pattern + strlen(pattern), sizeof pattern - strlen(pattern), "/{p%d}", i);
    char err[256];
    assert_int_equal(hk__router_add(r, "GET", pattern, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "parameters"));
    hk__router_free(r);
}

static void survives_every_failing_allocation(void **state) {
    (void)state;
    failalloc_install();
    for (long n = 1; n < 200; n++) {
        failalloc_set(n, false);
        hk__router_t *r = NULL;
        if (hk__router_new(&r) < 0)
            continue;
        char err[128];
        int rc1 = hk__router_add(r, "GET", "/a/{x}/{*rest}", NULL, err, sizeof err);
        int rc2 = hk__router_add(r, "GET", "/b", NULL, err, sizeof err);
        assert_true(rc1 == 0 || rc1 == -ENOMEM);
        assert_true(rc2 == 0 || rc2 == -ENOMEM);
        hk__route_match_t m;
        int rc = hk__router_match(r, "GET", "/a/1/2/3", &m);
        assert_true(rc == 0 || rc == -ENOMEM || (rc1 < 0 && rc == -ENOENT));
        hk__route_match_clear(&m);
        hk__router_free(r);
    }
    failalloc_set(0, false);
    assert_int_equal(alloc_live(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_beats_parameter_beats_catchall),
        cmocka_unit_test(unknown_path_is_404_and_wrong_method_405_with_allow),
        cmocka_unit_test(head_is_served_by_get_unless_mapped),
        cmocka_unit_test(any_method_route_yields_to_an_exact_one),
        cmocka_unit_test(values_are_percent_decoded_and_bad_paths_are_400),
        cmocka_unit_test(trailing_slash_case_and_empty_segments),
        cmocka_unit_test(bad_patterns_and_duplicates_are_refused_with_a_reason),
        cmocka_unit_test(more_params_than_the_limit_is_refused),
        cmocka_unit_test(survives_every_failing_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
