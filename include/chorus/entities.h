/* entities.h — entity extraction for slot filling and routing: numbers,
 * ordinals, money, dates and times (absolute and relative to a reference
 * date), emails, phone numbers, codes by pattern, and the values of choice
 * slots with synonyms and small typos.
 *
 * Pure logic (part of the brain): no I/O, no clock. "Today" is the caller's
 * ent_ctx_t, so results are deterministic and testable.
 *
 * Threads: every function is reentrant; a compiled pattern, and a choice set
 * once its last ent_choices_add() is done, is immutable and may be shared
 * between threads.
 * Ownership: ent_list_t and ent_t hold no pointers into the input; values
 * are copied. x_new/x_free pairs as usual.
 * Errors: 0 / negative CORE_ERR_*; "nothing found" is not an error (the
 * list is empty, or the parse functions return CORE_ERR_NOT_FOUND).
 * See docs/entities.md. */
#ifndef CHORUS_ENTITIES_H
#define CHORUS_ENTITIES_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"

typedef enum {
    ENT_NUMBER,  /* "42", "3.5", "forty two", "1,200" -> number */
    ENT_ORDINAL, /* "3rd", "third", "the second one" -> number */
    ENT_MONEY,   /* "$12.50", "12 dollars", "EUR 30" -> number + currency */
    ENT_DATE,    /* "2026-12-04", "4 Dec", "tomorrow", "next friday", "in 3 days" */
    ENT_TIME,    /* "14:30", "2:30 pm", "noon", "half past three" */
    ENT_EMAIL,   /* lower-cased address */
    ENT_PHONE,   /* normalised to E.164 */
    ENT_PATTERN, /* a code matching a slot's regular expression (booking refs) */
    ENT_CHOICE,  /* a canonical value of a choice slot */
    ENT__COUNT
} ent_type_t;

#define ENT_VALUE_MAX 128
#define ENT_LIST_MAX 32

typedef struct ent_s {
    ent_type_t type;
    size_t start, end;         /* byte range of the match in the input */
    char value[ENT_VALUE_MAX]; /* canonical text: "42", "2026-12-04", "14:30",
                                  "12.50" (money), "+14155550100", "ABC123", choice value */
    double number;             /* NUMBER, ORDINAL, MONEY: the numeric value;
                                  TIME: minutes since midnight; CHOICE: the
                                  value's 1-based position in the order added */
    char currency[4];          /* MONEY: ISO 4217 code, "" if unknown */
    double confidence;         /* 1.0 exact; lower for fuzzy choice matches */
} ent_t;

typedef struct ent_list_s {
    ent_t items[ENT_LIST_MAX];
    size_t len;
} ent_list_t;

/* What "today" and local conventions are for relative expressions. */
typedef struct ent_ctx_s {
    int year, month, day;         /* reference date (local) */
    int hour, minute;             /* reference time (local), for "in 2 hours" */
    const char *default_currency; /* "USD" when a bare "$" or "dollars"; NULL = "USD" */
    const char *default_country;  /* ISO 3166 alpha-2 for phone numbers without + and
                                     the order of "12/04/2026" (US: month first); NULL = "US" */
} ent_ctx_t;

const char *ent_type_name(ent_type_t type);            /* "number", "date", ... */
int ent_type_parse(const char *name, ent_type_t *out); /* 0, or CORE_ERR_NOT_FOUND */

/* Finds every built-in entity (NUMBER..PHONE) in text (borrowed, len bytes,
 * any bytes: need not be NUL-terminated or valid UTF-8), in order of start,
 * longest match first where they overlap (a date's "4" is not also a
 * number); at most ENT_LIST_MAX, the first ones. ctx may be NULL: relative
 * dates and times and dates without a year are then not found. Work is
 * linear in len. Returns 0 (an empty list when nothing is found). */
int ent_extract(const char *text, size_t len, const ent_ctx_t *ctx, ent_list_t *out);

/* Finds the first entity of one built-in type in text, for filling a slot of
 * that type from an utterance: after the same overlap resolution, else with
 * that type alone ("4 December" still gives a number slot 4). Returns 0 with
 * *out filled, CORE_ERR_NOT_FOUND, or CORE_ERR_INVALID for a type that is not
 * built in (PATTERN, CHOICE). */
int ent_find(ent_type_t type, const char *text, size_t len, const ent_ctx_t *ctx, ent_t *out);

/* ---- pattern slots: a regular expression (PCRE2, JIT) ------------------- */
typedef struct ent_pattern_s ent_pattern_t;
/* Compiles regex (borrowed; UTF-8; caseless != 0 for case-insensitive).
 * Returns an owned pattern, or NULL with err set to CORE_ERR_INVALID and a
 * message naming the pattern and the offset where it failed. */
ent_pattern_t *ent_pattern_new(const char *regex, int caseless, core_err_t *err);
void ent_pattern_free(ent_pattern_t *p);
/* Finds the best match in text: never one that cuts a word in two; one with
 * digits or capitals before one without; else the first. value is the match
 * (or its first capture group), upper-cased when the pattern is caseless
 * (booking codes), else as written. Returns 0 or CORE_ERR_NOT_FOUND. */
int ent_pattern_find(const ent_pattern_t *p, const char *text, size_t len, ent_t *out);

/* ---- choice slots: values with synonyms and typo tolerance -------------- */
typedef struct ent_choices_s ent_choices_t;
ent_choices_t *ent_choices_new(void);
void ent_choices_free(ent_choices_t *c);
/* Adds a canonical value and its synonyms (NULL-terminated, may be NULL);
 * all are copied. Values longer than ENT_VALUE_MAX - 1 bytes are returned
 * cut on a character boundary. */
void ent_choices_add(ent_choices_t *c, const char *value, const char *const *synonyms);
/* Finds the choice the text names: exact word match of a value or synonym
 * (case and diacritics folded), else "1"/"first"/"the second one" for a
 * position in the order added (numbered menus on SMS and voice), else a
 * close typo (Damerau-Levenshtein <= 1 for words of 4-7 letters, <= 2 from
 * 8; confidence < 1). number is the value's 1-based position. Returns 0,
 * CORE_ERR_NOT_FOUND, or CORE_ERR_EXISTS when the text names two values. */
int ent_choices_find(const ent_choices_t *c, const char *text, size_t len, ent_t *out);

#endif
