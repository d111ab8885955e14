/* The conversation table's due lists (runtime_due.c), on their own: the
 * idle sweep pops only what a tick has due, in tick order; filing clamps
 * into the lap of RT_DUE_SLOTS ticks; what a pass files again after the
 * tick it sweeps waits for a later pass; after a stall longer than the lap
 * everything filed is due once; a removed conversation leaves its list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/runtime_int.h"

static rt_conv_t *add(rt_table_t *t, const char *prefix, int i)
{
    char key[32];
    snprintf(key, sizeof(key), "%s:%d", prefix, i);
    rt_conv_t *c = rt_table_add(t, key);
    assert_non_null(c);
    return c;
}

/* Pops everything due by now_tick, counting it; fails on a pop twice. */
static int pop_all(rt_table_t *t, uint64_t now_tick, rt_conv_t **seen, int max)
{
    int n = 0;
    rt_conv_t *c;
    while ((c = rt_due_pop(t, now_tick)) != NULL) {
        assert_true(n < max);
        assert_null(c->dpprev); /* off its list */
        assert_true(c->due_tick <= now_tick);
        for (int i = 0; i < n; i++)
            assert_ptr_not_equal(seen[i], c);
        seen[n++] = c;
    }
    return n;
}

static void test_a_new_conversation_is_due_at_the_next_tick(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    rt_conv_t *c = add(&t, "new", 0);
    assert_int_equal(c->due_tick, 0);
    assert_ptr_equal(rt_due_pop(&t, 0), c);
    assert_null(rt_due_pop(&t, 0));
    assert_int_equal(t.next_tick, 1); /* tick 0 is swept */
    rt_table_dispose(&t);
    (void)state;
}

static void test_pop_takes_only_what_is_due_in_tick_order(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    rt_conv_t *c[200];
    for (int i = 0; i < 200; i++) {
        c[i] = add(&t, "c", i);
        rt_due_set(&t, c[i], (uint64_t)(200 - i)); /* c[199] due first */
    }
    rt_conv_t *seen[200];
    assert_int_equal(pop_all(&t, 0, seen, 200), 0); /* nothing due at tick 0 */
    assert_int_equal(pop_all(&t, 10, seen, 200), 10);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(seen[i], c[199 - i]); /* ticks 1, 2, ... 10 */
    assert_int_equal(t.next_tick, 11);
    /* Filed again later, a popped one waits for its new tick. */
    for (int i = 0; i < 10; i++)
        rt_due_set(&t, seen[i], 500);
    assert_int_equal(pop_all(&t, 499, seen, 200), 190);
    assert_int_equal(pop_all(&t, 500, seen, 200), 10);
    assert_int_equal(pop_all(&t, 2000, seen, 200), 0);
    rt_table_dispose(&t);
    (void)state;
}

static void test_filing_moves_and_clamps_into_the_lap(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    rt_conv_t *a = add(&t, "a", 0), *b = add(&t, "b", 0);
    rt_conv_t *seen[4];
    assert_int_equal(pop_all(&t, 99, seen, 4), 2); /* both at tick 0 */
    assert_int_equal(t.next_tick, 100);
    rt_due_set(&t, a, 5); /* before the next tick: the next tick */
    assert_int_equal(a->due_tick, t.next_tick);
    rt_due_set(&t, b, UINT64_MAX); /* never: the lap's last tick, looked at again then */
    assert_int_equal(b->due_tick, t.next_tick + RT_DUE_SLOTS - 1);
    rt_due_set(&t, b, t.next_tick + 3); /* moved, not filed twice */
    assert_int_equal(pop_all(&t, t.next_tick + RT_DUE_SLOTS - 2, seen, 4), 2);
    assert_ptr_equal(seen[0], a);
    assert_ptr_equal(seen[1], b);
    rt_table_dispose(&t);
    (void)state;
}

/* The sweep files what it looked at on the tick after now: a pass ends. */
static void test_refiled_after_now_waits_for_the_next_pass(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    for (int i = 0; i < 50; i++)
        add(&t, "r", i);
    int n = 0;
    rt_conv_t *c;
    while ((c = rt_due_pop(&t, 7)) != NULL) {
        rt_due_set(&t, c, 8);
        assert_true(++n <= 50);
    }
    assert_int_equal(n, 50);
    assert_int_equal(t.next_tick, 8);
    rt_conv_t *seen[50];
    assert_int_equal(pop_all(&t, 8, seen, 50), 50);
    rt_table_dispose(&t);
    (void)state;
}

/* A stall of a lap or more: every filed conversation is due, each popped
 * once, and filing at now + 1 during the pass stays out of it. */
static void test_a_stall_longer_than_the_lap(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    rt_conv_t *c[64];
    for (int i = 0; i < 64; i++) {
        c[i] = add(&t, "s", i);
        rt_due_set(&t, c[i], (uint64_t)(i * 60)); /* spread over the lap */
    }
    uint64_t now = 3 * RT_DUE_SLOTS + 17;
    int n = 0;
    rt_conv_t *p;
    while ((p = rt_due_pop(&t, now)) != NULL) {
        rt_due_set(&t, p, now + 1);
        assert_true(++n <= 64);
    }
    assert_int_equal(n, 64);
    assert_int_equal(t.next_tick, now + 1);
    for (int i = 0; i < 64; i++)
        assert_int_equal(c[i]->due_tick, now + 1);
    rt_table_dispose(&t);
    (void)state;
}

static void test_a_removed_conversation_leaves_its_list(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    rt_conv_t *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = add(&t, "x", i);
        rt_due_set(&t, c[i], 4); /* one list: head, middle, tail */
    }
    rt_table_remove(&t, c[1]); /* the middle */
    rt_table_remove(&t, c[2]); /* the head (filed last) */
    rt_conv_t *seen[3];
    assert_int_equal(pop_all(&t, 4, seen, 3), 1);
    assert_ptr_equal(seen[0], c[0]);
    rt_table_remove(&t, c[0]); /* popped, on no list */
    assert_int_equal(t.len, 0);
    rt_table_dispose(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_new_conversation_is_due_at_the_next_tick),
        cmocka_unit_test(test_pop_takes_only_what_is_due_in_tick_order),
        cmocka_unit_test(test_filing_moves_and_clamps_into_the_lap),
        cmocka_unit_test(test_refiled_after_now_waits_for_the_next_pass),
        cmocka_unit_test(test_a_stall_longer_than_the_lap),
        cmocka_unit_test(test_a_removed_conversation_leaves_its_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
