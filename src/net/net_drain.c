/* Draining (stop accepting, let in-flight requests finish, close the rest
 * after a timeout) and the socket-less connections of tests and fuzzers. */
#define LOG_MODULE "net"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/net_int.h"

/* ---- draining ----------------------------------------------------------- */

static void on_drain_timer_closed(uv_handle_t *h)
{
    net_server_t *s = h->data;
    s->drain_timer_open = 0;
    net__check_drained(s);
}

static void on_iter_check_closed(uv_handle_t *h)
{
    net_server_t *s = h->data;
    s->iter_check_open = 0;
    net__check_drained(s);
}

static void on_pump_idle_closed(uv_handle_t *h)
{
    net_server_t *s = h->data;
    s->pump_idle_open = 0;
    net__check_drained(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    net_server_t *s = h->data;
    s->listening = 0;
    net__check_drained(s);
}

void net__check_drained(net_server_t *s)
{
    if (!s->draining || s->nconns > 0 || s->listening || net__tls_listening(s) || s->drain_fired)
        return;
    if (s->iter_check_open) {
        net__log_flush(s);
        if (!uv_is_closing((uv_handle_t *)&s->iter_check))
            uv_close((uv_handle_t *)&s->iter_check, on_iter_check_closed);
        return;
    }
    if (s->pump_idle_open) {
        if (!uv_is_closing((uv_handle_t *)&s->pump_idle))
            uv_close((uv_handle_t *)&s->pump_idle, on_pump_idle_closed);
        return;
    }
    if (s->drain_timer_open) {
        if (!uv_is_closing((uv_handle_t *)&s->drain_timer))
            uv_close((uv_handle_t *)&s->drain_timer, on_drain_timer_closed);
        return;
    }
    s->drain_fired = 1;
    LOG_INFO("event=drained");
    s->drain_done(s, s->drain_data);
}

static void on_drain_timeout(uv_timer_t *t)
{
    net_server_t *s = t->data;
    if (s->nconns > 0)
        LOG_WARN("event=drain_timeout open_connections=%zu action=closing", s->nconns);
    for (net_conn_t *c = s->conns; c; c = c->next)
        net__conn_close(c);
}

/* True when the connection owes nothing and is not in the middle of a request. */
static int conn_idle(const net_conn_t *c)
{
    return c->cur == NULL && c->qhead == NULL && net__conn_unsent(c) == 0;
}

void net_server_drain(net_server_t *s, uint64_t timeout_ms,
                      void (*done)(net_server_t *s, void *data), void *data)
{
    assert(!s->draining);
    s->draining = 1;
    s->drain_done = done;
    s->drain_data = data;
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    net__tls_drain(s);
    uv_timer_init(s->loop, &s->drain_timer);
    s->drain_timer.data = s;
    s->drain_timer_open = 1;
    uv_timer_start(&s->drain_timer, on_drain_timeout, timeout_ms, 0);
    LOG_INFO("event=drain connections=%zu timeout_ms=%llu", s->nconns,
             (unsigned long long)timeout_ms);
    for (net_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->ws)
            net__ws_drain(c);
        else if (conn_idle(c))
            net__conn_close(c);
        else
            c->close_after_flush = c->qhead == NULL && c->cur == NULL;
    }
    net__check_drained(s);
}

/* ---- connections without a socket (unit tests and fuzzing) --------------- */

net_conn_t *net__conn_new_detached(net_server_t *s)
{
    net_conn_t *c = core_xcalloc(1, sizeof(*c));
    c->srv = s;
    c->detached = 1;
    c->qtail = &c->qhead;
    snprintf(c->remote, sizeof(c->remote), "detached:0");
    net__http_init(c);
    c->tokens = s->lim.request_burst;
    c->tokens_at = uv_now(s->loop);
    return c;
}

void net__conn_feed(net_conn_t *c, const char *data, size_t len)
{
    c->in_read = 1;
    net__conn_process(c, data, len);
    c->in_read = 0;
    net__conn_flush(c);
    net__conn_update_read(c);
}

void net__conn_free_detached(net_conn_t *c)
{
    if (c == NULL)
        return;
    net__conn_close(c);
    net__obuf_free(&c->out);
    net__obuf_free(&c->wr);
    core_buf_dispose(&c->pending);
    free(c);
}
