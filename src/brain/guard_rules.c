/* Guardrail rules: loading, validation, per-flow overrides, defaults.
 *
 * A rules document is compiled in one pass that checks every key (unknown
 * keys, wrong types, out-of-range numbers and bad regular expressions are
 * all reported with their position) and builds the matchers. An absent
 * section switches its rail off; an absent key inside a section takes the
 * documented default. Overrides are merged into the source document and the
 * result compiled again, so a flow's rules are as fast as the global ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "guard"
#include "brain/guard_int.h"
#include "chorus/policy.h"

static const char *const pii_names[GD_PII_N] = {"card", "ssn", "iban", "email", "phone"};
static const char *const pii_labels[GD_PII_N] = {"CARD", "SSN", "IBAN", "EMAIL", "PHONE"};

static const char *const rule_keys[] = {"action", "reply", "reason", "label", "enabled", NULL};

/* Fills a rule from obj (which may be NULL: rule disabled). */
static void compile_rule(gd_loader_t *ld, json_t *obj, const char *path, const char *name,
                         guard_action_t def_action, const char *def_label, gd_rule_t *r)
{
    memset(r, 0, sizeof(*r));
    r->name = core_xstrdup(name);
    r->action = def_action;
    r->label = core_xstrdup(def_label ? def_label : "REDACTED");
    if (obj == NULL)
        return;
    r->enabled = gd_get_bool(ld, obj, path, "enabled", 1);
    const char *act = gd_get_str(ld, obj, path, "action", NULL);
    if (act != NULL && guard_action_parse(act, &r->action) != 0 &&
        !(strcmp(act, "truncate") == 0 && strcmp(name, "output.length") == 0)) {
        char *cp = core_jsonpath_key(path, "action");
        gd_problem(ld, cp, "must be one of allow|redact|block|escalate (got \"%.64s\")", act);
        free(cp);
    }
    const char *reply = gd_get_str(ld, obj, path, "reply", NULL);
    const char *reason = gd_get_str(ld, obj, path, "reason", NULL);
    const char *label = gd_get_str(ld, obj, path, "label", NULL);
    r->reply = core_xstrdup_opt(reply);
    r->reason = core_xstrdup_opt(reason);
    if (label != NULL) {
        free(r->label);
        r->label = core_xstrdup(label);
    }
}

static void rule_dispose(gd_rule_t *r)
{
    free(r->name);
    free(r->reply);
    free(r->reason);
    free(r->label);
}

static json_t *section(gd_loader_t *ld, json_t *obj, const char *path, const char *key,
                       char **cpath)
{
    *cpath = core_jsonpath_key(path, key);
    return gd_get_obj(ld, obj, path, key);
}

static void compile_pii(gd_loader_t *ld, json_t *pii, const char *path, const char *prefix,
                        gd_rule_t *rules)
{
    static const char *const keys[] = {"card", "ssn", "iban", "email", "phone", NULL};
    if (pii != NULL)
        gd_check_keys(ld, pii, path, keys);
    for (int k = 0; k < GD_PII_N; k++) {
        char *cp;
        json_t *o = section(ld, pii, path, pii_names[k], &cp);
        char name[32];
        snprintf(name, sizeof(name), "%spii.%s", prefix, pii_names[k]);
        if (o != NULL)
            gd_check_keys(ld, o, cp, rule_keys);
        compile_rule(ld, o, cp, name, GUARD_REDACT, pii_labels[k], &rules[k]);
        free(cp);
    }
}

