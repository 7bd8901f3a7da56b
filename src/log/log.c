/*
 * The log (include/hostkit/log.h): per-category loggers with cached
 * per-sink minimum levels, settings from the Logging section, the bounded
 * queue and the one writer thread that drains it into the sinks.
 * Depends on libc, pthreads, src/common, the config store and log_int.h.
 *
 * Locks, in the order they may be taken: `wmu` (the sinks' state: held by
 * the writer while it writes a batch, and by whoever reconfigures a sink)
 * -> `mu` (loggers, settings, filter, custom sink list) -> `qmu` (the
 * queue). A sink may log from its write callback (hk_log_get takes `mu`,
 * the enqueue `qmu`), so nothing holds `mu` while it waits for `wmu`.
 * Levels are written under `mu` and read with relaxed atomic loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config/config_int.h"
#include "log/log.h"
#include "log/log_int.h"
#include "systemd/systemd_int.h"

#define MAX_CUSTOM 8
#define MAX_HOLES 32
#define POOL_MAX 4096 /* pooled record blocks kept: 2 MiB */

struct hk_logger_s {
    struct hk__logger_head head; /* must stay first: read by hk_logger_enabled */
    char *category;
    hk_log_t *log;
    struct hk_logger_s *next;
    int sink_min[HK__LOG_MAX_SINKS]; /* accessed atomically */
};

struct hk_log_s {
    pthread_mutex_t mu;
    hk_logger_t *loggers;
    hk__log_settings_t settings;
    hk_log_filter_cb filter;
    void *filter_data;
    hk__sink_t custom[MAX_CUSTOM];
    size_t ncustom;
    hk_logger_t *lg_self; /* hostkit.logging: drop and sink error reports */

    pthread_mutex_t wmu;
    hk__console_t console;
    hk__file_t file;
    hk__journal_t journal;
    bool journal_on;
    uint64_t dropped_reported;
    unsigned long errors_reported;

    pthread_mutex_t qmu;
    pthread_cond_t nonempty, space, done_cv;
    hk__rec_t *head, *tail;
    size_t qlen;
    size_t max_queue;
    int full_mode;
    uint64_t enq, done;
    bool writer_started, writer_failed, stopping, writer_waiting;
    bool sync; /* a hk_log_set_sink callback: every sink written by the caller */
    int space_waiters, flush_waiters;
    pthread_t writer;
    atomic_bool reopen;

    /* record pool (HK__LOG_SLOT blocks): producers take, the writer returns */
    pthread_mutex_t pmu;
    void *pool;   /* singly linked through the first word */
    size_t npool;

    atomic_ulong counts[6];
    atomic_ulong dropped;
    atomic_ulong errors;
};

static _Thread_local const hk_log_t *tl_writer_of;
/* The log whose sinks this thread is writing to synchronously (holding wmu). */
static _Thread_local const hk_log_t *tl_writing;

static const char *const level_names[] = {"Trace",   "Debug",    "Information", "Warning",
                                          "Error",   "Critical", "None"};
static const char *const builtin_sinks[] = {"Console", "File", "Journal"};
static const char *const formatter_names[] = {"simple", "json", "systemd"};

