/*
 * Configuration reload through a real host (src/core/reload.c): watched file
 * changes (in place, write-then-rename, Kubernetes ..data symlink swaps),
 * SIGHUP and hk_config_request_reload, all-or-nothing refusals (bad JSON, bad
 * options, bad log levels), change callbacks, and readers racing reloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hosttest.h"
#include "scenario.h"

/* Generous: a passing test never waits for it (sanitizer builds are slow). */
#define DEADLINE_MS 10000

/* ---- the options section every test binds -------------------------------- */

typedef struct ropts {
    int64_t value;
    char *name;
} ropts_t;

static const hk_option_t ropts_fields[] = {
    HK_OPT_INT(ropts_t, value, "Value", "0", 0, 100, "a number"),
    HK_OPT_STRING(ropts_t, name, "Name", "none", "a name"),
};
static const hk_options_def_t ropts_def = HK_OPTIONS_DEF("Reload", ropts_t, ropts_fields);

/* ---- one scenario per test -------------------------------------------------
 * The scenario harness (scenario.h) runs the test's body (which changes
 * files, signals, and waits for the outcome with deadlines) while the host
 * runs on the test thread. */

typedef struct scn {
    char dir[256];
    capture_t *cap;
    hk_host_t *host;
    hk_options_t *opts;
    pthread_t host_thread;
    atomic_int cb_reload, cb_other, cb_all; /* hk_host_on_config_change calls */
    atomic_bool cb_off_host_thread;
} scn_t;

static scn_t S;

static const char *show(const char *s) { return s ? s : "(null)"; }
static bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static hk_config_t *cfg(void) { return hk_host_config(S.host); }

#define CHECK_GET(key, want)                                                                       \
    CHECK_MSG(str_eq(hk_config_get(cfg(), (key)), (want)), "%s is %s, want %s", (key),             \
              show(hk_config_get(cfg(), (key))), show(want))
#define CHECK_LOGGED(text)                                                                         \
    CHECK_MSG(capture_find(S.cap, (text), 0) >= 0, "not logged: %s", (text))
#define CHECK_NOT_LOGGED(text)                                                                     \
    CHECK_MSG(capture_find(S.cap, (text), 0) < 0, "unexpectedly logged: %s", (text))

/* ---- files ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void path_of(char *buf, size_t len, const char *name) {
    int n = snprintf(buf, len, "%s/%s", S.dir, name);
    if (n < 0 || (size_t)n >= len)
        buf[0] = '\0';
}

static bool write_all_to(const char *path, int flags, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
    if (fd < 0)
        return false;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len; /* one write: no half-written state to see */
    return close(fd) == 0 && ok;
}

