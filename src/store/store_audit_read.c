/* The audit trail's read side: listing (newest first, paged by id), the
 * chain walk that `chorusctl audit verify` reports, the admin tokens the
 * daemon loads before serving, and the list on the thread pool for
 * GET /v1/admin/audit. All blocking except store_audit_async(). */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

static int prepare(store_db_t *h, const char *sql, sqlite3_stmt **st, core_err_t *err)
{
    int rc = sqlite3_prepare_v2(h->db, sql, -1, st, NULL);
    if (rc == SQLITE_OK)
        return 0;
    rc = store__sqlite_err(h->db, rc, err, h->path);
    int version = 0;
    core_err_t ignore = {0};
    if (store__schema_version(h->db, &version, &ignore) == 0 && version < 2)
        core_err_set(err, CORE_ERR_UNSUPPORTED,
                     "%s: schema version %d has no audit chain yet; start chorusd on it once to "
                     "upgrade it",
                     h->path, version);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* s as a JSON string. A column holds what was audited as it came (a
 * refused request's path, raw bytes and all), which need not be UTF-8 and
 * which jansson refuses: each byte that does not begin a valid sequence is
 * shown as U+FFFD, so that no row of the trail is ever left out of a
 * listing. The stored bytes, which the chain hashes, are untouched. */
static json_t *string_lossy(const char *s)
{
    json_t *v = json_string(s);
    if (v != NULL)
        return v;
    size_t n = strlen(s);
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    for (size_t i = 0; i < n;) {
        size_t m = core_utf8_seq(s + i, n - i);
        if (m > 0) {
            core_buf_append(&b, s + i, m);
            i += m;
        } else {
            core_buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    v = json_stringn(b.data ? b.data : "", b.len);
    core_buf_dispose(&b);
    return v != NULL ? v : json_string("");
}

static json_t *text_or_null(sqlite3_stmt *st, int i)
{
    const char *s = col_text(st, i);
    return s != NULL ? string_lossy(s) : json_null();
}

/* detail as JSON when it parses (it is written as an object), else text. */
static json_t *detail_json(sqlite3_stmt *st, int i)
{
    const char *s = col_text(st, i);
    if (s == NULL)
        return json_null();
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : string_lossy(s);
}

int store_db_audit(store_db_t *db, const store_audit_query_t *q, json_t **out, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(
        db,
        "SELECT id, ts_us, actor, action, target, detail, prev_hash, hash FROM audit"
        " WHERE (?1 = 0 OR ts_us >= ?1) AND (?2 = 0 OR ts_us < ?2)"
        " AND (?3 IS NULL OR action = ?3"
        " OR substr(action, 1, length(?3) + 1) = ?3 || '.')" /* not LIKE: no wildcards, case kept */
        " AND (?4 IS NULL OR actor = ?4) AND (?5 = 0 OR id < ?5)"
        " ORDER BY id DESC LIMIT ?6",
        &st, err);
    if (rc != 0)
        return rc;
    int limit = q->limit > 0 && q->limit <= 1000 ? q->limit : 100;
    sqlite3_bind_int64(st, 1, q->since_us);
    sqlite3_bind_int64(st, 2, q->until_us);
    if (q->action != NULL)
        sqlite3_bind_text(st, 3, q->action, -1, SQLITE_STATIC);
    if (q->actor != NULL)
        sqlite3_bind_text(st, 4, q->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, q->before_id);
    sqlite3_bind_int(st, 6, limit + 1); /* one more tells whether a next page exists */
    json_t *rows = json_array();
    int src, n = 0;
    int64_t last = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
        last = sqlite3_column_int64(st, 0);
        json_array_append_new(
            rows, json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)last, "ts_us",
                            (json_int_t)sqlite3_column_int64(st, 1), "actor", text_or_null(st, 2),
                            "action", text_or_null(st, 3), "target", text_or_null(st, 4), "detail",
                            detail_json(st, 5), "prev_hash", text_or_null(st, 6), "hash",
                            text_or_null(st, 7)));
        n++;
    }
    int more = src == SQLITE_ROW;
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store__sqlite_err(db->db, src, err, db->path);
        sqlite3_finalize(st);
        json_decref(rows);
        return rc;
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o,s:i,s:o}", "entries", rows, "limit", limit, "next_cursor",
                     more ? json_sprintf("%lld", (long long)last) : json_null());
    return 0;
}

/* Checks one row against the chain so far; fills v->broken_id and v->what
 * and returns 1 at the first broken link. legacy_max: the last row written
 * before the chain existed (schema 1), recorded by migration 10; -1 when the
 * database does not say (any unchained row before the first chained one). */
