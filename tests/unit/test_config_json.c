/*
 * JSON configuration files and custom providers (src/config/json.c and the
 * file/provider half of src/config/config.c): flattening rules, exact error
 * messages (never half-applied), precedence of all seven sources through the
 * builder and on a bare store, custom providers, and every failing allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static char dir[256]; /* this test's temporary directory (mkdtemp) */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/hk-config-json-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    failalloc_uninstall();
    int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
    return rc;
}

/* <dir>/name into buf. */
static const char *path_in(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* Writes text to <dir>/name (replacing it); returns the path in buf. */
static const char *write_file(char *buf, size_t len, const char *name, const char *text) {
    path_in(buf, len, name);
    FILE *f = fopen(buf, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static hk_config_t *new_config(void) {
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_non_null(c);
    return c;
}

/* A store holding only the given JSON text, loaded from a required file. */
static hk_config_t *load_json(const char *text) {
    char p[PATH_MAX];
    hk_config_t *c = new_config();
    write_file(p, sizeof p, "doc.json", text);
    int rc = hk_config_add_json_file(c, p, false, false);
    if (rc != 0)
        fail_msg("loading %s failed (%d): %s", text, rc, hk_config_last_error(c));
    assert_int_equal(hk_config_error_count(c), 0);
    return c;
}

#define want_value(c, key, want)                                                                 \
    do {                                                                                           \
        const char *got_ = hk_config_get((c), (key));                                              \
        if (!got_ || strcmp(got_, (want)) != 0)                                                    \
            fail_msg("%s: got %s%s%s, want \"%s\"", (key), got_ ? "\"" : "", got_ ? got_ : "NULL", \
                     got_ ? "\"" : "", (want));                                                    \
    } while (0)

#define want_source(c, key, want)                                                                \
    do {                                                                                           \
        const char *got_ = hk_config_source_of((c), (key));                                        \
        if (!got_ || strcmp(got_, (want)) != 0)                                                    \
            fail_msg("source of %s: got %s, want %s", (key), got_ ? got_ : "NULL", (want));        \
    } while (0)

#define want_prefix(text, prefix)                                                                \
    do {                                                                                           \
        const char *t_ = (text);                                                                   \
        if (!t_ || strncmp(t_, (prefix), strlen(prefix)) != 0)                                     \
            fail_msg("\"%s\" does not start with \"%s\"", t_ ? t_ : "NULL", (prefix));             \
    } while (0)

/* ======================================================================== */
/* flattening                                                               */
/* ======================================================================== */

static void nested_objects_flatten_to_colon_separated_keys(void **state) {
    (void)state;
    hk_config_t *c =
        load_json("{\"A\": {\"B\": {\"C\": \"deep\"}, \"D\": \"mid\"}, \"Top\": \"t\"}");
    want_value(c, "A:B:C", "deep");
    want_value(c, "A:D", "mid");
    want_value(c, "Top", "t");
    /* Objects themselves have no value. */
    assert_null(hk_config_get(c, "A"));
    assert_null(hk_config_get(c, "A:B"));
    assert_int_equal(hk_config_count(c), 3);
    hk_config_free(c);
}

static void arrays_flatten_to_numbered_keys_including_arrays_of_objects(void **state) {
    (void)state;
    hk_config_t *c = load_json("{\"Arr\": [\"x\", \"y\", 3],"
                               " \"Hosts\": [{\"Name\": \"a\", \"Port\": 80}, {\"Name\": \"b\"}],"
                               " \"Grid\": [[1, 2], [3]]}");
    want_value(c, "Arr:0", "x");
    want_value(c, "Arr:1", "y");
    want_value(c, "Arr:2", "3");
    want_value(c, "Hosts:0:Name", "a");
    want_value(c, "Hosts:0:Port", "80");
    want_value(c, "Hosts:1:Name", "b");
    want_value(c, "Grid:0:0", "1");
    want_value(c, "Grid:0:1", "2");
    want_value(c, "Grid:1:0", "3");
    assert_null(hk_config_get(c, "Arr"));
    assert_null(hk_config_get(c, "Hosts:1:Port"));
    assert_int_equal(hk_config_count(c), 9);
    hk_config_free(c);
}

static void numbers_keep_their_text_and_reals_their_shortest_round_trip_form(void **state) {
    (void)state;
    hk_config_t *c = load_json("{\"Int\": 42, \"Neg\": -7, \"Zero\": 0, \"Half\": 1.5,"
                               " \"Tenth\": 0.1, \"Third\": 0.3333333333333333, \"Huge\": 1e300,"
                               " \"Min\": -9223372036854775808, \"Max\": 9223372036854775807}");
    want_value(c, "Int", "42");
    want_value(c, "Neg", "-7");
    want_value(c, "Zero", "0");
    want_value(c, "Half", "1.5");
    want_value(c, "Tenth", "0.1"); /* not 0.10000000000000001 */
    want_value(c, "Third", "0.3333333333333333");
    want_value(c, "Min", "-9223372036854775808");
    want_value(c, "Max", "9223372036854775807");
    /* 1e300 comes back in %g form; it must parse back to the same double. */
    want_value(c, "Huge", "1e+300");
    assert_true(strtod(hk_config_get(c, "Huge"), NULL) == 1e300);
    /* The typed getters read them. */
    int64_t i = 0;
    double d = 0;
    assert_int_equal(hk_config_get_int(c, "Neg", 0, -100, 100, &i), 0);
    assert_int_equal(i, -7);
    assert_int_equal(hk_config_get_double(c, "Tenth", 0, 0, 1, &d), 0);
    assert_true(d == 0.1);
    assert_int_equal(hk_config_get_double(c, "Huge", 0, 0, 1e308, &d), 0);
    assert_true(d == 1e300);
    hk_config_free(c);
}

/* config.h: "values keep their text"; json.h: "integers exactly". A uint64
 * value (HK_OPTION_UINT, HK_OPTION_SIZE) above INT64_MAX is valid JSON. */
/* jansson cannot keep a number's text, and values beyond int64 do not fit:
 * such a file is refused with the position (documented: write them as strings). */
static void integers_beyond_int64_are_refused_with_their_position(void **state) {
    (void)state;
    char p[PATH_MAX], want[PATH_MAX + 64];
    hk_config_t *c = new_config();
    write_file(p, sizeof p, "big.json", "{\"Max\": 18446744073709551615, \"Ok\": 1}");
    assert_int_equal(hk_config_add_json_file(c, p, false, false), -EINVAL);
    snprintf(want, sizeof want, "%s:1:28: too big integer near '18446744073709551615'", p);
    assert_string_equal(hk_config_last_error(c), want);
    assert_null(hk_config_get(c, "Ok")); /* nothing of the file applied */
    hk_config_free(c);
    /* the documented way: as a string */
    c = load_json("{\"Max\": \"18446744073709551615\"}");
    want_value(c, "Max", "18446744073709551615");
    hk_config_free(c);
}

static void booleans_become_true_and_false(void **state) {
    (void)state;
    hk_config_t *c = load_json("{\"On\": true, \"Off\": false}");
    want_value(c, "On", "true");
    want_value(c, "Off", "false");
    bool b = false;
    assert_int_equal(hk_config_get_bool(c, "On", false, &b), 0);
    assert_true(b);
    assert_int_equal(hk_config_get_bool(c, "Off", true, &b), 0);
    assert_false(b);
    hk_config_free(c);
}

static void strings_are_unescaped_and_keep_unicode(void **state) {
    (void)state;
    hk_config_t *c = load_json("{\"Esc\": \"q\\\"b\\\\s\\/n\\nt\\tr\\r\","
                               " \"U\": \"caf\\u00e9 \\ud83d\\ude00\","
                               " \"Raw\": \"\xe6\x97\xa5\xe6\x9c\xac\","
                               " \"Empty\": \"\", \"Num\": \"007\"}");
    want_value(c, "Esc", "q\"b\\s/n\nt\tr\r");
    want_value(c, "U", "caf\xc3\xa9 \xf0\x9f\x98\x80");
    want_value(c, "Raw", "\xe6\x97\xa5\xe6\x9c\xac");
    want_value(c, "Empty", "");
    want_value(c, "Num", "007"); /* a string stays a string */
    /* Keys may be escaped too. */
    hk_config_free(c);
    c = load_json("{\"K\\u00e9y\": {\"A\\\"B\": 1}}");
    want_value(c, "K\xc3\xa9y:A\"B", "1");
    hk_config_free(c);
}

static void null_is_present_but_empty_and_typed_getters_give_the_default(void **state) {
    (void)state;
    char p[PATH_MAX];
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_default(c, "N", "5"), 0);
    write_file(p, sizeof p, "null.json", "{\"N\": null, \"S\": {\"Inner\": null}}");
    assert_int_equal(hk_config_add_json_file(c, p, false, false), 0);
    /* null replaces the lower-precedence default with an empty value. */
    want_value(c, "N", "");
    want_source(c, "N", p);
    want_value(c, "S:Inner", "");
    int64_t i = 0;
    assert_int_equal(hk_config_get_int(c, "N", 9, 0, 10, &i), 0);
    assert_int_equal(i, 9);
    bool b = false;
    assert_int_equal(hk_config_get_bool(c, "S:Inner", true, &b), 0);
    assert_true(b);
    double d = 0;
    assert_int_equal(hk_config_get_double(c, "N", 2.5, 0, 10, &d), 0);
    assert_true(d == 2.5);
    assert_string_equal(hk_config_get_string(c, "N", "def"), "def");
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void empty_objects_and_arrays_add_no_keys(void **state) {
    (void)state;
    hk_config_t *c =
        load_json("{\"E\": {}, \"A\": [], \"Deep\": {\"X\": {}, \"Y\": [[], {}]}, \"K\": 1}");
    assert_int_equal(hk_config_count(c), 1);
    want_value(c, "K", "1");
    assert_null(hk_config_get(c, "E"));
    assert_null(hk_config_get(c, "A"));
    assert_null(hk_config_get(c, "Deep:X"));
    assert_null(hk_config_get(c, "Deep:Y:0"));
    hk_config_free(c);

    c = load_json("{}");
    assert_int_equal(hk_config_count(c), 0);
    hk_config_free(c);
}

static void json_keys_are_case_insensitive_on_lookup(void **state) {
    (void)state;
    char p[PATH_MAX];
    hk_config_t *c = load_json("{\"Worker\": {\"Count\": 3, \"Hosts\": [\"h\"]}}");
    want_value(c, "worker:count", "3");
    want_value(c, "WORKER:COUNT", "3");
    want_value(c, "wOrKeR:hOsTs:0", "h");
    /* The file's spelling is kept for listings. */
    assert_string_equal(hk_config_key_at(c, 0), "Worker:Count");
    /* A command-line value in another spelling wins over the file. */
    assert_int_equal(hk_config_add_args(c, 2, (char *const[]){"prog", "--WORKER:COUNT=7"}), 0);
    want_value(c, "Worker:Count", "7");
    hk_config_free(c);

    /* And a file overrides a default set in another spelling. */
    c = new_config();
    assert_int_equal(hk_config_set_default(c, "worker:count", "1"), 0);
    write_file(p, sizeof p, "w.json", "{\"Worker\": {\"Count\": 3}}");
    assert_int_equal(hk_config_add_json_file(c, p, false, false), 0);
    want_value(c, "Worker:Count", "3");
    assert_int_equal(hk_config_count(c), 1);
    hk_config_free(c);
}

/*
 * Keys are case-insensitive, so "Count" and "count" in one object, or "A:B"
 * next to {"A": {"B": ...}}, name the same key twice: a duplicate, rejected
 * like an exact duplicate (as .NET's JSON provider does), not a silent
 * last-one-wins.
 */
static void keys_that_flatten_to_the_same_name_are_duplicates(void **state) {
    (void)state;
    static const char *const docs[] = {
        "{\"Worker\": {\"Count\": 1, \"count\": 2}}",
        "{\"A:B\": 1, \"A\": {\"B\": 2}}",
    };
    for (size_t i = 0; i < LEN(docs); i++) {
        char p[PATH_MAX], prefix[PATH_MAX + 2];
        hk_config_t *c = new_config();
        write_file(p, sizeof p, "dup.json", docs[i]);
        int rc = hk_config_add_json_file(c, p, false, false);
        if (rc != -EINVAL) {
            char got[128];
            snprintf(got, sizeof got, "Worker:Count=%s A:B=%s", hk_config_get(c, "Worker:Count"),
                     hk_config_get(c, "A:B"));
            hk_config_free(c);
            fail_msg("%s: accepted (rc %d); %s", docs[i], rc, got);
        }
        assert_int_equal(hk_config_error_count(c), 1);
        snprintf(prefix, sizeof prefix, "%s:", p);
        want_prefix(hk_config_error(c, 0), prefix);
        assert_non_null(strstr(hk_config_error(c, 0), "duplicate"));
        assert_int_equal(hk_config_count(c), 0);
        hk_config_free(c);
    }
}

/* ======================================================================== */
/* errors                                                                   */
/* ======================================================================== */

/*
 * Loads text from <dir>/name into a store that already holds Keep=old
 * (default) and expects a recorded error equal to "<path><suffix>" (or
 * starting with it when prefix_only). Nothing of the file may be applied.
 */
static void expect_file_error(const char *name, const char *text, bool optional, const char *suffix,
                              bool prefix_only) {
    char p[PATH_MAX], want[PATH_MAX + 256];
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_default(c, "Keep", "old"), 0);
    if (text)
        write_file(p, sizeof p, name, text);
    else
        path_in(p, sizeof p, name);
    assert_int_equal(hk_config_add_json_file(c, p, optional, false), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 1);
    snprintf(want, sizeof want, "%s%s", p, suffix);
    const char *got = hk_config_error(c, 0);
    assert_non_null(got);
    if (prefix_only)
        want_prefix(got, want);
    else
        assert_string_equal(got, want);
    assert_string_equal(hk_config_last_error(c), got);
    /* Never half-applied: only the default is there. */
    assert_int_equal(hk_config_count(c), 1);
    want_value(c, "Keep", "old");
    want_source(c, "Keep", "default");
    hk_config_free(c);
}

static void malformed_json_names_file_line_and_column(void **state) {
    (void)state;
    /* A missing comma: the error points at the token that should have been ',' or '}'. */
    expect_file_error("comma.json", "{\n  \"Keep\": \"new\",\n  \"a\": 1\n  \"b\": 2\n}\n", false,
                      ":4:5: '}' expected near '\"b\"'", false);
    expect_file_error("trailing.json", "{\n  \"Keep\": \"new\",\n  \"a\": 1,\n}\n", false,
                      ":4:1: string or '}' expected near '}'", false);
    expect_file_error("unterminated.json", "{\"Keep\": \"new\", \"a\": \"abc", false,
                      ":1:25: premature end of input near '\"abc'", false);
    expect_file_error("unterminated-line.json", "{\n  \"a\": \"abc\n}\n", false,
                      ":2:11: unexpected newline near '\"abc'", false);
    expect_file_error("garbage.json", "{\"Keep\": \"new\"} x", false,
                      ":1:17: end of file expected near 'x'", false);
}

static void comments_are_rejected_as_strict_json(void **state) {
    (void)state;
    expect_file_error("line-comment.json", "{\n  // a note\n  \"Keep\": \"new\"\n}\n", false,
                      ":2:3: string or '}' expected near '/'", false);
    expect_file_error("block-comment.json", "{\n  \"Keep\": \"new\" /* a note */\n}\n", false,
                      ":2:17: '}' expected near '/'", false);
}

static void duplicate_keys_are_rejected(void **state) {
    (void)state;
    expect_file_error("dup.json", "{\n  \"Keep\": \"new\",\n  \"Keep\": \"newer\"\n}\n", false,
                      ":3:8: duplicate object key near '\"Keep\"'", false);
    expect_file_error("dup-nested.json", "{\"S\": {\"k\": 1, \"k\": 2}, \"Keep\": \"new\"}", false,
                      ":1:18: duplicate object key near '\"k\"'", false);
}

static void top_level_must_be_an_object(void **state) {
    (void)state;
    expect_file_error("array.json", "[{\"Keep\": \"new\"}]", false,
                      ":1:1: the top level must be a JSON object", false);
    expect_file_error("string.json", "\"Keep\"", false, ":1:", true);
    expect_file_error("number.json", "42", false, ":1:", true);
}

static void empty_file_is_malformed_even_when_optional(void **state) {
    (void)state;
    expect_file_error("empty.json", "", false, ":1:0: '[' or '{' expected near end of file", false);
    expect_file_error("empty-optional.json", "", true, ":1:0: '[' or '{' expected near end of file",
                      false);
    expect_file_error("blank.json", "  \n ", false, ":2:1: '[' or '{' expected near end of file",
                      false);
}

static void missing_required_file_is_an_error(void **state) {
    (void)state;
    expect_file_error("nowhere.json", NULL, false, ": file not found (required)", false);
}

static void missing_optional_file_adds_nothing_and_no_error(void **state) {
    (void)state;
    char p[PATH_MAX];
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_default(c, "Keep", "old"), 0);
    path_in(p, sizeof p, "nowhere.json");
    assert_int_equal(hk_config_add_json_file(c, p, true, true), 0);
    assert_int_equal(hk_config_error_count(c), 0);
    assert_null(hk_config_last_error(c));
    assert_int_equal(hk_config_count(c), 1);
    want_value(c, "Keep", "old");
    hk_config_free(c);
}

static void directory_instead_of_file_cannot_be_read(void **state) {
    (void)state;
    char p[PATH_MAX];
    assert_int_equal(mkdir(path_in(p, sizeof p, "adir.json"), 0700), 0);
    /* Optional only excuses a missing file, not an unreadable one. */
    expect_file_error("adir.json", NULL, false, ": cannot read", true);
    expect_file_error("adir.json", NULL, true, ": cannot read", true);
}

static void empty_property_name_is_an_error_naming_its_parent(void **state) {
    (void)state;
    expect_file_error("e1.json", "{\"Keep\": \"new\", \"\": 1}", false,
                      ": empty property name under \"(top level)\"", false);
    expect_file_error("e2.json",
                      "{\"Keep\": \"new\", \"A\": {\"B\": [{\"ok\": 1}, {\"\": 2}]}}", false,
                      ": empty property name under \"A:B:1\"", false);
}

static void a_later_key_failing_applies_none_of_the_earlier_ones(void **state) {
    (void)state;
    /* The good keys come first in the file; the error is found after them. */
    expect_file_error("late.json", "{\"Keep\": \"new\", \"A\": 1, \"B\": {\"\": 2}}", false,
                      ": empty property name under \"B\"", false);
    expect_file_error("late2.json", "{\"Keep\": \"new\", \"A\": 1, \"B\": [1, 2,]}", false, ":1:",
                      true);
}

static void each_bad_file_is_recorded_and_good_files_still_load(void **state) {
    (void)state;
    char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
    hk_config_t *c = new_config();
    write_file(p1, sizeof p1, "bad1.json", "{\"A\": 1,}");
    write_file(p2, sizeof p2, "good.json", "{\"B\": 2}");
    write_file(p3, sizeof p3, "bad2.json", "[]");
    assert_int_equal(hk_config_add_json_file(c, p1, false, false), -EINVAL);
    assert_int_equal(hk_config_add_json_file(c, p2, false, false), 0);
    assert_int_equal(hk_config_add_json_file(c, p3, true, false), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 2);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:1:9:", p1);
    want_prefix(hk_config_error(c, 0), want);
    snprintf(want, sizeof want, "%s:1:1: the top level must be a JSON object", p3);
    assert_string_equal(hk_config_error(c, 1), want);
    assert_null(hk_config_get(c, "A"));
    want_value(c, "B", "2");
    assert_int_equal(hk_config_count(c), 1);
    hk_config_free(c);
}

static void add_json_file_rejects_bad_arguments_without_recording(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_json_file(NULL, "x.json", true, false), -EINVAL);
    assert_int_equal(hk_config_add_json_file(c, NULL, true, false), -EINVAL);
    assert_int_equal(hk_config_add_json_file(c, "", true, false), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 0);
    assert_int_equal(hk_config_count(c), 0);
    hk_config_free(c);
}

