/* test_data.c - IDX and CIFAR-10 loaders, validation split, gather
 * (core/data.c).
 *
 * Real Fashion-MNIST from /usr/share/datasets/fashion-mnist is checked against
 * figures computed once, independently, with numpy, in that directory:
 *   /usr/bin/python3 -c "
 *   import gzip, numpy as np
 *   img = lambda p: np.frombuffer(gzip.open(p).read(), np.uint8, offset=16).reshape(-1, 28, 28)
 *   lab = lambda p: np.frombuffer(gzip.open(p).read(), np.uint8, offset=8)
 *   X, y = img('train-images-idx3-ubyte.gz'), lab('train-labels-idx1-ubyte.gz')
 *   T, t = img('t10k-images-idx3-ubyte.gz'), lab('t10k-labels-idx1-ubyte.gz')
 *   print(np.bincount(y), np.bincount(t), int(X.sum(dtype=np.uint64)), int(T.sum(dtype=np.uint64)))
 *   print(y[:10], t[:10], int(X[0].sum()), int(X[-1].sum()), int(T[0].sum()), int(T[-1].sum()))
 *   print(int(X[0, 14, 14]), int(X[123, 10, 20]), np.bincount(y[54000:]))"
 * which printed: 6000 x 10, 1000 x 10, 3431114169, 573469082;
 * [9 0 0 3 0 2 7 2 5 5], [9 2 1 1 6 1 4 6 5 7], 76247, 16684, 33456, 24390;
 * 217, 59, [630 584 602 605 633 591 565 555 616 619].
 *
 * IDX and CIFAR-10 files are generated here in their exact binary formats in a
 * temporary directory, with pixels given by a formula, so every element of
 * the loaded NHWC arrays can be checked; broken variants of each must fail
 * with a message naming the file and the problem, leaving *ret untouched. */
#include "data.h"
#include "tensorfile.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>


static char tmpdir[512];

