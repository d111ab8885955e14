/* Loading guardrail rules: the shipped file loads and equals the built-in
 * document; every kind of mistake is reported with file:line:col and path;
 * custom patterns, per-flow sections and overrides take effect. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/guard.h"
#include "chorus/policy.h"

/* Loads text and returns the diagnostics joined by '\n' (static). */
static const char *load_errors(const char *text, int *rc)
{
    static char out[4096];
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g = NULL;
    *rc = guard_rules_load(text, strlen(text), "g.json", &g, &d);
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < d.len && used < sizeof(out); i++) {
        char line[1024];
        core_diag_format(&d.items[i], line, sizeof(line));
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", i ? "\n" : "", line);
    }
    assert_true(*rc == 0 ? g != NULL : g == NULL);
    guard_rules_free(g);
    core_diags_dispose(&d);
    return out;
}

static void test_shipped_file(void **state)
{
    const char *dir = getenv("CHORUS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/config/guardrails.json", dir ? dir : "..");
    char *text;
    size_t len;
    core_err_t err;
    assert_int_equal(core_file_read(path, 1 << 20, &text, &len, &err), 0);
    int rc;
    const char *errs = load_errors(text, &rc);
    assert_string_equal(errs, "");
    assert_int_equal(rc, 0);
    /* the built-in rules are the same document */
    json_t *a = json_loads(text, 0, NULL);
    json_t *b = json_loads(guard_rules_default_json(), 0, NULL);
    assert_non_null(a);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    free(text);
}

static void test_errors_have_positions(void **state)
{
    int rc;
    const char *errs = load_errors("{\n"
                                   "  \"input\": {\n"
                                   "    \"pii\": {\"card\": {\"action\": \"shred\"}},\n"
                                   "    \"abuse\": {\"terms\": [\"ok\", 3]},\n"
                                   "    \"injection\": {\"threshold\": 7},\n"
                                   "    \"custom\": [{\"name\": \"x\", \"pattern\": \"(a\"}],\n"
                                   "    \"colour\": 1\n"
                                   "  },\n"
                                   "  \"output\": {\"length\": {\"channels\": {\"sms\": \"x\"}}},\n"
                                   "  \"escalation\": {\"fallbacks\": {\"consecutive\": true}}\n"
                                   "}\n",
                                   &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(errs, "g.json:3:32: input.pii.card.action: must be one of "
                                 "allow|redact|block|escalate (got \"shred\")"));
    assert_non_null(strstr(errs, "g.json:4:31: input.abuse.terms[1]: must be a non-empty string"));
    assert_non_null(strstr(errs, "g.json:5:32: input.injection.threshold: must be 0.01-1 (got 7)"));
    assert_non_null(strstr(errs, "g.json:6:41: input.custom[0].pattern: bad regular expression"));
    assert_non_null(strstr(errs, "g.json:7:15: input.colour: unknown key"));
    assert_non_null(
        strstr(errs, "g.json:9:45: output.length.channels.sms: must be a positive integer"));
    assert_non_null(
        strstr(errs, "g.json:10:47: escalation.fallbacks.consecutive: must be a number"));
}

