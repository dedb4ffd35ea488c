/* h5.c - Keras weight files (tf.keras weights-only and full-model HDF5,
 * Keras 3 .weights.h5) and traind's resume file: writing, reading back,
 * layout detection.  The only file of the project that includes <hdf5.h>.
 *
 * Files are built in memory with HDF5's core driver (no backing store),
 * then handed to fsutil_write_file_atomic; files are read into memory with
 * fsutil_read_file and opened as an image.  HDF5 is the serial build, so
 * every HDF5 call happens with h5_lock held.  String attributes follow what
 * Keras gets from h5py: Python bytes become variable-length ASCII strings,
 * Python str variable-length UTF-8; the name lists (layer_names,
 * weight_names) are numpy 'S' arrays of fixed-length, NUL-padded ASCII
 * strings as tf.keras stores them (np.asarray of the encoded names), and an
 * empty list a float64 array of shape (0,).  Object timestamps are off so that
 * equal weights give byte-identical files. */
#include "h5.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nettle/sha2.h>

#include "compile_config.h"
#include "fsutil.h"
#include "keras_archive.h"

#define H5_MAX_FILE_BYTES ((size_t)1 << 33)
/* Resume files start with an HDF5 user block (which HDF5 skips) holding
 * "TRAIND-H5\nsha256 <hex of every byte after the block>\n": the bytes are
 * checked before HDF5, which trusts file metadata and can crash on a
 * corrupted file (seen with 1.10.8: SEGV in H5HG_read), parses any of them. */
#define H5_USERBLOCK 512
#define H5_HEADER_MAGIC "TRAIND-H5\n"
#define H5_MAX_LIST 100000

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static bool h5_ready;
static unsigned long h5_file_counter;

static void h5_enter(void)
{
    pthread_mutex_lock(&h5_lock);
    if (!h5_ready) {
        H5open();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        h5_ready = true;
    }
}

static void h5_leave(void)
{
    H5Eclear2(H5E_DEFAULT);
    pthread_mutex_unlock(&h5_lock);
}

/* --- errors --------------------------------------------------------------- */

static herr_t error_walk_cb(unsigned n, const H5E_error2_t *err, void *data)
{
    char *msg = data;
    if (n == 0 && err && err->desc)
        snprintf(msg, 256, "%s", err->desc);
    return 0;
}

