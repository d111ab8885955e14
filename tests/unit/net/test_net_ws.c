/* WebSocket without sockets: the handshake, echo, fragments, close codes
 * (1007, 1002, 1009, the peer's own, the rules for a peer's close body)
 * and the callbacks' lifetime, on a
 * detached connection (net_int.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/net_int.h"

typedef struct fixture_s {
    uv_loop_t loop;
    net_router_t *router;
    net_server_t *srv;
    net_conn_t *c;
} fixture_t;

static int opened, closed, close_code;
static void *seen_data;

static void on_open(net_ws_t *ws, net_req_t *req, void *route_data)
{
    opened++;
    assert_string_equal(net_req_param(req, "room"), "lobby");
    net_ws_set_data(ws, route_data);
}

static void on_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
    seen_data = net_ws_data(ws);
    if (len == 5 && memcmp(data, "close", 5) == 0) {
        assert_int_equal(net_ws_close(ws, 4000, "asked"), 0);
        assert_int_equal(net_ws_send_text(ws, "late", 4), CORE_ERR_CLOSED);
        return;
    }
    assert_int_equal(binary ? net_ws_send_binary(ws, data, len) : net_ws_send_text(ws, data, len),
                     0);
}

static void on_close(net_ws_t *ws, int code)
{
    closed++;
    close_code = code;
}

static int setup(void **state)
{
    static const net_ws_callbacks_t cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close};
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->router = net_router_new();
    assert_int_equal(net_router_add_ws(f->router, "/ws/{room}", &cb, (void *)0x1234, NULL), 0);
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    l.ws_max_message_bytes = 200;
    f->srv = net_server_new(&f->loop, &l, f->router);
    f->c = net__conn_new_detached(f->srv);
    opened = closed = close_code = 0;
    seen_data = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    net__conn_free_detached(f->c);
    assert_true(closed <= 1);
    net_server_free(f->srv);
    net_router_free(f->router);
    uv_loop_close(&f->loop);
    free(f);
    return 0;
}

static void feed(fixture_t *f, const void *data, size_t len)
{
    net__conn_feed(f->c, data, len);
}

static void handshake(fixture_t *f)
{
    static const char hs[] = "GET /ws/lobby HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    feed(f, hs, sizeof(hs) - 1);
    net__obuf_reserve(&f->c->out, 1);
    f->c->out.data[f->c->out.len] = '\0';
    assert_non_null(strstr(f->c->out.data, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(f->c->out.data, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_int_equal(opened, 1);
    f->c->out.len = 0;
}

/* A masked client frame (payload < 126 bytes). */
static size_t frame(unsigned char *out, int fin, int opcode, const char *p, size_t n, int mask)
{
    static const unsigned char key[4] = {9, 8, 7, 6};
    size_t o = 0;
    out[o++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    out[o++] = (unsigned char)((mask ? 0x80 : 0) | n);
    if (mask) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[o++] = (unsigned char)(mask ? p[i] ^ key[i % 4] : p[i]);
    return o;
}

/* The close code of the first close frame in the output, 0 if none. */
static int sent_close_code(fixture_t *f)
{
    const unsigned char *p = (const unsigned char *)f->c->out.data;
    size_t i = 0;
    while (i + 2 <= f->c->out.len) {
        size_t n = p[i + 1] & 0x7f, off = i + 2;
        if ((p[i] & 0x0f) == 8)
            return n >= 2 ? p[off] << 8 | p[off + 1] : 1005;
        i = off + n;
    }
    return 0;
}

static void test_echo_and_fragments(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[512];
    handshake(f);
    size_t n = frame(buf, 1, 1, "hello", 5, 1);
    feed(f, buf, n);
    assert_int_equal(f->c->out.len, 7);
    assert_memory_equal(f->c->out.data, "\x81\x05hello", 7);
    assert_ptr_equal(seen_data, (void *)0x1234);
    f->c->out.len = 0;
    n = frame(buf, 0, 2, "ab", 2, 1);
    n += frame(buf + n, 0, 0, "cd", 2, 1);
    n += frame(buf + n, 1, 9, "p", 1, 1); /* a ping between fragments */
    n += frame(buf + n, 1, 0, "e", 1, 1);
    for (size_t i = 0; i < n; i++) /* byte by byte */
        feed(f, buf + i, 1);
    assert_memory_equal(f->c->out.data,
                        "\x8a\x01p\x82\x05"
                        "abcde",
                        10);
    assert_false(f->c->closing);
    f->c->out.len = 0;
    feed(f, buf, frame(buf, 1, 1, "", 0, 1)); /* empty text: echoed, no crash */
    assert_int_equal(f->c->out.len, 2);
    assert_memory_equal(f->c->out.data, "\x81\x00", 2);
}

/* A frame with a 16-bit length, fed a byte at a time, then one more: the
 * WebSocket state between reads (kept only while a frame or message is
 * unfinished) must survive every split. */
static void test_extended_length_split(void **state)
{
    fixture_t *f = *state;
    static const unsigned char key[4] = {9, 8, 7, 6};
    unsigned char buf[256];
    handshake(f);
    size_t n = 0, len = 150;
    buf[n++] = 0x82;
    buf[n++] = 0x80 | 126;
    buf[n++] = 0;
    buf[n++] = (unsigned char)len;
    memcpy(buf + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        buf[n++] = (unsigned char)('a' + i % 26) ^ key[i % 4];
    for (size_t i = 0; i < n; i++)
        feed(f, buf + i, 1);
    assert_int_equal(f->c->out.len, 4 + len);
    assert_memory_equal(f->c->out.data,
                        "\x82\x7e\x00\x96"
                        "abcdef",
                        10);
    f->c->out.len = 0;
    feed(f, buf, frame(buf, 1, 1, "next", 4, 1));
    assert_int_equal(f->c->out.len, 6);
    assert_memory_equal(f->c->out.data, "\x81\x04next", 6);
    assert_false(f->c->closing);
}

static void test_peer_close_is_echoed(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64];
    handshake(f);
    size_t n = frame(buf, 1, 8,
                     "\x0b\xb8"
                     "bye",
                     5, 1); /* 3000 */
    feed(f, buf, n);
    assert_int_equal(sent_close_code(f), 3000);
    assert_int_equal(closed, 1);
    assert_int_equal(close_code, 3000);
}

/* The first close frame in the output: its body's length, and its body
 * copied to body (at least 125 bytes); -1 if none. */
static int sent_close_body(fixture_t *f, unsigned char *body)
{
    const unsigned char *p = (const unsigned char *)f->c->out.data;
    size_t i = 0;
    while (i + 2 <= f->c->out.len) {
        size_t n = p[i + 1] & 0x7f, off = i + 2;
        if ((p[i] & 0x0f) == 8) {
            memcpy(body, p + off, n);
            return (int)n;
        }
        i = off + n;
    }
    return -1;
}

/* A close body of one byte has no room for a code (RFC 6455 5.5.1): 1002,
 * not the empty close an empty body gets. */
static void test_close_one_byte_1002(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64], body[125];
    handshake(f);
    feed(f, buf, frame(buf, 1, 8, "\x03", 1, 1));
    assert_int_equal(sent_close_body(f, body), 2);
    assert_int_equal(body[0] << 8 | body[1], 1002);
    assert_int_equal(closed, 1);
    assert_int_equal(close_code, 1002);
}

