/* The human desk's rows (migration 5, docs/agents.md): one row per handoff,
 * replaced whole on every change, and the read that brings the open ones
 * back after a restart. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

static const char *dup_or_null(const char *s)
{
    return s != NULL ? core_xstrdup(s) : NULL;
}

void store_batch_handoff(store_batch_t *b, const store_handoff_t *h)
{
    if (b->len == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->ops = core_xrealloc(b->ops, b->cap * sizeof(*b->ops));
    }
    store__op_t *op = &b->ops[b->len++];
    memset(op, 0, sizeof(*op));
    op->kind = STORE__OP_HANDOFF;
    store_handoff_t *o = &op->u.handoff;
    *o = *h;
    o->conversation_id = dup_or_null(h->conversation_id);
    o->key = dup_or_null(h->key);
    o->queue = dup_or_null(h->queue);
    o->channel = dup_or_null(h->channel);
    o->reason = dup_or_null(h->reason);
    o->state = dup_or_null(h->state);
    o->agent = dup_or_null(h->agent);
    o->disposition = dup_or_null(h->disposition);
    o->release_outcome = dup_or_null(h->release_outcome);
    o->detail = dup_or_null(h->detail);
}

void store__handoff_dispose(store__op_t *op)
{
    store_handoff_t *h = &op->u.handoff;
    const char *s[] = {h->conversation_id, h->key,   h->queue,       h->channel,         h->reason,
                       h->state,           h->agent, h->disposition, h->release_outcome, h->detail};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        free((void *)s[i]);
}

int store_db_open_handoffs(store_db_t *db, void (*fn)(const char *detail, void *arg), void *arg,
                           core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT detail FROM handoffs WHERE state IN ('waiting','claimed')"
                                " ORDER BY entered_us",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, db->path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), arg);
    int out = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    return out;
}
