/*
 * Socket activation (include/hostkit/systemd.h, src/systemd/notify.c
 * hk__listen_read, read once by hk_builder_new): descriptors 3.. passed with
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, their names, FD_CLOEXEC, the
 * variables unset, ownership (taken or closed by the host), and malformed
 * values ignored with a warning at build.
 *
 * Each case runs in a forked child, where descriptors 3 and 4 and the
 * environment can be arranged freely. The child checks with CHILD_CHECK
 * (cmocka's asserts belong to the parent), reports its first failure
 * through a pipe and exits 1; the parent asserts exit status 0 and shows
 * the report. Children exit with exit(), so a sanitizer's leak check runs
 * in them too.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "childtest.h"

#define DEADLINE_MS 10000
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ======================================================================== */
/* helpers for the child                                                    */
/* ======================================================================== */

static ino_t ino3, ino4; /* what was put on 3 and 4 */

static ino_t ino_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }
static bool is_closed(int fd) { return fcntl(fd, F_GETFD) < 0 && errno == EBADF; }
static bool cloexec(int fd) {
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

/* Moves fd onto target (without FD_CLOEXEC, as a service manager passes it). */
static void place(int fd, int target) {
    int high = fcntl(fd, F_DUPFD, 30);
    CHILD_CHECK(high >= 30);
    close(fd);
    CHILD_CHECK(dup2(high, target) == target);
    close(high);
    CHILD_CHECK(!cloexec(target));
}

/* A listening unix stream socket on 3 and a datagram socket pair's end on 4;
 * 5 is closed. */
static void arrange_fds(void) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHILD_CHECK(l >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    CHILD_CHECK(bind(l, (struct sockaddr *)&sa, sizeof(sa_family_t)) == 0); /* autobind */
    CHILD_CHECK(listen(l, 4) == 0);
    int sp[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0);
    place(l, 3);
    place(sp[0], 4);
    close(sp[1]);
    close(5);
    CHILD_CHECK(is_closed(5));
    ino3 = ino_of(3);
    ino4 = ino_of(4);
    CHILD_CHECK(ino3 != 0 && ino4 != 0 && ino3 != ino4);
}

static void set_listen(const char *pid, const char *fds, const char *names) {
    char self[32];
    if (!pid) {
        snprintf(self, sizeof self, "%ld", (long)getpid());
        pid = self;
    }
    CHILD_CHECK(setenv("LISTEN_PID", pid, 1) == 0);
    if (fds)
        CHILD_CHECK(setenv("LISTEN_FDS", fds, 1) == 0);
    else
        unsetenv("LISTEN_FDS");
    if (names)
        CHILD_CHECK(setenv("LISTEN_FDNAMES", names, 1) == 0);
    else
        unsetenv("LISTEN_FDNAMES");
}

static bool env_is(const char *name, const char *want) {
    const char *v = getenv(name);
    return want ? v && strcmp(v, want) == 0 : v == NULL;
}

static hk_builder_t *new_builder(void) {
    hk_builder_t *b = hk_builder_new(0, NULL);
    CHILD_CHECK(b != NULL);
    hk_log_set_sink(hk_builder_log(b), capture_sink, cap);
    CHILD_CHECK(hk_config_set(hk_builder_config(b), "Host:HandleSignals", "false") == 0);
    return b;
}

static hk_host_t *build(hk_builder_t *b) {
    hk_host_t *h = NULL;
    CHILD_CHECK(hk_builder_build(b, &h) == 0);
    hk_builder_free(b);
    return h;
}

static bool logged(const char *text) { return capture_find(cap, text, 0) >= 0; }

/* ======================================================================== */
/* well-formed                                                              */
/* ======================================================================== */

static void child_passed_descriptors(void) {
    arrange_fds();
    set_listen(NULL, "2", "web:admin");
    hk_builder_t *b = new_builder();
    /* read by hk_builder_new: unset at once, even before the build */
    CHILD_CHECK(env_is("LISTEN_PID", NULL));
    CHILD_CHECK(env_is("LISTEN_FDS", NULL));
    CHILD_CHECK(env_is("LISTEN_FDNAMES", NULL));
    hk_host_t *h = build(b);
    CHILD_CHECK(hk_host_listen_fd_count(h) == 2);
    CHILD_CHECK(hk_host_listen_fd(h, 0) == 3);
    CHILD_CHECK(hk_host_listen_fd(h, 1) == 4);
    CHILD_CHECK(hk_host_listen_fd(h, 2) == -1);
    CHILD_CHECK(hk_host_listen_fd_name(h, 0) && !strcmp(hk_host_listen_fd_name(h, 0), "web"));
    CHILD_CHECK(hk_host_listen_fd_name(h, 1) && !strcmp(hk_host_listen_fd_name(h, 1), "admin"));
    CHILD_CHECK(hk_host_listen_fd_name(h, 2) == NULL);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "web") == 3);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "admin") == 4);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "Web") == -1);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "other") == -1);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, NULL) == -1);
    CHILD_CHECK(ino_of(3) == ino3 && ino_of(4) == ino4); /* the very same sockets */
    CHILD_CHECK(cloexec(3) && cloexec(4));
    CHILD_CHECK(!logged("LISTEN_"));
    hk_host_free(h);
    CHILD_CHECK(is_closed(3) && is_closed(4)); /* nobody took them: the host closed them */
}

