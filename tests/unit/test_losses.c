/* test_losses.c - the Keras losses and metrics of core/losses.c: values of
 * the examples in Keras' own documentation (categorical and sparse
 * categorical cross-entropy, binary cross-entropy, mean squared error,
 * top_k_categorical_accuracy, binary_accuracy), label smoothing and
 * from_logits against the formulas evaluated by hand in Python doubles, and
 * every gradient against central finite differences of the forward pass. */
#include <stdlib.h>

#include "losses.h"
#include "test.h"

static double loss_of(const struct loss_config *c, const float *out, const float *y,
                      const uint8_t *labels, int n, int K, int e)
{
    float losses[8];
    loss_forward(c, losses, out, y, labels, n, K);
    return losses[e];
}

static void test_keras_doc_values(void)
{
    /* keras.losses.categorical_crossentropy([[0, 1, 0], [0, 0, 1]],
     *     [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]) -> [0.0513, 2.303] */
    const float out[] = {0.05f, 0.95f, 0.0f, 0.1f, 0.8f, 0.1f};
    const float y[] = {0, 1, 0, 0, 0, 1};
    const uint8_t labels[] = {1, 2};
    struct loss_config c = {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0};
    float l[2];
    loss_forward(&c, l, out, y, NULL, 2, 3);
    CHECK_CLOSE(l[0], 0.05129329438755058, 1e-6, 0);
    CHECK_CLOSE(l[1], 2.3025850929940455, 1e-6, 0);
    c.kind = LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY;
    loss_forward(&c, l, out, NULL, labels, 2, 3);
    CHECK_CLOSE(l[0], 0.05129329438755058, 1e-6, 0);
    CHECK_CLOSE(l[1], 2.3025850929940455, 1e-6, 0);
    /* binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) -> [0.916, 0.714] */
    const float bo[] = {0.6f, 0.4f, 0.4f, 0.6f}, by[] = {0, 1, 0, 0};
    c.kind = LOSS_KIND_BINARY_CROSSENTROPY;
    loss_forward(&c, l, bo, by, NULL, 2, 2);
    CHECK_CLOSE(l[0], 0.9162904818741863, 1e-6, 0);
    CHECK_CLOSE(l[1], 0.7135579694867622, 1e-6, 0);
    /* mean_squared_error on the same -> [0.36, 0.26]; mae -> [0.6, 0.5] */
    c.kind = LOSS_KIND_MEAN_SQUARED_ERROR;
    loss_forward(&c, l, bo, by, NULL, 2, 2);
    CHECK_CLOSE(l[0], 0.36, 1e-6, 0);
    CHECK_CLOSE(l[1], 0.26, 1e-6, 0);
    c.kind = LOSS_KIND_MEAN_ABSOLUTE_ERROR;
    loss_forward(&c, l, bo, by, NULL, 2, 2);
    CHECK_CLOSE(l[0], 0.6, 1e-6, 0);
    CHECK_CLOSE(l[1], 0.5, 1e-6, 0);
    CHECK_CLOSE(metric_mse(bo, by, 2, 2), 0.36 + 0.26, 1e-6, 0);
    CHECK_CLOSE(metric_mae(bo, by, 2, 2), 0.6 + 0.5, 1e-6, 0);
    /* top_k_categorical_accuracy([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8],
     * [0.05, 0.95, 0]], k=1) -> [0, 1]; with k=2 both are in */
    const float tk[] = {0.1f, 0.9f, 0.8f, 0.05f, 0.95f, 0.0f};
    const uint8_t tl[] = {2, 1};
    CHECK(metric_top_k_categorical_accuracy(tk, tl, 2, 3, 1) == 1.0);
    CHECK(metric_top_k_categorical_accuracy(tk, tl, 2, 3, 2) == 2.0);
    /* ties at the boundary count as inside (tf.math.in_top_k) */
    const float tie[] = {0.4f, 0.4f, 0.2f};
    const uint8_t tie_l[] = {1};
    CHECK(metric_top_k_categorical_accuracy(tie, tie_l, 1, 3, 1) == 1.0);
    /* binary_accuracy([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]) -> [1, 1, 1, 0] */
    const float ba_o[] = {0.98f, 1.0f, 0.0f, 0.6f}, ba_y[] = {1, 1, 0, 0};
    CHECK(metric_binary_accuracy(ba_o, ba_y, 4, 1, 0.5) == 3.0);
    /* categorical and sparse accuracy: first maximum wins */
    const float ca_o[] = {0.5f, 0.5f, 0.0f, 0.1f, 0.2f, 0.7f};
    const float ca_y[] = {0, 1, 0, 0, 0, 1};
    const uint8_t ca_l[] = {1, 2};
    CHECK(metric_categorical_accuracy(ca_o, ca_y, 2, 3) == 1.0);
    CHECK(metric_sparse_categorical_accuracy(ca_o, ca_l, 2, 3) == 1.0);
}

