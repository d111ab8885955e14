/* store.h — the durable store: transcripts, conversation state, events and
 * audit rows in one SQLite file (WAL) under data_dir, the KPI queries over
 * them, and an in-memory Prometheus registry that /metrics renders without
 * touching the database.
 *
 * Threads: one writer thread owns the write connection (Redis bio.c's
 * shape). The loop thread builds a store_batch_t, hands it over with
 * store_enqueue() and gets its callback on the loop once the rows are durable
 * (group commit: the writer commits many batches in one transaction, then
 * wakes the loop with uv_async_send). Reads (state loads, reports, transcripts)
 * run on the libuv thread pool with their own read connections
 * (store_*_async), or directly with store_db_* on a thread that may block
 * (start-up, chorusctl, tests). Nothing here blocks the loop thread except
 * store_open()/store_close(), which are for start-up and shutdown.
 *
 * Ownership: store_enqueue() takes ownership of the batch; the sender keeps
 * no pointer into it. Strings passed to store_batch_*() are copied. Results
 * handed to callbacks are owned by the callback.
 *
 * Errors: 0 or a negative CORE_ERR_*; SQLite codes are translated here.
 * CORE_ERR_BUSY from store_enqueue() (queue full, or the disk is failing and
 * the writer has not yet recovered) means "answer 503 + Retry-After"; the
 * batch was not taken and nothing was written. A completion status < 0 means
 * the batch was not written (the turn is not acknowledged). A store never
 * drops a batch it has acknowledged and never degrades to memory-only.
 *
 * Backends: the writer and the read workers call a vtable of backend
 * operations (store_int.h); SQLite is the first. See docs/store.md. */
#ifndef CHORUS_STORE_H
#define CHORUS_STORE_H

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "chorus/config.h"
#include "chorus/core.h"

/* The schema version this binary writes. A database with a higher version
 * is refused (CORE_ERR_UNSUPPORTED) with a message naming both versions. */
#define STORE_SCHEMA_VERSION 12

/* ---- rows --------------------------------------------------------------- */

/* Conversation outcomes; "active" until the runtime ends the conversation. */
#define STORE_OUTCOME_ACTIVE "active"
#define STORE_OUTCOME_CONTAINED "contained"
#define STORE_OUTCOME_ESCALATED "escalated"
#define STORE_OUTCOME_ABANDONED "abandoned"
#define STORE_OUTCOME_ERROR "error"

/* A conversation's start (inserted once; a repeat with the same id is a
 * no-op so the runtime can send it with every first-turn batch). */
typedef struct store_conv_start_s {
    const char *id;              /* conversation id, unique across channels */
    const char *channel;         /* "web", "sms", ... */
    const char *flow;            /* flow name */
    const char *flow_version;    /* flow version or content hash */
    const char *variant;         /* rollout variant, "" when none */
    const char *adapter_version; /* channel adapter version, may be NULL */
    int64_t started_us;          /* wall clock, µs since the epoch */
} store_conv_start_t;

typedef struct store_turn_s {
    const char *conversation_id;
    int64_t seq;                 /* 1, 2, ... per conversation; (id, seq) is unique */
    char direction;              /* 'i' user to bot, 'o' bot to user */
    int64_t ts_us;               /* wall clock, µs since the epoch */
    const char *text;            /* redacted text (never raw PII), may be NULL */
    const char *intent;          /* routed intent, NULL when not routed */
    double confidence;           /* 0..1; < 0 when not routed */
    int oos;                     /* 1 when routed out of scope */
    const char *node;            /* flow node that handled it, may be NULL */
    int64_t latency_us;          /* outbound: receipt of the input to reply ready; -1 n/a */
    const char *guard_json;      /* guardrail decisions as a JSON array, may be NULL */
    int64_t tokens_in;           /* LLM prompt tokens spent on this turn */
    int64_t tokens_out;          /* LLM completion tokens */
    const char *error;           /* failure kind ("action", "llm", "internal"), NULL if ok */
    const char *channel;         /* channel of this turn */
    const char *adapter_version; /* channel adapter version, may be NULL */
    const char *client_id;       /* inbound: the client's id of the message, may be NULL */
} store_turn_t;

