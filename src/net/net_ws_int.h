/* net_ws_int.h -- private to net_ws*.c: one WebSocket connection's state,
 * shared by the framing and the peer's close (net_ws.c) and the sending
 * side (net_ws_send.c). */
#ifndef CHORUS_NET_WS_INT_H
#define CHORUS_NET_WS_INT_H

#include "net/net_int.h"

/* Where the bytes handed to wslay so far leave the input among frames. */
typedef struct in_pos_s {
    uint64_t payload_left; /* bytes of the current input frame not seen yet */
    uint8_t hdr[14];       /* the input frame header being received */
    uint8_t hlen;          /* its bytes so far */
    uint8_t in_frag;       /* a fragmented data message is being received */
} in_pos_t;

#define CLOSE_BODY_MAX 125 /* a control frame's payload */
/* A close frame's most bytes: header, mask and a control frame's payload. */
#define HELD_MAX (2 + 4 + CLOSE_BODY_MAX)

struct net_ws_s {
    net_conn_t *conn;
    wslay_event_context_ptr ctx;
    const struct net_route_s *route;
    void *data; /* the user's */
    const char *feed;
    size_t feed_len;
    in_pos_t in;     /* the input handed to wslay (in_walk) */
    uint8_t *held;   /* a close frame's first bytes, until it is whole; or NULL */
    uint8_t nheld;   /* bytes in held */
    uint8_t in_recv; /* inside wslay_event_recv: the context must stay */
    uint8_t awaiting_pong;
    uint8_t closing;   /* a close frame was queued by us */
    uint8_t in_close;  /* a peer's close frame is being received */
    uint8_t close_len; /* its payload bytes so far, in close_body */
    /* CLOSE_BODY_MAX bytes, made when a peer's close frame starts: idle
     * sockets are many, and only a closing one needs it */
    uint8_t *close_body;
    int close_code; /* for on_close: the peer's code, or ours for a bad close */
    char id[65];
};

/* net_ws.c, for net_ws_send.c */
/* Makes the wslay context when the socket has none (it is freed while
 * idle); 0, or -1 when it cannot be made. */
int net__ws_ctx_get(net_ws_t *ws);
/* Appends to the connection's output buffer, writing it out first when it
 * is over write_buffer_bytes; -1 (nothing put) when it stays over or the
 * connection is closing. */
int net__ws_out_put(net_conn_t *c, const void *data, size_t len);
/* Whether code may be sent or received in a close frame (RFC 6455 7.4). */
int net__ws_close_code_valid(unsigned code);
/* Queues our close frame (code, reason) and arms the close timeout; does
 * nothing once a close was queued or sent. */
void net__ws_queue_close(net_ws_t *ws, int code, const char *reason);

#endif
