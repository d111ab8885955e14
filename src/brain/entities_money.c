/* entities_money.c — amounts of money: "$12.50", "£5", "EUR 30", "30 euros",
 * "12 bucks", "12 dollars and 50 cents". The value is the amount with two
 * decimals (none for currencies without minor units), the currency its ISO
 * 4217 code. See docs/entities.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "brain/entities_int.h"

#define DEFAULT_DOLLAR NULL /* stands for ctx->default_currency, else "USD" */

typedef struct symbol_s {
    const char *text; /* as written (UTF-8) */
    const char *code; /* DEFAULT_DOLLAR for a bare "$" */
} symbol_t;

/* Longest first, so "US$" is tried before "$". */
static const symbol_t symbols[] = {
    {"US$", "USD"},      {"C$", "CAD"},           {"A$", "AUD"},       {"$", DEFAULT_DOLLAR},
    {"\xC2\xA3", "GBP"}, {"\xE2\x82\xAC", "EUR"}, {"\xC2\xA5", "JPY"}, {"\xE2\x82\xB9", "INR"},
};

static const char *const codes[] = {
    "usd", "eur", "gbp", "jpy", "chf", "cad", "aud", "nzd", "inr", "cny",
    "sek", "nok", "dkk", "pln", "mxn", "brl", "zar", "sgd", "hkd", NULL,
};

typedef struct unit_word_s {
    const char *word;
    const char *code;
    double factor; /* 0.01 for minor units */
} unit_word_t;

static const unit_word_t unit_words[] = {
    {"dollars", DEFAULT_DOLLAR, 1},
    {"dollar", DEFAULT_DOLLAR, 1},
    {"bucks", DEFAULT_DOLLAR, 1},
    {"buck", DEFAULT_DOLLAR, 1},
    {"euros", "EUR", 1},
    {"euro", "EUR", 1},
    {"pounds", "GBP", 1},
    {"pound", "GBP", 1},
    {"quid", "GBP", 1},
    {"yen", "JPY", 1},
    {"rupees", "INR", 1},
    {"rupee", "INR", 1},
    {"francs", "CHF", 1},
    {"franc", "CHF", 1},
    {"cents", DEFAULT_DOLLAR, 0.01},
    {"cent", DEFAULT_DOLLAR, 0.01},
    {"pence", "GBP", 0.01},
    {"penny", "GBP", 0.01},
};
#define N_UNIT_WORDS (sizeof(unit_words) / sizeof(unit_words[0]))

static const char *resolve(const ent__scan_t *sc, const char *code)
{
    if (code != DEFAULT_DOLLAR)
        return code;
    if (sc->ctx && sc->ctx->default_currency && strlen(sc->ctx->default_currency) == 3)
        return sc->ctx->default_currency;
    return "USD";
}

/* A currency symbol at p: returns its end and sets *code, or 0. */
static size_t symbol_at(const ent__scan_t *sc, size_t p, const char **code)
{
    if (p >= sc->len || !memchr("$UCA\xC2\xE2", sc->s[p], 6))
        return 0; /* the first bytes of every symbol */
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        size_t n = strlen(symbols[i].text);
        if (p + n <= sc->len && memcmp(sc->s + p, symbols[i].text, n) == 0) {
            /* "US$"/"C$"/"A$" only as a whole token start */
            *code = resolve(sc, symbols[i].code);
            return p + n;
        }
    }
    return 0;
}

/* An ISO code at p (any case) ending at a word end or right before a digit. */
static size_t code_at(const ent__scan_t *sc, size_t p, const char **code)
{
    if (p + 3 > sc->len || !ent__is_alpha((unsigned char)sc->s[p]))
        return 0;
    for (int i = 0; codes[i]; i++) {
        if ((sc->s[p] | 0x20) != codes[i][0])
            continue;
        int ok = 1;
        for (int k = 0; k < 3 && ok; k++)
            ok = (sc->s[p + (size_t)k] | 0x20) == codes[i][k] &&
                 ent__is_alpha((unsigned char)sc->s[p + (size_t)k]);
        if (!ok)
            continue;
        if (!ent__word_end_ok(sc, p + 3) && !ent__is_digit((unsigned char)sc->s[p + 3]))
            return 0;
        static const char *const upper[] = {"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD",
                                            "NZD", "INR", "CNY", "SEK", "NOK", "DKK", "PLN",
                                            "MXN", "BRL", "ZAR", "SGD", "HKD"};
        *code = upper[i];
        return p + 3;
    }
    return 0;
}

/* A currency word at p ("dollars", "cents"); returns its end or 0. */
static size_t unit_word_at(const ent__scan_t *sc, size_t p, const unit_word_t **unit)
{
    size_t wend = ent__alpha_end(sc, p);
    for (size_t i = 0; i < N_UNIT_WORDS; i++) {
        size_t e = ent__word(sc, p, unit_words[i].word);
        if (e && e == wend) {
            *unit = &unit_words[i];
            return e;
        }
    }
    return 0;
}

/* Fills out; 0 for an amount past ENT_NUMBER_MAX, whose digits a double
 * would invent. */
