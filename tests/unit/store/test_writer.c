/* The writer thread: group commit (everything queued while the writer was
 * busy commits in one transaction), the bounded queue answering BUSY, a bad
 * batch rejected alone, state loads on the thread pool, restore of active
 * conversations, pruning, close committing what was queued, a group larger
 * than the WAL write buffer read back while the store is open, and the
 * writer thread's lowered priority. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "store/store_int.h"
#include "unit/store/store_fixture.h"

static store_batch_t *turn_batch(const char *conv, int seq, int start)
{
    store_batch_t *b = store_batch_new();
    if (start) {
        store_conv_start_t st = {conv, "web", "f", "v1", "", NULL, FX_T0};
        store_batch_conv_start(b, &st);
    }
    store_turn_t t = {.conversation_id = conv,
                      .seq = seq,
                      .direction = 'i',
                      .ts_us = FX_T0,
                      .text = "hi",
                      .confidence = -1,
                      .latency_us = -1,
                      .channel = "web"};
    store_batch_turn(b, &t);
    store_batch_state(b, conv, "{\"step\":1}", 1, FX_T0);
    return b;
}

static void test_group_commit(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 1000, 64, &err), 0);
    store__pause(fx.store, 1);
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(store_enqueue(fx.store, turn_batch(id, 1, 1), fx_done, &fx), 0);
    }
    store__pause(fx.store, 0);
    fx_wait(&fx, 200);
    assert_int_equal(fx.failed, 0);
    store_stats_t st;
    store_get_stats(fx.store, &st);
    assert_int_equal(st.batches, 200);
    assert_int_equal(st.turns, 200);
    /* 200 queued batches, at most 64 per transaction: exactly 4 commits */
    assert_int_equal(st.commits, 4);
    assert_int_equal(st.max_group, 64);
    assert_int_equal(st.group_hist[6], 3); /* 64-127 */
    assert_int_equal(st.group_hist[3], 1); /* 8-15: the last 8 */
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 200);
    fx_close(&fx);
}

static void test_queue_full_is_busy(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 4, 64, &err), 0);
    store__pause(fx.store, 1);
    char id[32];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        assert_int_equal(store_enqueue(fx.store, turn_batch(id, 1, 1), fx_done, &fx), 0);
    }
    store_batch_t *b = turn_batch("q4", 1, 1);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), CORE_ERR_BUSY);
    store_batch_free(b); /* refused: still ours */
    store_stats_t st;
    store_get_stats(fx.store, &st);
    assert_int_equal(st.busy, 1);
    assert_int_equal(st.queued, 4);
    store__pause(fx.store, 0);
    fx_wait(&fx, 4);
    /* recovers by itself once the queue drains */
    assert_int_equal(store_enqueue(fx.store, turn_batch("q5", 1, 1), fx_done, &fx), 0);
    fx_wait(&fx, 5);
    assert_int_equal(fx.failed, 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations"), 5);
    fx_close(&fx);
}

typedef struct {
    int status[3];
    int n;
} three_t;

static void on_three(int status, void *data)
{
    three_t *t = data;
    t->status[t->n++] = status;
}

static void test_bad_batch_rejected_alone(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    three_t t = {{0}, 0};
    store__pause(fx.store, 1);
    assert_int_equal(store_enqueue(fx.store, turn_batch("ok1", 1, 1), on_three, &t), 0);
    /* a turn for a conversation that was never started: foreign key */
    assert_int_equal(store_enqueue(fx.store, turn_batch("ghost", 1, 0), on_three, &t), 0);
    assert_int_equal(store_enqueue(fx.store, turn_batch("ok2", 1, 1), on_three, &t), 0);
    store__pause(fx.store, 0);
    while (t.n < 3)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(t.status[0], 0);
    assert_int_equal(t.status[1], CORE_ERR_INVALID);
    assert_int_equal(t.status[2], 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 2);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversation_state"), 2);
    /* a duplicate turn (same conversation and seq) is rejected too */
    assert_int_equal(store_enqueue(fx.store, turn_batch("ok1", 1, 0), on_three, &t), 0);
    t.n = 0;
    while (t.n < 1)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(t.status[0], CORE_ERR_INVALID);
    /* ending an unknown conversation is an error, not a silent no-op */
    store_batch_t *b = store_batch_new();
    store_batch_conv_end(b, "nobody", "contained", NULL, FX_T0);
    assert_int_equal(store_enqueue(fx.store, b, on_three, &t), 0);
    t.n = 0;
    while (t.n < 1)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(t.status[0], CORE_ERR_INVALID);
    fx_close(&fx);
}