static void compile_custom(gd_loader_t *ld, guard_rules_t *g, json_t *arr, const char *path)
{
    static const char *const keys[] = {"name",  "pattern", "action",   "reply", "reason",
                                       "label", "enabled", "caseless", NULL};
    g->custom = core_xcalloc(json_array_size(arr) + 1, sizeof(*g->custom));
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char *ip = core_jsonpath_index(path, i);
        if (!json_is_object(o)) {
            gd_problem(ld, ip, "must be an object");
            free(ip);
            continue;
        }
        gd_check_keys(ld, o, ip, keys);
        const char *name = gd_get_str(ld, o, ip, "name", NULL);
        const char *pat = gd_get_str(ld, o, ip, "pattern", NULL);
        if (name == NULL || pat == NULL) {
            gd_problem(ld, ip, "needs \"name\" and \"pattern\"");
            free(ip);
            continue;
        }
        char rname[160];
        snprintf(rname, sizeof(rname), "custom.%.140s", name);
        gd_custom_t *c = &g->custom[g->n_custom++];
        compile_rule(ld, o, ip, rname, GUARD_REDACT, "REDACTED", &c->rule);
        char *pp = core_jsonpath_key(ip, "pattern");
        c->re = gd_compile_re(ld, pp, pat, gd_get_bool(ld, o, ip, "caseless", 0));
        if (c->re == NULL)
            c->rule.enabled = 0;
        free(pp);
        free(ip);
    }
}

static void compile_signals(gd_loader_t *ld, guard_rules_t *g, json_t *arr, const char *path)
{
    static const char *const keys[] = {"name",     "pattern",       "weight", "raw",
                                       "triggers", "trigger_chars", NULL};
    g->signals = core_xcalloc(json_array_size(arr) + 1, sizeof(*g->signals));
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char *ip = core_jsonpath_index(path, i);
        const char *name = json_is_object(o) ? gd_get_str(ld, o, ip, "name", NULL) : NULL;
        const char *pat = json_is_object(o) ? gd_get_str(ld, o, ip, "pattern", NULL) : NULL;
        if (name == NULL || pat == NULL) {
            gd_problem(ld, ip, "must be an object with \"name\" and \"pattern\"");
            free(ip);
            continue;
        }
        gd_check_keys(ld, o, ip, keys);
        gd_signal_t *s = &g->signals[g->n_signals];
        s->weight = gd_get_num(ld, o, ip, "weight", 0.5, 0, 1);
        s->raw = gd_get_bool(ld, o, ip, "raw", 0);
        char *pp = core_jsonpath_key(ip, "pattern");
        s->re = gd_compile_re(ld, pp, pat, s->raw);
        free(pp);
        gd_terms_init(&s->triggers);
        gd_get_terms(ld, o, ip, "triggers", &s->triggers);
        const char *tc = gd_get_str(ld, o, ip, "trigger_chars", NULL);
        s->trigger_chars = tc && tc[0] ? core_xstrdup(tc) : NULL;
        s->name = core_xstrdup(name);
        g->n_signals++;
        free(ip);
    }
}

static void compile_injection(gd_loader_t *ld, guard_rules_t *g, json_t *inj, const char *path)
{
    static const char *const keys[] = {
        "action",         "reply", "reason", "enabled", "threshold", "signals", "encoded_min_chars",
        "encoded_weight", NULL};
    if (inj != NULL)
        gd_check_keys(ld, inj, path, keys);
    compile_rule(ld, inj, path, "injection", GUARD_BLOCK, NULL, &g->injection);
    g->injection_threshold = gd_get_num(ld, inj, path, "threshold", 0.5, 0.01, 1);
    g->encoded_min = (size_t)gd_get_num(ld, inj, path, "encoded_min_chars", 24, 8, 4096);
    g->encoded_weight = gd_get_num(ld, inj, path, "encoded_weight", 0.5, 0, 1);
    char *sp = core_jsonpath_key(path, "signals");
    json_t *arr = gd_get_arr(ld, inj, path, "signals");
    compile_signals(ld, g, arr, sp);
    free(sp);
}