/* metric_sum (what model.c calls) reads integer labels as one-hot rows and
 * agrees with the metric functions on the one-hot targets; names resolve as
 * Keras' compile() does ("accuracy" by the loss's targets). */
static void test_metric_sum(void)
{
    const float out[] = {0.1f, 0.7f, 0.2f, 0.6f, 0.3f, 0.1f, 0.2f, 0.2f, 0.6f};
    const uint8_t labels[] = {1, 2, 0};
    const float y[] = {0, 1, 0, 0, 0, 1, 1, 0, 0};
    struct metric_config mc;
    CHECK(metric_config_from_name(&mc, "accuracy", LOSS_KIND_CATEGORICAL_CROSSENTROPY) == 0);
    CHECK(mc.kind == METRIC_KIND_CATEGORICAL_ACCURACY);
    CHECK(metric_config_from_name(&mc, "acc", LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY) == 0);
    CHECK(mc.kind == METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY);
    CHECK(metric_config_from_name(&mc, "f1_score", LOSS_KIND_CATEGORICAL_CROSSENTROPY) < 0);
    CHECK(metric_config_from_name(&mc, "mae", LOSS_KIND_CATEGORICAL_CROSSENTROPY) == 0);
    CHECK(mc.kind == METRIC_KIND_MEAN_ABSOLUTE_ERROR);
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) == metric_mae(out, y, 3, 3));
    CHECK(metric_sum(&mc, out, y, NULL, 3, 3) == metric_mae(out, y, 3, 3));
    CHECK(metric_config_from_name(&mc, "mse", LOSS_KIND_CATEGORICAL_CROSSENTROPY) == 0);
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) == metric_mse(out, y, 3, 3));
    CHECK(metric_config_from_name(&mc, "categorical_accuracy", 0) == 0);
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) == 1.0);
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) == metric_categorical_accuracy(out, y, 3, 3));
    CHECK(metric_config_from_name(&mc, "top_k_categorical_accuracy", 0) == 0 && mc.k == 5);
    mc.k = 2;
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) ==
          metric_top_k_categorical_accuracy(out, labels, 3, 3, 2));
    CHECK(metric_config_from_name(&mc, "binary_accuracy", 0) == 0 && mc.threshold == 0.5);
    CHECK(metric_sum(&mc, out, NULL, labels, 3, 3) == metric_binary_accuracy(out, y, 3, 3, 0.5));
    /* by hand: example 0 has all three right, examples 1 and 2 one of three */
    CHECK_CLOSE(metric_sum(&mc, out, NULL, labels, 3, 3), 1.0 + 1.0 / 3 + 1.0 / 3, 1e-12, 0);
}

static void test_smoothing_and_logits(void)
{
    const float p[] = {0.7f, 0.2f, 0.1f}, y[] = {0, 1, 0};
    struct loss_config c = {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0.1};
    CHECK_CLOSE(loss_of(&c, p, y, NULL, 1, 3, 0), 1.590784052836253, 1e-6, 0);
    const uint8_t label[] = {1};
    c.kind = LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY;
    c.label_smoothing = 0;
    CHECK_CLOSE(loss_of(&c, p, NULL, label, 1, 3, 0), 1.6094379124341003, 1e-6, 0);
    const float z[] = {2.0f, -1.0f, 0.5f};
    c.from_logits = true;
    CHECK_CLOSE(loss_of(&c, z, NULL, label, 1, 3, 0), 3.241311296657157, 1e-6, 0);
    c.kind = LOSS_KIND_CATEGORICAL_CROSSENTROPY;
    CHECK_CLOSE(loss_of(&c, z, y, NULL, 1, 3, 0), 3.241311296657157, 1e-6, 0);
    const float bz[] = {1.5f, -0.3f}, by[] = {1, 0};
    c.kind = LOSS_KIND_BINARY_CROSSENTROPY;
    CHECK_CLOSE(loss_of(&c, bz, by, NULL, 1, 2, 0), 0.3778842612256398, 1e-6, 0);
    const float bp[] = {0.9f, 0.3f};
    c.from_logits = false;
    c.label_smoothing = 0.2; /* targets 0.9 and 0.1 */
    CHECK_CLOSE(loss_of(&c, bp, by, NULL, 1, 2, 0), 0.3832436707321048, 1e-6, 0);
    CHECK_INT_EQ(loss_kind_from_name("mse"), LOSS_KIND_MEAN_SQUARED_ERROR);
    CHECK_INT_EQ(loss_kind_from_name("sparse_categorical_crossentropy"),
                 LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY);
    CHECK_INT_EQ(loss_kind_from_name("hinge"), -1);
    CHECK_STR_EQ(loss_kind_name(LOSS_KIND_BINARY_CROSSENTROPY), "binary_crossentropy");
}