/* Fill d with what plus the innermost HDF5 error message; returns err. */
static int h5_fail(struct diag *d, int err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int h5_fail(struct diag *d, int err, const char *field, const char *fmt, ...)
{
    char what[256], msg[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, error_walk_cb, msg);
    H5Eclear2(H5E_DEFAULT);
    if (msg[0])
        return diag_set(d, err, field, "%s: %s", what, msg);
    return diag_set(d, err, field, "%s", what);
}

static void close_id(hid_t id)
{
    if (id < 0)
        return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
}

/* --- names ---------------------------------------------------------------- */

const char *h5_layout_name(enum h5_layout layout)
{
    switch (layout) {
    case H5_LAYOUT_TF_WEIGHTS: return "tf_weights";
    case H5_LAYOUT_TF_MODEL: return "tf_model";
    case H5_LAYOUT_KERAS3_WEIGHTS: return "keras3_weights";
    case H5_LAYOUT_KERAS_ARCHIVE: return "keras_archive";
    }
    return "unknown";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int h5_layout_for_path(const char *path, bool save_weights_only, enum h5_layout *ret,
                       struct diag *d)
{
    if (!path)
        return diag_set(d, -EINVAL, "", "no file path");
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (ends_with(base, ".weights.h5") && strlen(base) > strlen(".weights.h5")) {
        if (!save_weights_only)
            return diag_set(d, -EINVAL, path,
                            "a .weights.h5 file holds weights only: set save_weights_only "
                            "or use .h5, .hdf5 or .keras");
        *ret = H5_LAYOUT_KERAS3_WEIGHTS;
        return 0;
    }
    if (ends_with(base, ".keras") && strlen(base) > strlen(".keras")) {
        if (save_weights_only)
            return diag_set(d, -EINVAL, path,
                            "a .keras file holds a full model: use .weights.h5 or .h5 with "
                            "save_weights_only");
        *ret = H5_LAYOUT_KERAS_ARCHIVE;
        return 0;
    }
    static const char *const exts[] = {".h5", ".hdf5"};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (ends_with(base, exts[i]) && strlen(base) > strlen(exts[i])) {
            *ret = save_weights_only ? H5_LAYOUT_TF_WEIGHTS : H5_LAYOUT_TF_MODEL;
            return 0;
        }
    }
    return diag_set(d, -EINVAL, path,
                    "unsupported file extension: use .h5, .hdf5, .keras or .weights.h5");
}

/* Keras' naming.to_snake_case of a class name: "_" before a capital that
 * starts a lower-case word or follows a lower-case letter, then lower case
 * ("MaxPooling2D" -> "max_pooling2d", "BatchNormalization" ->
 * "batch_normalization"). */
static void snake_case(const char *cls, char *out, size_t outsz)
{
    size_t k = 0;
    for (size_t i = 0; cls[i] && k + 2 < outsz; i++) {
        char c = cls[i];
        bool upper = c >= 'A' && c <= 'Z';
        bool word = upper && cls[i + 1] >= 'a' && cls[i + 1] <= 'z';
        bool after_lower = i > 0 && cls[i - 1] >= 'a' && cls[i - 1] <= 'z';
        if (i > 0 && upper && (word || after_lower) && out[k - 1] != '_')
            out[k++] = '_';
        out[k++] = upper ? (char)(c - 'A' + 'a') : c;
    }
    out[k] = '\0';
}

/* Keras 3 container key of a layer (saving_lib._save_container_state): the
 * snake-case class name, numbered from the second layer of the same class
 * on (conv2d, conv2d_1, ...). */
static void keras3_layer_key(const struct model *m, int li, char *out, size_t outsz)
{
    enum layer_kind kind = m->layers[li].cfg.kind;
    char key[64];
    snake_case(layer_kind_class_name(kind), key, sizeof(key));
    int same = 0;
    for (int i = 0; i < li; i++)
        same += m->layers[i].cfg.kind == kind;
    if (same == 0)
        snprintf(out, outsz, "layers/%s", key);
    else
        snprintf(out, outsz, "layers/%s_%d", key, same);
}

/* The rows of m's weight table that belong to layer li: one run, as the
 * table is in layer order (check_model).  Every layout's per-layer groups are
 * written and read from these rows, so the table alone orders a file. */
struct layer_rows {
    const struct model_weight *v;
    int n;
};

static struct layer_rows layer_rows(const struct model *m, int li)
{
    int t = 0, n = 0;
    while (t < m->n_weights && m->weights[t].layer < li)
        t++;
    while (t + n < m->n_weights && m->weights[t + n].layer == li)
        n++;
    return (struct layer_rows){m->weights + t, n};
}

/* --- writing primitives (h5_lock held) ------------------------------------ */

static hid_t group_create(hid_t loc, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0)
        return -1;
    hid_t g = -1;
    if (H5Pset_obj_track_times(gcpl, 0) >= 0)
        g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* Open or create the group name under loc. */
static hid_t group_require(hid_t loc, const char *name)
{
    htri_t e = H5Lexists(loc, name, H5P_DEFAULT);
    if (e < 0)
        return -1;
    return e > 0 ? H5Gopen2(loc, name, H5P_DEFAULT) : group_create(loc, name);
}

static hid_t str_type(bool utf8)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 ||
        H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) < 0 ||
        H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static int attr_write_str(hid_t loc, const char *name, const char *value, bool utf8,
                          struct diag *d)
{
    hid_t t = str_type(utf8), s = H5Screate(H5S_SCALAR), a = -1;
    int r = 0;
    if (t < 0 || s < 0)
        r = -EIO;
    if (r == 0 && (a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        r = -EIO;
    if (r == 0 && H5Awrite(a, t, &value) < 0)
        r = -EIO;
    close_id(a);
    close_id(s);
    close_id(t);
    return r < 0 ? h5_fail(d, r, name, "encode: attribute %s", name) : 0;
}

/* One attribute of n fixed-length strings of `width` bytes each (NUL padded,
 * ASCII: numpy's 'S<width>' as h5py stores it) from buf (n * width bytes). */
static int attr_write_fixed(hid_t loc, const char *name, const char *buf, size_t n, size_t width)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate_simple(1, dims, NULL), a = -1;
    int r = 0;
    if (t < 0 || s < 0 || H5Tset_size(t, width) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t, H5T_CSET_ASCII) < 0)
        r = -EIO;
    if (r == 0 && (a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        r = -EIO;
    if (r == 0 && H5Awrite(a, t, buf) < 0)
        r = -EIO;
    close_id(a);
    close_id(s);
    close_id(t);
    return r;
}

/* Keras' save_attributes_to_hdf5_group for a list of names: the bytes of
 * each name in one numpy 'S' array (width = the longest name, at least 1),
 * stored as fixed-length strings (what h5py makes of a numpy 'S' array, and
 * what Keras' loaders of every version read back with .decode()); split as
 * np.array_split into name0, name1, ... while a part is over
 * HDF5_OBJECT_HEADER_LIMIT bytes.  An empty list is float64 (0,), as h5py
 * stores np.asarray([]). */
static int attr_write_strlist(hid_t loc, const char *name, const char *const *v, int n,
                              struct diag *d)
{
    enum { HEADER_LIMIT = 64512 };
    int r = 0;
    if (n == 0) {
        hsize_t dims[1] = {0};
        hid_t t = H5Tcopy(H5T_IEEE_F64LE), s = H5Screate_simple(1, dims, NULL), a = -1;
        if (t < 0 || s < 0 || (a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) < 0)
            r = -EIO;
        close_id(a);
        close_id(s);
        close_id(t);
        return r < 0 ? h5_fail(d, r, name, "encode: attribute %s", name) : 0;
    }
    size_t width = 1, count = (size_t)n;
    for (size_t i = 0; i < count; i++)
        if (strlen(v[i]) > width)
            width = strlen(v[i]);
    char *buf = calloc(count, width);
    if (!buf)
        return diag_set(d, -ENOMEM, name, "out of memory");
    for (size_t i = 0; i < count; i++)
        memcpy(buf + i * width, v[i], strlen(v[i]));
    size_t chunks = 1;
    while ((count + chunks - 1) / chunks * width > HEADER_LIMIT)
        chunks++;
    if (chunks == 1) {
        r = attr_write_fixed(loc, name, buf, count, width);
    } else {
        size_t at = 0;
        for (size_t k = 0; k < chunks && r == 0; k++) {
            size_t part = count / chunks + (k < count % chunks); /* np.array_split */
            char cname[128];
            snprintf(cname, sizeof(cname), "%s%zu", name, k);
            r = attr_write_fixed(loc, cname, buf + at * width, part, width);
            at += part;
        }
    }
    free(buf);
    return r < 0 ? h5_fail(d, r, name, "encode: attribute %s", name) : 0;
}

static int attr_write_i64(hid_t loc, const char *name, int64_t v, struct diag *d)
{
    hid_t s = H5Screate(H5S_SCALAR), a = -1;
    int r = 0;
    if (s < 0)
        r = -EIO;
    if (r == 0 &&
        (a = H5Acreate2(loc, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        r = -EIO;
    if (r == 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) < 0)
        r = -EIO;
    close_id(a);
    close_id(s);
    return r < 0 ? h5_fail(d, r, name, "encode: attribute %s", name) : 0;
}

/* Dataset at path below loc; '/' in path creates groups as h5py does.
 * ndim 0 = scalar.  is_i64 selects an int64 scalar (v_i64) instead of
 * float32 data. */
static int dataset_write(hid_t loc, const char *path, int ndim, const int *shape,
                         const float *data, bool is_i64, int64_t v_i64, struct diag *d)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    hid_t parent = loc;
    char *p = buf;
    int r = 0;
    hid_t dcpl = -1, s = -1, ds = -1;
    for (char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        *slash = '\0';
        hid_t g = group_require(parent, p);
        if (parent != loc)
            H5Gclose(parent);
        parent = g;
        if (g < 0) {
            r = -EIO;
            goto out;
        }
    }
    hsize_t dims[4];
    for (int i = 0; i < ndim; i++)
        dims[i] = (hsize_t)shape[i];
    s = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (s < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) {
        r = -EIO;
        goto out;
    }
    ds = H5Dcreate2(parent, p, is_i64 ? H5T_STD_I64LE : H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl,
                    H5P_DEFAULT);
    if (ds < 0) {
        r = -EIO;
        goto out;
    }
    herr_t w = is_i64 ? H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v_i64)
                      : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (w < 0)
        r = -EIO;
out:
    close_id(ds);
    close_id(dcpl);
    close_id(s);
    if (parent != loc)
        close_id(parent);
    return r < 0 ? h5_fail(d, r, path, "encode: dataset %s", path) : 0;
}

/* --- layouts -------------------------------------------------------------- */

static const struct model *sort_model; /* qsort context; h5_lock held */

static int cmp_layer_name(const void *a, const void *b)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    return strcmp(sort_model->layers[ia].cfg.name, sort_model->layers[ib].cfg.name);
}

/* tf.keras save_weights_to_hdf5_group(g, model). */
static int write_tf_weights(hid_t g, const struct model *m, struct diag *d)
{
    int n = m->n_layers, r = 0;
    const char **names = calloc((size_t)n + 1, sizeof(*names));
    int *order = calloc((size_t)n + 1, sizeof(*order));
    if (!names || !order) {
        r = diag_set(d, -ENOMEM, "", "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        names[i] = m->layers[i].cfg.name;
        order[i] = i;
    }
    if ((r = attr_write_strlist(g, "layer_names", names, n, d)) < 0 ||
        (r = attr_write_str(g, "backend", H5_BACKEND, false, d)) < 0 ||
        (r = attr_write_str(g, "keras_version", H5_KERAS_VERSION, false, d)) < 0)
        goto out;
    sort_model = m;
    qsort(order, (size_t)n, sizeof(*order), cmp_layer_name);
    for (int k = 0; k < n && r == 0; k++) {
        const struct layer *L = &m->layers[order[k]];
        hid_t lg = group_create(g, L->cfg.name);
        if (lg < 0) {
            r = h5_fail(d, -EIO, L->cfg.name, "encode: group %s", L->cfg.name);
            break;
        }
        struct layer_rows rows = layer_rows(m, order[k]);
        char wn[LAYER_MAX_WEIGHTS][160];
        const char *wp[LAYER_MAX_WEIGHTS];
        for (int j = 0; j < rows.n; j++) {
            snprintf(wn[j], sizeof(wn[j]), "%s/%s:0", L->cfg.name, rows.v[j].w->name);
            wp[j] = wn[j];
        }
        r = attr_write_strlist(lg, "weight_names", wp, rows.n, d);
        for (int j = 0; j < rows.n && r == 0; j++) {
            const struct weight *w = rows.v[j].w;
            r = dataset_write(lg, wn[j], w->ndim, w->shape, m->params + w->offset, false, 0, d);
        }
        H5Gclose(lg);
    }
out:
    free(names);
    free(order);
    return r;
}

/* Number of trainable weights (tensors) of m. */
static int count_trainable(const struct model *m)
{
    int n = 0;
    for (int k = 0; k < m->n_weights; k++)
        n += m->weights[k].w->trainable;
    return n;
}

/* tf.keras save_optimizer_weights_to_hdf5_group: iter, then each slot kind
 * over the trainable weights ("SGD/conv2d/kernel/momentum:0"). */
static int write_tf_optimizer(hid_t root, const struct optimizer *opt, const struct model *m,
                              struct diag *d)
{
    const char *cls = optimizer_class_name(opt);
    int n = 1 + opt->n_slots * count_trainable(m), k = 0, r = 0;
    char (*names)[256] = calloc((size_t)n, sizeof(*names));
    const char **ptrs = calloc((size_t)n, sizeof(*ptrs));
    hid_t g = -1;
    if (!names || !ptrs) {
        r = diag_set(d, -ENOMEM, "", "out of memory");
        goto out;
    }
    snprintf(names[k++], 256, "%s/iter:0", cls);
    for (int s = 0; s < opt->n_slots; s++)
        for (int t = 0; t < m->n_weights; t++)
            if (m->weights[t].w->trainable)
                snprintf(names[k++], 256, "%s/%s/%s/%s:0", cls,
                         m->layers[m->weights[t].layer].cfg.name, m->weights[t].w->name,
                         optimizer_slot_name(opt, s));
    for (int i = 0; i < n; i++)
        ptrs[i] = names[i];
    g = group_create(root, "optimizer_weights");
    if (g < 0) {
        r = h5_fail(d, -EIO, "optimizer_weights", "encode: group optimizer_weights");
        goto out;
    }
    if ((r = attr_write_strlist(g, "weight_names", ptrs, n, d)) < 0)
        goto out;
    if ((r = dataset_write(g, names[0], 0, NULL, NULL, true, opt->iterations, d)) < 0)
        goto out;
    k = 1;
    for (int s = 0; s < opt->n_slots && r == 0; s++)
        for (int t = 0; t < m->n_weights && r == 0; t++) {
            const struct weight *w = m->weights[t].w;
            if (w->trainable)
                r = dataset_write(g, names[k++], w->ndim, w->shape, opt->slots[s] + w->offset,
                                  false, 0, d);
        }
out:
    close_id(g);
    free(names);
    free(ptrs);
    return r;
}

/* tf.keras save_model_to_hdf5. */
static int write_tf_model(hid_t f, const struct model *m, const struct optimizer *opt,
                          const struct compile_spec *compile, struct diag *d)
{
    char *model_json = model_spec_to_json(&m->spec);
    char *tc = NULL;
    int r = 0;
    hid_t g = -1;
    if (!model_json) {
        r = diag_set(d, -ENOMEM, "", "encode: model_spec_to_json failed");
        goto out;
    }
    /* tf.keras writes training_config for a compiled model */
    if (compile || opt) {
        tc = compile_config_to_json(compile, opt, KERAS_FLAVOUR_TF2);
        if (!tc) {
            r = diag_set(d, -ENOMEM, "", "encode: training_config failed");
            goto out;
        }
    }
    if ((r = attr_write_str(f, "keras_version", H5_KERAS_VERSION, true, d)) < 0 ||
        (r = attr_write_str(f, "backend", H5_BACKEND, true, d)) < 0 ||
        (r = attr_write_str(f, "model_config", model_json, false, d)) < 0)
        goto out;
    if (tc && (r = attr_write_str(f, "training_config", tc, false, d)) < 0)
        goto out;
    g = group_create(f, "model_weights");
    if (g < 0) {
        r = h5_fail(d, -EIO, "model_weights", "encode: group model_weights");
        goto out;
    }
    if ((r = write_tf_weights(g, m, d)) < 0)
        goto out;
    if (opt)
        r = write_tf_optimizer(f, opt, m, d);
out:
    close_id(g);
    free(model_json);
    free(tc);
    return r;
}

/* Keras 3 saving_lib.save_weights_only for a Sequential model. */
static int write_keras3(hid_t f, const struct model *m, const struct optimizer *opt,
                        struct diag *d)
{
    int r = 0;
    hid_t g = group_create(f, "vars");
    if (g < 0)
        return h5_fail(d, -EIO, "vars", "encode: group vars");
    H5Gclose(g);
    for (int i = 0; i < m->n_layers && r == 0; i++) {
        struct layer_rows rows = layer_rows(m, i);
        char key[128], path[160];
        keras3_layer_key(m, i, key, sizeof(key));
        snprintf(path, sizeof(path), "%s/vars", key);
        hid_t lg = group_require(f, "layers");
        hid_t cg = lg >= 0 ? group_create(lg, key + strlen("layers/")) : -1;
        hid_t vg = cg >= 0 ? group_create(cg, "vars") : -1;
        if (vg < 0)
            r = h5_fail(d, -EIO, path, "encode: group %s", path);
        for (int j = 0; j < rows.n && r == 0; j++) {
            char idx[16];
            snprintf(idx, sizeof(idx), "%d", j);
            const struct weight *w = rows.v[j].w;
            r = dataset_write(vg, idx, w->ndim, w->shape, m->params + w->offset, false, 0, d);
        }
        close_id(vg);
        close_id(cg);
        close_id(lg);
    }
    if (r < 0 || !opt)
        return r;
    hid_t og = group_create(f, "optimizer");
    hid_t vg = og >= 0 ? group_create(og, "vars") : -1;
    if (vg < 0)
        r = h5_fail(d, -EIO, "optimizer/vars", "encode: group optimizer/vars");
    if (r == 0)
        r = dataset_write(vg, "0", 0, NULL, NULL, true, opt->iterations, d);
    if (r == 0) {
        float lr = (float)opt->cfg.learning_rate;
        r = dataset_write(vg, "1", 0, NULL, &lr, false, 0, d);
    }
    /* Keras 3 optimizers create their variables per model variable
     * (add_optimizer_variables: for each variable, each slot), after
     * iterations and learning_rate. */
    int k = 2;
    for (int t = 0; t < m->n_weights && r == 0; t++)
        for (int s = 0; s < opt->n_slots && r == 0; s++) {
            const struct weight *w = m->weights[t].w;
            if (!w->trainable)
                continue;
            char idx[16];
            snprintf(idx, sizeof(idx), "%d", k++);
            r = dataset_write(vg, idx, w->ndim, w->shape, opt->slots[s] + w->offset, false, 0, d);
        }
    close_id(vg);
    close_id(og);
    return r;
}

/* --- resume checksum ------------------------------------------------------ */

/* SHA-256 over what a resume file restores, in file order: every weight,
 * every slot of every trainable weight, iterations, epoch, state_json. */
static void resume_checksum(const struct model *m, const float *params, const struct optimizer *opt,
                            float *const *slots, int64_t iterations, int64_t epoch,
                            const char *state_json, char ret_hex[65])
{
    struct sha256_ctx ctx;
    uint8_t sha[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    for (int t = 0; t < m->n_weights; t++) {
        const struct weight *w = m->weights[t].w;
        sha256_update(&ctx, w->size * sizeof(float), (const uint8_t *)(params + w->offset));
    }
    for (int s = 0; s < opt->n_slots; s++)
        for (int t = 0; t < m->n_weights; t++) {
            const struct weight *w = m->weights[t].w;
            if (w->trainable)
                sha256_update(&ctx, w->size * sizeof(float),
                              (const uint8_t *)(slots[s] + w->offset));
        }
    sha256_update(&ctx, sizeof(iterations), (const uint8_t *)&iterations);
    sha256_update(&ctx, sizeof(epoch), (const uint8_t *)&epoch);
    sha256_update(&ctx, strlen(state_json), (const uint8_t *)state_json);
    sha256_digest(&ctx, sizeof(sha), sha);
    fsutil_sha256_hex(sha, ret_hex);
}

/* --- saving --------------------------------------------------------------- */

struct resume_extra {
    int64_t epoch;
    const char *state_json;
};

/* Build the file in memory; returns a malloc'ed image. */
static int encode_file(enum h5_layout layout, const struct model *m, const struct optimizer *opt,
                       const struct compile_spec *compile, const struct resume_extra *resume,
                       void **ret_image, size_t *ret_len, struct diag *d)
{
    int r = 0;
    void *image = NULL;
    ssize_t len = 0;
    h5_enter();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE), f = -1;
    /* Grow the in-memory file in one step: the data plus room for metadata. */
    size_t increment = m->n_params * sizeof(float) * (size_t)(opt ? 1 + opt->n_slots : 1) +
                       ((size_t)1 << 20);
    if (fapl < 0 || fcpl < 0 || H5Pset_fapl_core(fapl, increment, 0) < 0 ||
        (resume && H5Pset_userblock(fcpl, H5_USERBLOCK) < 0)) {
        r = h5_fail(d, -EIO, "", "encode: file properties");
        goto out;
    }
    char name[64];
    snprintf(name, sizeof(name), "traind-out-%lu.h5", h5_file_counter++);
    f = H5Fcreate(name, H5F_ACC_TRUNC, fcpl, fapl);
    if (f < 0) {
        r = h5_fail(d, -EIO, "", "encode: create in-memory file");
        goto out;
    }
    switch (layout) {
    case H5_LAYOUT_TF_WEIGHTS: r = write_tf_weights(f, m, d); break;
    case H5_LAYOUT_TF_MODEL: r = write_tf_model(f, m, opt, compile, d); break;
    case H5_LAYOUT_KERAS3_WEIGHTS: r = write_keras3(f, m, opt, d); break;
    default: r = diag_set(d, -EINVAL, "", "unknown layout %d", (int)layout); break;
    }
    if (r == 0 && resume) {
        char hex[65];
        resume_checksum(m, m->params, opt, opt->slots, opt->iterations, resume->epoch,
                        resume->state_json, hex);
        if ((r = attr_write_i64(f, "traind_resume_version", H5_RESUME_VERSION, d)) == 0 &&
            (r = attr_write_i64(f, "epoch", resume->epoch, d)) == 0 &&
            (r = attr_write_str(f, "state_json", resume->state_json, true, d)) == 0)
            r = attr_write_str(f, "traind_checksum", hex, false, d);
    }
    if (r < 0)
        goto out;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (len = H5Fget_file_image(f, NULL, 0)) <= 0) {
        r = h5_fail(d, -EIO, "", "encode: flush in-memory file");
        goto out;
    }
    image = malloc((size_t)len);
    if (!image) {
        r = diag_set(d, -ENOMEM, "", "encode: out of memory for %zd bytes", len);
        goto out;
    }
    if (H5Fget_file_image(f, image, (size_t)len) != len) {
        r = h5_fail(d, -EIO, "", "encode: get file image");
        goto out;
    }
    herr_t cr = H5Fclose(f);
    f = -1;
    if (cr < 0) {
        r = h5_fail(d, -EIO, "", "encode: H5Fclose");
        goto out;
    }
    if ((r = fsutil_fault_take(FSUTIL_STEP_ENCODE)) < 0) {
        r = diag_set(d, r, "", "encode: H5Fclose: %s", strerror(-r));
        goto out;
    }
    if (resume) {
        /* The image starts at the superblock; the file starts with the user
         * block HDF5 reserved for it. */
        uint8_t sha[32];
        char hex[65];
        char *file = malloc((size_t)len + H5_USERBLOCK);
        if (!file) {
            r = diag_set(d, -ENOMEM, "", "encode: out of memory for %zd bytes", len);
            goto out;
        }
        fsutil_sha256(image, (size_t)len, sha);
        fsutil_sha256_hex(sha, hex);
        memset(file, 0, H5_USERBLOCK);
        snprintf(file, H5_USERBLOCK, "%ssha256 %s\n", H5_HEADER_MAGIC, hex);
        memcpy(file + H5_USERBLOCK, image, (size_t)len);
        free(image);
        image = file;
        len += H5_USERBLOCK;
    }
out:
    close_id(f);
    close_id(fcpl);
    close_id(fapl);
    h5_leave();
    if (r < 0) {
        free(image);
        return r;
    }
    *ret_image = image;
    *ret_len = (size_t)len;
    return 0;
}

static int check_model(const struct model *m, struct diag *d)
{
    if (!m || !m->layers || !m->params || !m->weights)
        return diag_set(d, -EINVAL, "", "no model");
    for (int t = 0; t < m->n_weights; t++) {
        const struct model_weight *row = &m->weights[t];
        if (row->layer < 0 || row->layer >= m->n_layers ||
            (t > 0 && row->layer < m->weights[t - 1].layer))
            return diag_set(d, -EINVAL, "", "weight table row %d: bad layer %d", t, row->layer);
        const char *lname = m->layers[row->layer].cfg.name;
        if (layer_rows(m, row->layer).n > LAYER_MAX_WEIGHTS)
            return diag_set(d, -EINVAL, lname, "more than %d weights", LAYER_MAX_WEIGHTS);
        const struct weight *w = row->w;
        if (w->ndim < 0 || w->ndim > 4 || w->offset + w->size > m->n_params)
            return diag_set(d, -EINVAL, lname, "bad weight %s", w->name);
    }
    return 0;
}

/* Keras 3 model.save("x.keras"): the zip of metadata.json, config.json and
 * model.weights.h5 (model variables only: the optimizer's are left out). */
static int encode_archive(const struct model *m, const struct optimizer *opt,
                          const struct compile_spec *compile, void **ret_zip, size_t *ret_len,
                          struct diag *d)
{
    void *weights = NULL;
    size_t wlen = 0;
    char *cc = NULL, *config = NULL, *meta = NULL;
    int64_t now = (int64_t)time(NULL);
    int r = encode_file(H5_LAYOUT_KERAS3_WEIGHTS, m, NULL, NULL, NULL, &weights, &wlen, d);
    if (r < 0)
        return r;
    if (compile || opt)
        cc = compile_config_to_json(compile, opt, KERAS_FLAVOUR_KERAS3);
    config = keras_archive_config_json(&m->spec, cc);
    meta = keras_archive_metadata_json(now);
    if (!config || !meta || ((compile || opt) && !cc))
        r = diag_set(d, -ENOMEM, "", "encode: config.json / metadata.json");
    else
        r = keras_archive_pack(meta, config, weights, wlen, now, ret_zip, ret_len, d);
    free(weights);
    free(cc);
    free(config);
    free(meta);
    return r;
}

int h5_save(const char *dir, const char *relpath, enum h5_layout layout, const struct model *m,
            const struct optimizer *opt, const struct compile_spec *compile,
            uint8_t ret_sha256[32], uint64_t *ret_bytes, enum fsutil_step *ret_step,
            struct diag *d)
{
    enum fsutil_step step = FSUTIL_STEP_WRITE;
    int r = check_model(m, d);
    if (r < 0)
        goto fail;
    if (layout == H5_LAYOUT_TF_WEIGHTS)
        opt = NULL;
    void *image;
    size_t len;
    if (layout == H5_LAYOUT_KERAS_ARCHIVE)
        r = encode_archive(m, opt, compile, &image, &len, d);
    else
        r = encode_file(layout, m, opt, compile, NULL, &image, &len, d);
    if (r < 0) {
        diag_prefix(d, relpath);
        step = FSUTIL_STEP_ENCODE;
        goto fail;
    }
    r = fsutil_write_file_atomic(dir, relpath, image, len, ret_sha256, ret_step, d);
    free(image);
    if (r == 0 && ret_bytes)
        *ret_bytes = len;
    return r;
fail:
    if (ret_step)
        *ret_step = step;
    return r;
}

int h5_save_resume(const char *dir, const char *relpath, const struct model *m,
                   const struct optimizer *opt, int epoch, const char *state_json,
                   const struct compile_spec *compile, struct diag *d)
{
    int r = check_model(m, d);
    if (r < 0)
        return r;
    if (!opt)
        return diag_set(d, -EINVAL, "", "resume needs the optimizer");
    struct resume_extra extra = {.epoch = epoch, .state_json = state_json ? state_json : "{}"};
    void *image;
    size_t len;
    r = encode_file(H5_LAYOUT_TF_MODEL, m, opt, compile, &extra, &image, &len, d);
    if (r < 0) {
        diag_prefix(d, relpath);
        return r;
    }
    r = fsutil_write_file_atomic(dir, relpath, image, len, NULL, NULL, d);
    free(image);
    return r;
}

/* --- reading primitives (h5_lock held) ------------------------------------ */

struct strlist {
    int n;
    char **v;
};

static void strlist_free(struct strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Read a string or string-array attribute (fixed or variable length); an
 * empty array of any type is an empty list. */
static int attr_read_strlist(hid_t loc, const char *name, const char *field,
                             struct strlist *ret, struct diag *d)
{
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = -1, s = -1, mt = -1;
    int r = 0;
    struct strlist l = {0, NULL};
    if (a < 0)
        return h5_fail(d, -EINVAL, field, "attribute %s missing", name);
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (t < 0 || n < 0) {
        r = h5_fail(d, -EINVAL, field, "attribute %s unreadable", name);
        goto out;
    }
    if (n == 0)
        goto out;
    if (H5Tget_class(t) != H5T_STRING || n > H5_MAX_LIST) {
        r = diag_set(d, -EINVAL, field, "attribute %s is not a list of strings", name);
        goto out;
    }
    l.v = calloc((size_t)n, sizeof(*l.v));
    if (!l.v) {
        r = diag_set(d, -ENOMEM, field, "out of memory");
        goto out;
    }
    if (H5Tis_variable_str(t) > 0) {
        char **raw = calloc((size_t)n, sizeof(*raw));
        mt = str_type(H5Tget_cset(t) == H5T_CSET_UTF8);
        if (!raw || mt < 0 || H5Aread(a, mt, raw) < 0) {
            free(raw);
            r = h5_fail(d, -EINVAL, field, "attribute %s unreadable", name);
            goto out;
        }
        for (hssize_t i = 0; i < n; i++) {
            l.v[i] = strdup(raw[i] ? raw[i] : "");
            l.n++;
            if (!l.v[i])
                r = -ENOMEM;
        }
        H5Dvlen_reclaim(mt, s, H5P_DEFAULT, raw);
        free(raw);
    } else {
        size_t sz = H5Tget_size(t);
        char *raw = sz > 0 && sz < (1u << 20) ? malloc((size_t)n * sz) : NULL;
        mt = H5Tcopy(t);
        if (!raw || mt < 0 || H5Aread(a, mt, raw) < 0) {
            free(raw);
            r = h5_fail(d, -EINVAL, field, "attribute %s unreadable", name);
            goto out;
        }
        for (hssize_t i = 0; i < n; i++) {
            size_t k = strnlen(raw + (size_t)i * sz, sz);
            while (k > 0 && raw[(size_t)i * sz + k - 1] == ' ')
                k--;
            /* Fixed-length strings need not be NUL-terminated: copy k bytes. */
            l.v[i] = malloc(k + 1);
            if (l.v[i]) {
                memcpy(l.v[i], raw + (size_t)i * sz, k);
                l.v[i][k] = '\0';
            }
            l.n++;
            if (!l.v[i])
                r = -ENOMEM;
        }
        free(raw);
    }
    if (r < 0)
        r = diag_set(d, r, field, "out of memory");
out:
    close_id(mt);
    close_id(s);
    close_id(t);
    close_id(a);
    if (r < 0)
        strlist_free(&l);
    else
        *ret = l;
    return r;
}

/* Keras' load_attributes_from_hdf5_group: name, or name0, name1, ... */
static int attr_read_strlist_chunked(hid_t loc, const char *name, const char *field,
                                     struct strlist *ret, struct diag *d)
{
    if (H5Aexists(loc, name) > 0)
        return attr_read_strlist(loc, name, field, ret, d);
    struct strlist all = {0, NULL};
    for (int c = 0;; c++) {
        char cname[128];
        snprintf(cname, sizeof(cname), "%s%d", name, c);
        if (H5Aexists(loc, cname) <= 0) {
            if (c == 0)
                return diag_set(d, -EINVAL, field, "attribute %s missing", name);
            break;
        }
        struct strlist part;
        int r = attr_read_strlist(loc, cname, field, &part, d);
        if (r < 0) {
            strlist_free(&all);
            return r;
        }
        char **nv = all.n + part.n > H5_MAX_LIST ? NULL
                    : realloc(all.v, (size_t)(all.n + part.n + 1) * sizeof(*nv));
        if (!nv) {
            strlist_free(&part);
            strlist_free(&all);
            return diag_set(d, -EINVAL, field, "attribute %s too long", name);
        }
        all.v = nv;
        memcpy(all.v + all.n, part.v, (size_t)part.n * sizeof(*nv));
        all.n += part.n;
        free(part.v);
    }
    *ret = all;
    return 0;
}

static int attr_read_string(hid_t loc, const char *name, char **ret, struct diag *d)
{
    struct strlist l;
    int r = attr_read_strlist(loc, name, name, &l, d);
    if (r < 0)
        return r;
    if (l.n != 1) {
        strlist_free(&l);
        return diag_set(d, -EINVAL, name, "attribute %s is not a single string", name);
    }
    *ret = l.v[0];
    free(l.v);
    return 0;
}

static int attr_read_i64(hid_t loc, const char *name, int64_t *ret, struct diag *d)
{
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = -1, s = -1;
    int r = 0;
    if (a < 0)
        return h5_fail(d, -EINVAL, name, "attribute %s missing", name);
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    if (t < 0 || s < 0 || H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(s) != 1)
        r = diag_set(d, -EINVAL, name, "attribute %s is not an integer", name);
    else if (H5Aread(a, H5T_NATIVE_INT64, ret) < 0)
        r = h5_fail(d, -EIO, name, "attribute %s unreadable", name);
    close_id(s);
    close_id(t);
    close_id(a);
    H5Eclear2(H5E_DEFAULT);
    return r;
}

/* Open the dataset at path below loc and read its rank and dimensions.  On
 * success the dataset and its type stay open for the caller (*ret_ds,
 * *ret_type); on failure nothing is left open and the diagnostic names
 * field. */
static int dataset_open(hid_t loc, const char *path, const char *field, hid_t *ret_ds,
                        hid_t *ret_type, int *ret_ndim, hsize_t dims[H5S_MAX_RANK],
                        struct diag *d)
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT), s = -1, t = -1;
    if (ds < 0)
        return h5_fail(d, -EINVAL, field, "dataset %s missing", path);
    s = H5Dget_space(ds);
    t = H5Dget_type(ds);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (nd < 0 || t < 0 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
        int r = h5_fail(d, -EINVAL, field, "dataset %s unreadable", path);
        close_id(t);
        close_id(s);
        close_id(ds);
        return r;
    }
    close_id(s);
    *ret_ds = ds;
    *ret_type = t;
    *ret_ndim = nd;
    return 0;
}

