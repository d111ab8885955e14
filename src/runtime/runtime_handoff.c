/* Humans in the loop, the runtime's part: a person hands a conversation
 * back to the bot at a named node (or closes it), and an observer learns of
 * every finished turn (handoffs, what a customer says while a person has the
 * conversation). The jump is applied inside the conversation's own turn, so
 * it is serialised with the customer's messages, restored from the store
 * when the conversation is not in memory, and rolled back with the turn if
 * the store refuses it. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_int.h"

void runtime_set_observer(runtime_t *rt, runtime_observer_cb cb, void *data)
{
    rt->observer = cb;
    rt->observer_data = data;
}

/* The conversation's state moved to flow/node (status as given) through its
 * JSON form, which resolves names the way a restore does; an unknown name
 * leaves it idle. Returns 0 or an error; c is initialised on success. */
static int state_at(const brain_flowset_t *fs, const brain_conv_t *from, const char *flow,
                    const char *node, const char *status, int64_t now_us, brain_conv_t *c)
{
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    if (from != NULL && brain_conv_to_json(fs, from, &b) != 0) {
        core_buf_dispose(&b);
        return CORE_ERR_INTERNAL;
    }
    json_t *o = from != NULL ? json_loadb(b.data, b.len, 0, NULL) : json_object();
    core_buf_dispose(&b);
    if (o == NULL)
        return CORE_ERR_INTERNAL;
    json_object_set_new(o, "flow", flow ? json_string(flow) : json_null());
    json_object_set_new(o, "node", node ? json_string(node) : json_null());
    json_object_set_new(o, "stack", json_array());
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "wait", json_integer(0));
    json_object_set_new(o, "attempts", json_integer(0));
    json_object_set_new(o, "fallbacks", json_integer(0));
    if (now_us != 0)
        json_object_set_new(o, "last_us", json_integer(now_us));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    core_err_t err = {0};
    int rc = text ? brain_conv_from_json(fs, text, strlen(text), c, &err) : CORE_ERR_INTERNAL;
    free(text);
    return rc;
}

int runtime_node_exists(const runtime_t *rt, const char *flow, const char *node)
{
    if (rt->fs == NULL || flow == NULL || node == NULL)
        return 0;
    brain_conv_t c;
    if (state_at(rt->fs, NULL, flow, node, "active", 0, &c) != 0)
        return 0;
    int ok = c.flow != BRAIN_NONE && c.node != BRAIN_NONE;
    brain_conv_dispose(&c);
    return ok;
}

void rt_handoff_init(rt_turn_t *t, const runtime_turn_in_t *in)
{
    if (in == NULL)
        return;
    t->jump_end = in->jump_end != 0;
    if (in->jump_flow == NULL || in->jump_node == NULL)
        return;
    size_t fl = strlen(in->jump_flow), nl = strlen(in->jump_node);
    t->jump = core_xmalloc(fl + nl + 2);
    memcpy(t->jump, in->jump_flow, fl + 1);
    memcpy(t->jump + fl + 1, in->jump_node, nl + 1);
}

void rt_handoff_jump(rt_turn_t *t)
{
    rt_conv_t *conv = t->conv;
    t->status_before = conv->state.status;
    if (t->jump_end) {
        /* Closed by a person: the brain only sees a timeout of an ended
         * conversation, which says nothing. */
        if (conv->state.status == BRAIN_ST_HANDOFF) {
            conv->state.status = BRAIN_ST_ENDED;
            conv->state.flow = conv->state.node = BRAIN_NONE;
            conv->state.depth = conv->state.wait = 0;
        }
        t->in.event = BRAIN_EV_TIMEOUT;
        return;
    }
    if (t->jump == NULL)
        return;
    const char *flow = t->jump, *node = t->jump + strlen(t->jump) + 1;
    brain_conv_t c;
    if (state_at(conv->fs, &conv->state, flow, node, "active", t->in.now_us, &c) != 0) {
        LOG_WARN("event=release_failed key=%s reason=\"state not movable\"", conv->key);
        return;
    }
    if (c.flow == BRAIN_NONE) /* the node went away in a reload since the check */
        LOG_WARN("event=release_node_gone key=%s flow=%s node=%s", conv->key, flow, node);
    t->released = conv->state.status == BRAIN_ST_HANDOFF;
    brain_conv_dispose(&conv->state);
    conv->state = c;
    t->status_before = c.status; /* a handoff from here is a new one */
    LOG_INFO("event=released_to_bot key=%s flow=%s node=%s", conv->key, flow, node);
}

void rt_handoff_observe(rt_turn_t *t, const runtime_turn_out_t *o)
{
    runtime_t *rt = t->rt;
    if (rt->observer == NULL || t->conv == NULL)
        return;
    const char *text = t->out.guard_in.text ? t->out.guard_in.text : t->in.text;
    size_t len = t->out.guard_in.text ? t->out.guard_in.text_len : t->in.len;
    runtime_observed_t ob = {.turn = o,
                             .conversation_id = t->conv_id ? t->conv_id : t->conv->key,
                             .text = text ? text : "",
                             .len = text ? len : 0,
                             .event = t->in.event,
                             .before = (brain_status_t)t->status_before,
                             .channel = (brain_channel_t)t->channel};
    rt->observer(&ob, rt->observer_data);
}
