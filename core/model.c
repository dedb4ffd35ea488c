/* model.c - a Sequential model's runtime: shapes, weight arenas, the
 * data-parallel training step and inference (see model.h).
 *
 * Training step (model_train_step, model_forward_backward_f32): the batch is
 * split into one contiguous slice per compute thread; every thread runs the
 * forward and backward of its slice through all layers with single-threaded
 * kernels (layers.h).  Threads meet only where the whole batch is needed:
 *   - BatchNormalization forward: per-thread partial sums, barrier, every
 *     thread combines the partials in thread order (same result everywhere);
 *   - BatchNormalization backward: the same for sum(dout), sum(dout * xhat);
 *   - the end: per-thread gradient arenas (thread 0's is m->grads) are summed
 *     in thread order, each thread owning a range of the parameters.
 * So results are bit-identical for the same thread count.
 *
 * A step is step_forward, step_loss, step_backward and step_gradient_sum
 * per thread; layer_forward (the layers that compute the same in training
 * and inference) is shared with inference.
 *
 * Memory: the weights are one arena of two blocks (trainable, then the BN
 * moving statistics) described by one weight table (model->weights);
 * activations of every layer, kept for the whole batch (layer.out), are one
 * allocation; each thread's gradient arena, scratch, BN partial sums and
 * gradient ping-pong buffers (and inference buffers) are one allocation per
 * thread.
 *
 * An Activation layer after a Conv2D/Dense without activation is fused into
 * that layer's GEMM epilogue; Flatten is an alias; a final softmax is fused
 * with the (sparse) categorical cross-entropy (loss.c).  Every other output
 * goes to the head's loss from losses.c (model_set_head: loss, metric,
 * class weights), whose gradient enters the last layer's activation
 * backward.
 *
 * Inference (model_evaluate, model_predict_f32) needs no whole-batch
 * statistics: each thread runs its share of the examples in small chunks
 * through all layers using two per-thread buffers, with no barriers. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "aligned.h"
#include "layers.h"
#include "model.h"
#include "threadpool.h"
#include "rng.h"

/* Declared by OpenBLAS' cblas.h too; repeated in case another cblas.h is used. */
void openblas_set_num_threads(int num_threads);

#define EVAL_HEAD 4            /* inference: examples per chunk through the spatial layers */
#define EVAL_TAIL 64           /* inference: examples per chunk through the flat layers (Dense:
                                  one GEMM for many examples, the weights read once) */
#define MXCSR_FTZ 0x8000           /* flush denormal results to zero */
#define MXCSR_DAZ 0x0040           /* read denormal inputs as zero */
#define MODEL_MAX_WEIGHTS ((size_t)1 << 28) /* values of all weights */
#define SEP_CHUNK 4                /* SeparableConv2D: examples per depthwise + pointwise pass */

struct rt_layer {
    enum activation_kind act;  /* Conv2D/Dense epilogue (incl. a fused Activation); Activation kind */
    bool alias;                /* output is the input buffer, nothing to run (Flatten, fused Activation) */
    bool loss_act;             /* final Activation(softmax or sigmoid), done by the head */
    bool rank4;                /* input is (N, H, W, C) in Keras terms (BN Bessel correction) */
    bool bn_relu;              /* BN whose input is a fused ReLU output: BN backward applies the mask */
    bool act_in_next;          /* Conv2D/Dense whose ReLU backward the next BN does */
    size_t in_size, out_size;  /* floats per example */
    int rows;                  /* rows of `ch` values per example (H*W, 1 for flat inputs) */
    int ch;                    /* last-axis size of the input */
    struct conv2d_geom cg;     /* Conv2D; DepthwiseConv2D and SeparableConv2D: the depthwise */
    struct conv2d_geom pw;     /* SeparableConv2D: the pointwise 1x1 conv after the depthwise */
    struct pool2d_geom pg;
    float *out;                /* (max_batch, out_size), or an alias */
    float *wflip;              /* stride-1 Conv2D: transposed kernel for dinp */
    uint8_t *mask;             /* Dropout, SpatialDropout2D (max_batch, out_size) */
    uint8_t *chan;             /* SpatialDropout2D (max_batch, C) channel mask */
    int src;                   /* first input: a layer index, -1 = the model input */
    int n_in;                  /* inputs (Add, Concatenate: 2 or more) */
    int consumers;             /* layers that take this layer's output */
    float *pre;                /* Conv2D/Dense with gelu/swish: pre-activation (max_batch,
                                  out_size), training only */
    float *gbuf;               /* functional models: d(loss)/d(output) (max_batch, out_size) */
    float *bn_stats;           /* BN (threads, 2, C): each thread's copy of batch mean, var */
    int post_bn;               /* Conv2D: the BN layer right after it (and its Activation),
                                  which inference applies in the convolution's store pass; 0 none */
    bool bn_in_prev;           /* BN that inference applies in the preceding Conv2D */
    int post_pool;             /* Conv2D: a 2x2 stride-2 'valid' MaxPooling2D right after it
                                  (and its Activation and BN), which inference may compute in
                                  the store when conv2d_pool_fusable; 0 none */
    float *eval_wt;            /* Conv2D: its weight transform for inference, or NULL */
    float *eval_post;          /* Conv2D with post_bn: (2, K) the BN's scale and shift */
};

/* A functional model runs as a graph: layers in Keras' (topological) order,
 * each reading its inputs' outputs; the backward walks the layers in reverse
 * with a gradient buffer per layer (gbuf), summing where a tensor fans out.
 * Inference runs the same forward over the activation arena, max_batch
 * examples at a time. */

struct model_runtime {
    struct pool *pool;
    struct rt_layer *L;
    bool graph;                /* functional model (see above) */
    int logits_layer;          /* layer whose output the loss reads: the logits of a softmax
                                  head, else the model's output */
    bool head_softmax;         /* the final softmax is fused with the loss (loss.c) */
    bool head_sigmoid;         /* the final sigmoid is applied by the head (step_loss): binary
                                  cross-entropy reads its logits, as TensorFlow's Keras does */
    struct model_head head;    /* class_weight points to cw */
    float *cw;                 /* (classes) class weights, or NULL */
    float *sw;                 /* (max_batch) a step's example weights cw[label] */
    uint8_t **written;         /* graph: (threads) per layer, its gbuf slice holds a gradient */
    size_t in_size, max_size;  /* floats per example: input, largest tensor */
    int max_c;                 /* largest BN channel count */
    float *x;                  /* (max_batch, in_size) */
    float *y;                  /* (max_batch, classes) */
    float *probs;              /* (max_batch, classes) */
    float *losses;             /* (max_batch) */
    float **dbuf;              /* (threads, 2) gradient ping-pong buffers (slice, max_size),
                                  per thread: slices of different layers do not line up */
    float **tgrad;             /* (threads) per-thread gradient arenas, [0] = m->grads */
    float **scratch;           /* (threads) conv column buffers */
    double **part;             /* (threads) BN partial sums: 2 parities x 2 x max_c */
    double *dcomb;             /* (2 x max_c) with a collective: the partial sums of every
                                  rank combined by thread 0, read by all threads */
    float **ebuf;              /* (threads) inference: 2 head buffers of head_floats, 2 tail
                                  buffers of tail_floats */
    size_t head_floats, tail_floats;
    int flat_from;             /* first layer of the flat tail (all later inputs are 1x1) */
    size_t scratch_floats;
    double *loss_sum;          /* (threads) */
    double *metric_sum;        /* (threads, METRICS_MAX) */
    void *act_block;           /* one allocation: x, every layer's output, probs, y, losses */
    void **thread_block;       /* (threads) one allocation each: that thread's gradient arena
                                  (not thread 0's), scratch, BN partial sums, ebuf, dbuf */
};

static void *aligned_floats(size_t n)
{
    return aligned_zalloc(n * sizeof(float));
}

/* Pieces of one block, each 64-byte aligned.  With base NULL, carve()
 * only counts (a first pass sizes the block), returning NULL. */
struct carve {
    char *base;
    size_t used;
};

static void *carve(struct carve *c, size_t bytes)
{
    void *p = c->base ? c->base + c->used : NULL;
    c->used += aligned_round(bytes);
    return p;
}

/* Sizes the block of a carve pass (first call, c->base NULL) or allocates
 * it zeroed and starts the second pass; NULL when out of memory. */
static void *carve_alloc(struct carve *c)
{
    void *p = aligned_zalloc(c->used);
    c->base = p;
    c->used = 0;
    return p;
}

static void slice(int n, int tid, int nthreads, int *b0, int *b1)
{
    *b0 = (int)((long)n * tid / nthreads);
    *b1 = (int)((long)n * (tid + 1) / nthreads);
}

/* ------------------------------------------------------------ creation */

/* Appends a weight to layer l: trainable ones at the end of the trainable
 * block (off[0]), the others at the end of the statistics block (off[1],
 * relative to its start; model_plan shifts them behind the trainable block). */
static void add_weight(struct layer *l, const char *name, int ndim, const int *shape,
                       bool trainable, size_t off[2])
{
    trainable = trainable && !l->cfg.frozen;
    struct weight *w = &l->weights[l->n_weights++];
    w->name = name;
    w->ndim = ndim;
    w->size = 1;
    for (int i = 0; i < 4; i++)
        w->shape[i] = i < ndim ? shape[i] : 0;
    for (int i = 0; i < ndim; i++)
        w->size *= (size_t)shape[i];
    w->offset = off[!trainable];
    w->trainable = trainable;
    off[!trainable] += w->size;
}

/* Conv2D, DepthwiseConv2D and Dense apply their activation in an epilogue. */
static bool layer_has_epilogue(enum layer_kind kind)
{
    return kind == LAYER_KIND_CONV2D || kind == LAYER_KIND_DEPTHWISE_CONV2D ||
           kind == LAYER_KIND_SEPARABLE_CONV2D || kind == LAYER_KIND_DENSE;
}

/* The geometry whose output a convolution's epilogue runs on. */
static const struct conv2d_geom *conv_out_geom(const struct rt_layer *r, enum layer_kind kind)
{
    return kind == LAYER_KIND_SEPARABLE_CONV2D ? &r->pw : &r->cg;
}

/* SeparableConv2D scratch: the depthwise output of SEP_CHUNK examples, its
 * gradient, then the pointwise conv's own scratch (floats). */
static size_t sep_mid_floats(const struct rt_layer *r)
{
    return ((size_t)SEP_CHUNK * r->cg.oh * r->cg.ow * r->cg.k + 15) / 16 * 16;
}

static int layer_error(struct diag *d, int i, const char *key, const char *msg)
{
    char field[96];
    snprintf(field, sizeof(field), "/config/layers/%d%s%s", i + 1, key[0] ? "/config/" : "",
             key);
    return diag_set(d, -EINVAL, field, "%s", msg);
}

/* Weights and the runtime plan of every layer, on the shapes that
 * model_spec_infer_shapes() validated (shape[i] is layer i's output; flat[i]:
 * whether it is a 1-D Keras tensor).  A frozen layer's weights (Keras
 * trainable=False) are all non-trainable. */
