/* One frame for many sockets (net_ws_frame_text, net_ws_send_frame): every
 * socket gets the bytes net_ws_send_text gave it, for payloads on both
 * sides of each header length (7, 16 and 64 bits); a frame sent while
 * messages wait for a slow peer goes out behind them, in order; and the
 * answers (CORE_ERR_BUSY, CORE_ERR_CLOSED, NULL for text that is not
 * UTF-8) are net_ws_send_text's; and an idle socket keeps no output
 * buffer either way. Detached connections (net_int.h): the output stays in
 * c->out to be read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/net_int.h"

enum { N_CONNS = 3 };

typedef struct fixture_s {
    uv_loop_t loop;
    net_router_t *router;
    net_server_t *srv;
    net_conn_t *c[N_CONNS];
} fixture_t;

static void on_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
    (void)ws, (void)binary, (void)data, (void)len;
}

static void handshake(net_conn_t *c)
{
    static const char hs[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    net__conn_feed(c, hs, sizeof(hs) - 1);
    assert_non_null(c->ws);
    c->out.len = 0;
}

static fixture_t *fixture(size_t write_buffer_bytes, size_t send_queue_bytes)
{
    static const net_ws_callbacks_t cb = {.on_message = on_message};
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->router = net_router_new();
    assert_int_equal(net_router_add_ws(f->router, "/ws", &cb, NULL, NULL), 0);
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    if (write_buffer_bytes)
        l.write_buffer_bytes = write_buffer_bytes;
    if (send_queue_bytes)
        l.ws_send_queue_bytes = send_queue_bytes;
    f->srv = net_server_new(&f->loop, &l, f->router);
    for (int i = 0; i < N_CONNS; i++) {
        f->c[i] = net__conn_new_detached(f->srv);
        handshake(f->c[i]);
    }
    return f;
}

static void fixture_free(fixture_t *f)
{
    for (int i = 0; i < N_CONNS; i++)
        net__conn_free_detached(f->c[i]);
    net_server_free(f->srv);
    net_router_free(f->router);
    uv_loop_close(&f->loop);
    free(f);
}

/* Text of len bytes, with multi-byte characters in it. */
static char *text_of(size_t len)
{
    char *t = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        t[i] = (char)('a' + i % 26);
    if (len >= 4)
        memcpy(t + len / 2 - 1, "\xc3\xa9", 2); /* é */
    t[len] = '\0';
    return t;
}

/* The first connection takes net_ws_send_text, the others the one frame:
 * every one's output is the same bytes. */
static void test_every_socket_gets_the_bytes_send_text_gave(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 125, 126, 127, 4096, 65535, 65536, 70000};
    fixture_t *f = fixture(1 << 20, 1 << 20);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t len = sizes[k];
        char *t = text_of(len);
        for (int i = 0; i < N_CONNS; i++)
            f->c[i]->out.len = 0;
        assert_int_equal(net_ws_send_text(f->c[0]->ws, t, len), 0);
        net_ws_frame_t *fr = net_ws_frame_text(t, len);
        assert_non_null(fr);
        for (int i = 1; i < N_CONNS; i++)
            assert_int_equal(net_ws_send_frame(f->c[i]->ws, fr), 0);
        net_ws_frame_free(fr);
        size_t hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
        assert_int_equal(f->c[0]->out.len, hdr + len);
        for (int i = 1; i < N_CONNS; i++) {
            assert_int_equal(f->c[i]->out.len, f->c[0]->out.len);
            assert_memory_equal(f->c[i]->out.data, f->c[0]->out.data, f->c[0]->out.len);
        }
        free(t);
    }
    fixture_free(f);
}

/* A peer that does not read: once its output passes write_buffer_bytes
 * messages wait in wslay's queue. A frame sent then waits behind them and
 * leaves in order when the output drains, as a text sent then would. */
