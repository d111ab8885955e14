/* The server: listening, accepting, the connection lifecycle (read, parse,
 * write, pause, time out, close) and draining.
 *
 * Reads pause (uv_read_stop) when a connection has max_pipelined requests
 * read and unanswered (one still being read does not count: it needs the
 * bytes a pause would hold back), when its unsent output passes
 * write_buffer_bytes, or when it
 * will not be read again (an error, Connection: close, an upgrade). Bytes
 * already read when a pause starts wait in conn->pending and are parsed when
 * it ends, so llhttp never sees a request twice and nothing is lost. */
#define LOG_MODULE "net"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

void net_limits_from_config(net_limits_t *l, const core_config_t *cfg)
{
    memset(l, 0, sizeof(*l));
    l->max_header_bytes = (size_t)cfg->http.max_header_bytes;
    l->max_headers = (uint32_t)cfg->http.max_headers;
    l->max_body_bytes = (size_t)cfg->http.max_body_bytes;
    l->max_connections = (uint32_t)cfg->http.max_connections;
    l->max_pipelined = (uint32_t)cfg->http.max_pipelined;
    l->header_timeout_ms = (uint64_t)cfg->http.header_timeout_ms;
    l->body_timeout_ms = (uint64_t)cfg->http.body_timeout_ms;
    l->idle_timeout_ms = (uint64_t)cfg->http.idle_timeout_ms;
    l->requests_per_second = (double)cfg->http.requests_per_second;
    l->request_burst = (double)cfg->http.request_burst;
    l->write_buffer_bytes = (size_t)cfg->http.write_buffer_bytes;
    l->ws_max_message_bytes = (size_t)cfg->websocket.max_message_bytes;
    l->ws_ping_interval_ms = (uint64_t)cfg->websocket.ping_interval_ms;
    l->ws_pong_timeout_ms = (uint64_t)cfg->websocket.pong_timeout_ms;
    l->ws_send_queue_bytes = (size_t)cfg->websocket.send_queue_bytes;
    l->ws_close_timeout_ms = l->ws_pong_timeout_ms;
    net__limits_clients_from_config(l, cfg);
}

/* The limits, and the 431 message that names the header limit, so that a
 * client learns what it went over (reloaded with the limit). */
static void limits_set(net_server_t *s, const net_limits_t *limits)
{
    s->lim = *limits;
    snprintf(s->head_limit_msg, sizeof(s->head_limit_msg),
             "request line and headers exceed %zu bytes", limits->max_header_bytes);
}

net_server_t *net_server_new(uv_loop_t *loop, const net_limits_t *limits, net_router_t *router)
{
    net_server_t *s = core_xcalloc(1, sizeof(*s));
    s->loop = loop;
    limits_set(s, limits);
    s->router = router;
    net__http_settings(&s->settings);
    if (uv_random(NULL, NULL, &s->rid_prefix, sizeof(s->rid_prefix), 0, NULL) != 0)
        s->rid_prefix = (uint32_t)core_wall_us();
    return s;
}

void net_server_set_limits(net_server_t *s, const net_limits_t *limits)
{
    limits_set(s, limits);
}

int net_server_port(const net_server_t *s)
{
    return s->port;
}

size_t net_server_connections(const net_server_t *s)
{
    return s->nconns;
}

