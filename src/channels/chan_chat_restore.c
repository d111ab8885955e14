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
 * is tied to, the end last (from the outcome, or from the "closed" event of
 * a conversation a person closed, whose outcome stays escalated; a
 * "released" event after the last handoff makes it the bot's again) -- so
 * entry n of the rebuilt log is entry n of the live one. A turn whose
 * messages have quick replies (or a newline of their own) also has a
 * "reply" event holding them as they were, which the rebuild uses instead
 * of the row's text. A person's words and the desk's notices are not
 * turns: they join the live log when they are said, between or even before
 * the entries of a turn already stored, and their "desk" events say the
 * seq each got, which the rebuild gives them again. What the store does not
 * keep (the handoff summary, a message's WebSocket id) comes back empty.
 * See docs/channels.md, "Restore". */
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

static int is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* The events the rebuild looks up by row (the "reply" events that hold
 * messages and the "handoff" events), sorted by the row they are tied to and
 * then by their place in the record, so that each row finds its own with a
 * binary search: a restore costs O((rows + events) log events), not a walk
 * of every event for every row. Lookups do not consume: a row finds what a
 * scan of the whole array in record order would find. The "desk" events
 * are indexed apart, by the seq their entry had. */
typedef struct ev_ref_s {
    int64_t seq;      /* turn_seq (0 when absent: a start turn without a row);
                         for a desk event, its entry's seq */
    size_t pos;       /* index in the record's events */
    int handoff;      /* 1: a handoff, 0: a reply with messages */
    const json_t *ev; /* borrowed from the record */
} ev_ref_t;

typedef struct ev_index_s {
    ev_ref_t *refs; /* owned */
    size_t n;
} ev_index_t;

/* A rebuild under way: the log it appends to, the events by row, and the
 * desk's entries, taken in order as the log reaches their seqs. */
typedef struct rebuild_s {
    chat_conv_t *cv;
    chat_known_t *known; /* may be NULL */
    ev_index_t ix;
    ev_index_t desk;
    size_t desk_next;     /* the first desk entry not yet appended */
    const json_t *closed; /* the "closed" event: a person ended it */
    size_t handed;        /* 1 + the place of the last "handoff" event, 0: none */
    size_t released;      /* 1 + the place of the last "released" event, 0: none */
} rebuild_t;

static int cmp_ref(const void *a, const void *b)
{
    const ev_ref_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int is_kind(const json_t *ev, const char *kind)
{
    const char *k = json_string_value(json_object_get(ev, "kind"));
    return k != NULL && strcmp(k, kind) == 0;
}

static void index_events(rebuild_t *rb, const json_t *events)
{
    size_t i, cap = json_array_size(events) + 1;
    const json_t *ev;
    rb->ix.refs = core_xcalloc(cap, sizeof(*rb->ix.refs));
    rb->desk.refs = core_xcalloc(cap, sizeof(*rb->desk.refs));
    rb->ix.n = rb->desk.n = 0;
    json_array_foreach(events, i, ev)
    {
        const json_t *detail = json_object_get(ev, "detail");
        int handoff = is_kind(ev, "handoff");
        int reply = is_kind(ev, "reply") && json_is_array(json_object_get(detail, "messages"));
        if (handoff)
            rb->handed = i + 1;
        if (handoff || reply)
            rb->ix.refs[rb->ix.n++] = (ev_ref_t){
                .seq = int_field(ev, "turn_seq"), .pos = i, .handoff = handoff, .ev = ev};
        else if (is_kind(ev, "desk") && json_is_string(json_object_get(detail, "text")))
            rb->desk.refs[rb->desk.n++] =
                (ev_ref_t){.seq = int_field(detail, "entry"), .pos = i, .ev = ev};
        else if (is_kind(ev, "closed"))
            rb->closed = ev;
        else if (is_kind(ev, "released"))
            rb->released = i + 1;
    }
    qsort(rb->ix.refs, rb->ix.n, sizeof(*rb->ix.refs), cmp_ref);
    qsort(rb->desk.refs, rb->desk.n, sizeof(*rb->desk.refs), cmp_ref);
    rb->desk_next = 0;
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

/* The user entry or desk entry about to be appended at cv->next_seq ends
 * the replies of the last user message with an id, if nothing did yet: a
 * turn's replies follow its input at once in the live log. */
static void end_replies(chat_known_t *k, const chat_conv_t *cv)
{
    chat_known_msg_t *last =
        k != NULL && k->n > 0 ? &k->items[(k->first + k->n - 1) % CHAT_KNOWN_MAX] : NULL;
    if (last != NULL && last->replies_end == 0)
        last->replies_end = cv->next_seq;
}

/* Who said a desk event's words: the person's name, NULL for the desk's
 * own notice ("from":"system"). */
static const char *desk_agent(const json_t *detail)
{
    const char *from = json_string_value(json_object_get(detail, "from"));
    if (from != NULL && strcmp(from, "system") == 0)
        return NULL;
    const char *agent = json_string_value(json_object_get(detail, "agent"));
    return agent ? agent : "";
}

/* Appends the desk's entries whose seq the log has reached (upto: the seq
 * of the entry about to be appended, or UINT64_MAX for all that are left),
 * as the live log had them: each took the seq the log was at when it was
 * said. One whose seq the log has passed (a record that lost rows) still
 * comes before what it preceded. */
static void add_desk_due(rebuild_t *rb, uint64_t upto)
{
    while (rb->desk_next < rb->desk.n && (uint64_t)rb->desk.refs[rb->desk_next].seq <= upto) {
        const json_t *ev = rb->desk.refs[rb->desk_next++].ev;
        const json_t *detail = json_object_get(ev, "detail");
        json_t *e = chat__desk_entry(desk_agent(detail),
                                     json_string_value(json_object_get(detail, "text")));
        if (e == NULL)
            continue;
        end_replies(rb->known, rb->cv);
        chat__conv_append(rb->cv, e, int_field(ev, "ts_us"));
        json_decref(e);
    }
}

/* Appends entry (owned) after the desk's entries that came before it. */
static void add(rebuild_t *rb, json_t *entry, int64_t ts_us)
{
    add_desk_due(rb, rb->cv->next_seq);
    chat__conv_append(rb->cv, entry, ts_us);
    json_decref(entry);
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
static void add_bot(rebuild_t *rb, const json_t *m, int64_t ts_us)
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
    add(rb,
        json_pack("{s:s,s:s,s:s,s:o}", "type", "message", "from", "bot", "text", text ? text : "",
                  "choices", choices),
        ts_us);
}

/* The bot entries of an outbound row: from its "reply" event when there is
 * one, else one per line of its text ("" is a turn without messages, such
 * as one that only called a backend). */
static void add_bot_lines(rebuild_t *rb, int64_t seq, const char *text, int64_t ts_us)
{
    const json_t *msgs = reply_messages(&rb->ix, seq);
    if (msgs != NULL) {
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m) add_bot(rb, m, ts_us);
        return;
    }
    if (text == NULL || text[0] == '\0')
        return;
    for (const char *p = text;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        add(rb,
            json_pack("{s:s,s:s,s:s%,s:[]}", "type", "message", "from", "bot", "text", p, n,
                      "choices"),
            ts_us);
        if (nl == NULL)
            return;
        p = nl + 1;
    }
}

/* The handoff entries tied to row seq. */
static void add_handoffs(rebuild_t *rb, int64_t seq)
{
    const ev_index_t *ix = &rb->ix;
    for (size_t k = first_of(ix, seq); k < ix->n && ix->refs[k].seq == seq; k++) {
        const json_t *ev = ix->refs[k].ev;
        if (!ix->refs[k].handoff)
            continue;
        const char *queue =
            json_string_value(json_object_get(json_object_get(ev, "detail"), "queue"));
        const char *reason = json_string_value(json_object_get(ev, "name"));
        json_t *h = json_pack("{s:s,s:s,s:s,s:{}}", "type", "handoff", "queue", queue ? queue : "",
                              "reason", reason ? reason : "", "summary");
        add(rb, json_incref(h), int_field(ev, "ts_us"));
        json_object_del(h, "type"); /* the REST shape, as a live handoff keeps it */
        json_decref(rb->cv->handoff);
        rb->cv->handoff = h;
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
    end_replies(k, cv);
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

static void add_user(rebuild_t *rb, const json_t *row)
{
    const char *text = json_string_value(json_object_get(row, "text"));
    json_t *e =
        json_pack("{s:s,s:s,s:s}", "type", "message", "from", "user", "text", text ? text : "");
    const char *client_id = json_string_value(json_object_get(row, "client_id"));
    if (client_id != NULL)
        json_object_set_new(e, "id", json_string(client_id));
    add_desk_due(rb, rb->cv->next_seq); /* they precede it, and its note */
    note_user(rb->known, rb->cv, row);
    add(rb, e, int_field(row, "ts_us"));
}

/* The conversation's status, and its end entry (last) when it ended: by
 * its flow (contained), by idleness (abandoned), or closed by a person,
 * which leaves the outcome escalated and says so with a "closed" event. A
 * handoff that none of these followed is still with the desk, unless a
 * person released it back to the bot after it (a "released" event: the
 * outcome stays escalated then too, and the live log has no entry for it). */
static void add_status(rebuild_t *rb, const char *outcome, int64_t ended_us)
{
    const char *reason = NULL;
    if (outcome != NULL && strcmp(outcome, STORE_OUTCOME_ABANDONED) == 0) {
        reason = "idle_timeout";
    } else if (outcome != NULL && strcmp(outcome, STORE_OUTCOME_CONTAINED) == 0) {
        reason = "end";
    } else if (rb->closed != NULL) {
        reason = json_string_value(json_object_get(rb->closed, "name"));
        reason = reason ? reason : "end"; /* as the live log says it */
        ended_us = int_field(rb->closed, "ts_us");
    }
    if (reason != NULL) {
        add(rb, json_pack("{s:s,s:s}", "type", "end", "reason", reason), ended_us);
        rb->cv->status = BRAIN_ST_ENDED;
    } else if (rb->cv->handoff != NULL && outcome != NULL &&
               strcmp(outcome, STORE_OUTCOME_ESCALATED) == 0 && rb->released < rb->handed) {
        rb->cv->status = BRAIN_ST_HANDOFF;
    }
}

void chat__conv_rebuild(chat_conv_t *cv, const json_t *rec, chat_known_t *known)
{
    if (known != NULL)
        known->first = known->n = 0;
    rebuild_t rb = {.cv = cv, .known = known};
    index_events(&rb, json_object_get(rec, "events"));
    size_t i;
    const json_t *row;
    add_handoffs(&rb, 0); /* a start turn that handed off without a row */
    json_array_foreach(json_object_get(rec, "turns"), i, row)
    {
        const char *dir = json_string_value(json_object_get(row, "direction"));
        if (dir != NULL && strcmp(dir, "in") == 0)
            add_user(&rb, row);
        else
            add_bot_lines(&rb, int_field(row, "seq"),
                          json_string_value(json_object_get(row, "text")), int_field(row, "ts_us"));
        add_handoffs(&rb, int_field(row, "seq"));
    }
    add_desk_due(&rb, UINT64_MAX); /* said after the last turn */
    add_status(&rb, json_string_value(json_object_get(rec, "outcome")), int_field(rec, "ended_us"));
    free(rb.ix.refs);
    free(rb.desk.refs);
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