/* Event kinds: "guardrail", "handoff", "action", "llm", "error", ... */
typedef struct store_event_s {
    const char *conversation_id;
    int64_t turn_seq;    /* the turn it belongs to, 0 if none */
    int64_t ts_us;       /* wall clock */
    const char *kind;    /* see above */
    const char *name;    /* rule, action or target name, may be NULL */
    const char *status;  /* "ok", "error", "blocked", ... may be NULL */
    int64_t duration_us; /* action/LLM call duration, -1 n/a */
    const char *detail;  /* JSON object text, may be NULL */
} store_event_t;

/* ---- batches ------------------------------------------------------------ */

/* One unit of durability: everything one turn (or one admin action) writes.
 * All its rows commit together or not at all. Loop thread builds it. */
typedef struct store_batch_s store_batch_t;
typedef struct store_s store_t;       /* below: the store */
typedef struct store_db_s store_db_t; /* below: a read connection */

store_batch_t *store_batch_new(void);
void store_batch_free(store_batch_t *b);
/* Each adds one operation, copying every string. */
void store_batch_conv_start(store_batch_t *b, const store_conv_start_t *c);
void store_batch_turn(store_batch_t *b, const store_turn_t *t);
void store_batch_event(store_batch_t *b, const store_event_t *e);
/* Saves the conversation's serialized state (JSON text) for restore; active
 * is 1 while the conversation can continue. */
void store_batch_state(store_batch_t *b, const char *conversation_id, const char *state_json,
                       int active, int64_t ts_us);
/* Ends a conversation: outcome is a STORE_OUTCOME_*; reason is the escalation
 * reason (or NULL). Also marks its saved state inactive. */
void store_batch_conv_end(store_batch_t *b, const char *conversation_id, const char *outcome,
                          const char *reason, int64_t ended_us);
/* Records a CSAT answer (1..5) for a conversation. */
void store_batch_csat(store_batch_t *b, const char *conversation_id, int score, int64_t ts_us);
/* Labels a turn with its correct intent ("oos" for out of scope). */
void store_batch_label(store_batch_t *b, const char *conversation_id, int64_t turn_seq,
                       const char *intent, const char *labeller, int64_t ts_us);
/* Appends an audit record (append-only table). */
void store_batch_audit(store_batch_t *b, const char *actor, const char *action, const char *target,
                       const char *detail_json, int64_t ts_us);
/* Records an admin token in the tokens table: sha256_hex is the SHA-256 of
 * the token's text in hex (the text itself is never stored); role is
 * "viewer", "operator", "admin" or "agent". A name already taken (revoked
 * ones included) rejects the batch with CORE_ERR_INVALID. */
void store_batch_token_create(store_batch_t *b, const char *name, const char *role,
                              const char *sha256_hex, const char *created_by, int64_t ts_us);
/* Marks the token name revoked at ts_us; rejects the batch with
 * CORE_ERR_INVALID when no unrevoked token has that name. */
void store_batch_token_revoke(store_batch_t *b, const char *name, int64_t ts_us);
/* One handoff's row (the human desk, docs/agents.md): inserted or replaced
 * whole by conversation_id, the conversation's earlier handoff (another
 * entered_us) moving to handoffs_past first. Times are wall-clock
 * microseconds, 0 = none. Its messages are rows of their own
 * (store_handoff_message_t). */
typedef struct store_handoff_s {
    const char *conversation_id, *key, *queue, *channel, *reason;
    const char *state; /* waiting|claimed|released|closed|abandoned */
    const char *agent, *disposition, *release_outcome; /* may be NULL */
    const char *detail;                                /* JSON object text */
    int64_t entered_us, claimed_us, done_us, updated_us;
    /* the conversation was handed off again since: this handoff's row is
     * the one in handoffs_past (conversation_id, entered_us), updated
     * there, and the conversation's row in handoffs is left alone */
    int superseded;
} store_handoff_t;
void store_batch_handoff(store_batch_t *b, const store_handoff_t *h);
/* Calls fn with the detail JSON of every handoff still waiting or claimed,
 * and of the max_released most recently released (by done_us) whose
 * outcome is still to come: release_outcome unset and the conversation
 * still active (its key's saved state active and of that conversation), so
 * the bot may yet finish it; all in the order they entered (read
 * connection; blocking, never on the loop). */
int store_db_open_handoffs(struct store_db_s *db, size_t max_released,
                           void (*fn)(const char *detail, void *arg), void *arg, core_err_t *err);

