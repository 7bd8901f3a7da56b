/*
 * Unit tests for the minimal logger (src/log/log.c): the rendered line and
 * record, level filtering from Logging:LogLevel, the macros' lazy arguments,
 * truncation and escaping, fd and sink output, concurrent writers (one whole
 * line per message), level names, and every failing allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "testutil.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ADD_ARGS(c, ...)                                                                           \
    hk_config_add_args((c), (int)LEN(((char *const[]){"prog", __VA_ARGS__})),                      \
                       (char *const[]){"prog", __VA_ARGS__})

/* ---- a sink that keeps every record field --------------------------------- */

typedef struct rec {
    hk_log_level_t level;
    char *category;
    int event_id;
    char *message;
    char *line;
    size_t len;
} rec_t;

typedef struct fixture {
    hk_log_t *log;
    rec_t rec[64];
    int n;
} fixture_t;

static void record_sink(const hk_log_record_t *r, void *data) {
    fixture_t *f = data;
    /* The line is NUL-terminated at len and holds exactly one '\n', at the end. */
    if (f->n == (int)LEN(f->rec) || strlen(r->line) != r->len)
        fail_msg("record %d: bad line or too many records", f->n);
    f->rec[f->n++] = (rec_t){r->level,   strdup(r->category), r->event_id,
                             strdup(r->message), strdup(r->line), r->len};
}

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || hk__log_new(&f->log) < 0)
        return -1;
    hk_log_set_sink(f->log, record_sink, f);
    *state = f;
    return 0;
}

static void clear_records(fixture_t *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->rec[i].category);
        free(f->rec[i].message);
        free(f->rec[i].line);
    }
    f->n = 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    failalloc_uninstall();
    clear_records(f);
    hk__log_free(f->log);
    free(f);
    return 0;
}

/* Applies Logging:LogLevel settings given as "Key=Level" pairs (relative keys). */
static int configure(hk_log_t *log, const char *const *pairs, size_t n) {
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    for (size_t i = 0; i < n; i++) {
        char key[128];
        const char *eq = strchr(pairs[i], '=');
        snprintf(key, sizeof key, "Logging:LogLevel:%.*s", (int)(eq - pairs[i]), pairs[i]);
        assert_int_equal(hk_config_set(c, key, eq + 1), 0);
    }
    int rc = hk__log_configure(log, c);
    hk_config_free(c);
    return rc;
}
#define CONFIGURE(log, ...)                                                                        \
    configure((log), (const char *const[]){__VA_ARGS__}, LEN(((const char *const[]){__VA_ARGS__})))

/* Every level at or above min is enabled, every one below is not. */
static void expect_min_level(hk_logger_t *lg, hk_log_level_t min) {
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++) {
        if (hk_logger_enabled(lg, (hk_log_level_t)l) != (l >= (int)min))
            fail_msg("%s: level %s %s", hk_logger_category(lg), hk_log_level_tag((hk_log_level_t)l),
                     l >= (int)min ? "should be enabled" : "should be disabled");
    }
}

/* ---- line format ---------------------------------------------------------- */

static void line_has_level_tag_category_event_id_and_message(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Default=Trace"), 0);
    hk_logger_t *lg = hk_log_get(f->log, "Cat");
    static const char *const tags[] = {"trce", "dbug", "info", "warn", "fail", "crit"};
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++)
        hk_log(lg, (hk_log_level_t)l, "message %d", l);
    assert_int_equal(f->n, 6);
    for (int l = 0; l < 6; l++) {
        char line[64], msg[32];
        snprintf(line, sizeof line, "%s: Cat[0] message %d\n", tags[l], l);
        snprintf(msg, sizeof msg, "message %d", l);
        assert_int_equal(f->rec[l].level, l);
        assert_string_equal(f->rec[l].category, "Cat");
        assert_int_equal(f->rec[l].event_id, 0);
        assert_string_equal(f->rec[l].message, msg);
        assert_string_equal(f->rec[l].line, line);
        assert_int_equal(f->rec[l].len, strlen(line));
    }
}

