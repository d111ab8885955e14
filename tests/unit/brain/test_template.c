/* Templates: references, filters, per-channel escaping and parse errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/brain_int.h"
#include "test_brain_util.h"

static brain_flowset_t *fs;
static brain_conv_t conv;

static int setup(void **state)
{
    const char *names[] = {"settings.json", "f.json"};
    const char *texts[] = {
        "{\"settings\": {\"vars\": {\"base\": \"http://127.0.0.1:9/v1\"}}}",
        "{\"name\": \"f\", \"slots\": {\"name\": {\"type\": \"text\"}, \"day\": {\"type\": "
        "\"date\"}, \"amount\": {\"type\": \"money\"}, \"n\": {\"type\": \"number\"}, \"q\": "
        "{\"type\": \"text\"}}, \"nodes\": {\"a\": {\"type\": \"say\", \"message\": \"x\"}}}"};
    assert_string_equal(compile_n(names, texts, 2, NULL, &fs), "");
    brain_conv_init(&conv, fs, BRAIN_CH_CHAT, T0_US);
    brain_conv_set_slot(&conv, "name", "Ada <Lovelace> & co's");
    brain_conv_set_slot(&conv, "day", "2026-12-04");
    brain_conv_set_slot(&conv, "amount", "1234567.5");
    brain_conv_set_slot(&conv, "n", "-1234.5678");
    brain_conv_set_slot(&conv, "q", "a b/c?d=e");
    return 0;
}

static int teardown(void **state)
{
    brain_conv_dispose(&conv);
    brain_flowset_unref(fs);
    return 0;
}

static const char *render(const char *t, brain_channel_t ch)
{
    static char out[1024];
    core_buf_t b;
    core_buf_init(&b, 4096);
    core_err_t err = {0};
    int rc = brain_template_render_string(fs, &conv, t, ch, &b, &err);
    snprintf(out, sizeof(out), "%s", rc == 0 ? (b.data ? b.data : "") : err.msg);
    core_buf_dispose(&b);
    return out;
}

static void test_literals_and_slots(void **state)
{
    assert_string_equal(render("plain text", BRAIN_CH_CHAT), "plain text");
    assert_string_equal(render("", BRAIN_CH_CHAT), "");
    assert_string_equal(render("Hi {{name}}!", BRAIN_CH_CHAT), "Hi Ada <Lovelace> & co's!");
    assert_string_equal(render("{{ slots.day }}", BRAIN_CH_CHAT), "2026-12-04");
    assert_string_equal(render("[{{missing_slot}}]", BRAIN_CH_CHAT), "[]");
    assert_string_equal(render("{{conversation.channel}} {{conversation.turns}}", BRAIN_CH_CHAT),
                        "chat 0");
    assert_string_equal(render("{{vars.base}}/chat", BRAIN_CH_CHAT), "http://127.0.0.1:9/v1/chat");
}

static void test_filters(void **state)
{
    assert_string_equal(render("{{name|upper}}", BRAIN_CH_CHAT), "ADA <LOVELACE> & CO'S");
    assert_string_equal(render("{{ name | lower }}", BRAIN_CH_CHAT), "ada <lovelace> & co's");
    assert_string_equal(render("{{day|date}}", BRAIN_CH_CHAT), "Friday 4 December 2026");
    assert_string_equal(render("{{day|date:short}}", BRAIN_CH_CHAT), "4 Dec");
    assert_string_equal(render("{{day|date:\"us\"}}", BRAIN_CH_CHAT), "December 4, 2026");
    assert_string_equal(render("{{day|date:weekday}}", BRAIN_CH_CHAT), "Friday");
    assert_string_equal(render("{{day|date:iso}}", BRAIN_CH_CHAT), "2026-12-04");
    assert_string_equal(render("{{name|date}}", BRAIN_CH_CHAT), "Ada <Lovelace> & co's");
    assert_string_equal(render("{{amount|money}}", BRAIN_CH_CHAT), "1,234,567.50");
    assert_string_equal(render("{{amount|number:0}}", BRAIN_CH_CHAT), "1,234,568");
    assert_string_equal(render("{{n|number:2}}", BRAIN_CH_CHAT), "-1,234.57");
    assert_string_equal(render("{{n|number}}", BRAIN_CH_CHAT), "-1,234.57");
    assert_string_equal(render("{{missing|default:\"none\"}}", BRAIN_CH_CHAT), "none");
    assert_string_equal(render("{{name|default:none}}", BRAIN_CH_CHAT), "Ada <Lovelace> & co's");
    assert_string_equal(render("{{q|url}}", BRAIN_CH_CHAT), "a%20b%2Fc%3Fd%3De");
    assert_string_equal(render("{{name|json}}", BRAIN_CH_CHAT), "Ada <Lovelace> & co's");
    assert_string_equal(render("{{day|date|upper}}", BRAIN_CH_CHAT), "FRIDAY 4 DECEMBER 2026");
}

static void test_channel_escaping(void **state)
{
    /* replies are text: the widget and the TwiML writer escape for themselves */
    assert_string_equal(render("<b>{{name}}</b>", BRAIN_CH_WEB), "<b>Ada <Lovelace> & co's</b>");
    assert_string_equal(render("{{name}}", BRAIN_CH_VOICE), "Ada <Lovelace> & co's");
    assert_string_equal(render("{{name}}", BRAIN_CH_SMS), "Ada <Lovelace> & co's");
    assert_string_equal(render("{{name|raw}}", BRAIN_CH_WEB), "Ada <Lovelace> & co's");
}

