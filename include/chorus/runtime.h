/* runtime.h — the turn pipeline every channel shares: the conversation table,
 * the brain's turns, and the effects (backend HTTP calls, LLM chat
 * completions) the brain asks for, performed through net_client on the loop.
 *
 * A channel adapter builds a runtime_turn_in_t and calls runtime_turn(); the
 * runtime finds or creates the conversation by key, queues the turn behind
 * any turn of the same conversation still in flight (double texts, voice
 * barge-in never race), runs brain_turn(), performs each effect the brain
 * needs (with the node's timeout, retries and exponential backoff), resumes
 * the brain with the result and finally calls the done callback once with
 * the turn's output. Turns of different conversations never wait for each
 * other. With a store, each turn's rows are committed (one batch, on the
 * store's writer thread) before the callback runs, a refused turn is rolled
 * back, and a conversation not in memory is read back before its turn.
 * Flows are loaded (and the intent router trained) on the libuv thread
 * pool; an unchanged restart reuses the model cached under data_dir.
 *
 * Threads: loop thread only, except runtime_flows_check() and
 * runtime_flows_read() which block on file I/O and are for start-up checks,
 * tools and worker threads, never the loop.
 *
 * Ownership: runtime_new()/runtime_close(). runtime_turn() copies what it
 * needs from turn_in; the output passed to the done callback is borrowed for
 * the callback's duration.
 *
 * Errors: 0 / negative CORE_ERR_*. A failed effect (timeout, 5xx, refused
 * connection, malformed JSON) is not a runtime error: it becomes the effect's
 * result and the flow takes its error edge. runtime_turn() either fails at
 * once (callback never runs) or returns 0 and the callback runs exactly once,
 * never from inside runtime_turn().
 *
 * See docs/runtime.md. */
#ifndef CHORUS_RUNTIME_H
#define CHORUS_RUNTIME_H

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "chorus/brain.h"
#include "chorus/core.h"
#include "chorus/store.h"

typedef struct runtime_s runtime_t;
typedef struct runtime_turn_out_s runtime_turn_out_t;
typedef void (*runtime_done_cb)(const runtime_turn_out_t *out);

typedef struct runtime_options_s {
    const char *flows_dir;      /* borrowed, copied: every *.json in it is a flow file */
    const char *data_dir;       /* borrowed, copied: the intent-router cache goes in
                                   data_dir/nlu/; NULL = no cache */
    const char *guard_file;     /* guardrail rules JSON; NULL = built-in defaults */
    int no_guard;               /* run the flows without guardrails (tests) */
    size_t max_conversations;   /* in memory (chorusd: runtime.max_conversations); beyond it a
                                   new key fails with CORE_ERR_LIMIT, or with a store an idle
                                   durable one is dropped (0: 100000) */
    int no_evict;               /* the store cannot read state back (":memory:"): a full
                                   table refuses a new key rather than drop one for good */
    size_t max_queued_turns;    /* per conversation, behind the one in flight (0: 8) */
    uint64_t sweep_interval_ms; /* how often idle conversations are timed out (0: 1000) */
    size_t max_effect_bytes;    /* largest backend/LLM response body (0: 1 MiB) */
    size_t max_transfers;       /* concurrent outbound HTTP transfers (0: 1024) */
    uint32_t max_backoff_ms;    /* cap on one retry's wait (0: 30000) */
    const char *const *envp;    /* NAME=value flow variable overrides; NULL = environ */
    /* Called with the output of each idle-timeout turn (the flow's goodbye),
     * so a channel with a live connection can push it; data is idle_data.
     * NULL: the output is dropped. */
    runtime_done_cb on_idle_end;
    void *idle_data;
    /* Persistence (borrowed; both may be NULL): with a store, every turn's
     * rows (transcript, events, state, outcome) go out as one batch and the
     * done callback runs once they are durable; a conversation missing from
     * memory is restored from the store before its turn. */
    store_t *store;
    store_metrics_t *metrics; /* Prometheus families updated per turn */
    /* Environments (see "Versions and environments" below). */
    int production_promoted; /* 0 ("follow"): every valid load of flows_dir is also
                                production; 1 ("promoted"): production changes only by
                                runtime_env_promote() / runtime_env_apply() */
    const char *default_env; /* environment of turns that name none; NULL = production */
    const char *author;      /* author recorded for loads nobody names; NULL = "chorusd" */
} runtime_options_t;

