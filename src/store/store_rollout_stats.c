/* Rollout statistics (rollout.h): the two-proportion z-test and the guard.
 * Pure functions of the figures, so the unit tests check them against
 * values worked out by hand and the daemon and chorusctl print the same
 * numbers. Formulas: docs/metrics.md. */
#include <math.h>
#include <stdio.h>

#include "chorus/rollout.h"

double rollout_rate(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : NAN;
}

int rollout_ztest(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double *z, double *p)
{
    *z = 0;
    *p = NAN;
    if (n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2)
        return -1;
    double p1 = (double)x1 / (double)n1, p2 = (double)x2 / (double)n2;
    double pool = (double)(x1 + x2) / (double)(n1 + n2);
    double se = sqrt(pool * (1 - pool) * (1.0 / (double)n1 + 1.0 / (double)n2));
    if (!(se > 0)) /* both all-0 or all-1: no variance to test against */
        return -1;
    *z = (p2 - p1) / se;
    *p = erfc(fabs(*z) / sqrt(2.0));
    return 0;
}

const char *rollout_verdict_name(rollout_verdict_t v)
{
    switch (v) {
    case ROLLOUT_STOP:
        return "stop";
    case ROLLOUT_CONTINUE:
        return "continue";
    default:
        return "wait";
    }
}

/* Checks one "candidate minus control at most margin" rule; 1 when broken. */
static int over_delta(const char *what, double control, double candidate, double margin, char *why,
                      size_t why_size)
{
    if (isnan(control) || isnan(candidate) || !(candidate - control > margin))
        return 0;
    if (why != NULL)
        snprintf(why, why_size, "%s %.3f vs control %.3f exceeds the margin +%.3f", what, candidate,
                 control, margin);
    return 1;
}

rollout_verdict_t rollout_guard_eval(const rollout_kpis_t *control, const rollout_kpis_t *candidate,
                                     const rollout_guard_t *g, char *why, size_t why_size)
{
    if (control->conversations < g->min_sample || candidate->conversations < g->min_sample) {
        if (why != NULL)
            snprintf(why, why_size,
                     "waiting for the minimum sample: %lld control and %lld candidate "
                     "conversations of %lld each",
                     (long long)control->conversations, (long long)candidate->conversations,
                     (long long)g->min_sample);
        return ROLLOUT_WAIT;
    }
    if (over_delta("error rate", rollout_rate(control->failed_turns, control->turns_out),
                   rollout_rate(candidate->failed_turns, candidate->turns_out),
                   g->max_error_rate_delta, why, why_size))
        return ROLLOUT_STOP;
    if (over_delta("escalation rate", rollout_rate(control->escalated, control->ended),
                   rollout_rate(candidate->escalated, candidate->ended),
                   g->max_escalation_rate_delta, why, why_size))
        return ROLLOUT_STOP;
    if (control->p95_ms >= 0 && candidate->p95_ms >= 0 &&
        candidate->p95_ms > control->p95_ms * g->max_p95_latency_ratio &&
        candidate->p95_ms - control->p95_ms > g->p95_latency_slack_ms) {
        if (why != NULL)
            snprintf(why, why_size, "p95 latency %.1f ms vs control %.1f ms exceeds the ratio %.2f",
                     candidate->p95_ms, control->p95_ms, g->max_p95_latency_ratio);
        return ROLLOUT_STOP;
    }
    if (why != NULL)
        snprintf(why, why_size,
                 "within every margin over %lld control and %lld candidate "
                 "conversations",
                 (long long)control->conversations, (long long)candidate->conversations);
    return ROLLOUT_CONTINUE;
}

static json_t *num_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

json_t *rollout_kpis_json(const rollout_kpis_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "conversations", json_integer(k->conversations));
    json_object_set_new(o, "ended", json_integer(k->ended));
    json_object_set_new(o, "contained", json_integer(k->contained));
    json_object_set_new(o, "escalated", json_integer(k->escalated));
    json_object_set_new(o, "containment_rate", num_or_null(rollout_rate(k->contained, k->ended)));
    json_object_set_new(o, "escalation_rate", num_or_null(rollout_rate(k->escalated, k->ended)));
    json_object_set_new(o, "turns_out", json_integer(k->turns_out));
    json_object_set_new(o, "failed_turns", json_integer(k->failed_turns));
    json_object_set_new(o, "error_rate", num_or_null(rollout_rate(k->failed_turns, k->turns_out)));
    json_object_set_new(o, "latency_p95_ms", k->p95_ms >= 0 ? json_real(k->p95_ms) : json_null());
    json_object_set_new(o, "csat_responses", json_integer(k->csat_responses));
    json_object_set_new(
        o, "csat_avg",
        num_or_null(k->csat_responses > 0 ? k->csat_sum / (double)k->csat_responses : NAN));
    json_object_set_new(o, "csat_satisfied_share",
                        num_or_null(rollout_rate(k->csat_satisfied, k->csat_responses)));
    return o;
}

static json_t *test_json(int64_t x1, int64_t n1, int64_t x2, int64_t n2)
{
    double z, p;
    if (rollout_ztest(x1, n1, x2, n2, &z, &p) != 0)
        return json_pack("{s:n,s:n}", "z", "p_value");
    return json_pack("{s:f,s:f}", "z", z, "p_value", p);
}

json_t *rollout_tests_json(const rollout_kpis_t *control, const rollout_kpis_t *candidate)
{
    return json_pack(
        "{s:o,s:o}", "containment",
        test_json(control->contained, control->ended, candidate->contained, candidate->ended),
        "csat_satisfied",
        test_json(control->csat_satisfied, control->csat_responses, candidate->csat_satisfied,
                  candidate->csat_responses));
}
