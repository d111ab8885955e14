/* Running rollouts (admin_rollout_int.h): starting one (the candidate's
 * stored content handed to the runtime, then the running row and an audit
 * entry), the guard
 * itself (a timer that reads each running rollout's per-variant KPIs on the
 * thread pool and judges them with rollout_guard_eval) and, once the first
 * flows are in force after a start, the running rows read back and their
 * candidates rebuilt. Ending one is admin_rollout_end.c's. Nothing here
 * blocks the loop: every read and write is a store *_async call, every build
 * a runtime one. */
#define LOG_MODULE "admin"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_rollout_int.h"

static struct {
    admin_ro_t *running; /* in memory: the rollouts serving (or building) */
    uv_timer_t timer;    /* the guard; .data is the admin_t */
    int timer_init;
    int resumed; /* the running rows were read back (or that was tried) */
} R;

admin_ro_t *admin__ro_find(const char *key, const char *env)
{
    for (admin_ro_t *ro = R.running; ro != NULL; ro = ro->next)
        if (strcmp(ro->id, key) == 0 ||
            (strcmp(ro->flow, key) == 0 && (env == NULL || strcmp(ro->env, env) == 0)))
            return ro;
    return NULL;
}

admin_ro_t *admin__ro_in_env(const char *env)
{
    for (admin_ro_t *ro = R.running; ro != NULL; ro = ro->next)
        if (strcmp(ro->env, env) == 0)
            return ro;
    return NULL;
}

static int listed(const admin_ro_t *x)
{
    for (admin_ro_t *ro = R.running; ro != NULL; ro = ro->next)
        if (ro == x)
            return 1;
    return 0;
}

void admin__ro_unlink(admin_ro_t *x)
{
    for (admin_ro_t **p = &R.running; *p != NULL; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            x->next = NULL;
            return;
        }
}

void admin__ro_free(admin_ro_t *ro)
{
    if (ro == NULL)
        return;
    free(ro->id), free(ro->env), free(ro->flow), free(ro->candidate), free(ro->control);
    free(ro->started_by);
    free(ro);
}

store_metrics_t *admin__ro_metrics(admin_t *a)
{
    return a->host.metrics != NULL ? *a->host.metrics : NULL;
}

/* chorus_rollouts_running: the rollouts serving now. */
void admin__ro_count_running(admin_t *a)
{
    double n = 0;
    for (admin_ro_t *ro = R.running; ro != NULL; ro = ro->next)
        n += ro->ready;
    if (admin__ro_metrics(a) != NULL)
        store_metrics_set(admin__ro_metrics(a), STORE_M_ROLLOUTS_RUNNING, NULL, n);
}

store_rollout_t admin__ro_row(const admin_ro_t *ro, const char *status)
{
    return (store_rollout_t){.id = ro->id,
                             .env = ro->env,
                             .flow = ro->flow,
                             .candidate_version = ro->candidate,
                             .control_version = ro->control,
                             .percent = ro->percent,
                             .status = status,
                             .started_us = ro->started_us,
                             .started_by = ro->started_by};
}

/* Writes row and its audit entry (action by actor, detail taken) in one
 * batch: both or neither. done runs once, on the loop. */
void admin__ro_record(admin_t *a, const store_rollout_t *row, const char *actor, const char *action,
                      json_t *detail, int64_t ts_us, store_done_cb done, void *data)
{
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(detail);
    store_batch_t *b = store_batch_new();
    store_batch_rollout(b, row);
    store_batch_audit(b, actor, action, row->id, text, ts_us);
    free(text);
    store_t *s = admin__store(a);
    int rc = s != NULL ? store_enqueue(s, b, done, data) : CORE_ERR_CLOSED;
    if (rc != 0) {
        store_batch_free(b);
        done(rc, data);
    }
}

json_t *admin__ro_detail(const admin_ro_t *ro, const char *reason)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:i,s:s?}", "flow", ro->flow, "env", ro->env,
                     "candidate_version", ro->candidate, "control_version", ro->control, "percent",
                     (int)ro->percent, "reason", reason);
}