int hk_log_level_parse(const char *text, hk_log_level_t *ret_level) {
    if (!text || !ret_level)
        return -EINVAL;
    for (size_t i = 0; i < HK_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *ret_level = (hk_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- settings ---- */

void hk__log_settings_free(hk__log_settings_t *s) {
    for (size_t i = 0; i < s->nrules; i++) {
        hk__free(s->rules[i].sink);
        hk__free(s->rules[i].prefix);
    }
    hk__free(s->rules);
    hk__free(s->console.ts_format);
    hk__free(s->file_path);
    hk__free(s->file.ts_format);
    hk__free(s->journal_socket);
    hk__free(s->journal_ident);
    memset(s, 0, sizeof *s);
}

static int defaults(hk__log_settings_t *s) {
    memset(s, 0, sizeof *s);
    s->console_fd = STDERR_FILENO;
    s->console.formatter = FMT_AUTO;
    s->file.formatter = FMT_SIMPLE;
    s->file_max_bytes = 10 * 1024 * 1024;
    s->file_max_files = 5;
    s->max_queue = 2500;
    s->full_mode = FULL_WAIT;
    extern char *program_invocation_short_name;
    s->journal_socket = hk__strdup("/run/systemd/journal/socket");
    s->journal_ident = hk__strdup(program_invocation_short_name);
    s->file.ts_format = hk__strdup("yyyy-MM-ddTHH:mm:ss.fffzzz ");
    return s->journal_socket && s->journal_ident && s->file.ts_format ? 0 : -ENOMEM;
}

static int keep(int rc, int r) { return rc == -ENOMEM ? rc : (r < 0 ? r : rc); }

static int read_fmt_opts(hk_config_t *c, const char *sink, hk__fmt_opts_t *o, bool with_colors,
                         int *color_behavior) {
    char key[128];
    int rc = 0, f = o->formatter;
    snprintf(key, sizeof key, "Logging:%s:FormatterName", sink);
    if (hk_config_get(c, key) && *hk_config_get(c, key))
        rc = keep(rc, hk_config_get_enum(c, key, formatter_names, 3, f, &f));
    o->formatter = f;
    snprintf(key, sizeof key, "Logging:%s:FormatterOptions:TimestampFormat", sink);
    const char *ts = hk_config_get(c, key);
    if (ts && *ts) {
        if (hk__ts_format_check(ts) < 0) {
            hk_config_record_error(c, "%s: \"%s\" is not a timestamp format (at most 64 "
                                       "characters, quotes closed)", key, ts);
            rc = keep(rc, -EINVAL);
        } else {
            hk__free(o->ts_format);
            if (!(o->ts_format = hk__strdup(ts)))
                return -ENOMEM;
        }
    }
    bool b = o->utc;
    snprintf(key, sizeof key, "Logging:%s:FormatterOptions:UseUtcTimestamp", sink);
    rc = keep(rc, hk_config_get_bool(c, key, b, &b));
    o->utc = b;
    b = o->include_scopes;
    snprintf(key, sizeof key, "Logging:%s:FormatterOptions:IncludeScopes", sink);
    rc = keep(rc, hk_config_get_bool(c, key, b, &b));
    o->include_scopes = b;
    if (with_colors) {
        static const char *const cb[] = {"Default", "Enabled", "Disabled"};
        int v = COLOR_DEFAULT;
        snprintf(key, sizeof key, "Logging:%s:FormatterOptions:ColorBehavior", sink);
        rc = keep(rc, hk_config_get_enum(c, key, cb, 3, v, &v));
        *color_behavior = v;
    }
    return rc;
}

/* "Logging:LogLevel:X" (global) and "Logging:S:LogLevel:X" (sink S). */
static int read_rules(hk_config_t *c, hk__log_settings_t *s) {
    int rc = 0;
    size_t n = hk_config_count(c);
    s->rules = hk__calloc(n ? n : 1, sizeof *s->rules);
    if (!s->rules)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *key = hk_config_key_at(c, i);
        if (strncasecmp(key, "Logging:", 8) != 0)
            continue;
        const char *rest = key + 8, *sink = NULL;
        size_t sink_len = 0;
        if (strncasecmp(rest, "LogLevel:", 9) == 0) {
            rest += 9;
        } else {
            const char *colon = strchr(rest, ':');
            if (!colon || strncasecmp(colon + 1, "LogLevel:", 9) != 0)
                continue;
            sink = rest;
            sink_len = (size_t)(colon - rest);
            rest = colon + 10;
        }
        if (!*rest)
            continue;
        int level;
        int r = hk_config_get_enum(c, key, level_names, HK_ARRAY_SIZE(level_names), HK_LOG_INFO,
                                   &level);
        if (r < 0) {
            rc = keep(rc, r);
            continue;
        }
        hk__log_rule_t *rule = &s->rules[s->nrules];
        rule->prefix = hk__strdup(strcasecmp(rest, "Default") == 0 ? "" : rest);
        rule->sink = sink ? hk__strndup(sink, sink_len) : NULL;
        rule->level = (hk_log_level_t)level;
        s->nrules++;
        if (!rule->prefix || (sink && !rule->sink))
            return -ENOMEM;
    }
    return rc;
}

/* Reads the Logging section into *s (defaults for what is absent). Errors
 * are recorded in the store. Returns 0, -EINVAL/-ERANGE or -ENOMEM. */
static int read_settings(hk_config_t *c, hk__log_settings_t *s) {
    int rc = defaults(s);
    if (rc < 0 || !c)
        return rc;
    rc = read_rules(c, s);
    if (rc == -ENOMEM)
        return rc;
    static const char *const streams[] = {"stderr", "stdout"};
    int v = 0;
    rc = keep(rc, hk_config_get_enum(c, "Logging:Console:Stream", streams, 2, 0, &v));
    s->console_fd = v == 1 ? STDOUT_FILENO : STDERR_FILENO;
    rc = keep(rc, read_fmt_opts(c, "Console", &s->console, true, &s->color_behavior));

    const char *path = hk_config_get(c, "Logging:File:Path");
    if (path && *path) {
        if (!(s->file_path = hk__strdup(path)))
            return -ENOMEM;
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            hk_config_record_error(c, "Logging:File:Path: cannot open \"%s\": %s", path,
                                    hk_strerror(-errno));
            rc = keep(rc, -EINVAL);
        } else {
            close(fd);
        }
    }
    rc = keep(rc, read_fmt_opts(c, "File", &s->file, false, NULL));
    const char *fts = hk_config_get(c, "Logging:File:FormatterOptions:TimestampFormat");
    if (s->file.formatter != FMT_SIMPLE && !(fts && *fts)) {
        /* the file's default timestamp is for simple lines; json has its own */
        hk__free(s->file.ts_format);
        s->file.ts_format = NULL;
    }
    int64_t i64;
    rc = keep(rc, hk_config_get_int(c, "Logging:File:MaxFileSizeBytes", (int64_t)s->file_max_bytes,
                                    0, INT64_MAX, &i64));
    s->file_max_bytes = (uint64_t)i64;
    rc = keep(rc, hk_config_get_int(c, "Logging:File:MaxFiles", s->file_max_files, 1, 1000, &i64));
    s->file_max_files = (unsigned)i64;

    bool on = false;
    rc = keep(rc, hk_config_get_bool(c, "Logging:Journal:Enabled", false, &on));
    s->journal = on;
    const char *sp = hk_config_get(c, "Logging:Journal:SocketPath");
    if (sp && *sp) {
        hk__free(s->journal_socket);
        if (!(s->journal_socket = hk__strdup(sp)))
            return -ENOMEM;
    }
    const char *ident = hk_config_get(c, "Logging:Journal:SyslogIdentifier");
    if (ident && *ident) {
        hk__free(s->journal_ident);
        if (!(s->journal_ident = hk__strdup(ident)))
            return -ENOMEM;
    }
    rc = keep(rc, hk_config_get_int(c, "Logging:MaxQueueLength", 2500, 1, 10000000, &i64));
    s->max_queue = (size_t)i64;
    static const char *const modes[] = {"Wait", "DropWrite"};
    v = FULL_WAIT;
    rc = keep(rc, hk_config_get_enum(c, "Logging:QueueFullMode", modes, 2, FULL_WAIT, &v));
    s->full_mode = v;
    return rc;
}

int hk__log_check(hk_config_t *config) {
    hk__log_settings_t s;
    int rc = read_settings(config, &s);
    hk__log_settings_free(&s);
    return rc;
}

/* ---- levels ---- */

static const char *sink_name(const hk_log_t *log, size_t i) {
    return i < SINK_CUSTOM0 ? builtin_sinks[i] : log->custom[i - SINK_CUSTOM0].name;
}

static bool sink_active(const hk_log_t *log, size_t i) {
    if (i == SINK_CONSOLE)
        return true;
    if (i == SINK_FILE)
        return log->settings.file_path != NULL;
    if (i == SINK_JOURNAL)
        return log->settings.journal;
    return i - SINK_CUSTOM0 < log->ncustom;
}

/* Longest matching prefix among the rules for `sink` (NULL: global). */
static bool match_rules(const hk__log_settings_t *s, const char *sink, const char *category,
                        hk_log_level_t *ret) {
    size_t best = 0;
    bool found = false;
    for (size_t i = 0; i < s->nrules; i++) {
        const hk__log_rule_t *r = &s->rules[i];
        if ((sink == NULL) != (r->sink == NULL) || (sink && strcasecmp(sink, r->sink) != 0))
            continue;
        size_t n = strlen(r->prefix);
        if ((!found || n >= best) && strncasecmp(category, r->prefix, n) == 0) {
            best = n;
            *ret = r->level;
            found = true;
        }
    }
    return found;
}

/* Under mu. */
static void compute_levels(hk_log_t *log, hk_logger_t *l) {
    int min = HK_LOG_NONE;
    for (size_t i = 0; i < HK__LOG_MAX_SINKS; i++) {
        hk_log_level_t lv = HK_LOG_NONE;
        if (sink_active(log, i)) {
            const char *name = sink_name(log, i);
            if (!match_rules(&log->settings, name, l->category, &lv) &&
                !match_rules(&log->settings, NULL, l->category, &lv))
                lv = HK_LOG_INFO;
            if (log->filter) {
                lv = log->filter(name, l->category, lv, log->filter_data);
                if ((unsigned)lv > HK_LOG_NONE)
                    lv = HK_LOG_NONE;
            }
        }
        __atomic_store_n(&l->sink_min[i], (int)lv, __ATOMIC_RELAXED);
        if ((int)lv < min)
            min = (int)lv;
    }
    __atomic_store_n(&l->head._min_level, min, __ATOMIC_RELAXED);
}

static void recompute_all(hk_log_t *log) {
    for (hk_logger_t *l = log->loggers; l; l = l->next)
        compute_levels(log, l);
}

/* ---- sinks' state (under wmu) ---- */

static void apply_sinks(hk_log_t *log) {
    const hk__log_settings_t *s = &log->settings;
    hk__console_t *c = &log->console;
    c->fd = s->console_fd;
    int fd = c->fd_override >= 0 ? c->fd_override : c->fd;
    hk__free(c->opts.ts_format);
    c->opts = s->console;
    c->opts.ts_format = hk__strdup(s->console.ts_format);
    if (c->opts.formatter == FMT_AUTO)
        c->opts.formatter = hk__fd_is_journal(fd) ? FMT_SYSTEMD : FMT_SIMPLE;
    const char *nc = getenv("NO_COLOR");
    c->opts.colors = s->color_behavior == COLOR_ENABLED ||
                     (s->color_behavior == COLOR_DEFAULT && !(nc && *nc) && isatty(fd) &&
                      c->opts.formatter == FMT_SIMPLE);
    if (c->opts.formatter != FMT_SIMPLE)
        c->opts.colors = false;
    if (s->file_path) {
        hk__file_configure(&log->file, s, &log->errors);
    } else if (log->file.path) {
        hk__file_flush(&log->file, &log->errors);
        hk__file_close(&log->file);
    }
    log->journal_on = s->journal;
    hk__journal_configure(&log->journal, s);
}

/* ---- lifecycle ---- */

int hk__log_new(hk_log_t **ret_log) {
    hk_log_t *log = hk__calloc(1, sizeof *log);
    if (!log)
        return -ENOMEM;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->wmu, NULL);
    pthread_mutex_init(&log->qmu, NULL);
    pthread_mutex_init(&log->pmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log->nonempty, &ca);
    pthread_cond_init(&log->space, &ca);
    pthread_cond_init(&log->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    log->console.fd_override = -1;
    log->file.fd = -1;
    log->journal.fd = -1;
    if (defaults(&log->settings) < 0) {
        hk__log_free(log);
        return -ENOMEM;
    }
    log->max_queue = log->settings.max_queue;
    log->full_mode = log->settings.full_mode;
    apply_sinks(log);
    log->lg_self = hk_log_get(log, "hostkit.logging");
    if (!log->lg_self) {
        hk__log_free(log);
        return -ENOMEM;
    }
    *ret_log = log;
    return 0;
}

/* drops: the drop count when the batch was taken (reported after it). */
static void process(hk_log_t *log, hk__rec_t *batch, uint64_t drops);
static void drain_here(hk_log_t *log);

void hk__log_free(hk_log_t *log) {
    if (!log)
        return;
    pthread_mutex_lock(&log->qmu);
    log->stopping = true;
    bool started = log->writer_started;
    pthread_cond_signal(&log->nonempty);
    pthread_mutex_unlock(&log->qmu);
    if (started)
        pthread_join(log->writer, NULL);
    /* what is still queued (a writer that never started) */
    pthread_mutex_lock(&log->wmu);
    tl_writing = log;
    drain_here(log); /* also what the sinks log while it runs */
    tl_writing = NULL;
    hk__console_flush(&log->console, &log->errors);
    hk__buf_free(&log->console.out);
    hk__free(log->console.opts.ts_format);
    hk__file_flush(&log->file, &log->errors);
    hk__file_close(&log->file);
    hk__journal_close(&log->journal);
    for (size_t i = 0; i < log->ncustom; i++)
        if (log->custom[i].ops->destroy)
            log->custom[i].ops->destroy(log->custom[i].data);
    pthread_mutex_unlock(&log->wmu);
    for (hk_logger_t *l = log->loggers, *next; l; l = next) {
        next = l->next;
        hk__free(l->category);
        hk__free(l);
    }
    hk__log_settings_free(&log->settings);
    pthread_cond_destroy(&log->nonempty);
    pthread_cond_destroy(&log->space);
    pthread_cond_destroy(&log->done_cv);
    for (void *b = log->pool, *next; b; b = next) {
        next = *(void **)b;
        hk__free(b);
    }
    pthread_mutex_destroy(&log->pmu);
    pthread_mutex_destroy(&log->qmu);
    pthread_mutex_destroy(&log->wmu);
    pthread_mutex_destroy(&log->mu);
    hk__free(log);
}

int hk__log_configure(hk_log_t *log, hk_config_t *config) {
    hk__log_settings_t s;
    int rc = read_settings(config, &s);
    if (rc == -ENOMEM) {
        hk__log_settings_free(&s);
        return rc;
    }
    pthread_mutex_lock(&log->wmu);
    pthread_mutex_lock(&log->mu);
    hk__log_settings_free(&log->settings);
    log->settings = s;
    apply_sinks(log);
    recompute_all(log);
    pthread_mutex_lock(&log->qmu);
    log->max_queue = s.max_queue;
    log->full_mode = s.full_mode;
    pthread_cond_broadcast(&log->space); /* a larger queue frees waiters */
    pthread_mutex_unlock(&log->qmu);
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->wmu);
    return rc;
}

