/* Flowsets: compiling every source into one immutable, reference-counted
 * set (passes: parse -> declare flows, slots, variables -> settings ->
 * nodes -> cross-flow references -> graph checks -> intent router), plus
 * lookups and the public accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

static const char *global_names[GLOBAL__COUNT] = {"cancel", "start_over", "help", "agent", "oos"};
static const char *global_examples[GLOBAL__COUNT][8] = {
    {"cancel", "stop", "never mind", "forget it", "cancel that", "quit", "stop this", NULL},
    {"start over", "restart", "let's start again", "begin again", "reset",
     "start from the "
     "beginning",
     NULL},
    {"help", "what can you do", "i need help", "how does this work", "what are my options",
     "what can i ask you", NULL},
    {"talk to a human", "agent", "speak to an agent", "representative", "real person please",
     "let me talk to someone", "i want to speak to a person", NULL},
    {NULL}, /* oos: none built in; settings.intents.oos and training files add them */
};

int brain__slot_find(const brain_flowset_t *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_slots; i++)
        if (strcmp(fs->slots[i].name, name) == 0)
            return (int)i;
    return -1;
}

int brain__var_find(const brain_flowset_t *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_vars; i++)
        if (strcmp(fs->vars[i].name, name) == 0)
            return (int)i;
    return -1;
}

