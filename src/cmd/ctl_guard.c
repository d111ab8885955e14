/* chorusctl guard: check a guardrail rules file, evaluate the rules on a
 * labelled corpus (precision and recall per rule, sentiment accuracy), and
 * measure the latency the rails add to a turn. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chorus/guard.h"
#include "chorus/policy.h"
#include "cmd/ctl.h"

int ctl_guard(int argc, char **argv);

#define MAX_FILE (64u << 20)

static void usage(FILE *out)
{
    fprintf(out, "usage: chorusctl guard check FILE\n"
                 "       chorusctl guard try [--rules FILE] [--output] [--channel C] TEXT\n"
                 "       chorusctl guard eval CORPUS [--rules FILE] [--verbose]\n"
                 "       chorusctl guard bench [--rules FILE] [--utterances CLINC_JSON]\n"
                 "                             [--corpus CORPUS] [--turns N]\n\n"
                 "check  validates a guardrails file (default rules: config/guardrails.json).\n"
                 "try    runs one text through the input (or --output) rails, as bound for or\n"
                 "       written by an LLM, and prints the result and every decision.\n"
                 "eval   runs the rules over a labelled corpus (JSON lines: {\"text\", "
                 "\"labels\": [rule...],\n"
                 "       \"stage\": \"input\"|\"output\"} or {\"text\", \"sentiment\": "
                 "\"negative\"|...}) and prints\n"
                 "       precision and recall per rule.\n"
                 "bench  prints the median and p99 time of the full input+output rail set per "
                 "turn.\n");
}

static void print_diags(const core_diags_t *d)
{
    for (size_t i = 0; i < d->len; i++) {
        char line[1024];
        fprintf(stderr, "%s\n", core_diag_format(&d->items[i], line, sizeof(line)));
    }
}

/* Loads rules from path, or the built-in rules when path is NULL. */
static guard_rules_t *load_rules(const char *path)
{
    if (path == NULL)
        return guard_rules_default();
    char *text;
    size_t len;
    core_err_t err;
    if (core_file_read(path, MAX_FILE, &text, &len, &err) != 0) {
        fprintf(stderr, "chorusctl guard: %s\n", err.msg);
        return NULL;
    }
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g = NULL;
    if (guard_rules_load(text, len, path, &g, &d) != 0)
        print_diags(&d);
    core_diags_dispose(&d);
    free(text);
    return g;
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 1) {
        usage(stderr);
        return 2;
    }
    guard_rules_t *g = load_rules(argv[0]);
    if (g == NULL)
        return 1;
    printf("%s: ok\n", argv[0]);
    guard_rules_free(g);
    return 0;
}

static void print_result(const guard_result_t *r)
{
    printf("action: %s\ntext: %s\n", guard_action_name(r->action), r->text ? r->text : "");
    if (r->reply != NULL)
        printf("reply: %s\n", r->reply);
    if (r->reason != NULL)
        printf("reason: %s\n", r->reason);
    if (r->use_fallback)
        printf("use_fallback: yes\n");
    for (size_t i = 0; i < r->n_decisions; i++) {
        const guard_decision_t *d = &r->decisions[i];
        printf("decision: %s %s [%zu,%zu) score %.2f\n", d->rule, guard_action_name(d->action),
               d->start, d->end, d->score);
    }
}

static int cmd_try(int argc, char **argv)
{
    const char *rules_path = NULL, *text = NULL, *channel = "chat";
    int output = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc)
            rules_path = argv[++i];
        else if (strcmp(argv[i], "--channel") == 0 && i + 1 < argc)
            channel = argv[++i];
        else if (strcmp(argv[i], "--output") == 0)
            output = 1;
        else if (text == NULL)
            text = argv[i];
        else
            text = NULL, i = argc;
    }
    if (text == NULL) {
        usage(stderr);
        return 2;
    }
    guard_rules_t *g = load_rules(rules_path);
    if (g == NULL)
        return 1;
    guard_ctx_t ctx = {.channel = channel, .to_llm = 1, .from_llm = 1};
    guard_result_t r;
    if (output)
        guard_check_output(g, &ctx, text, strlen(text), &r);
    else
        guard_check_input(g, &ctx, text, strlen(text), &r);
    print_result(&r);
    if (!output) {
        printf("sentiment: %+.2f\n", policy_sentiment(text, strlen(text)));
        printf("asks for a person: %s\n",
               policy_wants_human(guard_rules_policy(g), text, strlen(text)) ? "yes" : "no");
    }
    guard_result_dispose(&r);
    guard_rules_free(g);
    return 0;
}

/* ---- eval ------------------------------------------------------------------- */

