/* HTTP/1.1 request parsing: llhttp callbacks, limits, routing and dispatch.
 *
 * A callback that rejects the request sets conn->err_status (and a code and
 * message for the JSON error body) and returns HPE_USER; net__conn_process
 * then answers that status in order and closes the connection.
 *
 * http.max_header_bytes counts a head as it is on the wire, from the
 * method's first byte to the blank line's end: the spans llhttp reports
 * and the bytes between them (separators, whitespace it skips, line ends).
 * A span's end is a position in the buffer being parsed; a buffer's end
 * (net__head_buffer_end) and the head's end are the others. llhttp tells
 * no position at the head's end, so on_headers_complete pauses the parser
 * and the head is finished (net__head_end) where it stopped. A chunked
 * body's trailer section counts against the same limit, from its first
 * field through the blank line that ends it: on_chunk_complete pauses there
 * in the same way. */
#define LOG_MODULE "net"
#include <string.h>
#include <strings.h>

#include "net/net_int.h"

static net_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int fail(net_conn_t *c, int status, const char *code, const char *msg)
{
    c->err_status = status;
    c->err_code = code;
    c->err_msg = msg;
    return HPE_USER;
}

/* Requests a connection may take now, from its token bucket. */
static int take_token(net_conn_t *c)
{
    const net_limits_t *l = &c->srv->lim;
    uint64_t now = uv_now(c->srv->loop);
    c->tokens += (double)(now - c->tokens_at) * l->requests_per_second / 1000.0;
    if (c->tokens > l->request_burst)
        c->tokens = l->request_burst;
    c->tokens_at = now;
    if (c->tokens < 1.0)
        return 0;
    c->tokens -= 1.0;
    return 1;
}

static int on_message_begin(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    net_server_t *s = c->srv;
    c->hcount = 0; /* the method's first byte starts the head (head_count) */
    net_req_t *req = net__req_get(s);
    req->conn = c;
    req->state = REQ_PARSING;
    *c->qtail = req;
    c->qtail = &req->next;
    c->nqueued++;
    c->cur = req;
    net__conn_set_deadline(c, s->lim.header_timeout_ms);
    if (!take_token(c))
        return fail(c, 429, "rate_limited", "too many requests on this connection");
    return 0;
}

static int too_large(net_conn_t *c)
{
    return fail(c, 431, "headers_too_large", c->srv->head_limit_msg);
}

/* Counts the head's bytes up to end, in the buffer being parsed, from
 * where counting stopped (the last span's end or the buffer's start) or,
 * when it has not started, from start: the head's (or the trailer
 * section's) first byte. */
static int head_count(net_conn_t *c, const char *start, const char *end)
{
    net_req_t *req = c->cur;
    if (!c->hcount) {
        c->hcount = 1;
        c->hmark = start;
    }
    req->header_bytes += (size_t)(end - c->hmark);
    c->hmark = end;
    return req->header_bytes > c->srv->lim.max_header_bytes ? too_large(c) : 0;
}

void net__head_buffer_start(net_conn_t *c)
{
    if (c->hcount)
        c->hmark = c->pstart;
}

int net__head_buffer_end(net_conn_t *c)
{
    return c->hcount && c->cur ? head_count(c, c->pend, c->pend) : 0;
}

/* Counts a piece of the request line or headers and keeps it. A chunked
 * body's trailer fields are counted and dropped, never merged into the
 * header section (RFC 9110 6.5.1): an Authorization or Origin sent as a
 * trailer, past a proxy that checks headers, must not be read as one. */
static int head_bytes(net_conn_t *c, const char *at, size_t len)
{
    net_req_t *req = c->cur;
    if (head_count(c, at, at + len) != 0)
        return HPE_USER;
    if (!req->headers_done && core_buf_append(&req->hbuf, at, len) != 0)
        return too_large(c);
    return 0;
}

/* The method is not kept (llhttp's number is), only counted: its first
 * byte is the head's. */
static int on_method(llhttp_t *p, const char *at, size_t len)
{
    net_conn_t *c = conn_of(p);
    return head_count(c, at, at + len);
}

/* RFC 9110 token characters, the only ones allowed in a header name. */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int piece_done(net_req_t *req, net_off_t *out)
{
    out->off = req->piece_off;
    out->len = (uint32_t)(req->hbuf.len - req->piece_off);
    if (core_buf_append(&req->hbuf, "", 1) != 0)
        return -1;
    req->piece_off = (uint32_t)req->hbuf.len;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    return head_bytes(conn_of(p), at, len);
}

