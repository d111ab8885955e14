/* Flow versions and environments over the admin API (docs/admin-api.md):
 *
 *   GET  /v1/admin/flows[?env=E][&content=1]   (viewer) what each environment
 *        runs: flow, version, author, time (and the content, as it runs)
 *   GET  /v1/admin/flows/{name}/versions[?content=1]   (viewer) every stored
 *        version of a flow, newest first, with its author and diff
 *   POST /v1/admin/flows/promote {"flows"?,"versions"?,"to"}   (admin)
 *        gives "to" exactly the versions staging runs
 *   POST /v1/admin/flows/rollback {"flow","to_version"?,"env"?}   (operator)
 *        restores the flow's previous (or the named) version
 *
 * A change answers once the new set is compiled and in force (200), or with
 * its problems (422); the runtime records it (environment rows, history and
 * an audit row naming the token). */
#define LOG_MODULE "admin"
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "chorus/runtime.h"

/* A request waiting for the store or a compile; req is NULL once it died. */
typedef struct fl_job_s {
    net_req_t *req;
    admin_t *a;
    json_t *body;      /* the answer being built (GET), or the change's summary */
    int env;           /* GET: the environment being enriched next */
    int content;       /* GET: include contents */
    char env_name[16]; /* rollback: the environment */
    char flow[130];    /* rollback */
    char to[130];      /* rollback: the version asked for, "" for the previous one */
    char actor[80];
    int query; /* a read any viewer may ask for: counted among the admin
                  queries running (ADMIN_MAX_INFLIGHT), as it takes a slot of
                  the thread pool, which conversation restores share */
} fl_job_t;

static void on_abort(net_req_t *req, void *data)
{
    (void)req;
    ((fl_job_t *)data)->req = NULL;
}

static fl_job_t *job_new(admin_t *a, net_req_t *req)
{
    fl_job_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    net_req_on_abort(req, on_abort, j);
    return j;
}

/* A job for a GET that reads the store. */
static fl_job_t *query_new(admin_t *a, net_req_t *req)
{
    fl_job_t *j = job_new(a, req);
    j->query = 1;
    a->inflight++;
    return j;
}

/* Detaches and frees j; returns its request (NULL when it died). */
static net_req_t *job_end(fl_job_t *j)
{
    net_req_t *req = j->req;
    if (req != NULL)
        net_req_on_abort(req, NULL, NULL);
    j->a->inflight -= j->query;
    json_decref(j->body);
    free(j);
    return req;
}

static const char *const env_names[] = {RUNTIME_ENV_STAGING, RUNTIME_ENV_PRODUCTION};

/* ---- GET /v1/admin/flows --------------------------------------------------- */

static void list_next(fl_job_t *j);

/* Adds author and times from the store's rows to the env's flows. */
static void on_env_rows(int status, json_t *rows, const char *errmsg, void *data)
{
    fl_job_t *j = data;
    json_t *envj = json_object_get(json_object_get(j->body, "environments"), env_names[j->env]);
    size_t i, k;
    json_t *f, *r;
    json_array_foreach(json_object_get(envj, "flows"), i, f)
    {
        json_array_foreach(rows, k, r)
        {
            if (!json_equal(json_object_get(r, "flow"), json_object_get(f, "flow")) ||
                !json_equal(json_object_get(r, "version"), json_object_get(f, "version")))
                continue;
            static const char *const keys[] = {"author", "created_us", "set_by", "set_us"};
            for (size_t x = 0; x < 4; x++)
                json_object_set(f, keys[x], json_object_get(r, keys[x]));
        }
    }
    if (status != 0 && status != CORE_ERR_CLOSED)
        LOG_WARN("event=admin_flows_read_failed reason=\"%s\"", errmsg ? errmsg : "");
    json_decref(rows);
    j->env++;
    list_next(j);
}

static void list_next(fl_job_t *j)
{
    store_t *s = admin__store(j->a);
    while (j->env < 2 &&
           json_object_get(json_object_get(j->body, "environments"), env_names[j->env]) == NULL)
        j->env++;
    if (j->env < 2 && s != NULL && j->req != NULL &&
        store_flows_async(s, "env", env_names[j->env], 0, on_env_rows, j) == 0)
        return;
    json_t *body = json_incref(j->body);
    net_req_t *req = job_end(j);
    if (req != NULL)
        net_resp_json(req, 200, body);
    json_decref(body);
}

