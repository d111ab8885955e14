/* Persistence of turns: one store batch per turn (conversation start,
 * the user's and the bot's transcript rows, effect/handoff/guardrail events,
 * the conversation's state, its outcome and CSAT), committed by the store's
 * writer thread before the channel is answered; and the restore of a
 * conversation that is not in memory. Metrics are updated here too, on the
 * loop, without waiting. See docs/runtime.md and docs/store.md. */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_envs.h"

/* A conversation key as a quoted logfmt value (keys come from senders). */
static const char *qkey(char *buf, size_t size, const char *key)
{
    return core_log_quote(buf, size, key, (size_t)-1, 80);
}

/* The saved state wraps the brain's JSON with the runtime's own counters,
 * the environment the conversation runs in (with its rollout arm, when it
 * has one) and the version set it is pinned to, every file's version:
 * {"v":1,"seq":N,"gen":G,"env":E[,"variant":V],"pin":{"flow":"version",...},
 * "brain":{...}}, G as in conv_id(). States saved before "env" or "pin"
 * are read back as before. */
static char *state_json(const rt_turn_t *t)
{
    rt_conv_t *conv = t->conv;
    core_buf_t b;
    core_buf_init(&b, 1024 * 1024);
    core_buf_append_lit(&b, "{\"v\":1,\"seq\":");
    core_buf_json_int(&b, conv->seq);
    core_buf_append_lit(&b, ",\"gen\":");
    core_buf_json_int(&b, conv->gen);
    const char *env = rt_env_name(conv->env);
    core_buf_append_lit(&b, ",\"env\":");
    core_buf_json_str(&b, env, strlen(env));
    if (conv->variant != RT_VARIANT_NONE) {
        const char *arm = rt_variant_name(conv->variant);
        core_buf_append_lit(&b, ",\"variant\":");
        core_buf_json_str(&b, arm, strlen(arm));
    }
    if (conv->ver != NULL) {
        core_buf_append_lit(&b, ",\"pin\":");
        rt_pin_json(conv->ver, &b);
    }
    core_buf_append_lit(&b, ",\"brain\":");
    if (brain_conv_to_json(conv->fs, &conv->state, &b) != 0) {
        core_buf_dispose(&b);
        return NULL;
    }
    core_buf_append_str(&b, "}");
    return core_buf_steal(&b, NULL);
}

/* ---- restore ------------------------------------------------------------- */

typedef struct load_ctx_s {
    runtime_t *rt;
    char key[]; /* the conversation, looked up again when the answer comes */
} load_ctx_t;

/* Puts conv back in the environment its state was saved in, before the
 * brain's state is read against that environment's set. A state saved
 * before environments were saved names none and keeps the binding the
 * turn chose; one that names an environment without flows (or unknown)
 * goes to the default environment, logged. */
static void bind_saved_env(runtime_t *rt, rt_conv_t *conv, const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "env"));
    if (name == NULL)
        return;
    int env = rt_env_index(name);
    if (env < 0 || rt->envs->env[env].cur == NULL) {
        char q[200], e[60];
        LOG_WARN("event=conversation_env_missing key=%s env=%s action=default_env env_used=%s",
                 qkey(q, sizeof(q), conv->key), core_log_quote(e, sizeof(e), name, (size_t)-1, 40),
                 rt_env_name(rt->envs->def));
        env = rt->envs->def;
        if (rt->envs->env[env].cur == NULL)
            return; /* nothing to move to: stays where the turn put it */
    }
    int variant = rt_variant_parse(json_string_value(json_object_get(doc, "variant")));
    if (env == conv->env && variant == conv->variant)
        return;
    /* the fresh state refers to the set it was begun on: begin it again */
    rt_conv_bind_arm(rt, conv, env, variant);
    brain_channel_t ch = (brain_channel_t)conv->state.channel;
    int64_t created = conv->state.created_us;
    brain_conv_dispose(&conv->state);
    brain_conv_init(&conv->state, conv->fs, ch, created);
}

