/* What the runtime records for the KPI reports, with a real store (SQLite in
 * a temporary directory), the real brain on the example flows and the backend
 * stub on loopback: a conversation is sliced by the flow that handled it even
 * when that flow has ended by the time the turn is stored, and a key that
 * comes back after its conversation ended starts a new conversation (its own
 * row, id and outcome) instead of rewriting the ended one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "stubs/stub_proc.h"
#include "unit/runtime/runtime_env.h"

/* The report's row for flow, or NULL. Owned by out. */
static json_t *report_row(json_t *out, const char *flow)
{
    json_t *row;
    size_t i;
    json_array_foreach(json_object_get(out, "rows"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "flow")), flow) == 0)
            return row;
    }
    return NULL;
}

static json_t *report_by_flow(void)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(db_path, &err);
    assert_non_null(db);
    store_report_query_t q = {.by = STORE_BY_FLOW};
    json_t *out = NULL;
    assert_int_equal(store_db_report(db, &q, &out, &err), 0);
    store_db_close(db);
    return out;
}

static const char *msg_text(json_t *t, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(t, "turns"), i), "text"));
}

static const char *outcome(json_t *t)
{
    return json_string_value(json_object_get(t, "outcome"));
}

static void test_ended_flow_is_the_conversations_flow(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:kpi-bye", "goodbye", &r); /* small_talk's end node: no flow after the turn */
    assert_int_equal(r.status, BRAIN_ST_ENDED);
    json_t *out = report_by_flow();
    json_t *row = report_row(out, "small_talk");
    assert_non_null(row);
    assert_int_equal(json_integer_value(json_object_get(row, "conversations")), 1);
    assert_null(report_row(out, "-"));
    json_decref(out);
    /* The Prometheus labels name it too. */
    core_buf_t m;
    core_buf_init(&m, 1 << 20);
    assert_int_equal(store_metrics_render(e.metrics, &m), 0);
    assert_non_null(strstr(m.data, "flow=\"small_talk\""));
    assert_null(strstr(m.data, "flow=\"-\""));
    core_buf_dispose(&m);
    env_stop(&e);
}

static void test_returning_key_starts_a_new_conversation(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:kpi-back", "goodbye", &r);
    assert_int_equal(r.status, BRAIN_ST_ENDED);
    /* Still in memory: the same key talks again. */
    say(&e, "web:kpi-back", "I want to talk to a human agent", &r);
    say(&e, "web:kpi-back", "it's about my lost bag", &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    json_t *first = transcript("web:kpi-back");
    assert_string_equal(outcome(first), "contained");
    assert_int_equal(json_array_size(json_object_get(first, "turns")), 2);
    json_decref(first);
    json_t *second = transcript("web:kpi-back#1");
    assert_string_equal(outcome(second), "escalated");
    json_t *turns = json_object_get(second, "turns");
    /* Its own rows only, numbered from 1. */
    size_t n_second = json_array_size(turns);
    assert_true(n_second >= 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(turns, 0), "seq")), 1);
    assert_string_equal(msg_text(second, 0), "I want to talk to a human agent");
    json_decref(second);
    env_stop(&e);
    /* After a restart the key comes back once more: its escalated conversation
     * is left as it was and a third one begins. */
    env_start(&e);
    say(&e, "web:kpi-back", "goodbye", &r);
    assert_int_equal(r.status, BRAIN_ST_ENDED);
    second = transcript("web:kpi-back#1");
    assert_string_equal(outcome(second), "escalated");
    assert_int_equal(json_array_size(json_object_get(second, "turns")), n_second);
    json_decref(second);
    json_t *third = transcript("web:kpi-back#2");
    assert_string_equal(outcome(third), "contained");
    assert_int_equal(json_array_size(json_object_get(third, "turns")), 2);
    json_decref(third);
    json_t *out = report_by_flow();
    json_t *total = json_object_get(out, "total");
    assert_int_equal(json_integer_value(json_object_get(total, "conversations")), 4);
    json_decref(out);
    env_stop(&e);
}

static int setup(void **state)
{
    return env_group_setup("rtk");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ended_flow_is_the_conversations_flow),
        cmocka_unit_test(test_returning_key_starts_a_new_conversation),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