static int model_plan(struct model *m, const int (*shape)[3], const bool *flat,
                      struct diag *d)
{
    struct model_runtime *rt = m->rt;
    size_t off[2] = {0, 0}; /* ends of the trainable and the statistics block */
    rt->graph = m->spec.functional;
    rt->max_size = rt->in_size = (size_t)m->input_shape[0] * m->input_shape[1] * m->input_shape[2];
    for (int i = 0; i < m->n_layers; i++) {
        struct layer *l = &m->layers[i];
        struct rt_layer *r = &rt->L[i];
        const struct layer_config *c = &l->cfg;
        r->n_in = model_spec_n_inputs(&m->spec, i);
        r->src = r->n_in > 0 ? model_spec_input(&m->spec, i, 0) : -1;
        for (int k = 0; k < r->n_in; k++)
            if (model_spec_input(&m->spec, i, k) >= 0)
                rt->L[model_spec_input(&m->spec, i, k)].consumers++;
        const int *in = r->src >= 0 ? shape[r->src] : m->input_shape;
        memcpy(l->in_shape, in, sizeof(l->in_shape));
        memcpy(l->out_shape, shape[i], sizeof(l->out_shape));
        r->rank4 = r->src >= 0 ? !flat[r->src] : true;
        r->in_size = (size_t)in[0] * in[1] * in[2];
        r->out_size = (size_t)shape[i][0] * shape[i][1] * shape[i][2];
        r->rows = in[0] * in[1];
        r->ch = in[2];
        r->act = c->activation;
        switch (c->kind) {
        case LAYER_KIND_CONV2D: {
            conv2d_geom_init_dilated(&r->cg, in[0], in[1], in[2], c->filters, c->kernel_size[0],
                                     c->kernel_size[1], c->strides[0], c->strides[1],
                                     layer_dilation(c, 0), layer_dilation(c, 1), layer_groups(c),
                                     c->padding);
            int ks[4] = {c->kernel_size[0], c->kernel_size[1], in[2] / layer_groups(c),
                         c->filters};
            add_weight(l, "kernel", 4, ks, true, off);
            if (c->use_bias)
                add_weight(l, "bias", 1, &c->filters, true, off);
            break;
        }
        case LAYER_KIND_DEPTHWISE_CONV2D: {
            int k = in[2] * c->depth_multiplier;
            conv2d_geom_init_dilated(&r->cg, in[0], in[1], in[2], k, c->kernel_size[0],
                                     c->kernel_size[1], c->strides[0], c->strides[1],
                                     layer_dilation(c, 0), layer_dilation(c, 1), 1, c->padding);
            int ks[4] = {c->kernel_size[0], c->kernel_size[1], in[2], c->depth_multiplier};
            add_weight(l, "depthwise_kernel", 4, ks, true, off);
            if (c->use_bias)
                add_weight(l, "bias", 1, &k, true, off);
            break;
        }
        case LAYER_KIND_SEPARABLE_CONV2D: {
            int k = in[2] * c->depth_multiplier;
            conv2d_geom_init_dilated(&r->cg, in[0], in[1], in[2], k, c->kernel_size[0],
                                     c->kernel_size[1], c->strides[0], c->strides[1],
                                     layer_dilation(c, 0), layer_dilation(c, 1), 1, c->padding);
            conv2d_geom_init(&r->pw, r->cg.oh, r->cg.ow, k, c->filters, 1, 1, 1, 1,
                             PADDING_KIND_VALID);
            int ks[4] = {c->kernel_size[0], c->kernel_size[1], in[2], c->depth_multiplier};
            int ps[4] = {1, 1, k, c->filters};
            add_weight(l, "depthwise_kernel", 4, ks, true, off);
            add_weight(l, "pointwise_kernel", 4, ps, true, off);
            if (c->use_bias)
                add_weight(l, "bias", 1, &c->filters, true, off);
            break;
        }
        case LAYER_KIND_DENSE: {
            int ks[2] = {in[2], c->units};
            add_weight(l, "kernel", 2, ks, true, off);
            if (c->use_bias)
                add_weight(l, "bias", 1, &c->units, true, off);
            break;
        }
        case LAYER_KIND_BATCH_NORMALIZATION:
            add_weight(l, "gamma", 1, &in[2], true, off);
            add_weight(l, "beta", 1, &in[2], true, off);
            add_weight(l, "moving_mean", 1, &in[2], false, off);
            add_weight(l, "moving_variance", 1, &in[2], false, off);
            if (in[2] > rt->max_c)
                rt->max_c = in[2];
            break;
        case LAYER_KIND_MAX_POOLING2D:
        case LAYER_KIND_AVERAGE_POOLING2D:
            pool2d_geom_init(&r->pg, in[0], in[1], in[2], c->pool_size[0], c->pool_size[1],
                             c->strides[0], c->strides[1], c->padding);
            break;
        default:
            break;
        }
        if (off[0] + off[1] > MODEL_MAX_WEIGHTS)
            return layer_error(d, i, "", "weights too large (more than 2^28 values)");
        if (r->out_size > rt->max_size)
            rt->max_size = r->out_size;
    }
    m->n_trainable = off[0];
    m->n_params = off[0] + off[1];
    for (int i = 0; i < m->n_layers; i++)
        m->n_weights += m->layers[i].n_weights;
    m->weights = calloc((size_t)(m->n_weights > 0 ? m->n_weights : 1), sizeof(*m->weights));
    if (!m->weights)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int k = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_weights; j++) {
            struct weight *w = &m->layers[i].weights[j];
            if (!w->trainable)
                w->offset += m->n_trainable;
            m->weights[k++] = (struct model_weight){.layer = i, .w = w};
        }

    /* A final softmax or sigmoid (Dense activation or Activation layer) is
     * done by the head: softmax fused with the loss, sigmoid applied to the
     * logits the binary cross-entropy reads; any other last layer's output
     * is what the loss reads. */
    int last = m->n_layers - 1;
    struct layer_config *lc = &m->layers[last].cfg;
    m->classes = m->layers[last].out_shape[2];
    rt->logits_layer = last;
    if (lc->kind == LAYER_KIND_SOFTMAX || lc->activation == ACTIVATION_KIND_SOFTMAX ||
        lc->activation == ACTIVATION_KIND_SIGMOID) {
        rt->head_softmax = lc->kind == LAYER_KIND_SOFTMAX ||
                           lc->activation == ACTIVATION_KIND_SOFTMAX;
        rt->head_sigmoid = !rt->head_softmax;
        if (lc->kind == LAYER_KIND_ACTIVATION || lc->kind == LAYER_KIND_SOFTMAX) {
            if (rt->L[last].src < 0 || m->layers[rt->L[last].src].cfg.kind == LAYER_KIND_INPUT)
                return layer_error(d, last, "",
                                   rt->head_softmax ? "softmax needs a layer before it"
                                                    : "sigmoid needs a layer before it");
            rt->L[last].loss_act = true;
            rt->logits_layer = rt->L[last].src;
        } else {
            rt->L[last].act = ACTIVATION_KIND_LINEAR;
        }
    }
    for (int i = 0; i < m->n_layers; i++) {
        bool gemm = layer_has_epilogue(m->layers[i].cfg.kind);
        if (gemm && rt->L[i].act == ACTIVATION_KIND_SOFTMAX)
            return layer_error(d, i, "activation",
                               "softmax inside the model is supported as an Activation layer only");
        /* Conv2D/Dense without activation followed by Activation (its only
         * consumer): fuse. */
        if (gemm && rt->L[i].act == ACTIVATION_KIND_LINEAR && i + 1 < m->n_layers &&
            m->layers[i + 1].cfg.kind == LAYER_KIND_ACTIVATION && rt->L[i + 1].src == i &&
            rt->L[i].consumers == 1 &&
            m->layers[i + 1].cfg.activation != ACTIVATION_KIND_SOFTMAX &&
            !activation_kind_needs_input((int)m->layers[i + 1].cfg.activation)) {
            rt->L[i].act = m->layers[i + 1].cfg.activation;
            rt->L[i + 1].alias = true;
        }
        enum layer_kind kd = m->layers[i].cfg.kind;
        if (kd == LAYER_KIND_FLATTEN || kd == LAYER_KIND_RESHAPE || kd == LAYER_KIND_INPUT)
            rt->L[i].alias = true;
    }
    /* Conv2D/Dense (+ fused Activation) with ReLU feeding a BN: the BN backward
     * applies the ReLU mask (x > 0 on its own input) */
    for (int i = 1; i < m->n_layers; i++) {
        if (m->layers[i].cfg.kind != LAYER_KIND_BATCH_NORMALIZATION)
            continue;
        int q = rt->L[i].src;
        if (q < 0 || rt->L[q].consumers != 1)
            continue;
        int p = rt->L[q].alias && m->layers[q].cfg.kind == LAYER_KIND_ACTIVATION ? rt->L[q].src : q;
        if (p >= 0 && rt->L[p].consumers == 1 && layer_has_epilogue(m->layers[p].cfg.kind) &&
            rt->L[p].act == ACTIVATION_KIND_RELU) {
            rt->L[i].bn_relu = true;
            rt->L[p].act_in_next = true;
        }
        /* inference (Sequential): a Conv2D's (+ Activation's) output
         * normalised by the moving statistics is an affine map per channel,
         * done in the store */
        if (!rt->graph && p >= 0 && rt->L[p].consumers == 1 &&
            m->layers[p].cfg.kind == LAYER_KIND_CONV2D && rt->L[i].ch == m->layers[p].cfg.filters) {
            rt->L[p].post_bn = i;
            rt->L[i].bn_in_prev = true;
        }
    }
    /* inference: a Conv2D (+ Activation, + BN) whose output only a 2x2
     * stride-2 max pooling without padding reads (Sequential models: a
     * functional model's inference runs the training forward's layers) */
    for (int i = 0; i < m->n_layers && !rt->graph; i++) {
        if (m->layers[i].cfg.kind != LAYER_KIND_CONV2D)
            continue;
        int j = rt->L[i].post_bn ? rt->L[i].post_bn + 1 : i + 1;
        if (!rt->L[i].post_bn && j < m->n_layers && rt->L[j].alias &&
            m->layers[j].cfg.kind == LAYER_KIND_ACTIVATION)
            j++;
        if (j >= m->n_layers || m->layers[j].cfg.kind != LAYER_KIND_MAX_POOLING2D)
            continue;
        const struct pool2d_geom *pg = &rt->L[j].pg;
        const struct conv2d_geom *cg = &rt->L[i].cg;
        if (pg->ph == 2 && pg->pw == 2 && pg->sh == 2 && pg->sw == 2 && pg->pad_top == 0 &&
            pg->pad_left == 0 && pg->h == cg->oh && pg->w == cg->ow && pg->oh * 2 == cg->oh &&
            pg->ow * 2 == cg->ow)
            rt->L[i].post_pool = j;
    }
    return 0;
}

