/* Folded tokens and term lists: the matcher behind blocked topics, abuse
 * lists, banned phrases and promises, and the text the injection signals
 * read. Folding defeats the usual disguises: case, accents and look-alike
 * letters (utf8proc and a table, only for non-ASCII input), leetspeak ("sh1t", "a$$"),
 * masking ("f*ck"), stretched letters ("fuuuck") and separated letters
 * ("f.u.c.k", "f u c k"). Terms still match whole words, so "class" never
 * matches "ass". */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "brain/guard_int.h"

enum { C_SEP, C_LETTER, C_DIGIT, C_SYMBOL, C_DROP };

typedef struct {
    gd_norm_t *nm;
    size_t cap;     /* of nm->buf */
    size_t tok_cap; /* of nm->toks */
    size_t cur_off; /* start in buf of the token being built */
    size_t cur_start, cur_end;
    int has_letter;
} builder_t;

static int classify(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return C_LETTER;
    if (c >= '0' && c <= '9')
        return C_DIGIT;
    if (c == '@' || c == '$' || c == '!' || c == '|' || c == '+' || c == '*')
        return C_SYMBOL;
    if (c == '\'' || c == 0x2019)
        return C_DROP; /* "don't" is one word */
    if (c >= 0x80)
        return C_LETTER; /* letters of other scripts stay part of words */
    return C_SEP;
}

static char leet(char c)
{
    switch (c) {
    case '0':
        return 'o';
    case '1':
    case '!':
    case '|':
        return 'i';
    case '3':
        return 'e';
    case '4':
    case '@':
        return 'a';
    case '5':
    case '$':
        return 's';
    case '7':
    case '+':
        return 't';
    case '8':
        return 'b';
    case '9':
        return 'g';
    default:
        return c;
    }
}

static int is_trim(char c)
{
    return c == '!' || c == '+' || c == '|' || c == '*';
}

static void finish_token(builder_t *b)
{
    gd_norm_t *nm = b->nm;
    char *s = nm->buf + b->cur_off;
    size_t len = nm->buf_len - b->cur_off;
    /* trailing "!", "+", "|", "*" and leading "!", "+", "|" are punctuation */
    while (len > 0 && is_trim(s[len - 1]))
        len--;
    size_t lead = 0;
    while (lead < len && is_trim(s[lead]))
        lead++;
    if (lead > 0)
        memmove(s, s + lead, len - lead);
    len -= lead;
    if (len > 0 && b->has_letter)
        for (size_t k = 0; k < len; k++)
            s[k] = leet(s[k]);
    if (len > 0) {
        if (nm->n_toks == b->tok_cap) {
            b->tok_cap = b->tok_cap ? b->tok_cap * 2 : 32;
            nm->toks = core_xrealloc(nm->toks, b->tok_cap * sizeof(*nm->toks));
        }
        nm->toks[nm->n_toks++] = (gd_tok_t){(uint32_t)b->cur_off, (uint32_t)len,
                                            (uint32_t)b->cur_start, (uint32_t)b->cur_end};
    }
    nm->buf_len = b->cur_off + len;
    b->cur_off = nm->buf_len;
    b->has_letter = 0;
}

static void push(builder_t *b, uint32_t c, size_t ostart, size_t oend)
{
    int cls = classify(c);
    if (cls == C_DROP)
        return;
    if (cls == C_SEP) {
        if (b->nm->buf_len > b->cur_off)
            finish_token(b);
        return;
    }
    if (b->nm->buf_len == b->cur_off)
        b->cur_start = ostart;
    b->cur_end = oend;
    if (cls == C_LETTER)
        b->has_letter = 1;
    if (c < 0x80 && b->nm->buf_len + 2 <= b->cap) {
        b->nm->buf[b->nm->buf_len++] = (char)c;
        return;
    }
    utf8proc_uint8_t enc[4];
    utf8proc_ssize_t ne = c < 0x80 ? 1 : utf8proc_encode_char((utf8proc_int32_t)c, enc);
    if (c < 0x80)
        enc[0] = (utf8proc_uint8_t)c;
    if (b->nm->buf_len + (size_t)ne + 1 > b->cap) {
        b->cap = b->cap * 2 + 16;
        b->nm->buf = core_xrealloc(b->nm->buf, b->cap);
    }
    memcpy(b->nm->buf + b->nm->buf_len, enc, (size_t)ne);
    b->nm->buf_len += (size_t)ne;
}

