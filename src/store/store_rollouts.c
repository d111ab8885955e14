/* The rollouts table and a rollout's per-variant KPIs (rollout.h). The
 * KPIs come from the one report (store_db_report by flow and variant) plus
 * the count of satisfied CSAT answers the z-test needs; rows are read on a
 * pool worker (and written by the writer: store_rollout_row.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/rollout.h"
#include "store/store_int.h"

/* ---- blocking reads -------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v != NULL ? v : "";
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:I,s:s}", "id", col_text(st, 0), "env",
                          col_text(st, 1), "flow", col_text(st, 2), "candidate_version",
                          col_text(st, 3), "control_version", col_text(st, 4), "percent",
                          sqlite3_column_int(st, 5), "status", col_text(st, 6), "started_us",
                          (json_int_t)sqlite3_column_int64(st, 7), "started_by", col_text(st, 8));
    json_object_set_new(o, "ended_us",
                        sqlite3_column_type(st, 9) == SQLITE_NULL
                            ? json_null()
                            : json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "ended_by",
                        sqlite3_column_type(st, 10) == SQLITE_NULL ? json_null()
                                                                   : json_string(col_text(st, 10)));
    json_object_set_new(o, "reason",
                        sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null()
                                                                   : json_string(col_text(st, 11)));
    return o;
}

int store_db_rollouts(store_db_t *db, const char *id, const char *flow, const char *status,
                      json_t **out, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db->db,
        "SELECT id, env, flow, candidate_version, control_version, percent, status, started_us,"
        " started_by, ended_us, ended_by, reason FROM rollouts"
        " WHERE (?1 IS NULL OR id = ?1 OR flow = ?1)"
        " AND (?2 IS NULL OR flow = ?2) AND (?3 IS NULL OR status = ?3)"
        " ORDER BY started_us DESC, id LIMIT 1000",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "reading rollouts");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_json(st));
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "reading rollouts");
    sqlite3_finalize(st);
    if (rc == 0 && id != NULL && json_array_size(arr) == 0)
        rc = core_err_set(err, CORE_ERR_NOT_FOUND, "no rollout with id or flow %s", id);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = json_pack("{s:o}", "rollouts", arr);
    return 0;
}

static int64_t int_of(json_t *row, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(row, key));
}

/* Fills k from a report row (flow and variant already matched). */
static void from_report_row(json_t *row, rollout_kpis_t *k)
{
    k->conversations = int_of(row, "conversations");
    k->ended = int_of(row, "ended");
    k->contained = int_of(row, "contained");
    k->escalated = int_of(row, "escalated");
    k->turns_out = int_of(row, "turns_out");
    k->failed_turns = int_of(row, "failed_turns");
    k->csat_responses = int_of(row, "csat_responses");
    json_t *avg = json_object_get(row, "csat_avg"), *p95 = json_object_get(row, "latency_p95_ms");
    k->csat_sum = json_is_number(avg) ? json_number_value(avg) * (double)k->csat_responses : 0;
    k->p95_ms = json_is_number(p95) ? json_number_value(p95) : -1;
}

/* Satisfied CSAT answers (4 or 5) per variant: the report has no column. */
static int satisfied(store_db_t *db, const char *flow, int64_t from_us, int64_t to_us,
                     rollout_kpis_t *control, rollout_kpis_t *candidate, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db->db,
        "SELECT variant, count(*) FROM conversations WHERE (?1 IS NULL OR flow = ?1)"
        " AND (?2 = 0 OR started_us >= ?2) AND (?3 = 0 OR started_us < ?3)"
        " AND csat >= 4 GROUP BY variant",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "rollout CSAT");
    sqlite3_bind_text(st, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from_us);
    sqlite3_bind_int64(st, 3, to_us);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = col_text(st, 0);
        if (strcmp(v, ROLLOUT_CONTROL) == 0)
            control->csat_satisfied = sqlite3_column_int64(st, 1);
        else if (strcmp(v, ROLLOUT_CANDIDATE) == 0)
            candidate->csat_satisfied = sqlite3_column_int64(st, 1);
    }
    rc = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, "rollout CSAT");
    sqlite3_finalize(st);
    return rc;
}

