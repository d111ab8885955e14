/* UTF-8 validity, the one definition of it the modules share: what jansson
 * accepts in a string (no overlong forms, no surrogates, nothing past
 * U+10FFFF), decided by utf8proc. */
#include <utf8proc.h>

#include "chorus/core.h"

size_t core_utf8_seq(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if ((unsigned char)s[0] < 0x80)
        return 1;
    utf8proc_int32_t cp;
    utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
    return m > 0 ? (size_t)m : 0;
}

size_t core_utf8_scrub(char *s, size_t n)
{
    size_t replaced = 0;
    for (size_t i = 0; i < n;) {
        size_t m = core_utf8_seq(s + i, n - i);
        if (m == 0) {
            s[i++] = '?';
            replaced++;
        } else {
            i += m;
        }
    }
    return replaced;
}
