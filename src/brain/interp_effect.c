/* The interpreter, part 3: continuing a turn with an effect's result
 * (response fields mapped into slots by JSON pointer, LLM answers stored or
 * said), and parsing slot values from what the user said. */
#define LOG_MODULE "brain"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/interp_int.h"

/* RFC 6901 JSON pointer lookup; returns a borrowed value or NULL. */
static json_t *pointer_get(json_t *root, const char *ptr)
{
    json_t *cur = root;
    if (ptr[0] == '\0')
        return root;
    const char *p = ptr + 1;
    char tok[256];
    for (;;) {
        size_t t = 0;
        while (*p && *p != '/' && t + 1 < sizeof(tok)) {
            if (p[0] == '~' && p[1] == '1') {
                tok[t++] = '/';
                p += 2;
            } else if (p[0] == '~' && p[1] == '0') {
                tok[t++] = '~';
                p += 2;
            } else {
                tok[t++] = *p++;
            }
        }
        tok[t] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long i = strtol(tok, &end, 10);
            cur = (*end == '\0' && t > 0 && i >= 0) ? json_array_get(cur, (size_t)i) : NULL;
        } else {
            return NULL;
        }
        if (cur == NULL || *p == '\0')
            return cur;
        p++;
    }
}

static char *json_text(json_t *v)
{
    if (json_is_string(v))
        return core_xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return core_xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return core_xasprintf("%.15g", json_real_value(v));
    if (json_is_boolean(v))
        return core_xstrdup(json_is_true(v) ? "yes" : "no");
    if (json_is_null(v) || v == NULL)
        return NULL;
    return json_dumps(v, JSON_COMPACT);
}

static int effect_failed(ctx_t *x, const node_t *n, const char *why)
{
    LOG_INFO("effect failed flow=%s node=%s reason=%s", interp__flow(x)->name, n->name, why);
    interp__event(x, "effect_error", why, 0);
    interp__go(x, n->alt);
    return interp__run(x);
}

static int resume_action(ctx_t *x, const node_t *n, const brain_effect_result_t *res)
{
    if (res->error != 0)
        return effect_failed(x, n, res->error == CORE_ERR_TIMEOUT ? "timeout" : "transport");
    if (n->status_slot >= 0) {
        char st[16];
        snprintf(st, sizeof(st), "%d", res->status);
        brain_conv_set_slot(x->conv, x->fs->slots[n->status_slot].name, st);
    }
    if (res->status < 200 || res->status > 299)
        return effect_failed(x, n, "status");
    if (n->n_maps > 0) {
        json_error_t jerr;
        json_t *root = res->body ? json_loadb(res->body, res->body_len, 0, &jerr) : NULL;
        if (root == NULL)
            return effect_failed(x, n, "malformed_json");
        for (size_t i = 0; i < n->n_maps; i++) {
            char *v = json_text(pointer_get(root, n->maps[i].pointer));
            if (v != NULL) /* conversation state stays small */
                v[core_utf8_cut(v, strlen(v), BRAIN_SLOT_VALUE_MAX)] = '\0';
            brain_conv_set_slot(x->conv, x->fs->slots[n->maps[i].slot].name, v);
            free(v);
        }
        json_decref(root);
    }
    interp__go(x, n->next);
    return interp__run(x);
}

static int resume_llm(ctx_t *x, const node_t *n, const brain_effect_result_t *res)
{
    if (res->error != 0)
        return effect_failed(x, n, res->error == CORE_ERR_TIMEOUT ? "timeout" : "transport");
    if (res->content == NULL && (res->status < 200 || res->status > 299))
        return effect_failed(x, n, "status");
    char *content = core_xstrdup_opt(res->content);
    int pt = res->prompt_tokens, ct = res->completion_tokens;
    if (content == NULL) {
        json_error_t jerr;
        json_t *root = res->body ? json_loadb(res->body, res->body_len, 0, &jerr) : NULL;
        json_t *c = root ? pointer_get(root, "/choices/0/message/content") : NULL;
        if (json_is_string(c))
            content = core_xstrdup(json_string_value(c));
        pt = (int)json_integer_value(pointer_get(root, "/usage/prompt_tokens"));
        ct = (int)json_integer_value(pointer_get(root, "/usage/completion_tokens"));
        json_decref(root);
        if (content == NULL)
            return effect_failed(x, n, "malformed_json");
    }
    interp__event(x, "llm_tokens", "prompt", pt);
    interp__event(x, "llm_tokens", "completion", ct);
    if (n->slot >= 0) {
        content[core_utf8_cut(content, strlen(content), BRAIN_SLOT_VALUE_MAX)] = '\0';
        brain_conv_set_slot(x->conv, x->fs->slots[n->slot].name, content);
    }
    if (n->say_answer)
        interp__emit_text(x, content, 1);
    free(content);
    interp__go(x, n->next);
    return interp__run(x);
}

