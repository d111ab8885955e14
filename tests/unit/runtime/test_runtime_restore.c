/* runtime_restore_active() with a real store: after a restart the
 * conversations the store holds as active come back into memory without a
 * message (ended ones do not), so the idle sweep ends an abandoned one and
 * the store records it as abandoned; and runtime_conversation_record() says
 * which keys the store knows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "unit/runtime/runtime_test.h"

static char tmpdir[64];
static char db_path[128];
static char flows_dir[512];

typedef struct env_s {
    uv_loop_t loop;
    store_t *store;
    runtime_t *rt;
} env_t;

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

static void env_start(env_t *e)
{
    uv_loop_init(&e->loop);
    store_options_t so = {.path = db_path};
    core_err_t err = {0};
    e->store = store_open(&e->loop, &so, &err);
    assert_non_null(e->store);
    runtime_options_t o = {.flows_dir = flows_dir, .data_dir = tmpdir, .store = e->store};
    assert_int_equal(runtime_new(&e->loop, &o, &e->rt, NULL), 0);
    int loaded = 0;
    assert_int_equal(runtime_load(e->rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void env_stop(env_t *e)
{
    rt_test_close(&e->loop, e->rt, e->store);
}

static void on_turn(const runtime_turn_out_t *o)
{
    int *status = o->data;
    *status = o->error == 0 ? (int)o->out->status : -1;
}

static int say(env_t *e, const char *key, const char *text)
{
    int status = -2;
    runtime_turn_in_t in = {.key = key,
                            .channel = BRAIN_CH_CHAT,
                            .event = BRAIN_EV_MESSAGE,
                            .text = text,
                            .len = strlen(text)};
    assert_int_equal(runtime_turn(e->rt, &in, on_turn, &status, NULL), 0);
    while (status == -2)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_true(status >= 0);
    return status;
}

typedef struct res_s {
    int calls, status;
    size_t restored;
} res_t;

static void on_restored(int status, size_t restored, void *data)
{
    res_t *r = data;
    r->calls++;
    r->status = status;
    r->restored = restored;
}

static void on_record(int status, json_t *rec, void *data)
{
    int *out = data;
    *out = status;
    if (status == 0)
        assert_string_equal(json_string_value(json_object_get(rec, "id")), "chat:idle");
    json_decref(rec);
}

static int record(env_t *e, const char *key)
{
    int status = 1;
    assert_int_equal(runtime_conversation_record(e->rt, key, on_record, &status), 0);
    while (status == 1)
        uv_run(&e->loop, UV_RUN_ONCE);
    return status;
}

static const char *outcome(const char *key, json_t **t)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(db_path, &err);
    assert_non_null(db);
    assert_int_equal(store_db_transcript(db, key, t, &err), 0);
    store_db_close(db);
    return json_string_value(json_object_get(*t, "outcome"));
}

static void test_active_conversations_come_back_and_time_out(void **state)
{
    env_t e;
    env_start(&e);
    assert_int_equal(say(&e, "chat:idle", "how are you"), BRAIN_ST_ACTIVE);
    say(&e, "chat:done", "how are you");
    assert_int_equal(say(&e, "chat:done", "goodbye"), BRAIN_ST_ENDED);
    env_stop(&e);

    env_start(&e); /* a new process: nothing in memory */
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 0);
    assert_int_equal(record(&e, "chat:idle"), 0);
    assert_int_equal(record(&e, "chat:never"), CORE_ERR_NOT_FOUND);
    res_t r = {0};
    assert_int_equal(runtime_restore_active(e.rt, db_path, on_restored, &r), 0);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.restored, 1); /* the ended one stays in the store only */
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 1);
    /* nobody writes again: the idle sweep ends it, as if the daemon had run on */
    runtime_sweep(e.rt, core_wall_us() + 24LL * 3600 * 1000000);
    do {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    } while (st.timeouts == 0 || st.turns_in_flight > 0);
    env_stop(&e);
    json_t *t;
    assert_string_equal(outcome("chat:idle", &t), STORE_OUTCOME_ABANDONED);
    json_decref(t);
    assert_string_equal(outcome("chat:done", &t), STORE_OUTCOME_CONTAINED);
    json_decref(t);
}

static void test_restore_needs_flows_and_a_store(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    runtime_t *rt;
    runtime_options_t o = {.flows_dir = flows_dir};
    assert_int_equal(runtime_new(&loop, &o, &rt, NULL), 0);
    assert_int_equal(runtime_restore_active(rt, db_path, NULL, NULL), CORE_ERR_NOT_FOUND);
    assert_int_equal(runtime_conversation_record(rt, "chat:idle", NULL, NULL), CORE_ERR_NOT_FOUND);
    rt_test_close(&loop, rt, NULL);
}

static int setup(void **state)
{
    const char *src = getenv("CHORUS_SOURCE_DIR");
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", src ? src : ".");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/chorus-rtr-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/chorus.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_conversations_come_back_and_time_out),
        cmocka_unit_test(test_restore_needs_flows_and_a_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
