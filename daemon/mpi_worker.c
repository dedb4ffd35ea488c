/* mpi_worker.c - an MPI rank other than 0 (see mpi_worker.h).  It serves no
 * HTTP and owns no state directory: its configured data sets come from the
 * same configuration file as rank 0's, the others from rank 0 (kept in
 * cache_dir by SHA-256), its weights from rank 0 at every job start
 * (job_distribute.c).  A failed job is logged and the loop waits for the
 * next one; rank 0 reports the failure. */
#include "mpi_worker.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsutil.h"
#include "job_runner.h"
#include "log.h"
#include "mpi_comm.h"

int mpi_worker_main(const struct config *cfg, const char *cache_dir)
{
    struct runner_env env = {.datasets = cfg->datasets, .n_datasets = cfg->n_datasets,
                             .threads = cfg->threads, .coll = mpi_comm_world(),
                             .rank_cache_dir = cache_dir};
    /* Before the first job: no rank can be receiving into the folder yet
     * (every rank takes part in each transfer). */
    int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsutil_remove_temp_files(dfd, 0, NULL, NULL);
        close(dfd);
    }
    log_info("rank %d of %d: waiting for jobs from rank 0", mpi_comm_rank(), mpi_comm_size());
    for (;;) {
        char *msg = NULL;
        size_t len = 0;
        if (mpi_comm_wait(&msg, &len) < 0) {
            log_error("rank %d: out of memory for rank 0's message", mpi_comm_rank());
            return 1;
        }
        if (!msg)
            break;
        struct diag d = {{0}, {0}};
        int r = runner_worker_job(msg, len, &env, &d);
        free(msg);
        if (r < 0)
            log_error("rank %d: job failed: %s%s%s", mpi_comm_rank(), d.field,
                      d.field[0] ? ": " : "", d.message);
        else
            log_info("rank %d: job done", mpi_comm_rank());
    }
    log_info("rank %d: stopping", mpi_comm_rank());
    return 0;
}
