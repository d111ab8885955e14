/* A handoff's history across a restart (agents_restore.c, migration 7):
 * each message is a row of its own, and what the desk reads back at start
 * is the handoff it had, the same JSON with the same messages (the last
 * 200 of 260, a NUL byte, accents, a marker for text that was not UTF-8),
 * and the same count for the next message's number; a later handoff of
 * the same conversation does not inherit the earlier one's rows. A
 * database written before migration 7, whose handoff rows held their whole
 * history in their detail JSON, reads back the same after the upgrade, and
 * takes new messages as rows from there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "admin/agents_int.h"
#include "unit/store/store_fixture.h"

typedef struct {
    fx_t fx;
    store_t *store; /* what the desk's admin sees: NULL for no store */
    admin_t admin;
    ag_desk_t d;
} world_t;

static void world_open(world_t *w)
{
    core_err_t err = {0};
    memset(w, 0, sizeof(*w));
    assert_int_equal(fx_open(&w->fx, 0, 0, &err), 0);
    w->store = w->fx.store;
    w->admin.host.store = &w->store;
    w->d.admin = &w->admin;
}

/* Closes the store (every queued batch committed) and opens it again, which
 * migrates what is older. */
static void reopen(world_t *w)
{
    store_close(w->fx.store);
    uv_run(&w->fx.loop, UV_RUN_DEFAULT);
    store_options_t opt = {.path = w->fx.path};
    core_err_t err = {0};
    w->fx.store = store_open(&w->fx.loop, &opt, &err);
    assert_non_null(w->fx.store);
    w->store = w->fx.store;
}

static void world_close(world_t *w)
{
    for (ag_entry_t *e = w->d.entries, *next; e != NULL; e = next) {
        next = e->next;
        ag__entry_free(e);
    }
    for (int by = 0; by < AG_BY_COUNT; by++)
        free(w->d.by[by]);
    for (size_t i = 0; i < w->d.n_tally; i++)
        free(w->d.tally[i].queue);
    free(w->d.tally);
    fx_close(&w->fx);
}

/* A new waiting entry of conversation conv at the head of the desk, as
 * enter() makes one. */
static ag_entry_t *enter(ag_desk_t *d, const char *id, const char *conv)
{
    ag_entry_t *e = core_xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->conv_id = core_xstrdup(conv);
    char key[80];
    snprintf(key, sizeof(key), "chat:%s", conv);
    e->key = core_xstrdup(key);
    e->queue = core_xstrdup("bookings");
    e->reason = core_xstrdup("user_requested_human");
    e->channel = BRAIN_CH_CHAT;
    e->entered_us = core_wall_us();
    e->summary =
        json_pack("{s:s,s:s,s:{s:s,s:i},s:s}", "flow", "booking", "reason", "user_requested_human",
                  "slots", "city", "Zürich", "guests", 2, "last_user", "a human please");
    e->messages = json_array();
    e->next = d->entries;
    d->entries = e;
    d->n_entries++;
    ag__index_add(d, e);
    return e;
}

/* n messages from customer, desk and agent in turn, some of them odd; with
 * nul, one in 50 holds a NUL byte (which a detail written before migration
 * 7 could not bring back: jansson refused the whole detail, and SQLite's
 * JSON functions that move it to a row end the text there). */
static void talk(ag_desk_t *d, ag_entry_t *e, int from, int n, int nul)
{
    for (int i = from; i < from + n; i++) {
        char text[64];
        int len = snprintf(text, sizeof(text), "message %d, ça va?", i);
        if (i % 50 == 7 && nul)
            ag__note(d, e, "customer", NULL, "nul\0byte", 8, 0);
        else if (i % 50 == 8)
            ag__note(d, e, "customer", NULL, "\xc0\xaf", 2, 0); /* not UTF-8: a marker */
        else if (i % 3 == 0)
            ag__note(d, e, "customer", NULL, text, (size_t)len, 0);
        else if (i % 3 == 1)
            ag__note(d, e, "system", NULL, text, (size_t)len, 0);
        else
            ag__note(d, e, "agent", "ann", text, (size_t)len, 0);
    }
}

