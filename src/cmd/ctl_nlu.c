/* chorusctl nlu: evaluates the intent router on labelled data sets and
 * classifies single utterances against a directory of flows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "chorus/brain.h"
#include "chorus/nlu.h"
#include "cmd/ctl.h"
#include "cmd/ctl_common.h"

int ctl_nlu(int argc, char **argv);

#define DATA_MAX (512u << 20)

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl nlu eval --train FILE --test FILE [--val FILE]\n"
                 "                          [--format clinc|csv|jsonl] [--oos-label NAME]\n"
                 "                          [--threshold T] [--max-drop POINTS] [--folds K]\n"
                 "                          [--seed N] [--json]\n"
                 "       chorusctl nlu predict --flows DIR [--json] \"utterance\"\n\n"
                 "eval trains on --train, tunes the router and reports accuracy and speed on\n"
                 "--test. With --format clinc (the default for .json files) the files are\n"
                 "CLINC150 JSON: train+oos_train, val+oos_val and test+oos_test are used. Items\n"
                 "labelled NAME (default \"oos\") are out of scope.\n"
                 "Tuning is on --val and on K folds of the training items (default 5), each\n"
                 "scored by a model trained on the other folds: it calibrates the confidence,\n"
                 "then, when out-of-scope items are among them, picks the threshold that catches\n"
                 "the most of them while in-scope accuracy stays within POINTS (default 0.5)\n"
                 "percentage points of its untuned value. --folds 0 tunes on --val alone, or,\n"
                 "without --val, not at all (the built-in temperature and threshold).\n");
}

typedef struct eval_args_s {
    const char *train, *test, *val, *format, *oos;
    double threshold, max_drop;
    unsigned long long seed, folds;
    int json;
} eval_args_t;

static int load_set(const char *path, const char *format, const char *split, const char *oos,
                    nlu_dataset_t *ds)
{
    nlu_format_t fmt;
    core_err_t err = {0};
    char *text = NULL;
    size_t len = 0;
    if (format ? nlu_format_parse(format, &fmt) : nlu_format_guess(path, &fmt)) {
        fprintf(stderr, "chorusctl nlu: %s: unknown format (use --format clinc|csv|jsonl)\n",
                format ? format : path);
        return -1;
    }
    int rc = core_file_read(path, DATA_MAX, &text, &len, &err);
    if (rc == 0)
        rc = nlu_dataset_parse(ds, fmt, split, oos, text, len, path, &err);
    if (rc == 0 && ds->len == 0) /* a score over nothing is no score */
        rc = core_err_set(&err, CORE_ERR_INVALID, "%s: no %s examples", path, split);
    free(text);
    if (rc != 0)
        fprintf(stderr, "chorusctl nlu: %s\n", err.msg);
    return rc;
}

/* ---- metrics ------------------------------------------------------------ */

typedef struct pair_s {
    const char *truth, *pred;
} pair_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    int c = strcmp(x->truth, y->truth);
    return c ? c : strcmp(x->pred, y->pred);
}

typedef struct report_s {
    size_t n_in, n_oos, right, recalled, flagged, flagged_right;
    double macro_f1, train_s, train_cpu_s, tune_s, tune_cpu_s, p50, p99, threshold, temp;
    unsigned folds;
    int tuned, threshold_tuned; /* tuning ran; it found out-of-scope examples to tune on */
    long peak_kib;
    pair_t worst[5];
    size_t worst_n[5], n_worst;
} report_t;

/* Macro F1 over the labels of the test set, "oos" counting as one label. */
static double macro_f1(const pair_t *all, size_t n)
{
    pair_t *truths = malloc((n + 1) * sizeof(pair_t));
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        truths[i] = (pair_t){all[i].truth, ""};
    qsort(truths, n, sizeof(pair_t), cmp_pair);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(truths[i].truth, truths[i - 1].truth) == 0)
            continue;
        const char *l = truths[i].truth;
        size_t tp = 0, fp = 0, fn = 0;
        for (size_t j = 0; j < n; j++) {
            int t = strcmp(all[j].truth, l) == 0, p = strcmp(all[j].pred, l) == 0;
            tp += (size_t)(t && p);
            fp += (size_t)(!t && p);
            fn += (size_t)(t && !p);
        }
        sum += tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
        nl++;
    }
    free(truths);
    return nl ? sum / nl : 0;
}