void net_server_free(net_server_t *s)
{
    if (s == NULL)
        return;
    while (s->free_reqs) {
        net_req_t *r = s->free_reqs;
        s->free_reqs = r->next;
        net__req_free(r);
    }
    net__obuf_free(&s->scratch);
    net__obuf_free(&s->logbuf);
    net__limit_free(s);
    net__tls_server_free(s);
    free(s);
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* Sets the connection's deadline ms from now (0: none). The uv timer only
 * moves when the new deadline is earlier than the one it is armed for, so a
 * busy keep-alive connection does not touch the timer heap per request. */
void net__conn_set_deadline(net_conn_t *c, uint64_t ms)
{
    if (c->closing)
        return;
    if (ms == 0) {
        c->deadline = 0;
        return;
    }
    c->deadline = uv_now(c->srv->loop) + ms;
    if (c->detached)
        return;
    if (!uv_is_active((uv_handle_t *)&c->timer) || uv_timer_get_due_in(&c->timer) > ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void conn_fail(net_conn_t *c, int status, const char *code, const char *msg);

static void on_timer(uv_timer_t *t)
{
    net_conn_t *c = t->data;
    uint64_t now = uv_now(c->srv->loop);
    if (c->closing || c->deadline == 0)
        return;
    if (now < c->deadline) {
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    net__conn_timeout(c);
}

/* The deadline passed: what that means depends on the connection's phase. */
void net__conn_timeout(net_conn_t *c)
{
    c->deadline = 0;
    if (c->closing)
        return;
    if (c->lingering) {
        net__conn_close(c);
    } else if (c->ws) {
        net__ws_timer(c);
    } else if (c->cur && !c->parse_dead) {
        int body = c->cur->headers_done;
        LOG_INFO("event=timeout conn=%s phase=%s", c->remote, body ? "body" : "header");
        conn_fail(c, 408, "timeout", body ? "request body timed out" : "request headers timed out");
    } else if (net__conn_unsent(c) > 0) {
        LOG_INFO("event=timeout conn=%s phase=write unsent=%zu", c->remote, net__conn_unsent(c));
        net__conn_close(c);
    } else if (c->qhead == NULL) {
        LOG_DEBUG("event=idle_close conn=%s", c->remote);
        net__conn_close(c);
    }
}

/* ---- closing ------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    net_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    net_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->pump_queued) { /* closed before the end of the iteration it waited for */
        net_conn_t **pp = &s->pumps;
        while (*pp != c)
            pp = &(*pp)->pump_next;
        *pp = c->pump_next;
    }
    net__obuf_free(&c->out);
    net__obuf_free(&c->wr);
    core_buf_dispose(&c->pending);
    net__tls_conn_free(c);
    free(c);
    net__check_drained(s);
}

/* Ends every request still queued: those a handler still holds are aborted
 * (their abort callback runs) and logged as 499. */
static void abort_queue(net_conn_t *c)
{
    net_req_t *req = c->qhead;
    c->qhead = NULL;
    c->qtail = &c->qhead;
    c->nqueued = 0;
    c->cur = NULL;
    while (req) {
        net_req_t *next = req->next;
        if (req->state == REQ_HANDLING) {
            req->state = REQ_DONE; /* a late net_resp_* on it is ignored */
            if (req->abort_fn)
                req->abort_fn(req, req->abort_data);
            net__req_log(req, 499, 0);
        }
        net__req_recycle(c->srv, req);
        req = next;
    }
}

void net__conn_close(net_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    net__limit_conn_closed(c);
    if (c->ws)
        net__ws_gone(c);
    abort_queue(c);
    if (c->detached)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---- lingering close ----------------------------------------------------- */

enum { LINGER_MS = 2000 };

static void on_shutdown(uv_shutdown_t *r, int status)
{
    net_conn_t *c = r->data;
    if (status < 0 && !c->closing)
        net__conn_close(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Ends a connection whose last answer is written: closing at once while the
 * peer still sends would reset the connection, and a reset can destroy the
 * answer (a 413, a close frame) before the peer reads it. So send FIN, read
 * and drop whatever comes for at most LINGER_MS, then close. */
static void linger(net_conn_t *c)
{
    if (c->lingering || c->closing)
        return;
    if (c->detached) {
        net__conn_close(c);
        return;
    }
    if (c->ws)
        net__ws_gone(c);
    abort_queue(c);
    c->lingering = 1;
    c->shutreq.data = c;
    if (uv_shutdown(&c->shutreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        net__conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    uint64_t ms = c->srv->lim.idle_timeout_ms < LINGER_MS ? c->srv->lim.idle_timeout_ms : LINGER_MS;
    c->deadline = 0;
    net__conn_set_deadline(c, ms);
}

/* ---- writing ------------------------------------------------------------ */

size_t net__conn_unsent(const net_conn_t *c)
{
    return c->out.len + (c->wr.len - c->wr_off);
}

static void on_write(uv_write_t *w, int status)
{
    net_conn_t *c = w->data;
    c->writing = 0;
    c->wr.len = 0;
    c->wr_off = 0;
    if (c->closing)
        return;
    if (status < 0) {
        LOG_DEBUG("event=write_failed conn=%s error=%s", c->remote, uv_strerror(status));
        net__conn_close(c);
        return;
    }
    net__conn_flush(c);
    if (c->closing)
        return;
    if (c->ws)
        net__ws_writable(c);
    net__conn_update_read(c);
    net__conn_update_timer(c);
}

/* Hands c->out to the kernel: uv_try_write, and uv_write for what it did
 * not take (new output then collects in the other buffer). Never closes;
 * returns 0 or a libuv error. */
static int write_out(net_conn_t *c)
{
    if (c->closing || c->writing || c->detached)
        return 0;
    if (c->tls && net__tls_seal(c) != 0)
        return UV_EPROTO;
    if (c->out.len == 0)
        return 0;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)c->out.len) {
        c->out.len = 0;
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN)
        return n;
    net_obuf_t tmp = c->wr;
    c->wr = c->out;
    c->out = tmp;
    c->out.len = 0;
    c->wr_off = n > 0 ? (size_t)n : 0;
    b = uv_buf_init(c->wr.data + c->wr_off, (unsigned)(c->wr.len - c->wr_off));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0)
        return rc;
    c->writing = 1;
    if (c->ws == NULL)
        net__conn_set_deadline(c, c->srv->lim.idle_timeout_ms);
    return 0;
}

/* For output produced in bulk inside a read (WebSocket echoes): start
 * writing now instead of at the end of the read. Errors surface at the
 * next flush, which may close. */
void net__conn_write_now(net_conn_t *c)
{
    write_out(c);
}

void net__conn_flush(net_conn_t *c)
{
    if (c->closing || c->writing || c->in_read)
        return;
    if (c->detached) {
        if (c->close_after_flush)
            net__conn_close(c);
        return; /* output stays in c->out for the caller to inspect */
    }
    int rc = write_out(c);
    if (rc != 0) {
        LOG_DEBUG("event=write_failed conn=%s error=%s", c->remote, uv_strerror(rc));
        net__conn_close(c);
        return;
    }
    if (c->out.len == 0 && !c->writing && c->close_after_flush)
        linger(c);
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    net_conn_t *c = h->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static int should_pause(const net_conn_t *c)
{
    const net_limits_t *l = &c->srv->lim;
    if (net__conn_unsent(c) > l->write_buffer_bytes)
        return 1;
    if (c->ws)
        return net__ws_blocked(c);
    /* a request still being read (c->cur) is not read ahead: pausing for it
     * would wait for its own body, for ever when max_pipelined is 1 */
    return c->parse_dead || c->nqueued - (c->cur != NULL) >= l->max_pipelined;
}

/* Answers status (an error decided while parsing) in order, then closes. */
static void conn_fail(net_conn_t *c, int status, const char *code, const char *msg)
{
    net_req_t *req = c->cur;
    c->parse_dead = 1;
    if (req == NULL) {
        req = net__req_get(c->srv);
        req->conn = c;
        *c->qtail = req;
        c->qtail = &req->next;
        c->nqueued++;
    }
    c->cur = NULL;
    if (req->id[0] == '\0')
        net__req_set_id(req, c->srv);
    req->close_after = 1;
    req->state = REQ_HANDLING;
    net__resp_early(req, status, code, msg);
}

static void save_pending(net_conn_t *c, const char *data, size_t len, int from_pending)
{
    if (from_pending) {
        c->pending_off = c->pending.len - len;
        return;
    }
    c->pending.limit = (size_t)-1;
    core_buf_append(&c->pending, data, len);
    c->pending_off = 0;
}

/* llhttp paused at a request head's end, or a chunked body's trailer
 * section's (net_http.c): the head is counted and checked there, the
 * trailers counted, then parsing goes on with the rest of the buffer,
 * which *data and *len become. */
static llhttp_errno_t resume_after_head(net_conn_t *c, const char **data, size_t *len)
{
    const char *pos = llhttp_get_error_pos(&c->parser);
    llhttp_resume(&c->parser);
    if (net__head_end(c, pos) != 0)
        return HPE_USER;
    *len -= (size_t)(pos - *data);
    *data = pos;
    return llhttp_execute(&c->parser, pos, *len);
}

static void parse(net_conn_t *c, const char *data, size_t len, int from_pending)
{
    c->pseq++; /* for the obs-fold check (net_http.c) */
    c->pstart = data;
    c->pend = data + len;
    net__head_buffer_start(c);
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    while (e == HPE_PAUSED && c->head_paused)
        e = resume_after_head(c, &data, &len);
    if (e == HPE_OK && net__head_buffer_end(c) != 0)
        e = HPE_USER;
    net__fold_tail(c);
    if (e == HPE_OK) {
        if (from_pending) {
            core_buf_reset(&c->pending);
            c->pending_off = 0;
        }
        return;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (e == HPE_PAUSED)
            llhttp_resume(&c->parser);
        else
            llhttp_resume_after_upgrade(&c->parser);
        if (used < len && !c->closing && (!c->parse_dead || c->ws || c->qhead))
            save_pending(c, data + used, len - used, from_pending);
        else if (from_pending)
            core_buf_reset(&c->pending), c->pending_off = 0;
        return;
    }
    if (from_pending)
        core_buf_reset(&c->pending), c->pending_off = 0;
    if (c->parse_dead || c->closing)
        return;
    if (c->err_status) {
        LOG_INFO("event=bad_request conn=%s status=%d reason=%s", c->remote, c->err_status,
                 c->err_code);
        conn_fail(c, c->err_status, c->err_code, c->err_msg);
    } else {
        char why[160];
        LOG_INFO(
            "event=bad_request conn=%s status=400 reason=%s", c->remote,
            core_log_quote(why, sizeof(why), llhttp_get_error_reason(&c->parser), (size_t)-1, 100));
        conn_fail(c, 400, "bad_request", "malformed HTTP request");
    }
}

void net__conn_process(net_conn_t *c, const char *data, size_t len)
{
    if (c->ws)
        net__ws_read(c, data, len);
    else if (!c->parse_dead)
        parse(c, data, len, 0);
    else if (c->ws == NULL && c->qhead && c->qhead->upgrade)
        save_pending(c, data, len, 0); /* frames that came with the handshake */
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    net_conn_t *c = st->data;
    if (c->closing)
        return;
    if (c->lingering) {
        if (nread < 0)
            net__conn_close(c); /* the peer is done too */
        return;                 /* drop what it still sends */
    }
    if (nread < 0) {
        /* EOF or error: answers still owed are dropped, as nobody reads
         * them. A FIN may be a half-close (RFC 9112 9.6), but it is also how
         * a client that gave up hangs up (Twilio after its 15 s), and the
         * turn's abort is what sends a late SMS reply another way; as nginx
         * does by default (a 499), the request is taken as abandoned. */
        LOG_DEBUG("event=peer_closed conn=%s reason=%s", c->remote, uv_err_name((int)nread));
        net__conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->in_read = 1;
    if (c->tls)
        net__tls_read(c, buf->base, (size_t)nread);
    else
        net__conn_process(c, buf->base, (size_t)nread);
    c->in_read = 0;
    if (c->closing)
        return;
    net__conn_flush(c);
    if (c->closing)
        return;
    net__conn_update_read(c);
    if (!c->closing)
        net__conn_update_timer(c);
}

void net__conn_update_read(net_conn_t *c)
{
    if (c->closing || c->in_read || c->lingering)
        return;
    while (!should_pause(c) && c->pending_off < c->pending.len && !c->closing) {
        c->in_read = 1;
        size_t off = c->pending_off;
        if (c->ws) {
            core_buf_t p = c->pending;
            memset(&c->pending, 0, sizeof(c->pending));
            c->pending_off = 0;
            net__ws_read(c, p.data + off, p.len - off);
            core_buf_dispose(&p);
        } else {
            parse(c, c->pending.data + off, c->pending.len - off, 1);
        }
        c->in_read = 0;
        net__conn_flush(c);
    }
    if (c->closing || c->detached)
        return;
    int pause = should_pause(c);
    if (pause && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!pause && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
}

/* ---- accepting ---------------------------------------------------------- */

static void fill_remote(net_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->remote, sizeof(c->remote), "[%s]:%d", ip, port);
            return;
        }
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->remote, sizeof(c->remote), "%s:%d", ip, port);
}

/* Answers 503 without reading a request (the connection is over the cap),
 * then closes. */
static void refuse(net_conn_t *c)
{
    static const char body[] =
        "{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections\"}}";
    net_req_t *req = net__req_get(c->srv);
    net__req_set_id(req, c->srv);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nX-Request-Id: %s\r\n\r\n",
                     sizeof(body) - 1, req->id);
    net__req_recycle(c->srv, req);
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)body, sizeof(body) - 1)};
    uv_try_write((uv_stream_t *)&c->tcp, b, 2);
    net__conn_close(c);
}

