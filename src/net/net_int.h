/* net_int.h — structures shared by the files of src/net (not a contract).
 *
 * A connection (net_conn_t) owns its socket, one lazy deadline timer, an
 * llhttp parser, a FIFO of requests (answered in order) and two output
 * buffers: `out` collects responses while `wr` is being written by uv_write.
 * A request's strings live in its hbuf, addressed by offsets so the buffer
 * may grow while headers arrive. Requests are recycled through a free list
 * on the server, so steady-state keep-alive traffic does not allocate. */
#ifndef CHORUS_NET_INT_H
#define CHORUS_NET_INT_H

#include <llhttp.h>
#include <wslay/wslay.h>

#include "chorus/net.h"

typedef struct net_conn_s net_conn_t;

/* A growable output buffer without a limit (limits are enforced by pausing
 * reads, see conn_update_read). */
typedef struct net_obuf_s {
    char *data;
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} net_obuf_t;

void net__obuf_reserve(net_obuf_t *b, size_t extra);
void net__obuf_put(net_obuf_t *b, const void *p, size_t n);
void net__obuf_puts(net_obuf_t *b, const char *s);
void net__obuf_put_u64(net_obuf_t *b, uint64_t v);
void net__obuf_free(net_obuf_t *b);

typedef struct net_seg_s {
    const char *text; /* into the route's pattern */
    uint32_t len;
    int param; /* 1 for {name} */
} net_seg_t;

struct net_route_s {
    struct net_route_s *next;  /* every route, in registration order */
    struct net_route_s *snext; /* the routes of its segment count, in that order */
    char *method;              /* owned; "GET" for WebSocket routes */
    char *pattern;             /* owned */
    net_seg_t *segs;
    size_t nsegs;
    size_t lit_len;    /* bytes of pattern + 1 before its first parameter: every match starts so */
    uint64_t lit_tail; /* the last 8 of those bytes as one word, when lit_len >= 8 */
    net_handler_fn fn;
    void *data;
    int is_ws;
    net_ws_callbacks_t ws;
};

/* A path matches only routes with as many segments as it has, so routes are
 * also listed by segment count (the last list holds every longer one). */
#define NET_ROUTER_SEG_LISTS 16

struct net_router_s {
    struct net_route_s *head;
    struct net_route_s **tail;
    struct net_route_s *by_segs[NET_ROUTER_SEG_LISTS];
    struct net_route_s **by_segs_tail[NET_ROUTER_SEG_LISTS];
};

typedef struct net_off_s {
    uint32_t off; /* into hbuf */
    uint32_t len;
} net_off_t;

typedef struct net_hdr_s {
    net_off_t name, value;
} net_hdr_t;

typedef struct net_kv_s {
    net_off_t key, value;
} net_kv_t;

enum { REQ_PARSING = 0, REQ_HANDLING, REQ_DONE };

struct net_req_s {
    net_conn_t *conn; /* the connection; kept valid until the request is recycled */
    net_req_t *next;  /* connection queue or server free list */
    int state;        /* REQ_* */
    core_buf_t hbuf;  /* url, header names and values, decoded strings; NUL-separated */
    core_buf_t body;  /* decoded body */
    net_obuf_t resp;  /* the answer, when it came before earlier requests' */
    net_obuf_t xhdr;  /* extra response headers, "Name: value\r\n"... */
    net_hdr_t *hdrs;
    uint32_t nhdrs, hdrs_cap;
    net_kv_t *query;
    uint32_t nquery, query_cap;
    struct {
        const char *name;
        uint32_t name_len;
        net_off_t value;
    } params[NET_MAX_PARAMS];
    uint32_t nparams;
    uint32_t piece_off;  /* where the url/header piece being received starts */
    size_t header_bytes; /* head bytes on the wire so far (net_http.c) */
    net_off_t path, qs;  /* raw path and query string */
    const char *method;  /* static */
    int method_id;       /* llhttp_method_t */
    int headers_done;
    int http10;       /* an HTTP/1.0 request (its answer says keep-alive when kept) */
    int head;         /* HEAD: no body in the answer */
    int keep_alive;   /* from llhttp at message completion */
    int close_after;  /* the answer closes the connection */
    int upgrade;      /* a WebSocket handshake that was accepted */
    int early_status; /* answer decided while parsing (404, 405, 413...) */
    const char *early_code, *early_msg;
    char allow[96];
    const struct net_route_s *route;
    net_abort_fn abort_fn;
    void *abort_data;
    uint64_t start_us;
    int status;
    size_t resp_bytes;
    char id[65];
    char client[48]; /* net_req_client: the peer, or an X-Forwarded-For hop */
};

