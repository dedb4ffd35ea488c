/* test_progress.c - the Keras renderer (daemon/progress.c): a sequence of
 * job events gives exactly tf.keras' verbose=2 lines, or on a terminal the
 * verbose=1 bar frames and final lines. */
#include "progress.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

struct ev {
    const char *type, *json;
};

static char *render(bool tty, const struct progress_config *cfg, const struct ev *evs, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    struct progress p;
    progress_init(&p, f, tty, cfg);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_Parse(evs[i].json);
        CHECK_MSG(o != NULL, "bad test JSON %s", evs[i].json);
        progress_event(&p, evs[i].type, o);
        cJSON_Delete(o);
    }
    progress_finish(&p);
    fclose(f);
    return buf;
}

/* Every kind of line, in the order the runner emits the events. */
static void test_verbose2_lines(void)
{
    static const struct ev evs[] = {
        {"state", "{\"seq\":1,\"type\":\"state\",\"state\":\"running\"}"},
        {"progress", "{\"epoch\":1,\"epochs\":2,\"batch\":2,\"batches\":4,\"seconds\":0.5,"
                     "\"logs\":{\"loss\":0.9,\"accuracy\":0.5}}"},
        {"checkpoint", "{\"policy\":1,\"epoch\":1,\"batch\":3,\"decision\":\"saved\","
                       "\"message\":\"Epoch 1: saving model to b-1-3.h5\"}"},
        {"epoch_end", "{\"epoch\":1,\"epochs\":2,\"batch\":4,\"batches\":4,\"seconds\":2.4,"
                      "\"logs\":{\"loss\":0.5,\"accuracy\":0.75,\"val_loss\":\"nan\","
                      "\"val_accuracy\":0.5}}"},
        {"checkpoint", "{\"policy\":0,\"epoch\":1,\"message\":\"Epoch 1: val_loss improved from "
                       "inf to 0.50000, saving model to w-1.h5\"}"},
        {"checkpoint", "{\"policy\":2,\"epoch\":1,\"message\":\"silent policy\"}"},
        {"checkpoint_error", "{\"policy\":0,\"epoch\":1,\"file\":\"x.h5\",\"step\":\"rename\","
                             "\"message\":\"rename: Input/output error\","
                             "\"decision_message\":\"Epoch 1: saving model to x.h5\"}"},
        {"lr_changed", "{\"epoch\":1,\"lr\":0.001}"},
        {"epoch_end", "{\"epoch\":2,\"epochs\":2,\"batch\":4,\"batches\":4,\"seconds\":3.6,"
                      "\"logs\":{\"loss\":0.25,\"accuracy\":0.875}}"},
        {"early_stopping", "{\"epoch\":2,\"best_epoch\":1,\"restored_best_weights\":true,"
                           "\"message\":\"Epoch 2: early stopping\"}"},
        {"state", "{\"state\":\"succeeded\"}"},
    };
    struct progress_config cfg = {.epochs = 2, .n_policies = 3, .verbose = {1, 1, 0}};
    char *out = render(false, &cfg, evs, (int)(sizeof(evs) / sizeof(evs[0])));
    CHECK_STR_EQ(out, "Epoch 1/2\n"
                      "Epoch 1: saving model to b-1-3.h5\n"
                      "Epoch 1: val_loss improved from inf to 0.50000, saving model to w-1.h5\n"
                      "Epoch 1: saving model to x.h5\n"
                      "Epoch 1: checkpoint x.h5 failed (rename): rename: Input/output error\n"
                      "4/4 - 2s - loss: 0.5000 - accuracy: 0.7500 - val_loss: nan - "
                      "val_accuracy: 0.5000\n"
                      "Epoch 2/2\n"
                      "Restoring model weights from the end of the best epoch: 1.\n"
                      "4/4 - 4s - loss: 0.2500 - accuracy: 0.8750\n"
                      "Epoch 2: early stopping\n");
    free(out);
}

/* The example frame, the last frame before the checkpoint line and
 * the final line with the per-step time. */
static void test_terminal_bar(void)
{
    static const struct ev evs[] = {
        {"progress", "{\"epoch\":3,\"epochs\":40,\"batch\":612,\"batches\":938,\"seconds\":40,"
                     "\"logs\":{\"loss\":0.27671,\"accuracy\":0.89984}}"},
        {"epoch_end", "{\"epoch\":3,\"batch\":938,\"batches\":938,\"seconds\":61.3,"
                      "\"logs\":{\"loss\":0.2767,\"accuracy\":0.8998,\"val_loss\":0.256,"
                      "\"val_accuracy\":0.9085}}"},
        {"checkpoint", "{\"policy\":0,\"epoch\":3,\"message\":\"Epoch 3: val_loss improved from "
                       "0.26789 to 0.25600, saving model to w-3.h5\"}"},
        {"progress", "{\"epoch\":4,\"epochs\":40,\"batch\":5,\"batches\":938,\"seconds\":3700,"
                     "\"logs\":{\"loss\":0.2,\"accuracy\":0.9}}"},
    };
    struct progress_config cfg = {.epochs = 40, .n_policies = 1, .verbose = {1}};
    char *out = render(true, &cfg, evs, (int)(sizeof(evs) / sizeof(evs[0])));
    CHECK_STR_EQ(out,
                 "Epoch 3/40\n"
                 "\r612/938 [==================>...........] - ETA: 21s - loss: 0.2767 - "
                 "accuracy: 0.8998"
                 "\r938/938 [==============================] - ETA: 0s - loss: 0.2767 - "
                 "accuracy: 0.8998 "
                 "\nEpoch 3: val_loss improved from 0.26789 to 0.25600, saving model to w-3.h5\n"
                 "\r938/938 [==============================] - 61s 65ms/step - loss: 0.2767 - "
                 "accuracy: 0.8998 - val_loss: 0.2560 - val_accuracy: 0.9085\n"
                 "Epoch 4/40\n"
                 "\r  5/938 [..............................] - ETA: 191:47:00 - loss: 0.2000 - "
                 "accuracy: 0.9000\n");
    free(out);
}

