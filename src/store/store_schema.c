/* Schema and migrations. Each migration has a number, a description and its
 * SQL; applying one records it in schema_migrations in the same transaction,
 * so a crash leaves the database at one version or the next, never between.
 * A database whose highest recorded version is above STORE_SCHEMA_VERSION
 * was written by a newer chorus and is refused rather than misread. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

typedef struct {
    int version;
    const char *description;
    const char *sql;
    /* The migration rebuilds a table that others reference: it runs with
     * foreign keys off (or dropping the old table would cascade into its
     * children) and commits only if a foreign-key check finds nothing. */
    int rebuilds;
} migration_t;

static const migration_t migrations[] = {
    {1, "conversations, turns, events, state, labels, audit",
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
     "CREATE TABLE conversations ("
     " id TEXT PRIMARY KEY,"
     " channel TEXT NOT NULL,"
     " flow TEXT NOT NULL,"
     " flow_version TEXT NOT NULL DEFAULT '',"
     " variant TEXT NOT NULL DEFAULT '',"
     " adapter_version TEXT,"
     " started_us INTEGER NOT NULL,"
     " ended_us INTEGER,"
     " outcome TEXT NOT NULL DEFAULT 'active' CHECK (outcome IN"
     "  ('active','contained','escalated','abandoned','error')),"
     " escalation_reason TEXT,"
     " csat INTEGER CHECK (csat BETWEEN 1 AND 5),"
     " csat_us INTEGER,"
     " pruned INTEGER NOT NULL DEFAULT 0) STRICT;"
     "CREATE INDEX conversations_started ON conversations(started_us);"
     "CREATE INDEX conversations_ended ON conversations(ended_us) WHERE ended_us IS NOT NULL;"
     "CREATE TABLE turns ("
     " id INTEGER PRIMARY KEY,"
     " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
     " seq INTEGER NOT NULL,"
     " direction TEXT NOT NULL CHECK (direction IN ('in','out')),"
     " ts_us INTEGER NOT NULL,"
     " text TEXT,"
     " intent TEXT,"
     " confidence REAL CHECK (confidence BETWEEN 0 AND 1),"
     " oos INTEGER NOT NULL DEFAULT 0 CHECK (oos IN (0,1)),"
     " node TEXT,"
     " latency_us INTEGER,"
     " guard TEXT,"
     " tokens_in INTEGER NOT NULL DEFAULT 0,"
     " tokens_out INTEGER NOT NULL DEFAULT 0,"
     " error TEXT,"
     " channel TEXT NOT NULL,"
     " adapter_version TEXT,"
     " UNIQUE (conversation_id, seq)) STRICT;"
     "CREATE TABLE events ("
     " id INTEGER PRIMARY KEY,"
     " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
     " turn_seq INTEGER,"
     " ts_us INTEGER NOT NULL,"
     " kind TEXT NOT NULL,"
     " name TEXT,"
     " status TEXT,"
     " duration_us INTEGER,"
     " detail TEXT) STRICT;"
     "CREATE INDEX events_conversation ON events(conversation_id, turn_seq);"
     "CREATE TABLE conversation_state ("
     " conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,"
     " state TEXT NOT NULL,"
     " active INTEGER NOT NULL CHECK (active IN (0,1)),"
     " updated_us INTEGER NOT NULL) STRICT;"
     "CREATE INDEX conversation_state_active ON conversation_state(active) WHERE active = 1;"
     "CREATE TABLE labels ("
     " turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,"
     " intent TEXT NOT NULL,"
     " labeller TEXT,"
     " labelled_us INTEGER NOT NULL) STRICT;"
     "CREATE TABLE audit ("
     " id INTEGER PRIMARY KEY,"
     " ts_us INTEGER NOT NULL,"
     " actor TEXT NOT NULL,"
     " action TEXT NOT NULL,"
     " target TEXT,"
     " detail TEXT) STRICT;"
     "CREATE TRIGGER audit_append_only_u BEFORE UPDATE ON audit"
     " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
     "CREATE TRIGGER audit_append_only_d BEFORE DELETE ON audit"
     " BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
     0},
    {2, "audit chain (prev_hash, hash) and admin tokens",
     "ALTER TABLE audit ADD COLUMN prev_hash TEXT;"
     "ALTER TABLE audit ADD COLUMN hash TEXT;"
     "CREATE INDEX audit_ts ON audit(ts_us);"
     "CREATE TABLE tokens ("
     " name TEXT PRIMARY KEY,"
     " role TEXT NOT NULL CHECK (role IN ('viewer','operator','admin','agent')),"
     " sha256 TEXT NOT NULL UNIQUE,"
     " created_us INTEGER NOT NULL,"
     " created_by TEXT NOT NULL,"
     " revoked_us INTEGER) STRICT;",
     0},
    {3, "flow versions and environments",
     /* every version of every flow ever loaded, by content hash */
     "CREATE TABLE flow_versions ("
     " flow TEXT NOT NULL,"
     " version TEXT NOT NULL,"
     " sha256 TEXT NOT NULL,"
     " content TEXT NOT NULL,"
     " author TEXT NOT NULL,"
     " created_us INTEGER NOT NULL,"
     " prev_version TEXT,"
     " diff TEXT,"
     " PRIMARY KEY (flow, version)) STRICT;"
     "CREATE INDEX flow_versions_created ON flow_versions(flow, created_us);"
     /* what each environment runs now, and every change to it */
     "CREATE TABLE environment_flows ("
     " env TEXT NOT NULL,"
     " flow TEXT NOT NULL,"
     " version TEXT NOT NULL,"
     " set_by TEXT NOT NULL,"
     " set_us INTEGER NOT NULL,"
     " PRIMARY KEY (env, flow)) STRICT;"
     "CREATE TABLE environment_history ("
     " id INTEGER PRIMARY KEY,"
     " env TEXT NOT NULL,"
     " flow TEXT NOT NULL,"
     " version TEXT,"
     " previous TEXT,"
     " set_by TEXT NOT NULL,"
     " action TEXT NOT NULL,"
     " set_us INTEGER NOT NULL) STRICT;"
     "CREATE INDEX environment_history_flow ON environment_history(env, flow, id);",
     0},
    {4, "rollouts",
     "CREATE TABLE rollouts ("
     " id TEXT PRIMARY KEY,"
     " env TEXT NOT NULL,"
     " flow TEXT NOT NULL,"
     " candidate_version TEXT NOT NULL,"
     " control_version TEXT NOT NULL DEFAULT '',"
     " percent INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),"
     " status TEXT NOT NULL CHECK (status IN ('running','promoted','aborted','rolled_back')),"
     " started_us INTEGER NOT NULL,"
     " started_by TEXT NOT NULL,"
     " ended_us INTEGER,"
     " ended_by TEXT,"
     " reason TEXT) STRICT;"
     "CREATE INDEX rollouts_flow ON rollouts(flow, started_us);"
     /* at most one running rollout per flow and environment */
     "CREATE UNIQUE INDEX rollouts_running ON rollouts(env, flow) WHERE status = 'running';",
     0},
    {5, "agent queues and handoffs",
     /* one row per handoff: the human desk's queue state, kept across restarts */
     "CREATE TABLE handoffs ("
     " conversation_id TEXT PRIMARY KEY,"
     " key TEXT NOT NULL,"
     " queue TEXT NOT NULL,"
     " channel TEXT NOT NULL,"
     " reason TEXT NOT NULL DEFAULT '',"
     " state TEXT NOT NULL CHECK (state IN"
     "  ('waiting','claimed','released','closed','abandoned')),"
     " agent TEXT,"
     " disposition TEXT,"
     " release_outcome TEXT,"
     " entered_us INTEGER NOT NULL,"
     " claimed_us INTEGER,"
     " done_us INTEGER,"
     " detail TEXT NOT NULL DEFAULT '{}',"
     " updated_us INTEGER NOT NULL) STRICT;"
     "CREATE INDEX handoffs_open ON handoffs(state) WHERE state IN ('waiting','claimed');"
     "CREATE INDEX handoffs_entered ON handoffs(entered_us);",
     0},
    {6, "SMS opt-outs",
     /* the last STOP or START of each (From, To) pair: a restart never forgets a STOP */
     "CREATE TABLE sms_opt_outs ("
     " from_number TEXT NOT NULL,"
     " to_number TEXT NOT NULL,"
     " opted_out INTEGER NOT NULL CHECK (opted_out IN (0,1)),"
     " updated_us INTEGER NOT NULL,"
     " PRIMARY KEY (from_number, to_number)) STRICT;",
     0},
    {7, "handoff messages as rows",
     /* a handoff's messages, one row each, where migration 5 kept them in
      * the handoff's detail JSON and rewrote them all with every message;
      * those already written move here (numbered from 1 in their order)
      * and leave the detail */
     "CREATE TABLE handoff_messages ("
     " conversation_id TEXT NOT NULL,"
     " handoff_id TEXT NOT NULL,"
     " seq INTEGER NOT NULL,"
     " sender TEXT NOT NULL,"
     " agent TEXT,"
     " text TEXT NOT NULL,"
     " ts_us INTEGER NOT NULL,"
     " PRIMARY KEY (conversation_id, handoff_id, seq)) STRICT;"
     "INSERT INTO handoff_messages (conversation_id, handoff_id, seq, sender, agent, text, ts_us)"
     " SELECT h.conversation_id, json_extract(h.detail, '$.id'), m.key + 1,"
     "  coalesce(json_extract(m.value, '$.from'), 'system'), json_extract(m.value, '$.agent'),"
     "  coalesce(json_extract(m.value, '$.text'), ''),"
     "  coalesce(json_extract(m.value, '$.ts_us'), 0)"
     " FROM handoffs h, json_each(h.detail, '$.messages') m"
     " WHERE json_valid(h.detail) AND json_type(h.detail, '$.id') = 'text'"
     "  AND json_type(h.detail, '$.messages') = 'array' AND m.type = 'object';"
     "UPDATE handoffs SET detail = json_remove(detail, '$.messages')"
     " WHERE json_valid(detail) AND json_type(detail, '$.id') = 'text'"
     "  AND json_type(detail, '$.messages') = 'array';",
     0},
    {8, "conversations and handoffs checked without IN lists",
     /* The same tables, columns, rows and rules. SQLite checks a CHECK's
      * `x IN (five values)` by building a temporary b-tree of the values
      * for every statement that writes the row: about 30,000 instructions,
      * many times the insert or update itself. A chain of comparisons
      * checks the same thing in a few dozen. */
     "CREATE TABLE conversations_new ("
     " id TEXT PRIMARY KEY,"
     " channel TEXT NOT NULL,"
     " flow TEXT NOT NULL,"
     " flow_version TEXT NOT NULL DEFAULT '',"
     " variant TEXT NOT NULL DEFAULT '',"
     " adapter_version TEXT,"
     " started_us INTEGER NOT NULL,"
     " ended_us INTEGER,"
     " outcome TEXT NOT NULL DEFAULT 'active' CHECK (outcome = 'active'"
     "  OR outcome = 'contained' OR outcome = 'escalated' OR outcome = 'abandoned'"
     "  OR outcome = 'error'),"
     " escalation_reason TEXT,"
     " csat INTEGER CHECK (csat BETWEEN 1 AND 5),"
     " csat_us INTEGER,"
     " pruned INTEGER NOT NULL DEFAULT 0) STRICT;"
     "INSERT INTO conversations_new (id, channel, flow, flow_version, variant, adapter_version,"
     " started_us, ended_us, outcome, escalation_reason, csat, csat_us, pruned)"
     " SELECT id, channel, flow, flow_version, variant, adapter_version, started_us, ended_us,"
     "  outcome, escalation_reason, csat, csat_us, pruned FROM conversations;"
     "DROP TABLE conversations;"
     "ALTER TABLE conversations_new RENAME TO conversations;"
     "CREATE INDEX conversations_started ON conversations(started_us);"
     "CREATE INDEX conversations_ended ON conversations(ended_us) WHERE ended_us IS NOT NULL;"
     "CREATE TABLE handoffs_new ("
     " conversation_id TEXT PRIMARY KEY,"
     " key TEXT NOT NULL,"
     " queue TEXT NOT NULL,"
     " channel TEXT NOT NULL,"
     " reason TEXT NOT NULL DEFAULT '',"
     " state TEXT NOT NULL CHECK (state = 'waiting' OR state = 'claimed'"
     "  OR state = 'released' OR state = 'closed' OR state = 'abandoned'),"
     " agent TEXT,"
     " disposition TEXT,"
     " release_outcome TEXT,"
     " entered_us INTEGER NOT NULL,"
     " claimed_us INTEGER,"
     " done_us INTEGER,"
     " detail TEXT NOT NULL DEFAULT '{}',"
     " updated_us INTEGER NOT NULL) STRICT;"
     "INSERT INTO handoffs_new (conversation_id, key, queue, channel, reason, state, agent,"
     " disposition, release_outcome, entered_us, claimed_us, done_us, detail, updated_us)"
     " SELECT conversation_id, key, queue, channel, reason, state, agent, disposition,"
     "  release_outcome, entered_us, claimed_us, done_us, detail, updated_us FROM handoffs;"
     "DROP TABLE handoffs;"
     "ALTER TABLE handoffs_new RENAME TO handoffs;"
     "CREATE INDEX handoffs_open ON handoffs(state) WHERE state IN ('waiting','claimed');"
     "CREATE INDEX handoffs_entered ON handoffs(entered_us);",
     1},
    {9, "the client's id of a user message",
     /* a chat client's id of its message (WebSocket id, REST Idempotency-Key)
      * kept with its turn so that, after a restart, a message sent again is
      * known to have run */
     "ALTER TABLE turns ADD COLUMN client_id TEXT;", 0},
    {10, "the audit rows from before the chain, fixed",
     /* the last row written before the hash chain (schema 1): a row without
      * hash above it is one inserted behind the store's back, not an old
      * one (store_db_audit_verify); 0 when there is none */
     "INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_legacy_max', CAST((SELECT"
     " coalesce(max(id), 0) FROM audit WHERE hash IS NULL AND id < coalesce((SELECT min(id)"
     " FROM audit WHERE hash IS NOT NULL), 9223372036854775807)) AS TEXT));",
     0},
    {11, "earlier handoffs of a conversation",
     /* handoffs holds a conversation's current handoff; when the same
      * conversation is handed over again (after a release to the bot), the
      * earlier one moves here, so the report counts both */
     "CREATE TABLE handoffs_past ("
     " conversation_id TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " queue TEXT NOT NULL,"
     " channel TEXT NOT NULL,"
     " reason TEXT NOT NULL DEFAULT '',"
     " state TEXT NOT NULL,"
     " agent TEXT,"
     " disposition TEXT,"
     " release_outcome TEXT,"
     " entered_us INTEGER NOT NULL,"
     " claimed_us INTEGER,"
     " done_us INTEGER,"
     " detail TEXT NOT NULL DEFAULT '{}',"
     " updated_us INTEGER NOT NULL) STRICT;"
     "CREATE INDEX handoffs_past_conversation ON handoffs_past(conversation_id);"
     "CREATE INDEX handoffs_past_entered ON handoffs_past(entered_us);",
     0},
    {12, "turns found by the client's id of their message",
     /* a channel asks, before a message runs, whether a turn of it is
      * stored already: Twilio retries an SMS webhook whose answer a restart
      * lost, with the same MessageSid (store_db_client_id_recorded); only
      * rows that carry an id are indexed */
     "CREATE INDEX turns_client_id ON turns(client_id) WHERE client_id IS NOT NULL;", 0},
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int store__sqlite_err(sqlite3 *db, int rc, core_err_t *err, const char *what)
{
    int code;
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
        code = CORE_ERR_IO;
        break;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        code = CORE_ERR_INVALID;
        break;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        code = CORE_ERR_UNSUPPORTED;
        break;
    default:
        code = CORE_ERR_INTERNAL;
    }
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return core_err_set(err, code, "%s: %s (sqlite %d)", what, msg, rc);
}