/* ======================================================================== */
/* precedence                                                               */
/* ======================================================================== */

/*
 * The seven sources of one key, lowest first. The files are appsettings.json
 * and appsettings.Staging.json; the environment variables use a name unique
 * to this process so the ambient environment cannot interfere.
 */
enum {
    P_DEFAULT,
    P_HOST_ENV,
    P_APPSETTINGS,
    P_APPSETTINGS_ENV,
    P_ENV,
    P_COMMAND_LINE,
    P_OVERRIDE,
    NP
};
static const char *const p_value[NP] = {"default", "hostenv", "file", "envfile",
                                        "env",     "cmdline", "override"};
static char p_section[32];          /* "Cj<pid>" */
static char p_key[64];              /* "Cj<pid>:Value" */
static char p_host_var[96], p_var[96]; /* HOSTKIT_Cj<pid>__Value, Cj<pid>__Value */

static void precedence_names(void) {
    snprintf(p_section, sizeof p_section, "Cj%ld", (long)getpid());
    snprintf(p_key, sizeof p_key, "%s:Value", p_section);
    snprintf(p_host_var, sizeof p_host_var, "HOSTKIT_%s__Value", p_section);
    snprintf(p_var, sizeof p_var, "%s__Value", p_section);
}

static void expected_origin(int s, char *buf, size_t len) {
    switch (s) {
    case P_DEFAULT: snprintf(buf, len, "default"); break;
    case P_HOST_ENV: snprintf(buf, len, "environment variable %s", p_host_var); break;
    case P_APPSETTINGS: snprintf(buf, len, "appsettings.json"); break;
    case P_APPSETTINGS_ENV: snprintf(buf, len, "appsettings.Staging.json"); break;
    case P_ENV: snprintf(buf, len, "environment variable %s", p_var); break;
    case P_COMMAND_LINE: snprintf(buf, len, "command line"); break;
    default: snprintf(buf, len, "override"); break;
    }
}