typedef struct runtime_turn_in_s {
    const char *key;             /* conversation key, e.g. "web:3f9c"; borrowed, copied */
    brain_channel_t channel;     /* the adapter's channel: picks message variants */
    brain_event_t event;         /* BRAIN_EV_MESSAGE or BRAIN_EV_START */
    const char *text;            /* UTF-8 user text (or DTMF digits); borrowed, copied */
    size_t len;                  /* bytes of text */
    const char *intent;          /* explicit intent from a button payload; NULL = route the text */
    int64_t now_us;              /* wall clock of the input; 0 = now */
    const char *adapter_version; /* channel adapter version for the transcript; may be NULL */
    /* Who sent it, for the per-sender rate limit (an SMS From number, an API
     * key, a remote address); borrowed, copied; NULL = no sender limit. */
    const char *sender;
    /* A person hands the conversation back (runtime_handoff.c): with
     * jump_flow and jump_node set, a BRAIN_EV_START turn first puts a
     * conversation that was handed off back on that node, active, slots
     * kept, and the flow goes on from there; with jump_end set it ends the
     * conversation (closed by the person: its escalated outcome stays).
     * Check the names first with runtime_node_exists(). Borrowed, copied. */
    const char *jump_flow;
    const char *jump_node;
    int jump_end;
    /* Environment a new conversation starts in ("staging" | "production");
     * NULL = the default environment. Ignored for a conversation in progress. */
    const char *env;
    /* What the channel knows about how the input was captured, recorded with
     * the user turn as an "input" event: a JSON object such as voice's
     * {"mode": "speech", "confidence": 0.87}; borrowed, copied; NULL = none. */
    const char *input_detail;
    /* The caller minted the key just now, unguessable and never used (a new
     * chat conversation's id): nothing can be stored under it, so the
     * runtime starts the conversation without asking the store. */
    int fresh;
    /* The client's own id of the message (a chat WebSocket frame's "id", a
     * REST message's Idempotency-Key, at most 255 bytes), stored with the
     * user's turn so that the adapter can tell a message sent again after a
     * restart; borrowed, copied; NULL = none. */
    const char *client_id;
    /* What the channel records about who began the conversation, with its
     * start row, as a "start" event: a JSON object such as chat's
     * {"owner": "webshop"} (the gateway key that may use it). Used only by
     * the turn that writes the start row, so a channel passes it on every
     * turn and a conversation the key begins anew gets it too; borrowed,
     * copied; NULL = none. */
    const char *start_detail;
} runtime_turn_in_t;

struct runtime_turn_out_s {
    int error;                /* 0, or CORE_ERR_CLOSED (shutdown), CORE_ERR_INTERNAL (brain) */
    const char *error_msg;    /* "" when error is 0 */
    const char *key;          /* the conversation key */
    const brain_out_t *out;   /* the turn's output; NULL when error != 0 */
    const brain_conv_t *conv; /* the conversation after the turn; NULL when error != 0 */
    const brain_flowset_t *flowset; /* the flowset the turn ran on; NULL when error != 0 */
    unsigned effects;               /* HTTP/LLM requests performed, retries included */
    uint64_t queued_us;             /* time spent behind earlier turns of the conversation */
    uint64_t duration_us;           /* runtime_turn() to this callback */
    void *data;                     /* the data given to runtime_turn() */
};

/* rc is 0 when the new flowset is in force; on failure the previous one (if
 * any) stays and diags lists every problem. diags is borrowed for the call. */
typedef void (*runtime_loaded_cb)(runtime_t *rt, int rc, const core_diags_t *diags, void *data);
typedef void (*runtime_closed_cb)(void *data);

typedef struct runtime_stats_s {
    size_t conversations;       /* live in the table */
    size_t turns_in_flight;     /* started, callback not yet run (queued included) */
    uint64_t turns;             /* completed */
    uint64_t effects;           /* HTTP/LLM requests performed, retries included */
    uint64_t effect_errors;     /* effects whose final result was an error or a 5xx */
    uint64_t retries;           /* attempts after the first */
    uint64_t llm_prompt_tokens; /* summed over LLM calls */
    uint64_t llm_completion_tokens;
    uint64_t timeouts;         /* conversations ended by idle timeout */
    uint64_t evictions;        /* idle, durable conversations dropped from a full table */
    size_t conversation_bytes; /* memory held by live conversations (table entry included) */
} runtime_stats_t;

