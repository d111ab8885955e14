/* The interpreter: every node kind, slot types, effects and their failures,
 * global intents, fallbacks, timeouts and the resumable-turn contract. The
 * flows are compiled without the intent router, so routing is by payload
 * intent or exact example and the tests are deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include <jansson.h>

#include "test_brain_util.h"

static const char *settings_json =
    "{\"settings\": {\"max_fallbacks\": 2, \"idle_timeout_s\": 60, \"handoff_queue\": \"desk\","
    " \"llm\": {\"base_url\": \"http://llm.test/v1/\", \"model\": \"m1\", \"api_key_env\": "
    "\"KEY\"},"
    " \"vars\": {\"api\": \"http://api.test\"},"
    " \"messages\": {\"fallback\": \"Eh?\", \"cancel\": \"Cancelled.\", \"help\": \"Help text.\","
    " \"agent\": \"Agent.\", \"timeout\": \"Timed out.\", \"start_over\": \"Again.\","
    " \"csat_prompt\": \"Rate 1-5?\", \"csat_thanks\": \"Thanks!\", \"goodbye\": \"Bye.\","
    " \"confirm\": \"Right?\"}}}";

static const char *kinds_json =
    "{\"name\": \"kinds\", \"intents\": {\"kinds\": [\"run kinds\"]},"
    " \"slots\": {\"n\": {\"type\": \"integer\", \"min\": 1, \"max\": 9},"
    "  \"who\": {\"type\": \"text\", \"sensitive\": false},"
    "  \"secret\": {\"type\": \"text\", \"sensitive\": true},"
    "  \"size\": {\"type\": \"choice\", \"choices\": [\"small\", {\"value\": \"large\", "
    "\"synonyms\":"
    " [\"big\"]}]},"
    "  \"label\": {\"type\": \"any\"}},"
    " \"nodes\": {"
    "  \"hello\": {\"type\": \"say\", \"message\": {\"default\": \"Hello {{who|default:you}}\","
    "   \"sms\": \"SMS hello\", \"voice\": \"Voice hello\", \"choices\": [\"A\", {\"title\": \"B\","
    "   \"value\": \"bee\"}]}, \"next\": \"ask_n\"},"
    "  \"ask_n\": {\"type\": \"ask\", \"slot\": \"n\", \"prompt\": \"How many?\", \"reprompt\":"
    "   \"A number 1-9 please.\", \"max_attempts\": 2, \"on_fail\": \"failed\", \"next\": "
    "\"ask_size\"},"
    "  \"ask_size\": {\"type\": \"ask\", \"slot\": \"size\", \"prompt\": \"Size?\", \"next\": "
    "\"b\"},"
    "  \"b\": {\"type\": \"branch\", \"cases\": ["
    "    {\"if\": {\"all\": [{\"slot\": \"n\", \"gt\": 5}, {\"slot\": \"size\", \"equals\": "
    "\"LARGE\"}]},"
    "     \"next\": \"big\"},"
    "    {\"if\": {\"any\": [{\"channel\": \"sms\"}, {\"slot\": \"size\", \"in\": [\"tiny\"]}]},"
    "     \"next\": \"sms\"},"
    "    {\"if\": {\"not\": {\"slot\": \"n\", \"lte\": 2}}, \"next\": \"mid\"}],"
    "   \"default\": \"small\"},"
    "  \"big\": {\"type\": \"set\", \"set\": {\"label\": \"big-{{n}}-{{size|upper}}\"}, \"next\": "
    "\"tell\"},"
    "  \"mid\": {\"type\": \"set\", \"set\": {\"label\": \"mid\"}, \"next\": \"tell\"},"
    "  \"sms\": {\"type\": \"set\", \"set\": {\"label\": \"sms\"}, \"next\": \"tell\"},"
    "  \"small\": {\"type\": \"set\", \"set\": {\"label\": 7}, \"next\": \"tell\"},"
    "  \"tell\": {\"type\": \"say\", \"messages\": [\"Label {{label}}\", \"n={{n}}\"]},"
    "  \"failed\": {\"type\": \"handoff\", \"reason\": \"too_many\", \"queue\": \"q2\"}"
    " }}";

static const char *fx_json =
    "{\"name\": \"fx\", \"intents\": {\"fx\": [\"run fx\"]},"
    " \"slots\": {\"ref\": {\"type\": \"regex\", \"pattern\": \"RF[0-9]{4}\", \"caseless\": true},"
    "  \"st\": {\"type\": \"any\"}, \"amt\": {\"type\": \"any\"}, \"ok\": {\"type\": \"any\"},"
    "  \"first\": {\"type\": \"any\"}, \"obj\": {\"type\": \"any\"}, \"code\": {\"type\": \"any\"},"
    "  \"answer\": {\"type\": \"any\"}},"
    " \"nodes\": {"
    "  \"ask_ref\": {\"type\": \"ask\", \"slot\": \"ref\", \"prompt\": \"Ref?\", \"next\": "
    "\"call\"},"
    "  \"call\": {\"type\": \"action\", \"method\": \"POST\", \"url\": "
    "\"{{vars.api}}/r/{{ref}}?q={{ref}}\","
    "   \"headers\": {\"X-Ref\": \"{{ref}}\", \"content-type\": \"application/vnd.api+json\"}, "
    "\"body\": {\"ref\": \"{{ref}}\", \"n\": [1, "
    "\"{{ref|lower}}\"]},"
    "   \"timeout_ms\": 1500, \"retries\": 2, \"backoff_ms\": 100, \"status_slot\": \"code\","
    "   \"map\": {\"st\": \"/refund/status\", \"amt\": \"/refund/amount\", \"ok\": \"/ok\","
    "   \"first\": \"/items/1\", \"obj\": \"/refund\"},"
    "   \"next\": \"ask_llm\", \"on_error\": \"oops\"},"
    "  \"ask_llm\": {\"type\": \"llm\", \"system\": \"Be brief about {{ref}}.\", \"slot\": "
    "\"answer\","
    "   \"max_tokens\": 50, \"temperature\": 0.5, \"next\": \"done\", \"on_error\": \"oops\"},"
    "  \"done\": {\"type\": \"say\", \"message\": \"Done {{st}}\"},"
    "  \"oops\": {\"type\": \"say\", \"message\": \"Oops {{code|default:none}}\"}"
    " }}";

static const char *jumps_json =
    "{\"name\": \"jumps\", \"intents\": {\"jumps\": [\"run jumps\"], \"jump_goto\": [\"run "
    "goto\"]},"
    " \"slots\": {\"yes\": {\"type\": \"yes/no\"}},"
    " \"nodes\": {"
    "  \"start\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"intent\": \"jump_goto\"}, "
    "\"next\":"
    "   \"go\"}], \"default\": \"c\"},"
    "  \"c\": {\"type\": \"call\", \"flow\": \"sub\", \"next\": \"back\"},"
    "  \"back\": {\"type\": \"say\", \"message\": \"Back in jumps\", \"next\": \"fin\"},"
    "  \"fin\": {\"type\": \"end\", \"message\": \"The end\", \"csat\": true},"
    "  \"go\": {\"type\": \"goto\", \"flow\": \"sub\", \"node\": \"second\"}"
    " }}";

static const char *sub_json =
    "{\"name\": \"sub\", \"nodes\": {"
    "  \"first\": {\"type\": \"ask\", \"slot\": \"yes\", \"prompt\": \"Sure?\", \"next\": \"r\"},"
    "  \"r\": {\"type\": \"return\", \"message\": \"Returning\"},"
    "  \"second\": {\"type\": \"end\", \"message\": \"Ended in sub\"}"
    " }}";

static const char *voice_json =
    "{\"name\": \"voice\", \"intents\": {\"voice\": [\"run voice\"]},"
    " \"slots\": {\"when\": {\"type\": \"date\", \"confirm_voice\": true}},"
    " \"nodes\": {\"ask\": {\"type\": \"ask\", \"slot\": \"when\", \"prompt\": \"When?\", \"next\":"
    " \"ok\"}, \"ok\": {\"type\": \"say\", \"message\": \"On {{when|date}}\"}}}";

static brain_flowset_t *compile_all(void)
{
    const char *names[] = {"settings.json", "kinds.json", "fx.json",
                           "jumps.json",    "sub.json",   "voice.json"};
    const char *texts[] = {settings_json, kinds_json, fx_json, jumps_json, sub_json, voice_json};
    brain_flowset_t *fs;
    assert_string_equal(compile_n(names, texts, 6, NULL, &fs), "");
    return fs;
}

static void start(harness_t *h, brain_channel_t ch)
{
    h_init(h, compile_all(), ch);
}

static void test_say_variants_and_choices(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_WEB);
    assert_int_equal(h_send(&h, "go", "kinds"), BRAIN_DONE);
    assert_string_equal(h_said(&h), "Hello you | How many?");
    assert_int_equal(h.out.messages[0].n_choices, 2);
    assert_string_equal(h.out.messages[0].choices[1].title, "B");
    assert_string_equal(h.out.messages[0].choices[1].value, "bee");
    assert_string_equal(h.out.intent, "kinds");
    assert_string_equal(h.out.flow, "kinds");
    assert_string_equal(h_node(&h), "ask_n");
    h_dispose(&h);
    start(&h, BRAIN_CH_SMS);
    h_send(&h, "run kinds", NULL); /* an exact example routes without the classifier */
    assert_string_equal(h_said(&h), "SMS hello | How many?");
    h_dispose(&h);
}

