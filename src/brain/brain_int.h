/* brain_int.h — the compiled form of a flowset, shared by the compiler
 * (flow_*.c), the template engine (template.c), the interpreter (interp*.c)
 * and conversation state (conv.c). Private to src/brain. */
#ifndef CHORUS_BRAIN_INT_H
#define CHORUS_BRAIN_INT_H

#include <jansson.h>
#include <stdatomic.h>

#include "chorus/brain.h"
#include "chorus/nlu.h"

#define BRAIN_MAX_STEPS 64 /* nodes one turn may visit: bounds a turn's cost */
/* Bytes of a slot's value from a set, an action's map or an LLM answer, cut
 * between characters: the saved state stays far below its 1 MiB limit. */
#define BRAIN_SLOT_VALUE_MAX 1024

/* ---- templates ----------------------------------------------------------- */

typedef enum {
    TPL_REF_SLOT,      /* {{name}} or {{slots.name}} */
    TPL_REF_CHANNEL,   /* {{conversation.channel}} */
    TPL_REF_TURNS,     /* {{conversation.turns}} */
    TPL_REF_VAR,       /* {{vars.name}} */
    TPL_REF_INTENT,    /* {{intent}} / {{intent.name}} */
    TPL_REF_USER_TEXT, /* {{user.text}}: this turn's utterance */
    TPL_REF_FLOW,      /* {{flow.name}} */
} tpl_ref_t;

typedef enum {
    TPL_F_UPPER,
    TPL_F_LOWER,
    TPL_F_DATE,    /* arg: "long" (default), "short", "iso", "weekday" */
    TPL_F_NUMBER,  /* arg: decimals (default 0 for integers, else 2) */
    TPL_F_MONEY,   /* two decimals with thousands separators */
    TPL_F_DEFAULT, /* arg: text when the value is empty */
    TPL_F_URL,     /* percent-encode */
    TPL_F_JSON,    /* escape for a JSON string */
    TPL_F_RAW,     /* skip the channel's escaping */
} tpl_filter_kind_t;

typedef struct tpl_filter_s {
    tpl_filter_kind_t kind;
    char *arg; /* owned, may be NULL */
} tpl_filter_t;

typedef struct tpl_part_s {
    int is_ref;    /* 0: literal text, 1: reference */
    char *text;    /* literal text, or the reference's name (slot/var) */
    size_t len;    /* bytes of text */
    tpl_ref_t ref; /* kind of reference */
    int index;     /* slot index or var index, -1 if unknown */
    tpl_filter_t *filters;
    size_t n_filters;
} tpl_part_t;

typedef struct brain_tpl_s {
    tpl_part_t *parts;
    size_t n;
    int constant; /* no references: parts[0] is the whole text */
} brain_tpl_t;

typedef enum {
    TPL_ESC_NONE,
    TPL_ESC_HTML, /* web: & < > " ' */
    TPL_ESC_XML,  /* voice (SSML): & < > */
    TPL_ESC_URL,  /* URLs of actions */
    TPL_ESC_JSON, /* inside a JSON string */
} tpl_escape_t;

struct brain_turnctx_s;

/* Parses s into t. On error returns CORE_ERR_INVALID with msg set. Reference
 * names are left unresolved (index -1) for the compiler to resolve. */
int brain__tpl_parse(const char *s, brain_tpl_t *t, char *msg, size_t msg_size);
void brain__tpl_dispose(brain_tpl_t *t);
/* Renders t; values come from conv and the turn context (may be NULL). */
void brain__tpl_render(const brain_flowset_t *fs, const brain_conv_t *conv,
                       const struct brain_turnctx_s *tc, const brain_tpl_t *t, tpl_escape_t esc,
                       core_buf_t *out);
/* Formats an ISO date "YYYY-MM-DD" per style into out; returns 0 or -1. */
int brain__format_date(const char *iso, const char *style, char *out, size_t out_size);

/* ---- compiled flows -------------------------------------------------------- */

typedef enum {
    SLOT_TEXT,
    SLOT_NUMBER,
    SLOT_INTEGER,
    SLOT_YESNO,
    SLOT_CHOICE,
    SLOT_DATE,
    SLOT_TIME,
    SLOT_EMAIL,
    SLOT_PHONE,
    SLOT_MONEY,
    SLOT_REGEX,
    SLOT_ANY, /* filled by set/action/llm only: no parser */
} slot_type_t;

