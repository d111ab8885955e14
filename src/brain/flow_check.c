/* Flow compiler, part 3: checks over the node graph once every flow is
 * compiled and every reference resolved: unreachable nodes, cycles that
 * never wait for the user (they would spin a turn until its step budget),
 * among them cycles that wait only at asks whose slot is already filled,
 * and slots referenced where no path could have filled them yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

/* A node's intra-flow successors, as slots: next, alt, then one per branch
 * case; a slot may hold BRAIN_NONE. With for_cycles the return edge of a
 * `call` is left out (a call may wait inside the called flow). */
static size_t succ_slots(const node_t *n)
{
    return 2 + n->n_cases;
}

static uint16_t succ_at(const node_t *n, size_t i, int for_cycles)
{
    if (i == 0)
        return for_cycles && n->kind == NODE_CALL ? BRAIN_NONE : n->next;
    if (i == 1)
        return n->alt;
    return n->case_next[i - 2];
}

/* Marks what from reaches; a node is pushed once, so the stack holds at most
 * every node. Iterative: a flow may be a chain of tens of thousands. */
static void mark_reachable(const flow_t *f, uint16_t from, uint8_t *seen)
{
    if (from == BRAIN_NONE || seen[from])
        return;
    uint16_t *stack = core_xmalloc((f->n_nodes + 1) * sizeof(uint16_t));
    size_t sp = 0;
    seen[from] = 1;
    stack[sp++] = from;
    while (sp > 0) {
        const node_t *n = &f->nodes[stack[--sp]];
        for (size_t i = 0; i < succ_slots(n); i++) {
            uint16_t j = succ_at(n, i, 0);
            if (j != BRAIN_NONE && !seen[j]) {
                seen[j] = 1;
                stack[sp++] = j;
            }
        }
    }
    free(stack);
}

static int waits(const node_t *n)
{
    return n->kind == NODE_ASK || (n->kind == NODE_END && n->csat);
}

typedef struct {
    uint16_t node;
    size_t next; /* the successor slot to look at next */
} frame_t;

/* The nodes a turn would visit from each node of f before it waits (an ask,
 * a CSAT end), a goto or call counting as the last (the other flow is
 * judged on its own); nodes without a successor end the path. A flow with
 * a path longer than a turn's step budget is refused at its longest path's
 * first node: every turn down that path would end in the budget's fallback.
 * On a graph that may hold a cycle without a wait (reported by
 * check_cycles): a node still open when reached again is not followed;
 * a post-order walk on a stack of its own. */
static void check_path_lengths(loader_t *ld, const flow_t *f)
{
    uint32_t *len = core_xcalloc(f->n_nodes + 1, sizeof(uint32_t)); /* 0: not known yet */
    frame_t *stack = core_xmalloc((f->n_nodes + 1) * sizeof(frame_t));
    uint8_t *open = core_xcalloc(f->n_nodes + 1, 1); /* on the stack */
    size_t worst = SIZE_MAX;
    for (size_t root = 0; root < f->n_nodes; root++) {
        if (len[root] != 0)
            continue;
        size_t sp = 0;
        stack[sp++] = (frame_t){(uint16_t)root, 0};
        open[root] = 1;
        while (sp > 0) {
            frame_t *fr = &stack[sp - 1];
            const node_t *n = &f->nodes[fr->node];
            int stops = waits(n) || n->kind == NODE_GOTO || n->kind == NODE_CALL;
            if (stops || fr->next == succ_slots(n)) {
                uint32_t longest = 0;
                for (size_t k = 0; !stops && k < succ_slots(n); k++) {
                    uint16_t j = succ_at(n, k, 1);
                    if (j != BRAIN_NONE && len[j] > longest)
                        longest = len[j];
                }
                len[fr->node] = 1 + longest;
                open[fr->node] = 0;
                sp--;
                continue;
            }
            uint16_t j = succ_at(n, fr->next++, 1);
            if (j != BRAIN_NONE && len[j] == 0 && !open[j]) { /* open: a cycle, reported */
                open[j] = 1;
                stack[sp++] = (frame_t){j, 0};
            }
        }
        if (len[root] > BRAIN_MAX_STEPS && (worst == SIZE_MAX || len[root] > len[worst]))
            worst = root;
    }
    if (worst != SIZE_MAX)
        flow__err(ld, f->nodes[worst].path,
                  "a turn would visit %u nodes from here before it waits for the user; a turn "
                  "visits at most %d (put an ask on the way, or split the work)",
                  len[worst], BRAIN_MAX_STEPS);
    free(open);
    free(stack);
    free(len);
}

