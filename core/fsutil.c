/* fsutil.c - atomic file writes (temp, fsync, rename, fsync dir), SHA-256
 * of files with nettle, and the fault hook the tests use to fail each step.
 * See fsutil.h for the contract. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FSUTIL_MAX_COMPONENTS 16
#define FSUTIL_TEMP_NAME_KEEP 200 /* bytes of the final name kept in the temp name */
#define FSUTIL_COPY_MAX_BYTES ((size_t)1 << 34) /* largest file fsutil_copy_file_atomic reads */

static _Atomic int fault_err[FSUTIL_STEP_COUNT];
static _Atomic unsigned long temp_counter;

const char *fsutil_step_name(enum fsutil_step step)
{
    switch (step) {
    case FSUTIL_STEP_ENCODE: return "encode";
    case FSUTIL_STEP_CREATE: return "create";
    case FSUTIL_STEP_WRITE: return "write";
    case FSUTIL_STEP_FSYNC_FILE: return "fsync";
    case FSUTIL_STEP_CLOSE: return "close";
    case FSUTIL_STEP_RENAME: return "rename";
    case FSUTIL_STEP_FSYNC_DIR: return "fsync dir";
    case FSUTIL_STEP_COUNT: break;
    }
    return "unknown";
}

void fsutil_inject_fault(enum fsutil_step step, int err)
{
    if ((int)step < 0 || step >= FSUTIL_STEP_COUNT)
        return;
    atomic_store(&fault_err[step], err < 0 ? -err : err);
}

int fsutil_fault_take(enum fsutil_step step)
{
    if ((int)step < 0 || step >= FSUTIL_STEP_COUNT)
        return 0;
    if (atomic_load(&fault_err[step]) == 0)
        return 0;
    int err = atomic_exchange(&fault_err[step], 0);
    return err ? -err : 0;
}

bool fsutil_is_temp_name(const char *name)
{
    return name && strncmp(name, FSUTIL_TEMP_PREFIX, strlen(FSUTIL_TEMP_PREFIX)) == 0;
}

static int remove_temp_below(int dirfd, const char *prefix, int depth,
                             void (*report)(void *ctx, const char *relpath, int err), void *ctx)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return 0;
    }
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", e->d_name);
        if (fsutil_is_temp_name(e->d_name)) {
            int r = unlinkat(dirfd, e->d_name, 0) == 0 ? 0 : -errno;
            removed += r == 0;
            if (report)
                report(ctx, path, r);
            continue;
        }
        if (depth <= 0)
            continue;
        int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            removed += remove_temp_below(sub, path, depth - 1, report, ctx);
            close(sub);
        }
    }
    closedir(dir);
    return removed;
}

int fsutil_remove_temp_files(int dirfd, int depth,
                             void (*report)(void *ctx, const char *relpath, int err), void *ctx)
{
    return remove_temp_below(dirfd, "", depth, report, ctx);
}

void fsutil_sha256(const void *data, size_t len, uint8_t ret_sha256[FSUTIL_SHA256_BYTES])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret_sha256);
}

void fsutil_sha256_hex(const uint8_t sha256[FSUTIL_SHA256_BYTES], char ret_hex[FSUTIL_SHA256_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < FSUTIL_SHA256_BYTES; i++) {
        ret_hex[2 * i] = digits[sha256[i] >> 4];
        ret_hex[2 * i + 1] = digits[sha256[i] & 15];
    }
    ret_hex[2 * FSUTIL_SHA256_BYTES] = '\0';
}

/* Split relpath into components (copied into buf); validates the path rules. */
static int split_relpath(const char *relpath, char *buf, size_t bufsz, char **comps, int *ret_n,
                         struct diag *d)
{
    if (!relpath || !*relpath)
        return diag_set(d, -EINVAL, "", "empty path");
    if (relpath[0] == '/')
        return diag_set(d, -EINVAL, relpath, "path must be relative");
    size_t len = strlen(relpath);
    if (len + 1 > bufsz)
        return diag_set(d, -ENAMETOOLONG, relpath, "path too long");
    memcpy(buf, relpath, len + 1);
    int n = 0;
    char *p = buf;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
            return diag_set(d, -EINVAL, relpath, "empty, '.' or '..' path component");
        if (strlen(p) > 255)
            return diag_set(d, -ENAMETOOLONG, relpath, "path component longer than 255 bytes");
        if (n == FSUTIL_MAX_COMPONENTS)
            return diag_set(d, -EINVAL, relpath, "too many path components");
        comps[n++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    *ret_n = n;
    return 0;
}

/* Open the folder that will hold relpath's last component, creating missing
 * folders (0700) when create is set.  Returns the dirfd or -errno. */
static int open_parent(const char *dir, char **comps, int n, bool create, const char *relpath,
                       struct diag *d)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return diag_set(d, -errno, dir, "open folder: %s", strerror(errno));
    for (int i = 0; i < n - 1; i++) {
        bool created = false;
        if (create) {
            if (mkdirat(dfd, comps[i], 0700) == 0) {
                created = true;
            } else if (errno != EEXIST) {
                int err = errno;
                close(dfd);
                return diag_set(d, -err, relpath, "mkdir %s: %s", comps[i], strerror(err));
            }
        }
        /* A new folder's own entry is durable once its parent is fsynced. */
        if (created && fsync(dfd) < 0) {
            int err = errno;
            close(dfd);
            return diag_set(d, -err, relpath, "fsync dir: %s", strerror(err));
        }
        int next = openat(dfd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int err = errno;
            close(dfd);
            return diag_set(d, -err, relpath, "open folder %s: %s", comps[i], strerror(err));
        }
        close(dfd);
        dfd = next;
    }
    return dfd;
}

