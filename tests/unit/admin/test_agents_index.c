/* What the desk knows of its entries without walking them: the open entry
 * of a key is its newest one not closed, through table growth and removals,
 * among thousands of others; each queue's waiting count and the number of
 * finished entries follow entries as they come, change state and go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/agents_int.h"
#include "test_agents_fixture.h"

/* A new entry for key, its conversation id "conv-" key. */
static ag_entry_t *add_to(ag_desk_t *d, const char *key, const char *queue, ag_state_t state)
{
    char conv[64];
    snprintf(conv, sizeof(conv), "conv-%s", key);
    return fx_entry(d, key, conv, queue, 0, state);
}

static ag_entry_t *add(ag_desk_t *d, const char *key, ag_state_t state)
{
    return add_to(d, key, "general", state);
}

static void test_open_entry_is_the_newest_not_closed(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    assert_null(ag__index_open(&d, "chat:a"));
    ag_entry_t *old = add(&d, "chat:a", AG_RELEASED);
    assert_ptr_equal(ag__index_open(&d, "chat:a"), old);
    ag_entry_t *again = add(&d, "chat:a", AG_WAITING); /* handed off again after a release */
    assert_ptr_equal(ag__index_open(&d, "chat:a"), again);
    ag__set_state(&d, again, AG_CLOSED);
    assert_ptr_equal(ag__index_open(&d, "chat:a"), old);
    ag__set_state(&d, old, AG_CLOSED);
    assert_null(ag__index_open(&d, "chat:a"));
    assert_null(ag__index_open(&d, "chat:b"));
    fx_free_all(&d);
}

static void test_thousands_of_keys_through_growth_and_removal(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    char key[32];
    enum { N = 5000 };
    ag_entry_t *first[N], *second[N];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sms:+1555%07d", i);
        first[i] = add(&d, key, AG_CLAIMED);
    }
    for (int i = 0; i < N; i += 2) { /* every other key gets a newer entry */
        snprintf(key, sizeof(key), "sms:+1555%07d", i);
        second[i] = add(&d, key, AG_WAITING);
    }
    assert_true(d.by_cap >= d.n_entries);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sms:+1555%07d", i);
        assert_ptr_equal(ag__index_open(&d, key), i % 2 == 0 ? second[i] : first[i]);
    }
    /* the newer entries leave the index (trimmed): the older ones answer */
    for (int i = 0; i < N; i += 2)
        ag__index_remove(&d, second[i]);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sms:+1555%07d", i);
        assert_ptr_equal(ag__index_open(&d, key), first[i]);
    }
    fx_free_all(&d);
}

/* By handoff id, else the newest entry of a conversation id, through the
 * tables' growth and removals, among thousands. */
static void test_found_by_id_or_conversation(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    assert_null(ag__find(&d, "conv-chat:a"));
    ag_entry_t *first = add(&d, "chat:a", AG_CLOSED);
    ag_entry_t *again = add(&d, "chat:a", AG_WAITING); /* the same conversation, later */
    char key[32];
    enum { N = 3000 };
    ag_entry_t *many[N];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sms:+1555%07d", i);
        many[i] = add(&d, key, AG_WAITING);
    }
    assert_ptr_equal(ag__find(&d, first->id), first);
    assert_ptr_equal(ag__find(&d, again->id), again);
    assert_ptr_equal(ag__find(&d, "conv-chat:a"), again);
    for (int i = 0; i < N; i += 7) {
        assert_ptr_equal(ag__find(&d, many[i]->id), many[i]);
        snprintf(key, sizeof(key), "conv-sms:+1555%07d", i);
        assert_ptr_equal(ag__find(&d, key), many[i]);
    }
    assert_null(ag__find(&d, "00000000000000000000000000000000"));
    assert_null(ag__find(&d, "conv-chat:b"));
    ag__index_remove(&d, again); /* trimmed: the older one answers for its conversation */
    assert_null(ag__find(&d, again->id));
    assert_ptr_equal(ag__find(&d, "conv-chat:a"), first);
    fx_free_all(&d);
}

