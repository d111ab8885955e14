/* The web channel's files, compiled into the binary (cmake/embed.cmake):
 * GET / (a demo page), /widget.js (one script tag embeds the widget),
 * /widget.css (its styles, loaded by the script), /favicon.svg. The widget talks to the
 * chat WebSocket (chan_chat_ws.c) as a "web" conversation, authenticated by
 * its page's origin, so web variants of the flow's messages are used.
 * Responses carry a strong ETag (the content never changes while the
 * process lives) and Cache-Control: no-cache, so browsers revalidate and an
 * upgrade is picked up at once. */
#define LOG_MODULE "web"
#include <string.h>

#include "channels/chan_chat_int.h"

#define WEB_MAX_ROUTES 8

typedef struct web_file_s {
    const chat_web_asset_t *asset;
    const char *type; /* Content-Type */
    char etag[24];    /* "\"<16 hex>\"" */
} web_file_t;

static web_file_t files[WEB_MAX_ROUTES];
static const chat_t *web_chat; /* for chat.frame_ancestors, which a reload may change */

static const struct {
    const char *path;
    const char *asset;
    const char *type;
} routes[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/widget.js", "widget.js", "text/javascript; charset=utf-8"},
    {"/widget.css", "widget.css", "text/css; charset=utf-8"},
    {"/favicon.svg", "favicon.svg", "image/svg+xml"},
    /* the agent console (docs/agents.md): it calls the agent API itself */
    {"/agent", "agent.html", "text/html; charset=utf-8"},
    {"/agent.js", "agent.js", "text/javascript; charset=utf-8"},
    {"/agent.css", "agent.css", "text/css; charset=utf-8"},
};

static void on_file(net_req_t *req, void *data)
{
    const web_file_t *f = data;
    net_resp_header(req, "ETag", f->etag);
    net_resp_header(req, "Cache-Control", "no-cache");
    net_resp_header(req, "Referrer-Policy", "no-referrer");
    const char *fa = web_chat ? web_chat->base.host.cfg->chat.frame_ancestors : "'none'";
    char csp[512];
    if (strncmp(f->type, "text/html", 9) == 0) {
        /* the demo page runs only its own script and talks only to us */
        snprintf(csp, sizeof(csp),
                 "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                 "frame-ancestors %s; base-uri 'none'; form-action 'none'; object-src 'none'",
                 fa);
        if (strcmp(fa, "'none'") == 0)
            net_resp_header(req, "X-Frame-Options", "DENY"); /* browsers without CSP 2 */
    } else {
        /* scripts and styles load into other sites' pages (CORP cross-origin);
         * opened on their own they may run nothing (an SVG could) */
        snprintf(csp, sizeof(csp), "default-src 'none'; frame-ancestors 'none'");
        net_resp_header(req, "Cross-Origin-Resource-Policy", "cross-origin");
    }
    net_resp_header(req, "Content-Security-Policy", csp);
    const char *inm = net_req_header(req, "If-None-Match");
    if (inm != NULL && strstr(inm, f->etag) != NULL) {
        net_resp_send(req, 304, NULL, "", 0);
        return;
    }
    net_resp_send(req, 200, f->type, f->asset->data, f->asset->len);
}

static const chat_web_asset_t *find_asset(const char *name)
{
    for (size_t i = 0; i < chat__web_n_assets; i++)
        if (strcmp(chat__web_assets[i].name, name) == 0)
            return &chat__web_assets[i];
    return NULL;
}

int chat__web_register(chat_t *c, net_router_t *r, core_err_t *err)
{
    web_chat = c;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        web_file_t *f = &files[i];
        f->asset = find_asset(routes[i].asset);
        if (f->asset == NULL)
            return core_err_set(err, CORE_ERR_NOT_FOUND, "web: %s was not embedded",
                                routes[i].asset);
        f->type = routes[i].type;
        uint64_t h = 1469598103934665603ULL;
        for (size_t k = 0; k < f->asset->len; k++)
            h = (h ^ f->asset->data[k]) * 1099511628211ULL;
        snprintf(f->etag, sizeof(f->etag), "\"%016llx\"", (unsigned long long)h);
        int rc = net_router_add(r, "GET", routes[i].path, on_file, f, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
