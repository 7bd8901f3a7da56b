/*
 * The minimal logger (include/hostkit/log.h): per-category loggers with a
 * cached minimum level, one rendered line per message, a replaceable sink.
 * Depends on libc, pthreads, src/common and the config store.
 *
 * Invariants: `mu` guards the logger list, the rules and the sink; each
 * logger's level is written under `mu` and read with a relaxed atomic load
 * (a message racing with a reconfiguration may use either level).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/common.h"
#include "log/log.h"
#include "systemd/systemd_int.h"

#define MSG_MAX 8192

struct hk_logger_s {
    struct hk__logger_head head; /* must stay first: read by hk_logger_enabled */
    char *category;
    hk_log_t *log;
    struct hk_logger_s *next;
};

typedef struct rule {
    char *prefix;
    hk_log_level_t level;
} rule_t;

struct hk_log_s {
    pthread_mutex_t mu;
    hk_log_sink_cb sink;
    void *sink_data;
    int fd;
    hk_logger_t *loggers;
    hk_log_level_t default_level;
    rule_t *rules;
    size_t nrules;
    int format; /* FORMAT_SIMPLE or FORMAT_SYSTEMD */
};

enum { FORMAT_SIMPLE = 0, FORMAT_SYSTEMD = 1 };
static const char *const format_names[] = {"simple", "systemd"};
/* syslog priorities of trce dbug info warn fail crit */
static const int priorities[] = {7, 7, 6, 4, 3, 2};

static const char *const level_tags[] = {"trce", "dbug", "info", "warn", "fail", "crit"};
static const char *const level_names[] = {"Trace",   "Debug",    "Information", "Warning",
                                          "Error",   "Critical", "None"};

const char *hk_log_level_tag(hk_log_level_t level) {
    return (unsigned)level < HK_ARRAY_SIZE(level_tags) ? level_tags[level] : "????";
}

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

int hk__log_new(hk_log_t **ret_log) {
    hk_log_t *log = hk__calloc(1, sizeof *log);
    if (!log)
        return -ENOMEM;
    pthread_mutex_init(&log->mu, NULL);
    log->fd = STDERR_FILENO;
    log->default_level = HK_LOG_INFO;
    log->format = hk__stderr_is_journal() ? FORMAT_SYSTEMD : FORMAT_SIMPLE;
    *ret_log = log;
    return 0;
}

static void free_rules(hk_log_t *log) {
    for (size_t i = 0; i < log->nrules; i++)
        hk__free(log->rules[i].prefix);
    hk__free(log->rules);
    log->rules = NULL;
    log->nrules = 0;
}

void hk__log_free(hk_log_t *log) {
    if (!log)
        return;
    for (hk_logger_t *l = log->loggers, *next; l; l = next) {
        next = l->next;
        hk__free(l->category);
        hk__free(l);
    }
    free_rules(log);
    pthread_mutex_destroy(&log->mu);
    hk__free(log);
}

void hk_log_set_sink(hk_log_t *log, hk_log_sink_cb cb, void *data) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->sink = cb;
    log->sink_data = data;
    pthread_mutex_unlock(&log->mu);
}

void hk_log_set_fd(hk_log_t *log, int fd) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->sink = NULL;
    log->fd = fd >= 0 ? fd : STDERR_FILENO;
    pthread_mutex_unlock(&log->mu);
}

/* The level for a category: longest matching prefix rule, else the default. Under mu. */
static hk_log_level_t level_for(const hk_log_t *log, const char *category) {
    size_t best = 0;
    hk_log_level_t level = log->default_level;
    for (size_t i = 0; i < log->nrules; i++) {
        size_t n = strlen(log->rules[i].prefix);
        if (n >= best && strncasecmp(category, log->rules[i].prefix, n) == 0) {
            best = n;
            level = log->rules[i].level;
        }
    }
    return level;
}

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
    __atomic_store_n(&l->head._min_level, (int)level_for(log, category), __ATOMIC_RELAXED);
    l->next = log->loggers;
    log->loggers = l;
out:
    pthread_mutex_unlock(&log->mu);
    return l;
}

const char *hk_logger_category(const hk_logger_t *logger) {
    return logger ? logger->category : NULL;
}

