/* entities_choices.c — choice slots: canonical values with synonyms, matched
 * as whole words after case and diacritics folding; numbered answers ("2",
 * "the second one") for menus read out on SMS and voice; small typos
 * (Damerau-Levenshtein <= 1 for words of 4-7 letters, <= 2 from 8). Two
 * different values named at once is ambiguous. See docs/entities.md. */
#include <stdlib.h>
#include <string.h>

#include "brain/entities_int.h"

typedef struct phrase_s {
    char *buf;   /* owned: folded words back to back */
    size_t *off; /* owned: n_words offsets into buf */
    size_t *len; /* owned: n_words byte lengths */
    size_t n_words;
    size_t choice; /* index into values */
} phrase_t;

struct ent_choices_s {
    char **values; /* owned canonical values, in the order added */
    size_t n_values, cap_values;
    phrase_t *phrases; /* owned: values and synonyms */
    size_t n_phrases, cap_phrases;
};

ent_choices_t *ent_choices_new(void)
{
    return core_xcalloc(1, sizeof(ent_choices_t));
}

void ent_choices_free(ent_choices_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_values; i++)
        free(c->values[i]);
    for (size_t i = 0; i < c->n_phrases; i++) {
        free(c->phrases[i].buf);
        free(c->phrases[i].off);
        free(c->phrases[i].len);
    }
    free(c->values);
    free(c->phrases);
    free(c);
}

static void add_phrase(ent_choices_t *c, const char *text, size_t choice, ent__folded_t *f)
{
    ent__fold_words(text, strlen(text), f);
    if (f->n_words == 0)
        return; /* nothing to match a word against */
    if (c->n_phrases == c->cap_phrases) {
        c->cap_phrases = c->cap_phrases ? c->cap_phrases * 2 : 8;
        c->phrases = core_xrealloc(c->phrases, c->cap_phrases * sizeof(phrase_t));
    }
    phrase_t *ph = &c->phrases[c->n_phrases++];
    ph->buf = core_xmalloc(f->buf_len + 1);
    memcpy(ph->buf, f->buf, f->buf_len);
    ph->buf[f->buf_len] = '\0';
    ph->off = core_xmalloc(f->n_words * sizeof(size_t));
    ph->len = core_xmalloc(f->n_words * sizeof(size_t));
    for (size_t i = 0; i < f->n_words; i++) {
        ph->off[i] = f->words[i].off;
        ph->len[i] = f->words[i].len;
    }
    ph->n_words = f->n_words;
    ph->choice = choice;
}

void ent_choices_add(ent_choices_t *c, const char *value, const char *const *synonyms)
{
    if (c == NULL || value == NULL)
        return;
    if (c->n_values == c->cap_values) {
        c->cap_values = c->cap_values ? c->cap_values * 2 : 8;
        c->values = core_xrealloc(c->values, c->cap_values * sizeof(char *));
    }
    size_t idx = c->n_values++;
    c->values[idx] = core_xstrdup(value);
    ent__folded_t *f = core_xmalloc(sizeof(*f));
    add_phrase(c, value, idx, f);
    for (size_t i = 0; synonyms != NULL && synonyms[i] != NULL; i++)
        add_phrase(c, synonyms[i], idx, f);
    free(f);
}

/* ---- matching ------------------------------------------------------------- */

typedef struct match_s {
    size_t choice; /* value index */
    size_t first;  /* first text word */
    size_t n;      /* text words covered */
    int dist;      /* total edit distance */
} match_t;

static int typo_budget(size_t folded_len)
{
    return folded_len >= 8 ? 2 : folded_len >= 4 ? 1 : 0;
}

