/* cmd_run.h - `traind run JOB.json`: one job in the foreground through the same
 * code path as the daemon's workers (job_spec_parse + runner_run), with
 * Keras-style lines on stdout. */
#ifndef TRAIND_CMD_RUN_H
#define TRAIND_CMD_RUN_H

#include "conf.h"

/* Returns the process exit status: 0 success, 1 failure, 2 bad input,
 * 130 interrupted (run again with the same --dir to resume). */
int run_command(const struct config *cfg, const char *job_path, const char *dir);

#endif
