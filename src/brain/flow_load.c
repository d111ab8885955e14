/* Flow compiler, part 1: files, metadata, slots, variables and settings.
 * Every problem is collected (never the first only) as
 * `file:line:col: json.path: message`. Nodes are compiled in flow_nodes.c
 * and the graph checked in flow_check.c; the finished flowset is assembled
 * in flow_set.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"
#include "chorus/nlu.h"

void flow__err(loader_t *ld, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    if (ld->pos != NULL)
        core_jsonpos_find(ld->pos, path, &line, &col);
    core_diags_add(ld->diags, ld->file, line, col, path, "%s", msg);
    ld->n_errors++;
}

const char *flow__path(char *out, size_t size, const char *parent, const char *key)
{
    char *p = core_jsonpath_key(parent, key);
    snprintf(out, size, "%s", p);
    free(p);
    return out;
}

static int in_list(const char *list, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, key, n) == 0)
            return 1;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return 0;
}

void flow__check_keys(loader_t *ld, json_t *obj, const char *path, const char *allowed)
{
    const char *key;
    json_t *v;
    char p[512];
    json_object_foreach(obj, key, v)
    {
        if (!in_list(allowed, key))
            flow__err(ld, flow__path(p, sizeof(p), path, key), "unknown key (expected one of: %s)",
                      allowed);
    }
}

const char *flow__str(loader_t *ld, json_t *obj, const char *key, const char *path, int required)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    if (v == NULL) {
        if (required)
            flow__err(ld, path, "missing required key \"%s\"", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        flow__err(ld, flow__path(p, sizeof(p), path, key), "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

long long flow__int(loader_t *ld, json_t *obj, const char *key, const char *path, long long min,
                    long long max, long long def)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    if (v == NULL)
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        flow__err(ld, flow__path(p, sizeof(p), path, key), "must be an integer %lld-%lld", min,
                  max);
        return def;
    }
    return json_integer_value(v);
}

double flow__num(loader_t *ld, json_t *obj, const char *key, const char *path, double min,
                 double max, double def)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    if (v == NULL)
        return def;
    if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max) {
        flow__err(ld, flow__path(p, sizeof(p), path, key), "must be a number %g-%g", min, max);
        return def;
    }
    return json_number_value(v);
}

int flow__bool(loader_t *ld, json_t *obj, const char *key, const char *path, int def)
{
    json_t *v = json_object_get(obj, key);
    char p[512];
    if (v == NULL)
        return def;
    if (!json_is_boolean(v)) {
        flow__err(ld, flow__path(p, sizeof(p), path, key), "must be true or false");
        return def;
    }
    return json_is_true(v);
}

/* ---- slots ----------------------------------------------------------------------- */

static const char *slot_type_names[] = {"text", "number", "integer", "yes/no", "choice", "date",
                                        "time", "email",  "phone",   "money",  "regex",  "any"};

static int slot_type_parse(const char *s, slot_type_t *out)
{
    for (size_t i = 0; i < sizeof(slot_type_names) / sizeof(slot_type_names[0]); i++)
        if (strcmp(s, slot_type_names[i]) == 0) {
            *out = (slot_type_t)i;
            return 0;
        }
    if (strcmp(s, "yesno") == 0 || strcmp(s, "boolean") == 0) {
        *out = SLOT_YESNO;
        return 0;
    }
    return -1;
}

