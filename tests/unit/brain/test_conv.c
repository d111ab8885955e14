/* Conversation state: slots, size, JSON round trips, restore after a
 * reload that removed flows or nodes, and migration between versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_brain_util.h"

static const char *flow_a =
    "{\"name\": \"a\", \"intents\": {\"a\": [\"run a\"]}, \"slots\": {\"x\": {\"type\": \"text\"}},"
    " \"nodes\": {\"c\": {\"type\": \"call\", \"flow\": \"b\", \"next\": \"after\"},"
    " \"after\": {\"type\": \"say\", \"message\": \"after\"}}}";
static const char *flow_b =
    "{\"name\": \"b\", \"nodes\": {\"ask\": {\"type\": \"ask\", \"slot\": \"x\", \"prompt\": "
    "\"X?\"}}}";

/* flow_a and flow b as text_b, compiled at version. */
static brain_flowset_t *compile_a_and(const char *text_b, uint32_t version)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {flow_a, text_b};
    brain_source_t src[2];
    for (int i = 0; i < 2; i++)
        src[i] = (brain_source_t){names[i], texts[i], strlen(texts[i])};
    brain_compile_opts_t o;
    brain_compile_opts_init(&o);
    o.validate_only = 1;
    o.no_guard = 1;
    o.version = version;
    core_diags_t d;
    core_diags_init(&d);
    brain_flowset_t *fs = NULL;
    assert_int_equal(brain_flowset_compile(src, 2, &o, &fs, &d), 0);
    core_diags_dispose(&d);
    return fs;
}

static brain_flowset_t *compile_ab(uint32_t version, int with_b_ask)
{
    const char *b2 = "{\"name\": \"b\", \"nodes\": {\"other\": {\"type\": \"say\", \"message\": "
                     "\"o\"}}}";
    return compile_a_and(with_b_ask ? flow_b : b2, version);
}

static void test_slots(void **state)
{
    brain_conv_t c;
    brain_conv_init(&c, NULL, BRAIN_CH_SMS, T0_US);
    assert_null(brain_conv_slot(&c, "a"));
    brain_conv_set_slot(&c, "a", "1");
    brain_conv_set_slot(&c, "bb", "two");
    brain_conv_set_slot(&c, "a", "9"); /* same length: in place */
    assert_string_equal(brain_conv_slot(&c, "a"), "9");
    brain_conv_set_slot(&c, "a", "longer value");
    assert_string_equal(brain_conv_slot(&c, "a"), "longer value");
    assert_string_equal(brain_conv_slot(&c, "bb"), "two");
    brain_conv_set_slot(&c, "bb", NULL);
    assert_null(brain_conv_slot(&c, "bb"));
    brain_conv_set_slot(&c, "missing", NULL);
    assert_string_equal(brain_conv_slot(&c, "a"), "longer value");
    assert_true(brain_conv_memory(&c) >= sizeof(c) + c.slots_len);
    assert_true(brain_conv_memory(&c) < 256);
    assert_true(sizeof(brain_conv_t) <= 80);
    brain_conv_dispose(&c);
    brain_conv_dispose(&c);
    brain_conv_dispose(NULL);
}

static void test_round_trip(void **state)
{
    brain_flowset_t *fs = compile_ab(3, 1);
    harness_t h;
    h_init(&h, fs, BRAIN_CH_VOICE);
    h_send(&h, "go", "a");
    assert_string_equal(h_said(&h), "X?");
    assert_int_equal(h.conv.depth, 1);
    core_buf_t b;
    core_buf_init(&b, 1 << 16);
    assert_int_equal(brain_conv_to_json(fs, &h.conv, &b), 0);
    assert_non_null(strstr(b.data, "\"flow\":\"b\",\"node\":\"ask\""));
    assert_non_null(strstr(b.data, "\"stack\":[{\"flow\":\"a\",\"node\":\"after\"}]"));
    assert_non_null(strstr(b.data, "\"channel\":\"voice\""));
    assert_non_null(strstr(b.data, "\"_u1\":\"go\""));
    brain_conv_t r;
    core_err_t err = {0};
    assert_int_equal(brain_conv_from_json(fs, b.data, b.len, &r, &err), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.flow, h.conv.flow);
    assert_int_equal(r.node, h.conv.node);
    assert_int_equal(r.depth, 1);
    assert_int_equal(r.wait, h.conv.wait);
    assert_int_equal(r.channel, BRAIN_CH_VOICE);
    assert_int_equal(r.turns, 1);
    assert_int_equal(r.last_us, h.conv.last_us);
    /* the restored conversation carries on where it was */
    brain_conv_dispose(&h.conv);
    h.conv = r;
    h_send(&h, "an answer", NULL);
    assert_string_equal(h_said(&h), "after");
    assert_string_equal(h_slot(&h, "x"), "an answer");
    core_buf_dispose(&b);
    h_dispose(&h);
}

