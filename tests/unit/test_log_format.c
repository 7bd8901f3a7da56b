/*
 * Unit tests for the log formatters (src/log/format.c, src/log/record.c):
 * golden simple/systemd/json lines through hk_log_format_record and through
 * a real log writing to a pipe; every JSON line parsed back with jansson,
 * including control characters and invalid UTF-8 in every position;
 * templates (holes by position, every value type, escapes, missing and
 * surplus arguments, duplicate names); .NET timestamp formats; colours;
 * scopes (nested, popped, per thread); one line per message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "log/log.h"
#include "log/log_int.h"
#include "logtest.h"
#include "testutil.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
/* 2023-11-14T22:13:20.123456789Z */
#define T0 INT64_C(1700000000123456789)

/* ---- helpers ---------------------------------------------------------------- */

/* A record as sinks see it: "info: Cat[0] msg" at T0. */
static hk_log_record_t base_rec(void) {
    return (hk_log_record_t){.level = HK_LOG_INFO, .category = "Cat", .message = "msg",
                             .time_ns = T0};
}

/* The whole line from hk_log_format_record (malloc'd), checking its length contract. */
static char *format_rec(const hk_log_record_t *r, const char *formatter) {
    int n = hk_log_format_record(r, formatter, NULL, 0);
    assert_true(n > 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(hk_log_format_record(r, formatter, buf, (size_t)n + 1), n);
    assert_int_equal(strlen(buf), (size_t)n);
    return buf;
}

/* The line through hk__format with explicit options (timestamps, colours, scopes). */
static char *format_opts(const hk_log_record_t *r, const hk__fmt_opts_t *o) {
    hk__buf_t b = {0};
    hk__format(&b, r, o);
    assert_false(b.oom);
    assert_non_null(b.p);
    return b.p; /* hk__malloc'd; freed with hk__free */
}

/* One line: a single '\n', at the end. */
static void assert_one_line(const char *line) {
    const char *nl = strchr(line, '\n');
    if (!nl || nl[1] != '\0')
        fail_msg("not exactly one line: \"%s\"", line);
}

/* Parses one JSON line (duplicate keys rejected); fails the test if invalid. */
static json_t *parse_line_flags(const char *line, size_t flags) {
    assert_one_line(line);
    json_error_t err;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES | flags, &err);
    if (!j)
        fail_msg("invalid JSON (%s at %d): %s", err.text, err.position, line);
    assert_true(json_is_object(j));
    return j;
}
static json_t *parse_line(const char *line) { return parse_line_flags(line, 0); }

static const char *jstr(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(v);
}

/* Reference UTF-8 check (independent of format.c): length of the valid
 * sequence at p, or 0 (overlong, surrogate, > U+10FFFF, truncated, bad byte). */
static size_t ref_utf8(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* s with every byte that does not start a valid sequence replaced by U+FFFD. */
static char *sanitized(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    assert_non_null(out);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t len = ref_utf8(p, strlen((const char *)p));
        if (len) {
            memcpy(o, p, len);
            o += len;
            p += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    *o = '\0';
    return out;
}


/* ---- a real log writing its console to a pipe ------------------------------------ */

typedef struct fixture {
    hk_log_t *log;
    int p[2];
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || hk__log_new(&f->log) < 0 || pipe2(f->p, O_CLOEXEC) < 0)
        return -1;
    hk_log_set_fd(f->log, f->p[1]);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    hk__log_free(f->log);
    close(f->p[0]);
    close(f->p[1]);
    free(f);
    return 0;
}

/* Everything written so far (malloc'd). */
static char *take(fixture_t *f) {
    hk_log_flush(f->log);
    return drain(f->p[0]);
}


/* ---- simple and systemd ------------------------------------------------------------ */

static const char *const tags[] = {"trce", "dbug", "info", "warn", "fail", "crit"};
static const int priorities[] = {7, 7, 6, 4, 3, 2};

static void simple_golden_line_for_every_level(void **state) {
    (void)state;
    hk_log_record_t r = base_rec();
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++) {
        r.level = (hk_log_level_t)l;
        r.event_id = l * 10;
        char expect[64];
        snprintf(expect, sizeof expect, "%s: Cat[%d] msg\n", tags[l], l * 10);
        char *line = format_rec(&r, "simple");
        assert_string_equal(line, expect);
        free(line);
    }
}

static void systemd_golden_line_carries_each_levels_priority(void **state) {
    (void)state;
    hk_log_record_t r = base_rec();
    char *line = format_rec(&r, "systemd");
    assert_string_equal(line, "<6>Cat[0] msg\n");
    free(line);
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++) {
        r.level = (hk_log_level_t)l;
        char expect[64];
        snprintf(expect, sizeof expect, "<%d>Cat[0] msg\n", priorities[l]);
        line = format_rec(&r, "systemd");
        assert_string_equal(line, expect);
        free(line);
    }
}

