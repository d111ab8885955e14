/* The turn pipeline in isolation: a scripted stand-in for the brain
 * (fake_brain.h, so the linker never pulls the real one) drives the runtime against
 * real loopback servers (tests/stubs/http_stub.py and llm.py). Covers turn
 * serialisation per conversation, independence across conversations,
 * effects with retries and backoff, every failure becoming an effect result,
 * LLM request/response handling, idle sweeping, the model cache, failed
 * reloads and shutdown with work in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/runtime.h"
#include "runtime/runtime_int.h"
#include "stubs/stub_proc.h"
#include "unit/runtime/runtime_test.h"
#include "unit/runtime/fake_brain.h"

/* ---- harness --------------------------------------------------------------- */

static stub_proc_t http_stub, llm_stub;
static char tmpdir[64];
static char flows_dir[128];
static char data_dir[128];

typedef struct turn_rec_s {
    int calls;
    int error;
    char text[512];
    unsigned effects;
    int order; /* completion order across the test */
} turn_rec_t;

static int completions;

static void on_turn(const runtime_turn_out_t *o)
{
    turn_rec_t *r = o->data;
    r->calls++;
    r->error = o->error;
    r->effects = o->effects;
    r->order = ++completions;
    if (o->out && o->out->n_messages > 0)
        snprintf(r->text, sizeof(r->text), "%s", o->out->messages[0].text);
}

static int load_rc;
static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    load_rc = rc;
    (*(int *)data)++;
}

static void write_flow(const char *text)
{
    rt_test_write(flows_dir, "main.json", text);
}

typedef struct env_s {
    uv_loop_t loop;
    runtime_t *rt;
} env_t;

static void env_start(env_t *e, runtime_options_t *opts)
{
    uv_loop_init(&e->loop);
    runtime_options_t o = {.flows_dir = flows_dir, .data_dir = data_dir};
    if (opts)
        o = *opts;
    assert_int_equal(runtime_new(&e->loop, &o, &e->rt, NULL), 0);
    int loaded = 0;
    assert_int_equal(runtime_load(e->rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(load_rc, 0);
}

static void on_closed_count(void *data)
{
    (*(int *)data)++;
}

static void env_stop(env_t *e)
{
    rt_test_close(&e->loop, e->rt, NULL);
}

static void submit_ch(env_t *e, const char *key, const char *text, turn_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    runtime_turn_in_t in = {.key = key,
                            .channel = BRAIN_CH_CHAT,
                            .event = BRAIN_EV_MESSAGE,
                            .text = text,
                            .len = strlen(text)};
    core_err_t err = {0};
    assert_int_equal(runtime_turn(e->rt, &in, on_turn, r, &err), 0);
    assert_int_equal(r->calls, 0); /* never from inside runtime_turn() */
}

static void run_until(env_t *e, const turn_rec_t *r)
{
    while (r->calls == 0)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static char *url(const stub_proc_t *sp, const char *path)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 256, "http://127.0.0.1:%d%s", sp->port, path);
    return b;
}

/* "http URL ..." / "llm URL ..." as a turn, run to completion. */
static void one(env_t *e, const char *cmd, const char *target, const char *args, turn_rec_t *r)
{
    char text[512];
    snprintf(text, sizeof(text), "%s %s %s", cmd, target, args);
    submit_ch(e, "k1", text, r);
    run_until(e, r);
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->error, 0);
}

static void test_echo_and_turn_counts(void **state)
{
    env_t e;
    env_start(&e, NULL);
    turn_rec_t a, b;
    submit_ch(&e, "web:1", "hi", &a);
    submit_ch(&e, "web:1", "there", &b);
    run_until(&e, &b);
    assert_string_equal(a.text, "echo:hi #1");
    assert_string_equal(b.text, "echo:there #2");
    assert_true(a.order < b.order);
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 1);
    assert_int_equal(st.turns, 2);
    assert_int_equal(st.turns_in_flight, 0);
    assert_true(st.conversation_bytes >= sizeof(brain_conv_t));
    env_stop(&e);
}

/* Each turn's reference date is its own time in local time, however many
 * turns share a second and whatever order their times come in. */
