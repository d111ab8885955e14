/* CORS for the chat REST API. Browsers may call it from the origins of
 * chat.allowed_origins (or the daemon's own): a preflight OPTIONS from such
 * an origin is answered 204 with the methods and request headers the route
 * takes; any other origin gets 403 and no Access-Control-* header, so the
 * browser stops there. Answers to allowed origins name that one origin
 * (never `*`, even when every origin is allowed, and never with
 * credentials: the API authenticates by bearer key, not cookies) and every
 * answer carries Vary: Origin, so a shared cache never hands one origin's
 * answer to another. */
#define LOG_MODULE "chat"
#include <string.h>

#include "channels/chan_chat_int.h"

static const char allow_headers[] = "Authorization, Content-Type, Idempotency-Key, X-Request-Id";
static const char expose_headers[] = "Location, Retry-After, X-Request-Id, Idempotent-Replayed";

/* The allowed origin of req, or NULL (none sent, or not allowed). */
static const char *allowed_origin(const chat_t *c, net_req_t *req)
{
    const char *origin = net_req_header(req, "Origin");
    if (origin == NULL ||
        !chat__origin_allowed(c->base.host.cfg, origin, net_req_header(req, "Host")))
        return NULL;
    return origin;
}

void chat__cors(const chat_t *c, net_req_t *req)
{
    net_resp_header(req, "Vary", "Origin");
    const char *origin = allowed_origin(c, req);
    if (origin == NULL)
        return;
    /* net_resp_header refuses CR/LF, so a hostile Origin cannot add headers */
    if (net_resp_header(req, "Access-Control-Allow-Origin", origin) == 0)
        net_resp_header(req, "Access-Control-Expose-Headers", expose_headers);
}

typedef struct preflight_s {
    const char *path;
    const char *methods; /* what the path takes, as in Allow */
    const chat_t *chat;
} preflight_t;

static preflight_t preflights[] = {
    {"/v1/chat/conversations", "POST, OPTIONS", NULL},
    {"/v1/chat/conversations/{id}", "GET, HEAD, OPTIONS", NULL},
    {"/v1/chat/conversations/{id}/messages", "POST, OPTIONS", NULL},
};

/* True if want is one whole item of the ", "-separated list. */
static int method_listed(const char *list, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, want, n) == 0)
            return 1;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

/* OPTIONS on a chat route. */
static void on_preflight(net_req_t *req, void *data)
{
    const preflight_t *pf = data;
    const char *methods = pf->methods;
    net_resp_header(req, "Vary",
                    "Origin, Access-Control-Request-Method, "
                    "Access-Control-Request-Headers");
    net_resp_header(req, "Allow", methods);
    const char *origin = allowed_origin(pf->chat, req);
    const char *want = net_req_header(req, "Access-Control-Request-Method");
    if (net_req_header(req, "Origin") == NULL) {
        net_resp_send(req, 204, NULL, "", 0); /* a plain OPTIONS: just Allow */
        return;
    }
    if (origin == NULL) {
        LOG_INFO("event=cors_refused rid=%s client=%s", net_req_id(req), net_req_client(req));
        net_resp_error(req, 403, "origin_not_allowed",
                       "this origin may not call the chat API (chat.allowed_origins)");
        return;
    }
    if (want == NULL || !method_listed(methods, want) || strcmp(want, "OPTIONS") == 0) {
        net_resp_error(req, 405, "method_not_allowed", "Access-Control-Request-Method: %s",
                       want ? "not allowed here" : "missing");
        return;
    }
    net_resp_header(req, "Access-Control-Allow-Origin", origin);
    net_resp_header(req, "Access-Control-Allow-Methods", methods);
    net_resp_header(req, "Access-Control-Allow-Headers", allow_headers);
    net_resp_header(req, "Access-Control-Max-Age", "600");
    net_resp_send(req, 204, NULL, "", 0);
}

int chat__cors_register(const chat_t *c, net_router_t *r, core_err_t *err)
{
    for (size_t i = 0; i < sizeof(preflights) / sizeof(preflights[0]); i++) {
        preflights[i].chat = c;
        int rc =
            net_router_add(r, "OPTIONS", preflights[i].path, on_preflight, &preflights[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
