/* The rollout routes of the admin API (docs/admin-api.md, "Rollouts"):
 *   POST /v1/admin/rollouts                  start (operator)
 *   GET  /v1/admin/rollouts                  list, newest first (viewer)
 *   GET  /v1/admin/rollouts/{id}             one with per-variant KPIs, the
 *                                            z-tests and the guard's verdict
 *   POST /v1/admin/rollouts/{id}/promote     candidate becomes env's (admin)
 *   POST /v1/admin/rollouts/{id}/abort       back to the control (operator)
 * {id} is a rollout id or a flow name (its newest rollout; for promote and
 * abort, its running one, in ?env= when given). Each handler validates on
 * the loop and answers from a store or runtime callback; a request whose
 * connection dies first is detached and its answer dropped. */
#define LOG_MODULE "admin"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_rollout_int.h"

typedef struct {
    admin_t *a;
    net_req_t *req; /* NULL once the connection died */
    int created;    /* answer 201 rather than 200 */
} rjob_t;

static void on_abort(net_req_t *req, void *data)
{
    rjob_t *j = data;
    j->req = NULL;
}

static rjob_t *rjob_new(admin_t *a, net_req_t *req)
{
    rjob_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    net_req_on_abort(req, on_abort, j);
    return j;
}

static void answer_error(net_req_t *req, int rc, const char *msg)
{
    msg = msg != NULL ? msg : core_strerror(rc);
    switch (rc) {
    case CORE_ERR_NOT_FOUND:
        net_resp_error(req, 404, "not_found", "%s", msg);
        break;
    case CORE_ERR_EXISTS:
    case CORE_ERR_BUSY:
        net_resp_error(req, 409, "conflict", "%s", msg);
        break;
    case CORE_ERR_INVALID:
        net_resp_error(req, 422, "invalid_candidate", "%s", msg);
        break;
    case CORE_ERR_CLOSED:
        admin__unavailable(req, msg);
        break;
    default:
        net_resp_error(req, 500, "internal", "%s", msg);
    }
}

/* The callback of start, promote and abort: the row, or the error. */
static void on_row(int rc, const char *msg, json_t *row, void *data)
{
    rjob_t *j = data;
    if (j->req != NULL) {
        net_req_on_abort(j->req, NULL, NULL);
        if (rc == 0)
            net_resp_json(j->req, j->created ? 201 : 200, row);
        else
            answer_error(j->req, rc, msg);
    }
    free(j);
}

/* ---- POST /v1/admin/rollouts --------------------------------------------------- */

static void on_start(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    if (admin__admit(a, req, ADMIN_ROLE_OPERATOR, allowed, &who) != 0)
        return;
    size_t len;
    const char *body = net_req_body(req, &len);
    json_error_t jerr;
    json_t *o = json_loadb(body != NULL ? body : "", len, 0, &jerr);
    const char *flow = json_string_value(json_object_get(o, "flow"));
    const char *cand = json_string_value(json_object_get(o, "candidate"));
    json_t *env = json_object_get(o, "env"), *pct = json_object_get(o, "percent");
    const char *bad =
        !json_is_object(o)                    ? "the body must be a JSON object"
        : flow == NULL || flow[0] == '\0'     ? "flow: a flow name is required"
        : cand == NULL || cand[0] == '\0'     ? "candidate: a version is required"
        : env != NULL && !json_is_string(env) ? "env: must be a string"
        : !json_is_integer(pct) || json_integer_value(pct) < 1 || json_integer_value(pct) > 100
            ? "percent: an integer from 1 to 100 is required"
            : NULL;
    if (bad != NULL) {
        net_resp_error(req, 400, "invalid_parameter", "%s", bad);
        json_decref(o);
        return;
    }
    rjob_t *j = rjob_new(a, req);
    j->created = 1;
    admin__ro_start(a, json_string_value(env), flow, cand, (unsigned)json_integer_value(pct),
                    who.name, on_row, j);
    json_decref(o);
}

/* ---- promote and abort ------------------------------------------------------- */

static void end_one(net_req_t *req, admin_t *a, int promote)
{
    static const char *const allowed[] = {"env", NULL};
    admin_identity_t who;
    if (admin__admit(a, req, promote ? ADMIN_ROLE_ADMIN : ADMIN_ROLE_OPERATOR, allowed, &who) != 0)
        return;
    const char *key = net_req_param(req, "id"), *env = net_req_query(req, "env");
    admin_ro_t *ro = key != NULL ? admin__ro_find(key, env != NULL && env[0] ? env : NULL) : NULL;
    if (ro == NULL) {
        net_resp_error(req, 404, "not_found", "no running rollout %s", key ? key : "");
        return;
    }
    rjob_t *j = rjob_new(a, req);
    char *reason = core_xasprintf("%s by %s", promote ? "promoted" : "aborted", who.name);
    int rc = admin__ro_end(a, ro, promote ? ROLLOUT_PROMOTED : ROLLOUT_ABORTED, who.name, reason,
                           on_row, j);
    free(reason);
    if (rc != 0)
        on_row(rc,
               rc == CORE_ERR_BUSY     ? "the candidate is not serving yet; try again in a moment"
               : rc == CORE_ERR_EXISTS ? "the rollout's promotion is being recorded"
                                       : core_strerror(rc),
               NULL, j);
}