static void test_restore_after_reload(void **state)
{
    brain_flowset_t *v1 = compile_ab(1, 1), *v2 = compile_ab(2, 0);
    harness_t h;
    h_init(&h, v1, BRAIN_CH_CHAT);
    h_send(&h, "go", "a");
    brain_conv_set_slot(&h.conv, "x", "kept");
    core_err_t err = {0};
    /* v2 has no node "ask" in flow b: the conversation becomes idle, keeps slots */
    assert_int_equal(brain_conv_migrate(v1, v2, &h.conv, &err), 0);
    assert_int_equal(h.conv.version, 2);
    assert_int_equal(h.conv.flow, BRAIN_NONE);
    assert_int_equal(h.conv.wait, 0);
    assert_int_equal(h.conv.depth, 0);
    assert_string_equal(brain_conv_slot(&h.conv, "x"), "kept");
    /* it lost its place inside a call: a is the flow it began in, to redo */
    assert_string_equal(brain_conv_slot(&h.conv, "_restart"), "a");
    /* running it against the old flowset is refused */
    brain_input_t in = {.event = BRAIN_EV_MESSAGE, .text = "hi", .len = 2, .now_us = h.now};
    assert_int_equal(brain_turn(v1, &h.conv, &in, &h.out), CORE_ERR_INVALID);
    /* its next message hears why and flow a starts again (its call of b now
     * says "o"), rather than the answer being taken for a new request */
    h.fs = v2;
    h_send(&h, "an answer", NULL);
    assert_string_equal(h_said(&h), "Sorry, something changed on our side since your last "
                                    "message. Let's start that again. | o | after");
    assert_null(brain_conv_slot(&h.conv, "_restart"));
    h.fs = v1;
    brain_flowset_unref(v2);
    h_dispose(&h);
}

static void test_bad_json(void **state)
{
    brain_flowset_t *fs = compile_ab(1, 1);
    brain_conv_t c;
    core_err_t err = {0};
    assert_int_equal(brain_conv_from_json(fs, "{nope", 5, &c, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "conversation state"));
    assert_int_equal(brain_conv_from_json(fs, "[1]", 3, &c, &err), CORE_ERR_INVALID);
    const char *odd = "{\"flow\": \"zzz\", \"node\": 5, \"status\": \"handoff\", \"attempts\": "
                      "-4, \"slots\": {\"a\": 1, \"b\": \"ok\"}, \"stack\": 7}";
    assert_int_equal(brain_conv_from_json(fs, odd, strlen(odd), &c, &err), 0);
    assert_int_equal(c.flow, BRAIN_NONE);
    assert_int_equal(c.status, BRAIN_ST_HANDOFF);
    assert_int_equal(c.attempts, 0);
    assert_null(brain_conv_slot(&c, "a"));
    assert_string_equal(brain_conv_slot(&c, "b"), "ok");
    brain_conv_dispose(&c);
    brain_flowset_unref(fs);
}

/* A conversation saved waiting at an ask, read back after a reload made that
 * node a message: idle (the question is gone), its slots kept, instead of
 * waiting at a node that can take no answer. */
static void test_restore_at_a_node_of_another_kind(void **state)
{
    brain_flowset_t *fs = compile_a_and("{\"name\": \"b\", \"nodes\": {\"ask\": {\"type\":"
                                        " \"say\", \"message\": \"now a message\"}}}",
                                        1);
    const char *saved = "{\"flow\": \"b\", \"node\": \"ask\", \"wait\": 1, \"stack\":"
                        " [{\"flow\": \"a\", \"node\": \"c\"}], \"slots\": {\"x\": \"kept\"}}";
    brain_conv_t c;
    core_err_t err = {0};
    assert_int_equal(brain_conv_from_json(fs, saved, strlen(saved), &c, &err), 0);
    assert_int_equal(c.flow, BRAIN_NONE);
    assert_int_equal(c.wait, 0);
    assert_int_equal(c.depth, 0);
    assert_string_equal(brain_conv_slot(&c, "x"), "kept");
    assert_string_equal(brain_conv_slot(&c, "_restart"), "a"); /* said and redone next turn */
    brain_conv_dispose(&c);
    /* the same state against flows where it still is an ask waits there */
    brain_flowset_unref(fs);
    fs = compile_ab(2, 1);
    assert_int_equal(brain_conv_from_json(fs, saved, strlen(saved), &c, &err), 0);
    assert_int_not_equal(c.flow, BRAIN_NONE);
    assert_int_equal(c.wait, 1);
    assert_null(brain_conv_slot(&c, "_restart"));
    brain_conv_dispose(&c);
    brain_flowset_unref(fs);
    (void)state;
}

static void test_channel_names(void **state)
{
    brain_channel_t ch;
    assert_int_equal(brain_channel_parse("sms", &ch), 0);
    assert_int_equal(ch, BRAIN_CH_SMS);
    assert_int_equal(brain_channel_parse("fax", &ch), CORE_ERR_NOT_FOUND);
    assert_string_equal(brain_channel_name(BRAIN_CH_VOICE), "voice");
    assert_string_equal(brain_channel_name((brain_channel_t)77), "default");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_restore_after_reload),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_restore_at_a_node_of_another_kind),
        cmocka_unit_test(test_channel_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
