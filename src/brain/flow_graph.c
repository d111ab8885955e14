/* Flow compiler, for part 3b (flow_cycles.c): the whole set's node graph
 * in one numbering, goto and call edges included; which called flows can
 * return within a turn -- a call of one goes on to its `next` in the same
 * turn, so it is no wait -- for the graph of whichever nodes wait; and the
 * rings that name a cycle's nodes in its message, with the way through each
 * called flow that returns on it put in. Contract: flow_graph.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_graph.h"

/* ---- the set's nodes, and the calls that return within a turn ---------------------------- */

/* Successor slot k of global node i: the node's own (for cycles: a call's
 * next only when the called flow can return), then, for a goto, the node
 * it goes to and, for a call, the called flow's start. */
size_t flow__gsucc(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = flow__gnode(g, i);
    size_t own = flow__succ_slots(n);
    if (k < own) {
        uint16_t j = flow__succ_at(n, k, 1);
        if (k == 0 && n->kind == NODE_CALL && n->target_flow != BRAIN_NONE &&
            g->ret[n->target_flow])
            j = n->next;
        return j == BRAIN_NONE ? SIZE_MAX : g->at[g->flow[i]] + j;
    }
    if ((n->kind != NODE_GOTO && n->kind != NODE_CALL) || n->target_flow == BRAIN_NONE)
        return SIZE_MAX;
    if (n->kind == NODE_CALL)
        return flow__gstart(g, n->target_flow);
    uint16_t j = n->target_node != BRAIN_NONE ? n->target_node : g->fs->flows[n->target_flow].start;
    return j == BRAIN_NONE ? SIZE_MAX : g->at[n->target_flow] + j;
}

/* Whether a turn at global node i, passing it without waiting, may finish
 * its flow and so return to the caller: a `return`; a node whose way on may
 * be missing (an action or llm without on_error, when it fails); a call
 * with no next whose flow returns. An end ends the conversation, a handoff
 * stops the bot, and a goto goes on in the same frame: none returns. */
static int finishes(const gnodes_t *g, size_t i)
{
    const node_t *n = flow__gnode(g, i);
    switch (n->kind) {
    case NODE_RETURN:
        return 1;
    case NODE_END:
    case NODE_HANDOFF:
    case NODE_GOTO:
        return 0;
    case NODE_CALL:
        return n->next == BRAIN_NONE && n->target_flow != BRAIN_NONE && g->ret[n->target_flow];
    case NODE_ACTION:
    case NODE_LLM:
        return n->next == BRAIN_NONE || n->alt == BRAIN_NONE;
    default:
        break;
    }
    for (size_t k = 0; k < n->n_cases; k++)
        if (n->case_next[k] == BRAIN_NONE)
            return 1;
    return n->next == BRAIN_NONE;
}

/* One pass over every node's keys: counts them into at[x + 1] when fill is
 * NULL, else places each node at node[fill[x]++]. */
static void group_pass(const gnodes_t *g, flow__key_fn key_at, size_t *at, size_t *fill,
                       size_t *node)
{
    for (size_t i = 0; i < g->n; i++)
        for (size_t k = 0;; k++) {
            long x = key_at(g, i, k);
            if (x == -1)
                break;
            if (x < 0)
                continue;
            if (fill == NULL)
                at[x + 1]++;
            else
                node[fill[x]++] = i;
        }
}

/* A counting sort, so a node listed under many keys (a set that empties
 * many slots) costs its size once, not once per key. */
void flow__group_nodes(const gnodes_t *g, flow__key_fn key_at, size_t n_keys, size_t **at_out,
                       size_t **node_out)
{
    size_t *at = core_xcalloc(n_keys + 2, sizeof(size_t));
    group_pass(g, key_at, at, NULL, NULL);
    for (size_t x = 0; x < n_keys; x++)
        at[x + 1] += at[x];
    size_t *fill = core_xmalloc((n_keys + 1) * sizeof(size_t));
    memcpy(fill, at, (n_keys + 1) * sizeof(size_t));
    size_t *node = core_xmalloc((at[n_keys] + 1) * sizeof(size_t));
    group_pass(g, key_at, at, fill, node);
    free(fill);
    *at_out = at;
    *node_out = node;
}

/* A call node under the flow it calls. */
static long called_flow_at(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = flow__gnode(g, i);
    if (k > 0)
        return -1;
    return n->kind == NODE_CALL && n->target_flow != BRAIN_NONE ? (long)n->target_flow : -2;
}

