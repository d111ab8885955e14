/* Phone numbers (E.164 with '+', "00" international, North American and
 * trunk-prefixed national forms) and spelled-out e-mail addresses
 * ("jane at example dot com"). Numbers are judged by their numbering plan and
 * grouping, so dates, IP addresses and bare order numbers pass; a bare " at "
 * needs evidence of an address, so "I bought it at amazon.com" passes. */
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
    while (k < n && (is_alnum(t[k]) || t[k] == '-' ||
                     (local && (t[k] == '.' || t[k] == '_' || t[k] == '+'))))
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

/* True if the label at t+i is one of the NULL-terminated words. */
static int label_is(const char *t, size_t n, size_t i, const char *const *words)
{
    size_t l = label_len(t, n, i, 0);
    for (const char *const *w = words; *w; w++)
        if (strlen(*w) == l && strncasecmp(t + i, *w, l) == 0)
            return 1;
    return 0;
}

/* Reads the local part from i: a label, then at most three spelled dots and
 * labels ("jane dot doe"); a longer run is no address, and reading it again
 * from each of its words would cost too much. Sets *dotted if it has any. */
static size_t read_local(const char *t, size_t n, size_t i, int *dotted)
{
    size_t e = i + label_len(t, n, i, 1);
    for (int d = 0; d < 3; d++) {
        size_t dot = spelled(t, n, e, "dot");
        size_t l = dot > 0 ? label_len(t, n, e + dot, 1) : 0;
        if (l == 0)
            break;
        e += dot + l;
        *dotted = 1;
    }
    return e;
}

/* Length of the "at" at t+i, 0 if none; *bare says it was the plain word
 * " at ", which ordinary sentences use too, rather than "[at]", "(at)" or
 * " at sign ", which only addresses do. */
static size_t read_at(const char *t, size_t n, size_t i, int *bare)
{
    size_t at = spelled(t, n, i, "at");
    *bare = at > 0 && t[i] == ' ' && (t[i + 1] | 0x20) == 'a';
    if (*bare && i + at + 5 <= n && strncasecmp(t + i + at, "sign ", 5) == 0) {
        at += 5;
        *bare = 0;
    }
    return at;
}

/* Reads the domain's labels from k, split by '.' or a spelled dot; returns
 * how many, where the last one is, and whether a dot was spelled out. */
static size_t read_domain(const char *t, size_t n, size_t k, size_t *last, size_t *last_len,
                          int *spelled_dot)
{
    size_t labels = 0;
    for (;;) {
        size_t l = label_len(t, n, k, 0);
        if (l == 0)
            break;
        labels++;
        *last = k;
        *last_len = l;
        k += l;
        size_t dot = spelled(t, n, k, "dot");
        *spelled_dot |= dot > 0;
        if (dot == 0 && k + 1 < n && t[k] == '.' && is_alnum(t[k + 1]))
            dot = 1;
        if (dot == 0)
            break;
        k += dot;
    }
    return labels;
}

/* A local part that looks like an address: letters with digits, '.', '_',
 * '-' or '+' ("jdoe99", "li_wei"); "online" or "it" does not. */
static int local_looks_like_address(const char *t, size_t s, size_t e)
{
    int letter = 0, mark = 0;
    for (size_t k = s; k < e; k++) {
        letter |= (t[k] | 0x20) >= 'a' && (t[k] | 0x20) <= 'z';
        mark |= is_digit(t[k]) || t[k] == '.' || t[k] == '_' || t[k] == '-' || t[k] == '+';
    }
    return letter && mark;
}

static const char *const mail_words[] = {"email", "emails", "mail", "address", NULL};
static const char *const mail_fillers[] = {"is", "was", "my",   "me", "at",
                                           "to", "it",  "it's", "id", NULL};
/* Providers whose domain is a mailbox: nobody buys something "at gmail dot
 * com". Shops and portals (amazon, yahoo) are not listed. Their sites are
 * named in sentences too ("log in at gmail.com"), so this counts only with
 * a dot spelled out, as people dictate an address and never a site. */
static const char *const mail_domains[] = {"gmail",      "googlemail", "hotmail", "outlook",
                                           "protonmail", "ymail",      "gmx",     NULL};

/* Evidence that "word at domain" is an address and not a place or a site
 * ("I bought it at amazon.com", "check in online at chorusair.com"): an
 * e-mail word labels it ("my email is jane at ..."), the local part looks
 * like one, or it is a mail provider's domain dictated ("jane at gmail dot
 * com"). */
static int address_evidence(const char *t, size_t n, size_t i, size_t local_end, int dotted,
                            size_t dom, int spelled_dot)
{
    return dotted || local_looks_like_address(t, i, local_end) ||
           gd_label_before(t, i, mail_words, mail_fillers) ||
           (spelled_dot && label_is(t, n, dom, mail_domains));
}

static const char *const www[] = {"www", NULL};

/* The end of a spelled-out address whose local part starts at i, or 0. */
static size_t spelled_address(const char *t, size_t n, size_t i)
{
    int dotted = 0, bare = 0, spelled_dot = 0;
    size_t le = read_local(t, n, i, &dotted);
    if (t[le - 1] == '.')
        return 0; /* "it." ends a sentence; no local part ends with a dot */
    size_t at = read_at(t, n, le, &bare);
    if (at == 0)
        return 0;
    size_t dom = le + at, last = 0, last_len = 0;
    if (read_domain(t, n, dom, &last, &last_len, &spelled_dot) < 2 || !is_tld(t + last, last_len))
        return 0;
    size_t end = last + last_len;
    /* a web address: "at www.chorusair.com", "at chorusair.com/deals" */
    if (label_is(t, n, dom, www) || (end < n && t[end] == '/'))
        return 0;
    if (bare && !address_evidence(t, n, i, le, dotted, dom, spelled_dot))
        return 0;
    return end;
}

void gd_scan_spelled_emails(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && is_alnum(t[i - 1])) || !is_alnum(t[i]))
            continue;
        size_t ll = label_len(t, n, i, 1);
        /* "I'm at example dot com": a one-letter word after an apostrophe is no address */
        size_t end = 0;
        if (ll >= 2 && !(i > 0 && (t[i - 1] == '\'' || t[i - 1] == '@')))
            end = spelled_address(t, n, i);
        if (end > 0)
            gd_spans_add(out, i, end, GD_EMAIL);
        i += ll;
    }
}
