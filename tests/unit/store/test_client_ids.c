/* store_db_client_id_recorded() and its thread-pool form: a user turn's
 * client id is found among every conversation of its key ("key", "key#1",
 * ...), never among another key's (one that merely begins the same), never
 * on a bot turn; the lookup goes through the turns_client_id index
 * (migration 12), not a walk of the key's turns; and a :memory: store,
 * which keeps nothing from before the process, answers CORE_ERR_NOT_FOUND. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store_int.h"
#include "unit/store/store_fixture.h"

/* A conversation id with one user turn (client id cid, may be NULL) and
 * one bot turn that carries bot_cid. */
static void add_conversation(fx_t *fx, int *sent, const char *id, const char *cid,
                             const char *bot_cid)
{
    store_batch_t *b = store_batch_new();
    store_conv_start_t st = {id, "sms", "f", "v1", "", NULL, FX_T0};
    store_batch_conv_start(b, &st);
    store_turn_t in = {.conversation_id = id,
                       .seq = 1,
                       .direction = 'i',
                       .ts_us = FX_T0,
                       .text = "hi",
                       .confidence = -1,
                       .latency_us = -1,
                       .channel = "sms",
                       .client_id = cid};
    store_batch_turn(b, &in);
    store_turn_t out = in;
    out.seq = 2;
    out.direction = 'o';
    out.client_id = bot_cid;
    store_batch_turn(b, &out);
    assert_int_equal(store_enqueue(fx->store, b, fx_done, fx), 0);
    fx_wait(fx, ++*sent);
    assert_int_equal(fx->failed, 0);
}

static int recorded(store_db_t *db, const char *key, const char *cid)
{
    core_err_t err = {0};
    int found = -1;
    assert_int_equal(store_db_client_id_recorded(db, key, cid, &found, &err), 0);
    return found;
}

typedef struct {
    int status, found, calls;
} answer_t;

static void on_found(int status, int found, void *data)
{
    answer_t *a = data;
    a->status = status;
    a->found = found;
    a->calls++;
}

static void test_found_among_the_keys_conversations(void **state)
{
    (void)state;
    fx_t fx;
    core_err_t err = {0};
    int sent = 0;
    assert_int_equal(fx_open(&fx, 0, 0, &err), 0);
    add_conversation(&fx, &sent, "sms:+1:+2", "SMfirst", NULL);
    add_conversation(&fx, &sent, "sms:+1:+2#1", "SMlater", "SMbot");
    add_conversation(&fx, &sent, "sms:+1:+23", "SMother", NULL); /* another pair */
    add_conversation(&fx, &sent, "sms:+1:+2x", NULL, NULL);

    store_db_t *db = store_db_open(fx.path, &err);
    assert_non_null(db);
    assert_int_equal(recorded(db, "sms:+1:+2", "SMfirst"), 1);
    assert_int_equal(recorded(db, "sms:+1:+2", "SMlater"), 1); /* a later conversation's */
    assert_int_equal(recorded(db, "sms:+1:+2", "SMother"), 0); /* "+23" is not "+2" */
    assert_int_equal(recorded(db, "sms:+1:+23", "SMother"), 1);
    assert_int_equal(recorded(db, "sms:+1:+2", "SMbot"), 0); /* a bot turn is no message */
    assert_int_equal(recorded(db, "sms:+1:+2", "SMnever"), 0);
    assert_int_equal(recorded(db, "sms:+9:+2", "SMfirst"), 0);
    store_db_close(db);

    /* the index answers it, not a scan of turns */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open_v2(fx.path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(raw,
                           "EXPLAIN QUERY PLAN SELECT 1 FROM turns WHERE client_id = ?2"
                           " AND direction = 'in' AND (conversation_id = ?1 OR"
                           " (conversation_id > ?1 || '#' AND conversation_id < ?1 ||"
                           " '$')) LIMIT 1",
                           -1, &st, NULL),
        SQLITE_OK);
    int indexed = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        indexed |= strstr((const char *)sqlite3_column_text(st, 3), "turns_client_id") != NULL;
    sqlite3_finalize(st);
    sqlite3_close(raw);
    assert_true(indexed);

    /* the same on the thread pool, its callback on the loop */
    answer_t a = {0}, b = {0};
    assert_int_equal(store_client_id_recorded_async(fx.store, "sms:+1:+2", "SMlater", on_found, &a),
                     0);
    assert_int_equal(store_client_id_recorded_async(fx.store, "sms:+1:+2", "SMnew", on_found, &b),
                     0);
    while (a.calls == 0 || b.calls == 0)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.found, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.found, 0);
    fx_close(&fx);
}

static void test_memory_store_keeps_nothing(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    core_err_t err = {0};
    store_options_t opt = {.path = ":memory:"};
    store_t *s = store_open(&loop, &opt, &err);
    assert_non_null(s);
    answer_t a = {0};
    assert_int_equal(store_client_id_recorded_async(s, "sms:+1:+2", "SM1", on_found, &a), 0);
    while (a.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.status, CORE_ERR_NOT_FOUND);
    assert_int_equal(a.found, 0);
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_among_the_keys_conversations),
        cmocka_unit_test(test_memory_store_keeps_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
