/* data.h - image classification data sets: uint8 in memory, or uint8 or
 * float32 memory-mapped.
 *
 * Formats: IDX (MNIST, Fashion-MNIST; raw or gzip, detected by magic) and the
 * CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin: records of
 * 1 label byte + 3072 pixel bytes, planes R, G, B each 32x32 row-major; stored
 * here converted to NHWC).  Truncated or malformed files are errors with a
 * message naming the file and what is wrong; nothing is partially loaded.
 *
 * Tensor files (tensorfile.h, what uploaded data sets become) are not loaded
 * but memory-mapped read-only: images and labels then point into the
 * mapping, a job's memory does not grow with the data set's size beyond the
 * page cache, and the subsets (truncate, split_tail) are views of it.
 * Their pixels are uint8 or float32 as the tensor file holds them
 * (pixels.h says how each is fed to a model).
 *
 * Ownership: a struct dataset owns images and labels, or, when mapping is
 * set, one reference to the shared mapping; dataset_free(NULL) is a no-op.
 * A dataset is read-only once loaded and may be shared by threads. */
#ifndef TRAIND_DATA_H
#define TRAIND_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "pixels.h"

struct dataset_mapping; /* a read-only file mapping shared by views (reference counted) */
/* Classes of every built-in format (IDX digits/fashion, CIFAR-10). */
#define DATASET_CLASSES 10

struct dataset {
    int n;             /* examples */
    int h, w, c;       /* per-example shape, NHWC */
    int classes;       /* number of classes (DATASET_CLASSES for all built-in formats);
                          0 for float targets */
    enum pixels_type pixels; /* of images: PIXELS_UINT8 (0) unless mapped from float32 */
    uint8_t *images;   /* (n, h, w, c) values of pixels: n * dataset_example_bytes bytes */
    uint8_t *labels;   /* (n), values < classes; NULL for float targets */
    int target_width;  /* 0: labels; K > 0: float regression targets instead (a
                          version 2 tensor file, tensorfile.h) */
    float *targets;    /* (n, target_width) when target_width > 0, else NULL */
    struct dataset_mapping *mapping; /* non-NULL: images and labels are in a file mapping */
};

/* Load an IDX images file and an IDX labels file (each raw or gzip). */
int dataset_load_idx(struct dataset *ret, const char *images_path, const char *labels_path,
                     struct diag *d);
/* Load the IDX pair conventionally named in dir: train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz] (split "train") or t10k-* (split "test"). */
int dataset_load_idx_dir(struct dataset *ret, const char *dir, const char *split,
                         struct diag *d);
/* Load CIFAR-10 binary: split "train" = data_batch_1..5.bin, "test" = test_batch.bin,
 * each exactly 10000 records; dir may also be the parent of cifar-10-batches-bin/. */
int dataset_load_cifar10(struct dataset *ret, const char *dir, const char *split,
                         struct diag *d);
/* Load CIFAR-10 binary batch files in order: each must hold records_per_file
 * records of 3073 bytes, or, when records_per_file is 0, any whole number (>= 1)
 * of them.  All files are checked to exist and have the right size before any
 * is read. */
int dataset_load_cifar10_files(struct dataset *ret, const char *const *paths, int n_paths,
                               int records_per_file, struct diag *d);

/* Map split "train" or "test" of a tensor file (tensorfile.h) read-only,
 * uint8 or float32 as stored, with class labels or float targets.  The whole file is checked first (header,
 * layout, every label).  The mapping is MADV_RANDOM: training reads
 * examples in shuffled order. */
int dataset_map_tensorfile(struct dataset *ret, const char *path, const char *split,
                           struct diag *d);

/* Bytes of one example: h * w * c * pixels_bytes(pixels). */
size_t dataset_example_bytes(const struct dataset *ds);
/* Keep the first `limit` examples (no-op if limit <= 0 or >= n). */
void dataset_truncate(struct dataset *ds, int limit);
/* Keras validation_split: train keeps the first floor(n * (1 - fraction))
 * examples (Keras' split_at), the rest become val (before any shuffling, as
 * Keras does).  0 < fraction < 1 and both parts non-empty, else -EINVAL and
 * nothing changes. */
int dataset_split_tail(struct dataset *train, struct dataset *ret_val, double fraction,
                       struct diag *d);
/* Gather examples idx[0..n) into contiguous images (n, h, w, c) of
 * ds->pixels (n * dataset_example_bytes bytes) and labels (n), or, for
 * float targets, targets (n, target_width) (the other may be NULL). */
void dataset_gather(const struct dataset *ds, const uint32_t *idx, int n, void *images,
                    uint8_t *labels, float *targets);
void dataset_free(struct dataset *ds);

#endif
