/*
 * Unit tests for the log sinks (src/log/sinks.c and their wiring in
 * src/log/log.c): the file sink (lines, size rolling, reopen after an
 * external rename, unopenable paths), per-sink levels and programmatic
 * filters, custom sinks (validation, callbacks, never concurrent), the
 * native journald sink against a test datagram socket (fields, binary
 * values, memfd for large messages, abstract names) and JOURNAL_STREAM
 * detection of the console formatter.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/log.h"
#include "logtest.h"
#include "testutil.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixture: a log with its console on a pipe, and a temporary directory ---- */

struct sink_state;

typedef struct fixture {
    hk_log_t *log;
    int p[2];
    char dir[64];
    struct sink_state *sinks[2]; /* outlive the log: freed after it in teardown */
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (!f || hk__log_new(&f->log) < 0 || pipe2(f->p, O_CLOEXEC) < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/hk-logsinks-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    hk_log_set_fd(f->log, f->p[1]);
    *state = f;
    return 0;
}

static void remove_dir(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int teardown(void **state) {
    fixture_t *f = *state;
    hk__log_free(f->log);
    free(f->sinks[0]);
    free(f->sinks[1]);
    close(f->p[0]);
    close(f->p[1]);
    remove_dir(f->dir);
    free(f);
    return 0;
}



static char *console(fixture_t *f) {
    hk_log_flush(f->log);
    return drain(f->p[0]);
}

/* A file's content (malloc'd), or NULL when it does not exist. */
static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    fclose(fp);
    return b;
}

static void path_in(const fixture_t *f, const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", f->dir, name);
}

/* Skips the file sink's default timestamp ("2024-01-02T03:04:05.678+01:00 "). */
static const char *after_timestamp(const char *line) {
    int y, mo, d, h, mi, s, ms, oh, om, used = -1;
    char sign;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c%2d:%2d %n", &y, &mo, &d, &h, &mi, &s, &ms,
               &sign, &oh, &om, &used) != 10 ||
        used < 0 || (sign != '+' && sign != '-'))
        fail_msg("no timestamp at the start of: %.80s", line);
    return line + used;
}

/* ---- file sink -------------------------------------------------------------------- */

static void file_sink_writes_simple_and_json_lines(void **state) {
    fixture_t *f = *state;
    char path[128], kv[200];
    path_in(f, "app.log", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv), 0);
    hk_logger_t *lg = hk_log_get(f->log, "File.Test");
    hk_log_info(lg, "hello {N}", 1);
    hk_log_warn(lg, "two\nlines");
    hk_log_flush(f->log);
    char *text = slurp(path);
    assert_non_null(text);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(after_timestamp(text), "info: File.Test[0] hello 1");
    assert_string_equal(after_timestamp(nl + 1), "warn: File.Test[0] two\\nlines\n");
    free(text);

    path_in(f, "app.json", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:File:FormatterName=json"), 0);
    hk_log_error(lg, "json {V}", "x\"y");
    hk_log_flush(f->log);
    text = slurp(path);
    assert_non_null(text);
    nl = strchr(text, '\n');
    assert_true(nl && nl[1] == '\0'); /* one line */
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("invalid JSON (%s): %s", err.text, text);
    assert_string_equal(json_string_value(json_object_get(j, "Message")), "json x\"y");
    assert_string_equal(json_string_value(json_object_get(j, "LogLevel")), "Error");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "State"), "V")), "x\"y");
    json_decref(j);
    free(text);
}

/*
 * The file sink's default TimestampFormat ("yyyy-MM-ddTHH:mm:ss.fffzzz ", for
 * simple lines) must not leak into json lines as "...+00:00 " (fixed in
 * log.c by b721f72; this test failed before it).
 */
