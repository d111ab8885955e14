/* Queue positions for a sweep (agents_int.h, ag_ranks_t). The max-wait
 * sweep may find thousands overdue at once (an outage queues everyone, and
 * they pass the limit together), and each one's unavailable message may
 * say its {position}: asking ag__position() of each walked every entry for
 * every entry. Here the waiting entries are sorted once, by queue and time
 * of entry, and a Fenwick tree over that order counts those still waiting,
 * so that a position costs O(log n) and an entry that stops waiting during
 * the sweep (handed back to the bot) stops counting for the others, as it
 * would in a walk made at that moment. */
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"

static int cmp_key(const char *qa, int64_t ta, const char *qb, int64_t tb)
{
    int c = strcmp(qa, qb);
    return c != 0 ? c : (ta > tb) - (ta < tb);
}

static int by_queue_entered(const void *a, const void *b)
{
    const ag_entry_t *x = *(ag_entry_t *const *)a, *y = *(ag_entry_t *const *)b;
    return cmp_key(x->queue, x->entered_us, y->queue, y->entered_us);
}

/* The first index whose (queue, entered_us) is not below (queue, t). */
static size_t lower_bound(const ag_ranks_t *r, const char *queue, int64_t t)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(r->w[mid]->queue, r->w[mid]->entered_us, queue, t) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t lowbit(size_t i)
{
    return i & (~i + 1);
}

/* Still-waiting entries among the first i of the order. */
static size_t prefix(const ag_ranks_t *r, size_t i)
{
    size_t sum = 0;
    for (; i > 0; i -= lowbit(i))
        sum += r->tree[i];
    return sum;
}

static void build(ag_ranks_t *r, ag_desk_t *d)
{
    r->built = 1;
    r->w = core_xcalloc(d->n_entries + 1, sizeof(*r->w));
    for (ag_entry_t *e = d->entries; e != NULL; e = e->next)
        if (e->state == AG_WAITING)
            r->w[r->n++] = e;
    qsort(r->w, r->n, sizeof(*r->w), by_queue_entered);
    r->tree = core_xcalloc(r->n + 1, sizeof(*r->tree));
    for (size_t i = 1; i <= r->n; i++) { /* every one waits: the tree of all ones, in O(n) */
        r->tree[i] += 1;
        if (i + lowbit(i) <= r->n)
            r->tree[i + lowbit(i)] += r->tree[i];
    }
}

size_t ag__ranks_position(ag_ranks_t *r, ag_desk_t *d, const ag_entry_t *e)
{
    if (!r->built)
        build(r, d);
    /* 1 + the waiting ones of e's queue that entered before it */
    size_t first = lower_bound(r, e->queue, INT64_MIN);
    size_t before = lower_bound(r, e->queue, e->entered_us);
    return 1 + prefix(r, before) - prefix(r, first);
}

void ag__ranks_left(ag_ranks_t *r, const ag_entry_t *e)
{
    if (!r->built)
        return; /* built later, from the states then */
    for (size_t i = lower_bound(r, e->queue, e->entered_us);
         i < r->n && r->w[i]->entered_us == e->entered_us && strcmp(r->w[i]->queue, e->queue) == 0;
         i++)
        if (r->w[i] == e) {
            if (prefix(r, i + 1) - prefix(r, i) == 0)
                return; /* told already */
            for (size_t j = i + 1; j <= r->n; j += lowbit(j))
                r->tree[j]--;
            return;
        }
}

void ag__ranks_dispose(ag_ranks_t *r)
{
    free(r->w);
    free(r->tree);
    memset(r, 0, sizeof(*r));
}