int interp__resume(ctx_t *x, const brain_effect_result_t *res)
{
    const node_t *n = interp__node(x);
    x->conv->wait = WAIT_NONE;
    if (n == NULL)
        return BRAIN_DONE;
    if (n->kind == NODE_LLM)
        return resume_llm(x, n, res);
    return resume_action(x, n, res);
}

/* ---- slot values --------------------------------------------------------------------------- */

static const char *yes_words[] = {"yes",         "y",  "yeah",   "yep",     "sure", "correct",
                                  "right",       "ok", "okay",   "confirm", "yup",  "absolutely",
                                  "affirmative", "si", "please", NULL};
static const char *no_words[] = {"no",  "n",     "nope", "nah",      "wrong", "incorrect",
                                 "not", "don't", "dont", "negative", NULL};

static int word_in(const char *w, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(w, list[i]) == 0)
            return 1;
    return 0;
}

int brain__yesno(const char *text, size_t len)
{
    char norm[256];
    brain__normalise(text, len, norm, sizeof(norm));
    int yes = 0, no = 0;
    char *save = NULL;
    for (char *w = strtok_r(norm, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        yes |= word_in(w, yes_words);
        no |= word_in(w, no_words);
    }
    return yes && !no ? 1 : (no && !yes ? 0 : -1);
}

static int bounds(const slot_def_t *d, double v, const char **why)
{
    static char msg[160];
    if (d->has_min && v < d->min) {
        snprintf(msg, sizeof(msg), "That should be at least %g.", d->min);
        *why = msg;
        return CORE_ERR_INVALID;
    }
    if (d->has_max && v > d->max) {
        snprintf(msg, sizeof(msg), "That should be at most %g.", d->max);
        *why = msg;
        return CORE_ERR_INVALID;
    }
    return 0;
}

static int parse_text(const slot_def_t *d, const char *text, size_t len, char *out, size_t out_size,
                      const char **why)
{
    while (len > 0 && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0)
        return CORE_ERR_NOT_FOUND;
    if (bounds(d, (double)len, why) != 0) {
        *why = "That answer is too short or too long.";
        return CORE_ERR_INVALID;
    }
    snprintf(out, out_size, "%.*s", (int)core_utf8_cut(text, len, out_size - 1), text);
    return 0;
}

static const ent_type_t builtin_of[] = {
    [SLOT_NUMBER] = ENT_NUMBER, [SLOT_INTEGER] = ENT_NUMBER, [SLOT_DATE] = ENT_DATE,
    [SLOT_TIME] = ENT_TIME,     [SLOT_EMAIL] = ENT_EMAIL,    [SLOT_PHONE] = ENT_PHONE,
    [SLOT_MONEY] = ENT_MONEY,
};

int brain__slot_parse(const slot_def_t *d, const char *text, size_t len, const ent_ctx_t *ref,
                      char *out, size_t out_size, const char **why)
{
    ent_t e;
    int rc;
    switch (d->type) {
    case SLOT_TEXT:
        return parse_text(d, text, len, out, out_size, why);
    case SLOT_YESNO:
        rc = brain__yesno(text, len);
        if (rc < 0)
            return CORE_ERR_NOT_FOUND;
        snprintf(out, out_size, "%s", rc ? "yes" : "no");
        return 0;
    case SLOT_CHOICE:
        rc = ent_choices_find(d->choices, text, len, &e);
        break;
    case SLOT_REGEX:
        rc = ent_pattern_find(d->pattern, text, len, &e);
        break;
    case SLOT_ANY:
        return CORE_ERR_NOT_FOUND;
    default:
        rc = ent_find(builtin_of[d->type], text, len, ref, &e);
        if (rc != 0 && d->type == SLOT_MONEY)
            rc = ent_find(ENT_NUMBER, text, len, ref, &e);
        break;
    }
    if (rc != 0)
        return CORE_ERR_NOT_FOUND;
    if (d->type == SLOT_INTEGER && e.number != floor(e.number)) {
        *why = "Please give a whole number.";
        return CORE_ERR_INVALID;
    }
    if ((d->type == SLOT_NUMBER || d->type == SLOT_INTEGER || d->type == SLOT_MONEY) &&
        bounds(d, e.number, why) != 0)
        return CORE_ERR_INVALID;
    snprintf(out, out_size, "%s", e.value);
    return 0;
}
