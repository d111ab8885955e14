/* Versions and environments of the runtime, with the real brain on flows
 * written to a temporary directory: a conversation in progress stays pinned
 * to the version it began on across a reload while a new one gets the new
 * version; "promoted" mode keeps production until a promotion, a change
 * (rollback) puts an old version back; a rollout at 100% sends new
 * conversations to its candidate and an abort sends them back; and the line
 * diff's unified output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "chorus/store.h"
#include "runtime/runtime_int.h"
#include "unit/runtime/runtime_test.h"

static char dir[64];

/* The order flow, its question in node `ask`. */
static char *order_flow_at(const char *tag, const char *ask)
{
    return core_xasprintf(
        "{\"name\": \"order\",\n"
        " \"intents\": {\"order\": {\"examples\": [\"I want to order\", \"place an order\","
        " \"order something\", \"can I order food\"]}},\n"
        " \"slots\": {\"item\": {\"type\": \"choice\", \"choices\": [{\"value\": \"pizza\"},"
        " {\"value\": \"salad\"}]}},\n"
        " \"nodes\": {\n"
        "  \"%s\": {\"type\": \"ask\", \"slot\": \"item\", \"prompt\": \"What?\","
        " \"next\": \"done\"},\n"
        "  \"done\": {\"type\": \"end\", \"message\": \"ORDER %s {{item}}\"}}}\n",
        ask, tag);
}

static char *order_flow(const char *tag)
{
    return order_flow_at(tag, "ask");
}

static void write_file(const char *name, const char *text)
{
    rt_test_write(dir, name, text);
}

static void write_order(const char *tag)
{
    char *t = order_flow(tag);
    write_file("order.json", t);
    free(t);
}

typedef struct ctx_s {
    uv_loop_t loop;
    runtime_t *rt;
    int loaded, rc, calls;
    char text[256];  /* the turn's last message */
    char first[256]; /* and its first */
    char variant_env[16];
} ctx_t;

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    (void)rt, (void)d;
    ctx_t *c = data;
    c->loaded++;
    c->rc = rc;
}

static void on_turn(const runtime_turn_out_t *o)
{
    ctx_t *c = o->data;
    c->calls++;
    c->text[0] = c->first[0] = '\0';
    if (o->error == 0 && o->out->n_messages > 0) {
        snprintf(c->text, sizeof(c->text), "%s", o->out->messages[o->out->n_messages - 1].text);
        snprintf(c->first, sizeof(c->first), "%s", o->out->messages[0].text);
    }
}

static void wait_loaded(ctx_t *c, int n)
{
    while (c->loaded < n)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(c->rc, 0);
}

static const char *say(ctx_t *c, const char *key, const char *env, const char *text)
{
    runtime_turn_in_t in = {.key = key,
                            .channel = BRAIN_CH_CHAT,
                            .event = BRAIN_EV_MESSAGE,
                            .text = text,
                            .len = strlen(text),
                            .env = env};
    core_err_t err = {0};
    int before = c->calls;
    assert_int_equal(runtime_turn(c->rt, &in, on_turn, c, &err), 0);
    while (c->calls == before)
        uv_run(&c->loop, UV_RUN_ONCE);
    return c->text;
}

static void start(ctx_t *c, int promoted)
{
    memset(c, 0, sizeof(*c));
    uv_loop_init(&c->loop);
    runtime_options_t o = {.flows_dir = dir, .no_guard = 1, .production_promoted = promoted};
    core_err_t err = {0};
    assert_int_equal(runtime_new(&c->loop, &o, &c->rt, &err), 0);
    assert_int_equal(runtime_load(c->rt, on_loaded, c), 0);
    wait_loaded(c, 1);
}

static void stop(ctx_t *c)
{
    rt_test_close(&c->loop, c->rt, NULL);
}

/* The store start_stored() opens, gone. */
static void remove_store(void)
{
    const char *ext[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[192];
        snprintf(path, sizeof(path), "%s.db%s", dir, ext[i]);
        unlink(path);
    }
}

/* Whether start_stored() lets pinned versions be compiled back from the
 * store, as chorusd does (runtime_pins_from_store). */
static int no_pins;

/* With a store, as chorusd starts in "promoted" mode: production rebuilt
 * from stored contents (here: the directory's files with order at
 * prod_tag), staging from the directory. prod_tag NULL: "follow" mode,
 * both from the directory. */