static void write_source_file(int s) {
    char p[PATH_MAX], text[256];
    snprintf(text, sizeof text, "{\"%s\": {\"Value\": \"%s\"}, \"Other%d\": 1}", p_section,
             p_value[s], s);
    const char *name = s == P_APPSETTINGS ? "appsettings.json" : "appsettings.Staging.json";
    write_file(p, sizeof p, name, text);
}

static void remove_source_files(void) {
    char p[PATH_MAX];
    (void)unlink(path_in(p, sizeof p, "appsettings.json"));
    (void)unlink(path_in(p, sizeof p, "appsettings.Staging.json"));
}

static void expect_winner(hk_config_t *c, int s) {
    char origin[160];
    expected_origin(s, origin, sizeof origin);
    want_value(c, p_key, p_value[s]);
    want_source(c, p_key, origin);
}

/* Through the builder: sources in `set` (bit per source) supply the key. */
static void builder_with_sources(unsigned set) {
    remove_source_files();
    if (set & (1u << P_APPSETTINGS))
        write_source_file(P_APPSETTINGS);
    if (set & (1u << P_APPSETTINGS_ENV))
        write_source_file(P_APPSETTINGS_ENV);
    if (set & (1u << P_HOST_ENV))
        assert_int_equal(setenv(p_host_var, p_value[P_HOST_ENV], 1), 0);
    if (set & (1u << P_ENV))
        assert_int_equal(setenv(p_var, p_value[P_ENV], 1), 0);
    char cmd[128], a0[] = "prog", a1[] = "--contentRoot", a3[] = "--environment", a4[] = "Staging";
    snprintf(cmd, sizeof cmd, "--%s=%s", p_key, p_value[P_COMMAND_LINE]);
    char *argv[] = {a0, a1, dir, a3, a4, cmd, NULL};
    int argc = (set & (1u << P_COMMAND_LINE)) ? 6 : 5;
    hk_builder_t *b = hk_builder_new(argc, argv);
    (void)unsetenv(p_host_var);
    (void)unsetenv(p_var);
    assert_non_null(b);
    hk_config_t *c = hk_builder_config(b);
    /* Defaults and overrides come after the builder loaded everything else. */
    if (set & (1u << P_OVERRIDE))
        assert_int_equal(hk_config_set(c, p_key, p_value[P_OVERRIDE]), 0);
    if (set & (1u << P_DEFAULT))
        assert_int_equal(hk_config_set_default(c, p_key, p_value[P_DEFAULT]), 0);
    int best = -1;
    for (int s = 0; s < NP; s++)
        if (set & (1u << s))
            best = s;
    if (best < 0)
        assert_null(hk_config_get(c, p_key));
    else
        expect_winner(c, best);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_builder_free(b);
    remove_source_files();
}

