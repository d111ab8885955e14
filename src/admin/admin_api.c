/* The admin API's reads: the KPI report, the conversation list and one
 * transcript. Each validates its parameters on the loop (400 naming the bad
 * one), then runs its query on the thread pool through the store's *_async
 * calls with a job as the callback's data. The job remembers the request
 * until the answer; if the connection dies first, the abort callback
 * detaches it and the result is dropped when the query comes back.
 *
 * The conversation list pages by a cursor rather than an offset, so a page
 * stays correct while new conversations arrive: the list is newest first
 * (started_us descending, then id), and the cursor "STARTED_US.SKIP" asks for
 * the conversations that started at or before STARTED_US, less the first SKIP
 * of those that started exactly then (already returned). */
#define LOG_MODULE "admin"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

enum { LIST_DEFAULT = 50, LIST_MAX = 1000 };

typedef struct job_s {
    admin_t *a;
    net_req_t *req; /* NULL once the connection died */
    const char *what;
    int limit;   /* list: the page size asked for */
    int skip;    /* list: rows to drop before the page (cursor ties) */
    int fetched; /* list: rows asked of the store */
} job_t;

static void on_abort(net_req_t *req, void *data)
{
    job_t *j = data;
    j->req = NULL;
    LOG_DEBUG("event=admin_request_aborted what=%s", j->what);
}

static job_t *job_new(admin_t *a, net_req_t *req, const char *what)
{
    job_t *j = core_xcalloc(1, sizeof(*j));
    j->a = a;
    j->req = req;
    j->what = what;
    return j;
}

/* Answers a failed query: 404, 400, 503 or 500 by its status. */
static void answer_error(net_req_t *req, int status, const char *msg, const char *what)
{
    msg = msg != NULL ? msg : core_strerror(status);
    if (status == CORE_ERR_NOT_FOUND) {
        net_resp_error(req, 404, "not_found", "%s", msg);
        return;
    }
    if (status == CORE_ERR_INVALID) {
        net_resp_error(req, 400, "invalid_parameter", "%s", msg);
        return;
    }
    char q[200];
    LOG_WARN("event=admin_query_failed what=%s status=%s error=%s", what, core_strerror(status),
             core_log_quote(q, sizeof(q), msg, (size_t)-1, 160));
    if (status == CORE_ERR_CLOSED || status == CORE_ERR_BUSY) {
        admin__unavailable(req, msg);
    } else {
        net_resp_error(req, 500, "internal", "%s", msg);
    }
}

/* Starts a query (rc from the *_async call): on failure answers and frees. */
static void started(job_t *j, int rc)
{
    if (rc == 0) {
        j->a->inflight++;
        net_req_on_abort(j->req, on_abort, j);
        return;
    }
    answer_error(j->req, CORE_ERR_CLOSED, "the store is not accepting queries", j->what);
    free(j);
}

/* 400 naming the parameter (the store's parsers name some themselves). */
static int bad(net_req_t *req, const char *name, const core_err_t *err)
{
    size_t n = strlen(name);
    int named = strncmp(err->msg, name, n) == 0 && err->msg[n] == ':';
    net_resp_error(req, 400, "invalid_parameter", "%s%s%s", named ? "" : name, named ? "" : ": ",
                   err->msg);
    return -1;
}

/* ---- GET /v1/admin/reports/kpis ----------------------------------------- */

static void on_json(int status, json_t *result, const char *errmsg, void *data)
{
    job_t *j = data;
    j->a->inflight--;
    if (j->req != NULL) {
        if (status == 0)
            net_resp_json(j->req, 200, result);
        else
            answer_error(j->req, status, errmsg, j->what);
    }
    json_decref(result);
    free(j);
}

static int report_query(net_req_t *req, const core_config_t *cfg, store_report_query_t *q)
{
    core_err_t err = {0};
    const char *v;
    memset(q, 0, sizeof(*q));
    if ((v = admin__param(req, "from")) != NULL && store_parse_time(v, &q->from_us, &err) != 0)
        return bad(req, "from", &err);
    if ((v = admin__param(req, "to")) != NULL && store_parse_time(v, &q->to_us, &err) != 0)
        return bad(req, "to", &err);
    if ((v = admin__param(req, "by")) != NULL && store_report_parse_by(v, &q->by, &err) != 0)
        return bad(req, "by", &err);
    if ((v = admin__param(req, "bucket")) != NULL &&
        store_report_parse_bucket(v, &q->bucket, &err) != 0)
        return bad(req, "bucket", &err);
    if (q->from_us != 0 && q->to_us != 0 && q->to_us <= q->from_us) {
        net_resp_error(req, 400, "invalid_parameter", "to: must be after from");
        return -1;
    }
    store_report_costs_from_config(cfg, q);
    return 0;
}

void admin__on_kpis(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"from", "to", "by", "bucket", NULL};
    admin_t *a = data;
    store_report_query_t q;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0 ||
        report_query(req, a->host.cfg, &q) != 0)
        return;
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    job_t *j = job_new(a, req, "report");
    started(j, store_report_async(s, &q, on_json, j));
}

/* ---- GET /v1/admin/conversations ---------------------------------------- */

