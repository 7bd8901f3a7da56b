/*
 * Private interface of the jobs subsystem (src/jobs): the clock that
 * schedules use (replaceable, so tests drive time by hand) and small
 * helpers shared by job.c and queue.c.
 * Depends on src/common and the public headers.
 */
#ifndef HK_SRC_JOBS_INT_H
#define HK_SRC_JOBS_INT_H

#include <stdint.h>

#include "hostkit/jobs.h"
#include "hostkit/token.h"

/*
 * The clock of job schedules and job health. mono_ns and real_ns are the
 * CLOCK_MONOTONIC and CLOCK_REALTIME readings in ns; sleep_until blocks
 * until mono_ns() >= deadline or the token is cancelled and returns 0 or
 * -ECANCELED. Per-run timeouts and queue waits always use the real clock.
 */
typedef struct hk__jobs_clock {
    uint64_t (*mono_ns)(void *ctx);
    int64_t (*real_ns)(void *ctx);
    int (*sleep_until)(void *ctx, hk_token_t *token, uint64_t deadline_ns);
    void *ctx;
} hk__jobs_clock_t;

/*
 * Replaces the clock for jobs registered from now on (NULL: the real one).
 * A job keeps the clock it was registered with. Tests only; not
 * thread-safe with registrations.
 */
void hk__jobs_set_clock(const hk__jobs_clock_t *clock);

/* The 1-based column of the first character of text that is not part of a
 * duration, for messages (0 when none can be pointed at). */
size_t hk__duration_error_pos(const char *text);

#endif
