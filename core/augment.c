/* augment.c - Keras 3's image augmentation layers (RandomFlip,
 * RandomTranslation, RandomRotation, RandomZoom, RandomContrast, RandomCrop)
 * as engine kernels: the random draws of one image, the affine sampling of
 * keras.ops.image.affine_transform with its fill modes and interpolations,
 * the centre crop + bilinear resize of RandomCrop, and the adjoint of each
 * (every transform is linear in its input, so the backward pass is exact).
 *
 * Sampling (Keras 3's map_coordinates, as its torch and jax backends write
 * it): output pixel (y, x) reads the input at x_in = a0 x + a1 y + a2,
 * y_in = b0 x + b1 y + b2.  Nearest rounds half to even; bilinear weighs the
 * taps floor(v) and floor(v) + 1 by (1 - f, f), f = v - floor(v), summed in
 * the order (y0 x0, y0 x1, y1 x0, y1 x1).  A tap outside the image is read at
 * the index its fill mode maps it to; in constant mode it reads fill_value. */
#include <math.h>
#include <string.h>

#include "layers.h"
#include "rng.h"

#define COORD_MAX 1e7f /* coordinates are clamped here before the int conversion */

/* Where fill mode f reads index i of an axis of n; *valid false when it reads
 * the constant fill value. */
static int fix_index(int i, int n, enum fill_mode f, bool *valid)
{
    *valid = true;
    switch (f) {
    case FILL_MODE_REFLECT: {
        int p = 2 * n, k = i % p;
        if (k < 0)
            k += p;
        return k >= n ? p - 1 - k : k;
    }
    case FILL_MODE_WRAP: {
        int k = i % n;
        return k < 0 ? k + n : k;
    }
    case FILL_MODE_CONSTANT:
        *valid = i >= 0 && i < n;
        /* fall through */
    case FILL_MODE_NEAREST:
        break;
    }
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static float clamp_coord(float v)
{
    return v < -COORD_MAX ? -COORD_MAX : v > COORD_MAX ? COORD_MAX : v;
}

/* The taps of coordinate v on an axis of n: up to 2 (index, weight, valid). */
struct taps {
    int n;
    int idx[2];
    float w[2];
    bool valid[2];
};

static void axis_taps(struct taps *t, float v, int n, enum interpolation_kind interp,
                      enum fill_mode f)
{
    v = clamp_coord(v);
    if (interp == INTERPOLATION_KIND_NEAREST) {
        t->n = 1;
        t->idx[0] = fix_index((int)rintf(v), n, f, &t->valid[0]);
        t->w[0] = 1.0f;
        return;
    }
    float lo = floorf(v), up = v - lo;
    t->n = 2;
    t->idx[0] = fix_index((int)lo, n, f, &t->valid[0]);
    t->idx[1] = fix_index((int)lo + 1, n, f, &t->valid[1]);
    t->w[0] = 1.0f - up;
    t->w[1] = up;
}

void affine_forward(float *out, const float *inp, int h, int w, int c, int oh, int ow,
                    const float m[6], enum interpolation_kind interp, enum fill_mode fill,
                    float fill_value)
{
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            struct taps ty, tx;
            axis_taps(&ty, m[3] * (float)x + m[4] * (float)y + m[5], h, interp, fill);
            axis_taps(&tx, m[0] * (float)x + m[1] * (float)y + m[2], w, interp, fill);
            float *o = out + ((size_t)y * ow + x) * c;
            for (int k = 0; k < c; k++)
                o[k] = 0.0f;
            for (int i = 0; i < ty.n; i++) {
                for (int j = 0; j < tx.n; j++) {
                    float wt = ty.w[i] * tx.w[j];
                    if (ty.valid[i] && tx.valid[j]) {
                        const float *s = inp + ((size_t)ty.idx[i] * w + tx.idx[j]) * c;
                        for (int k = 0; k < c; k++)
                            o[k] += wt * s[k];
                    } else {
                        for (int k = 0; k < c; k++)
                            o[k] += wt * fill_value;
                    }
                }
            }
        }
    }
}