/* The callbacks' lines come from their events' messages, where Keras
 * prints them: LearningRateScheduler's after the epoch header,
 * ReduceLROnPlateau's and the restore line before the epoch's final line,
 * "Epoch N: early stopping" after it; a rate change with printed false
 * prints nothing. */
static void test_callback_lines(void)
{
    static const struct ev evs[] = {
        {"lr_kept", "{\"epoch\":1,\"source\":\"LearningRateScheduler\",\"lr\":0.01,"
                    "\"printed\":true,\"message\":\"Epoch 1: LearningRateScheduler setting "
                    "learning rate to 0.01.\"}"},
        {"epoch_end", "{\"epoch\":1,\"epochs\":3,\"batch\":4,\"batches\":4,\"seconds\":1,"
                      "\"logs\":{\"loss\":0.5}}"},
        {"lr_changed", "{\"epoch\":1,\"source\":\"ReduceLROnPlateau\",\"previous\":0.01,"
                       "\"lr\":0.005,\"printed\":true,\"message\":\"Epoch 1: "
                       "ReduceLROnPlateau reducing learning rate to 0.004999999888241291.\"}"},
        {"lr_changed", "{\"epoch\":2,\"source\":\"LearningRateScheduler\",\"lr\":0.001,"
                       "\"printed\":false,\"message\":\"not printed\"}"},
        {"epoch_end", "{\"epoch\":2,\"epochs\":3,\"batch\":4,\"batches\":4,\"seconds\":1,"
                      "\"logs\":{\"loss\":0.25}}"},
        {"early_stopping", "{\"epoch\":2,\"restored_best_weights\":true,"
                           "\"restore_message\":\"Restoring model weights from the end of "
                           "the best epoch: 1.\",\"message\":\"Epoch 2: early stopping\"}"},
    };
    struct progress_config cfg = {.epochs = 3};
    char *out = render(false, &cfg, evs, (int)(sizeof(evs) / sizeof(evs[0])));
    CHECK_STR_EQ(out, "Epoch 1/3\n"
                      "Epoch 1: LearningRateScheduler setting learning rate to 0.01.\n"
                      "Epoch 1: ReduceLROnPlateau reducing learning rate to "
                      "0.004999999888241291.\n"
                      "4/4 - 1s - loss: 0.5000\n"
                      "Epoch 2/3\n"
                      "Restoring model weights from the end of the best epoch: 1.\n"
                      "4/4 - 1s - loss: 0.2500\n"
                      "Epoch 2: early stopping\n");
    free(out);

    static const struct ev nan_evs[] = {
        {"epoch_end", "{\"epoch\":1,\"epochs\":2,\"batch\":4,\"batches\":4,\"seconds\":1,"
                      "\"logs\":{\"loss\":0.5}}"},
        {"terminate_on_nan", "{\"epoch\":2,\"batch\":3,\"loss\":\"nan\","
                             "\"message\":\"Batch 3: Invalid loss, terminating training\"}"},
    };
    out = render(false, &cfg, nan_evs, (int)(sizeof(nan_evs) / sizeof(nan_evs[0])));
    CHECK_STR_EQ(out, "Epoch 1/3\n"
                      "4/4 - 1s - loss: 0.5000\n"
                      "Epoch 2/3\n"
                      "Batch 3: Invalid loss, terminating training\n");
    free(out);
}

/* The epoch count and policy verbosity from a job resource's spec. */
static void test_config_from_spec(void)
{
    cJSON *spec = cJSON_Parse("{\"epochs\":7,\"checkpoints\":[{\"verbose\":0},{\"verbose\":1},{}]}");
    struct progress_config cfg;
    progress_config_from_spec(&cfg, spec);
    CHECK_INT_EQ(cfg.epochs, 7);
    CHECK_INT_EQ(cfg.n_policies, 3);
    CHECK_INT_EQ(cfg.verbose[0], 0);
    CHECK_INT_EQ(cfg.verbose[1], 1);
    CHECK_INT_EQ(cfg.verbose[2], 1);
    cJSON_Delete(spec);
}

int main(void)
{
    TEST_RUN(test_verbose2_lines);
    TEST_RUN(test_terminal_bar);
    TEST_RUN(test_callback_lines);
    TEST_RUN(test_config_from_spec);
    return TEST_EXIT();
}
