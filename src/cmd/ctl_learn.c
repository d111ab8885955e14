/* chorusctl learn: what to automate next (docs/flywheel.md). Mines the
 * store for user turns the flows did not understand, clusters them
 * (learn.h), and ranks each cluster as an opportunity by impact (the
 * conversations it broke x the human time they then cost) and feasibility
 * (how alike its utterances are, and whether the flows already have the
 * slots its requests need). Also lists drop-off nodes, low-confidence intents
 * and the confusions analysts' labels reveal. --export-intent writes a draft
 * flow file from one cluster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/entities.h"
#include "chorus/learn.h"
#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_learn.h"

int ctl_learn(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl learn (--db FILE | --data-dir DIR) [options]\n"
                 "  --from TIME, --to TIME   conversations started in [from, to) (YYYY-MM-DD...)\n"
                 "  --flows DIR              flows, to tell which needed slots already exist\n"
                 "  --format F               table | json (default table)\n"
                 "  --top N                  opportunities shown (default 10)\n"
                 "  --min-size N             smallest cluster reported, in turns (default 3)\n"
                 "  --threshold X            similarity to join a cluster, 0..1 (default 0.25)\n"
                 "  --handle-time S          human seconds per escalation when none was\n"
                 "                           recorded (default 360)\n"
                 "  --low-confidence X       an intent turn below X is low confidence (0.5)\n"
                 "  --export-intent N --out FILE   write opportunity N as a draft flow\n"
                 "Scoring and every field: docs/flywheel.md.\n");
}

static int parse_num(const char *o, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "learn: %s: \"%s\" is not a number in [%g, %g]\n", o, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse(learn_args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return usage(stdout), 1;
        if (v == NULL)
            return fprintf(stderr, "learn: %s needs a value\n", o), 2;
        i++;
        const char **slot = !strcmp(o, "--db")         ? &a->db
                            : !strcmp(o, "--data-dir") ? &a->data_dir
                            : !strcmp(o, "--from")     ? &a->from
                            : !strcmp(o, "--to")       ? &a->to
                            : !strcmp(o, "--flows")    ? &a->flows
                            : !strcmp(o, "--format")   ? &a->format
                            : !strcmp(o, "--out")      ? &a->out
                                                       : NULL;
        double x, *num = !strcmp(o, "--top")              ? &a->top
                         : !strcmp(o, "--min-size")       ? &a->min_size
                         : !strcmp(o, "--threshold")      ? &a->threshold
                         : !strcmp(o, "--handle-time")    ? &a->handle_s
                         : !strcmp(o, "--low-confidence") ? &a->low_conf
                         : !strcmp(o, "--export-intent")  ? &a->export_id
                                                          : NULL;
        if (slot != NULL) {
            *slot = v;
        } else if (num != NULL) {
            int frac = num == &a->threshold || num == &a->low_conf;
            if (parse_num(o, v, frac ? 0 : 1, frac ? 1 : 1e9, &x) != 0)
                return 2;
            *num = x;
        } else {
            fprintf(stderr, "learn: unknown option %s (see --help)\n", o);
            return 2;
        }
    }
    if ((a->db == NULL) == (a->data_dir == NULL))
        return fprintf(stderr, "learn: give exactly one of --db FILE or --data-dir DIR\n"), 2;
    if (strcmp(a->format, "table") != 0 && strcmp(a->format, "json") != 0)
        return fprintf(stderr, "learn: --format: \"%s\" is not table or json\n", a->format), 2;
    if ((a->export_id > 0) != (a->out != NULL))
        return fprintf(stderr, "learn: --export-intent and --out go together\n"), 2;
    if (a->from && (a->from_us = ctl_parse_time(a->from)) < 0)
        return fprintf(stderr, "learn: --from: \"%s\" is not a date\n", a->from), 2;
    if (a->to && (a->to_us = ctl_parse_time(a->to)) < 0)
        return fprintf(stderr, "learn: --to: \"%s\" is not a date\n", a->to), 2;
    return 0;
}

int ctl_learn(int argc, char **argv)
{
    learn_args_t a = {
        .format = "table", .top = 10, .min_size = 3, .handle_s = 360, .low_conf = 0.5};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    char path[4096];
    if (a.db != NULL)
        snprintf(path, sizeof(path), "%s", a.db);
    else
        snprintf(path, sizeof(path), "%s/chorus.db", a.data_dir);
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    if (db == NULL) {
        fprintf(stderr, "learn: %s: %s\n", path, err.msg);
        return 1;
    }
    json_t *report = NULL;
    rc = learn_mine(&a, db, &report, &err);
    store_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "learn: %s: %s\n", path, err.msg);
        return 1;
    }
    if (a.export_id > 0)
        rc = learn_export(&a, report);
    else if (strcmp(a.format, "json") == 0)
        rc = json_dumpf(report, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF ? 0 : 1;
    else
        learn_print(report, stdout);
    json_decref(report);
    return rc;
}
