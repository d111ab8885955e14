/* A non-blocking WebSocket client for chorusctl (contract in
 * ctl_ws_client.h). The opening handshake is a fixed HTTP/1.1 request and
 * the parse of the answer's status line and Sec-WebSocket-Accept; from then
 * on wslay's client context frames, masks and reassembles, reading and
 * writing the socket through the callbacks below. Bytes that came after the
 * 101's headers (the server may push its first frame at once) are handed to
 * wslay before the socket is read again. For wss:// every read and write
 * goes through OpenSSL on the same non-blocking socket (io_read, io_write):
 * a read or write that would block records which direction TLS waits for,
 * and poll() waits for that. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "chorus/core.h"
#include "cmd/ctl_ws_client.h"

#define RESP_MAX 8192
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ctl_ws_s {
    int fd;
    ctl_ws_state_t state;
    int connected;             /* TCP connect completed */
    char *req;                 /* the upgrade request; NULL once sent */
    size_t req_len, req_off;   /* bytes of it written */
    char resp[RESP_MAX + 1];   /* the upgrade's answer, then leftover frame bytes */
    size_t resp_len, resp_off; /* leftover: resp[resp_off..resp_len) */
    char accept[32];           /* the Sec-WebSocket-Accept we expect */
    wslay_event_context_ptr ctx;
    SSL *ssl;       /* wss:// only */
    int tls_done;   /* the TLS handshake completed */
    short want;     /* the direction the last blocked read or write waits for */
    int in_io;      /* inside ctl_ws_io: what callbacks queue goes out at its end */
    char name[256]; /* the host, for SNI and the certificate check */
    ctl_ws_cb_t cb;
    void *user;
    int http_status, close_code, eof;
    char error[256];
};

/* ---- target -------------------------------------------------------------- */

int ctl_ws_target(const char *url, ctl_ws_target_t *t, char *err, size_t err_size)
{
    memset(t, 0, sizeof(*t));
    t->tls = strncmp(url, "wss://", 6) == 0;
    if (!t->tls && strncmp(url, "ws://", 5) != 0) {
        snprintf(err, err_size, "%s: not a ws:// or wss:// URL", url);
        return -1;
    }
    const char *h = url + (t->tls ? 6 : 5), *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= sizeof(t->host)) {
        snprintf(err, err_size, "%s: no host, or a host longer than %zu bytes", url,
                 sizeof(t->host) - 1);
        return -1;
    }
    memcpy(t->host, h, hl);
    snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "");
    size_t pl = strlen(t->path);
    while (pl > 0 && t->path[pl - 1] == '/')
        t->path[--pl] = '\0';
    char host[256], *port = t->tls ? "443" : "80";
    snprintf(host, sizeof(host), "%s", t->host);
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon != NULL) {
        port = colon + (host[0] == '[' ? 2 : 1);
        *colon = '\0';
    }
    char *name = host[0] == '[' ? host + 1 : host;
    if (host[0] == '[' && colon == NULL)
        name[strcspn(name, "]")] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(name, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, err_size, "%s: cannot resolve \"%s\" port \"%s\": %s", url, name, port,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (t->tls) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == NULL)
            abort(); /* out of memory */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_default_verify_paths(ctx); /* the system's CAs, or $SSL_CERT_FILE */
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        t->tls_ctx = ctx;
    }
    return 0;
}

void ctl_ws_target_dispose(ctl_ws_target_t *t)
{
    SSL_CTX_free(t->tls_ctx);
    t->tls_ctx = NULL;
}

/* ---- state --------------------------------------------------------------- */

static ctl_ws_state_t fail(ctl_ws_t *ws, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static ctl_ws_state_t fail(ctl_ws_t *ws, const char *fmt, ...)
{
    if (ws->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ws->error, sizeof(ws->error), fmt, ap);
        va_end(ap);
    }
    if (ws->fd >= 0)
        close(ws->fd);
    ws->fd = -1;
    ws->state = CTL_WS_CLOSED;
    return ws->state;
}

/* ---- bytes, plain or through TLS ---------------------------------------- */

/* The error of a failed TLS call, as a sentence in ws->error. */
static void tls_error(ctl_ws_t *ws, const char *what)
{
    long v = SSL_get_verify_result(ws->ssl);
    char buf[160];
    unsigned long e = ERR_get_error();
    if (v != X509_V_OK)
        snprintf(buf, sizeof(buf), "certificate not trusted: %s", X509_verify_cert_error_string(v));
    else if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "%s", errno ? strerror(errno) : "the peer closed it");
    ERR_clear_error();
    fail(ws, "TLS %s with %s: %s", what, ws->name, buf);
}

