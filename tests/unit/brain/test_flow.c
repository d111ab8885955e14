/* The flow compiler and validator: every kind of error a flow author can
 * make, with its exact `file:line:col: path: message`, all reported at once;
 * and the things that must not be errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_brain_util.h"

#define OK_FLOW                                                                                    \
    "{\"name\": \"f\", \"intents\": {\"go\": [\"go\"]},\n"                                         \
    " \"slots\": {\"ref\": {\"type\": \"regex\", \"pattern\": \"[A-Z]{3}[0-9]{3}\"}},\n"           \
    " \"nodes\": {\n"                                                                              \
    "  \"ask\": {\"type\": \"ask\", \"slot\": \"ref\", \"prompt\": \"Ref?\", \"next\": "           \
    "\"tell\"},\n"                                                                                 \
    "  \"tell\": {\"type\": \"say\", \"message\": \"Ref {{ref}}\"}\n"                              \
    " }}"

static void assert_has(const char *all, const char *want)
{
    if (strstr(all, want) == NULL)
        fail_msg("expected a diagnostic containing\n  %s\ngot\n  %s", want, all);
}

static void test_valid_flow(void **state)
{
    brain_flowset_t *fs;
    assert_string_equal(compile1(OK_FLOW, &fs), "");
    assert_non_null(fs);
    assert_int_equal(brain_flowset_flow_count(fs), 1);
    brain_flow_info_t info;
    assert_int_equal(brain_flowset_flow_info(fs, 0, &info), 0);
    assert_string_equal(info.name, "f");
    assert_string_equal(info.status, "planned");
    assert_int_equal(info.n_nodes, 2);
    assert_int_equal(info.n_intents, 1);
    assert_int_equal(brain_flowset_flow_info(fs, 1, &info), CORE_ERR_NOT_FOUND);
    brain_flowset_unref(fs);
}

static void test_syntax_error_position(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1("{\"name\": \"f\",\n  \"nodes\": {,}}", &fs);
    assert_null(fs);
    assert_has(e, "t.json:2:13: ");
}

static void test_unknown_node_reference(void **state)
{
    brain_flowset_t *fs;
    const char *e =
        compile1("{\"name\": \"f\", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"say\", \"message\": \"hi\", \"next\": \"nope\"}}}",
                 &fs);
    assert_null(fs);
    assert_string_equal(e, "t.json:2:49: nodes.a.next: unknown node \"nope\" in flow \"f\"");
}

static void test_unknown_flow_and_goto_node(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1("{\"name\": \"f\", \"nodes\": {\n"
                             "  \"a\": {\"type\": \"goto\", \"flow\": \"g\"},\n"
                             "  \"b\": {\"type\": \"goto\", \"flow\": \"f\", \"node\": \"zz\"}}}",
                             &fs);
    assert_null(fs);
    assert_has(e, "t.json:2:33: nodes.a.flow: unknown flow \"g\"");
    assert_has(e, "nodes.b.node: unknown node \"zz\" in flow \"f\"");
}

static void test_unreachable_node(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1("{\"name\": \"f\", \"nodes\": {\n"
                             "  \"a\": {\"type\": \"say\", \"message\": \"hi\"},\n"
                             "  \"orphan\": {\"type\": \"say\", \"message\": \"lost\"}}}",
                             &fs);
    assert_null(fs);
    assert_string_equal(e, "t.json:3:13: nodes.orphan: node \"orphan\" is unreachable from \"a\"");
}

static void test_goto_target_is_reachable(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"a\", \"nodes\": {\"x\": {\"type\": \"goto\", \"flow\": \"b\", \"node\": "
        "\"late\"}}}",
        "{\"name\": \"b\", \"nodes\": {\"first\": {\"type\": \"say\", \"message\": \"1\"},"
        " \"late\": {\"type\": \"say\", \"message\": \"2\"}}}"};
    brain_flowset_t *fs;
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    brain_flowset_unref(fs);
}

static void test_slot_used_before_filled(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1(
        "{\"name\": \"f\", \"slots\": {\"ref\": {\"type\": \"text\"}}, \"nodes\": {\n"
        "  \"early\": {\"type\": \"say\", \"message\": \"Ref {{ref}}\", \"next\": \"ask\"},\n"
        "  \"ask\": {\"type\": \"ask\", \"slot\": \"ref\", \"prompt\": \"?\", \"next\": \"cmp\"},\n"
        "  \"cmp\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\": \"ref\", \"exists\": "
        "true}, \"next\": \"late\"}], \"default\": \"late\"},\n"
        "  \"late\": {\"type\": \"say\", \"message\": \"Ref {{ref}}\"}}}",
        &fs);
    assert_null(fs);
    assert_string_equal(e, "t.json:2:12: nodes.early: a message uses slot \"ref\" before any path "
                           "can have filled it");
}

static void test_slot_default_and_caller_fill(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"a\", \"slots\": {\"who\": {\"type\": \"text\"}, \"lang\": {\"type\": \"any\","
        " \"default\": \"en\"}}, \"nodes\": {"
        "\"ask\": {\"type\": \"ask\", \"slot\": \"who\", \"prompt\": \"{{lang}}?\", \"next\": "
        "\"c\"},"
        "\"c\": {\"type\": \"call\", \"flow\": \"b\"}}}",
        "{\"name\": \"b\", \"nodes\": {\"s\": {\"type\": \"say\", \"message\": \"hi {{who}}\"}}}"};
    brain_flowset_t *fs;
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    brain_flowset_unref(fs);
}

static void test_duplicates(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"same\", \"intents\": {\"i\": [\"x\"]}, \"nodes\": {\"n\": {\"type\": "
        "\"say\", \"message\": \"1\"}}}",
        "{\"name\": \"same\", \"nodes\": {\"n\": {\"type\": \"say\", \"message\": \"1\"}}}"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 2, NULL, &fs);
    assert_null(fs);
    assert_has(e, "b.json:1:10: name: duplicate flow name \"same\" (also in a.json)");

    const char *t2[] = {
        "{\"name\": \"a\", \"intents\": {\"i\": [\"x\"]}, \"nodes\": {\"n\": {\"type\": \"say\", "
        "\"message\": \"1\"}}}",
        "{\"name\": \"b\", \"intents\": {\"i\": [\"y\"]}, \"nodes\": {\"n\": {\"type\": \"say\", "
        "\"message\": \"1\"}}}"};
    e = compile_n(names, t2, 2, NULL, &fs);
    assert_has(e, "b.json:1:32: intents.i: duplicate intent \"i\" (already starts flow \"a\")");

    e = compile1("{\"name\": \"f\", \"nodes\": {\"n\": {\"type\": \"say\", \"message\": \"1\"},"
                 " \"n\": {\"type\": \"say\", \"message\": \"2\"}}}",
                 &fs);
    assert_has(e, "duplicate object key");
}

static void test_wrong_types_and_keys(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1(
        "{\"name\": \"f\", \"status\": \"done\", \"slots\": {\"n\": {\"type\": \"number\"}},\n"
        " \"nodes\": {\n"
        "  \"a\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"?\", \"max_attempts\": "
        "\"3\"},\n"
        "  \"b\": {\"type\": \"shout\"},\n"
        "  \"c\": {\"type\": \"say\", \"message\": 42, \"colour\": \"red\"}}}",
        &fs);
    assert_null(fs);
    assert_has(e, "t.json:1:25: status: must be one of planned, in progress, live, optimizing");
    assert_has(e, "t.json:3:68: nodes.a.max_attempts: must be an integer 1-10");
    assert_has(e, "t.json:4:17: nodes.b.type: unknown node type \"shout\"");
    assert_has(e, "t.json:5:35: nodes.c.message: a message is a string or an object");
    assert_has(e, "t.json:5:49: nodes.c.colour: unknown key");
}

static void test_template_errors(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1(
        "{\"name\": \"f\", \"nodes\": {\n"
        "  \"a\": {\"type\": \"say\", \"messages\": [\"{{nobody}}\", \"{{x|shout}}\", \"{{open\","
        " \"{{vars.none}}\"]}}}",
        &fs);
    assert_null(fs);
    assert_has(e, "t.json:2:37: nodes.a.messages[0]: template refers to unknown slot \"nobody\"");
    assert_has(e, "nodes.a.messages[1]: unknown filter \"shout\"");
    assert_has(e, "nodes.a.messages[2]: \"{{\" at offset 0 is never closed");
    assert_has(e, "nodes.a.messages[3]: template refers to unknown variable \"vars.none\"");
}

static void test_cycle_without_ask(void **state)
{
    brain_flowset_t *fs;
    const char *e =
        compile1("{\"name\": \"f\", \"slots\": {\"s\": {\"type\": \"any\"}}, \"nodes\": {\n"
                 "  \"a\": {\"type\": \"say\", \"message\": \"1\", \"next\": \"b\"},\n"
                 "  \"b\": {\"type\": \"set\", \"set\": {\"s\": \"x\"}, \"next\": \"a\"}}}",
                 &fs);
    assert_null(fs);
    assert_has(e, "nodes.b: cycle with no ask in it would never wait for the user: a -> b -> a");
    /* the same loop through an ask is fine */
    e = compile1("{\"name\": \"f\", \"slots\": {\"s\": {\"type\": \"text\"}}, \"nodes\": {\n"
                 "  \"a\": {\"type\": \"ask\", \"slot\": \"s\", \"prompt\": \"?\", \"force\": true,"
                 " \"next\": \"b\"},\n"
                 "  \"b\": {\"type\": \"say\", \"message\": \"{{s}}\", \"next\": \"a\"}}}",
                 &fs);
    assert_string_equal(e, "");
    brain_flowset_unref(fs);
}

