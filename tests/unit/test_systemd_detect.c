/*
 * Detecting systemd and the journal (include/hostkit/systemd.h "Detection";
 * src/systemd/notify.c hk_under_systemd, hk__stderr_is_journal; src/log/log.c
 * the systemd formatter; src/core/host.c the started line): JOURNAL_STREAM
 * matching stderr selects "<N>Category[id] message" lines with syslog
 * priorities, Logging:Console:FormatterName overrides the choice, and under
 * systemd the started line drops "Press Ctrl+C to shut down.".
 *
 * Cases that need stderr to be a particular file run in a forked child that
 * dup2s a temporary file onto descriptor 2 and logs to the real stderr; the
 * parent checks the child's exit status and then reads the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hosttest.h"

#define DEADLINE_MS 10000
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define L_STARTED_SD "Application started.\n"
#define L_STARTED_TTY "Application started. Press Ctrl+C to shut down.\n"

static const char *const sd_vars[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                                      "INVOCATION_ID", "JOURNAL_STREAM", "LISTEN_PID",
                                      "LISTEN_FDS",    "LISTEN_FDNAMES"};

static void unset_sd_vars(void) {
    for (size_t i = 0; i < ARRAY_SIZE(sd_vars); i++)
        unsetenv(sd_vars[i]);
}

static char out_path[PATH_MAX]; /* the child's stderr */

static int setup(void **state) {
    (void)state;
    unset_sd_vars(); /* a test run from a systemd unit must not see its own manager */
    rec_reset();
    cap = capture_new();
    const char *tmp = getenv("TMPDIR");
    snprintf(out_path, sizeof out_path, "%s/hk-sd-detect-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(out_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unset_sd_vars();
    capture_free(cap);
    cap = NULL;
    return unlink(out_path);
}

/* "dev:ino" of fd, as systemd sets JOURNAL_STREAM. */
static void journal_stream_of(int fd, char *buf, size_t len) {
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

/* ======================================================================== */
/* children writing to a real stderr                                        */
/* ======================================================================== */

typedef struct child_case {
    bool journal_stream;     /* JOURNAL_STREAM = stderr's dev:ino */
    const char *journal_raw; /* or this value */
    const char *formatter;   /* --Logging:Console:FormatterName=... */
} child_case_t;

static char *slurp(void);

static int svc_start(hk_service_t *svc, hk_token_t *token) {
    (void)svc;
    (void)token;
    return 0;
}

/* In the child: stderr is out_path; runs a host until started and logs one
 * line per level through a logger of category "Test". Exit code = host's. */
static _Noreturn void child_main(const child_case_t *c) {
    int fd = open(out_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || dup2(fd, STDERR_FILENO) != STDERR_FILENO)
        _exit(90);
    close(fd);
    unset_sd_vars();
    char js[64];
    if (c->journal_stream) {
        struct stat st;
        if (fstat(STDERR_FILENO, &st) < 0)
            _exit(91);
        snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", js, 1);
    } else if (c->journal_raw) {
        setenv("JOURNAL_STREAM", c->journal_raw, 1);
    }
    char a0[] = "detect", a1[160];
    snprintf(a1, sizeof a1, "--Logging:Console:FormatterName=%s", c->formatter ? c->formatter : "");
    char *argv[] = {a0, a1, NULL};
    hk_builder_t *b = hk_builder_new(c->formatter ? 2 : 1, argv);
    if (!b)
        _exit(92);
    hk_config_t *cfg = hk_builder_config(b);
    hk_config_set(cfg, "Host:HandleSignals", "false");
    hk_config_set(cfg, "Logging:LogLevel:Test", "Trace");
    hk_builder_add_hosted(b, "svc", svc_start, NULL, NULL, NULL);
    hk_host_t *h = NULL;
    if (hk_builder_build(b, &h) < 0) {
        int code = hk_builder_exit_code(b);
        hk_builder_free(b);
        exit(code);
    }
    hk_builder_free(b);
    hk_logger_t *lg = hk_host_logger(h, "Test");
    hk_trace(lg, "a trace line");
    hk_debug(lg, "a debug line");
    hk_info(lg, "an info line");
    hk_warn(lg, "a warning line");
    hk_error(lg, "an error line");
    hk_critical(lg, "a critical line");
    hk_token_reg_t reg = {0};
    hk_token_register(hk_host_started(h), &reg, stop_host_cb, h);
    int code = hk_host_run(h);
    hk_host_free(h);
    exit(code);
}

/* Runs the case in a child; returns its exit code. The child holds the write
 * end of a pipe until it exits: EOF on the read end, polled with a deadline,
 * says it has. */
static int run_child(const child_case_t *c) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (fcntl(p[1], F_DUPFD_CLOEXEC, 20) < 0) /* kept until exit, clear of 0..2 */
            _exit(93);
        child_main(c);
    }
    close(p[1]);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    int n = poll(&pfd, 1, DEADLINE_MS);
    char byte;
    bool eof = n == 1 && read(p[0], &byte, 1) == 0;
    close(p[0]);
    if (!eof) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the child did not exit within %d ms", DEADLINE_MS);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("the child was killed by signal %d:\n%s", WTERMSIG(status), slurp());
    return WEXITSTATUS(status);
}

