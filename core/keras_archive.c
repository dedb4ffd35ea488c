/* keras_archive.c - Keras 3 `.keras` zips and their config.json (see
 * keras_archive.h).  libarchive writes and reads the zip in memory. */
#include "keras_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


bool keras_archive_is_zip(const void *data, size_t len)
{
    return len >= 4 && memcmp(data, "PK\3\4", 4) == 0;
}

/* ---- config.json ---------------------------------------------------------- */

char *keras_archive_config_json(const struct model_spec *spec, const char *compile_config_json)
{
    char *model = model_spec_to_json_flavour(spec, KERAS_FLAVOUR_KERAS3);
    if (!model || !compile_config_json)
        return model;
    /* serialize_keras_object adds compile_config after build_config: the
     * last key of the model's object */
    size_t n = strlen(model);
    if (n == 0 || model[n - 1] != '}') {
        free(model);
        return NULL;
    }
    model[n - 1] = '\0';
    char *out = NULL;
    if (asprintf(&out, "%s, \"compile_config\": %s}", model, compile_config_json) < 0)
        out = NULL;
    free(model);
    return out;
}

char *keras_archive_metadata_json(int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;
    char date[64];
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof(date), "%Y-%m-%d@%H:%M:%S", &tm) == 0)
        return NULL;
    /* json.dumps({"keras_version": ..., "date_saved": ...}) */
    char *out = NULL;
    if (asprintf(&out, "{\"keras_version\": \"%s\", \"date_saved\": \"%s\"}",
                 KERAS_ARCHIVE_KERAS_VERSION, date) < 0)
        out = NULL;
    return out;
}

/* ---- the zip -------------------------------------------------------------- */

struct membuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static la_ssize_t membuf_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    struct membuf *b = ctx;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, n);
    b->len += n;
    return (la_ssize_t)n;
}

static int add_member(struct archive *a, const char *name, const void *data, size_t len,
                      int64_t when)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return -ENOMEM;
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_mtime(e, (time_t)when, 0);
    int r = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -EIO;
    if (r == 0 && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
        r = -EIO;
    archive_entry_free(e);
    return r;
}

int keras_archive_pack(const char *metadata_json, const char *config_json, const void *weights,
                       size_t weights_len, int64_t when, void **ret_zip, size_t *ret_len,
                       struct diag *d)
{
    struct membuf b = {0};
    struct archive *a = archive_write_new();
    if (!a)
        return diag_set(d, -ENOMEM, "", "encode: out of memory for the zip writer");
    int r = 0;
    /* Keras writes with zipfile.ZipFile(f, "w"): ZIP_STORED members */
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_zip_set_compression_store(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, &b, NULL, membuf_write, NULL) != ARCHIVE_OK)
        r = -EIO;
    if (r == 0)
        r = add_member(a, KERAS_ARCHIVE_METADATA, metadata_json, strlen(metadata_json), when);
    if (r == 0)
        r = add_member(a, KERAS_ARCHIVE_CONFIG, config_json, strlen(config_json), when);
    if (r == 0)
        r = add_member(a, KERAS_ARCHIVE_WEIGHTS, weights, weights_len, when);
    if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
        r = -EIO;
    if (r < 0)
        r = diag_set(d, b.oom ? -ENOMEM : r, "", "encode: zip: %s",
                     archive_error_string(a) ? archive_error_string(a) : "write failed");
    archive_write_free(a);
    if (r < 0) {
        free(b.p);
        return r;
    }
    *ret_zip = b.p;
    *ret_len = b.len;
    return 0;
}

int keras_archive_member(const void *data, size_t len, const char *name, size_t max_bytes,
                         const char *what, void **ret_data, size_t *ret_len, struct diag *d)
{
    struct archive *a = archive_read_new();
    if (!a)
        return diag_set(d, -ENOMEM, what, "out of memory for the zip reader");
    int r = -ENOENT;
    unsigned char *out = NULL;
    size_t got = 0;
    size_t limit = max_bytes;
    if (len <= (SIZE_MAX - ((size_t)1 << 20)) / 100 && len * 100 + ((size_t)1 << 20) < limit)
        limit = len * 100 + ((size_t)1 << 20);
    if (archive_read_support_format_zip(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        r = diag_set(d, -EINVAL, what, "not a readable zip archive: %s",
                     archive_error_string(a) ? archive_error_string(a) : "open failed");
        goto out;
    }
    struct archive_entry *e;
    for (;;) {
        int h = archive_read_next_header(a, &e);
        if (h == ARCHIVE_EOF)
            break;
        if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
            r = diag_set(d, -EINVAL, what, "corrupt zip archive: %s",
                         archive_error_string(a) ? archive_error_string(a) : "bad header");
            goto out;
        }
        const char *p = archive_entry_pathname(e);
        if (!p || strcmp(p, name) != 0)
            continue;
        size_t cap = 0;
        for (;;) {
            if (got + 65536 > cap) {
                size_t ncap = cap ? cap * 2 : 1 << 20;
                unsigned char *np = realloc(out, ncap);
                if (!np) {
                    r = diag_set(d, -ENOMEM, what, "out of memory reading %s", name);
                    goto out;
                }
                out = np;
                cap = ncap;
            }
            la_ssize_t n = archive_read_data(a, out + got, cap - got);
            if (n < 0) {
                r = diag_set(d, -EINVAL, what, "corrupt zip member %s: %s", name,
                             archive_error_string(a) ? archive_error_string(a) : "read failed");
                goto out;
            }
            if (n == 0)
                break;
            got += (size_t)n;
            if (got > limit) {
                r = diag_set(d, -EFBIG, what, "zip member %s expands beyond %zu bytes", name,
                             limit);
                goto out;
            }
        }
        r = 0;
        break;
    }
    if (r == -ENOENT)
        diag_set(d, -ENOENT, what, "the archive has no %s", name);
out:
    archive_read_free(a);
    if (r < 0) {
        free(out);
        return r;
    }
    *ret_data = out;
    *ret_len = got;
    return 0;
}