int brain__flow_find(const brain_flowset_t *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_flows; i++)
        if (strcmp(fs->flows[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* A binary search of the flow's name index: a flow of tens of thousands of
 * nodes resolves each reference in a few comparisons, not one per node. */
int brain__node_find(const flow_t *f, const char *name)
{
    size_t lo = 0, hi = f->by_name != NULL ? f->n_nodes : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->nodes[f->by_name[mid]].name, name);
        if (c == 0)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static _Thread_local const flow_t *sorting; /* qsort's context: the flow being indexed */

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp(sorting->nodes[*(const uint16_t *)a].name,
                  sorting->nodes[*(const uint16_t *)b].name);
}

void brain__node_index(flow_t *f)
{
    free(f->by_name);
    f->by_name = core_xmalloc((f->n_nodes + 1) * sizeof(uint16_t));
    for (size_t i = 0; i < f->n_nodes; i++)
        f->by_name[i] = (uint16_t)i;
    sorting = f;
    qsort(f->by_name, f->n_nodes, sizeof(uint16_t), by_name_cmp);
    sorting = NULL;
}

int brain__intent_find(const brain_flowset_t *fs, const char *name)
{
    for (size_t i = 0; i < fs->n_intents; i++)
        if (strcmp(fs->intents[i].name, name) == 0)
            return (int)i;
    return -1;
}

void brain__normalise(const char *s, size_t len, char *out, size_t out_size)
{
    size_t o = 0;
    int space = 1;
    for (size_t i = 0; i < len && o + 1 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        int word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 || c == '\'';
        if (!word) {
            if (!space && o + 1 < out_size)
                out[o++] = ' ';
            space = 1;
            continue;
        }
        out[o++] = (char)c;
        space = 0;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* ---- pass helpers --------------------------------------------------------------------- */

typedef struct {
    brain_flowset_t *fs;
    json_t **roots;
    core_jsonpos_t **pos;
    loader_t *flow_ld; /* by flow index */
    int *flow_src;     /* source index of flow i */
    const brain_source_t *src;
    size_t n;
    core_diags_t *diags;
    int errors;
} compile_t;

static void add_intent(brain_flowset_t *fs, const char *name, const char *const *ex, int global)
{
    size_t n = 0;
    while (ex[n] != NULL)
        n++;
    char **copy = core_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        copy[i] = core_xstrdup(ex[i]);
    fs->intents = core_xrealloc(fs->intents, (fs->n_intents + 1) * sizeof(*fs->intents));
    fs->intents[fs->n_intents++] = (intent_def_t){core_xstrdup(name), copy, n, BRAIN_NONE, global};
}

static void declare_flow(compile_t *c, size_t i, loader_t *ld)
{
    brain_flowset_t *fs = c->fs;
    json_t *root = c->roots[i];
    flow__check_keys(
        ld, root, "",
        "name|description|owner|status|intents|slots|vars|help|start|nodes|guardrails|$schema");
    const char *name = flow__str(ld, root, "name", "", 1);
    if (name == NULL)
        return;
    if (name[0] == '\0' || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name)) {
        flow__err(ld, "name", "flow names are lower-case letters, digits, '_' and '-'");
        return;
    }
    int dup = brain__flow_find(fs, name);
    if (dup >= 0) {
        flow__err(ld, "name", "duplicate flow name \"%s\" (also in %s)", name, fs->flows[dup].file);
        return;
    }
    flow_t *f = &fs->flows[fs->n_flows];
    memset(f, 0, sizeof(*f));
    f->name = core_xstrdup(name);
    f->file = core_xstrdup(c->src[i].name);
    f->start = BRAIN_NONE;
    c->flow_src[fs->n_flows] = (int)i;
    c->flow_ld[fs->n_flows] = *ld;
    c->flow_ld[fs->n_flows].flow = f;
    fs->n_flows++;
}

static void compile_flow(compile_t *c, size_t fi)
{
    loader_t *ld = &c->flow_ld[fi];
    json_t *root = c->roots[c->flow_src[fi]];
    flow__meta(ld, root);
    flow__intents(ld, json_object_get(root, "intents"), "intents", (uint16_t)fi);
    flow__nodes(ld, json_object_get(root, "nodes"), "nodes");
    flow_t *f = ld->flow;
    if (json_object_get(root, "start") != NULL)
        f->start = flow__node_ref(ld, root, "start", "", 0);
    else if (f->n_nodes > 0)
        f->start = 0;
}

static void resolve_gotos(compile_t *c)
{
    brain_flowset_t *fs = c->fs;
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        for (size_t ni = 0; ni < fs->flows[fi].n_nodes; ni++) {
            node_t *n = &fs->flows[fi].nodes[ni];
            if (n->target_flow == BRAIN_NONE || n->target_name == NULL)
                continue;
            int t = brain__node_find(&fs->flows[n->target_flow], n->target_name);
            char p[512];
            if (t < 0)
                flow__err(&c->flow_ld[fi], flow__path(p, sizeof(p), n->path, "node"),
                          "unknown node \"%s\" in flow \"%s\"", n->target_name,
                          fs->flows[n->target_flow].name);
            else
                n->target_node = (uint16_t)t;
        }
}

static void settings_pass(compile_t *c, loader_t *settings_ld, json_t *settings)
{
    brain_flowset_t *fs = c->fs;
    settings_t *s = &fs->settings;
    loader_t def = {.fs = fs, .diags = c->diags, .file = "(built-in settings)"};
    loader_t *ld = settings ? settings_ld : &def;
    const char *names[3] = {NULL, NULL, NULL};
    static const char *keys[3] = {"settings.welcome_flow", "settings.fallback_flow",
                                  "settings.agent_flow"};
    uint16_t *fields[3] = {&s->welcome_flow, &s->fallback_flow, &s->agent_flow};
    if (settings != NULL) {
        flow__settings(ld, settings, "settings", names);
        flow__intents(ld, json_object_get(settings, "intents"), "settings.intents", BRAIN_NONE);
    }
    flow__settings_messages(ld, settings ? json_object_get(settings, "messages") : NULL,
                            "settings.messages");
    for (int i = 0; i < 3; i++) {
        int fi = names[i] ? brain__flow_find(fs, names[i]) : -1;
        if (names[i] != NULL && fi < 0)
            flow__err(ld, keys[i], "unknown flow \"%s\"", names[i]);
        *fields[i] = fi < 0 ? BRAIN_NONE : (uint16_t)fi;
    }
    c->errors += ld == &def ? def.n_errors : 0;
}

static int parse_sources(compile_t *c)
{
    int bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_error_t jerr;
        c->roots[i] = json_loadb(c->src[i].text, c->src[i].len, JSON_REJECT_DUPLICATES, &jerr);
        if (c->roots[i] == NULL) {
            core_diags_add(c->diags, c->src[i].name, jerr.line, jerr.column, "", "%s", jerr.text);
            bad++;
            continue;
        }
        c->pos[i] = core_jsonpos_new(c->src[i].text, c->src[i].len);
        if (!json_is_object(c->roots[i])) {
            core_diags_add(c->diags, c->src[i].name, 1, 1, "", "a flow file is a JSON object");
            bad++;
            json_decref(c->roots[i]);
            c->roots[i] = NULL;
        }
    }
    return bad;
}

/* Training files (labelled utterances, `chorusctl label train`) add
 * examples to the intents the flows declared. */
static void training_pass(compile_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        json_t *t = c->roots[i] ? json_object_get(c->roots[i], "training") : NULL;
        if (t == NULL)
            continue;
        loader_t ld = {.fs = c->fs, .diags = c->diags, .file = c->src[i].name, .pos = c->pos[i]};
        flow__check_keys(&ld, c->roots[i], "", "training|description|$schema");
        flow__training(&ld, t, "training");
        c->errors += ld.n_errors;
    }
}

/* Declares flows, slots and variables of every file; returns the settings
 * file's index or -1. */
static int declare_pass(compile_t *c, const brain_compile_opts_t *opts, loader_t *settings_ld)
{
    int settings_src = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (c->roots[i] == NULL)
            continue;
        loader_t ld = {.fs = c->fs, .diags = c->diags, .file = c->src[i].name, .pos = c->pos[i]};
        if (json_object_get(c->roots[i], "training") != NULL)
            continue; /* a training file: training_pass() */
        json_t *set = json_object_get(c->roots[i], "settings");
        if (set != NULL) {
            flow__check_keys(&ld, c->roots[i], "", "settings|$schema");
            if (settings_src >= 0)
                flow__err(&ld, "settings", "settings are already given in %s",
                          c->src[settings_src].name);
            else if (!json_is_object(set))
                flow__err(&ld, "settings", "must be an object");
            else
                settings_src = (int)i;
            flow__load_vars(&ld, json_object_get(set, "vars"), "settings.vars", opts->envp);
            *settings_ld = ld;
            c->errors += ld.n_errors;
            continue;
        }
        flow__load_slots(&ld, json_object_get(c->roots[i], "slots"), "slots");
        flow__load_vars(&ld, json_object_get(c->roots[i], "vars"), "vars", opts->envp);
        declare_flow(c, i, &ld);
        c->errors += ld.n_errors;
    }
    return settings_src;
}