static void worst_pairs(pair_t *wrong, size_t n, report_t *r)
{
    qsort(wrong, n, sizeof(pair_t), cmp_pair);
    r->n_worst = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && cmp_pair(&wrong[i], &wrong[j]) == 0)
            j++;
        size_t cnt = j - i, pos = r->n_worst;
        while (pos > 0 && r->worst_n[pos - 1] < cnt)
            pos--;
        if (pos < 5) {
            size_t last = r->n_worst < 5 ? r->n_worst : 4;
            memmove(&r->worst[pos + 1], &r->worst[pos], (last - pos) * sizeof(pair_t));
            memmove(&r->worst_n[pos + 1], &r->worst_n[pos], (last - pos) * sizeof(size_t));
            r->worst[pos] = wrong[i];
            r->worst_n[pos] = cnt;
            if (r->n_worst < 5)
                r->n_worst++;
        }
        i = j;
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void evaluate(const nlu_model_t *m, const nlu_dataset_t *test, const char *oos, report_t *r)
{
    double *lat = malloc((test->len + 1) * sizeof(double));
    pair_t *all = malloc((test->len + 1) * sizeof(pair_t));
    pair_t *wrong = malloc((test->len + 1) * sizeof(pair_t));
    size_t n_wrong = 0;
    for (size_t i = 0; i < test->len; i++) {
        const nlu_example_t *e = &test->items[i];
        nlu_result_t res;
        double t0 = now_us();
        nlu_route(m, e->text, strlen(e->text), NULL, &res);
        lat[i] = now_us() - t0;
        const char *pred = res.out_of_scope || res.n_top == 0 ? oos : res.top[0].intent;
        int is_oos = strcmp(e->intent, oos) == 0, said_oos = pred == oos;
        r->n_oos += (size_t)is_oos;
        r->n_in += (size_t)!is_oos;
        r->recalled += (size_t)(is_oos && said_oos);
        r->flagged += (size_t)said_oos;
        r->flagged_right += (size_t)(is_oos && said_oos);
        r->right += (size_t)(!is_oos && strcmp(pred, e->intent) == 0);
        all[i] = (pair_t){e->intent, pred};
        if (strcmp(pred, e->intent) != 0)
            wrong[n_wrong++] = all[i];
    }
    qsort(lat, test->len, sizeof(double), cmp_double);
    r->p50 = test->len ? lat[test->len / 2] : 0;
    r->p99 = test->len ? lat[(size_t)((double)(test->len - 1) * 0.99)] : 0;
    r->macro_f1 = macro_f1(all, test->len);
    worst_pairs(wrong, n_wrong, r);
    free(lat);
    free(all);
    free(wrong);
}

static double frac(size_t a, size_t b)
{
    return b ? (double)a / (double)b : 0;
}

/* a/b as JSON; null when there is nothing to count (b == 0) */
static json_t *frac_json(size_t a, size_t b)
{
    return b ? json_real(frac(a, b)) : json_null();
}

/* a/b as a percentage for the text report; "n/a" when b == 0 */
static const char *pct(size_t a, size_t b, char out[16])
{
    if (b == 0)
        return "n/a";
    snprintf(out, 16, "%.2f%%", 100 * frac(a, b));
    return out;
}

