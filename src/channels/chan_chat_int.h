/* chan_chat_int.h — the chat adapter's working state, shared by its files:
 * chan_chat.c (registration, REST handlers), chan_chat_rest_idem.c (REST
 * Idempotency-Key), chan_chat_reply.c (the REST answers), chan_chat_conv.c
 * (conversation table, transcript log, turns), chan_chat_restore.c
 * (conversations read back from the store), chan_chat_ws.c and
 * chan_chat_ws_frames.c (WebSocket protocol), chan_chat_auth.c (API keys,
 * origins, who owns a conversation), chan_chat_cors.c (CORS),
 * chan_chat_idem.c (idempotency cache), chan_chat_map.c (the string-keyed
 * hash and list they use) and chan_web.c (the widget's embedded files).
 * Private to src/channels. Loop thread only. Protocol: docs/channels.md. */
#ifndef CHORUS_CHAN_CHAT_INT_H
#define CHORUS_CHAN_CHAT_INT_H

#include <jansson.h>
#include <stdint.h>

#include "chorus/channels.h"

#define CHAT_ID_LEN 32           /* hex characters of a conversation id */
#define CHAT_MAX_CLIENT_ID 128   /* bytes of a WebSocket message's "id" */
#define CHAT_MAX_IDEM_KEY 255    /* bytes of an Idempotency-Key */
#define CHAT_KEY_NAME 64         /* bytes of a gateway key's name, NUL included */
#define CHAT_ADAPTER_VERSION "1" /* the chat/web protocol version */
#define CHAT_OWNER_WEB "web"     /* the owner of every widget conversation */

/* ---- intrusive list and string-keyed hash (chan_chat_map.c) ------------- */

typedef struct chat_link_s {
    struct chat_link_s *prev, *next;
} chat_link_t;

void chat__list_init(chat_link_t *head);
void chat__list_push_back(chat_link_t *head, chat_link_t *l);
void chat__list_remove(chat_link_t *l); /* a removed link points at itself */
int chat__list_empty(const chat_link_t *head);

#define CHAT_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct chat_map_node_s {
    struct chat_map_node_s *next; /* chain */
    const char *key;              /* borrowed from the containing object */
    uint64_t hash;
} chat_map_node_t;

typedef struct chat_map_s {
    chat_map_node_t **slots; /* owned array */
    size_t nslots;           /* power of two */
    size_t count;
} chat_map_t;

void chat__map_init(chat_map_t *m);
void chat__map_dispose(chat_map_t *m); /* frees the slots, not the nodes */
chat_map_node_t *chat__map_get(const chat_map_t *m, const char *key);
/* Adds n (n->key set; the key must not be present). */
void chat__map_put(chat_map_t *m, chat_map_node_t *n);
void chat__map_del(chat_map_t *m, chat_map_node_t *n);

/* ---- idempotency cache (chan_chat_idem.c) ------------------------------- */

typedef struct chat_idem_entry_s {
    chat_map_node_t node; /* keyed by key */
    chat_link_t fifo;     /* in the cache's insertion order */
    char *key;            /* owned: scope + "\n" + the client's key */
    uint8_t fp[32];       /* SHA-256 of what the request asked for */
    int done;             /* 0 while its turn is in flight */
    int status;           /* HTTP status stored with the response */
    char *body;           /* owned JSON response */
    uint64_t seq;         /* WebSocket: the seq the message got */
    int64_t expires_us;   /* monotonic */
} chat_idem_entry_t;

typedef struct chat_idem_s {
    chat_map_t map;
    chat_link_t fifo;
    size_t count;
} chat_idem_t;

enum {
    CHAT_IDEM_NEW = 0,      /* *out is a fresh pending entry: run the request */
    CHAT_IDEM_REPLAY = 1,   /* *out holds the stored response */
    CHAT_IDEM_MISMATCH = 2, /* same key, different request */
    CHAT_IDEM_PENDING = 3,  /* same key still in flight */
};

