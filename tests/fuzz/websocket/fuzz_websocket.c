/* Fuzz target: a WebSocket handshake, then arbitrary frame bytes from the
 * client (masking, fragmentation, control frames, close codes, oversize
 * messages, invalid UTF-8) through wslay and src/net/net_ws.c, on a detached
 * connection (src/net/net_int.h). The first input byte picks the read split,
 * whether the peer stops reading (the send queue fills), and what happens at
 * the end (ping and pong timeouts, a server drain). The handler echoes,
 * sends from on_open and closes on request. Any input must end in messages,
 * close frames or a close, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int opened, closed;

static void ws_open(net_ws_t *ws, net_req_t *req, void *route_data)
{
    (void)req;
    (void)route_data;
    opened++;
    net_ws_set_data(ws, &opened);
    if (net_ws_send_text(ws, "{\"type\":\"ready\"}", 16) != 0)
        abort(); /* a fresh connection can always send */
}

static void ws_msg(net_ws_t *ws, int binary, const char *data, size_t len)
{
    if (net_ws_data(ws) != &opened)
        abort();
    if (!binary && !net_utf8_valid(data, len))
        abort(); /* text reaching the handler is UTF-8 */
    if (len >= 2 && data[0] == 'C') {
        int code = (unsigned char)data[1] * 20;
        int rc = net_ws_close(ws, code, data + 2 < data + len ? "bye" : NULL);
        if (rc == 0 && net_ws_send_text(ws, "x", 1) != CORE_ERR_CLOSED)
            abort(); /* nothing goes after a close */
        return;
    }
    int rc = binary ? net_ws_send_binary(ws, data, len) : net_ws_send_text(ws, data, len);
    if (rc != 0 && rc != CORE_ERR_BUSY && rc != CORE_ERR_CLOSED)
        abort();
}

static void ws_close(net_ws_t *ws, int code)
{
    (void)ws;
    if (code < 1000 || code > 4999)
        abort();
    closed++;
}

static net_server_t *setup(void)
{
    static uv_loop_t loop;
    static net_router_t *router;
    static net_server_t *srv;
    if (srv)
        return srv;
    core_log_set_level(CORE_LOG_ERROR);
    uv_loop_init(&loop);
    router = net_router_new();
    static const net_ws_callbacks_t cb = {
        .on_open = ws_open, .on_message = ws_msg, .on_close = ws_close};
    if (net_router_add_ws(router, "/ws", &cb, NULL, NULL) != 0)
        abort();
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    l.ws_max_message_bytes = 1024; /* small, so that 1009 is reached */
    l.write_buffer_bytes = 512;
    l.ws_send_queue_bytes = 2048;
    srv = net_server_new(&loop, &l, router);
    return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hs[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    net_server_t *s = setup();
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    data++, size--;
    opened = closed = 0;
    net_conn_t *c = net__conn_new_detached(s);
    /* mode 0x40: the frames come in the handshake's own read */
    size_t off = 0, first = mode & 0x40 ? (size < 64 ? size : 64) : 0;
    char *buf = malloc(sizeof(hs) - 1 + first);
    memcpy(buf, hs, sizeof(hs) - 1);
    memcpy(buf + sizeof(hs) - 1, data, first);
    net__conn_feed(c, buf, sizeof(hs) - 1 + first);
    free(buf);
    off = first;
    if (opened != 1)
        abort(); /* the frames that came along may have closed it already */
    size_t step = 1 + (mode & 0x0f) * 7;
    if (size / step > 256)
        step = size / 256; /* at most ~256 reads, so that runs stay fast */
    while (off < size && !c->closing) {
        size_t n = size - off < step ? size - off : step;
        net__conn_feed(c, (const char *)data + off, n);
        off += n;
        if (!(mode & 0x20)) { /* the peer reads what we send */
            c->out.len = 0;
            if (!c->closing && c->ws)
                net__ws_writable(c);
            net__conn_update_read(c);
        }
    }
    if (!c->closing && c->ws && (mode & 0x10))
        net__ws_drain(c);
    if (mode & 0x80) { /* ping, then no pong: the connection ends */
        for (int i = 0; i < 3 && !c->closing; i++)
            net__conn_timeout(c);
        if (!c->closing)
            abort();
    }
    net__conn_free_detached(c);
    if (closed != 1)
        abort(); /* on_close runs exactly once */
    return 0;
}