static void level_macros_write_at_their_level(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Default=Trace"), 0);
    hk_logger_t *lg = hk_log_get(f->log, "M");
    hk_trace(lg, "t");
    hk_debug(lg, "d");
    hk_info(lg, "i");
    hk_warn(lg, "w");
    hk_error(lg, "e");
    hk_critical(lg, "c");
    static const char *const lines[] = {"trce: M[0] t\n", "dbug: M[0] d\n", "info: M[0] i\n",
                                        "warn: M[0] w\n", "fail: M[0] e\n", "crit: M[0] c\n"};
    assert_int_equal(f->n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(f->rec[i].line, lines[i]);
}

static void log_event_puts_the_event_id_in_brackets(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "MyApp.Disk");
    hk_log_event(lg, HK_LOG_WARN, 42, "disk %s at %d%%", "full", 97);
    hk_log_event(lg, HK_LOG_ERROR, -1, "negative id");
    hk_logger_write(lg, HK_LOG_INFO, 7, "direct");
    assert_int_equal(f->n, 3);
    assert_string_equal(f->rec[0].line, "warn: MyApp.Disk[42] disk full at 97%\n");
    assert_int_equal(f->rec[0].event_id, 42);
    assert_int_equal(f->rec[0].level, HK_LOG_WARN);
    assert_string_equal(f->rec[0].message, "disk full at 97%");
    assert_string_equal(f->rec[1].line, "fail: MyApp.Disk[-1] negative id\n");
    assert_int_equal(f->rec[1].event_id, -1);
    assert_string_equal(f->rec[2].line, "info: MyApp.Disk[7] direct\n");
}

/* ---- filtering ------------------------------------------------------------ */

static void default_minimum_level_is_information(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "Cat");
    expect_min_level(lg, HK_LOG_INFO);
    hk_trace(lg, "t");
    hk_debug(lg, "d");
    hk_logger_write(lg, HK_LOG_DEBUG, 0, "direct debug"); /* the function checks too */
    hk_info(lg, "i");
    assert_int_equal(f->n, 1);
    assert_string_equal(f->rec[0].line, "info: Cat[0] i\n");
}

static void configured_default_level_applies_to_every_category(void **state) {
    fixture_t *f = *state;
    hk_logger_t *a = hk_log_get(f->log, "A"), *b = hk_log_get(f->log, "B.C");
    assert_int_equal(CONFIGURE(f->log, "Default=Debug"), 0);
    expect_min_level(a, HK_LOG_DEBUG);
    expect_min_level(b, HK_LOG_DEBUG);
    hk_debug(a, "d");
    hk_trace(a, "t");
    assert_int_equal(f->n, 1);
    assert_string_equal(f->rec[0].line, "dbug: A[0] d\n");

    assert_int_equal(CONFIGURE(f->log, "Default=Warning"), 0);
    expect_min_level(a, HK_LOG_WARN);
    expect_min_level(b, HK_LOG_WARN);
    hk_info(b, "i");
    hk_warn(b, "w");
    assert_int_equal(f->n, 2);
    assert_string_equal(f->rec[1].line, "warn: B.C[0] w\n");

    assert_int_equal(CONFIGURE(f->log, "default=NONE"), 0);
    expect_min_level(a, HK_LOG_NONE);
    hk_critical(a, "c");
    hk_logger_write(b, HK_LOG_CRITICAL, 0, "direct");
    assert_int_equal(f->n, 2);
}

static void longest_matching_category_prefix_wins(void **state) {
    fixture_t *f = *state;
    /* The longer rule is set first: order must not matter. */
    assert_int_equal(CONFIGURE(f->log, "MyApp.Worker=Trace", "MyApp=Warning", "Default=Error",
                               "Microsoft=None", "MyApp.Worker.Noisy=Critical"),
                     0);
    static const struct {
        const char *category;
        hk_log_level_t min;
    } cases[] = {
        {"MyApp", HK_LOG_WARN},
        {"MyApp.Api", HK_LOG_WARN},
        {"MyApplication", HK_LOG_WARN}, /* a plain string prefix, as in .NET */
        {"MyApp.Worker", HK_LOG_TRACE},
        {"MyApp.Worker.Jobs", HK_LOG_TRACE},
        {"MyApp.Worker.Noisy.Sub", HK_LOG_CRITICAL},
        {"Microsoft.Hosting", HK_LOG_NONE},
        {"My", HK_LOG_ERROR},
        {"Other", HK_LOG_ERROR},
        {"", HK_LOG_ERROR},
    };
    for (size_t i = 0; i < LEN(cases); i++)
        expect_min_level(hk_log_get(f->log, cases[i].category), cases[i].min);
    hk_trace(hk_log_get(f->log, "MyApp.Worker.Jobs"), "job %d", 1);
    hk_info(hk_log_get(f->log, "MyApp.Api"), "dropped");
    hk_warn(hk_log_get(f->log, "MyApp.Api"), "kept");
    assert_int_equal(f->n, 2);
    assert_string_equal(f->rec[0].line, "trce: MyApp.Worker.Jobs[0] job 1\n");
    assert_string_equal(f->rec[1].line, "warn: MyApp.Api[0] kept\n");
}

