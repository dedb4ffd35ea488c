/* job_record.c - a job's state derived from its events, and its JSON/CSV views.
 * See job_record.h; no I/O here except the existence check of listed files. */
#include "job_record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson_add.h"
#include "pyfmt.h"

static const char *const state_names[JOB_STATE_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled",
};

const char *job_state_name(enum job_state s)
{
    return (unsigned)s < JOB_STATE_COUNT ? state_names[s] : "unknown";
}

int job_state_parse(const char *name, enum job_state *ret)
{
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *ret = (enum job_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool job_state_terminal(enum job_state s)
{
    return s == JOB_STATE_SUCCEEDED || s == JOB_STATE_FAILED || s == JOB_STATE_CANCELLED;
}

struct job *job_new(const char *id, const char *dir)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->dir, sizeof(j->dir), "%s", dir);
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->file_mu, NULL);
    j->events_fd = -1;
    atomic_init(&j->stop, 0);
    return j;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->n_events; i++)
        free(j->events[i].json);
    for (int i = 0; i < j->n_recent; i++)
        free(j->recent[i].json);
    free(j->events);
    free(j->history);
    free(j->ckpts);
    free(j->spec_json);
    free(j->cache);
    job_spec_free(&j->spec);
    if (j->events_fd >= 0)
        close(j->events_fd);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->file_mu);
    free(j);
}

double job_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void job_format_time(double t, char out[32])
{
    time_t s = (time_t)floor(t);
    int ms = (int)((t - (double)s) * 1000.0);
    if (ms > 999)
        ms = 999;
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[96];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    memcpy(out, buf, 31);
    out[31] = '\0';
}

/* Inverse of job_format_time (0 when it does not parse). */
static double parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0;
}

char *job_event_render(uint64_t seq, double time, const char *type, const char *data_json,
                       size_t *ret_len)
{
    const char *p = data_json ? data_json : "{}";
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n < 2 || p[0] != '{' || p[n - 1] != '}')
        return NULL;
    const char *inner = p + 1;
    size_t inner_len = n - 1; /* includes the closing brace */
    while (inner_len > 1 && (*inner == ' ' || *inner == '\n' || *inner == '\t')) {
        inner++;
        inner_len--;
    }
    bool empty = inner_len == 1;
    char ts[32];
    job_format_time(time, ts);
    char head[160];
    int h = snprintf(head, sizeof(head), "{\"seq\":%" PRIu64 ",\"time\":\"%s\",\"type\":\"%s\"%s",
                     seq, ts, type, empty ? "}" : ",");
    if (h < 0 || (size_t)h >= sizeof(head))
        return NULL;
    size_t len = (size_t)h + (empty ? 0 : inner_len);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    memcpy(out, head, (size_t)h);
    if (!empty)
        memcpy(out + h, inner, inner_len);
    out[len] = '\0';
    /* Stored events are one line each. */
    for (size_t i = 0; i < len; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
    *ret_len = len;
    return out;
}

/* --- derived state -------------------------------------------------------- */

