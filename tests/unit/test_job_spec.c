/* test_job_spec.c - api/job_spec: accepted specs with their defaults, a
 * table of rejections each naming the exact JSON pointer of the bad field,
 * and the round trip parse -> to_json -> parse. */
#include "job_spec.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

#define REFERENCE_JOB                                                                         \
    "{\"name\": \"fashion-minivggnet\", \"dataset\": \"fashion-mnist\", \"model\": "          \
    "\"minivggnet\",\n"                                                                       \
    " \"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 0.01, \"decay\": 0.00025, "       \
    "\"momentum\": 0.9, \"nesterov\": true},\n"                                               \
    " \"batch_size\": 64, \"epochs\": 40, \"seed\": 1, \"steps_per_epoch\": null, "           \
    "\"validation_steps\": null,\n"                                                           \
    " \"checkpoints\": [{\"filepath\": \"weights-{epoch:03d}-{val_loss:.4f}.hdf5\", "         \
    "\"monitor\": \"val_loss\",\n"                                                            \
    "                  \"mode\": \"min\", \"save_best_only\": true, \"save_weights_only\": "  \
    "false,\n"                                                                                \
    "                  \"save_freq\": \"epoch\", \"initial_value_threshold\": null, "         \
    "\"save_top_k\": null,\n"                                                                 \
    "                  \"save_last\": false, \"verbose\": 1}],\n"                             \
    " \"callbacks\": {\"early_stopping\": {\"monitor\": \"val_loss\", \"patience\": 5}}}"