/* Creates a runtime on loop (borrowed). No flows are in force until
 * runtime_load() completes; turns before that fail with CORE_ERR_BUSY. */
int runtime_new(uv_loop_t *loop, const runtime_options_t *opts, runtime_t **out, core_err_t *err);

/* Reads and compiles the flows directory on the thread pool (training the
 * intent router or loading its cached model), then installs it on the loop
 * as staging's set (and production's too in "follow" mode, or when
 * production has none yet) and calls cb once. Each conversation keeps the
 * version set it started on until it ends; new conversations get the new
 * one. With a store, every flow version not seen before is recorded
 * (flow_versions, with its author and a diff against the flow's previous
 * version) and so is each environment change. runtime_load_by() names the
 * author (an admin token's name, "sighup", "watch"); runtime_load() uses
 * options.author. Returns CORE_ERR_BUSY if a load is already running,
 * CORE_ERR_CLOSED when closing. */
int runtime_load(runtime_t *rt, runtime_loaded_cb cb, void *data);
int runtime_load_by(runtime_t *rt, const char *author, runtime_loaded_cb cb, void *data);

/* The one entry point for every channel. Returns 0 and calls done exactly
 * once later, or fails at once with CORE_ERR_BUSY (no flows loaded yet, or
 * the conversation's queue is full), CORE_ERR_LIMIT (too many conversations),
 * CORE_ERR_INVALID (no key) or CORE_ERR_CLOSED, filling err. */
int runtime_turn(runtime_t *rt, const runtime_turn_in_t *in, runtime_done_cb done, void *data,
                 core_err_t *err);

/* The default environment's flowset (borrowed; NULL before the first load). */
const brain_flowset_t *runtime_flowset(const runtime_t *rt);
void runtime_stats(const runtime_t *rt, runtime_stats_t *out);

/* A conversation's durable record, as store_transcript_async() reads it:
 * {"id","channel","started_us","ended_us","outcome","escalation_reason",
 * ..., "turns":[{"seq","direction","ts_us","text",...}], "events":[...]}
 * (docs/store.md). record is owned by the callback (NULL unless status is
 * 0); status is CORE_ERR_NOT_FOUND when the store never saw the key,
 * CORE_ERR_CLOSED when the runtime closed meanwhile, or a read error. */
typedef void (*runtime_record_cb)(int status, json_t *record, void *data);

/* Reads the record of key's latest conversation from the store (a key that
 * came back after its conversation ended has later ones, "key#1", ...,
 * store_db_transcript_latest()), on the thread
 * pool (never blocking the loop): how a channel learns that a conversation
 * it no longer holds in memory (after a restart or an eviction) exists and
 * what was said in it; its next turn then continues it (runtime_turn()
 * restores the state). Returns 0 and cb runs once, later, on the loop; or
 * fails at once with CORE_ERR_NOT_FOUND (no store: nothing outlives memory)
 * or CORE_ERR_CLOSED. */
int runtime_conversation_record(runtime_t *rt, const char *key, runtime_record_cb cb, void *data);

/* Whether the store holds a user turn of key's conversations sent with the
 * client's message id client_id (store_db_client_id_recorded()), read on
 * the thread pool: how a channel tells a message sent again after a
 * restart (Twilio's retry of a MessageSid) from a new one, when its memory
 * of the ids it saw went with the process. cb runs once, later, on the
 * loop with status 0 and found 1 or 0, CORE_ERR_CLOSED when the runtime
 * closed meanwhile, CORE_ERR_NOT_FOUND for a :memory: store (nothing
 * outlives the process, so the id cannot have run before it), or a read
 * error (found 0: unknown). Returns 0, or fails at once (cb never runs)
 * with CORE_ERR_NOT_FOUND without a store, or CORE_ERR_CLOSED. Strings are
 * copied. */
typedef void (*runtime_found_cb)(int status, int found, void *data);
int runtime_client_id_recorded(runtime_t *rt, const char *key, const char *client_id,
                               runtime_found_cb cb, void *data);

