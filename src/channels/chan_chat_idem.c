/* The idempotency cache: a retried POST with the same Idempotency-Key (or a
 * resent WebSocket message with the same id) gets the stored answer and
 * never a second turn. Entries are kept in insertion order, so with one TTL
 * for all the oldest expires first and expiry is a walk from the head on
 * each insert: no timer. Bounded by count; an entry whose turn is still in
 * flight is never dropped (its request holds it). */
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

void chat__idem_init(chat_idem_t *t)
{
    chat__map_init(&t->map);
    chat__list_init(&t->fifo);
    t->count = 0;
}

static void entry_free(chat_idem_t *t, chat_idem_entry_t *e)
{
    chat__map_del(&t->map, &e->node);
    chat__list_remove(&e->fifo);
    t->count--;
    free(e->key);
    free(e->body);
    free(e);
}

void chat__idem_dispose(chat_idem_t *t)
{
    while (!chat__list_empty(&t->fifo))
        entry_free(t, CHAT_CONTAINER(t->fifo.next, chat_idem_entry_t, fifo));
    chat__map_dispose(&t->map);
}

/* Drops expired finished entries from the head, then (when full) the
 * oldest finished ones. Returns 0, or CORE_ERR_LIMIT when all are pending. */
static int make_room(chat_idem_t *t, size_t max, int64_t now_us)
{
    chat_link_t *l = t->fifo.next;
    while (l != &t->fifo) {
        chat_idem_entry_t *e = CHAT_CONTAINER(l, chat_idem_entry_t, fifo);
        l = l->next;
        if (e->expires_us > now_us && t->count < max)
            break;
        if (e->done)
            entry_free(t, e);
    }
    return t->count < max ? 0 : CORE_ERR_LIMIT;
}

int chat__idem_begin(chat_idem_t *t, const char *key, const uint8_t fp[32], size_t max,
                     int64_t ttl_us, int64_t now_us, chat_idem_entry_t **out)
{
    chat_map_node_t *n = chat__map_get(&t->map, key);
    chat_idem_entry_t *e = n ? CHAT_CONTAINER(n, chat_idem_entry_t, node) : NULL;
    if (e != NULL && e->done && e->expires_us <= now_us) {
        entry_free(t, e);
        e = NULL;
    }
    if (e != NULL) {
        *out = e;
        if (memcmp(e->fp, fp, 32) != 0)
            return CHAT_IDEM_MISMATCH;
        return e->done ? CHAT_IDEM_REPLAY : CHAT_IDEM_PENDING;
    }
    if (make_room(t, max, now_us) != 0)
        return CORE_ERR_LIMIT;
    e = core_xcalloc(1, sizeof(*e));
    e->key = core_xstrdup(key);
    e->node.key = e->key;
    memcpy(e->fp, fp, 32);
    e->expires_us = now_us + ttl_us;
    chat__map_put(&t->map, &e->node);
    chat__list_push_back(&t->fifo, &e->fifo);
    t->count++;
    *out = e;
    return CHAT_IDEM_NEW;
}

void chat__idem_finish(chat_idem_entry_t *e, int status, const char *body, uint64_t seq)
{
    e->done = 1;
    e->status = status;
    e->seq = seq;
    free(e->body);
    e->body = core_xstrdup(body ? body : "");
}

void chat__idem_cancel(chat_idem_t *t, chat_idem_entry_t *e)
{
    if (e != NULL)
        entry_free(t, e);
}

/* A known entry's fingerprint is its text's SHA-256, all zero when unknown. */
static const uint8_t unknown_text[32];

void chat__idem_known(chat_idem_t *t, const char *key, uint64_t seq, const char *body,
                      const char *text, size_t max, int64_t ttl_us, int64_t now_us)
{
    uint8_t fp[32];
    if (text != NULL)
        core_sha256(text, strlen(text), fp);
    else
        memcpy(fp, unknown_text, sizeof(fp));
    chat_idem_entry_t *e;
    if (chat__idem_begin(t, key, fp, max, ttl_us, now_us, &e) == CHAT_IDEM_NEW)
        chat__idem_finish(e, 200, body, seq);
}

int chat__idem_same_text(const chat_idem_entry_t *e, const char *text, size_t len)
{
    if (memcmp(e->fp, unknown_text, sizeof(e->fp)) == 0)
        return 1;
    uint8_t fp[32];
    core_sha256(text, len, fp);
    return memcmp(e->fp, fp, sizeof(fp)) == 0;
}

const chat_idem_entry_t *chat__idem_peek(chat_idem_t *t, const char *key, int64_t now_us)
{
    chat_map_node_t *n = chat__map_get(&t->map, key);
    const chat_idem_entry_t *e = n ? CHAT_CONTAINER(n, chat_idem_entry_t, node) : NULL;
    return e != NULL && e->done && e->expires_us > now_us ? e : NULL;
}
