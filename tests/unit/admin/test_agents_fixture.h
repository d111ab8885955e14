/* The desk's entries as the unit tests of its index and ranks build them:
 * linked at the head of d->entries and indexed as the desk does, with a
 * fresh 32-digit handoff id each, and freed all at once. */
#ifndef TEST_AGENTS_FIXTURE_H
#define TEST_AGENTS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "admin/agents_int.h"

static inline ag_entry_t *fx_entry(ag_desk_t *d, const char *key, const char *conv_id,
                                   const char *queue, int64_t entered_us, ag_state_t state)
{
    static unsigned serial;
    ag_entry_t *e = core_xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%032u", ++serial);
    e->conv_id = core_xstrdup(conv_id);
    e->key = core_xstrdup(key);
    e->queue = core_xstrdup(queue);
    e->entered_us = entered_us;
    e->state = state;
    e->next = d->entries;
    d->entries = e;
    d->n_entries++;
    ag__index_add(d, e);
    return e;
}

static inline void fx_free_all(ag_desk_t *d)
{
    for (ag_entry_t *e = d->entries, *next; e != NULL; e = next) {
        next = e->next;
        free(e->key);
        free(e->queue);
        free(e->conv_id);
        free(e->release_outcome);
        free(e);
    }
    for (int by = 0; by < AG_BY_COUNT; by++)
        free(d->by[by]);
    for (size_t i = 0; i < d->n_tally; i++)
        free(d->tally[i].queue);
    free(d->tally);
}

#endif
