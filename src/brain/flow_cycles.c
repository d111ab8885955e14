/* Flow compiler, part 3b: cycles over the whole set's node graph (goto and
 * call edges included) that a turn could go round without waiting for the
 * user -- they would spin it until its step budget -- among them cycles
 * whose only waits are asks without "force" whose slot nothing on the way
 * round clears (such an ask is skipped once its slot is filled). A `call`
 * is a wait only when every way through the called flow to its return
 * waits: one whose flow can return without waiting goes on to its `next`
 * within the turn, so a loop through it spins as any other. The graph, which
 * calls return, and the naming of a cycle are flow_graph.c's. Called by
 * flow__check_graph (flow_check.c). */
#include <stdlib.h>
#include <string.h>

#include "brain/flow_graph.h"

/* ---- cycles through goto and call ------------------------------------------- */

typedef struct {
    size_t node, next;
} gframe_t;

/* Reports the cycle that closes at j, the frames from j's up to the top. */
static void report_open_cycle(gnodes_t *g, const uint8_t *off, loader_t *loaders,
                              const gframe_t *stack, size_t sp, size_t j)
{
    size_t start = sp - 1;
    while (start > 0 && stack[start].node != j)
        start--;
    size_t *ring = core_xmalloc((sp - start + 1) * sizeof(size_t));
    for (size_t d = start; d < sp; d++)
        ring[d - start] = stack[d].node;
    ring[sp - start] = j;
    char names[400];
    int across = flow__ring_names(g, off, ring, sp - start + 1, names, sizeof(names));
    size_t last = stack[sp - 1].node;
    flow__err(&loaders[g->flow[last]], flow__gnode(g, last)->path,
              "cycle %swith no ask in it would never wait for the user: %s",
              across ? "through flows " : "", names);
    free(ring);
}

/* Cycles of nodes that do not wait (every kind but ask and a CSAT end, and
 * a call whose flow can return without either), within a flow or through a
 * goto or a call: each would spin a turn until its step budget. A
 * depth-first search over the whole set on a stack of its own, colour 1 =
 * on the stack, 2 = done; a cycle is named by its nodes, flow.node when it
 * passes through more than one flow. */
static void check_cycles(gnodes_t *g, loader_t *loaders)
{
    uint8_t *colour = core_xcalloc(g->n + 1, 1);
    uint8_t *off = core_xcalloc(g->n + 1, 1);
    gframe_t *stack = core_xmalloc((g->n + 1) * sizeof(gframe_t));
    for (size_t i = 0; i < g->n; i++)
        off[i] = (uint8_t)flow__waits(flow__gnode(g, i));
    flow__frames_returns(g, off);
    for (size_t root = 0; root < g->n; root++) {
        if (colour[root] != 0)
            continue;
        if (off[root]) {
            colour[root] = 2;
            continue;
        }
        size_t sp = 0;
        colour[root] = 1;
        stack[sp++] = (gframe_t){root, 0};
        while (sp > 0) {
            gframe_t *fr = &stack[sp - 1];
            if (fr->next == flow__succ_slots(flow__gnode(g, fr->node)) + 1) {
                colour[fr->node] = 2;
                sp--;
                continue;
            }
            size_t j = flow__gsucc(g, fr->node, fr->next++);
            if (j == SIZE_MAX || colour[j] == 2)
                continue;
            if (colour[j] == 1) {
                report_open_cycle(g, off, loaders, stack, sp, j);
            } else if (off[j]) {
                colour[j] = 2;
            } else {
                colour[j] = 1;
                stack[sp++] = (gframe_t){j, 0};
            }
        }
    }
    free(stack);
    free(off);
    free(colour);
}

/* ---- cycles that wait only at asks already answered ------------------------------------ */

/* An ask without `force` is skipped when its slot has a value, and its slot
 * has one whenever the ask is left by its `next`. So a cycle whose only waits
 * are such asks waits the first time round and spins on the turn after the
 * answer, unless a node on the way round empties the slot again. Only a
 * `set` to null or "" counts as emptying it: a template that may render
 * empty may not, and an action's `map` clears only when the backend says so. */

static int force_wait(const node_t *n)
{
    return (n->kind == NODE_ASK && n->force) || (n->kind == NODE_END && n->csat);
}

static int skippable(const node_t *n)
{
    return n->kind == NODE_ASK && !n->force && n->slot >= 0;
}

static int tpl_is_empty(const brain_tpl_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->parts[i].is_ref || t->parts[i].len > 0)
            return 0;
    return 1;
}