typedef struct slot_def_s {
    char *name;
    slot_type_t type;
    ent_pattern_t *pattern; /* SLOT_REGEX */
    ent_choices_t *choices; /* SLOT_CHOICE */
    char **choice_values;   /* SLOT_CHOICE: canonical values in order */
    size_t n_choices;
    int has_min, has_max;
    double min, max;   /* numbers: value bounds; text: length bounds */
    int confirm_voice; /* ask "I heard X, is that right?" on voice */
    int sensitive;     /* never shown in summaries */
    char *def;         /* default value or NULL */
    char *file;        /* where first declared */
    char *path;
} slot_def_t;

typedef struct msg_s {
    brain_tpl_t *variant[BRAIN_CH__COUNT]; /* NULL where not given */
    brain_tpl_t *choice_title;             /* array */
    brain_tpl_t *choice_value;             /* array */
    size_t n_choices;
    int allow_pii;
    uint8_t safe; /* bit per channel: a constant variant that passed the output
                     rails when the flows compiled needs no check per turn */
} msg_t;

typedef enum {
    COND_ALL,
    COND_ANY,
    COND_NOT,
    COND_SLOT,
    COND_INTENT,
    COND_CHANNEL,
    COND_ENTITY,
    COND_TRUE,
} cond_kind_t;

typedef enum { OP_EXISTS, OP_MISSING, OP_EQ, OP_NE, OP_IN, OP_GT, OP_GE, OP_LT, OP_LE } cond_op_t;

typedef struct cond_s {
    cond_kind_t kind;
    cond_op_t op;
    int slot;      /* COND_SLOT */
    char *value;   /* string operand (slot EQ/NE, intent, channel, entity type) */
    double number; /* numeric operand */
    char **values; /* OP_IN */
    size_t n_values;
    struct cond_s *kids; /* ALL / ANY / NOT */
    size_t n_kids;
} cond_t;

typedef enum {
    NODE_SAY,
    NODE_ASK,
    NODE_BRANCH,
    NODE_SET,
    NODE_ACTION,
    NODE_LLM,
    NODE_HANDOFF,
    NODE_GOTO,
    NODE_CALL,
    NODE_END,
    NODE_RETURN,
    NODE__COUNT
} node_kind_t;

typedef struct assign_s {
    int slot;
    brain_tpl_t value; /* rendered; an empty result clears the slot */
} assign_t;

typedef struct mapping_s {
    int slot;
    char *pointer; /* JSON pointer into the response */
} mapping_t;

typedef struct kv_tpl_s {
    char *name;
    brain_tpl_t value;
} kv_tpl_t;

typedef struct node_s {
    char *name;
    char *path; /* JSON path of the node, for diagnostics */
    node_kind_t kind;
    uint16_t next; /* BRAIN_NONE: flow complete */
    uint16_t alt;  /* on_error / on_fail; BRAIN_NONE: none */
    msg_t *msgs;   /* say, handoff, end: messages said on entry */
    size_t n_msgs;
    /* ask */
    int slot;
    msg_t prompt, reprompt;
    int has_reprompt;
    int max_attempts;
    int force; /* ask even when the slot already has a value */
    /* branch */
    cond_t *conds; /* case i */
    uint16_t *case_next;
    size_t n_cases;
    /* set */
    assign_t *assigns;
    size_t n_assigns;
    /* action / llm */
    char *method;
    brain_tpl_t url;
    kv_tpl_t *headers;
    size_t n_headers;
    json_t *body; /* template JSON: its strings are templates; NULL = none */
    uint32_t timeout_ms, retries, backoff_ms;
    mapping_t *maps;
    size_t n_maps;
    int status_slot;
    brain_tpl_t base_url, system, prompt_tpl;
    char *model, *api_key_env;
    double temperature;
    int max_tokens;
    int say_answer;
    /* handoff */
    char *reason, *queue;
    /* goto / call */
    uint16_t target_flow, target_node;
    char *target_name; /* goto: node name in target_flow, resolved after every flow */
    /* end */
    int csat;
} node_t;

typedef struct intent_def_s {
    char *name;
    char **examples;
    size_t n_examples;
    uint16_t flow; /* flow it starts; BRAIN_NONE for global intents */
    int global;    /* brain__global_t + 1 for global intents, else 0 */
} intent_def_t;

typedef enum {
    GLOBAL_CANCEL = 0,
    GLOBAL_START_OVER = 1,
    GLOBAL_HELP = 2,
    GLOBAL_AGENT = 3,
    GLOBAL_OOS = 4, /* "oos": its examples teach the router what is out of scope */
    GLOBAL__COUNT
} brain_global_t;

/* The reserved out-of-scope intent: examples only, never routed to. */
static inline int brain__intent_is_oos(const intent_def_t *d)
{
    return d->global == GLOBAL_OOS + 1;
}

