/* WebSocket: RFC 6455 framing with wslay's event API, reading side and
 * the peer's close (the handshake and the UTF-8 check are in
 * net_ws_handshake.c, the sending side in net_ws_send.c).
 *
 * wslay pulls input through recv_cb from the bytes of the current read
 * (ws->feed) and pushes output through send_cb into the connection's output
 * buffer, which refuses (WOULDBLOCK) once write_buffer_bytes are unsent so
 * that messages wait in wslay's queue, counted against send_queue_bytes.
 * wslay reassembles fragments, answers pings, enforces masking and the
 * message size (1009) and runs the close handshake; text is checked for
 * UTF-8 here (1007), and so is a peer's close frame (close_answer): wslay
 * echoes a one-byte close body as an empty close and refuses registered
 * codes (1012-1014) that RFC 6455 and its registry allow. One connection
 * timer sends pings and watches pongs.
 *
 * Memory: a wslay context carries two 4 KiB buffers, most of an idle
 * connection's cost. So it exists only while it holds state: it is made
 * when bytes arrive or a frame is sent, and freed again (with the
 * connection's empty output buffers) once input is at a frame boundary
 * outside a fragmented message and nothing waits to be sent. A small frame
 * header scanner here (in_walk) knows where those boundaries are; wslay
 * itself reads all it is fed, so its state is then the initial one. The
 * same scanner hands wslay a close frame only whole (whole_close_frames). */
#define LOG_MODULE "net"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_ws_int.h"

/* ---- wslay glue --------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user);
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user);
static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user);
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user);
static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user);
static void on_frame_end(wslay_event_context_ptr ctx, void *user);

/* Makes the wslay context if there is none; 0, or -1 when wslay failed. */
int net__ws_ctx_get(net_ws_t *ws)
{
    static const struct wslay_event_callbacks cbs = {
        recv_cb, send_cb, NULL, on_frame_start, on_frame_chunk, on_frame_end, on_msg};
    if (ws->ctx)
        return 0;
    if (wslay_event_context_server_init(&ws->ctx, &cbs, ws) != 0) {
        ws->ctx = NULL;
        return -1;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->conn->srv->lim.ws_max_message_bytes);
    return 0;
}

/* Follows the frame headers of n input bytes from *in, to know when input
 * is between frames and outside a fragmented message. Malformed frames
 * need no care: wslay fails them and the connection closes. Returns n, or,
 * with stop_at_close, the offset of the first close frame that starts in
 * the bytes (in then being where it starts). */
static size_t in_walk(in_pos_t *in, const uint8_t *p, size_t n, int stop_at_close)
{
    size_t i = 0;
    while (i < n) {
        if (in->payload_left > 0) {
            size_t take = in->payload_left < n - i ? (size_t)in->payload_left : n - i;
            in->payload_left -= take;
            i += take;
            continue;
        }
        if (stop_at_close && in->hlen == 0 && (p[i] & 0x0f) == WSLAY_CONNECTION_CLOSE)
            return i;
        in->hdr[in->hlen++] = p[i++];
        if (in->hlen < 2)
            continue;
        unsigned len7 = in->hdr[1] & 0x7f;
        size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (in->hlen < 2 + ext + (in->hdr[1] & 0x80 ? 4 : 0))
            continue;
        uint64_t len = len7;
        if (ext) {
            len = 0;
            for (size_t k = 0; k < ext; k++)
                len = len << 8 | in->hdr[2 + k];
        }
        if ((in->hdr[0] & 0x08) == 0) /* a data frame: continuation, text, binary */
            in->in_frag = (in->hdr[0] & 0x80) == 0;
        in->payload_left = len;
        in->hlen = 0;
    }
    return n;
}

/* The size of a close frame from its second byte, or 0 when its length is
 * not a control frame's (wslay fails it: it goes over as it is). */
static size_t close_size(uint8_t b1)
{
    unsigned len7 = b1 & 0x7f;
    return len7 > CLOSE_BODY_MAX ? 0 : 2 + (b1 & 0x80 ? 4u : 0u) + len7;
}

