/* entities_number.c — numbers, ordinals and money, in digits and in English
 * words. See docs/entities.md for the phrasings. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "brain/entities_int.h"

static const char *const units[] = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", NULL,
};
static const char *const units_ord[] = {
    "zeroth",     "first",     "second",    "third",       "fourth",     "fifth",      "sixth",
    "seventh",    "eighth",    "ninth",     "tenth",       "eleventh",   "twelfth",    "thirteenth",
    "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", NULL,
};
static const char *const tens[] = {
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "fourty", NULL,
};
static const char *const tens_ord[] = {
    "twentieth",  "thirtieth", "fortieth",  "fiftieth", "sixtieth",
    "seventieth", "eightieth", "ninetieth", NULL,
};
static const char *const scales[] = {"thousand", "million", "billion", NULL};
static const char *const scales_ord[] = {"thousandth", "millionth", "billionth", NULL};
static const double scale_values[] = {1e3, 1e6, 1e9};

static size_t number_words(const ent__scan_t *sc, size_t p, double *value, int *ordinal);

enum { K_NONE, K_UNIT, K_TEEN, K_TENS, K_HUNDRED, K_SCALE };

typedef struct words_state_s {
    double total, current;
    int kind;    /* K_* of the last word taken */
    int ordinal; /* the last word was an ordinal: the number ends there */
    double last_scale;
} words_state_t;

/* Takes one word at p if it may continue the number; returns its end or 0. */
static size_t take_word(const ent__scan_t *sc, size_t p, words_state_t *st)
{
    size_t end;
    int i, ord = 0;
    /* every number word starts with one of these letters: a cheap rejection */
    if (p >= sc->len || !memchr("befhmnostzBEFHMNOSTZ", sc->s[p], 20))
        return 0;
    if ((i = ent__word_in(sc, p, units, &end)) >= 0 ||
        (ord = 1, i = ent__word_in(sc, p, units_ord, &end)) >= 0) {
        int teen = i >= 10;
        if (i == 0 && st->kind != K_NONE)
            return 0;
        if (st->kind == K_TENS ? (teen || i == 0) : (st->kind == K_UNIT || st->kind == K_TEEN))
            return 0;
        st->current += i;
        st->kind = (i == 0 || teen) ? K_TEEN : K_UNIT;
        st->ordinal = ord;
        return end;
    }
    ord = 0;
    if ((i = ent__word_in(sc, p, tens, &end)) >= 0 ||
        (ord = 1, i = ent__word_in(sc, p, tens_ord, &end)) >= 0) {
        if (st->kind != K_NONE && st->kind != K_HUNDRED && st->kind != K_SCALE)
            return 0;
        static const int tens_value[] = {20, 30, 40, 50, 60, 70, 80, 90, 40};
        st->current += tens_value[i];
        st->kind = K_TENS;
        st->ordinal = ord;
        return end;
    }
    if ((end = ent__word(sc, p, "hundred")) || (end = ent__word(sc, p, "hundredth"))) {
        if (st->kind != K_UNIT && st->kind != K_TEEN)
            return 0;
        if (st->current < 1 || st->current >= 100)
            return 0;
        st->current *= 100;
        st->kind = K_HUNDRED;
        st->ordinal = sc->s[end - 1] == 'h' || sc->s[end - 1] == 'H';
        return end;
    }
    ord = 0;
    if ((i = ent__word_in(sc, p, scales, &end)) >= 0 ||
        (ord = 1, i = ent__word_in(sc, p, scales_ord, &end)) >= 0) {
        if (st->current <= 0 || (st->last_scale > 0 && scale_values[i] >= st->last_scale))
            return 0;
        st->total += st->current * scale_values[i];
        st->current = 0;
        st->last_scale = scale_values[i];
        st->kind = K_SCALE;
        st->ordinal = ord;
        return end;
    }
    return 0;
}

size_t ent__number_words(const ent__scan_t *sc, size_t p, double *value, int *ordinal)
{
    /* several recognisers ask at the same start: answer from the cache */
    ent__nw_cache_t *cache = sc->cache;
    if (cache && cache->valid && cache->pos == p) {
        *value = cache->value;
        *ordinal = cache->ordinal;
        return cache->end;
    }
    size_t end = number_words(sc, p, value, ordinal);
    if (cache) {
        cache->valid = 1;
        cache->pos = p;
        cache->end = end;
        cache->value = end ? *value : 0;
        cache->ordinal = end ? *ordinal : 0;
    }
    return end;
}