/* Read the float dataset at path into out after checking its shape. */
static int dataset_read_f32(hid_t loc, const char *path, const char *field, int ndim,
                            const int *shape, float *out, struct diag *d)
{
    hid_t ds, t;
    int fnd;
    hsize_t dims[H5S_MAX_RANK];
    int r = dataset_open(loc, path, field, &ds, &t, &fnd, dims, d);
    if (r < 0)
        return r;
    char want[64] = "(", got[64] = "(";
    bool same = fnd == ndim;
    for (int i = 0; i < ndim; i++) {
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%d", i ? ", " : "",
                 shape[i]);
        if (i < fnd && dims[i] != (hsize_t)shape[i])
            same = false;
    }
    for (int i = 0; i < fnd && i < 8; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu", i ? ", " : "",
                 (unsigned long long)dims[i]);
    strncat(want, ")", sizeof(want) - strlen(want) - 1);
    strncat(got, ")", sizeof(got) - strlen(got) - 1);
    if (!same) {
        r = diag_set(d, -EINVAL, field, "dataset %s has shape %s, model expects %s", path, got,
                     want);
        goto out;
    }
    if (H5Tget_class(t) != H5T_FLOAT) {
        r = diag_set(d, -EINVAL, field, "dataset %s is not floating point", path);
        goto out;
    }
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        r = h5_fail(d, -EIO, field, "dataset %s unreadable (truncated or corrupt file)", path);
out:
    close_id(t);
    close_id(ds);
    return r;
}

