/* The runtime with a real store (SQLite in a temporary directory), the real
 * brain on the example flows and the backend stub on loopback: each turn's
 * rows are durable before the channel is answered, a conversation evicted
 * from memory (here: a whole restart) is restored from the store and goes on
 * where it stopped, and the outcome of a handoff is recorded. */
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

static const char *msg_text(json_t *t, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(t, "turns"), i), "text"));
}

static void test_turns_are_durable_before_the_reply(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:durable", "where is my refund", &r);
    assert_string_equal(r.node, "ask_ref");
    /* The callback has run: the rows are already readable by another connection. */
    json_t *t = transcript("web:durable");
    json_t *msgs = json_object_get(t, "turns");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(msg_text(t, 0), "where is my refund");
    assert_non_null(strstr(msg_text(t, 1), "refund reference"));
    json_decref(t);
    say(&e, "web:durable", "RF1001", &r);
    assert_non_null(strstr(r.text, "has been approved"));
    t = transcript("web:durable");
    assert_int_equal(json_array_size(json_object_get(t, "turns")), 4);
    assert_string_equal(msg_text(t, 2), "RF1001");
    json_decref(t);
    /* Metrics were counted on the loop. */
    core_buf_t m;
    core_buf_init(&m, 1 << 20);
    assert_int_equal(store_metrics_render(e.metrics, &m), 0);
    assert_non_null(strstr(m.data, "refund_status"));
    core_buf_dispose(&m);
    env_stop(&e);
}

static void test_restart_restores_the_conversation(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "sms:+15550001", "check my booking", &r);
    assert_string_equal(r.node, "ask_ref");
    env_stop(&e);
    /* A new process: nothing in memory. The conversation comes back from the
     * store and the answer fills the slot its flow was asking for. */
    env_start(&e);
    say(&e, "sms:+15550001", "ABC123", &r);
    assert_non_null(strstr(r.text, "CH 101"));
    json_t *t = transcript("sms:+15550001");
    json_t *msgs = json_object_get(t, "turns");
    assert_int_equal(json_array_size(msgs), 4); /* numbered on, no duplicate seq */
    assert_string_equal(msg_text(t, 2), "ABC123");
    json_decref(t);
    env_stop(&e);
    /* The caller comes back later: a start event on a key the store knows
     * goes on numbering its rows rather than colliding with them. */
    env_start(&e);
    turn(&e, "sms:+15550001", BRAIN_EV_START, "", &r);
    assert_non_null(strstr(r.text, "How can I help"));
    t = transcript("sms:+15550001");
    assert_int_equal(json_array_size(json_object_get(t, "turns")), 5);
    json_decref(t);
    env_stop(&e);
}

static void test_handoff_outcome_is_recorded(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:agent", "I want to talk to a human agent", &r);
    say(&e, "web:agent", "it's about my lost bag", &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    json_t *t = transcript("web:agent");
    assert_string_equal(json_string_value(json_object_get(t, "outcome")), "escalated");
    assert_string_equal(json_string_value(json_object_get(t, "channel")), "web");
    json_t *turns = json_object_get(t, "turns");
    json_t *first = json_array_get(turns, 0);
    assert_string_equal(json_string_value(json_object_get(first, "intent")), "agent");
    int handoff_events = 0;
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(t, "events"), i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "kind")), "handoff") == 0)
            handoff_events++;
    }
    assert_int_equal(handoff_events, 1);
    json_decref(t);
    env_stop(&e);
}

static int setup(void **state)
{
    return env_group_setup("rts");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turns_are_durable_before_the_reply),
        cmocka_unit_test(test_restart_restores_the_conversation),
        cmocka_unit_test(test_handoff_outcome_is_recorded),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
