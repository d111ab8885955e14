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

/* A new waiting entry of conversation conv under runtime key key at the
 * head of the desk, as enter() makes one. */
static ag_entry_t *enter_as(ag_desk_t *d, const char *id, const char *conv, const char *key)
{
    ag_entry_t *e = core_xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->conv_id = core_xstrdup(conv);
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

/* The same, its key "chat:" + conv. */
static ag_entry_t *enter(ag_desk_t *d, const char *id, const char *conv)
{
    char key[80];
    snprintf(key, sizeof(key), "chat:%s", conv);
    return enter_as(d, id, conv, key);
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
/* The open handoffs as a restart reads them from the database at path. */
static void read_saved(const char *path, ag_saved_list_t *saved)
{
    core_err_t err = {0};
    store_db_t *db = store_db_open(path, &err);
    assert_non_null(db);
    assert_int_equal(ag__saved_read(db, saved, &err), 0);
    store_db_close(db);
}

static ag_entry_t *read_back(const char *path, size_t *n_open)
{
    ag_saved_list_t saved;
    read_saved(path, &saved);
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

/* The saved handoffs' ids, comma-separated, in the order they are read. */
static char *saved_ids(const char *path)
{
    ag_saved_list_t saved;
    read_saved(path, &saved);
    core_buf_t b;
    core_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < saved.n; i++)
        core_buf_printf(&b, "%s%s", i ? "," : "",
                        json_string_value(json_object_get(saved.v[i].handoff, "id")));
    ag__saved_dispose(&saved);
    char *s = core_buf_steal(&b, NULL);
    return s ? s : core_xstrdup("");
}

/* The runtime's saved state of key as a turn writes it: active or not, of
 * the key's conversation number gen (key, key#1, ...). */
static void save_state(const char *path, const char *key, unsigned gen, int active)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT OR IGNORE INTO conversations (id, channel, flow, started_us)"
             " VALUES ('%s', 'chat', 'welcome', 1);"
             "INSERT OR REPLACE INTO conversation_state (conversation_id, state, active,"
             " updated_us) VALUES ('%s', '{\"v\":1,\"seq\":4,\"gen\":%u,\"brain\":{}}', %d, 1);",
             key, key, gen, active);
    assert_int_equal(fx_exec(path, sql), SQLITE_OK);
}

/* e claimed by ann, then released to the bot at done_us. */
static void release(ag_desk_t *d, ag_entry_t *e, int64_t done_us)
{
    ag__set_state(d, e, AG_CLAIMED);
    e->agent = core_xstrdup("ann");
    e->claimed_us = done_us - 1000;
    ag__changed(d, e, "claimed");
    ag__set_state(d, e, AG_RELEASED);
    e->done_us = done_us;
    ag__changed(d, e, "released");
}

/* A handoff released to the bot is open until its outcome is known, and a
 * restart brings it back while its conversation goes on (the key's saved
 * state active and of that conversation), so that the bot finishing it
 * afterwards still makes it bot_finished: the same JSON, released, found
 * by its key. Not one whose outcome is known, whose conversation ended, or
 * whose key went on to a later conversation; and of many, the most
 * recently released that the desk keeps as many of as it keeps handoffs
 * that are over. It used to come back only waiting or claimed, and the
 * report undercounted what the bot contained after a release. */
