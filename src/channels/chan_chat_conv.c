/* The chat adapter's conversations: the table (id -> conversation, least
 * recently used evicted first, never while a turn is in flight or a
 * WebSocket follows it), each conversation's transcript log and the turn
 * that feeds it.
 *
 * The LRU list holds only the idle conversations (no turn in flight, no
 * socket following): a busy one leaves it when it becomes busy and comes
 * back at the tail (the most recently used end) when it is idle again, so
 * eviction takes the head at once instead of walking past every busy
 * conversation -- with tens of thousands of open sockets that walk was paid
 * by every new conversation. pending and subs therefore change only through
 * chat__conv_hold/release and chat__conv_follow/unfollow, which keep the
 * list in step.
 *
 * The log is a ring of entries, each kept as the compact JSON text of the
 * WebSocket frame that carries it ({"type":"message","seq":..}) -- a few
 * hundred bytes where the parsed tree took kilobytes, and sent as it is on
 * replay -- numbered by a
 * per-conversation sequence: user messages, bot messages, handoff and end.
 * It serves three readers: the REST reply (the entries a turn added), the
 * transcript (GET), both written by chan_chat_reply.c, and WebSocket resume
 * (entries after the client's last seq). The ring keeps
 * chat.history_messages entries, and all the logs together
 * chat.history_bytes: past it, each turn's start forgets least recently
 * used idle conversations until they fit (the conversation whose turn it
 * is, busy, is never among them). It is a cache: a conversation not in the
 * table is looked up in the store and its log rebuilt from the stored
 * transcript (chan_chat_restore.c). */
#define LOG_MODULE "chat"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

void chat__init(chat_t *c, const chan_host_t *host)
{
    memset(c, 0, sizeof(*c));
    c->base.name = "chat";
    c->base.version = CHAT_ADAPTER_VERSION;
    c->base.channel = BRAIN_CH_CHAT;
    c->base.host = *host;
    chat__map_init(&c->convs);
    chat__list_init(&c->lru);
    chat__list_init(&c->ws_keyed);
    chat__idem_init(&c->idem);
}

const char *chat__status_name(brain_status_t st)
{
    return st == BRAIN_ST_ENDED ? "ended" : st == BRAIN_ST_HANDOFF ? "handoff" : "active";
}

/* Whether cv may be evicted: no turn in flight, no socket following it. */
static int idle(const chat_conv_t *cv)
{
    return cv->pending == 0 && chat__list_empty(&cv->subs);
}

/* Puts cv on the LRU list (at the tail) or takes it off, as it is idle or
 * not; a removed link points at itself, so "on the list" is a non-empty
 * link. Called after every change of pending or subs. */
static void lru_sync(chat_t *c, chat_conv_t *cv)
{
    int listed = !chat__list_empty(&cv->lru);
    if (idle(cv) && !listed)
        chat__list_push_back(&c->lru, &cv->lru);
    else if (!idle(cv) && listed)
        chat__list_remove(&cv->lru);
}

/* A busy conversation is off the list; it goes to the tail when it is idle. */
static void touch(chat_t *c, chat_conv_t *cv)
{
    if (!idle(cv))
        return;
    chat__list_remove(&cv->lru);
    chat__list_push_back(&c->lru, &cv->lru);
}

static void conv_free(chat_t *c, chat_conv_t *cv)
{
    chat__map_del(&c->convs, &cv->node);
    chat__list_remove(&cv->lru); /* also when it is off the list: a no-op then */
    for (size_t i = 0; i < cv->log_len; i++) {
        char *e = cv->log[(cv->log_head + i) % cv->log_cap];
        c->log_bytes -= strlen(e) + 1;
        free(e);
    }
    free(cv->log);
    json_decref(cv->handoff);
    free(cv);
}

/* Evicts the least recently used idle conversation: the list's head, as
 * the list holds only idle ones. */
static int evict_one(chat_t *c)
{
    if (chat__list_empty(&c->lru))
        return CORE_ERR_LIMIT;
    chat_conv_t *cv = CHAT_CONTAINER(c->lru.next, chat_conv_t, lru);
    assert(idle(cv));
    LOG_DEBUG("event=chat_evict conversation=%s", cv->id);
    conv_free(c, cv);
    c->evictions++;
    return 0;
}

