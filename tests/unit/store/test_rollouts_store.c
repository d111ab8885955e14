/* The rollouts table and a rollout's per-variant KPIs (rollout.h) on a
 * real database. The fixture, worked by hand:
 *   control:   c1 contained (CSAT 5), c2 contained (CSAT 3), c3 escalated;
 *              reply latencies 100, 200, 300 ms; no failed reply.
 *   candidate: k1 contained (CSAT 4), k2 contained with a failed reply,
 *              k3 still active; latencies 150, 250, 900 ms.
 *   outside:   x1 (no variant) and x2 (control, before the window).
 * So control: 3 conversations, 3 ended, 2 contained, 1 escalated, 3 bot
 * turns, 0 failed, CSAT 2 answers (1 satisfied, sum 8), p95 = rank 3 of 3 =
 * 300 ms; candidate: 3, 2 ended, 2 contained, 0 escalated, 3 bot turns,
 * 1 failed, CSAT 1 answer (satisfied, sum 4), p95 900 ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>

#include <cmocka.h>

#include "chorus/rollout.h"
#include "unit/store/store_fixture.h"

#define T0 1793613600000000LL /* 2026-11-02T10:00:00Z */
#define MS 1000LL

static fx_t fx;

typedef struct {
    const char *id, *variant, *outcome;
    int64_t start;
    int64_t latency_ms;
    const char *error;
    int csat;
} conv_t;

static const conv_t convs[] = {
    {"c1", "control", "contained", T0 + 1, 100, NULL, 5},
    {"c2", "control", "contained", T0 + 2, 200, NULL, 3},
    {"c3", "control", "escalated", T0 + 3, 300, NULL, 0},
    {"k1", "candidate", "contained", T0 + 4, 150, NULL, 4},
    {"k2", "candidate", "contained", T0 + 5, 250, "action", 0},
    {"k3", "candidate", NULL, T0 + 6, 900, NULL, 0},
    {"x1", "", "contained", T0 + 7, 5000, "action", 1},
    {"x2", "control", "escalated", T0 - 10, 5000, "action", 1},
};

static void put(const conv_t *c)
{
    store_batch_t *b = store_batch_new();
    store_conv_start_t cs = {c->id, "web", "orders", "v1", c->variant, NULL, c->start};
    store_batch_conv_start(b, &cs);
    store_turn_t in = {.conversation_id = c->id,
                       .seq = 1,
                       .direction = 'i',
                       .ts_us = c->start,
                       .text = "where is my order",
                       .confidence = -1,
                       .latency_us = -1,
                       .channel = "web"};
    store_turn_t out = in;
    out.seq = 2, out.direction = 'o', out.latency_us = c->latency_ms * MS, out.error = c->error;
    store_batch_turn(b, &in);
    store_batch_turn(b, &out);
    if (c->outcome != NULL)
        store_batch_conv_end(b, c->id, c->outcome, NULL, c->start + 1000);
    if (c->csat > 0)
        store_batch_csat(b, c->id, c->csat, c->start + 2000);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
}

static int setup(void **state)
{
    core_err_t err = {0};
    if (fx_open(&fx, 100, 64, &err) != 0)
        return -1;
    size_t n = sizeof(convs) / sizeof(convs[0]);
    for (size_t i = 0; i < n; i++)
        put(&convs[i]);
    fx_wait(&fx, (int)n);
    return fx.failed == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fx_close(&fx);
    return 0;
}

static void test_kpis_per_variant(void **state)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(fx.path, &err);
    assert_non_null(db);
    rollout_kpis_t c, k;
    assert_int_equal(store_db_rollout_kpis(db, NULL, T0, 0, &c, &k, &err), 0);
    assert_int_equal(c.conversations, 3);
    assert_int_equal(c.ended, 3);
    assert_int_equal(c.contained, 2);
    assert_int_equal(c.escalated, 1);
    assert_int_equal(c.turns_out, 3);
    assert_int_equal(c.failed_turns, 0);
    assert_int_equal(c.csat_responses, 2);
    assert_int_equal(c.csat_satisfied, 1);
    assert_true(fabs(c.csat_sum - 8) < 1e-9);
    assert_true(fabs(c.p95_ms - 300) < 1e-9);
    assert_int_equal(k.conversations, 3);
    assert_int_equal(k.ended, 2);
    assert_int_equal(k.contained, 2);
    assert_int_equal(k.escalated, 0);
    assert_int_equal(k.failed_turns, 1);
    assert_int_equal(k.csat_responses, 1);
    assert_int_equal(k.csat_satisfied, 1);
    assert_true(fabs(k.p95_ms - 900) < 1e-9);
    /* a window that ends before k1: control whole, candidate empty */
    assert_int_equal(store_db_rollout_kpis(db, "orders", T0, T0 + 4, &c, &k, &err), 0);
    assert_int_equal(c.conversations, 3);
    assert_int_equal(k.conversations, 0);
    assert_true(k.p95_ms < 0);
    /* another flow: nothing */
    assert_int_equal(store_db_rollout_kpis(db, "faq", T0, 0, &c, &k, &err), 0);
    assert_int_equal(c.conversations + k.conversations, 0);
    store_db_close(db);
}

static void saved(int status, void *data)
{
    int *out = data;
    *out = status;
    fx.done++;
}

static int save(const store_rollout_t *r)
{
    int status = 1;
    int before = fx.done;
    store_batch_t *b = store_batch_new();
    store_batch_rollout(b, r);
    assert_int_equal(store_enqueue(fx.store, b, saved, &status), 0);
    fx_wait(&fx, before + 1);
    return status;
}

static void test_rows_round_trip(void **state)
{
    store_rollout_t r = {.id = "ro-orders-1",
                         .env = "production",
                         .flow = "orders",
                         .candidate_version = "aaaaaaaaaaaa",
                         .control_version = "bbbbbbbbbbbb",
                         .percent = 20,
                         .status = ROLLOUT_RUNNING,
                         .started_us = T0,
                         .started_by = "ops"};
    assert_int_equal(save(&r), 0);
    /* one running rollout per flow and environment */
    store_rollout_t dup = r;
    dup.id = "ro-orders-2";
    assert_int_equal(save(&dup), CORE_ERR_INVALID);
    r.status = ROLLOUT_ROLLED_BACK, r.ended_us = T0 + 60 * 1000000LL;
    r.ended_by = "rollout-guard", r.reason = "error rate 0.5 vs control 0.0";
    assert_int_equal(save(&r), 0);
    core_err_t err = {0};
    store_db_t *db = store_db_open(fx.path, &err);
    json_t *out = NULL;
    assert_int_equal(store_db_rollouts(db, "orders", NULL, NULL, &out, &err), 0); /* by flow */
    json_t *rows = json_object_get(out, "rollouts"), *row = json_array_get(rows, 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "rolled_back");
    assert_string_equal(json_string_value(json_object_get(row, "ended_by")), "rollout-guard");
    assert_int_equal(json_integer_value(json_object_get(row, "percent")), 20);
    json_decref(out);
    assert_int_equal(store_db_rollouts(db, NULL, NULL, ROLLOUT_RUNNING, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "rollouts")), 0);
    json_decref(out);
    assert_int_equal(store_db_rollouts(db, "ro-none", NULL, NULL, &out, &err), CORE_ERR_NOT_FOUND);
    store_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kpis_per_variant),
        cmocka_unit_test(test_rows_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