static void format_record_rejects_unknown_formatters_and_truncates_short_buffers(void **state) {
    (void)state;
    hk_log_record_t r = base_rec();
    char buf[8];
    assert_int_equal(hk_log_format_record(&r, "xml", buf, sizeof buf), -EINVAL);
    assert_int_equal(hk_log_format_record(&r, NULL, buf, sizeof buf), -EINVAL);
    assert_int_equal(hk_log_format_record(NULL, "simple", buf, sizeof buf), -EINVAL);
    memset(buf, 'X', sizeof buf);
    assert_int_equal(hk_log_format_record(&r, "simple", buf, sizeof buf),
                     (int)strlen("info: Cat[0] msg\n"));
    assert_string_equal(buf, "info: C"); /* 7 bytes and the NUL */
}

/* Control bytes other than tab never reach the text line raw: CR/LF as \r \n,
 * the rest (DEL too) as \xHH; in the category as in the message. */
static void text_lines_escape_control_bytes_so_each_message_is_one_line(void **state) {
    (void)state;
    char in[40], expect[256] = "";
    size_t k = 0;
    for (int c = 1; c < 0x20; c++)
        in[k++] = (char)c;
    in[k++] = 0x7f;
    in[k] = '\0';
    for (int c = 1; c < 0x20; c++) {
        char e[8];
        if (c == '\n')
            strcpy(e, "\\n");
        else if (c == '\r')
            strcpy(e, "\\r");
        else if (c == '\t')
            strcpy(e, "\t");
        else
            snprintf(e, sizeof e, "\\x%02x", c);
        strcat(expect, e);
    }
    strcat(expect, "\\x7f");
    hk_log_record_t r = base_rec();
    r.message = in;
    r.category = in;
    char want[600];
    snprintf(want, sizeof want, "info: %s[0] %s\n", expect, expect);
    char *line = format_rec(&r, "simple");
    assert_string_equal(line, want);
    free(line);
    snprintf(want, sizeof want, "<6>%s[0] %s\n", expect, expect);
    line = format_rec(&r, "systemd");
    assert_string_equal(line, want);
    free(line);
}

/* ---- json ------------------------------------------------------------------------- */

static void json_line_has_the_dotnet_shape(void **state) {
    (void)state;
    hk_log_field_t holes[] = {{"Count", {HK_LOG_T_I64, {.i = 10}}},
                              {"ElapsedMs", {HK_LOG_T_F64, {.d = 3.5}}},
                              {"Path", {HK_LOG_T_STR, {.s = "/tmp/x"}}},
                              {"Err", {HK_LOG_T_ERRNO, {.i = ENOENT}}}};
    hk_log_field_t scopes[] = {{"RequestId", {HK_LOG_T_STR, {.s = "r-1"}}},
                               {"Attempt", {HK_LOG_T_U64, {.u = 2}}}};
    hk_log_record_t r = base_rec();
    r.level = HK_LOG_WARN;
    r.category = "MyApp.Worker";
    r.event_id = 42;
    r.message = "Processed 10 items in 3.5 ms (/tmp/x: No such file or directory)";
    r.format = "Processed {Count} items in {ElapsedMs} ms ({Path}: {Err})";
    r.fields = holes;
    r.nfields = LEN(holes);
    r.scopes = scopes;
    r.nscopes = LEN(scopes);
    r.err = ENOENT;
    char *line = format_rec(&r, "json");
    json_t *j = parse_line(line);
    const char *ts = jstr(j, "Timestamp");
    assert_true(strlen(ts) >= 19); /* local time: yyyy-MM-ddTHH:mm:ss.ffffff+hh:mm */
    assert_int_equal(json_integer_value(json_object_get(j, "EventId")), 42);
    assert_string_equal(jstr(j, "LogLevel"), "Warning");
    assert_string_equal(jstr(j, "Category"), "MyApp.Worker");
    assert_string_equal(jstr(j, "Message"), r.message);
    assert_true(json_is_integer(json_object_get(j, "Errno")));
    assert_int_equal(json_integer_value(json_object_get(j, "Errno")), ENOENT);
    json_t *st = json_object_get(j, "State");
    assert_true(json_is_object(st));
    assert_int_equal(json_object_size(st), 6); /* Message, 4 holes, {OriginalFormat} */
    assert_string_equal(jstr(st, "Message"), r.message);
    assert_true(json_is_integer(json_object_get(st, "Count")));
    assert_int_equal(json_integer_value(json_object_get(st, "Count")), 10);
    assert_true(json_is_real(json_object_get(st, "ElapsedMs")));
    assert_true(json_real_value(json_object_get(st, "ElapsedMs")) == 3.5);
    assert_string_equal(jstr(st, "Path"), "/tmp/x");
    assert_string_equal(jstr(st, "Err"), "No such file or directory");
    assert_string_equal(jstr(st, "{OriginalFormat}"), r.format);
    json_t *sc = json_object_get(j, "Scopes");
    assert_true(json_is_array(sc));
    assert_int_equal(json_array_size(sc), 2);
    assert_string_equal(jstr(json_array_get(sc, 0), "RequestId"), "r-1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(sc, 1), "Attempt")), 2);
    json_decref(j);
    free(line);

    /* every level's name; no Errno, no Scopes, no {OriginalFormat} when absent */
    static const char *const names[] = {"Trace", "Debug", "Information",
                                        "Warning", "Error", "Critical"};
    hk_log_record_t p = base_rec();
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++) {
        p.level = (hk_log_level_t)l;
        line = format_rec(&p, "json");
        j = parse_line(line);
        assert_string_equal(jstr(j, "LogLevel"), names[l]);
        assert_null(json_object_get(j, "Errno"));
        assert_null(json_object_get(j, "Scopes"));
        assert_int_equal(json_object_size(json_object_get(j, "State")), 1);
        json_decref(j);
        free(line);
    }
}