static int dataset_read_i64_scalar(hid_t loc, const char *path, int64_t *ret, struct diag *d)
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT), s = -1, t = -1;
    int r = 0;
    if (ds < 0)
        return h5_fail(d, -EINVAL, path, "dataset %s missing", path);
    s = H5Dget_space(ds);
    t = H5Dget_type(ds);
    if (s < 0 || t < 0 || H5Sget_simple_extent_npoints(s) != 1 || H5Tget_class(t) != H5T_INTEGER)
        r = diag_set(d, -EINVAL, path, "dataset %s is not an integer scalar", path);
    else if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ret) < 0)
        r = h5_fail(d, -EIO, path, "dataset %s unreadable", path);
    close_id(t);
    close_id(s);
    close_id(ds);
    return r;
}

/* --- reading layouts ------------------------------------------------------ */

/* Check the bytes before HDF5 parses them: against expected (the SHA-256
 * recorded when the file was written; may be NULL) and against the
 * checksum header of resume files.  *ret_has_header tells whether the
 * header was there. */
static int verify_image(const void *image, size_t len, const uint8_t *expected, const char *path,
                        bool *ret_has_header, struct diag *d)
{
    uint8_t sha[32];
    char hex[65];
    if (expected) {
        fsutil_sha256(image, len, sha);
        if (memcmp(sha, expected, 32) != 0) {
            fsutil_sha256_hex(sha, hex);
            return diag_set(d, -EINVAL, path,
                            "file SHA-256 %.16s... differs from the one recorded when it was "
                            "written (corrupt or replaced file)", hex);
        }
    }
    bool has = len >= H5_USERBLOCK &&
               memcmp(image, H5_HEADER_MAGIC, strlen(H5_HEADER_MAGIC)) == 0;
    if (ret_has_header)
        *ret_has_header = has;
    if (!has)
        return 0;
    const char *stored = (const char *)image + strlen(H5_HEADER_MAGIC);
    if (strncmp(stored, "sha256 ", 7) != 0)
        return diag_set(d, -EINVAL, path, "corrupt traind header");
    fsutil_sha256((const char *)image + H5_USERBLOCK, len - H5_USERBLOCK, sha);
    fsutil_sha256_hex(sha, hex);
    if (memcmp(stored + 7, hex, 64) != 0)
        return diag_set(d, -EINVAL, path,
                        "checksum mismatch: stored %.16s..., file has %.16s... (corrupt or "
                        "truncated file)", stored + 7, hex);
    return 0;
}

