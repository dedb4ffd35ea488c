/* test_fit.c - the training loop: callback order and counts, steps limits,
 * the partial last batch, the stop flag, callbacks that stop or abort,
 * bit-identical determinism with 2 compute threads, resume at initial_epoch
 * giving the same weights as an uninterrupted run, and two ranks of a
 * data-parallel job (collective.h, here over two threads of this process)
 * that end identical, or fail naming the rank whose weights went apart.
 *
 * A small real model (Conv2D, BatchNormalization, MaxPooling2D, Dropout,
 * Flatten, Dense softmax) on synthetic 8x8x1 images whose class is the
 * position of a bright square, so that training visibly learns. */
#include "fit.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "collective.h"

#define H 8
#define W 8
#define CLASSES 4

static struct layer_config toy_layers[] = {
    {.kind = LAYER_KIND_CONV2D, .name = "conv2d", .activation = ACTIVATION_KIND_RELU,
     .filters = 4, .kernel_size = {3, 3}, .strides = {1, 1}, .padding = PADDING_KIND_SAME,
     .use_bias = true},
    {.kind = LAYER_KIND_BATCH_NORMALIZATION, .name = "batch_normalization",
     .momentum = 0.99f, .epsilon = 1e-3f},
    {.kind = LAYER_KIND_MAX_POOLING2D, .name = "max_pooling2d", .pool_size = {2, 2},
     .strides = {2, 2}, .padding = PADDING_KIND_VALID},
    {.kind = LAYER_KIND_DROPOUT, .name = "dropout", .rate = 0.25f},
    {.kind = LAYER_KIND_FLATTEN, .name = "flatten"},
    {.kind = LAYER_KIND_DENSE, .name = "dense", .activation = ACTIVATION_KIND_SOFTMAX,
     .units = CLASSES, .use_bias = true},
};

static struct model *toy_model(int max_batch, uint64_t seed)
{
    struct model_spec spec = {
        .name = "sequential",
        .input_shape = {H, W, 1},
        .n_layers = (int)(sizeof(toy_layers) / sizeof(toy_layers[0])),
        .layers = toy_layers,
    };
    struct model *m = NULL;
    struct diag d = {0};
    int r = model_create(&m, &spec, max_batch, 2, &d);
    CHECK_MSG(r == 0, "model_create: %d %s %s", r, d.field, d.message);
    if (r == 0)
        model_init_weights(m, seed);
    return r == 0 ? m : NULL;
}

/* n examples; class k = a bright 3x3 square in quadrant k, plus noise. */
static void toy_data(struct dataset *ds, int n, uint32_t salt)
{
    memset(ds, 0, sizeof(*ds));
    ds->n = n;
    ds->h = H;
    ds->w = W;
    ds->c = 1;
    ds->classes = CLASSES;
    ds->images = malloc((size_t)n * H * W);
    ds->labels = malloc((size_t)n);
    uint32_t x = 2463534242u ^ salt;
    for (int i = 0; i < n; i++) {
        int k = (int)((uint32_t)i * 2654435761u >> 7) % CLASSES;
        ds->labels[i] = (uint8_t)k;
        int oy = (k / 2) * 4, ox = (k % 2) * 4;
        for (int p = 0; p < H * W; p++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            int y = p / W, xx = p % W;
            int v = (int)(x % 90);
            if (y >= oy && y < oy + 3 && xx >= ox && xx < ox + 3)
                v += 150;
            ds->images[(size_t)i * H * W + (size_t)p] = (uint8_t)v;
        }
    }
}

static struct optimizer *sgd(const struct model *m)
{
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.learning_rate = 0.05;
    c.decay = 0.01;
    c.momentum = 0.9;
    c.nesterov = true;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, m, NULL), 0);
    return opt;
}

/* --- a recording callback set -------------------------------------------- */

#define EV_MAX 512

struct rec {
    char ev[EV_MAX];   /* 'B' train_begin, 's' epoch_begin, 'b' batch_end, 'e' epoch_end, 'E' train_end */
    int n_ev;
    int train_begin, batch_end, epoch_end, train_end, end_status;
    int batch_ret_at_epoch, batch_ret_at_batch, batch_ret; /* return batch_ret there */
    int epoch_ret_at, epoch_ret;
    int begin_ret_at, begin_ret;   /* epoch_begin returns begin_ret at that epoch */
    int begin_batch;               /* p->batch seen by the last epoch_begin */
    int stop_at_epoch, stop_at_batch;
    atomic_int *stop;
    int bad;                  /* inconsistencies seen inside callbacks */
    int last_epoch, last_batch, last_batches;
    int64_t last_iterations;
    double last_loss, last_acc, val_loss, val_acc, last_lr;
    int n_train, batch_size;
    struct fit_progress end_p;
};

static void rec_push(struct rec *r, char c)
{
    if (r->n_ev < EV_MAX - 1)
        r->ev[r->n_ev++] = c;
}

static int rec_train_begin(void *ctx, const struct fit_progress *p)
{
    struct rec *r = ctx;
    rec_push(r, 'B');
    r->train_begin++;
    if (p->batch != 0)
        r->bad++;
    return 0;
}

static int rec_epoch_begin(void *ctx, const struct fit_progress *p)
{
    struct rec *r = ctx;
    rec_push(r, 's');
    r->begin_batch = p->batch;
    if (p->epoch < 1 || p->epoch > p->epochs)
        r->bad++;
    return p->epoch == r->begin_ret_at ? r->begin_ret : 0;
}

