/* runner_callbacks.c - the runner's EarlyStopping, ReduceLROnPlateau,
 * step-decay scheduler and TerminateOnNaN (see runner_callbacks.h): core/'s
 * decisions carried out on the model, the optimizer and the job folder. */
#include "runner_callbacks.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "h5.h"
#include "cjson_add.h"

static void emit(struct runner_cb *c, const char *type, cJSON *o)
{
    if (c->io.emit)
        c->io.emit(c->io.ctx, type, o);
    else
        cJSON_Delete(o);
}

int runner_cb_init(struct runner_cb *c, const struct job_spec *spec, const char *job_dir,
                   struct model *m, struct optimizer *opt, const struct runner_cb_io *io,
                   struct diag *d)
{
    memset(c, 0, sizeof(*c));
    c->spec = spec;
    c->job_dir = job_dir;
    c->m = m;
    c->opt = opt;
    c->io = *io;
    es_state_init(&c->es, &spec->early_stopping);
    rlrop_state_init(&c->rlrop, &spec->reduce_lr);
    if (spec->early_stopping.enabled && spec->early_stopping.restore_best_weights) {
        c->best_weights = malloc(m->n_params * sizeof(float));
        if (!c->best_weights)
            return diag_set(d, -ENOMEM, "", "out of memory for the early-stopping weights");
    }
    return 0;
}

void runner_cb_free(struct runner_cb *c)
{
    if (!c)
        return;
    free(c->best_weights);
    c->best_weights = NULL;
}

bool runner_cb_finished(const struct runner_cb *c)
{
    return c->es.stopped || c->terminated_on_nan;
}

/* --- learning rate ---------------------------------------------------------------- */

static void apply_lr_change(struct runner_cb *c, const struct lr_change *ch, const char *source,
                            int epoch, int verbose)
{
    bool printed = ch->has_message && verbose >= 1;
    if (!ch->changed && !printed)
        return;
    if (ch->changed)
        c->opt->cfg.learning_rate = ch->new_lr;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", epoch);
    cJSON_AddStringToObject(o, "source", source);
    if (ch->changed)
        cJSON_AddNumberToObject(o, "previous", ch->old_lr);
    cJSON_AddNumberToObject(o, "lr", ch->changed ? ch->new_lr : ch->old_lr);
    cJSON_AddStringToObject(o, "message", ch->message);
    cJSON_AddBoolToObject(o, "printed", printed);
    /* a verbose scheduler epoch that keeps the rate still prints its line */
    emit(c, ch->changed ? "lr_changed" : "lr_kept", o);
}

static int scheduler_epoch_begin(void *ctx, const struct fit_progress *p)
{
    struct runner_cb *c = ctx;
    struct lr_change ch;
    lr_step_decay_on_epoch_begin(&c->spec->lr_scheduler, p->epoch, c->opt->cfg.learning_rate,
                                 &ch);
    apply_lr_change(c, &ch, "LearningRateScheduler", p->epoch, c->spec->lr_scheduler.verbose);
    return 0;
}

static int reduce_lr_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner_cb *c = ctx;
    struct lr_change ch;
    rlrop_on_epoch_end(&c->spec->reduce_lr, &c->rlrop, p->epoch, logs, c->opt->cfg.learning_rate,
                       &ch);
    apply_lr_change(c, &ch, "ReduceLROnPlateau", p->epoch, c->spec->reduce_lr.verbose);
    return 0;
}

/* --- TerminateOnNaN ------------------------------------------------------------------ */