/* One message of a handoff's history (migration 7): a row of the
 * handoff_messages table, so that a message costs one insert whatever the
 * history before it. seq numbers a handoff's messages from 1. Writing
 * message seq deletes the handoff's messages older than its last keep (0:
 * none), and the first one (seq 1) deletes those an earlier handoff of the
 * same conversation left (its handoffs row was replaced by this one's),
 * never those of the handoff whose row handoffs holds (a superseded
 * handoff's late first message must not clear the current one's). */
typedef struct store_handoff_message_s {
    const char *conversation_id, *handoff_id;
    int64_t seq;
    const char *from;  /* "customer", "agent" or "system" */
    const char *agent; /* the agent's name, NULL for the others */
    const char *text;  /* text_len bytes of UTF-8 (NUL bytes allowed) */
    size_t text_len;
    int64_t ts_us;
    int64_t keep;
} store_handoff_message_t;
void store_batch_handoff_message(store_batch_t *b, const store_handoff_message_t *m);
/* Calls fn with the last limit messages of handoff_id (of conversation_id),
 * oldest first; the strings are valid during the call (read connection;
 * blocking, never on the loop). */
int store_db_handoff_messages(struct store_db_s *db, const char *conversation_id,
                              const char *handoff_id, size_t limit,
                              void (*fn)(const store_handoff_message_t *m, void *arg), void *arg,
                              core_err_t *err);

/* SMS opt-outs (store_sms.c, migration 6; docs/channels.md, "SMS"): the
 * last STOP (opted_out 1) or START (0) of the (From, To) pair, inserted or
 * replaced. */
void store_batch_sms_opt(store_batch_t *b, const char *from, const char *to, int opted_out,
                         int64_t ts_us);
/* Calls fn for every pair opted out now (read connection; blocking: start-up
 * before serving, tools, worker threads). */
int store_db_sms_opt_outs(store_db_t *db, void (*fn)(const char *from, const char *to, void *arg),
                          void *arg, core_err_t *err);

/* Flow versions and environments (store_flows_batch.c; docs/operations.md,
 * "Flow versions and environments"). A version row is inserted once: a
 * repeat of (flow, version) is a no-op, so its first author and diff stay. */
typedef struct store_flow_version_s {
    const char *flow, *version, *sha256; /* version: 12 hex digits of sha256 */
    const char *content;
    size_t len;
    const char *author;
    const char *prev_version; /* the flow's version before it, NULL for a first */
    const char *diff;         /* unified diff against prev_version, may be NULL */
    int64_t created_us;
} store_flow_version_t;
void store_batch_flow_version(store_batch_t *b, const store_flow_version_t *v);
/* Sets (or with version NULL removes) env's version of flow, and appends the
 * change to environment_history with previous, set_by and action. */
void store_batch_env_flow(store_batch_t *b, const char *env, const char *flow, const char *version,
                          const char *previous, const char *set_by, const char *action,
                          int64_t ts_us);
/* Reads (store_flows_read.c; blocking: start-up, tools, worker threads):
 * env's rows {"flow","version","set_by","set_us","author","created_us"}
 * (with "content" when with_content) as an array sorted by flow; a flow's
 * versions newest first {"version","sha256","author","created_us",
 * "prev_version","diff"} (and "content" when with_content; "envs":[names
 * running it]); one version's content. CORE_ERR_NOT_FOUND when missing. */
int store_db_env_flows(store_db_t *db, const char *env, int with_content, json_t **out,
                       core_err_t *err);
int store_db_flow_versions(store_db_t *db, const char *flow, int with_content, json_t **out,
                           core_err_t *err);
int store_db_env_history(store_db_t *db, const char *env, const char *flow, int limit, json_t **out,
                         core_err_t *err);
/* The same on the thread pool: kind "env" (arg env), "versions" (arg flow),
 * "version" (arg "flow@version": one row with content), "history" (arg env,
 * may be NULL: the latest 200 changes; or "env/flow": all of that flow's).
 * cb as store_json_cb. */
typedef void (*store_json_cb_t)(int status, json_t *result, const char *errmsg, void *data);
int store_flows_async(store_t *s, const char *kind, const char *arg, int with_content,
                      store_json_cb_t cb, void *data);

/* Number of turns in the batch (for metrics and queue accounting). */
size_t store_batch_turns(const store_batch_t *b);

/* ---- the store ---------------------------------------------------------- */