void chat__idem_init(chat_idem_t *t);
void chat__idem_dispose(chat_idem_t *t);
/* Looks key up (expiring old entries first); returns a CHAT_IDEM_* value or
 * CORE_ERR_LIMIT when max entries are all in flight. */
int chat__idem_begin(chat_idem_t *t, const char *key, const uint8_t fp[32], size_t max,
                     int64_t ttl_us, int64_t now_us, chat_idem_entry_t **out);
/* Stores the response of a pending entry (body copied). */
void chat__idem_finish(chat_idem_entry_t *e, int status, const char *body, uint64_t seq);
/* Forgets a pending entry whose request was not run (so a retry may run it). */
void chat__idem_cancel(chat_idem_t *t, chat_idem_entry_t *e);
/* Records key as done with seq and the answer body, for chat__idem_peek()
 * alone; text is the message it ran (chat__idem_same_text), NULL when that
 * is not known. Nothing when key is already held or every entry is in
 * flight. */
void chat__idem_known(chat_idem_t *t, const char *key, uint64_t seq, const char *body,
                      const char *text, size_t max, int64_t ttl_us, int64_t now_us);
/* Whether a message of text may be the one a chat__idem_known() entry ran:
 * the same text, or a text the entry does not know. */
int chat__idem_same_text(const chat_idem_entry_t *e, const char *text, size_t len);
/* The finished entry of key, or NULL; inserts nothing. */
const chat_idem_entry_t *chat__idem_peek(chat_idem_t *t, const char *key, int64_t now_us);

/* ---- the adapter -------------------------------------------------------- */

#define CHAT_KEY_SEEN 128 /* longest key remembered once it hashed right */

typedef struct chat_key_s {
    char name[CHAT_KEY_NAME];
    uint8_t hash[32];
    char env[16]; /* environment its conversations start in; "" = the default */
    /* The last key presented that hashed to this entry, zero-padded (and its
     * length, 0 for none): a gateway sends the same key with every request,
     * and comparing it costs far less than hashing it again. */
    char seen[CHAT_KEY_SEEN];
    size_t seen_len;
} chat_key_t;

typedef struct chat_s {
    chan_t base;          /* first: the adapter as every channel sees it */
    chat_map_t convs;     /* id -> chat_conv_t */
    chat_link_t lru;      /* idle conversations, least recently used first */
    chat_idem_t idem;     /* Idempotency-Key and WebSocket message ids */
    char *keys_src;       /* owned copy of chat.api_keys the keys were parsed from */
    chat_key_t *keys;     /* owned */
    size_t n_keys;        /* entries in keys */
    uint64_t turns;       /* turns started */
    uint64_t ws_sessions; /* WebSocket sessions opened */
    chat_link_t ws_keyed; /* open WebSocket sessions opened with a gateway key */
    uint64_t ws_replaced; /* followers closed for a newer one (chat.max_followers) */
    size_t log_bytes;     /* bytes of every conversation's log entries (chat.history_bytes) */
    uint64_t evictions;   /* conversations forgotten for either bound */
} chat_t;

typedef struct chat_conv_s {
    chat_map_node_t node; /* keyed by id */
    chat_t *chat;         /* the table it is in, whose byte count its log adds to */
    chat_link_t lru;      /* in chat_t.lru while idle (pending 0, no subs), else unlinked */
    char id[CHAT_ID_LEN + 1];
    char key[CHAT_ID_LEN + 8]; /* "chat:" + id: the runtime's conversation key */
    brain_channel_t channel;   /* chat (gateways) or web (the widget) */
    char env[16];              /* environment it starts in (its gateway key's); "" = default */
    /* Who may use it (chat__conv_owned): the name of the gateway key that
     * started it, or CHAT_OWNER_WEB for the widget's; "" for one read back
     * from a store that did not record it (started by an older chorusd). */
    char owner[CHAT_KEY_NAME];
    brain_status_t status;
    json_t *handoff;    /* owned: the handoff object while status is HANDOFF */
    int64_t created_us; /* wall clock */
    char **log;         /* owned ring of transcript entries: compact JSON frames */
    size_t log_cap;     /* slots in the ring; grows by doubling up to log_max */
    size_t log_max;     /* chat.history_messages when the conversation began */
    size_t log_len;     /* entries held */
    size_t log_head;    /* slot of the oldest entry */
    uint64_t first_seq; /* seq of the oldest entry held */
    uint64_t next_seq;  /* seq of the next entry; the first is 1 */
    unsigned pending;   /* turns in flight; never evicted while > 0 (chat__conv_hold) */
    int fresh;          /* its id was minted here and no turn has run on it yet */
    int restored;       /* read back from the store: its last ids are known (chat__conv_known) */
    chat_link_t subs;   /* WebSocket sessions following it, oldest first
                           (chat__conv_follow) */
    size_t n_subs;      /* entries in subs (at most chat.max_followers) */
} chat_conv_t;

