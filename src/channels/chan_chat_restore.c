/* Conversations the chat table no longer holds (the daemon restarted, or
 * the table evicted them): the store decides whether they exist, and their
 * log is rebuilt from the stored transcript so that GET, WebSocket resume
 * and the next turn carry on with the sequence numbers the clients saw.
 *
 * Numbering: the live log appends, per turn, the user's message (if any),
 * one entry per bot message, a handoff entry when the conversation is handed
 * off and an end entry when it ends. The runtime stores, per turn, an
 * inbound row (the user's redacted text), one outbound row (the bot
 * messages joined by newlines), a handoff event tied to the turn's last row
 * and the conversation's outcome. Rebuilding walks the rows in store order
 * and appends the same entries in the same order -- user entry per inbound
 * row, one bot entry per line of an outbound row, a handoff after the row it
 * is tied to, the end last -- so entry n of the rebuilt log is entry n of the
 * live one. A turn whose messages have quick replies (or a newline of their
 * own) also has a "reply" event holding them as they were, which the
 * rebuild uses instead of the row's text. What the store does not keep (the
 * handoff summary, a message's WebSocket id) comes back empty. See
 * docs/channels.md, "Restore". */
#define LOG_MODULE "chat"
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

/* Only ids this adapter gives out are looked up: 32 lowercase hex digits. */
static int valid_id(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++)
        if (n >= CHAT_ID_LEN || !((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return 0;
    return n == CHAT_ID_LEN;
}

static int64_t int_field(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void add(chat_conv_t *cv, json_t *entry, int64_t ts_us)
{
    chat__conv_append(cv, entry, ts_us);
    json_decref(entry);
}

static int is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* The events the rebuild looks up by row (the "reply" events that hold
 * messages and the "handoff" events), sorted by the row they are tied to and
 * then by their place in the record, so that each row finds its own with a
 * binary search: a restore costs O((rows + events) log events), not a walk
 * of every event for every row. Lookups do not consume: a row finds what a
 * scan of the whole array in record order would find. */
typedef struct ev_ref_s {
    int64_t seq;      /* turn_seq (0 when absent: a start turn without a row) */
    size_t pos;       /* index in the record's events */
    int handoff;      /* 1: a handoff, 0: a reply with messages */
    const json_t *ev; /* borrowed from the record */
} ev_ref_t;

typedef struct ev_index_s {
    ev_ref_t *refs; /* owned */
    size_t n;
} ev_index_t;

static int cmp_ref(const void *a, const void *b)
{
    const ev_ref_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void index_events(ev_index_t *ix, const json_t *events)
{
    size_t i;
    const json_t *ev;
    ix->refs = core_xcalloc(json_array_size(events) + 1, sizeof(*ix->refs));
    ix->n = 0;
    json_array_foreach(events, i, ev)
    {
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        int handoff = kind != NULL && strcmp(kind, "handoff") == 0;
        int reply = kind != NULL && strcmp(kind, "reply") == 0 &&
                    json_is_array(json_object_get(json_object_get(ev, "detail"), "messages"));
        if (handoff || reply)
            ix->refs[ix->n++] = (ev_ref_t){
                .seq = int_field(ev, "turn_seq"), .pos = i, .handoff = handoff, .ev = ev};
    }
    qsort(ix->refs, ix->n, sizeof(*ix->refs), cmp_ref);
}

/* The first entry tied to row seq, or ix->n. */
static size_t first_of(const ev_index_t *ix, int64_t seq)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->refs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The "reply" event of row seq: the bot's messages with their choices, kept
 * when the row's text could not say them alone. */
static const json_t *reply_messages(const ev_index_t *ix, int64_t seq)
{
    for (size_t k = first_of(ix, seq); k < ix->n && ix->refs[k].seq == seq; k++)
        if (!ix->refs[k].handoff)
            return json_object_get(json_object_get(ix->refs[k].ev, "detail"), "messages");
    return NULL;
}

/* A bot entry as the live log has it (a choice whose value is a URL is a
 * link button on the web: it gets "url"). */
static void add_bot(chat_conv_t *cv, const json_t *m, int64_t ts_us)
{
    json_t *choices = json_array();
    size_t i;
    const json_t *ch;
    json_array_foreach(json_object_get(m, "choices"), i, ch)
    {
        const char *title = json_string_value(json_object_get(ch, "title"));
        const char *value = json_string_value(json_object_get(ch, "value"));
        json_t *o =
            json_pack("{s:s,s:s}", "title", title ? title : "", "value", value ? value : "");
        if (value != NULL && is_url(value))
            json_object_set_new(o, "url", json_string(value));
        json_array_append_new(choices, o);
    }
    const char *text = json_string_value(json_object_get(m, "text"));
    add(cv,
        json_pack("{s:s,s:s,s:s,s:o}", "type", "message", "from", "bot", "text", text ? text : "",
                  "choices", choices),
        ts_us);
}

/* The bot entries of an outbound row: from its "reply" event when there is
 * one, else one per line of its text ("" is a turn without messages, such
 * as one that only called a backend). */
static void add_bot_lines(chat_conv_t *cv, const ev_index_t *ix, int64_t seq, const char *text,
                          int64_t ts_us)
{
    const json_t *msgs = reply_messages(ix, seq);
    if (msgs != NULL) {
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m) add_bot(cv, m, ts_us);
        return;
    }
    if (text == NULL || text[0] == '\0')
        return;
    for (const char *p = text;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        add(cv,
            json_pack("{s:s,s:s,s:s%,s:[]}", "type", "message", "from", "bot", "text", p, n,
                      "choices"),
            ts_us);
        if (nl == NULL)
            return;
        p = nl + 1;
    }
}

/* The handoff entries tied to row seq. */
static void add_handoffs(chat_conv_t *cv, const ev_index_t *ix, int64_t seq)
{
    for (size_t k = first_of(ix, seq); k < ix->n && ix->refs[k].seq == seq; k++) {
        const json_t *ev = ix->refs[k].ev;
        if (!ix->refs[k].handoff)
            continue;
        const char *queue =
            json_string_value(json_object_get(json_object_get(ev, "detail"), "queue"));
        const char *reason = json_string_value(json_object_get(ev, "name"));
        json_t *h = json_pack("{s:s,s:s,s:s,s:{}}", "type", "handoff", "queue", queue ? queue : "",
                              "reason", reason ? reason : "", "summary");
        chat__conv_append(cv, h, int_field(ev, "ts_us"));
        json_object_del(h, "type"); /* the REST shape, as a live handoff keeps it */
        json_decref(cv->handoff);
        cv->handoff = h;
    }
}

/* Whether a stored inbound row's text is the message as sent: the input
 * rails change it only by replacing what a rule that did not allow it
 * matched, and every such match is among the row's decisions. */
static int verbatim(const json_t *row)
{
    const json_t *d;
    size_t i;
    json_array_foreach(json_object_get(row, "guard"), i, d)
    {
        const char *action = json_string_value(json_object_get(d, "action"));
        if (action == NULL || strcmp(action, "allow") != 0)
            return 0;
    }
    return 1;
}

/* The user entry about to be appended at cv->next_seq ends the replies of
 * the last one with an id, if none did yet; it is remembered when it has an
 * id. */
static void note_user(chat_known_t *k, const chat_conv_t *cv, const json_t *row)
{
    if (k == NULL)
        return;
    chat_known_msg_t *last = k->n > 0 ? &k->items[(k->first + k->n - 1) % CHAT_KNOWN_MAX] : NULL;
    if (last != NULL && last->replies_end == 0)
        last->replies_end = cv->next_seq;
    const char *id = json_string_value(json_object_get(row, "client_id"));
    if (id == NULL)
        return;
    if (k->n == CHAT_KNOWN_MAX) {
        k->first = (k->first + 1) % CHAT_KNOWN_MAX;
        k->n--;
    }
    size_t at = (k->first + k->n++) % CHAT_KNOWN_MAX;
    k->items[at].id = id;
    k->items[at].text = verbatim(row) ? json_string_value(json_object_get(row, "text")) : NULL;
    k->items[at].seq = cv->next_seq;
    k->items[at].replies_end = 0;
}

void chat__conv_rebuild(chat_conv_t *cv, const json_t *rec, chat_known_t *known)
{
    if (known != NULL)
        known->first = known->n = 0;
    const json_t *turns = json_object_get(rec, "turns");
    ev_index_t ix;
    index_events(&ix, json_object_get(rec, "events"));
    size_t i;
    const json_t *row;
    add_handoffs(cv, &ix, 0); /* a start turn that handed off without a row */
    json_array_foreach(turns, i, row)
    {
        const char *dir = json_string_value(json_object_get(row, "direction"));
        const char *text = json_string_value(json_object_get(row, "text"));
        int64_t ts = int_field(row, "ts_us");
        if (dir != NULL && strcmp(dir, "in") == 0) {
            note_user(known, cv, row);
            json_t *e = json_pack("{s:s,s:s,s:s}", "type", "message", "from", "user", "text",
                                  text ? text : "");
            const char *client_id = json_string_value(json_object_get(row, "client_id"));
            if (client_id != NULL)
                json_object_set_new(e, "id", json_string(client_id));
            add(cv, e, ts);
        } else
            add_bot_lines(cv, &ix, int_field(row, "seq"), text, ts);
        add_handoffs(cv, &ix, int_field(row, "seq"));
    }
    free(ix.refs);
    const char *outcome = json_string_value(json_object_get(rec, "outcome"));
    int abandoned = outcome && strcmp(outcome, STORE_OUTCOME_ABANDONED) == 0;
    if (abandoned || (outcome && strcmp(outcome, STORE_OUTCOME_CONTAINED) == 0)) {
        add(cv, json_pack("{s:s,s:s}", "type", "end", "reason", abandoned ? "idle_timeout" : "end"),
            int_field(rec, "ended_us"));
        cv->status = BRAIN_ST_ENDED;
    } else if (cv->handoff != NULL && outcome && strcmp(outcome, STORE_OUTCOME_ESCALATED) == 0) {
        cv->status = BRAIN_ST_HANDOFF;
    }
}

/* Known ids live in the answer cache under a key of their own, scoped by
 * the conversation (the log does not say which gateway or socket sent one). */
static char *known_key(const chat_conv_t *cv, const char *id)
{
    return core_xasprintf("known\n%s\n%s", cv->id, id);
}

const chat_idem_entry_t *chat__conv_known(chat_t *c, const chat_conv_t *cv, const char *id)
{
    if (!cv->restored) /* a conversation that never left memory: its ids are in the caches */
        return NULL;
    char *key = known_key(cv, id);
    const chat_idem_entry_t *e = chat__idem_peek(&c->idem, key, (int64_t)core_now_us());
    free(key);
    return e;
}

/* The user messages with an id (a WebSocket message's, a REST message's
 * Idempotency-Key) among the log's last CHAT_KNOWN_MAX entries are the ones
 * a client may send again after a restart, never having seen their echo or
 * answer. Each is made known to have run, so that a resend gets the
 * duplicate's ack or the turn's answer: with its seq, the REST answer
 * rebuilt from its replies, and its text, to tell a resend from another
 * message under the same id. */
static void known_ids(chat_t *c, chat_conv_t *cv, const chat_known_t *k)
{
    const core_config_t *cfg = c->base.host.cfg;
    uint64_t from = cv->next_seq > CHAT_KNOWN_MAX ? cv->next_seq - CHAT_KNOWN_MAX : 1;
    for (size_t i = 0; i < k->n; i++) {
        const chat_known_msg_t *m = &k->items[(k->first + i) % CHAT_KNOWN_MAX];
        if (m->seq < from || m->seq < cv->first_seq)
            continue;
        core_buf_t b;
        core_buf_init(&b, (size_t)-1);
        chat_result_t r = {.from_seq = m->seq + 1,
                           .to_seq = m->replies_end ? m->replies_end : cv->next_seq};
        chat__turn_reply(&b, cv, &r);
        char *key = known_key(cv, m->id);
        chat__idem_known(&c->idem, key, m->seq, b.data, m->text,
                         (size_t)cfg->chat.idempotency_max_entries,
                         cfg->chat.idempotency_ttl_s * 1000000LL, (int64_t)core_now_us());
        free(key);
        core_buf_dispose(&b);
    }
}

static int restore(chat_t *c, const char *id, const json_t *rec, chat_conv_t **out)
{
    brain_channel_t ch = BRAIN_CH_CHAT;
    const char *name = json_string_value(json_object_get(rec, "channel"));
    if (name == NULL || brain_channel_parse(name, &ch) != 0 ||
        (ch != BRAIN_CH_CHAT && ch != BRAIN_CH_WEB))
        ch = BRAIN_CH_CHAT;
    core_err_t err = {0};
    chat_conv_t *cv;
    int rc = chat__conv_add(c, ch, id, &cv, &err);
    if (rc != 0) {
        LOG_WARN("event=chat_restore_failed conversation=%s reason=\"%s\"", id, err.msg);
        return rc;
    }
    if (int_field(rec, "started_us") > 0)
        cv->created_us = int_field(rec, "started_us");
    chat_known_t known;
    chat__conv_rebuild(cv, rec, &known);
    chat__conv_owner_restore(cv, rec);
    cv->restored = 1;
    known_ids(c, cv, &known);
    LOG_INFO("event=chat_conversation_restored conversation=%s entries=%llu status=%s", id,
             (unsigned long long)(cv->next_seq - 1), chat__status_name(cv->status));
    *out = cv;
    return 0;
}

typedef struct find_s {
    chat_t *chat;
    chat_found_cb cb;
    void *data;
    char id[CHAT_ID_LEN + 1];
} find_t;

static void on_record(int status, json_t *rec, void *data)
{
    find_t *f = data;
    chat_conv_t *cv = NULL;
    if (status == 0) {
        /* another request may have restored it while this one read */
        cv = chat__conv_get(f->chat, f->id);
        if (cv == NULL)
            status = restore(f->chat, f->id, rec, &cv);
    }
    json_decref(rec);
    f->cb(f->chat, status == 0 ? cv : NULL, status, f->data);
    free(f);
}

int chat__conv_find(chat_t *c, const char *id, chat_found_cb cb, void *data, chat_conv_t **out)
{
    *out = chat__conv_get(c, id);
    if (*out != NULL)
        return 1;
    if (!valid_id(id))
        return CORE_ERR_NOT_FOUND;
    runtime_t *rt = chan_runtime(&c->base);
    if (rt == NULL)
        return CORE_ERR_CLOSED;
    find_t *f = core_xcalloc(1, sizeof(*f));
    *f = (find_t){.chat = c, .cb = cb, .data = data};
    memcpy(f->id, id, CHAT_ID_LEN + 1);
    char key[CHAT_ID_LEN + 8];
    snprintf(key, sizeof(key), "chat:%s", id);
    int rc = runtime_conversation_record(rt, key, on_record, f);
    if (rc != 0)
        free(f);
    return rc;
}
