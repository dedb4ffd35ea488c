/* datasets.c - the daemon's data set registry (see datasets.h). */
#include "datasets.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "fsutil.h"
#include "route.h"

#define DATA_FILE "data.tensor"
#define MANIFEST_FILE "manifest.json"
#define MANIFEST_MAX (1u << 20)
#define UPLOAD_PREFIX ".upload-"

struct datasets {
    pthread_mutex_t lock;
    char dir[PATH_MAX - 512]; /* <state_dir>/datasets (room left for names below it) */
    const struct runner_dataset *configured;
    int n_configured;
    datasets_usage_fn usage;
    void *usage_ctx;
    atomic_ulong counter;
};

int datasets_check_name(const char *name, struct diag *d)
{
    if (!api_dataset_name_valid(name))
        return diag_set(d, -EINVAL, "name", "data set names are 1 to %d letters, digits, '-', "
                        "'_' and '.', not starting with '.'", API_DATASET_NAME_MAX);
    return 0;
}

/* Remove dir/name: a file, or a folder of files (one level, as we write them). */
static void remove_entry(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno != EISDIR)
        return;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *dir = fdopendir(fd);
        if (dir) {
            struct dirent *e;
            while ((e = readdir(dir)) != NULL)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                    unlinkat(dirfd(dir), e->d_name, 0);
            closedir(dir);
        } else {
            close(fd);
        }
    }
    unlinkat(parent, name, AT_REMOVEDIR);
}

/* Remove ds->dir/name (remove_entry) and make the removal durable. */
static void remove_below(const struct datasets *ds, const char *name)
{
    int dfd = open(ds->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    remove_entry(dfd, name);
    fsync(dfd);
    close(dfd);
}

static bool is_configured(const struct datasets *ds, const char *name)
{
    for (int i = 0; i < ds->n_configured; i++)
        if (strcmp(ds->configured[i].name, name) == 0)
            return true;
    return false;
}

int datasets_open(struct datasets **ret, const char *state_dir,
                  const struct runner_dataset *configured, int n_configured,
                  struct diag *d)
{
    struct datasets *ds = calloc(1, sizeof(*ds));
    if (!ds)
        return diag_set(d, -ENOMEM, "datasets", "out of memory");
    if (snprintf(ds->dir, sizeof(ds->dir), "%s/datasets", state_dir) >= (int)sizeof(ds->dir)) {
        free(ds);
        return diag_set(d, -ENAMETOOLONG, "datasets", "state_dir too long");
    }
    /* the registry opens before the job registry, which makes state_dir too */
    if ((mkdir(state_dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(ds->dir, 0700) < 0 && errno != EEXIST)) {
        int err = errno;
        free(ds);
        return diag_set(d, -err, "datasets", "mkdir %s/datasets: %s", state_dir, strerror(err));
    }
    /* leftovers of a killed daemon: temp folders and upload files */
    DIR *dir = opendir(ds->dir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL)
            if (fsutil_is_temp_name(e->d_name) ||
                strncmp(e->d_name, UPLOAD_PREFIX, strlen(UPLOAD_PREFIX)) == 0)
                remove_entry(dirfd(dir), e->d_name);
        closedir(dir);
    }
    pthread_mutex_init(&ds->lock, NULL);
    ds->configured = configured;
    ds->n_configured = n_configured;
    *ret = ds;
    return 0;
}

void datasets_close(struct datasets *ds)
{
    if (!ds)
        return;
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

void datasets_set_usage(struct datasets *ds, datasets_usage_fn usage, void *ctx)
{
    pthread_mutex_lock(&ds->lock);
    ds->usage = usage;
    ds->usage_ctx = ctx;
    pthread_mutex_unlock(&ds->lock);
}

void datasets_lock(struct datasets *ds)
{
    pthread_mutex_lock(&ds->lock);
}

void datasets_unlock(struct datasets *ds)
{
    pthread_mutex_unlock(&ds->lock);
}

int datasets_upload_file(struct datasets *ds, char ret_path[PATH_MAX], int *ret_fd,
                         struct diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" UPLOAD_PREFIX "%ld-%lu", ds->dir, (long)getpid(),
             atomic_fetch_add(&ds->counter, 1));
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return diag_set(d, -errno, "body", "create upload file: %s", strerror(errno));
    memcpy(ret_path, path, sizeof(path));
    *ret_fd = fd;
    return 0;
}

/* "targets": what y holds, {"kind": "classes", "shape": []} (a class
 * index per example) or {"kind": "float32", "shape": [K]} (regression). */
static void add_targets(cJSON *m, int width)
{
    cJSON *t = cJSON_AddObjectToObject(m, "targets");
    if (!t)
        return;
    cJSON_AddStringToObject(t, "kind", width > 0 ? "float32" : "classes");
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(&width, width > 0 ? 1 : 0));
}

