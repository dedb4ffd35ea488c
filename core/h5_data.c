/* h5_data.c - data sets in HDF5 files as h5py writes them: datasets
 * x_train, y_train and optionally x_test, y_test at the root (other objects
 * are ignored).  Images uint8 or float32, (n, h, w) or (n, h, w, c);
 * y integer class labels (n,) / (n, 1), one-hot floats (n, k), or float
 * regression targets (n,), (n, 1), (n, K) (import_decode_y).
 *
 * Every HDF5 call holds h5.c's global lock (h5_global_lock), taken per
 * step so that a long import does not stall checkpoint writes.  HDF5 trusts
 * file metadata (see h5.h): a deliberately corrupted file may still crash
 * it; truncated and non-HDF5 files are rejected cleanly. */
#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "h5.h"
#include "import_internal.h"

#define CHUNK_BYTES (1u << 20)

enum { X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, ARRAYS };
static const char *const array_names[ARRAYS] = {"x_train", "y_train", "x_test", "y_test"};

struct array {
    bool present;
    hid_t dset;
    H5T_class_t cls;
    size_t size;
    H5T_sign_t sign;
    int ndim;
    hsize_t dims[4];
};

/* Open and describe name (lock held). */
static int describe(hid_t file, const char *name, struct array *a, struct diag *d)
{
    a->dset = -1;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return 0;
    a->dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (a->dset < 0)
        return diag_set(d, -EINVAL, name, "%s is not a dataset", name);
    hid_t t = H5Dget_type(a->dset), s = H5Dget_space(a->dset);
    int err = 0;
    if (t < 0 || s < 0) {
        err = diag_set(d, -EINVAL, name, "%s: unreadable type or shape", name);
    } else {
        a->cls = H5Tget_class(t);
        a->size = H5Tget_size(t);
        a->sign = a->cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_NONE;
        a->ndim = H5Sget_simple_extent_ndims(s);
        if (a->ndim < 1 || a->ndim > 4)
            err = diag_set(d, -EINVAL, name, "%s has %d dimensions (1 to 4 expected)", name,
                           a->ndim);
        else
            H5Sget_simple_extent_dims(s, a->dims, NULL);
    }
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    a->present = err == 0;
    return err;
}

static int check_images(const struct array *a, const char *name, struct diag *d)
{
    bool u8 = a->cls == H5T_INTEGER && a->size == 1 && a->sign == H5T_SGN_NONE;
    bool f32 = a->cls == H5T_FLOAT && a->size == 4;
    if (!u8 && !f32)
        return diag_set(d, -EINVAL, name, "%s: images must be uint8 or float32", name);
    if (a->ndim != 3 && a->ndim != 4)
        return diag_set(d, -EINVAL, name, "%s: images must have shape (n, h, w) or (n, h, w, c)",
                        name);
    if (a->ndim == 4 && (a->dims[3] < 1 || a->dims[3] > TENSORFILE_MAX_CHANNELS))
        return diag_set(d, -EINVAL, name, "%s: %llu channels (1 to %d supported)", name,
                        (unsigned long long)a->dims[3], TENSORFILE_MAX_CHANNELS);
    if (a->dims[1] < 1 || a->dims[2] < 1 || a->dims[1] > TENSORFILE_MAX_SIDE ||
        a->dims[2] > TENSORFILE_MAX_SIDE)
        return diag_set(d, -EINVAL, name, "%s: image sides %llu x %llu", name,
                        (unsigned long long)a->dims[1], (unsigned long long)a->dims[2]);
    return 0;
}

/* Read y (lock held) into *ret (import_decode_y). */
static int read_labels(const struct array *a, const char *name, struct import_y *ret,
                       struct diag *d)
{
    if (a->ndim > 2)
        return diag_set(d, -EINVAL, name, "%s: labels must have shape (n,), (n, 1) or (n, k)",
                        name);
    uint64_t n = a->dims[0], k = a->ndim == 2 ? a->dims[1] : 1;
    bool f = a->cls == H5T_FLOAT;
    if (!f && a->cls != H5T_INTEGER)
        return diag_set(d, -EINVAL, name, "%s: labels must be integers or floats", name);
    if (n * k > (UINT64_C(1) << 27))
        return diag_set(d, -EFBIG, name, "%s: too many labels", name);
    void *raw = malloc((size_t)(n * k * 8) + 8);
    int err = 0;
    if (!raw)
        err = diag_set(d, -ENOMEM, name, "out of memory");
    else if (H5Dread(a->dset, f ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                     H5P_DEFAULT, raw) < 0)
        err = diag_set(d, -EINVAL, name, "%s: cannot read (truncated or corrupt file?)", name);
    else
        err = import_decode_y(raw, f ? 'f' : 'i', 8, n, k, ret, name, d);
    free(raw);
    return err;
}