static double num(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void update_eta(struct job *j)
{
    double ips = j->progress.images_per_s;
    int bs = j->spec.batch_size > 0 ? j->spec.batch_size : 32;
    if (ips <= 0 || j->progress.batches <= 0) {
        j->progress.eta_s = 0;
        return;
    }
    double left_batches = (double)(j->progress.batches - j->progress.batch) +
                          (double)(j->progress.epochs - j->progress.epoch) * j->progress.batches;
    if (left_batches < 0)
        left_batches = 0;
    j->progress.eta_s = left_batches * bs / ips;
}

static void apply_epoch_end(struct job *j, const cJSON *obj)
{
    int epoch = (int)num(obj, "epoch", 0);
    if (epoch <= 0)
        return;
    /* A redone epoch (resume after a crash) replaces the old record. */
    while (j->n_history > 0 && j->history[j->n_history - 1].epoch >= epoch)
        j->n_history--;
    if (j->n_history == j->cap_history) {
        int cap = j->cap_history ? 2 * j->cap_history : 16;
        struct job_epoch *h = realloc(j->history, (size_t)cap * sizeof(*h));
        if (!h)
            return;
        j->history = h;
        j->cap_history = cap;
    }
    struct job_epoch *e = &j->history[j->n_history++];
    memset(e, 0, sizeof(*e));
    e->epoch = epoch;
    e->lr = num(obj, "lr", NAN);
    e->seconds = num(obj, "seconds", NAN);
    const cJSON *logs = cJSON_GetObjectItemCaseSensitive(obj, "logs");
    const cJSON *it;
    cJSON_ArrayForEach(it, logs)
    {
        if (it->string && cJSON_IsNumber(it))
            logs_set(&e->logs, it->string, it->valuedouble);
        else if (it->string && cJSON_IsString(it)) /* "nan", "inf" */
            logs_set(&e->logs, it->string, strtod(it->valuestring, NULL));
    }
    j->progress.epoch = epoch;
    if (j->progress.batches > 0)
        j->progress.batch = j->progress.batches;
    update_eta(j);
}

static void ckpt_remove(struct job *j, const char *name)
{
    for (int i = 0; i < j->n_ckpts; i++) {
        if (strcmp(j->ckpts[i].name, name) == 0) {
            memmove(&j->ckpts[i], &j->ckpts[i + 1],
                    (size_t)(j->n_ckpts - i - 1) * sizeof(j->ckpts[0]));
            j->n_ckpts--;
            return;
        }
    }
}

/* Add or replace the table entry for name. */
static struct job_ckpt *ckpt_upsert(struct job *j, const char *name, int policy, int epoch,
                                    uint64_t bytes, const char *sha, uint64_t seq)
{
    if (strlen(name) >= TEMPLATE_MAX_PATH)
        return NULL;
    ckpt_remove(j, name);
    if (j->n_ckpts == j->cap_ckpts) {
        int cap = j->cap_ckpts ? 2 * j->cap_ckpts : 16;
        struct job_ckpt *c = realloc(j->ckpts, (size_t)cap * sizeof(*c));
        if (!c)
            return NULL;
        j->ckpts = c;
        j->cap_ckpts = cap;
    }
    struct job_ckpt *c = &j->ckpts[j->n_ckpts++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->policy = policy;
    c->epoch = epoch;
    c->bytes = bytes;
    if (sha && strlen(sha) == 2 * FSUTIL_SHA256_BYTES)
        memcpy(c->sha256, sha, FSUTIL_SHA256_HEX_SIZE);
    c->seq = seq;
    /* The file is in place when its event arrives: remember which file it
     * is, so a download can tell whether it opened the same one. */
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/checkpoints/%s", j->dir, c->name);
    if (n > 0 && (size_t)n < sizeof(path) &&
        fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size == c->bytes) {
        c->ino = (uint64_t)st.st_ino;
        c->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    return c;
}

static void apply_checkpoint(struct job *j, const cJSON *obj, uint64_t seq)
{
    int policy = (int)num(obj, "policy", 0);
    const char *decision = str(obj, "decision");
    const char *file = str(obj, "file");
    /* Files the policy removed (top-k retention). */
    static const char *const removed_keys[] = {"removed", "deleted"};
    for (size_t k = 0; k < 2; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, removed_keys[k]);
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            if (cJSON_IsString(it))
                ckpt_remove(j, it->valuestring);
        }
    }
    if (!decision || !file || !file[0] || policy < 0 || policy >= JOB_SPEC_MAX_CHECKPOINTS)
        return;
    if (strcmp(decision, "improved") != 0 && strcmp(decision, "saved") != 0)
        return;
    const char *sha = str(obj, "sha256");
    int epoch = (int)num(obj, "epoch", 0);
    uint64_t bytes = (uint64_t)num(obj, "bytes", 0);
    struct job_ckpt *c = ckpt_upsert(j, file, policy, epoch, bytes, sha, seq);
    if (!c)
        return;
    /* save_last: a copy of the same bytes under another name */
    const char *last = str(obj, "last");
    if (last && last[0])
        ckpt_upsert(j, last, policy, epoch, bytes, sha, seq);
    if (strcmp(decision, "improved") == 0) {
        struct job_best *b = &j->best[policy];
        b->has = true;
        b->value = num(obj, "value", NAN);
        b->epoch = epoch;
        snprintf(b->file, sizeof(b->file), "%s", file);
    }
}

static void apply_mpi(struct job *j, const cJSON *obj)
{
    int ranks = (int)num(obj, "ranks", 0);
    if (ranks > 1) {
        j->mpi.ranks = ranks;
        j->mpi.collective_seconds_per_step = num(obj, "collective_seconds_per_step", 0);
    }
}

void job_apply_event(struct job *j, const char *type, const cJSON *obj)
{
    j->version++;
    double t = parse_time(str(obj, "time"));
    uint64_t seq = (uint64_t)num(obj, "seq", 0);
    if (strcmp(type, "state") == 0) {
        enum job_state s;
        const char *name = str(obj, "state");
        if (!name || job_state_parse(name, &s) < 0)
            return;
        j->state = s;
        if (s == JOB_STATE_RUNNING && j->started == 0)
            j->started = t;
        if (job_state_terminal(s)) {
            j->finished = t;
            const char *err = str(obj, "error");
            if (err)
                snprintf(j->error, sizeof(j->error), "%s", err);
        }
    } else if (strcmp(type, "progress") == 0) {
        j->progress.epoch = (int)num(obj, "epoch", j->progress.epoch);
        j->progress.epochs = (int)num(obj, "epochs", j->progress.epochs);
        j->progress.batch = (int)num(obj, "batch", j->progress.batch);
        j->progress.batches = (int)num(obj, "batches", j->progress.batches);
        j->progress.images_per_s = num(obj, "images_per_s", j->progress.images_per_s);
        update_eta(j);
        apply_mpi(j, obj);
    } else if (strcmp(type, "epoch_end") == 0) {
        apply_epoch_end(j, obj);
        apply_mpi(j, obj);
    } else if (strcmp(type, "checkpoint") == 0) {
        apply_checkpoint(j, obj, seq);
    }
}

int job_keep_event(struct job *j, uint64_t seq, const char *type, char *json, size_t len)
{
    struct job_event e = {.seq = seq, .json = json, .len = len};
    snprintf(e.type, sizeof(e.type), "%s", type);
    if (seq > j->last_seq)
        j->last_seq = seq;
    if (strcmp(type, "progress") == 0) {
        int slot;
        if (j->n_recent < JOB_RECENT_PROGRESS) {
            slot = j->n_recent++;
        } else {
            slot = j->recent_next;
            free(j->recent[slot].json);
        }
        j->recent[slot] = e;
        j->recent_next = (slot + 1) % JOB_RECENT_PROGRESS;
        return 0;
    }
    if (j->n_events == j->cap_events) {
        int cap = j->cap_events ? 2 * j->cap_events : 64;
        struct job_event *ev = realloc(j->events, (size_t)cap * sizeof(*ev));
        if (!ev) {
            free(json);
            return -ENOMEM;
        }
        j->events = ev;
        j->cap_events = cap;
    }
    j->events[j->n_events++] = e;
    return 0;
}

int job_copy_events(const struct job *j, uint64_t after, int max, struct api_events *ret)
{
    struct api_events out = {.last_seq = j->last_seq, .final = job_state_terminal(j->state)};
    if (max > 0) {
        out.items = calloc((size_t)max, sizeof(*out.items));
        if (!out.items)
            return -ENOMEM;
        /* first persisted event with seq > after */
        int lo = 0, hi = j->n_events;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (j->events[mid].seq <= after)
                lo = mid + 1;
            else
                hi = mid;
        }
        int pi = lo;
        /* the progress ring from oldest to newest */
        int start = j->n_recent < JOB_RECENT_PROGRESS ? 0 : j->recent_next;
        int ri = 0;
        while (ri < j->n_recent && j->recent[(start + ri) % JOB_RECENT_PROGRESS].seq <= after)
            ri++;
        while (out.n < max) {
            const struct job_event *pe = pi < j->n_events ? &j->events[pi] : NULL;
            const struct job_event *re =
                ri < j->n_recent ? &j->recent[(start + ri) % JOB_RECENT_PROGRESS] : NULL;
            const struct job_event *e;
            if (pe && (!re || pe->seq < re->seq)) {
                e = pe;
                pi++;
            } else if (re) {
                e = re;
                ri++;
            } else {
                break;
            }
            struct api_event *o = &out.items[out.n];
            o->json = malloc(e->len + 1);
            if (!o->json) {
                api_events_free(&out);
                return -ENOMEM;
            }
            memcpy(o->json, e->json, e->len + 1);
            o->len = e->len;
            o->seq = e->seq;
            snprintf(o->type, sizeof(o->type), "%s", e->type);
            out.n++;
        }
    }
    *ret = out;
    return 0;
}

