/* merge.c - the layers that join tensors in a functional model: Add and
 * Concatenate on the channel axis (see layers.h).  Their backward is a copy
 * (Add) or a slice (Concatenate) of dout per input, done by the model's graph
 * walk, which sums the gradients where a tensor fans out. */
#include <string.h>

#include "layers.h"

void add_forward(float *out, const float *const *inps, int n_inputs, size_t count)
{
    if (out != inps[0])
        memcpy(out, inps[0], sizeof(float) * count);
    for (int k = 1; k < n_inputs; k++) {
        const float *x = inps[k];
        for (size_t i = 0; i < count; i++)
            out[i] += x[i];
    }
}

void concat_forward(float *out, const float *const *inps, const int *c, int n_inputs,
                    size_t rows)
{
    int ct = 0;
    for (int k = 0; k < n_inputs; k++)
        ct += c[k];
    for (size_t r = 0; r < rows; r++) {
        float *o = out + r * (size_t)ct;
        for (int k = 0; k < n_inputs; k++) {
            memcpy(o, inps[k] + r * (size_t)c[k], sizeof(float) * (size_t)c[k]);
            o += c[k];
        }
    }
}

void concat_backward_part(float *dinp, const float *dout, size_t rows, int ctotal, int c0,
                          int c, bool add)
{
    for (size_t r = 0; r < rows; r++) {
        const float *g = dout + r * (size_t)ctotal + c0;
        float *d = dinp + r * (size_t)c;
        if (add)
            for (int k = 0; k < c; k++)
                d[k] += g[k];
        else
            memcpy(d, g, sizeof(float) * (size_t)c);
    }
}
