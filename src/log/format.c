/*
 * The built-in formatters: simple ("info: Cat[0] message", optional
 * timestamp, colours, scopes), json (one object per line, .NET's
 * JsonConsoleFormatter shape, valid for any input) and systemd ("<6>Cat[0]
 * message"). Also .NET-style timestamp formats. Depends on libc, log_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log/log_int.h"

static const char *const level_tags[] = {"trce", "dbug", "info", "warn", "fail", "crit"};
static const char *const level_names[] = {"Trace", "Debug",    "Information", "Warning",
                                          "Error", "Critical", "None"};
static const int priorities[] = {7, 7, 6, 4, 3, 2};
/* .NET's console colours for the level tag, as ANSI sequences. */
static const char *const level_colors[] = {
    "\x1b[37m", "\x1b[37m", "\x1b[32m", "\x1b[1m\x1b[33m", "\x1b[30m\x1b[41m", "\x1b[1m\x1b[37m\x1b[41m"};
static const char color_reset[] = "\x1b[39m\x1b[22m\x1b[49m";

const char *hk_log_level_tag(hk_log_level_t level) {
    return (unsigned)level < HK_ARRAY_SIZE(level_tags) ? level_tags[level] : "????";
}

const char *hk_log_level_name(hk_log_level_t level) {
    return (unsigned)level < HK_ARRAY_SIZE(level_names) ? level_names[level] : "Unknown";
}

/* Appends v in decimal, zero-padded to at least width digits (no printf). */
static void put_uint(hk__buf_t *b, unsigned long v, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof tmp);
    while (n < width && n < (int)sizeof tmp)
        tmp[n++] = '0';
    hk__buf_reserve(b, (size_t)n);
    if (b->oom)
        return;
    while (n > 0)
        b->p[b->len++] = tmp[--n];
    b->p[b->len] = '\0';
}

static void put_int(hk__buf_t *b, long v) {
    if (v < 0) {
        hk__buf_putc(b, '-');
        put_uint(b, (unsigned long)(-(v + 1)) + 1, 1);
    } else {
        put_uint(b, (unsigned long)v, 1);
    }
}

/* ---- timestamps ---- */

/* Broken-down time of a second, cached per thread (localtime_r takes a lock). */
static void split_time(int64_t ns, bool utc, struct tm *tm, long *frac_ns, long *gmtoff) {
    static _Thread_local time_t c_sec = -1;
    static _Thread_local bool c_utc;
    static _Thread_local struct tm c_tm;
    time_t s = (time_t)(ns / 1000000000);
    long f = (long)(ns % 1000000000);
    if (f < 0) {
        f += 1000000000;
        s--;
    }
    if (s != c_sec || utc != c_utc) {
        struct tm t;
        if (!(utc ? gmtime_r(&s, &t) : localtime_r(&s, &t)))
            memset(&t, 0, sizeof t);
        c_tm = t;
        c_sec = s;
        c_utc = utc;
    }
    *tm = c_tm;
    *frac_ns = f;
    *gmtoff = utc ? 0 : c_tm.tm_gmtoff;
}

static size_t run_of(const char *p, char c) {
    size_t n = 0;
    while (p[n] == c)
        n++;
    return n;
}

/*
 * .NET custom format tokens: yyyy yy MM dd HH hh mm ss f..fffffffff (fraction
 * digits) tt zzz (+hh:mm) K ('Z' in UTC, else +hh:mm), 'quoted' literals,
 * \x an escaped character; everything else is copied.
 */
