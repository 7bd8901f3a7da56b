/*
 * Private interface of options binding (src/config/options.c) for the host
 * builder: create/free, bind (at build and on every reload), unknown-key
 * warnings, --help lines. Depends on src/common and the config store.
 */
#ifndef HK_SRC_OPTIONS_INT_H
#define HK_SRC_OPTIONS_INT_H

#include "hostkit/config.h"
#include "hostkit/options.h"

typedef void (*hk__msg_cb)(void *data, const char *msg);

/* Copies def (the fields array and strings must outlive the options). Returns 0, -EINVAL, -ENOMEM. */
int hk__options_new(const hk_options_def_t *def, hk_options_t **ret);
/* Frees the options and the current snapshot. Every reader must have released. Accepts NULL. */
void hk__options_free(hk_options_t *opts);

/*
 * Binds def->section of config into a new snapshot and validates it. On
 * success makes it current (the previous one is freed when its last reader
 * releases it) and returns 0. On failure calls on_error once per problem
 * (every problem, not only the first; messages name key, value and source),
 * keeps the current snapshot and returns -EINVAL (or -ENOMEM).
 */
int hk__options_bind(hk_options_t *opts, hk_config_t *config, hk__msg_cb on_error, void *data);

/*
 * hk__options_bind in two steps, so that several sections can be validated
 * before any is published (a reload is all or nothing): stage binds and
 * validates into *ret_staged without publishing (errors as for bind);
 * publish makes a staged snapshot current (cannot fail); discard drops it.
 */
int hk__options_stage(hk_options_t *opts, hk_config_t *config, hk__msg_cb on_error, void *data,
                      void **ret_staged);
void hk__options_publish(hk_options_t *opts, void *staged);
void hk__options_discard(hk_options_t *opts, void *staged);

/*
 * Calls warn once per key under the section that matches no field (a likely
 * typo), e.g. `Unknown key Worker:Cuont (from command line); did you mean Worker:Count?`
 */
void hk__options_check_unknown(hk_options_t *opts, hk_config_t *config, hk__msg_cb warn, void *data);

/*
 * Calls line once per field with its --help text, e.g.
 *   "  --Worker:Count <int>        Number of workers (default: 3; 0..1000)"
 */
void hk__options_describe(hk_options_t *opts, hk__msg_cb line, void *data);

#endif
