/* The interpreter, part 2: one function per node kind, answers to asks, and
 * the effects of action and llm nodes (described for the caller, then
 * resumed with their results). */
#define LOG_MODULE "brain"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "brain/interp_int.h"

static const slot_def_t *slot_of(const ctx_t *x, int i)
{
    return i >= 0 ? &x->fs->slots[i] : NULL;
}

/* A slot marked sensitive is filled from what the user really said: the
 * input rails' redaction ("[CARD]") protects logs and transcripts, not the
 * flow that asked for the value. Every other slot sees the redacted text. */
static const char *slot_text(const ctx_t *x, const slot_def_t *d)
{
    return d->sensitive ? x->out->priv_text : x->tc.text;
}

static size_t slot_len(const ctx_t *x, const slot_def_t *d)
{
    return d->sensitive ? x->out->priv_len : x->tc.len;
}

static step_t fill(ctx_t *x, const node_t *n, const char *value)
{
    const slot_def_t *d = slot_of(x, n->slot);
    /* the same words never fill the same slot twice in one turn */
    if (x->out->priv_n_filled < BRAIN_MAX_FILLED)
        x->out->priv_filled[x->out->priv_n_filled++] = (uint16_t)n->slot;
    brain_conv_set_slot(x->conv, d->name, value);
    interp__event(x, "slot_filled", d->name, 0);
    x->conv->fallbacks = 0;
    if (d->confirm_voice && x->conv->channel == BRAIN_CH_VOICE) {
        char q[600];
        snprintf(q, sizeof(q), "I heard %s.", value);
        interp__emit_text(x, q, 0);
        interp__emit(x, &x->fs->settings.confirm, 0);
        x->conv->wait = WAIT_CONFIRM;
        x->out->confirm_slot = d->name;
        return STEP_WAIT;
    }
    return interp__go(x, n->next);
}

void interp__reprompt(ctx_t *x)
{
    const node_t *n = interp__node(x);
    if (n != NULL && n->kind == NODE_ASK)
        interp__emit(x, n->has_reprompt ? &n->reprompt : &n->prompt, 0);
}

static void failed_attempt(ctx_t *x, const node_t *n, const char *why)
{
    brain_conv_t *c = x->conv;
    c->attempts++;
    interp__event(x, "ask_failed", slot_of(x, n->slot)->name, c->attempts);
    if (c->attempts >= n->max_attempts) {
        if (n->alt != BRAIN_NONE) {
            interp__go(x, n->alt);
        } else {
            interp__emit(x, &x->fs->settings.fallback, 0);
            interp__go(x, BRAIN_NONE);
        }
        return;
    }
    if (why != NULL)
        interp__emit_text(x, why, 0);
    interp__reprompt(x);
}

static int answer_csat(ctx_t *x)
{
    const settings_t *s = &x->fs->settings;
    char *end;
    long v = strtol(x->tc.text, &end, 10);
    if (end != x->tc.text && v >= 1 && v <= 5) {
        x->out->csat = (int)v;
        interp__event(x, "csat", NULL, (double)v);
        interp__emit(x, &s->csat_thanks, 0);
    } else {
        interp__emit(x, &s->goodbye, 0);
    }
    x->conv->status = BRAIN_ST_ENDED;
    x->out->end_reason = "end";
    interp__event(x, "end", "end", 0);
    x->conv->flow = x->conv->node = BRAIN_NONE;
    x->conv->depth = x->conv->wait = 0;
    return 1;
}

static int answer_confirm(ctx_t *x, const node_t *n)
{
    int yn = brain__yesno(x->tc.text, x->tc.len);
    if (yn == 1) {
        interp__go(x, n->next);
        return 1;
    }
    if (yn == 0) {
        brain_conv_set_slot(x->conv, slot_of(x, n->slot)->name, NULL);
        x->conv->wait = WAIT_ASK;
        interp__emit(x, &n->prompt, 0);
        return 1;
    }
    return 0;
}