/* A flow that is one long chain (30,000 nodes) is checked without a stack
 * frame per node, and a loop through a branch's 70th case is seen. */
static void test_long_chain_and_many_cases(void **state)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)16 << 20);
    core_buf_printf(&b, "{\"name\": \"f\", \"nodes\": {\n");
    for (int i = 0; i < 30000; i++) {
        core_buf_printf(&b, "\"n%d\": {\"type\": \"say\", \"message\": \"%d\"", i, i);
        if (i + 1 < 30000)
            core_buf_printf(&b, ", \"next\": \"n%d\"", i + 1);
        core_buf_printf(&b, "},\n");
    }
    core_buf_printf(&b, "\"z\": {\"type\": \"say\", \"message\": \"unused\"}}}");
    brain_flowset_t *fs;
    const char *e = compile1(b.data, &fs);
    assert_null(fs);
    assert_has(e, "t.json:30002:6: nodes.z: node \"z\" is unreachable from \"n0\"");
    /* and a turn could never walk it: the budget is BRAIN_MAX_STEPS nodes */
    assert_has(e, "t.json:2:7: nodes.n0: a turn would visit 30000 nodes from here before it "
                  "waits for the user; a turn visits at most 64");
    core_buf_reset(&b);
    core_buf_printf(&b, "{\"name\": \"f\", \"slots\": {\"s\": {\"type\": \"any\"}},"
                        " \"nodes\": {\n \"a\": {\"type\": \"branch\", \"cases\": [");
    for (int i = 0; i < 70; i++)
        core_buf_printf(&b, "%s{\"if\": {\"slot\": \"s\", \"equals\": \"%d\"}, \"next\": \"%s\"}",
                        i ? ", " : "", i, i == 69 ? "b" : "c");
    core_buf_printf(&b, "], \"default\": \"c\"},\n"
                        " \"b\": {\"type\": \"set\", \"set\": {\"s\": \"x\"}, \"next\": \"a\"},\n"
                        " \"c\": {\"type\": \"say\", \"message\": \"done\"}}}");
    e = compile1(b.data, &fs);
    assert_null(fs);
    assert_has(e, "cycle with no ask in it would never wait for the user: a -> b -> a");
    core_buf_dispose(&b);
    (void)state;
}

