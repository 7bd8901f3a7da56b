/*
 * Unit tests for typed options (src/config/options.c): the duration and size
 * parsers (table-driven, with overflow and junk), binding of every type with
 * its boundaries and exact error messages, defaults, required fields,
 * choices, validators, lists, snapshots under concurrent readers, unknown-key
 * warnings, --help lines, and every failing allocation during bind.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testutil.h"

#include "common/common.h"
#include "config/options_int.h"
#include "hostkit/options.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CLI HK_CONFIG_COMMAND_LINE
#define NOT_A_DURATION "is not a duration (use 500ms, 30s, 5m, 1h or hh:mm:ss)"
#define NOT_A_SIZE "is not a size (use 512, 64KiB or 10MB)"

/* ---- helpers ------------------------------------------------------------------ */

/* Messages passed to an hk__msg_cb, copied with libc (not hostkit's allocator). */
typedef struct msgs {
    char *m[64];
    size_t n;
} msgs_t;

static void collect(void *data, const char *msg) {
    msgs_t *ms = data;
    if (ms->n < LEN(ms->m))
        ms->m[ms->n++] = strdup(msg);
}

static void msgs_clear(msgs_t *ms) {
    for (size_t i = 0; i < ms->n; i++)
        free(ms->m[i]);
    ms->n = 0;
}

static void msgs_print(const msgs_t *ms) {
    for (size_t i = 0; i < ms->n; i++)
        fprintf(stderr, "  [%zu] %s\n", i, ms->m[i]);
}

/* Asserts the messages are exactly `want` (n of them), in order. */
static void assert_msgs(const msgs_t *ms, const char *const *want, size_t n) {
    if (ms->n != n)
        msgs_print(ms);
    assert_int_equal(ms->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ms->m[i], want[i]);
}
#define ASSERT_MSGS(ms, ...)                                                                       \
    assert_msgs((ms), (const char *const[]){__VA_ARGS__},                                          \
                LEN(((const char *const[]){__VA_ARGS__})))

static hk_config_t *new_config(void) {
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    return c;
}

static void set_cli(hk_config_t *c, const char *key, const char *value) {
    assert_int_equal(hk_config_set_source(c, key, value, CLI, NULL), 0);
}

static hk_options_t *new_options(const hk_options_def_t *def) {
    hk_options_t *o = NULL;
    assert_int_equal(hk__options_new(def, &o), 0);
    assert_non_null(o);
    return o;
}

/* Every test starts and ends with the same number of live allocations. */
static long g_base;
static int setup(void **state) {
    (void)state;
    g_base = alloc_live();
    return 0;
}
static int teardown(void **state) {
    (void)state;
    assert_int_equal(alloc_live(), g_base);
    return 0;
}

/* One struct with a field of every type. */
typedef struct all_opts {
    char *name;
    bool verbose;
    int64_t count;
    uint64_t limit;
    double ratio;
    int64_t interval_ms;
    uint64_t buffer;
    int mode;
    hk_strlist_t tags;
} all_opts_t;

static const char *const modes[] = {"Fast", "Safe", "Off", NULL};

static const hk_option_t all_fields[] = {
    HK_OPT_STRING(all_opts_t, name, "Name", "demo", "Display name"),
    HK_OPT_BOOL(all_opts_t, verbose, "Verbose", "false", "Log more"),
    HK_OPT_INT(all_opts_t, count, "Count", "3", 0, 1000, "Number of workers"),
    HK_OPT_UINT(all_opts_t, limit, "Limit", "10", 1, 100, "Items per batch"),
    HK_OPT_DOUBLE(all_opts_t, ratio, "Ratio", "0.5", 0, 1, "Sampling ratio"),
    HK_OPT_DURATION(all_opts_t, interval_ms, "Interval", "1s", "Time between runs"),
    HK_OPT_SIZE(all_opts_t, buffer, "Buffer", "64KiB", "Buffer size"),
    HK_OPT_ENUM(all_opts_t, mode, "Mode", "Safe", modes, "Run mode"),
    HK_OPT_LIST(all_opts_t, tags, "Tags", "Tags to attach"),
};
static const hk_options_def_t all_def = HK_OPTIONS_DEF("Worker", all_opts_t, all_fields);

/* ---- duration parser ------------------------------------------------------------ */

typedef struct dur_case {
    const char *text;
    int64_t ms;
} dur_case_t;