static size_t number_words(const ent__scan_t *sc, size_t p, double *value, int *ordinal)
{
    words_state_t st = {0, 0, K_NONE, 0, 0};
    size_t end = 0, q = p, e;
    *ordinal = 0; /* callers read it whatever came back, as the cached path sets it */
    /* "a hundred", "a thousand": the article stands for one */
    if ((e = ent__word(sc, q, "a"))) {
        size_t r = ent__skip_ws(sc, e);
        if (r == e || !(ent__word(sc, r, "hundred") || ent__word_in(sc, r, scales, &e) >= 0))
            return 0;
        st.current = 1;
        st.kind = K_UNIT;
        q = r;
    }
    for (int n = 0; n < 16; n++) {
        e = take_word(sc, q, &st);
        if (e == 0) {
            int i;
            size_t se;
            /* a scale that cannot follow ("one hundred thousand million"):
             * the words make no number, rather than one a million times
             * smaller than meant */
            if (end != 0 && q > end && (i = ent__word_in(sc, q, scales, &se)) >= 0 &&
                st.last_scale > 0 && scale_values[i] >= st.last_scale)
                return 0;
            break;
        }
        end = e;
        if (st.ordinal || (st.kind == K_TEEN && st.current == 0))
            break; /* an ordinal or a lone "zero" ends the number */
        q = e;
        if (st.kind == K_TENS && q < sc->len && sc->s[q] == '-') {
            q++; /* twenty-five */
            continue;
        }
        size_t r = ent__skip_ws(sc, q);
        if (r == q)
            break;
        if ((st.kind == K_HUNDRED || st.kind == K_SCALE) && (e = ent__word(sc, r, "and"))) {
            size_t r2 = ent__skip_ws(sc, e);
            if (r2 == e)
                break;
            r = r2;
        }
        q = r;
    }
    if (end == 0)
        return 0;
    *value = st.total + st.current;
    *ordinal = st.ordinal;
    return end;
}

size_t ent__small_number(const ent__scan_t *sc, size_t p, int max, int *value)
{
    long v;
    int n = ent__digits(sc, p, 3, &v);
    if (n > 0) {
        if (!ent__word_end_ok(sc, p + (size_t)n) || v > max)
            return 0;
        *value = (int)v;
        return p + (size_t)n;
    }
    double d;
    int ord;
    size_t end = ent__number_words(sc, p, &d, &ord);
    if (end == 0 || ord || d > max)
        return 0;
    *value = (int)d;
    return end;
}

void ent__format_number(double v, char *out, size_t out_size)
{
    if (v == 0)
        v = 0; /* no "-0" */
    if (fabs(v) < 1e15 && v == floor(v) && out_size >= 18) {
        /* integers by hand: this runs for every number found */
        char tmp[20];
        size_t n = 0, o = 0;
        uint64_t u = (uint64_t)fabs(v);
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            out[o++] = '-';
        while (n)
            out[o++] = tmp[--n];
        out[o] = '\0';
    } else
        snprintf(out, out_size, "%.15g", v);
}

/* sep and exactly three digits at q (no fourth digit after them). */
static int group3(const ent__scan_t *sc, size_t q, char sep)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    return q + 3 < sc->len && s[q] == (unsigned char)sep && ent__is_digit(s[q + 1]) &&
           ent__is_digit(s[q + 2]) && ent__is_digit(s[q + 3]) &&
           (q + 4 >= sc->full || !ent__is_digit(s[q + 4]));
}

/* Digits with optional thousands separators and a decimal part: "1,234,567",
 * "3.5", "1,200.50", and the continental "1.234.567" and "1.234,56" (dots
 * for thousands once there are two groups, or a comma decimal after them).
 * Returns the end (no word-end check) or 0. */
static size_t digits_number(const ent__scan_t *sc, size_t p, double *value)
{
    const char *s = sc->s;
    size_t q = p;
    double v = 0;
    while (q < sc->len && ent__is_digit((unsigned char)s[q]))
        v = v * 10 + (s[q++] - '0');
    if (q == p)
        return 0;
    char sep = 0, dec = '.';
    if (q - p <= 3) {
        if (group3(sc, q, ','))
            sep = ',';
        else if (group3(sc, q, '.') &&
                 (group3(sc, q + 4, '.') ||
                  (q + 5 < sc->len && s[q + 4] == ',' && ent__is_digit((unsigned char)s[q + 5]))))
            sep = '.';
        while (sep && group3(sc, q, sep)) {
            v = v * 1000 + (s[q + 1] - '0') * 100 + (s[q + 2] - '0') * 10 + (s[q + 3] - '0');
            q += 4;
        }
        if (sep == '.')
            dec = ',';
    }
    if (q + 1 < sc->len && s[q] == dec && ent__is_digit((unsigned char)s[q + 1])) {
        double scale = 0.1;
        q++;
        while (q < sc->len && ent__is_digit((unsigned char)s[q])) {
            v += (s[q++] - '0') * scale;
            scale /= 10;
        }
    }
    *value = v;
    return q;
}

size_t ent__amount(const ent__scan_t *sc, size_t p, double *value)
{
    size_t end = digits_number(sc, p, value);
    if (end == 0) {
        int ord;
        end = ent__number_words(sc, p, value, &ord);
        return ord ? 0 : end;
    }
    if (!ent__word_end_ok(sc, end))
        return end; /* the caller decides what may follow ("3pm", "5€") */
    size_t r = ent__skip_ws(sc, end), e;
    int i;
    if ((e = ent__word(sc, r, "hundred")) && r > end) {
        *value *= 100;
        end = e;
    } else if (r > end && (i = ent__word_in(sc, r, scales, &e)) >= 0) {
        *value *= scale_values[i];
        end = e;
    }
    return end;
}