static store_t *start_stored(ctx_t *c, const char *prod_tag)
{
    memset(c, 0, sizeof(*c));
    uv_loop_init(&c->loop);
    char db[128];
    snprintf(db, sizeof(db), "%s.db", dir);
    store_options_t so = {.path = db};
    core_err_t err = {0};
    store_t *store = store_open(&c->loop, &so, &err);
    assert_non_null(store);
    runtime_options_t o = {
        .flows_dir = dir, .no_guard = 1, .production_promoted = prod_tag != NULL, .store = store};
    assert_int_equal(runtime_new(&c->loop, &o, &c->rt, &err), 0);
    if (!no_pins)
        runtime_pins_from_store(c->rt, db);
    if (prod_tag == NULL) {
        assert_int_equal(runtime_load(c->rt, on_loaded, c), 0);
        wait_loaded(c, 1);
        return store;
    }
    char *order = order_flow(prod_tag);
    const char *settings =
        "{\"settings\": {\"fallback_flow\": \"fallback\", \"confidence_threshold\": 0.3}}";
    const char *fallback = "{\"name\": \"fallback\", \"nodes\": {\"s\": {\"type\": \"say\", "
                           "\"message\": \"Sorry?\"}}}";
    runtime_flow_file_t prod[] = {{"fallback", NULL, fallback, strlen(fallback), 0},
                                  {"order", NULL, order, strlen(order), 0},
                                  {"settings", NULL, settings, strlen(settings), 0}};
    assert_int_equal(runtime_env_restore(c->rt, "production", prod, 3, on_loaded, c), 0);
    free(order);
    assert_int_equal(runtime_load(c->rt, on_loaded, c), 0);
    wait_loaded(c, 2);
    return store;
}

/* A conversation's environment is saved with its state: after a restart
 * a staging conversation goes on in staging though its turn names none
 * (its channel forgot the gateway's environment), and a production one in
 * production. */
static void test_environment_survives_a_restart(void **state)
{
    (void)state;
    write_order("v2"); /* staging */
    ctx_t c;
    store_t *store = start_stored(&c, "v1");
    assert_string_equal(say(&c, "s", "staging", "I want to order"), "What?");
    assert_string_equal(say(&c, "p", NULL, "I want to order"), "What?");
    rt_test_close(&c.loop, c.rt, store);
    store = start_stored(&c, "v1");
    assert_string_equal(say(&c, "s", NULL, "pizza"), "ORDER v2 pizza");
    assert_string_equal(say(&c, "p", NULL, "salad"), "ORDER v1 salad");
    rt_test_close(&c.loop, c.rt, store);
    remove_store();
}

/* What a restart does to a conversation in progress: it is read back onto
 * the version it was pinned to, compiled again from the store's versions
 * (its turn waits for the compile), whether the question it waited at is
 * the same in the current version or renamed there. Where the versions
 * cannot be read back (here: no store reader), it goes on on the current
 * version: where its node was renamed it says so and asks again, and never
 * takes the answer for a new request. */
static void test_restart_keeps_a_conversation_on_its_version(void **state)
{
    (void)state;
    write_order("v1");
    ctx_t c;
    store_t *store = start_stored(&c, NULL);
    assert_string_equal(say(&c, "a", NULL, "I want to order"), "What?");
    rt_test_close(&c.loop, c.rt, store);
    write_order("v2"); /* the same question */
    store = start_stored(&c, NULL);
    assert_string_equal(say(&c, "a", NULL, "pizza"), "ORDER v1 pizza");
    assert_string_equal(say(&c, "b", NULL, "I want to order"), "What?");
    rt_test_close(&c.loop, c.rt, store);
    char *renamed = order_flow_at("v3", "question");
    write_file("order.json", renamed);
    free(renamed);
    store = start_stored(&c, NULL);
    assert_string_equal(say(&c, "b", NULL, "pizza"), "ORDER v2 pizza");
    assert_string_equal(say(&c, "c", NULL, "I want to order"), "What?");
    rt_test_close(&c.loop, c.rt, store);
    write_order("v4"); /* the question back at `ask` */
    no_pins = 1;
    store = start_stored(&c, NULL);
    no_pins = 0;
    assert_string_equal(say(&c, "c", NULL, "pizza"), "What?");
    assert_non_null(strstr(c.first, "something changed"));
    assert_string_equal(say(&c, "c", NULL, "pizza"), "ORDER v4 pizza");
    rt_test_close(&c.loop, c.rt, store);
    remove_store();
}

/* A close while a pinned version compiles: the turn waiting for it fails
 * with CORE_ERR_CLOSED, and nothing is left behind (the compile finishes
 * on the pool, and its conversations are gone). */
