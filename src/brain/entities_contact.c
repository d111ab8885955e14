/* entities_contact.c — email addresses (validated shape, lower-cased) and
 * phone numbers (normalised to E.164 with the context's default country for
 * national numbers). See docs/entities.md. */
#include <stdio.h>
#include <string.h>

#include "brain/entities_int.h"

/* ---- email ---------------------------------------------------------------- */

static int local_char(unsigned char c)
{
    return ent__is_alpha(c) || ent__is_digit(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-';
}

static int label_char(unsigned char c)
{
    return ent__is_alpha(c) || ent__is_digit(c) || c == '-';
}

/* The domain after '@' at q: labels of letters, digits and inner hyphens,
 * at least two, the last all letters (2+). Returns its end or 0. */
static size_t domain_end(const ent__scan_t *sc, size_t q)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    size_t end = 0;
    int labels = 0;
    while (q < sc->len) {
        size_t st = q;
        int alpha = 1;
        while (q < sc->len && label_char(s[q])) {
            alpha = alpha && ent__is_alpha(s[q]);
            q++;
        }
        size_t n = q - st;
        if (n == 0 || n > 63 || s[st] == '-' || s[q - 1] == '-')
            break;
        labels++;
        if (labels >= 2 && alpha && n >= 2)
            end = q;
        if (q + 1 >= sc->len || s[q] != '.' || !label_char(s[q + 1]))
            break;
        q++;
    }
    return end;
}

size_t ent__rec_email(const ent__scan_t *sc, size_t p, ent_t *out)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    if (!ent__is_alpha(s[p]) && !ent__is_digit(s[p]))
        return 0;
    if (p > 0 && local_char(s[p - 1]))
        return 0; /* the middle of "john..doe@": not an address on its own */
    size_t q = p;
    while (q < sc->len && q - p <= 64 && local_char(s[q])) {
        if (s[q] == '.' && q + 1 < sc->len && s[q + 1] == '.')
            return 0;
        q++;
    }
    if (q >= sc->len || s[q] != '@' || q - p > 64 || s[q - 1] == '.')
        return 0;
    size_t end = domain_end(sc, q + 1);
    if (end == 0 || end - p >= ENT_VALUE_MAX || !ent__word_end_ok(sc, end) ||
        (end < sc->full && (s[end] == '@' || s[end] == '-' || s[end] == '_')))
        return 0;
    for (size_t i = p; i < end; i++)
        out->value[i - p] = (char)(ent__is_alpha(s[i]) ? (s[i] | 0x20) : s[i]);
    out->value[end - p] = '\0';
    return end;
}

/* ---- phone ---------------------------------------------------------------- */

typedef struct country_s {
    const char *iso; /* ISO 3166 alpha-2 */
    const char *cc;  /* calling code */
    int trunk;       /* 1: national numbers start with a 0 that E.164 drops;
                        2: the 0 is optional; 3: the 0 is kept (Italy) */
    int min_nsn;     /* national significant number length, digits */
    int max_nsn;
} country_t;

static const country_t countries[] = {
    {"US", "1", 0, 10, 10},  {"CA", "1", 0, 10, 10},  {"GB", "44", 1, 9, 10},
    {"IE", "353", 1, 7, 9},  {"FR", "33", 1, 9, 9},   {"DE", "49", 1, 6, 13},
    {"ES", "34", 0, 9, 9},   {"IT", "39", 3, 6, 11},  {"NL", "31", 1, 9, 9},
    {"BE", "32", 1, 8, 9},   {"CH", "41", 1, 9, 9},   {"AT", "43", 1, 4, 13},
    {"AU", "61", 1, 9, 9},   {"NZ", "64", 1, 8, 10},  {"IN", "91", 2, 10, 10},
    {"SE", "46", 1, 7, 9},   {"NO", "47", 0, 8, 8},   {"DK", "45", 0, 8, 8},
    {"PT", "351", 0, 9, 9},  {"PL", "48", 0, 9, 9},   {"JP", "81", 1, 9, 10},
    {"BR", "55", 2, 10, 11}, {"MX", "52", 0, 10, 10}, {"ZA", "27", 1, 9, 9},
    {"SG", "65", 0, 8, 8},
};

static const country_t *country_of(const ent__scan_t *sc)
{
    const char *iso = sc->ctx && sc->ctx->default_country ? sc->ctx->default_country : "US";
    for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++)
        if (strcmp(iso, countries[i].iso) == 0)
            return &countries[i];
    return NULL; /* unknown: only international numbers */
}

#define PHONE_MAX_DIGITS 17

typedef struct digits_s {
    char d[PHONE_MAX_DIGITS + 1];
    int n;
    int plus;   /* written with a leading '+' */
    int groups; /* digit groups seen */
} digits_t;

