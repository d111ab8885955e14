/* Queue positions for the max-wait sweep (agents_rank.c): for every waiting
 * entry of two queues, among claimed and released ones, with entries that
 * entered at the same microsecond and a list not in order of entry (a
 * restore links the saved ones in after newer ones), the position a sweep
 * gives is the walk's (ag__position); and as entries stop waiting during
 * the sweep (handed back to the bot), the positions of the others move up
 * as a walk made at that moment would say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/agents_int.h"
#include "test_agents_fixture.h"

static ag_entry_t *add(ag_desk_t *d, const char *queue, int64_t entered_us, ag_state_t state)
{
    static unsigned serial;
    char key[64];
    snprintf(key, sizeof(key), "chat:%u", ++serial);
    return fx_entry(d, key, key + 5, queue, entered_us, state);
}

/* Every waiting entry's sweep position is its walk position. */
static void check_all(ag_desk_t *d, ag_ranks_t *r)
{
    for (ag_entry_t *e = d->entries; e != NULL; e = e->next)
        if (e->state == AG_WAITING)
            assert_int_equal(ag__ranks_position(r, d, e), ag__position(d, e));
}

static void test_positions_in_two_queues(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    /* bookings: entered at 10, 20, 20 (the same microsecond), 30, 40 with
     * 20's second claimed; baggage: 15, 25, 35 with 25 released; added out
     * of order, as a restore after newer entries would link them */
    ag_entry_t *b40 = add(&d, "bookings", 40, AG_WAITING);
    ag_entry_t *b10 = add(&d, "bookings", 10, AG_WAITING);
    ag_entry_t *g35 = add(&d, "baggage", 35, AG_WAITING);
    ag_entry_t *b20a = add(&d, "bookings", 20, AG_WAITING);
    add(&d, "bookings", 20, AG_CLAIMED);
    ag_entry_t *b20b = add(&d, "bookings", 20, AG_WAITING);
    ag_entry_t *g15 = add(&d, "baggage", 15, AG_WAITING);
    add(&d, "baggage", 25, AG_RELEASED);
    ag_entry_t *b30 = add(&d, "bookings", 30, AG_WAITING);

    ag_ranks_t r = {0};
    assert_int_equal(ag__ranks_position(&r, &d, b10), 1);
    assert_int_equal(ag__ranks_position(&r, &d, b20a), 2);
    assert_int_equal(ag__ranks_position(&r, &d, b20b), 2); /* neither entered before the other */
    assert_int_equal(ag__ranks_position(&r, &d, b30), 4);
    assert_int_equal(ag__ranks_position(&r, &d, b40), 5);
    assert_int_equal(ag__ranks_position(&r, &d, g15), 1);
    assert_int_equal(ag__ranks_position(&r, &d, g35), 2);
    check_all(&d, &r);

    /* the sweep hands b20a and g15 back to the bot: those after move up */
    ag__set_state(&d, b20a, AG_RELEASED);
    ag__ranks_left(&r, b20a);
    ag__ranks_left(&r, b20a); /* told twice: counted once */
    ag__set_state(&d, g15, AG_RELEASED);
    ag__ranks_left(&r, g15);
    assert_int_equal(ag__ranks_position(&r, &d, b30), 3);
    assert_int_equal(ag__ranks_position(&r, &d, b40), 4);
    assert_int_equal(ag__ranks_position(&r, &d, b20b), 2);
    assert_int_equal(ag__ranks_position(&r, &d, g35), 1);
    check_all(&d, &r);
    ag__ranks_dispose(&r);

    /* told before the first position: the sort sees the states then */
    ag__set_state(&d, b10, AG_RELEASED);
    ag__ranks_left(&r, b10);
    assert_int_equal(ag__ranks_position(&r, &d, b20b), 1);
    check_all(&d, &r);
    ag__ranks_dispose(&r);
    fx_free_all(&d);
}

/* Thousands waiting in two queues, every third handed back during the
 * sweep: each position asked as the sweep goes is the walk's then. */
static void test_a_sweep_over_thousands(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    enum { N = 3000 };
    for (int i = 0; i < N; i++)
        add(&d, i % 2 ? "bookings" : "baggage", (int64_t)(i * 7919 % N), AG_WAITING);
    ag_ranks_t r = {0};
    int k = 0;
    for (ag_entry_t *e = d.entries; e != NULL; e = e->next, k++) {
        if (e->state != AG_WAITING)
            continue;
        if (k % 97 == 0) /* a walk is O(n): check a sample */
            assert_int_equal(ag__ranks_position(&r, &d, e), ag__position(&d, e));
        else
            ag__ranks_position(&r, &d, e);
        if (k % 3 == 0) {
            ag__set_state(&d, e, AG_RELEASED);
            ag__ranks_left(&r, e);
        }
    }
    check_all(&d, &r);
    ag__ranks_dispose(&r);
    fx_free_all(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_in_two_queues),
        cmocka_unit_test(test_a_sweep_over_thousands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