int rt_store_apply(runtime_t *rt, rt_conv_t *conv, const char *text, int active)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    json_t *brain = json_object_get(doc, "brain");
    json_t *seq = json_object_get(doc, "seq");
    if (!json_is_object(brain) || !json_is_integer(seq)) {
        char q[200];
        LOG_WARN("event=state_unreadable key=%s action=new_conversation",
                 qkey(q, sizeof(q), conv->key));
        json_decref(doc);
        return -1;
    }
    conv->seq = (uint32_t)json_integer_value(seq);
    conv->gen = (uint32_t)json_integer_value(json_object_get(doc, "gen"));
    conv->stored = 1;
    if (!active) { /* ended (by its flow, a handoff or idleness): the key starts the next one */
        json_decref(doc);
        conv->gen++;
        conv->seq = 0;
        conv->stored = 0;
        return 0;
    }
    bind_saved_env(rt, conv, doc);
    char *bt = json_dumps(brain, JSON_COMPACT);
    const json_t *pin = json_object_get(doc, "pin");
    int lost = 0;
    if (rt_pin_bind(rt, conv, pin) != 0) {
        /* Its set is in memory no more: compiled again from the store's
         * versions, the conversation waiting (loading) meanwhile. */
        if (rt->pin_load != NULL && rt->pin_load(rt, conv, pin, bt) == 0) {
            free(bt);
            json_decref(doc);
            return 1;
        }
        char q[200];
        LOG_WARN("event=pinned_version_unavailable key=%s reason=\"no store to read it from\" "
                 "action=restart_flow_on_current_version",
                 qkey(q, sizeof(q), conv->key));
        lost = 1;
    }
    json_decref(doc);
    int rc = rt_store_apply_brain(conv, bt, lost);
    free(bt);
    return rc;
}

int rt_store_apply_brain(rt_conv_t *conv, const char *bt, int lost)
{
    brain_conv_t restored;
    core_err_t err = {0};
    int rc = brain_conv_from_json(conv->fs, bt, strlen(bt), &restored, &err);
    if (rc != 0) {
        char q[200], m[600];
        LOG_WARN("event=state_unreadable key=%s reason=%s action=new_conversation",
                 qkey(q, sizeof(q), conv->key),
                 core_log_quote(m, sizeof(m), err.msg, (size_t)-1, 500));
        return -1;
    }
    if (lost) /* not the version it ran: its place there means nothing */
        brain_conv_lose_place(conv->fs, &restored);
    brain_conv_dispose(&conv->state);
    conv->state = restored;
    return 0;
}

static void on_state(int status, char *json, int active, void *data)
{
    load_ctx_t *ctx = data;
    runtime_t *rt = ctx->rt;
    rt->store_pending--;
    rt_conv_t *conv = rt->closing ? NULL : rt_table_find(&rt->table, ctx->key);
    if (conv != NULL) {
        int pinning = 0; /* its version set compiles: that calls rt_conv_loaded() */
        if (status == 0 && json != NULL) {
            pinning = rt_store_apply(rt, conv, json, active) == 1;
            char q[200];
            LOG_DEBUG("event=conversation_restored key=%s active=%d", qkey(q, sizeof(q), conv->key),
                      active);
        }
        if (!pinning)
            rt_conv_loaded(rt, conv, status == CORE_ERR_NOT_FOUND ? 0 : status);
    }
    free(json);
    free(ctx);
    rt_maybe_free(rt);
}

int rt_store_load(runtime_t *rt, rt_conv_t *conv)
{
    size_t n = strlen(conv->key);
    load_ctx_t *ctx = core_xmalloc(sizeof(*ctx) + n + 1);
    ctx->rt = rt;
    memcpy(ctx->key, conv->key, n + 1);
    int rc = store_state_load_async(rt->opts.store, conv->key, on_state, ctx);
    if (rc != 0) {
        free(ctx);
        return rc;
    }
    rt->store_pending++;
    return 0;
}

