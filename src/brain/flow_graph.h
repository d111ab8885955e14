/* flow_graph.h — the whole flowset's node graph in one numbering, goto and
 * call edges included, shared by flow_graph.c (the graph, which called flows
 * can return within a turn, and the rings that name a cycle in a message)
 * and flow_cycles.c (the cycle checks built on it). Private to src/brain. */
#ifndef CHORUS_FLOW_GRAPH_H
#define CHORUS_FLOW_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "brain/flow_int.h"

/* The whole set's nodes in one numbering: flow fi's node ni is at[fi] + ni.
 * A frame is one call of a flow: the nodes a turn walks from the flow's
 * start, through gotos too, up to the node that finishes it and so returns
 * to the caller's `next`. ret says, for the graph in hand (the nodes that
 * are off it wait), which flows can return without waiting; a call to one
 * has its `next` as a successor, as a say has. */
typedef struct {
    const brain_flowset_t *fs;
    size_t *at;      /* first global number of each flow */
    uint16_t *flow;  /* the flow of each global number */
    size_t n;        /* nodes in all */
    uint8_t *ret;    /* per flow: a call of it can return over nodes not off */
    uint8_t *back;   /* per node: can reach the end of its frame over nodes not off */
    size_t *calls;   /* the call nodes, grouped by the flow they call */
    size_t *call_at; /* n_flows + 1 offsets into calls, by called flow */
    size_t n_calls;  /* 0: no frame work at all */
    size_t *pred;    /* frame predecessors of each node (a call's by its next) */
    size_t *pred_at; /* n + 1 offsets into pred */
    size_t *prev;    /* flow__walk: each node's predecessor + 1, 0 not reached */
    size_t *queue;   /* flow__walk, flow__frames_returns: breadth-first queue */
} gnodes_t;

/* A cycle's (or a way's) global node numbers in order, for its message; free(at) frees it. */
typedef struct {
    size_t *at;
    size_t len, cap;
} ring_t;

/* The k-th key node i is listed under: >= 0 a key, -2 to pass over item k,
 * -1 after the last. */
typedef long (*flow__key_fn)(const gnodes_t *g, size_t i, size_t k);
/* Groups the nodes by the keys key_at lists each under, as one array cut
 * by key: key x's nodes are node[at[x]] .. node[at[x + 1]] (both owned). */
void flow__group_nodes(const gnodes_t *g, flow__key_fn key_at, size_t n_keys, size_t **at,
                       size_t **node);

/* Numbers every node of fs (borrowed: it must outlive g) and groups the calls. */
void flow__gnodes_init(gnodes_t *g, const brain_flowset_t *fs);
/* Frees what flow__gnodes_init allocated. */
void flow__gnodes_dispose(gnodes_t *g);

/* The node behind global number i. */
static inline const node_t *flow__gnode(const gnodes_t *g, size_t i)
{
    return &g->fs->flows[g->flow[i]].nodes[i - g->at[g->flow[i]]];
}

/* The global number of flow f's start, SIZE_MAX when it has none. */
static inline size_t flow__gstart(const gnodes_t *g, uint16_t f)
{
    uint16_t j = g->fs->flows[f].start;
    return j == BRAIN_NONE ? SIZE_MAX : g->at[f] + j;
}

/* Successor slot k of global node i, goto and call edges included; SIZE_MAX: none. */
size_t flow__gsucc(const gnodes_t *g, size_t i, size_t k);

/* As flow__gsucc on a turn that does not wait: a skipped ask goes on by `next`, not `on_fail`. */
static inline size_t flow__spin_succ(const gnodes_t *g, size_t i, size_t k)
{
    return flow__gnode(g, i)->kind == NODE_ASK && k > 0 ? SIZE_MAX : flow__gsucc(g, i, k);
}

/* How many successor slots k global node i has, for each *_succ. */
static inline size_t flow__spin_slots(const gnodes_t *g, size_t i)
{
    return flow__succ_slots(flow__gnode(g, i)) + 1;
}

/* As flow__spin_succ, but not into the flow a call runs (that is a frame of its own). */
static inline size_t flow__frame_succ(const gnodes_t *g, size_t i, size_t k)
{
    return flow__gnode(g, i)->kind == NODE_CALL && k > 0 ? SIZE_MAX : flow__spin_succ(g, i, k);
}

/* Fills g->ret and g->back for the graph whose nodes with off set wait. */
void flow__frames_returns(gnodes_t *g, const uint8_t *off);

/* Appends v to r, growing it. */
void flow__ring_push(ring_t *r, size_t v);
/* Appends to r a shortest way from -> to (SIZE_MAX: a frame's end) over nodes not off; 0: none. */
int flow__walk(gnodes_t *g, const uint8_t *off, size_t from, size_t to, int frame, ring_t *r);
/* Names a cycle into out, called flows' ways included; returns 1 when it crosses flows. */
int flow__ring_names(gnodes_t *g, const uint8_t *off, const size_t *ring, size_t len, char *out,
                     size_t size);

#endif