/* Reads digits, single separators (space, '-', '.') and a bracketed group
 * ("(415)", the "(0)" of "+44 (0)20") from p. Groups after the first need two
 * digits or more, so a list of small numbers is not a phone. Returns the end. */
static size_t read_digits(const ent__scan_t *sc, size_t p, digits_t *dg)
{
    const unsigned char *s = (const unsigned char *)sc->s;
    size_t q = p, end = 0;
    memset(dg, 0, sizeof(*dg));
    if (s[q] == '+') {
        dg->plus = 1;
        q++;
    } else if (s[q] == '(' && q + 2 < sc->len && s[q + 1] == '+') {
        /* "(+44) 20 7946 0958": the country code in brackets */
        size_t g = q + 2, ge = g;
        while (ge < sc->len && ge - g < 4 && ent__is_digit(s[ge]))
            ge++;
        if (ge == g || ge >= sc->len || s[ge] != ')')
            return 0;
        memcpy(dg->d, s + g, ge - g);
        dg->n = (int)(ge - g);
        dg->plus = 1;
        dg->groups = 1;
        q = ge + 1;
        if (q + 1 < sc->len && s[q] == ' ' && ent__is_digit(s[q + 1]))
            q++;
    }
    while (q < sc->len) {
        int paren = s[q] == '(';
        size_t g = q + (size_t)paren, ge = g;
        while (ge < sc->len && ent__is_digit(s[ge]))
            ge++;
        size_t n = ge - g;
        if (n == 0 || (dg->groups > 0 && n < 2 && !dg->plus))
            break;
        if (paren && (ge >= sc->len || s[ge] != ')'))
            break;
        if (paren && n == 1 && s[g] == '0' && dg->plus) {
            /* "+44 (0)20": the trunk prefix is not dialled from abroad */
        } else {
            if (dg->n + (int)n > PHONE_MAX_DIGITS)
                return 0;
            memcpy(dg->d + dg->n, s + g, n);
            dg->n += (int)n;
        }
        dg->groups++;
        q = ge + (size_t)paren;
        end = q;
        if (q + 1 < sc->len && (s[q] == ' ' || s[q] == '-' || s[q] == '.') &&
            (ent__is_digit(s[q + 1]) || s[q + 1] == '('))
            q++;
        else if (paren && q < sc->len && (ent__is_digit(s[q])))
            continue; /* "(415)555-0100" */
        else
            break;
    }
    dg->d[dg->n] = '\0';
    return end;
}

static int emit_e164(const char *cc, const char *nsn, size_t nsn_len, ent_t *out)
{
    size_t total = strlen(cc) + nsn_len;
    if (total < 8 || total > 15)
        return 0;
    snprintf(out->value, sizeof(out->value), "+%s%.*s", cc, (int)nsn_len, nsn);
    return 1;
}

static int nanp_ok(const char *d)
{
    return d[0] >= '2' && d[3] >= '2';
}

static int normalise(const ent__scan_t *sc, const digits_t *dg, ent_t *out)
{
    const char *d = dg->d;
    int n = dg->n;
    if (dg->plus || (n > 2 && d[0] == '0' && d[1] == '0')) {
        int skip = dg->plus ? 0 : 2;
        if (n - skip < 8 || n - skip > 15 || d[skip] == '0')
            return 0;
        if (d[skip] == '1' && (n - skip != 11 || !nanp_ok(d + skip + 1)))
            return 0;
        return emit_e164("", d + skip, (size_t)(n - skip), out);
    }
    const country_t *c = country_of(sc);
    if (c == NULL)
        return 0;
    if (strcmp(c->cc, "1") == 0) {
        if (n == 11 && d[0] == '1') {
            d++;
            n--;
        }
        if (n != 10 || !nanp_ok(d))
            return 0;
        return emit_e164("1", d, 10, out);
    }
    if ((c->trunk == 1 || c->trunk == 2) && d[0] == '0') {
        d++;
        n--;
    } else if (c->trunk == 1) {
        return 0; /* without its trunk 0 it is a local number */
    }
    if (n < c->min_nsn || n > c->max_nsn || (d[0] == '0' && c->trunk != 3))
        return 0;
    return emit_e164(c->cc, d, (size_t)n, out);
}

size_t ent__rec_phone(const ent__scan_t *sc, size_t p, ent_t *out)
{
    unsigned char c = (unsigned char)sc->s[p];
    if (c != '+' && c != '(' && !ent__is_digit(c))
        return 0;
    digits_t dg;
    size_t end = read_digits(sc, p, &dg);
    if (end == 0 || dg.n < 7 || !ent__word_end_ok(sc, end))
        return 0;
    if (end < sc->full &&
        (sc->s[end] == '/' || sc->s[end] == ':' ||
         (sc->s[end] == ',' && end + 1 < sc->full && ent__is_digit((unsigned char)sc->s[end + 1]))))
        return 0;
    if (!normalise(sc, &dg, out))
        return 0;
    return end;
}