enum { PH_IDLE = 0, PH_HEADER, PH_BODY, PH_WAIT, PH_WS };

struct net_conn_s {
    net_server_t *srv;
    net_conn_t *prev, *next; /* server's list */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    int handles; /* open handles, freed at 0 */
    llhttp_t parser;
    net_req_t *cur;            /* request being parsed */
    net_req_t *qhead, **qtail; /* unanswered or unflushed requests, in order */
    uint32_t nqueued;          /* requests in the queue */
    net_obuf_t out;            /* collected, not yet handed to uv_write */
    net_obuf_t wr;             /* being written by uv_write */
    size_t wr_off;             /* bytes of wr already written */
    int writing;               /* a uv_write is in flight */
    core_buf_t pending;        /* received bytes not parsed yet (paused) */
    size_t pending_off;        /* parsed prefix of pending */
    int reading;               /* uv_read_start active */
    int in_read;               /* inside on_read: flush at its end */
    int parse_dead;            /* stop parsing: error, close or upgrade */
    int closing;               /* uv_close called */
    int lingering;             /* answered and shut down; dropping input until EOF */
    uv_shutdown_t shutreq;     /* for lingering */
    int close_after_flush;     /* close once out and wr are written */
    int err_status;            /* set by a callback that failed the parse */
    const char *err_code, *err_msg;
    uint64_t deadline;  /* uv_now ms, 0 = none */
    int partial_armed;  /* TLS: the header deadline runs for a record begun, not finished */
    double tokens;      /* rate limit bucket */
    uint64_t tokens_at; /* uv_now ms of the last refill */
    char remote[64];
    net_ws_t *ws; /* set once upgraded */
    int detached; /* no socket: output stays in out (tests, fuzzing) */
    /* WebSocket frames queued outside a read wait for the end of the loop
     * iteration (net__conn_pump_later), in srv->pumps */
    net_conn_t *pump_next;
    int pump_queued;

    /* per client limits and the obs-fold check (net_limit.c, net_http.c) */
    struct net_cl_ent_s *ip_ent; /* counts this connection against its peer (net_limit.c) */
    uint8_t peer[16];            /* the socket's peer, IPv6 or v4-mapped, read once */
    int8_t peer_known;           /* 1: peer is read, -1: unreadable, 0: not yet */
    char peer_name[46];          /* peer as text (INET6_ADDRSTRLEN), with peer */
    const char *pstart, *pend;   /* the buffer llhttp is parsing (obs-fold check) */
    const char *vend, *vbuf_end; /* where the header value's last span ended, in which buffer */
    uint32_t pseq, vseq, vspans; /* buffers parsed; the last span's buffer; spans of the value */
    const char *fend;            /* where the last header name span ended (buffer fseq) */
    uint32_t fseq;
    int gap_nl; /* a line feed after that name, in an earlier buffer */
    /* the head's bytes on the wire, against max_header_bytes (net_http.c) */
    const char *hmark;   /* counted up to here in the buffer being parsed */
    uint8_t hcount;      /* a head (or a trailer section) is being counted */
    uint8_t head_paused; /* llhttp paused at a head's (or trailers') end: net__head_end */
    /* TLS state on a TLS listener, else NULL (net_tls.c) */
    struct net_tls_conn_s *tls;
};