/* Adversarial strings: control bytes, quotes, backslashes, invalid UTF-8. */
static const char *const nasty[] = {
    "quote\" backslash\\ both\\\" slash/",
    "\x80",                       /* lone continuation */
    "a\xbf\x80z",                 /* two continuations */
    "\xC0\xAF",                   /* overlong '/' */
    "\xC1\xBF",                   /* overlong */
    "\xE0\x80\xAF",               /* overlong, 3 bytes */
    "\xF0\x80\x80\xAF",           /* overlong, 4 bytes */
    "\xED\xA0\x80",               /* surrogate U+D800 */
    "\xED\xBF\xBF",               /* surrogate U+DFFF */
    "\xF4\x90\x80\x80",           /* > U+10FFFF */
    "\xF5\x80\x80\x80",           /* F5+ */
    "\xF8\x88\x80\x80\x80",       /* 5-byte form */
    "\xFE\xFF",                   /* never valid */
    "ok\xC3",                     /* truncated at the end */
    "ok\xE2\x82",                 /* truncated at the end */
    "ok\xF0\x9F\x98",             /* truncated at the end */
    "\xE2\x28\xA1",               /* bad continuation */
    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBD", /* valid, kept */
    "mix \xC3( \xFF\xC3\xA9\x80 end",
};

static char controls[40];

static void check_nasty_json(const char *s) {
    hk_log_field_t holes[] = {{s, {HK_LOG_T_STR, {.s = s}}}};
    hk_log_field_t scopes[] = {{s, {HK_LOG_T_STR, {.s = s}}}};
    hk_log_record_t r = base_rec();
    r.message = s;
    r.category = s;
    r.format = s;
    r.fields = holes;
    r.nfields = 1;
    r.scopes = scopes;
    r.nscopes = 1;
    char *line = format_rec(&r, "json");
    json_t *j = parse_line(line);
    char *want = sanitized(s);
    assert_string_equal(jstr(j, "Message"), want);
    assert_string_equal(jstr(j, "Category"), want);
    json_t *st = json_object_get(j, "State");
    assert_string_equal(jstr(st, "Message"), want);
    assert_string_equal(jstr(st, want), want);
    assert_string_equal(jstr(st, "{OriginalFormat}"), want);
    json_t *sc = json_array_get(json_object_get(j, "Scopes"), 0);
    assert_string_equal(jstr(sc, want), want);
    free(want);
    json_decref(j);
    free(line);
}

static void json_stays_valid_for_control_bytes_quotes_and_invalid_utf8(void **state) {
    (void)state;
    size_t k = 0;
    for (int c = 1; c < 0x20; c++)
        controls[k++] = (char)c;
    controls[k++] = 0x7f;
    controls[k] = '\0';
    check_nasty_json(controls);
    for (size_t i = 0; i < LEN(nasty); i++)
        check_nasty_json(nasty[i]);
    /* the replacement is one U+FFFD per invalid byte, the rest untouched */
    char *want = sanitized("mix \xC3( \xFF\xC3\xA9\x80 end");
    assert_string_equal(want, "mix \xEF\xBF\xBD( \xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD end");
    free(want);
}

/* Hole names that differ only in invalid bytes (or in an invalid byte versus
 * a real U+FFFD) become the same JSON key: the second must be dropped. */
static void json_hole_names_equal_after_replacement_are_not_duplicated(void **state) {
    (void)state;
    hk_log_field_t holes[] = {{"\xFF", {HK_LOG_T_I64, {.i = 1}}},
                              {"\xFE", {HK_LOG_T_I64, {.i = 2}}},
                              {"\xEF\xBF\xBD", {HK_LOG_T_I64, {.i = 3}}},
                              {"Message", {HK_LOG_T_I64, {.i = 4}}}};
    hk_log_record_t r = base_rec();
    r.fields = holes;
    r.nfields = LEN(holes);
    r.format = "{\xFF} {\xFE} {\xEF\xBF\xBD} {Message}";
    char *line = format_rec(&r, "json");
    json_t *j = parse_line(line);
    json_t *st = json_object_get(j, "State");
    assert_int_equal(json_integer_value(json_object_get(st, "\xEF\xBF\xBD")), 1);
    assert_string_equal(jstr(st, "Message"), "msg");
    assert_int_equal(json_object_size(st), 3);
    json_decref(j);
    free(line);
}

