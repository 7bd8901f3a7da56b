/*
 * Unit tests for the metrics registry and its exposition
 * (include/hostkit/metrics.h, src/metrics/metrics.c and expose.c): golden
 * output, escaping, value formatting, name rules and registration errors,
 * labels and children, histogram bucket math, collectors and their errors,
 * the writer's sinks, out of memory at every allocation, and the host's
 * registry. Depends on cmocka and the test helpers in testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "metrics/metrics_int.h"

/* The exposition as a string (owned by the test; free()). Collectors' values
 * (CPU time, log counters) may grow between the sizing call and the write:
 * retry with the new size. */
static char *expose(hk_metrics_t *m) {
    size_t need = 0;
    int rc = hk_metrics_print(m, NULL, 0, &need);
    assert_int_equal(rc, -ENOBUFS);
    char *buf = NULL;
    size_t got = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        free(buf);
        buf = malloc(need + 1);
        assert_non_null(buf);
        rc = hk_metrics_print(m, buf, need + 1, &got);
        if (rc != -ENOBUFS)
            break;
        need = got;
    }
    assert_int_equal(rc, 0);
    assert_true(got <= need);
    assert_int_equal(strlen(buf), got);
    return buf;
}

static void assert_exposition(hk_metrics_t *m, const char *want) {
    char *got = expose(m);
    if (strcmp(got, want)) {
        fprintf(stderr, "--- want\n%s--- got\n%s---\n", want, got);
        free(got);
        fail_msg("exposition differs");
    }
    free(got);
}

static void assert_error_contains(const char *needle) {
    if (!strstr(hk_metrics_last_error(), needle))
        fail_msg("last error \"%s\" does not contain \"%s\"", hk_metrics_last_error(), needle);
}

/* ---- golden output ---------------------------------------------------------- */

static void exposition_of_every_type_matches_the_golden_text(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);

    hk_metric_t *req;
    assert_int_equal(hk_metrics_register(m,
                                         &(hk_metric_def_t){.type = HK_METRIC_COUNTER,
                                                            .name = "http_requests_total",
                                                            .help = "Requests served.",
                                                            .labels = HK_LABELS("method", "code")},
                                         &req),
                     0);
    hk_counter_t *get200, *post500, *get404;
    /* created out of order: the exposition sorts children by label values */
    assert_int_equal(hk_metric_counter(req, HK_LABELS("POST", "500"), &post500), 0);
    assert_int_equal(hk_metric_counter(req, HK_LABELS("GET", "404"), &get404), 0);
    assert_int_equal(hk_metric_counter(req, HK_LABELS("GET", "200"), &get200), 0);
    for (int i = 0; i < 3; i++)
        hk_counter_inc(get200);
    assert_int_equal(hk_counter_add(post500, 2), 0);

    hk_gauge_t *temp;
    assert_int_equal(hk_metrics_gauge(m, "room_temperature_celsius", "Temperature.", &temp), 0);
    hk_gauge_set(temp, 21.5);
    hk_gauge_add(temp, -0.25);

    hk_histogram_t *lat;
    static const double b[] = {0.1, 0.5, 1};
    assert_int_equal(hk_metrics_histogram(m, "job_duration_seconds", "Job time.", b, 3, &lat), 0);
    hk_histogram_observe(lat, 0.05);
    hk_histogram_observe(lat, 0.1); /* on a bound: counted in that bucket (le is inclusive) */
    hk_histogram_observe(lat, 0.7);
    hk_histogram_observe(lat, 3);

    /* a labelled metric without children writes nothing, not even its header */
    hk_metric_t *empty;
    assert_int_equal(hk_metrics_register(m,
                                         &(hk_metric_def_t){.type = HK_METRIC_GAUGE,
                                                            .name = "aaa_unused",
                                                            .labels = HK_LABELS("x")},
                                         &empty),
                     0);
    /* no help: no HELP line */
    hk_counter_t *nohelp;
    assert_int_equal(hk_metrics_counter(m, "zz_events_total", NULL, &nohelp), 0);

    assert_exposition(m, "# HELP http_requests_total Requests served.\n"
                         "# TYPE http_requests_total counter\n"
                         "http_requests_total{method=\"GET\",code=\"200\"} 3\n"
                         "http_requests_total{method=\"GET\",code=\"404\"} 0\n"
                         "http_requests_total{method=\"POST\",code=\"500\"} 2\n"
                         "# HELP job_duration_seconds Job time.\n"
                         "# TYPE job_duration_seconds histogram\n"
                         "job_duration_seconds_bucket{le=\"0.1\"} 2\n"
                         "job_duration_seconds_bucket{le=\"0.5\"} 2\n"
                         "job_duration_seconds_bucket{le=\"1\"} 3\n"
                         "job_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                         "job_duration_seconds_sum 3.85\n"
                         "job_duration_seconds_count 4\n"
                         "# HELP room_temperature_celsius Temperature.\n"
                         "# TYPE room_temperature_celsius gauge\n"
                         "room_temperature_celsius 21.25\n"
                         "# TYPE zz_events_total counter\n"
                         "zz_events_total 0\n");
    assert_true(hk_counter_value(get200) == 3);
    assert_true(hk_gauge_value(temp) == 21.25);
    assert_int_equal(hk_histogram_count(lat), 4);
    assert_true(fabs(hk_histogram_sum(lat) - 3.85) < 1e-12);
    assert_string_equal(hk_metric_name(req), "http_requests_total");
    hk_metrics_free(m);
}

