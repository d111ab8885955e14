/* Schema and migrations: a fresh file is created at the current version with
 * every migration recorded, tables are STRICT with foreign keys on, opening
 * again changes nothing, a newer database is refused by name, and a file
 * that is not a database is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store_int.h"
#include "unit/store/store_fixture.h"

static void test_fresh_database(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT max(version) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(fx_scalar(fx.path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(fx_scalar(fx.path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    /* every table the issue names is there and STRICT */
    const char *tables[] = {"conversations",      "turns",  "events",
                            "conversation_state", "labels", "audit"};
    for (size_t i = 0; i < 6; i++) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT strict FROM pragma_table_list WHERE name = '%s'",
                 tables[i]);
        assert_int_equal(fx_scalar(fx.path, sql), 1);
    }
    /* STRICT: a string in an INTEGER column is refused */
    assert_int_equal(fx_exec(fx.path, "INSERT INTO conversations (id, channel, flow, started_us)"
                                      " VALUES ('x', 'web', 'f', 'yesterday')"),
                     SQLITE_CONSTRAINT);
    /* foreign keys: a turn of an unknown conversation is refused */
    assert_int_equal(fx_exec(fx.path, "INSERT INTO turns (conversation_id, seq, direction, ts_us,"
                                      " channel) VALUES ('nope', 1, 'in', 1, 'web')"),
                     SQLITE_CONSTRAINT);
    /* audit is append-only */
    assert_int_equal(
        fx_exec(fx.path, "INSERT INTO audit (ts_us, actor, action) VALUES (1,'a','b')"), SQLITE_OK);
    assert_int_not_equal(fx_exec(fx.path, "DELETE FROM audit"), SQLITE_OK);
    assert_int_not_equal(fx_exec(fx.path, "UPDATE audit SET actor = 'z'"), SQLITE_OK);
    fx_close(&fx);
}

static void test_reopen_is_idempotent(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    store_close(fx.store);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    store_options_t opt = {.path = fx.path};
    fx.store = store_open(&fx.loop, &opt, &err);
    assert_non_null(fx.store);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    fx_close(&fx);
}

static void test_newer_database_refused(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    store_close(fx.store);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    fx.store = NULL;
    assert_int_equal(fx_exec(fx.path, "INSERT INTO schema_migrations VALUES (99, 1, 'future')"),
                     SQLITE_OK);
    store_options_t opt = {.path = fx.path};
    assert_null(store_open(&fx.loop, &opt, &err));
    assert_int_equal(err.code, CORE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "database schema version 99 is newer than this chorus"));
    assert_non_null(strstr(err.msg, fx.path));
    /* the read side refuses it too */
    assert_null(store_db_open(fx.path, &err));
    assert_non_null(strstr(err.msg, "version 99"));
    fx_close(&fx);
}

static void test_not_a_database(void **state)
{
    char path[] = "/tmp/chorus-notdb-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char junk[] = "this is not a database, it is a text file that is long enough......"
                        "..................................................................";
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    uv_loop_t loop;
    uv_loop_init(&loop);
    core_err_t err = {0};
    store_options_t opt = {.path = path};
    assert_null(store_open(&loop, &opt, &err));
    assert_non_null(strstr(err.msg, path));
    assert_int_not_equal(err.code, 0);
    assert_null(store_db_open("/nonexistent/dir/chorus.db", &err));
    assert_int_equal(err.code, CORE_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/chorus.db"));
    uv_loop_close(&loop);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_database),
        cmocka_unit_test(test_reopen_is_idempotent),
        cmocka_unit_test(test_newer_database_refused),
        cmocka_unit_test(test_not_a_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