/* ---- loggers ---- */

hk_logger_t *hk_log_get(hk_log_t *log, const char *category) {
    if (!log || !category)
        return NULL;
    pthread_mutex_lock(&log->mu);
    hk_logger_t *l;
    for (l = log->loggers; l; l = l->next)
        if (strcmp(l->category, category) == 0)
            goto out;
    l = hk__calloc(1, sizeof *l);
    if (!l)
        goto out;
    l->category = hk__strdup(category);
    if (!l->category) {
        hk__free(l);
        l = NULL;
        goto out;
    }
    l->log = log;
    compute_levels(log, l);
    l->next = log->loggers;
    log->loggers = l;
out:
    pthread_mutex_unlock(&log->mu);
    return l;
}

const char *hk_logger_category(const hk_logger_t *logger) {
    return logger ? logger->category : NULL;
}

void hk_log_set_filter(hk_log_t *log, hk_log_filter_cb cb, void *data) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->filter = cb;
    log->filter_data = data;
    recompute_all(log);
    pthread_mutex_unlock(&log->mu);
}

static bool valid_sink_name(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 31)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

int hk_log_add_sink(hk_log_t *log, const char *name, const hk_log_sink_ops_t *ops, void *data) {
    if (!log || !ops || !ops->write || !valid_sink_name(name))
        return -EINVAL;
    for (size_t i = 0; i < HK_ARRAY_SIZE(builtin_sinks); i++)
        if (strcasecmp(name, builtin_sinks[i]) == 0)
            return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&log->wmu);
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->ncustom; i++)
        if (strcasecmp(log->custom[i].name, name) == 0)
            rc = -EEXIST;
    if (rc == 0 && log->ncustom == MAX_CUSTOM)
        rc = -ENOSPC;
    if (rc == 0) {
        hk__sink_t *s = &log->custom[log->ncustom++];
        snprintf(s->name, sizeof s->name, "%s", name);
        s->ops = ops;
        s->data = data;
    }
    if (rc == 0)
        recompute_all(log);
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->wmu);
    return rc;
}