static void category_prefixes_match_case_insensitively(void **state) {
    fixture_t *f = *state;
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_int_equal(hk_config_set(c, "LOGGING:LOGLEVEL:DEFAULT", "debug"), 0);
    assert_int_equal(hk_config_set(c, "logging:loglevel:myapp.worker", "eRRoR"), 0);
    assert_int_equal(hk__log_configure(f->log, c), 0);
    expect_min_level(hk_log_get(f->log, "MyApp.Worker"), HK_LOG_ERROR);
    expect_min_level(hk_log_get(f->log, "MYAPP.WORKER.X"), HK_LOG_ERROR);
    expect_min_level(hk_log_get(f->log, "MyApp"), HK_LOG_DEBUG);
    hk_config_free(c);
}

static void reconfiguring_updates_loggers_created_earlier(void **state) {
    fixture_t *f = *state;
    hk_logger_t *w = hk_log_get(f->log, "MyApp.Worker");
    hk_logger_t *o = hk_log_get(f->log, "Other");
    expect_min_level(w, HK_LOG_INFO);
    assert_int_equal(CONFIGURE(f->log, "MyApp=Trace", "Default=Warning"), 0);
    expect_min_level(w, HK_LOG_TRACE);
    expect_min_level(o, HK_LOG_WARN);
    /* A new configuration replaces the old rules entirely. */
    assert_int_equal(CONFIGURE(f->log, "Other=Critical"), 0);
    expect_min_level(w, HK_LOG_INFO);
    expect_min_level(o, HK_LOG_CRITICAL);
    /* An empty (or NULL) configuration goes back to Information everywhere. */
    hk_config_t *empty = NULL;
    assert_int_equal(hk_config_new(&empty), 0);
    assert_int_equal(hk__log_configure(f->log, empty), 0);
    expect_min_level(o, HK_LOG_INFO);
    assert_int_equal(CONFIGURE(f->log, "Default=None"), 0);
    assert_int_equal(hk__log_configure(f->log, NULL), 0);
    expect_min_level(o, HK_LOG_INFO);
    hk_config_free(empty);
    /* A logger created after configuring gets the rules too. */
    assert_int_equal(CONFIGURE(f->log, "New=Debug"), 0);
    expect_min_level(hk_log_get(f->log, "New.One"), HK_LOG_DEBUG);
}

static void keys_outside_the_loglevel_section_are_ignored(void **state) {
    fixture_t *f = *state;
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_int_equal(hk_config_set(c, "Logging:LogLevel:", "Verbose"), 0); /* no category */
    assert_int_equal(hk_config_set(c, "Logging:LogLevel", "Verbose"), 0);
    assert_int_equal(hk_config_set(c, "Logging:Console:Levels:Default", "Trace"), 0);
    assert_int_equal(hk_config_set(c, "Default", "Trace"), 0);
    assert_int_equal(hk_config_set(c, "Logging:LogLevel:Quiet", ""), 0); /* empty: Information */
    assert_int_equal(hk__log_configure(f->log, c), 0);
    assert_int_equal(hk_config_error_count(c), 0);
    expect_min_level(hk_log_get(f->log, "Any"), HK_LOG_INFO);
    expect_min_level(hk_log_get(f->log, "Quiet"), HK_LOG_INFO);
    hk_config_free(c);
}

static void invalid_level_is_a_config_error_naming_the_key(void **state) {
    fixture_t *f = *state;
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    assert_int_equal(ADD_ARGS(c, "--Logging:LogLevel:Default=Verbose",
                              "--Logging:LogLevel:Good=Debug", "--Logging:LogLevel:MyApp=Info"),
                     0);
    assert_int_equal(hk__log_configure(f->log, c), -EINVAL);
    assert_int_equal(hk_config_error_count(c), 2);
    assert_string_equal(hk_config_error(c, 0),
                        "Logging:LogLevel:Default: \"Verbose\" is not one of Trace, Debug, "
                        "Information, Warning, Error, Critical, None (from command line)");
    assert_string_equal(hk_config_error(c, 1),
                        "Logging:LogLevel:MyApp: \"Info\" is not one of Trace, Debug, "
                        "Information, Warning, Error, Critical, None (from command line)");
    /* The valid rules still apply; the bad ones keep Information. */
    expect_min_level(hk_log_get(f->log, "Good"), HK_LOG_DEBUG);
    expect_min_level(hk_log_get(f->log, "MyApp"), HK_LOG_INFO);
    expect_min_level(hk_log_get(f->log, "Other"), HK_LOG_INFO);
    hk_config_free(c);
}

/* ---- macros and loggers --------------------------------------------------- */

static int bump(int *counter) { return ++*counter; }

