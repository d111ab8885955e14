/* Responses: building the head and body, keeping answers in request order,
 * and the one log line per request.
 *
 * An answer to the request at the head of its connection's queue is written
 * straight into the connection's output buffer; an answer that comes before
 * an earlier request's waits in the request's own buffer until
 * net__conn_advance moves it out in order. Output is flushed once per read,
 * so pipelined answers leave in one write. */
#define LOG_MODULE "net"
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "net/net_int.h"

const char *net_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* The "Date: ...\r\n" line, formatted once per second. */
static const char *date_line(net_server_t *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        s->date_sec = now;
    }
    return s->date;
}

/* Writes the batched request log lines to stderr. */
void net__log_flush(net_server_t *s)
{
    size_t off = 0;
    while (off < s->logbuf.len) {
        ssize_t w = write(STDERR_FILENO, s->logbuf.data + off, s->logbuf.len - off);
        if (w <= 0 && errno != EINTR)
            break; /* nowhere to report a failed log write */
        off += w > 0 ? (size_t)w : 0;
    }
    s->logbuf.len = 0;
}

/* The one line per request, in the same format as core_log_write. Lines are
 * collected and written once per loop iteration (net_server.c's check
 * handle) rather than with one write(2) each: at tens of thousands of
 * requests a second the system calls would cost more than the requests. */
void net__req_log(net_req_t *req, int status, size_t bytes)
{
    if (core__log_level < CORE_LOG_INFO)
        return;
    net_server_t *s = req->conn->srv;
    net_obuf_t *o = &s->logbuf;
    char path[300];
    const char *p = req->hbuf.data && req->headers_done ? net_req_path(req) : "-";
    int64_t now = core_wall_us();
    if (now / 1000000 != s->log_sec) {
        /* "2026-11-29T10:00:00." is the same for a whole second */
        char ts[40];
        core_time_format(ts, sizeof(ts), now);
        const char *dot = strchr(ts, '.');
        size_t n = dot ? (size_t)(dot - ts) + 1 : strlen(ts);
        memcpy(s->log_ts, ts, n);
        s->log_ts[n] = '\0';
        s->log_sec = now / 1000000;
    }
    char us[8];
    int64_t frac = now % 1000000;
    for (int i = 5; i >= 0; i--, frac /= 10)
        us[i] = (char)('0' + frac % 10);
    net__obuf_reserve(o, 512);
    net__obuf_put(o, "ts=", 3);
    net__obuf_puts(o, s->log_ts);
    net__obuf_put(o, us, 6);
    net__obuf_puts(o, "Z level=info module=" LOG_MODULE " event=request method=");
    net__obuf_puts(o, req->method ? req->method : "-");
    net__obuf_put(o, " path=", 6);
    net__obuf_puts(o, core_log_quote(path, sizeof(path), p, (size_t)-1, 200));
    net__obuf_put(o, " status=", 8);
    net__obuf_put_u64(o, (uint64_t)status);
    net__obuf_put(o, " bytes=", 7);
    net__obuf_put_u64(o, bytes);
    net__obuf_put(o, " us=", 4);
    net__obuf_put_u64(o, core_now_us() - req->start_us);
    net__obuf_put(o, " rid=", 5);
    net__obuf_puts(o, req->id[0] ? req->id : "-");
    net__obuf_put(o, " conn=", 6);
    net__obuf_puts(o, req->conn->remote);
    const char *peer = req->conn->remote + (req->conn->remote[0] == '[');
    if (req->client[0] && strncmp(peer, req->client, strlen(req->client)) != 0) {
        net__obuf_put(o, " client=", 8); /* from a trusted proxy's X-Forwarded-For */
        net__obuf_puts(o, req->client);
    }
    net__obuf_put(o, "\n", 1);
    if (!s->iter_check_open || s->logbuf.len > 32 * 1024)
        net__log_flush(s);
}

/* Answers that never carry a body nor a Content-Length (RFC 9110 8.6). */
static int no_body(int status)
{
    return status < 200 || status == 204 || status == 304;
}