void net__on_connection(uv_stream_t *ls, int status)
{
    net_server_t *s = ls->data;
    if (status < 0) {
        LOG_WARN("event=accept_failed error=%s", uv_strerror(status));
        return;
    }
    net_conn_t *c = core_xcalloc(1, sizeof(*c));
    c->srv = s;
    c->qtail = &c->qhead;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        LOG_WARN("event=accept_failed error=%s", uv_strerror(rc));
        net__conn_close(c);
        return;
    }
    fill_remote(c);
    if (s->nconns > s->lim.max_connections || s->draining) {
        LOG_WARN("event=connection_refused conn=%s reason=%s open=%zu", c->remote,
                 s->draining ? "draining" : "max_connections", s->nconns - 1);
        if (ls == (uv_stream_t *)&s->listener)
            refuse(c);
        else
            net__conn_close(c); /* no plaintext 503 to a TLS client */
        return;
    }
    if (net__limit_conn_open(c, ls == (uv_stream_t *)&s->listener) != 0)
        return;
    uv_tcp_nodelay(&c->tcp, 1);
    net__http_init(c);
    c->tokens = s->lim.request_burst;
    c->tokens_at = uv_now(s->loop);
    net__conn_set_deadline(c, s->lim.idle_timeout_ms);
    if (ls != (uv_stream_t *)&s->listener && net__tls_accept(c) != 0) {
        net__conn_close(c);
        return;
    }
    net__conn_update_read(c);
}

