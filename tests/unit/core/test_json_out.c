/* JSON output on a buffer (core.h): every string, key and integer must come
 * out byte for byte as jansson's json_dumps() writes it -- ASCII, UTF-8 of
 * every length, control characters, quotes and backslashes, embedded NULs --
 * and strings jansson refuses (malformed UTF-8) must be refused too, leaving
 * the buffer as it was. The lossy form must always give JSON that loads. */
#include <jansson.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "brain/brain_int.h"
#include "chorus/core.h"

/* What json_dumps writes for the string, or NULL when jansson refuses it. */
static char *jansson_str(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j == NULL)
        return NULL;
    char *out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    assert_non_null(out);
    return out;
}

/* Checks one input against jansson; returns 1 when it was valid. */
static int check_str(const char *s, size_t len)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    core_buf_append_lit(&b, "[");
    char *want = jansson_str(s, len);
    int rc = core_buf_json_str(&b, s, len);
    if (want == NULL) {
        assert_int_equal(rc, CORE_ERR_INVALID);
        assert_int_equal(b.len, 1);
        assert_string_equal(b.data, "[");
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(b.len, 1 + strlen(want));
        assert_memory_equal(b.data + 1, want, strlen(want));
        assert_int_equal(b.data[b.len], '\0');
    }
    /* lossy: identical for valid input, loadable JSON for any */
    core_buf_reset(&b);
    assert_int_equal(core_buf_json_str_lossy(&b, s, len), 0);
    if (want != NULL) {
        assert_string_equal(b.data, want);
    } else {
        json_error_t err;
        json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        assert_non_null(j);
        assert_true(json_is_string(j));
        assert_non_null(memmem(json_string_value(j), json_string_length(j), "\xEF\xBF\xBD", 3));
        json_decref(j);
    }
    free(want);
    core_buf_dispose(&b);
    return want != NULL;
}

static void test_fixed_strings(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"", 0},
        {"hello", 5},
        {"say \"hi\"", 8},
        {"back\\slash", 10},
        {"a/b</script>", 12},
        {"line\nbreak\ttab\rcr\bbs\fff", 23},
        {"\x01\x02\x1f\x7f", 4},
        {"nul\0inside", 10},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14},
        {"\xE2\x80\xA8\xE2\x80\xA9", 6}, /* U+2028/9 pass through */
        {"\xEF\xBB\xBF"
         "bom",
         6},                     /* a BOM is just a character */
        {"\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF, the last code point */
        {"\xC3", 1},             /* truncated 2-byte */
        {"\xE2\x82", 2},         /* truncated 3-byte */
        {"\xF0\x9F\x98", 3},     /* truncated 4-byte */
        {"\x80", 1},             /* stray continuation */
        {"\xC0\xAF", 2},         /* overlong '/' */
        {"\xE0\x80\xAF", 3},     /* overlong 3-byte */
        {"\xF0\x80\x80\xAF", 4}, /* overlong 4-byte */
        {"\xED\xA0\x80", 3},     /* a surrogate */
        {"\xF4\x90\x80\x80", 4}, /* past U+10FFFF */
        {"\xF5\x80\x80\x80", 4}, /* no such lead byte */
        {"\xFF", 1},
        {"ok \xC3\x28 then", 10}, /* lead byte, then no continuation */
    };
    int valid = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        valid += check_str(cases[i].s, cases[i].len);
    assert_int_equal(valid, 12);
}

/* Every string of one and two bytes: each control character, each lead and
 * continuation byte in each position. */
static void test_all_short_strings(void **state)
{
    (void)state;
    char s[2];
    int valid = 0;
    for (int a = 0; a < 256; a++) {
        s[0] = (char)a;
        valid += check_str(s, 1);
        for (int c = 0; c < 256; c++) {
            s[1] = (char)c;
            valid += check_str(s, 2);
        }
    }
    /* 128 one-byte strings; 128*128 ASCII pairs + 30*64 two-byte characters */
    assert_int_equal(valid, 128 + 128 * 128 + 30 * 64);
}

/* Each byte that needs care, at every place in a plain string long enough
 * for the word-at-a-time scan, and in the tail after the last whole word. */
