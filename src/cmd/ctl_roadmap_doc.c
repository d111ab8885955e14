/* The roadmap's content: workflows read from the flow files (metadata and the
 * backends their actions call), KPIs and trends per workflow, and the
 * Markdown rendering. */
#include <stdlib.h>
#include <string.h>

#include "cmd/ctl_common.h"
#include "cmd/ctl_roadmap.h"

static const char *const statuses[] = {"live", "optimizing", "in progress", "planned"};
#define N_STATUSES 4

/* The KPIs a roadmap shows, their report field and how a rise reads. */
static const struct {
    const char *field, *title;
    int higher_is_better;
} kpis[] = {
    {"conversations", "Conversations", 1},
    {"containment_rate", "Containment", 1},
    {"latency_p95_ms", "p95 latency", 0},
    {"routing_accuracy", "Routing accuracy", 1},
    {"csat_avg", "CSAT", 1},
    {"cost_per_conversation", "Cost to serve", 0},
};
#define N_KPIS (sizeof(kpis) / sizeof(kpis[0]))

static int status_rank(const char *s)
{
    for (int i = 0; i < N_STATUSES; i++)
        if (s != NULL && strcmp(s, statuses[i]) == 0)
            return i;
    return N_STATUSES;
}

/* A flow variable as the daemon would see it: a plain string, or
 * {"default", "env"} where the environment variable wins when set. */
static const char *var_value(const json_t *vars, const char *name)
{
    const json_t *v = json_object_get(vars, name);
    if (json_is_string(v))
        return json_string_value(v);
    const char *env = json_string_value(json_object_get(v, "env"));
    if (env != NULL && getenv(env) != NULL && getenv(env)[0] != '\0')
        return getenv(env);
    const char *def = json_string_value(json_object_get(v, "default"));
    return def ? def : "(unset)";
}

/* "{{vars.x}}/path" with vars resolved, reduced to scheme://host. */
static json_t *backend_of(const char *url, const json_t *vars)
{
    char buf[1024];
    size_t n = 0;
    for (const char *p = url; *p && n + 1 < sizeof(buf);) {
        const char *end = strncmp(p, "{{", 2) == 0 ? strstr(p, "}}") : NULL;
        if (end != NULL && strncmp(p + 2, "vars.", 5) == 0) {
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(end - p - 7), p + 7);
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", var_value(vars, name));
            p = end + 2;
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
    char *scheme = strstr(buf, "://");
    char *slash = strchr(scheme ? scheme + 3 : buf, '/');
    if (slash != NULL)
        *slash = '\0';
    return json_string(buf);
}

static void add_dependency(json_t *deps, json_t *backend)
{
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d) if (json_equal(d, backend))
    {
        json_decref(backend);
        return;
    }
    json_array_append_new(deps, backend);
}

static json_t *workflow(const json_t *flow, const json_t *vars)
{
    json_t *deps = json_array();
    const char *name;
    json_t *node;
    json_object_foreach(json_object_get(flow, "nodes"), name, node)
    {
        const char *url = json_string_value(json_object_get(node, "url"));
        const char *type = json_string_value(json_object_get(node, "type"));
        if (url == NULL && type != NULL && strcmp(type, "llm") == 0) /* the settings' model */
            url = json_string_value(json_object_get(json_object_get(vars, ""), "base_url"));
        if (url != NULL)
            add_dependency(deps, backend_of(url, vars));
    }
    const char *status = json_string_value(json_object_get(flow, "status"));
    const char *desc = json_string_value(json_object_get(flow, "description"));
    const char *owner = json_string_value(json_object_get(flow, "owner"));
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "name",
                     json_string_value(json_object_get(flow, "name")), "description",
                     desc ? desc : "", "owner", owner ? owner : "", "status",
                     status ? status : "live", "depends_on", deps);
}

static int cmp_workflow(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int rx = status_rank(json_string_value(json_object_get(x, "status")));
    int ry = status_rank(json_string_value(json_object_get(y, "status")));
    if (rx != ry)
        return rx - ry;
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/* Collects the flows (documents with a name) and the settings' variables
 * and LLM endpoint (under "", which cannot be a variable's name). */
typedef struct {
    json_t *files, *vars;
} flows_acc_t;

static void add_flow(json_t *f, void *arg)
{
    flows_acc_t *acc = arg;
    json_t *st = json_object_get(f, "settings");
    if (json_object_get(st, "vars") != NULL)
        json_object_update(acc->vars, json_object_get(st, "vars"));
    if (json_object_get(st, "llm") != NULL)
        json_object_set(acc->vars, "", json_object_get(st, "llm"));
    if (json_is_string(json_object_get(f, "name")))
        json_array_append(acc->files, f);
}

static json_t *load_flows(const char *dir, json_t **vars)
{
    flows_acc_t acc = {json_array(), *vars};
    ctl_flow_docs(dir, add_flow, &acc);
    return acc.files;
}

json_t *roadmap_workflows(const char *dir)
{
    json_t *vars = json_object();
    json_t *flows = load_flows(dir, &vars);
    size_t n = json_array_size(flows);
    if (n == 0) {
        json_decref(flows);
        json_decref(vars);
        return NULL;
    }
    json_t **items = malloc(n * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = workflow(json_array_get(flows, i), vars);
    qsort(items, n, sizeof(*items), cmp_workflow);
    json_t *list = json_array(), *counts = json_object();
    for (int s = 0; s < N_STATUSES; s++)
        json_object_set_new(counts, statuses[s], json_integer(0));
    for (size_t i = 0; i < n; i++) {
        const char *st = json_string_value(json_object_get(items[i], "status"));
        json_object_set_new(counts, st,
                            json_integer(json_integer_value(json_object_get(counts, st)) + 1));
        json_array_append_new(list, items[i]);
    }
    free(items);
    json_decref(flows);
    json_decref(vars);
    return json_pack("{s:o,s:o}", "workflows", list, "status_counts", counts);
}

/* The KPIs of one report row, cost per conversation included (null when
 * the flow had no conversations in the window). */
static json_t *row_kpis(const json_t *row)
{
    json_t *k = json_object();
    double convs = json_number_value(json_object_get(row, "conversations"));
    for (size_t i = 0; i < N_KPIS; i++) {
        json_t *v = json_object_get(row, kpis[i].field);
        if (strcmp(kpis[i].field, "cost_per_conversation") == 0)
            v = convs > 0 ? json_real(json_number_value(json_object_get(row, "cost")) / convs)
                          : json_null();
        else
            v = v ? json_incref(v) : json_null();
        json_object_set_new(k, kpis[i].field, v);
    }
    return k;
}

void roadmap_add_kpis(json_t *doc, const json_t *now, const json_t *before)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(doc, "workflows"), i, w)
    {
        const char *name = json_string_value(json_object_get(w, "name"));
        json_t *a = row_kpis(json_object_get(now, name));
        json_t *b = row_kpis(json_object_get(before, name));
        json_t *trend = json_object();
        for (size_t k = 0; k < N_KPIS; k++) {
            json_t *x = json_object_get(a, kpis[k].field), *y = json_object_get(b, kpis[k].field);
            json_object_set_new(trend, kpis[k].field,
                                json_is_number(x) && json_is_number(y)
                                    ? json_real(json_number_value(x) - json_number_value(y))
                                    : json_null());
        }
        json_object_set_new(w, "kpis", a);
        json_object_set_new(w, "previous", b);
        json_object_set_new(w, "trend", trend);
    }
}
