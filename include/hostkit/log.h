/*
 * hostkit/log.h - structured logging: categories, levels, message templates,
 * scopes, filters from configuration, formatters and sinks behind a queue.
 *
 * A log (hk_log_t) is owned by the host builder and then the host; loggers
 * are per-category views of it (hk_log_get). Two families of calls:
 *
 *   hk_log_info(lg, "Processed {Count} items in {ElapsedMs} ms", n, ms);
 *       message templates (as .NET's ILogger): each {Name} hole takes the
 *       next argument, whose C type picks how it is kept (string, int64,
 *       uint64, double, bool; hk_log_time()/hk_log_errno() for times and
 *       errno values). The holes stay structured state: the json formatter
 *       writes them as typed values, the journald sink as fields.
 *   hk_info(lg, "Processed %d items", n);
 *       printf formats (type-checked by the compiler), no structured state.
 *
 * The level check happens in the macro, before any argument is evaluated:
 * a filtered call costs a load and a branch. An enabled message is rendered
 * on the calling thread (template or printf, values copied) and queued; one
 * writer thread per log formats it for each sink (console, file, journald,
 * custom sinks) and writes it, so a slow terminal never blocks the caller
 * (unless the queue is full and QueueFullMode is Wait). Lines from
 * concurrent threads never interleave. hk_log_flush() waits until every
 * message queued before it was written; the host flushes on every exit path.
 *
 * Configuration (read at build and on every reload; docs/logging.md):
 *   Logging:LogLevel:Default / Logging:LogLevel:{category prefix}
 *   Logging:{Sink}:LogLevel:...    (Sink: Console, File, Journal or a custom
 *                                   sink's name; wins over the global rules)
 *   Logging:Console:FormatterName  simple | json | systemd
 *   Logging:Console:Stream         stderr | stdout
 *   Logging:Console:FormatterOptions:TimestampFormat, UseUtcTimestamp,
 *                                    IncludeScopes, ColorBehavior
 *   Logging:File:Path, FormatterName, MaxFileSizeBytes, MaxFiles, FormatterOptions:*
 *   Logging:Journal:Enabled, SocketPath, SyslogIdentifier
 *   Logging:MaxQueueLength (2500), Logging:QueueFullMode (Wait | DropWrite)
 *
 * Thread-safety: every function here may be called from any thread unless
 * its comment says otherwise.
 */
#ifndef HOSTKIT_LOG_H
#define HOSTKIT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- values, fields and records -------------------------------------- */

typedef enum hk_log_type {
    HK_LOG_T_STR = 0,   /* v.s (NULL renders as "(null)") */
    HK_LOG_T_I64 = 1,   /* v.i */
    HK_LOG_T_U64 = 2,   /* v.u */
    HK_LOG_T_F64 = 3,   /* v.d */
    HK_LOG_T_BOOL = 4,  /* v.b */
    HK_LOG_T_TIME = 5,  /* v.i: nanoseconds since the Unix epoch (UTC) */
    HK_LOG_T_ERRNO = 6, /* v.i: an errno value (positive) */
    HK_LOG_T_MISSING = 7 /* a hole without an argument (rendered as "{Name}") */
} hk_log_type_t;

typedef struct hk_log_value {
    hk_log_type_t type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
} hk_log_value_t;

/* A named value: a template hole or a scope entry. */
typedef struct hk_log_field {
    const char *name;
    hk_log_value_t value;
} hk_log_field_t;

/*
 * One message, as sinks see it. Every pointer is valid only during the sink
 * call. `line`/`len` are set only for the hk_log_set_sink callback (the
 * console line, without colours, ending in '\n'); NULL otherwise.
 */
typedef struct hk_log_record {
    hk_log_level_t level;
    const char *category;
    int event_id;
    const char *message; /* the rendered message */
    const char *line;
    size_t len;
    const char *format;  /* the template or printf format ({OriginalFormat}) */
    const hk_log_field_t *fields; /* template holes, in order (none for printf) */
    size_t nfields;
    const hk_log_field_t *scopes; /* the thread's scopes, outermost first */
    size_t nscopes;
    int64_t time_ns;     /* CLOCK_REALTIME when logged */
    int err;             /* errno of the first hk_log_errno() argument, or 0 */
    const char *file;    /* call site (NULL when unknown) */
    int line_no;
    const char *func;
    long tid;            /* kernel thread id of the caller */
} hk_log_record_t;