static void file_json_timestamp_is_iso8601_without_trailing_space(void **state) {
    fixture_t *f = *state;
    char path[128], kv[200];
    path_in(f, "ts.json", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:File:FormatterName=json"), 0);
    hk_log_info(hk_log_get(f->log, "Ts"), "x");
    hk_log_flush(f->log);
    char *text = slurp(path);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    const char *ts = json_string_value(json_object_get(j, "Timestamp"));
    assert_non_null(ts);
    if (ts[strlen(ts) - 1] == ' ')
        fail_msg("Timestamp \"%s\" ends with a space", ts);
    json_decref(j);
    free(text);
}

static void file_rolls_by_size_keeping_max_files_and_whole_lines(void **state) {
    fixture_t *f = *state;
    char path[128], kv[200];
    path_in(f, "roll.log", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:File:MaxFileSizeBytes=1000",
                               "Logging:File:MaxFiles=3", "Logging:Console:LogLevel:Default=None"),
                     0);
    hk_logger_t *lg = hk_log_get(f->log, "Roll");
    enum { N = 80 };
    for (int i = 0; i < N; i++) {
        hk_log_info(lg, "seq={Seq} {Pad}", i, "................................................");
        if (i % 7 == 0)
            hk_log_flush(f->log); /* several batches, several flushes */
    }
    hk_log_flush(f->log);

    char name[160];
    int expect_seq = -1, first = -1, files = 0;
    for (int k = 2; k >= 0; k--) {
        if (k)
            snprintf(name, sizeof name, "%s.%d", path, k);
        else
            snprintf(name, sizeof name, "%s", path);
        char *text = slurp(name);
        if (!text)
            fail_msg("%s is missing", name);
        files++;
        size_t len = strlen(text);
        if (len == 0 || len > 1000 || text[len - 1] != '\n')
            fail_msg("%s: %zu bytes, last byte %d", name, len, len ? text[len - 1] : -1);
        for (char *s = text; *s;) {
            char *nl = strchr(s, '\n');
            *nl = '\0';
            int seq = -1, used = -1;
            const char *body = after_timestamp(s);
            if (sscanf(body, "info: Roll[0] seq=%d %n", &seq, &used) != 1 || used < 0 ||
                strcmp(body + used, "................................................") != 0)
                fail_msg("%s: mangled line \"%s\"", name, s);
            if (first < 0)
                first = expect_seq = seq;
            if (seq != expect_seq)
                fail_msg("%s: seq %d, expected %d", name, seq, expect_seq);
            expect_seq++;
            s = nl + 1;
        }
        free(text);
    }
    assert_int_equal(files, 3);
    assert_int_equal(expect_seq, N); /* the newest line is in the file at the path */
    assert_true(first > 0);          /* the oldest lines were dropped */
    snprintf(name, sizeof name, "%s.3", path);
    assert_int_equal(access(name, F_OK), -1);
}

static void reopen_after_an_external_rename_writes_a_new_file_at_the_path(void **state) {
    fixture_t *f = *state;
    char path[128], moved[140], kv[200];
    path_in(f, "rot.log", path, sizeof path);
    snprintf(moved, sizeof moved, "%s.old", path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv), 0);
    hk_logger_t *lg = hk_log_get(f->log, "Rot");
    hk_log_info(lg, "before");
    hk_log_flush(f->log);
    assert_int_equal(rename(path, moved), 0); /* logrotate */
    hk_log_info(lg, "still the old file");
    hk_log_flush(f->log);
    hk_log_reopen(f->log);
    hk_log_info(lg, "after");
    hk_log_flush(f->log);
    char *old = slurp(moved), *cur = slurp(path);
    assert_non_null(old);
    assert_non_null(cur);
    char *nl = strchr(old, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(after_timestamp(old), "info: Rot[0] before");
    assert_string_equal(after_timestamp(nl + 1), "info: Rot[0] still the old file\n");
    assert_string_equal(after_timestamp(cur), "info: Rot[0] after\n");
    free(old);
    free(cur);
}

static void unopenable_file_path_is_a_config_error_naming_the_key(void **state) {
    fixture_t *f = *state;
    char kv[200], errs[1024];
    snprintf(kv, sizeof kv, "Logging:File:Path=%s/missing/dir/app.log", f->dir);
    const char *const pairs[] = {kv};
    assert_int_equal(configure(f->log, errs, sizeof errs, pairs, 1), -EINVAL);
    assert_non_null(strstr(errs, "Logging:File:Path"));
    assert_non_null(strstr(errs, "missing/dir/app.log"));
    /* the console still works */
    hk_log_info(hk_log_get(f->log, "Still"), "alive");
    char *out = console(f);
    assert_non_null(strstr(out, "info: Still[0] alive\n"));
    free(out);
}

/* ---- levels per sink and filters ------------------------------------------------------ */

static void per_sink_levels_from_configuration(void **state) {
    fixture_t *f = *state;
    char path[128], kv[200];
    path_in(f, "lv.log", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:File:LogLevel:Default=Warning",
                               "Logging:Console:LogLevel:Noisy=None"),
                     0);
    hk_logger_t *app = hk_log_get(f->log, "App"), *noisy = hk_log_get(f->log, "Noisy.Part");
    assert_true(hk_logger_enabled(app, HK_LOG_INFO));
    assert_false(hk_logger_enabled(app, HK_LOG_DEBUG));
    assert_false(hk_logger_enabled(noisy, HK_LOG_INFO)); /* console None, file Warning */
    assert_true(hk_logger_enabled(noisy, HK_LOG_WARN));
    hk_log_info(app, "i");
    hk_log_warn(app, "w");
    hk_log_info(noisy, "ni");
    hk_log_error(noisy, "ne");
    char *out = console(f);
    assert_string_equal(out, "info: App[0] i\nwarn: App[0] w\n");
    free(out);
    char *text = slurp(path);
    assert_non_null(text);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_string_equal(after_timestamp(text), "warn: App[0] w");
    assert_string_equal(after_timestamp(nl + 1), "fail: Noisy.Part[0] ne\n");
    free(text);
}