static void test_waiting_and_finished_are_counted(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    assert_int_equal(ag__waiting(&d, "billing"), 0);
    ag_entry_t *a = add_to(&d, "chat:a", "billing", AG_WAITING);
    ag_entry_t *b = add_to(&d, "chat:b", "billing", AG_WAITING);
    ag_entry_t *c = add_to(&d, "sms:c", "general", AG_WAITING);
    add_to(&d, "voice:d", "general", AG_CLAIMED); /* read back claimed */
    assert_int_equal(ag__waiting(&d, "billing"), 2);
    assert_int_equal(ag__waiting(&d, "general"), 1);
    ag__set_state(&d, a, AG_CLAIMED);
    assert_int_equal(ag__waiting(&d, "billing"), 1);
    ag__set_state(&d, a, AG_RELEASED);
    assert_int_equal(ag__waiting(&d, "billing"), 1);
    assert_int_equal(d.n_done, 0);
    ag__set_state(&d, a, AG_CLOSED);
    ag__set_state(&d, c, AG_CLOSED);
    assert_int_equal(d.n_done, 2);
    assert_int_equal(ag__waiting(&d, "general"), 0);
    ag__index_remove(&d, a); /* trimmed */
    assert_int_equal(d.n_done, 1);
    ag__index_remove(&d, b);
    assert_int_equal(ag__waiting(&d, "billing"), 0);
    /* thousands waiting in one queue, then all claimed */
    ag_entry_t *many[3000];
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "chat:%d", i);
        many[i] = add_to(&d, key, "outage", AG_WAITING);
    }
    assert_int_equal(ag__waiting(&d, "outage"), 3000);
    for (int i = 0; i < 3000; i++)
        ag__set_state(&d, many[i], AG_CLAIMED);
    assert_int_equal(ag__waiting(&d, "outage"), 0);
    assert_int_equal(ag__waiting(&d, "billing"), 0);
    fx_free_all(&d);
}

/* Trimming forgets the oldest finished entries but never the one that just
 * changed: an entry entered before thousands of others and closed only now
 * is still answered with after its close. */
static void test_trim_keeps_the_entry_just_changed(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    ag_entry_t *old = add_to(&d, "chat:old", "billing", AG_CLAIMED);
    char key[32];
    for (int i = 0; i < AG_MAX_DONE + AG_DONE_SLACK; i++) {
        snprintf(key, sizeof(key), "chat:%d", i);
        add_to(&d, key, "billing", AG_CLOSED);
    }
    ag__set_state(&d, old, AG_CLOSED);
    ag__trim(&d, old);
    assert_ptr_equal(ag__find(&d, old->id), old);
    assert_int_equal(d.n_entries, AG_MAX_DONE + 1);
    assert_int_equal(d.n_done, AG_MAX_DONE + 1);
    ag__trim(&d, NULL); /* under the slack now: nothing more goes */
    assert_int_equal(d.n_entries, AG_MAX_DONE + 1);
    fx_free_all(&d);
}

/* A released entry whose outcome is known (the bot finished the
 * conversation, or it was handed off again) is over: no longer its key's
 * open entry, whatever comes on the key next, counted finished and
 * trimmed like a closed one. Released entries used to stay open forever:
 * a later handoff of the key turned a bot_finished into escalated_again,
 * and none of them was ever freed. */
static void test_released_with_an_outcome_is_finished(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    char key[32];
    enum { N = AG_MAX_DONE + AG_DONE_SLACK + 10 };
    char first[33] = "";
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "chat:%d", i);
        ag_entry_t *e = add(&d, key, AG_RELEASED);
        assert_ptr_equal(ag__index_open(&d, key), e); /* its outcome still to come */
        /* the outcome as ag__set_outcome gives it: tallied out, then in */
        ag__set_state(&d, e, AG_CLAIMED);
        e->release_outcome = core_xstrdup(i % 2 ? "bot_finished" : "escalated_again");
        ag__set_state(&d, e, AG_RELEASED);
        assert_null(ag__index_open(&d, key));
        if (i == 0)
            memcpy(first, e->id, sizeof(first));
    }
    assert_int_equal(d.n_done, N);
    ag__trim(&d, NULL);
    assert_int_equal(d.n_entries, AG_MAX_DONE);
    assert_int_equal(d.n_done, AG_MAX_DONE);
    assert_null(ag__find(&d, first)); /* the oldest went */
    fx_free_all(&d);
}

static void test_an_outcome_finishes_a_released_entry(void **state)
{
    (void)state;
    ag_desk_t d = {0};
    ag_entry_t *e = add(&d, "chat:a", AG_RELEASED);
    assert_int_equal(d.n_done, 0);
    ag__set_outcome(&d, e, "bot_finished");
    assert_int_equal(d.n_done, 1);
    assert_string_equal(e->release_outcome, "bot_finished");
    assert_null(ag__index_open(&d, "chat:a"));
    ag_entry_t *next = add(&d, "chat:a", AG_WAITING); /* a new conversation of the key */
    assert_ptr_equal(ag__index_open(&d, "chat:a"), next);
    assert_string_equal(e->release_outcome, "bot_finished");
    ag__index_remove(&d, e); /* trimmed */
    assert_int_equal(d.n_done, 0);
    fx_free_all(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_entry_is_the_newest_not_closed),
        cmocka_unit_test(test_thousands_of_keys_through_growth_and_removal),
        cmocka_unit_test(test_found_by_id_or_conversation),
        cmocka_unit_test(test_waiting_and_finished_are_counted),
        cmocka_unit_test(test_trim_keeps_the_entry_just_changed),
        cmocka_unit_test(test_released_with_an_outcome_is_finished),
        cmocka_unit_test(test_an_outcome_finishes_a_released_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
