/* uploaded_weights.c - PUT, GET, list and DELETE of /v1/weights (see
 * uploaded_weights.h). */
#include "uploaded_weights.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson_add.h"
#include "fsutil.h"
#include "h5.h"
#include "log.h"
#include "registry_internal.h"
#include "route.h"

static pthread_mutex_t weights_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void weights_path(const struct jobs *js, const char *name, bool meta, char *out,
                         size_t size)
{
    snprintf(out, size, "%s/" JOBS_WEIGHTS_DIR "/%s%s%s", js->state_dir, meta ? "." : "", name,
             meta ? ".json" : "");
}

/* The sidecar of name when it still describes the file st (NULL otherwise). */
static cJSON *read_meta(const struct jobs *js, const char *name, const struct stat *st)
{
    char path[PATH_MAX + 300];
    weights_path(js, name, true, path, sizeof(path));
    void *data = NULL;
    size_t len = 0;
    struct diag d = {{0}, {0}};
    if (fsutil_read_file(path, 1 << 16, &data, &len, &d) < 0)
        return NULL;
    cJSON *m = cJSON_ParseWithLength(data, len);
    free(data);
    double bytes = 0, ino = 0, mt = 0, layers = 0;
    if (!m || !cjson_get_double(m, "bytes", &bytes) || !cjson_get_double(m, "ino", &ino) ||
        !cjson_get_double(m, "layers", &layers) ||
        !cjson_get_double(m, "mtime_ns", &mt) || bytes != (double)st->st_size ||
        ino != (double)st->st_ino || mt != (double)mtime_ns(st) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "sha256")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "layout")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "uploaded"))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static void utc_text(time_t t, char out[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* The resource of name (file stat st): sha256 and layout null when the
 * sidecar does not describe the file; uploaded its time, else the mtime. */
static cJSON *resource(const struct jobs *js, const char *name, const struct stat *st)
{
    cJSON *m = read_meta(js, name, st);
    cJSON *o = cJSON_CreateObject();
    char when[32];
    utc_text(st->st_mtim.tv_sec, when);
    const cJSON *sha = m ? cJSON_GetObjectItemCaseSensitive(m, "sha256") : NULL;
    const cJSON *layout = m ? cJSON_GetObjectItemCaseSensitive(m, "layout") : NULL;
    const cJSON *up = m ? cJSON_GetObjectItemCaseSensitive(m, "uploaded") : NULL;
    const cJSON *layers = m ? cJSON_GetObjectItemCaseSensitive(m, "layers") : NULL;
    bool ok = o && cjson_add(o, "name", cJSON_CreateString(name)) &&
              cjson_add(o, "bytes", cJSON_CreateNumber((double)st->st_size)) &&
              cjson_add(o, "sha256",
                        sha ? cJSON_CreateString(sha->valuestring) : cJSON_CreateNull()) &&
              cjson_add(o, "layout",
                        layout ? cJSON_CreateString(layout->valuestring) : cJSON_CreateNull()) &&
              cjson_add(o, "layers",
                        layers ? cJSON_CreateNumber(layers->valuedouble) : cJSON_CreateNull()) &&
              cjson_add(o, "uploaded", cJSON_CreateString(up ? up->valuestring : when));
    cJSON_Delete(m);
    return cjson_checked(o, ok);
}

int uploaded_weights_put(struct jobs *js, const char *name, const char *upload_path,
                         char **ret_json, struct diag *d)
{
    enum h5_layout layout = H5_LAYOUT_TF_WEIGHTS;
    void *data = NULL;
    size_t len = 0;
    uint8_t sha[FSUTIL_SHA256_BYTES];
    char rel[128], hex[FSUTIL_SHA256_HEX_SIZE], path[PATH_MAX + 300], when[32];
    int layers = 0;
    int r = h5_describe(upload_path, &layout, &layers, d);
    if (r < 0) {
        char msg[sizeof(d->message)];
        snprintf(msg, sizeof(msg), "%.400s", d->message);
        r = diag_set(d, r == -ENOMEM ? r : -EINVAL, "body",
                     "not a Keras weight file (.h5, .hdf5, .weights.h5 or .keras): %s", msg);
    }
    if (r == 0)
        r = fsutil_read_file(upload_path, (size_t)1 << 33, &data, &len, d);
    unlink(upload_path);
    if (r < 0) {
        free(data);
        return r;
    }
    pthread_mutex_lock(&weights_mu);
    snprintf(rel, sizeof(rel), JOBS_WEIGHTS_DIR "/%s", name);
    r = fsutil_write_file_atomic(js->state_dir, rel, data, len, sha, NULL, d);
    free(data);
    struct stat st;
    weights_path(js, name, false, path, sizeof(path));
    if (r == 0 && stat(path, &st) < 0)
        r = diag_set(d, -errno, "name", "stat: %s", strerror(errno));
    if (r == 0) {
        fsutil_sha256_hex(sha, hex);
        utc_text(time(NULL), when);
        char *meta = NULL;
        if (asprintf(&meta, "{\"sha256\": \"%s\", \"layout\": \"%s\", \"layers\": %d, "
                     "\"uploaded\": \"%s\", \"bytes\": %lld, \"ino\": %llu, "
                     "\"mtime_ns\": %lld}\n",
                     hex, h5_layout_name(layout), layers, when, (long long)st.st_size,
                     (unsigned long long)st.st_ino, (long long)mtime_ns(&st)) < 0)
            r = -ENOMEM;
        snprintf(rel, sizeof(rel), JOBS_WEIGHTS_DIR "/.%s.json", name);
        if (r == 0)
            r = fsutil_write_file_atomic(js->state_dir, rel, meta, strlen(meta), NULL, NULL, d);
        free(meta);
    }
    cJSON *o = r == 0 ? resource(js, name, &st) : NULL;
    pthread_mutex_unlock(&weights_mu);
    if (r < 0)
        return r;
    char *out = json_print_and_delete(o);
    if (!out)
        return -ENOMEM;
    log_info("weights file %s stored (%zu bytes, %s)", name, len, h5_layout_name(layout));
    *ret_json = out;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int uploaded_weights_list(struct jobs *js, char **ret_json)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/" JOBS_WEIGHTS_DIR, js->state_dir);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "weights") : NULL;
    bool ok = list != NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&weights_mu);
    DIR *dp = opendir(dir); /* absent until the first upload */
    for (struct dirent *e; ok && dp && (e = readdir(dp));) {
        if (!api_dataset_name_valid(e->d_name))
            continue; /* sidecars, temp files, . and .. */
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof(*names));
            ok = p != NULL;
            if (!ok)
                break;
            names = p;
        }
        ok = (names[n] = strdup(e->d_name)) != NULL;
        n += ok;
    }
    if (dp)
        closedir(dp);
    if (n > 1)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; ok && i < n; i++) {
        char path[PATH_MAX + 300];
        struct stat st;
        weights_path(js, names[i], false, path, sizeof(path));
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            ok = cjson_append(list, resource(js, names[i], &st));
    }
    pthread_mutex_unlock(&weights_mu);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    char *out = json_print_and_delete(cjson_checked(root, ok));
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