static void test_special_byte_everywhere(void **state)
{
    (void)state;
    static const char *specials[] = {"\"",   "\\",   "\x01",     "\x1f",         "\n",
                                     "\x7f", "\x80", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                     "\xC3", "\xFF"};
    char s[40];
    int valid = 0;
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        size_t sl = strlen(specials[k]);
        for (size_t len = 8; len + sl <= 27; len++) {
            for (size_t at = 0; at <= len; at++) {
                memset(s, 'a' + (int)(at % 26), len);
                memmove(s + at + sl, s + at, len - at);
                memcpy(s + at, specials[k], sl);
                valid += check_str(s, len + sl);
            }
        }
        /* the same byte twice, one word apart */
        memset(s, ' ', 24);
        memcpy(s + 3, specials[k], sl);
        memcpy(s + 11, specials[k], sl);
        valid += check_str(s, 24);
    }
    assert_true(valid > 1000);
}

/* Random strings mixing ASCII, escapes, well-formed multi-byte characters
 * and stray bytes, with a fixed seed. */
static void test_random_strings(void **state)
{
    (void)state;
    static const char *pieces[] = {"a",
                                   "Z",
                                   " ",
                                   "\"",
                                   "\\",
                                   "/",
                                   "\n",
                                   "\x01",
                                   "\x1f",
                                   "\x7f",
                                   "\xC3\xA9",
                                   "\xE2\x82\xAC",
                                   "\xF0\x9F\x98\x80",
                                   "\xED\x9F\xBF",
                                   "\xEE\x80\x80",
                                   "\x80",
                                   "\xC3",
                                   "\xF8"};
    const size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int valid = 0, invalid = 0;
    char s[256];
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int parts = (int)(x >> 60);
        for (int i = 0; i < parts; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            /* mostly well-formed: a stray byte in one string of about four */
            size_t k = (x >> 33) % (round % 4 ? n_pieces - 3 : n_pieces);
            size_t pl = strlen(pieces[k]);
            memcpy(s + len, pieces[k], pl);
            len += pl;
        }
        if (check_str(s, len))
            valid++;
        else
            invalid++;
    }
    assert_true(valid > 10000);
    assert_true(invalid > 1000);
}

static void test_keys(void **state)
{
    (void)state;
    const char *keys[] = {"seq", "", "with \"quote\"", "tab\there", "\xC3\xA9t\xC3\xA9"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *o = json_pack("{s:i}", keys[i], 7);
        char *want = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        core_buf_t b;
        core_buf_init(&b, 1024);
        core_buf_append_lit(&b, "{");
        assert_int_equal(core_buf_json_key(&b, keys[i]), 0);
        core_buf_append_lit(&b, "7}");
        assert_string_equal(b.data, want);
        free(want);
        core_buf_dispose(&b);
    }
    core_buf_t b;
    core_buf_init(&b, 1024);
    core_buf_append_lit(&b, "{");
    assert_int_equal(core_buf_json_key(&b, "bad\xC3"), CORE_ERR_INVALID);
    assert_string_equal(b.data, "{");
    core_buf_dispose(&b);
}

static void test_integers(void **state)
{
    (void)state;
    long long values[] = {0,
                          1,
                          -1,
                          9,
                          10,
                          -10,
                          99,
                          100,
                          4294967295LL,
                          1796032800000000LL,
                          -1796032800000000LL,
                          LLONG_MAX,
                          LLONG_MIN,
                          LLONG_MIN + 1};
    uint64_t x = 12345;
    for (int i = 0; i < 1000 + (int)(sizeof(values) / sizeof(values[0])); i++) {
        long long v;
        if (i < (int)(sizeof(values) / sizeof(values[0]))) {
            v = values[i];
        } else {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            v = (long long)(x >> (x & 63)); /* every magnitude */
            if (x & 1)
                v = -v;
        }
        json_t *j = json_integer(v);
        char *want = json_dumps(j, JSON_ENCODE_ANY);
        json_decref(j);
        core_buf_t b;
        core_buf_init(&b, 64);
        assert_int_equal(core_buf_json_int(&b, v), 0);
        assert_string_equal(b.data, want);
        free(want);
        core_buf_dispose(&b);
    }
}