/* The K of a manifest's float targets, 0 for class labels (also when the
 * manifest predates "targets"). */
static int manifest_target_width(const cJSON *m)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "targets");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "float32") != 0 ||
        !cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 1 ||
        !cJSON_IsNumber(shape->child))
        return 0;
    return shape->child->valueint;
}

/* Per-class counts of both splits of a tensor file, into the manifest
 * ("classes" is empty for float targets), and "targets". */
static int add_classes(cJSON *m, const char *path, struct diag *d)
{
    struct dataset split[2];
    memset(split, 0, sizeof(split));
    int r = dataset_map_tensorfile(&split[0], path, "train", d);
    if (r == 0)
        r = dataset_map_tensorfile(&split[1], path, "test", d);
    if (r < 0) {
        dataset_free(&split[0]);
        return r;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char header[TENSORFILE_HEADER_BYTES];
    struct tensorfile_info info;
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 &&
              pread(fd, header, sizeof(header), 0) == (ssize_t)sizeof(header) &&
              tensorfile_parse_header(&info, header, (uint64_t)st.st_size, d) == 0;
    char *names = NULL;
    if (ok) {
        names = malloc(info.names_len + 1);
        ok = names && pread(fd, names, info.names_len, (off_t)info.names_off) ==
                          (ssize_t)info.names_len;
    }
    if (fd >= 0)
        close(fd);
    cJSON *arr = cJSON_AddArrayToObject(m, "classes");
    if (!ok || !arr) {
        free(names);
        dataset_free(&split[0]);
        dataset_free(&split[1]);
        return diag_set(d, -EIO, "classes", "cannot read the class names back");
    }
    add_targets(m, info.y_width);
    const char *name = names;
    for (int k = 0; k < info.classes; k++) {
        long counts[2] = {0, 0};
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < split[s].n; i++)
                counts[s] += split[s].labels[i] == k;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddNumberToObject(c, "train", (double)counts[0]);
        cJSON_AddNumberToObject(c, "test", (double)counts[1]);
        cJSON_AddItemToArray(arr, c);
        name += strlen(name) + 1;
    }
    free(names);
    dataset_free(&split[0]);
    dataset_free(&split[1]);
    return 0;
}

static const char *color_name(enum import_color_mode m)
{
    return m == IMPORT_COLOR_GRAYSCALE ? "grayscale" : m == IMPORT_COLOR_RGBA ? "rgba" : "rgb";
}