json_t *admin__ro_json(const admin_ro_t *ro)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:I,s:s,s:n,s:n,s:n,s:b}", "id", ro->id, "env",
                     ro->env, "flow", ro->flow, "candidate_version", ro->candidate,
                     "control_version", ro->control, "percent", (int)ro->percent, "status",
                     ROLLOUT_RUNNING, "started_us", (json_int_t)ro->started_us, "started_by",
                     ro->started_by, "ended_us", "ended_by", "reason", "serving", ro->ready);
}

static double cfg_decimal(const char *s, double def)
{
    char *end;
    double v = s != NULL ? strtod(s, &end) : def;
    return s != NULL && end != s ? v : def;
}

void admin__ro_guard(const core_config_t *cfg, rollout_guard_t *g)
{
    g->min_sample = cfg->rollouts.min_sample;
    g->max_error_rate_delta = cfg_decimal(cfg->rollouts.max_error_rate_delta, 0.05);
    g->max_escalation_rate_delta = cfg_decimal(cfg->rollouts.max_escalation_rate_delta, 0.10);
    g->max_p95_latency_ratio = cfg_decimal(cfg->rollouts.max_p95_latency_ratio, 1.5);
    g->p95_latency_slack_ms = (double)cfg->rollouts.p95_latency_slack_ms;
}

/* ---- starting ---------------------------------------------------------------- */

typedef struct {
    admin_t *a;
    admin_ro_t *ro; /* owned until listed */
    char *actor;
    int resume; /* rebuilding a running row after a restart */
    int own;    /* ro is ours to free (not listed, not handed to admin__ro_end_aborted) */
    admin_ro_cb cb;
    void *data;
} start_t;

static void start_done(start_t *st, int rc, const char *msg)
{
    json_t *row = rc == 0 ? admin__ro_json(st->ro) : NULL;
    if (st->cb != NULL)
        st->cb(rc, msg, row, st->data);
    json_decref(row);
    if (st->own)
        admin__ro_free(st->ro);
    free(st->actor);
    free(st);
}

/* A resumed rollout that cannot be rebuilt ends as aborted, saying why. */
static void resume_failed(start_t *st, int rc, const char *msg)
{
    LOG_WARN("event=rollout_resume_failed id=%s flow=%s reason=\"%s\"", st->ro->id, st->ro->flow,
             msg);
    admin__ro_unlink(st->ro);
    st->own = 0; /* admin__ro_end_aborted takes it */
    char *reason = core_xasprintf("could not resume after a restart: %s", msg);
    admin__ro_end_aborted(st->a, st->ro, reason);
    free(reason);
    start_done(st, rc, msg);
}

static void on_start_saved(int status, void *data)
{
    start_t *st = data;
    admin_ro_t *ro = st->ro;
    if (status != 0) {
        runtime_t *rt = admin__runtime(st->a);
        if (!listed(ro)) { /* ended meanwhile: that end owns it */
            start_done(st, status, "the rollout was ended before it was recorded");
            return;
        }
        if (rt != NULL)
            runtime_rollout_stop(rt, ro->env, ro->flow, 0);
        admin__ro_unlink(ro);
        st->own = 1;
        char *msg = core_xasprintf("the store could not record the rollout (%s); it was not "
                                   "started",
                                   core_strerror(status));
        /* 503: the store's state, not the request, is at fault; INVALID is
         * a running row of the same flow and environment (422 as before) */
        start_done(st, status == CORE_ERR_INVALID ? status : CORE_ERR_CLOSED, msg);
        free(msg);
        return;
    }
    ro->ready = 1; /* only now: the guard's end must not overtake the running row */
    admin__ro_count_running(st->a);
    LOG_INFO("event=rollout_start id=%s env=%s flow=%s candidate=%s control=%s percent=%u by=%s",
             ro->id, ro->env, ro->flow, ro->candidate, ro->control, ro->percent, st->actor);
    start_done(st, 0, NULL);
}