/* How many of the n bytes at p (of avail fed) wslay may take now: all,
 * but a close frame only whole. wslay checks a close reason's UTF-8 on
 * each piece of the frame it reads, skipping two bytes of every piece as
 * if each began with the code (wslay_event_recv, 1.1.1), so a reason cut
 * across two of its reads, by the network or by its 4 KiB buffer, is
 * judged wrongly: a valid one refused with 1007. So the bytes before a
 * close frame that is not whole in these go first, then wslay's next read
 * (its buffer empty) takes the frame whole; one that the input ends
 * inside of is held (hold) until the rest comes. */
static size_t whole_close_frames(const net_ws_t *ws, const uint8_t *p, size_t n, size_t avail)
{
    in_pos_t in = ws->in;
    size_t pos = 0;
    while ((pos += in_walk(&in, p + pos, n - pos, 1)) < n) {
        size_t size = pos + 1 < avail ? close_size(p[pos + 1]) : 0;
        if (pos + 1 < avail && size == 0)
            return n;
        if (size != 0 && pos + size <= n) {
            pos += in_walk(&in, p + pos, size, 0);
            continue;
        }
        if (pos > 0)
            return pos;
        /* whole in the input but not in wslay's buffer, which is empty
         * here and larger than any close frame: not expected, taken as is */
        return size != 0 && size <= avail ? n : 0;
    }
    return n;
}

/* Frees the connection's output buffers that hold nothing: an idle
 * connection keeps none, whichever way its last frame went out. */
static void bufs_release_if_empty(net_conn_t *c)
{
    if (c->out.len == 0)
        net__obuf_free(&c->out);
    if (!c->writing && c->wr.len == 0)
        net__obuf_free(&c->wr);
    if (c->pending_off >= c->pending.len) {
        core_buf_dispose(&c->pending);
        c->pending_off = 0;
    }
}

/* Frees the context, and the connection's empty output buffers, when no
 * state would be lost (see the top of the file). A frame sent without a
 * context (net_ws_send_frame) leaves only the buffers, freed the same way. */
static void ctx_release_if_idle(net_ws_t *ws)
{
    net_conn_t *c = ws->conn;
    if (ws->in_recv || ws->closing || ws->in.hlen || ws->in.payload_left || ws->in.in_frag)
        return;
    if (ws->ctx != NULL) {
        if (wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx) ||
            wslay_event_want_write(ws->ctx) || wslay_event_get_queued_msg_count(ws->ctx) > 0)
            return;
        wslay_event_context_free(ws->ctx);
        ws->ctx = NULL;
    }
    bufs_release_if_empty(c);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    net_ws_t *ws = user;
    const uint8_t *feed = (const uint8_t *)ws->feed;
    size_t n = len < ws->feed_len ? len : ws->feed_len;
    n = n > 0 ? whole_close_frames(ws, feed, n, ws->feed_len) : 0;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, feed, n);
    in_walk(&ws->in, feed, n, 0);
    ws->feed += n;
    ws->feed_len -= n;
    return (ssize_t)n;
}

/* Puts len bytes of frames into c's output, first writing what waits there
 * when it is over write_buffer_bytes; 0, or -1 when it is still over (or
 * the connection is closing) and nothing was put. */
