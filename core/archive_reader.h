/* archive_reader.h - reading tar, tar.gz and zip files with libarchive, with the
 * safety rules every importer shares.
 *
 * archive_reader_next refuses (-EINVAL, naming the entry) absolute paths,
 * ".." components, symlinks, hard links and device or fifo entries, and
 * reports hidden entries (a component starting with '.', or a __MACOSX
 * folder) so that callers skip them.  Paths come back without a leading
 * "./" ("." itself, the root folder of `tar -C dir -c .`, is skipped).
 *
 * Zip bombs: the uncompressed bytes read (and, in a tar, skipped: a
 * compressed tar decompresses what it skips) may not exceed max_total_bytes nor max_ratio times the archive's
 * size plus 1 MiB; beyond either the read fails with -EFBIG.
 *
 * Ownership: the reader owns libarchive's handle; archive_reader_close(NULL)
 * is a no-op.  One thread per reader. */
#ifndef TRAIND_ARCHIVE_READER_H
#define TRAIND_ARCHIVE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define ARCHIVE_PATH_MAX 1024

struct archive_reader;

struct archive_item {
    char path[ARCHIVE_PATH_MAX]; /* without a leading "./" or trailing '/' */
    bool is_dir;
    bool hidden;
    bool size_known;
    uint64_t size;
};

/* Is the archive a zip (else tar, possibly gzip-compressed)? */
bool archive_reader_is_zip(const struct archive_reader *r);

int archive_reader_open(struct archive_reader **ret, const char *path, uint64_t max_total_bytes,
                        double max_ratio, struct diag *d);
/* 1 and *ret filled: an entry; 0: the end; < 0: an error (d filled). */
int archive_reader_next(struct archive_reader *r, struct archive_item *ret, struct diag *d);
/* Up to n bytes of the current entry; *ret_got < n only at its end. */
int archive_reader_read(struct archive_reader *r, void *buf, size_t n, size_t *ret_got,
                        struct diag *d);
/* Exactly n bytes, else "truncated" naming what. */
int archive_reader_read_exact(struct archive_reader *r, void *buf, size_t n, const char *what,
                              struct diag *d);
/* The whole current entry into a malloc'ed buffer (at most max bytes). */
int archive_reader_read_all(struct archive_reader *r, size_t max, void **ret_data,
                            size_t *ret_len, struct diag *d);
void archive_reader_close(struct archive_reader *r);

#endif