/* Nodes by slot, as one array cut by slot: slot s's are at[s] .. at[s + 1]. */
typedef struct {
    size_t *at;   /* n_slots + 1 offsets into node */
    size_t *node; /* global node numbers */
} by_slot_t;

/* Working arrays for the search, one entry per global node. */
typedef struct {
    gnodes_t *g;
    by_slot_t asks;    /* the asks without force of each slot */
    by_slot_t clears;  /* the set nodes that certainly empty each slot */
    uint8_t *live;     /* an ask without force that may yet be skipped round a cycle */
    uint8_t *waits;    /* force_wait, or an ask no longer live: never walked */
    uint8_t *off;      /* not walked for the slot in hand: waits, or clears the slot */
    size_t *cyclic;    /* gen when found on a cycle of nodes that are not off */
    size_t gen;        /* searches that share a graph and what they found */
    size_t *index;     /* Tarjan: visit order; at most seen: not visited in this search */
    size_t order;      /* Tarjan: the last visit order given, across searches */
    size_t seen;       /* Tarjan: order when this search began */
    size_t *low;       /* Tarjan: lowest index reachable */
    uint8_t *onstack;  /* Tarjan: on the component stack */
    size_t *comp;      /* Tarjan: the component stack; the search's queue */
    gframe_t *frames;  /* Tarjan: the walk's own stack */
    size_t *compid;    /* Tarjan: the component's root, for nodes visited in this search */
    size_t *region;    /* gen when on a spinning flow's way from its start to its return */
    uint16_t *regflow; /* that flow */
    size_t *spun;      /* per flow: gen when a call of it spins */
    size_t *cause;     /* per flow: the call that spins it */
    uint8_t *based;    /* per flow: that call's next leads back round to it */
    uint16_t *fq;      /* the spinning flows, in the order found */
    size_t regions;    /* gen of the graph spin_regions last looked at */
} spin_t;

/* The k-th slot node i is listed under (flow__key_fn): an ask without
 * force under its slot; a set under each slot it certainly empties. */
static long ask_slot_at(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = flow__gnode(g, i);
    return k == 0 && skippable(n) ? n->slot : -1;
}

static long cleared_slot_at(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = flow__gnode(g, i);
    if (n->kind != NODE_SET || k >= n->n_assigns)
        return -1;
    return tpl_is_empty(&n->assigns[k].value) ? n->assigns[k].slot : -2;
}

/* Nodes grouped by the slots key_at lists them under. */
static void by_slot_init(by_slot_t *b, const gnodes_t *g, flow__key_fn key_at)
{
    flow__group_nodes(g, key_at, g->fs->n_slots, &b->at, &b->node);
}

static void by_slot_dispose(by_slot_t *b)
{
    free(b->node);
    free(b->at);
}

/* Nodes that are never walked: they wait, or are asks found to wait. */
static void spin_waits(spin_t *w)
{
    for (size_t i = 0; i < w->g->n; i++) {
        const node_t *n = flow__gnode(w->g, i);
        w->waits[i] = force_wait(n) || (n->kind == NODE_ASK && !w->live[i]);
    }
}

/* Turns slot's certain clears off, or back to what waits says. */
static void spin_mask(spin_t *w, size_t slot, int on)
{
    for (size_t k = w->clears.at[slot]; k < w->clears.at[slot + 1]; k++) {
        size_t i = w->clears.node[k];
        w->off[i] = on ? 1 : w->waits[i];
    }
}

static void spin_dispose(spin_t *w)
{
    by_slot_dispose(&w->clears);
    by_slot_dispose(&w->asks);
    free(w->fq);
    free(w->based);
    free(w->cause);
    free(w->spun);
    free(w->regflow);
    free(w->region);
    free(w->compid);
    free(w->frames);
    free(w->comp);
    free(w->onstack);
    free(w->low);
    free(w->index);
    free(w->cyclic);
    free(w->off);
    free(w->waits);
    free(w->live);
}

/* Pops v's strongly connected component; more than one node is a cycle. */
static void spin_pop_component(spin_t *w, size_t *csp, size_t v)
{
    size_t first = *csp;
    do
        w->onstack[w->comp[--first]] = 0;
    while (w->comp[first] != v);
    size_t size = *csp - first;
    for (size_t d = first; d < *csp; d++) {
        w->compid[w->comp[d]] = v;
        if (size > 1)
            w->cyclic[w->comp[d]] = w->gen;
    }
    *csp = first;
}