static void path_in_tmp(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

static bool write_file(const char *name, const void *data, size_t len)
{
    char path[1024];
    path_in_tmp(path, sizeof(path), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, data, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    return ok;
}

/* gzip-compress with zlib's gz* API (the loader uses inflate directly). */
static bool write_gz(const char *name, const void *data, size_t len)
{
    char path[1024];
    path_in_tmp(path, sizeof(path), name);
    gzFile g = gzopen(path, "wb");
    if (!g)
        return false;
    bool ok = gzwrite(g, data, (unsigned)len) == (int)len;
    ok = gzclose(g) == Z_OK && ok;
    return ok;
}

static unsigned char *read_whole(const char *name, size_t *len)
{
    char path[1024];
    path_in_tmp(path, sizeof(path), name);
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint8_t idx_pixel(int i, int y, int x)
{
    return (uint8_t)(i * 31 + y * 7 + x * 3 + 1);
}

/* IDX images (n, rows, cols) with idx_pixel(); *len = header + data. */
static unsigned char *make_idx_images(int n, int rows, int cols, size_t *len)
{
    *len = 16 + (size_t)n * rows * cols;
    unsigned char *b = malloc(*len);
    put_be32(b, 0x00000803);
    put_be32(b + 4, (uint32_t)n);
    put_be32(b + 8, (uint32_t)rows);
    put_be32(b + 12, (uint32_t)cols);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++)
                b[16 + ((size_t)i * rows + y) * cols + x] = idx_pixel(i, y, x);
    return b;
}

static unsigned char *make_idx_labels(int n, size_t *len)
{
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    put_be32(b, 0x00000801);
    put_be32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++)
        b[8 + i] = (unsigned char)((i * 3) % 10);
    return b;
}

static const struct dataset sentinel = {.n = -7, .h = -1, .images = (uint8_t *)&sentinel};

static bool untouched(const struct dataset *ds)
{
    return memcmp(ds, &sentinel, sizeof(*ds)) == 0;
}

/* Load images/labels from tmp and expect failure with err, the message
 * naming `file` and containing `needle`, *ret untouched. */
static void expect_idx_error(const char *images, const char *labels, int err, const char *file,
                             const char *needle)
{
    char ip[1024], lp[1024];
    path_in_tmp(ip, sizeof(ip), images);
    path_in_tmp(lp, sizeof(lp), labels);
    struct dataset ds = sentinel;
    struct diag d = {0};
    int rc = dataset_load_idx(&ds, ip, lp, &d);
    CHECK_MSG(rc == err, "%s + %s: rc %d, want %d (%s)", images, labels, rc, err, d.message);
    CHECK_MSG(untouched(&ds), "%s + %s: *ret was written", images, labels);
    if (rc == 0 && !untouched(&ds))
        dataset_free(&ds);
    CHECK_MSG(strstr(d.message, file) != NULL, "message \"%s\" does not name %s", d.message, file);
    CHECK_MSG(strstr(d.message, needle) != NULL, "message \"%s\" lacks \"%s\"", d.message, needle);
}

static void test_fashion_mnist(void)
{
    struct dataset tr = {0}, te = {0}, val = {0};
    struct diag d = {0};
    int rc = dataset_load_idx_dir(&tr, FASHION_DIR, "train", &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc)
        return;
    CHECK_INT_EQ(tr.n, 60000);
    CHECK(tr.h == 28 && tr.w == 28 && tr.c == 1 && tr.classes == 10);
    int hist[10] = {0};
    uint64_t sum = 0;
    for (int i = 0; i < tr.n; i++)
        hist[tr.labels[i]]++;
    for (size_t i = 0; i < (size_t)tr.n * 784; i++)
        sum += tr.images[i];
    for (int k = 0; k < 10; k++)
        CHECK_INT_EQ(hist[k], 6000);
    /* numpy: X.sum() = 3431114169 (mean 72.94035223214286) */
    CHECK_INT_EQ(sum, 3431114169ull);
    static const int first_labels[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        CHECK_INT_EQ(tr.labels[i], first_labels[i]);
    uint64_t s0 = 0, slast = 0;
    for (int p = 0; p < 784; p++) {
        s0 += tr.images[p];
        slast += tr.images[(size_t)59999 * 784 + p];
    }
    CHECK_INT_EQ(s0, 76247);    /* X[0].sum() */
    CHECK_INT_EQ(slast, 16684); /* X[59999].sum() */
    CHECK_INT_EQ(tr.images[14 * 28 + 14], 217);                  /* X[0, 14, 14] */
    CHECK_INT_EQ(tr.images[(size_t)123 * 784 + 10 * 28 + 20], 59); /* X[123, 10, 20] */

    /* validation_split 0.1: Keras keeps floor(60000 * 0.9) = 54000 */
    rc = dataset_split_tail(&tr, &val, 0.1, &d);
    CHECK_INT_EQ(rc, 0);
    if (rc == 0) {
        CHECK_INT_EQ(tr.n, 54000);
        CHECK_INT_EQ(val.n, 6000);
        int vh[10] = {0};
        for (int i = 0; i < val.n; i++)
            vh[val.labels[i]]++;
        static const int want[10] = {630, 584, 602, 605, 633, 591, 565, 555, 616, 619};
        for (int k = 0; k < 10; k++)
            CHECK_INT_EQ(vh[k], want[k]);
        uint64_t sl = 0;
        for (int p = 0; p < 784; p++)
            sl += val.images[(size_t)5999 * 784 + p];
        CHECK_INT_EQ(sl, 16684); /* the last training image is the last val image */
        dataset_free(&val);
    }
    dataset_free(&tr);

    rc = dataset_load_idx_dir(&te, FASHION_DIR, "test", &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc)
        return;
    CHECK_INT_EQ(te.n, 10000);
    memset(hist, 0, sizeof(hist));
    sum = 0;
    for (int i = 0; i < te.n; i++)
        hist[te.labels[i]]++;
    for (size_t i = 0; i < (size_t)te.n * 784; i++)
        sum += te.images[i];
    for (int k = 0; k < 10; k++)
        CHECK_INT_EQ(hist[k], 1000);
    CHECK_INT_EQ(sum, 573469082ull);
    static const int test_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        CHECK_INT_EQ(te.labels[i], test_labels[i]);
    s0 = slast = 0;
    for (int p = 0; p < 784; p++) {
        s0 += te.images[p];
        slast += te.images[(size_t)9999 * 784 + p];
    }
    CHECK_INT_EQ(s0, 33456);
    CHECK_INT_EQ(slast, 24390);
    dataset_free(&te);

    CHECK_INT_EQ(dataset_load_idx_dir(&te, FASHION_DIR, "validation", &d), -EINVAL);
    CHECK_INT_EQ(dataset_load_idx_dir(&te, tmpdir, "train", &d), -ENOENT);
    CHECK(strstr(d.message, "train-images-idx3-ubyte.gz") != NULL);
}

static void check_idx_content(const struct dataset *ds, int n, int rows, int cols)
{
    CHECK_INT_EQ(ds->n, n);
    CHECK(ds->h == rows && ds->w == cols && ds->c == 1 && ds->classes == 10);
    int bad = 0;
    for (int i = 0; i < ds->n && ds->n == n; i++) {
        bad += ds->labels[i] != (i * 3) % 10;
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++)
                bad += ds->images[((size_t)i * rows + y) * cols + x] != idx_pixel(i, y, x);
    }
    CHECK_INT_EQ(bad, 0);
}

static void test_idx_generated(void)
{
    const int n = 37, rows = 5, cols = 6;
    size_t il, ll;
    unsigned char *img = make_idx_images(n, rows, cols, &il);
    unsigned char *lab = make_idx_labels(n, &ll);
    CHECK(write_file("img.raw", img, il) && write_file("lab.raw", lab, ll));
    CHECK(write_gz("img.gz", img, il) && write_gz("lab.gz", lab, ll));

    struct dataset ds = {0};
    struct diag d = {0};
    char ip[1024], lp[1024], igz[1024], lgz[1024];
    path_in_tmp(ip, sizeof(ip), "img.raw");
    path_in_tmp(lp, sizeof(lp), "lab.raw");
    path_in_tmp(igz, sizeof(igz), "img.gz");
    path_in_tmp(lgz, sizeof(lgz), "lab.gz");
    /* raw, gzip and mixed */
    const char *pairs[][2] = {{ip, lp}, {igz, lgz}, {igz, lp}, {ip, lgz}};
    for (int k = 0; k < 4; k++) {
        int rc = dataset_load_idx(&ds, pairs[k][0], pairs[k][1], &d);
        CHECK_MSG(rc == 0, "%s", d.message);
        if (rc == 0) {
            check_idx_content(&ds, n, rows, cols);
            dataset_free(&ds);
        }
    }

    /* truncated raw images: half of the last image missing */
    CHECK(write_file("img_trunc.raw", img, il - 15));
    expect_idx_error("img_trunc.raw", "lab.raw", -EINVAL, "img_trunc.raw", "truncated at byte 1111 expecting 1126");
    /* truncated inside the header */
    CHECK(write_file("img_hdr.raw", img, 10));
    expect_idx_error("img_hdr.raw", "lab.raw", -EINVAL, "img_hdr.raw", "truncated at byte");
    /* raw with trailing garbage */
    unsigned char *longer = malloc(il + 3);
    memcpy(longer, img, il);
    memcpy(longer + il, "xyz", 3);
    CHECK(write_file("img_trail.raw", longer, il + 3));
    expect_idx_error("img_trail.raw", "lab.raw", -EINVAL, "img_trail.raw", "trailing data");
    /* gzip of a short IDX: the stream is complete, its data too short */
    CHECK(write_gz("img_short.gz", img, il - 30));
    expect_idx_error("img_short.gz", "lab.raw", -EINVAL, "img_short.gz", "truncated at uncompressed byte 1096 expecting 1126");
    /* gzip of a long IDX: data after what the header describes */
    CHECK(write_gz("img_long.gz", longer, il + 3));
    expect_idx_error("img_long.gz", "lab.raw", -EINVAL, "img_long.gz", "trailing data");
    free(longer);

    size_t gl;
    unsigned char *gz = read_whole("img.gz", &gl);
    CHECK(gz != NULL && gl > 40);
    if (gz && gl > 40) {
        /* gzip file cut in the middle of the compressed stream */
        CHECK(write_file("img_cut.gz", gz, gl / 2));
        expect_idx_error("img_cut.gz", "lab.raw", -EINVAL, "img_cut.gz", "truncated");
        /* cut inside the 8-byte CRC/length trailer: all data present, no end */
        CHECK(write_file("img_crc.gz", gz, gl - 4));
        expect_idx_error("img_crc.gz", "lab.raw", -EINVAL, "img_crc.gz", "gzip stream");
        /* garbage after the gzip stream */
        unsigned char *g2 = malloc(gl + 5);
        memcpy(g2, gz, gl);
        memcpy(g2 + gl, "\0\0junk", 5);
        CHECK(write_file("img_gtrail.gz", g2, gl + 5));
        expect_idx_error("img_gtrail.gz", "lab.raw", -EINVAL, "img_gtrail.gz", "after the gzip stream");
        /* a flipped bit in the compressed data: inflate or the CRC check fails */
        memcpy(g2, gz, gl);
        g2[gl / 2] ^= 0x10;
        CHECK(write_file("img_flip.gz", g2, gl));
        expect_idx_error("img_flip.gz", "lab.raw", -EINVAL, "img_flip.gz", "gzip");
        /* two gzip members (cat a.gz b.gz) are one valid stream */
        size_t h1 = 16 + (size_t)rows * cols * 20;
        CHECK(write_gz("part1.gz", img, h1) && write_gz("part2.gz", img + h1, il - h1));
        size_t l1, l2;
        unsigned char *p1 = read_whole("part1.gz", &l1), *p2 = read_whole("part2.gz", &l2);
        unsigned char *cat = malloc(l1 + l2);
        memcpy(cat, p1, l1);
        memcpy(cat + l1, p2, l2);
        CHECK(write_file("img_multi.gz", cat, l1 + l2));
        char mp[1024];
        path_in_tmp(mp, sizeof(mp), "img_multi.gz");
        int rc = dataset_load_idx(&ds, mp, lp, &d);
        CHECK_MSG(rc == 0, "%s", d.message);
        if (rc == 0) {
            check_idx_content(&ds, n, rows, cols);
            dataset_free(&ds);
        }
        free(p1);
        free(p2);
        free(cat);
        free(g2);
    }
    free(gz);

    /* wrong magic: labels given as images, images as labels, garbage */
    expect_idx_error("lab.raw", "lab.raw", -EINVAL, "lab.raw", "wrong magic 0x00000801, expected 0x00000803");
    expect_idx_error("img.raw", "img.gz", -EINVAL, "img.gz", "wrong magic 0x00000803, expected 0x00000801");
    unsigned char bad[64];
    memcpy(bad, img, sizeof(bad));
    put_be32(bad, 0x00000903);
    CHECK(write_file("img_magic.raw", bad, sizeof(bad)));
    expect_idx_error("img_magic.raw", "lab.raw", -EINVAL, "img_magic.raw", "wrong magic 0x00000903");
    /* zero images */
    put_be32(bad, 0x00000803);
    put_be32(bad + 4, 0);
    CHECK(write_file("img_zero.raw", bad, 16));
    expect_idx_error("img_zero.raw", "lab.raw", -EINVAL, "img_zero.raw", "0 images");
    /* counts differ */
    size_t ll2;
    unsigned char *lab2 = make_idx_labels(n - 1, &ll2);
    CHECK(write_file("lab_short.raw", lab2, ll2));
    expect_idx_error("img.raw", "lab_short.raw", -EINVAL, "lab_short.raw", "37 images");
    expect_idx_error("img.raw", "lab_short.raw", -EINVAL, "img.raw", "36 labels");
    free(lab2);
    /* label out of range */
    lab[8 + 12] = 10;
    CHECK(write_file("lab_range.raw", lab, ll));
    expect_idx_error("img.raw", "lab_range.raw", -EINVAL, "lab_range.raw", "label 10 of example 12");
    /* empty and missing files */
    CHECK(write_file("empty.raw", "", 0));
    expect_idx_error("empty.raw", "lab.raw", -EINVAL, "empty.raw", "empty");
    expect_idx_error("img.raw", "empty.raw", -EINVAL, "empty.raw", "empty");
    expect_idx_error("nonexistent.gz", "lab.raw", -ENOENT, "nonexistent.gz", "cannot open");
    /* a directory is not a data file */
    expect_idx_error(".", "lab.raw", -EINVAL, tmpdir, "regular file");

    /* dataset_load_idx_dir prefers .gz, falls back to raw names */
    char dir[1024];
    path_in_tmp(dir, sizeof(dir), "idxdir");
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(write_gz("idxdir/t10k-images-idx3-ubyte.gz", img, il));
    CHECK(write_file("idxdir/t10k-labels-idx1-ubyte", lab, ll)); /* has the bad label */
    int rc = dataset_load_idx_dir(&ds, dir, "test", &d);
    CHECK_INT_EQ(rc, -EINVAL);
    CHECK(strstr(d.message, "t10k-labels-idx1-ubyte") != NULL);
    lab[8 + 12] = (12 * 3) % 10;
    CHECK(write_file("idxdir/t10k-labels-idx1-ubyte", lab, ll));
    rc = dataset_load_idx_dir(&ds, dir, "test", &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        check_idx_content(&ds, n, rows, cols);
        dataset_free(&ds);
    }
    free(img);
    free(lab);
}

/* Every proper prefix of a valid raw or gzip IDX file fails, naming the file,
 * and leaves *ret untouched; so does every single-byte change of the gzip
 * file that zlib notices (the others must load the same bytes: gzip's CRC-32
 * catches every single-byte change of the data). */
static void test_idx_every_truncation(void)
{
    size_t il, ll, gl;
    unsigned char *img = make_idx_images(4, 3, 3, &il);
    unsigned char *lab = make_idx_labels(4, &ll);
    CHECK(write_file("lab4.raw", lab, ll) && write_gz("img4.gz", img, il));
    unsigned char *gz = read_whole("img4.gz", &gl);
    CHECK(gz != NULL);
    if (!gz)
        return;
    char ip[1024], lp[1024];
    path_in_tmp(lp, sizeof(lp), "lab4.raw");
    path_in_tmp(ip, sizeof(ip), "cut.bin");
    int failures = 0, untouched_ok = 0, named = 0, cases = 0;
    for (int kind = 0; kind < 2; kind++) {
        const unsigned char *src = kind ? gz : img;
        size_t len = kind ? gl : il;
        for (size_t cut = 0; cut < len; cut++) {
            CHECK(write_file("cut.bin", src, cut));
            struct dataset ds = sentinel;
            struct diag d = {0};
            int rc = dataset_load_idx(&ds, ip, lp, &d);
            cases++;
            failures += rc == -EINVAL;
            untouched_ok += untouched(&ds);
            named += strstr(d.message, "cut.bin") != NULL &&
                     (strstr(d.message, "truncated") != NULL || strstr(d.message, "empty") != NULL);
            if (rc == 0)
                dataset_free(&ds);
        }
    }
    CHECK_INT_EQ(failures, cases);
    CHECK_INT_EQ(untouched_ok, cases);
    CHECK_INT_EQ(named, cases);

    int loaded = 0, rejected = 0, wrong = 0;
    for (size_t pos = 0; pos < gl; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            unsigned char *m = malloc(gl);
            memcpy(m, gz, gl);
            m[pos] ^= (unsigned char)(1u << bit);
            CHECK(write_file("cut.bin", m, gl));
            free(m);
            struct dataset ds = sentinel;
            struct diag d = {0};
            int rc = dataset_load_idx(&ds, ip, lp, &d);
            if (rc == 0) {
                loaded++;
                /* only header fields zlib does not check (mtime, OS byte, flags) */
                wrong += ds.n != 4 || memcmp(ds.images, img + 16, 36) != 0;
                dataset_free(&ds);
            } else {
                rejected++;
                wrong += !untouched(&ds) || strstr(d.message, "cut.bin") == NULL;
            }
        }
    }
    CHECK_INT_EQ(wrong, 0);
    CHECK(rejected > loaded);
    free(gz);
    free(img);
    free(lab);
}

