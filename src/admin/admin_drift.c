/* Scheduled drift detection (docs/flywheel.md, "Drift"): every
 * drift.interval_s the store compares the recent window with the baseline
 * before it on the thread pool (store_drift_async); an alert is logged once
 * per check with the signals and the intents that moved, counted in
 * /metrics, kept for GET /v1/admin/drift and, when drift.webhook_url is set,
 * posted there as JSON. Loop thread only. */
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "admin"
#include "admin/admin_int.h"
#include "chorus/net_client.h"

static struct {
    admin_t *a;
    uv_timer_t timer;
    int timer_init, running;
    store_drift_limits_t lim;
    json_t *last; /* the latest report, or NULL */
    net_client_t *hook;
    char *hook_url;
    uint64_t alerts; /* checks that found drift */
} D;

static double decimal(const char *s, double def)
{
    char *end;
    double v = s ? strtod(s, &end) : def;
    return s && end != s && *end == '\0' ? v : def;
}

static void on_hook_done(net_client_response_t *r)
{
    if (r->error != 0 || r->status < 200 || r->status > 299)
        LOG_WARN("event=drift_webhook status=failed http_status=%d reason=\"%s\"", r->status,
                 r->error ? r->error_msg : "not 2xx");
}

static void post_webhook(const json_t *report)
{
    if (D.hook == NULL)
        return;
    char *body = json_dumps(report, JSON_COMPACT);
    net_client_header_t h = {"Content-Type", "application/json"};
    net_client_request_t req = {.method = "POST",
                                .url = D.hook_url,
                                .headers = &h,
                                .n_headers = 1,
                                .body = body,
                                .body_len = strlen(body),
                                .timeout_ms = 10000};
    core_err_t err = {0};
    if (net_client_request(D.hook, &req, on_hook_done, NULL, NULL, &err) != 0)
        LOG_WARN("event=drift_webhook status=not_sent reason=\"%s\"", err.msg);
    free(body);
}

/* One line: the signals that crossed their limits and the intents that moved. */
static void log_alert(const json_t *r)
{
    char signals[256] = "", moved[256] = "";
    size_t i, n = 0, m = 0;
    json_t *x;
    json_array_foreach(json_object_get(r, "alerts"), i, x) if (n < sizeof(signals)) n +=
        (size_t)snprintf(signals + n, sizeof(signals) - n, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(x, "signal")));
    json_array_foreach(json_object_get(json_object_get(r, "distribution"), "moved"), i,
                       x) if (m < sizeof(moved)) m +=
        (size_t)snprintf(moved + m, sizeof(moved) - m, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(x, "intent")));
    LOG_WARN("event=drift_alert signals=%s psi=%.4f moved=\"%s\"", signals,
             json_number_value(json_object_get(json_object_get(r, "distribution"), "psi")), moved);
}

static void on_report(int status, json_t *r, const char *errmsg, void *data)
{
    (void)data;
    D.running = 0;
    if (status != 0) {
        if (status != CORE_ERR_CLOSED)
            LOG_WARN("event=drift_check status=failed reason=\"%s\"", errmsg ? errmsg : "");
        return;
    }
    json_decref(D.last);
    D.last = r;
    store_metrics_t *m = D.a->host.metrics ? *D.a->host.metrics : NULL;
    double psi = json_number_value(json_object_get(json_object_get(r, "distribution"), "psi"));
    if (m != NULL)
        store_metrics_set(m, STORE_M_DRIFT_PSI, NULL, psi);
    if (!json_is_true(json_object_get(r, "drift")))
        return;
    D.alerts++;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r, "alerts"), i, x) if (m != NULL)
    {
        const char *l[] = {json_string_value(json_object_get(x, "signal")), NULL};
        store_metrics_add(m, STORE_M_DRIFT_ALERTS, l, 1);
    }
    log_alert(r);
    post_webhook(r);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    store_t *s = admin__store(D.a);
    if (s == NULL || D.running)
        return;
    if (store_drift_async(s, core_wall_us(), &D.lim, on_report, NULL) == 0)
        D.running = 1;
}

static void on_drift(net_req_t *req, void *data)
{
    admin_t *a = data;
    static const char *const allowed[] = {NULL};
    if (admin__admit(a, req, ADMIN_ROLE_VIEWER, allowed, NULL) != 0)
        return;
    json_t *body = json_pack("{s:b,s:I,s:I,s:O}", "enabled", D.timer_init, "interval_s",
                             (json_int_t)a->host.cfg->drift.interval_s, "alerts",
                             (json_int_t)D.alerts, "last", D.last ? D.last : json_null());
    net_resp_json(req, 200, body);
    json_decref(body);
}

int admin__drift_register(net_router_t *r, admin_t *a, core_err_t *err)
{
    const core_config_t *cfg = a->host.cfg;
    D.a = a;
    D.lim = (store_drift_limits_t){
        .recent_s = cfg->drift.recent_s,
        .baseline_s = cfg->drift.baseline_s,
        .psi = decimal(cfg->drift.psi, 0.25),
        .rate_delta = decimal(cfg->drift.rate_delta, 0.10),
        .confidence_drop = decimal(cfg->drift.confidence_drop, 0.10),
        .min_turns = cfg->drift.min_turns,
    };
    int rc = net_router_add(r, "GET", "/v1/admin/drift", on_drift, a, err);
    if (rc != 0 || cfg->drift.interval_s == 0 || a->host.loop == NULL)
        return rc;
    if (cfg->drift.webhook_url != NULL && cfg->drift.webhook_url[0] != '\0') {
        net_client_options_t o = {.max_transfers = 4};
        if ((rc = net_client_new(a->host.loop, &o, &D.hook, err)) != 0)
            return rc;
        D.hook_url = core_xstrdup(cfg->drift.webhook_url);
    }
    uv_timer_init(a->host.loop, &D.timer);
    uv_unref((uv_handle_t *)&D.timer);
    D.timer_init = 1;
    uint64_t ms = (uint64_t)cfg->drift.interval_s * 1000;
    uv_timer_start(&D.timer, on_tick, ms, ms);
    return 0;
}

void admin__drift_stop(void)
{
    if (D.timer_init)
        uv_close((uv_handle_t *)&D.timer, NULL);
    D.timer_init = 0;
    if (D.hook != NULL)
        net_client_close(D.hook, NULL, NULL);
    D.hook = NULL;
    free(D.hook_url);
    D.hook_url = NULL;
    json_decref(D.last);
    D.last = NULL;
}
