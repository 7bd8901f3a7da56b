/*
 * Unit tests for the configuration store (src/config/config.c): keys and
 * precedence of the five sources, environment and command-line parsing with
 * their error messages, typed getters, concurrent error recording, and every
 * failing allocation (failalloc) for the calls that allocate.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* hk_config_add_args with argv = {"prog", ...}. */
#define ADD_ARGS(c, ...)                                                                           \
    hk_config_add_args((c), (int)LEN(((char *const[]){"prog", __VA_ARGS__})),                      \
                       (char *const[]){"prog", __VA_ARGS__})
/* hk_config_add_env with a NULL-terminated envp = {...}. */
#define ADD_ENV(c, ...) hk_config_add_env((c), (char *const[]){__VA_ARGS__, NULL})

#define USAGE " (options are --Key=Value, --Key Value, /Key=Value or Key=Value)"
#define OOM_MESSAGE "out of memory while recording a configuration error"

static hk_config_t *new_config(void) {
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_non_null(c);
    return c;
}

/* ---- keys ------------------------------------------------------------------ */

static void set_then_get_returns_value_with_override_source(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_null(hk_config_get(c, "Worker:Count"));
    assert_null(hk_config_source_of(c, "Worker:Count"));
    assert_int_equal(hk_config_count(c), 0);

    assert_int_equal(hk_config_set(c, "Worker:Count", "4"), 0);
    assert_string_equal(hk_config_get(c, "Worker:Count"), "4");
    assert_string_equal(hk_config_source_of(c, "Worker:Count"), "override");
    assert_int_equal(hk_config_count(c), 1);
    assert_string_equal(hk_config_key_at(c, 0), "Worker:Count");
    assert_null(hk_config_key_at(c, 1));
    hk_config_free(c);
}

static void keys_are_case_insensitive(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "Worker:Count", "4"), 0);
    assert_string_equal(hk_config_get(c, "worker:count"), "4");
    assert_string_equal(hk_config_get(c, "WORKER:COUNT"), "4");
    assert_string_equal(hk_config_source_of(c, "wOrKeR:cOuNt"), "override");

    /* Setting it in another spelling replaces the value, keeps the first spelling. */
    assert_int_equal(hk_config_set(c, "WORKER:COUNT", "5"), 0);
    assert_string_equal(hk_config_get(c, "Worker:Count"), "5");
    assert_int_equal(hk_config_count(c), 1);
    assert_string_equal(hk_config_key_at(c, 0), "Worker:Count");
    hk_config_free(c);
}

static void hierarchical_keys_are_plain_strings_with_colons(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "Logging:LogLevel:Default", "Debug"), 0);
    assert_string_equal(hk_config_get(c, "Logging:LogLevel:Default"), "Debug");
    /* No sections: a parent path or a sibling is simply another, unset key. */
    assert_null(hk_config_get(c, "Logging:LogLevel"));
    assert_null(hk_config_get(c, "Logging"));
    assert_null(hk_config_get(c, "Logging:LogLevel:Default:"));
    assert_null(hk_config_get(c, "LogLevel:Default"));
    /* ':' alone, a leading or trailing ':' are valid keys too. */
    assert_int_equal(hk_config_set(c, ":", "colon"), 0);
    assert_int_equal(hk_config_set(c, ":a:", "edges"), 0);
    assert_string_equal(hk_config_get(c, ":"), "colon");
    assert_string_equal(hk_config_get(c, ":A:"), "edges");
    hk_config_free(c);
}

static void setting_a_key_again_replaces_its_value(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "A", "1"), 0);
    assert_int_equal(hk_config_set(c, "B", "2"), 0);
    assert_int_equal(hk_config_set(c, "A", "3"), 0);
    assert_int_equal(hk_config_set(c, "A", ""), 0);
    assert_string_equal(hk_config_get(c, "A"), "");
    assert_string_equal(hk_config_get(c, "B"), "2");
    assert_int_equal(hk_config_count(c), 2);
    assert_string_equal(hk_config_key_at(c, 0), "A");
    assert_string_equal(hk_config_key_at(c, 1), "B");
    hk_config_free(c);
}

static void set_rejects_null_or_empty_key_null_value_and_bad_source(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, NULL, "v"), -EINVAL);
    assert_int_equal(hk_config_set(c, "", "v"), -EINVAL);
    assert_int_equal(hk_config_set(c, "K", NULL), -EINVAL);
    assert_int_equal(hk_config_set(NULL, "K", "v"), -EINVAL);
    assert_int_equal(hk_config_set_default(c, "", "v"), -EINVAL);
    assert_int_equal(hk_config_set_source(c, "K", "v", (hk_config_source_t)5, NULL), -EINVAL);
    assert_int_equal(hk_config_set_source(c, "K", "v", (hk_config_source_t)-1, NULL), -EINVAL);
    assert_int_equal(hk_config_count(c), 0);
    assert_int_equal(hk_config_new(NULL), -EINVAL);
    assert_null(hk_config_get(c, NULL));
    assert_null(hk_config_get(NULL, "K"));
    assert_int_equal(hk_config_count(NULL), 0);
    assert_null(hk_config_key_at(NULL, 0));
    hk_config_free(c);
    hk_config_free(NULL);
}

static void five_thousand_keys_survive_index_growth(void **state) {
    (void)state;
    enum { N = 5000 };
    hk_config_t *c = new_config();
    char key[64], value[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "Section%d:Key%d", i % 97, i);
        snprintf(value, sizeof value, "v%d", i);
        assert_int_equal(hk_config_set(c, key, value), 0);
    }
    assert_int_equal(hk_config_count(c), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "SECTION%d:KEY%d", i % 97, i);
        snprintf(value, sizeof value, "v%d", i);
        assert_string_equal(hk_config_get(c, key), value);
        snprintf(key, sizeof key, "Section%d:Key%d", i % 97, i);
        assert_string_equal(hk_config_key_at(c, (size_t)i), key);
    }
    assert_null(hk_config_get(c, "Section0:Key5000"));
    assert_null(hk_config_get(c, "Section1:Key0"));
    hk_config_free(c);
}

/* ---- precedence ------------------------------------------------------------ */

enum { SRC_DEFAULT, SRC_HOST_ENV, SRC_ENV, SRC_COMMAND_LINE, SRC_OVERRIDE, NSRC };

static const char *const src_value[NSRC] = {"0", "1", "2", "3", "4"};
static const char *const src_origin[NSRC] = {
    "default", "environment variable HOSTKIT_Worker__Count", "environment variable Worker__Count",
    "command line", "override"};