static int on_url_complete(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    if (piece_done(c->cur, &c->cur->path) != 0)
        return too_large(c);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    net_conn_t *c = conn_of(p);
    c->fend = at + len;
    c->fseq = c->pseq;
    c->gap_nl = 0;
    return head_bytes(c, at, len);
}

static int has_lf(const char *from, const char *to)
{
    return to > from && memchr(from, '\n', (size_t)(to - from)) != NULL;
}

/* After each buffer: a line feed between a field name and its value (still
 * to come) is a fold whose continuation lands in a later buffer. */
void net__fold_tail(net_conn_t *c)
{
    if (c->cur && !c->cur->headers_done && c->fend && c->vspans == 0)
        c->gap_nl |= has_lf(c->fseq == c->pseq ? c->fend : c->pstart, c->pend);
}

static int on_header_field_complete(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    net_req_t *req = c->cur;
    if (req->headers_done) /* a trailer: dropped (head_bytes) */
        return 0;
    if (req->nhdrs >= c->srv->lim.max_headers)
        return fail(c, 431, "too_many_headers", "too many header fields");
    if (req->nhdrs == req->hdrs_cap) {
        req->hdrs_cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
        req->hdrs = core_xrealloc(req->hdrs, req->hdrs_cap * sizeof(*req->hdrs));
    }
    if (piece_done(req, &req->hdrs[req->nhdrs].name) != 0)
        return too_large(c);
    const net_off_t *name = &req->hdrs[req->nhdrs].name;
    for (uint32_t i = 0; i < name->len; i++)
        if (!is_tchar((unsigned char)req->hbuf.data[name->off + i]))
            return fail(c, 400, "bad_request", "invalid header name");
    return name->len ? 0 : fail(c, 400, "bad_request", "empty header name");
}

/* llhttp accepts obs-fold (a value continued on a line starting with
 * whitespace) and hands the pieces over as separate spans with the fold
 * skipped; a proxy may read that header differently, so refuse it (RFC 9112
 * 5.2). The first span of a value follows its name with no line feed
 * between; a later span is legitimate only where the previous read ended:
 * at the start of the next buffer, after a span that ran to the end of its
 * own. Anything else skipped a line: a fold. */
static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    net_conn_t *c = conn_of(p);
    if (len == 0)
        return 0; /* an empty value is reported as a span at the line's end */
    int fold;
    if (c->vspans++ == 0)
        fold = c->gap_nl || has_lf(c->fseq == c->pseq ? c->fend : c->pstart, at);
    else if (c->vseq == c->pseq)
        fold = at != c->vend;
    else
        fold = c->vend != c->vbuf_end || at != c->pstart || c->vseq + 1 != c->pseq;
    if (fold)
        return fail(c, 400, "bad_request", "obsolete line folding in a header");
    c->vseq = c->pseq;
    c->vend = at + len;
    c->vbuf_end = c->pend;
    return head_bytes(c, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    net_req_t *req = c->cur;
    c->vspans = 0;
    if (req->headers_done) /* a trailer: dropped (head_bytes) */
        return 0;
    net_off_t *v = &req->hdrs[req->nhdrs].value;
    if (piece_done(req, v) != 0)
        return too_large(c);
    /* llhttp drops leading whitespace; drop the trailing too (RFC 9112 5.1) */
    while (v->len > 0 && (req->hbuf.data[v->off + v->len - 1] == ' ' ||
                          req->hbuf.data[v->off + v->len - 1] == '\t'))
        req->hbuf.data[v->off + --v->len] = '\0';
    req->nhdrs++;
    return 0;
}

/* Smuggling shapes llhttp may let through in some modes: refuse them all.
 * Also the Host rule: exactly one in HTTP/1.1 (RFC 9112 3.2), at most one
 * in HTTP/1.0. */
/* Whether a Transfer-Encoding value ends in "chunked" (a request whose
 * does not has no length at all: llhttp refuses it, 400). */
