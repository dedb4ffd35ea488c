/* fuzz_file.h - temp files for the targets whose parsers take a path (the
 * data set loaders).  Each file is made once per process (mkostemp in
 * $TMPDIR or /tmp, O_CLOEXEC) and unlinked at once; the parser opens it as
 * /proc/self/fd/N, so nothing is left behind however the process ends.  It
 * is rewritten in place for every input. */
#ifndef TRAIND_FUZZ_FILE_H
#define TRAIND_FUZZ_FILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct fuzz_file {
    char path[64]; /* "/proc/self/fd/N"; "" until fuzz_file_init */
    int fd;
};

static inline int fuzz_file_init(struct fuzz_file *f, const char *tag)
{
    char tmp[512];
    const char *dir = getenv("TMPDIR");
    int w = snprintf(tmp, sizeof(tmp), "%s/traind-fuzz-%s-XXXXXX", dir && dir[0] ? dir : "/tmp",
                     tag);
    if (w < 0 || (size_t)w >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (unlink(tmp) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    f->fd = fd;
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", fd);
    return 0;
}

/* Replace the file's content with data[0..size). */
static inline int fuzz_file_write(struct fuzz_file *f, const uint8_t *data, size_t size)
{
    if (ftruncate(f->fd, 0) < 0)
        return -errno;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

#endif