void chat__conv_hold(chat_t *c, chat_conv_t *cv)
{
    cv->pending++;
    lru_sync(c, cv);
    /* cv is off the list now, and idle conversations are all any caller
     * below a turn's start may hold (a socket's is followed, not idle) */
    size_t max = (size_t)c->base.host.cfg->chat.history_bytes;
    while (c->log_bytes > max && evict_one(c) == 0)
        ;
}

void chat__conv_release(chat_t *c, chat_conv_t *cv)
{
    cv->pending--;
    lru_sync(c, cv);
}

void chat__conv_follow(chat_t *c, chat_conv_t *cv, chat_link_t *sub)
{
    chat__list_push_back(&cv->subs, sub);
    cv->n_subs++;
    lru_sync(c, cv);
}

void chat__conv_unfollow(chat_t *c, chat_conv_t *cv, chat_link_t *sub)
{
    assert(!chat__list_empty(sub) && cv->n_subs > 0); /* sub follows cv */
    chat__list_remove(sub);
    cv->n_subs--;
    lru_sync(c, cv);
}

chat_conv_t *chat__conv_get(chat_t *c, const char *id)
{
    chat_map_node_t *n = chat__map_get(&c->convs, id);
    if (n == NULL)
        return NULL;
    chat_conv_t *cv = CHAT_CONTAINER(n, chat_conv_t, node);
    touch(c, cv);
    return cv;
}

void chat__conv_drop(chat_t *c, chat_conv_t *cv)
{
    if (idle(cv))
        conv_free(c, cv);
}

/* A new conversation id: 12 hex digits of the wall clock in milliseconds,
 * then 80 random bits (20 hex digits), like a UUIDv7. The store keys its
 * conversations, turns and saved state by this id; ids that grow with time
 * put each new conversation, and every turn of a live one, at the recent
 * end of those indexes, a few pages that stay cached, where random ids
 * scattered every turn's writes over the whole index. The random part keeps
 * ids unguessable and distinct within a millisecond. */
static void new_conversation_id(char id[CHAT_ID_LEN + 1])
{
    snprintf(id, 13, "%012llx", (unsigned long long)(core_wall_us() / 1000) & 0xffffffffffffULL);
    core_random_hex(id + 12, (CHAT_ID_LEN - 12) / 2);
}

int chat__conv_new(chat_t *c, brain_channel_t channel, chat_conv_t **out, core_err_t *err)
{
    return chat__conv_add(c, channel, NULL, out, err);
}

int chat__conv_add(chat_t *c, brain_channel_t channel, const char *id, chat_conv_t **out,
                   core_err_t *err)
{
    const core_config_t *cfg = c->base.host.cfg;
    while (c->convs.count >= (size_t)cfg->chat.max_conversations)
        if (evict_one(c) != 0)
            return core_err_set(err, CORE_ERR_LIMIT, "%zu chat conversations are busy",
                                c->convs.count);
    chat_conv_t *cv = core_xcalloc(1, sizeof(*cv));
    if (id != NULL)
        snprintf(cv->id, sizeof(cv->id), "%s", id);
    else {
        do
            new_conversation_id(cv->id);
        while (chat__map_get(&c->convs, cv->id) != NULL);
        cv->fresh = 1;
    }
    snprintf(cv->key, sizeof(cv->key), "chat:%s", cv->id);
    cv->node.key = cv->id;
    cv->chat = c;
    cv->channel = channel;
    cv->status = BRAIN_ST_ACTIVE;
    cv->created_us = core_wall_us();
    /* most conversations are short: the ring starts small and grows */
    cv->log_max = (size_t)cfg->chat.history_messages;
    cv->log_cap = cv->log_max < 8 ? cv->log_max : 8;
    cv->log = core_xcalloc(cv->log_cap, sizeof(*cv->log));
    cv->first_seq = cv->next_seq = 1;
    chat__list_init(&cv->subs);
    chat__list_init(&cv->lru);
    chat__map_put(&c->convs, &cv->node);
    chat__list_push_back(&c->lru, &cv->lru);
    *out = cv;
    return 0;
}

static char **slot(const chat_conv_t *cv, uint64_t seq)
{
    if (seq < cv->first_seq || seq >= cv->first_seq + cv->log_len)
        return NULL;
    return &cv->log[(cv->log_head + (seq - cv->first_seq)) % cv->log_cap];
}