static void test_close_while_a_pinned_version_compiles(void **state)
{
    (void)state;
    write_order("v1");
    ctx_t c;
    store_t *store = start_stored(&c, NULL);
    assert_string_equal(say(&c, "a", NULL, "I want to order"), "What?");
    rt_test_close(&c.loop, c.rt, store);
    write_order("v2");
    store = start_stored(&c, NULL);
    runtime_turn_in_t in = {
        .key = "a", .channel = BRAIN_CH_CHAT, .event = BRAIN_EV_MESSAGE, .text = "pizza", .len = 5};
    core_err_t err = {0};
    assert_int_equal(runtime_turn(c.rt, &in, on_turn, &c, &err), 0);
    while (c.rt->pinning == NULL) /* its state read back names v1: compiling */
        uv_run(&c.loop, UV_RUN_ONCE);
    assert_int_equal(c.calls, 0); /* waiting for it */
    rt_test_close(&c.loop, c.rt, store);
    assert_int_equal(c.calls, 1);
    remove_store();
}

static const char *env_version(ctx_t *c, const char *env, char *buf)
{
    runtime_flow_file_t f;
    assert_int_equal(runtime_env_file(c->rt, env, "order", &f), 0);
    snprintf(buf, 16, "%s", f.version);
    return buf;
}

static void test_conversation_pinned_across_reload(void **state)
{
    (void)state;
    write_order("v1");
    ctx_t c;
    start(&c, 0);
    assert_string_equal(say(&c, "a", NULL, "I want to order"), "What?");
    write_order("v2");
    assert_int_equal(runtime_load(c.rt, on_loaded, &c), 0);
    wait_loaded(&c, 2);
    assert_string_equal(say(&c, "b", NULL, "I want to order"), "What?");
    assert_string_equal(say(&c, "b", NULL, "pizza"), "ORDER v2 pizza");
    assert_string_equal(say(&c, "a", NULL, "salad"), "ORDER v1 salad"); /* pinned */
    /* Its conversation ended: the key's next one starts on the new version. */
    assert_string_equal(say(&c, "a", NULL, "I want to order"), "What?");
    assert_string_equal(say(&c, "a", NULL, "pizza"), "ORDER v2 pizza");
    stop(&c);
}

static void test_promoted_mode_promote_and_rollback(void **state)
{
    (void)state;
    write_order("v1");
    ctx_t c;
    start(&c, 1); /* production has nothing yet: the first load bootstraps it */
    char v1[16], v2[16], buf[16];
    env_version(&c, RUNTIME_ENV_PRODUCTION, v1);
    write_order("v2");
    assert_int_equal(runtime_load(c.rt, on_loaded, &c), 0);
    wait_loaded(&c, 2);
    env_version(&c, RUNTIME_ENV_STAGING, v2);
    assert_string_not_equal(v1, v2);
    assert_string_equal(env_version(&c, RUNTIME_ENV_PRODUCTION, buf), v1);
    say(&c, "p1", NULL, "I want to order");
    assert_string_equal(say(&c, "p1", NULL, "pizza"), "ORDER v1 pizza");
    say(&c, "s1", "staging", "I want to order");
    assert_string_equal(say(&c, "s1", "staging", "pizza"), "ORDER v2 pizza");
    /* A promotion that names a version staging no longer runs is refused. */
    const char *flows[] = {"order"}, *stale[] = {v1}, *tested[] = {v2};
    core_err_t err = {0};
    assert_int_equal(
        runtime_env_promote(c.rt, flows, stale, 1, "production", "t", on_loaded, &c, &err),
        CORE_ERR_EXISTS);
    assert_int_equal(
        runtime_env_promote(c.rt, flows, tested, 1, "production", "t", on_loaded, &c, &err), 0);
    wait_loaded(&c, 3);
    assert_string_equal(env_version(&c, RUNTIME_ENV_PRODUCTION, buf), v2);
    say(&c, "p2", NULL, "I want to order");
    assert_string_equal(say(&c, "p2", NULL, "pizza"), "ORDER v2 pizza");
    /* Rollback: the old content put back as production's order flow. */
    char *old = order_flow("v1");
    runtime_flow_file_t back = {"order", v1, old, strlen(old), 0};
    assert_int_equal(
        runtime_env_apply(c.rt, "production", &back, 1, "t", "rollback", on_loaded, &c, &err), 0);
    /* one change at a time: a second, made to the set before the first is in
     * force, would put back what the first replaced */
    assert_int_equal(
        runtime_env_promote(c.rt, flows, tested, 1, "production", "t", on_loaded, &c, &err),
        CORE_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "still being compiled"));
    wait_loaded(&c, 4);
    free(old);
    assert_string_equal(env_version(&c, RUNTIME_ENV_PRODUCTION, buf), v1);
    say(&c, "p3", NULL, "I want to order");
    assert_string_equal(say(&c, "p3", NULL, "salad"), "ORDER v1 salad");
    json_t *j = runtime_env_json(c.rt, "staging");
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "flows")), 3);
    json_decref(j);
    assert_null(runtime_env_json(c.rt, "qa"));
    runtime_turn_in_t in = {.key = "x", .channel = BRAIN_CH_CHAT, .env = "qa"};
    assert_int_equal(runtime_turn(c.rt, &in, on_turn, &c, &err), CORE_ERR_INVALID);
    stop(&c);
}