/* ---- logs and loggers ---------------------------------------------------- */

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
    int _min_level; /* accessed atomically: the lowest level any sink takes */
};

/* Whether a message at this level would be written. One relaxed atomic load. */
static inline bool hk_logger_enabled(const hk_logger_t *logger, hk_log_level_t level) {
    return logger &&
           (int)level >= __atomic_load_n(&((const struct hk__logger_head *)(const void *)logger)
                                              ->_min_level,
                                         __ATOMIC_RELAXED);
}

/*
 * Waits until every message queued before the call has been written by
 * every sink (and the sinks flushed). Returns at once when called from a
 * sink callback. Accepts NULL.
 */
HK_EXTERN void hk_log_flush(hk_log_t *log);

/*
 * Asks the sinks to reopen their files (the file sink closes and reopens
 * Logging:File:Path, for an external logrotate). Returns at once; the
 * writer thread reopens before it writes the next message. The host calls
 * it on SIGUSR1. Not async-signal-safe.
 */
HK_EXTERN void hk_log_reopen(hk_log_t *log);

/* Counters since the log was created (for metrics). */
typedef struct hk_log_stats {
    uint64_t messages[6]; /* queued messages per level, Trace..Critical */
    uint64_t dropped;     /* dropped by QueueFullMode=DropWrite */
    uint64_t write_errors; /* failed sink writes (console, file, journal) */
} hk_log_stats_t;
HK_EXTERN void hk_log_stats(hk_log_t *log, hk_log_stats_t *ret_stats);

/*
 * A programmatic filter, consulted after the configuration rules for every
 * (sink, category) pair: it receives the configured minimum level and
 * returns the one to use (HK_LOG_NONE silences). Decisions are cached per
 * logger and sink, recomputed when the filter is set and on every
 * configuration change, so cb is not called per message. cb NULL removes it.
 */
typedef hk_log_level_t (*hk_log_filter_cb)(const char *sink, const char *category,
                                           hk_log_level_t configured, void *data);
HK_EXTERN void hk_log_set_filter(hk_log_t *log, hk_log_filter_cb cb, void *data);

/* ---- sinks ------------------------------------------------------------------ */

/*
 * A custom sink. write is called on the log's writer thread, one record at
 * a time, never concurrently with another call for the same log; flush
 * after each batch of records; reopen on hk_log_reopen; destroy when the
 * log is freed (after the last write). Only write is required. A sink must
 * not call hk_log_flush; it may log (the message is queued, not written
 * recursively).
 */
typedef struct hk_log_sink_ops {
    void (*write)(void *data, const hk_log_record_t *record);
    void (*flush)(void *data);
    void (*reopen)(void *data);
    void (*destroy)(void *data);
} hk_log_sink_ops_t;

/*
 * Adds a sink named `name` (1..31 characters of [A-Za-z0-9_-]; its levels
 * come from Logging:{name}:LogLevel:*, else the global rules). ops must
 * outlive the log. Call before the host runs (before other threads log).
 * Returns 0, -EINVAL (bad name, no write, a built-in name), -EEXIST, -ENOSPC
 * (more than 8 custom sinks) or -ENOMEM.
 */
HK_EXTERN int hk_log_add_sink(hk_log_t *log, const char *name, const hk_log_sink_ops_t *ops,
                              void *data);

/*
 * Replaces the console sink's output: cb receives each console record with
 * `line` rendered by the console formatter (no colours); cb NULL goes back
 * to writing to the console fd. While a callback is set the log is
 * synchronous: every sink is written by the logging thread itself, under
 * the log's lock, before the call returns (what tests and programs that must
 * see a line before going on want); the callback must then not log itself. hk_log_set_fd(log, fd) makes the
 * console write to fd (fd < 0: back to Logging:Console:Stream), removes a
 * callback and returns to queued delivery; the log never closes fd. Call
 * both before other threads log.
 */
