/* guard.h — the guardrail engine: input rails (PII detection with
 * validation, prompt-injection heuristics, blocked topics, abuse, length and
 * rate limits) and output rails (PII leaks, banned phrases and promises,
 * length per channel), shared by every channel.
 *
 * Pure logic (part of the brain): rules are compiled from JSON text the
 * caller read (config/guardrails.json, per-flow overrides); time comes in as
 * an argument, so decisions are deterministic.
 *
 * Threads: compiled rules are immutable and may be shared by any threads; a
 * guard_bucket_t (per-conversation / per-sender rate state) belongs to one
 * thread at a time.
 * Ownership: guard_rules_load(), guard_rules_override() and
 * guard_rules_default() return owned rules (guard_rules_free);
 * guard_result_t owns its text, sensitive values and fold of the text
 * (guard_result_dispose, which wipes the values) and borrows rule names,
 * replies and reasons from the rules, which must outlive it.
 * Errors: 0 / negative CORE_ERR_*; rule files report every problem as
 * `file:line:col: path: message` in diags.
 * See docs/guardrails.md. */
#ifndef CHORUS_GUARD_H
#define CHORUS_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"

typedef enum {
    GUARD_ALLOW = 0,    /* pass unchanged (decision still recorded) */
    GUARD_REDACT = 1,   /* pass with the matches replaced by [CARD], [EMAIL], ... */
    GUARD_BLOCK = 2,    /* do not process; answer with the rule's safe reply */
    GUARD_ESCALATE = 3, /* hand the conversation to a human */
} guard_action_t;

typedef struct guard_rules_s guard_rules_t;

#define GUARD_MAX_DECISIONS 16
#define GUARD_MAX_SENSITIVE 8

typedef struct guard_decision_s {
    const char *rule;      /* borrowed from the rules: "pii.card", "injection", ... */
    guard_action_t action; /* what the rule decided */
    size_t start, end;     /* byte range in the checked text (0,0 if whole text) */
    double score;          /* detector score where it has one, else 1 */
    const char *reason;    /* borrowed reason code when action >= BLOCK, else NULL */
} guard_decision_t;

/* A value a redaction removed, kept so a slot the flow marks sensitive can
 * still receive it; it never reaches the transcript, logs or metrics. */
typedef struct guard_sensitive_s {
    const char *label; /* borrowed: "CARD", "EMAIL", ... */
    char *value;       /* owned original text */
} guard_sensitive_t;

typedef struct guard_result_s {
    guard_action_t action; /* the strongest action of all decisions */
    char *text;            /* owned: the text to carry on with (redacted if REDACT) */
    size_t text_len;
    const char *reply;  /* borrowed: the safe reply when BLOCK, else NULL */
    const char *reason; /* borrowed: escalation/block reason code, else NULL */
    guard_decision_t decisions[GUARD_MAX_DECISIONS];
    size_t n_decisions;
    guard_sensitive_t sensitive[GUARD_MAX_SENSITIVE];
    size_t n_sensitive;
    size_t n_dropped;  /* decisions beyond GUARD_MAX_DECISIONS (counted, not kept) */
    int use_fallback;  /* output only: an LLM answer failed a rail; say the flow's
                          fallback instead (reply is the rule's default for it) */
    const char *stage; /* "input" or "output" (static) */
    /* Private: the folded words of text (owned), kept by guard_check_input
     * when its word rails read them (NULL when none ran), so that
     * policy_evaluate() on the same text does not fold it again. */
    struct gd_norm_s *priv_fold;
} guard_result_t;

/* Token-bucket state for one rate-limited key (a conversation or a sender).
 * The caller keeps one per key (zero-initialised: a fresh bucket starts
 * full) and passes it in the context; the guard updates it. */
typedef struct guard_bucket_s {
    double tokens;    /* tokens left; refilled at the rule's rate */
    int64_t last_us;  /* time of the last refill, caller's clock */
    int primed;       /* 0 until the first turn fills the bucket */
    uint32_t refused; /* turns refused since the bucket was created */
} guard_bucket_t;