static char *slurp(void) {
    FILE *fp = fopen(out_path, "r");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The child's stderr holds line (a whole line, with its "\n"). */
static bool has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if (p == text || p[-1] == '\n')
            return n && line[n - 1] == '\n';
    return false;
}

#define assert_has_line(text, line)                                                                \
    do {                                                                                           \
        if (!has_line((text), (line)))                                                             \
            fail_msg("no line \"%.*s\" in the child's stderr:\n%s", (int)strlen(line) - 1, (line), \
                     (text));                                                                      \
    } while (0)
#define assert_no_text(text, needle)                                                               \
    do {                                                                                           \
        if (strstr((text), (needle)))                                                              \
            fail_msg("unexpected \"%s\" in the child's stderr:\n%s", (needle), (text));           \
    } while (0)

static void journal_stream_matching_stderr_selects_the_systemd_formatter_with_priorities(void **state) {
    (void)state;
    child_case_t c = {.journal_stream = true};
    assert_int_equal(run_child(&c), 0);
    const char *out = slurp();
    assert_has_line(out, "<6>hostkit.lifetime[0] " L_STARTED_SD);
    assert_has_line(out, "<6>hostkit.lifetime[0] Hosting environment: Production\n");
    assert_has_line(out, "<6>hostkit.lifetime[0] Application is shutting down...\n");
    assert_has_line(out, "<7>Test[0] a trace line\n");
    assert_has_line(out, "<7>Test[0] a debug line\n");
    assert_has_line(out, "<6>Test[0] an info line\n");
    assert_has_line(out, "<4>Test[0] a warning line\n");
    assert_has_line(out, "<3>Test[0] an error line\n");
    assert_has_line(out, "<2>Test[0] a critical line\n");
    assert_no_text(out, "Press Ctrl+C");
    /* every line carries a priority, none the simple formatter's tag */
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
        if (p[0] != '<' || p[1] < '0' || p[1] > '7' || p[2] != '>')
            fail_msg("a line without a priority prefix: %.*s", (int)strcspn(p, "\n"), p);
        if (!strchr(p, '\n'))
            break;
    }
}

static void formatter_name_simple_overrides_the_journal(void **state) {
    (void)state;
    child_case_t c = {.journal_stream = true, .formatter = "simple"};
    assert_int_equal(run_child(&c), 0);
    const char *out = slurp();
    /* still under systemd (the journal is stderr): no Ctrl+C hint */
    assert_has_line(out, "info: hostkit.lifetime[0] " L_STARTED_SD);
    assert_has_line(out, "dbug: Test[0] a debug line\n");
    assert_has_line(out, "crit: Test[0] a critical line\n");
    assert_no_text(out, "<6>");
}

static void formatter_name_is_case_insensitive(void **state) {
    (void)state;
    child_case_t c = {.journal_stream = true, .formatter = "Simple"};
    assert_int_equal(run_child(&c), 0);
    assert_has_line(slurp(), "info: Test[0] an info line\n");
}

static void formatter_name_systemd_forces_priorities_without_the_journal(void **state) {
    (void)state;
    child_case_t c = {.formatter = "systemd"};
    assert_int_equal(run_child(&c), 0);
    const char *out = slurp();
    /* not under systemd: the hint stays */
    assert_has_line(out, "<6>hostkit.lifetime[0] " L_STARTED_TTY);
    assert_has_line(out, "<4>Test[0] a warning line\n");
}

static void journal_stream_of_another_file_keeps_the_simple_formatter(void **state) {
    (void)state;
    struct stat st;
    assert_int_equal(stat("/", &st), 0); /* a directory: not the child's stderr */
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    child_case_t c = {.journal_raw = js};
    assert_int_equal(run_child(&c), 0);
    const char *out = slurp();
    assert_has_line(out, "info: hostkit.lifetime[0] " L_STARTED_TTY);
    assert_has_line(out, "warn: Test[0] a warning line\n");
    assert_no_text(out, "<6>");
}

