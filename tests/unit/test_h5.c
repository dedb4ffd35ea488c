/* test_h5.c - weight files of core/h5: round trips of the three Keras
 * layouts and the resume file on real models trained a few steps, rejection
 * of truncated, corrupt, foreign and mismatched files (model unchanged),
 * failed writes at every step, concurrent use. */
#include "fsutil.h"
#include "h5.h"
#include "keras_archive.h"
#include "model.h"
#include "optimizer.h"
#include "test.h"
#include "test_tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 8

/* HDF5 1.10.8 loses one 56-byte free-list block when the object header of a
 * corrupted file fails to load (test_rejects_bad_files mutates metadata).
 * h5.c itself leaves no id open: H5Fget_obj_count(H5F_OBJ_ALL) is 0 after
 * every rejected load.  Only LeakSanitizer builds read this. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}

static char tmpdir[512];

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static struct model *new_model(const char *name, int hw, uint64_t seed)
{
    struct model_spec spec;
    struct diag d = {{0}, {0}};
    const int shape[3] = {hw, hw, 1};
    struct model *m = NULL;
    if (model_spec_builtin(&spec, name, shape, 10, &d) < 0) {
        fprintf(stderr, "model_spec_builtin(%s): %s %s\n", name, d.field, d.message);
        return NULL;
    }
    if (model_create(&m, &spec, BATCH, 1, &d) < 0)
        fprintf(stderr, "model_create(%s): %s %s\n", name, d.field, d.message);
    else
        model_init_weights(m, seed);
    model_spec_free(&spec);
    return m;
}

static struct optimizer *new_optimizer(const struct model *m, enum optimizer_kind kind)
{
    struct optimizer_config cfg;
    optimizer_config_default(&cfg, kind);
    if (kind == OPTIMIZER_KIND_SGD) {
        cfg.momentum = 0.9;
        cfg.nesterov = true;
        cfg.decay = 0.00025;
    }
    struct optimizer *opt = NULL;
    struct diag d = {{0}, {0}};
    if (optimizer_create(&opt, &cfg, m, &d) < 0)
        fprintf(stderr, "optimizer_create: %s\n", d.message);
    return opt;
}

/* A deterministic batch of random images and labels. */
static void make_batch(const struct model *m, uint64_t seed, uint8_t *images, uint8_t *labels)
{
    size_t px = (size_t)m->input_shape[0] * m->input_shape[1] * m->input_shape[2];
    for (size_t i = 0; i < BATCH * px; i++)
        images[i] = (uint8_t)lcg(&seed);
    for (int i = 0; i < BATCH; i++)
        labels[i] = (uint8_t)(lcg(&seed) % (uint64_t)m->classes);
}

/* steps training steps from step0: weights, BN statistics and slots move. */
static void train(struct model *m, struct optimizer *opt, int64_t step0, int steps)
{
    size_t px = (size_t)m->input_shape[0] * m->input_shape[1] * m->input_shape[2];
    uint8_t *images = malloc(BATCH * px), labels[BATCH];
    for (int s = 0; s < steps; s++) {
        make_batch(m, 1000 + (uint64_t)(step0 + s), images, labels);
        double loss;
        double correct;
        int r = model_train_step(m, images, PIXELS_UINT8, labels, BATCH, 7, step0 + s, &loss,
                                 &correct);
        CHECK_INT_EQ(r, 0);
        optimizer_step(opt, m);
    }
    free(images);
}

static float *predict(struct model *m)
{
    size_t px = (size_t)m->input_shape[0] * m->input_shape[1] * m->input_shape[2];
    float *x = malloc(BATCH * px * sizeof(float));
    float *probs = malloc((size_t)BATCH * m->classes * sizeof(float));
    uint64_t seed = 99;
    for (size_t i = 0; i < BATCH * px; i++)
        x[i] = (float)(lcg(&seed) % 256) / 255.0f;
    CHECK_INT_EQ(model_predict_f32(m, x, BATCH, probs), 0);
    free(x);
    return probs;
}

/* Every weight of a equals b's, bit for bit. */
static bool weights_equal(const struct model *a, const struct model *b)
{
    for (int i = 0; i < a->n_layers; i++)
        for (int j = 0; j < a->layers[i].n_weights; j++) {
            const struct weight *w = &a->layers[i].weights[j];
            if (memcmp(a->params + w->offset, b->params + w->offset, w->size * sizeof(float)))
                return false;
        }
    return true;
}

static bool slots_equal(const struct model *m, const struct optimizer *a,
                        const struct optimizer *b)
{
    if (a->n_slots != b->n_slots)
        return false;
    for (int s = 0; s < a->n_slots; s++)
        for (int i = 0; i < m->n_layers; i++)
            for (int j = 0; j < m->layers[i].n_weights; j++) {
                const struct weight *w = &m->layers[i].weights[j];
                if (memcmp(a->slots[s] + w->offset, b->slots[s] + w->offset,
                           w->size * sizeof(float)))
                    return false;
            }
    return true;
}

static int path_of(char *out, size_t outsz, const char *relpath)
{
    return snprintf(out, outsz, "%s/%s", tmpdir, relpath);
}

/* --- tests ---------------------------------------------------------------- */