static void test_ask_validation_and_branch(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h_send(&h, "twelve of them", NULL); /* out of bounds: says why */
    assert_string_equal(h_said(&h), "That should be at most 9. | A number 1-9 please.");
    assert_string_equal(h_node(&h), "ask_n");
    h_send(&h, "7", NULL);
    assert_string_equal(h_said(&h), "Size?");
    assert_string_equal(h_slot(&h, "n"), "7");
    h_send(&h, "a big one", NULL); /* synonym */
    assert_string_equal(h_said(&h), "Label big-7-LARGE | n=7");
    assert_string_equal(h_slot(&h, "size"), "large");
    assert_null(h.out.flow); /* flow complete: idle */
    h_dispose(&h);
}

static void test_branch_other_cases(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_SMS);
    h_send(&h, "go", "kinds");
    h_send(&h, "3", NULL);
    h_send(&h, "small", NULL);
    assert_string_equal(h_said(&h), "Label sms | n=3");
    h_dispose(&h);
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h_send(&h, "3", NULL);
    h_send(&h, "small", NULL);
    assert_string_equal(h_said(&h), "Label mid | n=3");
    h_dispose(&h);
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h_send(&h, "2", NULL);
    h_send(&h, "small", NULL);
    assert_string_equal(h_said(&h), "Label 7 | n=2");
    h_dispose(&h);
}

