/* test_template.c - filepath templates against Python's str.format.
 *
 * The rendering table tests/fixtures/template_cases.tsv is produced by
 * tests/reference/gen_template_cases.py from real Python; every case is
 * validated and rendered here and compared byte for byte.  The rejection
 * table checks the error and the position that template_validate names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "test.h"

static const char *const job_keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};

/* "k=v;k=v" with Python repr values into l. */
static int parse_logs(char *txt, struct logs *l)
{
    memset(l, 0, sizeof(*l));
    for (char *save = NULL, *kv = strtok_r(txt, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return -EINVAL;
        *eq = '\0';
        char *end;
        double v = strtod(eq + 1, &end);
        if (*end || logs_set(l, kv, v) < 0)
            return -EINVAL;
    }
    return 0;
}

/* A component of the expected string longer than a file name may be: the
 * renderer must refuse it instead of producing it. */
static bool has_long_component(const char *s)
{
    size_t run = 0;
    for (; *s; s++) {
        run = *s == '/' ? 0 : run + 1;
        if (run > TEMPLATE_MAX_NAME)
            return true;
    }
    return false;
}

static void test_python_table(void)
{
    const char *path = TEST_SOURCE_DIR "/tests/fixtures/template_cases.tsv";
    FILE *f = fopen(path, "re");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    char line[4096];
    int cases = 0, long_cases = 0, python_errors = 0, restricted = 0, rendered = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *col[5];
        char *save = NULL;
        int n = 0;
        for (char *tok = strtok_r(line, "\t", &save); tok && n < 5; tok = strtok_r(NULL, "\t", &save))
            col[n++] = tok;
        CHECK_MSG(n == 5, "bad table line after case %d", cases);
        if (n != 5)
            continue;
        int epoch = atoi(col[1]), batch = atoi(col[2]);
        struct logs logs;
        CHECK_INT_EQ(parse_logs(col[3], &logs), 0);

        struct diag d = {0};
        int rv = template_validate(col[0], job_keys, 4, batch > 0, &d);
        cases++;
        if (strcmp(col[4], "!error") == 0) {
            /* Python raises: Keras would fail at the first save. */
            python_errors++;
            CHECK_MSG(rv == -EINVAL, "'%s' accepted, Python rejects it", col[0]);
            continue;
        }
        if (rv != 0) {
            /* Valid Python outside our subset: only the documented limits. */
            restricted++;
            CHECK_MSG(strstr(d.message, "not supported") || strstr(d.message, "fill character") ||
                          strstr(d.message, "larger than"),
                      "validate '%s': %s", col[0], d.message);
            continue;
        }

        char out[TEMPLATE_MAX_PATH];
        int rr = template_render(out, sizeof(out), col[0], epoch, batch, &logs, &d);
        if (has_long_component(col[4])) {
            long_cases++;
            CHECK_MSG(rr == -ENAMETOOLONG, "'%s' with %s: want -ENAMETOOLONG, got %d", col[0],
                      col[3], rr);
        } else {
            CHECK_MSG(rr == 0, "render '%s': %d %s", col[0], rr, d.message);
            CHECK_MSG(rr != 0 || strcmp(out, col[4]) == 0, "'%s' (epoch %d, %s): got '%s', Python '%s'",
                      col[0], epoch, col[3], out, col[4]);
            rendered += rr == 0;
        }
    }
    fclose(f);
    fprintf(stderr,
            "  %d Python cases: %d rendered identically, %d refused as too long, %d Python errors "
            "rejected, %d outside the subset\n",
            cases, rendered, long_cases, python_errors, restricted);
    CHECK(rendered >= 60);
}

struct reject_case {
    const char *tmpl;
    bool batch_allowed;
    int position;
    const char *needle;
};

