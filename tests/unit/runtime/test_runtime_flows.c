/* The example flows (flows/) compiled by the real brain and driven through
 * the runtime against real loopback servers: tests/stubs/backend.py for the
 * airline backend and tests/stubs/llm.py for an OpenAI-compatible LLM. Every
 * backend or LLM failure (500, refused, malformed JSON, timeout) must send
 * the conversation down its flow's error edge: a handoff or an apology,
 * never a hang or a crash. The backend and LLM addresses reach the flows the
 * way an operator sets them: CHORUS_BACKEND_URL / CHORUS_LLM_BASE_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "chorus/net_client.h"
#include "chorus/runtime.h"
#include "stubs/stub_proc.h"
#include "unit/runtime/runtime_test.h"

static stub_proc_t backend, llm;
static char flows_dir[512];
static char data_dir[64];

typedef struct rec_s {
    int calls;
    int error;
    char text[2048]; /* every message, one per line */
    int status;      /* brain_status_t */
    char handoff_reason[64];
    char handoff_queue[64];
    char flow[64];
    char node[64];
    char slot[256]; /* the value of want_slot after the turn */
    const char *want_slot;
    int from_llm;
} rec_t;

static void on_turn(const runtime_turn_out_t *o)
{
    rec_t *r = o->data;
    r->calls++;
    r->error = o->error;
    if (o->error != 0)
        return;
    size_t used = 0;
    for (size_t i = 0; i < o->out->n_messages; i++) {
        used += (size_t)snprintf(r->text + used, sizeof(r->text) - used, "%s%s", i ? "\n" : "",
                                 o->out->messages[i].text);
        if (used >= sizeof(r->text))
            used = sizeof(r->text) - 1;
        r->from_llm |= o->out->messages[i].from_llm;
    }
    r->status = o->out->status;
    snprintf(r->handoff_reason, sizeof(r->handoff_reason), "%s",
             o->out->handoff_reason ? o->out->handoff_reason : "");
    snprintf(r->handoff_queue, sizeof(r->handoff_queue), "%s",
             o->out->handoff_queue ? o->out->handoff_queue : "");
    snprintf(r->flow, sizeof(r->flow), "%s", o->out->flow ? o->out->flow : "");
    snprintf(r->node, sizeof(r->node), "%s", o->out->node ? o->out->node : "");
    const char *v = r->want_slot ? brain_conv_slot(o->conv, r->want_slot) : NULL;
    snprintf(r->slot, sizeof(r->slot), "%s", v ? v : "");
}

typedef struct env_s {
    uv_loop_t loop;
    runtime_t *rt;
    char backend_var[256];
    char llm_var[256];
    const char *envp[3];
} env_t;

static int loaded_rc;
static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    char line[1024];
    for (size_t i = 0; i < d->len; i++)
        fprintf(stderr, "%s\n", core_diag_format(&d->items[i], line, sizeof(line)));
    loaded_rc = rc;
    (*(int *)data)++;
}

/* A runtime on the example flows with the backend at backend_base and the LLM
 * at llm_base (full URLs). */
static void env_start(env_t *e, const char *backend_base, const char *llm_base)
{
    snprintf(e->backend_var, sizeof(e->backend_var), "CHORUS_BACKEND_URL=%s", backend_base);
    snprintf(e->llm_var, sizeof(e->llm_var), "CHORUS_LLM_BASE_URL=%s", llm_base);
    e->envp[0] = e->backend_var;
    e->envp[1] = e->llm_var;
    e->envp[2] = NULL;
    uv_loop_init(&e->loop);
    runtime_options_t o = {.flows_dir = flows_dir, .data_dir = data_dir, .envp = e->envp};
    assert_int_equal(runtime_new(&e->loop, &o, &e->rt, NULL), 0);
    int loaded = 0;
    assert_int_equal(runtime_load(e->rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(loaded_rc, 0);
}

static void env_stop(env_t *e)
{
    rt_test_close(&e->loop, e->rt, NULL);
}

static char *stub_url(const stub_proc_t *sp, const char *path)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 256, "http://127.0.0.1:%d%s", sp->port, path);
    return b;
}

/* Runs one user message to completion. */
static void say(env_t *e, const char *key, const char *text, const char *want_slot, rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->want_slot = want_slot;
    runtime_turn_in_t in = {.key = key,
                            .channel = BRAIN_CH_CHAT,
                            .event = BRAIN_EV_MESSAGE,
                            .text = text,
                            .len = strlen(text)};
    core_err_t err = {0};
    assert_int_equal(runtime_turn(e->rt, &in, on_turn, r, &err), 0);
    while (r->calls == 0)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(r->error, 0);
}