static int model_alloc_runtime(struct model *m)
{
    struct model_runtime *rt = m->rt;
    const int T = m->threads;
    const size_t B = (size_t)m->max_batch;
    if (!(m->params = aligned_floats(m->n_params)) || !(m->grads = aligned_floats(m->n_params)))
        return -ENOMEM;
    /* activations: pass 0 sizes the block, pass 1 hands out the pieces */
    struct carve act = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !(rt->act_block = carve_alloc(&act)))
            return -ENOMEM;
        rt->x = carve(&act, sizeof(float) * B * rt->in_size);
        for (int i = 0; i < m->n_layers; i++) {
            struct rt_layer *r = &rt->L[i];
            const struct layer_config *c = &m->layers[i].cfg;
            if (!r->alias && !r->loss_act)
                r->out = carve(&act, sizeof(float) * B * r->out_size);
            if (layer_has_epilogue(c->kind) && activation_kind_needs_input((int)r->act))
                r->pre = carve(&act, sizeof(float) * B * r->out_size);
            if (rt->graph && i <= rt->logits_layer)
                r->gbuf = carve(&act, sizeof(float) * B * r->out_size);
        }
        rt->probs = carve(&act, sizeof(float) * B * m->classes);
        rt->y = carve(&act, sizeof(float) * B * m->classes);
        rt->losses = carve(&act, sizeof(float) * B);
        rt->sw = carve(&act, sizeof(float) * B);
    }
    rt->scratch_floats = 16;
    for (int i = 0; i < m->n_layers; i++) {
        struct rt_layer *r = &rt->L[i];
        const struct layer_config *c = &m->layers[i].cfg;
        if (r->alias)
            r->out = r->src < 0 ? rt->x : rt->L[r->src].out;
        else if (r->loss_act)
            r->out = rt->probs;
        if (c->kind == LAYER_KIND_CONV2D) {
            size_t s = conv2d_scratch_floats(&r->cg);
            if (s > rt->scratch_floats)
                rt->scratch_floats = s;
            if (r->cg.sh == 1 && r->cg.sw == 1 && i > 0 && !conv2d_geom_general(&r->cg) &&
                !(r->wflip = aligned_floats(m->layers[i].weights[0].size)))
                return -ENOMEM;
            size_t wt = conv2d_weight_transform_floats(&r->cg);
            if (wt && !(r->eval_wt = aligned_floats(wt)))
                return -ENOMEM;
            if (r->post_bn && !(r->eval_post = aligned_floats(2 * (size_t)r->cg.k)))
                return -ENOMEM;
        }
        if (c->kind == LAYER_KIND_SEPARABLE_CONV2D) {
            size_t s = 2 * sep_mid_floats(r) + conv2d_scratch_floats(&r->pw);
            if (s > rt->scratch_floats)
                rt->scratch_floats = s;
        }
        if ((c->kind == LAYER_KIND_DROPOUT || c->kind == LAYER_KIND_SPATIAL_DROPOUT2D) &&
            !(r->mask = calloc(B * r->out_size, 1)))
            return -ENOMEM;
        if (c->kind == LAYER_KIND_SPATIAL_DROPOUT2D && !(r->chan = calloc(B * (size_t)r->ch, 1)))
            return -ENOMEM;
        if (c->kind == LAYER_KIND_BATCH_NORMALIZATION &&
            !(r->bn_stats = aligned_floats((size_t)T * 2 * r->ch)))
            return -ENOMEM;
    }
    if (!(rt->tgrad = calloc((size_t)T, sizeof(float *))) ||
        !(rt->scratch = calloc((size_t)T, sizeof(float *))) ||
        !(rt->part = calloc((size_t)T, sizeof(double *))) ||
        !(rt->ebuf = calloc((size_t)T, sizeof(float *))) ||
        !(rt->dbuf = calloc((size_t)T * 2, sizeof(float *))) ||
        !(rt->loss_sum = calloc((size_t)T, sizeof(double))) ||
        !(rt->dcomb = calloc(2 * (size_t)(rt->max_c > 0 ? rt->max_c : 1), sizeof(double))) ||
        !(rt->metric_sum = calloc((size_t)T * METRICS_MAX, sizeof(double))) ||
        !(rt->thread_block = calloc((size_t)T, sizeof(void *))) ||
        !(rt->written = calloc((size_t)T, sizeof(uint8_t *))))
        return -ENOMEM;
    /* inference buffers: a head buffer holds any tensor of EVAL_HEAD examples;
     * a tail buffer any flat tensor of EVAL_TAIL examples, or probs + y + losses */
    rt->flat_from = rt->logits_layer + 1;
    while (rt->flat_from > 0 && rt->L[rt->flat_from - 1].rows == 1)
        rt->flat_from--;
    size_t tail_max = (size_t)m->classes;
    for (int i = rt->flat_from; i <= rt->logits_layer; i++) {
        if (rt->L[i].in_size > tail_max)
            tail_max = rt->L[i].in_size;
        if (rt->L[i].out_size > tail_max)
            tail_max = rt->L[i].out_size;
    }
    rt->head_floats = ((size_t)EVAL_HEAD * rt->max_size + 31) / 16 * 16;
    rt->tail_floats =
        ((size_t)EVAL_TAIL * (tail_max + 2 * (size_t)m->classes + 1) + 31) / 16 * 16;
    const size_t slice_max = (B + (size_t)T - 1) / (size_t)T;
    for (int t = 0; t < T; t++) {
        struct carve c = {0};
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1 && !(rt->thread_block[t] = carve_alloc(&c)))
                return -ENOMEM;
            rt->tgrad[t] = t == 0 ? m->grads : carve(&c, sizeof(float) * m->n_params);
            rt->scratch[t] = carve(&c, sizeof(float) * rt->scratch_floats);
            rt->part[t] = carve(&c, sizeof(double) * 8 * (size_t)(rt->max_c > 0 ? rt->max_c : 1));
            rt->ebuf[t] = carve(&c, sizeof(float) * 2 * (rt->head_floats + rt->tail_floats));
            rt->dbuf[2 * t] = carve(&c, sizeof(float) * slice_max * rt->max_size);
            rt->dbuf[2 * t + 1] = carve(&c, sizeof(float) * slice_max * rt->max_size);
            rt->written[t] = carve(&c, (size_t)m->n_layers);
        }
    }
    return 0;
}

int model_create(struct model **ret, const struct model_spec *spec, int max_batch, int threads,
                 struct diag *d)
{
    if (threads < 1 || threads > 256 || max_batch < 1 || max_batch > (1 << 20))
        return diag_set(d, -EINVAL, threads < 1 || threads > 256 ? "threads" : "max_batch",
                        "out of range (threads 1..256, max_batch 1..2^20)");
    if (spec->n_layers < 1 || spec->n_layers > MODEL_SPEC_LAYERS_MAX || !spec->layers)
        return diag_set(d, -EINVAL, "/config/layers", "the model has %d layers (1 to %d allowed)",
                        spec->n_layers, MODEL_SPEC_LAYERS_MAX);
    int(*shape)[3] = calloc((size_t)spec->n_layers, sizeof(*shape));
    if (!shape)
        return diag_set(d, -ENOMEM, "", "out of memory");
    bool *flat = calloc((size_t)spec->n_layers, sizeof(bool));
    int err = flat ? model_spec_infer_shapes_flat(spec, NULL, shape, flat, d)
                   : diag_set(d, -ENOMEM, "", "out of memory");
    if (!err) {
        int classes = model_spec_output_classes(spec, d);
        err = classes < 0 ? classes : 0;
    }
    if (err) {
        free(shape);
        free(flat);
        return err;
    }
    struct model *m = calloc(1, sizeof(*m));
    if (!m) {
        free(shape);
        free(flat);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    err = model_spec_copy(&m->spec, spec);
    if (err) {
        free(shape);
        free(flat);
        free(m);
        return diag_set(d, err, "", "out of memory");
    }
    m->n_layers = spec->n_layers;
    memcpy(m->input_shape, spec->input_shape, sizeof(m->input_shape));
    m->threads = threads;
    m->max_batch = max_batch;
    m->layers = calloc((size_t)m->n_layers, sizeof(*m->layers));
    m->rt = calloc(1, sizeof(*m->rt));
    if (m->rt)
        m->rt->L = calloc((size_t)m->n_layers, sizeof(*m->rt->L));
    if (!m->layers || !m->rt || !m->rt->L) {
        free(shape);
        free(flat);
        model_free(m);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].cfg = spec->layers[i];
    err = model_plan(m, (const int(*)[3])shape, flat, d);
    free(shape);
    free(flat);
    if (err) {
        model_free(m);
        return err;
    }
    err = model_alloc_runtime(m);
    if (!err)
        err = pool_create(&m->rt->pool, threads);
    if (err) {
        model_free(m);
        return diag_set(d, err, "", "cannot allocate the model runtime");
    }
    /* Keras' usual head for the output's activation. */
    enum activation_kind out_act = m->layers[m->n_layers - 1].cfg.activation;
    struct model_head *h = &m->rt->head;
    h->loss.kind = out_act == ACTIVATION_KIND_SOFTMAX   ? LOSS_KIND_CATEGORICAL_CROSSENTROPY
                   : out_act == ACTIVATION_KIND_SIGMOID ? LOSS_KIND_BINARY_CROSSENTROPY
                                                        : LOSS_KIND_MEAN_SQUARED_ERROR;
    metric_config_from_name(&h->metrics[0], "accuracy", h->loss.kind);
    h->n_metrics = 1;
    /* The engine owns the parallelism: OpenBLAS runs single-threaded inside
     * each compute thread. */
    openblas_set_num_threads(1);
    *ret = m;
    return 0;
}

int model_set_head(struct model *m, const struct model_head *h, struct diag *d)
{
    int r = model_spec_check_loss(&m->spec, &h->loss, d);
    if (r < 0)
        return r;
    if (!(h->loss.label_smoothing >= 0 && h->loss.label_smoothing <= 1))
        return diag_set(d, -EINVAL, "/loss", "label_smoothing must be in [0, 1]");
    if (h->n_metrics < 0 || h->n_metrics > METRICS_MAX)
        return diag_set(d, -EINVAL, "/metrics", "at most %d metrics, got %d", METRICS_MAX,
                        h->n_metrics);
    for (int i = 0; i < h->n_metrics; i++)
        if (h->metrics[i].kind == METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY && h->metrics[i].k < 1)
            return diag_set(d, -EINVAL, "/metrics", "metric %d: k must be at least 1", i);
    float *cw = NULL;
    if (h->class_weight) {
        for (int c = 0; c < m->classes; c++)
            if (!(h->class_weight[c] >= 0 && isfinite(h->class_weight[c])))
                return diag_set(d, -EINVAL, "/class_weight",
                                "class %d: weights must be finite and >= 0", c);
        if (!(cw = malloc(sizeof(float) * (size_t)m->classes)))
            return diag_set(d, -ENOMEM, "/class_weight", "out of memory");
        memcpy(cw, h->class_weight, sizeof(float) * (size_t)m->classes);
    }
    free(m->rt->cw);
    m->rt->cw = cw;
    m->rt->head = *h;
    m->rt->head.class_weight = cw;
    return 0;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    struct model_runtime *rt = m->rt;
    if (rt) {
        pool_free(rt->pool);
        if (rt->L)
            for (int i = 0; i < m->n_layers; i++) {
                struct rt_layer *r = &rt->L[i];
                free(r->wflip);
                free(r->mask);
                free(r->chan);
                free(r->bn_stats);
                free(r->eval_wt);
                free(r->eval_post);
            }
        for (int t = 0; rt->thread_block && t < m->threads; t++)
            free(rt->thread_block[t]);
        free(rt->thread_block);
        free(rt->act_block);
        free(rt->tgrad);
        free(rt->scratch);
        free(rt->part);
        free(rt->ebuf);
        free(rt->loss_sum);
        free(rt->dcomb);
        free(rt->metric_sum);
        free(rt->cw);
        free(rt->dbuf);
        free(rt->written);
        free(rt->L);
        free(rt);
    }
    free(m->params);
    free(m->grads);
    free(m->weights);
    free(m->layers);
    model_spec_free(&m->spec);
    free(m);
}

void model_init_weights(struct model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_layers; i++) {
        struct layer *l = &m->layers[i];
        struct rng r;
        rng_seed(&r, seed, (uint64_t)i);
        for (int j = 0; j < l->n_weights; j++) {
            const struct weight *w = &l->weights[j];
            const struct initializer *init = j < LAYER_INIT_SLOTS ? &l->cfg.init[j] : NULL;
            initializer_fill(m->params + w->offset, w->ndim, w->shape, init, w->name, &r);
        }
    }
}

