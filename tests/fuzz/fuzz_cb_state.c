/* fuzz_cb_state.c - the restore paths of the callbacks' resume state
 * (core/cb_early_stopping.c: es_state_from_json, core/cb_reduce_lr.c:
 * rlrop_state_from_json) and the learning-rate schedule parser
 * (core/lr_schedule.c: lr_schedule_parse_json).
 *
 * Input: a selector byte (value % 3: 0 EarlyStopping state, 1
 * ReduceLROnPlateau state, 2 schedule), then the JSON text.  An accepted
 * state must print as JSON that restores to the same state; an accepted
 * schedule must print as JSON that parses to a schedule printing the same
 * text and giving the same values, and evaluating it at any step must not
 * crash. */
#include <string.h>

#include "callbacks.h"
#include "fuzz.h"
#include "lr_schedule.h"

static void es_case(const char *json)
{
    struct es_config cfg;
    es_config_default(&cfg);
    cfg.enabled = true;
    struct es_state s, t;
    struct diag d = {{0}, {0}};
    if (es_state_from_json(&cfg, json, &s, &d) < 0)
        return;
    char *text = NULL;
    FUZZ_CHECK(es_state_to_json(&s, &text) == 0);
    FUZZ_CHECK(es_state_from_json(&cfg, text, &t, &d) == 0);
    FUZZ_CHECK(memcmp(&s.best, &t.best, sizeof(double)) == 0);
    FUZZ_CHECK(s.wait == t.wait && s.best_epoch == t.best_epoch &&
               s.stopped_epoch == t.stopped_epoch && s.stopped == t.stopped &&
               s.has_best_weights == t.has_best_weights);
    free(text);
}

static void rlrop_case(const char *json)
{
    struct rlrop_state s, t;
    struct diag d = {{0}, {0}};
    if (rlrop_state_from_json(json, &s, &d) < 0)
        return;
    char *text = NULL;
    FUZZ_CHECK(rlrop_state_to_json(&s, &text) == 0);
    FUZZ_CHECK(rlrop_state_from_json(text, &t, &d) == 0);
    FUZZ_CHECK(memcmp(&s.best, &t.best, sizeof(double)) == 0);
    FUZZ_CHECK(s.wait == t.wait && s.cooldown_counter == t.cooldown_counter);
    free(text);
}

static void schedule_case(const char *json)
{
    struct lr_schedule s, t;
    struct diag d = {{0}, {0}};
    if (lr_schedule_parse_json(&s, json, &d) < 0)
        return;
    static const int64_t steps[] = {0, 1, 2, 7, 100, 12345, 1000000000};
    char *text = lr_schedule_to_json(&s);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(lr_schedule_parse_json(&t, text, &d) == 0);
    char *again = lr_schedule_to_json(&t);
    FUZZ_CHECK(again != NULL && strcmp(text, again) == 0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        double a = lr_schedule_at(&s, steps[i]), b = lr_schedule_at(&t, steps[i]);
        FUZZ_CHECK(memcmp(&a, &b, sizeof(double)) == 0 || (a != a && b != b));
    }
    free(text);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *json = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0: es_case(json); break;
    case 1: rlrop_case(json); break;
    default: schedule_case(json); break;
    }
    free(json);
    return 0;
}