/* Replaces <dir>/name atomically: write name.tmp, rename it over name. */
static bool replace_file(const char *name, const char *text) {
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    path_of(path, sizeof path, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    return write_all_to(tmp, O_TRUNC, text) && rename(tmp, path) == 0;
}

/* Rewrites <dir>/name in place (truncate, write). */
static bool rewrite_in_place(const char *name, const char *text) {
    char path[PATH_MAX];
    path_of(path, sizeof path, name);
    return write_all_to(path, O_TRUNC, text);
}

/* ---- waiting ---------------------------------------------------------------- */

typedef struct count_wait {
    atomic_int *counter;
    int n;
} count_wait_t;
static bool counter_reached(void *arg) {
    count_wait_t *w = arg;
    return atomic_load(w->counter) >= w->n;
}
static bool wait_count(atomic_int *counter, int n) {
    count_wait_t w = {counter, n};
    return wait_until(counter_reached, &w, DEADLINE_MS);
}

typedef struct log_wait {
    const char *needle;
    int n;
} log_wait_t;
static bool logged_n(void *arg) {
    log_wait_t *w = arg;
    return capture_count(S.cap, w->needle) >= w->n;
}
static bool wait_logged(const char *needle, int n) {
    log_wait_t w = {needle, n};
    return wait_until(logged_n, &w, DEADLINE_MS);
}

/* ---- options snapshot -------------------------------------------------------- */

static bool opts_are(int64_t value, const char *name) {
    const ropts_t *o = hk_options_acquire(S.opts);
    bool ok = o && o->value == value && str_eq(o->name, name);
    hk_options_release(S.opts, o);
    return ok;
}

static void opts_show(char *buf, size_t len) {
    const ropts_t *o = hk_options_acquire(S.opts);
    snprintf(buf, len, "%" PRId64 "/%s", o ? o->value : -1, o ? show(o->name) : "(no snapshot)");
    hk_options_release(S.opts, o);
}

#define CHECK_OPTS(value, name)                                                                    \
    do {                                                                                           \
        char got_[128];                                                                            \
        opts_show(got_, sizeof got_);                                                              \
        CHECK_MSG(opts_are((value), (name)), "options are %s, want %d/%s", got_, (int)(value),     \
                  (name));                                                                         \
    } while (0)

/* ---- the host ------------------------------------------------------------------ */

static void on_change(hk_host_t *host, const char *section, void *data) {
    (void)host;
    (void)section;
    if (!pthread_equal(pthread_self(), S.host_thread))
        atomic_store(&S.cb_off_host_thread, true);
    atomic_fetch_add((atomic_int *)data, 1);
}

static int setup(void **state) {
    (void)state;
    S.cap = capture_new();
    S.host = NULL;
    S.opts = NULL;
    scn_body = NULL;
    scn_reset();
    atomic_store(&S.cb_reload, 0);
    atomic_store(&S.cb_other, 0);
    atomic_store(&S.cb_all, 0);
    atomic_store(&S.cb_off_host_thread, false);
    const char *tmp = getenv("TMPDIR");
    snprintf(S.dir, sizeof S.dir, "%s/hk-config-reload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(S.dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    capture_free(S.cap);
    S.cap = NULL;
    return nftw(S.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes <dir>/name before the host exists (cmocka asserts allowed). */
static void initial_file(const char *name, const char *text) {
    char path[PATH_MAX];
    path_of(path, sizeof path, name);
    assert_true(write_all_to(path, O_TRUNC, text));
}

/*
 * A builder for the content root S.dir: logs captured, hostkit's own
 * categories at Debug (the default level stays the files' business), a 20 ms
 * debounce, the Reload options, and the scenario service running body.
 */
static hk_builder_t *scn_builder(bool handle_signals, void (*body)(void)) {
    char a0[] = "test_config_reload", a1[] = "--contentRoot";
    char *argv[] = {a0, a1, S.dir, NULL};
    hk_builder_t *b = hk_builder_new(3, argv);
    assert_non_null(b);
    hk_log_set_sink(hk_builder_log(b), capture_sink, S.cap);
    hk_config_t *c = hk_builder_config(b);
    assert_int_equal(hk_config_set(c, "Host:HandleSignals", handle_signals ? "true" : "false"), 0);
    assert_int_equal(hk_config_set(c, "Host:ConfigReloadDebounceMs", "20"), 0);
    assert_int_equal(hk_config_set(c, "Logging:LogLevel:hostkit", "Debug"), 0);
    assert_int_equal(hk_builder_add_options(b, &ropts_def, &S.opts), 0);
    scn_add(b, body);
    return b;
}

/* Builds and registers change callbacks for "Reload", "Other" and "" (all). */
static hk_host_t *scn_build(hk_builder_t *b) {
    hk_host_t *h = NULL;
    if (hk_builder_build(b, &h) < 0) {
        capture_dump(S.cap);
        fail_msg("build failed: %s", show(hk_builder_error(b)));
    }
    hk_builder_free(b);
    S.host = h;
    assert_int_equal(hk_host_on_config_change(h, "Reload", on_change, &S.cb_reload), 0);
    assert_int_equal(hk_host_on_config_change(h, "Other", on_change, &S.cb_other), 0);
    assert_int_equal(hk_host_on_config_change(h, "", on_change, &S.cb_all), 0);
    return h;
}

/* Runs until the scenario stops the host, frees it, reports the body's failure. */
static void scn_run(hk_host_t *h) {
    S.host_thread = pthread_self();
    int code = hk_host_run(h);
    hk_host_free(h);
    S.host = NULL;
    if (scn_failure()) {
        capture_dump(S.cap);
        fail_msg("%s", scn_failure());
    }
    if (code != 0)
        capture_dump(S.cap);
    assert_int_equal(code, 0);
    assert_false(atomic_load(&S.cb_off_host_thread));
}

static void run_scenario(bool handle_signals, void (*body)(void)) {
    scn_run(scn_build(scn_builder(handle_signals, body)));
}

#define INITIAL "{\"Reload\": {\"Value\": 1, \"Name\": \"one\"}, \"Other\": {\"Key\": \"same\"}}"
#define L_FILE_RELOADED                                                                            \
    "info: hostkit.host[0] Configuration reloaded (a configuration file changed): "
#define L_REQ_RELOADED "info: hostkit.host[0] Configuration reloaded (on request): "
#define L_FAILED "fail: hostkit.host[0] Configuration reload failed: "
#define L_KEEPING "fail: hostkit.host[0] Keeping the previous configuration"

/* ======================================================================== */
/* watched files                                                            */
/* ======================================================================== */

static void body_in_place(void) {
    CHECK_GET("Reload:Value", "1");
    CHECK_OPTS(1, "one");
    const char *old_name = hk_config_get(cfg(), "Reload:Name");
    CHECK(rewrite_in_place("appsettings.json", "{\"Reload\": {\"Value\": 2, \"Name\": \"two\"},"
                                               " \"Other\": {\"Key\": \"same\"}}"));
    /* "" is registered last: once it ran, every callback of this reload has. */
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Reload:Value", "2");
    CHECK_GET("Reload:Name", "two");
    CHECK_GET("Other:Key", "same");
    CHECK_MSG(str_eq(hk_config_source_of(cfg(), "Reload:Value"), "appsettings.json"), "source %s",
              show(hk_config_source_of(cfg(), "Reload:Value")));
    CHECK_OPTS(2, "two");
    CHECK(atomic_load(&S.cb_reload) == 1);
    CHECK(atomic_load(&S.cb_other) == 0);
    CHECK(atomic_load(&S.cb_all) == 1);
    CHECK_LOGGED(L_FILE_RELOADED "2 keys changed\n");
    CHECK(capture_count(S.cap, "Configuration reloaded") == 1);
    /* A value read before the reload stays valid until the store is freed. */
    CHECK(str_eq(old_name, "one"));
}

static void in_place_write_reloads_config_and_options_and_notifies_the_changed_section_only(
    void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_in_place);
}

static void body_rename(void) {
    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 3, \"Name\": \"one\"},"
                                           " \"Other\": {\"Key\": \"same\"}}"));
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Reload:Value", "3");
    CHECK_OPTS(3, "one");
    CHECK_LOGGED(L_FILE_RELOADED "1 key changed\n");
    CHECK(atomic_load(&S.cb_reload) == 1 && atomic_load(&S.cb_other) == 0);
}

static void write_then_rename_reloads(void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_rename);
}

