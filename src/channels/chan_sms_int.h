/* chan_sms_int.h — the SMS adapter's memory of (From, To) pairs
 * (chan_sms_table.c), shared by chan_sms.c, chan_sms_optout.c,
 * chan_sms_wait.c and the table's unit test, and the adapter's own state
 * (at the end). Private to src/channels. Loop thread only.
 *
 * Two tables, both keyed by From + "\n" + To:
 * - conversations: what a pair needs between texts (the last numbered list,
 *   the opt-out writes in flight, the texts waiting for the store to say
 *   whether they ran and what the list was). Bounded by the caller's max: a new one
 *   evicts the least recently used idle one, in O(1). A conversation with
 *   something in flight (held) is off the LRU list, so it is never evicted
 *   and never walked over; it goes back at the tail when released.
 * - opt-outs: every pair that said STOP and has not opted back in. Never
 *   evicted and not counted in the conversations' bound (carriers require
 *   that a STOP is never forgotten); the store holds them across restarts.
 *
 * Ownership: the table owns its entries; a conversation pointer stays valid
 * while it is held, or until the next sms__conv_get() otherwise. */
#ifndef CHORUS_CHAN_SMS_INT_H
#define CHORUS_CHAN_SMS_INT_H

#include "channels/chan_chat_int.h"

/* A text waiting for the store before its turn, kept in arrival order
 * until its reads end (chan_sms_wait.c). */
typedef struct sms_wait_s {
    struct sms_wait_s *next;
    net_req_t *req; /* NULL once Twilio went away */
    char *msid;     /* owned */
    char *body;     /* owned */
    int checked;    /* the store said whether its MessageSid ran (or nothing could have) */
    int recorded;   /* it did: a retry of a stored turn, no second turn */
    int unknown;    /* the read failed (its error): the store could not say */
} sms_wait_t;

typedef struct sms_conv_s {
    chat_map_node_t node; /* keyed by key, in sms_table_t.convs */
    chat_link_t lru;      /* in sms_table_t.idle while pending is 0, else self-linked */
    char *key;            /* owned: From + "\n" + To */
    char *rt_key;         /* owned: "sms:" + From + ":" + To, the runtime's key */
    char **choices;       /* owned: values of the last numbered list */
    size_t n_choices;
    int list_known;      /* choices is the last list: a turn or STOP set it here, or the
                            store was asked (a pair new to the table may have one there) */
    sms_wait_t *waiting; /* owned, oldest first, each holding the conversation: texts
                            waiting for the store (chan_sms_wait.c) */
    int asking;          /* a read for the head of waiting is in flight */
    unsigned opt_seq;    /* opt-out writes started: only the latest one's outcome applies */
    unsigned pending;    /* turns and opt-out writes in flight: never evicted meanwhile */
} sms_conv_t;

typedef struct sms_opt_s {
    chat_map_node_t node; /* keyed by key, in sms_table_t.opt_outs */
    chat_link_t unsaved;  /* in sms_table_t.unsaved while the store may not say STOP, else
                             self-linked */
    int stop_owed;        /* a STOP whose saving failed: its retry still gets the confirmation */
    char key[];           /* From + "\n" + To */
} sms_opt_t;

typedef struct sms_table_s {
    chat_map_t convs;    /* key -> sms_conv_t */
    chat_link_t idle;    /* conversations with pending 0, least recently used first */
    chat_map_t opt_outs; /* key -> sms_opt_t: every opted-out pair */
    chat_link_t unsaved; /* sms_opt_t whose STOP failed to save: written again until it is */
} sms_table_t;

void sms__table_init(sms_table_t *t);
/* Frees every entry (none may be held). The adapter lives until exit and
 * never calls it; its unit test does, to stay leak-free under ASan. */
void sms__table_dispose(sms_table_t *t);

/* The conversation of (from, to), made most recently used; a new one first
 * evicts idle ones until fewer than max remain (a table whose conversations
 * are all held grows past max until they are released). */