typedef struct {
    int status, active, done;
    char *state;
} load_t;

static void on_load(int status, char *state_json, int active, void *data)
{
    load_t *l = data;
    l->status = status;
    l->state = state_json;
    l->active = active;
    l->done = 1;
}

static void collect(const char *id, const char *state_json, void *arg)
{
    char *out = arg;
    strncat(out, id, 63 - strlen(out));
    strncat(out, ";", 63 - strlen(out));
    (void)state_json;
}

static void test_state_load_and_restore(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    assert_int_equal(store_enqueue(fx.store, turn_batch("s1", 1, 1), fx_done, &fx), 0);
    assert_int_equal(store_enqueue(fx.store, turn_batch("s2", 1, 1), fx_done, &fx), 0);
    store_batch_t *b = store_batch_new();
    store_batch_conv_end(b, "s2", "contained", NULL, FX_T0 + FX_S);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 3);
    assert_int_equal(fx.failed, 0);

    load_t l = {0};
    assert_int_equal(store_state_load_async(fx.store, "s1", on_load, &l), 0);
    while (!l.done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(l.status, 0);
    assert_string_equal(l.state, "{\"step\":1}");
    assert_int_equal(l.active, 1);
    free(l.state);
    memset(&l, 0, sizeof(l));
    assert_int_equal(store_state_load_async(fx.store, "missing", on_load, &l), 0);
    while (!l.done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(l.status, CORE_ERR_NOT_FOUND);
    assert_null(l.state);

    /* restore: only s1 is still active (s2 ended) */
    store_db_t *db = store_db_open(fx.path, &err);
    assert_non_null(db);
    char ids[64] = "";
    assert_int_equal(store_db_active_states(db, collect, ids, &err), 0);
    assert_string_equal(ids, "s1;");
    store_db_close(db);
    fx_close(&fx);
}

static void test_close_commits_queued(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 8, &err), 0);
    char id[32];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "z%d", i);
        assert_int_equal(store_enqueue(fx.store, turn_batch(id, 1, 1), fx_done, &fx), 0);
    }
    store_close(fx.store); /* runs every callback before returning */
    assert_int_equal(fx.done, 30);
    assert_int_equal(fx.failed, 0);
    fx.store = NULL;
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 30);
    fx_close(&fx);
}

static void test_prune(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    int n = fx_load_kpi(&fx);
    /* c2's handoff is closed; c1's, for the test, still waits for a person */
    const char *states[] = {"waiting", "closed"}, *convs[] = {"c1", "c2"};
    for (int i = 0; i < 2; i++) {
        store_batch_t *b = store_batch_new();
        store_handoff_t h = {.conversation_id = convs[i],
                             .key = convs[i],
                             .queue = "support",
                             .channel = "web",
                             .reason = "user_request",
                             .state = states[i],
                             .entered_us = FX_T0,
                             .detail = "{\"summary\":{\"last_user\":\"my card 4111\"}}",
                             .updated_us = FX_T0};
        store_batch_handoff(b, &h);
        for (int seq = 1; seq <= 3; seq++) {
            store_handoff_message_t m = {.conversation_id = convs[i],
                                         .handoff_id = "h",
                                         .seq = seq,
                                         .from = "customer",
                                         .text = "my address is 1 Main St",
                                         .text_len = 23,
                                         .ts_us = FX_T0,
                                         .keep = 200};
            store_batch_handoff_message(b, &m);
        }
        assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
        n++;
    }
    fx_wait(&fx, n);
    assert_int_equal(fx.failed, 0);
    /* transcripts of conversations ended before c3 ended lose their text,
     * and a closed handoff what was said in it and its summary */
    assert_int_equal(store_prune_async(fx.store, FX_T0 + 23 * FX_H, 0, fx_done, &fx), 0);
    fx_wait(&fx, n + 1);
    assert_int_equal(fx.last_status, 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns WHERE text IS NULL"), 6);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 12);
    /* the ended keys' states keep their numbering and lose their brain */
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversation_state"), 5);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversation_state"
                                        " WHERE json_extract(state, '$.brain') = '{}'"),
                     2);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoff_messages WHERE"
                                        " conversation_id = 'c2'"),
                     0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoffs WHERE conversation_id = 'c2'"
                                        " AND detail = '{}'"),
                     1);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoff_messages WHERE"
                                        " conversation_id = 'c1'"),
                     3);
    /* whole rows of conversations ended before c5 ended go, closed
     * handoffs with them; c1, whose handoff still waits, stays whole */
    int64_t c1_turns =
        fx_scalar(fx.path, "SELECT count(*) FROM turns WHERE conversation_id = 'c1'");
    assert_true(c1_turns > 0);
    assert_int_equal(store_prune_async(fx.store, 0, FX_T0 + 25 * FX_H, fx_done, &fx), 0);
    fx_wait(&fx, n + 2);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations"), 3);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE id = 'c1'"), 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 4 + c1_turns);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM labels"), 2); /* c1's two */
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoffs"), 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoff_messages"), 3);
    fx_close(&fx);
}

