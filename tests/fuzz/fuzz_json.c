/*
 * libFuzzer driver for the JSON flattener (src/config/json.c): any bytes go
 * to hk__json_flatten, every pair it reports goes into a configuration store.
 * Depends on the static library's internals (config/json.h, common/common.h).
 *
 * Checked on every input:
 *  - each key is a non-empty NUL-terminated string, each value a
 *    NUL-terminated string (ASan catches a missing terminator);
 *  - hk_config_set_source accepts the pair, and hk_config_get then returns
 *    exactly that value (a later pair with the same key, in any case, wins);
 *  - the store never holds more keys than pairs were reported;
 *  - the result is 0, -EINVAL or -ENOMEM; *ret_error is set only on -EINVAL,
 *    starts with "NAME:" and is freed with hk__free;
 *  - nothing leaks (LeakSanitizer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "config/json.h"
#include "hostkit/config.h"

#define NAME "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
    hk_config_t *config;
    size_t pairs;
} sink_t;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int on_pair(void *data, const char *key, const char *value) {
    sink_t *s = data;
    CHECK(key != NULL && value != NULL);
    size_t klen = strlen(key), vlen = strlen(value);
    CHECK(klen > 0);
    s->pairs++;
    int rc = hk_config_set_source(s->config, key, value, HK_CONFIG_ENV, NAME);
    if (rc == -ENOMEM)
        return rc;
    CHECK(rc == 0);
    const char *got = hk_config_get(s->config, key);
    CHECK(got != NULL && strlen(got) == vlen && memcmp(got, value, vlen) == 0);
    CHECK(strcmp(hk_config_source_of(s->config, key), NAME) == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hk_config_t *config = NULL;
    if (hk_config_new(&config) < 0)
        return 0;
    sink_t s = {.config = config};
    char *error = NULL;
    int rc = hk__json_flatten((const char *)data, size, NAME, on_pair, &s, &error);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == -EINVAL) {
        CHECK(error != NULL);
        CHECK(strncmp(error, NAME ":", sizeof NAME) == 0);
        CHECK(strlen(error) > sizeof NAME);
        hk__free(error);
    } else {
        CHECK(error == NULL);
    }
    CHECK(hk_config_count(config) <= s.pairs);
    if (rc == 0) /* every key reported is in the store, so count >= 1 unless none */
        CHECK((s.pairs == 0) == (hk_config_count(config) == 0));
    hk_config_free(config);
    return 0;
}