static void test_prefill_and_skip_filled(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "I want 4 large", "kinds"); /* both slots in the first utterance */
    assert_string_equal(h_said(&h), "Hello you | Label mid | n=4");
    h_send(&h, "again", "kinds"); /* filled slots are not asked again */
    assert_string_equal(h_said(&h), "Hello you | Label mid | n=4");
    h_dispose(&h);
}

static brain_flowset_t *compile_with_rails(const char *name, const char *text);

/* The sentence that starts a flow fills its slots whatever their number:
 * the 70th slot declared is filled from it as the first is. */
static void test_prefill_past_64_slots(void **state)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 16);
    core_buf_printf(&b, "{\"name\": \"many\", \"intents\": {\"book\": [\"book a table\"]},"
                        " \"slots\": {");
    for (int i = 0; i < 69; i++)
        core_buf_printf(&b, "\"s%d\": {\"type\": \"text\"}, ", i);
    core_buf_printf(&b, "\"day\": {\"type\": \"number\"}}, \"nodes\": {"
                        "\"ask\": {\"type\": \"ask\", \"slot\": \"day\", \"prompt\": \"How many?\","
                        " \"next\": \"ok\"},"
                        "\"ok\": {\"type\": \"say\", \"message\": \"for {{day}}\"}}}");
    harness_t h;
    h_init(&h, compile_with_rails("many.json", b.data), BRAIN_CH_CHAT);
    h_send(&h, "book a table for 4", "book");
    assert_string_equal(h_said(&h), "for 4");
    h_dispose(&h);
    core_buf_dispose(&b);
    (void)state;
}

static void test_max_attempts(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h_send(&h, "no idea", NULL);
    assert_string_equal(h_said(&h), "A number 1-9 please.");
    h_send(&h, "still none", NULL);
    assert_int_equal(h.out.status, BRAIN_ST_HANDOFF);
    assert_string_equal(h.out.handoff_reason, "too_many");
    assert_string_equal(h.out.handoff_queue, "q2");
    json_error_t je;
    json_t *sum = json_loads(h.out.handoff_summary, 0, &je);
    assert_non_null(sum);
    assert_string_equal(json_string_value(json_object_get(sum, "flow")), "kinds");
    json_t *last = json_object_get(sum, "last_user");
    assert_int_equal(json_array_size(last), 2);
    assert_string_equal(json_string_value(json_array_get(last, 1)), "still none");
    json_decref(sum);
    h_send(&h, "hello?", NULL); /* a human has it now */
    assert_int_equal(h.out.n_messages, 0);
    assert_int_equal(h.out.status, BRAIN_ST_HANDOFF);
    h_dispose(&h);
}