typedef struct store_options_s {
    const char *path;     /* database file; ":memory:" for a non-durable store */
    int synchronous_full; /* 1: PRAGMA synchronous=FULL; 0: NORMAL (WAL-safe) */
    size_t queue_max;     /* batches queued before enqueue answers BUSY */
    size_t batch_max;     /* batches committed in one transaction, at most */
    int retry_ms;         /* after a write failure, probe the disk this often */
    int writer_nice;      /* nice steps the writer thread runs below the process, 0-19 (Linux) */
} store_options_t;

typedef struct store_s store_t;

typedef struct store_stats_s {
    uint64_t batches;       /* batches committed */
    uint64_t turns;         /* turns committed */
    uint64_t commits;       /* transactions committed */
    uint64_t max_group;     /* most batches committed in one transaction */
    uint64_t failed;        /* batches completed with an error */
    uint64_t busy;          /* enqueues refused with CORE_ERR_BUSY */
    size_t queued;          /* batches waiting now */
    int healthy;            /* 0 while the writer is failing to write */
    uint64_t group_hist[8]; /* transactions by batches per commit: 1, 2-3, 4-7, ... 128+ */
    uint64_t prunes;        /* retention chunks run */
} store_stats_t;

/* Opens (creating or upgrading) the database, starts the writer thread and
 * registers its uv_async_t on loop. Blocking: call before the loop runs.
 * Returns NULL with err set (cannot open, newer schema, not a database). */
store_t *store_open(uv_loop_t *loop, const store_options_t *opt, core_err_t *err);
/* Stops taking batches, lets the writer commit what is queued, joins it and
 * runs the remaining callbacks, then closes its handle; the store is freed
 * from the close callback, so the loop must run once more. NULL is fine. */
void store_close(store_t *s);

/* Completion of a batch, on the loop thread: status 0 once its rows are
 * durable, < 0 if they were not written (CORE_ERR_BUSY when the disk failed,
 * CORE_ERR_INVALID when the batch itself was rejected, e.g. an unknown
 * conversation). */
typedef void (*store_done_cb)(int status, void *data);

/* Queues b for the writer; takes ownership of b on success. Returns 0 (cb
 * runs exactly once, later, on the loop) or CORE_ERR_BUSY / CORE_ERR_CLOSED
 * (cb never runs, b still belongs to the caller). Loop thread only. */
int store_enqueue(store_t *s, store_batch_t *b, store_done_cb cb, void *data);

/* Appends one audit row stamped with the wall clock now, as a batch of its
 * own that the writer chains (audit trail: prev_hash, hash). detail_json is
 * a JSON object's text or NULL; strings are copied. Returns 0, or the
 * store_enqueue() error (nothing written). Fire and forget: no callback.
 * Loop thread (the thread that runs the store's loop). */
int store_audit(store_t *s, const char *actor, const char *action, const char *target,
                const char *detail_json);

/* 1 when the store accepts batches (for /readyz). Any thread. */
int store_ready(const store_t *s);
void store_get_stats(const store_t *s, store_stats_t *out);
/* The database path the store was opened with. */
const char *store_path(const store_t *s);
/* 1 for a ":memory:" store: it begins empty, keeps nothing past the process
 * and only the writer's connection sees it (no reads, no restore). */
int store_in_memory(const store_t *s);
/* The same, from the path a store is (or would be) opened with. */
static inline int store_path_in_memory(const char *path)
{
    return path != NULL && strcmp(path, ":memory:") == 0;
}

/* ---- reads on the thread pool (loop thread calls, callbacks on the loop) --- */

/* Loads a conversation's saved state: cb gets status 0 and the JSON text
 * (owned by cb) plus active flag, CORE_ERR_NOT_FOUND, or another error. */
typedef void (*store_state_cb)(int status, char *state_json, int active, void *data);
int store_state_load_async(store_t *s, const char *conversation_id, store_state_cb cb, void *data);

/* Any JSON-producing read (report, transcript list/show): cb gets status and
 * an owned json_t (NULL on error) plus an error message. */
typedef void (*store_json_cb)(int status, json_t *result, const char *errmsg, void *data);

/* ---- blocking reads (start-up, chorusctl, worker threads) ---------------- */

/* A read-only handle on a database file (its own connection). */
typedef struct store_db_s store_db_t;
store_db_t *store_db_open(const char *path, core_err_t *err);
void store_db_close(store_db_t *db);

/* Every conversation whose state is active: calls fn(id, state_json, arg)
 * for each; used at start-up to restore them. Returns 0 or an error. */
