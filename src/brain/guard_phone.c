/* Phone numbers (E.164 with '+', "00" international, North American and
 * trunk-prefixed national forms) and spelled-out e-mail addresses
 * ("jane at example dot com"). Numbers are judged by their numbering plan and
 * grouping, so dates, IP addresses and bare order numbers pass. */
#include <string.h>
#include <strings.h>

#include "brain/guard_int.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

typedef struct {
    char d[24];
    size_t n;
    size_t groups[16];
    size_t n_groups;
    size_t end;
} phone_run_t;

/* Reads digit groups split by one space, dash or dot, or wrapped in
 * parentheses ("(415) 555-2671", "+44 (0)20 7946 0958"). */
static void read_phone(const char *t, size_t n, size_t j, phone_run_t *r)
{
    memset(r, 0, sizeof(*r));
    while (j < n && r->n_groups < 16) {
        int paren = t[j] == '(';
        size_t k = j + (size_t)paren;
        if (k >= n || !is_digit(t[k]))
            break;
        size_t g = 0;
        while (k < n && is_digit(t[k])) {
            if (r->n < sizeof(r->d))
                r->d[r->n] = t[k];
            r->n++;
            g++;
            k++;
        }
        if (paren) {
            if (k >= n || t[k] != ')')
                break;
            k++;
        }
        r->groups[r->n_groups++] = g;
        r->end = k;
        j = k;
        if (j < n && (t[j] == ' ' || t[j] == '-' || t[j] == '.') && j + 1 < n &&
            (is_digit(t[j + 1]) || t[j + 1] == '('))
            j++;
        else if (!(j < n && t[j] == '(') && !(paren && j < n && is_digit(t[j])))
            break;
    }
}

static int nanp_ok(const char *d)
{
    /* area and exchange codes start with 2-9; N11 area codes are services */
    if (d[0] < '2' || d[3] < '2')
        return 0;
    return !(d[1] == '1' && d[2] == '1');
}

/* Whole words (see gd_context_has): "reference", "telephone" and
 * "cellphone" are listed rather than reached through "ref", "tel", "cell". */
static const char *const not_phone_words[] = {
    "order",        "tracking", "track",   "invoice",     "ref",    "reference",
    "confirmation", "ticket",   "booking", "reservation", "serial", "imei",
    "receipt",      "case",     "claim",   "transaction", "zip",    NULL};
static const char *const phone_words[] = {"call",      "phone",    "telephone", "mobile", "cell",
                                          "cellphone", "tel",      "text",      "reach",  "contact",
                                          "number is", "whatsapp", NULL};

static int groups_are(const phone_run_t *r, size_t a, size_t b, size_t c)
{
    return r->n_groups == 3 && r->groups[0] == a && r->groups[1] == b && r->groups[2] == c;
}

static int national_ok(const phone_run_t *r)
{
    const char *d = r->d;
    if (r->n == 10 && nanp_ok(d))
        return r->n_groups == 1 || groups_are(r, 3, 3, 4);
    if (r->n == 11 && d[0] == '1' && nanp_ok(d + 1))
        return r->n_groups == 1 ||
               (r->n_groups == 4 && r->groups[0] == 1 && r->groups[1] == 3 && r->groups[2] == 3);
    if (d[0] == '0' && d[1] != '0' && (r->n == 10 || r->n == 11)) {
        if (r->n_groups >= 3 && r->groups[0] <= 2 && r->groups[1] <= 2 && r->groups[2] == 4)
            return 0; /* DD MM YYYY */
        for (size_t g = 0; g < r->n_groups; g++)
            if (r->groups[g] < 2)
                return 0;
        return 1;
    }
    return 0;
}

/* True if the word before i (one space back) mixes letters and digits, as
 * the start of an account or IBAN ("NO74 0242 2593 651") does. */
static int after_code(const char *t, size_t i)
{
    if (i < 3 || t[i - 1] != ' ' || !is_alnum(t[i - 2]))
        return 0;
    int letters = 0, digits = 0;
    for (size_t k = i - 1; k > 0 && is_alnum(t[k - 1]); k--) {
        letters += !is_digit(t[k - 1]);
        digits += is_digit(t[k - 1]);
    }
    return letters > 0 && digits > 0;
}

