/* Output of `chorusctl learn`: the ranked opportunities and the summaries as
 * terminal tables, and one opportunity exported as a draft flow file whose
 * intent is trained on the cluster's utterances. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_learn.h"

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void print_opportunities(const json_t *r, FILE *out, size_t top)
{
    const json_t *ops = json_object_get(r, "opportunities");
    fprintf(out, "Opportunities: %lld unhandled turns in %lld conversations, %zu clusters\n",
            (long long)num(r, "unhandled_turns"), (long long)num(r, "conversations"),
            json_array_size(ops));
    fprintf(out, "%3s %6s %6s %6s %6s %7s %8s %5s %5s %7s  %s\n", "id", "turns", "convs", "escal",
            "aband", "aht_s", "impact_h", "cohes", "feas", "score", "label: example");
    for (size_t i = 0; i < json_array_size(ops) && i < top; i++) {
        const json_t *o = json_array_get(ops, i);
        char label[96] = "";
        size_t len = 0;
        const json_t *words = json_object_get(o, "label");
        for (size_t k = 0; k < json_array_size(words) && len + 2 < sizeof(label); k++)
            len += (size_t)snprintf(label + len, sizeof(label) - len, "%s%s", k ? " " : "",
                                    json_string_value(json_array_get(words, k)));
        const char *ex = json_string_value(json_array_get(json_object_get(o, "utterances"), 0));
        fprintf(out,
                "%3lld %6lld %6lld %5.0f%% %5.0f%% %6.0f%s %8.2f %5.2f %5.2f %7.3f  %s: \"%s\"\n",
                (long long)num(o, "id"), (long long)num(o, "turns"),
                (long long)num(o, "conversations"), 100 * num(o, "escalation_rate"),
                100 * num(o, "abandonment_rate"), num(o, "handle_time_s"),
                json_is_true(json_object_get(o, "handle_time_measured")) ? " " : "*",
                num(o, "impact_hours"), num(o, "cohesion"), num(o, "feasibility"), num(o, "score"),
                label, ex ? ex : "");
    }
    fprintf(out, "(* handle time assumed: no agent time recorded for these conversations)\n");
}

static void print_summaries(const json_t *r, FILE *out, size_t top)
{
    const json_t *d = json_object_get(r, "drop_offs"), *x;
    fprintf(out, "\nDrop-off points (last bot node of abandoned or escalated conversations)\n");
    fprintf(out, "%-20s %-20s %9s %9s %7s\n", "flow", "node", "abandoned", "escalated", "share");
    for (size_t i = 0; i < json_array_size(d) && i < top; i++) {
        x = json_array_get(d, i);
        fprintf(out, "%-20s %-20s %9lld %9lld %6.1f%%\n",
                json_string_value(json_object_get(x, "flow")),
                json_string_value(json_object_get(x, "node")), (long long)num(x, "abandoned"),
                (long long)num(x, "escalated"), 100 * num(x, "share_of_flow"));
    }
    d = json_object_get(r, "intents");
    fprintf(out, "\nIntents by confidence (lowest first)\n%-28s %8s %8s %8s\n", "intent", "turns",
            "avg", "low");
    for (size_t i = 0; i < json_array_size(d) && i < top; i++) {
        x = json_array_get(d, i);
        fprintf(out, "%-28s %8lld %8.3f %7.1f%%\n", json_string_value(json_object_get(x, "intent")),
                (long long)num(x, "turns"), num(x, "avg_confidence"),
                100 * num(x, "low_confidence") / (num(x, "turns") > 0 ? num(x, "turns") : 1));
    }
    d = json_object_get(r, "confusions");
    fprintf(out, "\nConfusions (labelled turns the router got wrong)\n%-28s %-28s %6s\n",
            "predicted", "labelled", "count");
    for (size_t i = 0; i < json_array_size(d) && i < top; i++) {
        x = json_array_get(d, i);
        const char *p = json_string_value(json_object_get(x, "predicted"));
        fprintf(out, "%-28s %-28s %6lld\n", p[0] ? p : "(none)",
                json_string_value(json_object_get(x, "labelled")), (long long)num(x, "count"));
    }
}

void learn_print(const json_t *report, FILE *out)
{
    print_opportunities(report, out, 10);
    print_summaries(report, out, 10);
}

/* "draft_" + the label's words, lower-case letters, digits and '_' only. */
static void draft_name(const json_t *o, char *out, size_t size)
{
    size_t len = (size_t)snprintf(out, size, "draft");
    const json_t *words = json_object_get(o, "label");
    for (size_t k = 0; k < json_array_size(words) && len + 2 < size; k++) {
        out[len++] = '_';
        for (const char *p = json_string_value(json_array_get(words, k)); *p && len + 1 < size; p++)
            if (isalnum((unsigned char)*p))
                out[len++] = (char)tolower((unsigned char)*p);
        out[len] = '\0';
    }
    if (len == 5)
        snprintf(out, size, "draft_%lld", (long long)num(o, "id"));
}

int learn_export(const learn_args_t *a, const json_t *report)
{
    const json_t *ops = json_object_get(report, "opportunities");
    size_t id = (size_t)a->export_id;
    if (id < 1 || id > json_array_size(ops)) {
        fprintf(stderr, "learn: --export-intent %zu: there are %zu opportunities (ids 1-%zu)\n", id,
                json_array_size(ops), json_array_size(ops));
        return 1;
    }
    const json_t *o = json_array_get(ops, id - 1);
    char name[64];
    draft_name(o, name, sizeof(name));
    char *desc = core_xasprintf(
        "Draft from chorusctl learn opportunity %zu: %lld unhandled turns in %lld conversations, "
        "%.0f%% escalated, %.0f%% abandoned. Review the examples, write the answer, then set "
        "the status to in progress.",
        id, (long long)num(o, "turns"), (long long)num(o, "conversations"),
        100 * num(o, "escalation_rate"), 100 * num(o, "abandonment_rate"));
    json_t *flow =
        json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:O}},s:{s:{s:s,s:s}}}", "name", name, "description",
                  desc, "owner", "", "status", "planned", "intents", name, "examples",
                  json_object_get(o, "utterances"), "nodes", "answer", "type", "say", "message",
                  "This answer is a draft: write what the customer needs here.");
    free(desc);
    int rc = json_dump_file(flow, a->out, JSON_INDENT(2)) == 0 ? 0 : 1;
    json_decref(flow);
    if (rc != 0)
        fprintf(stderr, "learn: cannot write %s\n", a->out);
    else
        printf("wrote %s: flow \"%s\" with %zu training examples\n", a->out, name,
               json_array_size(json_object_get(o, "utterances")));
    return rc;
}
