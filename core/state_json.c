/* state_json.c - see state_json.h. */
#include "state_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int state_json_parse(const char *json, const char *const *keys, cJSON **ret_tree,
                     struct diag *d)
{
    if (!json)
        return diag_set(d, -EINVAL, "", "no state");
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(json, &end, true);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return diag_set(d, -EINVAL, "", "state is not a JSON object");
    }
    for (const cJSON *c = o->child; c; c = c->next) {
        bool known = false;
        for (int i = 0; keys[i]; i++)
            known = known || (c->string && strcmp(c->string, keys[i]) == 0);
        if (!known) {
            int r = diag_set(d, -EINVAL, "", "unknown key '%.64s'", c->string ? c->string : "");
            cJSON_Delete(o);
            return r;
        }
    }
    for (int i = 0; keys[i]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(o, keys[i])) {
            int r = diag_set(d, -EINVAL, "", "key '%s' is missing", keys[i]);
            cJSON_Delete(o);
            return r;
        }
    *ret_tree = o;
    return 0;
}

int state_json_get_int(const cJSON *o, const char *key, int lo, int hi, int *ret,
                       struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi) {
        char field[80];
        snprintf(field, sizeof(field), "/%.64s", key);
        return diag_set(d, -EINVAL, field, "expected an integer between %d and %d", lo, hi);
    }
    *ret = (int)v->valuedouble;
    return 0;
}

int state_json_get_bool(const cJSON *o, const char *key, bool *ret, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v)) {
        char field[80];
        snprintf(field, sizeof(field), "/%.64s", key);
        return diag_set(d, -EINVAL, field, "expected true or false");
    }
    *ret = cJSON_IsTrue(v);
    return 0;
}

bool state_json_add_int(cJSON *o, const char *key, int v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

int state_json_finish(cJSON *o, bool ok, char **ret_json)
{
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!txt)
        return -ENOMEM;
    *ret_json = txt;
    return 0;
}
