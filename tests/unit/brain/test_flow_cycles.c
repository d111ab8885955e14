/* The validator's cycle check for asks without `force`: such an ask is
 * skipped while its slot has a value, and its slot has one once it has been
 * answered, so a loop whose only waits are such asks spins on the turn after
 * the answer (until the turn's step limit) unless the loop empties the slot
 * again. Each refused loop is named with its nodes; each accepted shape is
 * one a flow author writes on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_brain_util.h"

static void assert_has(const char *all, const char *want)
{
    if (strstr(all, want) == NULL)
        fail_msg("expected a diagnostic containing\n  %s\ngot\n  %s", want, all);
}

/* Compiles one flow and expects no diagnostic. */
static void assert_loads(const char *text)
{
    brain_flowset_t *fs;
    const char *e = compile1(text, &fs);
    if (fs == NULL || e[0] != '\0')
        fail_msg("expected the flow to load, got\n  %s", e);
    brain_flowset_unref(fs);
}

#define SLOTS "\"slots\": {\"item\": {\"type\": \"text\"}, \"n\": {\"type\": \"text\"}}"

/* ask -> set -> goto back to the ask: answered once, then every later
 * visit skips the ask. The error names the file, the ask, the slot, the
 * cycle and the three ways out. */
static void test_loop_back_to_answered_ask(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1(
        "{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
        "  \"ask_item\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"Item?\","
        " \"next\": \"note\"},\n"
        "  \"note\": {\"type\": \"set\", \"set\": {\"n\": \"{{item}}\"}, \"next\": \"again\"},\n"
        "  \"again\": {\"type\": \"goto\", \"flow\": \"f\", \"node\": \"ask_item\"}}}",
        &fs);
    assert_null(fs);
    assert_string_equal(
        e, "t.json:2:15: nodes.ask_item: cycle would never wait for the user once slot \"item\" "
           "is filled: ask \"ask_item\" has no \"force\", so it is skipped while the slot has a "
           "value, and nothing on the way round clears it: ask_item -> note -> again -> "
           "ask_item (give the ask \"force\": true, set \"item\" to null on the way round, or "
           "pass a node that waits)");
    (void)state;
}

/* The same loop by `next`, and an ask that is its own next. */
static void test_loop_by_next_and_self_loop(void **state)
{
    brain_flowset_t *fs;
    const char *e =
        compile1("{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"next\":"
                 " \"b\"},\n"
                 "  \"b\": {\"type\": \"say\", \"message\": \"Got {{item}}\", \"next\": \"a\"}}}",
                 &fs);
    assert_null(fs);
    assert_has(e, "nodes.a: cycle would never wait for the user once slot \"item\" is filled");
    assert_has(e, ": a -> b -> a (");
    e = compile1("{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"next\":"
                 " \"a\"}}}",
                 &fs);
    assert_null(fs);
    assert_has(e, "t.json:2:8: nodes.a: cycle would never wait");
    assert_has(e, ": a -> a (");
    (void)state;
}

/* The ways out the message names: force, a set to null or "" on the way
 * round, or a node that waits (a forced ask) on the loop. */
#define LOOP(ASK_MORE, SET_MORE)                                                                   \
    "{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"                                                  \
    "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\"" ASK_MORE ", \"next\": "   \
    "\"b\"},\n"                                                                                    \
    "  \"b\": {\"type\": \"set\", \"set\": {\"n\": \"{{item}}\"" SET_MORE "}, \"next\": \"a\"}}}"

static void test_loops_that_wait_are_fine(void **state)
{
    assert_loads(LOOP(", \"force\": true", ""));
    assert_loads(LOOP("", ", \"item\": null"));
    assert_loads(LOOP("", ", \"item\": \"\""));
    assert_loads("{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"next\":"
                 " \"more\"},\n"
                 "  \"more\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"More?\","
                 " \"force\": true, \"next\": \"a\"}}}");
    (void)state;
}

/* A list loop: the name is asked once, each item every time round (its
 * slot cleared); the name's ask lies on the loop too, but the item's ask
 * waits on every way round, so nothing spins. */
