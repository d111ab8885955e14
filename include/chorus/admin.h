/* admin.h — chorusd's operator interfaces over HTTP: the Prometheus scrape
 * (GET /metrics) and the admin API (KPI report, conversation list and
 * transcripts under /v1/admin/), both reading what the store and the runtime
 * keep. Registered on the daemon's router with one call, admin_register().
 *
 * /metrics renders the in-memory registry (store_metrics_t) plus process,
 * runtime, store and connection gauges read without touching SQLite. The
 * admin API runs every query on the thread pool through the store's
 * *_async calls and answers from their callback; a request whose connection
 * dies first is detached (net_req_on_abort) and its result dropped.
 *
 * Authentication: `Authorization: Bearer <token>`, checked against the
 * SHA-256 hashes of admin.tokens (`name:sha256hex,...`) in constant time.
 * A missing or wrong token gets 401 and one `event=admin_auth_denied` log
 * line. /metrics needs a token only when admin.metrics_auth is "token"
 * (default "open": a scraper on loopback or a private network).
 *
 * Threads: loop thread only.
 *
 * Ownership: the host is copied; everything it points to is borrowed and
 * read afresh on every request (a SIGHUP that changes admin.tokens applies to
 * the next request). The registered state lives until the process exits and
 * holds no libuv handle.
 *
 * Errors: admin_register() returns 0 or a negative CORE_ERR_* with err
 * filled. Bad requests are answered with {"error": {"code", "message"}}:
 * 400 naming the bad parameter, 401, 404 for an unknown conversation, 503
 * while the store is not open. Endpoints and shapes: docs/admin-api.md. */
#ifndef CHORUS_ADMIN_H
#define CHORUS_ADMIN_H

#include <uv.h>

#include "chorus/config.h"
#include "chorus/core.h"
#include "chorus/net.h"
#include "chorus/runtime.h"
#include "chorus/store.h"

/* Returns the runtime in force for owner, or NULL. */
typedef runtime_t *(*admin_runtime_fn)(void *owner);

/* What the daemon lends the admin routes. The double pointers are read at
 * request time, so they may still be NULL when admin_register() runs and may
 * become NULL on shutdown (the routes then answer 503 or leave the figures
 * out). */
typedef struct admin_host_s {
    uv_loop_t *loop;                    /* borrowed: the loop */
    const core_config_t *cfg;           /* borrowed: the config in force */
    store_t *const *store;              /* the open store, or NULL */
    store_metrics_t *const *metrics;    /* the Prometheus registry, or NULL */
    runtime_t *(*runtime)(void *owner); /* the runtime in force, or NULL */
    void *owner;                        /* passed to runtime() */
    net_server_t *const *server;        /* for the connection gauge; may be NULL */
} admin_host_t;

/* Adds GET /metrics, GET /v1/admin/reports/kpis, GET /v1/admin/conversations
 * and GET /v1/admin/conversations/{id} to router (borrowed; must outlive
 * serving). host is copied. */
int admin_register(net_router_t *router, const admin_host_t *host, core_err_t *err);

/* Checks an Authorization header value against tokens ("name:sha256hex,..."
 * as configured). Returns 0 with the token's name in name_out, or
 * CORE_ERR_DENIED with err saying why (missing, not Bearer, unknown). Every
 * configured hash is compared, in constant time. Exposed for unit tests. */
int admin_auth_check(const char *tokens, const char *authorization, char *name_out,
                     size_t name_size, core_err_t *err);

#endif
