/*
 * hostkit/health.h - health checks: a registry of named checks, reports
 * (overall status and each check's result) as a C structure, JSON text and
 * a one-line summary for systemd's STATUS=.
 *
 * A check is a function that returns Healthy, Degraded or Unhealthy and
 * fills a result (a description and optional key/value data) through the
 * hk_health_result_* builder. Checks carry tags: `live` (the process works:
 * the systemd watchdog stops pinging while one is Unhealthy), `ready` (it
 * can take work: readiness probes) and any free-form tag.
 *
 * Running. hk_health_report() runs the matching checks concurrently, each
 * on a thread of its own (never on the caller's thread, never on the host
 * loop), and waits for them up to each check's timeout. A check that has not
 * returned by then is reported Unhealthy "timed out after Ns"; its token is
 * cancelled, its thread is left to finish and its late result is discarded.
 * While that thread still runs, no new run of the check starts: reports say
 * "timed out" again at once. At most one run of a check is in flight: a
 * report that needs a check that is already running (for another report)
 * waits for that run instead of starting a new one.
 *
 * Caching. A check's result is reused for the cache interval (default 1 s,
 * Health:CacheSeconds for the host's registry, hk_health_set_cache_ms) after
 * it completed, so probes cannot overload the process. A timed-out result
 * is cached the same way.
 *
 * Overall status: the worst of the reported checks (Healthy < Degraded <
 * Unhealthy); Healthy when no check matches. Degraded counts as passing:
 * hk_health_http_status() gives 200 for Healthy and Degraded, 503 for
 * Unhealthy.
 *
 * The host owns a registry (hk_builder_health / hk_host_health in host.h)
 * with built-in checks (`host`, `heartbeat:{service}`); see docs/health.md.
 *
 * Thread-safety: every function may be called from any thread, except
 * hk_health_free (no other call on the registry may run during or after
 * it). Check callbacks run on the registry's threads and must not call
 * hk_health_report on the registry that runs them.
 */
#ifndef HOSTKIT_HEALTH_H
#define HOSTKIT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_health_s hk_health_t;
typedef struct hk_health_result_s hk_health_result_t;

typedef enum hk_health_status {
    HK_HEALTH_HEALTHY = 0,
    HK_HEALTH_DEGRADED = 1,
    HK_HEALTH_UNHEALTHY = 2
} hk_health_status_t;

/* "Healthy", "Degraded", "Unhealthy" ("Unknown" out of range). Static. Any thread. */
HK_EXTERN const char *hk_health_status_name(hk_health_status_t status);

/*
 * A check. Runs on a thread of the registry with the result to fill (valid
 * only during the call) and a token that is cancelled when the check's
 * timeout expires or the registry is freed: a long check should watch it and
 * return. Returns the check's status (a value out of range counts as
 * Unhealthy).
 */
typedef hk_health_status_t (*hk_health_check_cb)(hk_health_result_t *result, hk_token_t *token,
                                                 void *data);

/*
 * A check definition. Fill it with designated initialisers; fields added
 * later default to zero.
 *   name     1..63 characters, unique in the registry (copied).
 *   check    the function (required).
 *   data     passed to check; owned by the registry after a successful add.
 *   destroy  called once with data when the registry is freed, after no run
 *            of the check uses it any more (may be NULL).
 *   tags     space- or comma-separated tags ("live", "ready db"); may be NULL.
 *   timeout_ms  0: the default, 5000.
 */
typedef struct hk_health_check_def {
    const char *name;
    hk_health_check_cb check;
    void *data;
    hk_destroy_cb destroy;
    const char *tags;
    unsigned timeout_ms;
} hk_health_check_def_t;

/* ---- the result builder (inside a check) ------------------------------- */

/*
 * Sets the check's description (printf-style), replacing an earlier one.
 * Returns 0, -EINVAL or -ENOMEM (the report then shows no description).
 */
HK_EXTERN int hk_health_result_describe(hk_health_result_t *result, const char *fmt, ...)
    HK_PRINTF(2, 3);

/*
 * Adds a key/value pair to the check's data: a string (printf-style) or a
 * number (JSON number). Keys are copied; a key given twice keeps the last
 * value. Returns 0, -EINVAL (NULL or empty key) or -ENOMEM.
 */
HK_EXTERN int hk_health_result_set(hk_health_result_t *result, const char *key, const char *fmt,
                                   ...) HK_PRINTF(3, 4);
