/* state_json.h - small helpers for the callback states' JSON forms (the
 * objects that go into the resume file): strict parsing with a JSON-pointer
 * diagnostic, integers, booleans.  Doubles: cjson_double in cjson_add.h. */
#ifndef TRAIND_STATE_JSON_H
#define TRAIND_STATE_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "diag.h"

/* Parse json into *ret_tree (the caller deletes it): an object whose keys
 * are all in keys (NULL-terminated) and all present.  0 or -EINVAL. */
int state_json_parse(const char *json, const char *const *keys, cJSON **ret_tree,
                     struct diag *d);
/* An integer in [lo, hi] under key into *ret.  0 or -EINVAL (field "/key"). */
int state_json_get_int(const cJSON *o, const char *key, int lo, int hi, int *ret,
                       struct diag *d);
int state_json_get_bool(const cJSON *o, const char *key, bool *ret, struct diag *d);
bool state_json_add_int(cJSON *o, const char *key, int v);
/* Print o unformatted into *ret_json when ok, delete o; 0 or -ENOMEM. */
int state_json_finish(cJSON *o, bool ok, char **ret_json);

#endif
