/* PII detectors: each finds candidates by shape and keeps only those that
 * pass the format's own validation (Luhn and issuer prefixes for cards,
 * issued ranges for SSNs, per-country length and mod-97 for IBANs, numbering
 * plans for phones), so that order numbers, dates and versions pass through.
 * Context words decide the ambiguous shapes: a bare 9-digit run is an SSN
 * only after "SSN" or "social security"; a Luhn-valid 16-digit run labelled
 * "order" or "tracking" is not a card unless card words are there too.
 * Context words are whole words ("ref" is not "refund"). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "brain/guard_int.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(char c)
{
    return is_digit(c) || is_alpha(c);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Merges the spans added since the last merge into the ordered ones: two
 * ordered runs of spans that do not overlap, so one pass. */
static void spans_merge(gd_spans_t *s)
{
    size_t k = s->sorted;
    if (k == 0 || k == s->len || s->items[k - 1].start < s->items[k].start) {
        s->sorted = s->len; /* the new run comes after the old one */
        return;
    }
    gd_span_t *m = core_xmalloc(s->cap * sizeof(*m));
    size_t a = 0, b = k, w = 0;
    while (a < k && b < s->len)
        m[w++] = s->items[a].start < s->items[b].start ? s->items[a++] : s->items[b++];
    while (a < k)
        m[w++] = s->items[a++];
    while (b < s->len)
        m[w++] = s->items[b++];
    free(s->items);
    s->items = m;
    s->sorted = s->len;
}

/* True if [start, end) overlaps one of the ordered spans. They do not
 * overlap each other, so their ends are in order too: only the first one
 * that ends after start can. */
static int overlaps_sorted(const gd_spans_t *s, size_t start, size_t end)
{
    size_t lo = 0, hi = s->sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->items[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->sorted && s->items[lo].start < end;
}

/* Each check costs O(log n): detectors add their spans left to right, so
 * the spans added since the last merge stay in order and only the last of
 * them can overlap a new one; a span before it means another detector has
 * begun, and the runs are merged once. */
void gd_spans_add(gd_spans_t *s, size_t start, size_t end, int kind)
{
    if (s->len > s->sorted && start < s->items[s->len - 1].start)
        spans_merge(s);
    if (s->len > s->sorted && start < s->items[s->len - 1].end)
        return;
    if (overlaps_sorted(s, start, end))
        return;
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = core_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->len++] = (gd_span_t){start, end, kind, 0};
}

void gd_spans_sort(gd_spans_t *s)
{
    spans_merge(s);
}

void gd_spans_dispose(gd_spans_t *s)
{
    free(s->items);
    memset(s, 0, sizeof(*s));
}

/* Length of the context word w if it is written at t+i, else 0. A word ends
 * at a word boundary unless it ends in '*' (a deliberate prefix, "expir*"),
 * so "ref" is not found in "refund" nor "tel" in "tell": a word that merely
 * starts the same way says nothing about the number. t[i + length] must be
 * readable (callers look before a number, which follows). */
static size_t word_at(const char *t, size_t i, size_t limit, const char *w)
{
    size_t wl = strlen(w);
    int prefix = wl > 0 && w[wl - 1] == '*';
    wl -= (size_t)prefix;
    if (i + wl > limit)
        return 0;
    for (size_t k = 0; k < wl; k++)
        if (lower(t[i + k]) != w[k])
            return 0;
    if (!prefix && is_alpha(t[i + wl]))
        return 0;
    return wl;
}

/* True if one of the NULL-terminated words occurs (as a whole word) in the
 * `window` bytes before pos. */
int gd_context_has(const char *t, size_t pos, size_t window, const char *const *words)
{
    size_t from = pos > window ? pos - window : 0;
    for (const char *const *w = words; *w; w++)
        for (size_t i = from; i < pos; i++)
            if ((i == 0 || !is_alpha(t[i - 1])) && word_at(t, i, pos, *w) > 0)
                return 1;
    return 0;
}

