/* cjson_add.h - checked cJSON building: cJSON_AddItemToObject leaks the
 * item when it fails and accepts NULL items silently; these take the item in
 * every case (deleted on failure) and say whether the object has it.  A
 * builder collects the results (`ok &= ...`) and returns
 * cjson_checked(o, ok), so that out of memory gives NULL, never a document
 * with fields missing. */
#ifndef TRAIND_CJSON_ADD_H
#define TRAIND_CJSON_ADD_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "pyfmt.h"

/* Add item (may be NULL: a failed create) to obj under key.  False when item
 * is NULL or the add failed (item deleted). */
static inline bool cjson_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Append item (may be NULL) to array.  False when item is NULL or the
 * append failed (item deleted). */
static inline bool cjson_append(cJSON *array, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* o when every add that built it succeeded (ok), else NULL with o deleted:
 * a builder ends with `return cjson_checked(o, ok);`. */
static inline cJSON *cjson_checked(cJSON *o, bool ok)
{
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A double as an exact JSON value: the shortest text that reads back to the
 * same double (Python's repr, what json.dumps writes), or the strings "nan",
 * "inf", "-inf" (JSON has no such numbers).  cJSON's own number printing
 * only round-trips to within an ulp. */
static inline cJSON *cjson_double(double x)
{
    char buf[PYFMT_SIZE];
    pyfmt_double(buf, x, PYFMT_NONFINITE_PY);
    return isfinite(x) ? cJSON_CreateRaw(buf) : cJSON_CreateString(buf);
}

/* The reverse of cjson_double for obj's key: false when absent or neither a
 * number nor one of the three strings. */
static inline bool cjson_get_double(const cJSON *obj, const char *key, double *ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) {
        *ret = v->valuedouble;
        return true;
    }
    if (!cJSON_IsString(v))
        return false;
    if (strcmp(v->valuestring, "inf") == 0)
        *ret = INFINITY;
    else if (strcmp(v->valuestring, "-inf") == 0)
        *ret = -INFINITY;
    else if (strcmp(v->valuestring, "nan") == 0)
        *ret = NAN;
    else
        return false;
    return true;
}

#endif