static void label_values_and_help_are_escaped(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_metric_t *f;
    assert_int_equal(hk_metrics_register(m,
                                         &(hk_metric_def_t){.type = HK_METRIC_GAUGE,
                                                            .name = "esc",
                                                            .help = "Back\\slash, \"quotes\"\nand "
                                                                    "a newline.",
                                                            .labels = HK_LABELS("path")},
                                         &f),
                     0);
    hk_gauge_t *g;
    assert_int_equal(hk_metric_gauge(f, HK_LABELS("C:\\dir \"x\"\nnext é"), &g), 0);
    hk_gauge_set(g, 1);
    /* HELP escapes \ and newline only; label values also the double quote */
    assert_exposition(m, "# HELP esc Back\\\\slash, \"quotes\"\\nand a newline.\n"
                         "# TYPE esc gauge\n"
                         "esc{path=\"C:\\\\dir \\\"x\\\"\\nnext é\"} 1\n");
    hk_metrics_free(m);
}

static void values_are_written_the_shortest_exact_way(void **state) {
    (void)state;
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0, "0"},          {1, "1"},          {-2, "-2"},          {10, "10"},
        {0.1, "0.1"},      {0.005, "0.005"},  {2.5, "2.5"},        {1e-5, "1e-05"},
        {123456789, "123456789"},             {1e20, "100000000000000000000"},
        {1e21, "1e+21"},   {1.0 / 3, "0.3333333333333333"},        {9007199254740993.0, "9007199254740992"},
        {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"},
    };
    for (size_t i = 0; i < HK_ARRAY_SIZE(cases); i++) {
        char buf[40];
        hk__fmt_value(buf, sizeof buf, cases[i].v);
        assert_string_equal(buf, cases[i].s);
        if (isfinite(cases[i].v))
            assert_true(strtod(buf, NULL) == cases[i].v);
    }
}

/* ---- names and registration errors ---------------------------------------------- */

