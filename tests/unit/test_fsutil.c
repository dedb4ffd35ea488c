/* test_fsutil.c - atomic writes (every step failed on purpose), path
 * confinement, copies and SHA-256 of core/fsutil. */
#include "fsutil.h"
#include "test.h"
#include "test_tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static int file_equals(const char *path, const void *data, size_t len)
{
    void *buf;
    size_t n;
    if (fsutil_read_file(path, 1 << 20, &buf, &n, NULL) < 0)
        return 0;
    int eq = n == len && memcmp(buf, data, len) == 0;
    free(buf);
    return eq;
}

static void test_sha256_vectors(void)
{
    uint8_t sha[32];
    char hex[65];
    fsutil_sha256("abc", 3, sha);
    fsutil_sha256_hex(sha, hex);
    CHECK_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fsutil_sha256("", 0, sha);
    fsutil_sha256_hex(sha, hex);
    CHECK_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_write_nested_and_sha(void)
{
    static char data[200000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + (i >> 9));
    uint8_t sha[32], sha_file[32], sha_mem[32];
    struct diag d = {{0}, {0}};
    int r = fsutil_write_file_atomic(tmpdir, "a/b/c/file.bin", data, sizeof(data), sha, NULL, &d);
    CHECK_MSG(r == 0, "%s", d.message);
    char path[1024];
    snprintf(path, sizeof(path), "%s/a/b/c/file.bin", tmpdir);
    CHECK(file_equals(path, data, sizeof(data)));
    uint64_t bytes = 0;
    CHECK_INT_EQ(fsutil_sha256_file(path, sha_file, &bytes, &d), 0);
    CHECK_INT_EQ(bytes, sizeof(data));
    fsutil_sha256(data, sizeof(data), sha_mem);
    CHECK(memcmp(sha, sha_file, 32) == 0);
    CHECK(memcmp(sha, sha_mem, 32) == 0);
    struct stat st;
    snprintf(path, sizeof(path), "%s/a/b", tmpdir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK_INT_EQ(test_tmpdir_count_temp(tmpdir), 0);
}

static void test_faults_keep_previous(void)
{
    const char *old = "previous contents\n", *new_data = "new contents, longer than before\n";
    char path[1024];
    snprintf(path, sizeof(path), "%s/dir/f.txt", tmpdir);
    CHECK_INT_EQ(fsutil_write_file_atomic(tmpdir, "dir/f.txt", old, strlen(old), NULL, NULL, NULL), 0);
    for (int s = FSUTIL_STEP_CREATE; s <= FSUTIL_STEP_RENAME; s++) {
        struct diag d = {{0}, {0}};
        fsutil_inject_fault((enum fsutil_step)s, EIO);
        enum fsutil_step failed = FSUTIL_STEP_COUNT;
        int r = fsutil_write_file_atomic(tmpdir, "dir/f.txt", new_data, strlen(new_data), NULL,
                                         &failed, &d);
        CHECK_MSG(r == -EIO, "step %s: r=%d", fsutil_step_name((enum fsutil_step)s), r);
        CHECK_INT_EQ((int)failed, s);
        CHECK_MSG(strncmp(d.message, fsutil_step_name((enum fsutil_step)s),
                          strlen(fsutil_step_name((enum fsutil_step)s))) == 0,
                  "step %s: message '%s'", fsutil_step_name((enum fsutil_step)s), d.message);
        CHECK_MSG(file_equals(path, old, strlen(old)), "step %s changed the file",
                  fsutil_step_name((enum fsutil_step)s));
        CHECK_INT_EQ(test_tmpdir_count_temp(tmpdir), 0);
    }
    /* After the rename: the new file is complete, the error still reported. */
    struct diag d = {{0}, {0}};
    fsutil_inject_fault(FSUTIL_STEP_FSYNC_DIR, ENOSPC);
    enum fsutil_step failed = FSUTIL_STEP_COUNT;
    int r = fsutil_write_file_atomic(tmpdir, "dir/f.txt", new_data, strlen(new_data), NULL, &failed,
                                     &d);
    CHECK_INT_EQ(r, -ENOSPC);
    CHECK_INT_EQ((int)failed, FSUTIL_STEP_FSYNC_DIR);
    CHECK(strstr(d.message, "fsync dir") != NULL);
    CHECK(file_equals(path, new_data, strlen(new_data)));
    CHECK_INT_EQ(test_tmpdir_count_temp(tmpdir), 0);
    /* A refused path is no step of the write: reported as the write as a whole. */
    failed = FSUTIL_STEP_COUNT;
    CHECK_INT_EQ(fsutil_write_file_atomic(tmpdir, "../out.txt", "x", 1, NULL, &failed, &d), -EINVAL);
    CHECK_INT_EQ((int)failed, FSUTIL_STEP_WRITE);
    /* Faults are one-shot. */
    CHECK_INT_EQ(fsutil_write_file_atomic(tmpdir, "dir/f.txt", old, strlen(old), NULL, NULL, NULL), 0);
    CHECK(file_equals(path, old, strlen(old)));
    /* A real failure: the folder is read-only (skipped as root, who may write anyway). */
    if (geteuid() != 0) {
        char sub[1024];
        snprintf(sub, sizeof(sub), "%s/dir", tmpdir);
        chmod(sub, 0500);
        r = fsutil_write_file_atomic(tmpdir, "dir/f.txt", new_data, strlen(new_data), NULL, NULL, &d);
        CHECK_INT_EQ(r, -EACCES);
        CHECK(strncmp(d.message, "create", 6) == 0);
        chmod(sub, 0700);
        CHECK(file_equals(path, old, strlen(old)));
    }
}

static void test_bad_paths(void)
{
    static const char *const bad[] = {"", "/etc/x", "../x", "a/../x", "a//b", "./x", "a/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct diag d = {{0}, {0}};
        int r = fsutil_write_file_atomic(tmpdir, bad[i], "x", 1, NULL, NULL, &d);
        CHECK_MSG(r == -EINVAL, "'%s' gave %d", bad[i], r);
        CHECK(d.message[0] != '\0');
    }
    /* A symlinked folder cannot be followed out of dir. */
    char outside[600], link[1024], escaped[1024];
    snprintf(outside, sizeof(outside), "%s-outside", tmpdir);
    mkdir(outside, 0700);
    snprintf(link, sizeof(link), "%s/link", tmpdir);
    CHECK(symlink(outside, link) == 0);
    struct diag d = {{0}, {0}};
    int r = fsutil_write_file_atomic(tmpdir, "link/x.h5", "x", 1, NULL, NULL, &d);
    CHECK_MSG(r == -ELOOP || r == -ENOTDIR, "symlink escape gave %d", r);
    snprintf(escaped, sizeof(escaped), "%s/x.h5", outside);
    CHECK(access(escaped, F_OK) != 0);
    test_tmpdir_remove(outside);
}

static void test_copy_and_read(void)
{
    const char *text = "checkpoint bytes";
    uint8_t sha_src[32], sha_copy[32];
    uint64_t bytes = 0;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(fsutil_write_file_atomic(tmpdir, "src/w.h5", text, strlen(text), sha_src, NULL, &d), 0);
    int r = fsutil_copy_file_atomic(tmpdir, "src/w.h5", "last/last.h5", sha_copy, &bytes, NULL, &d);
    CHECK_MSG(r == 0, "%s", d.message);
    CHECK(memcmp(sha_src, sha_copy, 32) == 0);
    CHECK_INT_EQ(bytes, strlen(text));
    char path[1024];
    snprintf(path, sizeof(path), "%s/last/last.h5", tmpdir);
    CHECK(file_equals(path, text, strlen(text)));
    CHECK_INT_EQ(fsutil_copy_file_atomic(tmpdir, "src/missing.h5", "x.h5", NULL, NULL, NULL, &d),
                 -ENOENT);
    void *buf;
    size_t len;
    CHECK_INT_EQ(fsutil_read_file(path, 4, &buf, &len, &d), -EFBIG);
    CHECK_INT_EQ(fsutil_read_file(tmpdir, 100, &buf, &len, &d), -EINVAL);
}

static void test_temp_names(void)
{
    CHECK(fsutil_is_temp_name(".tmp-weights.h5-12-0"));
    CHECK(!fsutil_is_temp_name("weights.h5"));
    CHECK(!fsutil_is_temp_name(".tmp"));
    CHECK(!fsutil_is_temp_name(NULL));
    /* A 255-byte name still gets a temp name within NAME_MAX. */
    char name[256];
    memset(name, 'w', 252);
    memcpy(name + 252, ".h5", 4);
    struct diag d = {{0}, {0}};
    int r = fsutil_write_file_atomic(tmpdir, name, "x", 1, NULL, NULL, &d);
    CHECK_MSG(r == 0, "%s", d.message);
}

static void count_report(void *ctx, const char *relpath, int err)
{
    int *n = ctx;
    if (err == 0 && strstr(relpath, ".tmp-"))
        (*n)++;
}

static void test_remove_temp_files(void)
{
    /* tmpdir/rm/{.tmp-a, keep, sub/.tmp-b, sub/deep/.tmp-c, link -> tmpdir/outside} */
    char root[4096], p[4200];
    snprintf(root, sizeof(root), "%s/rm", tmpdir);
    CHECK_INT_EQ(mkdir(root, 0700), 0);
    const char *dirs[] = {"sub", "sub/deep"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        CHECK_INT_EQ(mkdir(p, 0700), 0);
    }
    const char *files[] = {".tmp-a-1-0", "keep", "sub/.tmp-b-1-0", "sub/deep/.tmp-c-1-0"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        if (fd >= 0)
            close(fd);
    }
    /* a symlinked folder outside, holding a temp name that must survive */
    char outside[4096];
    snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
    CHECK_INT_EQ(mkdir(outside, 0700), 0);
    snprintf(p, sizeof(p), "%s/.tmp-x-1-0", outside);
    int ofd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(ofd >= 0);
    if (ofd >= 0)
        close(ofd);
    snprintf(p, sizeof(p), "%s/link", root);
    CHECK_INT_EQ(symlink(outside, p), 0);
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0);
    int reported = 0;
    /* depth 1: the top folder and sub/, not sub/deep/, never through the symlink */
    CHECK_INT_EQ(fsutil_remove_temp_files(dfd, 1, count_report, &reported), 2);
    CHECK_INT_EQ(reported, 2);
    CHECK(faccessat(dfd, ".tmp-a-1-0", F_OK, 0) != 0);
    CHECK(faccessat(dfd, "sub/.tmp-b-1-0", F_OK, 0) != 0);
    CHECK(faccessat(dfd, "sub/deep/.tmp-c-1-0", F_OK, 0) == 0);
    CHECK(faccessat(dfd, "keep", F_OK, 0) == 0);
    CHECK_INT_EQ(fsutil_remove_temp_files(dfd, 2, NULL, NULL), 1);
    CHECK(faccessat(dfd, "sub/deep/.tmp-c-1-0", F_OK, 0) != 0);
    CHECK_INT_EQ(fsutil_remove_temp_files(dfd, 8, NULL, NULL), 0);
    snprintf(p, sizeof(p), "%s/.tmp-x-1-0", outside);
    CHECK(access(p, F_OK) == 0);
    if (dfd >= 0)
        close(dfd);
}

int main(void)
{
    test_tmpdir_make(tmpdir, sizeof(tmpdir), "fsutil");
    TEST_RUN(test_sha256_vectors);
    TEST_RUN(test_write_nested_and_sha);
    TEST_RUN(test_faults_keep_previous);
    TEST_RUN(test_bad_paths);
    TEST_RUN(test_copy_and_read);
    TEST_RUN(test_temp_names);
    TEST_RUN(test_remove_temp_files);
    test_tmpdir_remove(tmpdir);
    return TEST_EXIT();
}
