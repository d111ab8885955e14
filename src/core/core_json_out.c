/* Streaming JSON output on core_buf_t: see core.h. The hot paths (saved
 * conversation state, transcript entries, REST replies) write their few
 * fixed shapes straight into a buffer instead of building a jansson tree
 * only to dump and free it. Strings come out byte for byte as jansson's
 * json_dumps() writes them, so a reader cannot tell which path wrote. */
#include <string.h>

#include "chorus/core.h"

/* Length of the well-formed UTF-8 sequence that starts s (n bytes left,
 * s[0] >= 0x80), or 0. The rules jansson checks strings with: no stray
 * continuation byte, no overlong form, no surrogate, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0xC2)
        return 0; /* a continuation byte, or the start of an overlong 2-byte form */
    if (s[0] < 0xE0) {
        len = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] < 0xF0) {
        len = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] < 0xF5) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        return 0;
    return len;
}

size_t core_json_escape(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson's case */
    out[0] = '\\';
    switch (c) {
    case '"':
    case '\\':
        out[1] = (char)c;
        return 2;
    case '\b':
        out[1] = 'b';
        return 2;
    case '\f':
        out[1] = 'f';
        return 2;
    case '\n':
        out[1] = 'n';
        return 2;
    case '\r':
        out[1] = 'r';
        return 2;
    case '\t':
        out[1] = 't';
        return 2;
    default:
        memcpy(out + 1, "u00", 3);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
}

static int put_escape(core_buf_t *b, unsigned char c)
{
    char e[6];
    return core_buf_append(b, e, core_json_escape(c, e));
}

static void truncate_to(core_buf_t *b, size_t len)
{
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
}

/* 1 if the 8 bytes at p are all printable ASCII other than '"' and '\\',
 * which go out as they are: the common case, tested a word at a time. A
 * byte below n is found as (v - n·ones) & ~v & highs; '"' and '\\' as zero
 * bytes of v with them xored out. */
static int plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v, q, bs;
    memcpy(&v, p, 8);
    q = v ^ (ones * '"');
    bs = v ^ (ones * '\\');
    uint64_t ctl = (v - ones * 0x20) & ~v, quote = (q - ones) & ~q, bslash = (bs - ones) & ~bs;
    return ((ctl | quote | bslash | v) & highs) == 0;
}

/* Appends the string literal; lossy writes U+FFFD for each byte that does
 * not start a well-formed UTF-8 sequence instead of failing. */
static int put_str(core_buf_t *b, const char *s, size_t len, int lossy)
{
    const size_t start = b->len;
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    int rc = core_buf_append(b, "\"", 1);
    while (rc == 0 && p < end) {
        while (end - p >= 8 && plain8(p))
            p += 8;
        if (p == end)
            break;
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_len(p, (size_t)(end - p)) : 0;
        if (n > 0) {
            p += n;
            continue;
        }
        rc = core_buf_append(b, run, (size_t)(p - run));
        if (rc == 0 && c < 0x80)
            rc = put_escape(b, c);
        else if (rc == 0)
            rc = lossy ? core_buf_append(b, "\xEF\xBF\xBD", 3) : CORE_ERR_INVALID;
        run = ++p;
    }
    if (rc == 0)
        rc = core_buf_append(b, run, (size_t)(p - run));
    if (rc == 0)
        rc = core_buf_append(b, "\"", 1);
    if (rc != 0)
        truncate_to(b, start);
    return rc;
}

int core_buf_json_str(core_buf_t *b, const char *s, size_t len)
{
    return put_str(b, s, len, 0);
}

int core_buf_json_str_lossy(core_buf_t *b, const char *s, size_t len)
{
    return put_str(b, s, len, 1);
}

int core_buf_json_key(core_buf_t *b, const char *key)
{
    const size_t start = b->len;
    int rc = put_str(b, key, strlen(key), 0);
    if (rc == 0)
        rc = core_buf_append(b, ":", 1);
    if (rc != 0)
        truncate_to(b, start);
    return rc;
}

int core_buf_json_int(core_buf_t *b, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    /* through unsigned, so that LLONG_MIN negates without overflow */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return core_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}
