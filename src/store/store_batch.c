/* Batches: the loop builds one per turn, copying every string, and hands it
 * to the writer whole (store.h). */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

static const char *dup_or_null(const char *s)
{
    return s != NULL ? core_xstrdup(s) : NULL;
}

static void release(const char *s)
{
    free((void *)s);
}

store_batch_t *store_batch_new(void)
{
    return core_xcalloc(1, sizeof(store_batch_t));
}

static store__op_t *push(store_batch_t *b, store__op_kind_t kind)
{
    if (b->len == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->ops = core_xrealloc(b->ops, b->cap * sizeof(*b->ops));
    }
    store__op_t *op = &b->ops[b->len++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

void store_batch_conv_start(store_batch_t *b, const store_conv_start_t *c)
{
    store_conv_start_t *o = &push(b, STORE__OP_CONV_START)->u.start;
    *o = *c;
    o->id = dup_or_null(c->id);
    o->channel = dup_or_null(c->channel);
    o->flow = dup_or_null(c->flow);
    o->flow_version = dup_or_null(c->flow_version);
    o->variant = dup_or_null(c->variant);
    o->adapter_version = dup_or_null(c->adapter_version);
}

void store_batch_turn(store_batch_t *b, const store_turn_t *t)
{
    store_turn_t *o = &push(b, STORE__OP_TURN)->u.turn;
    *o = *t;
    o->conversation_id = dup_or_null(t->conversation_id);
    o->text = dup_or_null(t->text);
    o->intent = dup_or_null(t->intent);
    o->node = dup_or_null(t->node);
    o->guard_json = dup_or_null(t->guard_json);
    o->error = dup_or_null(t->error);
    o->channel = dup_or_null(t->channel);
    o->adapter_version = dup_or_null(t->adapter_version);
    b->turns++;
}

void store_batch_event(store_batch_t *b, const store_event_t *e)
{
    store_event_t *o = &push(b, STORE__OP_EVENT)->u.event;
    *o = *e;
    o->conversation_id = dup_or_null(e->conversation_id);
    o->kind = dup_or_null(e->kind);
    o->name = dup_or_null(e->name);
    o->status = dup_or_null(e->status);
    o->detail = dup_or_null(e->detail);
}

void store_batch_state(store_batch_t *b, const char *conversation_id, const char *state_json,
                       int active, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_STATE);
    op->u.state.conversation_id = dup_or_null(conversation_id);
    op->u.state.state_json = dup_or_null(state_json);
    op->u.state.active = active ? 1 : 0;
    op->u.state.ts_us = ts_us;
}

void store_batch_conv_end(store_batch_t *b, const char *conversation_id, const char *outcome,
                          const char *reason, int64_t ended_us)
{
    store__op_t *op = push(b, STORE__OP_CONV_END);
    op->u.end.conversation_id = dup_or_null(conversation_id);
    op->u.end.outcome = dup_or_null(outcome);
    op->u.end.reason = dup_or_null(reason);
    op->u.end.ended_us = ended_us;
}

void store_batch_csat(store_batch_t *b, const char *conversation_id, int score, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_CSAT);
    op->u.csat.conversation_id = dup_or_null(conversation_id);
    op->u.csat.score = score;
    op->u.csat.ts_us = ts_us;
}

void store_batch_label(store_batch_t *b, const char *conversation_id, int64_t turn_seq,
                       const char *intent, const char *labeller, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_LABEL);
    op->u.label.conversation_id = dup_or_null(conversation_id);
    op->u.label.turn_seq = turn_seq;
    op->u.label.intent = dup_or_null(intent);
    op->u.label.labeller = dup_or_null(labeller);
    op->u.label.ts_us = ts_us;
}

void store_batch_audit(store_batch_t *b, const char *actor, const char *action, const char *target,
                       const char *detail_json, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_AUDIT);
    op->u.audit.actor = dup_or_null(actor);
    op->u.audit.action = dup_or_null(action);
    op->u.audit.target = dup_or_null(target);
    op->u.audit.detail_json = dup_or_null(detail_json);
    op->u.audit.ts_us = ts_us;
}

void store_batch_token_create(store_batch_t *b, const char *name, const char *role,
                              const char *sha256_hex, const char *created_by, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_TOKEN);
    op->u.token.name = dup_or_null(name);
    op->u.token.role = dup_or_null(role);
    op->u.token.sha256 = dup_or_null(sha256_hex);
    op->u.token.by = dup_or_null(created_by);
    op->u.token.ts_us = ts_us;
}

void store_batch_token_revoke(store_batch_t *b, const char *name, int64_t ts_us)
{
    store__op_t *op = push(b, STORE__OP_TOKEN);
    op->u.token.revoke = 1;
    op->u.token.name = dup_or_null(name);
    op->u.token.ts_us = ts_us;
}

size_t store_batch_turns(const store_batch_t *b)
{
    return b->turns;
}

static void op_dispose(store__op_t *op)
{
    switch (op->kind) {
    case STORE__OP_CONV_START:
        release(op->u.start.id), release(op->u.start.channel), release(op->u.start.flow);
        release(op->u.start.flow_version), release(op->u.start.variant);
        release(op->u.start.adapter_version);
        break;
    case STORE__OP_TURN:
        release(op->u.turn.conversation_id), release(op->u.turn.text);
        release(op->u.turn.intent), release(op->u.turn.node), release(op->u.turn.guard_json);
        release(op->u.turn.error), release(op->u.turn.channel);
        release(op->u.turn.adapter_version);
        break;
    case STORE__OP_EVENT:
        release(op->u.event.conversation_id), release(op->u.event.kind);
        release(op->u.event.name), release(op->u.event.status), release(op->u.event.detail);
        break;
    case STORE__OP_STATE:
        release(op->u.state.conversation_id), release(op->u.state.state_json);
        break;
    case STORE__OP_CONV_END:
        release(op->u.end.conversation_id), release(op->u.end.outcome);
        release(op->u.end.reason);
        break;
    case STORE__OP_CSAT:
        release(op->u.csat.conversation_id);
        break;
    case STORE__OP_LABEL:
        release(op->u.label.conversation_id), release(op->u.label.intent);
        release(op->u.label.labeller);
        break;
    case STORE__OP_AUDIT:
        release(op->u.audit.actor), release(op->u.audit.action), release(op->u.audit.target);
        release(op->u.audit.detail_json);
        break;
    case STORE__OP_TOKEN:
        release(op->u.token.name), release(op->u.token.role), release(op->u.token.sha256);
        release(op->u.token.by);
        break;
    case STORE__OP_FLOWS:
        store__flows_dispose(op);
        break;
    case STORE__OP_HANDOFF:
        store__handoff_dispose(op);
        break;
    case STORE__OP_SMS_OPT:
        store__sms_opt_dispose(op);
        break;
    }
}

void store_batch_free(store_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->len; i++)
        op_dispose(&b->ops[i]);
    free(b->ops);
    free(b);
}