static void test_save_bad_destination(void)
{
    struct model *m = new_model("mlp", 28, 1);
    CHECK(m != NULL);
    if (!m)
        return;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(h5_save(tmpdir, "../escape.h5", H5_LAYOUT_TF_WEIGHTS, m, NULL, NULL, NULL, NULL, NULL,
                         &d), -EINVAL);
    CHECK_INT_EQ(h5_save(tmpdir, "/abs.h5", H5_LAYOUT_TF_WEIGHTS, m, NULL, NULL, NULL, NULL, NULL, &d),
                 -EINVAL);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", tmpdir);
    CHECK_INT_EQ(h5_save(missing, "w.h5", H5_LAYOUT_TF_WEIGHTS, m, NULL, NULL, NULL, NULL, NULL, &d),
                 -ENOENT);
    CHECK(d.message[0] != '\0');
    CHECK_INT_EQ(h5_save_resume(tmpdir, "r.h5", m, NULL, 1, NULL, NULL, &d), -EINVAL);
    model_free(m);
}

static void test_layout_for_path(void)
{
    enum h5_layout l = H5_LAYOUT_TF_MODEL;
    struct diag d = {{0}, {0}};
    CHECK(h5_layout_for_path("w.h5", true, &l, &d) == 0 && l == H5_LAYOUT_TF_WEIGHTS);
    CHECK(h5_layout_for_path("a/w-{epoch}.hdf5", false, &l, &d) == 0 && l == H5_LAYOUT_TF_MODEL);
    CHECK(h5_layout_for_path("w.keras", false, &l, &d) == 0 && l == H5_LAYOUT_KERAS_ARCHIVE);
    CHECK_INT_EQ(h5_layout_for_path("w.keras", true, &l, &d), -EINVAL);
    CHECK(h5_layout_for_path("w.weights.h5", true, &l, &d) == 0 &&
          l == H5_LAYOUT_KERAS3_WEIGHTS);
    CHECK_INT_EQ(h5_layout_for_path("w.weights.h5", false, &l, &d), -EINVAL);
    CHECK(strstr(d.message, "save_weights_only") != NULL);
    CHECK_INT_EQ(h5_layout_for_path("w.pt", true, &l, &d), -EINVAL);
    CHECK(strstr(d.message, ".hdf5") != NULL && strstr(d.message, ".weights.h5") != NULL);
    CHECK_INT_EQ(h5_layout_for_path(".h5", true, &l, &d), -EINVAL);
    CHECK_INT_EQ(h5_layout_for_path("dir.h5/w", true, &l, &d), -EINVAL);
}

static void roundtrip_layout(const char *model_name, int hw, enum h5_layout layout,
                             const char *relpath)
{
    struct model *m = new_model(model_name, hw, 1), *m2 = new_model(model_name, hw, 2);
    CHECK(m && m2);
    if (!m || !m2)
        goto out_models;
    struct optimizer *opt = new_optimizer(m, OPTIMIZER_KIND_SGD);
    train(m, opt, 0, 3);
    CHECK(!weights_equal(m, m2));
    struct diag d = {{0}, {0}};
    uint8_t sha[32], sha2[32], sha_file[32];
    uint64_t bytes = 0, bytes_file = 0;
    int r = h5_save(tmpdir, relpath, layout, m, opt, NULL, sha, &bytes, NULL, &d);
    CHECK_MSG(r == 0, "%s: %s %s", relpath, d.field, d.message);
    char path[1024];
    path_of(path, sizeof(path), relpath);
    CHECK_INT_EQ(fsutil_sha256_file(path, sha_file, &bytes_file, &d), 0);
    CHECK(memcmp(sha, sha_file, 32) == 0);
    CHECK_INT_EQ(bytes, bytes_file);
    /* Same state, same bytes (no timestamps in the file; a .keras archive
     * has Keras' date_saved, to the second). */
    CHECK_INT_EQ(h5_save(tmpdir, relpath, layout, m, opt, NULL, sha2, NULL, NULL, &d), 0);
    CHECK(layout == H5_LAYOUT_KERAS_ARCHIVE || memcmp(sha, sha2, 32) == 0);

    enum h5_layout got = (enum h5_layout)-1;
    CHECK_INT_EQ(h5_detect_layout(path, &got, &d), 0);
    CHECK_INT_EQ(got, layout);
    r = h5_load_weights(m2, path, &d);
    CHECK_MSG(r == 0, "load %s: %s %s", relpath, d.field, d.message);
    CHECK(weights_equal(m, m2));
    float *p1 = predict(m), *p2 = predict(m2);
    CHECK(memcmp(p1, p2, (size_t)BATCH * m->classes * sizeof(float)) == 0);
    free(p1);
    free(p2);
    CHECK_INT_EQ(test_tmpdir_count_temp(tmpdir), 0);
    optimizer_free(opt);
out_models:
    model_free(m);
    model_free(m2);
}

static void test_roundtrip_tf_weights(void)
{
    roundtrip_layout("minivggnet", 28, H5_LAYOUT_TF_WEIGHTS, "rt/w-001.h5");
}

static void test_roundtrip_tf_model(void)
{
    roundtrip_layout("minivggnet", 28, H5_LAYOUT_TF_MODEL, "rt/model-001.hdf5");
    roundtrip_layout("lenet", 28, H5_LAYOUT_TF_MODEL, "rt/lenet.keras");
}

static void test_roundtrip_keras3(void)
{
    roundtrip_layout("minivggnet", 28, H5_LAYOUT_KERAS3_WEIGHTS, "rt/a/b/w.weights.h5");
    roundtrip_layout("mlp", 28, H5_LAYOUT_KERAS3_WEIGHTS, "rt/mlp.weights.h5");
}

static int write_bytes(const char *path, const void *data, size_t len);

