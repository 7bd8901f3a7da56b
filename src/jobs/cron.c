/*
 * Cron expressions: a parser for the 5-field syntax (with @macros, ranges,
 * lists, steps and names) into bit sets, and the next-fire computation in
 * UTC or local time with a fixed DST rule (see hk_cron_next in jobs.h).
 * Also the position finder for duration errors. Depends on libc and
 * src/common only. Invariant: a parsed cron never has an empty field.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/common.h"
#include "jobs/jobs_int.h"

struct hk_cron_s {
    uint64_t min;  /* bits 0..59 */
    uint32_t hour; /* bits 0..23 */
    uint32_t dom;  /* bits 1..31 */
    uint32_t mon;  /* bits 1..12 */
    uint32_t dow;  /* bits 0..6 (Sunday 0) */
    bool dom_star, dow_star; /* the field starts with '*' (Vixie's DOM_STAR/DOW_STAR) */
};

/* ---- parsing ------------------------------------------------------------- */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

typedef struct field_spec {
    const char *what;
    int lo, hi;
    const char *const *names; /* names[i] is lo + i (months) or i (days) */
    int nnames, name_base;
} field_spec_t;

static const field_spec_t fields[5] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day-of-month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, month_names, 12, 1},
    {"day-of-week", 0, 7, day_names, 7, 0},
};

typedef struct parser {
    const char *expr;
    char *err;
    size_t err_len;
    size_t pos; /* 1-based position of the error */
} parser_t;