/* Calls nest at most BRAIN_STACK_MAX deep, and a call may not recurse: the
 * interpreter would drop the return point and go on as if it were a goto. */
static void test_call_depth_and_recursion(void **state)
{
    const char *names[6] = {"f0.json", "f1.json", "f2.json", "f3.json", "f4.json", "f5.json"};
    char texts[6][256];
    const char *t[6];
    for (int i = 0; i < 6; i++) {
        if (i < 5)
            snprintf(texts[i], sizeof(texts[i]),
                     "{\"name\": \"f%d\", \"nodes\": {\"c\": {\"type\": \"call\", \"flow\":"
                     " \"f%d\", \"next\": \"back\"}, \"back\": {\"type\": \"say\", \"message\":"
                     " \"back in f%d\"}}}",
                     i, i + 1, i);
        else
            snprintf(texts[i], sizeof(texts[i]),
                     "{\"name\": \"f5\", \"nodes\": {\"r\": {\"type\": \"return\"}}}");
        t[i] = texts[i];
    }
    brain_flowset_t *fs;
    /* f1 .. f5: four calls deep, the most there is room for */
    assert_string_equal(compile_n(names + 1, t + 1, 5, NULL, &fs), "");
    brain_flowset_unref(fs);
    const char *e = compile_n(names, t, 6, NULL, &fs);
    assert_null(fs);
    assert_has(e, "f0.json:1:31: nodes.c: calls nest 5 deep from here (through flow \"f1\"); at "
                  "most 4");
    /* f0 calls f1, which calls f0 back */
    const char *rn[] = {"a.json", "b.json"};
    const char *rt[] = {
        "{\"name\": \"a\", \"nodes\": {\"c\": {\"type\": \"call\", \"flow\": \"b\", \"next\":"
        " \"d\"}, \"d\": {\"type\": \"say\", \"message\": \"done\"}}}",
        "{\"name\": \"b\", \"nodes\": {\"c\": {\"type\": \"call\", \"flow\": \"a\", \"next\":"
        " \"r\"}, \"r\": {\"type\": \"return\"}}}"};
    e = compile_n(rn, rt, 2, NULL, &fs);
    assert_null(fs);
    assert_has(e, "b.json:1:30: nodes.c: calls flow \"a\", which is already waiting for this call "
                  "to return");
    (void)state;
}