int model_conv_algorithms(const struct model *m, int i, const char **ret_forward,
                          const char **ret_dinput, const char **ret_dweight)
{
    if (i < 0 || i >= m->n_layers || m->layers[i].cfg.kind != LAYER_KIND_CONV2D)
        return -EINVAL;
    const struct rt_layer *r = &m->rt->L[i];
    /* conv2d_backward gets dinp for every layer but the first (step_thread) */
    *ret_forward = conv2d_forward_algorithm(&r->cg);
    *ret_dinput = i == 0 ? "none" : conv2d_dinput_algorithm(&r->cg, r->wflip != NULL);
    *ret_dweight = conv2d_dweight_algorithm(&r->cg, i > 0, r->wflip != NULL);
    return 0;
}

const struct weight *model_find_weight(const struct model *m, const char *layer_name,
                                       const char *weight_name)
{
    for (int i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].cfg.name, layer_name) != 0)
            continue;
        for (int j = 0; j < m->layers[i].n_weights; j++)
            if (!strcmp(m->layers[i].weights[j].name, weight_name))
                return &m->layers[i].weights[j];
    }
    return NULL;
}

/* ------------------------------------------------------------ training */

struct step_ctx {
    struct model *m;
    int n;
    uint64_t seed;
    int64_t step;
    bool update_moving;
    bool inference;        /* graph inference: moving statistics, no dropout */
    const void *images;    /* model_train_step, graph inference: converted by each thread
                              for its slice */
    enum pixels_type pixels;
    const uint8_t *labels; /* model_train_step: the targets (else rt->y); graph inference:
                              (n) or NULL */
    const float *targets;  /* graph inference: float targets (n, classes) or NULL */
    bool weighted;         /* rt->sw holds the examples' class weights */
    float *probs;          /* graph inference: (n, classes) or NULL */
};

static float *wptr(struct model *m, int layer, int j)
{
    return m->layers[layer].n_weights > j ? m->params + m->layers[layer].weights[j].offset : NULL;
}

static float *gptr(struct model *m, float *arena, int layer, int j)
{
    return m->layers[layer].n_weights > j ? arena + m->layers[layer].weights[j].offset : NULL;
}

static const float *layer_input(struct model_runtime *rt, int i)
{
    return rt->L[i].src < 0 ? rt->x : rt->L[rt->L[i].src].out;
}

/* Combine the threads' partial sums (2 x C doubles each, at parity slot) in
 * thread order into a (2 x C). */
static void combine_parts(double *a, struct model_runtime *rt, int T, int parity, int c)
{
    memset(a, 0, sizeof(double) * 2 * c);
    for (int t = 0; t < T; t++) {
        const double *p = rt->part[t] + (size_t)parity * 2 * rt->max_c;
        for (int k = 0; k < 2 * c; k++)
            a[k] += p[k];
    }
}

/* Compute threads run with denormals flushed to zero (FTZ + DAZ in MXCSR):
 * tiny gradients (e.g. random labels late in training) otherwise hit the
 * CPU's slow denormal path in the elementwise kernels.  The caller's thread
 * (tid 0) gets its own mode back at the end. */
static unsigned denormals_off(void)
{
#if defined(__SSE__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | MXCSR_FTZ | MXCSR_DAZ);
    return old;
#else
    return 0;
#endif
}