int hk__log_configure(hk_log_t *log, hk_config_t *config) {
    static const char section[] = "Logging:LogLevel:";
    const size_t slen = sizeof section - 1;
    int rc = 0;
    size_t n = hk_config_count(config);
    rule_t *rules = hk__calloc(n ? n : 1, sizeof *rules);
    if (!rules)
        return -ENOMEM;
    size_t nrules = 0;
    int def = HK_LOG_INFO;
    for (size_t i = 0; i < n; i++) {
        const char *key = hk_config_key_at(config, i);
        if (strncasecmp(key, section, slen) != 0 || !key[slen])
            continue;
        int level;
        int r = hk_config_get_enum(config, key, level_names, HK_ARRAY_SIZE(level_names),
                                   HK_LOG_INFO, &level);
        if (r < 0) {
            rc = r;
            continue;
        }
        if (strcasecmp(key + slen, "Default") == 0) {
            def = level;
            continue;
        }
        rules[nrules].prefix = hk__strdup(key + slen);
        if (!rules[nrules].prefix) {
            rc = -ENOMEM;
            break;
        }
        rules[nrules++].level = (hk_log_level_t)level;
    }
    int format = hk__stderr_is_journal() ? FORMAT_SYSTEMD : FORMAT_SIMPLE;
    if (config) {
        int r = hk_config_get_enum(config, "Logging:Console:FormatterName", format_names,
                                   HK_ARRAY_SIZE(format_names), format, &format);
        if (r < 0 && rc == 0)
            rc = r;
    }
    pthread_mutex_lock(&log->mu);
    __atomic_store_n(&log->format, format, __ATOMIC_RELAXED);
    free_rules(log);
    log->rules = rules;
    log->nrules = nrules;
    log->default_level = (hk_log_level_t)def;
    for (hk_logger_t *l = log->loggers; l; l = l->next)
        __atomic_store_n(&l->head._min_level, (int)level_for(log, l->category), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report a failing log fd */
        }
        p += w;
        n -= (size_t)w;
    }
}

void hk_logger_vwrite(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *fmt,
                      va_list ap) {
    if (!hk_logger_enabled(lg, level) || (unsigned)level >= HK_LOG_NONE || !fmt)
        return;
    char msg[MSG_MAX];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        snprintf(msg, sizeof msg, "(unformattable message: %s)", fmt);
    else if ((size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);

    /* One line per message: render line breaks as the two characters \n. */
    char line[MSG_MAX * 2 + 256];
    /* simple: "info: Cat[0] msg"; systemd (stderr is the journal): "<6>Cat[0] msg" */
    int h = __atomic_load_n(&lg->log->format, __ATOMIC_RELAXED) == FORMAT_SYSTEMD
                ? snprintf(line, sizeof line, "<%d>%s[%d] ", priorities[level], lg->category, event_id)
                : snprintf(line, sizeof line, "%s: %s[%d] ", level_tags[level], lg->category, event_id);
    /* A header that fills the buffer (a huge category) is clipped, leaving room for "\n\0". */
    size_t len = (h < 0) ? 0 : ((size_t)h < sizeof line - 2 ? (size_t)h : sizeof line - 2);
    for (const char *m = msg; *m && len < sizeof line - 3; m++) {
        if (*m == '\n' || *m == '\r') {
            line[len++] = '\\';
            line[len++] = *m == '\n' ? 'n' : 'r';
        } else {
            line[len++] = *m;
        }
    }
    line[len++] = '\n';
    line[len] = '\0';

    hk_log_t *log = lg->log;
    pthread_mutex_lock(&log->mu);
    if (log->sink) {
        hk_log_record_t rec = {level, lg->category, event_id, msg, line, len};
        log->sink(&rec, log->sink_data);
    } else {
        write_all(log->fd, line, len);
    }
    pthread_mutex_unlock(&log->mu);
}

void hk_logger_write(hk_logger_t *lg, hk_log_level_t level, int event_id, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hk_logger_vwrite(lg, level, event_id, fmt, ap);
    va_end(ap);
}

void hk__log_flush(hk_log_t *log) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    pthread_mutex_unlock(&log->mu);
}