int interp__answer(ctx_t *x, int stage)
{
    const node_t *n = interp__node(x);
    if (x->conv->wait == WAIT_CSAT)
        return answer_csat(x);
    if (n == NULL || n->kind != NODE_ASK)
        return 0;
    if (x->conv->wait == WAIT_CONFIRM)
        return stage == 0 ? answer_confirm(x, n) : 0;
    const slot_def_t *d = slot_of(x, n->slot);
    if (stage == 2) {
        failed_attempt(x, n, NULL);
        return 1;
    }
    if ((d->type == SLOT_TEXT) != (stage == 1))
        return 0;
    char value[512];
    const char *why = NULL;
    int rc = brain__slot_parse(d, slot_text(x, d), slot_len(x, d), &x->out->priv_ref, value,
                               sizeof(value), &why);
    if (rc == 0) {
        x->out->priv_used = 1;
        fill(x, n, value);
        return 1;
    }
    if (rc == CORE_ERR_INVALID) {
        failed_attempt(x, n, why);
        return 1;
    }
    return 0;
}

/* ---- node kinds ------------------------------------------------------------------------- */

static step_t step_say(ctx_t *x, const node_t *n)
{
    for (size_t i = 0; i < n->n_msgs; i++)
        interp__emit(x, &n->msgs[i], 0);
    return interp__go(x, n->next);
}

static int prefillable(slot_type_t t)
{
    return t != SLOT_TEXT && t != SLOT_YESNO && t != SLOT_ANY;
}

/* Whether this turn's words filled slot already (or filled so many that
 * no more are taken from them). */
static int filled_this_turn(const ctx_t *x, int slot)
{
    if (x->out->priv_n_filled >= BRAIN_MAX_FILLED)
        return 1;
    for (size_t i = 0; i < x->out->priv_n_filled; i++)
        if (x->out->priv_filled[i] == slot)
            return 1;
    return 0;
}

static step_t step_ask(ctx_t *x, const node_t *n)
{
    const slot_def_t *d = slot_of(x, n->slot);
    if (!n->force && brain_conv_slot(x->conv, d->name) != NULL)
        return interp__go(x, n->next);
    /* a value already in this turn's utterance ("change booking ABC123") */
    char value[512];
    const char *why = NULL;
    /* not from words that just answered another question ("2" bags is not choice 2) */
    if (prefillable(d->type) && x->tc.len > 0 && !filled_this_turn(x, n->slot) &&
        !x->out->priv_used &&
        brain__slot_parse(d, slot_text(x, d), slot_len(x, d), &x->out->priv_ref, value,
                          sizeof(value), &why) == 0)
        return fill(x, n, value);
    interp__emit(x, &n->prompt, 0);
    x->conv->wait = WAIT_ASK;
    x->conv->attempts = 0;
    return STEP_WAIT;
}

static double num_of(const char *s, int *ok)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    *ok = s != NULL && end != s;
    return v;
}

static int cond_eval(ctx_t *x, const cond_t *c)
{
    const char *v;
    int ok;
    switch (c->kind) {
    case COND_TRUE:
        return 1;
    case COND_ALL:
        for (size_t i = 0; i < c->n_kids; i++)
            if (!cond_eval(x, &c->kids[i]))
                return 0;
        return 1;
    case COND_ANY:
        for (size_t i = 0; i < c->n_kids; i++)
            if (cond_eval(x, &c->kids[i]))
                return 1;
        return 0;
    case COND_NOT:
        return !cond_eval(x, &c->kids[0]);
    case COND_INTENT:
        return x->tc.intent != NULL && strcmp(x->tc.intent, c->value) == 0;
    case COND_CHANNEL:
        return strcmp(brain_channel_name(x->conv->channel), c->value) == 0;
    case COND_ENTITY: {
        const ent_list_t *l = interp__entities(x);
        for (size_t i = 0; i < l->len; i++)
            if (strcmp(ent_type_name(l->items[i].type), c->value) == 0)
                return 1;
        return 0;
    }
    case COND_SLOT:
        break;
    }
    v = c->slot >= 0 ? brain__slot_value(x->fs, x->conv, c->slot) : NULL;
    double num = num_of(v, &ok);
    switch (c->op) {
    case OP_EXISTS:
        return v != NULL;
    case OP_MISSING:
        return v == NULL;
    case OP_EQ:
        return v != NULL && strcasecmp(v, c->value) == 0;
    case OP_NE:
        return v == NULL || strcasecmp(v, c->value) != 0;
    case OP_IN:
        for (size_t i = 0; v != NULL && i < c->n_values; i++)
            if (strcasecmp(v, c->values[i]) == 0)
                return 1;
        return 0;
    case OP_GT:
        return ok && num > c->number;
    case OP_GE:
        return ok && num >= c->number;
    case OP_LT:
        return ok && num < c->number;
    case OP_LE:
        return ok && num <= c->number;
    }
    return 0;
}

