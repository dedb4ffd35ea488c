/* test_augment.c - the augmentation layers (augment.c): every transform
 * against reference values written from Keras 3's definitions
 * (tests/reference/gen_augment_reference.py -> tests/fixtures/augment),
 * each fill mode at the borders; the backward passes as the exact adjoints
 * (dot-product test) and by finite differences through a model where the
 * layers sit after a trainable Conv2D; draws independent of how the batch
 * is split and of the thread count; the identity at evaluation; the Keras
 * configs parsed, written back and refused with the key named. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model.h"
#include "model_spec.h"
#include "rng.h"
#include "test.h"

static struct rng g_rng;

static void fill_uniform(float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)rng_uniform(&g_rng);
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        abort();
    return p;
}

static cJSON *load_reference(void)
{
    FILE *f = fopen(TEST_SOURCE_DIR "/tests/fixtures/augment/reference.json", "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    cJSON *root = NULL;
    if (buf && got == (size_t)n) {
        buf[n] = 0;
        root = cJSON_Parse(buf);
    }
    free(buf);
    return root;
}

static int jint(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k)->valueint;
}

static float *jfloats(const cJSON *o, const char *k, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    *n = (size_t)cJSON_GetArraySize(a);
    float *p = falloc(*n);
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next)
        p[i++] = (float)e->valuedouble;
    return p;
}

static int name_index(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static cJSON *g_ref;

/* affine_forward against Keras 3's map_coordinates for translations (one
 * far beyond the border: reflect and wrap fold more than one period),
 * rotations, a zoom and the two flips, in each fill mode and interpolation;
 * the same cases as adjoints: <A x, g> = <x, A^T g>. */
static void test_affine_reference(void)
{
    static const char *const fills[] = {"reflect", "wrap", "constant", "nearest", NULL};
    static const char *const interps[] = {"bilinear", "nearest", NULL};
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(g_ref, "affine");
    CHECK(cJSON_GetArraySize(cases) == 56);
    for (const cJSON *t = cases ? cases->child : NULL; t; t = t->next) {
        int h = jint(t, "h"), w = jint(t, "w"), c = jint(t, "c");
        size_t nm, nx, ny;
        float *m = jfloats(t, "m", &nm), *x = jfloats(t, "input", &nx);
        float *want = jfloats(t, "output", &ny);
        const char *fill = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "fill_mode"));
        const char *interp =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "interpolation"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
        float fv = (float)cJSON_GetObjectItemCaseSensitive(t, "fill_value")->valuedouble;
        enum fill_mode fm = (enum fill_mode)name_index(fill, fills);
        enum interpolation_kind ik = (enum interpolation_kind)name_index(interp, interps);
        float *y = falloc(ny), *g = falloc(ny), *dx = falloc(nx);
        affine_forward(y, x, h, w, c, h, w, m, ik, fm, fv);
        int bad = 0;
        for (size_t i = 0; i < ny; i++)
            if (!(fabsf(y[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i])))
                bad++;
        CHECK_MSG(bad == 0, "%s %s %s: %d of %zu values differ", name, interp, fill, bad, ny);
        /* adjoint: the fill value is a constant, so compare on fill_value 0 */
        affine_forward(y, x, h, w, c, h, w, m, ik, fm, 0.0f);
        fill_uniform(g, ny, -1, 1);
        affine_backward(dx, g, h, w, c, h, w, m, ik, fm);
        double lhs = 0, rhs = 0, scale = 0;
        for (size_t i = 0; i < ny; i++)
            lhs += (double)y[i] * g[i], scale += fabs((double)y[i] * g[i]);
        for (size_t i = 0; i < nx; i++)
            rhs += (double)x[i] * dx[i];
        CHECK_MSG(fabs(lhs - rhs) <= 1e-5 * (scale + 1), "%s %s %s adjoint: %.9g vs %.9g", name,
                  interp, fill, lhs, rhs);
        free(m), free(x), free(want), free(y), free(g), free(dx);
    }
}

/* Border reads of each fill mode, by hand on a 1 x 4 row: (a b c d) shifted
 * right by 2 and left by 5. */
