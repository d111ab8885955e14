/* Hot reload over the admin API (docs/admin-api.md):
 *
 *   GET  /v1/admin/flows/status  (viewer): the version in force (load time,
 *        trigger, flow names and content hashes) and the last attempt with
 *        its problems as `file:line:col: path: message`.
 *   POST /v1/admin/flows/reload  (operator): the same reload SIGHUP and the
 *        directory watcher trigger; answers once that load is done: 200 with
 *        the attempt when the new set is in force, 422 when it was refused
 *        (the version in force is kept) with the problems.
 *
 * A reload request whose connection dies first is detached and its result
 * dropped; the reload itself still runs (the runtime audits it). */
#define LOG_MODULE "admin"
#include <stdlib.h>
#include <string.h>

#include "admin/admin_flows.h"

void admin__on_flows_status(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    runtime_t *rt = admin__runtime(a);
    json_t *status = rt != NULL ? runtime_reload_status(rt) : NULL;
    if (status == NULL) {
        admin__unavailable(req, "the flows runtime is not running");
        return;
    }
    net_resp_json(req, 200, status);
    json_decref(status);
}

typedef struct reload_job_s {
    net_req_t *req; /* NULL once the connection died */
} reload_job_t;

static void on_abort(net_req_t *req, void *data)
{
    reload_job_t *j = data;
    j->req = NULL;
}

static void on_reloaded(int rc, const json_t *attempt, void *data)
{
    reload_job_t *j = data;
    net_req_t *req = j->req;
    free(j);
    if (req == NULL)
        return;
    if (rc == CORE_ERR_CLOSED) {
        admin__unavailable(req, "chorusd is shutting down");
        return;
    }
    json_t *body =
        json_pack("{s:s, s:O?}", "result", rc == 0 ? "loaded" : "rejected", "attempt", attempt);
    if (rc != 0) {
        size_t n = attempt ? json_array_size(json_object_get(attempt, "errors")) : 0;
        json_object_set_new(body, "error",
                            json_pack("{s:s, s:s}", "code", "flows_invalid", "message",
                                      n > 0 ? "the flows do not load; the version in force is kept"
                                            : "the reload failed; the version in force is kept"));
    }
    net_resp_json(req, rc == 0 ? 200 : 422, body);
    json_decref(body);
}

void admin__on_flows_reload(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    if (admin__admit(a, req, ADMIN_ROLE_OPERATOR, allowed, &who) != 0)
        return;
    runtime_t *rt = admin__runtime(a);
    if (rt == NULL) {
        admin__unavailable(req, "the flows runtime is not running");
        return;
    }
    reload_job_t *j = core_xcalloc(1, sizeof(*j));
    j->req = req;
    int rc = runtime_reload(rt, RUNTIME_TRIGGER_API, who.name, on_reloaded, j);
    if (rc != 0) {
        free(j);
        admin__unavailable(req, rc == CORE_ERR_NOT_FOUND ? "hot reload is not running"
                                                         : "chorusd is shutting down");
        return;
    }
    net_req_on_abort(req, on_abort, j);
}