static void test_action_request_and_mapping(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    assert_int_equal(h_send(&h, "check rf1001 please", "fx"), BRAIN_NEED_EFFECT);
    const brain_effect_t *e = &h.out.effect;
    assert_int_equal(e->kind, BRAIN_EFFECT_HTTP);
    assert_string_equal(e->method, "POST");
    assert_string_equal(e->url, "http://api.test/r/RF1001?q=RF1001");
    assert_string_equal(e->body, "{\"ref\":\"RF1001\",\"n\":[1,\"rf1001\"]}");
    assert_int_equal(e->timeout_ms, 1500);
    assert_int_equal(e->retries, 2);
    assert_int_equal(e->backoff_ms, 100);
    assert_string_equal(e->headers[0].name, "X-Ref");
    assert_string_equal(e->headers[0].value, "RF1001");
    /* the node's own Content-Type, once; the default Accept added */
    int content_types = 0, accepts = 0;
    for (size_t i = 0; i < e->n_headers; i++) {
        if (strcasecmp(e->headers[i].name, "Content-Type") == 0) {
            content_types++;
            assert_string_equal(e->headers[i].value, "application/vnd.api+json");
        }
        accepts += strcasecmp(e->headers[i].name, "Accept") == 0;
    }
    assert_int_equal(content_types, 1);
    assert_int_equal(accepts, 1);
    assert_string_equal(e->node, "call");
    /* a second turn while the effect is pending is refused */
    brain_out_t other;
    brain_out_init(&other);
    assert_int_equal(h_send(&h, "x", NULL), CORE_ERR_BUSY);
    brain_out_dispose(&other);
    assert_int_equal(h_resume(&h, 200,
                              "{\"refund\": {\"status\": \"approved\", \"amount\": 12.5}, \"ok\":"
                              " true, \"items\": [\"a\", \"b\"]}"),
                     BRAIN_NEED_EFFECT);
    assert_string_equal(h_slot(&h, "st"), "approved");
    assert_string_equal(h_slot(&h, "amt"), "12.5");
    assert_string_equal(h_slot(&h, "ok"), "yes");
    assert_string_equal(h_slot(&h, "first"), "b");
    assert_string_equal(h_slot(&h, "obj"), "{\"status\":\"approved\",\"amount\":12.5}");
    assert_string_equal(h_slot(&h, "code"), "200");
    /* now the llm node */
    e = &h.out.effect;
    assert_int_equal(e->kind, BRAIN_EFFECT_LLM);
    assert_string_equal(e->url, "http://llm.test/v1/chat/completions");
    assert_string_equal(e->model, "m1");
    assert_string_equal(e->api_key_env, "KEY");
    assert_int_equal(e->n_messages, 2);
    assert_string_equal(e->messages[0].content, "Be brief about RF1001.");
    assert_string_equal(e->messages[1].content, "check rf1001 please");
    json_error_t je;
    json_t *body = json_loads(e->body, 0, &je);
    assert_string_equal(json_string_value(json_object_get(body, "model")), "m1");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 50);
    assert_true(json_real_value(json_object_get(body, "temperature")) == 0.5);
    json_decref(body);
    assert_int_equal(h_resume(&h, 200,
                              "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\":"
                              " \"It is approved.\"}}], \"usage\": {\"prompt_tokens\": 11,"
                              " \"completion_tokens\": 4}}"),
                     BRAIN_DONE);
    assert_string_equal(h_said(&h), "It is approved. | Done approved");
    assert_true(h.out.messages[0].from_llm);
    assert_string_equal(h_slot(&h, "answer"), "It is approved.");
    int tokens = 0;
    for (size_t i = 0; i < h.out.n_events; i++)
        if (strcmp(h.out.events[i].name, "llm_tokens") == 0)
            tokens += (int)h.out.events[i].value;
    assert_int_equal(tokens, 15);
    h_dispose(&h);
}

static void test_action_errors(void **state)
{
    static const struct {
        int status;
        const char *body;
        int error;
        const char *said;
    } cases[] = {
        {500, "{}", 0, "Oops 500"},
        {404, "{\"error\": 1}", 0, "Oops 404"},
        {200, "{\"refund\": ", 0, "Oops 200"},
        {0, NULL, CORE_ERR_TIMEOUT, "Oops none"},
        {0, NULL, CORE_ERR_IO, "Oops none"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        harness_t h;
        start(&h, BRAIN_CH_CHAT);
        assert_int_equal(h_send(&h, "RF0001", "fx"), BRAIN_NEED_EFFECT);
        brain_effect_result_t r = {.error = cases[i].error,
                                   .status = cases[i].status,
                                   .body = cases[i].body,
                                   .body_len = cases[i].body ? strlen(cases[i].body) : 0};
        assert_int_equal(brain_resume(h.fs, &h.conv, &r, &h.out), BRAIN_DONE);
        assert_string_equal(h_said(&h), cases[i].said);
        int seen = 0;
        for (size_t j = 0; j < h.out.n_events; j++)
            seen |= strcmp(h.out.events[j].name, "effect_error") == 0;
        assert_true(seen);
        h_dispose(&h);
    }
}

static void test_llm_error_and_direct_content(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "RF0001", "fx");
    h_resume(&h, 200, "{\"refund\": {\"status\": \"x\"}}");
    brain_effect_result_t r = {.status = 200, .content = "Direct.", .prompt_tokens = 1};
    assert_int_equal(brain_resume(h.fs, &h.conv, &r, &h.out), BRAIN_DONE);
    assert_string_equal(h_said(&h), "Direct. | Done x");
    h_dispose(&h);
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "RF0001", "fx");
    h_resume(&h, 200, "{}");
    assert_int_equal(h_resume(&h, 200, "{\"choices\": []}"), BRAIN_DONE);
    assert_string_equal(h_said(&h), "Oops 200");
    h_dispose(&h);
}

static void test_call_return_end_csat(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "jumps");
    assert_string_equal(h_said(&h), "Sure?");
    assert_string_equal(h.out.flow, "sub");
    h_send(&h, "yes", NULL);
    assert_string_equal(h_said(&h), "Returning | Back in jumps | The end | Rate 1-5?");
    assert_string_equal(h.out.flow, "jumps");
    assert_int_equal(h.out.status, BRAIN_ST_ACTIVE);
    h_send(&h, "4", NULL);
    assert_string_equal(h_said(&h), "Thanks!");
    assert_int_equal(h.out.status, BRAIN_ST_ENDED);
    assert_int_equal(h.out.csat, 4);
    assert_string_equal(h.out.end_reason, "end");
    /* a message after the end starts a new session */
    h_send(&h, "go", "jumps");
    assert_int_equal(h.out.status, BRAIN_ST_ACTIVE);
    assert_string_equal(h_slot(&h, "yes"), "-");
    h_dispose(&h);
}

static void test_goto_node(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "jump_goto");
    assert_string_equal(h_said(&h), "Ended in sub");
    assert_int_equal(h.out.status, BRAIN_ST_ENDED);
    h_dispose(&h);
}