static cJSON *manifest(const char *name, const struct import_result *res,
                       const struct import_options *o, uint64_t bytes, const char *sha_hex)
{
    cJSON *m = cJSON_CreateObject();
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "source", "upload");
    cJSON_AddStringToObject(m, "format", import_format_name(res->format));
    cJSON_AddNumberToObject(m, "train", (double)res->info.n[0]);
    cJSON_AddNumberToObject(m, "test", (double)res->info.n[1]);
    int shape[3] = {res->info.h, res->info.w, res->info.c};
    cJSON_AddItemToObject(m, "input_shape", cJSON_CreateIntArray(shape, 3));
    cJSON_AddStringToObject(m, "dtype", tensorfile_dtype_name(res->info.dtype));
    cJSON_AddNumberToObject(m, "bytes", (double)bytes);
    cJSON_AddStringToObject(m, "sha256", sha_hex);
    cJSON_AddNumberToObject(m, "tensor_bytes", (double)res->info.file_bytes);
    cJSON_AddNumberToObject(m, "skipped_entries", (double)res->skipped);
    cJSON_AddStringToObject(m, "created", created);
    if (res->format == IMPORT_FORMAT_IMAGES) {
        cJSON *opt = cJSON_AddObjectToObject(m, "options");
        int size[2] = {o->image_h, o->image_w};
        cJSON_AddItemToObject(opt, "image_size", cJSON_CreateIntArray(size, 2));
        cJSON_AddStringToObject(opt, "color_mode", color_name(o->color_mode));
        cJSON_AddNumberToObject(opt, "validation_split", o->validation_split);
        cJSON_AddNumberToObject(opt, "seed", o->seed);
    }
    return m;
}

static int render(cJSON *m, char **ret_json)
{
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    if (!s)
        return -ENOMEM;
    *ret_json = s;
    return 0;
}

/* The uploaded data set's manifest, parsed (NULL: none). */
static cJSON *read_manifest(const struct datasets *ds, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/" MANIFEST_FILE, ds->dir, name);
    void *text = NULL;
    size_t len = 0;
    if (fsutil_read_file(path, MANIFEST_MAX, &text, &len, NULL) < 0)
        return NULL;
    cJSON *m = cJSON_ParseWithLength(text, len);
    free(text);
    if (m && !cJSON_GetObjectItemCaseSensitive(m, "targets"))
        add_targets(m, 0); /* imported before float targets existed */
    return m;
}

/* Add "jobs": the ids of the jobs naming the data set (lock held). */
static void add_jobs(const struct datasets *ds, cJSON *m, const char *name)
{
    cJSON *jobs = cJSON_AddArrayToObject(m, "jobs");
    if (ds->usage && jobs)
        ds->usage(ds->usage_ctx, name, false, jobs);
}

