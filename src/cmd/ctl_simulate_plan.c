/* The script and the plan of `chorusctl simulate`: loading and checking the
 * population script (every problem as file:line:col: path: message), drawing
 * the conversations from it with a seeded generator, and the report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"
#include "cmd/ctl_common.h"
#include "cmd/ctl_simulate.h"

int sim_load_script(sim_t *s, const char *path);
void sim_plan(sim_t *s);
void sim_free_plan(sim_t *s);
json_t *sim_report(sim_t *s);
void sim_print(const json_t *r, FILE *out);

#define SCRIPT_MAX_BYTES (16 * 1024 * 1024)

typedef ctl_check_t check_t;

static void problem(check_t *c, const char *path, const char *msg)
{
    ctl_check_problem(c, path, msg);
}

/* A non-empty array of strings at o[key]. */
static void need_strings(check_t *c, const json_t *o, const char *key, const char *parent)
{
    char *path = core_jsonpath_key(parent, key);
    const json_t *a = json_object_get(o, key);
    int ok = json_is_array(a) && json_array_size(a) > 0;
    for (size_t i = 0; ok && i < json_array_size(a); i++)
        ok = json_is_string(json_array_get(a, i));
    if (!ok)
        problem(c, path, "needs a non-empty array of strings");
    free(path);
}

/* Each expectation a known one with a string: a typo ("bot_contain") or an
 * array would otherwise check nothing. */
static void check_expect(check_t *c, const json_t *e, const char *turn)
{
    static const char *const known[] = {"bot_contains", "status", "intent", NULL};
    if (!json_is_object(e))
        return;
    char *ep = core_jsonpath_key(turn, "expect");
    ctl_check_known_keys(c, e, ep, known, "unknown expectation (bot_contains, status, intent)");
    for (size_t i = 0; known[i] != NULL; i++) {
        const json_t *v = json_object_get(e, known[i]);
        if (v != NULL && !json_is_string(v)) {
            char *p = core_jsonpath_key(ep, known[i]);
            problem(c, p, "must be a string");
            free(p);
        }
    }
    free(ep);
}

static void check_goal(check_t *c, const json_t *g, size_t i)
{
    char *path = core_jsonpath_index("goals", i);
    if (!json_is_string(json_object_get(g, "name")))
        problem(c, path, "a goal needs a \"name\"");
    const json_t *w = json_object_get(g, "weight");
    if (w != NULL && !(json_is_number(w) && json_number_value(w) > 0))
        problem(c, path, "\"weight\" must be a number above 0");
    const json_t *turns = json_object_get(g, "turns");
    char *tp = core_jsonpath_key(path, "turns");
    if (!json_is_array(turns) || json_array_size(turns) == 0)
        problem(c, tp, "needs a non-empty array of turns");
    for (size_t k = 0; k < json_array_size(turns); k++) {
        char *p = core_jsonpath_index(tp, k);
        const json_t *t = json_array_get(turns, k), *e = json_object_get(t, "expect");
        need_strings(c, t, "say", p);
        if (e != NULL && !json_is_object(e))
            problem(c, p, "\"expect\" must be an object (bot_contains, status, intent)");
        check_expect(c, e, p);
        free(p);
    }
    const char *slot;
    const json_t *values;
    json_object_foreach((json_t *)json_object_get(g, "slots"), slot, values)
    {
        char *sp = core_jsonpath_key(path, "slots");
        need_strings(c, json_object_get(g, "slots"), slot, sp);
        free(sp);
    }
    free(tp);
    free(path);
}

static void check_extra(check_t *c, const json_t *script, const char *key)
{
    const json_t *x = json_object_get(script, key);
    if (x == NULL)
        return;
    const json_t *share = json_object_get(x, "share");
    if (!json_is_number(share) || json_number_value(share) < 0 || json_number_value(share) > 1)
        problem(c, key, "needs \"share\" between 0 and 1");
    need_strings(c, x, "say", key);
}

int sim_load_script(sim_t *s, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    core_err_t err = {0};
    if (core_file_read(path, SCRIPT_MAX_BYTES, &text, &len, &err) != 0) {
        fprintf(stderr, "simulate: %s\n", err.msg); /* the message names the file */
        return -1;
    }
    json_error_t je;
    s->script = json_loadb(text, len, 0, &je);
    if (s->script == NULL) {
        fprintf(stderr, "%s:%d:%d: %s\n", path, je.line, je.column, je.text);
        free(text);
        return -1;
    }
    if (!json_is_object(s->script)) {
        fprintf(stderr, "%s:1:1: the script must be a JSON object\n", path);
        json_decref(s->script);
        s->script = NULL;
        free(text);
        return -1;
    }
    check_t c = {.file = path, .pos = core_jsonpos_new(text, len), .out = stderr, .prefix = ""};
    s->goals = json_object_get(s->script, "goals");
    if (!json_is_array(s->goals) || json_array_size(s->goals) == 0)
        problem(&c, "goals", "needs a non-empty array of goals");
    for (size_t i = 0; i < json_array_size(s->goals); i++)
        check_goal(&c, json_array_get(s->goals, i), i);
    check_extra(&c, s->script, "off_script");
    check_extra(&c, s->script, "hostile");
    core_jsonpos_free(c.pos);
    free(text);
    return c.problems ? -1 : 0;
}

