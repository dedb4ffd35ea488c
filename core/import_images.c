/* import_images.c - image folders in a .tar, .tar.gz or .zip, read as
 * keras.utils.image_dataset_from_directory reads a folder:
 *
 *   - <class>/<image> (images anywhere below the class folder), or
 *     train/<class>/... and test/<class>/... when every top-level entry is
 *     train/ or test/ (then validation_split is refused: test/ is the test
 *     split).
 *   - class names: the class folders (empty ones included), sorted; labels
 *     are their indices (the union over train/ and test/).
 *   - images: .png, .jpg, .jpeg (any case); other files and files outside a
 *     class folder are skipped and counted; hidden entries are skipped.  A
 *     file with an image extension that does not decode is an error.
 *   - order: per class, folders then files sorted by name (Keras' sorted
 *     os.walk), then shuffled with numpy's RandomState(seed).shuffle, which
 *     Keras applies (shuffle=True); validation_split then keeps the last
 *     int(validation_split * n) images as the test split.
 *   - pixels: decoded to color_mode's channels and resized to image_size
 *     with tf.image.resize's bilinear (image.h), rounded to uint8 (Keras
 *     yields the unrounded floats: the difference is at most 0.5/255 after
 *     scaling).
 *
 * Two passes: the first lists and checks the entries (paths, duplicates,
 * classes), the second decodes each image once into its slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive_reader.h"
#include "image.h"
#include "import_internal.h"
#include "rng.h"

struct img {
    char *path;       /* entry path */
    const char *rest; /* path below the class folder */
    int folder;       /* 0 train/ (or no split folders), 1 test/ */
    int split;        /* 0 train, 1 test (test/, or the validation_split tail) */
    int cls;          /* index into the sorted class names */
    uint64_t slot;    /* destination within the split */
};

struct folder {
    struct img *imgs;
    size_t n, cap;
    char **classes; /* sorted, unique after finish */
    int n_classes, cap_classes;
    uint64_t skipped;
    bool split_mode;
};

static bool has_image_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return false;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

static int add_class(struct folder *f, const char *name, size_t len, struct diag *d)
{
    for (int i = 0; i < f->n_classes; i++)
        if (strlen(f->classes[i]) == len && strncmp(f->classes[i], name, len) == 0)
            return 0;
    if (len > TENSORFILE_NAME_MAX)
        return diag_set(d, -EINVAL, "classes", "class name %.40s... longer than %d bytes", name,
                        TENSORFILE_NAME_MAX);
    if (f->n_classes == TENSORFILE_MAX_CLASSES)
        return diag_set(d, -EINVAL, "classes", "more than %d class folders",
                        TENSORFILE_MAX_CLASSES);
    if (f->n_classes == f->cap_classes) {
        int cap = f->cap_classes ? 2 * f->cap_classes : 16;
        char **nc = realloc(f->classes, (size_t)cap * sizeof(*nc));
        if (!nc)
            return diag_set(d, -ENOMEM, "classes", "out of memory");
        f->classes = nc;
        f->cap_classes = cap;
    }
    f->classes[f->n_classes] = strndup(name, len);
    if (!f->classes[f->n_classes])
        return diag_set(d, -ENOMEM, "classes", "out of memory");
    f->n_classes++;
    return 0;
}

static int add_image(struct folder *f, const char *path, struct diag *d)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 1024;
        struct img *ni = realloc(f->imgs, cap * sizeof(*ni));
        if (!ni)
            return diag_set(d, -ENOMEM, path, "out of memory");
        f->imgs = ni;
        f->cap = cap;
    }
    struct img *im = &f->imgs[f->n];
    memset(im, 0, sizeof(*im));
    im->path = strdup(path);
    if (!im->path)
        return diag_set(d, -ENOMEM, path, "out of memory");
    f->n++;
    return 0;
}

static void folder_free(struct folder *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->imgs[i].path);
    free(f->imgs);
    for (int i = 0; i < f->n_classes; i++)
        free(f->classes[i]);
    free(f->classes);
}

/* Does every entry live under train/ or test/ (with a train/)? */
static int detect_split_mode(const char *src_path, const struct import_options *o, bool *ret,
                             struct diag *d)
{
    struct archive_reader *r;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    struct archive_item it;
    bool all = true, train = false, any = false;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.hidden)
            continue;
        any = true;
        size_t len = strcspn(it.path, "/");
        bool under = it.path[len] == '/' || it.is_dir;
        if (under && len == 5 && strncmp(it.path, "train", 5) == 0)
            train = true;
        else if (!(under && len == 4 && strncmp(it.path, "test", 4) == 0))
            all = false;
    }
    archive_reader_close(r);
    if (e < 0)
        return e;
    *ret = any && all && train;
    return 0;
}

