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
    int r = job_spec_parse(&spec, text, len, &d);
    free(text);
    if (r < 0) {
        log_error("%s: %s%s%s", job_path, d.field, d.field[0] ? ": " : "", d.message);
        return 2;
    }
    struct runner_env env = {
        .datasets = cfg->datasets, .n_datasets = cfg->n_datasets, .threads = cfg->threads,
        .coll = mpi_comm_world()};
    if (!runner_find_dataset(&env, spec.dataset)) {
        log_error("%s: /dataset: unknown dataset '%s'", job_path, spec.dataset);
        job_spec_free(&spec);
        return 2;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_error("%s: %s", dir, strerror(errno));
        job_spec_free(&spec);
        return 1;
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