static void compile_topics(gd_loader_t *ld, guard_rules_t *g, json_t *arr, const char *path)
{
    static const char *const keys[] = {"name",   "terms",   "action", "reply",
                                       "reason", "enabled", NULL};
    g->topics = core_xcalloc(json_array_size(arr) + 1, sizeof(*g->topics));
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char *ip = core_jsonpath_index(path, i);
        const char *name = json_is_object(o) ? gd_get_str(ld, o, ip, "name", NULL) : NULL;
        if (name == NULL) {
            gd_problem(ld, ip, "must be an object with a \"name\"");
            free(ip);
            continue;
        }
        gd_check_keys(ld, o, ip, keys);
        gd_topic_t *t = &g->topics[g->n_topics++];
        char rname[160];
        snprintf(rname, sizeof(rname), "topic.%.140s", name);
        compile_rule(ld, o, ip, rname, GUARD_BLOCK, NULL, &t->rule);
        gd_terms_init(&t->terms);
        gd_get_terms(ld, o, ip, "terms", &t->terms);
        free(ip);
    }
}

static void compile_terms_rule(gd_loader_t *ld, json_t *obj, const char *path, const char *name,
                               gd_rule_t *r, gd_terms_t *tl)
{
    static const char *const keys[] = {"terms", "action", "reply", "reason", "enabled", NULL};
    if (obj != NULL)
        gd_check_keys(ld, obj, path, keys);
    compile_rule(ld, obj, path, name, GUARD_BLOCK, NULL, r);
    gd_terms_init(tl);
    gd_get_terms(ld, obj, path, "terms", tl);
}

static void compile_rate(gd_loader_t *ld, json_t *rate, const char *path, const char *key,
                         gd_rule_t *r, double *per_s, double *burst)
{
    static const char *const keys[] = {"per_minute", "burst",   "action", "reply",
                                       "reason",     "enabled", NULL};
    char *cp;
    json_t *o = section(ld, rate, path, key, &cp);
    if (o != NULL)
        gd_check_keys(ld, o, cp, keys);
    char name[32];
    snprintf(name, sizeof(name), "rate.%s", key);
    compile_rule(ld, o, cp, name, GUARD_BLOCK, NULL, r);
    *per_s = gd_get_num(ld, o, cp, "per_minute", 20, 0.01, 1e6) / 60.0;
    *burst = gd_get_num(ld, o, cp, "burst", 8, 1, 1e6);
    free(cp);
}

static void compile_input(gd_loader_t *ld, guard_rules_t *g, json_t *in, const char *path)
{
    static const char *const keys[] = {"pii",   "custom", "injection", "topics",
                                       "abuse", "length", "rate",      NULL};
    static const char *const len_keys[] = {"max_bytes", "action",  "reply",
                                           "reason",    "enabled", NULL};
    static const char *const rate_keys[] = {"conversation", "sender", NULL};
    if (in != NULL)
        gd_check_keys(ld, in, path, keys);
    char *cp;
    json_t *o = section(ld, in, path, "pii", &cp);
    compile_pii(ld, o, cp, "", g->pii_in);
    free(cp);
    json_t *arr = gd_get_arr(ld, in, path, "custom");
    cp = core_jsonpath_key(path, "custom");
    compile_custom(ld, g, arr, cp);
    free(cp);
    o = section(ld, in, path, "injection", &cp);
    compile_injection(ld, g, o, cp);
    free(cp);
    arr = gd_get_arr(ld, in, path, "topics");
    cp = core_jsonpath_key(path, "topics");
    compile_topics(ld, g, arr, cp);
    free(cp);
    o = section(ld, in, path, "abuse", &cp);
    compile_terms_rule(ld, o, cp, "abuse", &g->abuse, &g->abuse_terms);
    free(cp);
    o = section(ld, in, path, "length", &cp);
    if (o != NULL)
        gd_check_keys(ld, o, cp, len_keys);
    compile_rule(ld, o, cp, "length", GUARD_BLOCK, NULL, &g->length);
    g->max_bytes = (size_t)gd_get_num(ld, o, cp, "max_bytes", 2000, 1, 16 * 1024 * 1024);
    free(cp);
    o = section(ld, in, path, "rate", &cp);
    if (o != NULL)
        gd_check_keys(ld, o, cp, rate_keys);
    compile_rate(ld, o, cp, "conversation", &g->rate_conv, &g->conv_rate, &g->conv_burst);
    compile_rate(ld, o, cp, "sender", &g->rate_sender, &g->sender_rate, &g->sender_burst);
    free(cp);
}