int net__ws_out_put(net_conn_t *c, const void *data, size_t len)
{
    if (!c->closing && net__conn_unsent(c) > c->srv->lim.write_buffer_bytes)
        net__conn_write_now(c);
    if (c->closing || net__conn_unsent(c) > c->srv->lim.write_buffer_bytes)
        return -1;
    net__obuf_put(&c->out, data, len);
    return 0;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    net_ws_t *ws = user;
    if (net__ws_out_put(ws->conn, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return (ssize_t)len;
}

void net__ws_queue_close(net_ws_t *ws, int code, const char *reason)
{
    if (ws->closing || net__ws_ctx_get(ws) != 0 || wslay_event_get_close_sent(ws->ctx))
        return;
    ws->closing = 1;
    wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
    net__conn_set_deadline(ws->conn, ws->conn->srv->lim.ws_close_timeout_ms);
}

/* ---- the peer's close frame ------------------------------------------- */

/* Whether a close code may be sent on the wire (RFC 6455 7.4.1, 7.4.2):
 * the protocol's own codes except 1004 (reserved) and 1005, 1006, 1015
 * (for reporting only), the registered 1012-1014 (which we send ourselves),
 * and the ranges for libraries (3000-3999) and applications (4000-4999).
 * The rest of 1000-2999 is reserved for future revisions and extensions. */
int net__ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* The code to answer a close frame's body with (0: no body, none back):
 * its own when the body is valid, else 1002 (a lone byte, 5.5.1, or a
 * code not allowed on the wire) or 1007 (a reason that is not UTF-8, as
 * for a text message); *bad says which. */
static int close_answer(const uint8_t *body, size_t len, int *bad)
{
    *bad = 0;
    if (len == 0)
        return 0;
    unsigned code = len >= 2 ? (unsigned)body[0] << 8 | body[1] : 0;
    *bad = 1;
    if (!net__ws_close_code_valid(code))
        return 1002;
    if (!net_utf8_valid((const char *)body + 2, len - 2))
        return 1007;
    *bad = 0;
    return (int)code;
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    net_ws_t *ws = user;
    ws->in_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
    ws->close_len = 0;
    if (ws->in_close && ws->close_body == NULL)
        ws->close_body = core_xmalloc(CLOSE_BODY_MAX);
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    net_ws_t *ws = user;
    size_t room = CLOSE_BODY_MAX - ws->close_len;
    if (!ws->in_close || arg->data_length > room) /* wslay refuses more than 125 */
        return;
    memcpy(ws->close_body + ws->close_len, arg->data, arg->data_length);
    ws->close_len += (uint8_t)arg->data_length;
}

/* A whole close frame arrived: wslay would answer it next, so the answer
 * is decided here and queued first; wslay's own then finds a close queued
 * already and is dropped (WSLAY_ERR_NO_MORE_MSG, which it ignores). A
 * close that answers ours needs no answer: ws->closing is set then. */
static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    net_ws_t *ws = user;
    if (!ws->in_close)
        return;
    ws->in_close = 0;
    int bad;
    int code = close_answer(ws->close_body, ws->close_len, &bad);
    ws->close_code = code ? code : 1005;
    if (bad)
        LOG_INFO("event=ws_bad_input rid=%s reason=bad_close code=%d", ws->id, code);
    if (ws->closing)
        return;
    ws->closing = 1;
    size_t rlen = bad || ws->close_len < 2 ? 0 : ws->close_len - 2u;
    wslay_event_queue_close(ctx, (uint16_t)code, ws->close_body + 2, rlen);
    net__conn_set_deadline(ws->conn, ws->conn->srv->lim.ws_close_timeout_ms);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    net_ws_t *ws = user;
    const net_limits_t *l = &ws->conn->srv->lim;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (!net_utf8_valid((const char *)arg->msg, arg->msg_length)) {
            LOG_INFO("event=ws_bad_input rid=%s reason=invalid_utf8 code=1007", ws->id);
            net__ws_queue_close(ws, 1007, "invalid UTF-8");
            return;
        }
        /* fall through */
    case WSLAY_BINARY_FRAME:
        if (!ws->closing && !wslay_event_get_close_received(ctx))
            ws->route->ws.on_message(ws, arg->opcode == WSLAY_BINARY_FRAME,
                                     arg->msg ? (const char *)arg->msg : "", arg->msg_length);
        return;
    case WSLAY_PONG:
        if (ws->awaiting_pong) {
            ws->awaiting_pong = 0;
            if (!ws->closing)
                net__conn_set_deadline(ws->conn, l->ws_ping_interval_ms);
        }
        return;
    case WSLAY_CONNECTION_CLOSE:
        LOG_DEBUG("event=ws_close_received rid=%s code=%u", ws->id, (unsigned)arg->status_code);
        return;
    default:
        return;
    }
}

