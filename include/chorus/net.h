/* net.h — chorus's network layer: an HTTP/1.1 server (llhttp) with a router,
 * request/response helpers and WebSocket (RFC 6455, framing by wslay) on the
 * same port. Channels, admin and the runtime register routes here.
 *
 * Threads: loop thread only. Every object belongs to the libuv loop it was
 * created on; nothing here may be touched from another thread (hand work
 * back with uv_async_send first).
 *
 * Ownership: net_server_new()/net_server_free(), net_router_new()/
 * net_router_free(). The server borrows the router, which must outlive it.
 * A net_req_t belongs to the server: a handler borrows it from the call until
 * it answers (net_resp_*) or until its abort callback runs, whichever comes
 * first; afterwards the pointer is invalid. A net_ws_t is valid from on_open
 * until on_close returns. Strings returned by accessors are borrowed from the
 * request and NUL-terminated.
 *
 * Errors: 0 or a negative CORE_ERR_* / libuv code, with core_err_t filled
 * where one is passed. Bad input from clients never reaches the caller as an
 * error: it is answered (4xx, or a WebSocket close code), logged, and the
 * server keeps serving everyone else.
 *
 * Behaviour, limits and status codes: docs/http.md. */
#ifndef CHORUS_NET_H
#define CHORUS_NET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chorus/config.h"
#include "chorus/core.h"

typedef struct net_server_s net_server_t;
typedef struct net_router_s net_router_t;
typedef struct net_req_s net_req_t;
typedef struct net_ws_s net_ws_t;

/* ---- limits ------------------------------------------------------------- */

enum { NET_MAX_TRUSTED = 32 };

/* An address prefix (limits.trusted_proxies). IPv4 is kept as an
 * IPv4-mapped IPv6 address, so bits counts from the 96th for it. */
typedef struct net_cidr_s {
    uint8_t addr[16];
    uint8_t bits; /* prefix length over the 128 bits */
} net_cidr_t;

/* Every limit the server enforces; see core_config_t for the meaning of each. */
typedef struct net_limits_s {
    size_t max_header_bytes;      /* request line + headers, bytes; more -> 431 */
    uint32_t max_headers;         /* header fields per request; more -> 431 */
    size_t max_body_bytes;        /* decoded body, bytes; more -> 413 */
    uint32_t max_connections;     /* open client connections; more are refused (503) */
    uint32_t max_pipelined;       /* unanswered requests per connection before reading pauses */
    uint64_t header_timeout_ms;   /* first byte to end of headers; then 408 */
    uint64_t body_timeout_ms;     /* end of headers to end of body; then 408 */
    uint64_t idle_timeout_ms;     /* keep-alive idle, and stalled writes; then close */
    double requests_per_second;   /* per connection token bucket rate; empty -> 429 */
    double request_burst;         /* per connection token bucket size */
    size_t write_buffer_bytes;    /* unsent bytes before reading from the peer pauses */
    size_t ws_max_message_bytes;  /* reassembled WebSocket message; more -> close 1009 */
    uint64_t ws_ping_interval_ms; /* server ping period */
    uint64_t ws_pong_timeout_ms;  /* no pong within this after a ping -> close */
    size_t ws_send_queue_bytes;   /* queued outgoing WebSocket bytes before sends fail */
    uint64_t ws_close_timeout_ms; /* an unsent close frame ends the connection after this */
    double ip_rps, ip_burst;      /* per client IP token bucket (net_limit.c); 0 rate: off */
    double key_rps, key_burst;    /* per API key bucket (net_req_take_key); 0 rate: off */
    uint32_t ip_connections;      /* open connections per socket peer; 0: off */
    uint32_t max_clients;         /* entries per table (IPs, keys); the idlest go */
    uint32_t ntrusted;            /* trusted proxies whose X-Forwarded-For is believed */
    net_cidr_t trusted[NET_MAX_TRUSTED];
} net_limits_t;

/* Fills l from the http and websocket sections of cfg. */
void net_limits_from_config(net_limits_t *l, const core_config_t *cfg);

/* ---- routing ------------------------------------------------------------ */

/* Handles one request. Answer now or later with exactly one net_resp_*()
 * call; a handler that answers later must register an abort callback with
 * net_req_on_abort(). route_data is what the route was registered with. */
typedef void (*net_handler_fn)(net_req_t *req, void *route_data);

/* Runs instead of an answer when the connection dies before the handler
 * answered. The request is invalid once it returns. */
typedef void (*net_abort_fn)(net_req_t *req, void *data);

#define NET_WS_ANSWERED 1 /* on_upgrade: the refusal was answered by the callback */

