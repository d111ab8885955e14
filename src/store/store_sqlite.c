/* The SQLite backend of the writer (store_int.h): one connection, prepared
 * statements kept for its life (the transaction control ones too, so no SQL
 * is parsed per batch). A group first runs without savepoints; when a batch
 * turns out bad the writer rolls the group back and replays it with one
 * SAVEPOINT per batch, so that the bad batch is rolled back alone, while a
 * disk failure rolls back the whole group. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

enum {
    ST_CONV_START,
    ST_TURN,
    ST_EVENT,
    ST_STATE_SAME,
    ST_STATE,
    ST_CONV_END,
    ST_STATE_END,
    ST_CSAT,
    ST_LABEL,
    ST_HANDOFF,
    ST_HANDOFF_KEEP,
    ST_HANDOFF_PAST,
    ST_HANDOFF_MSG,
    ST_HANDOFF_MSG_TRIM,
    ST_HANDOFF_MSG_CLEAR,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST__COUNT
};

static const char *const sqls[ST__COUNT] = {
    [ST_CONV_START] = "INSERT INTO conversations (id, channel, flow, flow_version, variant,"
                      " adapter_version, started_us) VALUES (?,?,?,?,?,?,?)"
                      " ON CONFLICT(id) DO NOTHING",
    [ST_TURN] = "INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent,"
                " confidence, oos, node, latency_us, guard, tokens_in, tokens_out, error,"
                " channel, adapter_version, client_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_EVENT] = "INSERT INTO events (conversation_id, turn_seq, ts_us, kind, name, status,"
                 " duration_us, detail) VALUES (?,?,?,?,?,?,?,?)",
    /* a state whose active flag stays as stored (see update_state) */
    [ST_STATE_SAME] = "UPDATE conversation_state SET state=?2, updated_us=?4"
                      " WHERE conversation_id=?1 AND active=?3",
    [ST_STATE] = "INSERT INTO conversation_state (conversation_id, state, active, updated_us)"
                 " VALUES (?,?,?,?) ON CONFLICT(conversation_id) DO UPDATE SET"
                 " state=excluded.state, active=excluded.active, updated_us=excluded.updated_us",
    [ST_CONV_END] = "UPDATE conversations SET ended_us=?2, outcome=?3, escalation_reason=?4"
                    " WHERE id=?1",
    [ST_STATE_END] = "UPDATE conversation_state SET active=0 WHERE conversation_id=?1",
    [ST_CSAT] = "UPDATE conversations SET csat=?2, csat_us=?3 WHERE id=?1",
    [ST_LABEL] = "INSERT INTO labels (turn_id, intent, labeller, labelled_us)"
                 " SELECT id, ?3, ?4, ?5 FROM turns WHERE conversation_id=?1 AND seq=?2"
                 " AND direction='in' ON CONFLICT(turn_id) DO UPDATE SET intent=excluded.intent,"
                 " labeller=excluded.labeller, labelled_us=excluded.labelled_us",
    [ST_HANDOFF] = "INSERT OR REPLACE INTO handoffs (conversation_id, key, queue, channel, reason,"
                   " state, agent, disposition, release_outcome, entered_us, claimed_us, done_us,"
                   " detail, updated_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    /* a conversation's earlier handoff, about to be replaced by its next
     * (the same conversation handed over again after a release), kept for
     * the report (migration 11) */
    [ST_HANDOFF_KEEP] = "INSERT INTO handoffs_past SELECT conversation_id, key, queue, channel,"
                        " reason, state, agent, disposition, release_outcome, entered_us,"
                        " claimed_us, done_us, detail, updated_us FROM handoffs"
                        " WHERE conversation_id = ?1 AND entered_us != ?2",
    /* a write of that earlier handoff after the next one took its place (a
     * late webhook answer, an SMS that completed late): its own row, in
     * handoffs_past, never the conversation's current one (ST_HANDOFF's
     * parameters) */
    [ST_HANDOFF_PAST] = "UPDATE handoffs_past SET key=?2, queue=?3, channel=?4, reason=?5,"
                        " state=?6, agent=?7, disposition=?8, release_outcome=?9,"
                        " claimed_us=?11, done_us=?12, detail=?13, updated_us=?14"
                        " WHERE conversation_id=?1 AND entered_us=?10",
    /* a message: one row, then the handoff's older than its last keep (the
     * one row that fell out of the window), and at the first message of a
     * handoff what an earlier one of the conversation left; never the
     * conversation's current handoff's (its row in handoffs), which a
     * superseded handoff's late first message must not take away */
    [ST_HANDOFF_MSG] = "INSERT OR REPLACE INTO handoff_messages (conversation_id, handoff_id, seq,"
                       " sender, agent, text, ts_us) VALUES (?,?,?,?,?,?,?)",
    [ST_HANDOFF_MSG_TRIM] = "DELETE FROM handoff_messages WHERE conversation_id=?1"
                            " AND handoff_id=?2 AND seq<=?3",
    [ST_HANDOFF_MSG_CLEAR] = "DELETE FROM handoff_messages WHERE conversation_id=?1"
                             " AND handoff_id<>?2 AND handoff_id IS NOT (SELECT"
                             " json_extract(detail, '$.id') FROM handoffs"
                             " WHERE conversation_id=?1 AND json_valid(detail))",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT batch",
    [ST_RELEASE] = "RELEASE batch",
    [ST_ROLLBACK_TO] = "ROLLBACK TO batch",
};

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    store__ckpt_t *ckpt; /* may be NULL: SQLite checkpoints in the commit then */
} conn_t;

