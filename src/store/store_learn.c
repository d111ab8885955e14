/* Transcript mining for `chorusctl learn` (docs/flywheel.md): the user turns
 * the flows did not understand, and a summary of where conversations broke
 * (drop-off nodes), how sure the router was per intent, and which intents
 * analysts' labels say it confused. Read-only queries on a store_db_t. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

static const char *col_text(sqlite3_stmt *st, int k)
{
    const unsigned char *s = sqlite3_column_text(st, k);
    return s ? (const char *)s : "";
}

static int prepare(store_db_t *db, const char *sql, int64_t from, int64_t to, sqlite3_stmt **st,
                   core_err_t *err)
{
    int rc = sqlite3_prepare_v2(db->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "learn query");
    sqlite3_bind_int64(*st, 1, from);
    sqlite3_bind_int64(*st, 2, to > 0 ? to : INT64_MAX);
    return 0;
}

/* Human handle time per conversation: claimed to done on the human desk's
 * handoff row (docs/agents.md). */
static const char turns_sql[] =
    "SELECT t.id, t.conversation_id, t.text, t.channel, c.outcome, c.flow, t.oos,"
    " EXISTS (SELECT 1 FROM events e WHERE e.conversation_id = t.conversation_id"
    "  AND e.turn_seq IN (t.seq, t.seq + 1) AND e.kind = 'fallback') AS fb,"
    " (SELECT h.done_us - h.claimed_us FROM handoffs h WHERE h.conversation_id = t.conversation_id"
    "  AND h.claimed_us > 0 AND h.done_us >= h.claimed_us) AS handle_us"
    " FROM turns t JOIN conversations c ON c.id = t.conversation_id"
    " WHERE t.direction = 'in' AND t.text IS NOT NULL AND t.text != ''"
    "  AND c.started_us >= ?1 AND c.started_us < ?2 AND (t.oos = 1 OR fb)" /* fb: above */
    " ORDER BY t.id";

int store_db_learn_turns(store_db_t *db, int64_t from_us, int64_t to_us,
                         void (*fn)(const store_learn_turn_t *t, void *arg), void *arg,
                         core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, turns_sql, from_us, to_us, &st, err);
    if (rc != 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_learn_turn_t t = {
            .turn_id = sqlite3_column_int64(st, 0),
            .conversation_id = col_text(st, 1),
            .text = col_text(st, 2),
            .channel = col_text(st, 3),
            .outcome = col_text(st, 4),
            .flow = col_text(st, 5),
            .oos = sqlite3_column_int(st, 6),
            .fallback = sqlite3_column_int(st, 7),
            .handle_s = sqlite3_column_type(st, 8) == SQLITE_NULL
                            ? -1
                            : (double)sqlite3_column_int64(st, 8) / 1e6,
        };
        fn(&t, arg);
    }
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "learn query");
    sqlite3_finalize(st);
    return rc;
}

/* The node of each broken conversation's last bot turn. */
static const char dropoff_sql[] =
    "WITH c AS (SELECT id, flow, outcome FROM conversations"
    "  WHERE started_us >= ?1 AND started_us < ?2 AND outcome != 'active'),"
    " last AS (SELECT c.flow, c.outcome, (SELECT t.node FROM turns t"
    "  WHERE t.conversation_id = c.id AND t.direction = 'out' AND t.node IS NOT NULL"
    "  ORDER BY t.seq DESC LIMIT 1) AS node FROM c),"
    " per_flow AS (SELECT flow, count(*) AS n FROM c GROUP BY flow)"
    " SELECT last.flow, coalesce(last.node, ''),"
    "  sum(last.outcome = 'abandoned'), sum(last.outcome = 'escalated'), per_flow.n"
    " FROM last JOIN per_flow ON per_flow.flow = last.flow"
    " WHERE last.outcome IN ('abandoned', 'escalated')"
    " GROUP BY last.flow, last.node"
    " ORDER BY sum(last.outcome IN ('abandoned', 'escalated')) DESC, last.flow, last.node";

static const char intents_sql[] =
    "SELECT t.intent, count(*), avg(t.confidence), sum(t.confidence < ?3)"
    " FROM turns t JOIN conversations c ON c.id = t.conversation_id"
    " WHERE t.direction = 'in' AND t.intent IS NOT NULL"
    "  AND c.started_us >= ?1 AND c.started_us < ?2"
    " GROUP BY t.intent ORDER BY avg(t.confidence), t.intent";

/* What the router decided, as a label says it: a turn routed out of scope
 * is "oos" (its intent column is NULL), as in the report's routing
 * accuracy; a correct out-of-scope decision is no confusion. */