static void passed_descriptors_are_offered_by_index_and_name_with_cloexec_and_variables_unset(
    void **state) {
    (void)state;
    run_child(child_passed_descriptors, true);
}

static void child_take(void) {
    arrange_fds();
    set_listen(NULL, "2", "web:admin");
    hk_host_t *h = build(new_builder());
    CHILD_CHECK(hk_host_take_listen_fd(h, 0) == 3);
    CHILD_CHECK(hk_host_listen_fd(h, 0) == -1);      /* taken */
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "web") == -1);
    CHILD_CHECK(hk_host_take_listen_fd(h, 0) == -1); /* once */
    CHILD_CHECK(hk_host_take_listen_fd(h, 2) == -1); /* past the end */
    CHILD_CHECK(hk_host_take_listen_fd(NULL, 0) == -1);
    CHILD_CHECK(hk_host_listen_fd_count(h) == 2);    /* the count stays */
    CHILD_CHECK(!strcmp(hk_host_listen_fd_name(h, 0), "web"));
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "admin") == 4);
    hk_host_free(h);
    CHILD_CHECK(is_open(3) && ino_of(3) == ino3); /* ours now */
    CHILD_CHECK(is_closed(4));                    /* not taken: closed with the host */
    close(3);
}

static void taken_descriptor_belongs_to_the_caller_and_the_host_closes_the_rest_on_free(void **state) {
    (void)state;
    run_child(child_take, true);
}

static void child_builder_free(void) {
    arrange_fds();
    set_listen(NULL, "2", NULL);
    hk_builder_t *b = new_builder();
    hk_builder_free(b); /* never built */
    CHILD_CHECK(is_closed(3) && is_closed(4));
}

static void builder_freed_without_a_host_closes_the_passed_descriptors(void **state) {
    (void)state;
    run_child(child_builder_free, true);
}

static void child_no_names(void) {
    arrange_fds();
    set_listen(NULL, "2", NULL);
    hk_host_t *h = build(new_builder());
    CHILD_CHECK(hk_host_listen_fd_count(h) == 2);
    CHILD_CHECK(!strcmp(hk_host_listen_fd_name(h, 0), "unknown"));
    CHILD_CHECK(!strcmp(hk_host_listen_fd_name(h, 1), "unknown"));
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "unknown") == 3); /* the first one */
    CHILD_CHECK(!logged("LISTEN_")); /* no names is no mistake */
    hk_host_free(h);
    CHILD_CHECK(is_closed(3) && is_closed(4));
}

static void descriptors_without_listen_fdnames_are_named_unknown_without_a_warning(void **state) {
    (void)state;
    run_child(child_no_names, true);
}

static void child_zero(void) {
    arrange_fds();
    set_listen(NULL, "0", NULL);
    hk_host_t *h = build(new_builder());
    CHILD_CHECK(hk_host_listen_fd_count(h) == 0);
    CHILD_CHECK(hk_host_listen_fd(h, 0) == -1);
    CHILD_CHECK(env_is("LISTEN_PID", NULL) && env_is("LISTEN_FDS", NULL));
    CHILD_CHECK(!logged("LISTEN_"));
    hk_host_free(h);
    CHILD_CHECK(is_open(3) && is_open(4) && !cloexec(3)); /* not passed: not touched */
}