static void test_close_empty_echoed_empty(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64], body[125];
    handshake(f);
    feed(f, buf, frame(buf, 1, 8, "", 0, 1));
    assert_int_equal(sent_close_body(f, body), 0);
    assert_int_equal(close_code, 1005);
}

/* Registered codes wslay does not know are echoed, reason and all. */
static void test_close_registered_code_echoed(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64], body[125];
    handshake(f);
    feed(f, buf, frame(buf, 1, 8, "\x03\xf5later", 7, 1)); /* 1013 */
    assert_int_equal(sent_close_body(f, body), 7);
    assert_memory_equal(body, "\x03\xf5later", 7);
    assert_int_equal(close_code, 1013);
}

static void test_close_code_not_on_the_wire_1002(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64];
    handshake(f);
    feed(f, buf, frame(buf, 1, 8, "\x03\xed", 2, 1)); /* 1005 */
    assert_int_equal(sent_close_code(f), 1002);
    assert_int_equal(close_code, 1002);
}

/* A reason that is not UTF-8, cut across reads: 1007 whatever the cuts. */
static void test_close_reason_utf8_split(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64];
    handshake(f);
    size_t n = frame(buf, 1, 8,
                     "\x03\xe8"
                     "a\xc0\xaf"
                     "b",
                     6, 1);
    feed(f, buf, 9);
    feed(f, buf + 9, n - 9);
    assert_int_equal(sent_close_code(f), 1007);
    assert_int_equal(close_code, 1007);
}

