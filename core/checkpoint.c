/* checkpoint.c - Keras ModelCheckpoint decisions, top-k retention and
 * save_last naming, and the policy state's JSON form (see checkpoint.h).
 * No I/O: the caller writes and deletes files as told. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_add.h"

#define STATE_JSON_VERSION 1

static const char *const default_log_keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};

void ckpt_policy_config_default(struct ckpt_policy_config *ret)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->monitor, sizeof(ret->monitor), "val_loss");
    ret->mode = CKPT_MODE_AUTO;
}

enum ckpt_mode ckpt_resolve_mode(const struct ckpt_policy_config *cfg)
{
    return cb_resolve_mode(CB_KIND_MODEL_CHECKPOINT, cfg->monitor, cfg->mode);
}

/* The allowed extensions, longest first so that ".weights.h5" wins over ".h5". */
static const char *const extensions[] = {".weights.h5", ".hdf5", ".keras", ".h5"};

static const char *template_extension(const char *tmpl)
{
    size_t n = strlen(tmpl);
    for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
        size_t m = strlen(extensions[i]);
        if (n > m && strcmp(tmpl + n - m, extensions[i]) == 0 && tmpl[n - m - 1] != '/')
            return extensions[i];
    }
    return NULL;
}

/* Whether the monitored value decides anything (else it is only reported). */
static bool monitor_matters(const struct ckpt_policy_config *cfg)
{
    return cfg->save_best_only || cfg->save_top_k > 0;
}

static bool key_listed(const char *key, const char *const *keys, int n)
{
    const char *want = logs_canonical_key(key);
    for (int i = 0; i < n; i++)
        if (strcmp(logs_canonical_key(keys[i]), want) == 0)
            return true;
    return false;
}

int ckpt_policy_validate(const struct ckpt_policy_config *cfg, const char *const *log_keys,
                         int n_log_keys, struct diag *d)
{
    if (!memchr(cfg->monitor, '\0', sizeof(cfg->monitor)) || cfg->monitor[0] == '\0')
        return diag_set(d, -EINVAL, "/monitor", "monitor must be a non-empty log key");
    if (ckpt_resolve_mode(cfg) == CKPT_MODE_AUTO)
        return diag_set(d, -EINVAL, "/mode",
                        "cannot infer the mode for monitor '%s' (auto knows names ending in loss, mse, "
                        "mae -> min and accuracy, acc, auc, precision, recall -> max): set mode to "
                        "\"min\" or \"max\"",
                        cfg->monitor);
    if (cfg->save_freq < 0)
        return diag_set(d, -EINVAL, "/save_freq", "save_freq must be \"epoch\" or a positive integer");
    if (cfg->save_top_k < 0 || cfg->save_top_k > CKPT_TOP_K_MAX)
        return diag_set(d, -EINVAL, "/save_top_k", "save_top_k must be null or between 1 and %d",
                        CKPT_TOP_K_MAX);
    if (cfg->has_initial_value_threshold && !isfinite(cfg->initial_value_threshold))
        return diag_set(d, -EINVAL, "/initial_value_threshold",
                        "initial_value_threshold must be a finite number");

    /* The keys of the logs this policy sees: batch logs have no val_ keys. */
    bool keys_known = n_log_keys > 0;
    if (!keys_known) {
        log_keys = default_log_keys;
        n_log_keys = (int)(sizeof(default_log_keys) / sizeof(default_log_keys[0]));
    }
    const char *keys[LOGS_MAX];
    int n_keys = 0;
    for (int i = 0; i < n_log_keys && n_keys < LOGS_MAX; i++)
        if (cfg->save_freq == 0 || strncmp(log_keys[i], "val_", 4) != 0)
            keys[n_keys++] = log_keys[i];

    if (monitor_matters(cfg)) {
        if (cfg->save_freq > 0 && strncmp(cfg->monitor, "val_", 4) == 0)
            return diag_set(d, -EINVAL, "/monitor",
                            "monitor '%s' is a validation key, but batch logs (save_freq %d) have "
                            "no val_ keys: monitor a training key or save at each \"epoch\"",
                            cfg->monitor, cfg->save_freq);
        if (keys_known && !key_listed(cfg->monitor, keys, n_keys)) {
            char avail[256] = "";
            size_t len = 0;
            for (int i = 0; i < n_keys && len < sizeof(avail); i++)
                len += (size_t)snprintf(avail + len, sizeof(avail) - len, "%s%s", i ? ", " : "",
                                        keys[i]);
            return diag_set(d, -EINVAL, "/monitor", "monitor '%s' is not in this job's logs (%s)",
                            cfg->monitor, avail);
        }
    }

    if (!memchr(cfg->filepath, '\0', sizeof(cfg->filepath)))
        return diag_set(d, -EINVAL, "/filepath", "filepath too long");
    int r = template_validate(cfg->filepath, keys, n_keys, cfg->save_freq > 0, d);
    if (r < 0) {
        diag_prefix(d, "/filepath");
        return r;
    }
    const char *ext = template_extension(cfg->filepath);
    if (!ext)
        return diag_set(d, -EINVAL, "/filepath",
                        "filepath must end in .h5, .hdf5, .keras or .weights.h5");
    if (strcmp(ext, ".weights.h5") == 0 && !cfg->save_weights_only)
        return diag_set(d, -EINVAL, "/filepath",
                        "a .weights.h5 filepath holds weights only: set save_weights_only to true");
    if (strcmp(ext, ".keras") == 0 && cfg->save_weights_only)
        return diag_set(d, -EINVAL, "/filepath",
                        "a .keras filepath holds a full model: use .weights.h5 or .h5 with "
                        "save_weights_only");
    if (cfg->save_last) {
        char last[32];
        snprintf(last, sizeof(last), "last%s", ext);
        if (strcmp(cfg->filepath, last) == 0)
            return diag_set(d, -EINVAL, "/filepath", "filepath '%s' is the save_last file name", last);
    }
    return 0;
}