static void test_fill_modes_by_hand(void)
{
    const float row[4] = {1, 2, 3, 4};
    const float right2[4][4] = {
        {2, 1, 1, 2}, /* reflect: (.. b a | a b ..) */
        {3, 4, 1, 2}, /* wrap */
        {9, 9, 1, 2}, /* constant 9 */
        {1, 1, 1, 2}, /* nearest */
    };
    const float left5[4][4] = {
        {3, 2, 1, 1}, /* reflect: x_in = 5 6 7 8 -> d c b a | a */
        {2, 3, 4, 1}, /* wrap: 5 6 7 8 -> b c d a */
        {9, 9, 9, 9},
        {4, 4, 4, 4},
    };
    for (int f = 0; f < 4; f++) {
        float out[4];
        const float mr[6] = {1, 0, -2, 0, 1, 0}, ml[6] = {1, 0, 5, 0, 1, 0};
        for (int ip = 0; ip < 2; ip++) {
            affine_forward(out, row, 1, 4, 1, 1, 4, mr, (enum interpolation_kind)ip,
                           (enum fill_mode)f, 9.0f);
            for (int i = 0; i < 4; i++)
                CHECK_CLOSE(out[i], right2[f][i], 0, 0);
            affine_forward(out, row, 1, 4, 1, 1, 4, ml, (enum interpolation_kind)ip,
                           (enum fill_mode)f, 9.0f);
            for (int i = 0; i < 4; i++)
                CHECK_CLOSE(out[i], left5[f][i], 0, 0);
        }
    }
    /* bilinear half way past the left edge: constant mixes the fill value in */
    float out[4];
    const float mh[6] = {1, 0, -0.5f, 0, 1, 0};
    affine_forward(out, row, 1, 4, 1, 1, 4, mh, INTERPOLATION_KIND_BILINEAR, FILL_MODE_CONSTANT,
                   9.0f);
    CHECK_CLOSE(out[0], 5.0, 1e-6, 0);
    CHECK_CLOSE(out[1], 1.5, 1e-6, 0);
    affine_forward(out, row, 1, 4, 1, 1, 4, mh, INTERPOLATION_KIND_BILINEAR, FILL_MODE_REFLECT,
                   9.0f);
    CHECK_CLOSE(out[0], 1.0, 1e-6, 0);
}

/* RandomCrop's inference window and resize against the reference; its
 * backward as the adjoint. */
static void test_crop_reference(void)
{
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(g_ref, "crop");
    CHECK(cJSON_GetArraySize(cases) == 5);
    for (const cJSON *t = cases ? cases->child : NULL; t; t = t->next) {
        int h = jint(t, "h"), w = jint(t, "w"), c = jint(t, "c");
        int th = jint(t, "height"), tw = jint(t, "width");
        size_t nx, ny, nwin;
        float *x = jfloats(t, "input", &nx), *want = jfloats(t, "output", &ny);
        float *wantwin = jfloats(t, "window", &nwin);
        struct augment_config a = {.crop = {th, tw}};
        int win[4];
        random_crop_window(win, &a, h, w, false, 1, 0, 0);
        for (int k = 0; k < 4; k++)
            CHECK_INT_EQ(win[k], (int)wantwin[k]);
        float *y = falloc(ny), *g = falloc(ny), *dx = falloc(nx);
        crop_resize_forward(y, x, h, w, c, th, tw, win);
        for (size_t i = 0; i < ny; i++)
            CHECK_CLOSE(y[i], want[i], 1e-5, 1e-6);
        fill_uniform(g, ny, -1, 1);
        crop_resize_backward(dx, g, h, w, c, th, tw, win);
        double lhs = 0, rhs = 0;
        for (size_t i = 0; i < ny; i++)
            lhs += (double)y[i] * g[i];
        for (size_t i = 0; i < nx; i++)
            rhs += (double)x[i] * dx[i];
        CHECK_CLOSE(lhs, rhs, 1e-5, 1e-6);
        free(x), free(want), free(wantwin), free(y), free(g), free(dx);
    }
    /* training on a larger input: a window of the target size inside it,
     * the same for every call of a step, not always the same across steps */
    struct augment_config a = {.crop = {4, 5}};
    int w1[4], w2[4], moved = 0;
    for (int step = 0; step < 16; step++) {
        random_crop_window(w1, &a, 7, 9, true, 42, step, 3);
        random_crop_window(w2, &a, 7, 9, true, 42, step, 3);
        CHECK(memcmp(w1, w2, sizeof(w1)) == 0);
        CHECK(w1[0] >= 0 && w1[0] <= 3 && w1[1] >= 0 && w1[1] <= 4);
        CHECK(w1[2] == 4 && w1[3] == 5);
        moved += w1[0] != 0 || w1[1] != 0;
    }
    CHECK(moved > 0);
}

static void test_contrast_reference(void)
{
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(g_ref, "contrast");
    for (const cJSON *t = cases ? cases->child : NULL; t; t = t->next) {
        int h = jint(t, "h"), w = jint(t, "w"), c = jint(t, "c");
        size_t nx, ny, nr;
        float *x = jfloats(t, "input", &nx), *want = jfloats(t, "output", &ny);
        float *vr = jfloats(t, "value_range", &nr);
        float f = (float)cJSON_GetObjectItemCaseSensitive(t, "factor")->valuedouble;
        float *y = falloc(ny);
        contrast_forward(y, x, h * w, c, f, vr[0], vr[1]);
        for (size_t i = 0; i < ny; i++)
            CHECK_CLOSE(y[i], want[i], 1e-5, 1e-6);
        free(x), free(want), free(vr), free(y);
    }
}

/* contrast_backward by finite differences of <contrast(x), g> (no value near
 * the clip bounds: a kink) */
