/* The interpreter, part 4: the turn's output: messages rendered in the
 * channel's variant and passed through the output rails, metric events, and
 * resetting an output for the next turn. */
#define LOG_MODULE "brain"
#include <stdlib.h>
#include <string.h>

#include "brain/interp_int.h"

/* ---- output ------------------------------------------------------------------------ */

void brain_out_init(brain_out_t *out)
{
    memset(out, 0, sizeof(*out));
}

void interp__effect_dispose(brain_effect_t *e)
{
    if (e->method == NULL)
        return; /* never described: nothing owned */
    free(e->method);
    free(e->url);
    for (size_t i = 0; i < e->n_headers; i++) {
        free(e->headers[i].name);
        free(e->headers[i].value);
    }
    free(e->headers);
    free(e->body);
    free(e->base_url);
    free(e->model);
    free(e->api_key_env);
    for (size_t i = 0; i < e->n_messages; i++)
        free(e->messages[i].content);
    free(e->messages);
    memset(e, 0, sizeof(*e));
}

void interp__out_reset(brain_out_t *out)
{
    for (size_t i = 0; i < out->n_messages; i++) {
        brain_message_t *m = &out->messages[i];
        free(m->text);
        for (size_t j = 0; j < m->n_choices; j++) {
            free(m->choices[j].title);
            free(m->choices[j].value);
        }
        free(m->choices);
    }
    free(out->handoff_summary);
    if (out->guard_in.text != NULL || out->guard_in.n_sensitive > 0 ||
        out->guard_in.priv_fold != NULL)
        guard_result_dispose(&out->guard_in);
    interp__effect_dispose(&out->effect);
    free(out->priv_text);
    /* field by field: the arrays are large and only their counts matter (hot path) */
    out->n_messages = out->n_events = 0;
    out->status = BRAIN_ST_ACTIVE;
    out->end_reason = NULL;
    out->csat = 0;
    out->handoff_reason = out->handoff_queue = NULL;
    out->handoff_summary = NULL;
    out->intent = out->flow = out->node = out->confirm_slot = NULL;
    out->confidence = 0;
    out->out_of_scope = 0;
    out->guard_in.action = GUARD_ALLOW;
    out->guard_in.text = NULL;
    out->guard_in.text_len = 0;
    out->guard_in.reply = out->guard_in.reason = NULL;
    out->guard_in.n_decisions = out->guard_in.n_sensitive = 0;
    out->guard_out = GUARD_ALLOW;
    out->priv_text = NULL;
    out->priv_len = 0;
    out->priv_now = 0;
    out->priv_steps = 0;
    out->priv_n_filled = 0;
    out->priv_used = out->priv_pending = out->priv_message = 0;
    out->priv_policy = NULL;
}

void brain_out_dispose(brain_out_t *out)
{
    if (out != NULL)
        interp__out_reset(out);
}

void interp__event(ctx_t *x, const char *name, const char *label, double value)
{
    brain_out_t *o = x->out;
    if (o->n_events >= BRAIN_MAX_EVENTS)
        return;
    const flow_t *f = interp__flow(x);
    const node_t *n = interp__node(x);
    o->events[o->n_events++] =
        (brain_event_rec_t){name, f ? f->name : NULL, n ? n->name : NULL, label, value};
}

/* Replies are plain text on every channel: each adapter escapes for its
 * medium (the widget shows text nodes, TwiML is XML-escaped by the voice
 * adapter), so escaping here too made callers hear "ampersand lt". */
static tpl_escape_t channel_escape(uint8_t ch)
{
    (void)ch;
    return TPL_ESC_NONE;
}

static char *render_variant(ctx_t *x, const msg_t *msg)
{
    uint8_t ch = x->conv->channel;
    const brain_tpl_t *t = msg->variant[ch] ? msg->variant[ch] : msg->variant[0];
    core_buf_t b;
    core_buf_init(&b, 64 * 1024);
    if (t != NULL)
        brain__tpl_render(x->fs, x->conv, &x->tc, t, channel_escape(ch), &b);
    return b.data ? core_buf_steal(&b, NULL) : core_xstrdup("");
}

/* Output rails (unless checked when the flows compiled), then the message
 * joins the turn's output (it takes text). */
static brain_message_t *push_message(ctx_t *x, char *text, int from_llm, int allow_pii, int checked)
{
    brain_out_t *o = x->out;
    if (o->n_messages >= BRAIN_MAX_MESSAGES) {
        free(text);
        return NULL;
    }
    if (x->fs->guard != NULL && !checked) {
        guard_ctx_t gc = {.channel = brain_channel_name(x->conv->channel),
                          .flow = interp__flow(x) ? interp__flow(x)->name : NULL,
                          .from_llm = from_llm,
                          .allow_pii = allow_pii,
                          .now_us = o->priv_now};
        guard_result_t r;
        memset(&r, 0, sizeof(r));
        if (guard_check_output(x->fs->guard, &gc, text, strlen(text), &r) == 0)
            interp__rail_events(x, &r, 1);
        if (r.action != GUARD_ALLOW) {
            if (r.action > o->guard_out)
                o->guard_out = r.action;
            /* a block or an escalation says the rule's reply; without one,
             * the message goes with what the rails matched redacted */
            const char *rep = r.action != GUARD_REDACT && r.reply != NULL ? r.reply : r.text;
            char *fb = NULL;
            /* an LLM answer failed a rail: the flows' fallback, not the rule's reply */
            if (r.use_fallback && (fb = render_variant(x, &x->fs->settings.fallback)) != NULL)
                rep = fb;
            if (rep != NULL) {
                free(text);
                text = core_xstrdup(rep);
            }
            free(fb);
        }
        guard_result_dispose(&r);
    }
    brain_message_t *m = &o->messages[o->n_messages++];
    memset(m, 0, sizeof(*m));
    m->text = text;
    m->from_llm = from_llm;
    return m;
}

void interp__emit(ctx_t *x, const msg_t *msg, int from_llm)
{
    uint8_t ch = x->conv->channel;
    const brain_tpl_t *t = msg->variant[ch] ? msg->variant[ch] : msg->variant[0];
    if (t == NULL)
        return;
    int checked = t->constant && !from_llm && ((msg->safe >> ch) & 1);
    brain_message_t *m = push_message(x, render_variant(x, msg), from_llm, msg->allow_pii, checked);
    if (m == NULL || msg->n_choices == 0)
        return;
    m->choices = core_xcalloc(msg->n_choices, sizeof(brain_choice_t));
    for (size_t i = 0; i < msg->n_choices; i++) {
        core_buf_t tb, vb;
        core_buf_init(&tb, 4096);
        core_buf_init(&vb, 4096);
        brain__tpl_render(x->fs, x->conv, &x->tc, &msg->choice_title[i], channel_escape(ch), &tb);
        brain__tpl_render(x->fs, x->conv, &x->tc, &msg->choice_value[i], TPL_ESC_NONE, &vb);
        m->choices[i].title = tb.data ? core_buf_steal(&tb, NULL) : core_xstrdup("");
        m->choices[i].value = vb.data ? core_buf_steal(&vb, NULL) : core_xstrdup("");
    }
    m->n_choices = msg->n_choices;
}

void interp__emit_text(ctx_t *x, const char *text, int from_llm)
{
    push_message(x, core_xstrdup(text), from_llm, 0, 0);
}
