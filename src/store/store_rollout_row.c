/* A rollout's row as an operation of a writer batch (rollout.h): written
 * with the audit entry that goes with it, in one transaction, and refused or
 * retried with the rest of its batch. */
#include <stdlib.h>

#include "store/store_int.h"

void store_batch_rollout(store_batch_t *b, const store_rollout_t *r)
{
    store_rollout_t *o = &store__batch_push(b, STORE__OP_ROLLOUT)->u.rollout;
    *o = *r;
    o->id = core_xstrdup_opt(r->id);
    o->env = core_xstrdup_opt(r->env);
    o->flow = core_xstrdup_opt(r->flow);
    o->candidate_version = core_xstrdup_opt(r->candidate_version);
    o->control_version = core_xstrdup_opt(r->control_version);
    o->status = core_xstrdup_opt(r->status);
    o->started_by = core_xstrdup_opt(r->started_by);
    o->ended_by = core_xstrdup_opt(r->ended_by);
    o->reason = core_xstrdup_opt(r->reason);
}

void store__rollout_dispose(store__op_t *op)
{
    store_rollout_t *r = &op->u.rollout;
    const char *owned[] = {
        r->id,         r->env,      r->flow,  r->candidate_version, r->control_version, r->status,
        r->started_by, r->ended_by, r->reason};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        free((void *)owned[i]);
}

int store__rollout_run(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    const store_rollout_t *r = &op->u.rollout;
    /* rare (a start or an end), so the statement is prepared per op */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db,
        /* an upsert on the id only: OR REPLACE would also delete the
         * running rollout a second running row collides with */
        "INSERT INTO rollouts (id, env, flow, candidate_version, control_version,"
        " percent, status, started_us, started_by, ended_us, ended_by, reason)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
        " ended_us = excluded.ended_us, ended_by = excluded.ended_by, reason = excluded.reason",
        -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, "rollout");
    const char *texts[] = {r->id, r->env, r->flow, r->candidate_version, r->control_version};
    for (int i = 0; i < 5; i++)
        sqlite3_bind_text(st, i + 1, texts[i] != NULL ? texts[i] : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, (int)r->percent);
    sqlite3_bind_text(st, 7, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, r->started_us);
    sqlite3_bind_text(st, 9, r->started_by != NULL ? r->started_by : "", -1, SQLITE_STATIC);
    if (r->ended_us > 0)
        sqlite3_bind_int64(st, 10, r->ended_us);
    sqlite3_bind_text(st, 11, r->ended_by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, r->reason, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(db, rc, err, "rollout");
}
