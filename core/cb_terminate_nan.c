/* cb_terminate_nan.c - Keras TerminateOnNaN (see callbacks.h): after each
 * batch, a NaN or infinite running loss stops training. */
#include "callbacks.h"

#include <math.h>
#include <stdio.h>

bool ton_on_batch_end(int batch, const struct logs *logs, char *message, size_t size)
{
    double loss;
    if (!logs_get(logs, "loss", &loss) || isfinite(loss))
        return false;
    if (message && size)
        snprintf(message, size, "Batch %d: Invalid loss, terminating training", batch - 1);
    return true;
}