static void builder_ranks_all_seven_sources_for_every_pair(void **state) {
    (void)state;
    precedence_names();
    for (int lo = 0; lo < NP; lo++)
        for (int hi = lo + 1; hi < NP; hi++)
            builder_with_sources((1u << lo) | (1u << hi));
    /* All of them, then each time without the current winner. */
    unsigned all = (1u << NP) - 1;
    for (int top = NP - 1; top >= -1; top--)
        builder_with_sources(all & ((1u << (top + 1)) - 1));
}

static void builder_reads_appsettings_from_the_content_root_only(void **state) {
    (void)state;
    precedence_names();
    /* The environment file of another environment is not read. */
    char p[PATH_MAX], text[128];
    snprintf(text, sizeof text, "{\"%s\": {\"Value\": \"dev\"}}", p_section);
    write_file(p, sizeof p, "appsettings.Development.json", text);
    char a0[] = "prog", a1[] = "--contentRoot", a3[] = "--environment", a4[] = "Staging";
    char *argv[] = {a0, a1, dir, a3, a4, NULL};
    hk_builder_t *b = hk_builder_new(5, argv);
    assert_non_null(b);
    assert_null(hk_config_get(hk_builder_config(b), p_key));
    hk_builder_free(b);
    /* With --environment Development it is. */
    char dev[] = "Development";
    argv[4] = dev;
    b = hk_builder_new(5, argv);
    assert_non_null(b);
    want_value(hk_builder_config(b), p_key, "dev");
    want_source(hk_builder_config(b), p_key, "appsettings.Development.json");
    hk_builder_free(b);
}