/* One conversation of key at t (its first is key itself, the later ones
 * key#N), ended at end (0: still active). */
static store_batch_t *key_conv(const char *id, int64_t t, int64_t end)
{
    store_batch_t *b = turn_batch(id, 1, 1);
    if (end > 0)
        store_batch_conv_end(b, id, "contained", NULL, end);
    (void)t;
    return b;
}

/* A key that comes back (an SMS pair): its state, under the key, counts its
 * conversations; retention must leave that count, and the key's first row,
 * while any of its conversations is newer than the cutoff. */
static void test_prune_keeps_a_returning_key(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    const char *st = "{\"v\":1,\"seq\":1,\"gen\":2,\"brain\":{\"slots\":{\"name\":\"Ada\"}}}";
    store_batch_t *b[] = {key_conv("k", FX_T0, FX_T0 + FX_H), key_conv("k#1", FX_T0, FX_T0 + FX_H),
                          key_conv("k#2", FX_T0, 0)};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(store_enqueue(fx.store, b[i], fx_done, &fx), 0);
    store_batch_t *s = store_batch_new();
    store_batch_state(s, "k", st, 1, FX_T0); /* k#2 is under way */
    assert_int_equal(store_enqueue(fx.store, s, fx_done, &fx), 0);
    fx_wait(&fx, 4);
    assert_int_equal(fx.failed, 0);
    const char *gen = "SELECT json_extract(state, '$.gen') FROM conversation_state"
                      " WHERE conversation_id = 'k'";
    const char *slots = "SELECT count(*) FROM conversation_state WHERE conversation_id = 'k'"
                        " AND json_extract(state, '$.brain.slots.name') = 'Ada'";
    /* text retention past k and k#1: k#2 is active, its state untouched */
    assert_int_equal(store_prune_async(fx.store, FX_T0 + 10 * FX_H, 0, fx_done, &fx), 0);
    fx_wait(&fx, 5);
    assert_int_equal(fx.last_status, 0);
    assert_int_equal(fx_scalar(fx.path, gen), 2);
    assert_int_equal(fx_scalar(fx.path, slots), 1);
    /* row retention: k#1 goes, k stays (k#2 is newer), and so does the state */
    assert_int_equal(store_prune_async(fx.store, 0, FX_T0 + 10 * FX_H, fx_done, &fx), 0);
    fx_wait(&fx, 6);
    assert_int_equal(fx.last_status, 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE id = 'k#1'"), 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE id = 'k'"), 1);
    assert_int_equal(fx_scalar(fx.path, gen), 2);
    /* k#2 ends; once it is past the cutoff too, the slots go and gen stays */
    s = store_batch_new();
    store_batch_conv_end(s, "k#2", "contained", NULL, FX_T0 + 2 * FX_H);
    store_batch_state(s, "k", st, 0, FX_T0 + 2 * FX_H);
    assert_int_equal(store_enqueue(fx.store, s, fx_done, &fx), 0);
    fx_wait(&fx, 7);
    assert_int_equal(store_prune_async(fx.store, FX_T0 + 10 * FX_H, 0, fx_done, &fx), 0);
    fx_wait(&fx, 8);
    assert_int_equal(fx_scalar(fx.path, gen), 2);
    assert_int_equal(fx_scalar(fx.path, slots), 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT json_extract(state, '$.seq') FROM"
                                        " conversation_state WHERE conversation_id = 'k'"),
                     1);
    /* and the rows go all together, the state with its key */
    assert_int_equal(store_prune_async(fx.store, 0, FX_T0 + 10 * FX_H, fx_done, &fx), 0);
    fx_wait(&fx, 9);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations"), 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversation_state"), 0);
    (void)state;
    fx_close(&fx);
}