static void format_ts_slow(hk__buf_t *b, const char *fmt, int64_t ns, bool utc) {
    struct tm tm;
    long frac, off;
    split_time(ns, utc, &tm, &frac, &off);
    for (const char *p = fmt; *p;) {
        size_t n = run_of(p, *p);
        switch (*p) {
        case 'y':
            if (n >= 4)
                put_uint(b, (unsigned long)(tm.tm_year + 1900), 4);
            else
                put_uint(b, (unsigned long)((tm.tm_year + 1900) % 100), 2);
            break;
        case 'M':
            put_uint(b, (unsigned long)(tm.tm_mon + 1), n >= 2 ? 2 : 1);
            break;
        case 'd':
            put_uint(b, (unsigned long)tm.tm_mday, n >= 2 ? 2 : 1);
            break;
        case 'H':
            put_uint(b, (unsigned long)tm.tm_hour, n >= 2 ? 2 : 1);
            break;
        case 'h':
            put_uint(b, (unsigned long)(tm.tm_hour % 12 ? tm.tm_hour % 12 : 12), n >= 2 ? 2 : 1);
            break;
        case 'm':
            put_uint(b, (unsigned long)tm.tm_min, n >= 2 ? 2 : 1);
            break;
        case 's':
            put_uint(b, (unsigned long)tm.tm_sec, n >= 2 ? 2 : 1);
            break;
        case 'f': {
            size_t digits = n > 9 ? 9 : n;
            long v = frac;
            for (size_t i = digits; i < 9; i++)
                v /= 10;
            put_uint(b, (unsigned long)v, (int)digits);
            break;
        }
        case 't':
            hk__buf_puts(b, tm.tm_hour < 12 ? "AM" : "PM");
            break;
        case 'z':
        case 'K':
            if (*p == 'K' && utc) {
                hk__buf_putc(b, 'Z');
            } else {
                long a = off < 0 ? -off : off;
                hk__buf_putc(b, off < 0 ? '-' : '+');
                put_uint(b, (unsigned long)(a / 3600), 2);
                hk__buf_putc(b, ':');
                put_uint(b, (unsigned long)(a / 60 % 60), 2);
            }
            break;
        case '\'': {
            const char *end = strchr(p + 1, '\'');
            size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
            hk__buf_put(b, p + 1, len);
            p += len + 1 + (end ? 1 : 0);
            continue;
        }
        case '\\':
            if (p[1]) {
                hk__buf_putc(b, p[1]);
                p += 2;
            } else {
                p++;
            }
            continue;
        default:
            hk__buf_put(b, p, n);
            break;
        }
        p += n;
    }
}

/*
 * Per-thread cache of the parts of a timestamp that change once a second:
 * a format with one run of fraction digits ("...ss.ffffffzzz") is the text
 * before the run, the digits, and the text after it; the two texts are
 * rendered once per second (the writer formats every line with the same
 * format, so a line costs two copies and the digits).
 */
typedef struct ts_cache {
    char fmt[72];
    bool utc, ok;
    time_t sec;
    int digits;
    char pre[96], post[96];
    size_t npre, npost;
} ts_cache_t;

static void format_ts(hk__buf_t *b, const char *fmt, int64_t ns, bool utc) {
    static _Thread_local ts_cache_t c;
    time_t s = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        s--;
    }
    if (!(c.ok && c.sec == s && c.utc == utc && strcmp(c.fmt, fmt) == 0)) {
        c.ok = false;
        size_t flen = strlen(fmt);
        const char *f = strchr(fmt, 'f');
        /* one run of 'f', outside quotes and escapes: cacheable */
        bool simple = f && flen < sizeof c.fmt && !strchr(fmt, '\'') && !strchr(fmt, '\\');
        size_t run = simple ? run_of(f, 'f') : 0;
        if (simple && !strchr(f + run, 'f') && run <= 9) {
            char part[72];
            hk__buf_t tb = {0};
            int64_t at = (int64_t)s * 1000000000; /* the second itself: same fields */
            memcpy(part, fmt, (size_t)(f - fmt));
            part[f - fmt] = '\0';
            format_ts_slow(&tb, part, at, utc);
            size_t npre = tb.len;
            format_ts_slow(&tb, f + run, at, utc);
            if (!tb.oom && npre < sizeof c.pre && tb.len - npre < sizeof c.post) {
                memcpy(c.pre, tb.p ? tb.p : "", npre);
                c.npre = npre;
                memcpy(c.post, tb.p ? tb.p + npre : "", tb.len - npre);
                c.npost = tb.len - npre;
                c.digits = (int)run;
                c.sec = s;
                c.utc = utc;
                memcpy(c.fmt, fmt, flen + 1);
                c.ok = true;
            }
            hk__buf_free(&tb);
        }
        if (!c.ok) {
            format_ts_slow(b, fmt, ns, utc);
            return;
        }
    }
    hk__buf_put(b, c.pre, c.npre);
    long v = frac;
    for (int i = c.digits; i < 9; i++)
        v /= 10;
    put_uint(b, (unsigned long)v, c.digits);
    hk__buf_put(b, c.post, c.npost);
}