static void test_cleared_ask_breaks_the_loop_for_others(void **state)
{
    assert_loads("{\"name\": \"f\", \"slots\": {\"name\": {\"type\": \"text\"},"
                 " \"item\": {\"type\": \"text\"}}, \"nodes\": {\n"
                 "  \"who\": {\"type\": \"ask\", \"slot\": \"name\", \"prompt\": \"Name?\","
                 " \"next\": \"what\"},\n"
                 "  \"what\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"Item?\","
                 " \"next\": \"ack\"},\n"
                 "  \"ack\": {\"type\": \"say\", \"message\": \"{{name}}: {{item}}\", \"next\":"
                 " \"clear\"},\n"
                 "  \"clear\": {\"type\": \"set\", \"set\": {\"item\": null}, \"next\":"
                 " \"who\"}}}");
    (void)state;
}

/* A clear on one way round does not cover the other: the way that keeps
 * the slot is the one named. */
static void test_clear_on_one_branch_only(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1(
        "{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
        "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"next\": \"b\"},\n"
        "  \"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\": \"item\", \"equals\":"
        " \"x\"}, \"next\": \"wipe\"}], \"default\": \"keep\"},\n"
        "  \"wipe\": {\"type\": \"set\", \"set\": {\"item\": null}, \"next\": \"a\"},\n"
        "  \"keep\": {\"type\": \"say\", \"message\": \"again\", \"next\": \"a\"}}}",
        &fs);
    assert_null(fs);
    assert_has(e, ": a -> b -> keep -> a (");
    /* a value that may render empty is not a certain clear */
    e = compile1("{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"next\":"
                 " \"b\"},\n"
                 "  \"b\": {\"type\": \"set\", \"set\": {\"item\": \"{{n|default:}}\"}, \"next\":"
                 " \"a\"}}}",
                 &fs);
    assert_null(fs);
    assert_has(e, ": a -> b -> a (");
    (void)state;
}

/* Through a goto into another flow and back; reported once for the loop
 * even with an ask in each flow. A forced ask in the other flow waits. */
static void test_loop_across_flows(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"a\", \"slots\": {\"x\": {\"type\": \"text\"}}, \"nodes\": {\n"
        "  \"ask_x\": {\"type\": \"ask\", \"slot\": \"x\", \"prompt\": \"?\", \"next\": \"g\"},\n"
        "  \"g\": {\"type\": \"goto\", \"flow\": \"b\"}}}",
        "{\"name\": \"b\", \"slots\": {\"y\": {\"type\": \"text\"}}, \"nodes\": {\n"
        "  \"ask_y\": {\"type\": \"ask\", \"slot\": \"y\", \"prompt\": \"?\", \"next\": \"h\"},\n"
        "  \"h\": {\"type\": \"goto\", \"flow\": \"a\"}}}"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 2, NULL, &fs);
    assert_null(fs);
    assert_string_equal(
        e, "a.json:2:12: nodes.ask_x: cycle through flows would never wait for the user once "
           "slot \"x\" is filled: ask \"ask_x\" has no \"force\", so it is skipped while the slot "
           "has a value, and nothing on the way round clears it: a.ask_x -> a.g -> b.ask_y -> "
           "b.h -> a.ask_x (give the ask \"force\": true, set \"x\" to null on the way round, or "
           "pass a node that waits)");
    texts[1] = "{\"name\": \"b\", \"slots\": {\"y\": {\"type\": \"text\"}}, \"nodes\": {\n"
               "  \"ask_y\": {\"type\": \"ask\", \"slot\": \"y\", \"prompt\": \"?\", \"force\":"
               " true, \"next\": \"h\"},\n"
               "  \"h\": {\"type\": \"goto\", \"flow\": \"a\"}}}";
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    brain_flowset_unref(fs);
    (void)state;
}

/* Not every loop through an ask is one: a retry by `on_fail` follows a
 * failed answer (a new turn), and an ask that is only passed on the way
 * into a loop is not on it. */