static void test_contrast_grad(void)
{
    const int hw = 12, c = 3;
    float x[36], g[36], dx[36], y[36];
    fill_uniform(x, 36, 0.3f, 0.7f);
    fill_uniform(g, 36, -1, 1);
    const float f = 1.6f, lo = -5.0f, hi = 0.8f;
    contrast_forward(y, x, hw, c, f, lo, hi);
    for (int i = 0; i < 36; i++)
        if (y[i] > 0.78f && y[i] < 0.82f)
            x[i] = 0.5f; /* move away from the kink */
    contrast_backward(dx, g, x, hw, c, f, lo, hi);
    for (int j = 0; j < 36; j++) {
        float keep = x[j];
        double s[2];
        for (int k = 0; k < 2; k++) {
            x[j] = keep + (k ? -1e-3f : 1e-3f);
            contrast_forward(y, x, hw, c, f, lo, hi);
            s[k] = 0;
            for (int i = 0; i < 36; i++)
                s[k] += (double)y[i] * g[i];
        }
        x[j] = keep;
        CHECK_CLOSE((s[0] - s[1]) / 2e-3, dx[j], 1e-2, 1e-3);
    }
}

/* Draws depend on (seed, step, layer, example) only: the batch in one call
 * equals it split in two at any point; another seed or step draws others;
 * rotation matrices are rotations about the centre. */
static void test_draws_split_independent(void)
{
    const int n = 6, h = 5, w = 7, c = 2;
    const size_t sz = (size_t)h * w * c;
    float *x = falloc(n * sz), *y1 = falloc(n * sz), *y2 = falloc(n * sz);
    fill_uniform(x, n * sz, 0, 1);
    struct augment_config a = {.mode = FLIP_MODE_HORIZONTAL_AND_VERTICAL,
                               .height_factor = {-0.3f, 0.3f}, .width_factor = {-0.2f, 0.4f},
                               .factor = {-0.25f, 0.25f}, .value_range = {0, 255},
                               .fill_mode = FILL_MODE_REFLECT,
                               .interpolation = INTERPOLATION_KIND_BILINEAR};
    const enum layer_kind kinds[] = {LAYER_KIND_RANDOM_FLIP, LAYER_KIND_RANDOM_TRANSLATION,
                                     LAYER_KIND_RANDOM_ROTATION, LAYER_KIND_RANDOM_ZOOM,
                                     LAYER_KIND_RANDOM_CONTRAST};
    /* RandomContrast draws in [1 - lower, 1 + upper] (Keras 3) */
    struct augment_config ac = a;
    ac.factor[0] = 0.2f, ac.factor[1] = 0.3f;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const struct augment_config *pa = kinds[k] == LAYER_KIND_RANDOM_CONTRAST ? &ac : &a;
        augment_forward(y1, x, n, h, w, c, kinds[k], pa, 77, 5, 2, 0);
        for (int cut = 1; cut < n; cut++) {
            augment_forward(y2, x, cut, h, w, c, kinds[k], pa, 77, 5, 2, 0);
            augment_forward(y2 + cut * sz, x + cut * sz, n - cut, h, w, c, kinds[k], pa, 77, 5,
                            2, cut);
            CHECK_MSG(memcmp(y1, y2, sizeof(float) * n * sz) == 0, "%s split at %d",
                      layer_kind_class_name(kinds[k]), cut);
        }
        augment_forward(y2, x, n, h, w, c, kinds[k], pa, 78, 5, 2, 0);
        CHECK_MSG(memcmp(y1, y2, sizeof(float) * n * sz) != 0, "%s: another seed",
                  layer_kind_class_name(kinds[k]));
        augment_forward(y2, x, n, h, w, c, kinds[k], pa, 77, 6, 2, 0);
        CHECK_MSG(memcmp(y1, y2, sizeof(float) * n * sz) != 0, "%s: another step",
                  layer_kind_class_name(kinds[k]));
    }
    /* flips: about half of many images; rotations about the centre; translations
     * and contrast factors within their ranges */
    int flipped = 0;
    for (int e = 0; e < 200; e++) {
        struct augment_draw d;
        augment_draw(&d, LAYER_KIND_RANDOM_FLIP, &a, h, w, 1, 0, 0, e);
        flipped += !d.identity;
        augment_draw(&d, LAYER_KIND_RANDOM_ROTATION, &a, h, w, 1, 0, 0, e);
        CHECK_CLOSE(d.m[0] * d.m[0] + d.m[3] * d.m[3], 1.0, 1e-6, 0);
        double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
        CHECK_CLOSE(d.m[0] * cx + d.m[1] * cy + d.m[2], cx, 1e-5, 1e-5);
        CHECK_CLOSE(d.m[3] * cx + d.m[4] * cy + d.m[5], cy, 1e-5, 1e-5);
        /* |angle| <= 0.25 turns: cos >= 0 */
        CHECK(d.m[0] >= -1e-6f);
        augment_draw(&d, LAYER_KIND_RANDOM_TRANSLATION, &a, h, w, 1, 0, 0, e);
        CHECK(-d.m[5] >= -0.3f * h - 1e-5f && -d.m[5] <= 0.3f * h + 1e-5f);
        CHECK(-d.m[2] >= -0.2f * w - 1e-5f && -d.m[2] <= 0.4f * w + 1e-5f);
        augment_draw(&d, LAYER_KIND_RANDOM_CONTRAST, &ac, h, w, 1, 0, 0, e);
        CHECK(d.contrast >= 0.8f - 1e-6f && d.contrast <= 1.3f + 1e-6f);
    }
    CHECK(flipped > 60 && flipped < 140);
    free(x), free(y1), free(y2);
}

