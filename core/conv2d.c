/* conv2d.c - Conv2D forward and backward (see layers.h).
 *
 * im2col + GEMM (gemm.h: own kernel for N % 16 == 0, else cblas_sgemm), processed in chunks
 * of output rows so the column buffer stays cache-sized:
 *   col (rows, KH*KW*C) with column order (i, j, c) = the HWIO kernel's row
 *   order, so forward is out (rows, K) = col * W (KH*KW*C, K) and the bias +
 *   activation epilogue runs on the chunk while it is in cache.
 * Backward per chunk: dW += col^T dout, dbias += sum dout.  dinp either as a
 * stride-1 convolution of dout with the flipped, transposed kernel (no col2im
 * scatter, same GEMM shape as forward) or, for strided convs, dcol = dout W^T
 * followed by col2im.
 * A first layer with C = 1 (K = 9 for 3x3) is a tiny GEMM; when the implicit
 * path does not apply it runs a direct kernel instead (conv_direct_c1).
 * 3x3 stride-1 convolutions with enough channels (conv2d_winograd_pays) run
 * as Winograd F(2x2, 3x3) instead (conv2d_winograd.c), forward and, being a
 * 3x3 stride-1 convolution too, the flipped-kernel dinp.
 * Dilated and grouped convolutions run in conv2d_general.c.
 * conv2d_ref.c is the plain-loop definition every path is tested against. */
#include <cblas.h>
#include <string.h>

#include "conv2d_general.h"
#include "conv2d_winograd.h"
#include "gemm.h"
#include "layers.h"

/* Target size of the column buffer (floats): ~256 KiB, well inside L2. */
#define CONV_COL_BUDGET (64 * 1024)
/* Floats of slack after the padded image and at the end of the scratch, so
 * that a kernel reading one 16-float vector past a row stays inside. */
#define CONV_SCRATCH_SLACK 16

static int imax(int a, int b)
{
    return a > b ? a : b;
}

void conv2d_geom_init_pads(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                           int sh, int sw, int pad_top, int pad_bottom, int pad_left,
                           int pad_right)
{
    g->h = h, g->w = w, g->c = c, g->k = k;
    g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw;
    g->pad_top = pad_top, g->pad_left = pad_left;
    g->dh = g->dw = g->groups = 1;
    g->oh = (h + pad_top + pad_bottom - kh) / sh + 1;
    g->ow = (w + pad_left + pad_right - kw) / sw + 1;
}

void conv2d_geom_init(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                      int sh, int sw, enum padding_kind padding)
{
    int pt = 0, pb = 0, pl = 0, pr = 0;
    if (padding == PADDING_KIND_SAME) {
        int oh = (h + sh - 1) / sh, ow = (w + sw - 1) / sw;
        int th = imax((oh - 1) * sh + kh - h, 0), tw = imax((ow - 1) * sw + kw - w, 0);
        pt = th / 2, pb = th - pt;
        pl = tw / 2, pr = tw - pl;
    }
    conv2d_geom_init_pads(g, h, w, c, k, kh, kw, sh, sw, pt, pb, pl, pr);
}

long conv2d_geom_tap(const struct conv2d_geom *g, int oy, int ox, int i, int j)
{
    int iy = oy * g->sh - g->pad_top + i * g->dh, ix = ox * g->sw - g->pad_left + j * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return ((long)iy * g->w + ix) * g->c;
}

/* Geometry of the transposed stride-1 conv: input dout (OH, OW, K), output
 * (H, W, C), pads k-1-p on each side (the other side's pad moves over). */
static void conv_transposed_geom(struct conv2d_geom *t, const struct conv2d_geom *g)
{
    int pb = (g->oh - 1) + g->kh - g->h - g->pad_top;  /* stride 1 */
    int pr = (g->ow - 1) + g->kw - g->w - g->pad_left;
    conv2d_geom_init_pads(t, g->oh, g->ow, g->k, g->c, g->kh, g->kw, 1, 1, g->kh - 1 - g->pad_top,
                          g->kh - 1 - pb, g->kw - 1 - g->pad_left, g->kw - 1 - pr);
    /* output rows = OH + (kh-1-pt) + (kh-1-pb) - kh + 1 = H by construction */
    t->oh = g->h, t->ow = g->w;
    (void)pr;
}