/* Every loss and option: loss_backward against central differences of
 * sum_e w_e loss_e * scale. */
static void test_gradients(void)
{
    enum { N = 2, K = 4 };
    const float base[N * K] = {0.15f, 0.45f, 0.3f, 0.1f, 0.6f, 0.05f, 0.2f, 0.15f};
    const float y[N * K] = {0, 1, 0, 0, 0, 0, 1, 0};
    const float yb[N * K] = {1, 0, 1, 0, 0, 1, 1, 0};
    const uint8_t labels[N] = {1, 2};
    const float weights[N] = {1.0f, 2.5f}; /* class_weight of each example's label */
    const struct {
        struct loss_config c;
        bool sparse, binary;
    } cases[] = {
        {{LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0}, false, false},
        {{LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0.2}, false, false},
        {{LOSS_KIND_CATEGORICAL_CROSSENTROPY, true, 0.1}, false, false},
        {{LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY, false, 0}, true, false},
        {{LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY, true, 0}, true, false},
        {{LOSS_KIND_BINARY_CROSSENTROPY, false, 0}, false, true},
        {{LOSS_KIND_BINARY_CROSSENTROPY, true, 0.1}, false, true},
        {{LOSS_KIND_MEAN_SQUARED_ERROR, false, 0}, false, false},
        {{LOSS_KIND_MEAN_ABSOLUTE_ERROR, false, 0}, false, false},
    };
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        const struct loss_config *c = &cases[ci].c;
        const float *yy = cases[ci].sparse ? NULL : cases[ci].binary ? yb : y;
        const uint8_t *ll = cases[ci].sparse ? labels : NULL;
        float out[N * K], g[N * K];
        memcpy(out, base, sizeof(out));
        const float scale = 0.5f;
        loss_backward(c, g, out, yy, ll, weights, scale, N, K);
        for (int i = 0; i < N * K; i++) {
            const float h = 1e-3f;
            float save = out[i];
            float l[N];
            out[i] = save + h;
            loss_forward(c, l, out, yy, ll, N, K);
            double up = (weights[0] * l[0] + weights[1] * l[1]) * scale;
            out[i] = save - h;
            loss_forward(c, l, out, yy, ll, N, K);
            double down = (weights[0] * l[0] + weights[1] * l[1]) * scale;
            out[i] = save;
            double fd = (up - down) / (2.0 * ((double)(save + h) - save));
            CHECK_MSG(fabs(g[i] - fd) <= 2e-3 + 1e-2 * fabs(fd), "case %zu (%s) entry %d: %.6g vs %.6g",
                      ci, loss_kind_name(c->kind), i, g[i], fd);
        }
    }
}

/* A clipped probability contributes no gradient through its own log, as in
 * Keras; the loss stays finite. */
static void test_clipping(void)
{
    const float out[] = {0.0f, 1.0f}, y[] = {1, 0};
    struct loss_config c = {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0};
    float l[1], g[2];
    loss_forward(&c, l, out, y, NULL, 1, 2);
    CHECK_CLOSE(l[0], -log(1e-7), 1e-6, 0);
    loss_backward(&c, g, out, y, NULL, NULL, 1.0f, 1, 2);
    CHECK(isfinite(g[0]) && isfinite(g[1]));
    c.kind = LOSS_KIND_BINARY_CROSSENTROPY;
    loss_forward(&c, l, out, y, NULL, 1, 2);
    CHECK(isfinite(l[0]) && l[0] > 10);
}

int main(void)
{
    TEST_RUN(test_keras_doc_values);
    TEST_RUN(test_metric_sum);
    TEST_RUN(test_smoothing_and_logits);
    TEST_RUN(test_gradients);
    TEST_RUN(test_clipping);
    return TEST_EXIT();
}
