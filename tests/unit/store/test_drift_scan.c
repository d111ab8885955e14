/* Drift windows without scans of the hot tables (store_db_drift_window):
 * on a week of turns and events, a one-hour window reads the rows around
 * it by rowid, not the tables (SQLite's full-scan and VM-step counters of
 * every statement it ran, which a plain ts_us query shows it would), and
 * still counts exactly what a scan counts, rows appended a few minutes out
 * of time order included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_int.h"

#define MIN_US 60000000LL
#define T0 1793613600000000LL
#define WEEK_MIN (7 * 24 * 60)
#define PER_MIN 3 /* turns a minute: 30240 in the week */

typedef struct {
    long long fullscan, vm_steps;
} counts_t;

static int on_trace(unsigned type, void *ctx, void *p, void *x)
{
    counts_t *c = ctx;
    sqlite3_stmt *st = p;
    c->fullscan += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
    c->vm_steps += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
    return 0;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg);
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

/* A week of traffic, a minute at a time in time order; every 97th minute
 * one turn is appended 5 minutes late (a slow batch). */
static void fill(sqlite3 *db)
{
    exec(db, "BEGIN");
    exec(db,
         "INSERT INTO conversations (id, channel, flow, started_us) VALUES ('c', 'web', 'f', 0)");
    sqlite3_stmt *t, *e;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO turns (conversation_id, seq, direction, ts_us,"
                                        " intent, confidence, oos, channel) VALUES"
                                        " ('c', ?1, 'in', ?2, ?3, 0.8, ?4, 'web')",
                                        -1, &t, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO events (conversation_id, ts_us, kind)"
                                        " VALUES ('c', ?1, ?2)",
                                        -1, &e, NULL),
                     SQLITE_OK);
    static const char *const intents[] = {"booking", "refund", "baggage"};
    int seq = 0;
    for (int m = 0; m < WEEK_MIN; m++)
        for (int k = 0; k < PER_MIN; k++) {
            int64_t ts = T0 + m * MIN_US + k * 1000;
            if (k == 0 && m % 97 == 0 && m >= 5)
                ts -= 5 * MIN_US;
            sqlite3_bind_int(t, 1, ++seq);
            sqlite3_bind_int64(t, 2, ts);
            sqlite3_bind_text(t, 3, intents[seq % 3], -1, SQLITE_STATIC);
            sqlite3_bind_int(t, 4, seq % 11 == 0);
            assert_int_equal(sqlite3_step(t), SQLITE_DONE);
            sqlite3_reset(t);
            sqlite3_bind_int64(e, 1, ts);
            sqlite3_bind_text(e, 2, seq % 7 == 0 ? "fallback" : "node", -1, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(e), SQLITE_DONE);
            sqlite3_reset(e);
        }
    sqlite3_finalize(t);
    sqlite3_finalize(e);
    exec(db, "COMMIT");
}

static long long scalar(sqlite3 *db, const char *sql, int64_t from, int64_t to)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_window_reads_around_it(void **state)
{
    (void)state;
    char dir[] = "/tmp/chorus-drift-XXXXXX", path[64], cmd[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/chorus.db", dir);
    sqlite3 *w;
    core_err_t err = {0};
    assert_int_equal(store__sqlite_open(path, 1, 0, &w, &err), 0);
    fill(w);
    sqlite3_close(w);

    store_db_t *db = store_db_open(path, &err);
    assert_non_null(db);
    counts_t c = {0};
    sqlite3_trace_v2(db->db, SQLITE_TRACE_PROFILE, on_trace, &c);
    /* an hour in the middle of the week, that ends 2 minutes before a row
     * that belongs to it is appended 5 minutes late */
    int64_t from = T0 + (97 * 41 - 62) * MIN_US, to = from + 60 * MIN_US;
    json_t *win = NULL;
    assert_int_equal(store_db_drift_window(db, from, to, &win, &err), 0);
    long long rows = (long long)WEEK_MIN * PER_MIN;
    assert_int_equal(c.fullscan, 0);
    counts_t used = c;

    /* the same figures as a scan, which the counters do see */
    memset(&c, 0, sizeof(c));
    long long turns = scalar(db->db,
                             "SELECT count(*) FROM turns WHERE direction = 'in'"
                             " AND ts_us >= ?1 AND ts_us < ?2",
                             from, to);
    long long scan_steps = c.vm_steps;
    assert_true(c.fullscan >= rows - 1);         /* the counters see a scan */
    assert_true(used.vm_steps * 5 < c.vm_steps); /* the window: under a fifth of one scan */
    assert_int_equal(turns, 60 * PER_MIN + 1);   /* the late row counts */
    assert_int_equal(json_integer_value(json_object_get(win, "turns")), turns);
    assert_int_equal(json_integer_value(json_object_get(win, "oos")),
                     scalar(db->db,
                            "SELECT count(*) FROM turns WHERE oos = 1"
                            " AND ts_us >= ?1 AND ts_us < ?2",
                            from, to));
    assert_int_equal(json_integer_value(json_object_get(win, "fallbacks")),
                     scalar(db->db,
                            "SELECT count(*) FROM events WHERE kind = 'fallback'"
                            " AND ts_us >= ?1 AND ts_us < ?2",
                            from, to));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(win, "intents"), "booking")),
        scalar(db->db,
               "SELECT count(*) FROM turns WHERE intent = 'booking' AND oos = 0"
               " AND ts_us >= ?1 AND ts_us < ?2",
               from, to));
    printf("# window of %lld turns in %lld: %lld VM steps; one scan of turns: %lld\n", turns, rows,
           used.vm_steps, scan_steps);
    json_decref(win);

    /* windows before and after everything, and the whole week: still exact */
    int64_t edges[][2] = {{0, T0}, {T0 + 8 * 24 * 60 * MIN_US, INT64_MAX}, {0, INT64_MAX}};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        assert_int_equal(store_db_drift_window(db, edges[i][0], edges[i][1], &win, &err), 0);
        assert_int_equal(json_integer_value(json_object_get(win, "turns")),
                         scalar(db->db,
                                "SELECT count(*) FROM turns WHERE ts_us >= ?1 AND ts_us < ?2",
                                edges[i][0], edges[i][1]));
        json_decref(win);
    }
    store_db_close(db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_empty_tables(void **state)
{
    (void)state;
    char dir[] = "/tmp/chorus-drift-XXXXXX", path[64], cmd[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/chorus.db", dir);
    sqlite3 *w;
    core_err_t err = {0};
    assert_int_equal(store__sqlite_open(path, 1, 0, &w, &err), 0);
    sqlite3_close(w);
    store_db_t *db = store_db_open(path, &err);
    json_t *win = NULL;
    assert_int_equal(store_db_drift_window(db, 0, INT64_MAX, &win, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(win, "turns")), 0);
    assert_int_equal(json_object_size(json_object_get(win, "intents")), 0);
    json_decref(win);
    store_db_close(db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_reads_around_it),
        cmocka_unit_test(test_empty_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