static int ton_batch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner_cb *c = ctx;
    char msg[96];
    if (!ton_on_batch_end(p->batch, logs, msg, sizeof(msg)))
        return 0;
    c->terminated_on_nan = true;
    double loss = NAN;
    logs_get(logs, "loss", &loss);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    cJSON_AddNumberToObject(o, "batch", p->batch);
    cJSON_AddItemToObject(o, "loss", cJSON_CreateString(isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf"));
    cJSON_AddStringToObject(o, "message", msg);
    emit(c, "terminate_on_nan", o);
    return 1;
}

/* --- EarlyStopping -------------------------------------------------------------------- */

static int es_keep_best_weights(struct runner_cb *c)
{
    memcpy(c->best_weights, c->m->params, c->m->n_params * sizeof(float));
    int ret = h5_save(c->job_dir, RUNNER_ES_BEST_FILE, H5_LAYOUT_TF_WEIGHTS, c->m, NULL, NULL,
                      c->best_sha256, NULL, NULL, &c->err);
    if (ret < 0)
        diag_prefix(&c->err, RUNNER_ES_BEST_FILE ": ");
    return ret;
}

static int es_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner_cb *c = ctx;
    const struct es_config *cfg = &c->spec->early_stopping;
    struct es_decision dec;
    es_on_epoch_end(cfg, &c->es, p->epoch, logs, &dec);
    int ret;
    if (dec.keep_weights && c->best_weights && (ret = es_keep_best_weights(c)) < 0)
        return ret;
    if (!dec.stop)
        return 0;
    bool restored = false;
    if (dec.restore_weights && c->best_weights) {
        memcpy(c->m->params, c->best_weights, c->m->n_params * sizeof(float));
        restored = true;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    cJSON_AddStringToObject(o, "monitor", cfg->monitor);
    cJSON_AddItemToObject(o, "best", cjson_double(c->es.best));
    cJSON_AddNumberToObject(o, "best_epoch", c->es.best_epoch + 1);
    cJSON_AddNumberToObject(o, "wait", c->es.wait);
    cJSON_AddNumberToObject(o, "patience", cfg->patience);
    cJSON_AddBoolToObject(o, "restored_best_weights", restored);
    cJSON_AddStringToObject(o, "message", dec.message);
    if (restored)
        cJSON_AddStringToObject(o, "restore_message", dec.restore_message);
    emit(c, "early_stopping", o);
    return 1;
}

int runner_cb_add(struct runner_cb *c, struct cb_list *l)
{
    const struct job_spec *s = c->spec;
    int r = 0;
    if (r == 0 && s->lr_scheduler.enabled)
        r = cb_list_add(l, &(struct callback){
            "LearningRateScheduler", {.ctx = c, .epoch_begin = scheduler_epoch_begin}});
    if (r == 0 && s->terminate_on_nan)
        r = cb_list_add(l, &(struct callback){"TerminateOnNaN",
                                              {.ctx = c, .batch_end = ton_batch_end}});
    if (r == 0 && s->early_stopping.enabled)
        r = cb_list_add(l, &(struct callback){
            "EarlyStopping", {.ctx = c, .epoch_end = es_epoch_end}});
    if (r == 0 && s->reduce_lr.enabled)
        r = cb_list_add(l, &(struct callback){"ReduceLROnPlateau",
                                              {.ctx = c, .epoch_end = reduce_lr_epoch_end}});
    return r;
}

/* --- resume state ------------------------------------------------------------------------ */

/* A core state's JSON text as a tree under key of o. */
static bool add_parsed(cJSON *o, const char *key, int ret, char *text)
{
    cJSON *t = ret == 0 ? cJSON_Parse(text) : NULL;
    free(ret == 0 ? text : NULL);
    return cjson_add(o, key, t);
}

bool runner_cb_state_add(const struct runner_cb *c, cJSON *o)
{
    char *text = NULL;
    int ret = es_state_to_json(&c->es, &text);
    if (!add_parsed(o, "early_stopping", ret, text))
        return false;
    if (c->es.has_best_weights) {
        char hex[65];
        fsutil_sha256_hex(c->best_sha256, hex);
        if (!cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "early_stopping"),
                                     "best_weights_sha256", hex))
            return false;
    }
    if (c->spec->reduce_lr.enabled) {
        ret = rlrop_state_to_json(&c->rlrop, &text);
        if (!add_parsed(o, "reduce_lr_on_plateau", ret, text))
            return false;
    }
    return cjson_add(o, "learning_rate", cjson_double(c->opt->cfg.learning_rate)) &&
           cJSON_AddBoolToObject(o, "terminated_on_nan", c->terminated_on_nan);
}

