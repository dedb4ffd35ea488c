/* fuzz_ckpt_state.c - the checkpoint policy state a job resumes from
 * (core/checkpoint.c: ckpt_state_from_json, read back from resume files).
 *
 * Input: the first byte picks the policy (bits 0-1 save_freq 0, 1, 5 or 100;
 * bits 2-3 mode; bits 4-5 save_top_k 0, 1, 3 or 16; bit 6 save_best_only),
 * the rest is the JSON text (up to a NUL).  An accepted state must keep its
 * table within bounds, name only the paths path_is_clean's comment in
 * checkpoint.c promises ("" or relative, components non-empty and not
 * starting with '.'), print
 * (ckpt_state_to_json) as JSON that reads back and prints the same, and go
 * on as a resumed job would: three more saves, each committed, where the
 * file just written is kept and never listed for deletion, and no file the
 * table still tracks is listed either. */
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

static void check_commit(const struct ckpt_state *s, const struct ckpt_decision *dec,
                         const struct ckpt_commit_result *res, int save_top_k)
{
    FUZZ_CHECK(res->n_delete >= 0 && res->n_delete <= CKPT_TOP_K_MAX + 1);
    if (save_top_k == 0)
        return;
    FUZZ_CHECK(s->n_kept >= 1 && s->n_kept <= CKPT_TOP_K_MAX + 1);
    FUZZ_CHECK(strcmp(s->kept[s->n_kept - 1].file, dec->file) == 0);
    for (int j = 0; j < res->n_delete; j++) {
        FUZZ_CHECK(strcmp(res->delete_files[j], dec->file) != 0);
        for (int i = 0; i < s->n_kept; i++) {
            if (strcmp(res->delete_files[j], s->kept[i].file) == 0)
                fprintf(stderr, "'%s' is listed for deletion and still kept\n", s->kept[i].file);
            FUZZ_CHECK(strcmp(res->delete_files[j], s->kept[i].file) != 0);
        }
    }
}

/* Three more saves after the restore, as the resumed job makes them. */
static void resume_saves(const struct ckpt_policy_config *cfg, struct ckpt_state *s)
{
    static const double val_loss[3] = {0.5, 0.25, 0.75};
    struct ckpt_decision *dec = malloc(sizeof(*dec));
    struct ckpt_commit_result *res = malloc(sizeof(*res));
    FUZZ_CHECK(dec && res);
    for (int e = 0; e < 3; e++) {
        struct logs logs = {0};
        FUZZ_CHECK(logs_set(&logs, "loss", val_loss[e] * 2) == 0 &&
                   logs_set(&logs, "val_loss", val_loss[e]) == 0);
        struct diag d = {{0}, {0}};
        int r;
        if (cfg->save_freq == 0) {
            r = ckpt_on_epoch_end(cfg, s, e + 1, &logs, dec, &d);
        } else {
            /* Batches 1..save_freq of a new epoch reach the next save. */
            r = 0;
            dec->should_write = false;
            for (int b = 1; r == 0 && b <= cfg->save_freq && !dec->should_write; b++)
                r = ckpt_on_batch_end(cfg, s, e + 1, b, &logs, dec, &d);
        }
        FUZZ_CHECK(r == 0);
        if (!dec->should_write)
            continue;
        FUZZ_CHECK(ckpt_commit(cfg, s, dec, res) == 0);
        check_commit(s, dec, res, cfg->save_top_k);
    }
    free(res);
    free(dec);
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
        cfg.mode = (enum ckpt_mode)(((data[0] >> 2) & 3) % 3);
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
    resume_saves(&cfg, s);
out:
    free(again);
    free(s);
    return 0;
}