static void test_reference_date_follows_each_turn(void **state)
{
    setenv("TZ", "UTC", 1); /* runtime_new() calls tzset() */
    env_t e;
    env_start(&e, NULL);
    const int64_t day = 86400LL * 1000000; /* 2026-03-01 23:59:59.2 UTC, then on */
    const int64_t t0 = 1772409599LL * 1000000 + 200000;
    const struct {
        int64_t now_us;
        const char *want;
    } turns[] = {{t0, "date:2026-03-01 23:59"},
                 {t0 + 500000, "date:2026-03-01 23:59"}, /* the same second */
                 {t0 + 900000, "date:2026-03-02 00:00"}, /* the next second, the next day */
                 {t0 + 950000, "date:2026-03-02 00:00"},
                 {t0 + 31 * day, "date:2026-04-01 23:59"},
                 {t0, "date:2026-03-01 23:59"}}; /* back again */
    for (size_t i = 0; i < sizeof(turns) / sizeof(turns[0]); i++) {
        turn_rec_t r = {0};
        runtime_turn_in_t in = {.key = "web:date",
                                .channel = BRAIN_CH_CHAT,
                                .event = BRAIN_EV_MESSAGE,
                                .text = "date",
                                .len = 4,
                                .now_us = turns[i].now_us};
        assert_int_equal(runtime_turn(e.rt, &in, on_turn, &r, NULL), 0);
        run_until(&e, &r);
        assert_int_equal(r.error, 0);
        assert_string_equal(r.text, turns[i].want);
    }
    env_stop(&e);
    unsetenv("TZ");
}

static void test_turns_queue_per_conversation_only(void **state)
{
    env_t e;
    env_start(&e, NULL);
    turn_rec_t a1, a2, b1;
    char text[300];
    snprintf(text, sizeof(text), "http %s", url(&http_stub, "/slow-headers?ms=400"));
    submit_ch(&e, "a", text, &a1);
    submit_ch(&e, "a", "second", &a2); /* double text: waits for the first */
    submit_ch(&e, "b", "other", &b1);  /* another conversation: does not wait */
    run_until(&e, &a2);
    assert_true(b1.order < a1.order);
    assert_true(a1.order < a2.order);
    assert_non_null(strstr(a1.text, "status=200"));
    assert_string_equal(a2.text, "echo:second #2");
    env_stop(&e);
}

static void test_http_results(void **state)
{
    env_t e;
    env_start(&e, NULL);
    turn_rec_t r;
    one(&e, "http", url(&http_stub, "/ok"), "", &r);
    assert_string_equal(r.text, "result error=none status=200 content=- tokens=0/0 body=hello");
    assert_int_equal(r.effects, 1);
    /* 5xx is retried, then handed to the flow as the answer it is. */
    one(&e, "http", url(&http_stub, "/status/500"), "2 10", &r);
    assert_int_equal(r.effects, 3);
    assert_non_null(strstr(r.text, "error=none status=500 content=- tokens=0/0 body=status 500"));
    /* 4xx is an answer: no retry, no error; the flow decides. */
    one(&e, "http", url(&http_stub, "/status/404"), "2 10", &r);
    assert_int_equal(r.effects, 1);
    assert_non_null(strstr(r.text, "error=none status=404"));
    one(&e, "http", url(&http_stub, "/hang"), "0 0 300", &r);
    assert_non_null(strstr(r.text, "error=timeout status=0"));
    char refused[64];
    snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/x", stub_closed_port());
    one(&e, "http", refused, "1 10", &r);
    assert_int_equal(r.effects, 2);
    assert_non_null(strstr(r.text, "error=ECONNREFUSED"));
    one(&e, "http", url(&http_stub, "/malformed"), "", &r);
    assert_non_null(strstr(r.text, "error=protocol"));
    one(&e, "http", "ftp://127.0.0.1/x", "", &r); /* refused before sending */
    assert_int_equal(r.effects, 1);
    assert_non_null(strstr(r.text, "error=invalid"));
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.retries, 3);
    assert_true(st.effect_errors >= 5);
    env_stop(&e);
}

static void test_oversize_response(void **state)
{
    env_t e;
    runtime_options_t o = {.flows_dir = flows_dir, .data_dir = data_dir, .max_effect_bytes = 1000};
    env_start(&e, &o);
    turn_rec_t r;
    one(&e, "http", url(&http_stub, "/big?bytes=5000"), "3 10", &r);
    assert_int_equal(r.effects, 1); /* a body too big is not retried */
    assert_non_null(strstr(r.text, "error=limit"));
    env_stop(&e);
}