static step_t step_branch(ctx_t *x, const node_t *n)
{
    for (size_t i = 0; i < n->n_cases; i++)
        if (cond_eval(x, &n->conds[i]))
            return interp__go(x, n->case_next[i]);
    return interp__go(x, n->next);
}

static char *render(ctx_t *x, const brain_tpl_t *t, tpl_escape_t esc)
{
    core_buf_t b;
    core_buf_init(&b, 256 * 1024);
    brain__tpl_render(x->fs, x->conv, &x->tc, t, esc, &b);
    if (b.data == NULL)
        return core_xstrdup("");
    size_t len;
    char *s = core_buf_steal(&b, &len);
    core_utf8_scrub(s, len); /* a value from an unchecked channel must not void a JSON body */
    return s;
}

static step_t step_set(ctx_t *x, const node_t *n)
{
    for (size_t i = 0; i < n->n_assigns; i++) {
        char *v = render(x, &n->assigns[i].value, TPL_ESC_NONE);
        v[core_utf8_cut(v, strlen(v), BRAIN_SLOT_VALUE_MAX)] = '\0'; /* as a map's value */
        brain_conv_set_slot(x->conv, x->fs->slots[n->assigns[i].slot].name, v[0] ? v : NULL);
        free(v);
    }
    return interp__go(x, n->next);
}

/* Renders every string inside a JSON body template (keys stay literal). */
static json_t *render_json(ctx_t *x, json_t *t)
{
    if (json_is_string(t)) {
        brain_tpl_t tpl;
        char msg[128];
        if (brain__tpl_parse(json_string_value(t), &tpl, msg, sizeof(msg)) != 0)
            return json_copy(t);
        char *s = render(x, &tpl, TPL_ESC_NONE);
        brain__tpl_dispose(&tpl);
        json_t *r = json_string(s);
        free(s);
        return r ? r : json_string("");
    }
    if (json_is_object(t)) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(t, k, v)
        {
            json_object_set_new(o, k, render_json(x, v));
        }
        return o;
    }
    if (json_is_array(t)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(t); i++)
            json_array_append_new(a, render_json(x, json_array_get(t, i)));
        return a;
    }
    return json_copy(t);
}

static void add_header(brain_effect_t *e, const char *name, char *value)
{
    e->headers = core_xrealloc(e->headers, (e->n_headers + 1) * sizeof(*e->headers));
    e->headers[e->n_headers++] = (brain_header_t){core_xstrdup(name), value};
}

/* A header the node did not set itself: the node's own value wins, and a
 * server never sees two (they disagree on which one counts). */
static void add_default_header(brain_effect_t *e, const char *name, const char *value)
{
    for (size_t i = 0; i < e->n_headers; i++)
        if (strcasecmp(e->headers[i].name, name) == 0)
            return;
    add_header(e, name, core_xstrdup(value));
}

static void effect_common(ctx_t *x, const node_t *n, brain_effect_t *e)
{
    e->timeout_ms = n->timeout_ms;
    e->flow = interp__flow(x)->name;
    e->node = n->name;
    x->conv->wait = WAIT_EFFECT;
}

static step_t step_action(ctx_t *x, const node_t *n)
{
    brain_effect_t *e = &x->out->effect;
    e->kind = BRAIN_EFFECT_HTTP;
    e->method = core_xstrdup(n->method);
    e->url = render(x, &n->url, TPL_ESC_URL);
    for (size_t i = 0; i < n->n_headers; i++)
        add_header(e, n->headers[i].name, render(x, &n->headers[i].value, TPL_ESC_NONE));
    if (n->body != NULL) {
        json_t *b = render_json(x, n->body);
        e->body = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
        e->body_len = e->body ? strlen(e->body) : 0;
        json_decref(b);
        add_default_header(e, "Content-Type", "application/json");
    }
    add_default_header(e, "Accept", "application/json");
    e->retries = n->retries;
    e->backoff_ms = n->backoff_ms;
    effect_common(x, n, e);
    return STEP_EFFECT;
}

