/*
 * JSON flattening for configuration files (src/config/json.c): strict JSON
 * text -> "Section:Key" / "Section:0" pairs. Uses jansson; depends on
 * src/common. Exposed separately so the fuzzer can drive it directly.
 */
#ifndef HK_SRC_CONFIG_JSON_H
#define HK_SRC_CONFIG_JSON_H

#include <stddef.h>

/* Receives each flattened pair; returns 0 or a negative errno to stop. */
typedef int (*hk__kv_cb)(void *data, const char *key, const char *value);

/*
 * Parses buf[0..len) as one strict JSON document whose top level is an
 * object, and calls cb for every leaf: objects nest with ':', array elements
 * are numbered from 0, strings are passed as they are, numbers keep their
 * text (integers exactly, reals in their shortest round-trip form), true /
 * false as such, null as "". Duplicate keys are an error.
 * Returns 0; -EINVAL with *ret_error "NAME:LINE:COL: what is wrong" (or
 * "NAME: ..." when no position applies); -ENOMEM; or cb's error. *ret_error
 * is allocated with hk__malloc (free with hk__free) and set only on -EINVAL.
 */
int hk__json_flatten(const char *buf, size_t len, const char *name, hk__kv_cb cb, void *data,
                     char **ret_error);

#endif
