/* Outbound HTTP on the loop: libcurl's multi socket interface driven by
 * libuv. curl tells us which sockets to watch (on_curl_socket) and when to
 * wake it (on_curl_timer); we run curl_multi_socket_action from the uv_poll
 * and uv_timer callbacks and then collect finished transfers. Contract:
 * include/chorus/net_client.h. */
#define LOG_MODULE "net_client"
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"
#include "chorus/net_client.h"
#include "net/net_client_tls.h"

typedef struct sock_ctx_s sock_ctx_t;

struct sock_ctx_s {
    uv_poll_t poll;          /* watches fd for curl */
    curl_socket_t fd;        /* the socket curl opened */
    net_client_t *c;         /* owner */
    sock_ctx_t *prev, *next; /* c->socks list, so close can find every poll */
};

struct net_client_xfer_s {
    net_client_t *c;
    CURL *easy;
    struct curl_slist *headers; /* owned request headers */
    core_buf_t body;            /* response body, limited to max_response_bytes */
    int over_limit;             /* the write callback refused data past the limit */
    char content_type[128];     /* last response's Content-Type */
    int64_t retry_after_s;      /* -1 when absent */
    char errbuf[CURL_ERROR_SIZE];
    uint64_t start_us;
    net_client_done_cb cb;
    void *data;
    net_client_xfer_t *prev, *next; /* c->xfers list */
};

struct net_client_s {
    uv_loop_t *loop;  /* borrowed */
    CURLM *multi;     /* NULL once closing has cleaned it up */
    uv_timer_t timer; /* curl's single timeout */
    net_client_options_t opts;
    char *user_agent;         /* owned */
    net_client_xfer_t *xfers; /* transfers whose callback has not run */
    size_t active;            /* length of xfers */
    sock_ctx_t *socks;        /* polls not yet closing */
    int open_handles;         /* uv handles not yet closed (timer + polls) */
    int closing;              /* net_client_close() was called */
    net_client_closed_cb closed;
    void *closed_data;
};

static void check_done(net_client_t *c);

/* ---- libuv handle bookkeeping ------------------------------------------- */

static void client_maybe_free(net_client_t *c)
{
    if (!c->closing || c->open_handles > 0)
        return;
    net_client_closed_cb closed = c->closed;
    void *data = c->closed_data;
    free(c->user_agent);
    free(c);
    if (closed)
        closed(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    net_client_t *c = h->data;
    c->open_handles--;
    client_maybe_free(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_ctx_t *sc = h->data;
    net_client_t *c = sc->c;
    free(sc);
    c->open_handles--;
    client_maybe_free(c);
}

static void sock_close(sock_ctx_t *sc)
{
    net_client_t *c = sc->c;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        c->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    uv_poll_stop(&sc->poll);
    uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
}

/* ---- curl -> libuv ------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *sc = h->data;
    net_client_t *c = sc->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(c->multi, sc->fd, flags, &running);
    check_done(c);
}

static void on_timer(uv_timer_t *t)
{
    net_client_t *c = t->data;
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    net_client_t *c = userp;
    sock_ctx_t *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            if (c->multi != NULL)
                curl_multi_assign(c->multi, fd, NULL);
            sock_close(sc);
        }
        return 0;
    }
    if (sc == NULL) {
        sc = core_xcalloc(1, sizeof(*sc));
        sc->c = c;
        sc->fd = fd;
        if (uv_poll_init_socket(c->loop, &sc->poll, fd) != 0) {
            free(sc);
            return -1; /* curl fails this transfer */
        }
        sc->poll.data = sc;
        c->open_handles++;
        sc->next = c->socks;
        if (c->socks)
            c->socks->prev = sc;
        c->socks = sc;
        curl_multi_assign(c->multi, fd, sc);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    net_client_t *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else /* 0 means "as soon as possible": the next loop iteration, never reentrant */
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- transfer data ------------------------------------------------------ */

static size_t on_write(char *p, size_t size, size_t n, void *userp)
{
    net_client_xfer_t *x = userp;
    if (core_buf_append(&x->body, p, n) != 0) {
        x->over_limit = 1;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    return n;
}

/* Copies a header's value (after "name:") without surrounding blanks. */
static void header_value(const char *p, size_t n, char *out, size_t out_size)
{
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
        n--;
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
    net_client_xfer_t *x = userp;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue or a redirect): forget the last. */
        x->content_type[0] = '\0';
        x->retry_after_s = -1;
    } else if (n > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        header_value(p + 13, n - 13, x->content_type, sizeof(x->content_type));
    } else if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        char v[32];
        header_value(p + 12, n - 12, v, sizeof(v));
        char *end = NULL;
        long long s = strtoll(v, &end, 10);
        x->retry_after_s = (end != v && *end == '\0' && s >= 0) ? s : -1;
    }
    return n;
}

