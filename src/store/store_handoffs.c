/* The human desk's rows (docs/agents.md): one row per handoff (migration
 * 5), replaced whole on every change of its state; one row per message of
 * its history (migration 7), written once; and the reads that bring the
 * open ones (released ones still waiting for their outcome included) back
 * after a restart. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

void store_batch_handoff(store_batch_t *b, const store_handoff_t *h)
{
    store__op_t *op = store__batch_push(b, STORE__OP_HANDOFF);
    store_handoff_t *o = &op->u.handoff;
    *o = *h;
    o->conversation_id = core_xstrdup_opt(h->conversation_id);
    o->key = core_xstrdup_opt(h->key);
    o->queue = core_xstrdup_opt(h->queue);
    o->channel = core_xstrdup_opt(h->channel);
    o->reason = core_xstrdup_opt(h->reason);
    o->state = core_xstrdup_opt(h->state);
    o->agent = core_xstrdup_opt(h->agent);
    o->disposition = core_xstrdup_opt(h->disposition);
    o->release_outcome = core_xstrdup_opt(h->release_outcome);
    o->detail = core_xstrdup_opt(h->detail);
}

void store_batch_handoff_message(store_batch_t *b, const store_handoff_message_t *m)
{
    store__op_t *op = store__batch_push(b, STORE__OP_HANDOFF_MESSAGE);
    store_handoff_message_t *o = &op->u.handoff_message;
    *o = *m;
    o->conversation_id = core_xstrdup_opt(m->conversation_id);
    o->handoff_id = core_xstrdup_opt(m->handoff_id);
    o->from = core_xstrdup_opt(m->from);
    o->agent = core_xstrdup_opt(m->agent);
    char *text = core_xmalloc(m->text_len + 1);
    if (m->text_len > 0)
        memcpy(text, m->text, m->text_len);
    text[m->text_len] = '\0';
    o->text = text;
}

void store__handoff_dispose(store__op_t *op)
{
    if (op->kind == STORE__OP_HANDOFF_MESSAGE) {
        store_handoff_message_t *m = &op->u.handoff_message;
        const char *s[] = {m->conversation_id, m->handoff_id, m->from, m->agent, m->text};
        for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
            free((void *)s[i]);
        return;
    }
    store_handoff_t *h = &op->u.handoff;
    const char *s[] = {h->conversation_id, h->key,   h->queue,       h->channel,         h->reason,
                       h->state,           h->agent, h->disposition, h->release_outcome, h->detail};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        free((void *)s[i]);
}

/* A released handoff is still open while its conversation is: the key's
 * saved state (conversation_state, one row under the key) is active and is
 * the state of that conversation, not of a later one of the key (key#gen,
 * gen as the state carries it; a state that is not JSON is of none). The
 * read goes from the active states (their partial index) to the handoff
 * of each by its conversation id, rather than through every handoff ever
 * released; the newest max_released by the time of their release. */
#define STATE_CONV_ID                                                                              \
    "CASE WHEN NOT json_valid(s.state) THEN NULL"                                                  \
    " WHEN coalesce(json_extract(s.state, '$.gen'), 0) = 0 THEN s.conversation_id"                 \
    " ELSE s.conversation_id || '#' || json_extract(s.state, '$.gen') END"

int store_db_open_handoffs(store_db_t *db, size_t max_released,
                           void (*fn)(const char *detail, void *arg), void *arg, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT detail FROM (SELECT detail, entered_us FROM handoffs"
                                " WHERE state IN ('waiting','claimed')"
                                " UNION ALL SELECT * FROM (SELECT h.detail, h.entered_us"
                                "  FROM conversation_state s CROSS JOIN handoffs h"
                                "  WHERE s.active = 1 AND h.conversation_id = " STATE_CONV_ID
                                "  AND h.state = 'released' AND h.release_outcome IS NULL"
                                "  ORDER BY h.done_us DESC LIMIT ?1))"
                                " ORDER BY entered_us",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_bind_int64(st, 1, max_released > INT64_MAX ? INT64_MAX : (int64_t)max_released);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), arg);
    int out = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    return out;
}

int store_db_handoff_messages(store_db_t *db, const char *conversation_id, const char *handoff_id,
                              size_t limit, void (*fn)(const store_handoff_message_t *m, void *arg),
                              void *arg, core_err_t *err)
{
    sqlite3_stmt *st;
    /* the last limit by the key's order, then oldest first */
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT seq, sender, agent, text, ts_us FROM (SELECT * FROM"
                                " handoff_messages WHERE conversation_id = ?1 AND handoff_id = ?2"
                                " ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_bind_text(st, 1, conversation_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, handoff_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 3);
        store_handoff_message_t m = {.conversation_id = conversation_id,
                                     .handoff_id = handoff_id,
                                     .seq = sqlite3_column_int64(st, 0),
                                     .from = (const char *)sqlite3_column_text(st, 1),
                                     .agent = (const char *)sqlite3_column_text(st, 2),
                                     .text = text ? text : "",
                                     .text_len = (size_t)sqlite3_column_bytes(st, 3),
                                     .ts_us = sqlite3_column_int64(st, 4)};
        fn(&m, arg);
    }
    int out = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    return out;
}
