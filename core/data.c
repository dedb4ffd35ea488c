/* data.c - image classification data sets loaded into memory as uint8, and
 * tensor files memory-mapped (uint8 or float32).
 *
 * IDX (MNIST, Fashion-MNIST): big-endian header, magic 0x00000803 for images
 * (dims n, rows, cols) and 0x00000801 for labels (dim n), raw or gzip
 * (detected by the 0x1f 0x8b signature, inflated with zlib).  The file must
 * hold exactly the bytes its header describes: a short file is "truncated at
 * byte X", anything after the data (inside or after the gzip stream) is an
 * error too, and the gzip stream must end with a valid CRC.
 *
 * CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (planes R, G, B
 * of 32x32, row-major), converted here to NHWC.
 *
 * Every error names the file and what is wrong; *ret is written only on
 * success, so nothing is ever partially loaded. */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tensorfile.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_SIDE_MAX 65536
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + 3 * CIFAR_PIXELS)
#define CIFAR_RECORDS_PER_FILE 10000
#define CIFAR_TRAIN_FILES 5
#define READ_CHUNK (1 << 16)
/* deflate cannot expand data by more than about 1032:1 */
#define GZIP_RATIO_MAX 1100

/* --- a file read sequentially, raw or gzip ------------------------------------ */

struct reader {
    const char *path;
    struct diag *d;
    int fd;
    off_t size;            /* bytes on disk */
    bool gz;
    bool zs_ready;
    bool gz_member_end;    /* inflate reached the end of a gzip member */
    bool in_eof;
    z_stream zs;
    uint64_t in_off;       /* file bytes consumed so far */
    uint64_t pos;          /* data bytes delivered so far */
    unsigned char in[READ_CHUNK];
    size_t in_len, in_pos; /* raw: buffered bytes not yet delivered */
};

static int read_full(int fd, unsigned char *buf, size_t n, size_t *ret_got)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *ret_got = got;
    return 0;
}

static int reader_fail(struct reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reader_fail(struct reader *r, int err, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return diag_set(r->d, err, r->path, "%s: %s", r->path, msg);
}

/* Fill r->in with the next chunk of the file (r->in_len = 0 at end of file). */
static int reader_refill(struct reader *r)
{
    size_t got = 0;
    int err = read_full(r->fd, r->in, sizeof(r->in), &got);
    if (err)
        return reader_fail(r, -EIO, "read: %s", strerror(-err));
    r->in_len = got;
    r->in_pos = 0;
    if (got == 0)
        r->in_eof = true;
    return 0;
}

static void reader_close(struct reader *r)
{
    if (r->zs_ready)
        inflateEnd(&r->zs);
    r->zs_ready = false;
    if (r->fd >= 0)
        close(r->fd); /* read-only: nothing to lose on a close error */
    r->fd = -1;
}

static int reader_open(struct reader *r, const char *path, struct diag *d)
{
    memset(r, 0, sizeof(*r));
    r->path = path;
    r->d = d;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int err = -errno;
        return reader_fail(r, err, "cannot open: %s", strerror(-err));
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        int err = -errno;
        reader_close(r);
        return reader_fail(r, err, "fstat: %s", strerror(-err));
    }
    if (!S_ISREG(st.st_mode)) {
        reader_close(r);
        return reader_fail(r, -EINVAL, "not a regular file");
    }
    r->size = st.st_size;
    if (st.st_size == 0) {
        reader_close(r);
        return reader_fail(r, -EINVAL, "empty file (0 bytes)");
    }
    int err = reader_refill(r);
    if (err) {
        reader_close(r);
        return err;
    }
    if (r->in_len >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b) {
        r->gz = true;
        if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) {
            reader_close(r);
            return reader_fail(r, -ENOMEM, "inflateInit2 failed");
        }
        r->zs_ready = true;
        r->zs.next_in = r->in;
        r->zs.avail_in = (uInt)r->in_len;
    }
    return 0;
}

