/* archive_reader.c - libarchive behind the rules of archive_reader.h. */
#include "archive_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BLOCK 65536
#define RATIO_SLACK (UINT64_C(1) << 20)

struct archive_reader {
    struct archive *a;
    bool zip;
    uint64_t file_bytes;
    uint64_t limit;   /* min(max_total, ratio * file + slack) */
    uint64_t total;   /* uncompressed bytes read or skipped */
    char entry[ARCHIVE_PATH_MAX];
    uint64_t entry_size, entry_read; /* of the current entry */
};

bool archive_reader_is_zip(const struct archive_reader *r)
{
    return r->zip;
}

static int fail_archive(struct archive_reader *r, struct diag *d, const char *what)
{
    const char *msg = archive_error_string(r->a);
    int e = archive_errno(r->a);
    return diag_set(d, e == ENOMEM ? -ENOMEM : -EINVAL, r->entry[0] ? r->entry : "archive",
                    "%s%s%s: %s", what, r->entry[0] ? " of " : "", r->entry,
                    msg ? msg : "corrupt or truncated archive");
}

/* A zip must end with its end-of-central-directory record (22 bytes plus a
 * comment of the length it gives): libarchive would otherwise fall back to
 * streaming the local headers and accept a zip cut short after its last
 * member. */
static int check_zip_end(const char *path, uint64_t size, struct diag *d)
{
    unsigned char head[4], tail[65557];
    FILE *f = fopen(path, "rbe");
    if (!f)
        return diag_set(d, -errno, "archive", "open: %s", strerror(errno));
    size_t n = fread(head, 1, 4, f);
    if (n < 4 || memcmp(head, "PK\x03\x04", 4) != 0) {
        fclose(f);
        return 0; /* not a zip */
    }
    uint64_t len = size < sizeof(tail) ? size : sizeof(tail);
    bool ok = false;
    if (fseeko(f, (off_t)(size - len), SEEK_SET) == 0 && fread(tail, 1, len, f) == len) {
        for (uint64_t i = len >= 22 ? len - 22 + 1 : 0; i-- > 0;) {
            if (memcmp(tail + i, "PK\x05\x06", 4) == 0 &&
                i + 22 + (tail[i + 20] | (uint64_t)tail[i + 21] << 8) == len) {
                ok = true;
                break;
            }
        }
    }
    fclose(f);
    if (!ok)
        return diag_set(d, -EINVAL, "archive", "truncated zip: no end-of-central-directory "
                        "record at the end of the file");
    return 0;
}

int archive_reader_open(struct archive_reader **ret, const char *path, uint64_t max_total_bytes,
                        double max_ratio, struct diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return diag_set(d, -errno, "archive", "stat: %s", strerror(errno));
    int zerr = check_zip_end(path, (uint64_t)st.st_size, d);
    if (zerr < 0)
        return zerr;
    struct archive_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return diag_set(d, -ENOMEM, "archive", "out of memory");
    r->file_bytes = (uint64_t)st.st_size;
    double by_ratio = max_ratio * (double)r->file_bytes + (double)RATIO_SLACK;
    r->limit = max_total_bytes;
    if (by_ratio < (double)r->limit)
        r->limit = (uint64_t)by_ratio;
    r->a = archive_read_new();
    if (!r->a) {
        free(r);
        return diag_set(d, -ENOMEM, "archive", "out of memory");
    }
    archive_read_support_filter_gzip(r->a);
    archive_read_support_format_tar(r->a);
    archive_read_support_format_gnutar(r->a);
    archive_read_support_format_zip(r->a);
    if (archive_read_open_filename(r->a, path, BLOCK) != ARCHIVE_OK) {
        int e = fail_archive(r, d, "open");
        archive_reader_close(r);
        return e;
    }
    *ret = r;
    return 0;
}

static bool is_hidden(const char *path)
{
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, "/");
        if (p[0] == '.' || (len == 8 && strncmp(p, "__MACOSX", 8) == 0))
            return true;
        p += len;
        if (*p == '/')
            p++;
    }
    return false;
}

static int over_limit(struct archive_reader *r, struct diag *d)
{
    return diag_set(d, -EFBIG, r->entry[0] ? r->entry : "archive",
                    "more than %llu uncompressed bytes in an archive of %llu bytes (limits: "
                    "total bytes and compression ratio; a zip bomb?)",
                    (unsigned long long)r->limit, (unsigned long long)r->file_bytes);
}