/* Open a file image; returns the file id or a negative errno with d. */
static hid_t open_image(const void *image, size_t len, const char *path, struct diag *d)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    bool found = false;
    /* The superblock may sit at 0, 512, 1024, ... (user block). */
    for (size_t off = 0; off + 8 <= len && !found; off = off ? off * 2 : 512)
        found = memcmp((const char *)image + off, sig, 8) == 0;
    if (!found)
        return diag_set(d, -EINVAL, path, "not an HDF5 file (no HDF5 signature)");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ||
        H5Pset_file_image(fapl, (void *)image, len) < 0) {
        close_id(fapl);
        return h5_fail(d, -ENOMEM, path, "open: file image");
    }
    char name[64];
    snprintf(name, sizeof(name), "traind-in-%lu.h5", h5_file_counter++);
    hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return h5_fail(d, -EINVAL, path, "not a readable HDF5 file (truncated or corrupt)");
    return f;
}

static int detect(hid_t f, enum h5_layout *ret, const char *path, struct diag *d)
{
    if (H5Lexists(f, "model_weights", H5P_DEFAULT) > 0) {
        *ret = H5_LAYOUT_TF_MODEL;
        return 0;
    }
    if (H5Aexists(f, "layer_names") > 0 || H5Aexists(f, "layer_names0") > 0) {
        *ret = H5_LAYOUT_TF_WEIGHTS;
        return 0;
    }
    if (H5Lexists(f, "layers", H5P_DEFAULT) > 0 && H5Lexists(f, "vars", H5P_DEFAULT) > 0) {
        *ret = H5_LAYOUT_KERAS3_WEIGHTS;
        return 0;
    }
    H5Eclear2(H5E_DEFAULT);
    return diag_set(d, -EINVAL, path,
                    "not a Keras weight file: no layer_names attribute, model_weights group or "
                    "layers/vars groups");
}

/* tf.keras load_weights_from_hdf5_group: layers with weights, in order,
 * names and shapes equal to the model's. */
static int read_tf_weights(hid_t g, const struct model *m, float *params, struct diag *d)
{
    struct strlist names = {0, NULL};
    int r = attr_read_strlist_chunked(g, "layer_names", "layer_names", &names, d);
    if (r < 0)
        return r;
    int fi = 0; /* index into names */
    int mi = 0; /* index into m->layers */
    hid_t lg = -1;
    struct strlist wn = {0, NULL};
    for (;;) {
        /* next file layer with weights */
        strlist_free(&wn);
        close_id(lg);
        lg = -1;
        for (; fi < names.n; fi++) {
            lg = H5Gopen2(g, names.v[fi], H5P_DEFAULT);
            if (lg < 0) {
                r = h5_fail(d, -EINVAL, names.v[fi], "group for layer %s missing", names.v[fi]);
                goto out;
            }
            if ((r = attr_read_strlist_chunked(lg, "weight_names", names.v[fi], &wn, d)) < 0)
                goto out;
            if (wn.n > 0)
                break;
            H5Gclose(lg);
            lg = -1;
        }
        while (mi < m->n_layers && layer_rows(m, mi).n == 0)
            mi++;
        bool file_done = fi >= names.n, model_done = mi >= m->n_layers;
        if (file_done && model_done)
            break;
        if (file_done || model_done) {
            int fw = 0, mw = 0;
            for (int i = 0; i < m->n_layers; i++)
                mw += layer_rows(m, i).n > 0;
            for (int i = 0; i < names.n; i++) {
                hid_t x = H5Gopen2(g, names.v[i], H5P_DEFAULT);
                struct strlist y = {0, NULL};
                if (x >= 0 && attr_read_strlist_chunked(x, "weight_names", "", &y, NULL) == 0)
                    fw += y.n > 0;
                strlist_free(&y);
                close_id(x);
            }
            H5Eclear2(H5E_DEFAULT);
            r = diag_set(d, -EINVAL, "layer_names",
                         "file has %d layers with weights, model has %d", fw, mw);
            goto out;
        }
        const struct layer *L = &m->layers[mi];
        struct layer_rows rows = layer_rows(m, mi);
        if (strcmp(names.v[fi], L->cfg.name) != 0) {
            r = diag_set(d, -EINVAL, names.v[fi],
                         "layer %d with weights is '%s' in the file, '%s' in the model", mi,
                         names.v[fi], L->cfg.name);
            goto out;
        }
        if (wn.n != rows.n) {
            r = diag_set(d, -EINVAL, L->cfg.name,
                         "layer %s has %d weights in the file, model has %d",
                         L->cfg.name, wn.n, rows.n);
            goto out;
        }
        for (int j = 0; j < wn.n; j++) {
            const struct weight *w = rows.v[j].w;
            char field[256];
            snprintf(field, sizeof(field), "%s/%s", L->cfg.name, wn.v[j]);
            if ((r = dataset_read_f32(lg, wn.v[j], field, w->ndim, w->shape, params + w->offset,
                                      d)) < 0)
                goto out;
        }
        fi++;
        mi++;
    }
out:
    strlist_free(&wn);
    close_id(lg);
    strlist_free(&names);
    return r;
}

