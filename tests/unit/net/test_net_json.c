/* The answer serializer writes exactly what json_dumpb(JSON_COMPACT) writes;
 * the request body's fast path reads exactly what json_loadb reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

/* What json_loadb (as net_req_json calls it) makes of body, or NULL. */
static json_t *jansson_reads(const char *body, size_t len)
{
    json_error_t jerr;
    return json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
}

/* 1 when the fast path took body; then its tree must be jansson's. */
static int flat_agrees(const char *body, size_t len)
{
    json_t *fast = net__json_flat(body, len);
    if (fast == NULL)
        return 0;
    json_t *want = jansson_reads(body, len);
    if (want == NULL || !json_equal(fast, want))
        fail_msg("fast path read %.*s, jansson %s", (int)len, body, want ? "differently" : "not");
    json_decref(want);
    json_decref(fast);
    return 1;
}

/* {"a":"1",...} with n members, into out. */
static void members(char *out, size_t size, int n)
{
    size_t len = (size_t)snprintf(out, size, "{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, size - len, "%s\"%c\":\"%d\"", i ? "," : "", 'a' + i, i);
    snprintf(out + len, size - len, "}");
}

static void test_flat_body_fast_path(void **state)
{
    const char *taken[] = {
        "{}",
        " {\"text\":\"sign me up\"} ",
        "{\"text\":\"Ada\",\"client_id\":\"m-1\"}",
        "{ \"event\" : \"start\" ,\r\n\t\"text\":\"\" }",
    };
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
        if (!flat_agrees(taken[i], strlen(taken[i])))
            fail_msg("not taken: %s", taken[i]);
    /* jansson reads these (or refuses them, with its own words) */
    const char *left[] = {
        "",
        "[]",
        "\"text\"",
        "{\"text\":\"a\\\"b\"}",           /* an escape */
        "{\"text\":\"h\xc3\xa9llo\"}",     /* beyond ASCII */
        "{\"text\":\"a\tb\"}",             /* a control character */
        "{\"text\":1}",                    /* not a string */
        "{\"text\":\"a\",\"text\":\"b\"}", /* a duplicate: refused */
        "{\"text\":\"a\"}x",               /* trailing bytes: refused */
        "{\"text\":\"a\",}",               /* trailing comma: refused */
        "{\"text\" \"a\"}",                /* no colon: refused */
        "{\"text\":\"a\"",                 /* unterminated: refused */
    };
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        if (flat_agrees(left[i], strlen(left[i])))
            fail_msg("taken: %s", left[i]);
    char doc[128];
    members(doc, sizeof(doc), 8); /* the most it takes */
    assert_true(flat_agrees(doc, strlen(doc)));
    members(doc, sizeof(doc), 9);
    assert_false(flat_agrees(doc, strlen(doc)));
    static const char nul[] = "{\"text\":\"a\0b\"}";
    assert_false(flat_agrees(nul, sizeof(nul) - 1));
}

/* Random flat objects, half of them with a byte or two changed, inserted or
 * removed from the bytes that matter: whatever the fast path takes, jansson
 * takes the same way. */
static unsigned next_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

static void test_flat_body_random_agrees(void **state)
{
    static const char alphabet[] = "{}\":, \t\n\\ab0[]\x01\xc3\xa9\x7f";
    static const char *words[] = {"a", "b", "text", "", "sign me up", "a b"};
    const size_t nwords = sizeof(words) / sizeof(words[0]);
    unsigned seed = 12345;
    size_t taken = 0, left = 0;
    for (int round = 0; round < 100000; round++) {
        char doc[128];
        size_t len = 0;
        doc[len++] = '{';
        for (unsigned m = 0, n = next_rand(&seed) % 4; m < n; m++)
            len +=
                (size_t)snprintf(doc + len, sizeof(doc) - len, "%s\"%s\":%s\"%s\"", m ? "," : "",
                                 words[next_rand(&seed) % nwords], next_rand(&seed) % 3 ? "" : " ",
                                 words[next_rand(&seed) % nwords]);
        doc[len++] = '}';
        for (unsigned e = 0, n = round % 2 ? 1 + next_rand(&seed) % 2 : 0; e < n; e++) {
            size_t at = next_rand(&seed) % len;
            char b = alphabet[next_rand(&seed) % (sizeof(alphabet) - 1)];
            switch (next_rand(&seed) % 3) {
            case 0:
                doc[at] = b;
                break;
            case 1:
                memmove(doc + at + 1, doc + at, len - at);
                doc[at] = b;
                len++;
                break;
            default:
                memmove(doc + at, doc + at + 1, len - at - 1);
                len--;
            }
        }
        if (flat_agrees(doc, len))
            taken++;
        else
            left++;
    }
    assert_true(taken > 10000 && left > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_jansson),
        cmocka_unit_test(test_refuses_nan_and_leaves_buffer),
        cmocka_unit_test(test_flat_body_fast_path),
        cmocka_unit_test(test_flat_body_random_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
