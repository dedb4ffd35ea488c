/* callbacks.c - the callback list fit() calls (see callbacks.h). */
#include "callbacks.h"

#include <errno.h>

int cb_list_add(struct cb_list *l, const struct callback *cb)
{
    if (l->n >= CB_LIST_MAX)
        return -ENOSPC;
    l->items[l->n++] = *cb;
    return 0;
}

/* Combine one hook's result into the list's: the first error wins at once. */
static int merge(int acc, int r)
{
    return r < 0 ? r : (acc || r > 0);
}

static int list_train_begin(void *ctx, const struct fit_progress *p)
{
    const struct cb_list *l = ctx;
    int acc = 0;
    for (int i = 0; i < l->n && acc >= 0; i++)
        if (l->items[i].hooks.train_begin)
            acc = merge(acc, l->items[i].hooks.train_begin(l->items[i].hooks.ctx, p));
    return acc;
}

static int list_epoch_begin(void *ctx, const struct fit_progress *p)
{
    const struct cb_list *l = ctx;
    int acc = 0;
    for (int i = 0; i < l->n && acc >= 0; i++)
        if (l->items[i].hooks.epoch_begin)
            acc = merge(acc, l->items[i].hooks.epoch_begin(l->items[i].hooks.ctx, p));
    return acc;
}

static int list_batch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    const struct cb_list *l = ctx;
    int acc = 0;
    for (int i = 0; i < l->n && acc >= 0; i++)
        if (l->items[i].hooks.batch_end)
            acc = merge(acc, l->items[i].hooks.batch_end(l->items[i].hooks.ctx, p, logs));
    return acc;
}

static int list_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    const struct cb_list *l = ctx;
    int acc = 0;
    for (int i = 0; i < l->n && acc >= 0; i++)
        if (l->items[i].hooks.epoch_end)
            acc = merge(acc, l->items[i].hooks.epoch_end(l->items[i].hooks.ctx, p, logs));
    return acc;
}

static void list_train_end(void *ctx, const struct fit_progress *p, int status)
{
    const struct cb_list *l = ctx;
    for (int i = 0; i < l->n; i++)
        if (l->items[i].hooks.train_end)
            l->items[i].hooks.train_end(l->items[i].hooks.ctx, p, status);
}

void cb_list_bind(const struct cb_list *l, struct fit_callbacks *ret)
{
    ret->ctx = (void *)l;
    ret->train_begin = list_train_begin;
    ret->epoch_begin = list_epoch_begin;
    ret->batch_end = list_batch_end;
    ret->epoch_end = list_epoch_end;
    ret->train_end = list_train_end;
}
