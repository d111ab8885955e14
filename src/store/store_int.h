/* store_int.h — shared inside src/store only: the batch's operations and the
 * backend vtable the writer thread and the read workers call. A second
 * backend (PostgreSQL through libpq) implements store__backend_t and
 * store__reader_t and is chosen by the path's scheme in store__backend_for();
 * nothing above the store changes. See docs/store.md. */
#ifndef CHORUS_STORE_INT_H
#define CHORUS_STORE_INT_H

#include <sqlite3.h>

#include "chorus/rollout.h"
#include "chorus/store.h"

typedef enum {
    STORE__OP_CONV_START,
    STORE__OP_TURN,
    STORE__OP_EVENT,
    STORE__OP_STATE,
    STORE__OP_CONV_END,
    STORE__OP_CSAT,
    STORE__OP_LABEL,
    STORE__OP_AUDIT,
    STORE__OP_FLOWS,   /* store_flows_batch.c */
    STORE__OP_TOKEN,   /* store_audit.c */
    STORE__OP_HANDOFF, /* store_handoffs.c */
    STORE__OP_HANDOFF_MESSAGE,
    STORE__OP_SMS_OPT, /* store_sms.c */
    STORE__OP_ROLLOUT, /* store_rollout_row.c */
} store__op_kind_t;

/* One operation; every string is owned (copied in store_batch_*: by the
 * batch's chunks for the kinds store_batch.c builds, one allocation each for
 * the others). The public structs are reused so the backends read named
 * fields. */
typedef struct store__op_s {
    store__op_kind_t kind;
    union {
        store_conv_start_t start;
        store_turn_t turn;
        store_event_t event;
        struct {
            const char *conversation_id, *state_json;
            int active;
            int64_t ts_us;
        } state;
        struct {
            const char *conversation_id, *outcome, *reason;
            int64_t ended_us;
        } end;
        struct {
            const char *conversation_id;
            int score;
            int64_t ts_us;
        } csat;
        struct {
            const char *conversation_id, *intent, *labeller;
            int64_t turn_seq, ts_us;
        } label;
        struct {
            const char *actor, *action, *target, *detail_json;
            int64_t ts_us;
        } audit;
        struct {
            int revoke; /* 0: create, 1: revoke */
            const char *name, *role, *sha256, *by;
            int64_t ts_us;
        } token;
        struct {
            int kind;   /* store_flows_batch.c's */
            void *rows; /* owned, freed by store__flows_dispose */
        } flows;
        store_handoff_t handoff;
        store_handoff_message_t handoff_message;
        struct {
            const char *from, *to;
            int opted_out;
            int64_t ts_us;
        } sms_opt;
        store_rollout_t rollout;
    } u;
} store__op_t;

/* store_report_agents.c: the KPI report's "agents" section for handoffs
 * that entered a queue in [from_us, to_us) (to_us 0: no bound). */
int store__report_agents(store_db_t *db, int64_t from_us, int64_t to_us, json_t **out,
                         core_err_t *err);
/* store_handoffs.c: frees a STORE__OP_HANDOFF or STORE__OP_HANDOFF_MESSAGE
 * op's strings. */
void store__handoff_dispose(store__op_t *op);

/* store_batch.c: a new zeroed operation of kind at the end of b (the one
 * way every store_batch_* call adds one). */
store__op_t *store__batch_push(store_batch_t *b, store__op_kind_t kind);

/* Where store_batch.c copies the strings of the operations it builds: one
 * allocation for a turn's batch instead of one per string. */
typedef struct store__chunk_s {
    struct store__chunk_s *next;
    size_t used, cap;
    char data[];
} store__chunk_t;

struct store_batch_s {
    store__op_t *ops; /* owned array */
    size_t len, cap;
    size_t turns;            /* STORE__OP_TURN ops */
    store__chunk_t *strings; /* owned; the current chunk first */
};

/* store_sms.c: runs / frees a STORE__OP_SMS_OPT op (writer thread). */
int store__sms_opt_run(sqlite3 *db, const store__op_t *op, core_err_t *err);
void store__sms_opt_dispose(store__op_t *op);

/* store_rollout_row.c: runs / frees a STORE__OP_ROLLOUT op (writer thread). */
int store__rollout_run(sqlite3 *db, const store__op_t *op, core_err_t *err);
void store__rollout_dispose(store__op_t *op);

/* store_flows_batch.c: runs / frees a STORE__OP_FLOWS op (writer thread). */
int store__flows_run(sqlite3 *db, const store__op_t *op, core_err_t *err);
void store__flows_dispose(store__op_t *op);

/* Writer-side operations. Called only on the writer thread, one connection
 * per store. apply() runs inside begin()/commit() and returns 0,
 * CORE_ERR_INVALID when the batch itself is bad, or CORE_ERR_IO when the
 * disk failed (the caller rolls the whole transaction back). With isolated
 * set the batch runs under its own savepoint and a bad one is rolled back
 * alone (the transaction goes on); without, a bad batch leaves the
 * transaction holding part of it and the caller must roll it all back. */