static int read_keras3_weights(hid_t f, const struct model *m, float *params, struct diag *d)
{
    H5G_info_t info;
    hid_t lg = H5Gopen2(f, "layers", H5P_DEFAULT);
    if (lg < 0 || H5Gget_info(lg, &info) < 0) {
        close_id(lg);
        return h5_fail(d, -EINVAL, "layers", "group layers unreadable");
    }
    H5Gclose(lg);
    if (info.nlinks != (hsize_t)m->n_layers)
        return diag_set(d, -EINVAL, "layers", "file has %llu layers, model has %d",
                        (unsigned long long)info.nlinks, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const struct layer *L = &m->layers[i];
        struct layer_rows rows = layer_rows(m, i);
        char key[128], path[160];
        keras3_layer_key(m, i, key, sizeof(key));
        snprintf(path, sizeof(path), "%s/vars", key);
        hid_t vg = H5Gopen2(f, path, H5P_DEFAULT);
        if (vg < 0)
            return h5_fail(d, -EINVAL, path, "group %s missing (layer %s)", path, L->cfg.name);
        if (H5Gget_info(vg, &info) < 0) {
            H5Gclose(vg);
            return h5_fail(d, -EINVAL, path, "group %s unreadable", path);
        }
        if (info.nlinks != (hsize_t)rows.n) {
            H5Gclose(vg);
            return diag_set(d, -EINVAL, path,
                            "layer %s has %llu variables in the file, model has %d",
                            L->cfg.name, (unsigned long long)info.nlinks, rows.n);
        }
        for (int j = 0; j < rows.n; j++) {
            const struct weight *w = rows.v[j].w;
            char idx[16], field[192];
            snprintf(idx, sizeof(idx), "%d", j);
            snprintf(field, sizeof(field), "%s/%s", path, idx);
            int r = dataset_read_f32(vg, idx, field, w->ndim, w->shape, params + w->offset, d);
            if (r < 0) {
                H5Gclose(vg);
                return r;
            }
        }
        H5Gclose(vg);
    }
    return 0;
}

/* Weights of any layout from an open file into params (n_params scratch). */
static int read_weights(hid_t f, const struct model *m, float *params, enum h5_layout *ret_layout,
                        const char *path, struct diag *d)
{
    enum h5_layout layout = H5_LAYOUT_TF_WEIGHTS;
    int r = detect(f, &layout, path, d);
    if (r < 0)
        return r;
    if (layout == H5_LAYOUT_TF_WEIGHTS) {
        r = read_tf_weights(f, m, params, d);
    } else if (layout == H5_LAYOUT_TF_MODEL) {
        hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
        if (g < 0)
            return h5_fail(d, -EINVAL, "model_weights", "group model_weights unreadable");
        r = read_tf_weights(g, m, params, d);
        diag_prefix(d, r < 0 ? "model_weights/" : NULL);
        H5Gclose(g);
    } else {
        r = read_keras3_weights(f, m, params, d);
    }
    if (r == 0 && ret_layout)
        *ret_layout = layout;
    return r;
}

/* The HDF5 bytes of the weight file at path: the file itself, or the
 * model.weights.h5 of a .keras zip (*ret_archive true).  The file's bytes
 * are checked against expected (may be NULL) first. */
static int read_weights_image_cfg(const char *path, const uint8_t *expected, void **ret_image,
                                  size_t *ret_len, bool *ret_archive, char **ret_config,
                                  struct diag *d);

static int read_weights_image(const char *path, const uint8_t *expected, void **ret_image,
                              size_t *ret_len, bool *ret_archive, struct diag *d)
{
    return read_weights_image_cfg(path, expected, ret_image, ret_len, ret_archive, NULL, d);
}

/* The same, with (ret_config not NULL) the archive's config.json as a
 * NUL-terminated string (NULL for a plain HDF5 file). */
static int read_weights_image_cfg(const char *path, const uint8_t *expected, void **ret_image,
                                  size_t *ret_len, bool *ret_archive, char **ret_config,
                                  struct diag *d)
{
    if (ret_config)
        *ret_config = NULL;
    void *image;
    size_t len;
    int r = fsutil_read_file(path, H5_MAX_FILE_BYTES, &image, &len, d);
    if (r < 0)
        return r;
    *ret_archive = keras_archive_is_zip(image, len);
    if (*ret_archive) {
        if (expected && (r = verify_image(image, len, expected, path, NULL, d)) < 0) {
            free(image);
            return r;
        }
        void *inner = NULL, *cfg = NULL;
        size_t inner_len = 0, cfg_len = 0;
        if (ret_config) {
            r = keras_archive_member(image, len, KERAS_ARCHIVE_CONFIG, (size_t)1 << 26, path, &cfg,
                                     &cfg_len, d);
            char *text = r == 0 ? realloc(cfg, cfg_len + 1) : NULL;
            if (!text) {
                free(cfg);
                free(image);
                return r < 0 ? (r == -ENOENT ? -EINVAL : r)
                             : diag_set(d, -ENOMEM, path, "out of memory");
            }
            text[cfg_len] = '\0';
            *ret_config = text;
        }
        r = keras_archive_member(image, len, KERAS_ARCHIVE_WEIGHTS, H5_MAX_FILE_BYTES, path,
                                 &inner, &inner_len, d);
        free(image);
        if (r < 0 && ret_config) {
            free(*ret_config);
            *ret_config = NULL;
        }
        if (r < 0)
            return r == -ENOENT ? -EINVAL : r;
        image = inner;
        len = inner_len;
        expected = NULL;
    }
    if ((r = verify_image(image, len, expected, path, NULL, d)) < 0) {
        free(image);
        return r;
    }
    *ret_image = image;
    *ret_len = len;
    return 0;
}

/* The number of layers the open file f (layout) holds at least one weight
 * of: tf.keras files by layer_names and each layer's weight_names, Keras 3
 * files by the layers/<name>/vars groups that have members. */
static int count_weighted_layers(hid_t f, enum h5_layout layout, int *ret, struct diag *d)
{
    int n = 0, r = 0;
    if (layout == H5_LAYOUT_TF_WEIGHTS || layout == H5_LAYOUT_TF_MODEL) {
        hid_t g = layout == H5_LAYOUT_TF_MODEL ? H5Gopen2(f, "model_weights", H5P_DEFAULT) : f;
        struct strlist names = {0, NULL};
        if (g < 0)
            return h5_fail(d, -EINVAL, "model_weights", "group model_weights unreadable");
        r = attr_read_strlist_chunked(g, "layer_names", "layer_names", &names, d);
        for (int i = 0; r == 0 && i < names.n; i++) {
            hid_t lg = H5Gopen2(g, names.v[i], H5P_DEFAULT);
            struct strlist wn = {0, NULL};
            if (lg < 0)
                r = h5_fail(d, -EINVAL, names.v[i], "group for layer %s missing", names.v[i]);
            else if ((r = attr_read_strlist_chunked(lg, "weight_names", names.v[i], &wn, d)) == 0)
                n += wn.n > 0;
            strlist_free(&wn);
            close_id(lg);
        }
        strlist_free(&names);
        if (g != f)
            close_id(g);
    } else {
        hid_t g = H5Gopen2(f, "layers", H5P_DEFAULT);
        H5G_info_t info;
        if (g < 0 || H5Gget_info(g, &info) < 0) {
            close_id(g);
            return h5_fail(d, -EINVAL, "layers", "group layers unreadable");
        }
        for (hsize_t i = 0; i < info.nlinks; i++) {
            char name[256];
            if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                                   H5P_DEFAULT) < 0)
                continue;
            char vars[sizeof(name) + 8];
            snprintf(vars, sizeof(vars), "%s/vars", name);
            H5G_info_t vi;
            if (H5Lexists(g, name, H5P_DEFAULT) > 0 && H5Lexists(g, vars, H5P_DEFAULT) > 0 &&
                H5Gget_info_by_name(g, vars, &vi, H5P_DEFAULT) >= 0 && vi.nlinks > 0)
                n++;
        }
        H5Eclear2(H5E_DEFAULT);
        close_id(g);
    }
    if (r == 0)
        *ret = n;
    return r;
}

int h5_describe(const char *path, enum h5_layout *ret, int *ret_layers, struct diag *d)
{
    void *image;
    size_t len;
    bool archive = false;
    int r = read_weights_image(path, NULL, &image, &len, &archive, d);
    if (r < 0)
        return r;
    h5_enter();
    enum h5_layout layout = H5_LAYOUT_TF_WEIGHTS;
    hid_t f = open_image(image, len, path, d);
    if (f >= 0) {
        r = detect(f, &layout, path, d);
        if (r == 0 && archive && layout != H5_LAYOUT_KERAS3_WEIGHTS)
            r = diag_set(d, -EINVAL, path, "the archive's %s is not in Keras 3's layout",
                         KERAS_ARCHIVE_WEIGHTS);
        int n = 0;
        if (r == 0 && ret_layers && (r = count_weighted_layers(f, layout, &n, d)) == 0)
            *ret_layers = n;
        if (r == 0)
            *ret = archive ? H5_LAYOUT_KERAS_ARCHIVE : layout;
        H5Fclose(f);
    } else {
        r = (int)f;
    }
    h5_leave();
    free(image);
    return r;
}

int h5_detect_layout(const char *path, enum h5_layout *ret, struct diag *d)
{
    return h5_describe(path, ret, NULL, d);
}

int h5_load_weights(struct model *m, const char *path, struct diag *d)
{
    return h5_load_weights_verified(m, path, NULL, d);
}