static void disabled_macro_does_not_evaluate_its_arguments(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "Lazy");
    int evaluated = 0;
    hk_trace(lg, "%d", bump(&evaluated));
    hk_debug(lg, "%d %d", bump(&evaluated), bump(&evaluated));
    hk_log_event(lg, HK_LOG_DEBUG, bump(&evaluated), "%d", bump(&evaluated));
    hk_log(lg, HK_LOG_TRACE, "%d", ++evaluated);
    assert_int_equal(evaluated, 0);
    assert_int_equal(f->n, 0);
    hk_info(lg, "%d", bump(&evaluated));
    assert_int_equal(evaluated, 1);
    assert_int_equal(CONFIGURE(f->log, "Lazy=None"), 0);
    hk_critical(lg, "%d", bump(&evaluated));
    assert_int_equal(evaluated, 1);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->rec[0].line, "info: Lazy[0] 1\n");
}

static hk_logger_t *counted_get(hk_log_t *log, int *calls) {
    ++*calls;
    return hk_log_get(log, "Once");
}

static void macro_evaluates_the_logger_expression_once(void **state) {
    fixture_t *f = *state;
    int calls = 0;
    hk_info(counted_get(f->log, &calls), "x");
    assert_int_equal(calls, 1);
    hk_debug(counted_get(f->log, &calls), "y"); /* disabled, still evaluated once */
    assert_int_equal(calls, 2);
    assert_int_equal(f->n, 1);
}

static void log_get_returns_the_same_logger_for_the_same_category(void **state) {
    fixture_t *f = *state;
    hk_logger_t *a = hk_log_get(f->log, "MyApp.Worker");
    char name[] = "MyApp.Worker"; /* another buffer, same text */
    assert_non_null(a);
    assert_ptr_equal(hk_log_get(f->log, name), a);
    hk_logger_t *b = hk_log_get(f->log, "MyApp.Other");
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(hk_log_get(f->log, "MyApp.Worker"), a);
    assert_string_equal(hk_logger_category(a), "MyApp.Worker");
    assert_string_equal(hk_logger_category(b), "MyApp.Other");
    /* The logger keeps its own copy of the name. */
    name[0] = 'X';
    assert_string_equal(hk_logger_category(a), "MyApp.Worker");
}

static void vwrite_null(hk_logger_t *lg, const char *fmt, ...) HK_PRINTF(2, 3);
static void vwrite_null(hk_logger_t *lg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hk_logger_vwrite(lg, HK_LOG_CRITICAL, 0, fmt, ap);
    va_end(ap);
}

static void null_logger_and_null_log_are_harmless(void **state) {
    fixture_t *f = *state;
    hk_logger_t *none = NULL;
    int evaluated = 0;
    hk_critical(none, "%d", bump(&evaluated));
    hk_log_event(none, HK_LOG_CRITICAL, 1, "%d", bump(&evaluated));
    assert_int_equal(evaluated, 0);
    hk_logger_write(NULL, HK_LOG_CRITICAL, 0, "x");
    vwrite_null(NULL, "x %d", 1);
    assert_false(hk_logger_enabled(NULL, HK_LOG_CRITICAL));
    assert_null(hk_logger_category(NULL));
    assert_null(hk_log_get(NULL, "Cat"));
    assert_null(hk_log_get(f->log, NULL));
    hk_log_set_sink(NULL, record_sink, f);
    hk_log_set_fd(NULL, 2);
    hk_log_flush(NULL);
    hk__log_free(NULL);
    hk_log_flush(f->log);
    assert_int_equal(f->n, 0);
}

static void none_or_invalid_level_writes_nothing(void **state) {
    fixture_t *f = *state;
    assert_int_equal(CONFIGURE(f->log, "Default=Trace"), 0);
    hk_logger_t *lg = hk_log_get(f->log, "Cat");
    assert_true(hk_logger_enabled(lg, HK_LOG_NONE)); /* the check alone passes ... */
    hk_log(lg, HK_LOG_NONE, "none");                 /* ... but nothing is written */
    hk_logger_write(lg, (hk_log_level_t)7, 0, "seven");
    hk_logger_write(lg, (hk_log_level_t)-1, 0, "minus one");
    hk_logger_write(lg, (hk_log_level_t)1000, 0, "big");
    assert_int_equal(f->n, 0);
}

/* ---- long and multi-line messages ----------------------------------------- */

static char *repeat(char ch, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void long_message_is_truncated_and_ends_with_ellipsis(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "Cat");
    char *fits = repeat('a', 8191), *over = repeat('b', 8192), *huge = repeat('c', 100000);
    hk_info(lg, "%s", fits);
    hk_info(lg, "%s", over);
    hk_info(lg, "%s!", huge);
    assert_int_equal(f->n, 3);

    /* 8191 characters fit as they are. */
    assert_string_equal(f->rec[0].message, fits);
    assert_int_equal(f->rec[0].len, strlen("info: Cat[0] ") + 8191 + 1);

    /* One more and the message is cut to 8191 characters, the last three "...". */
    for (int i = 1; i < 3; i++) {
        const char *m = f->rec[i].message;
        assert_int_equal(strlen(m), 8191);
        assert_string_equal(m + 8188, "...");
        assert_int_equal(strspn(m, i == 1 ? "b" : "c"), 8188);
        assert_int_equal(f->rec[i].len, strlen("info: Cat[0] ") + 8191 + 1);
        assert_string_equal(f->rec[i].line + f->rec[i].len - 4, "...\n");
        assert_memory_equal(f->rec[i].line, "info: Cat[0] ", 13);
    }
    free(fits);
    free(over);
    free(huge);
}