static step_t step_llm(ctx_t *x, const node_t *n)
{
    brain_effect_t *e = &x->out->effect;
    e->kind = BRAIN_EFFECT_LLM;
    e->base_url = render(x, &n->base_url, TPL_ESC_NONE);
    size_t bl = strlen(e->base_url);
    while (bl > 0 && e->base_url[bl - 1] == '/')
        e->base_url[--bl] = '\0';
    e->model = core_xstrdup(n->model);
    e->api_key_env = core_xstrdup_opt(n->api_key_env);
    e->temperature = n->temperature;
    e->max_tokens = n->max_tokens;
    e->messages = core_xcalloc(2, sizeof(brain_llm_message_t));
    char *sys = render(x, &n->system, TPL_ESC_NONE);
    if (sys[0] != '\0')
        e->messages[e->n_messages++] = (brain_llm_message_t){"system", sys};
    else
        free(sys);
    e->messages[e->n_messages++] =
        (brain_llm_message_t){"user", render(x, &n->prompt_tpl, TPL_ESC_NONE)};
    json_t *msgs = json_array();
    for (size_t i = 0; i < e->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", e->messages[i].role, "content",
                                              e->messages[i].content));
    json_t *body = json_pack("{s:s,s:o,s:f,s:i}", "model", e->model, "messages", msgs,
                             "temperature", e->temperature, "max_tokens", e->max_tokens);
    e->body = json_dumps(body, JSON_COMPACT);
    e->body_len = e->body ? strlen(e->body) : 0;
    json_decref(body);
    e->method = core_xstrdup("POST");
    e->url = core_xasprintf("%s/chat/completions", e->base_url);
    add_header(e, "Content-Type", core_xstrdup("application/json"));
    effect_common(x, n, e);
    return STEP_EFFECT;
}

static step_t step_handoff(ctx_t *x, const node_t *n)
{
    for (size_t i = 0; i < n->n_msgs; i++)
        interp__emit(x, &n->msgs[i], 0);
    if (n->n_msgs == 0)
        interp__emit(x, &x->fs->settings.agent, 0);
    interp__handoff(x, n->reason, n->queue);
    return STEP_STOP;
}

static step_t step_jump(ctx_t *x, const node_t *n)
{
    brain_conv_t *c = x->conv;
    if (n->kind == NODE_CALL && c->depth < BRAIN_STACK_MAX) {
        c->stack_flow[c->depth] = c->flow;
        c->stack_node[c->depth] = n->next;
        c->depth++;
    } else if (n->kind == NODE_CALL) {
        LOG_WARN("call depth exceeded flow=%s node=%s", interp__flow(x)->name, n->name);
    }
    uint16_t depth = c->depth;
    c->flow = n->target_flow;
    interp__event(x, "flow_start", x->fs->flows[n->target_flow].name, 0);
    c->depth = (uint8_t)depth;
    return interp__go(x, n->target_node != BRAIN_NONE ? n->target_node
                                                      : x->fs->flows[n->target_flow].start);
}

static step_t step_end(ctx_t *x, const node_t *n)
{
    for (size_t i = 0; i < n->n_msgs; i++)
        interp__emit(x, &n->msgs[i], 0);
    if (n->kind == NODE_RETURN)
        return interp__go(x, BRAIN_NONE);
    if (n->csat) {
        interp__emit(x, &x->fs->settings.csat_prompt, 0);
        x->conv->wait = WAIT_CSAT;
        return STEP_WAIT;
    }
    brain_conv_t *c = x->conv;
    c->status = BRAIN_ST_ENDED;
    x->out->end_reason = "end";
    interp__event(x, "end", "end", 0);
    c->flow = c->node = BRAIN_NONE;
    c->depth = c->wait = 0;
    return STEP_STOP;
}

step_t interp__step(ctx_t *x)
{
    const node_t *n = interp__node(x);
    if (n == NULL)
        return interp__go(x, BRAIN_NONE);
    switch (n->kind) {
    case NODE_SAY:
        return step_say(x, n);
    case NODE_ASK:
        return step_ask(x, n);
    case NODE_BRANCH:
        return step_branch(x, n);
    case NODE_SET:
        return step_set(x, n);
    case NODE_ACTION:
        return step_action(x, n);
    case NODE_LLM:
        return step_llm(x, n);
    case NODE_HANDOFF:
        return step_handoff(x, n);
    case NODE_GOTO:
    case NODE_CALL:
        return step_jump(x, n);
    case NODE_END:
    case NODE_RETURN:
        return step_end(x, n);
    default:
        return STEP_STOP;
    }
}
