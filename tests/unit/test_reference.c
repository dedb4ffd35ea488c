/* test_reference.c - the engine against PyTorch: MiniVGGNet (the built-in
 * spec, input (12, 12, 3), 10 classes, Dropout rates set to 0) with the
 * weights, input and labels committed under tests/fixtures/reference/ by
 * tests/reference/gen_torch_reference.py (torch, float64), and a small
 * residual functional model (its model.json, weights and values under
 * tests/fixtures/reference_residual/ by tests/reference/gen_torch_residual.py:
 * Rescaling, swish/gelu Conv2D, ReLU(max_value), ZeroPadding2D, Add,
 * LeakyReLU, strided Conv2D, ELU, Concatenate, GlobalAveragePooling2D,
 * Softmax; two tensors fan out).  Inference mode
 * must give torch's eval-mode softmax output; one training-mode
 * forward/backward must give torch's softmax output, loss and every gradient;
 * a second one with update_moving_stats must move the BN moving statistics as
 * Keras does (see the script for the variance each layer uses; compared as the
 * batch statistic that went into the average, so that Bessel's factor shows).
 *
 * Criteria per tensor, b the reference and a the engine (all must hold):
 *   max_i |a_i - b_i| <= 1e-4 * max_i |b_i|        (max-norm relative)
 *   ||a - b||_2       <= 1e-4 * ||b||_2            (norm-wise relative)
 *   |a_i - b_i|       <= 1e-3 * max(|b_i|, rms(b))  (every element, also small ones)
 * Calibration: torch itself in float32 on these inputs, against its float64
 * answer, reaches 9.3e-5, 1.5e-5 and 4.0e-4 on the three; float32 sums
 * through BatchNormalization's backward lose that much.  The largest errors
 * seen are printed. */
#include "model.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

#define REF_DIR TEST_SOURCE_DIR "/tests/fixtures/reference"
#define REF_RESIDUAL_DIR TEST_SOURCE_DIR "/tests/fixtures/reference_residual"
#define RTOL 1e-4
#define MAX_FILES 128

struct manifest {
    const char *dir;
    int n, h, w, c, classes;
    double loss;
    int n_files;
    struct {
        char name[96];
        size_t count;
    } files[MAX_FILES];
};

static int manifest_read(struct manifest *mf, const char *dir)
{
    memset(mf, 0, sizeof(*mf));
    mf->dir = dir;
    char path[512];
    snprintf(path, sizeof(path), "%s/manifest.txt", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        char name[96];
        size_t count;
        if (sscanf(line, "input %d %d %d %d", &mf->n, &mf->h, &mf->w, &mf->c) == 4)
            continue;
        if (sscanf(line, "classes %d", &mf->classes) == 1)
            continue;
        if (sscanf(line, "loss %lf", &mf->loss) == 1)
            continue;
        if (sscanf(line, "file %95s %zu", name, &count) == 2 && mf->n_files < MAX_FILES) {
            snprintf(mf->files[mf->n_files].name, sizeof(mf->files[0].name), "%s", name);
            mf->files[mf->n_files].count = count;
            mf->n_files++;
        }
    }
    fclose(f);
    return mf->n > 0 && mf->classes > 0 && mf->n_files > 0 ? 0 : -EINVAL;
}

/* Read file `name` (count float32 LE values as the manifest says) into a
 * malloc'ed array; NULL (and a failed check) when missing or of another size. */
static float *ref_load(const struct manifest *mf, const char *name, size_t want)
{
    size_t count = 0;
    for (int i = 0; i < mf->n_files; i++)
        if (strcmp(mf->files[i].name, name) == 0)
            count = mf->files[i].count;
    CHECK_MSG(count == want, "%s: manifest has %zu values, the model %zu", name, count, want);
    if (count != want || want == 0)
        return NULL;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", mf->dir, name);
    FILE *f = fopen(path, "rbe");
    CHECK_MSG(f != NULL, "open %s", path);
    if (!f)
        return NULL;
    float *a = malloc(want * sizeof(float));
    size_t got = a ? fread(a, sizeof(float), want, f) : 0;
    int extra = fgetc(f);
    fclose(f);
    CHECK_MSG(got == want && extra == EOF, "%s: read %zu of %zu values", name, got, want);
    if (got != want) {
        free(a);
        return NULL;
    }
    return a; /* the fixtures are little-endian, as every machine we build for */
}

