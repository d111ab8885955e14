/* The turn pipeline in isolation: a scripted stand-in for the brain (defined
 * here, so the linker never pulls the real one) drives the runtime against
 * real loopback servers (tests/stubs/http_stub.py and llm.py). Covers turn
 * serialisation per conversation, independence across conversations,
 * effects with retries and backoff, every failure becoming an effect result,
 * LLM request/response handling, idle sweeping, the model cache, failed
 * reloads and shutdown with work in flight.
 *
 * Every brain function the runtime calls is defined here (so none of the
 * real brain's objects is linked in); a new call in src/runtime needs its
 * stand-in below. The stand-in brain reads the user text as a command:
 *   "http URL [retries [backoff_ms [timeout_ms]]]"  one GET effect
 *   "llm BASE [KEYVAR]"  one chat completion (POST BASE/chat/completions)
 *   "end"                ends the conversation
 *   anything else        says "echo:<text> #<turn>"
 * and after an effect says "result error=<name> status=<n> content=<c>
 * tokens=<p>/<c> attempts?=... body=<first bytes>". */
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
#include "stubs/stub_proc.h"

/* ---- the scripted brain ---------------------------------------------------- */

struct brain_flowset_s {
    int refs;
    uint32_t version;
    char hash[65];
    int from_cache;
};

static int64_t fake_idle_us = 60 * 1000000LL;

void brain_compile_opts_init(brain_compile_opts_t *o)
{
    memset(o, 0, sizeof(*o));
}

int brain_flowset_compile(const brain_source_t *s, size_t n, const brain_compile_opts_t *o,
                          brain_flowset_t **out, core_diags_t *diags)
{
    *out = NULL;
    uint32_t h = 5381;
    for (size_t i = 0; i < n; i++) {
        if (memmem(s[i].text, s[i].len, "INVALID", 7) != NULL) {
            core_diags_add(diags, s[i].name, 1, 1, "nodes", "scripted problem");
            return CORE_ERR_INVALID;
        }
        for (size_t j = 0; j < s[i].len; j++)
            h = h * 33 + (uint8_t)s[i].text[j];
    }
    brain_flowset_t *fs = calloc(1, sizeof(*fs));
    fs->refs = 1;
    fs->version = o->version;
    for (int i = 0; i < 8; i++)
        snprintf(fs->hash + i * 8, 9, "%08x", h + (uint32_t)i);
    fs->from_cache = o->nlu_cache != NULL && o->nlu_cache_hash != NULL &&
                     strcmp(o->nlu_cache_hash, fs->hash) == 0 && o->nlu_cache_len == 5 &&
                     memcmp(o->nlu_cache, "MODEL", 5) == 0;
    *out = fs;
    return 0;
}

brain_flowset_t *brain_flowset_ref(brain_flowset_t *fs)
{
    fs->refs++;
    return fs;
}

void brain_flowset_unref(brain_flowset_t *fs)
{
    if (fs != NULL && --fs->refs == 0)
        free(fs);
}

uint32_t brain_flowset_version(const brain_flowset_t *fs)
{
    return fs->version;
}

const char *brain_flowset_nlu_hash(const brain_flowset_t *fs)
{
    return fs->hash;
}

int brain_flowset_nlu_from_cache(const brain_flowset_t *fs)
{
    return fs->from_cache;
}

int brain_flowset_nlu_save(const brain_flowset_t *fs, core_buf_t *out)
{
    return core_buf_append(out, "MODEL", 5);
}

int64_t brain_flowset_idle_timeout_us(const brain_flowset_t *fs)
{
    return fake_idle_us;
}

size_t brain_flowset_flow_count(const brain_flowset_t *fs)
{
    return 1;
}

void brain_conv_init(brain_conv_t *c, const brain_flowset_t *fs, brain_channel_t ch, int64_t now)
{
    memset(c, 0, sizeof(*c));
    c->version = fs->version;
    c->channel = (uint8_t)ch;
    c->created_us = c->last_us = now;
}

void brain_conv_dispose(brain_conv_t *c)
{
    free(c->slots);
}

size_t brain_conv_memory(const brain_conv_t *c)
{
    return sizeof(*c) + c->slots_cap;
}

int64_t brain_conv_deadline(const brain_flowset_t *fs, const brain_conv_t *c)
{
    return c->status == BRAIN_ST_ACTIVE ? c->last_us + fake_idle_us : 0;
}

int brain_conv_migrate(const brain_flowset_t *from, const brain_flowset_t *to, brain_conv_t *c,
                       core_err_t *err)
{
    c->version = to->version;
    return 0;
}

const char *brain_channel_name(brain_channel_t ch)
{
    return ch == BRAIN_CH_CHAT ? "chat" : "default";
}

const char *guard_action_name(guard_action_t a)
{
    return "allow";
}

