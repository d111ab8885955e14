/* Fuzz target: untrusted user and LLM text through every detector (cards,
 * SSNs, IBANs, e-mail addresses, phones, folding, term lists, injection
 * signals and encoded payloads), the output rails, the sentiment scorer and
 * the escalation policy, with the shipped rules. Checks that redaction keeps
 * the text well formed, and that the policy reading the input rails' fold
 * answers as the stand-alone functions that fold the text themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/guard.h"
#include "chorus/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static guard_rules_t *rules;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rules == NULL)
        rules = guard_rules_default(); /* kept for the process, as the daemon does */
    const char *text = (const char *)data;
    guard_ctx_t ctx = {.channel = "sms", .to_llm = 1, .from_llm = 1};
    guard_result_t r;
    if (guard_check_input(rules, &ctx, text, size, &r) != 0)
        abort();
    if (r.text == NULL || strlen(r.text) > r.text_len || r.n_decisions > GUARD_MAX_DECISIONS)
        abort();
    for (size_t i = 0; i < r.n_decisions; i++)
        if (r.decisions[i].end < r.decisions[i].start || r.decisions[i].end > size)
            abort();
    const policy_t *p = guard_rules_policy(rules);
    if (p != NULL) {
        policy_state_t st;
        memset(&st, 0, sizeof(st));
        policy_turn_t t = {.text = r.text, .len = r.text_len, .guard = &r};
        policy_decision_t d;
        policy_evaluate(p, &st, &t, &d);
        if (d.sentiment != policy_sentiment(r.text, r.text_len))
            abort();
        int human = policy_wants_human(p, r.text, r.text_len);
        if (d.criterion != POLICY_GUARDRAIL && human != (d.criterion == POLICY_HUMAN_REQUEST))
            abort();
    }
    guard_result_dispose(&r);
    if (guard_check_output(rules, &ctx, text, size, &r) != 0 || r.text == NULL)
        abort();
    guard_result_dispose(&r);
    double s = policy_sentiment(text, size);
    if (!(s >= -1.0 && s <= 1.0))
        abort();
    return 0;
}