/* A path of more nodes than a turn's budget before any wait is refused at
 * its first node; one within the budget is fine. */
static void test_path_longer_than_a_turn(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    for (int total = 64; total <= 65; total++) {
        core_buf_reset(&b);
        core_buf_printf(&b, "{\"name\": \"f\", \"slots\": {\"s\": {\"type\": \"any\"}},"
                            " \"nodes\": {\n");
        for (int i = 0; i < total; i++) {
            core_buf_printf(&b, "%s\"n%d\": {\"type\": \"set\", \"set\": {\"s\": \"%d\"}",
                            i ? ",\n" : "", i, i);
            if (i + 1 < total)
                core_buf_printf(&b, ", \"next\": \"n%d\"", i + 1);
            core_buf_printf(&b, "}");
        }
        core_buf_printf(&b, "}}");
        brain_flowset_t *fs;
        const char *e = compile1(b.data, &fs);
        if (total == 64) {
            assert_string_equal(e, "");
            brain_flowset_unref(fs);
        } else {
            assert_null(fs);
            assert_has(e, "t.json:2:7: nodes.n0: a turn would visit 65 nodes from here");
        }
    }
    core_buf_dispose(&b);
    (void)state;
}

/* A cycle through a goto into another flow and back, with no ask on it,
 * is refused as one within a flow is; with an ask on the way it is fine. */