static void duration_parser_accepts_units_sums_fractions_and_timespans(void **state) {
    (void)state;
    static const dur_case_t cases[] = {
        {"0ms", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"1h", 3600000},
        {"2d", 172800000},
        {"007s", 7000},
        {"1h30m", 5400000},
        {"1m30s", 90000},
        {"1d2h3m4s5ms", 93784005},
        {"1h5ms", 3600005},
        {"1.5s", 1500},
        {"2.25m", 135000},
        {"1.5h30m", 7200000},
        {"0.001s", 1},
        {"1.0005s", 1001},      /* 1000.5 ms: halves round up */
        {"0.5ms", 1},
        {"0.4ms", 0},
        {"0.0015s", 2},         /* exact decimal arithmetic: 1.5 ms, not 1.4999... */
        {"0.0014999s", 1},
        {"0.0005s0.5ms", 1},    /* the exact sum (1 ms) is rounded, not each part */
        {"0.00049999s", 0},
        {"1.999999999999999999999s", 2000},
        {"00:00:00", 0},
        {"01:30:00", 5400000},
        {"1:2:3", 3723000},
        {"23:59:59", 86399000},
        {"00:00:01.5", 1500},
        {"00:00:01.234", 1234},
        {"00:00:00.001", 1},
        {"00:00:00.0005", 1},
        {"00:00:00.0004", 0},
        {"00:00:59.9999", 60000},
        {"1.02:03:04", 93784000},
        {"1.02:03:04.005", 93784005},
        {"2.00:00:00", 172800000},
        {"0.00:00:00", 0},
        {"1.5:00:00", 104400000}, /* d.h:mm:ss: one day and five hours */
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775.807s", INT64_MAX},
        {"106751991167d7h12m55s807ms", INT64_MAX},
        {"106751991167.07:12:55.807", INT64_MAX},
        {"106751991167d", INT64_C(9223372036828800000)},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        int64_t ms = -42;
        int rc = hk_parse_duration_ms(cases[i].text, &ms);
        if (rc != 0 || ms != cases[i].ms)
            fprintf(stderr, "case \"%s\": rc %d, %" PRId64 " ms\n", cases[i].text, rc, ms);
        assert_int_equal(rc, 0);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void duration_parser_rejects_junk_with_einval_and_leaves_the_output_alone(void **state) {
    (void)state;
    static const char *const junk[] = {
        "", "5", "0", "1.5", "-1s", "+1s", "-0s", "1 s", " 1s", "1s ", "1s\n", "1h 30m", "1S",
        "1H", "1D", "1Ms", "1sec", "1hr", "1min", "1ms1s", "30m1h", "1m1m", "1s1s", "1h30",
        "1s500", "ms", "s", "h", ".5s", "1.s", "1..5s", "1.5.5s", "0x10s", "1e3ms", "1,5s",
        "1us", "1ns", "1w", "1y", "1_000ms", "１s",
        /* timespans */
        "1:30", "1:2", ":", "::", "1::", ":1:2", "24:00:00", "00:60:00", "00:00:60", "001:00:00",
        "00:000:00", "00:00:000", "00:00:00.", ".00:00:00", "1.00:00", "1.2.03:04:05",
        "00:00:00.5s", "-01:00:00", "+01:00:00", "1d.02:03:04", "01:00:00 ", " 01:00:00",
        "01: 00:00", "01:00:00:00", "1h:30m", "00:00:00,5", "a:b:c", "1.24:00:00",
    };
    for (size_t i = 0; i < LEN(junk); i++) {
        int64_t ms = -42;
        int rc = hk_parse_duration_ms(junk[i], &ms);
        if (rc != -EINVAL)
            fprintf(stderr, "case \"%s\": rc %d\n", junk[i], rc);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(ms, -42);
    }
}

static void duration_parser_reports_overflow_with_erange(void **state) {
    (void)state;
    static const char *const big[] = {
        "9223372036854775808ms",
        "9223372036854775807.5ms", /* rounding up overflows */
        "9223372036854775.808s",
        "9223372036854775807s",
        "106751991168d",
        "106751991167d7h12m55s808ms",
        "106751991167d7h12m56s",
        "99999999999999999999999999s",
        "18446744073709551616ms",
        "106751991168.00:00:00",
        "106751991167.07:12:55.808",
        "99999999999999999999999.00:00:00",
    };
    for (size_t i = 0; i < LEN(big); i++) {
        int64_t ms = -42;
        int rc = hk_parse_duration_ms(big[i], &ms);
        if (rc != -ERANGE)
            fprintf(stderr, "case \"%s\": rc %d\n", big[i], rc);
        assert_int_equal(rc, -ERANGE);
        assert_int_equal(ms, -42);
    }
}

/* ---- size parser ---------------------------------------------------------------- */

typedef struct size_case {
    const char *text;
    uint64_t bytes;
} size_case_t;

static void size_parser_accepts_bytes_and_every_listed_unit(void **state) {
    (void)state;
    static const size_case_t cases[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"007KB", 7000},
        {"1KB", 1000},
        {"1MB", 1000000},
        {"10MB", 10000000},
        {"1GB", 1000000000},
        {"1TB", UINT64_C(1000000000000)},
        {"1KiB", 1024},
        {"64KiB", 65536},
        {"1MiB", 1048576},
        {"1GiB", 1073741824},
        {"1TiB", UINT64_C(1099511627776)},
        {"1.5GiB", UINT64_C(1610612736)},
        {"1.5KB", 1500},
        {"0.5KiB", 512},
        {"0.1KiB", 102},   /* 102.4: rounded down */
        {"1.9999B", 1},
        {"0.001KB", 1},
        {"0.0009KB", 0},
        {"0.9999999999999999999KiB", 1023},
        {"18446744073709551615", UINT64_MAX},
        {"18446744073709551615B", UINT64_MAX},
        {"16777215TiB", UINT64_C(18446742974197923840)},
        {"16777215.999999999999999999TiB", UINT64_MAX},
        {"18446744073709551.615KB", UINT64_MAX},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        uint64_t v = 42;
        int rc = hk_parse_size(cases[i].text, &v);
        if (rc != 0 || v != cases[i].bytes)
            fprintf(stderr, "case \"%s\": rc %d, %" PRIu64 "\n", cases[i].text, rc, v);
        assert_int_equal(rc, 0);
        assert_true(v == cases[i].bytes);
    }
}

static void size_parser_rejects_junk_and_wrong_case_units_with_einval(void **state) {
    (void)state;
    static const char *const junk[] = {
        "", "kb", "1kb", "1Kb", "1kB", "1k", "1K", "1M", "1G", "1T", "1KIB", "1kib", "1Kib",
        "1kiB", "1b", "1 KB", " 1", "1 ", "1\t", "-1", "+1", "-1KB", "1.5", "0.0", ".5KB",
        "1.KB", "1..5KB", "1.5.5KB", "KB", "B", "1KBB", "1BB", "1B B", "0x10", "1e3", "1,5MB",
        "1_000", "1PB", "1PiB", "1EiB", "1iB", "1Bytes", "1KBi",
    };
    for (size_t i = 0; i < LEN(junk); i++) {
        uint64_t v = 42;
        int rc = hk_parse_size(junk[i], &v);
        if (rc != -EINVAL)
            fprintf(stderr, "case \"%s\": rc %d\n", junk[i], rc);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(v, 42);
    }
}

static void size_parser_reports_overflow_with_erange(void **state) {
    (void)state;
    static const char *const big[] = {
        "18446744073709551616",  "18446744073709551616B", "99999999999999999999999",
        "18446744073709552KB",   "16777216TiB",           "18446745TB",
        "17179869184GiB",        "16777216.5TiB",         "18446744073709551.616KB",
    };
    for (size_t i = 0; i < LEN(big); i++) {
        uint64_t v = 42;
        int rc = hk_parse_size(big[i], &v);
        if (rc != -ERANGE)
            fprintf(stderr, "case \"%s\": rc %d\n", big[i], rc);
        assert_int_equal(rc, -ERANGE);
        assert_int_equal(v, 42);
    }
}

static void parsers_reject_null_arguments(void **state) {
    (void)state;
    int64_t ms = 0;
    uint64_t bytes = 0;
    assert_int_equal(hk_parse_duration_ms(NULL, &ms), -EINVAL);
    assert_int_equal(hk_parse_duration_ms("1s", NULL), -EINVAL);
    assert_int_equal(hk_parse_size(NULL, &bytes), -EINVAL);
    assert_int_equal(hk_parse_size("1KB", NULL), -EINVAL);
}

/* ---- binding every type ------------------------------------------------------------ */

static void bind_reads_every_type_from_its_key(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Name", "reports");
    set_cli(c, "Worker:Verbose", "true");
    set_cli(c, "Worker:Count", "42");
    set_cli(c, "Worker:Limit", "99");
    set_cli(c, "Worker:Ratio", "0.25");
    set_cli(c, "Worker:Interval", "1m30s");
    set_cli(c, "Worker:Buffer", "1.5MiB");
    set_cli(c, "Worker:Mode", "Off");
    set_cli(c, "Worker:Tags:0", "a");
    set_cli(c, "Worker:Tags:1", "b");
    set_cli(c, "Other:Count", "7");
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), 0);
    assert_int_equal(ms.n, 0);

    const all_opts_t *v = hk_options_acquire(o);
    assert_non_null(v);
    assert_string_equal(v->name, "reports");
    assert_true(v->verbose);
    assert_int_equal(v->count, 42);
    assert_int_equal(v->limit, 99);
    assert_true(v->ratio == 0.25);
    assert_int_equal(v->interval_ms, 90000);
    assert_int_equal(v->buffer, 1572864);
    assert_int_equal(v->mode, 2);
    assert_int_equal(v->tags.n, 2);
    assert_string_equal(v->tags.items[0], "a");
    assert_string_equal(v->tags.items[1], "b");
    hk_options_release(o, v);

    assert_ptr_equal(hk_options_def(o)->fields, all_fields);
    assert_string_equal(hk_options_def(o)->section, "Worker");
    assert_int_equal(hk_options_def(o)->nfields, LEN(all_fields));
    hk__options_free(o);
    hk_config_free(c);
}

static void bind_matches_keys_bools_and_choices_case_insensitively(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "worker:count", "5");
    set_cli(c, "WORKER:VERBOSE", "TRUE");
    set_cli(c, "Worker:mode", "fAST");
    set_cli(c, "worker:TAGS:0", "x");
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *v = hk_options_acquire(o);
    assert_int_equal(v->count, 5);
    assert_true(v->verbose);
    assert_int_equal(v->mode, 0);
    assert_int_equal(v->tags.n, 1);
    assert_string_equal(v->tags.items[0], "x");
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

static void bind_uses_defaults_for_missing_and_empty_values(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Count", "");   /* empty: the default applies */
    set_cli(c, "Worker:Name", "");
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *v = hk_options_acquire(o);
    assert_string_equal(v->name, "demo");
    assert_false(v->verbose);
    assert_int_equal(v->count, 3);
    assert_int_equal(v->limit, 10);
    assert_true(v->ratio == 0.5);
    assert_int_equal(v->interval_ms, 1000);
    assert_int_equal(v->buffer, 65536);
    assert_int_equal(v->mode, 1);
    assert_int_equal(v->tags.n, 0);
    assert_null(v->tags.items);
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

typedef struct bare_opts {
    char *s;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    int64_t ms;
    uint64_t bytes;
    int e;
} bare_opts_t;

static void fields_without_a_default_stay_zero_or_null(void **state) {
    (void)state;
    static const hk_option_t fields[] = {
        HK_OPT_STRING(bare_opts_t, s, "S", NULL, NULL),
        HK_OPT_BOOL(bare_opts_t, b, "B", NULL, NULL),
        HK_OPT_INT(bare_opts_t, i, "I", NULL, 5, 10, NULL), /* the range applies to values only */
        HK_OPT_UINT(bare_opts_t, u, "U", NULL, 5, 10, NULL),
        HK_OPT_DOUBLE(bare_opts_t, d, "D", NULL, 5, 10, NULL),
        HK_OPT_DURATION(bare_opts_t, ms, "Ms", NULL, NULL),
        HK_OPT_SIZE(bare_opts_t, bytes, "Bytes", NULL, NULL),
        HK_OPT_ENUM(bare_opts_t, e, "E", NULL, modes, NULL),
    };
    static const hk_options_def_t def = HK_OPTIONS_DEF("Bare", bare_opts_t, fields);
    hk_config_t *c = new_config();
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), 0);
    assert_int_equal(ms.n, 0);
    const bare_opts_t *v = hk_options_acquire(o);
    assert_null(v->s);
    assert_false(v->b);
    assert_int_equal(v->i, 0);
    assert_int_equal(v->u, 0);
    assert_true(v->d == 0);
    assert_int_equal(v->ms, 0);
    assert_int_equal(v->bytes, 0);
    assert_int_equal(v->e, 0);
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