int store_db_active_states(store_db_t *db,
                           void (*fn)(const char *id, const char *state_json, void *arg), void *arg,
                           core_err_t *err);
int store_db_state_load(store_db_t *db, const char *conversation_id, char **state_json, int *active,
                        core_err_t *err);

/* ---- transcript mining (chorusctl learn, docs/flywheel.md) -------------- */

/* A user turn the flows did not understand (out of scope, or a fallback). */
typedef struct store_learn_turn_s {
    int64_t turn_id;
    const char *conversation_id, *text, *channel, *flow;
    const char *outcome; /* the conversation's outcome */
    int oos, fallback;
    double handle_s; /* human handle time of the conversation; -1 unknown */
} store_learn_turn_t;

/* Calls fn for each such turn of the conversations started in [from, to)
 * (to <= 0: no end), in turn order; strings are borrowed for the call. */
int store_db_learn_turns(store_db_t *db, int64_t from_us, int64_t to_us,
                         void (*fn)(const store_learn_turn_t *t, void *arg), void *arg,
                         core_err_t *err);
/* {"drop_offs":[{flow,node,abandoned,escalated,flow_conversations}],
 *  "intents":[{intent,turns,avg_confidence,low_confidence}],
 *  "confusions":[{predicted,labelled,count}]} over the same window;
 * low_confidence counts turns below that confidence. */
int store_db_learn_summary(store_db_t *db, int64_t from_us, int64_t to_us, double low_confidence,
                           json_t **out, core_err_t *err);
/* User turns worth labelling in [from, to): out of scope, unrouted, or
 * routed below max_confidence, least confident first, at most limit;
 * unlabelled ones only unless labelled_too. [{conversation, seq, text,
 * predicted, confidence, oos, label}]. */
int store_db_label_candidates(store_db_t *db, int64_t from_us, int64_t to_us, double max_confidence,
                              int labelled_too, int limit, json_t **out, core_err_t *err);
/* Every labelled turn's text by its label: {"intent": ["text", ...]}. */
int store_db_labelled_examples(store_db_t *db, json_t **out, core_err_t *err);

/* ---- online backup (chorusctl backup; blocking) --------------------------- */

typedef struct store_backup_stats_s {
    int pages;          /* database pages copied */
    int steps;          /* sqlite3_backup_step calls */
    int restarts;       /* copies restarted because the daemon wrote meanwhile */
    int schema_version; /* of the copy */
} store_backup_stats_t;

/* Copies the database at src_path (chorusd may be running and writing) to
 * dst_path with SQLite's backup API, in steps; checks the copy with
 * PRAGMA integrity_check, makes it one self-contained file (no WAL), fsyncs
 * it and renames it onto dst_path from a temporary name beside it. On error
 * dst_path is untouched and the temporary file removed. */
int store_backup(const char *src_path, const char *dst_path, store_backup_stats_t *st,
                 core_err_t *err);

/* ---- audit trail and admin tokens --------------------------------------- */

/* Each audit row carries prev_hash (the hash of the row before it; 64 zeros
 * for the first) and hash = SHA-256 over prev_hash and the row's content in
 * a canonical form, computed by the writer thread as it inserts the row
 * (docs/operations.md#audit-trail gives the form). */
extern const char store_audit_genesis[65];
/* The hash of one row, lower-case hex, into out (NUL-terminated). NULL
 * target/detail are part of the form ("-"). */
void store_audit_hash(const char *prev_hash, int64_t id, int64_t ts_us, const char *actor,
                      const char *action, const char *target, const char *detail, char out[65]);

typedef struct store_audit_query_s {
    int64_t since_us;   /* rows at or after; 0 = no bound */
    int64_t until_us;   /* and before; 0 = no bound */
    const char *action; /* "token.create", or a prefix before a dot ("token"); NULL = any */
    const char *actor;  /* exact; NULL = any */
    int64_t before_id;  /* page cursor: rows with a smaller id; 0 = the newest */
    int limit;          /* rows, 1..1000 (100 when 0) */
} store_audit_query_t;
/* Newest first: *out is {"entries": [{id, ts_us, actor, action, target,
 * detail (parsed), prev_hash, hash}], "limit", "next_cursor" (the last id
 * as a string, or null on the last page)}. */
int store_db_audit(store_db_t *db, const store_audit_query_t *q, json_t **out, core_err_t *err);
/* The same on the thread pool (the query is copied); cb runs once. */
int store_audit_async(store_t *s, const store_audit_query_t *q, store_json_cb cb, void *data);