typedef struct filter_state {
    int calls;
    int file_calls;
} filter_state_t;

static hk_log_level_t test_filter(const char *sink, const char *category,
                                  hk_log_level_t configured, void *data) {
    filter_state_t *fs = data;
    fs->calls++;
    if (strcmp(sink, "File") == 0)
        fs->file_calls++;
    if (strcmp(sink, "File") == 0 && strcmp(category, "Quiet") == 0)
        return HK_LOG_NONE;
    if (strcmp(sink, "Console") == 0 && strcmp(category, "Loud") == 0)
        return HK_LOG_TRACE;
    return configured;
}

static void programmatic_filter_changes_cached_levels_per_sink(void **state) {
    fixture_t *f = *state;
    char path[128], kv[200];
    path_in(f, "flt.log", path, sizeof path);
    snprintf(kv, sizeof kv, "Logging:File:Path=%s", path);
    assert_int_equal(CONFIGURE(f->log, kv), 0);
    hk_logger_t *loud = hk_log_get(f->log, "Loud"), *quiet = hk_log_get(f->log, "Quiet");
    assert_false(hk_logger_enabled(loud, HK_LOG_TRACE));
    filter_state_t fs = {0};
    hk_log_set_filter(f->log, test_filter, &fs);
    assert_true(fs.file_calls >= 2); /* consulted per (sink, logger) when set */
    assert_true(hk_logger_enabled(loud, HK_LOG_TRACE));
    int calls = fs.calls;
    hk_log_trace(loud, "t");
    hk_log_warn(quiet, "q");
    hk_log_warn(loud, "w");
    char *out = console(f);
    assert_int_equal(fs.calls, calls); /* cached: not called per message */
    assert_string_equal(out, "trce: Loud[0] t\nwarn: Quiet[0] q\nwarn: Loud[0] w\n");
    free(out);
    char *text = slurp(path);
    assert_non_null(text);
    assert_string_equal(after_timestamp(text), "warn: Loud[0] w\n"); /* no trace, no Quiet */
    free(text);

    /* recomputed on configuration change too */
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:LogLevel:Default=Error"), 0);
    assert_true(fs.calls > calls);
    assert_true(hk_logger_enabled(loud, HK_LOG_TRACE));
    assert_false(hk_logger_enabled(quiet, HK_LOG_WARN));
    hk_log_set_filter(f->log, NULL, NULL);
    assert_false(hk_logger_enabled(loud, HK_LOG_WARN));
    assert_true(hk_logger_enabled(loud, HK_LOG_ERROR));
}

/* ---- custom sinks ---------------------------------------------------------------------- */

typedef struct sink_state {
    atomic_int inside;
    atomic_int overlaps;
    int writes, flushes, reopens, destroys; /* plain: TSan sees concurrent calls */
    int writes_after_destroy;
    char last[256];
    char last_category[64];
    hk_log_level_t last_level;
    size_t last_nfields;
} sink_state_t;

/* A sink's state owned by the fixture, so a failing test never leaves the
 * log calling into a dead stack frame. */
static sink_state_t *sink_state(fixture_t *f) {
    int i = f->sinks[0] ? 1 : 0;
    assert_null(f->sinks[i]);
    f->sinks[i] = calloc(1, sizeof *f->sinks[i]);
    assert_non_null(f->sinks[i]);
    return f->sinks[i];
}

static void enter(sink_state_t *s) {
    if (atomic_exchange(&s->inside, 1))
        atomic_fetch_add(&s->overlaps, 1);
}
static void leave(sink_state_t *s) { atomic_store(&s->inside, 0); }