static json_t *env_view(runtime_t *rt, const char *env, int content)
{
    json_t *e = runtime_env_json(rt, env);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(e, "flows"), i, f)
    {
        runtime_flow_file_t file;
        if (content &&
            runtime_env_file(rt, env, json_string_value(json_object_get(f, "flow")), &file) == 0)
            json_object_set_new(f, "content", json_stringn(file.content, file.len));
    }
    return e;
}

static void on_list(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"env", "content", NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    runtime_t *rt = admin__runtime(a);
    if (rt == NULL) {
        admin__unavailable(req, "the flows runtime is not running");
        return;
    }
    const char *only = net_req_query(req, "env");
    const char *c = net_req_query(req, "content");
    if (only != NULL && strcmp(only, env_names[0]) != 0 && strcmp(only, env_names[1]) != 0) {
        net_resp_error(req, 400, "invalid_request", "env: staging or production");
        return;
    }
    if (a->inflight >= ADMIN_MAX_INFLIGHT) {
        admin__unavailable(req, "too many admin queries running");
        return;
    }
    json_t *envs = json_object();
    for (int i = 0; i < 2; i++)
        if (only == NULL || strcmp(only, env_names[i]) == 0)
            json_object_set_new(envs, env_names[i],
                                env_view(rt, env_names[i], c != NULL && strcmp(c, "1") == 0));
    fl_job_t *j = query_new(a, req);
    j->body = json_pack("{s:s, s:o}", "default_env", runtime_default_env(rt), "environments", envs);
    list_next(j);
}

/* ---- GET /v1/admin/flows/{name}/versions ---------------------------------- */

static void on_versions_read(int status, json_t *rows, const char *errmsg, void *data)
{
    fl_job_t *j = data;
    char flow[130];
    snprintf(flow, sizeof(flow), "%s", j->flow);
    net_req_t *req = job_end(j);
    if (req == NULL) {
        json_decref(rows);
        return;
    }
    if (status == CORE_ERR_NOT_FOUND)
        net_resp_error(req, 404, "not_found", "no versions of flow %s are recorded", flow);
    else if (status != 0)
        admin__unavailable(req, errmsg ? errmsg : "the store could not be read");
    else {
        json_t *body = json_pack("{s:s, s:O}", "flow", flow, "versions", rows);
        net_resp_json(req, 200, body);
        json_decref(body);
    }
    json_decref(rows);
}

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static void on_versions(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"content", NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    const char *name = net_req_param(req, "name");
    if (!valid_name(name)) {
        net_resp_error(req, 400, "invalid_request", "flow name: letters, digits, '_' and '-'");
        return;
    }
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    const char *c = net_req_query(req, "content");
    fl_job_t *j = query_new(a, req);
    snprintf(j->flow, sizeof(j->flow), "%s", name);
    if (store_flows_async(s, "versions", name, c != NULL && strcmp(c, "1") == 0, on_versions_read,
                          j) != 0) {
        job_end(j);
        admin__unavailable(req, "the store is not answering");
    }
}

/* ---- changes: promote and rollback ---------------------------------------- */

/* The compile of a change finished: the new set is in force (rc 0) or not. */
static void on_changed(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    fl_job_t *j = data;
    json_t *body = json_incref(j->body);
    char env[16];
    snprintf(env, sizeof(env), "%s", j->env_name);
    net_req_t *req = job_end(j);
    if (req == NULL) {
        json_decref(body);
        return;
    }
    if (rc == 0) {
        json_object_set_new(body, "env", json_string(env));
        json_object_set_new(body, "now", runtime_env_json(rt, env));
        net_resp_json(req, 200, body);
    } else if (rc == CORE_ERR_CLOSED) {
        admin__unavailable(req, "chorusd is shutting down");
    } else if (rc == CORE_ERR_EXISTS) { /* a load changed the environment meanwhile */
        net_resp_error(req, 409, "conflict", "%s",
                       diags && diags->len > 0
                           ? diags->items[0].message
                           : "the environment changed while the change compiled; retry");
    } else {
        json_t *problems = json_array();
        char line[2048];
        for (size_t i = 0; diags && i < diags->len; i++)
            json_array_append_new(
                problems, json_string(core_diag_format(&diags->items[i], line, sizeof(line))));
        json_t *err = json_pack("{s:{s:s, s:s}, s:o}", "error", "code", "flows_invalid", "message",
                                "the new set does not load; the environment is unchanged",
                                "problems", problems);
        net_resp_json(req, 422, err);
        json_decref(err);
    }
    json_decref(body);
}

static json_t *body_object(net_req_t *req)
{
    size_t len;
    const char *body = net_req_body(req, &len);
    json_error_t jerr;
    json_t *o = json_loadb(body != NULL ? body : "", len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        net_resp_error(req, 400, "invalid_request", "the body must be a JSON object");
        return NULL;
    }
    return o;
}