/* On a bare store, in the working directory so the files are named as given. */
static void store_apply(hk_config_t *c, int s) {
    char arg[128], env[160];
    int rc = -1;
    switch (s) {
    case P_DEFAULT: rc = hk_config_set_default(c, p_key, p_value[s]); break;
    case P_HOST_ENV:
        snprintf(env, sizeof env, "%s=%s", p_host_var, p_value[s]);
        rc = hk_config_add_env(c, (char *const[]){env, NULL});
        break;
    case P_APPSETTINGS: rc = hk_config_add_json_file(c, "appsettings.json", false, false); break;
    case P_APPSETTINGS_ENV:
        rc = hk_config_add_json_file(c, "appsettings.Staging.json", false, false);
        break;
    case P_ENV:
        snprintf(env, sizeof env, "%s=%s", p_var, p_value[s]);
        rc = hk_config_add_env(c, (char *const[]){env, NULL});
        break;
    case P_COMMAND_LINE:
        snprintf(arg, sizeof arg, "--%s=%s", p_key, p_value[s]);
        rc = hk_config_add_args(c, 2, (char *const[]){"prog", arg});
        break;
    default: rc = hk_config_set(c, p_key, p_value[s]); break;
    }
    assert_int_equal(rc, 0);
}

static int cwd_fd = -1;

static void enter_dir(void) {
    precedence_names();
    cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(cwd_fd >= 0);
    assert_int_equal(chdir(dir), 0);
    write_source_file(P_APPSETTINGS);
    write_source_file(P_APPSETTINGS_ENV);
}

static void leave_dir(void) {
    assert_int_equal(fchdir(cwd_fd), 0);
    close(cwd_fd);
    cwd_fd = -1;
}

