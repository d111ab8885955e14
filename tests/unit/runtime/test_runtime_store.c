/* The runtime with a real store (SQLite in a temporary directory), the real
 * brain on the example flows and the backend stub on loopback: each turn's
 * rows are durable before the channel is answered, a conversation evicted
 * from memory (here: a whole restart) is restored from the store and goes on
 * where it stopped, and the outcome of a handoff is recorded (and kept
 * when a person closes it, with an event that says it ended). */
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

/* A person closes a handed-off conversation (a jump_end turn): its outcome
 * stays escalated, and a "closed" event, tied to its last row, says that
 * it ended, for a channel that rebuilds its transcript. */
static void test_a_close_keeps_the_outcome_and_says_it_ended(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:closed", "I want to talk to a human agent", &r);
    say(&e, "web:closed", "it's about my lost bag", &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    runtime_turn_in_t in = {.key = "web:closed",
                            .channel = BRAIN_CH_WEB,
                            .event = BRAIN_EV_START,
                            .adapter_version = "agent",
                            .jump_end = 1};
    memset(&r, 0, sizeof(r));
    assert_int_equal(runtime_turn(e.rt, &in, on_turn, &r, NULL), 0);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, BRAIN_ST_ENDED);
    json_t *t = transcript("web:closed");
    assert_string_equal(json_string_value(json_object_get(t, "outcome")), "escalated");
    json_t *turns = json_object_get(t, "turns");
    json_int_t last = json_integer_value(
        json_object_get(json_array_get(turns, json_array_size(turns) - 1), "seq"));
    int closed = 0;
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(t, "events"), i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "kind")), "closed") != 0)
            continue;
        closed++;
        assert_int_equal(json_integer_value(json_object_get(ev, "turn_seq")), last);
    }
    assert_int_equal(closed, 1);
    json_decref(t);
    env_stop(&e);
}

/* A person releases a handed-off conversation back to the bot (a jump
 * turn): the outcome stays escalated, and a "released" event, tied to the
 * turn's last row and naming the node, says whose it is now, for a channel
 * that rebuilds its status from the store. */
static void test_a_release_says_the_bot_has_it_again(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "web:released", "I want to talk to a human agent", &r);
    say(&e, "web:released", "it's about my lost bag", &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    runtime_turn_in_t in = {.key = "web:released",
                            .channel = BRAIN_CH_WEB,
                            .event = BRAIN_EV_START,
                            .adapter_version = "agent",
                            .jump_flow = "welcome",
                            .jump_node = "greet"};
    memset(&r, 0, sizeof(r));
    assert_int_equal(runtime_turn(e.rt, &in, on_turn, &r, NULL), 0);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.status, BRAIN_ST_ACTIVE);
    json_t *t = transcript("web:released");
    assert_string_equal(json_string_value(json_object_get(t, "outcome")), "escalated");
    json_t *turns = json_object_get(t, "turns");
    json_int_t last = json_integer_value(
        json_object_get(json_array_get(turns, json_array_size(turns) - 1), "seq"));
    int released = 0;
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(t, "events"), i, ev)
    {
        if (strcmp(json_string_value(json_object_get(ev, "kind")), "released") != 0)
            continue;
        released++;
        assert_int_equal(json_integer_value(json_object_get(ev, "turn_seq")), last);
        assert_string_equal(json_string_value(json_object_get(ev, "name")), "greet");
    }
    assert_int_equal(released, 1);
    json_decref(t);
    env_stop(&e);
}

/* A conversation whose idle time ran out with no timeout turn to end it
 * (out of the table when it fell due, or a message that beats the sweep):
 * the next message begins a new conversation, and the old one is ended in
 * the same batch, abandoned, rather than left active in the store. */
static void test_an_idled_out_conversation_is_ended_by_the_next(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    say(&e, "sms:+15550002", "check my booking", &r);
    assert_string_equal(r.node, "ask_ref");
    json_t *t = transcript("sms:+15550002");
    int64_t last = (int64_t)json_integer_value(
        json_object_get(json_array_get(json_object_get(t, "turns"), 0), "ts_us"));
    json_decref(t);
    /* sixteen minutes later (the example flows idle out after fifteen) */
    int64_t later = (int64_t)core_wall_us() + 16 * 60 * 1000000LL;
    runtime_turn_in_t in = {.key = "sms:+15550002",
                            .channel = BRAIN_CH_WEB,
                            .event = BRAIN_EV_MESSAGE,
                            .text = "hello",
                            .len = 5,
                            .now_us = later};
    memset(&r, 0, sizeof(r));
    assert_int_equal(runtime_turn(e.rt, &in, on_turn, &r, NULL), 0);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.error, 0);
    t = transcript("sms:+15550002");
    assert_string_equal(json_string_value(json_object_get(t, "outcome")), "abandoned");
    int64_t ended = (int64_t)json_integer_value(json_object_get(t, "ended_us"));
    assert_true(ended >= last + 900 * 1000000LL && ended <= last + 901 * 1000000LL);
    json_decref(t);
    t = transcript("sms:+15550002#1"); /* the new one, under way */
    assert_string_equal(json_string_value(json_object_get(t, "outcome")), "active");
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
        cmocka_unit_test(test_a_close_keeps_the_outcome_and_says_it_ended),
        cmocka_unit_test(test_a_release_says_the_bot_has_it_again),
        cmocka_unit_test(test_an_idled_out_conversation_is_ended_by_the_next),
    };
    return cmocka_run_group_tests(tests, setup, env_group_teardown);
}