struct worst {
    double maxnorm, l2, elem; /* the three errors above, largest over tensors */
    char what[3][96];         /* where each was seen */
};

static void worst_note(double v, double *slot, char *what, const char *name)
{
    if (v > *slot) {
        *slot = v;
        snprintf(what, 96, "%s", name);
    }
}

/* Compare a with b (n values) by the criteria above. */
static void compare(const char *what, const float *a, const float *b, size_t n,
                    struct worst *w)
{
    double ss = 0, sd = 0, bmax = 0, dmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        ss += (double)b[i] * b[i];
        sd += d * d;
        if (fabs(b[i]) > bmax)
            bmax = fabs(b[i]);
        if (fabs(d) > dmax)
            dmax = fabs(d);
    }
    double rms = sqrt(ss / (double)n);
    double elem = 0;
    size_t bad = 0, worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double scale = fabs(b[i]) > rms ? fabs(b[i]) : rms;
        double r = scale > 0 ? d / scale : (d > 0 ? INFINITY : 0);
        if (!(r <= 10 * RTOL))
            bad++;
        if (!(r <= elem)) {
            elem = r;
            worst_i = i;
        }
    }
    double maxnorm = bmax > 0 ? dmax / bmax : dmax;
    double l2 = ss > 0 ? sqrt(sd / ss) : sqrt(sd);
    CHECK_MSG(maxnorm <= RTOL, "%s: max-norm relative error %.3g", what, maxnorm);
    CHECK_MSG(l2 <= RTOL, "%s: norm-wise relative error %.3g", what, l2);
    CHECK_MSG(bad == 0, "%s: %zu of %zu values off; worst [%zu] %.9g vs %.9g (error %.3g)",
              what, bad, n, worst_i, (double)a[worst_i], (double)b[worst_i], elem);
    worst_note(maxnorm, &w->maxnorm, w->what[0], what);
    worst_note(l2, &w->l2, w->what[1], what);
    worst_note(elem, &w->elem, w->what[2], what);
}

static void worst_print(const char *title, const struct worst *w)
{
    fprintf(stderr, "  %s: max-norm %.3g (%s), norm-wise %.3g (%s), element %.3g (%s)\n", title,
            w->maxnorm, w->what[0], w->l2, w->what[1], w->elem, w->what[2]);
}

/* The fixture name of layer l: its Keras name, for the layers with weights
 * (the built-ins use Keras' automatic names). */
static bool fixture_layer_name(const struct model *m, int l, char *buf, size_t size)
{
    if (m->layers[l].n_weights == 0)
        return false;
    snprintf(buf, size, "%s", m->layers[l].cfg.name);
    return true;
}

/* What a fixture holds: conv, dense and BN layers. */
struct ref_counts {
    int conv, dense, bn;
};

