/* fuzz_import.c - the data set importers end to end (core/import.c and
 * what it dispatches to: libarchive behind archive_reader.c, npz, image
 * folders with PNG/JPEG decoding, the CIFAR-10 tarball, HDF5), via a temp
 * file.
 *
 * Input: the uploaded file (format sniffed; images imported at 4x4 to stay
 * fast; 16 MiB limit).  An accepted import must leave exactly one tensor
 * file that tensorfile_check accepts with the counts the result gives; a
 * refused one must leave nothing. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_file.h"
#include "import.h"

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_file src;
    static char out[512];
    if (!src.path[0]) {
        FUZZ_CHECK(fuzz_file_init(&src, "import") == 0);
        const char *tmp = getenv("TMPDIR");
        snprintf(out, sizeof(out), "%s/traind-fuzz-import-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        FUZZ_CHECK(mkdtemp(out) != NULL);
    }
    FUZZ_CHECK(fuzz_file_write(&src, data, size) == 0);
    struct import_options o;
    import_options_init(&o);
    o.image_h = o.image_w = 4;
    o.max_total_bytes = 16u << 20;
    struct import_result res;
    struct diag d = {{0}, {0}};
    int r = import_dataset(src.path, &o, out, "t.tensor", &res, &d);
    if (r < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        FUZZ_CHECK(entries(out) == 0);
        return 0;
    }
    FUZZ_CHECK(entries(out) == 1);
    char path[600];
    snprintf(path, sizeof(path), "%s/t.tensor", out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    struct stat st;
    FUZZ_CHECK(fstat(fd, &st) == 0);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    FUZZ_CHECK(map != MAP_FAILED);
    struct tensorfile_info info;
    FUZZ_CHECK(tensorfile_check(&info, map, (uint64_t)st.st_size, &d) == 0);
    FUZZ_CHECK(info.n[0] == res.info.n[0] && info.n[1] == res.info.n[1]);
    FUZZ_CHECK(info.classes == res.info.classes);
    munmap(map, (size_t)st.st_size);
    close(fd);
    FUZZ_CHECK(unlink(path) == 0);
    return 0;
}
