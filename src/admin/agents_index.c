/* What the desk knows of its entries without walking them (agents_int.h).
 * Thousands of handoffs may wait in the queues (an outage sends everyone
 * to a person at once), and every turn of every conversation asks whether
 * its key has an open handoff, every agent call, webhook answer and
 * restored row looks an entry up by id, every state change sets its
 * queue's waiting gauge, and every change may forget finished entries: so
 * entries are hashed by runtime key, by handoff id and by conversation id,
 * and each queue's waiting count and the number of finished entries are
 * kept as entries come, change state and go. Chained buckets; within a
 * bucket an entry is inserted before the others, so a name's entries stay
 * newest first, as in d->entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

/* The name an entry is hashed under in each table. */
static const char *name_of(const ag_entry_t *e, int by)
{
    return by == AG_BY_KEY ? e->key : by == AG_BY_ID ? e->id : e->conv_id;
}

static size_t bucket(const ag_desk_t *d, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)h & (d->by_cap - 1);
}

static void link_in(ag_desk_t *d, ag_entry_t *e)
{
    for (int by = 0; by < AG_BY_COUNT; by++) {
        ag_entry_t **b = &d->by[by][bucket(d, name_of(e, by))];
        e->by_next[by] = *b;
        *b = e;
    }
}

/* Doubles the tables. Entries are linked in again oldest first (d->entries
 * is newest first, n_entries long), so each name keeps its order. */
static void grow(ag_desk_t *d)
{
    d->by_cap = d->by_cap ? d->by_cap * 2 : 64;
    for (int by = 0; by < AG_BY_COUNT; by++) {
        free(d->by[by]);
        d->by[by] = core_xcalloc(d->by_cap, sizeof(*d->by[by]));
    }
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

/* A released entry is over once its outcome is known: the bot finished
 * the conversation, or it was handed off again (a new entry has the key).
 * Until then it still waits for that outcome. */
int ag__finished(const ag_entry_t *e)
{
    return e->state >= AG_CLOSED || (e->state == AG_RELEASED && e->release_outcome != NULL);
}

/* Counts e in (in = 1) or out (in = 0) of the tallies its state is in. */
static void tally(ag_desk_t *d, const ag_entry_t *e, int in)
{
    size_t *n = e->state == AG_WAITING ? waiting_slot(d, e->queue)
                : ag__finished(e)      ? &d->n_done
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

void ag__set_outcome(ag_desk_t *d, ag_entry_t *e, const char *outcome)
{
    tally(d, e, 0);
    free(e->release_outcome);
    e->release_outcome = core_xstrdup(outcome);
    tally(d, e, 1);
}

size_t ag__waiting(ag_desk_t *d, const char *queue)
{
    return *waiting_slot(d, queue);
}

/* The newest listed entry of conversation conv_id, NULL when none. */
static ag_entry_t *newest_of_conv(ag_desk_t *d, const char *conv_id)
{
    if (d->by_cap == 0)
        return NULL;
    for (ag_entry_t *e = d->by[AG_BY_CONV][bucket(d, conv_id)]; e != NULL;
         e = e->by_next[AG_BY_CONV])
        if (strcmp(e->conv_id, conv_id) == 0)
            return e;
    return NULL;
}

void ag__index_add(ag_desk_t *d, ag_entry_t *e)
{
    /* the store keeps one current handoff per conversation: from e's first
     * write on, the one before it is a row of handoffs_past (an earlier one
     * still was marked when this one came) */
    ag_entry_t *before = newest_of_conv(d, e->conv_id);
    if (before != NULL)
        before->superseded = 1;
    tally(d, e, 1);
    /* callers put e at the head of d->entries first: a grow re-links it */
    if (d->n_entries > d->by_cap)
        grow(d);
    else
        link_in(d, e);
}

void ag__index_remove(ag_desk_t *d, ag_entry_t *e)
{
    tally(d, e, 0);
    if (d->by_cap == 0)
        return;
    for (int by = 0; by < AG_BY_COUNT; by++)
        for (ag_entry_t **p = &d->by[by][bucket(d, name_of(e, by))]; *p != NULL;
             p = &(*p)->by_next[by])
            if (*p == e) {
                *p = e->by_next[by];
                break;
            }
}

ag_entry_t *ag__index_open(ag_desk_t *d, const char *key)
{
    if (d->by_cap == 0)
        return NULL;
    for (ag_entry_t *e = d->by[AG_BY_KEY][bucket(d, key)]; e != NULL; e = e->by_next[AG_BY_KEY])
        if (!ag__finished(e) && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

ag_entry_t *ag__find(ag_desk_t *d, const char *id)
{
    if (d->by_cap == 0)
        return NULL;
    size_t b = bucket(d, id);
    for (ag_entry_t *e = d->by[AG_BY_ID][b]; e != NULL; e = e->by_next[AG_BY_ID])
        if (strcmp(e->id, id) == 0)
            return e;
    for (ag_entry_t *e = d->by[AG_BY_CONV][b]; e != NULL; e = e->by_next[AG_BY_CONV])
        if (strcmp(e->conv_id, id) == 0)
            return e;
    return NULL;
}
