/* agents_int.h — the human desk, shared by its files in src/admin:
 * agents.c (queues, handoff entries, state changes, persistence),
 * agents_restore.c (reading the open handoffs back at start), agents_rank.c
 * (queue positions for a sweep), agents_index.c (the entries' hashes and
 * tallies), agents_conf.c (the queues file), agents_api.c (the /v1/agent
 * routes and the event feed), agents_say.c (words to the customer) and
 * agents_hook.c (the signed webhook to an external desk). The console's
 * files are embedded and served with the widget's (src/channels/web,
 * chan_web.c). Loop thread only, but for ag__saved_read (thread pool).
 * See docs/agents.md. */
#ifndef CHORUS_AGENTS_INT_H
#define CHORUS_AGENTS_INT_H

#include <jansson.h>
#include <stdint.h>

#include "admin/admin_int.h"
#include "chorus/net_client.h"

/* A time zone's UTC offsets (from its TZif file). */
typedef struct ag_zone_s {
    int64_t *at;   /* owned: UTC offset transitions, seconds */
    int32_t *off;  /* owned: the offset from each on */
    size_t n;      /* transitions */
    int32_t first; /* offset before the first */
} ag_zone_t;

/* One queue from the queues file. */
typedef struct ag_queue_s {
    char *name;
    int64_t max_wait_us;    /* 0: no limit */
    char *tz;               /* IANA zone of the hours, NULL: always open */
    int open_min[7];        /* per weekday (0 = Sunday): opening minute, -1 closed */
    int close_min[7];       /* closing minute (exclusive) */
    json_t *wait_message;   /* {"default": "...", "sms": "..."}: {position}, {wait_minutes} */
    json_t *closed_message; /* said when nobody is available */
    int unavailable_bot;    /* 1: continue with the bot at bot_flow/bot_node; 0: callback */
    char *bot_flow, *bot_node;
    char *dial; /* voice: the number or SIP address <Dial> reaches */
    ag_zone_t zone;
} ag_queue_t;

typedef enum {
    AG_WAITING = 0,
    AG_CLAIMED = 1,
    AG_RELEASED = 2,
    AG_CLOSED = 3,
    AG_ABANDONED = 4,
} ag_state_t;

/* Where an entry's webhook delivery stands. Only a pending one is sent
 * (again) when the daemon starts. */
typedef enum {
    AG_HOOK_PENDING = 0,   /* not acknowledged yet: being tried, or no URL */
    AG_HOOK_DELIVERED = 1, /* a 2xx answered it */
    AG_HOOK_GIVEN_UP = 2,  /* agents.webhook_max_attempts failed */
} ag_hook_state_t;

/* The names an entry is hashed under (agents_index.c). */
enum { AG_BY_KEY, AG_BY_ID, AG_BY_CONV, AG_BY_COUNT };

/* Messages a handoff keeps (the oldest go), in memory and in the store. */
enum { AG_MAX_MESSAGES = 200 };

/* One handoff: a conversation in (or through) a queue. */
typedef struct ag_entry_s {
    struct ag_entry_s *next;
    struct ag_entry_s *by_next[AG_BY_COUNT]; /* in its bucket of each of d->by */
    char id[33];                             /* the handoff id the API names */
    char *conv_id;                           /* store id */
    char *key;                               /* the runtime's key ("chat:...", "sms:...") */
    char *queue;                             /* queue name */
    char *reason;                            /* handoff reason code */
    char *agent;                             /* who claimed it, NULL before */
    char *disposition;                       /* close code */
    char *release_outcome; /* after a release: "bot_finished", "escalated_again", NULL */
    brain_channel_t channel;
    ag_state_t state;
    int64_t entered_us, claimed_us, done_us; /* wall clock */
    int overdue;                             /* max_wait passed without a claim (said once) */
    json_t *summary;      /* the brain's summary: {"flow","reason","slots","last_user"} */
    json_t *messages;     /* since the handoff: [{"from","text","ts_us","agent"}], the last 200 */
    int64_t msg_seq;      /* messages since the handoff, all counted: the last one's store seq */
    ag_hook_state_t hook; /* the webhook's delivery */
    /* the conversation was handed off again (a newer entry of conv_id was
     * listed): its row in the store is now in handoffs_past, and its
     * writes go there, never over the newer one's (ag__index_add sets it) */
    int superseded;
} ag_entry_t;

typedef struct ag_hook_s ag_hook_t;

/* How many entries of one queue wait (agents_index.c). */
typedef struct ag_tally_s {
    char *queue;
    size_t waiting;
} ag_tally_t;

/* A parsed queues file. */
typedef struct ag_conf_s {
    ag_queue_t *queues; /* owned */
    size_t n_queues;
    json_t *routes;       /* owned: {"reason": "queue"} */
    json_t *dispositions; /* owned: ["code", ...], the close codes that are metric labels */
} ag_conf_t;