/* The buffer's limit holds: a string that does not fit fails whole. */
static void test_limit(void **state)
{
    (void)state;
    core_buf_t b;
    core_buf_init(&b, 10);
    core_buf_append_lit(&b, "[1,");
    assert_int_equal(core_buf_json_str(&b, "abcdef", 6), CORE_ERR_LIMIT);
    assert_string_equal(b.data, "[1,");
    assert_int_equal(core_buf_json_str(&b, "\n\n\n", 3), CORE_ERR_LIMIT); /* 8 escaped */
    assert_string_equal(b.data, "[1,");
    assert_int_equal(core_buf_json_str(&b, "abcd", 4), 0);
    assert_string_equal(b.data, "[1,\"abcd\"");
    assert_int_equal(core_buf_json_int(&b, 12), CORE_ERR_LIMIT);
    assert_int_equal(core_buf_json_int(&b, 1), 0);
    assert_string_equal(b.data, "[1,\"abcd\"1");
    core_buf_dispose(&b);
}

/* ---- the saved conversation state, as jansson built it ------------------ */

/* The state as brain_conv_to_json() wrote it when it built a jansson tree:
 * the reference the direct writer must match byte for byte. */
static json_t *ref_name(const brain_flowset_t *fs, uint16_t flow, uint16_t node)
{
    if (flow == BRAIN_NONE || flow >= fs->n_flows)
        return json_null();
    if (node == BRAIN_NONE)
        return json_string(fs->flows[flow].name);
    return json_string(fs->flows[flow].nodes[node].name);
}

static json_t *ref_position(const brain_flowset_t *fs, json_t *o, uint16_t flow, uint16_t node)
{
    json_object_set_new(o, "flow", ref_name(fs, flow, BRAIN_NONE));
    json_object_set_new(o, "node", node == BRAIN_NONE ? json_null() : ref_name(fs, flow, node));
    return o;
}