/* ---- one batch per turn --------------------------------------------------- */

/* The store id of conv's current conversation: the key for its first, then
 * "key#1", "key#2", ... for each that began after the previous one ended, so
 * a returning key never writes into (or re-ends) an ended conversation. The
 * saved state stays under the key (its first conversation's row), which is
 * how channels and the restore find it. Owned by the caller. */
static char *conv_id(const rt_conv_t *conv)
{
    if (conv->gen == 0)
        return core_xstrdup(conv->key);
    size_t n = strlen(conv->key) + 12;
    char *id = core_xmalloc(n);
    snprintf(id, n, "%s#%u", conv->key, conv->gen);
    return id;
}

/* The flow that handled the turn: the one active after it, else the last
 * one its events name (a flow that ended during the turn leaves the
 * conversation idle, with no flow). NULL when no flow did. */
static const char *turn_flow(const rt_turn_t *t)
{
    if (t->out.flow != NULL)
        return t->out.flow;
    for (size_t i = t->out.n_events; i-- > 0;)
        if (t->out.events[i].flow != NULL)
            return t->out.events[i].flow;
    return NULL;
}

static char *joined_messages(const brain_out_t *out)
{
    core_buf_t b;
    core_buf_init(&b, 1024 * 1024);
    for (size_t i = 0; i < out->n_messages; i++) {
        if (i > 0)
            core_buf_append_str(&b, "\n");
        core_buf_append_str(&b, out->messages[i].text ? out->messages[i].text : "");
    }
    return core_buf_steal(&b, NULL);
}

/* One rail decision (the brain records each as a "guard" / "guard_out"
 * event): rule, action, stage, channel, flow and flow version, never the text. */
static void add_rail_event(store_batch_t *b, const rt_turn_t *t, const brain_event_rec_t *ev,
                           int64_t seq, int64_t now)
{
    int output = strcmp(ev->name, "guard_out") == 0;
    if (!output && strcmp(ev->name, "guard") != 0)
        return;
    const char *action = guard_action_name((guard_action_t)ev->value);
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s?, s:I}", "stage", output ? "output" : "input", "action",
                  action, "channel", brain_channel_name((brain_channel_t)t->channel), "flow",
                  ev->flow, "flow_version", (json_int_t)brain_flowset_version(t->conv->fs));
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    store_event_t e = {t->conv_id, seq, now, "guardrail", ev->label, action, -1, detail};
    store_batch_event(b, &e);
    free(detail);
}

static void add_events(store_batch_t *b, const rt_turn_t *t, int64_t seq, int64_t now)
{
    const brain_out_t *out = &t->out;
    const char *key = t->conv_id;
    for (unsigned i = 0; i < t->n_fx; i++) {
        char detail[96];
        snprintf(detail, sizeof(detail), "{\"http_status\":%d,\"error\":\"%s\"}", t->fx[i].status,
                 t->fx[i].error ? core_strerror(t->fx[i].error) : "none");
        int ok = t->fx[i].error == 0 && t->fx[i].status >= 200 && t->fx[i].status < 400;
        store_event_t e = {key,
                           seq,
                           now,
                           t->fx[i].kind == BRAIN_EFFECT_LLM ? "llm" : "action",
                           t->fx[i].node,
                           ok ? "ok" : "error",
                           (int64_t)t->fx[i].ms * 1000,
                           detail};
        store_batch_event(b, &e);
    }
    for (size_t i = 0; i < out->n_events; i++) {
        const brain_event_rec_t *ev = &out->events[i];
        /* a turn nothing understood: `chorusctl learn` mines these */
        if (strcmp(ev->name, "fallback") == 0) {
            store_event_t e = {key, seq, now, "fallback", ev->flow, "ok", -1, NULL};
            store_batch_event(b, &e);
        }
        add_rail_event(b, t, ev, seq, now);
    }
}