int uploaded_weights_open(struct jobs *js, const char *name, struct api_file *ret,
                          struct diag *d)
{
    char path[PATH_MAX + 300];
    if (!api_dataset_name_valid(name))
        return diag_set(d, -ENOENT, "", "no such weights file");
    weights_path(js, name, false, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return diag_set(d, -ENOENT, "", "no such weights file '%s'", name);
    }
    struct api_file f = {.fd = fd, .size = (uint64_t)st.st_size};
    snprintf(f.name, sizeof(f.name), "%s", name);
    pthread_mutex_lock(&weights_mu);
    cJSON *m = read_meta(js, name, &st);
    pthread_mutex_unlock(&weights_mu);
    const cJSON *sha = m ? cJSON_GetObjectItemCaseSensitive(m, "sha256") : NULL;
    if (sha && strlen(sha->valuestring) == FSUTIL_SHA256_HEX_SIZE - 1)
        memcpy(f.sha256, sha->valuestring, FSUTIL_SHA256_HEX_SIZE);
    cJSON_Delete(m);
    *ret = f;
    return 0;
}

/* The queued or running jobs whose initial_weights name the upload. */
static int users(struct jobs *js, const char *name, cJSON *ids)
{
    int n = 0;
    pthread_mutex_lock(&js->mu);
    for (struct job *j = js->list; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        bool match = j->spec.initial_weights.set &&
                     strcmp(j->spec.initial_weights.upload, name) == 0 &&
                     (j->state == JOB_STATE_QUEUED || j->state == JOB_STATE_RUNNING);
        pthread_mutex_unlock(&j->mu);
        if (match) {
            n++;
            cjson_append(ids, cJSON_CreateString(j->id));
        }
    }
    pthread_mutex_unlock(&js->mu);
    return n;
}

int uploaded_weights_delete(struct jobs *js, const char *name, struct diag *d)
{
    char path[PATH_MAX + 300], meta[PATH_MAX + 300];
    if (!api_dataset_name_valid(name))
        return diag_set(d, -ENOENT, "", "no such weights file");
    weights_path(js, name, false, path, sizeof(path));
    weights_path(js, name, true, meta, sizeof(meta));
    int r = 0;
    pthread_mutex_lock(&weights_mu);
    struct stat st;
    cJSON *ids = cJSON_CreateArray();
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = diag_set(d, -ENOENT, "", "no such weights file '%s'", name);
    } else if (!ids) {
        r = -ENOMEM;
    } else {
        int n = users(js, name, ids);
        if (n > 0) {
            char *list = cJSON_PrintUnformatted(ids);
            r = diag_set(d, -EBUSY, "name", "weights file '%s' is the initial_weights of %d "
                         "queued or running job(s): %s", name, n, list ? list : "");
            free(list);
        }
    }
    cJSON_Delete(ids);
    if (r == 0 && unlink(path) < 0)
        r = diag_set(d, -errno, "name", "unlink: %s", strerror(errno));
    if (r == 0 && unlink(meta) < 0 && errno != ENOENT)
        log_warn("weights file %s: removing its record: %s", name, strerror(errno));
    pthread_mutex_unlock(&weights_mu);
    if (r == 0)
        log_info("weights file %s deleted", name);
    return r;
}