static int change_error(net_req_t *req, int rc, const core_err_t *err)
{
    int status = rc == CORE_ERR_NOT_FOUND ? 404
                 : rc == CORE_ERR_EXISTS  ? 409
                 : rc == CORE_ERR_BUSY    ? 503
                                          : 400;
    net_resp_error(req, status,
                   status == 409   ? "conflict"
                   : status == 404 ? "not_found"
                   : status == 503 ? "unavailable"
                                   : "invalid_request",
                   "%s", err->msg);
    return -1;
}

static void on_promote(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    if (admin__admit(a, req, ADMIN_ROLE_ADMIN, allowed, &who) != 0)
        return;
    runtime_t *rt = admin__runtime(a);
    json_t *o = rt ? body_object(req) : NULL;
    if (rt == NULL)
        admin__unavailable(req, "the flows runtime is not running");
    if (o == NULL)
        return;
    json_t *flows = json_object_get(o, "flows"), *versions = json_object_get(o, "versions");
    const char *to = json_string_value(json_object_get(o, "to"));
    size_t n = json_array_size(flows);
    const char *bad = (to == NULL)                             ? "to: an environment is required"
                      : flows != NULL && !json_is_array(flows) ? "flows: must be an array"
                      : versions != NULL && !json_is_object(versions)
                          ? "versions: must be an object"
                          : NULL;
    const char **names = core_xcalloc(n + 1, sizeof(*names));
    const char **vers = core_xcalloc(n + 1, sizeof(*vers));
    for (size_t i = 0; bad == NULL && i < n; i++) {
        names[i] = json_string_value(json_array_get(flows, i));
        vers[i] = names[i] ? json_string_value(json_object_get(versions, names[i])) : NULL;
        if (names[i] == NULL)
            bad = "flows: every item must be a flow name";
    }
    core_err_t err = {0};
    fl_job_t *j = NULL;
    const char *vk;
    json_t *vv;
    runtime_flow_file_t cur;
    json_object_foreach(n == 0 ? versions : NULL, vk, vv)
    {
        /* Every flow: each version the caller tested must still be staging's. */
        if (bad == NULL && (runtime_env_file(rt, RUNTIME_ENV_STAGING, vk, &cur) != 0 ||
                            !json_is_string(vv) || strcmp(cur.version, json_string_value(vv)))) {
            net_resp_error(req, 409, "conflict", "staging no longer runs %s %s: test again", vk,
                           json_is_string(vv) ? json_string_value(vv) : "?");
            free(names);
            free(vers);
            json_decref(o);
            return;
        }
    }
    if (bad != NULL) {
        net_resp_error(req, 400, "invalid_request", "%s", bad);
    } else {
        j = job_new(a, req);
        snprintf(j->env_name, sizeof(j->env_name), "%s", to);
        j->body = json_pack("{s:s, s:s}", "result", "promoted", "by", who.name);
        int rc = runtime_env_promote(rt, names, versions ? vers : NULL, n, to, who.name, on_changed,
                                     j, &err);
        if (rc != 0) {
            job_end(j);
            change_error(req, rc, &err);
        }
    }
    free(names);
    free(vers);
    json_decref(o);
}

/* The version to roll back to has been read: apply it. */
static void on_version_read(int status, json_t *row, const char *errmsg, void *data)
{
    fl_job_t *j = data;
    runtime_t *rt = admin__runtime(j->a);
    if (j->req == NULL || status != 0 || rt == NULL) {
        net_req_t *req = job_end(j);
        if (req != NULL && status == CORE_ERR_NOT_FOUND)
            net_resp_error(req, 404, "not_found", "%s", errmsg ? errmsg : "no such version");
        else if (req != NULL)
            admin__unavailable(req, errmsg ? errmsg : "the store could not be read");
        json_decref(row);
        return;
    }
    const char *content = json_string_value(json_object_get(row, "content"));
    runtime_flow_file_t f = {j->flow, json_string_value(json_object_get(row, "version")), content,
                             json_string_length(json_object_get(row, "content")), 1};
    json_object_set(j->body, "to_version", json_object_get(row, "version"));
    core_err_t err = {0};
    net_req_t *req = j->req;
    int rc = runtime_env_apply(rt, j->env_name, &f, 1, j->actor, "rollback", on_changed, j, &err);
    if (rc != 0) {
        job_end(j);
        change_error(req, rc, &err);
    }
    json_decref(row);
}

