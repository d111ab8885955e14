/* The Prometheus registry: exposition text of counters, gauges and
 * histograms (cumulative buckets, _sum, _count), label escaping, and the
 * cardinality bound folding extra label sets into "other". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/store.h"

static char *render(store_metrics_t *m)
{
    core_buf_t b;
    core_buf_init(&b, 64 << 20);
    assert_int_equal(store_metrics_render(m, &b), 0);
    return core_buf_steal(&b, NULL);
}

static void test_counter_and_histogram(void **state)
{
    store_metrics_t *m = store_metrics_new();
    const char *web[] = {"web", "booking"};
    store_metrics_add(m, STORE_M_TURNS, web, 1);
    store_metrics_add(m, STORE_M_TURNS, web, 2);
    store_metrics_observe(m, STORE_M_TURN_LATENCY, web, 0.004);
    store_metrics_observe(m, STORE_M_TURN_LATENCY, web, 0.2);
    store_metrics_observe(m, STORE_M_TURN_LATENCY, web, 30);
    store_metrics_set(m, STORE_M_STORE_QUEUE, NULL, 7);
    char *text = render(m);
    assert_non_null(strstr(text, "# TYPE chorus_turns_total counter\n"));
    assert_non_null(strstr(text, "chorus_turns_total{channel=\"web\",flow=\"booking\"} 3\n"));
    assert_non_null(strstr(text, "# TYPE chorus_turn_latency_seconds histogram\n"));
    assert_non_null(strstr(
        text,
        "chorus_turn_latency_seconds_bucket{channel=\"web\",flow=\"booking\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(
        text,
        "chorus_turn_latency_seconds_bucket{channel=\"web\",flow=\"booking\",le=\"0.25\"} 2\n"));
    assert_non_null(strstr(
        text,
        "chorus_turn_latency_seconds_bucket{channel=\"web\",flow=\"booking\",le=\"10\"} 2\n"));
    assert_non_null(strstr(
        text,
        "chorus_turn_latency_seconds_bucket{channel=\"web\",flow=\"booking\",le=\"+Inf\"} 3\n"));
    assert_non_null(
        strstr(text, "chorus_turn_latency_seconds_count{channel=\"web\",flow=\"booking\"} 3\n"));
    assert_non_null(
        strstr(text, "chorus_turn_latency_seconds_sum{channel=\"web\",flow=\"booking\"} 30.204"));
    assert_non_null(strstr(text, "chorus_store_queue_batches 7\n"));
    assert_non_null(strstr(text, "chorus_store_healthy 0\n")); /* no store attached */
    free(text);
    store_metrics_free(m);
}

static void test_escaping_and_bound(void **state)
{
    store_metrics_t *m = store_metrics_new();
    const char *odd[] = {"we\"b", "a\\b\nc"};
    store_metrics_add(m, STORE_M_OOS, odd, 1);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "flow%d", i);
        const char *l[] = {"sms", name};
        store_metrics_add(m, STORE_M_TURNS, l, 1);
    }
    char *text = render(m);
    assert_non_null(
        strstr(text, "chorus_oos_turns_total{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\"} 1\n"));
    /* 255 real series, the other 45 folded into one */
    assert_non_null(strstr(text, "chorus_turns_total{channel=\"sms\",flow=\"flow254\"} 1\n"));
    assert_null(strstr(text, "flow=\"flow255\""));
    assert_non_null(strstr(text, "chorus_turns_total{channel=\"other\",flow=\"other\"} 45\n"));
    free(text);
    store_metrics_free(m);
}

static void test_limit(void **state)
{
    store_metrics_t *m = store_metrics_new();
    core_buf_t b;
    core_buf_init(&b, 64);
    assert_int_equal(store_metrics_render(m, &b), CORE_ERR_LIMIT);
    core_buf_dispose(&b);
    store_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_histogram),
        cmocka_unit_test(test_escaping_and_bound),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
