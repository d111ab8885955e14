/* Fuzz target: bytes from a client -> llhttp -> limits -> router -> answers,
 * on a detached connection (src/net/net_int.h). The first input byte picks
 * how the rest is split into reads, so that every parser state is also seen
 * across a read boundary; between reads the output is "written" (dropped),
 * which lets paused reads resume. Routes answer at once, later (after the
 * next read, or never: aborted at the end) and with path parameters, query
 * strings, headers and JSON bodies read back. Any input must end in answers
 * or a close, never a crash, a leak or an answer out of order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_LATER = 16 };

static net_req_t *later[MAX_LATER];
static size_t nlater;

static void on_abort(net_req_t *req, void *data)
{
    (void)data;
    for (size_t i = 0; i < nlater; i++) {
        if (later[i] == req) {
            later[i] = later[--nlater];
            return;
        }
    }
    abort(); /* aborting a request nobody holds */
}

static void h_health(net_req_t *req, void *data)
{
    (void)data;
    net_resp_send(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void h_echo(net_req_t *req, void *data)
{
    (void)data;
    core_err_t err = {0};
    json_t *j = net_req_json(req, &err);
    if (j == NULL) {
        net_resp_error(req, 400, "bad_json", "%s", err.msg);
        return;
    }
    net_resp_json(req, 200, j);
    json_decref(j);
}

static void h_item(net_req_t *req, void *data)
{
    (void)data;
    json_t *j = json_object();
    const char *id = net_req_param(req, "id"), *q = net_req_query(req, "q");
    json_object_set_new(j, "id", json_stringn(id, strlen(id)));
    if (q)
        json_object_set_new(j, "q", json_stringn(q, strlen(q)));
    for (size_t i = 0; i < net_req_header_count(req); i++) {
        net_header_t h;
        net_req_header_at(req, i, &h);
        if (net_req_header(req, h.name) == NULL)
            abort(); /* every header is found by its own name */
    }
    if (net_resp_header(req, "X-Item", id) != 0 && strpbrk(id, "\r\n") == NULL)
        abort();
    net_resp_json(req, 200, j);
    json_decref(j);
}

static void h_later(net_req_t *req, void *data)
{
    (void)data;
    if (nlater == MAX_LATER) {
        net_resp_error(req, 503, "busy", "too many");
        return;
    }
    later[nlater++] = req;
    net_req_on_abort(req, on_abort, NULL);
}

static void answer_later(size_t keep)
{
    while (nlater > keep) {
        net_req_t *req = later[--nlater];
        size_t len;
        const char *body = net_req_body(req, &len);
        net_resp_send(req, 202, "text/plain", body, len);
    }
}

static void ws_msg(net_ws_t *ws, int binary, const char *data, size_t len)
{
    if (binary)
        net_ws_send_binary(ws, data, len);
    else
        net_ws_send_text(ws, data, len);
}

static net_server_t *setup(void)
{
    static uv_loop_t loop;
    static net_router_t *router;
    static net_server_t *srv;
    if (srv)
        return srv;
    core_log_set_level(CORE_LOG_ERROR);
    uv_loop_init(&loop);
    router = net_router_new();
    static const net_ws_callbacks_t ws = {.on_message = ws_msg};
    if (net_router_add(router, "GET", "/healthz", h_health, NULL, NULL) != 0 ||
        net_router_add(router, "POST", "/v1/echo", h_echo, NULL, NULL) != 0 ||
        net_router_add(router, "GET", "/items/{id}", h_item, NULL, NULL) != 0 ||
        net_router_add(router, "PUT", "/items/{id}/parts/{part}", h_item, NULL, NULL) != 0 ||
        net_router_add(router, "POST", "/later", h_later, NULL, NULL) != 0 ||
        net_router_add(router, "GET", "/later", h_later, NULL, NULL) != 0 ||
        net_router_add_ws(router, "/ws", &ws, NULL, NULL) != 0)
        abort();
    core_config_t cfg;
    core_config_defaults(&cfg);
    net_limits_t l;
    net_limits_from_config(&l, &cfg);
    core_config_dispose(&cfg);
    /* small limits, so that short inputs reach each of them */
    l.max_header_bytes = 1024;
    l.max_headers = 12;
    l.max_body_bytes = 2048;
    l.max_pipelined = 4;
    l.write_buffer_bytes = 2048;
    l.request_burst = 24;
    l.ws_max_message_bytes = 512;
    srv = net_server_new(&loop, &l, router);
    return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    net_server_t *s = setup();
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    data++, size--;
    net_conn_t *c = net__conn_new_detached(s);
    size_t off = 0, step = 1 + (mode & 0x0f) * (mode & 0x10 ? 37 : 1);
    if (size / step > 256)
        step = size / 256; /* at most ~256 reads, so that runs stay fast */
    while (off < size && !c->closing) {
        size_t n = size - off < step ? size - off : step;
        if (mode & 0x20) /* irregular reads: the next length comes from the data */
            step = 1 + data[off] % 61 + size / 256;
        net__conn_feed(c, (const char *)data + off, n);
        off += n;
        if (c->closing)
            break;
        answer_later(mode & 0x40 ? 0 : nlater / 2);
        c->out.len = 0; /* the peer read everything */
        net__conn_update_read(c);
    }
    if (!c->closing && (mode & 0x80))
        net__conn_timeout(c);
    if (!c->closing && (mode & 0x40))
        answer_later(0);
    net__conn_free_detached(c);
    if (nlater != 0)
        abort(); /* the close aborted everything still held */
    return 0;
}