static void store_check_sequence(const int *seq, int n) {
    hk_config_t *c = new_config();
    int best = -1;
    for (int i = 0; i < n; i++) {
        store_apply(c, seq[i]);
        if (seq[i] > best)
            best = seq[i];
    }
    expect_winner(c, best);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void store_ranks_every_pair_of_sources_in_either_order(void **state) {
    (void)state;
    enter_dir();
    for (int lo = 0; lo < NP; lo++) {
        for (int hi = lo + 1; hi < NP; hi++) {
            store_check_sequence((int[]){lo, hi}, 2);
            store_check_sequence((int[]){hi, lo}, 2);
        }
    }
    leave_dir();
}

static bool next_permutation(int *a, int n) {
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (a[j] <= a[i])
        j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

static void store_ranks_all_seven_sources_in_any_order(void **state) {
    (void)state;
    enter_dir();
    int seq[NP];
    for (int i = 0; i < NP; i++)
        seq[i] = i;
    int n = 0;
    do {
        store_check_sequence(seq, NP);
        /* The same order without the top source: the next one wins. */
        int rest[NP], k = 0;
        for (int i = 0; i < NP; i++)
            if (seq[i] != P_OVERRIDE)
                rest[k++] = seq[i];
        store_check_sequence(rest, k);
        n++;
    } while (next_permutation(seq, NP));
    assert_int_equal(n, 5040);
    leave_dir();
}

static void files_rank_in_the_order_added(void **state) {
    (void)state;
    char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
    write_file(p1, sizeof p1, "one.json", "{\"A\": \"one\", \"B\": \"one\", \"C\": \"one\"}");
    write_file(p2, sizeof p2, "two.json", "{\"B\": \"two\", \"C\": \"two\"}");
    write_file(p3, sizeof p3, "three.json", "{\"C\": \"three\"}");
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_json_file(c, p1, false, false), 0);
    assert_int_equal(hk_config_add_json_file(c, p2, false, false), 0);
    assert_int_equal(hk_config_add_json_file(c, p3, false, false), 0);
    want_value(c, "A", "one");
    want_value(c, "B", "two");
    want_value(c, "C", "three");
    want_source(c, "A", p1);
    want_source(c, "B", p2);
    want_source(c, "C", p3);
    hk_config_free(c);
}

/* ======================================================================== */
/* custom providers                                                         */
/* ======================================================================== */

typedef struct prov {
    const char *const *kv; /* key, value, key, value, ..., NULL */
    int fail_rc;           /* load returns this after sinking kv (0: success) */
    const char *fail_msg;  /* copied into err when failing */
    int loads, destroys;
    int sink_rc[5];        /* results of hk_config_sink_set with bad arguments */
    bool probe_sink;
} prov_t;

static int prov_load(void *data, hk_config_sink_t *sink, char *err, size_t err_len) {
    prov_t *p = data;
    p->loads++;
    if (p->probe_sink) {
        p->sink_rc[0] = hk_config_sink_set(sink, NULL, "v");
        p->sink_rc[1] = hk_config_sink_set(sink, "", "v");
        p->sink_rc[2] = hk_config_sink_set(sink, "k", NULL);
        p->sink_rc[3] = hk_config_sink_set(NULL, "k", "v");
        p->sink_rc[4] = hk_config_sink_set(sink, "Probe:Empty", ""); /* allowed */
    }
    for (size_t i = 0; p->kv && p->kv[i]; i += 2) {
        int rc = hk_config_sink_set(sink, p->kv[i], p->kv[i + 1]);
        if (rc < 0)
            return rc;
    }
    if (p->fail_rc < 0 && p->fail_msg)
        snprintf(err, err_len, "%s", p->fail_msg);
    return p->fail_rc;
}

static void prov_destroy(void *data) { ((prov_t *)data)->destroys++; }

static hk_config_provider_t provider(const char *name, prov_t *p) {
    return (hk_config_provider_t){
        .name = name, .load = prov_load, .destroy = prov_destroy, .data = p};
}

static void provider_keys_rank_with_files_in_the_order_added(void **state) {
    (void)state;
    char p1[PATH_MAX], p2[PATH_MAX];
    write_file(p1, sizeof p1, "one.json", "{\"A\": \"one\", \"B\": \"one\", \"C\": \"one\"}");
    write_file(p2, sizeof p2, "two.json", "{\"B\": \"two\"}");
    prov_t pd = {.kv = (const char *const[]){"A", "prov", "B", "prov", "P:Only", "p", NULL}};
    hk_config_provider_t pv = provider("vault", &pd);
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_json_file(c, p1, false, false), 0);
    assert_int_equal(hk_config_add_provider(c, &pv), 0);
    assert_int_equal(hk_config_add_json_file(c, p2, false, false), 0);
    assert_int_equal(pd.loads, 1);
    want_value(c, "A", "prov");
    want_source(c, "A", "vault");
    want_value(c, "B", "two");
    want_value(c, "C", "one");
    want_value(c, "p:only", "p");
    assert_int_equal(pd.destroys, 0);
    hk_config_free(c);
    assert_int_equal(pd.destroys, 1);
}

/* Against the built-in sources, in either order: above defaults and HOSTKIT_
 * variables, below environment variables, the command line and overrides. */
static void provider_ranks_between_hostkit_variables_and_environment_variables(void **state) {
    (void)state;
    precedence_names();
    const char *kv[] = {p_key, "prov", NULL};
    static const int others[] = {P_DEFAULT, P_HOST_ENV, P_ENV, P_COMMAND_LINE, P_OVERRIDE};
    for (size_t i = 0; i < LEN(others); i++) {
        for (int order = 0; order < 2; order++) {
            prov_t pd = {.kv = kv};
            hk_config_provider_t pv = provider("vault", &pd);
            hk_config_t *c = new_config();
            if (order == 0)
                store_apply(c, others[i]);
            assert_int_equal(hk_config_add_provider(c, &pv), 0);
            if (order == 1)
                store_apply(c, others[i]);
            if (others[i] < P_APPSETTINGS) {
                want_value(c, p_key, "prov");
                want_source(c, p_key, "vault");
            } else {
                expect_winner(c, others[i]);
            }
            hk_config_free(c);
            assert_int_equal(pd.destroys, 1);
        }
    }
}