static void spin_visit(spin_t *w, size_t v, size_t *csp)
{
    w->index[v] = w->low[v] = ++w->order;
    w->comp[(*csp)++] = v;
    w->onstack[v] = 1;
}

/* Sets cyclic for the nodes not off that root reaches and that lie on a
 * cycle of such nodes: Tarjan's strongly connected components on stacks of
 * its own. Visit orders only grow, so a new search (w->seen = w->order)
 * needs no clearing, and one from an ask costs what the ask reaches. */
static void spin_search(spin_t *w, size_t root)
{
    size_t sp = 0, csp = 0;
    if (w->off[root] || w->index[root] > w->seen)
        return;
    w->frames[sp++] = (gframe_t){root, 0};
    spin_visit(w, root, &csp);
    while (sp > 0) {
        gframe_t *fr = &w->frames[sp - 1];
        size_t v = fr->node;
        if (fr->next < flow__spin_slots(w->g, v)) {
            size_t j = flow__spin_succ(w->g, v, fr->next++);
            if (j == SIZE_MAX || w->off[j])
                continue;
            if (j == v) {
                w->cyclic[v] = w->gen; /* a node that is its own next */
            } else if (w->index[j] <= w->seen) {
                spin_visit(w, j, &csp);
                w->frames[sp++] = (gframe_t){j, 0};
            } else if (w->onstack[j] && w->index[j] < w->low[v]) {
                w->low[v] = w->index[j];
            }
            continue;
        }
        sp--;
        if (sp > 0 && w->low[v] < w->low[w->frames[sp - 1].node])
            w->low[w->frames[sp - 1].node] = w->low[v];
        if (w->low[v] == w->index[v])
            spin_pop_component(w, &csp, v);
    }
}

/* Starts searches on a graph other than the last one's (off has changed):
 * which calls return depends on what waits. */
static void spin_new_graph(spin_t *w)
{
    w->gen++;
    w->seen = w->order;
    flow__frames_returns(w->g, w->off);
}

static void spin_mark_flow(spin_t *w, uint16_t f, size_t call, int based, size_t *nf)
{
    w->spun[f] = w->gen;
    w->cause[f] = call;
    w->based[f] = (uint8_t)based;
    w->fq[(*nf)++] = f;
}

/* Marks the region of spinning flow f: the nodes on its ways from its start
 * to its return, over nodes not off, by frame edges. A call among them
 * whose flow returns spins that flow too (calls of calls). */
static void spin_region(spin_t *w, uint16_t f, size_t *nf)
{
    gnodes_t *g = w->g;
    size_t start = flow__gstart(g, f), head = 0, tail = 0;
    if (w->region[start] == w->gen) /* a goto from a region already marked got here */
        return;
    w->region[start] = w->gen;
    w->regflow[start] = f;
    w->comp[tail++] = start;
    while (head < tail) {
        size_t v = w->comp[head++];
        const node_t *n = flow__gnode(g, v);
        if (n->kind == NODE_CALL && g->ret[n->target_flow] && w->spun[n->target_flow] != w->gen)
            spin_mark_flow(w, n->target_flow, v, 0, nf);
        for (size_t k = 0; k < flow__spin_slots(g, v); k++) {
            size_t j = flow__frame_succ(g, v, k);
            if (j == SIZE_MAX || w->off[j] || !g->back[j] || w->region[j] == w->gen)
                continue;
            w->region[j] = w->gen;
            w->regflow[j] = f;
            w->comp[tail++] = j;
        }
    }
}

/* A called flow's nodes are on no cycle of the graph when the only way
 * round is back out through its return, yet a turn goes round when a call
 * of it returns and its next leads back to the call: marks the regions of
 * the flows such calls run (once per graph). */
static void spin_regions(spin_t *w)
{
    gnodes_t *g = w->g;
    size_t nf = 0;
    if (w->regions == w->gen || g->n_calls == 0)
        return;
    w->regions = w->gen;
    for (size_t k = 0; k < g->n_calls; k++) {
        size_t c = g->calls[k];
        const node_t *n = flow__gnode(g, c);
        if (w->off[c] || !g->ret[n->target_flow] || n->next == BRAIN_NONE ||
            w->spun[n->target_flow] == w->gen)
            continue;
        size_t next = g->at[g->flow[c]] + n->next;
        if (w->off[next])
            continue;
        spin_search(w, c); /* visits next too: the call goes on to it */
        if (w->compid[c] == w->compid[next])
            spin_mark_flow(w, n->target_flow, c, 1, &nf);
    }
    for (size_t q = 0; q < nf; q++)
        spin_region(w, w->fq[q], &nf);
}