static int rec_batch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    struct rec *r = ctx;
    rec_push(r, 'b');
    r->batch_end++;
    double loss = -1, acc = -1;
    if (!logs_get(l, "loss", &loss) || !logs_get(l, "accuracy", &acc) || l->n != 2)
        r->bad++;
    /* batch numbers run 1..batches within the epoch, iterations grow by one per batch */
    if (p->epoch == r->last_epoch ? p->batch != r->last_batch + 1 : p->batch != 1)
        r->bad++;
    if (p->iterations != r->last_iterations + 1)
        r->bad++;
    /* accuracy is correct/seen: times the examples seen so far it is an integer */
    int seen = p->batch * r->batch_size;
    if (seen > r->n_train)
        seen = r->n_train;
    double k = acc * seen;
    if (fabs(k - floor(k + 0.5)) > 1e-6 || acc < 0 || acc > 1 || !(loss > 0))
        r->bad++;
    if (!(p->lr > 0) || p->images_per_s < 0 || p->epoch_seconds < 0)
        r->bad++;
    r->last_epoch = p->epoch;
    r->last_batch = p->batch;
    r->last_batches = p->batches;
    r->last_iterations = p->iterations;
    r->last_loss = loss;
    r->last_acc = acc;
    r->last_lr = p->lr;
    if (r->stop && p->epoch == r->stop_at_epoch && p->batch == r->stop_at_batch)
        atomic_store(r->stop, 1);
    if (p->epoch == r->batch_ret_at_epoch && p->batch == r->batch_ret_at_batch)
        return r->batch_ret;
    return 0;
}

static int rec_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    struct rec *r = ctx;
    rec_push(r, 'e');
    r->epoch_end++;
    double loss = -1, acc = -1;
    if (!logs_get(l, "loss", &loss) || !logs_get(l, "accuracy", &acc))
        r->bad++;
    /* the epoch's train logs are those of its last batch */
    if (loss != r->last_loss || acc != r->last_acc || p->epoch != r->last_epoch)
        r->bad++;
    r->val_loss = r->val_acc = -1;
    logs_get(l, "val_loss", &r->val_loss);
    logs_get(l, "val_acc", &r->val_acc); /* alias of val_accuracy */
    if (p->epoch == r->epoch_ret_at)
        return r->epoch_ret;
    return 0;
}

static void rec_train_end(void *ctx, const struct fit_progress *p, int status)
{
    struct rec *r = ctx;
    rec_push(r, 'E');
    r->train_end++;
    r->end_status = status;
    r->end_p = *p;
}

static struct fit_callbacks rec_callbacks(struct rec *r)
{
    struct fit_callbacks cb = {
        .ctx = r,
        .train_begin = rec_train_begin,
        .epoch_begin = rec_epoch_begin,
        .batch_end = rec_batch_end,
        .epoch_end = rec_epoch_end,
        .train_end = rec_train_end,
    };
    return cb;
}

static void rec_init(struct rec *r, const struct dataset *train, int batch_size,
                     int64_t iterations)
{
    memset(r, 0, sizeof(*r));
    r->n_train = train->n;
    r->batch_size = batch_size;
    r->last_iterations = iterations;
}

/* --- tests ---------------------------------------------------------------- */

static void test_callbacks_order_and_partial_batch(void)
{
    struct dataset tr, va;
    toy_data(&tr, 100, 1);
    toy_data(&va, 40, 2);
    struct model *m = toy_model(16, 3);
    struct optimizer *opt = m ? sgd(m) : NULL;
    if (!opt) {
        model_free(m);
        return;
    }
    struct fit_options o;
    fit_options_default(&o);
    CHECK_INT_EQ(o.batch_size, 32);
    CHECK(o.shuffle);
    o.epochs = 3;
    o.batch_size = 16; /* 100 = 6 * 16 + 4: the last batch is partial */
    o.seed = 5;
    struct rec r;
    rec_init(&r, &tr, o.batch_size, 0);
    struct fit_callbacks cb = rec_callbacks(&r);
    struct diag d = {0};
    int rc = fit(m, opt, &tr, &va, &o, &cb, NULL, &d);
    CHECK_MSG(rc == 0, "fit: %d %s", rc, d.message);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "B" "sbbbbbbbe" "sbbbbbbbe" "sbbbbbbbe" "E");
    CHECK_INT_EQ(r.bad, 0);
    CHECK_INT_EQ(r.last_batches, 7);
    CHECK_INT_EQ(opt->iterations, 21);
    CHECK_INT_EQ(r.end_status, 0);
    CHECK_INT_EQ(r.end_p.epoch, 3);
    /* lr seen by the last batch: the one used by step 21 (iterations 20 before it) */
    CHECK_CLOSE(r.last_lr, 0.05 / (1 + 0.01 * 20), 1e-12, 0);
    /* validation logs are fit_evaluate on the final weights (all 40 examples) */
    double vl = -1, vacc = -1;
    CHECK_INT_EQ(fit_evaluate(m, &va, 16, 0, &vl, &vacc, &d), 0);
    CHECK_CLOSE(r.val_loss, vl, 1e-12, 0);
    CHECK_CLOSE(r.val_acc, vacc, 1e-12, 0);
    double k = vacc * 40;
    CHECK(fabs(k - floor(k + 0.5)) < 1e-9);
    /* the task is learnable: after 21 steps the model does better than chance */
    fprintf(stderr, "  toy: loss %.4f acc %.3f val_loss %.4f val_acc %.3f\n", r.last_loss,
            r.last_acc, r.val_loss, r.val_acc);
    CHECK(r.val_acc > 0.5);
    /* a batch size the model cannot take is an error, not a crash */
    o.batch_size = 17;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, NULL, NULL, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/batch_size");
    CHECK_INT_EQ(fit_evaluate(m, &va, 17, 0, &vl, &vacc, &d), -EINVAL);
    optimizer_free(opt);
    model_free(m);
    dataset_free(&tr);
    dataset_free(&va);
}