/* One field per type, to test values and messages one at a time. */
typedef struct one_opts {
    char *s;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    int64_t ms;
    uint64_t bytes;
    int e;
    hk_strlist_t list;
} one_opts_t;

typedef struct value_case {
    const char *value;
    const char *error; /* NULL: binds */
} value_case_t;

/*
 * For each case: binds Worker:<field> = value (command line) with fields[]
 * as the only field, expects success or exactly `error`, and on success
 * passes the snapshot to check (may be NULL).
 */
static void run_cases(const hk_option_t *field, const value_case_t *cases, size_t n,
                      void (*check)(const one_opts_t *v, const char *value)) {
    const hk_options_def_t def = {"Worker", sizeof(one_opts_t), field, 1, NULL};
    for (size_t i = 0; i < n; i++) {
        hk_config_t *c = new_config();
        char key[64];
        snprintf(key, sizeof key, "Worker:%s", field->name);
        set_cli(c, key, cases[i].value);
        hk_options_t *o = new_options(&def);
        msgs_t ms = {0};
        int rc = hk__options_bind(o, c, collect, &ms);
        if (cases[i].error) {
            if (rc != -EINVAL || ms.n != 1 || strcmp(ms.m[0], cases[i].error) != 0) {
                fprintf(stderr, "case \"%s\": rc %d, expected: %s\n", cases[i].value, rc,
                        cases[i].error);
                msgs_print(&ms);
            }
            assert_int_equal(rc, -EINVAL);
            assert_int_equal(ms.n, 1);
            assert_string_equal(ms.m[0], cases[i].error);
            assert_null(hk_options_acquire(o));
        } else {
            if (rc != 0) {
                fprintf(stderr, "case \"%s\": rc %d\n", cases[i].value, rc);
                msgs_print(&ms);
            }
            assert_int_equal(rc, 0);
            const one_opts_t *v = hk_options_acquire(o);
            assert_non_null(v);
            if (check)
                check(v, cases[i].value);
            hk_options_release(o, v);
        }
        msgs_clear(&ms);
        hk__options_free(o);
        hk_config_free(c);
    }
}
#define RUN_CASES(field, cases, check) run_cases(&(field), (cases), LEN(cases), (check))

static void check_int(const one_opts_t *v, const char *value) {
    assert_int_equal(v->i, strtoll(value, NULL, 10));
}

static void int_binds_within_its_inclusive_range_and_names_bad_values_exactly(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_INT(one_opts_t, i, "Count", "3", 0, 1000, NULL);
    static const value_case_t cases[] = {
        {"0", NULL},
        {"1000", NULL},
        {"+7", NULL},
        {"-0", NULL},
        {"-1", "Worker:Count: \"-1\" is out of range [0, 1000] (from command line)"},
        {"1001", "Worker:Count: \"1001\" is out of range [0, 1000] (from command line)"},
        {"99999999999999999999",
         "Worker:Count: \"99999999999999999999\" is out of range [0, 1000] (from command line)"},
        {"abc", "Worker:Count: \"abc\" is not an integer (from command line)"},
        {"1.5", "Worker:Count: \"1.5\" is not an integer (from command line)"},
        {" 5", "Worker:Count: \" 5\" is not an integer (from command line)"},
        {"5 ", "Worker:Count: \"5 \" is not an integer (from command line)"},
        {"0x10", "Worker:Count: \"0x10\" is not an integer (from command line)"},
        {"-", "Worker:Count: \"-\" is not an integer (from command line)"},
        {"1e3", "Worker:Count: \"1e3\" is not an integer (from command line)"},
    };
    RUN_CASES(f, cases, check_int);

    static const hk_option_t wide = {.name = "Count", .type = HK_OPTION_INT,
                                     .offset = offsetof(one_opts_t, i)};
    static const value_case_t wide_cases[] = {
        {"9223372036854775807", NULL},
        {"-9223372036854775808", NULL},
        {"9223372036854775808", "Worker:Count: \"9223372036854775808\" is out of range "
                                "[-9223372036854775808, 9223372036854775807] (from command line)"},
    };
    RUN_CASES(wide, wide_cases, check_int);

    /* fractional bounds shrink to the integers inside them */
    static const hk_option_t frac = HK_OPT_INT(one_opts_t, i, "Count", NULL, -2.5, 10.5, NULL);
    static const value_case_t frac_cases[] = {
        {"-2", NULL},
        {"10", NULL},
        {"-3", "Worker:Count: \"-3\" is out of range [-2, 10] (from command line)"},
        {"11", "Worker:Count: \"11\" is out of range [-2, 10] (from command line)"},
    };
    RUN_CASES(frac, frac_cases, check_int);
}

static void check_uint(const one_opts_t *v, const char *value) {
    assert_true(v->u == strtoull(value + (value[0] == '-'), NULL, 10));
}

static void uint_binds_within_its_range_and_rejects_negatives(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_UINT(one_opts_t, u, "Limit", "10", 1, 100, NULL);
    static const value_case_t cases[] = {
        {"1", NULL},
        {"100", NULL},
        {"+5", NULL},
        {"0", "Worker:Limit: \"0\" is out of range [1, 100] (from command line)"},
        {"101", "Worker:Limit: \"101\" is out of range [1, 100] (from command line)"},
        {"-1", "Worker:Limit: \"-1\" is out of range [1, 100] (from command line)"},
        {"-0", "Worker:Limit: \"-0\" is out of range [1, 100] (from command line)"},
        {"x", "Worker:Limit: \"x\" is not an integer (from command line)"},
        {" 1", "Worker:Limit: \" 1\" is not an integer (from command line)"},
        {"+-1", "Worker:Limit: \"+-1\" is not an integer (from command line)"},
        {"--1", "Worker:Limit: \"--1\" is not an integer (from command line)"},
        {"1.0", "Worker:Limit: \"1.0\" is not an integer (from command line)"},
    };
    RUN_CASES(f, cases, check_uint);

    static const hk_option_t wide = {.name = "Limit", .type = HK_OPTION_UINT,
                                     .offset = offsetof(one_opts_t, u)};
    static const value_case_t wide_cases[] = {
        {"0", NULL},
        {"-0", NULL},
        {"18446744073709551615", NULL},
        {"18446744073709551616", "Worker:Limit: \"18446744073709551616\" is out of range "
                                 "[0, 18446744073709551615] (from command line)"},
        {"-5", "Worker:Limit: \"-5\" is out of range [0, 18446744073709551615] (from command line)"},
    };
    RUN_CASES(wide, wide_cases, check_uint);
}

static void check_double(const one_opts_t *v, const char *value) {
    assert_true(v->d == strtod(value, NULL));
}

static void double_binds_finite_decimals_within_its_range(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_DOUBLE(one_opts_t, d, "Ratio", "0.5", 0, 1, NULL);
    static const value_case_t cases[] = {
        {"0", NULL},
        {"1", NULL},
        {"0.25", NULL},
        {"1e-1", NULL},
        {"-0", NULL},
        {"1.5", "Worker:Ratio: \"1.5\" is out of range [0, 1] (from command line)"},
        {"-0.1", "Worker:Ratio: \"-0.1\" is out of range [0, 1] (from command line)"},
        {"nan", "Worker:Ratio: \"nan\" is not a number (from command line)"},
        {"inf", "Worker:Ratio: \"inf\" is not a number (from command line)"},
        {"0x1p-1", "Worker:Ratio: \"0x1p-1\" is not a number (from command line)"},
        {"1,5", "Worker:Ratio: \"1,5\" is not a number (from command line)"},
        {"abc", "Worker:Ratio: \"abc\" is not a number (from command line)"},
        {"1e999", "Worker:Ratio: \"1e999\" is not a number (from command line)"},
        {" 0.5", "Worker:Ratio: \" 0.5\" is not a number (from command line)"},
    };
    RUN_CASES(f, cases, check_double);
}

static void check_bool(const one_opts_t *v, const char *value) {
    assert_int_equal(v->b, value[0] == 't' || value[0] == 'T');
}

