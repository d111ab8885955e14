/* runtime_int.h — shared between the files of src/runtime: the runtime
 * object, the conversation table and a turn in flight. Loop thread only. */
#ifndef CHORUS_RUNTIME_INT_H
#define CHORUS_RUNTIME_INT_H

#include "chorus/brain.h"
#include "chorus/net_client.h"
#include "chorus/runtime.h"

typedef struct rt_conv_s rt_conv_t;
typedef struct rt_turn_s rt_turn_t;
typedef struct rt_ver_s rt_ver_t;   /* runtime_envs.h */
typedef struct rt_envs_s rt_envs_t; /* runtime_envs.h */

/* One conversation: its key, the flowset it is on, the brain's live state and
 * the turns waiting behind the one in flight. */
struct rt_conv_s {
    rt_conv_t *hnext;    /* hash chain */
    rt_conv_t *dnext;    /* due list of its check tick (runtime_due.c) */
    rt_conv_t **dpprev;  /* the pointer to it in that list; NULL when on none */
    uint64_t due_tick;   /* the tick it is next checked at, when on a due list */
    brain_flowset_t *fs; /* reference held: the version state refers to */
    rt_ver_t *ver;       /* reference held: fs with the files it was built from (pinned) */
    uint8_t env;         /* environment index (runtime_envs.h) */
    uint8_t variant;     /* RT_VARIANT_*: rollout arm the conversation is on */
    rt_turn_t *running;  /* the turn in flight, NULL when idle */
    rt_turn_t *qhead;    /* turns waiting, FIFO */
    rt_turn_t *qtail;
    uint32_t queued; /* length of the queue */
    uint32_t hash;   /* of key */
    uint32_t seq;    /* transcript rows written so far (store seq numbers) */
    uint8_t loading; /* its saved state is being read from the store */
    uint8_t stored;  /* its start row is in the store */
    uint32_t gen;    /* conversations the key had before this one (0: the id is the key) */
    uint32_t mem;    /* brain_conv_memory() when last accounted (table bytes) */
    brain_conv_t state;
    guard_bucket_t bucket;  /* the conversation's rate limit (guard.h) */
    policy_state_t *policy; /* owned escalation counters, allocated at the first message */
    char key[];             /* NUL-terminated */
};

/* Conversations are also filed by the tick at which the idle sweep next
 * looks at them (a timing wheel of RT_DUE_SLOTS lists), so that a tick
 * costs what is due rather than a walk of the table. Ticks are abstract
 * here; the runtime maps time to them. Every filed conversation's tick is
 * in [next_tick, next_tick + RT_DUE_SLOTS): a slot holds one tick's. */
#define RT_DUE_SLOTS 4096

typedef struct rt_table_s {
    rt_conv_t **buckets; /* owned array of chains */
    size_t n_buckets;    /* power of two */
    size_t len;          /* conversations */
    size_t bytes;        /* memory the conversations hold: entries, keys, states */
    rt_conv_t **due;     /* owned: RT_DUE_SLOTS lists, by tick modulo the count */
    uint64_t next_tick;  /* the first tick not yet swept */
} rt_table_t;

void rt_table_init(rt_table_t *t);
void rt_table_dispose(rt_table_t *t); /* frees every conversation */
rt_conv_t *rt_table_find(rt_table_t *t, const char *key);
/* Creates the entry (state left zeroed for the caller to init). */
rt_conv_t *rt_table_add(rt_table_t *t, const char *key);
void rt_table_remove(rt_table_t *t, rt_conv_t *c); /* frees c */
/* Re-measures c's state after it changed (a turn, a restore), keeping
 * t->bytes exact without walking the table. */
void rt_table_account(rt_table_t *t, rt_conv_t *c);
/* Calls fn on every conversation; fn may remove the one it is given, and
 * stops the walk by returning nonzero (then so does the walk). */
typedef int (*rt_visit_fn)(rt_conv_t *c, void *arg);
int rt_table_each(rt_table_t *t, rt_visit_fn fn, void *arg);
/* The same over buckets [from, to) only (clamped): an incremental walk. */
int rt_table_each_range(rt_table_t *t, size_t from, size_t to, rt_visit_fn fn, void *arg);
/* The same over `count` buckets from bucket `from` (taken modulo the size),
 * wrapping past the last bucket to the first; never a bucket twice. */
int rt_table_each_from(rt_table_t *t, size_t from, size_t count, rt_visit_fn fn, void *arg);
void rt_conv_free(rt_conv_t *c);

/* runtime_due.c: the due lists. rt_due_set files c (moving it if filed)
 * under `tick`, clamped into [next_tick, next_tick + RT_DUE_SLOTS - 1].
 * rt_due_unlink takes it off its list (no-op when on none). rt_due_pop
 * unlinks and returns a conversation filed at or before `now_tick`, moving
 * next_tick past the ticks it empties; NULL when none is due. The caller
 * files it again at a tick after now_tick, or removes it. */