/* Brings the conversations the store holds as active (at most
 * max_conversations of them) back into memory, reading them on the thread
 * pool from store_path (the database the runtime's store writes; a
 * connection of its own), so that their idle timeouts run after a restart
 * and an abandoned one is ended and recorded as such, not left active. The
 * daemon calls it once the first flowset is in force; the read waits until
 * the default environment has a set (production rebuilt from the store may
 * not have one yet; a close meanwhile ends it with CORE_ERR_CLOSED). Keys
 * already in memory (a turn got there first), and keys dropped from memory
 * after the call (their state read here may be older than the store's), are
 * left alone. The states are applied a slice at a time, the loop running
 * between slices. cb (may be NULL) runs once on the loop with the status
 * and how many were restored. Returns 0, or CORE_ERR_CLOSED,
 * CORE_ERR_NOT_FOUND without a store. */
typedef void (*runtime_restored_cb)(int status, size_t restored, void *data);
int runtime_restore_active(runtime_t *rt, const char *store_path, runtime_restored_cb cb,
                           void *data);

/* Lets conversations read back from the store (after a restart or an
 * eviction) keep the version set they were pinned to: when no set in memory
 * has the versions a conversation's saved state names, they are read from
 * store_path's flow_versions (a read connection of its own) and compiled on
 * the thread pool, the conversation's turns waiting meanwhile; conversations
 * pinned to the same versions share the compile. Without it (or when the
 * versions cannot be read or no longer compile) such a conversation goes on
 * on its environment's current set, its flow started again with
 * settings.messages.flow_changed. The daemon calls it once, before the first
 * turn. Loop thread. */
void runtime_pins_from_store(runtime_t *rt, const char *store_path);

/* ---- humans in the loop (runtime_handoff.c) ---- */

/* What an observer sees of each finished turn (all borrowed for the call). */
typedef struct runtime_observed_s {
    const runtime_turn_out_t *turn; /* the turn's output, as the done callback gets it */
    const char *conversation_id;    /* the store id of the conversation ("key" or "key#N") */
    const char *text;               /* the user's text after the input rails; "" when none */
    size_t len;                     /* bytes of text */
    brain_event_t event;            /* the turn's event */
    brain_status_t before;          /* the conversation's status before the turn */
    brain_channel_t channel;        /* the turn's channel */
} runtime_observed_t;
typedef void (*runtime_observer_cb)(const runtime_observed_t *o, void *data);

/* Sets the one observer called after every successful turn (internal turns
 * included), just before its done callback: how the human desk learns of
 * handoffs and of what a customer says while handed off. NULL removes it.
 * With an observer, a handed-off conversation's saved state stays active
 * (restored after a restart, still handed off) until a jump_end or jump turn
 * moves it on; without one it is saved inactive and the key starts afresh. */
void runtime_set_observer(runtime_t *rt, runtime_observer_cb cb, void *data);

/* 1 when flow/node name a node of the flowset in force, else 0. */
int runtime_node_exists(const runtime_t *rt, const char *flow, const char *node);

/* Ends every conversation whose idle deadline has passed by now_us, walking
 * the whole table (the sweep timer does this every sweep_interval_ms for
 * the conversations due then; exposed for tests and tools). */
void runtime_sweep(runtime_t *rt, int64_t now_us);

/* Shuts down: in-flight effects are aborted and every pending turn's callback
 * runs with CORE_ERR_CLOSED (from inside this call); the conversations are
 * freed; once every handle is closed (and a running load has finished),
 * the runtime is freed and closed(data) runs. Accepts NULL. */
void runtime_close(runtime_t *rt, runtime_closed_cb closed, void *data);

/* ---- versions and environments ------------------------------------------ */

#define RUNTIME_ENV_STAGING "staging"
#define RUNTIME_ENV_PRODUCTION "production"

/* One flow of an environment: the flow is the file's name without ".json";
 * the version is the first 12 hex digits of the content's SHA-256. */
typedef struct runtime_flow_file_s {
    const char *flow;
    const char *version; /* NULL: computed from content */
    const char *content; /* NULL in a change: remove the flow */
    size_t len;
    int stored; /* 1: read from the store's flow versions, so it has the row
                   and no diff is computed for it (a rollback's, a restore's) */
} runtime_flow_file_t;

/* Rebuilds env's set from stored contents (production at start, in
 * "promoted" mode): compiled on the thread pool, installed without being
 * recorded again. For staging it only sets the base the next load's diffs
 * and "new version" checks compare with (no compile; cb not called, returns
 * 0). Returns 0, CORE_ERR_INVALID (unknown env) or CORE_ERR_CLOSED. */
int runtime_env_restore(runtime_t *rt, const char *env, const runtime_flow_file_t *files, size_t n,
                        runtime_loaded_cb cb, void *data);

