/* chorusctl roadmap: the living automation roadmap (docs/flywheel.md). Every
 * workflow the flows declare, with its owner and status from the flow's
 * metadata, its KPIs over the last window and their trend against the window
 * before, the backends its actions call, the top opportunities `learn`
 * finds, and the rollouts in progress; as Markdown (the page to show) or
 * JSON (for a dashboard). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/rollout.h"
#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_learn.h"
#include "cmd/ctl_roadmap.h"

int ctl_roadmap(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl roadmap --flows DIR (--db FILE | --data-dir DIR) [options]\n"
                 "  --format F          markdown | json (default markdown)\n"
                 "  --window-days N     KPI window, compared with the one before (default 7)\n"
                 "  --at TIME           end of the window (default now)\n"
                 "  --out FILE          write there instead of standard output\n");
}

static int parse(roadmap_args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return usage(stdout), 1;
        if (v == NULL)
            return fprintf(stderr, "roadmap: %s needs a value\n", o), 2;
        i++;
        char *end;
        if (strcmp(o, "--flows") == 0)
            a->flows = v;
        else if (strcmp(o, "--db") == 0)
            a->db = v;
        else if (strcmp(o, "--data-dir") == 0)
            a->data_dir = v;
        else if (strcmp(o, "--out") == 0)
            a->out = v;
        else if (strcmp(o, "--format") == 0 && (!strcmp(v, "markdown") || !strcmp(v, "json")))
            a->format = v;
        else if (strcmp(o, "--window-days") == 0 && (a->window_days = strtol(v, &end, 10)) >= 1 &&
                 a->window_days <= 366 && *end == '\0')
            continue;
        else if (strcmp(o, "--at") == 0 && (a->at_us = ctl_parse_time(v)) >= 0)
            continue;
        else
            return fprintf(stderr, "roadmap: bad option %s \"%s\" (see --help)\n", o, v), 2;
    }
    if (a->flows == NULL)
        return fprintf(stderr, "roadmap: --flows DIR is required\n"), 2;
    if ((a->db == NULL) == (a->data_dir == NULL))
        return fprintf(stderr, "roadmap: give exactly one of --db FILE or --data-dir DIR\n"), 2;
    return 0;
}

/* KPI report rows by flow for [from, to), as {flow: row}. */
static int kpis_by_flow(store_db_t *db, int64_t from, int64_t to, json_t **out, core_err_t *err)
{
    store_report_query_t q = {.from_us = from, .to_us = to, .by = STORE_BY_FLOW};
    json_t *r = NULL;
    int rc = store_db_report(db, &q, &r, err);
    if (rc != 0)
        return rc;
    *out = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(r, "rows"), i, row)
    {
        const char *flow = json_string_value(json_object_get(row, "flow"));
        if (flow != NULL)
            json_object_set(*out, flow, row);
    }
    json_decref(r);
    return 0;
}

/* Everything but the workflows' own metadata: KPIs, learn, rollouts. */
static int gather(const roadmap_args_t *a, store_db_t *db, json_t *doc, core_err_t *err)
{
    int64_t span = (int64_t)a->window_days * 86400 * 1000000;
    json_t *now = NULL, *before = NULL, *learned = NULL, *rollouts = NULL;
    int rc = kpis_by_flow(db, a->at_us - span, a->at_us, &now, err);
    rc = rc ? rc : kpis_by_flow(db, a->at_us - 2 * span, a->at_us - span, &before, err);
    learn_args_t la = {.format = "json",
                       .top = 5,
                       .min_size = 3,
                       .handle_s = 360,
                       .low_conf = 0.5,
                       .flows = a->flows,
                       .from_us = a->at_us - span,
                       .to_us = a->at_us};
    rc = rc ? rc : learn_mine(&la, db, &learned, err);
    rc = rc ? rc : store_db_rollouts(db, NULL, NULL, ROLLOUT_RUNNING, &rollouts, err);
    if (rc == 0) {
        roadmap_add_kpis(doc, now, before);
        json_t *ops = json_array();
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(learned, "opportunities"), i, o)
        {
            if (i >= 5)
                break;
            json_object_del(o, "utterances");
            json_array_append(ops, o);
        }
        json_object_set_new(doc, "opportunities", ops);
        json_object_set(doc, "rollouts", json_object_get(rollouts, "rollouts"));
    }
    json_decref(now);
    json_decref(before);
    json_decref(learned);
    json_decref(rollouts);
    return rc;
}

int ctl_roadmap(int argc, char **argv)
{
    roadmap_args_t a = {.format = "markdown", .window_days = 7, .at_us = core_wall_us()};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    json_t *doc = roadmap_workflows(a.flows);
    if (doc == NULL) {
        fprintf(stderr, "roadmap: %s: no flow files could be read\n", a.flows);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s%s", a.db ? a.db : a.data_dir, a.db ? "" : "/chorus.db");
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    rc = db ? gather(&a, db, doc, &err) : -1;
    store_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "roadmap: %s: %s\n", path, err.msg);
        json_decref(doc);
        return 1;
    }
    json_object_set_new(doc, "window",
                        json_pack("{s:I,s:I,s:I}", "days", (json_int_t)a.window_days, "from_us",
                                  (json_int_t)(a.at_us - a.window_days * 86400000000), "to_us",
                                  (json_int_t)a.at_us));
    FILE *out = a.out ? fopen(a.out, "w") : stdout;
    if (out == NULL) {
        fprintf(stderr, "roadmap: cannot write %s\n", a.out);
        json_decref(doc);
        return 1;
    }
    if (strcmp(a.format, "json") == 0) {
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
    } else {
        roadmap_markdown(doc, out);
    }
    if (out != stdout)
        fclose(out);
    json_decref(doc);
    return 0;
}