static enum ckpt_mode resolved_mode(const struct ckpt_policy_config *cfg)
{
    return ckpt_resolve_mode(cfg) == CKPT_MODE_MAX ? CKPT_MODE_MAX : CKPT_MODE_MIN;
}

void ckpt_state_init(struct ckpt_state *state, const struct ckpt_policy_config *cfg)
{
    memset(state, 0, sizeof(*state));
    if (cfg->has_initial_value_threshold)
        state->best = cfg->initial_value_threshold;
    else
        state->best = resolved_mode(cfg) == CKPT_MODE_MIN ? INFINITY : -INFINITY;
}

const char *ckpt_decision_kind_name(enum ckpt_decision_kind kind)
{
    switch (kind) {
    case CKPT_DECISION_IMPROVED: return "improved";
    case CKPT_DECISION_NOT_IMPROVED: return "not_improved";
    case CKPT_DECISION_SAVED: return "saved";
    case CKPT_DECISION_SKIPPED: return "skipped";
    default: return "none";
    }
}

/* Strictly better, as Keras's np.less / np.greater. */
static bool is_better(enum ckpt_mode mode, double value, double best)
{
    return mode == CKPT_MODE_MAX ? value > best : value < best;
}

static void decision_reset(struct ckpt_decision *out, const struct ckpt_policy_config *cfg,
                           const struct ckpt_state *state, int epoch, int batch)
{
    memset(out, 0, sizeof(*out));
    out->kind = CKPT_DECISION_NONE;
    out->epoch = epoch;
    out->batch = batch;
    snprintf(out->monitor, sizeof(out->monitor), "%s", cfg->monitor);
    out->previous_best = state->best;
}

static int render_file(const struct ckpt_policy_config *cfg, int epoch, int batch,
                       const struct logs *logs, struct ckpt_decision *out, struct diag *d)
{
    int r = template_render(out->file, sizeof(out->file), cfg->filepath, epoch, batch, logs, d);
    if (r < 0) {
        diag_prefix(d, "/filepath");
        out->kind = CKPT_DECISION_NONE;
        out->should_write = false;
        out->file[0] = out->message[0] = '\0';
    }
    return r;
}

/* The decision of Keras's _save_model (tf.keras >= 2.8 messages), with
 * non-finite values never counting as an improvement. */