void affine_backward(float *dinp, const float *dout, int h, int w, int c, int oh, int ow,
                     const float m[6], enum interpolation_kind interp, enum fill_mode fill)
{
    memset(dinp, 0, sizeof(float) * (size_t)h * w * c);
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            struct taps ty, tx;
            axis_taps(&ty, m[3] * (float)x + m[4] * (float)y + m[5], h, interp, fill);
            axis_taps(&tx, m[0] * (float)x + m[1] * (float)y + m[2], w, interp, fill);
            const float *g = dout + ((size_t)y * ow + x) * c;
            for (int i = 0; i < ty.n; i++) {
                for (int j = 0; j < tx.n; j++) {
                    if (!ty.valid[i] || !tx.valid[j])
                        continue; /* the fill value is a constant */
                    float wt = ty.w[i] * tx.w[j];
                    float *d = dinp + ((size_t)ty.idx[i] * w + tx.idx[j]) * c;
                    for (int k = 0; k < c; k++)
                        d[k] += wt * g[k];
                }
            }
        }
    }
}

/* TF's half-pixel bilinear resize weights of one output index: the input
 * position (o + 0.5) * in / out - 0.5, its lower and upper taps clamped to
 * [0, in - 1] and the fraction. */
static void resize_taps(int o, int in, int out, int *lo, int *hi, float *frac)
{
    float v = ((float)o + 0.5f) * ((float)in / (float)out) - 0.5f;
    float f = floorf(v);
    *lo = f < 0.0f ? 0 : (int)f;
    int u = (int)ceilf(v);
    *hi = u > in - 1 ? in - 1 : u < 0 ? 0 : u;
    if (*lo > in - 1)
        *lo = in - 1;
    *frac = v - f;
}

/* Output pixel (y, x) of the crop window win = (top, left, height, width)
 * of a (H, W) image resized to (oh, ow): its four input pixels as indices
 * into (H, W), top-left, top-right, bottom-left, bottom-right, and the
 * fractions between them. */
static void crop_resize_taps(int y, int x, int w, int oh, int ow, const int win[4],
                             size_t at[4], float *fy, float *fx)
{
    const int h0 = win[0], w0 = win[1], ch = win[2], cw = win[3];
    int y0, y1, x0, x1;
    resize_taps(y, ch, oh, &y0, &y1, fy);
    resize_taps(x, cw, ow, &x0, &x1, fx);
    at[0] = (size_t)(h0 + y0) * w + w0 + x0;
    at[1] = (size_t)(h0 + y0) * w + w0 + x1;
    at[2] = (size_t)(h0 + y1) * w + w0 + x0;
    at[3] = (size_t)(h0 + y1) * w + w0 + x1;
}

void crop_resize_forward(float *out, const float *inp, int h, int w, int c, int oh, int ow,
                         const int win[4])
{
    (void)h;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            size_t at[4];
            float fy, fx;
            crop_resize_taps(y, x, w, oh, ow, win, at, &fy, &fx);
            const float *tl = inp + at[0] * c, *tr = inp + at[1] * c;
            const float *bl = inp + at[2] * c, *br = inp + at[3] * c;
            float *o = out + ((size_t)y * ow + x) * c;
            for (int k = 0; k < c; k++) {
                float top = tl[k] + (tr[k] - tl[k]) * fx;
                float bot = bl[k] + (br[k] - bl[k]) * fx;
                o[k] = top + (bot - top) * fy;
            }
        }
}

void crop_resize_backward(float *dinp, const float *dout, int h, int w, int c, int oh, int ow,
                          const int win[4])
{
    memset(dinp, 0, sizeof(float) * (size_t)h * w * c);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            size_t at[4];
            float fy, fx;
            crop_resize_taps(y, x, w, oh, ow, win, at, &fy, &fx);
            const float wt[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx};
            const float *g = dout + ((size_t)y * ow + x) * c;
            for (int t = 0; t < 4; t++) {
                float *d = dinp + at[t] * c;
                for (int k = 0; k < c; k++)
                    d[k] += wt[t] * g[k];
            }
        }
}

