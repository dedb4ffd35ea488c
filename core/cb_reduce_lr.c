/* cb_reduce_lr.c - tf.keras 2.15 ReduceLROnPlateau decisions and state (see
 * callbacks.h).  Keras' on_epoch_end:
 *
 *   current = logs[monitor]; nothing when absent
 *   if cooldown_counter > 0: cooldown_counter -= 1, wait = 0
 *   if monitor_op(current, best): best = current, wait = 0
 *   elif cooldown_counter == 0 (checked again, after the decrement):
 *       wait += 1
 *       if wait >= patience:
 *           old_lr = the float32 variable; if old_lr > float32(min_lr):
 *               new_lr = max(old_lr * factor, min_lr)   (in double)
 *               set it (rounded to float32), cooldown_counter = cooldown, wait = 0
 *
 * monitor_op is a < best - min_delta (min) or a > best + min_delta (max);
 * the message prints new_lr with Python's repr, before the float32 rounding. */
#include "callbacks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cjson_add.h"
#include "pyfmt.h"
#include "state_json.h"

void rlrop_config_default(struct rlrop_config *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->monitor, sizeof(ret->monitor), "val_loss");
    ret->factor = 0.1;
    ret->patience = 10;
    ret->mode = CKPT_MODE_AUTO;
    ret->min_delta = 1e-4;
    ret->cooldown = 0;
    ret->min_lr = 0;
}

int rlrop_config_validate(const struct rlrop_config *cfg, struct diag *d)
{
    if (!(cfg->factor >= 0 && cfg->factor < 1))
        return diag_set(d, -EINVAL, "/factor",
                        "ReduceLROnPlateau does not support a factor >= 1.0 (or < 0)");
    if (!isfinite(cfg->min_delta) || cfg->min_delta < 0)
        return diag_set(d, -EINVAL, "/min_delta", "must be a finite number >= 0");
    if (!isfinite(cfg->min_lr) || cfg->min_lr < 0)
        return diag_set(d, -EINVAL, "/min_lr", "must be a finite number >= 0");
    if (cfg->patience < 0)
        return diag_set(d, -EINVAL, "/patience", "must be >= 0");
    if (cfg->cooldown < 0)
        return diag_set(d, -EINVAL, "/cooldown", "must be >= 0");
    if (!cfg->monitor[0])
        return diag_set(d, -EINVAL, "/monitor", "must be a log key");
    return 0;
}

static enum ckpt_mode rlrop_mode(const struct rlrop_config *cfg)
{
    return cb_resolve_mode(CB_KIND_REDUCE_LR_ON_PLATEAU, cfg->monitor, cfg->mode);
}

void rlrop_state_init(struct rlrop_state *s, const struct rlrop_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->best = rlrop_mode(cfg) == CKPT_MODE_MAX ? -INFINITY : INFINITY;
}

void rlrop_on_epoch_end(const struct rlrop_config *cfg, struct rlrop_state *s, int epoch,
                        const struct logs *logs, double lr, struct lr_change *out)
{
    memset(out, 0, sizeof(*out));
    out->old_lr = out->new_lr = lr;
    double current;
    if (!cfg->enabled || !logs_get(logs, cfg->monitor, &current))
        return;
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->wait = 0;
    }
    bool better = rlrop_mode(cfg) == CKPT_MODE_MAX ? current > s->best + cfg->min_delta
                                                   : current < s->best - cfg->min_delta;
    if (better) {
        s->best = current;
        s->wait = 0;
        return;
    }
    if (s->cooldown_counter > 0)
        return;
    s->wait++;
    if (s->wait < cfg->patience)
        return;
    float old_lr = (float)lr;
    if (!(old_lr > (float)cfg->min_lr))
        return;
    double new_lr = (double)old_lr * cfg->factor;
    if (new_lr < cfg->min_lr)
        new_lr = cfg->min_lr;
    out->old_lr = old_lr;
    out->new_lr = (double)(float)new_lr;
    out->changed = out->new_lr != out->old_lr;
    char num[40];
    pyfmt_double(num, new_lr, PYFMT_NONFINITE_JSON);
    out->has_message = true;
    snprintf(out->message, sizeof(out->message),
             "Epoch %d: ReduceLROnPlateau reducing learning rate to %s.", epoch, num);
    s->cooldown_counter = cfg->cooldown;
    s->wait = 0;
}

int rlrop_state_to_json(const struct rlrop_state *s, char **ret_json)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cjson_add(o, "best", cjson_double(s->best)) &&
              state_json_add_int(o, "wait", s->wait) &&
              state_json_add_int(o, "cooldown_counter", s->cooldown_counter);
    return state_json_finish(o, ok, ret_json);
}

int rlrop_state_from_json(const char *json, struct rlrop_state *ret, struct diag *d)
{
    static const char *const keys[] = {"best", "wait", "cooldown_counter", NULL};
    struct rlrop_state s;
    memset(&s, 0, sizeof(s));
    cJSON *o = NULL;
    int r = state_json_parse(json, keys, &o, d);
    if (r == 0 && (!cjson_get_double(o, "best", &s.best) || isnan(s.best)))
        r = diag_set(d, -EINVAL, "/best", "expected a number, \"inf\" or \"-inf\"");
    if (r == 0)
        r = state_json_get_int(o, "wait", 0, 1000000000, &s.wait, d);
    if (r == 0)
        r = state_json_get_int(o, "cooldown_counter", 0, 1000000000, &s.cooldown_counter, d);
    cJSON_Delete(o);
    if (r == 0)
        *ret = s;
    return r;
}
