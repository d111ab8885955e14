/* entities_int.h — shared only between src/brain/entities*.c: the scanner
 * every recogniser reads through, lexical helpers, and the recognisers.
 *
 * A recogniser is tried at a start position (the beginning of a word, or a
 * sign/currency/bracket) and returns the end of the longest match it can make
 * there, or 0. It sees at most ENT__WINDOW bytes from the start, which bounds
 * the work per position and keeps extraction linear in the input length.
 * See docs/entities.md. */
#ifndef CHORUS_ENTITIES_INT_H
#define CHORUS_ENTITIES_INT_H

#include <stddef.h>

#include "chorus/entities.h"

#define ENT__WINDOW 256 /* bytes a recogniser may look at from its start */

/* The last number-in-words parse, shared by the recognisers tried at one
 * start (most of them begin by reading a number). */
typedef struct ent__nw_cache_s {
    int valid;
    size_t pos, end; /* end 0: no number at pos */
    double value;
    int ordinal;
} ent__nw_cache_t;

typedef struct ent__scan_s {
    const char *s;          /* borrowed input */
    size_t len;             /* end of the window recognisers may read */
    size_t full;            /* real length of the input (for word-end checks) */
    const ent_ctx_t *ctx;   /* reference date and conventions; NULL = none */
    ent__nw_cache_t *cache; /* owned by the caller; NULL = no caching */
} ent__scan_t;

/* ---- lexical helpers (entities.c) --------------------------------------- */

/* Letters, digits and every byte of a multi-byte UTF-8 sequence. */
int ent__is_word_byte(unsigned char c);
/* The largest magnitude a number or an amount may have: a double holds 15
 * significant digits exactly, past them it invents the rest. */
#define ENT_NUMBER_MAX 1e15

int ent__is_digit(unsigned char c);
int ent__is_alpha(unsigned char c);
/* Skips spaces and tabs (and no-break spaces) from p. */
size_t ent__skip_ws(const ent__scan_t *sc, size_t p);
/* 1 if a word may end at p (end of input or a non-word byte follows). */
int ent__word_end_ok(const ent__scan_t *sc, size_t p);
/* End of the ASCII letters run at p (p if none). */
size_t ent__alpha_end(const ent__scan_t *sc, size_t p);
/* Matches the whole word w (lower-case ASCII) at p case-insensitively;
 * returns its end or 0. */
size_t ent__word(const ent__scan_t *sc, size_t p, const char *w);
/* Matches one of list (NULL-terminated) as a whole word at p; returns its
 * index and sets *end, or -1. */
int ent__word_in(const ent__scan_t *sc, size_t p, const char *const *list, size_t *end);
/* Reads up to max_digits decimal digits at p into *val; returns the count. */
int ent__digits(const ent__scan_t *sc, size_t p, int max_digits, long *val);
/* The recognisers (1 << ENT_*) that may match from the ASCII word at p;
 * 0 for a word no built-in entity starts with. */
unsigned ent__first_word_mask(const char *s, size_t len, size_t p);
/* The ASCII word that ends right before p (skipping spaces), lower-cased
 * into out (size >= 16); "" if none. */
void ent__prev_word(const ent__scan_t *sc, size_t p, char *out, size_t out_size);

/* ---- number words (entities_number.c) ----------------------------------- */

/* Reads a number written in words ("twenty five", "a hundred and five",
 * "twenty-first"). Sets *value, *ordinal (1 if the last word was an ordinal)
 * and returns the end, or 0. */
size_t ent__number_words(const ent__scan_t *sc, size_t p, double *value, int *ordinal);
/* Reads a small cardinal 0..max written as digits or words; returns end or 0. */
size_t ent__small_number(const ent__scan_t *sc, size_t p, int max, int *value);
/* An amount: digits (with thousands separators and decimals) or words,
 * optionally scaled by "hundred"/"thousand"/"million" after digits. No
 * word-end check after digits: the caller decides what may follow. */
size_t ent__amount(const ent__scan_t *sc, size_t p, double *value);
/* Formats a number canonically: integers without a decimal point, else
 * up to 15 significant digits. */
void ent__format_number(double v, char *out, size_t out_size);

/* ---- calendar (entities_date.c) ------------------------------------------ */

/* The context's reference date as days since 1970-01-01; 0 if it has none. */
int ent__ref_days(const ent__scan_t *sc, long *days);
/* 0 = Monday .. 6 = Sunday. */
int ent__weekday(long days);
/* days plus n calendar months, the day clamped to the month's length. */
long ent__add_months(long days, long n);
/* Writes the date `days` as "YYYY-MM-DD" into out->value; returns end, or 0
 * if the year is outside 1..9999. */
size_t ent__emit_days(long days, size_t end, ent_t *out);
/* A weekday name at p ("friday", "fri", "Fri."): 0..6 with *end set, or -1. */
int ent__weekday_word(const ent__scan_t *sc, size_t p, size_t *end, int *abbrev);
/* The longest relative date at p (entities_date_rel.c). */
size_t ent__date_relative(const ent__scan_t *sc, size_t p, long ref, ent_t *out);

/* ---- recognisers: return the end of the match at p, or 0 ---------------- */

typedef size_t (*ent__rec_fn)(const ent__scan_t *sc, size_t p, ent_t *out);

/* Tries fns[0..n) at p, each on a copy of *out, and keeps the longest match
 * (the earlier on a tie) in *out; returns its end, or 0 with *out as it was. */
size_t ent__longest_at(const ent__scan_t *sc, size_t p, const ent__rec_fn *fns, size_t n,
                       ent_t *out);

size_t ent__rec_number(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_ordinal(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_money(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_date(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_time(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_email(const ent__scan_t *sc, size_t p, ent_t *out);
size_t ent__rec_phone(const ent__scan_t *sc, size_t p, ent_t *out);

/* ---- Unicode folding shared by choices (entities_fold.c) ---------------- */

/* One folded word of a text: case-folded, diacritics stripped. */
typedef struct ent__word_s {
    size_t start, end; /* byte range in the original text */
    size_t off, len;   /* folded UTF-8 bytes in the fold buffer */
} ent__word_t;

#define ENT__FOLD_MAX_WORDS 512  /* words considered in one text */
#define ENT__FOLD_MAX_BYTES 8192 /* folded bytes kept for one text */

typedef struct ent__folded_s {
    char buf[ENT__FOLD_MAX_BYTES];
    size_t buf_len;
    ent__word_t words[ENT__FOLD_MAX_WORDS];
    size_t n_words;
} ent__folded_t;

/* Splits text into folded words (letters and digits; anything else,
 * including invalid UTF-8, separates words). Stops quietly at the limits. */
void ent__fold_words(const char *text, size_t len, ent__folded_t *out);
/* Damerau-Levenshtein (optimal string alignment) distance between two
 * UTF-8 words, by code point; returns max+1 as soon as it exceeds max. */
int ent__edit_distance(const char *a, size_t alen, const char *b, size_t blen, int max);

#endif