static void print_report(const report_t *r, int json)
{
    if (json) {
        json_t *o = json_pack(
            "{s:o, s:o, s:o, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f}", "in_scope_accuracy",
            frac_json(r->right, r->n_in), "oos_recall", frac_json(r->recalled, r->n_oos),
            "oos_precision", frac_json(r->flagged_right, r->flagged), "macro_f1", r->macro_f1,
            "train_seconds", r->train_s, "classify_us_p50", r->p50, "classify_us_p99", r->p99,
            "threshold", r->threshold, "peak_rss_kib", (json_int_t)r->peak_kib, "n_in_scope",
            (json_int_t)r->n_in, "n_oos", (json_int_t)r->n_oos, "oos_f1",
            r->flagged + r->n_oos ? 2.0 * r->flagged_right / (double)(r->flagged + r->n_oos) : 0.0);
        json_t *pairs = json_array();
        for (size_t i = 0; i < r->n_worst; i++)
            json_array_append_new(pairs, json_pack("{s:s, s:s, s:I}", "truth", r->worst[i].truth,
                                                   "predicted", r->worst[i].pred, "count",
                                                   (json_int_t)r->worst_n[i]));
        json_object_set_new(o, "worst_confusions", pairs);
        json_object_set_new(o, "train_cpu_seconds", json_real(r->train_cpu_s));
        json_object_set_new(o, "temperature", json_real(r->temp));
        json_object_set_new(o, "tune_seconds", json_real(r->tune_s));
        json_object_set_new(o, "tune_cpu_seconds", json_real(r->tune_cpu_s));
        json_object_set_new(o, "tune_folds", json_integer(r->folds));
        json_object_set_new(o, "threshold_tuned", json_boolean(r->threshold_tuned));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    char p[16];
    printf("in-scope accuracy   %s  (%zu/%zu)\n", pct(r->right, r->n_in, p), r->right, r->n_in);
    printf("oos recall          %s  (%zu/%zu)\n", pct(r->recalled, r->n_oos, p), r->recalled,
           r->n_oos);
    printf("oos precision       %s  (%zu/%zu)\n", pct(r->flagged_right, r->flagged, p),
           r->flagged_right, r->flagged);
    printf("macro F1            %.4f\n", r->macro_f1);
    printf("threshold           %.4f (temperature %.2f)%s\n", r->threshold, r->temp,
           r->threshold_tuned ? ""
           : r->tuned         ? ", not tuned: no out-of-scope examples"
                              : ", built in: nothing tuned (--folds 0)");
    printf("training            %.2f s (%.2f s of CPU)\n", r->train_s, r->train_cpu_s);
    printf("tuning              %.2f s (%.2f s of CPU, %u folds)\n", r->tune_s, r->tune_cpu_s,
           r->folds);
    printf("classify            p50 %.1f us, p99 %.1f us\n", r->p50, r->p99);
    printf("peak memory         %.1f MiB\n", r->peak_kib / 1024.0);
    printf("worst confusions (truth -> predicted):\n");
    for (size_t i = 0; i < r->n_worst; i++)
        printf("  %4zu  %s -> %s\n", r->worst_n[i], r->worst[i].truth, r->worst[i].pred);
}

static int parse_eval_args(int argc, char **argv, eval_args_t *a)
{
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(k, "--json") == 0) {
            a->json = 1;
            continue;
        }
        /* every other option takes a value; which one it is decides first,
         * so an unknown one is named as such */
        const char *val = v != NULL ? v : "";
        char *end = NULL;
        if (strcmp(k, "--train") == 0)
            a->train = v;
        else if (strcmp(k, "--test") == 0)
            a->test = v;
        else if (strcmp(k, "--val") == 0)
            a->val = v;
        else if (strcmp(k, "--format") == 0)
            a->format = v;
        else if (strcmp(k, "--oos-label") == 0)
            a->oos = v;
        else if (strcmp(k, "--threshold") == 0)
            a->threshold = strtod(val, &end);
        else if (strcmp(k, "--max-drop") == 0)
            a->max_drop = strtod(val, &end);
        else if (strcmp(k, "--seed") == 0)
            a->seed = strtoull(val, &end, 10);
        else if (strcmp(k, "--folds") == 0)
            a->folds = strtoull(val, &end, 10);
        else {
            fprintf(stderr, "chorusctl nlu eval: unknown option %s (see --help)\n", k);
            return 2;
        }
        if (v == NULL) {
            fprintf(stderr, "chorusctl nlu: %s needs a value\n", k);
            return 2;
        }
        if (end != NULL && (*end != '\0' || end == v)) {
            fprintf(stderr, "chorusctl nlu: %s: not a number: \"%s\"\n", k, v);
            return 2;
        }
        i++;
    }
    if (a->train == NULL || a->test == NULL) {
        fprintf(stderr, "chorusctl nlu eval: --train and --test are required\n");
        return 2;
    }
    if (a->folds == 1 || a->folds > 20) {
        fprintf(stderr, "chorusctl nlu eval: --folds: 0 or 2 to 20\n");
        return 2;
    }
    /* -1: not given (the built-in threshold) */
    if (a->threshold != -1 && !(a->threshold >= 0 && a->threshold <= 1)) {
        fprintf(stderr, "chorusctl nlu eval: --threshold: a confidence from 0 to 1\n");
        return 2;
    }
    nlu_format_t fmt;
    if (a->format != NULL && nlu_format_parse(a->format, &fmt) != 0) {
        fprintf(stderr, "chorusctl nlu eval: --format: clinc, csv or jsonl (got %s)\n", a->format);
        return 2;
    }
    if (!(a->max_drop >= 0 && a->max_drop <= 100)) {
        fprintf(stderr, "chorusctl nlu eval: --max-drop: percentage points from 0 to 100\n");
        return 2;
    }
    return -1;
}