typedef struct store_audit_verify_s {
    int64_t rows;      /* chained rows verified */
    int64_t legacy;    /* rows from before the chain (schema 1), not verifiable */
    int64_t broken_id; /* the first row that breaks the chain; 0 when intact */
    char what[320];    /* what differs at broken_id */
    char head[65];     /* hash of the last verified row (genesis when none) */
} store_audit_verify_t;
/* Walks the whole chain in id order and stops at the first broken link: a
 * row without a hash, a prev_hash that is not the previous row's hash, or a
 * hash that is not its content's. Returns 0 (see v->broken_id) or an error
 * reading the file. */
int store_db_audit_verify(store_db_t *db, store_audit_verify_t *v, core_err_t *err);

/* One row of the tokens table; strings borrowed for the callback. */
typedef struct store_token_row_s {
    const char *name, *role, *sha256; /* sha256: hex of the token's SHA-256 */
    int64_t created_us;
    const char *created_by;
    int64_t revoked_us; /* 0 while valid */
} store_token_row_t;
/* Calls fn for every stored token, oldest first. Returns 0 or an error. */
int store_db_tokens(store_db_t *db, void (*fn)(const store_token_row_t *t, void *arg), void *arg,
                    core_err_t *err);

/* ---- drift (docs/flywheel.md, "Drift") ------------------------------------ */

typedef struct store_drift_limits_s {
    int64_t recent_s;       /* the recent window, ending now */
    int64_t baseline_s;     /* the baseline window, just before it */
    double psi;             /* alert above this population stability index (0: never) */
    double rate_delta;      /* alert when oos or fallback rates rise, or containment falls,
                               by more than this (absolute, 0..1; 0: never) */
    double confidence_drop; /* alert when mean confidence falls by more (0: never) */
    int64_t min_turns;      /* both windows need this many user turns to alert */
} store_drift_limits_t;

/* One window's figures: {"turns","oos","fallbacks","confidence_sum",
 * "confidence_n","ended","contained","intents":{name: user turns}}. */
int store_db_drift_window(store_db_t *db, int64_t from_us, int64_t to_us, json_t **out,
                          core_err_t *err);
/* Compares two windows (pure): {"drift", "enough_data", "alerts": [{signal,
 * ...}], "distribution": {psi, js_divergence, moved: [{intent,
 * baseline_share, recent_share, psi_term}]}, "rates": {...}, "baseline",
 * "recent"}. */
json_t *store_drift_compare(const json_t *baseline, const json_t *recent,
                            const store_drift_limits_t *lim);
/* Both windows ending at now_us, compared. */
int store_db_drift(store_db_t *db, int64_t now_us, const store_drift_limits_t *lim, json_t **out,
                   core_err_t *err);
/* The same on the thread pool; cb runs on the loop with the report. */
int store_drift_async(store_t *s, int64_t now_us, const store_drift_limits_t *lim, store_json_cb cb,
                      void *data);

/* ---- KPI reports -------------------------------------------------------- */

enum { STORE_BY_CHANNEL = 1, STORE_BY_FLOW = 2, STORE_BY_VERSION = 4, STORE_BY_VARIANT = 8 };
typedef enum {
    STORE_BUCKET_NONE = 0,
    STORE_BUCKET_HOUR,
    STORE_BUCKET_DAY,
    STORE_BUCKET_WEEK,
    STORE_BUCKET_MONTH
} store_bucket_t;

typedef struct store_report_query_s {
    int64_t from_us;           /* conversations started at or after; 0 = no bound */
    int64_t to_us;             /* and before; 0 = no bound */
    int by;                    /* STORE_BY_* bits */
    store_bucket_t bucket;     /* time bucket of the conversation's start (UTC) */
    double price_in_per_mtok;  /* currency per million prompt tokens */
    double price_out_per_mtok; /* currency per million completion tokens */
    double message_cost;       /* currency per message (either direction), every channel */
    const char *message_costs; /* "sms=0.0079,voice=0.013": per-channel overrides, may be NULL */
} store_report_query_t;

/* Parses "channel,flow,version,variant" (any subset) into STORE_BY_* bits;
 * "hour|day|week|month|none" into a bucket. Return 0 or CORE_ERR_INVALID. */
