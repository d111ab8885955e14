/* KPI definitions (docs/metrics.md) on the hand-built fixture of
 * store_fixture.h, whose answers were worked out by hand:
 *   5 conversations, 4 ended: contained c1, escalated c2 (user_request) and
 *   c5 (low_confidence), abandoned c3; c4 still active.
 *   handle times 11 s, 2 s, 4 s, 3 s; user turns 2, 1, 1, 1.
 *   reply latencies 100..600 ms; one failed reply (c2, action).
 *   confidences .9 .3 .8 .6 .7 .5, one out of scope.
 *   labels: 3 of 4 right. CSAT 5 and 3. tokens 1100 in, 550 out. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>

#include <cmocka.h>

#include "unit/store/store_fixture.h"

static fx_t fx;
static store_db_t *db;

static int setup(void **state)
{
    core_err_t err = {0};
    if (fx_open(&fx, 100, 64, &err) != 0)
        return -1;
    int n = fx_load_kpi(&fx);
    fx_wait(&fx, n);
    if (fx.failed != 0)
        return -1;
    db = store_db_open(fx.path, &err);
    return db ? 0 : -1;
}

static int teardown(void **state)
{
    store_db_close(db);
    fx_close(&fx);
    return 0;
}

static json_t *report(int by, store_bucket_t bucket, int64_t from, int64_t to)
{
    store_report_query_t q = {.from_us = from,
                              .to_us = to,
                              .by = by,
                              .bucket = bucket,
                              .price_in_per_mtok = 1.0,
                              .price_out_per_mtok = 2.0,
                              .message_cost = 0.001,
                              .message_costs = "sms=0.01,voice=0.02"};
    core_err_t err = {0};
    json_t *out = NULL;
    assert_int_equal(store_db_report(db, &q, &out, &err), 0);
    assert_non_null(out);
    return out;
}

static double num(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    assert_non_null(v);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

#define EQ(row, key, want) assert_true(fabs(num(row, key) - (want)) < 1e-9)

static json_t *row_where(json_t *r, const char *key, const char *value)
{
    json_t *rows = json_object_get(r, "rows"), *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, key)), value) == 0)
            return row;
    }
    fail_msg("no row with %s=%s", key, value);
    return NULL;
}

static void test_totals(void **state)
{
    json_t *r = report(0, STORE_BUCKET_NONE, 0, 0);
    json_t *t = json_object_get(r, "total");
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 0);
    EQ(t, "conversations", 5);
    EQ(t, "ended", 4);
    EQ(t, "containment_rate", 0.25);
    EQ(t, "escalation_rate", 0.5);
    EQ(t, "abandonment_rate", 0.25);
    json_t *reasons = json_object_get(t, "escalations_by_reason");
    assert_int_equal(json_integer_value(json_object_get(reasons, "user_request")), 1);
    assert_int_equal(json_integer_value(json_object_get(reasons, "low_confidence")), 1);
    assert_int_equal(json_object_size(reasons), 2);
    EQ(t, "avg_handle_time_s", 5.0);
    EQ(t, "turns_per_conversation", 1.25);
    EQ(t, "turns_in", 6);
    EQ(t, "turns_out", 6);
    EQ(t, "latency_p50_ms", 300);
    EQ(t, "latency_p95_ms", 600);
    EQ(t, "latency_p99_ms", 600);
    EQ(t, "failed_turns", 1);
    EQ(t, "failure_rate", 1.0 / 6);
    EQ(t, "avg_confidence", 3.8 / 6);
    EQ(t, "oos_rate", 1.0 / 6);
    EQ(t, "labelled_turns", 4);
    EQ(t, "routing_accuracy", 0.75);
    EQ(t, "csat_avg", 4.0);
    EQ(t, "csat_responses", 2);
    EQ(t, "csat_response_rate", 0.5);
    EQ(t, "llm_tokens_in", 1100);
    EQ(t, "llm_tokens_out", 550);
    /* 1100 * 1/1e6 + 550 * 2/1e6 + 8 web messages * 0.001 + 4 sms * 0.01 */
    EQ(t, "cost", 0.0502);
    EQ(t, "cost_per_conversation", 0.0502 / 5);
    json_decref(r);
}