static void test_roundtrip_keras_archive(void)
{
    roundtrip_layout("minivggnet", 28, H5_LAYOUT_KERAS_ARCHIVE, "rt/model.keras");
    roundtrip_layout("mlp", 28, H5_LAYOUT_KERAS_ARCHIVE, "rt/a/mlp.keras");
}

static void test_archive_members(void)
{
    struct diag d = {{0}, {0}};
    void *zip = NULL, *out = NULL;
    size_t len = 0, n = 0;
    static const char weights[] = "not really HDF5";
    CHECK_INT_EQ(keras_archive_pack("{}", "{\"a\": 1}", weights, sizeof(weights), 0, &zip, &len,
                                    &d), 0);
    CHECK(keras_archive_is_zip(zip, len));
    CHECK_INT_EQ(keras_archive_member(zip, len, KERAS_ARCHIVE_WEIGHTS, 1 << 20, "t", &out, &n, &d),
                 0);
    CHECK(n == sizeof(weights) && memcmp(out, weights, n) == 0);
    free(out);
    out = NULL;
    CHECK_INT_EQ(keras_archive_member(zip, len, "assets/x", 1 << 20, "t", &out, &n, &d), -ENOENT);
    /* a member larger than the caller's limit is refused */
    CHECK_INT_EQ(keras_archive_member(zip, len, KERAS_ARCHIVE_WEIGHTS, 4, "t", &out, &n, &d),
                 -EFBIG);
    /* a cut archive is no zip */
    CHECK(keras_archive_member(zip, 10, KERAS_ARCHIVE_WEIGHTS, 1 << 20, "t", &out, &n, &d) < 0);
    free(zip);
    /* an archive whose weights member is no HDF5 file is refused by the loader */
    struct model *m = new_model("mlp", 28, 1);
    char path[1024];
    path_of(path, sizeof(path), "bad.keras");
    CHECK_INT_EQ(keras_archive_pack("{}", "{}", weights, sizeof(weights), 0, &zip, &len, &d), 0);
    CHECK_INT_EQ(write_bytes(path, zip, len), 0);
    CHECK_INT_EQ(h5_load_weights(m, path, &d), -EINVAL);
    free(zip);
    model_free(m);
}

/* load_weights(by_name): the same model takes everything; a model whose
 * first Dense is wider is refused naming layer, weight and both shapes, and
 * with skip_mismatch loads the rest. */
static void test_by_name(void)
{
    struct diag d = {{0}, {0}};
    struct model *m = new_model("lenet", 28, 1), *m2 = new_model("lenet", 28, 2);
    CHECK(m && m2);
    const char *files[] = {"bn/w.h5", "bn/m.hdf5", "bn/w.weights.h5", "bn/m.keras"};
    const enum h5_layout layouts[] = {H5_LAYOUT_TF_WEIGHTS, H5_LAYOUT_TF_MODEL,
                                      H5_LAYOUT_KERAS3_WEIGHTS, H5_LAYOUT_KERAS_ARCHIVE};
    for (int i = 0; i < 4; i++) {
        char path[1024];
        struct h5_by_name_report rep;
        CHECK_INT_EQ(h5_save(tmpdir, files[i], layouts[i], m, NULL, NULL, NULL, NULL, NULL, &d),
                     0);
        path_of(path, sizeof(path), files[i]);
        model_init_weights(m2, 2);
        CHECK_INT_EQ(h5_load_weights_by_name(m2, path, false, &rep, &d), 0);
        CHECK(weights_equal(m, m2));
        CHECK_INT_EQ(rep.layout, layouts[i]);
        CHECK_INT_EQ(rep.n_loaded, m->n_weights);
        CHECK_INT_EQ(rep.n_skipped + rep.n_absent, 0);
    }
    /* a wider model: lenet's layers, every Dense twice as wide */
    struct model_spec spec;
    const int shape[3] = {28, 28, 1};
    CHECK_INT_EQ(model_spec_builtin(&spec, "lenet", shape, 10, &d), 0);
    int dense = -1;
    for (int i = 0; i < spec.n_layers && dense < 0; i++)
        if (spec.layers[i].kind == LAYER_KIND_DENSE)
            dense = i;
    CHECK(dense >= 0);
    spec.layers[dense].units *= 2;
    struct model *w = NULL;
    CHECK_INT_EQ(model_create(&w, &spec, BATCH, 1, &d), 0);
    model_init_weights(w, 3);
    float *before = malloc(w->n_params * sizeof(float));
    memcpy(before, w->params, w->n_params * sizeof(float));
    char path[1024];
    path_of(path, sizeof(path), "bn/m.keras");
    CHECK_INT_EQ(h5_load_weights_by_name(w, path, false, NULL, &d), -EINVAL);
    CHECK(strstr(d.message, spec.layers[dense].name) != NULL);
    CHECK(strstr(d.message, "kernel") != NULL);
    CHECK_MSG(strstr(d.message, "shape (") != NULL, "%s", d.message);
    CHECK(memcmp(before, w->params, w->n_params * sizeof(float)) == 0); /* unchanged */
    struct h5_by_name_report rep;
    CHECK_INT_EQ(h5_load_weights_by_name(w, path, true, &rep, &d), 0);
    /* the wider Dense's kernel and bias, and the next layer's kernel */
    CHECK_INT_EQ(rep.n_skipped, 3);
    CHECK(strcmp(rep.skipped[0].layer, spec.layers[dense].name) == 0);
    CHECK(strcmp(rep.skipped[0].weight, "kernel") == 0);
    CHECK_INT_EQ(rep.n_loaded, m->n_weights - 3);
    free(before);
    model_free(w);
    model_spec_free(&spec);
    model_free(m);
    model_free(m2);
}