static void test_rollout_candidate_and_abort(void **state)
{
    (void)state;
    write_order("v1");
    ctx_t c;
    start(&c, 0);
    char *cand = order_flow("cand");
    runtime_rollout_t r = {"r1", NULL, "order", NULL, cand, strlen(cand), 100};
    assert_int_equal(runtime_rollout_start(c.rt, &r, on_loaded, &c), 0);
    assert_int_equal(runtime_rollout_start(c.rt, &r, on_loaded, &c), CORE_ERR_EXISTS);
    wait_loaded(&c, 2);
    /* no other change while it runs: promoting its candidate would undo it */
    core_err_t err = {0};
    runtime_flow_file_t f = {"order", NULL, cand, strlen(cand), 0};
    assert_int_equal(
        runtime_env_apply(c.rt, "production", &f, 1, "t", "change", on_loaded, &c, &err),
        CORE_ERR_EXISTS);
    assert_non_null(strstr(err.msg, "rollout r1 of flow order is running"));
    free(cand);
    say(&c, "k1", NULL, "I want to order");
    /* A conversation that began on the candidate finishes there after an abort. */
    assert_int_equal(runtime_rollout_stop(c.rt, NULL, "order", 0), 0);
    assert_string_equal(say(&c, "k1", NULL, "pizza"), "ORDER cand pizza");
    say(&c, "k2", NULL, "I want to order");
    assert_string_equal(say(&c, "k2", NULL, "pizza"), "ORDER v1 pizza");
    assert_int_equal(runtime_rollout_stop(c.rt, NULL, "order", 0), CORE_ERR_NOT_FOUND);
    stop(&c);
}

static void test_diff(void **state)
{
    (void)state;
    char *d = runtime_diff("a\nb\nc\n", 6, "a\nb\nc\n", 6, "x", "y");
    assert_string_equal(d, "");
    free(d);
    const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    const char *b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\nten\n";
    d = runtime_diff(a, strlen(a), b, strlen(b), "f@1", "f@2");
    assert_string_equal(d, "--- f@1\n+++ f@2\n"
                           "@@ -2,8 +2,9 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n+ten\n");
    free(d);
    d = runtime_diff("", 0, "x\ny\n", 4, "f@none", "f@1");
    assert_string_equal(d, "--- f@none\n+++ f@1\n@@ -0,0 +1,2 @@\n+x\n+y\n");
    free(d);
    const char *far_a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
    const char *far_b = "A\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nL\n";
    d = runtime_diff(far_a, strlen(far_a), far_b, strlen(far_b), "p", "q");
    assert_string_equal(d, "--- p\n+++ q\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n d\n"
                           "@@ -9,4 +9,4 @@\n i\n j\n k\n-l\n+L\n");
    free(d);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/chorus-rtv-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    write_file("settings.json",
               "{\"settings\": {\"fallback_flow\": \"fallback\", \"confidence_threshold\": 0.3}}");
    write_file("fallback.json",
               "{\"name\": \"fallback\", \"nodes\": {\"s\": {\"type\": \"say\", \"message\": "
               "\"Sorry?\"}}}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"settings.json", "fallback.json", "order.json"};
    char path[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_conversation_pinned_across_reload),
        cmocka_unit_test(test_promoted_mode_promote_and_rollback),
        cmocka_unit_test(test_rollout_candidate_and_abort),
        cmocka_unit_test(test_environment_survives_a_restart),
        cmocka_unit_test(test_restart_keeps_a_conversation_on_its_version),
        cmocka_unit_test(test_close_while_a_pinned_version_compiles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
