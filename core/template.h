/* template.h - checkpoint filepath templates with Python str.format semantics.
 *
 * Supported: literal text, "{{" and "}}" escapes, "{name}" and "{name:spec}"
 * where spec is Python's format-spec mini-language
 *   [[fill]align][sign][#][0][width][,|_][.precision][type]
 * with types d f F e E g G s % (and none).  Keys: "epoch" (1-based, integer),
 * "batch" (1-based within the epoch, integer; only with batch-based saving)
 * and every logs key (floats); "acc"/"val_acc" resolve to
 * "accuracy"/"val_accuracy".  Rendering gives exactly what Python 3's
 * str.format gives for the same values (int for epoch/batch, float for logs).
 *
 * Validation (at job submit) also enforces the path rules: relative, at most
 * TEMPLATE_MAX_COMPONENTS components separated by '/', no empty, "." or ".."
 * component, no leading dot in a component, characters of the rendered
 * literal text limited to [A-Za-z0-9._+=@,-] plus '/' (and '{' '}' written as
 * "{{" "}}"), rendered name at most TEMPLATE_MAX_NAME bytes per component.
 *
 * Limits beyond Python: width <= TEMPLATE_MAX_NAME, precision <= 50, fill
 * characters from [A-Za-z0-9_+=@,-] or space; types b c n o x X and the 'z'
 * option are refused.  Fields may render spaces (padding, ' ' sign) and '%'.
 * Strings are formatted in the C locale (LC_NUMERIC must stay "C"). */
#ifndef TRAIND_TEMPLATE_H
#define TRAIND_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "logs.h"

#define TEMPLATE_MAX_COMPONENTS 4
#define TEMPLATE_MAX_NAME 255
#define TEMPLATE_MAX_PATH 1024

/* Check a template: syntax, known keys (available_keys: the logs keys the
 * job will produce, e.g. loss, accuracy, val_loss, val_accuracy; plus
 * "epoch" always and "batch" when batch_allowed), specs valid for the key's
 * type, path rules.  d->field is "" and d->message names the 0-based
 * character position, e.g. "position 9: unknown key 'val_los'". */
int template_validate(const char *tmpl, const char *const *available_keys, int n_keys,
                      bool batch_allowed, struct diag *d);

/* Render tmpl for epoch (1-based), batch (1-based, or 0 when not batch
 * saving) and logs into out (size outsz).  Returns 0, -EINVAL (bad template
 * or unknown key, with d), -ENAMETOOLONG, or -EINVAL when the rendered path
 * breaks the path rules (e.g. a logs value renders as "nan" is fine, but a
 * "/" from a string field is not). */
int template_render(char *out, size_t outsz, const char *tmpl, int epoch, int batch,
                    const struct logs *logs, struct diag *d);

/* True when tmpl contains at least one replacement field. */
bool template_has_fields(const char *tmpl);

#endif
