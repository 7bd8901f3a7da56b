/*
 * Private structures of the logger, shared by its parts: log.c (loggers,
 * filters, settings, the queue and the writer thread), record.c (rendering a
 * call into a queued record), format.c (simple/json/systemd lines) and
 * sinks.c (console, file, journald). Depends on src/common and log.h.
 */
#ifndef HK_SRC_LOG_INT_H
#define HK_SRC_LOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "hostkit/log.h"

#define HK__LOG_MSG_MAX 8192
#define HK__LOG_MAX_SINKS 11 /* console, file, journal + 8 custom */
enum { SINK_CONSOLE = 0, SINK_FILE = 1, SINK_JOURNAL = 2, SINK_CUSTOM0 = 3 };

enum { FMT_SIMPLE = 0, FMT_JSON = 1, FMT_SYSTEMD = 2, FMT_AUTO = -1 };
enum { COLOR_DEFAULT = 0, COLOR_ENABLED = 1, COLOR_DISABLED = 2 };
enum { FULL_WAIT = 0, FULL_DROP = 1 };

/* A growable byte buffer that never fails visibly: on OOM it stops growing. */
typedef struct hk__buf {
    char *p;
    size_t len, cap;
    bool oom;
} hk__buf_t;
void hk__buf_reserve(hk__buf_t *b, size_t extra);
/* The hot appends, inline: the formatters call them for every piece. */
static inline void hk__buf_put(hk__buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap)
        hk__buf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static inline void hk__buf_puts(hk__buf_t *b, const char *s) { hk__buf_put(b, s, strlen(s)); }
static inline void hk__buf_putc(hk__buf_t *b, char c) {
    if (b->len + 2 > b->cap)
        hk__buf_reserve(b, 1);
    if (b->oom)
        return;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}
void hk__buf_printf(hk__buf_t *b, const char *fmt, ...) HK_PRINTF(2, 3);
void hk__buf_free(hk__buf_t *b);

/* A queued message: the public record plus the memory its pointers use. */
typedef struct hk__rec {
    struct hk__rec *next;
    hk_logger_t *logger;
    bool pooled; /* a HK__LOG_SLOT-sized block from the log's pool */
    hk_log_record_t r;
    /* fields, scopes and strings follow */
} hk__rec_t;

/* Records up to this size come from a per-log pool of blocks the writer
 * returns after each batch: no malloc/free pair crossing threads. */
#define HK__LOG_SLOT 512
/* log.c: a block of size bytes (pooled when size <= HK__LOG_SLOT); sets *pooled. */
void *hk__log_rec_alloc(hk_log_t *log, size_t size, bool *pooled);

/* Builds a record (one allocation) from a call; NULL when out of memory. */
hk__rec_t *hk__rec_new(hk_log_t *log, hk_logger_t *lg, const char *category, hk_log_level_t level, int event_id,
                       const char *file, int line, const char *func, const char *format,
                       const char *message, size_t msglen, const hk_log_field_t *fields,
                       size_t nfields);
/* Renders a template with its arguments into msg (cap bytes); fills fields
 * (up to max) with the holes. Returns the message length. */
size_t hk__render_template(const char *tmpl, const hk_log_value_t *args, size_t nargs, char *msg,
                           size_t cap, hk_log_field_t *fields, size_t max, size_t *ret_nfields,
                           char *names, size_t names_cap);
/* Appends a value as message text. */
void hk__value_text(hk__buf_t *b, const hk_log_value_t *v);
/* The same without a buffer: the text is *ret_str when set (strings, bool,
 * errno), else tmp (cap >= 64, NUL-terminated). Returns its length. */
size_t hk__value_chars(char *tmp, size_t cap, const hk_log_value_t *v, const char **ret_str);

/* Formatter options (per sink). */
typedef struct hk__fmt_opts {
    int formatter;        /* FMT_* */
    char *ts_format;      /* NULL: no timestamp (simple) */
    bool utc;
    bool include_scopes;
    bool colors;
} hk__fmt_opts_t;
/* Appends the formatted line (ending in '\n') for rec. */
void hk__format(hk__buf_t *b, const hk_log_record_t *rec, const hk__fmt_opts_t *o);
/* Appends s as a JSON string (with quotes): control characters escaped,
 * invalid UTF-8 replaced by U+FFFD. */
void hk__json_string(hk__buf_t *b, const char *s, size_t n);
/* Parses a .NET-style timestamp format; returns 0 or -EINVAL. */
int hk__ts_format_check(const char *fmt);

/* Settings read from configuration, applied by the writer thread. */
typedef struct hk__log_rule {
    char *sink;   /* NULL: global rule */
    char *prefix; /* "" for Default */
    hk_log_level_t level;
} hk__log_rule_t;

typedef struct hk__log_settings {
    hk__log_rule_t *rules;
    size_t nrules;
    /* console */
    int console_fd; /* 1 or 2 */
    hk__fmt_opts_t console;
    int color_behavior;
    /* file */
    char *file_path; /* NULL: no file sink */
    hk__fmt_opts_t file;
    uint64_t file_max_bytes; /* 0: no rolling */
    unsigned file_max_files;
    /* journal */
    bool journal;
    char *journal_socket;
    char *journal_ident;
    /* queue */
    size_t max_queue;
    int full_mode;
} hk__log_settings_t;

void hk__log_settings_free(hk__log_settings_t *s);

/* The built-in sinks (sinks.c); used by the writer thread only. */
typedef struct hk__console {
    int fd;          /* configured fd */
    int fd_override; /* hk_log_set_fd, or -1 */
    hk_log_sink_cb cb;
    void *cb_data;
    hk__fmt_opts_t opts;
    hk__buf_t out;
} hk__console_t;

typedef struct hk__file {
    char *path;
    int fd;
    uint64_t size;
    uint64_t max_bytes;
    unsigned max_files;
    hk__fmt_opts_t opts;
    hk__buf_t out;
    bool failed; /* open failed: reported once */
} hk__file_t;

typedef struct hk__journal {
    char *socket_path;
    char *ident;
    int fd;
    hk__buf_t dg;
} hk__journal_t;

typedef struct hk__sink {
    char name[32];
    const hk_log_sink_ops_t *ops;
    void *data;
} hk__sink_t;

void hk__console_write(hk__console_t *c, const hk_log_record_t *rec, atomic_ulong *errors);
void hk__console_flush(hk__console_t *c, atomic_ulong *errors);
void hk__file_configure(hk__file_t *f, const hk__log_settings_t *s, atomic_ulong *errors);
void hk__file_write(hk__file_t *f, const hk_log_record_t *rec, atomic_ulong *errors);
void hk__file_flush(hk__file_t *f, atomic_ulong *errors);
void hk__file_reopen(hk__file_t *f, atomic_ulong *errors);
void hk__file_close(hk__file_t *f);
void hk__journal_configure(hk__journal_t *j, const hk__log_settings_t *s);
void hk__journal_write(hk__journal_t *j, const hk_log_record_t *rec, atomic_ulong *errors);
void hk__journal_close(hk__journal_t *j);

long hk__gettid(void);

#endif