static void zero_descriptors_is_valid_and_touches_nothing(void **state) {
    (void)state;
    run_child(child_zero, true);
}

static void child_none(void) {
    arrange_fds();
    hk_host_t *h = build(new_builder());
    CHILD_CHECK(hk_host_listen_fd_count(h) == 0);
    CHILD_CHECK(hk_host_listen_fd(h, 0) == -1);
    CHILD_CHECK(hk_host_listen_fd_name(h, 0) == NULL);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "unknown") == -1);
    CHILD_CHECK(hk_host_take_listen_fd(h, 0) == -1);
    CHILD_CHECK(!logged("LISTEN_") && !logged("socket activation"));
    hk_host_free(h);
    CHILD_CHECK(is_open(3) && is_open(4) && !cloexec(3) && !cloexec(4));
    CHILD_CHECK(hk_host_listen_fd_count(NULL) == 0 && hk_host_listen_fd(NULL, 0) == -1);
}

static void without_listen_variables_nothing_is_taken(void **state) {
    (void)state;
    run_child(child_none, true);
}

/* ======================================================================== */
/* malformed: ignored with a warning at build, nothing taken                */
/* ======================================================================== */

/* Builds with the variables as they are; checks nothing was taken and that
 * `warning` was logged as a warning at build (not before). */
static void assert_ignored(const char *warning) {
    hk_builder_t *b = new_builder();
    CHILD_CHECK(!logged(warning)); /* read at creation, reported at build */
    hk_host_t *h = build(b);
    char line[512];
    snprintf(line, sizeof line, "warn: hostkit.host[0] %s\n", warning);
    if (!logged(line)) {
        fprintf(stderr, "  expected the log line: %s", line);
        child_fail(__LINE__, "warning not logged");
    }
    CHILD_CHECK(capture_count(cap, "warn: ") == 1);
    CHILD_CHECK(hk_host_listen_fd_count(h) == 0);
    CHILD_CHECK(hk_host_listen_fd(h, 0) == -1);
    CHILD_CHECK(hk_host_listen_fd_by_name(h, "web") == -1);
    hk_host_free(h);
    /* not taken: still open, not closed by the host, FD_CLOEXEC not set */
    CHILD_CHECK(is_open(3) && is_open(4) && ino_of(3) == ino3 && ino_of(4) == ino4);
    CHILD_CHECK(!cloexec(3) && !cloexec(4));
}

static void child_wrong_pid(void) {
    arrange_fds();
    char other[32], want[160];
    snprintf(other, sizeof other, "%ld", (long)getppid());
    set_listen(other, "2", "web:admin");
    snprintf(want, sizeof want,
             "Ignoring socket activation: LISTEN_PID=%s is not this process (%ld)", other,
             (long)getpid());
    assert_ignored(want);
    /* meant for another process: left for it */
    CHILD_CHECK(env_is("LISTEN_PID", other));
    CHILD_CHECK(env_is("LISTEN_FDS", "2"));
    CHILD_CHECK(env_is("LISTEN_FDNAMES", "web:admin"));
}

static void listen_pid_of_another_process_is_ignored_with_a_warning_and_left_in_place(void **state) {
    (void)state;
    run_child(child_wrong_pid, true);
}

static void child_junk_pid(void) {
    static const char *const junk[] = {"", "abc", "12x", "-1", "+5"};
    arrange_fds();
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
        capture_free(cap);
        cap = capture_new();
        set_listen(junk[i], "2", NULL);
        char want[160];
        snprintf(want, sizeof want,
                 "Ignoring socket activation: LISTEN_PID=\"%s\" is not a process id", junk[i]);
        assert_ignored(want);
    }
}

static void junk_listen_pid_is_ignored_with_a_warning(void **state) {
    (void)state;
    run_child(child_junk_pid, true);
}