/* Up to n data bytes into buf; *ret_got < n only at the end of the data. */
static int reader_read(struct reader *r, unsigned char *buf, size_t n, size_t *ret_got)
{
    size_t got = 0;
    if (!r->gz) {
        size_t take = r->in_len - r->in_pos < n ? r->in_len - r->in_pos : n;
        memcpy(buf, r->in + r->in_pos, take);
        r->in_pos += take;
        got = take;
        if (got < n && !r->in_eof) {
            size_t more = 0;
            int err = read_full(r->fd, buf + got, n - got, &more);
            if (err)
                return reader_fail(r, -EIO, "read: %s", strerror(-err));
            got += more;
        }
        r->pos += got;
        *ret_got = got;
        return 0;
    }
    while (got < n) {
        if (r->zs.avail_in == 0 && !r->in_eof) {
            r->in_off += r->in_len;
            int err = reader_refill(r);
            if (err)
                return err;
            r->zs.next_in = r->in;
            r->zs.avail_in = (uInt)r->in_len;
        }
        if (r->gz_member_end) {
            /* after a member: another member, or nothing */
            if (r->zs.avail_in == 0)
                break;
            if (r->zs.next_in[0] == 0x1f && (r->zs.avail_in < 2 || r->zs.next_in[1] == 0x8b)) {
                inflateReset(&r->zs);
                r->gz_member_end = false;
            } else {
                uint64_t at = r->in_off + (uint64_t)(r->zs.next_in - r->in);
                return reader_fail(r, -EINVAL,
                                   "trailing data after the gzip stream at file byte %llu",
                                   (unsigned long long)at);
            }
        }
        size_t want = n - got < (size_t)UINT_MAX ? n - got : (size_t)UINT_MAX;
        r->zs.next_out = buf + got;
        r->zs.avail_out = (uInt)want;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        got += want - r->zs.avail_out;
        if (zr == Z_STREAM_END) {
            r->gz_member_end = true;
        } else if (zr == Z_BUF_ERROR || (zr == Z_OK && r->zs.avail_in == 0 && r->in_eof)) {
            if (r->zs.avail_in == 0 && r->in_eof)
                break; /* input ended inside the gzip stream */
        } else if (zr != Z_OK) {
            return reader_fail(r, zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
                               "corrupt gzip data near data byte %llu: %s",
                               (unsigned long long)(r->pos + got),
                               r->zs.msg ? r->zs.msg : "inflate error");
        }
    }
    r->pos += got;
    *ret_got = got;
    return 0;
}

/* Exactly n bytes, or an error "truncated at byte X expecting Y". */
static int reader_read_exact(struct reader *r, unsigned char *buf, size_t n, uint64_t total,
                             const char *what)
{
    size_t got = 0;
    int err = reader_read(r, buf, n, &got);
    if (err)
        return err;
    if (got < n)
        return reader_fail(r, -EINVAL, "truncated at %sbyte %llu expecting %llu bytes (%s)%s",
                           r->gz ? "uncompressed " : "", (unsigned long long)r->pos,
                           (unsigned long long)total, what,
                           r->gz && !r->gz_member_end ? "; the gzip stream is cut short" : "");
    return 0;
}

/* The data must end here: no more bytes, and a gzip stream must be complete. */
static int reader_expect_end(struct reader *r, uint64_t total)
{
    unsigned char extra;
    size_t got = 0;
    int err = reader_read(r, &extra, 1, &got);
    if (err)
        return err;
    if (got)
        return reader_fail(r, -EINVAL, "trailing data: more than the %llu bytes the header "
                           "describes", (unsigned long long)total);
    if (r->gz && !r->gz_member_end)
        return reader_fail(r, -EINVAL, "truncated gzip stream: the file ends after %llu bytes, "
                           "before the end of the stream and its trailer (CRC-32, length)",
                           (unsigned long long)r->size);
    return 0;
}