/* ---- templates through a real log ------------------------------------------------- */

static void templates_bind_holes_by_position_with_every_value_type(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json"), 0);
    hk_logger_t *lg = hk_log_get(f->log, "Types");
    hk_log_info(lg, "S={S} N={N} I={I} J={J} U={U} D={D} E={E} F={F} G={G} B={B} T={T} R={R}",
                "s", (const char *)NULL, (int64_t)INT64_MIN, (int64_t)INT64_MAX,
                (uint64_t)UINT64_MAX, 0.1, (double)NAN, (double)INFINITY, -(double)INFINITY,
                hk_log_bool(true), hk_log_time(1500000000), hk_log_errno(-ENOENT));
    hk_log_info(lg, "{Min} {Max}", (int64_t)INT64_MIN, (int64_t)INT64_MAX);
    char *out = take(f);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    char *first = strndup(out, (size_t)(nl - out + 1)), *second = nl + 1;

    /* uint64 max is a valid JSON number jansson cannot hold as an integer */
    assert_non_null(strstr(first, "\"U\":18446744073709551615"));
    assert_non_null(strstr(first, "\"I\":-9223372036854775808"));
    assert_non_null(strstr(first, "\"J\":9223372036854775807"));
    json_t *j = parse_line_flags(first, JSON_DECODE_INT_AS_REAL);
    assert_string_equal(jstr(j, "Message"),
                        "S=s N=(null) I=-9223372036854775808 J=9223372036854775807 "
                        "U=18446744073709551615 D=0.1 E=NaN F=Infinity G=-Infinity B=true "
                        "T=1970-01-01T00:00:01.500000Z R=No such file or directory");
    assert_true(json_number_value(json_object_get(j, "Errno")) == ENOENT);
    json_t *st = json_object_get(j, "State");
    assert_string_equal(jstr(st, "S"), "s");
    assert_true(json_is_null(json_object_get(st, "N")));
    assert_true(json_number_value(json_object_get(st, "U")) == 18446744073709551615.0);
    assert_true(json_number_value(json_object_get(st, "D")) == 0.1);
    assert_string_equal(jstr(st, "E"), "NaN");
    assert_string_equal(jstr(st, "F"), "Infinity");
    assert_string_equal(jstr(st, "G"), "-Infinity");
    assert_true(json_is_true(json_object_get(st, "B")));
    assert_string_equal(jstr(st, "T"), "1970-01-01T00:00:01.500000Z");
    assert_string_equal(jstr(st, "R"), "No such file or directory");
    assert_string_equal(jstr(st, "{OriginalFormat}"),
                        "S={S} N={N} I={I} J={J} U={U} D={D} E={E} F={F} G={G} B={B} T={T} R={R}");
    json_decref(j);

    j = parse_line(second);
    st = json_object_get(j, "State");
    assert_true(json_is_integer(json_object_get(st, "Min")));
    assert_true(json_integer_value(json_object_get(st, "Min")) == INT64_MIN);
    assert_true(json_integer_value(json_object_get(st, "Max")) == INT64_MAX);
    assert_null(json_object_get(j, "Errno"));
    json_decref(j);
    free(first);
    free(out);
}

static void template_escapes_missing_and_surplus_arguments_render_visibly(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "T");
    hk_log_info(lg, "a {{b}} {C} }", 1);
    hk_log_info(lg, "open {B", 1);
    hk_log_info(lg, "{A} and {B:x8} and {C}", "x");
    hk_log_info(lg, "{A}", 1, "two", 2.5);
    hk_log_info(lg, "none", (bool)false);
    char *out = take(f);
    assert_string_equal(out, "info: T[0] a {b} 1 }\n"
                             "info: T[0] open {B [extra: 1]\n"
                             "info: T[0] x and {B:x8} and {C}\n"
                             "info: T[0] 1 [extra: two 2.5]\n"
                             "info: T[0] none [extra: false]\n");
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json"), 0);
    hk_log_info(lg, "{A} and {B:x8}", "x");
    out = take(f);
    json_t *j = parse_line(out);
    json_t *st = json_object_get(j, "State");
    assert_string_equal(jstr(st, "A"), "x");
    assert_true(json_is_null(json_object_get(st, "B"))); /* the name stops at ':' */
    assert_string_equal(jstr(j, "Message"), "x and {B:x8}");
    json_decref(j);
    free(out);
}

static void duplicate_hole_names_and_a_hole_named_message_keep_json_valid(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json"), 0);
    hk_logger_t *lg = hk_log_get(f->log, "Dup");
    hk_log_info(lg, "{A} {A} {Message} {{OriginalFormat}} {A}", 1, 2, "m", 3);
    char *out = take(f);
    json_t *j = parse_line(out);
    assert_string_equal(jstr(j, "Message"), "1 2 m {OriginalFormat} 3");
    json_t *st = json_object_get(j, "State");
    assert_int_equal(json_integer_value(json_object_get(st, "A")), 1); /* the first one */
    assert_string_equal(jstr(st, "Message"), "1 2 m {OriginalFormat} 3");
    assert_string_equal(jstr(st, "{OriginalFormat}"), "{A} {A} {Message} {{OriginalFormat}} {A}");
    assert_int_equal(json_object_size(st), 3);
    json_decref(j);
    free(out);
}

