/* flow_int.h — the flow compiler's working state, shared by flow_load.c
 * (files, metadata, slots, settings), flow_nodes.c (nodes, messages,
 * conditions) and flow_check.c (graph checks). Private to src/brain. */
#ifndef CHORUS_FLOW_INT_H
#define CHORUS_FLOW_INT_H

#include "brain/brain_int.h"

typedef struct loader_s {
    brain_flowset_t *fs;
    core_diags_t *diags;
    const char *file;    /* current source name */
    core_jsonpos_t *pos; /* current source positions, NULL if unknown */
    flow_t *flow;        /* flow being compiled, NULL for settings */
    int n_errors;        /* problems reported so far */
} loader_t;

/* Reports a problem at path of the current file. */
void flow__err(loader_t *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports keys of obj not in allowed ("a|b|c"). */
void flow__check_keys(loader_t *ld, json_t *obj, const char *path, const char *allowed);
/* Typed getters: report a wrong type (or a missing required key) and return
 * the default. Paths are built as parent + "." + key. */
const char *flow__str(loader_t *ld, json_t *obj, const char *key, const char *path, int required);
long long flow__int(loader_t *ld, json_t *obj, const char *key, const char *path, long long min,
                    long long max, long long def);
double flow__num(loader_t *ld, json_t *obj, const char *key, const char *path, double min,
                 double max, double def);
int flow__bool(loader_t *ld, json_t *obj, const char *key, const char *path, int def);
/* Builds "parent.key" into out. */
const char *flow__path(char *out, size_t size, const char *parent, const char *key);

/* Compiles a template string found at path; checks its references. */
int flow__tpl(loader_t *ld, const char *s, const char *path, brain_tpl_t *out);
/* Compiles a message (string or object with variants and choices). */
int flow__msg(loader_t *ld, json_t *v, const char *path, msg_t *out);
/* Resolves a node name of the current flow; reports unknown names. */
uint16_t flow__node_ref(loader_t *ld, json_t *obj, const char *key, const char *path, int required);

/* Compiles a branch condition found at path into c (flow_cond.c). */
int flow__cond(loader_t *ld, json_t *v, const char *path, cond_t *c);
/* A JSON scalar as slot text (booleans as yes/no); NULL for other types. */
char *flow__scalar_text(json_t *v);
/* Compiles every node of ld->flow from the "nodes" object. */
void flow__nodes(loader_t *ld, json_t *nodes, const char *path);
/* Graph checks on every flow: unreachable nodes, cycles with no ask or
 * whose only asks are skipped once answered, over-long paths, calls. */
void flow__check_graph(brain_flowset_t *fs, loader_t *loaders);
/* flow_check.c, shared with flow_graph.c and flow_cycles.c: a node's
 * intra-flow successors as slots (next, alt, one per branch case; a slot may
 * hold BRAIN_NONE; for_cycles leaves out a call's return edge), and whether
 * it waits for the user (an ask, a CSAT end). */
size_t flow__succ_slots(const node_t *n);
uint16_t flow__succ_at(const node_t *n, size_t i, int for_cycles);
int flow__waits(const node_t *n);
/* flow_cycles.c: reports cycles a turn could go round without waiting,
 * through a call too when the called flow can return without waiting. */
void flow__check_cycles(const brain_flowset_t *fs, loader_t *loaders);
/* Applies each flow file's "guardrails" object over fs->guard (flow_guard.c);
 * problems are reported against the flow file. */
int flow__guard_overrides(brain_flowset_t *fs, json_t *const *roots, core_jsonpos_t *const *pos,
                          const int *flow_src, core_diags_t *diags);
const char *flow__kind_name(node_kind_t k);
/* Across flows: slots used where they cannot have been filled. Needs every
 * flow's loader (positions) by index. */
void flow__check_slots(brain_flowset_t *fs, loader_t *loaders);

void flow__load_slots(loader_t *ld, json_t *slots, const char *path);
void flow__load_vars(loader_t *ld, json_t *vars, const char *path, const char *const *envp);
void flow__settings_messages(loader_t *ld, json_t *msgs, const char *path);
void flow__settings(loader_t *ld, json_t *set, const char *path, const char **flows);
void flow__intents(loader_t *ld, json_t *intents, const char *path, uint16_t flow_index);
/* Adds a training file's examples ({"intent": ["utterance", ...]}) to
 * intents the flows declare; an unknown intent is an error. */
void flow__training(loader_t *ld, json_t *training, const char *path);
void flow__meta(loader_t *ld, json_t *root);

#endif
