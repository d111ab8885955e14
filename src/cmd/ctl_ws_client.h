/* ctl_ws_client.h — a small non-blocking WebSocket client (RFC 6455) for
 * chorusctl: one TCP socket per ctl_ws_t (TLS through OpenSSL for wss://),
 * the opening handshake done here, framing, masking, fragments, close and the pong to a server's
 * ping by wslay's client side. Meant for a caller that runs many of them on one thread with poll():
 * it asks ctl_ws_fd() and ctl_ws_events() for each, and calls ctl_ws_io() with what poll()
 * returned.
 *
 * Threads: one thread per ctl_ws_t; the sockets of one target share its
 * TLS context, which OpenSSL allows across threads.
 * Ownership: ctl_ws_open() returns an owned handle, freed with ctl_ws_free()
 * (which closes the socket). Callbacks get borrowed pointers valid for the
 * call only; a callback may send or start a close, never free the handle.
 * Errors: every failure closes the handle (state CTL_WS_CLOSED) and leaves a
 * sentence in ctl_ws_error(): connect refused, the upgrade answered with
 * another status than 101 (ctl_ws_http_status()), a bad Sec-WebSocket-Accept,
 * the peer closing (ctl_ws_close_code()), a read/write error, or for
 * wss:// a TLS handshake or certificate failure (the server's certificate
 * must be trusted by the system's CAs or $SSL_CERT_FILE and name the URL's
 * host). */
#ifndef CHORUS_CTL_WS_CLIENT_H
#define CHORUS_CTL_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ctl_ws_s ctl_ws_t;

/* Where to connect: the resolved address and what the request line and
 * Host header say. */
typedef struct ctl_ws_target_s {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[256]; /* Host header: host[:port] as the URL gave it */
    char path[512]; /* the URL's path, without a trailing '/' */
    char name[256]; /* the host alone, for TLS's SNI and certificate check */
    int tls;        /* wss:// */
    void *tls_ctx;  /* SSL_CTX, wss:// only; ctl_ws_target_dispose() frees it */
} ctl_ws_target_t;

typedef enum {
    CTL_WS_CONNECTING, /* TCP connect, then the upgrade request and answer */
    CTL_WS_OPEN,       /* frames flow both ways */
    CTL_WS_CLOSING,    /* a close frame was sent or received */
    CTL_WS_CLOSED      /* the socket is closed; ctl_ws_error() says why */
} ctl_ws_state_t;

typedef struct ctl_ws_cb_s {
    /* a complete text (or binary) message */
    void (*on_message)(ctl_ws_t *ws, const char *data, size_t len, void *user);
    /* a pong, with the payload of the ping it answers */
    void (*on_pong)(ctl_ws_t *ws, const uint8_t *data, size_t len, void *user);
} ctl_ws_cb_t;

/* Parses url ("ws[s]://host[:port][/path]") and resolves its host
 * (blocking, once per run). Returns 0, or -1 with a sentence in err. The
 * sockets opened to it share its TLS context: dispose of it after them. */
int ctl_ws_target(const char *url, ctl_ws_target_t *t, char *err, size_t err_size);
void ctl_ws_target_dispose(ctl_ws_target_t *t);

/* Starts connecting to t->path + path_query (e.g. "/v1/chat/ws"), with an
 * "Authorization: Bearer" header when bearer is not NULL. Never NULL: a
 * failure to start is reported as a handle already CTL_WS_CLOSED. */
ctl_ws_t *ctl_ws_open(const ctl_ws_target_t *t, const char *path_query, const char *bearer,
                      const ctl_ws_cb_t *cb, void *user);
void ctl_ws_free(ctl_ws_t *ws);

int ctl_ws_fd(const ctl_ws_t *ws);       /* -1 once closed */
short ctl_ws_events(const ctl_ws_t *ws); /* POLLIN / POLLOUT to wait for */
ctl_ws_state_t ctl_ws_state(const ctl_ws_t *ws);
const char *ctl_ws_error(const ctl_ws_t *ws); /* "" while nothing went wrong */
int ctl_ws_http_status(const ctl_ws_t *ws);   /* the upgrade's status, 0 before it */
int ctl_ws_close_code(const ctl_ws_t *ws);    /* the peer's close code, 0 if none */

/* Does the I/O poll() found ready (revents), calling the callbacks for what
 * arrived. Returns the state afterwards. */
ctl_ws_state_t ctl_ws_io(ctl_ws_t *ws, short revents);

/* Queue a text message / a ping / a close (1000 = normal) and write what
 * the socket takes now. Return 0, or -1 when the handle is not open. */
int ctl_ws_send_text(ctl_ws_t *ws, const char *text, size_t len);
int ctl_ws_ping(ctl_ws_t *ws, const void *payload, size_t len);
int ctl_ws_close(ctl_ws_t *ws, int code, const char *reason);

#endif
