/* Flow compiler, part 3b: cycles over the whole set's node graph (goto and
 * call edges included) that a turn could go round without waiting for the
 * user -- they would spin it until its step budget -- among them cycles
 * whose only waits are asks without "force" whose slot nothing on the way
 * round clears (such an ask is skipped once its slot is filled). Called by
 * flow__check_graph (flow_check.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

/* ---- cycles through goto and call ------------------------------------------- */

/* The whole set's nodes in one numbering: flow fi's node ni is at[fi] + ni. */
typedef struct {
    const brain_flowset_t *fs;
    size_t *at;     /* first global number of each flow */
    uint16_t *flow; /* the flow of each global number */
    size_t n;       /* nodes in all */
} gnodes_t;

static const node_t *gnode(const gnodes_t *g, size_t i)
{
    return &g->fs->flows[g->flow[i]].nodes[i - g->at[g->flow[i]]];
}

/* Successor slot k of global node i: the node's own (for cycles), then, for
 * a goto, the node it goes to and, for a call, the called flow's start. */
static size_t gsucc(const gnodes_t *g, size_t i, size_t k)
{
    const node_t *n = gnode(g, i);
    size_t own = flow__succ_slots(n);
    if (k < own) {
        uint16_t j = flow__succ_at(n, k, 1);
        return j == BRAIN_NONE ? SIZE_MAX : g->at[g->flow[i]] + j;
    }
    if ((n->kind != NODE_GOTO && n->kind != NODE_CALL) || n->target_flow == BRAIN_NONE)
        return SIZE_MAX;
    const flow_t *t = &g->fs->flows[n->target_flow];
    uint16_t j = n->kind == NODE_GOTO && n->target_node != BRAIN_NONE ? n->target_node : t->start;
    return j == BRAIN_NONE ? SIZE_MAX : g->at[n->target_flow] + j;
}

typedef struct {
    size_t node, next;
} gframe_t;

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
                                 gnode(g, k)->name, d + 1 < len ? " -> " : "");
    }
    if ((d < len || used >= size) && size > 4) /* cut: say so rather than end mid-way */
        memcpy(out + size - 4, "...", 4);
    return across;
}

static void gnodes_init(gnodes_t *g, const brain_flowset_t *fs)
{
    *g = (gnodes_t){fs, core_xcalloc(fs->n_flows + 1, sizeof(size_t)), NULL, 0};
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        g->at[fi] = g->n;
        g->n += fs->flows[fi].n_nodes;
    }
    g->flow = core_xmalloc((g->n + 1) * sizeof(uint16_t));
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        for (size_t ni = 0; ni < fs->flows[fi].n_nodes; ni++)
            g->flow[g->at[fi] + ni] = (uint16_t)fi;
}

static void gnodes_dispose(gnodes_t *g)
{
    free(g->flow);
    free(g->at);
}

/* Reports the cycle that closes at j, the frames from j's up to the top. */
static void report_open_cycle(const gnodes_t *g, loader_t *loaders, const gframe_t *stack,
                              size_t sp, size_t j)
{
    size_t start = sp - 1;
    while (start > 0 && stack[start].node != j)
        start--;
    size_t *ring = core_xmalloc((sp - start + 1) * sizeof(size_t));
    for (size_t d = start; d < sp; d++)
        ring[d - start] = stack[d].node;
    ring[sp - start] = j;
    char names[400];
    int across = cycle_names(g, ring, sp - start + 1, names, sizeof(names));
    size_t last = stack[sp - 1].node;
    flow__err(&loaders[g->flow[last]], gnode(g, last)->path,
              "cycle %swith no ask in it would never wait for the user: %s",
              across ? "through flows " : "", names);
    free(ring);
}

/* Cycles of nodes that do not wait (every kind but ask and a CSAT end),
 * within a flow or through a goto or a call: each would spin a turn until
 * its step budget. A depth-first search over the whole set on a stack of its
 * own, colour 1 = on the stack, 2 = done; a cycle is named by its nodes,
 * flow.node when it passes through more than one flow. */