int hk__ts_format_check(const char *fmt) {
    if (!fmt)
        return 0;
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) { /* \x: a literal, even a quote */
            p++;
            continue;
        }
        if (*p == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end)
                return -EINVAL;
            p = end;
        }
    }
    return strlen(fmt) <= 64 ? 0 : -EINVAL;
}

/* ---- JSON ---- */

/* Length of a valid UTF-8 sequence at p (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (len > n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Bytes a JSON string cannot carry as they are: controls, '"', '\\', DEL
 * (escaped for terminals) and every non-ASCII byte (validated as UTF-8). */
static const unsigned char json_special[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f ... 0xff] = 1,
};

/* Whether the 8 bytes at p need no escaping: each in 0x20..0x7e and none
 * of '"' and '\\' (the classic "has a byte below n / equal to c" word tricks;
 * a false "no" only sends the bytes to the byte-wise loop). */
static inline bool plain8(const unsigned char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\'), del = x ^ (ones * 0x7f);
    uint64_t bad = (x & highs)                        /* >= 0x80 */
                   | ((x - ones * 0x20) & ~x & highs) /* < 0x20 */
                   | ((q - ones) & ~q & highs)        /* '"' */
                   | ((bs - ones) & ~bs & highs)      /* '\\' */
                   | ((del - ones) & ~del & highs);   /* DEL */
    return bad == 0;
}

void hk__json_string(hk__buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    hk__buf_reserve(b, n + 2);
    hk__buf_putc(b, '"');
    while (p < end) {
        const unsigned char *run = p;
        while (end - p >= 8 && plain8(p)) /* eight plain ASCII bytes at a time */
            p += 8;
        while (p < end && !json_special[*p])
            p++;
        if (p > run)
            hk__buf_put(b, (const char *)run, (size_t)(p - run));
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c < 0x80) {
            char esc[7] = {'\\', 0};
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                hk__buf_put(b, esc, 6);
                p++;
                continue;
            }
            hk__buf_put(b, esc, 2);
            p++;
            continue;
        }
        size_t len = utf8_len(p, (size_t)(end - p));
        if (len) {
            hk__buf_put(b, (const char *)p, len);
            p += len;
        } else {
            hk__buf_put(b, "\\ufffd", 6);
            p++;
        }
    }
    hk__buf_putc(b, '"');
}

static void json_key(hk__buf_t *b, const char *k) {
    hk__json_string(b, k, strlen(k));
    hk__buf_putc(b, ':');
}

static void json_value(hk__buf_t *b, const hk_log_value_t *v) {
    switch (v->type) {
    case HK_LOG_T_STR:
        if (v->v.s)
            hk__json_string(b, v->v.s, strlen(v->v.s));
        else
            hk__buf_puts(b, "null");
        return;
    case HK_LOG_T_I64:
    case HK_LOG_T_U64:
    case HK_LOG_T_BOOL:
        hk__value_text(b, v);
        return;
    case HK_LOG_T_F64:
        if (isfinite(v->v.d)) {
            hk__value_text(b, v);
            return;
        }
        break; /* NaN and infinities as strings */
    case HK_LOG_T_MISSING:
        hk__buf_puts(b, "null");
        return;
    default:
        break;
    }
    char tmp[64];
    const char *str;
    size_t n = hk__value_chars(tmp, sizeof tmp, v, &str);
    hk__json_string(b, str ? str : tmp, n);
}