static void s_write(void *data, const hk_log_record_t *r) {
    sink_state_t *s = data;
    enter(s);
    if (s->destroys)
        s->writes_after_destroy++;
    s->writes++;
    snprintf(s->last, sizeof s->last, "%s", r->message);
    snprintf(s->last_category, sizeof s->last_category, "%s", r->category);
    s->last_level = r->level;
    s->last_nfields = r->nfields;
    leave(s);
}
static void s_flush(void *data) {
    sink_state_t *s = data;
    enter(s);
    s->flushes++;
    leave(s);
}
static void s_reopen(void *data) {
    sink_state_t *s = data;
    enter(s);
    s->reopens++;
    leave(s);
}
static void s_destroy(void *data) {
    sink_state_t *s = data;
    enter(s);
    s->destroys++;
    leave(s);
}
static const hk_log_sink_ops_t full_ops = {s_write, s_flush, s_reopen, s_destroy};
static const hk_log_sink_ops_t write_only_ops = {s_write, NULL, NULL, NULL};
static const hk_log_sink_ops_t no_write_ops = {NULL, s_flush, s_reopen, s_destroy};

static void add_sink_validates_names_and_limits(void **state) {
    fixture_t *f = *state;
    sink_state_t *s = sink_state(f);
    static const char *const bad[] = {"",        "a b",      "a.b",    "a:b",   "Console",
                                      "console", "FILE",     "Journal", "x\xC3\xA9",
                                      "abcdefghijabcdefghijabcdefghij12" /* 32 */};
    for (size_t i = 0; i < LEN(bad); i++)
        if (hk_log_add_sink(f->log, bad[i], &full_ops, s) != -EINVAL)
            fail_msg("name \"%s\" accepted", bad[i]);
    assert_int_equal(hk_log_add_sink(f->log, NULL, &full_ops, s), -EINVAL);
    assert_int_equal(hk_log_add_sink(f->log, "ok", NULL, s), -EINVAL);
    assert_int_equal(hk_log_add_sink(f->log, "ok", &no_write_ops, s), -EINVAL);
    assert_int_equal(hk_log_add_sink(NULL, "ok", &full_ops, s), -EINVAL);

    assert_int_equal(hk_log_add_sink(f->log, "abcdefghijabcdefghijabcdefghij1", &write_only_ops, s),
                     0);
    assert_int_equal(hk_log_add_sink(f->log, "Mine_2-b", &write_only_ops, s), 0);
    assert_int_equal(hk_log_add_sink(f->log, "mine_2-B", &write_only_ops, s), -EEXIST);
    char name[16];
    for (int i = 3; i <= 8; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(hk_log_add_sink(f->log, name, &write_only_ops, s), 0);
    }
    assert_int_equal(hk_log_add_sink(f->log, "ninth", &write_only_ops, s), -ENOSPC);
    assert_int_equal(hk_log_add_sink(f->log, "s3", &write_only_ops, s), -EEXIST);
    /* all eight receive; write-only sinks need no other callback */
    hk_log_info(hk_log_get(f->log, "Eight"), "m");
    hk_log_flush(f->log);
    assert_int_equal(s->writes, 8);
    assert_int_equal(s->overlaps, 0);
}

static void custom_sink_gets_write_flush_reopen_and_destroy(void **state) {
    fixture_t *f = *state;
    sink_state_t *s = sink_state(f);
    assert_int_equal(hk_log_add_sink(f->log, "Mine", &full_ops, s), 0);
    assert_int_equal(CONFIGURE(f->log, "Logging:Mine:LogLevel:Default=Warning",
                               "Logging:Mine:LogLevel:Chatty=Trace"),
                     0);
    hk_logger_t *lg = hk_log_get(f->log, "My.Cat"), *chatty = hk_log_get(f->log, "Chatty");
    hk_log_info(lg, "not for the sink");
    hk_log_warn(lg, "for {Whom}", "sink");
    hk_log_flush(f->log);
    assert_int_equal(s->writes, 1);
    assert_true(s->flushes >= 1);
    assert_string_equal(s->last, "for sink");
    assert_string_equal(s->last_category, "My.Cat");
    assert_int_equal(s->last_level, HK_LOG_WARN);
    assert_int_equal(s->last_nfields, 1);
    assert_true(hk_logger_enabled(chatty, HK_LOG_TRACE)); /* the sink's own rule */
    hk_log_trace(chatty, "t");
    hk_log_flush(f->log);
    assert_int_equal(s->writes, 2);
    char *out = console(f);
    assert_string_equal(out, "info: My.Cat[0] not for the sink\nwarn: My.Cat[0] for sink\n");
    free(out);

    assert_int_equal(s->reopens, 0);
    hk_log_reopen(f->log);
    hk_log_error(lg, "after reopen");
    hk_log_flush(f->log);
    assert_int_equal(s->reopens, 1);
    assert_int_equal(s->writes, 3);
    assert_int_equal(s->destroys, 0);

    hk_log_error(lg, "queued at free");
    hk__log_free(f->log);
    f->log = NULL;
    assert_int_equal(s->writes, 4); /* nothing lost at free */
    assert_int_equal(s->destroys, 1);
    assert_int_equal(s->writes_after_destroy, 0);
    assert_int_equal(s->overlaps, 0);
}

