/* npy.h - the header of a NumPy .npy array, parsed strictly.
 *
 * Format 1.0 (u16 header length), 2.0 and 3.0 (u32): magic "\x93NUMPY",
 * version, length, then a Python dict literal with exactly the keys
 * 'descr' (a simple little-endian or byte-order-free type: |u1, |i1, <u2,
 * <i2, <u4, <i4, <u8, <i8, <f4, <f8), 'fortran_order' (True / False) and
 * 'shape' (a tuple of at most 4 non-negative integers), padded with spaces
 * and ended by '\n'.  Anything else (other keys, duplicates, big-endian or
 * structured types, trailing text) is an error naming what is wrong. */
#ifndef TRAIND_NPY_H
#define TRAIND_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define NPY_MAX_DIMS 4
#define NPY_PREAMBLE 10 /* magic, version, u16 length (format 1.0) */

struct npy_header {
    char kind;            /* 'u', 'i', 'f' */
    int itemsize;         /* bytes */
    bool fortran_order;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
    uint64_t header_bytes; /* bytes before the data */
    uint64_t data_bytes;   /* prod(shape) * itemsize */
};

/* The preamble (first 12 bytes are enough: 10 for 1.0, 12 for 2.0/3.0):
 * *ret_total is the total header length (preamble + dict). */
int npy_preamble(const unsigned char *p, size_t len, uint64_t *ret_total, const char *field,
                 struct diag *d);
/* The whole header (total bytes from npy_preamble). */
int npy_parse_header(const unsigned char *p, size_t total, struct npy_header *ret,
                     const char *field, struct diag *d);

#endif