static void body_other_section(void) {
    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 1, \"Name\": \"one\"},"
                                           " \"Other\": {\"Key\": \"changed\", \"New\": 1}}"));
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Other:Key", "changed");
    CHECK(atomic_load(&S.cb_other) == 1);
    CHECK(atomic_load(&S.cb_reload) == 0);
    CHECK_LOGGED(L_FILE_RELOADED "2 keys changed\n");
}

static void a_change_in_another_section_does_not_notify_this_one(void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_other_section);
}

/* Kubernetes mounts a ConfigMap as <root>/appsettings.json -> ..data/appsettings.json,
 * ..data -> ..<timestamp>; an update writes a new ..<timestamp> directory,
 * points a new symlink at it and renames that over ..data. */
static bool symlink_in(const char *target, const char *name) {
    char path[PATH_MAX];
    path_of(path, sizeof path, name);
    return symlink(target, path) == 0;
}

static void body_configmap(void) {
    char v2[PATH_MAX], v2file[PATH_MAX], from[PATH_MAX], to[PATH_MAX], v1[PATH_MAX];
    path_of(v2, sizeof v2, "..v2");
    path_of(v2file, sizeof v2file, "..v2/appsettings.json");
    CHECK(mkdir(v2, 0700) == 0);
    CHECK(write_all_to(v2file, O_TRUNC,
                       "{\"Reload\": {\"Value\": 7, \"Name\": \"seven\"},"
                       " \"Other\": {\"Key\": \"same\"}}"));
    CHECK(symlink_in("..v2", "..data_tmp"));
    path_of(from, sizeof from, "..data_tmp");
    path_of(to, sizeof to, "..data");
    CHECK(rename(from, to) == 0);
    /* The old version goes away, as the kubelet removes it. */
    path_of(v1, sizeof v1, "..v1/appsettings.json");
    CHECK(unlink(v1) == 0);
    path_of(v1, sizeof v1, "..v1");
    CHECK(rmdir(v1) == 0);
    CHECK(wait_count(&S.cb_reload, 1));
    CHECK_GET("Reload:Value", "7");
    CHECK_GET("Reload:Name", "seven");
    CHECK_OPTS(7, "seven");
    CHECK_LOGGED(L_FILE_RELOADED "2 keys changed\n");
}

