/* resume_state.c - the state JSON inside <job_dir>/resume.h5 and reading
 * a run back from that file (format in job_runner.c's top comment): each
 * checkpoint policy's state, the other callbacks' (runner_callbacks.h), and the position inside an
 * epoch of a run stopped mid-epoch. */
#include "job_runner_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5.h"

static cJSON *policy_state_json(struct runner *r, int i)
{
    char *text = NULL;
    if (ckpt_state_to_json(&r->policies[i], &text) < 0)
        return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

static int policy_state_from_json(struct runner *r, int i, const cJSON *o, struct diag *d)
{
    char *text = cJSON_PrintUnformatted(o);
    if (!text)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int ret = ckpt_state_from_json(&r->spec->checkpoints[i], text, &r->policies[i], d);
    cJSON_free(text);
    if (ret < 0) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), RUNNER_RESUME_FILE ": policy %d state", i);
        diag_prefix(d, prefix);
    }
    return ret;
}

char *resume_state_json(struct runner *r)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    cJSON *pol = cJSON_CreateArray();
    if (!o || !cJSON_AddItemToObject(o, "policies", pol))
        goto out;
    ok &= cJSON_AddNumberToObject(o, "version", RUNNER_STATE_VERSION) != NULL;
    for (int i = 0; i < r->n_policies; i++) {
        cJSON *ps = policy_state_json(r, i);
        if (!ps || !cJSON_AddItemToArray(pol, ps))
            goto out;
    }
    ok &= runner_cb_state_add(&r->cbs, o);
    if (r->in_batch > 0) {
        cJSON *pos = cJSON_AddObjectToObject(o, "epoch_position");
        if (!pos)
            goto out;
        ok &= cJSON_AddNumberToObject(pos, "batch", r->in_batch) != NULL;
        ok &= cJSON_AddNumberToObject(pos, "loss_sum", r->in_loss_sum) != NULL;
        ok &= cJSON_AddNumberToObject(pos, "metric_sum", r->in_metric_sum) != NULL;
        ok &= cJSON_AddNumberToObject(pos, "seen", (double)r->in_seen) != NULL;
    }
    out = ok ? cJSON_PrintUnformatted(o) : NULL;
out:
    cJSON_Delete(o);
    return out;
}

static int state_from_json(struct runner *r, const char *text, struct diag *d)
{
    cJSON *o = cJSON_Parse(text ? text : "{}");
    int ret = 0;
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(o, "policies");
    if (!cJSON_IsNumber(version) || version->valueint != RUNNER_STATE_VERSION ||
        !cJSON_IsArray(pol)) {
        ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                       "the resume file's state is not traind runner state version %d",
                       RUNNER_STATE_VERSION);
        goto out;
    }
    if (cJSON_GetArraySize(pol) != r->n_policies) {
        ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                       "the resume file has %d checkpoint policies, the job %d",
                       cJSON_GetArraySize(pol), r->n_policies);
        goto out;
    }
    int i = 0;
    for (const cJSON *ps = pol->child; ps; ps = ps->next, i++)
        if ((ret = policy_state_from_json(r, i, ps, d)) < 0)
            goto out;
    ret = runner_cb_state_restore(&r->cbs, o, d);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(o, "epoch_position");
    if (ret == 0 && pos) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(pos, "batch");
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(pos, "loss_sum");
        /* "correct": the accuracy count of state written before any metric */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(pos, "metric_sum");
        if (!c)
            c = cJSON_GetObjectItemCaseSensitive(pos, "correct");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(pos, "seen");
        if (!cJSON_IsNumber(b) || !cJSON_IsNumber(ls) || !cJSON_IsNumber(c) ||
            !cJSON_IsNumber(n) || b->valuedouble < 1 || b->valuedouble > 1e9 ||
            !(c->valuedouble >= 0 && isfinite(c->valuedouble)) || n->valuedouble > 1e15) {
            ret = diag_set(d, -EINVAL, RUNNER_RESUME_FILE,
                           "the resume file's epoch position is malformed");
            goto out;
        }
        r->in_batch = (int)b->valuedouble;
        r->in_loss_sum = ls->valuedouble;
        r->in_metric_sum = c->valuedouble;
        r->in_seen = (long)n->valuedouble;
    }
out:
    cJSON_Delete(o);
    return ret;
}

/* Continue from <job_dir>/resume.h5 when it exists: *ret_epoch = epochs done. */
int resume_state_load(struct runner *r, int *ret_epoch, struct diag *d)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->job_dir, RUNNER_RESUME_FILE);
    if (access(path, F_OK) != 0) {
        *ret_epoch = 0;
        return errno == ENOENT ? 0 : diag_set(d, -errno, RUNNER_RESUME_FILE, "%s: %s", path,
                                                 strerror(errno));
    }
    int epoch = 0;
    char *state = NULL;
    int ret = h5_load_resume(r->m, r->opt, path, &epoch, &state, d);
    if (ret < 0) {
        diag_prefix(d, RUNNER_RESUME_FILE ": ");
        return ret;
    }
    ret = state_from_json(r, state, d);
    free(state);
    if (ret < 0)
        return ret;
    *ret_epoch = epoch;
    return 0;
}