static char *json_of(const ag_entry_t *e)
{
    json_t *j = ag__entry_json(e, 1);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* What a restart reads back: the one open handoff, as a new entry. */
static ag_entry_t *read_back(const char *path, size_t *n_open)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    assert_non_null(db);
    ag_saved_list_t saved;
    assert_int_equal(ag__saved_read(db, &saved, &err), 0);
    store_db_close(db);
    *n_open = saved.n;
    ag_entry_t *e = saved.n > 0 ? ag__entry_from_saved(&saved.v[saved.n - 1]) : NULL;
    ag__saved_dispose(&saved);
    return e;
}

static void assert_same(const ag_entry_t *a, const ag_entry_t *b)
{
    char *x = json_of(a), *y = json_of(b);
    size_t i = 0;
    while (x[i] != '\0' && x[i] == y[i])
        i++;
    if (x[i] != y[i]) /* cmocka cuts long strings: show where they part */
        print_error("differ at %zu: ...%.80s... vs ...%.80s...\n", i, x + (i > 20 ? i - 20 : 0),
                    y + (i > 20 ? i - 20 : 0));
    assert_string_equal(x, y);
    free(x);
    free(y);
    assert_int_equal(a->msg_seq, b->msg_seq);
    assert_int_equal(a->state, b->state);
}

static void test_history_as_rows_reads_back_the_same(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    ag_desk_t *d = &w.d;
    ag_entry_t *e = enter(d, "0123456789abcdef0123456789abcdef", "conv-1");
    ag__changed(d, e, "queued");
    talk(d, e, 0, 20, 1);
    ag__set_state(d, e, AG_CLAIMED);
    e->agent = core_xstrdup("ann");
    e->claimed_us = core_wall_us();
    ag__changed(d, e, "claimed");
    talk(d, e, 20, 240, 1);
    assert_int_equal(e->msg_seq, 260);
    assert_int_equal(json_array_size(e->messages), AG_MAX_MESSAGES);
    reopen(&w);
    /* the window, no more: each message took one row and let one go */
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoff_messages"),
                     AG_MAX_MESSAGES);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT min(seq) FROM handoff_messages"), 61);
    /* the row holds the state, not the history */
    assert_int_equal(fx_scalar(w.fx.path, "SELECT json_type(detail, '$.messages') IS NULL FROM"
                                          " handoffs"),
                     1);
    size_t n_open;
    ag_entry_t *back = read_back(w.fx.path, &n_open);
    assert_int_equal(n_open, 1);
    assert_non_null(back);
    assert_same(e, back);
    ag__entry_free(back);

    /* released, then handed off again: the new handoff replaces the row,
     * and its first message takes the earlier one's rows away */
    ag__set_state(d, e, AG_RELEASED);
    e->done_us = core_wall_us();
    ag__changed(d, e, "released");
    ag_entry_t *again = enter(d, "fedcba9876543210fedcba9876543210", "conv-1");
    ag__changed(d, again, "queued");
    talk(d, again, 0, 3, 1);
    reopen(&w);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoff_messages"), 3);
    back = read_back(w.fx.path, &n_open);
    assert_int_equal(n_open, 1);
    assert_non_null(back);
    assert_same(again, back);
    ag__entry_free(back);
    world_close(&w);
}

/* A handoff released and the conversation handed off again: a late write
 * of the first (its webhook answered or given up after the second came, an
 * SMS that completed late) updates its own row in handoffs_past and leaves
 * the second where it is, messages included, so a restart still brings the
 * second back whole. It used to replace the second's row and push it into
 * handoffs_past, and the customer came back from a restart to a handoff no
 * agent could see; and the first one's late first message deleted the
 * second's messages. */
static void test_late_write_of_a_superseded_handoff(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    ag_desk_t *d = &w.d;
    ag_entry_t *first = enter(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "conv-1");
    ag__changed(d, first, "queued");
    ag__set_state(d, first, AG_RELEASED);
    first->done_us = core_wall_us();
    ag__changed(d, first, "released");
    ag_entry_t *again = enter(d, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "conv-1");
    ag__changed(d, again, "queued");
    talk(d, again, 0, 2, 0);
    first->hook = AG_HOOK_DELIVERED; /* the first one's webhook, answered only now */
    ag__changed(d, first, "webhook_delivered");
    /* and its first message (an SMS that completed late), which clears what
     * other handoffs of the conversation left, but not the current one's */
    talk(d, first, 0, 1, 0);
    reopen(&w);
    assert_int_equal(fx_scalar(w.fx.path,
                               "SELECT count(*) FROM handoffs WHERE"
                               " json_extract(detail, '$.id') = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'"
                               " AND state = 'waiting'"),
                     1);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoffs_past"), 1);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT json_extract(detail, '$.webhook_delivered')"
                                          " FROM handoffs_past WHERE json_extract(detail, '$.id')"
                                          " = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"),
                     1);
    size_t n_open;
    ag_entry_t *back = read_back(w.fx.path, &n_open);
    assert_int_equal(n_open, 1);
    assert_non_null(back);
    assert_same(again, back);
    ag__entry_free(back);
    world_close(&w);
}