static void line_breaks_are_escaped_so_each_message_is_one_line(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "Cat");
    hk_info(lg, "first\nsecond\r\nthird\n");
    hk_info(lg, "\n");
    assert_int_equal(f->n, 2);
    assert_string_equal(f->rec[0].line, "info: Cat[0] first\\nsecond\\r\\nthird\\n\n");
    assert_string_equal(f->rec[0].message, "first\nsecond\r\nthird\n"); /* message as given */
    assert_string_equal(f->rec[1].line, "info: Cat[0] \\n\n");

    /* A maximal message made only of line breaks still becomes one complete line. */
    char *breaks = repeat('\n', 9000);
    hk_info(lg, "%s", breaks);
    assert_int_equal(f->n, 3);
    const rec_t *r = &f->rec[2];
    assert_ptr_equal(strchr(r->line, '\n'), r->line + r->len - 1);
    assert_null(strchr(r->line, '\r'));
    free(breaks);
}

static void very_long_category_stays_on_one_line(void **state) {
    fixture_t *f = *state;
    char *cat = repeat('K', 20000);
    hk_logger_t *lg = hk_log_get(f->log, cat);
    assert_non_null(lg);
    hk_info(lg, "message");
    assert_int_equal(f->n, 1);
    const rec_t *r = &f->rec[0];
    assert_string_equal(r->category, cat);
    assert_memory_equal(r->line, "info: KKKK", 10);
    assert_true(r->len > 20000);
    assert_ptr_equal(strchr(r->line, '\n'), r->line + r->len - 1);
    assert_non_null(strstr(r->line, "K[0] message\n"));
    free(cat);
}

/* ---- fd output ------------------------------------------------------------ */

