/* entities_fold.c — Unicode word splitting with case and diacritics folding,
 * and the bounded edit distance used for typo tolerance in choice slots. */
#include <string.h>

#include <utf8proc.h>

#include "brain/entities_int.h"

#define FOLD_OPTS (UTF8PROC_CASEFOLD | UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK | UTF8PROC_COMPAT)

static int is_word_cp(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return 1;
    default:
        return 0;
    }
}

/* Appends the folded form of cp to out; 0 when the buffer is full. */
static int append_folded(ent__folded_t *out, utf8proc_int32_t cp)
{
    if (cp < 0x80) { /* ASCII folds to itself in lower case */
        if (out->buf_len + 1 >= sizeof(out->buf))
            return 0;
        out->buf[out->buf_len++] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return 1;
    }
    utf8proc_int32_t dec[8];
    int last_bound = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, dec, 8, FOLD_OPTS, &last_bound);
    if (n < 0 || n > 8) {
        dec[0] = cp;
        n = 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; i++) {
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t m = utf8proc_encode_char(dec[i], enc);
        if (out->buf_len + (size_t)m >= sizeof(out->buf))
            return 0;
        memcpy(out->buf + out->buf_len, enc, (size_t)m);
        out->buf_len += (size_t)m;
    }
    return 1;
}

void ent__fold_words(const char *text, size_t len, ent__folded_t *out)
{
    out->buf_len = 0;
    out->n_words = 0;
    ent__word_t *cur = NULL;
    size_t i = 0;
    while (i < len && text != NULL) {
        unsigned char b = (unsigned char)text[i];
        if (b < 0x80 && !ent__is_alpha(b) && !ent__is_digit(b)) {
            cur = NULL; /* ASCII separators, the common case, without decoding */
            i++;
            continue;
        }
        utf8proc_int32_t cp = b;
        utf8proc_ssize_t n = 1;
        if (b >= 0x80)
            n = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i),
                                 &cp);
        if (n <= 0) { /* invalid UTF-8 separates words */
            cur = NULL;
            i++;
            continue;
        }
        if (!is_word_cp(cp)) {
            cur = NULL;
            i += (size_t)n;
            continue;
        }
        if (cur == NULL) {
            if (out->n_words == ENT__FOLD_MAX_WORDS)
                return;
            cur = &out->words[out->n_words++];
            cur->start = i;
            cur->off = out->buf_len;
            cur->len = 0;
        }
        if (!append_folded(out, cp)) {
            out->n_words -= cur->len == 0;
            return;
        }
        cur->len = out->buf_len - cur->off;
        i += (size_t)n;
        cur->end = i;
    }
    /* a word made only of stripped marks has no letters: drop it */
    size_t k = 0;
    for (size_t w = 0; w < out->n_words; w++)
        if (out->words[w].len > 0)
            out->words[k++] = out->words[w];
    out->n_words = k;
}

#define DIST_MAX_CPS 64

static int to_cps(const char *s, size_t len, utf8proc_int32_t *cps)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        if (n == DIST_MAX_CPS)
            return -1;
        utf8proc_ssize_t m = 1;
        cps[n] = (unsigned char)s[i];
        if ((unsigned char)s[i] >= 0x80)
            m = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i),
                                 &cps[n]);
        if (m <= 0) {
            cps[n] = (unsigned char)s[i];
            m = 1;
        }
        n++;
        i += (size_t)m;
    }
    return n;
}

static int min3(int a, int b, int c)
{
    int m = a < b ? a : b;
    return m < c ? m : c;
}

int ent__edit_distance(const char *a, size_t alen, const char *b, size_t blen, int max)
{
    utf8proc_int32_t x[DIST_MAX_CPS], y[DIST_MAX_CPS];
    int n = to_cps(a, alen, x), m = to_cps(b, blen, y);
    if (n < 0 || m < 0)
        return max + 1;
    if (n - m > max || m - n > max)
        return max + 1;
    /* optimal string alignment: three rows of the dynamic programme */
    int rows[3][DIST_MAX_CPS + 1];
    int *prev2 = rows[0], *prev = rows[1], *curr = rows[2];
    for (int j = 0; j <= m; j++)
        prev[j] = j;
    for (int i = 1; i <= n; i++) {
        curr[0] = i;
        int row_min = curr[0];
        for (int j = 1; j <= m; j++) {
            int cost = x[i - 1] != y[j - 1];
            curr[j] = min3(prev[j] + 1, curr[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] &&
                prev2[j - 2] + 1 < curr[j])
                curr[j] = prev2[j - 2] + 1;
            if (curr[j] < row_min)
                row_min = curr[j];
        }
        if (row_min > max)
            return max + 1;
        int *t = prev2;
        prev2 = prev;
        prev = curr;
        curr = t;
    }
    return prev[m] > max ? max + 1 : prev[m];
}
