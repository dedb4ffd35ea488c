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
    /* A field that already starts with the prefix's name ("resume.h5" for
     * "resume.h5: ") keeps it once: errors do not repeat their prefix. */
    size_t name_len = strlen(prefix);
    while (name_len > 0 && (prefix[name_len - 1] == ' ' || prefix[name_len - 1] == ':'))
        name_len--;
    if (name_len > 0 && strncmp(d->field, prefix, name_len) == 0 &&
        strchr(":/ ", d->field[name_len]) != NULL)
        return;
    char tmp[sizeof(d->field)];
    snprintf(tmp, sizeof(tmp), "%s%s", prefix, d->field);
    memcpy(d->field, tmp, sizeof(tmp));
}