/* Searches from slot's live asks and drops those not on a cycle; returns
 * whether any was dropped. A slot with clears has a graph of its own (its
 * clears off); the slots without share one, so a later slot's search goes
 * on from what earlier ones saw. */
static int spin_narrow_slot(spin_t *w, size_t slot)
{
    size_t first = w->asks.at[slot], end = w->asks.at[slot + 1];
    int own = w->clears.at[slot + 1] > w->clears.at[slot], dropped = 0;
    if (own) {
        spin_mask(w, slot, 1);
        spin_new_graph(w);
    }
    for (size_t k = first; k < end; k++)
        if (w->live[w->asks.node[k]])
            spin_search(w, w->asks.node[k]);
    if (end > first)
        spin_regions(w);
    for (size_t k = first; k < end; k++) {
        size_t i = w->asks.node[k];
        if (w->live[i] && w->cyclic[i] != w->gen && w->region[i] != w->gen) {
            w->live[i] = 0;
            dropped = 1;
        }
    }
    if (own) {
        spin_mask(w, slot, 0);
        spin_new_graph(w);
    }
    return dropped;
}

/* Narrows live to the asks that lie on a cycle which leaves their own slot
 * filled, among nodes that are not certain to wait, until nothing changes:
 * an ask that waits round every cycle breaks the cycles through it, which
 * may free others. The slots without a clear share one graph, so one
 * search; waits (and so off) is brought up to date once a round, in between
 * it lags behind live, which only keeps asks live a round longer. */
static void spin_narrow(spin_t *w)
{
    for (int changed = 1; changed;) {
        changed = 0;
        spin_waits(w);
        memcpy(w->off, w->waits, w->g->n);
        spin_new_graph(w);
        for (size_t s = 0; s < w->g->fs->n_slots; s++)
            changed |= spin_narrow_slot(w, s);
    }
}

/* The shortest cycle from ask a back to itself over nodes not off, breadth
 * first (index holds each node's predecessor + 1); written into r as
 * a -> ... -> a. Returns 0 when there is none. */
static int spin_find_ring(spin_t *w, size_t a, ring_t *r)
{
    size_t n = w->g->n, head = 0, tail = 0;
    memset(w->index, 0, n * sizeof(size_t));
    w->comp[tail++] = a;
    while (head < tail) {
        size_t v = w->comp[head++];
        for (size_t k = 0; k < flow__spin_slots(w->g, v); k++) {
            size_t j = flow__spin_succ(w->g, v, k);
            if (j == SIZE_MAX || w->off[j] || (w->index[j] != 0 && j != a))
                continue;
            if (j == a) { /* back: walk the predecessors from v */
                for (size_t u = v; u != a; u = w->index[u] - 1)
                    flow__ring_push(r, u);
                flow__ring_push(r, a);
                for (size_t x = 0, y = r->len - 1; x < y; x++, y--) {
                    size_t t = r->at[x];
                    r->at[x] = r->at[y];
                    r->at[y] = t;
                }
                flow__ring_push(r, a);
                return 1;
            }
            w->index[j] = v + 1;
            w->comp[tail++] = j;
        }
    }
    return 0;
}

/* The way round for ask a in the region of a spinning flow (spin_regions):
 * from a to its flow's return, out through the call that spins each flow
 * on the way to the one whose call's next leads back round to it, round
 * that, and in again through each call down to a. Returns 0 when a way is
 * missing (it cannot be, after spin_regions). */
static int spin_region_ring(spin_t *w, size_t a, ring_t *r)
{
    gnodes_t *g = w->g;
    uint16_t *chain = core_xmalloc((g->fs->n_flows + 1) * sizeof(uint16_t));
    size_t depth = 0;
    uint16_t f = w->regflow[a];
    int ok = flow__walk(g, w->off, a, SIZE_MAX, 1, r);
    for (;;) { /* out: each cause was found in a flow that spun before */
        chain[depth++] = f;
        size_t c = w->cause[f];
        uint16_t next = flow__gnode(g, c)->next;
        size_t after = next == BRAIN_NONE ? SIZE_MAX : g->at[g->flow[c]] + next;
        if (w->based[f]) {
            ok = ok && flow__walk(g, w->off, after, c, 0, r);
            break;
        }
        if (after != SIZE_MAX) /* else the call finishes its own flow too */
            ok = ok && flow__walk(g, w->off, after, SIZE_MAX, 1, r);
        f = w->regflow[c];
    }
    while (ok && depth-- > 0) { /* in: from each flow's start to the call of the next */
        size_t to = depth > 0 ? w->cause[chain[depth - 1]] : a;
        ok = flow__walk(g, w->off, flow__gstart(g, chain[depth]), to, 1, r);
    }
    free(chain);
    return ok;
}

