/*
 * Configuration reload on the host thread: watches the configuration files'
 * directories (in-place writes, write-then-rename, Kubernetes ..data symlink
 * swaps), debounces bursts, and reloads on file change, SIGHUP or
 * hk_config_request_reload. A reload is all or nothing: files are parsed
 * into a pending view, log levels and every bound options section are
 * validated against it, and only then is it committed; otherwise the
 * previous configuration stays in force and the errors are logged.
 * Depends on libuv, src/config (private reload interface), src/log, host_int.h.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_int.h"
#include "config/options_int.h"
#include "core/host_int.h"
#include "log/log.h"

typedef struct dirwatch {
    uv_fs_event_t ev;
    char *dir;
    char **names; /* basenames of the watched files in dir */
    size_t nnames;
    bool started;
    hk_host_t *host;
} dirwatch_t;

struct hk__reload {
    uv_timer_t debounce;
    dirwatch_t **dirs;
    size_t ndirs;
};

int hk_host_on_config_change(hk_host_t *h, const char *section, hk_config_change_cb cb, void *data) {
    if (!h || !section || !cb)
        return -EINVAL;
    struct hk__config_watcher *nw = hk__realloc(h->watchers, (h->nwatchers + 1) * sizeof *nw);
    if (!nw)
        return -ENOMEM;
    h->watchers = nw;
    char *s = hk__strdup(section);
    if (!s)
        return -ENOMEM;
    h->watchers[h->nwatchers++] = (struct hk__config_watcher){s, cb, data};
    return 0;
}

/* ---- reload -------------------------------------------------------------- */

static void reload_now(hk_host_t *h, const char *why);

typedef struct reload_ctx {
    hk_host_t *host;
    size_t errors;
    size_t changed;
    bool *hit; /* per watcher; NULL (out of memory): notify everyone */
} reload_ctx_t;

static void on_reload_error(void *data, const char *msg) {
    reload_ctx_t *rc = data;
    rc->errors++;
    hk_log(rc->host->lg_host, HK_LOG_ERROR, "Configuration reload failed: %s", msg);
}

static bool in_section(const char *key, const char *section) {
    size_t n = strlen(section);
    return n == 0 || (strncasecmp(key, section, n) == 0 && (key[n] == '\0' || key[n] == ':'));
}

static void on_changed(void *data, const char *key) {
    reload_ctx_t *rc = data;
    rc->changed++;
    for (size_t i = 0; rc->hit && i < rc->host->nwatchers; i++)
        if (!rc->hit[i] && in_section(key, rc->host->watchers[i].section))
            rc->hit[i] = true;
}

void hk__reload_now(hk_host_t *h, const char *why) {
    hk__sd_reloading(h);
    reload_now(h, why);
    hk__sd_reloaded(h); /* READY=1 again, whether the reload applied or not */
}

static void reload_now(hk_host_t *h, const char *why) {
    reload_ctx_t ctx = {.host = h};
    hk_config_t *pending = NULL;
    int rc = hk__config_reload_prepare(h->config, &pending, on_reload_error, &ctx);
    if (rc == 0) {
        /* Logging: a bad level name or log file fails the reload like a bad file. */
        if (hk__log_check(pending) < 0) {
            for (size_t i = 0; i < hk_config_error_count(pending); i++)
                on_reload_error(&ctx, hk_config_error(pending, i));
            rc = -EINVAL;
        }
    }
    /* Options: stage every section against the pending values (every error
     * is reported); publish none unless all of them bound. */
    void **staged = rc == 0 && h->nopts ? hk__calloc(h->nopts, sizeof *staged) : NULL;
    if (rc == 0 && h->nopts && !staged)
        rc = -ENOMEM;
    for (size_t i = 0; rc != -ENOMEM && staged && i < h->nopts; i++) {
        int r = hk__options_stage(h->opts[i], pending, on_reload_error, &ctx, &staged[i]);
        if (r < 0 && rc == 0)
            rc = r;
    }
    if (rc < 0) {
        for (size_t i = 0; staged && i < h->nopts; i++)
            hk__options_discard(h->opts[i], staged[i]);
        hk__free(staged);
        hk__config_reload_abort(pending);
        if (rc == -ENOMEM)
            hk_log(h->lg_host, HK_LOG_ERROR, "Configuration reload failed: out of memory");
        hk_log(h->lg_host, HK_LOG_ERROR, "Keeping the previous configuration");
        return;
    }
    ctx.hit = h->nwatchers ? hk__calloc(h->nwatchers, sizeof *ctx.hit) : NULL;
    if (hk__config_reload_commit(h->config, pending, on_changed, &ctx) < 0) {
        for (size_t i = 0; staged && i < h->nopts; i++)
            hk__options_discard(h->opts[i], staged[i]);
        hk__free(staged);
        hk__free(ctx.hit);
        hk_log(h->lg_host, HK_LOG_ERROR, "Configuration reload failed: out of memory");
        hk_log(h->lg_host, HK_LOG_ERROR, "Keeping the previous configuration");
        return;
    }
    for (size_t i = 0; staged && i < h->nopts; i++)
        hk__options_publish(h->opts[i], staged[i]);
    hk__free(staged);
    (void)hk__log_configure(h->log, h->config);
    if (ctx.changed)
        hk_log(h->lg_host, HK_LOG_INFO, "Configuration reloaded (%s): %zu key%s changed", why,
               ctx.changed, ctx.changed == 1 ? "" : "s");
    else
        hk_log(h->lg_host, HK_LOG_DEBUG, "Configuration reloaded (%s): nothing changed", why);
    for (size_t i = 0; ctx.changed && i < h->nwatchers; i++)
        if (!ctx.hit || ctx.hit[i])
            h->watchers[i].cb(h, h->watchers[i].section, h->watchers[i].data);
    hk__free(ctx.hit);
}

