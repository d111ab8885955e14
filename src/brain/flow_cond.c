/* Flow compiler, part 2b: branch conditions (slot tests, intent, channel,
 * entity, all/any/not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

/* ---- conditions -------------------------------------------------------------- */

static void cond_list(loader_t *ld, json_t *arr, const char *path, cond_t *c)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        flow__err(ld, path, "must be a non-empty array of conditions");
        return;
    }
    c->kids = core_xcalloc(json_array_size(arr), sizeof(cond_t));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char *ip = core_jsonpath_index(path, i);
        flow__cond(ld, json_array_get(arr, i), ip, &c->kids[c->n_kids++]);
        free(ip);
    }
}

static const struct {
    const char *key;
    cond_op_t op;
} slot_ops[] = {{"exists", OP_EXISTS}, {"equals", OP_EQ}, {"not_equals", OP_NE}, {"in", OP_IN},
                {"gt", OP_GT},         {"gte", OP_GE},    {"lt", OP_LT},         {"lte", OP_LE}};

char *flow__scalar_text(json_t *v)
{
    if (json_is_string(v))
        return core_xstrdup(json_string_value(v));
    if (json_is_boolean(v))
        return core_xstrdup(json_is_true(v) ? "yes" : "no");
    if (json_is_integer(v))
        return core_xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return core_xasprintf("%g", json_real_value(v));
    return NULL;
}

static void cond_slot(loader_t *ld, json_t *v, const char *path, cond_t *c)
{
    char p[512];
    const char *slot = flow__str(ld, v, "slot", path, 1);
    c->kind = COND_SLOT;
    c->slot = slot ? brain__slot_find(ld->fs, slot) : -1;
    if (slot != NULL && c->slot < 0)
        flow__err(ld, flow__path(p, sizeof(p), path, "slot"), "unknown slot \"%s\"", slot);
    int found = 0;
    for (size_t i = 0; i < sizeof(slot_ops) / sizeof(slot_ops[0]); i++) {
        json_t *arg = json_object_get(v, slot_ops[i].key);
        if (arg == NULL)
            continue;
        found++;
        c->op = slot_ops[i].op;
        flow__path(p, sizeof(p), path, slot_ops[i].key);
        if (c->op == OP_EXISTS) {
            if (!json_is_boolean(arg))
                flow__err(ld, p, "must be true or false");
            c->op = json_is_false(arg) ? OP_MISSING : OP_EXISTS;
        } else if (c->op == OP_IN) {
            if (!json_is_array(arg)) {
                flow__err(ld, p, "must be an array of values");
                continue;
            }
            c->values = core_xcalloc(json_array_size(arg) + 1, sizeof(char *));
            for (size_t j = 0; j < json_array_size(arg); j++) {
                char *t = flow__scalar_text(json_array_get(arg, j));
                if (t != NULL)
                    c->values[c->n_values++] = t;
            }
        } else if (c->op == OP_EQ || c->op == OP_NE) {
            c->value = flow__scalar_text(arg);
            if (c->value == NULL)
                flow__err(ld, p, "must be a string, number or boolean");
        } else if (!json_is_number(arg)) {
            flow__err(ld, p, "must be a number");
        } else {
            c->number = json_number_value(arg);
        }
    }
    if (found != 1)
        flow__err(ld, path,
                  "a slot condition needs exactly one of exists, equals, not_equals, "
                  "in, gt, gte, lt, lte");
}

int flow__cond(loader_t *ld, json_t *v, const char *path, cond_t *c)
{
    char p[512];
    memset(c, 0, sizeof(*c));
    c->kind = COND_TRUE;
    if (!json_is_object(v)) {
        flow__err(ld, path, "a condition is an object");
        return CORE_ERR_INVALID;
    }
    flow__check_keys(ld, v, path,
                     "slot|exists|equals|not_equals|in|gt|gte|lt|lte|intent|channel|entity|all|"
                     "any|not");
    if (json_object_get(v, "all") || json_object_get(v, "any")) {
        c->kind = json_object_get(v, "all") ? COND_ALL : COND_ANY;
        const char *k = c->kind == COND_ALL ? "all" : "any";
        cond_list(ld, json_object_get(v, k), flow__path(p, sizeof(p), path, k), c);
    } else if (json_object_get(v, "not")) {
        c->kind = COND_NOT;
        c->kids = core_xcalloc(1, sizeof(cond_t));
        c->n_kids = 1;
        flow__cond(ld, json_object_get(v, "not"), flow__path(p, sizeof(p), path, "not"), c->kids);
    } else if (json_object_get(v, "slot")) {
        cond_slot(ld, v, path, c);
    } else if (json_object_get(v, "intent")) {
        c->kind = COND_INTENT;
        const char *s = flow__str(ld, v, "intent", path, 1);
        c->value = core_xstrdup(s ? s : "");
    } else if (json_object_get(v, "channel")) {
        c->kind = COND_CHANNEL;
        const char *s = flow__str(ld, v, "channel", path, 1);
        brain_channel_t ch;
        if (s != NULL && brain_channel_parse(s, &ch) != 0)
            flow__err(ld, flow__path(p, sizeof(p), path, "channel"),
                      "unknown channel \"%s\" (default, chat, web, sms, voice)", s);
        c->value = core_xstrdup(s ? s : "");
    } else if (json_object_get(v, "entity")) {
        c->kind = COND_ENTITY;
        const char *s = flow__str(ld, v, "entity", path, 1);
        ent_type_t t;
        if (s != NULL && ent_type_parse(s, &t) != 0)
            flow__err(ld, flow__path(p, sizeof(p), path, "entity"), "unknown entity type \"%s\"",
                      s);
        c->value = core_xstrdup(s ? s : "");
    } else {
        flow__err(ld, path, "a condition needs slot, intent, channel, entity, all, any or not");
    }
    return 0;
}
