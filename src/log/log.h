/*
 * Private interface of the logger (src/log) for the host: create and free a
 * log, apply or check the Logging section, flush on exit paths.
 * Depends on src/common and the public config/log headers.
 */
#ifndef HK_SRC_LOG_H
#define HK_SRC_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "hostkit/config.h"
#include "hostkit/log.h"

int hk__log_new(hk_log_t **ret_log);
/* Drains the queue, joins the writer thread, closes the sinks, frees. */
void hk__log_free(hk_log_t *log);

/*
 * Reads the Logging section (levels, sinks, formatters, queue) and applies
 * it: every logger's cached levels are recomputed, sinks reconfigured.
 * Errors (bad level names, an unopenable Logging:File:Path ...) are
 * recorded in config; what is valid is applied anyway.
 * Returns 0, -EINVAL / -ERANGE (recorded errors) or -ENOMEM.
 */
int hk__log_configure(hk_log_t *log, hk_config_t *config);
/* The same checks without applying anything (for a pending reload). */
int hk__log_check(hk_config_t *config);

/* The same with a bound (ms); returns whether everything was written. */
bool hk__log_flush_timeout(hk_log_t *log, int64_t timeout_ms);

#endif