/* What a finished turn added. */
typedef struct chat_result_s {
    int error;           /* 0 or the runtime's CORE_ERR_* */
    const char *message; /* "" or why */
    uint64_t from_seq;   /* first entry of the turn's replies */
    uint64_t to_seq;     /* one past the last */
} chat_result_t;

typedef void (*chat_turn_cb)(chat_t *c, chat_conv_t *cv, const chat_result_t *r, void *data);

/* chan_chat_conv.c */
void chat__init(chat_t *c, const chan_host_t *host);
chat_conv_t *chat__conv_get(chat_t *c, const char *id);
/* Creates a conversation; CORE_ERR_LIMIT when the table is full of busy ones. */
int chat__conv_new(chat_t *c, brain_channel_t channel, chat_conv_t **out, core_err_t *err);
/* The same with a given id (a conversation restored from the store), or a
 * fresh random one when id is NULL. */
int chat__conv_add(chat_t *c, brain_channel_t channel, const char *id, chat_conv_t **out,
                   core_err_t *err);
/* Appends an entry to the log (borrowed; "seq" and "ts" stamped into it from
 * the next seq and ts_us) and sends it to the followers; returns its seq. */
uint64_t chat__conv_append(chat_conv_t *cv, json_t *entry, int64_t ts_us);
/* Forgets a conversation nothing uses (a start that failed). */
void chat__conv_drop(chat_t *c, chat_conv_t *cv);
/* The only ways pending and subs change, so that the LRU list holds exactly
 * the idle conversations: hold/release count a turn in flight (chat__turn
 * and its done callback), follow/unfollow add and remove a WebSocket
 * session's link (sub) in cv->subs and keep n_subs. follow appends (the
 * list is oldest first); the caller makes room first (chat.max_followers,
 * chan_chat_ws.c); unfollow takes a link that follows cv. */
void chat__conv_hold(chat_t *c, chat_conv_t *cv);
void chat__conv_release(chat_t *c, chat_conv_t *cv);
void chat__conv_follow(chat_t *c, chat_conv_t *cv, chat_link_t *sub);
void chat__conv_unfollow(chat_t *c, chat_conv_t *cv, chat_link_t *sub);
/* Entry with seq as JSON text (borrowed) or parsed (owned); NULL when not held. */
const char *chat__conv_entry_text(const chat_conv_t *cv, uint64_t seq);
json_t *chat__conv_entry(const chat_conv_t *cv, uint64_t seq);
/* Appends a user message entry (text copied; client_id may be NULL; redacted:
 * the text is what the input rails left of it); returns its seq. */
uint64_t chat__conv_user(chat_t *c, chat_conv_t *cv, const char *text, size_t len,
                         const char *client_id, int redacted);
/* Runs one turn: BRAIN_EV_START, or BRAIN_EV_MESSAGE with text. cb runs once
 * from the runtime's done callback unless this fails at once (rc != 0, err
 * set, nothing appended). The user's entry is appended when the turn has
 * completed (its rows durable), just before its replies; a turn that fails
 * appends nothing. *user_seq (may be NULL) gets the entry's seq then and
 * must stay valid until cb runs. */
int chat__turn(chat_t *c, chat_conv_t *cv, brain_event_t ev, const char *text, size_t len,
               const char *client_id, uint64_t *user_seq, chat_turn_cb cb, void *data,
               core_err_t *err);