/* {"text","choices"} of one message, written straight into b (the same
 * bytes as the jansson tree it replaces); a message whose text jansson would
 * have refused is left out, as it was. */
static void put_reply_message(core_buf_t *b, const brain_message_t *m, int first)
{
    const char *text = m->text ? m->text : "";
    size_t mark = b->len;
    int rc = first ? 0 : core_buf_append_lit(b, ",");
    if (rc == 0)
        rc = core_buf_append_lit(b, "{\"text\":");
    if (rc == 0)
        rc = core_buf_json_str(b, text, strlen(text));
    if (rc == 0)
        rc = core_buf_append_lit(b, ",\"choices\":[");
    size_t open = b->len;
    for (size_t j = 0; rc == 0 && j < m->n_choices; j++)
        brain_choice_json(b, &m->choices[j], b->len == open, 0);
    if (rc == 0)
        rc = core_buf_append_lit(b, "]}");
    if (rc != 0 && b->data != NULL) {
        b->len = mark;
        b->data[mark] = '\0';
    }
}

/* The bot's messages as channels render them, when the outbound row (the
 * texts joined by newlines) cannot say it alone: a message has quick replies
 * or a newline of its own, or the turn asks to confirm a slot (voice says
 * "press 1 for yes"). A channel that rebuilds its view of a conversation
 * after a restart reads them (docs/channels.md, "Restore"). */
static void add_reply(store_batch_t *b, const rt_turn_t *t, int64_t seq, int64_t now)
{
    const brain_out_t *out = &t->out;
    int need = out->confirm_slot != NULL;
    for (size_t i = 0; i < out->n_messages && !need; i++)
        need = out->messages[i].n_choices > 0 ||
               (out->messages[i].text != NULL && strchr(out->messages[i].text, '\n') != NULL);
    if (!need)
        return;
    core_buf_t d;
    core_buf_init(&d, (size_t)1 << 30); /* as jansson: no limit a reply reaches */
    core_buf_append_lit(&d, "{\"messages\":[");
    size_t open = d.len;
    for (size_t i = 0; i < out->n_messages; i++)
        put_reply_message(&d, &out->messages[i], d.len == open);
    core_buf_append_lit(&d, "]");
    if (out->confirm_slot != NULL) { /* a slot name: the flow's own identifier */
        core_buf_append_lit(&d, ",\"confirm\":");
        core_buf_json_str(&d, out->confirm_slot, strlen(out->confirm_slot));
    }
    core_buf_append_lit(&d, "}");
    char *detail = core_buf_steal(&d, NULL);
    store_event_t e = {t->conv_id, seq, now, "reply", NULL, "ok", -1, detail};
    store_batch_event(b, &e);
    free(detail);
}

/* A person closed the conversation (a jump_end turn): its outcome stays
 * escalated, as the handoff left it, so this event is what says it ended,
 * to a channel that rebuilds its view of it from the store
 * (docs/channels.md, "Restore"), which would otherwise find it still
 * handed off and let it go on. name is the end's reason, if the brain gave
 * one (the channel says "end" otherwise). */
static void add_closed(store_batch_t *b, const rt_turn_t *t, int64_t now)
{
    store_event_t e = {t->conv_id, t->conv->seq, now, "closed", t->out.end_reason, "ok", -1, NULL};
    store_batch_event(b, &e);
}

/* A person gave the handed-off conversation back to the bot (a release
 * turn), tied to its last row. The outcome stays escalated -- it was
 * escalated, and reports count it so -- so without this event a channel
 * rebuilding its view from the store (docs/channels.md, "Restore") would
 * find the handoff the latest word on it and report it still handed off,
 * while the bot answers it. name is the node it went on at. */
static void add_released(store_batch_t *b, const rt_turn_t *t, int64_t now)
{
    const char *flow = t->jump, *node = t->jump + strlen(t->jump) + 1;
    json_t *d = json_pack("{s:s, s:s}", "flow", flow, "node", node);
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    store_event_t e = {t->conv_id, t->conv->seq, now, "released", node, "ok", -1, detail};
    store_batch_event(b, &e);
    free(detail);
}