static void metric_and_label_names_follow_the_prometheus_rules(void **state) {
    (void)state;
    static const char *const good[] = {"a", "_x", ":rule:x", "http_requests_total", "A9_:b"};
    static const char *const bad[] = {"", "9lives", "with-dash", "sp ace", "é", "a.b"};
    for (size_t i = 0; i < HK_ARRAY_SIZE(good); i++)
        assert_true(hk__metric_name_ok(good[i]));
    for (size_t i = 0; i < HK_ARRAY_SIZE(bad); i++)
        assert_false(hk__metric_name_ok(bad[i]));
    assert_false(hk__metric_name_ok(NULL));
    assert_true(hk__label_name_ok("method"));
    assert_true(hk__label_name_ok("_x9"));
    assert_false(hk__label_name_ok("__reserved"));
    assert_false(hk__label_name_ok("a:b"));
    assert_false(hk__label_name_ok("9a"));
    assert_false(hk__label_name_ok(""));

    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_counter_t *c = (hk_counter_t *)0x1;
    assert_int_equal(hk_metrics_counter(m, "bad-name", "x", &c), -EINVAL);
    assert_error_contains("invalid metric name \"bad-name\"");
    assert_ptr_equal(c, (hk_counter_t *)0x1); /* untouched on failure */
    assert_int_equal(hk_metrics_counter(m, NULL, "x", &c), -EINVAL);

    hk_metric_t *f = NULL;
    hk_metric_def_t d = {.type = HK_METRIC_COUNTER, .name = "x_total", .labels = HK_LABELS("a-b")};
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    assert_error_contains("invalid label name \"a-b\"");
    d.labels = HK_LABELS("__name__");
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    d.labels = HK_LABELS("a", "b", "a");
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    assert_error_contains("duplicate label name \"a\"");
    d = (hk_metric_def_t){.type = HK_METRIC_HISTOGRAM, .name = "h", .labels = HK_LABELS("le")};
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    assert_error_contains("\"le\" is reserved");
    d = (hk_metric_def_t){.type = HK_METRIC_UNTYPED, .name = "u"};
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    d = (hk_metric_def_t){.type = HK_METRIC_GAUGE, .name = "g", .buckets = hk_metrics_default_buckets,
                          .nbuckets = 2};
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    assert_error_contains("buckets given for a gauge");
    d = (hk_metric_def_t){.type = HK_METRIC_GAUGE, .name = "g", .help = "bad \xff utf-8"};
    assert_int_equal(hk_metrics_register(m, &d, &f), -EINVAL);
    assert_error_contains("not valid UTF-8");
    assert_int_equal(hk_metrics_register(NULL, &d, &f), -EINVAL);
    assert_int_equal(hk_metrics_register(m, NULL, &f), -EINVAL);
    assert_null(f);
    /* nothing was registered by the failures */
    char buf[8];
    assert_int_equal(hk_metrics_print(m, buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "");
    hk_metrics_free(m);
}

static void same_registration_returns_the_metric_and_a_different_one_is_refused(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_metric_def_t d = {.type = HK_METRIC_COUNTER, .name = "jobs_total", .help = "Jobs.",
                         .labels = HK_LABELS("queue")};
    hk_metric_t *a, *b;
    assert_int_equal(hk_metrics_register(m, &d, &a), 0);
    assert_int_equal(hk_metrics_register(m, &d, &b), 0);
    assert_ptr_equal(a, b);

    hk_metric_def_t other = d;
    other.labels = HK_LABELS("queue", "kind");
    assert_int_equal(hk_metrics_register(m, &other, &b), -EEXIST);
    assert_error_contains("metric \"jobs_total\" is already registered as a counter with labels "
                          "{queue}; cannot register it as a counter with labels {queue,kind}");
    other = d;
    other.type = HK_METRIC_GAUGE;
    assert_int_equal(hk_metrics_register(m, &other, &b), -EEXIST);
    assert_error_contains("cannot register it as a gauge");
    other = d;
    other.help = "Other help.";
    assert_int_equal(hk_metrics_register(m, &other, &b), -EEXIST);
    assert_error_contains("a different help text");

    /* histograms: buckets are part of the identity */
    hk_histogram_t *h1, *h2;
    static const double b1[] = {1, 2}, b2[] = {1, 3};
    assert_int_equal(hk_metrics_histogram(m, "wait_seconds", "W.", b1, 2, &h1), 0);
    assert_int_equal(hk_metrics_histogram(m, "wait_seconds", "W.", b1, 2, &h2), 0);
    assert_ptr_equal(h1, h2);
    assert_int_equal(hk_metrics_histogram(m, "wait_seconds", "W.", b2, 2, &h2), -EEXIST);
    assert_error_contains("other buckets");

    /* series names: a histogram writes x_bucket, x_sum, x_count */
    hk_counter_t *c;
    assert_int_equal(hk_metrics_counter(m, "wait_seconds_count", "C.", &c), -EEXIST);
    assert_error_contains("would write series named like those of the histogram \"wait_seconds\"");
    hk_gauge_t *g;
    assert_int_equal(hk_metrics_gauge(m, "rate_sum", "S.", &g), 0);
    assert_int_equal(hk_metrics_histogram(m, "rate", "R.", NULL, 0, &h2), -EEXIST);
    assert_error_contains("the gauge \"rate_sum\"");
    assert_int_equal(hk_metrics_gauge(m, "wait_seconds_total", "not a series of it", &g), 0);
    hk_metrics_free(m);
}

/* ---- children ------------------------------------------------------------------------ */

static void children_are_found_by_their_label_values(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_metric_t *f;
    assert_int_equal(hk_metrics_register(m,
                                         &(hk_metric_def_t){.type = HK_METRIC_COUNTER,
                                                            .name = "x_total",
                                                            .labels = HK_LABELS("a", "b")},
                                         &f),
                     0);
    hk_counter_t *c1, *c2, *c3;
    assert_int_equal(hk_metric_counter(f, HK_LABELS("1", "2"), &c1), 0);
    assert_int_equal(hk_metric_counter(f, HK_LABELS("1", "2"), &c2), 0);
    assert_ptr_equal(c1, c2);
    assert_int_equal(hk_metric_counter(f, HK_LABELS("12", ""), &c3), 0);
    assert_ptr_not_equal(c1, c3); /* values are compared label by label, not joined */
    hk_counter_inc(c1);
    hk_counter_inc(c2);
    assert_true(hk_counter_value(c1) == 2);
    assert_true(hk_counter_value(c3) == 0);

    hk_counter_t *keep = c3;
    assert_int_equal(hk_metric_counter(f, HK_LABELS("1"), &c3), -EINVAL);
    assert_error_contains("1 label value given for 2 labels");
    assert_int_equal(hk_metric_counter(f, NULL, &c3), -EINVAL);
    assert_int_equal(hk_metric_counter(f, HK_LABELS("1", "2", "3"), &c3), -EINVAL);
    assert_int_equal(hk_metric_counter(f, HK_LABELS("1", "\xc3\x28"), &c3), -EINVAL);
    assert_error_contains("value of label \"b\" is not UTF-8");
    hk_gauge_t *g;
    assert_int_equal(hk_metric_gauge(f, HK_LABELS("1", "2"), &g), -EINVAL);
    assert_error_contains("is a counter, not a gauge");
    assert_int_equal(hk_metric_counter(NULL, NULL, &c3), -EINVAL);
    assert_ptr_equal(c3, keep);
    hk_metrics_free(m);
}

static void updates_on_null_handles_do_nothing_and_bad_values_are_refused(void **state) {
    (void)state;
    hk_counter_inc(NULL);
    assert_int_equal(hk_counter_add(NULL, 1), 0);
    hk_gauge_set(NULL, 1);
    hk_gauge_inc(NULL);
    hk_gauge_dec(NULL);
    assert_int_equal(hk_histogram_observe(NULL, 1), 0);
    assert_true(hk_counter_value(NULL) == 0);
    assert_true(hk_gauge_value(NULL) == 0);
    assert_int_equal(hk_histogram_count(NULL), 0);

    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_counter_t *c;
    assert_int_equal(hk_metrics_counter(m, "c_total", "C.", &c), 0);
    assert_int_equal(hk_counter_add(c, -1), -EINVAL);
    assert_int_equal(hk_counter_add(c, NAN), -EINVAL);
    assert_int_equal(hk_counter_add(c, 0.25), 0);
    assert_int_equal(hk_counter_add(c, 1e300), 0); /* beyond 2^53: the double path */
    assert_int_equal(hk_counter_add(c, 2), 0);
    assert_true(hk_counter_value(c) == 1e300);
    hk_gauge_t *g;
    assert_int_equal(hk_metrics_gauge(m, "g", "G.", &g), 0);
    hk_gauge_inc(g);
    hk_gauge_inc(g);
    hk_gauge_dec(g);
    assert_true(hk_gauge_value(g) == 1);
    hk_gauge_set(g, -INFINITY);
    assert_true(hk_gauge_value(g) == -INFINITY);
    hk_histogram_t *h;
    assert_int_equal(hk_metrics_histogram(m, "h", "H.", NULL, 0, &h), 0);
    assert_int_equal(hk_histogram_observe(h, NAN), -EINVAL);
    assert_int_equal(hk_histogram_count(h), 0);
    hk_metrics_free(m);
}

/* ---- histograms ----------------------------------------------------------------------------- */

static void histogram_buckets_count_each_observation_once_cumulatively(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_histogram_t *h;
    assert_int_equal(hk_metrics_histogram(m, "d", "D.", NULL, 0, &h), 0);
    /* default buckets .005 .. 10; observations on, below and above bounds */
    static const double obs[] = {-1, 0, 0.005, 0.0050001, 0.3, 1, 10, 10.5, INFINITY, -INFINITY};
    for (size_t i = 0; i < HK_ARRAY_SIZE(obs); i++)
        assert_int_equal(hk_histogram_observe(h, obs[i]), 0);
    char *text = expose(m);
    /* le=0.005: -1, 0, 0.005, -Inf; le=0.01: +0.0050001; le=0.5: +0.3; le=1: +1;
     * le=10: +10; +Inf: +10.5, +Inf */
    static const char *const want[] = {
        "d_bucket{le=\"0.005\"} 4\n", "d_bucket{le=\"0.01\"} 5\n", "d_bucket{le=\"0.025\"} 5\n",
        "d_bucket{le=\"0.05\"} 5\n",  "d_bucket{le=\"0.1\"} 5\n",  "d_bucket{le=\"0.25\"} 5\n",
        "d_bucket{le=\"0.5\"} 6\n",   "d_bucket{le=\"1\"} 7\n",    "d_bucket{le=\"2.5\"} 7\n",
        "d_bucket{le=\"5\"} 7\n",     "d_bucket{le=\"10\"} 8\n",   "d_bucket{le=\"+Inf\"} 10\n",
        "d_sum NaN\n" /* +Inf + -Inf */, "d_count 10\n"};
    const char *p = text;
    for (size_t i = 0; i < HK_ARRAY_SIZE(want); i++) {
        const char *at = strstr(p, want[i]);
        if (!at)
            fail_msg("missing (in order) %s in\n%s", want[i], text);
        p = at + strlen(want[i]);
    }
    free(text);
    assert_int_equal(hk_histogram_count(h), 10);
    hk_metrics_free(m);
}

static void histogram_buckets_are_checked_and_a_trailing_inf_is_implied(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_histogram_t *h;
    static const double dec[] = {1, 0.5}, dup[] = {1, 1}, nan_b[] = {1, NAN},
                        inf_mid[] = {1, INFINITY, 5}, inf_end[] = {1, 2, INFINITY};
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", dec, 2, &h), -EINVAL);
    assert_error_contains("strictly increasing");
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", dup, 2, &h), -EINVAL);
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", nan_b, 2, &h), -EINVAL);
    assert_error_contains("not finite");
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", inf_mid, 3, &h), -EINVAL);
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", dec, 0, &h), -EINVAL);
    assert_error_contains("nbuckets is 0");
    assert_int_equal(hk_metrics_histogram(m, "a", "A.", inf_end, 3, &h), 0);
    hk_histogram_observe(h, 3);
    /* only +Inf bucket: a histogram of just {+Inf} is allowed */
    hk_histogram_t *only;
    static const double just_inf[] = {INFINITY};
    assert_int_equal(hk_metrics_histogram(m, "b", "B.", just_inf, 1, &only), 0);
    hk_histogram_observe(only, 1);
    assert_exposition(m, "# HELP a A.\n# TYPE a histogram\n"
                         "a_bucket{le=\"1\"} 0\na_bucket{le=\"2\"} 0\na_bucket{le=\"+Inf\"} 1\n"
                         "a_sum 3\na_count 1\n"
                         "# HELP b B.\n# TYPE b histogram\n"
                         "b_bucket{le=\"+Inf\"} 1\nb_sum 1\nb_count 1\n");
    hk_metrics_free(m);
}

static void bucket_helpers_make_linear_and_exponential_bounds(void **state) {
    (void)state;
    double b[4];
    assert_int_equal(hk_metrics_linear_buckets(1, 0.5, 4, b), 4);
    assert_true(b[0] == 1 && b[1] == 1.5 && b[2] == 2 && b[3] == 2.5);
    assert_int_equal(hk_metrics_exponential_buckets(0.001, 10, 4, b), 4);
    assert_true(b[0] == 0.001 && fabs(b[3] - 1) < 1e-12);
    assert_int_equal(hk_metrics_linear_buckets(1, 0, 4, b), -EINVAL);
    assert_int_equal(hk_metrics_linear_buckets(1, 1, 0, b), -EINVAL);
    assert_int_equal(hk_metrics_exponential_buckets(0, 2, 4, b), -EINVAL);
    assert_int_equal(hk_metrics_exponential_buckets(1, 1, 4, b), -EINVAL);
}

/* ---- collectors --------------------------------------------------------------------------------- */

typedef struct svc_row {
    const char *name;
    int up;
    unsigned restarts;
} svc_row_t;

/* The shape the integrator's service series will take. */
static void collect_services(hk_scrape_t *s, void *data) {
    const svc_row_t *rows = data;
    hk_scrape_family(s, HK_METRIC_GAUGE, "hostkit_service_up", "1 when the service is running.",
                     HK_LABELS("service"));
    for (const svc_row_t *r = rows; r->name; r++)
        hk_scrape_sample(s, HK_LABELS(r->name), r->up);
    hk_scrape_family(s, HK_METRIC_COUNTER, "hostkit_service_restarts_total",
                     "Restarts of the service.", HK_LABELS("service"));
    for (const svc_row_t *r = rows; r->name; r++)
        hk_scrape_sample(s, HK_LABELS(r->name), r->restarts);
}

static int destroyed;
static void count_destroy(void *data) {
    (void)data;
    destroyed++;
}

static void collectors_append_families_after_the_registered_metrics(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    static const svc_row_t rows[] = {{"db", 1, 0}, {"worker-1", 0, 3}, {NULL, 0, 0}};
    destroyed = 0;
    assert_int_equal(hk_metrics_add_collector(m, collect_services, (void *)rows, count_destroy), 0);
    hk_counter_t *c;
    assert_int_equal(hk_metrics_counter(m, "zzz_total", "Z.", &c), 0);
    assert_exposition(m, "# HELP zzz_total Z.\n# TYPE zzz_total counter\nzzz_total 0\n"
                         "# HELP hostkit_service_up 1 when the service is running.\n"
                         "# TYPE hostkit_service_up gauge\n"
                         "hostkit_service_up{service=\"db\"} 1\n"
                         "hostkit_service_up{service=\"worker-1\"} 0\n"
                         "# HELP hostkit_service_restarts_total Restarts of the service.\n"
                         "# TYPE hostkit_service_restarts_total counter\n"
                         "hostkit_service_restarts_total{service=\"db\"} 0\n"
                         "hostkit_service_restarts_total{service=\"worker-1\"} 3\n");
    assert_int_equal(hk_metrics_add_collector(m, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(destroyed, 0);
    hk_metrics_free(m);
    assert_int_equal(destroyed, 1);
}

static int results[64];
static int nresults;
#define R(x) (results[nresults++] = (x))

static void collect_badly(hk_scrape_t *s, void *data) {
    (void)data;
    R(hk_scrape_sample(s, NULL, 1));                                           /* no family */
    R(hk_scrape_family(s, HK_METRIC_GAUGE, "bad name", "x", NULL));            /* invalid */
    R(hk_scrape_sample(s, NULL, 1));                                           /* rejected family */
    R(hk_scrape_family(s, HK_METRIC_GAUGE, "taken", "x", NULL));               /* registered */
    R(hk_scrape_family(s, HK_METRIC_HISTOGRAM, "h", "x", NULL));               /* no histograms */
    R(hk_scrape_family(s, HK_METRIC_GAUGE, "ok", "Fine.", HK_LABELS("k")));   /* 0 */
    R(hk_scrape_sample(s, NULL, 1));                                           /* too few values */
    R(hk_scrape_sample(s, HK_LABELS("\xff"), 1));                              /* not UTF-8 */
    R(hk_scrape_sample(s, HK_LABELS("v"), 2));                                 /* 0 */
    R(hk_scrape_family(s, HK_METRIC_UNTYPED, "ok", "again", NULL));            /* written above */
    R(hk_scrape_family(s, HK_METRIC_UNTYPED, "free_form", NULL, HK_LABELS("__x"))); /* label */
    R(hk_scrape_family(s, HK_METRIC_UNTYPED, "free_form", NULL, NULL));        /* 0 */
    R(hk_scrape_sample(s, NULL, -1.5));                                        /* 0 */
}

static void a_bad_collector_family_or_sample_is_left_out_with_an_error(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_gauge_t *g;
    assert_int_equal(hk_metrics_gauge(m, "taken", "T.", &g), 0);
    nresults = 0;
    assert_int_equal(hk_metrics_add_collector(m, collect_badly, NULL, NULL), 0);
    assert_exposition(m, "# HELP taken T.\n# TYPE taken gauge\ntaken 0\n"
                         "# HELP ok Fine.\n# TYPE ok gauge\nok{k=\"v\"} 2\n"
                         "# TYPE free_form untyped\nfree_form -1.5\n");
    /* expose() writes twice; check the second run */
    static const int want[] = {-EINVAL, -EINVAL, -EINVAL, -EEXIST, -EINVAL, 0,      -EINVAL,
                               -EINVAL, 0,       -EEXIST, -EINVAL, 0,       0};
    assert_int_equal(nresults, 2 * (int)HK_ARRAY_SIZE(want));
    for (size_t i = 0; i < HK_ARRAY_SIZE(want); i++)
        if (results[HK_ARRAY_SIZE(want) + i] != want[i])
            fail_msg("step %zu: got %d, want %d", i, results[HK_ARRAY_SIZE(want) + i], want[i]);
    assert_int_equal(hk_scrape_family(NULL, HK_METRIC_GAUGE, "x", NULL, NULL), -EINVAL);
    assert_int_equal(hk_scrape_sample(NULL, NULL, 1), -EINVAL);
    hk_metrics_free(m);
}

/* ---- sinks --------------------------------------------------------------------------------------- */

typedef struct sink {
    size_t calls, bytes;
    int fail_at_call; /* 1-based; 0 never */
} sink_t;

static int counting_sink(const char *data, size_t len, void *arg) {
    (void)data;
    sink_t *s = arg;
    s->calls++;
    if (s->fail_at_call && (int)s->calls == s->fail_at_call)
        return -EPIPE;
    s->bytes += len;
    return 0;
}

static int sink_collector_rc;
static void collect_after_failure(hk_scrape_t *s, void *data) {
    (void)data;
    sink_collector_rc = hk_scrape_family(s, HK_METRIC_GAUGE, "late", "L.", NULL);
}

static void a_failing_sink_stops_the_write_and_its_error_is_returned(void **state) {
    (void)state;
    hk_metrics_t *m;
    assert_int_equal(hk_metrics_new(&m), 0);
    hk_metric_t *f;
    assert_int_equal(hk_metrics_register(m,
                                         &(hk_metric_def_t){.type = HK_METRIC_COUNTER,
                                                            .name = "many_total",
                                                            .help = "Many series.",
                                                            .labels = HK_LABELS("i")},
                                         &f),
                     0);
    for (int i = 0; i < 2000; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        hk_counter_t *c;
        assert_int_equal(hk_metric_counter(f, HK_LABELS(v), &c), 0);
    }
    assert_int_equal(hk_metrics_add_collector(m, collect_after_failure, NULL, NULL), 0);
    sink_t ok = {0};
    assert_int_equal(hk_metrics_write(m, counting_sink, &ok), 0);
    assert_true(ok.calls > 5);           /* streamed in pieces ... */
    assert_true(ok.bytes / ok.calls > 1000); /* ... of a few KiB, not one call per line */
    size_t len;
    assert_int_equal(hk_metrics_print(m, NULL, 0, &len), -ENOBUFS);
    assert_int_equal(len, ok.bytes);

    sink_t bad = {.fail_at_call = 2};
    sink_collector_rc = 1;
    assert_int_equal(hk_metrics_write(m, counting_sink, &bad), -EPIPE);
    assert_int_equal(bad.calls, 2); /* never called again after the failure */
    assert_int_equal(sink_collector_rc, 1); /* collectors are not run after a failure */
    assert_error_contains("the sink failed");

    /* truncation: NUL-terminated prefix */
    char small[32];
    memset(small, 'x', sizeof small);
    assert_int_equal(hk_metrics_print(m, small, sizeof small, &len), -ENOBUFS);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(strncmp(small, "# HELP many_total Many series.\n", 31), 0);
    assert_int_equal(hk_metrics_write(m, NULL, NULL), -EINVAL);
    assert_int_equal(hk_metrics_print(NULL, small, sizeof small, NULL), -EINVAL);
    assert_int_equal(hk_metrics_print(m, NULL, 5, NULL), -EINVAL);
    hk_metrics_free(m);
}

/* ---- out of memory ------------------------------------------------------------------------------- */

static void collect_one(hk_scrape_t *s, void *data) {
    (void)data;
    hk_scrape_family(s, HK_METRIC_GAUGE, "coll_g", "C.", HK_LABELS("a", "b"));
    hk_scrape_sample(s, HK_LABELS("1", "2"), 1);
}

/* Everything that allocates, in one go; 0 or the first error. */
static int oom_scenario(void) {
    hk_metrics_t *m = NULL;
    int rc = hk_metrics_new(&m);
    if (rc < 0)
        return rc;
    hk_metric_t *f;
    hk_counter_t *c;
    hk_histogram_t *h;
    static const double b[] = {1, 2, 3};
    if ((rc = hk_metrics_register(m,
                                  &(hk_metric_def_t){.type = HK_METRIC_COUNTER, .name = "a_total",
                                                     .help = "A.", .labels = HK_LABELS("x", "y")},
                                  &f)) < 0 ||
        (rc = hk_metric_counter(f, HK_LABELS("1", "2"), &c)) < 0 ||
        (rc = hk_metric_counter(f, HK_LABELS("0", "2"), &c)) < 0 ||
        (rc = hk_metrics_histogram(m, "h_seconds", "H.", b, 3, &h)) < 0 ||
        (rc = hk_metrics_add_collector(m, collect_one, NULL, NULL)) < 0 ||
        (rc = hk_metrics_add_process_collector(m)) < 0)
        goto out;
    for (int i = 0; i < 20 && rc == 0; i++) { /* grow the family array */
        char name[32];
        snprintf(name, sizeof name, "g%02d", i);
        hk_gauge_t *g;
        rc = hk_metrics_gauge(m, name, "G.", &g);
    }
    if (rc < 0)
        goto out;
    hk_counter_inc(c);
    hk_histogram_observe(h, 1.5);
    sink_t s = {0};
    rc = hk_metrics_write(m, counting_sink, &s);
out:
    hk_metrics_free(m);
    return rc;
}

static void out_of_memory_at_every_allocation_fails_cleanly_and_leaks_nothing(void **state) {
    (void)state;
    failalloc_install();
    for (int persistent = 0; persistent < 2; persistent++) {
        for (long n = 1;; n++) {
            long base = alloc_live();
            failalloc_set(n, persistent);
            int r = oom_scenario();
            long used = failalloc_count();
            failalloc_set(0, false);
            if (alloc_live() != base) {
                failalloc_uninstall();
                fail_msg("allocation %ld (%s): %ld blocks leaked", n,
                         persistent ? "persistent" : "once", alloc_live() - base);
            }
            if (used < n) {
                assert_int_equal(r, 0);
                assert_true(n > 20);
                break;
            }
            if (r != -ENOMEM) {
                failalloc_uninstall();
                fail_msg("allocation %ld (%s) failed but the scenario returned %d", n,
                         persistent ? "persistent" : "once", r);
            }
            if (!strstr(hk_metrics_last_error(), "out of memory")) {
                failalloc_uninstall();
                fail_msg("allocation %ld: message \"%s\"", n, hk_metrics_last_error());
            }
        }
    }
    failalloc_uninstall();
}

/* ---- the host's registry ------------------------------------------------------------------------- */

static void the_host_owns_a_registry_with_the_process_series(void **state) {
    (void)state;
    char *argv[] = {"app", "--Host:HandleSignals=false", NULL};
    hk_builder_t *b = hk_builder_new(2, argv);
    assert_non_null(b);
    hk_metrics_t *m = hk_builder_metrics(b);
    assert_non_null(m);
    assert_int_equal(hk_metrics_add_process_collector(m), -EEXIST);
    hk_counter_t *c;
    assert_int_equal(hk_metrics_counter(m, "app_things_total", "Things.", &c), 0);
    hk_counter_inc(c);
    hk_host_t *h = NULL;
    assert_int_equal(hk_builder_build(b, &h), 0);
    hk_builder_free(b);
    assert_ptr_equal(hk_host_metrics(h), m); /* moved, not copied: handles stay valid */
    hk_counter_inc(c);
    char *text = expose(m);
    assert_non_null(strstr(text, "\napp_things_total 2\n"));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
    free(text);
    hk_host_free(h);
    assert_null(hk_builder_metrics(NULL));
    assert_null(hk_host_metrics(NULL));

    /* a builder that is never built frees its registry (ASan checks the leak) */
    b = hk_builder_new(0, NULL);
    assert_non_null(hk_builder_metrics(b));
    hk_builder_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exposition_of_every_type_matches_the_golden_text),
        cmocka_unit_test(label_values_and_help_are_escaped),
        cmocka_unit_test(values_are_written_the_shortest_exact_way),
        cmocka_unit_test(metric_and_label_names_follow_the_prometheus_rules),
        cmocka_unit_test(same_registration_returns_the_metric_and_a_different_one_is_refused),
        cmocka_unit_test(children_are_found_by_their_label_values),
        cmocka_unit_test(updates_on_null_handles_do_nothing_and_bad_values_are_refused),
        cmocka_unit_test(histogram_buckets_count_each_observation_once_cumulatively),
        cmocka_unit_test(histogram_buckets_are_checked_and_a_trailing_inf_is_implied),
        cmocka_unit_test(bucket_helpers_make_linear_and_exponential_bounds),
        cmocka_unit_test(collectors_append_families_after_the_registered_metrics),
        cmocka_unit_test(a_bad_collector_family_or_sample_is_left_out_with_an_error),
        cmocka_unit_test(a_failing_sink_stops_the_write_and_its_error_is_returned),
        cmocka_unit_test(out_of_memory_at_every_allocation_fails_cleanly_and_leaks_nothing),
        cmocka_unit_test(the_host_owns_a_registry_with_the_process_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
