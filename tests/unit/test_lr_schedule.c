/* test_lr_schedule.c - Keras 3 learning-rate schedules: values at chosen
 * steps against the formulas of keras/src/optimizers/schedules/
 * learning_rate_schedule.py evaluated by hand in Python doubles (the numbers
 * below), parsing of keras.optimizers.schedules.serialize() JSON with its
 * errors, printing it back, and an optimizer stepping with a schedule. */
#include <errno.h>
#include <stdlib.h>

#include "lr_schedule.h"
#include "optimizer.h"
#include "test.h"

struct point {
    int64_t step;
    double lr;
};

static void check_points(const char *json, const struct point *pts, int n)
{
    struct lr_schedule s;
    struct diag d = {{0}, {0}};
    int r = lr_schedule_parse_json(&s, json, &d);
    CHECK_MSG(r == 0, "%s: %s: %s", json, d.field, d.message);
    if (r < 0)
        return;
    for (int i = 0; i < n; i++) {
        double got = lr_schedule_at(&s, pts[i].step);
        CHECK_MSG(fabs(got - pts[i].lr) <= 1e-14 * fabs(pts[i].lr) + 1e-18,
                  "%s step %lld: %.17g, want %.17g", lr_schedule_class_name(&s),
                  (long long)pts[i].step, got, pts[i].lr);
    }
    /* printing and parsing back gives the same schedule */
    char *text = lr_schedule_to_json(&s);
    CHECK(text != NULL);
    struct lr_schedule t;
    r = text ? lr_schedule_parse_json(&t, text, &d) : -1;
    CHECK_MSG(r == 0, "%s: %s: %s", text, d.field, d.message);
    if (r == 0)
        for (int i = 0; i < n; i++)
            CHECK(lr_schedule_at(&t, pts[i].step) == lr_schedule_at(&s, pts[i].step));
    free(text);
}

#define SCHED(cls, cfg) \
    "{\"module\": \"keras.optimizers.schedules\", \"class_name\": \"" cls "\", \"config\": " cfg \
    ", \"registered_name\": null}"
#define N(a) ((int)(sizeof(a) / sizeof(a[0])))

static void test_values(void)
{
    static const struct point exp_[] = {{0, 0.1}, {5, 0.07071067811865477}, {10, 0.05},
                                        {25, 0.01767766952966369}};
    check_points(SCHED("ExponentialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, "
                                           "\"decay_rate\": 0.5, \"staircase\": false, "
                                           "\"name\": \"ExponentialDecay\"}"),
                 exp_, N(exp_));
    static const struct point exp_stair[] = {{0, 0.1}, {9, 0.1}, {10, 0.05}, {25, 0.025}};
    check_points("{\"class_name\": \"ExponentialDecay\", \"config\": {\"initial_learning_rate\": "
                 "0.1, \"decay_steps\": 10, \"decay_rate\": 0.5, \"staircase\": true}}",
                 exp_stair, N(exp_stair));
    static const struct point pw[] = {{0, 1.0}, {5, 1.0}, {6, 0.5}, {10, 0.5}, {11, 0.1},
                                      {1000, 0.1}};
    check_points(SCHED("PiecewiseConstantDecay",
                       "{\"boundaries\": [5, 10], \"values\": [1.0, 0.5, 0.1], \"name\": null}"),
                 pw, N(pw));
    static const struct point inv[] = {{0, 0.1}, {3, 0.07272727272727274}, {8, 0.05}};
    check_points(SCHED("InverseTimeDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 4, "
                                           "\"decay_rate\": 0.5}"),
                 inv, N(inv));
    static const struct point inv_stair[] = {{3, 0.1}, {4, 0.06666666666666667}, {9, 0.05}};
    check_points(SCHED("InverseTimeDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 4, "
                                           "\"decay_rate\": 0.5, \"staircase\": true}"),
                 inv_stair, N(inv_stair));
    static const struct point poly[] = {{0, 0.1}, {3, 0.08529940238806681}, {10, 0.01},
                                        {20, 0.01}};
    check_points(SCHED("PolynomialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, "
                                          "\"end_learning_rate\": 0.01, \"power\": 0.5}"),
                 poly, N(poly));
    static const struct point poly_cycle[] = {{0, 0.1}, {3, 0.08529940238806681}, {10, 0.01},
                                              {13, 0.06324471804789655}, {20, 0.01}};
    check_points(SCHED("PolynomialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, "
                                          "\"end_learning_rate\": 0.01, \"power\": 0.5, "
                                          "\"cycle\": true}"),
                 poly_cycle, N(poly_cycle));
    static const struct point cos_[] = {{0, 0.1}, {3, 0.08145033635316129},
                                        {10, 0.010000000000000002}, {50, 0.010000000000000002}};
    check_points(SCHED("CosineDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, "
                                      "\"alpha\": 0.1, \"name\": \"CosineDecay\", "
                                      "\"warmup_target\": null, \"warmup_steps\": 0}"),
                 cos_, N(cos_));
    static const struct point cos_warm[] = {{0, 0.0}, {2, 0.04000000000000001}, {5, 0.1},
                                            {8, 0.08145033635316129}, {15, 0.010000000000000002},
                                            {100, 0.010000000000000002}};
    check_points(SCHED("CosineDecay", "{\"initial_learning_rate\": 0.0, \"decay_steps\": 10, "
                                      "\"alpha\": 0.1, \"warmup_target\": 0.1, \"warmup_steps\": 5}"),
                 cos_warm, N(cos_warm));
    static const struct point cdr[] = {{0, 0.1}, {2, 0.05}, {4, 0.05}, {5, 0.04809698831278217},
                                       {12, 0.025}, {13, 0.024759816005040382}};
    check_points(SCHED("CosineDecayRestarts", "{\"initial_learning_rate\": 0.1, "
                                              "\"first_decay_steps\": 4, \"t_mul\": 2.0, "
                                              "\"m_mul\": 0.5, \"alpha\": 0.0, \"name\": \"SGDRDecay\"}"),
                 cdr, N(cdr));
    static const struct point cdr1[] = {{0, 0.1}, {3, 0.023180194846605367}, {4, 0.1},
                                        {6, 0.05500000000000001}};
    check_points(SCHED("CosineDecayRestarts", "{\"initial_learning_rate\": 0.1, "
                                              "\"first_decay_steps\": 4, \"t_mul\": 1.0, "
                                              "\"m_mul\": 1.0, \"alpha\": 0.1}"),
                 cdr1, N(cdr1));
}