static void resume_roundtrip(enum optimizer_kind kind)
{
    struct model *m = new_model("minivggnet", 28, 1), *m2 = new_model("minivggnet", 28, 5);
    CHECK(m && m2);
    if (!m || !m2)
        goto out_models;
    struct optimizer *opt = new_optimizer(m, kind), *opt2 = new_optimizer(m2, kind);
    train(m, opt, 0, 3);
    struct diag d = {{0}, {0}};
    const char *state =
        "{\"policies\":[{\"best\":0.98481}],\"rng\":[1,2,3],\"text\":\"\xc3\xa9t\xc3\xa9\"}";
    int r = h5_save_resume(tmpdir, "job/resume.h5", m, opt, 3, state, NULL, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    char path[1024];
    path_of(path, sizeof(path), "job/resume.h5");
    int epoch = -1;
    char *state2 = NULL;
    r = h5_load_resume(m2, opt2, path, &epoch, &state2, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    CHECK_INT_EQ(epoch, 3);
    CHECK_STR_EQ(state2, state);
    free(state2);
    CHECK(weights_equal(m, m2));
    CHECK(slots_equal(m, opt, opt2));
    CHECK_INT_EQ(opt2->iterations, opt->iterations);
    CHECK_INT_EQ(opt2->iterations, 3);
    /* Its weights load like any full-model file's. */
    struct model *m3 = new_model("minivggnet", 28, 9);
    CHECK_INT_EQ(h5_load_weights(m3, path, &d), 0);
    CHECK(weights_equal(m, m3));
    model_free(m3);
    /* Continuing from the file is bit-identical to never stopping. */
    train(m, opt, 3, 2);
    train(m2, opt2, 3, 2);
    CHECK(weights_equal(m, m2));
    CHECK(slots_equal(m, opt, opt2));
    /* A resume file is also a tf.keras full-model file. */
    enum h5_layout got;
    CHECK(h5_detect_layout(path, &got, &d) == 0 && got == H5_LAYOUT_TF_MODEL);
    optimizer_free(opt);
    optimizer_free(opt2);
out_models:
    model_free(m);
    model_free(m2);
}

static void test_resume_sgd(void)
{
    resume_roundtrip(OPTIMIZER_KIND_SGD);
}

static void test_resume_adam(void)
{
    resume_roundtrip(OPTIMIZER_KIND_ADAM);
}

/* Name lists longer than Keras' HDF5_OBJECT_HEADER_LIMIT (64512 bytes) are
 * split into weight_names0, weight_names1, ... when written and joined when
 * read: 400 Dense layers with 59-character names under Adam give 1601
 * optimizer weight names of up to 79 bytes, two parts. */
static void test_chunked_name_lists(void)
{
    enum { N_DENSE = 400 };
    struct model_spec spec = {.name = "sequential", .input_shape = {1, 1, 2}};
    spec.n_layers = N_DENSE + 1;
    spec.layers = calloc((size_t)spec.n_layers, sizeof(*spec.layers));
    CHECK(spec.layers != NULL);
    if (!spec.layers)
        return;
    layer_config_init(&spec.layers[0], LAYER_KIND_FLATTEN);
    snprintf(spec.layers[0].name, sizeof(spec.layers[0].name), "flatten");
    for (int i = 1; i <= N_DENSE; i++) {
        struct layer_config *l = &spec.layers[i];
        layer_config_init(l, LAYER_KIND_DENSE);
        l->units = 2;
        l->activation = i == N_DENSE ? ACTIVATION_KIND_SOFTMAX : ACTIVATION_KIND_RELU;
        snprintf(l->name, sizeof(l->name), "dense_layer_with_a_long_name_to_split_the_name_lists_%04d",
                 i);
    }
    struct model *m = NULL, *m2 = NULL;
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(model_create(&m, &spec, BATCH, 1, &d), 0);
    CHECK_INT_EQ(model_create(&m2, &spec, BATCH, 1, &d), 0);
    model_spec_free(&spec);
    if (!m || !m2)
        goto out;
    model_init_weights(m, 1);
    model_init_weights(m2, 2);
    struct optimizer *opt = new_optimizer(m, OPTIMIZER_KIND_ADAM);
    struct optimizer *opt2 = new_optimizer(m2, OPTIMIZER_KIND_ADAM);
    train(m, opt, 0, 2);
    char path[1024];
    int r = h5_save(tmpdir, "chunk/model.h5", H5_LAYOUT_TF_MODEL, m, opt, NULL, NULL, NULL, NULL,
                    &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    path_of(path, sizeof(path), "chunk/model.h5");
    r = h5_load_weights(m2, path, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    CHECK(weights_equal(m, m2));
    /* the resume file reads the optimizer's split weight_names back */
    r = h5_save_resume(tmpdir, "chunk/resume.h5", m, opt, 1, NULL, NULL, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    path_of(path, sizeof(path), "chunk/resume.h5");
    int epoch = 0;
    char *state = NULL;
    r = h5_load_resume(m2, opt2, path, &epoch, &state, &d);
    CHECK_MSG(r == 0, "%s %s", d.field, d.message);
    free(state);
    CHECK(slots_equal(m, opt, opt2));
    optimizer_free(opt);
    optimizer_free(opt2);
out:
    model_free(m);
    model_free(m2);
}

static int write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, data, len);
    int c = close(fd);
    return w == (ssize_t)len && c == 0 ? 0 : -1;
}

/* Load path into m (and resume when opt != NULL): must fail with an errno in
 * {e1, e2}, a message, and leave m (and opt) as they were. */
static void expect_rejected(struct model *m, struct optimizer *opt, const char *path, int e1,
                            int e2, const char *what)
{
    float *before = malloc(m->n_params * sizeof(float));
    memcpy(before, m->params, m->n_params * sizeof(float));
    float *slot0 = NULL;
    int64_t iters = opt ? opt->iterations : 0;
    if (opt && opt->n_slots > 0) {
        slot0 = malloc(m->n_params * sizeof(float));
        memcpy(slot0, opt->slots[0], m->n_params * sizeof(float));
    }
    struct diag d = {{0}, {0}};
    int epoch = 77;
    char *state = NULL;
    int r = opt ? h5_load_resume(m, opt, path, &epoch, &state, &d) : h5_load_weights(m, path, &d);
    CHECK_MSG(r == e1 || r == e2, "%s: got %d (%s)", what, r, d.message);
    CHECK_MSG(d.message[0] != '\0', "%s: no message", what);
    CHECK_MSG(memcmp(before, m->params, m->n_params * sizeof(float)) == 0, "%s: model changed",
              what);
    if (opt) {
        CHECK(epoch == 77 && state == NULL && opt->iterations == iters);
        if (slot0)
            CHECK(memcmp(slot0, opt->slots[0], m->n_params * sizeof(float)) == 0);
    }
    free(state);
    free(before);
    free(slot0);
}

static void test_rejects_bad_files(void)
{
    struct model *m = new_model("minivggnet", 28, 1), *other = new_model("lenet", 28, 1);
    struct model *wide = new_model("minivggnet", 32, 1);
    CHECK(m && other && wide);
    if (!m || !other || !wide)
        goto out;
    struct optimizer *opt = new_optimizer(m, OPTIMIZER_KIND_SGD);
    struct optimizer *adam = new_optimizer(m, OPTIMIZER_KIND_ADAM);
    train(m, opt, 0, 1);
    struct diag d = {{0}, {0}};
    char path[1024], bad[1024];
    CHECK_INT_EQ(h5_save(tmpdir, "bad/model.h5", H5_LAYOUT_TF_MODEL, m, opt, NULL, NULL, NULL, NULL, &d),
                 0);
    CHECK_INT_EQ(h5_save_resume(tmpdir, "bad/resume.h5", m, opt, 1, "{}", NULL, &d), 0);
    CHECK_INT_EQ(h5_save(tmpdir, "bad/lenet.h5", H5_LAYOUT_TF_WEIGHTS, other, NULL, NULL, NULL,
                         NULL, NULL, &d), 0);
    CHECK_INT_EQ(h5_save(tmpdir, "bad/lenet.weights.h5", H5_LAYOUT_KERAS3_WEIGHTS, other, NULL,
                         NULL, NULL, NULL, NULL, &d), 0);
    CHECK_INT_EQ(h5_save(tmpdir, "bad/wide.h5", H5_LAYOUT_TF_WEIGHTS, wide, NULL, NULL, NULL,
                         NULL, NULL, &d), 0);
    void *image;
    size_t len;
    path_of(path, sizeof(path), "bad/model.h5");
    CHECK_INT_EQ(fsutil_read_file(path, 1 << 30, &image, &len, &d), 0);
    train(m, opt, 1, 1); /* m now differs from the files */

    /* Truncated at several points. */
    const size_t cuts[] = {0, 7, 100, 2048, len / 2, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        path_of(bad, sizeof(bad), "bad/truncated.h5");
        CHECK(write_bytes(bad, image, cuts[i]) == 0);
        char what[64];
        snprintf(what, sizeof(what), "truncated to %zu", cuts[i]);
        expect_rejected(m, NULL, bad, -EINVAL, -EIO, what);
    }
    /* Not HDF5 at all. */
    path_of(bad, sizeof(bad), "bad/text.h5");
    CHECK(write_bytes(bad, "{\"not\": \"hdf5\"}\n", 16) == 0);
    expect_rejected(m, NULL, bad, -EINVAL, -EINVAL, "text file");
    struct diag d2 = {{0}, {0}};
    CHECK_INT_EQ(h5_load_weights(m, bad, &d2), -EINVAL);
    CHECK(strstr(d2.message, "not an HDF5 file") != NULL);
    /* Signature flipped. */
    char *flipped = malloc(len);
    memcpy(flipped, image, len);
    flipped[1] ^= 0x20;
    CHECK(write_bytes(bad, flipped, len) == 0);
    expect_rejected(m, NULL, bad, -EINVAL, -EINVAL, "signature flipped");
    /* Missing file. */
    path_of(bad, sizeof(bad), "bad/missing.h5");
    expect_rejected(m, NULL, bad, -ENOENT, -ENOENT, "missing file");
    /* Another model's files: other layer names, other shapes. */
    path_of(bad, sizeof(bad), "bad/lenet.h5");
    expect_rejected(m, NULL, bad, -EINVAL, -EINVAL, "lenet weights into minivggnet");
    CHECK_INT_EQ(h5_load_weights(m, bad, &d2), -EINVAL);
    CHECK_MSG(strstr(d2.message, "conv2d") != NULL, "%s", d2.message);
    path_of(bad, sizeof(bad), "bad/lenet.weights.h5");
    expect_rejected(m, NULL, bad, -EINVAL, -EINVAL, "lenet keras3 weights into minivggnet");
    path_of(bad, sizeof(bad), "bad/wide.h5");
    expect_rejected(m, NULL, bad, -EINVAL, -EINVAL, "32x32 weights into 28x28 model");
    CHECK_INT_EQ(h5_load_weights(m, bad, &d2), -EINVAL);
    CHECK_MSG(strstr(d2.message, "shape") != NULL && strstr(d2.message, "(4096, 512)") != NULL,
              "%s", d2.message);
    /* Resume: plain model file, other optimizer, corrupted payload. */
    expect_rejected(m, opt, path, -EINVAL, -EINVAL, "model file as resume file");
    path_of(path, sizeof(path), "bad/resume.h5");
    expect_rejected(m, adam, path, -EINVAL, -EINVAL, "SGD resume into Adam");
    free(image);
    CHECK_INT_EQ(fsutil_read_file(path, 1 << 30, &image, &len, &d), 0);
    /* Flip a byte in the last third (raw data) of the resume file. */
    free(flipped);
    flipped = malloc(len);
    int detected = 0, trials = 0;
    for (size_t off = len / 3; off < len; off += len / 7 + 1) {
        memcpy(flipped, image, len);
        flipped[off] ^= 0x01;
        path_of(bad, sizeof(bad), "bad/resume-flipped.h5");
        CHECK(write_bytes(bad, flipped, len) == 0);
        char what[64];
        snprintf(what, sizeof(what), "resume byte %zu flipped", off);
        expect_rejected(m, opt, bad, -EINVAL, -EIO, what);
        trials++;
        detected++;
    }
    CHECK(trials >= 3 && detected == trials);
    /* A checkpoint loaded with the SHA-256 recorded when it was written:
     * any flipped byte is caught before HDF5 parses the file (HDF5 1.10.8
     * can crash on corrupted metadata, so unverified mutations are not
     * tried here). */
    free(image);
    uint8_t sha[32];
    CHECK_INT_EQ(h5_save(tmpdir, "bad/lenet-best.h5", H5_LAYOUT_TF_MODEL, other, NULL, NULL, sha,
                         NULL, NULL, &d), 0);
    path_of(path, sizeof(path), "bad/lenet-best.h5");
    CHECK_INT_EQ(fsutil_read_file(path, 1 << 30, &image, &len, &d), 0);
    free(flipped);
    flipped = malloc(len);
    float *before = malloc(other->n_params * sizeof(float));
    model_init_weights(other, 11);
    memcpy(before, other->params, other->n_params * sizeof(float));
    int rejected = 0, tried = 0;
    for (size_t off = 0; off < len; off += len / 97 + 1) {
        memcpy(flipped, image, len);
        flipped[off] ^= (char)0x10;
        path_of(bad, sizeof(bad), "bad/mutated.h5");
        CHECK(write_bytes(bad, flipped, len) == 0);
        struct diag d3 = {{0}, {0}};
        tried++;
        if (h5_load_weights_verified(other, bad, sha, &d3) == -EINVAL &&
            strstr(d3.message, "SHA-256") != NULL)
            rejected++;
    }
    CHECK_INT_EQ(rejected, tried);
    CHECK(memcmp(before, other->params, other->n_params * sizeof(float)) == 0);
    CHECK_INT_EQ(h5_load_weights_verified(other, path, sha, &d), 0);
    CHECK(memcmp(before, other->params, other->n_params * sizeof(float)) != 0);
    free(before);
    free(flipped);
    free(image);
    optimizer_free(opt);
    optimizer_free(adam);
out:
    model_free(m);
    model_free(other);
    model_free(wide);
}

static void test_failed_writes_keep_previous(void)
{
    struct model *m = new_model("lenet", 28, 1);
    CHECK(m != NULL);
    if (!m)
        return;
    struct optimizer *opt = new_optimizer(m, OPTIMIZER_KIND_ADAM);
    train(m, opt, 0, 1);
    struct diag d = {{0}, {0}};
    uint8_t sha_old[32], sha_now[32];
    const char *rel = "faults/best.h5";
    char path[1024], dir[1024];
    path_of(path, sizeof(path), rel);
    path_of(dir, sizeof(dir), "faults");
    CHECK_INT_EQ(h5_save(tmpdir, rel, H5_LAYOUT_TF_MODEL, m, opt, NULL, sha_old, NULL, NULL, &d), 0);
    float *saved = malloc(m->n_params * sizeof(float));
    memcpy(saved, m->params, m->n_params * sizeof(float));
    train(m, opt, 1, 1);
    for (int s = FSUTIL_STEP_ENCODE; s <= FSUTIL_STEP_RENAME; s++) {
        const char *step = fsutil_step_name((enum fsutil_step)s);
        fsutil_inject_fault((enum fsutil_step)s, EIO);
        memset(&d, 0, sizeof(d));
        enum fsutil_step failed = FSUTIL_STEP_COUNT;
        int r = h5_save(tmpdir, rel, H5_LAYOUT_TF_MODEL, m, opt, NULL, sha_now, NULL, &failed, &d);
        CHECK_MSG(r == -EIO, "%s: r=%d", step, r);
        CHECK_MSG((int)failed == s, "%s: step %d reported", step, (int)failed);
        CHECK_MSG(strstr(d.message, step) != NULL, "%s: message '%s'", step, d.message);
        CHECK_INT_EQ(fsutil_sha256_file(path, sha_now, NULL, NULL), 0);
        CHECK_MSG(memcmp(sha_old, sha_now, 32) == 0, "%s: previous file changed", step);
        CHECK_INT_EQ(test_tmpdir_count_temp(dir), 0);
        /* The previous file still loads and holds the previous weights. */
        struct model *m2 = new_model("lenet", 28, 3);
        CHECK_INT_EQ(h5_load_weights(m2, path, &d), 0);
        CHECK(memcmp(m2->params, saved, m->n_params * sizeof(float)) == 0);
        model_free(m2);
    }
    /* Resume writes fail the same way. */
    CHECK_INT_EQ(h5_save_resume(tmpdir, "faults/resume.h5", m, opt, 1, NULL, NULL, &d), 0);
    path_of(path, sizeof(path), "faults/resume.h5");
    CHECK_INT_EQ(fsutil_sha256_file(path, sha_old, NULL, NULL), 0);
    train(m, opt, 2, 1);
    fsutil_inject_fault(FSUTIL_STEP_FSYNC_FILE, ENOSPC);
    CHECK_INT_EQ(h5_save_resume(tmpdir, "faults/resume.h5", m, opt, 2, NULL, NULL, &d), -ENOSPC);
    CHECK(strstr(d.message, "fsync") != NULL);
    CHECK_INT_EQ(fsutil_sha256_file(path, sha_now, NULL, NULL), 0);
    CHECK(memcmp(sha_old, sha_now, 32) == 0);
    CHECK_INT_EQ(test_tmpdir_count_temp(dir), 0);
    /* A failed fsync of the folder comes after the rename: new file in place. */
    fsutil_inject_fault(FSUTIL_STEP_FSYNC_DIR, EIO);
    CHECK_INT_EQ(h5_save(tmpdir, rel, H5_LAYOUT_TF_MODEL, m, opt, NULL, NULL, NULL, NULL, &d), -EIO);
    struct model *m3 = new_model("lenet", 28, 3);
    path_of(path, sizeof(path), rel);
    CHECK_INT_EQ(h5_load_weights(m3, path, &d), 0);
    CHECK(weights_equal(m, m3));
    model_free(m3);
    CHECK_INT_EQ(test_tmpdir_count_temp(dir), 0);
    free(saved);
    optimizer_free(opt);
    model_free(m);
}

/* --- fixtures written by tests/fixtures/h5/make_fixtures.py ------------- */

#define FIXTURES TEST_SOURCE_DIR "/tests/fixtures/h5/"

static struct model *fixture_model(void)
{
    void *json;
    size_t len;
    struct diag d = {{0}, {0}};
    struct model_spec spec;
    struct model *m = NULL;
    if (fsutil_read_file(FIXTURES "tiny.json", 1 << 20, &json, &len, &d) < 0 ||
        model_spec_parse_json(&spec, json, len, NULL, &d) < 0) {
        fprintf(stderr, "tiny.json: %s %s\n", d.field, d.message);
        return NULL;
    }
    free(json);
    if (model_create(&m, &spec, 2, 1, &d) < 0)
        fprintf(stderr, "model_create: %s\n", d.message);
    model_spec_free(&spec);
    return m;
}

/* make_fixtures.py: tensor t, element k = ((7 k + 13 t) % 17) / 16 - 0.5. */
static bool fixture_values_loaded(const struct model *m)
{
    int t = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_weights; j++, t++) {
            const struct weight *w = &m->layers[i].weights[j];
            for (size_t k = 0; k < w->size; k++) {
                float want = (float)((double)((7 * k + 13 * (size_t)t) % 17) / 16.0 - 0.5);
                if (m->params[w->offset + k] != want) {
                    fprintf(stderr, "%s/%s[%zu] = %g, want %g\n", m->layers[i].cfg.name,
                            w->name, k, m->params[w->offset + k], want);
                    return false;
                }
            }
        }
    return t == 8;
}

static void test_fixtures_golden(void)
{
    static const struct {
        const char *file;
        enum h5_layout layout;
    } golden[] = {
        {"tf_weights_vlen.h5", H5_LAYOUT_TF_WEIGHTS},
        {"tf_weights_fixed.h5", H5_LAYOUT_TF_WEIGHTS},
        {"tf_weights_chunked.h5", H5_LAYOUT_TF_WEIGHTS},
        {"tf_model_vlen.h5", H5_LAYOUT_TF_MODEL},
        {"tf_model_fixed.h5", H5_LAYOUT_TF_MODEL},
        {"keras3.weights.h5", H5_LAYOUT_KERAS3_WEIGHTS},
    };
    for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
        struct model *m = fixture_model();
        CHECK(m != NULL);
        if (!m)
            return;
        char path[1024];
        snprintf(path, sizeof(path), FIXTURES "%s", golden[i].file);
        struct diag d = {{0}, {0}};
        enum h5_layout got = (enum h5_layout)-1;
        CHECK_MSG(h5_detect_layout(path, &got, &d) == 0 && got == golden[i].layout, "%s: %s",
                  golden[i].file, d.message);
        int r = h5_load_weights(m, path, &d);
        CHECK_MSG(r == 0, "%s: %s %s", golden[i].file, d.field, d.message);
        CHECK_MSG(fixture_values_loaded(m), "%s: values", golden[i].file);
        model_free(m);
    }
}

static void test_fixtures_corrupt(void)
{
    static const struct {
        const char *file;
        const char *message; /* must appear in d.message */
    } bad[] = {
        {"bad_truncated.h5", "truncated"},
        {"bad_not_hdf5.h5", "not an HDF5 file"},
        {"bad_shape.h5", "has shape (9, 3), model expects (18, 3)"},
        {"bad_missing_dataset.h5", "dense/bias:0 missing"},
        {"bad_layer_name.h5", "'dense_7' in the file, 'dense' in the model"},
        {"bad_int_weights.h5", "not floating point"},
    };
    struct model *m = fixture_model();
    CHECK(m != NULL);
    if (!m)
        return;
    model_init_weights(m, 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), FIXTURES "%s", bad[i].file);
        expect_rejected(m, NULL, path, -EINVAL, -EIO, bad[i].file);
        struct diag d = {{0}, {0}};
        h5_load_weights(m, path, &d);
        CHECK_MSG(strstr(d.message, bad[i].message) != NULL, "%s: '%s'", bad[i].file, d.message);
    }
    model_free(m);
}

