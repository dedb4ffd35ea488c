/* import_npz.c - keras.datasets .npz files (np.savez / np.savez_compressed:
 * a zip of .npy members x_train, y_train and optionally x_test, y_test).
 *
 * Two passes over the zip: the first parses every member's .npy header,
 * checks names, dtypes, shapes and sizes and reads the (small) label arrays;
 * the second streams the image arrays into the tensor file, counting every
 * byte against the header.  Images: uint8 or float32, (n, h, w) or
 * (n, h, w, c) with c <= 4, C order.  y: integer class labels (n,) or
 * (n, 1), one-hot floats (n, k), or float regression targets (n,), (n, 1)
 * or (n, K) (import_decode_y tells them apart). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "archive_reader.h"
#include "import_internal.h"
#include "npy.h"

#define LABEL_BYTES_MAX (UINT64_C(1) << 30)
#define CHUNK (1u << 20)

enum { X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, MEMBERS };
static const char *const member_names[MEMBERS] = {"x_train", "y_train", "x_test", "y_test"};

struct member {
    bool present;
    struct npy_header h;
};

struct npz {
    struct member m[MEMBERS];
    struct import_y y[2]; /* train, test */
    int classes;
};

static int member_index(const char *path)
{
    for (int i = 0; i < MEMBERS; i++) {
        size_t len = strlen(member_names[i]);
        if (strncmp(path, member_names[i], len) == 0 && strcmp(path + len, ".npy") == 0)
            return i;
    }
    return -1;
}

static int read_header(struct archive_reader *r, const char *field, struct npy_header *ret,
                       struct diag *d)
{
    unsigned char pre[12];
    int e = archive_reader_read_exact(r, pre, NPY_PREAMBLE, ".npy preamble", d);
    if (e < 0)
        return e;
    if (memcmp(pre, "\x93NUMPY", 6) == 0 && (pre[6] == 2 || pre[6] == 3)) {
        e = archive_reader_read_exact(r, pre + NPY_PREAMBLE, 2, ".npy preamble", d);
        if (e < 0)
            return e;
    }
    uint64_t total;
    e = npy_preamble(pre, sizeof(pre), &total, field, d);
    if (e < 0)
        return e;
    size_t pre_len = pre[6] == 1 ? NPY_PREAMBLE : 12;
    unsigned char *buf = malloc((size_t)total);
    if (!buf)
        return diag_set(d, -ENOMEM, field, "out of memory");
    memcpy(buf, pre, pre_len);
    e = archive_reader_read_exact(r, buf + pre_len, (size_t)total - pre_len, ".npy header", d);
    if (e == 0)
        e = npy_parse_header(buf, (size_t)total, ret, field, d);
    free(buf);
    return e;
}

static int check_images(const struct npy_header *h, const char *field, struct diag *d)
{
    if (h->fortran_order)
        return diag_set(d, -EINVAL, field, "%s: fortran_order True is not supported (save a "
                        "C-ordered array)", field);
    if (!((h->kind == 'u' && h->itemsize == 1) || (h->kind == 'f' && h->itemsize == 4)))
        return diag_set(d, -EINVAL, field, "%s: images must be uint8 or float32", field);
    if (h->ndim != 3 && h->ndim != 4)
        return diag_set(d, -EINVAL, field, "%s: images must have shape (n, h, w) or (n, h, w, c), "
                        "got %d dimensions", field, h->ndim);
    if (h->ndim == 4 && (h->shape[3] < 1 || h->shape[3] > TENSORFILE_MAX_CHANNELS))
        return diag_set(d, -EINVAL, field, "%s: %llu channels (1 to %d supported)", field,
                        (unsigned long long)h->shape[3], TENSORFILE_MAX_CHANNELS);
    if (h->shape[1] < 1 || h->shape[2] < 1 || h->shape[1] > TENSORFILE_MAX_SIDE ||
        h->shape[2] > TENSORFILE_MAX_SIDE)
        return diag_set(d, -EINVAL, field, "%s: image sides %llu x %llu (1 to %d)", field,
                        (unsigned long long)h->shape[1], (unsigned long long)h->shape[2],
                        TENSORFILE_MAX_SIDE);
    return 0;
}

static int check_labels(const struct npy_header *h, const char *field, struct diag *d)
{
    if (h->fortran_order && h->ndim == 2 && h->shape[1] > 1)
        return diag_set(d, -EINVAL, field, "%s: fortran_order True is not supported", field);
    if (h->ndim < 1 || h->ndim > 2)
        return diag_set(d, -EINVAL, field, "%s: labels must have shape (n,), (n, 1) or (n, k), "
                        "got %d dimensions", field, h->ndim);
    if (h->data_bytes > LABEL_BYTES_MAX)
        return diag_set(d, -EFBIG, field, "%s: label array larger than %llu bytes", field,
                        (unsigned long long)LABEL_BYTES_MAX);
    return 0;
}