/* > 0 bytes read, 0 the peer closed, -1 it would block (ws->want says for
 * what), -2 an error (ws->eof: -errno, or the handle failed with a TLS
 * error). */
static ssize_t io_read(ctl_ws_t *ws, void *buf, size_t len)
{
    if (ws->ssl == NULL) {
        ssize_t n = recv(ws->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return ws->want = POLLIN, -1;
        return ws->eof = -errno, -2;
    }
    ERR_clear_error();
    int n = SSL_read(ws->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(ws->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return ws->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, -1;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return 0;
    tls_error(ws, "read");
    return -2;
}

static ssize_t io_write(ctl_ws_t *ws, const void *buf, size_t len, int more)
{
    if (ws->ssl == NULL) {
        ssize_t n = send(ws->fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return ws->want = POLLOUT, -1;
        return ws->eof = -errno, -2;
    }
    ERR_clear_error();
    int n = SSL_write(ws->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(ws->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return ws->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, -1;
    tls_error(ws, "write");
    return -2;
}

int ctl_ws_fd(const ctl_ws_t *ws)
{
    return ws->fd;
}

ctl_ws_state_t ctl_ws_state(const ctl_ws_t *ws)
{
    return ws->state;
}

const char *ctl_ws_error(const ctl_ws_t *ws)
{
    return ws->error;
}

int ctl_ws_http_status(const ctl_ws_t *ws)
{
    return ws->http_status;
}

int ctl_ws_close_code(const ctl_ws_t *ws)
{
    return ws->close_code;
}

short ctl_ws_events(const ctl_ws_t *ws)
{
    if (ws->state == CTL_WS_CLOSED)
        return 0;
    if (!ws->connected)
        return POLLOUT;
    if (ws->ssl != NULL && !ws->tls_done)
        return ws->want;
    if (ws->req != NULL)
        return ws->want ? ws->want : POLLOUT;
    if (ws->ctx == NULL)
        return POLLIN | ws->want;
    return (short)((wslay_event_want_read(ws->ctx) ? POLLIN : 0) |
                   (wslay_event_want_write(ws->ctx) ? POLLOUT : 0) | (ws->ssl ? ws->want : 0));
}

/* ---- wslay's side --------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    ctl_ws_t *ws = user;
    if (ws->resp_off < ws->resp_len) { /* what came with the 101 first */
        size_t n = ws->resp_len - ws->resp_off < len ? ws->resp_len - ws->resp_off : len;
        memcpy(buf, ws->resp + ws->resp_off, n);
        ws->resp_off += n;
        return (ssize_t)n;
    }
    ssize_t n = io_read(ws, buf, len);
    if (n > 0)
        return n;
    if (n == -1) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n == 0)
        ws->eof = 1;
    else if (ws->eof == 0)
        ws->eof = -EPROTO; /* a TLS error, already in ws->error */
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ctl_ws_t *ws = user;
    ssize_t n = io_write(ws, data, len, flags & WSLAY_MSG_MORE); /* frames queued together */
    if (n >= 0)
        return n;
    if (n == -1)
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    else {
        if (ws->eof == 0)
            ws->eof = -EPROTO;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    ctl_ws_t *ws = user;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        if (ws->cb.on_message)
            ws->cb.on_message(ws, (const char *)arg->msg, arg->msg_length, ws->user);
    } else if (arg->opcode == WSLAY_PONG) {
        if (ws->cb.on_pong)
            ws->cb.on_pong(ws, arg->msg, arg->msg_length, ws->user);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->close_code = arg->status_code;
    }
}

/* ---- the opening handshake ----------------------------------------------- */

ctl_ws_t *ctl_ws_open(const ctl_ws_target_t *t, const char *path_query, const char *bearer,
                      const ctl_ws_cb_t *cb, void *user)
{
    ctl_ws_t *ws = core_xcalloc(1, sizeof(*ws));
    ws->cb = *cb;
    ws->user = user;
    ws->state = CTL_WS_CONNECTING;
    uint8_t nonce[16];
    unsigned char key[32], digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        ws->fd = -1;
        fail(ws, "no random bytes for the handshake key");
        return ws;
    }
    EVP_EncodeBlock(key, nonce, sizeof(nonce));
    char *both = core_xasprintf("%s" WS_GUID, (const char *)key);
    EVP_Digest(both, strlen(both), digest, &dlen, EVP_sha1(), NULL);
    free(both);
    EVP_EncodeBlock((unsigned char *)ws->accept, digest, (int)dlen);
    ws->req = core_xasprintf("GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                             "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                             t->path, path_query, t->host, (const char *)key,
                             bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                             bearer ? "\r\n" : "");
    ws->req_len = strlen(ws->req);
    ws->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ws->fd < 0) {
        fail(ws, "socket: %s", strerror(errno));
        return ws;
    }
    int one = 1;
    setsockopt(ws->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(ws->fd, (const struct sockaddr *)&t->addr, t->addr_len) == 0)
        ws->connected = 1;
    else if (errno != EINPROGRESS)
        fail(ws, "connect to %s: %s", t->host, strerror(errno));
    snprintf(ws->name, sizeof(ws->name), "%s", t->name);
    if (t->tls_ctx != NULL && ws->state != CTL_WS_CLOSED) {
        ws->ssl = SSL_new(t->tls_ctx);
        if (ws->ssl == NULL)
            abort(); /* out of memory */
        SSL_set_fd(ws->ssl, ws->fd);
        SSL_set_connect_state(ws->ssl);
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, t->name, ip) == 1 || inet_pton(AF_INET6, t->name, ip) == 1;
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ws->ssl), t->name);
        else {
            SSL_set_tlsext_host_name(ws->ssl, t->name);
            SSL_set1_host(ws->ssl, t->name);
        }
        ws->want = POLLOUT;
    }
    return ws;
}