static int fill(const ent__scan_t *sc, double v, const char *code, ent_t *out)
{
    if (!(fabs(v) < ENT_NUMBER_MAX))
        return 0;
    int minor = strcmp(code, "JPY") != 0;
    v = minor ? round(v * 100) / 100 : round(v);
    out->number = v;
    snprintf(out->currency, sizeof(out->currency), "%s", code);
    snprintf(out->value, sizeof(out->value), minor ? "%.2f" : "%.0f", v);
    return 1;
}

/* After the digits of an amount, from start: a decimal comma with two
 * digits ("12,50 EUR") when the digits had no separator of their own
 * ("12.50,25" is not 12.75), and a thousands "k" ("$5k"). Returns the new
 * end. */
static size_t amount_tail(const ent__scan_t *sc, size_t start, size_t end, double *v)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    int plain =
        memchr(s + start, '.', end - start) == NULL && memchr(s + start, ',', end - start) == NULL;
    if (plain && end + 2 < sc->len && s[end] == ',' && ent__is_digit(s[end + 1]) &&
        ent__is_digit(s[end + 2]) && (end + 3 >= sc->full || !ent__is_digit(s[end + 3]))) {
        *v = *v + ((s[end + 1] - '0') * 10 + (s[end + 2] - '0')) / 100.0;
        end += 3;
    }
    if (end < sc->len && (s[end] == 'k' || s[end] == 'K') && ent__word_end_ok(sc, end + 1)) {
        *v *= 1000;
        end++;
    }
    return end;
}

/* "$12.50", "£ 5", "EUR 30", "eur30", "$5k". */
static size_t prefixed(const ent__scan_t *sc, size_t p, ent_t *out)
{
    const char *code = NULL;
    size_t q = symbol_at(sc, p, &code);
    if (q == 0)
        q = code_at(sc, p, &code);
    if (q == 0)
        return 0;
    q = ent__skip_ws(sc, q);
    if (q >= sc->len || !ent__is_digit((unsigned char)sc->s[q]))
        return 0;
    double v;
    size_t end = ent__amount(sc, q, &v);
    if (end == 0)
        return 0;
    end = amount_tail(sc, q, end, &v);
    if (!ent__word_end_ok(sc, end))
        return 0;
    /* "-$5": a negative amount (a refund), the sign before the symbol */
    if (p > 0 && (sc->s[p - 1] == '-') &&
        (p == 1 || !(ent__is_alpha((unsigned char)sc->s[p - 2]) ||
                     ent__is_digit((unsigned char)sc->s[p - 2]))))
        v = -v;
    return fill(sc, v, code, out) ? end : 0;
}

/* After "12 dollars": "and 50 cents", "50" (minor units of the same). */
static size_t minor_part(const ent__scan_t *sc, size_t end, double *v)
{
    size_t q = ent__skip_ws(sc, end), e;
    if (q == end)
        return end;
    if ((e = ent__word(sc, q, "and"))) {
        q = ent__skip_ws(sc, e);
        if (q == e)
            return end;
    }
    int cents;
    e = ent__small_number(sc, q, 99, &cents);
    if (e == 0)
        return end;
    size_t r = ent__skip_ws(sc, e);
    const unit_word_t *u;
    size_t ue = r > e ? unit_word_at(sc, r, &u) : 0;
    if (ue && u->factor < 1) {
        *v += cents / 100.0;
        return ue;
    }
    int digits = ent__is_digit((unsigned char)sc->s[q]);
    if ((digits ? e - q == 2 : cents >= 10) &&
        (r >= sc->len || !ent__is_alpha((unsigned char)sc->s[r]))) {
        *v += cents / 100.0; /* "12 dollars 50", "one dollar fifty" */
        return e;
    }
    return end;
}

/* "30 euros", "12 bucks", "30 EUR", "5€", "fifty dollars", "50 cents". */
static size_t suffixed(const ent__scan_t *sc, size_t p, ent_t *out)
{
    double v;
    size_t end = ent__amount(sc, p, &v);
    if (end == 0)
        return 0;
    int digits = ent__is_digit((unsigned char)sc->s[p]);
    if (digits)
        end = amount_tail(sc, p, end, &v);
    size_t q = ent__skip_ws(sc, end);
    if (!digits && q == end)
        return 0;
    const char *code = NULL;
    const unit_word_t *u = NULL;
    size_t e = symbol_at(sc, q, &code);
    if (e == 0)
        e = code_at(sc, q, &code);
    if (e && !ent__word_end_ok(sc, e))
        return 0;
    if (e == 0 && (q > end || !digits) && (e = unit_word_at(sc, q, &u))) {
        code = resolve(sc, u->code);
        v *= u->factor;
        if (u->factor == 1)
            e = minor_part(sc, e, &v);
    }
    if (e == 0)
        return 0;
    return fill(sc, v, code, out) ? e : 0;
}

size_t ent__rec_money(const ent__scan_t *sc, size_t p, ent_t *out)
{
    size_t end = prefixed(sc, p, out);
    if (end)
        return end;
    return suffixed(sc, p, out);
}
