/* The audit chain: the writer gives every row prev_hash = the previous
 * row's hash and hash = SHA-256 over prev_hash and the row's canonical
 * content; the chain continues across group commits and reopenings; the
 * verifier finds the first broken link whatever was changed (a field, a
 * deleted row, a row without a hash), and tokens are created and revoked in
 * the same batch as their audit row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "unit/store/store_fixture.h"
#include "store/store_int.h"

static void add(fx_t *fx, const char *action, const char *target, const char *detail, int64_t ts)
{
    store_batch_t *b = store_batch_new();
    store_batch_audit(b, "tester", action, target, detail, ts);
    assert_int_equal(store_enqueue(fx->store, b, fx_done, fx), 0);
}

static void verify(const char *path, store_audit_verify_t *v)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    assert_non_null(db);
    assert_int_equal(store_db_audit_verify(db, v, &err), 0);
    store_db_close(db);
}

/* Runs sql on a connection of its own, with the append-only triggers
 * dropped there first (what a tamperer with the file can do). */
static void tamper(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db,
                          "DROP TRIGGER IF EXISTS audit_append_only_u;"
                          "DROP TRIGGER IF EXISTS audit_append_only_d;",
                          NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void test_hash_is_the_documented_form(void **state)
{
    (void)state;
    char got[65], want[65];
    store_audit_hash(store_audit_genesis, 7, 1000, "ops", "token.create", NULL, "{\"a\":1}", got);
    /* prev \n id \n ts \n then each field as LEN:BYTES\n, NULL as -\n */
    const char *form = "0000000000000000000000000000000000000000000000000000000000000000\n"
                       "7\n1000\n3:ops\n12:token.create\n-\n7:{\"a\":1}\n";
    uint8_t h[32];
    unsigned int hl = 32;
    EVP_Digest(form, strlen(form), h, &hl, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", h[i]);
    assert_string_equal(got, want);
    /* any field changes it, and NULL is not the empty string */
    char other[65];
    store_audit_hash(store_audit_genesis, 7, 1000, "ops", "token.create", "", "{\"a\":1}", other);
    assert_string_not_equal(got, other);
    store_audit_hash(store_audit_genesis, 8, 1000, "ops", "token.create", NULL, "{\"a\":1}", other);
    assert_string_not_equal(got, other);
}

static void test_chain_links_across_groups_and_reopen(void **state)
{
    (void)state;
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    store__pause(fx.store, 1); /* one group commit of five rows */
    for (int i = 0; i < 5; i++)
        add(&fx, "config.reload", "chorusd.json", "{\"status\":\"applied\"}", FX_T0 + i);
    store__pause(fx.store, 0);
    fx_wait(&fx, 5);
    assert_int_equal(fx.failed, 0);
    store_close(fx.store);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    store_options_t opt = {.path = fx.path};
    fx.store = store_open(&fx.loop, &opt, &err);
    assert_non_null(fx.store);
    assert_int_equal(store_audit(fx.store, "SIGHUP", "config.reload", NULL, NULL), 0);
    add(&fx, "token.create", "ci", NULL, FX_T0 + 9);
    fx_wait(&fx, 6);
    store_close(fx.store);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    fx.store = store_open(&fx.loop, &opt, &err);

    store_audit_verify_t v;
    verify(fx.path, &v);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.rows, 7);
    assert_int_equal(v.legacy, 0);
    /* the list shows the same chain, newest first, paged by id */
    store_db_t *db = store_db_open(fx.path, &err);
    json_t *page = NULL;
    store_audit_query_t q = {.limit = 4};
    assert_int_equal(store_db_audit(db, &q, &page, &err), 0);
    json_t *rows = json_object_get(page, "entries");
    assert_int_equal(json_array_size(rows), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), 7);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "hash")),
                        v.head);
    assert_string_equal(json_string_value(json_object_get(page, "next_cursor")), "4");
    json_decref(page);
    q.before_id = 4, q.action = "token";
    assert_int_equal(store_db_audit(db, &q, &page, &err), 0);
    assert_int_equal(json_array_size(json_object_get(page, "entries")), 0);
    json_decref(page);
    q.before_id = 0;
    assert_int_equal(store_db_audit(db, &q, &page, &err), 0);
    assert_int_equal(json_array_size(json_object_get(page, "entries")), 1);
    assert_true(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    /* the filter is a name, not a pattern: no wildcards, case kept */
    const char *never[] = {"%", "_oken", "TOKEN", "tok"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        q.action = never[i];
        assert_int_equal(store_db_audit(db, &q, &page, &err), 0);
        assert_int_equal(json_array_size(json_object_get(page, "entries")), 0);
        json_decref(page);
    }
    store_db_close(db);
    fx_close(&fx);
}

/* Writes five rows and returns with the store closed. */
static void five_rows(fx_t *fx)
{
    core_err_t err = {0};
    assert_int_equal(fx_open(fx, 0, 0, &err), 0);
    for (int i = 0; i < 5; i++)
        add(fx, "admin.denied", "/v1/admin/tokens", "{\"status\":403}", FX_T0 + i);
    fx_wait(fx, 5);
    store_close(fx->store);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    fx->store = NULL;
}