/* --- JSON views ------------------------------------------------------------ */

static bool add_time(cJSON *o, const char *key, double t)
{
    if (t > 0) {
        char ts[32];
        job_format_time(t, ts);
        return cJSON_AddStringToObject(o, key, ts) != NULL;
    }
    return cJSON_AddNullToObject(o, key) != NULL;
}

/* "created", "started", "finished" and "error" (null until set). */
static bool add_lifecycle(cJSON *o, const struct job *j)
{
    bool ok = add_time(o, "created", j->created);
    ok &= add_time(o, "started", j->started);
    ok &= add_time(o, "finished", j->finished);
    if (j->error[0])
        ok &= cJSON_AddStringToObject(o, "error", j->error) != NULL;
    else
        ok &= cJSON_AddNullToObject(o, "error") != NULL;
    return ok;
}

static bool add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        return cJSON_AddNumberToObject(o, key, v) != NULL;
    return cJSON_AddNullToObject(o, key) != NULL;
}

static cJSON *progress_json(const struct job *j)
{
    bool ok = true;
    cJSON *p = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(p, "epoch", j->progress.epoch) != NULL;
    ok &= cJSON_AddNumberToObject(p, "epochs", j->progress.epochs ? j->progress.epochs : j->spec.epochs) != NULL;
    ok &= cJSON_AddNumberToObject(p, "batch", j->progress.batch) != NULL;
    ok &= cJSON_AddNumberToObject(p, "batches", j->progress.batches) != NULL;
    ok &= add_number(p, "images_per_s", j->progress.images_per_s);
    if (j->state == JOB_STATE_RUNNING && j->progress.images_per_s > 0)
        ok &= add_number(p, "eta_s", j->progress.eta_s);
    else
        ok &= cJSON_AddNullToObject(p, "eta_s") != NULL;
    return cjson_checked(p, ok);
}