int fsutil_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* err (< 0), with *ret_step (may be NULL) set to the step that failed. */
static int step_failed(enum fsutil_step *ret_step, enum fsutil_step step, int err)
{
    if (ret_step)
        *ret_step = step;
    return err;
}

static int atomic_begin(struct fsutil_atomic *ret, const char *dir, const char *relpath,
                        enum fsutil_step *ret_step, struct diag *d)
{
    char buf[4096];
    char *comps[FSUTIL_MAX_COMPONENTS];
    int n;
    int r = split_relpath(relpath, buf, sizeof(buf), comps, &n, d);
    if (r < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE, r);
    int dfd = open_parent(dir, comps, n, true, relpath, d);
    if (dfd < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE, dfd);
    struct fsutil_atomic a = {.dfd = dfd, .fd = -1};
    snprintf(a.name, sizeof(a.name), "%s", comps[n - 1]);
    snprintf(a.relpath, sizeof(a.relpath), "%s", relpath);
    snprintf(a.tmp, sizeof(a.tmp), FSUTIL_TEMP_PREFIX "%.*s-%ld-%lu", FSUTIL_TEMP_NAME_KEEP,
             a.name, (long)getpid(), atomic_fetch_add(&temp_counter, 1));
    r = fsutil_fault_take(FSUTIL_STEP_CREATE);
    if (r == 0) {
        a.fd = openat(dfd, a.tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        r = a.fd < 0 ? -errno : 0;
    }
    if (r < 0) {
        close(dfd);
        return step_failed(ret_step, FSUTIL_STEP_CREATE,
                           diag_set(d, r, relpath, "%s: %s",
                                    fsutil_step_name(FSUTIL_STEP_CREATE), strerror(-r)));
    }
    *ret = a;
    return 0;
}

int fsutil_atomic_begin(struct fsutil_atomic *ret, const char *dir, const char *relpath,
                        struct diag *d)
{
    return atomic_begin(ret, dir, relpath, NULL, d);
}

void fsutil_atomic_abort(struct fsutil_atomic *a)
{
    if (!a || a->dfd < 0)
        return;
    if (a->fd >= 0)
        close(a->fd);
    unlinkat(a->dfd, a->tmp, 0);
    close(a->dfd);
    a->fd = -1;
    a->dfd = -1;
}

static int atomic_commit(struct fsutil_atomic *a, enum fsutil_step *ret_step, struct diag *d)
{
    enum fsutil_step step = FSUTIL_STEP_FSYNC_FILE;
    bool temp_exists = true;
    int r = fsutil_fault_take(step);
    if (r == 0 && fsync(a->fd) < 0)
        r = -errno;
    if (r < 0)
        goto fail;

    step = FSUTIL_STEP_CLOSE;
    r = fsutil_fault_take(step);
    int cr = close(a->fd);
    a->fd = -1;
    if (r == 0 && cr < 0)
        r = -errno;
    if (r < 0)
        goto fail;

    step = FSUTIL_STEP_RENAME;
    r = fsutil_fault_take(step);
    if (r == 0 && renameat(a->dfd, a->tmp, a->dfd, a->name) < 0)
        r = -errno;
    if (r < 0)
        goto fail;
    temp_exists = false;

    step = FSUTIL_STEP_FSYNC_DIR;
    r = fsutil_fault_take(step);
    if (r == 0 && fsync(a->dfd) < 0)
        r = -errno;
    if (r < 0)
        goto fail;
    close(a->dfd);
    a->dfd = -1;
    return 0;

fail:
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (temp_exists)
        unlinkat(a->dfd, a->tmp, 0);
    close(a->dfd);
    a->dfd = -1;
    return step_failed(ret_step, step,
                       diag_set(d, r, a->relpath, "%s: %s", fsutil_step_name(step), strerror(-r)));
}

int fsutil_atomic_commit(struct fsutil_atomic *a, struct diag *d)
{
    return atomic_commit(a, NULL, d);
}

int fsutil_write_file_atomic(const char *dir, const char *relpath, const void *data, size_t len,
                             uint8_t ret_sha256[FSUTIL_SHA256_BYTES], enum fsutil_step *ret_step,
                             struct diag *d)
{
    struct fsutil_atomic a;
    int r = atomic_begin(&a, dir, relpath, ret_step, d);
    if (r < 0)
        return r;
    r = fsutil_fault_take(FSUTIL_STEP_WRITE);
    if (r == 0)
        r = fsutil_write_all(a.fd, data, len);
    if (r < 0) {
        fsutil_atomic_abort(&a);
        return step_failed(ret_step, FSUTIL_STEP_WRITE,
                           diag_set(d, r, relpath, "%s: %s",
                                    fsutil_step_name(FSUTIL_STEP_WRITE), strerror(-r)));
    }
    r = atomic_commit(&a, ret_step, d);
    if (r < 0)
        return r;
    if (ret_sha256)
        fsutil_sha256(data, len, ret_sha256);
    return 0;
}

/* Read an open fd completely; the buffer gets a trailing NUL. */
static int read_fd(int fd, const char *what, size_t max_bytes, void **ret_data, size_t *ret_len,
                   struct diag *d)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return diag_set(d, -errno, what, "fstat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return diag_set(d, -EINVAL, what, "not a regular file");
    if ((uint64_t)st.st_size > max_bytes)
        return diag_set(d, -EFBIG, what, "file has %lld bytes, limit %zu", (long long)st.st_size,
                        max_bytes);
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap + 1);
    if (!buf)
        return diag_set(d, -ENOMEM, what, "out of memory reading %zu bytes", cap);
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            /* The file may have grown since fstat; stop at max_bytes. */
            char probe;
            ssize_t p = read(fd, &probe, 1);
            if (p == 0)
                break;
            if (p < 0 && errno == EINTR)
                continue;
            if (p < 0) {
                int err = errno;
                free(buf);
                return diag_set(d, -err, what, "read: %s", strerror(err));
            }
            if (cap + 1 > max_bytes) {
                free(buf);
                return diag_set(d, -EFBIG, what, "file larger than %zu bytes", max_bytes);
            }
            size_t ncap = cap * 2 + 4096 > max_bytes ? max_bytes : cap * 2 + 4096;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                return diag_set(d, -ENOMEM, what, "out of memory");
            }
            buf = nb;
            buf[len++] = probe;
            cap = ncap;
            continue;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            free(buf);
            return diag_set(d, -err, what, "read: %s", strerror(err));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *ret_data = buf;
    *ret_len = len;
    return 0;
}

