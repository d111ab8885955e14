/* What each reload attempt leaves behind (runtime.h, "hot reload"): the
 * status GET /v1/admin/flows/status shows (the version in force and the last
 * attempt with its problems as `file:line:col: path: message`), the
 * chorus_flows_reload* metrics, one audit row, and log lines. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime_reload_int.h"

/* RFC 3339 UTC with milliseconds. */
static json_t *iso_time(int64_t wall_us)
{
    time_t s = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)((wall_us / 1000) % 1000));
    return json_string(buf);
}

static json_t *problems(const core_diags_t *diags)
{
    json_t *a = json_array();
    char line[2048];
    for (size_t i = 0; diags != NULL && i < diags->len; i++)
        json_array_append_new(a,
                              json_string(core_diag_format(&diags->items[i], line, sizeof(line))));
    return a;
}

/* [{"name", "file", "sha256"}] of the flowset in force, with each file's
 * hash from the scan the load followed. */
static json_t *flows_of(const rt_reloader_t *r, const brain_flowset_t *fs)
{
    json_t *a = json_array();
    size_t n = fs != NULL ? brain_flowset_flow_count(fs) : 0;
    for (size_t i = 0; i < n; i++) {
        brain_flow_info_t info;
        if (brain_flowset_flow_info(fs, i, &info) != 0)
            continue;
        const rt_snap_entry_t *e = rt_snap_find(&r->attempted, info.file);
        const char *slash = strrchr(info.file, '/');
        json_array_append_new(a, json_pack("{s:s, s:s, s:s?}", "name", info.name, "file",
                                           slash ? slash + 1 : info.file, "sha256",
                                           e ? e->sha256 : NULL));
    }
    return a;
}

static json_t *attempt_json(const rt_reloader_t *r, int rc, const core_diags_t *diags,
                            uint64_t duration_us, const brain_flowset_t *fs)
{
    const char *result = rc == 0 ? "loaded" : rc == CORE_ERR_CLOSED ? "closed" : "rejected";
    json_t *o =
        json_pack("{s:s, s:s, s:s?, s:o, s:I, s:f, s:I, s:o}", "result", result, "trigger",
                  runtime_trigger_name(r->run.trigger), "actor", r->run.actor, "started_at",
                  iso_time(r->run.start_wall_us), "started_us", (json_int_t)r->run.start_wall_us,
                  "duration_ms", (double)duration_us / 1000.0, "files",
                  (json_int_t)r->attempted.len, "errors", problems(rc == 0 ? NULL : diags));
    if (rc == 0 && fs != NULL)
        json_object_set_new(o, "version", json_integer(brain_flowset_version(fs)));
    return o;
}

static json_t *in_force_json(const rt_reloader_t *r, uint64_t duration_us,
                             const brain_flowset_t *fs)
{
    int64_t now = core_wall_us();
    return json_pack("{s:I, s:o, s:I, s:s, s:s?, s:f, s:s, s:s, s:f, s:o}", "version",
                     (json_int_t)brain_flowset_version(fs), "loaded_at", iso_time(now), "loaded_us",
                     (json_int_t)now, "trigger", runtime_trigger_name(r->run.trigger), "actor",
                     r->run.actor, "duration_ms", (double)duration_us / 1000.0, "nlu",
                     brain_flowset_nlu_from_cache(fs) ? "cached" : "trained", "nlu_hash",
                     brain_flowset_nlu_hash(fs), "confidence_threshold",
                     brain_flowset_threshold(fs), "flows", flows_of(r, fs));
}

static void count(const rt_reloader_t *r, int rc, uint64_t duration_us)
{
    store_metrics_t *m = r->rt->opts.metrics;
    if (m == NULL || rc == CORE_ERR_CLOSED)
        return;
    const char *labels[1] = {rc == 0 ? "loaded" : "rejected"};
    store_metrics_add(m, STORE_M_FLOWS_RELOADS, labels, 1);
    store_metrics_observe(m, STORE_M_FLOWS_RELOAD_SECONDS, NULL, (double)duration_us / 1e6);
    if (rc == 0)
        store_metrics_set(m, STORE_M_FLOWS_RELOAD_LAST_SUCCESS, NULL, (double)core_wall_us() / 1e6);
}

static void on_audited(int status, void *data)
{
    if (status != 0)
        LOG_WARN("event=flows_reload_audit_failed status=%s", core_strerror(status));
}