/* Tunes m on val and, with folds, on the training items scored out of
 * fold: the temperature always, the threshold when out-of-scope examples
 * are among them. Many intent data sets have none: their threshold stays,
 * on a calibrated confidence, and a line says so. */
static int tune(const eval_args_t *a, const nlu_dataset_t *train, const nlu_dataset_t *val,
                const nlu_train_opts_t *topts, nlu_model_t *m, report_t *r)
{
    nlu_tune_opts_t to;
    nlu_tune_report_t rep;
    core_err_t err = {0};
    nlu_tune_opts_init(&to);
    to.oos_label = a->oos;
    to.max_drop = a->max_drop / 100;
    to.folds = (unsigned)a->folds;
    to.train = train->items;
    to.n_train = train->len;
    to.train_opts = topts;
    double t0 = now_us(), c0 = cpu_s();
    if (nlu_tune(m, val->items, val->len, &to, &rep, &err) != 0) {
        fprintf(stderr, "chorusctl nlu: %s: %s\n", a->val ? a->val : a->train, err.msg);
        return -1;
    }
    r->tune_s = (now_us() - t0) / 1e6;
    r->tune_cpu_s = cpu_s() - c0;
    r->folds = rep.folds;
    r->tuned = 1;
    r->threshold_tuned = rep.threshold_tuned;
    if (rep.threshold_tuned && a->threshold != -1)
        fprintf(stderr,
                "chorusctl nlu: --threshold %.4f was replaced by the tuned %.4f (give --folds 0"
                " and no --val to keep it)\n",
                a->threshold, rep.threshold);
    if (!rep.threshold_tuned)
        fprintf(stderr,
                "chorusctl nlu: %s: no out-of-scope (\"%s\") examples to tune on; the"
                " temperature is fitted on %zu examples and the threshold stays %.4f\n",
                a->val ? a->val : a->train, a->oos, rep.n_pooled, rep.threshold);
    return 0;
}