int brain_conv_to_json(const brain_flowset_t *fs, const brain_conv_t *c, core_buf_t *out)
{
    return core_buf_printf(out, "{\"turns\":%u}", c->turns);
}

int brain_conv_from_json(const brain_flowset_t *fs, const char *json, size_t len, brain_conv_t *c,
                         core_err_t *err)
{
    brain_conv_init(c, fs, BRAIN_CH_CHAT, 0);
    return 0;
}

void brain_out_init(brain_out_t *out)
{
    memset(out, 0, sizeof(*out));
}

static void effect_clear(brain_effect_t *e)
{
    free(e->method);
    free(e->url);
    free(e->body);
    free(e->base_url);
    free(e->model);
    free(e->api_key_env);
    memset(e, 0, sizeof(*e));
}

static void out_reset(brain_out_t *out)
{
    for (size_t i = 0; i < out->n_messages; i++)
        free(out->messages[i].text);
    out->n_messages = 0;
    effect_clear(&out->effect);
}

void brain_out_dispose(brain_out_t *out)
{
    out_reset(out);
}

static void say(brain_out_t *out, char *text)
{
    out->messages[out->n_messages++].text = text;
}

int brain_turn(const brain_flowset_t *fs, brain_conv_t *c, const brain_input_t *in,
               brain_out_t *out)
{
    if (c->version != fs->version)
        return CORE_ERR_INVALID;
    out_reset(out);
    c->last_us = in->now_us;
    if (in->event == BRAIN_EV_TIMEOUT) {
        c->status = BRAIN_ST_ENDED;
        say(out, core_xstrdup("bye (timeout)"));
        return BRAIN_DONE;
    }
    c->turns++;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%.*s", (int)in->len, in->text);
    char a[400] = "", b[64] = "";
    unsigned r = 0, bo = 0, to = 0;
    if (sscanf(cmd, "http %399s %u %u %u", a, &r, &bo, &to) >= 1) {
        brain_effect_t *e = &out->effect;
        e->kind = BRAIN_EFFECT_HTTP;
        e->method = core_xstrdup("GET");
        e->url = core_xstrdup(a);
        e->retries = r;
        e->backoff_ms = bo;
        e->timeout_ms = to ? to : 5000;
        return BRAIN_NEED_EFFECT;
    }
    if (sscanf(cmd, "llm %399s %63s %u", a, b, &r) >= 1) {
        brain_effect_t *e = &out->effect;
        e->kind = BRAIN_EFFECT_LLM;
        e->method = core_xstrdup("POST");
        e->url = core_xasprintf("%s/chat/completions", a);
        e->body = core_xstrdup("{\"model\":\"stub-model\",\"messages\":[{\"role\":\"system\","
                               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
                               "\"where is my bag\"}],\"temperature\":0.2,\"max_tokens\":64}");
        e->body_len = strlen(e->body);
        e->api_key_env = (b[0] && strcmp(b, "-") != 0) ? core_xstrdup(b) : NULL;
        e->retries = r;
        e->backoff_ms = 10;
        e->timeout_ms = 2000;
        return BRAIN_NEED_EFFECT;
    }
    if (strcmp(cmd, "end") == 0) {
        c->status = BRAIN_ST_ENDED;
        say(out, core_xstrdup("goodbye"));
        return BRAIN_DONE;
    }
    say(out, core_xasprintf("echo:%s #%u", cmd, c->turns));
    return BRAIN_DONE;
}

int brain_resume(const brain_flowset_t *fs, brain_conv_t *c, const brain_effect_result_t *res,
                 brain_out_t *out)
{
    effect_clear(&out->effect);
    say(out, core_xasprintf("result error=%s status=%d content=%s tokens=%d/%d body=%.20s",
                            res->error ? core_strerror(res->error) : "none", res->status,
                            res->content ? res->content : "-", res->prompt_tokens,
                            res->completion_tokens, res->body ? res->body : ""));
    return BRAIN_DONE;
}

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
    char path[256];
    snprintf(path, sizeof(path), "%s/main.json", flows_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
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
    int closed = 0;
    runtime_close(e->rt, on_closed_count, &closed);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&e->loop), 0);
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
    one(&e, "llm", url(&llm_stub, "/mode/malformed/v1"), "STUB_KEY", &r);
    assert_non_null(strstr(r.text, "error=protocol status=200 content=-"));
    one(&e, "llm", url(&llm_stub, "/mode/nocontent/v1"), "STUB_KEY", &r);
    assert_non_null(strstr(r.text, "error=protocol status=200 content=-"));
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
        cmocka_unit_test(test_turns_queue_per_conversation_only),
        cmocka_unit_test(test_http_results),
        cmocka_unit_test(test_oversize_response),
        cmocka_unit_test(test_llm_calls),
        cmocka_unit_test(test_idle_sweep),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_close_during_backoff),
        cmocka_unit_test(test_cache_and_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