static void test_global_intents(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h_send(&h, "help", NULL); /* exact example of the built-in help intent */
    assert_string_equal(h.out.intent, "help");
    assert_string_equal(h_said(&h), "Help text. | A number 1-9 please.");
    assert_string_equal(h_node(&h), "ask_n");
    h_send(&h, "start over", NULL);
    assert_string_equal(h_said(&h), "Again. | Hello you | How many?");
    h_send(&h, "never mind", NULL);
    assert_string_equal(h_said(&h), "Cancelled.");
    assert_null(h.out.flow);
    h_send(&h, "talk to a human", NULL);
    assert_string_equal(h_said(&h), "Agent.");
    assert_int_equal(h.out.status, BRAIN_ST_HANDOFF);
    assert_string_equal(h.out.handoff_reason, "user_request");
    assert_string_equal(h.out.handoff_queue, "desk");
    h_dispose(&h);
}

static void test_fallbacks(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "blah", NULL);
    assert_string_equal(h_said(&h), "Eh?");
    assert_int_equal(h.conv.fallbacks, 1);
    assert_int_equal(h.out.out_of_scope, 1);
    h_send(&h, "run kinds", NULL); /* understood: the count resets */
    assert_int_equal(h.conv.fallbacks, 0);
    h_send(&h, "never mind", NULL);
    h_send(&h, "blah", NULL);
    h_send(&h, "blah blah", NULL);
    assert_int_equal(h.out.status, BRAIN_ST_HANDOFF);
    assert_string_equal(h.out.handoff_reason, "fallback");
    h_dispose(&h);
}

static void test_timeouts(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    assert_int_equal(brain_conv_deadline(h.fs, &h.conv), h.now + 60LL * 1000000);
    h_event(&h, BRAIN_EV_TIMEOUT, 61LL * 1000000);
    assert_string_equal(h_said(&h), "Timed out.");
    assert_int_equal(h.out.status, BRAIN_ST_ENDED);
    assert_string_equal(h.out.end_reason, "idle_timeout");
    assert_int_equal(brain_conv_deadline(h.fs, &h.conv), 0);
    h_dispose(&h);
    /* a message long after the last one starts afresh */
    start(&h, BRAIN_CH_CHAT);
    h_send(&h, "go", "kinds");
    h.now += 3600LL * 1000000;
    h_send(&h, "5", NULL);
    assert_string_equal(h_said(&h), "Eh?");
    assert_string_equal(h_slot(&h, "n"), "-");
    h_dispose(&h);
}

static void test_voice_confirmation(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_VOICE);
    h_send(&h, "go", "voice");
    h_send(&h, "tomorrow", NULL);
    assert_string_equal(h_said(&h), "I heard 2026-11-30. | Right?");
    assert_string_equal(h.out.confirm_slot, "when");
    h_send(&h, "purple", NULL); /* neither yes nor no: asked again */
    assert_string_equal(h_said(&h), "Eh? | Right?");
    h_send(&h, "no", NULL);
    assert_string_equal(h_said(&h), "When?");
    assert_string_equal(h_slot(&h, "when"), "-");
    h_send(&h, "2026-12-24", NULL);
    h_send(&h, "yes", NULL);
    assert_string_equal(h_said(&h), "On Thursday 24 December 2026");
    h_dispose(&h);
    start(&h, BRAIN_CH_CHAT); /* other channels do not confirm */
    h_send(&h, "go", "voice");
    h_send(&h, "tomorrow", NULL);
    assert_string_equal(h_said(&h), "On Monday 30 November 2026");
    h_dispose(&h);
}

static void test_contract_errors(void **state)
{
    harness_t h;
    start(&h, BRAIN_CH_CHAT);
    brain_effect_result_t r = {.status = 200};
    assert_int_equal(brain_resume(h.fs, &h.conv, &r, &h.out), CORE_ERR_INVALID);
    h.conv.version = 99;
    assert_int_equal(h_send(&h, "hi", NULL), CORE_ERR_INVALID);
    h_dispose(&h);
}

static void test_start_event_and_slot_types(void **state)
{
    const char *names[] = {"settings.json", "w.json"};
    const char *texts[] = {
        "{\"settings\": {\"welcome_flow\": \"w\"}}",
        "{\"name\": \"w\", \"slots\": {\"e\": {\"type\": \"email\"}, \"p\": {\"type\": "
        "\"phone\"}, \"m\": {\"type\": \"money\"}, \"t\": {\"type\": \"time\"}, \"y\": {\"type\":"
        " \"yes/no\"}}, \"nodes\": {"
        "\"hi\": {\"type\": \"say\", \"message\": \"Welcome\", \"next\": \"e\"},"
        "\"e\": {\"type\": \"ask\", \"slot\": \"e\", \"prompt\": \"Email?\", \"next\": \"p\"},"
        "\"p\": {\"type\": \"ask\", \"slot\": \"p\", \"prompt\": \"Phone?\", \"next\": \"m\"},"
        "\"m\": {\"type\": \"ask\", \"slot\": \"m\", \"prompt\": \"Amount?\", \"next\": \"t\"},"
        "\"t\": {\"type\": \"ask\", \"slot\": \"t\", \"prompt\": \"Time?\", \"next\": \"y\"},"
        "\"y\": {\"type\": \"ask\", \"slot\": \"y\", \"prompt\": \"OK?\"}}}"};
    brain_flowset_t *fs;
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    harness_t h;
    h_init(&h, fs, BRAIN_CH_CHAT);
    h_event(&h, BRAIN_EV_START, 0);
    assert_string_equal(h_said(&h), "Welcome | Email?");
    h_send(&h, "it's Ada@Example.COM", NULL);
    assert_string_equal(h_slot(&h, "e"), "ada@example.com");
    h_send(&h, "(415) 555-0100", NULL);
    assert_string_equal(h_slot(&h, "p"), "+14155550100");
    h_send(&h, "$12.50", NULL);
    assert_string_equal(h_slot(&h, "m"), "12.50");
    h_send(&h, "half past two pm", NULL);
    assert_string_equal(h_slot(&h, "t"), "14:30");
    h_send(&h, "yep", NULL);
    assert_string_equal(h_slot(&h, "y"), "yes");
    h_dispose(&h);
}

