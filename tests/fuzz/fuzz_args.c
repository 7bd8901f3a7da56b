/*
 * libFuzzer driver for the command-line source (hk_config_add_args): the
 * input, split on NUL bytes, is argv[1..] (at most MAX_ARGS pieces; argv[0]
 * is a fixed program name, as the function skips it).
 *
 * Checked on every input:
 *  - the result is 0, -EINVAL or -ENOMEM;
 *  - on -EINVAL hk_config_last_error is set, one error was recorded and no
 *    key was added (the parse is all or nothing);
 *  - on 0 no error was recorded, the store holds at most one key per
 *    argument, and hk_config_get finds every key (by its own spelling);
 *  - nothing leaks (LeakSanitizer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostkit/config.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* One private NUL-terminated copy, so every piece ends inside it. */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)"fuzz_args";
    for (size_t at = 0; argc < MAX_ARGS + 1;) {
        argv[argc++] = buf + at;
        size_t len = strlen(buf + at);
        if (at + len >= size)
            break;
        at += len + 1;
    }
    argv[argc] = NULL;

    hk_config_t *config = NULL;
    if (hk_config_new(&config) < 0) {
        free(buf);
        return 0;
    }
    size_t before = hk_config_count(config);
    int rc = hk_config_add_args(config, argc, argv);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == -EINVAL) {
        const char *err = hk_config_last_error(config);
        CHECK(err != NULL && *err != '\0');
        CHECK(hk_config_error_count(config) == 1);
        CHECK(hk_config_count(config) == before);
    } else if (rc == 0) {
        CHECK(hk_config_error_count(config) == 0);
        CHECK(hk_config_count(config) <= before + (size_t)(argc - 1));
        for (size_t i = 0; i < hk_config_count(config); i++) {
            const char *key = hk_config_key_at(config, i);
            CHECK(key != NULL && *key != '\0');
            CHECK(hk_config_get(config, key) != NULL);
            CHECK(strcmp(hk_config_source_of(config, key), "command line") == 0);
        }
    }
    hk_config_free(config);
    free(buf);
    return 0;
}