/* Sets Worker:Count from source s, to src_value[s]. */
static void apply_source(hk_config_t *c, int s) {
    int rc = -1;
    switch (s) {
    case SRC_DEFAULT: rc = hk_config_set_default(c, "Worker:Count", "0"); break;
    case SRC_HOST_ENV: rc = ADD_ENV(c, "HOSTKIT_Worker__Count=1"); break;
    case SRC_ENV: rc = ADD_ENV(c, "Worker__Count=2"); break;
    case SRC_COMMAND_LINE: rc = ADD_ARGS(c, "--Worker:Count=3"); break;
    case SRC_OVERRIDE: rc = hk_config_set(c, "worker:count", "4"); break;
    }
    assert_int_equal(rc, 0);
}

static void expect_winner(hk_config_t *c, int s) {
    assert_string_equal(hk_config_get(c, "Worker:Count"), src_value[s]);
    assert_string_equal(hk_config_source_of(c, "Worker:Count"), src_origin[s]);
    int64_t v = -1;
    assert_int_equal(hk_config_get_int(c, "Worker:Count", 99, 0, 10, &v), 0);
    assert_int_equal(v, s);
}

static void each_source_wins_over_every_lower_one_in_either_order(void **state) {
    (void)state;
    for (int lo = 0; lo < NSRC; lo++) {
        for (int hi = lo + 1; hi < NSRC; hi++) {
            for (int order = 0; order < 2; order++) {
                hk_config_t *c = new_config();
                apply_source(c, order ? hi : lo);
                apply_source(c, order ? lo : hi);
                expect_winner(c, hi);
                hk_config_free(c);
            }
        }
    }
}

/* Every ordered selection of sources: the highest applied one wins. */
static void apply_permutations(int *seq, int depth, unsigned used) {
    if (depth > 0) {
        hk_config_t *c = new_config();
        int best = -1;
        for (int i = 0; i < depth; i++) {
            apply_source(c, seq[i]);
            if (seq[i] > best)
                best = seq[i];
        }
        expect_winner(c, best);
        hk_config_free(c);
    }
    for (int s = 0; s < NSRC; s++) {
        if (used & (1u << s))
            continue;
        seq[depth] = s;
        apply_permutations(seq, depth + 1, used | (1u << s));
    }
}

static void any_sequence_of_sources_resolves_to_the_highest(void **state) {
    (void)state;
    int seq[NSRC];
    apply_permutations(seq, 0, 0);
}

static void one_environment_array_prefers_plain_name_over_hostkit_prefix(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    /* The plain variable comes first in the array yet still wins: the prefixed
     * pass runs before the plain one. */
    assert_int_equal(ADD_ENV(c, "Worker__Count=2", "HOSTKIT_Worker__Count=1",
                             "HOSTKIT_ENVIRONMENT=Staging"),
                     0);
    expect_winner(c, SRC_ENV);
    assert_string_equal(hk_config_get(c, "Environment"), "Staging");
    assert_string_equal(hk_config_source_of(c, "Environment"),
                        "environment variable HOSTKIT_ENVIRONMENT");
    /* The plain pass also keeps the prefixed variable under its full name. */
    assert_string_equal(hk_config_get(c, "HOSTKIT_Worker:Count"), "1");
    assert_string_equal(hk_config_source_of(c, "HOSTKIT_Worker:Count"),
                        "environment variable HOSTKIT_Worker__Count");
    assert_int_equal(hk_config_count(c), 4);
    hk_config_free(c);
}

static void set_source_with_null_origin_names_the_source(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    static const struct {
        hk_config_source_t s;
        const char *origin;
    } cases[] = {{HK_CONFIG_DEFAULT, "default"},
                 {HK_CONFIG_HOST_ENV, "environment"},
                 {HK_CONFIG_ENV, "environment"},
                 {HK_CONFIG_COMMAND_LINE, "command line"},
                 {HK_CONFIG_OVERRIDE, "override"}};
    for (size_t i = 0; i < LEN(cases); i++) {
        char key[16];
        snprintf(key, sizeof key, "K%zu", i);
        assert_int_equal(hk_config_set_source(c, key, "v", cases[i].s, NULL), 0);
        assert_string_equal(hk_config_source_of(c, key), cases[i].origin);
    }
    assert_int_equal(hk_config_set_source(c, "K0", "w", HK_CONFIG_ENV, "my file"), 0);
    assert_string_equal(hk_config_source_of(c, "K0"), "my file");
    /* A lower source after a higher one is ignored, and that is not an error. */
    assert_int_equal(hk_config_set_source(c, "K0", "x", HK_CONFIG_DEFAULT, NULL), 0);
    assert_string_equal(hk_config_get(c, "K0"), "w");
    assert_string_equal(hk_config_source_of(c, "K0"), "my file");
    hk_config_free(c);
}

/* ---- environment ----------------------------------------------------------- */

static void env_skips_entries_without_equals_or_name(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ENV(c, "NOEQUALS", "=value", "=", "", "HOSTKIT_", "HOSTKIT_=x", "OK=1"),
                     0);
    /* "HOSTKIT_" alone has no name after the prefix: only the plain pass keeps it. */
    assert_string_equal(hk_config_get(c, "HOSTKIT_"), "x");
    assert_string_equal(hk_config_source_of(c, "HOSTKIT_"), "environment variable HOSTKIT_");
    assert_string_equal(hk_config_get(c, "OK"), "1");
    assert_null(hk_config_get(c, "NOEQUALS"));
    assert_int_equal(hk_config_count(c), 2);
    hk_config_free(c);
}

static void env_value_keeps_everything_after_the_first_equals(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ENV(c, "Conn=Host=db;Port=5432", "Empty=", "Eq==", "HOSTKIT_X=a=b"), 0);
    assert_string_equal(hk_config_get(c, "Conn"), "Host=db;Port=5432");
    assert_string_equal(hk_config_get(c, "Empty"), "");
    assert_string_equal(hk_config_get(c, "Eq"), "=");
    assert_string_equal(hk_config_get(c, "X"), "a=b");
    hk_config_free(c);
}

static void env_maps_each_double_underscore_to_a_colon(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ENV(c, "a__b__c=1", "single_under=2", "tri___ple=3", "__lead=4",
                             "trail__=5", "HOSTKIT_Db__Host=6", "quad____x=7"),
                     0);
    assert_string_equal(hk_config_get(c, "a:b:c"), "1");
    assert_string_equal(hk_config_source_of(c, "a:b:c"), "environment variable a__b__c");
    assert_string_equal(hk_config_get(c, "single_under"), "2");
    assert_string_equal(hk_config_get(c, "tri:_ple"), "3");
    assert_string_equal(hk_config_get(c, ":lead"), "4");
    assert_string_equal(hk_config_get(c, "trail:"), "5");
    assert_string_equal(hk_config_get(c, "Db:Host"), "6");
    assert_string_equal(hk_config_source_of(c, "Db:Host"), "environment variable HOSTKIT_Db__Host");
    assert_string_equal(hk_config_get(c, "quad::x"), "7");
    assert_null(hk_config_get(c, "a__b__c"));
    hk_config_free(c);
}

