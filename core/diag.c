/* diag.c - see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int diag_set(struct diag *d, int err, const char *field, const char *fmt, ...)
{
    if (!d)
        return err;
    snprintf(d->field, sizeof(d->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
    return err;
}

void diag_prefix(struct diag *d, const char *prefix)
{
    if (!d || !prefix || !*prefix)
        return;
    char tmp[sizeof(d->field)];
    snprintf(tmp, sizeof(tmp), "%s%s", prefix, d->field);
    memcpy(d->field, tmp, sizeof(tmp));
}
