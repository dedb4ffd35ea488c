/* fuzz_npy.c - .npy headers (core/npy.c: npy_preamble, npy_parse_header).
 *
 * Input: the start of a .npy file.  An accepted header must describe a
 * simple type, at most NPY_MAX_DIMS dimensions and data_bytes equal to the
 * product of the shape times the item size. */
#include "fuzz.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t total = 0;
    struct diag d = {{0}, {0}};
    if (npy_preamble(data, size, &total, "x", &d) < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    if (total > size)
        return 0;
    struct npy_header h;
    if (npy_parse_header(data, (size_t)total, &h, "x", &d) < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(h.kind == 'u' || h.kind == 'i' || h.kind == 'f');
    FUZZ_CHECK(h.itemsize == 1 || h.itemsize == 2 || h.itemsize == 4 || h.itemsize == 8);
    FUZZ_CHECK(h.ndim >= 0 && h.ndim <= NPY_MAX_DIMS);
    uint64_t count = 1;
    for (int i = 0; i < h.ndim; i++)
        count *= h.shape[i];
    FUZZ_CHECK(h.data_bytes == count * (uint64_t)h.itemsize);
    FUZZ_CHECK(h.header_bytes == total);
    return 0;
}