/* Finds the word that ends just before pos, past at most four spaces or
 * punctuation characters ("order #: "); 0 if there is none or it has digits.
 * An apostrophe between letters belongs to the word ("it's"). */
static int word_before(const char *t, size_t pos, size_t *ws, size_t *we)
{
    size_t k = pos, gap = 0;
    while (k > 0 && !is_alnum(t[k - 1]))
        if (++gap > 4 || --k == 0)
            return 0;
    *we = k;
    while (k > 0 && (is_alpha(t[k - 1]) || (t[k - 1] == '\'' && k >= 2 && is_alpha(t[k - 2]))))
        k--;
    *ws = k;
    return *ws < *we && (k == 0 || !is_digit(t[k - 1]));
}

static int word_in(const char *t, size_t ws, size_t we, const char *const *words)
{
    for (const char *const *w = words; *w; w++)
        if (word_at(t, ws, we, *w) == we - ws)
            return 1;
    return 0;
}

int gd_label_before(const char *t, size_t pos, const char *const *words, const char *const *fillers)
{
    for (int hop = 0; hop < 5; hop++) {
        size_t ws, we;
        if (!word_before(t, pos, &ws, &we))
            return 0;
        if (word_in(t, ws, we, words))
            return 1;
        if (!word_in(t, ws, we, fillers))
            return 0;
        pos = ws;
    }
    return 0;
}

/* Words that may stand between a label and its number: "order number is",
 * "ref no.", "transaction id". */
static const char *const card_fillers[] = {"number", "no", "nr", "num", "id", "is", "was", NULL};

/* Words that label a number as something other than a card. Whole words
 * only: "reference" and "membership" are listed, not reached through "ref"
 * and "member". */
static const char *const not_card_words[] = {
    "order",    "tracking",    "track",   "invoice", "ref",     "reference",   "confirmation",
    "shipment", "parcel",      "package", "ticket",  "booking", "reservation", "serial",
    "imei",     "receipt",     "case",    "account", "member",  "membership",  "policy",
    "claim",    "transaction", "txn",     "barcode", "isbn",    NULL};
static const char *const card_words[] = {"card",  "cards", "visa", "mastercard", "amex", "credit",
                                         "debit", "cc",    "cvv",  "expir*",     NULL};
static const char *const not_ssn_words[] = {
    "phone", "telephone", "call",   "tel",    "fax",     "order",    "ref",     "reference",
    "part",  "model",     "serial", "ticket", "invoice", "tracking", "version", NULL};
static const char *const ssn_words[] = {"ssn",   "social security", "social sec", "social", "ss#",
                                        "ss no", "tax id",          "taxpayer",   NULL};

/* A run of digits in groups split by single spaces or dashes. */
typedef struct {
    char digits[40];
    size_t n;          /* digits */
    size_t groups[12]; /* digits per group */
    size_t gend[12];   /* text offset just past each group */
    size_t n_groups;
} digit_run_t;

/* True if a digit at i starts a run: not glued to letters or to an earlier
 * digit group ("12-4111..." is one structure, not a card at "4111"). */
int gd_run_starts(const char *t, size_t i)
{
    if (i == 0)
        return 1;
    char p = t[i - 1];
    if (is_alnum(p))
        return 0;
    if ((p == '-' || p == '.' || p == '/') && i >= 2 && is_digit(t[i - 2]))
        return 0;
    return 1;
}

static size_t read_run(const char *t, size_t n, size_t i, const char *seps, digit_run_t *r)
{
    memset(r, 0, sizeof(*r));
    size_t j = i;
    while (j < n && r->n_groups < 12) {
        size_t g = 0;
        while (j < n && is_digit(t[j])) {
            if (r->n < sizeof(r->digits))
                r->digits[r->n] = t[j];
            r->n++;
            g++;
            j++;
        }
        r->groups[r->n_groups] = g;
        r->gend[r->n_groups++] = j;
        if (j + 1 < n && t[j] != '\0' && strchr(seps, t[j]) != NULL && is_digit(t[j + 1]))
            j++;
        else
            break;
    }
    return j;
}