static void test_rejections(void)
{
    char long_name[300];
    memset(long_name, 'a', 256);
    strcpy(long_name + 256, ".h5");

    const struct reject_case cases[] = {
        {"weights-{val_los}.h5", false, 9, "unknown key 'val_los' (available: epoch, loss, accuracy"},
        {"w-{}.h5", false, 3, "positional"},
        {"w-{0}.h5", false, 3, "positional field '{0}'"},
        {"w-{epoch.real}.h5", false, 8, "attribute or index"},
        {"w-{val_loss[0]}.h5", false, 11, "attribute or index"},
        {"w-{epoch!r}.h5", false, 8, "conversion '!r'"},
        {"w-{epoch:{w}}.h5", false, 9, "nested field"},
        {"w-{a{b}}.h5", false, 4, "unexpected '{'"},
        {"w-{epoch.h5", false, 8, "attribute"},
        {"w-{epoch", false, 2, "unterminated '{'"},
        {"w-}.h5", false, 2, "single '}'"},
        {"w-{epoch:03s}.h5", false, 9, "'s' is not valid for a value of type int"},
        {"w-{val_loss:d}.h5", false, 12, "'d' is not valid for a value of type float"},
        {"w-{val_loss:s}.h5", false, 12, "'s' is not valid"},
        {"w-{epoch:.2d}.h5", false, 9, "precision not allowed"},
        {"w-{epoch:.2}.h5", false, 9, "precision not allowed"},
        {"w-{val_loss:.f}.h5", false, 12, "missing precision"},
        {"w-{val_loss:,_f}.h5", false, 12, "both ',' and '_'"},
        {"w-{val_loss:xyz}.h5", false, 12, "invalid format specifier"},
        {"w-{epoch:x}.h5", false, 9, "'x' is not supported"},
        {"w-{val_loss:q}.h5", false, 12, "unknown format code 'q'"},
        {"w-{val_loss:z.2f}.h5", false, 12, "'z'"},
        {"w-{epoch:/>5}.h5", false, 9, "fill character '/'"},
        {"w-{epoch:.>5}.h5", false, 9, "fill character '.'"},
        {"w-{epoch:300}.h5", false, 9, "width larger"},
        {"w-{val_loss:.99f}.h5", false, 12, "precision larger"},
        {"w-{batch}.h5", false, 3, "batch-based saving"},
        {"/abs/w.h5", false, 0, "absolute path"},
        {"../w.h5", false, 0, "'..' path component"},
        {"a/../w.h5", false, 2, "'..' path component"},
        {"./w.h5", false, 0, "'.' path component"},
        {"a/./w.h5", false, 2, "'.' path component"},
        {"a//b.h5", false, 2, "empty path component"},
        {"a/b/", false, 4, "empty path component"},
        {".hidden.h5", false, 0, "starts with '.'"},
        {"a/.h/w.h5", false, 2, "starts with '.'"},
        {"a/b/c/d/e.h5", false, 7, "more than 4 path components"},
        {"w {epoch}.h5", false, 1, "not allowed in file names"},
        {"w-$HOME.h5", false, 2, "not allowed in file names"},
        {"w-\xc3\xa9.h5", false, 2, "not allowed in file names"},
        {long_name, false, 255, "longer than 255 bytes"},
        {"", false, 0, "empty template"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diag d = {0};
        int r = template_validate(cases[i].tmpl, job_keys, 4, cases[i].batch_allowed, &d);
        char want[32];
        snprintf(want, sizeof(want), "position %d: ", cases[i].position);
        CHECK_MSG(r == -EINVAL, "'%s' accepted", cases[i].tmpl);
        CHECK_MSG(strncmp(d.message, want, strlen(want)) == 0, "'%s': '%s' does not start with '%s'",
                  cases[i].tmpl, d.message, want);
        CHECK_MSG(strstr(d.message, cases[i].needle) != NULL, "'%s': '%s' lacks '%s'", cases[i].tmpl,
                  d.message, cases[i].needle);
        CHECK_STR_EQ(d.field, "");
    }

    /* The same templates are fine where they should be. */
    struct diag d = {0};
    CHECK_INT_EQ(template_validate("w-{batch:04d}.h5", job_keys, 4, true, &d), 0);
    CHECK_INT_EQ(template_validate("w-{acc:.3f}-{val_acc:.3f}.h5", job_keys, 4, false, &d), 0);
    CHECK_INT_EQ(template_validate("a/b/c/d.h5", job_keys, 4, false, &d), 0);
    CHECK_INT_EQ(template_validate("w-{{x}}.h5", job_keys, 4, false, &d), -EINVAL);
    /* Batch logs have no val_ keys: the caller passes only the batch keys. */
    const char *const batch_keys[] = {"loss", "accuracy"};
    CHECK_INT_EQ(template_validate("w-{val_loss}.h5", batch_keys, 2, true, &d), -EINVAL);
    CHECK(strstr(d.message, "available: epoch, batch, loss, accuracy") != NULL);
}

static void test_render_errors(void)
{
    struct logs logs = {0};
    logs_set(&logs, "loss", 0.5);
    char out[TEMPLATE_MAX_PATH];
    struct diag d = {0};

    CHECK_INT_EQ(template_render(out, sizeof(out), "w-{val_loss:.4f}.h5", 1, 0, &logs, &d), -EINVAL);
    CHECK(strstr(d.message, "position 3: key 'val_loss' is not in the logs") != NULL);
    CHECK_INT_EQ(template_render(out, sizeof(out), "w-{batch}.h5", 1, 0, &logs, &d), -EINVAL);
    CHECK(strstr(d.message, "position 3:") != NULL);
    CHECK_INT_EQ(template_render(out, sizeof(out), "w-{loss:d}.h5", 1, 0, &logs, &d), -EINVAL);
    CHECK_INT_EQ(template_render(out, sizeof(out), "../{loss}.h5", 1, 0, &logs, &d), -EINVAL);

    /* A huge value in 'f' makes a name longer than a file system allows. */
    logs_set(&logs, "val_loss", 1e300);
    CHECK_INT_EQ(template_render(out, sizeof(out), "w-{val_loss:.4f}.h5", 1, 0, &logs, &d),
                 -ENAMETOOLONG);
    /* Too small an output buffer. */
    CHECK_INT_EQ(template_render(out, 8, "w-{epoch:03d}.h5", 33, 0, &logs, &d), -ENAMETOOLONG);
    CHECK_INT_EQ(template_render(out, 11, "w-{epoch:03d}.h5", 33, 0, &logs, &d), 0);
    CHECK_STR_EQ(out, "w-033.h5");
    /* Aliases and batch. */
    logs_set(&logs, "accuracy", 0.75);
    CHECK_INT_EQ(template_render(out, sizeof(out), "e{epoch}b{batch:03d}-{acc:.2f}.h5", 2, 7, &logs, &d), 0);
    CHECK_STR_EQ(out, "e2b007-0.75.h5");
}

static void test_has_fields(void)
{
    CHECK(template_has_fields("w-{epoch}.h5"));
    CHECK(template_has_fields("{{x}}{epoch}.h5"));
    CHECK(!template_has_fields("best.h5"));
    CHECK(!template_has_fields("best{{x}}.h5"));
}

/* Random templates from the syntax's own characters: no crash or sanitizer
 * report, and every template that validates renders (or is too long). */
static void test_random_templates(void)
{
    static const char alphabet[] = "{}{}{}:!.[]0123456789_/<>^=+- #,%eEfFgGdsxz"
                                   "epochbatchval_lossaccuracy.h5";
    const char *const keys[] = {"epoch", "batch", "val_loss", "accuracy", "loss"};
    unsigned long long x = 88172645463325252ULL;
    struct logs logs = {0};
    logs_set(&logs, "loss", 0.4231);
    logs_set(&logs, "accuracy", 0.8125);
    logs_set(&logs, "val_loss", -1234.5678);
    logs_set(&logs, "val_accuracy", 1e-7);
    int accepted = 0;
    for (int n = 0; n < 20000; n++) {
        char t[40];
        int len = 1 + (int)(x % 30), k = 0;
        while (k < len) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x % 5 == 0) { /* a well-formed field now and then */
                k += snprintf(t + k, sizeof(t) - (size_t)k, "{%s:", keys[(x >> 8) % 5]);
                if (k >= len || k >= (int)sizeof(t) - 4)
                    break;
                continue;
            }
            t[k++] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
        }
        t[k < (int)sizeof(t) ? k : (int)sizeof(t) - 1] = '\0';
        struct diag d = {0};
        int rv = template_validate(t, job_keys, 4, true, &d);
        CHECK_MSG(rv == 0 || strncmp(d.message, "position ", 9) == 0, "'%s': %s", t, d.message);
        if (rv != 0)
            continue;
        accepted++;
        char out[TEMPLATE_MAX_PATH];
        int rr = template_render(out, sizeof(out), t, 7, 3, &logs, &d);
        CHECK_MSG(rr == 0 || rr == -ENAMETOOLONG, "'%s' validated but render gives %d: %s", t, rr,
                  d.message);
    }
    fprintf(stderr, "  %d of 20000 random templates valid\n", accepted);
    CHECK(accepted > 100);
}

int main(void)
{
    TEST_RUN(test_python_table);
    TEST_RUN(test_rejections);
    TEST_RUN(test_render_errors);
    TEST_RUN(test_has_fields);
    TEST_RUN(test_random_templates);
    return TEST_EXIT();
}
