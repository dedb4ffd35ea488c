/* cb_early_stopping.c - tf.keras 2.15 EarlyStopping decisions and state (see
 * callbacks.h).  Keras' on_epoch_end, with its 0-based epoch e:
 *
 *   current = logs[monitor]; return if absent or e < start_from_epoch
 *   if restore_best_weights and no best weights yet: keep the weights
 *   wait += 1
 *   if improvement(current, best): best = current, best_epoch = e,
 *       keep the weights (restore_best_weights),
 *       wait = 0 unless a baseline is set and current does not beat it; return
 *   if wait >= patience and e > 0: stop, stopped_epoch = e, restore the kept
 *       weights (restore_best_weights)
 *
 * improvement(a, ref) is monitor_op(a - min_delta, ref) with min_delta =
 * |min_delta| negated in min mode, i.e. a + |min_delta| < ref (min) or
 * a - |min_delta| > ref (max), evaluated in that order as Keras does. */
#include "callbacks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_add.h"
#include "state_json.h"

void es_config_default(struct es_config *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->monitor, sizeof(ret->monitor), "val_loss");
    ret->mode = CKPT_MODE_AUTO;
}

static enum ckpt_mode es_mode(const struct es_config *cfg)
{
    return cb_resolve_mode(CB_KIND_EARLY_STOPPING, cfg->monitor, cfg->mode);
}

void es_state_init(struct es_state *s, const struct es_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->best = es_mode(cfg) == CKPT_MODE_MAX ? -INFINITY : INFINITY;
}

static bool es_is_improvement(enum ckpt_mode mode, double min_delta, double value,
                              double reference)
{
    double md = mode == CKPT_MODE_MAX ? fabs(min_delta) : -fabs(min_delta);
    return mode == CKPT_MODE_MAX ? value - md > reference : value - md < reference;
}

void es_on_epoch_end(const struct es_config *cfg, struct es_state *s, int epoch,
                     const struct logs *logs, struct es_decision *out)
{
    memset(out, 0, sizeof(*out));
    int e = epoch - 1;
    double current;
    if (!cfg->enabled || !logs_get(logs, cfg->monitor, &current) || e < cfg->start_from_epoch)
        return;
    out->monitored = true;
    enum ckpt_mode mode = es_mode(cfg);
    if (cfg->restore_best_weights && !s->has_best_weights)
        out->keep_weights = true; /* in case nothing ever improves */
    s->wait++;
    if (es_is_improvement(mode, cfg->min_delta, current, s->best)) {
        out->improved = true;
        s->best = current;
        s->best_epoch = e;
        if (cfg->restore_best_weights)
            out->keep_weights = true;
        /* Only restart wait if we beat both the baseline and our previous best. */
        if (!cfg->has_baseline || es_is_improvement(mode, cfg->min_delta, current, cfg->baseline))
            s->wait = 0;
    } else if (s->wait >= cfg->patience && e > 0) {
        s->stopped_epoch = e;
        s->stopped = true;
        out->stop = true;
        snprintf(out->message, sizeof(out->message), "Epoch %d: early stopping", e + 1);
        if (cfg->restore_best_weights && (s->has_best_weights || out->keep_weights)) {
            out->restore_weights = true;
            snprintf(out->restore_message, sizeof(out->restore_message),
                     "Restoring model weights from the end of the best epoch: %d.",
                     s->best_epoch + 1);
        }
    }
    if (out->keep_weights)
        s->has_best_weights = true;
}

int es_state_to_json(const struct es_state *s, char **ret_json)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && state_json_add_int(o, "wait", s->wait) &&
              cjson_add(o, "best", cjson_double(s->best)) &&
              state_json_add_int(o, "best_epoch", s->best_epoch) &&
              state_json_add_int(o, "stopped_epoch", s->stopped_epoch) &&
              cJSON_AddBoolToObject(o, "has_best_weights", s->has_best_weights) &&
              cJSON_AddBoolToObject(o, "stopped", s->stopped);
    return state_json_finish(o, ok, ret_json);
}

int es_state_from_json(const struct es_config *cfg, const char *json, struct es_state *ret,
                       struct diag *d)
{
    static const char *const keys[] = {"wait", "best", "best_epoch", "stopped_epoch",
                                       "has_best_weights", "stopped", NULL};
    (void)cfg;
    struct es_state s;
    memset(&s, 0, sizeof(s));
    cJSON *o = NULL;
    int r = state_json_parse(json, keys, &o, d);
    if (r == 0)
        r = state_json_get_int(o, "wait", 0, 1000000000, &s.wait, d);
    if (r == 0 && !cjson_get_double(o, "best", &s.best))
        r = diag_set(d, -EINVAL, "/best", "expected a number, \"inf\", \"-inf\" or \"nan\"");
    if (r == 0 && isnan(s.best))
        r = diag_set(d, -EINVAL, "/best", "best cannot be nan");
    if (r == 0)
        r = state_json_get_int(o, "best_epoch", 0, 1000000000, &s.best_epoch, d);
    if (r == 0)
        r = state_json_get_int(o, "stopped_epoch", 0, 1000000000, &s.stopped_epoch, d);
    if (r == 0)
        r = state_json_get_bool(o, "has_best_weights", &s.has_best_weights, d);
    if (r == 0)
        r = state_json_get_bool(o, "stopped", &s.stopped, d);
    cJSON_Delete(o);
    if (r == 0)
        *ret = s;
    return r;
}
