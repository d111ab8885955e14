/* Labelling by the batch: `label export` writes the turns worth labelling
 * as CSV (RFC 4180) for a team's spreadsheet, `label import` reads the
 * filled-in file back (every row checked first; all or nothing), and `label
 * review` asks about them one by one in a terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_label.h"

int label_export(int argc, char **argv);
int label_import(int argc, char **argv);
int label_review(int argc, char **argv);

static const char *const columns[] = {"conversation", "seq",   "text", "predicted",
                                      "confidence",   "label", NULL};

typedef struct {
    const char *db, *out, *in, *by;
    double max_conf;
    long limit;
    int all;
} opts_t;

static int parse(opts_t *o, int argc, char **argv, const char *cmd)
{
    o->max_conf = 0.5;
    o->limit = 200;
    o->by = getenv("USER") ? getenv("USER") : "chorusctl";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--all") == 0) {
            o->all = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || v == NULL) {
            fprintf(v ? stdout : stderr,
                    "usage: chorusctl label %s --db FILE %s[--max-confidence X] [--limit N]%s\n"
                    "  turns out of scope, unrouted or routed below X (default 0.5), least\n"
                    "  confident first; --all includes turns already labelled\n",
                    cmd,
                    !strcmp(cmd, "export")   ? "--out FILE.csv "
                    : !strcmp(cmd, "import") ? "--in FILE.csv "
                                             : "",
                    !strcmp(cmd, "export") ? " [--all]" : " [--by NAME]");
            return v ? 1 : 2;
        }
        i++;
        char *end;
        if (strcmp(a, "--db") == 0)
            o->db = v;
        else if (strcmp(a, "--out") == 0)
            o->out = v;
        else if (strcmp(a, "--in") == 0)
            o->in = v;
        else if (strcmp(a, "--by") == 0)
            o->by = v;
        else if (strcmp(a, "--max-confidence") == 0 && (o->max_conf = strtod(v, &end)) >= 0 &&
                 o->max_conf <= 1 && *end == '\0')
            continue;
        else if (strcmp(a, "--limit") == 0 && (o->limit = strtol(v, &end, 10)) > 0 &&
                 o->limit <= 100000 && *end == '\0')
            continue;
        else
            return fprintf(stderr, "label %s: bad option %s \"%s\"\n", cmd, a, v), 2;
    }
    if (o->db == NULL)
        return fprintf(stderr, "label %s: --db FILE is required\n", cmd), 2;
    return 0;
}

static json_t *candidates(const opts_t *o)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(o->db, &err);
    json_t *out = NULL;
    if (db == NULL ||
        store_db_label_candidates(db, 0, 0, o->max_conf, o->all, (int)o->limit, &out, &err) != 0)
        fprintf(stderr, "label: %s: %s\n", o->db, err.msg);
    store_db_close(db);
    return out;
}

static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

int label_export(int argc, char **argv)
{
    opts_t o = {0};
    int rc = parse(&o, argc, argv, "export");
    if (rc != 0 || o.out == NULL)
        return rc == 1 ? 0 : (fprintf(stderr, "label export: --out FILE.csv is required\n"), 2);
    json_t *rows = candidates(&o);
    FILE *f = rows ? fopen(o.out, "w") : NULL;
    if (f == NULL) {
        if (rows)
            fprintf(stderr, "label export: cannot write %s\n", o.out);
        json_decref(rows);
        return 1;
    }
    for (int k = 0; columns[k]; k++)
        csv_field(f, columns[k], columns[k + 1] == NULL);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char seq[24], conf[24];
        snprintf(seq, sizeof(seq), "%lld",
                 (long long)json_integer_value(json_object_get(r, "seq")));
        snprintf(conf, sizeof(conf), "%.4f", json_real_value(json_object_get(r, "confidence")));
        const char *v[] = {json_string_value(json_object_get(r, "conversation")),
                           seq,
                           json_string_value(json_object_get(r, "text")),
                           json_is_true(json_object_get(r, "oos"))
                               ? "oos"
                               : json_string_value(json_object_get(r, "predicted")),
                           conf,
                           json_string_value(json_object_get(r, "label"))};
        for (int k = 0; k < 6; k++)
            csv_field(f, v[k], k == 5);
    }
    rc = fclose(f) == 0 ? 0 : 1;
    printf("wrote %s: %zu turns to label (fill in the label column, then label import)\n", o.out,
           json_array_size(rows));
    json_decref(rows);
    return rc;
}

/* Splits one CSV record starting at *p (quoted fields may hold commas,
 * doubled quotes and line breaks); fields go to out (owned strings).
 * Returns -1 on an unterminated quote, else 0 and advances *p and *line. */
