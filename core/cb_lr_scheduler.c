/* cb_lr_scheduler.c - Keras LearningRateScheduler with the step decay of
 * PyImageSearch's training scripts (see callbacks.h):
 *
 *   def step_decay(epoch):
 *       return float(init_alpha * (factor ** np.floor((1 + epoch) / drop_every)))
 *
 * Keras calls it at each epoch's begin with the 0-based epoch, sets the
 * float32 learning-rate variable and, with verbose, prints
 * "Epoch N: LearningRateScheduler setting learning rate to {lr}." (lr as the
 * Python float the schedule returned).  The schedule has no state. */
#include "callbacks.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pyfmt.h"

int lr_step_decay_validate(const struct lr_step_decay_config *cfg, struct diag *d)
{
    if (!isfinite(cfg->initial_learning_rate) || cfg->initial_learning_rate < 0)
        return diag_set(d, -EINVAL, "/initial_learning_rate", "must be a finite number >= 0");
    if (!isfinite(cfg->factor) || cfg->factor <= 0)
        return diag_set(d, -EINVAL, "/factor", "must be a finite number > 0");
    if (cfg->drop_every < 1)
        return diag_set(d, -EINVAL, "/drop_every", "must be an integer >= 1");
    return 0;
}

double lr_step_decay_at(const struct lr_step_decay_config *cfg, int epoch)
{
    /* Python: (1 + epoch) / drop_every is a true division, floored by np.floor. */
    double drops = floor((double)epoch / (double)cfg->drop_every);
    return cfg->initial_learning_rate * pow(cfg->factor, drops);
}

void lr_step_decay_on_epoch_begin(const struct lr_step_decay_config *cfg, int epoch, double lr,
                                  struct lr_change *out)
{
    memset(out, 0, sizeof(*out));
    out->old_lr = out->new_lr = lr;
    if (!cfg->enabled)
        return;
    double v = lr_step_decay_at(cfg, epoch);
    out->new_lr = (double)(float)v;
    out->changed = (float)v != (float)lr; /* the float32 variable changes */
    char num[40];
    pyfmt_double(num, v, PYFMT_NONFINITE_JSON);
    out->has_message = true;
    snprintf(out->message, sizeof(out->message),
             "Epoch %d: LearningRateScheduler setting learning rate to %s.", epoch, num);
}