/* A tf.keras 2 model.to_json() of a small MLP. */
#define INLINE_MODEL                                                                          \
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["    \
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 28, 28, 1], " \
    "\"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"flatten_input\"}}, " \
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\", \"trainable\": true, "  \
    "\"dtype\": \"float32\", \"data_format\": \"channels_last\"}}, "                          \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"trainable\": true, "      \
    "\"dtype\": \"float32\", \"units\": 10, \"activation\": \"softmax\", \"use_bias\": true, " \
    "\"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}, " \
    "\"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}, "                     \
    "\"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null, " \
    "\"kernel_constraint\": null, \"bias_constraint\": null}}]}, "                            \
    "\"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}"

static int parse(struct job_spec *s, const char *json, struct diag *d)
{
    memset(d, 0, sizeof(*d));
    return job_spec_parse(s, json, strlen(json), d);
}

/* Parse json into *s; a failure is a failed check that names the calling
 * line, the field and the message.  True when s holds the parsed spec (the
 * caller frees it). */
#define PARSE_OK(s, json) parse_ok((s), (json), __LINE__)
static bool parse_ok(struct job_spec *s, const char *json, int line)
{
    struct diag d;
    int r = parse(s, json, &d);
    CHECK_MSG(r == 0, "line %d: %s: %s", line, d.field, d.message);
    return r == 0;
}

static void test_reference_job(void)
{
    struct job_spec s;
    if (!PARSE_OK(&s, REFERENCE_JOB))
        return;
    CHECK_STR_EQ(s.name, "fashion-minivggnet");
    CHECK_STR_EQ(s.dataset, "fashion-mnist");
    CHECK_STR_EQ(s.model, "minivggnet");
    CHECK(s.model_json == NULL);
    CHECK(s.optimizer.kind == OPTIMIZER_KIND_SGD);
    CHECK_CLOSE(s.optimizer.learning_rate, 0.01, 0, 0);
    CHECK_CLOSE(s.optimizer.decay, 0.00025, 0, 0);
    CHECK_CLOSE(s.optimizer.momentum, 0.9, 0, 0);
    CHECK(s.optimizer.nesterov);
    CHECK_INT_EQ(s.batch_size, 64);
    CHECK_INT_EQ(s.epochs, 40);
    CHECK_INT_EQ(s.seed, 1);
    CHECK_INT_EQ(s.steps_per_epoch, 0);
    CHECK_INT_EQ(s.validation_steps, 0);
    CHECK_INT_EQ(s.threads, 0);
    CHECK_INT_EQ(s.n_checkpoints, 1);
    const struct ckpt_policy_config *c = &s.checkpoints[0];
    CHECK_STR_EQ(c->filepath, "weights-{epoch:03d}-{val_loss:.4f}.hdf5");
    CHECK_STR_EQ(c->monitor, "val_loss");
    CHECK(c->mode == CKPT_MODE_MIN);
    CHECK(c->save_best_only);
    CHECK(!c->save_weights_only);
    CHECK_INT_EQ(c->save_freq, 0);
    CHECK(!c->has_initial_value_threshold);
    CHECK_INT_EQ(c->save_top_k, 0);
    CHECK(!c->save_last);
    CHECK_INT_EQ(c->verbose, 1);
    CHECK(s.early_stopping.enabled);
    CHECK_STR_EQ(s.early_stopping.monitor, "val_loss");
    CHECK_INT_EQ(s.early_stopping.patience, 5);
    CHECK(s.early_stopping.mode == CKPT_MODE_AUTO);
    CHECK(!s.early_stopping.has_baseline);
    CHECK(!s.early_stopping.restore_best_weights);
    job_spec_free(&s);
}

static void test_defaults(void)
{
    struct job_spec s;
    if (!PARSE_OK(&s, "{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\"}"))
        return;
    CHECK_STR_EQ(s.name, "");
    CHECK_INT_EQ(s.batch_size, 32);
    CHECK_INT_EQ(s.epochs, 1);
    CHECK_INT_EQ(s.seed, 1);
    CHECK(s.optimizer.kind == OPTIMIZER_KIND_SGD);
    CHECK_CLOSE(s.optimizer.learning_rate, 0.01, 0, 0);
    CHECK_CLOSE(s.optimizer.momentum, 0.0, 0, 0);
    CHECK(!s.optimizer.nesterov);
    CHECK_CLOSE(s.validation_split, 0.0, 0, 0);
    CHECK_INT_EQ(s.dataset_limit, 0);
    CHECK_INT_EQ(s.validation_limit, 0);
    CHECK_INT_EQ(s.n_checkpoints, 0);
    CHECK(!s.early_stopping.enabled);
    job_spec_free(&s);

    /* A policy with only a filepath gets the tf.keras defaults. */
    if (PARSE_OK(&s, "{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\", \"checkpoints\": "
                     "[{\"filepath\": \"best.h5\"}]}")) {
        const struct ckpt_policy_config *c = &s.checkpoints[0];
        CHECK_STR_EQ(c->monitor, "val_loss");
        CHECK(c->mode == CKPT_MODE_AUTO);
        CHECK(!c->save_best_only && !c->save_weights_only && !c->save_last);
        CHECK_INT_EQ(c->save_freq, 0);
        CHECK_INT_EQ(c->verbose, 0);
        job_spec_free(&s);
    }
}

static void test_variants(void)
{
    struct job_spec s;
    struct diag d;
    /* Dataset object with our limits, Adam with its defaults, threads, steps. */
    if (PARSE_OK(&s,
                 "{\"dataset\": {\"name\": \"cifar10\", \"validation_split\": 0.1, \"limit\": "
                 "2000, \"validation_limit\": 500}, \"model\": \"shallownet\", \"optimizer\": "
                 "{\"name\": \"Adam\", \"learning_rate\": 0.002}, \"threads\": 2, "
                 "\"steps_per_epoch\": 10, \"validation_steps\": 3, \"seed\": 9007199254740991}")) {
        CHECK_STR_EQ(s.dataset, "cifar10");
        CHECK_CLOSE(s.validation_split, 0.1, 0, 0);
        CHECK_INT_EQ(s.dataset_limit, 2000);
        CHECK_INT_EQ(s.validation_limit, 500);
        CHECK(s.optimizer.kind == OPTIMIZER_KIND_ADAM);
        CHECK_CLOSE(s.optimizer.learning_rate, 0.002, 0, 0);
        CHECK_CLOSE(s.optimizer.beta_1, 0.9, 0, 0);
        CHECK_CLOSE(s.optimizer.beta_2, 0.999, 0, 0);
        CHECK_CLOSE(s.optimizer.epsilon, 1e-7, 0, 0);
        CHECK_INT_EQ(s.threads, 2);
        CHECK_INT_EQ(s.steps_per_epoch, 10);
        CHECK_INT_EQ(s.validation_steps, 3);
        CHECK(s.seed == 9007199254740991ull);
        job_spec_free(&s);
    }

    /* Optimizer as a bare name, Keras 2's old "lr", integral float, two policies,
     * batch saving, full early stopping. */
    if (PARSE_OK(&s,
                 "{\"dataset\": \"fashion-mnist\", \"model\": \"mlp\", \"optimizer\": \"adam\", "
                 "\"epochs\": 3.0, \"checkpoints\": ["
                 "{\"filepath\": \"b-{epoch}.weights.h5\", \"save_weights_only\": true, \"monitor\": "
                 "\"val_acc\", \"save_top_k\": 2, \"save_last\": true, \"initial_value_threshold\": "
                 "0.5},"
                 "{\"filepath\": \"e{epoch:02d}-b{batch:04d}.h5\", \"monitor\": \"loss\", "
                 "\"save_freq\": 100}],"
                 "\"callbacks\": {\"early_stopping\": {\"monitor\": \"val_acc\", \"patience\": 2, "
                 "\"min_delta\": 0.001, \"mode\": \"max\", \"baseline\": 0.5, "
                 "\"restore_best_weights\": true}}}")) {
        CHECK(s.optimizer.kind == OPTIMIZER_KIND_ADAM);
        CHECK_CLOSE(s.optimizer.learning_rate, 0.001, 0, 0);
        CHECK_INT_EQ(s.epochs, 3);
        CHECK_INT_EQ(s.n_checkpoints, 2);
        CHECK_INT_EQ(s.checkpoints[0].save_top_k, 2);
        CHECK(s.checkpoints[0].save_last);
        CHECK(s.checkpoints[0].has_initial_value_threshold);
        CHECK_CLOSE(s.checkpoints[0].initial_value_threshold, 0.5, 0, 0);
        CHECK_INT_EQ(s.checkpoints[1].save_freq, 100);
        CHECK(s.early_stopping.enabled);
        CHECK_STR_EQ(s.early_stopping.monitor, "val_accuracy");
        CHECK(s.early_stopping.mode == CKPT_MODE_MAX);
        CHECK(s.early_stopping.has_baseline);
        CHECK_CLOSE(s.early_stopping.baseline, 0.5, 0, 0);
        CHECK_CLOSE(s.early_stopping.min_delta, 0.001, 0, 0);
        CHECK(s.early_stopping.restore_best_weights);
        job_spec_free(&s);
    }

    int r = parse(&s, "{\"dataset\": \"fashion-mnist\", \"model\": {\"class_name\": \"x\"}, \"optimizer\": "
                  "{\"name\": \"sgd\", \"lr\": 0.05}}",
              &d);
    CHECK(r < 0); /* class_name must be Sequential */
    CHECK(strncmp(d.field, "/model", 6) == 0);
    if (PARSE_OK(&s, "{\"dataset\": \"fashion-mnist\", \"model\": \"mlp\", \"optimizer\": "
                 "{\"name\": \"sgd\", \"lr\": 0.05}}")) {
        CHECK_CLOSE(s.optimizer.learning_rate, 0.05, 0, 0);
        job_spec_free(&s);
    }
}

static void test_inline_model(void)
{
    struct job_spec s;
    if (PARSE_OK(&s, "{\"dataset\": \"fashion-mnist\", \"model\": " INLINE_MODEL "}")) {
        CHECK_STR_EQ(s.model, "");
        CHECK(s.model_json && strstr(s.model_json, "\"Sequential\""));
        job_spec_free(&s);
    }
    /* model.to_json() pasted as a string. */
    char *str = NULL;
    {
        /* escape the quotes of INLINE_MODEL */
        const char *m = INLINE_MODEL;
        size_t n = strlen(m);
        str = malloc(2 * n + 128);
        size_t k = (size_t)sprintf(str, "{\"dataset\": \"fashion-mnist\", \"model\": \"");
        for (size_t i = 0; i < n; i++) {
            if (m[i] == '"')
                str[k++] = '\\';
            str[k++] = m[i];
        }
        strcpy(str + k, "\"}");
    }
    bool ok = PARSE_OK(&s, str);
    free(str);
    if (ok) {
        CHECK(s.model_json != NULL);
        job_spec_free(&s);
    }
}

struct reject_case {
    const char *json;
    const char *field;
    const char *message_part; /* NULL: not checked */
};

#define JOB(rest) "{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\"" rest "}"
#define CKPT(rest) JOB(", \"checkpoints\": [{\"filepath\": \"w.h5\"" rest "}]")
#define ES(rest) JOB(", \"callbacks\": {\"early_stopping\": {" rest "}}")
#define RLROP(rest) JOB(", \"callbacks\": {\"reduce_lr_on_plateau\": {" rest "}}")
#define SCHED(rest) JOB(", \"callbacks\": {\"lr_scheduler\": {" rest "}}")
#define COSINE                                                                                    \
    "{\"module\": \"keras.optimizers.schedules\", \"class_name\": \"CosineDecay\", \"config\": "    \
    "{\"initial_learning_rate\": 0.0, \"decay_steps\": 1000, \"alpha\": 0.0, \"name\": \"CosineDecay\", " \
    "\"warmup_target\": 0.1, \"warmup_steps\": 100}, \"registered_name\": null}"
#define STEP "\"schedule\": \"step_decay\", \"initial_learning_rate\": 0.01, \"factor\": 0.25, "

static const struct reject_case reject_cases[] = {
    /* loss and metrics (compile()) */
    {JOB(", \"loss\": 3"), "/loss", "loss name or a serialized Keras loss"},
    {JOB(", \"loss\": \"hinge\""), "/loss", "unknown loss 'hinge'"},
    {JOB(", \"loss\": \"Binary_Crossentropy\""), "/loss", "unknown loss"},
    {JOB(", \"metrics\": \"accuracy\""), "/metrics", "a list of 1 to 6 metrics"},
    {JOB(", \"metrics\": []"), "/metrics", "a list of 1 to 6 metrics"},
    {JOB(", \"metrics\": [\"accuracy\", \"acc\"]"), "/metrics/1", "as /metrics/0 does"},
    {JOB(", \"metrics\": [\"mae\", \"accuracy\", \"acc\"]"), "/metrics/2", "as /metrics/1 does"},
    {JOB(", \"metrics\": [\"mean_absolute_error\", {\"class_name\": \"MeanAbsoluteError\"}]"),
     "/metrics/1", "logs under 'mean_absolute_error'"},
    {JOB(", \"metrics\": [\"mae\", \"f1\"]"), "/metrics/1", "unknown metric 'f1'"},
    {JOB(", \"metrics\": [\"mae\", {\"class_name\": \"BinaryAccuracy\", \"config\": {\"k\": 2}}]"),
     "/metrics/1/config/k", "BinaryAccuracy has no k"},
    {JOB(", \"metrics\": [\"mae\", \"mse\", \"acc\", \"binary_accuracy\", "
         "\"categorical_accuracy\", \"mean_squared_error\", \"top_k_categorical_accuracy\"]"),
     "/metrics", "a list of 1 to 6 metrics"},
    {JOB(", \"metrics\": [\"mae\", \"mse\"], \"callbacks\": {\"early_stopping\": {\"monitor\": "
         "\"val_accuracy\"}}"),
     "/callbacks/early_stopping/monitor", "logs loss, mae, mse, val_loss, val_mae and val_mse"},
    {JOB(", \"metrics\": [7]"), "/metrics/0", "metric name or a serialized Keras metric"},
    {JOB(", \"metrics\": [\"f1\"]"), "/metrics/0", "unknown metric 'f1'"},
    {JOB(", \"metrics\": [\"AUC\"]"), "/metrics/0", "unknown metric 'AUC'"},
    /* serialized losses and metrics, class_weight */
    {JOB(", \"loss\": \"MSE\""), "/loss", NULL},
    {JOB(", \"loss\": {\"class_name\": \"Hinge\"}"), "/loss/class_name", NULL},
    {JOB(", \"loss\": {\"config\": {}}"), "/loss/class_name", NULL},
    {JOB(", \"loss\": {\"class_name\": \"MeanSquaredError\", \"config\": "
         "{\"from_logits\": true}}"),
     "/loss/config/from_logits", NULL},
    {JOB(", \"loss\": {\"class_name\": \"SparseCategoricalCrossentropy\", \"config\": "
         "{\"label_smoothing\": 0.1}}"),
     "/loss/config/label_smoothing", NULL},
    {JOB(", \"loss\": {\"class_name\": \"CategoricalCrossentropy\", \"config\": "
         "{\"label_smoothing\": 1.5}}"),
     "/loss/config/label_smoothing", NULL},
    {JOB(", \"loss\": {\"class_name\": \"CategoricalCrossentropy\", \"config\": "
         "{\"reduction\": \"sum\"}}"),
     "/loss/config/reduction", NULL},
    {JOB(", \"loss\": {\"class_name\": \"CategoricalCrossentropy\", \"config\": "
         "{\"axis\": 1}}"),
     "/loss/config/axis", NULL},
    {JOB(", \"loss\": {\"class_name\": \"CategoricalCrossentropy\", \"config\": "
         "{\"gamma\": 2}}"),
     "/loss/config/gamma", NULL},
    {JOB(", \"metrics\": [\"f1_score\"]"), "/metrics/0", NULL},
    {JOB(", \"metrics\": [{\"class_name\": \"TopKCategoricalAccuracy\", \"config\": "
         "{\"k\": 0}}]"),
     "/metrics/0/config/k", NULL},
    {JOB(", \"metrics\": [{\"class_name\": \"CategoricalAccuracy\", \"config\": "
         "{\"k\": 2}}]"),
     "/metrics/0/config/k", NULL},
    {JOB(", \"metrics\": [{\"class_name\": \"BinaryAccuracy\", \"config\": "
         "{\"name\": \"val_x\"}}]"),
     "/metrics/0/config/name", NULL},
    {JOB(", \"metrics\": [{\"class_name\": \"BinaryAccuracy\", \"config\": "
         "{\"name\": \"a b\"}}]"),
     "/metrics/0/config/name", NULL},
    {JOB(", \"class_weight\": [1, 2]"), "/class_weight", NULL},
    {JOB(", \"class_weight\": {\"x\": 1}"), "/class_weight/x", NULL},
    {JOB(", \"class_weight\": {\"01\": 1}"), "/class_weight/01", NULL},
    {JOB(", \"class_weight\": {\"256\": 1}"), "/class_weight/256", NULL},
    {JOB(", \"class_weight\": {\"-1\": 1}"), "/class_weight/-1", NULL},
    {JOB(", \"class_weight\": {\"2\": -1}"), "/class_weight/2", NULL},
    {JOB(", \"class_weight\": {\"2\": \"1\"}"), "/class_weight/2", NULL},
    /* the monitors and templates know the metric's log keys, and only those */
    {JOB(", \"metrics\": [\"sparse_categorical_accuracy\"], \"checkpoints\": "
         "[{\"filepath\": \"w.h5\", \"monitor\": \"val_accuracy\", \"save_best_only\": true}]"),
     "/checkpoints/0/monitor", NULL},
    {JOB(", \"metrics\": [\"sparse_categorical_accuracy\"], \"checkpoints\": "
         "[{\"filepath\": \"w-{val_accuracy:.4f}.h5\"}]"),
     "/checkpoints/0/filepath", NULL},
    {JOB(", \"metrics\": [\"sparse_categorical_accuracy\"], \"callbacks\": "
         "{\"early_stopping\": {\"monitor\": \"accuracy\"}}"),
     "/callbacks/early_stopping/monitor", "val_sparse_categorical_accuracy"},
    /* malformed JSON */
    {"", "", "malformed JSON"},
    {"{\"dataset\": \"fashion-mnist\",\n \"model\": }", "", "line 2 column"},
    {"{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\"", "", "end of input"},
    {JOB("") " {}", "", "after the object"},
    {JOB("") "x", "", "line 1"},
    {"[1, 2]", "", "JSON object"},
    {"null", "", "JSON object"},
    /* required */
    {"{\"model\": \"lenet\"}", "/dataset", "required"},
    {"{\"dataset\": \"fashion-mnist\"}", "/model", "required"},
    {"{\"dataset\": {\"limit\": 10}, \"model\": \"lenet\"}", "/dataset/name", "required"},
    {"{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\", \"optimizer\": {}}",
     "/optimizer/name", "required"},
    {JOB(", \"checkpoints\": [{\"monitor\": \"val_loss\"}]"), "/checkpoints/0/filepath",
     "required"},
    /* unknown and duplicate fields at each level */
    {JOB(", \"epoch\": 3"), "/epoch", "unknown field"},
    {JOB(", \"a/b~c\": 3"), "/a~1b~0c", "unknown field"},
    {"{\"dataset\": {\"name\": \"x\", \"split\": 0.1}, \"model\": \"lenet\"}", "/dataset/split",
     "unknown field"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"beta_1\": 0.9}"), "/optimizer/beta_1",
     "unknown field"},
    {JOB(", \"optimizer\": {\"name\": \"adam\", \"momentum\": 0.9}"), "/optimizer/momentum",
     "Adam"},
    {CKPT(", \"period\": 2"), "/checkpoints/0/period", "unknown field"},
    {JOB(", \"callbacks\": {\"csv_logger\": {}}"), "/callbacks/csv_logger", "unknown field"},
    {ES("\"patience\": 2, \"verbose\": 1"), "/callbacks/early_stopping/verbose", "unknown field"},
    {JOB(", \"epochs\": 2, \"epochs\": 3"), "/epochs", "duplicate"},
    /* wrong types */
    {JOB(", \"epochs\": \"3\""), "/epochs", "integer"},
    {JOB(", \"epochs\": 2.5"), "/epochs", "fractional"},
    {JOB(", \"batch_size\": true"), "/batch_size", "integer"},
    {JOB(", \"seed\": -1"), "/seed", NULL},
    {JOB(", \"seed\": 1e300"), "/seed", NULL},
    {JOB(", \"name\": 5"), "/name", "string"},
    {JOB(", \"name\": \"a\\nb\""), "/name", "control"},
    {"{\"dataset\": 5, \"model\": \"lenet\"}", "/dataset", NULL},
    {"{\"dataset\": \"\", \"model\": \"lenet\"}", "/dataset", "empty"},
    {"{\"dataset\": \"../etc\", \"model\": \"lenet\"}", "/dataset", NULL},
    {"{\"dataset\": {\"name\": \"x\", \"validation_split\": \"0.1\"}, \"model\": \"lenet\"}",
     "/dataset/validation_split", "number"},
    {"{\"dataset\": \"fashion-mnist\", \"model\": 7}", "/model", NULL},
    {"{\"dataset\": \"fashion-mnist\", \"model\": \"resnet50\"}", "/model", "minivggnet"},
    {JOB(", \"optimizer\": [\"sgd\"]"), "/optimizer", NULL},
    {JOB(", \"optimizer\": \"lion\""), "/optimizer", "unknown optimizer"},
    {JOB(", \"optimizer\": {\"name\": \"rmsprop\", \"nesterov\": true}"), "/optimizer/nesterov",
     "RMSprop"},
    {JOB(", \"optimizer\": {\"name\": \"adagrad\", \"initial_accumulator_value\": -1}"),
     "/optimizer/initial_accumulator_value", NULL},
    {JOB(", \"optimizer\": {\"name\": \"adamw\", \"weight_decay\": \"x\"}"),
     "/optimizer/weight_decay", NULL},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"clipnorm\": 1, \"global_clipnorm\": 1}"),
     "/optimizer/clipnorm", "Only one of"},
    {JOB(", \"optimizer\": {\"name\": \"nadam\", \"amsgrad\": true}"), "/optimizer/amsgrad",
     "unknown field"},
    {JOB(", \"optimizer\": {\"name\": \"rmsprop\", \"rho\": 1}"), "/optimizer/rho", NULL},
    {JOB(", \"optimizer\": {\"name\": \"adam\", \"clipvalue\": -0.5}"), "/optimizer/clipvalue", NULL},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"nesterov\": 1}"), "/optimizer/nesterov",
     "boolean"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"lr\": 0.1, \"learning_rate\": 0.1}"),
     "/optimizer/lr", NULL},
    {JOB(", \"checkpoints\": {\"filepath\": \"w.h5\"}"), "/checkpoints", "array"},
    {JOB(", \"checkpoints\": [\"w.h5\"]"), "/checkpoints/0", "object"},
    {CKPT(", \"save_best_only\": \"true\""), "/checkpoints/0/save_best_only", "boolean"},
    {CKPT(", \"save_weights_only\": 0"), "/checkpoints/0/save_weights_only", "boolean"},
    {CKPT(", \"save_freq\": \"batch\""), "/checkpoints/0/save_freq", NULL},
    {CKPT(", \"save_freq\": 0"), "/checkpoints/0/save_freq", NULL},
    {CKPT(", \"save_freq\": 1.5"), "/checkpoints/0/save_freq", NULL},
    {CKPT(", \"initial_value_threshold\": \"x\""), "/checkpoints/0/initial_value_threshold",
     NULL},
    {CKPT(", \"save_top_k\": 0"), "/checkpoints/0/save_top_k", NULL},
    {CKPT(", \"save_last\": null"), "/checkpoints/0/save_last", "boolean"},
    {CKPT(", \"verbose\": 3"), "/checkpoints/0/verbose", NULL},
    {CKPT(", \"monitor\": 1"), "/checkpoints/0/monitor", "string"},
    {JOB(", \"callbacks\": []"), "/callbacks", "object"},
    {ES("\"patience\": -1"), "/callbacks/early_stopping/patience", NULL},
    {ES("\"min_delta\": -0.1"), "/callbacks/early_stopping/min_delta", NULL},
    {ES("\"baseline\": \"low\""), "/callbacks/early_stopping/baseline", NULL},
    {ES("\"restore_best_weights\": 1"), "/callbacks/early_stopping/restore_best_weights",
     "boolean"},
    {ES("\"monitor\": \"val_auc\""), "/callbacks/early_stopping/monitor", "unknown metric"},
    {ES("\"mode\": \"down\""), "/callbacks/early_stopping/mode", NULL},
    {ES("\"start_from_epoch\": -1"), "/callbacks/early_stopping/start_from_epoch", NULL},
    {JOB(", \"callbacks\": {\"early_stopping\": 3}"), "/callbacks/early_stopping", "object"},
    {RLROP("\"factor\": 1.0"), "/callbacks/reduce_lr_on_plateau/factor", NULL},
    {RLROP("\"factor\": -0.5"), "/callbacks/reduce_lr_on_plateau/factor", NULL},
    {RLROP("\"min_lr\": -1"), "/callbacks/reduce_lr_on_plateau/min_lr", NULL},
    {RLROP("\"cooldown\": 1.5"), "/callbacks/reduce_lr_on_plateau/cooldown", "fractional"},
    {RLROP("\"monitor\": \"lr\""), "/callbacks/reduce_lr_on_plateau/monitor", "unknown metric"},
    {RLROP("\"epsilon\": 0.1"), "/callbacks/reduce_lr_on_plateau/epsilon", "unknown field"},
    {RLROP("\"verbose\": 3"), "/callbacks/reduce_lr_on_plateau/verbose", NULL},
    {SCHED("\"schedule\": \"cosine\", \"initial_learning_rate\": 0.01, \"factor\": 0.25, \"drop_every\": 5"),
     "/callbacks/lr_scheduler/schedule", "step_decay"},
    {SCHED("\"initial_learning_rate\": 0.01"), "/callbacks/lr_scheduler/schedule", "required"},
    {SCHED(STEP "\"drop_every\": 0"), "/callbacks/lr_scheduler/drop_every", NULL},
    {SCHED(STEP "\"drop_every\": 2.5"), "/callbacks/lr_scheduler/drop_every", "fractional"},
    {SCHED("\"schedule\": \"step_decay\", \"factor\": 0.5, \"drop_every\": 5"),
     "/callbacks/lr_scheduler/initial_learning_rate", "required"},
    {SCHED("\"schedule\": \"step_decay\", \"initial_learning_rate\": 0.01, \"factor\": 0, "
           "\"drop_every\": 5"), "/callbacks/lr_scheduler/factor", NULL},
    {JOB(", \"callbacks\": {\"terminate_on_nan\": 1}"), "/callbacks/terminate_on_nan", "boolean"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"learning_rate\": {\"class_name\": \"CosineDecay\", "
         "\"config\": {\"initial_learning_rate\": 0.1}}}"),
     "/optimizer/learning_rate/config/decay_steps", "requires"},
    {JOB(", \"optimizer\": {\"name\": \"adam\", \"learning_rate\": {\"class_name\": \"Step\", "
         "\"config\": {}}}"),
     "/optimizer/learning_rate/class_name", "unknown schedule"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"learning_rate\": " COSINE "}, "
         "\"callbacks\": {\"reduce_lr_on_plateau\": {}}"),
     "/callbacks/reduce_lr_on_plateau", "schedule"},
    /* out of range */
    {JOB(", \"epochs\": 0"), "/epochs", "between 1 and 100000"},
    {JOB(", \"epochs\": 100001"), "/epochs", NULL},
    {JOB(", \"batch_size\": 0"), "/batch_size", NULL},
    {JOB(", \"batch_size\": 4097"), "/batch_size", NULL},
    {JOB(", \"threads\": 65"), "/threads", NULL},
    {JOB(", \"steps_per_epoch\": -1"), "/steps_per_epoch", NULL},
    {JOB(", \"validation_steps\": 0.5"), "/validation_steps", NULL},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 0}"), "/optimizer/learning_rate",
     "> 0"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 1e999}"),
     "/optimizer/learning_rate", "finite"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"momentum\": 1}"), "/optimizer/momentum", "< 1"},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"momentum\": -0.1}"), "/optimizer/momentum",
     NULL},
    {JOB(", \"optimizer\": {\"name\": \"sgd\", \"decay\": -1e-5}"), "/optimizer/decay", NULL},
    {JOB(", \"optimizer\": {\"name\": \"adam\", \"beta_2\": 1.0}"), "/optimizer/beta_2", NULL},
    {JOB(", \"optimizer\": {\"name\": \"adam\", \"epsilon\": 0}"), "/optimizer/epsilon", NULL},
    {"{\"dataset\": {\"name\": \"x\", \"validation_split\": 1}, \"model\": \"lenet\"}",
     "/dataset/validation_split", NULL},
    {"{\"dataset\": {\"name\": \"x\", \"validation_split\": -0.1}, \"model\": \"lenet\"}",
     "/dataset/validation_split", NULL},
    {"{\"dataset\": {\"name\": \"x\", \"limit\": -5}, \"model\": \"lenet\"}", "/dataset/limit",
     NULL},
    {"{\"dataset\": {\"name\": \"x\", \"validation_limit\": 1.5}, \"model\": \"lenet\"}",
     "/dataset/validation_limit", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"a{epoch}.h5\"}, {\"filepath\": \"b{epoch}.h5\"}, "
         "{\"filepath\": \"c.h5\"}, {\"filepath\": \"d.h5\"}, {\"filepath\": \"e.h5\"}, "
         "{\"filepath\": \"f.h5\"}, {\"filepath\": \"g.h5\"}, {\"filepath\": \"h.h5\"}, "
         "{\"filepath\": \"i.h5\"}]"),
     "/checkpoints", "at most 8"},
    /* checkpoint policies validated against this job's logs keys */
    {CKPT(", \"mode\": \"median\""), "/checkpoints/0/mode", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w-{val_los:.4f}.h5\"}]"), "/checkpoints/0/filepath",
     NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w-{epoch:03d.h5\"}]"), "/checkpoints/0/filepath",
     NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"../w.h5\"}]"), "/checkpoints/0/filepath", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"/tmp/w.h5\"}]"), "/checkpoints/0/filepath", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w.txt\"}]"), "/checkpoints/0/filepath", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w-{batch}.h5\"}]"), "/checkpoints/0/filepath",
     NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w.weights.h5\"}]"), "/checkpoints/0/filepath",
     NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"w.h5\"}, {\"filepath\": \"w.h5\", \"monitor\": "
         "\"loss\"}]"),
     "/checkpoints/1/filepath", "same filepath"},
    {CKPT(", \"monitor\": \"val_f1\""), "/checkpoints/0/mode", "mode"},
    {CKPT(", \"monitor\": \"val_auc\", \"mode\": \"max\", \"save_best_only\": true"),
     "/checkpoints/0/monitor", NULL},
    {CKPT(", \"monitor\": \"val_loss\", \"save_freq\": 10, \"save_best_only\": true"),
     "/checkpoints/0/monitor", NULL},
    {CKPT(", \"save_top_k\": 17"), "/checkpoints/0/save_top_k", NULL},
    {JOB(", \"checkpoints\": [{\"filepath\": \"a.h5\", \"save_last\": true}, {\"filepath\": "
         "\"b/c.h5\", \"save_last\": true}]"),
     "/checkpoints/1/save_last", "last.h5"},
    /* errors inside an inline model carry the /model prefix */
    {"{\"dataset\": \"fashion-mnist\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
     "{\"name\": \"sequential\", \"layers\": [{\"class_name\": \"InputLayer\", \"config\": "
     "{\"batch_input_shape\": [null, 28, 28, 1], \"name\": \"in\"}}, {\"class_name\": "
     "\"Flatten\", \"config\": {\"name\": \"flatten\"}}, {\"class_name\": \"Dense\", \"config\": "
     "{\"name\": \"dense\", \"units\": \"ten\", \"activation\": \"softmax\"}}]}}}",
     "/model/config/layers/2/config/units", NULL},
};