/* WAL frames (pages) not yet copied after which a checkpoint is started:
 * about 32 MiB, so the WAL reaches about 128 MiB before the writer copies
 * the rest itself (store_checkpoint.c). Each of those copies costs the
 * writer two fsyncs during which no group commits: at 1000 frames they came
 * ten times a second under load and cost 30% of end-to-end throughput
 * against the :memory: store, at 8000 about 6% (docs/benchmarks.md). */
#define CHECKPOINT_FRAMES 8000
/* The writer's page cache (SQLite's default is 2 MiB). A file's pages come
 * back through a read from the WAL or the database, so the pages every group
 * touches stay cached. (A ":memory:" store's pages never leave the cache,
 * whatever its size.) */
#define WRITER_CACHE_KIB "16384"

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    /* strlen is vectorised; SQLite measures a -1 length byte by byte */
    if (s != NULL)
        sqlite3_bind_text(st, i, s, (int)strlen(s), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_i64_opt(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void configure_once(void)
{
    /* Nothing here reads SQLite's memory statistics, which cost a global
     * mutex on every allocation the writer makes. This only works before
     * SQLite is initialised (MISUSE after: then they stay on). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    store__pcache_register();
    store__walbuf_register();
}

void store__sqlite_configure(void)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, configure_once);
}

static void sq_close(void *c)
{
    conn_t *conn = c;
    if (conn == NULL)
        return;
    store__ckpt_stop(conn->ckpt, conn->db);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(conn->st[i]);
    sqlite3_close(conn->db);
    free(conn);
}

static int sq_open(const store_options_t *opt, void **out, core_err_t *err)
{
    conn_t *conn = core_xcalloc(1, sizeof(*conn));
    store__sqlite_configure();
    int rc = store__sqlite_open(opt->path, 1, opt->synchronous_full, &conn->db, err);
    for (int i = 0; rc == 0 && i < ST__COUNT; i++) {
        int src = sqlite3_prepare_v3(conn->db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT, &conn->st[i],
                                     NULL);
        if (src != SQLITE_OK)
            rc = store__sqlite_err(conn->db, src, err, "preparing statements");
    }
    /* The pages every group rewrites (index leaves where each conversation
     * appends, saved states, the tables' right edges) stay cached instead of
     * being read back from the WAL; savepoints and statement journals stay
     * in memory. Neither changes what is durable. */
    const char *pragmas = "PRAGMA cache_size=-" WRITER_CACHE_KIB "; PRAGMA temp_store=MEMORY";
    int src = rc == 0 ? sqlite3_exec(conn->db, pragmas, NULL, NULL, NULL) : SQLITE_OK;
    if (src != SQLITE_OK)
        rc = store__sqlite_err(conn->db, src, err, "writer pragmas");
    if (rc != 0) {
        sq_close(conn);
        return rc;
    }
    conn->ckpt = store__ckpt_start(conn->db, opt->path, CHECKPOINT_FRAMES, opt->synchronous_full);
    *out = conn;
    return 0;
}

static void bind_turn(sqlite3_stmt *st, const store_turn_t *t)
{
    bind_text(st, 1, t->conversation_id);
    sqlite3_bind_int64(st, 2, t->seq);
    bind_text(st, 3, t->direction == 'o' ? "out" : t->direction == 'i' ? "in" : "?");
    sqlite3_bind_int64(st, 4, t->ts_us);
    bind_text(st, 5, t->text);
    bind_text(st, 6, t->intent);
    if (t->confidence >= 0)
        sqlite3_bind_double(st, 7, t->confidence);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int(st, 8, t->oos ? 1 : 0);
    bind_text(st, 9, t->node);
    bind_i64_opt(st, 10, t->latency_us);
    bind_text(st, 11, t->guard_json);
    sqlite3_bind_int64(st, 12, t->tokens_in);
    sqlite3_bind_int64(st, 13, t->tokens_out);
    bind_text(st, 14, t->error);
    bind_text(st, 15, t->channel);
    bind_text(st, 16, t->adapter_version);
    bind_text(st, 17, t->client_id);
}

static void bind_start(sqlite3_stmt *st, const store_conv_start_t *s)
{
    bind_text(st, 1, s->id), bind_text(st, 2, s->channel), bind_text(st, 3, s->flow);
    bind_text(st, 4, s->flow_version ? s->flow_version : "");
    bind_text(st, 5, s->variant ? s->variant : "");
    bind_text(st, 6, s->adapter_version);
    sqlite3_bind_int64(st, 7, s->started_us);
}

static void bind_event(sqlite3_stmt *st, const store_event_t *e)
{
    bind_text(st, 1, e->conversation_id);
    bind_i64_opt(st, 2, e->turn_seq > 0 ? e->turn_seq : -1);
    sqlite3_bind_int64(st, 3, e->ts_us);
    bind_text(st, 4, e->kind), bind_text(st, 5, e->name), bind_text(st, 6, e->status);
    bind_i64_opt(st, 7, e->duration_us);
    bind_text(st, 8, e->detail);
}

static void bind_handoff(sqlite3_stmt *st, const store_handoff_t *h)
{
    bind_text(st, 1, h->conversation_id), bind_text(st, 2, h->key), bind_text(st, 3, h->queue);
    bind_text(st, 4, h->channel), bind_text(st, 5, h->reason ? h->reason : "");
    bind_text(st, 6, h->state), bind_text(st, 7, h->agent), bind_text(st, 8, h->disposition);
    bind_text(st, 9, h->release_outcome);
    sqlite3_bind_int64(st, 10, h->entered_us);
    bind_i64_opt(st, 11, h->claimed_us > 0 ? h->claimed_us : -1);
    bind_i64_opt(st, 12, h->done_us > 0 ? h->done_us : -1);
    bind_text(st, 13, h->detail ? h->detail : "{}");
    sqlite3_bind_int64(st, 14, h->updated_us);
}

static void bind_handoff_message(sqlite3_stmt *st, const store_handoff_message_t *m)
{
    bind_text(st, 1, m->conversation_id), bind_text(st, 2, m->handoff_id);
    sqlite3_bind_int64(st, 3, m->seq);
    bind_text(st, 4, m->from), bind_text(st, 5, m->agent);
    sqlite3_bind_text(st, 6, m->text ? m->text : "", m->text ? (int)m->text_len : 0, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, m->ts_us);
}

/* Runs a bound statement that returns no rows, then resets it and clears its
 * bindings for the next use; what names it in an error. */
static int step_done(conn_t *c, sqlite3_stmt *st, const char *what, core_err_t *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(c->db, rc, err, what);
}

/* After a message's row: the one-row trim and, at a handoff's first
 * message, the clean-up (ST_HANDOFF_MSG's comment). */
static int handoff_message_after(conn_t *c, const store_handoff_message_t *m, core_err_t *err)
{
    int which[2], n = 0;
    if (m->keep > 0 && m->seq > m->keep)
        which[n++] = ST_HANDOFF_MSG_TRIM;
    if (m->seq == 1)
        which[n++] = ST_HANDOFF_MSG_CLEAR;
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *st = c->st[which[i]];
        bind_text(st, 1, m->conversation_id), bind_text(st, 2, m->handoff_id);
        if (which[i] == ST_HANDOFF_MSG_TRIM)
            sqlite3_bind_int64(st, 3, m->seq - m->keep);
        int rc = step_done(c, st, "handoff message", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ST_STATE_SAME and ST_STATE take the same four parameters. */
static void bind_state(sqlite3_stmt *st, const store__op_t *op)
{
    bind_text(st, 1, op->u.state.conversation_id);
    bind_text(st, 2, op->u.state.state_json);
    sqlite3_bind_int(st, 3, op->u.state.active);
    sqlite3_bind_int64(st, 4, op->u.state.ts_us);
}

static void bind_op(conn_t *c, const store__op_t *op, sqlite3_stmt **st, int *must_change)
{
    *must_change = 0;
    switch (op->kind) {
    case STORE__OP_CONV_START:
        *st = c->st[ST_CONV_START];
        bind_start(*st, &op->u.start);
        break;
    case STORE__OP_TURN:
        *st = c->st[ST_TURN];
        bind_turn(*st, &op->u.turn);
        break;
    case STORE__OP_EVENT:
        *st = c->st[ST_EVENT];
        bind_event(*st, &op->u.event);
        break;
    case STORE__OP_STATE:
        *st = c->st[ST_STATE];
        bind_state(*st, op);
        break;
    case STORE__OP_CONV_END:
        *st = c->st[ST_CONV_END];
        *must_change = 1;
        bind_text(*st, 1, op->u.end.conversation_id);
        sqlite3_bind_int64(*st, 2, op->u.end.ended_us);
        bind_text(*st, 3, op->u.end.outcome), bind_text(*st, 4, op->u.end.reason);
        break;
    case STORE__OP_CSAT:
        *st = c->st[ST_CSAT];
        *must_change = 1;
        bind_text(*st, 1, op->u.csat.conversation_id);
        sqlite3_bind_int(*st, 2, op->u.csat.score);
        sqlite3_bind_int64(*st, 3, op->u.csat.ts_us);
        break;
    case STORE__OP_LABEL:
        *st = c->st[ST_LABEL];
        *must_change = 1;
        bind_text(*st, 1, op->u.label.conversation_id);
        sqlite3_bind_int64(*st, 2, op->u.label.turn_seq);
        bind_text(*st, 3, op->u.label.intent), bind_text(*st, 4, op->u.label.labeller);
        sqlite3_bind_int64(*st, 5, op->u.label.ts_us);
        break;
    case STORE__OP_FLOWS: /* run_op hands these to store__flows_run */
        break;
    case STORE__OP_AUDIT: /* run_op hands these to store__audit_run (chained) */
    case STORE__OP_TOKEN:
        break;
    case STORE__OP_HANDOFF:
        *st = c->st[ST_HANDOFF];
        bind_handoff(*st, &op->u.handoff);
        break;
    case STORE__OP_HANDOFF_MESSAGE:
        *st = c->st[ST_HANDOFF_MSG];
        bind_handoff_message(*st, &op->u.handoff_message);
        break;
    case STORE__OP_SMS_OPT: /* run_op hands these to store__sms_opt_run */
    case STORE__OP_ROLLOUT: /* and these to store__rollout_run */
        break;
    }
}

static const char *op_name(store__op_kind_t k)
{
    static const char *const names[] = {
        [STORE__OP_CONV_START] = "conversation start",
        [STORE__OP_TURN] = "turn",
        [STORE__OP_EVENT] = "event",
        [STORE__OP_STATE] = "state",
        [STORE__OP_CONV_END] = "conversation end",
        [STORE__OP_CSAT] = "csat",
        [STORE__OP_LABEL] = "label",
        [STORE__OP_AUDIT] = "audit",
        [STORE__OP_HANDOFF] = "handoff",
        [STORE__OP_HANDOFF_MESSAGE] = "handoff message",
    };
    return (size_t)k < sizeof(names) / sizeof(names[0]) && names[k] ? names[k] : "operation";
}

/* Nearly every turn saves the state of a conversation that was active and
 * stays so. Leaving active out of SET leaves the partial index on it alone:
 * two b-tree writes fewer than the upsert. Sets *updated when a row was
 * there with that flag; otherwise (a new row, a flag that changed) the
 * caller runs the upsert. A batch that starts a conversation or ends one
 * changes the flag or adds the row, so the caller goes straight to the
 * upsert for those. */
static int update_state(conn_t *c, const store__op_t *op, int *updated, core_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_STATE_SAME];
    bind_state(st, op);
    int rc = step_done(c, st, op_name(op->kind), err);
    *updated = rc == 0 && sqlite3_changes(c->db) > 0;
    return rc;
}

/* A superseded handoff's write goes to its row in handoffs_past: replacing
 * the conversation's row with it would move the current handoff out of
 * handoffs, and a restart would no longer bring it back. No row there (its
 * move was not written) leaves nothing to update, which is no error. */
static int run_superseded(conn_t *c, const store_handoff_t *h, core_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_HANDOFF_PAST];
    bind_handoff(st, h);
    return step_done(c, st, "superseded handoff", err);
}

/* Runs one statement; returns 0, CORE_ERR_INVALID or CORE_ERR_IO. starts:
 * the batch starts a conversation. */
static int run_op(conn_t *c, const store__op_t *op, int starts, core_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int must_change;
    if (op->kind == STORE__OP_FLOWS) /* flow versions prepare their own statements */
        return store__flows_run(c->db, op, err);
    if (op->kind == STORE__OP_AUDIT || op->kind == STORE__OP_TOKEN)
        return store__audit_run(c->db, op, err);
    if (op->kind == STORE__OP_SMS_OPT)
        return store__sms_opt_run(c->db, op, err);
    if (op->kind == STORE__OP_ROLLOUT)
        return store__rollout_run(c->db, op, err);
    if (op->kind == STORE__OP_HANDOFF && op->u.handoff.superseded)
        return run_superseded(c, &op->u.handoff, err);
    if (op->kind == STORE__OP_HANDOFF) {
        st = c->st[ST_HANDOFF_KEEP];
        bind_text(st, 1, op->u.handoff.conversation_id);
        sqlite3_bind_int64(st, 2, op->u.handoff.entered_us);
        int rc = step_done(c, st, "handoff kept", err);
        if (rc != 0)
            return rc;
    }
    if (op->kind == STORE__OP_STATE && op->u.state.active && !starts) {
        int updated = 0, rc = update_state(c, op, &updated, err);
        if (rc != 0 || updated)
            return rc;
    }
    bind_op(c, op, &st, &must_change);
    int rc = step_done(c, st, op_name(op->kind), err);
    if (rc != 0)
        return rc;
    if (must_change && sqlite3_changes(c->db) == 0)
        return core_err_set(err, CORE_ERR_INVALID, "%s: no such conversation or turn",
                            op_name(op->kind));
    if (op->kind == STORE__OP_CONV_END) {
        st = c->st[ST_STATE_END];
        bind_text(st, 1, op->u.end.conversation_id);
        if ((rc = step_done(c, st, "state end", err)) != 0)
            return rc;
    }
    if (op->kind == STORE__OP_HANDOFF_MESSAGE)
        return handoff_message_after(c, &op->u.handoff_message, err);
    return 0;
}

static int sq_exec(conn_t *c, const char *sql, core_err_t *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__sqlite_err(c->db, rc, err, sql);
}

/* Runs one of the prepared transaction control statements. */
static int sq_ctl(conn_t *c, int which, core_err_t *err)
{
    sqlite3_stmt *st = c->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(c->db, rc, err, sqls[which]);
}

static int sq_begin(void *conn, core_err_t *err)
{
    return sq_ctl(conn, ST_BEGIN, err);
}

static int sq_apply(void *conn, const store_batch_t *b, int isolated, core_err_t *err)
{
    conn_t *c = conn;
    int starts = 0;
    for (size_t i = 0; i < b->len; i++)
        starts |= b->ops[i].kind == STORE__OP_CONV_START;
    int rc = isolated ? sq_ctl(c, ST_SAVEPOINT, err) : 0;
    for (size_t i = 0; rc == 0 && i < b->len; i++)
        rc = run_op(c, &b->ops[i], starts, err);
    if (rc == 0)
        return isolated ? sq_ctl(c, ST_RELEASE, err) : 0;
    /* A disk error may have rolled the transaction back already; the
     * caller rolls back whatever is left. */
    if (rc == CORE_ERR_IO || sqlite3_get_autocommit(c->db))
        return CORE_ERR_IO;
    if (!isolated) /* the caller rolls the group back and replays it isolated */
        return CORE_ERR_INVALID;
    core_err_t ignore;
    if (sq_ctl(c, ST_ROLLBACK_TO, &ignore) != 0 || sq_ctl(c, ST_RELEASE, &ignore) != 0)
        return CORE_ERR_IO;
    return CORE_ERR_INVALID;
}

static int sq_commit(void *conn, core_err_t *err)
{
    return sq_ctl(conn, ST_COMMIT, err);
}

static void sq_rollback(void *conn)
{
    conn_t *c = conn;
    core_err_t ignore;
    store__ckpt_write_failed(c->ckpt); /* a failed group (or a bad batch's replay) */
    if (!sqlite3_get_autocommit(c->db))
        sq_ctl(c, ST_ROLLBACK, &ignore);
}

static int sq_probe(void *conn, core_err_t *err)
{
    conn_t *c = conn;
    char sql[160];
    snprintf(sql, sizeof(sql),
             "INSERT INTO meta (key, value) VALUES ('probe', '%lld')"
             " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
             (long long)core_wall_us());
    int rc = sq_begin(c, err);
    if (rc == 0 && (rc = sq_exec(c, sql, err)) == 0 && (rc = sq_commit(c, err)) == 0)
        return 0;
    sq_rollback(c);
    return rc;
}

static int sq_prune(void *conn, int64_t text_before_us, int64_t all_before_us, int64_t *pruned,
                    core_err_t *err)
{
    conn_t *c = conn;
    char sql[4096];
    /* Transcripts go first (text, events, the slots a key's saved state
     * holds, what a handoff's customer and agents said, the summary it was
     * handed over with); the numeric columns the KPIs read stay until
     * all_before_us, and so does the "start" event, which says no more than
     * who may read the conversation (a chat gateway's name) and must keep
     * saying it for as long as the conversation can be read. A handoff
     * still open keeps its own: a person may be reading it.
     *
     * A key's state (conversation_state) is one row under the key, which
     * is also its first conversation's id; its later conversations are
     * key#1, key#2, ... and the state carries the number of the next. So
     * the state loses only its brain (the slots), and only once the key is
     * inactive and none of its conversations is newer than the cutoff; its
     * seq and gen stay, or the key's next conversation would be numbered
     * from the start again over rows that still exist. A key's first row
     * goes only with the last of its conversations, and a conversation
     * under an open handoff stays whole. */
#define OPEN_HANDOFF "(SELECT conversation_id FROM handoffs WHERE state IN ('waiting','claimed'))"
#define KEY_OF_ID "CASE WHEN instr(id, '#') > 0 THEN substr(id, 1, instr(id, '#') - 1) ELSE id END"
/* a later conversation of key that is not past the cutoff (the %lld) */
#define NEWER_OF(key)                                                                              \
    "EXISTS (SELECT 1 FROM conversations l WHERE l.id > " key " || '#' AND l.id < " key            \
    " || '$' AND (l.ended_us IS NULL OR l.ended_us >= %lld))"
    /* clang-format off: the statements one to a line */
    snprintf(
        sql, sizeof(sql),
        "CREATE TEMP TABLE IF NOT EXISTS prune_ids (id TEXT PRIMARY KEY);"
        "DELETE FROM prune_ids;"
        "INSERT INTO prune_ids SELECT id FROM conversations WHERE ended_us < %lld"
        " AND pruned = 0 LIMIT 5000;"
        "UPDATE turns SET text=NULL, guard=NULL WHERE conversation_id IN prune_ids;"
        "DELETE FROM events WHERE conversation_id IN prune_ids AND kind <> 'start';"
        "UPDATE conversation_state SET state = json_set(state, '$.brain', json_object())"
        " WHERE active = 0 AND json_valid(state)"
        " AND conversation_id IN (SELECT " KEY_OF_ID " FROM prune_ids)"
        " AND NOT " NEWER_OF(
            "conversation_state.conversation_id") ";"
                                                  "DELETE FROM handoff_messages WHERE "
                                                  "conversation_id IN prune_ids"
                                                  " AND conversation_id NOT IN " OPEN_HANDOFF ";"
                                                  "UPDATE handoffs SET detail=json_remove(detail, "
                                                  "'$.summary', '$.messages')"
                                                  " WHERE conversation_id IN prune_ids AND state "
                                                  "NOT IN ('waiting','claimed')"
                                                  " AND json_valid(detail);"
                                                  "UPDATE handoffs_past SET "
                                                  "detail=json_remove(detail, '$.summary', "
                                                  "'$.messages')"
                                                  " WHERE conversation_id IN prune_ids AND "
                                                  "json_valid(detail);"
                                                  "UPDATE conversations SET pruned=1 WHERE id IN "
                                                  "prune_ids;",
        (long long)text_before_us, (long long)text_before_us);
    /* clang-format on */
    int rc = sq_begin(c, err);
    if (rc == 0 && (rc = sq_exec(c, sql, err)) == 0) {
        int64_t text_n = sqlite3_changes(c->db);
        /* clang-format off */
        snprintf(sql, sizeof(sql),
                 "DELETE FROM prune_ids;"
                 "INSERT INTO prune_ids SELECT id FROM conversations c WHERE ended_us < %lld"
                 " AND id NOT IN " OPEN_HANDOFF " AND NOT " NEWER_OF("c.id") " LIMIT 5000;"
                 "DELETE FROM handoff_messages WHERE conversation_id IN prune_ids;"
                 "DELETE FROM handoffs WHERE conversation_id IN prune_ids;"
                 "DELETE FROM handoffs_past WHERE conversation_id IN prune_ids;"
                 "DELETE FROM conversations WHERE id IN prune_ids;",
                 (long long)all_before_us, (long long)all_before_us);
        /* clang-format on */
#undef OPEN_HANDOFF
#undef KEY_OF_ID
#undef NEWER_OF
        rc = sq_exec(c, sql, err);
        /* the larger of the two chunks: 5000 means "there may be more" */
        int64_t rows_n = sqlite3_changes(c->db);
        *pruned = text_n > rows_n ? text_n : rows_n;
    }
    if (rc == 0)
        rc = sq_commit(c, err);
    if (rc != 0)
        sq_rollback(c);
    return rc;
}

const store__backend_t store__sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .begin = sq_begin,
    .apply = sq_apply,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .prune = sq_prune,
    .probe = sq_probe,
    .close = sq_close,
};