static void test_by_channel(void **state)
{
    json_t *r = report(STORE_BY_CHANNEL, STORE_BUCKET_NONE, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 2);
    json_t *web = row_where(r, "channel", "web"), *sms = row_where(r, "channel", "sms");
    EQ(web, "conversations", 3);
    EQ(web, "containment_rate", 1.0 / 3);
    EQ(web, "escalation_rate", 2.0 / 3);
    EQ(web, "abandonment_rate", 0);
    EQ(web, "latency_p50_ms", 200); /* 100 200 300 600: rank 2 */
    EQ(web, "latency_p95_ms", 600);
    EQ(web, "routing_accuracy", 2.0 / 3);
    EQ(web, "cost", 100e-6 + 100e-6 + 8 * 0.001);
    EQ(sms, "conversations", 2);
    EQ(sms, "ended", 1);
    EQ(sms, "abandonment_rate", 1.0);
    EQ(sms, "latency_p50_ms", 400);
    EQ(sms, "latency_p99_ms", 500);
    EQ(sms, "routing_accuracy", 1.0);
    EQ(sms, "avg_handle_time_s", 4.0);
    /* no CSAT answers on sms: the average is undefined, not 0 */
    assert_true(json_is_null(json_object_get(sms, "csat_avg")));
    EQ(sms, "csat_response_rate", 0);
    EQ(sms, "cost", 1000e-6 + 500 * 2e-6 + 4 * 0.01);
    json_decref(r);
}

static void test_by_flow_version_variant(void **state)
{
    json_t *r = report(STORE_BY_FLOW | STORE_BY_VERSION, STORE_BUCKET_NONE, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 3);
    json_t *row0 = json_array_get(json_object_get(r, "rows"), 0); /* sorted: booking v1 */
    assert_string_equal(json_string_value(json_object_get(row0, "flow")), "booking");
    assert_string_equal(json_string_value(json_object_get(row0, "version")), "v1");
    EQ(row0, "conversations", 2);
    EQ(row0, "containment_rate", 0.5);
    json_decref(r);
    r = report(STORE_BY_VARIANT, STORE_BUCKET_NONE, 0, 0);
    EQ(row_where(r, "variant", "A"), "conversations", 3);
    EQ(row_where(r, "variant", "B"), "escalation_rate", 1.0);
    EQ(row_where(r, "variant", ""), "conversations", 1);
    json_decref(r);
}

static void test_buckets(void **state)
{
    json_t *r = report(0, STORE_BUCKET_WEEK, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 2);
    EQ(row_where(r, "bucket", "2026-11-02"), "conversations", 4);
    EQ(row_where(r, "bucket", "2026-11-09"), "conversations", 1);
    json_decref(r);
    r = report(0, STORE_BUCKET_DAY, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 3);
    EQ(row_where(r, "bucket", "2026-11-03"), "escalation_rate", 0.5);
    json_decref(r);
    r = report(0, STORE_BUCKET_HOUR, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 5);
    EQ(row_where(r, "bucket", "2026-11-02T10:00Z"), "avg_handle_time_s", 11);
    json_decref(r);
    r = report(STORE_BY_CHANNEL, STORE_BUCKET_MONTH, 0, 0);
    assert_int_equal(json_array_size(json_object_get(r, "rows")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(r, "rows"), 0), "bucket")),
        "2026-11");
    json_decref(r);
}