static int perr(parser_t *ps, const char *at, const char *fmt, ...) HK_PRINTF(3, 4);
static int perr(parser_t *ps, const char *at, const char *fmt, ...) {
    ps->pos = (size_t)(at - ps->expr) + 1;
    if (ps->err && ps->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->err_len, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static bool is_sep(char c) { return c == ' ' || c == '\t'; }
static bool at_item_end(const char *p, const char *end) { return p == end || *p == ','; }

/* A number or (months, weekdays) a 3-letter name at *p; advances. */
static int scan_value(parser_t *ps, const field_spec_t *f, const char **p, const char *end, int *ret) {
    const char *s = *p;
    if (s < end && isdigit((unsigned char)*s)) {
        long v = 0;
        while (s < end && isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 1000)
                v = 1000; /* reported as out of range below */
            s++;
        }
        if (v < f->lo || v > f->hi)
            return perr(ps, *p, "%s %ld is out of range %d-%d", f->what, v, f->lo,
                        f->hi == 7 ? 6 : f->hi);
        *p = s;
        *ret = (int)v;
        return 0;
    }
    if (s < end && isalpha((unsigned char)*s)) {
        const char *b = s;
        while (s < end && isalpha((unsigned char)*s))
            s++;
        size_t n = (size_t)(s - b);
        if (!f->names)
            return perr(ps, b, "%s takes numbers, not names (\"%.*s\")", f->what, (int)n, b);
        for (int i = 0; i < f->nnames; i++)
            if (n == 3 && strncasecmp(b, f->names[i], 3) == 0) {
                *p = s;
                *ret = f->name_base + i;
                return 0;
            }
        return perr(ps, b, "unknown %s name \"%.*s\"", f->what, (int)n, b);
    }
    if (s == end)
        return perr(ps, s, "%s: a value is missing", f->what);
    return perr(ps, s, "%s: unexpected character '%c'", f->what, *s);
}

/* One field [start, end) into *bits. */
static int parse_field(parser_t *ps, const field_spec_t *f, const char *start, const char *end,
                       uint64_t *bits) {
    const char *p = start;
    uint64_t set = 0;
    for (;;) {
        int a, b, step = 1;
        bool star = false;
        if (p < end && *p == '*') {
            star = true;
            a = f->lo;
            b = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            if (at_item_end(p, end))
                return perr(ps, p, "%s: empty list item", f->what);
            int r = scan_value(ps, f, &p, end, &a);
            if (r < 0)
                return r;
            b = a;
            if (p < end && *p == '-') {
                p++;
                const char *bstart = p;
                r = scan_value(ps, f, &p, end, &b);
                if (r < 0)
                    return r;
                if (b < a)
                    return perr(ps, bstart, "%s range %d-%d goes backwards", f->what, a, b);
            }
        }
        if (p < end && *p == '/') {
            p++;
            const char *sstart = p;
            if (p == end || !isdigit((unsigned char)*p))
                return perr(ps, sstart, "%s: a step needs a number after '/'", f->what);
            long v = 0;
            while (p < end && isdigit((unsigned char)*p)) {
                v = v * 10 + (*p - '0');
                if (v > 1000)
                    v = 1000;
                p++;
            }
            if (v < 1 || v > f->hi)
                return perr(ps, sstart, "%s step %ld is out of range 1-%d", f->what, v, f->hi);
            step = (int)v;
            if (!star && b == a)
                b = f->hi; /* a/n: from a to the end of the range */
        }
        for (int v = a; v <= b; v += step)
            set |= UINT64_C(1) << (f->hi == 7 && v == 7 ? 0 : v);
        if (p == end)
            break;
        if (*p != ',')
            return perr(ps, p, "%s: unexpected character '%c'", f->what, *p);
        p++;
    }
    *bits = set;
    return 0;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int days_in_month(int64_t y, int m) {
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

static int parse_fields(parser_t *ps, const char *expr, hk_cron_t *c) {
    const char *p = expr;
    const char *starts[5];
    uint64_t bits[5];
    int n = 0;
    while (is_sep(*p))
        p++;
    if (!*p)
        return perr(ps, p, "the expression is empty");
    while (*p) {
        const char *s = p;
        while (*p && !is_sep(*p))
            p++;
        if (n == 5)
            return perr(ps, s, "more than 5 fields (seconds and years are not supported)");
        starts[n] = s;
        int r = parse_field(ps, &fields[n], s, p, &bits[n]);
        if (r < 0)
            return r;
        n++;
        while (is_sep(*p))
            p++;
    }
    if (n < 5)
        return perr(ps, p, "expected 5 fields (minute hour day-of-month month day-of-week), found %d",
                    n);
    c->min = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->mon = (uint32_t)bits[3];
    c->dow = (uint32_t)bits[4];
    c->dom_star = starts[2][0] == '*';
    c->dow_star = starts[4][0] == '*';
    /* With day-of-week '*', only day-of-month picks days: some month must have one of them. */
    if (c->dow_star && !c->dom_star) {
        bool possible = false;
        for (int m = 1; m <= 12 && !possible; m++)
            if (c->mon >> m & 1)
                for (int d = 1; d <= days_in_month(2000, m) && !possible; d++)
                    possible = c->dom >> d & 1;
        if (!possible)
            return perr(ps, starts[2], "day-of-month never occurs in the given months");
    }
    return 0;
}

int hk_cron_parse(const char *expr, hk_cron_t **ret_cron, char *err, size_t err_len,
                  size_t *ret_pos) {
    parser_t ps = {expr, err, err_len, 0};
    if (err && err_len)
        err[0] = '\0';
    if (!expr || !ret_cron) {
        if (err && err_len)
            snprintf(err, err_len, "no expression");
        if (ret_pos)
            *ret_pos = 1;
        return -EINVAL;
    }
    hk_cron_t c = {0};
    int rc;
    const char *p = expr;
    while (is_sep(*p))
        p++;
    if (*p == '@') {
        size_t n = strcspn(p, " \t");
        const char *rest = p + n;
        while (is_sep(*rest))
            rest++;
        const char *exp = NULL;
        for (size_t i = 0; i < HK_ARRAY_SIZE(macros) && !exp; i++)
            if (strlen(macros[i].name) == n && strncasecmp(p, macros[i].name, n) == 0)
                exp = macros[i].expr;
        if (!exp)
            rc = perr(&ps, p, "unknown macro \"%.*s\" (use @yearly, @annually, @monthly, @weekly, "
                              "@daily, @midnight or @hourly)", (int)n, p);
        else if (*rest)
            rc = perr(&ps, rest, "unexpected text after %.*s", (int)n, p);
        else {
            parser_t inner = {exp, NULL, 0, 0};
            rc = parse_fields(&inner, exp, &c);
        }
    } else {
        rc = parse_fields(&ps, expr, &c);
    }
    if (rc < 0) {
        if (ret_pos)
            *ret_pos = ps.pos;
        return rc;
    }
    hk_cron_t *out = hk__malloc(sizeof *out);
    if (!out)
        return -ENOMEM;
    *out = c;
    *ret_cron = out;
    return 0;
}

void hk_cron_free(hk_cron_t *cron) { hk__free(cron); }

/* ---- next fire ------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                               /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;       /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

typedef struct civil {
    int64_t y;
    int mon, d, H, M;
} civil_t;

static void civil_from_tm(const struct tm *tm, civil_t *c) {
    *c = (civil_t){(int64_t)tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min};
}

static bool day_matches(const hk_cron_t *cr, const civil_t *c) {
    int64_t days = days_from_civil(c->y, c->mon, c->d);
    int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    bool dom_ok = cr->dom >> c->d & 1, dow_ok = cr->dow >> wd & 1;
    if (cr->dom_star || cr->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

static bool same_local(time_t t, const civil_t *c) {
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return false;
    civil_t got;
    civil_from_tm(&tm, &got);
    return got.y == c->y && got.mon == c->mon && got.d == c->d && got.H == c->H && got.M == c->M;
}

/* The first instant whose local time is c, or false when c does not exist. */
static bool local_first(const civil_t *c, int64_t *ret) {
    static const int tries[] = {1, 0, -1};
    bool found = false;
    int64_t best = 0;
    for (size_t i = 0; i < HK_ARRAY_SIZE(tries); i++) {
        struct tm tm = {0};
        tm.tm_year = (int)(c->y - 1900);
        tm.tm_mon = c->mon - 1;
        tm.tm_mday = c->d;
        tm.tm_hour = c->H;
        tm.tm_min = c->M;
        tm.tm_isdst = tries[i];
        time_t t = mktime(&tm);
        if (t == (time_t)-1 && !same_local(t, c))
            continue;
        if (same_local(t, c) && (!found || (int64_t)t < best)) {
            best = (int64_t)t;
            found = true;
        }
    }
    if (found)
        *ret = best;
    return found;
}

static void civil_add_minute(civil_t *c) {
    if (++c->M < 60)
        return;
    c->M = 0;
    if (++c->H < 24)
        return;
    c->H = 0;
    if (++c->d <= days_in_month(c->y, c->mon))
        return;
    c->d = 1;
    if (++c->mon <= 12)
        return;
    c->mon = 1;
    c->y++;
}

/* The instant a matching civil time fires at (see the DST rule); false if none. */
static bool resolve(const civil_t *c, bool utc, int64_t *ret) {
    if (utc) {
        *ret = days_from_civil(c->y, c->mon, c->d) * 86400 + c->H * 3600 + c->M * 60;
        return true;
    }
    if (local_first(c, ret))
        return true;
    /* In a spring-forward gap: the first valid minute after it. */
    civil_t n = *c;
    for (int i = 0; i < 48 * 60; i++) {
        civil_add_minute(&n);
        if (local_first(&n, ret))
            return true;
    }
    return false;
}

int hk_cron_next(const hk_cron_t *cr, int64_t after, bool utc, int64_t *ret_next) {
    if (!cr || !ret_next)
        return -EINVAL;
    int64_t start = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
    civil_t c;
    if (utc) {
        int64_t days = start >= 0 ? start / 86400 : (start - 86399) / 86400;
        int64_t secs = start - days * 86400;
        /* civil from days (inverse of days_from_civil) */
        int64_t z = days + 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int d = (int)(doy - (153 * mp + 2) / 5 + 1);
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        c = (civil_t){yoe + era * 400 + (m <= 2), m, d, (int)(secs / 3600), (int)(secs % 3600 / 60)};
    } else {
        tzset();
        time_t t = (time_t)start;
        struct tm tm;
        if (!localtime_r(&t, &tm))
            return -EINVAL;
        civil_from_tm(&tm, &c);
    }
    int64_t limit = c.y + 28;
    for (;;) {
        if (c.M > 59) {
            c.M = 0;
            c.H++;
        }
        if (c.H > 23) {
            c.H = 0;
            c.d++;
        }
        if (c.mon > 12) {
            c.mon = 1;
            c.y++;
        }
        if (c.d > days_in_month(c.y, c.mon)) {
            c.d = 1;
            if (++c.mon > 12) {
                c.mon = 1;
                c.y++;
            }
        }
        if (c.y > limit)
            return -ENOENT;
        if (!(cr->mon >> c.mon & 1)) {
            c.mon++;
            c.d = 1;
            c.H = c.M = 0;
            continue;
        }
        if (!day_matches(cr, &c)) {
            c.d++;
            c.H = c.M = 0;
            continue;
        }
        if (!(cr->hour >> c.H & 1)) {
            c.H++;
            c.M = 0;
            continue;
        }
        if (!(cr->min >> c.M & 1)) {
            c.M++;
            continue;
        }
        int64_t inst;
        if (resolve(&c, utc, &inst) && inst > after) {
            *ret_next = inst;
            return 0;
        }
        c.M++;
    }
}

/* ---- duration error positions ------------------------------------------------ */

size_t hk__duration_error_pos(const char *text) {
    if (!text || strchr(text, ':'))
        return 0;
    const char *p = text;
    int last = -1; /* units largest first: d h m s ms */
    if (!*p)
        return 1;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return (size_t)(p - text) + 1;
        while (isdigit((unsigned char)*p) || *p == '.')
            p++;
        int u;
        if (p[0] == 'm' && p[1] == 's')
            u = 4;
        else if (*p == 'd')
            u = 0;
        else if (*p == 'h')
            u = 1;
        else if (*p == 'm')
            u = 2;
        else if (*p == 's')
            u = 3;
        else
            return (size_t)(p - text) + 1;
        if (u <= last)
            return (size_t)(p - text) + 1;
        last = u;
        p += u == 4 ? 2 : 1;
    }
    return 0;
}