/* ---- backend ------------------------------------------------------------- */

static void test_refund_approved(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, ""), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "r1", "where is my refund", NULL, &r);
    assert_string_equal(r.node, "ask_ref");
    say(&e, "r1", "RF1001", "refund_state", &r);
    assert_non_null(strstr(r.text, "refund RF1001 for 249.00 USD has been approved"));
    assert_string_equal(r.slot, "approved");
    assert_int_equal(r.status, BRAIN_ST_ACTIVE);
    env_stop(&e);
}

static json_t *stub_requests(env_t *e, const stub_proc_t *sp);

static void test_booking_status_and_change(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, ""), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "b1", "check booking ABC123", "booking_state", &r);
    assert_non_null(strstr(r.text, "flight CH 101 from LHR to JFK"));
    assert_string_equal(r.slot, "confirmed");
    say(&e, "c1", "change flight XYZ789 to 2026-12-28", "new_date", &r);
    assert_string_equal(r.node, "confirm");
    assert_string_equal(r.slot, "2026-12-28");
    say(&e, "c1", "yes please", "change_confirmation", &r);
    assert_non_null(strstr(r.text, "Booking XYZ789 now flies on"));
    assert_string_equal(r.slot, "CHG-XYZ789");
    /* The backend saw the POST the flow describes. */
    json_t *reqs = stub_requests(&e, &backend);
    json_t *post = NULL;
    for (size_t i = 0; i < json_array_size(reqs); i++) {
        json_t *q = json_array_get(reqs, i);
        if (strcmp(json_string_value(json_object_get(q, "path")), "/bookings/XYZ789/change") == 0)
            post = q;
    }
    assert_non_null(post);
    assert_string_equal(json_string_value(json_object_get(post, "method")), "POST");
    json_t *body = json_loads(json_string_value(json_object_get(post, "body")), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "date")), "2026-12-28");
    json_decref(body);
    json_decref(reqs);
    say(&e, "c1", "5", NULL, &r);
    assert_int_equal(r.status, BRAIN_ST_ENDED);
    env_stop(&e);
}

static void test_backend_500_takes_error_edge(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, "/mode/500"), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "r500", "track my refund RF1002", "refund_http", &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    assert_string_equal(r.handoff_reason, "backend_unavailable");
    assert_string_equal(r.handoff_queue, "refunds");
    assert_string_equal(r.slot, "500");
    assert_non_null(strstr(r.text, "refunds system isn't answering"));
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.effects, 3); /* the node's retries: 2 */
    env_stop(&e);
}

static void test_backend_404_asks_again(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, ""), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "nf", "check my booking ZZZ999", "booking_http", &r);
    assert_non_null(strstr(r.text, "couldn't find a booking"));
    assert_string_equal(r.node, "ask_ref");
    assert_int_equal(r.status, BRAIN_ST_ACTIVE);
    env_stop(&e);
}

static void test_backend_malformed_json(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, "/mode/malformed"), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "mj", "check refund RF1001", NULL, &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    assert_string_equal(r.handoff_reason, "backend_unavailable");
    env_stop(&e);
}

static void test_backend_refused(void **state)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", stub_closed_port());
    env_t e;
    env_start(&e, base, stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "rf", "check booking ABC123", NULL, &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    assert_string_equal(r.handoff_reason, "backend_unavailable");
    assert_string_equal(r.handoff_queue, "bookings");
    env_stop(&e);
}

static void test_backend_timeout(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, "/mode/hang"), stub_url(&llm, "/v1"));
    rec_t r;
    /* booking lookup: timeout_ms 3000, one retry: the turn ends in ~6 s. */
    say(&e, "to", "check booking ABC123", NULL, &r);
    assert_int_equal(r.status, BRAIN_ST_HANDOFF);
    assert_string_equal(r.handoff_reason, "backend_unavailable");
    env_stop(&e);
}

/* ---- LLM ---------------------------------------------------------------- */

