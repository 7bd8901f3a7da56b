/*
 * hostkit/log.h - the logger: categories, levels, one line per message.
 *
 * A log (hk_log_t) is owned by the host builder and then the host; loggers
 * are per-category views of it (hk_log_get). Each enabled message is
 * rendered as one line, e.g.
 *     info: hostkit.lifetime[0] Application started. Press Ctrl+C to shut down.
 * and written to the sink (stderr by default) under the log's lock, in one
 * write(2) call (repeated only if the kernel writes part of it), so lines
 * from concurrent threads never interleave. The level check happens in the macro,
 * before any argument is evaluated: a filtered call costs a load and a branch.
 *
 * Minimum levels come from configuration: Logging:LogLevel:Default (default
 * Information) and Logging:LogLevel:{category prefix} (the longest key that
 * is a prefix of the category wins, case-insensitive, as in .NET; "None"
 * silences). They are read when the host is built and again on every
 * configuration reload.
 *
 * Thread-safety: hk_log_get, hk_logger_enabled, hk_logger_write and the
 * macros may be called from any thread. hk_log_set_sink and hk_log_set_fd
 * must be called before other threads log.
 */
#ifndef HOSTKIT_LOG_H
#define HOSTKIT_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hk_log_level {
    HK_LOG_TRACE = 0,    /* "trce" */
    HK_LOG_DEBUG = 1,    /* "dbug" */
    HK_LOG_INFO = 2,     /* "info" */
    HK_LOG_WARN = 3,     /* "warn" */
    HK_LOG_ERROR = 4,    /* "fail" */
    HK_LOG_CRITICAL = 5, /* "crit" */
    HK_LOG_NONE = 6      /* as a minimum level: log nothing */
} hk_log_level_t;

typedef struct hk_log_s hk_log_t;
typedef struct hk_logger_s hk_logger_t;

/*
 * Receives every enabled message. line is the fully rendered line with its
 * trailing '\n' (len bytes, also NUL-terminated); message is the message text
 * alone. Called on the logging thread, serialised by the log (never two calls
 * at once). Both strings are valid only during the call.
 */
typedef struct hk_log_record {
    hk_log_level_t level;
    const char *category;
    int event_id;
    const char *message;
    const char *line;
    size_t len;
} hk_log_record_t;
typedef void (*hk_log_sink_cb)(const hk_log_record_t *record, void *data);

/*
 * hk_log_set_sink replaces the sink (default: write the line to an fd,
 * stderr unless hk_log_set_fd chose another); cb NULL goes back to writing
 * to that fd. hk_log_set_fd(log, fd) writes to fd from now on (fd < 0:
 * stderr) and removes a sink; the log never closes it. Call both before any
 * other thread logs.
 */
HK_EXTERN void hk_log_set_sink(hk_log_t *log, hk_log_sink_cb cb, void *data);
HK_EXTERN void hk_log_set_fd(hk_log_t *log, int fd);

/*
 * The logger for a category (e.g. "MyApp.Worker"), created on first use and
 * owned by the log: the same category returns the same pointer, valid until
 * the log is freed (with its host). Returns NULL only when out of memory or
 * given NULL; every logging call accepts a NULL logger and does nothing.
 */
HK_EXTERN hk_logger_t *hk_log_get(hk_log_t *log, const char *category);

/* The logger's category (owned by the logger). */
HK_EXTERN const char *hk_logger_category(const hk_logger_t *logger);

/* Private: every logger starts with this, so the check below can be inline. */
struct hk__logger_head {
    int _min_level; /* accessed atomically */
};

/* Whether a message at this level would be written. One relaxed atomic load. */
static inline bool hk_logger_enabled(const hk_logger_t *logger, hk_log_level_t level) {
    return logger &&
           (int)level >= __atomic_load_n(&((const struct hk__logger_head *)(const void *)logger)
                                              ->_min_level,
                                         __ATOMIC_RELAXED);
}

/*
 * Formats (printf-style) and writes one message. Prefer the macros below,
 * which skip argument evaluation when the level is disabled. A message longer
 * than 8 KiB is truncated and ends with "...". Never fails visibly: a sink
 * error is ignored.
 */
HK_EXTERN void hk_logger_write(hk_logger_t *logger, hk_log_level_t level, int event_id,
                               const char *fmt, ...) HK_PRINTF(4, 5);
HK_EXTERN void hk_logger_vwrite(hk_logger_t *logger, hk_log_level_t level, int event_id,
                                const char *fmt, va_list ap) HK_PRINTF(4, 0);

/* Short tag of a level ("info"), or "????" for an out-of-range value. */
HK_EXTERN const char *hk_log_level_tag(hk_log_level_t level);

/* Parses "Trace".."Critical", "None" (case-insensitive). Returns 0 or -EINVAL. */
HK_EXTERN int hk_log_level_parse(const char *text, hk_log_level_t *ret_level);

#define hk_log(logger, level, ...)                                                              \
    do {                                                                                         \
        hk_logger_t *hk__lg = (logger);                                                          \
        if (hk_logger_enabled(hk__lg, (level)))                                                  \
            hk_logger_write(hk__lg, (level), 0, __VA_ARGS__);                                    \
    } while (0)
#define hk_log_event(logger, level, event_id, ...)                                              \
    do {                                                                                         \
        hk_logger_t *hk__lg = (logger);                                                          \
        if (hk_logger_enabled(hk__lg, (level)))                                                  \
            hk_logger_write(hk__lg, (level), (event_id), __VA_ARGS__);                           \
    } while (0)
#define hk_trace(logger, ...) hk_log((logger), HK_LOG_TRACE, __VA_ARGS__)
#define hk_debug(logger, ...) hk_log((logger), HK_LOG_DEBUG, __VA_ARGS__)
#define hk_info(logger, ...) hk_log((logger), HK_LOG_INFO, __VA_ARGS__)
#define hk_warn(logger, ...) hk_log((logger), HK_LOG_WARN, __VA_ARGS__)
#define hk_error(logger, ...) hk_log((logger), HK_LOG_ERROR, __VA_ARGS__)
#define hk_critical(logger, ...) hk_log((logger), HK_LOG_CRITICAL, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_LOG_H */