static void test_syntax_error(void **state)
{
    int rc;
    const char *errs = load_errors("{\n  \"input\": {,}\n}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_non_null(strstr(errs, "g.json:2:"));
    errs = load_errors("[1]", &rc);
    assert_string_equal(errs, "g.json:1:1: guardrail rules must be a JSON object");
}

static int fired(const guard_result_t *r, const char *rule)
{
    for (size_t i = 0; i < r->n_decisions; i++)
        if (strcmp(r->decisions[i].rule, rule) == 0)
            return 1;
    return 0;
}

static const char *custom_doc =
    "{\"input\": {\"custom\": [{\"name\": \"order\", \"pattern\": \"\\\\bORD-[0-9]{6}\\\\b\","
    " \"label\": \"ORDER\"}], \"pii\": {\"email\": {\"action\": \"allow\"}}},"
    " \"flows\": {\"vip\": {\"input\": {\"pii\": {\"email\": {\"action\": \"block\","
    " \"reply\": \"no emails here\"}}}}}}";

static void test_custom_and_flows(void **state)
{
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g;
    assert_int_equal(guard_rules_load(custom_doc, strlen(custom_doc), "c.json", &g, &d), 0);
    guard_ctx_t ctx = {.channel = "web"};
    guard_result_t r;
    const char *t = "order ORD-123456 for a@b.com";
    assert_int_equal(guard_check_input(g, &ctx, t, strlen(t), &r), 0);
    assert_string_equal(r.text, "order [ORDER] for a@b.com"); /* allow keeps the address */
    assert_true(fired(&r, "custom.order") && fired(&r, "pii.email"));
    assert_int_equal(r.action, GUARD_REDACT);
    guard_result_dispose(&r);
    ctx.flow = "vip";
    assert_int_equal(guard_check_input(g, &ctx, t, strlen(t), &r), 0);
    assert_int_equal(r.action, GUARD_BLOCK);
    assert_string_equal(r.reply, "no emails here");
    assert_string_equal(r.text, "order [ORDER] for [EMAIL]");
    guard_result_dispose(&r);
    /* an override from a flow file */
    guard_rules_t *o;
    const char *over = "{\"input\": {\"custom\": null, \"abuse\": {\"terms\": [\"darn\"]}}}";
    assert_int_equal(guard_rules_override(g, over, strlen(over), "flow.json", &o, &d), 0);
    ctx.flow = NULL;
    t = "darn ORD-123456";
    assert_int_equal(guard_check_input(o, &ctx, t, strlen(t), &r), 0);
    assert_true(fired(&r, "abuse"));
    assert_string_equal(r.text, t);
    guard_result_dispose(&r);
    guard_rules_free(o);
    /* a bad override names the flow file and its position */
    over = "{\n \"input\": {\"abuse\": {\"terms\": 1}}}";
    assert_int_equal(guard_rules_override(g, over, strlen(over), "flow.json", &o, &d),
                     CORE_ERR_INVALID);
    assert_null(o);
    assert_int_equal(d.len, 1);
    char line[512];
    core_diag_format(&d.items[0], line, sizeof(line));
    assert_string_equal(line, "flow.json:2:31: input.abuse.terms: must be an array");
    core_diags_dispose(&d);
    guard_rules_free(g);
}

static void test_truncate_and_invalid_utf8(void **state)
{
    const char *doc = "{\"input\": {\"pii\": {\"card\": {}}, \"custom\": [{\"name\": \"pin\","
                      " \"pattern\": \"PIN \\\\d{4}\"}]},"
                      " \"output\": {\"length\": {\"action\": \"truncate\","
                      " \"channels\": {\"sms\": 20}}}}";
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g;
    assert_int_equal(guard_rules_load(doc, strlen(doc), "t.json", &g, &d), 0);
    guard_ctx_t ctx = {.channel = "sms", .from_llm = 1};
    guard_result_t r;
    const char *t = "Your parcel left the depot this morning.";
    assert_int_equal(guard_check_output(g, &ctx, t, strlen(t), &r), 0);
    assert_int_equal(r.action, GUARD_REDACT);
    assert_false(r.use_fallback);
    assert_string_equal(r.text, "Your parcel left...");
    assert_true(fired(&r, "output.length"));
    guard_result_dispose(&r);
    /* invalid UTF-8 must not hide PII from the regexes or the detectors */
    const char bad[] = "PIN 1234 \xff\xfe card 4111 1111 1111 1111 \xc3";
    assert_int_equal(guard_check_input(g, &ctx, bad, sizeof(bad) - 1, &r), 0);
    assert_string_equal(r.text, "[REDACTED] ?? card [CARD] ?");
    assert_true(fired(&r, "custom.pin") && fired(&r, "pii.card"));
    guard_result_dispose(&r);
    guard_rules_free(g);
    core_diags_dispose(&d);
}

static void test_flow_section_positions(void **state)
{
    int rc;
    const char *errs = load_errors("{\"flows\": {\"x\": {\n  \"input\": {\"lenght\": {}}}}}", &rc);
    assert_int_equal(rc, CORE_ERR_INVALID);
    assert_string_equal(errs, "g.json:2:23: flows.x.input.lenght: unknown key");
}

static void collect(const char *rule, void *arg)
{
    size_t *n = arg;
    (*n)++;
    assert_non_null(rule);
}

static void test_foreach_and_policy(void **state)
{
    guard_rules_t *g = guard_rules_default();
    size_t n = 0;
    guard_rules_foreach(g, collect, &n);
    /* 5 input PII + 1 custom + injection, abuse, length, 2 rates + 2 topics + 5 output PII
     * + banned, promises, length */
    assert_int_equal(n, 5 + 1 + 5 + 2 + 5 + 3);
    assert_non_null(guard_rules_policy(g));
    guard_rules_free(g);
    int rc;
    load_errors("{}", &rc);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_errors_have_positions),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_custom_and_flows),
        cmocka_unit_test(test_truncate_and_invalid_utf8),
        cmocka_unit_test(test_flow_section_positions),
        cmocka_unit_test(test_foreach_and_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