static void slot_choices(loader_t *ld, slot_def_t *d, json_t *arr, const char *path)
{
    char p[512];
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        flow__err(ld, path, "a choice slot needs a non-empty \"choices\" array");
        return;
    }
    d->choices = ent_choices_new();
    d->choice_values = core_xcalloc(json_array_size(arr), sizeof(char *));
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c)
    {
        char *ip = core_jsonpath_index(path, i);
        const char *value = json_is_string(c) ? json_string_value(c) : NULL;
        json_t *syn = NULL;
        if (json_is_object(c)) {
            flow__check_keys(ld, c, ip, "value|synonyms");
            value = flow__str(ld, c, "value", ip, 1);
            syn = json_object_get(c, "synonyms");
        } else if (value == NULL) {
            flow__err(ld, ip, "a choice is a string or {\"value\", \"synonyms\"}");
        }
        const char *syns[33] = {NULL};
        size_t ns = 0;
        if (syn != NULL && !json_is_array(syn))
            flow__err(ld, flow__path(p, sizeof(p), ip, "synonyms"), "must be an array of strings");
        for (size_t j = 0; json_is_array(syn) && j < json_array_size(syn) && ns < 32; j++)
            if (json_is_string(json_array_get(syn, j)))
                syns[ns++] = json_string_value(json_array_get(syn, j));
        if (value != NULL) {
            for (size_t k = 0; k < d->n_choices; k++)
                if (strcmp(d->choice_values[k], value) == 0)
                    flow__err(ld, ip, "duplicate choice \"%s\"", value);
            ent_choices_add(d->choices, value, syns);
            d->choice_values[d->n_choices++] = core_xstrdup(value);
        }
        free(ip);
    }
}

static void slot_define(loader_t *ld, const char *name, json_t *def, const char *path)
{
    brain_flowset_t *fs = ld->fs;
    char p[512];
    if (!json_is_object(def)) {
        flow__err(ld, path, "a slot is an object with a \"type\"");
        return;
    }
    flow__check_keys(ld, def, path,
                     "type|pattern|caseless|choices|min|max|confirm_voice|sensitive|default|"
                     "description");
    const char *type = flow__str(ld, def, "type", path, 1);
    slot_type_t t = SLOT_TEXT;
    if (type != NULL && slot_type_parse(type, &t) != 0)
        flow__err(ld, flow__path(p, sizeof(p), path, "type"),
                  "unknown slot type \"%s\" (text, number, integer, yes/no, choice, date, time, "
                  "email, phone, money, regex, any)",
                  type);
    int existing = brain__slot_find(fs, name);
    if (existing >= 0) {
        slot_def_t *o = &fs->slots[existing];
        if (o->type != t)
            flow__err(ld, path, "slot \"%s\" is already declared as %s in %s (%s)", name,
                      slot_type_names[o->type], o->file, o->path);
        return;
    }
    fs->slots = core_xrealloc(fs->slots, (fs->n_slots + 1) * sizeof(*fs->slots));
    slot_def_t *d = &fs->slots[fs->n_slots++];
    memset(d, 0, sizeof(*d));
    d->name = core_xstrdup(name);
    d->type = t;
    d->file = core_xstrdup(ld->file);
    d->path = core_xstrdup(path);
    d->confirm_voice = flow__bool(ld, def, "confirm_voice", path, 0);
    d->sensitive = flow__bool(ld, def, "sensitive", path, 0);
    d->has_min = json_object_get(def, "min") != NULL;
    d->has_max = json_object_get(def, "max") != NULL;
    d->min = flow__num(ld, def, "min", path, -1e15, 1e15, 0);
    d->max = flow__num(ld, def, "max", path, -1e15, 1e15, 0);
    const char *dflt = flow__str(ld, def, "default", path, 0);
    d->def = core_xstrdup_opt(dflt);
    if (t == SLOT_REGEX) {
        const char *re = flow__str(ld, def, "pattern", path, 1);
        core_err_t err = {0};
        if (re != NULL) {
            d->pattern = ent_pattern_new(re, flow__bool(ld, def, "caseless", path, 0), &err);
            if (d->pattern == NULL)
                flow__err(ld, flow__path(p, sizeof(p), path, "pattern"), "%s", err.msg);
        }
    } else if (json_object_get(def, "pattern") != NULL) {
        flow__err(ld, flow__path(p, sizeof(p), path, "pattern"), "only regex slots take a pattern");
    }
    if (t == SLOT_CHOICE)
        slot_choices(ld, d, json_object_get(def, "choices"),
                     flow__path(p, sizeof(p), path, "choices"));
    else if (json_object_get(def, "choices") != NULL)
        flow__err(ld, flow__path(p, sizeof(p), path, "choices"), "only choice slots take choices");
}

