/*
 * Shared helpers for the unit tests: cmocka includes, a log sink that
 * records lines for assertions, polling with a deadline (never sleeps as
 * synchronisation), and a failing allocator.
 */
#ifndef HK_TESTUTIL_H
#define HK_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include <hostkit/hostkit.h>

/* Records every log line (thread-safe). */
typedef struct capture capture_t;
capture_t *capture_new(void);
void capture_free(capture_t *c);
void capture_sink(const hk_log_record_t *rec, void *data); /* data = capture_t* */
/* Index of the first line containing needle at or after `from`, or -1. */
int capture_find(capture_t *c, const char *needle, int from);
int capture_count(capture_t *c, const char *needle);
size_t capture_lines(capture_t *c);
void capture_dump(capture_t *c); /* prints all lines (on failure) */

/* Polls cond(arg) every ~1 ms until true or timeout_ms elapses. */
bool wait_until(bool (*cond)(void *), void *arg, int timeout_ms);

/* Allocator that fails the Nth allocation (1-based) and every one after when
 * `persistent`; fail_at = 0 disables. Install with failalloc_install(). */
void failalloc_install(void);
void failalloc_set(long fail_at, bool persistent);
long failalloc_count(void);
void failalloc_uninstall(void);
/* Allocations made through hostkit's allocator and not yet freed, while the
 * failalloc allocator is installed (it counts even when it never fails). */
long alloc_live(void);

#endif
