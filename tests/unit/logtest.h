/*
 * Helpers shared by the logging tests (test_log_format.c, test_log_sinks.c):
 * applying "Key=value" settings to a log through a configuration store, and
 * reading everything a pipe holds now.
 */
#ifndef HK_LOGTEST_H
#define HK_LOGTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "testutil.h"

#ifndef LEN
#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* Reads what the pipe holds now (the writes already happened). */
static inline char *drain(int fd) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r == 0 || errno == EAGAIN);
        break;
    }
    fcntl(fd, F_SETFL, fl);
    b[n] = '\0';
    return b;
}

/* Applies "Full:Key=value" settings; the recorded errors are joined into errs. */
static inline int configure(hk_log_t *log, char *errs, size_t cap, const char *const *kv, size_t n) {
    hk_config_t *c = NULL;
    assert_int_equal(hk_config_new(&c), 0);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        assert_non_null(eq);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv[i]), kv[i]);
        assert_int_equal(hk_config_set(c, key, eq + 1), 0);
    }
    int rc = hk__log_configure(log, c);
    if (errs) {
        errs[0] = '\0';
        for (size_t i = 0; i < hk_config_error_count(c); i++)
            snprintf(errs + strlen(errs), cap - strlen(errs), "%s\n", hk_config_error(c, i));
    }
    hk_config_free(c);
    return rc;
}
#define CONFIGURE(log, ...)                                                                        \
    configure((log), NULL, 0, (const char *const[]){__VA_ARGS__},                                  \
              LEN(((const char *const[]){__VA_ARGS__})))

#endif