static int ends_in_chunked(const char *v, size_t n)
{
    return n >= 7 && strcasecmp(v + n - 7, "chunked") == 0 &&
           (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ' || v[n - 8] == '\t');
}

static int check_framing(net_conn_t *c, net_req_t *req)
{
    /* llhttp parses any digit pair; only HTTP/1.0 and 1.1 are served */
    if (c->parser.http_major != 1 || c->parser.http_minor > 1)
        return fail(c, 505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
    int cl = 0, te = 0, host = 0, chunked_only = 1, chunked_last = 0;
    for (uint32_t i = 0; i < req->nhdrs; i++) {
        const char *name = req->hbuf.data + req->hdrs[i].name.off;
        if (strcasecmp(name, "Content-Length") == 0) {
            cl++;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            te++;
            const char *v = req->hbuf.data + req->hdrs[i].value.off;
            chunked_only &= strcasecmp(v, "chunked") == 0;
            chunked_last = ends_in_chunked(v, req->hdrs[i].value.len);
        } else if (strcasecmp(name, "Host") == 0) {
            host++;
        }
    }
    if (cl > 1 || (cl && te) || te > 1)
        return fail(c, 400, "bad_request", "ambiguous message framing");
    /* a coding this server does not decode (gzip, ...) would reach the
     * handler still encoded, and a proxy in front may have framed it
     * otherwise (RFC 9112 6.1) */
    if (te && !chunked_only && chunked_last)
        return fail(c, 501, "not_implemented", "Transfer-Encoding: only chunked is accepted");
    if (te && c->parser.http_major == 1 && c->parser.http_minor == 0)
        return fail(c, 400, "bad_request", "Transfer-Encoding in HTTP/1.0"); /* RFC 9112 6.1 */
    if (host > 1 || (host == 0 && c->parser.http_minor >= 1))
        return fail(c, 400, "bad_request", "an HTTP/1.1 request needs exactly one Host header");
    return 0;
}

/* Decides how the request will be answered once its body is in. */
static void route(net_conn_t *c, net_req_t *req)
{
    net_match_t m;
    int rc = net_router_match(c->srv->router, req->method, net_req_path(req), req->path.len, &m);
    if (rc == CORE_ERR_NOT_FOUND) {
        req->early_status = 404;
        req->early_code = "not_found";
        req->early_msg = "no such resource";
    } else if (rc == CORE_ERR_UNSUPPORTED) {
        req->early_status = 405;
        req->early_code = "method_not_allowed";
        req->early_msg = "method not allowed on this resource";
        memcpy(req->allow, m.allow, sizeof(req->allow));
    } else if (net__req_set_params(req, &m) != 0) {
        req->early_status = 400;
        req->early_code = "bad_request";
        req->early_msg = "bad path encoding";
    } else {
        req->route = m.route;
        if (m.route->is_ws && !c->parser.upgrade) {
            req->early_status = 426;
            req->early_code = "upgrade_required";
            req->early_msg = "this resource speaks WebSocket only";
        }
    }
}

/* The head is in: check it as a whole and decide how it is answered. */
static int head_complete(net_conn_t *c)
{
    llhttp_t *p = &c->parser;
    net_req_t *req = c->cur;
    const net_limits_t *l = &c->srv->lim;
    req->headers_done = 1;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    req->method_id = p->method;
    req->method = llhttp_method_name((llhttp_method_t)p->method);
    req->head = p->method == HTTP_HEAD;
    net__req_set_id(req, c->srv);
    if (check_framing(c, req) != 0)
        return HPE_USER;
    if (p->method == HTTP_CONNECT || net__req_parse_url(req) != 0)
        return fail(c, 400, "bad_request", "bad request target");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > l->max_body_bytes)
        return fail(c, 413, "body_too_large", "request body is too large");
    route(c, req);
    net__limit_request(c, req);
    if (p->upgrade && (req->route == NULL || !req->route->is_ws || req->early_status)) {
        /* bytes after an upgrade request are not HTTP: answer and close */
        req->close_after = 1;
        if (!req->early_status) {
            req->early_status = 400;
            req->early_code = "bad_request";
            req->early_msg = "upgrade not supported on this resource";
        }
    }
    const char *expect = net_req_header(req, "Expect");
    if (expect && strcasecmp(expect, "100-continue") != 0)
        return fail(c, 417, "expectation_failed", "unsupported Expect");
    if (expect && req->early_status == 0 && c->qhead == req && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        net__obuf_put(&c->out, cont, sizeof(cont) - 1);
        net__conn_flush(c);
    } else if (expect && req->early_status) {
        req->close_after = 1; /* the client may or may not send the body: don't read it */
        return fail(c, req->early_status, req->early_code, req->early_msg);
    }
    net__conn_set_deadline(c, l->body_timeout_ms);
    return 0;
}

/* Pauses the parser where the head ends: net__head_end counts the
 * last bytes and checks the head from there, before any body is read. */
static int on_headers_complete(llhttp_t *p)
{
    conn_of(p)->head_paused = 1;
    return HPE_PAUSED;
}

/* The same at a trailer section's end: llhttp completes the last chunk
 * after the blank line that ends its trailers. Only a section with fields
 * is counted (hcount): a body's final CRLF alone is no trailer section, so
 * a chunked request's head of exactly the limit passes. A data chunk's end
 * comes with nothing being counted. */
static int on_chunk_complete(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    if (!c->hcount || c->cur == NULL || !c->cur->headers_done)
        return 0;
    c->head_paused = 1;
    return HPE_PAUSED;
}

int net__head_end(net_conn_t *c, const char *pos)
{
    int trailers = c->cur->headers_done;
    c->head_paused = 0;
    int rc = head_count(c, pos, pos);
    c->hcount = 0;
    return rc != 0 || trailers ? rc : head_complete(c);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    net_conn_t *c = conn_of(p);
    net_req_t *req = c->cur;
    if (req->early_status)
        return 0; /* read and drop: the answer is already decided */
    if (core_buf_append(&req->body, at, len) != 0)
        return fail(c, 413, "body_too_large", "request body is too large");
    return 0;
}

static void dispatch(net_conn_t *c, net_req_t *req)
{
    req->state = REQ_HANDLING;
    if (req->early_status) {
        net__resp_early(req, req->early_status, req->early_code, req->early_msg);
    } else if (req->route->is_ws) {
        net__ws_handshake(req);
    } else {
        req->route->fn(req, req->route->data);
    }
}

static int on_message_complete(llhttp_t *p)
{
    net_conn_t *c = conn_of(p);
    net_server_t *s = c->srv;
    net_req_t *req = c->cur;
    c->cur = NULL;
    c->hcount = 0; /* counting ended with the head or trailer section (net__head_end) */
    req->keep_alive = llhttp_should_keep_alive(p) && !s->draining && !req->close_after;
    if (!req->keep_alive || p->upgrade)
        c->parse_dead = 1;
    net__conn_update_timer(c);
    dispatch(c, req); /* may answer and recycle req at once */
    if (c->parse_dead || c->closing)
        return HPE_PAUSED;
    if (c->nqueued >= s->lim.max_pipelined || net__conn_unsent(c) > s->lim.write_buffer_bytes)
        return HPE_PAUSED;
    return 0;
}

void net__http_settings(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_method = on_method;
    s->on_url = on_url;
    s->on_url_complete = on_url_complete;
    s->on_header_field = on_header_field;
    s->on_header_field_complete = on_header_field_complete;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_chunk_complete = on_chunk_complete;
    s->on_message_complete = on_message_complete;
}

void net__http_init(net_conn_t *c)
{
    llhttp_init(&c->parser, HTTP_REQUEST, &c->srv->settings);
    c->parser.data = c;
}

/* Picks the deadline for the connection's state. */
void net__conn_update_timer(net_conn_t *c)
{
    const net_limits_t *l = &c->srv->lim;
    if (c->ws || c->lingering || c->closing)
        return;
    if (c->tls && !net__tls_ready(c))
        return; /* the handshake keeps the deadline it got on accept */
    if (c->cur)
        return; /* header/body deadlines were set when the phase began */
    if (c->tls && net__tls_partial(c)) {
        /* a record begun, not finished: like a request's first byte, it
         * starts the header deadline, which more of it never extends (a
         * byte a minute would hold the connection for ever) */
        if (!c->partial_armed)
            net__conn_set_deadline(c, l->header_timeout_ms);
        c->partial_armed = 1;
        return;
    }
    c->partial_armed = 0;
    if (c->qhead || net__conn_unsent(c) > 0) {
        /* waiting on a handler: no deadline; on a slow reader: idle timeout */
        c->deadline = 0;
        if (net__conn_unsent(c) > 0)
            net__conn_set_deadline(c, l->idle_timeout_ms);
        return;
    }
    net__conn_set_deadline(c, l->idle_timeout_ms);
}
