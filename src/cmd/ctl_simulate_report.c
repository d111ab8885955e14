/* The report of `chorusctl simulate`: outcomes (contained, escalated by
 * reason, failed, still open), latency percentiles, per-goal counts and the
 * expectations that broke; as JSON or a terminal summary. */
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_simulate.h"

json_t *sim_report(sim_t *s);
void sim_print(const json_t *r, FILE *out);

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static json_t *percentiles(sim_t *s)
{
    if (s->n_lat == 0)
        return json_null();
    qsort(s->lat, s->n_lat, sizeof(*s->lat), cmp_u64);
    static const double ps[] = {50, 90, 95, 99};
    static const char *const names[] = {"p50", "p90", "p95", "p99"};
    json_t *o = json_object();
    for (int i = 0; i < 4; i++) {
        size_t k = (size_t)(ps[i] / 100 * (double)(s->n_lat - 1) + 0.5);
        json_object_set_new(o, names[i], json_real((double)s->lat[k] / 1000.0));
    }
    json_object_set_new(o, "max", json_real((double)s->lat[s->n_lat - 1] / 1000.0));
    return o;
}

static void bump(json_t *o, const char *key)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + 1));
}

json_t *sim_report(sim_t *s)
{
    json_t *outcomes =
        json_pack("{s:i,s:i,s:i,s:i}", "contained", 0, "escalated", 0, "failed", 0, "open", 0);
    json_t *reasons = json_object(), *goals = json_object();
    for (long i = 0; i < s->conversations; i++) {
        const sim_result_t *r = &s->results[i];
        const char *o = !strcmp(r->status, "ended")     ? "contained"
                        : !strcmp(r->status, "handoff") ? "escalated"
                        : !strcmp(r->status, "failed")  ? "failed"
                                                        : "open";
        bump(outcomes, o);
        if (!strcmp(o, "escalated"))
            bump(reasons, r->reason[0] ? r->reason : "unknown");
        const char *name =
            json_string_value(json_object_get(json_array_get(s->goals, s->plan[i].goal), "name"));
        json_t *g = json_object_get(goals, name);
        if (g == NULL) {
            g = json_pack("{s:i,s:i,s:i,s:i,s:i}", "conversations", 0, "contained", 0, "escalated",
                          0, "failed", 0, "open", 0);
            json_object_set_new(goals, name, g);
        }
        bump(g, "conversations");
        bump(g, o);
    }
    double n = (double)s->conversations, secs = (double)s->elapsed_us / 1e6;
    double kept = (double)(json_integer_value(json_object_get(outcomes, "contained")) +
                           json_integer_value(json_object_get(outcomes, "open")));
    json_t *breaks = json_array();
    const char *key;
    json_t *b;
    json_object_foreach(s->breaks, key, b) json_array_append(breaks, b);
    return json_pack("{s:s,s:s,s:I,s:I,s:f,s:f,s:o,s:f,s:o,s:o,s:o,s:o,s:o}", "mode",
                     s->websocket ? "websocket"
                     : s->url     ? "http"
                                  : "in-process",
                     "channel", s->channel_name, "conversations", (json_int_t)s->conversations,
                     "turns", (json_int_t)s->turns_sent, "elapsed_s", secs, "turns_per_s",
                     secs > 0 ? (double)s->turns_sent / secs : 0, "outcomes", outcomes,
                     "containment_rate", n > 0 ? kept / n : 0, "escalations", reasons, "failures",
                     json_incref(s->failure_kinds), "latency_ms", percentiles(s), "goals", goals,
                     "breaks", breaks);
}

void sim_print(const json_t *r, FILE *out)
{
    const json_t *o = json_object_get(r, "outcomes"), *l = json_object_get(r, "latency_ms");
    fprintf(out, "%s: %lld conversations, %lld turns in %.2f s (%.0f turns/s)\n",
            json_string_value(json_object_get(r, "mode")),
            (long long)json_integer_value(json_object_get(r, "conversations")),
            (long long)json_integer_value(json_object_get(r, "turns")),
            json_real_value(json_object_get(r, "elapsed_s")),
            json_real_value(json_object_get(r, "turns_per_s")));
    fprintf(out, "containment %.1f%%: %lld contained, %lld open, %lld escalated, %lld failed\n",
            100 * json_real_value(json_object_get(r, "containment_rate")),
            (long long)json_integer_value(json_object_get(o, "contained")),
            (long long)json_integer_value(json_object_get(o, "open")),
            (long long)json_integer_value(json_object_get(o, "escalated")),
            (long long)json_integer_value(json_object_get(o, "failed")));
    if (json_is_object(l))
        fprintf(
            out, "latency ms: p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f\n",
            json_real_value(json_object_get(l, "p50")), json_real_value(json_object_get(l, "p90")),
            json_real_value(json_object_get(l, "p95")), json_real_value(json_object_get(l, "p99")),
            json_real_value(json_object_get(l, "max")));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(r, "escalations"), k, v)
        fprintf(out, "escalated (%s): %lld\n", k, (long long)json_integer_value(v));
    json_object_foreach((json_t *)json_object_get(r, "failures"), k, v)
        fprintf(out, "failed (%s): %lld\n", k, (long long)json_integer_value(v));
    size_t i;
    json_array_foreach(json_object_get(r, "breaks"), i, v)
        fprintf(out, "BROKE %lldx goal \"%s\" turn %lld (\"%s\"): %s expected \"%s\", got \"%s\"\n",
                (long long)json_integer_value(json_object_get(v, "count")),
                json_string_value(json_object_get(v, "goal")),
                (long long)json_integer_value(json_object_get(v, "turn")),
                json_string_value(json_object_get(v, "user")),
                json_string_value(json_object_get(v, "kind")),
                json_string_value(json_object_get(v, "expected")),
                json_string_value(json_object_get(v, "got")));
}