/* The deepest chain of `call`s that starts in flow fi (0: it calls none),
 * reporting each call that would nest deeper than the conversation's stack
 * (BRAIN_STACK_MAX) or that calls a flow already on the chain: the
 * interpreter would drop that call's return point and carry on as if it were
 * a goto. colour: 0 not seen, 1 on the chain, 2 done (depth[fi] set). The
 * recursion is as deep as the chain of flows, each on it once. */
static int call_depth(const brain_flowset_t *fs, loader_t *loaders, size_t fi, uint8_t *colour,
                      int *depth)
{
    if (colour[fi] == 2)
        return depth[fi];
    if (colour[fi] == 1)
        return -1;
    colour[fi] = 1;
    int deepest = 0;
    const flow_t *f = &fs->flows[fi];
    for (size_t ni = 0; ni < f->n_nodes; ni++) {
        const node_t *n = &f->nodes[ni];
        if (n->kind != NODE_CALL || n->target_flow == BRAIN_NONE)
            continue;
        int d = call_depth(fs, loaders, n->target_flow, colour, depth);
        if (d < 0) {
            flow__err(&loaders[fi], n->path,
                      "calls flow \"%s\", which is already waiting for this call to return "
                      "(a call cannot recurse; use goto to go back)",
                      fs->flows[n->target_flow].name);
            continue;
        }
        if (d == BRAIN_STACK_MAX) /* the first call past the limit, not its callers too */
            flow__err(&loaders[fi], n->path,
                      "calls nest %d deep from here (through flow \"%s\"); at most %d", d + 1,
                      fs->flows[n->target_flow].name, BRAIN_STACK_MAX);
        if (d + 1 > deepest)
            deepest = d + 1;
    }
    colour[fi] = 2;
    depth[fi] = deepest;
    return deepest;
}

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
    size_t own = succ_slots(n);
    if (k < own) {
        uint16_t j = succ_at(n, k, 1);
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
        if (waits(gnode(g, root))) {
            colour[root] = 2;
            continue;
        }
        size_t sp = 0;
        colour[root] = 1;
        stack[sp++] = (gframe_t){root, 0};
        while (sp > 0) {
            gframe_t *fr = &stack[sp - 1];
            if (fr->next == succ_slots(gnode(g, fr->node)) + 1) {
                colour[fr->node] = 2;
                sp--;
                continue;
            }
            size_t j = gsucc(g, fr->node, fr->next++);
            if (j == SIZE_MAX || colour[j] == 2)
                continue;
            if (colour[j] == 1) {
                report_open_cycle(g, loaders, stack, sp, j);
            } else if (waits(gnode(g, j))) {
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
    return succ_slots(gnode(g, i)) + 1;
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

void flow__check_graph(brain_flowset_t *fs, loader_t *loaders)
{
    /* Entry points: each flow's start, plus nodes named by a goto elsewhere. */
    uint8_t **seen = core_xcalloc(fs->n_flows + 1, sizeof(uint8_t *));
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        seen[fi] = core_xcalloc(fs->flows[fi].n_nodes + 1, 1);
        mark_reachable(&fs->flows[fi], fs->flows[fi].start, seen[fi]);
    }
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        for (size_t ni = 0; ni < fs->flows[fi].n_nodes; ni++) {
            const node_t *n = &fs->flows[fi].nodes[ni];
            if (n->kind == NODE_GOTO && n->target_flow != BRAIN_NONE &&
                n->target_node != BRAIN_NONE)
                mark_reachable(&fs->flows[n->target_flow], n->target_node, seen[n->target_flow]);
        }
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        flow_t *f = &fs->flows[fi];
        loader_t *ld = &loaders[fi];
        for (size_t ni = 0; ni < f->n_nodes && f->start != BRAIN_NONE; ni++)
            if (!seen[fi][ni])
                flow__err(ld, f->nodes[ni].path, "node \"%s\" is unreachable from \"%s\"",
                          f->nodes[ni].name, f->nodes[f->start].name);
        check_path_lengths(ld, f);
        free(seen[fi]);
    }
    free(seen);
    gnodes_t g;
    gnodes_init(&g, fs);
    check_cycles(&g, loaders);
    check_skipped_asks(&g, loaders);
    gnodes_dispose(&g);
    uint8_t *colour = core_xcalloc(fs->n_flows + 1, 1);
    int *depth = core_xcalloc(fs->n_flows + 1, sizeof(int));
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        call_depth(fs, loaders, fi, colour, depth);
    free(depth);
    free(colour);
}

/* ---- slots used before they can be filled ------------------------------------------- */

static void set_bit(uint64_t *s, int i)
{
    if (i >= 0)
        s[i / 64] |= 1ULL << (i % 64);
}

static int has_bit(const uint64_t *s, int i)
{
    return (s[i / 64] >> (i % 64)) & 1;
}

static int or_into(uint64_t *dst, const uint64_t *src, size_t nw)
{
    int changed = 0;
    for (size_t w = 0; w < nw; w++) {
        uint64_t v = dst[w] | src[w];
        changed |= v != dst[w];
        dst[w] = v;
    }
    return changed;
}

static void fills(const node_t *n, uint64_t *s)
{
    if (n->kind == NODE_ASK)
        set_bit(s, n->slot);
    for (size_t i = 0; i < n->n_assigns; i++)
        set_bit(s, n->assigns[i].slot);
    for (size_t i = 0; i < n->n_maps; i++)
        set_bit(s, n->maps[i].slot);
    if (n->kind == NODE_ACTION)
        set_bit(s, n->status_slot);
    if (n->kind == NODE_LLM)
        set_bit(s, n->slot);
}

/* Computes the IN sets of flow f from entry: the slots some path to each
 * node has filled. A worklist: a node is looked at again only when its IN
 * grew, which a set of slots can do at most once per slot, so a long chain
 * costs its length, not its length squared. */
static void flow_dataflow(const flow_t *f, const uint64_t *entry, uint64_t *in, size_t nw)
{
    memset(in, 0, f->n_nodes * nw * sizeof(uint64_t));
    if (f->start == BRAIN_NONE)
        return;
    or_into(&in[f->start * nw], entry, nw);
    uint64_t *out = core_xcalloc(nw, sizeof(uint64_t));
    uint16_t *queue = core_xmalloc((f->n_nodes + 1) * sizeof(uint16_t)); /* a ring */
    uint8_t *queued = core_xcalloc(f->n_nodes + 1, 1);
    size_t head = 0, len = 0, cap = f->n_nodes + 1;
    /* every node once at first, as the old round-robin pass did: a node
     * entered by a goto from another flow fills slots for what follows it */
    for (size_t i = 0; i < f->n_nodes; i++) {
        queue[len++] = (uint16_t)i;
        queued[i] = 1;
    }
    while (len > 0) {
        uint16_t i = queue[head];
        head = (head + 1) % cap;
        len--;
        queued[i] = 0;
        const node_t *n = &f->nodes[i];
        memcpy(out, &in[(size_t)i * nw], nw * sizeof(uint64_t));
        fills(n, out);
        for (size_t k = 0; k < succ_slots(n); k++) {
            uint16_t j = succ_at(n, k, 0);
            if (j != BRAIN_NONE && or_into(&in[(size_t)j * nw], out, nw) && !queued[j]) {
                queue[(head + len++) % cap] = j;
                queued[j] = 1;
            }
        }
    }
    free(queued);
    free(queue);
    free(out);
}

/* A reference with a `default` filter says what to show when the slot is
 * empty, so it may appear before the slot is filled. */
static int has_default(const tpl_part_t *p)
{
    for (size_t i = 0; i < p->n_filters; i++)
        if (p->filters[i].kind == TPL_F_DEFAULT)
            return 1;
    return 0;
}

static void report_tpl(loader_t *ld, const node_t *n, const brain_tpl_t *t, const uint64_t *in,
                       const char *what)
{
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        const tpl_part_t *p = &t->parts[i];
        if (p->is_ref && p->ref == TPL_REF_SLOT && p->index >= 0 && !has_bit(in, p->index) &&
            !has_default(p) && !(n->kind == NODE_ASK && p->index == n->slot))
            flow__err(ld, n->path, "%s uses slot \"%s\" before any path can have filled it", what,
                      p->text);
    }
}

