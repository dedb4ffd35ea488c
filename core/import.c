/* import.c - import_dataset: options, format names, sniffing, dispatch to
 * the importer of each format, and what they share: writing the tensor file
 * and decoding labels. */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "archive_reader.h"
#include "import_internal.h"

void import_options_init(struct import_options *o)
{
    memset(o, 0, sizeof(*o));
    o->format = IMPORT_FORMAT_AUTO;
    o->image_h = 256;
    o->image_w = 256;
    o->color_mode = IMPORT_COLOR_RGB;
    o->max_total_bytes = UINT64_C(64) << 30;
    o->max_ratio = 200;
    o->max_entry_bytes = UINT64_C(64) << 20;
}

const char *import_format_name(enum import_format f)
{
    switch (f) {
    case IMPORT_FORMAT_NPZ: return "npz";
    case IMPORT_FORMAT_IMAGES: return "images";
    case IMPORT_FORMAT_HDF5: return "hdf5";
    case IMPORT_FORMAT_CIFAR10: return "cifar10";
    case IMPORT_FORMAT_AUTO: break;
    }
    return "auto";
}

int import_format_parse(const char *s, enum import_format *ret)
{
    static const struct {
        const char *name;
        enum import_format f;
    } table[] = {
        {"auto", IMPORT_FORMAT_AUTO},
        {"application/octet-stream", IMPORT_FORMAT_AUTO},
        {"npz", IMPORT_FORMAT_NPZ},
        {"application/x-npz", IMPORT_FORMAT_NPZ},
        {"images", IMPORT_FORMAT_IMAGES},
        {"application/zip", IMPORT_FORMAT_IMAGES},
        {"application/x-tar", IMPORT_FORMAT_IMAGES},
        {"application/gzip", IMPORT_FORMAT_IMAGES},
        {"application/x-gzip", IMPORT_FORMAT_IMAGES},
        {"application/x-gtar", IMPORT_FORMAT_IMAGES},
        {"hdf5", IMPORT_FORMAT_HDF5},
        {"application/x-hdf5", IMPORT_FORMAT_HDF5},
        {"application/x-hdf", IMPORT_FORMAT_HDF5},
        {"cifar10", IMPORT_FORMAT_CIFAR10},
    };
    size_t len = strcspn(s, ";"); /* Content-Type parameters */
    while (len > 0 && s[len - 1] == ' ')
        len--;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strlen(table[i].name) == len && strncasecmp(s, table[i].name, len) == 0) {
            *ret = table[i].f;
            return 0;
        }
    }
    return -EINVAL;
}

int import_color_mode_parse(const char *s, enum import_color_mode *ret)
{
    if (strcmp(s, "rgb") == 0)
        *ret = IMPORT_COLOR_RGB;
    else if (strcmp(s, "grayscale") == 0)
        *ret = IMPORT_COLOR_GRAYSCALE;
    else if (strcmp(s, "rgba") == 0)
        *ret = IMPORT_COLOR_RGBA;
    else
        return -EINVAL;
    return 0;
}

/* Class names "0", "1", ... for sources without names; names[k] point into
 * storage (TENSORFILE_MAX_CLASSES * 4 bytes). */
static void import_number_names(int classes, char *storage, const char **names)
{
    for (int k = 0; k < classes; k++) {
        snprintf(storage + 4 * k, 4, "%d", k & 0xff);
        names[k] = storage + 4 * k;
    }
}

int import_write(const char *dir, const char *relpath, const struct import_layout *l,
                 import_copy_fn copy, void *ctx, struct tensorfile_info *ret_info,
                 struct diag *d)
{
    struct tensorfile_writer *w = NULL;
    int e = tensorfile_writer_begin_targets(&w, dir, relpath, l->dtype, l->h, l->w, l->c,
                                            l->y_width, l->n[0], l->n[1], d);
    for (int s = 0; s < 2 && e == 0; s++)
        if (l->n[s])
            e = l->y_width > 0
                    ? tensorfile_write_targets(w, (enum tensorfile_split)s, 0, l->n[s],
                                               l->targets[s], d)
                    : tensorfile_write_y(w, (enum tensorfile_split)s, 0, l->n[s], l->labels[s], d);
    if (e == 0)
        e = copy(ctx, w, d);
    if (e < 0) {
        tensorfile_writer_abort(w);
        return e;
    }
    char storage[TENSORFILE_MAX_CLASSES * 4];
    const char *numbered[TENSORFILE_MAX_CLASSES];
    const char *const *names = l->names;
    if (!names) {
        import_number_names(l->classes, storage, numbered);
        names = numbered;
    }
    return tensorfile_writer_commit(w, l->classes, names, ret_info, d);
}