static int chunk_rows(const struct conv2d_geom *g)
{
    int kk = g->kh * g->kw * g->c;
    return imax(16, CONV_COL_BUDGET / kk);
}

static bool conv_is_pointwise(const struct conv2d_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 &&
           g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
}

#define CONV_MAX_TAPS 64

/* Stride-1 convolutions whose output channels are a multiple of 16 run as
 * implicit GEMMs (gemm_nn_seg / gemm_tn_acc) over a zero-padded copy of one
 * image at a time: output (oy, ox) reads tap (i, j) at padded position
 * (oy + i, ox + j), i.e. at rowoff[oy * OW + ox] + off[tap] with
 * rowoff = (oy * Wp + ox) * C and off = (i * Wp + j) * C.  No im2col, no
 * packing; the output rows are written in place. */
static bool conv_implicit_shape(const struct conv2d_geom *g)
{
    return g->sh == 1 && g->sw == 1 && g->k % 16 == 0 && g->kh * g->kw <= CONV_MAX_TAPS;
}

/* The implicit path runs when the active kernel path has the conv kernels
 * (kernels.h); the generic path uses im2col + cblas for every convolution. */
static bool conv_implicit(const struct conv2d_geom *g)
{
    return conv_implicit_shape(g) && gemm_has_conv_kernels();
}

static void padded_dims(const struct conv2d_geom *g, int *hp, int *wp)
{
    *hp = g->oh - 1 + g->kh; /* stride 1: H + pad_top + pad_bottom */
    *wp = g->ow - 1 + g->kw;
}

/* Floats of the padded image and of the (OH, Wp, K) output rows. */
static size_t implicit_pad_floats(const struct conv2d_geom *g)
{
    int hp, wp;
    padded_dims(g, &hp, &wp);
    return ((size_t)hp * wp + g->kw) * g->c;
}

/* pad + the row offsets (one int per output position) */
static size_t implicit_floats(const struct conv2d_geom *g)
{
    return implicit_pad_floats(g) + CONV_SCRATCH_SLACK + (size_t)g->oh * g->ow;
}

size_t conv2d_scratch_floats(const struct conv2d_geom *g)
{
    if (conv2d_geom_general(g))
        return conv2d_general_scratch_floats(g) + CONV_SCRATCH_SLACK;
    size_t kk = (size_t)g->kh * g->kw * g->c;
    size_t a = (size_t)chunk_rows(g) * kk;
    size_t b = 0;
    /* sized for every kernel path, so that a model's scratch fits whichever
     * path is active (tests switch between them) */
    if (conv_implicit_shape(g) && implicit_floats(g) > a)
        a = implicit_floats(g);
    if (g->sh == 1 && g->sw == 1) {
        struct conv2d_geom t;
        conv_transposed_geom(&t, g);
        b = (size_t)chunk_rows(&t) * t.kh * t.kw * t.c;
        if (conv_implicit_shape(&t) && implicit_floats(&t) > b)
            b = implicit_floats(&t);
        if (conv2d_winograd_fits(&t) && conv2d_winograd_scratch_floats(&t) > b)
            b = conv2d_winograd_scratch_floats(&t);
    }
    if (conv2d_winograd_fits(g) && conv2d_winograd_scratch_floats(g) > a)
        a = conv2d_winograd_scratch_floats(g);
    return (a > b ? a : b) + CONV_SCRATCH_SLACK;
}

