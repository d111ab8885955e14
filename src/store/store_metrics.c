/* In-memory Prometheus registry (store.h): a fixed set of families, each
 * with at most STORE_METRICS_MAX_SERIES label sets, guarded by one mutex.
 * Updates cost a hash and a short scan; /metrics renders from memory and
 * never touches SQLite. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "chorus/store.h"

typedef enum { T_COUNTER, T_GAUGE, T_HISTOGRAM } mtype_t;

typedef struct {
    const char *name, *help;
    mtype_t type;
    int nlabels;
    const char *labels[3];
    const double *bounds; /* histogram upper bounds, ascending */
    int nbounds;
} family_def_t;

static const double lat_b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                               0.25,  0.5,    1,     2.5,  5,     10};
static const double conf_b[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};
static const double csat_b[] = {1, 2, 3, 4, 5};
static const double group_b[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const double commit_b[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,  0.5,   1};
static const double reload_b[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double agent_b[] = {5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200};
#define NB(a) (int)(sizeof(a) / sizeof(a[0]))

static const family_def_t defs[STORE_M__COUNT] = {
    [STORE_M_TURNS] =
        {"chorus_turns_total", "User turns received.", T_COUNTER, 2, {"channel", "flow"}, NULL, 0},
    [STORE_M_TURN_LATENCY] = {"chorus_turn_latency_seconds",
                              "Daemon-side time from a user turn's arrival to its reply.",
                              T_HISTOGRAM,
                              2,
                              {"channel", "flow"},
                              lat_b,
                              NB(lat_b)},
    [STORE_M_CONV_STARTED] = {"chorus_conversations_started_total",
                              "Conversations started.",
                              T_COUNTER,
                              2,
                              {"channel", "flow"},
                              NULL,
                              0},
    [STORE_M_CONV_ENDED] = {"chorus_conversations_ended_total",
                            "Conversations ended, by outcome.",
                            T_COUNTER,
                            3,
                            {"channel", "flow", "outcome"},
                            NULL,
                            0},
    [STORE_M_ESCALATIONS] = {"chorus_escalations_total",
                             "Escalations to a human, by reason.",
                             T_COUNTER,
                             3,
                             {"channel", "flow", "reason"},
                             NULL,
                             0},
    [STORE_M_FAILURES] = {"chorus_turn_failures_total",
                          "Turns that failed, by kind.",
                          T_COUNTER,
                          3,
                          {"channel", "flow", "kind"},
                          NULL,
                          0},
    [STORE_M_OOS] = {"chorus_oos_turns_total",
                     "User turns routed out of scope.",
                     T_COUNTER,
                     2,
                     {"channel", "flow"},
                     NULL,
                     0},
    [STORE_M_CONFIDENCE] = {"chorus_routing_confidence",
                            "Intent routing confidence.",
                            T_HISTOGRAM,
                            2,
                            {"channel", "flow"},
                            conf_b,
                            NB(conf_b)},
    [STORE_M_LLM_TOKENS] = {"chorus_llm_tokens_total",
                            "LLM tokens spent, by direction.",
                            T_COUNTER,
                            3,
                            {"channel", "flow", "direction"},
                            NULL,
                            0},
    [STORE_M_CSAT] = {"chorus_csat_score",
                      "CSAT answers (1-5).",
                      T_HISTOGRAM,
                      2,
                      {"channel", "flow"},
                      csat_b,
                      NB(csat_b)},
    [STORE_M_STORE_BATCHES] = {"chorus_store_batches_total",
                               "Batches committed by the store.",
                               T_COUNTER,
                               0,
                               {NULL},
                               NULL,
                               0},
    [STORE_M_STORE_GROUP] = {"chorus_store_group_batches",
                             "Batches per group commit.",
                             T_HISTOGRAM,
                             0,
                             {NULL},
                             group_b,
                             NB(group_b)},
    [STORE_M_STORE_COMMIT] = {"chorus_store_commit_seconds",
                              "Group commit duration.",
                              T_HISTOGRAM,
                              0,
                              {NULL},
                              commit_b,
                              NB(commit_b)},
    [STORE_M_STORE_REJECTED] = {"chorus_store_rejected_total",
                                "Batches refused (busy) or not written (failed).",
                                T_COUNTER,
                                1,
                                {"reason"},
                                NULL,
                                0},
    [STORE_M_STORE_QUEUE] = {"chorus_store_queue_batches",
                             "Batches waiting for the writer.",
                             T_GAUGE,
                             0,
                             {NULL},
                             NULL,
                             0},
    [STORE_M_STORE_HEALTHY] = {"chorus_store_healthy",
                               "1 while the store writes successfully.",
                               T_GAUGE,
                               0,
                               {NULL},
                               NULL,
                               0},
    [STORE_M_FLOWS_RELOADS] = {"chorus_flows_reloads_total",
                               "Flow reload attempts, by result (loaded or rejected).",
                               T_COUNTER,
                               1,
                               {"result"},
                               NULL,
                               0},
    [STORE_M_FLOWS_RELOAD_SECONDS] = {"chorus_flows_reload_duration_seconds",
                                      "Flow reload duration: scan, validate, train and swap.",
                                      T_HISTOGRAM,
                                      0,
                                      {NULL},
                                      reload_b,
                                      NB(reload_b)},
    [STORE_M_FLOWS_RELOAD_LAST_SUCCESS] = {"chorus_flows_reload_last_success_timestamp_seconds",
                                           "When the flows last reloaded successfully (Unix time).",
                                           T_GAUGE,
                                           0,
                                           {NULL},
                                           NULL,
                                           0},
    [STORE_M_DRIFT_PSI] = {"chorus_drift_psi",
                           "Population stability index of the intent distribution, recent window "
                           "against the baseline, at the last drift check.",
                           T_GAUGE,
                           0,
                           {NULL},
                           NULL,
                           0},
    [STORE_M_DRIFT_ALERTS] = {"chorus_drift_alerts_total",
                              "Drift checks that found a signal past its limit, by signal.",
                              T_COUNTER,
                              1,
                              {"signal", NULL},
                              NULL,
                              0},
    [STORE_M_ROLLOUTS_RUNNING] = {"chorus_rollouts_running",
                                  "Rollouts whose candidate is taking new conversations.",
                                  T_GAUGE,
                                  0,
                                  {NULL},
                                  NULL,
                                  0},
    [STORE_M_ROLLOUTS_ENDED] = {"chorus_rollouts_ended_total",
                                "Rollouts ended, by flow and status (promoted, aborted, "
                                "rolled_back: by the guard).",
                                T_COUNTER,
                                2,
                                {"flow", "status"},
                                NULL,
                                0},
    [STORE_M_AGENT_HANDOFFS] = {"chorus_agent_handoffs_total",
                                "Conversations that entered a human queue (docs/agents.md).",
                                T_COUNTER,
                                3,
                                {"queue", "channel", "reason"},
                                NULL,
                                0},
    [STORE_M_AGENT_WAIT] = {"chorus_agent_queue_wait_seconds",
                            "Time from entering a queue to a person's claim.",
                            T_HISTOGRAM,
                            3,
                            {"queue", "channel", "reason"},
                            agent_b,
                            NB(agent_b)},
    [STORE_M_AGENT_ABANDONED] = {"chorus_agent_abandoned_total",
                                 "Conversations still unclaimed when their queue's maximum wait "
                                 "passed.",
                                 T_COUNTER,
                                 3,
                                 {"queue", "channel", "reason"},
                                 NULL,
                                 0},
    [STORE_M_AGENT_HANDLE] = {"chorus_agent_handle_seconds",
                              "Time from a person's claim to their release or close.",
                              T_HISTOGRAM,
                              3,
                              {"queue", "channel", "reason"},
                              agent_b,
                              NB(agent_b)},
    [STORE_M_AGENT_RELEASES] = {"chorus_agent_releases_total",
                                "Conversations handed back to the bot (outcome released), and how "
                                "those ended (bot_finished, escalated_again).",
                                T_COUNTER,
                                3,
                                {"queue", "channel", "outcome"},
                                NULL,
                                0},
    [STORE_M_AGENT_DISPOSITIONS] = {"chorus_agent_dispositions_total",
                                    "Conversations closed by a person, by disposition code.",
                                    T_COUNTER,
                                    3,
                                    {"queue", "channel", "disposition"},
                                    NULL,
                                    0},
    [STORE_M_AGENT_WAITING] = {"chorus_agent_waiting",
                               "Conversations waiting in a human queue now.",
                               T_GAUGE,
                               1,
                               {"queue", NULL},
                               NULL,
                               0},
};

typedef struct {
    uint32_t hash;
    char *labels[3]; /* owned */
    double value;    /* counter/gauge */
    double sum;      /* histogram */
    uint64_t count;
    uint64_t *buckets; /* owned, nbounds entries (cumulative at render) */
} series_t;

typedef struct {
    series_t *series; /* owned array, STORE_METRICS_MAX_SERIES */
    int len;
} family_t;

struct store_metrics_s {
    uv_mutex_t mu;
    family_t fam[STORE_M__COUNT];
};

static uint32_t hash_labels(const char *const *labels, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) {
        for (const char *p = labels[i] ? labels[i] : ""; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        h = (h ^ 0x1f) * 16777619u;
    }
    return h;
}

static int same(const series_t *s, const char *const *labels, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s->labels[i], labels[i] ? labels[i] : "") != 0)
            return 0;
    return 1;
}

