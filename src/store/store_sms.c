/* SMS opt-outs (migration 6, docs/channels.md "SMS"): one row per (From, To)
 * pair holding its last STOP or START, written through the writer like any
 * batch, and the read that brings the opted-out pairs back at start so a
 * restart never forgets a STOP. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

void store_batch_sms_opt(store_batch_t *b, const char *from, const char *to, int opted_out,
                         int64_t ts_us)
{
    store__op_t *op = store__batch_push(b, STORE__OP_SMS_OPT);
    op->u.sms_opt.from = core_xstrdup(from ? from : "");
    op->u.sms_opt.to = core_xstrdup(to ? to : "");
    op->u.sms_opt.opted_out = opted_out ? 1 : 0;
    op->u.sms_opt.ts_us = ts_us;
}

void store__sms_opt_dispose(store__op_t *op)
{
    free((void *)op->u.sms_opt.from);
    free((void *)op->u.sms_opt.to);
}

int store__sms_opt_run(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    /* rare (a STOP or a START), so the statement is prepared per op */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO sms_opt_outs (from_number, to_number, opted_out,"
                                " updated_us) VALUES (?,?,?,?) ON CONFLICT(from_number, to_number)"
                                " DO UPDATE SET opted_out=excluded.opted_out,"
                                " updated_us=excluded.updated_us",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db, rc, err, "sms opt-out");
    sqlite3_bind_text(st, 1, op->u.sms_opt.from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->u.sms_opt.to, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, op->u.sms_opt.opted_out);
    sqlite3_bind_int64(st, 4, op->u.sms_opt.ts_us);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(db, rc, err, "sms opt-out");
}

int store_db_sms_opt_outs(store_db_t *db, void (*fn)(const char *from, const char *to, void *arg),
                          void *arg, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT from_number, to_number FROM sms_opt_outs"
                                " WHERE opted_out = 1 ORDER BY updated_us",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store__sqlite_err(db->db, rc, err, db->path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), arg);
    int out = rc == SQLITE_DONE ? 0 : store__sqlite_err(db->db, rc, err, db->path);
    sqlite3_finalize(st);
    return out;
}