/* --- CIFAR-10 --------------------------------------------------------------- */

static uint8_t cifar_value(int file, int rec, int ch, int y, int x)
{
    return (uint8_t)(file * 59 + rec * 13 + ch * 101 + y * 3 + x * 5);
}

static uint8_t cifar_label(int file, int rec)
{
    return (uint8_t)((file * 3 + rec) % 10);
}

/* One record in the binary layout: label, then planes R, G, B of 32x32. */
static void cifar_record(unsigned char *r, int file, int rec)
{
    r[0] = cifar_label(file, rec);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                r[1 + ch * 1024 + y * 32 + x] = cifar_value(file, rec, ch, y, x);
}

static bool write_cifar(const char *name, int file, int records)
{
    size_t len = (size_t)records * 3073;
    unsigned char *b = malloc(len);
    for (int i = 0; i < records; i++)
        cifar_record(b + (size_t)i * 3073, file, i);
    bool ok = write_file(name, b, len);
    free(b);
    return ok;
}

/* Element (file, rec) of ds at index i matches the formula, in NHWC. */
static int cifar_mismatches(const struct dataset *ds, int i, int file, int rec)
{
    int bad = ds->labels[i] != cifar_label(file, rec);
    const uint8_t *img = ds->images + (size_t)i * 3072;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int ch = 0; ch < 3; ch++)
                bad += img[(y * 32 + x) * 3 + ch] != cifar_value(file, rec, ch, y, x);
    return bad;
}