typedef struct ag_desk_s {
    admin_t *admin;
    ag_conf_t conf;      /* the queues in force */
    char *conf_loaded;   /* the queues file path the queues came from */
    ag_entry_t *entries; /* newest first */
    size_t n_entries;
    ag_entry_t **by[AG_BY_COUNT]; /* entries hashed by key, id and conv_id, newest first */
    size_t by_cap;                /* buckets of each, a power of two (0 before the first entry) */
    ag_tally_t *tally;            /* waiting entries per queue name */
    size_t n_tally;
    size_t n_done;         /* entries finished (ag__finished), still listed */
    struct ag_sub_s *subs; /* feed sockets */
    net_client_t *http;    /* webhook deliveries */
    ag_hook_t *hooks;      /* deliveries in flight or waiting to retry */
    uv_timer_t tick;       /* max-wait checks */
    int started;           /* the timer and client exist */
    int restored;          /* the open handoffs were read back from the store */
    uint64_t seq;          /* feed event counter */
} ag_desk_t;

/* agents_conf.c: (re)reads cfg.agents.queues_file when its path changed,
 * or always with force (SIGHUP); a bad or unreadable file is logged and the
 * queues in force stay. */
void ag__conf_load(ag_desk_t *d, int force);
/* Parses and checks file into conf (every problem a diagnostic in diags);
 * 0, CORE_ERR_NOT_FOUND when there is no file, or CORE_ERR_INVALID. */
int ag__conf_parse(const char *file, ag_conf_t *conf, core_diags_t *diags);
/* Frees what ag__conf_parse() gave conf, and zeroes it. */
void ag__conf_dispose(ag_conf_t *conf);
/* The start-up check: 0 when file is valid or absent. */
int ag__conf_check(const char *file, core_diags_t *diags);
void ag__conf_free(ag_desk_t *d);
const ag_queue_t *ag__queue(ag_desk_t *d, const char *name);
/* The queue for a handoff: the queues file's route for reason, else the
 * flow's queue, else "default". Borrowed. */
const char *ag__route(ag_desk_t *d, const char *reason, const char *flow_queue);
/* agents_zone.c: reads /usr/share/zoneinfo/NAME into z; -1 when unknown or
 * unreadable. 1 when q is open at wall-clock now_us. */
int ag__zone_load(const char *name, ag_zone_t *z);
int ag__queue_open(const ag_queue_t *q, int64_t now_us);
/* The label of a close's disposition in chorus_agent_dispositions_total:
 * the code when the queues file lists it, else "other". The code is what
 * an agent typed, and a label from user input would let anyone fill the
 * family's series (docs/metrics.md). Borrowed. */
const char *ag__disposition_label(const ag_desk_t *d, const char *disposition);
/* The channel's variant of a message object (or string); NULL when none. */
const char *ag__variant(const json_t *msg, brain_channel_t ch);

/* agents_index.c: every listed entry is also hashed by key, id and
 * conversation id, so that the observer of every turn finds a key's open
 * handoff and a call finds its handoff without walking all entries, and
 * counted in the tallies. Add an entry in its state once it
 * is at the head of d->entries, remove it before it leaves the list, and
 * change its state only with ag__set_state() and its release outcome only
 * with ag__set_outcome(). */
/* e: the newest of its key and of its conversation; the conversation's
 * entry listed before it, if any, is superseded from now. */
void ag__index_add(ag_desk_t *d, ag_entry_t *e);
void ag__index_remove(ag_desk_t *d, ag_entry_t *e);
void ag__set_state(ag_desk_t *d, ag_entry_t *e, ag_state_t s);
/* Gives a released entry its outcome ("bot_finished", "escalated_again"),
 * which finishes it. */
void ag__set_outcome(ag_desk_t *d, ag_entry_t *e, const char *outcome);
/* 1 when nothing more happens to e: closed, abandoned, or released and its
 * outcome known. Finished entries are counted in n_done and trimmed. */
int ag__finished(const ag_entry_t *e);
/* Entries of queue now waiting. */
size_t ag__waiting(ag_desk_t *d, const char *queue);
/* The newest entry of key that is still open (waiting, claimed, or
 * released with its outcome not yet known). */
ag_entry_t *ag__index_open(ag_desk_t *d, const char *key);
/* The entry with handoff id id, else the newest of conversation id id. */
ag_entry_t *ag__find(ag_desk_t *d, const char *id);

/* agents_restore.c: the open handoffs as the store holds them (thread
 * pool): the waiting and claimed ones, and the AG_MAX_DONE most recently
 * released whose conversation is still active (their outcome to come),
 * oldest entered first; each its row's detail with its "messages" (the
 * last AG_MAX_MESSAGES, oldest first) and its last message's seq. */