static void test_rejections(void)
{
    int n = (int)(sizeof(reject_cases) / sizeof(reject_cases[0]));
    for (int i = 0; i < n; i++) {
        const struct reject_case *c = &reject_cases[i];
        struct job_spec s;
        struct diag d;
        memset(&s, 0, sizeof(s));
        int r = parse(&s, c->json, &d);
        CHECK_MSG(r == -EINVAL, "case %d (%s): returned %d", i, c->json, r);
        if (r == 0) {
            job_spec_free(&s);
            continue;
        }
        CHECK_MSG(strcmp(d.field, c->field) == 0, "case %d (%s): field \"%s\" (%s), want \"%s\"",
                  i, c->json, d.field, d.message, c->field);
        CHECK_MSG(d.message[0] != '\0', "case %d: empty message", i);
        if (c->message_part)
            CHECK_MSG(strstr(d.message, c->message_part) != NULL,
                      "case %d: message \"%s\" lacks \"%s\"", i, d.message, c->message_part);
    }
    /* A NUL byte inside the given length is not ignored. */
    static const char with_nul[] = "{\"dataset\": \"fashion-mnist\", \"model\": \"lenet\"}\0{}";
    struct job_spec s;
    struct diag d;
    CHECK(job_spec_parse(&s, with_nul, sizeof(with_nul) - 1, &d) == -EINVAL);
    CHECK_STR_EQ(d.field, "");
    /* Exactly len bytes are read: a valid prefix parses. */
    CHECK(job_spec_parse(&s, with_nul, strlen(with_nul), &d) == 0);
    job_spec_free(&s);
}