/* Compiles one flow with guardrails on: the rules given (as rules.json), or
 * the built-in ones when rules is NULL. */
static brain_flowset_t *compile_with_rules(const char *name, const char *text, const char *rules)
{
    brain_source_t src = {name, text, strlen(text)};
    brain_compile_opts_t o;
    brain_compile_opts_init(&o);
    o.validate_only = 1; /* guardrails on */
    if (rules != NULL) {
        o.guard_json = rules;
        o.guard_len = strlen(rules);
        o.guard_file = "rules.json";
    }
    core_diags_t d;
    core_diags_init(&d);
    brain_flowset_t *fs = NULL;
    assert_int_equal(brain_flowset_compile(&src, 1, &o, &fs, &d), 0);
    core_diags_dispose(&d);
    return fs;
}

static brain_flowset_t *compile_with_rails(const char *name, const char *text)
{
    return compile_with_rules(name, text, NULL);
}

/* A chat conversation in fs's first flow, waiting at its first node (the
 * flow is started directly: it has no intents). */
static void h_init_waiting(harness_t *h, brain_flowset_t *fs)
{
    h_init(h, fs, BRAIN_CH_CHAT);
    h->conv.flow = 0;
    h->conv.node = 0;
    h->conv.wait = 1;
}

/* A slot's "default" is its value until something fills it, in templates
 * and conditions; an ask for it still asks. */
static void test_slot_default_is_read_until_filled(void **state)
{
    const char *text =
        "{\"name\": \"d\", \"slots\": {\"x\": {\"type\": \"text\"}, \"cabin\": {\"type\": \"text\","
        " \"default\": \"economy\"}},"
        " \"nodes\": {"
        "\"a\": {\"type\": \"ask\", \"slot\": \"x\", \"prompt\": \"Go?\", \"next\": \"b\"},"
        "\"b\": {\"type\": \"branch\", \"cases\": [{\"if\": {\"slot\": \"cabin\", \"equals\":"
        " \"economy\"}, \"next\": \"eco\"}], \"default\": \"other\"},"
        "\"eco\": {\"type\": \"say\", \"message\": \"cabin={{cabin}}\", \"next\": \"ask\"},"
        "\"other\": {\"type\": \"say\", \"message\": \"other={{cabin}}\"},"
        "\"ask\": {\"type\": \"ask\", \"slot\": \"cabin\", \"prompt\": \"Which cabin?\","
        " \"next\": \"told\"},"
        "\"told\": {\"type\": \"say\", \"message\": \"now {{cabin}}\"}},"
        " \"start\": \"a\"}";
    brain_flowset_t *fs = compile_with_rails("d.json", text);
    harness_t h;
    h_init_waiting(&h, fs);
    assert_int_equal(h_send(&h, "yes", NULL), BRAIN_DONE);
    assert_string_equal(h_said(&h), "cabin=economy | Which cabin?");
    assert_int_equal(h_send(&h, "business", NULL), BRAIN_DONE);
    assert_string_equal(h_said(&h), "now business");
    h_dispose(&h);
    (void)state;
}

static void test_guardrails_in_the_turn(void **state)
{
    const char *text = "{\"name\": \"g\", \"slots\": {\"card\": {\"type\": \"text\", "
                       "\"sensitive\": true}, \"note\": {\"type\": \"text\"}}, \"nodes\": {"
                       "\"a\": {\"type\": \"ask\", \"slot\": \"card\", \"prompt\": \"Card?\", "
                       "\"next\": \"b\"},"
                       "\"b\": {\"type\": \"ask\", \"slot\": \"note\", \"prompt\": \"Note?\"}}}";
    brain_flowset_t *fs = compile_with_rails("g.json", text);
    harness_t h;
    h_init_waiting(&h, fs);
    assert_false(brain_conv_has_sensitive(fs, &h.conv));
    h_send(&h, "4111 1111 1111 1111", NULL);
    assert_true(brain_conv_has_sensitive(fs, &h.conv)); /* memory only: never evicted */
    assert_int_equal(h.out.guard_in.action, GUARD_REDACT);
    /* the sensitive slot gets the value; the kept last turn does not */
    assert_string_equal(h_slot(&h, "card"), "4111 1111 1111 1111");
    assert_null(strstr(h_slot(&h, "_u1"), "4111"));
    core_buf_t b;
    core_buf_init(&b, 4096);
    brain_conv_to_json(fs, &h.conv, &b);
    assert_null(strstr(b.data, "4111")); /* never persisted */
    core_buf_dispose(&b);
    h_send(&h, "my card is 4111 1111 1111 1111", NULL);
    assert_null(strstr(h_slot(&h, "note"), "4111"));
    h_dispose(&h);
}