static void junk_journal_stream_keeps_the_simple_formatter(void **state) {
    (void)state;
    child_case_t c = {.journal_raw = "journal"};
    assert_int_equal(run_child(&c), 0);
    assert_has_line(slurp(), "info: hostkit.lifetime[0] " L_STARTED_TTY);
}

static void unknown_formatter_name_is_a_configuration_error(void **state) {
    (void)state;
    child_case_t c = {.journal_stream = true, .formatter = "xml"};
    assert_int_equal(run_child(&c), 78);
    const char *out = slurp();
    if (!strstr(out, "Logging:Console:FormatterName"))
        fail_msg("the error does not name Logging:Console:FormatterName:\n%s", out);
    assert_no_text(out, "Application started");
}

/* ======================================================================== */
/* in process                                                               */
/* ======================================================================== */

static void unknown_formatter_name_fails_the_build_with_exit_78(void **state) {
    (void)state;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_config_set(hk_builder_config(b), "Logging:Console:FormatterName", "fancy"), 0);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), -EINVAL);
    assert_null(h);
    assert_int_equal(hk_builder_exit_code(b), 78);
    assert_non_null(hk_builder_error(b));
    assert_non_null(strstr(hk_builder_error(b), "Logging:Console:FormatterName"));
    hk_builder_free(b);
}

static void formatter_name_systemd_reaches_log_sinks(void **state) {
    (void)state;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    assert_int_equal(hk_config_set(hk_builder_config(b), "Logging:Console:FormatterName", "systemd"), 0);
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    assert_true(capture_find(cap, "<6>hostkit.lifetime[0] " L_STARTED_TTY, 0) >= 0);
    assert_true(capture_find(cap, "<7>hostkit.host[0] Starting service a\n", 0) >= 0);
}

static void invocation_id_drops_press_ctrl_c_from_the_started_line(void **state) {
    (void)state;
    assert_int_equal(setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1), 0);
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    if (capture_find(cap, "info: hostkit.lifetime[0] " L_STARTED_SD, 0) < 0 ||
        capture_find(cap, "Press Ctrl+C", 0) >= 0) {
        capture_dump(cap);
        fail_msg("expected \"Application started.\" without the Ctrl+C hint");
    }
    /* the format stays simple: INVOCATION_ID says nothing about stderr */
    assert_true(capture_find(cap, "info: hostkit.lifetime[0] Hosting environment: Production", 0) >= 0);
}

static void without_systemd_the_started_line_keeps_press_ctrl_c(void **state) {
    (void)state;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap);
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_until_started(b), 0);
    assert_true(capture_find(cap, "info: hostkit.lifetime[0] " L_STARTED_TTY, 0) >= 0);
}

static void under_systemd_is_true_for_each_of_the_three_signals(void **state) {
    (void)state;
    assert_false(hk_under_systemd());

    assert_int_equal(setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1), 0);
    assert_true(hk_under_systemd());
    assert_int_equal(setenv("INVOCATION_ID", "", 1), 0);
    assert_false(hk_under_systemd());
    unsetenv("INVOCATION_ID");

    assert_int_equal(setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1), 0);
    assert_true(hk_under_systemd());
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_false(hk_under_systemd());
    unsetenv("NOTIFY_SOCKET");

    char js[64];
    journal_stream_of(STDERR_FILENO, js, sizeof js);
    assert_int_equal(setenv("JOURNAL_STREAM", js, 1), 0);
    assert_true(hk_under_systemd());
    /* another file's dev:ino, and junk */
    int fd = open(out_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    journal_stream_of(fd, js, sizeof js);
    close(fd);
    assert_int_equal(setenv("JOURNAL_STREAM", js, 1), 0);
    assert_false(hk_under_systemd());
    assert_int_equal(setenv("JOURNAL_STREAM", "8:x", 1), 0);
    assert_false(hk_under_systemd());
    unsetenv("JOURNAL_STREAM");

    assert_false(hk_under_systemd());
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(journal_stream_matching_stderr_selects_the_systemd_formatter_with_priorities),
        T(formatter_name_simple_overrides_the_journal),
        T(formatter_name_is_case_insensitive),
        T(formatter_name_systemd_forces_priorities_without_the_journal),
        T(journal_stream_of_another_file_keeps_the_simple_formatter),
        T(junk_journal_stream_keeps_the_simple_formatter),
        T(unknown_formatter_name_is_a_configuration_error),
        T(unknown_formatter_name_fails_the_build_with_exit_78),
        T(formatter_name_systemd_reaches_log_sinks),
        T(invocation_id_drops_press_ctrl_c_from_the_started_line),
        T(without_systemd_the_started_line_keeps_press_ctrl_c),
        T(under_systemd_is_true_for_each_of_the_three_signals),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