static int decide(const struct ckpt_policy_config *cfg, const struct ckpt_state *state, int epoch,
                  int batch, const struct logs *logs, struct ckpt_decision *out, struct diag *d)
{
    double v = NAN;
    out->has_value = logs && logs_get(logs, cfg->monitor, &v);
    out->value = out->has_value ? v : NAN;

    if (!cfg->save_best_only) {
        int r = render_file(cfg, epoch, batch, logs, out, d);
        if (r < 0)
            return r;
        out->kind = CKPT_DECISION_SAVED;
        out->should_write = true;
        snprintf(out->message, sizeof(out->message), "Epoch %d: saving model to %s", epoch, out->file);
        return 0;
    }
    if (!out->has_value) {
        out->kind = CKPT_DECISION_SKIPPED;
        snprintf(out->message, sizeof(out->message),
                 "Can save best model only with %s available, skipping.", cfg->monitor);
        return 0;
    }
    if (!isfinite(v)) {
        out->kind = CKPT_DECISION_SKIPPED;
        snprintf(out->message, sizeof(out->message),
                 "Epoch %d: %s is %s, skipping: a non-finite value is never the best", epoch,
                 cfg->monitor, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return 0;
    }
    if (!is_better(resolved_mode(cfg), v, state->best)) {
        out->kind = CKPT_DECISION_NOT_IMPROVED;
        snprintf(out->message, sizeof(out->message), "Epoch %d: %s did not improve from %.5f", epoch,
                 cfg->monitor, state->best);
        return 0;
    }
    int r = render_file(cfg, epoch, batch, logs, out, d);
    if (r < 0)
        return r;
    out->kind = CKPT_DECISION_IMPROVED;
    out->should_write = true;
    snprintf(out->message, sizeof(out->message),
             "Epoch %d: %s improved from %.5f to %.5f, saving model to %s", epoch, cfg->monitor,
             state->best, v, out->file);
    return 0;
}

int ckpt_on_epoch_end(const struct ckpt_policy_config *cfg, const struct ckpt_state *state,
                      int epoch, const struct logs *logs, struct ckpt_decision *out,
                      struct diag *d)
{
    decision_reset(out, cfg, state, epoch, 0);
    if (cfg->save_freq > 0)
        return 0;
    return decide(cfg, state, epoch, 0, logs, out, d);
}

int ckpt_on_batch_end(const struct ckpt_policy_config *cfg, struct ckpt_state *state, int epoch,
                      int batch, const struct logs *logs, struct ckpt_decision *out,
                      struct diag *d)
{
    decision_reset(out, cfg, state, epoch, batch);
    if (cfg->save_freq <= 0)
        return 0;
    /* Keras's _should_save_on_batch with 0-based batch indices. */
    int b = batch - 1;
    state->batches_since_last_save += b <= state->last_batch_seen ? b + 1 : b - state->last_batch_seen;
    state->last_batch_seen = b;
    if (state->batches_since_last_save < cfg->save_freq)
        return 0;
    state->batches_since_last_save = 0;
    return decide(cfg, state, epoch, batch, logs, out, d);
}

/* Rank of a kept file: finite values by the mode, then absent/non-finite;
 * ties to the older file.  Negative when a ranks before b. */
static int kept_compare(enum ckpt_mode mode, const struct ckpt_kept_file *a,
                        const struct ckpt_kept_file *b)
{
    bool fa = isfinite(a->value), fb = isfinite(b->value);
    if (fa != fb)
        return fa ? -1 : 1;
    if (fa && a->value != b->value)
        return is_better(mode, a->value, b->value) ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

static void topk_commit(const struct ckpt_policy_config *cfg, struct ckpt_state *state,
                        const struct ckpt_decision *dec, struct ckpt_commit_result *out)
{
    enum ckpt_mode mode = resolved_mode(cfg);
    int n = 0;

    /* A name written again replaces its entry: the old file is gone already. */
    for (int i = 0; i < state->n_kept; i++)
        if (strcmp(state->kept[i].file, dec->file) != 0)
            state->kept[n++] = state->kept[i];
    /* Room for the new entry: a restored table may be larger than this k. */
    while (n > CKPT_TOP_K_MAX) {
        int worst = 0;
        for (int i = 1; i < n; i++)
            if (kept_compare(mode, &state->kept[i], &state->kept[worst]) > 0)
                worst = i;
        snprintf(out->delete_files[out->n_delete++], TEMPLATE_MAX_PATH, "%s", state->kept[worst].file);
        memmove(&state->kept[worst], &state->kept[worst + 1], (size_t)(n - worst - 1) * sizeof(state->kept[0]));
        n--;
    }
    struct ckpt_kept_file *nk = &state->kept[n++];
    snprintf(nk->file, sizeof(nk->file), "%s", dec->file);
    nk->value = dec->has_value ? dec->value : NAN;
    nk->epoch = dec->epoch;
    nk->batch = dec->batch;
    nk->seq = state->saves;

    /* Keep the k best and the file just written; drop the rest. */
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int better = 0;
        for (int j = 0; j < n; j++)
            if (j != i && kept_compare(mode, &state->kept[j], &state->kept[i]) < 0)
                better++;
        bool keep = better < cfg->save_top_k || i == n - 1;
        if (keep)
            state->kept[kept++] = state->kept[i];
        else if (out->n_delete <= CKPT_TOP_K_MAX)
            snprintf(out->delete_files[out->n_delete++], TEMPLATE_MAX_PATH, "%s", state->kept[i].file);
    }
    state->n_kept = kept;
}

int ckpt_commit(const struct ckpt_policy_config *cfg, struct ckpt_state *state,
                const struct ckpt_decision *decision, struct ckpt_commit_result *out)
{
    if (!decision->should_write || decision->file[0] == '\0')
        return -EINVAL;
    memset(out, 0, sizeof(*out));

    state->saves++;
    snprintf(state->last_saved, sizeof(state->last_saved), "%s", decision->file);
    if (decision->has_value && isfinite(decision->value) &&
        is_better(resolved_mode(cfg), decision->value, state->best)) {
        state->best = decision->value;
        state->best_epoch = decision->epoch;
        snprintf(state->best_file, sizeof(state->best_file), "%s", decision->file);
        out->became_best = true;
    } else if (strcmp(state->best_file, decision->file) == 0) {
        /* The best value's file was overwritten by a worse one (fixed filepath
         * with save_best_only false): no file holds best any more. */
        state->best_file[0] = '\0';
    }
    if (cfg->save_top_k > 0)
        topk_commit(cfg, state, decision, out);
    if (cfg->save_last) {
        const char *ext = template_extension(cfg->filepath);
        snprintf(out->last_file, sizeof(out->last_file), "last%s", ext ? ext : ".h5");
    }
    return 0;
}

/* ---- JSON ---- */

int ckpt_state_to_json(const struct ckpt_state *state, char **ret_json)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cjson_add(o, "version", cJSON_CreateNumber(STATE_JSON_VERSION)) &&
              cjson_add(o, "best", cjson_double(state->best)) &&
              cjson_add(o, "best_file", cJSON_CreateString(state->best_file)) &&
              cjson_add(o, "best_epoch", cJSON_CreateNumber(state->best_epoch)) &&
              cjson_add(o, "batches_since_last_save",
                       cJSON_CreateNumber(state->batches_since_last_save)) &&
              cjson_add(o, "last_batch_seen", cJSON_CreateNumber(state->last_batch_seen)) &&
              cjson_add(o, "saves", cJSON_CreateNumber((double)state->saves)) &&
              cjson_add(o, "last_saved", cJSON_CreateString(state->last_saved));
    cJSON *kept = ok ? cJSON_AddArrayToObject(o, "kept") : NULL;
    ok = ok && kept;
    for (int i = 0; ok && i < state->n_kept; i++) {
        const struct ckpt_kept_file *k = &state->kept[i];
        cJSON *e = cJSON_CreateObject();
        if (e && !cJSON_AddItemToArray(kept, e)) {
            cJSON_Delete(e);
            e = NULL;
        }
        ok = e && cjson_add(e, "file", cJSON_CreateString(k->file)) &&
             cjson_add(e, "value", cjson_double(k->value)) &&
             cjson_add(e, "epoch", cJSON_CreateNumber(k->epoch)) &&
             cjson_add(e, "batch", cJSON_CreateNumber(k->batch)) &&
             cjson_add(e, "seq", cJSON_CreateNumber((double)k->seq));
    }
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!txt)
        return -ENOMEM;
    *ret_json = txt;
    return 0;
}