void hk_log_set_sink(hk_log_t *log, hk_log_sink_cb cb, void *data) {
    if (!log)
        return;
    hk_log_flush(log); /* what was queued goes out before the switch */
    pthread_mutex_lock(&log->wmu);
    log->console.cb = cb;
    log->console.cb_data = data;
    pthread_mutex_unlock(&log->wmu);
    pthread_mutex_lock(&log->qmu);
    log->sync = cb != NULL;
    pthread_mutex_unlock(&log->qmu);
}

void hk_log_set_fd(hk_log_t *log, int fd) {
    if (!log)
        return;
    pthread_mutex_lock(&log->wmu);
    pthread_mutex_lock(&log->mu);
    hk__console_flush(&log->console, &log->errors);
    log->console.cb = NULL;
    log->console.fd_override = fd >= 0 ? fd : -1;
    apply_sinks(log); /* the automatic formatter and colours depend on the fd */
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->wmu);
    pthread_mutex_lock(&log->qmu);
    log->sync = false;
    pthread_mutex_unlock(&log->qmu);
}

void hk_log_stats(hk_log_t *log, hk_log_stats_t *st) {
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!log)
        return;
    for (int i = 0; i < 6; i++)
        st->messages[i] = atomic_load_explicit(&log->counts[i], memory_order_relaxed);
    st->dropped = atomic_load_explicit(&log->dropped, memory_order_relaxed);
    st->write_errors = atomic_load_explicit(&log->errors, memory_order_relaxed);
}