#define MAX_RULES 128

typedef struct {
    char name[96];
    unsigned tp, fp, fn;
} tally_t;

typedef struct {
    tally_t rules[MAX_RULES];
    size_t n;
    unsigned sent[3][3]; /* [expected][predicted]: negative, neutral, positive */
    unsigned lines, sentiment_lines;
    int verbose;
} eval_t;

static tally_t *tally(eval_t *ev, const char *rule)
{
    for (size_t i = 0; i < ev->n; i++)
        if (strcmp(ev->rules[i].name, rule) == 0)
            return &ev->rules[i];
    if (ev->n == MAX_RULES)
        return NULL;
    tally_t *t = &ev->rules[ev->n++];
    snprintf(t->name, sizeof(t->name), "%s", rule);
    return t;
}

static void add_rule(const char *rule, void *arg)
{
    tally(arg, rule);
}

static int fired(const guard_result_t *r, const char *rule)
{
    for (size_t i = 0; i < r->n_decisions; i++)
        if (strcmp(r->decisions[i].rule, rule) == 0)
            return 1;
    return 0;
}

static int labelled(json_t *labels, const char *rule)
{
    size_t i;
    json_t *v;
    json_array_foreach(labels, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), rule) == 0)
            return 1;
    }
    return 0;
}

static int sentiment_class(const char *s)
{
    if (strcmp(s, "negative") == 0)
        return 0;
    if (strcmp(s, "neutral") == 0)
        return 1;
    return strcmp(s, "positive") == 0 ? 2 : -1;
}

static void eval_sentiment(eval_t *ev, const policy_t *p, const char *text, const char *label)
{
    int want = sentiment_class(label);
    if (want < 0)
        return;
    double s = policy_sentiment(text, strlen(text));
    /* the policy's threshold is for a mean over turns; one turn is negative below -0.2 */
    int got = s <= -0.2 ? 0 : (s >= 0.2 ? 2 : 1);
    ev->sent[want][got]++;
    ev->sentiment_lines++;
    if (ev->verbose && got != want)
        printf("sentiment %-8s got %+.2f: %s\n", label, s, text);
    (void)p;
}

static void eval_line(eval_t *ev, const guard_rules_t *g, json_t *row, unsigned lineno)
{
    const char *text = json_string_value(json_object_get(row, "text"));
    json_t *labels = json_object_get(row, "labels");
    const char *stage = json_string_value(json_object_get(row, "stage"));
    const char *sent = json_string_value(json_object_get(row, "sentiment"));
    if (text == NULL)
        return;
    if (sent != NULL) {
        eval_sentiment(ev, guard_rules_policy(g), text, sent);
        return;
    }
    int output = stage != NULL && strcmp(stage, "output") == 0;
    guard_ctx_t ctx = {.channel = "chat", .to_llm = 1, .from_llm = 1};
    guard_result_t r;
    if (output)
        guard_check_output(g, &ctx, text, strlen(text), &r);
    else
        guard_check_input(g, &ctx, text, strlen(text), &r);
    ev->lines++;
    for (size_t i = 0; i < ev->n; i++) {
        tally_t *t = &ev->rules[i];
        if ((strncmp(t->name, "output.", 7) == 0) != output)
            continue;
        int got = fired(&r, t->name), want = labelled(labels, t->name);
        t->tp += got && want;
        t->fp += got && !want;
        t->fn += !got && want;
        if (ev->verbose && got != want)
            printf("line %u %s %s: %s\n", lineno, want ? "missed" : "false", t->name, text);
    }
    guard_result_dispose(&r);
}

static double ratio(unsigned a, unsigned b)
{
    return b == 0 ? 1.0 : (double)a / b;
}

static void print_row(const char *name, unsigned tp, unsigned fp, unsigned fn)
{
    printf("%-24s %5u %5u %5u %9.3f %7.3f\n", name, tp, fp, fn, ratio(tp, tp + fp),
           ratio(tp, tp + fn));
}

static void eval_rules_report(const eval_t *ev)
{
    printf("%-24s %5s %5s %5s %9s %7s\n", "rule", "tp", "fp", "fn", "precision", "recall");
    unsigned ptp = 0, pfp = 0, pfn = 0;
    for (size_t i = 0; i < ev->n; i++) {
        const tally_t *t = &ev->rules[i];
        if (t->tp + t->fp + t->fn == 0)
            continue;
        print_row(t->name, t->tp, t->fp, t->fn);
        if (strncmp(t->name, "pii.", 4) == 0) {
            ptp += t->tp;
            pfp += t->fp;
            pfn += t->fn;
        }
    }
    print_row("pii (all input)", ptp, pfp, pfn);
    printf("%u lines\n", ev->lines);
}

