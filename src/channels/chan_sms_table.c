/* The SMS adapter's conversations (bounded, least recently used evicted)
 * and opt-outs (kept apart, never evicted). Eviction takes the head of the
 * idle list: held conversations are not on it and opt-outs are not in the
 * table at all, so making room never walks over entries it may not free,
 * however many pairs opted out. Contract: chan_sms_int.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chan_sms_int.h"
#include "channels/chan_twilio_int.h"

void sms__table_init(sms_table_t *t)
{
    chat__map_init(&t->convs);
    chat__list_init(&t->idle);
    chat__map_init(&t->opt_outs);
    chat__list_init(&t->unsaved);
}

void sms__choices_clear(sms_conv_t *cv)
{
    twilio__choices_free(cv->choices, cv->n_choices);
    cv->choices = NULL;
    cv->n_choices = 0;
}

static void conv_free(sms_table_t *t, sms_conv_t *cv)
{
    assert(cv->pending == 0); /* a callback in flight still points at it */
    chat__map_del(&t->convs, &cv->node);
    chat__list_remove(&cv->lru);
    sms__choices_clear(cv);
    free(cv->key);
    free(cv->rt_key);
    free(cv);
}

void sms__table_dispose(sms_table_t *t)
{
    while (!chat__list_empty(&t->idle))
        conv_free(t, CHAT_CONTAINER(t->idle.next, sms_conv_t, lru));
    assert(t->convs.count == 0); /* a held conversation is not on the list */
    for (size_t i = 0; i < t->opt_outs.nslots; i++)
        while (t->opt_outs.slots[i] != NULL) {
            sms_opt_t *o = CHAT_CONTAINER(t->opt_outs.slots[i], sms_opt_t, node);
            chat__map_del(&t->opt_outs, &o->node);
            chat__list_remove(&o->unsaved);
            free(o);
        }
    chat__map_dispose(&t->convs);
    chat__map_dispose(&t->opt_outs);
}

sms_conv_t *sms__conv_get(sms_table_t *t, const char *from, const char *to, size_t max)
{
    char *key = core_xasprintf("%s\n%s", from, to);
    chat_map_node_t *n = chat__map_get(&t->convs, key);
    sms_conv_t *cv;
    if (n != NULL) {
        free(key);
        cv = CHAT_CONTAINER(n, sms_conv_t, node);
        if (cv->pending > 0)
            return cv; /* off the list until released, which makes it the most recent */
        chat__list_remove(&cv->lru);
    } else {
        /* a loop only when max was lowered (SIGHUP): one eviction otherwise */
        while (t->convs.count >= max && !chat__list_empty(&t->idle))
            conv_free(t, CHAT_CONTAINER(t->idle.next, sms_conv_t, lru));
        cv = core_xcalloc(1, sizeof(*cv));
        cv->key = key;
        cv->rt_key = core_xasprintf("sms:%s:%s", from, to);
        cv->node.key = cv->key;
        chat__map_put(&t->convs, &cv->node);
    }
    chat__list_push_back(&t->idle, &cv->lru);
    return cv;
}

void sms__conv_hold(sms_conv_t *cv)
{
    if (cv->pending++ == 0)
        chat__list_remove(&cv->lru);
}

void sms__conv_release(sms_table_t *t, sms_conv_t *cv)
{
    assert(cv->pending > 0);
    if (--cv->pending == 0)
        chat__list_push_back(&t->idle, &cv->lru);
}

sms_opt_t *sms__opt_find(const sms_table_t *t, const char *key)
{
    chat_map_node_t *n = chat__map_get(&t->opt_outs, key);
    return n ? CHAT_CONTAINER(n, sms_opt_t, node) : NULL;
}

sms_opt_t *sms__opt_set(sms_table_t *t, const char *key, int opted_out)
{
    sms_opt_t *o = sms__opt_find(t, key);
    if (opted_out && o == NULL) {
        size_t n = strlen(key) + 1;
        o = core_xcalloc(1, sizeof(*o) + n);
        memcpy(o->key, key, n);
        o->node.key = o->key;
        chat__list_init(&o->unsaved);
        chat__map_put(&t->opt_outs, &o->node);
    } else if (!opted_out && o != NULL) {
        chat__map_del(&t->opt_outs, &o->node);
        chat__list_remove(&o->unsaved);
        free(o);
        o = NULL;
    }
    return o;
}
