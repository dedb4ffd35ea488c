/* cjson_add.h - checked cJSON building: cJSON_AddItemToObject leaks the
 * item when it fails and accepts NULL items silently; these take the item in
 * every case (deleted on failure) and say whether the object has it.  A
 * builder collects the results (`ok &= ...`) and returns
 * cjson_checked(o, ok), so that out of memory gives NULL, never a document
 * with fields missing. */
#ifndef TRAIND_CJSON_ADD_H
#define TRAIND_CJSON_ADD_H

#include <cjson/cJSON.h>
#include <stdbool.h>

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

#endif
