/* mpi_worker.h - the loop of an MPI rank other than 0: it takes each job
 * rank 0 posts and trains it with the other ranks (job_distribute.c), until
 * rank 0 says stop. */
#ifndef TRAIND_MPI_WORKER_H
#define TRAIND_MPI_WORKER_H

#include "conf.h"

/* Returns the process's exit status (0 when rank 0 said stop).  cache_dir:
 * where the data sets rank 0 sends are kept (runner_env.rank_cache_dir);
 * temp files a killed rank left there are removed at start. */
int mpi_worker_main(const struct config *cfg, const char *cache_dir);

#endif