/* Every byte of a resume file is checked before HDF5 reads it: a flip
 * anywhere is rejected, except in the user block's zero padding, which
 * nothing reads. */
static void test_resume_every_byte_checked(void)
{
    struct model *m = fixture_model(), *m2 = fixture_model();
    CHECK(m && m2);
    if (!m || !m2)
        goto out;
    model_init_weights(m, 1);
    model_init_weights(m2, 2);
    struct optimizer *opt = new_optimizer(m, OPTIMIZER_KIND_ADAM);
    struct optimizer *opt2 = new_optimizer(m2, OPTIMIZER_KIND_ADAM);
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(h5_save_resume(tmpdir, "sweep/resume.h5", m, opt, 4, "{\"k\": 1}", NULL, &d), 0);
    char path[1024], bad[1024];
    path_of(path, sizeof(path), "sweep/resume.h5");
    path_of(bad, sizeof(bad), "sweep/flipped.h5");
    void *image;
    size_t len;
    CHECK_INT_EQ(fsutil_read_file(path, 1 << 30, &image, &len, &d), 0);
    size_t header_len = strnlen(image, 512);
    CHECK(len > 512 && header_len == strlen("TRAIND-H5\nsha256 ") + 64 + 1);
    char *flipped = malloc(len);
    int rejected = 0, padding = 0, tried = 0;
    for (size_t off = 0; off < len; off += 11) {
        memcpy(flipped, image, len);
        flipped[off] ^= (char)0x01;
        CHECK(write_bytes(bad, flipped, len) == 0);
        int epoch = -1;
        char *state = NULL;
        struct diag d2 = {{0}, {0}};
        int r = h5_load_resume(m2, opt2, bad, &epoch, &state, &d2);
        tried++;
        if (off >= header_len && off < 512) {
            padding += r == 0 && epoch == 4;
        } else {
            rejected += r == -EINVAL && epoch == -1 && state == NULL;
        }
        free(state);
    }
    CHECK_INT_EQ(rejected + padding, tried);
    CHECK(weights_equal(m, m2)); /* the padding flips loaded the real state */
    free(flipped);
    free(image);
    optimizer_free(opt);
    optimizer_free(opt2);
out:
    model_free(m);
    model_free(m2);
}

