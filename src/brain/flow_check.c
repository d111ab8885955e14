/* Flow compiler, part 3: checks over the node graph once every flow is
 * compiled and every reference resolved: unreachable nodes, paths longer
 * than a turn's step budget, calls nested too deep, cycles that never wait
 * for the user (flow_cycles.c), and slots referenced where no path could
 * have filled them yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/flow_int.h"

/* A node's intra-flow successors, as slots: next, alt, then one per branch
 * case; a slot may hold BRAIN_NONE. With for_cycles the return edge of a
 * `call` is left out (a call may wait inside the called flow; flow_graph.c
 * puts it back for a call whose flow can return without waiting). */
size_t flow__succ_slots(const node_t *n)
{
    return 2 + n->n_cases;
}

uint16_t flow__succ_at(const node_t *n, size_t i, int for_cycles)
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
        for (size_t i = 0; i < flow__succ_slots(n); i++) {
            uint16_t j = flow__succ_at(n, i, 0);
            if (j != BRAIN_NONE && !seen[j]) {
                seen[j] = 1;
                stack[sp++] = j;
            }
        }
    }
    free(stack);
}

int flow__waits(const node_t *n)
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
            int stops = flow__waits(n) || n->kind == NODE_GOTO || n->kind == NODE_CALL;
            if (stops || fr->next == flow__succ_slots(n)) {
                uint32_t longest = 0;
                for (size_t k = 0; !stops && k < flow__succ_slots(n); k++) {
                    uint16_t j = flow__succ_at(n, k, 1);
                    if (j != BRAIN_NONE && len[j] > longest)
                        longest = len[j];
                }
                len[fr->node] = 1 + longest;
                open[fr->node] = 0;
                sp--;
                continue;
            }
            uint16_t j = flow__succ_at(n, fr->next++, 1);
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
    flow__check_cycles(fs, loaders);
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
        for (size_t k = 0; k < flow__succ_slots(n); k++) {
            uint16_t j = flow__succ_at(n, k, 0);
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