static void spin_report(spin_t *w, loader_t *loaders, size_t a, const ring_t *r)
{
    const node_t *ask = flow__gnode(w->g, a);
    const char *slot = w->g->fs->slots[ask->slot].name;
    char names[256]; /* shorter than a plain cycle's: the advice after it must fit too */
    int across = flow__ring_names(w->g, w->off, r->at, r->len, names, sizeof(names));
    flow__err(&loaders[w->g->flow[a]], ask->path,
              "cycle %swould never wait for the user once slot \"%s\" is filled: ask \"%s\" has "
              "no \"force\", so it is skipped while the slot has a value, and nothing on the way "
              "round clears it: %s (give the ask \"force\": true, set \"%s\" to null on the way "
              "round, or pass a node that waits)",
              across ? "through flows " : "", slot, ask->name, names, slot);
}

/* Finds the way round for live ask a in the graph of its slot, into r. */
static int spin_ring(spin_t *w, size_t a, ring_t *r)
{
    spin_new_graph(w);
    if (spin_find_ring(w, a, r))
        return 1;
    spin_new_graph(w); /* spin_find_ring reused the searches' index */
    spin_regions(w);
    return w->region[a] == w->gen && spin_region_ring(w, a, r);
}

/* Cycles whose only waits are asks without force, each of whose slot is
 * still filled when the cycle comes back to it: reported once per cycle, at
 * the first such ask in the set's order. An ask in a called flow is on the
 * cycle of a call of it that returns and comes back round. */
static void check_skipped_asks(gnodes_t *g, loader_t *loaders)
{
    size_t n = g->n, nf = g->fs->n_flows;
    spin_t w = {.g = g,
                .live = core_xcalloc(n + 1, 1),
                .waits = core_xcalloc(n + 1, 1),
                .off = core_xcalloc(n + 1, 1),
                .cyclic = core_xcalloc(n + 1, sizeof(size_t)),
                .index = core_xcalloc(n + 1, sizeof(size_t)),
                .low = core_xcalloc(n + 1, sizeof(size_t)),
                .onstack = core_xcalloc(n + 1, 1),
                .comp = core_xcalloc(n + 1, sizeof(size_t)),
                .frames = core_xcalloc(n + 1, sizeof(gframe_t)),
                .compid = core_xcalloc(n + 1, sizeof(size_t)),
                .region = core_xcalloc(n + 1, sizeof(size_t)),
                .regflow = core_xcalloc(n + 1, sizeof(uint16_t)),
                .spun = core_xcalloc(nf + 1, sizeof(size_t)),
                .cause = core_xcalloc(nf + 1, sizeof(size_t)),
                .based = core_xcalloc(nf + 1, 1),
                .fq = core_xcalloc(nf + 1, sizeof(uint16_t))};
    by_slot_init(&w.asks, g, ask_slot_at);
    by_slot_init(&w.clears, g, cleared_slot_at);
    for (size_t i = 0; i < n; i++)
        w.live[i] = skippable(flow__gnode(g, i));
    spin_narrow(&w);
    spin_waits(&w);
    memcpy(w.off, w.waits, n);
    uint8_t *told = core_xcalloc(n + 1, 1); /* on a cycle already reported */
    ring_t ring = {0};
    for (size_t a = 0; a < n; a++) {
        if (!w.live[a] || told[a])
            continue;
        ring.len = 0;
        spin_mask(&w, (size_t)flow__gnode(g, a)->slot, 1);
        if (spin_ring(&w, a, &ring)) { /* else cannot happen after spin_narrow */
            spin_report(&w, loaders, a, &ring);
            for (size_t d = 0; d < ring.len; d++)
                told[ring.at[d]] = 1;
        }
        spin_mask(&w, (size_t)flow__gnode(g, a)->slot, 0);
    }
    free(ring.at);
    free(told);
    spin_dispose(&w);
}

void flow__check_cycles(const brain_flowset_t *fs, loader_t *loaders)
{
    gnodes_t g;
    flow__gnodes_init(&g, fs);
    check_cycles(&g, loaders);
    check_skipped_asks(&g, loaders);
    flow__gnodes_dispose(&g);
}
