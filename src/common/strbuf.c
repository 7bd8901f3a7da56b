/*
 * String helpers (duplicate, allocating printf) and the monotonic clock.
 * Depends on libc only.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"

char *hk__strndup(const char *s, size_t n) {
    if (!s)
        return NULL;
    char *p = hk__malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *hk__strdup(const char *s) { return s ? hk__strndup(s, strlen(s)) : NULL; }

char *hk__vasprintf(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *p = hk__malloc((size_t)n + 1);
    if (!p)
        return NULL;
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *hk__asprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *p = hk__vasprintf(fmt, ap);
    va_end(ap);
    return p;
}

uint64_t hk__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hk__fmt_seconds(char *buf, size_t len, double seconds) {
    /* %g drops trailing zeros: 30 -> "30s", 0.25 -> "0.25s". */
    snprintf(buf, len, "%gs", seconds);
}