/* rows: the intact rows verified before the broken one. */
static void expect_broken(const char *sql, int64_t id, int64_t rows, const char *what)
{
    fx_t fx;
    five_rows(&fx);
    store_audit_verify_t v;
    verify(fx.path, &v);
    assert_int_equal(v.broken_id, 0);
    tamper(fx.path, sql);
    verify(fx.path, &v);
    assert_int_equal(v.broken_id, id);
    if (strstr(v.what, what) == NULL)
        fail_msg("%s: wanted \"%s\" in \"%s\"", sql, what, v.what);
    assert_int_equal(v.rows, rows);
    fx_close(&fx);
}

static void test_tampering_is_found_at_its_row(void **state)
{
    (void)state;
    expect_broken("UPDATE audit SET detail = '{\"status\":200}' WHERE id = 3", 3, 2, "was changed");
    expect_broken("UPDATE audit SET ts_us = ts_us + 1 WHERE id = 5", 5, 4, "was changed");
    expect_broken("UPDATE audit SET target = NULL WHERE id = 1", 1, 0, "was changed");
    expect_broken("DELETE FROM audit WHERE id = 2", 3, 1, "removed");
    expect_broken("DELETE FROM audit WHERE id = 1", 2, 0, "removed");
    expect_broken("UPDATE audit SET hash = NULL WHERE id = 4", 4, 3, "no hash");
    /* a row slipped in with a plausible but wrong hash */
    expect_broken("INSERT INTO audit (id, ts_us, actor, action, prev_hash, hash) SELECT 6, 1, 'x',"
                  " 'y', hash, hash FROM audit WHERE id = 5",
                  6, 5, "was changed");
    /* a backdated row without a hash before the first chained row: in a
     * database that never had rows from before the chain, not an old one */
    expect_broken("INSERT INTO audit (id, ts_us, actor, action) VALUES (-5, 1, 'alice',"
                  " 'token.revoke')",
                  -5, 0, "no hash");
}

/* Rows from before the chain (schema 1) stay readable as such after the
 * upgrade; a row without a hash slipped in later, before them or among
 * them, is not taken for one. */
static void test_rows_from_before_the_chain(void **state)
{
    char dir[] = "/tmp/chorus-audit-old-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/chorus.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    core_err_t err = {0};
    assert_int_equal(store__migrate_upto(db, 1, &err), 0);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO audit (ts_us, actor, action) VALUES (1, 'a', 'x');"
                                  "INSERT INTO audit (ts_us, actor, action) VALUES (2, 'a', 'y');"
                                  "INSERT INTO audit (ts_us, actor, action) VALUES (3, 'a', 'z');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(store__migrate(db, &err), 0);
    sqlite3_close(db);
    store_audit_verify_t v;
    verify(path, &v);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.legacy, 3);
    tamper(path, "INSERT INTO audit (id, ts_us, actor, action) VALUES (-1, 0, 'alice', 'x')");
    verify(path, &v);
    assert_int_equal(v.broken_id, -1);
    tamper(path, "DELETE FROM audit WHERE id = -1;"
                 "INSERT INTO audit (id, ts_us, actor, action) VALUES (4, 4, 'alice', 'x')");
    verify(path, &v);
    assert_int_equal(v.broken_id, 4);
    (void)state;
}

static void on_token(const store_token_row_t *t, void *arg)
{
    assert_string_equal(t->name, "ci");
    assert_string_equal(t->role, "viewer");
    assert_string_equal(t->sha256, "ab");
    assert_string_equal(t->created_by, "ops");
    *(int64_t *)arg = t->revoked_us;
}

static void test_tokens_ride_with_their_audit_row(void **state)
{
    (void)state;
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    store_batch_t *b = store_batch_new();
    store_batch_token_create(b, "ci", "viewer", "ab", "ops", FX_T0);
    store_batch_audit(b, "ops", "token.create", "ci", NULL, FX_T0);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 1);
    assert_int_equal(fx.last_status, 0);
    /* the name is taken: the whole batch, audit row included, is refused */
    b = store_batch_new();
    store_batch_token_create(b, "ci", "admin", "cd", "ops", FX_T0 + 1);
    store_batch_audit(b, "ops", "token.create", "ci", NULL, FX_T0 + 1);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 2);
    assert_int_equal(fx.last_status, CORE_ERR_INVALID);
    b = store_batch_new();
    store_batch_token_revoke(b, "ci", FX_T0 + 2);
    store_batch_audit(b, "ops", "token.revoke", "ci", NULL, FX_T0 + 2);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 3);
    assert_int_equal(fx.last_status, 0);
    b = store_batch_new(); /* twice: nothing left to revoke */
    store_batch_token_revoke(b, "ci", FX_T0 + 3);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 4);
    assert_int_equal(fx.last_status, CORE_ERR_INVALID);

    store_db_t *db = store_db_open(fx.path, &err);
    int64_t revoked = -1;
    assert_int_equal(store_db_tokens(db, on_token, &revoked, &err), 0);
    assert_int_equal(revoked, FX_T0 + 2);
    store_db_close(db);
    store_audit_verify_t v;
    verify(fx.path, &v);
    assert_int_equal(v.rows, 2); /* the refused batch left no row and no gap */
    assert_int_equal(v.broken_id, 0);
    fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_the_documented_form),
        cmocka_unit_test(test_chain_links_across_groups_and_reopen),
        cmocka_unit_test(test_tampering_is_found_at_its_row),
        cmocka_unit_test(test_rows_from_before_the_chain),
        cmocka_unit_test(test_tokens_ride_with_their_audit_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