/* WebSocket route callbacks. Every one is optional except on_message. */
typedef struct net_ws_callbacks_s {
    /* Before the 101: return 0 to accept, an HTTP status (>= 400) to refuse
     * with a JSON error, or NET_WS_ANSWERED when it answered the refusal
     * itself (net_resp_*). req is valid only during the call. */
    int (*on_upgrade)(net_req_t *req, void *route_data);
    /* After the 101 has been queued. Set the user pointer here. req (the
     * upgrade request: path parameters, headers) is valid only during the call. */
    void (*on_open)(net_ws_t *ws, net_req_t *req, void *route_data);
    /* One whole message (fragments reassembled). Text is valid UTF-8. data is
     * borrowed for the call. */
    void (*on_message)(net_ws_t *ws, int binary, const char *data, size_t len);
    /* Exactly once, when the connection is gone (close handshake done, peer
     * vanished, timeout or server drain). code is the peer's close code, or
     * 1006 when there was none. ws is invalid after it returns. */
    void (*on_close)(net_ws_t *ws, int code);
} net_ws_callbacks_t;

enum { NET_MAX_PARAMS = 8 };

/* The result of net_router_match (used by the server, tests and fuzzers). */
typedef struct net_match_s {
    const struct net_route_s *route; /* the route, NULL when none */
    size_t nparams;                  /* path parameters captured */
    struct {
        const char *name;  /* borrowed from the route's pattern, not NUL-terminated */
        size_t name_len;   /* bytes */
        const char *value; /* borrowed from the path (still percent-encoded) */
        size_t value_len;  /* bytes */
    } params[NET_MAX_PARAMS];
    char allow[96]; /* for a 405: the methods the path accepts, "GET, HEAD, POST" */
} net_match_t;

net_router_t *net_router_new(void);
void net_router_free(net_router_t *r);

/* Adds a route. method is an upper-case HTTP method ("GET", "POST", ...; GET
 * routes also answer HEAD); pattern is an absolute path whose segments are
 * literals or `{name}` parameters ("/v1/chat/conversations/{id}/messages"),
 * at most NET_MAX_PARAMS of them. A literal segment wins over a parameter at
 * the same place. Returns CORE_ERR_INVALID for a bad pattern, CORE_ERR_EXISTS
 * for a duplicate method + pattern. */
int net_router_add(net_router_t *r, const char *method, const char *pattern, net_handler_fn fn,
                   void *route_data, core_err_t *err);
/* Adds a WebSocket route (GET with an Upgrade handshake) on pattern; cb is
 * copied. A plain GET on it gets 426. */
int net_router_add_ws(net_router_t *r, const char *pattern, const net_ws_callbacks_t *cb,
                      void *route_data, core_err_t *err);

/* Matches method + path (no query string, len bytes). Returns 0 (m->route
 * set), CORE_ERR_NOT_FOUND (404) or CORE_ERR_UNSUPPORTED (405; m->allow set). */
int net_router_match(const net_router_t *r, const char *method, const char *path, size_t len,
                     net_match_t *m);

/* ---- the server --------------------------------------------------------- */

/* Creates a server on loop with limits (copied) that routes through router
 * (borrowed). Listens nowhere until net_server_listen(). */
net_server_t *net_server_new(uv_loop_t *loop, const net_limits_t *limits, net_router_t *router);

/* Binds host (a numeric IPv4 or IPv6 address) and port (0: any free port) and
 * starts accepting. Returns 0 or a libuv error with err set. */
int net_server_listen(net_server_t *s, const char *host, int port, core_err_t *err);
/* The port actually bound (port 0 resolved), 0 before listen. */
int net_server_port(const net_server_t *s);

/* Applies new limits (copied) now: to new connections and requests, and to
 * open connections from their next request or message. */
void net_server_set_limits(net_server_t *s, const net_limits_t *limits);

/* Stops accepting, closes idle connections, lets in-flight requests finish
 * (their connections then close) and sends WebSocket peers close 1001. After
 * timeout_ms whatever is left is closed (aborting unanswered requests). When
 * every handle is closed, done(s, data) runs once, on the loop. Calling it
 * twice is a bug. */
void net_server_drain(net_server_t *s, uint64_t timeout_ms,
                      void (*done)(net_server_t *s, void *data), void *data);

/* Frees the server. Its handles must be closed (net_server_drain has called
 * done), or it must never have listened. Accepts NULL. */
void net_server_free(net_server_t *s);

/* Open connections right now (HTTP and WebSocket). */
size_t net_server_connections(const net_server_t *s);

/* ---- requests ----------------------------------------------------------- */

typedef struct net_header_s {
    const char *name;  /* as sent, NUL-terminated */
    const char *value; /* NUL-terminated, surrounding whitespace removed */
} net_header_t;

