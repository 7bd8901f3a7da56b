/*
 * hostkit/options.h - typed options: a configuration section bound onto a C
 * struct through a descriptor table, validated before any service starts,
 * re-bound on every configuration reload.
 *
 *     typedef struct { int64_t count; int64_t interval_ms; char *name; } worker_opts_t;
 *     static const hk_option_t worker_fields[] = {
 *         HK_OPT_INT(worker_opts_t, count, "Count", "3", 0, 1000, "Number of workers"),
 *         HK_OPT_DURATION(worker_opts_t, interval_ms, "Interval", "1s", "Time between runs"),
 *         HK_OPT_STRING(worker_opts_t, name, "Name", "demo", "Display name"),
 *     };
 *     static const hk_options_def_t worker_def = HK_OPTIONS_DEF("Worker", worker_opts_t, worker_fields);
 *     hk_options_t *opts;
 *     hk_builder_add_options(builder, &worker_def, &opts);
 *     ...
 *     const worker_opts_t *o = hk_options_acquire(opts);   // any thread
 *     ... use o ...
 *     hk_options_release(opts, o);
 *
 * Snapshots are immutable: a reload binds a new struct and swaps it in
 * atomically; the old one is freed when its last reader releases it. A
 * reload whose values do not bind or validate keeps the old snapshot.
 *
 * Value syntax (key Section:Name, case-insensitive, from any source):
 *   STRING   any text                      BOOL     true | false (any case)
 *   INT      decimal int64 in [min, max]   UINT     decimal uint64 in [min, max]
 *   DOUBLE   finite decimal in [min, max]  ENUM     one of choices (any case) -> index
 *   DURATION 500ms 30s 5m 1h 2d, sums like 1h30m, fractions (1.5s), or .NET's
 *            [d.]hh:mm:ss[.fff]; stored as int64 milliseconds, within [min, max] ms
 *   SIZE     bytes with an optional unit: B, KB, MB, GB, TB (powers of 1000),
 *            KiB, MiB, GiB, TiB (powers of 1024); stored as uint64 bytes
 *   LIST     a string array (Section:Name:0, :1, ...) -> hk_strlist_t
 * Error messages name the key, the value and its source, e.g.
 *   Worker:Interval: "5 minutes" is not a duration (use 500ms, 30s, 5m, 1h or hh:mm:ss) (from appsettings.json)
 */
#ifndef HOSTKIT_OPTIONS_H
#define HOSTKIT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hk_option_type {
    HK_OPTION_STRING,   /* char * (owned by the snapshot; NULL when unset and no default) */
    HK_OPTION_BOOL,     /* bool */
    HK_OPTION_INT,      /* int64_t */
    HK_OPTION_UINT,     /* uint64_t */
    HK_OPTION_DOUBLE,   /* double */
    HK_OPTION_DURATION, /* int64_t milliseconds */
    HK_OPTION_SIZE,     /* uint64_t bytes */
    HK_OPTION_ENUM,     /* int: index into choices */
    HK_OPTION_LIST      /* hk_strlist_t */
} hk_option_type_t;

/* A string list field (owned by the snapshot). */
typedef struct hk_strlist {
    char **items;
    size_t n;
} hk_strlist_t;

/*
 * A field validator: field points at the bound value inside the struct.
 * Return 0 if valid, else a negative errno and a message in err (the key,
 * value and source are added around it).
 */
typedef int (*hk_option_validate_cb)(const void *field, char *err, size_t err_len);

/* One field of the options struct. */
typedef struct hk_option {
    const char *name;          /* key under the section, e.g. "Count" */
    hk_option_type_t type;
    size_t offset;             /* offsetof(struct, field) */
    const char *def;           /* default as text ("3", "500ms"); NULL: zero / NULL / empty */
    bool required;             /* must be set by some source (a default does not count) */
    bool has_range;            /* min/max apply (INT, UINT, DOUBLE, DURATION in ms, SIZE) */
    double min, max;
    const char *const *choices; /* ENUM names, or allowed STRING values; NULL-terminated */
    hk_option_validate_cb validate;
    const char *description;   /* one line, for --help */
} hk_option_t;

/* The whole struct: section name, size, fields, optional struct validator. */
typedef int (*hk_options_validate_cb)(const void *opts, char *err, size_t err_len);
typedef struct hk_options_def {
    const char *section;       /* e.g. "Worker" */
    size_t size;               /* sizeof the struct */
    const hk_option_t *fields;
    size_t nfields;
    hk_options_validate_cb validate; /* after every field bound, may be NULL */
} hk_options_def_t;

#define HK_OPTIONS_DEF(section, type, fields)                                                      \
    {(section), sizeof(type), (fields), sizeof(fields) / sizeof((fields)[0]), NULL}

#define HK__OPT(T, f, n, ty, d, desc) .name = (n), .type = (ty), .offset = offsetof(T, f), .def = (d), .description = (desc)
#define HK_OPT_STRING(T, f, n, d, desc) {HK__OPT(T, f, n, HK_OPTION_STRING, d, desc)}
#define HK_OPT_BOOL(T, f, n, d, desc) {HK__OPT(T, f, n, HK_OPTION_BOOL, d, desc)}
#define HK_OPT_INT(T, f, n, d, lo, hi, desc)                                                       \
    {HK__OPT(T, f, n, HK_OPTION_INT, d, desc), .has_range = true, .min = (lo), .max = (hi)}
#define HK_OPT_UINT(T, f, n, d, lo, hi, desc)                                                      \
    {HK__OPT(T, f, n, HK_OPTION_UINT, d, desc), .has_range = true, .min = (lo), .max = (hi)}
#define HK_OPT_DOUBLE(T, f, n, d, lo, hi, desc)                                                    \
    {HK__OPT(T, f, n, HK_OPTION_DOUBLE, d, desc), .has_range = true, .min = (lo), .max = (hi)}
#define HK_OPT_DURATION(T, f, n, d, desc) {HK__OPT(T, f, n, HK_OPTION_DURATION, d, desc)}
#define HK_OPT_SIZE(T, f, n, d, desc) {HK__OPT(T, f, n, HK_OPTION_SIZE, d, desc)}
#define HK_OPT_ENUM(T, f, n, d, names, desc) {HK__OPT(T, f, n, HK_OPTION_ENUM, d, desc), .choices = (names)}
#define HK_OPT_LIST(T, f, n, desc) {HK__OPT(T, f, n, HK_OPTION_LIST, NULL, desc)}

typedef struct hk_options_s hk_options_t;

/*
 * The current snapshot (a const struct of def->size bytes), with a
 * reference held for the caller until hk_options_release. Never NULL once
 * the host was built. Any thread; lock-free for readers except a short
 * critical section. Do not keep pointers into it after releasing it.
 */
HK_EXTERN const void *hk_options_acquire(hk_options_t *opts);
HK_EXTERN void hk_options_release(hk_options_t *opts, const void *snapshot);

/* The definition the options were registered with. */
HK_EXTERN const hk_options_def_t *hk_options_def(const hk_options_t *opts);

/*
 * Parsers used by binding, exposed for programs and tests. Each returns 0,
 * or -EINVAL (syntax) / -ERANGE (overflow) and leaves *ret untouched.
 */
HK_EXTERN int hk_parse_duration_ms(const char *text, int64_t *ret_ms);
HK_EXTERN int hk_parse_size(const char *text, uint64_t *ret_bytes);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_OPTIONS_H */
