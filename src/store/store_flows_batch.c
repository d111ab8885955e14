/* Flow versions and environment rows as batch operations (store.h): built on
 * the loop, run by the writer thread inside the batch's savepoint. Kept
 * apart from the readers so that what links batches alone (the runtime's
 * unit tests with a scripted store) pulls in no reader. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

enum { FL_VERSION = 1, FL_ENV = 2 };

typedef struct env_row_s {
    char *env, *flow, *version, *previous, *set_by, *action;
    int64_t ts_us;
} env_row_t;

static store__op_t *push_flows(store_batch_t *b, int kind, void *rows)
{
    store__op_t *op = store__batch_push(b, STORE__OP_FLOWS);
    op->u.flows.kind = kind;
    op->u.flows.rows = rows;
    return op;
}

void store_batch_flow_version(store_batch_t *b, const store_flow_version_t *v)
{
    store_flow_version_t *c = core_xcalloc(1, sizeof(*c));
    *c = *v;
    c->flow = core_xstrdup_opt(v->flow);
    c->version = core_xstrdup_opt(v->version);
    c->sha256 = core_xstrdup_opt(v->sha256);
    c->content = core_xstrndup(v->content ? v->content : "", v->content ? v->len : 0);
    c->author = core_xstrdup(v->author ? v->author : "unknown");
    c->prev_version = core_xstrdup_opt(v->prev_version);
    c->diff = core_xstrdup_opt(v->diff);
    push_flows(b, FL_VERSION, c);
}

void store_batch_env_flow(store_batch_t *b, const char *env, const char *flow, const char *version,
                          const char *previous, const char *set_by, const char *action,
                          int64_t ts_us)
{
    env_row_t *r = core_xcalloc(1, sizeof(*r));
    r->env = core_xstrdup_opt(env);
    r->flow = core_xstrdup_opt(flow);
    r->version = core_xstrdup_opt(version);
    r->previous = core_xstrdup_opt(previous);
    r->set_by = core_xstrdup(set_by ? set_by : "unknown");
    r->action = core_xstrdup(action ? action : "change");
    r->ts_us = ts_us;
    push_flows(b, FL_ENV, r);
}

void store__flows_dispose(store__op_t *op)
{
    if (op->u.flows.kind == FL_VERSION) {
        store_flow_version_t *v = op->u.flows.rows;
        free((char *)v->flow), free((char *)v->version), free((char *)v->sha256);
        free((char *)v->content), free((char *)v->author), free((char *)v->prev_version);
        free((char *)v->diff);
        free(v);
    } else {
        env_row_t *r = op->u.flows.rows;
        free(r->env), free(r->flow), free(r->version), free(r->previous), free(r->set_by);
        free(r->action);
        free(r);
    }
    op->u.flows.rows = NULL;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Prepares, binds, steps and finalizes one statement: versions change
 * rarely, so nothing is kept prepared. */
static int step(sqlite3 *db, const char *sql, const char *const *texts, int nt, const int64_t *ints,
                int ni, core_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, "flows");
    for (int i = 0; i < nt; i++)
        bind_text(st, i + 1, texts[i]);
    for (int i = 0; i < ni; i++)
        sqlite3_bind_int64(st, nt + i + 1, ints[i]);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(db, rc, err, "flows");
}

int store__flows_run(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    if (op->u.flows.kind == FL_VERSION) {
        const store_flow_version_t *v = op->u.flows.rows;
        const char *t[] = {v->flow,   v->version,      v->sha256, v->content,
                           v->author, v->prev_version, v->diff};
        return step(db,
                    "INSERT INTO flow_versions (flow, version, sha256, content, author,"
                    " prev_version, diff, created_us) VALUES (?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(flow, version) DO NOTHING",
                    t, 7, &v->created_us, 1, err);
    }
    const env_row_t *r = op->u.flows.rows;
    int rc;
    if (r->version != NULL) {
        const char *t[] = {r->env, r->flow, r->version, r->set_by};
        rc = step(db,
                  "INSERT INTO environment_flows (env, flow, version, set_by, set_us)"
                  " VALUES (?,?,?,?,?) ON CONFLICT(env, flow) DO UPDATE SET"
                  " version=excluded.version, set_by=excluded.set_by, set_us=excluded.set_us",
                  t, 4, &r->ts_us, 1, err);
    } else {
        const char *t[] = {r->env, r->flow};
        rc = step(db, "DELETE FROM environment_flows WHERE env=? AND flow=?", t, 2, NULL, 0, err);
    }
    if (rc != 0)
        return rc;
    const char *t[] = {r->env, r->flow, r->version, r->previous, r->set_by, r->action};
    return step(db,
                "INSERT INTO environment_history (env, flow, version, previous, set_by, action,"
                " set_us) VALUES (?,?,?,?,?,?,?)",
                t, 6, &r->ts_us, 1, err);
}