static void denormals_restore(unsigned old)
{
#if defined(__SSE__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* Forward of layer i on nb examples where training and inference compute
 * the same (Conv2D, Dense, activations, pooling, padding, merges): out
 * (nb, out_size) from inp (nb, in_size); element-wise layers may run in
 * place (out == inp).  pre (Conv2D/Dense with gelu/swish in training, else
 * NULL) keeps the pre-activation.  Add and Concatenate read their inputs
 * from the activation arena at example b0.  false for the other kinds,
 * which the caller runs. */
static bool layer_forward(struct model *m, int i, float *out, const float *inp, int nb,
                          float *scratch, float *pre, int b0)
{
    struct model_runtime *rt = m->rt;
    const struct rt_layer *r = &rt->L[i];
    const struct layer_config *c = &m->layers[i].cfg;
    size_t count = (size_t)nb * r->in_size;
    switch (c->kind) {
    case LAYER_KIND_CONV2D:
        conv2d_forward(pre ? pre : out, scratch, inp, wptr(m, i, 0),
                       c->use_bias ? wptr(m, i, 1) : NULL, pre ? ACTIVATION_KIND_LINEAR : r->act,
                       nb, &r->cg);
        if (pre)
            activation_forward(out, pre, (size_t)nb * r->cg.oh * r->cg.ow, r->cg.k, r->act);
        return true;
    case LAYER_KIND_DEPTHWISE_CONV2D:
        depthwise_conv2d_forward(pre ? pre : out, inp, wptr(m, i, 0),
                                 c->use_bias ? wptr(m, i, 1) : NULL,
                                 pre ? ACTIVATION_KIND_LINEAR : r->act, nb, &r->cg);
        if (pre)
            activation_forward(out, pre, (size_t)nb * r->cg.oh * r->cg.ow, r->cg.k, r->act);
        return true;
    case LAYER_KIND_SEPARABLE_CONV2D: {
        /* SEP_CHUNK examples at a time: depthwise into scratch, then the
         * pointwise conv with the bias and activation epilogue */
        const size_t out_img = (size_t)r->pw.oh * r->pw.ow * r->pw.k;
        float *mid = scratch, *pw_scratch = scratch + 2 * sep_mid_floats(r);
        for (int e0 = 0; e0 < nb; e0 += SEP_CHUNK) {
            int ne = nb - e0 < SEP_CHUNK ? nb - e0 : SEP_CHUNK;
            float *o = (pre ? pre : out) + (size_t)e0 * out_img;
            depthwise_conv2d_forward(mid, inp + (size_t)e0 * r->in_size, wptr(m, i, 0), NULL,
                                     ACTIVATION_KIND_LINEAR, ne, &r->cg);
            conv2d_forward(o, pw_scratch, mid, wptr(m, i, 1), c->use_bias ? wptr(m, i, 2) : NULL,
                           pre ? ACTIVATION_KIND_LINEAR : r->act, ne, &r->pw);
        }
        if (pre)
            activation_forward(out, pre, (size_t)nb * r->pw.oh * r->pw.ow, r->pw.k, r->act);
        return true;
    }
    case LAYER_KIND_DENSE:
        /* on the last axis: nb * rows rows of ch values (rows = 1 after Flatten) */
        dense_forward(pre ? pre : out, inp, wptr(m, i, 0), c->use_bias ? wptr(m, i, 1) : NULL,
                      pre ? ACTIVATION_KIND_LINEAR : r->act, nb * r->rows, r->ch, c->units);
        if (pre)
            activation_forward(out, pre, (size_t)nb * r->rows, c->units, r->act);
        return true;
    case LAYER_KIND_ACTIVATION:
        activation_forward(out, inp, (size_t)nb * r->rows, r->ch, r->act);
        return true;
    case LAYER_KIND_SOFTMAX:
        activation_forward(out, inp, (size_t)nb * r->rows, r->ch, ACTIVATION_KIND_SOFTMAX);
        return true;
    case LAYER_KIND_RELU:
    case LAYER_KIND_LEAKY_RELU:
        relu_layer_forward(out, inp, count, c->alpha,
                           c->kind == LAYER_KIND_RELU ? c->max_value : INFINITY,
                           c->kind == LAYER_KIND_RELU ? c->threshold : 0.0f);
        return true;
    case LAYER_KIND_ELU:
        elu_layer_forward(out, inp, count, c->alpha);
        return true;
    case LAYER_KIND_RESCALING:
        rescaling_forward(out, inp, count, c->scale, c->offset);
        return true;
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D:
        global_avgpool_forward(out, inp, nb, r->rows, r->ch);
        return true;
    case LAYER_KIND_GLOBAL_MAX_POOLING2D:
        global_maxpool_forward(out, inp, nb, r->rows, r->ch);
        return true;
    case LAYER_KIND_ZERO_PADDING2D: {
        const int *in = m->layers[i].in_shape;
        zero_padding2d_forward(out, inp, nb, in[0], in[1], in[2], c->pad);
        return true;
    }
    case LAYER_KIND_ADD:
    case LAYER_KIND_CONCATENATE: {
        const float *inps[LAYER_MAX_INPUTS];
        int cs[LAYER_MAX_INPUTS];
        for (int k = 0; k < r->n_in; k++) {
            const struct rt_layer *q = &rt->L[c->inputs[k]];
            inps[k] = q->out + (size_t)b0 * q->out_size;
            cs[k] = m->layers[c->inputs[k]].out_shape[2];
        }
        if (c->kind == LAYER_KIND_ADD)
            add_forward(out, inps, r->n_in, (size_t)nb * r->out_size);
        else
            concat_forward(out, inps, cs, r->n_in, (size_t)nb * r->rows);
        return true;
    }
    case LAYER_KIND_MAX_POOLING2D:
        maxpool2d_forward(out, inp, nb, &r->pg);
        return true;
    case LAYER_KIND_AVERAGE_POOLING2D:
        avgpool2d_forward(out, inp, nb, &r->pg);
        return true;
    default:
        break;
    }
    return false;
}

/* RandomCrop of nb examples: the batch's random window in training, the
 * centred window resized in inference (random_crop_window). */
static void random_crop_run(struct model *m, int i, float *out, const float *inp, int nb,
                            bool training, uint64_t seed, int64_t step, bool backward)
{
    const struct layer *l = &m->layers[i];
    const int *in = l->in_shape, *o = l->out_shape;
    int win[4];
    random_crop_window(win, &l->cfg.aug, in[0], in[1], training, seed, step, i);
    const size_t isz = (size_t)in[0] * in[1] * in[2], osz = (size_t)o[0] * o[1] * o[2];
    for (int e = 0; e < nb; e++) {
        if (backward) /* out: dinp, inp: dout */
            crop_resize_backward(out + e * isz, inp + e * osz, in[0], in[1], in[2], o[0], o[1],
                                 win);
        else
            crop_resize_forward(out + e * osz, inp + e * isz, in[0], in[1], in[2], o[0], o[1],
                                win);
    }
}

/* One compute thread's share of a training step. */
struct step_slice {
    int tid, T;
    int b0, nb;          /* examples [b0, b0 + nb) of the batch */
    float *grad;         /* this thread's gradient arena (thread 0: m->grads) */
    float *scratch;      /* conv column buffer */
    double *mine;        /* BN partial sums of this thread, 2 parity slots of 2 x max_c */
    double *comb;        /* the threads' partial sums combined, 2 x max_c */
    int parity;          /* next parity slot of `mine` */
};

/* Combines the threads' BN partial sums (2 x C each, written into t->mine at
 * the current parity) in thread order into t->comb, after a barrier. */
static void step_combine(struct model *m, struct step_slice *t, int C)
{
    struct model_runtime *rt = m->rt;
    pool_barrier(rt->pool);
    if (!collective_active(m->coll)) {
        combine_parts(t->comb, rt, t->T, t->parity, C);
        t->parity ^= 1;
        return;
    }
    /* Thread 0 combines this rank's threads, then the ranks (rank order);
     * the others wait and read rt->dcomb (t->comb), which nobody writes
     * again before the next combine's first barrier. */
    if (t->tid == 0) {
        combine_parts(rt->dcomb, rt, t->T, t->parity, C);
        (void)m->coll->sum_f64(m->coll->ctx, rt->dcomb, 2 * (size_t)C);
    }
    pool_barrier(rt->pool);
    t->parity ^= 1;
}

/* This thread's examples through layers 0..logits_layer in training mode:
 * BN normalises with the whole batch's statistics (and updates the moving
 * ones when asked), Dropout draws its mask from (seed, step). */
static void step_forward(const struct step_ctx *s, struct step_slice *t)
{
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const int b0 = t->b0, nb = t->nb;
    for (int i = 0; i <= rt->logits_layer; i++) {
        struct rt_layer *r = &rt->L[i];
        const struct layer_config *c = &m->layers[i].cfg;
        if (r->alias)
            continue;
        const float *inp = layer_input(rt, i) + (size_t)b0 * r->in_size;
        float *out = r->out + (size_t)b0 * r->out_size;
        float *pre = r->pre && !s->inference ? r->pre + (size_t)b0 * r->out_size : NULL;
        if (layer_forward(m, i, out, inp, nb, t->scratch, pre, b0))
            continue;
        if (s->inference) { /* graph inference: BN on the moving statistics, no dropout,
                               augmentation off */
            if (c->kind == LAYER_KIND_RANDOM_CROP)
                random_crop_run(m, i, out, inp, nb, false, 0, 0, false);
            else if (c->kind == LAYER_KIND_BATCH_NORMALIZATION)
                batchnorm_forward(out, inp, wptr(m, i, 2), wptr(m, i, 3), wptr(m, i, 0),
                                  wptr(m, i, 1), c->epsilon, (size_t)nb * r->rows, r->ch);
            else
                memcpy(out, inp, sizeof(float) * (size_t)nb * r->out_size);
            continue;
        }
        if (c->kind == LAYER_KIND_BATCH_NORMALIZATION && c->frozen) {
            /* a frozen BN runs in inference mode (Keras 2.1+): moving statistics */
            batchnorm_forward(out, inp, wptr(m, i, 2), wptr(m, i, 3), wptr(m, i, 0),
                              wptr(m, i, 1), c->epsilon, (size_t)nb * r->rows, r->ch);
        } else if (c->kind == LAYER_KIND_BATCH_NORMALIZATION) {
            const int C = r->ch;
            double *p = t->mine + (size_t)t->parity * 2 * rt->max_c;
            memset(p, 0, sizeof(double) * 2 * C);
            batchnorm_stats_accumulate(p, p + C, inp, (size_t)nb * r->rows, C);
            step_combine(m, t, C);
            float *mean = r->bn_stats + (size_t)t->tid * 2 * C, *var = mean + C;
            size_t count = (size_t)s->n * r->rows;
            batchnorm_stats_finalize(mean, var, t->comb, t->comb + C, count, C);
            if (t->tid == 0 && s->update_moving)
                batchnorm_update_moving(wptr(m, i, 2), wptr(m, i, 3), mean, var, count,
                                        c->momentum, r->rank4, C);
            batchnorm_forward(out, inp, mean, var, wptr(m, i, 0), wptr(m, i, 1), c->epsilon,
                              (size_t)nb * r->rows, C);
        } else if (c->kind == LAYER_KIND_DROPOUT) {
            uint8_t *mask = r->mask + (size_t)b0 * r->out_size;
            if (c->rate > 0.0f)
                dropout_mask(mask, nb, r->out_size, c->rate, s->seed, s->step, i, b0);
            else
                memset(mask, 1, (size_t)nb * r->out_size);
            dropout_forward(out, inp, mask, c->rate, (size_t)nb * r->out_size);
        } else if (c->kind == LAYER_KIND_RANDOM_CROP) {
            random_crop_run(m, i, out, inp, nb, true, s->seed, s->step, false);
        } else if (layer_kind_is_augment(c->kind)) {
            const int *in = m->layers[i].in_shape;
            augment_forward(out, inp, nb, in[0], in[1], in[2], c->kind, &c->aug, s->seed,
                            s->step, i, b0);
        } else if (c->kind == LAYER_KIND_SPATIAL_DROPOUT2D) {
            uint8_t *mask = r->mask + (size_t)b0 * r->out_size;
            if (c->rate > 0.0f)
                spatial_dropout_mask(mask, r->chan + (size_t)b0 * r->ch, nb, r->rows, r->ch,
                                     c->rate, s->seed, s->step, i, b0);
            else
                memset(mask, 1, (size_t)nb * r->out_size);
            dropout_forward(out, inp, mask, c->rate, (size_t)nb * r->out_size);
        }
    }
}

/* The head's loss on this thread's examples: the sum of the (weighted)
 * losses and of each metric (rt->loss_sum, rt->metric_sum at tid), and
 * d(loss)/d(logits) into dlogits (nb, classes), Keras' reduction
 * sum(loss * weight) / n.  Targets: the step's labels, else rt->y (the
 * float path); a softmax head with a categorical loss reads rt->y, which
 * model_train_step fills with the (smoothed) one-hot rows. */
/* A sigmoid head on n rows of logits z: probs = sigmoid(z); the per-example
 * losses and, when dz is not NULL, d(loss)/dz (loss_backward's weights and
 * scale).  Binary cross-entropy is computed from the logits, as TensorFlow's
 * Keras does for a sigmoid output (no clipping); MSE and MAE read the
 * probabilities, their gradient taken through the sigmoid. */
static void sigmoid_head(const struct model_head *h, float *probs, float *losses, float *dz,
                         const float *z, const float *y, const uint8_t *labels,
                         const float *w, float scale, int n, int K)
{
    activation_forward(probs, z, (size_t)n, K, ACTIVATION_KIND_SIGMOID);
    if (h->loss.kind == LOSS_KIND_BINARY_CROSSENTROPY) {
        struct loss_config lc = h->loss;
        lc.from_logits = true;
        loss_forward(&lc, losses, z, y, labels, n, K);
        if (dz)
            loss_backward(&lc, dz, z, y, labels, w, scale, n, K);
        return;
    }
    loss_forward(&h->loss, losses, probs, y, labels, n, K);
    if (!dz)
        return;
    loss_backward(&h->loss, dz, probs, y, labels, w, scale, n, K);
    for (size_t i = 0; i < (size_t)n * K; i++)
        dz[i] *= probs[i] * (1.0f - probs[i]);
}

static void step_loss(const struct step_ctx *s, const struct step_slice *t, float *dlogits)
{
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const struct model_head *h = &rt->head;
    const int K = m->classes, b0 = t->b0, nb = t->nb;
    const float *out = rt->L[rt->logits_layer].out + (size_t)b0 * K;
    const uint8_t *labels = s->labels ? s->labels + b0 : NULL;
    const float *y = rt->y + (size_t)b0 * K;
    const float *w = s->weighted ? rt->sw + b0 : NULL;
    float *losses = rt->losses + b0;
    const float scale = 1.0f / (float)s->n;
    const float *scored = out;
    if (rt->head_softmax) {
        float *probs = rt->probs + (size_t)b0 * K;
        if (labels && h->loss.kind == LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY) {
            softmax_sparse_crossentropy_forward(probs, losses, out, labels, nb, K);
            softmax_sparse_crossentropy_backward(dlogits, probs, labels, scale, nb, K);
        } else {
            softmax_crossentropy_forward(probs, losses, out, y, nb, K);
            softmax_crossentropy_backward(dlogits, probs, y, scale, nb, K);
        }
        if (w)
            for (int e = 0; e < nb; e++)
                for (int j = 0; j < K; j++)
                    dlogits[(size_t)e * K + j] *= w[e];
        scored = probs;
    } else if (rt->head_sigmoid) {
        float *probs = rt->probs + (size_t)b0 * K;
        sigmoid_head(h, probs, losses, dlogits, out, labels ? NULL : y, labels, w, scale, nb, K);
        scored = probs;
    } else {
        loss_forward(&h->loss, losses, out, labels ? NULL : y, labels, nb, K);
        loss_backward(&h->loss, dlogits, out, labels ? NULL : y, labels, w, scale, nb, K);
    }
    double lsum = 0.0;
    for (int e = 0; e < nb; e++)
        lsum += w ? (double)losses[e] * w[e] : losses[e];
    rt->loss_sum[t->tid] = lsum;
    for (int i = 0; i < h->n_metrics; i++)
        rt->metric_sum[(size_t)t->tid * METRICS_MAX + i] =
            metric_sum(&h->metrics[i], scored, labels ? NULL : y, labels, nb, K);
}

/* Backward of layer i on this thread's slice: g holds d(loss)/d(output)
 * (nb, out_size) and may be overwritten; the gradient of the (first) input
 * goes to gn or stays in g (in-place ops): returns true when it is in gn.
 * need_dinp false: only the weight gradients are needed (the input is the
 * model's).  Weight gradients go into t->grad (BN's gamma/beta, summed over
 * the batch, by thread 0 into m->grads). */
static bool layer_backward(const struct step_ctx *s, struct step_slice *t, int i, float *g,
                           float *gn, bool need_dinp)
{
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const int b0 = t->b0, nb = t->nb;
    float *grad = t->grad, *scratch = t->scratch;
    struct rt_layer *r = &rt->L[i];
    const struct layer_config *c = &m->layers[i].cfg;
    const float *inp = layer_input(rt, i) + (size_t)b0 * r->in_size;
    const float *out = r->out + (size_t)b0 * r->out_size;
    const float *pre = r->pre ? r->pre + (size_t)b0 * r->out_size : NULL;
    size_t count = (size_t)nb * r->in_size;
    switch (c->kind) {
    case LAYER_KIND_CONV2D:
    case LAYER_KIND_DEPTHWISE_CONV2D:
    case LAYER_KIND_SEPARABLE_CONV2D: {
        const struct conv2d_geom *og = conv_out_geom(r, c->kind);
        if (pre)
            activation_backward_x(g, g, pre, out, (size_t)nb * og->oh * og->ow, og->k, r->act);
        else if (!r->act_in_next)
            activation_backward(g, g, out, (size_t)nb * og->oh * og->ow, og->k, r->act);
        if (c->kind == LAYER_KIND_SEPARABLE_CONV2D) {
            /* per SEP_CHUNK examples: the depthwise output again (the
             * pointwise conv's input), the pointwise backward into its
             * gradient, then the depthwise backward */
            const size_t out_img = (size_t)og->oh * og->ow * og->k;
            float *mid = scratch, *dmid = scratch + sep_mid_floats(r);
            float *pw_scratch = scratch + 2 * sep_mid_floats(r);
            for (int e0 = 0; e0 < nb; e0 += SEP_CHUNK) {
                int ne = nb - e0 < SEP_CHUNK ? nb - e0 : SEP_CHUNK;
                const float *x = inp + (size_t)e0 * r->in_size;
                depthwise_conv2d_forward(mid, x, wptr(m, i, 0), NULL, ACTIVATION_KIND_LINEAR, ne,
                                         &r->cg);
                conv2d_backward(dmid, gptr(m, grad, i, 1), c->use_bias ? gptr(m, grad, i, 2) : NULL,
                                pw_scratch, g + (size_t)e0 * out_img, mid, wptr(m, i, 1), NULL, ne,
                                &r->pw);
                depthwise_conv2d_backward(need_dinp ? gn + (size_t)e0 * r->in_size : NULL,
                                          gptr(m, grad, i, 0), NULL, dmid, x, wptr(m, i, 0), ne,
                                          &r->cg);
            }
        } else if (c->kind == LAYER_KIND_DEPTHWISE_CONV2D)
            depthwise_conv2d_backward(need_dinp ? gn : NULL, gptr(m, grad, i, 0),
                                      c->use_bias ? gptr(m, grad, i, 1) : NULL, g, inp,
                                      wptr(m, i, 0), nb, &r->cg);
        else
            conv2d_backward(need_dinp ? gn : NULL, gptr(m, grad, i, 0),
                            c->use_bias ? gptr(m, grad, i, 1) : NULL, scratch, g, inp,
                            wptr(m, i, 0), r->wflip, nb, &r->cg);
        return true;
    }
    case LAYER_KIND_DENSE:
        /* on the last axis: nb * rows rows of ch values (rows = 1 after Flatten) */
        if (pre)
            activation_backward_x(g, g, pre, out, (size_t)nb * r->rows, c->units, r->act);
        else if (!r->act_in_next)
            activation_backward(g, g, out, (size_t)nb * r->rows, c->units, r->act);
        dense_backward(need_dinp ? gn : NULL, gptr(m, grad, i, 0),
                       c->use_bias ? gptr(m, grad, i, 1) : NULL, g, inp, wptr(m, i, 0),
                       nb * r->rows, r->ch, c->units);
        return true;
    case LAYER_KIND_BATCH_NORMALIZATION: {
        const int C = r->ch;
        if (c->frozen) {
            /* inference mode: dinp = gamma / sqrt(moving_var + eps) * dout, which is
             * batchnorm_backward with both sums 0; no weight gradients */
            double *zero = t->mine + (size_t)t->parity * 2 * rt->max_c;
            memset(zero, 0, sizeof(double) * 2 * C);
            batchnorm_backward(g, g, inp, wptr(m, i, 2), wptr(m, i, 3), wptr(m, i, 0), zero,
                               zero + C, (size_t)s->n * r->rows, c->epsilon, r->bn_relu,
                               (size_t)nb * r->rows, C);
            return false;
        }
        const float *mean = r->bn_stats + (size_t)t->tid * 2 * C, *var = mean + C;
        double *p = t->mine + (size_t)t->parity * 2 * rt->max_c;
        const double *comb = t->comb;
        memset(p, 0, sizeof(double) * 2 * C);
        batchnorm_backward_accumulate(p, p + C, g, inp, mean, var, c->epsilon,
                                      (size_t)nb * r->rows, C);
        step_combine(m, t, C);
        if (t->tid == 0 && (!m->coll || m->coll->rank == 0)) {
            float *dgamma = gptr(m, grad, i, 0), *dbeta = gptr(m, grad, i, 1);
            for (int k = 0; k < C; k++) {
                dgamma[k] += (float)comb[C + k];
                dbeta[k] += (float)comb[k];
            }
        }
        batchnorm_backward(g, g, inp, mean, var, wptr(m, i, 0), comb, comb + C,
                           (size_t)s->n * r->rows, c->epsilon, r->bn_relu,
                           (size_t)nb * r->rows, C);
        return false;
    }
    case LAYER_KIND_ACTIVATION:
        activation_backward_x(g, g, inp, out, (size_t)nb * r->rows, r->ch, r->act);
        return false;
    case LAYER_KIND_SOFTMAX:
        activation_backward(g, g, out, (size_t)nb * r->rows, r->ch, ACTIVATION_KIND_SOFTMAX);
        return false;
    case LAYER_KIND_RELU:
    case LAYER_KIND_LEAKY_RELU:
        relu_layer_backward(g, g, inp, count, c->alpha,
                            c->kind == LAYER_KIND_RELU ? c->max_value : INFINITY,
                            c->kind == LAYER_KIND_RELU ? c->threshold : 0.0f);
        return false;
    case LAYER_KIND_ELU:
        elu_layer_backward(g, g, inp, count, c->alpha);
        return false;
    case LAYER_KIND_RESCALING:
        rescaling_backward(g, g, count, c->scale);
        return false;
    case LAYER_KIND_MAX_POOLING2D:
        maxpool2d_backward(gn, g, inp, nb, &r->pg);
        return true;
    case LAYER_KIND_AVERAGE_POOLING2D:
        avgpool2d_backward(gn, g, nb, &r->pg);
        return true;
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D:
        global_avgpool_backward(gn, g, nb, r->rows, r->ch);
        return true;
    case LAYER_KIND_GLOBAL_MAX_POOLING2D:
        global_maxpool_backward(gn, g, inp, nb, r->rows, r->ch);
        return true;
    case LAYER_KIND_ZERO_PADDING2D: {
        const int *in = m->layers[i].in_shape;
        zero_padding2d_backward(gn, g, nb, in[0], in[1], in[2], c->pad);
        return true;
    }
    case LAYER_KIND_DROPOUT:
    case LAYER_KIND_SPATIAL_DROPOUT2D:
        dropout_backward(g, g, r->mask + (size_t)b0 * r->out_size, c->rate,
                         (size_t)nb * r->out_size);
        return false;
    case LAYER_KIND_RANDOM_CROP:
        if (need_dinp)
            random_crop_run(m, i, gn, g, nb, true, s->seed, s->step, true);
        return true;
    case LAYER_KIND_RANDOM_FLIP:
    case LAYER_KIND_RANDOM_TRANSLATION:
    case LAYER_KIND_RANDOM_ROTATION:
    case LAYER_KIND_RANDOM_ZOOM:
    case LAYER_KIND_RANDOM_CONTRAST: {
        const int *in = m->layers[i].in_shape;
        if (need_dinp) /* the adjoint of the forward's draws (every transform is linear) */
            augment_backward(gn, g, inp, nb, in[0], in[1], in[2], c->kind, &c->aug, s->seed,
                             s->step, i, b0);
        return true;
    }
    default: /* Flatten, Reshape, InputLayer: aliases; Add, Concatenate: the graph walk */
        return false;
    }
}

/* Backward from the logits' gradient in dbuf[0] through layers
 * logits_layer..0 (a Sequential model: each layer's input is the layer
 * before), ping-ponging between the two gradient buffers. */
static void step_backward(const struct step_ctx *s, struct step_slice *t, float **dbuf)
{
    struct model_runtime *rt = s->m->rt;
    int cur = 0;
    for (int i = rt->logits_layer; i >= 0; i--) {
        if (rt->L[i].alias)
            continue;
        if (layer_backward(s, t, i, dbuf[cur], dbuf[cur ^ 1], i > 0))
            cur ^= 1;
    }
}

/* dst (count floats) = src when first, else dst += src. */
static void grad_pass(float *dst, const float *src, size_t count, bool first)
{
    if (first)
        memcpy(dst, src, sizeof(float) * count);
    else
        for (size_t k = 0; k < count; k++)
            dst[k] += src[k];
}

/* The graph backward of a functional model: layers in reverse order, each
 * reading its complete output gradient (every consumer comes later) from
 * its gbuf slice and passing its input gradients on, summed where a tensor
 * fans out.  The loss wrote the logits' gradient into their gbuf. */
static void step_backward_graph(const struct step_ctx *s, struct step_slice *t, float *tmp)
{
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const int b0 = t->b0, nb = t->nb;
    uint8_t *written = rt->written[t->tid];
    memset(written, 0, (size_t)m->n_layers);
    written[rt->logits_layer] = 1;
    for (int i = rt->logits_layer; i > 0; i--) {
        struct rt_layer *r = &rt->L[i];
        const struct layer_config *c = &m->layers[i].cfg;
        if (!written[i] || c->kind == LAYER_KIND_INPUT)
            continue; /* not on a path to the output */
        float *g = r->gbuf + (size_t)b0 * r->out_size;
        if (c->kind == LAYER_KIND_ADD || c->kind == LAYER_KIND_CONCATENATE) {
            int c0 = 0;
            for (int k = 0; k < r->n_in; k++) {
                int q = c->inputs[k];
                struct rt_layer *rq = &rt->L[q];
                int cq = m->layers[q].out_shape[2];
                if (m->layers[q].cfg.kind != LAYER_KIND_INPUT) {
                    float *gq = rq->gbuf + (size_t)b0 * rq->out_size;
                    if (c->kind == LAYER_KIND_ADD)
                        grad_pass(gq, g, (size_t)nb * r->out_size, !written[q]);
                    else
                        concat_backward_part(gq, g, (size_t)nb * r->rows, m->layers[i].out_shape[2],
                                             c0, cq, written[q]);
                    written[q] = 1;
                }
                c0 += cq;
            }
            continue;
        }
        int q = r->src;
        bool need = m->layers[q].cfg.kind != LAYER_KIND_INPUT;
        float *gq = need ? rt->L[q].gbuf + (size_t)b0 * rt->L[q].out_size : NULL;
        float *res = g;
        if (!r->alias) {
            float *gn = need && !written[q] ? gq : tmp;
            if (layer_backward(s, t, i, g, gn, need))
                res = gn;
        }
        if (!need)
            continue;
        if (res != gq)
            grad_pass(gq, res, (size_t)nb * rt->L[q].out_size, !written[q]);
        written[q] = 1;
    }
}

/* Sums the per-thread gradient arenas into m->grads in thread order, each
 * thread owning a range of the trainable block (after a barrier: every
 * thread's backward is done). */
static void step_gradient_sum(struct model *m, int tid, int T)
{
    if (T < 2)
        return;
    pool_barrier(m->rt->pool);
    size_t p0 = m->n_trainable * (size_t)tid / T, p1 = m->n_trainable * (size_t)(tid + 1) / T;
    for (int t = 1; t < T; t++) {
        const float *src = m->rt->tgrad[t];
        for (size_t k = p0; k < p1; k++)
            m->grads[k] += src[k];
    }
}

static void step_thread(void *arg, int tid, int T)
{
    unsigned csr = denormals_off();
    struct step_ctx *s = arg;
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    struct step_slice t = {.tid = tid, .T = T, .grad = rt->tgrad[tid],
                           .scratch = rt->scratch[tid], .mine = rt->part[tid]};
    int r0 = 0, r1 = s->n, b1;
    if (collective_active(m->coll))
        slice(s->n, m->coll->rank, m->coll->size, &r0, &r1);
    slice(r1 - r0, tid, T, &t.b0, &b1);
    t.b0 += r0;
    t.nb = b1 + r0 - t.b0;
    t.comb = collective_active(m->coll) ? rt->dcomb
                                        : t.mine + 4 * (size_t)rt->max_c; /* slots 2, 3 */

    memset(t.grad, 0, sizeof(float) * m->n_params);
    if (s->images)
        pixels_to_float(rt->x + (size_t)t.b0 * rt->in_size,
                        (const char *)s->images +
                            (size_t)t.b0 * rt->in_size * pixels_bytes(s->pixels),
                        s->pixels, (size_t)t.nb * rt->in_size);
    float **dbuf = rt->dbuf + 2 * tid;
    step_forward(s, &t);
    if (rt->graph) {
        struct rt_layer *lg = &rt->L[rt->logits_layer];
        step_loss(s, &t, lg->gbuf + (size_t)t.b0 * lg->out_size);
        step_backward_graph(s, &t, dbuf[0]);
    } else {
        step_loss(s, &t, dbuf[0]);
        step_backward(s, &t, dbuf);
    }
    step_gradient_sum(m, tid, T);
    if (tid == 0) /* frozen Conv2D/Dense computed gradients there; the block stays 0 */
        memset(m->grads + m->n_trainable, 0, sizeof(float) * (m->n_params - m->n_trainable));
    denormals_restore(csr);
}

static void prepare_flipped(struct model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->rt->L[i].wflip)
            conv2d_flip_weight(m->rt->L[i].wflip, wptr(m, i, 0), &m->rt->L[i].cg);
}