static void add_outcome(store_batch_t *b, const rt_turn_t *t, int64_t now)
{
    const brain_out_t *out = &t->out;
    uint8_t before = t->has_saved ? t->saved.status : BRAIN_ST_ACTIVE;
    if (t->released && out->status != BRAIN_ST_HANDOFF) /* else still a person's */
        add_released(b, t, now);
    if (out->status == BRAIN_ST_HANDOFF && before != BRAIN_ST_HANDOFF) {
        char detail[160];
        json_t *q = json_pack("{s:s}", "queue", out->handoff_queue ? out->handoff_queue : "");
        char *qs = json_dumps(q, JSON_COMPACT);
        snprintf(detail, sizeof(detail), "%s", qs ? qs : "{}");
        free(qs);
        json_decref(q);
        store_event_t e = {t->conv_id,          t->conv->seq, now, "handoff",
                           out->handoff_reason, "escalated",  -1,  detail};
        store_batch_event(b, &e);
        store_batch_conv_end(b, t->conv_id, STORE_OUTCOME_ESCALATED, out->handoff_reason, now);
    } else if (out->status == BRAIN_ST_ENDED && before != BRAIN_ST_ENDED && t->jump_end) {
        add_closed(b, t, now);
    } else if (out->status == BRAIN_ST_ENDED && before != BRAIN_ST_ENDED) {
        int idle = out->end_reason && strcmp(out->end_reason, "idle_timeout") == 0;
        store_batch_conv_end(b, t->conv_id,
                             idle ? STORE_OUTCOME_ABANDONED : STORE_OUTCOME_CONTAINED, NULL, now);
    }
    if (out->csat > 0)
        store_batch_csat(b, t->conv_id, out->csat, now);
}

static void add_rows(store_batch_t *b, rt_turn_t *t, int64_t now)
{
    rt_conv_t *conv = t->conv;
    const brain_out_t *out = &t->out;
    const char *channel = brain_channel_name((brain_channel_t)t->channel);
    int64_t latency = (int64_t)(core_now_us() - t->start_us);
    if (t->in.event == BRAIN_EV_MESSAGE) {
        char *gj = out->guard_in.n_decisions > 0 ? guard_result_json(&out->guard_in) : NULL;
        store_turn_t in = {.conversation_id = t->conv_id,
                           .seq = ++conv->seq,
                           .direction = 'i',
                           .ts_us = t->in.now_us,
                           .text = out->guard_in.text ? out->guard_in.text : t->in.text,
                           .intent = out->intent,
                           .confidence = out->intent ? out->confidence : -1,
                           .oos = out->out_of_scope,
                           .latency_us = -1,
                           .guard_json = gj,
                           .channel = channel,
                           .adapter_version = t->adapter_version,
                           .client_id = t->client_id};
        store_batch_turn(b, &in);
        free(gj);
        if (t->input_detail != NULL) { /* how it was captured: voice's ASR confidence */
            store_event_t e = {t->conv_id, in.seq, t->in.now_us, "input",
                               channel,    "ok",   -1,           t->input_detail};
            store_batch_event(b, &e);
        }
    }
    if (out->n_messages > 0 || t->n_fx > 0) {
        /* one message (the common case) needs no joining: the batch copies it */
        const char *one = out->n_messages == 1 ? out->messages[0].text : NULL;
        char *text = out->n_messages == 1 ? NULL : joined_messages(out);
        store_turn_t bot = {.conversation_id = t->conv_id,
                            .seq = ++conv->seq,
                            .direction = 'o',
                            .ts_us = now,
                            .text = text  ? text
                                    : one ? one
                                          : "",
                            .confidence = -1,
                            .node = out->node,
                            .latency_us = latency,
                            .tokens_in = t->tokens_in,
                            .tokens_out = t->tokens_out,
                            .error = t->fail_kind,
                            .channel = channel,
                            .adapter_version = t->adapter_version};
        store_batch_turn(b, &bot);
        free(text);
    }
}