static void bool_binds_true_or_false_in_any_case(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_BOOL(one_opts_t, b, "Verbose", "true", NULL);
    static const value_case_t cases[] = {
        {"true", NULL},
        {"false", NULL},
        {"True", NULL},
        {"FALSE", NULL},
        {"yes", "Worker:Verbose: \"yes\" is not a boolean (true or false) (from command line)"},
        {"1", "Worker:Verbose: \"1\" is not a boolean (true or false) (from command line)"},
        {"true ", "Worker:Verbose: \"true \" is not a boolean (true or false) (from command line)"},
    };
    RUN_CASES(f, cases, check_bool);
}

static void check_duration(const one_opts_t *v, const char *value) {
    int64_t ms;
    assert_int_equal(hk_parse_duration_ms(value, &ms), 0);
    assert_int_equal(v->ms, ms);
}

static void duration_binds_milliseconds_and_shows_its_range_as_durations(void **state) {
    (void)state;
    static const hk_option_t f = {.name = "Timeout", .type = HK_OPTION_DURATION,
                                  .offset = offsetof(one_opts_t, ms), .def = "1s",
                                  .has_range = true, .min = 100, .max = 3600000};
    static const value_case_t cases[] = {
        {"100ms", NULL},
        {"1h", NULL},
        {"00:30:00", NULL},
        {"0.1s", NULL},
        {"99ms", "Worker:Timeout: \"99ms\" is out of range [100ms, 1h] (from command line)"},
        {"1h1ms", "Worker:Timeout: \"1h1ms\" is out of range [100ms, 1h] (from command line)"},
        {"999999999999999d",
         "Worker:Timeout: \"999999999999999d\" is out of range [100ms, 1h] (from command line)"},
        {"5 minutes", "Worker:Timeout: \"5 minutes\" " NOT_A_DURATION " (from command line)"},
        {"30", "Worker:Timeout: \"30\" " NOT_A_DURATION " (from command line)"},
        {"-1s", "Worker:Timeout: \"-1s\" " NOT_A_DURATION " (from command line)"},
    };
    RUN_CASES(f, cases, check_duration);

    static const hk_option_t open = HK_OPT_DURATION(one_opts_t, ms, "Timeout", "1s", NULL);
    static const value_case_t open_cases[] = {
        {"0ms", NULL},
        {"106751991167d7h12m55s807ms", NULL},
        {"106751991168d", "Worker:Timeout: \"106751991168d\" is out of range "
                          "[0ms, 106751991167d7h12m55s807ms] (from command line)"},
    };
    RUN_CASES(open, open_cases, check_duration);
}

static void check_size(const one_opts_t *v, const char *value) {
    uint64_t bytes;
    assert_int_equal(hk_parse_size(value, &bytes), 0);
    assert_true(v->bytes == bytes);
}

static void size_binds_bytes_and_shows_its_range_with_units(void **state) {
    (void)state;
    static const hk_option_t f = {.name = "Buffer", .type = HK_OPTION_SIZE,
                                  .offset = offsetof(one_opts_t, bytes), .def = "64KiB",
                                  .has_range = true, .min = 1024, .max = 10485760};
    static const value_case_t cases[] = {
        {"1KiB", NULL},
        {"10MiB", NULL},
        {"1024", NULL},
        {"10MB", NULL},
        {"1023", "Worker:Buffer: \"1023\" is out of range [1KiB, 10MiB] (from command line)"},
        {"11MB", "Worker:Buffer: \"11MB\" is out of range [1KiB, 10MiB] (from command line)"},
        {"64kb", "Worker:Buffer: \"64kb\" " NOT_A_SIZE " (from command line)"},
        {"1.5", "Worker:Buffer: \"1.5\" " NOT_A_SIZE " (from command line)"},
        {"99999999999999999999TiB",
         "Worker:Buffer: \"99999999999999999999TiB\" is out of range [1KiB, 10MiB] (from command line)"},
    };
    RUN_CASES(f, cases, check_size);

    static const hk_option_t open = HK_OPT_SIZE(one_opts_t, bytes, "Buffer", "64KiB", NULL);
    static const value_case_t open_cases[] = {
        {"0", NULL},
        {"16777216TiB", "Worker:Buffer: \"16777216TiB\" is out of range "
                        "[0, 18446744073709551615] (from command line)"},
    };
    RUN_CASES(open, open_cases, check_size);
}

static void check_enum(const one_opts_t *v, const char *value) {
    int i = 0;
    while (strcasecmp(modes[i], value) != 0)
        i++;
    assert_int_equal(v->e, i);
}

static void enum_binds_the_choice_index_and_lists_the_choices_on_error(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_ENUM(one_opts_t, e, "Mode", "Safe", modes, NULL);
    static const value_case_t cases[] = {
        {"Fast", NULL},
        {"safe", NULL},
        {"OFF", NULL},
        {"Slow", "Worker:Mode: \"Slow\" is not one of Fast, Safe, Off (from command line)"},
        {"Fast ", "Worker:Mode: \"Fast \" is not one of Fast, Safe, Off (from command line)"},
        {"0", "Worker:Mode: \"0\" is not one of Fast, Safe, Off (from command line)"},
    };
    RUN_CASES(f, cases, check_enum);
}

static void check_choice(const one_opts_t *v, const char *value) {
    /* the canonical spelling of the choice */
    assert_int_equal(strcasecmp(v->s, value), 0);
    assert_true(strcmp(v->s, "Debug") == 0 || strcmp(v->s, "Info") == 0);
}

static void string_with_choices_must_be_one_of_them_and_is_stored_canonically(void **state) {
    (void)state;
    static const char *const levels[] = {"Debug", "Info", NULL};
    static const hk_option_t f = {.name = "Level", .type = HK_OPTION_STRING,
                                  .offset = offsetof(one_opts_t, s), .def = "Info",
                                  .choices = levels};
    static const value_case_t cases[] = {
        {"Debug", NULL},
        {"INFO", NULL},
        {"debug", NULL},
        {"Trace", "Worker:Level: \"Trace\" is not one of Debug, Info (from command line)"},
    };
    RUN_CASES(f, cases, check_choice);
}

static void check_string(const one_opts_t *v, const char *value) { assert_string_equal(v->s, value); }

static void string_binds_any_text_as_an_owned_copy(void **state) {
    (void)state;
    static const hk_option_t f = HK_OPT_STRING(one_opts_t, s, "Name", "demo", NULL);
    static const value_case_t cases[] = {
        {"x", NULL},
        {" spaced out ", NULL},
        {"\"quoted\" \xc3\xa9", NULL},
    };
    RUN_CASES(f, cases, check_string);
}

static void errors_name_the_source_that_supplied_the_value(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    assert_int_equal(hk_config_set_source(c, "Worker:Count", "x", HK_CONFIG_ENV,
                                          "environment variable Worker__Count"),
                     0);
    assert_int_equal(hk_config_set(c, "Worker:Limit", "0"), 0);
    assert_int_equal(hk_config_set_default(c, "Worker:Ratio", "2"), 0);
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms,
                "Worker:Count: \"x\" is not an integer (from environment variable Worker__Count)",
                "Worker:Limit: \"0\" is out of range [1, 100] (from override)",
                "Worker:Ratio: \"2\" is out of range [0, 1] (from default)");
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- required and defaults ------------------------------------------------------------ */

typedef struct req_opts {
    char *name;
    int64_t port;
    hk_strlist_t hosts;
} req_opts_t;

static const hk_option_t req_fields[] = {
    {.name = "Name", .type = HK_OPTION_STRING, .offset = offsetof(req_opts_t, name),
     .required = true, .description = "Display name"},
    {.name = "Port", .type = HK_OPTION_INT, .offset = offsetof(req_opts_t, port), .def = "80",
     .required = true, .has_range = true, .min = 1, .max = 65535, .description = "Port"},
    {.name = "Hosts", .type = HK_OPTION_LIST, .offset = offsetof(req_opts_t, hosts),
     .required = true},
};
static const hk_options_def_t req_def = HK_OPTIONS_DEF("Worker", req_opts_t, req_fields);