static void test_steps_limits(void)
{
    struct dataset tr, va;
    toy_data(&tr, 100, 3);
    toy_data(&va, 40, 4);
    struct model *m = toy_model(16, 4);
    struct optimizer *opt = m ? sgd(m) : NULL;
    if (!opt) {
        model_free(m);
        return;
    }
    struct fit_options o;
    fit_options_default(&o);
    o.epochs = 2;
    o.batch_size = 16;
    o.steps_per_epoch = 3;
    o.validation_steps = 2;
    struct rec r;
    rec_init(&r, &tr, o.batch_size, 0);
    struct fit_callbacks cb = rec_callbacks(&r);
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, NULL, NULL), 0);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbbbesbbbeE");
    CHECK_INT_EQ(r.last_batches, 3);
    CHECK_INT_EQ(opt->iterations, 6);
    CHECK_INT_EQ(r.bad, 0);
    /* validation over the first 2 batches only: 32 of the 40 examples */
    double vl, vacc, vl_all, vacc_all;
    CHECK_INT_EQ(fit_evaluate(m, &va, 16, 2, &vl, &vacc, NULL), 0);
    CHECK_INT_EQ(fit_evaluate(m, &va, 16, 0, &vl_all, &vacc_all, NULL), 0);
    CHECK_CLOSE(r.val_loss, vl, 1e-12, 0);
    CHECK_CLOSE(r.val_acc, vacc, 1e-12, 0);
    double k = vacc * 32;
    CHECK(fabs(k - floor(k + 0.5)) < 1e-9);
    CHECK(vl != vl_all);

    /* a training set smaller than one batch: one partial batch per epoch; no val */
    struct dataset tiny;
    toy_data(&tiny, 5, 9);
    o.steps_per_epoch = 0;
    o.epochs = 4;
    o.initial_epoch = 2;
    rec_init(&r, &tiny, o.batch_size, opt->iterations);
    CHECK_INT_EQ(fit(m, opt, &tiny, NULL, &o, &cb, NULL, NULL), 0);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbesbeE");
    CHECK_INT_EQ(r.bad, 0);
    CHECK_INT_EQ(r.last_epoch, 4);
    CHECK(r.val_loss == -1);
    CHECK_INT_EQ(opt->iterations, 8);
    dataset_free(&tiny);
    optimizer_free(opt);
    model_free(m);
    dataset_free(&tr);
    dataset_free(&va);
}

static void test_stop_flag_and_callback_results(void)
{
    struct dataset tr, va;
    toy_data(&tr, 100, 5);
    toy_data(&va, 20, 6);
    struct model *m = toy_model(16, 5);
    struct optimizer *opt = m ? sgd(m) : NULL;
    if (!opt) {
        model_free(m);
        return;
    }
    struct fit_options o;
    fit_options_default(&o);
    o.epochs = 3;
    o.batch_size = 16;
    atomic_int stop = 0;
    struct rec r;
    struct fit_callbacks cb = rec_callbacks(&r);
    struct diag d = {0};

    /* stop flag raised during batch 3 of epoch 2: that batch finishes, no epoch_end */
    rec_init(&r, &tr, o.batch_size, 0);
    r.stop = &stop;
    r.stop_at_epoch = 2;
    r.stop_at_batch = 3;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, &d), -ECANCELED);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "B" "sbbbbbbbe" "sbbb" "E");
    CHECK_INT_EQ(r.end_status, -ECANCELED);
    CHECK_INT_EQ(opt->iterations, 10);
    CHECK_INT_EQ(r.bad, 0);

    /* a raised flag before fit starts: no batch runs */
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, NULL), -ECANCELED);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BE");
    CHECK_INT_EQ(opt->iterations, 10);
    atomic_store(&stop, 0);

    /* batch_end returns 1 at batch 2 of epoch 1: the epoch ends there (validation and
     * epoch_end still run, as with Keras' stop_training), then training stops */
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.batch_ret_at_epoch = 1;
    r.batch_ret_at_batch = 2;
    r.batch_ret = 1;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, NULL), 0);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbbeE");
    CHECK_INT_EQ(r.end_status, 1);
    CHECK(r.val_loss > 0);
    CHECK_INT_EQ(opt->iterations, 12);

    /* epoch_end returns 1 at epoch 2 (EarlyStopping): 2 of 3 epochs */
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.epoch_ret_at = 2;
    r.epoch_ret = 1;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, NULL), 0);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "B" "sbbbbbbbe" "sbbbbbbbe" "E");
    CHECK_INT_EQ(r.end_status, 1);

    /* a negative result aborts with that error */
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.batch_ret_at_epoch = 1;
    r.batch_ret_at_batch = 4;
    r.batch_ret = -EIO;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, &d), -EIO);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbbbbE");
    CHECK_INT_EQ(r.end_status, -EIO);
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.epoch_ret_at = 1;
    r.epoch_ret = -ENOSPC;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, &d), -ENOSPC);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbbbbbbbeE");
    CHECK_INT_EQ(r.end_status, -ENOSPC);

    /* epoch_begin returns 1 at epoch 2: no batch of it runs; an error aborts */
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.begin_ret_at = 2;
    r.begin_ret = 1;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, NULL), 0);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsbbbbbbbesE");
    CHECK_INT_EQ(r.end_status, 1);
    rec_init(&r, &tr, o.batch_size, opt->iterations);
    r.begin_ret_at = 1;
    r.begin_ret = -EIO;
    CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, &stop, &d), -EIO);
    r.ev[r.n_ev] = '\0';
    CHECK_STR_EQ(r.ev, "BsE");
    optimizer_free(opt);
    model_free(m);
    dataset_free(&tr);
    dataset_free(&va);
}