static void eval_report(const eval_t *ev)
{
    if (ev->lines > 0)
        eval_rules_report(ev);
    if (ev->sentiment_lines > 0) {
        unsigned ok = ev->sent[0][0] + ev->sent[1][1] + ev->sent[2][2];
        unsigned neg_pred = ev->sent[0][0] + ev->sent[1][0] + ev->sent[2][0];
        unsigned neg_all = ev->sent[0][0] + ev->sent[0][1] + ev->sent[0][2];
        printf("sentiment: %u lines, accuracy %.3f, negative precision %.3f recall %.3f\n",
               ev->sentiment_lines, ratio(ok, ev->sentiment_lines), ratio(ev->sent[0][0], neg_pred),
               ratio(ev->sent[0][0], neg_all));
    }
}

static int cmd_eval(int argc, char **argv)
{
    const char *corpus = NULL, *rules_path = NULL;
    eval_t *ev = calloc(1, sizeof(*ev));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc)
            rules_path = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0)
            ev->verbose = 1;
        else if (corpus == NULL && argv[i][0] != '-')
            corpus = argv[i];
        else
            corpus = NULL, argc = -1;
    }
    if (corpus == NULL || ev == NULL) {
        usage(stderr);
        free(ev);
        return 2;
    }
    FILE *f = fopen(corpus, "r");
    guard_rules_t *g = f ? load_rules(rules_path) : NULL;
    if (f == NULL || g == NULL) {
        if (f == NULL)
            fprintf(stderr, "chorusctl guard: cannot open %s\n", corpus);
        else
            fclose(f);
        free(ev);
        return 1;
    }
    guard_rules_foreach(g, add_rule, ev);
    char line[65536];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        json_error_t jerr;
        json_t *row = json_loads(line, 0, &jerr);
        if (!json_is_object(row)) {
            fprintf(stderr, "%s:%u:%d: %s\n", corpus, lineno, jerr.column, jerr.text);
            json_decref(row);
            rc = 1;
            continue;
        }
        eval_line(ev, g, row, lineno);
        json_decref(row);
    }
    fclose(f);
    eval_report(ev);
    guard_rules_free(g);
    free(ev);
    return rc;
}

/* ---- bench ------------------------------------------------------------------ */

/* Bot replies of typical lengths, some with text the output rails read. */
static const char *const replies[] = {
    "Sure, I can help with that. What's your order number?",
    "Your order 10023 shipped yesterday and should arrive on Friday.",
    "I've updated your delivery address. Anything else I can do for you?",
    "Refunds are processed within 5 working days of us receiving the item. You'll get an "
    "email when it's done.",
    "Sorry, I didn't get that. You can ask about orders, returns, billing or your account.",
    "Our opening hours are 9am to 6pm, Monday to Saturday, and 10am to 4pm on Sundays.",
    "Thanks! I've booked a table for two at 7:30pm tomorrow. You'll get a confirmation by "
    "text shortly.",
    "To reset your password, open Settings, choose Security, then Reset password. We'll send "
    "a link to the email address on your account; it expires after 30 minutes.",
    "Your current balance is $42.10 and your next bill is due on the 3rd.",
    "I can't promise that, but I've passed your request to a colleague.",
    "Here is a summary of your plan: unlimited calls and texts, 20 GB of data, and roaming in "
    "Europe at no extra cost. You can change plans once a month from the app or by replying "
    "CHANGE to this message.",
    "Okay.",
};
#define N_REPLIES (sizeof(replies) / sizeof(replies[0]))

typedef struct {
    char **items;
    size_t len, cap;
} strs_t;

static void strs_push(strs_t *s, const char *text)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->items = realloc(s->items, s->cap * sizeof(*s->items));
        if (s->items == NULL)
            abort();
    }
    s->items[s->len++] = strdup(text);
}

/* Adds the texts of the CLINC150 test and out-of-scope test splits. */
static int load_clinc(strs_t *s, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "chorusctl guard: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    const char *splits[] = {"test", "oos_test"};
    for (size_t k = 0; k < 2; k++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(root, splits[k]), i, v)
        {
            const char *t = json_string_value(json_array_get(v, 0));
            if (t != NULL)
                strs_push(s, t);
        }
    }
    json_decref(root);
    return 0;
}

