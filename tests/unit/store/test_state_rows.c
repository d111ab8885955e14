/* A conversation's saved state through its life: the row is added at the
 * start, rewritten each turn, marked inactive when the conversation ends or
 * leaves the bot, and active again when it comes back or starts anew. The
 * restore reads what the partial index on `active` lists, so the flag and
 * the index must follow every change; and a turn that keeps the flag as it
 * was must not write it (the writer leaves that index alone then, which a
 * trigger on `UPDATE OF active` counts here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store_int.h"
#include "unit/store/store_fixture.h"

typedef struct {
    fx_t fx;
    int sent;
} world_t;

/* A batch starting conversation id, or an empty one for id NULL. */
static store_batch_t *batch_starting(const char *id)
{
    store_batch_t *b = store_batch_new();
    if (id != NULL) {
        store_conv_start_t st = {id, "web", "f", "v1", "", NULL, FX_T0};
        store_batch_conv_start(b, &st);
    }
    return b;
}

/* Commits b and waits until it is durable. */
static void commit(world_t *w, store_batch_t *b)
{
    assert_int_equal(store_enqueue(w->fx.store, b, fx_done, &w->fx), 0);
    fx_wait(&w->fx, ++w->sent);
    assert_int_equal(w->fx.failed, 0);
}

/* One turn's batch of conversation key: its start (start_id, or none), an
 * end (outcome, or none), and state n with the active flag. */
static void turn(world_t *w, const char *key, const char *start_id, const char *outcome, int n,
                 int active)
{
    store_batch_t *b = batch_starting(start_id);
    if (outcome != NULL)
        store_batch_conv_end(b, key, outcome, NULL, FX_T0 + n);
    char state[32];
    snprintf(state, sizeof(state), "{\"n\":%d}", n);
    store_batch_state(b, key, state, active, FX_T0 + n);
    commit(w, b);
}

/* The saved row of key is state n with the flag, updated at n. */
static void expect_row(const char *path, const char *key, int n, int active)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT state = '{\"n\":%d}' AND active = %d AND updated_us = %lld"
             " FROM conversation_state WHERE conversation_id = '%s'",
             n, active, (long long)(FX_T0 + n), key);
    assert_int_equal(fx_scalar(path, sql), 1);
}

/* The conversations the restore would bring back, read through the index. */
static int64_t active_listed(const char *path)
{
    return fx_scalar(path, "SELECT count(*) FROM conversation_state"
                           " INDEXED BY conversation_state_active WHERE active = 1");
}

/* Times an UPDATE set `active` (the upsert's update does; a plain rewrite
 * of the state does not). */
static int64_t flag_writes(const char *path)
{
    return fx_scalar(path, "SELECT n FROM flag_writes");
}

static void test_state_through_a_life(void **state)
{
    world_t w = {0};
    core_err_t err = {0};
    assert_int_equal(fx_open(&w.fx, 100, 64, &err), 0);
    const char *p = w.fx.path;
    assert_int_equal(fx_exec(p, "CREATE TABLE flag_writes (n INTEGER);"
                                "INSERT INTO flag_writes VALUES (0);"
                                "CREATE TRIGGER count_flag_writes AFTER UPDATE OF active"
                                " ON conversation_state BEGIN"
                                " UPDATE flag_writes SET n = n + 1; END;"),
                     SQLITE_OK);

    turn(&w, "c1", "c1", NULL, 1, 1); /* the start adds the row */
    expect_row(p, "c1", 1, 1);
    assert_int_equal(active_listed(p), 1);
    turn(&w, "c1", NULL, NULL, 2, 1); /* turns rewrite it, the flag untouched */
    turn(&w, "c1", NULL, NULL, 3, 1);
    expect_row(p, "c1", 3, 1);
    assert_int_equal(flag_writes(p), 0);

    turn(&w, "c1", NULL, NULL, 4, 0); /* handed to a person, not held */
    expect_row(p, "c1", 4, 0);
    assert_int_equal(active_listed(p), 0);
    assert_int_equal(flag_writes(p), 1);
    turn(&w, "c1", NULL, NULL, 5, 1); /* back with the bot: no start, flag set again */
    expect_row(p, "c1", 5, 1);
    assert_int_equal(active_listed(p), 1);
    assert_int_equal(flag_writes(p), 2);
    turn(&w, "c1", NULL, NULL, 6, 1);
    assert_int_equal(flag_writes(p), 2);

    turn(&w, "c1", NULL, "contained", 7, 0); /* the end (its own update, then the state) */
    expect_row(p, "c1", 7, 0);
    assert_int_equal(active_listed(p), 0);
    assert_int_equal(flag_writes(p), 4);
    turn(&w, "c1", "c1#1", NULL, 8, 1); /* the key starts its next conversation */
    expect_row(p, "c1", 8, 1);
    assert_int_equal(active_listed(p), 1);
    assert_int_equal(flag_writes(p), 5);

    /* a conversation with no row yet and no start in the batch: added */
    commit(&w, batch_starting("c2"));
    turn(&w, "c2", NULL, NULL, 9, 1);
    expect_row(p, "c2", 9, 1);
    assert_int_equal(active_listed(p), 2);
    turn(&w, "c2", NULL, NULL, 10, 1);
    expect_row(p, "c2", 10, 1);
    assert_int_equal(flag_writes(p), 5);
    assert_int_equal(fx_scalar(p, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
    fx_close(&w.fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_through_a_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