/* ---- the record pool ---- */

void *hk__log_rec_alloc(hk_log_t *log, size_t size, bool *pooled) {
    *pooled = false;
    if (size > HK__LOG_SLOT)
        return hk__malloc(size);
    pthread_mutex_lock(&log->pmu);
    void *b = log->pool;
    if (b) {
        log->pool = *(void **)b;
        log->npool--;
    }
    pthread_mutex_unlock(&log->pmu);
    if (!b)
        b = hk__malloc(HK__LOG_SLOT);
    *pooled = b != NULL;
    return b;
}

static void rec_release(hk_log_t *log, hk__rec_t *rec) {
    if (!rec->pooled) {
        hk__free(rec);
        return;
    }
    pthread_mutex_lock(&log->pmu);
    *(void **)(void *)rec = log->pool;
    log->pool = rec;
    log->npool++;
    pthread_mutex_unlock(&log->pmu);
}

/* ---- the writer ---- */

static void write_record(hk_log_t *log, hk_logger_t *lg, const hk_log_record_t *r) {
    int lv = (int)r->level;
    if (lv >= __atomic_load_n(&lg->sink_min[SINK_CONSOLE], __ATOMIC_RELAXED))
        hk__console_write(&log->console, r, &log->errors);
    if (log->file.path && lv >= __atomic_load_n(&lg->sink_min[SINK_FILE], __ATOMIC_RELAXED))
        hk__file_write(&log->file, r, &log->errors);
    if (log->journal_on && lv >= __atomic_load_n(&lg->sink_min[SINK_JOURNAL], __ATOMIC_RELAXED))
        hk__journal_write(&log->journal, r, &log->errors);
    for (size_t i = 0; i < log->ncustom; i++)
        if (lv >= __atomic_load_n(&lg->sink_min[SINK_CUSTOM0 + i], __ATOMIC_RELAXED))
            log->custom[i].ops->write(log->custom[i].data, r);
}