/* The series for labels, created if there is room, else the "other" one. */
static series_t *series_for(store_metrics_t *m, store_metric_t f, const char *const *labels)
{
    static const char *const other[3] = {"other", "other", "other"};
    const family_def_t *d = &defs[f];
    family_t *fam = &m->fam[f];
    for (int pass = 0; pass < 2; pass++) {
        const char *const *l = pass == 0 ? labels : other;
        uint32_t h = hash_labels(l, d->nlabels);
        for (int i = 0; i < fam->len; i++)
            if (fam->series[i].hash == h && same(&fam->series[i], l, d->nlabels))
                return &fam->series[i];
        /* keep the last slot for "other" */
        if (fam->len < STORE_METRICS_MAX_SERIES - 1 || pass == 1) {
            series_t *s = &fam->series[fam->len++];
            memset(s, 0, sizeof(*s));
            s->hash = h;
            for (int i = 0; i < d->nlabels; i++)
                s->labels[i] = core_xstrdup(l[i] ? l[i] : "");
            if (d->type == T_HISTOGRAM)
                s->buckets = core_xcalloc((size_t)d->nbounds, sizeof(uint64_t));
            return s;
        }
    }
    return NULL;
}

store_metrics_t *store_metrics_new(void)
{
    store_metrics_t *m = core_xcalloc(1, sizeof(*m));
    uv_mutex_init(&m->mu);
    for (int f = 0; f < STORE_M__COUNT; f++) {
        m->fam[f].series = core_xcalloc(STORE_METRICS_MAX_SERIES, sizeof(series_t));
        if (defs[f].nlabels == 0)
            series_for(m, (store_metric_t)f, NULL); /* label-less series always show */
    }
    return m;
}