static void test_cycle_across_flows(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"a\", \"nodes\": {\"x\": {\"type\": \"say\", \"message\": \"in a\","
        " \"next\": \"g\"}, \"g\": {\"type\": \"goto\", \"flow\": \"b\"}}}",
        "{\"name\": \"b\", \"nodes\": {\"y\": {\"type\": \"say\", \"message\": \"in b\","
        " \"next\": \"h\"}, \"h\": {\"type\": \"goto\", \"flow\": \"a\"}}}"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 2, NULL, &fs);
    assert_null(fs);
    assert_has(e, "cycle through flows with no ask in it would never wait for the user: "
                  "a.x -> a.g -> b.y -> b.h -> a.x");
    texts[1] = "{\"name\": \"b\", \"slots\": {\"s\": {\"type\": \"text\"}}, \"nodes\": {"
               "\"y\": {\"type\": \"ask\", \"slot\": \"s\", \"prompt\": \"?\", \"force\": true,"
               " \"next\": \"h\"}, \"h\": {\"type\": \"goto\", \"flow\": \"a\"}}}";
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    brain_flowset_unref(fs);
    (void)state;
}

/* The router's limit on an intent's name is said at the intent. */
static void test_intent_name_too_long(void **state)
{
    char name[301];
    memset(name, 'i', 300);
    name[300] = '\0';
    char text[600];
    snprintf(text, sizeof(text),
             "{\"name\": \"f\", \"intents\": {\"%s\": [\"hi\"]},\n"
             " \"nodes\": {\"a\": {\"type\": \"say\", \"message\": \"hi\"}}}",
             name);
    brain_flowset_t *fs;
    const char *e = compile1(text, &fs);
    assert_null(fs);
    assert_has(e, "t.json:1:331: intents.iiii");
    assert_has(e, ": intent name longer than 256 bytes");
    (void)state;
}

static void test_every_error_at_once(void **state)
{
    brain_flowset_t *fs;
    const char *e =
        compile1("{\"name\": \"f\", \"nodes\": {\n"
                 "  \"a\": {\"type\": \"say\", \"message\": \"{{x}}\", \"next\": \"b\"},\n"
                 "  \"c\": {\"type\": \"handoff\"},\n"
                 "  \"d\": {\"type\": \"ask\"}}}",
                 &fs);
    assert_null(fs);
    int lines = 1;
    for (const char *p = e; *p; p++)
        lines += *p == '\n';
    assert_true(lines >= 5);
    assert_has(e, "t.json:2:35: nodes.a.message: template refers to unknown slot \"x\"");
    assert_has(e, "nodes.a.next: unknown node \"b\"");
    assert_has(e, "nodes.c: missing required key \"reason\"");
    assert_has(e, "nodes.d: missing required key \"slot\"");
    assert_has(e, "nodes.d: missing required key \"prompt\"");
}

static void test_slot_definitions(void **state)
{
    const char *names[] = {"a.json", "b.json"};
    const char *texts[] = {
        "{\"name\": \"a\", \"slots\": {\"r\": {\"type\": \"regex\", \"pattern\": \"([A-Z\"},"
        " \"c\": {\"type\": \"choice\"}, \"t\": {\"type\": \"colour\"}, \"s\": {\"type\":"
        " \"text\"}}, \"nodes\": {\"n\": {\"type\": \"say\", \"message\": \"1\"}}}",
        "{\"name\": \"b\", \"slots\": {\"s\": {\"type\": \"number\"}}, \"nodes\": {\"n\": "
        "{\"type\": \"say\", \"message\": \"1\"}}}"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 2, NULL, &fs);
    assert_null(fs);
    assert_has(e, "a.json:1:59: slots.r.pattern: pattern \"([A-Z\": missing terminating ]");
    assert_has(e, "slots.c.choices: a choice slot needs a non-empty \"choices\" array");
    assert_has(e, "slots.t.type: unknown slot type \"colour\"");
    assert_has(e, "b.json:1:30: slots.s: slot \"s\" is already declared as text in a.json");
}