static int nlu_eval(int argc, char **argv)
{
    eval_args_t a = {.oos = "oos", .threshold = -1, .max_drop = 0.5, .seed = 1, .folds = 5};
    int rc = parse_eval_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    nlu_dataset_t train, test, val;
    nlu_dataset_init(&train);
    nlu_dataset_init(&test);
    nlu_dataset_init(&val);
    nlu_model_t *m = NULL;
    report_t r = {0};
    core_err_t err = {0};
    rc = 1;
    if (load_set(a.train, a.format, "train", a.oos, &train) ||
        load_set(a.test, a.format, "test", a.oos, &test) ||
        (a.val && load_set(a.val, a.format, "val", a.oos, &val)))
        goto done;
    nlu_train_opts_t opts;
    nlu_train_opts_init(&opts);
    opts.seed = a.seed;
    opts.oos_label = a.oos;
    opts.oos_threshold = a.threshold;
    double t0 = now_us(), c0 = cpu_s();
    if (nlu_train(train.items, train.len, &opts, &m, &err) != 0) {
        fprintf(stderr, "chorusctl nlu: %s: %s\n", a.train, err.msg);
        goto done;
    }
    r.train_s = (now_us() - t0) / 1e6;
    r.train_cpu_s = cpu_s() - c0;
    if ((a.val || a.folds >= 2) && tune(&a, &train, &val, &opts, m, &r) != 0)
        goto done;
    r.threshold = nlu_model_threshold(m);
    r.temp = nlu_model_temperature(m);
    evaluate(m, &test, a.oos, &r);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.peak_kib = ru.ru_maxrss;
    print_report(&r, a.json);
    rc = 0;
done:
    nlu_model_free(m);
    nlu_dataset_dispose(&train);
    nlu_dataset_dispose(&test);
    nlu_dataset_dispose(&val);
    return rc;
}

/* ---- predict ------------------------------------------------------------ */

static void print_result(const nlu_model_t *m, const nlu_result_t *r, int json)
{
    if (json) {
        json_t *top = json_array();
        for (size_t i = 0; i < r->n_top; i++)
            json_array_append_new(
                top, json_pack("{s:s, s:f}", "intent", r->top[i].intent, "score", r->top[i].score));
        json_t *ents = json_array();
        for (size_t i = 0; i < r->entities.len; i++)
            json_array_append_new(ents, json_pack("{s:s, s:s}", "type",
                                                  ent_type_name(r->entities.items[i].type), "value",
                                                  r->entities.items[i].value));
        json_t *o = json_pack("{s:o, s:f, s:b, s:f, s:o}", "top", top, "confidence", r->confidence,
                              "out_of_scope", r->out_of_scope, "threshold", nlu_model_threshold(m),
                              "entities", ents);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(4));
        printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    for (size_t i = 0; i < r->n_top; i++)
        printf("%-32s %.4f\n", r->top[i].intent, r->top[i].score);
    printf("out of scope: %s (confidence %.4f, threshold %.4f)\n", r->out_of_scope ? "yes" : "no",
           r->confidence, nlu_model_threshold(m));
    for (size_t i = 0; i < r->entities.len; i++)
        printf("entity %-8s %s\n", ent_type_name(r->entities.items[i].type),
               r->entities.items[i].value);
}

static int nlu_predict(int argc, char **argv)
{
    const char *dir = NULL, *utt = NULL;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] != '-' && utt == NULL)
            utt = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || utt == NULL) {
        fprintf(stderr, "chorusctl nlu predict: --flows DIR and an utterance are required\n");
        return 2;
    }
    /* the flowset as chorusd compiles it: the same examples (flows, settings,
     * training files, the built-in intents) and the same calibration */
    brain_flowset_t *fs = NULL;
    if (ctl_flowset_load(dir, 0, &fs) != 0)
        return 1;
    time_t now = time(NULL);
    struct tm lt;
    localtime_r(&now, &lt);
    ent_ctx_t ctx = {.year = lt.tm_year + 1900,
                     .month = lt.tm_mon + 1,
                     .day = lt.tm_mday,
                     .hour = lt.tm_hour,
                     .minute = lt.tm_min};
    nlu_result_t r;
    const nlu_model_t *m = brain_flowset_nlu(fs);
    nlu_route(m, utt, strlen(utt), &ctx, &r);
    print_result(m, &r, json);
    brain_flowset_unref(fs);
    return 0;
}

int ctl_nlu(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "eval") == 0)
        return nlu_eval(argc, argv);
    if (strcmp(argv[1], "predict") == 0)
        return nlu_predict(argc, argv);
    fprintf(stderr, "chorusctl nlu: unknown subcommand \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
