/* The answer serializer writes exactly what json_dumpb(JSON_COMPACT) writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/net_int.h"

static void same_as_jansson(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    net_obuf_t o = {0};
    net__obuf_put(&o, "x", 1); /* appends after what is there */
    assert_int_equal(net__json_write(&o, j), 0);
    if (o.len != strlen(want) + 1 || memcmp(o.data + 1, want, strlen(want)) != 0)
        fail_msg("%s: want %s got %.*s", text, want, (int)o.len - 1, o.data + 1);
    assert_memory_equal(o.data + 1, want, strlen(want));
    net__obuf_free(&o);
    free(want);
    json_decref(j);
}

static void test_matches_jansson(void **state)
{
    const char *cases[] = {
        "null",
        "true",
        "false",
        "0",
        "-0",
        "9223372036854775807",
        "-9223372036854775808",
        "1.5",
        "0.1",
        "-2.5e-300",
        "1e300",
        "100.0",
        "1E2",
        "\"\"",
        "\"h\\u00e9llo \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f \\ud83d\\ude00\"",
        "[]",
        "{}",
        "[1,[2,[3,{}]],\"x\"]",
        "{\"b\":1,\"a\":{\"z\":[true,null],\"y\":\"\"},\"c\":-1.25}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same_as_jansson(cases[i]);
}

static void test_refuses_nan_and_leaves_buffer(void **state)
{
    net_obuf_t o = {0};
    json_t *a = json_array();
    json_array_append_new(a, json_integer(1));
    json_t *deep = json_array();
    json_t *cur = deep;
    for (int i = 0; i < 3000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    json_array_append_new(a, deep);
    assert_int_equal(net__json_write(&o, a), CORE_ERR_INVALID);
    assert_int_equal(o.len, 0);
    assert_int_equal(net__json_write(&o, NULL), CORE_ERR_INVALID);
    json_decref(a);
    net__obuf_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_jansson),
        cmocka_unit_test(test_refuses_nan_and_leaves_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
