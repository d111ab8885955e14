/* Bounded growable buffers: see core.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"

void core_buf_init(core_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void core_buf_dispose(core_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void core_buf_reset(core_buf_t *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int reserve(core_buf_t *b, size_t extra)
{
    if (extra > b->limit - b->len || b->len > b->limit)
        return CORE_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = core_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int core_buf__append_grow(core_buf_t *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int core_buf_append_str(core_buf_t *b, const char *s)
{
    return core_buf_append(b, s, strlen(s));
}

int core_buf_vprintf(core_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return CORE_ERR_INVALID;
    int rc = reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int core_buf_printf(core_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = core_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void core_buf_consume(core_buf_t *b, size_t n)
{
    if (n >= b->len) {
        core_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *core_buf_steal(core_buf_t *b, size_t *len)
{
    char *p = b->data ? b->data : core_xstrdup("");
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
