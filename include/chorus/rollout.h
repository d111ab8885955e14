/* rollout.h — the store's part of rollouts and A/B tests: the per-variant
 * KPIs of a rollout, the two-proportion z-test on containment and CSAT, the
 * guard that decides whether a candidate is worse than its control by more
 * than the configured margins, and the rollouts table (migration 4).
 *
 * The statistics (rollout_ztest, rollout_guard_eval, rollout_kpis_json) are
 * pure functions: no I/O, any thread. The figures they read come from the
 * KPI report (store_db_report, docs/metrics.md), so a variant's containment
 * or p95 here is the same number `chorusctl report --by variant` prints.
 *
 * Threads: store_db_* block (worker threads, chorusctl, tests); the *_async
 * calls are made on the loop thread, run on the libuv thread pool and call
 * back on the loop, like store.h's reads. A rollout row is written by a
 * pool worker with a write connection of its own (one short transaction;
 * WAL lets it wait its turn behind the writer thread), because rollouts
 * change a few times a day and are not part of any turn's batch.
 *
 * Ownership: every string passed in is copied; JSON handed to a callback is
 * owned by it.
 *
 * Errors: 0 or a negative CORE_ERR_*; CORE_ERR_NOT_FOUND for an unknown
 * rollout or flow version; CORE_ERR_UNSUPPORTED on a :memory: store. See
 * docs/metrics.md ("Rollouts: per-variant KPIs and significance") and
 * docs/operations.md ("Rollouts and A/B tests"). */
#ifndef CHORUS_ROLLOUT_H
#define CHORUS_ROLLOUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"
#include "chorus/store.h"

/* The two variants' names in conversations.variant. */
#define ROLLOUT_CONTROL "control"
#define ROLLOUT_CANDIDATE "candidate"

/* Rollout statuses in the rollouts table. */
#define ROLLOUT_RUNNING "running"
#define ROLLOUT_PROMOTED "promoted"
#define ROLLOUT_ABORTED "aborted"
#define ROLLOUT_ROLLED_BACK "rolled_back"

/* ---- statistics (pure) --------------------------------------------------- */

/* One variant's figures over the rollout's window (the report's columns). */
typedef struct rollout_kpis_s {
    int64_t conversations;  /* started in the window */
    int64_t ended;          /* of those, not active */
    int64_t contained;      /* outcome contained */
    int64_t escalated;      /* outcome escalated */
    int64_t turns_out;      /* bot turns */
    int64_t failed_turns;   /* bot turns with an error */
    int64_t csat_responses; /* conversations that answered CSAT */
    int64_t csat_satisfied; /* of those, a score of 4 or 5 */
    double csat_sum;        /* sum of the scores */
    double p95_ms;          /* nearest-rank p95 of bot turns' latency; < 0 when none */
} rollout_kpis_t;

/* num / den, or NAN when den is 0 (rendered null). */
double rollout_rate(int64_t num, int64_t den);

/* Two-proportion z-test of x1/n1 (control) against x2/n2 (candidate) with
 * the pooled proportion: z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)), two-
 * sided p = erfc(|z| / sqrt 2). Returns 0 and fills z, p; or -1 (z = 0,
 * p = NAN) when a sample is empty or the pooled proportion is 0 or 1. */
int rollout_ztest(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double *z, double *p);

/* The guard's configuration (config.h's rollouts section). */
typedef struct rollout_guard_s {
    int64_t min_sample;               /* conversations per variant before judging */
    double max_error_rate_delta;      /* candidate failure rate - control's, at most */
    double max_escalation_rate_delta; /* candidate escalation rate - control's, at most */
    double max_p95_latency_ratio;     /* candidate p95 / control's, at most */
    double p95_latency_slack_ms;      /* ...unless it is at most this much slower */
} rollout_guard_t;

typedef enum {
    ROLLOUT_WAIT = 0,     /* a variant has fewer than min_sample conversations */
    ROLLOUT_CONTINUE = 1, /* every margin holds */
    ROLLOUT_STOP = 2      /* the candidate is worse by more than a margin */
} rollout_verdict_t;