/* Pass 1: every entry; images recorded with their split, classes collected. */
static int scan(const char *src_path, const struct import_options *o, struct folder *f,
                struct diag *d)
{
    int e = detect_split_mode(src_path, o, &f->split_mode, d);
    if (e < 0)
        return e;
    struct archive_reader *r;
    e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    struct archive_item it;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.hidden) {
            f->skipped += !it.is_dir;
            continue;
        }
        const char *p = it.path;
        if (f->split_mode) {
            p += strcspn(p, "/");
            if (*p == '\0')
                continue; /* train/ or test/ itself */
            p++;
        }
        size_t cl = strcspn(p, "/");
        if (p[cl] == '\0' && !it.is_dir) {
            f->skipped++; /* a file outside any class folder */
            continue;
        }
        e = add_class(f, p, cl, d);
        if (e < 0)
            break;
        if (it.is_dir)
            continue;
        if (!has_image_ext(p)) {
            f->skipped++;
            continue;
        }
        e = add_image(f, it.path, d);
        if (e < 0)
            break;
    }
    archive_reader_close(r);
    return e < 0 ? e : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const struct img *)a)->path, ((const struct img *)b)->path);
}

/* Keras' order within a split: class, then folder path, then file name. */
static int cmp_keras(const void *a, const void *b)
{
    const struct img *x = *(struct img *const *)a, *y = *(struct img *const *)b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    const char *xs = strrchr(x->rest, '/'), *ys = strrchr(y->rest, '/');
    size_t xl = (size_t)(xs - x->rest), yl = (size_t)(ys - y->rest);
    size_t m = xl < yl ? xl : yl;
    int c = strncmp(x->rest, y->rest, m);
    if (c == 0 && xl != yl)
        return xl < yl ? -1 : 1;
    if (c != 0)
        return c;
    return strcmp(xs + 1, ys + 1);
}

static int find_class(const struct folder *f, const char *name, size_t len)
{
    for (int i = 0; i < f->n_classes; i++)
        if (strlen(f->classes[i]) == len && strncmp(f->classes[i], name, len) == 0)
            return i;
    return -1;
}

/* Classes sorted, images given class, split and slot; labels per split. */
static int arrange(struct folder *f, const struct import_options *o, uint64_t n_split[2],
                   uint8_t **labels, struct diag *d)
{
    if (f->n_classes > 0)
        qsort(f->classes, (size_t)f->n_classes, sizeof(*f->classes), cmp_str);
    if (f->n > 0)
        qsort(f->imgs, f->n, sizeof(*f->imgs), cmp_path);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->imgs[i - 1].path, f->imgs[i].path) == 0)
            return diag_set(d, -EINVAL, f->imgs[i].path, "duplicate entry %s", f->imgs[i].path);
    if (f->n == 0)
        return diag_set(d, -EINVAL, "images", "no images found (expected <class>/<image>.png or "
                        ".jpg, optionally under train/ and test/; %llu entries skipped)",
                        (unsigned long long)f->skipped);
    if (f->split_mode && o->validation_split > 0)
        return diag_set(d, -EINVAL, "validation_split", "the archive has train/ and test/ "
                        "folders; validation_split applies only to a single folder");
    struct img **order = malloc(f->n * sizeof(*order));
    if (!order)
        return diag_set(d, -ENOMEM, "images", "out of memory");
    for (size_t i = 0; i < f->n; i++) {
        struct img *im = &f->imgs[i];
        const char *p = im->path;
        im->folder = 0;
        if (f->split_mode) {
            im->folder = strncmp(p, "test/", 5) == 0;
            p += strcspn(p, "/") + 1;
        }
        size_t cl = strcspn(p, "/");
        im->cls = find_class(f, p, cl);
        im->rest = p;
        im->split = im->folder;
    }
    int e = 0;
    for (int s = 0; s < 2 && e == 0; s++) {
        size_t n = 0;
        for (size_t i = 0; i < f->n; i++)
            if (f->imgs[i].folder == s)
                order[n++] = &f->imgs[i];
        if (n > 0)
            qsort(order, n, sizeof(*order), cmp_keras);
        /* numpy RandomState(seed).shuffle: Fisher-Yates from the end */
        struct mt19937 mt;
        mt19937_seed(&mt, o->seed);
        for (size_t i = n; i-- > 1;) {
            size_t j = (size_t)mt19937_interval(&mt, (uint64_t)i);
            struct img *t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        if (s == 0) {
            uint64_t n_val = o->validation_split > 0 ? (uint64_t)(o->validation_split * (double)n)
                                                      : 0;
            if (o->validation_split > 0 && (n_val == 0 || n_val >= n)) {
                e = diag_set(d, -EINVAL, "validation_split", "validation_split %g of %zu images "
                             "leaves %llu for validation and %llu for training; both must be "
                             "non-empty", o->validation_split, n, (unsigned long long)n_val,
                             (unsigned long long)(n - n_val));
                break;
            }
            n_split[0] = n - n_val;
            n_split[1] = n_val;
            for (size_t i = 0; i < n; i++) {
                order[i]->split = i < n - n_val ? 0 : 1;
                order[i]->slot = i < n - n_val ? i : i - (n - n_val);
            }
        } else if (n) {
            n_split[1] = n;
            for (size_t i = 0; i < n; i++)
                order[i]->slot = i;
        }
    }
    free(order);
    if (e < 0)
        return e;
    for (int s = 0; s < 2; s++) {
        labels[s] = malloc(n_split[s] ? (size_t)n_split[s] : 1);
        if (!labels[s])
            return diag_set(d, -ENOMEM, "images", "out of memory");
    }
    for (size_t i = 0; i < f->n; i++)
        labels[f->imgs[i].split][f->imgs[i].slot] = (uint8_t)f->imgs[i].cls;
    return 0;
}