/*
 * EXPOSES a log.c bug: hk_log_reopen before the writer thread has started
 * (nothing logged yet, or a hk_log_set_sink log) reopens only the file sink
 * and clears the request, so custom sinks never get their reopen call.
 */
static void custom_sink_reopen_requested_before_the_first_message_is_delivered(void **state) {
    fixture_t *f = *state;
    sink_state_t *s = sink_state(f);
    assert_int_equal(hk_log_add_sink(f->log, "Mine", &full_ops, s), 0);
    hk_log_reopen(f->log);
    hk_log_info(hk_log_get(f->log, "R"), "first");
    hk_log_flush(f->log);
    assert_int_equal(s->writes, 1);
    assert_int_equal(s->reopens, 1);
}

enum { NTHREADS = 8, NMSG = 500 };

typedef struct thr {
    hk_log_t *log;
    pthread_barrier_t *b;
    int id;
} thr_t;

static void *log_many(void *p) {
    thr_t *t = p;
    char cat[16];
    snprintf(cat, sizeof cat, "T%d", t->id);
    hk_logger_t *lg = hk_log_get(t->log, cat);
    pthread_barrier_wait(t->b);
    for (int i = 0; i < NMSG; i++) {
        hk_log_info(lg, "m {I}", i);
        if (i % 100 == 0)
            hk_log_reopen(t->log);
    }
    return NULL;
}

static void custom_sink_is_never_called_concurrently(void **state) {
    fixture_t *f = *state;
    sink_state_t *s = sink_state(f);
    assert_int_equal(hk_log_add_sink(f->log, "Serial", &full_ops, s), 0);
    assert_int_equal(CONFIGURE(f->log, "Logging:Console:LogLevel:Default=None"), 0);
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    thr_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        t[i] = (thr_t){f->log, &b, i};
        assert_int_equal(pthread_create(&th[i], NULL, log_many, &t[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&b);
    hk_log_flush(f->log);
    assert_int_equal(s->writes, NTHREADS * NMSG);
    assert_int_equal(s->overlaps, 0);
    assert_true(s->reopens >= 1);
}

/* ---- journald ---------------------------------------------------------------------------- */

typedef struct jfield {
    char *name;
    char *value;
    size_t len;
} jfield_t;

typedef struct jmsg {
    jfield_t f[64];
    int n;
    bool via_memfd;
    bool binary_seen;
} jmsg_t;

static void jmsg_free(jmsg_t *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->f[i].name);
        free(m->f[i].value);
    }
    m->n = 0;
}

/* Parses the journal export format: NAME=value\n or NAME\n<le64 len><bytes>\n. */
static void parse_export(jmsg_t *m, const char *p, size_t n) {
    const char *end = p + n;
    while (p < end) {
        size_t k = strcspn(p, "=\n");
        if (p + k >= end)
            fail_msg("truncated field name");
        assert_true(m->n < (int)LEN(m->f));
        jfield_t *fl = &m->f[m->n++];
        fl->name = strndup(p, k);
        for (size_t i = 0; i < k; i++)
            if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
                fail_msg("bad field name \"%s\"", fl->name);
        if (p[k] == '=') {
            const char *v = p + k + 1;
            const char *nl = memchr(v, '\n', (size_t)(end - v));
            if (!nl)
                fail_msg("field %s: no newline", fl->name);
            fl->value = strndup(v, (size_t)(nl - v));
            fl->len = (size_t)(nl - v);
            p = nl + 1;
        } else {
            const unsigned char *q = (const unsigned char *)p + k + 1;
            if ((const char *)q + 8 > end)
                fail_msg("field %s: truncated length", fl->name);
            uint64_t len = 0;
            for (int i = 7; i >= 0; i--)
                len = len << 8 | q[i];
            const char *v = (const char *)q + 8;
            if (len > (uint64_t)(end - v) - 1 || v[len] != '\n')
                fail_msg("field %s: bad binary length %llu", fl->name, (unsigned long long)len);
            fl->value = malloc(len + 1);
            memcpy(fl->value, v, len);
            fl->value[len] = '\0';
            fl->len = len;
            m->binary_seen = true;
            p = v + len + 1;
        }
    }
}

static const char *jget(const jmsg_t *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->f[i].name, name) == 0)
            return m->f[i].value;
    return NULL;
}