int h5_load_weights_verified(struct model *m, const char *path, const uint8_t expected_sha256[32],
                             struct diag *d)
{
    int r = check_model(m, d);
    if (r < 0)
        return r;
    void *image;
    size_t len;
    bool archive = false;
    r = read_weights_image(path, expected_sha256, &image, &len, &archive, d);
    if (r < 0)
        return r;
    float *scratch = malloc(m->n_params * sizeof(float) + 1);
    if (!scratch) {
        free(image);
        return diag_set(d, -ENOMEM, path, "out of memory");
    }
    memcpy(scratch, m->params, m->n_params * sizeof(float));
    h5_enter();
    hid_t f = open_image(image, len, path, d);
    if (f >= 0) {
        r = read_weights(f, m, scratch, NULL, path, d);
        H5Fclose(f);
    } else {
        r = (int)f;
    }
    h5_leave();
    free(image);
    if (r == 0)
        memcpy(m->params, scratch, m->n_params * sizeof(float));
    free(scratch);
    return r;
}

/* --- warm start: load_weights(by_name=True) -------------------------------- */

static void shape_text(char *out, size_t outsz, int ndim, const hsize_t *dims)
{
    size_t k = (size_t)snprintf(out, outsz, "(");
    for (int i = 0; i < ndim && k < outsz; i++)
        k += (size_t)snprintf(out + k, outsz - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)dims[i]);
    if (k < outsz)
        snprintf(out + k, outsz - k, ndim == 1 ? ",)" : ")");
}

/* Shape of the dataset at path below loc; -EINVAL when missing or not float. */
static int dataset_shape(hid_t loc, const char *path, int *ret_ndim, hsize_t dims[H5S_MAX_RANK],
                         struct diag *d)
{
    hid_t ds, t;
    int nd;
    int r = dataset_open(loc, path, path, &ds, &t, &nd, dims, d);
    if (r < 0)
        return r;
    if (H5Tget_class(t) != H5T_FLOAT)
        r = diag_set(d, -EINVAL, path, "dataset %s is not floating point", path);
    else
        *ret_ndim = nd;
    close_id(t);
    close_id(ds);
    return r;
}

/* The datasets (paths below f) the file holds for model layer li: *ret_n
 * of them, or *ret_n = -1 when the file has no such layer. */
struct by_name_src {
    hid_t f;
    enum h5_layout layout;
    char prefix[32];          /* "" or "model_weights/" */
    struct strlist layer_names; /* tf.keras layouts */
    const cJSON *cfg_layers;  /* archive: config.json's layers */
};

static int src_layer(const struct by_name_src *src, const struct model *m, int li, int *ret_n,
                     char (*paths)[256], struct diag *d)
{
    const char *name = m->layers[li].cfg.name;
    *ret_n = -1;
    if (src->layout == H5_LAYOUT_TF_WEIGHTS || src->layout == H5_LAYOUT_TF_MODEL) {
        int k = -1;
        for (int i = 0; i < src->layer_names.n && k < 0; i++)
            if (strcmp(src->layer_names.v[i], name) == 0)
                k = i;
        if (k < 0)
            return 0;
        char gpath[160];
        snprintf(gpath, sizeof(gpath), "%s%s", src->prefix, name);
        hid_t g = H5Gopen2(src->f, gpath, H5P_DEFAULT);
        if (g < 0)
            return h5_fail(d, -EINVAL, name, "group for layer %s missing", name);
        struct strlist wn = {0, NULL};
        int r = attr_read_strlist_chunked(g, "weight_names", name, &wn, d);
        H5Gclose(g);
        if (r < 0)
            return r;
        if (wn.n > LAYER_MAX_WEIGHTS) {
            strlist_free(&wn);
            return diag_set(d, -EINVAL, name, "layer %s has %d weights in the file", name, wn.n);
        }
        for (int j = 0; j < wn.n; j++)
            snprintf(paths[j], 256, "%s/%s", gpath, wn.v[j]);
        *ret_n = wn.n;
        strlist_free(&wn);
        return 0;
    }
    char key[160];
    if (src->cfg_layers) {
        /* the archive's own layer of this name, keyed as Keras 3 keys it */
        const cJSON *l;
        int li_cfg = -1, idx = 0;
        const cJSON *found = NULL;
        cJSON_ArrayForEach(l, src->cfg_layers) {
            const cJSON *cls = cJSON_GetObjectItemCaseSensitive(l, "class_name");
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "config");
            const cJSON *n = c ? cJSON_GetObjectItemCaseSensitive(c, "name") : NULL;
            if (cJSON_IsString(cls) && strcmp(cls->valuestring, "InputLayer") != 0) {
                if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 && !found) {
                    found = l;
                    li_cfg = idx;
                }
                idx++;
            }
        }
        if (!found)
            return 0;
        const char *cls = cJSON_GetObjectItemCaseSensitive(found, "class_name")->valuestring;
        int same = 0;
        idx = 0;
        cJSON_ArrayForEach(l, src->cfg_layers) {
            const cJSON *c2 = cJSON_GetObjectItemCaseSensitive(l, "class_name");
            if (!cJSON_IsString(c2) || strcmp(c2->valuestring, "InputLayer") == 0)
                continue;
            if (idx++ >= li_cfg)
                break;
            same += strcmp(c2->valuestring, cls) == 0;
        }
        char snake[64];
        snake_case(cls, snake, sizeof(snake));
        if (same == 0)
            snprintf(key, sizeof(key), "layers/%s/vars", snake);
        else
            snprintf(key, sizeof(key), "layers/%s_%d/vars", snake, same);
    } else {
        char k2[128];
        keras3_layer_key(m, li, k2, sizeof(k2));
        snprintf(key, sizeof(key), "%s/vars", k2);
    }
    if (H5Lexists(src->f, "layers", H5P_DEFAULT) <= 0 ||
        H5Lexists(src->f, key, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    H5G_info_t info;
    hid_t vg = H5Gopen2(src->f, key, H5P_DEFAULT);
    if (vg < 0 || H5Gget_info(vg, &info) < 0) {
        close_id(vg);
        return h5_fail(d, -EINVAL, key, "group %s unreadable", key);
    }
    H5Gclose(vg);
    if (info.nlinks > LAYER_MAX_WEIGHTS)
        return diag_set(d, -EINVAL, key, "group %s has %llu variables", key,
                        (unsigned long long)info.nlinks);
    for (int j = 0; j < (int)info.nlinks; j++)
        snprintf(paths[j], 256, "%s/%d", key, j);
    *ret_n = (int)info.nlinks;
    return 0;
}

static int by_name(hid_t f, const char *cfg_json, const struct model *m, float *params,
                   bool skip_mismatch, struct h5_by_name_report *rep, const char *path,
                   struct diag *d)
{
    struct by_name_src src = {.f = f};
    cJSON *cfg = NULL;
    int r = detect(f, &src.layout, path, d);
    if (r < 0)
        return r;
    rep->layout = src.layout;
    if (src.layout == H5_LAYOUT_TF_MODEL) {
        snprintf(src.prefix, sizeof(src.prefix), "model_weights/");
        hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
        if (g < 0)
            return h5_fail(d, -EINVAL, "model_weights", "group model_weights unreadable");
        r = attr_read_strlist_chunked(g, "layer_names", "model_weights/layer_names",
                                      &src.layer_names, d);
        H5Gclose(g);
    } else if (src.layout == H5_LAYOUT_TF_WEIGHTS) {
        r = attr_read_strlist_chunked(f, "layer_names", "layer_names", &src.layer_names, d);
    } else if (cfg_json) {
        rep->layout = H5_LAYOUT_KERAS_ARCHIVE;
        cfg = cJSON_Parse(cfg_json);
        const cJSON *c = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "config") : NULL;
        src.cfg_layers = c ? cJSON_GetObjectItemCaseSensitive(c, "layers") : NULL;
        if (!cJSON_IsArray(src.cfg_layers))
            r = diag_set(d, -EINVAL, KERAS_ARCHIVE_CONFIG,
                         "the archive's config.json has no config.layers list");
    }
    for (int li = 0; r == 0 && li < m->n_layers; li++) {
        const struct layer *L = &m->layers[li];
        struct layer_rows rows = layer_rows(m, li);
        if (rows.n == 0)
            continue;
        char paths[LAYER_MAX_WEIGHTS][256];
        int n = -1;
        if ((r = src_layer(&src, m, li, &n, paths, d)) < 0)
            break;
        if (n < 0) {
            if (rep->n_absent < H5_REPORT_MAX)
                snprintf(rep->absent[rep->n_absent++], sizeof(rep->absent[0]), "%s", L->cfg.name);
            continue;
        }
        if (n != rows.n) {
            if (!skip_mismatch) {
                r = diag_set(d, -EINVAL, L->cfg.name,
                             "weight count mismatch for layer %s: the model's layer has %d "
                             "weight(s), the file's %d",
                             L->cfg.name, rows.n, n);
                break;
            }
            if (rep->n_skipped < H5_REPORT_MAX) {
                struct h5_skipped *k = &rep->skipped[rep->n_skipped++];
                snprintf(k->layer, sizeof(k->layer), "%s", L->cfg.name);
                k->weight[0] = '\0';
                snprintf(k->model_shape, sizeof(k->model_shape), "%d weights", rows.n);
                snprintf(k->file_shape, sizeof(k->file_shape), "%d weights", n);
            }
            continue;
        }
        for (int j = 0; j < n && r == 0; j++) {
            const struct weight *w = rows.v[j].w;
            hsize_t fd[H5S_MAX_RANK], md[4];
            int fnd = 0;
            if ((r = dataset_shape(f, paths[j], &fnd, fd, d)) < 0)
                break;
            bool same = fnd == w->ndim;
            for (int i = 0; i < w->ndim; i++) {
                md[i] = (hsize_t)w->shape[i];
                same = same && fd[i] == md[i];
            }
            if (same) {
                char field[192];
                snprintf(field, sizeof(field), "%s/%s", L->cfg.name, w->name);
                r = dataset_read_f32(f, paths[j], field, w->ndim, w->shape, params + w->offset, d);
                rep->n_loaded += r == 0;
                continue;
            }
            char ms[64], fs[64];
            shape_text(ms, sizeof(ms), w->ndim, md);
            shape_text(fs, sizeof(fs), fnd, fd);
            if (!skip_mismatch) {
                char field[192];
                snprintf(field, sizeof(field), "%s/%s", L->cfg.name, w->name);
                r = diag_set(d, -EINVAL, field,
                             "shape mismatch in layer %s for weight %s: the model's weight has "
                             "shape %s, the file's %s has shape %s",
                             L->cfg.name, w->name, ms, paths[j], fs);
                break;
            }
            if (rep->n_skipped < H5_REPORT_MAX) {
                struct h5_skipped *k = &rep->skipped[rep->n_skipped++];
                snprintf(k->layer, sizeof(k->layer), "%s", L->cfg.name);
                snprintf(k->weight, sizeof(k->weight), "%s", w->name);
                snprintf(k->model_shape, sizeof(k->model_shape), "%s", ms);
                snprintf(k->file_shape, sizeof(k->file_shape), "%s", fs);
            }
        }
    }
    strlist_free(&src.layer_names);
    cJSON_Delete(cfg);
    return r;
}