static void on_built(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    start_t *st = data;
    if (!listed(st->ro)) { /* ended while it compiled */
        start_done(st, CORE_ERR_CLOSED, "the rollout was ended while its candidate compiled");
        return;
    }
    if (rc == CORE_ERR_CLOSED) { /* the runtime is closing: keep the row as it is */
        admin__ro_unlink(st->ro);
        st->own = 1;
        start_done(st, rc, "the runtime is closing");
        return;
    }
    if (rc != 0) {
        char line[1024], *msg;
        msg = core_xasprintf("the candidate does not build: %s",
                             diags != NULL && diags->len > 0
                                 ? core_diag_format(&diags->items[0], line, sizeof(line))
                                 : core_strerror(rc));
        if (st->resume) {
            resume_failed(st, CORE_ERR_INVALID, msg);
        } else {
            admin__ro_unlink(st->ro);
            st->own = 1;
            start_done(st, CORE_ERR_INVALID, msg);
        }
        free(msg);
        return;
    }
    if (st->resume) {
        st->ro->ready = 1;
        admin__ro_count_running(st->a);
        LOG_INFO("event=rollout_resumed id=%s env=%s flow=%s candidate=%s percent=%u", st->ro->id,
                 st->ro->env, st->ro->flow, st->ro->candidate, st->ro->percent);
        start_done(st, 0, NULL);
        return;
    }
    store_rollout_t row = admin__ro_row(st->ro, ROLLOUT_RUNNING);
    admin__ro_record(st->a, &row, st->actor, "rollout.start", admin__ro_detail(st->ro, NULL),
                     core_wall_us(), on_start_saved, st);
}

static void on_content(int status, json_t *result, const char *errmsg, void *data)
{
    start_t *st = data;
    runtime_t *rt = admin__runtime(st->a);
    const char *content = json_string_value(json_object_get(result, "content"));
    int rc = status != 0 ? status : rt == NULL ? CORE_ERR_CLOSED : 0;
    if (rc == 0) {
        runtime_rollout_t r = {.id = st->ro->id,
                               .env = st->ro->env,
                               .flow = st->ro->flow,
                               .version = st->ro->candidate,
                               .content = content,
                               .len = json_string_length(json_object_get(result, "content")),
                               .percent = st->ro->percent};
        rc = runtime_rollout_start(rt, &r, on_built, st);
    }
    json_decref(result);
    if (rc == 0) {
        st->ro->next = R.running;
        R.running = st->ro;
        st->own = 0;
        return;
    }
    const char *msg = status != 0 && errmsg != NULL ? errmsg
                      : rc == CORE_ERR_EXISTS
                          ? "a rollout or another change is under way in this environment"
                          : core_strerror(rc);
    /* shutting down is no reason to end a resumed rollout: the next start
     * resumes it; nor is an environment still restoring its flows (BUSY):
     * the next tick reads the running rows again */
    if (st->resume && rc == CORE_ERR_BUSY) {
        LOG_INFO("event=rollout_resume_deferred id=%s env=%s reason=\"no flows yet\"", st->ro->id,
                 st->ro->env);
        R.resumed = 0;
    }
    if (st->resume && rc != CORE_ERR_CLOSED && rc != CORE_ERR_BUSY)
        resume_failed(st, rc, msg);
    else
        start_done(st, rc, msg);
}

static void start_with(admin_t *a, admin_ro_t *ro, const char *actor, int resume, admin_ro_cb cb,
                       void *data)
{
    start_t *st = core_xcalloc(1, sizeof(*st));
    st->a = a, st->ro = ro, st->actor = core_xstrdup(actor), st->resume = resume, st->own = 1;
    st->cb = cb, st->data = data;
    store_t *s = admin__store(a);
    if (s == NULL || store_flow_version_async(s, ro->flow, ro->candidate, on_content, st) != 0)
        on_content(CORE_ERR_CLOSED, NULL, "the store is not open", st);
}

