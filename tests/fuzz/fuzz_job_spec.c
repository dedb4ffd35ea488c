/* fuzz_job_spec.c - job specs as POST /v1/jobs and `traind run` receive them
 * (api/job_spec.c, which also runs the model config and checkpoint policy
 * parsers on what it finds).
 *
 * Input: the request body, given with its exact length (not terminated).
 * Checks that a rejection fills the diagnostic, and that an accepted spec
 * prints (job_spec_to_json) as JSON that parses again and prints the same. */
#include <string.h>

#include "fuzz.h"
#include "job_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_memdup(data, size);
    struct job_spec spec;
    struct diag d = {{0}, {0}};
    int r = job_spec_parse(&spec, body, size, &d);
    free(body);
    if (r < 0) {
        FUZZ_CHECK(memchr(d.message, '\0', sizeof(d.message)) != NULL);
        FUZZ_CHECK(d.message[0] != '\0');
        return 0;
    }

    char *json = job_spec_to_json(&spec);
    if (!json) { /* allocation failure only */
        job_spec_free(&spec);
        return 0;
    }
    struct job_spec again;
    r = job_spec_parse(&again, json, strlen(json), &d);
    if (r < 0)
        fprintf(stderr, "normalised spec rejected: %s: %s\n%s\n", d.field, d.message, json);
    FUZZ_CHECK(r == 0);
    char *json2 = job_spec_to_json(&again);
    if (json2) {
        if (strcmp(json, json2) != 0)
            fprintf(stderr, "first:  %s\nsecond: %s\n", json, json2);
        FUZZ_CHECK(strcmp(json, json2) == 0);
    }
    free(json2);
    free(json);
    job_spec_free(&again);
    job_spec_free(&spec);
    return 0;
}
