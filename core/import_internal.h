/* import_internal.h - what the importers (import_*.c, h5_data.c) share:
 * one function per format and the label decoding. Not a public API. */
#ifndef TRAIND_IMPORT_INTERNAL_H
#define TRAIND_IMPORT_INTERNAL_H

#include <stdint.h>

#include "diag.h"
#include "import.h"

int import_npz(const char *src_path, const struct import_options *o, const char *dir,
               const char *relpath, struct import_result *ret, struct diag *d);
int import_images(const char *src_path, const struct import_options *o, const char *dir,
                  const char *relpath, struct import_result *ret, struct diag *d);
int import_cifar10(const char *src_path, const struct import_options *o, const char *dir,
                   const char *relpath, struct import_result *ret, struct diag *d);
/* h5_data.c (behind h5.c's lock). */
int import_hdf5(const char *src_path, const struct import_options *o, const char *dir,
                const char *relpath, struct import_result *ret, struct diag *d);

/* Labels of n examples stored little-endian in raw as kind 'u' / 'i'
 * (unsigned / signed integers, itemsize 1, 2, 4 or 8; k must be 1) or 'f'
 * (float, itemsize 4 or 8: one-hot rows of k > 1 values, exactly one 1 and
 * the rest 0) into class indices out[n].  *ret_classes: k for one-hot,
 * else the largest label + 1.  field names the array in errors. */
int import_decode_labels(const void *raw, char kind, int itemsize, uint64_t n, uint64_t k,
                         uint8_t *out, int *ret_classes, const char *field, struct diag *d);

/* What an importer writes into its tensor file. */
struct import_layout {
    enum tensorfile_dtype dtype;
    int h, w, c;                  /* one example */
    uint64_t n[2];                /* examples: train, test (0: none) */
    const uint8_t *labels[2];     /* class index of each example of each split */
    int classes;
    const char *const *names;     /* class names; NULL: "0", "1", ... */
};

/* Callback that writes every example's image (tensorfile_write_x) into w. */
typedef int (*import_copy_fn)(void *ctx, struct tensorfile_writer *w, struct diag *d);

/* The tail every importer shares: begin dir/relpath with l's layout, write
 * the labels of each non-empty split, let copy(ctx, w, d) write the images,
 * then commit with l's classes and names; *ret_info on success.  On failure
 * nothing is left behind. */
int import_write(const char *dir, const char *relpath, const struct import_layout *l,
                 import_copy_fn copy, void *ctx, struct tensorfile_info *ret_info,
                 struct diag *d);

#endif
