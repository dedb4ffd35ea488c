/* h5.h - weight files: the Keras HDF5 layouts traind writes and reads back.
 *
 * Layouts (what Keras itself writes, so that Keras can load our files):
 *   H5_LAYOUT_TF_WEIGHTS  tf.keras model.save_weights("x.h5"): root attrs
 *                         layer_names (every layer, model order), backend,
 *                         keras_version; per layer a group with attr
 *                         weight_names and datasets <layer>/<layer>/<w>:0.
 *   H5_LAYOUT_TF_MODEL    tf.keras model.save("x.h5"): root attrs
 *                         keras_version, backend, model_config,
 *                         training_config; group model_weights (the
 *                         weights-only content) and, with an optimizer,
 *                         group optimizer_weights ("SGD/iter:0",
 *                         "SGD/<layer>/<w>/momentum:0", "Adam/.../m:0", ...).
 *   H5_LAYOUT_KERAS3_WEIGHTS  Keras 3 model.save_weights("x.weights.h5"):
 *                         groups layers/<name>/vars with datasets "0", "1",
 *                         ..., an empty root vars group and, with an
 *                         optimizer, optimizer/vars.
 *   H5_LAYOUT_KERAS_ARCHIVE   Keras 3 model.save("x.keras"): a zip of
 *                         metadata.json, config.json (the model config in
 *                         Keras 3's form, build_config, compile_config) and
 *                         model.weights.h5 (the KERAS3_WEIGHTS layout without
 *                         the optimizer's variables, which Keras skips
 *                         with a warning when loading); keras_archive.h.
 * The resume file (h5_save_resume) is an H5_LAYOUT_TF_MODEL file plus root
 * attributes traind_resume_version, epoch, state_json and traind_checksum
 * (SHA-256 over everything resume restores), so it is also Keras-loadable;
 * it starts with a 512-byte HDF5 user block "TRAIND-H5\nsha256 <hex>\n"
 * holding the SHA-256 of the rest of the file.
 *
 * Corrupt files: HDF5 trusts file metadata, and a corrupted file can make it
 * crash, hang or allocate without bound (seen with 1.10.8 flipping single
 * bytes of tests/fixtures/h5/tf_weights_vlen.h5: byte 837 ^ 0xff SIGSEGV in
 * H5HG_read, byte 907 ^ 0xff runs > 10 s).  Bytes are therefore checked
 * before HDF5 reads them where a checksum exists: the resume header always,
 * and the whole file when the caller passes the SHA-256 recorded at save
 * time (h5_load_weights_verified).  Load other files only when trusted.
 * Truncated files, non-HDF5 files and wrong layouts/shapes are always
 * rejected cleanly.
 *
 * All HDF5 calls of the process go through one mutex inside h5.c (Debian's
 * HDF5 is the serial, non-thread-safe build): the functions below may be
 * called from any thread, concurrently.  HDF5 never prints; its error stack
 * becomes the diag message.  HDF5 files are built in memory (core driver)
 * and written with fsutil's atomic write, so HDF5 itself opens no fds.
 *
 * Ownership: the caller keeps m, opt and every string; h5.c keeps nothing
 * between calls except the mutex. */
#ifndef TRAIND_H5_H
#define TRAIND_H5_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "fsutil.h"
#include "model.h"
#include "optimizer.h"

#define H5_KERAS_VERSION "2.15.0"
#define H5_BACKEND "tensorflow"
#define H5_RESUME_VERSION 1

enum h5_layout {
    H5_LAYOUT_TF_WEIGHTS,
    H5_LAYOUT_TF_MODEL,
    H5_LAYOUT_KERAS3_WEIGHTS,
    H5_LAYOUT_KERAS_ARCHIVE,
};

/* "tf_weights", "tf_model", "keras3_weights", "keras_archive". */
const char *h5_layout_name(enum h5_layout layout);

/* The layout Keras uses for a ModelCheckpoint filepath:
 *   *.weights.h5                          -> KERAS3_WEIGHTS (needs save_weights_only)
 *   *.keras (full model only)             -> KERAS_ARCHIVE
 *   *.h5, *.hdf5 + weights only           -> TF_WEIGHTS
 *   *.h5, *.hdf5 otherwise                -> TF_MODEL
 * Anything else: -EINVAL naming the allowed extensions.  ret written only on
 * success. */
int h5_layout_for_path(const char *path, bool save_weights_only, enum h5_layout *ret,
                       struct diag *d);

/* Write m (and opt, for TF_MODEL; may be NULL: no optimizer_weights group;
 * ignored by TF_WEIGHTS and saved for KERAS3_WEIGHTS when non-NULL) to
 * dir/relpath atomically (fsutil_write_file_atomic: temp name in the same
 * folder, fsync, rename, fsync of the folder; missing folders of relpath are
 * created 0700).  compile: the job's compile() (loss, metrics), recorded
 * with opt as TF_MODEL's training_config attribute and a KERAS_ARCHIVE's
 * compile_config (compile_config.h); NULL records Keras' defaults
 * (categorical_crossentropy, ["accuracy"]) when opt is given, nothing when
 * neither is.  ret_sha256 (32 bytes)
 * and ret_bytes (may each be NULL) get the digest and size of the written
 * file.  On failure the previous file at relpath is untouched (see
 * fsutil.h for the one exception, a failed fsync of the folder), no temp
 * file is left, and d->message names the failed step; ret_step (may be
 * NULL) gets it on failure: FSUTIL_STEP_ENCODE when building the bytes
 * failed, a write step of fsutil.h, or FSUTIL_STEP_WRITE when the model was
 * refused. */
