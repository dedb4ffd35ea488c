/* fuzz_tensorfile.c - the flat tensor file's checks (core/tensorfile.c:
 * tensorfile_check), which stand between a damaged file and training.
 *
 * Input: the file.  An accepted file must have its regions inside it, every
 * label below the class count and the class names where the header says;
 * a file of float targets (version 2) no classes and every target finite. */
#include <math.h>

#include "fuzz.h"
#include "tensorfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy with the alignment a mapping has */
    void *buf = NULL;
    FUZZ_CHECK(posix_memalign(&buf, 4096, size ? size : 1) == 0);
    memcpy(buf, data, size);
    struct tensorfile_info info;
    struct diag d = {{0}, {0}};
    if (tensorfile_check(&info, buf, size, &d) < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        free(buf);
        return 0;
    }
    size_t ex = tensorfile_example_bytes(&info), ey = tensorfile_target_bytes(&info);
    FUZZ_CHECK(info.y_width == 0 || info.classes == 0);
    for (int s = 0; s < 2; s++) {
        FUZZ_CHECK(info.x_off[s] + info.n[s] * ex <= size);
        FUZZ_CHECK(info.y_off[s] + info.n[s] * ey <= size);
        for (uint64_t i = 0; info.y_width == 0 && i < info.n[s]; i++)
            FUZZ_CHECK(((const uint8_t *)buf)[info.y_off[s] + i] < info.classes);
        for (uint64_t i = 0; i < info.n[s] * (uint64_t)info.y_width; i++) {
            float v;
            memcpy(&v, (const uint8_t *)buf + info.y_off[s] + i * sizeof(float), sizeof(v));
            FUZZ_CHECK(isfinite(v));
        }
    }
    for (int k = 0; k < info.classes; k++) {
        const char *name = tensorfile_class_name(&info, buf, k);
        FUZZ_CHECK(name >= (const char *)buf + info.names_off &&
                   name < (const char *)buf + size && name[0] != '\0');
    }
    free(buf);
    return 0;
}
