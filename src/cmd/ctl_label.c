/* chorusctl label: the correct intent of user turns, recorded so routing
 * accuracy is measured against it and so they can become training examples.
 *   label --db FILE CONVERSATION SEQ INTENT   one turn
 *   label export --db FILE --out FILE.csv     turns worth labelling, as CSV
 *   label import --db FILE --in FILE.csv      the filled-in CSV back
 *   label review --db FILE                    one by one in a terminal
 *   label train --db FILE --flows DIR         the training file (ctl_label_train.c)
 * Writes go through the store's writer with an audit row, safe while chorusd
 * runs (SQLite serialises the two writers: WAL, busy timeout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl.h"
#include "cmd/ctl_label.h"

int ctl_label(int argc, char **argv);
/* ctl_label_csv.c */
int label_export(int argc, char **argv);
int label_import(int argc, char **argv);
int label_review(int argc, char **argv);

typedef struct {
    int done, status;
} label_wait_t;

static void on_labelled(int status, void *data)
{
    label_wait_t *w = data;
    w->done = 1;
    w->status = status;
}

int label_write(const char *db, const json_t *labels, const char *by, const char *action)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    core_err_t err = {0};
    store_options_t opt = {.path = db};
    store_t *s = store_open(&loop, &opt, &err);
    if (s == NULL) {
        fprintf(stderr, "label: %s\n", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    int64_t now = core_wall_us();
    store_batch_t *b = store_batch_new();
    size_t i;
    json_t *l;
    json_array_foreach(labels, i, l)
        store_batch_label(b, json_string_value(json_object_get(l, "conversation")),
                          json_integer_value(json_object_get(l, "seq")),
                          json_string_value(json_object_get(l, "label")), by, now);
    json_t *detail =
        json_array_size(labels) == 1
            ? json_pack("{s:O,s:O}", "seq", json_object_get(json_array_get(labels, 0), "seq"),
                        "intent", json_object_get(json_array_get(labels, 0), "label"))
            : json_pack("{s:I}", "labels", (json_int_t)json_array_size(labels));
    char *d = json_dumps(detail, JSON_COMPACT);
    const char *target =
        json_array_size(labels) == 1
            ? json_string_value(json_object_get(json_array_get(labels, 0), "conversation"))
            : "-";
    store_batch_audit(b, by, action, target, d, now);
    free(d);
    json_decref(detail);
    label_wait_t w = {0, 0};
    int rc = store_enqueue(s, b, on_labelled, &w);
    if (rc != 0)
        store_batch_free(b);
    while (rc == 0 && !w.done)
        uv_run(&loop, UV_RUN_ONCE);
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc == 0)
        rc = w.status;
    if (rc == CORE_ERR_INVALID && json_array_size(labels) == 1)
        fprintf(stderr, "label: conversation %s has no user turn %lld\n", target,
                (long long)json_integer_value(json_object_get(json_array_get(labels, 0), "seq")));
    else if (rc == CORE_ERR_INVALID)
        fprintf(stderr, "label: a labelled turn is not a user turn of its conversation; "
                        "nothing was recorded\n");
    else if (rc != 0)
        fprintf(stderr, "label: not recorded: %s\n", core_strerror(rc));
    return rc == 0 ? 0 : 1;
}

static int label_one(int argc, char **argv)
{
    const char *db = NULL, *by = getenv("USER"), *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: chorusctl label --db FILE CONVERSATION SEQ INTENT [--by NAME]\n"
                   "       chorusctl label export|import|review|train ... (--help on each)\n"
                   "  INTENT is the intent the user turn SEQ should have been routed to,\n"
                   "  or \"oos\" when it was out of scope.\n");
            return 0;
        }
        if ((strcmp(argv[i], "--db") == 0 || strcmp(argv[i], "--by") == 0) && i + 1 < argc) {
            *(argv[i][2] == 'd' ? &db : &by) = argv[i + 1];
            i++;
        } else if (argv[i][0] != '-' && npos < 3) {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "label: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    char *end = NULL;
    long long seq = npos == 3 ? strtoll(pos[1], &end, 10) : 0;
    if (db == NULL || npos != 3 || *end != '\0' || seq <= 0 || pos[2][0] == '\0') {
        fprintf(stderr, "usage: chorusctl label --db FILE CONVERSATION SEQ INTENT [--by NAME]\n");
        return 2;
    }
    json_t *labels = json_pack("[{s:s,s:I,s:s}]", "conversation", pos[0], "seq", (json_int_t)seq,
                               "label", pos[2]);
    int rc = label_write(db, labels, by ? by : "chorusctl", "label");
    json_decref(labels);
    if (rc == 0)
        printf("labelled %s #%lld as %s\n", pos[0], seq, pos[2]);
    return rc;
}

int ctl_label(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "export") == 0)
        return label_export(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return label_import(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "review") == 0)
        return label_review(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "train") == 0)
        return label_train(argc - 1, argv + 1);
    return label_one(argc, argv);
}