/* ---- completion --------------------------------------------------------- */

static int map_curl_error(CURLcode rc, const net_client_xfer_t *x)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return CORE_ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return UV_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return UV_EAI_NONAME;
    case CURLE_WRITE_ERROR:
        return x->over_limit ? CORE_ERR_LIMIT : CORE_ERR_IO;
    case CURLE_FILESIZE_EXCEEDED:
        return CORE_ERR_LIMIT;
    case CURLE_URL_MALFORMAT:
        return CORE_ERR_INVALID;
    case CURLE_PEER_FAILED_VERIFICATION:
        return CORE_ERR_DENIED;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* also "received HTTP/0.9": garbage instead of a status line
                                      */
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
        return CORE_ERR_PROTOCOL;
    default:
        return CORE_ERR_IO;
    }
}

static void xfer_unlink(net_client_xfer_t *x)
{
    net_client_t *c = x->c;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->active--;
}

/* Removes x from curl and from the client, runs its callback once, frees it.
 * error overrides curl's result when not 0 (cancel, close). */
static void xfer_finish(net_client_xfer_t *x, CURLcode rc, int error, const char *why)
{
    net_client_t *c = x->c;
    if (c->multi != NULL)
        curl_multi_remove_handle(c->multi, x->easy);
    xfer_unlink(x);

    net_client_response_t resp;
    memset(&resp, 0, sizeof(resp));
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    resp.status = (int)status;
    resp.error = error != 0 ? error : map_curl_error(rc, x);
    if (resp.error == 0)
        resp.error_msg = "";
    else if (error != 0)
        resp.error_msg = why;
    else if (x->over_limit)
        resp.error_msg = "response body larger than max_response_bytes";
    else
        resp.error_msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    resp.body = x->body.data ? x->body.data : "";
    resp.body_len = x->body.len;
    resp.content_type = x->content_type;
    resp.retry_after_s = x->retry_after_s;
    resp.duration_us = core_now_us() - x->start_us;
    resp.data = x->data;
    resp.internal = x;
    LOG_DEBUG("event=http_done status=%d error=%s duration_us=%llu bytes=%zu", resp.status,
              resp.error ? core_strerror(resp.error) : "none", (unsigned long long)resp.duration_us,
              resp.body_len);
    x->cb(&resp);

    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    core_buf_dispose(&x->body);
    free(x);
}

/* Collects every finished transfer. A callback may close the client, after
 * which the multi handle is gone and we must stop reading it. */