static void report_msg(loader_t *ld, const node_t *n, const msg_t *m, const uint64_t *in)
{
    for (int ch = 0; ch < BRAIN_CH__COUNT; ch++)
        report_tpl(ld, n, m->variant[ch], in, "a message");
    for (size_t i = 0; i < m->n_choices; i++) {
        report_tpl(ld, n, &m->choice_title[i], in, "a choice");
        report_tpl(ld, n, &m->choice_value[i], in, "a choice");
    }
}

static void report_cond(loader_t *ld, const node_t *n, const cond_t *c, const uint64_t *in)
{
    int intent = c->kind == COND_INTENT ? brain__intent_find(ld->fs, c->value) : 0;
    if (intent < 0)
        flow__err(ld, n->path, "a condition tests unknown intent \"%s\"", c->value);
    else if (c->kind == COND_INTENT && brain__intent_is_oos(&ld->fs->intents[intent]))
        flow__err(ld, n->path,
                  "a condition cannot test intent \"oos\": out-of-scope messages go to the "
                  "fallback");
    if (c->kind == COND_SLOT && c->slot >= 0 && c->op != OP_EXISTS && c->op != OP_MISSING &&
        !has_bit(in, c->slot))
        flow__err(ld, n->path,
                  "a condition compares slot \"%s\" before any path can have filled it "
                  "(test \"exists\" first, or fill it earlier)",
                  ld->fs->slots[c->slot].name);
    for (size_t i = 0; i < c->n_kids; i++)
        report_cond(ld, n, &c->kids[i], in);
}