static int jcount(const jmsg_t *m, const char *name) {
    int c = 0;
    for (int i = 0; i < m->n; i++)
        c += strcmp(m->f[i].name, name) == 0;
    return c;
}

#define JSTR(m, name, expect)                                                                      \
    do {                                                                                           \
        const char *v_ = jget((m), (name));                                                        \
        if (!v_)                                                                                   \
            fail_msg("no field %s", (name));                                                       \
        assert_string_equal(v_, (expect));                                                         \
        assert_int_equal(jcount((m), (name)), 1);                                                  \
    } while (0)

/* A bound datagram socket at path ("@name": abstract). */
static int journal_socket(const char *path) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    assert_true(n < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
        len--;
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

/* Receives the datagram the log has already sent (after hk_log_flush), with a
 * passed memfd read back. Fails when nothing is queued. */
static void journal_recv(int fd, jmsg_t *m) {
    memset(m, 0, sizeof *m);
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    char ctl[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = {buf, cap};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl};
    iov.iov_len = cap - 1;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        fail_msg("no datagram: %s", strerror(errno));
    buf[n] = '\0';
    assert_false(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
        assert_int_equal(cm->cmsg_len, CMSG_LEN(sizeof(int)));
        int mfd;
        memcpy(&mfd, CMSG_DATA(cm), sizeof mfd);
        assert_int_equal(n, 0); /* the fields are in the memfd only */
        int seals = fcntl(mfd, F_GET_SEALS);
        assert_true(seals >= 0 && (seals & F_SEAL_WRITE) && (seals & F_SEAL_SHRINK) &&
                    (seals & F_SEAL_GROW));
        struct stat st;
        assert_int_equal(fstat(mfd, &st), 0);
        char *data = malloc((size_t)st.st_size + 1);
        assert_non_null(data);
        assert_int_equal(pread(mfd, data, (size_t)st.st_size, 0), st.st_size);
        data[st.st_size] = '\0';
        close(mfd);
        parse_export(m, data, (size_t)st.st_size);
        m->via_memfd = true;
        free(data);
    } else {
        assert_null(cm);
        parse_export(m, buf, (size_t)n);
    }
    free(buf);
}

static void expect_no_datagram(int fd) {
    char b[16];
    assert_int_equal(recv(fd, b, sizeof b, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
}

static void journal_datagram_carries_the_structured_fields(void **state) {
    fixture_t *f = *state;
    char sock[128], kv[200];
    path_in(f, "journal.sock", sock, sizeof sock);
    int js = journal_socket(sock);
    snprintf(kv, sizeof kv, "Logging:Journal:SocketPath=%s", sock);
    hk_logger_t *lg = hk_log_get(f->log, "MyApp.Worker");

    /* disabled by default: nothing sent */
    assert_int_equal(CONFIGURE(f->log, kv), 0);
    hk_log_warn(lg, "not sent");
    hk_log_flush(f->log);
    expect_no_datagram(js);

    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true",
                               "Logging:Journal:SyslogIdentifier=hk-test"),
                     0);
    hk_log_scope_t sc;
    hk_log_scope_begin(&sc, "RequestId", "r-7");
    const char *tmpl = "Processed {Count} items in {ElapsedMs} ms: {Err} {Missing}";
    int line = __LINE__ + 1;
    hk_log_warn(lg, tmpl, 10, 3.5, hk_log_errno(EIO));
    hk_log_scope_end(&sc);
    hk_log_flush(f->log);
    jmsg_t m;
    journal_recv(js, &m);
    assert_false(m.via_memfd);
    JSTR(&m, "MESSAGE", "Processed 10 items in 3.5 ms: Input/output error {Missing}");
    JSTR(&m, "PRIORITY", "4");
    JSTR(&m, "SYSLOG_IDENTIFIER", "hk-test");
    const char *file = jget(&m, "CODE_FILE");
    assert_non_null(file);
    size_t fl = strlen(file);
    assert_true(fl >= strlen("test_log_sinks.c") &&
                strcmp(file + fl - strlen("test_log_sinks.c"), "test_log_sinks.c") == 0);
    char num[16];
    snprintf(num, sizeof num, "%d", line);
    JSTR(&m, "CODE_LINE", num);
    JSTR(&m, "CODE_FUNC", "journal_datagram_carries_the_structured_fields");
    JSTR(&m, "LOGGER_CATEGORY", "MyApp.Worker");
    snprintf(num, sizeof num, "%d", EIO);
    JSTR(&m, "ERRNO", num);
    JSTR(&m, "COUNT", "10");
    JSTR(&m, "ELAPSEDMS", "3.5");
    JSTR(&m, "ERR", "Input/output error");
    JSTR(&m, "REQUESTID", "r-7");
    assert_null(jget(&m, "MISSING")); /* a hole without an argument has no value */
    jmsg_free(&m);
    expect_no_datagram(js); /* one datagram per message */

    /* every level's priority; the default identifier is the program's name */
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true",
                               "Logging:LogLevel:Default=Trace"),
                     0);
    static const char *const prio[] = {"7", "7", "6", "4", "3", "2"};
    for (int l = HK_LOG_TRACE; l <= HK_LOG_CRITICAL; l++)
        hk_log_at(lg, (hk_log_level_t)l, 0, "p");
    hk_log_flush(f->log);
    for (int l = 0; l < 6; l++) {
        journal_recv(js, &m);
        JSTR(&m, "PRIORITY", prio[l]);
        JSTR(&m, "SYSLOG_IDENTIFIER", "test_log_sinks");
        jmsg_free(&m);
    }
    close(js);
}