static void test_llm_calls(void **state)
{
    env_t e;
    env_start(&e, NULL);
    turn_rec_t r;
    setenv("STUB_KEY", "sk-test", 1);
    setenv("WRONG_KEY", "sk-wrong", 1);
    unsetenv("MISSING_KEY");
    one(&e, "llm", url(&llm_stub, "/v1"), "STUB_KEY", &r);
    assert_string_equal(r.text, "result error=none status=200 content=echo: where is my bag "
                                "tokens=6/5 body={\"id\": \"chatcmpl-stu");
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.llm_prompt_tokens, 6);
    assert_int_equal(st.llm_completion_tokens, 5);
    one(&e, "llm", url(&llm_stub, "/v1"), "MISSING_KEY", &r);
    assert_int_equal(r.effects, 0);
    assert_non_null(strstr(r.text, "error=denied"));
    one(&e, "llm", url(&llm_stub, "/v1"), "WRONG_KEY", &r);
    assert_non_null(strstr(r.text, "error=none status=401 content=-"));
    /* a 200 that is no answer: not JSON, no content, an empty one, or one
     * the provider's filter stopped: the error edge */
    static const char *const no_answer[] = {"/mode/malformed/v1", "/mode/nocontent/v1",
                                            "/mode/empty/v1", "/mode/filtered/v1"};
    for (size_t i = 0; i < sizeof(no_answer) / sizeof(no_answer[0]); i++) {
        one(&e, "llm", url(&llm_stub, no_answer[i]), "STUB_KEY", &r);
        assert_non_null(strstr(r.text, "error=protocol status=200 content=-"));
    }
    /* cut at max_tokens: said as it is */
    one(&e, "llm", url(&llm_stub, "/mode/length/v1"), "STUB_KEY", &r);
    assert_non_null(strstr(r.text, "error=none status=200 content=echo: where is my bag"));
    one(&e, "llm", url(&llm_stub, "/mode/500/v1"), "STUB_KEY", &r);
    assert_non_null(strstr(r.text, "error=none status=500 content=-"));
    one(&e, "llm", url(&llm_stub, "/mode/hang/v1"), "STUB_KEY", &r);
    assert_non_null(strstr(r.text, "error=timeout"));
    /* Retried after a 500, answered on the second attempt. */
    one(&e, "llm", url(&llm_stub, "/mode/flaky/v1"), "STUB_KEY 2", &r);
    assert_int_equal(r.effects, 2);
    assert_non_null(strstr(r.text, "error=none status=200 content=echo: where is my bag"));
    env_stop(&e);
}

static void test_idle_sweep(void **state)
{
    env_t e;
    turn_rec_t bye = {0};
    runtime_options_t o = {
        .flows_dir = flows_dir, .data_dir = data_dir, .on_idle_end = on_turn, .idle_data = &bye};
    env_start(&e, &o);
    turn_rec_t r;
    submit_ch(&e, "idle", "hi", &r);
    run_until(&e, &r);
    runtime_stats_t st;
    runtime_sweep(e.rt, core_wall_us()); /* not idle yet */
    runtime_stats(e.rt, &st);
    assert_int_equal(st.timeouts, 0);
    runtime_sweep(e.rt, core_wall_us() + fake_idle_us + 1000000);
    runtime_stats(e.rt, &st);
    assert_int_equal(st.timeouts, 1);
    while (st.turns < 2) {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    }
    assert_int_equal(st.conversations, 1); /* ended, freed by the next sweep */
    assert_int_equal(bye.calls, 1);        /* the goodbye reached the channel hook */
    assert_string_equal(bye.text, "bye (timeout)");
    runtime_sweep(e.rt, core_wall_us());
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 0);
    /* The same key starts afresh. */
    submit_ch(&e, "idle", "again", &r);
    run_until(&e, &r);
    assert_string_equal(r.text, "echo:again #1");
    env_stop(&e);
}

/* Starts e with the sweep timer ticking every interval_ms, conversations
 * idle after idle_us (the previous idle time is returned, to put back) and
 * goodbyes recorded in bye. */
static int64_t sweep_env_start(env_t *e, uint64_t interval_ms, int64_t idle_us, turn_rec_t *bye)
{
    runtime_options_t o = {.flows_dir = flows_dir,
                           .data_dir = data_dir,
                           .sweep_interval_ms = interval_ms,
                           .on_idle_end = on_turn,
                           .idle_data = bye};
    int64_t keep = fake_idle_us;
    fake_idle_us = idle_us;
    env_start(e, &o);
    return keep;
}

