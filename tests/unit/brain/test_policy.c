/* The escalation policy: each criterion fires with its reason code and no
 * sooner than configured, the fixed order of reasons, the human-request
 * phrasing rules, the sentiment scorer, and loading errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/policy.h"

static guard_rules_t *rules;
static const policy_t *pol;

static int setup(void **state)
{
    rules = guard_rules_default();
    pol = guard_rules_policy(rules);
    return pol == NULL;
}

static int teardown(void **state)
{
    guard_rules_free(rules);
    return 0;
}

static policy_decision_t turn(policy_state_t *st, const char *text, int fallback)
{
    policy_turn_t t = {.text = text, .len = text ? strlen(text) : 0, .fallback = fallback};
    policy_decision_t d;
    assert_int_equal(policy_evaluate(pol, st, &t, &d), 0);
    return d;
}

static void test_human_request(void **state)
{
    const char *yes[] = {"can I talk to a human",
                         "I want to speak with an agent please",
                         "agent",
                         "Representative!",
                         "get me a real person",
                         "let me talk to your manager",
                         "operator please"};
    const char *no[] = {"my travel agent booked the wrong date", "I don't want an agent",
                        "is this a human or a bot, just curious what tech you use",
                        "my manager approved the expense report yesterday"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!policy_wants_human(pol, yes[i], strlen(yes[i])))
            fail_msg("missed human request \"%s\"", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (policy_wants_human(pol, no[i], strlen(no[i])))
            fail_msg("false human request \"%s\"", no[i]);
    policy_state_t st = {0};
    policy_decision_t d = turn(&st, "talk to a human now", 0);
    assert_true(d.escalate);
    assert_int_equal(d.criterion, POLICY_HUMAN_REQUEST);
    assert_string_equal(d.reason, "user_requested_human");
}

static void test_fallbacks(void **state)
{
    policy_state_t st = {0};
    assert_false(turn(&st, "blorp", 1).escalate);
    assert_false(turn(&st, "zzz", 1).escalate);
    assert_false(turn(&st, "where is my parcel", 0).escalate); /* resets the run */
    assert_false(turn(&st, "qqq", 1).escalate);
    assert_false(turn(&st, "qqq", 1).escalate);
    policy_decision_t d = turn(&st, "qqq", 1);
    assert_true(d.escalate);
    assert_int_equal(d.criterion, POLICY_FALLBACKS);
    assert_string_equal(d.reason, "repeated_fallback");
}

static void test_sentiment_sustained(void **state)
{
    policy_state_t st = {0};
    assert_false(turn(&st, "this is terrible", 0).escalate);
    assert_false(turn(&st, "still broken, useless", 0).escalate);
    /* a positive turn breaks the run */
    assert_false(turn(&st, "ok thanks that helps", 0).escalate);
    assert_false(turn(&st, "now it is broken again, awful", 0).escalate);
    assert_false(turn(&st, "I am so frustrated", 0).escalate);
    policy_decision_t d = turn(&st, "this is the worst service, unacceptable", 0);
    assert_true(d.escalate);
    assert_int_equal(d.criterion, POLICY_SENTIMENT);
    assert_string_equal(d.reason, "negative_sentiment");
    assert_true(d.sentiment_avg < -0.35);
}

