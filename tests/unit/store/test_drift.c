/* Drift comparison (store_drift_compare): an unchanged window raises
 * nothing, a shifted intent mix raises the distribution alert and names the
 * intents that moved, rate signals fire in their bad direction only, and too
 * little data never alerts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/store.h"

static const store_drift_limits_t lim = {.recent_s = 3600,
                                         .baseline_s = 86400,
                                         .psi = 0.25,
                                         .rate_delta = 0.10,
                                         .confidence_drop = 0.10,
                                         .min_turns = 100};

/* A window: intents as "name=count,..." and the rate figures. */
static json_t *window(const char *intents, long turns, long oos, long fallbacks, double conf,
                      long ended, long contained)
{
    json_t *in = json_object();
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", intents);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        *eq = '\0';
        json_object_set_new(in, p, json_integer(strtol(eq + 1, NULL, 10)));
    }
    return json_pack("{s:o,s:i,s:i,s:i,s:f,s:i,s:i,s:i}", "intents", in, "turns", (int)turns, "oos",
                     (int)oos, "fallbacks", (int)fallbacks, "confidence_sum", conf * (double)turns,
                     "confidence_n", (int)turns, "ended", (int)ended, "contained", (int)contained);
}

static int has_signal(const json_t *r, const char *name)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r, "alerts"), i,
                       a) if (strcmp(json_string_value(json_object_get(a, "signal")), name) ==
                              0) return 1;
    return 0;
}

static void test_unchanged_is_quiet(void **state)
{
    (void)state;
    json_t *b = window("booking=500,refund=300,baggage=200", 1000, 50, 40, 0.8, 400, 300);
    json_t *r = window("booking=52,refund=29,baggage=21", 102, 5, 4, 0.79, 40, 31);
    json_t *rep = store_drift_compare(b, r, &lim);
    assert_false(json_is_true(json_object_get(rep, "drift")));
    assert_true(json_is_true(json_object_get(rep, "enough_data")));
    assert_true(json_number_value(json_object_get(json_object_get(rep, "distribution"), "psi")) <
                0.05);
    json_decref(rep);
    json_decref(b);
    json_decref(r);
}

static void test_shift_is_caught_and_named(void **state)
{
    (void)state;
    json_t *b = window("booking=500,refund=300,baggage=200", 1000, 50, 40, 0.8, 400, 300);
    json_t *r =
        window("booking=100,refund=100,baggage=100,covid_rules=400", 700, 50, 30, 0.8, 400, 300);
    json_t *rep = store_drift_compare(b, r, &lim);
    assert_true(json_is_true(json_object_get(rep, "drift")));
    assert_true(has_signal(rep, "intent_distribution"));
    const json_t *moved = json_object_get(json_object_get(rep, "distribution"), "moved");
    assert_string_equal(json_string_value(json_object_get(json_array_get(moved, 0), "intent")),
                        "covid_rules");
    json_decref(rep);
    json_decref(b);
    json_decref(r);
}

static void test_rates_alert_in_the_bad_direction_only(void **state)
{
    (void)state;
    json_t *b = window("booking=1000", 1000, 50, 40, 0.8, 400, 300);
    json_t *worse = window("booking=1000", 1000, 250, 40, 0.6, 400, 200);
    json_t *better = window("booking=1000", 1000, 0, 0, 0.95, 400, 390);
    json_t *rep = store_drift_compare(b, worse, &lim);
    assert_true(has_signal(rep, "oos_rate"));
    assert_true(has_signal(rep, "mean_confidence"));
    assert_true(has_signal(rep, "containment_rate"));
    assert_false(has_signal(rep, "fallback_rate"));
    json_decref(rep);
    rep = store_drift_compare(b, better, &lim);
    assert_false(json_is_true(json_object_get(rep, "drift")));
    json_decref(rep);
    json_decref(b);
    json_decref(worse);
    json_decref(better);
}

static void test_too_little_data_never_alerts(void **state)
{
    (void)state;
    json_t *b = window("booking=1000", 1000, 50, 40, 0.8, 400, 300);
    json_t *r = window("covid_rules=50", 50, 40, 40, 0.2, 10, 0);
    json_t *rep = store_drift_compare(b, r, &lim);
    assert_false(json_is_true(json_object_get(rep, "drift")));
    assert_false(json_is_true(json_object_get(rep, "enough_data")));
    assert_int_equal(json_array_size(json_object_get(rep, "alerts")), 0);
    json_decref(rep);
    json_decref(b);
    json_decref(r);
}

/* A window with nothing to divide by (no conversation ended, no turn
 * routed) has no rate: shown null and never an alert, where it read as a
 * fall to 0. */
static void test_undefined_rates_are_not_judged(void **state)
{
    (void)state;
    json_t *b = window("booking=1000", 1000, 50, 40, 0.8, 400, 400);
    json_t *r = window("booking=1000", 1000, 50, 40, 0.8, 0, 0);
    json_object_set_new(r, "confidence_sum", json_real(0));
    json_object_set_new(r, "confidence_n", json_integer(0));
    json_t *rep = store_drift_compare(b, r, &lim);
    assert_false(json_is_true(json_object_get(rep, "drift")));
    const json_t *rates = json_object_get(rep, "rates");
    const json_t *c = json_object_get(rates, "containment_rate");
    assert_true(json_number_value(json_object_get(c, "baseline")) == 1.0);
    assert_true(json_is_null(json_object_get(c, "recent")));
    assert_true(json_is_null(json_object_get(c, "change")));
    assert_true(json_is_null(json_object_get(json_object_get(rates, "mean_confidence"), "recent")));
    assert_true(json_is_real(json_object_get(json_object_get(rates, "oos_rate"), "recent")));
    json_decref(rep);
    json_decref(b);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_is_quiet),
        cmocka_unit_test(test_shift_is_caught_and_named),
        cmocka_unit_test(test_undefined_rates_are_not_judged),
        cmocka_unit_test(test_rates_alert_in_the_bad_direction_only),
        cmocka_unit_test(test_too_little_data_never_alerts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
