/* logs.c - see logs.h. */
#include "logs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *logs_canonical_key(const char *key)
{
    if (strcmp(key, "acc") == 0)
        return "accuracy";
    if (strcmp(key, "val_acc") == 0)
        return "val_accuracy";
    return key;
}

int logs_set(struct logs *l, const char *key, double value)
{
    key = logs_canonical_key(key);
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0) {
            l->items[i].value = value;
            return 0;
        }
    if (l->n >= LOGS_MAX || strlen(key) >= sizeof(l->items[0].key))
        return -ENOSPC;
    snprintf(l->items[l->n].key, sizeof(l->items[0].key), "%s", key);
    l->items[l->n].value = value;
    l->n++;
    return 0;
}

bool logs_get(const struct logs *l, const char *key, double *ret)
{
    key = logs_canonical_key(key);
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0) {
            if (ret)
                *ret = l->items[i].value;
            return true;
        }
    return false;
}