/* Pass 1: headers, sizes and labels. */
static int scan(const char *src_path, const struct import_options *o, struct npz *z,
                uint64_t *ret_skipped, struct diag *d)
{
    struct archive_reader *r;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    struct archive_item it;
    uint64_t skipped = 0;
    void *raw = NULL;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.hidden || it.is_dir) {
            skipped++;
            continue;
        }
        int k = member_index(it.path);
        if (k < 0) {
            e = diag_set(d, -EINVAL, it.path, "unexpected member %s (an npz holds x_train.npy, "
                         "y_train.npy, x_test.npy, y_test.npy)", it.path);
            break;
        }
        const char *field = member_names[k];
        if (z->m[k].present) {
            e = diag_set(d, -EINVAL, field, "duplicate member %s", it.path);
            break;
        }
        struct npy_header h;
        e = read_header(r, field, &h, d);
        if (e < 0)
            break;
        e = (k == X_TRAIN || k == X_TEST) ? check_images(&h, field, d) : check_labels(&h, field, d);
        if (e < 0)
            break;
        if (it.size_known && it.size != h.header_bytes + h.data_bytes) {
            e = diag_set(d, -EINVAL, field, "%s: the member has %llu bytes, its header describes "
                         "%llu (%s)", field, (unsigned long long)it.size,
                         (unsigned long long)(h.header_bytes + h.data_bytes),
                         it.size < h.header_bytes + h.data_bytes ? "truncated" : "trailing data");
            break;
        }
        z->m[k] = (struct member){.present = true, .h = h};
        if (k == Y_TRAIN || k == Y_TEST) {
            int s = k == Y_TEST;
            uint64_t n = h.shape[0], cols = h.ndim == 2 ? h.shape[1] : 1;
            raw = malloc(h.data_bytes ? (size_t)h.data_bytes : 1);
            if (!raw) {
                e = diag_set(d, -ENOMEM, field, "out of memory");
                break;
            }
            e = archive_reader_read_exact(r, raw, (size_t)h.data_bytes, "label data", d);
            if (e < 0)
                break;
            e = import_decode_y(raw, h.kind, h.itemsize, n, cols, &z->y[s], field, d);
            if (e < 0)
                break;
            int classes = z->y[s].classes;
            if (z->y[s].labels && h.kind == 'f' && z->classes && classes != z->classes) {
                e = diag_set(d, -EINVAL, field, "%s: %d one-hot columns, the other split has %d",
                             field, classes, z->classes);
                break;
            }
            if (classes > z->classes)
                z->classes = classes;
            free(raw);
            raw = NULL;
        }
    }
    free(raw);
    archive_reader_close(r);
    *ret_skipped = skipped;
    return e < 0 ? e : 0;
}

static int check_members(struct npz *z, struct diag *d)
{
    if (!z->m[X_TRAIN].present || !z->m[Y_TRAIN].present)
        return diag_set(d, -EINVAL, z->m[X_TRAIN].present ? "y_train" : "x_train",
                        "the npz has no %s.npy", z->m[X_TRAIN].present ? "y_train" : "x_train");
    if (z->m[X_TEST].present != z->m[Y_TEST].present)
        return diag_set(d, -EINVAL, z->m[X_TEST].present ? "y_test" : "x_test",
                        "the npz has %s.npy but no %s.npy",
                        z->m[X_TEST].present ? "x_test" : "y_test",
                        z->m[X_TEST].present ? "y_test" : "x_test");
    for (int s = 0; s < 2; s++) {
        const struct member *x = &z->m[2 * s], *y = &z->m[2 * s + 1];
        if (!x->present)
            continue;
        if (x->h.shape[0] != y->h.shape[0])
            return diag_set(d, -EINVAL, member_names[2 * s + 1], "%s has %llu examples, %s %llu",
                            member_names[2 * s], (unsigned long long)x->h.shape[0],
                            member_names[2 * s + 1], (unsigned long long)y->h.shape[0]);
    }
    if (z->m[X_TRAIN].h.shape[0] == 0)
        return diag_set(d, -EINVAL, "x_train", "x_train holds zero images");
    if (z->m[X_TEST].present) {
        const struct npy_header *a = &z->m[X_TRAIN].h, *b = &z->m[X_TEST].h;
        uint64_t ca = a->ndim == 4 ? a->shape[3] : 1, cb = b->ndim == 4 ? b->shape[3] : 1;
        if (a->shape[1] != b->shape[1] || a->shape[2] != b->shape[2] || ca != cb ||
            a->kind != b->kind)
            return diag_set(d, -EINVAL, "x_test", "x_test's images (%llu, %llu, %llu, %s) differ "
                            "from x_train's (%llu, %llu, %llu, %s)",
                            (unsigned long long)b->shape[1], (unsigned long long)b->shape[2],
                            (unsigned long long)cb, b->kind == 'u' ? "uint8" : "float32",
                            (unsigned long long)a->shape[1], (unsigned long long)a->shape[2],
                            (unsigned long long)ca, a->kind == 'u' ? "uint8" : "float32");
    }
    int r = import_y_check_pair(z->y, z->m[X_TEST].present, d);
    if (r < 0)
        return r;
    if (!z->y[0].targets && z->classes < 1)
        return diag_set(d, -EINVAL, "y_train", "no classes");
    return 0;
}

