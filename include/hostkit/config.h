/*
 * hostkit/config.h - the configuration store: hierarchical, case-insensitive
 * keys ("Logging:LogLevel:Default") with string values, each remembering the
 * source that supplied it.
 *
 * Sources, lowest precedence first (a later source wins for the same key):
 *   1. defaults set by the program (hk_config_set_default)
 *   2. HOSTKIT_-prefixed environment variables, prefix removed
 *      (HOSTKIT_ENVIRONMENT -> "ENVIRONMENT")
 *   3. JSON files (hk_config_add_json_file; the host builder adds
 *      appsettings.json and appsettings.{Environment}.json from the content
 *      root) and custom providers, in the order added
 *   4. all environment variables, "__" standing for ':' (Worker__Count)
 *   5. the command line: --Key=Value, --Key Value, /Key=Value, Key=Value
 *   6. overrides set by the program (hk_config_set)
 *
 * A reload (SIGHUP, a watched file changing, hk_config_request_reload) reads
 * files and custom providers again and swaps in the new values atomically
 * on the host thread; a reload that fails to parse or validate changes
 * nothing. Values read earlier stay valid: each reload keeps the previous
 * values' memory until the store is freed.
 *
 * Typed getters check the text and report a bad value with the key, the
 * value and its source, e.g.
 *     Worker:Count: "abc" is not an integer (from command line)
 * Each such error is also recorded in the store (hk_config_error_count); the
 * host builder refuses to build while any is recorded, logs them all and
 * makes the program exit with 78.
 *
 * Thread-safety: getters may be called from any thread, also during a
 * reload; setters and hk_config_add_* are for set-up (before the host runs)
 * and must not run concurrently with anything else on the same store.
 * Strings returned by getters are owned by the store and stay valid until
 * the same key is set again with a setter or the store is freed.
 */
#ifndef HOSTKIT_CONFIG_H
#define HOSTKIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_config_s hk_config_t;

typedef enum hk_config_source {
    HK_CONFIG_DEFAULT = 0,     /* hk_config_set_default */
    HK_CONFIG_HOST_ENV = 1,    /* HOSTKIT_* environment variables */
    HK_CONFIG_ENV = 2,         /* environment variables */
    HK_CONFIG_COMMAND_LINE = 3,
    HK_CONFIG_OVERRIDE = 4     /* hk_config_set */
} hk_config_source_t;

/* Creates an empty store. Returns 0 or -ENOMEM. */
HK_EXTERN int hk_config_new(hk_config_t **ret_config);
/* Frees the store and every string it returned. Accepts NULL. */
HK_EXTERN void hk_config_free(hk_config_t *config);

/*
 * Adds environment variables (a NULL-terminated "NAME=value" array such as
 * environ): first the HOSTKIT_-prefixed ones with the prefix removed, then
 * all of them with "__" mapped to ':'. Entries without '=' or with an empty
 * name are skipped. Returns 0 or -ENOMEM.
 */
HK_EXTERN int hk_config_add_env(hk_config_t *config, char *const *envp);

/*
 * Adds command-line arguments (argv[0] is skipped). Forms: --Key=Value,
 * --Key Value, /Key=Value, Key=Value. On a malformed argument (a bare word,
 * a single-dash option, an empty key, --Key without a value) nothing is added,
 * the message names the argument (hk_config_last_error) and -EINVAL is
 * returned; hosts exit with 64 for it. Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_config_add_args(hk_config_t *config, int argc, char *const *argv);

/*
 * Sets key to value (both copied). hk_config_set overrides every source;
 * hk_config_set_default only supplies a value no source provides.
 * hk_config_set_source sets it as if it came from the given source, with
 * origin (may be NULL) naming where, e.g. an environment variable's name.
 * Returns 0, -EINVAL (NULL or empty key, NULL value) or -ENOMEM.
 */
HK_EXTERN int hk_config_set(hk_config_t *config, const char *key, const char *value);
HK_EXTERN int hk_config_set_default(hk_config_t *config, const char *key, const char *value);
HK_EXTERN int hk_config_set_source(hk_config_t *config, const char *key, const char *value,
                                   hk_config_source_t source, const char *origin);

/* The value of key, or NULL when no source sets it. */
HK_EXTERN const char *hk_config_get(const hk_config_t *config, const char *key);

/*
 * Where key's value came from: "command line", "environment variable
 * Worker__Count", "default", "override". NULL when the key is not set.
 */
HK_EXTERN const char *hk_config_source_of(const hk_config_t *config, const char *key);

/*
 * Typed getters. Each stores def in *ret when the key is not set (or set to
 * an empty value) and returns 0; stores the parsed value and returns 0 when
 * it is valid; otherwise leaves *ret untouched, records the error and returns
 * -EINVAL (bad syntax) or -ERANGE (outside [min, max]).
 *  - int:    decimal integer (optional sign), within [min, max]
 *  - double: a finite decimal number, within [min, max]
 *  - bool:   true or false, case-insensitive
 *  - enum:   one of names[0..n-1], case-insensitive; *ret is its index
 */