int gd_glued_after(const char *t, size_t n, size_t end)
{
    if (end >= n)
        return 0;
    if (is_alnum(t[end]))
        return 1;
    /* "4111...1111-22", "123-45-6789-beta", "123-45-6789.5": part of a larger
     * token; a period before a letter ends a sentence */
    if (end + 1 >= n)
        return 0;
    if (t[end] == '-' || t[end] == '/')
        return is_alnum(t[end + 1]);
    return t[end] == '.' && is_digit(t[end + 1]);
}

int gd_luhn_ok(const char *d, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

static int prefix_num(const char *d, size_t k)
{
    int v = 0;
    for (size_t i = 0; i < k; i++)
        v = v * 10 + (d[i] - '0');
    return v;
}

int gd_card_prefix_ok(const char *d, size_t n)
{
    int p1 = d[0] - '0', p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
    if (p1 == 4)
        return n == 13 || n == 16 || n == 19; /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16; /* Mastercard */
    if (p2 == 34 || p2 == 37)
        return n == 15; /* American Express */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))
        return n >= 16 && n <= 19; /* Discover */
    if (p4 >= 3528 && p4 <= 3589)
        return n >= 16 && n <= 19; /* JCB */
    if (p2 == 36 || p2 == 38 || p2 == 39 || (p3 >= 300 && p3 <= 305))
        return n >= 14 && n <= 19; /* Diners Club */
    if (p2 == 62)
        return n >= 16 && n <= 19; /* UnionPay */
    if (p2 == 50 || (p2 >= 56 && p2 <= 69))
        return n >= 12 && n <= 19; /* Maestro */
    return 0;
}

/* Grouped numbers must be grouped the way cards are printed. */
static int card_groups_ok(const digit_run_t *r, size_t ng)
{
    if (ng == 1)
        return 1;
    if (ng == 3 && r->groups[0] == 4 && r->groups[1] == 6 &&
        (r->groups[2] == 5 || r->groups[2] == 4))
        return 1; /* Amex 4-6-5, Diners 4-6-4 */
    for (size_t g = 0; g + 1 < ng; g++)
        if (r->groups[g] != 4)
            return 0;
    return r->groups[ng - 1] >= 1 && r->groups[ng - 1] <= 4;
}

void gd_scan_cards(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(t[i]) || !gd_run_starts(t, i))
            continue;
        digit_run_t r;
        size_t j = read_run(t, n, i, " -.", &r);
        /* try the longest prefix of whole groups that is a valid card */
        size_t digits = r.n;
        for (size_t ng = r.n_groups; ng >= 1; ng--) {
            size_t end = r.gend[ng - 1];
            if (digits >= 12 && digits <= 19 && !gd_glued_after(t, n, end) &&
                card_groups_ok(&r, ng) && gd_card_prefix_ok(r.digits, digits) &&
                gd_luhn_ok(r.digits, digits)) {
                /* A valid card number is a card unless a label such as
                 * "order" or "booking ref" names it as something else: a
                 * label elsewhere in the sentence ("Booking ABC123, pay
                 * with 4111...") names another number. Card words nearby
                 * ("order paid with card ...") win over the label. */
                if (!gd_label_before(t, i, not_card_words, card_fillers) ||
                    gd_context_has(t, i, 32, card_words))
                    gd_spans_add(out, i, end, GD_CARD);
                break;
            }
            digits -= r.groups[ng - 1];
        }
        i = j;
    }
}

int gd_ssn_ok(int area, int group, int serial)
{
    if (area <= 0 || area == 666 || area >= 900 || group <= 0 || serial <= 0)
        return 0;
    /* numbers published in advertising and never valid for a person */
    if ((area == 78 && group == 5 && serial == 1120) ||
        (area == 219 && group == 9 && serial == 9999))
        return 0;
    return 1;
}