static int check_row(sqlite3_stmt *st, store_audit_verify_t *v, char last[65], int *chained,
                     int64_t legacy_max)
{
    int64_t id = sqlite3_column_int64(st, 0);
    const char *prev = col_text(st, 6), *hash = col_text(st, 7);
    if (hash == NULL && prev == NULL && !*chained &&
        (legacy_max < 0 || (id >= 1 && id <= legacy_max))) {
        v->legacy++; /* written before the chain existed (schema 1) */
        return 0;
    }
    v->broken_id = id;
    if (hash == NULL || prev == NULL) {
        snprintf(v->what, sizeof(v->what), "row %lld has no %s: it was not written by the chain",
                 (long long)id, hash == NULL ? "hash" : "prev_hash");
        return 1;
    }
    if (strcmp(prev, last) != 0) {
        snprintf(v->what, sizeof(v->what),
                 "prev_hash of row %lld is %.16s..., but the row before it hashes to %.16s...: "
                 "rows were removed, inserted or reordered before it",
                 (long long)id, prev, last);
        return 1;
    }
    char want[65];
    store_audit_hash(prev, id, sqlite3_column_int64(st, 1), col_text(st, 2), col_text(st, 3),
                     col_text(st, 4), col_text(st, 5), want);
    if (strcmp(want, hash) != 0) {
        snprintf(v->what, sizeof(v->what),
                 "hash of row %lld does not match its content (stored %.16s..., computed "
                 "%.16s...): a field of the row was changed",
                 (long long)id, hash, want);
        return 1;
    }
    v->broken_id = 0;
    memcpy(last, hash, 65);
    *chained = 1;
    v->rows++;
    return 0;
}

/* meta.audit_legacy_max, or -1 when it is not there (a database not yet
 * migrated, read as it is). */
static int64_t legacy_ceiling(store_db_t *db)
{
    sqlite3_stmt *st;
    int64_t max = -1;
    if (sqlite3_prepare_v2(db->db, "SELECT value FROM meta WHERE key = 'audit_legacy_max'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        max = strtoll((const char *)sqlite3_column_text(st, 0), NULL, 10);
    sqlite3_finalize(st);
    return max;
}

int store_db_audit_verify(store_db_t *db, store_audit_verify_t *v, core_err_t *err)
{
    memset(v, 0, sizeof(*v));
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "SELECT id, ts_us, actor, action, target, detail, prev_hash, hash FROM audit"
                     " ORDER BY id",
                     &st, err);
    if (rc != 0)
        return rc;
    char last[65];
    memcpy(last, store_audit_genesis, 65);
    int chained = 0, src;
    int64_t legacy_max = legacy_ceiling(db);
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        if (check_row(st, v, last, &chained, legacy_max))
            break;
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = store__sqlite_err(db->db, src, err, db->path);
    sqlite3_finalize(st);
    memcpy(v->head, last, 65);
    return rc;
}

int store_db_tokens(store_db_t *db, void (*fn)(const store_token_row_t *t, void *arg), void *arg,
                    core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "SELECT name, role, sha256, created_us, created_by, revoked_us FROM tokens"
                     " ORDER BY created_us, name",
                     &st, err);
    if (rc != 0)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        store_token_row_t t = {col_text(st, 0), col_text(st, 1),
                               col_text(st, 2), sqlite3_column_int64(st, 3),
                               col_text(st, 4), sqlite3_column_int64(st, 5)};
        fn(&t, arg);
    }
    if (src != SQLITE_DONE)
        rc = store__sqlite_err(db->db, src, err, db->path);
    sqlite3_finalize(st);
    return rc;
}

/* ---- GET /v1/admin/audit on the thread pool ------------------------------- */

typedef struct {
    uv_work_t req;
    store_t *s;
    store_audit_query_t q;
    char *action, *actor; /* owned copies */
    store_json_cb cb;
    void *data;
    int status;
    json_t *result;
    core_err_t err;
} audit_work_t;

static void audit_work_run(uv_work_t *req)
{
    audit_work_t *w = req->data;
    if (store_in_memory(w->s)) {
        w->status = core_err_set(&w->err, CORE_ERR_UNSUPPORTED, "a :memory: store cannot be read");
        return;
    }
    store_db_t *db = store__reader_get(w->s, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    w->status = store_db_audit(db, &w->q, &w->result, &w->err);
    store__reader_put(w->s, db);
}

static void audit_work_done(uv_work_t *req, int status)
{
    audit_work_t *w = req->data;
    if (status != 0 && w->status == 0)
        w->status = core_err_set(&w->err, CORE_ERR_CLOSED, "read cancelled");
    w->cb(w->status, w->result, w->status ? w->err.msg : NULL, w->data);
    store_t *s = w->s;
    free(w->action), free(w->actor), free(w);
    store__inflight(s, -1);
}

int store_audit_async(store_t *s, const store_audit_query_t *q, store_json_cb cb, void *data)
{
    audit_work_t *w = core_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->s = s;
    w->q = *q;
    w->q.action = w->action = q->action != NULL ? core_xstrdup(q->action) : NULL;
    w->q.actor = w->actor = q->actor != NULL ? core_xstrdup(q->actor) : NULL;
    w->cb = cb;
    w->data = data;
    int rc = uv_queue_work(store__loop(s), &w->req, audit_work_run, audit_work_done);
    if (rc != 0) {
        free(w->action), free(w->actor), free(w);
        return rc;
    }
    store__inflight(s, 1);
    return 0;
}