/* A conversation whose handoff is still open keeps its rows: the person
 * reading it, and the bot it may be released to, need them. */
static void test_prune_keeps_an_open_handoff(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    store_batch_t *b = key_conv("h", FX_T0, FX_T0 + FX_H);
    store_handoff_t h = {.conversation_id = "h",
                         .key = "h",
                         .queue = "support",
                         .channel = "web",
                         .reason = "user_request",
                         .state = "waiting",
                         .entered_us = FX_T0,
                         .detail = "{}",
                         .updated_us = FX_T0};
    store_batch_handoff(b, &h);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, 1);
    assert_int_equal(fx.failed, 0);
    assert_int_equal(store_prune_async(fx.store, 0, FX_T0 + 10 * FX_H, fx_done, &fx), 0);
    fx_wait(&fx, 2);
    assert_int_equal(fx.last_status, 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE id = 'h'"), 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns WHERE conversation_id = 'h'"),
                     1);
    (void)state;
    fx_close(&fx);
}

/* One write of a handoff of conversation "h" that entered at entered_us. */
static void handoff_write(fx_t *fx, int64_t entered_us, const char *state, int superseded)
{
    store_handoff_t h = {.conversation_id = "h",
                         .key = "chat:h",
                         .queue = "support",
                         .channel = "chat",
                         .reason = "user_request",
                         .state = state,
                         .entered_us = entered_us,
                         .detail = "{}",
                         .updated_us = entered_us,
                         .superseded = superseded};
    store_batch_t *b = store_batch_new();
    store_batch_handoff(b, &h);
    assert_int_equal(store_enqueue(fx->store, b, fx_done, fx), 0);
}

/* handoffs holds a conversation's current handoff: the next one moves it to
 * handoffs_past, and a write of the earlier one after that (superseded)
 * updates it there and leaves the current one alone. */
static void test_superseded_handoff_updates_its_past_row(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    handoff_write(&fx, FX_T0, "released", 0);
    handoff_write(&fx, FX_T0 + FX_H, "waiting", 0);    /* handed off again */
    handoff_write(&fx, FX_T0, "abandoned", 1);         /* the first one, late */
    handoff_write(&fx, FX_T0 + 2 * FX_H, "closed", 1); /* none such in the past: nothing */
    fx_wait(&fx, 4);
    assert_int_equal(fx.failed, 0);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoffs"), 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT entered_us FROM handoffs WHERE state = 'waiting'"),
                     FX_T0 + FX_H);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM handoffs_past"), 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT entered_us FROM handoffs_past"
                                        " WHERE state = 'abandoned'"),
                     FX_T0);
    (void)state;
    fx_close(&fx);
}

static void test_prune_in_chunks(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 10000, 256, &err), 0);
    char id[32];
    for (int i = 0; i < 5001; i++) {
        snprintf(id, sizeof(id), "p%d", i);
        store_batch_t *b = turn_batch(id, 1, 1);
        store_batch_conv_end(b, id, "contained", NULL, FX_T0 + FX_S);
        assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    }
    fx_wait(&fx, 5001);
    assert_int_equal(fx.failed, 0);
    /* 5001 conversations: a chunk of 5000, re-queued, then one more; the
     * callback runs once, after the last chunk */
    assert_int_equal(store_prune_async(fx.store, FX_T0 + FX_H, 0, fx_done, &fx), 0);
    fx_wait(&fx, 5002);
    assert_int_equal(fx.last_status, 0);
    store_stats_t st;
    store_get_stats(fx.store, &st);
    assert_int_equal(st.prunes, 2);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE pruned = 1"),
                     5001);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns WHERE text IS NOT NULL"), 0);
    fx_close(&fx);
}

/* With SQLite's checkpoint-in-commit replaced by the checkpointer thread,
 * the WAL still reaches the main file while the store is open. */
