/*
 * Private helpers shared by every subsystem: the allocator wrapper (the one
 * place tests can fail an allocation), string duplication/formatting and
 * monotonic time. Depends on libc only.
 */
#ifndef HK_SRC_COMMON_H
#define HK_SRC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "hostkit/common.h"

/*
 * Exported from the shared libhostkit (HK_EXTERN) though not public API:
 * libhostkit-web allocates through the same hook, so hk_replace_allocator
 * and the failing-allocator tests cover it too.
 */
HK_EXTERN void *hk__malloc(size_t size);
HK_EXTERN void *hk__calloc(size_t count, size_t size);
HK_EXTERN void *hk__realloc(void *ptr, size_t size);
HK_EXTERN void hk__free(void *ptr);

/* strdup through hk__malloc; NULL in, NULL out (and NULL on OOM). */
HK_EXTERN char *hk__strdup(const char *s);
HK_EXTERN char *hk__strndup(const char *s, size_t n);
/* Allocating sprintf; NULL on OOM or format error. */
HK_EXTERN char *hk__asprintf(const char *fmt, ...) HK_PRINTF(1, 2);
HK_EXTERN char *hk__vasprintf(const char *fmt, va_list ap) HK_PRINTF(1, 0);

/* Monotonic clock in nanoseconds / milliseconds. */
HK_EXTERN uint64_t hk__now_ns(void);
static inline uint64_t hk__now_ms(void) { return hk__now_ns() / 1000000u; }
/* hk__now_ns() + ms, clamped so it never overflows (10^11 ms: over three years). */
static inline uint64_t hk__deadline_ns(uint64_t ms) {
    return hk__now_ns() + (ms > 100000000000u ? 100000000000u : ms) * 1000000u;
}

/* Formats a seconds value the way messages show it: "30s", "0.25s". */
void hk__fmt_seconds(char *buf, size_t len, double seconds);

#define HK_UNUSED(x) ((void)(x))
#define HK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
