/*
 * Running a test case in a forked child (test_systemd_listen.c,
 * test_web_activation.c): there descriptors 3.. and the LISTEN_* variables
 * can be arranged as a service manager does. The child checks with
 * CHILD_CHECK (cmocka's asserts belong to the parent), reports its first
 * failure through a pipe and exits 1; the parent asserts exit status 0
 * within a deadline and shows the report. Children that pass exit with
 * exit(), so a sanitizer's leak check runs in them too.
 */
#ifndef HK_CHILDTEST_H
#define HK_CHILDTEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define CHILD_DEADLINE_MS 10000

static int report_fd = -1; /* the child's end of the report pipe (fd >= 20) */
static capture_t *cap;     /* the child's log lines */

static inline _Noreturn void child_fail(int line, const char *what) {
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "line %d: %s (errno %d)\n", line, what, errno);
    if (n > 0)
        (void)!write(report_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    if (cap) {
        fprintf(stderr, "  the child's log:\n");
        capture_dump(cap);
    }
    _exit(1); /* state is inconsistent: skip the leak check */
}

#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            child_fail(__LINE__, #cond);                                                           \
    } while (0)

static const char *const child_sd_vars[] = {"NOTIFY_SOCKET",  "WATCHDOG_USEC", "WATCHDOG_PID",
                                            "INVOCATION_ID",  "JOURNAL_STREAM", "LISTEN_PID",
                                            "LISTEN_FDS",     "LISTEN_FDNAMES"};

/* Runs body in a forked child with a fresh `cap` (and, with clean_sd_env,
 * none of systemd's variables set); fails the test unless it exits 0 within
 * CHILD_DEADLINE_MS. */
static inline void run_child(void (*body)(void), bool clean_sd_env) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        report_fd = fcntl(p[1], F_DUPFD_CLOEXEC, 20); /* clear of 3, 4 and 5 */
        close(p[1]);
        if (report_fd < 0)
            _exit(2);
        if (clean_sd_env)
            for (size_t i = 0; i < sizeof child_sd_vars / sizeof child_sd_vars[0]; i++)
                unsetenv(child_sd_vars[i]);
        cap = capture_new();
        body();
        capture_free(cap);
        exit(0);
    }
    close(p[1]);
    char report[4096];
    size_t got = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) { /* until EOF: the child exited (or closed the pipe) */
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = CHILD_DEADLINE_MS - ((now.tv_sec - start.tv_sec) * 1000 +
                                         (now.tv_nsec - start.tv_nsec) / 1000000);
        int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(p[0]);
            fail_msg("the child did not finish within %d ms", CHILD_DEADLINE_MS);
        }
        ssize_t n = read(p[0], report + got, sizeof report - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || got + (size_t)n >= sizeof report - 1)
            break;
        got += (size_t)n;
    }
    report[got] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child %s %d: %s", WIFEXITED(status) ? "exited with" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 got ? report : "(no report)");
}

#endif