static void expect_cifar_error(const char *const *names, int n, int per_file, int err,
                               const char *file, const char *needle)
{
    char paths[8][1024];
    const char *ptrs[8];
    for (int i = 0; i < n; i++) {
        path_in_tmp(paths[i], sizeof(paths[i]), names[i]);
        ptrs[i] = paths[i];
    }
    struct dataset ds = sentinel;
    struct diag d = {0};
    int rc = dataset_load_cifar10_files(&ds, ptrs, n, per_file, &d);
    CHECK_MSG(rc == err, "rc %d, want %d (%s)", rc, err, d.message);
    CHECK(untouched(&ds));
    CHECK_MSG(strstr(d.message, file) != NULL, "message \"%s\" does not name %s", d.message, file);
    CHECK_MSG(strstr(d.message, needle) != NULL, "message \"%s\" lacks \"%s\"", d.message, needle);
}

static void test_cifar_small(void)
{
    const int counts[3] = {3, 5, 1};
    const char *names[3] = {"c0.bin", "c1.bin", "c2.bin"};
    char paths[3][1024];
    const char *ptrs[3];
    for (int f = 0; f < 3; f++) {
        CHECK(write_cifar(names[f], f, counts[f]));
        path_in_tmp(paths[f], sizeof(paths[f]), names[f]);
        ptrs[f] = paths[f];
    }
    struct dataset ds = {0};
    struct diag d = {0};
    int rc = dataset_load_cifar10_files(&ds, ptrs, 3, 0, &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        CHECK(ds.n == 9 && ds.h == 32 && ds.w == 32 && ds.c == 3 && ds.classes == 10);
        int i = 0, bad = 0;
        for (int f = 0; f < 3; f++)
            for (int r = 0; r < counts[f]; r++)
                bad += cifar_mismatches(&ds, i++, f, r);
        CHECK_INT_EQ(bad, 0);
        /* spot check of the plane -> NHWC mapping written out by hand:
         * pixel (y=2, x=7) green of file 1 record 4 is byte 1 + 1024 + 2*32 + 7 */
        CHECK_INT_EQ(ds.images[(size_t)(3 + 4) * 3072 + (2 * 32 + 7) * 3 + 1],
                     (uint8_t)(1 * 59 + 4 * 13 + 101 + 2 * 3 + 7 * 5));
        dataset_free(&ds);
    }
    /* a fixed record count rejects files of another size */
    expect_cifar_error(names, 3, 3, -EINVAL, "c1.bin", "trailing data");
    expect_cifar_error(names, 3, 5, -EINVAL, "c0.bin", "truncated at byte 9219 expecting 15365");

    unsigned char rec[3073 * 2];
    cifar_record(rec, 0, 0);
    cifar_record(rec + 3073, 0, 1);
    rec[3073] = 10; /* label of record 1 */
    CHECK(write_file("c_label.bin", rec, sizeof(rec)));
    const char *lab_names[2] = {"c0.bin", "c_label.bin"};
    expect_cifar_error(lab_names, 2, 0, -EINVAL, "c_label.bin", "label 10 of record 1 (byte 3073)");
    CHECK(write_file("c_cut.bin", rec, 3073 + 100));
    const char *cut_names[1] = {"c_cut.bin"};
    expect_cifar_error(cut_names, 1, 0, -EINVAL, "c_cut.bin", "truncated at byte 3173");
    CHECK(write_file("c_empty.bin", rec, 0));
    const char *empty_names[2] = {"c0.bin", "c_empty.bin"};
    expect_cifar_error(empty_names, 2, 0, -EINVAL, "c_empty.bin", "empty");
    const char *missing_names[2] = {"c0.bin", "c_nope.bin"};
    expect_cifar_error(missing_names, 2, 0, -ENOENT, "c_nope.bin", "missing batch file");
}

