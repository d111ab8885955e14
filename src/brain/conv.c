/* Conversation state: a fixed struct plus one slot buffer of "name\0value\0"
 * pairs (a handful of short slots, so a linear scan beats any index and
 * keeps an idle conversation small). JSON uses names, never indices, so a
 * saved conversation survives restarts and flow reloads. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

void brain_conv_init(brain_conv_t *c, const brain_flowset_t *fs, brain_channel_t channel,
                     int64_t now_us)
{
    memset(c, 0, sizeof(*c));
    c->version = fs ? fs->version : 0;
    c->flow = c->node = BRAIN_NONE;
    c->channel = (uint8_t)channel;
    c->status = BRAIN_ST_ACTIVE;
    c->created_us = c->last_us = now_us;
}

void brain_conv_dispose(brain_conv_t *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    c->slots = NULL;
    c->slots_len = c->slots_cap = 0;
}

size_t brain_conv_memory(const brain_conv_t *c)
{
    return sizeof(*c) + c->slots_cap;
}

/* Finds name in the buffer; returns the offset of the pair or -1. */
static long slot_offset(const brain_conv_t *c, const char *name)
{
    uint32_t i = 0;
    while (i < c->slots_len) {
        const char *n = c->slots + i;
        size_t nl = strlen(n);
        if (strcmp(n, name) == 0)
            return (long)i;
        i += (uint32_t)(nl + 1);
        i += (uint32_t)(strlen(c->slots + i) + 1);
    }
    return -1;
}

const char *brain_conv_slot(const brain_conv_t *c, const char *name)
{
    long off = slot_offset(c, name);
    if (off < 0)
        return NULL;
    return c->slots + off + strlen(c->slots + off) + 1;
}

void brain_conv_set_slot(brain_conv_t *c, const char *name, const char *value)
{
    long off = slot_offset(c, name);
    if (off >= 0) {
        size_t nl = strlen(c->slots + off) + 1;
        size_t vl = strlen(c->slots + off + nl) + 1;
        if (value != NULL && strlen(value) + 1 == vl) { /* same size: overwrite in place */
            memcpy(c->slots + off + nl, value, vl);
            return;
        }
        memmove(c->slots + off, c->slots + off + nl + vl, c->slots_len - (size_t)off - nl - vl);
        c->slots_len -= (uint32_t)(nl + vl);
    }
    if (value == NULL)
        return;
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    if (c->slots_len + nl + vl > c->slots_cap) {
        size_t cap = c->slots_len + nl + vl;
        cap = (cap + 31) & ~(size_t)31;
        c->slots = core_xrealloc(c->slots, cap);
        c->slots_cap = (uint32_t)cap;
    }
    memcpy(c->slots + c->slots_len, name, nl);
    memcpy(c->slots + c->slots_len + nl, value, vl);
    c->slots_len += (uint32_t)(nl + vl);
}

int64_t brain_conv_deadline(const brain_flowset_t *fs, const brain_conv_t *c)
{
    if (c->status != BRAIN_ST_ACTIVE)
        return 0;
    return c->last_us + fs->settings.idle_timeout_us;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static const char *status_names[] = {"active", "ended", "handoff"};

static json_t *name_or_null(const brain_flowset_t *fs, uint16_t flow, uint16_t node)
{
    if (flow == BRAIN_NONE || flow >= fs->n_flows)
        return json_null();
    if (node == BRAIN_NONE)
        return json_string(fs->flows[flow].name);
    return json_string(fs->flows[flow].nodes[node].name);
}

int brain_conv_to_json(const brain_flowset_t *fs, const brain_conv_t *c, core_buf_t *out)
{
    json_t *o = json_object();
    json_object_set_new(o, "flow", name_or_null(fs, c->flow, BRAIN_NONE));
    json_object_set_new(o, "node",
                        c->node == BRAIN_NONE ? json_null() : name_or_null(fs, c->flow, c->node));
    json_t *stack = json_array();
    for (int i = 0; i < c->depth; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "flow", name_or_null(fs, c->stack_flow[i], BRAIN_NONE));
        json_object_set_new(e, "node",
                            c->stack_node[i] == BRAIN_NONE
                                ? json_null()
                                : name_or_null(fs, c->stack_flow[i], c->stack_node[i]));
        json_array_append_new(stack, e);
    }
    json_object_set_new(o, "stack", stack);
    json_object_set_new(o, "channel", json_string(brain_channel_name(c->channel)));
    json_object_set_new(o, "status", json_string(status_names[c->status % 3]));
    json_object_set_new(o, "wait", json_integer(c->wait));
    json_object_set_new(o, "attempts", json_integer(c->attempts));
    json_object_set_new(o, "fallbacks", json_integer(c->fallbacks));
    json_object_set_new(o, "turns", json_integer(c->turns));
    json_object_set_new(o, "created_us", json_integer(c->created_us));
    json_object_set_new(o, "last_us", json_integer(c->last_us));
    json_t *slots = json_object();
    for (uint32_t i = 0; i < c->slots_len;) {
        const char *n = c->slots + i;
        const char *v = n + strlen(n) + 1;
        int d = brain__slot_find(fs, n);
        /* sensitive values (card numbers...) live in memory only, never in the store */
        if (d < 0 || !fs->slots[d].sensitive)
            json_object_set_new(slots, n, json_string(v));
        i = (uint32_t)(v + strlen(v) + 1 - c->slots);
    }
    json_object_set_new(o, "slots", slots);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return CORE_ERR_INTERNAL;
    int rc = core_buf_append_str(out, s);
    free(s);
    return rc;
}