static void provider_added_to_a_builder_wins_over_its_appsettings_files(void **state) {
    (void)state;
    precedence_names();
    write_source_file(P_APPSETTINGS);
    write_source_file(P_APPSETTINGS_ENV);
    const char *kv[] = {p_key, "prov", NULL};
    prov_t pd = {.kv = kv};
    hk_config_provider_t pv = provider("vault", &pd);
    char a0[] = "prog", a1[] = "--contentRoot", a3[] = "--environment", a4[] = "Staging";
    char *argv[] = {a0, a1, dir, a3, a4, NULL};
    hk_builder_t *b = hk_builder_new(5, argv);
    assert_non_null(b);
    want_value(hk_builder_config(b), p_key, "envfile");
    assert_int_equal(hk_config_add_provider(hk_builder_config(b), &pv), 0);
    want_value(hk_builder_config(b), p_key, "prov");
    want_source(hk_builder_config(b), p_key, "vault");
    hk_builder_free(b);
    assert_int_equal(pd.destroys, 1);
    remove_source_files();
}

static void failing_provider_load_is_recorded_and_applies_nothing(void **state) {
    (void)state;
    /* Keys sunk before the failure are dropped too. */
    prov_t pd = {.kv = (const char *const[]){"Keep", "new", "A", "1", NULL},
                 .fail_rc = -EACCES,
                 .fail_msg = "token expired"};
    hk_config_provider_t pv = provider("vault", &pd);
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_default(c, "Keep", "old"), 0);
    assert_int_equal(hk_config_add_provider(c, &pv), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 1);
    assert_string_equal(hk_config_error(c, 0), "vault: token expired");
    want_value(c, "Keep", "old");
    assert_null(hk_config_get(c, "A"));
    assert_int_equal(hk_config_count(c), 1);
    /* The store owns the data from the add on, failure or not. */
    hk_config_free(c);
    assert_int_equal(pd.destroys, 1);

    /* Without a message, the errno's text stands in. */
    prov_t pd2 = {.fail_rc = -ECONNREFUSED};
    hk_config_provider_t pv2 = provider("remote", &pd2);
    c = new_config();
    assert_int_equal(hk_config_add_provider(c, &pv2), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 1);
    char want[256];
    snprintf(want, sizeof want, "remote: %s", hk_strerror(-ECONNREFUSED));
    assert_string_equal(hk_config_error(c, 0), want);
    hk_config_free(c);
    assert_int_equal(pd2.destroys, 1);
}

static void sink_set_rejects_null_or_empty_key_and_null_value(void **state) {
    (void)state;
    prov_t pd = {.kv = (const char *const[]){"K", "v", NULL}, .probe_sink = true};
    hk_config_provider_t pv = provider("probe", &pd);
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_provider(c, &pv), 0);
    assert_int_equal(pd.sink_rc[0], -EINVAL);
    assert_int_equal(pd.sink_rc[1], -EINVAL);
    assert_int_equal(pd.sink_rc[2], -EINVAL);
    assert_int_equal(pd.sink_rc[3], -EINVAL);
    assert_int_equal(pd.sink_rc[4], 0);
    want_value(c, "K", "v");
    want_value(c, "Probe:Empty", "");
    assert_int_equal(hk_config_count(c), 2);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void add_provider_rejects_bad_definitions_and_keeps_no_data(void **state) {
    (void)state;
    prov_t pd = {0};
    hk_config_t *c = new_config();
    hk_config_provider_t pv = provider("p", &pd);
    assert_int_equal(hk_config_add_provider(NULL, &pv), -EINVAL);
    assert_int_equal(hk_config_add_provider(c, NULL), -EINVAL);
    pv.load = NULL;
    assert_int_equal(hk_config_add_provider(c, &pv), -EINVAL);
    pv = provider(NULL, &pd);
    assert_int_equal(hk_config_add_provider(c, &pv), -EINVAL);
    pv = provider("", &pd);
    assert_int_equal(hk_config_add_provider(c, &pv), -EINVAL);
    assert_int_equal(pd.loads, 0);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
    assert_int_equal(pd.destroys, 0); /* never owned */
}

static void provider_name_is_copied(void **state) {
    (void)state;
    char name[] = "vault";
    prov_t pd = {.kv = (const char *const[]){"A", "1", NULL}};
    hk_config_provider_t pv = provider(name, &pd);
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_provider(c, &pv), 0);
    memcpy(name, "XXXXX", 5);
    want_source(c, "A", "vault");
    hk_config_free(c);
}

/* ======================================================================== */
/* out of memory                                                            */
/* ======================================================================== */

/* 32 defaults fill the first entries array, so the file's new keys grow it;
 * Key31 is also overridden, so the file must not win for it. */
static void prepare_store(hk_config_t *c) {
    for (int i = 0; i < 32; i++) {
        char key[16], value[16];
        snprintf(key, sizeof key, "Key%d", i);
        snprintf(value, sizeof value, "old%d", i);
        assert_int_equal(hk_config_set_default(c, key, value), 0);
    }
    assert_int_equal(hk_config_set(c, "Key31", "override"), 0);
}

/* NULL when Key0..Key31 hold what they should, else which one does not. */
static const char *changed_key(hk_config_t *c, bool file_applied, const char *file, char *buf,
                               size_t len) {
    for (int i = 0; i < 32; i++) {
        char key[16], value[16];
        const char *origin = "default";
        snprintf(key, sizeof key, "Key%d", i);
        if (i == 31) {
            snprintf(value, sizeof value, "override");
            origin = "override";
        } else if (file_applied && i < 4) {
            snprintf(value, sizeof value, "file%d", i);
            origin = file;
        } else {
            snprintf(value, sizeof value, "old%d", i);
        }
        const char *v = hk_config_get(c, key), *o = hk_config_source_of(c, key);
        if (!v || !o || strcmp(v, value) || strcmp(o, origin)) {
            snprintf(buf, len, "%s=%s (%s), want %s (%s)", key, v ? v : "NULL", o ? o : "NULL",
                     value, origin);
            return buf;
        }
    }
    return NULL;
}

