/* The SMS adapter's pair tables (chan_sms_table.c) without a daemon: the
 * conversations stay within their bound however many pairs opted out,
 * opt-outs outlive their conversations, a held conversation is neither
 * evicted nor counted as recently used until released, and eviction takes
 * the least recently used idle conversation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channels/chan_sms_int.h"

static sms_conv_t *get(sms_table_t *t, int n, size_t max)
{
    char from[32];
    snprintf(from, sizeof(from), "+1555%07d", n);
    return sms__conv_get(t, from, "+15559870000", max);
}

static int held(const sms_table_t *t, int n)
{
    char key[64];
    snprintf(key, sizeof(key), "+1555%07d\n+15559870000", n);
    return chat__map_get(&t->convs, key) != NULL;
}

static size_t idle_len(const sms_table_t *t)
{
    size_t n = 0;
    for (const chat_link_t *l = t->idle.next; l != &t->idle; l = l->next)
        n++;
    return n;
}

static void test_opt_outs_take_no_room(void **state)
{
    (void)state;
    sms_table_t t;
    sms__table_init(&t);
    /* more opt-outs than the bound, each through a conversation (a STOP) */
    for (int i = 0; i < 50; i++)
        sms__opt_set(&t, get(&t, i, 5)->key, 1);
    assert_int_equal(t.convs.count, 5);
    assert_int_equal(t.opt_outs.count, 50);
    /* new pairs still get conversations, and the table stays bounded */
    for (int i = 100; i < 200; i++) {
        sms_conv_t *cv = get(&t, i, 5);
        assert_non_null(cv);
        assert_null(sms__opt_find(&t, cv->key));
        assert_true(t.convs.count <= 5);
    }
    assert_int_equal(idle_len(&t), 5);
    /* every opt-out outlived its conversation */
    for (int i = 0; i < 50; i++) {
        char key[64];
        snprintf(key, sizeof(key), "+1555%07d\n+15559870000", i);
        assert_false(held(&t, i));
        assert_non_null(sms__opt_find(&t, key));
    }
    /* START removes it; a second STOP keeps one entry */
    sms_conv_t *cv = get(&t, 7, 5);
    assert_null(sms__opt_set(&t, cv->key, 0));
    assert_null(sms__opt_find(&t, cv->key));
    assert_int_equal(t.opt_outs.count, 49);
    cv = get(&t, 8, 5);
    sms_opt_t *o = sms__opt_find(&t, cv->key);
    o->stop_owed = 1;
    assert_ptr_equal(sms__opt_set(&t, cv->key, 1), o);
    assert_int_equal(o->stop_owed, 1); /* kept until the write succeeds */
    assert_int_equal(t.opt_outs.count, 49);
    /* an unsaved STOP stays on the list through a second STOP, and a START
     * that takes effect takes it off (a freed entry is never written again) */
    chat__list_push_back(&t.unsaved, &o->unsaved);
    assert_ptr_equal(sms__opt_set(&t, cv->key, 1), o);
    assert_false(chat__list_empty(&t.unsaved));
    assert_null(sms__opt_set(&t, cv->key, 0));
    assert_true(chat__list_empty(&t.unsaved));
    /* and one still listed at dispose is freed without walking freed memory */
    o = sms__opt_find(&t, get(&t, 9, 5)->key);
    chat__list_push_back(&t.unsaved, &o->unsaved);
    sms__table_dispose(&t);
}

static void test_held_conversations_are_not_evicted(void **state)
{
    (void)state;
    sms_table_t t;
    sms__table_init(&t);
    sms_conv_t *a = get(&t, 1, 3);
    sms__conv_hold(a);
    sms__conv_hold(a); /* a turn and an opt-out write */
    assert_int_equal(idle_len(&t), 0);
    for (int i = 10; i < 30; i++)
        get(&t, i, 3);
    assert_true(held(&t, 1));
    assert_int_equal(t.convs.count, 3); /* a and two idle ones */
    assert_int_equal(idle_len(&t), 2);
    /* a text while held neither relinks it nor makes a second one */
    assert_ptr_equal(get(&t, 1, 3), a);
    assert_int_equal(idle_len(&t), 2);
    sms__conv_release(&t, a);
    assert_int_equal(idle_len(&t), 2);
    for (int i = 30; i < 40; i++)
        get(&t, i, 3);
    assert_true(held(&t, 1));
    /* released: the most recent, so the two older idle ones go first */
    sms__conv_release(&t, a);
    assert_int_equal(idle_len(&t), 3);
    get(&t, 40, 3);
    get(&t, 41, 3);
    assert_true(held(&t, 1));
    get(&t, 42, 3);
    assert_false(held(&t, 1));
    assert_int_equal(t.convs.count, 3);
    sms__table_dispose(&t);
}

static void test_all_held_grows_then_shrinks(void **state)
{
    (void)state;
    sms_table_t t;
    sms__table_init(&t);
    sms_conv_t *cv[6];
    for (int i = 0; i < 6; i++) {
        cv[i] = get(&t, i, 3);
        sms__conv_hold(cv[i]);
    }
    /* nothing evictable: the table goes past its bound rather than drop a
     * conversation a callback still points at */
    assert_int_equal(t.convs.count, 6);
    for (int i = 0; i < 6; i++)
        sms__conv_release(&t, cv[i]);
    get(&t, 100, 3);
    assert_int_equal(t.convs.count, 3); /* back under the bound at once */
    assert_false(held(&t, 0));
    assert_true(held(&t, 5));
    sms__table_dispose(&t);
}

static void test_recent_use_decides_eviction(void **state)
{
    (void)state;
    sms_table_t t;
    sms__table_init(&t);
    get(&t, 1, 3);
    get(&t, 2, 3);
    get(&t, 3, 3);
    get(&t, 1, 3); /* 2 is now the least recent */
    get(&t, 4, 3);
    assert_true(held(&t, 1));
    assert_false(held(&t, 2));
    assert_true(held(&t, 3));
    assert_true(held(&t, 4));
    /* a lowered bound (SIGHUP) is reached on the next new conversation */
    get(&t, 5, 2);
    assert_int_equal(t.convs.count, 2);
    assert_true(held(&t, 4) && held(&t, 5));
    sms__table_dispose(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_outs_take_no_room),
        cmocka_unit_test(test_held_conversations_are_not_evicted),
        cmocka_unit_test(test_all_held_grows_then_shrinks),
        cmocka_unit_test(test_recent_use_decides_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