/* A text slot keeps at most 511 bytes of the answer, cut between characters:
 * half a Cyrillic letter would make the value invalid UTF-8, which the saved
 * state and an LLM request's JSON leave out. */
static void test_long_text_slot_is_cut_between_characters(void **state)
{
    const char *text = "{\"name\": \"t\", \"slots\": {\"note\": {\"type\": \"text\"}}, "
                       "\"nodes\": {\"a\": {\"type\": \"ask\", \"slot\": \"note\", "
                       "\"prompt\": \"Note?\", \"next\": \"b\"}, \"b\": {\"type\": \"say\", "
                       "\"message\": \"ok\"}}}";
    brain_flowset_t *fs = compile_with_rails("t.json", text);
    harness_t h;
    h_init_waiting(&h, fs);
    char answer[1300] = ""; /* 2-byte letters: 511 bytes would end in half of one */
    for (int i = 0; i < 600; i++)
        strcat(answer, "\xd0\x96");
    h_send(&h, answer, NULL);
    const char *v = h_slot(&h, "note");
    assert_int_equal(strlen(v), 510);
    core_buf_t b;
    core_buf_init(&b, 8192);
    brain_conv_to_json(fs, &h.conv, &b);
    assert_non_null(strstr(b.data, "\"note\"")); /* kept in the saved state */
    core_buf_dispose(&b);
    h_dispose(&h);
    (void)state;
}

/* A set that builds a long value keeps 1,024 bytes of it, cut between
 * characters: set nodes that double a slot cannot grow the saved state past
 * its limit and fail every later turn. */
static void test_set_value_is_cut(void **state)
{
    const char *text =
        "{\"name\": \"t\", \"slots\": {\"note\": {\"type\": \"text\"},"
        " \"big\": {\"type\": \"any\"}}, \"nodes\": {\"a\": {\"type\": \"ask\","
        " \"slot\": \"note\", \"prompt\": \"Note?\", \"next\": \"b\"},"
        " \"b\": {\"type\": \"set\", \"set\": {\"big\": \"{{note}}{{note}}{{note}}\"},"
        " \"next\": \"c\"},"
        " \"c\": {\"type\": \"set\", \"set\": {\"big\": \"{{big}}{{big}}{{big}}\"},"
        " \"next\": \"d\"},"
        " \"d\": {\"type\": \"say\", \"message\": \"ok\"}}}";
    brain_flowset_t *fs = compile_with_rails("t.json", text);
    harness_t h;
    h_init_waiting(&h, fs);
    char answer[1300] = "";
    for (int i = 0; i < 250; i++)
        strcat(answer, "\xd0\x96"); /* 500 bytes of 2-byte letters */
    h_send(&h, answer, NULL);
    assert_string_equal(h_said(&h), "ok");
    assert_int_equal(strlen(h_slot(&h, "big")), 1024);
    h_dispose(&h);
    (void)state;
}

/* After an effect the turn goes on with the text the input rails redacted,
 * as before it: an ask node that follows an action does not prefill an
 * ordinary slot with a value the rails took out ("[EMAIL]" is no e-mail). */
static void test_redacted_text_after_an_effect(void **state)
{
    const char *text =
        "{\"name\": \"r\", \"intents\": {\"r\": [\"run r\"]},"
        " \"slots\": {\"contact\": {\"type\": \"email\"}}, \"nodes\": {"
        "\"call\": {\"type\": \"action\", \"method\": \"GET\", \"url\": "
        "\"http://127.0.0.1:9/x\", \"next\": \"ask\", \"on_error\": \"ask\"},"
        "\"ask\": {\"type\": \"ask\", \"slot\": \"contact\", \"prompt\": \"Email?\"}}}";
    harness_t h;
    h_init(&h, compile_with_rails("r.json", text), BRAIN_CH_CHAT);
    assert_int_equal(h_send(&h, "run r, write to ada@example.com", "r"), BRAIN_NEED_EFFECT);
    assert_int_equal(h.out.guard_in.action, GUARD_REDACT);
    assert_int_equal(h_resume(&h, 200, "{}"), BRAIN_DONE);
    assert_string_equal(h_slot(&h, "contact"), "-");
    assert_string_equal(h_said(&h), "Email?");
    h_dispose(&h);
    (void)state;
}

