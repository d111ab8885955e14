/* The roadmap as a Markdown page: status counts, one row per workflow with
 * its KPIs and their change against the previous window, the top
 * opportunities and the rollouts in progress. */
#include <math.h>
#include <string.h>

#include "chorus/core.h"
#include "cmd/ctl_roadmap.h"

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

/* One KPI cell: the value, then its change in brackets when both windows
 * had figures. kind: 'r' rate (percent, points), 'm' ms, 'n' number,
 * 'c' money, 'i' integer. */
static void cell(FILE *out, const json_t *w, const char *field, char kind)
{
    const json_t *v = json_object_get(json_object_get(w, "kpis"), field);
    const json_t *t = json_object_get(json_object_get(w, "trend"), field);
    if (!json_is_number(v)) {
        fprintf(out, " – |");
        return;
    }
    double x = json_number_value(v), d = json_number_value(t);
    switch (kind) {
    case 'r':
        fprintf(out, " %.1f%%", 100 * x);
        if (json_is_number(t))
            fprintf(out, " (%+.1f pts)", 100 * d);
        break;
    case 'm':
        fprintf(out, " %.0f ms", x);
        if (json_is_number(t))
            fprintf(out, " (%+.0f)", d);
        break;
    case 'c':
        fprintf(out, " %.4f", x);
        if (json_is_number(t))
            fprintf(out, " (%+.4f)", d);
        break;
    case 'i':
        fprintf(out, " %.0f", x);
        if (json_is_number(t))
            fprintf(out, " (%+.0f)", d);
        break;
    default:
        fprintf(out, " %.2f", x);
        if (json_is_number(t))
            fprintf(out, " (%+.2f)", d);
    }
    fprintf(out, " |");
}

/* Text for a table cell: '|' and newlines would break the row. */
static void text(FILE *out, const char *s)
{
    fputc(' ', out);
    for (; s != NULL && *s; s++)
        fputs(*s == '|' ? "\\|" : *s == '\n' ? " " : (char[]){*s, 0}, out);
    fputs(" |", out);
}

static void workflows(const json_t *doc, FILE *out)
{
    fprintf(out, "## Workflows\n\n| Workflow | Owner | Status | Conversations | Containment | "
                 "p95 latency | Routing accuracy | CSAT | Cost to serve | Depends on |\n"
                 "|---|---|---|---|---|---|---|---|---|---|\n");
    size_t i, k;
    json_t *w, *d;
    json_array_foreach(json_object_get(doc, "workflows"), i, w)
    {
        fputc('|', out);
        text(out, json_string_value(json_object_get(w, "name")));
        text(out, json_string_value(json_object_get(w, "owner")));
        text(out, json_string_value(json_object_get(w, "status")));
        cell(out, w, "conversations", 'i');
        cell(out, w, "containment_rate", 'r');
        cell(out, w, "latency_p95_ms", 'm');
        cell(out, w, "routing_accuracy", 'r');
        cell(out, w, "csat_avg", 'n');
        cell(out, w, "cost_per_conversation", 'c');
        fputc(' ', out);
        json_array_foreach(json_object_get(w, "depends_on"), k, d)
            fprintf(out, "%s%s", k ? ", " : "", json_string_value(d));
        fprintf(out, "%s |\n", json_array_size(json_object_get(w, "depends_on")) ? "" : "–");
    }
}

static void opportunities(const json_t *doc, FILE *out)
{
    const json_t *ops = json_object_get(doc, "opportunities");
    fprintf(out, "\n## Top opportunities\n\n");
    if (json_array_size(ops) == 0) {
        fprintf(out, "None found in this window.\n");
        return;
    }
    fprintf(out, "| # | Need | Conversations | Escalated | Abandoned | Agent hours | "
                 "Feasibility |\n|---|---|---|---|---|---|---|\n");
    size_t i, k;
    json_t *o, *word;
    json_array_foreach(ops, i, o)
    {
        fprintf(out, "| %zu | ", i + 1);
        json_array_foreach(json_object_get(o, "label"), k, word)
            fprintf(out, "%s%s", k ? " " : "", json_string_value(word));
        fprintf(out, " | %.0f | %.0f%% | %.0f%% | %.1f | %.2f |\n", num(o, "conversations"),
                100 * num(o, "escalation_rate"), 100 * num(o, "abandonment_rate"),
                num(o, "impact_hours"), num(o, "feasibility"));
    }
}

static void rollouts(const json_t *doc, FILE *out)
{
    const json_t *rs = json_object_get(doc, "rollouts");
    fprintf(out, "\n## Rollouts in progress\n\n");
    if (json_array_size(rs) == 0) {
        fprintf(out, "None.\n");
        return;
    }
    fprintf(out, "| Flow | Environment | Candidate | Share | Since | Started by |\n"
                 "|---|---|---|---|---|---|\n");
    size_t i;
    json_t *r;
    json_array_foreach(rs, i, r)
    {
        char since[40];
        core_time_format(since, sizeof(since), (int64_t)num(r, "started_us"));
        fprintf(out, "| %s | %s | %s | %.0f%% | %s | %s |\n",
                json_string_value(json_object_get(r, "flow")),
                json_string_value(json_object_get(r, "env")),
                json_string_value(json_object_get(r, "candidate_version")), num(r, "percent"),
                since, json_string_value(json_object_get(r, "started_by")));
    }
}

void roadmap_markdown(const json_t *doc, FILE *out)
{
    const json_t *win = json_object_get(doc, "window");
    char from[40], to[40];
    core_time_format(from, sizeof(from), (int64_t)num(win, "from_us"));
    core_time_format(to, sizeof(to), (int64_t)num(win, "to_us"));
    fprintf(out,
            "# Automation roadmap\n\nKPIs from %.10s to %.10s (%.0f days); the figures in "
            "brackets are the change against the %.0f days before.\n\n",
            from, to, num(win, "days"), num(win, "days"));
    const json_t *c = json_object_get(doc, "status_counts");
    fprintf(out, "**Status:** %.0f live · %.0f optimizing · %.0f in progress · %.0f planned\n\n",
            num(c, "live"), num(c, "optimizing"), num(c, "in progress"), num(c, "planned"));
    workflows(doc, out);
    opportunities(doc, out);
    rollouts(doc, out);
}