/* Real-size batch files (10000 records): test_batch.bin fully written; the
 * five training files sparse (zero records, label 0) with formula records at
 * the start and end of each, so file order and offsets are checked cheaply. */
static void test_cifar_full_size(void)
{
    char dir[1024], path[1200];
    path_in_tmp(dir, sizeof(dir), "cifar/cifar-10-batches-bin");
    char parent[1024];
    path_in_tmp(parent, sizeof(parent), "cifar");
    CHECK(mkdir(parent, 0700) == 0 && mkdir(dir, 0700) == 0);
    CHECK(write_cifar("cifar/cifar-10-batches-bin/test_batch.bin", 9, 10000));

    struct dataset ds = {0};
    struct diag d = {0};
    int rc = dataset_load_cifar10(&ds, parent, "test", &d); /* parent of the archive dir */
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        CHECK_INT_EQ(ds.n, 10000);
        int bad = 0;
        for (int i = 0; i < ds.n; i++)
            bad += cifar_mismatches(&ds, i, 9, i);
        CHECK_INT_EQ(bad, 0);
        dataset_free(&ds);
    }

    unsigned char rec[3073];
    for (int f = 0; f < 5; f++) {
        snprintf(path, sizeof(path), "%s/data_batch_%d.bin", dir, f + 1);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        if (fd < 0)
            return;
        CHECK(ftruncate(fd, (off_t)10000 * 3073) == 0);
        const int at[2] = {0, 9999};
        for (int k = 0; k < 2; k++) {
            cifar_record(rec, f, at[k]);
            CHECK(pwrite(fd, rec, sizeof(rec), (off_t)at[k] * 3073) == (ssize_t)sizeof(rec));
        }
        CHECK(close(fd) == 0);
    }
    rc = dataset_load_cifar10(&ds, dir, "train", &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        CHECK_INT_EQ(ds.n, 50000);
        int bad = 0;
        for (int f = 0; f < 5; f++) {
            bad += cifar_mismatches(&ds, f * 10000, f, 0);
            bad += cifar_mismatches(&ds, f * 10000 + 9999, f, 9999);
            bad += ds.labels[f * 10000 + 5000] != 0 || ds.images[(size_t)(f * 10000 + 5000) * 3072] != 0;
        }
        CHECK_INT_EQ(bad, 0);
        dataset_free(&ds);
    }
    /* a batch one record short, then a missing batch */
    snprintf(path, sizeof(path), "%s/data_batch_4.bin", dir);
    CHECK(truncate(path, (off_t)9999 * 3073) == 0);
    ds = sentinel;
    CHECK_INT_EQ(dataset_load_cifar10(&ds, dir, "train", &d), -EINVAL);
    CHECK(untouched(&ds));
    CHECK(strstr(d.message, "data_batch_4.bin") && strstr(d.message, "expecting 30730000"));
    snprintf(path, sizeof(path), "%s/data_batch_3.bin", dir);
    CHECK(unlink(path) == 0);
    CHECK_INT_EQ(dataset_load_cifar10(&ds, dir, "train", &d), -ENOENT);
    CHECK(untouched(&ds));
    CHECK(strstr(d.message, "data_batch_3.bin") && strstr(d.message, "missing"));
    CHECK_INT_EQ(dataset_load_cifar10(&ds, dir, "val", &d), -EINVAL);
    /* release the big files now */
    for (int f = 1; f <= 5; f++) {
        snprintf(path, sizeof(path), "%s/data_batch_%d.bin", dir, f);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/test_batch.bin", dir);
    CHECK(unlink(path) == 0);
}