/* Digits followed by these are part of something else (a time, a date, a
 * version number), not a number on their own. */
static int continues_token(const ent__scan_t *sc, size_t end)
{
    if (end + 1 >= sc->full)
        return 0;
    char c = sc->s[end];
    return (c == ':' || c == '/' || c == '.') && ent__is_digit((unsigned char)sc->s[end + 1]);
}

/* "two point five", "one point zero five": digits said one by one. */
static size_t point_digits(const ent__scan_t *sc, size_t end, double *v)
{
    size_t r = ent__skip_ws(sc, end), e;
    if (r == end || !(e = ent__word(sc, r, "point")))
        return end;
    double scale = 0.1, frac = 0;
    size_t last = 0;
    for (int n = 0; n < 12; n++) {
        r = ent__skip_ws(sc, e);
        if (r == e)
            break;
        size_t we = 0;
        int i = ent__word_in(sc, r, units, &we);
        if (i < 0 || i > 9) {
            if ((we = ent__word(sc, r, "oh")) == 0)
                break;
            i = 0;
        }
        frac += i * scale;
        scale /= 10;
        e = last = we;
    }
    if (last == 0)
        return end;
    *v += frac;
    return last;
}

static const char *const after_one_not_number[] = {
    "the", "this", "that", "which", "each", "every", "any", "no", "little", "other", NULL,
};

size_t ent__rec_number(const ent__scan_t *sc, size_t p, ent_t *out)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    int neg = 0;
    size_t q = p, e;
    if (s[q] == '-' || s[q] == '+') {
        neg = s[q] == '-';
        q++;
    } else if (q + 3 <= sc->len && s[q] == 0xE2 && s[q + 1] == 0x88 && s[q + 2] == 0x92) {
        neg = 1; /* U+2212 MINUS SIGN */
        q += 3;
    } else if ((e = ent__word(sc, q, "minus")) || (e = ent__word(sc, q, "negative"))) {
        neg = 1;
        q = ent__skip_ws(sc, e);
        if (q == e)
            return 0;
    }
    double v;
    size_t end;
    if (q < sc->len && ent__is_digit(s[q])) {
        end = ent__amount(sc, q, &v);
        if (end == 0 || !ent__word_end_ok(sc, end) || continues_token(sc, end))
            return 0;
    } else {
        if (q > p && (s[p] == '-' || s[p] == '+'))
            return 0; /* "-five" is not a way to write numbers */
        int ord;
        end = ent__number_words(sc, q, &v, &ord);
        if (end == 0 || ord)
            return 0;
        end = point_digits(sc, end, &v);
        if (end - q == 3 && v == 1 && q == p) { /* a lone "one": "the other one" */
            char prev[16];
            ent__prev_word(sc, p, prev, sizeof(prev));
            for (int i = 0; after_one_not_number[i]; i++)
                if (strcmp(prev, after_one_not_number[i]) == 0)
                    return 0;
        }
    }
    /* past 15 significant digits a double invents the rest: a reference
     * number ("12345678901234567890") is not an amount to compute with */
    if (!(fabs(v) < ENT_NUMBER_MAX))
        return 0;
    out->number = neg && v != 0 ? -v : v;
    ent__format_number(out->number, out->value, sizeof(out->value));
    return end;
}

static int ordinal_suffix_ok(long n, const char *suf)
{
    long t = n % 100, u = n % 10;
    const char *want = "th";
    if (t < 11 || t > 13)
        want = u == 1 ? "st" : u == 2 ? "nd" : u == 3 ? "rd" : "th";
    return suf[0] == want[0] && suf[1] == want[1];
}

size_t ent__rec_ordinal(const ent__scan_t *sc, size_t p, ent_t *out)
{
    const char *s = sc->s;
    size_t end;
    double v;
    long n;
    int nd = ent__digits(sc, p, 9, &n);
    if (nd > 0) {
        size_t q = p + (size_t)nd;
        if (q + 2 > sc->len || q + 2 > sc->full)
            return 0;
        char suf[3] = {(char)(s[q] | 0x20), (char)(s[q + 1] | 0x20), 0};
        if (!ordinal_suffix_ok(n, suf) || !ent__word_end_ok(sc, q + 2))
            return 0;
        end = q + 2;
        v = (double)n;
    } else {
        int ord;
        end = ent__number_words(sc, p, &v, &ord);
        if (end == 0 || !ord)
            return 0;
        if (end - p == 6 && v == 2) { /* "second" the unit of time */
            char prev[16];
            ent__prev_word(sc, p, prev, sizeof(prev));
            if (!strcmp(prev, "a") || !strcmp(prev, "one") || !strcmp(prev, "per") ||
                !strcmp(prev, "split"))
                return 0;
        }
    }
    /* "the second one": the "one" belongs to the ordinal, not a number */
    size_t r = ent__skip_ws(sc, end), e;
    if (r > end && (e = ent__word(sc, r, "one")))
        end = e;
    out->number = v;
    ent__format_number(v, out->value, sizeof(out->value));
    return end;
}