typedef struct store__backend_s {
    const char *name;
    int (*open)(const store_options_t *opt, void **conn, core_err_t *err);
    int (*begin)(void *conn, core_err_t *err);
    int (*apply)(void *conn, const store_batch_t *b, int isolated, core_err_t *err);
    int (*commit)(void *conn, core_err_t *err);
    void (*rollback)(void *conn);
    /* Drops transcript text, events and state of conversations ended before
     * text_before_us, and whole conversations ended before all_before_us. */
    int (*prune)(void *conn, int64_t text_before_us, int64_t all_before_us, int64_t *pruned,
                 core_err_t *err);
    /* A tiny write that tells whether the disk takes writes again. */
    int (*probe)(void *conn, core_err_t *err);
    void (*close)(void *conn);
} store__backend_t;

extern const store__backend_t store__sqlite_backend;

/* store_sqlite.c: SQLite's process-wide settings, once, before the writer
 * opens its connection: memory statistics off, the page-cache wrapper and
 * the WAL-buffering VFS below. They take effect only before SQLite is
 * initialised. */
void store__sqlite_configure(void);

/* store_walbuf.c: makes a VFS that sends each transaction's WAL frames in one
 * write() (instead of two per frame) the process's default; files other
 * than WALs pass through. Called once, by store__sqlite_configure. */
void store__walbuf_register(void);

/* store_pcache.c: wraps SQLite's page cache so that the truncate at each
 * commit returns at once when no page lies past the database's end, instead
 * of walking the cache's whole hash table as it did from the b-tree's first
 * page swap on. Same pages cached. Called once, by store__sqlite_configure,
 * before SQLite is initialised. */
void store__pcache_register(void);
/* Truncates the wrapper answered without pcache1 since the process began. */
unsigned long store__pcache_skipped(void);

/* store_audit.c: runs a STORE__OP_AUDIT (chained insert) or STORE__OP_TOKEN
 * op on the writer's connection; 0, CORE_ERR_INVALID or CORE_ERR_IO. */
int store__audit_run(sqlite3 *db, const store__op_t *op, core_err_t *err);

/* The read side: store_db_t wraps one read connection. */
struct store_db_s {
    sqlite3 *db;
    char *path;
};

/* Opens path with the pragmas every connection needs (WAL, foreign keys,
 * busy timeout) and, when writable, creates or upgrades the schema. */
int store__sqlite_open(const char *path, int writable, int synchronous_full, sqlite3 **out,
                       core_err_t *err);
/* Applies every migration newer than the database's version, each in its own
 * transaction, recording it in schema_migrations; refuses a newer database. */
int store__migrate(sqlite3 *db, core_err_t *err);
/* The same, stopping after migration upto (tests build older databases). */
int store__migrate_upto(sqlite3 *db, int upto, core_err_t *err);
/* The version recorded in the database (0 when empty). */
int store__schema_version(sqlite3 *db, int *version, core_err_t *err);
/* Translates a SQLite result code: FULL/IOERR/CANTOPEN/BUSY/LOCKED/NOMEM ->
 * CORE_ERR_IO, CONSTRAINT/MISMATCH/RANGE -> CORE_ERR_INVALID, others
 * CORE_ERR_INTERNAL; fills err with the connection's message. */
int store__sqlite_err(sqlite3 *db, int rc, core_err_t *err, const char *what);

/* The checkpointer (store_checkpoint.c): a thread with its own connection
 * that runs PASSIVE checkpoints when the writer's WAL reaches frames, so
 * commits never wait for one. Returns NULL for :memory: or when it cannot
 * start (SQLite's automatic checkpoint then stays on). Stop it before
 * closing the writer's connection. */
typedef struct store__ckpt_s store__ckpt_t;
store__ckpt_t *store__ckpt_start(sqlite3 *writer, const char *path, int frames,
                                 int synchronous_full);
void store__ckpt_stop(store__ckpt_t *c, sqlite3 *writer);
/* Writer thread, after a commit failed: no idle checkpoint until a commit
 * succeeds again. On a full disk a checkpoint would only move the shortage
 * (the database grows by what the WAL holds, and the WAL cannot start over
 * until that copy completes), where the WAL takes new frames as soon as
 * space is freed. c may be NULL. */
void store__ckpt_write_failed(store__ckpt_t *c);
uint64_t store__ckpt_runs(store__ckpt_t *c);

/* Writer/pool plumbing shared by store_writer.c and store_async.c. */
store_db_t *store__reader_get(store_t *s, core_err_t *err);
void store__reader_put(store_t *s, store_db_t *db);
uv_loop_t *store__loop(store_t *s);
/* Tests only: while paused the writer leaves jobs queued (to fill the queue
 * or to make one group of everything queued). */
void store__pause(store_t *s, int paused);
/* Counts thread-pool reads in flight so store_close() frees the store only
 * after the last one completed (loop thread). */
void store__inflight(store_t *s, int delta);

#endif
