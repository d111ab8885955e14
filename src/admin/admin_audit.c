/* GET /v1/admin/audit (role operator): the audit trail, newest first, one
 * page at a time. The query runs on the thread pool (store_audit_async)
 * like the other admin reads, counted against ADMIN_MAX_INFLIGHT; a client
 * that hangs up first is detached and its result dropped. Paging is by the
 * row id, which only grows, so rows appended while an operator pages never
 * shift a page. */
#define LOG_MODULE "admin"
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

typedef struct {
    admin_t *a;
    net_req_t *req; /* NULL once the connection died */
} audit_job_t;

static void on_abort(net_req_t *req, void *data)
{
    ((audit_job_t *)data)->req = NULL;
}

static void on_result(int status, json_t *result, const char *errmsg, void *data)
{
    audit_job_t *j = data;
    j->a->inflight--;
    if (j->req != NULL && status == 0) {
        net_resp_json(j->req, 200, result);
    } else if (j->req != NULL) {
        char q[200];
        LOG_WARN("event=admin_query_failed what=audit status=%s error=%s", core_strerror(status),
                 core_log_quote(q, sizeof(q), errmsg ? errmsg : "", (size_t)-1, 160));
        if (status == CORE_ERR_CLOSED || status == CORE_ERR_BUSY)
            net_resp_header(j->req, "Retry-After", "1");
        net_resp_error(j->req, status == CORE_ERR_CLOSED || status == CORE_ERR_BUSY ? 503 : 500,
                       status == CORE_ERR_CLOSED || status == CORE_ERR_BUSY ? "unavailable"
                                                                            : "internal",
                       "%s", errmsg ? errmsg : core_strerror(status));
    }
    json_decref(result);
    free(j);
}

/* Fills q from the query string; answers 400 and returns -1 on a bad one. */
static int audit_query(net_req_t *req, store_audit_query_t *q)
{
    core_err_t err = {0};
    const char *v;
    long long n;
    memset(q, 0, sizeof(*q));
    if ((v = admin__param(req, "since")) != NULL && store_parse_time(v, &q->since_us, &err) != 0)
        return net_resp_error(req, 400, "invalid_parameter", "since: %s", err.msg), -1;
    if ((v = admin__param(req, "until")) != NULL && store_parse_time(v, &q->until_us, &err) != 0)
        return net_resp_error(req, 400, "invalid_parameter", "until: %s", err.msg), -1;
    q->limit = 100;
    if ((v = admin__param(req, "limit")) != NULL) {
        if (admin__parse_int(v, 1, 1000, &n) != 0)
            return net_resp_error(req, 400, "invalid_parameter", "limit: must be 1 to 1000"), -1;
        q->limit = (int)n;
    }
    if ((v = admin__param(req, "cursor")) != NULL) {
        if (admin__parse_int(v, 1, INT64_MAX, &n) != 0)
            return net_resp_error(req, 400, "invalid_parameter",
                                  "cursor: not a next_cursor this API returned"),
                   -1;
        q->before_id = n;
    }
    q->action = admin__param(req, "action");
    q->actor = admin__param(req, "actor");
    return 0;
}

void admin__on_audit(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"since", "until",  "action", "actor",
                                          "limit", "cursor", NULL};
    admin_t *a = data;
    store_audit_query_t q;
    if (admin__admit(a, req, ADMIN_ROLE_OPERATOR, allowed, NULL) != 0 || audit_query(req, &q) != 0)
        return;
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    audit_job_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    if (store_audit_async(s, &q, on_result, j) != 0) {
        free(j);
        admin__unavailable(req, "the store is not accepting queries");
        return;
    }
    a->inflight++;
    net_req_on_abort(req, on_abort, j);
}