/* Whether two names are the same JSON key once invalid UTF-8 bytes are
 * replaced by U+FFFD (as hk__json_string writes them): "\xff", "\xfe" and
 * a real U+FFFD are all one key. */
static bool same_key(const char *a, const char *b) {
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    size_t na = strlen(a), nb = strlen(b);
    while (*p && *q) {
        size_t lp = *p < 0x80 ? 1 : utf8_len(p, na), lq = *q < 0x80 ? 1 : utf8_len(q, nb);
        const unsigned char *sp = lp ? p : fffd, *sq = lq ? q : fffd;
        size_t kp = lp ? lp : 3, kq = lq ? lq : 3;
        if (kp != kq || memcmp(sp, sq, kp) != 0)
            return false;
        p += lp ? lp : 1, na -= lp ? lp : 1;
        q += lq ? lq : 1, nb -= lq ? lq : 1;
    }
    return !*p && !*q;
}

static bool seen_before(const hk_log_field_t *f, size_t i) {
    if (same_key(f[i].name, "Message") || same_key(f[i].name, "{OriginalFormat}"))
        return true;
    for (size_t j = 0; j < i; j++)
        if (same_key(f[j].name, f[i].name))
            return true;
    return false;
}

static void format_json(hk__buf_t *b, const hk_log_record_t *r, const hk__fmt_opts_t *o) {
    const char *msg = r->message ? r->message : "";
    size_t mlen = strlen(msg);
    hk__buf_reserve(b, mlen * 2 + 256);
    const char *tsf = o->ts_format ? o->ts_format
                                   : (o->utc ? "yyyy-MM-ddTHH:mm:ss.ffffffK"
                                             : "yyyy-MM-ddTHH:mm:ss.ffffffzzz");
    hk__buf_puts(b, "{\"Timestamp\":\"");
    size_t ts_at = b->len;
    format_ts(b, tsf, r->time_ns, o->utc);
    for (size_t i = ts_at; !b->oom && i < b->len; i++) {
        unsigned char c = (unsigned char)b->p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') { /* a literal that needs escaping */
            hk__buf_t t = {0};
            format_ts(&t, tsf, r->time_ns, o->utc);
            b->len = ts_at - 1;
            hk__json_string(b, t.p ? t.p : "", t.len);
            hk__buf_free(&t);
            b->len--; /* reopen the string: the closing quote follows below */
            break;
        }
    }
    hk__buf_puts(b, "\",\"EventId\":");
    put_int(b, r->event_id);
    hk__buf_puts(b, ",\"LogLevel\":\"");
    hk__buf_puts(b, hk_log_level_name(r->level));
    hk__buf_puts(b, "\",\"Category\":");
    hk__json_string(b, r->category ? r->category : "", r->category ? strlen(r->category) : 0);
    hk__buf_puts(b, ",\"Message\":");
    size_t msg_at = b->len;
    hk__json_string(b, msg, mlen);
    size_t msg_len = b->len - msg_at; /* escaped once, copied into State below */
    if (r->err)
        hk__buf_printf(b, ",\"Errno\":%d", r->err);
    hk__buf_puts(b, ",\"State\":{\"Message\":");
    hk__buf_reserve(b, msg_len);
    if (!b->oom) {
        memcpy(b->p + b->len, b->p + msg_at, msg_len);
        b->len += msg_len;
        b->p[b->len] = '\0';
    }
    for (size_t i = 0; i < r->nfields; i++) {
        if (seen_before(r->fields, i))
            continue;
        hk__buf_putc(b, ',');
        json_key(b, r->fields[i].name);
        json_value(b, &r->fields[i].value);
    }
    if (r->format) {
        hk__buf_puts(b, ",\"{OriginalFormat}\":");
        hk__json_string(b, r->format, strlen(r->format));
    }
    hk__buf_putc(b, '}');
    if (o->include_scopes && r->nscopes) { /* as .NET: only with IncludeScopes */
        hk__buf_puts(b, ",\"Scopes\":[");
        for (size_t i = 0; i < r->nscopes; i++) {
            if (i)
                hk__buf_putc(b, ',');
            hk__buf_putc(b, '{');
            json_key(b, r->scopes[i].name);
            json_value(b, &r->scopes[i].value);
            hk__buf_putc(b, '}');
        }
        hk__buf_putc(b, ']');
    }
    hk__buf_puts(b, "}\n");
}