/* A message from the logger itself, written at once (under wmu). */
static void self_report(hk_log_t *log, hk_log_level_t level, const char *fmt, ...)
    HK_PRINTF(3, 4);
static void self_report(hk_log_t *log, hk_log_level_t level, const char *fmt, ...) {
    if (!hk_logger_enabled(log->lg_self, level))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    hk__rec_t *rec = hk__rec_new(log, log->lg_self, log->lg_self->category, level, 0, NULL, 0, NULL,
                                 fmt, msg, len, NULL, 0);
    if (!rec)
        return;
    write_record(log, log->lg_self, &rec->r);
    rec_release(log, rec);
}

/* Under wmu. */
static void reopen_sinks(hk_log_t *log) {
    hk__file_reopen(&log->file, &log->errors);
    for (size_t i = 0; i < log->ncustom; i++)
        if (log->custom[i].ops->reopen)
            log->custom[i].ops->reopen(log->custom[i].data);
}

/* Under wmu. Frees the records. Messages dropped before the batch was taken
 * were dropped after every message in it was queued: reported after it. */
static void process(hk_log_t *log, hk__rec_t *batch, uint64_t drops) {
    if (atomic_exchange(&log->reopen, false))
        reopen_sinks(log);
    void *back = NULL, *back_tail = NULL; /* pooled blocks, returned in one go */
    size_t nback = 0;
    for (hk__rec_t *r = batch, *next; r; r = next) {
        next = r->next;
        write_record(log, r->logger, &r->r);
        if (r->pooled) {
            *(void **)(void *)r = back;
            if (!back)
                back_tail = r;
            back = r;
            nback++;
        } else {
            hk__free(r);
        }
    }
    if (back) {
        pthread_mutex_lock(&log->pmu);
        bool keep_all = log->npool + nback <= POOL_MAX; /* a burst's blocks are not kept */
        if (keep_all) {
            *(void **)back_tail = log->pool;
            log->pool = back;
            log->npool += nback;
        }
        pthread_mutex_unlock(&log->pmu);
        for (void *b = keep_all ? NULL : back, *next; b; b = next) {
            next = *(void **)b;
            hk__free(b);
        }
    }
    uint64_t dropped = drops;
    if (dropped > log->dropped_reported) {
        uint64_t n = dropped - log->dropped_reported;
        log->dropped_reported = dropped;
        self_report(log, HK_LOG_WARN, "%llu log message%s dropped (queue full, QueueFullMode=DropWrite)",
                    (unsigned long long)n, n == 1 ? "" : "s");
    }
    if (log->file.failed && log->file.path) {
        log->file.failed = false;
        self_report(log, HK_LOG_ERROR, "Cannot open the log file %s", log->file.path);
    }
    hk__console_flush(&log->console, &log->errors);
    hk__file_flush(&log->file, &log->errors);
    for (size_t i = 0; i < log->ncustom; i++)
        if (log->custom[i].ops->flush)
            log->custom[i].ops->flush(log->custom[i].data);
}

