/* In-memory Prometheus registry (store.h): a fixed set of families, each
 * with at most STORE_METRICS_MAX_SERIES label sets, guarded by one mutex.
 * Updates cost a hash and a short scan; /metrics renders from memory and
 * never touches SQLite. A render copies the figures under the mutex and
 * formats the copy after releasing it; each label set is escaped once, when
 * its series is created. */
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

/* A label set and its figures. Everything but value, sum and count is
 * written once, when the series is created, and never changes after: a
 * snapshot may point to labels and text until the registry is freed. */
typedef struct {
    uint32_t hash;
    uint32_t text_len; /* bytes of text; 0 only when the family has no labels */
    char *labels[3];   /* owned, as given (what updates match) */
    char *text;        /* owned: the label set as exposed, a="x",b="y", escaped once */
    double value;      /* counter/gauge */
    double sum;        /* histogram */
    uint64_t count;
} series_t;

typedef struct {
    series_t *series;  /* owned array, STORE_METRICS_MAX_SERIES */
    uint64_t *buckets; /* owned, histograms: nbounds per series (cumulative at render) */
    int len;
    char **le; /* owned, histograms: le="<bound>" per bound, then le="+Inf"; never change */
    size_t *le_len;
} family_t;

/* mu guards the families. A render holds it only to copy them (a few
 * memcpy of fixed arrays), so the store writer thread, which updates its
 * own families on every commit, never waits for a scrape's formatting. */
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

/* a="x",b="y" with values escaped per the format (\\, \" and \n), built
 * once per series; NULL when the family has no labels. */
static char *label_text(const family_def_t *d, char *const *values, uint32_t *len)
{
    core_buf_t b;
    core_buf_init(&b, (size_t)-1);
    for (int i = 0; i < d->nlabels; i++) {
        if (i > 0)
            core_buf_append_lit(&b, ",");
        core_buf_append_str(&b, d->labels[i]);
        core_buf_append_lit(&b, "=\"");
        const char *p = values[i], *run = p;
        for (; *p; p++) {
            const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
            if (esc == NULL)
                continue;
            core_buf_append(&b, run, (size_t)(p - run));
            core_buf_append(&b, esc, 2);
            run = p + 1;
        }
        core_buf_append(&b, run, (size_t)(p - run));
        core_buf_append_lit(&b, "\"");
    }
    *len = (uint32_t)b.len;
    return core_buf_steal(&b, NULL);
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
            s->text = label_text(d, s->labels, &s->text_len);
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
        const family_def_t *d = &defs[f];
        if (d->type == T_HISTOGRAM) {
            family_t *fam = &m->fam[f];
            fam->buckets = core_xcalloc((size_t)STORE_METRICS_MAX_SERIES * (size_t)d->nbounds,
                                        sizeof(uint64_t));
            fam->le = core_xcalloc((size_t)d->nbounds + 1, sizeof(*fam->le));
            fam->le_len = core_xcalloc((size_t)d->nbounds + 1, sizeof(*fam->le_len));
            for (int b = 0; b <= d->nbounds; b++) {
                fam->le[b] = b < d->nbounds ? core_xasprintf("le=\"%g\"", d->bounds[b])
                                            : core_xstrdup("le=\"+Inf\"");
                fam->le_len[b] = strlen(fam->le[b]);
            }
        }
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
            free(s->text);
        }
        for (int b = 0; m->fam[f].le != NULL && b <= defs[f].nbounds; b++)
            free(m->fam[f].le[b]);
        free(m->fam[f].le);
        free(m->fam[f].le_len);
        free(m->fam[f].series);
        free(m->fam[f].buckets);
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
            m->fam[f].buckets[(size_t)(s - m->fam[f].series) * (size_t)d->nbounds + (size_t)i]++;
            break;
        }
    uv_mutex_unlock(&m->mu);
}

/* ---- rendering ------------------------------------------------------------ */

/* The families as they were at one instant: copies of the series (whose
 * labels and text still point into the registry) and of the buckets. */
typedef struct {
    const series_t *series[STORE_M__COUNT];
    const uint64_t *buckets[STORE_M__COUNT];
    int len[STORE_M__COUNT];
    void *mem; /* owned: one block holding every copy */
} snap_t;

static size_t snap_bytes(const store_metrics_t *m)
{
    size_t n = 0;
    for (int f = 0; f < STORE_M__COUNT; f++)
        n +=
            (size_t)m->fam[f].len * (sizeof(series_t) + (size_t)defs[f].nbounds * sizeof(uint64_t));
    return n;
}

/* Copies the families under the lock; the block is allocated outside it,
 * sized by a first look (series are only ever added, at most
 * STORE_M__COUNT * STORE_METRICS_MAX_SERIES, so a retry is rare and
 * bounded). */