static cJSON *epoch_json(const struct job_epoch *e)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "epoch", e->epoch) != NULL;
    for (int k = 0; k < e->logs.n; k++)
        ok &= add_number(o, e->logs.items[k].key, e->logs.items[k].value);
    ok &= add_number(o, "lr", e->lr); /* the wall time stays in the epoch_end event */
    return cjson_checked(o, ok);
}

static cJSON *history_array(const struct job *j)
{
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < j->n_history; i++)
        ok &= cjson_append(a, epoch_json(&j->history[i]));
    return cjson_checked(a, ok);
}

/* The best of policy p: from its "improved" events, else (policies that
 * save every epoch) the best monitored value in the history. */
static struct job_best effective_best(const struct job *j, int p)
{
    struct job_best b = j->best[p];
    if (b.has)
        return b;
    const struct ckpt_policy_config *cfg = &j->spec.checkpoints[p];
    enum ckpt_mode mode = ckpt_resolve_mode(cfg);
    for (int i = 0; i < j->n_history; i++) {
        double v;
        if (!logs_get(&j->history[i].logs, cfg->monitor, &v) || !isfinite(v))
            continue;
        if (!b.has || (mode == CKPT_MODE_MAX ? v > b.value : v < b.value)) {
            b.has = true;
            b.value = v;
            b.epoch = j->history[i].epoch;
        }
    }
    b.file[0] = '\0';
    if (b.has) {
        for (int i = j->n_ckpts - 1; i >= 0; i--) {
            if (j->ckpts[i].policy == p && j->ckpts[i].epoch == b.epoch) {
                snprintf(b.file, sizeof(b.file), "%s", j->ckpts[i].name);
                break;
            }
        }
    }
    return b;
}