/* Records an idle-timeout turn's output (the flow's goodbye, the end) in the
 * conversation it belongs to and pushes it to its sockets; other keys are
 * ignored. */
void chat__conv_idle_end(chat_t *c, const runtime_turn_out_t *out);
/* The conversation's status as the API names it: "active", "ended", "handoff". */
const char *chat__status_name(brain_status_t st);

/* chan_chat_reply.c: the REST answers, appended to b as compact JSON. */
/* {"conversation","channel","status","created","first_seq","last_seq",
 * "messages":[entries with seq > after],"handoff"?}: GET's answer. */
void chat__transcript(core_buf_t *b, const chat_conv_t *cv, uint64_t after);
/* {"conversation","messages":[{"seq","text","choices"}],"status","handoff"?}:
 * the bot messages a turn added (r), the answer to a POST. */
void chat__turn_reply(core_buf_t *b, const chat_conv_t *cv, const chat_result_t *r);

/* chan_chat.c: the registered adapter, NULL before registration. */
chat_t *chat__instance(void);

/* chan_agent.c: a person's words as a log entry (without seq and ts):
 * {"type":"message","from":"agent","text","agent"}, or "from":"system" for
 * the desk's notices (agent NULL). NULL when text is not UTF-8. The live
 * log and the rebuild (chan_chat_restore.c) build it alike. */
json_t *chat__desk_entry(const char *agent, const char *text);

/* chan_chat_restore.c: the store is the source of truth for whether a
 * conversation exists. cv is the conversation (NULL unless status is 0);
 * status CORE_ERR_NOT_FOUND when it never existed, CORE_ERR_LIMIT when the
 * table is full of busy ones, another error when the store could not say. */
typedef void (*chat_found_cb)(chat_t *c, chat_conv_t *cv, int status, void *data);
/* Finds conversation id: in the table (returns 1 with *out set; cb never
 * runs), or by reading its record from the store and rebuilding its log
 * (returns 0; cb runs once, later, on the loop). Fails at once with
 * CORE_ERR_NOT_FOUND (not an id chat gives out, or no store) or another
 * error (the runtime is closed). */
int chat__conv_find(chat_t *c, const char *id, chat_found_cb cb, void *data, chat_conv_t **out);
/* The last user messages with an id that a rebuild met (a ring), for the
 * ids of a restored conversation (chat__conv_known). */
#define CHAT_KNOWN_MAX 32
typedef struct chat_known_msg_s {
    const char *id;       /* borrowed from the record */
    const char *text;     /* borrowed: the message as sent, NULL when the
                             store keeps it changed (redacted) */
    uint64_t seq;         /* its user entry */
    uint64_t replies_end; /* its replies are the entries before this one;
                             0: up to the end of the log */
} chat_known_msg_t;
typedef struct chat_known_s {
    chat_known_msg_t items[CHAT_KNOWN_MAX]; /* a ring: the oldest at first */
    size_t first, n;
} chat_known_t;
/* Appends to cv's log (a new conversation's) the entries of rec, the
 * conversation's record as runtime_conversation_record() gives it ("turns",
 * "events", "outcome", "ended_us"), as the live log had them, and sets its
 * status. known, when not NULL, gets the last user messages with an id. */
void chat__conv_rebuild(chat_conv_t *cv, const json_t *rec, chat_known_t *known);
/* A message id (a WebSocket message's, a REST message's Idempotency-Key)
 * that cv's log says ran, cv having been read back from the store: the
 * entry (its seq, and the REST answer rebuilt from the log as body), or
 * NULL. The answer caches of the WebSocket and REST, in memory, forget on a
 * restart; the last ids of a restored conversation are kept here. */
const chat_idem_entry_t *chat__conv_known(chat_t *c, const chat_conv_t *cv, const char *id);

