/* pyfmt.h - floats written as Python writes them.
 *
 * pyfmt_double is repr(float): the shortest digits that read back to the
 * same double, positional when the decimal exponent is in [-4, 16), else
 * "d.ddde+XX" (at least two exponent digits); always with a '.' or an
 * exponent ("100.0", "1e-05", "1e+16").  pyfmt_float32 lays out the
 * shortest digits that read back to the same float32 the same way: the repr
 * of the Python float that a float32 setting was made from, which is what
 * Keras writes in a config (0.1f gives "0.1", not "0.10000000149011612";
 * 0.0001f gives "0.0001" where numpy's str(np.float32) would say "1e-04",
 * as numpy decides the layout on the float32's exact value).
 * Non-finite values are spelled as the output format wants:
 * PYFMT_NONFINITE_PY as str()/repr() and CSVLogger ("nan", "inf", "-inf"),
 * PYFMT_NONFINITE_JSON as json.dumps ("NaN", "Infinity", "-Infinity").
 * No allocation, thread-safe. */
#ifndef TRAIND_PYFMT_H
#define TRAIND_PYFMT_H

#define PYFMT_SIZE 32          /* longest result and its NUL: "-1.2345678901234567e-308" */
#define PYFMT_MAX_NDIG 64      /* most significant digits pyfmt_digits gives */

enum pyfmt_nonfinite {
    PYFMT_NONFINITE_PY,   /* nan, inf, -inf */
    PYFMT_NONFINITE_JSON, /* NaN, Infinity, -Infinity */
};

/* repr(x) into out. */
void pyfmt_double(char out[PYFMT_SIZE], double x, enum pyfmt_nonfinite nonfinite);

/* The float32 x as numpy's str(np.float32(x)) into out. */
void pyfmt_float32(char out[PYFMT_SIZE], float x, enum pyfmt_nonfinite nonfinite);

/* The significant digits of ax (finite, >= 0) correctly rounded to ndig
 * (1 .. PYFMT_MAX_NDIG) digits, trailing zeros removed (one kept), into
 * digits (ndig + 1 bytes), and the decimal point position:
 * ax ~= 0.DIGITS x 10^decpt.  Zero gives "0" and decpt 1, as CPython's dtoa.
 * str.format's 'g' and repr are laid out from these. */
void pyfmt_digits(double ax, int ndig, char *digits, int *ret_decpt);

#endif
