/*
 * libFuzzer driver for the option value parsers (hk_parse_duration_ms,
 * hk_parse_size): the input, cut at MAX_LEN bytes and at its first NUL, is
 * the text.
 *
 * Checked on every input:
 *  - the result is 0, -EINVAL or -ERANGE;
 *  - on success a duration is non-negative (sizes are unsigned);
 *  - on failure the output is left untouched;
 *  - no out-of-bounds read past the terminator (ASan), no UB (UBSan).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostkit/options.h"

#define MAX_LEN 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_LEN)
        size = MAX_LEN;
    /* Exactly size + 1 bytes on the heap, so ASan sees any read past the NUL. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    const int64_t ms_canary = INT64_MIN + 7;
    int64_t ms = ms_canary;
    int rc = hk_parse_duration_ms(text, &ms);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
    if (rc == 0)
        CHECK(ms >= 0);
    else
        CHECK(ms == ms_canary);

    const uint64_t bytes_canary = UINT64_C(0xDEADBEEFCAFEF00D);
    uint64_t bytes = bytes_canary;
    rc = hk_parse_size(text, &bytes);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
    if (rc != 0)
        CHECK(bytes == bytes_canary);

    free(text);
    return 0;
}
