/* net_client.h — outbound HTTP(S) on the libuv loop: business backends and
 * LLM endpoints called by the runtime.
 *
 * Built on libcurl's multi interface driven by the loop
 * (curl_multi_socket_action + one uv_poll_t per socket + one uv_timer_t), so
 * a transfer never blocks the loop: DNS runs on curl's resolver thread, and
 * connect, TLS, send and receive progress as the sockets become ready.
 *
 * Threads: loop thread only. Every function and every callback runs on the
 * thread that runs the loop passed to net_client_new().
 *
 * Ownership: net_client_new()/net_client_close(). A request's method, URL,
 * headers and body are copied when it starts; the caller may free them as soon
 * as net_client_request() returns. The response passed to the completion
 * callback is borrowed: it is freed when the callback returns (take the body
 * with net_client_response_steal_body() to keep it).
 *
 * Callbacks: net_client_request() either fails at once (bad URL, client
 * closing: returns a negative code and the callback never runs) or returns 0,
 * and then the callback runs exactly once, later, from the loop: when the
 * transfer completes, fails, times out, is cancelled (UV_ECANCELED) or the
 * client closes (CORE_ERR_CLOSED). Never from inside net_client_request().
 *
 * Errors: an HTTP status (200, 404, 500) is not an error: resp->error is 0 and
 * resp->status holds it; the caller decides what a 5xx means and whether to
 * retry (retries and backoff belong to the caller). resp->error is negative
 * when no complete response arrived: CORE_ERR_TIMEOUT (the request's
 * timeout), UV_ECONNREFUSED, UV_EAI_NONAME (DNS), CORE_ERR_LIMIT (body larger
 * than max_response_bytes), CORE_ERR_PROTOCOL (malformed or truncated
 * response, TLS failure), CORE_ERR_IO (other transport failures),
 * UV_ECANCELED, CORE_ERR_CLOSED. resp->error_msg then says what happened.
 *
 * See docs/runtime.md. */
#ifndef CHORUS_NET_CLIENT_H
#define CHORUS_NET_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chorus/core.h"

typedef struct net_client_s net_client_t;
typedef struct net_client_xfer_s net_client_xfer_t;

typedef struct net_client_options_s {
    size_t max_transfers;        /* concurrent transfers; more fail with CORE_ERR_BUSY (0: 1024) */
    uint64_t default_timeout_ms; /* when a request gives 0 (0: 10000) */
    size_t default_max_response; /* bytes, when a request gives 0 (0: 1 MiB) */
    long max_host_connections;   /* per host:port kept open (0: 16) */
    const char *user_agent;      /* borrowed, copied (NULL: "chorus/<version>") */
} net_client_options_t;

typedef struct net_client_header_s {
    const char *name;  /* borrowed, copied on start */
    const char *value; /* borrowed, copied on start */
} net_client_header_t;

typedef struct net_client_request_s {
    const char *method;                 /* "GET", "POST", ...; NULL means GET */
    const char *url;                    /* http:// or https:// only */
    const net_client_header_t *headers; /* extra request headers, may be NULL */
    size_t n_headers;
    const char *body;            /* request body, may be NULL */
    size_t body_len;             /* bytes of body */
    uint64_t timeout_ms;         /* whole transfer, connect to last byte; 0: client default */
    uint64_t connect_timeout_ms; /* 0: min(timeout_ms, 10000) */
    size_t max_response_bytes;   /* larger bodies fail with CORE_ERR_LIMIT; 0: client default */
    int insecure;                /* 1 turns TLS peer/host verification off (tests only) */
} net_client_request_t;

typedef struct net_client_response_s {
    int error;                /* 0 when a complete response arrived, else negative (see top) */
    const char *error_msg;    /* "" when error is 0; a human message otherwise */
    int status;               /* HTTP status, 0 when none arrived */
    const char *body;         /* NUL-terminated after body_len bytes; never NULL */
    size_t body_len;          /* bytes */
    const char *content_type; /* the Content-Type header, "" when absent */
    int64_t retry_after_s;    /* Retry-After in seconds, -1 when absent or a date */
    uint64_t duration_us;     /* from net_client_request() to completion */
    void *data;               /* the data pointer given to net_client_request() */
    void *internal;           /* private to net_client */
} net_client_response_t;

typedef void (*net_client_done_cb)(net_client_response_t *resp);
typedef void (*net_client_closed_cb)(void *data);

/* Certificate verification of every outbound https call in the process
 * (it is on by default, against the system's CA bundle): ca_file is a PEM
 * bundle used instead of the system's for every host; ca_files, `host=path`
 * comma-separated, gives single hosts their own bundle; insecure_hosts,
 * comma-separated, lists hosts whose certificates are not verified at all
 * (the caller logs that). NULL or "" leaves each unset. Call at startup,
 * before any request, on the loop thread; the strings are copied, a later
 * call replaces everything. Returns CORE_ERR_INVALID for a malformed list
 * or CORE_ERR_IO for an unreadable file, naming it; nothing is set then. */
int net_client_set_tls(const char *ca_file, const char *ca_files, const char *insecure_hosts,
                       core_err_t *err);

/* Creates a client on loop (borrowed, must outlive the client). opts may be
 * NULL for the defaults. Returns 0 and sets *out, or a negative code. */
int net_client_new(uv_loop_t *loop, const net_client_options_t *opts, net_client_t **out,
                   core_err_t *err);

/* Starts a transfer. On 0, cb runs exactly once later with data in resp->data,
 * and *xfer (if out_xfer is not NULL) identifies the transfer for
 * net_client_cancel() until cb runs. On failure returns CORE_ERR_INVALID (bad
 * request), CORE_ERR_BUSY (max_transfers reached) or CORE_ERR_CLOSED, fills
 * err, and cb never runs. */
int net_client_request(net_client_t *c, const net_client_request_t *req, net_client_done_cb cb,
                       void *data, net_client_xfer_t **out_xfer, core_err_t *err);

/* Aborts a transfer whose callback has not run yet: its callback runs at once,
 * from inside this call, with error UV_ECANCELED. */
void net_client_cancel(net_client_xfer_t *xfer);

/* Takes ownership of the response body, NUL-terminated (free() it); the
 * response then has an empty body. Only inside the completion callback. */
char *net_client_response_steal_body(net_client_response_t *resp, size_t *len);

/* Number of transfers whose callback has not run yet. */
size_t net_client_active(const net_client_t *c);

/* Shuts the client down: every transfer in flight is aborted and its callback
 * runs from inside this call with CORE_ERR_CLOSED; then the libuv handles are
 * closed and, once they are, the client is freed and closed(data) runs (may be
 * NULL). Requests started after this fail with CORE_ERR_CLOSED. Accepts NULL. */
void net_client_close(net_client_t *c, net_client_closed_cb closed, void *data);

#endif
