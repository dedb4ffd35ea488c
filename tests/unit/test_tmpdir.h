/* test_tmpdir.h - scratch folders for the file tests (test_fsutil,
 * test_h5): a fresh folder below $TRAIND_TEST_TMP (meson sets it to the
 * build folder), recursive removal, and a count of the atomic writer's
 * temp files left anywhere below a folder. */
#ifndef TRAIND_TEST_TMPDIR_H
#define TRAIND_TEST_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

/* Create "<$TRAIND_TEST_TMP or /tmp>/<prefix>-XXXXXX" into out; exits on failure. */
static void test_tmpdir_make(char *out, size_t outsz, const char *prefix)
{
    const char *base = getenv("TRAIND_TEST_TMP");
    snprintf(out, outsz, "%s/%s-XXXXXX", base ? base : "/tmp", prefix);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void test_tmpdir_remove(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[1024];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            test_tmpdir_remove(sub);
        else
            unlink(sub);
    }
    closedir(dir);
    rmdir(path);
}

/* fsutil temp files anywhere below path. */
static int test_tmpdir_count_temp(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[1024];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        n += fsutil_is_temp_name(e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            n += test_tmpdir_count_temp(sub);
    }
    closedir(dir);
    return n;
}

#endif