/* Pass 2: stream the image arrays into w. */
struct copy_ctx {
    const char *src_path;
    const struct import_options *o;
    const struct npz *z;
};

/* import_copy_fn: x_train and x_test from the archive (ctx: struct copy_ctx). */
static int copy_images(void *ctx, struct tensorfile_writer *w, struct diag *d)
{
    const struct copy_ctx *cx = ctx;
    const char *src_path = cx->src_path;
    const struct import_options *o = cx->o;
    const struct npz *z = cx->z;
    struct archive_reader *r;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    size_t ex = tensorfile_example_bytes(tensorfile_writer_info(w));
    size_t per_chunk = CHUNK / ex ? CHUNK / ex : 1;
    unsigned char *buf = malloc(per_chunk * ex);
    if (!buf) {
        archive_reader_close(r);
        return diag_set(d, -ENOMEM, "x_train", "out of memory");
    }
    struct archive_item it;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        int k = it.hidden || it.is_dir ? -1 : member_index(it.path);
        if (k != X_TRAIN && k != X_TEST)
            continue;
        const char *field = member_names[k];
        struct npy_header h;
        e = read_header(r, field, &h, d);
        if (e < 0)
            break;
        if (memcmp(&h, &z->m[k].h, sizeof(h)) != 0) {
            e = diag_set(d, -EINVAL, field, "%s changed between two reads", field);
            break;
        }
        enum tensorfile_split s = k == X_TEST ? TENSORFILE_SPLIT_TEST : TENSORFILE_SPLIT_TRAIN;
        uint64_t n = h.shape[0];
        for (uint64_t i = 0; i < n && e == 0; i += per_chunk) {
            uint64_t cnt = n - i < per_chunk ? n - i : per_chunk;
            e = archive_reader_read_exact(r, buf, (size_t)(cnt * ex), "image data", d);
            if (e == 0)
                e = tensorfile_write_x(w, s, i, cnt, buf, d);
        }
        if (e < 0)
            break;
        size_t extra = 0;
        e = archive_reader_read(r, buf, 1, &extra, d);
        if (e == 0 && extra)
            e = diag_set(d, -EINVAL, field, "%s: trailing data after the %llu bytes its header "
                         "describes", field, (unsigned long long)h.data_bytes);
        if (e < 0)
            break;
    }
    free(buf);
    archive_reader_close(r);
    return e < 0 ? e : 0;
}

int import_npz(const char *src_path, const struct import_options *o, const char *dir,
               const char *relpath, struct import_result *ret, struct diag *d)
{
    struct npz z;
    memset(&z, 0, sizeof(z));
    uint64_t skipped = 0;
    int e = scan(src_path, o, &z, &skipped, d);
    if (e == 0)
        e = check_members(&z, d);
    if (e < 0)
        goto out;
    const struct npy_header *x = &z.m[X_TRAIN].h;
    int c = x->ndim == 4 ? (int)x->shape[3] : 1;
    uint64_t n_test = z.m[X_TEST].present ? z.m[X_TEST].h.shape[0] : 0;
    enum tensorfile_dtype dt = x->kind == 'f' ? TENSORFILE_DTYPE_FLOAT32 : TENSORFILE_DTYPE_UINT8;
    uint64_t bytes = (x->shape[0] + n_test) * (x->data_bytes / x->shape[0]);
    if (bytes > o->max_total_bytes) {
        e = diag_set(d, -EFBIG, "x_train", "%llu bytes of images, more than the %llu allowed",
                     (unsigned long long)bytes, (unsigned long long)o->max_total_bytes);
        goto out;
    }
    const struct import_layout l = {
        .dtype = dt, .h = (int)x->shape[1], .w = (int)x->shape[2], .c = c,
        .n = {x->shape[0], n_test}, .labels = {z.y[0].labels, z.y[1].labels},
        .targets = {z.y[0].targets, z.y[1].targets}, .y_width = z.y[0].width,
        .classes = z.classes, .names = NULL,
    };
    struct copy_ctx cx = {src_path, o, &z};
    e = import_write(dir, relpath, &l, copy_images, &cx, &ret->info, d);
    if (e == 0)
        ret->skipped = skipped;
out:
    import_y_free(&z.y[0]);
    import_y_free(&z.y[1]);
    return e;
}