static void test_what_is_not_a_loop(void **state)
{
    assert_loads("{\"name\": \"f\", \"slots\": {\"n\": {\"type\": \"integer\"}}, \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"?\","
                 " \"max_attempts\": 1, \"on_fail\": \"sorry\", \"next\": \"done\"},\n"
                 "  \"sorry\": {\"type\": \"say\", \"message\": \"Once more.\", \"next\": \"a\"},\n"
                 "  \"done\": {\"type\": \"say\", \"message\": \"{{n}}\"}}}");
    assert_loads("{\"name\": \"f\", " SLOTS ", \"nodes\": {\n"
                 "  \"first\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"?\", \"next\":"
                 " \"a\"},\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"?\", \"force\":"
                 " true, \"next\": \"b\"},\n"
                 "  \"b\": {\"type\": \"say\", \"message\": \"{{n}} {{item}}\", \"next\":"
                 " \"a\"}}}");
    (void)state;
}

/* A long loop is named as far as fits, then "...", and the way out still
 * follows. */
static void test_long_loop_name_is_cut(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_printf(&b, "{\"name\": \"f\", " SLOTS ", \"nodes\": {\n");
    for (int i = 0; i < 100; i++)
        core_buf_printf(&b,
                        "%s\"ask_number_%d\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\":"
                        " \"?\", \"next\": \"ask_number_%d\"}",
                        i ? ",\n" : "", i, (i + 1) % 100);
    core_buf_printf(&b, "}}");
    brain_flowset_t *fs;
    const char *e = compile1(b.data, &fs);
    assert_null(fs);
    assert_has(e, ": ask_number_0 -> ask_number_1 -> ");
    assert_has(e, "... (give the ask \"force\": true, set \"item\" to null on the way round, or "
                  "pass a node that waits)");
    assert_null(strchr(e, '\n')); /* one loop, one error */
    core_buf_dispose(&b);
    (void)state;
}

/* ---- loops through a call ------------------------------------------------------------- */

/* A `call` waits only when every way through the called flow to its return
 * waits: one whose flow can return at once goes on to its `next` within
 * the turn, so a loop through it spins until the turn's step limit. */

/* Compiles main.json, helper.json and leaf.json (as many as given). */
static const char *compile_calls(const char *main, const char *helper, const char *leaf,
                                 brain_flowset_t **fs)
{
    const char *names[] = {"main.json", "helper.json", "leaf.json"};
    const char *texts[3];
    texts[0] = main;
    texts[1] = helper;
    texts[2] = leaf;
    return compile_n(names, texts, leaf ? 3 : 2, NULL, fs);
}

static void assert_calls_load(const char *main, const char *helper, const char *leaf)
{
    brain_flowset_t *fs;
    const char *e = compile_calls(main, helper, leaf, &fs);
    if (fs == NULL || e[0] != '\0')
        fail_msg("expected the flows to load, got\n  %s", e);
    brain_flowset_unref(fs);
}

/* main goes round: count, then a call of helper, then count again. */
#define MAIN_LOOP                                                                                  \
    "{\"name\": \"main\", \"slots\": {\"n\": {\"type\": \"any\"}}, \"nodes\": {\n"                 \
    "  \"count\": {\"type\": \"set\", \"set\": {\"n\": \"x\"}, \"next\": \"sub\"},\n"              \
    "  \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"count\"}}}"

#define HELPER(NODES)                                                                              \
    "{\"name\": \"helper\", \"slots\": {\"item\": {\"type\": \"text\"}},"                          \
    " \"nodes\": {\n" NODES "}}"

#define ASK_ITEM(MORE)                                                                             \
    "  \"ask_item\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"Item?\"" MORE           \
    ", \"next\": \"r\"},\n"                                                                        \
    "  \"r\": {\"type\": \"return\"}"

/* The flow it calls returns at once: every turn through main would spin.
 * The way through the called flow is part of the cycle's name. */