static void child_junk_fds(void) {
    static const char *const junk[] = {"", "two", "2x", "-2", "+2", "4097", "99999999999999999999"};
    arrange_fds();
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
        capture_free(cap);
        cap = capture_new();
        set_listen(NULL, junk[i], "web:admin");
        char want[160];
        snprintf(want, sizeof want,
                 "Ignoring socket activation: LISTEN_FDS=\"%s\" is not a count of descriptors",
                 junk[i]);
        assert_ignored(want);
    }
    capture_free(cap);
    cap = capture_new();
    set_listen(NULL, NULL, NULL); /* LISTEN_PID alone */
    assert_ignored("Ignoring socket activation: LISTEN_FDS=\"\" is not a count of descriptors");
}

static void junk_listen_fds_is_ignored_with_a_warning(void **state) {
    (void)state;
    run_child(child_junk_fds, true);
}

static void child_too_many(void) {
    arrange_fds();
    set_listen(NULL, "3", "web:admin:extra"); /* 3 and 4 are open, 5 is not */
    assert_ignored("Ignoring socket activation: LISTEN_FDS=3 but descriptor 5 is not open");
}

static void listen_fds_beyond_the_open_descriptors_is_ignored_with_a_warning(void **state) {
    (void)state;
    run_child(child_too_many, true);
}

static void child_names_mismatch(void) {
    static const struct {
        const char *names;
        const char *warning;
    } cases[] = {
        {"web:admin:extra", "LISTEN_FDNAMES has 3 name(s) for 2 descriptor(s); names ignored"},
        {"web", "LISTEN_FDNAMES has 1 name(s) for 2 descriptor(s); names ignored"},
        {"", "LISTEN_FDNAMES has 0 name(s) for 2 descriptor(s); names ignored"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        capture_free(cap);
        cap = capture_new();
        arrange_fds();
        set_listen(NULL, "2", cases[i].names);
        hk_builder_t *b = new_builder();
        CHILD_CHECK(!logged("LISTEN_FDNAMES"));
        hk_host_t *h = build(b);
        char line[256];
        snprintf(line, sizeof line, "warn: hostkit.host[0] %s\n", cases[i].warning);
        if (!logged(line)) {
            fprintf(stderr, "  expected the log line: %s", line);
            child_fail(__LINE__, "warning not logged");
        }
        /* the descriptors are still taken, without names */
        CHILD_CHECK(hk_host_listen_fd_count(h) == 2);
        CHILD_CHECK(hk_host_listen_fd(h, 0) == 3 && hk_host_listen_fd(h, 1) == 4);
        CHILD_CHECK(!strcmp(hk_host_listen_fd_name(h, 0), "unknown"));
        CHILD_CHECK(!strcmp(hk_host_listen_fd_name(h, 1), "unknown"));
        CHILD_CHECK(hk_host_listen_fd_by_name(h, "web") == -1);
        CHILD_CHECK(cloexec(3) && cloexec(4));
        CHILD_CHECK(env_is("LISTEN_PID", NULL) && env_is("LISTEN_FDS", NULL) &&
                    env_is("LISTEN_FDNAMES", NULL));
        hk_host_free(h);
        CHILD_CHECK(is_closed(3) && is_closed(4));
    }
}

static void listen_fdnames_count_mismatch_takes_the_descriptors_as_unknown_with_a_warning(void **state) {
    (void)state;
    run_child(child_names_mismatch, true);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passed_descriptors_are_offered_by_index_and_name_with_cloexec_and_variables_unset),
        cmocka_unit_test(taken_descriptor_belongs_to_the_caller_and_the_host_closes_the_rest_on_free),
        cmocka_unit_test(builder_freed_without_a_host_closes_the_passed_descriptors),
        cmocka_unit_test(descriptors_without_listen_fdnames_are_named_unknown_without_a_warning),
        cmocka_unit_test(zero_descriptors_is_valid_and_touches_nothing),
        cmocka_unit_test(without_listen_variables_nothing_is_taken),
        cmocka_unit_test(listen_pid_of_another_process_is_ignored_with_a_warning_and_left_in_place),
        cmocka_unit_test(junk_listen_pid_is_ignored_with_a_warning),
        cmocka_unit_test(junk_listen_fds_is_ignored_with_a_warning),
        cmocka_unit_test(listen_fds_beyond_the_open_descriptors_is_ignored_with_a_warning),
        cmocka_unit_test(listen_fdnames_count_mismatch_takes_the_descriptors_as_unknown_with_a_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