static const char good_doc[] =
    "{\"Key0\": \"file0\", \"Key1\": \"file1\", \"Key2\": \"file2\", \"Key3\": \"file3\","
    " \"Key31\": \"file31\", \"New\": {\"A\": \"a\", \"List\": [1, 2, {\"Deep\": true}]},"
    " \"Long\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";

/*
 * Runs hk_config_add_json_file on `path` with allocation N failing (once, or
 * N and every later one), N = 1, 2, ... until the call no longer reaches N.
 * Every run must return want_rc or -ENOMEM, keep the old values on failure,
 * and leak nothing (alloc_live back to where it was before the store).
 */
static void add_file_under_oom(const char *path, int want_rc) {
    failalloc_install();
    for (int persistent = 0; persistent < 2; persistent++) {
        long n;
        for (n = 1; n < 100000; n++) {
            long base = alloc_live();
            hk_config_t *c = new_config();
            prepare_store(c);
            failalloc_set(n, persistent);
            int rc = hk_config_add_json_file(c, path, false, true);
            long used = failalloc_count();
            failalloc_set(0, false);
            const char *how = persistent ? "persistent" : "once";
            char what[256] = "";
            if (rc != want_rc && rc != -ENOMEM)
                fail_msg("allocation %ld failing (%s): rc %d", n, how, rc);
            if (rc == 0) {
                if (changed_key(c, true, path, what, sizeof what))
                    fail_msg("allocation %ld failing (%s): rc 0 but %s", n, how, what);
                want_value(c, "New:List:2:Deep", "true");
                assert_int_equal(hk_config_count(c), 32 + 5);
            } else {
                size_t count = hk_config_count(c);
                if (changed_key(c, false, path, what, sizeof what) || count != 32) {
                    hk_config_free(c); /* so that the sanitizers report only this */
                    failalloc_uninstall();
                    fail_msg("allocation %ld failing (%s): rc %d but %s, %zu keys (32 before): "
                             "the file was half applied",
                             n, how, rc, what[0] ? what : "old values intact", count);
                }
                if (rc == -EINVAL) {
                    assert_int_equal(hk_config_error_count(c), 1);
                } else {
                    assert_int_equal(hk_config_error_count(c), 0);
                }
            }
            /* The store still works once memory is back. */
            assert_int_equal(hk_config_set(c, "After", "x"), 0);
            want_value(c, "After", "x");
            hk_config_free(c);
            if (alloc_live() != base)
                fail_msg("allocation %ld failing (%s): %ld allocations leaked", n, how,
                         alloc_live() - base);
            if (used < n) {
                assert_int_equal(rc, want_rc);
                break;
            }
        }
        assert_true(n > 1 && n < 100000);
    }
    failalloc_uninstall();
}

static void add_json_file_fails_cleanly_at_every_allocation(void **state) {
    (void)state;
    char p[PATH_MAX];
    write_file(p, sizeof p, "oom.json", good_doc);
    add_file_under_oom(p, 0);
}

static void add_malformed_json_file_fails_cleanly_at_every_allocation(void **state) {
    (void)state;
    char p[PATH_MAX];
    write_file(p, sizeof p, "oom-bad.json", "{\"Key0\": \"file0\", \"New\": {\"A\": 1, \"\": 2}}");
    add_file_under_oom(p, -EINVAL);
    write_file(p, sizeof p, "oom-bad2.json", "{\"Key0\": \"file0\",}");
    add_file_under_oom(p, -EINVAL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(nested_objects_flatten_to_colon_separated_keys),
        T(arrays_flatten_to_numbered_keys_including_arrays_of_objects),
        T(numbers_keep_their_text_and_reals_their_shortest_round_trip_form),
        T(integers_beyond_int64_are_refused_with_their_position),
        T(booleans_become_true_and_false),
        T(strings_are_unescaped_and_keep_unicode),
        T(null_is_present_but_empty_and_typed_getters_give_the_default),
        T(empty_objects_and_arrays_add_no_keys),
        T(json_keys_are_case_insensitive_on_lookup),
        T(keys_that_flatten_to_the_same_name_are_duplicates),
        T(malformed_json_names_file_line_and_column),
        T(comments_are_rejected_as_strict_json),
        T(duplicate_keys_are_rejected),
        T(top_level_must_be_an_object),
        T(empty_file_is_malformed_even_when_optional),
        T(missing_required_file_is_an_error),
        T(missing_optional_file_adds_nothing_and_no_error),
        T(directory_instead_of_file_cannot_be_read),
        T(empty_property_name_is_an_error_naming_its_parent),
        T(a_later_key_failing_applies_none_of_the_earlier_ones),
        T(each_bad_file_is_recorded_and_good_files_still_load),
        T(add_json_file_rejects_bad_arguments_without_recording),
        T(builder_ranks_all_seven_sources_for_every_pair),
        T(builder_reads_appsettings_from_the_content_root_only),
        T(store_ranks_every_pair_of_sources_in_either_order),
        T(store_ranks_all_seven_sources_in_any_order),
        T(files_rank_in_the_order_added),
        T(provider_keys_rank_with_files_in_the_order_added),
        T(provider_ranks_between_hostkit_variables_and_environment_variables),
        T(provider_added_to_a_builder_wins_over_its_appsettings_files),
        T(failing_provider_load_is_recorded_and_applies_nothing),
        T(sink_set_rejects_null_or_empty_key_and_null_value),
        T(add_provider_rejects_bad_definitions_and_keeps_no_data),
        T(provider_name_is_copied),
        T(add_json_file_fails_cleanly_at_every_allocation),
        T(add_malformed_json_file_fails_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