void flow__load_slots(loader_t *ld, json_t *slots, const char *path)
{
    if (slots == NULL)
        return;
    if (!json_is_object(slots)) {
        flow__err(ld, path, "must be an object of slot name to definition");
        return;
    }
    const char *key;
    json_t *v;
    char p[512];
    json_object_foreach(slots, key, v)
    {
        flow__path(p, sizeof(p), path, key);
        if (key[0] == '_' || key[0] == '\0' ||
            strspn(key, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(key)) {
            flow__err(ld, p, "slot names are letters, digits and '_', not starting with '_'");
            continue;
        }
        slot_define(ld, key, v, p);
    }
}

/* ---- variables: flow-level constants, overridable from the environment ------------ */

static const char *env_lookup(const char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

void flow__load_vars(loader_t *ld, json_t *vars, const char *path, const char *const *envp)
{
    if (vars == NULL)
        return;
    if (!json_is_object(vars)) {
        flow__err(ld, path, "must be an object of variable name to value");
        return;
    }
    const char *key;
    json_t *v;
    char p[512];
    brain_flowset_t *fs = ld->fs;
    json_object_foreach(vars, key, v)
    {
        flow__path(p, sizeof(p), path, key);
        const char *value = json_is_string(v) ? json_string_value(v) : NULL;
        const char *env = NULL;
        if (json_is_object(v)) {
            flow__check_keys(ld, v, p, "default|env");
            value = flow__str(ld, v, "default", p, 1);
            env = flow__str(ld, v, "env", p, 0);
        } else if (value == NULL) {
            flow__err(ld, p, "a variable is a string or {\"default\", \"env\"}");
            continue;
        }
        const char *over = env ? env_lookup(envp, env) : NULL;
        int i = brain__var_find(fs, key);
        if (i >= 0) {
            flow__err(ld, p, "variable \"%s\" is declared twice", key);
            continue;
        }
        fs->vars = core_xrealloc(fs->vars, (fs->n_vars + 1) * sizeof(*fs->vars));
        fs->vars[fs->n_vars].name = core_xstrdup(key);
        fs->vars[fs->n_vars].value = core_xstrdup(over ? over : (value ? value : ""));
        fs->n_vars++;
    }
}

/* ---- settings --------------------------------------------------------------------- */

static void settings_msg(loader_t *ld, json_t *msgs, const char *key, const char *path, msg_t *m,
                         const char *def)
{
    char p[512];
    json_t *v = json_object_get(msgs, key);
    if (v == NULL) {
        json_t *s = json_string(def);
        flow__msg(ld, s, flow__path(p, sizeof(p), path, key), m);
        json_decref(s);
        return;
    }
    brain__msg_dispose(m);
    flow__msg(ld, v, flow__path(p, sizeof(p), path, key), m);
}

static const char *msg_keys = "fallback|help|cancel|start_over|agent|timeout|csat_prompt|"
                              "csat_thanks|confirm|goodbye|flow_changed|step_limit";

void flow__settings_messages(loader_t *ld, json_t *msgs, const char *path)
{
    settings_t *s = &ld->fs->settings;
    if (msgs != NULL && !json_is_object(msgs))
        flow__err(ld, path, "must be an object of message name to message");
    if (json_is_object(msgs))
        flow__check_keys(ld, msgs, path, msg_keys);
    settings_msg(ld, msgs, "fallback", path, &s->fallback,
                 "Sorry, I didn't understand that. Could you say it another way?");
    settings_msg(ld, msgs, "help", path, &s->help,
                 "I can help with your bookings, flight changes, baggage and refunds. What "
                 "would you like to do?");
    settings_msg(ld, msgs, "cancel", path, &s->cancel,
                 "OK, I've stopped that. Is there anything else I can help with?");
    settings_msg(ld, msgs, "start_over", path, &s->start_over, "OK, let's start over.");
    settings_msg(ld, msgs, "agent", path, &s->agent,
                 "I'm connecting you with a member of our team.");
    settings_msg(ld, msgs, "timeout", path, &s->timeout,
                 "This conversation has been closed after a period of inactivity.");
    settings_msg(ld, msgs, "csat_prompt", path, &s->csat_prompt,
                 "Before you go: how would you rate this conversation from 1 to 5?");
    settings_msg(ld, msgs, "csat_thanks", path, &s->csat_thanks, "Thank you for your feedback!");
    settings_msg(ld, msgs, "confirm", path, &s->confirm, "Is that right?");
    settings_msg(ld, msgs, "goodbye", path, &s->goodbye, "Goodbye!");
    settings_msg(ld, msgs, "flow_changed", path, &s->flow_changed,
                 "Sorry, something changed on our side since your last message. Let's start "
                 "that again.");
    settings_msg(ld, msgs, "step_limit", path, &s->step_limit,
                 "Sorry, something went wrong on our side, so I've stopped that. What would you "
                 "like to do?");
}

/* Scalar settings; flow names are resolved by the caller once flows are known. */
void flow__settings(loader_t *ld, json_t *set, const char *path, const char **flows)
{
    settings_t *s = &ld->fs->settings;
    char p[512];
    flow__check_keys(
        ld, set, path,
        "idle_timeout_s|max_fallbacks|confidence_threshold|interrupt_threshold|welcome_flow|"
        "fallback_flow|agent_flow|handoff_queue|llm|messages|intents|vars");
    s->idle_timeout_us =
        flow__int(ld, set, "idle_timeout_s", path, 10, 86400 * 30, 900) * 1000000LL;
    s->max_fallbacks = (int)flow__int(ld, set, "max_fallbacks", path, 1, 100, 3);
    s->threshold = flow__num(ld, set, "confidence_threshold", path, 0, 1, 0.45);
    s->threshold_given = json_object_get(set, "confidence_threshold") != NULL;
    s->interrupt = flow__num(ld, set, "interrupt_threshold", path, 0, 1, 0.85);
    flows[0] = flow__str(ld, set, "welcome_flow", path, 0);
    flows[1] = flow__str(ld, set, "fallback_flow", path, 0);
    flows[2] = flow__str(ld, set, "agent_flow", path, 0);
    const char *q = flow__str(ld, set, "handoff_queue", path, 0);
    if (q != NULL) {
        free(s->queue);
        s->queue = core_xstrdup(q);
    }
    json_t *llm = json_object_get(set, "llm");
    if (llm != NULL) {
        flow__path(p, sizeof(p), path, "llm");
        if (!json_is_object(llm)) {
            flow__err(ld, p, "must be an object");
        } else {
            flow__check_keys(ld, llm, p, "base_url|model|api_key_env");
            const char *b = flow__str(ld, llm, "base_url", p, 0);
            const char *m = flow__str(ld, llm, "model", p, 0);
            const char *k = flow__str(ld, llm, "api_key_env", p, 0);
            s->llm_base_url = core_xstrdup_opt(b);
            s->llm_model = core_xstrdup_opt(m);
            s->llm_api_key_env = core_xstrdup_opt(k);
        }
    }
}

/* ---- flow metadata and intents ------------------------------------------------------ */

static const char *statuses = "planned|in progress|live|optimizing";

static char **examples_of(loader_t *ld, json_t *arr, const char *path, size_t *n)
{
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        flow__err(ld, path, "must be a non-empty array of example utterances");
        return NULL;
    }
    char **out = core_xcalloc(json_array_size(arr), sizeof(char *));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_string(e) || json_string_length(e) == 0) {
            char *ip = core_jsonpath_index(path, i);
            flow__err(ld, ip, "an example is a non-empty string");
            free(ip);
            continue;
        }
        out[(*n)++] = core_xstrdup(json_string_value(e));
    }
    return out;
}