/* What the rails need to know about the turn. */
typedef struct guard_ctx_s {
    const char *channel; /* "chat", "web", "sms", "voice" */
    const char *flow;    /* current flow name, for per-flow overrides; may be NULL */
    int to_llm;          /* input will reach an llm node: injection rails apply */
    int from_llm;        /* output was written by an LLM: promise/phrase rails apply */
    int allow_pii;       /* output message is marked as allowed to show PII */
    int64_t now_us;      /* for rate limits */
    /* Optional; NULL skips the matching rate limit. Mutated by guard_check_input. */
    guard_bucket_t *conversation_bucket;
    guard_bucket_t *sender_bucket;
    /* Optional, copied into event records only. */
    const char *conversation; /* conversation key */
    const char *flow_version; /* version (hash) of the flow set in force */
} guard_ctx_t;

/* Compiles rules from JSON text (file names the source in diagnostics). */
int guard_rules_load(const char *json_text, size_t len, const char *file, guard_rules_t **out,
                     core_diags_t *diags);
/* Built-in default rules (PII redaction, injection, abuse), as shipped in
 * config/guardrails.json. */
guard_rules_t *guard_rules_default(void);
void guard_rules_free(guard_rules_t *rules);

/* Runs the input rails on text (borrowed; len bytes, need not be valid
 * UTF-8). OUT: out, initialised here (any earlier content is overwritten, not
 * freed), to be disposed whatever the return. When the word rails (topics,
 * abuse, injection) read the text, out keeps the text's fold with it
 * (priv_fold): a policy_turn_t whose text is out->text and whose guard is
 * out reuses it, so a turn folds its text once. Returns 0, or
 * CORE_ERR_INVALID for NULL rules or ctx, or NULL text with len > 0. */
int guard_check_input(const guard_rules_t *rules, const guard_ctx_t *ctx, const char *text,
                      size_t len, guard_result_t *out);
/* The output rails on a reply; same conventions as guard_check_input (the
 * output result keeps no fold). */
int guard_check_output(const guard_rules_t *rules, const guard_ctx_t *ctx, const char *text,
                       size_t len, guard_result_t *out);
/* Frees what r owns (text, wiped sensitive values, fold) and zeroes it;
 * accepts NULL. */
void guard_result_dispose(guard_result_t *r);

const char *guard_action_name(guard_action_t a); /* "allow", "redact", "block", "escalate" */
/* Parses an action name; returns 0 or CORE_ERR_INVALID. */
int guard_action_parse(const char *name, guard_action_t *out);

/* ---- overrides and introspection ----------------------------------------- */

/* Applies an override document (same schema as guardrails.json; a flow
 * file's "guardrails" object) on top of base: objects merge key by key,
 * everything else replaces. Returns new owned rules; base is unchanged. */
int guard_rules_override(const guard_rules_t *base, const char *json_text, size_t len,
                         const char *file, guard_rules_t **out, core_diags_t *diags);
/* The shipped default rules as JSON text (static; config/guardrails.json
 * holds the same document). */
const char *guard_rules_default_json(void);
/* Rule names the rules can emit, for reports and `chorusctl guard`: calls
 * fn once per enabled rule. */
void guard_rules_foreach(const guard_rules_t *rules, void (*fn)(const char *rule, void *arg),
                         void *arg);

/* ---- audit events ---------------------------------------------------------- */

/* One rail decision as the store persists it and reports count it. Strings
 * are borrowed from the result, the rules and the context: copy them before
 * any of those go away. */
typedef struct guard_event_s {
    int64_t ts_us;            /* ctx->now_us */
    const char *stage;        /* "input" | "output" */
    const char *rule;         /* "pii.card", "injection", "rate.sender", ... */
    guard_action_t action;    /* the rule's action */
    const char *reason;       /* reason code for block/escalate, else NULL */
    const char *conversation; /* ctx->conversation, may be NULL */
    const char *channel;      /* ctx->channel */
    const char *flow;         /* ctx->flow, may be NULL */
    const char *flow_version; /* ctx->flow_version, may be NULL */
    double score;             /* detector score */
    size_t start, end;        /* byte range in the checked text: never the text itself */
} guard_event_t;

/* Writes one event per decision of r into out (at most max); returns the
 * number of decisions (which may exceed max). */
size_t guard_result_events(const guard_result_t *r, const guard_ctx_t *ctx, guard_event_t *out,
                           size_t max);
/* The decisions of r as a compact JSON array, for a transcript row:
 * [{"stage":"input","rule":"pii.card","action":"redact","start":5,"end":24,
 *   "score":1,"reason":null}, ...]; "[]" when none. Never contains the text.
 * Returns an owned string (free). */
char *guard_result_json(const guard_result_t *r);

#endif
