/* json_num.h - doubles in saved state JSON that read back bit-identical:
 * finite values as 17 significant digits, non-finite ones as the strings
 * "inf", "-inf" and "nan" (JSON has no such numbers).  Used by every state
 * that goes into the resume file (checkpoint policies, callbacks). */
#ifndef TRAIND_JSON_NUM_H
#define TRAIND_JSON_NUM_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* A new cJSON item for v (the caller adds it to a tree), NULL when out of memory. */
cJSON *json_num_create(double v);
/* Add json_num_create(v) under key; false when out of memory. */
bool json_num_add(cJSON *obj, const char *key, double v);
/* The number or "inf"/"-inf"/"nan" string under key into *ret; false when
 * absent or of another type (*ret untouched). */
bool json_num_get(const cJSON *obj, const char *key, double *ret);

#endif