typedef struct flow_s {
    char *name, *description, *owner, *status, *file;
    node_t *nodes;
    size_t n_nodes;
    uint16_t *by_name; /* node indices sorted by name (brain__node_find) */
    uint16_t start;
    size_t n_intents;
    msg_t help; /* flow-specific help, n/a when no variants */
    int has_help;
    /* an llm node, and one whose system or prompt reads a slot or the
     * user's text: which input the injection rail sees (interp.c) */
    uint8_t has_llm, llm_reads_input;
} flow_t;

typedef struct var_s {
    char *name;
    char *value;
} var_t;

typedef struct settings_s {
    int64_t idle_timeout_us;
    int max_fallbacks;
    double threshold;    /* below this confidence nothing is understood */
    int threshold_given; /* confidence_threshold is in the settings file (no tuning) */
    double interrupt;    /* while a question waits, an intent needs this confidence to take over */
    uint16_t welcome_flow;  /* run on BRAIN_EV_START; BRAIN_NONE = none */
    uint16_t fallback_flow; /* run when nothing is understood; BRAIN_NONE = message */
    uint16_t agent_flow;    /* run for "talk to a human"; BRAIN_NONE = hand off at once */
    char *queue;            /* default handoff queue */
    msg_t fallback, help, cancel, start_over, agent, timeout, csat_prompt, csat_thanks, confirm,
        goodbye, flow_changed, step_limit;
    char *llm_base_url, *llm_model, *llm_api_key_env;
} settings_t;

struct brain_flowset_s {
    atomic_int refs;
    uint32_t version;
    flow_t *flows;
    size_t n_flows;
    slot_def_t *slots;
    size_t n_slots;
    var_t *vars;
    size_t n_vars;
    intent_def_t *intents;
    size_t n_intents;
    uint16_t *intent_order; /* intent indices sorted by name */
    settings_t settings;
    nlu_model_t *nlu;
    int nlu_cached;
    char nlu_hash[65];
    guard_rules_t *guard;
    /* exact examples, normalised, sorted: an example always routes to its intent */
    char **exact;
    uint16_t *exact_intent;
    size_t n_exact;
};

/* Internal slot naming the flow a conversation read back must start again:
 * the node it waited at is gone or of another kind (brain_conv_from_json);
 * its next turn says so and starts that flow (interp.c). */
#define BRAIN_SLOT_RESTART "_restart"

int brain__slot_find(const brain_flowset_t *fs, const char *name);
int brain__var_find(const brain_flowset_t *fs, const char *name);
int brain__flow_find(const brain_flowset_t *fs, const char *name);
/* Slot number slot of fs as a template or a condition reads it: its value
 * in c, else its "default" (NULL when it has none). An ask still asks for a
 * slot that holds only its default. */
static inline const char *brain__slot_value(const brain_flowset_t *fs, const brain_conv_t *c,
                                            int slot)
{
    const char *v = brain_conv_slot(c, fs->slots[slot].name);
    return v != NULL ? v : fs->slots[slot].def;
}

int brain__node_find(const flow_t *f, const char *name);
/* Builds f's name index (by_name) once its nodes are named; before it,
 * brain__node_find finds nothing. */
void brain__node_index(flow_t *f);
int brain__intent_find(const brain_flowset_t *fs, const char *name);
/* The same, by binary search over the sorted index built at compile time. */
int brain__intent_lookup(const brain_flowset_t *fs, const char *name);
/* Lower-cases ASCII, folds runs of space/punctuation to one space, trims. */
void brain__normalise(const char *s, size_t len, char *out, size_t out_size);

void brain__msg_dispose(msg_t *m);
void brain__cond_dispose(cond_t *c);
void brain__flowset_free(brain_flowset_t *fs);

/* ---- the interpreter's per-turn context -------------------------------------- */

typedef struct brain_turnctx_s {
    const char *text; /* this turn's utterance (after input rails) */
    size_t len;
    const char *intent; /* routed intent name or NULL */
    const ent_list_t *entities;
} brain_turnctx_t;

/* Parses a slot value of def's type from text; on success writes the
 * canonical value to out and returns 0, else CORE_ERR_NOT_FOUND (or
 * CORE_ERR_INVALID with why set when found but out of bounds). */
int brain__slot_parse(const slot_def_t *def, const char *text, size_t len, const ent_ctx_t *ref,
                      char *out, size_t out_size, const char **why);
/* Parses yes/no: 1 yes, 0 no, -1 neither. */
int brain__yesno(const char *text, size_t len);

#endif