sms_conv_t *sms__conv_get(sms_table_t *t, const char *from, const char *to, size_t max);
/* Something starts in flight for cv (a turn, an opt-out write): off the LRU. */
void sms__conv_hold(sms_conv_t *cv);
/* It finished: once nothing is in flight, cv is the most recently used. */
void sms__conv_release(sms_table_t *t, sms_conv_t *cv);
void sms__choices_clear(sms_conv_t *cv);

/* The pair's opt-out entry (key as a conversation's key), NULL: opted in. */
sms_opt_t *sms__opt_find(const sms_table_t *t, const char *key);
/* Opts the pair out (keeping an existing entry's stop_owed and unsaved) or
 * back in (which unlinks it from unsaved); returns the entry, NULL when
 * opted in. */
sms_opt_t *sms__opt_set(sms_table_t *t, const char *key, int opted_out);

/* ---- the adapter (chan_sms.c), its keywords and opt-outs (chan_sms_optout.c) */

/* A MessageSid seen lately: Twilio retries a webhook with the same one. */
typedef struct sms_sid_s {
    chat_map_node_t node;
    chat_link_t fifo;
    char sid[]; /* the MessageSid */
} sms_sid_t;

typedef struct sms_s {
    chan_t base;
    sms_table_t table; /* conversations and opt-outs */
    chat_map_t sids;
    chat_link_t sid_fifo;
    size_t n_sids;
    size_t n_loaded;      /* opted-out pairs read back at start */
    net_client_t *http;   /* owned: replies sent late (chan_sms_stop), made when first needed */
    uv_timer_t opt_retry; /* writes the unsaved STOPs again (chan_sms_optout.c) */
    int opt_timer;        /* opt_retry: 0 not made, 1 open, 2 closed (chan_sms_stop) */
    uint64_t opt_wait_ms; /* opt_retry's next delay: 1 s, doubling to 30 s while writes fail */
} sms_t;

/* The MessageSid's entry, NULL when not seen lately; forgetting one lets
 * Twilio's retry of that message run. */
sms_sid_t *sms__sid_find(sms_t *s, const char *sid);
void sms__sid_forget(sms_t *s, sms_sid_t *e);
/* Remembers a MessageSid seen now (the oldest forgotten when full). */
sms_sid_t *sms__sid_remember(sms_t *s, const char *sid);
/* Runs text as cv's next turn, answering req with its reply (chan_sms.c),
 * or texting it late when req is NULL (Twilio went away while the text
 * waited); sid goes with the turn, and is forgotten when it cannot start. */
void sms__run_turn(sms_t *s, net_req_t *req, sms_conv_t *cv, sms_sid_t *sid, const char *text);
/* The option a reply picks ("2", "2.", "2)", a keycap 2), 0 when it is not
 * a number alone. */
size_t sms__option_number(const char *body);
/* The text a reply stands for: "2" after a numbered list is its option 2. */
const char *sms__answer_text(const sms_conv_t *cv, const char *body);
/* A text for a turn (not a keyword, not after STOP): queued behind cv's
 * earlier ones and run once the store said it did not run before (and, for
 * a bare number from a pair new to the table, what the last list was);
 * chan_sms_wait.c. */
void sms__text_queue(sms_t *s, net_req_t *req, sms_conv_t *cv, sms_sid_t *sid, const char *body);
/* The adapter's store, NULL when the daemon runs without one. */
store_t *sms__store(const sms_t *s);
/* Answers with TwiML holding text as <Message> parts, or an empty
 * <Response/> when text is NULL. */
void sms__send_text(net_req_t *req, const char *text);
/* Carrier keywords (STOP, START, HELP and their synonyms): returns 1 when
 * body was one, answered (a STOP or START once it is saved); 0 otherwise. */
int sms__keyword_answer(sms_t *s, net_req_t *req, sms_conv_t *cv, const char *msid,
                        const char *body);
/* Reads the opted-out pairs back (blocking, before serving). A database
 * that cannot be read fails the start: serving without them could text a
 * number that said STOP. */
int sms__load_opt_outs(sms_t *s, core_err_t *err);
/* At shutdown: stops writing unsaved STOPs again, and logs each one this
 * process could not make durable (lost with it). */
void sms__opt_retry_stop(sms_t *s);

#endif
