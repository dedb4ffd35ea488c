/* train_bench.c - training and evaluation throughput of MiniVGGNet, the
 * figures bench/compare sets against ../shared/bench/peer_torch.py.
 *
 *   train_bench [--data fashion|synthetic-cifar] [--threads N] [--batch B]
 *               [--steps S] [--warmup W] [--eval-batches E] [--eval-batch EB]
 *               [--seed S] [--fashion-dir DIR]
 *
 * Trains S batches (after W warm-up batches that are not timed) with Keras'
 * SGD (lr 0.01, momentum 0.9, nesterov, decay 0.01/40) exactly as a job
 * would: uint8 batch gather, model_train_step, optimizer_step.  Then
 * evaluates E batches of EB test images (the first W are not timed).  Prints
 * one JSON line: kernels (the path in use, TRAIND_KERNELS forces one),
 * conv_algorithms (per Conv2D layer: forward, input gradient, weight gradient),
 * train_images_per_s, eval_images_per_s, peak_rss_mib, loss,
 * accuracy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "data.h"
#include "kernels.h"
#include "model.h"
#include "optimizer.h"
#include "rng.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): robust to a busy machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Random CIFAR-shaped data: uniform pixels, 10 random classes. */
static int synthetic(struct dataset *ds, int n, uint64_t seed)
{
    memset(ds, 0, sizeof(*ds));
    ds->n = n, ds->h = 32, ds->w = 32, ds->c = 3, ds->classes = 10;
    ds->images = malloc((size_t)n * 32 * 32 * 3);
    ds->labels = malloc((size_t)n);
    if (!ds->images || !ds->labels)
        return -ENOMEM;
    struct rng r;
    rng_seed(&r, seed, 99);
    for (size_t i = 0; i < (size_t)n * 32 * 32 * 3; i += 8) {
        uint64_t v = rng_next(&r);
        size_t left = (size_t)n * 32 * 32 * 3 - i;
        memcpy(ds->images + i, &v, left < 8 ? left : 8);
    }
    for (int i = 0; i < n; i++)
        ds->labels[i] = (uint8_t)rng_below(&r, 10);
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "fashion", *fashion_dir = "/usr/share/datasets/fashion-mnist";
    int threads = 2, batch = 64, steps = 230, warmup = 20, eval_batches = 60, eval_batch = 64;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "%s: missing value\n", a);
            return 2;
        }
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--batch"))
            batch = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(a, "--eval-batches"))
            eval_batches = atoi(v);
        else if (!strcmp(a, "--eval-batch"))
            eval_batch = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--fashion-dir"))
            fashion_dir = v;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (threads < 1 || batch < 1 || steps < 1 || warmup < 0 || eval_batch < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }

    struct diag d = {0};
    if (kernels_init(getenv("TRAIND_KERNELS"), &d) < 0 ||
        kernels_conv_algo_init(getenv("TRAIND_CONV_ALGO"), &d) < 0) {
        fprintf(stderr, "%s: %s\n", d.field, d.message);
        return 2;
    }
    struct dataset tr = {0}, te = {0};
    int err;
    if (!strcmp(data, "fashion")) {
        err = dataset_load_idx_dir(&tr, fashion_dir, "train", &d);
        if (!err)
            err = dataset_load_idx_dir(&te, fashion_dir, "test", &d);
    } else if (!strcmp(data, "synthetic-cifar")) {
        err = synthetic(&tr, 50000, seed);
        if (!err)
            err = synthetic(&te, 10000, seed + 1);
    } else {
        fprintf(stderr, "--data must be fashion or synthetic-cifar\n");
        return 2;
    }
    if (err) {
        fprintf(stderr, "loading %s: %s %s\n", data, d.field, d.message);
        return 1;
    }

    struct model_spec spec;
    int shape[3] = {tr.h, tr.w, tr.c};
    struct model *m = NULL;
    if ((err = model_spec_builtin(&spec, "minivggnet", shape, 10, &d)) ||
        (err = model_create(&m, &spec, batch, threads, &d))) {
        fprintf(stderr, "model: %s %s\n", d.field, d.message);
        return 1;
    }
    model_init_weights(m, seed);
    struct optimizer_config oc;
    optimizer_config_default(&oc, OPTIMIZER_KIND_SGD);
    oc.learning_rate = 0.01, oc.momentum = 0.9, oc.nesterov = true, oc.decay = 0.01 / 40;
    struct optimizer *opt = NULL;
    if ((err = optimizer_create(&opt, &oc, m, &d))) {
        fprintf(stderr, "optimizer: %s\n", d.message);
        return 1;
    }

    size_t example = (size_t)tr.h * tr.w * tr.c;
    uint8_t *images = malloc((size_t)batch * example), *labels = malloc((size_t)batch);
    uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)tr.n);
    if (!images || !labels || !perm)
        return 1;
    for (int i = 0; i < tr.n; i++)
        perm[i] = (uint32_t)i;
    struct rng r;
    rng_seed(&r, seed, 0);
    rng_shuffle_u32(&r, perm, (uint32_t)tr.n);

    double t_train = 0, loss_sum = 0, c_train = 0;
    long timed = 0, seen = 0;
    double correct = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = now_s(), c0 = cpu_s();
        int start = (int)(((long)s * batch) % (tr.n - batch));
        dataset_gather(&tr, perm + start, batch, images, labels);
        double loss;
        double ok;
        if ((err = model_train_step(m, images, PIXELS_UINT8, labels, batch, seed,
                                    opt->iterations, &loss, &ok))) {
            fprintf(stderr, "train step: %d\n", err);
            return 1;
        }
        optimizer_step(opt, m);
        double dt = now_s() - t0;
        if (s >= warmup) {
            c_train += cpu_s() - c0;
            t_train += dt;
            timed += batch;
        }
        loss_sum += loss * batch;
        correct += ok;
        seen += batch;
    }

    double t_eval = 0, vloss = 0, c_eval = 0;
    long etimed = 0, vseen = 0;
    double vcorrect = 0;
    for (int b = 0; b < eval_batches; b++) {
        int start = (int)(((long)b * eval_batch) % (te.n - eval_batch + 1));
        double t0 = now_s(), c0 = cpu_s(), ls;
        double ok;
        if ((err = model_evaluate(m, te.images + (size_t)start * example, PIXELS_UINT8,
                                  te.labels + start, eval_batch, &ls, &ok))) {
            fprintf(stderr, "evaluate: %d\n", err);
            return 1;
        }
        double dt = now_s() - t0;
        if (b >= warmup) {
            c_eval += cpu_s() - c0;
            t_eval += dt;
            etimed += eval_batch;
        }
        vloss += ls;
        vcorrect += ok;
        vseen += eval_batch;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* the convolution algorithm of every Conv2D layer: forward, input and
     * weight gradient, e.g. "conv2d_1": ["winograd_f2x2_3x3", ...] */
    char algos[1024];
    size_t al = 0;
    for (int i = 0; i < m->n_layers && al < sizeof(algos); i++) {
        const char *fw, *di, *dw;
        if (model_conv_algorithms(m, i, &fw, &di, &dw) == 0)
            al += (size_t)snprintf(algos + al, sizeof(algos) - al, "%s\"%s\": [\"%s\", \"%s\", \"%s\"]",
                                   al ? ", " : "", m->layers[i].cfg.name, fw, di, dw);
    }
    if (al >= sizeof(algos))
        algos[0] = 0;
    printf("{\"data\": \"%s\", \"kernels\": \"%s\", \"conv_algorithms\": {%s}, \"threads\": %d, \"batch\": %d, \"timed_train_images\": %ld, "
           "\"train_images_per_s\": %.1f, \"timed_eval_images\": %ld, "
           "\"eval_images_per_s\": %.1f, \"peak_rss_mib\": %.1f, \"loss\": %.4f, "
           "\"accuracy\": %.4f, \"val_loss\": %.4f, \"val_accuracy\": %.4f, "
           "\"params\": %zu, \"train_cpu_ms_per_image\": %.3f, "
           "\"eval_cpu_ms_per_image\": %.3f}\n",
           data, kernels_name(kernels_active()), algos, threads, batch, timed, t_train > 0 ? timed / t_train : 0.0, etimed,
           t_eval > 0 ? etimed / t_eval : 0.0, ru.ru_maxrss / 1024.0, loss_sum / seen,
           correct / seen, vseen ? vloss / vseen : 0.0,
           vseen ? vcorrect / vseen : 0.0, m->n_params,
           timed ? 1e3 * c_train / timed : 0.0, etimed ? 1e3 * c_eval / etimed : 0.0);
    optimizer_free(opt);
    model_free(m);
    model_spec_free(&spec);
    dataset_free(&tr);
    dataset_free(&te);
    free(images), free(labels), free(perm);
    return 0;
}