/* Fixtures written by tests/fixtures/data/make_fixtures.py with numpy and
 * Python's gzip (FNAME and mtime in the gzip header), not by this code. */
static void test_fixtures(void)
{
    const char *dir = TEST_SOURCE_DIR "/tests/fixtures/data";
    char ip[1024], lp[1024];
    struct dataset ds = {0};
    struct diag d = {0};
    snprintf(ip, sizeof(ip), "%s/tiny-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof(lp), "%s/tiny-labels-idx1-ubyte", dir);
    int rc = dataset_load_idx(&ds, ip, lp, &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        CHECK(ds.n == 3 && ds.h == 4 && ds.w == 5 && ds.c == 1);
        int bad = ds.labels[0] != 7 || ds.labels[1] != 0 || ds.labels[2] != 9;
        for (int i = 0; i < 3; i++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 5; x++)
                    bad += ds.images[(i * 4 + y) * 5 + x] != (i * 40 + y * 9 + x * 2 + 5) % 256;
        CHECK_INT_EQ(bad, 0);
        dataset_free(&ds);
    }
    const char *broken[][3] = {
        {"tiny-images-truncated.gz", "tiny-labels-idx1-ubyte", "tiny-images-truncated.gz: truncated"},
        {"tiny-images-idx3-ubyte.gz", "tiny-labels-out-of-range", "label 10 of example 1"},
        {"tiny-images-idx3-ubyte.gz", "tiny-labels-wrong-magic", "wrong magic 0x00000802"},
    };
    for (int k = 0; k < 3; k++) {
        snprintf(ip, sizeof(ip), "%s/%s", dir, broken[k][0]);
        snprintf(lp, sizeof(lp), "%s/%s", dir, broken[k][1]);
        ds = sentinel;
        CHECK_INT_EQ(dataset_load_idx(&ds, ip, lp, &d), -EINVAL);
        CHECK(untouched(&ds));
        CHECK_MSG(strstr(d.message, broken[k][2]) != NULL, "\"%s\" lacks \"%s\"", d.message,
                  broken[k][2]);
    }

    char cp[1024];
    snprintf(cp, sizeof(cp), "%s/tiny_cifar.bin", dir);
    const char *paths[1] = {cp};
    rc = dataset_load_cifar10_files(&ds, paths, 1, 0, &d);
    CHECK_MSG(rc == 0, "%s", d.message);
    if (rc == 0) {
        CHECK(ds.n == 2 && ds.h == 32 && ds.w == 32 && ds.c == 3);
        int bad = ds.labels[0] != 3 || ds.labels[1] != 9;
        for (int n = 0; n < 2; n++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    for (int c = 0; c < 3; c++)
                        bad += ds.images[((n * 32 + y) * 32 + x) * 3 + c] !=
                               (n * 50 + y * 7 + x * 3 + c * 101) % 256;
        CHECK_INT_EQ(bad, 0);
        dataset_free(&ds);
    }
}

/* --- subsets ---------------------------------------------------------------- */

static void make_seq(struct dataset *ds, int n)
{
    memset(ds, 0, sizeof(*ds));
    ds->n = n;
    ds->h = 2;
    ds->w = 1;
    ds->c = 2;
    ds->classes = 10;
    ds->images = malloc((size_t)n * 4);
    ds->labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++)
            ds->images[i * 4 + j] = (uint8_t)(i * 4 + j);
        ds->labels[i] = (uint8_t)(i % 10);
    }
}

