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
 * Authentication: `Authorization: Bearer <token>`, checked in constant time
 * against the SHA-256 hashes of admin.tokens (`name:role:sha256hex` or
 * `name:sha256hex` for an admin) and of the tokens table (kept in memory).
 * A missing, unknown or revoked token gets 401, a role too low 403; each
 * refusal is one `event=admin_auth_denied` log line and an audit row.
 * /metrics needs a token only when admin.metrics_auth asks for one.
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

/* Roles: viewer < operator < admin on /v1/admin/...; agent stands apart and
 * only /v1/agent/... takes it (admin is accepted there too). */
typedef enum {
    ADMIN_ROLE_NONE = 0,
    ADMIN_ROLE_VIEWER,   /* reports, conversations, transcripts */
    ADMIN_ROLE_OPERATOR, /* + reload, rollouts, rollback, audit log */
    ADMIN_ROLE_ADMIN,    /* + tokens, promotion to production */
    ADMIN_ROLE_AGENT,    /* /v1/agent/... only */
} admin_role_t;

/* "viewer", "operator", "admin", "agent" ("none" for anything else). */
const char *admin_role_name(admin_role_t r);
/* The role named by s[0..len), or ADMIN_ROLE_NONE. */
admin_role_t admin_role_parse(const char *s, size_t len);
/* 1 when a token of role have may call what needs role need. */
int admin_role_allows(admin_role_t have, admin_role_t need);

/* Who made an admin request: the token's name and role (for audit rows). */
typedef struct admin_identity_s {
    char name[64];     /* token name */
    admin_role_t role; /* its role */
} admin_identity_t;

/* A known token, configured (admin.tokens) or stored (tokens table). */
typedef struct admin_token_s {
    char name[64];       /* unique across both sources */
    admin_role_t role;   /* its role */
    uint8_t sha256[32];  /* SHA-256 of the token text */
    int64_t created_us;  /* wall clock µs; 0 for configured tokens */
    char created_by[64]; /* who created it; "" for configured tokens */
    int64_t revoked_us;  /* 0 while valid */
} admin_token_t;

/* Configured tokens read at most (admin.tokens entries beyond are ignored). */
#define ADMIN_CONFIG_TOKENS_MAX 64

/* A made token's text: "chorus_" and 64 hex digits (32 random bytes). */
#define ADMIN_TOKEN_PREFIX "chorus_"
#define ADMIN_TOKEN_TEXT_SIZE (sizeof(ADMIN_TOKEN_PREFIX) + 64)

/* Makes a new token from getrandom into text, and the lower-case hex of its
 * SHA-256 (what is stored) into sha256_hex. Returns 0, or CORE_ERR_IO when
 * no randomness is available. Any thread. */
int admin_token_new(char text[ADMIN_TOKEN_TEXT_SIZE], char sha256_hex[65]);

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

/* Adds GET /metrics, GET /v1/admin/reports/kpis, GET /v1/admin/conversations,
 * GET /v1/admin/conversations/{id}, the tokens and audit routes and the
 * other admin routes to router (borrowed; must outlive serving). host is
 * copied. Blocking: reads the tokens table from the open store, so call it
 * at start-up, before serving. */
int admin_register(net_router_t *router, const admin_host_t *host, core_err_t *err);

/* The human desk (src/admin/agents*.c, docs/agents.md): the agent API and
 * console routes are added by admin_register(). attach makes the desk
 * observe rt's turns (handoffs enter their queue) and, the first time,
 * starts its webhook client and timer and reads the open handoffs back from
 * the store; stop closes them (before the loop closes). Loop thread. */
void admin_agents_attach(runtime_t *rt);
void admin_agents_stop(void);
/* Checks a queues file (agents.queues_file) like the config: 0 when it is
 * valid or absent, else CORE_ERR_INVALID with every problem in diags as
 * file:line:col. Any thread; reads the file and the zones it names. */
int admin_agents_check(const char *queues_file, core_diags_t *diags);
/* SIGHUP: re-reads the queues file now (blocking, a small local file); a
 * bad or unreadable one is logged and the queues in force stay. Agent feeds
 * whose token admin.tokens no longer lets in are closed. Loop thread; the
 * queues are not read before attach. */
void admin_agents_reload(void);

/* Stops the admin module's timer (the rollout guard) and forgets the
 * rollouts it kept in memory; chorusd calls it once the runtime and the
 * store are closed, before the loop's last run. */
void admin_shutdown(void);

/* SIGHUP: checks a new admin.tokens against the tokens created through
 * the API; a configured name that one of them has (revoked ones included)
 * is a problem in diags and CORE_ERR_INVALID, so that the reload is
 * refused rather than two tokens answering to one name in the audit. */
int admin_tokens_check(const char *tokens, core_diags_t *diags);

/* Parses admin.tokens (already validated) into out (at most max entries);
 * returns how many. Exposed for unit tests. */
size_t admin_tokens_parse(const char *config, admin_token_t *out, size_t max);

/* Identifies an Authorization header value against the configured tokens
 * (admin.tokens text) and stored (borrowed, n_stored entries). Returns 0
 * with who filled, or CORE_ERR_DENIED with err saying why (missing, not
 * Bearer, unknown, revoked). Every hash is compared, in constant time. */
int admin_auth_identify(const char *tokens, const admin_token_t *stored, size_t n_stored,
                        const char *authorization, admin_identity_t *who, core_err_t *err);

/* The same against the configured tokens only, giving the token's name in
 * name_out. Exposed for unit tests. */
int admin_auth_check(const char *tokens, const char *authorization, char *name_out,
                     size_t name_size, core_err_t *err);

#endif
