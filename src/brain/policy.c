/* The escalation policy (see policy.h): criteria compiled from the
 * "escalation" section of a guardrails document, per-conversation counters,
 * and the decision after each turn. The sentiment scorer lives in
 * policy_sentiment.c. */
#include <stdlib.h>
#include <string.h>

#include "brain/guard_int.h"
#include "chorus/policy.h"

typedef struct {
    int on;
    char *reason; /* owned */
} criterion_t;

struct policy_s {
    criterion_t human, fallbacks, sentiment, guardrail, intents, flows, actions;
    gd_terms_t human_terms;
    gd_terms_t request_verbs; /* built in: "talk", "speak", "want", ... */
    gd_terms_t negations;
    unsigned fallbacks_n, sentiment_turns, actions_n;
    double sentiment_threshold;
    char **intent_names, **flow_names; /* owned */
    size_t n_intents, n_flows;
};

static const char *const verbs[] = {
    "talk",     "speak",    "connect", "transfer", "put",   "get",  "want",    "need",   "give",
    "escalate", "chat",     "reach",   "call",     "let",   "send", "request", "prefer", "can i",
    "is there", "where is", "find",    "contact",  "bring", "pass", NULL};
static const char *const negs[] = {"dont", "do not", "not", "never", "without", NULL};

const char *policy_criterion_name(policy_criterion_t c)
{
    static const char *const names[] = {"none",           "guardrail",     "sensitive_intent",
                                        "sensitive_flow", "human_request", "action_failures",
                                        "fallbacks",      "sentiment"};
    return (size_t)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

const char *policy_reason(const policy_t *p, policy_criterion_t c)
{
    if (p == NULL)
        return NULL;
    const criterion_t *cr[] = {NULL,      &p->guardrail, &p->intents,   &p->flows,
                               &p->human, &p->actions,   &p->fallbacks, &p->sentiment};
    if ((size_t)c >= sizeof(cr) / sizeof(cr[0]) || cr[c] == NULL || !cr[c]->on)
        return NULL;
    return cr[c]->reason;
}

static void read_criterion(gd_loader_t *ld, json_t *esc, const char *path, const char *key,
                           const char *const *keys, const char *def_reason, criterion_t *c,
                           json_t **obj, char **cpath)
{
    *cpath = core_jsonpath_key(path, key);
    *obj = gd_get_obj(ld, esc, path, key);
    if (*obj != NULL)
        gd_check_keys(ld, *obj, *cpath, keys);
    c->on = *obj != NULL && gd_get_bool(ld, *obj, *cpath, "enabled", 1);
    c->reason = core_xstrdup(gd_get_str(ld, *obj, *cpath, "reason", def_reason));
}

static char **read_names(gd_loader_t *ld, json_t *obj, const char *path, size_t *n)
{
    json_t *arr = gd_get_arr(ld, obj, path, "names");
    char **out = core_xcalloc(json_array_size(arr) + 1, sizeof(*out));
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            char *ap = core_jsonpath_key(path, "names");
            char *ip = core_jsonpath_index(ap, i);
            gd_problem(ld, ip, "must be a string");
            free(ip);
            free(ap);
            continue;
        }
        out[(*n)++] = core_xstrdup(json_string_value(v));
    }
    return out;
}

static void builtin_terms(gd_terms_t *tl, const char *const *list)
{
    gd_terms_init(tl);
    for (const char *const *p = list; *p; p++)
        gd_terms_add(tl, *p);
    gd_terms_finish(tl);
}