/* ---- watching files ------------------------------------------------------- */

static void on_debounced(uv_timer_t *t) {
    hk_host_t *h = t->data;
    if (h->phase == PHASE_RUNNING)
        hk__reload_now(h, "a configuration file changed");
    else
        atomic_store(&h->reload_requested, true); /* picked up once running */
}

static void on_fs_event(uv_fs_event_t *ev, const char *filename, int events, int status) {
    HK_UNUSED(events);
    dirwatch_t *dw = ev->data;
    if (status < 0)
        return;
    bool relevant = !filename || (filename[0] == '.' && filename[1] == '.'); /* ..data swaps */
    for (size_t i = 0; !relevant && i < dw->nnames; i++)
        relevant = strcmp(filename, dw->names[i]) == 0;
    if (relevant)
        uv_timer_start(&dw->host->reload->debounce, on_debounced, (uint64_t)dw->host->debounce_ms, 0);
}

static void post_reload(void *data) {
    hk_host_t *h = data;
    hk__control_post(&h->ctl, CTL_RELOAD); /* async-signal-safe */
}

static dirwatch_t *dir_for(struct hk__reload *r, hk_host_t *h, const char *dir) {
    for (size_t i = 0; i < r->ndirs; i++)
        if (!strcmp(r->dirs[i]->dir, dir))
            return r->dirs[i];
    dirwatch_t **nd = hk__realloc(r->dirs, (r->ndirs + 1) * sizeof *nd);
    if (!nd)
        return NULL;
    r->dirs = nd;
    dirwatch_t *dw = hk__calloc(1, sizeof *dw);
    if (!dw || !(dw->dir = hk__strdup(dir))) {
        hk__free(dw);
        return NULL;
    }
    dw->host = h;
    r->dirs[r->ndirs++] = dw;
    return dw;
}

static int add_watch(struct hk__reload *r, hk_host_t *h, const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? hk__strndup(path, slash == path ? 1 : (size_t)(slash - path)) : hk__strdup(".");
    if (!dir)
        return -ENOMEM;
    dirwatch_t *dw = dir_for(r, h, dir);
    hk__free(dir);
    if (!dw)
        return -ENOMEM;
    char **nn = hk__realloc(dw->names, (dw->nnames + 1) * sizeof *nn);
    if (!nn)
        return -ENOMEM;
    dw->names = nn;
    if (!(dw->names[dw->nnames] = hk__strdup(slash ? slash + 1 : path)))
        return -ENOMEM;
    dw->nnames++;
    return 0;
}

int hk__reload_start(hk_host_t *h) {
    hk__config_set_reload_hook(h->config, post_reload, h);
    hk__config_watch_start(h->config);
    h->watching = true;
    struct hk__reload *r = hk__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    h->reload = r;
    uv_timer_init(&h->loop, &r->debounce);
    r->debounce.data = h;
    uv_unref((uv_handle_t *)&r->debounce);
    /* Only directories holding a file that exists: removing an inotify watch
     * costs the kernel an RCU grace period (about 5 ms measured at shutdown,
     * bench/RESULTS.md), too much to pay for files that are not there. A
     * file created later is read on the next reload (SIGHUP), or watched once
     * a sibling in its directory exists. */
    const char *path;
    int rc = 0;
    for (size_t i = 0; h->reload_on_change && rc == 0 && (path = hk__config_watch_file(h->config, i));
         i++) {
        if (access(path, F_OK) == 0)
            rc = add_watch(r, h, path);
        else
            hk_log(h->lg_host, HK_LOG_DEBUG, "Not watching %s: it does not exist", path);
    }
    for (size_t i = 0; i < r->ndirs; i++) {
        dirwatch_t *dw = r->dirs[i];
        uv_fs_event_init(&h->loop, &dw->ev);
        dw->ev.data = dw;
        int e = uv_fs_event_start(&dw->ev, on_fs_event, dw->dir, 0);
        if (e < 0) {
            hk_log(h->lg_host, HK_LOG_DEBUG, "Not watching %s for configuration changes: %s", dw->dir,
                   uv_strerror(e));
            uv_close((uv_handle_t *)&dw->ev, NULL);
            continue;
        }
        uv_unref((uv_handle_t *)&dw->ev);
        dw->started = true;
    }
    return rc;
}

void hk__reload_stop(hk_host_t *h) {
    if (!h->watching)
        return; /* hk__reload_start never ran: no provider was asked to watch */
    h->watching = false;
    hk__config_set_reload_hook(h->config, NULL, NULL);
    hk__config_watch_stop(h->config);
    struct hk__reload *r = h->reload;
    if (!r)
        return;
    for (size_t i = 0; i < r->ndirs; i++)
        if (r->dirs[i]->started)
            uv_close((uv_handle_t *)&r->dirs[i]->ev, NULL);
    uv_close((uv_handle_t *)&r->debounce, NULL);
}

/* After the loop has run the close callbacks. */
void hk__reload_free(hk_host_t *h) {
    struct hk__reload *r = h->reload;
    if (!r)
        return;
    for (size_t i = 0; i < r->ndirs; i++) {
        for (size_t k = 0; k < r->dirs[i]->nnames; k++)
            hk__free(r->dirs[i]->names[k]);
        hk__free(r->dirs[i]->names);
        hk__free(r->dirs[i]->dir);
        hk__free(r->dirs[i]);
    }
    hk__free(r->dirs);
    hk__free(r);
    h->reload = NULL;
}