struct compile_spec;
int h5_save(const char *dir, const char *relpath, enum h5_layout layout, const struct model *m,
            const struct optimizer *opt, const struct compile_spec *compile,
            uint8_t ret_sha256[32], uint64_t *ret_bytes, enum fsutil_step *ret_step,
            struct diag *d);

/* Load the weights of any of the four layouts (detected from the content;
 * an archive's model.weights.h5 is read from the zip in memory) into m.  Weighted layers are matched by name and order, shapes must equal
 * the model's.  Errors: -ENOENT/-EACCES/... (open), -EINVAL (not HDF5,
 * truncated, corrupt, not a Keras weight file, layer or shape mismatch; the
 * message says which layer/weight and what differs), -ENOMEM.  m is unchanged
 * on error (values are read into a scratch arena first). */
int h5_load_weights(struct model *m, const char *path, struct diag *d);

/* h5_load_weights after checking that the file's bytes have the SHA-256
 * h5_save returned when writing it (expected_sha256 may be NULL: no check).
 * A mismatch is -EINVAL and HDF5 never sees the bytes. */
int h5_load_weights_verified(struct model *m, const char *path, const uint8_t expected_sha256[32],
                             struct diag *d);

/* Warm start: Keras load_weights(by_name=True, skip_mismatch=...) from a
 * file of any layout.  Each model layer with weights takes the file's layer
 * of the same name (tf.keras files: layer_names; a .keras archive: the
 * layer names of its config.json, mapped to their Keras 3 container keys);
 * a .weights.h5 file has no names, so a layer takes the group Keras 3 would
 * load into it (layers/<class in snake case>[_<n>], the n-th layer of its
 * class), as Keras 3's own load_weights does.  A layer the file lacks keeps
 * its initial values (listed in absent).  A layer whose weight count
 * differs, or a weight whose shape differs, is an error naming the layer,
 * the weight and both shapes (-EINVAL, d->field "layer/weight"); with
 * skip_mismatch it is left as initialised and listed in skipped instead (a
 * count mismatch skips the whole layer, a shape mismatch that weight, as
 * tf.keras does).  m is unchanged on error. */
#define H5_REPORT_MAX 64
struct h5_skipped {
    char layer[64];
    char weight[64];          /* "" when the weight counts differ */
    char model_shape[64];     /* "(3, 3, 1, 32)", or "3 weights" */
    char file_shape[64];
};
struct h5_by_name_report {
    enum h5_layout layout;
    int n_loaded;             /* weight tensors loaded */
    int n_skipped;            /* entries of skipped (at most H5_REPORT_MAX) */
    struct h5_skipped skipped[H5_REPORT_MAX];
    int n_absent;             /* model layers with weights the file lacks */
    char absent[H5_REPORT_MAX][64];
};
int h5_load_weights_by_name(struct model *m, const char *path, bool skip_mismatch,
                            struct h5_by_name_report *ret_report, struct diag *d);

/* Which layout a file has (detected as h5_load_weights does). */
int h5_detect_layout(const char *path, enum h5_layout *ret, struct diag *d);
/* The same, and (ret_layers, may be NULL) how many layers the file holds
 * weights of: tf.keras files by layer_names / weight_names, Keras 3 files
 * (and the archive's model.weights.h5) by non-empty layers/<name>/vars. */
int h5_describe(const char *path, enum h5_layout *ret, int *ret_layers, struct diag *d);

/* Everything needed to continue training: params (incl. BN moving stats),
 * opt's slots and iterations (opt required), epoch (epochs completed) and an
 * opaque JSON string (policy/callback/RNG state; may be NULL = "{}"); its
 * training_config records compile (as h5_save).  Same atomic write and
 * failure contract as h5_save. */
int h5_save_resume(const char *dir, const char *relpath, const struct model *m,
                   const struct optimizer *opt, int epoch, const char *state_json,
                   const struct compile_spec *compile, struct diag *d);

/* Read a resume file into m and opt (whose kind and slot count must match the
 * file's).  ret_state_json: malloc'ed copy (caller frees).  Both checksums
 * are verified (the header's before HDF5 parses anything); m, opt and the
 * ret_ values are unchanged on error. */
int h5_load_resume(struct model *m, struct optimizer *opt, const char *path, int *ret_epoch,
                   char **ret_state_json, struct diag *d);

/* The process-wide HDF5 lock, for the other files of core/ that call HDF5
 * (h5_data.c, the data set importer): every HDF5 call between the two. */
void h5_global_lock(void);
void h5_global_unlock(void);

#endif