static void compile_limits(gd_loader_t *ld, guard_rules_t *g, json_t *len, const char *path)
{
    static const char *const keys[] = {
        "action", "reply", "reason", "enabled", "channels", "default_max_chars", NULL};
    if (len != NULL)
        gd_check_keys(ld, len, path, keys);
    compile_rule(ld, len, path, "output.length", GUARD_BLOCK, NULL, &g->out_length);
    const char *act = gd_get_str(ld, len, path, "action", NULL);
    g->out_length_truncate = act != NULL && strcmp(act, "truncate") == 0;
    if (g->out_length_truncate)
        g->out_length.action = GUARD_REDACT;
    g->default_max_chars = (size_t)gd_get_num(ld, len, path, "default_max_chars", 4000, 1, 1e7);
    char *cp = core_jsonpath_key(path, "channels");
    json_t *ch = gd_get_obj(ld, len, path, "channels");
    g->limits = core_xcalloc(ch ? json_object_size(ch) + 1 : 1, sizeof(*g->limits));
    const char *key;
    json_t *v;
    json_object_foreach(ch, key, v)
    {
        char *kp = core_jsonpath_key(cp, key);
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            gd_problem(ld, kp, "must be a positive integer");
        } else {
            g->limits[g->n_limits].channel = core_xstrdup(key);
            g->limits[g->n_limits++].max_chars = (size_t)json_integer_value(v);
        }
        free(kp);
    }
    free(cp);
}

static void compile_output(gd_loader_t *ld, guard_rules_t *g, json_t *out, const char *path)
{
    static const char *const keys[] = {"pii", "banned_phrases", "promises", "length", NULL};
    if (out != NULL)
        gd_check_keys(ld, out, path, keys);
    char *cp;
    json_t *o = section(ld, out, path, "pii", &cp);
    compile_pii(ld, o, cp, "output.", g->pii_out);
    free(cp);
    o = section(ld, out, path, "banned_phrases", &cp);
    compile_terms_rule(ld, o, cp, "output.banned", &g->banned, &g->banned_terms);
    free(cp);
    o = section(ld, out, path, "promises", &cp);
    compile_terms_rule(ld, o, cp, "output.promise", &g->promises, &g->promise_terms);
    free(cp);
    o = section(ld, out, path, "length", &cp);
    compile_limits(ld, g, o, cp);
    free(cp);
}

/* Deep-merges over into a copy of base: objects key by key, null deletes. */
static json_t *merge(json_t *base, json_t *over)
{
    if (!json_is_object(base) || !json_is_object(over))
        return json_deep_copy(over);
    json_t *out = json_deep_copy(base);
    const char *key;
    json_t *v;
    json_object_foreach(over, key, v)
    {
        if (json_is_null(v)) {
            json_object_del(out, key);
            continue;
        }
        json_t *m = merge(json_object_get(out, key), v);
        json_object_set_new(out, key, m);
    }
    return out;
}

static guard_rules_t *compile_doc(gd_loader_t *ld, json_t *doc, int with_flows);