static int fit_toy(struct model *m, struct optimizer *opt, const struct dataset *tr,
                   const struct dataset *va, int epochs, int initial_epoch, uint64_t seed)
{
    struct fit_options o;
    fit_options_default(&o);
    o.epochs = epochs;
    o.initial_epoch = initial_epoch;
    o.batch_size = 16;
    o.seed = seed;
    struct diag d = {0};
    int r = fit(m, opt, tr, va, &o, NULL, NULL, &d);
    CHECK_MSG(r == 0, "fit: %d %s", r, d.message);
    return r;
}

/* Run fit on a fresh toy model (weights from seed 31) and return it. */
static struct model *fit_steps(const struct dataset *tr, int epochs, int initial_epoch,
                               int steps, struct model *m, struct optimizer **opt)
{
    if (!m) {
        m = toy_model(16, 31);
        *opt = m ? sgd(m) : NULL;
    }
    if (!m || !*opt)
        return m;
    struct fit_options o;
    fit_options_default(&o);
    o.epochs = epochs;
    o.initial_epoch = initial_epoch;
    o.batch_size = 16;
    o.steps_per_epoch = steps;
    o.seed = 77;
    struct diag d = {0};
    int r = fit(m, *opt, tr, NULL, &o, NULL, NULL, &d);
    CHECK_MSG(r == 0, "fit: %d %s", r, d.message);
    return m;
}

static bool same_params(const struct model *a, const struct model *b)
{
    return a && b && memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0;
}

/* steps_per_epoch draws from one stream of shuffled passes (7 batches each
 * here), as tf.keras does with arrays: how the steps are cut into epochs does
 * not change which batches are trained on, or in which order. */
static void test_steps_stream(void)
{
    struct dataset tr;
    toy_data(&tr, 100, 11);
    struct optimizer *oa = NULL, *ob = NULL, *oc = NULL, *od = NULL, *oe = NULL, *of = NULL,
                     *og = NULL;
    struct model *a = fit_steps(&tr, 1, 0, 6, NULL, &oa);  /* batches 0..5 of pass 0 */
    struct model *b = fit_steps(&tr, 2, 0, 3, NULL, &ob);  /* 0..2, then 3..5 */
    CHECK(same_params(a, b));
    struct model *c = fit_steps(&tr, 2, 0, 0, NULL, &oc);  /* passes 0 and 1 */
    struct model *d = fit_steps(&tr, 1, 0, 14, NULL, &od); /* the same 14 batches */
    CHECK(same_params(c, d));
    CHECK(!same_params(a, c));
    /* epochs that cross passes mid-epoch: 5 + 5 + 5 = 7 + 7 + 1 */
    struct model *e = fit_steps(&tr, 3, 0, 5, NULL, &oe);
    struct model *f = fit_steps(&tr, 1, 0, 15, NULL, &of);
    CHECK(same_params(e, f));
    /* and resuming at epoch 2 continues at stream batch 10 */
    struct model *g = fit_steps(&tr, 2, 0, 5, NULL, &og);
    g = fit_steps(&tr, 3, 2, 5, g, &og);
    CHECK(same_params(e, g));
    CHECK(og && oe && og->iterations == 15 && oe->iterations == 15);
    /* a different split of the same number of steps that repeats the start of
     * a pass instead gives other weights (the test can tell) */
    struct optimizer *oh = NULL;
    struct model *h = fit_steps(&tr, 1, 0, 3, NULL, &oh); /* batches 0..2 of pass 0 */
    h = fit_steps(&tr, 1, 0, 3, h, &oh);                  /* 0..2 again */
    CHECK(!same_params(a, h));
    struct model *ms[] = {a, b, c, d, e, f, g, h};
    struct optimizer *os[] = {oa, ob, oc, od, oe, of, og, oh};
    for (int i = 0; i < 8; i++) {
        optimizer_free(os[i]);
        model_free(ms[i]);
    }
    dataset_free(&tr);
}

static void test_determinism(void)
{
    struct dataset tr, va;
    toy_data(&tr, 90, 7);
    toy_data(&va, 20, 8);
    struct model *a = toy_model(16, 11), *b = toy_model(16, 11), *c = toy_model(16, 11);
    struct optimizer *oa = a ? sgd(a) : NULL, *ob = b ? sgd(b) : NULL, *oc = c ? sgd(c) : NULL;
    if (oa && ob && oc) {
        CHECK_INT_EQ(a->threads, 2);
        CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
        fit_toy(a, oa, &tr, &va, 2, 0, 42);
        fit_toy(b, ob, &tr, &va, 2, 0, 42);
        fit_toy(c, oc, &tr, &va, 2, 0, 43); /* another shuffle and dropout seed */
        CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
        CHECK(memcmp(oa->slots[0], ob->slots[0], a->n_params * sizeof(float)) == 0);
        CHECK(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0);
        /* BN moving statistics moved during training (they are in params too) */
        const struct weight *mv = model_find_weight(a, "batch_normalization", "moving_mean");
        CHECK(mv != NULL);
        if (mv) {
            double s = 0;
            for (size_t i = 0; i < mv->size; i++)
                s += fabs(a->params[mv->offset + i]);
            CHECK(s > 0);
        }
    }
    optimizer_free(oa);
    optimizer_free(ob);
    optimizer_free(oc);
    model_free(a);
    model_free(b);
    model_free(c);
    dataset_free(&tr);
    dataset_free(&va);
}

