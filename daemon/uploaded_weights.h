/* uploaded_weights.h - the weights files PUT to /v1/weights/{name} for jobs'
 * initial_weights: stored, listed, served and deleted.
 *
 * Each file is <state_dir>/weights/<name> (name: api_dataset_name_valid, so
 * no '/' and no leading '.'), written atomically; next to it
 * <state_dir>/weights/.<name>.json records what the upload found out
 * ({"sha256", "layout", "layers", "uploaded", "bytes", "ino", "mtime_ns"}), trusted
 * only while the file's size, inode and mtime still match it (a file
 * replaced outside the daemon is listed and served without digest and
 * layout nor layers count).  One mutex orders uploads and deletions.
 *
 * Returned JSON strings are malloc'ed and the caller's. */
#ifndef TRAIND_UPLOADED_WEIGHTS_H
#define TRAIND_UPLOADED_WEIGHTS_H

#include "backend.h"
#include "diag.h"

struct jobs;

/* Store upload_path (removed whatever the result) as name: the resource
 * {"name", "bytes", "sha256", "layout", "layers", "uploaded"}
 * (layers: how many layers it holds weights of, h5_describe).  -EINVAL when it is no
 * Keras weight file h5.c reads. */
int uploaded_weights_put(struct jobs *js, const char *name, const char *upload_path,
                         char **ret_json, struct diag *d);

/* {"weights": [resource, ...]} by name. */
int uploaded_weights_list(struct jobs *js, char **ret_json);

/* Open name for a download (O_RDONLY|O_CLOEXEC|O_NOFOLLOW); -ENOENT. */
int uploaded_weights_open(struct jobs *js, const char *name, struct api_file *ret,
                          struct diag *d);

/* Delete name: -ENOENT, or -EBUSY (409) while a queued or running job names
 * it as its initial_weights (the error lists the jobs). */
int uploaded_weights_delete(struct jobs *js, const char *name, struct diag *d);

#endif
