/* brain.h — the conversational brain: flow language compiler and validator,
 * template engine, flow interpreter and conversation state. Every channel
 * shares it; the runtime, `chorusctl chat` and `chorusctl test` run exactly
 * this code.
 *
 * Pure logic: no I/O, no clock, no environment. Flow files arrive as
 * (name, text) pairs read by the caller; "now" and the reference date arrive
 * in each input; environment overrides of flow variables arrive as an envp
 * array at compile time. When a turn needs the outside world (an HTTP call to
 * a business backend, an LLM chat completion) brain_turn() stops with
 * BRAIN_NEED_EFFECT and a description of the request; the caller performs it
 * and continues the same turn with brain_resume().
 *
 * Threads: brain_flowset_compile() may run on any thread (the runtime uses
 * the thread pool: it trains the intent router). A compiled flowset is
 * immutable and reference-counted (the count is atomic), so a hot reload
 * swaps in a new one while conversations in flight keep the one they started
 * on. A brain_conv_t and a brain_out_t belong to one thread at a time.
 *
 * Ownership: the flowset is released with brain_flowset_unref(). brain_conv_t
 * and brain_out_t are caller-embedded (init/dispose). Strings in a
 * brain_out_t are owned by it; names in it (flow, node, intent, rules) are
 * borrowed from the flowset and live as long as it does.
 *
 * Errors: 0 / negative CORE_ERR_*. Flow problems are reported all at once as
 * `file:line:col: json.path: message` diagnostics. The flow language is
 * documented in docs/flow-language.md (schema: docs/flow.schema.json),
 * conversation tests in docs/testing-flows.md. */
#ifndef CHORUS_BRAIN_H
#define CHORUS_BRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"
#include "chorus/entities.h"
#include "chorus/guard.h"
#include "chorus/nlu.h"
#include "chorus/policy.h"

/* ---- channels ------------------------------------------------------------ */

typedef enum {
    BRAIN_CH_DEFAULT = 0, /* no channel-specific variant; also the fallback variant */
    BRAIN_CH_CHAT = 1,
    BRAIN_CH_WEB = 2,
    BRAIN_CH_SMS = 3,
    BRAIN_CH_VOICE = 4,
    BRAIN_CH__COUNT
} brain_channel_t;

const char *brain_channel_name(brain_channel_t ch); /* "default", "chat", ... */
/* Parses a channel name; returns 0 or CORE_ERR_NOT_FOUND. */
int brain_channel_parse(const char *name, brain_channel_t *out);

/* ---- flowsets: compiled, immutable, reference-counted ---------------------- */

typedef struct brain_flowset_s brain_flowset_t;

typedef struct brain_source_s {
    const char *name; /* file name used in diagnostics ("flows/booking.json") */
    const char *text; /* file contents, need not be NUL-terminated */
    size_t len;       /* bytes of text */
} brain_source_t;

typedef struct brain_compile_opts_s {
    uint32_t version;        /* stamped into conversations; 0 = 1 */
    const char *const *envp; /* NAME=value strings overriding flow variables that
                                declare "env"; NULL = none (the brain never calls getenv) */
    int validate_only;       /* check everything, skip training the intent router */
    /* A cached intent-router model: used when cache_hash equals the hash of the
     * flows' training data (brain_flowset_nlu_hash), else retrained. */
    const void *nlu_cache;      /* model bytes from brain_flowset_nlu_save(); NULL = none */
    size_t nlu_cache_len;       /* bytes */
    const char *nlu_cache_hash; /* 64 hex chars the bytes were saved under */
    /* Guardrail rules as JSON text (config/guardrails.json); NULL = built-in defaults. */
    const char *guard_json;
    size_t guard_len;       /* bytes of guard_json */
    const char *guard_file; /* name for diagnostics */
    int no_guard;           /* run without guardrails (tests of the flows alone) */
} brain_compile_opts_t;

void brain_compile_opts_init(brain_compile_opts_t *opts);