void gd_scan_ssns(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(t[i]) || !gd_run_starts(t, i))
            continue;
        digit_run_t r;
        size_t j = read_run(t, n, i, " -", &r);
        int shaped = 0;
        if (r.n_groups >= 3 && r.groups[0] == 3 && r.groups[1] == 2 && r.groups[2] == 4) {
            /* same separator twice; a trailing group means a longer number */
            char s1 = t[i + 3], s2 = t[i + 6];
            shaped = s1 == s2 && (r.n_groups == 3 || s1 == ' ');
        } else if (r.n_groups >= 1 && r.groups[0] == 9) {
            shaped = gd_context_has(t, i, 40, ssn_words) && (r.n_groups == 1 || t[i + 9] == ' ');
        }
        size_t end = r.n_groups >= 3 && r.groups[0] == 3 ? r.gend[2] : r.gend[0];
        if (shaped && gd_context_has(t, i, 24, not_ssn_words) &&
            !gd_context_has(t, i, 24, ssn_words))
            shaped = 0;
        if (shaped && !gd_glued_after(t, n, end) &&
            gd_ssn_ok(prefix_num(r.digits, 3), prefix_num(r.digits + 3, 2),
                      prefix_num(r.digits + 5, 4)))
            gd_spans_add(out, i, end, GD_SSN);
        i = j;
    }
}

/* IBAN lengths by country (ISO 13616 registry). */
static const struct {
    char cc[3];
    unsigned char len;
} iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
    {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21},
    {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

static size_t iban_country_len(char a, char b)
{
    a = (char)(a & ~0x20);
    b = (char)(b & ~0x20);
    for (size_t i = 0; i < sizeof(iban_len) / sizeof(iban_len[0]); i++)
        if (iban_len[i].cc[0] == a && iban_len[i].cc[1] == b)
            return iban_len[i].len;
    return 0;
}

int gd_iban_ok(const char *s, size_t n)
{
    if (n < 15 || n > 34 || !is_alpha(s[0]) || !is_alpha(s[1]) || !is_digit(s[2]) ||
        !is_digit(s[3]) || iban_country_len(s[0], s[1]) != n)
        return 0;
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[(k + 4) % n]; /* the first four characters move to the end */
        if (is_digit(c)) {
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        } else if (is_alpha(c)) {
            unsigned v = (unsigned)(lower(c) - 'a') + 10;
            rem = (rem * 100 + v) % 97;
        } else {
            return 0;
        }
    }
    return rem == 1;
}

void gd_scan_ibans(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t i = 0; i + 15 <= n; i++) {
        if ((i > 0 && is_alnum(t[i - 1])) || !is_alpha(t[i]) || !is_alpha(t[i + 1]) ||
            !is_digit(t[i + 2]) || !is_digit(t[i + 3]))
            continue;
        size_t want = iban_country_len(t[i], t[i + 1]);
        if (want == 0)
            continue;
        char compact[34];
        size_t c = 0, j = i;
        while (j < n && c < want) {
            if (is_alnum(t[j]))
                compact[c++] = t[j++];
            else if (t[j] == ' ' && j + 1 < n && is_alnum(t[j + 1]) && c > 0)
                j++;
            else
                break;
        }
        if (c == want && (j >= n || !is_alnum(t[j])) && gd_iban_ok(compact, c)) {
            gd_spans_add(out, i, j, GD_IBAN);
            i = j;
        }
    }
}

static int is_local_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_domain_char(char c)
{
    return is_alnum(c) || c == '-';
}

/* Addresses may be written in any script (internationalised addresses and
 * domain names: "josé@example.com", "john@müller.de", "иван@почта.рф"), but
 * a part of one does not switch scripts, so a switch ends it: in text
 * without spaces ("メールはjane@example.comです") the address is only the
 * Latin run. Latin here is ASCII and its accented letters. */
enum { SC_NONE, SC_LATIN, SC_OTHER };

/* Length of the multibyte letter or combining mark at t+i, 0 if there is
 * none (punctuation, spaces, symbols, invalid UTF-8); *script is its script. */