static void on_promote(net_req_t *req, void *data)
{
    end_one(req, data, 1);
}

static void on_abort_route(net_req_t *req, void *data)
{
    end_one(req, data, 0);
}

/* ---- GET ------------------------------------------------------------------------ */

static void on_list_done(int status, json_t *result, const char *errmsg, void *data)
{
    rjob_t *j = data;
    j->a->inflight--;
    if (j->req != NULL) {
        net_req_on_abort(j->req, NULL, NULL);
        if (status == 0)
            net_resp_json(j->req, 200, result);
        else
            answer_error(j->req, status, errmsg);
    }
    json_decref(result);
    free(j);
}

static void on_list(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"flow", "status", NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    const char *flow = net_req_query(req, "flow"), *status = net_req_query(req, "status");
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    rjob_t *j = rjob_new(a, req);
    a->inflight++;
    if (store_rollouts_async(s, NULL, flow && flow[0] ? flow : NULL,
                             status && status[0] ? status : NULL, on_list_done, j) != 0)
        on_list_done(CORE_ERR_CLOSED, NULL, "the store is not accepting queries", j);
}

typedef struct {
    rjob_t *j;
    json_t *row; /* the rollout */
} show_t;

static json_t *guard_json(admin_t *a, json_t *raw, json_t *row)
{
    rollout_kpis_t c, k;
    rollout_guard_t g;
    char why[256];
    admin__ro_guard(a->host.cfg, &g);
    if (rollout_kpis_from_raw(json_object_get(raw, "control"), &c) != 0 ||
        rollout_kpis_from_raw(json_object_get(raw, "candidate"), &k) != 0)
        return json_null();
    rollout_verdict_t v = rollout_guard_eval(&c, &k, &g, why, sizeof(why));
    return json_pack("{s:s,s:s,s:I,s:f,s:f,s:f,s:f}", "verdict", rollout_verdict_name(v), "reason",
                     why, "min_sample", (json_int_t)g.min_sample, "max_error_rate_delta",
                     g.max_error_rate_delta, "max_escalation_rate_delta",
                     g.max_escalation_rate_delta, "max_p95_latency_ratio", g.max_p95_latency_ratio,
                     "p95_latency_slack_ms", g.p95_latency_slack_ms);
}

static void on_kpis(int status, json_t *result, const char *errmsg, void *data)
{
    show_t *sh = data;
    rjob_t *j = sh->j;
    if (status == 0) {
        json_t *raw = json_object_get(result, "raw");
        json_t *body = json_pack(
            "{s:O,s:{s:O,s:O},s:O,s:o}", "rollout", sh->row, "variants", "control",
            json_object_get(result, "control"), "candidate", json_object_get(result, "candidate"),
            "tests", json_object_get(result, "tests"), "guard", guard_json(j->a, raw, sh->row));
        json_decref(result);
        result = body;
    }
    json_decref(sh->row);
    free(sh);
    on_list_done(status, result, errmsg, j);
}

static void on_show_row(int status, json_t *result, const char *errmsg, void *data)
{
    rjob_t *j = data;
    json_t *row = json_array_get(json_object_get(result, "rollouts"), 0);
    store_t *s = admin__store(j->a);
    if (status != 0 || row == NULL || s == NULL) {
        on_list_done(status        ? status
                     : row == NULL ? CORE_ERR_NOT_FOUND
                                   : CORE_ERR_CLOSED,
                     result,
                     status        ? errmsg
                     : row == NULL ? "no such rollout"
                                   : "the store is closed",
                     j);
        return;
    }
    show_t *sh = core_xcalloc(1, sizeof(*sh));
    sh->j = j;
    sh->row = json_incref(row);
    admin_ro_t *ro = admin__ro_find(json_string_value(json_object_get(row, "id")), NULL);
    json_object_set_new(sh->row, "serving", json_boolean(ro != NULL && ro->ready));
    json_t *ended = json_object_get(row, "ended_us");
    int rc = store_rollout_kpis_async(
        s, NULL, json_integer_value(json_object_get(row, "started_us")),
        json_is_integer(ended) ? json_integer_value(ended) : 0, on_kpis, sh);
    json_decref(result);
    if (rc != 0)
        on_kpis(CORE_ERR_CLOSED, NULL, "the store is not accepting queries", sh);
}

static void on_show(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    const char *key = net_req_param(req, "id");
    if (key == NULL || key[0] == '\0' || strlen(key) > 256) {
        net_resp_error(req, 400, "invalid_parameter", "id: must be 1 to 256 bytes");
        return;
    }
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    rjob_t *j = rjob_new(a, req);
    a->inflight++;
    /* an id, else the newest rollout of a flow of that name */
    if (store_rollouts_async(s, key, NULL, NULL, on_show_row, j) != 0)
        on_list_done(CORE_ERR_CLOSED, NULL, "the store is not accepting queries", j);
}

int admin__rollouts_register(net_router_t *r, admin_t *a, core_err_t *err)
{
    int rc = net_router_add(r, "POST", "/v1/admin/rollouts", on_start, a, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/admin/rollouts", on_list, a, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/admin/rollouts/{id}", on_show, a, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/admin/rollouts/{id}/promote", on_promote, a, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/admin/rollouts/{id}/abort", on_abort_route, a, err);
    if (rc == 0)
        admin__ro_timer_start(a);
    return rc;
}