/* The three comparisons for the model m built for the fixture in mf.dir. */
static void run_reference(struct model *m, const struct manifest *mfp, struct ref_counts want)
{
    struct manifest mf = *mfp;
    int r;
    CHECK_INT_EQ(m->classes, mf.classes);

    /* load every variable; count what the model has against the fixture */
    int n_weights = 0, n_kinds[3] = {0};
    char lname[64], fname[160];
    for (int l = 0; l < m->n_layers; l++) {
        if (!fixture_layer_name(m, l, lname, sizeof(lname)))
            continue;
        struct layer *ly = &m->layers[l];
        n_kinds[ly->cfg.kind == LAYER_KIND_CONV2D ? 0 : ly->cfg.kind == LAYER_KIND_DENSE ? 1 : 2]++;
        for (int k = 0; k < ly->n_weights; k++) {
            const struct weight *wt =
                model_find_weight(m, ly->cfg.name, ly->weights[k].name);
            CHECK(wt && wt->offset == ly->weights[k].offset && wt->size == ly->weights[k].size);
            if (!wt)
                continue;
            snprintf(fname, sizeof(fname), "w.%s.%s.f32", lname, wt->name);
            float *v = ref_load(&mf, fname, wt->size);
            if (v)
                memcpy(m->params + wt->offset, v, wt->size * sizeof(float));
            free(v);
            n_weights++;
        }
    }
    CHECK_INT_EQ(n_kinds[0], want.conv);
    CHECK_INT_EQ(n_kinds[1], want.dense);
    CHECK_INT_EQ(n_kinds[2], want.bn);
    CHECK_INT_EQ(n_weights, want.conv * 2 + want.dense * 2 + want.bn * 4);

    size_t nx = (size_t)mf.n * mf.h * mf.w * mf.c, ny = (size_t)mf.n * mf.classes;
    float *x = ref_load(&mf, "x.f32", nx);
    float *y = ref_load(&mf, "y.f32", ny);
    float *probs_ref = ref_load(&mf, "probs.f32", ny);
    float *probs = calloc(ny, sizeof(float));
    float *params0 = malloc(m->n_params * sizeof(float));
    float *grads0 = malloc(m->n_params * sizeof(float));
    if (!x || !y || !probs_ref || !probs || !params0 || !grads0)
        goto out;
    memcpy(params0, m->params, m->n_params * sizeof(float));

    /* 0) inference mode as torch's eval mode, with the moving statistics e.* */
    int n_eval = 0;
    for (int l = 0; l < m->n_layers; l++) {
        if (!fixture_layer_name(m, l, lname, sizeof(lname)))
            continue;
        for (int k = 0; k < m->layers[l].n_weights; k++) {
            const struct weight *wt = &m->layers[l].weights[k];
            if (wt->trainable)
                continue;
            snprintf(fname, sizeof(fname), "e.%s.%s.f32", lname, wt->name);
            float *v = ref_load(&mf, fname, wt->size);
            if (v)
                memcpy(m->params + wt->offset, v, wt->size * sizeof(float));
            free(v);
            n_eval++;
        }
    }
    CHECK_INT_EQ(n_eval, 2 * want.bn);
    float *probs_eval_ref = ref_load(&mf, "probs_eval.f32", ny);
    if (probs_eval_ref) {
        struct worst we = {0};
        CHECK_INT_EQ(model_predict_f32(m, x, mf.n, probs), 0);
        compare("probs_eval", probs, probs_eval_ref, ny, &we);
        worst_print("inference-mode probs, relative errors", &we);
        free(probs_eval_ref);
    }
    memcpy(m->params, params0, m->n_params * sizeof(float));

    /* 1) forward/backward, moving statistics untouched */
    double loss = 0;
    r = model_forward_backward_f32(m, x, y, mf.n, 1, 0, false, &loss, probs);
    CHECK_INT_EQ(r, 0);
    struct worst w = {0};
    compare("probs", probs, probs_ref, ny, &w);
    double loss_err = fabs(loss - mf.loss) / fabs(mf.loss);
    CHECK_MSG(loss_err <= RTOL, "loss %.9g vs %.9g", loss, mf.loss);
    CHECK(memcmp(params0, m->params, m->n_params * sizeof(float)) == 0);
    int n_grads = 0;
    for (int l = 0; l < m->n_layers; l++) {
        if (!fixture_layer_name(m, l, lname, sizeof(lname)))
            continue;
        struct layer *ly = &m->layers[l];
        for (int k = 0; k < ly->n_weights; k++) {
            const struct weight *wt = &ly->weights[k];
            if (!wt->trainable) {
                for (size_t i = 0; i < wt->size; i++)
                    CHECK(m->grads[wt->offset + i] == 0.0f);
                continue;
            }
            snprintf(fname, sizeof(fname), "g.%s.%s.f32", lname, wt->name);
            float *g = ref_load(&mf, fname, wt->size);
            if (g)
                compare(fname, m->grads + wt->offset, g, wt->size, &w);
            free(g);
            n_grads++;
        }
    }
    CHECK_INT_EQ(n_grads, want.conv * 2 + want.dense * 2 + want.bn * 2);
    fprintf(stderr, "  loss %.9g vs torch %.9g (relative error %.3g)\n", loss, mf.loss, loss_err);
    worst_print("probs and gradients, largest relative errors", &w);
    memcpy(grads0, m->grads, m->n_params * sizeof(float));

    /* 2) the same step updating the moving statistics as Keras: the gradients are
     * the same, moving_mean / moving_variance move, nothing else does */
    double loss2 = 0;
    r = model_forward_backward_f32(m, x, y, mf.n, 1, 0, true, &loss2, NULL);
    CHECK_INT_EQ(r, 0);
    CHECK(loss2 == loss);
    CHECK(memcmp(grads0, m->grads, m->n_params * sizeof(float)) == 0);
    struct worst wm = {0};
    int n_moving = 0;
    for (int l = 0; l < m->n_layers; l++) {
        if (!fixture_layer_name(m, l, lname, sizeof(lname)))
            continue;
        struct layer *ly = &m->layers[l];
        for (int k = 0; k < ly->n_weights; k++) {
            const struct weight *wt = &ly->weights[k];
            if (wt->trainable) {
                CHECK(memcmp(params0 + wt->offset, m->params + wt->offset,
                             wt->size * sizeof(float)) == 0);
                continue;
            }
            snprintf(fname, sizeof(fname), "m.%s.%s.f32", lname, wt->name);
            float *mv = ref_load(&mf, fname, wt->size);
            float *st = malloc(2 * wt->size * sizeof(float));
            if (mv && st) {
                /* compare the batch statistic each side put into the average,
                 * (moving - 0.99 * moving_before) / 0.01: the moving values alone
                 * would hide a missing n / (n - 1) factor (n = 216..864 here) */
                float mom = ly->cfg.momentum;
                CHECK_CLOSE(mom, 0.99, 1e-7, 0);
                for (size_t i = 0; i < wt->size; i++) {
                    double before = params0[wt->offset + i];
                    st[i] = (float)((m->params[wt->offset + i] - mom * before) / (1.0 - mom));
                    st[wt->size + i] = (float)((mv[i] - mom * before) / (1.0 - mom));
                }
                compare(fname, st, st + wt->size, wt->size, &wm);
            }
            free(st);
            free(mv);
            n_moving++;
        }
    }
    CHECK_INT_EQ(n_moving, 2 * want.bn);
    worst_print("batch statistics fed to the moving averages, largest relative errors", &wm);
out:
    free(x);
    free(y);
    free(probs_ref);
    free(probs);
    free(params0);
    free(grads0);
}