/* --- IDX ----------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* One IDX file: images (ndims 3) or labels (ndims 1).  *ret_data is malloc'ed. */
static int idx_read(const char *path, bool images, uint8_t **ret_data, int *ret_n, int *ret_rows,
                    int *ret_cols, struct diag *d)
{
    struct reader *r = malloc(sizeof(*r));
    if (!r)
        return diag_set(d, -ENOMEM, path, "%s: out of memory", path);
    int err = reader_open(r, path, d);
    if (err) {
        free(r);
        return err;
    }
    uint32_t want_magic = images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    int ndims = images ? 3 : 1;
    size_t header_len = 4 + 4 * (size_t)ndims;
    unsigned char hdr[16];
    uint8_t *data = NULL;
    uint64_t n = 0, rows = 1, cols = 1, payload = 0;

    err = reader_read_exact(r, hdr, 4, header_len, "IDX header");
    if (err)
        goto out;
    uint32_t magic = be32(hdr);
    if (magic != want_magic) {
        const char *hint = magic == IDX_IMAGES_MAGIC ? " (this is an IDX images file)"
                           : magic == IDX_LABELS_MAGIC ? " (this is an IDX labels file)"
                                                       : "";
        err = reader_fail(r, -EINVAL, "wrong magic 0x%08x, expected 0x%08x (IDX unsigned byte %s)%s",
                          magic, want_magic, images ? "images, 3 dimensions" : "labels, 1 dimension",
                          hint);
        goto out;
    }
    err = reader_read_exact(r, hdr + 4, header_len - 4, header_len, "IDX header");
    if (err)
        goto out;
    n = be32(hdr + 4);
    if (images) {
        rows = be32(hdr + 8);
        cols = be32(hdr + 12);
    }
    if (n < 1 || n > INT_MAX) {
        err = reader_fail(r, -EINVAL, "the header gives %llu %s (1 to %d supported)",
                          (unsigned long long)n, images ? "images" : "labels", INT_MAX);
        goto out;
    }
    if (rows < 1 || cols < 1 || rows > IDX_SIDE_MAX || cols > IDX_SIDE_MAX) {
        err = reader_fail(r, -EINVAL, "the header gives images of %llu x %llu (sides 1 to %d)",
                          (unsigned long long)rows, (unsigned long long)cols, IDX_SIDE_MAX);
        goto out;
    }
    payload = n * rows * cols; /* < 2^63 */
    uint64_t total = header_len + payload;
    if (!r->gz && (uint64_t)r->size < total) {
        err = reader_fail(r, -EINVAL, "truncated at byte %llu expecting %llu bytes (%llu %s%s)",
                          (unsigned long long)r->size, (unsigned long long)total,
                          (unsigned long long)n, images ? "images" : "labels",
                          images ? " with a 16-byte header" : " with an 8-byte header");
        goto out;
    }
    if (r->gz && total > (uint64_t)r->size * GZIP_RATIO_MAX) {
        err = reader_fail(r, -EINVAL, "truncated: the header describes %llu bytes, more than a "
                          "%lld-byte gzip file can hold", (unsigned long long)total,
                          (long long)r->size);
        goto out;
    }
    if (payload > SIZE_MAX / 2) {
        err = reader_fail(r, -EFBIG, "%llu bytes do not fit in memory", (unsigned long long)payload);
        goto out;
    }
    data = malloc((size_t)payload);
    if (!data) {
        err = reader_fail(r, -ENOMEM, "out of memory for %llu bytes", (unsigned long long)payload);
        goto out;
    }
    err = reader_read_exact(r, data, (size_t)payload, total, images ? "image data" : "label data");
    if (err)
        goto out;
    err = reader_expect_end(r, total);
    if (err)
        goto out;
    if (!images) {
        for (uint64_t i = 0; i < n; i++) {
            if (data[i] >= DATASET_CLASSES) {
                err = reader_fail(r, -EINVAL, "label %u of example %llu (byte %llu) is out of "
                                  "range (must be < %d)", data[i], (unsigned long long)i,
                                  (unsigned long long)(header_len + i), DATASET_CLASSES);
                goto out;
            }
        }
    }
out:
    reader_close(r);
    free(r);
    if (err) {
        free(data);
        return err;
    }
    *ret_data = data;
    *ret_n = (int)n;
    *ret_rows = (int)rows;
    *ret_cols = (int)cols;
    return 0;
}

