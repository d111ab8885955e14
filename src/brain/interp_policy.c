/* The interpreter, part 5: the audit trail of the rails and the escalation
 * policy. Every rail decision becomes a turn event (the runtime persists
 * them); after a turn that answered a user message the policy of the flow in
 * force decides, with the conversation's counters, whether a person takes
 * over, and its reason code is what the handoff records. */
#define LOG_MODULE "brain"
#include <stdlib.h>
#include <string.h>

#include "brain/interp_int.h"

void interp__rail_events(ctx_t *x, const guard_result_t *r, int output)
{
    for (size_t i = 0; i < r->n_decisions; i++)
        interp__event(x, output ? "guard_out" : "guard", r->decisions[i].rule,
                      (double)r->decisions[i].action);
}

static const policy_t *policy_in_force(const ctx_t *x)
{
    if (x->fs->guard == NULL)
        return NULL;
    const flow_t *f = interp__flow(x);
    return guard_rules_policy_for(x->fs->guard, f ? f->name : NULL);
}

const char *interp__reason(const ctx_t *x, policy_criterion_t c, const char *dflt)
{
    const char *r = policy_reason(policy_in_force(x), c);
    return r != NULL ? r : dflt;
}

/* The turn's handoff was decided before the policy ran: the policy's reason
 * (fixed criterion order) replaces it in the output, its event and summary. */
static void rename_handoff(ctx_t *x, const char *reason)
{
    brain_out_t *o = x->out;
    o->handoff_reason = reason;
    for (size_t i = 0; i < o->n_events; i++)
        if (strcmp(o->events[i].name, "handoff") == 0)
            o->events[i].label = reason;
    json_t *s = o->handoff_summary ? json_loads(o->handoff_summary, 0, NULL) : NULL;
    if (s == NULL)
        return;
    json_object_set_new(s, "reason", json_string(reason));
    free(o->handoff_summary);
    o->handoff_summary = json_dumps(s, JSON_COMPACT);
    json_decref(s);
}

static void turn_facts(const ctx_t *x, policy_turn_t *t)
{
    const brain_out_t *o = x->out;
    const flow_t *f = interp__flow(x);
    memset(t, 0, sizeof(*t));
    t->text = o->guard_in.text ? o->guard_in.text : o->priv_text; /* redacted when redacting */
    t->len = o->guard_in.text ? o->guard_in.text_len : o->priv_len;
    t->intent = o->intent;
    t->flow = f ? f->name : NULL;
    t->guard = &o->guard_in; /* with its text as t->text, its fold is reused */
    for (size_t i = 0; i < o->n_events; i++) {
        if (strcmp(o->events[i].name, "fallback") == 0)
            t->fallback = 1;
        else if (strcmp(o->events[i].name, "effect_error") == 0)
            t->action_failed++;
    }
}

void interp__policy(ctx_t *x)
{
    brain_out_t *o = x->out;
    const policy_t *p = policy_in_force(x);
    if (!o->priv_message || p == NULL || x->conv->status == BRAIN_ST_ENDED)
        return;
    policy_turn_t t;
    turn_facts(x, &t);
    policy_state_t local, *st = o->priv_policy;
    if (st == NULL) { /* no kept counters: this turn only, fallbacks from the conversation */
        memset(&local, 0, sizeof(local));
        local.consecutive_fallbacks =
            t.fallback && x->conv->fallbacks > 0 ? x->conv->fallbacks - 1u : 0;
        st = &local;
    }
    policy_decision_t d;
    policy_evaluate(p, st, &t, &d);
    if (!d.escalate)
        return;
    uint16_t agent = x->fs->settings.agent_flow;
    if (d.criterion == POLICY_HUMAN_REQUEST && agent != BRAIN_NONE && x->conv->flow == agent)
        return; /* the flows' own agent flow is taking the user to a person */
    LOG_DEBUG("escalation criterion=%s reason=%s", policy_criterion_name(d.criterion), d.reason);
    interp__event(x, "escalation", policy_criterion_name(d.criterion), d.sentiment_avg);
    if (x->conv->status == BRAIN_ST_HANDOFF) {
        if (o->handoff_reason != NULL) /* handed over during this turn */
            rename_handoff(x, d.reason);
        return;
    }
    interp__emit(x, &x->fs->settings.agent, 0);
    interp__handoff(x, d.reason, NULL);
    o->flow = o->node = NULL;
}