typedef void (*hk_log_sink_cb)(const hk_log_record_t *record, void *data);
HK_EXTERN void hk_log_set_sink(hk_log_t *log, hk_log_sink_cb cb, void *data);
HK_EXTERN void hk_log_set_fd(hk_log_t *log, int fd);

/*
 * Formats a record with a built-in formatter ("simple", "json", "systemd";
 * default options: no timestamp for simple, no colours, no scopes in the
 * simple line, scopes in json) into buf (size
 * bytes, NUL-terminated, truncated when short). Returns the length the
 * whole line needs (without the NUL), or -EINVAL for an unknown formatter.
 * The line ends in '\n'. For custom sinks and tests.
 */
HK_EXTERN int hk_log_format_record(const hk_log_record_t *record, const char *formatter,
                                   char *buf, size_t size);

/* ---- writing ------------------------------------------------------------------ */

/*
 * Queues a message with a template and its arguments (nargs values). Use
 * the macros below: they check the level first and build the argument
 * array. Holes are {Name} ({{ and }} are literal braces; anything after a
 * ':' or ',' inside a hole is ignored). Holes take arguments by position;
 * a hole without one renders as "{Name}", surplus arguments are appended
 * as " [extra: ...]", so a mismatch is visible and never crashes. A message
 * longer than 8 KiB is truncated and ends with "...".
 */
HK_EXTERN void hk_logger_log(hk_logger_t *logger, hk_log_level_t level, int event_id,
                             const char *file, int line, const char *func, const char *tmpl,
                             const hk_log_value_t *args, size_t nargs);

/* printf-style messages (no structured state). Prefer the macros below. */
HK_EXTERN void hk_logger_write(hk_logger_t *logger, hk_log_level_t level, int event_id,
                               const char *fmt, ...) HK_PRINTF(4, 5);
HK_EXTERN void hk_logger_vwrite(hk_logger_t *logger, hk_log_level_t level, int event_id,
                                const char *fmt, va_list ap) HK_PRINTF(4, 0);
HK_EXTERN void hk_logger_write_at(hk_logger_t *logger, hk_log_level_t level, int event_id,
                                  const char *file, int line, const char *func, const char *fmt,
                                  ...) HK_PRINTF(7, 8);

/* Short tag of a level ("info"), or "????" for an out-of-range value. */
HK_EXTERN const char *hk_log_level_tag(hk_log_level_t level);
/* Full name of a level ("Information"), or "Unknown". */
HK_EXTERN const char *hk_log_level_name(hk_log_level_t level);

/* Parses "Trace".."Critical", "None" (case-insensitive). Returns 0 or -EINVAL. */
HK_EXTERN int hk_log_level_parse(const char *text, hk_log_level_t *ret_level);

/* ---- typed argument constructors ------------------------------------------------ */

static inline hk_log_value_t hk_log_str(const char *s) {
    hk_log_value_t v = {HK_LOG_T_STR, {.s = s}};
    return v;
}
static inline hk_log_value_t hk_log_i64(int64_t i) {
    hk_log_value_t v = {HK_LOG_T_I64, {.i = i}};
    return v;
}
static inline hk_log_value_t hk_log_u64(uint64_t u) {
    hk_log_value_t v = {HK_LOG_T_U64, {.u = u}};
    return v;
}
static inline hk_log_value_t hk_log_f64(double d) {
    hk_log_value_t v = {HK_LOG_T_F64, {.d = d}};
    return v;
}
static inline hk_log_value_t hk_log_bool(bool b) {
    hk_log_value_t v = {HK_LOG_T_BOOL, {.b = b}};
    return v;
}
/* A wall-clock time: nanoseconds since the Unix epoch; rendered as ISO 8601 UTC. */
static inline hk_log_value_t hk_log_time(int64_t ns_since_epoch) {
    hk_log_value_t v = {HK_LOG_T_TIME, {.i = ns_since_epoch}};
    return v;
}
/* An errno value (either sign): rendered as its text, kept as the record's err. */
static inline hk_log_value_t hk_log_errno(int err) {
    hk_log_value_t v = {HK_LOG_T_ERRNO, {.i = err < 0 ? -(int64_t)err : (int64_t)err}};
    return v;
}
static inline hk_log_value_t hk__log_value(hk_log_value_t v) { return v; }