typedef struct ag_saved_s {
    json_t *handoff; /* owned: the API's object of the handoff, with "messages" */
    int64_t msg_seq; /* the seq of its last message, 0 without any */
} ag_saved_t;
typedef struct ag_saved_list_s {
    ag_saved_t *v; /* owned */
    size_t n, cap;
} ag_saved_list_t;
/* Fills out (which the caller disposes, even on failure); 0 or an error. */
int ag__saved_read(store_db_t *db, ag_saved_list_t *out, core_err_t *err);
void ag__saved_dispose(ag_saved_list_t *l);
/* A new entry as s was saved (not linked anywhere), in its state (waiting,
 * claimed, or released with its outcome to come), NULL when a name it
 * needs is missing. */
ag_entry_t *ag__entry_from_saved(const ag_saved_t *s);

/* agents_rank.c: positions in their queues for a sweep over many entries
 * (the max-wait tick), where ag__position() walks every entry for one.
 * Start from {0}; the first position asked sorts the entries then waiting
 * (O(n log n)), and each position after costs O(log n). Tell it of an
 * entry that stops waiting during the sweep (ag__ranks_left), so that it
 * no longer counts for the others; entries that enter meanwhile are not
 * counted (they entered after every one already waiting). */
typedef struct ag_ranks_s {
    ag_entry_t **w; /* owned: the waiting entries by queue, then time of entry */
    size_t n;
    size_t *tree; /* owned: Fenwick tree over w, 1 per entry still waiting */
    int built;
} ag_ranks_t;
size_t ag__ranks_position(ag_ranks_t *r, ag_desk_t *d, const ag_entry_t *e);
void ag__ranks_left(ag_ranks_t *r, const ag_entry_t *e);
void ag__ranks_dispose(ag_ranks_t *r);

/* agents.c */
void ag__entry_free(ag_entry_t *e);
int ag__release(ag_desk_t *d, ag_entry_t *e, const char *flow, const char *node, core_err_t *err);
int ag__close_turn(ag_desk_t *d, ag_entry_t *e, core_err_t *err);
json_t *ag__entry_json(const ag_entry_t *e, int with_messages);
const char *ag__state_name(ag_state_t s);
/* Adds to (or samples) one of the desk's metric families for e. */
void ag__metric(ag_desk_t *d, store_metric_t f, const ag_entry_t *e, const char *third, double v);
/* Counts, persists e (one batch of its own) and tells the feed; then trims. */
void ag__changed(ag_desk_t *d, ag_entry_t *e, const char *event);
/* Forgets the oldest finished entries beyond AG_MAX_DONE (their rows stay),
 * once AG_DONE_SLACK more have piled up, so that the walk is rare. keep,
 * the entry that just changed, stays whatever its place: its caller still
 * answers with it (an entry entered long ago may be closed only now). */
enum { AG_MAX_DONE = 2000, AG_DONE_SLACK = 500 };
void ag__trim(ag_desk_t *d, const ag_entry_t *keep);
/* Position of e among the waiting entries of its queue (1-based): a walk
 * of every entry (for one; a sweep asks ag_ranks_t). */
size_t ag__position(ag_desk_t *d, const ag_entry_t *e);
/* Adds a message to e's history (the last AG_MAX_MESSAGES kept) and writes
 * it as one row of handoff_messages (one batch of its own). entry is the
 * seq the customer's channel gave words said to the customer in its
 * transcript (chan_agent_say()), 0 when it numbers none (SMS) and for the
 * customer's own words; with one, the same batch writes a "desk" event
 * that gives a transcript rebuilt from the store the entry again. */
void ag__note(ag_desk_t *d, ag_entry_t *e, const char *from, const char *agent, const char *text,
              size_t len, uint64_t entry);
/* Audits an agent action through the admin audit trail. */
void ag__audit(ag_desk_t *d, const char *actor, const char *action, const ag_entry_t *e,
               json_t *detail);

/* agents_api.c */
int ag__api_register(ag_desk_t *d, net_router_t *r, core_err_t *err);
/* Sends an event to every feed socket: {"type": event, "seq", "handoff": ...}. */
void ag__feed(ag_desk_t *d, const char *event, json_t *payload);

/* agents_say.c: says text to e's customer on their channel as agent (NULL:
 * the desk's notice, recorded as "system"). With req (the agent API call),
 * answers it: 200 with the handoff once delivered (recorded, audited, fed),
 * 409 when the channel cannot take it (voice, an opted-out SMS number, no
 * sender), 502 with the gateway's reason when Twilio refused or did not
 * answer, 503 otherwise. */
void ag__say(ag_desk_t *d, ag_entry_t *e, const char *agent, const char *text, net_req_t *req);

/* agents_hook.c: queues the webhook for e (no-op without a URL). */
void ag__hook_send(ag_desk_t *d, ag_entry_t *e);
void ag__hook_close(ag_desk_t *d);

/* Registers the desk's routes and its observer hook; admin.c calls it. */
int admin__agents_register(admin_t *a, net_router_t *r, core_err_t *err);

#endif
