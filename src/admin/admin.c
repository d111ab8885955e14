/* The admin module's registration and shared helpers; authentication and
 * roles are admin_auth.c. */
#define LOG_MODULE "admin"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_flows.h"
#include "admin/admin_int.h"
#include "admin/agents_int.h"

store_t *admin__store(const admin_t *a)
{
    return a->host.store != NULL ? *a->host.store : NULL;
}

runtime_t *admin__runtime(const admin_t *a)
{
    return a->host.runtime != NULL ? a->host.runtime(a->host.owner) : NULL;
}

void admin__unavailable(net_req_t *req, const char *why)
{
    net_resp_header(req, "Retry-After", "1");
    net_resp_error(req, 503, "unavailable", "%s", why);
}

store_t *admin__store_or_503(admin_t *a, net_req_t *req)
{
    store_t *s = admin__store(a);
    if (s == NULL)
        admin__unavailable(req, "the store is not open");
    else if (a->inflight >= ADMIN_MAX_INFLIGHT)
        admin__unavailable(req, "too many admin queries running");
    else
        return s;
    return NULL;
}

void admin__audit(admin_t *a, const char *actor, const char *action, const char *target,
                  json_t *detail)
{
    char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(detail);
    store_t *s = admin__store(a);
    int rc = s != NULL ? store_audit(s, actor, action, target, text) : CORE_ERR_CLOSED;
    if (rc != 0) {
        a->audit_lost++;
        LOG_WARN("event=audit_lost action=%s reason=%s", action, core_strerror(rc));
    }
    free(text);
}

const char *admin__param(net_req_t *req, const char *name)
{
    const char *v = net_req_query(req, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int admin__parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int admin__check_params(net_req_t *req, const char *const *allowed)
{
    const char *q = net_req_query_string(req);
    while (*q != '\0') {
        size_t n = strcspn(q, "&");
        size_t name = strcspn(q, "=&");
        int known = name == 0; /* "a&&b": an empty item names nothing */
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strlen(allowed[i]) == name && strncmp(allowed[i], q, name) == 0;
        if (!known) {
            char shown[80];
            net_resp_error(req, 400, "invalid_parameter", "unknown query parameter %s",
                           core_log_quote(shown, sizeof(shown), q, name, 40));
            return -1;
        }
        q += n + (q[n] == '&');
    }
    return 0;
}

int admin__admit(admin_t *a, net_req_t *req, admin_role_t need, const char *const *allowed,
                 admin_identity_t *who)
{
    if (admin__authorize(a, req, need, who) != 0)
        return -1;
    return admin__check_params(req, allowed);
}

/* One per process, like the chat adapter: registration is one call, and the
 * routes may point at it until exit without anything to free. */
static admin_t the_admin;

int admin_tokens_check(const char *tokens, core_diags_t *diags)
{
    return admin__tokens_clash(&the_admin, tokens, diags);
}

int admin_register(net_router_t *router, const admin_host_t *host, core_err_t *err)
{
    admin_t *a = &the_admin;
    memset(a, 0, sizeof(*a));
    a->host = *host;
    a->start_wall_us = core_wall_us();
    int rc = net_router_add(router, "GET", "/metrics", admin__on_metrics, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/reports/kpis", admin__on_kpis, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/conversations", admin__on_list, a, err);
    if (rc == 0)
        rc = net_router_add(router, "GET", "/v1/admin/conversations/{id}", admin__on_show, a, err);
    if (rc == 0) /* tokens and the audit trail: admin_tokens.c, admin_audit.c */
        rc = admin__tokens_register(router, a, err);
    if (rc == 0) /* hot reload: admin_flows_status.c */
        rc =
            net_router_add(router, "GET", "/v1/admin/flows/status", admin__on_flows_status, a, err);
    if (rc == 0)
        rc = net_router_add(router, "POST", "/v1/admin/flows/reload", admin__on_flows_reload, a,
                            err);
    if (rc == 0) /* flow versions and environments: admin_flows_env.c */
        rc = admin__flows_env_register(router, a, err);
    if (rc == 0) /* rollouts and their guard: admin_rollouts.c */
        rc = admin__rollouts_register(router, a, err);
    if (rc == 0) /* the human desk: agents*.c */
        rc = admin__agents_register(a, router, err);
    if (rc == 0) /* drift detection: admin_drift.c */
        rc = admin__drift_register(router, a, err);
    return rc;
}