void net__ws_pump(net_conn_t *c)
{
    net_ws_t *ws = c->ws;
    if (c->closing || ws == NULL)
        return;
    if (ws->ctx == NULL) {
        net__conn_flush(c);
        if (!c->closing && c->ws == ws)
            ctx_release_if_idle(ws);
        return;
    }
    int rc = wslay_event_want_write(ws->ctx) ? wslay_event_send(ws->ctx) : 0;
    if (rc != 0) {
        LOG_INFO("event=ws_send_failed rid=%s reason=%d", ws->id, rc);
        net__conn_close(c);
        return;
    }
    /* wslay stops reading once a close was sent or received: the server
     * closes first, after the close frame is out (RFC 6455 7.1.1) */
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))
        c->close_after_flush = 1;
    net__conn_flush(c);
    if (!c->closing && c->ws == ws)
        ctx_release_if_idle(ws);
}

void net__ws_start(net_conn_t *c, net_req_t *req)
{
    net_ws_t *ws = core_xcalloc(1, sizeof(*ws));
    ws->conn = c;
    ws->route = req->route;
    memcpy(ws->id, req->id, sizeof(ws->id));
    c->ws = ws;
    c->parse_dead = 1;
    c->deadline = 0;
    net__conn_set_deadline(c, c->srv->lim.ws_ping_interval_ms);
    LOG_INFO("event=ws_open rid=%s conn=%s path=%s", ws->id, c->remote, net_req_path(req));
    if (ws->route->ws.on_open)
        ws->route->ws.on_open(ws, req, ws->route->data);
    /* what on_open sent goes out now: inside a read, the read's end writes
     * it; outside one (an answer given later), nothing else would */
    if (c->ws == ws)
        net__ws_pump(c);
}

/* Keeps the n bytes at p, the start of a close frame the input ended
 * inside of (whole_close_frames), for the next read. */
static void hold(net_ws_t *ws, const char *p, size_t n)
{
    assert(n < HELD_MAX && ws->nheld == 0);
    if (ws->held == NULL)
        ws->held = core_xmalloc(HELD_MAX);
    memmove(ws->held, p, n); /* p may be in held already */
    ws->nheld = (uint8_t)n;
}

/* Moves bytes of data to the held close frame until it is whole (or its
 * length says it is no control frame); returns how many it took. */
static size_t held_fill(net_ws_t *ws, const char *data, size_t len)
{
    size_t took = 0;
    for (;;) {
        size_t want = ws->nheld < 2 ? 2 : close_size(ws->held[1]);
        if (want == 0 || ws->nheld >= want || took == len)
            return took;
        size_t k = want - ws->nheld < len - took ? want - ws->nheld : len - took;
        memcpy(ws->held + ws->nheld, data + took, k);
        ws->nheld += (uint8_t)k;
        took += k;
    }
}

static int held_whole(const net_ws_t *ws)
{
    return ws->nheld >= 2 && (close_size(ws->held[1]) == 0 || ws->nheld >= close_size(ws->held[1]));
}

/* wslay reads len bytes at data; a close frame they end inside of is held. */
static int recv_pass(net_ws_t *ws, const char *data, size_t len)
{
    ws->feed = data;
    ws->feed_len = len;
    ws->in_recv = 1;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_recv = 0;
    if (ws->in_close && !wslay_event_want_read(ws->ctx)) {
        /* wslay stopped inside a close frame: its reason was not UTF-8,
         * and wslay queued the 1007 itself (on_frame_end never ran) */
        ws->in_close = 0;
        ws->close_code = 1007;
        LOG_INFO("event=ws_bad_input rid=%s reason=bad_close code=1007", ws->id);
    }
    if (rc == 0 && ws->feed_len > 0 && wslay_event_want_read(ws->ctx))
        hold(ws, ws->feed, ws->feed_len);
    ws->feed_len = 0;
    return rc;
}