static void test_settings_and_vars(void **state)
{
    const char *names[] = {"settings.json", "f.json"};
    const char *texts[] = {
        "{\"settings\": {\"welcome_flow\": \"nope\", \"idle_timeout_s\": 5, \"vars\": {\"base\": "
        "{\"default\": \"http://a\", \"env\": \"T_BASE\"}}}}",
        "{\"name\": \"f\", \"nodes\": {\"n\": {\"type\": \"say\", \"message\": "
        "\"{{vars.base}}\"}}}"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 2, NULL, &fs);
    assert_null(fs);
    assert_has(e, "settings.json:1:31: settings.welcome_flow: unknown flow \"nope\"");
    assert_has(e, "settings.json:1:57: settings.idle_timeout_s: must be an integer 10-2592000");

    texts[0] = "{\"settings\": {\"idle_timeout_s\": 60, \"vars\": {\"base\": "
               "{\"default\": \"http://a\", \"env\": \"T_BASE\"}}}}";
    const char *envp[] = {"OTHER=1", "T_BASE=http://override", NULL};
    assert_string_equal(compile_n(names, texts, 2, envp, &fs), "");
    assert_int_equal(brain_flowset_idle_timeout_us(fs), 60LL * 1000000);
    brain_conv_t c;
    brain_conv_init(&c, fs, BRAIN_CH_CHAT, T0_US);
    core_buf_t b;
    core_buf_init(&b, 1024);
    assert_int_equal(
        brain_template_render_string(fs, &c, "{{vars.base}}/x", BRAIN_CH_CHAT, &b, NULL), 0);
    assert_string_equal(b.data, "http://override/x");
    core_buf_dispose(&b);
    brain_conv_dispose(&c);
    brain_flowset_unref(fs);
}

static void test_action_and_llm_checks(void **state)
{
    brain_flowset_t *fs;
    const char *e =
        compile1("{\"name\": \"f\", \"slots\": {\"s\": {\"type\": \"any\"}}, \"nodes\": {\n"
                 "  \"a\": {\"type\": \"action\", \"method\": \"FETCH\", \"url\": \"http://x\","
                 " \"headers\": {\"X Bad\": \"v\", \"X-Good\": \"v\"},"
                 " \"map\": {\"s\": \"no-slash\", \"zz\": \"/a\"}, \"next\": \"l\"},\n"
                 "  \"l\": {\"type\": \"llm\", \"temperature\": 3, \"on_error\": \"a\"}}}",
                 &fs);
    assert_null(fs);
    assert_has(e, "nodes.a.method: must be GET, POST, PUT, PATCH or DELETE");
    assert_has(e, "t.json:2:86: nodes.a.headers.X Bad: \"X Bad\" is not a header name");
    assert_has(e, "nodes.a.map.s: must be a JSON pointer");
    assert_has(e, "nodes.a.map.zz: unknown slot \"zz\"");
    assert_has(e, "nodes.a: missing required key \"on_error\"");
    assert_has(e, "nodes.l: missing \"base_url\" (here or in settings.llm)");
    assert_has(e, "nodes.l.temperature: must be a number 0-2");
}

static void test_unknown_intent_in_condition(void **state)
{
    brain_flowset_t *fs;
    const char *e = compile1("{\"name\": \"f\", \"intents\": {\"known\": [\"k\"]}, \"nodes\": {\n"
                             "  \"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"intent\": "
                             "\"known\"}, \"next\": \"s\"}, {\"if\": {\"intent\": \"unknown\"}, "
                             "\"next\": \"s\"}], \"default\": \"s\"},\n"
                             "  \"s\": {\"type\": \"say\", \"message\": \"x\"}}}",
                             &fs);
    assert_null(fs);
    assert_string_equal(e, "t.json:2:8: nodes.b: a condition tests unknown intent \"unknown\"");
}

