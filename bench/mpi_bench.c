/* mpi_bench.c - data-parallel training step over MPI ranks (docs/scaling.md).
 *
 *   mpirun -np R mpi_bench [--model minivggnet] [--shape fashion|cifar]
 *                          [--threads T] [--batch B] [--steps S] [--warmup W]
 *   mpi_bench ...            (one process: the same without collectives)
 *
 * Trains S global batches of B random examples (after W untimed ones) as a
 * job does (model_train_step with model->coll, optimizer_step) and prints,
 * on rank 0, one JSON line: ranks, threads, images_per_s, step_s,
 * collective_s_per_step (BN sums, loss and the gradient sum), gradient_bytes,
 * and two constants of this machine's transport: latency_s (a 2-double
 * sum, averaged over 200) and gradient_sum_s (one sum of the gradient). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collective.h"
#include "model.h"
#include "model_spec.h"
#include "monotonic.h"
#include "mpi_comm.h"
#include "optimizer.h"
#include "rng.h"

int main(int argc, char **argv)
{
    if (mpi_comm_init(&argc, &argv) < 0) {
        fprintf(stderr, "MPI_Init failed\n");
        return 1;
    }
    const char *model = "minivggnet", *shape_name = "fashion";
    int threads = 1, batch = 64, steps = 30, warmup = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--shape")) shape_name = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int shape[3] = {28, 28, 1};
    if (!strcmp(shape_name, "cifar"))
        shape[0] = 32, shape[1] = 32, shape[2] = 3;
    struct diag d = {{0}, {0}};
    struct model_spec spec = {0};
    struct model *m = NULL;
    struct optimizer *opt = NULL;
    struct optimizer_config oc;
    optimizer_config_default(&oc, OPTIMIZER_KIND_SGD);
    oc.momentum = 0.9;
    oc.nesterov = true;
    if (model_spec_builtin(&spec, model, shape, 10, &d) < 0 ||
        model_create(&m, &spec, batch, threads, &d) < 0 || optimizer_create(&opt, &oc, m, &d) < 0) {
        fprintf(stderr, "%s: %s\n", d.field, d.message);
        return 1;
    }
    model_spec_free(&spec);
    model_init_weights(m, 1);
    struct collective *c = mpi_comm_world();
    m->coll = c;

    size_t ex = (size_t)shape[0] * shape[1] * shape[2];
    uint8_t *images = malloc(ex * (size_t)batch), *labels = malloc((size_t)batch);
    if (!images || !labels)
        return 1;
    struct rng r;
    rng_seed(&r, 7, 0);
    for (size_t i = 0; i < ex * (size_t)batch; i++)
        images[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < batch; i++)
        labels[i] = (uint8_t)rng_below(&r, 10);

    double t0 = 0, c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            t0 = monotonic_seconds();
            c0 = c ? c->seconds : 0;
        }
        double loss;
        int ok;
        if (model_train_step(m, images, labels, batch, 1, opt->iterations, &loss, &ok) < 0)
            return 1;
        optimizer_step(opt, m);
    }
    double el = monotonic_seconds() - t0;
    double coll = c ? c->seconds - c0 : 0;

    /* transport constants: latency of a tiny sum, time of one gradient sum */
    double lat = 0, gsum = 0;
    if (c) {
        double v[2] = {1, 2};
        double a = c->seconds;
        for (int k = 0; k < 200; k++)
            c->sum_f64(c->ctx, v, 2);
        lat = (c->seconds - a) / 200;
        a = c->seconds;
        for (int k = 0; k < 5; k++)
            c->sum_f32(c->ctx, m->grads, m->n_trainable);
        gsum = (c->seconds - a) / 5;
    }
    if (mpi_comm_rank() == 0)
        printf("{\"model\": \"%s\", \"shape\": \"%s\", \"ranks\": %d, \"threads\": %d, "
               "\"batch\": %d, \"steps\": %d, \"images_per_s\": %.1f, \"step_s\": %.5f, "
               "\"collective_s_per_step\": %.5f, \"gradient_bytes\": %zu, "
               "\"latency_s\": %.7f, \"gradient_sum_s\": %.5f}\n",
               model, shape_name, mpi_comm_size(), threads, batch, steps,
               (double)batch * steps / el, el / steps, coll / steps,
               m->n_trainable * sizeof(float), lat, gsum);
    optimizer_free(opt);
    model_free(m);
    free(images);
    free(labels);
    mpi_comm_finalize();
    return 0;
}