int store_db_rollout_kpis(store_db_t *db, const char *flow, int64_t from_us, int64_t to_us,
                          rollout_kpis_t *control, rollout_kpis_t *candidate, core_err_t *err)
{
    memset(control, 0, sizeof(*control));
    memset(candidate, 0, sizeof(*candidate));
    control->p95_ms = candidate->p95_ms = -1;
    store_report_query_t q = {
        .from_us = from_us, .to_us = to_us, .by = STORE_BY_VARIANT | (flow ? STORE_BY_FLOW : 0)};
    json_t *report = NULL;
    int rc = store_db_report(db, &q, &report, err);
    if (rc != 0)
        return rc;
    json_t *row;
    size_t i;
    json_array_foreach(json_object_get(report, "rows"), i, row)
    {
        const char *f = json_string_value(json_object_get(row, "flow"));
        const char *v = json_string_value(json_object_get(row, "variant"));
        if (v == NULL || (flow != NULL && (f == NULL || strcmp(f, flow) != 0)))
            continue;
        if (strcmp(v, ROLLOUT_CONTROL) == 0)
            from_report_row(row, control);
        else if (strcmp(v, ROLLOUT_CANDIDATE) == 0)
            from_report_row(row, candidate);
    }
    json_decref(report);
    return satisfied(db, flow, from_us, to_us, control, candidate, err);
}

static json_t *raw_json(const rollout_kpis_t *k)
{
    return json_pack("[I,I,I,I,I,I,I,I,f,f]", (json_int_t)k->conversations, (json_int_t)k->ended,
                     (json_int_t)k->contained, (json_int_t)k->escalated, (json_int_t)k->turns_out,
                     (json_int_t)k->failed_turns, (json_int_t)k->csat_responses,
                     (json_int_t)k->csat_satisfied, k->csat_sum, k->p95_ms);
}

int rollout_kpis_from_raw(const json_t *raw, rollout_kpis_t *k)
{
    int64_t *ints[] = {&k->conversations, &k->ended,        &k->contained,      &k->escalated,
                       &k->turns_out,     &k->failed_turns, &k->csat_responses, &k->csat_satisfied};
    if (!json_is_array(raw) || json_array_size(raw) != 10)
        return -1;
    for (size_t i = 0; i < 8; i++) {
        if (!json_is_integer(json_array_get(raw, i)))
            return -1;
        *ints[i] = (int64_t)json_integer_value(json_array_get(raw, i));
    }
    k->csat_sum = json_number_value(json_array_get(raw, 8));
    k->p95_ms = json_number_value(json_array_get(raw, 9));
    return 0;
}

