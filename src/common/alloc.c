/*
 * The allocator hook (hk_replace_allocator) and the hk__ wrappers every
 * hostkit allocation goes through, plus version and error strings.
 * Depends on libc only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static hk_malloc_fn a_malloc = malloc;
static hk_realloc_fn a_realloc = realloc;
static hk_calloc_fn a_calloc = calloc;
static hk_free_fn a_free = free;

int hk_replace_allocator(hk_malloc_fn malloc_fn, hk_realloc_fn realloc_fn, hk_calloc_fn calloc_fn,
                         hk_free_fn free_fn) {
    if (!malloc_fn || !realloc_fn || !calloc_fn || !free_fn)
        return -EINVAL;
    a_malloc = malloc_fn;
    a_realloc = realloc_fn;
    a_calloc = calloc_fn;
    a_free = free_fn;
    return 0;
}

void *hk__malloc(size_t size) { return a_malloc(size ? size : 1); }
void *hk__calloc(size_t count, size_t size) { return a_calloc(count ? count : 1, size ? size : 1); }
void *hk__realloc(void *ptr, size_t size) { return a_realloc(ptr, size ? size : 1); }

void hk__free(void *ptr) {
    /* Like uv__free: custom allocators may clobber errno, callers may not expect it. */
    int saved = errno;
    if (ptr)
        a_free(ptr);
    errno = saved;
}

const char *hk_version(void) { return HOSTKIT_VERSION_STRING; }

const char *hk_strerror(int err) {
    static _Thread_local char buf[48];
    if (err == 0)
        return "Success";
    int e = err < 0 ? -err : err;
    /* strerror() is not thread-safe; strerrordesc_np (glibc >= 2.32) is static data. */
    const char *d = strerrordesc_np(e);
    if (d)
        return d;
    snprintf(buf, sizeof buf, "Unknown error %d", err);
    return buf;
}