static uint64_t get_le(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int import_decode_labels(const void *raw, char kind, int itemsize, uint64_t n, uint64_t k,
                         uint8_t *out, int *ret_classes, const char *field, struct diag *d)
{
    const unsigned char *p = raw;
    int classes = 0;
    if (kind == 'f') {
        if (k < 2 || k > TENSORFILE_MAX_CLASSES)
            return diag_set(d, -EINVAL, field, "%s: one-hot labels need 2 to %d columns, got %llu",
                            field, TENSORFILE_MAX_CLASSES, (unsigned long long)k);
        for (uint64_t i = 0; i < n; i++) {
            int hot = -1;
            for (uint64_t j = 0; j < k; j++) {
                double v;
                if (itemsize == 4) {
                    uint32_t b = (uint32_t)get_le(p + (i * k + j) * 4, 4);
                    float f;
                    memcpy(&f, &b, 4);
                    v = f;
                } else {
                    uint64_t b = get_le(p + (i * k + j) * 8, 8);
                    memcpy(&v, &b, 8);
                }
                if (v == 1.0 && hot < 0) {
                    hot = (int)j;
                } else if (v != 0.0) {
                    return diag_set(d, -EINVAL, field, "%s: row %llu is not one-hot (value %g "
                                    "in column %llu)", field, (unsigned long long)i, v,
                                    (unsigned long long)j);
                }
            }
            if (hot < 0)
                return diag_set(d, -EINVAL, field, "%s: row %llu is not one-hot (no 1)", field,
                                (unsigned long long)i);
            out[i] = (uint8_t)hot;
        }
        *ret_classes = (int)k;
        return 0;
    }
    if (k != 1)
        return diag_set(d, -EINVAL, field, "%s: integer labels must have shape (n,) or (n, 1)",
                        field);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t u = get_le(p + i * (uint64_t)itemsize, itemsize);
        int64_t v;
        if (kind == 'i') {
            int shift = 64 - 8 * itemsize;
            v = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
        } else {
            v = u > INT64_MAX ? -1 : (int64_t)u;
        }
        if (v < 0 || v >= TENSORFILE_MAX_CLASSES)
            return diag_set(d, -EINVAL, field, "%s: label %lld of example %llu is outside 0..%d",
                            field, (long long)v, (unsigned long long)i,
                            TENSORFILE_MAX_CLASSES - 1);
        out[i] = (uint8_t)v;
        if ((int)v + 1 > classes)
            classes = (int)v + 1;
    }
    *ret_classes = classes;
    return 0;
}

/* Sniff: HDF5 signature, zip, gzip or tar; an archive's entries then tell
 * npz (every member *.npy), CIFAR-10 (a data_batch_1.bin) or image folders. */
static int sniff(const char *src_path, const struct import_options *o, enum import_format *ret,
                 struct diag *d)
{
    unsigned char head[512] = {0};
    int fd = open(src_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_set(d, -errno, "body", "open: %s", strerror(errno));
    ssize_t got = read(fd, head, sizeof(head));
    close(fd);
    if (got <= 0)
        return diag_set(d, -EINVAL, "body", "the file is empty");
    if (got >= 8 && memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0) {
        *ret = IMPORT_FORMAT_HDF5;
        return 0;
    }
    bool zip = got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0;
    bool gz = got >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    bool tar = got >= 262 && memcmp(head + 257, "ustar", 5) == 0;
    if (!zip && !gz && !tar)
        return diag_set(d, -EINVAL, "body", "unknown format: not HDF5, zip (npz), tar or gzip "
                        "(first bytes %02x %02x %02x %02x)", head[0], head[1], head[2], head[3]);
    struct archive_reader *r;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    struct archive_item it;
    int files = 0, npy = 0;
    bool cifar = false;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.is_dir || it.hidden)
            continue;
        files++;
        size_t len = strlen(it.path);
        if (len > 4 && strcmp(it.path + len - 4, ".npy") == 0 && !strchr(it.path, '/'))
            npy++;
        const char *base = strrchr(it.path, '/');
        base = base ? base + 1 : it.path;
        if (strcmp(base, "data_batch_1.bin") == 0)
            cifar = true;
    }
    archive_reader_close(r);
    if (e < 0)
        return e;
    if (files > 0 && npy == files)
        *ret = IMPORT_FORMAT_NPZ;
    else if (cifar)
        *ret = IMPORT_FORMAT_CIFAR10;
    else
        *ret = IMPORT_FORMAT_IMAGES;
    return 0;
}