void contrast_forward(float *out, const float *inp, int hw, int c, float factor, float lo,
                      float hi)
{
    for (int k = 0; k < c; k++) {
        double s = 0.0;
        for (int p = 0; p < hw; p++)
            s += inp[(size_t)p * c + k];
        float mean = (float)(s / hw);
        for (int p = 0; p < hw; p++) {
            float v = (inp[(size_t)p * c + k] - mean) * factor + mean;
            out[(size_t)p * c + k] = v < lo ? lo : v > hi ? hi : v;
        }
    }
}

void contrast_backward(float *dinp, const float *dout, const float *inp, int hw, int c,
                       float factor, float lo, float hi)
{
    for (int k = 0; k < c; k++) {
        double s = 0.0;
        for (int p = 0; p < hw; p++)
            s += inp[(size_t)p * c + k];
        float mean = (float)(s / hw);
        /* y_p = clip((x_p - mean) f + mean): dy_p/dx_q = [p unclipped] (f d_pq + (1 - f) / hw) */
        double gs = 0.0;
        for (int p = 0; p < hw; p++) {
            float v = (inp[(size_t)p * c + k] - mean) * factor + mean;
            if (v >= lo && v <= hi)
                gs += dout[(size_t)p * c + k];
        }
        float shared = (float)(gs * (1.0 - factor) / hw);
        for (int p = 0; p < hw; p++) {
            float v = (inp[(size_t)p * c + k] - mean) * factor + mean;
            float g = v >= lo && v <= hi ? dout[(size_t)p * c + k] : 0.0f;
            dinp[(size_t)p * c + k] = g * factor + shared;
        }
    }
}

/* ---------------------------------------------------------- random draws */

/* The stream of one image (example >= 0) or of the batch (-1) of layer
 * `layer` at `step`, as dropout_mask draws its masks; a layer's own seed is
 * mixed in. */
static void draw_stream(struct rng *r, const struct augment_config *a, uint64_t seed,
                        int64_t step, int layer, int example)
{
    uint64_t s = a->seed_set ? rng_hash3(seed, (uint64_t)(int64_t)a->seed, 0x61756721u) : seed;
    rng_seed(r, s, rng_hash3((uint64_t)step, (uint64_t)layer ^ 0x6175670000000000u,
                             (uint64_t)(int64_t)example));
}

/* uniform(lo, hi) as Keras draws it: lo + u (hi - lo) */
static float uniform(struct rng *r, float lo, float hi)
{
    return (float)((double)lo + rng_uniform(r) * ((double)hi - (double)lo));
}

void augment_draw(struct augment_draw *d, enum layer_kind kind, const struct augment_config *a,
                  int h, int w, uint64_t seed, int64_t step, int layer, int example)
{
    struct rng r;
    draw_stream(&r, a, seed, step, layer, example);
    float *m = d->m;
    m[0] = 1.0f, m[1] = 0.0f, m[2] = 0.0f, m[3] = 0.0f, m[4] = 1.0f, m[5] = 0.0f;
    d->identity = false;
    d->contrast = 1.0f;
    switch (kind) {
    case LAYER_KIND_RANDOM_FLIP:
        /* one draw per image; horizontal_and_vertical flips both axes with it */
        d->identity = !(rng_uniform(&r) <= 0.5);
        if (a->mode != FLIP_MODE_VERTICAL)
            m[0] = -1.0f, m[2] = (float)(w - 1);
        if (a->mode != FLIP_MODE_HORIZONTAL)
            m[4] = -1.0f, m[5] = (float)(h - 1);
        break;
    case LAYER_KIND_RANDOM_TRANSLATION: {
        float dy = uniform(&r, a->height_factor[0], a->height_factor[1]) * (float)h;
        float dx = uniform(&r, a->width_factor[0], a->width_factor[1]) * (float)w;
        m[2] = -dx;
        m[5] = -dy;
        break;
    }
    case LAYER_KIND_RANDOM_ROTATION: {
        double deg = uniform(&r, a->factor[0] * 360.0f, a->factor[1] * 360.0f);
        double th = deg * (3.14159265358979323846 / 180.0), cs = cos(th), sn = sin(th);
        double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
        m[0] = (float)cs, m[1] = (float)-sn, m[2] = (float)(cx - cx * cs + cy * sn);
        m[3] = (float)sn, m[4] = (float)cs, m[5] = (float)(cy - cx * sn - cy * cs);
        break;
    }
    case LAYER_KIND_RANDOM_ZOOM: {
        float zy = uniform(&r, 1.0f + a->height_factor[0], 1.0f + a->height_factor[1]);
        float zx = a->width_factor_set
                       ? uniform(&r, 1.0f + a->width_factor[0], 1.0f + a->width_factor[1])
                       : zy;
        m[0] = zx, m[2] = ((float)w - 1.0f) / 2.0f * (1.0f - zx);
        m[4] = zy, m[5] = ((float)h - 1.0f) / 2.0f * (1.0f - zy);
        break;
    }
    case LAYER_KIND_RANDOM_CONTRAST:
        d->contrast = uniform(&r, 1.0f - a->factor[0], 1.0f + a->factor[1]);
        break;
    default:
        d->identity = true;
        break;
    }
}