static void report_node(loader_t *ld, const node_t *n, const uint64_t *in)
{
    for (size_t i = 0; i < n->n_msgs; i++)
        report_msg(ld, n, &n->msgs[i], in);
    if (n->kind == NODE_ASK) {
        report_msg(ld, n, &n->prompt, in);
        if (n->has_reprompt)
            report_msg(ld, n, &n->reprompt, in);
    }
    for (size_t i = 0; i < n->n_cases; i++)
        report_cond(ld, n, &n->conds[i], in);
    for (size_t i = 0; i < n->n_assigns; i++)
        report_tpl(ld, n, &n->assigns[i].value, in, "an assignment");
    if (n->kind == NODE_ACTION) {
        report_tpl(ld, n, &n->url, in, "the url");
        for (size_t i = 0; i < n->n_headers; i++)
            report_tpl(ld, n, &n->headers[i].value, in, "a header");
    }
    if (n->kind == NODE_LLM) {
        report_tpl(ld, n, &n->system, in, "the system prompt");
        report_tpl(ld, n, &n->prompt_tpl, in, "the prompt");
    }
}

void flow__check_slots(brain_flowset_t *fs, loader_t *loaders)
{
    size_t nw = fs->n_slots / 64 + 1;
    uint64_t *entry = core_xcalloc(fs->n_flows * nw + 1, sizeof(uint64_t));
    uint64_t **in = core_xcalloc(fs->n_flows + 1, sizeof(uint64_t *));
    for (size_t fi = 0; fi < fs->n_flows; fi++) {
        in[fi] = core_xcalloc(fs->flows[fi].n_nodes * nw + 1, sizeof(uint64_t));
        for (size_t s = 0; s < fs->n_slots; s++)
            if (fs->slots[s].def != NULL)
                set_bit(&entry[fi * nw], (int)s);
    }
    uint64_t *out = core_xcalloc(nw, sizeof(uint64_t));
    /* A called or jumped-to flow starts with what its callers may have filled. */
    for (size_t round = 0, changed = 1; changed && round <= fs->n_flows + 1; round++) {
        changed = 0;
        for (size_t fi = 0; fi < fs->n_flows; fi++) {
            flow_t *f = &fs->flows[fi];
            flow_dataflow(f, &entry[fi * nw], in[fi], nw);
            for (size_t ni = 0; ni < f->n_nodes; ni++) {
                const node_t *n = &f->nodes[ni];
                if ((n->kind != NODE_GOTO && n->kind != NODE_CALL) || n->target_flow == BRAIN_NONE)
                    continue;
                memcpy(out, &in[fi][ni * nw], nw * sizeof(uint64_t));
                changed |= (size_t)or_into(&entry[n->target_flow * nw], out, nw);
            }
        }
    }
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        for (size_t ni = 0; ni < fs->flows[fi].n_nodes; ni++)
            report_node(&loaders[fi], &fs->flows[fi].nodes[ni], &in[fi][ni * nw]);
    for (size_t fi = 0; fi < fs->n_flows; fi++)
        free(in[fi]);
    free(in);
    free(entry);
    free(out);
}