static void *writer_main(void *arg) {
    hk_log_t *log = arg;
    tl_writer_of = log;
    pthread_mutex_lock(&log->qmu);
    for (;;) {
        while (!log->head && !log->stopping && !atomic_load(&log->reopen)) {
            log->writer_waiting = true;
            pthread_cond_wait(&log->nonempty, &log->qmu);
            log->writer_waiting = false;
        }
        if (!log->head && log->stopping)
            break;
        hk__rec_t *batch = log->head;
        size_t n = log->qlen;
        uint64_t drops = atomic_load(&log->dropped);
        log->head = log->tail = NULL;
        log->qlen = 0;
        if (log->space_waiters)
            pthread_cond_broadcast(&log->space);
        pthread_mutex_unlock(&log->qmu);

        pthread_mutex_lock(&log->wmu);
        process(log, batch, drops);
        pthread_mutex_unlock(&log->wmu);

        pthread_mutex_lock(&log->qmu);
        log->done += n;
        if (log->flush_waiters)
            pthread_cond_broadcast(&log->done_cv);
    }
    pthread_mutex_unlock(&log->qmu);
    return NULL;
}

/* Under qmu. */
static void start_writer(hk_log_t *log) {
    log->writer_started = true;
    if (pthread_create(&log->writer, NULL, writer_main, log) != 0) {
        log->writer_started = false;
        log->writer_failed = true;
    }
}

/* Writes what is queued, on this thread (which holds wmu), until nothing is. */
static void drain_here(hk_log_t *log) {
    for (;;) {
        pthread_mutex_lock(&log->qmu);
        hk__rec_t *batch = log->head;
        size_t n = log->qlen;
        uint64_t drops = atomic_load(&log->dropped);
        log->head = log->tail = NULL;
        log->qlen = 0;
        if (log->space_waiters)
            pthread_cond_broadcast(&log->space);
        pthread_mutex_unlock(&log->qmu);
        if (!batch)
            return;
        process(log, batch, drops);
        pthread_mutex_lock(&log->qmu);
        log->done += n;
        if (log->flush_waiters)
            pthread_cond_broadcast(&log->done_cv);
        pthread_mutex_unlock(&log->qmu);
    }
}

static void enqueue(hk_log_t *log, hk__rec_t *rec) {
    hk_log_level_t level = rec->r.level;
    pthread_mutex_lock(&log->qmu);
    if (!log->writer_started && !log->writer_failed && !log->stopping && !log->sync)
        start_writer(log);
    if ((!log->writer_started || log->sync) && tl_writing != log) {
        /* synchronous (a callback sink), or no writer thread (it could not
           start, or the log is being freed): write here */
        pthread_mutex_unlock(&log->qmu);
        atomic_fetch_add_explicit(&log->counts[level], 1, memory_order_relaxed);
        pthread_mutex_lock(&log->wmu);
        tl_writing = log;
        process(log, rec, atomic_load(&log->dropped));
        drain_here(log); /* what the sinks logged meanwhile */
        tl_writing = NULL;
        pthread_mutex_unlock(&log->wmu);
        return;
    }
    /* (a sink logging while this thread writes synchronously falls through:
       queued, then written by drain_here, never recursively) */
    while (log->qlen >= log->max_queue && tl_writer_of != log && !log->stopping) {
        if (log->full_mode == FULL_DROP) {
            atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed); /* under qmu */
            pthread_mutex_unlock(&log->qmu);
            rec_release(log, rec);
            return;
        }
        log->space_waiters++;
        pthread_cond_wait(&log->space, &log->qmu);
        log->space_waiters--;
    }
    if (log->tail)
        log->tail->next = rec;
    else
        log->head = rec;
    log->tail = rec;
    log->qlen++;
    log->enq++;
    atomic_fetch_add_explicit(&log->counts[level], 1, memory_order_relaxed);
    if (log->writer_waiting)
        pthread_cond_signal(&log->nonempty);
    pthread_mutex_unlock(&log->qmu);
}