static void update_metrics(const rt_turn_t *t, double latency_s)
{
    store_metrics_t *m = t->rt->opts.metrics;
    if (m == NULL)
        return;
    const brain_out_t *out = &t->out;
    const char *flow = turn_flow(t) ? turn_flow(t) : "-";
    const char *l[] = {brain_channel_name((brain_channel_t)t->channel), flow, NULL};
    if (t->in.event == BRAIN_EV_MESSAGE) {
        store_metrics_add(m, STORE_M_TURNS, l, 1);
        store_metrics_observe(m, STORE_M_TURN_LATENCY, l, latency_s);
        if (out->intent)
            store_metrics_observe(m, STORE_M_CONFIDENCE, l, out->confidence);
        if (out->out_of_scope)
            store_metrics_add(m, STORE_M_OOS, l, 1);
    }
    if (!t->conv->stored)
        store_metrics_add(m, STORE_M_CONV_STARTED, l, 1);
    uint8_t before = t->has_saved ? t->saved.status : BRAIN_ST_ACTIVE;
    if (out->status == BRAIN_ST_HANDOFF && before != BRAIN_ST_HANDOFF) {
        const char *lr[] = {l[0], flow, out->handoff_reason ? out->handoff_reason : ""};
        store_metrics_add(m, STORE_M_ESCALATIONS, lr, 1);
        const char *lo[] = {l[0], flow, STORE_OUTCOME_ESCALATED};
        store_metrics_add(m, STORE_M_CONV_ENDED, lo, 1);
    } else if (out->status == BRAIN_ST_ENDED && before != BRAIN_ST_ENDED && !t->jump_end) {
        int idle = out->end_reason && strcmp(out->end_reason, "idle_timeout") == 0;
        const char *lo[] = {l[0], flow, idle ? STORE_OUTCOME_ABANDONED : STORE_OUTCOME_CONTAINED};
        store_metrics_add(m, STORE_M_CONV_ENDED, lo, 1);
    }
    if (t->fail_kind) {
        const char *lk[] = {l[0], flow, t->fail_kind};
        store_metrics_add(m, STORE_M_FAILURES, lk, 1);
    }
    if (t->tokens_in > 0 || t->tokens_out > 0) {
        const char *li[] = {l[0], flow, "in"}, *lo[] = {l[0], flow, "out"};
        store_metrics_add(m, STORE_M_LLM_TOKENS, li, t->tokens_in);
        store_metrics_add(m, STORE_M_LLM_TOKENS, lo, t->tokens_out);
    }
    if (out->csat > 0)
        store_metrics_observe(m, STORE_M_CSAT, l, out->csat);
}

static void on_durable(int status, void *data)
{
    rt_turn_t *t = data;
    char q[200];
    if (status != 0)
        LOG_ERROR("event=turn_not_durable key=%s error=%s",
                  qkey(q, sizeof(q), t->conv ? t->conv->key : "-"), core_strerror(status));
    rt_turn_durable(t, status);
}

/* Ends id, the conversation t's new session left behind with no timeout
 * turn, as abandoned when its idle time ran out (never after t's input). */
static void end_idled(store_batch_t *b, const rt_turn_t *t, const char *id, int64_t now)
{
    int64_t idle = brain_flowset_idle_timeout_us(t->conv->fs);
    int64_t ended = t->saved.last_us > 0 && idle > 0 ? t->saved.last_us + idle : now;
    if (ended > t->in.now_us)
        ended = t->in.now_us;
    store_batch_conv_end(b, id, STORE_OUTCOME_ABANDONED, NULL, ended);
    if (t->rt->opts.metrics != NULL) {
        const char *lo[] = {brain_channel_name((brain_channel_t)t->saved.channel), "-",
                            STORE_OUTCOME_ABANDONED};
        store_metrics_add(t->rt->opts.metrics, STORE_M_CONV_ENDED, lo, 1);
    }
    LOG_INFO("event=conversation_abandoned id=%s reason=idle_without_timeout_turn", id);
}