static cJSON *best_array(const struct job *j)
{
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    for (int p = 0; p < j->spec.n_checkpoints; p++) {
        const struct ckpt_policy_config *cfg = &j->spec.checkpoints[p];
        struct job_best b = effective_best(j, p);
        cJSON *o = cJSON_CreateObject();
        ok &= cJSON_AddNumberToObject(o, "policy", p) != NULL;
        ok &= cJSON_AddStringToObject(o, "monitor", cfg->monitor) != NULL;
        enum ckpt_mode mode = ckpt_resolve_mode(cfg);
        ok &= cJSON_AddStringToObject(o, "mode", mode == CKPT_MODE_MAX   ? "max"
                                                 : mode == CKPT_MODE_MIN ? "min"
                                                                         : "auto") != NULL;
        if (b.has) {
            ok &= add_number(o, "value", b.value);
            ok &= cJSON_AddNumberToObject(o, "epoch", b.epoch) != NULL;
        } else {
            ok &= cJSON_AddNullToObject(o, "value") != NULL;
            ok &= cJSON_AddNullToObject(o, "epoch") != NULL;
        }
        if (b.file[0])
            ok &= cJSON_AddStringToObject(o, "file", b.file) != NULL;
        else
            ok &= cJSON_AddNullToObject(o, "file") != NULL;
        ok &= cjson_append(a, o);
    }
    return cjson_checked(a, ok);
}

static bool ckpt_exists(const struct job *j, const char *name)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/checkpoints/%s", j->dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return false;
    struct stat st;
    return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static cJSON *checkpoints_array(const struct job *j)
{
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    struct job_best best[JOB_SPEC_MAX_CHECKPOINTS];
    for (int p = 0; p < j->spec.n_checkpoints; p++)
        best[p] = effective_best(j, p);
    for (int i = 0; i < j->n_ckpts; i++) {
        const struct job_ckpt *c = &j->ckpts[i];
        if (!ckpt_exists(j, c->name))
            continue;
        cJSON *o = cJSON_CreateObject();
        ok &= cJSON_AddStringToObject(o, "name", c->name) != NULL;
        ok &= cJSON_AddNumberToObject(o, "policy", c->policy) != NULL;
        ok &= cJSON_AddNumberToObject(o, "epoch", c->epoch) != NULL;
        ok &= cJSON_AddNumberToObject(o, "bytes", (double)c->bytes) != NULL;
        ok &= cJSON_AddStringToObject(o, "sha256", c->sha256) != NULL;
        cJSON *metrics = NULL;
        for (int h = 0; h < j->n_history; h++) {
            if (j->history[h].epoch == c->epoch) {
                metrics = cJSON_CreateObject();
                for (int k = 0; k < j->history[h].logs.n; k++)
                    ok &= add_number(metrics, j->history[h].logs.items[k].key,
                                     j->history[h].logs.items[k].value);
            }
        }
        ok &= cjson_add(o, "metrics", metrics ? metrics : cJSON_CreateObject());
        bool is_best = c->policy < j->spec.n_checkpoints && best[c->policy].has &&
                       strcmp(best[c->policy].file, c->name) == 0;
        ok &= cJSON_AddBoolToObject(o, "best", is_best) != NULL;
        ok &= cjson_append(a, o);
    }
    return cjson_checked(a, ok);
}