struct thread_arg {
    struct model *m;
    int id;
    int failures;
};

static void *save_load_thread(void *p)
{
    struct thread_arg *a = p;
    char rel[64], path[1024];
    snprintf(rel, sizeof(rel), "threads/t%d.weights.h5", a->id);
    path_of(path, sizeof(path), rel);
    for (int i = 0; i < 10; i++) {
        struct diag d = {{0}, {0}};
        if (h5_save(tmpdir, rel, H5_LAYOUT_KERAS3_WEIGHTS, a->m, NULL, NULL, NULL, NULL, NULL, &d) < 0 ||
            h5_load_weights(a->m, path, &d) < 0)
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_use(void)
{
    struct thread_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct thread_arg){new_model("mlp", 28, (uint64_t)i), i, 0};
        CHECK(args[i].m != NULL);
    }
    for (int i = 0; i < 3; i++)
        if (args[i].m)
            pthread_create(&th[i], NULL, save_load_thread, &args[i]);
    for (int i = 0; i < 3; i++)
        if (args[i].m) {
            pthread_join(th[i], NULL);
            CHECK_INT_EQ(args[i].failures, 0);
            model_free(args[i].m);
        }
}

int main(void)
{
    test_tmpdir_make(tmpdir, sizeof(tmpdir), "h5");
    TEST_RUN(test_layout_for_path);
    TEST_RUN(test_save_bad_destination);
    TEST_RUN(test_roundtrip_tf_weights);
    TEST_RUN(test_roundtrip_tf_model);
    TEST_RUN(test_roundtrip_keras3);
    TEST_RUN(test_roundtrip_keras_archive);
    TEST_RUN(test_by_name);
    TEST_RUN(test_resume_sgd);
    TEST_RUN(test_resume_adam);
    TEST_RUN(test_chunked_name_lists);
    TEST_RUN(test_rejects_bad_files);
    TEST_RUN(test_archive_members);
    TEST_RUN(test_failed_writes_keep_previous);
    TEST_RUN(test_fixtures_golden);
    TEST_RUN(test_fixtures_corrupt);
    TEST_RUN(test_resume_every_byte_checked);
    TEST_RUN(test_concurrent_use);
    if (test_failures == 0)
        test_tmpdir_remove(tmpdir);
    return TEST_EXIT();
}