static void kubernetes_configmap_symlink_swap_reloads(void **state) {
    (void)state;
    char v1[PATH_MAX];
    path_of(v1, sizeof v1, "..v1");
    assert_int_equal(mkdir(v1, 0700), 0);
    initial_file("..v1/appsettings.json", INITIAL);
    assert_true(symlink_in("..v1", "..data"));
    assert_true(symlink_in("..data/appsettings.json", "appsettings.json"));
    run_scenario(false, body_configmap);
}

static void body_delete_optional(void) {
    char path[PATH_MAX];
    path_of(path, sizeof path, "appsettings.json");
    CHECK(unlink(path) == 0);
    CHECK(wait_count(&S.cb_reload, 1));
    CHECK(hk_config_get(cfg(), "Reload:Value") == NULL);
    CHECK(hk_config_get(cfg(), "Other:Key") == NULL);
    CHECK_OPTS(0, "none"); /* back to the defaults */
    CHECK_LOGGED(L_FILE_RELOADED "3 keys changed\n");
    /* The directory is still watched: the file coming back is seen. */
    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 9}}"));
    CHECK(wait_count(&S.cb_reload, 2));
    CHECK_GET("Reload:Value", "9");
    CHECK_OPTS(9, "none");
}

static void deleting_an_optional_file_removes_its_keys_and_recreating_it_restores_them(
    void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_delete_optional);
}

static void body_delete_required(void) {
    char path[PATH_MAX];
    path_of(path, sizeof path, "required.json");
    CHECK(unlink(path) == 0);
    CHECK(wait_logged(L_KEEPING, 1));
    CHECK_LOGGED(L_FAILED "required.json: file not found (required)\n");
    CHECK_GET("Req:A", "1");
    CHECK_GET("Reload:Value", "1");
    CHECK(atomic_load(&S.cb_all) == 0);
}

static void deleting_a_required_file_keeps_the_previous_configuration(void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    initial_file("required.json", "{\"Req\": {\"A\": \"1\"}}");
    hk_builder_t *b = scn_builder(false, body_delete_required);
    assert_int_equal(hk_builder_add_json_file(b, "required.json", false, true), 0);
    scn_run(scn_build(b));
}

/* ======================================================================== */
/* SIGHUP, requests, custom providers                                       */
/* ======================================================================== */

/* A custom provider whose value is a generation number bumped by the test. */
typedef struct gen_prov {
    atomic_int gen, loads, watches, unwatches, destroys;
    hk_config_t *_Atomic watched; /* the config passed to watch */
} gen_prov_t;

static gen_prov_t G;

static int gen_load(void *data, hk_config_sink_t *sink, char *err, size_t err_len) {
    (void)err;
    (void)err_len;
    gen_prov_t *g = data;
    atomic_fetch_add(&g->loads, 1);
    char v[16];
    snprintf(v, sizeof v, "%d", atomic_load(&g->gen));
    return hk_config_sink_set(sink, "Gen:N", v);
}
static int gen_watch(void *data, hk_config_t *config) {
    gen_prov_t *g = data;
    atomic_store(&g->watched, config);
    atomic_fetch_add(&g->watches, 1);
    return 0;
}
static void gen_unwatch(void *data) { atomic_fetch_add(&((gen_prov_t *)data)->unwatches, 1); }
static void gen_destroy(void *data) { atomic_fetch_add(&((gen_prov_t *)data)->destroys, 1); }