int store_report_parse_by(const char *s, int *by, core_err_t *err);
int store_report_parse_bucket(const char *s, store_bucket_t *bucket, core_err_t *err);
/* Parses "2026-11-29", "2026-11-29T10:00:00Z" or µs since the epoch. */
int store_parse_time(const char *s, int64_t *us, core_err_t *err);

/* Runs the KPI report; *out is {"from","to","by","bucket","rows":[...]} with
 * one row per slice and bucket and a "total" row (docs/metrics.md names each
 * field). Rates whose denominator is zero are null. */
int store_db_report(store_db_t *db, const store_report_query_t *q, json_t **out, core_err_t *err);

/* Transcripts: list conversations (newest first, optional channel/flow/
 * outcome filters, limit) and show one with its turns and events. */
typedef struct store_list_query_s {
    int64_t from_us, to_us; /* started within; 0 = no bound */
    const char *channel;    /* filters, NULL = any */
    const char *flow;
    const char *outcome;
    int limit; /* rows, 1..1000 */
    int worst; /* ended conversations only, lowest score first (else newest first) */
} store_list_query_t;
/* Each listed conversation carries "score": 0..100 once it has ended (NULL
 * while active), from its outcome, CSAT, fallbacks, guardrail blocks and
 * escalations and failed turns (docs/flywheel.md, "Conversation scores"). */
int store_db_conversations(store_db_t *db, const store_list_query_t *q, json_t **out,
                           core_err_t *err);
int store_db_transcript(store_db_t *db, const char *conversation_id, json_t **out, core_err_t *err);
/* The transcript of key's latest conversation: a key that came back after
 * its conversation ended has its later ones under "key#1", "key#2", ...
 * (docs/store.md); the one that started last. CORE_ERR_NOT_FOUND if none. */
int store_db_transcript_latest(store_db_t *db, const char *key, json_t **out, core_err_t *err);
/* Whether a user turn of any conversation of key (key, "key#1", ...) was
 * sent with the client's message id client_id (turns.client_id, indexed by
 * migration 12): *found 1 or 0. How a channel knows, after a restart, that
 * a message sent again (Twilio's retry of a MessageSid) already ran. */
int store_db_client_id_recorded(store_db_t *db, const char *key, const char *client_id, int *found,
                                core_err_t *err);

/* The same on the thread pool with a read connection of their own. The
 * query is copied. Return 0 (cb runs once on the loop) or an error. */
int store_report_async(store_t *s, const store_report_query_t *q, store_json_cb cb, void *data);
int store_conversations_async(store_t *s, const store_list_query_t *q, store_json_cb cb,
                              void *data);
int store_transcript_async(store_t *s, const char *conversation_id, store_json_cb cb, void *data);
int store_transcript_latest_async(store_t *s, const char *key, store_json_cb cb, void *data);
/* store_db_client_id_recorded() on the thread pool: cb gets status 0 and
 * found, or an error (CORE_ERR_NOT_FOUND for a :memory: store, which keeps
 * nothing from before the process). Strings are copied. */
typedef void (*store_found_cb)(int status, int found, void *data);
int store_client_id_recorded_async(store_t *s, const char *key, const char *client_id,
                                   store_found_cb cb, void *data);

/* ---- retention ---------------------------------------------------------- */

/* Retention, run on the writer thread between batches (queued like one, in
 * chunks, so turns are never held up for long): conversations that ended
 * before text_before_us lose their transcript (turn text, guardrail
 * details, events, saved state) but keep the numeric columns the KPIs read;
 * conversations that ended before rows_before_us (0 = never) are deleted
 * with everything of theirs. Audit rows are never pruned. cb runs on the
 * loop once every chunk is done. chorusd calls it daily with now minus
 * store.retention_days and store.metrics_retention_days. */
int store_prune_async(store_t *s, int64_t text_before_us, int64_t rows_before_us, store_done_cb cb,
                      void *data);
/* Arms (or, on reload, re-arms) the daily retention job: first_delay_ms from
 * now and then every 24 h it queues store_prune_async() with now minus
 * text_days / rows_days (0 = keep forever). Its timer does not keep the loop
 * alive. Loop thread. */
void store_retention_set(store_t *s, int text_days, int rows_days, uint64_t first_delay_ms);

/* ---- configuration (config.h's store section) ---------------------------- */

/* Fills opt from cfg; when store.path is empty the path is
 * data_dir/chorus.db, written into path_buf (which opt->path then points to). */
void store_options_from_config(const core_config_t *cfg, store_options_t *opt, char *path_buf,
                               size_t path_size);