/* The loss into lm[0] and each of the head's metrics into lm[1 + i], summed
 * over the compute threads in thread order. */
static void thread_sums(const struct model *m, double *lm)
{
    const struct model_runtime *rt = m->rt;
    for (int i = 0; i <= rt->head.n_metrics; i++)
        lm[i] = 0.0;
    for (int t = 0; t < m->threads; t++) {
        lm[0] += rt->loss_sum[t];
        for (int i = 0; i < rt->head.n_metrics; i++)
            lm[1 + i] += rt->metric_sum[(size_t)t * METRICS_MAX + i];
    }
}

int model_n_metrics(const struct model *m)
{
    return m->rt->head.n_metrics;
}

static void run_step(struct model *m, int n, uint64_t seed, int64_t step, bool update_moving,
                     const void *images, enum pixels_type pixels, const uint8_t *labels,
                     double *ret_loss, double *ret_metrics)
{
    prepare_flipped(m);
    struct step_ctx s = {.m = m, .n = n, .seed = seed, .step = step,
                         .update_moving = update_moving, .images = images, .pixels = pixels,
                         .labels = labels, .weighted = labels && m->rt->cw};
    pool_run(m->rt->pool, step_thread, &s);
    /* lm: the loss, then each metric, summed over the threads in order */
    double lm[1 + METRICS_MAX];
    const int nm = m->rt->head.n_metrics;
    thread_sums(m, lm);
    if (collective_active(m->coll)) {
        (void)m->coll->sum_f64(m->coll->ctx, lm, 1 + (size_t)nm);
        (void)m->coll->sum_f32(m->coll->ctx, m->grads, m->n_trainable);
    }
    if (ret_loss)
        *ret_loss = lm[0] / n;
    if (ret_metrics)
        memcpy(ret_metrics, lm + 1, sizeof(double) * (size_t)nm);
}

