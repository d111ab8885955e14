/* What the desk knows of its entries without walking them (agents_int.h).
 * Thousands of handoffs may wait in the queues (an outage sends everyone
 * to a person at once), and every turn of every conversation asks whether
 * its key has an open handoff, every state change sets its queue's waiting
 * gauge, and every change may forget finished entries: so entries are
 * hashed by runtime key, and each queue's waiting count and the number of
 * finished entries are kept as entries come, change state and go.
 * Chained buckets; within a bucket an entry is inserted before the others,
 * so a key's entries stay newest first, as in d->entries. */
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

/* The waiting count of queue, added at zero when new. Queues are few (the
 * queues file's, the flows' and "default"), so a short array will do. */
static size_t *waiting_slot(ag_desk_t *d, const char *queue)
{
    for (size_t i = 0; i < d->n_tally; i++)
        if (strcmp(d->tally[i].queue, queue) == 0)
            return &d->tally[i].waiting;
    d->tally = core_xrealloc(d->tally, (d->n_tally + 1) * sizeof(*d->tally));
    d->tally[d->n_tally] = (ag_tally_t){core_xstrdup(queue), 0};
    return &d->tally[d->n_tally++].waiting;
}

/* Counts e in (in = 1) or out (in = 0) of the tallies its state is in. */
static void tally(ag_desk_t *d, const ag_entry_t *e, int in)
{
    size_t *n = e->state == AG_WAITING  ? waiting_slot(d, e->queue)
                : e->state >= AG_CLOSED ? &d->n_done
                                        : NULL;
    if (n != NULL)
        *n = in ? *n + 1 : *n - 1;
}

void ag__set_state(ag_desk_t *d, ag_entry_t *e, ag_state_t s)
{
    tally(d, e, 0);
    e->state = s;
    tally(d, e, 1);
}

size_t ag__waiting(ag_desk_t *d, const char *queue)
{
    return *waiting_slot(d, queue);
}

void ag__index_add(ag_desk_t *d, ag_entry_t *e)
{
    tally(d, e, 1);
    /* callers put e at the head of d->entries first: a grow re-links it */
    if (d->n_entries > d->by_key_cap)
        grow(d);
    else
        link_in(d, e);
}

void ag__index_remove(ag_desk_t *d, ag_entry_t *e)
{
    tally(d, e, 0);
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
