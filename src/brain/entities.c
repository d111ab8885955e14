/* entities.c — the extraction driver: start positions, overlap resolution
 * (longest first), type names and the lexical helpers the recognisers share.
 * The recognisers live in entities_{number,date,time,contact}.c.
 * See docs/entities.md. */
#include <string.h>

#include "brain/entities_int.h"

static const char *const type_names[ENT__COUNT] = {
    "number", "ordinal", "money", "date", "time", "email", "phone", "pattern", "choice",
};

const char *ent_type_name(ent_type_t type)
{
    if ((unsigned)type >= ENT__COUNT)
        return "unknown";
    return type_names[type];
}

int ent_type_parse(const char *name, ent_type_t *out)
{
    if (name == NULL)
        return CORE_ERR_NOT_FOUND;
    for (int i = 0; i < ENT__COUNT; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            *out = (ent_type_t)i;
            return 0;
        }
    }
    return CORE_ERR_NOT_FOUND;
}

/* ---- lexical helpers ----------------------------------------------------- */

int ent__is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

int ent__is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int ent__is_word_byte(unsigned char c)
{
    return ent__is_digit(c) || ent__is_alpha(c) || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

size_t ent__skip_ws(const ent__scan_t *sc, size_t p)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    while (p < sc->len) {
        if (s[p] == ' ' || s[p] == '\t')
            p++;
        else if (s[p] == 0xC2 && p + 1 < sc->len && s[p + 1] == 0xA0)
            p += 2; /* no-break space, common in pasted text */
        else
            break;
    }
    return p;
}

int ent__word_end_ok(const ent__scan_t *sc, size_t p)
{
    if (p >= sc->full)
        return 1;
    const unsigned char *s = (const unsigned char *)sc->s;
    if (s[p] == 0xC2 && p + 1 < sc->full && s[p + 1] == 0xA0)
        return 1;
    /* a digit drawn as a keycap ("2\ufe0f\u20e3") ends where its tail does */
    size_t tail = p > 0 && ent__is_digit(s[p - 1]) ? core_keycap_tail(sc->s + p, sc->full - p) : 0;
    if (tail > 0)
        return ent__word_end_ok(sc, p + tail);
    return !ent__is_word_byte(s[p]);
}

size_t ent__alpha_end(const ent__scan_t *sc, size_t p)
{
    while (p < sc->len && ent__is_alpha((unsigned char)sc->s[p]))
        p++;
    return p;
}

size_t ent__word(const ent__scan_t *sc, size_t p, const char *w)
{
    /* the first byte rejects almost every call before strlen */
    if (p >= sc->len || lower((unsigned char)sc->s[p]) != (unsigned char)w[0])
        return 0;
    size_t n = strlen(w);
    if (p + n > sc->len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (lower((unsigned char)sc->s[p + i]) != (unsigned char)w[i])
            return 0;
    }
    /* a word ending in a letter must not run into more letters or digits */
    if (ent__is_alpha((unsigned char)w[n - 1]) && !ent__word_end_ok(sc, p + n))
        return 0;
    return p + n;
}

int ent__word_in(const ent__scan_t *sc, size_t p, const char *const *list, size_t *end)
{
    size_t wend = ent__alpha_end(sc, p);
    if (wend == p || !ent__word_end_ok(sc, wend))
        return -1;
    size_t n = wend - p;
    unsigned char first = lower((unsigned char)sc->s[p]);
    for (int i = 0; list[i] != NULL; i++) {
        const char *w = list[i];
        if ((unsigned char)w[0] != first)
            continue;
        size_t k = 1;
        while (k < n && lower((unsigned char)sc->s[p + k]) == (unsigned char)w[k])
            k++;
        if (k == n && w[n] == '\0') {
            *end = wend;
            return i;
        }
    }
    return -1;
}

int ent__digits(const ent__scan_t *sc, size_t p, int max_digits, long *val)
{
    int n = 0;
    long v = 0;
    while (p + (size_t)n < sc->len && n < max_digits &&
           ent__is_digit((unsigned char)sc->s[p + (size_t)n])) {
        v = v * 10 + (sc->s[p + (size_t)n] - '0');
        n++;
    }
    *val = v;
    return n;
}

void ent__prev_word(const ent__scan_t *sc, size_t p, char *out, size_t out_size)
{
    out[0] = '\0';
    while (p > 0 && (sc->s[p - 1] == ' ' || sc->s[p - 1] == '\t'))
        p--;
    size_t e = p;
    while (p > 0 && e - p < out_size - 1 && ent__is_alpha((unsigned char)sc->s[p - 1]))
        p--;
    if (p > 0 && ent__is_word_byte((unsigned char)sc->s[p - 1]))
        return; /* too long or not an ASCII word */
    for (size_t i = p; i < e; i++)
        out[i - p] = (char)lower((unsigned char)sc->s[i]);
    out[e - p] = '\0';
}

/* ---- the driver ---------------------------------------------------------- */

size_t ent__longest_at(const ent__scan_t *sc, size_t p, const ent__rec_fn *fns, size_t n,
                       ent_t *out)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        ent_t e = *out;
        size_t end = fns[i](sc, p, &e);
        if (end > best) {
            best = end;
            *out = e;
        }
    }
    return best;
}

/* Tried in this order; on equal length the earlier wins, so "2026-12-04" is a
 * date rather than a phone, and "4155550100" a phone rather than a number. */