/* col (m1 - m0, KH*KW*C) for output rows m0..m1 (flattened over n, oy, ox). */
static void im2col(float *col, const float *inp, long m0, long m1, const struct conv2d_geom *g)
{
    const int C = g->c, KW = g->kw, W = g->w, H = g->h;
    const long ohw = (long)g->oh * g->ow;
    const size_t kk = (size_t)g->kh * KW * C;
    for (long m = m0; m < m1; m++) {
        long img = m / ohw;
        int r = (int)(m - img * ohw);
        int oy = r / g->ow, ox = r - oy * g->ow;
        const float *base = inp + (size_t)img * H * W * C;
        float *dst = col + (size_t)(m - m0) * kk;
        int ix0 = ox * g->sw - g->pad_left;
        int j0 = ix0 < 0 ? -ix0 : 0;
        int j1 = W - ix0 < KW ? W - ix0 : KW; /* j < j1 keeps ix < W */
        for (int i = 0; i < g->kh; i++) {
            int iy = oy * g->sh - g->pad_top + i;
            float *d = dst + (size_t)i * KW * C;
            if (iy < 0 || iy >= H || j1 <= j0) {
                memset(d, 0, sizeof(float) * KW * C);
                continue;
            }
            if (j0 > 0)
                memset(d, 0, sizeof(float) * j0 * C);
            memcpy(d + (size_t)j0 * C, base + ((size_t)iy * W + ix0 + j0) * C,
                   sizeof(float) * (size_t)(j1 - j0) * C);
            if (j1 < KW)
                memset(d + (size_t)j1 * C, 0, sizeof(float) * (KW - j1) * C);
        }
    }
}

/* dinp += scatter of dcol rows m0..m1 (inverse of im2col). */
static void col2im_add(float *dinp, const float *dcol, long m0, long m1,
                       const struct conv2d_geom *g)
{
    const int C = g->c, KW = g->kw, W = g->w, H = g->h;
    const long ohw = (long)g->oh * g->ow;
    const size_t kk = (size_t)g->kh * KW * C;
    for (long m = m0; m < m1; m++) {
        long img = m / ohw;
        int r = (int)(m - img * ohw);
        int oy = r / g->ow, ox = r - oy * g->ow;
        float *base = dinp + (size_t)img * H * W * C;
        const float *src = dcol + (size_t)(m - m0) * kk;
        int ix0 = ox * g->sw - g->pad_left;
        int j0 = ix0 < 0 ? -ix0 : 0;
        int j1 = W - ix0 < KW ? W - ix0 : KW;
        for (int i = 0; i < g->kh; i++) {
            int iy = oy * g->sh - g->pad_top + i;
            if (iy < 0 || iy >= H || j1 <= j0)
                continue;
            const float *s = src + ((size_t)i * KW + j0) * C;
            float *d = base + ((size_t)iy * W + ix0 + j0) * C;
            size_t len = (size_t)(j1 - j0) * C;
            for (size_t e = 0; e < len; e++)
                d[e] += s[e];
        }
    }
}

/* Direct convolution for C == 1: out[m][k] = sum_ij inp[iy][ix] * W[i][j][k].
 * The whole (KH*KW, K) kernel stays in registers/L1; no column buffer. */
static void conv_direct_c1(float *out, const float *inp, const float *weight, long m0, long m1,
                           const struct conv2d_geom *g)
{
    const int K = g->k, KW = g->kw, W = g->w, H = g->h;
    const long ohw = (long)g->oh * g->ow;
    for (long m = m0; m < m1; m++) {
        long img = m / ohw;
        int r = (int)(m - img * ohw);
        int oy = r / g->ow, ox = r - oy * g->ow;
        const float *base = inp + (size_t)img * H * W;
        float *o = out + (size_t)m * K;
        for (int k = 0; k < K; k++)
            o[k] = 0.0f;
        for (int i = 0; i < g->kh; i++) {
            int iy = oy * g->sh - g->pad_top + i;
            if (iy < 0 || iy >= H)
                continue;
            for (int j = 0; j < KW; j++) {
                int ix = ox * g->sw - g->pad_left + j;
                if (ix < 0 || ix >= W)
                    continue;
                float v = base[(size_t)iy * W + ix];
                const float *wr = weight + ((size_t)i * KW + j) * K;
                for (int k = 0; k < K; k++)
                    o[k] += v * wr[k];
            }
        }
    }
}