/* The sweep timer, not a direct call, finds idle conversations. */
static void test_sweep_timer_ends_idle_conversations(void **state)
{
    env_t e;
    turn_rec_t bye = {0};
    int64_t keep = sweep_env_start(&e, 160, 50000, &bye);
    turn_rec_t r[40];
    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "idle:%d", i);
        submit_ch(&e, key, "hi", &r[i]);
    }
    run_until(&e, &r[39]);
    runtime_stats_t st;
    do {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    } while (st.conversations > 0);
    assert_int_equal(st.timeouts, 40);
    assert_int_equal(bye.calls, 40);
    assert_int_equal(st.conversation_bytes, 0); /* the running total has no drift */
    fake_idle_us = keep;
    env_stop(&e);
}

/* The timer looks at a conversation when its deadline comes: after its
 * first look it is filed at its deadline's tick; a later turn that moves
 * the deadline leaves it there (it is filed anew when that tick comes, and
 * nothing ends early); the turn that ends it files it for the very next
 * tick, which frees it. */
static void test_sweep_files_conversations_by_deadline(void **state)
{
    env_t e;
    turn_rec_t bye = {0};
    int64_t keep = sweep_env_start(&e, 20, 1000000, &bye); /* idle for 50 ticks */
    rt_table_t *t = &e.rt->table;
    turn_rec_t r;
    submit_ch(&e, "due", "hi", &r);
    run_until(&e, &r);
    rt_conv_t *c = rt_table_find(t, "due");
    assert_non_null(c);
    while (c->due_tick < t->next_tick) /* filed at the next tick until first looked at */
        uv_run(&e.loop, UV_RUN_ONCE);
    while (c->due_tick == t->next_tick)
        uv_run(&e.loop, UV_RUN_ONCE);
    uint64_t first = c->due_tick; /* the deadline's tick */
    assert_true(first > t->next_tick);
    assert_true(first <= t->next_tick + 50);

    /* A second turn, five ticks on, moves the deadline on by as much; the
     * conversation stays put. */
    uint64_t later = t->next_tick + 5;
    while (t->next_tick < later)
        uv_run(&e.loop, UV_RUN_ONCE);
    int64_t second_at = core_wall_us();
    submit_ch(&e, "due", "again", &r);
    run_until(&e, &r);
    assert_int_equal(c->due_tick, first);
    runtime_stats_t st;
    while (t->next_tick <= first)
        uv_run(&e.loop, UV_RUN_ONCE);
    runtime_stats(e.rt, &st);
    assert_int_equal(st.timeouts, 0); /* the first deadline passed, not the second */
    assert_true(c->due_tick > first); /* filed anew at the second */

    while (st.timeouts == 0) {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    }
    assert_true(core_wall_us() >= second_at + fake_idle_us);
    while (bye.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_ptr_equal(rt_table_find(t, "due"), c);
    assert_int_equal(c->due_tick, t->next_tick); /* ended: looked at next */
    do {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    } while (st.conversations > 0);
    fake_idle_us = keep;
    env_stop(&e);
    (void)state;
}

static void test_limits(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    runtime_t *rt = NULL;
    runtime_options_t o = {.flows_dir = flows_dir, .max_conversations = 2, .max_queued_turns = 1};
    assert_int_equal(runtime_new(&loop, &o, &rt, NULL), 0);
    runtime_turn_in_t in = {.key = "x", .text = "hi", .len = 2};
    core_err_t err = {0};
    turn_rec_t r[6];
    memset(r, 0, sizeof(r));
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[0], &err), CORE_ERR_BUSY); /* no flows */
    int loaded = 0;
    assert_int_equal(runtime_load(rt, on_loaded, &loaded), 0);
    assert_int_equal(runtime_load(rt, on_loaded, &loaded), CORE_ERR_BUSY);
    while (!loaded)
        uv_run(&loop, UV_RUN_ONCE);
    in.key = "";
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[0], &err), CORE_ERR_INVALID);
    char text[300];
    snprintf(text, sizeof(text), "http %s 0 0 60000", url(&http_stub, "/hang"));
    runtime_turn_in_t hang = {.key = "a", .text = text, .len = strlen(text)};
    assert_int_equal(runtime_turn(rt, &hang, on_turn, &r[0], &err), 0);
    in.key = "a";
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[1], &err), 0);
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[2], &err), CORE_ERR_BUSY);
    in.key = "b";
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[3], &err), 0);
    in.key = "c";
    assert_int_equal(runtime_turn(rt, &in, on_turn, &r[4], &err), CORE_ERR_LIMIT);
    while (r[3].calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    /* Shutdown with a turn waiting on an effect and one queued behind it. */
    int closed = 0;
    runtime_close(rt, on_closed_count, &closed);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].error, CORE_ERR_CLOSED);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].error, CORE_ERR_CLOSED);
    assert_int_equal(r[2].calls + r[4].calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_close_kick(uv_timer_t *t)
{
    env_t *e = t->data;
    int *closed = e->loop.data;
    runtime_close(e->rt, on_closed_count, closed);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_close_during_backoff(void **state)
{
    env_t e;
    env_start(&e, NULL);
    turn_rec_t r;
    char text[300];
    snprintf(text, sizeof(text), "http %s 5 60000", url(&http_stub, "/status/503"));
    submit_ch(&e, "k", text, &r);
    /* The 503 comes back at once and the retry waits (30 s, the cap); the
     * shutdown lands while the turn is waiting, whatever the machine's pace. */
    uv_timer_t kick;
    uv_timer_init(&e.loop, &kick);
    kick.data = &e;
    int closed = 0;
    e.loop.data = &closed;
    uv_timer_start(&kick, on_close_kick, 300, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, CORE_ERR_CLOSED);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

static void test_cache_and_reload(void **state)
{
    env_t e;
    snprintf(data_dir, sizeof(data_dir), "%s/data-fresh", tmpdir); /* no model cached yet */
    env_start(&e, NULL);
    const brain_flowset_t *fs1 = runtime_flowset(e.rt);
    assert_int_equal(brain_flowset_nlu_from_cache(fs1), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/nlu/model.bin", data_dir);
    assert_int_equal(access(path, R_OK), 0);
    turn_rec_t r;
    submit_ch(&e, "m", "one", &r);
    run_until(&e, &r);
    /* A broken edit is rejected and the flows in force stay. */
    write_flow("{\"INVALID\": true}");
    int loaded = 0;
    assert_int_equal(runtime_load(e.rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(load_rc, CORE_ERR_INVALID);
    assert_ptr_equal(runtime_flowset(e.rt), fs1);
    /* A good edit swaps in; the conversation migrates on its next turn. */
    write_flow("{\"name\": \"main2\"}");
    loaded = 0;
    assert_int_equal(runtime_load(e.rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(load_rc, 0);
    assert_true(brain_flowset_version(runtime_flowset(e.rt)) > brain_flowset_version(fs1));
    submit_ch(&e, "m", "two", &r);
    run_until(&e, &r);
    assert_string_equal(r.text, "echo:two #2");
    env_stop(&e);
    /* Restart with the same flows: the model comes from the cache. */
    env_start(&e, NULL);
    assert_int_equal(brain_flowset_nlu_from_cache(runtime_flowset(e.rt)), 1);
    env_stop(&e);
    write_flow("{\"name\": \"main\"}");
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/chorus-rt-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", tmpdir);
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmpdir);
    mkdir(flows_dir, 0700);
    write_flow("{\"name\": \"main\"}");
    const char *key[] = {"--key", "sk-test", NULL};
    if (stub_proc_start(&http_stub, "http_stub.py", NULL) != 0 ||
        stub_proc_start(&llm_stub, "llm.py", key) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    stub_proc_stop(&http_stub);
    stub_proc_stop(&llm_stub);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_and_turn_counts),
        cmocka_unit_test(test_reference_date_follows_each_turn),
        cmocka_unit_test(test_turns_queue_per_conversation_only),
        cmocka_unit_test(test_http_results),
        cmocka_unit_test(test_oversize_response),
        cmocka_unit_test(test_llm_calls),
        cmocka_unit_test(test_idle_sweep),
        cmocka_unit_test(test_sweep_timer_ends_idle_conversations),
        cmocka_unit_test(test_sweep_files_conversations_by_deadline),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_close_during_backoff),
        cmocka_unit_test(test_cache_and_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
