/* Migration 8 rebuilds conversations and handoffs (the tables other rows
 * refer to) with their CHECKs as chains of comparisons: a version-7 database
 * with rows in every table comes out with the same rows, the same rules
 * (outcomes, handoff states, foreign keys and their cascades), the same
 * indexes, and statements that no longer build a temporary b-tree per row.
 * A database whose rows break a foreign key is refused and left as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store_int.h"
#include "unit/store/store_fixture.h"

/* The statements the writer runs on these tables, as store_sqlite.c has them. */
static const char *const writes[] = {
    "INSERT INTO conversations (id, channel, flow, flow_version, variant, adapter_version,"
    " started_us) VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
    "UPDATE conversations SET ended_us=?2, outcome=?3, escalation_reason=?4 WHERE id=?1",
    "INSERT OR REPLACE INTO handoffs (conversation_id, key, queue, channel, reason, state, agent,"
    " disposition, release_outcome, entered_us, claimed_us, done_us, detail, updated_us)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
};

static const char *const tables[] = {"conversations",      "turns",  "events",
                                     "conversation_state", "labels", "handoffs",
                                     "handoff_messages"};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

/* Every row the query gives, as text: owned. */
static char *dump_query(const char *path, const char *sql)
{
    sqlite3 *db = open_db(path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_append_str(&b, "rows:\n");
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            core_buf_append_str(&b, v ? v : "NULL");
            core_buf_append_str(&b, "|");
        }
        core_buf_append_str(&b, "\n");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return core_buf_steal(&b, NULL);
}

/* Every row of table, in the order of its first columns: owned. */
static char *dump(const char *path, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1, 2, 3", table);
    return dump_query(path, sql);
}