/* The one-hot rows of labels (n) into y (n, K), label-smoothed by s as Keras'
 * categorical cross-entropy: y (1 - s) + s / K. */
static void fill_targets(float *y, const uint8_t *labels, int n, int K, double s)
{
    const float off = (float)(s / K), on = (float)(1.0 - s + s / K);
    for (int e = 0; e < n; e++)
        for (int j = 0; j < K; j++)
            y[(size_t)e * K + j] = j == labels[e] ? on : off;
}


int model_train_step(struct model *m, const void *images, enum pixels_type pixels,
                     const uint8_t *labels, int n, uint64_t seed, int64_t step, double *ret_loss,
                     double *ret_metrics)
{
    struct model_runtime *rt = m->rt;
    if (n < 1 || n > m->max_batch)
        return -EINVAL;
    for (int e = 0; e < n; e++)
        if (labels[e] >= m->classes)
            return -EINVAL;
    if (rt->head_softmax && rt->head.loss.kind != LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY)
        fill_targets(rt->y, labels, n, m->classes, rt->head.loss.label_smoothing);
    if (rt->cw)
        for (int e = 0; e < n; e++)
            rt->sw[e] = rt->cw[labels[e]];
    run_step(m, n, seed, step, true, images, pixels, labels, ret_loss, ret_metrics);
    return 0;
}

int model_train_step_targets(struct model *m, const void *images, enum pixels_type pixels,
                             const float *targets, int n, uint64_t seed, int64_t step,
                             double *ret_loss, double *ret_metrics)
{
    if (n < 1 || n > m->max_batch)
        return -EINVAL;
    memcpy(m->rt->y, targets, sizeof(float) * (size_t)n * m->classes);
    run_step(m, n, seed, step, true, images, pixels, NULL, ret_loss, ret_metrics);
    return 0;
}

int model_forward_backward_f32(struct model *m, const float *x, const float *y_onehot, int n,
                               uint64_t seed, int64_t step, bool update_moving_stats,
                               double *ret_loss, float *probs)
{
    struct model_runtime *rt = m->rt;
    if (n < 1 || n > m->max_batch)
        return -EINVAL;
    memcpy(rt->x, x, sizeof(float) * (size_t)n * rt->in_size);
    memcpy(rt->y, y_onehot, sizeof(float) * (size_t)n * m->classes);
    run_step(m, n, seed, step, update_moving_stats, NULL, PIXELS_FLOAT32, NULL, ret_loss, NULL);
    if (probs)
        memcpy(probs,
               rt->head_softmax || rt->head_sigmoid ? rt->probs : rt->L[rt->logits_layer].out,
               sizeof(float) * (size_t)n * m->classes);
    return 0;
}

/* ----------------------------------------------------------- inference */

struct infer_ctx {
    struct model *m;
    int n;
    const void *images;    /* (n, in_size) of pixels */
    enum pixels_type pixels;
    const uint8_t *labels; /* may be NULL */
    const float *targets;  /* float targets (n, classes), or NULL */
    float *probs;          /* (n, classes) or NULL */
};

/* The head on n examples: the logits (the model's output when the head has
 * no softmax or sigmoid) to outputs p (n, K); with labels, or float targets
 * t (n, K), their losses added to *lsum (in order) and each metric to
 * msum[i].  y (n, K) and losses (n) are scratch. */
static void head_infer(const struct model_runtime *rt, float *p, const float *logits,
                       const uint8_t *labels, const float *t, float *y, float *losses, int n,
                       int K, double *lsum, double *msum)
{
    const struct model_head *h = &rt->head;
    const bool scored = labels || t;
    if (labels)
        t = NULL;
    if (rt->head_sigmoid) {
        if (scored)
            sigmoid_head(h, p, losses, NULL, logits, t, labels, NULL, 1.0f, n, K);
        else
            activation_forward(p, logits, (size_t)n, K, ACTIVATION_KIND_SIGMOID);
    } else if (!rt->head_softmax) {
        if (p != logits)
            memcpy(p, logits, sizeof(float) * (size_t)n * K);
        if (scored)
            loss_forward(&h->loss, losses, logits, t, labels, n, K);
    } else if (!scored) {
        activation_forward(p, logits, (size_t)n, K, ACTIVATION_KIND_SOFTMAX);
    } else if (labels && h->loss.kind == LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY) {
        softmax_sparse_crossentropy_forward(p, losses, logits, labels, n, K);
    } else {
        if (labels)
            fill_targets(y, labels, n, K, h->loss.label_smoothing);
        softmax_crossentropy_forward(p, losses, logits, labels ? y : t, n, K);
    }
    if (!scored)
        return;
    for (int i = 0; i < h->n_metrics; i++)
        msum[i] += metric_sum(&h->metrics[i], rt->head_softmax || rt->head_sigmoid ? p : logits,
                              t, labels, n, K);
    for (int e = 0; e < n; e++)
        *lsum += losses[e];
}

/* Forward of nb examples through layers i0..i1 in inference mode; x is
 * overwritten.  Returns the output (in one of the two buffers). */