/* parse(to_json(parse(x))) == parse(x), and to_json prints every default. */
/* The callbacks beyond EarlyStopping, with Keras' defaults filled in. */
static void test_callbacks(void)
{
    struct job_spec s;
    if (!PARSE_OK(&s, JOB(", \"callbacks\": {\"reduce_lr_on_plateau\": {\"monitor\": \"val_acc\"}, "
                          "\"lr_scheduler\": {" STEP "\"drop_every\": 5}, "
                          "\"terminate_on_nan\": true, \"early_stopping\": null}")))
        return;
    CHECK(s.reduce_lr.enabled);
    CHECK_STR_EQ(s.reduce_lr.monitor, "val_accuracy");
    CHECK(s.reduce_lr.factor == 0.1 && s.reduce_lr.patience == 10 && s.reduce_lr.min_delta == 1e-4);
    CHECK(s.reduce_lr.cooldown == 0 && s.reduce_lr.min_lr == 0 && s.reduce_lr.mode == CKPT_MODE_AUTO);
    CHECK(s.lr_scheduler.enabled && s.lr_scheduler.drop_every == 5);
    CHECK(s.lr_scheduler.initial_learning_rate == 0.01 && s.lr_scheduler.factor == 0.25);
    CHECK(s.terminate_on_nan);
    CHECK(!s.early_stopping.enabled);
    job_spec_free(&s);
    if (PARSE_OK(&s, JOB(""))) {
        CHECK(!s.reduce_lr.enabled && !s.lr_scheduler.enabled && !s.terminate_on_nan);
        job_spec_free(&s);
    }
}

