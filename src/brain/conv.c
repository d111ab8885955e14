/* Conversation state: a fixed struct plus one slot buffer of "name\0value\0"
 * pairs (a handful of short slots, so a linear scan beats any index and
 * keeps an idle conversation small). JSON uses names, never indices, so a
 * saved conversation survives restarts and flow reloads. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"
#include "brain/interp_int.h"

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

/* The pair at offset *i of the buffer ("name\0value\0"): sets *value and
 * *vlen, moves *i past it and returns the name. */
static const char *next_pair(const brain_conv_t *c, uint32_t *i, const char **value, size_t *vlen)
{
    const char *n = c->slots + *i;
    *value = n + strlen(n) + 1;
    *vlen = strlen(*value);
    *i = (uint32_t)(*value + *vlen + 1 - c->slots);
    return n;
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

/* The flow's name (node BRAIN_NONE) or the node's as a JSON string, null
 * when there is none. Returns nonzero if the buffer refused. */
static int put_name(core_buf_t *b, const brain_flowset_t *fs, uint16_t flow, uint16_t node)
{
    const char *name = NULL;
    if (flow != BRAIN_NONE && flow < fs->n_flows)
        name = node == BRAIN_NONE ? fs->flows[flow].name : fs->flows[flow].nodes[node].name;
    /* names come from flow files jansson has read, so they are UTF-8 */
    if (name != NULL && core_buf_json_str(b, name, strlen(name)) == 0)
        return 0;
    return core_buf_append_lit(b, "null");
}

/* "flow":..,"node":.. of the current position or a stack frame. */
static int put_position(core_buf_t *b, const brain_flowset_t *fs, uint16_t flow, uint16_t node)
{
    int bad = core_buf_append_lit(b, "\"flow\":") != 0;
    bad |= put_name(b, fs, flow, BRAIN_NONE) != 0;
    bad |= core_buf_append_lit(b, ",\"node\":") != 0;
    if (node == BRAIN_NONE)
        bad |= core_buf_append_lit(b, "null") != 0;
    else
        bad |= put_name(b, fs, flow, node) != 0;
    return bad;
}

/* ,"key":n (key_lit is ,"key": as a literal) */
static int put_int(core_buf_t *b, const char *key_lit, size_t key_len, long long v)
{
    int bad = core_buf_append(b, key_lit, key_len) != 0;
    return bad | (core_buf_json_int(b, v) != 0);
}
#define PUT_INT(b, key, v) put_int((b), ",\"" key "\":", sizeof(key) + 3, (v))

/* ,"slots":{..}. A pair jansson would refuse (not UTF-8) is left out, as it
 * was when jansson built this; sensitive values (card numbers...) live in
 * memory only, never in the store. */
static int put_slots(core_buf_t *b, const brain_flowset_t *fs, const brain_conv_t *c)
{
    int bad = core_buf_append_lit(b, ",\"slots\":{") != 0;
    int first = 1;
    for (uint32_t i = 0; i < c->slots_len;) {
        const char *v;
        size_t vl;
        const char *n = next_pair(c, &i, &v, &vl);
        int d = brain__slot_find(fs, n);
        if (d >= 0 && fs->slots[d].sensitive)
            continue;
        size_t mark = b->len;
        int rc = first ? 0 : core_buf_append_lit(b, ",");
        if (rc == 0)
            rc = core_buf_json_key(b, n);
        if (rc == 0)
            rc = core_buf_json_str(b, v, vl);
        if (rc != 0 && b->data != NULL) {
            b->len = mark;
            b->data[mark] = '\0';
        }
        bad |= rc != 0 && rc != CORE_ERR_INVALID;
        first = first && rc != 0;
    }
    return bad | (core_buf_append_lit(b, "}") != 0);
}

int brain_conv_has_sensitive(const brain_flowset_t *fs, const brain_conv_t *c)
{
    for (uint32_t i = 0; i < c->slots_len;) {
        const char *v;
        size_t vl;
        int d = brain__slot_find(fs, next_pair(c, &i, &v, &vl));
        if (vl > 0 && d >= 0 && fs->slots[d].sensitive)
            return 1;
    }
    return 0;
}

/* Written straight into out, since every turn saves it: the text jansson
 * made of the same object, key for key. */
int brain_conv_to_json(const brain_flowset_t *fs, const brain_conv_t *c, core_buf_t *out)
{
    size_t start = out->len;
    int bad = core_buf_append_lit(out, "{") != 0;
    bad |= put_position(out, fs, c->flow, c->node);
    bad |= core_buf_append_lit(out, ",\"stack\":[") != 0;
    for (int i = 0; i < c->depth; i++) {
        bad |= (i > 0 ? core_buf_append_lit(out, ",{") : core_buf_append_lit(out, "{")) != 0;
        bad |= put_position(out, fs, c->stack_flow[i], c->stack_node[i]);
        bad |= core_buf_append_lit(out, "}") != 0;
    }
    const char *ch = brain_channel_name(c->channel), *st = status_names[c->status % 3];
    bad |= core_buf_append_lit(out, "],\"channel\":") != 0;
    bad |= core_buf_json_str(out, ch, strlen(ch)) != 0;
    bad |= core_buf_append_lit(out, ",\"status\":") != 0;
    bad |= core_buf_json_str(out, st, strlen(st)) != 0;
    bad |= PUT_INT(out, "wait", c->wait);
    bad |= PUT_INT(out, "attempts", c->attempts);
    bad |= PUT_INT(out, "fallbacks", c->fallbacks);
    bad |= PUT_INT(out, "turns", c->turns);
    bad |= PUT_INT(out, "created_us", c->created_us);
    bad |= PUT_INT(out, "last_us", c->last_us);
    bad |= put_slots(out, fs, c);
    bad |= core_buf_append_lit(out, "}") != 0;
    if (!bad)
        return 0;
    if (out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return CORE_ERR_LIMIT;
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

/* Whether a conversation can wait at n for what wait says. */
static int waits_at(const node_t *n, int wait)
{
    switch (wait) {
    case WAIT_NONE:
        return 1;
    case WAIT_ASK:
    case WAIT_CONFIRM:
        return n->kind == NODE_ASK;
    case WAIT_CSAT:
        return n->kind == NODE_END && n->csat;
    case WAIT_EFFECT:
        return n->kind == NODE_ACTION || n->kind == NODE_LLM;
    default:
        return 0;
    }
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
    uint16_t lost = BRAIN_NONE; /* the flow whose place was lost, if any */
    if (c->flow != BRAIN_NONE && c->node == BRAIN_NONE) {
        lost = c->flow; /* the node went away in a reload: idle, slots kept */
        c->flow = BRAIN_NONE;
    }
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
    if (c->flow != BRAIN_NONE && !waits_at(&fs->flows[c->flow].nodes[c->node], c->wait)) {
        /* a reload made the node it waits at a node of another kind (its
         * question a message): idle, slots kept, as when the node went away */
        lost = c->flow;
        c->flow = c->node = BRAIN_NONE;
        c->wait = WAIT_NONE;
    }
    if (lost != BRAIN_NONE) {
        if (c->depth > 0) /* inside a call: the flow it began in is the one to redo */
            lost = c->stack_flow[0];
        c->depth = 0;
    }
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
    /* Its next turn says so and starts that flow again (interp.c), rather
     * than take an answer to a question no longer asked for a new request. */
    if (lost != BRAIN_NONE && c->status == BRAIN_ST_ACTIVE)
        brain_conv_set_slot(c, BRAIN_SLOT_RESTART, fs->flows[lost].name);
    json_decref(o);
    return 0;
}

void brain_conv_lose_place(const brain_flowset_t *fs, brain_conv_t *c)
{
    if (c->flow == BRAIN_NONE || c->status != BRAIN_ST_ACTIVE)
        return;
    uint16_t lost = c->depth > 0 ? c->stack_flow[0] : c->flow;
    c->flow = c->node = BRAIN_NONE;
    c->wait = WAIT_NONE;
    c->depth = 0;
    brain_conv_set_slot(c, BRAIN_SLOT_RESTART, fs->flows[lost].name);
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
