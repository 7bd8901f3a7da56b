/*
 * Unit tests for the process collector (src/metrics/process.c): exact
 * values from a fixture /proc tree (golden output, odd command names,
 * missing sources), and plausible values from the real /proc (open fds
 * follow the descriptors this test opens). Depends on cmocka, testutil.h
 * and the collector's internal entry point (metrics_int.h).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics/metrics_int.h"

static char root[64];

static void put_file(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_tree(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void fixture_collect(hk_scrape_t *s, void *data) { hk__process_collect(s, data); }

static char *expose(hk_metrics_t *m) {
    static char buf[8192];
    assert_int_equal(hk_metrics_print(m, buf, sizeof buf, NULL), 0);
    return buf;
}

static void make_root(void) {
    snprintf(root, sizeof root, "/tmp/hk_proc_XXXXXX");
    assert_non_null(mkdtemp(root));
    char p[128];
    snprintf(p, sizeof p, "%s/self", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/self/fd", root);
    assert_int_equal(mkdir(p, 0700), 0);
}

static void process_series_come_from_proc_with_client_library_names(void **state) {
    (void)state;
    make_root();
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    /* a command name with spaces and parentheses: fields start after the last ')' */
    char stat[512];
    snprintf(stat, sizeof stat,
             "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
             "%ld %ld 0 0 20 0 3 0 %ld 123456789 %d 18446744073709551615\n",
             3 * tck / 2 /* utime 1.5 s */, tck / 4 /* stime 0.25 s */,
             10 * tck /* started 10 s after boot */, 1000 /* rss pages */);
    put_file("self/stat", stat);
    put_file("stat", "cpu  1 2 3\ncpu0 1 2 3\nintr 1 2 3\nctxt 99\nbtime 1700000000\n"
                     "processes 7\n");
    put_file("self/limits", "Limit                     Soft Limit           Hard Limit           Units\n"
                            "Max cpu time              unlimited            unlimited            seconds\n"
                            "Max open files            1024                 524288               files\n");
    put_file("self/fd/0", "");
    put_file("self/fd/1", "");
    put_file("self/fd/7", "");

    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    assert_int_equal(hk_metrics_add_collector(m, fixture_collect, root, NULL), 0);
    char want[2048];
    snprintf(want, sizeof want,
             "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
             "# TYPE process_cpu_seconds_total counter\n"
             "process_cpu_seconds_total 1.75\n"
             "# HELP process_max_fds Maximum number of open file descriptors.\n"
             "# TYPE process_max_fds gauge\n"
             "process_max_fds 1024\n"
             "# HELP process_open_fds Number of open file descriptors.\n"
             "# TYPE process_open_fds gauge\n"
             "process_open_fds 3\n"
             "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
             "# TYPE process_resident_memory_bytes gauge\n"
             "process_resident_memory_bytes %ld\n"
             "# HELP process_start_time_seconds Start time of the process since unix epoch in "
             "seconds.\n"
             "# TYPE process_start_time_seconds gauge\n"
             "process_start_time_seconds 1700000010\n"
             "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
             "# TYPE process_virtual_memory_bytes gauge\n"
             "process_virtual_memory_bytes 123456789\n",
             1000 * page);
    char *got = expose(m);
    if (strcmp(got, want))
        fail_msg("want:\n%s\ngot:\n%s", want, got);

    /* sources that cannot be read or parsed leave their series out */
    put_file("self/stat", "4242 (truncated) S 1 2 3\n");
    put_file("self/limits", "Max open files            unlimited            unlimited            files\n");
    got = expose(m);
    assert_string_equal(got, "# HELP process_open_fds Number of open file descriptors.\n"
                             "# TYPE process_open_fds gauge\n"
                             "process_open_fds 3\n");
    rm_tree();
    got = expose(m);
    assert_string_equal(got, "");
    hk_metrics_free(m);
}

/* The value of a series in the exposition, or -1. */
static double series(const char *text, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static void real_proc_values_are_plausible_and_follow_open_descriptors(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    assert_int_equal(hk_metrics_add_process_collector(m), 0);
    assert_int_equal(hk_metrics_add_process_collector(m), -EEXIST);
    char *text = expose(m);
    double fds = series(text, "process_open_fds");
    assert_true(fds >= 3);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY)
        assert_true(series(text, "process_max_fds") == (double)rl.rlim_cur);
    assert_true(series(text, "process_resident_memory_bytes") > 0);
    assert_true(series(text, "process_virtual_memory_bytes") >=
                series(text, "process_resident_memory_bytes"));
    assert_true(series(text, "process_cpu_seconds_total") >= 0);
    double start = series(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start > now - 3600 && start <= now + 1); /* this test started just now */

    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    text = expose(m);
    assert_true(series(text, "process_open_fds") == fds + 2);
    close(p[0]);
    close(p[1]);
    text = expose(m);
    assert_true(series(text, "process_open_fds") == fds);
    hk_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(process_series_come_from_proc_with_client_library_names),
        cmocka_unit_test(real_proc_values_are_plausible_and_follow_open_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