/* loss and metrics: defaults, the metric's log keys in monitors and
 * filepath templates, "acc" logged as "accuracy". */
static void test_compile(void)
{
    struct job_spec s;
    if (PARSE_OK(&s, JOB(""))) {
        CHECK_STR_EQ(s.loss, "categorical_crossentropy");
        CHECK_STR_EQ(s.metrics[0].key, "accuracy");
        job_spec_free(&s);
    }
    if (PARSE_OK(&s, JOB(", \"loss\": \"sparse_categorical_crossentropy\", \"metrics\": "
                         "[\"sparse_categorical_accuracy\"], \"checkpoints\": [{\"filepath\": "
                         "\"w-{epoch:02d}-{val_sparse_categorical_accuracy:.4f}.h5\", \"monitor\": "
                         "\"val_sparse_categorical_accuracy\", \"save_best_only\": true}], "
                         "\"callbacks\": {\"early_stopping\": {\"monitor\": "
                         "\"sparse_categorical_accuracy\"}}"))) {
        CHECK_STR_EQ(s.loss, "sparse_categorical_crossentropy");
        CHECK_STR_EQ(s.metrics[0].key, "sparse_categorical_accuracy");
        CHECK_STR_EQ(s.checkpoints[0].monitor, "val_sparse_categorical_accuracy");
        CHECK_STR_EQ(s.early_stopping.monitor, "sparse_categorical_accuracy");
        char *text = job_spec_to_json(&s);
        CHECK(text && strstr(text, "\"metrics\":[\"sparse_categorical_accuracy\"]"));
        CHECK(text && strstr(text, "\"loss\":\"sparse_categorical_crossentropy\""));
        free(text);
        job_spec_free(&s);
    }
    if (PARSE_OK(&s, JOB(", \"metrics\": [\"acc\"], \"callbacks\": {\"early_stopping\": "
                         "{\"monitor\": \"val_acc\"}}"))) {
        CHECK_STR_EQ(s.metrics[0].key, "accuracy");
        CHECK_STR_EQ(s.early_stopping.monitor, "val_accuracy");
        job_spec_free(&s);
    }
    /* serialized Keras loss and metric objects, class_weight */
    if (PARSE_OK(&s, JOB(", \"loss\": {\"module\": \"keras.losses\", \"class_name\": "
                         "\"CategoricalCrossentropy\", \"config\": {\"name\": "
                         "\"categorical_crossentropy\", \"reduction\": \"sum_over_batch_size\", "
                         "\"from_logits\": false, \"label_smoothing\": 0.1, \"axis\": -1}, "
                         "\"registered_name\": null}, \"metrics\": [{\"class_name\": "
                         "\"TopKCategoricalAccuracy\", \"config\": {\"k\": 3, \"dtype\": "
                         "\"float32\"}}], \"class_weight\": {\"0\": 1.0, \"3\": 2.5}, "
                         "\"checkpoints\": [{\"filepath\": "
                         "\"w-{val_top_k_categorical_accuracy:.4f}.h5\", \"monitor\": "
                         "\"val_top_k_categorical_accuracy\"}]"))) {
        CHECK(s.loss_config.kind == LOSS_KIND_CATEGORICAL_CROSSENTROPY);
        CHECK(s.loss_config.label_smoothing == 0.1 && !s.loss_config.from_logits);
        CHECK(s.metrics[0].config.kind == METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY);
        CHECK_INT_EQ(s.metrics[0].config.k, 3);
        CHECK_STR_EQ(s.metrics[0].key, "top_k_categorical_accuracy");
        CHECK_INT_EQ(s.n_class_weight, 2);
        CHECK(s.class_weight[1].cls == 3 && s.class_weight[1].weight == 2.5);
        job_spec_free(&s);
    }
    if (PARSE_OK(&s, JOB(", \"loss\": \"mse\", \"metrics\": [{\"class_name\": "
                         "\"BinaryAccuracy\", \"config\": {\"name\": \"bin_acc\", "
                         "\"threshold\": 0.7}}]"))) {
        CHECK(s.loss_config.kind == LOSS_KIND_MEAN_SQUARED_ERROR);
        CHECK(s.metrics[0].config.kind == METRIC_KIND_BINARY_ACCURACY);
        CHECK(s.metrics[0].config.threshold == 0.7);
        CHECK_STR_EQ(s.metrics[0].key, "bin_acc");
        job_spec_free(&s);
    }
    /* a list of metrics: each logged under its key, any usable by monitors
     * and templates; the list prints back as given */
    if (PARSE_OK(&s, JOB(", \"loss\": \"sparse_categorical_crossentropy\", \"metrics\": "
                         "[\"acc\", \"mae\", {\"class_name\": \"TopKCategoricalAccuracy\", "
                         "\"config\": {\"name\": \"top2\", \"k\": 2}}], \"checkpoints\": "
                         "[{\"filepath\": \"w-{val_top2:.3f}-{mae:.2f}.h5\", \"monitor\": "
                         "\"val_top2\", \"mode\": \"max\"}], \"callbacks\": "
                         "{\"reduce_lr_on_plateau\": {\"monitor\": \"val_mae\"}}"))) {
        CHECK_INT_EQ(s.n_metrics, 3);
        CHECK_STR_EQ(s.metrics[0].key, "accuracy");
        CHECK(s.metrics[0].config.kind == METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY);
        CHECK_STR_EQ(s.metrics[1].key, "mae");
        CHECK(s.metrics[1].config.kind == METRIC_KIND_MEAN_ABSOLUTE_ERROR);
        CHECK_STR_EQ(s.metrics[2].key, "top2");
        CHECK_INT_EQ(s.metrics[2].config.k, 2);
        CHECK_STR_EQ(s.checkpoints[0].monitor, "val_top2");
        char *text = job_spec_to_json(&s);
        CHECK(text && strstr(text, "\"metrics\":[\"acc\",\"mae\",{\"class_name\":"
                                   "\"TopKCategoricalAccuracy\",\"config\":{\"name\":"
                                   "\"top2\",\"k\":2}}]"));
        free(text);
        job_spec_free(&s);
    }
    /* "accuracy" means what Keras resolves it to for the loss's targets */
    if (PARSE_OK(&s, JOB(", \"loss\": \"sparse_categorical_crossentropy\""))) {
        CHECK(s.metrics[0].config.kind == METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY);
        job_spec_free(&s);
    }
}