void rt_due_set(rt_table_t *t, rt_conv_t *c, uint64_t tick);
void rt_due_unlink(rt_conv_t *c);
rt_conv_t *rt_due_pop(rt_table_t *t, uint64_t now_tick);

/* Per-sender rate buckets (runtime_senders.c): a bounded map that forgets the
 * least recently seen sender of a full window. Returns NULL for no sender;
 * the pointer is valid until the next call. */
typedef struct rt_senders_s rt_senders_t;
guard_bucket_t *rt_senders_get(rt_senders_t **map, const char *sender);
void rt_senders_free(rt_senders_t *m);

/* A turn from runtime_turn() to its callback. */
struct rt_turn_s {
    runtime_t *rt;
    rt_conv_t *conv;  /* the conversation; cleared if it is freed under us */
    rt_turn_t *next;  /* conversation queue / runtime ready list */
    rt_turn_t *anext; /* runtime's list of every turn alive (for close) */
    rt_turn_t *aprev;
    runtime_done_cb done; /* NULL for internal turns (idle timeout) */
    void *data;
    char *text;   /* owned copy of the input text */
    char *intent; /* owned copy, may be NULL */
    brain_input_t in;
    brain_out_t out;
    uint64_t start_us;       /* runtime_turn() */
    uint64_t run_us;         /* left the queue */
    unsigned effects;        /* attempts performed */
    unsigned calls;          /* effects begun (their first attempts): the ordinal of each */
    unsigned attempt;        /* of the current effect, 0-based */
    net_client_xfer_t *xfer; /* the transfer in flight, NULL when none */
    uv_timer_t backoff;      /* waits between attempts */
    int backoff_active;      /* the timer is initialised (must be closed) */
    uint64_t effect_start_us;
    uint8_t channel;       /* brain_channel_t of the input */
    uint8_t durable_wait;  /* its batch is with the store; freed by the store's callback */
    uint8_t has_saved;     /* saved holds the pre-turn state (store rollback) */
    uint8_t n_fx;          /* effects recorded in fx */
    brain_conv_t saved;    /* the conversation before the turn */
    uint32_t seq_before;   /* conv->seq before the turn (also names its effects' keys) */
    uint32_t gen_before;   /* conv->gen before the turn */
    char *conv_id;         /* owned: the store id its rows go under (rt_store_commit) */
    char *adapter_version; /* owned copy, may be NULL */
    char *input_detail;    /* owned copy of in->input_detail, may be NULL */
    char *sender;          /* owned copy, may be NULL */
    char *client_id;       /* owned copy of in->client_id, may be NULL */
    char *start_detail;    /* owned copy of in->start_detail, may be NULL */
    char *jump;            /* owned "flow\0node" to resume at (runtime_handoff.c), or NULL */
    uint8_t jump_end;      /* the turn ends a handed-off conversation */
    uint8_t released;      /* the jump gave a handed-off conversation back to the bot */
    uint8_t status_before; /* brain_status_t of the conversation when the turn ran */
    int tokens_in;         /* LLM usage during the turn */
    int tokens_out;
    const char *fail_kind; /* "action" | "llm" when an effect failed, "step_limit" when
                              the brain stopped a turn that ran too long, else NULL */
    struct {
        uint8_t kind;     /* brain_effect_kind_t */
        const char *node; /* borrowed from the flowset */
        int status;       /* HTTP status, 0 when none */
        int error;        /* 0 or the effect's error */
        uint32_t ms;      /* latency */
    } fx[4];              /* the first effects of the turn, for the store's events */
};

