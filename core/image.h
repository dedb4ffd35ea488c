/* image.h - PNG and JPEG decoding (libpng, libjpeg-turbo) and the bilinear
 * resize of tf.image.resize, for image-folder data sets and predictions.
 *
 * Decoding follows tf.io.decode_image(channels=C) with 8-bit output:
 * 16-bit samples are stripped to 8 bits, palettes expanded, grey turned into
 * RGB (channels 3, 4) and colour into grey (channels 1: a PNG by libpng's
 * 0.299 R + 0.587 G + 0.114 B; a JPEG by libjpeg's JCS_GRAYSCALE output,
 * the luma plane stored in the file, as TensorFlow asks for it), alpha
 * dropped (channels 1, 3) or added as 255 (channels 4).
 * Corrupt, truncated or unsupported images (CMYK JPEG, more than
 * IMAGE_MAX_PIXELS) are errors, never partial images; libjpeg's warnings
 * (corrupt data it would skip) count as errors.
 *
 * Ownership: *ret_pixels is malloc'ed; the caller frees it. */
#ifndef TRAIND_IMAGE_H
#define TRAIND_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define IMAGE_MAX_PIXELS (64 * 1024 * 1024)

enum image_kind {
    IMAGE_KIND_UNKNOWN = 0,
    IMAGE_KIND_PNG,
    IMAGE_KIND_JPEG,
};

/* From the first bytes. */
enum image_kind image_sniff(const void *data, size_t len);

/* Decode a PNG or JPEG held in memory into (h, w, channels) uint8. field
 * names the image in errors. */
int image_decode(const void *data, size_t len, int channels, uint8_t **ret_pixels, int *ret_h,
                 int *ret_w, const char *field, struct diag *d);

/* out (oh, ow, c) from in (ih, iw, c): tf.image.resize(method="bilinear")
 * (half-pixel centres, no antialiasing), computed in float as TensorFlow
 * does and rounded to the nearest uint8. Same size: an exact copy. */
void image_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int ih, int iw,
                           int c);

#endif
