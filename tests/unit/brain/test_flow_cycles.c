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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