static void test_released_handoffs_while_their_conversation_goes_on(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    ag_desk_t *d = &w.d;
    int64_t t0 = core_wall_us() - 3600 * 1000000LL;
    ag_entry_t *open = enter_as(d, "a0000000000000000000000000000000", "chat:a", "chat:a");
    ag__changed(d, open, "queued");
    talk(d, open, 0, 5, 0);
    release(d, open, t0 + 10);
    ag_entry_t *later = enter_as(d, "c0000000000000000000000000000000", "chat:c#2", "chat:c");
    ag__changed(d, later, "queued");
    release(d, later, t0 + 11);
    ag_entry_t *waits = enter_as(d, "e0000000000000000000000000000000", "chat:e", "chat:e");
    ag__changed(d, waits, "queued");
    ag_entry_t *done = enter_as(d, "b0000000000000000000000000000000", "chat:b", "chat:b");
    ag__changed(d, done, "queued");
    release(d, done, t0 + 12);
    ag__set_outcome(d, done, "bot_finished");
    ag__changed(d, done, "release_outcome");
    const char *gone[] = {"chat:d", "chat:f", "chat:g", "chat:h"};
    for (int i = 0; i < 4; i++) {
        char id[33];
        snprintf(id, sizeof(id), "%c0000000000000000000000000000000", '1' + i);
        ag_entry_t *e = enter_as(d, id, gone[i], gone[i]);
        ag__changed(d, e, "queued");
        release(d, e, t0 + 13 + i);
    }
    reopen(&w);
    save_state(w.fx.path, "chat:a", 0, 1); /* goes on */
    save_state(w.fx.path, "chat:c", 2, 1); /* goes on, the key's third conversation */
    save_state(w.fx.path, "chat:b", 0, 1); /* its outcome alone says it is over */
    save_state(w.fx.path, "chat:d", 0, 0); /* ended, the desk never heard */
    save_state(w.fx.path, "chat:f", 1, 1); /* the key went on to its next conversation */
    /* chat:g: a state that is not JSON; chat:h: no state at all */
    assert_int_equal(fx_exec(w.fx.path, "INSERT INTO conversations (id, channel, flow, started_us)"
                                        " VALUES ('chat:g', 'chat', 'welcome', 1);"
                                        "INSERT INTO conversation_state VALUES ('chat:g',"
                                        " 'not json', 1, 1);"),
                     SQLITE_OK);

    /* the open ones, oldest entered first */
    char *ids = saved_ids(w.fx.path);
    assert_string_equal(ids, "a0000000000000000000000000000000,c0000000000000000000000000000000,"
                             "e0000000000000000000000000000000");
    free(ids);
    size_t n_open;
    ag_entry_t *back = read_back(w.fx.path, &n_open); /* the last: waiting */
    assert_int_equal(n_open, 3);
    assert_same(waits, back);
    ag__entry_free(back);

    /* released as it was, and open on the desk it joins: on_turn finds it
     * by its key when the bot ends the conversation */
    ag_saved_list_t saved;
    read_saved(w.fx.path, &saved);
    ag_entry_t *a = ag__entry_from_saved(&saved.v[0]);
    ag__saved_dispose(&saved);
    assert_non_null(a);
    assert_int_equal(a->state, AG_RELEASED);
    assert_null(a->release_outcome);
    assert_int_equal(a->done_us, t0 + 10);
    assert_int_equal(json_array_size(a->messages), 5);
    assert_same(open, a);
    ag_desk_t fresh = {.admin = &w.admin};
    a->next = NULL;
    fresh.entries = a;
    fresh.n_entries = 1;
    ag__index_add(&fresh, a);
    assert_ptr_equal(ag__index_open(&fresh, "chat:a"), a);
    assert_false(ag__finished(a));
    assert_int_equal(fresh.n_done, 0);
    ag__index_remove(&fresh, a);
    ag__entry_free(a);
    for (int by = 0; by < AG_BY_COUNT; by++)
        free(fresh.by[by]);
    for (size_t i = 0; i < fresh.n_tally; i++)
        free(fresh.tally[i].queue);
    free(fresh.tally);
    world_close(&w);
}

/* Of more released handoffs still open than the desk keeps that are over
 * (AG_MAX_DONE), a restart brings back the most recently released, and
 * every waiting one whatever their number. */
static void test_released_handoffs_restored_are_bounded(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    ag_desk_t *d = &w.d;
    int64_t t0 = core_wall_us() - 3600 * 1000000LL;
    enum { N = AG_MAX_DONE + 3 };
    static char keys[N][16];
    for (int i = 0; i < N; i++) {
        char id[33];
        snprintf(id, sizeof(id), "%032x", i + 1);
        snprintf(keys[i], sizeof(keys[i]), "chat:%d", i);
        ag_entry_t *e = enter_as(d, id, keys[i], keys[i]);
        ag__changed(d, e, "queued");
        /* released in the reverse order of their entry: the first entered
         * is the last released, and stays */
        release(d, e, t0 + N - i);
    }
    ag_entry_t *waits = enter_as(d, "ffffffffffffffffffffffffffffffff", "chat:w", "chat:w");
    ag__changed(d, waits, "queued");
    reopen(&w);
    assert_int_equal(fx_exec(w.fx.path, "INSERT INTO conversations (id, channel, flow, started_us)"
                                        " SELECT conversation_id, 'chat', 'welcome', 1 FROM"
                                        " handoffs;"
                                        "INSERT INTO conversation_state SELECT conversation_id,"
                                        " '{\"gen\":0}', 1, 1 FROM handoffs;"),
                     SQLITE_OK);
    ag_saved_list_t saved;
    read_saved(w.fx.path, &saved);
    assert_int_equal(saved.n, AG_MAX_DONE + 1);
    /* oldest entered first: the three entered last (released first) left out */
    for (size_t i = 0; i < AG_MAX_DONE; i++) {
        char id[33];
        snprintf(id, sizeof(id), "%032zx", i + 1);
        assert_string_equal(json_string_value(json_object_get(saved.v[i].handoff, "id")), id);
    }
    assert_string_equal(json_string_value(json_object_get(saved.v[AG_MAX_DONE].handoff, "id")),
                        "ffffffffffffffffffffffffffffffff");
    ag__saved_dispose(&saved);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_as_rows_reads_back_the_same),
        cmocka_unit_test(test_history_written_before_migration_7),
        cmocka_unit_test(test_late_write_of_a_superseded_handoff),
        cmocka_unit_test(test_released_handoffs_while_their_conversation_goes_on),
        cmocka_unit_test(test_released_handoffs_restored_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