static void test_wal_checkpointed_while_open(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 10000, 64, &err), 0);
    char id[32], *text = core_xmalloc(4001);
    memset(text, 'w', 4000);
    text[4000] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        store_batch_t *b = store_batch_new();
        store_conv_start_t st = {id, "web", "f", "v1", "", NULL, FX_T0};
        store_batch_conv_start(b, &st);
        store_turn_t t = {.conversation_id = id,
                          .seq = 1,
                          .direction = 'i',
                          .ts_us = FX_T0,
                          .text = text,
                          .confidence = -1,
                          .latency_us = -1,
                          .channel = "web"};
        store_batch_turn(b, &t);
        assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    }
    fx_wait(&fx, 2000);
    free(text);
    assert_int_equal(fx.failed, 0);
    /* 2000 turns of 4 KB: about 8 MB went through the WAL; with the store
     * still open, most of it must have reached the main file */
    struct stat sb = {0};
    for (int i = 0; i < 3000 && sb.st_size < 4 * 1024 * 1024; i++) {
        assert_int_equal(stat(fx.path, &sb), 0);
        usleep(10000); /* the checkpointer may still be copying */
    }
    assert_true(sb.st_size >= 4 * 1024 * 1024);
    fx_close(&fx);
}

/* One group far larger than the writer's WAL buffer (the frames leave in
 * several writes, the last inside the commit frame's): with the store still
 * open, a reader sees every row of it whole, and the file is sound. */
static void test_large_group_read_while_open(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 200, 200, &err), 0);
    char id[32], *text = core_xmalloc(6001);
    memset(text, 'g', 6000);
    text[6000] = '\0';
    store__pause(fx.store, 1);
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        store_batch_t *b = store_batch_new();
        store_conv_start_t st = {id, "web", "f", "v1", "", NULL, FX_T0};
        store_batch_conv_start(b, &st);
        store_turn_t t = {.conversation_id = id,
                          .seq = 1,
                          .direction = 'i',
                          .ts_us = FX_T0,
                          .text = text,
                          .confidence = -1,
                          .latency_us = -1,
                          .channel = "web"};
        store_batch_turn(b, &t);
        assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    }
    store__pause(fx.store, 0);
    fx_wait(&fx, 60);
    free(text);
    assert_int_equal(fx.failed, 0);
    store_stats_t stats;
    store_get_stats(fx.store, &stats);
    assert_int_equal(stats.max_group, 60);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns"), 60);
    assert_int_equal(
        fx_scalar(fx.path, "SELECT sum(length(text)) FROM turns WHERE text GLOB 'g*g'"), 60 * 6000);
    assert_int_equal(
        fx_scalar(fx.path,
                  "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"),
        1);
    fx_close(&fx);
}

static void test_retention_timer(void **state)
{
    fx_t fx;
    core_err_t err = {0};
    assert_int_equal(fx_open(&fx, 100, 64, &err), 0);
    int n = fx_load_kpi(&fx);
    fx_wait(&fx, n);
    /* every fixture conversation ended weeks before now: one day of
     * transcripts keeps none of them, the KPI rows stay */
    store_retention_set(fx.store, 1, 0, 0);
    store_stats_t st = {0};
    while (st.prunes == 0) {
        uv_run(&fx.loop, UV_RUN_NOWAIT);
        store_get_stats(fx.store, &st);
    }
    /* the writer is FIFO: once this batch is durable the prune has run */
    store_batch_t *b = store_batch_new();
    store_batch_audit(b, "test", "noop", NULL, NULL, FX_T0);
    assert_int_equal(store_enqueue(fx.store, b, fx_done, &fx), 0);
    fx_wait(&fx, n + 1);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM turns WHERE text IS NOT NULL"), 2);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations"), 5);
    assert_int_equal(fx_scalar(fx.path, "SELECT count(*) FROM conversations WHERE pruned = 1"), 4);
    fx_close(&fx);
}