static void compile_flows(gd_loader_t *ld, guard_rules_t *g, json_t *flows, const char *path)
{
    g->flows = core_xcalloc(json_object_size(flows) + 1, sizeof(*g->flows));
    const char *key;
    json_t *v;
    json_object_foreach(flows, key, v)
    {
        char *fp = core_jsonpath_key(path, key);
        if (!json_is_object(v)) {
            gd_problem(ld, fp, "must be an object");
            free(fp);
            continue;
        }
        /* check the override where it was written, then compile the merge */
        gd_loader_t check = *ld;
        check.errors = 0;
        check.prefix = fp;
        guard_rules_t *partial = compile_doc(&check, v, 0);
        guard_rules_free(partial);
        ld->errors += check.errors;
        if (check.errors > 0) {
            free(fp);
            continue;
        }
        json_t *base = json_deep_copy(g->doc);
        json_object_del(base, "flows");
        json_t *merged = merge(base, v);
        json_decref(base);
        gd_loader_t quiet = {.file = ld->file, .diags = ld->diags};
        g->flows[g->n_flows].flow = core_xstrdup(key);
        g->flows[g->n_flows++].rules = compile_doc(&quiet, merged, 0);
        ld->errors += quiet.errors;
        json_decref(merged);
        free(fp);
    }
}

static guard_rules_t *compile_doc(gd_loader_t *ld, json_t *doc, int with_flows)
{
    static const char *const keys[] = {"version", "input", "output", "escalation", "flows", NULL};
    guard_rules_t *g = core_xcalloc(1, sizeof(*g));
    g->doc = json_incref(doc);
    gd_check_keys(ld, doc, "", keys);
    json_t *ver = json_object_get(doc, "version");
    if (ver != NULL && !(json_is_integer(ver) && json_integer_value(ver) == 1))
        gd_problem(ld, "version", "must be 1");
    char *cp;
    json_t *o = section(ld, doc, "", "input", &cp);
    compile_input(ld, g, o, cp);
    free(cp);
    o = section(ld, doc, "", "output", &cp);
    compile_output(ld, g, o, cp);
    free(cp);
    o = section(ld, doc, "", "escalation", &cp);
    g->policy = gd_policy_compile(ld, o, cp);
    free(cp);
    o = section(ld, doc, "", "flows", &cp);
    if (o != NULL && !with_flows)
        gd_problem(ld, cp, "flow overrides cannot nest");
    else if (o != NULL)
        compile_flows(ld, g, o, cp);
    free(cp);
    return g;
}

void guard_rules_free(guard_rules_t *g)
{
    if (g == NULL)
        return;
    for (int k = 0; k < GD_PII_N; k++) {
        rule_dispose(&g->pii_in[k]);
        rule_dispose(&g->pii_out[k]);
    }
    for (size_t i = 0; i < g->n_custom; i++) {
        rule_dispose(&g->custom[i].rule);
        pcre2_code_free(g->custom[i].re);
    }
    free(g->custom);
    for (size_t i = 0; i < g->n_signals; i++) {
        free(g->signals[i].name);
        free(g->signals[i].trigger_chars);
        gd_terms_dispose(&g->signals[i].triggers);
        pcre2_code_free(g->signals[i].re);
    }
    free(g->signals);
    for (size_t i = 0; i < g->n_topics; i++) {
        rule_dispose(&g->topics[i].rule);
        gd_terms_dispose(&g->topics[i].terms);
    }
    free(g->topics);
    gd_rule_t *rules[] = {&g->injection,   &g->abuse,  &g->length,   &g->rate_conv,
                          &g->rate_sender, &g->banned, &g->promises, &g->out_length};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        rule_dispose(rules[i]);
    gd_terms_dispose(&g->abuse_terms);
    gd_terms_dispose(&g->banned_terms);
    gd_terms_dispose(&g->promise_terms);
    for (size_t i = 0; i < g->n_limits; i++)
        free(g->limits[i].channel);
    free(g->limits);
    for (size_t i = 0; i < g->n_flows; i++) {
        free(g->flows[i].flow);
        guard_rules_free(g->flows[i].rules);
    }
    free(g->flows);
    policy_free(g->policy);
    json_decref(g->doc);
    free(g);
}

