/* Diagnostics: the list of problems found in a user's file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chorus/core.h"

void core_diags_init(core_diags_t *d)
{
    memset(d, 0, sizeof(*d));
}

void core_diags_dispose(core_diags_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->len; i++) {
        free(d->items[i].file);
        free(d->items[i].path);
        free(d->items[i].message);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

static core_diag_t *push(core_diags_t *d)
{
    if (d->len == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->items = core_xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    return &d->items[d->len++];
}

void core_diags_add(core_diags_t *d, const char *file, int line, int col, const char *path,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core_diag_t *it = push(d);
    it->file = core_xstrdup(file ? file : "");
    it->line = line;
    it->col = col;
    it->path = core_xstrdup(path ? path : "");
    it->message = core_xstrdup(msg);
}

const char *core_diag_format(const core_diag_t *it, char *out, size_t out_size)
{
    char where[64] = "";
    if (it->line > 0)
        snprintf(where, sizeof(where), ":%d:%d", it->line, it->col);
    snprintf(out, out_size, "%s%s: %s%s%s", it->file, where, it->path, it->path[0] ? ": " : "",
             it->message);
    return out;
}

void core_diags_move(core_diags_t *dst, core_diags_t *src)
{
    for (size_t i = 0; i < src->len; i++)
        *push(dst) = src->items[i];
    free(src->items);
    memset(src, 0, sizeof(*src));
}