/* The database as a chorus before migration 7 left it: handoffs rows with
 * their history in the detail, no handoff_messages table, version 6. */
static void downgrade(const char *path, const ag_entry_t *open, const ag_entry_t *closed)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE handoff_messages;"
                                  "DELETE FROM schema_migrations WHERE version = 7;"
                                  "PRAGMA user_version = 6;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    const ag_entry_t *rows[] = {open, closed};
    for (int i = 0; i < 2; i++) {
        const ag_entry_t *e = rows[i];
        char *detail = json_of(e); /* what persist() wrote: the whole entry with its messages */
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO handoffs (conversation_id, key, queue,"
                                            " channel, reason, state, agent, entered_us,"
                                            " claimed_us, detail, updated_us)"
                                            " VALUES (?,?,?,'chat',?,?,?,?,?,?,?)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, e->conv_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, e->queue, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, e->reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, ag__state_name(e->state), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->agent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, e->entered_us);
        sqlite3_bind_int64(st, 8, e->claimed_us);
        sqlite3_bind_text(st, 9, detail, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, core_wall_us());
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        free(detail);
    }
    sqlite3_close(db);
}

static void test_history_written_before_migration_7(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    /* the entries as the old desk held them (no store under them here) */
    w.store = NULL;
    ag_desk_t *d = &w.d;
    ag_entry_t *e = enter(d, "00000000000000000000000000000aaa", "conv-old");
    talk(d, e, 0, 230, 0);
    ag__set_state(d, e, AG_CLAIMED);
    e->agent = core_xstrdup("ann");
    e->claimed_us = core_wall_us();
    ag_entry_t *done = enter(d, "00000000000000000000000000000bbb", "conv-done");
    talk(d, done, 0, 5, 0);
    ag__set_state(d, done, AG_CLOSED);
    done->agent = core_xstrdup("bob");
    store_close(w.fx.store);
    uv_run(&w.fx.loop, UV_RUN_DEFAULT);
    w.fx.store = NULL;
    downgrade(w.fx.path, e, done);

    /* the upgrade moves the history to rows and out of the details */
    reopen(&w);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT max(version) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoff_messages"),
                     AG_MAX_MESSAGES + 5);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoffs WHERE"
                                          " json_type(detail, '$.messages') IS NOT NULL"),
                     0);
    size_t n_open;
    ag_entry_t *back = read_back(w.fx.path, &n_open);
    assert_int_equal(n_open, 1); /* the closed one stays closed */
    assert_non_null(back);
    /* the same handoff; its messages numbered 1-200 as they were kept */
    e->msg_seq = AG_MAX_MESSAGES;
    assert_same(e, back);

    /* and on from there: the next message is 201, and the oldest goes */
    w.store = w.fx.store;
    talk(d, back, 230, 1, 0);
    reopen(&w);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT max(seq) FROM handoff_messages WHERE"
                                          " conversation_id = 'conv-old'"),
                     201);
    assert_int_equal(fx_scalar(w.fx.path, "SELECT count(*) FROM handoff_messages WHERE"
                                          " conversation_id = 'conv-old'"),
                     AG_MAX_MESSAGES);
    ag_entry_t *again = read_back(w.fx.path, &n_open);
    assert_non_null(again);
    assert_int_equal(json_array_size(again->messages), AG_MAX_MESSAGES);
    assert_true(json_equal(again->messages, back->messages));
    assert_int_equal(again->msg_seq, 201);
    ag__entry_free(again);
    ag__entry_free(back);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_as_rows_reads_back_the_same),
        cmocka_unit_test(test_history_written_before_migration_7),
        cmocka_unit_test(test_late_write_of_a_superseded_handoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
