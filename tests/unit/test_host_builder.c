/*
 * The host builder: registration errors, configuration errors (exit 78),
 * malformed command lines (exit 64), ownership of service data on every
 * path, and out-of-memory at every allocation of a whole build-run-free.
 */
#include "hosttest.h"

static int noop_exec(hk_service_t *svc, hk_token_t *t) {
    (void)svc;
    return hk_token_wait(t) == -ECANCELED ? 0 : -EIO;
}

static int build_fails_with(hk_builder_t *b, int want_code, const char *want_error) {
    hk_host_t *h = NULL;
    int rc = hk_builder_build(b, &h);
    assert_true(rc < 0);
    assert_null(h);
    assert_int_equal(hk_builder_exit_code(b), want_code);
    if (want_error) {
        assert_non_null(hk_builder_error(b));
        if (!strstr(hk_builder_error(b), want_error))
            fail_msg("error \"%s\" lacks \"%s\"", hk_builder_error(b), want_error);
        if (capture_find(cap, want_error, 0) < 0) {
            capture_dump(cap);
            fail_msg("not logged: %s", want_error);
        }
    }
    return rc;
}

static void duplicate_service_names_fail_the_build_with_exit_1(void **state) {
    (void)state;
    tsvc_t a, a2;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(add_hosted(b, tsvc(&a, "db")), 0);
    assert_int_equal(add_hosted(b, tsvc(&a2, "DB")), -EEXIST); /* names are case-insensitive */
    build_fails_with(b, 1, "a service named DB is already registered");
    hk_builder_free(b);
    assert_true(rec_at("destroy", "db") >= 0);  /* registered: owned and released */
    assert_int_equal(rec_at("destroy", "DB"), -1); /* refused: ownership stayed with the caller */
}

static void invalid_names_and_empty_definitions_are_refused(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_service_def_t empty = {.name = "nothing"};
    assert_int_equal(hk_builder_add_service(b, &empty), -EINVAL);
    assert_int_equal(hk_builder_add_service(b, NULL), -EINVAL);
    hk_service_def_t noname = {.execute = noop_exec};
    assert_int_equal(hk_builder_add_service(b, &noname), -EINVAL);
    assert_int_equal(hk_builder_add_background(b, "has space", noop_exec, NULL, NULL), -EINVAL);
    assert_int_equal(hk_builder_add_background(b, "a:b", noop_exec, NULL, NULL), -EINVAL);
    assert_int_equal(hk_builder_add_background(b, "", noop_exec, NULL, NULL), -EINVAL);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    assert_int_equal(hk_builder_add_background(b, longname, noop_exec, NULL, NULL), -EINVAL);
    longname[63] = '\0';
    assert_int_equal(hk_builder_add_background(b, longname, noop_exec, NULL, NULL), 0);
    assert_int_equal(hk_builder_add_background(b, "no-exec", NULL, NULL, NULL), -EINVAL);
    build_fails_with(b, 1, "service nothing has no start, execute or stop callback");
    assert_true(capture_find(cap, "invalid service name \"has space\"", 0) >= 0);
    assert_true(capture_find(cap, "invalid service name \"a:b\"", 0) >= 0);
    assert_true(capture_find(cap, "background service no-exec has no execute callback", 0) >= 0);
    hk_builder_free(b);
}

static void bad_configuration_value_fails_the_build_with_exit_78(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_set_source(hk_builder_config(b), "Worker:Count", "abc", HK_CONFIG_COMMAND_LINE, NULL);
    int64_t count = 3;
    assert_int_equal(hk_config_get_int(hk_builder_config(b), "Worker:Count", 3, 0, 100, &count), -EINVAL);
    assert_int_equal(count, 3);
    build_fails_with(b, 78, "Worker:Count: \"abc\" is not an integer (from command line)");
    assert_true(capture_find(cap, "crit: hostkit.host[0] Invalid configuration: Worker:Count", 0) >= 0);
    hk_builder_free(b);
}

static void every_bad_host_setting_is_listed(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    hk_config_t *c = hk_builder_config(b);
    hk_config_set(c, "Host:ShutdownTimeoutSeconds", "soon");
    hk_config_set(c, "Host:StartupTimeoutSeconds", "-1");
    hk_config_set(c, "Host:ServicesStartConcurrently", "yes");
    hk_config_set(c, "Host:BackgroundServiceExceptionBehavior", "Sometimes");
    hk_config_set(c, "Logging:LogLevel:Default", "Loud");
    build_fails_with(b, 78, NULL);
    const char *want[] = {
        "Host:ShutdownTimeoutSeconds: \"soon\" is not a number (from override)",
        "Host:StartupTimeoutSeconds: \"-1\" is out of range [0, 1000000000] (from override)",
        "Host:ServicesStartConcurrently: \"yes\" is not a boolean (true or false) (from override)",
        "Host:BackgroundServiceExceptionBehavior: \"Sometimes\" is not one of StopHost, Ignore (from override)",
        "Logging:LogLevel:Default: \"Loud\" is not one of Trace, Debug, Information, Warning, Error, Critical, None (from override)",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (capture_find(cap, want[i], 0) < 0) {
            capture_dump(cap);
            fail_msg("not listed: %s", want[i]);
        }
    }
    hk_builder_free(b);
}

static void malformed_command_line_fails_the_build_with_exit_64(void **state) {
    (void)state;
    char *argv[] = {"prog", "--Worker:Count=2", "stray", NULL};
    hk_builder_t *b = hk_builder_new(3, argv);
    assert_non_null(b);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    /* nothing of a malformed command line is applied */
    assert_null(hk_config_get(hk_builder_config(b), "Worker:Count"));
    build_fails_with(b, 64, "unexpected argument 'stray'");
    hk_builder_free(b);
}

