/*
 * hostkit/common.h - version, error strings and the allocator hook shared by
 * every hostkit subsystem.
 *
 * Conventions used across the public API (see docs/architecture.md):
 *  - functions return 0 (or a count) on success and a negative errno value on
 *    failure (-EINVAL, -ENOMEM, ...); hk_strerror() turns one into text;
 *  - output parameters are named ret_* and are left untouched on failure;
 *  - every *_new/_build has a matching *_free that accepts NULL;
 *  - nothing here calls exit() or aborts on bad input, and nothing prints to
 *    stdout except what the user asked for (--help, --version,
 *    --print-config in hk_builder_build).
 */
#ifndef HOSTKIT_COMMON_H
#define HOSTKIT_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HK_EXTERN __attribute__((visibility("default")))
#define HK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HK_EXTERN
#define HK_PRINTF(fmt, args)
#endif

#define HOSTKIT_VERSION_MAJOR 0
#define HOSTKIT_VERSION_MINOR 1
#define HOSTKIT_VERSION_PATCH 0
#define HOSTKIT_VERSION_STRING "0.1.0"

/* The library's version as "MAJOR.MINOR.PATCH". Static string. Any thread. */
HK_EXTERN const char *hk_version(void);

/*
 * A description of a negative errno value as returned by hostkit functions
 * ("Invalid argument" for -EINVAL). Never NULL: an unknown code gives
 * "Unknown error N". The string is static. Any thread.
 */
HK_EXTERN const char *hk_strerror(int err);

/*
 * Replaces the allocator every hostkit allocation goes through (libuv's
 * uv_replace_allocator() is the model; tests use it to fail the Nth
 * allocation). All four functions must be given, and they must behave like
 * their libc namesakes. Call it before creating any hostkit object; objects
 * allocated with one allocator must not be freed after switching to another.
 * Returns 0, or -EINVAL if a function is NULL. Not thread-safe.
 */
typedef void *(*hk_malloc_fn)(size_t size);
typedef void *(*hk_realloc_fn)(void *ptr, size_t size);
typedef void *(*hk_calloc_fn)(size_t count, size_t size);
typedef void (*hk_free_fn)(void *ptr);
HK_EXTERN int hk_replace_allocator(hk_malloc_fn malloc_fn, hk_realloc_fn realloc_fn,
                                   hk_calloc_fn calloc_fn, hk_free_fn free_fn);

/* Called by hostkit with the user data it owns when that data is released. */
typedef void (*hk_destroy_cb)(void *data);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_COMMON_H */
