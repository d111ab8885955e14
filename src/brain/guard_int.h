/* guard_int.h — private to src/brain/guard*.c and policy*.c: the compiled
 * rule set, the PII detectors and the obfuscation-aware term matcher. The
 * public contract is include/chorus/guard.h. */
#ifndef CHORUS_GUARD_INT_H
#define CHORUS_GUARD_INT_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "chorus/guard.h"

/* ---- PII detectors (guard_pii.c) ---------------------------------------- */

enum { GD_CARD, GD_SSN, GD_IBAN, GD_EMAIL, GD_PHONE, GD_PII_N };

typedef struct gd_span_s {
    size_t start, end; /* byte range in the scanned text */
    int kind;          /* GD_* or GD_PII_N + custom index */
    size_t repl_len;   /* length of its "[LABEL]" once redacted, 0 if kept */
} gd_span_t;

/* The matches of one check, as many as there are: every one is redacted.
 * Zero-initialised; gd_spans_dispose() frees it. */
typedef struct gd_spans_s {
    gd_span_t *items; /* owned; kept spans never overlap */
    size_t len, cap;
    /* items[0..sorted) are in order of start; the ones after were added
     * since, in order too (each detector scans left to right) */
    size_t sorted;
} gd_spans_t;

/* Adds a span unless it overlaps one already kept (earlier detectors win). */
void gd_spans_add(gd_spans_t *s, size_t start, size_t end, int kind);
/* Puts every span in order of start. */
void gd_spans_sort(gd_spans_t *s);
void gd_spans_dispose(gd_spans_t *s);

/* Each scanner appends every validated match of its kind in text. */
void gd_scan_cards(const char *t, size_t n, gd_spans_t *out);
void gd_scan_ssns(const char *t, size_t n, gd_spans_t *out);
void gd_scan_ibans(const char *t, size_t n, gd_spans_t *out);
void gd_scan_emails(const char *t, size_t n, gd_spans_t *out);
void gd_scan_phones(const char *t, size_t n, gd_spans_t *out);
void gd_scan_spelled_emails(const char *t, size_t n, gd_spans_t *out); /* "jo at x dot com" */

/* Shared by the scanners: a digit at i starts a number (not glued to letters
 * or an earlier digit group); the number ending at end continues (letters,
 * or a separator and more digits); a context word (lower case, a whole word,
 * or a prefix if it ends in '*') occurs in the window bytes before pos. */
int gd_run_starts(const char *t, size_t i);
int gd_glued_after(const char *t, size_t n, size_t end);
int gd_context_has(const char *t, size_t pos, size_t window, const char *const *words);
/* True if the text at pos is labelled by one of words: the word right before
 * it is one, or is reached past only fillers ("my order number is", "my
 * email is"), at most five words back. */
int gd_label_before(const char *t, size_t pos, const char *const *words,
                    const char *const *fillers);

/* Validators, exposed for unit tests. digits are ASCII '0'..'9'. */
int gd_luhn_ok(const char *digits, size_t n);
int gd_card_prefix_ok(const char *digits, size_t n);
int gd_ssn_ok(int area, int group, int serial);
int gd_iban_ok(const char *compact, size_t n); /* no spaces, any case */

/* ---- normalised tokens and term lists (guard_text.c) -------------------- */

/* A token of the folded text: lower case, accents stripped, leetspeak
 * digits and symbols mapped to letters, runs of single characters split by
 * separators ("f.u.c.k") joined. */
typedef struct gd_tok_s {
    uint32_t off, len;   /* in gd_norm_t.buf */
    uint32_t start, end; /* byte range in the original text */
} gd_tok_t;

typedef struct gd_norm_s {
    char *buf; /* owned folded token characters (and flat after them) */
    size_t buf_len;
    gd_tok_t *toks; /* owned */
    size_t n_toks;
    char *flat; /* in buf's allocation: tokens joined by single spaces, for phrase regexes */
    size_t flat_len;
} gd_norm_t;

/* Folds text (borrowed; token ranges point into it, so whoever reads them
 * needs the same bytes) into nm. Every caller folds the same way: there are
 * no options. */
void gd_norm_build(gd_norm_t *nm, const char *text, size_t len);
void gd_norm_dispose(gd_norm_t *nm);

typedef struct gd_term_s {
    char *words;     /* owned: each folded word as a length byte and its bytes */
    uint8_t n_words; /* words in the phrase */
    uint8_t prefix;  /* the last word may be followed by more letters ("fuck*") */
} gd_term_t;

typedef struct gd_terms_s {
    gd_term_t *items; /* owned */
    size_t len;
    /* index by the first letter of the first word: items[bucket[c]..bucket[c+1]) */
    uint32_t bucket[257];
} gd_terms_t;

void gd_terms_init(gd_terms_t *tl);
void gd_terms_add(gd_terms_t *tl, const char *phrase); /* before gd_terms_finish */
void gd_terms_finish(gd_terms_t *tl);
void gd_terms_dispose(gd_terms_t *tl);
/* Finds the first term of tl in nm; returns 1 and the matching range of the
 * original text, or 0. */
int gd_terms_find(const gd_terms_t *tl, const gd_norm_t *nm, size_t *start, size_t *end);
/* Same, from token from_tok on; returns the matching term's first token
 * index, or (size_t)-1. */
