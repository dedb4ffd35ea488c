/* json_num.c - see json_num.h. */
#include "json_num.h"

#include "cjson_add.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

cJSON *json_num_create(double v)
{
    if (isnan(v))
        return cJSON_CreateString("nan");
    if (isinf(v))
        return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    char buf[40];
    snprintf(buf, sizeof(buf), "%.17g", v);
    return cJSON_CreateRaw(buf);
}

bool json_num_add(cJSON *obj, const char *key, double v)
{
    return cjson_add(obj, key, json_num_create(v));
}

bool json_num_get(const cJSON *obj, const char *key, double *ret)
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
