/* import_cifar.c - the official CIFAR-10 binary tarball
 * (cifar-10-binary.tar.gz: cifar-10-batches-bin/data_batch_1..5.bin,
 * test_batch.bin, batches.meta.txt, readme.html) as it is downloaded.
 *
 * Records are 1 label byte + 3072 pixel bytes (planes R, G, B of 32x32),
 * converted to NHWC.  The official files hold 10000 records each; any whole
 * number of records (>= 1) is accepted so that smaller sets in the same
 * layout import too.  Class names: the non-empty lines of batches.meta.txt
 * (10 of them, as labels are < 10).  Other entries are skipped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "archive_reader.h"
#include "import_internal.h"

#define SIDE 32
#define PIXELS (SIDE * SIDE)
#define RECORD (1 + 3 * PIXELS)
#define CLASSES 10
#define FILES 6 /* data_batch_1..5, test_batch */
#define META_MAX 65536
#define CHUNK_RECORDS 256

static const char *const file_names[FILES] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int file_index(const char *path)
{
    for (int i = 0; i < FILES; i++)
        if (strcmp(base_name(path), file_names[i]) == 0)
            return i;
    return -1;
}

int import_cifar10_meta_names(char *text, const char **names, struct diag *d)
{
    int n = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len > 0) {
            if (n == CLASSES)
                return diag_set(d, -EINVAL, "batches.meta.txt", "more than %d class names",
                                CLASSES);
            if (len > TENSORFILE_NAME_MAX)
                return diag_set(d, -EINVAL, "batches.meta.txt", "class name %d is too long", n);
            names[n++] = line;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (n != CLASSES)
        return diag_set(d, -EINVAL, "batches.meta.txt", "%d class names, expected %d", n,
                        CLASSES);
    return 0;
}

int import_cifar10(const char *src_path, const struct import_options *o, const char *dir,
                   const char *relpath, struct import_result *ret, struct diag *d)
{
    struct archive_reader *r = NULL;
    struct tensorfile_writer *w = NULL;
    uint64_t records[FILES] = {0};
    bool seen[FILES] = {false};
    char *meta = NULL;
    unsigned char *buf = NULL, *img = NULL;
    uint8_t *labels = NULL;
    uint64_t skipped = 0;
    struct archive_item it;
    int e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        return e;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        if (it.is_dir)
            continue;
        int k = it.hidden ? -1 : file_index(it.path);
        if (k < 0) {
            if (!it.hidden && strcmp(base_name(it.path), "batches.meta.txt") == 0) {
                if (meta) {
                    e = diag_set(d, -EINVAL, it.path, "duplicate entry %s", it.path);
                    break;
                }
                size_t len;
                e = archive_reader_read_all(r, META_MAX, (void **)&meta, &len, d);
                if (e < 0)
                    break;
                if (memchr(meta, '\0', len)) {
                    e = diag_set(d, -EINVAL, it.path, "batches.meta.txt is not text");
                    break;
                }
            } else {
                skipped++;
            }
            continue;
        }
        if (seen[k]) {
            e = diag_set(d, -EINVAL, it.path, "duplicate entry %s", it.path);
            break;
        }
        seen[k] = true;
        if (!it.size_known || it.size == 0 || it.size % RECORD != 0) {
            e = diag_set(d, -EINVAL, it.path, "%s: %llu bytes, not a whole number of %d-byte "
                         "records", it.path, (unsigned long long)it.size, RECORD);
            break;
        }
        records[k] = it.size / RECORD;
    }
    archive_reader_close(r);
    r = NULL;
    if (e < 0)
        goto out;
    for (int k = 0; k < FILES; k++) {
        if (!seen[k]) {
            e = diag_set(d, -EINVAL, file_names[k], "the archive has no %s", file_names[k]);
            goto out;
        }
    }
    if (!meta) {
        e = diag_set(d, -EINVAL, "batches.meta.txt", "the archive has no batches.meta.txt");
        goto out;
    }
    const char *names[CLASSES];
    e = import_cifar10_meta_names(meta, names, d);
    if (e < 0)
        goto out;
    uint64_t n_train = 0;
    for (int k = 0; k < FILES - 1; k++)
        n_train += records[k];
    e = tensorfile_writer_begin(&w, dir, relpath, TENSORFILE_DTYPE_UINT8, SIDE, SIDE, 3, n_train,
                                records[FILES - 1], d);
    if (e < 0)
        goto out;
    buf = malloc((size_t)CHUNK_RECORDS * RECORD);
    img = malloc((size_t)CHUNK_RECORDS * 3 * PIXELS);
    labels = malloc(CHUNK_RECORDS);
    if (!buf || !img || !labels) {
        e = diag_set(d, -ENOMEM, "archive", "out of memory");
        goto out;
    }
    e = archive_reader_open(&r, src_path, o->max_total_bytes, o->max_ratio, d);
    if (e < 0)
        goto out;
    while ((e = archive_reader_next(r, &it, d)) == 1) {
        int k = it.is_dir || it.hidden ? -1 : file_index(it.path);
        if (k < 0)
            continue;
        e = 0;
        enum tensorfile_split s = k == FILES - 1 ? TENSORFILE_SPLIT_TEST : TENSORFILE_SPLIT_TRAIN;
        uint64_t first = 0;
        for (int j = 0; s == TENSORFILE_SPLIT_TRAIN && j < k; j++)
            first += records[j];
        for (uint64_t i = 0; i < records[k] && e == 0; i += CHUNK_RECORDS) {
            size_t cnt = records[k] - i < CHUNK_RECORDS ? (size_t)(records[k] - i) : CHUNK_RECORDS;
            e = archive_reader_read_exact(r, buf, cnt * RECORD, "records", d);
            for (size_t q = 0; e == 0 && q < cnt; q++) {
                const unsigned char *rec = buf + q * RECORD;
                if (rec[0] >= CLASSES) {
                    e = diag_set(d, -EINVAL, it.path, "%s: label %u of record %llu is not < %d",
                                 it.path, rec[0], (unsigned long long)(i + q), CLASSES);
                    break;
                }
                labels[q] = rec[0];
                unsigned char *out = img + q * 3 * PIXELS; /* (32, 32, 3) */
                for (int p = 0; p < PIXELS; p++) {
                    out[3 * p + 0] = rec[1 + p];
                    out[3 * p + 1] = rec[1 + PIXELS + p];
                    out[3 * p + 2] = rec[1 + 2 * PIXELS + p];
                }
            }
            if (e == 0)
                e = tensorfile_write_x(w, s, first + i, cnt, img, d);
            if (e == 0)
                e = tensorfile_write_y(w, s, first + i, cnt, labels, d);
        }
        if (e < 0)
            break;
    }
    archive_reader_close(r);
    r = NULL;
    if (e < 0)
        goto out;
    e = tensorfile_writer_commit(w, CLASSES, names, &ret->info, d);
    w = NULL;
    if (e == 0)
        ret->skipped = skipped;
out:
    archive_reader_close(r);
    tensorfile_writer_abort(w);
    free(meta);
    free(buf);
    free(img);
    free(labels);
    return e;
}