int fsutil_read_file(const char *path, size_t max_bytes, void **ret_data, size_t *ret_len,
                     struct diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_set(d, -errno, path, "open: %s", strerror(errno));
    int r = read_fd(fd, path, max_bytes, ret_data, ret_len, d);
    close(fd);
    return r;
}

int fsutil_sha256_file(const char *path, uint8_t ret_sha256[FSUTIL_SHA256_BYTES], uint64_t *ret_bytes,
                       struct diag *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return diag_set(d, -errno, path, "open: %s", strerror(errno));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint64_t total = 0;
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            close(fd);
            return diag_set(d, -err, path, "read: %s", strerror(err));
        }
        if (r == 0)
            break;
        sha256_update(&ctx, (size_t)r, buf);
        total += (uint64_t)r;
    }
    close(fd);
    if (ret_sha256)
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret_sha256);
    if (ret_bytes)
        *ret_bytes = total;
    return 0;
}

int fsutil_copy_file_atomic(const char *dir, const char *src_relpath, const char *dst_relpath,
                            uint8_t ret_sha256[FSUTIL_SHA256_BYTES], uint64_t *ret_bytes,
                            enum fsutil_step *ret_step, struct diag *d)
{
    char buf[4096];
    char *comps[FSUTIL_MAX_COMPONENTS];
    int n;
    int r = split_relpath(src_relpath, buf, sizeof(buf), comps, &n, d);
    if (r < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE, r);
    int dfd = open_parent(dir, comps, n, false, src_relpath, d);
    if (dfd < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE, dfd);
    int fd = openat(dfd, comps[n - 1], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(dfd);
    if (fd < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE,
                           diag_set(d, -err, src_relpath, "open: %s", strerror(err)));
    void *data;
    size_t len;
    r = read_fd(fd, src_relpath, FSUTIL_COPY_MAX_BYTES, &data, &len, d);
    close(fd);
    if (r < 0)
        return step_failed(ret_step, FSUTIL_STEP_WRITE, r);
    r = fsutil_write_file_atomic(dir, dst_relpath, data, len, ret_sha256, ret_step, d);
    free(data);
    if (r == 0 && ret_bytes)
        *ret_bytes = len;
    return r;
}