/* ds as float32 pixels holding what the model is fed for its uint8 ones
 * (x * (1.0f / 255.0f)): a float32 data set of those values trains and
 * evaluates bit-identically, also through validation_split and truncate,
 * whose views and copies count 4 bytes a value. */
static void float32_copy(struct dataset *ret, const struct dataset *ds)
{
    *ret = *ds;
    size_t count = (size_t)ds->n * ds->h * ds->w * ds->c;
    float *x = malloc(count * sizeof(float));
    ret->labels = malloc((size_t)ds->n);
    if (x)
        pixels_to_float(x, ds->images, PIXELS_UINT8, count);
    if (ret->labels)
        memcpy(ret->labels, ds->labels, (size_t)ds->n);
    ret->images = (uint8_t *)x;
    ret->pixels = PIXELS_FLOAT32;
}

static void test_float32_pixels(void)
{
    struct dataset tr8, tr32, va8, va32;
    toy_data(&tr8, 110, 21);
    float32_copy(&tr32, &tr8);
    CHECK(tr32.images && tr32.labels);
    CHECK_INT_EQ((int)dataset_example_bytes(&tr32), 4 * H * W);
    CHECK_INT_EQ(dataset_split_tail(&tr8, &va8, 0.2, NULL), 0);
    CHECK_INT_EQ(dataset_split_tail(&tr32, &va32, 0.2, NULL), 0);
    dataset_truncate(&tr8, 80);
    dataset_truncate(&tr32, 80);
    CHECK(memcmp(va32.images, tr32.images, 4) != 0);
    struct model *a = toy_model(16, 5), *b = toy_model(16, 5);
    struct optimizer *oa = a ? sgd(a) : NULL, *ob = b ? sgd(b) : NULL;
    if (oa && ob) {
        fit_toy(a, oa, &tr8, &va8, 2, 0, 9);
        fit_toy(b, ob, &tr32, &va32, 2, 0, 9);
        CHECK(same_params(a, b));
        double l8 = 0, a8 = 0, l32 = 1, a32 = 1;
        CHECK_INT_EQ(fit_evaluate(a, &va8, 7, 0, &l8, &a8, NULL), 0);
        CHECK_INT_EQ(fit_evaluate(b, &va32, 7, 0, &l32, &a32, NULL), 0);
        CHECK(l8 == l32 && a8 == a32);
        /* the same values unscaled are another input: other weights */
        for (size_t i = 0; i < (size_t)tr32.n * H * W; i++)
            ((float *)tr32.images)[i] = tr8.images[i];
        fit_toy(b, ob, &tr32, &va32, 3, 2, 9);
        fit_toy(a, oa, &tr8, &va8, 3, 2, 9);
        CHECK(!same_params(a, b));
    }
    optimizer_free(oa);
    optimizer_free(ob);
    model_free(a);
    model_free(b);
    dataset_free(&tr8);
    dataset_free(&tr32);
    dataset_free(&va8);
    dataset_free(&va32);
}

static struct optimizer *adam(const struct model *m)
{
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    c.decay = 0.01;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, m, NULL), 0);
    return opt;
}

/* fit 3 epochs straight vs 2 epochs, then a fresh model + optimizer given the
 * weights (with BN statistics), the slots and iterations, continued with
 * initial_epoch = 2: bit-identical weights and slots. */
static void resume_with(struct optimizer *(*make)(const struct model *))
{
    struct dataset tr, va;
    toy_data(&tr, 90, 9);
    toy_data(&va, 20, 10);
    struct model *a = toy_model(16, 21), *b = toy_model(16, 21), *b2 = toy_model(16, 99);
    struct optimizer *oa = a ? make(a) : NULL, *ob = b ? make(b) : NULL;
    struct optimizer *ob2 = b2 ? make(b2) : NULL;
    if (oa && ob && ob2) {
        size_t bytes = a->n_params * sizeof(float);
        fit_toy(a, oa, &tr, &va, 3, 0, 7);
        fit_toy(b, ob, &tr, &va, 2, 0, 7);
        CHECK(memcmp(a->params, b->params, bytes) != 0);
        /* what a resume file carries: weights (with BN statistics), slots, iterations */
        memcpy(b2->params, b->params, bytes);
        for (int s = 0; s < ob->n_slots; s++)
            memcpy(ob2->slots[s], ob->slots[s], bytes);
        ob2->iterations = ob->iterations;
        CHECK_INT_EQ(ob2->iterations, 12);
        fit_toy(b2, ob2, &tr, &va, 3, 2, 7);
        CHECK_INT_EQ(ob2->iterations, oa->iterations);
        CHECK(memcmp(a->params, b2->params, bytes) == 0);
        CHECK(oa->n_slots >= 1);
        for (int s = 0; s < oa->n_slots; s++)
            CHECK(memcmp(oa->slots[s], ob2->slots[s], bytes) == 0);
    }
    optimizer_free(oa);
    optimizer_free(ob);
    optimizer_free(ob2);
    model_free(a);
    model_free(b);
    model_free(b2);
    dataset_free(&tr);
    dataset_free(&va);
}