/* Invalid UTF-8 and control bytes in a real log's category, hole names, values, scopes. */
static void real_log_json_lines_parse_for_hostile_categories_names_and_values(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json",
                               "Logging:Console:FormatterOptions:IncludeScopes=true"),
                     0);
    hk_logger_t *lg = hk_log_get(f->log, "Cat\xFF\x01\"");
    hk_log_scope_t sc;
    hk_log_scope_begin(&sc, "Sc\xC0\xAF", "v\xED\xA0\x80\n");
    hk_log_info(lg, "m\x1b[31m {N\xE2\x82} {Q\"\\}\xF0\x9F\x98", "v\x80\x7f", "q");
    hk_log_scope_end(&sc);
    char *out = take(f);
    json_t *j = parse_line(out);
    char *cat = sanitized("Cat\xFF\x01\"");
    assert_string_equal(jstr(j, "Category"), cat);
    char *msg = sanitized("m\x1b[31m v\x80\x7f q\xF0\x9F\x98");
    assert_string_equal(jstr(j, "Message"), msg);
    json_t *st = json_object_get(j, "State");
    char *n1 = sanitized("N\xE2\x82"), *v1 = sanitized("v\x80\x7f");
    assert_string_equal(jstr(st, n1), v1);
    assert_string_equal(jstr(st, "Q\"\\"), "q");
    char *sn = sanitized("Sc\xC0\xAF"), *sv = sanitized("v\xED\xA0\x80\n");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "Scopes"), 0), sn), sv);
    free(cat), free(msg), free(n1), free(v1), free(sn), free(sv);
    json_decref(j);
    free(out);
}

/* ---- console formatters through a real log ----------------------------------------- */

static void console_formatters_write_golden_lines_to_the_fd(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "MyApp.Worker");
    hk_log_info(lg, "Processed {Count} items in {ElapsedMs} ms", 10, 3);
    hk_log_at(lg, HK_LOG_WARN, 7, "w");
    char *out = take(f);
    assert_string_equal(out, "info: MyApp.Worker[0] Processed 10 items in 3 ms\n"
                             "warn: MyApp.Worker[7] w\n");
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=systemd",
                               "Logging:LogLevel:Default=Trace"),
                     0);
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++)
        hk_log_at(lg, (hk_log_level_t)l, l, "level {L}", l);
    out = take(f);
    char expect[512] = "";
    for (int l = 0; l < 6; l++)
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect),
                 "<%d>MyApp.Worker[%d] level %d\n", priorities[l], l, l);
    assert_string_equal(out, expect);
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json",
                               "Logging:Console:FormatterOptions:UseUtcTimestamp=true"),
                     0);
    hk_log_at(lg, HK_LOG_ERROR, 5, "Processed {Count} items", 10);
    out = take(f);
    json_t *j = parse_line(out);
    assert_string_equal(jstr(j, "Message"), "Processed 10 items");
    assert_string_equal(jstr(j, "LogLevel"), "Error");
    assert_int_equal(json_integer_value(json_object_get(j, "EventId")), 5);
    const char *ts = jstr(j, "Timestamp");
    int y, mo, d, h, mi, s, us;
    char z = 0;
    assert_int_equal(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%c", &y, &mo, &d, &h, &mi, &s, &us, &z),
                     8);
    assert_int_equal(z, 'Z');
    assert_int_equal(strlen(ts), strlen("2023-11-14T22:13:20.123456Z"));
    json_decref(j);
    free(out);
}

/* ---- timestamps ---------------------------------------------------------------------- */

static void timestamp_format_dotnet_tokens_in_utc_and_local_time(void **state) {
    (void)state;
    hk_log_record_t r = base_rec();
    hk__fmt_opts_t o = {.formatter = FMT_SIMPLE, .utc = true,
                        .ts_format = "yyyy-MM-dd HH:mm:ss.fff zzz K 'quoted: yMd' \\x\\' hh tt "
                                     "yy M d H f ffffff fffffffff "};
    char *line = format_opts(&r, &o);
    assert_string_equal(line, "2023-11-14 22:13:20.123 +00:00 Z quoted: yMd x' 10 PM "
                              "23 11 14 22 1 123456 123456789 info: Cat[0] msg\n");
    hk__free(line);

    /* local time (TZ=IST-5:30 is set in main): offset in zzz and K */
    o.utc = false;
    o.ts_format = "yyyy-MM-ddTHH:mm:ss.fffzzz|K ";
    line = format_opts(&r, &o);
    assert_string_equal(line, "2023-11-15T03:43:20.123+05:30|+05:30 info: Cat[0] msg\n");
    hk__free(line);

    /* json: the configured format; a literal quote or backslash stays valid JSON */
    o.formatter = FMT_JSON;
    o.utc = true;
    o.ts_format = "HH:mm'\"\\'K";
    line = format_opts(&r, &o);
    json_t *j = parse_line(line);
    assert_string_equal(jstr(j, "Timestamp"), "22:13\"\\Z");
    json_decref(j);
    hk__free(line);
    o.ts_format = NULL; /* the default: ISO 8601 with microseconds */
    line = format_opts(&r, &o);
    j = parse_line(line);
    assert_string_equal(jstr(j, "Timestamp"), "2023-11-14T22:13:20.123456Z");
    json_decref(j);
    hk__free(line);
}

