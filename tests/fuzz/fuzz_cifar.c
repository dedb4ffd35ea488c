/* fuzz_cifar.c - CIFAR-10 binary batch files (core/data.c:
 * dataset_load_cifar10_files, which takes paths).
 *
 * Input: the first byte picks records_per_file (0 = any whole number of
 * records, else 1 or 2), the rest is the file, written to a temp file made
 * once per process.  An accepted file must give n records of 32x32x3 with
 * labels below the class count. */
#include "data.h"
#include "fuzz.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_file batch;
    if (!batch.path[0])
        FUZZ_CHECK(fuzz_file_init(&batch, "cifar") == 0);
    int records_per_file = 0;
    if (size > 0) {
        records_per_file = data[0] % 3;
        data++;
        size--;
    }
    FUZZ_CHECK(fuzz_file_write(&batch, data, size) == 0);

    const char *paths[1] = {batch.path};
    struct dataset ds;
    struct diag d = {{0}, {0}};
    int r = dataset_load_cifar10_files(&ds, paths, 1, records_per_file, &d);
    if (r < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(ds.n >= 1 && ds.h == 32 && ds.w == 32 && ds.c == 3);
    FUZZ_CHECK(records_per_file == 0 || ds.n == records_per_file);
    FUZZ_CHECK((size_t)ds.n * 3073 == size);
    for (int i = 0; i < ds.n; i++)
        FUZZ_CHECK(ds.labels[i] < ds.classes);
    /* First pixel of the last record: R plane of the file -> channel 0. */
    FUZZ_CHECK(ds.images[(size_t)(ds.n - 1) * 3072] == data[(size_t)(ds.n - 1) * 3073 + 1]);
    dataset_free(&ds);
    return 0;
}
