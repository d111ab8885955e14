/* The Prometheus registry: exposition text of counters, gauges and
 * histograms (cumulative buckets, _sum, _count), label escaping, and the
 * cardinality bound folding extra label sets into "other"; whole family
 * blocks byte for byte, and a render racing the writers' updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

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

/* The block of family name: its HELP line up to the next family's. */
static char *block(const char *text, const char *name)
{
    char head[128];
    snprintf(head, sizeof(head), "# HELP %s ", name);
    const char *p = strstr(text, head);
    assert_non_null(p);
    const char *e = strstr(p + 1, "\n# HELP ");
    size_t n = e != NULL ? (size_t)(e - p) + 1 : strlen(p);
    char *b = malloc(n + 1);
    memcpy(b, p, n);
    b[n] = '\0';
    return b;
}

static void test_exact_text(void **state)
{
    store_metrics_t *m = store_metrics_new();
    const char *odd[] = {"we\"b", "a\\b\nc"}, *plain[] = {"sms", "faq"};
    store_metrics_observe(m, STORE_M_CSAT, odd, 2);
    store_metrics_observe(m, STORE_M_CSAT, odd, 4.5);
    store_metrics_observe(m, STORE_M_CSAT, plain, 9);
    const char *why[] = {"bu\\sy\"\n"};
    store_metrics_add(m, STORE_M_STORE_REJECTED, why, 2);
    store_metrics_observe(m, STORE_M_STORE_GROUP, NULL, 3);
    store_metrics_set(m, STORE_M_DRIFT_PSI, NULL, 0.1);
    char *text = render(m);
    char *b = block(text, "chorus_csat_score");
    assert_string_equal(
        b, "# HELP chorus_csat_score CSAT answers (1-5).\n"
           "# TYPE chorus_csat_score histogram\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"1\"} 0\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"2\"} 1\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"3\"} 1\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"4\"} 1\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"5\"} 2\n"
           "chorus_csat_score_bucket{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\",le=\"+Inf\"} 2\n"
           "chorus_csat_score_sum{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\"} 6.5\n"
           "chorus_csat_score_count{channel=\"we\\\"b\",flow=\"a\\\\b\\nc\"} 2\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"1\"} 0\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"2\"} 0\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"3\"} 0\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"4\"} 0\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"5\"} 0\n"
           "chorus_csat_score_bucket{channel=\"sms\",flow=\"faq\",le=\"+Inf\"} 1\n"
           "chorus_csat_score_sum{channel=\"sms\",flow=\"faq\"} 9\n"
           "chorus_csat_score_count{channel=\"sms\",flow=\"faq\"} 1\n");
    free(b);
    b = block(text, "chorus_store_rejected_total");
    assert_string_equal(b, "# HELP chorus_store_rejected_total Batches refused (busy) or not "
                           "written (failed).\n"
                           "# TYPE chorus_store_rejected_total counter\n"
                           "chorus_store_rejected_total{reason=\"bu\\\\sy\\\"\\n\"} 2\n");
    free(b);
    b = block(text, "chorus_store_group_batches");
    assert_string_equal(b, "# HELP chorus_store_group_batches Batches per group commit.\n"
                           "# TYPE chorus_store_group_batches histogram\n"
                           "chorus_store_group_batches_bucket{le=\"1\"} 0\n"
                           "chorus_store_group_batches_bucket{le=\"2\"} 0\n"
                           "chorus_store_group_batches_bucket{le=\"4\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"8\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"16\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"32\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"64\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"128\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"256\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"512\"} 1\n"
                           "chorus_store_group_batches_bucket{le=\"+Inf\"} 1\n"
                           "chorus_store_group_batches_sum 3\n"
                           "chorus_store_group_batches_count 1\n");
    free(b);
    b = block(text, "chorus_drift_psi");
    assert_non_null(strstr(b, "\nchorus_drift_psi 0.10000000000000001\n"));
    free(b);
    /* A family with no label set yet shows its HELP and TYPE only. */
    b = block(text, "chorus_turns_total");
    assert_string_equal(b, "# HELP chorus_turns_total User turns received.\n"
                           "# TYPE chorus_turns_total counter\n");
    free(b);
    free(text);
    store_metrics_free(m);
}

typedef struct {
    store_metrics_t *m;
    int n;
} writer_t;

static void writer(void *arg)
{
    writer_t *w = arg;
    char flow[32];
    for (int i = 0; i < w->n; i++) {
        snprintf(flow, sizeof(flow), "f\"%d", i % 300);
        const char *l[] = {"web", flow};
        store_metrics_observe(w->m, STORE_M_TURN_LATENCY, l, (double)(i % 7) * 0.01);
        store_metrics_add(w->m, STORE_M_TURNS, l, 1);
    }
}

/* Renders while another thread adds label sets and observations: each
 * render is a consistent copy (a series' +Inf bucket equals its count) and
 * the series only grow from one render to the next. */
static void test_render_while_updating(void **state)
{
    store_metrics_t *m = store_metrics_new();
    writer_t w = {m, 200000};
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, writer, &w), 0);
    int last = 0;
    for (int r = 0; r < 40; r++) {
        char *text = render(m);
        int series = 0;
        const char *inf_tag = "le=\"+Inf\"} ";
        for (const char *p = strstr(text, inf_tag); p != NULL; p = strstr(p, inf_tag)) {
            p += strlen(inf_tag);
            unsigned long long inf = strtoull(p, NULL, 10);
            const char *c = strstr(p, "_count"), *e = c ? strchr(c, '\n') : NULL;
            assert_non_null(e);
            while (e[-1] != ' ')
                e--;
            assert_int_equal(strtoull(e, NULL, 10), inf);
            series++;
        }
        assert_true(series >= last);
        last = series;
        free(text);
    }
    uv_thread_join(&th);
    char *text = render(m);
    assert_non_null(strstr(text, "chorus_turns_total{channel=\"other\",flow=\"other\"} "));
    assert_non_null(strstr(text, "chorus_turns_total{channel=\"web\",flow=\"f\\\"254\"} "));
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
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_render_while_updating),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