size_t gd_terms_find_tok(const gd_terms_t *tl, const gd_norm_t *nm, size_t from_tok);

/* Finds the first run of base64 or hex of at least min_chars that decodes to
 * readable text; returns 1 with an owned NUL-terminated copy, else 0. */
int gd_find_encoded(const char *t, size_t n, size_t min_chars, char **out, size_t *out_len);

/* Returns NULL if t is valid UTF-8, else an owned copy of the same length
 * with each invalid byte replaced by '?', so that every regex can skip its
 * own check and byte offsets still hold. */
char *gd_utf8_sanitize(const char *t, size_t n);

/* ---- compiled rules (guard_rules.c) -------------------------------------- */

typedef struct gd_rule_s {
    char *name; /* owned: "pii.card" */
    int enabled;
    guard_action_t action;
    char *reply;  /* owned, may be NULL: said instead when blocking/escalating */
    char *reason; /* owned, may be NULL: reason code; defaults to the name */
    char *label;  /* owned: redaction label without brackets, "CARD" */
} gd_rule_t;

typedef struct gd_custom_s {
    gd_rule_t rule;
    pcre2_code *re;
} gd_custom_t;

typedef struct gd_signal_s {
    char *name; /* owned */
    double weight;
    int raw;        /* 1: matched against the raw text (caseless), not the folded one */
    pcre2_code *re; /* over the flattened folded text; NULL if it did not compile */
    /* The regex runs only if a trigger word is in the text (when there are
     * triggers) and one of trigger_chars is (when set): most turns contain
     * none, and a word lookup is far cheaper than a scan per signal. */
    gd_terms_t triggers;
    char *trigger_chars; /* owned, may be NULL */
} gd_signal_t;

typedef struct gd_topic_s {
    gd_rule_t rule;
    gd_terms_t terms;
} gd_topic_t;

typedef struct gd_limit_s {
    char *channel; /* owned */
    size_t max_chars;
} gd_limit_t;

typedef struct gd_flow_rules_s {
    char *flow; /* owned */
    guard_rules_t *rules;
} gd_flow_rules_t;

struct policy_s;

struct guard_rules_s {
    json_t *doc; /* the merged source document, kept for overrides */
    /* input */
    gd_rule_t pii_in[GD_PII_N];
    gd_custom_t *custom;
    size_t n_custom;
    gd_rule_t injection;
    double injection_threshold;
    gd_signal_t *signals;
    size_t n_signals;
    size_t encoded_min; /* shortest base64/hex run scored as an encoded payload */
    double encoded_weight;
    gd_topic_t *topics;
    size_t n_topics;
    gd_rule_t abuse;
    gd_terms_t abuse_terms;
    gd_rule_t length;
    size_t max_bytes;
    gd_rule_t rate_conv, rate_sender;
    double conv_rate, conv_burst; /* tokens per second, bucket size */
    double sender_rate, sender_burst;
    /* output */
    gd_rule_t pii_out[GD_PII_N];
    gd_rule_t banned;
    gd_terms_t banned_terms;
    gd_rule_t promises;
    gd_terms_t promise_terms;
    gd_rule_t out_length;
    int out_length_truncate; /* 1: cut at a word boundary instead of failing */
    gd_limit_t *limits;
    size_t n_limits;
    size_t default_max_chars;
    /* per-flow variants compiled from the "flows" section */
    gd_flow_rules_t *flows;
    size_t n_flows;
    struct policy_s *policy; /* compiled "escalation" section */
};

/* ---- validation helpers shared by guard_rules.c and policy.c -------------- */

typedef struct gd_loader_s {
    const char *file;
    const char *prefix;  /* path of the checked document inside the file, "" or NULL at the top */
    core_jsonpos_t *pos; /* may be NULL (merged documents) */
    core_diags_t *diags;
    int errors;
} gd_loader_t;

void gd_problem(gd_loader_t *ld, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reports every key of obj not in the NULL-terminated list `allowed`. */
void gd_check_keys(gd_loader_t *ld, json_t *obj, const char *path, const char *const *allowed);
/* Typed getters: return the value (or def when absent); report a wrong type. */
json_t *gd_get_obj(gd_loader_t *ld, json_t *obj, const char *path, const char *key);
json_t *gd_get_arr(gd_loader_t *ld, json_t *obj, const char *path, const char *key);
const char *gd_get_str(gd_loader_t *ld, json_t *obj, const char *path, const char *key,
                       const char *def);
double gd_get_num(gd_loader_t *ld, json_t *obj, const char *path, const char *key, double def,
                  double min, double max);
int gd_get_bool(gd_loader_t *ld, json_t *obj, const char *path, const char *key, int def);
/* Compiles a PCRE2 pattern with JIT; reports a bad one at path. */
pcre2_code *gd_compile_re(gd_loader_t *ld, const char *path, const char *pattern, int caseless);
/* Reads an array of strings at obj.key into tl (reports non-strings). */
void gd_get_terms(gd_loader_t *ld, json_t *obj, const char *path, const char *key, gd_terms_t *tl);

/* ---- escalation policy hooks (policy.c) ---------------------------------- */

struct policy_s *gd_policy_compile(gd_loader_t *ld, json_t *esc, const char *path);
/* policy_sentiment() of the text nm was folded from (text: the same bytes). */
double gd_sentiment(const gd_norm_t *nm, const char *text);

#endif
