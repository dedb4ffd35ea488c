/* import_tool.c - runs import_dataset for tests/integration/test_import.py:
 *
 *   import_tool SRC DIR RELPATH [format=F] [image_size=HxW] [color_mode=M]
 *               [validation_split=X] [seed=N] [max_total_bytes=N] [max_ratio=X]
 *   import_tool --map FILE SPLIT      (dataset_map_tensorfile: n h w c classes,
 *                                      label_sum; target_width and target_sum,
 *                                      the double sum of the float targets) 
 *
 * Prints one JSON line: the result, or {"error": -errno, "field": ...,
 * "message": ...} with exit status 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "import.h"

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int fail(int err, const struct diag *d)
{
    printf("{\"error\": %d, \"field\": ", err);
    json_string(d->field);
    printf(", \"message\": ");
    json_string(d->message);
    printf("}\n");
    return 1;
}

int main(int argc, char **argv)
{
    struct diag d = {{0}, {0}};
    if (argc == 4 && strcmp(argv[1], "--map") == 0) {
        struct dataset ds = {0}, val = {0};
        int err = dataset_map_tensorfile(&ds, argv[2], argv[3], &d);
        if (err < 0)
            return fail(err, &d);
        long sum = 0;
        double tsum = 0;
        for (int i = 0; ds.labels && i < ds.n; i++)
            sum += ds.labels[i];
        for (size_t i = 0; ds.targets && i < (size_t)ds.n * (size_t)ds.target_width; i++)
            tsum += ds.targets[i];
        printf("{\"n\": %d, \"h\": %d, \"w\": %d, \"c\": %d, \"classes\": %d, \"label_sum\": %ld, "
               "\"target_width\": %d, \"target_sum\": %.17g",
               ds.n, ds.h, ds.w, ds.c, ds.classes, sum, ds.target_width, tsum);
        if (ds.n >= 2 && dataset_split_tail(&ds, &val, 0.5, &d) == 0) {
            printf(", \"split\": [%d, %d]", ds.n, val.n);
            dataset_free(&val);
        }
        printf("}\n");
        dataset_free(&ds);
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: import_tool SRC DIR RELPATH [key=value...]\n");
        return 2;
    }
    struct import_options o;
    import_options_init(&o);
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return 2;
        *eq = '\0';
        const char *k = argv[i], *v = eq + 1;
        if (strcmp(k, "format") == 0 && import_format_parse(v, &o.format) < 0)
            return 2;
        if (strcmp(k, "image_size") == 0 && sscanf(v, "%dx%d", &o.image_h, &o.image_w) != 2)
            return 2;
        if (strcmp(k, "color_mode") == 0 && import_color_mode_parse(v, &o.color_mode) < 0)
            return 2;
        if (strcmp(k, "validation_split") == 0)
            o.validation_split = strtod(v, NULL);
        if (strcmp(k, "seed") == 0)
            o.seed = (uint32_t)strtoul(v, NULL, 10);
        if (strcmp(k, "max_total_bytes") == 0)
            o.max_total_bytes = strtoull(v, NULL, 10);
        if (strcmp(k, "max_ratio") == 0)
            o.max_ratio = strtod(v, NULL);
    }
    struct import_result res;
    int err = import_dataset(argv[1], &o, argv[2], argv[3], &res, &d);
    if (err < 0)
        return fail(err, &d);
    printf("{\"format\": \"%s\", \"n_train\": %llu, \"n_test\": %llu, \"shape\": [%d, %d, %d], "
           "\"dtype\": \"%s\", \"classes\": %d, \"target_width\": %d, \"skipped\": %llu, "
           "\"bytes\": %llu}\n",
           import_format_name(res.format), (unsigned long long)res.info.n[0],
           (unsigned long long)res.info.n[1], res.info.h, res.info.w, res.info.c,
           tensorfile_dtype_name(res.info.dtype), res.info.classes, res.info.y_width,
           (unsigned long long)res.skipped, (unsigned long long)res.info.file_bytes);
    return 0;
}
