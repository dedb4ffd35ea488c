/* fuzz_job_spec.c - job specs as POST /v1/jobs and `traind run` receive them
 * (api/job_spec.c, which also runs the model config and checkpoint policy
 * parsers on what it finds).
 *
 * Input: the request body, given with its exact length (not terminated).
 * Checks that a rejection fills the diagnostic, that an accepted spec
 * prints (job_spec_to_json) as JSON that parses again and prints the same,
 * and that every checkpoint policy accepted at submit can decide at the
 * first epoch end (or batch save) with the logs fit() gives: its template
 * may only fail there on the rendered text (length, path rules), never on a
 * key or spec that submit let through. */
#include <errno.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz.h"
#include "job_spec.h"
#include "logs.h"

static void check_render_error(int r, const struct diag *d)
{
    if (r == 0 || r == -ENAMETOOLONG || strncmp(d->message, "rendered path", 13) == 0)
        return;
    fprintf(stderr, "accepted policy fails at run time: %d %s: %s\n", r, d->field, d->message);
    FUZZ_CHECK(!"accepted checkpoint policy cannot render");
}

static void check_policies(const struct job_spec *spec)
{
    struct logs epoch_logs = {0}, batch_logs = {0};
    FUZZ_CHECK(logs_set(&epoch_logs, "loss", 0.25) == 0 &&
               logs_set(&epoch_logs, "accuracy", 0.75) == 0 &&
               logs_set(&epoch_logs, "val_loss", 0.5) == 0 &&
               logs_set(&epoch_logs, "val_accuracy", 0.625) == 0);
    FUZZ_CHECK(logs_set(&batch_logs, "loss", 0.25) == 0 &&
               logs_set(&batch_logs, "accuracy", 0.75) == 0);
    struct ckpt_state *state = malloc(sizeof(*state));
    struct ckpt_decision *dec = malloc(sizeof(*dec));
    FUZZ_CHECK(state && dec);
    for (int i = 0; i < spec->n_checkpoints; i++) {
        const struct ckpt_policy_config *cfg = &spec->checkpoints[i];
        struct diag d = {{0}, {0}};
        ckpt_state_init(state, cfg);
        if (cfg->save_freq == 0) {
            check_render_error(ckpt_on_epoch_end(cfg, state, 1, &epoch_logs, dec, &d), &d);
            continue;
        }
        /* Batch saving: batch 1 counts one batch, batch save_freq brings the
         * count to save_freq, the first save (Keras' counting). */
        int r = ckpt_on_batch_end(cfg, state, 1, 1, &batch_logs, dec, &d);
        check_render_error(r, &d);
        if (r == 0 && dec->kind == CKPT_DECISION_NONE) {
            r = ckpt_on_batch_end(cfg, state, 1, cfg->save_freq, &batch_logs, dec, &d);
            check_render_error(r, &d);
            FUZZ_CHECK(r < 0 || dec->kind != CKPT_DECISION_NONE);
        }
    }
    free(dec);
    free(state);
}

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

    check_policies(&spec);

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