/*
 * The value of one template argument, chosen by its C type at compile time.
 * A type without a mapping (a struct, a pointer other than char *) is a
 * compile error.
 */
#define HK_LOG_VALUE(x)                                                                          \
    _Generic((x),                                                                                \
        _Bool: hk_log_bool,                                                                      \
        char: hk_log_i64,                                                                        \
        signed char: hk_log_i64,                                                                 \
        short: hk_log_i64,                                                                       \
        int: hk_log_i64,                                                                         \
        long: hk_log_i64,                                                                        \
        long long: hk_log_i64,                                                                   \
        unsigned char: hk_log_u64,                                                               \
        unsigned short: hk_log_u64,                                                              \
        unsigned int: hk_log_u64,                                                                \
        unsigned long: hk_log_u64,                                                               \
        unsigned long long: hk_log_u64,                                                          \
        float: hk_log_f64,                                                                       \
        double: hk_log_f64,                                                                      \
        char *: hk_log_str,                                                                      \
        const char *: hk_log_str,                                                                \
        hk_log_value_t: hk__log_value)(x)

/* ---- scopes ------------------------------------------------------------------- */

/*
 * A scope: a key/value pushed on the calling thread and attached to every
 * message that thread logs until it is popped (nested scopes stack). The
 * scope lives in caller memory (usually the stack); its name and a string
 * value are referenced, not copied, until the pop. Pop on the same thread,
 * innermost first (popping an outer scope also works: it is unlinked).
 *
 *     hk_log_scope_t s;
 *     hk_log_scope_begin(&s, "RequestId", req->id);
 *     ...
 *     hk_log_scope_end(&s);
 */
typedef struct hk_log_scope {
    hk_log_field_t field;
    struct hk_log_scope *_prev;
} hk_log_scope_t;
HK_EXTERN void hk_log_scope_push(hk_log_scope_t *scope, const char *name, hk_log_value_t value);
HK_EXTERN void hk_log_scope_pop(hk_log_scope_t *scope);
#define hk_log_scope_begin(scope, name, value) hk_log_scope_push((scope), (name), HK_LOG_VALUE(value))
#define hk_log_scope_end(scope) hk_log_scope_pop(scope)

/* ---- macros -------------------------------------------------------------------- */

/* Private: argument counting and the argument array (up to 16 arguments). */
#define HK__LOG_NARG(...) HK__LOG_NARG_(__VA_ARGS__, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define HK__LOG_NARG_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, N, ...) N
#define HK__LOG_CAT(a, b) HK__LOG_CAT_(a, b)
#define HK__LOG_CAT_(a, b) a##b
#define HK__V HK_LOG_VALUE
#define HK__LOG_A1(f) (f), (const hk_log_value_t *)0, 0
#define HK__LOG_A2(f, a) (f), (const hk_log_value_t[]){HK__V(a)}, 1
#define HK__LOG_A3(f, a, b) (f), (const hk_log_value_t[]){HK__V(a), HK__V(b)}, 2
#define HK__LOG_A4(f, a, b, c) (f), (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c)}, 3
#define HK__LOG_A5(f, a, b, c, d)                                                                \
    (f), (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d)}, 4
#define HK__LOG_A6(f, a, b, c, d, e)                                                             \
    (f), (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e)}, 5
#define HK__LOG_A7(f, a, b, c, d, e, g)                                                          \
    (f), (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g)}, 6
#define HK__LOG_A8(f, a, b, c, d, e, g, h)                                                       \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h)},                                                      \
        7
#define HK__LOG_A9(f, a, b, c, d, e, g, h, i)                                                    \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i)},                                            \
        8