/* Builder with an unwatched extra.json and the generation provider. */
static hk_builder_t *sources_builder(bool handle_signals, void (*body)(void)) {
    memset(&G, 0, sizeof G);
    atomic_store(&G.gen, 1);
    initial_file("appsettings.json", INITIAL);
    initial_file("extra.json", "{\"Extra\": {\"A\": \"1\"}}");
    hk_builder_t *b = scn_builder(handle_signals, body);
    assert_int_equal(hk_builder_add_json_file(b, "extra.json", false, false), 0);
    hk_config_provider_t p = {.name = "generation",
                              .load = gen_load,
                              .watch = gen_watch,
                              .unwatch = gen_unwatch,
                              .destroy = gen_destroy,
                              .data = &G};
    assert_int_equal(hk_config_add_provider(hk_builder_config(b), &p), 0);
    return b;
}

static void body_sighup(void) {
    CHECK_GET("Extra:A", "1");
    CHECK_GET("Gen:N", "1");
    /* Neither change is watched: only SIGHUP can bring them in. */
    CHECK(replace_file("extra.json", "{\"Extra\": {\"A\": \"2\"}}"));
    atomic_store(&G.gen, 2);
    CHECK(pthread_kill(S.host_thread, SIGHUP) == 0);
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Extra:A", "2");
    CHECK_GET("Gen:N", "2");
    CHECK_LOGGED("dbug: hostkit.lifetime[0] Received SIGHUP; reloading the configuration\n");
    CHECK_LOGGED(L_REQ_RELOADED "2 keys changed\n");
    CHECK_NOT_LOGGED("a configuration file changed");
    CHECK(atomic_load(&S.cb_reload) == 0);
}

static void sighup_reloads_every_source_including_unwatched_files_and_providers(void **state) {
    (void)state;
    scn_run(scn_build(sources_builder(true, body_sighup)));
    assert_int_equal(atomic_load(&G.loads), 2);
}

static void body_request(void) {
    CHECK(replace_file("extra.json", "{\"Extra\": {\"A\": \"2\"}}"));
    hk_config_request_reload(cfg()); /* from this (non-host) thread */
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Extra:A", "2");
    CHECK_GET("Gen:N", "1");
    CHECK_LOGGED(L_REQ_RELOADED "1 key changed\n");
    CHECK_NOT_LOGGED("Received SIGHUP");
}

static void request_reload_from_another_thread_reloads(void **state) {
    (void)state;
    scn_run(scn_build(sources_builder(false, body_request)));
}

static void body_requested_before_run(void) {
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Extra:A", "2");
    CHECK_LOGGED(L_REQ_RELOADED "1 key changed\n");
}

static void reload_requested_before_run_happens_once_running(void **state) {
    (void)state;
    hk_host_t *h = scn_build(sources_builder(false, body_requested_before_run));
    char path[PATH_MAX];
    path_of(path, sizeof path, "extra.json");
    assert_true(write_all_to(path, O_TRUNC, "{\"Extra\": {\"A\": \"2\"}}"));
    hk_config_request_reload(hk_host_config(h));
    scn_run(h);
}

static void body_provider_watch(void) {
    CHECK(atomic_load(&G.watches) == 1);
    CHECK(atomic_load(&G.unwatches) == 0);
    hk_config_t *watched = atomic_load(&G.watched);
    CHECK(watched == cfg());
    /* What a provider's own thread does when its data changed. */
    atomic_store(&G.gen, 5);
    hk_config_request_reload(watched);
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Gen:N", "5");
    CHECK_MSG(str_eq(hk_config_source_of(cfg(), "Gen:N"), "generation"), "source %s",
              show(hk_config_source_of(cfg(), "Gen:N")));
}