static void test_split_truncate_gather(void)
{
    struct dataset ds, val;
    struct diag d = {0};
    /* Keras split_at = floor(n * (1 - f)): n 10, f 0.25 -> 7 train, 3 val
     * (not floor(10 * 0.25) = 2 val) */
    make_seq(&ds, 10);
    CHECK_INT_EQ(dataset_split_tail(&ds, &val, 0.25, &d), 0);
    CHECK_INT_EQ(ds.n, 7);
    CHECK_INT_EQ(val.n, 3);
    CHECK(val.h == 2 && val.w == 1 && val.c == 2 && val.classes == 10);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        bad += val.labels[i] != (7 + i) % 10;
        for (int j = 0; j < 4; j++)
            bad += val.images[i * 4 + j] != (7 + i) * 4 + j;
    }
    for (int i = 0; i < 7; i++)
        bad += ds.labels[i] != i || ds.images[i * 4 + 3] != i * 4 + 3;
    CHECK_INT_EQ(bad, 0);
    dataset_free(&val);
    /* n 7, f 0.01 -> floor(6.93) = 6 train, 1 val */
    CHECK_INT_EQ(dataset_split_tail(&ds, &val, 0.01, &d), 0);
    CHECK(ds.n == 6 && val.n == 1 && val.labels[0] == 6 && val.images[0] == 24);
    dataset_free(&val);
    /* invalid fractions and splits leaving a side empty change nothing */
    const double badf[] = {0.0, 1.0, -0.5, 1.5, NAN};
    for (size_t k = 0; k < sizeof(badf) / sizeof(badf[0]); k++) {
        val = sentinel;
        CHECK_INT_EQ(dataset_split_tail(&ds, &val, badf[k], &d), -EINVAL);
        CHECK(ds.n == 6 && untouched(&val));
    }
    CHECK_INT_EQ(dataset_split_tail(&ds, &val, 0.999, &d), -EINVAL); /* floor(0.006) = 0 train */
    CHECK(strstr(d.message, "0 for training") != NULL);
    CHECK(ds.n == 6);

    /* truncate keeps the head; limit <= 0 or >= n is a no-op */
    dataset_truncate(&ds, 0);
    CHECK_INT_EQ(ds.n, 6);
    dataset_truncate(&ds, 100);
    CHECK_INT_EQ(ds.n, 6);
    dataset_truncate(&ds, 4);
    CHECK(ds.n == 4 && ds.labels[3] == 3 && ds.images[15] == 15);

    /* gather */
    const uint32_t idx[5] = {3, 0, 3, 2, 1};
    uint8_t images[5 * 4], labels[5];
    dataset_gather(&ds, idx, 5, images, labels, NULL);
    bad = 0;
    for (int i = 0; i < 5; i++) {
        bad += labels[i] != idx[i];
        for (int j = 0; j < 4; j++)
            bad += images[i * 4 + j] != idx[i] * 4 + (uint32_t)j;
    }
    CHECK_INT_EQ(bad, 0);
    dataset_free(&ds);
    CHECK(ds.images == NULL && ds.n == 0);
    dataset_free(NULL);
}

/* A tensor file of float regression targets (version 2): written, mapped
 * (targets, no labels, no classes), split into views and gathered by index;
 * a non-finite target is refused by the writer. */