int store_db_flow_version(store_db_t *db, const char *flow, const char *version, char **content,
                          size_t *len, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT content FROM flow_versions WHERE flow = ?1 AND version = ?2"
                                " LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "reading flow_versions");
    sqlite3_bind_text(st, 1, flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_blob(st, 0);
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *content = core_xstrndup(c != NULL ? c : "", *len);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = core_err_set(err, CORE_ERR_NOT_FOUND, "flow %s has no stored version %s", flow,
                          version);
    } else {
        rc = store__sqlite_err(db->db, rc, err, "reading flow_versions");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- on the thread pool ------------------------------------------------------ */

typedef enum { R_LIST, R_KPIS, R_VERSION } rwork_kind_t;

typedef struct {
    uv_work_t req;
    store_t *s;
    rwork_kind_t kind;
    char *path;
    char *str[3]; /* owned: the id/flow/status filters, or flow and version */
    int64_t from_us, to_us;
    store_json_cb json_cb;
    void *data;
    int status;
    json_t *result;
    core_err_t err;
} rwork_t;

static void kpis_run(rwork_t *w, store_db_t *db)
{
    rollout_kpis_t c, k;
    w->status = store_db_rollout_kpis(db, w->str[0], w->from_us, w->to_us, &c, &k, &w->err);
    if (w->status == 0)
        w->result =
            json_pack("{s:o,s:o,s:o,s:{s:o,s:o}}", "control", rollout_kpis_json(&c), "candidate",
                      rollout_kpis_json(&k), "tests", rollout_tests_json(&c, &k), "raw", "control",
                      raw_json(&c), "candidate", raw_json(&k));
}

static void version_run(rwork_t *w, store_db_t *db)
{
    char *content = NULL;
    size_t len = 0;
    w->status = store_db_flow_version(db, w->str[0], w->str[1], &content, &len, &w->err);
    if (w->status == 0)
        w->result = json_pack("{s:s,s:s,s:s%}", "flow", w->str[0], "version", w->str[1], "content",
                              content, len);
    free(content);
}

static void rwork_run(uv_work_t *req)
{
    rwork_t *w = req->data;
    if (store_path_in_memory(w->path)) {
        w->status =
            core_err_set(&w->err, CORE_ERR_UNSUPPORTED, "a :memory: store keeps no rollouts");
        return;
    }
    store_db_t *db = store__reader_get(w->s, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    if (w->kind == R_LIST)
        w->status = store_db_rollouts(db, w->str[0], w->str[1], w->str[2], &w->result, &w->err);
    else if (w->kind == R_KPIS)
        kpis_run(w, db);
    else
        version_run(w, db);
    store__reader_put(w->s, db);
}

static void rwork_free(rwork_t *w)
{
    for (size_t i = 0; i < sizeof(w->str) / sizeof(w->str[0]); i++)
        free(w->str[i]);
    free(w->path);
    free(w);
}

static void rwork_done(uv_work_t *req, int status)
{
    rwork_t *w = req->data;
    if (status != 0 && w->status == 0)
        w->status = core_err_set(&w->err, CORE_ERR_CLOSED, "cancelled");
    w->json_cb(w->status, w->result, w->status ? w->err.msg : NULL, w->data);
    store_t *s = w->s;
    rwork_free(w);
    store__inflight(s, -1);
}

static rwork_t *rwork_new(store_t *s, rwork_kind_t kind, void *data)
{
    rwork_t *w = core_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->s = s;
    w->kind = kind;
    w->data = data;
    w->path = core_xstrdup(store_path(s));
    return w;
}

static int submit(rwork_t *w)
{
    int rc = uv_queue_work(store__loop(w->s), &w->req, rwork_run, rwork_done);
    if (rc != 0) {
        rwork_free(w);
        return CORE_ERR_IO;
    }
    store__inflight(w->s, 1);
    return 0;
}

int store_rollouts_async(store_t *s, const char *id, const char *flow, const char *status,
                         store_json_cb cb, void *data)
{
    rwork_t *w = rwork_new(s, R_LIST, data);
    w->str[0] = core_xstrdup_opt(id);
    w->str[1] = core_xstrdup_opt(flow);
    w->str[2] = core_xstrdup_opt(status);
    w->json_cb = cb;
    return submit(w);
}

int store_rollout_kpis_async(store_t *s, const char *flow, int64_t from_us, int64_t to_us,
                             store_json_cb cb, void *data)
{
    rwork_t *w = rwork_new(s, R_KPIS, data);
    w->str[0] = core_xstrdup_opt(flow);
    w->from_us = from_us, w->to_us = to_us;
    w->json_cb = cb;
    return submit(w);
}

int store_flow_version_async(store_t *s, const char *flow, const char *version, store_json_cb cb,
                             void *data)
{
    rwork_t *w = rwork_new(s, R_VERSION, data);
    w->str[0] = core_xstrdup(flow), w->str[1] = core_xstrdup(version);
    w->json_cb = cb;
    return submit(w);
}