int archive_reader_next(struct archive_reader *r, struct archive_item *ret, struct diag *d)
{
    for (;;) {
        struct archive_entry *e;
        /* a tar's unread rest is decompressed to be skipped: it counts */
        if (!r->zip && r->entry_size > r->entry_read) {
            r->total += r->entry_size - r->entry_read;
            if (r->total > r->limit)
                return over_limit(r, d);
        }
        r->entry_size = r->entry_read = 0;
        r->entry[0] = '\0';
        int ar = archive_read_next_header(r->a, &e);
        if (ar == ARCHIVE_EOF)
            return 0;
        if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
            return fail_archive(r, d, "entry header");
        if (!r->zip)
            r->zip = archive_format(r->a) == ARCHIVE_FORMAT_ZIP ||
                     (archive_format(r->a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP;
        const char *name = archive_entry_pathname(e);
        if (!name)
            return diag_set(d, -EINVAL, "archive", "an entry's name is not valid text");
        snprintf(r->entry, sizeof(r->entry), "%s", name);
        if (strlen(name) >= ARCHIVE_PATH_MAX - 1)
            return diag_set(d, -EINVAL, r->entry, "entry name longer than %d bytes",
                            ARCHIVE_PATH_MAX - 2);
        if (name[0] == '/')
            return diag_set(d, -EINVAL, r->entry, "entry %s has an absolute path", name);
        const char *p = name;
        while (p[0] == '.' && p[1] == '/')
            p += 2;
        char path[ARCHIVE_PATH_MAX];
        snprintf(path, sizeof(path), "%s", p);
        size_t len = strlen(path);
        while (len > 0 && path[len - 1] == '/')
            path[--len] = '\0';
        for (const char *c = path; *c;) {
            size_t cl = strcspn(c, "/");
            if (cl == 2 && c[0] == '.' && c[1] == '.')
                return diag_set(d, -EINVAL, r->entry, "entry %s has a '..' component", name);
            if (cl == 0)
                return diag_set(d, -EINVAL, r->entry, "entry %s has an empty path component",
                                name);
            c += cl;
            if (*c == '/')
                c++;
        }
        mode_t type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e))
            return diag_set(d, -EINVAL, r->entry, "entry %s is a hard link (links are refused)",
                            name);
        if (type == AE_IFLNK)
            return diag_set(d, -EINVAL, r->entry, "entry %s is a symbolic link (links are "
                            "refused)", name);
        if (type != AE_IFREG && type != AE_IFDIR)
            return diag_set(d, -EINVAL, r->entry, "entry %s is not a file or folder", name);
        if (len == 0 || strcmp(path, ".") == 0)
            continue; /* the root folder */
        memset(ret, 0, sizeof(*ret));
        snprintf(ret->path, sizeof(ret->path), "%s", path);
        ret->is_dir = type == AE_IFDIR;
        ret->hidden = is_hidden(path);
        ret->size_known = archive_entry_size_is_set(e);
        ret->size = ret->size_known && archive_entry_size(e) > 0 ? (uint64_t)archive_entry_size(e)
                                                                 : 0;
        snprintf(r->entry, sizeof(r->entry), "%s", path);
        r->entry_size = ret->size;
        return 1;
    }
}

int archive_reader_read(struct archive_reader *r, void *buf, size_t n, size_t *ret_got,
                        struct diag *d)
{
    size_t got = 0;
    while (got < n) {
        la_ssize_t k = archive_read_data(r->a, (char *)buf + got, n - got);
        if (k < 0)
            return fail_archive(r, d, "data");
        if (k == 0)
            break;
        got += (size_t)k;
        r->total += (uint64_t)k;
        r->entry_read += (uint64_t)k;
        if (r->total > r->limit)
            return over_limit(r, d);
    }
    *ret_got = got;
    return 0;
}

int archive_reader_read_exact(struct archive_reader *r, void *buf, size_t n, const char *what,
                              struct diag *d)
{
    size_t got = 0;
    int e = archive_reader_read(r, buf, n, &got, d);
    if (e < 0)
        return e;
    if (got < n)
        return diag_set(d, -EINVAL, r->entry, "%s: truncated: %s needs %zu bytes, %zu left",
                        r->entry, what, n, got);
    return 0;
}

int archive_reader_read_all(struct archive_reader *r, size_t max, void **ret_data,
                            size_t *ret_len, struct diag *d)
{
    size_t cap = 65536, len = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf)
        return diag_set(d, -ENOMEM, r->entry, "out of memory");
    for (;;) {
        if (len == cap) {
            if (cap >= max + 1) {
                free(buf);
                return diag_set(d, -EFBIG, r->entry, "%s: larger than %zu bytes", r->entry, max);
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            unsigned char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                return diag_set(d, -ENOMEM, r->entry, "out of memory");
            }
            buf = nb;
        }
        size_t got = 0;
        int e = archive_reader_read(r, buf + len, cap - len, &got, d);
        if (e < 0) {
            free(buf);
            return e;
        }
        len += got;
        if (got == 0)
            break;
    }
    if (len > max) {
        free(buf);
        return diag_set(d, -EFBIG, r->entry, "%s: larger than %zu bytes", r->entry, max);
    }
    buf[len] = '\0';
    *ret_data = buf;
    *ret_len = len;
    return 0;
}

void archive_reader_close(struct archive_reader *r)
{
    if (!r)
        return;
    if (r->a)
        archive_read_free(r->a);
    free(r);
}