#define ROUTED "CASE WHEN t.oos = 1 THEN 'oos' ELSE coalesce(t.intent, '') END"
static const char confusions_sql[] = "SELECT " ROUTED ", l.intent, count(*)"
                                     " FROM labels l JOIN turns t ON t.id = l.turn_id"
                                     " JOIN conversations c ON c.id = t.conversation_id"
                                     " WHERE " ROUTED " != l.intent"
                                     "  AND c.started_us >= ?1 AND c.started_us < ?2"
                                     " GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2";
#undef ROUTED

static int collect(store_db_t *db, const char *sql, int64_t from, int64_t to, double low,
                   json_t *arr, const char *const *names, const char *types, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, sql, from, to, &st, err);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_double(st, 3, low);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int k = 0; types[k]; k++) {
            json_t *v = types[k] == 's'   ? json_string(col_text(st, k))
                        : types[k] == 'i' ? json_integer(sqlite3_column_int64(st, k))
                                          : json_real(sqlite3_column_double(st, k));
            json_object_set_new(o, names[k], v);
        }
        json_array_append_new(arr, o);
    }
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "learn query");
    sqlite3_finalize(st);
    return rc;
}

int store_db_learn_summary(store_db_t *db, int64_t from_us, int64_t to_us, double low_confidence,
                           json_t **out, core_err_t *err)
{
    static const char *const drop[] = {"flow", "node", "abandoned", "escalated",
                                       "flow_conversations"};
    static const char *const intents[] = {"intent", "turns", "avg_confidence", "low_confidence"};
    static const char *const conf[] = {"predicted", "labelled", "count"};
    json_t *d = json_array(), *i = json_array(), *c = json_array();
    int rc = collect(db, dropoff_sql, from_us, to_us, 0, d, drop, "ssiii", err);
    rc =
        rc ? rc : collect(db, intents_sql, from_us, to_us, low_confidence, i, intents, "sifi", err);
    rc = rc ? rc : collect(db, confusions_sql, from_us, to_us, 0, c, conf, "ssi", err);
    if (rc != 0) {
        json_decref(d);
        json_decref(i);
        json_decref(c);
        return rc;
    }
    *out = json_pack("{s:o,s:o,s:o}", "drop_offs", d, "intents", i, "confusions", c);
    return 0;
}

/* ---- labels (chorusctl label export|import|review|train) ------------------ */

static const char candidates_sql[] =
    "SELECT t.conversation_id, t.seq, t.text, coalesce(t.intent, ''),"
    " coalesce(t.confidence, 0), t.oos, coalesce(l.intent, '')"
    " FROM turns t JOIN conversations c ON c.id = t.conversation_id"
    " LEFT JOIN labels l ON l.turn_id = t.id"
    " WHERE t.direction = 'in' AND t.text IS NOT NULL AND t.text != ''"
    "  AND c.started_us >= ?1 AND c.started_us < ?2"
    "  AND (t.oos = 1 OR t.intent IS NULL OR t.confidence < ?3)"
    "  AND (?4 OR l.intent IS NULL)"
    " ORDER BY coalesce(t.confidence, 0), t.id LIMIT ?5";

int store_db_label_candidates(store_db_t *db, int64_t from_us, int64_t to_us, double max_confidence,
                              int labelled_too, int limit, json_t **out, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, candidates_sql, from_us, to_us, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_double(st, 3, max_confidence);
    sqlite3_bind_int(st, 4, labelled_too != 0);
    sqlite3_bind_int(st, 5, limit > 0 ? limit : 1000);
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:s,s:I,s:s,s:s,s:f,s:b,s:s}", "conversation", col_text(st, 0), "seq",
                           (json_int_t)sqlite3_column_int64(st, 1), "text", col_text(st, 2),
                           "predicted", col_text(st, 3), "confidence", sqlite3_column_double(st, 4),
                           "oos", sqlite3_column_int(st, 5), "label", col_text(st, 6)));
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "label candidates");
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int store_db_labelled_examples(store_db_t *db, json_t **out, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "SELECT l.intent, t.text FROM labels l JOIN turns t ON t.id = l.turn_id"
                     " WHERE t.text IS NOT NULL AND t.text != '' AND ?1 <= ?2"
                     " ORDER BY l.intent, t.text",
                     0, 1, &st, err);
    if (rc != 0)
        return rc;
    json_t *o = json_object();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *intent = col_text(st, 0);
        json_t *list = json_object_get(o, intent);
        if (list == NULL)
            json_object_set_new(o, intent, list = json_array());
        json_array_append_new(list, json_string(col_text(st, 1)));
    }
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "labelled turns");
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}
