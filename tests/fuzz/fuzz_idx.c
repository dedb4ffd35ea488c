/* fuzz_idx.c - IDX image and label files, raw or gzip (core/data.c:
 * dataset_load_idx, which takes paths).
 *
 * Input: a 4-byte big-endian length L, then L bytes of the images file, then
 * the labels file (L is clamped to what is there).  Both are written to
 * temp files made once per process and rewritten for each input.  An
 * accepted pair must give a consistent data set: n >= 1, sides >= 1, one
 * channel, every label below the class count. */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "data.h"
#include "fuzz.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_file images, labels;
    if (!images.path[0]) {
        FUZZ_CHECK(fuzz_file_init(&images, "idx-images") == 0);
        FUZZ_CHECK(fuzz_file_init(&labels, "idx-labels") == 0);
    }
    size_t split = 0;
    if (size >= 4) {
        split = (size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
        data += 4;
        size -= 4;
    }
    if (split > size)
        split = size;
    FUZZ_CHECK(fuzz_file_write(&images, data, split) == 0);
    FUZZ_CHECK(fuzz_file_write(&labels, data + split, size - split) == 0);

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
