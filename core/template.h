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
 * literal text limited to [A-Za-z0-9._+=@,-] plus '/', rendered name at most
 * TEMPLATE_MAX_NAME bytes per component.  Every rendered component obeys
 * template_name_valid, the one rule that the download routes also apply, so
 * a file the daemon writes and lists can always be downloaded: templates
 * that could render anything else ("{{" "}}", space padding or a ' ' sign,
 * the '%' type, ".tmp" in a component) are refused at submit.
 *
 * Limits beyond Python: width <= TEMPLATE_MAX_NAME, precision <= 50, fill
 * characters from [A-Za-z0-9_+=@,-]; types b c n o x X % and the 'z' option
 * are refused, and so is a width without a fill character or '0' (it pads
 * with spaces).  template_render itself keeps str.format's semantics but
 * refuses a rendered name that breaks template_name_valid.  Strings are formatted in the C locale (LC_NUMERIC must stay "C"). */
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

/* The rule for one component of a checkpoint's path (len bytes of name, no
 * NUL needed): 1..TEMPLATE_MAX_NAME bytes of [A-Za-z0-9._+=@,-], not
 * starting with '.', and no ".tmp" anywhere (the temp names of atomic
 * writes, which downloads never serve). */
bool template_name_valid(const char *name, size_t len);

/* True when tmpl contains at least one replacement field. */
bool template_has_fields(const char *tmpl);

#endif
