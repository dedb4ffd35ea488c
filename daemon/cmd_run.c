/* cmd_run.c - `traind run JOB.json` (see cmd_run.h). */
#include "cmd_run.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "import.h"
#include "job_spec.h"
#include "log.h"
#include "progress.h"
#include "mpi_comm.h"
#include "signals.h"
#include "job_runner.h"

static atomic_int run_stop;

/* Each event of the run goes to the Keras renderer (progress.c), as it would
 * reach `traind logs -f`: the bar on a terminal, verbose=2 lines otherwise. */
static void render_event(void *ctx, const char *type, const char *data_json, bool persist)
{
    (void)persist;
    cJSON *obj = cJSON_Parse(data_json);
    progress_event(ctx, type, obj);
    cJSON_Delete(obj);
}

/* "dataset": {"file": ...}: convert the file once into the tensor file
 * <dir>-datasets/<sha256 of the file>-<options>.tensor, next to the run's
 * folder (reused by later runs of the same file and options), and describe
 * it as a data set of format "tensor". */
static int prepare_file(const struct job_spec *spec, const char *dir, struct runner_dataset *ret,
                        struct diag *d)
{
    struct import_options o;
    import_options_init(&o);
    if (spec->dataset_format[0] && import_format_parse(spec->dataset_format, &o.format) < 0)
        return diag_set(d, -EINVAL, "/dataset/format", "unknown format");
    if (spec->image_size[0]) {
        o.image_h = spec->image_size[0];
        o.image_w = spec->image_size[1];
    }
    if (spec->color_mode[0] && import_color_mode_parse(spec->color_mode, &o.color_mode) < 0)
        return diag_set(d, -EINVAL, "/dataset/color_mode", "unknown color mode");
    if (spec->import_seed >= 0)
        o.seed = (uint32_t)spec->import_seed;
    uint8_t sha[32];
    int r = fsutil_sha256_file(spec->dataset_file, sha, NULL, d);
    if (r < 0) {
        snprintf(d->field, sizeof(d->field), "/dataset/file");
        return r;
    }
    char hex[65], cache[PATH_MAX], name[200];
    fsutil_sha256_hex(sha, hex);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (snprintf(cache, sizeof(cache), "%.*s-datasets", (int)len, dir) >= (int)sizeof(cache))
        return diag_set(d, -ENAMETOOLONG, "/dataset/file", "path too long");
    snprintf(name, sizeof(name), "%.32s-%s-%dx%d-%s-%u.tensor", hex,
             import_format_name(o.format), o.image_h, o.image_w,
             spec->color_mode[0] ? spec->color_mode : "rgb", (unsigned)o.seed);
    if (mkdir(cache, 0700) < 0 && errno != EEXIST)
        return diag_set(d, -errno, "/dataset/file", "%s: %s", cache, strerror(errno));
    snprintf(ret->name, sizeof(ret->name), "%s", spec->dataset);
    snprintf(ret->format, sizeof(ret->format), "tensor");
    if (snprintf(ret->path, sizeof(ret->path), "%s/%s", cache, name) >= (int)sizeof(ret->path))
        return diag_set(d, -ENAMETOOLONG, "/dataset/file", "path too long");
    struct stat st;
    if (stat(ret->path, &st) == 0) {
        log_info("%s: using %s", spec->dataset_file, ret->path);
        return 0;
    }
    struct import_result res;
    r = import_dataset(spec->dataset_file, &o, cache, name, &res, d);
    if (r < 0) {
        char field[256];
        snprintf(field, sizeof(field), "%s", d->field);
        snprintf(d->field, sizeof(d->field), "/dataset/file");
        char msg[sizeof(field) + sizeof(d->message) + 2];
        snprintf(msg, sizeof(msg), "%s%s%s", field, field[0] ? ": " : "", d->message);
        msg[sizeof(d->message) - 1] = '\0'; /* a long message is cut */
        memcpy(d->message, msg, sizeof(d->message));
        return r;
    }
    log_info("%s: %s, %llu training and %llu test examples of (%d, %d, %d), %d %s -> %s",
             spec->dataset_file, import_format_name(res.format),
             (unsigned long long)res.info.n[0], (unsigned long long)res.info.n[1], res.info.h,
             res.info.w, res.info.c, res.info.y_width ? res.info.y_width : res.info.classes,
             res.info.y_width ? "float targets per example" : "classes", ret->path);
    return 0;
}

int run_command(const struct config *cfg, const char *job_path, const char *dir)
{
    void *text = NULL;
    size_t len = 0;
    struct diag d = {{0}, {0}};
    if (fsutil_read_file(job_path, 16u << 20, &text, &len, &d) < 0) {
        log_error("%s: %s", job_path, d.message);
        return 2;
    }
    struct job_spec spec;
    int r = job_spec_parse_local(&spec, text, len, &d);
    free(text);
    if (r < 0) {
        log_error("%s: %s%s%s", job_path, d.field, d.field[0] ? ": " : "", d.message);
        return 2;
    }
    if (spec.initial_weights.set) {
        /* the daemon resolves other jobs and uploads; a local run has neither */
        log_error("%s: /initial_weights: a warm start needs the daemon (POST /v1/jobs)", job_path);
        job_spec_free(&spec);
        return 2;
    }
    struct runner_env env = {
        .datasets = cfg->datasets, .n_datasets = cfg->n_datasets, .threads = cfg->threads,
        .coll = mpi_comm_world()};
    struct runner_dataset file_ds;
    if (!spec.dataset_file[0] && !runner_find_dataset(&env, spec.dataset)) {
        log_error("%s: /dataset: unknown dataset '%s'", job_path, spec.dataset);
        job_spec_free(&spec);
        return 2;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_error("%s: %s", dir, strerror(errno));
        job_spec_free(&spec);
        return 1;
    }
    if (spec.dataset_file[0]) {
        r = prepare_file(&spec, dir, &file_ds, &d);
        if (r < 0) {
            log_error("%s: %s: %s", job_path, d.field, d.message);
            job_spec_free(&spec);
            return 2;
        }
        env.datasets = &file_ds;
        env.n_datasets = 1;
    }

    signals_on_stop(&run_stop);

    struct progress_config pc = {.epochs = spec.epochs, .n_policies = spec.n_checkpoints};
    for (int i = 0; i < spec.n_checkpoints && i < PROGRESS_MAX_POLICIES; i++)
        pc.verbose[i] = spec.checkpoints[i].verbose;
    struct progress bar;
    progress_init(&bar, stdout, isatty(STDOUT_FILENO), &pc);
    struct runner_sink sink = {.ctx = &bar, .event = render_event};
    r = runner_run(&spec, dir, &env, &sink, &run_stop, &d);
    progress_finish(&bar);
    job_spec_free(&spec);
    if (r == -ECANCELED) {
        log_info("interrupted; run again with --dir %s to continue", dir);
        return 130;
    }
    if (r < 0) {
        log_error("%s%s%s", d.field, d.field[0] ? ": " : "", d.message[0] ? d.message : strerror(-r));
        return 1;
    }
    return 0;
}