/* Copy images of a into split s of w, a chunk of examples per lock hold. */
static int copy_split(const struct array *a, const char *name, struct tensorfile_writer *w,
                      enum tensorfile_split s, struct diag *d)
{
    size_t ex = tensorfile_example_bytes(tensorfile_writer_info(w));
    uint64_t per = CHUNK_BYTES / ex ? CHUNK_BYTES / ex : 1;
    void *buf = malloc((size_t)(per * ex));
    if (!buf)
        return diag_set(d, -ENOMEM, name, "out of memory");
    bool f32 = a->cls == H5T_FLOAT;
    int err = 0;
    for (uint64_t i = 0; i < a->dims[0] && err == 0; i += per) {
        uint64_t cnt = a->dims[0] - i < per ? a->dims[0] - i : per;
        hsize_t start[4] = {i, 0, 0, 0}, count[4];
        for (int k = 0; k < a->ndim; k++)
            count[k] = a->dims[k];
        count[0] = cnt;
        h5_global_lock();
        hid_t fs = H5Dget_space(a->dset);
        hid_t ms = H5Screate_simple(a->ndim, count, NULL);
        herr_t hr = -1;
        if (fs >= 0 && ms >= 0 &&
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            hr = H5Dread(a->dset, f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8, ms, fs,
                         H5P_DEFAULT, buf);
        if (fs >= 0)
            H5Sclose(fs);
        if (ms >= 0)
            H5Sclose(ms);
        h5_global_unlock();
        if (hr < 0)
            err = diag_set(d, -EINVAL, name, "%s: cannot read examples %llu..%llu (truncated or "
                           "corrupt file?)", name, (unsigned long long)i,
                           (unsigned long long)(i + cnt));
        else
            err = tensorfile_write_x(w, s, i, cnt, buf, d);
    }
    free(buf);
    return err;
}

/* import_copy_fn: x_train, then x_test when present (ctx: the arrays). */
static int copy_images(void *ctx, struct tensorfile_writer *w, struct diag *d)
{
    const struct array *a = ctx;
    int err = copy_split(&a[X_TRAIN], "x_train", w, TENSORFILE_SPLIT_TRAIN, d);
    if (err == 0 && a[X_TEST].present)
        err = copy_split(&a[X_TEST], "x_test", w, TENSORFILE_SPLIT_TEST, d);
    return err;
}

int import_hdf5(const char *src_path, const struct import_options *o, const char *dir,
                const char *relpath, struct import_result *ret, struct diag *d)
{
    struct array a[ARRAYS];
    memset(a, 0, sizeof(a));
    struct import_y y[2];
    memset(y, 0, sizeof(y));
    int err = 0;
    h5_global_lock();
    hid_t file = H5Fopen(src_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        err = diag_set(d, -EINVAL, "body", "not a readable HDF5 file (truncated or corrupt?)");
    for (int i = 0; i < ARRAYS && err == 0; i++)
        err = describe(file, array_names[i], &a[i], d);
    if (err == 0 && (!a[X_TRAIN].present || !a[Y_TRAIN].present))
        err = diag_set(d, -EINVAL, a[X_TRAIN].present ? "y_train" : "x_train",
                       "the HDF5 file has no dataset %s", a[X_TRAIN].present ? "y_train" : "x_train");
    if (err == 0 && a[X_TEST].present != a[Y_TEST].present)
        err = diag_set(d, -EINVAL, a[X_TEST].present ? "y_test" : "x_test",
                       "the HDF5 file has %s but no %s", a[X_TEST].present ? "x_test" : "y_test",
                       a[X_TEST].present ? "y_test" : "x_test");
    for (int s = 0; s < 2 && err == 0; s++) {
        if (!a[2 * s].present)
            continue;
        err = check_images(&a[2 * s], array_names[2 * s], d);
        if (err == 0 && a[2 * s].dims[0] != a[2 * s + 1].dims[0])
            err = diag_set(d, -EINVAL, array_names[2 * s + 1], "%s has %llu examples, %s %llu",
                           array_names[2 * s], (unsigned long long)a[2 * s].dims[0],
                           array_names[2 * s + 1], (unsigned long long)a[2 * s + 1].dims[0]);
        if (err == 0)
            err = read_labels(&a[2 * s + 1], array_names[2 * s + 1], &y[s], d);
    }
    h5_global_unlock();
    if (err < 0)
        goto out;
    const struct array *x = &a[X_TRAIN], *t = &a[X_TEST];
    int c = x->ndim == 4 ? (int)x->dims[3] : 1;
    if (x->dims[0] == 0) {
        err = diag_set(d, -EINVAL, "x_train", "x_train holds zero images");
        goto out;
    }
    if (t->present && (t->dims[1] != x->dims[1] || t->dims[2] != x->dims[2] ||
                       (t->ndim == 4 ? (int)t->dims[3] : 1) != c || t->cls != x->cls)) {
        err = diag_set(d, -EINVAL, "x_test", "x_test's images differ in shape or dtype from "
                       "x_train's");
        goto out;
    }
    if ((err = import_y_check_pair(y, t->present, d)) < 0)
        goto out;
    int n_classes = y[0].classes > y[1].classes ? y[0].classes : y[1].classes;
    enum tensorfile_dtype dt = x->cls == H5T_FLOAT ? TENSORFILE_DTYPE_FLOAT32 : TENSORFILE_DTYPE_UINT8;
    uint64_t n_test = t->present ? t->dims[0] : 0;
    uint64_t bytes = (x->dims[0] + n_test) * x->dims[1] * x->dims[2] * (uint64_t)c *
                     (dt == TENSORFILE_DTYPE_FLOAT32 ? 4 : 1);
    if (bytes > o->max_total_bytes) {
        err = diag_set(d, -EFBIG, "x_train", "%llu bytes of images, more than the %llu allowed",
                       (unsigned long long)bytes, (unsigned long long)o->max_total_bytes);
        goto out;
    }
    const struct import_layout l = {
        .dtype = dt, .h = (int)x->dims[1], .w = (int)x->dims[2], .c = c,
        .n = {x->dims[0], n_test}, .labels = {y[0].labels, y[1].labels},
        .targets = {y[0].targets, y[1].targets}, .y_width = y[0].width,
        .classes = n_classes, .names = NULL,
    };
    err = import_write(dir, relpath, &l, copy_images, a, &ret->info, d);
out:
    h5_global_lock();
    for (int i = 0; i < ARRAYS; i++)
        if (a[i].dset > 0)
            H5Dclose(a[i].dset);
    if (file >= 0)
        H5Fclose(file);
    h5_global_unlock();
    import_y_free(&y[0]);
    import_y_free(&y[1]);
    return err;
}
