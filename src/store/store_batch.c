/* Batches: the loop builds one per turn, copying every string, and hands it
 * to the writer whole (store.h). The strings of the operations built here
 * are copied into chunks the batch owns (store__chunk_t): a turn's batch
 * holds some 25 strings, which would otherwise be as many malloc() and
 * free() calls on the loop thread. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* The first chunk fits a usual turn (ids, texts, guard JSON, saved state). */
#define FIRST_CHUNK 2048
#define NEXT_CHUNK 8192

static store__chunk_t *new_chunk(size_t cap)
{
    store__chunk_t *c = core_xmalloc(sizeof(*c) + cap);
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

static const char *dup_or_null(store_batch_t *b, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    store__chunk_t *c = b->strings;
    if (c == NULL || c->cap - c->used < n) {
        if (n > NEXT_CHUNK / 2 && c != NULL) {
            /* a large string gets a chunk of its own, behind the current one */
            store__chunk_t *big = new_chunk(n);
            big->next = c->next;
            c->next = big;
            c = big;
        } else {
            size_t cap = c != NULL ? NEXT_CHUNK : FIRST_CHUNK;
            store__chunk_t *fresh = new_chunk(n > cap ? n : cap);
            fresh->next = c;
            b->strings = c = fresh;
        }
    }
    char *d = c->data + c->used;
    memcpy(d, s, n);
    c->used += n;
    return d;
}

store_batch_t *store_batch_new(void)
{
    return core_xcalloc(1, sizeof(store_batch_t));
}

store__op_t *store__batch_push(store_batch_t *b, store__op_kind_t kind)
{
    if (b->len == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8; /* a turn: two turns, events, state */
        b->ops = core_xrealloc(b->ops, b->cap * sizeof(*b->ops));
    }
    store__op_t *op = &b->ops[b->len++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

void store_batch_conv_start(store_batch_t *b, const store_conv_start_t *c)
{
    store_conv_start_t *o = &store__batch_push(b, STORE__OP_CONV_START)->u.start;
    *o = *c;
    o->id = dup_or_null(b, c->id);
    o->channel = dup_or_null(b, c->channel);
    o->flow = dup_or_null(b, c->flow);
    o->flow_version = dup_or_null(b, c->flow_version);
    o->variant = dup_or_null(b, c->variant);
    o->adapter_version = dup_or_null(b, c->adapter_version);
}

void store_batch_turn(store_batch_t *b, const store_turn_t *t)
{
    store_turn_t *o = &store__batch_push(b, STORE__OP_TURN)->u.turn;
    *o = *t;
    o->conversation_id = dup_or_null(b, t->conversation_id);
    o->text = dup_or_null(b, t->text);
    o->intent = dup_or_null(b, t->intent);
    o->node = dup_or_null(b, t->node);
    o->guard_json = dup_or_null(b, t->guard_json);
    o->error = dup_or_null(b, t->error);
    o->channel = dup_or_null(b, t->channel);
    o->adapter_version = dup_or_null(b, t->adapter_version);
    o->client_id = dup_or_null(b, t->client_id);
    b->turns++;
}

void store_batch_event(store_batch_t *b, const store_event_t *e)
{
    store_event_t *o = &store__batch_push(b, STORE__OP_EVENT)->u.event;
    *o = *e;
    o->conversation_id = dup_or_null(b, e->conversation_id);
    o->kind = dup_or_null(b, e->kind);
    o->name = dup_or_null(b, e->name);
    o->status = dup_or_null(b, e->status);
    o->detail = dup_or_null(b, e->detail);
}

void store_batch_state(store_batch_t *b, const char *conversation_id, const char *state_json,
                       int active, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_STATE);
    op->u.state.conversation_id = dup_or_null(b, conversation_id);
    op->u.state.state_json = dup_or_null(b, state_json);
    op->u.state.active = active ? 1 : 0;
    op->u.state.ts_us = ts_us;
}

void store_batch_conv_end(store_batch_t *b, const char *conversation_id, const char *outcome,
                          const char *reason, int64_t ended_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_CONV_END);
    op->u.end.conversation_id = dup_or_null(b, conversation_id);
    op->u.end.outcome = dup_or_null(b, outcome);
    op->u.end.reason = dup_or_null(b, reason);
    op->u.end.ended_us = ended_us;
}

void store_batch_csat(store_batch_t *b, const char *conversation_id, int score, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_CSAT);
    op->u.csat.conversation_id = dup_or_null(b, conversation_id);
    op->u.csat.score = score;
    op->u.csat.ts_us = ts_us;
}

void store_batch_label(store_batch_t *b, const char *conversation_id, int64_t turn_seq,
                       const char *intent, const char *labeller, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_LABEL);
    op->u.label.conversation_id = dup_or_null(b, conversation_id);
    op->u.label.turn_seq = turn_seq;
    op->u.label.intent = dup_or_null(b, intent);
    op->u.label.labeller = dup_or_null(b, labeller);
    op->u.label.ts_us = ts_us;
}

void store_batch_audit(store_batch_t *b, const char *actor, const char *action, const char *target,
                       const char *detail_json, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_AUDIT);
    op->u.audit.actor = dup_or_null(b, actor);
    op->u.audit.action = dup_or_null(b, action);
    op->u.audit.target = dup_or_null(b, target);
    op->u.audit.detail_json = dup_or_null(b, detail_json);
    op->u.audit.ts_us = ts_us;
}

void store_batch_token_create(store_batch_t *b, const char *name, const char *role,
                              const char *sha256_hex, const char *created_by, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_TOKEN);
    op->u.token.name = dup_or_null(b, name);
    op->u.token.role = dup_or_null(b, role);
    op->u.token.sha256 = dup_or_null(b, sha256_hex);
    op->u.token.by = dup_or_null(b, created_by);
    op->u.token.ts_us = ts_us;
}

void store_batch_token_revoke(store_batch_t *b, const char *name, int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_TOKEN);
    op->u.token.revoke = 1;
    op->u.token.name = dup_or_null(b, name);
    op->u.token.ts_us = ts_us;
}

size_t store_batch_turns(const store_batch_t *b)
{
    return b->turns;
}

/* Frees what an operation owns beyond the batch's chunks. */
static void op_dispose(store__op_t *op)
{
    switch (op->kind) {
    case STORE__OP_FLOWS:
        store__flows_dispose(op);
        break;
    case STORE__OP_HANDOFF:
    case STORE__OP_HANDOFF_MESSAGE:
        store__handoff_dispose(op);
        break;
    case STORE__OP_SMS_OPT:
        store__sms_opt_dispose(op);
        break;
    case STORE__OP_ROLLOUT:
        store__rollout_dispose(op);
        break;
    default: /* strings in the batch's chunks */
        break;
    }
}

void store_batch_free(store_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->len; i++)
        op_dispose(&b->ops[i]);
    while (b->strings != NULL) {
        store__chunk_t *next = b->strings->next;
        free(b->strings);
        b->strings = next;
    }
    free(b->ops);
    free(b);
}
