/*
 * The process collector (hk_metrics_add_process_collector): the standard
 * process_* series of the Prometheus client libraries, read from Linux
 * /proc at each scrape. Depends on libc, /proc and the scrape API.
 *
 * Sources (proc_root is "/proc"; tests point it at a fixture directory):
 *   self/stat    utime+stime (ticks) -> process_cpu_seconds_total,
 *                vsize (bytes), rss (pages), starttime (ticks after boot)
 *   stat         btime (boot time, seconds since the epoch)
 *   self/fd      one entry per open descriptor -> process_open_fds
 *   self/limits  "Max open files" soft limit -> process_max_fds
 * A source that cannot be read or parsed leaves its series out.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics/metrics_int.h"

/* Reads a small file into buf (NUL-terminated). Returns the length or -1. */
static ssize_t read_small(const char *root, const char *rel, char *buf, size_t cap) {
    char path[512];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", root, rel) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

typedef struct pstat {
    double utime, stime, starttime; /* ticks */
    double vsize, rss;              /* bytes, pages */
} pstat_t;

static bool read_pstat(const char *root, pstat_t *ps) {
    char buf[1024];
    if (read_small(root, "self/stat", buf, sizeof buf) <= 0)
        return false;
    /* The command name is in parentheses and may contain anything: the
     * fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p++;
    /* after ')': field 3 (state) is token 0; utime is field 14 -> token 11 */
    double v[22];
    int tok = 0;
    char *save = NULL;
    for (char *t = strtok_r(p, " \n", &save); t && tok < 22; t = strtok_r(NULL, " \n", &save), tok++)
        v[tok] = tok == 0 ? 0 : strtod(t, NULL);
    if (tok < 22)
        return false;
    ps->utime = v[11];
    ps->stime = v[12];
    ps->starttime = v[19];
    ps->vsize = v[20];
    ps->rss = v[21];
    return true;
}

/* btime from <root>/stat, whose cpu and intr lines may be long. */
static bool read_btime(const char *root, double *ret) {
    char path[512], line[256];
    if ((size_t)snprintf(path, sizeof path, "%s/stat", root) >= sizeof path)
        return false;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool at_start = true, found = false;
    while (fgets(line, sizeof line, f)) {
        if (at_start && !strncmp(line, "btime ", 6)) {
            *ret = strtod(line + 6, NULL);
            found = true;
            break;
        }
        at_start = strchr(line, '\n') != NULL;
    }
    fclose(f);
    return found;
}

static bool count_fds(const char *root, double *ret) {
    char path[512];
    if ((size_t)snprintf(path, sizeof path, "%s/self/fd", root) >= sizeof path)
        return false;
    DIR *d = opendir(path);
    if (!d)
        return false;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    *ret = n; /* counts the descriptor opendir used, as the client libraries do */
    return true;
}

static bool read_max_fds(const char *root, double *ret) {
    char buf[4096];
    if (read_small(root, "self/limits", buf, sizeof buf) <= 0)
        return false;
    const char *p = strstr(buf, "\nMax open files");
    if (!p)
        return false;
    p += strlen("\nMax open files");
    while (*p == ' ')
        p++;
    if (!strncmp(p, "unlimited", 9))
        return false;
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return false;
    *ret = v;
    return true;
}

void hk__process_collect(hk_scrape_t *s, const char *root) {
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    pstat_t ps;
    double btime = 0, v = 0;
    bool have_stat = read_pstat(root, &ps) && ticks > 0 && page > 0;
    if (have_stat) {
        hk_scrape_family(s, HK_METRIC_COUNTER, "process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.", NULL);
        hk_scrape_sample(s, NULL, (ps.utime + ps.stime) / (double)ticks);
    }
    if (read_max_fds(root, &v)) {
        hk_scrape_family(s, HK_METRIC_GAUGE, "process_max_fds",
                         "Maximum number of open file descriptors.", NULL);
        hk_scrape_sample(s, NULL, v);
    }
    if (count_fds(root, &v)) {
        hk_scrape_family(s, HK_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.",
                         NULL);
        hk_scrape_sample(s, NULL, v);
    }
    if (have_stat) {
        hk_scrape_family(s, HK_METRIC_GAUGE, "process_resident_memory_bytes",
                         "Resident memory size in bytes.", NULL);
        hk_scrape_sample(s, NULL, ps.rss * (double)page);
    }
    if (have_stat && read_btime(root, &btime)) {
        hk_scrape_family(s, HK_METRIC_GAUGE, "process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", NULL);
        hk_scrape_sample(s, NULL, btime + ps.starttime / (double)ticks);
    }
    if (have_stat) {
        hk_scrape_family(s, HK_METRIC_GAUGE, "process_virtual_memory_bytes",
                         "Virtual memory size in bytes.", NULL);
        hk_scrape_sample(s, NULL, ps.vsize);
    }
}
