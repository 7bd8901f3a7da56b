/*
 * Private interface of the logger (src/log/log.c) for the host: create and
 * free a log, apply the Logging:LogLevel section, flush on exit paths.
 * Depends on src/common and the public config/log headers.
 */
#ifndef HK_SRC_LOG_H
#define HK_SRC_LOG_H

#include "hostkit/config.h"
#include "hostkit/log.h"

int hk__log_new(hk_log_t **ret_log);
void hk__log_free(hk_log_t *log);

/*
 * Reads Logging:LogLevel:* from config and recomputes every logger's level.
 * Bad level names are recorded as configuration errors (the build fails).
 * Returns 0, -EINVAL (a bad level) or -ENOMEM.
 */
int hk__log_configure(hk_log_t *log, hk_config_t *config);

/* Pushes out anything buffered. The logger writes synchronously today, so
 * this only orders with concurrent writers; the async sink will drain here. */
void hk__log_flush(hk_log_t *log);

#endif