/* User-chosen hole and scope names never replace the fields the sink writes. */
static void journal_hole_names_cannot_override_trusted_fields(void **state) {
    fixture_t *f = *state;
    char sock[128], kv[200];
    path_in(f, "j2.sock", sock, sizeof sock);
    int js = journal_socket(sock);
    snprintf(kv, sizeof kv, "Logging:Journal:SocketPath=%s", sock);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true"), 0);
    hk_log_scope_t sc;
    hk_log_scope_begin(&sc, "Syslog_Identifier", "evil");
    hk_log_info(hk_log_get(f->log, "C"), "{Priority} {Message} {code_line}", 0, "m", 1);
    hk_log_scope_end(&sc);
    hk_log_flush(f->log);
    jmsg_t m;
    journal_recv(js, &m);
    JSTR(&m, "PRIORITY", "6");
    JSTR(&m, "MESSAGE", "0 m 1");
    assert_int_equal(jcount(&m, "SYSLOG_IDENTIFIER"), 1);
    assert_int_equal(jcount(&m, "CODE_LINE"), 1);
    JSTR(&m, "F_PRIORITY", "0"); /* kept, under another name */
    JSTR(&m, "F_MESSAGE", "m");
    JSTR(&m, "F_CODE_LINE", "1");
    JSTR(&m, "F_SYSLOG_IDENTIFIER", "evil");
    jmsg_free(&m);
    close(js);
}

static void journal_values_with_newlines_use_the_binary_form(void **state) {
    fixture_t *f = *state;
    char sock[128], kv[200];
    path_in(f, "j3.sock", sock, sizeof sock);
    int js = journal_socket(sock);
    snprintf(kv, sizeof kv, "Logging:Journal:SocketPath=%s", sock);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true"), 0);
    hk_log_info(hk_log_get(f->log, "C"), "line1\nline2 {V}", "a\nb=c");
    hk_log_flush(f->log);
    jmsg_t m;
    journal_recv(js, &m);
    assert_true(m.binary_seen);
    JSTR(&m, "MESSAGE", "line1\nline2 a\nb=c");
    JSTR(&m, "V", "a\nb=c");
    JSTR(&m, "PRIORITY", "6");
    jmsg_free(&m);
    close(js);
}

static void journal_message_too_large_for_a_datagram_arrives_in_a_memfd(void **state) {
    fixture_t *f = *state;
    char sock[128], kv[200];
    path_in(f, "j4.sock", sock, sizeof sock);
    int js = journal_socket(sock);
    snprintf(kv, sizeof kv, "Logging:Journal:SocketPath=%s", sock);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true",
                               "Logging:Console:LogLevel:Default=None"),
                     0);
    /* larger than the sender's default socket buffer: sendto fails with EMSGSIZE */
    long wmem = 212992;
    FILE *fp = fopen("/proc/sys/net/core/wmem_default", "r");
    if (fp) {
        if (fscanf(fp, "%ld", &wmem) != 1)
            wmem = 212992;
        fclose(fp);
    }
    size_t big = (size_t)(wmem > 262144 ? wmem : 262144) + 65536;
    char *v = malloc(big + 1);
    assert_non_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = (char)('a' + i % 26);
    v[big] = '\0';
    hk_log_info(hk_log_get(f->log, "Big"), "big {Blob}", v);
    hk_log_flush(f->log);
    jmsg_t m;
    journal_recv(js, &m);
    assert_true(m.via_memfd);
    const char *blob = jget(&m, "BLOB");
    assert_non_null(blob);
    assert_int_equal(strlen(blob), big);
    assert_memory_equal(blob, v, big);
    const char *msg = jget(&m, "MESSAGE");
    assert_non_null(msg);
    assert_int_equal(strncmp(msg, "big abc", 7), 0);
    assert_string_equal(msg + strlen(msg) - 3, "..."); /* the message itself is capped */
    JSTR(&m, "LOGGER_CATEGORY", "Big");
    jmsg_free(&m);
    free(v);
    hk_log_stats_t st;
    hk_log_stats(f->log, &st);
    assert_int_equal(st.write_errors, 0);
    close(js);
}

