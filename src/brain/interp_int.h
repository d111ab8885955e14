/* interp_int.h — the interpreter's turn context, shared by interp.c (turn
 * entry, routing, global intents) and interp_nodes.c (one function per node
 * kind, effects). Private to src/brain. */
#ifndef CHORUS_INTERP_INT_H
#define CHORUS_INTERP_INT_H

#include "brain/brain_int.h"

/* What the next input answers (brain_conv_t.wait). */
enum {
    WAIT_NONE = 0,    /* idle, or between nodes */
    WAIT_ASK = 1,     /* an ask node's question */
    WAIT_CSAT = 2,    /* the 1-5 rating of an end node */
    WAIT_EFFECT = 3,  /* an action/llm result (not an input) */
    WAIT_CONFIRM = 4, /* voice: "I heard X. Is that right?" */
};

/* What a node step did. */
typedef enum {
    STEP_NEXT,   /* moved on: keep running */
    STEP_WAIT,   /* waiting for the user: the turn is done */
    STEP_EFFECT, /* waiting for an effect: return BRAIN_NEED_EFFECT */
    STEP_STOP,   /* flow finished, conversation ended or handed off */
} step_t;

typedef struct ctx_s {
    const brain_flowset_t *fs;
    brain_conv_t *conv;
    brain_out_t *out;
    brain_turnctx_t tc;
    const brain_input_t *in; /* this turn's input; NULL when resuming */
    ent_list_t entities;     /* lazily extracted */
    int have_entities;
} ctx_t;

void interp__emit(ctx_t *x, const msg_t *m, int from_llm);
void interp__emit_text(ctx_t *x, const char *text, int from_llm);
void interp__event(ctx_t *x, const char *name, const char *label, double value);
/* Moves to node (BRAIN_NONE: the flow is complete: return to a caller or go idle). */
step_t interp__go(ctx_t *x, uint16_t node);
void interp__start_flow(ctx_t *x, uint16_t flow);
void interp__handoff(ctx_t *x, const char *reason, const char *queue);
/* Runs nodes until the turn waits, stops or needs an effect. */
int interp__run(ctx_t *x);
/* Node steps (interp_nodes.c). */
step_t interp__step(ctx_t *x);
/* Handles the answer to the ask the conversation waits on; returns 1 when
 * consumed (filled, confirmed, or failed an attempt), 0 when the input should
 * be routed instead. */
int interp__answer(ctx_t *x, int routed_global);
/* Re-emits the current ask's prompt (after help). */
void interp__reprompt(ctx_t *x);
int interp__resume(ctx_t *x, const brain_effect_result_t *res);
const ent_list_t *interp__entities(ctx_t *x);
const flow_t *interp__flow(const ctx_t *x);
const node_t *interp__node(const ctx_t *x);
void interp__clear_slots(brain_conv_t *c);
/* Frees what the output owns and empties it for the next turn (interp_out.c). */
void interp__out_reset(brain_out_t *out);
void interp__effect_dispose(brain_effect_t *e);
/* Rail audit and escalation policy (interp_policy.c). One event per decision
 * ("guard" for input, "guard_out" for output; label rule, value action). */
void interp__rail_events(ctx_t *x, const guard_result_t *r, int output);
/* The policy's reason code for c, else dflt. */
const char *interp__reason(const ctx_t *x, policy_criterion_t c, const char *dflt);
/* Runs the policy after a turn that answered a user message. */
void interp__policy(ctx_t *x);

#endif