static void test_output_rails(void **state)
{
    const char *text =
        "{\"name\": \"o\", \"intents\": {\"o\": [\"run o\"]}, \"nodes\": {\"s\": {\"type\": "
        "\"say\", \"messages\": [\"Write to ada@example.com\", {\"default\": \"Or "
        "ada@example.com\", "
        "\"allow_pii\": true}, \"Plain text\"]}}}";
    harness_t h;
    h_init(&h, compile_with_rails("o.json", text), BRAIN_CH_CHAT);
    h_send(&h, "run o", NULL);
    assert_int_equal(h.out.n_messages, 3);
    /* a constant message that fails the rails is still checked every turn */
    assert_null(strstr(h.out.messages[0].text, "ada@example.com"));
    assert_string_equal(h.out.messages[1].text, "Or ada@example.com");
    assert_string_equal(h.out.messages[2].text, "Plain text");
    assert_int_equal(h.out.guard_out, GUARD_REDACT);
    h_dispose(&h);
}

/* An output rule that blocks or escalates without a reply of its own does
 * not let the message out as written: it goes with the matches redacted. */
static void test_output_block_without_reply(void **state)
{
    const char *text = "{\"name\": \"o\", \"intents\": {\"o\": [\"run o\"]}, \"nodes\": {\"s\": "
                       "{\"type\": \"say\", \"messages\": [\"Write to ada@example.com\", "
                       "\"Call 4111 1111 1111 1111\"]}}}";
    const char *rules = "{\"version\": 1, \"output\": {\"pii\": {\"email\": {\"action\": "
                        "\"block\"}, \"card\": {\"action\": \"escalate\"}}}}";
    harness_t h;
    h_init(&h, compile_with_rules("o.json", text, rules), BRAIN_CH_CHAT);
    h_send(&h, "run o", NULL);
    assert_int_equal(h.out.n_messages, 2);
    assert_string_equal(h.out.messages[0].text, "Write to [EMAIL]");
    assert_string_equal(h.out.messages[1].text, "Call [CARD]");
    assert_int_equal(h.out.guard_out, GUARD_ESCALATE);
    h_dispose(&h);
    (void)state;
}

static void test_input_block_and_escalate(void **state)
{
    const char *text = "{\"name\": \"k\", \"intents\": {\"k\": [\"run k\"]}, \"nodes\": {\"s\": "
                       "{\"type\": \"say\", \"message\": \"ok\"}}}";
    const char *rules = "{\"version\": 1, \"input\": {\"topics\": [{\"name\": \"politics\", "
                        "\"terms\": [\"election\"], \"reply\": \"I can't discuss that.\"}],"
                        " \"abuse\": {\"terms\": [\"scumbag\"], \"action\": \"escalate\", "
                        "\"reason\": \"abuse\"}}}";
    harness_t h;
    h_init(&h, compile_with_rules("k.json", text, rules), BRAIN_CH_CHAT);
    h_send(&h, "who wins the election", NULL);
    assert_int_equal(h.out.guard_in.action, GUARD_BLOCK);
    assert_string_equal(h_said(&h), "I can't discuss that.");
    assert_int_equal(h.out.status, BRAIN_ST_ACTIVE);
    h_send(&h, "you scumbag", NULL);
    assert_int_equal(h.out.status, BRAIN_ST_HANDOFF);
    assert_string_equal(h.out.handoff_reason, "abuse");
    assert_non_null(strstr(h.out.handoff_summary, "you scumbag")); /* the turn that escalated */
    h_dispose(&h);
    /* bad rules are reported with their file */
    brain_source_t src = {"k.json", text, strlen(text)};
    brain_compile_opts_t o;
    brain_compile_opts_init(&o);
    o.validate_only = 1;
    o.guard_json = "{\"version\": 7}";
    o.guard_len = strlen(o.guard_json);
    o.guard_file = "rules.json";
    brain_flowset_t *fs = NULL;
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(brain_flowset_compile(&src, 1, &o, &fs, &d), CORE_ERR_INVALID);
    assert_true(d.len > 0);
    assert_string_equal(d.items[0].file, "rules.json");
    core_diags_dispose(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_say_variants_and_choices),
        cmocka_unit_test(test_ask_validation_and_branch),
        cmocka_unit_test(test_branch_other_cases),
        cmocka_unit_test(test_prefill_and_skip_filled),
        cmocka_unit_test(test_prefill_past_64_slots),
        cmocka_unit_test(test_max_attempts),
        cmocka_unit_test(test_action_request_and_mapping),
        cmocka_unit_test(test_action_errors),
        cmocka_unit_test(test_llm_error_and_direct_content),
        cmocka_unit_test(test_call_return_end_csat),
        cmocka_unit_test(test_goto_node),
        cmocka_unit_test(test_global_intents),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_voice_confirmation),
        cmocka_unit_test(test_contract_errors),
        cmocka_unit_test(test_start_event_and_slot_types),
        cmocka_unit_test(test_slot_default_is_read_until_filled),
        cmocka_unit_test(test_guardrails_in_the_turn),
        cmocka_unit_test(test_redacted_text_after_an_effect),
        cmocka_unit_test(test_output_rails),
        cmocka_unit_test(test_output_block_without_reply),
        cmocka_unit_test(test_long_text_slot_is_cut_between_characters),
        cmocka_unit_test(test_set_value_is_cut),
        cmocka_unit_test(test_input_block_and_escalate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
