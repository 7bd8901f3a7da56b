/*
 * The host's built-in metric series, written at scrape time by one collector
 * on the host's registry: hostkit_service_up/_restarts_total/_state from the
 * service states, hostkit_health_status from a health report (cached for
 * Health:CacheSeconds), hostkit_log_messages_total/_dropped_total from the
 * log's counters. Depends on src/metrics (public API), src/health and host_int.h.
 */
#include <errno.h>

#include "core/host_int.h"

static const char *const level_labels[] = {"trace", "debug", "information",
                                           "warning", "error", "critical"};

static void services_series(hk_scrape_t *s, hk_host_t *h) {
    size_t n = h->nsvcs;
    hk_service_status_t *st = n ? hk__calloc(n, sizeof *st) : NULL;
    if (!st)
        return;
    n = hk_host_service_status(h, st, n);
    if (n > h->nsvcs)
        n = h->nsvcs;
    hk_scrape_family(s, HK_METRIC_GAUGE, "hostkit_service_up",
                     "Whether the service is running (1) or not (0).", HK_LABELS("service"));
    for (size_t i = 0; i < n; i++)
        hk_scrape_sample(s, HK_LABELS(st[i].name), st[i].state == HK_SERVICE_RUNNING);
    hk_scrape_family(s, HK_METRIC_COUNTER, "hostkit_service_restarts_total",
                     "Restarts of the service since the host started.", HK_LABELS("service"));
    for (size_t i = 0; i < n; i++)
        hk_scrape_sample(s, HK_LABELS(st[i].name), (double)st[i].restarts);
    hk_scrape_family(s, HK_METRIC_GAUGE, "hostkit_service_state",
                     "1 for the state the service is in, 0 for the others.",
                     HK_LABELS("service", "state"));
    for (size_t i = 0; i < n; i++)
        for (int k = HK_SERVICE_CREATED; k <= HK_SERVICE_FAILED; k++)
            hk_scrape_sample(s, HK_LABELS(st[i].name, hk_service_state_name((hk_service_state_t)k)),
                             (int)st[i].state == k);
    hk__free(st);
}

static void health_series(hk_scrape_t *s, hk_host_t *h) {
    hk_health_report_t *rep = NULL;
    if (!h->health || hk_health_report(h->health, NULL, NULL, &rep) < 0 || !rep)
        return;
    hk_scrape_family(s, HK_METRIC_GAUGE, "hostkit_health_status",
                     "Health check status: 0 Unhealthy, 1 Degraded, 2 Healthy.", HK_LABELS("check"));
    for (size_t i = 0; i < rep->n; i++)
        hk_scrape_sample(s, HK_LABELS(rep->entries[i].name), 2.0 - (double)rep->entries[i].status);
    hk_health_report_free(rep);
}

static void log_series(hk_scrape_t *s, hk_host_t *h) {
    hk_log_stats_t st;
    hk_log_stats(h->log, &st);
    hk_scrape_family(s, HK_METRIC_COUNTER, "hostkit_log_messages_total",
                     "Log messages queued for writing, by level.", HK_LABELS("level"));
    for (int i = 0; i < 6; i++)
        hk_scrape_sample(s, HK_LABELS(level_labels[i]), (double)st.messages[i]);
    hk_scrape_family(s, HK_METRIC_COUNTER, "hostkit_log_dropped_total",
                     "Log messages dropped because the queue was full (QueueFullMode=DropWrite).",
                     NULL);
    hk_scrape_sample(s, NULL, (double)st.dropped);
}

static void collect(hk_scrape_t *s, void *data) {
    hk_host_t *h = *(hk_host_t **)data;
    if (!h) /* the builder was not built */
        return;
    services_series(s, h);
    health_series(s, h);
    log_series(s, h);
}

hk_host_t **hk__host_metrics_add(hk_metrics_t *metrics) {
    hk_host_t **slot = hk__calloc(1, sizeof *slot);
    if (!slot)
        return NULL;
    if (hk_metrics_add_collector(metrics, collect, slot, hk__free) < 0) {
        hk__free(slot);
        return NULL;
    }
    return slot;
}
