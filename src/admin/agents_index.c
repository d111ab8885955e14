/* The desk's entries by runtime key (agents_int.h). Every turn of every
 * conversation asks whether its key has an open handoff, and thousands of
 * handoffs may wait in the queues, so the question is a hash lookup rather
 * than a walk of d->entries. Chained buckets; within a bucket an entry is
 * inserted before the others, so a key's entries stay newest first, as in
 * d->entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

static size_t bucket(const ag_desk_t *d, const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h & (d->by_key_cap - 1);
}

static void link_in(ag_desk_t *d, ag_entry_t *e)
{
    ag_entry_t **b = &d->by_key[bucket(d, e->key)];
    e->key_next = *b;
    *b = e;
}

/* Doubles the table. Entries are linked in again oldest first (d->entries
 * is newest first, n_entries long), so each key keeps its order. */
static void grow(ag_desk_t *d)
{
    free(d->by_key);
    d->by_key_cap = d->by_key_cap ? d->by_key_cap * 2 : 64;
    d->by_key = core_xcalloc(d->by_key_cap, sizeof(*d->by_key));
    ag_entry_t **all = core_xcalloc(d->n_entries + 1, sizeof(*all));
    size_t n = 0;
    for (ag_entry_t *e = d->entries; e != NULL; e = e->next)
        all[n++] = e;
    while (n-- > 0)
        link_in(d, all[n]);
    free(all);
}

void ag__index_add(ag_desk_t *d, ag_entry_t *e)
{
    /* callers put e at the head of d->entries first: a grow re-links it */
    if (d->n_entries > d->by_key_cap)
        grow(d);
    else
        link_in(d, e);
}

void ag__index_remove(ag_desk_t *d, ag_entry_t *e)
{
    if (d->by_key_cap == 0)
        return;
    for (ag_entry_t **p = &d->by_key[bucket(d, e->key)]; *p != NULL; p = &(*p)->key_next)
        if (*p == e) {
            *p = e->key_next;
            return;
        }
}

ag_entry_t *ag__index_open(ag_desk_t *d, const char *key)
{
    if (d->by_key_cap == 0)
        return NULL;
    for (ag_entry_t *e = d->by_key[bucket(d, key)]; e != NULL; e = e->key_next)
        if (e->state <= AG_RELEASED && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}