int dataset_load_idx(struct dataset *ret, const char *images_path, const char *labels_path,
                     struct diag *d)
{
    uint8_t *images = NULL, *labels = NULL;
    int n_images = 0, n_labels = 0, rows = 0, cols = 0, one = 0;
    int err = idx_read(images_path, true, &images, &n_images, &rows, &cols, d);
    if (err)
        return err;
    err = idx_read(labels_path, false, &labels, &n_labels, &one, &one, d);
    if (err) {
        free(images);
        return err;
    }
    if (n_images != n_labels) {
        free(images);
        free(labels);
        return diag_set(d, -EINVAL, labels_path,
                        "counts of images and labels differ: %s has %d images, %s has %d labels",
                        images_path, n_images, labels_path, n_labels);
    }
    ret->n = n_images;
    ret->h = rows;
    ret->w = cols;
    ret->c = 1;
    ret->classes = DATASET_CLASSES;
    ret->pixels = PIXELS_UINT8;
    ret->images = images;
    ret->labels = labels;
    ret->target_width = 0;
    ret->targets = NULL;
    ret->mapping = NULL;
    return 0;
}

static int join_path(char *buf, size_t size, const char *dir, const char *name, struct diag *d)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size)
        return diag_set(d, -ENAMETOOLONG, dir, "%s/%s: path too long", dir, name);
    return 0;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* dir/<base>.gz, else dir/<base>. */
static int idx_find(char *buf, size_t size, const char *dir, const char *base, struct diag *d)
{
    char name[128];
    snprintf(name, sizeof(name), "%s.gz", base);
    int err = join_path(buf, size, dir, name, d);
    if (err || file_exists(buf))
        return err;
    err = join_path(buf, size, dir, base, d);
    if (err || file_exists(buf))
        return err;
    return diag_set(d, -ENOENT, buf, "%s/%s.gz: missing file (nor is there an uncompressed %s)",
                    dir, base, base);
}

int dataset_load_idx_dir(struct dataset *ret, const char *dir, const char *split,
                         struct diag *d)
{
    const char *prefix;
    if (split && strcmp(split, "train") == 0)
        prefix = "train";
    else if (split && strcmp(split, "test") == 0)
        prefix = "t10k";
    else
        return diag_set(d, -EINVAL, "split", "split must be \"train\" or \"test\"");
    char base[64], images[PATH_MAX], labels[PATH_MAX];
    snprintf(base, sizeof(base), "%s-images-idx3-ubyte", prefix);
    int err = idx_find(images, sizeof(images), dir, base, d);
    if (err)
        return err;
    snprintf(base, sizeof(base), "%s-labels-idx1-ubyte", prefix);
    err = idx_find(labels, sizeof(labels), dir, base, d);
    if (err)
        return err;
    return dataset_load_idx(ret, images, labels, d);
}

/* --- CIFAR-10 binary ------------------------------------------------------------- */

/* records (n, 3073) -> images (n, 32, 32, 3) NHWC and labels (n); checks labels. */
static int cifar_convert(const unsigned char *rec, size_t n, uint8_t *images, uint8_t *labels,
                         const char *path, uint64_t first_record, struct diag *d)
{
    for (size_t i = 0; i < n; i++, rec += CIFAR_RECORD) {
        if (rec[0] >= DATASET_CLASSES) {
            uint64_t k = first_record + i;
            return diag_set(d, -EINVAL, path, "%s: label %u of record %llu (byte %llu) is out of "
                            "range (must be < %d)", path, rec[0], (unsigned long long)k,
                            (unsigned long long)(k * CIFAR_RECORD), DATASET_CLASSES);
        }
        labels[i] = rec[0];
        const unsigned char *planes = rec + 1; /* (3, 32, 32) */
        uint8_t *img = images + i * 3 * CIFAR_PIXELS; /* (32, 32, 3) */
        for (int p = 0; p < CIFAR_PIXELS; p++) {
            img[3 * p + 0] = planes[p];
            img[3 * p + 1] = planes[CIFAR_PIXELS + p];
            img[3 * p + 2] = planes[2 * CIFAR_PIXELS + p];
        }
    }
    return 0;
}