static void put_head(net_obuf_t *o, net_req_t *req, int status, const char *ctype, size_t len,
                     int close)
{
    net_server_t *s = req->conn->srv;
    const char *reason = net_status_reason(status);
    net__obuf_reserve(o, 256 + req->xhdr.len);
    net__obuf_put(o, "HTTP/1.1 ", 9);
    net__obuf_put_u64(o, (uint64_t)status);
    net__obuf_put(o, " ", 1);
    net__obuf_puts(o, reason);
    net__obuf_put(o, "\r\n", 2);
    net__obuf_puts(o, date_line(s));
    if (status == 101) {
        net__obuf_puts(o, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    } else {
        if (ctype) {
            net__obuf_put(o, "Content-Type: ", 14);
            net__obuf_puts(o, ctype);
            net__obuf_put(o, "\r\n", 2);
        }
        if (!no_body(status)) {
            net__obuf_put(o, "Content-Length: ", 16);
            net__obuf_put_u64(o, len);
            net__obuf_put(o, "\r\n", 2);
        }
        if (close)
            net__obuf_put(o, "Connection: close\r\n", 19);
        else if (req->http10) /* the request's own version, not the parser's now */
            net__obuf_put(o, "Connection: keep-alive\r\n", 24);
    }
    net__obuf_put(o, "X-Request-Id: ", 14);
    net__obuf_puts(o, req->id);
    net__obuf_put(o, "\r\n", 2);
    if (status != 101) /* no answer is to be sniffed into HTML or script */
        net__obuf_puts(o, "X-Content-Type-Options: nosniff\r\n");
    if (req->xhdr.len)
        net__obuf_put(o, req->xhdr.data, req->xhdr.len);
    net__obuf_put(o, "\r\n", 2);
}

void net_resp_send(net_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (req->state != REQ_HANDLING) {
        LOG_WARN("event=late_answer rid=%s status=%d reason=\"request already ended\"", req->id,
                 status);
        return;
    }
    net_conn_t *c = req->conn;
    if (status < 100 || status > 999)
        status = 500;
    int close = req->close_after || !req->keep_alive || c->srv->draining;
    net_obuf_t *o = c->qhead == req ? &c->out : &req->resp;
    size_t before = o->len;
    put_head(o, req, status, content_type, len, close);
    if (!req->head && !no_body(status))
        net__obuf_put(o, body, len);
    req->resp_bytes = o->len - before;
    req->status = status;
    req->close_after = close && status != 101;
    req->state = REQ_DONE;
    net__req_log(req, status, req->resp_bytes);
    net__conn_advance(c);
}

void net_resp_json(net_req_t *req, int status, const json_t *body)
{
    net_obuf_t *sc = &req->conn->srv->scratch;
    sc->len = 0;
    if (net__json_write(sc, body) != 0) {
        net_resp_error(req, 500, "internal", "response could not be serialized");
        return;
    }
    net_resp_send(req, status, "application/json", sc->data, sc->len);
}

void net_resp_error(net_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    if (j == NULL) {
        net_resp_send(req, status, "application/json", "{\"error\":{}}", 12);
        return;
    }
    net_resp_json(req, status, j);
    json_decref(j);
}

int net_resp_header(net_req_t *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || *name == '\0')
        return CORE_ERR_INVALID;
    net__obuf_puts(&req->xhdr, name);
    net__obuf_put(&req->xhdr, ": ", 2);
    net__obuf_puts(&req->xhdr, value);
    net__obuf_put(&req->xhdr, "\r\n", 2);
    return 0;
}

void net__resp_early(net_req_t *req, int status, const char *code, const char *msg)
{
    if (status == 405 && req->allow[0])
        net_resp_header(req, "Allow", req->allow);
    net_resp_error(req, status, code, "%s", msg);
}

/* Moves finished answers from the head of the queue to the output, in order,
 * then writes (unless inside a read, which writes once at its end). */
void net__conn_advance(net_conn_t *c)
{
    net_req_t *req;
    while ((req = c->qhead) != NULL && req->state == REQ_DONE) {
        if (req->resp.len)
            net__obuf_put(&c->out, req->resp.data, req->resp.len);
        c->qhead = req->next;
        if (c->qhead == NULL)
            c->qtail = &c->qhead;
        c->nqueued--;
        int close = req->close_after, upgrade = req->upgrade;
        if (upgrade)
            net__ws_start(c, req);
        net__req_recycle(c->srv, req);
        if (close) {
            c->close_after_flush = 1;
            c->parse_dead = 1;
            break;
        }
        if (upgrade)
            break;
    }
    if (c->qhead == NULL && c->cur == NULL && c->srv->draining && c->ws == NULL)
        c->close_after_flush = 1;
    if (c->in_read || c->closing)
        return;
    net__conn_flush(c);
    if (c->closing)
        return;
    net__conn_update_read(c);
    net__conn_update_timer(c);
}