static void test_rejections(void)
{
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[]", ""},
        {"{\"class_name\": \"ExponentialDecay\"}", "/config"},
        {"{\"config\": {}}", "/class_name"},
        {"{\"class_name\": \"StepDecay\", \"config\": {}}", "/class_name"},
        {"{\"class_name\": \"ExponentialDecay\", \"config\": {}, \"extra\": 1}", "/extra"},
        {"{\"module\": \"keras.callbacks\", \"class_name\": \"ExponentialDecay\", \"config\": {}}",
         "/module"},
        {SCHED("ExponentialDecay", "{\"initial_learning_rate\": 0.1, \"decay_rate\": 0.5}"),
         "/config/decay_steps"},
        {SCHED("ExponentialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 0, "
                                   "\"decay_rate\": 0.5}"),
         "/config/decay_steps"},
        {SCHED("ExponentialDecay", "{\"initial_learning_rate\": \"0.1\", \"decay_steps\": 1, "
                                   "\"decay_rate\": 0.5}"),
         "/config/initial_learning_rate"},
        {SCHED("ExponentialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 1, "
                                   "\"decay_rate\": 0.5, \"alpha\": 0}"),
         "/config/alpha"},
        {SCHED("ExponentialDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 1, "
                                   "\"decay_rate\": 0.5, \"staircase\": 1}"),
         "/config/staircase"},
        {SCHED("PiecewiseConstantDecay", "{\"boundaries\": [5, 10], \"values\": [1.0, 0.5]}"),
         "/config/values"},
        {SCHED("PiecewiseConstantDecay", "{\"boundaries\": [10, 5], \"values\": [1, 2, 3]}"),
         "/config/boundaries"},
        {SCHED("CosineDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, "
                              "\"warmup_target\": 0.2}"),
         "/config/warmup_steps"},
        {SCHED("CosineDecayRestarts", "{\"initial_learning_rate\": 0.1, \"first_decay_steps\": -1}"),
         "/config/first_decay_steps"},
        {SCHED("CosineDecay", "{\"initial_learning_rate\": 0.1, \"decay_steps\": 10, \"name\": 5}"),
         "/config/name"},
    };
    for (int i = 0; i < N(bad); i++) {
        struct lr_schedule s = {.kind = LR_SCHEDULE_NONE};
        struct diag d = {{0}, {0}};
        CHECK_MSG(lr_schedule_parse_json(&s, bad[i].json, &d) == -EINVAL, "%s", bad[i].json);
        CHECK_MSG(strcmp(d.field, bad[i].field) == 0, "%s: field '%s', want '%s' (%s)",
                  bad[i].json, d.field, bad[i].field, d.message);
        CHECK(s.kind == LR_SCHEDULE_NONE);
    }
}

/* SGD with ExponentialDecay: each step uses schedule(iterations). */
static void test_optimizer_uses_schedule(void)
{
    struct model_spec ms = {0};
    struct diag d = {{0}, {0}};
    int shape[3] = {2, 2, 1};
    CHECK_INT_EQ(model_spec_builtin(&ms, "mlp", shape, 3, &d), 0);
    struct model *m = NULL;
    int r = model_create(&m, &ms, 2, 1, &d);
    model_spec_free(&ms);
    CHECK_MSG(r == 0, "%s", d.message);
    if (r < 0)
        return;
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    CHECK_INT_EQ(lr_schedule_parse_json(&c.schedule,
                                        SCHED("ExponentialDecay",
                                              "{\"initial_learning_rate\": 0.1, \"decay_steps\": 2, "
                                              "\"decay_rate\": 0.5}"),
                                        &d),
                 0);
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, m, &d), 0);
    if (!opt) {
        model_free(m);
        return;
    }
    for (size_t i = 0; i < m->n_params; i++)
        m->grads[i] = 1.0f;
    for (int t = 0; t < 3; t++) {
        double want = 0.1 * pow(0.5, t / 2.0);
        CHECK(optimizer_current_lr(opt) == want);
        float before = m->params[0];
        optimizer_step(opt, m);
        CHECK(m->params[0] == before - (float)want * 1.0f);
    }
    char *j = optimizer_to_keras_json(opt);
    CHECK(j && strstr(j, "\"learning_rate\": {\"module\":\"keras.optimizers.schedules\","
                         "\"class_name\":\"ExponentialDecay\""));
    free(j);
    optimizer_free(opt);
    model_free(m);
}

int main(void)
{
    TEST_RUN(test_values);
    TEST_RUN(test_rejections);
    TEST_RUN(test_optimizer_uses_schedule);
    return TEST_EXIT();
}