const char *net_req_method(const net_req_t *req); /* "GET", "POST", ... */
const char *net_req_path(const net_req_t *req);   /* raw path, without the query */
/* The whole raw query string after '?', "" when none. */
const char *net_req_query_string(const net_req_t *req);
/* First query parameter called name, percent- and '+'-decoded; NULL if absent. */
const char *net_req_query(const net_req_t *req, const char *name);
/* Path parameter of the matched pattern ("id" for {id}), decoded; NULL if absent. */
const char *net_req_param(const net_req_t *req, const char *name);
/* First header called name (case-insensitive); NULL if absent. */
const char *net_req_header(const net_req_t *req, const char *name);
size_t net_req_header_count(const net_req_t *req);
/* Header i (0 <= i < count) into OUT: h. */
void net_req_header_at(const net_req_t *req, size_t i, net_header_t *h);
/* The decoded body (chunked encoding removed), NUL-terminated after len
 * bytes; "" with *len 0 when there is none. */
const char *net_req_body(const net_req_t *req, size_t *len);
/* Parses the body as JSON (at most one top-level value, no duplicate keys);
 * NULL with err set (position and reason) when it is not. The caller owns
 * the result. */
json_t *net_req_json(const net_req_t *req, core_err_t *err);
const char *net_req_remote(const net_req_t *req); /* "127.0.0.1:53122", "[::1]:53122" */
const char *net_req_id(const net_req_t *req);     /* the X-Request-Id of the answer */
/* The client's IP address ("203.0.113.7", no port): the socket peer, or the
 * rightmost untrusted hop of X-Forwarded-For when the peer is a trusted
 * proxy (limits.trusted_proxies). Valid once the headers are in. */
const char *net_req_client(const net_req_t *req);
/* Takes one request from key's token bucket (limits.per_key_rps, an API
 * key's name): 0 when allowed. When empty, adds Retry-After to the answer
 * and returns CORE_ERR_LIMIT: the caller answers 429. */
int net_req_take_key(net_req_t *req, const char *key);

/* Registers fn(req, data) to run if the connection dies before the answer;
 * replaces any earlier one. Required for handlers that answer later. */
void net_req_on_abort(net_req_t *req, net_abort_fn fn, void *data);

/* ---- responses (each ends the request; exactly one per request) ----------- */

/* Adds a response header before the answer. name and value must not contain
 * CR or LF (CORE_ERR_INVALID); Content-Length, Connection, Date and
 * X-Request-Id are set by the server. */
int net_resp_header(net_req_t *req, const char *name, const char *value);
/* Answers with status, a Content-Type (NULL for none) and len bytes of body
 * (copied). HEAD requests get the headers only. */
void net_resp_send(net_req_t *req, int status, const char *content_type, const void *body,
                   size_t len);
/* Answers with body (borrowed) serialized compactly as application/json. */
void net_resp_json(net_req_t *req, int status, const json_t *body);
/* Answers with {"error": {"code": code, "message": <formatted>}}. */
void net_resp_error(net_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The reason phrase for status ("Not Found"), "Unknown" when unknown. */
const char *net_status_reason(int status);

/* ---- WebSocket ---------------------------------------------------------- */

void *net_ws_data(const net_ws_t *ws);
void net_ws_set_data(net_ws_t *ws, void *data);
const char *net_ws_remote(const net_ws_t *ws);
const char *net_ws_id(const net_ws_t *ws); /* the upgrade request's id, for logs */

/* Queues a text message (must be valid UTF-8: CORE_ERR_INVALID otherwise) or
 * a binary one. Returns CORE_ERR_BUSY when the send queue would pass
 * websocket.send_queue_bytes, CORE_ERR_CLOSED once a close has been sent or
 * received. May be called from any callback or timer on the loop. */
int net_ws_send_text(net_ws_t *ws, const char *text, size_t len);
int net_ws_send_binary(net_ws_t *ws, const void *data, size_t len);

/* A text message framed once for many sockets (an event fed to every
 * subscriber): its UTF-8 is checked and its frame (header and payload; a
 * server's frames are unmasked, so every peer gets the same bytes) laid
 * out once, where net_ws_send_text() checks and copies the text again for
 * each socket. net_ws_frame_text() copies text and returns NULL when it is
 * not UTF-8. net_ws_send_frame() answers as net_ws_send_text() would for
 * the same text, and puts the same bytes on the wire: into the socket's
 * output at once (one copy) when nothing waits before it, else queued
 * behind what waits. The frame is the caller's: free it once sent to all. */
typedef struct net_ws_frame_s net_ws_frame_t;
net_ws_frame_t *net_ws_frame_text(const char *text, size_t len);
int net_ws_send_frame(net_ws_t *ws, const net_ws_frame_t *f);
void net_ws_frame_free(net_ws_frame_t *f);
/* Starts the close handshake with code and a short reason; on_close
 * follows when it completes or times out. CORE_ERR_INVALID for a code not
 * allowed on the wire (RFC 6455 7.4: 1000-1003, 1007-1014, 3000-4999). */
int net_ws_close(net_ws_t *ws, int code, const char *reason);

/* True if s (len bytes) is well-formed UTF-8 (no overlongs, no surrogates). */
int net_utf8_valid(const char *s, size_t len);

#endif