int h5_load_weights_by_name(struct model *m, const char *path, bool skip_mismatch,
                            struct h5_by_name_report *ret_report, struct diag *d)
{
    int r = check_model(m, d);
    if (r < 0)
        return r;
    void *image;
    size_t len;
    bool archive = false;
    char *cfg = NULL;
    r = read_weights_image_cfg(path, NULL, &image, &len, &archive, &cfg, d);
    if (r < 0)
        return r;
    struct h5_by_name_report *rep = calloc(1, sizeof(*rep));
    float *scratch = malloc(m->n_params * sizeof(float) + 1);
    if (!scratch || !rep) {
        free(image);
        free(cfg);
        free(scratch);
        free(rep);
        return diag_set(d, -ENOMEM, path, "out of memory");
    }
    memcpy(scratch, m->params, m->n_params * sizeof(float));
    h5_enter();
    hid_t f = open_image(image, len, path, d);
    if (f >= 0) {
        r = by_name(f, cfg, m, scratch, skip_mismatch, rep, path, d);
        H5Fclose(f);
    } else {
        r = (int)f;
    }
    h5_leave();
    free(image);
    free(cfg);
    if (r == 0) {
        memcpy(m->params, scratch, m->n_params * sizeof(float));
        if (ret_report)
            *ret_report = *rep;
    }
    free(scratch);
    free(rep);
    return r;
}

/* optimizer_weights of a resume file into slots / iterations. */
static int read_tf_optimizer(hid_t f, const struct model *m, const struct optimizer *opt,
                             float *const *slots, int64_t *ret_iterations, struct diag *d)
{
    hid_t g = H5Gopen2(f, "optimizer_weights", H5P_DEFAULT);
    if (g < 0)
        return h5_fail(d, -EINVAL, "optimizer_weights", "group optimizer_weights missing");
    struct strlist wn = {0, NULL};
    int r = attr_read_strlist_chunked(g, "weight_names", "optimizer_weights", &wn, d);
    const char *cls = optimizer_class_name(opt);
    int want = 1 + opt->n_slots * count_trainable(m);
    char name[256];
    if (r < 0)
        goto out;
    if (wn.n != want) {
        r = diag_set(d, -EINVAL, "optimizer_weights",
                     "file has %d optimizer weights, %s with %d slot(s) needs %d", wn.n, cls,
                     opt->n_slots, want);
        goto out;
    }
    snprintf(name, sizeof(name), "%s/iter:0", cls);
    if (strcmp(wn.v[0], name) != 0) {
        r = diag_set(d, -EINVAL, "optimizer_weights",
                     "first optimizer weight is '%s', expected '%s'",
                     wn.v[0], name);
        goto out;
    }
    if ((r = dataset_read_i64_scalar(g, name, ret_iterations, d)) < 0)
        goto out;
    int k = 1;
    for (int s = 0; s < opt->n_slots; s++)
        for (int t = 0; t < m->n_weights; t++) {
            const struct weight *w = m->weights[t].w;
            if (!w->trainable)
                continue;
            snprintf(name, sizeof(name), "%s/%s/%s/%s:0", cls,
                     m->layers[m->weights[t].layer].cfg.name, w->name, optimizer_slot_name(opt, s));
            if (strcmp(wn.v[k], name) != 0) {
                r = diag_set(d, -EINVAL, "optimizer_weights",
                             "optimizer weight %d is '%s', expected '%s'", k, wn.v[k], name);
                goto out;
            }
            if ((r = dataset_read_f32(g, name, name, w->ndim, w->shape, slots[s] + w->offset,
                                      d)) < 0)
                goto out;
            k++;
        }
out:
    strlist_free(&wn);
    H5Gclose(g);
    return r;
}

int h5_load_resume(struct model *m, struct optimizer *opt, const char *path, int *ret_epoch,
                   char **ret_state_json, struct diag *d)
{
    int r = check_model(m, d);
    if (r < 0)
        return r;
    if (!opt || opt->n_slots < 0 || opt->n_slots > OPTIMIZER_MAX_SLOTS || opt->n != m->n_params)
        return diag_set(d, -EINVAL, path, "optimizer does not belong to the model");
    void *image;
    size_t len;
    r = fsutil_read_file(path, H5_MAX_FILE_BYTES, &image, &len, d);
    if (r < 0)
        return r;
    size_t bytes = m->n_params * sizeof(float) + 1;
    float *params = malloc(bytes);
    float *slots[OPTIMIZER_MAX_SLOTS] = {NULL};
    bool oom = !params;
    for (int s = 0; s < opt->n_slots; s++) {
        slots[s] = malloc(bytes);
        oom |= !slots[s];
    }
    char *state = NULL, *checksum = NULL;
    int64_t iterations = 0, epoch = 0, version = 0;
    if (oom) {
        r = diag_set(d, -ENOMEM, path, "out of memory");
        goto out_nolock;
    }
    bool has_header = false;
    if ((r = verify_image(image, len, NULL, path, &has_header, d)) < 0)
        goto out_nolock;
    if (!has_header) {
        r = diag_set(d, -EINVAL, path, "not a traind resume file (no checksummed header)");
        goto out_nolock;
    }
    memcpy(params, m->params, m->n_params * sizeof(float));
    for (int s = 0; s < opt->n_slots; s++)
        memcpy(slots[s], opt->slots[s], m->n_params * sizeof(float));
    h5_enter();
    hid_t f = open_image(image, len, path, d);
    if (f < 0) {
        r = (int)f;
        goto out;
    }
    enum h5_layout layout = H5_LAYOUT_TF_WEIGHTS;
    if (H5Aexists(f, "traind_resume_version") <= 0) {
        r = diag_set(d, -EINVAL, path, "not a traind resume file (no traind_resume_version)");
        goto out;
    }
    if ((r = attr_read_i64(f, "traind_resume_version", &version, d)) < 0)
        goto out;
    if (version != H5_RESUME_VERSION) {
        r = diag_set(d, -EINVAL, path, "resume file version %" PRId64 ", expected %d", version,
                     H5_RESUME_VERSION);
        goto out;
    }
    if ((r = attr_read_i64(f, "epoch", &epoch, d)) < 0 ||
        (r = attr_read_string(f, "state_json", &state, d)) < 0 ||
        (r = attr_read_string(f, "traind_checksum", &checksum, d)) < 0)
        goto out;
    if (epoch < 0 || epoch > INT32_MAX) {
        r = diag_set(d, -EINVAL, "epoch", "bad epoch %" PRId64, epoch);
        goto out;
    }
    if ((r = read_weights(f, m, params, &layout, path, d)) < 0)
        goto out;
    if ((r = read_tf_optimizer(f, m, opt, slots, &iterations, d)) < 0)
        goto out;
    char hex[65];
    resume_checksum(m, params, opt, slots, iterations, epoch, state, hex);
    if (strcmp(hex, checksum) != 0)
        r = diag_set(d, -EINVAL, path,
                     "resume file checksum mismatch (corrupt file): stored %.16s..., "
                     "computed %.16s...",
                     checksum, hex);
out:
    if (f >= 0)
        H5Fclose(f);
    h5_leave();
out_nolock:
    free(image);
    if (r == 0) {
        memcpy(m->params, params, m->n_params * sizeof(float));
        for (int s = 0; s < opt->n_slots; s++)
            memcpy(opt->slots[s], slots[s], m->n_params * sizeof(float));
        opt->iterations = iterations;
        if (ret_epoch)
            *ret_epoch = (int)epoch;
        if (ret_state_json) {
            *ret_state_json = state;
            state = NULL;
        }
    }
    free(state);
    free(checksum);
    free(params);
    for (int s = 0; s < OPTIMIZER_MAX_SLOTS; s++)
        free(slots[s]);
    return r;
}

/* --- the lock, for core/'s other HDF5 readers (h5_data.c) ------------------ */

void h5_global_lock(void)
{
    h5_enter();
}

void h5_global_unlock(void)
{
    h5_leave();
}
