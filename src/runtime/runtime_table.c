/* The conversation table: an in-memory chained hash map from conversation
 * key to conversation, growing by doubling. Contract: runtime_int.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "runtime/runtime_envs.h"

static uint32_t hash_seed;

static uint32_t hash_key(const char *s)
{
    /* FNV-1a over a random per-process seed: keys come from senders (phone
     * numbers, session ids), so colliding keys must not be computable offline. */
    uint32_t h = 2166136261u ^ hash_seed;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

void rt_table_init(rt_table_t *t)
{
    if (hash_seed == 0 && getrandom(&hash_seed, sizeof(hash_seed), GRND_NONBLOCK) < 0)
        hash_seed = (uint32_t)core_now_us();
    t->n_buckets = 64;
    t->buckets = core_xcalloc(t->n_buckets, sizeof(*t->buckets));
    t->len = 0;
    t->due = core_xcalloc(RT_DUE_SLOTS, sizeof(*t->due));
    t->next_tick = 0;
}

void rt_conv_free(rt_conv_t *c)
{
    if (c == NULL)
        return;
    brain_conv_dispose(&c->state);
    brain_flowset_unref(c->fs);
    rt_ver_unref(c->ver);
    free(c->policy);
    free(c);
}

void rt_table_dispose(rt_table_t *t)
{
    for (size_t i = 0; i < t->n_buckets; i++) {
        rt_conv_t *c = t->buckets[i];
        while (c != NULL) {
            rt_conv_t *next = c->hnext;
            rt_conv_free(c);
            c = next;
        }
    }
    free(t->buckets);
    free(t->due);
    t->buckets = NULL;
    t->due = NULL;
    t->n_buckets = t->len = t->bytes = 0;
}

rt_conv_t *rt_table_find(rt_table_t *t, const char *key)
{
    uint32_t h = hash_key(key);
    for (rt_conv_t *c = t->buckets[h & (t->n_buckets - 1)]; c != NULL; c = c->hnext)
        if (c->hash == h && strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

static void grow(rt_table_t *t)
{
    size_t n = t->n_buckets * 2;
    rt_conv_t **b = core_xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->n_buckets; i++) {
        rt_conv_t *c = t->buckets[i];
        while (c != NULL) {
            rt_conv_t *next = c->hnext;
            c->hnext = b[c->hash & (n - 1)];
            b[c->hash & (n - 1)] = c;
            c = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

/* Bytes of an entry besides its state: the struct, the key, a bucket slot
 * (the table keeps at most one bucket per conversation). */
static size_t entry_bytes(const rt_conv_t *c)
{
    return sizeof(*c) - sizeof(c->state) + strlen(c->key) + 1 + sizeof(rt_conv_t *);
}

void rt_table_account(rt_table_t *t, rt_conv_t *c)
{
    size_t now = brain_conv_memory(&c->state);
    t->bytes = t->bytes + now - c->mem;
    c->mem = (uint32_t)now;
}

rt_conv_t *rt_table_add(rt_table_t *t, const char *key)
{
    if (t->len >= t->n_buckets)
        grow(t);
    size_t klen = strlen(key);
    rt_conv_t *c = core_xcalloc(1, sizeof(*c) + klen + 1);
    memcpy(c->key, key, klen + 1);
    c->hash = hash_key(key);
    rt_conv_t **slot = &t->buckets[c->hash & (t->n_buckets - 1)];
    c->hnext = *slot;
    *slot = c;
    t->len++;
    t->bytes += entry_bytes(c);
    rt_due_set(t, c, t->next_tick); /* the sweep's next tick files it by its state */
    return c;
}

void rt_table_remove(rt_table_t *t, rt_conv_t *c)
{
    rt_conv_t **p = &t->buckets[c->hash & (t->n_buckets - 1)];
    while (*p != NULL && *p != c)
        p = &(*p)->hnext;
    if (*p == c) {
        *p = c->hnext;
        t->len--;
        t->bytes -= entry_bytes(c) + c->mem;
    }
    rt_due_unlink(c);
    rt_conv_free(c);
}

int rt_table_each(rt_table_t *t, rt_visit_fn fn, void *arg)
{
    return rt_table_each_range(t, 0, t->n_buckets, fn, arg);
}

int rt_table_each_range(rt_table_t *t, size_t from, size_t to, rt_visit_fn fn, void *arg)
{
    if (to > t->n_buckets)
        to = t->n_buckets;
    for (size_t i = from; i < to; i++) {
        rt_conv_t *c = t->buckets[i];
        while (c != NULL) {
            rt_conv_t *next = c->hnext; /* fn may free c */
            int stop = fn(c, arg);
            if (stop)
                return stop;
            c = next;
        }
    }
    return 0;
}

int rt_table_each_from(rt_table_t *t, size_t from, size_t count, rt_visit_fn fn, void *arg)
{
    size_t n = t->n_buckets;
    if (n == 0)
        return 0;
    if (count > n)
        count = n;
    from %= n;
    size_t head = n - from < count ? n - from : count;
    int stop = rt_table_each_range(t, from, from + head, fn, arg);
    return stop ? stop : rt_table_each_range(t, 0, count - head, fn, arg);
}