/* Open path and check its size; *ret_records = records it holds. */
static int cifar_open(const char *path, int records_per_file, int *ret_fd, long long *ret_records,
                      struct diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        if (err == -ENOENT)
            return diag_set(d, err, path, "%s: missing batch file", path);
        return diag_set(d, err, path, "%s: cannot open: %s", path, strerror(-err));
    }
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        diag_set(d, err, path, "%s: fstat: %s", path, strerror(-err));
    } else if (!S_ISREG(st.st_mode)) {
        err = diag_set(d, -EINVAL, path, "%s: not a regular file", path);
    } else if (st.st_size == 0) {
        err = diag_set(d, -EINVAL, path, "%s: empty file (0 bytes)", path);
    } else if (records_per_file > 0) {
        long long want = (long long)records_per_file * CIFAR_RECORD;
        if (st.st_size < want)
            err = diag_set(d, -EINVAL, path, "%s: truncated at byte %lld expecting %lld bytes "
                           "(%d records of %d bytes)", path, (long long)st.st_size, want,
                           records_per_file, CIFAR_RECORD);
        else if (st.st_size > want)
            err = diag_set(d, -EINVAL, path, "%s: trailing data: %lld bytes, expected %lld "
                           "(%d records of %d bytes)", path, (long long)st.st_size, want,
                           records_per_file, CIFAR_RECORD);
    } else if (st.st_size % CIFAR_RECORD != 0) {
        err = diag_set(d, -EINVAL, path, "%s: truncated at byte %lld expecting %lld bytes "
                       "(record %lld is incomplete; records are %d bytes)", path,
                       (long long)st.st_size,
                       ((long long)st.st_size / CIFAR_RECORD + 1) * CIFAR_RECORD,
                       (long long)st.st_size / CIFAR_RECORD, CIFAR_RECORD);
    }
    if (err) {
        close(fd);
        return err;
    }
    *ret_fd = fd;
    *ret_records = (long long)st.st_size / CIFAR_RECORD;
    return 0;
}

int dataset_load_cifar10_files(struct dataset *ret, const char *const *paths, int n_paths,
                               int records_per_file, struct diag *d)
{
    if (n_paths < 1 || n_paths > 64 || records_per_file < 0)
        return diag_set(d, -EINVAL, "", "invalid CIFAR-10 file list");
    int fds[64];
    long long records[64], total = 0;
    int opened = 0, err = 0;
    uint8_t *images = NULL, *labels = NULL;
    unsigned char *buf = NULL;
    for (; opened < n_paths; opened++) {
        err = cifar_open(paths[opened], records_per_file, &fds[opened], &records[opened], d);
        if (err)
            goto out;
        total += records[opened];
    }
    if (total > INT_MAX) {
        err = diag_set(d, -EFBIG, paths[0], "%lld CIFAR-10 records are too many", total);
        goto out;
    }
    images = malloc((size_t)total * 3 * CIFAR_PIXELS);
    labels = malloc((size_t)total);
    enum { CHUNK_RECORDS = 256 };
    buf = malloc((size_t)CHUNK_RECORDS * CIFAR_RECORD);
    if (!images || !labels || !buf) {
        err = diag_set(d, -ENOMEM, paths[0], "out of memory for %lld CIFAR-10 records", total);
        goto out;
    }
    long long at = 0; /* first record of the current file in the data set */
    for (int f = 0; f < n_paths; f++) {
        for (long long k = 0; k < records[f];) {
            size_t want = (size_t)(records[f] - k < CHUNK_RECORDS ? records[f] - k : CHUNK_RECORDS);
            size_t got = 0;
            int rerr = read_full(fds[f], buf, want * CIFAR_RECORD, &got);
            if (rerr) {
                err = diag_set(d, -EIO, paths[f], "%s: read: %s", paths[f], strerror(-rerr));
                goto out;
            }
            if (got < want * CIFAR_RECORD) { /* shrank since fstat */
                err = diag_set(d, -EINVAL, paths[f], "%s: truncated at byte %lld expecting %lld "
                               "bytes", paths[f], k * CIFAR_RECORD + (long long)got,
                               records[f] * CIFAR_RECORD);
                goto out;
            }
            err = cifar_convert(buf, want, images + (size_t)(at + k) * 3 * CIFAR_PIXELS,
                                labels + at + k, paths[f], (uint64_t)k, d);
            if (err)
                goto out;
            k += (long long)want;
        }
        at += records[f];
    }
out:
    for (int f = 0; f < opened; f++)
        close(fds[f]);
    free(buf);
    if (err) {
        free(images);
        free(labels);
        return err;
    }
    ret->n = (int)total;
    ret->h = CIFAR_SIDE;
    ret->w = CIFAR_SIDE;
    ret->c = 3;
    ret->classes = DATASET_CLASSES;
    ret->pixels = PIXELS_UINT8;
    ret->images = images;
    ret->labels = labels;
    ret->target_width = 0;
    ret->targets = NULL;
    ret->mapping = NULL;
    return 0;
}

