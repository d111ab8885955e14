/* chorusctl transcripts: list conversations and show one with its turns and
 * events, from a database file (read-only, safe while chorusd runs).
 * chorusctl label lives in ctl_label.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl.h"

int ctl_transcripts(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl transcripts --db FILE [list] [--channel C] [--flow F]\n"
                 "                             [--outcome O] [--from T] [--to T] [--limit N]\n"
                 "                             [--worst]  ended ones, lowest score first\n"
                 "       chorusctl transcripts --db FILE show ID\n"
                 "  --format text|json   (default text)\n");
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void when(char *out, size_t size, json_t *v)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    core_time_format(out, size, (int64_t)json_integer_value(v));
}

static void print_list(json_t *r)
{
    printf("%-24s %-8s %-14s %-8s %-27s %-10s %5s %5s %s\n", "id", "channel", "flow", "version",
           "started", "outcome", "turns", "score", "reason");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r, "conversations"), i, c)
    {
        char t[40];
        when(t, sizeof(t), json_object_get(c, "started_us"));
        char score[8] = "-";
        if (json_is_integer(json_object_get(c, "score")))
            snprintf(score, sizeof(score), "%lld",
                     (long long)json_integer_value(json_object_get(c, "score")));
        printf("%-24s %-8s %-14s %-8s %-27s %-10s %5lld %5s %s\n", str(c, "id"), str(c, "channel"),
               str(c, "flow"), str(c, "flow_version"), t, str(c, "outcome"),
               (long long)json_integer_value(json_object_get(c, "turns")), score,
               json_is_string(json_object_get(c, "escalation_reason")) ? str(c, "escalation_reason")
                                                                       : "");
    }
}

static void print_turn(json_t *t)
{
    char ts[40], extra[160] = "";
    when(ts, sizeof(ts), json_object_get(t, "ts_us"));
    int in = strcmp(str(t, "direction"), "in") == 0;
    size_t n = 0;
    if (in && json_is_string(json_object_get(t, "intent")))
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, " intent=%s conf=%.2f%s",
                              str(t, "intent"), json_number_value(json_object_get(t, "confidence")),
                              json_is_true(json_object_get(t, "oos")) ||
                                      json_integer_value(json_object_get(t, "oos")) == 1
                                  ? " oos"
                                  : "");
    if (json_is_string(json_object_get(t, "label")) && n < sizeof(extra))
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, " label=%s", str(t, "label"));
    if (!in && json_is_integer(json_object_get(t, "latency_us")) && n < sizeof(extra))
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, " node=%s latency=%.1fms",
                              str(t, "node"),
                              (double)json_integer_value(json_object_get(t, "latency_us")) / 1e3);
    if (json_is_string(json_object_get(t, "error")) && n < sizeof(extra))
        snprintf(extra + n, sizeof(extra) - n, " error=%s", str(t, "error"));
    json_t *text = json_object_get(t, "text");
    printf("%s #%lld %-4s %s\n      [%s]\n", ts,
           (long long)json_integer_value(json_object_get(t, "seq")), in ? "user" : "bot",
           json_is_string(text) ? json_string_value(text) : "(pruned)", extra[0] ? extra + 1 : "");
}

static void print_show(json_t *c)
{
    char s[40], e[40];
    when(s, sizeof(s), json_object_get(c, "started_us"));
    when(e, sizeof(e), json_object_get(c, "ended_us"));
    printf("conversation %s\n  channel %s, flow %s %s, variant %s\n  started %s, ended %s\n"
           "  outcome %s%s%s",
           str(c, "id"), str(c, "channel"), str(c, "flow"), str(c, "flow_version"),
           *str(c, "variant") ? str(c, "variant") : "(none)", s, e, str(c, "outcome"),
           json_is_string(json_object_get(c, "escalation_reason")) ? ", reason " : "",
           json_is_string(json_object_get(c, "escalation_reason")) ? str(c, "escalation_reason")
                                                                   : "");
    if (json_is_integer(json_object_get(c, "csat")))
        printf(", CSAT %lld", (long long)json_integer_value(json_object_get(c, "csat")));
    printf("\n\n");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(c, "turns"), i, t) print_turn(t);
    if (json_array_size(json_object_get(c, "events")) > 0)
        printf("\nevents\n");
    json_array_foreach(json_object_get(c, "events"), i, t)
    {
        char ts[40];
        when(ts, sizeof(ts), json_object_get(t, "ts_us"));
        char *detail = json_dumps(json_object_get(t, "detail"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%s turn %lld %s %s %s %s\n", ts,
               (long long)json_integer_value(json_object_get(t, "turn_seq")), str(t, "kind"),
               str(t, "name"), str(t, "status"), detail ? detail : "");
        free(detail);
    }
}

typedef struct {
    const char *db, *format, *show, *from, *to;
    store_list_query_t q;
} args_t;

static int parse(args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
            return usage(stdout), 1;
        if (strcmp(o, "list") == 0)
            continue;
        if (strcmp(o, "--worst") == 0) {
            a->q.worst = 1;
            continue;
        }
        if (v == NULL)
            return fprintf(stderr, "transcripts: %s needs a value\n", o), 2;
        i++;
        char *end;
        if (strcmp(o, "show") == 0)
            a->show = v;
        else if (strcmp(o, "--db") == 0)
            a->db = v;
        else if (strcmp(o, "--format") == 0 && (!strcmp(v, "text") || !strcmp(v, "json")))
            a->format = v;
        else if (strcmp(o, "--channel") == 0)
            a->q.channel = v;
        else if (strcmp(o, "--flow") == 0)
            a->q.flow = v;
        else if (strcmp(o, "--outcome") == 0)
            a->q.outcome = v;
        else if (strcmp(o, "--from") == 0)
            a->from = v;
        else if (strcmp(o, "--to") == 0)
            a->to = v;
        else if (strcmp(o, "--limit") == 0 && (a->q.limit = (int)strtol(v, &end, 10)) > 0 &&
                 a->q.limit <= 1000 && *end == '\0')
            continue;
        else
            return fprintf(stderr, "transcripts: bad option %s %s\n", o, v), 2;
    }
    core_err_t err = {0};
    if (a->db == NULL)
        return fprintf(stderr, "transcripts: --db FILE is required\n"), 2;
    if ((a->from && store_parse_time(a->from, &a->q.from_us, &err)) ||
        (a->to && store_parse_time(a->to, &a->q.to_us, &err)))
        return fprintf(stderr, "transcripts: %s\n", err.msg), 2;
    return 0;
}

int ctl_transcripts(int argc, char **argv)
{
    args_t a = {.format = "text", .q = {.limit = 50}};
    int rc = parse(&a, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    core_err_t err = {0};
    json_t *r = NULL;
    store_db_t *db = store_db_open(a.db, &err);
    if (db != NULL)
        rc = a.show ? store_db_transcript(db, a.show, &r, &err)
                    : store_db_conversations(db, &a.q, &r, &err);
    store_db_close(db);
    if (db == NULL || rc != 0) {
        fprintf(stderr, "transcripts: %s\n", err.msg);
        return 1;
    }
    if (strcmp(a.format, "json") == 0) {
        char *s = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    } else if (a.show) {
        print_show(r);
    } else {
        print_list(r);
    }
    json_decref(r);
    return 0;
}