static void test_loop_through_call_that_returns_at_once(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile_calls(MAIN_LOOP, HELPER("  \"r\": {\"type\": \"return\"}"), NULL, &fs);
    assert_null(fs);
    assert_string_equal(e, "main.json:3:10: nodes.sub: cycle through flows with no ask in it "
                           "would never wait for the user: main.count -> main.sub -> helper.r "
                           "-> main.count");
    /* finishing by a node without next is returning too */
    e = compile_calls(MAIN_LOOP, HELPER("  \"hi\": {\"type\": \"say\", \"message\": \"Hi.\"}"),
                      NULL, &fs);
    assert_null(fs);
    assert_has(e, ": main.count -> main.sub -> helper.hi -> main.count");
    /* one way through that does not wait is enough */
    e = compile_calls(MAIN_LOOP,
                      HELPER("  \"pick\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\":"
                             " \"n\", \"equals\": \"y\"}, \"next\": \"ask_item\"}], \"default\":"
                             " \"r\"},\n" ASK_ITEM(", \"force\": true")),
                      NULL, &fs);
    assert_null(fs);
    assert_has(e, ": main.count -> main.sub -> helper.pick -> helper.r -> main.count");
    /* an action without on_error finishes its flow when the backend fails */
    e = compile_calls(MAIN_LOOP,
                      HELPER("  \"fetch\": {\"type\": \"action\", \"url\": \"http://x.test/\","
                             " \"next\": \"ask_item\"},\n" ASK_ITEM(", \"force\": true")),
                      NULL, &fs);
    assert_null(fs);
    assert_has(e, ": main.count -> main.sub -> helper.fetch -> main.count");
    (void)state;
}

/* A call whose flow waits on every way to its return is a wait: a forced
 * ask, a slot emptied before its ask (in the called flow or on the way
 * round), an action whose errors lead to a wait, or a call off the loop. */
static void test_loops_through_calls_that_wait(void **state)
{
    assert_calls_load(MAIN_LOOP, HELPER(ASK_ITEM(", \"force\": true")), NULL);
    assert_calls_load(MAIN_LOOP,
                      HELPER("  \"wipe\": {\"type\": \"set\", \"set\": {\"item\": null}, \"next\":"
                             " \"ask_item\"},\n" ASK_ITEM("")),
                      NULL);
    assert_calls_load(MAIN_LOOP,
                      HELPER("  \"fetch\": {\"type\": \"action\", \"url\": \"http://x.test/\","
                             " \"next\": \"ask_item\", \"on_error\": \"ask_item\"},\n" ASK_ITEM(
                                 ", \"force\": true")),
                      NULL);
    assert_calls_load("{\"name\": \"main\", \"nodes\": {\n"
                      "  \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"wipe\"},\n"
                      "  \"wipe\": {\"type\": \"set\", \"set\": {\"item\": null}, \"next\":"
                      " \"sub\"}}}",
                      HELPER(ASK_ITEM("")), NULL);
    assert_calls_load("{\"name\": \"main\", \"nodes\": {\n"
                      "  \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"done\"},\n"
                      "  \"done\": {\"type\": \"say\", \"message\": \"Done.\"}}}",
                      HELPER("  \"r\": {\"type\": \"return\"}"), NULL);
    /* another node on the loop waits */
    assert_calls_load(
        "{\"name\": \"main\", \"slots\": {\"n\": {\"type\": \"text\"}}, \"nodes\": {\n"
        "  \"menu\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"?\", \"force\":"
        " true, \"next\": \"sub\"},\n"
        "  \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"menu\"}}}",
        HELPER(ASK_ITEM("")), NULL);
    (void)state;
}

/* The called flow's only wait is an ask without force: once its slot is
 * filled the call returns at once, as the ask itself would be skipped. The
 * cycle goes out of the called flow through its return and back in. */
static void test_loop_through_call_of_answered_ask(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile_calls(MAIN_LOOP, HELPER(ASK_ITEM("")), NULL, &fs);
    assert_null(fs);
    assert_string_equal(
        e,
        "helper.json:2:15: nodes.ask_item: cycle through flows would never wait for the user "
        "once slot \"item\" is filled: ask \"ask_item\" has no \"force\", so it is skipped while "
        "the slot has a value, and nothing on the way round clears it: helper.ask_item -> "
        "helper.r -> main.count -> main.sub -> helper.ask_item (give the ask \"force\": true, "
        "set \"item\" to null on the way round, or pass a node that waits)");
    /* the caller's own ask, round a call that returns at once */
    e = compile_calls(
        "{\"name\": \"main\", \"slots\": {\"n\": {\"type\": \"text\"}}, \"nodes\": {\n"
        "  \"ask_n\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"?\", \"next\":"
        " \"sub\"},\n"
        "  \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"ask_n\"}}}",
        HELPER("  \"r\": {\"type\": \"return\"}"), NULL, &fs);
    assert_null(fs);
    assert_has(e, "main.json:2:12: nodes.ask_n: cycle through flows would never wait for the user "
                  "once slot \"n\" is filled");
    assert_has(e, ": main.ask_n -> main.sub -> helper.r -> main.ask_n (");
    (void)state;
}

