/* Read connections (store_db_t): saved states for restore, the transcript
 * list and one transcript with its events. Blocking; never on the loop. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

store_db_t *store_db_open(const char *path, core_err_t *err)
{
    sqlite3 *db;
    if (store__sqlite_open(path, 0, 0, &db, err) != 0)
        return NULL;
    store_db_t *h = core_xcalloc(1, sizeof(*h));
    h->db = db;
    h->path = core_xstrdup(path);
    return h;
}

void store_db_close(store_db_t *db)
{
    if (db == NULL)
        return;
    sqlite3_close(db->db);
    free(db->path);
    free(db);
}

static int prepare(store_db_t *h, const char *sql, sqlite3_stmt **st, core_err_t *err)
{
    int rc = sqlite3_prepare_v2(h->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : store__sqlite_err(h->db, rc, err, h->path);
}

int store_db_active_states(store_db_t *db,
                           void (*fn)(const char *id, const char *state_json, void *arg), void *arg,
                           core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT conversation_id, state FROM conversation_state WHERE active = 1",
                     &st, err);
    if (rc != 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    return rc;
}

int store_db_state_load(store_db_t *db, const char *conversation_id, char **state_json, int *active,
                        core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT state, active FROM conversation_state WHERE conversation_id = ?",
                     &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, conversation_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *state_json = core_xstrdup((const char *)sqlite3_column_text(st, 0));
        *active = sqlite3_column_int(st, 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = core_err_set(err, CORE_ERR_NOT_FOUND, "no saved state for conversation %s",
                          conversation_id);
    } else {
        rc = store__sqlite_err(db->db, rc, err, db->path);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Column i of st as a JSON value (integer, real, string or null). */
static json_t *column_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, i));
    case SQLITE_NULL:
        return json_null();
    default:
        return json_string((const char *)sqlite3_column_text(st, i));
    }
}

/* Every row of st as an object keyed by column name. Columns whose name
 * ends in "_json" are parsed (falling back to the string when invalid). */
static int rows_json(store_db_t *h, sqlite3_stmt *st, json_t *arr, core_err_t *err)
{
    int rc, n = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; i < n; i++) {
            const char *name = sqlite3_column_name(st, i);
            size_t len = strlen(name);
            json_t *v = NULL;
            if (len > 5 && strcmp(name + len - 5, "_json") == 0) {
                const char *txt = (const char *)sqlite3_column_text(st, i);
                v = txt ? json_loads(txt, JSON_DECODE_ANY, NULL) : json_null();
                char key[64];
                snprintf(key, sizeof(key), "%.*s", (int)(len - 5), name);
                json_object_set_new(o, key, v ? v : json_string(txt));
                continue;
            }
            json_object_set_new(o, name, column_json(st, i));
        }
        json_array_append_new(arr, o);
    }
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(h->db, rc, err, h->path);
}

/* A conversation's score (docs/flywheel.md): 100, minus its outcome's
 * penalty, plus 10 per CSAT point above 3 (minus below), minus 10 per
 * fallback (at most 30), 5 per guardrail block or escalation (at most 20)
 * and 10 per failed turn (at most 20), within 0..100. */
#define SCORE_SQL                                                                                  \
    "CASE WHEN c.ended_us IS NULL THEN NULL ELSE max(0, min(100, 100"                              \
    " - CASE c.outcome WHEN 'error' THEN 60 WHEN 'abandoned' THEN 40"                              \
    "   WHEN 'escalated' THEN 30 ELSE 0 END"                                                       \
    " + coalesce((c.csat - 3) * 10, 0)"                                                            \
    " - min(30, 10 * (SELECT count(*) FROM events e WHERE e.conversation_id = c.id"                \
    "   AND e.kind = 'fallback'))"                                                                 \
    " - min(20, 5 * (SELECT count(*) FROM events e WHERE e.conversation_id = c.id"                 \
    "   AND e.kind = 'guardrail' AND e.status IN ('block', 'escalate')))"                          \
    " - min(20, 10 * (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id"                 \
    "   AND t.error IS NOT NULL)))) END"