int import_dataset(const char *src_path, const struct import_options *o, const char *dir,
                   const char *relpath, struct import_result *ret, struct diag *d)
{
    enum import_format f = o->format;
    if (!(o->validation_split >= 0 && o->validation_split < 1))
        return diag_set(d, -EINVAL, "validation_split", "must be in [0, 1), got %g",
                        o->validation_split);
    if (o->image_h < 1 || o->image_w < 1 || o->image_h > 4096 || o->image_w > 4096)
        return diag_set(d, -EINVAL, "image_size", "sides must be 1 to 4096, got %dx%d",
                        o->image_h, o->image_w);
    if (f == IMPORT_FORMAT_AUTO) {
        int e = sniff(src_path, o, &f, d);
        if (e < 0)
            return e;
    }
    struct import_result res = {.format = f};
    int e;
    switch (f) {
    case IMPORT_FORMAT_NPZ: e = import_npz(src_path, o, dir, relpath, &res, d); break;
    case IMPORT_FORMAT_IMAGES: e = import_images(src_path, o, dir, relpath, &res, d); break;
    case IMPORT_FORMAT_HDF5: e = import_hdf5(src_path, o, dir, relpath, &res, d); break;
    case IMPORT_FORMAT_CIFAR10: e = import_cifar10(src_path, o, dir, relpath, &res, d); break;
    default: return diag_set(d, -EINVAL, "format", "unknown format");
    }
    if (e < 0)
        return e;
    res.format = f;
    *ret = res;
    return 0;
}

/* Value i of a little-endian float array of itemsize 4 or 8. */
static double get_float(const unsigned char *p, int itemsize, uint64_t i)
{
    if (itemsize == 4) {
        uint32_t b = (uint32_t)get_le(p + i * 4, 4);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    uint64_t b = get_le(p + i * 8, 8);
    double v;
    memcpy(&v, &b, 8);
    return v;
}

/* Every row of a float (n, k) array is one-hot (exactly one 1, the rest 0). */
static bool all_one_hot(const unsigned char *p, int itemsize, uint64_t n, uint64_t k)
{
    for (uint64_t i = 0; i < n; i++) {
        int ones = 0;
        for (uint64_t j = 0; j < k; j++) {
            double v = get_float(p, itemsize, i * k + j);
            if (v == 1.0)
                ones++;
            else if (v != 0.0)
                return false;
        }
        if (ones != 1)
            return false;
    }
    return true;
}

int import_decode_y(const void *raw, char kind, int itemsize, uint64_t n, uint64_t k,
                    struct import_y *ret, const char *field, struct diag *d)
{
    struct import_y y = {0};
    bool targets = kind == 'f' && (k < 2 || !all_one_hot(raw, itemsize, n, k));
    if (!targets) {
        y.labels = malloc(n ? (size_t)n : 1);
        if (!y.labels)
            return diag_set(d, -ENOMEM, field, "out of memory");
        int r = import_decode_labels(raw, kind, itemsize, n, k, y.labels, &y.classes, field, d);
        if (r < 0) {
            free(y.labels);
            return r;
        }
        *ret = y;
        return 0;
    }
    if (k > TENSORFILE_MAX_TARGETS)
        return diag_set(d, -EINVAL, field, "%s: %llu float targets per example (1 to %d "
                        "supported)", field, (unsigned long long)k, TENSORFILE_MAX_TARGETS);
    y.width = (int)k;
    y.targets = malloc(n ? (size_t)(n * k) * sizeof(float) : 1);
    if (!y.targets)
        return diag_set(d, -ENOMEM, field, "out of memory");
    for (uint64_t i = 0; i < n * k; i++) {
        double v = get_float(raw, itemsize, i);
        float f = (float)v;
        if (!isfinite(f)) {
            free(y.targets);
            return diag_set(d, -EINVAL, field, "%s: target %llu of example %llu is %g: float "
                            "targets must be finite float32 values", field,
                            (unsigned long long)(i % k), (unsigned long long)(i / k), v);
        }
        y.targets[i] = f;
    }
    *ret = y;
    return 0;
}

int import_y_check_pair(const struct import_y y[2], bool has_test, struct diag *d)
{
    if (!has_test)
        return 0;
    if ((y[0].targets != NULL) != (y[1].targets != NULL))
        return diag_set(d, -EINVAL, "y_test", "y_test holds %s, y_train %s: both splits must "
                        "have the same kind of targets",
                        y[1].targets ? "float targets" : "class labels",
                        y[0].targets ? "float targets" : "class labels");
    if (y[0].targets && y[0].width != y[1].width)
        return diag_set(d, -EINVAL, "y_test", "y_test has %d targets per example, y_train %d",
                        y[1].width, y[0].width);
    return 0;
}

void import_y_free(struct import_y *y)
{
    if (!y)
        return;
    free(y->labels);
    free(y->targets);
    memset(y, 0, sizeof(*y));
}
