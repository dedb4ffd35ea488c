/* test_fit_accuracy.c - end to end on real data: MiniVGGNet (the built-in
 * spec) trained for one epoch on the first 2,000 Fashion-MNIST training
 * images with the reference recipe (SGD lr 0.01, decay 0.01/40, momentum 0.9,
 * nesterov, batch 64 = 32 steps, 2 threads), validated on the first 2,000
 * test images.  Skipped (exit 77) when the data set is not installed.
 *
 * What 32 steps can reach: training accuracy (running mean) ~0.6, while
 * val_accuracy is held back by the BatchNormalization moving statistics,
 * which with Keras' momentum 0.99 still carry 0.99^32 = 72 % of their initial
 * 0 / 1 after one epoch.  Measured: this engine 0.37-0.42 (seeds 1-3, loss
 * ~1.27, accuracy ~0.62); the PyTorch peer (shared/bench/peer_torch.py, same
 * recipe and BN momentum, 32 batches, 2,048 test images) 0.515, accuracy
 * 0.598.  So the bar is well above chance (0.10) but not 0.70, which needs
 * several hundred steps; the inference path itself is checked against torch
 * in test_reference. */
#include "fit.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static int epoch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    struct logs *out = ctx;
    *out = *l;
    fprintf(stderr, "  epoch %d/%d: %d batches, lr %.6f, %.0f images/s, %.2f s\n", p->epoch,
            p->epochs, p->batch, p->lr, p->images_per_s, p->epoch_seconds);
    return 0;
}

int main(void)
{
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "skip: %s not installed\n", FASHION_DIR);
        return 77;
    }
    struct diag d = {0};
    struct dataset tr = {0}, te = {0};
    int r = dataset_load_idx_dir(&tr, FASHION_DIR, "train", &d);
    CHECK_MSG(r == 0, "load train: %d %s %s", r, d.field, d.message);
    r = r ? r : dataset_load_idx_dir(&te, FASHION_DIR, "test", &d);
    CHECK_MSG(r == 0, "load test: %d %s %s", r, d.field, d.message);
    if (r)
        return TEST_EXIT();
    dataset_truncate(&tr, 2000);
    dataset_truncate(&te, 2000);
    CHECK_INT_EQ(tr.n, 2000);
    CHECK_INT_EQ(te.n, 2000);

    const int shape[3] = {28, 28, 1};
    struct model_spec spec = {0};
    r = model_spec_builtin(&spec, "minivggnet", shape, 10, &d);
    CHECK_MSG(r == 0, "spec: %d %s", r, d.message);
    struct model *m = NULL;
    if (r == 0) {
        r = model_create(&m, &spec, 64, 2, &d);
        CHECK_MSG(r == 0, "model_create: %d %s %s", r, d.field, d.message);
    }
    struct optimizer *opt = NULL;
    if (r == 0) {
        model_init_weights(m, 1);
        struct optimizer_config c;
        optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
        c.learning_rate = 0.01;
        c.decay = 0.01 / 40;
        c.momentum = 0.9;
        c.nesterov = true;
        r = optimizer_create(&opt, &c, m, &d);
        CHECK_INT_EQ(r, 0);
    }
    if (r == 0) {
        /* chance level before training */
        double l0, a0;
        CHECK_INT_EQ(fit_evaluate(m, &te, 64, 0, &l0, &a0, &d), 0);
        fprintf(stderr, "  before: val_loss %.4f val_accuracy %.4f\n", l0, a0);

        struct fit_options o;
        fit_options_default(&o);
        o.epochs = 1;
        o.batch_size = 64;
        o.seed = 1;
        struct logs logs = {0};
        struct fit_callbacks cb = {.ctx = &logs, .epoch_end = epoch_end};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = fit(m, opt, &tr, &te, &o, &cb, NULL, &d);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK_MSG(r == 0, "fit: %d %s", r, d.message);
        CHECK_INT_EQ(opt->iterations, 32);
        double loss = 0, acc = 0, vl = 0, va = 0;
        CHECK(logs_get(&logs, "loss", &loss));
        CHECK(logs_get(&logs, "accuracy", &acc));
        CHECK(logs_get(&logs, "val_loss", &vl));
        CHECK(logs_get(&logs, "val_accuracy", &va));
        fprintf(stderr,
                "  after 1 epoch: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f "
                "(%.2f s)\n",
                loss, acc, vl, va,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
        CHECK_MSG(acc > 0.50, "accuracy %.4f", acc);
        CHECK_MSG(va > 0.30, "val_accuracy %.4f", va);
        CHECK_MSG(vl < l0 - 0.3, "val_loss %.4f, before %.4f", vl, l0);
        /* the epoch's validation logs are an evaluation of the final weights */
        double vl2 = 0, va2 = 0;
        CHECK_INT_EQ(fit_evaluate(m, &te, 64, 0, &vl2, &va2, &d), 0);
        CHECK(vl2 == vl && va2 == va);
    }
    optimizer_free(opt);
    model_free(m);
    model_spec_free(&spec);
    dataset_free(&tr);
    dataset_free(&te);
    return TEST_EXIT();
}
