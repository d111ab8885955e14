/* policy.h — the escalation policy: declarative criteria, evaluated after
 * every turn, that hand a conversation to a human no matter where it is in
 * its flow, each with a reason code so reports can say why conversations
 * left automation.
 *
 * Criteria (the "escalation" section of config/guardrails.json):
 *   human_request      the user asks for a person ("talk to an agent")
 *   fallbacks          N consecutive turns the bot did not understand
 *   sentiment          negative sentiment sustained over N turns (a small
 *                      lexicon scorer, policy_sentiment(), in -1..1)
 *   guardrail          a guardrail rule whose action is escalate fired
 *   sensitive_intents  an intent that always goes to a person
 *   sensitive_flows    a flow that always goes to a person
 *   action_failures    a backend action failed N times in the conversation
 *
 * Pure logic (part of the brain). Threads: a compiled policy is immutable and
 * may be shared; a policy_state_t belongs to one conversation (one thread).
 * Ownership: policy_load() returns an owned policy (policy_free); the rules'
 * policy (guard_rules_policy) is borrowed from the rules. Decisions borrow
 * their strings from the policy.
 * Errors: 0 / negative CORE_ERR_*; files report `file:line:col: path: message`.
 * See docs/guardrails.md. */
#ifndef CHORUS_POLICY_H
#define CHORUS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"
#include "chorus/guard.h"

typedef struct policy_s policy_t;

typedef enum {
    POLICY_NONE = 0,
    POLICY_GUARDRAIL, /* most specific first: the reason order is fixed */
    POLICY_SENSITIVE_INTENT,
    POLICY_SENSITIVE_FLOW,
    POLICY_HUMAN_REQUEST,
    POLICY_ACTION_FAILURES,
    POLICY_FALLBACKS,
    POLICY_SENTIMENT,
} policy_criterion_t;

#define POLICY_SENTIMENT_WINDOW 16

/* Per-conversation counters; zero-initialise. Plain data, so the runtime can
 * persist it with the conversation. */
typedef struct policy_state_s {
    uint32_t consecutive_fallbacks;
    uint32_t action_failures;
    uint32_t turns;
    double sentiment[POLICY_SENTIMENT_WINDOW]; /* ring of the latest turn scores */
    uint32_t n_sentiment;                      /* scores recorded (saturates at window) */
    uint32_t next_sentiment;                   /* ring position of the next score */
} policy_state_t;

/* 1 when st holds something a later decision would read: fallbacks in a
 * row, failed actions, or an unhappy sentiment score in the window (0 for
 * NULL). The counters live in memory only: whoever drops them (the runtime
 * evicting a conversation) changes what the policy decides next. */
static inline int policy_state_holds(const policy_state_t *st)
{
    if (st == NULL)
        return 0;
    if (st->consecutive_fallbacks > 0 || st->action_failures > 0)
        return 1;
    for (uint32_t i = 0; i < st->n_sentiment; i++)
        if (st->sentiment[i] < 0)
            return 1;
    return 0;
}

/* What happened in the turn just taken. All borrowed for the call. */
typedef struct policy_turn_s {
    const char *text; /* the user's (redacted) utterance, may be NULL for events */
    size_t len;
    const char *intent;          /* routed intent, NULL if none */
    const char *flow;            /* flow the conversation is in, NULL if none */
    int fallback;                /* 1 if the turn ended in a fallback / not understood */
    int action_failed;           /* number of backend actions that failed this turn */
    const guard_result_t *guard; /* the input rails' result, may be NULL; when text is
                                    guard->text (same pointer and len), the fold the
                                    rails kept is read instead of folding text again */
} policy_turn_t;

typedef struct policy_decision_s {
    int escalate;                 /* 1: hand the conversation over */
    policy_criterion_t criterion; /* which criterion fired first */
    const char *reason;           /* reason code ("user_requested_human"), NULL if none */
    const char *detail;           /* what matched: the rail's reason, intent or flow name */
    double sentiment;             /* this turn's sentiment score */
    double sentiment_avg;         /* mean over the sentiment window, 0 until it fills */
} policy_decision_t;

/* Compiles the "escalation" object of a guardrails document (text is the
 * whole file; other sections are ignored here and checked by guard_rules_load). */
int policy_load(const char *json_text, size_t len, const char *file, policy_t **out,
                core_diags_t *diags);
/* The policy compiled with the rules (borrowed; NULL if the rules have no
 * "escalation" section). */
const policy_t *guard_rules_policy(const guard_rules_t *rules);
/* The policy in force in a flow: the flow's section of the rules ("flows"),
 * which may change the escalation criteria, else the global one. */
const policy_t *guard_rules_policy_for(const guard_rules_t *rules, const char *flow);
void policy_free(policy_t *p);

/* Records the turn in state and decides. Criteria are checked in the order
 * of the enum, so the reason is deterministic. The text is folded at most
 * once, for the sentiment and the human request together, and not at all
 * when turn->guard already holds its fold (see policy_turn_t.guard): the
 * decision is the same either way, as are policy_sentiment() and
 * policy_wants_human() on the same text. Returns 0. */
int policy_evaluate(const policy_t *p, policy_state_t *state, const policy_turn_t *turn,
                    policy_decision_t *out);

/* Lexicon sentiment of an utterance in -1 (angry) .. 1 (pleased), with
 * negation ("not happy") and intensifiers ("very"); 0 when no word scores.
 * Stand-alone: folds text itself (policy_evaluate shares one fold). */
double policy_sentiment(const char *text, size_t len);
/* 1 if the utterance asks for a person under p's human_request terms (0
 * when p is NULL or the criterion is off). Stand-alone, as policy_sentiment. */
int policy_wants_human(const policy_t *p, const char *text, size_t len);

const char *policy_criterion_name(policy_criterion_t c); /* "human_request", ... */
/* The reason code p records for criterion c; NULL when p is NULL or the
 * criterion is off. */
const char *policy_reason(const policy_t *p, policy_criterion_t c);

#endif