/* Fills the cost-to-serve prices of q from cfg (strings already validated). */
void store_report_costs_from_config(const core_config_t *cfg, store_report_query_t *q);

/* ---- Prometheus metrics (in memory, any thread) ------------------------- */

typedef struct store_metrics_s store_metrics_t;

/* Families every chorusd exports (docs/metrics.md lists them). */
typedef enum {
    STORE_M_TURNS = 0,      /* counter {channel,flow} inbound turns */
    STORE_M_TURN_LATENCY,   /* histogram {channel,flow} seconds, reply ready - input received */
    STORE_M_CONV_STARTED,   /* counter {channel,flow} */
    STORE_M_CONV_ENDED,     /* counter {channel,flow,outcome} */
    STORE_M_ESCALATIONS,    /* counter {channel,flow,reason} */
    STORE_M_FAILURES,       /* counter {channel,flow,kind} action|llm|internal|http5xx */
    STORE_M_OOS,            /* counter {channel,flow} turns routed out of scope */
    STORE_M_CONFIDENCE,     /* histogram {channel,flow} routing confidence 0..1 */
    STORE_M_LLM_TOKENS,     /* counter {channel,flow,direction} in|out */
    STORE_M_CSAT,           /* histogram {channel,flow} CSAT score 1..5 */
    STORE_M_STORE_BATCHES,  /* counter {} batches committed */
    STORE_M_STORE_GROUP,    /* histogram {} batches per commit */
    STORE_M_STORE_COMMIT,   /* histogram {} commit duration seconds */
    STORE_M_STORE_REJECTED, /* counter {reason} busy|failed */
    STORE_M_STORE_QUEUE,    /* gauge {} batches queued */
    STORE_M_STORE_HEALTHY,  /* gauge {} 1 when writing works */
    STORE_M_FLOWS_RELOADS,  /* counter {result} loaded|rejected: flow reload attempts */
    STORE_M_FLOWS_RELOAD_SECONDS,      /* histogram {} request to new set in force (or refusal) */
    STORE_M_FLOWS_RELOAD_LAST_SUCCESS, /* gauge {} wall clock of the last successful reload */
    STORE_M_ROLLOUTS_RUNNING,          /* gauge {} rollouts taking conversations */
    STORE_M_ROLLOUTS_ENDED,            /* counter {flow,status} promoted|aborted|rolled_back */
    STORE_M_DRIFT_PSI,                 /* gauge {} intent-distribution PSI of the last check */
    STORE_M_DRIFT_ALERTS,              /* counter {signal} drift checks that crossed a limit */
    STORE_M_AGENT_HANDOFFS,            /* counter {queue,channel,reason} entered a human queue */
    STORE_M_AGENT_WAIT,                /* histogram {queue,channel,reason} queued to claimed, s */
    STORE_M_AGENT_ABANDONED,           /* counter {queue,channel,reason} max wait, unclaimed */
    STORE_M_AGENT_HANDLE,              /* histogram {queue,channel,reason} claimed to done, s */
    STORE_M_AGENT_RELEASES,            /* counter {queue,channel,outcome} released|bot_finished|
                                          escalated_again */
    STORE_M_AGENT_DISPOSITIONS,        /* counter {queue,channel,disposition} closed by a person */
    STORE_M_AGENT_WAITING,             /* gauge {queue} conversations waiting now */
    STORE_M__COUNT
} store_metric_t;

/* Each family keeps at most this many label sets; more fold into one whose
 * values are all "other", which bounds cardinality whatever flows exist. */
#define STORE_METRICS_MAX_SERIES 256

store_metrics_t *store_metrics_new(void);
void store_metrics_free(store_metrics_t *m);
/* Adds v to a counter, sets a gauge, or observes v in a histogram. labels
 * has as many strings as the family has label names (NULL reads as ""). */
void store_metrics_add(store_metrics_t *m, store_metric_t f, const char *const *labels, double v);
void store_metrics_set(store_metrics_t *m, store_metric_t f, const char *const *labels, double v);
void store_metrics_observe(store_metrics_t *m, store_metric_t f, const char *const *labels,
                           double v);
/* Appends the Prometheus text exposition (format 0.0.4) to out. */
int store_metrics_render(store_metrics_t *m, core_buf_t *out);
/* Lets the store update its own families (queue depth, commits, groups). */
void store_set_metrics(store_t *s, store_metrics_t *m);

#endif