/* Compiles and validates every source (one flow per file, plus optional
 * settings files) into a flowset with refcount 1. Every problem found is
 * appended to diags (borrowed, may hold earlier items); on any problem returns
 * CORE_ERR_INVALID and *out = NULL. */
int brain_flowset_compile(const brain_source_t *sources, size_t n, const brain_compile_opts_t *opts,
                          brain_flowset_t **out, core_diags_t *diags);
brain_flowset_t *brain_flowset_ref(brain_flowset_t *fs); /* returns fs */
void brain_flowset_unref(brain_flowset_t *fs);           /* frees at zero; accepts NULL */

uint32_t brain_flowset_version(const brain_flowset_t *fs);
/* Hash of the intent router's training data: the cache key (64 hex + NUL). */
const char *brain_flowset_nlu_hash(const brain_flowset_t *fs);
/* 1 when the model came from opts.nlu_cache rather than training. */
int brain_flowset_nlu_from_cache(const brain_flowset_t *fs);
/* Serialises the trained intent-router model for the caller's cache;
 * CORE_ERR_NOT_FOUND when compiled with validate_only. */
int brain_flowset_nlu_save(const brain_flowset_t *fs, core_buf_t *out);
/* The intent router the flowset routes with, calibrated as its settings say
 * (docs/nlu.md, "Out-of-scope examples in flows"); borrowed for the
 * flowset's life. NULL when compiled with validate_only. */
const nlu_model_t *brain_flowset_nlu(const brain_flowset_t *fs);
/* The confidence below which the flowset understands nothing: the settings'
 * confidence_threshold, or the one tuned on its out-of-scope examples. */
double brain_flowset_threshold(const brain_flowset_t *fs);
/* Idle timeout after which a conversation ends, microseconds. */
int64_t brain_flowset_idle_timeout_us(const brain_flowset_t *fs);

/* What an operator sees about a flow (admin pages, reports). */
typedef struct brain_flow_info_s {
    const char *name;        /* borrowed */
    const char *description; /* borrowed, "" if none */
    const char *owner;       /* borrowed, "" if none */
    const char *status;      /* "planned" | "in progress" | "live" | "optimizing" */
    const char *file;        /* source name */
    size_t n_nodes;
    size_t n_intents;
} brain_flow_info_t;

size_t brain_flowset_flow_count(const brain_flowset_t *fs);
/* Fills info for flow i (< count); returns 0 or CORE_ERR_NOT_FOUND. */
int brain_flowset_flow_info(const brain_flowset_t *fs, size_t i, brain_flow_info_t *info);

/* ---- conversation state ------------------------------------------------- */

#define BRAIN_NONE 0xFFFF /* no flow / no node: the conversation is idle */
#define BRAIN_STACK_MAX 4 /* nested `call`s */

typedef enum {
    BRAIN_ST_ACTIVE = 0,  /* talking to the bot */
    BRAIN_ST_ENDED = 1,   /* closed by an end node, cancel or idle timeout */
    BRAIN_ST_HANDOFF = 2, /* handed to a human; the bot stays quiet */
} brain_status_t;

/* The live state of one conversation: small, fixed-size apart from the slot
 * buffer, independent of the history's length (the transcript lives in the
 * store). Indices refer to the flowset whose version is in `version`; JSON
 * uses names so a conversation survives restarts and reloads. */
typedef struct brain_conv_s {
    uint32_t version;                     /* flowset version the indices refer to */
    uint16_t flow;                        /* current flow index, BRAIN_NONE when idle */
    uint16_t node;                        /* current node index in flow */
    uint16_t stack_flow[BRAIN_STACK_MAX]; /* caller flows of `call` */
    uint16_t stack_node[BRAIN_STACK_MAX]; /* node to continue at on return */
    uint8_t depth;                        /* entries used in the stack */
    uint8_t channel;                      /* brain_channel_t */
    uint8_t status;                       /* brain_status_t */
    uint8_t wait;                         /* what the next input answers (internal) */
    uint8_t attempts;                     /* failed answers to the current ask */
    uint8_t fallbacks;                    /* consecutive turns nothing understood */
    uint16_t reserved;                    /* zero */
    uint32_t turns;                       /* user turns so far */
    int64_t created_us;                   /* wall clock, microseconds */
    int64_t last_us;                      /* last input, wall clock, microseconds */
    char *slots;                          /* owned "name\0value\0" pairs */
    uint32_t slots_len;                   /* bytes used */
    uint32_t slots_cap;                   /* bytes allocated */
} brain_conv_t;

