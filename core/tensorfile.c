/* tensorfile.c - the flat tensor file: layout, header parsing and checks,
 * and the writer (fsutil atomic writer + pwrite into the regions).  See
 * tensorfile.h for the format. */
#include "tensorfile.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

#define ALIGN 4096u
#define H_VERSION 8
#define H_DTYPE 12
#define H_H 16
#define H_W 20
#define H_C 24
#define H_CLASSES 28
#define H_N 32        /* 2 x u64 */
#define H_OFFSETS 48  /* x_train, y_train, x_test, y_test, names */
#define H_NAMES_LEN 88
#define H_FILE_BYTES 96
#define H_Y_WIDTH 104 /* version 2 */

struct tensorfile_writer {
    struct fsutil_atomic a;
    struct tensorfile_info info;
};

const char *tensorfile_dtype_name(enum tensorfile_dtype dtype)
{
    return dtype == TENSORFILE_DTYPE_FLOAT32 ? "float32" : "uint8";
}

static size_t dtype_bytes(enum tensorfile_dtype dtype)
{
    return dtype == TENSORFILE_DTYPE_FLOAT32 ? 4 : 1;
}

size_t tensorfile_example_bytes(const struct tensorfile_info *info)
{
    return (size_t)info->h * (size_t)info->w * (size_t)info->c * dtype_bytes(info->dtype);
}

size_t tensorfile_target_bytes(const struct tensorfile_info *info)
{
    return info->y_width > 0 ? (size_t)info->y_width * sizeof(float) : 1;
}