struct policy_s *gd_policy_compile(gd_loader_t *ld, json_t *esc, const char *path)
{
    static const char *const top[] = {
        "human_request",     "fallbacks",       "sentiment",       "guardrail",
        "sensitive_intents", "sensitive_flows", "action_failures", NULL};
    static const char *const k_human[] = {"terms", "reason", "enabled", NULL};
    static const char *const k_fb[] = {"consecutive", "reason", "enabled", NULL};
    static const char *const k_sent[] = {"threshold", "turns", "reason", "enabled", NULL};
    static const char *const k_plain[] = {"reason", "enabled", NULL};
    static const char *const k_names[] = {"names", "reason", "enabled", NULL};
    static const char *const k_act[] = {"count", "reason", "enabled", NULL};
    if (esc == NULL)
        return NULL;
    gd_check_keys(ld, esc, path, top);
    policy_t *p = core_xcalloc(1, sizeof(*p));
    json_t *o;
    char *cp;
    read_criterion(ld, esc, path, "human_request", k_human, "user_requested_human", &p->human, &o,
                   &cp);
    gd_terms_init(&p->human_terms);
    gd_get_terms(ld, o, cp, "terms", &p->human_terms);
    free(cp);
    read_criterion(ld, esc, path, "fallbacks", k_fb, "repeated_fallback", &p->fallbacks, &o, &cp);
    p->fallbacks_n = (unsigned)gd_get_num(ld, o, cp, "consecutive", 3, 1, 100);
    free(cp);
    read_criterion(ld, esc, path, "sentiment", k_sent, "negative_sentiment", &p->sentiment, &o,
                   &cp);
    p->sentiment_threshold = gd_get_num(ld, o, cp, "threshold", -0.35, -1, 1);
    p->sentiment_turns = (unsigned)gd_get_num(ld, o, cp, "turns", 3, 1, POLICY_SENTIMENT_WINDOW);
    free(cp);
    read_criterion(ld, esc, path, "guardrail", k_plain, "guardrail", &p->guardrail, &o, &cp);
    free(cp);
    read_criterion(ld, esc, path, "sensitive_intents", k_names, "sensitive_intent", &p->intents, &o,
                   &cp);
    p->intent_names = read_names(ld, o, cp, &p->n_intents);
    free(cp);
    read_criterion(ld, esc, path, "sensitive_flows", k_names, "sensitive_flow", &p->flows, &o, &cp);
    p->flow_names = read_names(ld, o, cp, &p->n_flows);
    free(cp);
    read_criterion(ld, esc, path, "action_failures", k_act, "action_failed", &p->actions, &o, &cp);
    p->actions_n = (unsigned)gd_get_num(ld, o, cp, "count", 2, 1, 100);
    free(cp);
    builtin_terms(&p->request_verbs, verbs);
    builtin_terms(&p->negations, negs);
    return p;
}

void policy_free(policy_t *p)
{
    if (p == NULL)
        return;
    criterion_t *cs[] = {&p->human,   &p->fallbacks, &p->sentiment, &p->guardrail,
                         &p->intents, &p->flows,     &p->actions};
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
        free(cs[i]->reason);
    gd_terms_dispose(&p->human_terms);
    gd_terms_dispose(&p->request_verbs);
    gd_terms_dispose(&p->negations);
    for (size_t i = 0; i < p->n_intents; i++)
        free(p->intent_names[i]);
    for (size_t i = 0; i < p->n_flows; i++)
        free(p->flow_names[i]);
    free(p->intent_names);
    free(p->flow_names);
    free(p);
}

int policy_load(const char *text, size_t len, const char *file, policy_t **out, core_diags_t *diags)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        core_diags_add(diags, file, jerr.line, jerr.column, "", "%s", jerr.text);
        return CORE_ERR_INVALID;
    }
    gd_loader_t ld = {.file = file, .pos = core_jsonpos_new(text, len), .diags = diags};
    json_t *esc = json_is_object(root) ? gd_get_obj(&ld, root, "", "escalation") : NULL;
    if (esc == NULL && ld.errors == 0)
        gd_problem(&ld, "escalation", "missing: the escalation policy needs this section");
    policy_t *p = esc ? gd_policy_compile(&ld, esc, "escalation") : NULL;
    json_decref(root);
    core_jsonpos_free(ld.pos);
    if (ld.errors > 0) {
        policy_free(p);
        return CORE_ERR_INVALID;
    }
    *out = p;
    return 0;
}

const policy_t *guard_rules_policy(const guard_rules_t *rules)
{
    return rules ? rules->policy : NULL;
}

const policy_t *guard_rules_policy_for(const guard_rules_t *rules, const char *flow)
{
    if (rules != NULL && flow != NULL)
        for (size_t i = 0; i < rules->n_flows; i++)
            if (strcmp(rules->flows[i].flow, flow) == 0)
                return rules->flows[i].rules->policy;
    return guard_rules_policy(rules);
}

/* A human is asked for when a target ("agent", "real person") follows a
 * request verb within four words ("can I talk to an agent"), or is most of
 * a short message ("agent", "human please"), and no negation precedes it. */
static int wants_human(const policy_t *p, const gd_norm_t *nm)
{
    int yes = 0;
    for (size_t ti = gd_terms_find_tok(&p->human_terms, nm, 0); ti != (size_t)-1 && !yes;
         ti = gd_terms_find_tok(&p->human_terms, nm, ti + 1)) {
        size_t from = ti > 4 ? ti - 4 : 0;
        size_t verb = gd_terms_find_tok(&p->request_verbs, nm, from);
        size_t neg = gd_terms_find_tok(&p->negations, nm, from);
        int negated = neg != (size_t)-1 && neg < ti;
        yes = !negated && ((verb != (size_t)-1 && verb < ti) || nm->n_toks <= 3);
    }
    return yes;
}