static void test_round_trip(void)
{
    static const char *const jobs[] = {
        REFERENCE_JOB,
        JOB(""),
        "{\"dataset\": {\"name\": \"cifar10\", \"validation_split\": 0.2, \"limit\": 100}, "
        "\"model\": " INLINE_MODEL ", \"optimizer\": {\"name\": \"adam\", \"epsilon\": 1e-8}, "
        "\"checkpoints\": [{\"filepath\": \"w{epoch}-{batch}.weights.h5\", \"save_freq\": 7, "
        "\"monitor\": \"accuracy\", \"save_weights_only\": true, \"save_top_k\": 3, "
        "\"initial_value_threshold\": -2.5}], \"callbacks\": {\"early_stopping\": {\"baseline\": "
        "0.25, \"min_delta\": 1e-4}}}",
        JOB(", \"callbacks\": {\"early_stopping\": {\"start_from_epoch\": 3}, "
            "\"reduce_lr_on_plateau\": {\"factor\": 0.5, \"cooldown\": 2, \"min_lr\": 1e-5}, "
            "\"lr_scheduler\": {" STEP "\"drop_every\": 5}, \"terminate_on_nan\": true}"),
        JOB(", \"optimizer\": {\"name\": \"adam\", \"learning_rate\": " COSINE "}"),
        JOB(", \"optimizer\": {\"name\": \"rmsprop\", \"rho\": 0.8, \"momentum\": 0.5, "
            "\"centered\": true, \"clipnorm\": 1.5}"),
        JOB(", \"optimizer\": {\"name\": \"AdamW\", \"amsgrad\": true, \"global_clipnorm\": 2}"),
        JOB(", \"optimizer\": {\"name\": \"adagrad\", \"initial_accumulator_value\": 0.2, "
            "\"clipvalue\": 0.5, \"weight_decay\": 0.01}"),
        JOB(", \"optimizer\": \"nadam\""),
        JOB(", \"optimizer\": {\"name\": \"adamax\", \"beta_2\": 0.99}"),
        JOB(", \"loss\": \"sparse_categorical_crossentropy\", "
            "\"metrics\": [\"sparse_categorical_accuracy\"]"),
        JOB(", \"loss\": {\"class_name\": \"BinaryCrossentropy\", \"config\": "
            "{\"from_logits\": true, \"label_smoothing\": 0.2}}, \"metrics\": "
            "[{\"class_name\": \"TopKCategoricalAccuracy\", \"config\": {\"k\": 2, "
            "\"name\": \"top2\"}}], \"class_weight\": {\"1\": 0.5, \"7\": 3}"),
        JOB(", \"loss\": \"mae\", \"metrics\": [\"mse\"]"),
    };
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        struct job_spec a, b;
        struct diag d;
        int r = parse(&a, jobs[i], &d);
        CHECK_MSG(r == 0, "job %zu: %s: %s", i, d.field, d.message);
        if (r != 0)
            continue;
        char *text = job_spec_to_json(&a);
        CHECK(text != NULL);
        if (!text) {
            job_spec_free(&a);
            continue;
        }
        CHECK(strstr(text, "\"batch_size\":") != NULL);
        CHECK(strstr(text, "\"steps_per_epoch\":") != NULL);
        CHECK(strstr(text, "\"callbacks\":") != NULL);
        CHECK(strstr(text, "\"optimizer\":{\"name\":") != NULL);
        r = parse(&b, text, &d);
        CHECK_MSG(r == 0, "job %zu reparse: %s: %s\n%s", i, d.field, d.message, text);
        if (r == 0) {
            char *text2 = job_spec_to_json(&b);
            CHECK(text2 && strcmp(text, text2) == 0);
            CHECK_STR_EQ(a.dataset, b.dataset);
            CHECK_INT_EQ(a.epochs, b.epochs);
            CHECK_INT_EQ(a.n_checkpoints, b.n_checkpoints);
            CHECK(a.optimizer.kind == b.optimizer.kind);
            CHECK(a.optimizer.learning_rate == b.optimizer.learning_rate);
            CHECK(a.optimizer.epsilon == b.optimizer.epsilon);
            for (int k = 0; k < a.n_checkpoints && k < b.n_checkpoints; k++) {
                CHECK_STR_EQ(a.checkpoints[k].filepath, b.checkpoints[k].filepath);
                CHECK_INT_EQ(a.checkpoints[k].save_freq, b.checkpoints[k].save_freq);
                CHECK_INT_EQ(a.checkpoints[k].save_top_k, b.checkpoints[k].save_top_k);
                CHECK(a.checkpoints[k].initial_value_threshold ==
                      b.checkpoints[k].initial_value_threshold);
            }
            CHECK(a.early_stopping.enabled == b.early_stopping.enabled);
            CHECK(a.early_stopping.baseline == b.early_stopping.baseline);
            CHECK(a.early_stopping.min_delta == b.early_stopping.min_delta);
            CHECK(a.early_stopping.start_from_epoch == b.early_stopping.start_from_epoch);
            CHECK(memcmp(&a.reduce_lr, &b.reduce_lr, sizeof(a.reduce_lr)) == 0);
            CHECK(memcmp(&a.lr_scheduler, &b.lr_scheduler, sizeof(a.lr_scheduler)) == 0);
            CHECK(a.terminate_on_nan == b.terminate_on_nan);
            CHECK(memcmp(&a.optimizer.schedule, &b.optimizer.schedule,
                         sizeof(a.optimizer.schedule)) == 0);
            CHECK(memcmp(&a.optimizer, &b.optimizer, sizeof(a.optimizer)) == 0);
            free(text2);
            job_spec_free(&b);
        }
        free(text);
        job_spec_free(&a);
    }
    job_spec_free(NULL);
}

