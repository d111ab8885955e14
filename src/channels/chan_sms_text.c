/* SMS text rules: which alphabet a reply needs (GSM 03.38 default alphabet
 * with its extension table, else UCS-2), how many segments it costs, where
 * to cut a long reply so each part fits one segment of a concatenated
 * message, and the carrier keywords (STOP, START, HELP and their synonyms).
 * Pure functions. */
#include <stdlib.h>
#include <string.h>

#include "channels/chan_twilio_int.h"

/* The GSM 03.38 default alphabet's characters outside printable ASCII, as
 * Unicode code points; printable ASCII is in it except for the few listed in
 * ascii_out and ascii_ext below. */
static const unsigned gsm_basic_extra[] = {
    0x0A,  0x0D,  0xA3,  0xA5,  0xE8,  0xE9,  0xF9,  0xEC,  0xF2,  0xC7,  0xD8, 0xF8, 0xC5, 0xE5,
    0x394, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0xC6, 0xE6, 0xDF, 0xC9,
    0xA4,  0xA1,  0xC4,  0xD6,  0xD1,  0xDC,  0xA7,  0xBF,  0xE4,  0xF6,  0xF1, 0xFC, 0xE0,
};
/* The extension table (sent as ESC + a character: two septets). */
static const unsigned gsm_ext[] = {0x0C, '^', '{', '}', '\\', '[', '~', ']', '|', 0x20AC};

/* Decodes one UTF-8 character at s[*i] (advancing *i); invalid bytes come
 * back as U+FFFD, one byte at a time. */
static unsigned next_cp(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    unsigned c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || n > left) {
        (*i)++;
        return 0xFFFD;
    }
    unsigned cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    *i += n;
    return cp;
}

/* Septets cp takes in GSM-7: 1, 2 (extension table) or 0 (not encodable). */
static int gsm_cost(unsigned cp)
{
    for (size_t k = 0; k < sizeof(gsm_ext) / sizeof(gsm_ext[0]); k++)
        if (gsm_ext[k] == cp)
            return 2;
    /* printable ASCII apart from ` (absent) and the extension characters */
    if (cp >= 0x20 && cp < 0x7F)
        return cp == '`' ? 0 : 1;
    for (size_t k = 0; k < sizeof(gsm_basic_extra) / sizeof(gsm_basic_extra[0]); k++)
        if (gsm_basic_extra[k] == cp)
            return 1;
    return 0;
}

long sms__gsm7_septets(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len;) {
        int c = gsm_cost(next_cp(s, len, &i));
        if (c == 0)
            return -1;
        n += c;
    }
    return n;
}

size_t sms__ucs2_units(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;)
        n += next_cp(s, len, &i) > 0xFFFF ? 2 : 1;
    return n;
}

size_t sms__segments(const char *s, size_t len)
{
    long g = sms__gsm7_septets(s, len);
    size_t units = g >= 0 ? (size_t)g : sms__ucs2_units(s, len);
    size_t single = g >= 0 ? SMS_GSM_SINGLE : SMS_UCS_SINGLE;
    size_t part = g >= 0 ? SMS_GSM_PART : SMS_UCS_PART;
    if (units == 0)
        return 0;
    return units <= single ? 1 : (units + part - 1) / part;
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* True when the space at s[at] follows a sentence's end: . ! or ? (after
 * closing quotes or brackets), but not the "4." opening a numbered option
 * on its own line. */
static int sentence_end(const char *s, size_t start, size_t at)
{
    size_t k = at;
    while (k > start && (s[k - 1] == '"' || s[k - 1] == '\'' || s[k - 1] == ')'))
        k--;
    if (k == start)
        return 0;
    char p = s[k - 1];
    if (p == '!' || p == '?')
        return 1;
    if (p != '.')
        return 0;
    size_t d = k - 1; /* "\n4." opens an option: digits alone on the line start */
    while (d > start && s[d - 1] >= '0' && s[d - 1] <= '9')
        d--;
    return d == k - 1 || (d > start && s[d - 1] != '\n');
}

/* Where the part starting at s[start] ends (exclusive byte index) when a
 * part may cost at most limit units. */
static size_t part_end(const char *s, size_t len, size_t start, size_t limit, int gsm)
{
    size_t cost = 0, sentence = 0, space = 0, i = start;
    while (i < len) {
        size_t at = i;
        unsigned cp = next_cp(s, len, &i);
        size_t c = gsm ? (size_t)gsm_cost(cp) : (cp > 0xFFFF ? 2 : 1);
        if (cost + c > limit) {
            if (sentence > start)
                return sentence;
            if (space > start)
                return space;
            return at > start ? at : i; /* one character always fits */
        }
        cost += c;
        if (cp < 0x80 && is_space((char)cp) && at > start) {
            if (cp == '\n' || sentence_end(s, start, at))
                sentence = at;
            space = at;
        }
    }
    return len;
}

void sms__split(const char *s, size_t len, char ***parts, size_t *n)
{
    long g = sms__gsm7_septets(s, len);
    size_t units = g >= 0 ? (size_t)g : sms__ucs2_units(s, len);
    size_t cap = 4;
    *parts = core_xcalloc(cap, sizeof(char *));
    *n = 0;
    if (units <= (g >= 0 ? SMS_GSM_SINGLE : SMS_UCS_SINGLE)) {
        (*parts)[(*n)++] = core_xstrndup(s, len);
        return;
    }
    size_t limit = g >= 0 ? SMS_GSM_PART : SMS_UCS_PART;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(s[i]))
            i++;
        if (i == len)
            break;
        size_t end = part_end(s, len, i, limit, g >= 0);
        size_t e = end;
        while (e > i && is_space(s[e - 1]))
            e--;
        if (*n == cap) {
            cap *= 2;
            *parts = core_xrealloc(*parts, cap * sizeof(char *));
        }
        (*parts)[(*n)++] = core_xstrndup(s + i, e - i);
        i = end;
    }
}

void sms__parts_free(char **parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
}

sms_keyword_t sms__keyword(const char *s, size_t len)
{
    static const struct {
        const char *word;
        sms_keyword_t kw;
    } words[] = {
        {"STOP", SMS_KW_STOP},   {"STOPALL", SMS_KW_STOP}, {"UNSUBSCRIBE", SMS_KW_STOP},
        {"CANCEL", SMS_KW_STOP}, {"END", SMS_KW_STOP},     {"QUIT", SMS_KW_STOP},
        {"REVOKE", SMS_KW_STOP}, {"OPTOUT", SMS_KW_STOP},  {"STOP ALL", SMS_KW_STOP},
        {"START", SMS_KW_START}, {"UNSTOP", SMS_KW_START}, {"OPTIN", SMS_KW_START},
        {"YES", SMS_KW_YES},     {"HELP", SMS_KW_HELP},    {"INFO", SMS_KW_HELP},
    };
    size_t a = 0, b = len;
    while (a < b && (is_space(s[a]) || s[a] == '.' || s[a] == '!'))
        a++;
    while (b > a && (is_space(s[b - 1]) || s[b - 1] == '.' || s[b - 1] == '!'))
        b--;
    char w[16];
    if (b - a == 0 || b - a >= sizeof(w))
        return SMS_KW_NONE;
    for (size_t i = a; i < b; i++) {
        char c = s[i];
        w[i - a] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    w[b - a] = '\0';
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
        if (strcmp(words[k].word, w) == 0)
            return words[k].kw;
    return SMS_KW_NONE;
}