/* out rows m0..m1 = conv (no bias, no activation); col is scratch. */
static void conv_rows(float *out, float *col, const float *inp, const float *weight, long m0,
                      long m1, const struct conv2d_geom *g)
{
    const int kk = g->kh * g->kw * g->c;
    if (g->c == 1) {
        conv_direct_c1(out, inp, weight, m0, m1, g);
        return;
    }
    if (conv_is_pointwise(g)) {
        gemm_nn(out + (size_t)m0 * g->k, inp + (size_t)m0 * kk, weight, (int)(m1 - m0), g->k, kk,
                kk, g->k, g->k);
        return;
    }
    im2col(col, inp, m0, m1, g);
    gemm_nn(out + (size_t)m0 * g->k, col, weight, (int)(m1 - m0), g->k, kk, kk, g->k, g->k);
}

/* pad (Hp, Wp, C) + slack = image (H, W, C) placed at (pad_top, pad_left), zeros elsewhere. */
static void pad_image(float *pad, const float *img, const struct conv2d_geom *g)
{
    int hp, wp;
    padded_dims(g, &hp, &wp);
    memset(pad, 0, sizeof(float) * implicit_pad_floats(g));
    for (int y = 0; y < g->h; y++)
        memcpy(pad + ((size_t)(y + g->pad_top) * wp + g->pad_left) * g->c,
               img + (size_t)y * g->w * g->c, sizeof(float) * (size_t)g->w * g->c);
}

static void tap_offsets(long *off, const struct conv2d_geom *g, int wp)
{
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++)
            off[i * g->kw + j] = ((long)i * wp + j) * g->c;
}

/* rowoff[oy * OW + ox] = where output (oy, ox)'s window starts in the padded image */
static void row_offsets(int *rowoff, const struct conv2d_geom *g, int wp)
{
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            rowoff[oy * g->ow + ox] = (oy * wp + ox) * g->c;
}

/* x (rows, K) = x * scale + shift per channel; batchnorm_forward's arithmetic */
static void post_affine(float *x, const float *scale, const float *shift, size_t rows, int K)
{
    if (!scale)
        return;
    for (size_t r = 0; r < rows; r++) {
        float *y = x + r * (size_t)K;
        for (int k = 0; k < K; k++)
            y[k] = y[k] * scale[k] + shift[k];
    }
}

static void conv_forward_implicit(float *out, float *scratch, const float *inp,
                                  const float *weight, const float *bias,
                                  enum activation_kind act, const float *scale,
                                  const float *shift, int n, const struct conv2d_geom *g)
{
    int hp, wp;
    padded_dims(g, &hp, &wp);
    long off[CONV_MAX_TAPS];
    tap_offsets(off, g, wp);
    float *pad = scratch;
    int *rowoff = (int *)(scratch + implicit_pad_floats(g) + CONV_SCRATCH_SLACK);
    row_offsets(rowoff, g, wp);
    const size_t in_img = (size_t)g->h * g->w * g->c, out_img = (size_t)g->oh * g->ow * g->k;
    for (int b = 0; b < n; b++) {
        float *o = out + b * out_img;
        pad_image(pad, inp + b * in_img, g);
        gemm_nn_seg(o, pad, rowoff, off, g->kh * g->kw, weight, g->oh * g->ow, g->k, g->c, g->k,
                    g->k);
        activation_bias_forward(o, bias, (size_t)g->oh * g->ow, g->k, act);
        post_affine(o, scale, shift, (size_t)g->oh * g->ow, g->k);
    }
}