/* Starts a new conversation (idle, active) on channel at now_us. */
void brain_conv_init(brain_conv_t *c, const brain_flowset_t *fs, brain_channel_t channel,
                     int64_t now_us);
void brain_conv_dispose(brain_conv_t *c);
/* Bytes the conversation occupies in memory (struct + slot buffer). */
size_t brain_conv_memory(const brain_conv_t *c);
/* Slot value (borrowed until the next change), NULL if unset. */
const char *brain_conv_slot(const brain_conv_t *c, const char *name);
/* Sets (value != NULL) or clears a slot. Names starting with '_' are internal. */
void brain_conv_set_slot(brain_conv_t *c, const char *name, const char *value);
/* 1 when a slot fs declares sensitive holds a value: such values live in
 * memory only (brain_conv_to_json leaves them out), so dropping the
 * conversation from memory would lose them. */
int brain_conv_has_sensitive(const brain_flowset_t *fs, const brain_conv_t *c);
/* Wall-clock time (us) after which the runtime should send BRAIN_EV_TIMEOUT;
 * 0 when the conversation is not active. */
int64_t brain_conv_deadline(const brain_flowset_t *fs, const brain_conv_t *c);

/* Serialises to a JSON object (names, not indices) appended to out. */
int brain_conv_to_json(const brain_flowset_t *fs, const brain_conv_t *c, core_buf_t *out);
/* Restores a conversation saved by brain_conv_to_json() against fs (which may
 * be a newer version: a flow or node that no longer exists makes the
 * conversation idle, keeping its slots). c is initialised by this call. */
int brain_conv_from_json(const brain_flowset_t *fs, const char *json, size_t len, brain_conv_t *c,
                         core_err_t *err);
/* The conversation lost its place on fs (the runtime could not put it back
 * on the version it ran): idle, slots kept, and its next turn says
 * settings.messages.flow_changed and starts the flow it was in again (the
 * one it began in, when inside a call), as when its node went away. No-op
 * for a conversation that is not active in a flow. */
void brain_conv_lose_place(const brain_flowset_t *fs, brain_conv_t *c);
/* Moves a conversation from the flowset it was on to another (hot reload). */
int brain_conv_migrate(const brain_flowset_t *from, const brain_flowset_t *to, brain_conv_t *c,
                       core_err_t *err);

/* ---- one turn ------------------------------------------------------------ */

typedef enum {
    BRAIN_EV_MESSAGE = 0, /* the user said or typed something (text) */
    BRAIN_EV_START = 1,   /* the conversation was opened (widget shown, call answered) */
    BRAIN_EV_TIMEOUT = 2, /* the deadline from brain_conv_deadline() passed */
} brain_event_t;

typedef struct brain_input_s {
    brain_event_t event;
    const char *text;   /* UTF-8, borrowed for the call (copied when needed) */
    size_t len;         /* bytes of text */
    const char *intent; /* explicit intent (button payload); NULL = route the text */
    int64_t now_us;     /* wall clock, microseconds */
    ent_ctx_t ref;      /* reference date/time for "tomorrow", "next friday" */
    /* Optional rate-limit state the caller keeps per key (guard.h); NULL skips
     * that limit. Updated by the input rails. */
    guard_bucket_t *conversation_bucket;
    guard_bucket_t *sender_bucket;
    const char *conversation; /* optional key, copied into guardrail event records */
    /* Optional escalation-policy counters the caller keeps per conversation
     * (policy.h); NULL = counters for this turn only (seeded from the
     * conversation's fallbacks). Updated after the turn. */
    policy_state_t *policy;
} brain_input_t;

