/* The page-cache wrapper (store_pcache.c): it answers commits' truncates
 * itself when no page lies past the database's end, and what SQLite reads
 * stays exactly what was written. Transactions that split index pages (the
 * balance's page swaps through the spare page number), roll back after
 * growing the file (a truncate that must reach pcache1) and grow it again
 * with other rows, and a second connection's writes between them (after
 * which the first must drop every cached page) are checked against a model
 * of the table and by SQLite's integrity check, with a cache large enough
 * to hold everything, with one small enough to recycle pages all the
 * time, and in an in-memory database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store_int.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_intact(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* The table holds rows rows of bytes key bytes in all, by the table and by
 * its index. */
static void assert_rows(sqlite3 *db, int64_t rows, int64_t bytes)
{
    assert_int_equal(scalar(db, "SELECT count(*) FROM t"), rows);
    assert_int_equal(scalar(db, "SELECT coalesce(sum(length(k)), 0) FROM t"), bytes);
    assert_int_equal(scalar(db, "SELECT count(*) FROM t INDEXED BY t_k WHERE k > ''"), rows);
}

/* Opens path, runs pragma, creates the table t (an integer key and an
 * indexed text column) and prepares an insert into it. */
static void open_table(const char *path, const char *pragma, sqlite3 **db, sqlite3_stmt **ins)
{
    assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(*db, pragma, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(*db,
                                  "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL);"
                                  "CREATE INDEX t_k ON t(k);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(*db, "INSERT INTO t (k) VALUES (?)", -1, ins, NULL),
                     SQLITE_OK);
}

/* One transaction of n rows with random index keys; kept or rolled back. */
static void round_of(sqlite3 *db, sqlite3_stmt *ins, int n, int keep, int64_t *rows, int64_t *bytes)
{
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    int64_t added = 0, len_sum = 0;
    for (int i = 0; i < n; i++) {
        char key[64];
        int len = snprintf(key, sizeof(key), "%016llx-%d", (unsigned long long)next_rand(),
                           (int)(next_rand() % 1000));
        sqlite3_bind_text(ins, 1, key, len, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        added++, len_sum += len;
    }
    assert_int_equal(sqlite3_exec(db, keep ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    if (keep)
        *rows += added, *bytes += len_sum;
}

static void run_workload(const char *cache_pragma)
{
    char path[] = "/tmp/chorus-pcache-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *db;
    sqlite3_stmt *ins;
    open_table(path, cache_pragma, &db, &ins);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    unsigned long skipped_before = store__pcache_skipped();
    int64_t rows = 0, bytes = 0;
    for (int r = 0; r < 40; r++) {
        /* every fourth round grows the file by hundreds of pages, then
         * rolls back: the cache must drop the pages past the end */
        int n = r % 4 == 3 ? 6000 : 800;
        round_of(db, ins, n, r % 4 != 3, &rows, &bytes);
        if (r % 5 == 4) { /* pages cached by db are now stale */
            assert_int_equal(
                sqlite3_exec(other, "DELETE FROM t WHERE id % 7 = 0", NULL, NULL, NULL), SQLITE_OK);
            rows = scalar(other, "SELECT count(*) FROM t");
            bytes = scalar(other, "SELECT coalesce(sum(length(k)), 0) FROM t");
        }
        assert_rows(db, rows, bytes);
    }
    assert_intact(db);
    /* the wrapper is in place and answered commits' truncates itself */
    assert_true(store__pcache_skipped() > skipped_before);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    sqlite3_close(other);
    /* what another connection reads from the file agrees */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(scalar(db, "SELECT count(*) FROM t"), rows);
    assert_intact(db);
    sqlite3_close(db);
    unlink(path);
}

static void test_large_cache(void **state)
{
    (void)state;
    run_workload("PRAGMA cache_size=-65536");
}

static void test_small_cache_recycles(void **state)
{
    (void)state;
    run_workload("PRAGMA cache_size=20");
}

/* SQLite's in-memory database (the ":memory:" store) keeps every page in
 * the cache and never evicts one, so there the wrapper spares a walk over
 * the whole database at each commit that splits a page. Rollbacks after
 * growth must still drop the pages past the end. */
static void test_in_memory_database(void **state)
{
    (void)state;
    sqlite3 *db;
    sqlite3_stmt *ins;
    open_table(":memory:", "PRAGMA journal_mode=MEMORY", &db, &ins);
    unsigned long skipped_before = store__pcache_skipped();
    int64_t rows = 0, bytes = 0;
    for (int r = 0; r < 40; r++) {
        round_of(db, ins, r % 4 == 3 ? 6000 : 800, r % 4 != 3, &rows, &bytes);
        assert_rows(db, rows, bytes);
    }
    assert_intact(db);
    assert_true(store__pcache_skipped() > skipped_before);
    sqlite3_finalize(ins);
    sqlite3_close(db);
}

int main(void)
{
    store__sqlite_configure(); /* before SQLite initialises, as the writer does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_cache),
        cmocka_unit_test(test_small_cache_recycles),
        cmocka_unit_test(test_in_memory_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
