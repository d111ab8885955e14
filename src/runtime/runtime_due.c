/* The conversation table's due lists: a timing wheel of intrusive lists, by
 * the tick at which the idle sweep next looks at a conversation. Filing,
 * moving and taking off are O(1); a sweep tick pops only what is due.
 * Contract: runtime_int.h. */
#include "runtime/runtime_int.h"

void rt_due_unlink(rt_conv_t *c)
{
    if (c->dpprev == NULL)
        return;
    *c->dpprev = c->dnext;
    if (c->dnext != NULL)
        c->dnext->dpprev = c->dpprev;
    c->dnext = NULL;
    c->dpprev = NULL;
}

void rt_due_set(rt_table_t *t, rt_conv_t *c, uint64_t tick)
{
    if (tick < t->next_tick)
        tick = t->next_tick;
    else if (tick - t->next_tick >= RT_DUE_SLOTS)
        tick = t->next_tick + RT_DUE_SLOTS - 1; /* looked at early, then filed again */
    rt_due_unlink(c);
    rt_conv_t **head = &t->due[tick & (RT_DUE_SLOTS - 1)];
    c->dnext = *head;
    if (*head != NULL)
        (*head)->dpprev = &c->dnext;
    *head = c;
    c->dpprev = head;
    c->due_tick = tick;
}

/* After a stall of about a lap (the loop held up, the machine suspended),
 * every filed conversation is due: all are filed at now_tick, and the
 * sweep's own refiling at now_tick + 1 stays inside the lap. */
static void catch_up(rt_table_t *t, uint64_t now_tick)
{
    rt_conv_t *all = NULL;
    for (size_t i = 0; i < RT_DUE_SLOTS; i++) {
        while (t->due[i] != NULL) {
            rt_conv_t *c = t->due[i];
            rt_due_unlink(c);
            c->dnext = all;
            all = c;
        }
    }
    t->next_tick = now_tick;
    while (all != NULL) {
        rt_conv_t *c = all;
        all = c->dnext;
        c->dnext = NULL;
        rt_due_set(t, c, now_tick);
    }
}

rt_conv_t *rt_due_pop(rt_table_t *t, uint64_t now_tick)
{
    if (now_tick >= t->next_tick && now_tick - t->next_tick >= RT_DUE_SLOTS - 1)
        catch_up(t, now_tick);
    while (t->next_tick <= now_tick) {
        rt_conv_t *c = t->due[t->next_tick & (RT_DUE_SLOTS - 1)];
        if (c != NULL) {
            rt_due_unlink(c);
            return c;
        }
        t->next_tick++;
    }
    return NULL;
}