static void audit(const rt_reloader_t *r, const json_t *attempt)
{
    store_t *s = r->rt->opts.store;
    if (s == NULL)
        return;
    json_t *d = json_deep_copy(attempt);
    json_object_set_new(d, "dir", json_string(r->dir));
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    store_batch_t *b = store_batch_new();
    const char *actor = r->run.actor ? r->run.actor : runtime_trigger_name(r->run.trigger);
    store_batch_audit(b, actor, "flows.reload", r->dir, detail, core_wall_us());
    free(detail);
    if (store_enqueue(s, b, on_audited, NULL) != 0) {
        LOG_WARN("event=flows_reload_audit_failed status=not_queued");
        store_batch_free(b);
    }
}

static void log_attempt(const rt_reloader_t *r, int rc, const core_diags_t *diags,
                        uint64_t duration_us, const brain_flowset_t *fs)
{
    const char *trigger = runtime_trigger_name(r->run.trigger);
    const char *actor = r->run.actor ? r->run.actor : "-";
    if (rc == 0) {
        LOG_INFO("event=flows_reload status=loaded trigger=%s actor=%s version=%u flows=%zu "
                 "files=%zu duration_ms=%llu",
                 trigger, actor, brain_flowset_version(fs), brain_flowset_flow_count(fs),
                 r->attempted.len, (unsigned long long)(duration_us / 1000));
        return;
    }
    char line[2048], q[1100];
    for (size_t i = 0; diags != NULL && i < diags->len; i++)
        LOG_ERROR("event=flows_reload_problem trigger=%s problem=%s", trigger,
                  core_log_quote(q, sizeof(q),
                                 core_diag_format(&diags->items[i], line, sizeof(line)), (size_t)-1,
                                 1000));
    LOG_WARN("event=flows_reload status=rejected trigger=%s actor=%s problems=%zu "
             "kept_version=%u duration_ms=%llu",
             trigger, actor, diags ? diags->len : 0, fs ? brain_flowset_version(fs) : 0,
             (unsigned long long)(duration_us / 1000));
}

void rt_waiters_run(rt_waiter_t *w, int rc, const json_t *attempt)
{
    while (w != NULL) {
        rt_waiter_t *next = w->next;
        w->cb(rc, attempt, w->data);
        free(w);
        w = next;
    }
}

void rt_reload_finish(rt_reloader_t *r, int rc, const core_diags_t *diags)
{
    uint64_t duration_us = core_now_us() - r->run.start_us;
    /* Once stopped, or when the load could not run because the runtime is
     * closing, the runtime may already be freed (a stop that lands during
     * the load's directory scan): nothing of it is read, and only the
     * waiters hear how the attempt ended. */
    int live = !r->stopped && rc != CORE_ERR_CLOSED;
    /* The flows directory feeds staging: its set is what this load put in force. */
    const brain_flowset_t *fs = live ? runtime_env_flowset(r->rt, RUNTIME_ENV_STAGING) : NULL;
    json_t *attempt = attempt_json(r, rc, diags, duration_us, rc == 0 ? fs : NULL);
    if (live) {
        if (rc == 0) {
            r->loaded++;
            json_decref(r->in_force);
            r->in_force = in_force_json(r, duration_us, fs);
        } else {
            r->rejected++;
        }
        json_decref(r->last);
        r->last = json_incref(attempt);
        log_attempt(r, rc, diags, duration_us, fs);
        count(r, rc, duration_us);
        audit(r, attempt);
    }
    rt_waiter_t *w = r->run.waiters;
    r->run.waiters = NULL;
    rt_waiters_run(w, rc, attempt);
    json_decref(attempt);
}

void rt_reload_status_dispose(rt_reloader_t *r)
{
    json_decref(r->in_force);
    json_decref(r->last);
    free(r->run.actor);
    r->in_force = r->last = NULL;
    r->run.actor = NULL;
}

json_t *runtime_reload_status(const runtime_t *rt)
{
    rt_reloader_t *r = rt_reloader_of(rt);
    if (r == NULL)
        return NULL;
    return json_pack("{s:s, s:{s:b, s:I, s:I}, s:O?, s:O?, s:b, s:b, s:{s:I, s:I}}", "dir", r->dir,
                     "watch", "enabled", r->opts.watch, "debounce_ms",
                     (json_int_t)r->opts.debounce_ms, "rescan_interval_ms",
                     (json_int_t)r->opts.rescan_interval_ms, "in_force", r->in_force,
                     "last_attempt", r->last, "loading", r->sm.loading, "pending",
                     r->sm.pending || r->sm.recheck, "attempts", "loaded", (json_int_t)r->loaded,
                     "rejected", (json_int_t)r->rejected);
}
