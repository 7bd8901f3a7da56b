/*
 * Private interface of the configuration store for the host: command-line
 * flags, reload in two phases (prepare a pending view, then commit or
 * abort), the files to watch, --print-config output.
 * Depends on src/common and the public config header.
 */
#ifndef HK_SRC_CONFIG_INT_H
#define HK_SRC_CONFIG_INT_H

#include <stdio.h>

#include "hostkit/config.h"

typedef void (*hk__msg_cb)(void *data, const char *msg);

/* Reserved switches seen on the command line (they are not keys). */
enum { HK__FLAG_HELP = 1, HK__FLAG_VERSION = 2, HK__FLAG_PRINT_CONFIG = 4 };
unsigned hk__config_flags(const hk_config_t *config);

/*
 * Reads every file and custom provider again into a pending store that
 * views the result (read it with the public getters, e.g. to bind options).
 * Returns 0 with *ret_pending, or -EINVAL after calling on_error for every
 * source that failed (nothing changes), or -ENOMEM.
 */
int hk__config_reload_prepare(hk_config_t *config, hk_config_t **ret_pending, hk__msg_cb on_error,
                              void *data);
/* Makes the pending values current; calls changed(data, key) for every key
 * added, removed or changed; frees pending. Returns 0, or -ENOMEM when the
 * old values could not be retired (then nothing changed). */
int hk__config_reload_commit(hk_config_t *config, hk_config_t *pending, hk__msg_cb changed,
                              void *data);
/* Drops a pending reload. Accepts NULL. */
void hk__config_reload_abort(hk_config_t *pending);

/* The JSON files to watch (reload_on_change), i-th path or NULL past the end. */
const char *hk__config_watch_file(const hk_config_t *config, size_t i);
/* Starts/stops custom providers' watches. */
void hk__config_watch_start(hk_config_t *config);
void hk__config_watch_stop(hk_config_t *config);

/* Where hk_config_request_reload goes (the host sets it; NULL clears). The
 * hook must be async-signal-safe. A request made while no hook is set is
 * remembered and delivered when one is set. */
void hk__config_set_reload_hook(hk_config_t *config, void (*hook)(void *data), void *data);

/* hk_config_add_json_file reading path but naming the file `name` in messages
 * (the host passes "appsettings.json" for <content root>/appsettings.json). */
int hk__config_add_json_file(hk_config_t *config, const char *path, const char *name, bool optional,
                             bool reload_on_change);

/*
 * A host setting (environment, contentRoot): only the command line,
 * HOSTKIT_ variables, hk_config_set and hk_config_set_default count, as in
 * .NET's host configuration, since they decide which files are read.
 * NULL when none of them sets it (or sets it empty).
 */
const char *hk__config_get_host(hk_config_t *config, const char *key);

/* Writes every key as "Key=value (source)", sorted, secrets as ***. */
void hk__config_print(const hk_config_t *config, FILE *out);

#endif