static void journal_abstract_socket_name_starts_with_at(void **state) {
    fixture_t *f = *state;
    char name[64], kv[200];
    snprintf(name, sizeof name, "@hk-logsinks-%d-%s", (int)getpid(), strrchr(f->dir, '-') + 1);
    int js = journal_socket(name);
    snprintf(kv, sizeof kv, "Logging:Journal:SocketPath=%s", name);
    assert_int_equal(CONFIGURE(f->log, kv, "Logging:Journal:Enabled=true"), 0);
    hk_log_error(hk_log_get(f->log, "Abs"), "to an abstract socket");
    hk_log_flush(f->log);
    jmsg_t m;
    journal_recv(js, &m);
    JSTR(&m, "MESSAGE", "to an abstract socket");
    JSTR(&m, "PRIORITY", "3");
    jmsg_free(&m);
    hk_log_stats_t st;
    hk_log_stats(f->log, &st);
    assert_int_equal(st.write_errors, 0);
    close(js);
}

/* ---- JOURNAL_STREAM -------------------------------------------------------------------- */

static void set_journal_stream(int fd, long ino_delta) {
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
    assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
}

static void journal_stream_fd_gets_the_systemd_formatter_unless_configured(void **state) {
    fixture_t *f = *state;
    hk_logger_t *lg = hk_log_get(f->log, "Js");
    set_journal_stream(f->p[1], 0);
    hk_log_set_fd(f->log, f->p[1]);
    hk_log_warn(lg, "auto");
    char *out = console(f);
    assert_string_equal(out, "<4>Js[0] auto\n");
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:Console:FormatterName=simple"), 0);
    hk_log_warn(lg, "configured");
    out = console(f);
    assert_string_equal(out, "warn: Js[0] configured\n");
    free(out);

    assert_int_equal(CONFIGURE(f->log, "Logging:LogLevel:Default=Information"), 0);
    hk_log_warn(lg, "unset again");
    out = console(f);
    assert_string_equal(out, "<4>Js[0] unset again\n");
    free(out);

    /* a different inode (the variable names another stream): simple */
    set_journal_stream(f->p[1], 1);
    hk_log_set_fd(f->log, f->p[1]);
    hk_log_warn(lg, "other");
    out = console(f);
    assert_string_equal(out, "warn: Js[0] other\n");
    free(out);

    /* a socket (what systemd really passes) */
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    set_journal_stream(sp[0], 0);
    hk_log_set_fd(f->log, sp[0]);
    hk_log_info(lg, "sock");
    hk_log_flush(f->log);
    char buf[64] = {0};
    assert_int_equal(recv(sp[1], buf, sizeof buf - 1, MSG_DONTWAIT), (ssize_t)strlen("<6>Js[0] sock\n"));
    assert_string_equal(buf, "<6>Js[0] sock\n");
    unsetenv("JOURNAL_STREAM");
    hk_log_set_fd(f->log, f->p[1]);
    close(sp[0]);
    close(sp[1]);
}

int main(void) {
    unsetenv("JOURNAL_STREAM");
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(file_sink_writes_simple_and_json_lines),
        T(file_json_timestamp_is_iso8601_without_trailing_space),
        T(file_rolls_by_size_keeping_max_files_and_whole_lines),
        T(reopen_after_an_external_rename_writes_a_new_file_at_the_path),
        T(unopenable_file_path_is_a_config_error_naming_the_key),
        T(per_sink_levels_from_configuration),
        T(programmatic_filter_changes_cached_levels_per_sink),
        T(add_sink_validates_names_and_limits),
        T(custom_sink_gets_write_flush_reopen_and_destroy),
        T(custom_sink_reopen_requested_before_the_first_message_is_delivered),
        T(custom_sink_is_never_called_concurrently),
        T(journal_datagram_carries_the_structured_fields),
        T(journal_hole_names_cannot_override_trusted_fields),
        T(journal_values_with_newlines_use_the_binary_form),
        T(journal_message_too_large_for_a_datagram_arrives_in_a_memfd),
        T(journal_abstract_socket_name_starts_with_at),
        T(journal_stream_fd_gets_the_systemd_formatter_unless_configured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