/* The status line and the Sec-WebSocket-Accept of a complete answer head. */
static ctl_ws_state_t check_answer(ctl_ws_t *ws, size_t head_len)
{
    int major, minor, status;
    if (sscanf(ws->resp, "HTTP/%d.%d %d", &major, &minor, &status) != 3)
        return fail(ws, "the upgrade's answer is not HTTP");
    ws->http_status = status;
    if (status != 101) {
        /* the error body, when it came with the head: one line of it */
        char body[160];
        snprintf(body, sizeof(body), "%.*s", (int)(ws->resp_len - head_len), ws->resp + head_len);
        for (char *p = body; *p; p++)
            if (*p == '\r' || *p == '\n')
                *p = ' ';
        return fail(ws, "the upgrade was answered HTTP %d%s%s", status, body[0] ? ": " : "", body);
    }
    ws->resp[head_len - 2] = '\0'; /* search the head only */
    const char *a = strcasestr(ws->resp, "\r\nSec-WebSocket-Accept:");
    if (a == NULL)
        return fail(ws, "the 101 has no Sec-WebSocket-Accept");
    a += strlen("\r\nSec-WebSocket-Accept:");
    while (*a == ' ' || *a == '\t')
        a++;
    size_t al = strcspn(a, "\r\n");
    while (al > 0 && (a[al - 1] == ' ' || a[al - 1] == '\t'))
        al--;
    if (al != strlen(ws->accept) || memcmp(a, ws->accept, al) != 0)
        return fail(ws, "the 101's Sec-WebSocket-Accept does not match the key");
    ws->resp_off = head_len;
    struct wslay_event_callbacks cbs = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, on_msg};
    if (wslay_event_context_client_init(&ws->ctx, &cbs, ws) != 0)
        abort(); /* out of memory, as core_xmalloc does */
    ws->state = CTL_WS_OPEN;
    return ws->state;
}

/* The TCP connect's outcome, then the TLS handshake (wss://). Returns 1
 * when both are done, 0 while waiting, -1 when the handle failed. */