static float *infer_layers(struct model *m, int i0, int i1, float *x, float *other, int nb,
                           float *scratch)
{
    struct model_runtime *rt = m->rt;
    float *cur = x, *nxt = other;
    int pooled = -1; /* the MaxPooling2D layer the last Conv2D computed */
    for (int i = i0; i <= i1; i++) {
        struct rt_layer *r = &rt->L[i];
        const struct layer_config *c = &m->layers[i].cfg;
        if (r->alias || i == pooled)
            continue;
        bool swap = true;
        if (c->kind == LAYER_KIND_CONV2D && (r->eval_wt || r->post_bn)) {
            const float *post = r->post_bn ? r->eval_post : NULL;
            bool pool = r->post_pool && r->post_pool <= i1 && conv2d_pool_fusable(&r->cg, r->act);
            conv2d_forward_post(nxt, scratch, cur, wptr(m, i, 0), r->eval_wt,
                                c->use_bias ? wptr(m, i, 1) : NULL, r->act, post,
                                post ? post + r->cg.k : NULL, pool, nb, &r->cg);
            if (pool)
                pooled = r->post_pool;
        } else if (c->kind == LAYER_KIND_DENSE) {
            dense_forward_infer(nxt, cur, wptr(m, i, 0), c->use_bias ? wptr(m, i, 1) : NULL,
                                r->act, nb * r->rows, r->ch, c->units);
        } else if (r->bn_in_prev) {
            swap = false; /* done by the Conv2D's store */
        } else if (c->kind == LAYER_KIND_BATCH_NORMALIZATION) {
            batchnorm_forward(cur, cur, wptr(m, i, 2), wptr(m, i, 3), wptr(m, i, 0),
                              wptr(m, i, 1), c->epsilon, (size_t)nb * r->rows, r->ch);
            swap = false;
        } else if (c->kind == LAYER_KIND_ACTIVATION) {
            layer_forward(m, i, cur, cur, nb, scratch, NULL, 0);
            swap = false;
        } else if (c->kind == LAYER_KIND_RANDOM_CROP) {
            random_crop_run(m, i, nxt, cur, nb, false, 0, 0, false);
        } else if (!layer_forward(m, i, nxt, cur, nb, scratch, NULL, 0)) {
            swap = false; /* Dropout and augmentation are the identity at inference,
                             Flatten an alias */
        }
        if (swap) {
            float *t = cur;
            cur = nxt;
            nxt = t;
        }
    }
    return cur;
}

/* Once per inference call, before the threads run: each Conv2D's weight
 * transform and the scale and shift of the BN fused into its store, with
 * batchnorm_forward's arithmetic (so the fused output is bit-identical). */
static void infer_prepare(struct model *m)
{
    struct model_runtime *rt = m->rt;
    for (int i = 0; i < m->n_layers; i++) {
        struct rt_layer *r = &rt->L[i];
        if (r->eval_wt)
            conv2d_weight_transform(r->eval_wt, wptr(m, i, 0), &r->cg);
        if (!r->post_bn)
            continue;
        const int b = r->post_bn, K = r->cg.k;
        const float eps = m->layers[b].cfg.epsilon;
        const float *gamma = wptr(m, b, 0), *beta = wptr(m, b, 1);
        const float *mean = wptr(m, b, 2), *var = wptr(m, b, 3);
        for (int k = 0; k < K; k++) {
            float sc = (gamma ? gamma[k] : 1.0f) / sqrtf(var[k] + eps);
            r->eval_post[k] = sc;
            r->eval_post[K + k] = (beta ? beta[k] : 0.0f) - mean[k] * sc;
        }
    }
}

static void infer_thread(void *arg, int tid, int T)
{
    unsigned csr = denormals_off();
    struct infer_ctx *s = arg;
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const int K = m->classes;
    int b0, b1;
    slice(s->n, tid, T, &b0, &b1);
    float *HA = rt->ebuf[tid], *HB = HA + rt->head_floats;
    float *TA = HB + rt->head_floats, *TB = TA + rt->tail_floats;
    const int head_last = rt->flat_from - 1;
    const size_t flat = head_last >= 0 ? rt->L[head_last].out_size : rt->in_size;
    double lsum = 0.0, msum[METRICS_MAX] = {0};
    for (int t0 = b0; t0 < b1; t0 += EVAL_TAIL) {
        int nt = b1 - t0 < EVAL_TAIL ? b1 - t0 : EVAL_TAIL;
        /* spatial layers in small chunks (cache-sized), outputs gathered in TA */
        for (int e0 = t0; e0 < t0 + nt; e0 += EVAL_HEAD) {
            int nb = t0 + nt - e0 < EVAL_HEAD ? t0 + nt - e0 : EVAL_HEAD;
            size_t cnt = (size_t)nb * rt->in_size;
            float *x = head_last >= 0 ? HA : TA + (size_t)(e0 - t0) * flat;
            pixels_to_float(x, (const char *)s->images + (size_t)e0 * rt->in_size *
                                                             pixels_bytes(s->pixels),
                            s->pixels, cnt);
            if (head_last >= 0) {
                float *o = infer_layers(m, 0, head_last, HA, HB, nb, rt->scratch[tid]);
                memcpy(TA + (size_t)(e0 - t0) * flat, o, sizeof(float) * nb * flat);
            }
        }
        float *logits = infer_layers(m, rt->flat_from, rt->logits_layer, TA, TB, nt,
                                     rt->scratch[tid]);
        float *free_buf = logits == TA ? TB : TA;
        float *p = s->probs ? s->probs + (size_t)t0 * K : free_buf;
        const uint8_t *labels = s->labels ? s->labels + t0 : NULL;
        const float *targets = s->targets ? s->targets + (size_t)t0 * K : NULL;
        float *y = free_buf + (size_t)nt * K, *losses = y + (size_t)nt * K;
        head_infer(rt, p, logits, labels, targets, y, losses, nt, K, &lsum, msum);
    }
    rt->loss_sum[tid] = lsum;
    memcpy(rt->metric_sum + (size_t)tid * METRICS_MAX, msum, sizeof(msum));
    denormals_restore(csr);
}

/* One thread's share of a graph inference chunk: the forward in inference
 * mode over the activation arena, then softmax (and the loss). */
static void graph_infer_thread(void *arg, int tid, int T)
{
    unsigned csr = denormals_off();
    struct step_ctx *s = arg;
    struct model *m = s->m;
    struct model_runtime *rt = m->rt;
    const int K = m->classes;
    struct step_slice t = {.tid = tid, .T = T, .scratch = rt->scratch[tid],
                           .mine = rt->part[tid]};
    int b1;
    slice(s->n, tid, T, &t.b0, &b1);
    t.nb = b1 - t.b0;
    t.comb = t.mine + 4 * (size_t)rt->max_c;
    pixels_to_float(rt->x + (size_t)t.b0 * rt->in_size,
                    (const char *)s->images + (size_t)t.b0 * rt->in_size * pixels_bytes(s->pixels),
                    s->pixels, (size_t)t.nb * rt->in_size);
    step_forward(s, &t);
    const float *logits = rt->L[rt->logits_layer].out + (size_t)t.b0 * K;
    float *p = (s->probs ? s->probs : rt->probs) + (size_t)t.b0 * K;
    double lsum = 0.0, msum[METRICS_MAX] = {0};
    head_infer(rt, p, logits, s->labels ? s->labels + t.b0 : NULL,
               s->targets ? s->targets + (size_t)t.b0 * K : NULL, rt->y + (size_t)t.b0 * K,
               rt->losses + t.b0, t.nb, K, &lsum, msum);
    rt->loss_sum[tid] = lsum;
    memcpy(rt->metric_sum + (size_t)tid * METRICS_MAX, msum, sizeof(msum));
    denormals_restore(csr);
}

/* Inference of a functional model, max_batch examples at a time. */
static void graph_infer(struct model *m, const void *images, enum pixels_type pixels,
                        const uint8_t *labels, const float *targets, float *probs, int n,
                        double *ret_loss_sum, double *ret_metrics)
{
    struct model_runtime *rt = m->rt;
    double lm[1 + METRICS_MAX] = {0};
    for (int c0 = 0; c0 < n; c0 += m->max_batch) {
        int nc = n - c0 < m->max_batch ? n - c0 : m->max_batch;
        struct step_ctx s = {.m = m, .n = nc, .inference = true, .pixels = pixels,
                             .images = (const char *)images +
                                       (size_t)c0 * rt->in_size * pixels_bytes(pixels),
                             .labels = labels ? labels + c0 : NULL,
                             .targets = targets ? targets + (size_t)c0 * m->classes : NULL,
                             .probs = probs ? probs + (size_t)c0 * m->classes : NULL};
        pool_run(rt->pool, graph_infer_thread, &s);
        for (int t = 0; t < m->threads; t++) { /* in chunk, then thread order */
            lm[0] += rt->loss_sum[t];
            for (int i = 0; i < rt->head.n_metrics; i++)
                lm[1 + i] += rt->metric_sum[(size_t)t * METRICS_MAX + i];
        }
    }
    if (ret_loss_sum)
        *ret_loss_sum = lm[0];
    if (ret_metrics)
        memcpy(ret_metrics, lm + 1, sizeof(double) * (size_t)rt->head.n_metrics);
}

/* model_evaluate with labels or float targets (the other NULL). */
static int evaluate_any(struct model *m, const void *images, enum pixels_type pixels,
                        const uint8_t *labels, const float *targets, int n,
                        double *ret_loss_sum, double *ret_metrics)
{
    if (n < 0)
        return -EINVAL;
    for (int e = 0; labels && e < n; e++)
        if (labels[e] >= m->classes)
            return -EINVAL;
    if (m->rt->graph) {
        graph_infer(m, images, pixels, labels, targets, NULL, n, ret_loss_sum, ret_metrics);
        return 0;
    }
    struct infer_ctx s = {.m = m, .n = n, .images = images, .pixels = pixels, .labels = labels,
                          .targets = targets};
    infer_prepare(m);
    pool_run(m->rt->pool, infer_thread, &s);
    double lm[1 + METRICS_MAX];
    thread_sums(m, lm);
    if (ret_loss_sum)
        *ret_loss_sum = lm[0];
    if (ret_metrics)
        memcpy(ret_metrics, lm + 1, sizeof(double) * (size_t)m->rt->head.n_metrics);
    return 0;
}

int model_evaluate(struct model *m, const void *images, enum pixels_type pixels,
                   const uint8_t *labels, int n, double *ret_loss_sum, double *ret_metrics)
{
    return evaluate_any(m, images, pixels, labels, NULL, n, ret_loss_sum, ret_metrics);
}

int model_evaluate_targets(struct model *m, const void *images, enum pixels_type pixels,
                           const float *targets, int n, double *ret_loss_sum,
                           double *ret_metrics)
{
    return evaluate_any(m, images, pixels, NULL, targets, n, ret_loss_sum, ret_metrics);
}

int model_predict_f32(struct model *m, const float *x, int n, float *probs)
{
    if (n < 0)
        return -EINVAL;
    if (m->rt->graph) {
        graph_infer(m, x, PIXELS_FLOAT32, NULL, NULL, probs, n, NULL, NULL);
        return 0;
    }
    struct infer_ctx s = {.m = m, .n = n, .images = x, .pixels = PIXELS_FLOAT32, .probs = probs};
    infer_prepare(m);
    pool_run(m->rt->pool, infer_thread, &s);
    return 0;
}