/* The held close frame, once data completes it, then data: wslay reads them. */
static int recv_all(net_ws_t *ws, const char *data, size_t len)
{
    if (ws->nheld > 0) {
        size_t took = held_fill(ws, data, len);
        data += took, len -= took;
        if (!held_whole(ws))
            return 0;
        size_t n = ws->nheld;
        ws->nheld = 0;
        int rc = recv_pass(ws, (const char *)ws->held, n);
        if (rc != 0 || ws->conn->closing)
            return rc;
    }
    return len > 0 ? recv_pass(ws, data, len) : 0;
}

void net__ws_read(net_conn_t *c, const char *data, size_t len)
{
    net_ws_t *ws = c->ws;
    if (net__ws_ctx_get(ws) != 0) {
        net__conn_close(c);
        return;
    }
    int rc = recv_all(ws, data, len);
    if (c->closing)
        return;
    if (rc != 0) {
        /* a frame wslay could not read (a control frame over 125 bytes or
         * fragmented, a length not in its shortest form): close with 1002,
         * as docs/http.md promises (RFC 6455 7.4.1), not a bare drop */
        static const char close_1002[] = {(char)0x88, 0x02, 0x03, (char)0xEA};
        LOG_INFO("event=ws_bad_input rid=%s reason=%d", ws->id, rc);
        net__obuf_put(&c->out, close_1002, sizeof(close_1002));
        c->close_after_flush = 1;
        c->parse_dead = 1;
        net__conn_flush(c);
        return;
    }
    if (wslay_event_get_close_sent(ws->ctx) && !ws->closing) {
        ws->closing = 1; /* wslay answered a close or a protocol error */
        net__conn_set_deadline(c, c->srv->lim.ws_close_timeout_ms);
    }
    net__ws_pump(c);
}

void net__ws_timer(net_conn_t *c)
{
    net_ws_t *ws = c->ws;
    const net_limits_t *l = &c->srv->lim;
    if (ws->closing) {
        LOG_INFO("event=ws_close_timeout rid=%s", ws->id);
        net__conn_close(c);
        return;
    }
    if (ws->awaiting_pong) {
        LOG_INFO("event=ws_pong_timeout rid=%s conn=%s", ws->id, c->remote);
        net__conn_close(c);
        return;
    }
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"chorus", 6};
    if (net__ws_ctx_get(ws) != 0) {
        net__conn_close(c);
        return;
    }
    wslay_event_queue_msg(ws->ctx, &ping);
    ws->awaiting_pong = 1;
    net__conn_set_deadline(c, l->ws_pong_timeout_ms);
    net__ws_pump(c);
}

void net__ws_gone(net_conn_t *c)
{
    net_ws_t *ws = c->ws;
    int code = ws->close_code ? ws->close_code : 1006; /* set by on_frame_end */
    LOG_INFO("event=ws_closed rid=%s conn=%s code=%d", ws->id, c->remote, code);
    if (ws->route->ws.on_close)
        ws->route->ws.on_close(ws, code);
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws->held);
    free(ws->close_body);
    free(ws);
    c->ws = NULL;
}

void net__ws_drain(net_conn_t *c)
{
    net__ws_queue_close(c->ws, 1001, "server shutting down");
    net__ws_pump(c);
}

/* Messages wait in wslay's queue only when the output is full: read no
 * more from a peer that does not read what we send. Once a close is out,
 * though, what still waits never leaves (wslay sends control frames first
 * and nothing after a close): reading on is what lets the peer's close
 * reply, or its EOF, end the connection before the close timeout. */
int net__ws_blocked(const net_conn_t *c)
{
    wslay_event_context_ptr ctx = c->ws->ctx;
    return ctx && wslay_event_get_queued_msg_count(ctx) > 0 && !wslay_event_get_close_sent(ctx);
}

void net__ws_writable(net_conn_t *c)
{
    net__ws_pump(c);
}