/* A run stopped by the flag inside epoch 2 (after 3 of its 6 batches) and
 * continued from its fit_progress (initial_batch and running sums) ends
 * bit-identical to an uninterrupted run, with the same epoch-2 logs. */
struct stopper {
    atomic_int *flag;
    struct fit_progress at_end;
    struct logs last, epoch2;
    int begins, first_begin_epoch, first_begin_batch; /* epoch_begin calls */
};

static int stopper_epoch_begin(void *ctx, const struct fit_progress *p)
{
    struct stopper *st = ctx;
    if (st->begins++ == 0) {
        st->first_begin_epoch = p->epoch;
        st->first_begin_batch = p->batch;
    }
    return 0;
}

static int stopper_batch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    struct stopper *st = ctx;
    (void)l;
    if (st->flag && p->epoch == 2 && p->batch == 3)
        atomic_store(st->flag, 1);
    return 0;
}

static int stopper_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    struct stopper *st = ctx;
    st->last = *l;
    if (p->epoch == 2)
        st->epoch2 = *l;
    return 0;
}

static void stopper_train_end(void *ctx, const struct fit_progress *p, int status)
{
    struct stopper *st = ctx;
    (void)status;
    st->at_end = *p;
}

static void resume_inside_epoch(const struct model_head *h)
{
    struct dataset tr, va;
    toy_data(&tr, 90, 9); /* 6 batches of 16 (the last has 10) */
    toy_data(&va, 20, 10);
    struct model *a = toy_model(16, 21), *b = toy_model(16, 21), *b2 = toy_model(16, 99);
    struct diag hd;
    if (h && a && b && b2)
        CHECK(model_set_head(a, h, &hd) == 0 && model_set_head(b, h, &hd) == 0 &&
              model_set_head(b2, h, &hd) == 0);
    struct optimizer *oa = a ? sgd(a) : NULL, *ob = b ? sgd(b) : NULL;
    struct optimizer *ob2 = b2 ? sgd(b2) : NULL;
    if (oa && ob && ob2) {
        size_t bytes = a->n_params * sizeof(float);
        struct fit_options o;
        fit_options_default(&o);
        o.epochs = 3;
        o.batch_size = 16;
        o.seed = 7;
        static const char *const keys[] = {"accuracy", "m1", "m2", "m3", "m4", "m5"};
        for (int i = 0; h && i < h->n_metrics; i++)
            o.metric_keys[i] = keys[i];
        struct diag d = {0};
        struct stopper sa = {0}, sb = {0}, sb2 = {0};
        struct fit_callbacks cba = {.ctx = &sa, .epoch_end = stopper_epoch_end};
        CHECK_INT_EQ(fit(a, oa, &tr, &va, &o, &cba, NULL, &d), 0);

        atomic_int flag = 0;
        sb.flag = &flag;
        struct fit_callbacks cbb = {.ctx = &sb, .batch_end = stopper_batch_end,
                                    .epoch_end = stopper_epoch_end,
                                    .train_end = stopper_train_end};
        CHECK_INT_EQ(fit(b, ob, &tr, &va, &o, &cbb, &flag, &d), -ECANCELED);
        CHECK_INT_EQ(sb.at_end.epoch, 2);
        CHECK_INT_EQ(sb.at_end.batch, 3);
        CHECK_INT_EQ(sb.at_end.seen, 48);
        CHECK_INT_EQ(ob->iterations, 9);

        memcpy(b2->params, b->params, bytes);
        memcpy(ob2->slots[0], ob->slots[0], bytes);
        ob2->iterations = ob->iterations;
        struct fit_options o2 = o;
        o2.initial_epoch = sb.at_end.epoch - 1;
        o2.initial_batch = sb.at_end.batch;
        o2.initial_loss_sum = sb.at_end.loss_sum;
        memcpy(o2.initial_metric_sums, sb.at_end.metric_sums, sizeof(o2.initial_metric_sums));
        o2.initial_seen = sb.at_end.seen;
        struct fit_callbacks cbb2 = {.ctx = &sb2, .epoch_begin = stopper_epoch_begin,
                                     .epoch_end = stopper_epoch_end};
        CHECK_INT_EQ(fit(b2, ob2, &tr, &va, &o2, &cbb2, NULL, &d), 0);
        /* epoch_begin sees the resumed epoch at its position, then epoch 3 at 0 */
        CHECK_INT_EQ(sb2.begins, 2);
        CHECK_INT_EQ(sb2.first_begin_epoch, 2);
        CHECK_INT_EQ(sb2.first_begin_batch, 3);
        CHECK_INT_EQ(ob2->iterations, oa->iterations);
        CHECK(memcmp(a->params, b2->params, bytes) == 0);
        CHECK(memcmp(oa->slots[0], ob2->slots[0], bytes) == 0);
        double la = 0, lb = 0;
        CHECK(logs_get(&sa.last, "loss", &la) && logs_get(&sb2.last, "loss", &lb) && la == lb);
        CHECK(logs_get(&sa.last, "accuracy", &la) && logs_get(&sb2.last, "accuracy", &lb) &&
              la == lb);
        /* the resumed epoch's logs continue the stopped run's running sums:
         * every key (loss, each metric, val_ of each) bit for bit */
        CHECK(logs_get(&sa.epoch2, "loss", &la) && logs_get(&sb2.epoch2, "loss", &lb) &&
              la == lb);
        CHECK(logs_get(&sa.epoch2, "accuracy", &la) && logs_get(&sb2.epoch2, "accuracy", &lb) &&
              la == lb);
        int nm = h ? h->n_metrics : 1;
        CHECK_INT_EQ(sa.epoch2.n, 2 + 2 * nm);
        CHECK_INT_EQ(sb2.epoch2.n, sa.epoch2.n);
        for (int i = 0; i < sa.epoch2.n; i++) {
            CHECK_MSG(logs_get(&sb2.epoch2, sa.epoch2.items[i].key, &lb) &&
                          lb == sa.epoch2.items[i].value,
                      "epoch 2 %s", sa.epoch2.items[i].key);
            CHECK_MSG(logs_get(&sb2.last, sa.last.items[i].key, &lb) &&
                          lb == sa.last.items[i].value,
                      "last epoch %s", sa.last.items[i].key);
        }

        /* a position outside the epoch is refused */
        o2.initial_batch = 7;
        CHECK_INT_EQ(fit(b2, ob2, &tr, &va, &o2, NULL, NULL, &d), -EINVAL);
    }
    optimizer_free(oa);
    optimizer_free(ob);
    optimizer_free(ob2);
    model_free(a);
    model_free(b);
    model_free(b2);
    dataset_free(&tr);
    dataset_free(&va);
}