/* Letters that look like a Latin letter (after Unicode's confusables,
 * those that neither decompose nor fold to it): Cyrillic, Greek and
 * Armenian look-alikes, Latin small capitals and letters with a stroke.
 * Keyed by the letter as written, in both cases, because case folding
 * merges capitals whose lower case looks different: Greek "Η" is an H but
 * "η" an n, "Μ" an M but "μ" a u. Sorted by code point. */
static const struct {
    uint16_t from;
    char to;
} lookalikes[] = {
    {0x00D8, 'o'}, {0x00F8, 'o'}, {0x0110, 'd'}, {0x0111, 'd'}, {0x0126, 'h'}, {0x0127, 'h'},
    {0x0131, 'i'}, {0x0138, 'k'}, {0x0141, 'l'}, {0x0142, 'l'}, {0x0166, 't'}, {0x0167, 't'},
    {0x0237, 'j'}, {0x0251, 'a'}, {0x0261, 'g'}, {0x0262, 'g'}, {0x0269, 'i'}, {0x026A, 'i'},
    {0x0274, 'n'}, {0x0280, 'r'}, {0x028F, 'y'}, {0x0299, 'b'}, {0x029C, 'h'}, {0x029F, 'l'},
    {0x037F, 'j'}, {0x0391, 'a'}, {0x0392, 'b'}, {0x0395, 'e'}, {0x0396, 'z'}, {0x0397, 'h'},
    {0x0399, 'i'}, {0x039A, 'k'}, {0x039C, 'm'}, {0x039D, 'n'}, {0x039F, 'o'}, {0x03A1, 'p'},
    {0x03A4, 't'}, {0x03A5, 'y'}, {0x03A7, 'x'}, {0x03B1, 'a'}, {0x03B2, 'b'}, {0x03B3, 'y'},
    {0x03B5, 'e'}, {0x03B7, 'n'}, {0x03B9, 'i'}, {0x03BA, 'k'}, {0x03BC, 'u'}, {0x03BD, 'v'},
    {0x03BF, 'o'}, {0x03C1, 'p'}, {0x03C3, 'o'}, {0x03C4, 't'}, {0x03C5, 'u'}, {0x03C7, 'x'},
    {0x03C9, 'w'}, {0x03F2, 'c'}, {0x03F3, 'j'}, {0x03F9, 'c'}, {0x0405, 's'}, {0x0406, 'i'},
    {0x0408, 'j'}, {0x0410, 'a'}, {0x0412, 'b'}, {0x0415, 'e'}, {0x041A, 'k'}, {0x041C, 'm'},
    {0x041D, 'h'}, {0x041E, 'o'}, {0x0420, 'p'}, {0x0421, 'c'}, {0x0422, 't'}, {0x0423, 'y'},
    {0x0425, 'x'}, {0x0430, 'a'}, {0x0432, 'b'}, {0x0435, 'e'}, {0x043A, 'k'}, {0x043C, 'm'},
    {0x043D, 'h'}, {0x043E, 'o'}, {0x043F, 'n'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0442, 't'},
    {0x0443, 'y'}, {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x04AE, 'y'},
    {0x04AF, 'y'}, {0x04BA, 'h'}, {0x04BB, 'h'}, {0x04C0, 'i'}, {0x04CF, 'l'}, {0x0500, 'd'},
    {0x0501, 'd'}, {0x050C, 'g'}, {0x050D, 'g'}, {0x051A, 'q'}, {0x051B, 'q'}, {0x051C, 'w'},
    {0x051D, 'w'}, {0x054D, 'u'}, {0x0555, 'o'}, {0x0561, 'w'}, {0x0566, 'q'}, {0x0570, 'h'},
    {0x0578, 'n'}, {0x057D, 'u'}, {0x0581, 'g'}, {0x0585, 'o'}, {0x1D00, 'a'}, {0x1D04, 'c'},
    {0x1D05, 'd'}, {0x1D07, 'e'}, {0x1D0A, 'j'}, {0x1D0B, 'k'}, {0x1D0D, 'm'}, {0x1D0F, 'o'},
    {0x1D18, 'p'}, {0x1D1B, 't'}, {0x1D1C, 'u'}, {0x1D20, 'v'}, {0x1D21, 'w'}, {0x1D22, 'z'},
    {0xA730, 'f'}, {0xA731, 's'},
};