static void test_options_from_config(void **state)
{
    core_config_t cfg;
    core_config_defaults(&cfg);
    store_options_t opt;
    char path[256];
    store_options_from_config(&cfg, &opt, path, sizeof(path));
    assert_string_equal(opt.path, "var/chorus.db");
    assert_int_equal(opt.synchronous_full, 0);
    assert_int_equal(opt.queue_max, 4096);
    assert_int_equal(opt.batch_max, 256);
    assert_int_equal(opt.retry_ms, 1000);
    assert_int_equal(opt.writer_nice, 10);
    core_diags_t d;
    core_diags_init(&d);
    assert_int_equal(core_config_set(&cfg, "store.synchronous", "full", "test", &d), 0);
    assert_int_equal(core_config_set(&cfg, "store.message_costs", "sms=0.5", "test", &d), 0);
    assert_int_equal(core_config_set(&cfg, "store.llm_price_in_per_mtok", "0.15", "test", &d), 0);
    assert_int_not_equal(core_config_set(&cfg, "store.message_cost", "free", "test", &d), 0);
    assert_int_not_equal(core_config_set(&cfg, "store.writer_nice", "20", "test", &d), 0);
    assert_int_equal(core_config_set(&cfg, "store.writer_nice", "0", "test", &d), 0);
    core_diags_dispose(&d);
    store_options_from_config(&cfg, &opt, path, sizeof(path));
    assert_int_equal(opt.synchronous_full, 1);
    assert_int_equal(opt.writer_nice, 0);
    store_report_query_t q = {0};
    store_report_costs_from_config(&cfg, &q);
    assert_true(q.price_in_per_mtok == 0.15);
    assert_string_equal(q.message_costs, "sms=0.5");
    core_config_dispose(&cfg);
}

/* The nice value of this process's thread named name, or INT_MIN. */
static int thread_nice(const char *name)
{
    int found = INT_MIN;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && found == INT_MIN) {
        char path[320], comm[64] = "", stat[1024];
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        int ok = fgets(comm, sizeof(comm), f) != NULL;
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (!ok || strcmp(comm, name) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        assert_non_null(f = fopen(path, "r"));
        assert_non_null(fgets(stat, sizeof(stat), f));
        fclose(f);
        /* after "pid (comm) " comes field 3 (the state); nice is field 19 */
        const char *q = strrchr(stat, ')');
        assert_non_null(q);
        q += 2;
        for (int field = 3; field < 19; field++) {
            assert_non_null(q = strchr(q, ' '));
            q++;
        }
        found = atoi(q);
    }
    closedir(d);
    return found;
}

/* The writer runs writer_nice steps below the process (the loop), so that on
 * busy cores the loop goes first; 0 leaves it at the loop's priority. */
static void test_writer_priority(void **state)
{
    int base = getpriority(PRIO_PROCESS, 0);
    int cases[][2] = {{7, base + 7 > 19 ? 19 : base + 7}, {0, base}, {19, 19}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_t fx;
        core_err_t err = {0};
        assert_int_equal(fx_open_nice(&fx, 16, 16, cases[i][0], &err), 0);
        /* a committed batch means the writer thread is past its start */
        assert_int_equal(store_enqueue(fx.store, turn_batch("p1", 1, 1), fx_done, &fx), 0);
        fx_wait(&fx, 1);
        assert_int_equal(thread_nice("chorus-writer"), cases[i][1]);
        assert_int_equal(getpriority(PRIO_PROCESS, 0), base); /* the loop's is unchanged */
        fx_close(&fx);
    }
    (void)state;
}

static void test_memory_store(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    core_err_t err = {0};
    store_options_t opt = {.path = ":memory:"};
    store_t *s = store_open(&loop, &opt, &err);
    assert_non_null(s);
    fx_t fx = {0};
    assert_int_equal(store_enqueue(s, turn_batch("m1", 1, 1), fx_done, &fx), 0);
    while (fx.done < 1)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(fx.failed, 0);
    /* nothing to restore from memory: a load is "not found", not an error */
    load_t l = {0};
    assert_int_equal(store_state_load_async(s, "m1", on_load, &l), 0);
    while (!l.done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(l.status, CORE_ERR_NOT_FOUND);
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_queue_full_is_busy),
        cmocka_unit_test(test_bad_batch_rejected_alone),
        cmocka_unit_test(test_state_load_and_restore),
        cmocka_unit_test(test_close_commits_queued),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_prune_in_chunks),
        cmocka_unit_test(test_wal_checkpointed_while_open),
        cmocka_unit_test(test_large_group_read_while_open),
        cmocka_unit_test(test_retention_timer),
        cmocka_unit_test(test_prune_keeps_a_returning_key),
        cmocka_unit_test(test_prune_keeps_an_open_handoff),
        cmocka_unit_test(test_superseded_handoff_updates_its_past_row),
        cmocka_unit_test(test_options_from_config),
        cmocka_unit_test(test_memory_store),
        cmocka_unit_test(test_writer_priority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