static void test_llm_answer_and_request_shape(void **state)
{
    env_t e;
    env_start(&e, stub_url(&backend, ""), stub_url(&llm, "/v1"));
    rec_t r;
    say(&e, "q1", "can I bring my dog on the plane", "travel_answer", &r);
    assert_string_equal(r.text, "echo: can I bring my dog on the plane");
    assert_int_equal(r.from_llm, 1);
    assert_string_equal(r.slot, "echo: can I bring my dog on the plane");
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_true(st.llm_prompt_tokens > 8);
    assert_int_equal(st.llm_completion_tokens, 9);
    /* What the LLM received is exactly an OpenAI chat-completions request. */
    json_t *reqs = stub_requests(&e, &llm);
    json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
    assert_non_null(last);
    assert_int_equal(json_array_size(json_object_get(last, "problems")), 0);
    json_t *body = json_object_get(last, "body");
    assert_string_equal(json_string_value(json_object_get(body, "model")),
                        "chorus-travel-assistant");
    json_t *msgs = json_object_get(body, "messages");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "system");
    json_t *user = json_array_get(msgs, json_array_size(msgs) - 1);
    assert_string_equal(json_string_value(json_object_get(user, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(user, "content")),
                        "can I bring my dog on the plane");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 200);
    json_t *hdr = json_object_get(last, "headers");
    assert_string_equal(json_string_value(json_object_get(hdr, "authorization")),
                        "Bearer sk-flows-test");
    json_decref(reqs);
    env_stop(&e);
}

static void llm_failure(const char *mode, const char *key)
{
    char path[64];
    snprintf(path, sizeof(path), "/mode/%s/v1", mode);
    env_t e;
    env_start(&e, stub_url(&backend, ""), stub_url(&llm, path));
    rec_t r;
    say(&e, key, "do I need a visa to travel to the US", NULL, &r);
    assert_non_null(strstr(r.text, "I can't answer that right now"));
    assert_int_equal(r.from_llm, 0);
    assert_int_equal(r.status, BRAIN_ST_ACTIVE);
    env_stop(&e);
}

static void test_llm_500(void **state)
{
    llm_failure("500", "l500");
}

static void test_llm_malformed(void **state)
{
    llm_failure("malformed", "lmal");
}

static void test_llm_no_content(void **state)
{
    llm_failure("nocontent", "lnc");
}

static void test_llm_missing_key(void **state)
{
    unsetenv("CHORUS_LLM_API_KEY");
    llm_failure("ok", "lkey");
    setenv("CHORUS_LLM_API_KEY", "sk-flows-test", 1);
}

/* GET /_stub/requests from a stub, through the runtime's own kind of client
 * on the same loop. */
typedef struct fetch_s {
    int done;
    json_t *doc;
} fetch_t;

static void on_fetch(net_client_response_t *resp)
{
    fetch_t *f = resp->data;
    f->done = 1;
    f->doc = json_loadb(resp->body, resp->body_len, 0, NULL);
}

static json_t *stub_requests(env_t *e, const stub_proc_t *sp)
{
    net_client_t *c = NULL;
    assert_int_equal(net_client_new(&e->loop, NULL, &c, NULL), 0);
    net_client_request_t req = {.url = stub_url(sp, "/_stub/requests")};
    fetch_t f = {0};
    assert_int_equal(net_client_request(c, &req, on_fetch, &f, NULL, NULL), 0);
    while (!f.done)
        uv_run(&e->loop, UV_RUN_ONCE);
    net_client_close(c, NULL, NULL);
    assert_non_null(f.doc);
    return f.doc;
}

static int setup(void **state)
{
    const char *src = getenv("CHORUS_SOURCE_DIR");
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", src ? src : ".");
    snprintf(data_dir, sizeof(data_dir), "/tmp/chorus-rtf-XXXXXX");
    if (mkdtemp(data_dir) == NULL)
        return -1;
    setenv("CHORUS_LLM_API_KEY", "sk-flows-test", 1);
    const char *key[] = {"--key", "sk-flows-test", NULL};
    if (stub_proc_start(&backend, "backend.py", NULL) != 0 ||
        stub_proc_start(&llm, "llm.py", key) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    stub_proc_stop(&backend);
    stub_proc_stop(&llm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refund_approved),
        cmocka_unit_test(test_booking_status_and_change),
        cmocka_unit_test(test_backend_500_takes_error_edge),
        cmocka_unit_test(test_backend_404_asks_again),
        cmocka_unit_test(test_backend_malformed_json),
        cmocka_unit_test(test_backend_refused),
        cmocka_unit_test(test_backend_timeout),
        cmocka_unit_test(test_llm_answer_and_request_shape),
        cmocka_unit_test(test_llm_500),
        cmocka_unit_test(test_llm_malformed),
        cmocka_unit_test(test_llm_no_content),
        cmocka_unit_test(test_llm_missing_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
