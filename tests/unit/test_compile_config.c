/* test_compile_config.c - the training_config (tf.keras 2.15) and
 * compile_config (Keras 3.10) a full-model file records of a job's
 * compile(), as exact text: names stay strings, objects carry every key their
 * get_config() prints, the optimizer its flavour's keys. */
#include <stdlib.h>
#include <string.h>

#include "compile_config.h"
#include "test.h"

static struct optimizer *make_optimizer(struct model **ret_m, enum optimizer_kind kind,
                                        double lr, double clipnorm)
{
    struct model_spec ms = {0};
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(model_spec_builtin(&ms, "mlp", (const int[3]){2, 2, 1}, 3, &d), 0);
    struct model *m = NULL;
    int r = model_create(&m, &ms, 2, 1, &d);
    model_spec_free(&ms);
    CHECK_MSG(r == 0, "%s", d.message);
    if (r < 0)
        return NULL;
    struct optimizer_config c;
    optimizer_config_default(&c, kind);
    c.learning_rate = lr;
    c.clipnorm = clipnorm;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, m, &d), 0);
    *ret_m = m;
    return opt;
}

static void check_text(char *got, const char *want)
{
    CHECK_MSG(got && strcmp(got, want) == 0, "\n got %s\nwant %s", got ? got : "(null)", want);
    free(got);
}

static void test_defaults(void)
{
    struct model *m = NULL;
    struct optimizer *opt = make_optimizer(&m, OPTIMIZER_KIND_SGD, 0.01, 0);
    if (!opt)
        return;
    check_text(compile_config_to_json(NULL, opt, KERAS_FLAVOUR_TF2),
               "{\"loss\": \"categorical_crossentropy\", \"metrics\": [\"accuracy\"], "
               "\"weighted_metrics\": null, \"loss_weights\": null, \"optimizer_config\": "
               "{\"class_name\": \"SGD\", \"config\": {\"name\": \"SGD\", \"learning_rate\": 0.01, "
               "\"decay\": 0.0, \"momentum\": 0.0, \"nesterov\": false}}}");
    /* Keras 3 keeps learning_rate in a float32 variable */
    check_text(compile_config_to_json(NULL, opt, KERAS_FLAVOUR_KERAS3),
               "{\"optimizer\": {\"module\": \"keras.optimizers\", \"class_name\": \"SGD\", "
               "\"config\": {\"name\": \"SGD\", \"learning_rate\": 0.009999999776482582, "
               "\"weight_decay\": null, \"clipnorm\": null, \"global_clipnorm\": null, "
               "\"clipvalue\": null, \"use_ema\": false, \"ema_momentum\": 0.99, "
               "\"ema_overwrite_frequency\": null, \"loss_scale_factor\": null, "
               "\"gradient_accumulation_steps\": null, \"momentum\": 0.0, \"nesterov\": false}, "
               "\"registered_name\": null}, \"loss\": \"categorical_crossentropy\", "
               "\"loss_weights\": null, \"metrics\": [\"accuracy\"], \"weighted_metrics\": null, "
               "\"run_eagerly\": false, \"steps_per_execution\": 1, \"jit_compile\": false}");
    check_text(compile_config_to_json(NULL, NULL, KERAS_FLAVOUR_KERAS3),
               "{\"optimizer\": null, \"loss\": \"categorical_crossentropy\", "
               "\"loss_weights\": null, \"metrics\": [\"accuracy\"], \"weighted_metrics\": null, "
               "\"run_eagerly\": false, \"steps_per_execution\": 1, \"jit_compile\": false}");
    optimizer_free(opt);
    model_free(m);
}

static void test_objects(void)
{
    struct model *m = NULL;
    struct optimizer *opt = make_optimizer(&m, OPTIMIZER_KIND_RMSPROP, 0.001, 1.0);
    if (!opt)
        return;
    struct compile_spec c = {
        .loss = "sparse_categorical_crossentropy",
        .loss_object = true,
        .loss_config = {.kind = LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY, .from_logits = true},
        .n_metrics = 2,
        .metrics = {{.name = "acc"},
                    {.name = "half", .object = true,
                     .config = {.kind = METRIC_KIND_BINARY_ACCURACY, .threshold = 0.25}}},
    };
    check_text(compile_config_to_json(&c, opt, KERAS_FLAVOUR_TF2),
               "{\"loss\": {\"class_name\": \"SparseCategoricalCrossentropy\", \"config\": "
               "{\"reduction\": \"auto\", \"name\": \"sparse_categorical_crossentropy\", "
               "\"from_logits\": true, \"ignore_class\": null}}, \"metrics\": [\"acc\", "
               "{\"class_name\": \"BinaryAccuracy\", \"config\": {\"name\": \"half\", "
               "\"dtype\": \"float32\", \"threshold\": 0.25}}], \"weighted_metrics\": null, "
               "\"loss_weights\": null, \"optimizer_config\": {\"class_name\": \"RMSprop\", "
               "\"config\": {\"name\": \"RMSprop\", \"learning_rate\": 0.001, \"decay\": 0.0, "
               "\"rho\": 0.9, \"momentum\": 0.0, \"epsilon\": 1e-07, \"centered\": false, "
               "\"clipnorm\": 1.0}}}");
    check_text(compile_config_to_json(&c, opt, KERAS_FLAVOUR_KERAS3),
               "{\"optimizer\": {\"module\": \"keras.optimizers\", \"class_name\": \"RMSprop\", "
               "\"config\": {\"name\": \"rmsprop\", \"learning_rate\": 0.0010000000474974513, "
               "\"weight_decay\": null, \"clipnorm\": 1.0, \"global_clipnorm\": null, "
               "\"clipvalue\": null, \"use_ema\": false, \"ema_momentum\": 0.99, "
               "\"ema_overwrite_frequency\": null, \"loss_scale_factor\": null, "
               "\"gradient_accumulation_steps\": null, \"rho\": 0.9, \"momentum\": 0.0, "
               "\"epsilon\": 1e-07, \"centered\": false}, \"registered_name\": null}, "
               "\"loss\": {\"module\": \"keras.losses\", \"class_name\": "
               "\"SparseCategoricalCrossentropy\", \"config\": {\"name\": "
               "\"sparse_categorical_crossentropy\", \"reduction\": \"sum_over_batch_size\", "
               "\"from_logits\": true, \"ignore_class\": null}, \"registered_name\": null}, "
               "\"loss_weights\": null, \"metrics\": [\"acc\", {\"module\": \"keras.metrics\", "
               "\"class_name\": \"BinaryAccuracy\", \"config\": {\"name\": \"half\", \"dtype\": "
               "\"float32\", \"threshold\": 0.25}, \"registered_name\": null}], "
               "\"weighted_metrics\": null, \"run_eagerly\": false, \"steps_per_execution\": 1, "
               "\"jit_compile\": false}");
    optimizer_free(opt);
    model_free(m);
}

int main(void)
{
    TEST_RUN(test_defaults);
    TEST_RUN(test_objects);
    return TEST_EXIT();
}