/* ----------------------------------------------------- through a model */

#define AUG_MODEL_FMT \
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"aug\", \"layers\": [" \
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_shape\": [null, 8, 8, 2]}}," \
    "%s" \
    "{\"class_name\": \"Flatten\", \"config\": {}}," \
    "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"softmax\"}}]}}"

static int parse_model(struct model_spec *s, const char *layers, struct diag *d)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), AUG_MODEL_FMT, layers);
    return model_spec_parse_json(s, buf, strlen(buf), NULL, d);
}

#define AUG_LAYERS                                                                          \
    "{\"class_name\": \"RandomFlip\", \"config\": {\"mode\": \"horizontal\", \"seed\": 3}},"  \
    "{\"class_name\": \"RandomTranslation\", \"config\": {\"height_factor\": 0.2, "           \
    "\"width_factor\": [-0.1, 0.3], \"fill_mode\": \"constant\", \"fill_value\": 0.5}},"      \
    "{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": [-0.1, 0.1], "             \
    "\"fill_mode\": \"wrap\", \"interpolation\": \"nearest\"}},"                              \
    "{\"class_name\": \"RandomZoom\", \"config\": {\"height_factor\": [-0.2, 0.1], "          \
    "\"width_factor\": null, \"fill_mode\": \"nearest\"}},"                                   \
    "{\"class_name\": \"RandomContrast\", \"config\": {\"factor\": 0.3, "                     \
    "\"value_range\": [0, 1]}},"

/* The augmentation layers are the identity in evaluation: the model's
 * predictions equal those of the same model without them (same weights);
 * in training they change the step's result. */
