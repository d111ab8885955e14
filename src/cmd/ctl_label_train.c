/* chorusctl label train: turns the labelled turns into a training file in
 * the flows directory (labels.training.json unless --file names another):
 * {"training": {"intent": ["utterance", ...]}}. The flowset loads it with
 * the flows, so the examples retrain the router on the next reload and are
 * versioned and promoted like a flow. Existing examples are kept; turns
 * labelled "oos" become out-of-scope examples (the router's oos class);
 * labels naming an intent no flow declares are counted, not written.
 * The file is replaced atomically (temp file, rename) so a watching daemon
 * never reads half of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/store.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_label.h"

/* The intents the flows of dir declare, as a set. */
static void add_intents(json_t *flow, void *arg)
{
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(flow, "intents"), name, v)
        json_object_set_new(arg, name, json_true());
}

static json_t *declared_intents(const char *dir)
{
    json_t *set = json_object();
    json_object_set_new(set, "oos", json_true()); /* every flowset's out-of-scope examples */
    ctl_flow_docs(dir, add_intents, set);
    return set;
}

static int has(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static void sort_list(json_t *list)
{
    size_t n = json_array_size(list);
    json_t **items = malloc((n ? n : 1) * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(list, i));
    qsort(items, n, sizeof(*items), cmp_json_str);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, items[i]);
    free(items);
}

int label_train(int argc, char **argv)
{
    const char *db = NULL, *flows = NULL, *file = "labels.training.json";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--db") == 0 && v)
            db = argv[++i];
        else if (strcmp(argv[i], "--flows") == 0 && v)
            flows = argv[++i];
        else if (strcmp(argv[i], "--file") == 0 && v && !strchr(v, '/'))
            file = argv[++i];
        else
            return fprintf(stderr, "usage: chorusctl label train --db FILE --flows DIR "
                                   "[--file NAME.json]\n"),
                   strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
    if (db == NULL || flows == NULL)
        return fprintf(stderr, "label train: --db FILE and --flows DIR are required\n"), 2;
    core_err_t err = {0};
    store_db_t *sd = store_db_open(db, &err);
    json_t *labelled = NULL;
    if (sd == NULL || store_db_labelled_examples(sd, &labelled, &err) != 0) {
        fprintf(stderr, "label train: %s: %s\n", db, err.msg);
        store_db_close(sd);
        return 1;
    }
    store_db_close(sd);
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", flows, file);
    json_t *doc = json_load_file(path, 0, NULL);
    if (doc == NULL)
        doc =
            json_pack("{s:s,s:{}}", "description",
                      "Examples from labelled conversations (chorusctl label train).", "training");
    json_t *training = json_object_get(doc, "training");
    if (!json_is_object(training)) {
        fprintf(stderr, "label train: %s: \"training\" must be an object\n", path);
        json_decref(doc);
        json_decref(labelled);
        return 1;
    }
    json_t *known = declared_intents(flows);
    size_t added = 0, skipped = 0;
    const char *intent;
    json_t *texts;
    json_object_foreach(labelled, intent, texts)
    {
        if (json_object_get(known, intent) == NULL) {
            skipped += json_array_size(texts);
            continue;
        }
        json_t *list = json_object_get(training, intent);
        if (list == NULL)
            json_object_set_new(training, intent, list = json_array());
        size_t i;
        json_t *t;
        json_array_foreach(texts, i, t) if (!has(list, json_string_value(t)))
        {
            json_array_append(list, t);
            added++;
        }
        sort_list(list);
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc =
        json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && rename(tmp, path) == 0
            ? 0
            : 1;
    if (rc != 0)
        fprintf(stderr, "label train: cannot write %s\n", path);
    else
        printf("wrote %s: %zu new examples; %zu labelled turns skipped (an intent no flow "
               "declares)\n",
               path, added, skipped);
    json_decref(known);
    json_decref(doc);
    json_decref(labelled);
    return rc;
}
