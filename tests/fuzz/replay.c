/* replay.c - main() for the fuzz targets built without libFuzzer: feeds every
 * regular file of each directory argument (in name order, dot files
 * skipped), and every file argument, to LLVMFuzzerTestOneInput once.  The
 * meson tests fuzz_replay_<target> run it over tests/fuzz/corpus/<target>, so
 * every build (the sanitizer build included) replays the corpora and a
 * crash once found stays fixed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Read the whole file at path into a malloc'ed buffer of exactly its size. */
static int read_file(const char *path, uint8_t **ret_data, size_t *ret_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO; /* shrank while read */
            free(data);
            close(fd);
            return err;
        }
        got += (size_t)n;
    }
    if (close(fd) < 0) {
        int err = -errno;
        free(data);
        return err;
    }
    *ret_data = data;
    *ret_size = size;
    return 0;
}

static int replay_file(const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    int err = read_file(path, &data, &size);
    if (err < 0) {
        fprintf(stderr, "replay: read %s: %s\n", path, strerror(-err));
        return err;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int select_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Replays the regular files of dir; returns how many, or a negative errno. */
static int replay_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, select_entry, alphasort);
    if (n < 0) {
        int err = -errno;
        fprintf(stderr, "replay: scandir %s: %s\n", dir, strerror(errno));
        return err;
    }
    int count = 0, err = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (err == 0 && (w < 0 || (size_t)w >= sizeof(path))) {
            fprintf(stderr, "replay: path too long in %s\n", dir);
            err = -ENAMETOOLONG;
        }
        if (err == 0 && stat(path, &st) < 0) {
            err = -errno;
            fprintf(stderr, "replay: stat %s: %s\n", path, strerror(errno));
        }
        if (err == 0 && S_ISREG(st.st_mode)) {
            err = replay_file(path);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return err < 0 ? err : count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) < 0 ? -1 : 1);
        if (r < 0)
            return 1;
        total += r;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    printf("replayed %d inputs\n", total);
    return 0;
}