/* How many temporary b-trees the statement opens per run. */
static int ephemerals(const char *path, const char *sql)
{
    sqlite3 *db = open_db(path);
    char explain[1024];
    snprintf(explain, sizeof(explain), "EXPLAIN %s", sql);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A database at schema version 7 in dir, with rows in every table. */
static void make_v7(char *dir, char *path, size_t path_size)
{
    strcpy(dir, "/tmp/chorus-upgrade-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, path_size, "%s/chorus.db", dir);
    sqlite3 *db = open_db(path);
    core_err_t err = {0};
    assert_int_equal(store__migrate_upto(db, 7, &err), 0);
    const char *rows =
        "INSERT INTO conversations (id, channel, flow, flow_version, variant, adapter_version,"
        " started_us) VALUES ('c1', 'web', 'booking', 'v1', '', 'web/1', 100);"
        "INSERT INTO conversations (id, channel, flow, started_us, ended_us, outcome, csat,"
        " csat_us) VALUES ('c2', 'sms', 'faq', 200, 260, 'contained', 4, 270);"
        "INSERT INTO conversations (id, channel, flow, started_us, ended_us, outcome,"
        " escalation_reason) VALUES ('c3', 'voice', 'billing', 300, 390, 'escalated', 'asked');"
        "INSERT INTO turns (conversation_id, seq, direction, ts_us, text, intent, confidence,"
        " channel) VALUES ('c1', 1, 'in', 101, 'hello', 'greet', 0.9, 'web'),"
        " ('c1', 2, 'out', 102, 'Hi!', NULL, NULL, 'web'),"
        " ('c2', 1, 'in', 201, 'hours?', 'hours', 0.8, 'sms'),"
        " ('c2', 2, 'out', 202, '9 to 5', NULL, NULL, 'sms');"
        "INSERT INTO events (conversation_id, turn_seq, ts_us, kind, name, status)"
        " VALUES ('c2', 1, 201, 'action', 'lookup', 'ok');"
        "INSERT INTO conversation_state (conversation_id, state, active, updated_us)"
        " VALUES ('c1', '{\"v\":1}', 1, 102), ('c2', '{\"v\":1}', 0, 260);"
        "INSERT INTO labels (turn_id, intent, labeller, labelled_us)"
        " SELECT id, 'greeting', 'ann', 500 FROM turns WHERE conversation_id = 'c1' AND seq = 1;"
        "INSERT INTO handoffs (conversation_id, key, queue, channel, state, agent, entered_us,"
        " updated_us) VALUES ('c3', 'voice:CA1', 'billing', 'voice', 'claimed', 'bob', 380, 385);"
        "INSERT INTO handoff_messages (conversation_id, handoff_id, seq, sender, text, ts_us)"
        " VALUES ('c3', 'h1', 1, 'customer', 'my bill', 381);";
    assert_int_equal(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fx_scalar(path, "SELECT max(version) FROM schema_migrations"), 7);
}

static void remove_dir(const char *dir)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Opens (and so upgrades) the database as chorusd does; returns the status. */
static int open_store(const char *path, core_err_t *err)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    store_options_t opt = {.path = path};
    store_t *s = store_open(&loop, &opt, err);
    if (s != NULL) {
        store_close(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return s != NULL ? 0 : err->code;
}

static void test_upgrade_keeps_rows_and_rules(void **state)
{
    char dir[64], path[128];
    make_v7(dir, path, sizeof(path));
    /* the statements as version 7 runs them: a temporary b-tree each */
    assert_int_equal(ephemerals(path, writes[0]), 1);
    assert_int_equal(ephemerals(path, writes[1]), 1);
    assert_int_equal(ephemerals(path, writes[2]), 1);
    char *before[N_TABLES];
    for (size_t i = 0; i < N_TABLES; i++)
        before[i] = dump(path, tables[i]);

    core_err_t err = {0};
    assert_int_equal(open_store(path, &err), 0);
    assert_int_equal(fx_scalar(path, "SELECT max(version) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(fx_scalar(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);

    /* the same rows in every table (turns with migration 9's client_id,
     * NULL for every row written before it) */
    for (size_t i = 0; i < N_TABLES; i++) {
        char *after = dump(path, tables[i]);
        if (strcmp(tables[i], "turns") == 0) {
            core_buf_t want;
            core_buf_init(&want, 1 << 20);
            for (const char *p = before[i]; *p != '\0'; p++)
                if (*p == '\n' && p > before[i] && p[-1] == '|')
                    core_buf_append_str(&want, "NULL|\n");
                else
                    core_buf_append(&want, p, 1);
            free(before[i]);
            before[i] = core_buf_steal(&want, NULL);
        }
        assert_string_equal(after, before[i]);
        assert_non_null(strchr(after, '|')); /* the table had rows */
        free(after);
        free(before[i]);
    }
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(fx_scalar(path, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"),
                     1);
    /* the indexes are back; nothing of the old tables is left */
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name IN"
                                     " ('conversations_started', 'conversations_ended',"
                                     " 'handoffs_open', 'handoffs_entered')"),
                     4);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_new'"),
                     0);
    /* and the writes no longer build a b-tree per row */
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        assert_int_equal(ephemerals(path, writes[i]), 0);

    /* the rules hold: outcomes and handoff states ... */
    const char *outcomes[] = {"active", "contained", "escalated", "abandoned", "error"};
    for (size_t i = 0; i < 5; i++) {
        char sql[96];
        snprintf(sql, sizeof(sql), "UPDATE conversations SET outcome = '%s' WHERE id = 'c1'",
                 outcomes[i]);
        assert_int_equal(fx_exec(path, sql), SQLITE_OK);
    }
    assert_int_equal(fx_exec(path, "UPDATE conversations SET outcome = 'won' WHERE id = 'c1'"),
                     SQLITE_CONSTRAINT);
    assert_int_equal(fx_exec(path, "INSERT INTO conversations (id, channel, flow, started_us,"
                                   " outcome) VALUES ('c9', 'web', 'f', 1, 'Active')"),
                     SQLITE_CONSTRAINT);
    assert_int_equal(fx_exec(path, "UPDATE handoffs SET state = 'released' WHERE"
                                   " conversation_id = 'c3'"),
                     SQLITE_OK);
    assert_int_equal(fx_exec(path, "UPDATE handoffs SET state = 'lost' WHERE"
                                   " conversation_id = 'c3'"),
                     SQLITE_CONSTRAINT);
    assert_int_equal(fx_exec(path, "UPDATE conversations SET csat = 6 WHERE id = 'c2'"),
                     SQLITE_CONSTRAINT);
    /* ... the foreign keys refer to the new table and still cascade */
    assert_int_equal(fx_exec(path, "INSERT INTO turns (conversation_id, seq, direction, ts_us,"
                                   " channel) VALUES ('nope', 1, 'in', 1, 'web')"),
                     SQLITE_CONSTRAINT);
    assert_int_equal(fx_exec(path, "DELETE FROM conversations WHERE id = 'c2'"), SQLITE_OK);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM turns WHERE conversation_id = 'c2'"), 0);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM events"), 0);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM conversation_state"), 1);
    assert_int_equal(fx_exec(path, "DELETE FROM conversations WHERE id = 'c1'"), SQLITE_OK);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM labels"), 0);
    remove_dir(dir);
}

static void test_fresh_database_has_the_same_tables(void **state)
{
    char dir[64], path[128];
    make_v7(dir, path, sizeof(path));
    core_err_t err = {0};
    assert_int_equal(open_store(path, &err), 0);
    fx_t fx;
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    const char *schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name";
    char *upgraded = dump_query(path, schema);
    char *fresh = dump_query(fx.path, schema);
    assert_string_equal(fresh, upgraded);
    free(upgraded);
    free(fresh);
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        assert_int_equal(ephemerals(fx.path, writes[i]), 0);
    fx_close(&fx);
    remove_dir(dir);
}

static void test_broken_foreign_key_refused(void **state)
{
    char dir[64], path[128];
    make_v7(dir, path, sizeof(path));
    /* a turn whose conversation is gone, written with foreign keys off */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO turns (conversation_id, seq, direction, ts_us,"
                                  " channel) VALUES ('gone', 1, 'in', 1, 'web')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char *before = dump(path, "conversations");

    core_err_t err = {0};
    assert_int_equal(open_store(path, &err), CORE_ERR_INVALID);
    assert_non_null(strstr(err.msg, "migration 8"));
    assert_non_null(strstr(err.msg, "of turns refers to a missing row of conversations"));
    assert_non_null(strstr(err.msg, path));
    /* nothing changed: still version 7, the old table and its rows */
    assert_int_equal(fx_scalar(path, "SELECT max(version) FROM schema_migrations"), 7);
    char *after = dump(path, "conversations");
    assert_string_equal(after, before);
    assert_int_equal(ephemerals(path, writes[0]), 1);
    assert_int_equal(fx_scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_new'"),
                     0);
    free(before);
    free(after);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_keeps_rows_and_rules),
        cmocka_unit_test(test_fresh_database_has_the_same_tables),
        cmocka_unit_test(test_broken_foreign_key_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