static int cmp_exact(const void *a, const void *b, void *ud)
{
    const brain_flowset_t *fs = ud;
    return strcmp(fs->exact[*(const uint32_t *)a], fs->exact[*(const uint32_t *)b]);
}

/* Sorts the exact examples (keeping each one's intent) for bsearch. */
static void sort_exact(brain_flowset_t *fs)
{
    uint32_t *order = core_xcalloc(fs->n_exact + 1, sizeof(uint32_t));
    for (size_t i = 0; i < fs->n_exact; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, fs->n_exact, sizeof(uint32_t), cmp_exact, fs);
    char **ex = core_xcalloc(fs->n_exact + 1, sizeof(char *));
    uint16_t *in = core_xcalloc(fs->n_exact + 1, sizeof(uint16_t));
    for (size_t i = 0; i < fs->n_exact; i++) {
        ex[i] = fs->exact[order[i]];
        in[i] = fs->exact_intent[order[i]];
    }
    free(fs->exact);
    free(fs->exact_intent);
    fs->exact = ex;
    fs->exact_intent = in;
    free(order);
}

static int cmp_intent(const void *a, const void *b, void *ud)
{
    const brain_flowset_t *fs = ud;
    return strcmp(fs->intents[*(const uint16_t *)a].name, fs->intents[*(const uint16_t *)b].name);
}