static void on_list(int status, json_t *result, const char *errmsg, void *data)
{
    job_t *j = data;
    j->a->inflight--;
    if (j->req != NULL && status != 0) {
        answer_error(j->req, status, errmsg, j->what);
    } else if (j->req != NULL) {
        json_t *all = json_object_get(result, "conversations");
        json_t *page = json_array();
        size_t n = json_array_size(all);
        for (size_t i = (size_t)j->skip; i < n && json_array_size(page) < (size_t)j->limit; i++)
            json_array_append(page, json_array_get(all, i));
        json_t *next = json_null();
        size_t last = (size_t)j->skip + json_array_size(page);
        /* more rows than the page, or the store's cap was hit: a cursor */
        int capped = n == (size_t)j->fetched && j->fetched < j->skip + j->limit + 1;
        if (json_array_size(page) > 0 && (last < n || capped)) {
            json_int_t started = json_integer_value(
                json_object_get(json_array_get(page, json_array_size(page) - 1), "started_us"));
            int ties = 0;
            for (size_t i = 0; i < last; i++)
                ties += json_integer_value(json_object_get(json_array_get(all, i), "started_us")) ==
                        started;
            next = json_sprintf("%" JSON_INTEGER_FORMAT ".%d", started, ties);
        }
        json_t *body = json_pack("{s:o,s:i,s:o}", "conversations", page, "limit", j->limit,
                                 "next_cursor", next);
        net_resp_json(j->req, 200, body);
        json_decref(body);
    }
    json_decref(result);
    free(j);
}

/* "STARTED_US.SKIP" */
static int parse_cursor(const char *s, int64_t *started, int *skip)
{
    const char *dot = strchr(s, '.');
    char head[24];
    long long v, k;
    if (dot == NULL || (size_t)(dot - s) >= sizeof(head))
        return -1;
    memcpy(head, s, (size_t)(dot - s));
    head[dot - s] = '\0';
    if (admin__parse_int(head, 1, INT64_MAX - 1, &v) != 0 ||
        admin__parse_int(dot + 1, 0, LIST_MAX, &k) != 0)
        return -1;
    *started = v;
    *skip = (int)k;
    return 0;
}

static int list_query(net_req_t *req, store_list_query_t *q, job_t *j)
{
    core_err_t err = {0};
    const char *v;
    long long limit = LIST_DEFAULT;
    memset(q, 0, sizeof(*q));
    if ((v = admin__param(req, "from")) != NULL && store_parse_time(v, &q->from_us, &err) != 0)
        return bad(req, "from", &err);
    if ((v = admin__param(req, "to")) != NULL && store_parse_time(v, &q->to_us, &err) != 0)
        return bad(req, "to", &err);
    if ((v = admin__param(req, "limit")) != NULL && admin__parse_int(v, 1, LIST_MAX, &limit) != 0)
        return net_resp_error(req, 400, "invalid_parameter", "limit: must be 1 to %d", LIST_MAX),
               -1;
    q->outcome = admin__param(req, "outcome");
    if (q->outcome != NULL && strcmp(q->outcome, "active") && strcmp(q->outcome, "contained") &&
        strcmp(q->outcome, "escalated") && strcmp(q->outcome, "abandoned") &&
        strcmp(q->outcome, "error"))
        return net_resp_error(req, 400, "invalid_parameter",
                              "outcome: must be active, contained, escalated, abandoned or error"),
               -1;
    q->channel = admin__param(req, "channel");
    q->flow = admin__param(req, "flow");
    j->limit = (int)limit;
    if ((v = admin__param(req, "cursor")) != NULL) {
        int64_t started;
        if (parse_cursor(v, &started, &j->skip) != 0)
            return net_resp_error(req, 400, "invalid_parameter",
                                  "cursor: not a next_cursor this API returned"),
                   -1;
        if (q->to_us == 0 || started + 1 < q->to_us)
            q->to_us = started + 1; /* started at or before the cursor */
    }
    /* one more than the page tells whether there is a next one */
    long long want = (long long)j->skip + limit + 1;
    q->limit = want < LIST_MAX ? (int)want : LIST_MAX;
    j->fetched = q->limit;
    return 0;
}

void admin__on_list(net_req_t *req, void *data)
{
    static const char *const allowed[] = {"from",    "to",    "channel", "flow",
                                          "outcome", "limit", "cursor",  NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    store_list_query_t q;
    job_t *j = job_new(a, req, "conversations");
    if (list_query(req, &q, j) != 0) {
        free(j);
        return;
    }
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL) {
        free(j);
        return;
    }
    started(j, store_conversations_async(s, &q, on_list, j));
}

/* ---- GET /v1/admin/conversations/{id} ----------------------------------- */

void admin__on_show(net_req_t *req, void *data)
{
    static const char *const allowed[] = {NULL};
    admin_t *a = data;
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    const char *id = net_req_param(req, "id");
    if (id == NULL || id[0] == '\0' || strlen(id) > 512) {
        net_resp_error(req, 400, "invalid_parameter", "id: must be 1 to 512 bytes");
        return;
    }
    store_t *s = admin__store_or_503(a, req);
    if (s == NULL)
        return;
    job_t *j = job_new(a, req, "transcript");
    started(j, store_transcript_async(s, id, on_json, j));
}
