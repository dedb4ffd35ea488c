/* fuzz_template.c - checkpoint filepath templates (core/template.c).
 *
 * Input: the template on the first line; an optional second line
 * "epoch batch loss accuracy val_loss val_accuracy" (numbers as strtod reads
 * them, "nan" and "inf" included) gives the values to render with.  Checks
 * template_validate and template_render never overrun, that a rendered path
 * obeys the path rules the header promises, that a validated template fails
 * to render only because of its rendered text, and that a short output
 * buffer gives -ENAMETOOLONG or the same text as a full-size one. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "logs.h"
#include "template.h"

static const char *const log_keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};

static void check_path_rules(const char *path)
{
    size_t len = strlen(path);
    FUZZ_CHECK(len > 0 && len < TEMPLATE_MAX_PATH);
    int components = 0;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        components++;
        FUZZ_CHECK(n > 0 && n <= TEMPLATE_MAX_NAME);
        FUZZ_CHECK(s[0] != '.'); /* covers "." and ".." too */
        if (!slash)
            break;
        s = slash + 1;
    }
    FUZZ_CHECK(components <= TEMPLATE_MAX_COMPONENTS);
}

static void check_diag(const struct diag *d)
{
    FUZZ_CHECK(memchr(d->field, '\0', sizeof(d->field)) != NULL);
    FUZZ_CHECK(memchr(d->message, '\0', sizeof(d->message)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *line;
    size_t line_len;
    fuzz_take_line(&data, &size, &line, &line_len);
    char *tmpl = fuzz_strndup(line, line_len);
    char *values = fuzz_strndup(data, size);

    long epoch = 3, batch = 0;
    double v[4] = {0.4231, 0.8125, 0.55462, 0.80125};
    char *p = values, *end;
    if (*values) {
        epoch = strtol(p, &end, 10);
        p = end;
        batch = strtol(p, &end, 10);
        p = end;
        for (int i = 0; i < 4; i++) {
            v[i] = strtod(p, &end);
            p = end;
        }
    }
    if (epoch < 1 || epoch > 1000000000)
        epoch = 1;
    if (batch < 0 || batch > 1000000000)
        batch = 0;
    struct logs logs = {0};
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(logs_set(&logs, log_keys[i], v[i]) == 0);

    (void)template_has_fields(tmpl);

    struct diag d = {{0}, {0}};
    int rv = template_validate(tmpl, log_keys, 4, batch > 0, &d);
    if (rv < 0)
        check_diag(&d);

    char *out = malloc(TEMPLATE_MAX_PATH);
    FUZZ_CHECK(out != NULL);
    int rr = template_render(out, TEMPLATE_MAX_PATH, tmpl, (int)epoch, (int)batch, &logs, &d);
    if (rr == 0) {
        check_path_rules(out);
    } else {
        check_diag(&d);
        /* Validated with every key these logs hold: only the rendered text
         * (a field's output breaking the path rules, or its length) may fail. */
        if (rv == 0)
            FUZZ_CHECK(rr == -ENAMETOOLONG || strncmp(d.message, "rendered path", 13) == 0);
    }

    /* The same render into a short buffer: the same text or -ENAMETOOLONG. */
    size_t small = 1 + line_len % 24;
    char *short_out = malloc(small);
    FUZZ_CHECK(short_out != NULL);
    int rs = template_render(short_out, small, tmpl, (int)epoch, (int)batch, &logs, &d);
    if (rr == 0) {
        if (rs == 0)
            FUZZ_CHECK(strcmp(short_out, out) == 0);
        else
            FUZZ_CHECK(rs == -ENAMETOOLONG && strlen(out) >= small);
    } else {
        FUZZ_CHECK(rs == rr);
    }

    free(short_out);
    free(out);
    free(values);
    free(tmpl);
    return 0;
}