typedef struct brain_choice_s {
    char *title; /* owned: what the user sees */
    char *value; /* owned: what a tap sends back as text */
} brain_choice_t;

/* Appends ch as {"title":..,"value":..} to b, with "url" (the value again)
 * when with_url and the value is an http(s) URL: on the web such a choice
 * is a link button. A "," goes first unless first. A choice jansson would
 * refuse (title or value not UTF-8) is left out: b is unchanged and the
 * result is an error. Returns 0 when written. */
int brain_choice_json(core_buf_t *b, const brain_choice_t *ch, int first, int with_url);

typedef struct brain_message_s {
    char *text;              /* owned: the channel's variant, rendered and escaped */
    brain_choice_t *choices; /* owned array of quick replies */
    size_t n_choices;
    int from_llm; /* written by an LLM */
} brain_message_t;

typedef enum {
    BRAIN_EFFECT_HTTP = 0, /* a business backend call from an action node */
    BRAIN_EFFECT_LLM = 1,  /* an OpenAI-compatible chat completion from an llm node */
} brain_effect_kind_t;

typedef struct brain_header_s {
    char *name;  /* owned */
    char *value; /* owned */
} brain_header_t;

typedef struct brain_llm_message_s {
    const char *role; /* static: "system", "user", "assistant" */
    char *content;    /* owned */
} brain_llm_message_t;

/* One request the turn needs. For BRAIN_EFFECT_LLM the HTTP fields are filled
 * too (POST {base_url}/chat/completions with the JSON body), so the caller
 * performs both kinds alike; it adds `Authorization: Bearer $api_key_env`
 * itself, because the brain never sees secrets. */
typedef struct brain_effect_s {
    brain_effect_kind_t kind;
    char *method;            /* owned: "GET", "POST", ... */
    char *url;               /* owned, templated, URL-escaped */
    brain_header_t *headers; /* owned array */
    size_t n_headers;
    char *body; /* owned, NULL when no body */
    size_t body_len;
    uint32_t timeout_ms; /* per attempt */
    uint32_t retries;    /* extra attempts after a transport error or 5xx */
    uint32_t backoff_ms; /* wait before retry i: backoff_ms * 2^i */
    char *base_url;      /* LLM: owned */
    char *model;         /* LLM: owned */
    char *api_key_env;   /* LLM: owned name of the variable holding the key, may be NULL */
    brain_llm_message_t *messages; /* LLM: owned array */
    size_t n_messages;
    double temperature; /* LLM */
    int max_tokens;     /* LLM; 0 = server default */
    const char *flow;   /* borrowed: where the request comes from (logs, metrics) */
    const char *node;   /* borrowed */
} brain_effect_t;

/* What happened to the request. All pointers are borrowed for the call. */
typedef struct brain_effect_result_s {
    int error;              /* 0 when a response arrived; else CORE_ERR_TIMEOUT, CORE_ERR_IO... */
    const char *error_text; /* short reason when error != 0, may be NULL */
    int status;             /* HTTP status of the last attempt */
    const char *body;       /* response body, may be NULL */
    size_t body_len;        /* bytes */
    /* LLM: the answer when the caller parsed it; when NULL the brain parses
     * body as a chat-completions response. */
    const char *content;
    int prompt_tokens;     /* LLM usage, 0 if unknown */
    int completion_tokens; /* LLM usage, 0 if unknown */
    uint32_t latency_ms;   /* for metrics */
} brain_effect_result_t;

/* A countable event for metrics and reports. */
typedef struct brain_event_rec_s {
    const char *name;  /* static: "flow_start", "flow_complete", "fallback", "slot_filled",
                          "ask_failed", "handoff", "end", "csat", "effect_error",
                          "llm_tokens", "intent", "guard", "step_limit" (the turn
                          visited BRAIN_MAX_STEPS nodes and was stopped) */
    const char *flow;  /* borrowed, may be NULL */
    const char *node;  /* borrowed, may be NULL */
    const char *label; /* borrowed: slot, intent, reason, rule; may be NULL */
    double value;      /* csat score, token count, ... */
} brain_event_rec_t;

