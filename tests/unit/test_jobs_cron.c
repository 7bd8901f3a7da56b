/*
 * Cron expressions: the parser (fields, names, ranges, lists, steps, macros,
 * errors with their 1-based positions) and hk_cron_next (month ends, Feb 29
 * and leap years, Vixie's day-of-month/day-of-week rule, UTC versus local
 * time, and DST in a fixed zone: TZ is set to Europe/Berlin for the whole
 * file, whose clocks go 02:00 -> 03:00 on 2024-03-31 and 03:00 -> 02:00 on
 * 2024-10-27).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/jobs_int.h"
#include "testutil.h"

/* Seconds since the epoch of a UTC date. */
static int64_t utc(int y, int mo, int d, int h, int mi) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static int64_t next_of(const char *expr, int64_t after, bool in_utc) {
    hk_cron_t *c = NULL;
    char err[160];
    size_t pos = 0;
    int rc = hk_cron_parse(expr, &c, err, sizeof err, &pos);
    if (rc != 0)
        fail_msg("%s: %s at %zu", expr, err, pos);
    int64_t n = -1;
    rc = hk_cron_next(c, after, in_utc, &n);
    hk_cron_free(c);
    if (rc == -ENOENT)
        return -ENOENT;
    assert_int_equal(rc, 0);
    return n;
}

#define assert_next(expr, after, in_utc, expect)                                                   \
    do {                                                                                           \
        int64_t got_ = next_of((expr), (after), (in_utc)), want_ = (expect);                       \
        if (got_ != want_) {                                                                       \
            time_t g_ = (time_t)got_, w_ = (time_t)want_;                                          \
            char gb_[64], wb_[64];                                                                 \
            strftime(gb_, sizeof gb_, "%F %T UTC", gmtime(&g_));                                   \
            strftime(wb_, sizeof wb_, "%F %T UTC", gmtime(&w_));                                   \
            fail_msg("%s: next is %s, expected %s", (expr), gb_, wb_);                             \
        }                                                                                          \
    } while (0)

static void parse_error(const char *expr, const char *msg, size_t want_pos) {
    hk_cron_t *c = NULL;
    char err[160] = "";
    size_t pos = 0;
    int rc = hk_cron_parse(expr, &c, err, sizeof err, &pos);
    if (rc != -EINVAL || strcmp(err, msg) != 0 || pos != want_pos)
        fail_msg("\"%s\": rc %d, \"%s\" at %zu; expected \"%s\" at %zu", expr, rc, err, pos, msg,
                 want_pos);
    assert_null(c);
}

static void errors_name_the_field_and_position(void **state) {
    (void)state;
    parse_error("0 25 * * *", "hour 25 is out of range 0-23", 3);
    parse_error("61 * * * *", "minute 61 is out of range 0-59", 1);
    parse_error("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4", 8);
    parse_error("* * * * * *", "more than 5 fields (seconds and years are not supported)", 11);
    parse_error("", "the expression is empty", 1);
    parse_error("* * * foo *", "unknown month name \"foo\"", 7);
    parse_error("* * * * funday", "unknown day-of-week name \"funday\"", 9);
    parse_error("mon * * * *", "minute takes numbers, not names (\"mon\")", 1);
    parse_error("1,,2 * * * *", "minute: empty list item", 3);
    parse_error("*/0 * * * *", "minute step 0 is out of range 1-59", 3);
    parse_error("* 5-2 * * *", "hour range 5-2 goes backwards", 5);
    parse_error("* * 0 * *", "day-of-month 0 is out of range 1-31", 5);
    parse_error("* * * 13 *", "month 13 is out of range 1-12", 7);
    parse_error("* * * * 8", "day-of-week 8 is out of range 0-6", 9);
    parse_error("*x * * * *", "minute: unexpected character 'x'", 2);
    parse_error("* * * * 1/", "day-of-week: a step needs a number after '/'", 11);
    parse_error("@reboot", "unknown macro \"@reboot\" (use @yearly, @annually, @monthly, @weekly, "
                           "@daily, @midnight or @hourly)", 1);
    parse_error("@daily 5", "unexpected text after @daily", 8);
    parse_error("0 0 30 2 *", "day-of-month never occurs in the given months", 5);
    parse_error("0 0 31 4,6,9,11 *", "day-of-month never occurs in the given months", 5);
    parse_error("0 0 30 2 */1", "day-of-month never occurs in the given months", 5);
    /* NULL expression */
    hk_cron_t *c = NULL;
    assert_int_equal(hk_cron_parse(NULL, &c, NULL, 0, NULL), -EINVAL);
}