/* dweight += sum over taps of pad_tap^T dout, dbias += sum dout (stride 1). */
static void conv_dweight_implicit(float *dweight, float *dbias, float *scratch,
                                  const float *dout, const float *inp, int n,
                                  const struct conv2d_geom *g)
{
    int hp, wp;
    padded_dims(g, &hp, &wp);
    long off[CONV_MAX_TAPS];
    tap_offsets(off, g, wp);
    const int K = g->k, C = g->c, M = g->oh * g->ow;
    float *pad = scratch;
    int *rowoff = (int *)(scratch + implicit_pad_floats(g) + CONV_SCRATCH_SLACK);
    row_offsets(rowoff, g, wp);
    const size_t in_img = (size_t)g->h * g->w * C, out_img = (size_t)M * K;
    for (int b = 0; b < n; b++) {
        const float *d = dout + b * out_img;
        pad_image(pad, inp + b * in_img, g);
        if (dbias)
            for (size_t r = 0; r < (size_t)M; r++)
                for (int k = 0; k < K; k++)
                    dbias[k] += d[r * K + k];
        for (int t = 0; t < g->kh * g->kw; t++)
            gemm_tn_acc(dweight + (size_t)t * C * K, pad + off[t], rowoff, d, C, K, M, K, K);
    }
}

size_t conv2d_weight_transform_floats(const struct conv2d_geom *g)
{
    return conv2d_winograd_fits(g) ? conv2d_winograd_u_floats(g) : 0;
}

void conv2d_weight_transform(float *wt, const float *weight, const struct conv2d_geom *g)
{
    if (conv2d_winograd_fits(g))
        conv2d_winograd_filter(wt, weight, g);
}

void conv2d_forward_post(float *out, float *scratch, const float *inp, const float *weight,
                         const float *wt, const float *bias, enum activation_kind act,
                         const float *scale, const float *shift, bool pool, int n,
                         const struct conv2d_geom *g)
{
    if (conv2d_geom_general(g)) {
        conv2d_general_forward(out, scratch, inp, weight, bias, act, n, g);
        return;
    }
    if (conv2d_winograd_pays(g)) {
        /* the inverse transform fuses bias + linear/ReLU, and then the affine */
        bool fused = act == ACTIVATION_KIND_LINEAR || act == ACTIVATION_KIND_RELU;
        conv2d_winograd_forward_post(out, scratch, inp, weight, wt, bias, act,
                                     fused ? scale : NULL, shift, pool && fused, n, g);
        if (!fused)
            post_affine(out, scale, shift, (size_t)n * g->oh * g->ow, g->k);
        return;
    }
    if (conv_implicit(g)) {
        conv_forward_implicit(out, scratch, inp, weight, bias, act, scale, shift, n, g);
        return;
    }
    const long M = (long)n * g->oh * g->ow;
    const long step = chunk_rows(g);
    for (long m0 = 0; m0 < M; m0 += step) {
        long m1 = m0 + step < M ? m0 + step : M;
        conv_rows(out, scratch, inp, weight, m0, m1, g);
        activation_bias_forward(out + (size_t)m0 * g->k, bias, (size_t)(m1 - m0), g->k, act);
        post_affine(out + (size_t)m0 * g->k, scale, shift, (size_t)(m1 - m0), g->k);
    }
}

void conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                    const float *bias, enum activation_kind act, int n,
                    const struct conv2d_geom *g)
{
    conv2d_forward_post(out, scratch, inp, weight, NULL, bias, act, NULL, NULL, false, n, g);
}

bool conv2d_pool_fusable(const struct conv2d_geom *g, enum activation_kind act)
{
    return conv2d_winograd_pays(g) && g->oh % 2 == 0 && g->ow % 2 == 0 &&
           (act == ACTIVATION_KIND_LINEAR || act == ACTIVATION_KIND_RELU);
}

void conv2d_flip_weight(float *wflip, const float *weight, const struct conv2d_geom *g)
{
    const int KH = g->kh, KW = g->kw, C = g->c, K = g->k;
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++) {
            const float *src = weight + ((size_t)i * KW + j) * C * K;
            float *dst = wflip + ((size_t)(KH - 1 - i) * KW + (KW - 1 - j)) * K * C;
            for (int c = 0; c < C; c++)
                for (int k = 0; k < K; k++)
                    dst[(size_t)k * C + c] = src[(size_t)c * K + k];
        }
}

