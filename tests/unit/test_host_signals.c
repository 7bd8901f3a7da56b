/*
 * Signals while a host runs: SIGINT/SIGTERM/SIGQUIT stop it gracefully, a
 * second one forces an exit with 128+N, SIGPIPE is ignored, and the
 * previous dispositions come back when run returns. Forced exits run in a
 * forked child so the test process survives them (the child ends with _exit
 * by design, so run this file under valgrind without --error-exitcode).
 */
#include "hosttest.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static hk_builder_t *signal_builder(void) {
    hk_builder_t *b = test_builder(cap);
    hk_config_set(hk_builder_config(b), "Host:HandleSignals", "true");
    return b;
}

static void raise_cb(hk_token_t *t, void *data) {
    (void)t;
    raise((int)(intptr_t)data);
}

static int run_and_raise_when_started(hk_builder_t *b, int sig) {
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_token_reg_t reg = {0};
    hk_token_register(hk_host_started(h), &reg, raise_cb, (void *)(intptr_t)sig);
    int code = hk_host_run(h);
    hk_host_free(h);
    return code;
}

static void graceful(int sig, const char *name) {
    tsvc_t a, w;
    hk_builder_t *b = signal_builder();
    add_hosted(b, tsvc(&a, "a"));
    add_background(b, tsvc(&w, "w"));
    assert_int_equal(run_and_raise_when_started(b, sig), 0);
    char line[96];
    snprintf(line, sizeof line, "Received %s; stopping gracefully", name);
    if (capture_find(cap, line, 0) < 0) {
        capture_dump(cap);
        fail_msg("missing: %s", line);
    }
    assert_true(capture_find(cap, "Application is shutting down...", 0) >= 0);
    assert_true(rec_at("stop", "a") >= 0);
    assert_true(rec_at("exec-end", "w") >= 0);
}

static void sigterm_stops_the_host_gracefully(void **state) {
    (void)state;
    graceful(SIGTERM, "SIGTERM");
}
static void sigint_stops_the_host_gracefully(void **state) {
    (void)state;
    graceful(SIGINT, "SIGINT");
}
static void sigquit_stops_the_host_gracefully(void **state) {
    (void)state;
    graceful(SIGQUIT, "SIGQUIT");
}

static volatile sig_atomic_t user_handler_hits;
static void user_handler(int sig) {
    (void)sig;
    user_handler_hits++;
}

static void previous_signal_dispositions_are_restored_after_run(void **state) {
    (void)state;
    struct sigaction sa = {0}, old_term, old_pipe, now;
    sa.sa_handler = user_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGPIPE, &sa, &old_pipe);
    tsvc_t a;
    hk_builder_t *b = signal_builder();
    add_hosted(b, tsvc(&a, "a"));
    assert_int_equal(run_and_raise_when_started(b, SIGTERM), 0);
    assert_int_equal(user_handler_hits, 0); /* the host took it while running */
    sigaction(SIGTERM, NULL, &now);
    assert_ptr_equal(now.sa_handler, user_handler);
    sigaction(SIGPIPE, NULL, &now);
    assert_ptr_equal(now.sa_handler, user_handler);
    raise(SIGTERM);
    assert_int_equal(user_handler_hits, 1);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
}

static int write_to_closed_pipe(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    int fds[2];
    if (pipe(fds) < 0)
        return -errno;
    close(fds[0]);
    ssize_t n = write(fds[1], "x", 1); /* SIGPIPE would kill the process */
    int err = errno;
    close(fds[1]);
    rec_add(n < 0 && err == EPIPE ? "epipe" : "no-epipe", "writer");
    hk_host_stop(hk_service_host(svc));
    return 0;
}

static void sigpipe_is_ignored_while_the_host_runs(void **state) {
    (void)state;
    hk_builder_t *b = signal_builder();
    hk_builder_add_hosted(b, "writer", write_to_closed_pipe, NULL, NULL, NULL);
    assert_int_equal(hk_builder_run(b), 0);
    assert_true(rec_at("epipe", "writer") >= 0);
}

static void handle_signals_false_leaves_signals_alone(void **state) {
    (void)state;
    struct sigaction sa = {0}, old;
    sa.sa_handler = user_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old);
    user_handler_hits = 0;
    tsvc_t a;
    hk_builder_t *b = test_builder(cap); /* Host:HandleSignals=false */
    add_hosted(b, tsvc(&a, "a"));
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    hk_token_reg_t r1 = {0}, r2 = {0};
    hk_token_register(hk_host_started(h), &r1, raise_cb, (void *)(intptr_t)SIGTERM);
    hk_token_register(hk_host_started(h), &r2, stop_host_cb, h);
    assert_int_equal(hk_host_run(h), 0);
    hk_host_free(h);
    assert_int_equal(user_handler_hits, 1); /* the program's handler got it */
    sigaction(SIGTERM, &old, NULL);
}

/* ---- forced shutdown (in a child process) ---------------------------------- */

static int second_signal;
static void raise_second(hk_token_t *t, void *data) {
    (void)t;
    (void)data;
    raise(second_signal);
}

/* In the child: SIGTERM once started, the second signal once stopping, while a
 * background service ignores cancellation. Returns the child's exit status. */
static int forced_child(int first, int second, int pipe_fd) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        hk_builder_t *b = hk_builder_new(0, NULL);
        hk_log_set_fd(hk_builder_log(b), pipe_fd);
        tsvc_t hung;
        hk_token_t *release;
        hk_token_new(&release);
        add_background(b, tsvc(&hung, "hung"));
        hung.exec_mode = EXEC_IGNORE_CANCEL;
        hung.release = release;
        hk_host_t *h = NULL;
        if (hk_builder_build(b, &h) < 0)
            _exit(90);
        hk_builder_free(b);
        second_signal = second;
        hk_token_reg_t r1 = {0}, r2 = {0};
        hk_token_register(hk_host_started(h), &r1, raise_cb, (void *)(intptr_t)first);
        hk_token_register(hk_host_stopping(h), &r2, raise_second, NULL);
        hk_host_run(h);
        _exit(91); /* must not get here: the second signal ends the process */
    }
    close(pipe_fd);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void forced(int second, int code, const char *name) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int status = forced_child(SIGTERM, second, fds[1]);
    char buf[8192] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != code)
        fail_msg("exit %d, want %d; log:\n%s", WEXITSTATUS(status), code, buf);
    char want[160];
    snprintf(want, sizeof want,
             "crit: hostkit.lifetime[0] Forced shutdown: second %s received while stopping; "
             "exiting with code %d\n",
             name, code);
    if (!strstr(buf, want))
        fail_msg("missing line: %s\nlog:\n%s", want, buf);
    /* the log was flushed before the exit: the shutdown line precedes it */
    assert_non_null(strstr(buf, "Application is shutting down..."));
}

static void second_sigint_forces_exit_130(void **state) {
    (void)state;
    forced(SIGINT, 130, "SIGINT");
}
static void second_sigterm_forces_exit_143(void **state) {
    (void)state;
    forced(SIGTERM, 143, "SIGTERM");
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, host_setup, host_teardown)
        T(sigterm_stops_the_host_gracefully),
        T(sigint_stops_the_host_gracefully),
        T(sigquit_stops_the_host_gracefully),
        T(previous_signal_dispositions_are_restored_after_run),
        T(sigpipe_is_ignored_while_the_host_runs),
        T(handle_signals_false_leaves_signals_alone),
        T(second_sigint_forces_exit_130),
        T(second_sigterm_forces_exit_143),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