/* chan_chat_ws.c */
int chat__ws_register(chat_t *c, net_router_t *r, core_err_t *err);
/* Sends one frame (borrowed) to every WebSocket following cv, in the order
 * of calls on each socket, behind what it has queued. The text is
 * serialized and framed once for all of them; a follower whose send queue
 * (websocket.send_queue_bytes) is full is closed 1008 (event=chat_ws_slow),
 * gets nothing more and stops following once closed. broadcast_text takes
 * the text (len bytes, borrowed) already serialized. */
void chat__ws_broadcast(chat_conv_t *cv, const json_t *frame);
void chat__ws_broadcast_text(chat_conv_t *cv, const char *text, size_t len);
void chat__ws_typing(chat_conv_t *cv, int on);
/* After a reload: closes (1008) the sockets opened with a gateway key that
 * chat.api_keys no longer has under the same name and secret. */
void chat__ws_keys_changed(chat_t *c);

/* chan_chat_rest_idem.c */
/* Looks up the request's Idempotency-Key for gateway. Returns 1 when the
 * request was answered (replayed or refused), 0 to go on (*entry: the
 * pending entry to finish with the answer, NULL when no key was given). */
int chat__rest_idempotency(chat_t *c, net_req_t *req, const char *gateway,
                           chat_idem_entry_t **entry);
/* A retry whose key the gateway's cache no longer holds (the daemon
 * restarted) but cv's log does (chat__conv_known): answered with the turn's
 * answer, which finishes entry too, or refused with 422 when its text is not
 * the message that ran. Returns 1 when answered. */
int chat__rest_replay_known(chat_t *c, net_req_t *req, chat_conv_t *cv, const char *text,
                            size_t len, chat_idem_entry_t *entry);

/* chan_chat_auth.c */
/* The environment of the gateway key name ("" = the default one). */
const char *chat__key_env(const chat_t *c, const char *name);
/* Checks an Authorization header value against chat.api_keys; 0 with the
 * key's name in name_out (and its configured hash in hash_out, unless
 * NULL), or CORE_ERR_DENIED with err saying why. */
int chat__auth_bearer(chat_t *c, const char *authorization, char name_out[CHAT_KEY_NAME],
                      uint8_t hash_out[32], core_err_t *err);
/* Whether chat.api_keys, as it is now, still has the key name with hash
 * (what chat__auth_bearer() gave a client when it came in). */
int chat__key_valid(chat_t *c, const char *name, const uint8_t hash[32]);
/* Records who started cv: the gateway key named gateway, or the widget
 * when gateway is NULL. */
void chat__conv_own(chat_conv_t *cv, const char *gateway);
/* Whether gateway (a key's name; NULL: the widget) may use cv: only the
 * gateway that started it, by its key's name, and only the widget a widget
 * conversation. Callers answer "not found" otherwise, as for an id that
 * never existed. */
int chat__conv_owned(const chat_conv_t *cv, const char *gateway);
/* The owner rec (a conversation's record, as chat__conv_rebuild() takes
 * it) was stored with, into cv ("" when it has none). */
void chat__conv_owner_restore(chat_conv_t *cv, const json_t *rec);
/* The start detail the runtime stores with a conversation's start row,
 * {"owner":...}, written into out; NULL when cv has no owner. */
const char *chat__conv_start_detail(const chat_conv_t *cv, char *out, size_t size);
/* True if a page from origin may use the widget's WebSocket without a key. */
int chat__origin_allowed(const core_config_t *cfg, const char *origin, const char *host);

/* chan_chat_cors.c: Vary: Origin, and Access-Control-Allow-Origin for an
 * allowed Origin, on an answer to come; OPTIONS preflights of the REST API. */
void chat__cors(const chat_t *c, net_req_t *req);
int chat__cors_register(const chat_t *c, net_router_t *r, core_err_t *err);

/* chan_web.c; the table is generated from src/channels/web by cmake/embed.cmake */
typedef struct chat_web_asset_s {
    const char *name;          /* file name: "index.html", "widget.js" */
    const unsigned char *data; /* its bytes */
    size_t len;                /* bytes */
} chat_web_asset_t;
extern const chat_web_asset_t chat__web_assets[];
extern const size_t chat__web_n_assets;
int chat__web_register(chat_t *c, net_router_t *r, core_err_t *err);

#endif
