/* fuzz.h - what every fuzz target shares: the libFuzzer entry point (built
 * as a libFuzzer binary with -Dfuzzing=true, or linked with replay.c to
 * replay a corpus) and small helpers for turning the raw input into the
 * strings and files the parsers take.
 *
 * A target aborts (FUZZ_CHECK) only when a parser breaks a property its
 * header promises; a rejected input is the normal case, not a failure. */
#ifndef TRAIND_FUZZ_H
#define TRAIND_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* A malloc'ed NUL-terminated copy of data[0..size) (which may itself hold
 * NULs: the parser then sees the text up to the first one). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A malloc'ed copy of exactly size bytes (no terminator), so that ASan sees
 * any read past what the parser was given. */
static inline char *fuzz_memdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    FUZZ_CHECK(s != NULL);
    if (size)
        memcpy(s, data, size);
    return s;
}

/* Split *data at the first '\n': *ret_line (size *ret_len, no newline) is
 * the text before it; data/size move past it (to the end when there is no
 * newline). */
static inline void fuzz_take_line(const uint8_t **data, size_t *size, const uint8_t **ret_line,
                                  size_t *ret_len)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    *ret_line = *data;
    *ret_len = n;
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
}

#endif