static void fields_lists_ranges_steps_and_names(void **state) {
    (void)state;
    int64_t t = utc(2024, 1, 10, 12, 7); /* a Wednesday */
    assert_next("*/15 * * * *", t, true, utc(2024, 1, 10, 12, 15));
    assert_next("5,20-22 * * * *", t, true, utc(2024, 1, 10, 12, 20));
    assert_next("10-50/20 * * * *", t, true, utc(2024, 1, 10, 12, 10));
    assert_next("10/20 * * * *", utc(2024, 1, 10, 12, 10), true, utc(2024, 1, 10, 12, 30));
    assert_next("0 9 * * MON-fri", t, true, utc(2024, 1, 11, 9, 0));
    assert_next("0 9 * * sat,sun", t, true, utc(2024, 1, 13, 9, 0));
    assert_next("0 9 * * 7", t, true, utc(2024, 1, 14, 9, 0)); /* 7 is Sunday too */
    assert_next("0 0 1 jul *", t, true, utc(2024, 7, 1, 0, 0));
    assert_next("  0  0  1  JAN  *  ", t, true, utc(2025, 1, 1, 0, 0));
    /* strictly after: a time that matches `after` itself is not returned */
    assert_next("7 12 * * *", t, true, utc(2024, 1, 11, 12, 7));
    assert_next("7 12 * * *", t - 1, true, t);
    assert_next("* * * * *", t + 30, true, t + 60);
}

static void macros_expand(void **state) {
    (void)state;
    int64_t t = utc(2024, 5, 15, 10, 30); /* a Wednesday */
    assert_next("@hourly", t, true, utc(2024, 5, 15, 11, 0));
    assert_next("@daily", t, true, utc(2024, 5, 16, 0, 0));
    assert_next("@midnight", t, true, utc(2024, 5, 16, 0, 0));
    assert_next("@weekly", t, true, utc(2024, 5, 19, 0, 0));
    assert_next("@monthly", t, true, utc(2024, 6, 1, 0, 0));
    assert_next("@yearly", t, true, utc(2025, 1, 1, 0, 0));
    assert_next("@ANNUALLY", t, true, utc(2025, 1, 1, 0, 0));
}

static void month_ends_and_leap_years(void **state) {
    (void)state;
    /* the 31st skips the months without one */
    assert_next("0 0 31 * *", utc(2024, 4, 1, 0, 0), true, utc(2024, 5, 31, 0, 0));
    assert_next("0 0 31 * *", utc(2024, 5, 31, 0, 0), true, utc(2024, 7, 31, 0, 0));
    assert_next("0 0 30 * *", utc(2024, 1, 30, 0, 0), true, utc(2024, 3, 30, 0, 0));
    /* year end rolls over */
    assert_next("59 23 31 12 *", utc(2024, 6, 1, 0, 0), true, utc(2024, 12, 31, 23, 59));
    assert_next("* * * * *", utc(2024, 12, 31, 23, 59), true, utc(2025, 1, 1, 0, 0));
    /* Feb 29: the next leap year; 2100 is not one, 2000 was */
    assert_next("0 0 29 2 *", utc(2024, 3, 1, 0, 0), true, utc(2028, 2, 29, 0, 0));
    assert_next("0 0 29 2 *", utc(2097, 3, 1, 0, 0), true, utc(2104, 2, 29, 0, 0));
    assert_next("0 0 29 2 *", utc(1999, 3, 1, 0, 0), true, utc(2000, 2, 29, 0, 0));
    assert_next("0 12 28-29 2 *", utc(2023, 2, 28, 12, 0), true, utc(2024, 2, 28, 12, 0));
    /* a '*'-step day-of-month ANDs with the weekday: Mondays in February only */
    assert_next("0 0 */1 2 mon", utc(2024, 2, 27, 0, 0), true, utc(2025, 2, 3, 0, 0));
}

static void day_of_month_or_day_of_week_as_vixie(void **state) {
    (void)state;
    /* both restricted: the 13th OR a Friday */
    int64_t t = utc(2024, 9, 1, 0, 0); /* a Sunday */
    assert_next("0 0 13 * 5", t, true, utc(2024, 9, 6, 0, 0));  /* Friday the 6th */
    assert_next("0 0 13 * 5", utc(2024, 9, 12, 0, 0), true, utc(2024, 9, 13, 0, 0));
    /* day-of-month '*': only the weekday counts */
    assert_next("0 0 * * 5", t, true, utc(2024, 9, 6, 0, 0));
    /* a field starting with '*' counts as unrestricted: "*" + step is AND with the other */
    assert_next("0 0 */2 * 1", t, true, utc(2024, 9, 9, 0, 0)); /* odd day AND Monday: 9th */
}