void random_crop_window(int win[4], const struct augment_config *a, int h, int w, bool training,
                        uint64_t seed, int64_t step, int layer)
{
    const int th = a->crop[0], tw = a->crop[1];
    if (training && h > th && w > tw) {
        /* Keras: one window for the whole batch */
        struct rng r;
        draw_stream(&r, a, seed, step, layer, -1);
        int hs = (int)(rng_uniform(&r) * (double)(h - th + 1));
        int ws = (int)(rng_uniform(&r) * (double)(w - tw + 1));
        win[0] = hs < h - th ? hs : h - th;
        win[1] = ws < w - tw ? ws : w - tw;
        win[2] = th;
        win[3] = tw;
        return;
    }
    /* the largest centred window with the target's aspect ratio (resized after) */
    int ch = (int)((double)w * th / tw), cw = (int)((double)h * tw / th);
    ch = ch > h ? h : ch < 1 ? 1 : ch;
    cw = cw > w ? w : cw < 1 ? 1 : cw;
    win[0] = (int)((double)(h - ch) / 2);
    win[1] = (int)((double)(w - cw) / 2);
    win[2] = ch;
    win[3] = cw;
}

/* One direction of RandomFlip .. RandomContrast over n images: forward
 * (dst = out, src = inp) or the adjoint (dst = dinp, src = dout). */
static void augment_run(float *dst, const float *src, const float *inp, int n, int h, int w,
                        int c, enum layer_kind kind, const struct augment_config *a,
                        uint64_t seed, int64_t step, int layer, int example0, bool backward)
{
    const size_t sz = (size_t)h * w * c;
    const enum interpolation_kind interp =
        kind == LAYER_KIND_RANDOM_FLIP ? INTERPOLATION_KIND_NEAREST : a->interpolation;
    const float lo = a->value_range[0], hi = a->value_range[1];
    for (int e = 0; e < n; e++) {
        const float *s = src + (size_t)e * sz;
        float *d = dst + (size_t)e * sz;
        struct augment_draw dr;
        augment_draw(&dr, kind, a, h, w, seed, step, layer, example0 + e);
        if (dr.identity)
            memmove(d, s, sizeof(float) * sz);
        else if (kind == LAYER_KIND_RANDOM_CONTRAST && backward)
            contrast_backward(d, s, inp + (size_t)e * sz, h * w, c, dr.contrast, lo, hi);
        else if (kind == LAYER_KIND_RANDOM_CONTRAST)
            contrast_forward(d, s, h * w, c, dr.contrast, lo, hi);
        else if (backward)
            affine_backward(d, s, h, w, c, h, w, dr.m, interp, a->fill_mode);
        else
            affine_forward(d, s, h, w, c, h, w, dr.m, interp, a->fill_mode, a->fill_value);
    }
}

void augment_forward(float *out, const float *inp, int n, int h, int w, int c,
                     enum layer_kind kind, const struct augment_config *a, uint64_t seed,
                     int64_t step, int layer, int example0)
{
    augment_run(out, inp, inp, n, h, w, c, kind, a, seed, step, layer, example0, false);
}

void augment_backward(float *dinp, const float *dout, const float *inp, int n, int h, int w,
                      int c, enum layer_kind kind, const struct augment_config *a, uint64_t seed,
                      int64_t step, int layer, int example0)
{
    augment_run(dinp, dout, inp, n, h, w, c, kind, a, seed, step, layer, example0, true);
}
