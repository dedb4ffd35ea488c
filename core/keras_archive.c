/* keras_archive.c - Keras 3 `.keras` zips and their config.json (see
 * keras_archive.h).  libarchive writes and reads the zip in memory. */
#include "keras_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cjson_add.h"

bool keras_archive_is_zip(const void *data, size_t len)
{
    return len >= 4 && memcmp(data, "PK\3\4", 4) == 0;
}

/* ---- config.json ---------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The Keras 3 package of a serialized object found under `key` (the key of
 * its parent object, or of the array holding it). */
static const char *module_for_key(const char *key)
{
    if (!key)
        return "keras";
    if (strcmp(key, "layers") == 0)
        return "keras.layers";
    if (ends_with(key, "_initializer"))
        return "keras.initializers";
    if (ends_with(key, "_regularizer"))
        return "keras.regularizers";
    if (ends_with(key, "_constraint"))
        return "keras.constraints";
    if (strcmp(key, "optimizer") == 0 || strcmp(key, "learning_rate") == 0)
        return strcmp(key, "optimizer") == 0 ? "keras.optimizers" : "keras.optimizers.schedules";
    if (strcmp(key, "loss") == 0)
        return "keras.losses";
    if (strcmp(key, "metrics") == 0 || strcmp(key, "weighted_metrics") == 0)
        return "keras.metrics";
    return "keras";
}

static cJSON *convert(const cJSON *v, const char *key);

/* A serialized object {"class_name", "config"} in Keras 3's four-key form. */
static cJSON *convert_object(const cJSON *v, const char *key)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(v, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(v, "config");
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    ok &= cjson_add(o, "module", cJSON_CreateString(module_for_key(key)));
    ok &= cjson_add(o, "class_name", cJSON_CreateString(cls->valuestring));
    cJSON *c = convert(cfg, NULL);
    /* Keras 3's InputLayer takes batch_shape (batch_input_shape is tf.keras') */
    if (c && strcmp(cls->valuestring, "InputLayer") == 0) {
        cJSON *bis = cJSON_DetachItemFromObjectCaseSensitive(c, "batch_input_shape");
        if (bis)
            ok &= cjson_add(c, "batch_shape", bis);
    }
    ok &= cjson_add(o, "config", c);
    ok &= cjson_add(o, "registered_name", cJSON_CreateNull());
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (strcmp(e->string, "class_name") != 0 && strcmp(e->string, "config") != 0)
            ok &= cjson_add(o, e->string, convert(e, e->string));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A deep copy of v with every serialized Keras object converted. */
static cJSON *convert(const cJSON *v, const char *key)
{
    if (cJSON_IsObject(v)) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(v, "class_name");
        if (cJSON_IsString(cls) && cJSON_GetObjectItemCaseSensitive(v, "config"))
            return convert_object(v, key);
        cJSON *o = cJSON_CreateObject();
        bool ok = o != NULL;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
            ok &= cjson_add(o, e->string, convert(e, e->string));
        if (!ok) {
            cJSON_Delete(o);
            return NULL;
        }
        return o;
    }
    if (cJSON_IsArray(v)) {
        cJSON *a = cJSON_CreateArray();
        bool ok = a != NULL;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            cJSON *c = convert(e, key);
            ok &= c && cJSON_AddItemToArray(a, c);
            if (!ok) {
                cJSON_Delete(c);
                break;
            }
        }
        if (!ok) {
            cJSON_Delete(a);
            return NULL;
        }
        return a;
    }
    return cJSON_Duplicate(v, true);
}

/* compile_config as Keras 3's Trainer.compile records it, from tf.keras'
 * training_config of the same compile() call. */
static cJSON *compile_config(const cJSON *tc)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(tc, "optimizer_config");
    ok &= cjson_add(o, "optimizer", opt ? convert(opt, "optimizer") : cJSON_CreateNull());
    static const char *const keys[] = {"loss", "loss_weights", "metrics", "weighted_metrics"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tc, keys[i]);
        ok &= cjson_add(o, keys[i], v ? convert(v, keys[i]) : cJSON_CreateNull());
    }
    ok &= cjson_add(o, "run_eagerly", cJSON_CreateFalse());
    ok &= cjson_add(o, "steps_per_execution", cJSON_CreateNumber(1));
    ok &= cjson_add(o, "jit_compile", cJSON_CreateFalse());
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *keras_archive_config_json(const struct model_spec *spec, const char *training_config_json)
{
    char *text = model_spec_to_json(spec);
    cJSON *src = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *tc = training_config_json ? cJSON_Parse(training_config_json) : NULL;
    char *out = NULL;
    if (!src || (training_config_json && !tc))
        goto out;
    cJSON_DeleteItemFromObjectCaseSensitive(src, "keras_version");
    cJSON_DeleteItemFromObjectCaseSensitive(src, "backend");
    cJSON *root = convert(src, NULL);
    if (!root)
        goto out;
    bool ok = true;
    /* Keras 3 serializes a functional model as its internal class */
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(root, "class_name");
    if (cJSON_IsString(cls) && (strcmp(cls->valuestring, "Functional") == 0 ||
                                strcmp(cls->valuestring, "Model") == 0)) {
        ok &= cJSON_ReplaceItemInObjectCaseSensitive(root, "module",
                                                     cJSON_CreateString("keras.src.models.functional"));
        ok &= cJSON_ReplaceItemInObjectCaseSensitive(root, "class_name",
                                                     cJSON_CreateString("Functional"));
        ok &= cJSON_ReplaceItemInObjectCaseSensitive(root, "registered_name",
                                                     cJSON_CreateString("Functional"));
    }
    cJSON *bc = cJSON_CreateObject();
    cJSON *shape = cJSON_CreateArray();
    ok &= bc && shape && cJSON_AddItemToArray(shape, cJSON_CreateNull());
    for (int i = 0; ok && i < 3; i++)
        ok &= cJSON_AddItemToArray(shape, cJSON_CreateNumber(spec->input_shape[i]));
    if (ok && bc) {
        ok &= cjson_add(bc, "input_shape", shape);
        shape = NULL;
    }
    cJSON_Delete(shape);
    ok &= cjson_add(root, "build_config", bc);
    if (tc)
        ok &= cjson_add(root, "compile_config", compile_config(tc));
    if (ok)
        out = cJSON_Print(root);
    cJSON_Delete(root);
out:
    cJSON_Delete(src);
    cJSON_Delete(tc);
    return out;
}

char *keras_archive_metadata_json(int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;
    char date[64];
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof(date), "%Y-%m-%d@%H:%M:%S", &tm) == 0)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cjson_add(o, "keras_version", cJSON_CreateString(KERAS_ARCHIVE_KERAS_VERSION)) &&
              cjson_add(o, "date_saved", cJSON_CreateString(date));
    char *out = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
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