int dataset_load_cifar10(struct dataset *ret, const char *dir, const char *split,
                         struct diag *d)
{
    static const char *const train_names[CIFAR_TRAIN_FILES] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
        "data_batch_5.bin",
    };
    static const char *const test_names[1] = {"test_batch.bin"};
    const char *const *names;
    int n;
    if (split && strcmp(split, "train") == 0) {
        names = train_names;
        n = CIFAR_TRAIN_FILES;
    } else if (split && strcmp(split, "test") == 0) {
        names = test_names;
        n = 1;
    } else {
        return diag_set(d, -EINVAL, "split", "split must be \"train\" or \"test\"");
    }
    /* the archive unpacks into cifar-10-batches-bin/: accept its parent too */
    char base[PATH_MAX], probe[PATH_MAX];
    snprintf(base, sizeof(base), "%s", dir);
    int err = join_path(probe, sizeof(probe), dir, names[0], d);
    if (err)
        return err;
    if (!file_exists(probe)) {
        char sub[PATH_MAX];
        if (join_path(sub, sizeof(sub), dir, "cifar-10-batches-bin", d) == 0 &&
            join_path(probe, sizeof(probe), sub, names[0], d) == 0 && file_exists(probe))
            snprintf(base, sizeof(base), "%s", sub);
    }
    char paths[CIFAR_TRAIN_FILES][PATH_MAX];
    const char *ptrs[CIFAR_TRAIN_FILES];
    for (int i = 0; i < n; i++) {
        err = join_path(paths[i], sizeof(paths[i]), base, names[i], d);
        if (err)
            return err;
        ptrs[i] = paths[i];
    }
    return dataset_load_cifar10_files(ret, ptrs, n, CIFAR_RECORDS_PER_FILE, d);
}

/* --- tensor files, memory-mapped ---------------------------------------------------- */

struct dataset_mapping {
    int refs; /* __atomic */
    void *base;
    size_t len;
};

static void mapping_unref(struct dataset_mapping *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        munmap(m->base, m->len);
        free(m);
    }
}

int dataset_map_tensorfile(struct dataset *ret, const char *path, const char *split,
                           struct diag *d)
{
    int s;
    if (split && strcmp(split, "train") == 0)
        s = TENSORFILE_SPLIT_TRAIN;
    else if (split && strcmp(split, "test") == 0)
        s = TENSORFILE_SPLIT_TEST;
    else
        return diag_set(d, -EINVAL, "split", "split must be \"train\" or \"test\"");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_set(d, -errno, path, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < TENSORFILE_HEADER_BYTES) {
        close(fd);
        return diag_set(d, -EINVAL, path, "%s: not a tensor file", path);
    }
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps the file */
    if (base == MAP_FAILED)
        return diag_set(d, -err, path, "%s: mmap: %s", path, strerror(err));
    struct tensorfile_info info;
    struct diag inner = {{0}, {0}};
    int r = tensorfile_check(&info, base, (uint64_t)st.st_size, &inner);
    if (r == 0 && info.n[s] > INT_MAX)
        r = diag_set(&inner, -EFBIG, split, "%llu examples are too many",
                     (unsigned long long)info.n[s]);
    struct dataset_mapping *m = r == 0 ? malloc(sizeof(*m)) : NULL;
    if (r == 0 && !m)
        r = diag_set(&inner, -ENOMEM, "", "out of memory");
    if (r < 0) {
        munmap(base, (size_t)st.st_size);
        return diag_set(d, r, path, "%s: %s: %s", path, inner.field, inner.message);
    }
    madvise(base, (size_t)st.st_size, MADV_RANDOM);
    m->refs = 1;
    m->base = base;
    m->len = (size_t)st.st_size;
    ret->n = (int)info.n[s];
    ret->h = info.h;
    ret->w = info.w;
    ret->c = info.c;
    ret->classes = info.classes;
    ret->pixels = info.dtype == TENSORFILE_DTYPE_FLOAT32 ? PIXELS_FLOAT32 : PIXELS_UINT8;
    ret->images = (uint8_t *)base + info.x_off[s];
    ret->labels = info.y_width ? NULL : (uint8_t *)base + info.y_off[s];
    ret->target_width = info.y_width;
    ret->targets = info.y_width ? (float *)((uint8_t *)base + info.y_off[s]) : NULL;
    ret->mapping = m;
    return 0;
}

