/* entities_pattern.c — pattern slots: a PCRE2 regular expression, JIT
 * compiled once per slot, matched against the utterance. Booking codes are
 * the main use: "[A-Z0-9]{6}" caseless picks "abc123" out of "change booking
 * abc123" and returns "ABC123". See docs/entities.md. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "brain/entities_int.h"
#include "brain/regex_subject.h"

struct ent_pattern_s {
    pcre2_code *code;
    pcre2_match_context *mctx; /* limits, read-only while matching */
    int caseless;
};

#define PATTERN_MATCH_LIMIT 200000 /* backtracking steps per match attempt */
#define PATTERN_DEPTH_LIMIT 10000
#define PATTERN_MAX_MATCHES 4096 /* candidates looked at in one text */

ent_pattern_t *ent_pattern_new(const char *regex, int caseless, core_err_t *err)
{
    if (regex == NULL || regex[0] == '\0') {
        core_err_set(err, CORE_ERR_INVALID, "pattern: empty regular expression");
        return NULL;
    }
    int code_err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (caseless ? PCRE2_CASELESS : 0);
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, opts, &code_err, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
            memcpy(msg, "unknown error", 14);
        core_err_set(err, CORE_ERR_INVALID, "pattern \"%.200s\": %s at offset %zu", regex,
                     (const char *)msg, (size_t)off);
        return NULL;
    }
    /* JIT is an optimisation: when it is unavailable the interpreter runs */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    ent_pattern_t *p = core_xcalloc(1, sizeof(*p));
    p->code = code;
    p->caseless = caseless != 0;
    p->mctx = pcre2_match_context_create(NULL);
    if (p->mctx == NULL)
        core_xmalloc((size_t)-1); /* out of memory is fatal */
    pcre2_set_match_limit(p->mctx, PATTERN_MATCH_LIMIT);
    pcre2_set_depth_limit(p->mctx, PATTERN_DEPTH_LIMIT);
    return p;
}

void ent_pattern_free(ent_pattern_t *p)
{
    if (p == NULL)
        return;
    pcre2_match_context_free(p->mctx);
    pcre2_code_free(p->code);
    free(p);
}

/* How code-like a match is, or -1 if it cuts a word in two ("bookin" of
 * "booking" is never a booking code): digits or capitals count, so "ABC123"
 * beats "change" in "change booking ABC123". */
static int score(const char *text, size_t len, size_t a, size_t b)
{
    const unsigned char *s = (const unsigned char *)text;
    if ((a > 0 && ent__is_word_byte(s[a - 1]) && ent__is_word_byte(s[a])) ||
        (b < len && ent__is_word_byte(s[b]) && ent__is_word_byte(s[b - 1])))
        return -1;
    int digit = 0, upper = 0, lower_case = 0;
    for (size_t i = a; i < b; i++) {
        digit |= ent__is_digit(s[i]);
        upper += s[i] >= 'A' && s[i] <= 'Z';
        lower_case |= s[i] >= 'a' && s[i] <= 'z';
    }
    return (digit || (upper >= 2 && !lower_case)) ? 1 : 0;
}

/* Copies text[a, b) upper-cased (by code point) into out; 0 if it does not fit. */
static int copy_upper(const char *text, size_t a, size_t b, char *out, size_t out_size)
{
    size_t o = 0, i = a;
    while (i < b) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(b - i), &cp);
        if (n <= 0) { /* an invalid byte is kept as it is */
            if (o + 1 >= out_size)
                return 0;
            out[o++] = text[i++];
            continue;
        }
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_toupper(cp), enc);
        if (o + (size_t)m >= out_size)
            return 0;
        memcpy(out + o, enc, (size_t)m);
        o += (size_t)m;
        i += (size_t)n;
    }
    out[o] = '\0';
    return 1;
}

int ent_pattern_find(const ent_pattern_t *p, const char *text, size_t len, ent_t *out)
{
    if (p == NULL || text == NULL)
        return CORE_ERR_NOT_FOUND;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->code, NULL);
    if (md == NULL)
        core_xmalloc((size_t)-1);
    const char *subject = re_subject(text, len);
    size_t off = 0, best_a = 0, best_b = 0;
    int best = -1;
    for (int n = 0; n < PATTERN_MAX_MATCHES && off <= len; n++) {
        int rc = pcre2_match(p->code, (PCRE2_SPTR)subject, len, off, 0, md, p->mctx);
        if (rc < 0)
            break; /* no match, or a limit hit: what was found stands */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        int sc = b > a && b - a < ENT_VALUE_MAX ? score(text, len, a, b) : -1;
        if (sc > best) {
            best = sc;
            best_a = a;
            best_b = b;
            /* a capture group, when the pattern has one, is the value */
            if (rc > 1 && ov[2] != PCRE2_UNSET && ov[3] > ov[2]) {
                best_a = ov[2];
                best_b = ov[3];
            }
        }
        if (sc == 1)
            break;
        off = b > a ? b : b + 1;
        while (off < len && ((unsigned char)text[off] & 0xC0) == 0x80)
            off++; /* restart on a character boundary */
    }
    pcre2_match_data_free(md);
    if (best < 0)
        return CORE_ERR_NOT_FOUND;
    memset(out, 0, sizeof(*out));
    out->type = ENT_PATTERN;
    out->start = best_a;
    out->end = best_b;
    out->confidence = 1.0;
    if (!p->caseless || !copy_upper(text, best_a, best_b, out->value, sizeof(out->value))) {
        memcpy(out->value, text + best_a, best_b - best_a);
        out->value[best_b - best_a] = '\0';
    }
    return 0;
}