#define LIST_SQL(where_more, order)                                                                \
    "SELECT c.id, c.channel, c.flow, c.flow_version, c.variant, c.started_us,"                     \
    " c.ended_us, c.outcome, c.escalation_reason, c.csat,"                                         \
    " (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) AS turns, " SCORE_SQL          \
    " AS score FROM conversations c WHERE (?1 = 0 OR c.started_us >= ?1)"                          \
    " AND (?2 = 0 OR c.started_us < ?2) AND (?3 IS NULL OR c.channel = ?3)"                        \
    " AND (?4 IS NULL OR c.flow = ?4) AND (?5 IS NULL OR c.outcome = ?5)" where_more               \
    " ORDER BY " order " LIMIT ?6"

static const char list_sql[] = LIST_SQL("", "c.started_us DESC, c.id");
static const char list_worst_sql[] =
    LIST_SQL(" AND c.ended_us IS NOT NULL", "score, c.ended_us DESC, c.id");

int store_db_conversations(store_db_t *db, const store_list_query_t *q, json_t **out,
                           core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, q->worst ? list_worst_sql : list_sql, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, q->from_us);
    sqlite3_bind_int64(st, 2, q->to_us);
    sqlite3_bind_text(st, 3, q->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, q->flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, q->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, q->limit > 0 && q->limit <= 1000 ? q->limit : 100);
    json_t *arr = json_array();
    rc = rows_json(db, st, arr, err);
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "conversations", arr);
    return 0;
}

static int fill_array(store_db_t *db, const char *sql, const char *id, json_t *o, const char *key,
                      core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, sql, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    rc = rows_json(db, st, arr, err);
    sqlite3_finalize(st);
    json_object_set_new(o, key, arr);
    return rc;
}

int store_db_transcript_latest(store_db_t *db, const char *key, json_t **out, core_err_t *err)
{
    sqlite3_stmt *st;
    /* "key#N" sort between "key#" and "key$" ('$' follows '#'): a range of
     * the primary key, as is the key itself */
    int rc = prepare(db,
                     "SELECT id FROM conversations WHERE id = ?1"
                     " OR (id > ?1 || '#' AND id < ?1 || '$')"
                     " ORDER BY started_us DESC, id DESC LIMIT 1",
                     &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    char *id = rc == SQLITE_ROW ? core_xstrdup((const char *)sqlite3_column_text(st, 0)) : NULL;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store__sqlite_err(db->db, rc, err, db->path);
    if (id == NULL)
        return core_err_set(err, CORE_ERR_NOT_FOUND, "no conversation %s", key);
    rc = store_db_transcript(db, id, out, err);
    free(id);
    return rc;
}

int store_db_client_id_recorded(store_db_t *db, const char *key, const char *client_id, int *found,
                                core_err_t *err)
{
    sqlite3_stmt *st;
    /* turns_client_id finds the rows with this id (few: an id is one
     * message's), then the conversation range as in _latest above */
    int rc = prepare(db,
                     "SELECT 1 FROM turns WHERE client_id = ?2 AND direction = 'in'"
                     " AND (conversation_id = ?1"
                     " OR (conversation_id > ?1 || '#' AND conversation_id < ?1 || '$')) LIMIT 1",
                     &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, client_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
}

int store_db_transcript(store_db_t *db, const char *conversation_id, json_t **out, core_err_t *err)
{
    int rc;
    sqlite3_stmt *st;
    if ((rc = prepare(db,
                      "SELECT id, channel, flow, flow_version, variant, adapter_version,"
                      " started_us, ended_us, outcome, escalation_reason, csat, pruned"
                      " FROM conversations WHERE id = ?1",
                      &st, err)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, conversation_id, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    rc = rows_json(db, st, arr, err);
    sqlite3_finalize(st);
    if (rc == 0 && json_array_size(arr) == 0)
        rc = core_err_set(err, CORE_ERR_NOT_FOUND, "no conversation %s", conversation_id);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    json_t *o = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    rc = fill_array(db,
                    "SELECT t.seq, t.direction, t.ts_us, t.text, t.intent, t.confidence, t.oos,"
                    " t.node, t.latency_us, t.guard AS guard_json, t.tokens_in, t.tokens_out,"
                    " t.error, t.channel, t.client_id, l.intent AS label FROM turns t"
                    " LEFT JOIN labels l ON l.turn_id = t.id"
                    " WHERE t.conversation_id = ?1 ORDER BY t.seq",
                    conversation_id, o, "turns", err);
    if (rc == 0)
        rc = fill_array(db,
                        "SELECT turn_seq, ts_us, kind, name, status, duration_us,"
                        " detail AS detail_json FROM events WHERE conversation_id = ?1"
                        " ORDER BY ts_us, id",
                        conversation_id, o, "events", err);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}