/* Changes some flows of env (content NULL removes one), compiles the new set
 * on the thread pool and installs it; the change is recorded (environment
 * rows and history, an audit row with actor and action, e.g. "rollback").
 * Conversations in progress finish on the set they started on. Returns 0 (cb
 * runs once) or CORE_ERR_INVALID / CORE_ERR_NOT_FOUND / CORE_ERR_CLOSED with
 * err filled. */
int runtime_env_apply(runtime_t *rt, const char *env, const runtime_flow_file_t *changes, size_t n,
                      const char *actor, const char *action, runtime_loaded_cb cb, void *data,
                      core_err_t *err);

/* Gives env `to` exactly the versions staging runs: of the named flows, or
 * (n == 0) of every flow, flows staging no longer has being removed. When
 * versions is not NULL, versions[i] must be what staging runs for flows[i]
 * (or, n == 0, versions is ignored): staging having moved on since the
 * caller tested answers CORE_ERR_EXISTS. Then as runtime_env_apply(). */
int runtime_env_promote(runtime_t *rt, const char *const *flows, const char *const *versions,
                        size_t n, const char *to, const char *actor, runtime_loaded_cb cb,
                        void *data, core_err_t *err);

/* What env runs: {"env","default":bool,"flowset_version":N,"flows":[{"flow",
 * "version","sha256"}],"rollout":{"id","flow","version","percent","ready"}|null},
 * or NULL for an unknown env. Owned by the caller. */
json_t *runtime_env_json(const runtime_t *rt, const char *env);
/* Borrows the file env runs for flow into out (valid until the env next
 * changes); CORE_ERR_NOT_FOUND when env or flow is unknown. */
int runtime_env_file(const runtime_t *rt, const char *env, const char *flow,
                     runtime_flow_file_t *out);
/* The default environment's name. */
const char *runtime_default_env(const runtime_t *rt);
/* env's flowset (borrowed), NULL for an unknown env or one with no flows. */
const brain_flowset_t *runtime_env_flowset(const runtime_t *rt, const char *env);

/* A line-based diff (longest common subsequence) of a against b in unified
 * form ("--- a", "+++ b", "@@ -l,n +l,n @@" hunks with 3 lines of context);
 * "" when they are equal. Owned by the caller. Any thread (runtime_diff.c). */
char *runtime_diff(const char *a, size_t alen, const char *b, size_t blen, const char *name_a,
                   const char *name_b);

/* ---- rollouts ------------------------------------------------------------- */

typedef struct runtime_rollout_s {
    const char *id;      /* rollout id: with the conversation key, picks the arm */
    const char *env;     /* NULL = the default environment */
    const char *flow;    /* the flow replaced in the candidate */
    const char *version; /* the candidate's version (recorded on its conversations) */
    const char *content; /* the candidate flow file */
    size_t len;
    unsigned percent; /* 0..100 of new conversations in env */
} runtime_rollout_t;

/* Builds the candidate set (env's set with flow replaced by content) on the
 * thread pool; once it is in (cb with rc 0), percent% of NEW conversations
 * of env start on it, chosen by a hash of (id, conversation key), so sticky
 * and reproducible; their store row has variant "candidate", the others of
 * env "control", and flow_version the version of the flow they run. One
 * rollout per env: CORE_ERR_EXISTS when one runs; CORE_ERR_INVALID for a bad
 * argument; a candidate that does not compile ends it (cb with the error
 * and its problems). A flows load that installs a new set in env while the
 * rollout runs rebuilds the candidate from that set (the load's files with
 * flow at the candidate's content): until it compiles, new conversations
 * all go to the control and a promotion is refused; if it does not build,
 * or the load removed flow, the rollout ends (event=rollout_rejected; cb,
 * when the start's compile was still running, gets the error). */
int runtime_rollout_start(runtime_t *rt, const runtime_rollout_t *r, runtime_loaded_cb cb,
                          void *data);
/* Rollout id in env (NULL = default): 1 its candidate serves, 0 it is being
 * compiled (started, or rebuilt after a load), CORE_ERR_NOT_FOUND when env
 * runs no such rollout (it ended, e.g. its rebuilt candidate did not build). */
int runtime_rollout_state(const runtime_t *rt, const char *env, const char *id);
/* Ends env's rollout for flow: promote = 1 makes the candidate env's set
 * (recorded like a promotion), 0 aborts it. Conversations already on either
 * arm finish where they are. CORE_ERR_NOT_FOUND when none runs;
 * CORE_ERR_BUSY for a promotion while the candidate compiles (the rollout
 * runs on). */