static char *ref_state(const brain_flowset_t *fs, const brain_conv_t *c)
{
    static const char *status_names[] = {"active", "ended", "handoff"};
    json_t *o = ref_position(fs, json_object(), c->flow, c->node);
    json_t *stack = json_array();
    for (int i = 0; i < c->depth; i++)
        json_array_append_new(stack,
                              ref_position(fs, json_object(), c->stack_flow[i], c->stack_node[i]));
    json_object_set_new(o, "stack", stack);
    json_object_set_new(o, "channel", json_string(brain_channel_name(c->channel)));
    json_object_set_new(o, "status", json_string(status_names[c->status % 3]));
    json_object_set_new(o, "wait", json_integer(c->wait));
    json_object_set_new(o, "attempts", json_integer(c->attempts));
    json_object_set_new(o, "fallbacks", json_integer(c->fallbacks));
    json_object_set_new(o, "turns", json_integer(c->turns));
    json_object_set_new(o, "created_us", json_integer(c->created_us));
    json_object_set_new(o, "last_us", json_integer(c->last_us));
    json_t *slots = json_object();
    for (uint32_t i = 0; i < c->slots_len;) {
        const char *n = c->slots + i;
        const char *v = n + strlen(n) + 1;
        int d = brain__slot_find(fs, n);
        if (d < 0 || !fs->slots[d].sensitive)
            json_object_set_new(slots, n, json_string(v));
        i = (uint32_t)(v + strlen(v) + 1 - c->slots);
    }
    json_object_set_new(o, "slots", slots);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static brain_flowset_t *compile_state_flows(void)
{
    /* written with ' for " to stay readable */
    static char a_json[] = "{'name': 'a', 'intents': {'a': ['run a']},"
                           " 'slots': {'x': {'type': 'text'},"
                           " 'card': {'type': 'text', 'sensitive': true}},"
                           " 'nodes': {'c': {'type': 'call', 'flow': 'b', 'next': 'after'},"
                           " 'after': {'type': 'say', 'message': 'after'}}}";
    static char b_json[] = "{'name': 'b', 'nodes': {'ask': {'type': 'ask', 'slot': 'x',"
                           " 'prompt': 'X?'}}}";
    for (char *p = a_json; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    for (char *p = b_json; *p; p++)
        *p = *p == '\'' ? '"' : *p;
    const char *texts[] = {a_json, b_json};
    const char *names[] = {"a.json", "b.json"};
    brain_source_t src[2];
    for (int i = 0; i < 2; i++)
        src[i] = (brain_source_t){names[i], texts[i], strlen(texts[i])};
    brain_compile_opts_t o;
    brain_compile_opts_init(&o);
    o.validate_only = 1;
    o.no_guard = 1;
    core_diags_t d;
    core_diags_init(&d);
    brain_flowset_t *fs = NULL;
    assert_int_equal(brain_flowset_compile(src, 2, &o, &fs, &d), 0);
    core_diags_dispose(&d);
    return fs;
}

static void check_state(const brain_flowset_t *fs, const brain_conv_t *c)
{
    char *want = ref_state(fs, c);
    core_buf_t b;
    core_buf_init(&b, 1 << 16);
    core_buf_append_lit(&b, "{\"brain\":");
    assert_int_equal(brain_conv_to_json(fs, c, &b), 0);
    assert_string_equal(b.data + 9, want);
    brain_conv_t back;
    core_err_t err = {0};
    assert_int_equal(brain_conv_from_json(fs, b.data + 9, b.len - 9, &back, &err), 0);
    brain_conv_dispose(&back);
    free(want);
    core_buf_dispose(&b);
}

/* Idle, in a called flow with a stack, ended, with every kind of slot:
 * sensitive (left out), unknown to the flows, escapes, UTF-8, and a name or
 * value that is not UTF-8 (jansson left the pair out). */
static void test_conv_state_as_jansson_wrote_it(void **state)
{
    (void)state;
    brain_flowset_t *fs = compile_state_flows();
    brain_conv_t c;
    brain_conv_init(&c, fs, BRAIN_CH_WEB, 1796032800123456LL);
    check_state(fs, &c);
    int a = brain__flow_find(fs, "a"), b = brain__flow_find(fs, "b");
    assert_true(a >= 0 && b >= 0);
    c.flow = (uint16_t)b;
    c.node = 0;
    c.depth = 2;
    c.stack_flow[0] = (uint16_t)a;
    c.stack_node[0] = 1;
    c.stack_flow[1] = (uint16_t)a;
    c.stack_node[1] = BRAIN_NONE;
    c.wait = 1;
    c.attempts = 255;
    c.fallbacks = 3;
    c.turns = UINT32_MAX;
    c.last_us = 1796032899999999LL;
    brain_conv_set_slot(&c, "x", "say \"hi\"\n\\ caf\xC3\xA9 \x01");
    brain_conv_set_slot(&c, "card", "4111111111111111");
    brain_conv_set_slot(&c, "_u1", "</script>");
    check_state(fs, &c);
    brain_conv_set_slot(&c, "bad", "\xC3(");
    brain_conv_set_slot(&c, "ke\xFFy", "v");
    brain_conv_set_slot(&c, "last", "");
    check_state(fs, &c);
    char *text = ref_state(fs, &c); /* what that check compared against */
    assert_non_null(strstr(text, "\"flow\":\"b\",\"node\":\"ask\",\"stack\":[{\"flow\":\"a\","));
    assert_non_null(strstr(text, "\"x\":\"say \\\"hi\\\"\\n\\\\ caf\xC3\xA9 \\u0001\""));
    assert_non_null(strstr(text, "\"_u1\":\"</script>\",\"last\":\"\"}}"));
    assert_null(strstr(text, "4111"));
    free(text);
    c.status = BRAIN_ST_ENDED;
    c.flow = c.node = BRAIN_NONE;
    check_state(fs, &c);
    brain_conv_dispose(&c);
    brain_flowset_unref(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_strings),
        cmocka_unit_test(test_all_short_strings),
        cmocka_unit_test(test_special_byte_everywhere),
        cmocka_unit_test(test_random_strings),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_conv_state_as_jansson_wrote_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