static size_t cp_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Distance of phrase ph against text words from w; -1 if a word is too far. */
static int phrase_distance(const phrase_t *ph, const ent__folded_t *t, size_t w, int fuzzy)
{
    int total = 0;
    for (size_t k = 0; k < ph->n_words; k++) {
        const ent__word_t *tw = &t->words[w + k];
        const char *pw = ph->buf + ph->off[k];
        if (tw->len == ph->len[k] && memcmp(t->buf + tw->off, pw, tw->len) == 0)
            continue;
        if (!fuzzy)
            return -1;
        int budget = typo_budget(cp_count(pw, ph->len[k]));
        size_t diff = tw->len > ph->len[k] ? tw->len - ph->len[k] : ph->len[k] - tw->len;
        if (budget == 0 || diff > (size_t)budget * 4)
            return -1; /* even 4-byte characters cannot close that gap */
        int d = budget ? ent__edit_distance(t->buf + tw->off, tw->len, pw, ph->len[k], budget) : 1;
        if (d > budget)
            return -1;
        total += d;
    }
    return total;
}

/* Which value a set of matches names: the closest ones count; two
 * different values among them (or one phrase of two values) is ambiguous. */
typedef struct decision_s {
    match_t keep; /* the value found when found == 1 */
    int found;    /* 0 none, 1 one value, 2 ambiguous */
    int min_dist; /* distance of the matches that count */
} decision_t;

static void decide(decision_t *dc, const match_t *at, int at_ambiguous)
{
    if (at->dist > dc->min_dist)
        return;
    if (at->dist < dc->min_dist) {
        dc->min_dist = at->dist;
        dc->found = 0;
    }
    if (at_ambiguous || (dc->found && at->choice != dc->keep.choice))
        dc->found = 2;
    else if (!dc->found) {
        dc->keep = *at;
        dc->found = 1;
    }
}

/* The best match at every text position (longer phrases first, then closer
 * ones), dropping those inside a longer match, so that "premum economy" is
 * a typo of "premium economy" rather than an exact "economy". One pass
 * decides both among the exact matches and among the closest fuzzy ones. */
static void resolve(const ent_choices_t *c, const ent__folded_t *t, decision_t *exact,
                    decision_t *fuzzy)
{
    *exact = (decision_t){{0, 0, 0, 0}, 0, 0};
    *fuzzy = (decision_t){{0, 0, 0, 0}, 0, 1 << 20};
    size_t reach = 0;
    for (size_t w = 0; w < t->n_words; w++) {
        match_t at = {0, w, 0, 0};
        int at_ambiguous = 0, have = 0;
        for (size_t i = 0; i < c->n_phrases; i++) {
            const phrase_t *ph = &c->phrases[i];
            if (w + ph->n_words > t->n_words || (have && ph->n_words < at.n))
                continue;
            int d = phrase_distance(ph, t, w, 1);
            if (d < 0)
                continue;
            if (!have || ph->n_words > at.n || d < at.dist) {
                at = (match_t){ph->choice, w, ph->n_words, d};
                at_ambiguous = 0;
                have = 1;
            } else if (d == at.dist && ph->choice != at.choice) {
                at_ambiguous = 1; /* one phrase, two values */
            }
        }
        if (!have || w + at.n <= reach)
            continue; /* inside a longer match that started earlier */
        reach = w + at.n;
        decide(exact, &at, at_ambiguous);
        decide(fuzzy, &at, at_ambiguous);
    }
}

static const char *const filler[] = {
    "the",    "one",    "option", "number", "no",     "choice", "please", "i",
    "ll",     "take",   "want",   "pick",   "choose", "go",     "with",   "for",
    "me",     "d",      "like",   "would",  "it",     "is",     "s",      "that",
    "answer", "select", "nr",     "num",    "ok",     "okay",   "just",   NULL,
};
static const char *const ordinal_words[] = {
    "first",   "second", "third", "fourth", "fifth", "sixth",
    "seventh", "eighth", "ninth", "tenth",  NULL,
};
static const char *const cardinal_words[] = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", NULL,
};