static int load_corpus_inputs(strs_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "chorusctl guard: cannot open %s\n", path);
        return -1;
    }
    char line[65536];
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *row = json_loads(line, 0, NULL);
        const char *t = json_string_value(json_object_get(row, "text"));
        const char *stage = json_string_value(json_object_get(row, "stage"));
        if (t != NULL && (stage == NULL || strcmp(stage, "input") == 0))
            strs_push(s, t);
        json_decref(row);
    }
    fclose(f);
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define N_CONVS 1000

/* One turn: the input rails on an utterance bound for an LLM, the output
 * rails on an LLM reply. Returns the nanoseconds it took. */
static uint64_t one_turn(const guard_rules_t *g, const char *in, const char *out, size_t i,
                         guard_bucket_t *convs, guard_bucket_t *senders, uint64_t *t_in)
{
    static const char *const channels[] = {"chat", "web", "sms", "voice"};
    guard_ctx_t ctx = {.channel = channels[i % 4],
                       .to_llm = 1,
                       .from_llm = 1,
                       .now_us = (int64_t)i * 50000,
                       .conversation_bucket = &convs[i % N_CONVS],
                       .sender_bucket = &senders[i % N_CONVS]};
    guard_result_t r;
    uint64_t t0 = now_ns();
    guard_check_input(g, &ctx, in, strlen(in), &r);
    guard_result_dispose(&r);
    uint64_t t1 = now_ns();
    guard_check_output(g, &ctx, out, strlen(out), &r);
    guard_result_dispose(&r);
    uint64_t t2 = now_ns();
    *t_in = t1 - t0;
    return t2 - t0;
}

static void report(const char *what, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)ns[i];
    printf("%-14s median %6.2f us   p99 %6.2f us   mean %6.2f us\n", what, ns[n / 2] / 1e3,
           ns[n * 99 / 100] / 1e3, sum / n / 1e3);
}

static int run_bench(const guard_rules_t *g, const strs_t *utt, size_t turns)
{
    guard_bucket_t *convs = calloc(N_CONVS, sizeof(*convs));
    guard_bucket_t *senders = calloc(N_CONVS, sizeof(*senders));
    uint64_t *total = calloc(turns, sizeof(*total)), *in = calloc(turns, sizeof(*in));
    if (convs == NULL || senders == NULL || total == NULL || in == NULL)
        abort();
    for (size_t i = 0; i < 2000; i++) /* warm caches and JIT code */
        one_turn(g, utt->items[i % utt->len], replies[i % N_REPLIES], i, convs, senders, &in[0]);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    for (size_t i = 0; i < turns; i++)
        total[i] = one_turn(g, utt->items[i % utt->len], replies[i % N_REPLIES], i + 2000, convs,
                            senders, &in[i]);
    getrusage(RUSAGE_SELF, &ru1);
    /* CPU time is not inflated by preemption on a busy machine, as wall time is */
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                    (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                    (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    printf("guard bench: %zu turns over %zu utterances and %zu replies\n", turns, utt->len,
           N_REPLIES);
    uint64_t *out = calloc(turns, sizeof(*out));
    if (out == NULL)
        abort();
    for (size_t i = 0; i < turns; i++)
        out[i] = total[i] - in[i];
    report("input rails", in, turns);
    report("output rails", out, turns);
    free(out);
    report("input+output", total, turns);
    printf("%-14s mean %6.2f us of CPU per turn (timing included)\n", "cpu", cpu_us / turns);
    free(convs);
    free(senders);
    free(total);
    free(in);
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    const char *rules_path = NULL, *clinc = NULL, *corpus = NULL;
    size_t turns = 100000;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--rules") == 0)
            rules_path = argv[++i];
        else if (strcmp(argv[i], "--utterances") == 0)
            clinc = argv[++i];
        else if (strcmp(argv[i], "--corpus") == 0)
            corpus = argv[++i];
        else if (strcmp(argv[i], "--turns") == 0)
            turns = strtoul(argv[++i], NULL, 10);
        else {
            usage(stderr);
            return 2;
        }
    }
    strs_t utt = {0};
    if ((clinc && load_clinc(&utt, clinc) != 0) || (corpus && load_corpus_inputs(&utt, corpus)))
        return 1;
    for (size_t i = 0; utt.len == 0 && i < N_REPLIES; i++)
        strs_push(&utt, replies[i]);
    guard_rules_t *g = load_rules(rules_path);
    int rc = g && turns > 0 ? run_bench(g, &utt, turns) : 1;
    guard_rules_free(g);
    for (size_t i = 0; i < utt.len; i++)
        free(utt.items[i]);
    free(utt.items);
    return rc;
}

int ctl_guard(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "try") == 0)
        return cmd_try(argc - 2, argv + 2);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "eval") == 0)
        return cmd_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "chorusctl guard: unknown subcommand \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