#define BRAIN_MAX_MESSAGES 16
#define BRAIN_MAX_EVENTS 24
#define BRAIN_MAX_FILLED 64 /* slots one turn's words may fill (one per node visited) */

/* The result of a turn. Init once, reuse across turns (brain_turn resets it). */
typedef struct brain_out_s {
    brain_message_t messages[BRAIN_MAX_MESSAGES]; /* in order */
    size_t n_messages;
    brain_status_t status;  /* after the turn */
    const char *end_reason; /* static when ENDED: "end", "cancel", "idle_timeout", "csat" */
    int csat;               /* 1-5 when the user answered the CSAT question, else 0 */
    /* handoff (status HANDOFF): */
    const char *handoff_reason; /* borrowed: flow's reason, "user_request", "fallback", ... */
    const char *handoff_queue;  /* borrowed */
    char *handoff_summary;      /* owned JSON: {"flow","reason","slots":{},"last_user":[]} */
    /* routing of this turn's text: */
    const char *intent;       /* borrowed, NULL when none routed */
    double confidence;        /* 0..1 */
    int out_of_scope;         /* 1 when the router found nothing in scope */
    const char *flow;         /* borrowed: flow after the turn, NULL when idle */
    const char *node;         /* borrowed: node after the turn, NULL when idle */
    const char *confirm_slot; /* borrowed: voice is confirming this slot ("I heard ...") */
    guard_result_t guard_in;  /* input rails' decisions (text redacted if REDACT) */
    guard_action_t guard_out; /* strongest action taken on the bot's messages */
    brain_event_rec_t events[BRAIN_MAX_EVENTS];
    size_t n_events;
    brain_effect_t effect; /* valid after NEED_EFFECT until the next brain_resume() */
    /* Private to the interpreter: the turn's text, kept for brain_resume. */
    char *priv_text;
    size_t priv_len;
    ent_ctx_t priv_ref;
    int64_t priv_now;
    uint32_t priv_steps;
    uint16_t priv_filled[BRAIN_MAX_FILLED]; /* slots (by index) this turn's text filled */
    uint8_t priv_n_filled;
    uint8_t priv_used;
    uint8_t priv_pending;
    uint8_t priv_message;        /* the turn answers a user message (policy runs) */
    policy_state_t *priv_policy; /* the input's policy counters, NULL if none */
} brain_out_t;

void brain_out_init(brain_out_t *out);
void brain_out_dispose(brain_out_t *out);

enum {
    BRAIN_DONE = 0,        /* the turn is finished: out is complete */
    BRAIN_NEED_EFFECT = 1, /* perform out->effect, then call brain_resume() */
};

/* Runs one turn: input rails, intent routing, the flow until it waits for the
 * user, output rails. Returns BRAIN_DONE, BRAIN_NEED_EFFECT, or a negative
 * error (CORE_ERR_INVALID: conv belongs to another flowset version;
 * CORE_ERR_BUSY: an effect is still pending). Cost is bounded: a turn visits
 * at most a fixed number of nodes and never looks at history. */
int brain_turn(const brain_flowset_t *fs, brain_conv_t *conv, const brain_input_t *in,
               brain_out_t *out);
/* Continues the turn that returned BRAIN_NEED_EFFECT with the request's
 * result; same returns as brain_turn(). The out is the one from that call. */
int brain_resume(const brain_flowset_t *fs, brain_conv_t *conv, const brain_effect_result_t *res,
                 brain_out_t *out);

/* Renders a template string against a conversation (for tools and tests):
 * the same engine as flow messages. Returns 0, or CORE_ERR_INVALID with err
 * naming the problem. */
int brain_template_render_string(const brain_flowset_t *fs, const brain_conv_t *conv,
                                 const char *tmpl, brain_channel_t channel, core_buf_t *out,
                                 core_err_t *err);

#endif
