/* diag.h - diagnostics that parsers and loaders fill for the caller.
 *
 * A failing core/ function returns a negative errno and, when given a
 * non-NULL struct diag, writes where the problem is (a JSON pointer such as
 * "/checkpoints/0/filepath", a layer path such as "/config/layers/3/config/kernel_size",
 * a file offset, or a template position) and a one-line message.  The API
 * layer returns both verbatim.  core/ never logs. */
#ifndef TRAIND_DIAG_H
#define TRAIND_DIAG_H

struct diag {
    char field[256];   /* JSON pointer, file name or position; "" when not applicable */
    char message[512]; /* one line, no trailing period required */
};

/* Fill d (if non-NULL) with field and a printf-style message; returns err so
 * that callers can write `return diag_set(d, -EINVAL, "/epochs", "must be > 0");`. */
int diag_set(struct diag *d, int err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix d->field with prefix (e.g. "/checkpoints/0" + "/filepath"), unless
 * the field already starts with the prefix's name (prefix without trailing
 * ": "), followed by the end, ':', '/' or ' ', so that an error never
 * repeats its prefix ("resume.h5: resume.h5: write: ..."). */
void diag_prefix(struct diag *d, const char *prefix);

#endif