cJSON *job_to_json(const struct job *j, bool full)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(o, "id", j->id) != NULL;
    ok &= cJSON_AddStringToObject(o, "name", j->spec.name) != NULL;
    ok &= cJSON_AddStringToObject(o, "state", job_state_name(j->state)) != NULL;
    ok &= cJSON_AddStringToObject(o, "dataset", j->spec.dataset) != NULL;
    ok &= cJSON_AddStringToObject(o, "model", j->spec.model[0] ? j->spec.model : "custom") != NULL;
    ok &= add_lifecycle(o, j);
    ok &= cjson_add(o, "progress", progress_json(j));
    if (j->mpi.ranks > 1) {
        cJSON *mpi = cJSON_AddObjectToObject(o, "mpi");
        ok &= mpi && cJSON_AddNumberToObject(mpi, "ranks", j->mpi.ranks) != NULL;
        ok &= mpi && cJSON_AddNumberToObject(mpi, "collective_seconds_per_step",
                                             j->mpi.collective_seconds_per_step) != NULL;
    }
    if (!full)
        return cjson_checked(o, ok);
    /* the normalised spec is already JSON text: splice it in unparsed */
    if (j->spec_json)
        ok &= cJSON_AddRawToObject(o, "spec", j->spec_json) != NULL;
    else
        ok &= cJSON_AddNullToObject(o, "spec") != NULL;
    ok &= cjson_add(o, "history", history_array(j));
    ok &= cjson_add(o, "best", best_array(j));
    ok &= cjson_add(o, "checkpoints", checkpoints_array(j));
    ok &= cJSON_AddNumberToObject(o, "last_event", (double)j->last_seq) != NULL;
    return cjson_checked(o, ok);
}

char *job_resource_text(struct job *j)
{
    if (!j->cache || j->cache_version != j->version) {
        cJSON *o = job_to_json(j, true);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!text)
            return NULL;
        free(j->cache);
        j->cache = text;
        j->cache_version = j->version;
    }
    return strdup(j->cache);
}

cJSON *job_history_json(const struct job *j)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(o, "id", j->id) != NULL;
    ok &= cjson_add(o, "history", history_array(j));
    return cjson_checked(o, ok);
}

cJSON *job_checkpoints_json(const struct job *j)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(o, "id", j->id) != NULL;
    ok &= cjson_add(o, "best", best_array(j));
    ok &= cjson_add(o, "checkpoints", checkpoints_array(j));
    return cjson_checked(o, ok);
}

cJSON *job_record_json(const struct job *j)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "version", 1) != NULL;
    ok &= cJSON_AddStringToObject(o, "id", j->id) != NULL;
    ok &= cJSON_AddStringToObject(o, "name", j->spec.name) != NULL;
    cJSON *spec = j->spec_json ? cJSON_Parse(j->spec_json) : NULL;
    ok &= cjson_add(o, "spec", spec ? spec : cJSON_CreateNull());
    ok &= cJSON_AddStringToObject(o, "state", job_state_name(j->state)) != NULL;
    ok &= add_lifecycle(o, j);
    return cjson_checked(o, ok);
}

/* --- CSV -------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *job_history_csv(const struct job *j)
{
    /* CSVLogger takes the keys of the first epoch's logs, sorted. */
    const char *keys[LOGS_MAX];
    int nk = 0;
    if (j->n_history > 0) {
        for (int k = 0; k < j->history[0].logs.n; k++)
            keys[nk++] = j->history[0].logs.items[k].key;
        qsort(keys, (size_t)nk, sizeof(keys[0]), cmp_str);
    }
    size_t cap = 256 + (size_t)j->n_history * (size_t)(nk + 1) * 32, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    len += (size_t)snprintf(out + len, cap - len, "epoch");
    for (int k = 0; k < nk; k++)
        len += (size_t)snprintf(out + len, cap - len, ",%s", keys[k]);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    if (j->n_history == 0) {
        /* CSVLogger writes nothing before the first epoch ends. */
        out[0] = '\0';
        return out;
    }
    for (int i = 0; i < j->n_history; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%d", j->history[i].epoch - 1);
        for (int k = 0; k < nk; k++) {
            double v;
            char num_text[PYFMT_SIZE] = "NA";
            if (logs_get(&j->history[i].logs, keys[k], &v))
                pyfmt_double(num_text, v, PYFMT_NONFINITE_PY);
            len += (size_t)snprintf(out + len, cap - len, ",%s", num_text);
        }
        len += (size_t)snprintf(out + len, cap - len, "\r\n");
    }
    return out;
}

bool job_best_file(const struct job *j, int policy, char *out, size_t outsz)
{
    if (policy < 0 || policy >= j->spec.n_checkpoints)
        return false;
    struct job_best b = effective_best(j, policy);
    if (!b.has || !b.file[0])
        return false;
    snprintf(out, outsz, "%s", b.file);
    return true;
}
