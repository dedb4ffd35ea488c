/* pyfloat.h - a double as Python's repr() prints it (what json.dumps and
 * f"{x}" write for a float): the shortest digits that read back to the same
 * value, exponent form when the decimal exponent is < -4 or >= 16, always a
 * '.' or an exponent ("0.0009999999776482583", "1e-05", "0.1").  Used where
 * traind writes what Keras prints or serialises.  Non-finite values as
 * json.dumps writes them: NaN, Infinity, -Infinity. */
#ifndef TRAIND_PYFLOAT_H
#define TRAIND_PYFLOAT_H

#include <stddef.h>

/* Writes into buf (at most size bytes, NUL-terminated; 32 bytes always suffice). */
void py_float_repr(char *buf, size_t size, double x);

#endif
