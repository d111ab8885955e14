/* Rate-limit buckets per sender (a phone number, an API key, a remote
 * address): a bounded map, so a flood of distinct senders costs a fixed
 * amount of memory. Each key lives in a window of RT_SENDER_WAYS slots after
 * its hash; a new key takes a free slot of its window or the one used least
 * recently, so a forgotten sender starts again with a full bucket. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_int.h"

#define RT_SENDER_SLOTS 8192 /* power of two */
#define RT_SENDER_WAYS 8

typedef struct {
    char *key;     /* owned, NULL when free */
    uint64_t used; /* tick of the last lookup */
    guard_bucket_t bucket;
} sender_slot_t;

struct rt_senders_s {
    sender_slot_t slots[RT_SENDER_SLOTS];
    uint64_t tick;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

guard_bucket_t *rt_senders_get(rt_senders_t **map, const char *sender)
{
    if (sender == NULL || sender[0] == '\0')
        return NULL;
    if (*map == NULL)
        *map = core_xcalloc(1, sizeof(**map));
    rt_senders_t *m = *map;
    uint32_t h = hash_str(sender);
    sender_slot_t *pick = NULL;
    for (uint32_t i = 0; i < RT_SENDER_WAYS; i++) {
        sender_slot_t *s = &m->slots[(h + i) & (RT_SENDER_SLOTS - 1)];
        if (s->key != NULL && strcmp(s->key, sender) == 0) {
            s->used = ++m->tick;
            return &s->bucket;
        }
        if (pick == NULL || (pick->key != NULL && (s->key == NULL || s->used < pick->used)))
            pick = s;
    }
    free(pick->key);
    pick->key = core_xstrdup(sender);
    pick->used = ++m->tick;
    memset(&pick->bucket, 0, sizeof(pick->bucket));
    return &pick->bucket;
}

void rt_senders_free(rt_senders_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < RT_SENDER_SLOTS; i++)
        free(m->slots[i].key);
    free(m);
}