static void required_fields_missing_from_every_source_are_errors(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    hk_options_t *o = new_options(&req_def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    /* A default does not satisfy "required" (Port has one). */
    ASSERT_MSGS(&ms, "Worker:Name: is required but not set", "Worker:Port: is required but not set",
                "Worker:Hosts: is required but not set");
    msgs_clear(&ms);

    /* An empty value is the same as no value. */
    set_cli(c, "Worker:Name", "");
    set_cli(c, "Worker:Port", "8080");
    set_cli(c, "Worker:Hosts:3", "h");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Name: is required but not set");
    msgs_clear(&ms);
    assert_null(hk_options_acquire(o));

    /* Any source counts, including one the program set as a store default (below). */
    set_cli(c, "Worker:Name", "n");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), 0);
    assert_int_equal(ms.n, 0);
    const req_opts_t *v = hk_options_acquire(o);
    assert_string_equal(v->name, "n");
    assert_int_equal(v->port, 8080);
    assert_int_equal(v->hosts.n, 1);
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);

    c = new_config();
    assert_int_equal(hk_config_set_default(c, "Worker:Name", "d"), 0);
    assert_int_equal(hk_config_set_default(c, "Worker:Port", "1"), 0);
    assert_int_equal(hk_config_set_default(c, "Worker:Hosts:0", "h"), 0);
    o = new_options(&req_def);
    assert_int_equal(hk__options_bind(o, c, collect, &ms), 0);
    hk__options_free(o);
    hk_config_free(c);
}

typedef struct bad_default_opts {
    int64_t interval_ms;
    int64_t count;
    int mode;
    uint64_t size;
} bad_default_opts_t;

static void a_default_that_does_not_parse_is_reported_naming_the_field(void **state) {
    (void)state;
    static const hk_option_t fields[] = {
        HK_OPT_DURATION(bad_default_opts_t, interval_ms, "Interval", "5 minutes", NULL),
        HK_OPT_INT(bad_default_opts_t, count, "Count", "5000", 0, 1000, NULL),
        HK_OPT_ENUM(bad_default_opts_t, mode, "Mode", "Turbo", modes, NULL),
        HK_OPT_SIZE(bad_default_opts_t, size, "Size", "10mb", NULL),
    };
    static const hk_options_def_t def = HK_OPTIONS_DEF("Worker", bad_default_opts_t, fields);
    hk_config_t *c = new_config();
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Interval: \"5 minutes\" " NOT_A_DURATION " (from default)",
                "Worker:Count: \"5000\" is out of range [0, 1000] (from default)",
                "Worker:Mode: \"Turbo\" is not one of Fast, Safe, Off (from default)",
                "Worker:Size: \"10mb\" " NOT_A_SIZE " (from default)");
    msgs_clear(&ms);

    /* Reported even when every value is supplied: it is a bug in the program. */
    set_cli(c, "Worker:Interval", "1s");
    set_cli(c, "Worker:Count", "1");
    set_cli(c, "Worker:Mode", "Fast");
    set_cli(c, "Worker:Size", "1");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    assert_int_equal(ms.n, 4);
    assert_string_equal(ms.m[0], "Worker:Interval: \"5 minutes\" " NOT_A_DURATION " (from default)");
    msgs_clear(&ms);
    assert_null(hk_options_acquire(o));
    hk__options_free(o);
    hk_config_free(c);

    /* ... and on a required field, next to the missing value (once each). */
    static const hk_option_t req[] = {
        {.name = "Count", .type = HK_OPTION_INT, .offset = offsetof(bad_default_opts_t, count),
         .def = "x", .required = true},
    };
    static const hk_options_def_t req_bad = HK_OPTIONS_DEF("Worker", bad_default_opts_t, req);
    c = new_config();
    o = new_options(&req_bad);
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Count: \"x\" is not an integer (from default)",
                "Worker:Count: is required but not set");
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- validators ------------------------------------------------------------------------ */

static atomic_int g_validate_calls;

static int must_be_even(const void *field, char *err, size_t err_len) {
    atomic_fetch_add(&g_validate_calls, 1);
    if (*(const int64_t *)field % 2 == 0)
        return 0;
    snprintf(err, err_len, "must be even");
    return -EINVAL;
}

static int no_message(const void *field, char *err, size_t err_len) {
    (void)field;
    (void)err;
    (void)err_len;
    return -EINVAL;
}

static int name_not_admin(const void *field, char *err, size_t err_len) {
    const char *s = *(const char *const *)field;
    if (s && strcasecmp(s, "admin") == 0) {
        snprintf(err, err_len, "is reserved");
        return -EINVAL;
    }
    return 0;
}

static int list_not_longer_than_two(const void *field, char *err, size_t err_len) {
    const hk_strlist_t *l = field;
    if (l->n <= 2)
        return 0;
    snprintf(err, err_len, "has more than 2 items");
    return -E2BIG;
}

typedef struct val_opts {
    int64_t count;
    int64_t other;
    char *name;
    hk_strlist_t tags;
    int64_t min, max;
} val_opts_t;

static int min_not_above_max(const void *opts, char *err, size_t err_len) {
    const val_opts_t *v = opts;
    if (v->min <= v->max)
        return 0;
    snprintf(err, err_len, "Min (%" PRId64 ") must not exceed Max (%" PRId64 ")", v->min, v->max);
    return -EINVAL;
}

static const hk_option_t val_fields[] = {
    {.name = "Count", .type = HK_OPTION_INT, .offset = offsetof(val_opts_t, count), .def = "4",
     .has_range = true, .min = 0, .max = 100, .validate = must_be_even},
    {.name = "Other", .type = HK_OPTION_INT, .offset = offsetof(val_opts_t, other), .def = "0",
     .validate = no_message},
    {.name = "Name", .type = HK_OPTION_STRING, .offset = offsetof(val_opts_t, name),
     .validate = name_not_admin},
    {.name = "Tags", .type = HK_OPTION_LIST, .offset = offsetof(val_opts_t, tags),
     .validate = list_not_longer_than_two},
    HK_OPT_INT(val_opts_t, min, "Min", "0", 0, 100, NULL),
    HK_OPT_INT(val_opts_t, max, "Max", "10", 0, 100, NULL),
};

static void field_validator_message_is_wrapped_with_key_value_and_source(void **state) {
    (void)state;
    hk_options_def_t def = HK_OPTIONS_DEF("Worker", val_opts_t, val_fields);
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Count", "3");
    set_cli(c, "Worker:Name", "Admin");
    set_cli(c, "Worker:Tags:0", "a");
    set_cli(c, "Worker:Tags:1", "b");
    assert_int_equal(hk_config_set_source(c, "Worker:Tags:2", "c", HK_CONFIG_ENV, NULL), 0);
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Count: \"3\" must be even (from command line)",
                "Worker:Other: \"0\" is not valid (from default)",
                "Worker:Name: \"Admin\" is reserved (from command line)",
                "Worker:Tags: \"a, b, c\" has more than 2 items (from command line)");
    msgs_clear(&ms);
    hk__options_free(o);

    /* A value that does not parse or is out of range never reaches the validator. */
    atomic_store(&g_validate_calls, 0);
    set_cli(c, "Worker:Count", "abc");
    o = new_options(&def);
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    assert_string_equal(ms.m[0], "Worker:Count: \"abc\" is not an integer (from command line)");
    msgs_clear(&ms);
    set_cli(c, "Worker:Count", "101");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    assert_string_equal(ms.m[0], "Worker:Count: \"101\" is out of range [0, 100] (from command line)");
    msgs_clear(&ms);
    assert_int_equal(atomic_load(&g_validate_calls), 0);
    hk__options_free(o);
    hk_config_free(c);
}

static void struct_validator_runs_after_all_fields_and_is_prefixed_with_the_section(void **state) {
    (void)state;
    static const hk_option_t fields[] = {
        HK_OPT_INT(val_opts_t, min, "Min", "0", 0, 100, NULL),
        HK_OPT_INT(val_opts_t, max, "Max", "10", 0, 100, NULL),
    };
    hk_options_def_t def = HK_OPTIONS_DEF("Worker", val_opts_t, fields);
    def.validate = min_not_above_max;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Min", "20");
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker: Min (20) must not exceed Max (10)");
    msgs_clear(&ms);
    assert_null(hk_options_acquire(o));

    /* It only sees fully bound structs: a field error skips it. */
    set_cli(c, "Worker:Max", "x");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Max: \"x\" is not an integer (from command line)");
    msgs_clear(&ms);

    set_cli(c, "Worker:Max", "20");
    assert_int_equal(hk__options_bind(o, c, collect, &ms), 0);
    assert_int_equal(ms.n, 0);
    hk__options_free(o);
    hk_config_free(c);
}

