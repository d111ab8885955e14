/* The interpreter, part 1: a turn from input to output. Input rails, then
 * the answer to a pending question, then intent routing (global intents,
 * flow intents, fallback), then the flow runs node by node until it waits
 * (interp_nodes.c), then the results are stamped on the output. State
 * changes go through interp__go(), which logs each transition. */
#define LOG_MODULE "brain"
#include <stdlib.h>
#include <string.h>

#include "brain/interp_int.h"

/* ---- state ---------------------------------------------------------------------------- */

const flow_t *interp__flow(const ctx_t *x)
{
    uint16_t f = x->conv->flow;
    return f == BRAIN_NONE || f >= x->fs->n_flows ? NULL : &x->fs->flows[f];
}

const node_t *interp__node(const ctx_t *x)
{
    const flow_t *f = interp__flow(x);
    uint16_t n = x->conv->node;
    return f == NULL || n == BRAIN_NONE || n >= f->n_nodes ? NULL : &f->nodes[n];
}

void interp__clear_slots(brain_conv_t *c)
{
    /* keeps internal "_" slots (the last user turns for handoff summaries) */
    uint32_t i = 0;
    while (i < c->slots_len) {
        const char *n = c->slots + i;
        if (n[0] != '_') {
            brain_conv_set_slot(c, n, NULL);
            continue;
        }
        i += (uint32_t)(strlen(n) + 1);
        i += (uint32_t)(strlen(c->slots + i) + 1);
    }
}

step_t interp__go(ctx_t *x, uint16_t node)
{
    brain_conv_t *c = x->conv;
    c->wait = WAIT_NONE;
    c->attempts = 0;
    while (node == BRAIN_NONE && c->depth > 0) { /* a called flow finished: return */
        c->depth--;
        c->flow = c->stack_flow[c->depth];
        node = c->stack_node[c->depth];
    }
    if (node == BRAIN_NONE) {
        if (interp__flow(x) != NULL)
            interp__event(x, "flow_complete", interp__flow(x)->name, 0);
        LOG_DEBUG("transition flow=%s node=(idle)",
                  interp__flow(x) ? interp__flow(x)->name : "(none)");
        c->flow = c->node = BRAIN_NONE;
        return STEP_STOP;
    }
    c->node = node;
    LOG_DEBUG("transition flow=%s node=%s", interp__flow(x)->name, interp__node(x)->name);
    return STEP_NEXT;
}

void interp__start_flow(ctx_t *x, uint16_t flow)
{
    brain_conv_t *c = x->conv;
    c->flow = flow;
    c->depth = 0;
    c->node = BRAIN_NONE;
    interp__event(x, "flow_start", x->fs->flows[flow].name, 0);
    interp__go(x, x->fs->flows[flow].start);
}

static void summary(ctx_t *x, const char *reason)
{
    json_t *o = json_object();
    const flow_t *f = interp__flow(x);
    json_object_set_new(o, "flow", f ? json_string(f->name) : json_null());
    json_object_set_new(o, "reason", json_string(reason));
    json_t *slots = json_object();
    const brain_conv_t *c = x->conv;
    for (uint32_t i = 0; i < c->slots_len;) {
        const char *n = c->slots + i, *v = n + strlen(n) + 1;
        int s = brain__slot_find(x->fs, n);
        if (n[0] != '_' && (s < 0 || !x->fs->slots[s].sensitive))
            json_object_set_new(slots, n, json_string(v));
        i = (uint32_t)(v + strlen(v) + 1 - c->slots);
    }
    json_object_set_new(o, "slots", slots);
    json_t *last = json_array();
    const char *u2 = brain_conv_slot(c, "_u2"), *u1 = brain_conv_slot(c, "_u1");
    if (u2 != NULL)
        json_array_append_new(last, json_string(u2));
    if (u1 != NULL)
        json_array_append_new(last, json_string(u1));
    json_object_set_new(o, "last_user", last);
    free(x->out->handoff_summary);
    x->out->handoff_summary = json_dumps(o, JSON_COMPACT);
    json_decref(o);
}

