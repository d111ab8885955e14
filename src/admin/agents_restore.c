/* The open handoffs as the store holds them, read back at start: each
 * handoff's row (its detail: the object the API shows, without messages)
 * and its messages, rows of their own (handoff_messages, migration 7; a
 * database written before it has them moved there by the migration, and a
 * detail that still holds a "messages" array is read as it is). Open are
 * the waiting and claimed ones, and those released to the bot whose
 * conversation goes on, their outcome still to come: the bot finishing it
 * after the restart makes it bot_finished as it would have without one.
 * Of those, as many come back as the desk keeps handoffs that are over
 * (AG_MAX_DONE), the most recently released. The read runs on the thread
 * pool; agents.c links the entries in on the loop. docs/agents.md, "State
 * across restarts". */
#define LOG_MODULE "agents"
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

static ag_saved_t *saved_add(ag_saved_list_t *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = core_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    ag_saved_t *s = &l->v[l->n++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void on_row(const char *detail, void *arg)
{
    json_t *o = json_loads(detail ? detail : "", 0, NULL);
    if (json_is_object(o))
        saved_add(arg)->handoff = json_incref(o);
    json_decref(o);
}

typedef struct {
    json_t *messages;
    int64_t last;
} msgs_t;

/* One message row as ag__note made it: {"from","text","ts_us"[,"agent"]}. */
static void on_message(const store_handoff_message_t *m, void *arg)
{
    msgs_t *ms = arg;
    json_t *o = json_pack("{s:s,s:s%,s:I}", "from", m->from ? m->from : "system", "text", m->text,
                          m->text_len, "ts_us", (json_int_t)m->ts_us);
    if (o == NULL) /* not UTF-8 (ag__note never writes it): its marker */
        o = json_pack("{s:s,s:s,s:I}", "from", m->from ? m->from : "system", "text", "", "ts_us",
                      (json_int_t)m->ts_us);
    if (m->agent != NULL)
        json_object_set_new(o, "agent", json_string(m->agent));
    json_array_append_new(ms->messages, o);
    ms->last = m->seq;
}

/* s's messages: its rows, else (a detail written before migration 7 that
 * the migration left) the detail's own, else none. */
static int read_messages(store_db_t *db, ag_saved_t *s, core_err_t *err)
{
    json_t *o = s->handoff;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *conv = json_string_value(json_object_get(o, "conversation_id"));
    msgs_t ms = {json_array(), 0};
    int rc = id && conv
                 ? store_db_handoff_messages(db, conv, id, AG_MAX_MESSAGES, on_message, &ms, err)
                 : 0;
    json_t *old = json_object_get(o, "messages");
    if (json_array_size(ms.messages) == 0 && json_is_array(old)) {
        s->msg_seq = (int64_t)json_array_size(old);
        json_decref(ms.messages);
    } else {
        s->msg_seq = ms.last;
        json_object_set_new(o, "messages", ms.messages);
    }
    return rc;
}

int ag__saved_read(store_db_t *db, ag_saved_list_t *out, core_err_t *err)
{
    memset(out, 0, sizeof(*out));
    int rc = store_db_open_handoffs(db, AG_MAX_DONE, on_row, out, err);
    for (size_t i = 0; rc == 0 && i < out->n; i++)
        rc = read_messages(db, &out->v[i], err);
    return rc;
}

void ag__saved_dispose(ag_saved_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].handoff);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static char *str_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return core_xstrdup_opt(s);
}

ag_entry_t *ag__entry_from_saved(const ag_saved_t *s)
{
    json_t *o = s->handoff;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *key = json_string_value(json_object_get(o, "key"));
    if (id == NULL || key == NULL || strlen(id) != 32)
        return NULL;
    ag_entry_t *e = core_xcalloc(1, sizeof(*e));
    memcpy(e->id, id, 33);
    e->conv_id = str_of(o, "conversation_id");
    e->key = core_xstrdup(key);
    e->queue = str_of(o, "queue");
    e->reason = str_of(o, "reason");
    e->agent = str_of(o, "agent");
    if (!e->conv_id || !e->queue || !e->reason) {
        ag__entry_free(e);
        return NULL;
    }
    brain_channel_parse(json_string_value(json_object_get(o, "channel")), &e->channel);
    const char *state = json_string_value(json_object_get(o, "state"));
    e->state = state && strcmp(state, "released") == 0 ? AG_RELEASED
               : e->agent                              ? AG_CLAIMED
                                                       : AG_WAITING;
    e->entered_us = json_integer_value(json_object_get(o, "entered_us"));
    e->claimed_us = json_integer_value(json_object_get(o, "claimed_us"));
    e->done_us = json_integer_value(json_object_get(o, "done_us")); /* a release's time */
    e->overdue = json_is_true(json_object_get(o, "overdue"));
    e->hook = json_is_true(json_object_get(o, "webhook_delivered"))  ? AG_HOOK_DELIVERED
              : json_is_true(json_object_get(o, "webhook_given_up")) ? AG_HOOK_GIVEN_UP
                                                                     : AG_HOOK_PENDING;
    json_t *sum = json_object_get(o, "summary");
    e->summary = json_is_object(sum) ? json_incref(sum) : NULL;
    json_t *m = json_object_get(o, "messages");
    e->messages = json_is_array(m) ? json_incref(m) : json_array();
    e->msg_seq = s->msg_seq;
    return e;
}