static bool flush_wait(hk_log_t *log, int64_t timeout_ms) {
    if (!log || tl_writer_of == log)
        return true;
    struct timespec dl;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    bool ok = true;
    pthread_mutex_lock(&log->qmu);
    uint64_t target = log->enq;
    log->flush_waiters++;
    while (log->writer_started && log->done < target) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&log->done_cv, &log->qmu);
        } else if (pthread_cond_timedwait(&log->done_cv, &log->qmu, &dl) == ETIMEDOUT) {
            ok = log->done >= target;
            break;
        }
    }
    log->flush_waiters--;
    pthread_mutex_unlock(&log->qmu);
    return ok;
}

void hk_log_flush(hk_log_t *log) { (void)flush_wait(log, -1); }


bool hk__log_flush_timeout(hk_log_t *log, int64_t timeout_ms) {
    return flush_wait(log, timeout_ms);
}

void hk_log_reopen(hk_log_t *log) {
    if (!log)
        return;
    atomic_store(&log->reopen, true);
    pthread_mutex_lock(&log->qmu);
    bool started = log->writer_started;
    if (log->writer_waiting)
        pthread_cond_signal(&log->nonempty);
    pthread_mutex_unlock(&log->qmu);
    if (!started) { /* no writer yet (or synchronous): reopen here */
        pthread_mutex_lock(&log->wmu);
        if (atomic_exchange(&log->reopen, false))
            reopen_sinks(log);
        pthread_mutex_unlock(&log->wmu);
    }
}

/* ---- calls ---- */

void hk_logger_log(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *file,
                   int line, const char *func, const char *tmpl, const hk_log_value_t *args,
                   size_t nargs) {
    if (!hk_logger_enabled(lg, level) || (unsigned)level >= HK_LOG_NONE)
        return;
    if (!tmpl)
        tmpl = "";
    char msg[HK__LOG_MSG_MAX];
    hk_log_field_t fields[MAX_HOLES];
    char names[1024];
    size_t nf = 0;
    size_t len = hk__render_template(tmpl, args, args ? nargs : 0, msg, sizeof msg, fields,
                                     MAX_HOLES, &nf, names, sizeof names);
    hk__rec_t *rec = hk__rec_new(lg->log, lg, lg->category, level, event_id, file, line, func, tmpl, msg,
                                 len, fields, nf);
    if (rec)
        enqueue(lg->log, rec);
}

static void vwrite_at(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *file,
                      int line, const char *func, const char *fmt, va_list ap) HK_PRINTF(7, 0);
static void vwrite_at(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *file,
                      int line, const char *func, const char *fmt, va_list ap) {
    if (!hk_logger_enabled(lg, level) || (unsigned)level >= HK_LOG_NONE || !fmt)
        return;
    char msg[HK__LOG_MSG_MAX];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        n = snprintf(msg, sizeof msg, "(unformattable message: %s)", fmt);
    size_t len = (size_t)(n < 0 ? 0 : n);
    if (len >= sizeof msg) {
        memcpy(msg + sizeof msg - 4, "...", 4);
        len = sizeof msg - 1;
    }
    hk__rec_t *rec = hk__rec_new(lg->log, lg, lg->category, level, event_id, file, line, func, fmt, msg,
                                 len, NULL, 0);
    if (rec)
        enqueue(lg->log, rec);
}

void hk_logger_vwrite(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *fmt,
                      va_list ap) {
    vwrite_at(lg, level, event_id, NULL, 0, NULL, fmt, ap);
}

void hk_logger_write(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vwrite_at(lg, level, event_id, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

void hk_logger_write_at(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *file,
                        int line, const char *func, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vwrite_at(lg, level, event_id, file, line, func, fmt, ap);
    va_end(ap);
}