/* --- subsets ------------------------------------------------------------------------ */

size_t dataset_example_bytes(const struct dataset *ds)
{
    return (size_t)ds->h * (size_t)ds->w * (size_t)ds->c * pixels_bytes(ds->pixels);
}

void dataset_truncate(struct dataset *ds, int limit)
{
    if (limit <= 0 || limit >= ds->n)
        return;
    ds->n = limit;
    if (ds->mapping)
        return; /* a view: the mapping stays whole */
    size_t example = dataset_example_bytes(ds);
    uint8_t *images = realloc(ds->images, (size_t)limit * example);
    if (images)
        ds->images = images;
    uint8_t *labels = realloc(ds->labels, (size_t)limit);
    if (labels)
        ds->labels = labels;
}

int dataset_split_tail(struct dataset *train, struct dataset *ret_val, double fraction,
                       struct diag *d)
{
    if (!(fraction > 0.0 && fraction < 1.0))
        return diag_set(d, -EINVAL, "validation_split", "validation_split must be in (0, 1), got %g",
                        fraction);
    /* Keras: split_at = int(math.floor(n * (1.0 - validation_split))); the
     * product is >= 0, so truncation is floor */
    int split_at = (int)((double)train->n * (1.0 - fraction));
    if (split_at <= 0 || split_at >= train->n)
        return diag_set(d, -EINVAL, "validation_split",
                        "validation_split %g of %d examples leaves %d for training and %d for "
                        "validation; both must be non-empty", fraction, train->n,
                        split_at < 0 ? 0 : split_at, train->n - (split_at < 0 ? 0 : split_at));
    int n_val = train->n - split_at;
    size_t example = dataset_example_bytes(train);
    struct dataset val = *train;
    val.n = n_val;
    if (train->mapping) {
        __atomic_add_fetch(&train->mapping->refs, 1, __ATOMIC_ACQ_REL);
        val.images = train->images + (size_t)split_at * example;
        val.labels = train->labels ? train->labels + split_at : NULL;
        val.targets =
            train->targets ? train->targets + (size_t)split_at * train->target_width : NULL;
        dataset_truncate(train, split_at);
        *ret_val = val;
        return 0;
    }
    val.images = malloc((size_t)n_val * example);
    val.labels = malloc((size_t)n_val);
    if (!val.images || !val.labels) {
        free(val.images);
        free(val.labels);
        return diag_set(d, -ENOMEM, "validation_split", "out of memory");
    }
    memcpy(val.images, train->images + (size_t)split_at * example, (size_t)n_val * example);
    memcpy(val.labels, train->labels + split_at, (size_t)n_val);
    dataset_truncate(train, split_at);
    *ret_val = val;
    return 0;
}

void dataset_gather(const struct dataset *ds, const uint32_t *idx, int n, void *images,
                    uint8_t *labels, float *targets)
{
    size_t example = dataset_example_bytes(ds), K = (size_t)ds->target_width;
    for (int i = 0; i < n; i++) {
        memcpy((uint8_t *)images + (size_t)i * example, ds->images + (size_t)idx[i] * example,
               example);
        if (ds->targets && targets)
            memcpy(targets + i * K, ds->targets + idx[i] * K, K * sizeof(float));
        else if (ds->labels && labels)
            labels[i] = ds->labels[idx[i]];
    }
}

void dataset_free(struct dataset *ds)
{
    if (!ds)
        return;
    if (ds->mapping) {
        mapping_unref(ds->mapping);
    } else {
        free(ds->images);
        free(ds->labels); /* loaded sets have labels; float targets are always mapped */
    }
    memset(ds, 0, sizeof(*ds));
}
