/* Shared helpers for the entity tests: a fixed reference date and
 * one-line renderings of results, so a test reads as input -> expected. */
#ifndef TEST_ENT_HELPERS_H
#define TEST_ENT_HELPERS_H

#include <stdio.h>
#include <string.h>

#include "chorus/entities.h"

/* Sunday 29 November 2026, 10:15, in the US. */
static inline ent_ctx_t ctx_at(int y, int m, int d)
{
    ent_ctx_t c = {y, m, d, 10, 15, NULL, NULL};
    return c;
}

static inline ent_ctx_t ref_ctx(void)
{
    return ctx_at(2026, 11, 29);
}

/* The value ent_find gives for type in text, or "-" when nothing is found. */
static inline const char *find_in(ent_type_t type, const char *text, const ent_ctx_t *ctx)
{
    static char out[ENT_VALUE_MAX];
    ent_t e;
    int rc = ent_find(type, text, strlen(text), ctx, &e);
    if (rc != 0)
        return "-";
    snprintf(out, sizeof(out), "%s", e.value);
    return out;
}

/* Every entity ent_extract finds, as "type:value type:value". */
static inline const char *extract_all(const char *text, const ent_ctx_t *ctx)
{
    static char out[2048];
    ent_list_t l;
    ent_extract(text, strlen(text), ctx, &l);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l.len && used < sizeof(out); i++)
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%s:%s", i ? " " : "",
                                 ent_type_name(l.items[i].type), l.items[i].value);
    return out;
}

#endif