/* What the channel said about who began the conversation (chat: the
 * gateway that owns it), beside its start row and under no row: the
 * channel reads it back with the conversation's record. */
static void add_start(store_batch_t *b, const rt_turn_t *t, int64_t now)
{
    if (t->start_detail == NULL)
        return;
    store_event_t e = {.conversation_id = t->conv_id,
                       .ts_us = now,
                       .kind = "start",
                       .name = brain_channel_name((brain_channel_t)t->channel),
                       .status = "ok",
                       .duration_us = -1,
                       .detail = t->start_detail};
    store_batch_event(b, &e);
}

int rt_store_commit(rt_turn_t *t)
{
    runtime_t *rt = t->rt;
    rt_conv_t *conv = t->conv;
    int64_t now = core_wall_us();
    char *idled = NULL; /* the conversation a new session left without an end */
    if (conv->stored && t->has_saved && conv->state.created_us != t->saved.created_us) {
        /* The brain began a new session: the key came back after its
         * conversation ended or idled out. A new conversation, rows from 1.
         * One that idled out with no timeout turn to end it (it was out of
         * the table, evicted, when it fell due) is ended here, abandoned
         * when its idle time ran out, so that no row stays active. */
        if (t->saved.status == BRAIN_ST_ACTIVE)
            idled = conv_id(conv);
        conv->gen++;
        conv->seq = 0;
        conv->stored = 0;
    }
    free(t->conv_id);
    t->conv_id = conv_id(conv);
    store_batch_t *b = store_batch_new();
    if (idled != NULL) {
        end_idled(b, t, idled, now);
        free(idled);
    }
    if (!conv->stored) {
        /* The version of the conversation's flow it is pinned to, and its rollout arm. */
        char version[16];
        snprintf(version, sizeof(version), "%u", brain_flowset_version(conv->fs));
        const char *fv = rt_ver_flow_version(conv->ver, turn_flow(t));
        store_conv_start_t cs = {t->conv_id,
                                 brain_channel_name((brain_channel_t)t->channel),
                                 turn_flow(t) ? turn_flow(t) : "-",
                                 fv[0] ? fv : version,
                                 rt_variant_name(conv->variant),
                                 t->adapter_version,
                                 conv->state.created_us};
        store_batch_conv_start(b, &cs);
        add_start(b, t, now);
    }
    add_rows(b, t, now);
    add_events(b, t, conv->seq, now);
    if (t->out.n_messages > 0)
        add_reply(b, t, conv->seq, now);
    add_outcome(b, t, now);
    /* The state goes last so the seq it carries counts the rows above. */
    char *state = state_json(t);
    if (state == NULL) {
        store_batch_free(b);
        return CORE_ERR_INTERNAL;
    }
    /* With a desk observing (runtime_set_observer), a handed-off
     * conversation stays active: its key keeps reaching the person who has
     * it (the bot stays quiet) until they close or release it. Without one,
     * the key starts afresh once the handed-off conversation is gone. */
    int held = t->out.status == BRAIN_ST_HANDOFF && rt->observer != NULL;
    int active = t->out.status != BRAIN_ST_ENDED && (t->out.status != BRAIN_ST_HANDOFF || held);
    store_batch_state(b, conv->key, state, active, now);
    free(state);
    int rc = store_enqueue(rt->opts.store, b, on_durable, t);
    if (rc != 0) {
        store_batch_free(b);
        char q[200];
        LOG_WARN("event=turn_refused key=%s reason=store_%s", qkey(q, sizeof(q), conv->key),
                 core_strerror(rc));
        return rc;
    }
    update_metrics(t, (double)(core_now_us() - t->start_us) / 1e6);
    return 0;
}