static void test_window(void **state)
{
    int64_t from, to;
    core_err_t err;
    assert_int_equal(store_parse_time("2026-11-03", &from, &err), 0);
    assert_int_equal(store_parse_time("2026-11-04T00:00:00Z", &to, &err), 0);
    assert_int_equal(to - from, 24 * FX_H);
    json_t *r = report(0, STORE_BUCKET_NONE, from, to);
    json_t *t = json_object_get(r, "total");
    EQ(t, "conversations", 2); /* c3 and c5 */
    EQ(t, "abandonment_rate", 0.5);
    json_decref(r);
    /* an empty window has zero counts and null rates */
    r = report(0, STORE_BUCKET_NONE, 1, 2);
    t = json_object_get(r, "total");
    EQ(t, "conversations", 0);
    EQ(t, "turns_in", 0);
    assert_true(json_is_null(json_object_get(t, "containment_rate")));
    assert_true(json_is_null(json_object_get(t, "latency_p50_ms")));
    json_decref(r);
}

static void test_parse_errors(void **state)
{
    int by;
    store_bucket_t b;
    int64_t us;
    core_err_t err = {0};
    assert_int_equal(store_report_parse_by("channel,variant", &by, &err), 0);
    assert_int_equal(by, STORE_BY_CHANNEL | STORE_BY_VARIANT);
    assert_int_equal(store_report_parse_by("channel,colour", &by, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "\"colour\""));
    assert_int_equal(store_report_parse_bucket("fortnight", &b, &err), CORE_ERR_INVALID);
    assert_int_equal(store_report_parse_bucket("week", &b, &err), 0);
    assert_int_equal(b, STORE_BUCKET_WEEK);
    assert_int_equal(store_parse_time("yesterday", &us, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "yesterday"));
}

static void test_transcripts(void **state)
{
    core_err_t err = {0};
    json_t *out = NULL;
    store_list_query_t q = {.channel = "web", .limit = 10};
    assert_int_equal(store_db_conversations(db, &q, &out, &err), 0);
    json_t *list = json_object_get(out, "conversations");
    assert_int_equal(json_array_size(list), 3);
    /* newest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "c5");
    json_decref(out);
    assert_int_equal(store_db_transcript(db, "c1", &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "outcome")), "contained");
    json_t *turns = json_object_get(out, "turns");
    assert_int_equal(json_array_size(turns), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(turns, 2), "label")),
                        "oos");
    json_decref(out);
    assert_int_equal(store_db_transcript(db, "nope", &out, &err), CORE_ERR_NOT_FOUND);
}

typedef struct {
    int done, status;
    json_t *result;
} async_t;

static void on_json(int status, json_t *result, const char *errmsg, void *data)
{
    async_t *a = data;
    a->done = 1;
    a->status = status;
    a->result = result;
    assert_true(status == 0 || errmsg != NULL);
}

static json_t *wait_json(async_t *a, int want_status)
{
    while (!a->done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(a->status, want_status);
    return a->result;
}

/* The same queries on the thread pool, callbacks on the loop. */
static void test_async_reads(void **state)
{
    store_report_query_t q = {.by = STORE_BY_CHANNEL, .message_costs = "sms=1"};
    async_t a = {0};
    assert_int_equal(store_report_async(fx.store, &q, on_json, &a), 0);
    json_t *r = wait_json(&a, 0);
    EQ(json_object_get(r, "total"), "conversations", 5);
    EQ(row_where(r, "channel", "sms"), "cost", 4.0); /* 4 sms messages at 1 */
    json_decref(r);
    store_list_query_t lq = {.outcome = "escalated", .limit = 5};
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_conversations_async(fx.store, &lq, on_json, &a), 0);
    r = wait_json(&a, 0);
    assert_int_equal(json_array_size(json_object_get(r, "conversations")), 2);
    json_decref(r);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_transcript_async(fx.store, "c3", on_json, &a), 0);
    r = wait_json(&a, 0);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "abandoned");
    json_decref(r);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_transcript_async(fx.store, "zz", on_json, &a), 0);
    assert_null(wait_json(&a, CORE_ERR_NOT_FOUND));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_by_channel),
        cmocka_unit_test(test_by_flow_version_variant),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_transcripts),
        cmocka_unit_test(test_async_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