static uint64_t align_up(uint64_t v)
{
    return (v + ALIGN - 1) / ALIGN * ALIGN;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Fill the offsets of info from its sizes (names_len given).  -EFBIG when
 * the sizes overflow. */
static int layout(struct tensorfile_info *info)
{
    uint64_t ex = tensorfile_example_bytes(info), ey = tensorfile_target_bytes(info);
    uint64_t limit = UINT64_C(1) << 50;
    if (info->n[0] > limit / ex || info->n[1] > limit / ex || info->n[0] > limit / ey ||
        info->n[1] > limit / ey)
        return -EFBIG;
    uint64_t at = TENSORFILE_HEADER_BYTES;
    for (int s = 0; s < 2; s++) {
        info->x_off[s] = at;
        at = align_up(at + info->n[s] * ex);
    }
    for (int s = 0; s < 2; s++) {
        info->y_off[s] = at;
        at = align_up(at + info->n[s] * ey);
    }
    info->names_off = at;
    info->file_bytes = at + info->names_len;
    return 0;
}

static bool valid_dims(enum tensorfile_dtype dtype, int h, int w, int c)
{
    return (dtype == TENSORFILE_DTYPE_UINT8 || dtype == TENSORFILE_DTYPE_FLOAT32) && h >= 1 &&
           w >= 1 && c >= 1 && h <= TENSORFILE_MAX_SIDE && w <= TENSORFILE_MAX_SIDE &&
           c <= TENSORFILE_MAX_CHANNELS;
}

int tensorfile_parse_header(struct tensorfile_info *ret, const void *header, uint64_t file_bytes,
                            struct diag *d)
{
    const unsigned char *p = header;
    if (file_bytes < TENSORFILE_HEADER_BYTES)
        return diag_set(d, -EINVAL, "header", "truncated tensor file: %llu bytes, the header "
                        "alone is %d", (unsigned long long)file_bytes, TENSORFILE_HEADER_BYTES);
    if (memcmp(p, TENSORFILE_MAGIC, 8) != 0)
        return diag_set(d, -EINVAL, "header", "not a traind tensor file (wrong magic)");
    uint32_t version = get32(p + H_VERSION);
    if (version != TENSORFILE_VERSION && version != TENSORFILE_VERSION_TARGETS)
        return diag_set(d, -EINVAL, "header", "tensor file version %u, expected %d or %d",
                        version, TENSORFILE_VERSION, TENSORFILE_VERSION_TARGETS);
    struct tensorfile_info info = {
        .dtype = (enum tensorfile_dtype)get32(p + H_DTYPE),
        .h = (int)get32(p + H_H),
        .w = (int)get32(p + H_W),
        .c = (int)get32(p + H_C),
        .classes = (int)get32(p + H_CLASSES),
        .n = {get64(p + H_N), get64(p + H_N + 8)},
        .names_len = get64(p + H_NAMES_LEN),
        .y_width = (int)get32(p + H_Y_WIDTH),
    };
    if (get32(p + H_H) > TENSORFILE_MAX_SIDE || get32(p + H_W) > TENSORFILE_MAX_SIDE ||
        get32(p + H_C) > TENSORFILE_MAX_CHANNELS ||
        !valid_dims(info.dtype, info.h, info.w, info.c))
        return diag_set(d, -EINVAL, "header", "invalid dtype or example shape");
    if (version == TENSORFILE_VERSION_TARGETS) {
        if (get32(p + H_Y_WIDTH) < 1 || get32(p + H_Y_WIDTH) > TENSORFILE_MAX_TARGETS ||
            info.classes != 0 || info.names_len != 0)
            return diag_set(d, -EINVAL, "header", "invalid float target width %u",
                            get32(p + H_Y_WIDTH));
    } else if (get32(p + H_Y_WIDTH) != 0) {
        return diag_set(d, -EINVAL, "header", "a version 1 tensor file with target width %u",
                        get32(p + H_Y_WIDTH));
    } else if (get32(p + H_CLASSES) < 1 || get32(p + H_CLASSES) > TENSORFILE_MAX_CLASSES) {
        return diag_set(d, -EINVAL, "header", "invalid class count %u", get32(p + H_CLASSES));
    }
    if (info.names_len > (uint64_t)TENSORFILE_MAX_CLASSES * (TENSORFILE_NAME_MAX + 1))
        return diag_set(d, -EINVAL, "header", "invalid class names length");
    if (layout(&info) < 0)
        return diag_set(d, -EINVAL, "header", "example counts too large");
    if (get64(p + H_OFFSETS) != info.x_off[0] || get64(p + H_OFFSETS + 8) != info.y_off[0] ||
        get64(p + H_OFFSETS + 16) != info.x_off[1] || get64(p + H_OFFSETS + 24) != info.y_off[1] ||
        get64(p + H_OFFSETS + 32) != info.names_off || get64(p + H_FILE_BYTES) != info.file_bytes)
        return diag_set(d, -EINVAL, "header", "region offsets disagree with the sizes");
    if (info.file_bytes != file_bytes)
        return diag_set(d, -EINVAL, "header", "the file has %llu bytes, its header describes %llu",
                        (unsigned long long)file_bytes, (unsigned long long)info.file_bytes);
    *ret = info;
    return 0;
}

int tensorfile_check(struct tensorfile_info *ret, const void *base, uint64_t file_bytes,
                     struct diag *d)
{
    struct tensorfile_info info;
    int r = tensorfile_parse_header(&info, base, file_bytes, d);
    if (r < 0)
        return r;
    const unsigned char *p = base;
    for (int s = 0; s < 2 && info.y_width > 0; s++) {
        const unsigned char *y = p + info.y_off[s];
        for (uint64_t i = 0; i < info.n[s] * (uint64_t)info.y_width; i++) {
            float v;
            memcpy(&v, y + i * sizeof(float), sizeof(v));
            if (!isfinite(v))
                return diag_set(d, -EINVAL, s ? "y_test" : "y_train",
                                "target %llu of example %llu is not finite",
                                (unsigned long long)(i % (uint64_t)info.y_width),
                                (unsigned long long)(i / (uint64_t)info.y_width));
        }
    }
    for (int s = 0; s < 2 && info.y_width == 0; s++) {
        const unsigned char *y = p + info.y_off[s];
        for (uint64_t i = 0; i < info.n[s]; i++)
            if (y[i] >= info.classes)
                return diag_set(d, -EINVAL, s ? "y_test" : "y_train",
                                "label %u of example %llu is not < %d classes", y[i],
                                (unsigned long long)i, info.classes);
    }
    const char *names = (const char *)p + info.names_off;
    uint64_t at = 0;
    for (int k = 0; k < info.classes; k++) {
        const char *end = memchr(names + at, '\0', info.names_len - at);
        if (!end || end == names + at)
            return diag_set(d, -EINVAL, "names", "class name %d is missing or empty", k);
        at = (uint64_t)(end - names) + 1;
    }
    if (at != info.names_len)
        return diag_set(d, -EINVAL, "names", "bytes after the last class name");
    *ret = info;
    return 0;
}

const char *tensorfile_class_name(const struct tensorfile_info *info, const void *base, int k)
{
    const char *s = (const char *)base + info->names_off;
    for (int i = 0; i < k; i++)
        s += strlen(s) + 1;
    return s;
}

/* --- writer ------------------------------------------------------------------------ */

/* pwrite (write) or pread every byte of [off, off + len), retrying short
 * transfers and EINTR; an early end of file is -EIO. */
static int pio_all(int fd, void *data, size_t len, uint64_t off, bool write)
{
    unsigned char *p = data;
    while (len > 0) {
        size_t want = len > (1u << 30) ? (1u << 30) : len;
        ssize_t n = write ? pwrite(fd, p, want, (off_t)off) : pread(fd, p, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
    return pio_all(fd, (void *)(uintptr_t)data, len, off, true);
}

static int pread_all(int fd, void *data, size_t len, uint64_t off)
{
    return pio_all(fd, data, len, off, false);
}

int tensorfile_writer_begin(struct tensorfile_writer **ret, const char *dir, const char *relpath,
                            enum tensorfile_dtype dtype, int h, int w, int c, uint64_t n_train,
                            uint64_t n_test, struct diag *d)
{
    return tensorfile_writer_begin_targets(ret, dir, relpath, dtype, h, w, c, 0, n_train, n_test,
                                           d);
}

int tensorfile_writer_begin_targets(struct tensorfile_writer **ret, const char *dir,
                                    const char *relpath, enum tensorfile_dtype dtype, int h, int w,
                                    int c, int y_width, uint64_t n_train, uint64_t n_test,
                                    struct diag *d)
{
    if (!valid_dims(dtype, h, w, c))
        return diag_set(d, -EINVAL, "shape", "invalid example shape (%d, %d, %d)", h, w, c);
    if (y_width < 0 || y_width > TENSORFILE_MAX_TARGETS)
        return diag_set(d, -EINVAL, "y_train", "%d targets per example (1 to %d supported)",
                        y_width, TENSORFILE_MAX_TARGETS);
    struct tensorfile_writer *tw = calloc(1, sizeof(*tw));
    if (!tw)
        return diag_set(d, -ENOMEM, relpath, "out of memory");
    tw->info = (struct tensorfile_info){.dtype = dtype, .h = h, .w = w, .c = c,
                                        .n = {n_train, n_test}, .y_width = y_width};
    if (layout(&tw->info) < 0) {
        free(tw);
        return diag_set(d, -EFBIG, "shape", "too many examples");
    }
    int r = fsutil_atomic_begin(&tw->a, dir, relpath, d);
    if (r < 0) {
        free(tw);
        return r;
    }
    /* the regions, sparse until written */
    if (ftruncate(tw->a.fd, (off_t)tw->info.names_off) < 0) {
        r = -errno;
        tensorfile_writer_abort(tw);
        return diag_set(d, r, relpath, "ftruncate: %s", strerror(-r));
    }
    *ret = tw;
    return 0;
}

static int write_region(struct tensorfile_writer *w, uint64_t base, uint64_t n, uint64_t first,
                        uint64_t count, size_t unit, const void *data, const char *what,
                        struct diag *d)
{
    if (first > n || count > n - first)
        return diag_set(d, -EINVAL, what, "examples %llu..%llu outside the %llu of the split",
                        (unsigned long long)first, (unsigned long long)(first + count),
                        (unsigned long long)n);
    int r = pwrite_all(w->a.fd, data, (size_t)(count * unit), base + first * unit);
    if (r < 0)
        return diag_set(d, r, w->a.relpath, "write: %s", strerror(-r));
    return 0;
}

int tensorfile_write_x(struct tensorfile_writer *w, enum tensorfile_split split, uint64_t first,
                       uint64_t count, const void *data, struct diag *d)
{
    return write_region(w, w->info.x_off[split], w->info.n[split], first, count,
                        tensorfile_example_bytes(&w->info), data,
                        split ? "x_test" : "x_train", d);
}

int tensorfile_write_y(struct tensorfile_writer *w, enum tensorfile_split split, uint64_t first,
                       uint64_t count, const uint8_t *labels, struct diag *d)
{
    if (w->info.y_width > 0)
        return diag_set(d, -EINVAL, split ? "y_test" : "y_train", "the file holds float targets");
    return write_region(w, w->info.y_off[split], w->info.n[split], first, count, 1, labels,
                        split ? "y_test" : "y_train", d);
}

int tensorfile_write_targets(struct tensorfile_writer *w, enum tensorfile_split split,
                             uint64_t first, uint64_t count, const float *targets, struct diag *d)
{
    const char *field = split ? "y_test" : "y_train";
    if (w->info.y_width == 0)
        return diag_set(d, -EINVAL, field, "the file holds class labels");
    for (uint64_t i = 0; i < count * (uint64_t)w->info.y_width; i++)
        if (!isfinite(targets[i]))
            return diag_set(d, -EINVAL, field, "%s: target %llu of example %llu is not finite",
                            field, (unsigned long long)(i % (uint64_t)w->info.y_width),
                            (unsigned long long)(first + i / (uint64_t)w->info.y_width));
    return write_region(w, w->info.y_off[split], w->info.n[split], first, count,
                        tensorfile_target_bytes(&w->info), targets, field, d);
}

const struct tensorfile_info *tensorfile_writer_info(const struct tensorfile_writer *w)
{
    return &w->info;
}

/* Read back the labels of both splits and check them against classes. */
static int check_written_labels(struct tensorfile_writer *w, int classes, struct diag *d)
{
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return diag_set(d, -ENOMEM, "labels", "out of memory");
    int r = 0;
    for (int s = 0; s < 2 && r == 0; s++) {
        for (uint64_t i = 0; i < w->info.n[s] && r == 0; i += CHUNK) {
            size_t len = w->info.n[s] - i < CHUNK ? (size_t)(w->info.n[s] - i) : CHUNK;
            r = pread_all(w->a.fd, buf, len, w->info.y_off[s] + i);
            if (r < 0) {
                diag_set(d, r, w->a.relpath, "read back: %s", strerror(-r));
                break;
            }
            for (size_t k = 0; k < len; k++) {
                if (buf[k] >= classes) {
                    r = diag_set(d, -EINVAL, s ? "y_test" : "y_train",
                                 "label %u of example %llu is not < %d classes", buf[k],
                                 (unsigned long long)(i + k), classes);
                    break;
                }
            }
        }
    }
    free(buf);
    return r;
}

int tensorfile_writer_commit(struct tensorfile_writer *w, int classes, const char *const *names,
                             struct tensorfile_info *ret_info, struct diag *d)
{
    int r = 0;
    char *blob = NULL;
    if (w->info.y_width > 0)
        classes = 0; /* float targets: no classes, no names */
    else if (classes < 1 || classes > TENSORFILE_MAX_CLASSES) {
        r = diag_set(d, -EINVAL, "classes", "%d classes (1 to %d supported)", classes,
                     TENSORFILE_MAX_CLASSES);
        goto fail;
    }
    size_t len = 0;
    for (int k = 0; k < classes; k++) {
        size_t l = strlen(names[k]);
        if (l == 0 || l > TENSORFILE_NAME_MAX) {
            r = diag_set(d, -EINVAL, "classes", "class name %d is empty or longer than %d bytes",
                         k, TENSORFILE_NAME_MAX);
            goto fail;
        }
        len += l + 1;
    }
    blob = malloc(len ? len : 1);
    if (!blob) {
        r = diag_set(d, -ENOMEM, "classes", "out of memory");
        goto fail;
    }
    size_t at = 0;
    for (int k = 0; k < classes; k++) {
        size_t l = strlen(names[k]) + 1;
        memcpy(blob + at, names[k], l);
        at += l;
    }
    r = w->info.y_width > 0 ? 0 : check_written_labels(w, classes, d);
    if (r < 0)
        goto fail;
    w->info.classes = classes;
    w->info.names_len = len;
    w->info.file_bytes = w->info.names_off + len;
    unsigned char hdr[TENSORFILE_HEADER_BYTES] = {0};
    memcpy(hdr, TENSORFILE_MAGIC, 8);
    put32(hdr + H_VERSION, w->info.y_width > 0 ? TENSORFILE_VERSION_TARGETS : TENSORFILE_VERSION);
    put32(hdr + H_Y_WIDTH, (uint32_t)w->info.y_width);
    put32(hdr + H_DTYPE, (uint32_t)w->info.dtype);
    put32(hdr + H_H, (uint32_t)w->info.h);
    put32(hdr + H_W, (uint32_t)w->info.w);
    put32(hdr + H_C, (uint32_t)w->info.c);
    put32(hdr + H_CLASSES, (uint32_t)classes);
    put64(hdr + H_N, w->info.n[0]);
    put64(hdr + H_N + 8, w->info.n[1]);
    put64(hdr + H_OFFSETS, w->info.x_off[0]);
    put64(hdr + H_OFFSETS + 8, w->info.y_off[0]);
    put64(hdr + H_OFFSETS + 16, w->info.x_off[1]);
    put64(hdr + H_OFFSETS + 24, w->info.y_off[1]);
    put64(hdr + H_OFFSETS + 32, w->info.names_off);
    put64(hdr + H_NAMES_LEN, len);
    put64(hdr + H_FILE_BYTES, w->info.file_bytes);
    r = len ? pwrite_all(w->a.fd, blob, len, w->info.names_off) : 0;
    if (r == 0)
        r = pwrite_all(w->a.fd, hdr, sizeof(hdr), 0);
    if (r < 0) {
        diag_set(d, r, w->a.relpath, "write: %s", strerror(-r));
        goto fail;
    }
    free(blob);
    r = fsutil_atomic_commit(&w->a, d);
    if (r == 0 && ret_info)
        *ret_info = w->info;
    free(w);
    return r;
fail:
    free(blob);
    tensorfile_writer_abort(w);
    return r;
}

void tensorfile_writer_abort(struct tensorfile_writer *w)
{
    if (!w)
        return;
    fsutil_atomic_abort(&w->a);
    free(w);
}