/* ---- DST in Europe/Berlin -------------------------------------------------------- */

static void utc_schedules_ignore_dst(void **state) {
    (void)state;
    assert_next("30 2 * * *", utc(2024, 3, 30, 3, 0), true, utc(2024, 3, 31, 2, 30));
}

static void local_time_follows_the_zone(void **state) {
    (void)state;
    /* winter: CET = UTC+1; summer: CEST = UTC+2 */
    assert_next("0 9 * * *", utc(2024, 1, 10, 0, 0), false, utc(2024, 1, 10, 8, 0));
    assert_next("0 9 * * *", utc(2024, 7, 10, 0, 0), false, utc(2024, 7, 10, 7, 0));
}

static void spring_forward_runs_a_missing_time_once_at_the_first_valid_minute(void **state) {
    (void)state;
    /* 02:30 does not exist on 2024-03-31: it runs at 03:00 CEST (01:00 UTC) */
    int64_t gap = utc(2024, 3, 31, 1, 0);
    assert_next("30 2 * * *", utc(2024, 3, 30, 12, 0), false, gap);
    /* and the day after at 02:30 CEST again */
    assert_next("30 2 * * *", gap, false, utc(2024, 4, 1, 0, 30));
    /* every 15 minutes: 01:45 CET, then 02:00..02:45 collapse into one run at 03:00 CEST, then 03:15 */
    assert_next("*/15 * * * *", utc(2024, 3, 31, 0, 40), false, utc(2024, 3, 31, 0, 45));
    assert_next("*/15 * * * *", utc(2024, 3, 31, 0, 45), false, gap);
    assert_next("*/15 * * * *", gap, false, utc(2024, 3, 31, 1, 15));
    /* hourly: 01:00 CET, 03:00 CEST (for 02:00 and 03:00 at once), 04:00 CEST */
    assert_next("0 * * * *", utc(2024, 3, 31, 0, 0), false, gap);
    assert_next("0 * * * *", gap, false, utc(2024, 3, 31, 2, 0));
}

static void fall_back_runs_a_repeated_time_once_at_its_first_occurrence(void **state) {
    (void)state;
    /* 02:30 happens twice on 2024-10-27: 00:30 UTC (CEST) and 01:30 UTC (CET) */
    int64_t first = utc(2024, 10, 27, 0, 30);
    assert_next("30 2 * * *", utc(2024, 10, 26, 12, 0), false, first);
    assert_next("30 2 * * *", first, false, utc(2024, 10, 28, 1, 30)); /* not 01:30 UTC on the 27th */
    /* hourly: 02:00 CEST (00:00 UTC), then 03:00 CET (02:00 UTC): the second 02:00 does not run */
    assert_next("0 * * * *", utc(2024, 10, 26, 23, 30), false, utc(2024, 10, 27, 0, 0));
    assert_next("0 * * * *", utc(2024, 10, 27, 0, 0), false, utc(2024, 10, 27, 2, 0));
    /* a host started during the repeated hour (02:10 CET) waits for 03:00 CET */
    assert_next("*/30 * * * *", utc(2024, 10, 27, 1, 10), false, utc(2024, 10, 27, 2, 0));
}

static void duration_error_positions(void **state) {
    (void)state;
    assert_int_equal(hk__duration_error_pos("5 minutes"), 2);
    assert_int_equal(hk__duration_error_pos("10x"), 3);
    assert_int_equal(hk__duration_error_pos("1s1m"), 4); /* units largest first */
    assert_int_equal(hk__duration_error_pos("abc"), 1);
    assert_int_equal(hk__duration_error_pos("1h30m"), 0);
    assert_int_equal(hk__duration_error_pos("00:00:05"), 0);
}

int main(void) {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errors_name_the_field_and_position),
        cmocka_unit_test(fields_lists_ranges_steps_and_names),
        cmocka_unit_test(macros_expand),
        cmocka_unit_test(month_ends_and_leap_years),
        cmocka_unit_test(day_of_month_or_day_of_week_as_vixie),
        cmocka_unit_test(utc_schedules_ignore_dst),
        cmocka_unit_test(local_time_follows_the_zone),
        cmocka_unit_test(spring_forward_runs_a_missing_time_once_at_the_first_valid_minute),
        cmocka_unit_test(fall_back_runs_a_repeated_time_once_at_its_first_occurrence),
        cmocka_unit_test(duration_error_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
