/* fuzz_model_json.c - Keras Sequential JSON (model.to_json()) as a job spec's
 * inline model carries it (core/model_json_read.c: model_spec_parse_json).
 *
 * Input: the JSON text with its exact length.  The first byte's low bit
 * also says whether to pass an input shape (28, 28, 1), as the daemon does
 * for Fashion-MNIST: '{' passes it, a leading space or newline does not.  An accepted spec must print as JSON that
 * parses to a spec that prints the same, and shape inference, parameter
 * counts and the class count must not crash on it. */
#include <string.h>

#include "fuzz.h"
#include "model.h"

static void exercise_spec(const struct model_spec *spec)
{
    struct diag d = {{0}, {0}};
    int (*shapes)[3] = calloc((size_t)spec->n_layers + 1, sizeof(*shapes));
    FUZZ_CHECK(shapes != NULL);
    if (model_spec_infer_shapes(spec, shapes, &d) == 0) {
        for (int i = 0; i < spec->n_layers; i++)
            for (int k = 0; k < 3; k++)
                FUZZ_CHECK(shapes[i][k] >= 1);
    }
    free(shapes);
    size_t total = 0, trainable = 0;
    if (model_spec_count_params(spec, &total, &trainable, &d) == 0)
        FUZZ_CHECK(trainable <= total);
    (void)model_spec_output_classes(spec, &d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int input_shape[3] = {28, 28, 1};
    const int *shape = size > 0 && (data[0] & 1) ? input_shape : NULL;
    char *json = fuzz_memdup(data, size);
    struct model_spec spec;
    struct diag d = {{0}, {0}};
    int r = model_spec_parse_json(&spec, json, size, shape, &d);
    free(json);
    if (r < 0) {
        FUZZ_CHECK(memchr(d.message, '\0', sizeof(d.message)) != NULL);
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(spec.n_layers >= 0);
    exercise_spec(&spec);

    char *printed = model_spec_to_json(&spec);
    if (printed) {
        struct model_spec again;
        r = model_spec_parse_json(&again, printed, strlen(printed), NULL, &d);
        if (r < 0)
            fprintf(stderr, "printed spec rejected: %s: %s\n%s\n", d.field, d.message, printed);
        FUZZ_CHECK(r == 0);
        char *printed2 = model_spec_to_json(&again);
        if (printed2 && strcmp(printed, printed2) != 0)
            fprintf(stderr, "first:  %s\nsecond: %s\n", printed, printed2);
        FUZZ_CHECK(!printed2 || strcmp(printed, printed2) == 0);
        free(printed2);
        model_spec_free(&again);
    }
    free(printed);
    model_spec_free(&spec);
    return 0;
}
