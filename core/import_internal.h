/* import_internal.h - what the importers (import_*.c, h5_data.c) share:
 * one function per format and the label decoding. Not a public API. */
#ifndef TRAIND_IMPORT_INTERNAL_H
#define TRAIND_IMPORT_INTERNAL_H

#include <stdbool.h>
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

/* The y array of a split: class labels or float regression targets. */
struct import_y {
    uint8_t *labels; /* (n) class indices, or NULL */
    float *targets;  /* (n, width) float32 targets, or NULL */
    int classes;     /* labels: as import_decode_labels' *ret_classes */
    int width;       /* targets: K */
};

/* Decode a y array (as import_decode_labels takes it) into *ret (owned,
 * import_y_free).  Integer arrays are class labels; float arrays are
 * one-hot class labels when they are (n, k >= 2) with every row one-hot,
 * else float targets (n,) / (n, 1) (K = 1) or (n, K), converted to
 * float32 and each finite. */
int import_decode_y(const void *raw, char kind, int itemsize, uint64_t n, uint64_t k,
                    struct import_y *ret, const char *field, struct diag *d);
/* y_train and y_test (when has_test) hold the same kind and width. */
int import_y_check_pair(const struct import_y y[2], bool has_test, struct diag *d);
void import_y_free(struct import_y *y);

/* What an importer writes into its tensor file. */
struct import_layout {
    enum tensorfile_dtype dtype;
    int h, w, c;                  /* one example */
    uint64_t n[2];                /* examples: train, test (0: none) */
    const uint8_t *labels[2];     /* class index of each example of each split, or */
    const float *targets[2];      /* (n, y_width) float regression targets when y_width > 0 */
    int y_width;
    int classes;
    const char *const *names;     /* class names; NULL: "0", "1", ... */
};

/* Callback that writes every example's image (tensorfile_write_x) into w. */
typedef int (*import_copy_fn)(void *ctx, struct tensorfile_writer *w, struct diag *d);

/* The tail every importer shares: begin dir/relpath with l's layout, write
 * the labels (or float targets) of each non-empty split, let copy(ctx, w, d) write the images,
 * then commit with l's classes and names; *ret_info on success.  On failure
 * nothing is left behind. */
int import_write(const char *dir, const char *relpath, const struct import_layout *l,
                 import_copy_fn copy, void *ctx, struct tensorfile_info *ret_info,
                 struct diag *d);

#endif
