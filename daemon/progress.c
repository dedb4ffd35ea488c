/* progress.c - Keras fit() output from job events (see progress.h).
 *
 * The formats are tf.keras 2.x Progbar's: a bar of 30 cells, the count
 * right-aligned to the digits of the target, "ETA: 21s" / "1:05" /
 * "1:02:03", per-step time in s, ms or us, and " - key: %.4f" for each log
 * (the format `traind run` has always printed). */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_BAR_CELLS 30

void progress_init(struct progress *p, FILE *out, bool tty, const struct progress_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->tty = tty;
    if (cfg)
        p->cfg = *cfg;
}

void progress_config_from_spec(struct progress_config *cfg, const cJSON *spec)
{
    memset(cfg, 0, sizeof(*cfg));
    const cJSON *epochs = cJSON_GetObjectItemCaseSensitive(spec, "epochs");
    if (cJSON_IsNumber(epochs))
        cfg->epochs = epochs->valueint;
    const cJSON *pol;
    cJSON_ArrayForEach(pol, cJSON_GetObjectItemCaseSensitive(spec, "checkpoints"))
    {
        if (cfg->n_policies == PROGRESS_MAX_POLICIES)
            break;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pol, "verbose");
        cfg->verbose[cfg->n_policies++] = cJSON_IsNumber(v) ? v->valueint : 1;
    }
}

/* A number, or the strings "nan", "inf", "-inf" that events use for them. */
static bool json_num(const cJSON *o, const char *key, double *ret)
{
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(o, key) : o;
    if (cJSON_IsNumber(v)) {
        *ret = v->valuedouble;
        return true;
    }
    if (cJSON_IsString(v)) {
        char *end;
        double x = strtod(v->valuestring, &end);
        if (end != v->valuestring && *end == '\0') {
            *ret = x;
            return true;
        }
    }
    return false;
}

static int json_int(const cJSON *o, const char *key, int fallback)
{
    double x;
    return json_num(o, key, &x) && x >= -1e9 && x <= 1e9 ? (int)x : fallback;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Append to buf (size n, used *len) without overflowing. */
static void add(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
    if (*len >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len = *len + (size_t)k < n ? *len + (size_t)k : n - 1;
}

/* " - loss: 0.2767 - accuracy: 0.8998"; train_only skips the val_ keys. */
static void add_logs(char *buf, size_t n, size_t *len, const cJSON *logs, bool train_only)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, logs)
    {
        double x;
        if (!it->string || (train_only && strncmp(it->string, "val_", 4) == 0) ||
            !json_num(it, NULL, &x))
            continue;
        add(buf, n, len, " - %s: %.4f", it->string, x);
    }
}

static void put_line(struct progress *p, const char *line)
{
    if (p->bar_open) {
        fputc('\n', p->out); /* Keras' "\nEpoch 3: ..." ends the bar's line */
        p->bar_open = false;
    }
    fputs(line, p->out);
    fputc('\n', p->out);
    fflush(p->out);
}

static void header(struct progress *p, int epoch, int epochs)
{
    if (epochs > 0 && p->cfg.epochs <= 0)
        p->cfg.epochs = epochs;
    if (p->stopped || epoch <= 0 || epoch == p->header_epoch)
        return;
    char line[64];
    snprintf(line, sizeof(line), "Epoch %d/%d", epoch, p->cfg.epochs);
    put_line(p, line);
    p->header_epoch = epoch;
}

/* "612/938 [==================>...........]" */
static void add_bar(char *buf, size_t n, size_t *len, int cur, int target)
{
    int digits = 1;
    for (int t = target; t >= 10; t /= 10)
        digits++;
    add(buf, n, len, "%*d/%d [", digits, cur, target);
    int width = (int)(PROGRESS_BAR_CELLS * ((double)cur / target));
    if (width > PROGRESS_BAR_CELLS)
        width = PROGRESS_BAR_CELLS;
    for (int i = 0; i < width - 1; i++)
        add(buf, n, len, "=");
    if (width > 0)
        add(buf, n, len, cur < target ? ">" : "=");
    for (int i = width; i < PROGRESS_BAR_CELLS; i++)
        add(buf, n, len, ".");
    add(buf, n, len, "]");
}