static int parse_doc(const char *text, size_t len, const char *file, core_diags_t *diags,
                     json_t **out)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        core_diags_add(diags, file, jerr.line, jerr.column, "", "%s", jerr.text);
        return CORE_ERR_INVALID;
    }
    if (!json_is_object(root)) {
        core_diags_add(diags, file, 1, 1, "", "guardrail rules must be a JSON object");
        json_decref(root);
        return CORE_ERR_INVALID;
    }
    *out = root;
    return 0;
}

int guard_rules_load(const char *text, size_t len, const char *file, guard_rules_t **out,
                     core_diags_t *diags)
{
    json_t *root;
    *out = NULL;
    if (parse_doc(text, len, file, diags, &root) != 0)
        return CORE_ERR_INVALID;
    gd_loader_t ld = {.file = file, .pos = core_jsonpos_new(text, len), .diags = diags};
    guard_rules_t *g = compile_doc(&ld, root, 1);
    json_decref(root);
    core_jsonpos_free(ld.pos);
    if (ld.errors > 0) {
        guard_rules_free(g);
        return CORE_ERR_INVALID;
    }
    *out = g;
    return 0;
}

int guard_rules_override(const guard_rules_t *base, const char *text, size_t len, const char *file,
                         guard_rules_t **out, core_diags_t *diags)
{
    json_t *over;
    *out = NULL;
    if (parse_doc(text, len, file, diags, &over) != 0)
        return CORE_ERR_INVALID;
    gd_loader_t ld = {.file = file, .pos = core_jsonpos_new(text, len), .diags = diags};
    /* positions point into the override; it may have its own "flows" sections */
    guard_rules_free(compile_doc(&ld, over, 1));
    core_jsonpos_free(ld.pos);
    ld.pos = NULL;
    guard_rules_t *g = NULL;
    if (ld.errors == 0) {
        json_t *merged = merge(base->doc, over);
        g = compile_doc(&ld, merged, 1);
        json_decref(merged);
    }
    json_decref(over);
    if (ld.errors > 0) {
        guard_rules_free(g);
        return CORE_ERR_INVALID;
    }
    *out = g;
    return 0;
}

guard_rules_t *guard_rules_default(void)
{
    const char *text = guard_rules_default_json();
    core_diags_t d;
    core_diags_init(&d);
    guard_rules_t *g = NULL;
    int rc = guard_rules_load(text, strlen(text), "<built-in guardrails>", &g, &d);
    /* the built-in document is tested; failing here is a bug */
    if (rc != 0) {
        char line[1024];
        core_diag_format(&d.items[0], line, sizeof(line));
        LOG_ERROR("msg=\"built-in guardrails invalid\" detail=\"%s\"", line);
        abort();
    }
    core_diags_dispose(&d);
    return g;
}

void guard_rules_foreach(const guard_rules_t *g, void (*fn)(const char *rule, void *arg), void *arg)
{
    for (int k = 0; k < GD_PII_N; k++)
        if (g->pii_in[k].enabled)
            fn(g->pii_in[k].name, arg);
    for (size_t i = 0; i < g->n_custom; i++)
        if (g->custom[i].rule.enabled)
            fn(g->custom[i].rule.name, arg);
    const gd_rule_t *in[] = {&g->injection, &g->abuse, &g->length, &g->rate_conv, &g->rate_sender};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        if (in[i]->enabled)
            fn(in[i]->name, arg);
    for (size_t i = 0; i < g->n_topics; i++)
        if (g->topics[i].rule.enabled)
            fn(g->topics[i].rule.name, arg);
    for (int k = 0; k < GD_PII_N; k++)
        if (g->pii_out[k].enabled)
            fn(g->pii_out[k].name, arg);
    const gd_rule_t *out[] = {&g->banned, &g->promises, &g->out_length};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        if (out[i]->enabled)
            fn(out[i]->name, arg);
}