static int connect_io(ctl_ws_t *ws)
{
    if (!ws->connected) {
        int e = 0;
        socklen_t el = sizeof(e);
        if (getsockopt(ws->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0)
            return fail(ws, "connect: %s", strerror(e ? e : errno)), -1;
        ws->connected = 1;
    }
    if (ws->ssl == NULL || ws->tls_done)
        return 1;
    ERR_clear_error();
    int rc = SSL_connect(ws->ssl);
    if (rc == 1) {
        ws->tls_done = 1;
        ws->want = 0;
        return 1;
    }
    int e = SSL_get_error(ws->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ws->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    tls_error(ws, "handshake");
    return -1;
}

static ctl_ws_state_t handshake_io(ctl_ws_t *ws)
{
    int rc = connect_io(ws);
    if (rc <= 0)
        return ws->state;
    ws->want = 0;
    while (ws->req != NULL) {
        ssize_t n = io_write(ws, ws->req + ws->req_off, ws->req_len - ws->req_off, 0);
        if (n < 0)
            return n == -1 ? ws->state : fail(ws, "sending the upgrade: %s", strerror(-ws->eof));
        ws->req_off += (size_t)n;
        if (ws->req_off == ws->req_len) {
            free(ws->req);
            ws->req = NULL;
        }
    }
    for (;;) { /* until it would block: TLS may hold more than the socket shows */
        ssize_t n = io_read(ws, ws->resp + ws->resp_len, RESP_MAX - ws->resp_len);
        if (n == -1)
            return ws->state;
        if (n == -2)
            return fail(ws, "reading the upgrade's answer: %s", strerror(-ws->eof));
        if (n == 0)
            return fail(ws, "the server closed the connection before answering the upgrade");
        ws->resp_len += (size_t)n;
        ws->resp[ws->resp_len] = '\0';
        char *end = strstr(ws->resp, "\r\n\r\n");
        if (end != NULL)
            return check_answer(ws, (size_t)(end + 4 - ws->resp));
        if (ws->resp_len == RESP_MAX)
            return fail(ws, "the upgrade's answer head is over %d bytes", RESP_MAX);
    }
}

/* ---- frames -------------------------------------------------------------- */

static ctl_ws_state_t after_io(ctl_ws_t *ws, int rc)
{
    if (rc != 0 || ws->eof != 0) {
        if (ws->close_code != 0 && ws->eof == 1)
            return fail(ws, "the server closed the socket (code %d)", ws->close_code);
        if (ws->eof == 1)
            return fail(ws, "the server closed the connection without a close frame");
        return fail(ws, "socket error: %s", ws->eof < 0 ? strerror(-ws->eof) : "bad frame");
    }
    if (wslay_event_get_close_received(ws->ctx) || wslay_event_get_close_sent(ws->ctx))
        ws->state = CTL_WS_CLOSING;
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        int code = ws->close_code;
        if (!wslay_event_get_close_sent(ws->ctx) || !wslay_event_get_close_received(ws->ctx) ||
            code == 1000)
            return fail(ws, "%s", code == 1000 ? "" : "the connection ended");
        return fail(ws, "the server closed the socket (code %d)", code);
    }
    return ws->state;
}

ctl_ws_state_t ctl_ws_io(ctl_ws_t *ws, short revents)
{
    if (ws->state == CTL_WS_CLOSED)
        return ws->state;
    if (ws->ctx == NULL) {
        if (handshake_io(ws) != CTL_WS_OPEN)
            return ws->state;
        revents |= POLLIN; /* frames may have come with the 101, or wait inside TLS */
    }
    int rc = 0;
    ws->in_io = 1;
    if ((revents & (POLLIN | POLLHUP | POLLERR) || ws->ssl != NULL) &&
        wslay_event_want_read(ws->ctx))
        rc = wslay_event_recv(ws->ctx); /* TLS: a write may have been waiting for a read */
    ws->in_io = 0;
    if (rc == 0 && ws->eof == 0 && wslay_event_want_write(ws->ctx))
        rc = wslay_event_send(ws->ctx);
    return after_io(ws, rc);
}

static int queue(ctl_ws_t *ws, uint8_t opcode, const void *data, size_t len)
{
    if (ws->state != CTL_WS_OPEN)
        return -1;
    struct wslay_event_msg m = {opcode, data, len};
    if (wslay_event_queue_msg(ws->ctx, &m) != 0)
        return -1;
    if (!ws->in_io) /* else ctl_ws_io sends it with the rest a callback queued */
        after_io(ws, wslay_event_send(ws->ctx));
    return 0;
}

int ctl_ws_send_text(ctl_ws_t *ws, const char *text, size_t len)
{
    return queue(ws, WSLAY_TEXT_FRAME, text, len);
}

int ctl_ws_ping(ctl_ws_t *ws, const void *payload, size_t len)
{
    return queue(ws, WSLAY_PING, payload, len);
}

int ctl_ws_close(ctl_ws_t *ws, int code, const char *reason)
{
    if (ws->state != CTL_WS_OPEN)
        return -1;
    if (wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, strlen(reason)) !=
        0)
        return -1;
    if (!ws->in_io)
        after_io(ws, wslay_event_send(ws->ctx));
    return 0;
}

void ctl_ws_free(ctl_ws_t *ws)
{
    if (ws == NULL)
        return;
    SSL_free(ws->ssl);
    if (ws->fd >= 0)
        close(ws->fd);
    if (ws->ctx != NULL)
        wslay_event_context_free(ws->ctx);
    free(ws->req);
    free(ws);
}