void interp__handoff(ctx_t *x, const char *reason, const char *queue)
{
    /* the built-in codes of the policy's criteria become its reason codes */
    if (strcmp(reason, "user_request") == 0)
        reason = interp__reason(x, POLICY_HUMAN_REQUEST, reason);
    else if (strcmp(reason, "fallback") == 0)
        reason = interp__reason(x, POLICY_FALLBACKS, reason);
    summary(x, reason);
    x->out->handoff_reason = reason;
    x->out->handoff_queue = queue ? queue : x->fs->settings.queue;
    interp__event(x, "handoff", reason, 0);
    x->conv->status = BRAIN_ST_HANDOFF;
    x->conv->flow = x->conv->node = BRAIN_NONE;
    x->conv->depth = 0;
    x->conv->wait = WAIT_NONE;
}

/* The backstop for a turn the validator could not foresee (one that goes on
 * through a goto or call into another flow, whose paths it measures flow by
 * flow): the turn stops where it is, the user is
 * told it went wrong on our side (not that they were misunderstood: the
 * fallback would ask them to rephrase words that were fine), and the event
 * lets the runtime count and record a failed turn. The flow is left, so the
 * next message is routed afresh instead of spinning again. */
static void step_limit(ctx_t *x)
{
    const node_t *n = interp__node(x);
    LOG_WARN("event=step_limit flow=%s node=%s steps=%d", interp__flow(x)->name, n ? n->name : "-",
             BRAIN_MAX_STEPS);
    interp__event(x, "step_limit", NULL, BRAIN_MAX_STEPS);
    interp__emit(x, &x->fs->settings.step_limit, 0);
    x->conv->flow = x->conv->node = BRAIN_NONE;
    x->conv->depth = 0;
}

int interp__run(ctx_t *x)
{
    while (x->conv->flow != BRAIN_NONE && x->conv->status == BRAIN_ST_ACTIVE &&
           x->conv->wait == WAIT_NONE) {
        if (++x->out->priv_steps > BRAIN_MAX_STEPS) {
            step_limit(x);
            break;
        }
        step_t s = interp__step(x);
        if (s == STEP_EFFECT) {
            x->out->priv_pending = 1;
            return BRAIN_NEED_EFFECT;
        }
        if (s == STEP_WAIT || s == STEP_STOP)
            break;
    }
    return BRAIN_DONE;
}

/* ---- routing ------------------------------------------------------------------------------ */

const ent_list_t *interp__entities(ctx_t *x)
{
    if (!x->have_entities) {
        ent_extract(x->tc.text, x->tc.len, &x->out->priv_ref, &x->entities);
        x->have_entities = 1;
    }
    return &x->entities;
}