/* ---- simple and systemd ---- */

/* The message on one line: CR and LF as \r and \n, other control bytes as \xHH. */
static void one_line(hk__buf_t *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while ((*p >= 0x20 && *p != 0x7f) || *p == '\t')
            p++;
        if (p > run)
            hk__buf_put(b, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p == '\n')
            hk__buf_put(b, "\\n", 2);
        else if (*p == '\r')
            hk__buf_put(b, "\\r", 2);
        else {
            char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
            hk__buf_put(b, esc, 4);
        }
        p++;
    }
}

static void scopes_text(hk__buf_t *b, const hk_log_record_t *r) {
    for (size_t i = 0; i < r->nscopes; i++) {
        hk__buf_puts(b, "=> ");
        one_line(b, r->scopes[i].name);
        hk__buf_putc(b, '=');
        char tmp[64];
        const char *str;
        (void)hk__value_chars(tmp, sizeof tmp, &r->scopes[i].value, &str);
        one_line(b, str ? str : tmp);
        hk__buf_putc(b, ' ');
    }
}

static void format_text(hk__buf_t *b, const hk_log_record_t *r, const hk__fmt_opts_t *o,
                        bool systemd) {
    unsigned lv = (unsigned)r->level < 6 ? (unsigned)r->level : 5;
    if (systemd) {
        char pri[4] = {'<', (char)('0' + priorities[lv]), '>', 0};
        hk__buf_put(b, pri, 3);
    } else {
        if (o->ts_format)
            format_ts(b, o->ts_format, r->time_ns, o->utc);
        if (o->colors) {
            hk__buf_puts(b, level_colors[lv]);
            hk__buf_puts(b, level_tags[lv]);
            hk__buf_puts(b, color_reset);
        } else {
            hk__buf_puts(b, level_tags[lv]);
        }
        hk__buf_put(b, ": ", 2);
    }
    one_line(b, r->category ? r->category : "");
    hk__buf_putc(b, '[');
    put_int(b, r->event_id);
    hk__buf_put(b, "] ", 2);
    if (o->include_scopes)
        scopes_text(b, r);
    one_line(b, r->message ? r->message : "");
    hk__buf_putc(b, '\n');
}

void hk__format(hk__buf_t *b, const hk_log_record_t *rec, const hk__fmt_opts_t *o) {
    if (o->formatter == FMT_JSON)
        format_json(b, rec, o);
    else
        format_text(b, rec, o, o->formatter == FMT_SYSTEMD);
}

int hk_log_format_record(const hk_log_record_t *record, const char *formatter, char *buf,
                         size_t size) {
    if (!record || !formatter)
        return -EINVAL;
    hk__fmt_opts_t o = {0};
    if (strcmp(formatter, "simple") == 0)
        o.formatter = FMT_SIMPLE;
    else if (strcmp(formatter, "json") == 0) {
        o.formatter = FMT_JSON;
        o.include_scopes = true; /* a custom sink gets everything the record has */
    }
    else if (strcmp(formatter, "systemd") == 0)
        o.formatter = FMT_SYSTEMD;
    else
        return -EINVAL;
    hk__buf_t b = {0};
    hk__format(&b, record, &o);
    if (b.oom) {
        hk__buf_free(&b);
        return -ENOMEM;
    }
    if (buf && size) {
        size_t n = b.len < size - 1 ? b.len : size - 1;
        memcpy(buf, b.p, n);
        buf[n] = '\0';
    }
    int len = (int)b.len;
    hk__buf_free(&b);
    return len;
}