static void test_reference(void)
{
    struct manifest mf;
    int r = manifest_read(&mf, REF_DIR);
    CHECK_MSG(r == 0, "read %s/manifest.txt: %d", REF_DIR, r);
    if (r)
        return;
    const int shape[3] = {mf.h, mf.w, mf.c};
    struct model_spec spec = {0};
    struct diag d = {0};
    r = model_spec_builtin(&spec, "minivggnet", shape, mf.classes, &d);
    CHECK_MSG(r == 0, "spec: %d %s", r, d.message);
    if (r)
        return;
    int dropouts = 0;
    for (int i = 0; i < spec.n_layers; i++)
        if (spec.layers[i].kind == LAYER_KIND_DROPOUT) {
            spec.layers[i].rate = 0.0f; /* the reference has no dropout */
            dropouts++;
        }
    CHECK_INT_EQ(dropouts, 3);
    struct model *m = NULL;
    r = model_create(&m, &spec, mf.n, 2, &d);
    model_spec_free(&spec);
    CHECK_MSG(r == 0, "model_create: %d %s %s", r, d.field, d.message);
    if (r)
        return;
    run_reference(m, &mf, (struct ref_counts){.conv = 4, .dense = 2, .bn = 5});
    model_free(m);
}

static void test_reference_residual(void)
{
    struct manifest mf;
    int r = manifest_read(&mf, REF_RESIDUAL_DIR);
    CHECK_MSG(r == 0, "read %s/manifest.txt: %d", REF_RESIDUAL_DIR, r);
    if (r)
        return;
    FILE *f = fopen(REF_RESIDUAL_DIR "/model.json", "re");
    CHECK(f != NULL);
    if (!f)
        return;
    char json[16384];
    size_t len = fread(json, 1, sizeof(json), f);
    fclose(f);
    CHECK(len > 0 && len < sizeof(json));
    struct model_spec spec = {0};
    struct diag d = {0};
    r = model_spec_parse_json(&spec, json, len, NULL, &d);
    CHECK_MSG(r == 0, "model.json: %s %s", d.field, d.message);
    if (r)
        return;
    CHECK(spec.functional);
    CHECK(spec.input_shape[0] == mf.h && spec.input_shape[1] == mf.w && spec.input_shape[2] == mf.c);
    for (int threads = 1; threads <= 3; threads += 2) {
        struct model *m = NULL;
        r = model_create(&m, &spec, mf.n, threads, &d);
        CHECK_MSG(r == 0, "model_create: %d %s %s", r, d.field, d.message);
        if (r)
            break;
        fprintf(stderr, "  residual model, %d thread(s):\n", threads);
        run_reference(m, &mf, (struct ref_counts){.conv = 4, .dense = 1, .bn = 2});
        model_free(m);
    }
    model_spec_free(&spec);
}

int main(void)
{
    TEST_RUN(test_reference);
    TEST_RUN(test_reference_residual);
    return TEST_EXIT();
}
