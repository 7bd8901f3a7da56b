/*
 * Service objects: creation from a definition, accessors for service
 * callbacks, failure messages (hk_service_fail), destruction.
 * Depends on src/common and host_int.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/host_int.h"

static void free_dep_names(char **names) {
    for (size_t i = 0; names && names[i]; i++)
        hk__free(names[i]);
    hk__free(names);
}

hk_service_t *hk__service_new(const hk_service_def_t *def) {
    hk_service_t *svc = hk__calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->name = hk__strdup(def->name);
    if (!svc->name) {
        hk__free(svc);
        return NULL;
    }
    svc->def = *def;
    svc->def.name = svc->name;
    if (def->instance && !(svc->instance_key = hk__strdup(def->instance))) {
        hk__free(svc->name);
        hk__free(svc);
        return NULL;
    }
    svc->def.instance = svc->instance_key;
    size_t ndeps = 0;
    while (def->depends_on && def->depends_on[ndeps])
        ndeps++;
    if (ndeps) {
        svc->dep_names = hk__calloc(ndeps + 1, sizeof *svc->dep_names);
        bool ok = svc->dep_names != NULL;
        for (size_t i = 0; ok && i < ndeps; i++)
            ok = (svc->dep_names[i] = hk__strdup(def->depends_on[i])) != NULL;
        if (!ok) {
            free_dep_names(svc->dep_names);
            hk__free(svc->instance_key);
            hk__free(svc->name);
            hk__free(svc);
            return NULL;
        }
    }
    svc->def.depends_on = (const char *const *)svc->dep_names;
    pthread_mutex_init(&svc->state_mu, NULL);
    svc->state = HK_SERVICE_CREATED;
    svc->state_since_ns = hk__sup_now_ns();
    pthread_mutex_init(&svc->error_mu, NULL);
    svc->exec.svc = svc->phase.svc = svc;
    svc->exec.kind = TASK_EXECUTE;
    atomic_init(&svc->exec.done, false);
    atomic_init(&svc->phase.done, false);
    if (def->execute && hk_token_new(&svc->stopping) < 0) {
        pthread_mutex_destroy(&svc->state_mu);
        pthread_mutex_destroy(&svc->error_mu);
        free_dep_names(svc->dep_names);
        hk__free(svc->instance_key);
        hk__free(svc->name);
        hk__free(svc);
        return NULL;
    }
    return svc;
}

void hk__service_destroy_data(hk_service_t *svc) {
    if (svc->destroyed)
        return;
    svc->destroyed = true;
    if (svc->def.destroy)
        svc->def.destroy(svc->def.data);
}

void hk__service_free(hk_service_t *svc) {
    if (!svc)
        return;
    hk_token_free(svc->stopping);
    hk__free(svc->error);
    hk__free(svc->exec_error);
    hk__free(svc->instance_key);
    free_dep_names(svc->dep_names);
    hk__free(svc->deps);
    hk__free(svc->fail_ns);
    hk_scope_free(svc->scope);
    pthread_mutex_destroy(&svc->state_mu);
    pthread_mutex_destroy(&svc->error_mu);
    hk__free(svc->name);
    hk__free(svc);
}

/* execute runs on its own thread while stop may run on another: each has its slot. */
static char **slot_for(hk_service_t *svc, bool exec) { return exec ? &svc->exec_error : &svc->error; }

/* The service whose execute runs on this thread (set by the thread itself). */
static _Thread_local const hk_service_t *tl_exec_svc;

void hk__service_enter_exec(const hk_service_t *svc) { tl_exec_svc = svc; }

static bool on_exec_thread(const hk_service_t *svc) { return tl_exec_svc == svc; }

const char *hk__service_describe(hk_service_t *svc, bool exec, int rc, char *buf, size_t len) {
    pthread_mutex_lock(&svc->error_mu);
    const char *msg = *slot_for(svc, exec);
    if (msg)
        snprintf(buf, len, "%s (%s)", msg, hk_strerror(rc));
    else
        snprintf(buf, len, "%s", hk_strerror(rc));
    pthread_mutex_unlock(&svc->error_mu);
    return buf;
}

void hk__service_clear_error(hk_service_t *svc, bool exec) {
    pthread_mutex_lock(&svc->error_mu);
    char **slot = slot_for(svc, exec);
    hk__free(*slot);
    *slot = NULL;
    pthread_mutex_unlock(&svc->error_mu);
}

const char *hk_service_name(const hk_service_t *svc) { return svc ? svc->name : NULL; }
void *hk_service_data(const hk_service_t *svc) { return svc ? svc->def.data : NULL; }
hk_host_t *hk_service_host(const hk_service_t *svc) { return svc ? svc->host : NULL; }
void *hk_service_instance(const hk_service_t *svc) { return svc ? svc->instance : NULL; }

int hk_service_fail(hk_service_t *svc, int err, const char *fmt, ...) {
    if (err >= 0)
        err = -EIO;
    if (!svc || !fmt)
        return err;
    va_list ap;
    va_start(ap, fmt);
    char *msg = hk__vasprintf(fmt, ap);
    va_end(ap);
    if (msg) {
        pthread_mutex_lock(&svc->error_mu);
        char **slot = slot_for(svc, on_exec_thread(svc));
        hk__free(*slot);
        *slot = msg;
        pthread_mutex_unlock(&svc->error_mu);
    }
    return err;
}