/* Every job fixture (tests/fixtures/jobs, used by the integration tests and
 * the README) is a valid spec. */
/* "dataset": {"file": ...} is for `traind run` only; its import options are
 * checked and round-trip through job_spec_to_json. */
static void test_dataset_file(void)
{
    static const char spec[] = "{\"dataset\": {\"file\": \"/data/photos.tar\", \"image_size\": "
                               "[64, 48], \"color_mode\": \"grayscale\", \"seed\": 3, "
                               "\"validation_split\": 0.2}, \"model\": \"lenet\"}";
    struct job_spec s;
    struct diag d;
    memset(&d, 0, sizeof(d));
    CHECK_INT_EQ(job_spec_parse(&s, spec, strlen(spec), &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/dataset/file");
    CHECK(strstr(d.message, "PUT /v1/datasets") != NULL);
    CHECK_INT_EQ(job_spec_parse_local(&s, spec, strlen(spec), &d), 0);
    CHECK_STR_EQ(s.dataset_file, "/data/photos.tar");
    CHECK_STR_EQ(s.dataset, "photos.tar");
    CHECK_INT_EQ(s.image_size[0], 64);
    CHECK_INT_EQ(s.image_size[1], 48);
    CHECK_STR_EQ(s.color_mode, "grayscale");
    CHECK_INT_EQ(s.import_seed, 3);
    CHECK_CLOSE(s.validation_split, 0.2, 0, 0);
    char *json = job_spec_to_json(&s);
    struct job_spec t;
    CHECK_INT_EQ(job_spec_parse_local(&t, json, strlen(json), &d), 0);
    CHECK_STR_EQ(t.dataset_file, s.dataset_file);
    CHECK_INT_EQ(t.image_size[1], 48);
    CHECK_INT_EQ(t.import_seed, 3);
    free(json);
    job_spec_free(&t);
    job_spec_free(&s);
    static const char *const bad[][2] = {
        {"{\"dataset\": {\"file\": \"a.npz\", \"image_size\": [0, 4]}, \"model\": \"mlp\"}",
         "/dataset/image_size"},
        {"{\"dataset\": {\"file\": \"a.npz\", \"color_mode\": \"cmyk\"}, \"model\": \"mlp\"}",
         "/dataset/color_mode"},
        {"{\"dataset\": {\"file\": \"a.npz\", \"format\": \"rar\"}, \"model\": \"mlp\"}",
         "/dataset/format"},
        {"{\"dataset\": {\"file\": 7}, \"model\": \"mlp\"}", "/dataset/file"},
        {"{\"dataset\": {\"name\": \"x\", \"color_mode\": \"rgb\"}, \"model\": \"mlp\"}",
         "/dataset/color_mode"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&d, 0, sizeof(d));
        CHECK_MSG(job_spec_parse_local(&s, bad[i][0], strlen(bad[i][0]), &d) == -EINVAL,
                  "case %zu", i);
        CHECK_MSG(strcmp(d.field, bad[i][1]) == 0, "case %zu: field %s (%s)", i, d.field,
                  d.message);
    }
}

static void test_fixtures_parse(void)
{
    const char *dir = TEST_SOURCE_DIR "/tests/fixtures/jobs";
    DIR *dp = opendir(dir);
    CHECK(dp != NULL);
    if (!dp)
        return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (!f)
            continue;
        static char buf[1 << 16];
        size_t got = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        struct job_spec s;
        struct diag d;
        int r = job_spec_parse(&s, buf, got, &d);
        CHECK_MSG(r == 0, "%s: %s: %s", e->d_name, d.field, d.message);
        if (r == 0)
            job_spec_free(&s);
        n++;
    }
    closedir(dp);
    CHECK(n >= 3);
}

/* JSON numbers are doubles: 2^53 + 1 would be read as 2^53, so integers
 * beyond 2^53 - 1 are refused instead of silently rounded. */
static void test_integers_beyond_2_53(void)
{
    static const char *const seeds[] = {"9007199254740992", "9007199254740993",
                                        "18446744073709551617", "1e300"};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"dataset\": \"cifar10\", \"model\": \"mlp\", \"seed\": %s}",
                 seeds[i]);
        struct job_spec s;
        struct diag d;
        int r = parse(&s, json, &d);
        CHECK_MSG(r == -EINVAL, "seed %s accepted", seeds[i]);
        if (r == 0)
            job_spec_free(&s);
        else
            CHECK_STR_EQ(d.field, "/seed");
    }
}

int main(void)
{
    TEST_RUN(test_reference_job);
    TEST_RUN(test_defaults);
    TEST_RUN(test_variants);
    TEST_RUN(test_inline_model);
    TEST_RUN(test_rejections);
    TEST_RUN(test_callbacks);
    TEST_RUN(test_compile);
    TEST_RUN(test_integers_beyond_2_53);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_fixtures_parse);
    TEST_RUN(test_dataset_file);
    return TEST_EXIT();
}