static void timestamp_format_from_configuration_and_bad_format_names_the_key(void **state) {
    fixture_t *f = *state;
    assert_int_equal(
        CONFIGURE(f->log, "Logging:Console:FormatterOptions:TimestampFormat=yyyy-MM-ddTHH:mm:ssK ",
                  "Logging:Console:FormatterOptions:UseUtcTimestamp=true"),
        0);
    hk_logger_t *lg = hk_log_get(f->log, "Ts");
    hk_info(lg, "x");
    char *out = take(f);
    int y, mo, d, h, mi, s, used = -1;
    assert_int_equal(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2dZ %n", &y, &mo, &d, &h, &mi, &s, &used),
                     6);
    assert_true(used > 0);
    assert_string_equal(out + used, "info: Ts[0] x\n");
    free(out);

    char errs[1024];
    const char *const bad[] = {"Logging:Console:FormatterOptions:TimestampFormat=HH 'unclosed"};
    assert_int_equal(configure(f->log, errs, sizeof errs, bad, 1), -EINVAL);
    assert_non_null(strstr(errs, "Logging:Console:FormatterOptions:TimestampFormat"));
    const char *const bad_file[] = {"Logging:File:FormatterOptions:TimestampFormat='"};
    assert_int_equal(configure(f->log, errs, sizeof errs, bad_file, 1), -EINVAL);
    assert_non_null(strstr(errs, "Logging:File:FormatterOptions:TimestampFormat"));

    /* an escaped quote is a literal, not an unclosed quoted section */
    const char *const esc[] = {"Logging:Console:FormatterOptions:TimestampFormat=HH\\'mm ",
                               "Logging:Console:FormatterOptions:UseUtcTimestamp=true"};
    assert_int_equal(configure(f->log, errs, sizeof errs, esc, 2), 0);
    hk_info(lg, "y");
    out = take(f);
    used = -1;
    assert_int_equal(sscanf(out, "%2d'%2d %n", &h, &mi, &used), 2);
    assert_true(used > 0);
    assert_string_equal(out + used, "info: Ts[0] y\n");
    free(out);
}

/* ---- colours -------------------------------------------------------------------------- */

#define GREEN_INFO "\x1b[32minfo\x1b[39m\x1b[22m\x1b[49m"

static void color_behavior_enabled_disabled_and_default_on_a_pipe(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "C");
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Enabled"),
                     0);
    hk_info(lg, "x");
    hk_warn(lg, "y");
    char *out = take(f);
    assert_string_equal(out, GREEN_INFO ": C[0] x\n"
                             "\x1b[1m\x1b[33mwarn\x1b[39m\x1b[22m\x1b[49m: C[0] y\n");
    free(out);
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Disabled"),
                     0);
    hk_info(lg, "x");
    out = take(f);
    assert_string_equal(out, "info: C[0] x\n");
    free(out);
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Default"),
                     0);
    hk_info(lg, "x");
    out = take(f);
    assert_string_equal(out, "info: C[0] x\n");
    free(out);
    /* json and systemd never carry colours */
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Enabled",
                               "Logging:Console:FormatterName=systemd"),
                     0);
    hk_info(lg, "x");
    out = take(f);
    assert_string_equal(out, "<6>C[0] x\n");
    free(out);
}

/* Reads exactly strlen(expect) bytes from fd within a deadline. */
static void expect_bytes(int fd, const char *expect) {
    size_t n = strlen(expect), got = 0;
    char buf[512];
    assert_true(n < sizeof buf);
    uint64_t deadline = mono_ns() + 5000000000ull;
    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = (int64_t)(deadline - mono_ns()) / 1000000;
        assert_true(left > 0);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    buf[got] = '\0';
    assert_string_equal(buf, expect);
}

