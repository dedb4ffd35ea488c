/* fuzz_ckpt_state.c - the checkpoint policy state a job resumes from
 * (core/checkpoint.c: ckpt_state_from_json, read back from resume files).
 *
 * Input: the first byte picks the policy (save_freq 0, 1, 5 or 100; mode;
 * save_top_k; save_best_only), the rest is the JSON text.  An accepted state
 * must keep its table within bounds, name only paths the header allows ("" or
 * relative, components non-empty and not starting with '.'), and print
 * (ckpt_state_to_json) as JSON that reads back and prints the same. */
#include <math.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz.h"

static bool path_ok(const char *p)
{
    if (!*p)
        return true;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || p[0] == '.')
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static void check_state(const struct ckpt_policy_config *cfg, const struct ckpt_state *s)
{
    FUZZ_CHECK(!isnan(s->best));
    FUZZ_CHECK(s->n_kept >= 0 && s->n_kept <= CKPT_TOP_K_MAX + 1);
    FUZZ_CHECK(s->batches_since_last_save >= 0);
    FUZZ_CHECK(cfg->save_freq == 0 || s->batches_since_last_save < cfg->save_freq);
    FUZZ_CHECK(path_ok(s->best_file));
    FUZZ_CHECK(path_ok(s->last_saved));
    for (int i = 0; i < s->n_kept; i++) {
        FUZZ_CHECK(path_ok(s->kept[i].file));
        FUZZ_CHECK(s->kept[i].seq >= 1 && s->kept[i].seq <= s->saves);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int save_freqs[4] = {0, 1, 5, 100};
    static const int top_ks[4] = {0, 1, 3, CKPT_TOP_K_MAX};
    struct ckpt_policy_config cfg;
    ckpt_policy_config_default(&cfg);
    snprintf(cfg.filepath, sizeof(cfg.filepath), "weights-{epoch:03d}-{loss:.4f}.hdf5");
    if (size > 0) {
        cfg.save_freq = save_freqs[data[0] & 3];
        cfg.mode = (enum ckpt_mode)((data[0] >> 2) % 3);
        cfg.save_top_k = top_ks[(data[0] >> 4) & 3];
        cfg.save_best_only = (data[0] >> 6) & 1;
        data++;
        size--;
    }
    char *json = fuzz_strndup(data, size);

    struct ckpt_state *s = malloc(sizeof(*s)), *again = malloc(sizeof(*again));
    FUZZ_CHECK(s && again);
    struct diag d = {{0}, {0}};
    int r = ckpt_state_from_json(&cfg, json, s, &d);
    free(json);
    if (r < 0) {
        FUZZ_CHECK(d.message[0] != '\0');
        goto out;
    }
    check_state(&cfg, s);

    char *printed = NULL, *printed2 = NULL;
    if (ckpt_state_to_json(s, &printed) < 0)
        goto out;
    r = ckpt_state_from_json(&cfg, printed, again, &d);
    if (r < 0)
        fprintf(stderr, "printed state rejected: %s: %s\n%s\n", d.field, d.message, printed);
    FUZZ_CHECK(r == 0);
    if (ckpt_state_to_json(again, &printed2) == 0) {
        if (strcmp(printed, printed2) != 0)
            fprintf(stderr, "first:  %s\nsecond: %s\n", printed, printed2);
        FUZZ_CHECK(strcmp(printed, printed2) == 0);
    }
    free(printed2);
    free(printed);
out:
    free(again);
    free(s);
    return 0;
}