static void every_error_is_reported_in_field_order(void **state) {
    (void)state;
    static const hk_option_t fields[] = {
        HK_OPT_STRING(all_opts_t, name, "Name", "demo", NULL),
        HK_OPT_BOOL(all_opts_t, verbose, "Verbose", "false", NULL),
        HK_OPT_INT(all_opts_t, count, "Count", "3", 0, 1000, NULL),
        HK_OPT_UINT(all_opts_t, limit, "Limit", "10", 1, 100, NULL),
        HK_OPT_DOUBLE(all_opts_t, ratio, "Ratio", "0.5", 0, 1, NULL),
        HK_OPT_DURATION(all_opts_t, interval_ms, "Interval", "1s", NULL),
        HK_OPT_SIZE(all_opts_t, buffer, "Buffer", "64KiB", NULL),
        HK_OPT_ENUM(all_opts_t, mode, "Mode", "Safe", modes, NULL),
        {.name = "Tags", .type = HK_OPTION_LIST, .offset = offsetof(all_opts_t, tags),
         .required = true},
    };
    static const hk_options_def_t def = HK_OPTIONS_DEF("Worker", all_opts_t, fields);
    hk_config_t *c = new_config();
    /* set in another order than the fields: messages still follow the fields */
    set_cli(c, "Worker:Mode", "Slow");
    set_cli(c, "Worker:Buffer", "1 MB");
    set_cli(c, "Worker:Interval", "5");
    set_cli(c, "Worker:Ratio", "x");
    set_cli(c, "Worker:Limit", "0");
    set_cli(c, "Worker:Count", "-1");
    set_cli(c, "Worker:Verbose", "yes");
    set_cli(c, "Worker:Name", "fine");
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    ASSERT_MSGS(&ms, "Worker:Verbose: \"yes\" is not a boolean (true or false) (from command line)",
                "Worker:Count: \"-1\" is out of range [0, 1000] (from command line)",
                "Worker:Limit: \"0\" is out of range [1, 100] (from command line)",
                "Worker:Ratio: \"x\" is not a number (from command line)",
                "Worker:Interval: \"5\" " NOT_A_DURATION " (from command line)",
                "Worker:Buffer: \"1 MB\" " NOT_A_SIZE " (from command line)",
                "Worker:Mode: \"Slow\" is not one of Fast, Safe, Off (from command line)",
                "Worker:Tags: is required but not set");
    msgs_clear(&ms);
    assert_null(hk_options_acquire(o));
    /* Without a callback the result is the same. */
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), -EINVAL);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- lists ------------------------------------------------------------------------------ */

static void list_items_are_bound_in_numeric_index_order_with_gaps_allowed(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Tags:10", "ten");
    set_cli(c, "Worker:Tags:2", "two");
    set_cli(c, "worker:tags:0", "zero");
    set_cli(c, "Worker:Tags:7", "");
    /* not items: not canonical decimal indexes, nested keys, the bare key, other lists */
    set_cli(c, "Worker:Tags:01", "x");
    set_cli(c, "Worker:Tags:-1", "x");
    set_cli(c, "Worker:Tags:+3", "x");
    set_cli(c, "Worker:Tags:x", "x");
    set_cli(c, "Worker:Tags:1:Name", "x");
    set_cli(c, "Worker:Tags:99999999999999999999999", "x");
    set_cli(c, "Worker:Tags", "x");
    set_cli(c, "Worker:TagsExtra:1", "x");
    set_cli(c, "Workers:Tags:1", "x");
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *v = hk_options_acquire(o);
    assert_int_equal(v->tags.n, 4);
    assert_string_equal(v->tags.items[0], "zero");
    assert_string_equal(v->tags.items[1], "two");
    assert_string_equal(v->tags.items[2], "");
    assert_string_equal(v->tags.items[3], "ten");
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static void acquire_returns_null_until_the_first_successful_bind(void **state) {
    (void)state;
    hk_options_t *o = new_options(&all_def);
    assert_null(hk_options_acquire(o));
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Count", "x");
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), -EINVAL);
    assert_null(hk_options_acquire(o));
    set_cli(c, "Worker:Count", "8");
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *v = hk_options_acquire(o);
    assert_non_null(v);
    assert_int_equal(v->count, 8);
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

static void failed_rebind_keeps_the_old_snapshot(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Count", "1");
    set_cli(c, "Worker:Name", "first");
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *before = hk_options_acquire(o);

    set_cli(c, "Worker:Count", "2");   /* valid */
    set_cli(c, "Worker:Name", "second");
    set_cli(c, "Worker:Ratio", "7");   /* invalid: the whole bind fails */
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    assert_int_equal(ms.n, 1);
    msgs_clear(&ms);

    const all_opts_t *after = hk_options_acquire(o);
    assert_ptr_equal(after, before);
    assert_int_equal(after->count, 1);
    assert_string_equal(after->name, "first");
    hk_options_release(o, after);
    hk_options_release(o, before);
    hk__options_free(o);
    hk_config_free(c);
}

static void old_snapshot_stays_valid_until_its_last_reader_releases_it(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Name", "old");
    set_cli(c, "Worker:Tags:0", "old-tag");
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *a = hk_options_acquire(o);
    const all_opts_t *b = hk_options_acquire(o);
    assert_ptr_equal(a, b);
    long live = alloc_live();

    set_cli(c, "Worker:Name", "new");
    set_cli(c, "Worker:Tags:0", "new-tag");
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const all_opts_t *n = hk_options_acquire(o);
    assert_ptr_not_equal(n, a);
    assert_string_equal(n->name, "new");
    /* the old one is intact (ASan/valgrind would flag a use after free) */
    assert_string_equal(a->name, "old");
    assert_string_equal(a->tags.items[0], "old-tag");
    hk_options_release(o, a);
    assert_string_equal(b->name, "old");
    assert_true(alloc_live() > live); /* both snapshots alive */
    hk_options_release(o, b);
    assert_int_equal(alloc_live(), live); /* old freed: same count, new in its place */
    hk_options_release(o, n);
    hk_options_release(o, NULL);
    hk_options_release(NULL, n);
    hk__options_free(o);
    hk_config_free(c);
}

typedef struct race_opts {
    int64_t a;
    char *name;
    int64_t b;
    hk_strlist_t list;
} race_opts_t;

static const hk_option_t race_fields[] = {
    HK_OPT_INT(race_opts_t, a, "A", "0", 0, 1000, NULL),
    HK_OPT_STRING(race_opts_t, name, "Name", "", NULL),
    HK_OPT_INT(race_opts_t, b, "B", "0", 0, 1000, NULL),
    HK_OPT_LIST(race_opts_t, list, "List", NULL),
};
static const hk_options_def_t race_def = HK_OPTIONS_DEF("Race", race_opts_t, race_fields);

enum { RACE_READERS = 8, RACE_REBINDS = 2000, RACE_MIN_READS = 20000, RACE_MIN_CHANGES = 100 };

typedef struct race {
    hk_options_t *opts;
    hk_config_t *configs[2];
    atomic_int started;
    atomic_bool done;
    atomic_long reads;   /* while the writer runs */
    atomic_long changes; /* a reader saw the value differ from its previous read */
    atomic_long bad;
    atomic_long bind_failures;
} race_t;

static bool consistent(const race_opts_t *v) {
    char want[32];
    snprintf(want, sizeof want, "v%" PRId64, v->a);
    return (v->a == 1 || v->a == 2) && v->a == v->b && v->name && strcmp(v->name, want) == 0 &&
           v->list.n == (size_t)v->a && strcmp(v->list.items[v->list.n - 1], want) == 0;
}

