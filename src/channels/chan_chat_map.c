/* An intrusive doubly linked list and a string-keyed chained hash (FNV-1a,
 * power-of-two slots, doubling at load 1) for the chat adapter's tables:
 * conversations by id and idempotency entries by key. Nodes live inside
 * their objects, so lookups allocate nothing. See chan_chat_int.h. */
#include <stdlib.h>
#include <string.h>

#include "channels/chan_chat_int.h"

void chat__list_init(chat_link_t *head)
{
    head->prev = head->next = head;
}

void chat__list_push_back(chat_link_t *head, chat_link_t *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

void chat__list_remove(chat_link_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

int chat__list_empty(const chat_link_t *head)
{
    return head->next == head;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void chat__map_init(chat_map_t *m)
{
    m->nslots = 64;
    m->slots = core_xcalloc(m->nslots, sizeof(*m->slots));
    m->count = 0;
}

void chat__map_dispose(chat_map_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

chat_map_node_t *chat__map_get(const chat_map_t *m, const char *key)
{
    uint64_t h = hash_str(key);
    for (chat_map_node_t *n = m->slots[h & (m->nslots - 1)]; n != NULL; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static void grow(chat_map_t *m)
{
    size_t nslots = m->nslots * 2;
    chat_map_node_t **slots = core_xcalloc(nslots, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++) {
        chat_map_node_t *n = m->slots[i];
        while (n != NULL) {
            chat_map_node_t *next = n->next;
            n->next = slots[n->hash & (nslots - 1)];
            slots[n->hash & (nslots - 1)] = n;
            n = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

void chat__map_put(chat_map_t *m, chat_map_node_t *n)
{
    if (m->count >= m->nslots)
        grow(m);
    n->hash = hash_str(n->key);
    chat_map_node_t **slot = &m->slots[n->hash & (m->nslots - 1)];
    n->next = *slot;
    *slot = n;
    m->count++;
}

void chat__map_del(chat_map_t *m, chat_map_node_t *n)
{
    for (chat_map_node_t **p = &m->slots[n->hash & (m->nslots - 1)]; *p != NULL; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            m->count--;
            return;
        }
}
