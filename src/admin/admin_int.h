/* admin_int.h — shared between the files of src/admin: the registered state
 * (admin.c), auth (admin_auth.c), /metrics (admin_metrics.c) and the admin
 * API's store queries (admin_api.c). Loop thread only. */
#ifndef CHORUS_ADMIN_INT_H
#define CHORUS_ADMIN_INT_H

#include <stdint.h>

#include "chorus/admin.h"

typedef struct admin_s {
    admin_host_t host;       /* copied at registration */
    int64_t start_wall_us;   /* process_start_time_seconds */
    uint64_t denied;         /* 401s answered (chorus_admin_auth_denied_total) */
    uint64_t forbidden;      /* 403s answered (role too low) */
    uint64_t requests;       /* admin API requests authenticated */
    uint64_t audit_lost;     /* audit rows the store refused (busy, closed) */
    double deny_budget;      /* admin.denied rows that may be written now (token bucket) */
    int64_t deny_refill_us;  /* monotonic µs of the bucket's last refill */
    uint64_t deny_unaudited; /* refusals past the budget since the last admin.denied row */
    int inflight;            /* admin queries on the thread pool now */
    admin_token_t *stored;   /* owned: the tokens table, loaded before serving */
    size_t n_stored, cap_stored;
} admin_t;

/* Admin queries allowed on the thread pool at once: the pool (4 threads by
 * default) also loads conversations the runtime restores, which must not
 * wait behind a long report. More get 503 + Retry-After. */
#define ADMIN_MAX_INFLIGHT 2

/* The store in force, or NULL. */
store_t *admin__store(const admin_t *a);
/* The runtime in force, or NULL (not started, or shutting down). */
runtime_t *admin__runtime(const admin_t *a);
/* Answers 503 unavailable with Retry-After: 1 and why. */
void admin__unavailable(net_req_t *req, const char *why);
/* The store, if it may take one more admin query; otherwise answers 503
 * (not open, or ADMIN_MAX_INFLIGHT queries running) and returns NULL. */
store_t *admin__store_or_503(admin_t *a, net_req_t *req);

/* Authorizes req: its bearer token must be known (configured or stored),
 * not revoked, and its role must allow need (admin_role_allows). Returns 0
 * with the caller in who (may be NULL). Otherwise answers 401 (no, unknown
 * or revoked token; with WWW-Authenticate) or 403 (role too low) with the
 * JSON error body, logs event=admin_auth_denied, appends an audit row
 * (action "admin.denied") and returns -1: the handler just returns. */
int admin__authorize(admin_t *a, net_req_t *req, admin_role_t need, admin_identity_t *who);
/* The same with the Authorization value given (a WebSocket's, which may
 * come as ?access_token=). */
int admin__authorize_as(admin_t *a, net_req_t *req, const char *authorization, admin_role_t need,
                        admin_identity_t *who);
/* admin_auth_identify() for a token known by its SHA-256 (h). */
int admin__identify_hash(const char *tokens, const admin_token_t *stored, size_t n_stored,
                         const uint8_t h[32], admin_identity_t *who, core_err_t *err);
/* The stored or configured tokens changed (a revoke, a SIGHUP): agent feeds
 * whose token no longer lets them in are closed (agents_api.c). */
void admin__agents_tokens_changed(void);

/* Appends an audit row through the store's writer (which chains it);
 * detail is stolen (may be NULL). Logged and counted when the store is
 * closed or busy; never blocks. */
void admin__audit(admin_t *a, const char *actor, const char *action, const char *target,
                  json_t *detail);

/* Decodes 64 hex digits into 32 bytes; -1 when one is not hex. */
int admin__hex_decode(const char *hex, uint8_t out[32]);

/* Loads the tokens table into a->stored (blocking: start-up, before
 * serving) and adds POST/GET/DELETE /v1/admin/tokens (admin_tokens.c) and
 * GET /v1/admin/audit (admin_audit.c). */
int admin__tokens_register(net_router_t *r, admin_t *a, core_err_t *err);
/* admin_tokens_check() on a's stored tokens. */
int admin__tokens_clash(admin_t *a, const char *tokens, core_diags_t *diags);
/* GET /v1/admin/audit. */
void admin__on_audit(net_req_t *req, void *data);

/* Adds the /v1/admin/rollouts routes and starts the rollout guard
 * (admin_rollouts.c, admin_rollout_run.c). */
int admin__rollouts_register(net_router_t *r, admin_t *a, core_err_t *err);
/* GET /v1/admin/flows, .../flows/{name}/versions, POST .../flows/promote and
 * .../flows/rollback (admin_flows_env.c). */
int admin__flows_env_register(net_router_t *r, admin_t *a, core_err_t *err);
/* GET /v1/admin/drift and the scheduled drift check (admin_drift.c); stop
 * closes its timer and webhook client (admin_shutdown). */
int admin__drift_register(net_router_t *r, admin_t *a, core_err_t *err);
void admin__drift_stop(void);

/* GET /metrics. */
void admin__on_metrics(net_req_t *req, void *data);
/* GET /v1/admin/reports/kpis, /v1/admin/conversations, /v1/admin/conversations/{id}. */
void admin__on_kpis(net_req_t *req, void *data);
void admin__on_list(net_req_t *req, void *data);
void admin__on_show(net_req_t *req, void *data);

/* A query parameter, NULL when absent or empty (chorusctl sends "from=" for
 * no bound). */
const char *admin__param(net_req_t *req, const char *name);
/* s as a decimal integer in lo..hi into *out; -1 when it is not one. */
int admin__parse_int(const char *s, long long lo, long long hi, long long *out);
/* Answers 400 if the query string has a parameter not in allowed (a
 * NULL-terminated list); returns -1 then, 0 when every name is known. */
int admin__check_params(net_req_t *req, const char *const *allowed);
/* The prologue of a handler: admin__authorize, then admin__check_params;
 * -1 when req was answered (401/403/400), 0 to go on. */
int admin__admit(admin_t *a, net_req_t *req, admin_role_t need, const char *const *allowed,
                 admin_identity_t *who);

#endif