int store__schema_version(sqlite3 *db, int *version, core_err_t *err)
{
    sqlite3_stmt *st = NULL;
    *version = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                                "name='schema_migrations'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, "reading the schema");
    int exists = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (!exists)
        return 0;
    rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, "reading schema_migrations");
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int exec(sqlite3 *db, const char *sql, core_err_t *err, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__sqlite_err(db, rc, err, what);
}

/* Fails (naming the first offending row) when a row refers to a missing one. */
static int foreign_key_check(sqlite3 *db, core_err_t *err, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, what);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = core_err_set(err, CORE_ERR_INVALID, "%s: row %lld of %s refers to a missing row of %s",
                          what, (long long)sqlite3_column_int64(st, 1),
                          (const char *)sqlite3_column_text(st, 0),
                          (const char *)sqlite3_column_text(st, 2));
    else
        rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db, rc, err, what);
    sqlite3_finalize(st);
    return rc;
}

static int apply_sql(sqlite3 *db, const migration_t *m, core_err_t *err, const char *what)
{
    int rc = exec(db, "BEGIN IMMEDIATE", err, what);
    if (rc != 0)
        return rc;
    if ((rc = exec(db, m->sql, err, what)) != 0)
        goto fail;
    if (m->rebuilds && (rc = foreign_key_check(db, err, what)) != 0)
        goto fail;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(
        db, "INSERT INTO schema_migrations (version, applied_us, description) VALUES (?,?,?)", -1,
        &st, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_int64(st, 2, core_wall_us());
        sqlite3_bind_text(st, 3, m->description, -1, SQLITE_STATIC);
        src = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(st);
    if (src != SQLITE_OK) {
        rc = store__sqlite_err(db, src, err, what);
        goto fail;
    }
    char pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
    if ((rc = exec(db, pragma, err, what)) != 0 || (rc = exec(db, "COMMIT", err, what)) != 0)
        goto fail;
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int apply_one(sqlite3 *db, const migration_t *m, core_err_t *err)
{
    char what[96];
    snprintf(what, sizeof(what), "migration %d", m->version);
    /* foreign_keys is a no-op inside a transaction: set around it */
    int rc = m->rebuilds ? exec(db, "PRAGMA foreign_keys=OFF", err, what) : 0;
    if (rc == 0)
        rc = apply_sql(db, m, err, what);
    if (m->rebuilds) {
        core_err_t ignore = {0};
        int on = exec(db, "PRAGMA foreign_keys=ON", rc == 0 ? err : &ignore, what);
        if (rc == 0)
            rc = on;
    }
    if (rc == 0)
        LOG_INFO("event=migrated version=%d description=\"%s\"", m->version, m->description);
    return rc;
}

/* Whether schema_migrations records version. */
static int recorded(sqlite3 *db, int version)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int(st, 1, version);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int store__migrate(sqlite3 *db, core_err_t *err)
{
    return store__migrate_upto(db, STORE_SCHEMA_VERSION, err);
}

int store__migrate_upto(sqlite3 *db, int upto, core_err_t *err)
{
    int version, rc;
    if ((rc = store__schema_version(db, &version, err)) != 0)
        return rc;
    if (version > STORE_SCHEMA_VERSION)
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "database schema version %d is newer than this chorus supports (%d); "
                            "run a chorus at least as new as the one that wrote it",
                            version, STORE_SCHEMA_VERSION);
    rc = exec(db,
              "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
              " applied_us INTEGER NOT NULL, description TEXT NOT NULL) STRICT",
              err, "creating schema_migrations");
    /* Every migration not yet recorded, in order: not only those above the
     * highest recorded one, so a database that skipped a number (written by
     * a build that lacked it) still gets it. */
    for (size_t i = 0; rc == 0 && i < N_MIGRATIONS && migrations[i].version <= upto; i++)
        if (migrations[i].version > version || !recorded(db, migrations[i].version))
            rc = apply_one(db, &migrations[i], err);
    return rc;
}

static int check_version_readonly(sqlite3 *db, core_err_t *err)
{
    int version, rc = store__schema_version(db, &version, err);
    if (rc != 0)
        return rc;
    if (version == 0)
        return core_err_set(err, CORE_ERR_INVALID, "not a chorus database (no schema_migrations)");
    if (version > STORE_SCHEMA_VERSION)
        return core_err_set(err, CORE_ERR_UNSUPPORTED,
                            "database schema version %d is newer than this chorus supports (%d); "
                            "run a chorus at least as new as the one that wrote it",
                            version, STORE_SCHEMA_VERSION);
    return 0;
}

int store__sqlite_open(const char *path, int writable, int synchronous_full, sqlite3 **out,
                       core_err_t *err)
{
    sqlite3 *db = NULL;
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    int is_mem = store_path_in_memory(path);
    /* A ":memory:" store is SQLite's own in-memory database, private to this
     * connection: its pages live in the page cache, one allocation each.
     * (At each commit that splits a b-tree page SQLite truncates that cache
     * to the database's size; store_pcache.c answers those truncates without
     * the walk over every page that made commits grow with everything
     * stored.) It is not memdb, whose single buffer grows by realloc: with
     * mimalloc, whose realloc copies, each doubling held the writer for
     * 0.1-0.5 s once the store reached 64 MiB-1 GiB. */
    int rc = sqlite3_open_v2(is_mem ? ":memory:" : path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = core_err_set(err, CORE_ERR_IO, "cannot open database %s: %s", path,
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return rc;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    if (writable) {
        /* WAL: readers never block the writer and one fsync per commit. */
        const char *mode = is_mem ? "PRAGMA journal_mode=MEMORY" : "PRAGMA journal_mode=WAL";
        if ((rc = exec(db, mode, err, path)) != 0)
            goto fail;
        if ((rc = exec(db,
                       synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                       err, path)) != 0)
            goto fail;
    }
    if ((rc = exec(db, "PRAGMA foreign_keys=ON", err, path)) != 0)
        goto fail;
    rc = writable ? store__migrate(db, err) : check_version_readonly(db, err);
    if (rc != 0)
        goto fail;
    *out = db;
    return 0;
fail:
    if (err != NULL && strncmp(err->msg, path, strlen(path)) != 0) {
        char *msg = core_xstrdup(err->msg);
        core_err_set(err, rc, "%s: %s", path, msg);
        free(msg);
    }
    sqlite3_close(db);
    return rc;
}