HK_EXTERN int hk_config_get_int(hk_config_t *config, const char *key, int64_t def, int64_t min,
                                int64_t max, int64_t *ret);
HK_EXTERN int hk_config_get_double(hk_config_t *config, const char *key, double def, double min,
                                   double max, double *ret);
HK_EXTERN int hk_config_get_bool(hk_config_t *config, const char *key, bool def, bool *ret);
HK_EXTERN int hk_config_get_enum(hk_config_t *config, const char *key, const char *const *names,
                                 size_t n, int def, int *ret);
/* The string value of key, or def when it is not set or empty. Never fails. */
HK_EXTERN const char *hk_config_get_string(const hk_config_t *config, const char *key,
                                           const char *def);

/*
 * Errors recorded by typed getters, hk_config_add_args and
 * hk_config_record_error, oldest first:
 * hk_config_error(config, i) for i < hk_config_error_count(config). The
 * strings are owned by the store. hk_config_last_error is the newest or NULL.
 */
HK_EXTERN size_t hk_config_error_count(const hk_config_t *config);
/*
 * Records an error of the program's own validation (printf-style; name the
 * key: "Db:Pool: 0 is below the minimum 1"), as the typed getters do: a
 * builder's build then fails with exit code 78 listing it with the others.
 * Returns 0, or -ENOMEM (the error still counts; its text is lost).
 */
HK_EXTERN int hk_config_record_error(hk_config_t *config, const char *fmt, ...) HK_PRINTF(2, 3);
HK_EXTERN const char *hk_config_error(const hk_config_t *config, size_t i);
HK_EXTERN const char *hk_config_last_error(const hk_config_t *config);

/*
 * Adds a JSON file source (strict JSON, top level an object; objects nest
 * with ':', arrays become Section:0, Section:1, ..., values keep their
 * text, null is an empty value; keys that are equal ignoring case, or
 * after flattening, are duplicates; integers must fit in int64: write
 * larger ones as strings) and loads it now. path is used as given
 * (relative to the working directory) and names the file in messages. A
 * missing optional file provides nothing; a missing required file, an
 * unreadable file or malformed JSON is recorded as a configuration error
 * ("appsettings.json:12:5: <what is wrong>"), so the build fails with 78.
 * With reload_on_change the host watches the file (in-place writes,
 * write-then-rename, symlink swaps) and reloads on change.
 * Returns 0, -EINVAL (recorded error) or -ENOMEM.
 */
HK_EXTERN int hk_config_add_json_file(hk_config_t *config, const char *path, bool optional,
                                      bool reload_on_change);

/* Where a custom provider puts its keys during load. */
typedef struct hk_config_sink_s hk_config_sink_t;
/* Adds key = value (copied). Returns 0, -EINVAL or -ENOMEM. */
HK_EXTERN int hk_config_sink_set(hk_config_sink_t *sink, const char *key, const char *value);

/*
 * A custom source. load fills the sink with every key it provides (called
 * when added and on every reload, on the thread adding or reloading);
 * returns 0, or a negative errno with a message in err (the reload then
 * keeps the previous values). watch (optional) is called when the host
 * starts: the provider may then call hk_config_request_reload(config) from
 * any thread when its data changed; unwatch (optional) when the host stops.
 * destroy (optional) releases data when the store is freed.
 */
typedef struct hk_config_provider {
    const char *name; /* origin shown in messages: "(from NAME)" */
    int (*load)(void *data, hk_config_sink_t *sink, char *err, size_t err_len);
    int (*watch)(void *data, hk_config_t *config);
    void (*unwatch)(void *data);
    hk_destroy_cb destroy;
    void *data;
} hk_config_provider_t;

/*
 * Adds a custom provider (ranked with the JSON files, in the order added)
 * and loads it now; a failing load is recorded as a configuration error
 * (-EINVAL) and the provider stays, to be loaded again on reload. Unless
 * -ENOMEM (or -EINVAL for a bad definition) is returned, the store owns
 * provider->data. Returns 0, -EINVAL or -ENOMEM.
 */
HK_EXTERN int hk_config_add_provider(hk_config_t *config, const hk_config_provider_t *provider);

/*
 * Asks the host to reload every source (as SIGHUP does). Safe from any
 * thread; async-signal-safe. Before the host runs, the request waits for it.
 */
HK_EXTERN void hk_config_request_reload(hk_config_t *config);

/* Number of keys set, and the i-th key (for listings). */
HK_EXTERN size_t hk_config_count(const hk_config_t *config);
HK_EXTERN const char *hk_config_key_at(const hk_config_t *config, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_CONFIG_H */
