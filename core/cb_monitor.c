/* cb_monitor.c - the `auto` mode rules of tf.keras 2.15's callbacks (see
 * cb_monitor.h). */
#include "cb_monitor.h"

#include <stdbool.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* name is suffix, or ends in "_" suffix. */
static bool name_has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return ends_with(name, suffix) && (n == m || name[n - m - 1] == '_');
}

static enum ckpt_mode checkpoint_rule(const char *monitor)
{
    static const char *const min_names[] = {"loss", "mse", "mae"};
    static const char *const max_names[] = {"accuracy", "acc", "auc", "precision", "recall"};
    for (size_t i = 0; i < sizeof(min_names) / sizeof(min_names[0]); i++)
        if (name_has_suffix(monitor, min_names[i]))
            return CKPT_MODE_MIN;
    for (size_t i = 0; i < sizeof(max_names) / sizeof(max_names[0]); i++)
        if (name_has_suffix(monitor, max_names[i]))
            return CKPT_MODE_MAX;
    return CKPT_MODE_AUTO;
}

enum ckpt_mode cb_resolve_mode(enum cb_kind kind, const char *monitor, enum ckpt_mode mode)
{
    if (mode == CKPT_MODE_MIN || mode == CKPT_MODE_MAX)
        return mode;
    switch (kind) {
    case CB_KIND_EARLY_STOPPING:
        return ends_with(monitor, "acc") || ends_with(monitor, "accuracy") ||
                       ends_with(monitor, "auc")
                   ? CKPT_MODE_MAX
                   : CKPT_MODE_MIN;
    case CB_KIND_REDUCE_LR_ON_PLATEAU:
        return strstr(monitor, "acc") ? CKPT_MODE_MAX : CKPT_MODE_MIN;
    case CB_KIND_MODEL_CHECKPOINT:
        break;
    }
    return checkpoint_rule(monitor);
}

const char *cb_mode_name(enum ckpt_mode mode)
{
    switch (mode) {
    case CKPT_MODE_MIN: return "min";
    case CKPT_MODE_MAX: return "max";
    case CKPT_MODE_AUTO: break;
    }
    return "auto";
}