static void test_identity_at_evaluation(void)
{
    struct model_spec s1, s2;
    struct diag d = {0};
    int err = parse_model(&s1, AUG_LAYERS, &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    err = parse_model(&s2, "", &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    struct model *m1 = NULL, *m2 = NULL;
    CHECK_INT_EQ(model_create(&m1, &s1, 8, 2, &d), 0);
    CHECK_INT_EQ(model_create(&m2, &s2, 8, 2, &d), 0);
    if (!m1 || !m2)
        return;
    CHECK_INT_EQ(m1->n_params, m2->n_params);
    model_init_weights(m1, 5);
    memcpy(m2->params, m1->params, sizeof(float) * m1->n_params);
    float x[8 * 128], p1[24], p2[24], y[24] = {0};
    fill_uniform(x, 8 * 128, 0, 1);
    CHECK_INT_EQ(model_predict_f32(m1, x, 8, p1), 0);
    CHECK_INT_EQ(model_predict_f32(m2, x, 8, p2), 0);
    CHECK(memcmp(p1, p2, sizeof(p1)) == 0);
    uint8_t labels[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    double l1, l2, a1, a2;
    CHECK_INT_EQ(model_evaluate(m1, x, PIXELS_FLOAT32, labels, 8, &l1, &a1), 0);
    CHECK_INT_EQ(model_evaluate(m2, x, PIXELS_FLOAT32, labels, 8, &l2, &a2), 0);
    CHECK(l1 == l2 && a1 == a2);
    for (int e = 0; e < 8; e++)
        y[e * 3 + labels[e]] = 1;
    double t1, t2;
    CHECK_INT_EQ(model_forward_backward_f32(m1, x, y, 8, 1, 0, false, &t1, NULL), 0);
    CHECK_INT_EQ(model_forward_backward_f32(m2, x, y, 8, 1, 0, false, &t2, NULL), 0);
    CHECK(t1 != t2);
    model_free(m1), model_free(m2);
    model_spec_free(&s1), model_spec_free(&s2);
}

/* One training step with 1, 2 and 3 threads: the draws do not depend on
 * the split, so the gradients agree up to the order of the per-thread sums;
 * the same thread count and seed repeat them bit for bit; another seed
 * changes them. */
static void test_threads_and_seeds(void)
{
    struct model_spec s;
    struct diag d = {0};
    int err = parse_model(&s, AUG_LAYERS, &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    float x[7 * 128], y[21] = {0};
    fill_uniform(x, 7 * 128, 0, 1);
    for (int e = 0; e < 7; e++)
        y[e * 3 + e % 3] = 1;
    float *ref = NULL, *again = NULL;
    size_t np = 0;
    for (int threads = 1; threads <= 3; threads++) {
        struct model *m = NULL;
        CHECK_INT_EQ(model_create(&m, &s, 7, threads, &d), 0);
        if (!m)
            break;
        np = m->n_params;
        model_init_weights(m, 11);
        double loss;
        model_forward_backward_f32(m, x, y, 7, 99, 4, false, &loss, NULL);
        float *g = falloc(np);
        memcpy(g, m->grads, sizeof(float) * np);
        model_forward_backward_f32(m, x, y, 7, 99, 4, false, &loss, NULL);
        CHECK(memcmp(g, m->grads, sizeof(float) * np) == 0);
        if (!ref) {
            ref = g;
            model_forward_backward_f32(m, x, y, 7, 100, 4, false, &loss, NULL);
            again = falloc(np);
            memcpy(again, m->grads, sizeof(float) * np);
        } else {
            double mx = 0, diff = 0;
            for (size_t i = 0; i < np; i++) {
                mx = fmax(mx, fabs(ref[i]));
                diff = fmax(diff, fabs(ref[i] - g[i]));
            }
            CHECK_MSG(diff <= 1e-4 * mx, "threads %d: gradients differ by %g (max %g)", threads,
                      diff, mx);
            free(g);
        }
        model_free(m);
    }
    if (ref && again) {
        double mx = 0, diff = 0;
        for (size_t i = 0; i < np; i++) {
            mx = fmax(mx, fabs(ref[i]));
            diff = fmax(diff, fabs(ref[i] - again[i]));
        }
        CHECK_MSG(diff > 1e-2 * mx, "another seed: gradients differ by only %g", diff);
    }
    free(ref), free(again);
    model_spec_free(&s);
}

/* RandomCrop in a model: the output shape is the target's; evaluation
 * crops the centre window and resizes like crop_resize_forward. */
static void test_crop_in_model(void)
{
    struct model_spec s;
    struct diag d = {0};
    int err = parse_model(&s, "{\"class_name\": \"RandomCrop\", \"config\": {\"height\": 5, "
                              "\"width\": 6, \"seed\": null}},", &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    struct model *m = NULL;
    CHECK_INT_EQ(model_create(&m, &s, 4, 2, &d), 0);
    if (!m)
        return;
    CHECK_INT_EQ(m->layers[0].out_shape[0], 5);
    CHECK_INT_EQ(m->layers[0].out_shape[1], 6);
    CHECK_INT_EQ(m->layers[2].weights[0].shape[0], 60);
    model_free(m);
    model_spec_free(&s);
}

/* Keras configs: the keys and defaults, JSON written back and parsed to the
 * same spec, bad values refused with the key named. */
static void test_configs(void)
{
    struct model_spec s, s2;
    struct diag d = {0};
    int err = parse_model(&s, AUG_LAYERS "{\"class_name\": \"RandomCrop\", \"config\": "
                              "{\"height\": 6, \"width\": 7}},", &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    const struct layer_config *L = s.layers;
    CHECK_STR_EQ(L[0].name, "random_flip");
    CHECK_INT_EQ(L[0].aug.mode, FLIP_MODE_HORIZONTAL);
    CHECK(L[0].aug.seed_set && L[0].aug.seed == 3);
    CHECK_STR_EQ(L[1].name, "random_translation");
    CHECK_CLOSE(L[1].aug.height_factor[0], -0.2, 1e-7, 0);
    CHECK_CLOSE(L[1].aug.width_factor[1], 0.3, 1e-7, 0);
    CHECK_INT_EQ(L[1].aug.fill_mode, FILL_MODE_CONSTANT);
    CHECK_INT_EQ(L[1].aug.interpolation, INTERPOLATION_KIND_BILINEAR);
    CHECK_INT_EQ(L[2].aug.fill_mode, FILL_MODE_WRAP);
    CHECK_INT_EQ(L[2].aug.interpolation, INTERPOLATION_KIND_NEAREST);
    CHECK(!L[3].aug.width_factor_set);
    CHECK_INT_EQ(L[3].aug.fill_mode, FILL_MODE_NEAREST);
    CHECK_CLOSE(L[4].aug.factor[0], 0.0, 0, 0); /* Keras 3: factor f is (0, f) */
    CHECK_CLOSE(L[4].aug.factor[1], 0.3, 1e-7, 0);
    CHECK_STR_EQ(L[5].name, "random_crop");
    char *json = model_spec_to_json(&s);
    CHECK(json != NULL);
    if (json) {
        err = model_spec_parse_json(&s2, json, strlen(json), NULL, &d);
        CHECK_MSG(err == 0, "%s %s", d.field, d.message);
        if (!err) {
            CHECK_INT_EQ(s2.n_layers, s.n_layers);
            for (int i = 0; i < s.n_layers && i < s2.n_layers; i++)
                CHECK_MSG(memcmp(&s.layers[i].aug, &s2.layers[i].aug, sizeof(s.layers[i].aug)) == 0,
                          "layer %d config differs after a round trip", i);
            model_spec_free(&s2);
        }
        free(json);
    }
    model_spec_free(&s);
    /* defaults: Keras 3's */
    err = parse_model(&s, "{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": 0.2}},"
                          "{\"class_name\": \"RandomFlip\", \"config\": {}},", &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (!err) {
        CHECK_INT_EQ(s.layers[0].aug.fill_mode, FILL_MODE_REFLECT);
        CHECK_INT_EQ(s.layers[0].aug.interpolation, INTERPOLATION_KIND_BILINEAR);
        CHECK_CLOSE(s.layers[0].aug.factor[0], -0.2, 1e-7, 0);
        CHECK_INT_EQ(s.layers[1].aug.mode, FLIP_MODE_HORIZONTAL_AND_VERTICAL);
        model_spec_free(&s);
    }
    static const struct {
        const char *layer, *field;
    } bad[] = {
        {"{\"class_name\": \"RandomFlip\", \"config\": {\"mode\": \"diagonal\"}},",
         "/config/layers/1/config/mode"},
        {"{\"class_name\": \"RandomTranslation\", \"config\": {\"height_factor\": 1.5, "
         "\"width_factor\": 0.1}},", "/config/layers/1/config/height_factor"},
        {"{\"class_name\": \"RandomTranslation\", \"config\": {\"height_factor\": 0.1}},",
         "/config/layers/1"},
        {"{\"class_name\": \"RandomZoom\", \"config\": {\"height_factor\": -1.0}},",
         "/config/layers/1/config/height_factor"},
        {"{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": 0.1, "
         "\"fill_mode\": \"mirror\"}},", "/config/layers/1/config/fill_mode"},
        {"{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": 0.1, "
         "\"interpolation\": \"bicubic\"}},", "/config/layers/1/config/interpolation"},
        {"{\"class_name\": \"RandomContrast\", \"config\": {\"factor\": 1.5}},",
         "/config/layers/1/config/factor"},
        {"{\"class_name\": \"RandomContrast\", \"config\": {\"factor\": 0.5, "
         "\"value_range\": [1, 0]}},", "/config/layers/1/config/value_range"},
        {"{\"class_name\": \"RandomCrop\", \"config\": {\"height\": 0, \"width\": 3}},",
         "/config/layers/1/config/height"},
        {"{\"class_name\": \"RandomCrop\", \"config\": {\"height\": 3, \"width\": 3, "
         "\"seed\": \"x\"}},", "/config/layers/1/config/seed"},
        {"{\"class_name\": \"RandomFlip\", \"config\": {\"factor\": 0.1}},",
         "/config/layers/1/config/factor"},
        {"{\"class_name\": \"Flatten\", \"config\": {}}, {\"class_name\": \"RandomFlip\", "
         "\"config\": {}},", "/config/layers/2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct diag e = {0};
        err = parse_model(&s, bad[i].layer, &e);
        CHECK_MSG(err == -EINVAL, "case %zu accepted", i);
        if (err == 0)
            model_spec_free(&s);
        CHECK_MSG(strcmp(e.field, bad[i].field) == 0, "case %zu: field %s (%s), want %s", i,
                  e.field, e.message, bad[i].field);
    }
}

/* tests/fixtures/models/augment_keras3.json: a Sequential config in Keras
 * 3's serialized form (module, registered_name, DTypePolicy, build_config)
 * with the six layers: parsed, the crop's output shape, 26x26x4 features. */
static void test_keras3_fixture(void)
{
    FILE *f = fopen(TEST_SOURCE_DIR "/tests/fixtures/models/augment_keras3.json", "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    struct model_spec s;
    struct diag d = {0};
    int err = model_spec_parse_json(&s, buf, n, NULL, &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    CHECK_INT_EQ(s.n_layers, 9);
    CHECK_INT_EQ(s.layers[2].aug.seed_set, 1);
    CHECK_INT_EQ(s.layers[2].aug.seed, 1337);
    CHECK_INT_EQ(s.layers[3].aug.interpolation, INTERPOLATION_KIND_NEAREST);
    CHECK_CLOSE(s.layers[4].aug.value_range[1], 1.0, 0, 0);
    struct model *m = NULL;
    CHECK_INT_EQ(model_create(&m, &s, 2, 1, &d), 0);
    if (m) {
        CHECK_INT_EQ(m->layers[5].out_shape[0], 26);
        CHECK_INT_EQ(m->layers[8].weights[0].shape[0], 26 * 26 * 4);
        model_free(m);
    }
    model_spec_free(&s);
}

/* ------------------------------------------ gradient through a model */

struct model_case {
    struct model *m;
    float *x, *y;
    int n;
};

static double model_loss(struct model_case *c)
{
    double loss = 0;
    model_forward_backward_f32(c->m, c->x, c->y, c->n, 7, 3, false, &loss, NULL);
    return loss;
}

/* Central difference of the loss along a random direction of the first
 * Conv2D kernel (layer conv) against the analytic gradient: the draws are
 * fixed by (seed, step), so the loss is a smooth function of the weights. */
static void conv_grad_check(const char *what, const struct model_spec *s, int conv, int threads)
{
    struct model_case c = {.n = 5};
    struct diag d = {0};
    CHECK_INT_EQ(model_create(&c.m, s, 5, threads, &d), 0);
    if (!c.m)
        return;
    model_init_weights(c.m, 3);
    const size_t nx = (size_t)5 * s->input_shape[0] * s->input_shape[1] * s->input_shape[2];
    c.x = falloc(nx), c.y = falloc(15);
    fill_uniform(c.x, nx, 0, 1);
    for (int e = 0; e < 5; e++)
        c.y[e * 3 + e % 3] = 1;
    model_loss(&c);
    const struct weight *w = &c.m->layers[conv].weights[0];
    float *grad = falloc(w->size), *keep = falloc(w->size), *v = falloc(w->size);
    float *p = c.m->params + w->offset;
    memcpy(grad, c.m->grads + w->offset, sizeof(float) * w->size);
    memcpy(keep, p, sizeof(float) * w->size);
    double ana = 0, norm = 0;
    for (size_t e = 0; e < w->size; e++) {
        v[e] = rng_uniform(&g_rng) < 0.5 ? -1.0f : 1.0f;
        ana += (double)v[e] * grad[e];
        norm += (double)grad[e] * grad[e];
    }
    const float eps = 1e-3f;
    for (size_t e = 0; e < w->size; e++)
        p[e] = keep[e] + eps * v[e];
    double lp = model_loss(&c);
    for (size_t e = 0; e < w->size; e++)
        p[e] = keep[e] - eps * v[e];
    double lm = model_loss(&c);
    memcpy(p, keep, sizeof(float) * w->size);
    double num = (lp - lm) / (2.0 * eps);
    CHECK_MSG(fabs(num - ana) <= 2e-2 * fabs(ana) + 1e-2 * sqrt(norm) + 1e-5,
              "%s threads %d: analytic %.6g numeric %.6g", what, threads, ana, num);
    CHECK(fabs(ana) > 0);
    free(grad), free(keep), free(v), free(c.x), free(c.y);
    model_free(c.m);
}

/* Conv2D (trainable) -> every augmentation layer -> Dense: the gradient of
 * the Conv2D kernel passes through the layers' backward passes. */
static void test_grad_after_trainable(void)
{
    static const char *const layers =
        "{\"class_name\": \"Conv2D\", \"config\": {\"filters\": 3, \"kernel_size\": 3, "
        "\"padding\": \"same\", \"activation\": \"tanh\"}},"
        "{\"class_name\": \"RandomFlip\", \"config\": {}},"
        "{\"class_name\": \"RandomTranslation\", \"config\": {\"height_factor\": 0.3, "
        "\"width_factor\": 0.3, \"fill_mode\": \"constant\", \"fill_value\": 0.2}},"
        "{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": 0.2}},"
        "{\"class_name\": \"RandomZoom\", \"config\": {\"height_factor\": 0.3, "
        "\"width_factor\": [-0.2, 0.2], \"fill_mode\": \"wrap\"}},"
        "{\"class_name\": \"RandomContrast\", \"config\": {\"factor\": 0.5, "
        "\"value_range\": [-10, 10]}},"
        "{\"class_name\": \"RandomRotation\", \"config\": {\"factor\": 0.2, "
        "\"interpolation\": \"nearest\", \"fill_mode\": \"nearest\"}},"
        "{\"class_name\": \"RandomCrop\", \"config\": {\"height\": 6, \"width\": 5}},";
    struct model_spec s;
    struct diag d = {0};
    int err = parse_model(&s, layers, &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    conv_grad_check("sequential", &s, 0, 1);
    conv_grad_check("sequential", &s, 0, 2);
    model_spec_free(&s);
}

/* A functional model (Keras 3 form) where a Conv2D output fans out to a
 * RandomRotation and a RandomTranslation that an Add joins, then a
 * RandomCrop: gradients summed over both paths; evaluation (graph
 * inference) is the identity for the two and the centre crop. */
static void test_functional(void)
{
#define KT(name) "{\"class_name\": \"__keras_tensor__\", \"config\": {\"shape\": null, " \
                 "\"dtype\": \"float32\", \"keras_history\": [\"" name "\", 0, 0]}}"
#define NODE(t) ", \"inbound_nodes\": [{\"args\": [" t "], \"kwargs\": {}}]}"
    static const char *const json =
        "{\"class_name\": \"Functional\", \"config\": {\"name\": \"f\", \"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"name\": \"in\", "
        "\"batch_shape\": [null, 8, 8, 2]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Conv2D\", \"name\": \"conv\", \"config\": {\"name\": \"conv\", "
        "\"filters\": 3, \"kernel_size\": 3, \"padding\": \"same\", \"activation\": \"tanh\"}"
        NODE(KT("in")) ","
        "{\"class_name\": \"RandomRotation\", \"name\": \"rot\", \"config\": {\"name\": "
        "\"rot\", \"factor\": [-0.2, 0.3], \"fill_mode\": \"reflect\"}" NODE(KT("conv")) ","
        "{\"class_name\": \"RandomTranslation\", \"name\": \"tr\", \"config\": {\"name\": "
        "\"tr\", \"height_factor\": 0.2, \"width_factor\": 0.2}" NODE(KT("conv")) ","
        "{\"class_name\": \"Add\", \"name\": \"add\", \"config\": {\"name\": \"add\"}"
        NODE("[" KT("rot") ", " KT("tr") "]") ","
        "{\"class_name\": \"RandomCrop\", \"name\": \"crop\", \"config\": {\"name\": "
        "\"crop\", \"height\": 6, \"width\": 7}" NODE(KT("add")) ","
        "{\"class_name\": \"Flatten\", \"name\": \"flat\", \"config\": {\"name\": \"flat\"}"
        NODE(KT("crop")) ","
        "{\"class_name\": \"Dense\", \"name\": \"out\", \"config\": {\"name\": \"out\", "
        "\"units\": 3, \"activation\": \"softmax\"}" NODE(KT("flat"))
        "], \"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"out\", 0, 0]]}}";
#undef KT
#undef NODE
    struct model_spec s;
    struct diag d = {0};
    int err = model_spec_parse_json(&s, json, strlen(json), NULL, &d);
    CHECK_MSG(err == 0, "%s %s", d.field, d.message);
    if (err)
        return;
    conv_grad_check("functional", &s, 1, 1);
    conv_grad_check("functional", &s, 1, 3);
    /* evaluation: rot and tr are the identity, so the Add doubles the conv
     * output; the crop of 8x8 to 6x7 resizes the centred 6x8 window (rows 1..6) */
    struct model *m = NULL;
    CHECK_INT_EQ(model_create(&m, &s, 4, 2, &d), 0);
    if (m) {
        model_init_weights(m, 4);
        float x[4 * 128], p1[12], p2[12];
        fill_uniform(x, 4 * 128, 0, 1);
        CHECK_INT_EQ(model_predict_f32(m, x, 4, p1), 0);
        /* the same by hand: conv, x2, crop-resize, dense, softmax */
        const struct layer *lc = &m->layers[1], *ld = &m->layers[7];
        float conv[4 * 8 * 8 * 3], cropped[4 * 6 * 7 * 3];
        struct conv2d_geom g;
        conv2d_geom_init(&g, 8, 8, 2, 3, 3, 3, 1, 1, PADDING_KIND_SAME);
        float *scratch = falloc(conv2d_scratch_floats(&g));
        conv2d_forward(conv, scratch, x, m->params + lc->weights[0].offset,
                       m->params + lc->weights[1].offset, ACTIVATION_KIND_TANH, 4, &g);
        for (int i = 0; i < 4 * 8 * 8 * 3; i++)
            conv[i] *= 2.0f;
        int win[4];
        random_crop_window(win, &m->layers[5].cfg.aug, 8, 8, false, 0, 0, 5);
        CHECK(win[0] == 1 && win[1] == 0 && win[2] == 6 && win[3] == 8);
        for (int e = 0; e < 4; e++)
            crop_resize_forward(cropped + e * 126, conv + e * 192, 8, 8, 3, 6, 7, win);
        dense_forward(p2, cropped, m->params + ld->weights[0].offset,
                      m->params + ld->weights[1].offset, ACTIVATION_KIND_LINEAR, 4, 126, 3);
        activation_forward(p2, p2, 4, 3, ACTIVATION_KIND_SOFTMAX);
        for (int i = 0; i < 12; i++)
            CHECK_CLOSE(p1[i], p2[i], 1e-5, 1e-6);
        free(scratch);
        model_free(m);
    }
    model_spec_free(&s);
}

int main(void)
{
    rng_seed(&g_rng, 2026, 0);
    g_ref = load_reference();
    CHECK_MSG(g_ref != NULL, "tests/fixtures/augment/reference.json missing or invalid");
    if (g_ref) {
        TEST_RUN(test_affine_reference);
        TEST_RUN(test_crop_reference);
        TEST_RUN(test_contrast_reference);
    }
    TEST_RUN(test_fill_modes_by_hand);
    TEST_RUN(test_contrast_grad);
    TEST_RUN(test_draws_split_independent);
    TEST_RUN(test_identity_at_evaluation);
    TEST_RUN(test_threads_and_seeds);
    TEST_RUN(test_crop_in_model);
    TEST_RUN(test_configs);
    TEST_RUN(test_keras3_fixture);
    TEST_RUN(test_grad_after_trainable);
    TEST_RUN(test_functional);
    cJSON_Delete(g_ref);
    return TEST_EXIT();
}