int datasets_create(struct datasets *ds, const char *name, const char *upload_path,
                    const struct import_options *o, char **ret_json, struct diag *d)
{
    char tmp[PATH_MAX], tensor[PATH_MAX + 32];
    bool tmp_made = false;
    cJSON *m = NULL;
    uint8_t sha[32];
    uint64_t bytes = 0;
    int r = datasets_check_name(name, d);
    if (r == 0 && is_configured(ds, name))
        r = diag_set(d, -EEXIST, "name", "'%s' is a configured data set (read-only)", name);
    if (r < 0)
        goto out;
    r = fsutil_sha256_file(upload_path, sha, &bytes, d);
    if (r < 0)
        goto out;
    char hex[65];
    fsutil_sha256_hex(sha, hex);
    snprintf(tmp, sizeof(tmp), "%s/" FSUTIL_TEMP_PREFIX "%s-%ld-%lu", ds->dir, name,
             (long)getpid(), atomic_fetch_add(&ds->counter, 1));
    if (mkdir(tmp, 0700) < 0) {
        r = diag_set(d, -errno, "datasets", "mkdir: %s", strerror(errno));
        goto out;
    }
    tmp_made = true;
    struct import_result res;
    r = import_dataset(upload_path, o, tmp, DATA_FILE, &res, d);
    if (r < 0)
        goto out;
    m = manifest(name, &res, o, bytes, hex);
    snprintf(tensor, sizeof(tensor), "%s/" DATA_FILE, tmp);
    if (!m) {
        r = diag_set(d, -ENOMEM, "", "out of memory");
        goto out;
    }
    r = add_classes(m, tensor, d);
    if (r < 0)
        goto out;
    char *text = cJSON_Print(m);
    if (!text) {
        r = diag_set(d, -ENOMEM, "", "out of memory");
        goto out;
    }
    r = fsutil_write_file_atomic(tmp, MANIFEST_FILE, text, strlen(text), NULL, NULL, d);
    free(text);
    if (r < 0)
        goto out;
    char final[PATH_MAX + 64];
    snprintf(final, sizeof(final), "%s/%s", ds->dir, name);
    pthread_mutex_lock(&ds->lock);
    if (rename(tmp, final) < 0) {
        int err = errno;
        pthread_mutex_unlock(&ds->lock);
        if (err == EEXIST || err == ENOTEMPTY || err == EISDIR)
            r = diag_set(d, -EEXIST, "name", "data set '%s' exists; DELETE it first", name);
        else
            r = diag_set(d, -err, "datasets", "rename: %s", strerror(err));
        goto out;
    }
    tmp_made = false;
    int top = open(ds->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (top >= 0) {
        fsync(top);
        close(top);
    }
    add_jobs(ds, m, name);
    pthread_mutex_unlock(&ds->lock);
    r = render(m, ret_json);
    m = NULL;
out:
    cJSON_Delete(m);
    if (tmp_made)
        remove_below(ds, strrchr(tmp, '/') + 1);
    unlink(upload_path);
    return r;
}

/* Class names of the configured sets.  IDX files carry none: a set whose
 * name or folder says "fashion" is Fashion-MNIST, any other MNIST's digits.
 * CIFAR-10: its batches.meta.txt (next to the batches, as the tarball has
 * it), else the standard ten. */
static const char *const fashion_names[DATASET_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};
static const char *const cifar10_names[DATASET_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};
static const char *const digit_names[DATASET_CLASSES] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
};

static bool mentions_fashion(const char *s)
{
    for (; *s; s++)
        if (strncasecmp(s, "fashion", 7) == 0)
            return true;
    return false;
}

/* The names of configured set c into names[DATASET_CLASSES]. */
static void configured_class_names(const struct runner_dataset *c,
                                   char names[DATASET_CLASSES][TENSORFILE_NAME_MAX + 1])
{
    const char *const *fixed = digit_names;
    if (strcmp(c->format, "cifar10") == 0) {
        fixed = cifar10_names;
        /* dataset_load_cifar10's folders: path, or path/cifar-10-batches-bin */
        static const char *const where[2] = {"batches.meta.txt",
                                             "cifar-10-batches-bin/batches.meta.txt"};
        for (int i = 0; i < 2; i++) {
            char path[PATH_MAX + 64];
            void *text = NULL;
            size_t len = 0;
            const char *found[DATASET_CLASSES];
            snprintf(path, sizeof(path), "%s/%s", c->path, where[i]);
            if (fsutil_read_file(path, 65536, &text, &len, NULL) < 0)
                continue;
            bool ok = !memchr(text, '\0', len) && import_cifar10_meta_names(text, found, NULL) == 0;
            for (int k = 0; ok && k < DATASET_CLASSES; k++)
                snprintf(names[k], TENSORFILE_NAME_MAX + 1, "%s", found[k]);
            free(text);
            if (ok)
                return;
        }
    } else if (mentions_fashion(c->name) || mentions_fashion(c->path)) {
        fixed = fashion_names;
    }
    for (int k = 0; k < DATASET_CLASSES; k++)
        snprintf(names[k], TENSORFILE_NAME_MAX + 1, "%s", fixed[k]);
}

/* (h, w, c) of configured set c. */
static void configured_shape(const struct runner_dataset *c, int shape[3])
{
    bool cifar = strcmp(c->format, "cifar10") == 0;
    shape[0] = shape[1] = cifar ? 32 : 28;
    shape[2] = cifar ? 3 : 1;
}

