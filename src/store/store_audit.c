/* The audit trail's write side: the one-call append other modules use
 * (store_audit), the chained insert the writer thread runs for every audit
 * row, and the admin tokens table (created and revoked in the same batch as
 * their audit row, so neither exists without the other).
 *
 * The chain: each row carries prev_hash, the hash of the row before it
 * (64 zeros for the first chained row), and hash = SHA-256 of prev_hash and
 * the row's own content in a canonical form (store_audit_hash). The writer
 * reads the last row inside the same transaction before each insert, so the
 * chain holds across group commits, restarts and a second writing process
 * (chorusctl) alike: SQLite serialises the writers. Rows written before
 * migration 2 have no hash and stay outside the chain. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

const char store_audit_genesis[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

int store_audit(store_t *s, const char *actor, const char *action, const char *target,
                const char *detail_json)
{
    store_batch_t *b = store_batch_new();
    store_batch_audit(b, actor, action, target, detail_json, core_wall_us());
    int rc = store_enqueue(s, b, NULL, NULL);
    if (rc != 0)
        store_batch_free(b);
    return rc;
}

/* One field of the canonical form: "-" for NULL, else "LEN:BYTES". */
static void field(core_buf_t *b, const char *s)
{
    if (s == NULL)
        core_buf_append(b, "-\n", 2);
    else
        core_buf_printf(b, "%zu:%s\n", strlen(s), s);
}

void store_audit_hash(const char *prev_hash, int64_t id, int64_t ts_us, const char *actor,
                      const char *action, const char *target, const char *detail, char out[65])
{
    core_buf_t b;
    core_buf_init(&b, (size_t)1 << 26); /* details are small; bounded all the same */
    core_buf_printf(&b, "%s\n%lld\n%lld\n", prev_hash, (long long)id, (long long)ts_us);
    field(&b, actor);
    field(&b, action);
    field(&b, target);
    field(&b, detail);
    core_sha256_hex(b.data, b.len, out);
    core_buf_dispose(&b);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, core_err_t *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : store__sqlite_err(db, rc, err, "audit");
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, core_err_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store__sqlite_err(db, rc, err, what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* The last row's id and hash (genesis when none, or when it predates the
 * chain). */
static int chain_tail(sqlite3 *db, int64_t *id, char prev[65], core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &st, err);
    if (rc != 0)
        return rc;
    *id = 0;
    memcpy(prev, store_audit_genesis, 65);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        const char *h = (const char *)sqlite3_column_text(st, 1);
        if (h != NULL && strlen(h) == 64)
            memcpy(prev, h, 65);
    }
    sqlite3_finalize(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? 0
                                                   : store__sqlite_err(db, src, err, "audit tail");
}

static int insert_audit(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    int64_t last;
    char prev[65], hash[65];
    int rc = chain_tail(db, &last, prev, err);
    if (rc != 0)
        return rc;
    const char *actor = op->u.audit.actor != NULL ? op->u.audit.actor : "-";
    store_audit_hash(prev, last + 1, op->u.audit.ts_us, actor, op->u.audit.action,
                     op->u.audit.target, op->u.audit.detail_json, hash);
    sqlite3_stmt *st;
    if ((rc =
             prepare(db,
                     "INSERT INTO audit (id, ts_us, actor, action, target, detail, prev_hash, hash)"
                     " VALUES (?,?,?,?,?,?,?,?)",
                     &st, err)) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, last + 1);
    sqlite3_bind_int64(st, 2, op->u.audit.ts_us);
    bind_text(st, 3, actor);
    bind_text(st, 4, op->u.audit.action);
    bind_text(st, 5, op->u.audit.target);
    bind_text(st, 6, op->u.audit.detail_json);
    bind_text(st, 7, prev);
    bind_text(st, 8, hash);
    return step_done(db, st, err, "audit");
}

static int run_token(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db,
                     op->u.token.revoke ? "UPDATE tokens SET revoked_us=?2 WHERE name=?1"
                                          " AND revoked_us IS NULL"
                                        : "INSERT INTO tokens (name, role, sha256, created_us,"
                                          " created_by) VALUES (?1,?3,?4,?2,?5)",
                     &st, err);
    if (rc != 0)
        return rc;
    bind_text(st, 1, op->u.token.name);
    sqlite3_bind_int64(st, 2, op->u.token.ts_us);
    if (!op->u.token.revoke) {
        bind_text(st, 3, op->u.token.role);
        bind_text(st, 4, op->u.token.sha256);
        bind_text(st, 5, op->u.token.by != NULL ? op->u.token.by : "-");
    }
    if ((rc = step_done(db, st, err, "token")) != 0) {
        if (rc == CORE_ERR_INVALID)
            core_err_set(err, CORE_ERR_INVALID, "token %s: the name is taken", op->u.token.name);
        return rc;
    }
    if (op->u.token.revoke && sqlite3_changes(db) == 0)
        return core_err_set(err, CORE_ERR_INVALID, "token %s: no such token, or already revoked",
                            op->u.token.name);
    return 0;
}

int store__audit_run(sqlite3 *db, const store__op_t *op, core_err_t *err)
{
    return op->kind == STORE__OP_AUDIT ? insert_audit(db, op, err) : run_token(db, op, err);
}