#define HK__LOG_A10(f, a, b, c, d, e, g, h, i, j)                                                \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j)},                                  \
        9
#define HK__LOG_A11(f, a, b, c, d, e, g, h, i, j, k)                                             \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k)},                        \
        10
#define HK__LOG_A12(f, a, b, c, d, e, g, h, i, j, k, l)                                          \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l)},              \
        11
#define HK__LOG_A13(f, a, b, c, d, e, g, h, i, j, k, l, m)                                       \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l), HK__V(m)},    \
        12
#define HK__LOG_A14(f, a, b, c, d, e, g, h, i, j, k, l, m, n)                                    \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l), HK__V(m),     \
                                 HK__V(n)},                                                      \
        13
#define HK__LOG_A15(f, a, b, c, d, e, g, h, i, j, k, l, m, n, o)                                 \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l), HK__V(m),     \
                                 HK__V(n), HK__V(o)},                                            \
        14
#define HK__LOG_A16(f, a, b, c, d, e, g, h, i, j, k, l, m, n, o, p)                              \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l), HK__V(m),     \
                                 HK__V(n), HK__V(o), HK__V(p)},                                  \
        15
#define HK__LOG_A17(f, a, b, c, d, e, g, h, i, j, k, l, m, n, o, p, q)                           \
    (f),                                                                                         \
        (const hk_log_value_t[]){HK__V(a), HK__V(b), HK__V(c), HK__V(d), HK__V(e), HK__V(g),     \
                                 HK__V(h), HK__V(i), HK__V(j), HK__V(k), HK__V(l), HK__V(m),     \
                                 HK__V(n), HK__V(o), HK__V(p), HK__V(q)},                        \
        16
#define HK__LOG_ARGS(...) HK__LOG_CAT(HK__LOG_A, HK__LOG_NARG(__VA_ARGS__))(__VA_ARGS__)

/*
 * Template messages: hk_log_at(logger, level, event_id, template, args...)
 * and the per-level shorthands (event id 0). Up to 16 arguments.
 */
#define hk_log_at(logger, level, event_id, ...)                                                 \
    do {                                                                                         \
        hk_logger_t *hk__lg = (logger);                                                          \
        if (hk_logger_enabled(hk__lg, (level)))                                                  \
            hk_logger_log(hk__lg, (level), (event_id), __FILE__, __LINE__, __func__,             \
                          HK__LOG_ARGS(__VA_ARGS__));                                            \
    } while (0)
#define hk_log_trace(logger, ...) hk_log_at((logger), HK_LOG_TRACE, 0, __VA_ARGS__)
#define hk_log_debug(logger, ...) hk_log_at((logger), HK_LOG_DEBUG, 0, __VA_ARGS__)
#define hk_log_info(logger, ...) hk_log_at((logger), HK_LOG_INFO, 0, __VA_ARGS__)
#define hk_log_warn(logger, ...) hk_log_at((logger), HK_LOG_WARN, 0, __VA_ARGS__)
#define hk_log_error(logger, ...) hk_log_at((logger), HK_LOG_ERROR, 0, __VA_ARGS__)
#define hk_log_critical(logger, ...) hk_log_at((logger), HK_LOG_CRITICAL, 0, __VA_ARGS__)

/* printf messages: hk_log(logger, level, fmt, ...), hk_log_event(..., event_id, fmt, ...). */
#define hk_log(logger, level, ...)                                                              \
    do {                                                                                         \
        hk_logger_t *hk__lg = (logger);                                                          \
        if (hk_logger_enabled(hk__lg, (level)))                                                  \
            hk_logger_write_at(hk__lg, (level), 0, __FILE__, __LINE__, __func__, __VA_ARGS__);   \
    } while (0)
#define hk_log_event(logger, level, event_id, ...)                                              \
    do {                                                                                         \
        hk_logger_t *hk__lg = (logger);                                                          \
        if (hk_logger_enabled(hk__lg, (level)))                                                  \
            hk_logger_write_at(hk__lg, (level), (event_id), __FILE__, __LINE__, __func__,        \
                               __VA_ARGS__);                                                     \
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