int brain__intent_lookup(const brain_flowset_t *fs, const char *name)
{
    size_t lo = 0, hi = fs->intent_order ? fs->n_intents : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(fs->intents[fs->intent_order[mid]].name, name);
        if (c == 0)
            return fs->intent_order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void build_exact(brain_flowset_t *fs)
{
    fs->intent_order = core_xcalloc(fs->n_intents + 1, sizeof(uint16_t));
    for (size_t i = 0; i < fs->n_intents; i++)
        fs->intent_order[i] = (uint16_t)i;
    qsort_r(fs->intent_order, fs->n_intents, sizeof(uint16_t), cmp_intent, fs);
    size_t total = 0;
    for (size_t i = 0; i < fs->n_intents; i++)
        total += fs->intents[i].n_examples;
    fs->exact = core_xcalloc(total + 1, sizeof(char *));
    fs->exact_intent = core_xcalloc(total + 1, sizeof(uint16_t));
    for (size_t i = 0; i < fs->n_intents; i++)
        for (size_t j = 0; j < fs->intents[i].n_examples; j++) {
            char norm[512];
            const char *e = fs->intents[i].examples[j];
            brain__normalise(e, strlen(e), norm, sizeof(norm));
            fs->exact[fs->n_exact] = core_xstrdup(norm);
            fs->exact_intent[fs->n_exact++] = (uint16_t)i;
        }
    sort_exact(fs);
}

/* A flowset with enough examples and no confidence_threshold of its own
 * has its router calibrated on its own examples at load. Enough: out-of-
 * scope ones so that the threshold does not follow a handful of utterances,
 * and in-scope ones so that the half-point budget (nlu_tune()) lets at
 * least five of them fall below it; with fewer, no threshold above the
 * least confident correct example is allowed, and the tuned threshold
 * drops to 0, which would undo the settings' default. */
#define TUNE_MIN_OOS 20
#define TUNE_MIN_IN_SCOPE 1000
#define TUNE_FOLDS 5

/* Fits the temperature and the threshold on out-of-fold scores of the
 * training examples (nlu_tune(), docs/nlu.md); the model is left as trained
 * (the settings' threshold) when the examples cannot tell. */
static void tune(brain_flowset_t *fs, const nlu_example_t *ex, size_t n, const nlu_train_opts_t *to)
{
    nlu_tune_opts_t o;
    nlu_tune_opts_init(&o);
    o.oos_label = to->oos_label;
    o.folds = TUNE_FOLDS;
    o.train = ex;
    o.n_train = n;
    o.train_opts = to;
    core_err_t err = {0};
    (void)nlu_tune(fs->nlu, NULL, 0, &o, NULL, &err);
}

/* A tuned model's cache key is the training hash with the tuning rule
 * mixed in, so a model tuned by another rule is never read back as this
 * one's. */
static void mark_tuned(char hash[65])
{
    nlu_tune_opts_t o;
    nlu_tune_opts_init(&o);
    char rule[192];
    int n = snprintf(rule, sizeof(rule), "%s tuned folds=%d min_oos=%d min_in_scope=%d budget=%g",
                     hash, TUNE_FOLDS, TUNE_MIN_OOS, TUNE_MIN_IN_SCOPE, o.max_drop);
    core_sha256_hex(rule, (size_t)n, hash);
}

static int train(brain_flowset_t *fs, const brain_compile_opts_t *opts, core_diags_t *diags)
{
    size_t total = 0, k = 0, n_oos = 0;
    for (size_t i = 0; i < fs->n_intents; i++)
        total += fs->intents[i].n_examples;
    nlu_example_t *ex = core_xcalloc(total + 1, sizeof(*ex));
    for (size_t i = 0; i < fs->n_intents; i++) {
        for (size_t j = 0; j < fs->intents[i].n_examples; j++)
            ex[k++] = (nlu_example_t){fs->intents[i].examples[j], fs->intents[i].name};
        if (brain__intent_is_oos(&fs->intents[i]))
            n_oos = fs->intents[i].n_examples;
    }
    nlu_train_opts_t to;
    nlu_train_opts_init(&to);
    to.oos_label = global_names[GLOBAL_OOS];
    int tuned =
        n_oos >= TUNE_MIN_OOS && k - n_oos >= TUNE_MIN_IN_SCOPE && !fs->settings.threshold_given;
    to.oos_threshold = fs->settings.threshold;
    nlu_training_hash(ex, k, &to, fs->nlu_hash);
    if (tuned)
        mark_tuned(fs->nlu_hash);
    int rc = 0;
    core_err_t err = {0};
    if (opts->nlu_cache != NULL && opts->nlu_cache_hash != NULL &&
        strcmp(opts->nlu_cache_hash, fs->nlu_hash) == 0 &&
        nlu_model_load(opts->nlu_cache, opts->nlu_cache_len, &fs->nlu, &err) == 0) {
        fs->nlu_cached = 1;
    } else if (!opts->validate_only) {
        rc = nlu_train(ex, k, &to, &fs->nlu, &err);
        if (rc != 0)
            core_diags_add(diags, "(intent router)", 0, 0, "intents", "training failed: %s",
                           err.msg);
        else if (tuned)
            tune(fs, ex, k, &to);
    }
    /* the router's out-of-scope threshold and the flows' are one number */
    if (tuned && fs->nlu != NULL)
        fs->settings.threshold = nlu_model_threshold(fs->nlu);
    free(ex);
    return rc;
}

/* Runs the output rails once over each constant variant of msg, as said in
 * flow (per-flow rule overrides), and marks the ones that pass. */
static void precheck_msg(const brain_flowset_t *fs, const char *flow, msg_t *m)
{
    for (int ch = 0; ch < BRAIN_CH__COUNT; ch++) {
        const brain_tpl_t *t = m->variant[ch] ? m->variant[ch] : m->variant[0];
        if (t == NULL || !t->constant)
            continue;
        guard_ctx_t gc = {.channel = brain_channel_name((brain_channel_t)ch),
                          .flow = flow,
                          .allow_pii = m->allow_pii};
        guard_result_t r;
        memset(&r, 0, sizeof(r));
        if (guard_check_output(fs->guard, &gc, t->parts[0].text, t->parts[0].len, &r) == 0 &&
            r.action == GUARD_ALLOW)
            m->safe |= (uint8_t)(1u << ch);
        guard_result_dispose(&r);
    }
}

static void precheck(brain_flowset_t *fs)
{
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        flow_t *f = &fs->flows[fi];
        if (f->has_help)
            precheck_msg(fs, f->name, &f->help);
        for (size_t ni = 0; ni < f->n_nodes; ni++) {
            node_t *n = &f->nodes[ni];
            for (size_t i = 0; i < n->n_msgs; i++)
                precheck_msg(fs, f->name, &n->msgs[i]);
            if (n->kind == NODE_ASK) {
                precheck_msg(fs, f->name, &n->prompt);
                if (n->has_reprompt)
                    precheck_msg(fs, f->name, &n->reprompt);
            }
        }
    }
}