void admin__ro_start(admin_t *a, const char *env, const char *flow, const char *candidate,
                     unsigned percent, const char *actor, admin_ro_cb cb, void *data)
{
    runtime_t *rt = admin__runtime(a);
    if (rt == NULL || admin__store(a) == NULL) {
        cb(CORE_ERR_CLOSED, "the runtime or the store is not running", NULL, data);
        return;
    }
    env = env != NULL && env[0] != '\0' ? env : runtime_default_env(rt);
    runtime_flow_file_t f;
    /* One at a time, across environments: the guard judges every
     * conversation split since its rollout started by its variant alone
     * (conversations carry no environment), so a second rollout's arms
     * would be counted in the first's. */
    if (R.running != NULL) {
        char *msg = core_xasprintf(
            "rollout %s is already running in %s; one rollout runs at a time, its guard "
            "comparing every conversation split since it started",
            R.running->id, R.running->env);
        cb(CORE_ERR_EXISTS, msg, NULL, data);
        free(msg);
        return;
    }
    if (runtime_env_file(rt, env, flow, &f) != 0) {
        char *msg = core_xasprintf("flow %s is not served in environment %s", flow, env);
        cb(CORE_ERR_NOT_FOUND, msg, NULL, data);
        free(msg);
        return;
    }
    admin_ro_t *ro = core_xcalloc(1, sizeof(*ro));
    ro->started_us = core_wall_us();
    ro->id = core_xasprintf("ro-%s-%" PRId64, flow, ro->started_us);
    ro->env = core_xstrdup(env), ro->flow = core_xstrdup(flow);
    ro->candidate = core_xstrdup(candidate), ro->control = core_xstrdup(f.version ? f.version : "");
    ro->started_by = core_xstrdup(actor);
    ro->percent = percent;
    start_with(a, ro, actor, 0, cb, data);
}

/* ---- the guard and resuming ---------------------------------------------------- */

typedef struct {
    admin_t *a;
    char *id;
} check_t;

static admin_ro_t *find_id(const char *id)
{
    for (admin_ro_t *ro = R.running; ro != NULL; ro = ro->next)
        if (strcmp(ro->id, id) == 0)
            return ro;
    return NULL;
}

static void on_check(int status, json_t *result, const char *errmsg, void *data)
{
    check_t *c = data;
    admin_ro_t *ro = find_id(c->id);
    rollout_kpis_t ctl, cand;
    json_t *raw = json_object_get(result, "raw");
    if (ro != NULL)
        ro->checking = 0;
    if (ro != NULL && ro->ending) /* a promotion is being recorded */
        ro = NULL;
    if (status != 0)
        LOG_WARN("event=rollout_check_failed id=%s reason=\"%s\"", c->id,
                 errmsg ? errmsg : core_strerror(status));
    else if (ro != NULL && rollout_kpis_from_raw(json_object_get(raw, "control"), &ctl) == 0 &&
             rollout_kpis_from_raw(json_object_get(raw, "candidate"), &cand) == 0) {
        rollout_guard_t g;
        char why[256];
        admin__ro_guard(c->a->host.cfg, &g);
        if (rollout_guard_eval(&ctl, &cand, &g, why, sizeof(why)) == ROLLOUT_STOP) {
            LOG_WARN(
                "event=rollout_rolled_back id=%s env=%s flow=%s candidate=%s actor=rollout-guard"
                " reason=\"%s\"",
                ro->id, ro->env, ro->flow, ro->candidate, why);
            admin__ro_end(c->a, ro, ROLLOUT_ROLLED_BACK, "rollout-guard", why, NULL, NULL);
        }
    }
    json_decref(result);
    free(c->id);
    free(c);
}

static void check(admin_t *a, store_t *s, admin_ro_t *ro)
{
    check_t *c = core_xcalloc(1, sizeof(*c));
    c->a = a;
    c->id = core_xstrdup(ro->id);
    ro->checking = 1;
    if (store_rollout_kpis_async(s, NULL, ro->started_us, 0, on_check, c) != 0) {
        ro->checking = 0;
        free(c->id);
        free(c);
    }
}