/* A node under each of its frame successors (a call's next whether or not
 * its flow returns: flow__frames_returns checks that). */
static long frame_pred_at(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = flow__gnode(g, i);
    if (k >= flow__spin_slots(g, i))
        return -1;
    size_t j;
    if (n->kind == NODE_CALL)
        j = k == 0 && n->next != BRAIN_NONE ? g->at[g->flow[i]] + n->next : SIZE_MAX;
    else
        j = flow__frame_succ(g, i, k);
    return j == SIZE_MAX ? -2 : (long)j;
}

void flow__gnodes_init(gnodes_t *g, const brain_flowset_t *fs)
{
    *g = (gnodes_t){.fs = fs, .at = core_xcalloc(fs->n_flows + 1, sizeof(size_t))};
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        g->at[fi] = g->n;
        g->n += fs->flows[fi].n_nodes;
    }
    g->flow = core_xmalloc((g->n + 1) * sizeof(uint16_t));
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        for (size_t ni = 0; ni < fs->flows[fi].n_nodes; ni++)
            g->flow[g->at[fi] + ni] = (uint16_t)fi;
    g->ret = core_xcalloc(fs->n_flows + 1, 1);
    g->back = core_xcalloc(g->n + 1, 1);
    g->prev = core_xcalloc(g->n + 1, sizeof(size_t));
    g->queue = core_xmalloc((g->n + 1) * sizeof(size_t));
    flow__group_nodes(g, called_flow_at, fs->n_flows, &g->call_at, &g->calls);
    g->n_calls = g->call_at[fs->n_flows];
    if (g->n_calls > 0)
        flow__group_nodes(g, frame_pred_at, g->n, &g->pred_at, &g->pred);
}

void flow__gnodes_dispose(gnodes_t *g)
{
    free(g->pred);
    free(g->pred_at);
    free(g->calls);
    free(g->call_at);
    free(g->queue);
    free(g->prev);
    free(g->back);
    free(g->ret);
    free(g->flow);
    free(g->at);
}

static void back_push(gnodes_t *g, size_t i, size_t *tail)
{
    g->back[i] = 1;
    g->queue[(*tail)++] = i;
}

/* Fills back and ret for the graph whose waiting nodes are off: backwards
 * from the nodes that finish, over frame edges; a call's next edge counts
 * once its flow is known to return, which may let callers of its own flow
 * return in turn (calls of calls). A flow that can return only by calling
 * itself does not return: recursion adds no way out. Linear in the graph. */
void flow__frames_returns(gnodes_t *g, const uint8_t *off)
{
    if (g->n_calls == 0)
        return;
    size_t head = 0, tail = 0;
    memset(g->ret, 0, g->fs->n_flows);
    memset(g->back, 0, g->n);
    for (size_t i = 0; i < g->n; i++)
        if (!off[i] && finishes(g, i))
            back_push(g, i, &tail);
    while (head < tail) {
        size_t v = g->queue[head++];
        uint16_t f = g->flow[v];
        if (v == flow__gstart(g, f) && !g->ret[f]) {
            g->ret[f] = 1;
            for (size_t k = g->call_at[f]; k < g->call_at[f + 1]; k++) {
                size_t c = g->calls[k];
                uint16_t next = flow__gnode(g, c)->next;
                if (!off[c] && !g->back[c] &&
                    (next == BRAIN_NONE || g->back[g->at[g->flow[c]] + next]))
                    back_push(g, c, &tail);
            }
        }
        for (size_t k = g->pred_at[v]; k < g->pred_at[v + 1]; k++) {
            size_t p = g->pred[k];
            const node_t *n = flow__gnode(g, p);
            if (off[p] || g->back[p] || (n->kind == NODE_CALL && !g->ret[n->target_flow]))
                continue;
            back_push(g, p, &tail);
        }
    }
}

/* ---- rings: the nodes of a cycle, for its message ---------------------------------------- */

void flow__ring_push(ring_t *r, size_t v)
{
    if (r->len == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->at = core_xrealloc(r->at, r->cap * sizeof(size_t));
    }
    r->at[r->len++] = v;
}

/* Appends to r the shortest way from `from` to `to` (SIZE_MAX: to any node
 * that finishes its frame), both included, over nodes not off, by frame
 * edges (frame) or by every edge a turn may take. Returns 0 when there is
 * none, r unchanged. */
