/* fuzz_idx.c - IDX image and label files, raw or gzip (core/data.c:
 * dataset_load_idx, which takes paths).
 *
 * Input: a 4-byte big-endian word whose low 30 bits give a length L, then L
 * bytes of the images file, then the labels file (L is clamped to what is
 * there).  Bit 31 (images) and bit 30 (labels) ask the target to gzip that
 * part itself, so that the fuzzer reaches the IDX checks behind valid gzip
 * streams (mutated gzip bytes mostly fail the CRC).  Both files are written
 * to temp files made once per process and rewritten for each input.  An
 * accepted pair must give a consistent data set: n >= 1, sides >= 1, one
 * channel, every label below the class count. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "fuzz.h"
#include "fuzz_file.h"

/* Write data to f, gzip-compressed when gz. */
static void put_file(struct fuzz_file *f, const uint8_t *data, size_t size, bool gz)
{
    if (!gz) {
        FUZZ_CHECK(fuzz_file_write(f, data, size) == 0);
        return;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    FUZZ_CHECK(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&zs, (uLong)size) + 32;
    uint8_t *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)size;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    FUZZ_CHECK(fuzz_file_write(f, out, zs.total_out) == 0);
    deflateEnd(&zs);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_file images, labels;
    if (!images.path[0]) {
        FUZZ_CHECK(fuzz_file_init(&images, "idx-images") == 0);
        FUZZ_CHECK(fuzz_file_init(&labels, "idx-labels") == 0);
    }
    size_t split = 0;
    bool gz_images = false, gz_labels = false;
    if (size >= 4) {
        gz_images = data[0] & 0x80;
        gz_labels = data[0] & 0x40;
        split = (size_t)(data[0] & 0x3f) << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 |
                data[3];
        data += 4;
        size -= 4;
    }
    if (split > size)
        split = size;
    put_file(&images, data, split, gz_images);
    put_file(&labels, data + split, size - split, gz_labels);

    struct dataset ds;
    struct diag d = {{0}, {0}};
    int r = dataset_load_idx(&ds, images.path, labels.path, &d);
    if (r < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(ds.n >= 1 && ds.h >= 1 && ds.w >= 1 && ds.c == 1);
    FUZZ_CHECK(ds.classes >= 1);
    for (int i = 0; i < ds.n; i++)
        FUZZ_CHECK(ds.labels[i] < ds.classes);
    /* The last pixel is there (ASan reports a short allocation). */
    volatile uint8_t last = ds.images[(size_t)ds.n * (size_t)ds.h * (size_t)ds.w - 1];
    (void)last;
    dataset_free(&ds);
    return 0;
}
