/* fsutil.h - atomic file writes and SHA-256 of files.
 *
 * An atomic write (redis rdbSave style) creates a temp file next to the
 * final one, named ".tmp-<name>-<pid>-<counter>", writes it, fsyncs it,
 * closes it, renames it over the final name and fsyncs the folder.  Any
 * failure before the rename removes the temp file and leaves the previous
 * file untouched; the writers return the step that failed (ret_step, an
 * enum fsutil_step) and d->message names it ("create", "write", "fsync",
 * "close", "rename", "fsync dir") with the errno text.  A failure that is
 * none of the steps (relpath refused, a parent folder not created) is
 * reported as FSUTIL_STEP_WRITE, the write as a whole.  A failed fsync of the
 * folder happens after the rename: the new, complete and fsynced file is in
 * place but its directory entry may not be durable; the error is still
 * returned so that the caller does not record the file as saved.
 *
 * Paths: dir is an existing folder; relpath is relative (no leading '/', no
 * empty, "." or ".." component); its missing parent folders are created with
 * mode 0700.  Folders are walked with openat(O_NOFOLLOW), so relpath cannot
 * leave dir through a symlink.  Every fd is O_CLOEXEC and closed on return.
 * All functions are thread-safe. */
#ifndef TRAIND_FSUTIL_H
#define TRAIND_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define FSUTIL_TEMP_PREFIX ".tmp-"
#define FSUTIL_SHA256_BYTES 32     /* a SHA-256 digest */
#define FSUTIL_SHA256_HEX_SIZE 65  /* its 64 lowercase hex digits and the NUL */

enum fsutil_step {
    FSUTIL_STEP_ENCODE,     /* building the bytes (h5.c: H5Fclose of the in-memory file) */
    FSUTIL_STEP_CREATE,     /* open(O_CREAT|O_EXCL) of the temp file */
    FSUTIL_STEP_WRITE,
    FSUTIL_STEP_FSYNC_FILE,
    FSUTIL_STEP_CLOSE,
    FSUTIL_STEP_RENAME,
    FSUTIL_STEP_FSYNC_DIR,
    FSUTIL_STEP_COUNT,
};

/* "encode", "create", "write", "fsync", "close", "rename", "fsync dir". */
const char *fsutil_step_name(enum fsutil_step step);

/* Test hook: the next pass through step (in any thread) fails with errno err
 * (> 0).  err 0 clears it. */
void fsutil_inject_fault(enum fsutil_step step, int err);
/* Consume an injected fault for step: returns -err or 0.  Used by writers
 * that perform a step themselves (h5.c for FSUTIL_STEP_ENCODE). */
int fsutil_fault_take(enum fsutil_step step);

/* True for names (last path component) that fsutil uses for temp files; the
 * daemon removes such leftovers at start. */
bool fsutil_is_temp_name(const char *name);

/* Remove the temp files (fsutil_is_temp_name) a killed writer left in the
 * folder dirfd and, up to depth levels down, in its subfolders (symlinks are
 * never followed).  report (may be NULL) is told each relative path and 0 or
 * the negative errno of its removal.  Returns the number removed. */
int fsutil_remove_temp_files(int dirfd, int depth,
                             void (*report)(void *ctx, const char *relpath, int err), void *ctx);

/* Write len bytes atomically to dir/relpath (see above).  ret_sha256 (may be
 * NULL) gets the SHA-256 of the bytes written; ret_step (may be NULL), on
 * failure only, the step that failed. */
int fsutil_write_file_atomic(const char *dir, const char *relpath, const void *data, size_t len,
                             uint8_t ret_sha256[FSUTIL_SHA256_BYTES], enum fsutil_step *ret_step,
                             struct diag *d);

/* A file written atomically in pieces (large outputs that do not fit in
 * memory): fsutil_atomic_begin creates the temp file (fd opened O_RDWR, so
 * the writer may pwrite and read back); the caller writes through fd and
 * then either commits (fsync, close, rename over the final name, fsync of the
 * folder: the steps of fsutil_write_file_atomic) or aborts (the temp file is
 * removed).  Both end the struct: every fd is closed, whatever the result.
 * Not thread-safe per struct. */
struct fsutil_atomic {
    int dfd;           /* the folder that holds the file */
    int fd;            /* the temp file, for the caller's writes */
    char name[256];    /* final name in dfd */
    char tmp[300];     /* temp name in dfd */
    char relpath[512]; /* as given, for diagnostics */
};
int fsutil_atomic_begin(struct fsutil_atomic *ret, const char *dir, const char *relpath,
                        struct diag *d);
int fsutil_atomic_commit(struct fsutil_atomic *a, struct diag *d);
/* No-op on an already ended struct. */
void fsutil_atomic_abort(struct fsutil_atomic *a);

/* Copy dir/src_relpath atomically to dir/dst_relpath (save_last copies).
 * ret_sha256 / ret_bytes (may be NULL) describe the copy; ret_step (may be
 * NULL), on failure only, the step that failed (reading the source counts
 * as FSUTIL_STEP_WRITE). */
int fsutil_copy_file_atomic(const char *dir, const char *src_relpath, const char *dst_relpath,
                            uint8_t ret_sha256[FSUTIL_SHA256_BYTES], uint64_t *ret_bytes,
                            enum fsutil_step *ret_step, struct diag *d);

/* SHA-256 and size of a file (ret_ may be NULL). */
int fsutil_sha256_file(const char *path, uint8_t ret_sha256[FSUTIL_SHA256_BYTES], uint64_t *ret_bytes,
                       struct diag *d);
/* SHA-256 of memory. */
void fsutil_sha256(const void *data, size_t len, uint8_t ret_sha256[FSUTIL_SHA256_BYTES]);
/* Lower-case hex, NUL-terminated (65 bytes). */
void fsutil_sha256_hex(const uint8_t sha256[FSUTIL_SHA256_BYTES], char ret_hex[FSUTIL_SHA256_HEX_SIZE]);

/* Read a whole regular file (at most max_bytes; larger -> -EFBIG) into a
 * malloc'ed buffer the caller frees.  A NUL byte is appended (not counted in
 * ret_len) so that text files can be used as strings. */
int fsutil_read_file(const char *path, size_t max_bytes, void **ret_data, size_t *ret_len,
                     struct diag *d);

/* write(2) all of data, again after EINTR and short writes.  0 or -errno
 * (-EIO when write returns 0). */
int fsutil_write_all(int fd, const void *data, size_t len);

#endif
