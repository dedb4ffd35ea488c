/* datasets.h - the daemon's data sets: the configured ones (read-only) and
 * those uploaded over HTTP.
 *
 * An uploaded data set lives in <state_dir>/datasets/<name>/: data.tensor
 * (the flat tensor file training memory-maps, core/tensorfile.h) and
 * manifest.json (format, counts, input shape, dtype, classes with names and
 * counts, bytes and SHA-256 of the uploaded file, created, import options).
 * It is built in a temp folder <state_dir>/datasets/.tmp-<name>-... and
 * renamed into place once complete, so a data set exists whole or not at
 * all; temp folders and upload files left by a killed daemon are removed at
 * open.
 *
 * Names: 1 to 63 bytes of letters, digits, '-', '_', '.', not starting with
 * '.' (the job spec's rule).
 *
 * In-use rule: a data set named by a queued or running job cannot be
 * deleted (-EBUSY).  The usage callback (set by the job registry) answers
 * that; datasets_lock() is held by the job registry across "does the data
 * set exist?" and "register the job", and by datasets_remove across "is it
 * used?" and "remove it", so a delete racing a submit ends either with the
 * job refused (unknown data set) or the delete refused (409), never with a
 * queued job on a missing data set.  Lock order: datasets, then jobs.
 *
 * Thread-safe.  Strings returned through ret_ are malloc'ed, owned by the
 * caller. */
#ifndef TRAIND_DATASETS_H
#define TRAIND_DATASETS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "import.h"
#include "pixels.h"
#include "job_runner.h"

struct datasets;

/* Jobs using a data set: the ids (a cJSON array to add strings to, may be
 * NULL) and the number of them; active_only counts queued or running jobs. */
typedef int (*datasets_usage_fn)(void *ctx, const char *name, bool active_only,
                                 void *ret_ids_cjson_array);

int datasets_open(struct datasets **ret, const char *state_dir,
                  const struct runner_dataset *configured, int n_configured,
                  struct diag *d);
void datasets_close(struct datasets *ds);
void datasets_set_usage(struct datasets *ds, datasets_usage_fn usage, void *ctx);

void datasets_lock(struct datasets *ds);
void datasets_unlock(struct datasets *ds);

/* 0 if name is a valid data set name, else -EINVAL with d naming "name". */
int datasets_check_name(const char *name, struct diag *d);

/* A new, empty upload file (O_RDWR|O_CLOEXEC, mode 0600) in the datasets
 * folder for a request body; the caller writes it, then passes the path
 * to datasets_create (which removes it) or unlinks it. */
int datasets_upload_file(struct datasets *ds, char ret_path[PATH_MAX], int *ret_fd,
                         struct diag *d);

/* Import upload_path (removed whatever the result) as data set name.
 * -EEXIST when the name is taken (configured or uploaded), -EINVAL etc.
 * with d from the importer (nothing is left behind).  ret_json: the
 * resource. */
int datasets_create(struct datasets *ds, const char *name, const char *upload_path,
                    const struct import_options *o, char **ret_json, struct diag *d);

/* GET /v1/datasets/{name}: the resource with "jobs"; -ENOENT. */
int datasets_get(struct datasets *ds, const char *name, char **ret_json);
/* GET /v1/datasets: {"datasets": [...]} configured and uploaded. */
int datasets_list(struct datasets *ds, char **ret_json);
/* DELETE: -ENOENT, -EPERM for a configured data set, -EBUSY while a queued
 * or running job uses it (d says which). */
int datasets_remove(struct datasets *ds, const char *name, struct diag *d);

/* The runner's hook (runner_env.resolve_dataset; ctx = struct datasets). */
int datasets_resolve(void *ctx, const char *name, struct runner_dataset *ret);

/* What a model trained on data set name takes and gives: input shape
 * (h, w, c), classes and their names (malloc'ed array of malloc'ed
 * strings; datasets_free_names), and the pixels of its examples
 * (ret_pixels may be NULL).  A data set of float targets: *ret_target_width
 * (may be NULL) = K, the model's output width, and *ret_classes = K with
 * names "0".."K-1"; else *ret_target_width = 0.  Configured sets: uint8, IDX (28, 28, 1) and
 * CIFAR-10 (32, 32, 3), 10 classes: Fashion-MNIST's names for an IDX set
 * whose name or folder says "fashion" (any letter case), else the digits
 * "0".."9"; CIFAR-10's from batches.meta.txt beside the batches (or in
 * cifar-10-batches-bin/ below the folder), else the standard ten.  GET
 * shows the same names.  -ENOENT when unknown. */
int datasets_describe(struct datasets *ds, const char *name, int ret_shape[3], int *ret_classes,
                      int *ret_target_width, enum pixels_type *ret_pixels, char ***ret_names,
                      struct diag *d);
void datasets_free_names(char **names, int n);

#endif