static void read_version(fl_job_t *j, const char *version)
{
    char arg[300];
    snprintf(arg, sizeof(arg), "%s@%s", j->flow, version);
    if (store_flows_async(admin__store(j->a), "version", arg, 1, on_version_read, j) != 0) {
        net_req_t *req = job_end(j);
        if (req != NULL)
            admin__unavailable(req, "the store is not answering");
    }
}

/* The flow's history in the environment: the version the current one
 * replaced, or a check that the version asked for ran there before. A
 * version new to the environment goes through a promotion (admin, tests)
 * instead: a rollback may only put back what ran. */
static void on_history(int status, json_t *rows, const char *errmsg, void *data)
{
    fl_job_t *j = data;
    const char *cur = json_string_value(json_object_get(j->body, "from_version"));
    const char *prev = NULL;
    int ran = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) /* newest first */
    {
        const char *ver = json_string_value(json_object_get(r, "version"));
        const char *was = json_string_value(json_object_get(r, "previous"));
        if (prev == NULL && ver && cur && strcmp(ver, cur) == 0)
            prev = was;
        ran |= (ver && strcmp(ver, j->to) == 0) || (was && strcmp(was, j->to) == 0);
    }
    const char *want = j->to[0] ? (ran ? j->to : NULL) : prev;
    if (status != 0 || want == NULL || j->req == NULL) {
        char *never = j->to[0] ? core_xasprintf("%s never ran version %s of %s: a version new to "
                                                "it is promoted (chorusctl flows promote), not "
                                                "rolled back to",
                                                j->env_name, j->to, j->flow)
                               : NULL;
        net_req_t *req = job_end(j);
        if (req != NULL && status != 0)
            admin__unavailable(req, errmsg ? errmsg : "the store could not be read");
        else if (req != NULL)
            net_resp_error(req, 409, "conflict", "%s",
                           never ? never
                                 : "no earlier version of the flow is recorded; name one with "
                                   "to_version");
        free(never);
        json_decref(rows);
        return;
    }
    char p[130];
    snprintf(p, sizeof(p), "%s", want);
    json_decref(rows);
    read_version(j, p);
}

static void on_rollback(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    admin_identity_t who;
    if (admin__admit(a, req, ADMIN_ROLE_OPERATOR, allowed, &who) != 0)
        return;
    runtime_t *rt = admin__runtime(a);
    if (rt == NULL || admin__store(a) == NULL) {
        admin__unavailable(req, "the flows runtime or the store is not running");
        return;
    }
    json_t *o = body_object(req);
    if (o == NULL)
        return;
    const char *flow = json_string_value(json_object_get(o, "flow"));
    const char *to = json_string_value(json_object_get(o, "to_version"));
    const char *env = json_string_value(json_object_get(o, "env"));
    env = env ? env : RUNTIME_ENV_PRODUCTION;
    runtime_flow_file_t cur;
    if (!valid_name(flow) || (to != NULL && !valid_name(to))) {
        net_resp_error(req, 400, "invalid_request", "flow (and to_version): names required");
    } else if (runtime_env_file(rt, env, flow, &cur) != 0) {
        net_resp_error(req, 404, "not_found", "%s runs no flow %s", env, flow);
    } else {
        fl_job_t *j = job_new(a, req);
        snprintf(j->flow, sizeof(j->flow), "%s", flow);
        snprintf(j->env_name, sizeof(j->env_name), "%s", env);
        snprintf(j->actor, sizeof(j->actor), "%s", who.name);
        j->body = json_pack("{s:s, s:s, s:s, s:s}", "result", "rolled_back", "flow", flow,
                            "from_version", cur.version, "by", who.name);
        snprintf(j->to, sizeof(j->to), "%s", to ? to : "");
        char arg[300];
        snprintf(arg, sizeof(arg), "%s/%s", env, flow);
        if (store_flows_async(admin__store(a), "history", arg, 0, on_history, j) != 0) {
            job_end(j);
            admin__unavailable(req, "the store is not answering");
        }
    }
    json_decref(o);
}

int admin__flows_env_register(net_router_t *r, admin_t *a, core_err_t *err)
{
    int rc = net_router_add(r, "GET", "/v1/admin/flows", on_list, a, err);
    if (rc == 0)
        rc = net_router_add(r, "GET", "/v1/admin/flows/{name}/versions", on_versions, a, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/admin/flows/promote", on_promote, a, err);
    if (rc == 0)
        rc = net_router_add(r, "POST", "/v1/admin/flows/rollback", on_rollback, a, err);
    return rc;
}
