/* collective.c - helpers over the collective interface (collective.h). */
#include "collective.h"

#include <errno.h>
#include <stdlib.h>

int collective_agree_int(struct collective *c, int v)
{
    if (!collective_active(c))
        return v;
    int x = v;
    int r = c->bcast(c->ctx, &x, sizeof(x));
    return r < 0 ? r : x;
}

uint64_t collective_fnv1a(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int collective_first_mismatch(struct collective *c, uint64_t v)
{
    if (!collective_active(c))
        return 0;
    uint64_t *all = malloc(sizeof(uint64_t) * (size_t)c->size);
    if (!all)
        return -ENOMEM;
    int r = c->allgather(c->ctx, &v, all, sizeof(v));
    int first = 0;
    for (int k = 1; r == 0 && k < c->size && !first; k++)
        if (all[k] != all[0])
            first = k;
    free(all);
    return r < 0 ? r : first;
}