int policy_wants_human(const policy_t *p, const char *text, size_t len)
{
    if (p == NULL || !p->human.on || text == NULL)
        return 0;
    gd_norm_t nm;
    gd_norm_build(&nm, text, len);
    int yes = wants_human(p, &nm);
    gd_norm_dispose(&nm);
    return yes;
}

/* The fold of the turn's text (which must not be NULL): the input rails'
 * when the text is theirs, else one built into own (disposed by the caller
 * when the result is own). */
static const gd_norm_t *turn_fold(const policy_turn_t *t, gd_norm_t *own)
{
    const guard_result_t *g = t->guard;
    if (g != NULL && g->priv_fold != NULL && g->text == t->text && g->text_len == t->len)
        return g->priv_fold;
    gd_norm_build(own, t->text, t->len);
    return own;
}

static int in_list(char **names, size_t n, const char *s)
{
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return 1;
    return 0;
}

/* nm: the fold of t->text, NULL when there is no text. */
static void record(policy_state_t *st, const policy_turn_t *t, const gd_norm_t *nm,
                   policy_decision_t *d)
{
    st->turns++;
    st->consecutive_fallbacks = t->fallback ? st->consecutive_fallbacks + 1 : 0;
    st->action_failures += t->action_failed > 0 ? (uint32_t)t->action_failed : 0;
    if (nm == NULL)
        return;
    d->sentiment = gd_sentiment(nm, t->text);
    st->sentiment[st->next_sentiment] = d->sentiment;
    st->next_sentiment = (st->next_sentiment + 1) % POLICY_SENTIMENT_WINDOW;
    if (st->n_sentiment < POLICY_SENTIMENT_WINDOW)
        st->n_sentiment++;
}

/* Mean of the latest n scores if there are n and none is positive; else 0. */
static double sustained(const policy_state_t *st, unsigned n)
{
    if (st->n_sentiment < n)
        return 0;
    double sum = 0;
    for (unsigned k = 1; k <= n; k++) {
        double s = st->sentiment[(st->next_sentiment + POLICY_SENTIMENT_WINDOW - k) %
                                 POLICY_SENTIMENT_WINDOW];
        if (s > 0)
            return 0;
        sum += s;
    }
    return sum / n;
}

static void fire(policy_decision_t *d, policy_criterion_t c, const criterion_t *cr,
                 const char *detail)
{
    if (d->escalate)
        return;
    d->escalate = 1;
    d->criterion = c;
    d->reason = cr->reason;
    d->detail = detail;
}

int policy_evaluate(const policy_t *p, policy_state_t *st, const policy_turn_t *t,
                    policy_decision_t *d)
{
    memset(d, 0, sizeof(*d));
    if (p == NULL || st == NULL || t == NULL)
        return 0;
    /* one fold of the text serves the sentiment and the human request */
    gd_norm_t own;
    const gd_norm_t *nm = t->text != NULL ? turn_fold(t, &own) : NULL;
    record(st, t, nm, d);
    if (p->guardrail.on && t->guard != NULL && t->guard->action == GUARD_ESCALATE)
        fire(d, POLICY_GUARDRAIL, &p->guardrail, t->guard->reason);
    if (p->intents.on && in_list(p->intent_names, p->n_intents, t->intent))
        fire(d, POLICY_SENSITIVE_INTENT, &p->intents, t->intent);
    if (p->flows.on && in_list(p->flow_names, p->n_flows, t->flow))
        fire(d, POLICY_SENSITIVE_FLOW, &p->flows, t->flow);
    if (p->human.on && nm != NULL && wants_human(p, nm))
        fire(d, POLICY_HUMAN_REQUEST, &p->human, NULL);
    if (p->actions.on && st->action_failures >= p->actions_n)
        fire(d, POLICY_ACTION_FAILURES, &p->actions, NULL);
    if (p->fallbacks.on && st->consecutive_fallbacks >= p->fallbacks_n)
        fire(d, POLICY_FALLBACKS, &p->fallbacks, NULL);
    d->sentiment_avg = sustained(st, p->sentiment_turns);
    if (p->sentiment.on && st->n_sentiment >= p->sentiment_turns &&
        d->sentiment_avg <= p->sentiment_threshold && d->sentiment_avg < 0)
        fire(d, POLICY_SENTIMENT, &p->sentiment, NULL);
    if (nm == &own)
        gd_norm_dispose(&own);
    return 0;
}
