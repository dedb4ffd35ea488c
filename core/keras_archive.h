/* keras_archive.h - Keras 3 `.keras` archives: the zip and the JSON in it.
 *
 * A `.keras` file (keras.saving.save_model, Keras 3 saving_lib) is a zip
 * of three stored (uncompressed) members, in this order:
 *   metadata.json     {"keras_version": "3.x.y", "date_saved": "%Y-%m-%d@%H:%M:%S"}
 *   config.json       serialize_keras_object(model): {"module", "class_name",
 *                     "config", "registered_name", "build_config",
 *                     "compile_config"}, every nested Keras object (layers,
 *                     initializers, the optimizer) in the same four-key form
 *   model.weights.h5  the Keras 3 weights layout (h5.h H5_LAYOUT_KERAS3_WEIGHTS)
 * This file builds and reads the zip in memory and puts config.json and
 * metadata.json together (model_json_write.c prints the model in Keras 3's
 * form, compile_config.c the compile_config); h5.c does the HDF5 part and
 * the atomic write.  No HDF5 here, no I/O: buffers in, buffers out.
 *
 * Ownership: every returned buffer is malloc'ed and the caller's. */
#ifndef TRAIND_KERAS_ARCHIVE_H
#define TRAIND_KERAS_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "model_spec.h"

/* The Keras version metadata.json names: the one whose forms config.json
 * follows (model_spec.h KERAS3_FORM_VERSION). */
#define KERAS_ARCHIVE_KERAS_VERSION KERAS3_FORM_VERSION
#define KERAS_ARCHIVE_WEIGHTS "model.weights.h5"
#define KERAS_ARCHIVE_CONFIG "config.json"
#define KERAS_ARCHIVE_METADATA "metadata.json"

/* Does the buffer start like a zip file ("PK\3\4")? */
bool keras_archive_is_zip(const void *data, size_t len);

/* config.json for spec: model_spec_to_json_flavour's Keras 3 form (with its
 * build_config) and, when compile_config_json is given
 * (compile_config_to_json's Keras 3 form), the compile_config after it.
 * NULL on allocation failure. */
char *keras_archive_config_json(const struct model_spec *spec, const char *compile_config_json);

/* metadata.json for the time `when` (UTC). */
char *keras_archive_metadata_json(int64_t when);

/* The zip of metadata.json, config.json and the weights image, members
 * stored, mtime `when`.  Returns 0 or -ENOMEM / -EIO with d filled. */
int keras_archive_pack(const char *metadata_json, const char *config_json, const void *weights,
                       size_t weights_len, int64_t when, void **ret_zip, size_t *ret_len,
                       struct diag *d);

/* The member `name` of the zip in data (at most max_bytes uncompressed, and
 * at most 100 times its compressed size plus 1 MiB: a zip bomb is refused
 * with -EFBIG).  -ENOENT when the archive has no such member, -EINVAL when
 * it is no readable zip.  what names the file in errors. */
int keras_archive_member(const void *data, size_t len, const char *name, size_t max_bytes,
                         const char *what, void **ret_data, size_t *ret_len, struct diag *d);

#endif