/* splitmix64: small, fast and the same everywhere, so plans repeat. */
static uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *x)
{
    return (double)(next(x) >> 11) / 9007199254740992.0;
}

static const char *pick(uint64_t *x, const json_t *strings)
{
    return json_string_value(json_array_get(strings, next(x) % json_array_size(strings)));
}

/* "where is {ref}" with {ref} drawn once per conversation from slots. */
static char *render(const char *tmpl, const json_t *slots, json_t *chosen, uint64_t *x)
{
    core_buf_t b;
    core_buf_init(&b, 64 * 1024);
    for (const char *p = tmpl; *p;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        char name[128];
        if (end != NULL && (size_t)(end - p) < sizeof(name)) {
            snprintf(name, sizeof(name), "%.*s", (int)(end - p - 1), p + 1);
            const json_t *values = json_object_get(slots, name);
            if (values != NULL) {
                if (json_object_get(chosen, name) == NULL)
                    json_object_set_new(chosen, name, json_string(pick(x, values)));
                core_buf_append_str(&b, json_string_value(json_object_get(chosen, name)));
                p = end + 1;
                continue;
            }
        }
        core_buf_append(&b, p++, 1);
    }
    return core_buf_steal(&b, NULL);
}

/* The expectation with {slot} references rendered as the turns were (an
 * owned copy), or NULL. */
static json_t *render_expect(const json_t *expect, const json_t *slots, json_t *chosen, uint64_t *x)
{
    if (expect == NULL)
        return NULL;
    json_t *out = json_deep_copy(expect);
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) if (json_is_string(v))
    {
        char *r = render(json_string_value(v), slots, chosen, x);
        json_string_set(v, r);
        free(r);
    }
    return out;
}

static void add_turn(sim_conv_t *cv, char *text, const char *kind, json_t *expect, int index)
{
    cv->turns = core_xrealloc(cv->turns, (cv->n_turns + 1) * sizeof(*cv->turns));
    cv->turns[cv->n_turns++] = (sim_turn_t){text, kind, expect, index};
}

/* Maybe an off-script or hostile turn before a script turn. */
static void maybe_extra(sim_t *s, sim_conv_t *cv, uint64_t *x, const char *key)
{
    const json_t *e = json_object_get(s->script, key);
    if (e != NULL && uniform(x) < json_number_value(json_object_get(e, "share")))
        add_turn(cv, core_xstrdup(pick(x, json_object_get(e, "say"))),
                 strcmp(key, "hostile") == 0 ? "hostile" : "off_script", NULL, -1);
}

void sim_plan(sim_t *s)
{
    double total = 0;
    for (size_t g = 0; g < json_array_size(s->goals); g++) {
        const json_t *w = json_object_get(json_array_get(s->goals, g), "weight");
        total += w ? json_number_value(w) : 1;
    }
    s->plan = core_xcalloc((size_t)s->conversations, sizeof(*s->plan));
    s->results = core_xcalloc((size_t)s->conversations, sizeof(*s->results));
    uint64_t x = s->seed * 0x2545f4914f6cdd1dull + 1;
    for (long i = 0; i < s->conversations; i++) {
        sim_conv_t *cv = &s->plan[i];
        double r = uniform(&x) * total, acc = 0;
        size_t g = 0;
        for (; g + 1 < json_array_size(s->goals); g++) {
            const json_t *w = json_object_get(json_array_get(s->goals, g), "weight");
            if (r < (acc += w ? json_number_value(w) : 1))
                break;
        }
        cv->goal = g;
        const json_t *goal = json_array_get(s->goals, g), *turns = json_object_get(goal, "turns");
        json_t *chosen = json_object();
        for (size_t k = 0; k < json_array_size(turns); k++) {
            const json_t *t = json_array_get(turns, k);
            maybe_extra(s, cv, &x, "off_script");
            maybe_extra(s, cv, &x, "hostile");
            const json_t *slots = json_object_get(goal, "slots");
            char *text = render(pick(&x, json_object_get(t, "say")), slots, chosen, &x);
            add_turn(cv, text, "script",
                     render_expect(json_object_get(t, "expect"), slots, chosen, &x), (int)k);
        }
        json_decref(chosen);
        snprintf(s->results[i].status, sizeof(s->results[i].status), "active");
    }
}

void sim_free_plan(sim_t *s)
{
    for (long i = 0; s->plan != NULL && i < s->conversations; i++) {
        for (size_t k = 0; k < s->plan[i].n_turns; k++) {
            free(s->plan[i].turns[k].text);
            json_decref(s->plan[i].turns[k].expect);
        }
        free(s->plan[i].turns);
    }
    free(s->plan);
    free(s->results);
}