static cJSON *configured_json(const struct runner_dataset *c)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", c->name);
    cJSON_AddStringToObject(m, "source", "config");
    cJSON_AddStringToObject(m, "format", c->format);
    cJSON_AddBoolToObject(m, "read_only", true);
    struct stat st;
    cJSON_AddBoolToObject(m, "available", stat(c->path, &st) == 0 && S_ISDIR(st.st_mode));
    int shape[3];
    configured_shape(c, shape);
    cJSON_AddItemToObject(m, "input_shape", cJSON_CreateIntArray(shape, 3));
    cJSON_AddStringToObject(m, "dtype", "uint8");
    char names[DATASET_CLASSES][TENSORFILE_NAME_MAX + 1];
    configured_class_names(c, names);
    cJSON *arr = cJSON_AddArrayToObject(m, "classes");
    for (int k = 0; arr && k < DATASET_CLASSES; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[k]);
        cJSON_AddItemToArray(arr, o);
    }
    add_targets(m, 0);
    return m;
}

int datasets_get(struct datasets *ds, const char *name, char **ret_json)
{
    if (datasets_check_name(name, NULL) < 0)
        return -ENOENT;
    pthread_mutex_lock(&ds->lock);
    cJSON *m = NULL;
    for (int i = 0; i < ds->n_configured && !m; i++)
        if (strcmp(ds->configured[i].name, name) == 0)
            m = configured_json(&ds->configured[i]);
    if (!m)
        m = read_manifest(ds, name);
    if (m)
        add_jobs(ds, m, name);
    pthread_mutex_unlock(&ds->lock);
    if (!m)
        return -ENOENT;
    return render(m, ret_json);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int datasets_list(struct datasets *ds, char **ret_json)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "datasets");
    if (!arr) {
        cJSON_Delete(root);
        return -ENOMEM;
    }
    pthread_mutex_lock(&ds->lock);
    for (int i = 0; i < ds->n_configured; i++) {
        cJSON *m = configured_json(&ds->configured[i]);
        add_jobs(ds, m, ds->configured[i].name);
        cJSON_AddItemToArray(arr, m);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *dir = opendir(ds->dir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (datasets_check_name(e->d_name, NULL) < 0 || is_configured(ds, e->d_name))
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nn = realloc(names, cap * sizeof(*nn));
                if (!nn)
                    break;
                names = nn;
            }
            if ((names[n] = strdup(e->d_name)) != NULL)
                n++;
        }
        closedir(dir);
    }
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        cJSON *m = read_manifest(ds, names[i]);
        if (m) {
            add_jobs(ds, m, names[i]);
            cJSON_AddItemToArray(arr, m);
        }
        free(names[i]);
    }
    free(names);
    pthread_mutex_unlock(&ds->lock);
    return render(root, ret_json);
}

int datasets_remove(struct datasets *ds, const char *name, struct diag *d)
{
    if (datasets_check_name(name, NULL) < 0)
        return -ENOENT;
    pthread_mutex_lock(&ds->lock);
    int r = 0;
    char path[PATH_MAX + 64], gone[PATH_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s", ds->dir, name);
    struct stat st;
    if (is_configured(ds, name)) {
        r = diag_set(d, -EPERM, "name", "'%s' is a configured data set (read-only)", name);
    } else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        r = -ENOENT;
    } else if (ds->usage) {
        cJSON *ids = cJSON_CreateArray();
        int n = ds->usage(ds->usage_ctx, name, true, ids);
        if (n > 0) {
            char *list = cJSON_PrintUnformatted(ids);
            r = diag_set(d, -EBUSY, "name", "data set '%s' is used by %d queued or running "
                         "job(s): %s", name, n, list ? list : "");
            free(list);
        }
        cJSON_Delete(ids);
    }
    if (r == 0) {
        snprintf(gone, sizeof(gone), "%s/" FSUTIL_TEMP_PREFIX "deleted-%s-%ld-%lu", ds->dir, name,
                 (long)getpid(), atomic_fetch_add(&ds->counter, 1));
        if (rename(path, gone) < 0)
            r = diag_set(d, -errno, "name", "rename: %s", strerror(errno));
    }
    pthread_mutex_unlock(&ds->lock);
    if (r == 0)
        remove_below(ds, strrchr(gone, '/') + 1); /* jobs that mapped the file keep it */
    return r;
}