static void default_colors_on_a_terminal_unless_no_color(void **state) {
    fixture_t *f = *state;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) {
        skip(); /* no pty in this environment */
        return;
    }
    char name[128];
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    assert_int_equal(ptsname_r(master, name, sizeof name), 0);
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(slave >= 0);
    struct termios t;
    assert_int_equal(tcgetattr(slave, &t), 0);
    cfmakeraw(&t);
    assert_int_equal(tcsetattr(slave, TCSANOW, &t), 0);
    unsetenv("NO_COLOR");
    hk_log_set_fd(f->log, slave);
    hk_logger_t *lg = hk_log_get(f->log, "Tty");
    hk_info(lg, "x");
    hk_log_flush(f->log);
    expect_bytes(master, GREEN_INFO ": Tty[0] x\n");

    setenv("NO_COLOR", "1", 1);
    hk_log_set_fd(f->log, slave); /* the console settings are recomputed */
    hk_info(lg, "y");
    hk_log_flush(f->log);
    expect_bytes(master, "info: Tty[0] y\n");
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Default"),
                     0);
    hk_info(lg, "z");
    hk_log_flush(f->log);
    expect_bytes(master, "info: Tty[0] z\n");
    unsetenv("NO_COLOR");

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:ColorBehavior=Disabled"),
                     0);
    hk_info(lg, "w");
    hk_log_flush(f->log);
    expect_bytes(master, "info: Tty[0] w\n");
    hk_log_set_fd(f->log, f->p[1]);
    close(slave);
    close(master);
}

/* ---- scopes ------------------------------------------------------------------------------ */

typedef struct other {
    hk_logger_t *lg;
    pthread_barrier_t *b;
} other_t;

static void *other_thread(void *p) {
    other_t *o = p;
    hk_log_scope_t s;
    hk_log_scope_begin(&s, "Other", "t2");
    hk_log_info(o->lg, "from other");
    pthread_barrier_wait(o->b); /* the main thread logs while this scope is pushed */
    pthread_barrier_wait(o->b);
    hk_log_scope_end(&s);
    return NULL;
}

static void include_scopes_nests_in_order_drops_popped_and_is_per_thread(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "S");
    hk_log_scope_t a, b;
    hk_log_scope_begin(&a, "A", 1);
    hk_log_scope_begin(&b, "B", "x");
    hk_log_info(lg, "without option");
    char *out = take(f);
    assert_string_equal(out, "info: S[0] without option\n");
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterOptions:IncludeScopes=true"), 0);
    hk_log_info(lg, "both");
    hk_log_scope_end(&b);
    hk_log_info(lg, "outer");
    hk_log_scope_end(&a);
    hk_log_info(lg, "none");
    out = take(f);
    assert_string_equal(out, "info: S[0] => A=1 => B=x both\n"
                             "info: S[0] => A=1 outer\n"
                             "info: S[0] none\n");
    free(out);

    /* another thread's scope stays on that thread */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    other_t o = {lg, &bar};
    pthread_t th;
    hk_log_scope_begin(&a, "Mine", (bool)true);
    assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
    pthread_barrier_wait(&bar);
    hk_log_info(lg, "from main");
    hk_log_flush(f->log);
    pthread_barrier_wait(&bar);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&bar);
    hk_log_scope_end(&a);
    out = take(f);
    assert_string_equal(out, "info: S[0] => Other=t2 from other\n"
                             "info: S[0] => Mine=true from main\n");
    free(out);

    /* json carries the scopes as objects, outermost first, with IncludeScopes (as .NET) */
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json"), 0);
    hk_log_scope_begin(&a, "A", 1);
    hk_log_info(lg, "no scopes");
    hk_log_scope_end(&a);
    out = take(f);
    assert_null(strstr(out, "\"Scopes\""));
    free(out);
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=json",
                               "Logging:Console:FormatterOptions:IncludeScopes=true"),
                     0);
    hk_log_scope_begin(&a, "A", 1);
    hk_log_scope_begin(&b, "B", "x");
    hk_log_info(lg, "j");
    hk_log_scope_end(&b);
    hk_log_scope_end(&a);
    out = take(f);
    json_t *j = parse_line(out);
    json_t *sc = json_object_get(j, "Scopes");
    assert_int_equal(json_array_size(sc), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(sc, 0), "A")), 1);
    assert_string_equal(jstr(json_array_get(sc, 1), "B"), "x");
    json_decref(j);
    free(out);
}

/* A multi-line message stays one line in every formatter. */
static void multi_line_messages_stay_one_line_in_every_formatter(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "L");
    static const char *const fmts[] = {"simple", "systemd", "json"};
    for (size_t i = 0; i < LEN(fmts); i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "Logging:Console:FormatterName=%s", fmts[i]);
        assert_int_equal(CONFIGURE(f->log, kv), 0);
        hk_log_info(lg, "a\r\nb {V}", "c\nd\x01");
        char *out = take(f);
        assert_one_line(out);
        if (i < 2)
            assert_non_null(strstr(out, "a\\r\\nb c\\nd\\x01\n"));
        else {
            json_t *j = parse_line(out);
            assert_string_equal(jstr(j, "Message"), "a\r\nb c\nd\x01");
            json_decref(j);
        }
        free(out);
    }
}

/* Every double renders as text that reads back as the same value (the fast
 * path for <= 6 decimals and the %.15g / %.17g path), and is short for
 * short decimals. */
