/* Rollout statistics (rollout.h): the two-proportion z-test against values
 * worked out by hand (docs/metrics.md), and the guard's verdicts at the edge
 * of each margin and of the minimum sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/rollout.h"

#define NEAR(a, b, eps) assert_true(fabs((a) - (b)) < (eps))

static void test_ztest_known_values(void **state)
{
    double z, p;
    /* 50/100 vs 65/100: pooled 0.575, se 0.069911, z 2.14560, p 0.031905 */
    assert_int_equal(rollout_ztest(50, 100, 65, 100, &z, &p), 0);
    NEAR(z, 2.1455956, 1e-6);
    NEAR(p, 0.0319053, 1e-6);
    /* 200/1000 vs 230/1000: z 1.63287, p 0.102496 (not significant) */
    assert_int_equal(rollout_ztest(200, 1000, 230, 1000, &z, &p), 0);
    NEAR(z, 1.6328722, 1e-6);
    NEAR(p, 0.1024959, 1e-6);
    /* a worse candidate: 30/40 vs 10/40, z = -sqrt(20) */
    assert_int_equal(rollout_ztest(30, 40, 10, 40, &z, &p), 0);
    NEAR(z, -4.4721360, 1e-6);
    NEAR(p, 7.744216e-6, 1e-10);
    /* equal proportions: z 0, p 1 */
    assert_int_equal(rollout_ztest(5, 10, 5, 10, &z, &p), 0);
    NEAR(z, 0, 1e-12);
    NEAR(p, 1, 1e-12);
}

static void test_ztest_undefined(void **state)
{
    double z, p;
    assert_int_equal(rollout_ztest(0, 0, 3, 10, &z, &p), -1); /* empty sample */
    assert_true(isnan(p));
    assert_int_equal(rollout_ztest(0, 10, 0, 10, &z, &p), -1);  /* pooled 0 */
    assert_int_equal(rollout_ztest(7, 7, 9, 9, &z, &p), -1);    /* pooled 1 */
    assert_int_equal(rollout_ztest(11, 10, 1, 10, &z, &p), -1); /* x > n */
}

static rollout_kpis_t healthy(int64_t n)
{
    rollout_kpis_t k = {.conversations = n,
                        .ended = n,
                        .contained = n / 2,
                        .escalated = n / 10,
                        .turns_out = 2 * n,
                        .failed_turns = 0,
                        .p95_ms = 100};
    return k;
}

static const rollout_guard_t guard = {.min_sample = 100,
                                      .max_error_rate_delta = 0.05,
                                      .max_escalation_rate_delta = 0.10,
                                      .max_p95_latency_ratio = 1.5,
                                      .p95_latency_slack_ms = 20};

static rollout_verdict_t eval(const rollout_kpis_t *c, const rollout_kpis_t *k, char *why)
{
    return rollout_guard_eval(c, k, &guard, why, 256);
}

static void test_guard_minimum_sample(void **state)
{
    char why[256];
    rollout_kpis_t c = healthy(100), k = healthy(99);
    k.failed_turns = k.turns_out; /* hopeless, but one conversation short */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_WAIT);
    assert_non_null(strstr(why, "99 candidate"));
    k.conversations = 100;
    assert_int_equal(eval(&c, &k, why), ROLLOUT_STOP);
    c.conversations = 99; /* the control's sample counts too */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_WAIT);
}

static void test_guard_error_rate_edge(void **state)
{
    char why[256];
    rollout_kpis_t c = healthy(100), k = healthy(100);
    c.failed_turns = 10; /* 10/200 = 0.05 */
    k.failed_turns = 20; /* 20/200 = 0.10: delta exactly the margin */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
    k.failed_turns = 21; /* 0.105: over */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_STOP);
    assert_non_null(strstr(why, "error rate 0.105 vs control 0.050"));
    k.turns_out = 0; /* undefined rate: not judged */
    k.failed_turns = 0;
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
}

static void test_guard_escalation_edge(void **state)
{
    char why[256];
    rollout_kpis_t c = healthy(100), k = healthy(100);
    k.escalated = 20; /* 0.20 vs 0.10: exactly +0.10 */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
    k.escalated = 21;
    assert_int_equal(eval(&c, &k, why), ROLLOUT_STOP);
    assert_non_null(strstr(why, "escalation rate 0.210"));
    c.ended = 0; /* nothing ended in the control: not judged */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
}

static void test_guard_latency_edge(void **state)
{
    char why[256];
    rollout_kpis_t c = healthy(100), k = healthy(100);
    k.p95_ms = 150; /* exactly 1.5x */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
    assert_non_null(strstr(why, "within every margin"));
    k.p95_ms = 150.1;
    assert_int_equal(eval(&c, &k, why), ROLLOUT_STOP);
    assert_non_null(strstr(why, "p95 latency 150.1 ms vs control 100.0 ms"));
    c.p95_ms = 4, k.p95_ms = 24; /* 6x, but only 20 ms slower: the slack */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
    k.p95_ms = 24.5;
    assert_int_equal(eval(&c, &k, why), ROLLOUT_STOP);
    c.p95_ms = -1; /* no bot turns measured */
    assert_int_equal(eval(&c, &k, why), ROLLOUT_CONTINUE);
}

static void test_kpis_json(void **state)
{
    rollout_kpis_t c = healthy(40), k = healthy(40);
    c.contained = 30, c.ended = 40, k.contained = 10, k.ended = 40;
    c.csat_responses = 4, c.csat_satisfied = 3, c.csat_sum = 17;
    json_t *o = rollout_kpis_json(&c);
    NEAR(json_real_value(json_object_get(o, "containment_rate")), 0.75, 1e-12);
    NEAR(json_real_value(json_object_get(o, "csat_avg")), 4.25, 1e-12);
    NEAR(json_real_value(json_object_get(o, "csat_satisfied_share")), 0.75, 1e-12);
    json_decref(o);
    o = rollout_kpis_json(&k); /* no CSAT: nulls, not zeros */
    assert_true(json_is_null(json_object_get(o, "csat_avg")));
    assert_true(json_is_null(json_object_get(o, "csat_satisfied_share")));
    json_decref(o);
    json_t *t = rollout_tests_json(&c, &k);
    NEAR(json_real_value(json_object_get(json_object_get(t, "containment"), "p_value")),
         7.744216e-6, 1e-10);
    assert_true(json_is_null(json_object_get(json_object_get(t, "csat_satisfied"), "p_value")));
    json_decref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ztest_known_values),
        cmocka_unit_test(test_ztest_undefined),
        cmocka_unit_test(test_guard_minimum_sample),
        cmocka_unit_test(test_guard_error_rate_edge),
        cmocka_unit_test(test_guard_escalation_edge),
        cmocka_unit_test(test_guard_latency_edge),
        cmocka_unit_test(test_kpis_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
