/* tensorfile.h - the flat tensor file every imported data set becomes.
 *
 * One file per data set, memory-mapped by training (data.h:
 * dataset_map_tensorfile).  Little-endian, regions aligned to 4096 bytes:
 *
 *   offset 0     header (4096 bytes): magic "TRDSET\r\n", u32 version (1:
 *                class labels, 2: float targets), u32 dtype (1 uint8,
 *                2 float32), u32 h, w, c, u32 classes, u64 n_train, n_test,
 *                then u64 offsets x_train, y_train, x_test, y_test, names,
 *                u64 names_len, u64 file_bytes, u32 y_width (version 2: K;
 *                version 1: 0); the rest zero
 *   x_train      (n_train, h, w, c) of dtype, NHWC
 *   x_test       (n_test, h, w, c)
 *   y_train      version 1: (n_train) uint8 class indices < classes;
 *                version 2: (n_train, K) float32 regression targets, finite
 *   y_test       (n_test) or (n_test, K)
 *   names        classes NUL-terminated UTF-8 class names, in class order
 *                (version 2: classes 0, no names)
 *
 * The layout is a function of the header's sizes alone; a reader recomputes
 * it and rejects a file whose offsets, size or labels disagree.  Pixels are
 * stored as the source had them: uint8 sources stay uint8 (scaled to [0, 1]
 * per batch by the model), float32 sources stay float32.
 *
 * Writing goes through fsutil's atomic writer: the file appears complete or
 * not at all.  Ownership: a writer owns its temp file until commit or abort,
 * both of which free it. */
#ifndef TRAIND_TENSORFILE_H
#define TRAIND_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define TENSORFILE_MAGIC "TRDSET\r\n"
#define TENSORFILE_VERSION 1
#define TENSORFILE_VERSION_TARGETS 2
#define TENSORFILE_MAX_TARGETS 4096 /* K of float targets */
#define TENSORFILE_HEADER_BYTES 4096
#define TENSORFILE_MAX_CLASSES 256
#define TENSORFILE_MAX_SIDE 65536
#define TENSORFILE_MAX_CHANNELS 4
#define TENSORFILE_NAME_MAX 255 /* bytes of one class name */

enum tensorfile_dtype {
    TENSORFILE_DTYPE_UINT8 = 1,
    TENSORFILE_DTYPE_FLOAT32 = 2,
};

enum tensorfile_split {
    TENSORFILE_SPLIT_TRAIN = 0,
    TENSORFILE_SPLIT_TEST = 1,
};

struct tensorfile_info {
    enum tensorfile_dtype dtype;
    int h, w, c;
    int classes;
    uint64_t n[2];     /* examples per split (train, test) */
    uint64_t x_off[2]; /* byte offsets of the images of each split */
    uint64_t y_off[2]; /* byte offsets of the labels of each split */
    uint64_t names_off, names_len;
    uint64_t file_bytes;
    int y_width;       /* 0: uint8 class labels; K > 0: float32 targets (n, K), classes 0 */
};

/* "uint8", "float32". */
const char *tensorfile_dtype_name(enum tensorfile_dtype dtype);
/* Bytes of one example: h * w * c * (1 or 4). */
size_t tensorfile_example_bytes(const struct tensorfile_info *info);
/* Bytes of one example's target: 1 (a class label) or 4 K (float targets). */
size_t tensorfile_target_bytes(const struct tensorfile_info *info);

/* Parse and check the header (the first TENSORFILE_HEADER_BYTES of a file
 * of file_bytes bytes).  Checks the layout, not the labels. */
int tensorfile_parse_header(struct tensorfile_info *ret, const void *header, uint64_t file_bytes,
                            struct diag *d);
/* Check a whole mapped file: header, labels < classes, class names. */
int tensorfile_check(struct tensorfile_info *ret, const void *base, uint64_t file_bytes,
                     struct diag *d);
/* The name of class k of a checked mapped file. */
const char *tensorfile_class_name(const struct tensorfile_info *info, const void *base, int k);

struct tensorfile_writer;

/* Start dir/relpath (a temp file until commit) for n_train + n_test examples
 * of (h, w, c) and dtype. */
int tensorfile_writer_begin(struct tensorfile_writer **ret, const char *dir, const char *relpath,
                            enum tensorfile_dtype dtype, int h, int w, int c, uint64_t n_train,
                            uint64_t n_test, struct diag *d);
/* The same for float targets: y_width (K) float32 values per example
 * instead of a class label (a version 2 file). */
int tensorfile_writer_begin_targets(struct tensorfile_writer **ret, const char *dir,
                                    const char *relpath, enum tensorfile_dtype dtype, int h, int w,
                                    int c, int y_width, uint64_t n_train, uint64_t n_test,
                                    struct diag *d);
/* Examples [first, first + count) of split: count * example_bytes of data. */
int tensorfile_write_x(struct tensorfile_writer *w, enum tensorfile_split split, uint64_t first,
                       uint64_t count, const void *data, struct diag *d);
/* Labels [first, first + count) of split. */
int tensorfile_write_y(struct tensorfile_writer *w, enum tensorfile_split split, uint64_t first,
                       uint64_t count, const uint8_t *labels, struct diag *d);
/* Targets [first, first + count) of split of a float-target file:
 * count * K values, each finite (else -EINVAL naming y_train / y_test). */
int tensorfile_write_targets(struct tensorfile_writer *w, enum tensorfile_split split,
                             uint64_t first, uint64_t count, const float *targets, struct diag *d);
/* Write the class names and the header, check every label against classes
 * (read back from the file), then commit atomically.  A float-target file
 * takes classes 0 and names NULL.  Frees w whatever the
 * result; on failure nothing is left behind.  ret_info (may be NULL) gets
 * the final info on success. */
int tensorfile_writer_commit(struct tensorfile_writer *w, int classes, const char *const *names,
                             struct tensorfile_info *ret_info, struct diag *d);
/* Remove the temp file and free w; NULL is a no-op. */
void tensorfile_writer_abort(struct tensorfile_writer *w);
/* The writer's info (sizes and offsets; classes and names set at commit). */
const struct tensorfile_info *tensorfile_writer_info(const struct tensorfile_writer *w);

#endif