HK_EXTERN int hk_health_result_set_number(hk_health_result_t *result, const char *key,
                                          double value);

/* ---- registry ------------------------------------------------------------ */

/*
 * Creates an empty registry (the host makes its own: hk_host_health).
 * Returns 0 or -ENOMEM (*ret_health untouched).
 */
HK_EXTERN int hk_health_new(hk_health_t **ret_health);

/*
 * Frees the registry: cancels the tokens of running checks, joins the
 * threads that have returned and detaches those that have not (each keeps
 * what it uses alive; the destroy hooks run once the last has returned, on
 * its thread). Accepts NULL. Nothing may use the registry during or after.
 */
HK_EXTERN void hk_health_free(hk_health_t *health);

/*
 * Registers a check (see hk_health_check_def_t). Any thread, any time.
 * On failure nothing is kept and destroy is not called. Returns 0, -EINVAL
 * (no name, bad name, no check), -EEXIST (name taken) or -ENOMEM.
 */
HK_EXTERN int hk_health_add(hk_health_t *health, const hk_health_check_def_t *def);

/* How long a completed result is reused (ms; 0: never). Any thread. Returns 0 or -EINVAL. */
HK_EXTERN int hk_health_set_cache_ms(hk_health_t *health, uint64_t ms);

/* ---- reports --------------------------------------------------------------- */

typedef struct hk_health_data {
    const char *key;
    const char *value; /* the value as text (numbers too) */
    bool is_number;
    double number; /* when is_number */
} hk_health_data_t;

typedef struct hk_health_entry {
    const char *name;
    const char *tags; /* normalised: "live,ready"; "" when none */
    hk_health_status_t status;
    const char *description; /* "" when none */
    uint64_t duration_ns;    /* how long the check ran (its timeout when it timed out) */
    bool timed_out;
    bool cached; /* reused from an earlier run (see Caching) */
    const hk_health_data_t *data;
    size_t ndata;
} hk_health_entry_t;

typedef struct hk_health_report {
    hk_health_status_t status; /* worst of the entries; Healthy when there are none */
    uint64_t duration_ns;      /* how long the report took */
    const hk_health_entry_t *entries; /* in registration order */
    size_t n;
} hk_health_report_t;

/*
 * Runs the checks tagged `tag` (NULL or "": every check) as described above
 * and returns a report in *ret_report (free it with hk_health_report_free;
 * it stays valid after the registry is freed). Blocks the calling thread
 * until every matching check returned or timed out; do not call it on the
 * host loop thread (use a thread, or the cached result). `cancel` (may be
 * NULL) aborts the wait: then -ECANCELED and no report.
 * Returns 0, -EINVAL, -ECANCELED or -ENOMEM. A check whose thread cannot be
 * created is reported Unhealthy with the reason; that is not an error.
 */
HK_EXTERN int hk_health_report(hk_health_t *health, const char *tag, hk_token_t *cancel,
                               hk_health_report_t **ret_report);

/* Frees a report. Accepts NULL. Any thread. */
HK_EXTERN void hk_health_report_free(hk_health_report_t *report);

/* 200 when the report's status is Healthy or Degraded, 503 when Unhealthy. */
HK_EXTERN int hk_health_http_status(const hk_health_report_t *report);

/*
 * The report as JSON (see docs/health.md for the shape):
 *   {"status":"Degraded","durationMs":1.5,"checks":[{"name":"db","status":
 *    "Degraded","description":"slow","durationMs":1.2,"tags":["ready"],
 *    "timedOut":false,"cached":false,"data":{"latencyMs":1200}}]}
 * On success *ret_json is a NUL-terminated string to release with
 * hk_health_json_free. Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_health_report_json(const hk_health_report_t *report, char **ret_json);
HK_EXTERN void hk_health_json_free(char *json);

/*
 * A one-line summary for systemd's STATUS= (hk_host_set_status): "Healthy",
 * or the status followed by the checks that are not Healthy with their
 * descriptions, e.g. "Unhealthy: db=Unhealthy (timed out after 5s),
 * cache=Degraded (slow)". Writes at most len bytes including the NUL (truncating; never a
 * newline) and returns the length of the full line, as snprintf does, or
 * -EINVAL.
 */
HK_EXTERN int hk_health_report_status_line(const hk_health_report_t *report, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_HEALTH_H */