const char *chat__conv_entry_text(const chat_conv_t *cv, uint64_t seq)
{
    char **e = slot(cv, seq);
    return e ? *e : NULL;
}

json_t *chat__conv_entry(const chat_conv_t *cv, uint64_t seq)
{
    const char *text = chat__conv_entry_text(cv, seq);
    return text ? json_loads(text, 0, NULL) : NULL;
}

/* Puts text (owned) at the end of the ring, dropping the oldest entry when
 * it is full, and sends it to every socket following the conversation. */
static void push(chat_conv_t *cv, char *text, size_t len)
{
    if (cv->log_len == cv->log_cap && cv->log_cap < cv->log_max) {
        size_t cap = cv->log_cap * 2 < cv->log_max ? cv->log_cap * 2 : cv->log_max;
        char **log = core_xcalloc(cap, sizeof(*log));
        for (size_t i = 0; i < cv->log_len; i++)
            log[i] = cv->log[(cv->log_head + i) % cv->log_cap];
        free(cv->log);
        cv->log = log;
        cv->log_cap = cap;
        cv->log_head = 0;
    }
    if (cv->log_len == cv->log_cap) {
        cv->chat->log_bytes -= strlen(cv->log[cv->log_head]) + 1;
        free(cv->log[cv->log_head]);
        cv->log_head = (cv->log_head + 1) % cv->log_cap;
        cv->log_len--;
        cv->first_seq++;
    }
    cv->log[(cv->log_head + cv->log_len) % cv->log_cap] = text;
    cv->log_len++;
    cv->chat->log_bytes += len + 1;
    chat__ws_broadcast_text(cv, text, len);
}

/* core_time_format(ts_us) into out (>= 40 bytes). Entries come many a
 * second, so the date and time up to the second are formatted once a second
 * (gmtime and printf cost more than the rest of an entry) and only the
 * microseconds each time. */
static const char *entry_time(char *out, int64_t ts_us)
{
    static int64_t cached_s = -1;
    static char prefix[40]; /* "2026-11-29T10:00:00." */
    static size_t prefix_len;
    if (ts_us < 0)
        return core_time_format(out, 40, ts_us);
    int64_t s = ts_us / 1000000;
    if (s != cached_s) {
        core_time_format(prefix, sizeof(prefix), s * 1000000);
        prefix_len = strlen(prefix) - 7; /* without "000000Z" */
        cached_s = s;
    }
    memcpy(out, prefix, prefix_len);
    unsigned us = (unsigned)(ts_us % 1000000);
    for (int i = 5; i >= 0; i--, us /= 10)
        out[prefix_len + (size_t)i] = (char)('0' + us % 10);
    memcpy(out + prefix_len + 6, "Z", 2);
    return out;
}

/* Appends entry (borrowed: the caller still owns it), stamping seq and ts
 * into it; the log keeps its compact JSON text, which is also what every
 * socket following the conversation receives. Returns the seq. The rare
 * entries (handoff, agent, restored) come this way; the common ones are
 * written as text by append_text(), the same bytes either way. */
uint64_t chat__conv_append(chat_conv_t *cv, json_t *entry, int64_t ts_us)
{
    char ts[40];
    uint64_t seq = cv->next_seq++;
    json_object_set_new(entry, "seq", json_integer((json_int_t)seq));
    json_object_set_new(entry, "ts", json_string(entry_time(ts, ts_us)));
    char *text = json_dumps(entry, JSON_COMPACT);
    push(cv, text, strlen(text));
    return seq;
}

/* The buffer the common entries are written in: the loop thread's (one
 * adapter per process), kept between entries so writing one allocates only
 * the copy the log keeps. */
static core_buf_t scratch = {NULL, 0, 0, (size_t)1 << 30}; /* never reached: texts are bounded */

/* Appends the entry written in scratch, an object still open after its last
 * key, closing it with "seq" and "ts" as chat__conv_append() stamps them. */