static void check_cycles(const gnodes_t *g, loader_t *loaders)
{
    uint8_t *colour = core_xcalloc(g->n + 1, 1);
    gframe_t *stack = core_xmalloc((g->n + 1) * sizeof(gframe_t));
    for (size_t root = 0; root < g->n; root++) {
        if (colour[root] != 0)
            continue;
        if (flow__waits(gnode(g, root))) {
            colour[root] = 2;
            continue;
        }
        size_t sp = 0;
        colour[root] = 1;
        stack[sp++] = (gframe_t){root, 0};
        while (sp > 0) {
            gframe_t *fr = &stack[sp - 1];
            if (fr->next == flow__succ_slots(gnode(g, fr->node)) + 1) {
                colour[fr->node] = 2;
                sp--;
                continue;
            }
            size_t j = gsucc(g, fr->node, fr->next++);
            if (j == SIZE_MAX || colour[j] == 2)
                continue;
            if (colour[j] == 1) {
                report_open_cycle(g, loaders, stack, sp, j);
            } else if (flow__waits(gnode(g, j))) {
                colour[j] = 2;
            } else {
                colour[j] = 1;
                stack[sp++] = (gframe_t){j, 0};
            }
        }
    }
    free(stack);
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

/* Successor k of global node i on a turn that does not wait: a skipped ask
 * goes on only by its `next` (its `on_fail` follows failed answers). */
static size_t spin_succ(const gnodes_t *g, size_t i, size_t k)
{
    return gnode(g, i)->kind == NODE_ASK && k > 0 ? SIZE_MAX : gsucc(g, i, k);
}

static size_t spin_slots(const gnodes_t *g, size_t i)
{
    return flow__succ_slots(gnode(g, i)) + 1;
}

/* Nodes by slot, as one array cut by slot: slot s's are at[s] .. at[s + 1]. */
typedef struct {
    size_t *at;   /* n_slots + 1 offsets into node */
    size_t *node; /* global node numbers */
} by_slot_t;

/* Working arrays for the search, one entry per global node. */
typedef struct {
    const gnodes_t *g;
    by_slot_t asks;   /* the asks without force of each slot */
    by_slot_t clears; /* the set nodes that certainly empty each slot */
    uint8_t *live;    /* an ask without force that may yet be skipped round a cycle */
    uint8_t *waits;   /* force_wait, or an ask no longer live: never walked */
    uint8_t *off;     /* not walked for the slot in hand: waits, or clears the slot */
    size_t *cyclic;   /* gen when found on a cycle of nodes that are not off */
    size_t gen;       /* searches that share a graph and what they found */
    size_t *index;    /* Tarjan: visit order; at most seen: not visited in this search */
    size_t order;     /* Tarjan: the last visit order given, across searches */
    size_t seen;      /* Tarjan: order when this search began */
    size_t *low;      /* Tarjan: lowest index reachable */
    uint8_t *onstack; /* Tarjan: on the component stack */
    size_t *comp;     /* Tarjan: the component stack; the search's queue */
    gframe_t *frames; /* Tarjan: the walk's own stack */
} spin_t;

/* The k-th slot a node is listed under, -2 to pass over item k, -1 after
 * the last: an ask without force under its slot; a set under each slot it
 * certainly empties. */
static int ask_slot_at(const node_t *n, size_t k)
{
    return k == 0 && skippable(n) ? n->slot : -1;
}

static int cleared_slot_at(const node_t *n, size_t k)
{
    if (n->kind != NODE_SET || k >= n->n_assigns)
        return -1;
    return tpl_is_empty(&n->assigns[k].value) ? n->assigns[k].slot : -2;
}

/* One pass over every node's slots: counts them into b->at[s + 1] when
 * fill is NULL, else places each node at fill[s]++. */
static void by_slot_pass(by_slot_t *b, const gnodes_t *g, int (*slot_at)(const node_t *, size_t),
                         size_t *fill)
{
    for (size_t i = 0; i < g->n; i++)
        for (size_t k = 0;; k++) {
            int s = slot_at(gnode(g, i), k);
            if (s == -1)
                break;
            if (s < 0)
                continue;
            if (fill == NULL)
                b->at[s + 1]++;
            else
                b->node[fill[s]++] = i;
        }
}

/* Groups nodes by the slots slot_at lists them under: a counting sort, so a
 * set that empties many slots costs its size once, not once per slot. */
static void by_slot_init(by_slot_t *b, const gnodes_t *g, int (*slot_at)(const node_t *, size_t))
{
    size_t n_slots = g->fs->n_slots;
    b->at = core_xcalloc(n_slots + 2, sizeof(size_t));
    by_slot_pass(b, g, slot_at, NULL);
    for (size_t s = 0; s < n_slots; s++)
        b->at[s + 1] += b->at[s];
    size_t *fill = core_xmalloc((n_slots + 1) * sizeof(size_t));
    memcpy(fill, b->at, (n_slots + 1) * sizeof(size_t));
    b->node = core_xmalloc((b->at[n_slots] + 1) * sizeof(size_t));
    by_slot_pass(b, g, slot_at, fill);
    free(fill);
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
        const node_t *n = gnode(w->g, i);
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
    for (size_t d = first; size > 1 && d < *csp; d++)
        w->cyclic[w->comp[d]] = w->gen;
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
        if (fr->next < spin_slots(w->g, v)) {
            size_t j = spin_succ(w->g, v, fr->next++);
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

/* Starts searches on a graph other than the last one's. */
static void spin_new_graph(spin_t *w)
{
    w->gen++;
    w->seen = w->order;
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
    for (size_t k = first; k < end; k++) {
        size_t i = w->asks.node[k];
        if (w->live[i] && w->cyclic[i] != w->gen) {
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
 * first (index holds each node's predecessor + 1); written into ring as
 * a -> ... -> a. Returns its length, 0 when there is none. */
static size_t spin_find_ring(spin_t *w, size_t a, size_t *ring)
{
    size_t n = w->g->n, head = 0, tail = 0;
    memset(w->index, 0, n * sizeof(size_t));
    w->comp[tail++] = a;
    while (head < tail) {
        size_t v = w->comp[head++];
        for (size_t k = 0; k < spin_slots(w->g, v); k++) {
            size_t j = spin_succ(w->g, v, k);
            if (j == SIZE_MAX || w->off[j] || (w->index[j] != 0 && j != a))
                continue;
            if (j == a) { /* back: walk the predecessors from v */
                size_t len = 0;
                for (size_t u = v; u != a; u = w->index[u] - 1)
                    ring[len++] = u;
                ring[len++] = a;
                for (size_t x = 0, y = len - 1; x < y; x++, y--) {
                    size_t t = ring[x];
                    ring[x] = ring[y];
                    ring[y] = t;
                }
                ring[len++] = a;
                return len;
            }
            w->index[j] = v + 1;
            w->comp[tail++] = j;
        }
    }
    return 0;
}

static void spin_report(spin_t *w, loader_t *loaders, size_t a, const size_t *ring, size_t len)
{
    const node_t *ask = gnode(w->g, a);
    const char *slot = w->g->fs->slots[ask->slot].name;
    char names[256]; /* shorter than a plain cycle's: the advice after it must fit too */
    int across = cycle_names(w->g, ring, len, names, sizeof(names));
    flow__err(&loaders[w->g->flow[a]], ask->path,
              "cycle %swould never wait for the user once slot \"%s\" is filled: ask \"%s\" has "
              "no \"force\", so it is skipped while the slot has a value, and nothing on the way "
              "round clears it: %s (give the ask \"force\": true, set \"%s\" to null on the way "
              "round, or pass a node that waits)",
              across ? "through flows " : "", slot, ask->name, names, slot);
}

/* Cycles whose only waits are asks without force, each of whose slot is
 * still filled when the cycle comes back to it: reported once per cycle, at
 * the first such ask in the set's order. */
static void check_skipped_asks(const gnodes_t *g, loader_t *loaders)
{
    size_t n = g->n;
    spin_t w = {.g = g,
                .live = core_xcalloc(n + 1, 1),
                .waits = core_xcalloc(n + 1, 1),
                .off = core_xcalloc(n + 1, 1),
                .cyclic = core_xcalloc(n + 1, sizeof(size_t)),
                .index = core_xcalloc(n + 1, sizeof(size_t)),
                .low = core_xcalloc(n + 1, sizeof(size_t)),
                .onstack = core_xcalloc(n + 1, 1),
                .comp = core_xcalloc(n + 1, sizeof(size_t)),
                .frames = core_xcalloc(n + 1, sizeof(gframe_t))};
    by_slot_init(&w.asks, g, ask_slot_at);
    by_slot_init(&w.clears, g, cleared_slot_at);
    for (size_t i = 0; i < n; i++)
        w.live[i] = skippable(gnode(g, i));
    spin_narrow(&w);
    spin_waits(&w);
    memcpy(w.off, w.waits, n);
    uint8_t *told = core_xcalloc(n + 1, 1); /* on a cycle already reported */
    size_t *ring = core_xmalloc((n + 2) * sizeof(size_t));
    for (size_t a = 0; a < n; a++) {
        if (!w.live[a] || told[a])
            continue;
        spin_mask(&w, (size_t)gnode(g, a)->slot, 1);
        size_t len = spin_find_ring(&w, a, ring);
        spin_mask(&w, (size_t)gnode(g, a)->slot, 0);
        if (len == 0)
            continue; /* cannot happen after spin_narrow; nothing to say */
        spin_report(&w, loaders, a, ring, len);
        for (size_t d = 0; d < len; d++)
            told[ring[d]] = 1;
    }
    free(ring);
    free(told);
    spin_dispose(&w);
}

void flow__check_cycles(const brain_flowset_t *fs, loader_t *loaders)
{
    gnodes_t g;
    gnodes_init(&g, fs);
    check_cycles(&g, loaders);
    check_skipped_asks(&g, loaders);
    gnodes_dispose(&g);
}