struct runtime_s {
    uv_loop_t *loop;
    runtime_options_t opts; /* strings below are owned copies */
    char *flows_dir;
    char *data_dir;
    char *guard_file;
    struct rt_senders_s *senders; /* per-sender rate buckets, created on first use */
    brain_flowset_t *fs;          /* the default environment's; NULL until loaded */
    rt_envs_t *envs;              /* environments, their versions and rollouts */
    int jobs;                     /* compiles other than runtime_load() on the pool */
    uint32_t next_version;
    net_client_t *http;
    rt_table_t table;
    rt_turn_t *ready_head; /* turns to run on the next idle tick */
    rt_turn_t *ready_tail;
    rt_turn_t *alive;         /* every turn not yet finished */
    uv_idle_t kick;           /* runs the ready list outside the caller's stack */
    uv_timer_t sweep;         /* idle timeouts: ticks of the table's due lists */
    uint64_t sweep_origin_ms; /* uv_now() at tick 0 */
    size_t evict_cursor;      /* next bucket the eviction scan looks at */
    int64_t ref_secs;         /* the second ref_date was computed for (-1: none) */
    ent_ctx_t ref_date;       /* local date and time of ref_secs: most turns share a second */
    int open_handles;         /* handles not yet closed */
    int store_pending;        /* state loads and batches the store still owes a callback */
    int loading;              /* a load is on the thread pool */
    int closing;
    int http_open; /* net_client not yet closed */
    runtime_closed_cb closed;
    void *closed_data;
    runtime_stats_t stats;
    runtime_observer_cb observer; /* runtime_set_observer() */
    void *observer_data;
    /* Start-up restores (runtime_restore.c) from queued to last state applied,
     * and the keys dropped from memory meanwhile (an object used as a set;
     * NULL when none is pending): the states a restore read may be older
     * than what those conversations did since. */
    int restoring;
    json_t *restore_seen;
    /* Restores asked for before the default environment had a set: they
     * start once it has one (rt_env_install) or end at the close, through
     * restore_poke (a hook, so that what links the turn pipeline alone does
     * not pull in the store's readers). */
    struct restore_work_s *restore_deferred;
    void (*restore_poke)(runtime_t *rt);
    /* Conversations read back pinned to a version set no longer in memory
     * (runtime_pin.c): set by runtime_pins_from_store() (a hook, for the
     * same reason as restore_poke), NULL without, when such a conversation
     * goes on on its environment's current set, its flow started again.
     * pin_load returns 0 when conv waits (loading) for its set to compile,
     * which then applies brain (the saved brain state, copied) and calls
     * rt_conv_loaded(); an error when it cannot (conv untouched). */
    int (*pin_load)(runtime_t *rt, rt_conv_t *conv, const json_t *pin, const char *brain);
    char *pin_store_path;      /* owned: the database the versions are read from */
    struct pin_job_s *pinning; /* the compiles under way, each with the conversations it holds */
};

/* runtime_effect.c: performs t->out.effect and resumes the brain (via
 * rt_turn_resume) exactly once. */
void rt_effect_start(rt_turn_t *t);
/* runtime_turn.c: continue a turn after an effect with its result. */
void rt_turn_resume(rt_turn_t *t, const brain_effect_result_t *res);
/* Ends a turn with an error (shutdown). */
void rt_turn_fail(rt_turn_t *t, int error, const char *msg);
/* The idle sweep's timer callback (runtime_turn.c), started by runtime_new(). */
void rt_on_sweep(uv_timer_t *h);
/* runtime_turn.c: a handle of the runtime closed. */
void rt_handle_closed(uv_handle_t *h);
void rt_maybe_free(runtime_t *rt);

/* runtime_store.c: reads conv's saved state before its first turn; the
 * queued turns start when it arrives (rt_conv_loaded). Returns 0 or an error
 * (then conv is not loading). */
int rt_store_load(runtime_t *rt, rt_conv_t *conv);
/* Applies a saved state (the store's JSON text) to conv: its row counter,
 * and when active the brain's state, the environment (and rollout arm) it
 * was saved in and the version set it was pinned to. Returns 0; 1 when
 * that set is compiling (conv is loading: the compile applies the brain's
 * state and calls rt_conv_loaded()); or -1 when it is unreadable (logged;
 * conv is then a new conversation). */
int rt_store_apply(runtime_t *rt, rt_conv_t *conv, const char *text, int active);
/* The saved brain state (JSON text) onto conv's set; lost: the set is not
 * the one it was pinned to, and its flow starts again (brain_conv_lose_place).
 * Returns 0 or -1 as rt_store_apply(). */
int rt_store_apply_brain(rt_conv_t *conv, const char *brain, int lost);
/* Sends t's rows as one batch; rt_turn_durable(t, status) runs when the
 * store answers. Returns 0, or an error (nothing was sent). */
int rt_store_commit(rt_turn_t *t);
/* runtime_turn.c: removes conv from the table (freed), noting its key
 * while a start-up restore is pending (runtime_int.h, restore_seen). */
void rt_conv_drop(runtime_t *rt, rt_conv_t *conv);
/* runtime_turn.c: the store answered for t's batch (CORE_ERR_INVALID: a
 * refusal for good, the conversation leaves memory). */
void rt_turn_durable(rt_turn_t *t, int status);
/* runtime_turn.c: conv's saved state was applied (status 0) or could not be
 * read (status < 0: its queued turns fail with CORE_ERR_BUSY). */
void rt_conv_loaded(runtime_t *rt, rt_conv_t *conv, int status);

/* runtime_handoff.c: copies in's jump fields into t; applies t's jump to its
 * conversation before the brain runs; tells the observer about a finished
 * turn. */
void rt_handoff_init(rt_turn_t *t, const runtime_turn_in_t *in);
void rt_handoff_jump(rt_turn_t *t);
void rt_handoff_observe(rt_turn_t *t, const runtime_turn_out_t *o);

#endif
