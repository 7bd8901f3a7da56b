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

/*
 * Scenario checks for code running off the test thread (in a service or a
 * callback, where a cmocka assert cannot be used): CHECK records the first
 * failure with its line and returns; the test thread then fails with
 * scn_failure() (NULL while nothing failed). scn_reset() before each run.
 */
void scn_fail(int line, const char *fmt, ...) HK_PRINTF(2, 3);
const char *scn_failure(void);
void scn_reset(void);
#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            scn_fail(__LINE__, __VA_ARGS__);                                                       \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define CHECK(cond) CHECK_MSG(cond, "%s", #cond)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mono_ns(void);
/* This thread's kernel id, and whether thread `tid` of this process sleeps in
 * the kernel (state S or D in /proc): it has reached its blocking call. */
int current_tid(void);
bool tid_is_blocked(int tid);

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