static void test_float_targets(void)
{
    enum { N = 6, NT = 2, K = 3 };
    struct diag d = {0};
    struct tensorfile_writer *w = NULL;
    float x[(N + NT) * 2], y[(N + NT) * K];
    for (int i = 0; i < (N + NT) * 2; i++)
        x[i] = 0.5f * (float)i;
    for (int i = 0; i < (N + NT) * K; i++)
        y[i] = (float)i / 8.0f - 1.0f;
    CHECK_INT_EQ(tensorfile_writer_begin_targets(&w, tmpdir, "reg.tensor",
                                                 TENSORFILE_DTYPE_FLOAT32, 1, 2, 1, K, N, NT, &d),
                 0);
    if (!w)
        return;
    CHECK_INT_EQ(tensorfile_write_x(w, TENSORFILE_SPLIT_TRAIN, 0, N, x, &d), 0);
    CHECK_INT_EQ(tensorfile_write_x(w, TENSORFILE_SPLIT_TEST, 0, NT, x + N * 2, &d), 0);
    CHECK_INT_EQ(tensorfile_write_y(w, TENSORFILE_SPLIT_TRAIN, 0, N, (const uint8_t *)"abcdef",
                                    &d), -EINVAL); /* no class labels in this file */
    float bad[K] = {0.0f, INFINITY, 1.0f};
    CHECK_INT_EQ(tensorfile_write_targets(w, TENSORFILE_SPLIT_TRAIN, 4, 1, bad, &d), -EINVAL);
    CHECK(strstr(d.message, "target 1 of example 4 is not finite") != NULL);
    CHECK_INT_EQ(tensorfile_write_targets(w, TENSORFILE_SPLIT_TRAIN, 0, N, y, &d), 0);
    CHECK_INT_EQ(tensorfile_write_targets(w, TENSORFILE_SPLIT_TEST, 0, NT, y + N * K, &d), 0);
    struct tensorfile_info info;
    CHECK_INT_EQ(tensorfile_writer_commit(w, 0, NULL, &info, &d), 0);
    CHECK(info.y_width == K && info.classes == 0 && info.names_len == 0);

    char path[600];
    snprintf(path, sizeof(path), "%s/reg.tensor", tmpdir);
    struct dataset ds = {0}, test = {0}, val = {0};
    CHECK_MSG(dataset_map_tensorfile(&ds, path, "train", &d) == 0, "%s", d.message);
    CHECK_MSG(dataset_map_tensorfile(&test, path, "test", &d) == 0, "%s", d.message);
    CHECK(ds.n == N && ds.classes == 0 && ds.target_width == K && !ds.labels && ds.targets);
    CHECK(ds.pixels == PIXELS_FLOAT32 && test.n == NT && test.targets);
    if (!ds.targets || !test.targets) {
        dataset_free(&ds);
        dataset_free(&test);
        unlink(path);
        return;
    }
    CHECK(memcmp(ds.targets, y, sizeof(float) * N * K) == 0);
    CHECK(memcmp(test.targets, y + N * K, sizeof(float) * NT * K) == 0);
    /* validation_split 0.5: the tail's targets */
    CHECK_INT_EQ(dataset_split_tail(&ds, &val, 0.5, &d), 0);
    CHECK(ds.n == 3 && val.n == 3 && val.targets == ds.targets + 3 * K && !val.labels);
    const uint32_t idx[3] = {2, 0, 2};
    float images[3 * 2], targets[3 * K];
    dataset_gather(&ds, idx, 3, images, NULL, targets);
    int mismatches = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < K; j++)
            mismatches += targets[i * K + j] != y[idx[i] * K + (uint32_t)j];
        for (int j = 0; j < 2; j++)
            mismatches += images[i * 2 + j] != x[idx[i] * 2 + (uint32_t)j];
    }
    CHECK_INT_EQ(mismatches, 0);
    dataset_free(&val);
    dataset_free(&ds);
    dataset_free(&test);
    unlink(path);
}

static void remove_tree(const char *dir)
{
    /* only files this test created: flat names plus two subdirectories */
    static const char *const names[] = {
        "img.raw", "lab.raw", "img.gz", "lab.gz", "img_trunc.raw", "img_hdr.raw",
        "img_trail.raw", "img_short.gz", "img_long.gz", "img_cut.gz", "img_crc.gz",
        "img_gtrail.gz", "img_flip.gz", "part1.gz", "part2.gz", "img_multi.gz",
        "img_magic.raw", "img_zero.raw", "lab4.raw", "img4.gz", "cut.bin", "lab_short.raw", "lab_range.raw", "empty.raw",
        "idxdir/t10k-images-idx3-ubyte.gz", "idxdir/t10k-labels-idx1-ubyte", "idxdir",
        "c0.bin", "c1.bin", "c2.bin", "c_label.bin", "c_cut.bin", "c_empty.bin",
        "cifar/cifar-10-batches-bin", "cifar",
    };
    char path[1024];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    rmdir(dir);
}

int main(void)
{
    const char *base = getenv("TRAIND_TEST_TMP");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_data.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_fashion_mnist);
    TEST_RUN(test_idx_generated);
    TEST_RUN(test_idx_every_truncation);
    TEST_RUN(test_cifar_small);
    TEST_RUN(test_cifar_full_size);
    TEST_RUN(test_fixtures);
    TEST_RUN(test_split_truncate_gather);
    TEST_RUN(test_float_targets);
    remove_tree(tmpdir);
    return TEST_EXIT();
}