static void test_resume_inside_epoch(void)
{
    resume_inside_epoch(NULL);
    /* a head whose running sums are not counts: label smoothing, class
     * weights and MAE as the first metric (logged under the default key),
     * with three more metrics whose sums must all continue */
    static const float cw[CLASSES] = {1, 2, 0.5f, 3};
    struct model_head h = {.loss = {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0.1},
                           .metrics = {{METRIC_KIND_MEAN_ABSOLUTE_ERROR, 5, 0.5},
                                       {METRIC_KIND_MEAN_SQUARED_ERROR, 5, 0.5},
                                       {METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY, 2, 0.5},
                                       {METRIC_KIND_CATEGORICAL_ACCURACY, 5, 0.5}},
                           .n_metrics = 4,
                           .class_weight = cw};
    resume_inside_epoch(&h);
}

/* fit_options.metric_keys[0] names the accuracy logs (train and val_) as
 * Keras names them after compile()'s metric; the values are those of the
 * default "accuracy" run, bit for bit. */
static int keep_epoch_logs(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    *(struct logs *)ctx = *l;
    return 0;
}

static void test_accuracy_key(void)
{
    struct dataset tr, va;
    toy_data(&tr, 60, 5);
    toy_data(&va, 20, 6);
    struct logs got[2];
    for (int run = 0; run < 2; run++) {
        memset(&got[run], 0, sizeof(got[run]));
        struct model *m = toy_model(16, 4);
        struct optimizer *opt = m ? sgd(m) : NULL;
        if (!opt) {
            model_free(m);
            continue;
        }
        struct fit_options o;
        fit_options_default(&o);
        o.epochs = 2;
        o.batch_size = 16;
        o.metric_keys[0] = run == 0 ? NULL : "sparse_categorical_accuracy";
        struct fit_callbacks cb = {.ctx = &got[run], .epoch_end = keep_epoch_logs};
        CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, &cb, NULL, NULL), 0);
        optimizer_free(opt);
        model_free(m);
    }
    double a0 = -1, va0 = -1, a1 = -2, va1 = -2, x;
    CHECK(logs_get(&got[0], "accuracy", &a0) && logs_get(&got[0], "val_accuracy", &va0));
    CHECK(logs_get(&got[1], "sparse_categorical_accuracy", &a1));
    CHECK(logs_get(&got[1], "val_sparse_categorical_accuracy", &va1));
    CHECK(a0 == a1 && va0 == va1);
    CHECK(!logs_get(&got[1], "accuracy", &x) && !logs_get(&got[1], "val_accuracy", &x));
    CHECK_INT_EQ(got[1].n, 4);

    /* a key whose val_ form does not fit a logs key is refused */
    struct model *m = toy_model(16, 4);
    struct optimizer *opt = m ? sgd(m) : NULL;
    if (opt) {
        struct fit_options o;
        fit_options_default(&o);
        o.batch_size = 16;
        o.metric_keys[0] = "an_accuracy_key_of_28_chars_";
        struct diag d = {{0}, {0}};
        CHECK_INT_EQ(fit(m, opt, &tr, &va, &o, NULL, NULL, &d), -EINVAL);
        CHECK_STR_EQ(d.field, "/metric_keys");
        CHECK_INT_EQ(opt->iterations, 0);
    }
    optimizer_free(opt);
    model_free(m);
    dataset_free(&tr);
    dataset_free(&va);
}

static void test_resume(void)
{
    resume_with(sgd);
    resume_with(adam);
}

/* --- two ranks over threads ---------------------------------------------- */

/* The collective interface between the threads of this process: each rank
 * publishes its buffer, all meet at a barrier, each reads what it needs,
 * all meet again before anyone changes its buffer. */
#define TRANKS 2

struct tshared {
    pthread_barrier_t bar;
    void *src[TRANKS];
};

struct trank {
    struct tshared *sh;
    int rank;
};

static int t_allgather(void *ctx, const void *mine, void *all, size_t bytes)
{
    struct trank *t = ctx;
    t->sh->src[t->rank] = (void *)mine;
    pthread_barrier_wait(&t->sh->bar);
    for (int k = 0; k < TRANKS; k++)
        memcpy((char *)all + (size_t)k * bytes, t->sh->src[k], bytes);
    pthread_barrier_wait(&t->sh->bar);
    return 0;
}

static int t_bcast(void *ctx, void *buf, size_t bytes)
{
    struct trank *t = ctx;
    t->sh->src[t->rank] = buf;
    pthread_barrier_wait(&t->sh->bar);
    if (t->rank != 0)
        memcpy(buf, t->sh->src[0], bytes);
    pthread_barrier_wait(&t->sh->bar);
    return 0;
}