void flow__training(loader_t *ld, json_t *training, const char *path)
{
    if (!json_is_object(training)) {
        flow__err(ld, path, "must be an object of intent name to example utterances");
        return;
    }
    const char *key;
    json_t *v;
    char p[512];
    json_object_foreach(training, key, v)
    {
        flow__path(p, sizeof(p), path, key);
        size_t n;
        char **ex = examples_of(ld, v, p, &n);
        int i = brain__intent_find(ld->fs, key);
        if (i < 0) {
            flow__err(ld, p, "no flow declares intent \"%s\"", key);
            for (size_t j = 0; j < n; j++)
                free(ex[j]);
            free(ex);
            continue;
        }
        intent_def_t *d = &ld->fs->intents[i];
        d->examples = core_xrealloc(d->examples, (d->n_examples + n) * sizeof(char *));
        memcpy(d->examples + d->n_examples, ex, n * sizeof(char *));
        d->n_examples += n;
        free(ex);
    }
}

/* Adds intents (name -> examples). flow_index BRAIN_NONE with global > 0 for
 * extra examples of the global intents from settings. */
void flow__intents(loader_t *ld, json_t *intents, const char *path, uint16_t flow_index)
{
    brain_flowset_t *fs = ld->fs;
    if (intents == NULL)
        return;
    if (!json_is_object(intents)) {
        flow__err(ld, path, "must be an object of intent name to example utterances");
        return;
    }
    const char *key;
    json_t *v;
    char p[512];
    json_object_foreach(intents, key, v)
    {
        flow__path(p, sizeof(p), path, key);
        /* the router's limits, said where the intent is rather than by the
         * router's training at load time with no place */
        if (strlen(key) > NLU_INTENT_NAME_MAX)
            flow__err(ld, p, "intent name longer than %d bytes", NLU_INTENT_NAME_MAX);
        int i = brain__intent_find(fs, key);
        if (i < 0 && fs->n_intents >= NLU_INTENTS_MAX)
            flow__err(ld, p, "more than %d intents in the flows", NLU_INTENTS_MAX);
        size_t n;
        char ep[512];
        if (json_is_object(v)) { /* {"examples": [...], "description": "..."} */
            flow__check_keys(ld, v, p, "examples|description");
            flow__path(ep, sizeof(ep), p, "examples");
            v = json_object_get(v, "examples");
        } else {
            snprintf(ep, sizeof(ep), "%s", p);
        }
        char **ex = examples_of(ld, v, ep, &n);
        if (i >= 0 && brain__intent_is_oos(&fs->intents[i]) && flow_index != BRAIN_NONE) {
            flow__err(ld, p,
                      "intent \"oos\" is reserved for out-of-scope examples"
                      " (give them in settings.intents.oos)");
        } else if (i >= 0 && (fs->intents[i].global == 0 || flow_index != BRAIN_NONE)) {
            flow__err(ld, p, "duplicate intent \"%s\" (already starts flow \"%s\")", key,
                      fs->intents[i].flow != BRAIN_NONE ? fs->flows[fs->intents[i].flow].name
                                                        : "(global)");
        } else if (i >= 0) {
            intent_def_t *d = &fs->intents[i]; /* more examples for a global intent */
            d->examples = core_xrealloc(d->examples, (d->n_examples + n) * sizeof(char *));
            memcpy(d->examples + d->n_examples, ex, n * sizeof(char *));
            d->n_examples += n;
            free(ex);
            continue;
        } else if (flow_index == BRAIN_NONE) {
            flow__err(ld, p,
                      "settings may only add examples to cancel, start_over, help, agent, oos");
        } else {
            fs->intents = core_xrealloc(fs->intents, (fs->n_intents + 1) * sizeof(*fs->intents));
            fs->intents[fs->n_intents++] = (intent_def_t){core_xstrdup(key), ex, n, flow_index, 0};
            ld->flow->n_intents++;
            continue;
        }
        for (size_t j = 0; j < n; j++)
            free(ex[j]);
        free(ex);
    }
}

void flow__meta(loader_t *ld, json_t *root)
{
    flow_t *f = ld->flow;
    const char *d = flow__str(ld, root, "description", "", 0);
    const char *o = flow__str(ld, root, "owner", "", 0);
    const char *s = flow__str(ld, root, "status", "", 0);
    f->description = core_xstrdup(d ? d : "");
    f->owner = core_xstrdup(o ? o : "");
    if (s != NULL && !in_list(statuses, s))
        flow__err(ld, "status",
                  "must be one of planned, in progress, live, optimizing (got \"%s\")", s);
    f->status = core_xstrdup(s && in_list(statuses, s) ? s : "planned");
    if (json_object_get(root, "help") != NULL)
        f->has_help = flow__msg(ld, json_object_get(root, "help"), "help", &f->help) == 0;
}