/* conv2d_backward's weight gradient runs as an implicit GEMM (else im2col) */
static bool conv_implicit_dweight(const struct conv2d_geom *g, bool dinp, bool flip)
{
    return conv_implicit(g) && !conv_is_pointwise(g) && g->c >= 4 && (flip || !dinp);
}

const char *conv2d_forward_algorithm(const struct conv2d_geom *g)
{
    if (conv2d_geom_general(g))
        return "grouped_im2col_gemm";
    if (conv2d_winograd_pays(g))
        return "winograd_f2x2_3x3";
    if (conv_implicit(g))
        return "implicit_gemm";
    if (g->c == 1)
        return "direct_c1";
    return conv_is_pointwise(g) ? "pointwise_gemm" : "im2col_gemm";
}

const char *conv2d_dinput_algorithm(const struct conv2d_geom *g, bool wflip)
{
    if (conv2d_geom_general(g))
        return "grouped_col2im_gemm";
    if (conv_is_pointwise(g))
        return "pointwise_gemm";
    if (!wflip || g->sh != 1 || g->sw != 1)
        return "col2im_gemm";
    struct conv2d_geom t;
    conv_transposed_geom(&t, g);
    return conv2d_forward_algorithm(&t);
}

const char *conv2d_dweight_algorithm(const struct conv2d_geom *g, bool dinp, bool wflip)
{
    if (conv2d_geom_general(g))
        return "grouped_im2col_gemm";
    if (conv_implicit_dweight(g, dinp, dinp && wflip && g->sh == 1 && g->sw == 1))
        return "implicit_gemm";
    return conv_is_pointwise(g) ? "pointwise_gemm" : "im2col_gemm";
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                     const float *dout, const float *inp, const float *weight,
                     const float *wflip, int n, const struct conv2d_geom *g)
{
    if (conv2d_geom_general(g)) {
        conv2d_general_backward(dinp, dweight, dbias, scratch, dout, inp, weight, n, g);
        return;
    }
    const int K = g->k, kk = g->kh * g->kw * g->c;
    const long M = (long)n * g->oh * g->ow;
    const long step = chunk_rows(g);
    const bool flip = dinp && wflip && g->sh == 1 && g->sw == 1;
    const bool pointwise = conv_is_pointwise(g);
    if (dinp && !flip && !pointwise)
        memset(dinp, 0, sizeof(float) * (size_t)n * g->h * g->w * g->c);

    /* dinp of stride-1 convs comes from the flipped-kernel convolution below,
     * so the chunk loop is only needed for the other cases */
    const bool implicit_dw = conv_implicit_dweight(g, dinp != NULL, flip);
    if (implicit_dw)
        conv_dweight_implicit(dweight, dbias, scratch, dout, inp, n, g);
    for (long m0 = 0; !implicit_dw && m0 < M; m0 += step) {
        long m1 = m0 + step < M ? m0 + step : M;
        int rows = (int)(m1 - m0);
        const float *dchunk = dout + (size_t)m0 * K;
        if (dbias)
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < K; k++)
                    dbias[k] += dchunk[(size_t)r * K + k];
        const float *colp = inp + (size_t)m0 * kk;
        if (!pointwise) {
            im2col(scratch, inp, m0, m1, g);
            colp = scratch;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, K, rows, 1.0f, colp, kk,
                    dchunk, K, 1.0f, dweight, K);
        if (dinp && pointwise) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kk, K, 1.0f, dchunk, K,
                        weight, K, 0.0f, dinp + (size_t)m0 * kk, kk);
        } else if (dinp && !flip) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kk, K, 1.0f, dchunk, K,
                        weight, K, 0.0f, scratch, kk);
            col2im_add(dinp, scratch, m0, m1, g);
        }
    }
    if (flip && !pointwise) {
        struct conv2d_geom t;
        conv_transposed_geom(&t, g);
        conv2d_forward(dinp, scratch, dout, wflip, NULL, ACTIVATION_KIND_LINEAR, n, &t);
    }
}