static uint64_t append_text(chat_conv_t *cv, int64_t ts_us)
{
    char ts[40];
    uint64_t seq = cv->next_seq++;
    core_buf_append_lit(&scratch, ",\"seq\":");
    core_buf_json_int(&scratch, (long long)seq);
    core_buf_append_lit(&scratch, ",\"ts\":\"");
    core_buf_append_str(&scratch, entry_time(ts, ts_us));
    core_buf_append_lit(&scratch, "\"}");
    char *text = core_xmalloc(scratch.len + 1);
    memcpy(text, scratch.data, scratch.len + 1); /* with its NUL */
    push(cv, text, scratch.len);
    core_buf_reset(&scratch);
    return seq;
}

/* A string that jansson would refuse (not UTF-8) is left out with its key,
 * as json_object_set_new() left it out. */
static void put_opt_str(core_buf_t *b, const char *key_lit, size_t key_len, const char *s)
{
    size_t mark = b->len;
    if (core_buf_append(b, key_lit, key_len) == 0 && core_buf_json_str(b, s, strlen(s)) != 0) {
        b->len = mark;
        b->data[mark] = '\0';
    }
}

uint64_t chat__conv_user(chat_t *c, chat_conv_t *cv, const char *text, size_t len,
                         const char *client_id, int redacted)
{
    (void)c;
    core_buf_reset(&scratch);
    core_buf_append_lit(&scratch, "{\"type\":\"message\",\"from\":\"user\",\"text\":");
    core_buf_json_str_lossy(&scratch, text, len);
    if (client_id != NULL)
        put_opt_str(&scratch, ",\"id\":", 6, client_id);
    if (redacted)
        core_buf_append_lit(&scratch, ",\"redacted\":true");
    return append_text(cv, core_wall_us());
}

/* One bot message as an entry, written into scratch (still open: see
 * append_text). On the web a choice whose value is a URL is a link button:
 * it gets "url" so the widget opens it instead of sending. */
static void bot_entry(const brain_message_t *m)
{
    const char *text = m->text ? m->text : "";
    core_buf_reset(&scratch);
    core_buf_append_lit(&scratch, "{\"type\":\"message\",\"from\":\"bot\",\"text\":");
    core_buf_json_str_lossy(&scratch, text, strlen(text));
    core_buf_append_lit(&scratch, ",\"choices\":[");
    size_t before = scratch.len;
    for (size_t i = 0; i < m->n_choices; i++)
        brain_choice_json(&scratch, &m->choices[i], scratch.len == before, 1);
    core_buf_append_lit(&scratch, "]");
}

static json_t *handoff_entry(const brain_out_t *o)
{
    json_t *summary = NULL;
    if (o->handoff_summary != NULL)
        summary = json_loads(o->handoff_summary, 0, NULL);
    return json_pack("{s:s,s:s,s:s,s:o}", "type", "handoff", "queue",
                     o->handoff_queue ? o->handoff_queue : "", "reason",
                     o->handoff_reason ? o->handoff_reason : "", "summary",
                     summary ? summary : json_object());
}

typedef struct chat_turn_s {
    chat_t *chat;
    chat_conv_t *conv;
    chat_turn_cb cb;
    void *data;
    uint64_t *seq_out; /* where the caller wants the user entry's seq, or NULL */
    char *text;        /* owned: the user's message, NULL for an event */
    size_t len;
    char *client_id; /* owned, may be NULL */
} turn_t;

/* The user's entry of a turn that has completed, appended just before its
 * replies: the entry says the turn is recorded, so a message whose turn
 * failed, or that a crash lost before its rows were durable, never had a
 * seq (the client still holds it and sends it again), and the log's order
 * is the store's (each turn's input, then its replies), so a log rebuilt
 * from the store numbers every entry as the live one did. The input rails
 * may have redacted the text (card numbers, emails), also in a message they
 * went on to refuse: the entry carries what the transcript keeps, never the
 * original, to every socket alike, flagged when it is not what was sent. */
static void user_entry(chat_t *c, chat_conv_t *cv, turn_t *t, const guard_result_t *g)
{
    const char *text = g->text != NULL ? g->text : t->text;
    size_t len = g->text != NULL ? g->text_len : t->len;
    int redacted = len != t->len || memcmp(text, t->text, len) != 0;
    uint64_t seq = chat__conv_user(c, cv, text, len, t->client_id, redacted);
    if (t->seq_out != NULL)
        *t->seq_out = seq;
}