#define T_SUM(NAME, TYPE)                                                              \
    static int NAME(void *ctx, TYPE *buf, size_t n)                                    \
    {                                                                                  \
        struct trank *t = ctx;                                                         \
        TYPE *sum = calloc(n ? n : 1, sizeof(TYPE));                                   \
        t->sh->src[t->rank] = buf;                                                     \
        pthread_barrier_wait(&t->sh->bar);                                             \
        for (int k = 0; sum && k < TRANKS; k++)                                        \
            for (size_t i = 0; i < n; i++)                                             \
                sum[i] += ((const TYPE *)t->sh->src[k])[i];                            \
        pthread_barrier_wait(&t->sh->bar);                                             \
        if (sum)                                                                       \
            memcpy(buf, sum, n * sizeof(TYPE));                                        \
        free(sum);                                                                     \
        return sum ? 0 : -ENOMEM;                                                      \
    }
T_SUM(t_sum_f64, double)
T_SUM(t_sum_f32, float)

struct trun {
    struct collective c;
    struct trank t;
    struct model *m;
    struct optimizer *opt;
    const struct dataset *tr, *va;
    int ret;
    struct diag d;
};

static void *trun_main(void *arg)
{
    struct trun *r = arg;
    struct fit_options o;
    fit_options_default(&o);
    o.epochs = 2;
    o.batch_size = 16;
    o.steps_per_epoch = 3;
    o.seed = 5;
    r->m->coll = &r->c;
    r->ret = fit(r->m, r->opt, r->tr, r->va, &o, NULL, NULL, &r->d);
    return NULL;
}

/* Two ranks whose starting weights come from seeds[0] and seeds[1]. */
static void run_ranks(const uint64_t seeds[TRANKS], struct trun runs[TRANKS],
                      const struct dataset *tr, const struct dataset *va)
{
    static struct tshared sh;
    pthread_barrier_init(&sh.bar, NULL, TRANKS);
    pthread_t th[TRANKS];
    for (int k = 0; k < TRANKS; k++) {
        struct trun *r = &runs[k];
        memset(r, 0, sizeof(*r));
        r->t = (struct trank){.sh = &sh, .rank = k};
        r->c = (struct collective){.rank = k, .size = TRANKS, .ctx = &r->t,
                                   .sum_f64 = t_sum_f64, .sum_f32 = t_sum_f32,
                                   .bcast = t_bcast, .allgather = t_allgather};
        r->m = toy_model(16, seeds[k]);
        r->opt = r->m ? sgd(r->m) : NULL;
        r->tr = tr;
        r->va = va;
    }
    bool ok = runs[0].opt && runs[1].opt;
    CHECK(ok);
    for (int k = 0; ok && k < TRANKS; k++)
        CHECK_INT_EQ(pthread_create(&th[k], NULL, trun_main, &runs[k]), 0);
    for (int k = 0; ok && k < TRANKS; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&sh.bar);
}

static void free_ranks(struct trun runs[TRANKS])
{
    for (int k = 0; k < TRANKS; k++) {
        optimizer_free(runs[k].opt);
        model_free(runs[k].m);
    }
}

static void test_ranks_compared_at_epoch_end(void)
{
    struct dataset tr, va;
    toy_data(&tr, 96, 3);
    toy_data(&va, 16, 4);
    struct trun runs[TRANKS];
    /* the same start: the ranks train together and end identical */
    run_ranks((const uint64_t[TRANKS]){9, 9}, runs, &tr, &va);
    for (int k = 0; k < TRANKS; k++)
        CHECK_MSG(runs[k].ret == 0, "rank %d: %d %s", k, runs[k].ret, runs[k].d.message);
    if (runs[0].m && runs[1].m) {
        CHECK(same_params(runs[0].m, runs[1].m));
        CHECK(runs[0].opt->iterations == 6 && runs[1].opt->iterations == 6);
        /* and they did train: the weights left their start */
        struct model *start = toy_model(16, 9);
        CHECK(start && !same_params(runs[0].m, start));
        model_free(start);
    }
    free_ranks(runs);
    /* rank 1 starts elsewhere (no broadcast of rank 0's weights): every rank
     * applies the same summed gradient, so its weights stay apart, and both
     * ranks stop after the first epoch naming rank 1 */
    run_ranks((const uint64_t[TRANKS]){9, 10}, runs, &tr, &va);
    for (int k = 0; k < TRANKS; k++) {
        CHECK_INT_EQ(runs[k].ret, -EPROTO);
        CHECK_MSG(strstr(runs[k].d.message, "rank 1's weights differ from rank 0's after epoch 1"),
                  "rank %d: %s", k, runs[k].d.message);
        CHECK(runs[k].opt && runs[k].opt->iterations == 3);
    }
    free_ranks(runs);
    dataset_free(&tr);
    dataset_free(&va);
}

int main(void)
{
    TEST_RUN(test_callbacks_order_and_partial_batch);
    TEST_RUN(test_steps_limits);
    TEST_RUN(test_stop_flag_and_callback_results);
    TEST_RUN(test_steps_stream);
    TEST_RUN(test_determinism);
    TEST_RUN(test_accuracy_key);
    TEST_RUN(test_float32_pixels);
    TEST_RUN(test_resume);
    TEST_RUN(test_resume_inside_epoch);
    TEST_RUN(test_ranks_compared_at_epoch_end);
    return TEST_EXIT();
}