static void command_line_reaches_the_configuration(void **state) {
    (void)state;
    char *argv[] = {"prog", "--Worker:Count=2", "--environment", "Development", "/contentRoot=/srv",
                    "Logging:LogLevel:Default=Warning", NULL};
    hk_builder_t *b = hk_builder_new(6, argv);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_string_equal(hk_config_get(hk_host_config(h), "worker:count"), "2");
    assert_string_equal(hk_host_environment(h), "Development");
    assert_string_equal(hk_host_content_root(h), "/srv");
    assert_false(hk_logger_enabled(hk_host_logger(h, "Any"), HK_LOG_INFO));
    assert_true(hk_logger_enabled(hk_host_logger(h, "Any"), HK_LOG_WARN));
    hk_host_free(h);
}

static void help_switch_wins_even_next_to_a_malformed_argument(void **state) {
    (void)state;
    char *argv[] = {"prog", "stray", "--help", NULL};
    hk_builder_t *b = hk_builder_new(3, argv);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -ECANCELED); /* usage went to stdout */
    assert_null(h);
    assert_int_equal(hk_builder_exit_code(b), 0);
    assert_int_equal(capture_lines(cap), 0); /* nothing logged: not an error */
    hk_builder_free(b);
}

static void environment_comes_only_from_host_sources(void **state) {
    (void)state;
    /* A plain ENVIRONMENT variable is application configuration, not the
     * host's environment (as in .NET, where only DOTNET_ variables count). */
    setenv("ENVIRONMENT", "Plain", 1);
    setenv("HOSTKIT_CONTENTROOT", "/srv/from-hostkit-var", 1);
    hk_builder_t *b = test_builder(cap);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_string_equal(hk_host_environment(h), "Production");
    assert_string_equal(hk_host_content_root(h), "/srv/from-hostkit-var");
    hk_host_free(h);
    setenv("HOSTKIT_ENVIRONMENT", "Staging", 1);
    b = test_builder(cap);
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_string_equal(hk_host_environment(h), "Staging");
    hk_host_free(h);
    unsetenv("ENVIRONMENT");
    unsetenv("HOSTKIT_CONTENTROOT");
    unsetenv("HOSTKIT_ENVIRONMENT");
}

static void builder_functions_accept_null(void **state) {
    (void)state;
    hk_builder_free(NULL);
    hk_host_free(NULL);
    hk_host_stop(NULL);
    assert_int_equal(hk_builder_run(NULL), 1);
    assert_int_equal(hk_host_run(NULL), 1);
    assert_null(hk_builder_config(NULL));
    assert_null(hk_builder_logger(NULL, "x"));
    assert_int_equal(hk_builder_add_background(NULL, "x", noop_exec, NULL, NULL), -EINVAL);
    assert_int_equal(hk_builder_build(NULL, NULL), -EINVAL);
    assert_null(hk_service_name(NULL));
    assert_null(hk_service_data(NULL));
    assert_int_equal(hk_service_fail(NULL, -EPERM, "x"), -EPERM);
    assert_int_equal(hk_service_fail(NULL, 0, "x"), -EIO);
}

static void builder_freed_without_build_releases_service_data_in_reverse(void **state) {
    (void)state;
    tsvc_t a, b2;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    add_background(b, tsvc(&b2, "b"));
    hk_builder_free(b);
    assert_before("destroy", "b", "destroy", "a");
}

/* ---- out of memory ------------------------------------------------------------ */

static int oom_start(hk_service_t *svc, hk_token_t *t) {
    (void)t;
    hk_host_stop(hk_service_host(svc));
    return 0;
}

static void every_allocation_failure_is_survived_without_leaks(void **state) {
    (void)state;
    long baseline = alloc_live();
    bool completed = false;
    int n;
    for (n = 1; n < 2000 && !completed; n++) {
        failalloc_set(n, false);
        hk_builder_t *b = hk_builder_new(0, NULL);
        if (!b) {
            assert_int_equal(alloc_live(), baseline);
            continue;
        }
        hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
        hk_config_set(hk_builder_config(b), "Host:HandleSignals", "false");
        hk_builder_add_hosted(b, "a", oom_start, NULL, NULL, NULL);
        hk_builder_add_background(b, "w", noop_exec, NULL, NULL);
        int code = hk_builder_run(b);
        assert_true(code == 0 || code == 1 || code == 78);
        assert_int_equal(alloc_live(), baseline);
        completed = failalloc_count() < n; /* ran without reaching the failing allocation */
    }
    failalloc_set(0, false);
    assert_true(completed);
    print_message("whole build-run-free survived each of its first %d allocations failing\n", n - 2);
    assert_true(n > 50); /* the loop really went through the host's allocations */
}

int main(void) {
    failalloc_install();
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, host_setup, host_teardown)
        T(duplicate_service_names_fail_the_build_with_exit_1),
        T(invalid_names_and_empty_definitions_are_refused),
        T(bad_configuration_value_fails_the_build_with_exit_78),
        T(every_bad_host_setting_is_listed),
        T(malformed_command_line_fails_the_build_with_exit_64),
        T(command_line_reaches_the_configuration),
        T(help_switch_wins_even_next_to_a_malformed_argument),
        T(environment_comes_only_from_host_sources),
        T(builder_functions_accept_null),
        T(builder_freed_without_build_releases_service_data_in_reverse),
        T(every_allocation_failure_is_survived_without_leaks),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
