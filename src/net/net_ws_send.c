/* WebSocket, the sending side: the public accessors, text and binary
 * messages through wslay's queue, one frame made once for many sockets
 * (written straight to each connection's output), and our close. The
 * framing of what arrives is net_ws.c's. */
#define LOG_MODULE "net"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_ws_int.h"

/* ---- the public side ---------------------------------------------------- */

void *net_ws_data(const net_ws_t *ws)
{
    return ws->data;
}

void net_ws_set_data(net_ws_t *ws, void *data)
{
    ws->data = data;
}

const char *net_ws_remote(const net_ws_t *ws)
{
    return ws->conn->remote;
}

const char *net_ws_id(const net_ws_t *ws)
{
    return ws->id;
}

static int ws_send(net_ws_t *ws, int opcode, const void *data, size_t len)
{
    net_conn_t *c = ws->conn;
    if (c->closing || ws->closing || net__ws_ctx_get(ws) != 0 ||
        wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx))
        return CORE_ERR_CLOSED;
    size_t queued = wslay_event_get_queued_msg_length(ws->ctx) + net__conn_unsent(c);
    if (queued + len > c->srv->lim.ws_send_queue_bytes)
        return CORE_ERR_BUSY;
    struct wslay_event_msg m = {(uint8_t)opcode, data, len};
    if (wslay_event_queue_msg(ws->ctx, &m) != 0)
        return CORE_ERR_CLOSED;
    /* move it to the output now, so that the queue holds only what the
     * peer is slow to take (net__ws_blocked), also for many messages within
     * one read; the end of the read writes it, or outside one the end of
     * the loop iteration, with whatever else this iteration sends */
    if (wslay_event_send(ws->ctx) != 0)
        return CORE_ERR_CLOSED;
    if (!c->in_read)
        net__conn_pump_later(c);
    return 0;
}

int net_ws_send_text(net_ws_t *ws, const char *text, size_t len)
{
    if (!net_utf8_valid(text, len))
        return CORE_ERR_INVALID;
    return ws_send(ws, WSLAY_TEXT_FRAME, text, len);
}

int net_ws_send_binary(net_ws_t *ws, const void *data, size_t len)
{
    return ws_send(ws, WSLAY_BINARY_FRAME, data, len);
}

/* ---- one frame for many sockets ------------------------------------------ */

struct net_ws_frame_s {
    size_t hlen; /* header bytes, before the payload in bytes[] */
    size_t plen; /* payload bytes */
    unsigned char bytes[];
};

net_ws_frame_t *net_ws_frame_text(const char *text, size_t len)
{
    if (!net_utf8_valid(text, len))
        return NULL;
    /* the header wslay writes for an unmasked final frame (RFC 6455 5.2):
     * the shortest of the 7-bit, 16-bit and 64-bit lengths */
    unsigned char h[10];
    size_t hlen = 2;
    h[0] = 0x80 | WSLAY_TEXT_FRAME;
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hlen = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hlen = 10;
    }
    net_ws_frame_t *f = core_xmalloc(sizeof(*f) + hlen + len);
    f->hlen = hlen;
    f->plen = len;
    memcpy(f->bytes, h, hlen);
    if (len > 0)
        memcpy(f->bytes + hlen, text, len);
    return f;
}

void net_ws_frame_free(net_ws_frame_t *f)
{
    free(f);
}

int net_ws_send_frame(net_ws_t *ws, const net_ws_frame_t *f)
{
    net_conn_t *c = ws->conn;
    if (c->closing || ws->closing)
        return CORE_ERR_CLOSED;
    /* something waits in wslay (a message the peer is slow to take, a
     * control frame, a partly written one): behind it, as any message */
    if (ws->ctx != NULL &&
        (wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx) ||
         wslay_event_want_write(ws->ctx)))
        return ws_send(ws, WSLAY_TEXT_FRAME, f->bytes + f->hlen, f->plen);
    /* nothing does: the same limit, and the frame goes where send_cb would
     * put wslay's bytes, or, the output being full, behind them in wslay */
    if (net__conn_unsent(c) + f->plen > c->srv->lim.ws_send_queue_bytes)
        return CORE_ERR_BUSY;
    if (net__ws_out_put(c, f->bytes, f->hlen + f->plen) != 0)
        return ws_send(ws, WSLAY_TEXT_FRAME, f->bytes + f->hlen, f->plen);
    if (!c->in_read)
        net__conn_pump_later(c);
    return 0;
}

int net_ws_close(net_ws_t *ws, int code, const char *reason)
{
    if (!net__ws_close_code_valid((unsigned)code))
        return CORE_ERR_INVALID;
    if (ws->closing || net__ws_ctx_get(ws) != 0 || wslay_event_get_close_sent(ws->ctx))
        return CORE_ERR_CLOSED;
    char r[124];
    snprintf(r, sizeof(r), "%s", reason ? reason : "");
    net__ws_queue_close(ws, code, r);
    if (!ws->conn->in_read)
        net__ws_pump(ws->conn);
    return 0;
}