static const struct {
    ent_type_t type;
    ent__rec_fn fn;
} recognisers[] = {
    {ENT_DATE, ent__rec_date},     {ENT_TIME, ent__rec_time},   {ENT_MONEY, ent__rec_money},
    {ENT_EMAIL, ent__rec_email},   {ENT_PHONE, ent__rec_phone}, {ENT_ORDINAL, ent__rec_ordinal},
    {ENT_NUMBER, ent__rec_number},
};
#define N_RECOGNISERS (sizeof(recognisers) / sizeof(recognisers[0]))

/* A start position: the beginning of the input or of a token after a
 * non-word byte. Recognisers reject quickly what they cannot start with. */
static int is_start(const char *s, size_t p)
{
    unsigned char c = (unsigned char)s[p];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return 0;
    if (p == 0)
        return 1;
    unsigned char prev = (unsigned char)s[p - 1];
    if (prev == 0xA0 && p >= 2 && (unsigned char)s[p - 2] == 0xC2)
        return 1;
    if (c >= 0x80 && (c & 0xC0) == 0x80)
        return 0; /* inside a multi-byte character */
    if (ent__is_digit(c) && (prev == '.' || prev == ':' || prev == '/') && p >= 2 &&
        ent__is_digit((unsigned char)s[p - 2]))
        return 0; /* inside "1.2.3" or "12:30:45": a number only as a whole */
    if (ent__is_digit(c) && (prev == 'T' || prev == 't') && p >= 2 &&
        ent__is_digit((unsigned char)s[p - 2]))
        return 1; /* the time of "2026-12-04T10:00" */
    return !ent__is_word_byte(prev);
}

/* The longest match at p among the wanted types; returns its end or 0. */
static size_t best_at(const char *text, size_t len, size_t p, const ent_ctx_t *ctx, unsigned mask,
                      ent_t *best)
{
    ent__nw_cache_t cache = {0, 0, 0, 0, 0};
    ent__scan_t sc = {text, len - p > ENT__WINDOW ? p + ENT__WINDOW : len, len, ctx, &cache};
    size_t best_end = 0;
    if (ent__is_alpha((unsigned char)text[p]))
        mask &= ent__first_word_mask(text, len, p) | 1u << ENT_EMAIL;
    for (size_t i = 0; i < N_RECOGNISERS; i++) {
        if (!(mask & (1u << recognisers[i].type)))
            continue;
        ent_t e; /* recognisers fill value and, by type, number/currency */
        e.value[0] = '\0';
        e.number = 0;
        e.currency[0] = '\0';
        e.confidence = 0;
        size_t end = recognisers[i].fn(&sc, p, &e);
        if (end > best_end) {
            best_end = end;
            e.type = recognisers[i].type;
            e.start = p;
            e.end = end;
            if (e.confidence == 0)
                e.confidence = 1.0;
            *best = e;
        }
    }
    return best_end;
}

/* Scans left to right keeping one tentative match: a later match that
 * overlaps it replaces it only when longer, so overlaps resolve longest
 * first while every start position is visited once (linear work). */
static int extract(const char *text, size_t len, const ent_ctx_t *ctx, unsigned mask,
                   ent_list_t *out, size_t stop_after)
{
    ent_t cur;
    int have = 0;
    out->len = 0;
    if (text == NULL)
        return 0;
    for (size_t p = 0; p < len && out->len < stop_after; p++) {
        if (!is_start(text, p))
            continue;
        ent_t e;
        size_t end = best_at(text, len, p, ctx, mask, &e);
        if (end == 0)
            continue;
        if (have && p < cur.end) {
            if (e.end - e.start > cur.end - cur.start)
                cur = e;
            continue;
        }
        if (have)
            out->items[out->len++] = cur;
        cur = e;
        have = 1;
    }
    if (have && out->len < stop_after)
        out->items[out->len++] = cur;
    return 0;
}

#define BUILTIN_MASK                                                                               \
    ((1u << ENT_NUMBER) | (1u << ENT_ORDINAL) | (1u << ENT_MONEY) | (1u << ENT_DATE) |             \
     (1u << ENT_TIME) | (1u << ENT_EMAIL) | (1u << ENT_PHONE))

int ent_extract(const char *text, size_t len, const ent_ctx_t *ctx, ent_list_t *out)
{
    return extract(text, len, ctx, BUILTIN_MASK, out, ENT_LIST_MAX);
}

int ent_find(ent_type_t type, const char *text, size_t len, const ent_ctx_t *ctx, ent_t *out)
{
    if ((unsigned)type >= ENT__COUNT || !(BUILTIN_MASK & (1u << type)))
        return CORE_ERR_INVALID;
    /* First with every type competing, so the "4" of "4 December" is not a
     * number; then, if nothing of the type survived, with that type alone
     * (a number slot answered "415 555 0100" still gets a number) but
     * ordinals still competing, so the "one" of "the second one" stays
     * part of its ordinal. */
    ent_list_t list;
    extract(text, len, ctx, BUILTIN_MASK, &list, ENT_LIST_MAX);
    for (size_t i = 0; i < list.len; i++) {
        if (list.items[i].type == type) {
            *out = list.items[i];
            return 0;
        }
    }
    extract(text, len, ctx, 1u << type | 1u << ENT_ORDINAL, &list, ENT_LIST_MAX);
    for (size_t i = 0; i < list.len; i++) {
        if (list.items[i].type == type) {
            *out = list.items[i];
            return 0;
        }
    }
    return CORE_ERR_NOT_FOUND;
}