static void test_sentiment_scorer(void **state)
{
    assert_true(policy_sentiment("this is terrible", 16) < -0.5);
    assert_true(policy_sentiment("great, thanks!", 14) > 0.5);
    assert_true(policy_sentiment("not bad", 7) > 0);
    assert_true(policy_sentiment("not good", 8) < 0);
    assert_true(policy_sentiment("very bad", 8) < policy_sentiment("bad", 3));
    assert_true(policy_sentiment("what time do you open", 21) == 0);
    assert_true(policy_sentiment("t3rr1ble", 8) < 0);
    assert_true(policy_sentiment(NULL, 0) == 0);
    /* the lexicon is searched by bisection: words across the alphabet must score */
    const char *words[] = {"abysmal", "amazing", "hell", "late", "missing", "wtf", "worst"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (policy_sentiment(words[i], strlen(words[i])) == 0)
            fail_msg("\"%s\" has no score", words[i]);
    /* punctuation ends negation: "no, that's wrong" stays negative */
    assert_true(policy_sentiment("no, that's wrong", 16) < 0);
}

static void test_guardrail_and_sensitive(void **state)
{
    policy_state_t st = {0};
    guard_result_t g = {.action = GUARD_ESCALATE, .reason = "self_harm"};
    policy_turn_t t = {.text = "talk to a human", .len = 15, .guard = &g};
    policy_decision_t d;
    policy_evaluate(pol, &st, &t, &d);
    /* the guardrail outranks the human request */
    assert_int_equal(d.criterion, POLICY_GUARDRAIL);
    assert_string_equal(d.reason, "guardrail");
    assert_string_equal(d.detail, "self_harm");
    t = (policy_turn_t){.intent = "report_fraud"};
    policy_evaluate(pol, &st, &t, &d);
    assert_int_equal(d.criterion, POLICY_SENSITIVE_INTENT);
    assert_string_equal(d.detail, "report_fraud");
    t = (policy_turn_t){.intent = "check_balance", .flow = "bereavement"};
    policy_evaluate(pol, &st, &t, &d);
    assert_int_equal(d.criterion, POLICY_SENSITIVE_FLOW);
    assert_string_equal(d.reason, "sensitive_flow");
    t = (policy_turn_t){.intent = "check_balance", .flow = "billing"};
    policy_evaluate(pol, &st, &t, &d);
    assert_false(d.escalate);
    assert_null(d.reason);
}

static void test_action_failures(void **state)
{
    policy_state_t st = {0};
    policy_turn_t t = {.action_failed = 1};
    policy_decision_t d;
    policy_evaluate(pol, &st, &t, &d);
    assert_false(d.escalate);
    policy_evaluate(pol, &st, &t, &d);
    assert_true(d.escalate);
    assert_int_equal(d.criterion, POLICY_ACTION_FAILURES);
    assert_string_equal(d.reason, "action_failed");
    assert_string_equal(policy_criterion_name(d.criterion), "action_failures");
}

static void test_load(void **state)
{
    const char *doc = "{\"escalation\": {\"fallbacks\": {\"consecutive\": 1, \"reason\": \"lost\"},"
                      " \"sentiment\": {\"turns\": 99}}}";
    core_diags_t d;
    core_diags_init(&d);
    policy_t *p;
    assert_int_equal(policy_load(doc, strlen(doc), "p.json", &p, &d), CORE_ERR_INVALID);
    assert_int_equal(d.len, 1);
    char line[512];
    core_diag_format(&d.items[0], line, sizeof(line));
    assert_string_equal(line, "p.json:1:91: escalation.sentiment.turns: must be 1-16 (got 99)");
    core_diags_dispose(&d);
    doc = "{\"escalation\": {\"fallbacks\": {\"consecutive\": 1, \"reason\": \"lost\"}}}";
    assert_int_equal(policy_load(doc, strlen(doc), "p.json", &p, &d), 0);
    policy_state_t st = {0};
    policy_turn_t t = {.fallback = 1};
    policy_decision_t dec;
    policy_evaluate(p, &st, &t, &dec);
    assert_true(dec.escalate);
    assert_string_equal(dec.reason, "lost");
    /* criteria not configured never fire */
    t = (policy_turn_t){.text = "talk to a human", .len = 15};
    policy_evaluate(p, &st, &t, &dec);
    assert_false(dec.escalate);
    policy_free(p);
    assert_int_equal(policy_load("{}", 2, "p.json", &p, &d), CORE_ERR_INVALID);
    core_diags_dispose(&d);
}

static void test_flow_policy(void **state)
{
    const char *doc = "{\"escalation\": {\"fallbacks\": {\"consecutive\": 3}},"
                      " \"flows\": {\"vip\": {\"escalation\": {\"fallbacks\": {\"consecutive\": 1,"
                      " \"reason\": \"vip_lost\"}}}}}";
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g;
    assert_int_equal(guard_rules_load(doc, strlen(doc), "f.json", &g, &d), 0);
    policy_state_t st = {0};
    policy_turn_t t = {.fallback = 1};
    policy_decision_t dec;
    policy_evaluate(guard_rules_policy_for(g, "other"), &st, &t, &dec);
    assert_false(dec.escalate);
    memset(&st, 0, sizeof(st));
    policy_evaluate(guard_rules_policy_for(g, "vip"), &st, &t, &dec);
    assert_true(dec.escalate);
    assert_string_equal(dec.reason, "vip_lost");
    assert_ptr_equal(guard_rules_policy_for(g, NULL), guard_rules_policy(g));
    guard_rules_free(g);
    core_diags_dispose(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_human_request),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_sentiment_sustained),
        cmocka_unit_test(test_sentiment_scorer),
        cmocka_unit_test(test_guardrail_and_sensitive),
        cmocka_unit_test(test_action_failures),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_flow_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