static int parse_sha(const cJSON *es, uint8_t out[32], struct diag *d)
{
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(es, "best_weights_sha256");
    const char *hex = cJSON_IsString(sha) ? sha->valuestring : "";
    if (strlen(hex) != 64)
        return diag_set(d, -EINVAL, "resume.h5: /early_stopping/best_weights_sha256",
                        "the early-stopping state lacks the best weights' SHA-256");
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return diag_set(d, -EINVAL, "resume.h5: /early_stopping/best_weights_sha256",
                            "not hex");
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* The best weights live in their own file; read them through a scratch copy
 * of the current parameters. */
static int load_best_weights(struct runner_cb *c, struct diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", c->job_dir, RUNNER_ES_BEST_FILE);
    size_t bytes = c->m->n_params * sizeof(float);
    float *cur = malloc(bytes);
    if (!cur)
        return diag_set(d, -ENOMEM, "", "out of memory");
    memcpy(cur, c->m->params, bytes);
    int ret = h5_load_weights_verified(c->m, path, c->best_sha256, d);
    if (ret == 0)
        memcpy(c->best_weights, c->m->params, bytes);
    else
        diag_prefix(d, RUNNER_ES_BEST_FILE ": ");
    memcpy(c->m->params, cur, bytes);
    free(cur);
    return ret;
}

/* The core state under key of o, parsed by from_json; field prefixed "resume.h5: /key". */
static int restore_part(const cJSON *o, const char *key, char **ret_text, struct diag *d)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, key);
    char field[96];
    snprintf(field, sizeof(field), "resume.h5: /%s", key);
    if (!cJSON_IsObject(t))
        return diag_set(d, -EINVAL, field, "the resume file's state lacks %s", key);
    cJSON *copy = cJSON_Duplicate(t, true);
    if (!copy)
        return diag_set(d, -ENOMEM, "", "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "best_weights_sha256");
    *ret_text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return *ret_text ? 0 : diag_set(d, -ENOMEM, "", "out of memory");
}

int runner_cb_state_restore(struct runner_cb *c, const cJSON *o, struct diag *d)
{
    char *text = NULL;
    int ret = restore_part(o, "early_stopping", &text, d);
    if (ret == 0) {
        ret = es_state_from_json(&c->spec->early_stopping, text, &c->es, d);
        free(text);
        if (ret < 0)
            diag_prefix(d, "resume.h5: /early_stopping");
    }
    if (ret == 0 && c->es.has_best_weights) {
        if (!c->best_weights)
            return diag_set(d, -EINVAL, "resume.h5: /early_stopping/has_best_weights",
                            "the job does not keep best weights");
        ret = parse_sha(cJSON_GetObjectItemCaseSensitive(o, "early_stopping"), c->best_sha256, d);
        if (ret == 0)
            ret = load_best_weights(c, d);
    }
    if (ret == 0 && c->spec->reduce_lr.enabled) {
        ret = restore_part(o, "reduce_lr_on_plateau", &text, d);
        if (ret == 0) {
            ret = rlrop_state_from_json(text, &c->rlrop, d);
            free(text);
            if (ret < 0)
                diag_prefix(d, "resume.h5: /reduce_lr_on_plateau");
        }
    }
    if (ret < 0)
        return ret;
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(o, "learning_rate");
    if (lr) {
        double v;
        if (!cjson_get_double(o, "learning_rate", &v) || !isfinite(v) || v < 0)
            return diag_set(d, -EINVAL, "resume.h5: /learning_rate",
                            "expected a finite number >= 0");
        c->opt->cfg.learning_rate = v;
    }
    const cJSON *ton = cJSON_GetObjectItemCaseSensitive(o, "terminated_on_nan");
    if (ton && !cJSON_IsBool(ton))
        return diag_set(d, -EINVAL, "resume.h5: /terminated_on_nan", "expected true or false");
    c->terminated_on_nan = cJSON_IsTrue(ton);
    return 0;
}
