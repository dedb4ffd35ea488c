/* pixels.h - how the examples of a data set are stored and fed to a model.
 *
 * PIXELS_UINT8: bytes 0..255 (IDX, CIFAR-10, uint8 uploads), fed to the
 * model as x * (1.0f / 255.0f): the [0, 1] scaling every uint8 set has
 * always had.  PIXELS_FLOAT32: IEEE binary32 in host order (float32
 * uploads; the tensor file is little-endian), fed as they are, as Keras
 * feeds a float array to fit, evaluate and predict: whatever scaling the
 * data has is the scaling the model sees. */
#ifndef TRAIND_PIXELS_H
#define TRAIND_PIXELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum pixels_type {
    PIXELS_UINT8 = 0,
    PIXELS_FLOAT32 = 1,
};

/* Bytes of one value. */
static inline size_t pixels_bytes(enum pixels_type t)
{
    return t == PIXELS_FLOAT32 ? 4 : 1;
}

/* x (count) = the model's input for count values of src of type t. */
static inline void pixels_to_float(float *x, const void *src, enum pixels_type t, size_t count)
{
    if (t == PIXELS_FLOAT32) {
        memcpy(x, src, count * sizeof(float));
        return;
    }
    const uint8_t *p = src;
    for (size_t i = 0; i < count; i++)
        x[i] = (float)p[i] * (1.0f / 255.0f);
}

#endif