/* Pass 2: decode, resize and write each image into its slot. */
struct decode_ctx {
    const char *src_path;
    const struct import_options *o;
    const struct folder *f;
    int channels;
};

/* import_copy_fn: decode, resize and write every selected image (ctx:
 * struct decode_ctx). */
static int decode_all(void *ctx, struct tensorfile_writer *w, struct diag *d)
{
    const struct decode_ctx *cx = ctx;
    const char *src_path = cx->src_path;
    const struct import_options *o = cx->o;
    const struct folder *f = cx->f;
    const int channels = cx->channels;
    struct archive_reader *r;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    uint8_t *out = malloc((size_t)o->image_h * (size_t)o->image_w * (size_t)channels);
    if (!out) {
        archive_reader_close(r);
        return diag_set(d, -ENOMEM, "images", "out of memory");
    }
    struct archive_item it;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.is_dir || it.hidden)
            continue;
        struct img key = {.path = it.path};
        struct img *im = bsearch(&key, f->imgs, f->n, sizeof(*f->imgs), cmp_path);
        if (!im)
            continue;
        void *data = NULL;
        size_t len = 0;
        e = archive_reader_read_all(r, (size_t)o->max_entry_bytes, &data, &len, d);
        if (e < 0)
            break;
        uint8_t *px = NULL;
        int h = 0, wd = 0;
        e = image_decode(data, len, channels, &px, &h, &wd, it.path, d);
        free(data);
        if (e < 0)
            break;
        image_resize_bilinear(out, o->image_h, o->image_w, px, h, wd, channels);
        free(px);
        e = tensorfile_write_x(w, (enum tensorfile_split)im->split, im->slot, 1, out, d);
        if (e < 0)
            break;
    }
    free(out);
    archive_reader_close(r);
    return e < 0 ? e : 0;
}

int import_images(const char *src_path, const struct import_options *o, const char *dir,
                  const char *relpath, struct import_result *ret, struct diag *d)
{
    struct folder f;
    memset(&f, 0, sizeof(f));
    uint8_t *labels[2] = {NULL, NULL};
    uint64_t n_split[2] = {0, 0};
    int channels = o->color_mode == IMPORT_COLOR_GRAYSCALE ? 1
                   : o->color_mode == IMPORT_COLOR_RGBA    ? 4
                                                           : 3;
    int e = scan(src_path, o, &f, d);
    if (e == 0)
        e = arrange(&f, o, n_split, labels, d);
    if (e < 0)
        goto out;
    uint64_t bytes = (n_split[0] + n_split[1]) * (uint64_t)o->image_h * (uint64_t)o->image_w *
                     (uint64_t)channels;
    if (bytes > o->max_total_bytes) {
        e = diag_set(d, -EFBIG, "image_size", "%llu images of %dx%dx%d need %llu bytes, more "
                     "than the %llu allowed", (unsigned long long)(n_split[0] + n_split[1]),
                     o->image_h, o->image_w, channels, (unsigned long long)bytes,
                     (unsigned long long)o->max_total_bytes);
        goto out;
    }
    const struct import_layout l = {
        .dtype = TENSORFILE_DTYPE_UINT8, .h = o->image_h, .w = o->image_w, .c = channels,
        .n = {n_split[0], n_split[1]}, .labels = {labels[0], labels[1]},
        .classes = f.n_classes, .names = (const char *const *)f.classes,
    };
    struct decode_ctx cx = {src_path, o, &f, channels};
    e = import_write(dir, relpath, &l, decode_all, &cx, &ret->info, d);
    if (e == 0)
        ret->skipped = f.skipped;
out:
    free(labels[0]);
    free(labels[1]);
    folder_free(&f);
    return e;
}