struct net_server_s {
    uv_loop_t *loop;
    net_limits_t lim;
    net_router_t *router;
    uv_tcp_t listener;
    int listening;
    int port;
    net_conn_t *conns;
    size_t nconns;
    net_req_t *free_reqs;
    size_t nfree;
    llhttp_settings_t settings;
    char rbuf[65536]; /* shared read buffer: each read is consumed before the next */
    net_obuf_t scratch;
    char head_limit_msg[64]; /* the 431 body's message, naming max_header_bytes */
    uint32_t rid_prefix;
    uint64_t rid_counter;
    net_obuf_t logbuf; /* request log lines not yet written */
    int64_t log_sec;   /* the second log_ts is for */
    char log_ts[40];   /* "2026-11-29T10:00:00." */
    /* runs at the end of every loop iteration (net__server_check_start):
     * writes logbuf and the WebSocket output deferred to it */
    uv_check_t iter_check;
    int iter_check_open;
    net_conn_t *pumps; /* connections whose WebSocket output waits for it */
    /* active while pumps is not empty: an idle handle keeps the loop from
     * blocking in poll before the check runs (output queued in the idle,
     * prepare or closing phase would otherwise wait for the next event) */
    uv_idle_t pump_idle;
    int pump_idle_open;
    char date[40]; /* "Date: ...\r\n" of the current second */
    int64_t date_sec;
    int draining;
    uv_timer_t drain_timer;
    int drain_timer_open;
    void (*drain_done)(net_server_t *s, void *data);
    void *drain_data;
    int drain_fired;
    struct net_climit_s *cl; /* per IP and per key buckets (net_limit.c), made lazily */
    /* the TLS listener, NULL when none (net_tls.c) */
    struct net_tls_srv_s *tls;
};

/* net_server.c */
void net__conn_close(net_conn_t *c);
void net__conn_flush(net_conn_t *c);
/* Starts s's end-of-iteration check once (a listener needs it). */
void net__server_check_start(net_server_t *s);
/* Writes c's queued WebSocket frames at the end of this loop iteration, all
 * in one write: frames sent to one socket from several callbacks of the
 * same iteration (a turn's end: "typing off", then the reply) share a
 * system call and a wake-up of the peer. At once when there is no check
 * (a detached connection). */
void net__conn_pump_later(net_conn_t *c);
void net__conn_write_now(net_conn_t *c);
void net__conn_update_read(net_conn_t *c);
void net__conn_set_deadline(net_conn_t *c, uint64_t ms);
size_t net__conn_unsent(const net_conn_t *c);
void net__conn_process(net_conn_t *c, const char *data, size_t len);

void net__on_connection(uv_stream_t *ls, int status);

/* net_tls.c: the TLS layer under a connection (see chorus/net_tls.h).
 * accept: 0, or the caller closes; read: ciphertext in, plaintext to the
 * parser; seal: plaintext in c->out becomes ciphertext (0 or -1); ready:
 * the handshake is done; drain: closes the TLS listener. */
int net__tls_accept(net_conn_t *c);
void net__tls_read(net_conn_t *c, const char *data, size_t len);
int net__tls_seal(net_conn_t *c);
int net__tls_ready(const net_conn_t *c);
/* Whether the TLS layer holds the start of a record it cannot decrypt yet
 * (ciphertext that has produced no plaintext). */
int net__tls_partial(const net_conn_t *c);
void net__tls_conn_free(net_conn_t *c);
void net__tls_drain(net_server_t *s);
int net__tls_listening(const net_server_t *s);
void net__tls_server_free(net_server_t *s);

/* net_limit.c: per client IP and per API key limits, trusted proxies. */
void net__limits_clients_from_config(net_limits_t *l, const core_config_t *cfg);
/* At accept: 0, or the peer is over limits.per_ip_connections (answered
 * 429 when plain, and closed; the caller must not touch c any more). */