static int csv_record(const char **p, int *line, json_t *out)
{
    const char *s = *p;
    for (;;) {
        core_buf_t b;
        core_buf_init(&b, 1024 * 1024);
        if (*s == '"') {
            for (s++;; s++) {
                if (*s == '\0') {
                    core_buf_dispose(&b);
                    return -1;
                }
                if (*s == '"' && s[1] == '"')
                    s++;
                else if (*s == '"')
                    break;
                if (*s == '\n')
                    (*line)++;
                core_buf_append(&b, s, 1);
            }
            s++;
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r')
            core_buf_append(&b, s++, 1);
        core_buf_append(&b, "", 1);
        json_array_append_new(out, json_string(b.data));
        core_buf_dispose(&b);
        if (*s != ',')
            break;
        s++;
    }
    if (*s == '\r')
        s++;
    if (*s == '\n') {
        s++;
        (*line)++;
    }
    *p = s;
    return 0;
}

/* The rows of text with a label, checked; NULL after printing every problem. */
static json_t *read_labels(const char *path, const char *text)
{
    const char *p = text;
    int line = 1, problems = 0;
    json_t *head = json_array(), *labels = json_array();
    if (csv_record(&p, &line, head) != 0) {
        fprintf(stderr, "%s:1: unterminated quote in the header\n", path);
        problems++;
    }
    int col[6];
    for (int k = 0; k < 6; k++) {
        col[k] = -1;
        for (size_t j = 0; j < json_array_size(head); j++)
            if (strcmp(json_string_value(json_array_get(head, j)), columns[k]) == 0)
                col[k] = (int)j;
    }
    if (!problems && (col[0] < 0 || col[1] < 0 || col[5] < 0)) {
        fprintf(stderr, "%s:1: the header needs conversation, seq and label columns\n", path);
        problems++;
    }
    while (!problems && *p) {
        int at = line;
        json_t *f = json_array();
        if (csv_record(&p, &line, f) != 0) {
            fprintf(stderr, "%s:%d: unterminated quote\n", path, at);
            problems++;
        }
        const char *conv = json_string_value(json_array_get(f, (size_t)col[0]));
        const char *seq = json_string_value(json_array_get(f, (size_t)col[1]));
        const char *lab = json_string_value(json_array_get(f, (size_t)col[5]));
        char *end = NULL;
        long long n = seq ? strtoll(seq, &end, 10) : 0;
        if (json_array_size(f) == 1 && !json_string_length(json_array_get(f, 0))) {
            /* a blank line */
        } else if (lab == NULL || lab[0] == '\0') {
            /* not labelled: skipped */
        } else if (conv == NULL || conv[0] == '\0' || seq == NULL || *end != '\0' || n <= 0) {
            fprintf(stderr, "%s:%d: needs a conversation and a seq above 0\n", path, at);
            problems++;
        } else {
            json_array_append_new(labels, json_pack("{s:s,s:I,s:s}", "conversation", conv, "seq",
                                                    (json_int_t)n, "label", lab));
        }
        json_decref(f);
    }
    json_decref(head);
    if (problems) {
        json_decref(labels);
        return NULL;
    }
    return labels;
}

int label_import(int argc, char **argv)
{
    opts_t o = {0};
    int rc = parse(&o, argc, argv, "import");
    if (rc != 0 || o.in == NULL)
        return rc == 1 ? 0 : (fprintf(stderr, "label import: --in FILE.csv is required\n"), 2);
    char *text = NULL;
    size_t len;
    core_err_t err = {0};
    if (core_file_read(o.in, 64 * 1024 * 1024, &text, &len, &err) != 0) {
        fprintf(stderr, "label import: %s\n", err.msg);
        return 1;
    }
    json_t *labels = read_labels(o.in, text);
    free(text);
    if (labels == NULL)
        return fprintf(stderr, "label import: nothing was recorded\n"), 1;
    rc = json_array_size(labels) ? label_write(o.db, labels, o.by, "label.import") : 0;
    if (rc == 0)
        printf("recorded %zu labels from %s\n", json_array_size(labels), o.in);
    json_decref(labels);
    return rc;
}

int label_review(int argc, char **argv)
{
    opts_t o = {0};
    int rc = parse(&o, argc, argv, "review");
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    json_t *rows = candidates(&o), *labels = json_array();
    size_t i;
    json_t *r;
    char line[512];
    json_array_foreach(rows, i, r)
    {
        const char *pred = json_string_value(json_object_get(r, "predicted"));
        printf("\n[%zu/%zu] %s #%lld  predicted %s (%.2f)\n  > %s\n"
               "intent? [Enter: %s, oos, s: skip, q: stop] ",
               i + 1, json_array_size(rows), json_string_value(json_object_get(r, "conversation")),
               (long long)json_integer_value(json_object_get(r, "seq")), pred[0] ? pred : "-",
               json_real_value(json_object_get(r, "confidence")),
               json_string_value(json_object_get(r, "text")), pred[0] ? pred : "skip");
        fflush(stdout);
        if (fgets(line, sizeof(line), stdin) == NULL)
            break;
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "q") == 0)
            break;
        const char *label = line[0] ? line : pred;
        if (strcmp(line, "s") == 0 || label[0] == '\0')
            continue;
        json_array_append_new(labels, json_pack("{s:O,s:O,s:s}", "conversation",
                                                json_object_get(r, "conversation"), "seq",
                                                json_object_get(r, "seq"), "label", label));
    }
    printf("\n");
    rc = rows == NULL ? 1 : 0;
    if (rc == 0 && json_array_size(labels) > 0)
        rc = label_write(o.db, labels, o.by, "label.review");
    if (rc == 0)
        printf("recorded %zu labels\n", json_array_size(labels));
    json_decref(rows);
    json_decref(labels);
    return rc;
}