static size_t mb_letter(const char *t, size_t n, size_t i, int *script)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t l =
        utf8proc_iterate((const utf8proc_uint8_t *)t + i, (utf8proc_ssize_t)(n - i), &cp);
    if (l <= 0)
        return 0;
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME) {
        *script = SC_NONE; /* an accent belongs to the letter before it */
        return (size_t)l;
    }
    if (cat < UTF8PROC_CATEGORY_LU || cat > UTF8PROC_CATEGORY_LO)
        return 0;
    int latin = (cp >= 0xC0 && cp <= 0x24F) || (cp >= 0x1E00 && cp <= 0x1EFF);
    *script = latin ? SC_LATIN : SC_OTHER;
    return (size_t)l;
}

/* Length of the character of an address part at t+i (ASCII ones chosen by
 * ascii_ok), 0 if it ends the part; *script is the part's script so far. */
static size_t part_char(const char *t, size_t n, size_t i, int (*ascii_ok)(char), int *script)
{
    int sc = SC_NONE;
    size_t l = 1;
    if ((unsigned char)t[i] < 0x80) {
        if (!ascii_ok(t[i]))
            return 0;
        sc = is_alpha(t[i]) ? SC_LATIN : SC_NONE;
    } else if ((l = mb_letter(t, n, i, &sc)) == 0) {
        return 0;
    }
    if (sc != SC_NONE && *script != SC_NONE && sc != *script)
        return 0;
    if (sc != SC_NONE)
        *script = sc;
    return l;
}

/* Start of the character that ends just before s (s > 0). */
static size_t char_start(const char *t, size_t s)
{
    size_t k = s - 1;
    while (k > 0 && s - k < 4 && ((unsigned char)t[k] & 0xC0) == 0x80)
        k--;
    return k;
}

/* Checks a domain: labels of letters (of any script), digits and inner
 * dashes, an alphabetic top-level label of at least two letters. */
static int domain_ok(const char *d, size_t n)
{
    size_t label = 0, dots = 0, tld_alpha = 1;
    for (size_t k = 0; k < n;) {
        if (d[k] == '.') {
            if (label == 0 || d[k - 1] == '-')
                return 0;
            dots++;
            label = 0;
            tld_alpha = 1;
            k++;
            continue;
        }
        if (label == 0 && d[k] == '-')
            return 0;
        int sc;
        size_t l = (unsigned char)d[k] >= 0x80 ? mb_letter(d, n, k, &sc) : 0;
        if (l == 0 && !is_alpha(d[k]))
            tld_alpha = 0;
        label++;
        k += l > 0 ? l : 1;
    }
    return dots >= 1 && label >= 2 && tld_alpha;
}

/* Start of the local part that ends at the '@' at t+at. */
static size_t local_start(const char *t, size_t n, size_t at)
{
    size_t s = at;
    int script = SC_NONE;
    while (s > 0) {
        size_t k = char_start(t, s);
        if (part_char(t, n, k, is_local_char, &script) != s - k)
            break;
        s = k;
    }
    while (s < at && (t[s] == '.' || t[s] == '-'))
        s++; /* a sentence's punctuation is not part of the address */
    return s;
}

/* End of the domain that starts after the '@' at t+at; each label keeps to
 * one script. */
static size_t domain_end(const char *t, size_t n, size_t at)
{
    size_t e = at + 1;
    int script = SC_NONE;
    while (e < n) {
        if (t[e] == '.') {
            script = SC_NONE;
            e++;
            continue;
        }
        size_t l = part_char(t, n, e, is_domain_char, &script);
        if (l == 0)
            break;
        e += l;
    }
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
        e--;
    return e;
}

void gd_scan_emails(const char *t, size_t n, gd_spans_t *out)
{
    for (size_t at = 1; at + 3 < n; at++) {
        if (t[at] != '@')
            continue;
        size_t s = local_start(t, n, at), e = domain_end(t, n, at);
        if (s < at && domain_ok(t + at + 1, e - at - 1))
            gd_spans_add(out, s, e, GD_EMAIL);
    }
}