static void env_with_null_array_adds_nothing(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_add_env(c, NULL), 0);
    assert_int_equal(hk_config_add_env(c, (char *const[]){NULL}), 0);
    assert_int_equal(hk_config_count(c), 0);
    assert_int_equal(hk_config_add_env(NULL, (char *const[]){NULL}), -EINVAL);
    hk_config_free(c);
}

/* ---- command line ---------------------------------------------------------- */

static void command_line_accepts_every_form(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--A=1", "--B", "2", "/C=3", "/D", "4", "E=5", "--F:G=6"), 0);
    const char *expect[][2] = {{"A", "1"}, {"B", "2"}, {"C", "3"}, {"D", "4"},
                               {"E", "5"}, {"F:G", "6"}};
    assert_int_equal(hk_config_count(c), LEN(expect));
    for (size_t i = 0; i < LEN(expect); i++) {
        assert_string_equal(hk_config_key_at(c, i), expect[i][0]);
        assert_string_equal(hk_config_get(c, expect[i][0]), expect[i][1]);
        assert_string_equal(hk_config_source_of(c, expect[i][0]), "command line");
    }
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void command_line_values_may_contain_equals_or_be_empty(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--Conn=Host=db;Port=1", "--Empty=", "/S", "a=b", "K==", "--Sp",
                              "", "--Space", " x "),
                     0);
    assert_string_equal(hk_config_get(c, "Conn"), "Host=db;Port=1");
    assert_string_equal(hk_config_get(c, "Empty"), "");
    assert_string_equal(hk_config_get(c, "S"), "a=b");
    assert_string_equal(hk_config_get(c, "K"), "=");
    assert_string_equal(hk_config_get(c, "Sp"), "");
    assert_string_equal(hk_config_get(c, "Space"), " x ");
    hk_config_free(c);
}

static void command_line_value_starting_with_dashes_belongs_to_previous_switch(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--Key", "--Other", "/Path", "/tmp/x", "--Neg", "-5"), 0);
    assert_string_equal(hk_config_get(c, "Key"), "--Other");
    assert_string_equal(hk_config_get(c, "Path"), "/tmp/x");
    assert_string_equal(hk_config_get(c, "Neg"), "-5");
    assert_null(hk_config_get(c, "Other"));
    assert_int_equal(hk_config_count(c), 3);
    hk_config_free(c);
}

