/* import.h - turning a data set file into a tensor file (tensorfile.h).
 *
 * Sources (the format is given or sniffed from the first bytes and, for
 * archives, from the entries):
 *   IMPORT_FORMAT_NPZ      keras.datasets .npz (a zip of .npy): x_train,
 *                          y_train and optionally x_test, y_test; uint8 or
 *                          float32 images (n, h, w) or (n, h, w, c); labels
 *                          integers (n) or (n, 1), or one-hot (n, k)
 *   IMPORT_FORMAT_IMAGES   a .tar, .tar.gz or .zip of <class>/<image> (or
 *                          train/<class>/... and test/<class>/...), PNG and
 *                          JPEG, read as keras.utils.image_dataset_from_directory
 *                          reads them (see import_images.c)
 *   IMPORT_FORMAT_HDF5     x_train, y_train[, x_test, y_test] datasets at
 *                          the root of an HDF5 file, as h5py writes them
 *   IMPORT_FORMAT_CIFAR10  the official cifar-10-binary.tar.gz
 *
 * Everything is validated before the tensor file appears: a failing import
 * returns a negative errno, fills d (field = the archive entry, array or
 * file part at fault; message = what is wrong and where) and leaves nothing
 * behind.  Archives: entries with an absolute path, a ".." component, links
 * or device files are refused; the uncompressed bytes read are limited in
 * total and as a ratio to the archive's size (zip bombs); hidden entries
 * (a component starting with '.') are skipped, as are, in image folders,
 * files whose extension is not .png, .jpg or .jpeg (as Keras skips them).
 *
 * Thread-safe: each call owns its state (HDF5 goes through h5.c's lock). */
#ifndef TRAIND_IMPORT_H
#define TRAIND_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "tensorfile.h"

enum import_format {
    IMPORT_FORMAT_AUTO = 0,
    IMPORT_FORMAT_NPZ,
    IMPORT_FORMAT_IMAGES,
    IMPORT_FORMAT_HDF5,
    IMPORT_FORMAT_CIFAR10,
};

enum import_color_mode {
    IMPORT_COLOR_RGB = 0, /* Keras' default */
    IMPORT_COLOR_GRAYSCALE,
    IMPORT_COLOR_RGBA,
};

struct import_options {
    enum import_format format;
    int image_h, image_w;            /* image folders: default 256 x 256 */
    enum import_color_mode color_mode;
    double validation_split;         /* image folders without test/: 0 or in (0, 1) */
    uint32_t seed;                   /* image folders: the shuffle (numpy RandomState) */
    uint64_t max_total_bytes;        /* uncompressed bytes read from an archive, and bytes written */
    double max_ratio;                /* uncompressed bytes per archive byte */
    uint64_t max_entry_bytes;        /* one image entry */
};

struct import_result {
    enum import_format format;
    struct tensorfile_info info;
    uint64_t skipped;                /* entries skipped by the rules above */
};

/* Defaults: format AUTO, 256 x 256, rgb, no split, seed 0, 64 GiB, ratio
 * 200, 64 MiB per image. */
void import_options_init(struct import_options *o);

/* "npz", "images", "hdf5", "cifar10" ("auto" for AUTO). */
const char *import_format_name(enum import_format f);
/* Parse a format name or a Content-Type (application/x-npz, application/zip,
 * application/x-tar, application/gzip, application/x-hdf5, ...); -EINVAL when
 * unknown.  "application/octet-stream" gives AUTO. */
int import_format_parse(const char *s, enum import_format *ret);
/* "grayscale", "rgb", "rgba". */
int import_color_mode_parse(const char *s, enum import_color_mode *ret);

/* The class names of a CIFAR-10 batches.meta.txt: exactly 10 non-empty
 * lines (trailing spaces and CRs cut).  text is cut into the names;
 * names[0..9] point into it.  -EINVAL (d: "batches.meta.txt") otherwise. */
int import_cifar10_meta_names(char *text, const char **names, struct diag *d);

/* Convert src_path into the tensor file dir/relpath (atomic). */
int import_dataset(const char *src_path, const struct import_options *o, const char *dir,
                   const char *relpath, struct import_result *ret, struct diag *d);

#endif