static void record(chat_conv_t *cv, const brain_out_t *o, chat_result_t *r)
{
    r->from_seq = cv->next_seq;
    for (size_t i = 0; i < o->n_messages; i++) {
        bot_entry(&o->messages[i]);
        append_text(cv, core_wall_us());
    }
    if (o->status == BRAIN_ST_HANDOFF && cv->status != BRAIN_ST_HANDOFF) {
        json_t *h = handoff_entry(o);
        chat__conv_append(cv, h, core_wall_us());
        json_object_del(h, "type"); /* the REST shape: no frame type */
        json_decref(cv->handoff);
        cv->handoff = h;
    }
    if (o->status == BRAIN_ST_ENDED && cv->status != BRAIN_ST_ENDED) {
        json_t *e =
            json_pack("{s:s,s:s}", "type", "end", "reason", o->end_reason ? o->end_reason : "end");
        chat__conv_append(cv, e, core_wall_us());
        json_decref(e);
    }
    cv->status = o->status;
    r->to_seq = cv->next_seq;
}

void chat__conv_idle_end(chat_t *c, const runtime_turn_out_t *out)
{
    if (out->error != 0 || out->out == NULL || strncmp(out->key, "chat:", 5) != 0)
        return;
    chat_map_node_t *n = chat__map_get(&c->convs, out->key + 5);
    if (n == NULL)
        return;
    chat_result_t r;
    record(CHAT_CONTAINER(n, chat_conv_t, node), out->out, &r);
}

static void on_turn_done(const runtime_turn_out_t *out)
{
    turn_t *t = out->data;
    chat_conv_t *cv = t->conv;
    chat_result_t r = {.error = out->error, .message = out->error_msg ? out->error_msg : ""};
    chat__conv_release(t->chat, cv);
    chat__ws_typing(cv, 0);
    if (out->error == 0 && out->out != NULL) {
        if (t->text != NULL)
            user_entry(t->chat, cv, t, &out->out->guard_in);
        record(cv, out->out, &r);
    } else
        r.from_seq = r.to_seq = cv->next_seq;
    free(t->text);
    free(t->client_id);
    if (out->error != 0)
        LOG_WARN("event=chat_turn_failed conversation=%s error=%s", cv->id,
                 core_strerror(out->error));
    t->cb(t->chat, cv, &r, t->data);
    free(t);
}

int chat__turn(chat_t *c, chat_conv_t *cv, brain_event_t ev, const char *text, size_t len,
               const char *client_id, uint64_t *user_seq, chat_turn_cb cb, void *data,
               core_err_t *err)
{
    runtime_t *rt = chan_runtime(&c->base);
    if (rt == NULL)
        return core_err_set(err, CORE_ERR_CLOSED, "the runtime is not running");
    turn_t *t = core_xcalloc(1, sizeof(*t));
    *t = (turn_t){.chat = c, .conv = cv, .cb = cb, .data = data, .seq_out = user_seq};
    char start[CHAT_KEY_NAME + 16];
    runtime_turn_in_t in = {.key = cv->key,
                            .channel = cv->channel,
                            .event = ev,
                            .text = ev == BRAIN_EV_MESSAGE ? text : NULL,
                            .len = ev == BRAIN_EV_MESSAGE ? len : 0,
                            .adapter_version = cv->channel == BRAIN_CH_WEB
                                                   ? "web/" CHAT_ADAPTER_VERSION
                                                   : "chat/" CHAT_ADAPTER_VERSION,
                            .env = cv->env[0] ? cv->env : NULL,
                            .fresh = cv->fresh,
                            .client_id = ev == BRAIN_EV_MESSAGE ? client_id : NULL,
                            /* the owner, stored with the start row: restores keep it */
                            .start_detail = chat__conv_start_detail(cv, start, sizeof(start))};
    int rc = runtime_turn(rt, &in, on_turn_done, t, err);
    if (rc != 0) {
        free(t);
        return rc;
    }
    cv->fresh = 0;
    chat__conv_hold(c, cv);
    c->turns++;
    if (ev == BRAIN_EV_MESSAGE) { /* kept until the turn has completed */
        t->text = core_xmalloc(len + 1);
        memcpy(t->text, text, len); /* all len bytes: the text may hold a NUL */
        t->text[len] = '\0';
        t->len = len;
        t->client_id = core_xstrdup_opt(client_id);
    }
    chat__ws_typing(cv, 1);
    return 0;
}