static void command_line_skips_argv0_and_null_entries(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    char *const only0[] = {"--Zero=0", NULL};
    assert_int_equal(hk_config_add_args(c, 1, only0), 0);
    assert_int_equal(hk_config_add_args(c, 0, NULL), 0);
    char *const with_null[] = {"--Zero=0", NULL, "--One=1"};
    assert_int_equal(hk_config_add_args(c, 3, with_null), 0);
    assert_null(hk_config_get(c, "Zero"));
    assert_string_equal(hk_config_get(c, "One"), "1");
    assert_int_equal(hk_config_count(c), 1);
    assert_int_equal(hk_config_add_args(c, -1, only0), -EINVAL);
    assert_int_equal(hk_config_add_args(c, 2, NULL), -EINVAL);
    assert_int_equal(hk_config_add_args(NULL, 1, only0), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void command_line_later_argument_wins(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--Level=1", "/level", "2", "LEVEL=3"), 0);
    assert_string_equal(hk_config_get(c, "Level"), "3");
    assert_int_equal(hk_config_count(c), 1);
    hk_config_free(c);
}

static void malformed_command_line_adds_nothing_and_names_the_argument(void **state) {
    (void)state;
    static const struct {
        const char *bad;
        bool needs_value_after; /* "--Key" is only malformed as the last argument */
        const char *message;
    } cases[] = {
        {"foo", false, "malformed command line: unexpected argument 'foo'" USAGE},
        {"-x", false, "malformed command line: unknown option '-x'" USAGE},
        {"-x=1", false, "malformed command line: unknown option '-x=1'" USAGE},
        {"-", false, "malformed command line: unknown option '-'" USAGE},
        {"--", false, "malformed command line: empty key in '--'"},
        {"--=v", false, "malformed command line: empty key in '--=v'"},
        {"=v", false, "malformed command line: empty key in '=v'"},
        {"/", false, "malformed command line: empty key in '/'"},
        {"/=v", false, "malformed command line: empty key in '/=v'"},
        {"--Key", true, "malformed command line: missing value for '--Key'"},
        {"/Key", true, "malformed command line: missing value for '/Key'"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        hk_config_t *c = new_config();
        assert_int_equal(hk_config_set_default(c, "Before", "old"), 0);
        /* Valid arguments come first, and (unless it needs a value) one after. */
        char *argv[] = {"prog", "--Before=new", "/Valid", "yes", "Also=1", (char *)cases[i].bad,
                        "--After=1"};
        int argc = cases[i].needs_value_after ? 6 : 7;
        assert_int_equal(hk_config_add_args(c, argc, argv), -EINVAL);
        assert_int_equal(hk_config_count(c), 1);
        assert_string_equal(hk_config_get(c, "Before"), "old");
        assert_string_equal(hk_config_source_of(c, "Before"), "default");
        assert_null(hk_config_get(c, "Valid"));
        assert_null(hk_config_get(c, "Also"));
        assert_null(hk_config_get(c, "After"));
        assert_int_equal(hk_config_error_count(c), 1);
        assert_string_equal(hk_config_last_error(c), cases[i].message);
        assert_string_equal(hk_config_error(c, 0), cases[i].message);
        hk_config_free(c);
    }
}

static void malformed_command_line_reports_the_first_bad_argument(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--A=1", "bad", "-y", "--B"), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 1);
    assert_string_equal(hk_config_last_error(c),
                        "malformed command line: unexpected argument 'bad'" USAGE);
    assert_int_equal(hk_config_count(c), 0);
    /* The store stays usable: a later well-formed command line applies. */
    assert_int_equal(ADD_ARGS(c, "--A=2"), 0);
    assert_string_equal(hk_config_get(c, "A"), "2");
    assert_int_equal(hk_config_error_count(c), 1);
    hk_config_free(c);
}

/* ---- typed getters --------------------------------------------------------- */

static void typed_int_accepts_decimal_with_optional_sign(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    static const struct {
        const char *text;
        int64_t value;
    } ok[] = {{"0", 0},   {"42", 42},   {"+7", 7},     {"-7", -7},
              {"-0", 0},  {"007", 7},   {"1000", 1000}, {"-1000", -1000}};
    for (size_t i = 0; i < LEN(ok); i++) {
        assert_int_equal(hk_config_set(c, "N", ok[i].text), 0);
        int64_t v = 12345;
        assert_int_equal(hk_config_get_int(c, "N", 1, -1000, 1000, &v), 0);
        assert_int_equal(v, ok[i].value);
    }
    assert_int_equal(hk_config_set(c, "Big", "9223372036854775807"), 0);
    int64_t v = 0;
    assert_int_equal(hk_config_get_int(c, "Big", 0, INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(hk_config_set(c, "Small", "-9223372036854775808"), 0);
    assert_int_equal(hk_config_get_int(c, "Small", 0, INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void typed_int_out_of_range_names_key_value_range_and_source(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--K=5000", "--Low=-1"), 0);
    int64_t v = 77;
    assert_int_equal(hk_config_get_int(c, "K", 1, 0, 1000, &v), -ERANGE);
    assert_int_equal(v, 77);
    assert_string_equal(hk_config_last_error(c),
                        "K: \"5000\" is out of range [0, 1000] (from command line)");
    assert_int_equal(hk_config_get_int(c, "Low", 1, 0, 1000, &v), -ERANGE);
    assert_int_equal(v, 77);
    assert_string_equal(hk_config_last_error(c),
                        "Low: \"-1\" is out of range [0, 1000] (from command line)");
    /* Bounds are inclusive. */
    assert_int_equal(hk_config_get_int(c, "K", 1, 5000, 5000, &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(hk_config_error_count(c), 2);
    hk_config_free(c);
}

static void typed_int_rejects_text_that_is_not_an_integer(void **state) {
    (void)state;
    static const char *const bad[] = {"abc", " 5", "5 ", "\t5", "5x", "0x10", "1.5",
                                      "1e3", "+",   "-",  "--5", "+-5", "5\n"};
    for (size_t i = 0; i < LEN(bad); i++) {
        hk_config_t *c = new_config();
        char arg[32];
        snprintf(arg, sizeof arg, "--Worker:Count=%s", bad[i]);
        char *const argv[] = {"prog", arg};
        assert_int_equal(hk_config_add_args(c, 2, argv), 0);
        int64_t v = 77;
        assert_int_equal(hk_config_get_int(c, "Worker:Count", 1, INT64_MIN, INT64_MAX, &v),
                         -EINVAL);
        assert_int_equal(v, 77);
        char expect[96];
        snprintf(expect, sizeof expect,
                 "Worker:Count: \"%s\" is not an integer (from command line)", bad[i]);
        assert_int_equal(hk_config_error_count(c), 1);
        assert_string_equal(hk_config_last_error(c), expect);
        hk_config_free(c);
    }
}

static void typed_int_overflow_is_out_of_range(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ENV(c, "Worker__Count=99999999999999999999", "Neg=-9223372036854775809"),
                     0);
    int64_t v = 77;
    assert_int_equal(hk_config_get_int(c, "Worker:Count", 1, INT64_MIN, INT64_MAX, &v), -ERANGE);
    assert_int_equal(v, 77);
    assert_string_equal(hk_config_last_error(c),
                        "Worker:Count: \"99999999999999999999\" is out of range "
                        "[-9223372036854775808, 9223372036854775807] "
                        "(from environment variable Worker__Count)");
    assert_int_equal(hk_config_get_int(c, "Neg", 1, 0, 10, &v), -ERANGE);
    assert_int_equal(v, 77);
    assert_string_equal(hk_config_last_error(c),
                        "Neg: \"-9223372036854775809\" is out of range [0, 10] "
                        "(from environment variable Neg)");
    hk_config_free(c);
}

static void typed_double_accepts_decimal_and_exponent(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    static const struct {
        const char *text;
        double value;
    } ok[] = {{"0", 0},         {"1.5", 1.5},   {"-2.25", -2.25}, {"+3", 3},
              {".5", 0.5},      {"5.", 5},      {"1e3", 1000},    {"2.5E-2", 0.025},
              {"-1e+2", -100},  {"1000", 1000}};
    for (size_t i = 0; i < LEN(ok); i++) {
        assert_int_equal(hk_config_set(c, "D", ok[i].text), 0);
        double v = 12345;
        assert_int_equal(hk_config_get_double(c, "D", 1, -1000, 1000, &v), 0);
        assert_true(v == ok[i].value);
    }
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void typed_double_rejects_hex_inf_nan_and_junk(void **state) {
    (void)state;
    static const char *const bad[] = {"0x10", "0x1p3", "inf",  "-inf", "infinity", "nan",
                                      "NAN",  "abc",   " 1.5", "1.5 ", "1,5",      "e5",
                                      "1e",   "1e999", "--1",  "."};
    for (size_t i = 0; i < LEN(bad); i++) {
        hk_config_t *c = new_config();
        assert_int_equal(hk_config_set(c, "Ratio", bad[i]), 0);
        double v = 7.5;
        assert_int_equal(hk_config_get_double(c, "Ratio", 1, -1e300, 1e300, &v), -EINVAL);
        assert_true(v == 7.5);
        char expect[96];
        snprintf(expect, sizeof expect, "Ratio: \"%s\" is not a number (from override)", bad[i]);
        assert_string_equal(hk_config_last_error(c), expect);
        hk_config_free(c);
    }
}

static void typed_double_out_of_range_names_the_range(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_default(c, "Ratio", "1.5"), 0);
    double v = 7.5;
    assert_int_equal(hk_config_get_double(c, "Ratio", 0.5, 0, 1, &v), -ERANGE);
    assert_true(v == 7.5);
    assert_string_equal(hk_config_last_error(c),
                        "Ratio: \"1.5\" is out of range [0, 1] (from default)");
    assert_int_equal(hk_config_get_double(c, "Ratio", 0.5, 0.25, 1.5, &v), 0);
    assert_true(v == 1.5);
    hk_config_free(c);
}

static void typed_bool_accepts_true_false_in_any_case_only(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    static const struct {
        const char *text;
        bool value;
    } ok[] = {{"true", true}, {"TRUE", true}, {"True", true},
              {"false", false}, {"FALSE", false}, {"fAlSe", false}};
    for (size_t i = 0; i < LEN(ok); i++) {
        assert_int_equal(hk_config_set(c, "B", ok[i].text), 0);
        bool v = !ok[i].value;
        assert_int_equal(hk_config_get_bool(c, "B", !ok[i].value, &v), 0);
        assert_true(v == ok[i].value);
    }
    static const char *const bad[] = {"yes", "no", "1", "0", "on", "t", " true", "true "};
    for (size_t i = 0; i < LEN(bad); i++) {
        assert_int_equal(hk_config_set(c, "B", bad[i]), 0);
        bool v = true;
        assert_int_equal(hk_config_get_bool(c, "B", false, &v), -EINVAL);
        assert_true(v);
        char expect[96];
        snprintf(expect, sizeof expect,
                 "B: \"%s\" is not a boolean (true or false) (from override)", bad[i]);
        assert_string_equal(hk_config_last_error(c), expect);
    }
    assert_int_equal(hk_config_error_count(c), LEN(bad));
    hk_config_free(c);
}

static void typed_enum_is_case_insensitive_and_lists_the_names(void **state) {
    (void)state;
    static const char *const modes[] = {"Fast", "Safe", "Paranoid"};
    hk_config_t *c = new_config();
    int v = -1;
    assert_int_equal(hk_config_set(c, "Mode", "safe"), 0);
    assert_int_equal(hk_config_get_enum(c, "Mode", modes, LEN(modes), 0, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(hk_config_set(c, "Mode", "PARANOID"), 0);
    assert_int_equal(hk_config_get_enum(c, "Mode", modes, LEN(modes), 0, &v), 0);
    assert_int_equal(v, 2);

    assert_int_equal(ADD_ENV(c, "HOSTKIT_Level=Slow"), 0);
    v = -1;
    assert_int_equal(hk_config_get_enum(c, "Level", modes, LEN(modes), 0, &v), -EINVAL);
    assert_int_equal(v, -1);
    assert_string_equal(hk_config_last_error(c),
                        "Level: \"Slow\" is not one of Fast, Safe, Paranoid "
                        "(from environment variable HOSTKIT_Level)");
    /* A single name, and a NULL entry in the list, are handled too. */
    static const char *const one[] = {"Only"};
    assert_int_equal(hk_config_get_enum(c, "Level", one, 1, 0, &v), -EINVAL);
    assert_string_equal(hk_config_last_error(c),
                        "Level: \"Slow\" is not one of Only "
                        "(from environment variable HOSTKIT_Level)");
    static const char *const holes[] = {"A", NULL, "Slow"};
    assert_int_equal(hk_config_get_enum(c, "Level", holes, LEN(holes), 0, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(hk_config_error_count(c), 2);
    hk_config_free(c);
}

static void typed_getters_give_default_when_absent_or_empty(void **state) {
    (void)state;
    static const char *const names[] = {"A", "B"};
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "Empty", ""), 0);
    const char *keys[] = {"Missing", "Empty"};
    for (size_t i = 0; i < LEN(keys); i++) {
        int64_t iv = 0;
        double dv = 0;
        bool bv = false;
        int ev = 0;
        /* The default is returned as is, even outside [min, max]. */
        assert_int_equal(hk_config_get_int(c, keys[i], 5000, 0, 10, &iv), 0);
        assert_int_equal(iv, 5000);
        assert_int_equal(hk_config_get_double(c, keys[i], 2.5, 0, 1, &dv), 0);
        assert_true(dv == 2.5);
        assert_int_equal(hk_config_get_bool(c, keys[i], true, &bv), 0);
        assert_true(bv);
        assert_int_equal(hk_config_get_enum(c, keys[i], names, LEN(names), 1, &ev), 0);
        assert_int_equal(ev, 1);
        assert_string_equal(hk_config_get_string(c, keys[i], "dflt"), "dflt");
        assert_null(hk_config_get_string(c, keys[i], NULL));
    }
    assert_int_equal(hk_config_error_count(c), 0);
    hk_config_free(c);
}

static void get_string_returns_value_or_default(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "Name", "hostkit"), 0);
    assert_int_equal(hk_config_set(c, "Space", " "), 0);
    assert_string_equal(hk_config_get_string(c, "NAME", "x"), "hostkit");
    assert_string_equal(hk_config_get_string(c, "Space", "x"), " ");
    assert_string_equal(hk_config_get_string(c, "Nope", "x"), "x");
    assert_string_equal(hk_config_get_string(NULL, "Name", "x"), "x");
    assert_ptr_equal(hk_config_get_string(c, "Name", NULL), hk_config_get(c, "Name"));
    hk_config_free(c);
}

static void typed_getters_reject_bad_arguments_without_recording(void **state) {
    (void)state;
    static const char *const names[] = {"A"};
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set(c, "K", "1"), 0);
    int64_t iv = 9;
    double dv = 9;
    bool bv = true;
    int ev = 9;
    assert_int_equal(hk_config_get_int(c, "K", 0, 10, 0, &iv), -EINVAL); /* min > max */
    assert_int_equal(hk_config_get_int(c, "K", 0, 0, 10, NULL), -EINVAL);
    assert_int_equal(hk_config_get_int(c, NULL, 0, 0, 10, &iv), -EINVAL);
    assert_int_equal(hk_config_get_int(NULL, "K", 0, 0, 10, &iv), -EINVAL);
    assert_int_equal(hk_config_get_double(c, "K", 0, 1, 0, &dv), -EINVAL);
    assert_int_equal(hk_config_get_double(c, "K", 0, 0, 1, NULL), -EINVAL);
    assert_int_equal(hk_config_get_bool(c, "K", false, NULL), -EINVAL);
    assert_int_equal(hk_config_get_bool(NULL, "K", false, &bv), -EINVAL);
    assert_int_equal(hk_config_get_enum(c, "K", NULL, 1, 0, &ev), -EINVAL);
    assert_int_equal(hk_config_get_enum(c, "K", names, 0, 0, &ev), -EINVAL);
    assert_int_equal(hk_config_get_enum(c, "K", names, 1, 0, NULL), -EINVAL);
    assert_int_equal(iv, 9);
    assert_true(dv == 9);
    assert_true(bv);
    assert_int_equal(ev, 9);
    assert_int_equal(hk_config_error_count(c), 0);
    assert_null(hk_config_last_error(c));
    assert_null(hk_config_error(c, 0));
    assert_int_equal(hk_config_error_count(NULL), 0);
    assert_null(hk_config_error(NULL, 0));
    assert_null(hk_config_last_error(NULL));
    hk_config_free(c);
}

static void errors_are_recorded_oldest_first(void **state) {
    (void)state;
    static const char *const names[] = {"Red", "Green"};
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--I=x", "--D=y", "--B=z", "--E=w"), 0);
    int64_t iv;
    double dv;
    bool bv;
    int ev;
    assert_int_equal(hk_config_get_int(c, "I", 0, 0, 1, &iv), -EINVAL);
    assert_int_equal(hk_config_get_double(c, "D", 0, 0, 1, &dv), -EINVAL);
    assert_int_equal(hk_config_get_bool(c, "B", false, &bv), -EINVAL);
    assert_int_equal(hk_config_get_enum(c, "E", names, LEN(names), 0, &ev), -EINVAL);
    assert_int_equal(ADD_ARGS(c, "oops"), -EINVAL);
    const char *expect[] = {
        "I: \"x\" is not an integer (from command line)",
        "D: \"y\" is not a number (from command line)",
        "B: \"z\" is not a boolean (true or false) (from command line)",
        "E: \"w\" is not one of Red, Green (from command line)",
        ("malformed command line: unexpected argument 'oops'" USAGE),
    };
    assert_int_equal(hk_config_error_count(c), LEN(expect));
    for (size_t i = 0; i < LEN(expect); i++)
        assert_string_equal(hk_config_error(c, i), expect[i]);
    assert_null(hk_config_error(c, LEN(expect)));
    assert_string_equal(hk_config_last_error(c), expect[LEN(expect) - 1]);
    /* A repeated bad read is recorded again (each call reports). */
    assert_int_equal(hk_config_get_int(c, "I", 0, 0, 1, &iv), -EINVAL);
    assert_int_equal(hk_config_error_count(c), LEN(expect) + 1);
    hk_config_free(c);
}

/* ---- concurrency ----------------------------------------------------------- */

enum { NTHREADS = 8, ROUNDS = 250 };

typedef struct getter_arg {
    hk_config_t *c;
    pthread_barrier_t *start;
    int good; /* successful reads of the valid key */
} getter_arg_t;

static void *bad_getters(void *p) {
    getter_arg_t *a = p;
    static const char *const names[] = {"Red", "Green"};
    pthread_barrier_wait(a->start);
    for (int i = 0; i < ROUNDS; i++) {
        int64_t iv;
        double dv;
        bool bv;
        int ev;
        if (hk_config_get_int(a->c, "I", 0, 0, 10, &iv) != -EINVAL ||
            hk_config_get_int(a->c, "R", 0, 0, 10, &iv) != -ERANGE ||
            hk_config_get_double(a->c, "D", 0, 0, 1, &dv) != -EINVAL ||
            hk_config_get_bool(a->c, "B", false, &bv) != -EINVAL ||
            hk_config_get_enum(a->c, "E", names, 2, 0, &ev) != -EINVAL)
            return NULL;
        if (hk_config_get_int(a->c, "Good", 0, 0, 10, &iv) == 0 && iv == 7 &&
            hk_config_error_count(a->c) > 0 && hk_config_last_error(a->c) != NULL)
            a->good++;
    }
    return NULL;
}

static void concurrent_typed_getter_errors_are_all_recorded(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(ADD_ARGS(c, "--I=abc", "--R=11", "--D=nan", "--B=yes", "--E=Blue", "--Good=7"),
                     0);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    getter_arg_t args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (getter_arg_t){c, &start, 0};
        assert_int_equal(pthread_create(&th[i], NULL, bad_getters, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].good, ROUNDS);
    }
    pthread_barrier_destroy(&start);

    static const char *const expect[] = {
        "I: \"abc\" is not an integer (from command line)",
        "R: \"11\" is out of range [0, 10] (from command line)",
        "D: \"nan\" is not a number (from command line)",
        "B: \"yes\" is not a boolean (true or false) (from command line)",
        "E: \"Blue\" is not one of Red, Green (from command line)",
    };
    size_t seen[LEN(expect)] = {0};
    size_t n = hk_config_error_count(c);
    assert_int_equal(n, (size_t)NTHREADS * ROUNDS * LEN(expect));
    for (size_t i = 0; i < n; i++) {
        const char *e = hk_config_error(c, i);
        assert_non_null(e);
        size_t k = 0;
        while (k < LEN(expect) && strcmp(e, expect[k]) != 0)
            k++;
        if (k == LEN(expect))
            fail_msg("unexpected error %zu: %s", i, e);
        seen[k]++;
    }
    for (size_t k = 0; k < LEN(expect); k++)
        assert_int_equal(seen[k], (size_t)NTHREADS * ROUNDS);
    hk_config_free(c);
}

/* ---- out of memory --------------------------------------------------------- */

static int uninstall_failalloc(void **state) {
    (void)state;
    failalloc_uninstall();
    return 0;
}

static void config_new_fails_cleanly_for_every_allocation(void **state) {
    (void)state;
    failalloc_install();
    long n;
    for (n = 1;; n++) {
        hk_config_t *sentinel = (hk_config_t *)&n, *c = sentinel;
        failalloc_set(n, false);
        int rc = hk_config_new(&c);
        long used = failalloc_count();
        failalloc_set(0, false);
        if (rc == 0) {
            assert_non_null(c);
            assert_true(c != sentinel);
            hk_config_free(c);
            if (used < n)
                break;
        } else {
            assert_int_equal(rc, -ENOMEM);
            assert_ptr_equal(c, sentinel); /* untouched on failure */
        }
    }
    assert_true(n > 1);
    failalloc_uninstall();
}

typedef struct oom_case {
    void (*prepare)(hk_config_t *c); /* runs without failures */
    int (*op)(hk_config_t *c);       /* runs with the Nth allocation failing */
    int success_rc;                  /* what op returns when nothing fails */
    void (*check)(hk_config_t *c, int rc); /* runs without failures */
} oom_case_t;

/*
 * Runs oc with allocation N failing (just that one, or N and all later ones),
 * N = 1, 2, ... until op no longer reaches N allocations. Each run must
 * return success_rc or -ENOMEM and leave a consistent store; ASan/valgrind
 * catch leaks and bad frees.
 */
static void run_oom_case(const oom_case_t *oc) {
    failalloc_install();
    for (int persistent = 0; persistent < 2; persistent++) {
        long n;
        for (n = 1; n < 100000; n++) {
            hk_config_t *c = new_config();
            if (oc->prepare)
                oc->prepare(c);
            failalloc_set(n, persistent);
            int rc = oc->op(c);
            long used = failalloc_count();
            failalloc_set(0, false);
            if (used < n) {
                assert_int_equal(rc, oc->success_rc);
                oc->check(c, rc);
                hk_config_free(c);
                break;
            }
            if (rc != oc->success_rc && rc != -ENOMEM)
                fail_msg("allocation %ld failing (%s): rc %d", n,
                         persistent ? "persistent" : "once", rc);
            oc->check(c, rc);
            hk_config_free(c);
        }
        assert_true(n > 1 && n < 100000);
    }
    failalloc_uninstall();
}

/* 32 keys fill the first entries array and make the next new key grow both
 * the array and the index. */
static void prepare_32_keys(hk_config_t *c) {
    for (int i = 0; i < 32; i++) {
        char key[16], value[16];
        snprintf(key, sizeof key, "Key%d", i);
        snprintf(value, sizeof value, "old%d", i);
        assert_int_equal(hk_config_set_default(c, key, value), 0);
    }
}

static void check_32_old_keys(hk_config_t *c, const char *except) {
    for (int i = 0; i < 32; i++) {
        char key[16], value[16];
        snprintf(key, sizeof key, "Key%d", i);
        if (except && strcmp(key, except) == 0)
            continue;
        snprintf(value, sizeof value, "old%d", i);
        assert_string_equal(hk_config_get(c, key), value);
        assert_string_equal(hk_config_source_of(c, key), "default");
    }
}

static int op_set_new_key(hk_config_t *c) { return hk_config_set(c, "Key32", "new"); }
static void check_set_new_key(hk_config_t *c, int rc) {
    check_32_old_keys(c, NULL);
    if (rc == 0) {
        assert_string_equal(hk_config_get(c, "key32"), "new");
        assert_int_equal(hk_config_count(c), 33);
    } else {
        assert_null(hk_config_get(c, "key32"));
        assert_int_equal(hk_config_count(c), 32);
        /* The store still works once memory is back. */
        assert_int_equal(hk_config_set(c, "Key32", "later"), 0);
        assert_string_equal(hk_config_get(c, "KEY32"), "later");
    }
}

static void check_set_new_key_empty(hk_config_t *c, int rc) {
    assert_int_equal(hk_config_count(c), rc == 0 ? 1 : 0);
    if (rc == 0) {
        assert_string_equal(hk_config_get(c, "Key32"), "new");
    } else {
        assert_null(hk_config_get(c, "Key32"));
        assert_int_equal(hk_config_set(c, "Key32", "later"), 0);
        assert_string_equal(hk_config_get(c, "Key32"), "later");
    }
}

static int op_replace_key(hk_config_t *c) { return hk_config_set(c, "Key5", "changed"); }
static void check_replace_key(hk_config_t *c, int rc) {
    check_32_old_keys(c, "Key5");
    assert_string_equal(hk_config_get(c, "Key5"), rc == 0 ? "changed" : "old5");
    assert_string_equal(hk_config_source_of(c, "Key5"), rc == 0 ? "override" : "default");
    assert_int_equal(hk_config_count(c), 32);
}

static void config_set_fails_cleanly_and_keeps_old_values(void **state) {
    (void)state;
    run_oom_case(&(oom_case_t){prepare_32_keys, op_set_new_key, 0, check_set_new_key});
    run_oom_case(&(oom_case_t){prepare_32_keys, op_replace_key, 0, check_replace_key});
    run_oom_case(&(oom_case_t){NULL, op_set_new_key, 0, check_set_new_key_empty});
}

static int op_add_env(hk_config_t *c) {
    return ADD_ENV(c, "HOSTKIT_ENVIRONMENT=Production", "Key3=env3", "A__B__C=abc", "NOEQ",
                   "Key31=env31");
}
static void check_add_env(hk_config_t *c, int rc) {
    /* Applied in order, so a failure may leave earlier variables set; every
     * key holds either its old value or the new one. */
    const char *v3 = hk_config_get(c, "Key3");
    assert_true(strcmp(v3, "old3") == 0 || strcmp(v3, "env3") == 0);
    const char *v31 = hk_config_get(c, "Key31");
    assert_true(strcmp(v31, "old31") == 0 || strcmp(v31, "env31") == 0);
    for (int i = 0; i < 32; i++) {
        char key[16], value[16];
        snprintf(key, sizeof key, "Key%d", i);
        snprintf(value, sizeof value, "old%d", i);
        if (i != 3 && i != 31)
            assert_string_equal(hk_config_get(c, key), value);
    }
    if (rc == 0) {
        assert_string_equal(v3, "env3");
        assert_string_equal(v31, "env31");
        assert_string_equal(hk_config_source_of(c, "Key31"), "environment variable Key31");
        assert_string_equal(hk_config_get(c, "Environment"), "Production");
        assert_string_equal(hk_config_get(c, "a:b:c"), "abc");
        assert_int_equal(hk_config_count(c), 35);
    } else {
        assert_true(hk_config_count(c) <= 35);
    }
}

static void config_add_env_fails_cleanly(void **state) {
    (void)state;
    run_oom_case(&(oom_case_t){prepare_32_keys, op_add_env, 0, check_add_env});
}

static int op_add_args(hk_config_t *c) {
    return ADD_ARGS(c, "--Key3=cl3", "/New", "n", "Key31=cl31", "--Another=a");
}
static void check_add_args(hk_config_t *c, int rc) {
    const char *v3 = hk_config_get(c, "Key3");
    assert_true(strcmp(v3, "old3") == 0 || strcmp(v3, "cl3") == 0);
    const char *v31 = hk_config_get(c, "Key31");
    assert_true(strcmp(v31, "old31") == 0 || strcmp(v31, "cl31") == 0);
    if (rc == 0) {
        assert_string_equal(v3, "cl3");
        assert_string_equal(v31, "cl31");
        assert_string_equal(hk_config_get(c, "New"), "n");
        assert_string_equal(hk_config_get(c, "Another"), "a");
        assert_string_equal(hk_config_source_of(c, "New"), "command line");
        assert_int_equal(hk_config_count(c), 34);
    }
    assert_int_equal(hk_config_error_count(c), 0);
}

static int op_add_bad_args(hk_config_t *c) { return ADD_ARGS(c, "--Key3=cl3", "-x"); }
static void check_add_bad_args(hk_config_t *c, int rc) {
    check_32_old_keys(c, NULL);
    assert_int_equal(hk_config_count(c), 32);
    if (rc == -EINVAL) {
        /* Even when formatting the message ran out of memory, the error counts. */
        assert_int_equal(hk_config_error_count(c), 1);
        const char *e = hk_config_last_error(c);
        assert_non_null(e);
        if (strcmp(e, OOM_MESSAGE) != 0)
            assert_string_equal(e, "malformed command line: unknown option '-x'" USAGE);
    } else {
        assert_int_equal(hk_config_error_count(c), 0);
    }
}

static void config_add_args_fails_cleanly(void **state) {
    (void)state;
    run_oom_case(&(oom_case_t){prepare_32_keys, op_add_args, 0, check_add_args});
    run_oom_case(&(oom_case_t){prepare_32_keys, op_add_bad_args, -EINVAL, check_add_bad_args});
}

/* Nine errors recorded before the getters run out of memory (the ninth grew
 * the error array to 16 entries). */
static void prepare_nine_errors(hk_config_t *c) {
    assert_int_equal(hk_config_set(c, "Bad", "abc"), 0);
    assert_int_equal(hk_config_set(c, "Mode", "Blue"), 0);
    int64_t v;
    for (int i = 0; i < 9; i++)
        assert_int_equal(hk_config_get_int(c, "Bad", 0, 0, 1, &v), -EINVAL);
}

static int op_bad_getters(hk_config_t *c) {
    static const char *const names[] = {"Red", "Green"};
    int64_t v = 5;
    int e = 5;
    int rc = hk_config_get_int(c, "Bad", 0, 0, 1, &v);
    if (rc != -EINVAL || v != 5)
        return -1000;
    for (int i = 0; i < 8; i++) { /* the 17th error grows the array again */
        rc = hk_config_get_enum(c, "Mode", names, LEN(names), 0, &e);
        if (rc != -EINVAL || e != 5)
            return -1000;
    }
    return -EINVAL;
}

static void check_bad_getters(hk_config_t *c, int rc) {
    (void)rc;
    /* Every failed read is counted, with its message or the out-of-memory one. */
    assert_int_equal(hk_config_error_count(c), 18);
    for (size_t i = 0; i < 18; i++) {
        const char *e = hk_config_error(c, i);
        assert_non_null(e);
        if (strcmp(e, OOM_MESSAGE) != 0 &&
            strcmp(e, "Bad: \"abc\" is not an integer (from override)") != 0 &&
            /* the list of names did not fit in memory */
            strcmp(e, "Mode: \"Blue\" is not an allowed value (from override)") != 0)
            assert_string_equal(e, "Mode: \"Blue\" is not one of Red, Green (from override)");
    }
    assert_non_null(hk_config_last_error(c));
}

static void typed_getter_errors_are_counted_even_without_memory(void **state) {
    (void)state;
    run_oom_case(&(oom_case_t){prepare_nine_errors, op_bad_getters, -EINVAL, check_bad_getters});
}

/* A program's own validation errors count like the getters' (the build fails with 78). */
static void recorded_errors_join_the_getters_errors(void **state) {
    (void)state;
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_int_equal(hk_config_set(c, "Db:Pool", "x"), 0);
    int64_t v;
    assert_int_equal(hk_config_get_int(c, "Db:Pool", 1, 1, 10, &v), -EINVAL);
    assert_int_equal(hk_config_record_error(c, "Db:Pool: %d is below the minimum %d", 0, 1), 0);
    assert_int_equal(hk_config_error_count(c), 2);
    assert_string_equal(hk_config_error(c, 1), "Db:Pool: 0 is below the minimum 1");
    assert_string_equal(hk_config_last_error(c), "Db:Pool: 0 is below the minimum 1");
    assert_int_equal(hk_config_record_error(NULL, "x"), -EINVAL);
    hk_config_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_then_get_returns_value_with_override_source),
        cmocka_unit_test(keys_are_case_insensitive),
        cmocka_unit_test(hierarchical_keys_are_plain_strings_with_colons),
        cmocka_unit_test(setting_a_key_again_replaces_its_value),
        cmocka_unit_test(set_rejects_null_or_empty_key_null_value_and_bad_source),
        cmocka_unit_test(five_thousand_keys_survive_index_growth),
        cmocka_unit_test(each_source_wins_over_every_lower_one_in_either_order),
        cmocka_unit_test(any_sequence_of_sources_resolves_to_the_highest),
        cmocka_unit_test(one_environment_array_prefers_plain_name_over_hostkit_prefix),
        cmocka_unit_test(set_source_with_null_origin_names_the_source),
        cmocka_unit_test(env_skips_entries_without_equals_or_name),
        cmocka_unit_test(env_value_keeps_everything_after_the_first_equals),
        cmocka_unit_test(env_maps_each_double_underscore_to_a_colon),
        cmocka_unit_test(env_with_null_array_adds_nothing),
        cmocka_unit_test(command_line_accepts_every_form),
        cmocka_unit_test(command_line_values_may_contain_equals_or_be_empty),
        cmocka_unit_test(command_line_value_starting_with_dashes_belongs_to_previous_switch),
        cmocka_unit_test(command_line_skips_argv0_and_null_entries),
        cmocka_unit_test(command_line_later_argument_wins),
        cmocka_unit_test(malformed_command_line_adds_nothing_and_names_the_argument),
        cmocka_unit_test(malformed_command_line_reports_the_first_bad_argument),
        cmocka_unit_test(typed_int_accepts_decimal_with_optional_sign),
        cmocka_unit_test(typed_int_out_of_range_names_key_value_range_and_source),
        cmocka_unit_test(typed_int_rejects_text_that_is_not_an_integer),
        cmocka_unit_test(typed_int_overflow_is_out_of_range),
        cmocka_unit_test(typed_double_accepts_decimal_and_exponent),
        cmocka_unit_test(typed_double_rejects_hex_inf_nan_and_junk),
        cmocka_unit_test(typed_double_out_of_range_names_the_range),
        cmocka_unit_test(typed_bool_accepts_true_false_in_any_case_only),
        cmocka_unit_test(typed_enum_is_case_insensitive_and_lists_the_names),
        cmocka_unit_test(typed_getters_give_default_when_absent_or_empty),
        cmocka_unit_test(get_string_returns_value_or_default),
        cmocka_unit_test(typed_getters_reject_bad_arguments_without_recording),
        cmocka_unit_test(errors_are_recorded_oldest_first),
        cmocka_unit_test(concurrent_typed_getter_errors_are_all_recorded),
        cmocka_unit_test_teardown(config_new_fails_cleanly_for_every_allocation,
                                  uninstall_failalloc),
        cmocka_unit_test_teardown(config_set_fails_cleanly_and_keeps_old_values,
                                  uninstall_failalloc),
        cmocka_unit_test(recorded_errors_join_the_getters_errors),
        cmocka_unit_test_teardown(config_add_env_fails_cleanly, uninstall_failalloc),
        cmocka_unit_test_teardown(config_add_args_fails_cleanly, uninstall_failalloc),
        cmocka_unit_test_teardown(typed_getter_errors_are_counted_even_without_memory,
                                  uninstall_failalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