static int get_double(const cJSON *o, const char *key, const char *field, double *ret,
                      struct diag *d)
{
    if (!cjson_get_double(o, key, ret))
        return diag_set(d, -EINVAL, field, "expected a number, \"inf\", \"-inf\" or \"nan\"");
    return 0;
}

static int get_long(const cJSON *o, const char *key, const char *field, long lo, long hi,
                    long *ret, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi)
        return diag_set(d, -EINVAL, field, "expected an integer between %ld and %ld", lo, hi);
    *ret = (long)v->valuedouble;
    return 0;
}

/* "" or a relative path whose components are non-empty and do not start with '.'. */
static bool path_is_clean(const char *p)
{
    if (!*p)
        return true;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '.' || *c == '\0')
            return false;
        c = strchr(c, '/');
        if (!c)
            return true;
    }
}

static int get_path(const cJSON *o, const char *key, const char *field, char *ret, size_t sz,
                    struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= sz)
        return diag_set(d, -EINVAL, field, "expected a file name string shorter than %zu bytes", sz);
    if (!path_is_clean(v->valuestring))
        return diag_set(d, -EINVAL, field, "file name '%s' is not relative to the checkpoint folder",
                        v->valuestring);
    memcpy(ret, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int state_from_tree(const struct ckpt_policy_config *cfg, const cJSON *o,
                           struct ckpt_state *s, struct diag *d)
{
    long n = 0;
    int r;
    if (!cJSON_IsObject(o))
        return diag_set(d, -EINVAL, "", "policy state must be a JSON object");
    if ((r = get_long(o, "version", "/version", STATE_JSON_VERSION, STATE_JSON_VERSION, &n, d)) < 0)
        return r;
    if ((r = get_double(o, "best", "/best", &s->best, d)) < 0)
        return r;
    if (isnan(s->best))
        return diag_set(d, -EINVAL, "/best", "best cannot be nan");
    if ((r = get_path(o, "best_file", "/best_file", s->best_file, sizeof(s->best_file), d)) < 0)
        return r;
    if ((r = get_long(o, "best_epoch", "/best_epoch", 0, 1000000000, &n, d)) < 0)
        return r;
    s->best_epoch = (int)n;
    if ((r = get_long(o, "batches_since_last_save", "/batches_since_last_save", 0,
                      cfg->save_freq > 0 ? cfg->save_freq - 1 : 0, &n, d)) < 0)
        return r;
    s->batches_since_last_save = (int)n;
    if ((r = get_long(o, "last_batch_seen", "/last_batch_seen", 0, 1000000000, &n, d)) < 0)
        return r;
    s->last_batch_seen = (int)n;
    if ((r = get_long(o, "saves", "/saves", 0, 2000000000, &s->saves, d)) < 0)
        return r;
    if ((r = get_path(o, "last_saved", "/last_saved", s->last_saved, sizeof(s->last_saved), d)) < 0)
        return r;

    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(o, "kept");
    if (!cJSON_IsArray(kept))
        return diag_set(d, -EINVAL, "/kept", "expected an array");
    if (cJSON_GetArraySize(kept) > CKPT_TOP_K_MAX + 1)
        return diag_set(d, -EINVAL, "/kept", "more than %d entries", CKPT_TOP_K_MAX + 1);
    const cJSON *e;
    cJSON_ArrayForEach(e, kept) {
        char field[64];
        struct ckpt_kept_file *k = &s->kept[s->n_kept];
        int base = snprintf(field, sizeof(field), "/kept/%d", s->n_kept);
        if (!cJSON_IsObject(e))
            return diag_set(d, -EINVAL, field, "expected an object");
        snprintf(field + base, sizeof(field) - (size_t)base, "/file");
        if ((r = get_path(e, "file", field, k->file, sizeof(k->file), d)) < 0)
            return r;
        for (int j = 0; j < s->n_kept; j++)
            if (strcmp(s->kept[j].file, k->file) == 0)
                return diag_set(d, -EINVAL, field, "file '%s' is listed twice", k->file);
        snprintf(field + base, sizeof(field) - (size_t)base, "/value");
        if ((r = get_double(e, "value", field, &k->value, d)) < 0)
            return r;
        snprintf(field + base, sizeof(field) - (size_t)base, "/epoch");
        if ((r = get_long(e, "epoch", field, 0, 1000000000, &n, d)) < 0)
            return r;
        k->epoch = (int)n;
        snprintf(field + base, sizeof(field) - (size_t)base, "/batch");
        if ((r = get_long(e, "batch", field, 0, 1000000000, &n, d)) < 0)
            return r;
        k->batch = (int)n;
        snprintf(field + base, sizeof(field) - (size_t)base, "/seq");
        if ((r = get_long(e, "seq", field, 1, s->saves, &k->seq, d)) < 0)
            return r;
        s->n_kept++;
    }
    return 0;
}

int ckpt_state_from_json(const struct ckpt_policy_config *cfg, const char *json,
                         struct ckpt_state *ret, struct diag *d)
{
    if (!json)
        return diag_set(d, -EINVAL, "", "no policy state");
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(json, &end, true);
    if (!o)
        return diag_set(d, -EINVAL, "", "policy state is not valid JSON (or has trailing data)");
    struct ckpt_state *s = calloc(1, sizeof(*s));
    if (!s) {
        cJSON_Delete(o);
        return -ENOMEM;
    }
    int r = state_from_tree(cfg, o, s, d);
    cJSON_Delete(o);
    if (r == 0)
        memcpy(ret, s, sizeof(*s));
    free(s);
    return r;
}