static void resolve(const brain_flowset_t *fs, json_t *flow, json_t *node, uint16_t *fi,
                    uint16_t *ni)
{
    *fi = *ni = BRAIN_NONE;
    int f = json_is_string(flow) ? brain__flow_find(fs, json_string_value(flow)) : -1;
    if (f < 0)
        return;
    *fi = (uint16_t)f;
    int n = json_is_string(node) ? brain__node_find(&fs->flows[f], json_string_value(node)) : -1;
    *ni = n < 0 ? BRAIN_NONE : (uint16_t)n;
}

static long long int_of(json_t *o, const char *key, long long max)
{
    long long v = json_integer_value(json_object_get(o, key));
    return v < 0 ? 0 : (v > max ? max : v);
}

int brain_conv_from_json(const brain_flowset_t *fs, const char *json, size_t len, brain_conv_t *c,
                         core_err_t *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return core_err_set(err, CORE_ERR_INVALID, "conversation state: %s",
                            o ? "not an object" : jerr.text);
    }
    brain_channel_t ch = BRAIN_CH_DEFAULT;
    const char *chn = json_string_value(json_object_get(o, "channel"));
    if (chn != NULL)
        brain_channel_parse(chn, &ch);
    brain_conv_init(c, fs, ch, json_integer_value(json_object_get(o, "created_us")));
    c->last_us = json_integer_value(json_object_get(o, "last_us"));
    resolve(fs, json_object_get(o, "flow"), json_object_get(o, "node"), &c->flow, &c->node);
    if (c->flow != BRAIN_NONE && c->node == BRAIN_NONE)
        c->flow = BRAIN_NONE; /* the node went away in a reload: idle, slots kept */
    json_t *stack = json_object_get(o, "stack");
    for (size_t i = 0; i < json_array_size(stack) && c->depth < BRAIN_STACK_MAX; i++) {
        json_t *e = json_array_get(stack, i);
        resolve(fs, json_object_get(e, "flow"), json_object_get(e, "node"),
                &c->stack_flow[c->depth], &c->stack_node[c->depth]);
        if (c->stack_flow[c->depth] != BRAIN_NONE)
            c->depth++;
    }
    const char *st = json_string_value(json_object_get(o, "status"));
    for (int i = 0; st != NULL && i < 3; i++)
        if (strcmp(st, status_names[i]) == 0)
            c->status = (uint8_t)i;
    c->wait = c->flow == BRAIN_NONE ? 0 : (uint8_t)int_of(o, "wait", 10);
    c->attempts = (uint8_t)int_of(o, "attempts", 255);
    c->fallbacks = (uint8_t)int_of(o, "fallbacks", 255);
    c->turns = (uint32_t)int_of(o, "turns", UINT32_MAX);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(o, "slots"), key, v)
    {
        if (json_is_string(v))
            brain_conv_set_slot(c, key, json_string_value(v));
    }
    json_decref(o);
    return 0;
}

int brain_conv_migrate(const brain_flowset_t *from, const brain_flowset_t *to, brain_conv_t *c,
                       core_err_t *err)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    int rc = brain_conv_to_json(from, c, &b);
    if (rc == 0) {
        brain_conv_t next;
        rc = brain_conv_from_json(to, b.data, b.len, &next, err);
        if (rc == 0) {
            brain_conv_dispose(c);
            *c = next;
        }
    }
    core_buf_dispose(&b);
    return rc;
}
