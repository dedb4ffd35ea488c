/* test_layers_isa.c - the two builds of the elementwise layers (layers_isa.h:
 * plain, and -mavx2 -mfma for the avx2 and avx512 kernel paths) give
 * bit-identical results, so the kernel path changes only the convolution
 * GEMMs.  Every dispatched function with floating-point work runs on the same
 * random input under TRAIND_KERNELS=generic and avx2, with sizes that leave
 * vector remainders; the outputs are compared with memcmp.  Skipped where the
 * CPU has no avx2. */
#include <stdlib.h>

#include "kernels.h"
#include "layers.h"
#include "rng.h"
#include "test.h"

#define ROWS 37
#define CH 21
#define NEL (ROWS * CH)

struct outputs {
    float act[4][NEL], actb[NEL], bnf[NEL], bnb[2][NEL], mean[CH], var[CH];
    float mm[CH], mv[CH], mpf[4 * 5 * CH], mpb[2 * 9 * 11 * CH], apf[4 * 5 * CH],
        apb[2 * 9 * 11 * CH], dof[NEL], dob[NEL];
    double sum[CH], sumsq[CH], sd[CH], sdx[CH];
    uint8_t mask[NEL];
};

static void run_all(struct outputs *o)
{
    struct rng r;
    rng_seed(&r, 77, 1);
    static float x[2 * 9 * 11 * CH], dy[2 * 9 * 11 * CH], bias[CH], gamma[CH], beta[CH];
    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
        x[i] = (float)(rng_uniform(&r) * 4.0 - 2.0);
        dy[i] = (float)(rng_uniform(&r) * 2.0 - 1.0);
    }
    for (int c = 0; c < CH; c++) {
        bias[c] = (float)(rng_uniform(&r) - 0.5);
        gamma[c] = (float)(rng_uniform(&r) + 0.5);
        beta[c] = (float)(rng_uniform(&r) - 0.5);
    }
    static const enum activation_kind acts[] = {ACTIVATION_KIND_RELU, ACTIVATION_KIND_SIGMOID,
                                                ACTIVATION_KIND_TANH, ACTIVATION_KIND_SOFTMAX};
    for (int a = 0; a < 4; a++) {
        float fwd[NEL];
        activation_forward(fwd, x, ROWS, CH, acts[a]);
        activation_backward(o->act[a], dy, fwd, ROWS, CH, acts[a]);
        for (int i = 0; i < NEL; i++)
            o->act[a][i] += fwd[i];
    }
    activation_bias_copy(o->actb, x, bias, ROWS, CH, ACTIVATION_KIND_RELU);
    activation_bias_forward(o->actb, bias, ROWS, CH, ACTIVATION_KIND_SIGMOID);

    memset(o->sum, 0, sizeof(o->sum)), memset(o->sumsq, 0, sizeof(o->sumsq));
    batchnorm_stats_accumulate(o->sum, o->sumsq, x, ROWS, CH);
    batchnorm_stats_finalize(o->mean, o->var, o->sum, o->sumsq, ROWS, CH);
    batchnorm_forward(o->bnf, x, o->mean, o->var, gamma, beta, 1e-3f, ROWS, CH);
    memcpy(o->mm, bias, sizeof(o->mm)), memcpy(o->mv, gamma, sizeof(o->mv));
    batchnorm_update_moving(o->mm, o->mv, o->mean, o->var, ROWS, 0.9f, true, CH);
    memset(o->sd, 0, sizeof(o->sd)), memset(o->sdx, 0, sizeof(o->sdx));
    batchnorm_backward_accumulate(o->sd, o->sdx, dy, x, o->mean, o->var, 1e-3f, ROWS, CH);
    for (int relu = 0; relu < 2; relu++)
        batchnorm_backward(o->bnb[relu], dy, x, o->mean, o->var, gamma, o->sd, o->sdx, ROWS,
                           1e-3f, relu, ROWS, CH);

    struct pool2d_geom g;
    pool2d_geom_init(&g, 9, 11, CH, 2, 2, 2, 2, PADDING_KIND_SAME);
    CHECK_INT_EQ(g.oh * g.ow, 5 * 6);
    static float pf[2 * 5 * 6 * CH];
    maxpool2d_forward(pf, x, 2, &g);
    memcpy(o->mpf, pf, sizeof(o->mpf));
    maxpool2d_backward(o->mpb, dy, x, 2, &g);
    avgpool2d_forward(pf, x, 2, &g);
    memcpy(o->apf, pf, sizeof(o->apf));
    avgpool2d_backward(o->apb, dy, 2, &g);

    dropout_mask(o->mask, ROWS, CH, 0.3f, 5, 2, 1, 0);
    dropout_forward(o->dof, x, o->mask, 0.3f, NEL);
    dropout_backward(o->dob, dy, o->mask, 0.3f, NEL);
}

static void test_copies_agree(void)
{
    if (!kernels_supported(KERNELS_KIND_AVX2)) {
        fprintf(stderr, "skip: no avx2\n");
        return;
    }
    struct outputs *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    if (!a || !b)
        return;
    CHECK_INT_EQ(kernels_use(KERNELS_KIND_GENERIC), 0);
    run_all(a);
    CHECK_INT_EQ(kernels_use(KERNELS_KIND_AVX2), 0);
    run_all(b);
#define SAME(field) CHECK_MSG(memcmp(a->field, b->field, sizeof(a->field)) == 0, "%s differs", #field)
    SAME(act);
    SAME(actb);
    SAME(bnf);
    SAME(bnb);
    SAME(mean);
    SAME(var);
    SAME(mm);
    SAME(mv);
    SAME(mpf);
    SAME(mpb);
    SAME(apf);
    SAME(apb);
    SAME(dof);
    SAME(dob);
    SAME(sum);
    SAME(sumsq);
    SAME(sd);
    SAME(sdx);
    SAME(mask);
#undef SAME
    /* and the outputs are not trivially equal: the inputs reached them */
    CHECK(a->bnf[0] != 0.0f && a->act[1][NEL - 1] != 0.0f && a->mpf[0] != 0.0f);
    free(a);
    free(b);
}

int main(void)
{
    TEST_RUN(test_copies_agree);
    return TEST_EXIT();
}