int runtime_rollout_stop(runtime_t *rt, const char *env, const char *flow, int promote);

/* Reads every *.json of dir (sorted by name) into sources (owned: free each
 * text and name, then the array with runtime_sources_free). Blocking. */
int runtime_flows_read(const char *dir, brain_source_t **sources, size_t *n, core_diags_t *diags);
void runtime_sources_free(brain_source_t *sources, size_t n);

/* Validates the flows directory (and guard_file, when not NULL) without
 * training: every problem goes to diags. Blocking: start-up checks and
 * tools only. Returns 0 or CORE_ERR_INVALID / CORE_ERR_IO. */
int runtime_flows_check(const char *flows_dir, const char *guard_file, core_diags_t *diags);

/* ---- hot reload (runtime_watch.c) ----------------------------------------
 * One coordinator per runtime funnels every reason to reload the flows (the
 * first load, SIGHUP, POST /v1/admin/flows/reload, and the flows directory
 * changing) into runtime_load(), one at a time: a request or change that
 * arrives during a load makes exactly one more load after it. The watcher
 * uses libuv fs events on the directory with a debounce (an editor's
 * write-temp-and-rename counts once) and a periodic rescan comparing names,
 * sizes, mtimes and, when those cannot be trusted, SHA-256 of the contents
 * (fs events are unreliable on some filesystems). An invalid set keeps the
 * version in force; every attempt is logged, counted in the
 * chorus_flows_reload* metrics (opts.metrics), audited (opts.store) and
 * kept for runtime_reload_status(). Loop thread only. */

typedef enum {
    RUNTIME_TRIGGER_START = 0, /* the daemon's first load */
    RUNTIME_TRIGGER_WATCH,     /* the flows directory changed */
    RUNTIME_TRIGGER_SIGHUP,
    RUNTIME_TRIGGER_API, /* POST /v1/admin/flows/reload, chorusctl flows reload */
} runtime_trigger_t;

const char *runtime_trigger_name(runtime_trigger_t t); /* "start", "watch", ... */

/* Every load's result, after the status is updated (trigger: what caused it). */
typedef void (*runtime_reloaded_cb)(runtime_t *rt, int rc, runtime_trigger_t trigger,
                                    const core_diags_t *diags, void *data);

typedef struct runtime_reload_options_s {
    int watch;                     /* 1: fs events and the periodic rescan */
    uint64_t debounce_ms;          /* quiet time after an fs event before looking */
    uint64_t rescan_interval_ms;   /* 0: no periodic rescan */
    runtime_reloaded_cb on_loaded; /* may be NULL */
    void *data;
} runtime_reload_options_t;

/* Starts the coordinator on rt (and the watcher if o->watch). Returns 0 or
 * CORE_ERR_BUSY (already started). A directory that cannot be watched is
 * logged; the rescan still covers it. */
int runtime_reload_start(runtime_t *rt, const runtime_reload_options_t *o, core_err_t *err);
/* Applies new watch options (SIGHUP); on_loaded and data are kept. */
void runtime_reload_configure(runtime_t *rt, const runtime_reload_options_t *o);

/* The result of one reload attempt: rc 0 (the new set is in force) or the
 * error; status is that attempt's JSON (borrowed for the call). */
typedef void (*runtime_reload_cb)(int rc, const json_t *attempt, void *data);

/* Asks for a reload; actor (copied, may be NULL) is audited. cb (may be
 * NULL) runs once on the loop with the result of the load that reads the
 * directory after this call, or CORE_ERR_CLOSED at shutdown. Returns 0, or
 * CORE_ERR_NOT_FOUND when the coordinator is not started, CORE_ERR_CLOSED. */
int runtime_reload(runtime_t *rt, runtime_trigger_t trigger, const char *actor,
                   runtime_reload_cb cb, void *data);

/* A new JSON object (docs/admin-api.md, GET /v1/admin/flows/status): the
 * version in force and the last attempt; NULL when not started. */
json_t *runtime_reload_status(const runtime_t *rt);

/* Stops watching and fails the requests still waiting with CORE_ERR_CLOSED;
 * call before runtime_close(). A load in flight finishes through
 * runtime_close(). Accepts a runtime without a coordinator. */
void runtime_reload_stop(runtime_t *rt);

#endif