/* Redraw the live line in place, blanking what is left of a longer one. */
static void draw(struct progress *p, const char *text, size_t len, bool end_line)
{
    fputc('\r', p->out);
    fputs(text, p->out);
    for (size_t i = len; p->bar_open && i < p->bar_width; i++)
        fputc(' ', p->out);
    if (end_line) {
        fputc('\n', p->out);
        p->bar_open = false;
        p->bar_width = 0;
    } else {
        p->bar_open = true;
        p->bar_width = len;
    }
    fflush(p->out);
}

static void draw_live_bar(struct progress *p, int batch, int batches, double seconds,
                          const cJSON *logs)
{
    char buf[1024];
    size_t len = 0;
    add_bar(buf, sizeof(buf), &len, batch, batches);
    double eta = batch > 0 ? seconds / batch * (batches - batch) : 0;
    if (eta < 0)
        eta = 0;
    long e = (long)eta;
    if (eta > 3600)
        add(buf, sizeof(buf), &len, " - ETA: %ld:%02ld:%02ld", e / 3600, e % 3600 / 60, e % 60);
    else if (eta > 60)
        add(buf, sizeof(buf), &len, " - ETA: %ld:%02ld", e / 60, e % 60);
    else
        add(buf, sizeof(buf), &len, " - ETA: %lds", e);
    add_logs(buf, sizeof(buf), &len, logs, true);
    draw(p, buf, len, false);
}

static void flush_pending(struct progress *p)
{
    if (!p->has_pending)
        return;
    p->has_pending = false;
    if (p->tty)
        draw(p, p->pending, strlen(p->pending), true);
    else
        put_line(p, p->pending);
}

static void on_progress(struct progress *p, const cJSON *ev)
{
    flush_pending(p);
    int epoch = json_int(ev, "epoch", 0);
    header(p, epoch, json_int(ev, "epochs", 0));
    p->batches = json_int(ev, "batches", p->batches);
    int batch = json_int(ev, "batch", 0);
    double seconds = 0;
    json_num(ev, "seconds", &seconds);
    if (p->tty && p->batches > 0 && batch > 0 && epoch == p->header_epoch)
        draw_live_bar(p, batch, p->batches, seconds,
                      cJSON_GetObjectItemCaseSensitive(ev, "logs"));
}

/* The epoch's final line, printed once its checkpoint lines are out. */
static void on_epoch_end(struct progress *p, const cJSON *ev)
{
    flush_pending(p);
    int epoch = json_int(ev, "epoch", 0);
    header(p, epoch, json_int(ev, "epochs", 0));
    p->batches = json_int(ev, "batches", p->batches);
    int batch = json_int(ev, "batch", p->batches);
    double seconds = 0;
    json_num(ev, "seconds", &seconds);
    const cJSON *logs = cJSON_GetObjectItemCaseSensitive(ev, "logs");
    size_t n = sizeof(p->pending), len = 0;
    if (p->tty && batch > 0) {
        /* the bar's last update, as Keras draws it before the checkpoint lines */
        draw_live_bar(p, batch, p->batches > 0 ? p->batches : batch, seconds, logs);
        add_bar(p->pending, n, &len, batch, p->batches > 0 ? p->batches : batch);
        add(p->pending, n, &len, " - %.0fs", seconds);
        double per_step = seconds / batch;
        if (per_step >= 1 || per_step == 0)
            add(p->pending, n, &len, " %.0fs/step", per_step);
        else if (per_step >= 1e-3)
            add(p->pending, n, &len, " %.0fms/step", per_step * 1e3);
        else
            add(p->pending, n, &len, " %.0fus/step", per_step * 1e6);
    } else {
        add(p->pending, n, &len, "%d/%d - %.0fs", batch, p->batches, seconds);
    }
    add_logs(p->pending, n, &len, logs, false);
    p->has_pending = true;
}

static int policy_verbose(const struct progress *p, const cJSON *ev)
{
    int i = json_int(ev, "policy", -1);
    return i >= 0 && i < p->cfg.n_policies ? p->cfg.verbose[i] : 1;
}

/* A checkpoint of a batch (save_freq) belongs to the running epoch; one of
 * an epoch end comes before that epoch's final line. */
static void checkpoint_begin(struct progress *p, const cJSON *ev)
{
    if (cJSON_GetObjectItemCaseSensitive(ev, "batch")) {
        flush_pending(p);
        header(p, json_int(ev, "epoch", 0), 0);
    }
}