void store_metrics_free(store_metrics_t *m)
{
    if (m == NULL)
        return;
    for (int f = 0; f < STORE_M__COUNT; f++) {
        for (int i = 0; i < m->fam[f].len; i++) {
            series_t *s = &m->fam[f].series[i];
            for (int j = 0; j < 3; j++)
                free(s->labels[j]);
            free(s->buckets);
        }
        free(m->fam[f].series);
    }
    uv_mutex_destroy(&m->mu);
    free(m);
}

void store_metrics_add(store_metrics_t *m, store_metric_t f, const char *const *labels, double v)
{
    uv_mutex_lock(&m->mu);
    series_for(m, f, labels)->value += v;
    uv_mutex_unlock(&m->mu);
}

void store_metrics_set(store_metrics_t *m, store_metric_t f, const char *const *labels, double v)
{
    uv_mutex_lock(&m->mu);
    series_for(m, f, labels)->value = v;
    uv_mutex_unlock(&m->mu);
}

void store_metrics_observe(store_metrics_t *m, store_metric_t f, const char *const *labels,
                           double v)
{
    const family_def_t *d = &defs[f];
    uv_mutex_lock(&m->mu);
    series_t *s = series_for(m, f, labels);
    s->sum += v;
    s->count++;
    for (int i = 0; i < d->nbounds; i++)
        if (v <= d->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    uv_mutex_unlock(&m->mu);
}

/* Appends {a="x",b="y"[,le="0.5"]} with values escaped per the format. */
static void labels_out(core_buf_t *out, const family_def_t *d, const series_t *s, const char *le)
{
    if (d->nlabels == 0 && le == NULL)
        return;
    core_buf_append_str(out, "{");
    for (int i = 0; i < d->nlabels; i++) {
        core_buf_printf(out, "%s%s=\"", i ? "," : "", d->labels[i]);
        for (const char *p = s->labels[i]; *p; p++) {
            if (*p == '\\' || *p == '"')
                core_buf_printf(out, "\\%c", *p);
            else if (*p == '\n')
                core_buf_append_str(out, "\\n");
            else
                core_buf_append(out, p, 1);
        }
        core_buf_append_str(out, "\"");
    }
    if (le != NULL)
        core_buf_printf(out, "%sle=\"%s\"", d->nlabels ? "," : "", le);
    core_buf_append_str(out, "}");
}

static void render_series(core_buf_t *out, const family_def_t *d, const series_t *s)
{
    if (d->type != T_HISTOGRAM) {
        core_buf_append_str(out, d->name);
        labels_out(out, d, s, NULL);
        core_buf_printf(out, " %.17g\n", s->value);
        return;
    }
    uint64_t cum = 0;
    char le[32];
    for (int i = 0; i < d->nbounds; i++) {
        cum += s->buckets[i];
        snprintf(le, sizeof(le), "%g", d->bounds[i]);
        core_buf_printf(out, "%s_bucket", d->name);
        labels_out(out, d, s, le);
        core_buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    core_buf_printf(out, "%s_bucket", d->name);
    labels_out(out, d, s, "+Inf");
    core_buf_printf(out, " %llu\n%s_sum", (unsigned long long)s->count, d->name);
    labels_out(out, d, s, NULL);
    core_buf_printf(out, " %.17g\n%s_count", s->sum, d->name);
    labels_out(out, d, s, NULL);
    core_buf_printf(out, " %llu\n", (unsigned long long)s->count);
}

int store_metrics_render(store_metrics_t *m, core_buf_t *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    /* Rendered into an unbounded buffer first, so that out's limit is
     * checked once and a cut-off exposition is never half-appended. */
    core_buf_t text;
    core_buf_init(&text, (size_t)-1);
    uv_mutex_lock(&m->mu);
    for (int f = 0; f < STORE_M__COUNT; f++) {
        const family_def_t *d = &defs[f];
        core_buf_printf(&text, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                        types[d->type]);
        for (int i = 0; i < m->fam[f].len; i++)
            render_series(&text, d, &m->fam[f].series[i]);
    }
    uv_mutex_unlock(&m->mu);
    int rc = core_buf_append(out, text.data, text.len);
    core_buf_dispose(&text);
    return rc;
}
