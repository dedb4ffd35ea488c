/* fuzz_file.h - temp files for the targets whose parsers take a path (the
 * data set loaders).  Each file is made once per process (mkostemp in
 * $TMPDIR or /tmp, O_CLOEXEC), rewritten in place for every input and
 * removed at exit. */
#ifndef TRAIND_FUZZ_FILE_H
#define TRAIND_FUZZ_FILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_FILES_MAX 4

struct fuzz_file {
    char path[512]; /* "" until fuzz_file_init */
    int fd;
};

static struct fuzz_file *fuzz_files[FUZZ_FILES_MAX];
static int fuzz_n_files;

static void fuzz_files_remove(void)
{
    for (int i = 0; i < fuzz_n_files; i++) {
        close(fuzz_files[i]->fd);
        unlink(fuzz_files[i]->path);
    }
    fuzz_n_files = 0;
}

static inline int fuzz_file_init(struct fuzz_file *f, const char *tag)
{
    if (fuzz_n_files == FUZZ_FILES_MAX)
        return -ENOSPC;
    const char *dir = getenv("TMPDIR");
    int w = snprintf(f->path, sizeof(f->path), "%s/traind-fuzz-%s-XXXXXX",
                     dir && dir[0] ? dir : "/tmp", tag);
    if (w < 0 || (size_t)w >= sizeof(f->path))
        return -ENAMETOOLONG;
    f->fd = mkostemp(f->path, O_CLOEXEC);
    if (f->fd < 0) {
        f->path[0] = '\0';
        return -errno;
    }
    if (fuzz_n_files == 0 && atexit(fuzz_files_remove) != 0)
        return -ENOMEM;
    fuzz_files[fuzz_n_files++] = f;
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