/* Judges the candidate against the control; why (may be NULL) gets one line
 * saying why, naming the figures ("error rate 0.800 vs 0.000 exceeds the
 * margin 0.050"). A margin whose rate is undefined on either side (no ended
 * conversations, no bot turns) is not judged. Margins are exceeded strictly:
 * a delta equal to the margin continues. Latency is judged by the ratio
 * only when the candidate is also more than p95_latency_slack_ms slower, so
 * replies of a few milliseconds (where 1.5x is noise) never stop a rollout. */
rollout_verdict_t rollout_guard_eval(const rollout_kpis_t *control, const rollout_kpis_t *candidate,
                                     const rollout_guard_t *g, char *why, size_t why_size);
const char *rollout_verdict_name(rollout_verdict_t v);

/* {"conversations","ended","containment_rate","escalation_rate","error_rate",
 *  "latency_p95_ms","csat_avg","csat_satisfied_share","csat_responses",...}
 * with null for undefined rates. */
json_t *rollout_kpis_json(const rollout_kpis_t *k);
/* {"containment":{"z","p_value"},"csat_satisfied":{"z","p_value"}}, nulls
 * when a test is undefined. */
json_t *rollout_tests_json(const rollout_kpis_t *control, const rollout_kpis_t *candidate);

/* ---- the rollouts table -------------------------------------------------- */

typedef struct store_rollout_s {
    const char *id;                /* unique, "ro-<flow>-<started>" */
    const char *env;               /* environment it runs in ("production") */
    const char *flow;              /* the flow rolled out */
    const char *candidate_version; /* the version tried */
    const char *control_version;   /* the version it is compared with, may be "" */
    unsigned percent;              /* 1..100 of new conversations to the candidate */
    const char *status;            /* ROLLOUT_RUNNING, _PROMOTED, _ABORTED, _ROLLED_BACK */
    int64_t started_us;
    const char *started_by;
    int64_t ended_us; /* 0 while running */
    const char *ended_by;
    const char *reason; /* why it ended, may be NULL */
} store_rollout_t;

/* Adds to b the row's insert, or for an existing r->id the update of its
 * status, end and reason; strings are copied. The batch's completion
 * (store_enqueue) is CORE_ERR_INVALID when another rollout of the same env
 * and flow is already running. */
void store_batch_rollout(store_batch_t *b, const store_rollout_t *r);

/* Rollouts as JSON, newest first: {"rollouts":[{"id","env","flow",...}]}.
 * id (a rollout id, or a flow name: its rollouts), flow and status filter
 * when not NULL; CORE_ERR_NOT_FOUND when id matches nothing. */
int store_db_rollouts(store_db_t *db, const char *id, const char *flow, const char *status,
                      json_t **out, core_err_t *err);
int store_rollouts_async(store_t *s, const char *id, const char *flow, const char *status,
                         store_json_cb cb, void *data);

/* The per-variant KPIs of the conversations started in [from_us, to_us)
 * (to_us 0: no bound) whose variant is control or candidate, read through
 * store_db_report; flow (may be NULL) keeps only those that started in it.
 * The daemon passes NULL: a rollout splits every new conversation of its
 * environment, and judging all of them (intent to treat) also counts the
 * ones that reach the flow later in the conversation. */
int store_db_rollout_kpis(store_db_t *db, const char *flow, int64_t from_us, int64_t to_us,
                          rollout_kpis_t *control, rollout_kpis_t *candidate, core_err_t *err);
/* The same on the pool (flow may be NULL); cb gets {"control":{...},"candidate":{...},"tests":
 * {...},"raw":{"control":[...],"candidate":[...]}} where raw holds the
 * integer figures in rollout_kpis_t order (for rollout_kpis_from_raw). */
int store_rollout_kpis_async(store_t *s, const char *flow, int64_t from_us, int64_t to_us,
                             store_json_cb cb, void *data);
/* Rebuilds a rollout_kpis_t from a "raw" array; 0 or -1 when malformed. */
int rollout_kpis_from_raw(const json_t *raw, rollout_kpis_t *k);

/* The content of a stored flow version (the flow_versions table): *content
 * is owned by the caller. CORE_ERR_NOT_FOUND when there is no such row. */
int store_db_flow_version(store_db_t *db, const char *flow, const char *version, char **content,
                          size_t *len, core_err_t *err);
/* The same on the pool: cb gets {"flow","version","content"}. */
int store_flow_version_async(store_t *s, const char *flow, const char *version, store_json_cb cb,
                             void *data);

#endif