void gd_scan_phones(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int plus = t[i] == '+' && i + 1 < n && is_digit(t[i + 1]);
        int paren = t[i] == '(' && i + 1 < n && is_digit(t[i + 1]);
        if (!plus && !paren && !is_digit(t[i]))
            continue;
        if ((plus || paren) ? (i > 0 && is_alnum(t[i - 1])) : !gd_run_starts(t, i))
            continue;
        if (after_code(t, i))
            continue;
        phone_run_t r;
        read_phone(t, n, i + (size_t)plus, &r);
        if (r.n_groups == 0 || r.n > sizeof(r.d) || gd_glued_after(t, n, r.end)) {
            i = r.end > i ? r.end : i;
            continue;
        }
        int ok;
        if (plus)
            ok = r.n >= 8 && r.n <= 15 && r.d[0] != '0';
        else if (r.d[0] == '0' && r.d[1] == '0')
            ok = r.n >= 10 && r.n <= 17 && r.d[2] != '0';
        else
            ok = national_ok(&r);
        /* a bare run of digits after "order" is an order number */
        if (ok && !plus && r.n_groups == 1 && gd_context_has(t, i, 32, not_phone_words) &&
            !gd_context_has(t, i, 32, phone_words))
            ok = 0;
        if (ok)
            gd_spans_add(out, i, r.end, GD_PHONE);
        i = r.end > i ? r.end - 1 : i;
    }
}

/* ---- spelled-out e-mail addresses --------------------------------------- */

static const char *const tlds[] = {"com",  "org", "net", "edu", "gov", "io",  "co", "uk",
                                   "de",   "fr",  "es",  "it",  "nl",  "ca",  "au", "us",
                                   "info", "biz", "me",  "ai",  "app", "dev", NULL};

/* Matches one of the spellings of `word` ("at": " at ", "[at]", "(at)",
 * " [at] ") at t+i; returns its length or 0. */
static size_t spelled(const char *t, size_t n, size_t i, const char *word)
{
    size_t wl = strlen(word);
    size_t k = i;
    /* cheap reject: a space or a bracket, then the word's first letter */
    if (k + 1 >= n || (t[k] != ' ' && t[k] != '[' && t[k] != '(' && t[k] != '{'))
        return 0;
    char c1 = t[k + 1] == '[' || t[k + 1] == '(' || t[k + 1] == '{' ? (k + 2 < n ? t[k + 2] : 0)
                                                                    : t[k + 1];
    if ((c1 | 0x20) != word[0])
        return 0;
    if (k < n && t[k] == ' ')
        k++;
    int br = k < n && (t[k] == '[' || t[k] == '(' || t[k] == '{');
    k += (size_t)br;
    if (k + wl > n || strncasecmp(t + k, word, wl) != 0)
        return 0;
    k += wl;
    if (br) {
        if (k >= n || (t[k] != ']' && t[k] != ')' && t[k] != '}'))
            return 0;
        k++;
    } else if (k - i != wl + 1 || k >= n || t[k] != ' ') {
        return 0; /* the bare word needs spaces on both sides */
    }
    if (k < n && t[k] == ' ')
        k++;
    return k - i;
}

static size_t label_len(const char *t, size_t n, size_t i, int local)
{
    size_t k = i;
    while (k < n && (is_alnum(t[k]) || t[k] == '-' || (local && (t[k] == '.' || t[k] == '_'))))
        k++;
    return k - i;
}

static int is_tld(const char *t, size_t len)
{
    for (const char *const *p = tlds; *p; p++)
        if (strlen(*p) == len && strncasecmp(t, *p, len) == 0)
            return 1;
    return 0;
}

void gd_scan_spelled_emails(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && is_alnum(t[i - 1])) || !is_alnum(t[i]))
            continue;
        size_t ll = label_len(t, n, i, 1);
        size_t at = spelled(t, n, i + ll, "at");
        /* "I'm at example dot com": a one-letter word after an apostrophe is no address */
        if (ll < 2 || at == 0 || (i > 0 && (t[i - 1] == '\'' || t[i - 1] == '@'))) {
            i += ll;
            continue;
        }
        size_t k = i + ll + at, labels = 0, last = 0, last_len = 0;
        for (;;) {
            size_t l = label_len(t, n, k, 0);
            if (l == 0)
                break;
            labels++;
            last = k;
            last_len = l;
            k += l;
            size_t dot = spelled(t, n, k, "dot");
            if (dot == 0 && k + 1 < n && t[k] == '.' && is_alnum(t[k + 1]))
                dot = 1;
            if (dot == 0)
                break;
            k += dot;
        }
        if (labels >= 2 && is_tld(t + last, last_len))
            gd_spans_add(out, i, last + last_len, GD_EMAIL);
    }
}