static void test_parse_errors(void **state)
{
    assert_string_equal(render("{{name", BRAIN_CH_CHAT),
                        "\"{{\" at offset 0 is never closed with \"}}\"");
    assert_string_equal(render("x {{}}", BRAIN_CH_CHAT), "empty reference \"{{}}\"");
    assert_string_equal(render("{{a b}}", BRAIN_CH_CHAT), "unknown reference \"{{a b}}\"");
    assert_true(strstr(render("{{name|bogus}}", BRAIN_CH_CHAT), "unknown filter \"bogus\"") !=
                NULL);
}

static void test_internal_escapes(void **state)
{
    brain_tpl_t t;
    char msg[128];
    assert_int_equal(brain__tpl_parse("{\"q\": \"{{q}}\"}", &t, msg, sizeof(msg)), 0);
    assert_false(t.constant);
    core_buf_t b;
    core_buf_init(&b, 1024);
    brain_conv_set_slot(&conv, "q", "say \"hi\"\n");
    brain__tpl_render(fs, &conv, NULL, &t, TPL_ESC_JSON, &b);
    assert_string_equal(b.data, "{\"q\": \"say \\\"hi\\\"\\u000a\"}");
    brain_conv_set_slot(&conv, "q", "a b/c?d=e");
    brain__tpl_dispose(&t);
    core_buf_dispose(&b);
    assert_int_equal(brain__tpl_parse("constant", &t, msg, sizeof(msg)), 0);
    assert_true(t.constant);
    brain__tpl_dispose(&t);
    char out[64];
    assert_int_equal(brain__format_date("2024-02-29", "long", out, sizeof(out)), 0);
    assert_string_equal(out, "Thursday 29 February 2024");
    assert_int_equal(brain__format_date("1970-01-01", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "Thursday 1 January 1970");
    assert_int_equal(brain__format_date("not a date", NULL, out, sizeof(out)), -1);
}

/* Renders t against a turn whose user said text (TPL_ESC_NONE unless esc). */
static char *render_turn(const char *t, const char *text, tpl_escape_t esc)
{
    brain_tpl_t tpl;
    char msg[128];
    assert_int_equal(brain__tpl_parse(t, &tpl, msg, sizeof(msg)), 0);
    brain_turnctx_t tc = {.text = text, .len = strlen(text)};
    core_buf_t b;
    core_buf_init(&b, 64 * 1024);
    brain__tpl_render(fs, &conv, &tc, &tpl, esc, &b);
    brain__tpl_dispose(&tpl);
    return b.data ? core_buf_steal(&b, NULL) : strdup("");
}

/* What the user said reaches an action or a prompt whole, and a filter's
 * bounded copy is cut between characters, never inside one. */
static void test_user_text_whole(void **state)
{
    char text[1300];
    size_t n = 0;
    memcpy(text, "question: ", 10);
    n = 10;
    while (n + 2 < sizeof(text) - 1) {
        memcpy(text + n, "\xd1\x8f", 2); /* я */
        n += 2;
    }
    text[n] = '\0';
    char *out = render_turn("Q: {{user.text}}", text, TPL_ESC_NONE);
    assert_int_equal(strlen(out), 3 + n);
    assert_int_equal(memcmp(out + 3, text, n), 0);
    free(out);
    out = render_turn("{{user.text|upper}}", text, TPL_ESC_NONE);
    assert_true(strlen(out) >= 1000 && strlen(out) < 1024);
    for (size_t i = 0, m; out[i]; i += m) /* valid UTF-8 throughout */
        assert_int_not_equal(m = core_utf8_seq(out + i, strlen(out + i)), 0);
    free(out);
}

/* A value that is a dot segment cannot move a URL up its path. */
static void test_url_dot_segments(void **state)
{
    brain_conv_set_slot(&conv, "q", "..");
    assert_string_equal(render("{{q|url}}", BRAIN_CH_CHAT), "%2E%2E");
    brain_conv_set_slot(&conv, "q", ".");
    assert_string_equal(render("{{q|url}}", BRAIN_CH_CHAT), "%2E");
    brain_conv_set_slot(&conv, "q", "v1.2..x");
    assert_string_equal(render("{{q|url}}", BRAIN_CH_CHAT), "v1.2..x");
    char *out = render_turn("http://b/orders/{{user.text}}/status", "..", TPL_ESC_URL);
    assert_string_equal(out, "http://b/orders/%2E%2E/status");
    free(out);
    brain_conv_set_slot(&conv, "q", "a b/c?d=e");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_and_slots), cmocka_unit_test(test_filters),
        cmocka_unit_test(test_channel_escaping),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_internal_escapes),   cmocka_unit_test(test_user_text_whole),
        cmocka_unit_test(test_url_dot_segments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
