/* WebSocket over a real loopback socket: a frame sent from on_open (inside
 * the read that carried the handshake) and one pushed later from a timer
 * both reach the client without any further event on the connection.
 * Frames sent outside a read wait for the end of the loop iteration, to go
 * out in one write: two sent from an idle callback (before the loop polls,
 * where nothing else is pending) are not on the socket when the callback
 * returns, and still arrive without any further event. A guard timer only
 * keeps a regression from hanging the test: reaching it is the failure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "chorus/net.h"

typedef struct client_s {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char in[4096];
    size_t len;
    size_t want; /* bytes of frames expected after the 101 */
    int done, timed_out;
    uv_timer_t guard;
} client_t;

/* A loop that blocked in poll with output pending would sleep until the
 * connection's next timer (its idle or ping deadline, 10 s and more): the
 * guard comes first. Delivery takes microseconds; 5 s is only a bound. */
#define GUARD_MS 5000

static net_ws_t *opened_ws;
static uv_timer_t push_timer;

static void on_open(net_ws_t *ws, net_req_t *req, void *route_data)
{
    opened_ws = ws;
    assert_int_equal(net_ws_send_text(ws, "hello", 5), 0);
}

static void on_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
}

static void on_close(net_ws_t *ws, int code)
{
    opened_ws = NULL;
}

static const char hs[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n";

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    client_t *cl = h->data;
    *b = uv_buf_init(cl->in + cl->len, (unsigned)(sizeof(cl->in) - cl->len - 1));
}

/* Bytes after the end of the 101's headers, 0 before it is complete. */
static size_t frame_bytes(const client_t *cl)
{
    const char *end = strstr(cl->in, "\r\n\r\n");
    return end ? cl->len - (size_t)(end + 4 - cl->in) : 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    client_t *cl = st->data;
    if (n < 0) {
        uv_read_stop(st);
        return;
    }
    cl->len += (size_t)n;
    cl->in[cl->len] = '\0';
    if (frame_bytes(cl) >= cl->want) {
        cl->done = 1;
        uv_read_stop(st);
        uv_timer_stop(&cl->guard);
    }
}

static void on_written(uv_write_t *w, int status)
{
    assert_int_equal(status, 0);
}

static void on_connect(uv_connect_t *r, int status)
{
    client_t *cl = r->data;
    assert_int_equal(status, 0);
    uv_buf_t b = uv_buf_init((char *)hs, sizeof(hs) - 1);
    uv_write(&cl->wreq, (uv_stream_t *)&cl->tcp, &b, 1, on_written);
    uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read);
}

static void on_guard(uv_timer_t *t)
{
    client_t *cl = t->data;
    cl->timed_out = 1;
    uv_stop(cl->loop);
}

static void on_push(uv_timer_t *t)
{
    assert_non_null(opened_ws);
    assert_int_equal(net_ws_send_text(opened_ws, "later", 5), 0);
}

static uv_idle_t push_idle;
static int sent_later; /* the idle callback's frames were not on the socket yet */

static void on_push_idle(uv_idle_t *h)
{
    client_t *cl = h->data;
    uv_idle_stop(h);
    assert_non_null(opened_ws);
    assert_int_equal(net_ws_send_text(opened_ws, "one", 3), 0);
    assert_int_equal(net_ws_send_text(opened_ws, "two", 3), 0);
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)&cl->tcp, &fd), 0);
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    sent_later = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void drained(net_server_t *s, void *data)
{
    *(int *)data = 1;
}

static void run_client(uv_loop_t *loop, int port, client_t *cl)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    cl->loop = loop;
    uv_tcp_init(loop, &cl->tcp);
    cl->tcp.data = cl;
    cl->creq.data = cl;
    uv_timer_init(loop, &cl->guard);
    cl->guard.data = cl;
    uv_timer_start(&cl->guard, on_guard, GUARD_MS, 0);
    uv_tcp_connect(&cl->creq, &cl->tcp, (struct sockaddr *)&sa, on_connect);
    while (!cl->done && !cl->timed_out)
        uv_run(loop, UV_RUN_ONCE);
}

/* 0x81 0x05 "hello" then, when push, 0x81 0x05 "later": unmasked server frames. */
static void test_send_from_on_open_and_later(void **state)
{
    static const net_ws_callbacks_t cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close};
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_router_t *r = net_router_new();
    assert_int_equal(net_router_add_ws(r, "/ws", &cb, NULL, NULL), 0);
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    net_server_t *s = net_server_new(&loop, &l, r);
    assert_int_equal(net_server_listen(s, "127.0.0.1", 0, NULL), 0);

    client_t *cl = calloc(1, sizeof(*cl));
    cl->want = 7;
    run_client(&loop, net_server_port(s), cl);
    assert_false(cl->timed_out);
    assert_memory_equal(cl->in + cl->len - 7, "\x81\x05hello", 7);

    /* a push from elsewhere on the loop goes out by itself too */
    cl->done = 0;
    cl->want = 14;
    uv_timer_init(&loop, &push_timer);
    uv_timer_start(&push_timer, on_push, 1, 0);
    uv_timer_start(&cl->guard, on_guard, GUARD_MS, 0);
    uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read);
    while (!cl->done && !cl->timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(cl->timed_out);
    assert_memory_equal(cl->in + cl->len - 7, "\x81\x05later", 7);

    /* two frames from the idle phase: deferred to the iteration's end, which
     * comes without the loop blocking in poll */
    cl->done = 0;
    cl->want = 24;
    uv_idle_init(&loop, &push_idle);
    push_idle.data = cl;
    uv_idle_start(&push_idle, on_push_idle);
    uv_timer_start(&cl->guard, on_guard, GUARD_MS, 0);
    uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read);
    while (!cl->done && !cl->timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(cl->timed_out);
    assert_true(sent_later);
    assert_memory_equal(cl->in + cl->len - 10, "\x81\x03one\x81\x03two", 10);

    int done = 0;
    uv_close((uv_handle_t *)&cl->tcp, NULL);
    uv_close((uv_handle_t *)&cl->guard, NULL);
    uv_close((uv_handle_t *)&push_timer, NULL);
    uv_close((uv_handle_t *)&push_idle, NULL);
    net_server_drain(s, 1000, drained, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(done);
    assert_null(opened_ws);
    net_server_free(s);
    net_router_free(r);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_from_on_open_and_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