/* Reads exactly n bytes (the writes already happened) and checks the pipe is then empty. */
static void expect_pipe_content(int rfd, const char *expect) {
    size_t n = strlen(expect), got = 0;
    char *buf = malloc(n + 2);
    assert_non_null(buf);
    while (got < n) {
        ssize_t r = read(rfd, buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    buf[got] = '\0';
    assert_string_equal(buf, expect);
    int flags = fcntl(rfd, F_GETFL);
    fcntl(rfd, F_SETFL, flags | O_NONBLOCK);
    assert_int_equal(read(rfd, buf, 1), -1);
    assert_int_equal(errno, EAGAIN);
    fcntl(rfd, F_SETFL, flags);
    free(buf);
}

static void set_fd_writes_each_line_to_the_descriptor(void **state) {
    fixture_t *f = *state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    hk_log_set_fd(f->log, p[1]);
    hk_logger_t *lg = hk_log_get(f->log, "Pipe");
    hk_info(lg, "hello %s", "pipe");
    hk_log_event(lg, HK_LOG_CRITICAL, 9, "two\nlines");
    hk_debug(lg, "filtered");
    expect_pipe_content(p[0], "info: Pipe[0] hello pipe\ncrit: Pipe[9] two\\nlines\n");
    assert_int_equal(f->n, 0); /* set_fd replaced the sink */

    /* A sink takes over; clearing it goes back to the same descriptor. */
    hk_log_set_sink(f->log, record_sink, f);
    hk_info(lg, "to the sink");
    hk_log_set_sink(f->log, NULL, NULL);
    hk_info(lg, "back to the pipe");
    expect_pipe_content(p[0], "info: Pipe[0] back to the pipe\n");
    assert_int_equal(f->n, 1);
    assert_string_equal(f->rec[0].line, "info: Pipe[0] to the sink\n");
    hk_log_set_sink(f->log, record_sink, f); /* nothing reaches the closed pipe */
    close(p[0]);
    close(p[1]);
}

/* ---- concurrency ---------------------------------------------------------- */

enum { NTHREADS = 8, NMSG = 2000 };

typedef struct writer {
    hk_log_t *log;
    pthread_barrier_t *start;
    int id;
} writer_t;

/* Payload length of message m of thread t (its bytes are 'a' + t); some exceed PIPE_BUF. */
static size_t payload_len(int t, int m) {
    return m % 400 == 7 ? 6000 : (size_t)((m * 37 + t) % 200);
}

static void *write_lines(void *p) {
    writer_t *w = p;
    char cat[32];
    snprintf(cat, sizeof cat, "Stress.%d", w->id);
    hk_logger_t *lg = hk_log_get(w->log, cat);
    char *buf = malloc(6001);
    pthread_barrier_wait(w->start); /* before any return: the others wait for everyone */
    if (!buf)
        return NULL;
    for (int m = 0; m < NMSG; m++) {
        size_t n = payload_len(w->id, m);
        memset(buf, 'a' + w->id, n);
        buf[n] = '\0';
        hk_log_event(lg, HK_LOG_INFO, w->id, "t=%d seq=%d len=%zu %s", w->id, m, n, buf);
    }
    free(buf);
    return NULL;
}

typedef struct reader {
    int fd;
    char *buf;
    size_t len, cap;
} reader_t;

static void *read_all(void *p) {
    reader_t *r = p;
    for (;;) {
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? r->cap * 2 : 1 << 20;
            r->buf = realloc(r->buf, r->cap);
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->buf[r->len] = '\0';
    return NULL;
}

static void run_writers(hk_log_t *log) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    writer_t w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (writer_t){log, &start, i};
        assert_int_equal(pthread_create(&th[i], NULL, write_lines, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
}

/* Every line is whole, and each thread's NMSG lines all arrive, in order. */
static void check_stress_lines(const char *text) {
    int next[NTHREADS] = {0};
    size_t lines = 0;
    for (const char *s = text; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl)
            fail_msg("unterminated line %zu", lines);
        int cat, id, t, seq, used = -1;
        size_t n;
        if (sscanf(s, "info: Stress.%d[%d] t=%d seq=%d len=%zu%n", &cat, &id, &t, &seq, &n,
                   &used) != 5 ||
            used < 0 || s[used] != ' ')
            fail_msg("line %zu is mangled: %.80s", lines, s);
        if (t < 0 || t >= NTHREADS || cat != t || id != t || seq != next[t] ||
            n != payload_len(t, seq))
            fail_msg("line %zu: thread %d seq %d (expected %d), len %zu", lines, t, seq,
                     t >= 0 && t < NTHREADS ? next[t] : -1, n);
        const char *pl = s + used + 1;
        if ((size_t)(nl - pl) != n)
            fail_msg("line %zu: payload of %td bytes, expected %zu", lines, nl - pl, n);
        for (size_t i = 0; i < n; i++)
            if (pl[i] != 'a' + t)
                fail_msg("line %zu: foreign byte in payload", lines);
        next[t]++;
        lines++;
        s = nl + 1;
    }
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(next[t], NMSG);
    assert_int_equal(lines, (size_t)NTHREADS * NMSG);
}

static void concurrent_writers_to_a_pipe_never_interleave_or_lose_lines(void **state) {
    fixture_t *f = *state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    hk_log_set_fd(f->log, p[1]);
    reader_t r = {p[0], NULL, 0, 0};
    pthread_t rt;
    assert_int_equal(pthread_create(&rt, NULL, read_all, &r), 0);
    run_writers(f->log);
    hk_log_flush(f->log); /* queued lines reach the pipe before it closes */
    close(p[1]); /* the reader sees EOF once it has drained everything */
    pthread_join(rt, NULL);
    close(p[0]);
    hk_log_set_sink(f->log, record_sink, f);
    check_stress_lines(r.buf);
    free(r.buf);
}

typedef struct serial_sink {
    atomic_int in_flight;
    atomic_bool overlapped;
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
} serial_sink_t;

static void serial_sink(const hk_log_record_t *rec, void *data) {
    serial_sink_t *s = data;
    if (atomic_fetch_add(&s->in_flight, 1) != 0)
        atomic_store(&s->overlapped, true);
    pthread_mutex_lock(&s->mu);
    if (s->len + rec->len + 1 > s->cap) {
        s->cap = (s->len + rec->len + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, rec->line, rec->len);
    s->len += rec->len;
    s->buf[s->len] = '\0';
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void sink_is_never_called_concurrently(void **state) {
    fixture_t *f = *state;
    serial_sink_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    hk_log_set_sink(f->log, serial_sink, &s);
    run_writers(f->log);
    hk_log_set_sink(f->log, record_sink, f);
    assert_false(atomic_load(&s.overlapped));
    check_stress_lines(s.buf);
    free(s.buf);
}

typedef struct churn {
    hk_log_t *log;
    hk_config_t *cfg[2];
    pthread_barrier_t *start;
} churn_t;

static void *reconfigure_repeatedly(void *p) {
    churn_t *c = p;
    pthread_barrier_wait(c->start);
    for (int i = 0; i < 400; i++)
        if (hk__log_configure(c->log, c->cfg[i & 1]) != 0)
            return (void *)1;
    return NULL;
}

typedef struct counting {
    atomic_int n;
} counting_t;

static void counting_sink(const hk_log_record_t *rec, void *data) {
    (void)rec;
    atomic_fetch_add(&((counting_t *)data)->n, 1);
}

static void *log_while_reconfigured(void *p) {
    churn_t *c = p;
    pthread_barrier_wait(c->start);
    for (int i = 0; i < 1000; i++) {
        char cat[32];
        snprintf(cat, sizeof cat, "Churn.%d", i % 50); /* creates loggers meanwhile */
        hk_logger_t *lg = hk_log_get(c->log, cat);
        hk_debug(lg, "debug %d", i);
        hk_info(lg, "info %d", i);
    }
    return NULL;
}

static void reconfiguring_while_other_threads_log_is_race_free(void **state) {
    fixture_t *f = *state;
    churn_t c = {f->log, {NULL, NULL}, NULL};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hk_config_new(&c.cfg[i]), 0);
        assert_int_equal(hk_config_set(c.cfg[i], "Logging:LogLevel:Churn", i ? "Warning" : "Debug"),
                         0);
    }
    counting_t count = {0};
    hk_log_set_sink(f->log, counting_sink, &count);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    c.start = &start;
    pthread_t th[4];
    assert_int_equal(pthread_create(&th[0], NULL, reconfigure_repeatedly, &c), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, log_while_reconfigured, &c), 0);
    void *rc = NULL;
    pthread_join(th[0], &rc);
    for (int i = 1; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    hk_log_set_sink(f->log, record_sink, f);
    assert_null(rc);
    assert_true(atomic_load(&count.n) <= 3 * 2000);
    /* The last configuration (Warning, i = 399) holds for every logger. */
    for (int i = 0; i < 50; i++) {
        char cat[32];
        snprintf(cat, sizeof cat, "Churn.%d", i);
        expect_min_level(hk_log_get(f->log, cat), HK_LOG_WARN);
    }
    hk_config_free(c.cfg[0]);
    hk_config_free(c.cfg[1]);
}

/* ---- level names ---------------------------------------------------------- */

static void level_parse_accepts_every_name_in_any_case_only(void **state) {
    (void)state;
    static const struct {
        const char *text;
        hk_log_level_t level;
    } ok[] = {{"Trace", HK_LOG_TRACE},     {"Debug", HK_LOG_DEBUG},
              {"Information", HK_LOG_INFO}, {"Warning", HK_LOG_WARN},
              {"Error", HK_LOG_ERROR},     {"Critical", HK_LOG_CRITICAL},
              {"None", HK_LOG_NONE},       {"trace", HK_LOG_TRACE},
              {"INFORMATION", HK_LOG_INFO}, {"wArNiNg", HK_LOG_WARN},
              {"none", HK_LOG_NONE}};
    for (size_t i = 0; i < LEN(ok); i++) {
        hk_log_level_t l = (hk_log_level_t)99;
        assert_int_equal(hk_log_level_parse(ok[i].text, &l), 0);
        assert_int_equal(l, ok[i].level);
    }
    static const char *const bad[] = {"",     "Info", "Warn", "Fail", "Crit", "trce",
                                      "Verbose", " Debug", "Debug ", "0", "2", "Informational"};
    for (size_t i = 0; i < LEN(bad); i++) {
        hk_log_level_t l = (hk_log_level_t)99;
        assert_int_equal(hk_log_level_parse(bad[i], &l), -EINVAL);
        assert_int_equal(l, 99); /* untouched */
    }
    hk_log_level_t l = HK_LOG_WARN;
    assert_int_equal(hk_log_level_parse(NULL, &l), -EINVAL);
    assert_int_equal(l, HK_LOG_WARN);
    assert_int_equal(hk_log_level_parse("Debug", NULL), -EINVAL);
}

static void level_tag_names_each_level_and_marks_others(void **state) {
    (void)state;
    assert_string_equal(hk_log_level_tag(HK_LOG_TRACE), "trce");
    assert_string_equal(hk_log_level_tag(HK_LOG_DEBUG), "dbug");
    assert_string_equal(hk_log_level_tag(HK_LOG_INFO), "info");
    assert_string_equal(hk_log_level_tag(HK_LOG_WARN), "warn");
    assert_string_equal(hk_log_level_tag(HK_LOG_ERROR), "fail");
    assert_string_equal(hk_log_level_tag(HK_LOG_CRITICAL), "crit");
    assert_string_equal(hk_log_level_tag(HK_LOG_NONE), "????");
    assert_string_equal(hk_log_level_tag((hk_log_level_t)-1), "????");
    assert_string_equal(hk_log_level_tag((hk_log_level_t)7), "????");
    assert_string_equal(hk_log_level_tag((hk_log_level_t)1000000), "????");
}

/* ---- out of memory -------------------------------------------------------- */

static void log_survives_every_failing_allocation(void **state) {
    fixture_t *f = *state;
    failalloc_install();
    for (int persistent = 0; persistent < 2; persistent++) {
        /* hk__log_new: -ENOMEM and the output untouched, or a working log. */
        long n;
        for (n = 1;; n++) {
            hk_log_t *sentinel = (hk_log_t *)&n, *log = sentinel;
            failalloc_set(n, persistent);
            int rc = hk__log_new(&log);
            long used = failalloc_count();
            failalloc_set(0, false);
            if (rc == 0) {
                hk__log_free(log);
                if (used < n)
                    break;
            } else {
                assert_int_equal(rc, -ENOMEM);
                assert_ptr_equal(log, sentinel);
            }
        }
        assert_true(n > 1);

        /* hk_log_get: NULL (a harmless logger) or the logger; a later call works. */
        for (n = 1;; n++) {
            hk_log_t *log = NULL;
            assert_int_equal(hk__log_new(&log), 0);
            hk_log_set_sink(log, record_sink, f);
            failalloc_set(n, persistent);
            hk_logger_t *lg = hk_log_get(log, "Cat");
            long used = failalloc_count();
            failalloc_set(0, false);
            hk_info(lg, "maybe");
            hk_logger_t *again = hk_log_get(log, "Cat");
            assert_non_null(again);
            if (lg)
                assert_ptr_equal(lg, again);
            hk_info(again, "surely");
            hk__log_free(log);
            if (used < n) {
                assert_non_null(lg);
                break;
            }
        }
        assert_true(n > 1);
        assert_string_equal(f->rec[f->n - 1].line, "info: Cat[0] surely\n");
        clear_records(f);

        /* hk__log_configure: 0 or -ENOMEM; configuring again later applies fully. */
        hk_config_t *c = NULL;
        assert_int_equal(hk_config_new(&c), 0);
        assert_int_equal(ADD_ARGS(c, "--Logging:LogLevel:Default=Warning",
                                  "--Logging:LogLevel:A=Debug", "--Logging:LogLevel:A.B=Error",
                                  "--Logging:LogLevel:C=None"),
                         0);
        for (n = 1;; n++) {
            hk_log_t *log = NULL;
            assert_int_equal(hk__log_new(&log), 0);
            hk_logger_t *ab = hk_log_get(log, "A.B.C");
            failalloc_set(n, persistent);
            int rc = hk__log_configure(log, c);
            long used = failalloc_count();
            failalloc_set(0, false);
            assert_true(rc == 0 || rc == -ENOMEM);
            if (used < n)
                assert_int_equal(rc, 0);
            assert_int_equal(hk__log_configure(log, c), 0);
            expect_min_level(ab, HK_LOG_ERROR);
            expect_min_level(hk_log_get(log, "A"), HK_LOG_DEBUG);
            expect_min_level(hk_log_get(log, "C"), HK_LOG_NONE);
            expect_min_level(hk_log_get(log, "Z"), HK_LOG_WARN);
            hk__log_free(log);
            if (used < n)
                break;
        }
        assert_true(n > 1);
        assert_int_equal(hk_config_error_count(c), 0);
        hk_config_free(c);
    }
    failalloc_uninstall();
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(line_has_level_tag_category_event_id_and_message),
        T(level_macros_write_at_their_level),
        T(log_event_puts_the_event_id_in_brackets),
        T(default_minimum_level_is_information),
        T(configured_default_level_applies_to_every_category),
        T(longest_matching_category_prefix_wins),
        T(category_prefixes_match_case_insensitively),
        T(reconfiguring_updates_loggers_created_earlier),
        T(keys_outside_the_loglevel_section_are_ignored),
        T(invalid_level_is_a_config_error_naming_the_key),
        T(disabled_macro_does_not_evaluate_its_arguments),
        T(macro_evaluates_the_logger_expression_once),
        T(log_get_returns_the_same_logger_for_the_same_category),
        T(null_logger_and_null_log_are_harmless),
        T(none_or_invalid_level_writes_nothing),
        T(long_message_is_truncated_and_ends_with_ellipsis),
        T(line_breaks_are_escaped_so_each_message_is_one_line),
        T(very_long_category_stays_on_one_line),
        T(set_fd_writes_each_line_to_the_descriptor),
        T(concurrent_writers_to_a_pipe_never_interleave_or_lose_lines),
        T(sink_is_never_called_concurrently),
        T(reconfiguring_while_other_threads_log_is_race_free),
        T(level_parse_accepts_every_name_in_any_case_only),
        T(level_tag_names_each_level_and_marks_others),
        T(log_survives_every_failing_allocation),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