static void on_running_rows(int status, json_t *result, const char *errmsg, void *data)
{
    admin_t *a = data;
    json_t *row;
    size_t i;
    if (status != 0)
        LOG_WARN("event=rollout_resume_failed reason=\"%s\"", errmsg ? errmsg : "?");
    json_array_foreach(json_object_get(result, "rollouts"), i, row)
    {
        const char *env = json_string_value(json_object_get(row, "env"));
        const char *id = json_string_value(json_object_get(row, "id"));
        if (env == NULL || id == NULL || admin__ro_in_env(env) != NULL || find_id(id) != NULL ||
            admin__ro_is_unsaved(id)) /* ended here, its row not written yet */
            continue;
        admin_ro_t *ro = core_xcalloc(1, sizeof(*ro));
        ro->id = core_xstrdup(id);
        ro->env = core_xstrdup(env);
        ro->flow = core_xstrdup(json_string_value(json_object_get(row, "flow")));
        ro->candidate = core_xstrdup(json_string_value(json_object_get(row, "candidate_version")));
        ro->control = core_xstrdup(json_string_value(json_object_get(row, "control_version")));
        ro->started_by = core_xstrdup(json_string_value(json_object_get(row, "started_by")));
        ro->percent = (unsigned)json_integer_value(json_object_get(row, "percent"));
        ro->started_us = json_integer_value(json_object_get(row, "started_us"));
        start_with(a, ro, "chorusd", 1, NULL, NULL);
    }
    json_decref(result);
}

static void on_tick(uv_timer_t *t)
{
    admin_t *a = t->data;
    runtime_t *rt = admin__runtime(a);
    store_t *s = admin__store(a);
    if (rt != NULL && s != NULL && runtime_flowset(rt) != NULL) {
        if (!R.resumed) {
            R.resumed = 1;
            /* a ":memory:" store begins empty: no rollout to resume */
            if (!store_in_memory(s) &&
                store_rollouts_async(s, NULL, NULL, ROLLOUT_RUNNING, on_running_rows, a) != 0)
                R.resumed = 0;
        }
        for (admin_ro_t *ro = R.running, *next; ro != NULL; ro = next) {
            next = ro->next;
            /* a flows load rebuilt its candidate, which no longer builds
             * (or lost its flow): the runtime ended it; so does its row */
            if (ro->ready && !ro->ending &&
                runtime_rollout_state(rt, ro->env, ro->id) == CORE_ERR_NOT_FOUND) {
                LOG_WARN("event=rollout_aborted id=%s env=%s flow=%s candidate=%s "
                         "reason=\"flows reloaded: the candidate does not build on the new set\"",
                         ro->id, ro->env, ro->flow, ro->candidate);
                admin__ro_end(a, ro, ROLLOUT_ABORTED, "chorusd",
                              "flows reloaded: the candidate does not build on the new set", NULL,
                              NULL);
                continue;
            }
            if (ro->ready && !ro->checking && !ro->ending)
                check(a, s, ro);
        }
        admin__ro_retry_unsaved();
    }
    /* re-armed each time so a reload's interval applies from the next tick;
     * until the first flows are in, look again soon to resume promptly */
    uint64_t ms = (uint64_t)a->host.cfg->rollouts.check_interval_ms;
    uv_timer_start(&R.timer, on_tick, R.resumed || ms < 200 ? ms : 200, 0);
}

void admin__ro_timer_start(admin_t *a)
{
    if (R.timer_init || a->host.loop == NULL)
        return;
    admin__ro_ends_open();
    uv_timer_init(a->host.loop, &R.timer);
    uv_unref((uv_handle_t *)&R.timer);
    R.timer.data = a;
    R.timer_init = 1;
    uv_timer_start(&R.timer, on_tick, 100, 0);
}

void admin_shutdown(void)
{
    admin__drift_stop();
    if (R.timer_init) {
        uv_close((uv_handle_t *)&R.timer, NULL);
        R.timer_init = 0;
    }
    while (R.running != NULL) {
        admin_ro_t *ro = R.running;
        R.running = ro->next;
        if (!ro->ending) /* else its promotion's callback frees it */
            admin__ro_free(ro);
    }
    admin__ro_ends_shutdown();
    R.resumed = 0;
}