static void test_more_errors(void **state)
{
    const char *names[] = {"s1.json", "s2.json", "f.json", "g.json"};
    const char *texts[] = {
        "{\"settings\": {\"vars\": {\"v\": \"1\"}}}", "{\"settings\": {\"vars\": {\"v\": \"2\"}}}",
        "{\"name\": \"f\", \"slots\": {\"_x\": {\"type\": \"text\"}, \"a\": {\"type\": "
        "\"any\", \"choices\": [\"x\"], \"pattern\": \"y\"}}, \"nodes\": {"
        "\"n\": {\"type\": \"ask\", \"slot\": \"a\", \"prompt\": \"?\", \"next\": \"b\"},"
        "\"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\": \"a\", \"equals\": 1, "
        "\"gt\": 2}, \"next\": \"m\"}, {\"if\": {\"channel\": \"fax\"}, \"next\": \"m\"},"
        " {\"if\": {\"entity\": \"shoe\"}, \"next\": \"m\"}, {\"if\": {}, \"next\": \"m\"}],"
        " \"default\": \"m\"},"
        "\"m\": {\"type\": \"say\", \"message\": \"1\", \"messages\": [\"2\"]}}}",
        "[1, 2]"};
    brain_flowset_t *fs;
    const char *e = compile_n(names, texts, 4, NULL, &fs);
    assert_null(fs);
    assert_has(e, "s2.json:1:14: settings: settings are already given in s1.json");
    assert_has(e, "s2.json:1:29: settings.vars.v: variable \"v\" is declared twice");
    assert_has(e, "g.json:1:1: a flow file is a JSON object");
    assert_has(e, "slots._x: slot names are letters, digits and '_', not starting with '_'");
    assert_has(e, "slots.a.pattern: only regex slots take a pattern");
    assert_has(e, "slots.a.choices: only choice slots take choices");
    assert_has(e, "nodes.n.slot: slot \"a\" has type any and cannot be asked for");
    assert_has(e, "nodes.b.cases[0].if: a slot condition needs exactly one of exists");
    assert_has(e, "nodes.b.cases[1].if.channel: unknown channel \"fax\"");
    assert_has(e, "nodes.b.cases[2].if.entity: unknown entity type \"shoe\"");
    assert_has(e, "nodes.b.cases[3].if: a condition needs slot, intent, channel, entity");
    assert_has(e, "nodes.m: give either \"message\" or \"messages\", not both");
}

static void test_refcount_and_no_flows(void **state)
{
    brain_flowset_t *fs;
    assert_string_equal(compile1(OK_FLOW, &fs), "");
    assert_ptr_equal(brain_flowset_ref(fs), fs);
    brain_flowset_unref(fs);
    assert_int_equal(brain_flowset_version(fs), 1);
    brain_flowset_unref(fs);
    brain_flowset_unref(NULL);
    const char *e = compile1("{\"settings\": {}}", &fs);
    assert_null(fs);
    assert_has(e, "no flows found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_flow),
        cmocka_unit_test(test_syntax_error_position),
        cmocka_unit_test(test_unknown_node_reference),
        cmocka_unit_test(test_unknown_flow_and_goto_node),
        cmocka_unit_test(test_unreachable_node),
        cmocka_unit_test(test_goto_target_is_reachable),
        cmocka_unit_test(test_slot_used_before_filled),
        cmocka_unit_test(test_slot_default_and_caller_fill),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_wrong_types_and_keys),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_cycle_without_ask),
        cmocka_unit_test(test_long_chain_and_many_cases),
        cmocka_unit_test(test_intent_name_too_long),
        cmocka_unit_test(test_cycle_across_flows),
        cmocka_unit_test(test_path_longer_than_a_turn),
        cmocka_unit_test(test_call_depth_and_recursion),
        cmocka_unit_test(test_every_error_at_once),
        cmocka_unit_test(test_slot_definitions),
        cmocka_unit_test(test_settings_and_vars),
        cmocka_unit_test(test_action_and_llm_checks),
        cmocka_unit_test(test_unknown_intent_in_condition),
        cmocka_unit_test(test_more_errors),
        cmocka_unit_test(test_refcount_and_no_flows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
