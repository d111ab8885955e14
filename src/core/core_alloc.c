/* Allocation wrappers: out of memory is fatal for a daemon (STYLE.md), so
 * callers never check for NULL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"

static void oom(size_t size)
{
    core_log_write(CORE_LOG_ERROR, "core", "event=out_of_memory bytes=%zu", size);
    abort();
}

void *core_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *core_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *core_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (q == NULL)
        oom(size);
    return q;
}

char *core_xstrdup(const char *s)
{
    return core_xstrndup(s, strlen(s));
}

char *core_xstrdup_opt(const char *s)
{
    return s != NULL ? core_xstrdup(s) : NULL;
}

char *core_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = core_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *core_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = core_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}