/* The Latin letter c looks like, or 0. */
static char homoglyph(utf8proc_int32_t c)
{
    size_t lo = 0, hi = sizeof(lookalikes) / sizeof(lookalikes[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (lookalikes[mid].from == c)
            return lookalikes[mid].to;
        if (lookalikes[mid].from < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static const utf8proc_option_t fold_opts =
    UTF8PROC_COMPAT | UTF8PROC_STRIPMARK | UTF8PROC_DECOMPOSE | UTF8PROC_IGNORE;

/* Pushes one letter of a decomposition: its look-alike if it has one (so a
 * capital is judged before folding), else its case-folded form. */
static void push_part(builder_t *b, utf8proc_int32_t cp, size_t start, size_t end)
{
    char h = homoglyph(cp);
    if (h != 0) {
        push(b, (uint32_t)(unsigned char)h, start, end);
        return;
    }
    utf8proc_int32_t out[8];
    int last = 0;
    utf8proc_ssize_t m = utf8proc_decompose_char(
        cp, out, 8, (utf8proc_option_t)(fold_opts | UTF8PROC_CASEFOLD), &last);
    for (utf8proc_ssize_t k = 0; k < m && k < 8; k++) {
        uint32_t c = (uint32_t)out[k];
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
        if (c >= 0x80 && !(cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) &&
            !(cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO))
            c = ' '; /* other punctuation and symbols separate words */
        push(b, c, start, end);
    }
}

/* Folds one non-ASCII character: a look-alike as written ("ϲ", which
 * decomposes to another sigma), else each letter of its compatibility
 * decomposition with accents stripped ("Ή" is "Η", "ё" is "е"). */
static void push_unicode(builder_t *b, const char *text, size_t len, size_t *i)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t n =
        utf8proc_iterate((const utf8proc_uint8_t *)text + *i, (utf8proc_ssize_t)(len - *i), &cp);
    if (n <= 0) {
        push(b, ' ', *i, *i + 1); /* invalid UTF-8 separates words */
        *i += 1;
        return;
    }
    size_t start = *i, end = *i + (size_t)n;
    *i = end;
    char h = homoglyph(cp);
    if (h != 0) {
        push(b, (uint32_t)(unsigned char)h, start, end);
        return;
    }
    utf8proc_int32_t parts[8];
    int last = 0;
    utf8proc_ssize_t m = utf8proc_decompose_char(cp, parts, 8, fold_opts, &last);
    for (utf8proc_ssize_t k = 0; k < m && k < 8; k++)
        push_part(b, parts[k], start, end);
}

/* True if the separators before tokens a and b (a-1..a and b-1..b) are the
 * same bytes. */
static int same_gap(const gd_norm_t *nm, const char *text, size_t a, size_t b)
{
    size_t la = nm->toks[a].start - nm->toks[a - 1].end;
    size_t lb = nm->toks[b].start - nm->toks[b - 1].end;
    return la == lb && memcmp(text + nm->toks[a - 1].end, text + nm->toks[b - 1].end, la) == 0;
}

/* Joins runs of three or more one-letter tokens split by the same one to
 * three separator characters: "f.u.c.k", "f u c k", "f - u - c - k" (a
 * different gap ends the run, so "a f.u.c.k" joins only the last four). */
static void join_singletons(gd_norm_t *nm, const char *text)
{
    size_t w = 0;
    for (size_t r = 0; r < nm->n_toks;) {
        size_t e = r + 1;
        while (nm->toks[r].len == 1 && e < nm->n_toks && nm->toks[e].len == 1 &&
               nm->toks[e].start - nm->toks[e - 1].end <= 3 &&
               (e == r + 1 || same_gap(nm, text, r + 1, e)))
            e++;
        gd_tok_t t = nm->toks[r];
        if (e - r >= 3) {
            /* tokens are stored back to back in buf, so a run is contiguous */
            t.len = (uint32_t)(e - r);
            t.end = nm->toks[e - 1].end;
        } else {
            e = r + 1;
        }
        nm->toks[w++] = t;
        r = e;
    }
    nm->n_toks = w;
}

/* Writes the flat copy after the folded characters in buf (cap bytes),
 * growing it only if they do not leave room (never for ASCII text). */
static void build_flat(gd_norm_t *nm, size_t cap)
{
    size_t need = nm->buf_len + nm->buf_len + nm->n_toks + 1;
    if (need > cap)
        nm->buf = core_xrealloc(nm->buf, need);
    nm->flat = nm->buf + nm->buf_len;
    size_t k = 0;
    for (size_t t = 0; t < nm->n_toks; t++) {
        if (t > 0)
            nm->flat[k++] = ' ';
        memcpy(nm->flat + k, nm->buf + nm->toks[t].off, nm->toks[t].len);
        k += nm->toks[t].len;
    }
    nm->flat[k] = '\0';
    nm->flat_len = k;
}

/* ASCII lower-casing as a table: one load per byte. */
static const unsigned char ascii_fold[128] = {
    0,   1,    2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,  16,   17,  18,
    19,  20,   21,  22,  23,  24,  25,  26,  27,  28,  29,  30,  31,  ' ', '!', '"', '#',  '$', '%',
    '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', '0', '1', '2', '3', '4', '5', '6',  '7', '8',
    '9', ':',  ';', '<', '=', '>', '?', '@', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',  'j', 'k',
    'l', 'm',  'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '[', '\\', ']', '^',
    '_', '`',  'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',  'p', 'q',
    'r', 's',  't', 'u', 'v', 'w', 'x', 'y', 'z', '{', '|', '}', '~', 127,
};

void gd_norm_build(gd_norm_t *nm, const char *text, size_t len)
{
    memset(nm, 0, sizeof(*nm));
    /* room for the folded characters and the flat copy after them: for ASCII
     * text each is at most len + 1 bytes, so one allocation serves both */
    builder_t b = {.nm = nm, .cap = 2 * len + 16};
    nm->buf = core_xmalloc(b.cap);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80) {
            push_unicode(&b, text, len, &i);
            continue;
        }
        c = ascii_fold[c];
        if (c >= 'a' && c <= 'z' && nm->buf_len + 2 <= b.cap) {
            /* the common case, a plain letter, without the general path */
            if (nm->buf_len == b.cur_off)
                b.cur_start = i;
            b.cur_end = i + 1;
            b.has_letter = 1;
            nm->buf[nm->buf_len++] = (char)c;
        } else {
            push(&b, c, i, i + 1);
        }
        i++;
    }
    if (nm->buf_len > b.cur_off)
        finish_token(&b);
    join_singletons(nm, text);
    build_flat(nm, b.cap);
}

void gd_norm_dispose(gd_norm_t *nm)
{
    free(nm->buf); /* and flat, which lives in the same allocation */
    free(nm->toks);
    memset(nm, 0, sizeof(*nm));
}

/* ---- term lists ----------------------------------------------------------- */

void gd_terms_init(gd_terms_t *tl)
{
    memset(tl, 0, sizeof(*tl));
}

void gd_terms_add(gd_terms_t *tl, const char *phrase)
{
    size_t pl = strlen(phrase);
    int prefix = pl > 1 && phrase[pl - 1] == '*';
    gd_norm_t nm;
    gd_norm_build(&nm, phrase, pl - (size_t)prefix);
    if (nm.n_toks == 0 || nm.n_toks > 255) {
        gd_norm_dispose(&nm);
        return;
    }
    /* words stored as a length byte and the folded letters, one after another */
    char *words = core_xmalloc(nm.flat_len + nm.n_toks + 1);
    size_t w = 0;
    for (size_t k = 0; k < nm.n_toks; k++) {
        size_t len = nm.toks[k].len > 255 ? 255 : nm.toks[k].len;
        words[w++] = (char)len;
        memcpy(words + w, nm.buf + nm.toks[k].off, len);
        w += len;
    }
    words[w] = '\0';
    tl->items = core_xrealloc(tl->items, (tl->len + 1) * sizeof(*tl->items));
    tl->items[tl->len++] = (gd_term_t){words, (uint8_t)nm.n_toks, (uint8_t)prefix};
    gd_norm_dispose(&nm);
}

static int term_cmp(const void *a, const void *b)
{
    const gd_term_t *x = a, *y = b;
    return (int)(unsigned char)x->words[1] - (int)(unsigned char)y->words[1];
}

void gd_terms_finish(gd_terms_t *tl)
{
    if (tl->len > 1)
        qsort(tl->items, tl->len, sizeof(*tl->items), term_cmp);
    size_t k = 0;
    for (unsigned c = 0; c <= 256; c++) {
        while (k < tl->len && (unsigned char)tl->items[k].words[1] < c)
            k++;
        tl->bucket[c] = (uint32_t)k;
    }
}

void gd_terms_dispose(gd_terms_t *tl)
{
    for (size_t i = 0; i < tl->len; i++)
        free(tl->items[i].words);
    free(tl->items);
    memset(tl, 0, sizeof(*tl));
}

/* Matches one folded word against a token: extra repeats of a letter are
 * ignored ("fuuuck"), '*' stands for one letter but never the first ("f***ing"), and a
 * prefix word may be followed by more letters. */
static int word_match(const char *w, size_t wl, const char *t, size_t tl, int prefix)
{
    size_t i = 0, j = 0, wild = 0;
    while (j < tl) {
        if (i < wl && (t[j] == w[i] || (t[j] == '*' && i > 0))) {
            wild += t[j] == '*';
            i++;
            j++;
        } else if (j > 0 && t[j] == t[j - 1]) {
            j++;
        } else {
            return i == wl && prefix && wild < wl;
        }
    }
    return i == wl && wild < wl;
}

static int term_at(const gd_term_t *term, const gd_norm_t *nm, size_t ti)
{
    const char *w = term->words;
    for (size_t k = 0; k < term->n_words; k++) {
        if (ti + k >= nm->n_toks)
            return 0;
        const gd_tok_t *tok = &nm->toks[ti + k];
        size_t wl = (unsigned char)w[0];
        int last = k + 1 == term->n_words;
        if (!word_match(w + 1, wl, nm->buf + tok->off, tok->len, last && term->prefix))
            return 0;
        w += wl + 1;
    }
    return 1;
}

static size_t find_from(const gd_terms_t *tl, const gd_norm_t *nm, size_t from, size_t *n_words)
{
    if (tl->len == 0)
        return (size_t)-1;
    for (size_t ti = from; ti < nm->n_toks; ti++) {
        unsigned char c = (unsigned char)nm->buf[nm->toks[ti].off];
        for (uint32_t k = tl->bucket[c]; k < tl->bucket[c + 1]; k++) {
            if (term_at(&tl->items[k], nm, ti)) {
                *n_words = tl->items[k].n_words;
                return ti;
            }
        }
    }
    return (size_t)-1;
}

int gd_terms_find(const gd_terms_t *tl, const gd_norm_t *nm, size_t *start, size_t *end)
{
    size_t nw = 0, ti = find_from(tl, nm, 0, &nw);
    if (ti == (size_t)-1)
        return 0;
    *start = nm->toks[ti].start;
    *end = nm->toks[ti + nw - 1].end;
    return 1;
}

size_t gd_terms_find_tok(const gd_terms_t *tl, const gd_norm_t *nm, size_t from_tok)
{
    size_t nw;
    return find_from(tl, nm, from_tok, &nw);
}

/* ---- encoded payloads ------------------------------------------------------ */

/* Base64 digit values, standard and URL-safe alphabets; -1 elsewhere. */
static const signed char b64_table[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, 62, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int b64_val(unsigned char c)
{
    return b64_table[c];
}

/* Readable: mostly printable ASCII, and mostly letters and spaces. */
static int readable(const unsigned char *s, size_t n)
{
    size_t print = 0, alpha = 0;
    for (size_t i = 0; i < n; i++) {
        print += (s[i] >= 0x20 && s[i] < 0x7f) || s[i] == '\n' || s[i] == '\t';
        alpha += (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == ' ';
    }
    return n >= 6 && print * 10 >= n * 9 && alpha * 10 >= n * 7;
}

static size_t decode_run(const char *t, size_t n, int hex, unsigned char *out)
{
    size_t w = 0;
    if (hex) {
        for (size_t i = 0; i + 1 < n; i += 2)
            out[w++] = (unsigned char)(core_hex_digit((unsigned char)t[i]) << 4 |
                                       core_hex_digit((unsigned char)t[i + 1]));
        return w;
    }
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)t[i]);
        if (v < 0)
            break;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[w++] = (unsigned char)(acc >> bits);
        }
    }
    return w;
}