static int word_is(const ent__folded_t *t, size_t w, const char *s)
{
    return t->words[w].len == strlen(s) &&
           memcmp(t->buf + t->words[w].off, s, t->words[w].len) == 0;
}

/* The menu position a word names ("2", "2nd", "second", "two", "last"); 0 if none. */
static size_t position_of(const ent__folded_t *t, size_t w, size_t n_values)
{
    const char *s = t->buf + t->words[w].off;
    size_t len = t->words[w].len, v = 0, i = 0;
    while (i < len && i < 4 && ent__is_digit((unsigned char)s[i]))
        v = v * 10 + (size_t)(s[i++] - '0');
    if (i > 0 &&
        (i == len || (len - i == 2 && (!memcmp(s + i, "st", 2) || !memcmp(s + i, "nd", 2) ||
                                       !memcmp(s + i, "rd", 2) || !memcmp(s + i, "th", 2)))))
        return v;
    for (i = 0; ordinal_words[i]; i++)
        if (word_is(t, w, ordinal_words[i]) || word_is(t, w, cardinal_words[i]))
            return i + 1;
    if (word_is(t, w, "last"))
        return n_values;
    return 0;
}

/* A numbered answer: one position word, the rest filler ("the second one"). */
static size_t numbered(const ent_choices_t *c, const ent__folded_t *t, size_t *word)
{
    size_t pos = 0, found = 0, one = t->n_words;
    for (size_t w = 0; w < t->n_words; w++) {
        int is_filler = 0;
        for (size_t i = 0; filler[i] && !is_filler; i++)
            is_filler = word_is(t, w, filler[i]);
        if (is_filler) {
            if (word_is(t, w, "one") && one == t->n_words)
                one = w;
            continue;
        }
        size_t p = position_of(t, w, c->n_values);
        if (p == 0 || found)
            return 0;
        pos = p;
        found = 1;
        *word = w;
    }
    /* "one" alone, or "option one"; but "no one" is a refusal, not "no. 1" */
    if (!found && one < t->n_words && !(one > 0 && word_is(t, one - 1, "no"))) {
        pos = 1;
        *word = one;
    }
    return pos >= 1 && pos <= c->n_values ? pos : 0;
}

static void fill(const ent_choices_t *c, size_t choice, size_t start, size_t end, double conf,
                 ent_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = ENT_CHOICE;
    out->start = start;
    out->end = end;
    out->number = (double)(choice + 1);
    out->confidence = conf;
    const char *v = c->values[choice];
    size_t n = strlen(v);
    if (n >= ENT_VALUE_MAX) { /* cut on a character boundary */
        n = ENT_VALUE_MAX - 1;
        while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out->value, v, n);
    out->value[n] = '\0';
}

int ent_choices_find(const ent_choices_t *c, const char *text, size_t len, ent_t *out)
{
    if (c == NULL || text == NULL || c->n_values == 0)
        return CORE_ERR_NOT_FOUND;
    ent__folded_t *t = core_xmalloc(sizeof(*t));
    ent__fold_words(text, len, t);
    int rc = CORE_ERR_NOT_FOUND;
    decision_t exact, fuzzy, *dc = &exact;
    size_t w;
    resolve(c, t, &exact, &fuzzy);
    if (exact.found == 0) {
        size_t pos = numbered(c, t, &w);
        if (pos) {
            fill(c, pos - 1, t->words[w].start, t->words[w].end, 1.0, out);
            free(t);
            return 0;
        }
        dc = &fuzzy;
    }
    if (dc->found == 1) {
        const match_t *m = &dc->keep;
        double conf = m->dist == 0 ? 1.0 : m->dist == 1 ? 0.8 : 0.6;
        fill(c, m->choice, t->words[m->first].start, t->words[m->first + m->n - 1].end, conf, out);
        rc = 0;
    } else if (dc->found > 1) {
        rc = CORE_ERR_EXISTS;
    }
    free(t);
    return rc;
}