int flow__walk(gnodes_t *g, const uint8_t *off, size_t from, size_t to, int frame, ring_t *r)
{
    size_t head = 0, tail = 0;
    memset(g->prev, 0, g->n * sizeof(size_t));
    g->prev[from] = from + 1;
    g->queue[tail++] = from;
    while (head < tail) {
        size_t v = g->queue[head++];
        if (to == SIZE_MAX ? finishes(g, v) : v == to) {
            size_t len = 1, first = r->len, u = v;
            for (; u != from; u = g->prev[u] - 1)
                len++;
            for (size_t d = 0; d < len; d++)
                flow__ring_push(r, 0);
            u = v;
            for (size_t d = len; d-- > 0; u = g->prev[u] - 1)
                r->at[first + d] = u;
            return 1;
        }
        for (size_t k = 0; k < flow__spin_slots(g, v); k++) {
            size_t j = frame ? flow__frame_succ(g, v, k) : flow__spin_succ(g, v, k);
            if (j == SIZE_MAX || off[j] || g->prev[j] != 0)
                continue;
            g->prev[j] = v + 1;
            g->queue[tail++] = j;
        }
    }
    return 0;
}

/* Whether the ring steps from in[d] over a call's return: the call, then
 * its next (or anything but the called flow's start, when it has none and
 * so finishes its own frame too). */
static int returns_at(const gnodes_t *g, const size_t *in, size_t len, size_t d, int open)
{
    const node_t *n = flow__gnode(g, in[d]);
    if (n->kind != NODE_CALL || n->target_flow == BRAIN_NONE || !g->ret[n->target_flow])
        return 0;
    if (n->next != BRAIN_NONE)
        return d + 1 < len && in[d + 1] == g->at[g->flow[in[d]]] + n->next;
    return d + 1 < len ? in[d + 1] != flow__gstart(g, n->target_flow) : open;
}

/* Appends ring in[0 .. len) to out, with the way through each called flow
 * that returns on it put in after the call, calls of calls too (depth: the
 * calls being shown; a flow already among them is not shown again). open:
 * in is a frame's way to its end, whose last node returns. */
static void ring_expand(gnodes_t *g, const uint8_t *off, const size_t *in, size_t len, ring_t *out,
                        uint16_t *chain, int depth, int open)
{
    for (size_t d = 0; d < len; d++) {
        flow__ring_push(out, in[d]);
        if (!returns_at(g, in, len, d, open) || depth >= BRAIN_STACK_MAX)
            continue;
        uint16_t f = flow__gnode(g, in[d])->target_flow;
        int shown = 0;
        for (int k = 0; k < depth; k++)
            shown |= chain[k] == f;
        ring_t way = {0};
        if (!shown && flow__walk(g, off, flow__gstart(g, f), SIZE_MAX, 1, &way)) {
            chain[depth] = f;
            ring_expand(g, off, way.at, way.len, out, chain, depth + 1, 1);
        }
        free(way.at);
    }
}

/* Writes a cycle's nodes, ring[0] -> ... -> ring[len - 1] (which repeats
 * ring[0]), into out, cut to fit with "..."; each as flow.node when the cycle passes
 * through more than one flow, which it returns (1) so the message can say
 * so (a goto back into the same flow is still one flow's loop). */
static int cycle_names(const gnodes_t *g, const size_t *ring, size_t len, char *out, size_t size)
{
    int across = 0;
    for (size_t d = 1; d < len && !across; d++)
        across = g->flow[ring[d]] != g->flow[ring[0]];
    size_t used = 0, d = 0;
    out[0] = '\0';
    for (; d < len && used + 2 < size; d++) {
        size_t k = ring[d];
        used += (size_t)snprintf(out + used, size - used, "%s%s%s%s",
                                 across ? g->fs->flows[g->flow[k]].name : "", across ? "." : "",
                                 flow__gnode(g, k)->name, d + 1 < len ? " -> " : "");
    }
    if ((d < len || used >= size) && size > 4) /* cut: say so rather than end mid-way */
        memcpy(out + size - 4, "...", 4);
    return across;
}

/* Names ring, each call that returns on it followed by the way through its
 * flow; returns what cycle_names does. */
int flow__ring_names(gnodes_t *g, const uint8_t *off, const size_t *ring, size_t len, char *out,
                     size_t size)
{
    ring_t full = {0};
    uint16_t chain[BRAIN_STACK_MAX];
    ring_expand(g, off, ring, len, &full, chain, 0, 0);
    int across = cycle_names(g, full.at, full.len, out, size);
    free(full.at);
    return across;
}