int datasets_resolve(void *ctx, const char *name, struct runner_dataset *ret)
{
    struct datasets *ds = ctx;
    if (!ds || datasets_check_name(name, NULL) < 0)
        return -ENOENT;
    struct runner_dataset r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.format, sizeof(r.format), "tensor");
    if (snprintf(r.path, sizeof(r.path), "%s/%s/" DATA_FILE, ds->dir, name) >=
        (int)sizeof(r.path))
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(r.path, &st) != 0 || !S_ISREG(st.st_mode))
        return -ENOENT;
    *ret = r;
    return 0;
}

void datasets_free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int datasets_describe(struct datasets *ds, const char *name, int ret_shape[3], int *ret_classes,
                      int *ret_target_width, enum pixels_type *ret_pixels, char ***ret_names,
                      struct diag *d)
{
    int shape[3] = {0, 0, 0}, n = 0, width = 0;
    enum pixels_type pixels = PIXELS_UINT8;
    char **names = NULL;
    cJSON *m = NULL;
    char fixed[DATASET_CLASSES][TENSORFILE_NAME_MAX + 1];
    pthread_mutex_lock(&ds->lock);
    for (int i = 0; i < ds->n_configured; i++) {
        const struct runner_dataset *c = &ds->configured[i];
        if (strcmp(c->name, name) != 0)
            continue;
        configured_shape(c, shape);
        configured_class_names(c, fixed);
        n = DATASET_CLASSES;
    }
    if (n == 0 && datasets_check_name(name, NULL) == 0)
        m = read_manifest(ds, name);
    pthread_mutex_unlock(&ds->lock);
    int r = 0;
    if (m) {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(m, "input_shape");
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(m, "classes");
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(m, "dtype");
        width = manifest_target_width(m);
        n = width > 0 ? width : cJSON_IsArray(cl) ? cJSON_GetArraySize(cl) : 0;
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) != 3 || n < 1 || !cJSON_IsString(dt)) {
            cJSON_Delete(m);
            return diag_set(d, -EIO, "/dataset", "data set '%s' has a damaged manifest", name);
        }
        for (int i = 0; i < 3; i++)
            shape[i] = cJSON_GetArrayItem(sh, i)->valueint;
        pixels = strcmp(dt->valuestring, tensorfile_dtype_name(TENSORFILE_DTYPE_FLOAT32)) == 0
                     ? PIXELS_FLOAT32
                     : PIXELS_UINT8;
    } else if (n == 0) {
        return diag_set(d, -ENOENT, "/dataset", "no data set '%s'", name);
    }
    names = calloc((size_t)n, sizeof(*names));
    for (int k = 0; names && k < n; k++) {
        const cJSON *nm = m && width == 0 ? cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
                                  cJSON_GetObjectItemCaseSensitive(m, "classes"), k), "name")
                            : NULL;
        char num[16];
        snprintf(num, sizeof(num), "%d", k);
        names[k] = strdup(!m ? fixed[k] : cJSON_IsString(nm) ? nm->valuestring : num);
        if (!names[k])
            r = -ENOMEM;
    }
    cJSON_Delete(m);
    if (!names || r < 0) {
        datasets_free_names(names, n);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    memcpy(ret_shape, shape, sizeof(shape));
    *ret_classes = n;
    if (ret_target_width)
        *ret_target_width = width;
    if (ret_pixels)
        *ret_pixels = pixels;
    *ret_names = names;
    return 0;
}