int net__limit_conn_open(net_conn_t *c, int plain);
void net__limit_conn_closed(net_conn_t *c);
/* After routing: sets req->client and takes a token from its IP's bucket;
 * when empty, sets req->early_status 429 with a Retry-After. */
void net__limit_request(net_conn_t *c, net_req_t *req);
void net__limit_free(net_server_t *s);
/* For tests: the client address of req were its socket peer `peer` (text);
 * and the entries in the IP (keys 0) or key table. */
int net__limit_client_for(const net_server_t *s, const net_req_t *req, const char *peer, char *out,
                          size_t size);
size_t net__limit_tracked(const net_server_t *s, int keys);

/* net_http.c: after each llhttp_execute, for the obs-fold check. */
void net__fold_tail(net_conn_t *c);
/* Counting a head across buffers: at the start of each buffer parsed, and
 * at its end when llhttp took all of it (0, or HPE_USER with the 431 set). */
void net__head_buffer_start(net_conn_t *c);
int net__head_buffer_end(net_conn_t *c);
/* llhttp paused at a head's end, at pos (on_headers_complete): counts and
 * checks the head; or at a chunked body's trailer section's end
 * (on_chunk_complete): counts it. 0, or HPE_USER with conn->err_* set. */
int net__head_end(net_conn_t *c, const char *pos);

/* net_drain.c: calls the drain callback once everything is closed. */
void net__check_drained(net_server_t *s);

/* A connection without socket or timer, for unit tests and fuzz targets:
 * feed it bytes and read the answers from c->out. Handlers run as usual;
 * timeouts happen only when net__conn_timeout is called. Free it with
 * net__conn_free_detached (which aborts what is still queued). */
net_conn_t *net__conn_new_detached(net_server_t *s);
void net__conn_feed(net_conn_t *c, const char *data, size_t len);
void net__conn_timeout(net_conn_t *c);
void net__conn_free_detached(net_conn_t *c);

/* net_http.c */
void net__http_settings(llhttp_settings_t *s);
void net__http_init(net_conn_t *c);
void net__conn_update_timer(net_conn_t *c);

/* net_req.c */
net_req_t *net__req_get(net_server_t *s);
void net__req_recycle(net_server_t *s, net_req_t *req);
void net__req_free(net_req_t *req);
int net__req_parse_url(net_req_t *req);
int net__req_set_params(net_req_t *req, const net_match_t *m);
void net__req_set_id(net_req_t *req, net_server_t *s);

/* net_resp.c */
void net__resp_early(net_req_t *req, int status, const char *code, const char *msg);
void net__conn_advance(net_conn_t *c);
void net__req_log(net_req_t *req, int status, size_t bytes);
void net__log_flush(net_server_t *s);

/* net_json.c: compact JSON as json_dumpb(JSON_COMPACT) writes it; 0 or
 * CORE_ERR_INVALID (NaN, infinity, too deep), appending nothing then. */
int net__json_write(net_obuf_t *o, const json_t *j);
/* net_req_json.c: a body that is one object of plain ASCII string
 * members (no escapes, no duplicate key, at most 8), as the tree json_loadb
 * would give; NULL for anything else, which json_loadb then reads. */
json_t *net__json_flat(const char *body, size_t len);

/* net_ws.c */
void net__ws_handshake(net_req_t *req);
void net__ws_start(net_conn_t *c, net_req_t *req);
void net__ws_read(net_conn_t *c, const char *data, size_t len);
void net__ws_timer(net_conn_t *c);
void net__ws_gone(net_conn_t *c);
void net__ws_drain(net_conn_t *c);
void net__ws_writable(net_conn_t *c);
/* Writes what wslay has queued for c; closes once both closes were exchanged. */
void net__ws_pump(net_conn_t *c);
int net__ws_blocked(const net_conn_t *c);

#endif