static void provider_watch_and_unwatch_bracket_the_run_and_its_request_reloads(void **state) {
    (void)state;
    hk_host_t *h = scn_build(sources_builder(false, body_provider_watch));
    assert_int_equal(atomic_load(&G.watches), 0);
    S.host_thread = pthread_self();
    int code = hk_host_run(h);
    assert_int_equal(atomic_load(&G.unwatches), 1);
    assert_int_equal(atomic_load(&G.destroys), 0);
    hk_host_free(h);
    S.host = NULL;
    assert_int_equal(atomic_load(&G.destroys), 1);
    if (scn_failure()) {
        capture_dump(S.cap);
        fail_msg("%s", scn_failure());
    }
    assert_int_equal(code, 0);
}

/* ======================================================================== */
/* refused reloads                                                          */
/* ======================================================================== */

static void body_malformed(void) {
    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 5,}}"));
    CHECK(wait_logged(L_KEEPING, 1));
    const char *failed = L_FAILED "appsettings.json:1:24: string or '}' expected near '}'\n";
    int at = capture_find(S.cap, failed, 0);
    CHECK_MSG(at >= 0, "not logged: %s", failed);
    CHECK(capture_find(S.cap, L_KEEPING, 0) > at);
    CHECK_GET("Reload:Value", "1");
    CHECK_GET("Reload:Name", "one");
    CHECK_OPTS(1, "one");
    CHECK(atomic_load(&S.cb_all) == 0);
    CHECK(hk_config_error_count(cfg()) == 0);
    CHECK_NOT_LOGGED("Configuration reloaded");

    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 6, \"Name\": \"six\"}}"));
    CHECK(wait_count(&S.cb_all, 1));
    CHECK_GET("Reload:Value", "6");
    CHECK_OPTS(6, "six");
    CHECK(capture_count(S.cap, L_KEEPING) == 1);
}

static void malformed_reload_keeps_previous_values_and_a_later_good_write_applies(void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_malformed);
}

static void body_invalid_option(void) {
    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 500, \"Name\": \"big\"},"
                                           " \"Other\": {\"Key\": \"changed\"}}"));
    CHECK(wait_logged(L_KEEPING, 1));
    CHECK_LOGGED(L_FAILED
                 "Reload:Value: \"500\" is out of range [0, 100] (from appsettings.json)\n");
    CHECK_GET("Reload:Value", "1");
    CHECK_GET("Reload:Name", "one");
    CHECK_GET("Other:Key", "same"); /* the valid part of the file is not applied either */
    CHECK_OPTS(1, "one");
    CHECK(atomic_load(&S.cb_all) == 0);
    CHECK_NOT_LOGGED("Configuration reloaded");

    CHECK(replace_file("appsettings.json", "{\"Reload\": {\"Value\": 50, \"Name\": \"fifty\"}}"));
    CHECK(wait_count(&S.cb_reload, 1));
    CHECK_OPTS(50, "fifty");
}

static void reload_failing_options_validation_keeps_previous_values_everywhere(void **state) {
    (void)state;
    initial_file("appsettings.json", INITIAL);
    run_scenario(false, body_invalid_option);
}

/* A second options section whose validator refuses 13 and, while it runs,
 * looks at what readers of the first section see. */
typedef struct guard_opts {
    int64_t value;
} guard_opts_t;

static atomic_long seen_while_refusing = -1;

static int refuse_13(const void *field, char *err, size_t err_len) {
    if (*(const int64_t *)field != 13)
        return 0;
    const ropts_t *o = hk_options_acquire(S.opts);
    atomic_store(&seen_while_refusing, o ? (long)o->value : -2);
    hk_options_release(S.opts, o);
    snprintf(err, err_len, "is unlucky");
    return -EINVAL;
}

static const hk_option_t guard_fields[] = {
    {.name = "Value", .type = HK_OPTION_INT, .offset = offsetof(guard_opts_t, value), .def = "0",
     .validate = refuse_13, .description = "anything but 13"},
};
static const hk_options_def_t guard_def = HK_OPTIONS_DEF("Guard", guard_opts_t, guard_fields);