int gd_find_encoded(const char *t, size_t n, size_t min_chars, char **out, size_t *out_len)
{
    for (size_t i = 0; i < n;) {
        size_t j = i, hexes = 0, letters = 0, digits = 0;
        while (j < n && b64_val((unsigned char)t[j]) >= 0) {
            hexes += core_hex_digit((unsigned char)t[j]) >= 0;
            letters += (t[j] | 0x20) >= 'a' && (t[j] | 0x20) <= 'z';
            digits += t[j] >= '0' && t[j] <= '9';
            j++;
        }
        size_t run = j - i;
        /* a long word is not a payload: encodings mix letters with digits or symbols */
        if (run >= min_chars && letters < run) {
            int hex = hexes == run && digits > 0;
            unsigned char *buf = core_xmalloc(run + 1);
            size_t w = decode_run(t + i, hex ? run & ~(size_t)1 : run, hex, buf);
            if (readable(buf, w)) {
                buf[w] = '\0';
                *out = (char *)buf;
                *out_len = w;
                return 1;
            }
            free(buf);
        }
        i = j + 1;
    }
    return 0;
}

/* ---- UTF-8 validity ----------------------------------------------------------- */

char *gd_utf8_sanitize(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && core_utf8_seq(t + i, n - i) > 0)
        i += core_utf8_seq(t + i, n - i);
    if (i == n)
        return NULL;
    char *copy = core_xmalloc(n + 1);
    memcpy(copy, t, n);
    copy[n] = '\0';
    core_utf8_scrub(copy + i, n - i);
    return copy;
}