static void *race_reader(void *arg) {
    race_t *r = arg;
    int64_t last = 0;
    atomic_fetch_add(&r->started, 1);
    while (!atomic_load(&r->done)) {
        const race_opts_t *v = hk_options_acquire(r->opts);
        if (!v || !consistent(v)) {
            atomic_fetch_add(&r->bad, 1);
        } else {
            if (last && v->a != last)
                atomic_fetch_add(&r->changes, 1);
            last = v->a;
        }
        hk_options_release(r->opts, v);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

/* Rebinds until there were enough rebinds, concurrent reads and readers seeing a
 * rebind between two reads (or 20 s passed). */
static void *race_writer(void *arg) {
    race_t *r = arg;
    while (atomic_load(&r->started) < RACE_READERS)
        ;
    uint64_t deadline = hk__now_ms() + 20000;
    for (long i = 0; i < RACE_REBINDS || atomic_load(&r->reads) < RACE_MIN_READS ||
                     atomic_load(&r->changes) < RACE_MIN_CHANGES;
         i++) {
        if (hk__options_bind(r->opts, r->configs[i % 2], NULL, NULL) != 0)
            atomic_fetch_add(&r->bind_failures, 1);
        if (hk__now_ms() > deadline)
            break;
    }
    atomic_store(&r->done, true);
    return NULL;
}

static void concurrent_readers_always_see_a_consistent_snapshot_while_rebinding(void **state) {
    (void)state;
    race_t r = {0};
    for (int k = 0; k < 2; k++) {
        r.configs[k] = new_config();
        const char *v = k ? "v2" : "v1";
        set_cli(r.configs[k], "Race:A", k ? "2" : "1");
        set_cli(r.configs[k], "Race:B", k ? "2" : "1");
        set_cli(r.configs[k], "Race:Name", v);
        set_cli(r.configs[k], "Race:List:0", v);
        if (k)
            set_cli(r.configs[k], "Race:List:1", v);
    }
    /* configs[0]: A = B = 1, list {"v1"}; configs[1]: A = B = 2, list {"v2", "v2"} */
    r.opts = new_options(&race_def);
    assert_int_equal(hk__options_bind(r.opts, r.configs[0], NULL, NULL), 0);

    pthread_t readers[RACE_READERS], writer;
    for (int i = 0; i < RACE_READERS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, race_reader, &r), 0);
    assert_int_equal(pthread_create(&writer, NULL, race_writer, &r), 0);
    pthread_join(writer, NULL);
    for (int i = 0; i < RACE_READERS; i++)
        pthread_join(readers[i], NULL);

    assert_int_equal(atomic_load(&r.bind_failures), 0);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_true(atomic_load(&r.reads) >= RACE_MIN_READS);
    assert_true(atomic_load(&r.changes) >= RACE_MIN_CHANGES); /* reads overlapped rebinds */
    hk__options_free(r.opts);
    hk_config_free(r.configs[0]);
    hk_config_free(r.configs[1]);
}

/* ---- out of memory ---------------------------------------------------------------------------- */

static void fill_all(hk_config_t *c, const char *name, const char *count) {
    set_cli(c, "Worker:Name", name);
    set_cli(c, "Worker:Count", count);
    set_cli(c, "Worker:Mode", "Fast");
    set_cli(c, "Worker:Interval", "2s");
    set_cli(c, "Worker:Tags:0", name);
    set_cli(c, "Worker:Tags:1", count);
    set_cli(c, "Worker:Tags:5", "five");
}

static void out_of_memory_at_every_allocation_during_bind_keeps_the_old_snapshot(void **state) {
    (void)state;
    hk_config_t *old_cfg = new_config(), *new_cfg = new_config();
    fill_all(old_cfg, "old", "1");
    fill_all(new_cfg, "new", "2");
    for (int persistent = 0; persistent < 2; persistent++) {
        hk_options_t *o = new_options(&all_def);
        assert_int_equal(hk__options_bind(o, old_cfg, NULL, NULL), 0);
        long live = alloc_live();
        bool succeeded = false;
        long n;
        for (n = 1; !succeeded && n < 1000; n++) {
            msgs_t ms = {0};
            failalloc_set(n, persistent);
            int rc = hk__options_bind(o, new_cfg, collect, &ms);
            failalloc_set(0, false);
            const all_opts_t *v = hk_options_acquire(o);
            if (rc == 0) {
                succeeded = true;
                assert_int_equal(ms.n, 0);
                assert_string_equal(v->name, "new");
                assert_int_equal(v->count, 2);
                assert_int_equal(v->tags.n, 3);
                assert_string_equal(v->tags.items[2], "five");
            } else {
                assert_int_equal(rc, -ENOMEM);
                assert_int_equal(ms.n, 1);
                assert_non_null(strstr(ms.m[0], "out of memory"));
                assert_string_equal(v->name, "old");
                assert_int_equal(v->count, 1);
                assert_int_equal(v->tags.n, 3);
                assert_string_equal(v->tags.items[0], "old");
                assert_int_equal(alloc_live(), live);
            }
            hk_options_release(o, v);
            msgs_clear(&ms);
        }
        assert_true(succeeded);
        assert_true(n > 5); /* the bind does allocate: the loop did test failures */
        hk__options_free(o);
    }

    /* The first bind failing leaves no snapshot at all. */
    hk_options_t *o = new_options(&all_def);
    failalloc_set(1, true);
    assert_int_equal(hk__options_bind(o, new_cfg, NULL, NULL), -ENOMEM);
    failalloc_set(0, false);
    assert_null(hk_options_acquire(o));
    hk__options_free(o);

    /* Creating the options object. */
    failalloc_set(1, false);
    o = NULL;
    assert_int_equal(hk__options_new(&all_def, &o), -ENOMEM);
    failalloc_set(0, false);
    assert_null(o);
    hk_config_free(old_cfg);
    hk_config_free(new_cfg);
}

static void out_of_memory_while_reporting_errors_neither_crashes_nor_leaks(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    /* long values make the messages outgrow the stack buffer */
    char longv[600];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    set_cli(c, "Worker:Count", longv);
    set_cli(c, "Worker:Mode", longv);
    set_cli(c, "Worker:Tags:0", "t");
    hk_options_t *o = new_options(&all_def);
    for (long n = 1; n < 200; n++) {
        msgs_t ms = {0};
        failalloc_set(n, true);
        int rc = hk__options_bind(o, c, collect, &ms);
        failalloc_set(0, false);
        assert_true(rc == -EINVAL || rc == -ENOMEM);
        assert_true(ms.n >= 1);
        msgs_clear(&ms);
        assert_null(hk_options_acquire(o));
    }
    msgs_t ms = {0};
    assert_int_equal(hk__options_bind(o, c, collect, &ms), -EINVAL);
    assert_int_equal(ms.n, 2);
    assert_int_equal(strlen(ms.m[0]), strlen("Worker:Count: \"\" is not an integer (from command line)") +
                                          strlen(longv));
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- definitions and arguments ------------------------------------------------------------------ */

static void new_rejects_invalid_definitions(void **state) {
    (void)state;
    hk_options_t *o = NULL;
    assert_int_equal(hk__options_new(NULL, &o), -EINVAL);
    assert_int_equal(hk__options_new(&all_def, NULL), -EINVAL);

    hk_options_def_t d = all_def;
    d.section = NULL;
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    d.section = "";
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    d = all_def;
    d.size = 0;
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    d = all_def;
    d.size = offsetof(all_opts_t, tags); /* the last field would not fit */
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    d = all_def;
    d.fields = NULL;
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);

    hk_option_t fields[2] = {HK_OPT_INT(all_opts_t, count, "Count", "3", 0, 10, NULL),
                             HK_OPT_INT(all_opts_t, count, "COUNT", "3", 0, 10, NULL)};
    d = (hk_options_def_t){"Worker", sizeof(all_opts_t), fields, 2, NULL};
    assert_int_equal(hk__options_new(&d, &o), -EINVAL); /* duplicate name, any case */
    fields[1].name = "Count:Sub";
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    fields[1].name = "";
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    fields[1].name = NULL;
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    fields[1] = (hk_option_t){.name = "Mode", .type = HK_OPTION_ENUM,
                              .offset = offsetof(all_opts_t, mode)}; /* no choices */
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    fields[1].type = (hk_option_type_t)99;
    fields[1].choices = modes;
    assert_int_equal(hk__options_new(&d, &o), -EINVAL);
    fields[1].type = HK_OPTION_ENUM;
    assert_int_equal(hk__options_new(&d, &o), 0);
    hk__options_free(o);

    /* no fields at all is a valid (empty) section */
    d = (hk_options_def_t){"Empty", 1, NULL, 0, NULL};
    o = NULL;
    assert_int_equal(hk__options_new(&d, &o), 0);
    hk_config_t *c = new_config();
    assert_int_equal(hk__options_bind(o, c, NULL, NULL), 0);
    const void *v = hk_options_acquire(o);
    assert_non_null(v);
    hk_options_release(o, v);
    hk__options_free(o);
    hk_config_free(c);
}

static void null_arguments_are_rejected_or_ignored(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    hk_options_t *o = new_options(&all_def);
    assert_int_equal(hk__options_bind(NULL, c, NULL, NULL), -EINVAL);
    assert_int_equal(hk__options_bind(o, NULL, NULL, NULL), -EINVAL);
    assert_null(hk_options_acquire(NULL));
    assert_null(hk_options_def(NULL));
    hk_options_release(NULL, NULL);
    hk__options_check_unknown(NULL, c, collect, NULL);
    hk__options_check_unknown(o, NULL, collect, NULL);
    hk__options_check_unknown(o, c, NULL, NULL);
    hk__options_describe(NULL, collect, NULL);
    hk__options_describe(o, NULL, NULL);
    hk__options_free(NULL);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- unknown keys ----------------------------------------------------------------------------- */

static void unknown_key_close_to_a_field_name_suggests_it(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Cuont", "3");
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    hk__options_check_unknown(o, c, collect, &ms);
    ASSERT_MSGS(&ms, "Unknown key Worker:Cuont (from command line); did you mean Worker:Count?");
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

static void unknown_key_far_from_every_field_name_has_no_suggestion(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    set_cli(c, "Worker:Zzz", "3");
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    hk__options_check_unknown(o, c, collect, &ms);
    ASSERT_MSGS(&ms, "Unknown key Worker:Zzz (from command line)");
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

static void unknown_keys_are_each_reported_once_with_their_source(void **state) {
    (void)state;
    hk_config_t *c = new_config();
    /* known: every field in any case, list items, anything below a field */
    set_cli(c, "Worker:Count", "3");
    set_cli(c, "worker:NAME", "n");
    set_cli(c, "Worker:Tags:0", "a");
    set_cli(c, "Worker:Tags:12", "b");
    set_cli(c, "Worker:Count:Extra", "x");
    /* other sections and the section key itself are not ours */
    set_cli(c, "Workers:Cuont", "x");
    set_cli(c, "Other:Cuont", "x");
    set_cli(c, "Worker", "x");
    set_cli(c, "Work:Count", "x");
    /* unknown */
    assert_int_equal(hk_config_set_source(c, "Worker:Intervall", "1s", HK_CONFIG_ENV,
                                          "environment variable Worker__Intervall"),
                     0);
    set_cli(c, "worker:verbos", "true");
    set_cli(c, "Worker:Tag:0", "x");
    set_cli(c, "Worker:NumberOfThreads", "4");
    set_cli(c, "Worker:", "x");
    set_cli(c, "WORKER:CUONT", "1");
    set_cli(c, "Worker:Cuont", "2"); /* same key as above in the store: reported once */
    set_cli(c, "Worker:Buffers", "1");
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    hk__options_check_unknown(o, c, collect, &ms);
    ASSERT_MSGS(&ms,
                "Unknown key Worker:Intervall (from environment variable Worker__Intervall); did "
                "you mean Worker:Interval?",
                "Unknown key worker:verbos (from command line); did you mean Worker:Verbose?",
                "Unknown key Worker:Tag:0 (from command line); did you mean Worker:Tags:0?",
                "Unknown key Worker:NumberOfThreads (from command line)",
                "Unknown key Worker: (from command line)",
                "Unknown key WORKER:CUONT (from command line); did you mean Worker:Count?",
                "Unknown key Worker:Buffers (from command line); did you mean Worker:Buffer?");
    msgs_clear(&ms);
    hk__options_free(o);
    hk_config_free(c);
}

/* ---- describe ------------------------------------------------------------------------------------- */

static void describe_prints_one_aligned_line_per_field(void **state) {
    (void)state;
    hk_options_t *o = new_options(&all_def);
    msgs_t ms = {0};
    hk__options_describe(o, collect, &ms);
    ASSERT_MSGS(&ms,
                "  --Worker:Name <string>                Display name (default: demo)",
                "  --Worker:Verbose <bool>               Log more (default: false)",
                "  --Worker:Count <int>                  Number of workers (default: 3; 0..1000)",
                "  --Worker:Limit <uint>                 Items per batch (default: 10; 1..100)",
                "  --Worker:Ratio <number>               Sampling ratio (default: 0.5; 0..1)",
                "  --Worker:Interval <duration>          Time between runs (default: 1s)",
                "  --Worker:Buffer <size>                Buffer size (default: 64KiB)",
                "  --Worker:Mode <one of Fast|Safe|Off>  Run mode (default: Safe)",
                "  --Worker:Tags <list>                  Tags to attach");
    msgs_clear(&ms);
    hk__options_free(o);
}

static void describe_marks_required_fields_and_shows_duration_and_size_ranges(void **state) {
    (void)state;
    static const char *const levels[] = {"Debug", "Info", NULL};
    static const hk_option_t fields[] = {
        {.name = "Name", .type = HK_OPTION_STRING, .offset = offsetof(one_opts_t, s),
         .required = true, .choices = levels},
        {.name = "Timeout", .type = HK_OPTION_DURATION, .offset = offsetof(one_opts_t, ms),
         .def = "30s", .has_range = true, .min = 100, .max = 90000, .description = "Timeout"},
        {.name = "Max", .type = HK_OPTION_SIZE, .offset = offsetof(one_opts_t, bytes),
         .required = true, .has_range = true, .min = 1000, .max = 1048576},
        {.name = "Id", .type = HK_OPTION_STRING, .offset = offsetof(one_opts_t, s) /* unused */},
        {.name = "Empty", .type = HK_OPTION_STRING, .offset = offsetof(one_opts_t, s), .def = ""},
    };
    static const hk_options_def_t def = HK_OPTIONS_DEF("Http", one_opts_t, fields);
    hk_options_t *o = new_options(&def);
    msgs_t ms = {0};
    hk__options_describe(o, collect, &ms);
    ASSERT_MSGS(&ms, "  --Http:Name <one of Debug|Info>  (required)",
                "  --Http:Timeout <duration>        Timeout (default: 30s; 100ms..1m30s)",
                "  --Http:Max <size>                (required; 1KB..1MiB)",
                "  --Http:Id <string>",
                "  --Http:Empty <string>            (default: \"\")");
    msgs_clear(&ms);
    hk__options_free(o);
}

int main(void) {
    failalloc_install();
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(duration_parser_accepts_units_sums_fractions_and_timespans),
        T(duration_parser_rejects_junk_with_einval_and_leaves_the_output_alone),
        T(duration_parser_reports_overflow_with_erange),
        T(size_parser_accepts_bytes_and_every_listed_unit),
        T(size_parser_rejects_junk_and_wrong_case_units_with_einval),
        T(size_parser_reports_overflow_with_erange),
        T(parsers_reject_null_arguments),
        T(bind_reads_every_type_from_its_key),
        T(bind_matches_keys_bools_and_choices_case_insensitively),
        T(bind_uses_defaults_for_missing_and_empty_values),
        T(fields_without_a_default_stay_zero_or_null),
        T(int_binds_within_its_inclusive_range_and_names_bad_values_exactly),
        T(uint_binds_within_its_range_and_rejects_negatives),
        T(double_binds_finite_decimals_within_its_range),
        T(bool_binds_true_or_false_in_any_case),
        T(duration_binds_milliseconds_and_shows_its_range_as_durations),
        T(size_binds_bytes_and_shows_its_range_with_units),
        T(enum_binds_the_choice_index_and_lists_the_choices_on_error),
        T(string_with_choices_must_be_one_of_them_and_is_stored_canonically),
        T(string_binds_any_text_as_an_owned_copy),
        T(errors_name_the_source_that_supplied_the_value),
        T(required_fields_missing_from_every_source_are_errors),
        T(a_default_that_does_not_parse_is_reported_naming_the_field),
        T(field_validator_message_is_wrapped_with_key_value_and_source),
        T(struct_validator_runs_after_all_fields_and_is_prefixed_with_the_section),
        T(every_error_is_reported_in_field_order),
        T(list_items_are_bound_in_numeric_index_order_with_gaps_allowed),
        T(acquire_returns_null_until_the_first_successful_bind),
        T(failed_rebind_keeps_the_old_snapshot),
        T(old_snapshot_stays_valid_until_its_last_reader_releases_it),
        T(concurrent_readers_always_see_a_consistent_snapshot_while_rebinding),
        T(out_of_memory_at_every_allocation_during_bind_keeps_the_old_snapshot),
        T(out_of_memory_while_reporting_errors_neither_crashes_nor_leaks),
        T(new_rejects_invalid_definitions),
        T(null_arguments_are_rejected_or_ignored),
        T(unknown_key_close_to_a_field_name_suggests_it),
        T(unknown_key_far_from_every_field_name_has_no_suggestion),
        T(unknown_keys_are_each_reported_once_with_their_source),
        T(describe_prints_one_aligned_line_per_field),
        T(describe_marks_required_fields_and_shows_duration_and_size_ranges),
#undef T
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    failalloc_uninstall();
    return rc;
}
