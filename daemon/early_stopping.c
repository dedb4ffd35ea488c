/* early_stopping.c - where early stopping decides: tf.keras EarlyStopping
 * (monitor, min_delta, patience, baseline, restore_best_weights) at each
 * epoch end, with its state as JSON for the resume file.  The best weights
 * of restore_best_weights are kept in memory and in
 * <job_dir>/early_stopping_best.h5. */
#include "job_runner_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5.h"

void es_init(struct runner *r)
{
    const struct job_early_stopping *cfg = &r->spec->early_stopping;
    struct es_state *es = &r->es;
    struct ckpt_policy_config probe;
    ckpt_policy_config_default(&probe);
    snprintf(probe.monitor, sizeof(probe.monitor), "%s", cfg->monitor);
    probe.mode = cfg->mode;
    es->mode = ckpt_resolve_mode(&probe) == CKPT_MODE_MAX ? CKPT_MODE_MAX : CKPT_MODE_MIN;
    es->wait = 0;
    es->best = es->mode == CKPT_MODE_MIN ? INFINITY : -INFINITY;
    es->best_epoch = 0;
    es->stopped_epoch = 0;
    es->stopped = false;
    es->has_best_weights = false;
}

/* Keras _is_improvement: monitor_op(value - min_delta, reference) with
 * min_delta negated for min mode. */
static bool es_is_improvement(const struct runner *r, double value, double reference)
{
    double md = fabs(r->spec->early_stopping.min_delta);
    if (r->es.mode == CKPT_MODE_MAX)
        return value - md > reference;
    return value + md < reference;
}

static int es_keep_best_weights(struct runner *r, struct diag *d)
{
    struct es_state *es = &r->es;
    memcpy(es->best_weights, r->m->params, r->m->n_params * sizeof(float));
    es->has_best_weights = true;
    int ret = h5_save(r->job_dir, RUNNER_ES_BEST_FILE, H5_LAYOUT_TF_WEIGHTS, r->m, NULL, NULL,
                      es->best_sha256, NULL, NULL, d);
    if (ret < 0)
        diag_prefix(d, RUNNER_ES_BEST_FILE ": ");
    return ret;
}

/* on_epoch_end of EarlyStopping for 0-based epoch e: 1 = stop, 0 = go on. */
int es_on_epoch_end(struct runner *r, int e, const struct logs *logs, struct diag *d)
{
    bool ok = true;
    const struct job_early_stopping *cfg = &r->spec->early_stopping;
    struct es_state *es = &r->es;
    double current;
    if (!cfg->enabled || !logs_get(logs, cfg->monitor, &current))
        return 0;
    int ret;
    bool improved = es_is_improvement(r, current, es->best);
    /* Keras keeps the weights of the first epoch seen (in case nothing ever
     * improves) and those of every improvement. */
    if (cfg->restore_best_weights && (!es->has_best_weights || improved) &&
        (ret = es_keep_best_weights(r, d)) < 0)
        return ret;
    es->wait++;
    if (improved) {
        es->best = current;
        es->best_epoch = e;
        /* Only restart wait if we beat both the baseline and our previous best. */
        if (!cfg->has_baseline || es_is_improvement(r, current, cfg->baseline))
            es->wait = 0;
        return 0;
    }
    if (es->wait >= cfg->patience && e > 0) {
        es->stopped_epoch = e;
        es->stopped = true;
        bool restored = false;
        if (cfg->restore_best_weights && es->has_best_weights) {
            memcpy(r->m->params, es->best_weights, r->m->n_params * sizeof(float));
            restored = true;
        }
        char msg[64];
        snprintf(msg, sizeof(msg), "Epoch %d: early stopping", e + 1);
        cJSON *o = cJSON_CreateObject();
        ok &= cJSON_AddNumberToObject(o, "epoch", e + 1) != NULL;
        ok &= cJSON_AddStringToObject(o, "monitor", cfg->monitor) != NULL;
        ok &= cjson_add(o, "best", cjson_double(es->best));
        ok &= cJSON_AddNumberToObject(o, "best_epoch", es->best_epoch + 1) != NULL;
        ok &= cJSON_AddNumberToObject(o, "wait", es->wait) != NULL;
        ok &= cJSON_AddNumberToObject(o, "patience", cfg->patience) != NULL;
        ok &= cJSON_AddBoolToObject(o, "restored_best_weights", restored) != NULL;
        ok &= cJSON_AddStringToObject(o, "message", msg) != NULL;
        runner_emit(r, "early_stopping", cjson_checked(o, ok), true);
        return 1;
    }
    return 0;
}

cJSON *es_state_json(const struct es_state *es)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "wait", es->wait) != NULL;
    ok &= cjson_add(o, "best", cjson_double(es->best));
    ok &= cJSON_AddNumberToObject(o, "best_epoch", es->best_epoch) != NULL;
    ok &= cJSON_AddNumberToObject(o, "stopped_epoch", es->stopped_epoch) != NULL;
    ok &= cJSON_AddBoolToObject(o, "has_best_weights", es->has_best_weights) != NULL;
    if (es->has_best_weights) {
        char hex[FSUTIL_SHA256_HEX_SIZE];
        fsutil_sha256_hex(es->best_sha256, hex);
        ok &= cJSON_AddStringToObject(o, "best_weights_sha256", hex) != NULL;
    }
    ok &= cJSON_AddBoolToObject(o, "stopped", es->stopped) != NULL;
    return cjson_checked(o, ok);
}

int es_state_from_json(struct es_state *es, const cJSON *o, struct diag *d)
{
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(o, "wait");
    const cJSON *best_epoch = cJSON_GetObjectItemCaseSensitive(o, "best_epoch");
    const cJSON *stopped_epoch = cJSON_GetObjectItemCaseSensitive(o, "stopped_epoch");
    const cJSON *hbw = cJSON_GetObjectItemCaseSensitive(o, "has_best_weights");
    const cJSON *stopped = cJSON_GetObjectItemCaseSensitive(o, "stopped");
    double best;
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(wait) || !cJSON_IsNumber(best_epoch) ||
        !cJSON_IsNumber(stopped_epoch) || !cJSON_IsBool(hbw) || !cJSON_IsBool(stopped) ||
        !cjson_get_double(o, "best", &best))
        return diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                        "early_stopping state in the resume file is malformed");
    es->wait = wait->valueint;
    es->best = best;
    es->best_epoch = best_epoch->valueint;
    es->stopped_epoch = stopped_epoch->valueint;
    es->has_best_weights = cJSON_IsTrue(hbw);
    es->stopped = cJSON_IsTrue(stopped);
    if (es->has_best_weights) {
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "best_weights_sha256");
        const char *hex = cJSON_IsString(sha) ? sha->valuestring : "";
        if (strlen(hex) != 2 * FSUTIL_SHA256_BYTES)
            return diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                            "early_stopping state lacks the best weights' SHA-256");
        for (int i = 0; i < FSUTIL_SHA256_BYTES; i++) {
            unsigned v;
            if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                return diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                                "early_stopping best_weights_sha256 is not hex");
            es->best_sha256[i] = (uint8_t)v;
        }
    }
    return 0;
}
