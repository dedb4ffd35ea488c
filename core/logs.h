/* logs.h - the Keras `logs` dict of one batch or epoch: name -> value.
 * Keys used by fit(): loss, accuracy, val_loss, val_accuracy.  Lookups accept
 * the Keras 2 aliases acc and val_acc. */
#ifndef TRAIND_LOGS_H
#define TRAIND_LOGS_H

#include <stdbool.h>

#define LOGS_MAX 16

struct logs {
    int n;
    struct {
        char key[32];
        double value;
    } items[LOGS_MAX];
};

/* Set (add or replace) key. Returns 0 or -ENOSPC. */
int logs_set(struct logs *l, const char *key, double value);
/* Value of key (aliases resolved) into *ret; false when absent. */
bool logs_get(const struct logs *l, const char *key, double *ret);
/* Canonical name for a key: "acc" -> "accuracy", "val_acc" -> "val_accuracy", else key. */
const char *logs_canonical_key(const char *key);

#endif
