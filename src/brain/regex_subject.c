/* A padded copy of a regular expression's subject: regex_subject.h. */
#include <string.h>

#include "brain/regex_subject.h"

/* Turn texts are at most chat.max_text_bytes (4 KiB unless raised); a
 * longer subject is matched where it is, unpadded. A fixed array rather
 * than a heap buffer: a pool thread's copy would outlive the thread. */
enum { RE_COPY_MAX = 64 * 1024, RE_PAD = 32 };

static _Thread_local char buf[RE_COPY_MAX + RE_PAD];

const char *re_subject(const char *s, size_t n)
{
    if (n > RE_COPY_MAX)
        return s;
    if (n > 0)
        memcpy(buf, s, n);
    memset(buf + n, 0, RE_PAD);
    return buf;
}