static void check_done(net_client_t *c)
{
    int pending = 0;
    CURLMsg *msg;
    while (c->multi != NULL && (msg = curl_multi_info_read(c->multi, &pending)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        net_client_xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        xfer_finish(x, msg->data.result, 0, NULL);
    }
}

/* ---- public API --------------------------------------------------------- */

int net_client_new(uv_loop_t *loop, const net_client_options_t *opts, net_client_t **out,
                   core_err_t *err)
{
    static int global_done;
    if (!global_done) {
        /* curl_global_init is not thread-safe; the loop thread calls it once. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return core_err_set(err, CORE_ERR_INTERNAL, "curl_global_init failed");
        global_done = 1;
    }
    net_client_t *c = core_xcalloc(1, sizeof(*c));
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    if (c->opts.max_transfers == 0)
        c->opts.max_transfers = 1024;
    if (c->opts.default_timeout_ms == 0)
        c->opts.default_timeout_ms = 10000;
    if (c->opts.default_max_response == 0)
        c->opts.default_max_response = 1024 * 1024;
    if (c->opts.max_host_connections == 0)
        c->opts.max_host_connections = 16;
    c->user_agent = c->opts.user_agent ? core_xstrdup(c->opts.user_agent)
                                       : core_xstrdup("chorus/" CHORUS_VERSION);
    c->opts.user_agent = NULL;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c->user_agent);
        free(c);
        return core_err_set(err, CORE_ERR_INTERNAL, "curl_multi_init failed");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->opts.max_host_connections);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
}

static int check_token(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || *s == '-'))
            return 0;
    return 1;
}

static int validate(const net_client_request_t *req, core_err_t *err)
{
    if (req->method != NULL && !check_token(req->method))
        return core_err_set(err, CORE_ERR_INVALID, "bad HTTP method \"%.32s\"", req->method);
    if (req->url == NULL ||
        (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0))
        return core_err_set(err, CORE_ERR_INVALID, "URL must start with http:// or https://");
    if (strpbrk(req->url, " \r\n\t") != NULL)
        return core_err_set(err, CORE_ERR_INVALID, "URL contains whitespace");
    for (size_t i = 0; i < req->n_headers; i++) {
        const net_client_header_t *h = &req->headers[i];
        if (h->name == NULL || *h->name == '\0' || h->value == NULL ||
            strpbrk(h->name, ":\r\n \t") != NULL || strpbrk(h->value, "\r\n") != NULL)
            return core_err_set(err, CORE_ERR_INVALID, "request header %zu is malformed", i);
    }
    return 0;
}

static void set_method_and_body(CURL *e, const net_client_request_t *req)
{
    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(m, "GET") != 0 || req->body != NULL) {
        /* POSTFIELDS makes curl send a body; CUSTOMREQUEST sets the verb. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
}

static struct curl_slist *build_headers(const net_client_request_t *req)
{
    struct curl_slist *list = NULL;
    /* No "Expect: 100-continue" round trip; servers here answer directly. */
    list = curl_slist_append(list, "Expect:");
    for (size_t i = 0; i < req->n_headers; i++) {
        char *line = core_xasprintf("%s: %s", req->headers[i].name, req->headers[i].value);
        list = curl_slist_append(list, line);
        free(line);
    }
    return list;
}

/* Every option of one transfer. */
static void easy_setup(net_client_t *c, net_client_xfer_t *x, const net_client_request_t *req,
                       size_t max, uint64_t timeout, uint64_t connect)
{
    CURL *e = x->easy;
    x->headers = build_headers(req);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    net__client_tls_apply(e, req->url, req->insecure); /* CA bundle, verification */
    set_method_and_body(e, req);
}

int net_client_request(net_client_t *c, const net_client_request_t *req, net_client_done_cb cb,
                       void *data, net_client_xfer_t **out_xfer, core_err_t *err)
{
    if (c->closing)
        return core_err_set(err, CORE_ERR_CLOSED, "HTTP client is closing");
    if (c->active >= c->opts.max_transfers)
        return core_err_set(err, CORE_ERR_BUSY, "too many outbound HTTP transfers (%zu)",
                            c->active);
    int rc = validate(req, err);
    if (rc != 0)
        return rc;
    net_client_xfer_t *x = core_xcalloc(1, sizeof(*x));
    x->c = c;
    x->cb = cb;
    x->data = data;
    x->retry_after_s = -1;
    size_t max = req->max_response_bytes ? req->max_response_bytes : c->opts.default_max_response;
    core_buf_init(&x->body, max);
    uint64_t timeout = req->timeout_ms ? req->timeout_ms : c->opts.default_timeout_ms;
    uint64_t connect =
        req->connect_timeout_ms ? req->connect_timeout_ms : (timeout < 10000 ? timeout : 10000);
    CURL *e = curl_easy_init();
    if (e == NULL) {
        core_buf_dispose(&x->body);
        free(x);
        return core_err_set(err, CORE_ERR_INTERNAL, "curl_easy_init failed");
    }
    x->easy = e;
    easy_setup(c, x, req, max, timeout, connect);

    x->start_us = core_now_us();
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->active++;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        xfer_unlink(x);
        curl_easy_cleanup(e);
        curl_slist_free_all(x->headers);
        core_buf_dispose(&x->body);
        free(x);
        return core_err_set(err, CORE_ERR_INTERNAL, "curl_multi_add_handle failed");
    }
    if (out_xfer)
        *out_xfer = x;
    return 0;
}

void net_client_cancel(net_client_xfer_t *xfer)
{
    if (xfer != NULL)
        xfer_finish(xfer, CURLE_OK, UV_ECANCELED, "request cancelled");
}

char *net_client_response_steal_body(net_client_response_t *resp, size_t *len)
{
    net_client_xfer_t *x = resp->internal;
    size_t n = 0;
    char *p = core_buf_steal(&x->body, &n);
    if (p == NULL)
        p = core_xstrdup("");
    if (len)
        *len = n;
    resp->body = "";
    resp->body_len = 0;
    return p;
}

size_t net_client_active(const net_client_t *c)
{
    return c->active;
}

void net_client_close(net_client_t *c, net_client_closed_cb closed, void *data)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->closed = closed;
    c->closed_data = data;
    while (c->xfers != NULL)
        xfer_finish(c->xfers, CURLE_OK, CORE_ERR_CLOSED, "HTTP client closed");
    CURLM *multi = c->multi;
    c->multi = NULL; /* on_curl_socket may run during cleanup; it must not reach back */
    curl_multi_cleanup(multi);
    while (c->socks != NULL)
        sock_close(c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}
