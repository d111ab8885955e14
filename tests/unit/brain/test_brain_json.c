/* A choice as JSON: title and value, the web's url only for http(s) values
 * and only when asked, commas between choices, and a choice jansson would
 * refuse (not UTF-8) left out without a trace in the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "chorus/brain.h"

static void test_choices_with_and_without_url(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    brain_choice_t web = {"Open \"docs\"", "https://example.com/a?b=1"};
    brain_choice_t plain = {"Yes", "yes"};
    assert_int_equal(brain_choice_json(&b, &web, 1, 1), 0);
    assert_int_equal(brain_choice_json(&b, &plain, 0, 1), 0);
    assert_string_equal(b.data,
                        "{\"title\":\"Open \\\"docs\\\"\",\"value\":\"https://example.com/a?b=1\","
                        "\"url\":\"https://example.com/a?b=1\"},"
                        "{\"title\":\"Yes\",\"value\":\"yes\"}");
    core_buf_reset(&b);
    assert_int_equal(brain_choice_json(&b, &web, 1, 0), 0); /* the store: no url */
    assert_string_equal(
        b.data, "{\"title\":\"Open \\\"docs\\\"\",\"value\":\"https://example.com/a?b=1\"}");
    core_buf_dispose(&b);
}

static void test_invalid_utf8_is_left_out(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    brain_choice_t ok = {"A", "a"}, bad = {"B\xff", "b"};
    assert_int_equal(brain_choice_json(&b, &ok, 1, 1), 0);
    assert_int_not_equal(brain_choice_json(&b, &bad, 0, 1), 0);
    assert_string_equal(b.data, "{\"title\":\"A\",\"value\":\"a\"}");
    core_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choices_with_and_without_url),
        cmocka_unit_test(test_invalid_utf8_is_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