static int finish(compile_t *c, const brain_compile_opts_t *opts)
{
    brain_flowset_t *fs = c->fs;
    build_exact(fs);
    if (train(fs, opts, c->diags) != 0)
        return CORE_ERR_INVALID;
    if (opts->no_guard)
        return 0;
    if (opts->guard_json != NULL) {
        const char *gf = opts->guard_file ? opts->guard_file : "guardrails.json";
        if (guard_rules_load(opts->guard_json, opts->guard_len, gf, &fs->guard, c->diags) != 0)
            return CORE_ERR_INVALID;
    } else {
        fs->guard = guard_rules_default();
    }
    if (flow__guard_overrides(fs, c->roots, c->pos, c->flow_src, c->diags) != 0)
        return CORE_ERR_INVALID;
    if (fs->guard != NULL)
        precheck(fs);
    return 0;
}

void brain_compile_opts_init(brain_compile_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = 1;
}

int brain_flowset_compile(const brain_source_t *sources, size_t n, const brain_compile_opts_t *opts,
                          brain_flowset_t **out, core_diags_t *diags)
{
    brain_compile_opts_t defaults;
    if (opts == NULL) {
        brain_compile_opts_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    size_t before = diags->len;
    brain_flowset_t *fs = core_xcalloc(1, sizeof(*fs));
    atomic_init(&fs->refs, 1);
    fs->version = opts->version ? opts->version : 1;
    fs->settings.queue = core_xstrdup("general");
    fs->settings.threshold = 0.45;
    fs->settings.interrupt = 0.85;
    fs->settings.max_fallbacks = 3;
    fs->settings.idle_timeout_us = 900LL * 1000000;
    fs->flows = core_xcalloc(n + 1, sizeof(flow_t));
    compile_t c = {.fs = fs, .src = sources, .n = n, .diags = diags};
    c.roots = core_xcalloc(n + 1, sizeof(json_t *));
    c.pos = core_xcalloc(n + 1, sizeof(core_jsonpos_t *));
    c.flow_ld = core_xcalloc(n + 1, sizeof(loader_t));
    c.flow_src = core_xcalloc(n + 1, sizeof(int));
    for (int g = 0; g < GLOBAL__COUNT; g++)
        add_intent(fs, global_names[g], global_examples[g], g + 1);
    parse_sources(&c);
    loader_t settings_ld = {0};
    int settings_src = declare_pass(&c, opts, &settings_ld);
    settings_pass(&c, &settings_ld,
                  settings_src >= 0 ? json_object_get(c.roots[settings_src], "settings") : NULL);
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        compile_flow(&c, fi);
    training_pass(&c);
    resolve_gotos(&c);
    if (fs->n_flows == 0 && diags->len == before)
        core_diags_add(diags, n ? sources[0].name : "(flows)", 0, 0, "", "no flows found");
    /* graph checks run even after other errors (unresolved references are
     * BRAIN_NONE / -1 and skipped), so one run reports every problem */
    flow__check_graph(fs, c.flow_ld);
    flow__check_slots(fs, c.flow_ld);
    int rc = diags->len == before ? finish(&c, opts) : CORE_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        json_decref(c.roots[i]);
        core_jsonpos_free(c.pos[i]);
    }
    free(c.roots);
    free(c.pos);
    free(c.flow_ld);
    free(c.flow_src);
    if (rc != 0 || diags->len != before) {
        brain__flowset_free(fs);
        return CORE_ERR_INVALID;
    }
    *out = fs;
    return 0;
}