static void test_behind_what_waits(void **state)
{
    (void)state;
    fixture_t *f = fixture(16, 0);
    char big[64];
    memset(big, 'b', sizeof(big));
    for (int i = 0; i < 2; i++) {
        net_conn_t *c = f->c[i];
        assert_int_equal(net_ws_send_text(c->ws, big, sizeof(big)), 0); /* fills the output */
        assert_int_equal(c->out.len, 2 + sizeof(big));
        if (i == 0) {
            assert_int_equal(net_ws_send_text(c->ws, "x", 1), 0);
            assert_int_equal(net_ws_send_text(c->ws, "y", 1), 0);
        } else {
            net_ws_frame_t *x = net_ws_frame_text("x", 1), *y = net_ws_frame_text("y", 1);
            assert_int_equal(net_ws_send_frame(c->ws, x), 0);
            assert_int_equal(net_ws_send_frame(c->ws, y), 0);
            net_ws_frame_free(x);
            net_ws_frame_free(y);
        }
        assert_int_equal(c->out.len, 2 + sizeof(big)); /* both wait */
        assert_true(net__ws_blocked(c));
        c->out.len = 0; /* the peer read it */
        net__ws_writable(c);
        assert_int_equal(c->out.len, 6);
        assert_memory_equal(c->out.data, "\x81\x01x\x81\x01y", 6);
        assert_false(net__ws_blocked(c));
    }
    fixture_free(f);
}

static void test_answers_are_send_text_s(void **state)
{
    (void)state;
    fixture_t *f = fixture(0, 100);
    assert_null(net_ws_frame_text("\xc0\xaf", 2));
    assert_null(net_ws_frame_text("ok\xed\xa0\x80", 5)); /* a surrogate */
    char big[101];
    memset(big, 'z', sizeof(big));
    net_ws_frame_t *fr = net_ws_frame_text(big, sizeof(big));
    assert_non_null(fr);
    /* over websocket.send_queue_bytes: busy, nothing sent */
    assert_int_equal(net_ws_send_text(f->c[0]->ws, big, sizeof(big)), CORE_ERR_BUSY);
    assert_int_equal(net_ws_send_frame(f->c[1]->ws, fr), CORE_ERR_BUSY);
    assert_int_equal(f->c[1]->out.len, 0);
    net_ws_frame_free(fr);
    /* after a close: closed */
    fr = net_ws_frame_text("late", 4);
    assert_int_equal(net_ws_close(f->c[0]->ws, 1000, "bye"), 0);
    assert_int_equal(net_ws_close(f->c[1]->ws, 1000, "bye"), 0);
    assert_int_equal(net_ws_send_text(f->c[0]->ws, "late", 4), CORE_ERR_CLOSED);
    assert_int_equal(net_ws_send_frame(f->c[1]->ws, fr), CORE_ERR_CLOSED);
    net_ws_frame_free(fr);
    net_ws_frame_free(NULL);
    fixture_free(f);
}

/* Once what a socket was sent has left (here: its output emptied, as a
 * write would), the pump leaves it no output buffer, whichever way the
 * frame went: with a wslay context (net_ws_send_text) or without one
 * (net_ws_send_frame). An idle socket costs no buffer. */
static void test_idle_socket_keeps_no_buffer(void **state)
{
    (void)state;
    fixture_t *f = fixture(0, 0);
    net_ws_frame_t *fr = net_ws_frame_text("hello", 5);
    assert_non_null(fr);
    assert_int_equal(net_ws_send_text(f->c[0]->ws, "hello", 5), 0);
    assert_int_equal(net_ws_send_frame(f->c[1]->ws, fr), 0);
    net_ws_frame_free(fr);
    for (int i = 0; i < 2; i++) {
        net_conn_t *c = f->c[i];
        assert_int_equal(c->out.len, 7);
        assert_true(c->out.cap > 0);
        c->out.len = 0; /* written */
        net__ws_pump(c);
        assert_int_equal(c->out.cap, 0);
        assert_null(c->out.data);
        assert_int_equal(c->wr.cap, 0);
    }
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_socket_gets_the_bytes_send_text_gave),
        cmocka_unit_test(test_behind_what_waits),
        cmocka_unit_test(test_answers_are_send_text_s),
        cmocka_unit_test(test_idle_socket_keeps_no_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