static void snapshot(store_metrics_t *m, snap_t *s)
{
    size_t cap = 0;
    s->mem = NULL;
    for (;;) {
        uv_mutex_lock(&m->mu);
        size_t need = snap_bytes(m);
        if (s->mem != NULL && need <= cap)
            break;
        uv_mutex_unlock(&m->mu);
        free(s->mem);
        cap = need + need / 8 + 1024;
        s->mem = core_xmalloc(cap);
    }
    char *p = s->mem;
    for (int f = 0; f < STORE_M__COUNT; f++) {
        const family_t *fam = &m->fam[f];
        size_t n = (size_t)fam->len;
        size_t nb = n * (size_t)defs[f].nbounds * sizeof(uint64_t);
        s->len[f] = fam->len;
        memcpy(p, fam->series, n * sizeof(series_t));
        s->series[f] = (const series_t *)p;
        p += n * sizeof(series_t);
        if (nb > 0)
            memcpy(p, fam->buckets, nb);
        s->buckets[f] = (const uint64_t *)p;
        p += nb;
    }
    uv_mutex_unlock(&m->mu);
}

/* Appends to out, remembering a failure (the limit); the caller then takes
 * back everything this render appended. */
typedef struct {
    core_buf_t *out;
    int bad;
} put_t;

static void put(put_t *w, const void *p, size_t n)
{
    w->bad |= core_buf_append(w->out, p, n) != 0;
}

/* " 123\n" */
static void put_u64(put_t *w, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    t[--i] = '\n';
    do
        t[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    t[--i] = ' ';
    put(w, t + i, sizeof(t) - i);
}

/* " %.17g\n" */
static void put_double(put_t *w, double v)
{
    char t[40];
    int n = snprintf(t, sizeof(t), " %.17g\n", v);
    put(w, t, (size_t)n);
}

/* name{a="x",b="y"[,le="0.5"]}, without braces when there is nothing in them. */
static void put_name(put_t *w, const char *name, size_t name_len, const char *suffix,
                     size_t suffix_len, const series_t *s, const char *le, size_t le_len)
{
    put(w, name, name_len);
    put(w, suffix, suffix_len);
    if (s->text_len == 0 && le == NULL)
        return;
    put(w, "{", 1);
    put(w, s->text, s->text_len);
    if (le != NULL) {
        if (s->text_len > 0)
            put(w, ",", 1);
        put(w, le, le_len);
    }
    put(w, "}", 1);
}

static void render_family(put_t *w, const family_def_t *d, const family_t *fam,
                          const series_t *series, const uint64_t *buckets, int len)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    size_t nl = strlen(d->name);
    put(w, "# HELP ", 7);
    put(w, d->name, nl);
    put(w, " ", 1);
    put(w, d->help, strlen(d->help));
    put(w, "\n# TYPE ", 8);
    put(w, d->name, nl);
    put(w, " ", 1);
    put(w, types[d->type], strlen(types[d->type]));
    put(w, "\n", 1);
    if (d->type != T_HISTOGRAM) {
        for (int i = 0; i < len; i++) {
            put_name(w, d->name, nl, "", 0, &series[i], NULL, 0);
            put_double(w, series[i].value);
        }
        return;
    }
    char *const *le = fam->le;
    const size_t *le_len = fam->le_len;
    for (int i = 0; i < len; i++) {
        const series_t *s = &series[i];
        const uint64_t *bk = buckets + (size_t)i * (size_t)d->nbounds;
        uint64_t cum = 0;
        for (int b = 0; b < d->nbounds; b++) {
            cum += bk[b];
            put_name(w, d->name, nl, "_bucket", 7, s, le[b], le_len[b]);
            put_u64(w, cum);
        }
        put_name(w, d->name, nl, "_bucket", 7, s, le[d->nbounds], le_len[d->nbounds]);
        put_u64(w, s->count);
        put_name(w, d->name, nl, "_sum", 4, s, NULL, 0);
        put_double(w, s->sum);
        put_name(w, d->name, nl, "_count", 6, s, NULL, 0);
        put_u64(w, s->count);
    }
}

int store_metrics_render(store_metrics_t *m, core_buf_t *out)
{
    snap_t s;
    snapshot(m, &s);
    /* Rendered straight into out; past its limit, out is put back as it
     * was, so a cut-off exposition is never half-appended. */
    size_t start = out->len;
    put_t w = {out, 0};
    for (int f = 0; f < STORE_M__COUNT; f++)
        render_family(&w, &defs[f], &m->fam[f], s.series[f], s.buckets[f], s.len[f]);
    free(s.mem);
    if (!w.bad)
        return 0;
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    return CORE_ERR_LIMIT;
}
