/* Reading flow versions and environments (store.h): blocking queries on a
 * read connection, and the same on the thread pool for the admin API. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

static json_t *col_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return json_null();
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    default:
        return json_stringn((const char *)sqlite3_column_text(st, i),
                            (size_t)sqlite3_column_bytes(st, i));
    }
}

/* Runs sql with text parameters (NULL binds NULL) and an optional integer
 * last; each row becomes an object named by the columns. */
static int rows(store_db_t *db, const char *sql, const char *const *p, int np, int64_t last,
                json_t **out, core_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, "reading flow versions");
    for (int i = 0; i < np; i++)
        if (p[i] != NULL)
            sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
    if (last >= 0)
        sqlite3_bind_int64(st, np + 1, last);
    json_t *a = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; i < sqlite3_column_count(st); i++)
            json_object_set_new(o, sqlite3_column_name(st, i), col_json(st, i));
        json_array_append_new(a, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(a);
        return store__sqlite_err(db->db, rc, err, "reading flow versions");
    }
    *out = a;
    return 0;
}

int store_db_env_flows(store_db_t *db, const char *env, int with_content, json_t **out,
                       core_err_t *err)
{
    const char *p[] = {env};
    return rows(db,
                with_content
                    ? "SELECT e.flow, e.version, e.set_by, e.set_us, v.author, v.created_us,"
                      " v.content FROM environment_flows e LEFT JOIN flow_versions v"
                      " ON v.flow = e.flow AND v.version = e.version WHERE e.env = ?"
                      " ORDER BY e.flow"
                    : "SELECT e.flow, e.version, e.set_by, e.set_us, v.author, v.created_us"
                      " FROM environment_flows e LEFT JOIN flow_versions v"
                      " ON v.flow = e.flow AND v.version = e.version WHERE e.env = ?"
                      " ORDER BY e.flow",
                p, 1, -1, out, err);
}

int store_db_flow_versions(store_db_t *db, const char *flow, int with_content, json_t **out,
                           core_err_t *err)
{
    const char *p[] = {flow};
    int rc = rows(db,
                  with_content
                      ? "SELECT version, sha256, author, created_us, prev_version, diff, content"
                        " FROM flow_versions WHERE flow = ? ORDER BY created_us DESC, rowid DESC"
                      : "SELECT version, sha256, author, created_us, prev_version, diff"
                        " FROM flow_versions WHERE flow = ? ORDER BY created_us DESC, rowid DESC",
                  p, 1, -1, out, err);
    if (rc != 0)
        return rc;
    if (json_array_size(*out) == 0) {
        json_decref(*out);
        *out = NULL;
        return core_err_set(err, CORE_ERR_NOT_FOUND, "no versions of flow %s", flow);
    }
    size_t i;
    json_t *v;
    json_array_foreach(*out, i, v)
    {
        const char *q[] = {flow, json_string_value(json_object_get(v, "version"))};
        json_t *envs = NULL;
        if (rows(db, "SELECT env FROM environment_flows WHERE flow = ? AND version = ?", q, 2, -1,
                 &envs, err) != 0)
            continue;
        json_t *names = json_array(), *e;
        size_t k;
        json_array_foreach(envs, k, e) json_array_append(names, json_object_get(e, "env"));
        json_decref(envs);
        json_object_set_new(v, "envs", names);
    }
    return 0;
}

int store_db_env_history(store_db_t *db, const char *env, const char *flow, int limit, json_t **out,
                         core_err_t *err)
{
    const char *p[] = {env, flow};
    return rows(db,
                "SELECT id, env, flow, version, previous, set_by, action, set_us"
                " FROM environment_history WHERE (?1 IS NULL OR env = ?1)"
                " AND (?2 IS NULL OR flow = ?2) ORDER BY id DESC LIMIT ?3",
                p, 2, limit > 0 ? limit : 100, out, err);
}

/* ---- on the thread pool --------------------------------------------------- */

typedef struct fl_work_s {
    uv_work_t req;
    store_t *s;
    char *kind, *arg;
    int with_content;
    store_json_cb_t cb;
    void *data;
    int status;
    json_t *result;
    core_err_t err;
} fl_work_t;

static int one_version(store_db_t *db, const char *arg, json_t **out, core_err_t *err)
{
    const char *at = strchr(arg, '@');
    if (at == NULL)
        return core_err_set(err, CORE_ERR_INVALID, "expected flow@version");
    char *flow = core_xstrndup(arg, (size_t)(at - arg));
    const char *p[] = {flow, at + 1};
    json_t *a = NULL;
    int rc = rows(db,
                  "SELECT flow, version, sha256, author, created_us, prev_version, diff, content"
                  " FROM flow_versions WHERE flow = ? AND version = ?",
                  p, 2, -1, &a, err);
    free(flow);
    if (rc == 0 && json_array_size(a) == 0)
        rc = core_err_set(err, CORE_ERR_NOT_FOUND, "no version %s", arg);
    if (rc == 0)
        *out = json_incref(json_array_get(a, 0));
    json_decref(a);
    return rc;
}

/* arg "env": its latest 200 changes; "env/flow": every change of that flow
 * there (a rollback checks the version it is asked for ran in env). */
static int history(store_db_t *db, const char *arg, json_t **out, core_err_t *err)
{
    const char *slash = arg != NULL ? strchr(arg, '/') : NULL;
    if (slash == NULL)
        return store_db_env_history(db, arg, NULL, 200, out, err);
    char *env = core_xstrndup(arg, (size_t)(slash - arg));
    int rc = store_db_env_history(db, env, slash + 1, 1000000, out, err);
    free(env);
    return rc;
}

static void fl_run(uv_work_t *req)
{
    fl_work_t *w = req->data;
    store_db_t *db = store__reader_get(w->s, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    if (strcmp(w->kind, "env") == 0)
        w->status = store_db_env_flows(db, w->arg, w->with_content, &w->result, &w->err);
    else if (strcmp(w->kind, "versions") == 0)
        w->status = store_db_flow_versions(db, w->arg, w->with_content, &w->result, &w->err);
    else if (strcmp(w->kind, "version") == 0)
        w->status = one_version(db, w->arg, &w->result, &w->err);
    else
        w->status = history(db, w->arg, &w->result, &w->err);
    store__reader_put(w->s, db);
}

static void fl_done(uv_work_t *req, int status)
{
    fl_work_t *w = req->data;
    if (status != 0 && w->status == 0)
        w->status = core_err_set(&w->err, CORE_ERR_CLOSED, "read cancelled");
    w->cb(w->status, w->status == 0 ? w->result : NULL, w->status ? w->err.msg : NULL, w->data);
    if (w->status != 0)
        json_decref(w->result);
    store_t *s = w->s;
    free(w->kind), free(w->arg), free(w);
    store__inflight(s, -1);
}

int store_flows_async(store_t *s, const char *kind, const char *arg, int with_content,
                      store_json_cb_t cb, void *data)
{
    if (store_in_memory(s))
        return CORE_ERR_UNSUPPORTED;
    fl_work_t *w = core_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->s = s;
    w->kind = core_xstrdup(kind);
    w->arg = core_xstrdup_opt(arg);
    w->with_content = with_content;
    w->cb = cb;
    w->data = data;
    int rc = uv_queue_work(store__loop(s), &w->req, fl_run, fl_done);
    if (rc != 0) {
        free(w->kind), free(w->arg), free(w);
        return rc;
    }
    store__inflight(s, 1);
    return 0;
}