/* A close frame with a valid reason, after a message: its first cut
 * bytes in the message's read, the rest in reads of step bytes. */
static void close_split(fixture_t *f, size_t cut, size_t step)
{
    static const char reason[] = "\x03\xe8"
                                 "abc\xce\xba";
    unsigned char buf[128], body[125];
    handshake(f);
    size_t n = frame(buf, 1, 1, "hi", 2, 1);
    size_t m = frame(buf + n, 1, 8, reason, 7, 1);
    feed(f, buf, n + cut);
    for (size_t i = n + cut; i < n + m; i += step) {
        assert_int_equal(closed, 0);
        feed(f, buf + i, n + m - i < step ? n + m - i : step);
    }
    assert_int_equal(sent_close_body(f, body), 7);
    assert_memory_equal(body, reason, 7);
    assert_int_equal(close_code, 1000);
}

/* wslay, given the frame in those pieces, would refuse it with 1007: it
 * checks each piece's UTF-8 from its third byte. */
static void test_close_split_in_body(void **state)
{
    close_split(*state, 10, 64); /* 4 bytes of the body, then "c", 0xce, 0xba */
}

static void test_close_split_bytewise(void **state)
{
    close_split(*state, 1, 1);
}

static void test_server_close_codes_checked(void **state)
{
    fixture_t *f = *state;
    handshake(f);
    assert_int_equal(net_ws_close(f->c->ws, 1004, "reserved"), CORE_ERR_INVALID);
    assert_int_equal(net_ws_close(f->c->ws, 2000, "extension"), CORE_ERR_INVALID);
    assert_int_equal(net_ws_close(f->c->ws, 1013, "try again later"), 0);
    assert_int_equal(sent_close_code(f), 1013);
}

static void test_bad_input_close_codes(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[512];
    handshake(f);
    size_t n = frame(buf, 1, 1, "\xff\xfe", 2, 1);
    feed(f, buf, n);
    assert_int_equal(sent_close_code(f), 1007);
    assert_int_equal(closed, 1);
}

static void test_unmasked_1002(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64];
    handshake(f);
    feed(f, buf, frame(buf, 1, 1, "hi", 2, 0));
    assert_int_equal(sent_close_code(f), 1002);
}

static void test_oversize_1009(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[512];
    char big[120];
    memset(big, 'x', sizeof(big));
    handshake(f);
    size_t n = frame(buf, 0, 1, big, 120, 1);
    n += frame(buf + n, 1, 0, big, 120, 1); /* 240 > 200 reassembled */
    feed(f, buf, n);
    assert_int_equal(sent_close_code(f), 1009);
}

static void test_server_close(void **state)
{
    fixture_t *f = *state;
    unsigned char buf[64];
    handshake(f);
    feed(f, buf, frame(buf, 1, 1, "close", 5, 1));
    assert_int_equal(sent_close_code(f), 4000);
}

static void test_bad_handshakes(void **state)
{
    fixture_t *f = *state;
    static const char hs[] =
        "GET /ws/lobby HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 8\r\n\r\n";
    feed(f, hs, sizeof(hs) - 1);
    net__obuf_reserve(&f->c->out, 1);
    f->c->out.data[f->c->out.len] = '\0';
    assert_non_null(strstr(f->c->out.data, "HTTP/1.1 426 "));
    assert_non_null(strstr(f->c->out.data, "Sec-WebSocket-Version: 13\r\n"));
    assert_int_equal(opened, 0);
    assert_true(f->c->closing);
}

static void test_utf8_send_checked(void **state)
{
    fixture_t *f = *state;
    handshake(f);
    /* the ws is f->c->ws; sending invalid text from the server is refused */
    assert_int_equal(net_ws_send_text(f->c->ws, "\xc0\xaf", 2), CORE_ERR_INVALID);
    assert_int_equal(net_ws_send_text(f->c->ws, "ok", 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_and_fragments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extended_length_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_close_is_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_close_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_one_byte_1002, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_empty_echoed_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_registered_code_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_code_not_on_the_wire_1002, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_reason_utf8_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_split_in_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_split_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close_codes_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmasked_1002, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_1009, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_send_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
