/* chorusd's HTTP and WebSocket listener and its routes.
 *
 * Each group of routes is registered by one small function (add_*_routes);
 * later modules add theirs beside them. Readiness is a list of checks, each
 * a function that says "ok" or why not, so the store's check joins the list
 * when the store exists. */
#define LOG_MODULE "chorusd"
#include <stdlib.h>
#include <string.h>

#include "chorus/admin.h"
#include "chorus/channels.h"
#include "chorus/core.h"
#include "chorus/net.h"
#include "cmd/chorusd.h"
#include "cmd/chorusd_runtime.h"

typedef struct http_s {
    net_router_t *router;
    net_server_t *server;
    void (*done)(daemon_t *d);
} http_t;

/* ---- operational endpoints ---------------------------------------------- */

/* A readiness check: returns NULL when ready, else a short reason. */
typedef const char *(*ready_check_fn)(daemon_t *d);

static const char *check_config(daemon_t *d)
{
    return d->cfg.listen != NULL ? NULL : "not loaded";
}

static const char *check_store(daemon_t *d)
{
    return d->store != NULL && store_ready(d->store) ? NULL : "failing";
}

/* Turns need a flowset in force: until the first load has compiled (a
 * large flowset trains its router for seconds), every channel answers 503,
 * and a load balancer should not send it traffic yet. Without a flows
 * directory there is nothing to serve. */
static const char *check_flows(daemon_t *d)
{
    if (d->flows_loaded)
        return NULL;
    return d->flows_missing ? "none" : "loading";
}

static const struct {
    const char *name;
    ready_check_fn fn;
} ready_checks[] = {
    {"config", check_config},
    {"store", check_store},
    {"flows", check_flows},
};

static void on_healthz(net_req_t *req, void *data)
{
    static const char body[] = "{\"status\":\"ok\"}";
    net_resp_send(req, 200, "application/json", body, sizeof(body) - 1);
}

static void on_readyz(net_req_t *req, void *data)
{
    daemon_t *d = data;
    json_t *checks = json_object();
    int ready = !d->stopping;
    for (size_t i = 0; i < sizeof(ready_checks) / sizeof(ready_checks[0]); i++) {
        const char *why = ready_checks[i].fn(d);
        json_object_set_new(checks, ready_checks[i].name, json_string(why ? why : "ok"));
        ready &= why == NULL;
    }
    json_t *body =
        json_pack("{s:s,s:o}", "status", ready ? "ready" : "not_ready", "checks", checks);
    net_resp_json(req, ready ? 200 : 503, body);
    json_decref(body);
}

static int add_ops_routes(net_router_t *r, daemon_t *d, core_err_t *err)
{
    int rc = net_router_add(r, "GET", "/healthz", on_healthz, d, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/readyz", on_readyz, d, err);
    return rc;
}

/* ---- echo (the benchmark's JSON route and a WebSocket echo) -------------- */

static void on_echo(net_req_t *req, void *data)
{
    core_err_t err = {0};
    json_t *body = net_req_json(req, &err);
    if (body == NULL) {
        net_resp_error(req, 400, "invalid_json", "%s", err.msg);
        return;
    }
    json_t *out = json_object();
    json_object_set_new(out, "echo", body);
    net_resp_json(req, 200, out);
    json_decref(out);
}

static void on_echo_ws_message(net_ws_t *ws, int binary, const char *data, size_t len)
{
    int rc = binary ? net_ws_send_binary(ws, data, len) : net_ws_send_text(ws, data, len);
    if (rc == CORE_ERR_BUSY)
        net_ws_close(ws, 1008, "send queue full");
}

static int add_echo_routes(net_router_t *r, daemon_t *d, core_err_t *err)
{
    static const net_ws_callbacks_t echo_ws = {.on_message = on_echo_ws_message};
    int rc = net_router_add(r, "POST", "/v1/echo", on_echo, d, err);
    if (rc == 0)
        rc = net_router_add_ws(r, "/v1/echo/ws", &echo_ws, d, err);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void http_dispose(http_t *h)
{
    net_server_free(h->server);
    net_router_free(h->router);
    free(h);
}

static void on_failed_start_closed(net_server_t *s, void *data)
{
    http_dispose(data);
}

int daemon_http_start(daemon_t *d, core_err_t *err)
{
    char host[64];
    int port;
    if (core_config_parse_listen(d->cfg.listen, host, sizeof(host), &port) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "listen: bad address \"%s\"", d->cfg.listen);
    http_t *h = core_xcalloc(1, sizeof(*h));
    h->router = net_router_new();
    int rc = add_ops_routes(h->router, d, err);
    if (rc == 0)
        rc = add_echo_routes(h->router, d, err);
    if (rc == 0) /* chat REST/WebSocket and the web widget; see channels.h */
        rc = chan_chat_register(
            h->router,
            &(chan_host_t){d->loop, &d->cfg, (chan_runtime_fn)daemon_runtime, d, &d->store}, err);
    if (rc == 0) /* GET /metrics and the admin API; see admin.h */
        rc = admin_register(h->router,
                            &(admin_host_t){d->loop, &d->cfg, &d->store, &d->metrics,
                                            (admin_runtime_fn)daemon_runtime, d, &h->server},
                            err);
    if (rc == 0) /* Twilio-compatible SMS and voice webhooks */
        rc = chan_sms_register(
            h->router,
            &(chan_host_t){d->loop, &d->cfg, (chan_runtime_fn)daemon_runtime, d, &d->store}, err);
    if (rc == 0)
        rc = chan_voice_register(
            h->router,
            &(chan_host_t){d->loop, &d->cfg, (chan_runtime_fn)daemon_runtime, d, &d->store}, err);
    if (rc != 0) {
        http_dispose(h);
        return rc;
    }
    net_limits_t lim;
    net_limits_from_config(&lim, &d->cfg);
    h->server = net_server_new(d->loop, &lim, h->router);
    rc = net_server_listen(h->server, host, port, err);
    if (rc == 0)
        rc = daemon_tls_start(d, h->server, err);
    if (rc != 0) {
        /* the listener handle may be open: close it, free once closed */
        net_server_drain(h->server, 0, on_failed_start_closed, h);
        return rc;
    }
    snprintf(d->bound_addr, sizeof(d->bound_addr), "%s", host);
    d->bound_port = net_server_port(h->server);
    d->http = h;
    return 0;
}

void daemon_http_reload(daemon_t *d)
{
    http_t *h = d->http;
    if (h == NULL)
        return;
    net_limits_t lim;
    net_limits_from_config(&lim, &d->cfg);
    net_server_set_limits(h->server, &lim);
    daemon_tls_reload(d, h->server);
    chan_chat_keys_changed(); /* a revoked key's sockets close */
    LOG_INFO("event=http_limits_applied max_body_bytes=%lld max_header_bytes=%lld "
             "max_connections=%lld",
             d->cfg.http.max_body_bytes, d->cfg.http.max_header_bytes, d->cfg.http.max_connections);
}

static void on_drained(net_server_t *s, void *data)
{
    daemon_t *d = data;
    http_t *h = d->http;
    h->done(d);
}

void daemon_http_drain(daemon_t *d, uint64_t timeout_ms, void (*done)(daemon_t *d))
{
    http_t *h = d->http;
    if (h == NULL) {
        done(d);
        return;
    }
    h->done = done;
    net_server_drain(h->server, timeout_ms, on_drained, d);
}

void daemon_http_free(daemon_t *d)
{
    if (d->http)
        http_dispose(d->http);
    d->http = NULL;
}