static void body_two_sections(void) {
    CHECK(replace_file("appsettings.json",
                       "{\"Reload\": {\"Value\": 2}, \"Guard\": {\"Value\": 13}}"));
    CHECK(wait_logged(L_KEEPING, 1));
    CHECK_LOGGED(L_FAILED "Guard:Value: \"13\" is unlucky (from appsettings.json)\n");
    CHECK_OPTS(1, "none");
    long seen = atomic_load(&seen_while_refusing);
    CHECK_MSG(seen == 1,
              "while the reload was being refused, readers of Reload saw Value=%ld (want 1, the "
              "value before the refused reload)",
              seen);
}

static void refused_reload_never_shows_readers_new_values_of_another_section(void **state) {
    (void)state;
    atomic_store(&seen_while_refusing, -1);
    initial_file("appsettings.json", "{\"Reload\": {\"Value\": 1}, \"Guard\": {\"Value\": 0}}");
    hk_builder_t *b = scn_builder(false, body_two_sections);
    hk_options_t *guard = NULL;
    assert_int_equal(hk_builder_add_options(b, &guard_def, &guard), 0);
    scn_run(scn_build(b));
}

static void body_log_levels(void) {
    hk_logger_t *lg = hk_host_logger(S.host, "ReloadTest");
    hk_debug(lg, "probe 1 at Information");
    CHECK(replace_file("appsettings.json",
                       "{\"Logging\": {\"LogLevel\": {\"Default\": \"Verbose\"}},"
                       " \"Reload\": {\"Value\": 2}}"));
    CHECK(wait_logged(L_KEEPING, 1));
    CHECK_LOGGED(L_FAILED "Logging:LogLevel:Default: \"Verbose\" is not one of Trace, Debug, "
                          "Information, Warning, Error, Critical, None (from appsettings.json)\n");
    CHECK_GET("Reload:Value", "1");
    CHECK_GET("Logging:LogLevel:Default", "Information");
    CHECK(atomic_load(&S.cb_all) == 0);
    CHECK(hk_config_error_count(cfg()) == 0); /* recorded in the refused view only */
    hk_debug(lg, "probe 2 after the refused reload");

    CHECK(replace_file("appsettings.json", "{\"Logging\": {\"LogLevel\": {\"Default\": \"Debug\"}},"
                                           " \"Reload\": {\"Value\": 3}}"));
    CHECK(wait_count(&S.cb_reload, 1));
    hk_debug(lg, "probe 3 at Debug");
    CHECK_LOGGED("dbug: ReloadTest[0] probe 3 at Debug\n");
    CHECK_NOT_LOGGED("probe 1");
    CHECK_NOT_LOGGED("probe 2");

    CHECK(replace_file("appsettings.json",
                       "{\"Logging\": {\"LogLevel\": {\"Default\": \"Warning\"}},"
                       " \"Reload\": {\"Value\": 4}}"));
    CHECK(wait_count(&S.cb_reload, 2));
    hk_info(lg, "probe 4 at Warning");
    hk_warn(lg, "probe 5 at Warning");
    CHECK_NOT_LOGGED("probe 4");
    CHECK_LOGGED("warn: ReloadTest[0] probe 5 at Warning\n");
}

static void bad_log_level_is_refused_and_a_good_one_changes_levels_live(void **state) {
    (void)state;
    initial_file("appsettings.json", "{\"Logging\": {\"LogLevel\": {\"Default\": \"Information\"}},"
                                     " \"Reload\": {\"Value\": 1}}");
    run_scenario(false, body_log_levels);
}

/* ======================================================================== */
/* concurrency                                                              */
/* ======================================================================== */

enum { READERS = 4, WRITES = 20 };
static atomic_long reads[READERS];
static size_t reader_ids[READERS];
static atomic_long bad_reads;
static char bad_read[256];

/* "n<i>" for 0 <= i <= WRITES; *ret_i = i. */
static bool written_name(const char *s, long *ret_i) {
    if (!s || s[0] != 'n' || !s[1])
        return false;
    char *end;
    long i = strtol(s + 1, &end, 10);
    if (*end || i < 0 || i > WRITES)
        return false;
    char again[16];
    snprintf(again, sizeof again, "n%ld", i);
    *ret_i = i;
    return strcmp(again, s) == 0;
}