static int exact_intent(const brain_flowset_t *fs, const char *text, size_t len)
{
    char norm[512];
    brain__normalise(text, len, norm, sizeof(norm));
    size_t lo = 0, hi = fs->n_exact; /* sorted at compile time */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(fs->exact[mid], norm);
        if (c == 0)
            return fs->exact_intent[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Routes the text once; returns the intent index or -1. */
static int route(ctx_t *x, const brain_input_t *in)
{
    brain_out_t *o = x->out;
    int i = -1;
    if (in->intent != NULL) {
        i = brain__intent_lookup(x->fs, in->intent);
        o->confidence = i >= 0 ? 1.0 : 0.0;
    } else if ((i = exact_intent(x->fs, x->tc.text, x->tc.len)) >= 0) {
        o->confidence = 1.0;
    } else if (x->fs->nlu != NULL && x->tc.len > 0) {
        nlu_result_t r;
        memset(&r, 0, sizeof(r));
        nlu_route(x->fs->nlu, x->tc.text, x->tc.len, &x->out->priv_ref, &r);
        x->entities = r.entities;
        x->have_entities = 1;
        o->confidence = r.confidence;
        o->out_of_scope = r.out_of_scope;
        if (r.n_top > 0 && !r.out_of_scope && r.confidence >= x->fs->settings.threshold)
            i = brain__intent_lookup(x->fs, r.top[0].intent);
    }
    if (i >= 0 && brain__intent_is_oos(&x->fs->intents[i])) {
        i = -1; /* one of the out-of-scope examples, or the oos payload */
        o->confidence = 0;
    }
    if (i < 0) {
        o->out_of_scope = 1;
        return -1;
    }
    o->intent = x->fs->intents[i].name;
    x->tc.intent = o->intent;
    interp__event(x, "intent", o->intent, o->confidence);
    return i;
}

static void global_intent(ctx_t *x, int g)
{
    brain_conv_t *c = x->conv;
    const settings_t *s = &x->fs->settings;
    const flow_t *f = interp__flow(x);
    switch (g) {
    case GLOBAL_CANCEL:
        interp__emit(x, &s->cancel, 0);
        c->flow = c->node = BRAIN_NONE;
        c->depth = 0;
        c->wait = WAIT_NONE;
        interp__clear_slots(c);
        break;
    case GLOBAL_START_OVER:
        interp__emit(x, &s->start_over, 0);
        interp__clear_slots(c);
        if (f != NULL)
            interp__start_flow(x, (uint16_t)(f - x->fs->flows));
        else if (s->welcome_flow != BRAIN_NONE)
            interp__start_flow(x, s->welcome_flow);
        break;
    case GLOBAL_HELP:
        interp__emit(x, f && f->has_help ? &f->help : &s->help, 0);
        if (c->wait == WAIT_ASK)
            interp__reprompt(x);
        break;
    case GLOBAL_AGENT:
        if (s->agent_flow != BRAIN_NONE && (f == NULL || f != &x->fs->flows[s->agent_flow])) {
            interp__start_flow(x, s->agent_flow);
            break;
        }
        interp__emit(x, &s->agent, 0);
        interp__handoff(x, interp__reason(x, POLICY_HUMAN_REQUEST, "user_request"), NULL);
        break;
    case GLOBAL_OOS: /* route() never returns it */
    case GLOBAL__COUNT:
        break;
    }
}

static void fallback(ctx_t *x)
{
    brain_conv_t *c = x->conv;
    const settings_t *s = &x->fs->settings;
    c->fallbacks++;
    interp__event(x, "fallback", NULL, c->fallbacks);
    if (c->fallbacks >= s->max_fallbacks) {
        interp__emit(x, &s->agent, 0);
        interp__handoff(x, interp__reason(x, POLICY_FALLBACKS, "fallback"), NULL);
    } else if (s->fallback_flow != BRAIN_NONE && c->flow == BRAIN_NONE) {
        interp__start_flow(x, s->fallback_flow);
    } else {
        interp__emit(x, &s->fallback, 0);
        if (c->wait == WAIT_ASK)
            interp__reprompt(x);
        else if (c->wait == WAIT_CONFIRM)
            interp__emit(x, &s->confirm, 0);
    }
}

/* A message: answer a pending question, or route it. */
static void dispatch(ctx_t *x, const brain_input_t *in)
{
    brain_conv_t *c = x->conv;
    if (c->wait == WAIT_ASK || c->wait == WAIT_CONFIRM || c->wait == WAIT_CSAT) {
        if (interp__answer(x, 0))
            return;
    }
    int i = route(x, in);
    /* a half-answered question is only left for an intent the router is sure of */
    if (i >= 0 && c->wait == WAIT_ASK && x->out->confidence < x->fs->settings.interrupt)
        i = -1;
    const intent_def_t *d = i >= 0 ? &x->fs->intents[i] : NULL;
    if (d != NULL && d->global) {
        c->fallbacks = 0;
        global_intent(x, d->global - 1);
        return;
    }
    if (c->wait == WAIT_ASK && interp__answer(x, 1))
        return;
    if (d != NULL && d->flow != BRAIN_NONE) {
        c->fallbacks = 0;
        interp__start_flow(x, d->flow);
        return;
    }
    if (c->wait == WAIT_ASK && interp__answer(x, 2))
        return;
    fallback(x);
}

static void remember_user(brain_conv_t *c, const char *text, size_t len)
{
    char cut[101];
    size_t n = len < 100 ? len : 100;
    memcpy(cut, text, n);
    cut[n] = '\0';
    const char *u1 = brain_conv_slot(c, "_u1");
    if (u1 != NULL) {
        char prev[101];
        memcpy(prev, u1, strlen(u1) + 1);
        brain_conv_set_slot(c, "_u2", prev);
    }
    brain_conv_set_slot(c, "_u1", cut);
}

static void new_session(brain_conv_t *c, int64_t now)
{
    interp__clear_slots(c);
    brain_conv_set_slot(c, "_u1", NULL);
    brain_conv_set_slot(c, "_u2", NULL);
    brain_conv_set_slot(c, BRAIN_SLOT_RESTART, NULL);
    c->flow = c->node = BRAIN_NONE;
    c->depth = c->wait = c->attempts = c->fallbacks = 0;
    c->status = BRAIN_ST_ACTIVE;
    c->created_us = now;
}

/* Whether the text may reach an llm node: the node waiting is one; free
 * text (no question pending) that routing may send into a flow with one;
 * or an answer to a question while some llm node's prompt reads slots or
 * the text (the answer is a slot's value, which may be copied on before a
 * prompt uses it: any slot counts, not only the one asked for). */
static int bound_for_llm(const ctx_t *x, const node_t *n)
{
    if (n != NULL && n->kind == NODE_LLM)
        return 1;
    int answer = x->conv->wait != WAIT_NONE;
    for (size_t f = 0; f < x->fs->n_flows; f++)
        if (answer ? x->fs->flows[f].llm_reads_input : x->fs->flows[f].has_llm)
            return 1;
    return 0;
}

/* Input rails: the rest of the turn sees their text (redacted when they
 * redact); returns the strongest action. */
static guard_action_t input_rails(ctx_t *x)
{
    brain_out_t *o = x->out;
    const node_t *n = interp__node(x);
    guard_ctx_t gc = {.channel = brain_channel_name(x->conv->channel),
                      .flow = interp__flow(x) ? interp__flow(x)->name : NULL,
                      .to_llm = bound_for_llm(x, n),
                      .now_us = o->priv_now,
                      .conversation_bucket = x->in ? x->in->conversation_bucket : NULL,
                      .sender_bucket = x->in ? x->in->sender_bucket : NULL,
                      .conversation = x->in ? x->in->conversation : NULL};
    if (guard_check_input(x->fs->guard, &gc, x->tc.text, x->tc.len, &o->guard_in) != 0)
        return GUARD_ALLOW;
    interp__rail_events(x, &o->guard_in, 0);
    if (o->guard_in.text != NULL) {
        x->tc.text = o->guard_in.text;
        x->tc.len = o->guard_in.text_len;
    }
    return o->guard_in.action;
}

/* Acts on a block or an escalation; returns 1 when the turn is over. */
static int rails_stop(ctx_t *x, guard_action_t action)
{
    const guard_result_t *g = &x->out->guard_in;
    if (action == GUARD_BLOCK) {
        interp__emit_text(x, g->reply ? g->reply : "Sorry, I can't help with that.", 0);
        return 1;
    }
    if (action == GUARD_ESCALATE) {
        interp__emit(x, &x->fs->settings.agent, 0);
        interp__handoff(x, interp__reason(x, POLICY_GUARDRAIL, g->reason ? g->reason : "guardrail"),
                        NULL);
        return 1;
    }
    return 0;
}

static void finish(ctx_t *x)
{
    brain_out_t *o = x->out;
    interp__policy(x);
    o->status = (brain_status_t)x->conv->status;
    o->flow = interp__flow(x) ? interp__flow(x)->name : NULL;
    o->node = interp__node(x) ? interp__node(x)->name : NULL;
    o->priv_pending = 0;
}

static void ctx_init(ctx_t *x, const brain_flowset_t *fs, brain_conv_t *conv, brain_out_t *out)
{
    x->fs = fs;
    x->conv = conv;
    x->out = out;
    /* After an effect (brain_resume) the turn goes on with the text its
     * input rails redacted, as it did before the effect; a new turn starts
     * from what was said and input_rails() swaps in the redacted text. */
    int redacted = out->guard_in.text != NULL;
    x->tc.text = redacted ? out->guard_in.text : out->priv_text;
    x->tc.len = redacted ? out->guard_in.text_len : out->priv_len;
    x->tc.intent = out->intent;
    x->tc.entities = NULL;
    x->in = NULL;
    x->have_entities = 0;
}

/* A conversation read back onto flows where the node it waited at is gone
 * or of another kind lost its place (brain_conv_from_json named the flow it
 * was in): it says so and starts that flow again. The turn's input answered
 * a question no longer asked: it is not taken for another request, nor used
 * to fill the restarted flow's questions (as if it had answered one), since
 * which question it answered is unknown. Returns 1 when it restarted; the
 * mark goes either way (a jump or a new session has put the conversation
 * somewhere already). */
static int restart_lost_flow(ctx_t *x)
{
    const char *name = brain_conv_slot(x->conv, BRAIN_SLOT_RESTART);
    if (name == NULL)
        return 0;
    int f = brain__flow_find(x->fs, name);
    brain_conv_set_slot(x->conv, BRAIN_SLOT_RESTART, NULL);
    if (f < 0 || x->conv->flow != BRAIN_NONE || x->conv->status != BRAIN_ST_ACTIVE)
        return 0;
    interp__emit(x, &x->fs->settings.flow_changed, 0);
    x->out->priv_used = 1;
    interp__start_flow(x, (uint16_t)f);
    return 1;
}

static int begin(ctx_t *x, const brain_input_t *in)
{
    brain_conv_t *c = x->conv;
    const settings_t *s = &x->fs->settings;
    if (in->event == BRAIN_EV_TIMEOUT) {
        if (c->status == BRAIN_ST_ACTIVE) {
            interp__emit(x, &s->timeout, 0);
            c->status = BRAIN_ST_ENDED;
            c->flow = c->node = BRAIN_NONE;
            c->depth = c->wait = 0;
            x->out->end_reason = "idle_timeout";
            interp__event(x, "end", "idle_timeout", 0);
        }
        return BRAIN_DONE;
    }
    if (c->status == BRAIN_ST_HANDOFF)
        return BRAIN_DONE; /* a human has the conversation; the bot stays quiet */
    if (c->status == BRAIN_ST_ENDED ||
        (c->last_us != 0 && in->now_us - c->last_us > s->idle_timeout_us))
        new_session(c, in->now_us);
    c->last_us = in->now_us;
    if (c->wait == WAIT_EFFECT) { /* restored while an effect was in flight: it failed */
        const node_t *n = interp__node(x);
        interp__go(x, n ? n->alt : BRAIN_NONE);
    }
    if (in->event == BRAIN_EV_START) {
        if (!restart_lost_flow(x) && s->welcome_flow != BRAIN_NONE && c->flow == BRAIN_NONE)
            interp__start_flow(x, s->welcome_flow);
        return interp__run(x);
    }
    c->turns++;
    x->out->priv_message = 1;
    x->out->priv_policy = in->policy;
    guard_action_t rails = x->fs->guard != NULL ? input_rails(x) : GUARD_ALLOW;
    remember_user(c, x->tc.text, x->tc.len); /* after redaction: kept state holds no PII */
    if (rails_stop(x, rails))
        return BRAIN_DONE;
    if (!restart_lost_flow(x))
        dispatch(x, in);
    return interp__run(x);
}

int brain_turn(const brain_flowset_t *fs, brain_conv_t *conv, const brain_input_t *in,
               brain_out_t *out)
{
    if (out->priv_pending)
        return CORE_ERR_BUSY;
    if (conv->version != fs->version)
        return CORE_ERR_INVALID;
    interp__out_reset(out);
    out->priv_text = core_xstrndup(in->text ? in->text : "", in->text ? in->len : 0);
    out->priv_len = in->text ? in->len : 0;
    out->priv_ref = in->ref;
    out->priv_now = in->now_us;
    ctx_t x;
    ctx_init(&x, fs, conv, out);
    x.in = in;
    int rc = begin(&x, in);
    if (rc == BRAIN_DONE)
        finish(&x);
    return rc;
}

int brain_resume(const brain_flowset_t *fs, brain_conv_t *conv, const brain_effect_result_t *res,
                 brain_out_t *out)
{
    if (!out->priv_pending || conv->wait != WAIT_EFFECT)
        return CORE_ERR_INVALID;
    if (conv->version != fs->version)
        return CORE_ERR_INVALID;
    ctx_t x;
    ctx_init(&x, fs, conv, out);
    out->priv_pending = 0;
    interp__effect_dispose(&out->effect); /* performed: a later node may describe the next one */
    int rc = interp__resume(&x, res);
    if (rc == BRAIN_DONE)
        finish(&x);
    return rc;
}