static void on_checkpoint(struct progress *p, const cJSON *ev)
{
    checkpoint_begin(p, ev);
    const char *msg = json_str(ev, "message");
    if (msg && msg[0] && policy_verbose(p, ev) >= 1)
        put_line(p, msg);
}

static void on_checkpoint_error(struct progress *p, const cJSON *ev)
{
    checkpoint_begin(p, ev);
    const char *decision = json_str(ev, "decision_message");
    if (decision && decision[0] && policy_verbose(p, ev) >= 1)
        put_line(p, decision);
    const char *file = json_str(ev, "file"), *step = json_str(ev, "step"),
               *msg = json_str(ev, "message");
    char line[2048];
    snprintf(line, sizeof(line), "Epoch %d: checkpoint %s failed (%s): %s",
             json_int(ev, "epoch", 0), file ? file : "", step ? step : "", msg ? msg : "");
    put_line(p, line);
}

/* EarlyStopping decides at the epoch's end: the restore line comes before
 * the epoch's final line, "Epoch N: early stopping" (Keras' on_train_end)
 * after it.  Events stored without the message texts get them composed. */
static void on_early_stopping(struct progress *p, const cJSON *ev)
{
    const cJSON *restored = cJSON_GetObjectItemCaseSensitive(ev, "restored_best_weights");
    const char *restore_msg = json_str(ev, "restore_message"), *msg = json_str(ev, "message");
    char line[128];
    if (cJSON_IsTrue(restored)) {
        if (!restore_msg) {
            snprintf(line, sizeof(line),
                     "Restoring model weights from the end of the best epoch: %d.",
                     json_int(ev, "best_epoch", 0));
            restore_msg = line;
        }
        put_line(p, restore_msg);
    }
    flush_pending(p);
    if (!msg) {
        snprintf(line, sizeof(line), "Epoch %d: early stopping", json_int(ev, "epoch", 0));
        msg = line;
    }
    put_line(p, msg);
    p->stopped = true;
}

/* "lr_changed" / "lr_kept": LearningRateScheduler's line belongs to the
 * start of its epoch (after the header), ReduceLROnPlateau's to the end,
 * before the epoch's final line like a checkpoint's. */
static void on_lr(struct progress *p, const cJSON *ev)
{
    const char *msg = json_str(ev, "message"), *source = json_str(ev, "source");
    const cJSON *printed = cJSON_GetObjectItemCaseSensitive(ev, "printed");
    if (source && strcmp(source, "LearningRateScheduler") == 0) {
        flush_pending(p);
        header(p, json_int(ev, "epoch", 0), 0);
    }
    if (msg && msg[0] && cJSON_IsTrue(printed))
        put_line(p, msg);
}

/* TerminateOnNaN stops inside an epoch: its line follows that epoch's header. */
static void on_terminate_on_nan(struct progress *p, const cJSON *ev)
{
    const char *msg = json_str(ev, "message");
    flush_pending(p);
    header(p, json_int(ev, "epoch", 0), 0);
    if (msg && msg[0])
        put_line(p, msg);
}

void progress_event(struct progress *p, const char *type, const cJSON *ev)
{
    if (!type || !cJSON_IsObject(ev))
        return;
    if (strcmp(type, "progress") == 0)
        on_progress(p, ev);
    else if (strcmp(type, "epoch_end") == 0)
        on_epoch_end(p, ev);
    else if (strcmp(type, "checkpoint") == 0)
        on_checkpoint(p, ev);
    else if (strcmp(type, "checkpoint_error") == 0)
        on_checkpoint_error(p, ev);
    else if (strcmp(type, "early_stopping") == 0)
        on_early_stopping(p, ev);
    else if (strcmp(type, "lr_changed") == 0 || strcmp(type, "lr_kept") == 0)
        on_lr(p, ev);
    else if (strcmp(type, "terminate_on_nan") == 0)
        on_terminate_on_nan(p, ev);
    else if (strcmp(type, "state") == 0)
        flush_pending(p);
}

void progress_finish(struct progress *p)
{
    flush_pending(p);
    if (p->bar_open) {
        fputc('\n', p->out);
        p->bar_open = false;
        fflush(p->out);
    }
}