static void on_iteration_end(uv_check_t *h)
{
    net_server_t *s = h->data;
    while (s->pumps != NULL) {
        net_conn_t *c = s->pumps;
        s->pumps = c->pump_next;
        c->pump_next = NULL;
        c->pump_queued = 0;
        net__ws_pump(c);
    }
    uv_idle_stop(&s->pump_idle);
    if (s->logbuf.len)
        net__log_flush(s);
}

static void on_pump_idle(uv_idle_t *h)
{
    (void)h; /* its being active is what counts: poll does not block */
}

void net__server_check_start(net_server_t *s)
{
    if (s->iter_check_open)
        return;
    uv_check_init(s->loop, &s->iter_check);
    s->iter_check.data = s;
    uv_check_start(&s->iter_check, on_iteration_end);
    s->iter_check_open = 1;
    uv_idle_init(s->loop, &s->pump_idle);
    s->pump_idle.data = s;
    s->pump_idle_open = 1;
}

void net__conn_pump_later(net_conn_t *c)
{
    net_server_t *s = c->srv;
    if (c->pump_queued)
        return;
    if (!s->iter_check_open || uv_is_closing((uv_handle_t *)&s->iter_check) || c->detached) {
        net__ws_pump(c);
        return;
    }
    c->pump_queued = 1;
    c->pump_next = s->pumps;
    s->pumps = c;
    uv_idle_start(&s->pump_idle, on_pump_idle);
}

int net_server_listen(net_server_t *s, const char *host, int port, core_err_t *err)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "listen: \"%s\" is not a numeric IP address",
                            host);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = 1;
    net__server_check_start(s);
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, net__on_connection);
    if (rc != 0)
        return core_err_set(err, rc, "listen %s:%d: %s", host, port, uv_strerror(rc));
    int len = sizeof(ss);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}