static void note_bad(const char *what, const char *value, long n) {
    if (atomic_fetch_add(&bad_reads, 1) == 0)
        snprintf(bad_read, sizeof bad_read, "%s: %s (%ld)", what, show(value), n);
}

static int reader_execute(hk_service_t *svc, hk_token_t *stopping) {
    size_t me = *(const size_t *)hk_service_data(svc);
    long n = 0;
    hk_config_t *c = hk_host_config(hk_service_host(svc));
    while (!hk_token_is_cancelled(stopping)) {
        long i;
        const char *v = hk_config_get(c, "Reload:Name");
        if (!written_name(v, &i))
            note_bad("hk_config_get", v, -1);
        const ropts_t *o = hk_options_acquire(S.opts);
        if (!o || !written_name(o->name, &i) || i != o->value)
            note_bad("options snapshot", o ? o->name : NULL, o ? (long)o->value : -1);
        hk_options_release(S.opts, o);
        if (++n % 64 == 0)
            sched_yield();
    }
    atomic_store(&reads[me], n);
    return 0;
}

typedef struct want_i {
    int i;
} want_i_t;
static bool reached_write(void *arg) {
    int i = ((want_i_t *)arg)->i;
    char name[16];
    snprintf(name, sizeof name, "n%d", i);
    const ropts_t *o = hk_options_acquire(S.opts);
    bool ok = o && o->value == i;
    hk_options_release(S.opts, o);
    return ok && str_eq(hk_config_get(cfg(), "Reload:Name"), name);
}

static void body_concurrent(void) {
    for (int i = 1; i <= WRITES; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"Reload\": {\"Value\": %d, \"Name\": \"n%d\"}}", i, i);
        CHECK(replace_file("appsettings.json", text));
        want_i_t w = {i};
        CHECK_MSG(wait_until(reached_write, &w, DEADLINE_MS), "write %d never became visible", i);
    }
    CHECK(wait_count(&S.cb_reload, WRITES));
    CHECK(atomic_load(&S.cb_reload) == WRITES);
}

static void concurrent_readers_only_ever_see_complete_written_values(void **state) {
    (void)state;
    atomic_store(&bad_reads, 0);
    bad_read[0] = '\0';
    initial_file("appsettings.json", "{\"Reload\": {\"Value\": 0, \"Name\": \"n0\"}}");
    hk_builder_t *b = scn_builder(false, body_concurrent);
    for (size_t r = 0; r < READERS; r++) {
        char name[16];
        snprintf(name, sizeof name, "reader-%zu", r);
        atomic_store(&reads[r], 0);
        reader_ids[r] = r;
        assert_int_equal(
            hk_builder_add_background(b, name, reader_execute, &reader_ids[r], NULL), 0);
    }
    scn_run(scn_build(b));
    if (atomic_load(&bad_reads))
        fail_msg("%ld bad reads, first: %s", atomic_load(&bad_reads), bad_read);
    for (size_t r = 0; r < READERS; r++)
        assert_true(atomic_load(&reads[r]) > 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(in_place_write_reloads_config_and_options_and_notifies_the_changed_section_only),
        T(write_then_rename_reloads),
        T(a_change_in_another_section_does_not_notify_this_one),
        T(kubernetes_configmap_symlink_swap_reloads),
        T(deleting_an_optional_file_removes_its_keys_and_recreating_it_restores_them),
        T(deleting_a_required_file_keeps_the_previous_configuration),
        T(sighup_reloads_every_source_including_unwatched_files_and_providers),
        T(request_reload_from_another_thread_reloads),
        T(reload_requested_before_run_happens_once_running),
        T(provider_watch_and_unwatch_bracket_the_run_and_its_request_reloads),
        T(malformed_reload_keeps_previous_values_and_a_later_good_write_applies),
        T(reload_failing_options_validation_keeps_previous_values_everywhere),
        T(refused_reload_never_shows_readers_new_values_of_another_section),
        T(bad_log_level_is_refused_and_a_good_one_changes_levels_live),
        T(concurrent_readers_only_ever_see_complete_written_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
