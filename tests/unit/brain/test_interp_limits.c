/* The interpreter's backstop for a turn that would not stop: after
 * BRAIN_MAX_STEPS nodes without waiting, the turn ends where it is, says
 * settings.messages.step_limit (not the fallback: the user's words were
 * fine), records a step_limit event and leaves the flow, so the next
 * message is routed afresh. The validator refuses the loops it can see and
 * the paths within a flow longer than the budget; this turn is longer only
 * through a `call`: 40 nodes, a called flow of 20, and 30 more after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test_brain_util.h"
#include "test_flow_chain.h"

static char *main_json(void)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_printf(&b, "{\"name\": \"main\", \"intents\": {\"spin\": [\"spin\"]},"
                        " \"slots\": {\"n\": {\"type\": \"any\"}}, \"nodes\": {");
    test_flow_chain(&b, "s", 40, "sub");
    core_buf_printf(&b, ", \"sub\": {\"type\": \"call\", \"flow\": \"helper\", \"next\":"
                        " \"t0\"}, ");
    test_flow_chain(&b, "t", 30, "");
    core_buf_printf(&b, "}}");
    size_t len;
    return core_buf_steal(&b, &len);
}

static char *helper_json(void)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_printf(&b, "{\"name\": \"helper\", \"slots\": {\"n\": {\"type\": \"any\"}},"
                        " \"nodes\": {");
    test_flow_chain(&b, "h", 20, "");
    core_buf_printf(&b, "}}");
    size_t len;
    return core_buf_steal(&b, &len);
}

static const char *calm_json =
    "{\"name\": \"calm\", \"intents\": {\"calm\": [\"calm\"]},"
    " \"nodes\": {\"hi\": {\"type\": \"say\", \"message\": \"Hello.\"}}}";

static void start(harness_t *h, const char *settings)
{
    char *m = main_json(), *helper = helper_json();
    const char *names[] = {"main.json", "helper.json", "calm.json", "settings.json"};
    const char *texts[] = {m, helper, calm_json, settings};
    brain_flowset_t *fs;
    assert_string_equal(compile_n(names, texts, settings ? 4 : 3, NULL, &fs), "");
    free(helper);
    free(m);
    h_init(h, fs, BRAIN_CH_CHAT);
}

static size_t count_events(const harness_t *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->out.n_events; i++)
        n += strcmp(h->out.events[i].name, name) == 0;
    return n;
}

static const brain_event_rec_t *find_event(const harness_t *h, const char *name)
{
    for (size_t i = 0; i < h->out.n_events; i++)
        if (strcmp(h->out.events[i].name, name) == 0)
            return &h->out.events[i];
    return NULL;
}

static void test_spinning_turn_stops_and_says_so(void **state)
{
    harness_t h;
    start(&h, NULL);
    assert_int_equal(h_send(&h, "spin", NULL), BRAIN_DONE);
    assert_string_equal(h_said(&h), "Sorry, something went wrong on our side, so I've stopped "
                                    "that. What would you like to do?");
    const brain_event_rec_t *e = find_event(&h, "step_limit");
    assert_non_null(e);
    assert_string_equal(e->flow, "main");
    assert_int_equal((int)e->value, 64); /* BRAIN_MAX_STEPS, the nodes a turn may visit */
    assert_int_equal(count_events(&h, "fallback"), 0); /* the user was understood */
    assert_int_equal(h.out.status, BRAIN_ST_ACTIVE);
    assert_null(h.out.flow); /* left the flow: nothing spins on the next message */
    assert_int_equal(h.conv.flow, BRAIN_NONE);
    assert_int_equal(h.conv.depth, 0);
    assert_int_equal(h.conv.fallbacks, 0);
    /* the next message is routed afresh */
    h_send(&h, "calm", NULL);
    assert_string_equal(h_said(&h), "Hello.");
    assert_int_equal(count_events(&h, "step_limit"), 0);
    /* and the same loop again stops again, once per turn */
    h_send(&h, "spin", NULL);
    assert_int_equal(count_events(&h, "step_limit"), 1);
    h_dispose(&h);
    (void)state;
}

/* The message is the bot's to word, per channel like any other. */
static void test_step_limit_message_from_settings(void **state)
{
    harness_t h;
    start(&h, "{\"settings\": {\"messages\": {\"step_limit\": {\"default\": \"Oops.\","
              " \"sms\": \"Oops (sms).\"}}}}");
    h_send(&h, "spin", NULL);
    assert_string_equal(h_said(&h), "Oops.");
    h_dispose(&h);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spinning_turn_stops_and_says_so),
        cmocka_unit_test(test_step_limit_message_from_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