static void doubles_render_shortest_and_read_back_exactly(void **state) {
    (void)state;
    double vals[] = {3.5, 0.1, 0.2, 1.0 / 3, 2e-5, 123456789.25, -42.125, 1e-7, 1e300, -1e-300,
                     5e-324, 999999999.999999, 1e9, 4503599627370497.0, -0.0, 0.0,
                     nextafter(0.1, 1), nextafter(3.5, 0), 0.000001, 0.0000015};
    unsigned seed = 12345;
    for (int i = 0; i < 20000 + (int)(sizeof vals / sizeof vals[0]); i++) {
        double d;
        if (i < (int)(sizeof vals / sizeof vals[0])) {
            d = vals[i];
        } else { /* random decimals with up to 7 digits after the point, and random bits */
            seed = seed * 1103515245u + 12345u;
            long long k = (long long)(seed % 2000000000u) - 1000000000;
            d = i % 2 ? (double)k / 1e6 : (double)k / 1e7 * 3.7;
        }
        hk_log_value_t v = hk_log_f64(d);
        char msg[128], names[64];
        hk_log_field_t f[1];
        size_t nf = 0;
        hk__render_template("{X}", &v, 1, msg, sizeof msg, f, 1, &nf, names, sizeof names);
        char *end = NULL;
        double back = strtod(msg, &end);
        if (*end || back != d || signbit(back) != signbit(d))
            fail_msg("%.17g rendered as \"%s\"", d, msg);
    }
    hk_log_value_t v = hk_log_f64(3.5);
    char msg[64], names[16];
    hk_log_field_t f[1];
    size_t nf;
    hk__render_template("{X}", &v, 1, msg, sizeof msg, f, 1, &nf, names, sizeof names);
    assert_string_equal(msg, "3.5");
    v = hk_log_f64(0.1);
    hk__render_template("{X}", &v, 1, msg, sizeof msg, f, 1, &nf, names, sizeof names);
    assert_string_equal(msg, "0.1");
    v = hk_log_f64(1.0 / 3);
    hk__render_template("{X}", &v, 1, msg, sizeof msg, f, 1, &nf, names, sizeof names);
    assert_string_equal(msg, "0.33333333333333331"); /* 15 digits would not read back */
}

/* Random strings (plain runs of every length, specials at every offset, so
 * the eight-bytes-at-a-time scan meets each boundary) decode back exactly. */
static void json_string_round_trips_random_bytes_at_every_alignment(void **state) {
    (void)state;
    static const unsigned char pool[] = {'a', 'Z', ' ', '~', '"', '\\', 0x01, 0x1f, 0x7f,
                                         0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff};
    unsigned seed = 7;
    char in[80];
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % 64, plain_until = (seed >> 16) % 72;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly plain ASCII before plain_until, anything after */
            in[i] = (char)(i < plain_until ? 'a' + (seed >> 16) % 26 : pool[(seed >> 16) % sizeof pool]);
        }
        in[n] = '\0';
        hk__buf_t b = {0};
        hk__json_string(&b, in, n);
        json_error_t err;
        json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &err);
        if (!j || !json_is_string(j))
            fail_msg("not a JSON string: %s (%s)", b.p, err.text);
        char *want = sanitized(in);
        if (strcmp(json_string_value(j), want) != 0)
            fail_msg("round trip differs for input %zu bytes: %s", n, b.p);
        free(want);
        json_decref(j);
        hk__buf_free(&b);
    }
}

int main(void) {
    /* a fixed zone with a half-hour offset for the local-time tests */
    setenv("TZ", "IST-5:30", 1);
    tzset();
    unsetenv("NO_COLOR");
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_golden_line_for_every_level),
        cmocka_unit_test(systemd_golden_line_carries_each_levels_priority),
        cmocka_unit_test(format_record_rejects_unknown_formatters_and_truncates_short_buffers),
        cmocka_unit_test(text_lines_escape_control_bytes_so_each_message_is_one_line),
        cmocka_unit_test(json_line_has_the_dotnet_shape),
        cmocka_unit_test(json_stays_valid_for_control_bytes_quotes_and_invalid_utf8),
        cmocka_unit_test(json_hole_names_equal_after_replacement_are_not_duplicated),
        cmocka_unit_test(timestamp_format_dotnet_tokens_in_utc_and_local_time),
        cmocka_unit_test(doubles_render_shortest_and_read_back_exactly),
        cmocka_unit_test(json_string_round_trips_random_bytes_at_every_alignment),
        T(templates_bind_holes_by_position_with_every_value_type),
        T(template_escapes_missing_and_surplus_arguments_render_visibly),
        T(duplicate_hole_names_and_a_hole_named_message_keep_json_valid),
        T(real_log_json_lines_parse_for_hostile_categories_names_and_values),
        T(console_formatters_write_golden_lines_to_the_fd),
        T(timestamp_format_from_configuration_and_bad_format_names_the_key),
        T(color_behavior_enabled_disabled_and_default_on_a_pipe),
        T(default_colors_on_a_terminal_unless_no_color),
        T(include_scopes_nests_in_order_drops_popped_and_is_per_thread),
        T(multi_line_messages_stay_one_line_in_every_formatter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
