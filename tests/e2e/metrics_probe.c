/*
 * metrics_probe: prints the exposition of a host's metrics registry to
 * stdout, for e2e/test_metrics_promtool.sh (promtool check metrics). It has
 * every kind of series: counters, gauges and histograms with and without
 * labels, values that need escaping, the process collector the builder
 * adds, a collector of the program's own, and the built-in hostkit_*
 * series of a host that ran (service "audit", stopped). Depends on the
 * public API only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <hostkit/hostkit.h>

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((expr) < 0) {                                                                          \
            fprintf(stderr, "metrics_probe: %s: %s\n", #expr, hk_metrics_last_error());           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void collect(hk_scrape_t *s, void *data) {
    (void)data;
    hk_scrape_family(s, HK_METRIC_UNTYPED, "probe_untyped", "An untyped series.", NULL);
    hk_scrape_sample(s, NULL, -1.5);
}

/* A hosted service that stops the host once it started: the run is short
 * and the built-in hostkit_* series describe a real host afterwards. */
static int stop_at_once(hk_service_t *svc, hk_token_t *token) {
    (void)token;
    hk_host_stop(hk_service_host(svc));
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_metrics_t *m = hk_builder_metrics(b);

    hk_metric_t *req, *lat, *temp;
    CHECK(hk_metrics_register(m,
                              &(hk_metric_def_t){.type = HK_METRIC_COUNTER,
                                                 .name = "probe_requests_total",
                                                 .help = "Requests, with \\ and a\nnewline in help.",
                                                 .labels = HK_LABELS("method", "path")},
                              &req));
    hk_counter_t *c;
    CHECK(hk_metric_counter(req, HK_LABELS("GET", "/a \"quoted\" \\ path\nx"), &c));
    hk_counter_add(c, 41.5);
    CHECK(hk_metric_counter(req, HK_LABELS("POST", "/ü"), &c));
    hk_counter_inc(c);
    CHECK(hk_metrics_register(m,
                              &(hk_metric_def_t){.type = HK_METRIC_HISTOGRAM,
                                                 .name = "probe_request_duration_seconds",
                                                 .help = "Request durations.",
                                                 .labels = HK_LABELS("method")},
                              &lat));
    hk_histogram_t *h;
    CHECK(hk_metric_histogram(lat, HK_LABELS("GET"), &h));
    for (int i = 0; i < 100; i++)
        hk_histogram_observe(h, i * 0.013);
    double bytes[5];
    CHECK(hk_metrics_exponential_buckets(64, 4, 5, bytes));
    hk_histogram_t *sz;
    CHECK(hk_metrics_histogram(m, "probe_response_size_bytes", "Response sizes.", bytes, 5, &sz));
    hk_histogram_observe(sz, 100);
    hk_histogram_observe(sz, 1e9);
    CHECK(hk_metrics_register(m,
                              &(hk_metric_def_t){.type = HK_METRIC_GAUGE,
                                                 .name = "probe_temperature_celsius",
                                                 .help = "Temperatures.",
                                                 .labels = HK_LABELS("room")},
                              &temp));
    hk_gauge_t *g;
    CHECK(hk_metric_gauge(temp, HK_LABELS("kitchen"), &g));
    hk_gauge_set(g, -3.25);
    hk_gauge_t *inflight;
    CHECK(hk_metrics_gauge(m, "probe_in_flight", "In flight.", &inflight));
    hk_gauge_inc(inflight);
    CHECK(hk_metrics_add_collector(m, collect, NULL, NULL));

    CHECK(hk_builder_add_hosted(b, "audit", stop_at_once, NULL, NULL, NULL));
    hk_host_t *host = NULL;
    if (hk_builder_build(b, &host) < 0) {
        hk_builder_free(b);
        return 1;
    }
    hk_builder_free(b);
    if (hk_host_run(host) != 0) {
        hk_host_free(host);
        return 1;
    }
    char *buf = NULL;
    size_t need = 0;
    int rc = hk_metrics_print(hk_host_metrics(host), NULL, 0, &need);
    if (rc == -ENOBUFS) {
        need += 4096; /* room for values that grow between the calls */
        buf = malloc(need);
        rc = buf ? hk_metrics_print(hk_host_metrics(host), buf, need, NULL) : -ENOMEM;
    }
    if (rc == 0)
        fputs(buf, stdout);
    else
        fprintf(stderr, "metrics_probe: %s\n", hk_metrics_last_error());
    free(buf);
    hk_host_free(host);
    return rc == 0 ? 0 : 1;
}