/* Calls of calls: helper calls leaf, which returns at once, so helper does
 * too; the name goes through both. With an answered ask in leaf the cycle
 * goes out through both returns and back in through both calls. A forced
 * ask in leaf makes both calls waits. */
static void test_loop_through_calls_of_calls(void **state)
{
    const char *helper =
        HELPER("  \"inner\": {\"type\": \"call\", \"flow\": \"leaf\", \"next\": \"back\"},\n"
               "  \"back\": {\"type\": \"say\", \"message\": \"Back.\"}");
    brain_flowset_t *fs;
    const char *e =
        compile_calls(MAIN_LOOP, helper,
                      "{\"name\": \"leaf\", \"nodes\": {\n"
                      "  \"hop\": {\"type\": \"goto\", \"flow\": \"leaf\", \"node\": \"r\"},\n"
                      "  \"r\": {\"type\": \"return\"}}}",
                      &fs);
    assert_null(fs);
    assert_string_equal(e, "main.json:3:10: nodes.sub: cycle through flows with no ask in it "
                           "would never wait for the user: main.count -> main.sub -> helper.inner "
                           "-> leaf.hop -> leaf.r -> helper.back -> main.count");
    e = compile_calls(MAIN_LOOP, helper,
                      "{\"name\": \"leaf\", \"slots\": {\"item\": {\"type\": \"text\"}},"
                      " \"nodes\": {\n" ASK_ITEM("") "}}",
                      &fs);
    assert_null(fs);
    assert_has(e, "leaf.json:2:15: nodes.ask_item: cycle through flows would never wait");
    assert_has(e, ": leaf.ask_item -> leaf.r -> helper.back -> main.count -> main.sub -> "
                  "helper.inner -> leaf.ask_item (");
    assert_calls_load(MAIN_LOOP, helper,
                      "{\"name\": \"leaf\", \"slots\": {\"item\": {\"type\": \"text\"}},"
                      " \"nodes\": {\n" ASK_ITEM(", \"force\": true") "}}");
    (void)state;
}

/* A flow that calls itself is refused as recursion; that its way out
 * returns at once is still seen at its caller's loop, and the check ends. */
static void test_loop_through_recursive_call(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile_calls(
        MAIN_LOOP,
        HELPER("  \"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\": \"n\", \"equals\":"
               " \"x\"}, \"next\": \"r\"}], \"default\": \"again\"},\n"
               "  \"again\": {\"type\": \"call\", \"flow\": \"helper\", \"next\": \"r\"},\n"
               "  \"r\": {\"type\": \"return\"}"),
        NULL, &fs);
    assert_null(fs);
    assert_has(e, "nodes.again: calls flow \"helper\", which is already waiting for this call to "
                  "return");
    assert_has(e, "main.json:3:10: nodes.sub: cycle through flows with no ask in it would never "
                  "wait for the user: main.count -> main.sub -> helper.b -> helper.r -> "
                  "main.count");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_back_to_answered_ask),
        cmocka_unit_test(test_loop_by_next_and_self_loop),
        cmocka_unit_test(test_loops_that_wait_are_fine),
        cmocka_unit_test(test_cleared_ask_breaks_the_loop_for_others),
        cmocka_unit_test(test_clear_on_one_branch_only),
        cmocka_unit_test(test_loop_across_flows),
        cmocka_unit_test(test_what_is_not_a_loop),
        cmocka_unit_test(test_long_loop_name_is_cut),
        cmocka_unit_test(test_loop_through_call_that_returns_at_once),
        cmocka_unit_test(test_loops_through_calls_that_wait),
        cmocka_unit_test(test_loop_through_call_of_answered_ask),
        cmocka_unit_test(test_loop_through_calls_of_calls),
        cmocka_unit_test(test_loop_through_recursive_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
