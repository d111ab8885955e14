/* The runtime's per-sender rate buckets: one bucket per sender, kept between
 * turns, and a bounded map that forgets old senders under a flood of new
 * ones (a forgotten sender starts again with a full, zeroed bucket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "runtime/runtime_int.h"

static void test_one_bucket_per_sender(void **state)
{
    rt_senders_t *m = NULL;
    assert_null(rt_senders_get(&m, NULL));
    assert_null(rt_senders_get(&m, ""));
    guard_bucket_t *a = rt_senders_get(&m, "+15551230001");
    assert_non_null(a);
    a->primed = 1;
    a->tokens = 3;
    guard_bucket_t *b = rt_senders_get(&m, "+15551230002");
    assert_ptr_not_equal(a, b);
    assert_int_equal(b->primed, 0);
    guard_bucket_t *again = rt_senders_get(&m, "+15551230001");
    assert_ptr_equal(again, a);
    assert_int_equal(again->primed, 1); /* kept between turns */
    rt_senders_free(m);
}

static void test_flood_of_senders_is_bounded(void **state)
{
    rt_senders_t *m = NULL;
    rt_senders_get(&m, "first")->primed = 1;
    char key[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        guard_bucket_t *g = rt_senders_get(&m, key);
        assert_int_equal(g->primed, 0); /* a new sender always starts full */
        g->primed = 1;
    }
    /* 200000 senders in 8192 slots: the first was forgotten and starts again */
    assert_int_equal(rt_senders_get(&m, "first")->primed, 0);
    rt_senders_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_bucket_per_sender),
        cmocka_unit_test(test_flood_of_senders_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
