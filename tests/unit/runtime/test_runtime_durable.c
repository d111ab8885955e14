/* The runtime's persistence paths, made deterministic: the brain is the
 * scripted stand-in (fake_brain.h) and the store's two entry points the
 * runtime waits on, store_enqueue() and store_state_load_async(), are
 * scripted here too, so the test decides when and how the store answers.
 * Covers: the reply waits for durability, the conversation's next turn waits
 * behind it, a refused or failed batch rolls the conversation back and
 * answers CORE_ERR_BUSY, a conversation read from the store resumes, a failed
 * read fails the turns queued on it, and shutdown with a batch in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "chorus/runtime.h"
#include "runtime/runtime_int.h"
#include "stubs/stub_proc.h"
#include "unit/runtime/fake_brain.h"

/* ---- the scripted store ----------------------------------------------------- */

static int refuse_batches; /* store_enqueue answers CORE_ERR_BUSY */
static int batches_taken;

typedef struct pending_s {
    store_done_cb done;
    store_state_cb loaded;
    void *data;
} pending_t;

static pending_t pend[16];
static int n_pend;

int store_enqueue(store_t *s, store_batch_t *b, store_done_cb cb, void *data)
{
    if (refuse_batches)
        return CORE_ERR_BUSY; /* the caller keeps and frees the batch */
    store_batch_free(b);
    batches_taken++;
    pend[n_pend++] = (pending_t){cb, NULL, data};
    return 0;
}

int store_state_load_async(store_t *s, const char *id, store_state_cb cb, void *data)
{
    pend[n_pend++] = (pending_t){NULL, cb, data};
    return 0;
}

/* Answers the oldest request: a batch with status, a load with status and json. */
static void store_answer(int status, const char *json, int active)
{
    assert_true(n_pend > 0);
    pending_t p = pend[0];
    memmove(pend, pend + 1, (size_t)(n_pend - 1) * sizeof(pend[0]));
    n_pend--;
    if (p.done)
        p.done(status, p.data);
    else
        p.loaded(status, json ? strdup(json) : NULL, active, p.data);
}

/* The start-up restore's reads (runtime_restore_active): store_db_* run on
 * the thread pool and list the scripted active states; with hold_restore
 * set the read waits (as a slow disk would) until the test clears it. The
 * record read is scripted too, unused, so that no store object is linked. */
static struct {
    const char *id;
    const char *state;
} active_rows[8];
static int n_active_rows;
static int n_generated_rows; /* more rows "g<i>", after active_rows, with generated_state */
static const char *generated_state;
static atomic_int hold_restore;
static int fake_db_obj;

store_db_t *store_db_open(const char *path, core_err_t *err)
{
    return (store_db_t *)&fake_db_obj;
}

void store_db_close(store_db_t *db)
{
}

int store_db_active_states(store_db_t *db,
                           void (*fn)(const char *id, const char *state_json, void *arg), void *arg,
                           core_err_t *err)
{
    while (atomic_load(&hold_restore))
        usleep(1000);
    for (int i = 0; i < n_active_rows; i++)
        fn(active_rows[i].id, active_rows[i].state, arg);
    for (int i = 0; i < n_generated_rows; i++) {
        char id[16];
        snprintf(id, sizeof(id), "g%d", i);
        fn(id, generated_state, arg);
    }
    return 0;
}

int store_transcript_latest_async(store_t *s, const char *key, store_json_cb cb, void *data)
{
    return CORE_ERR_NOT_FOUND;
}

int store_client_id_recorded_async(store_t *s, const char *key, const char *client_id,
                                   store_found_cb cb, void *data)
{
    return CORE_ERR_NOT_FOUND;
}

/* ---- harness ---------------------------------------------------------------- */

static char tmpdir[64], flows_dir[128];
static int fake_store_obj;

typedef struct rec_s {
    int calls;
    int error;
    char text[256];
} rec_t;

static void on_turn(const runtime_turn_out_t *o)
{
    rec_t *r = o->data;
    r->calls++;
    r->error = o->error;
    if (o->out && o->out->n_messages > 0)
        snprintf(r->text, sizeof(r->text), "%s", o->out->messages[0].text);
}

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *d, void *data)
{
    (*(int *)data)++;
}

typedef struct env_s {
    uv_loop_t loop;
    runtime_t *rt;
} env_t;

static size_t max_conversations; /* for the next env_start, 0 = default */

static void env_start(env_t *e)
{
    uv_loop_init(&e->loop);
    runtime_options_t o = {.flows_dir = flows_dir,
                           .store = (store_t *)&fake_store_obj,
                           .max_conversations = max_conversations};
    assert_int_equal(runtime_new(&e->loop, &o, &e->rt, NULL), 0);
    int loaded = 0;
    assert_int_equal(runtime_load(e->rt, on_loaded, &loaded), 0);
    while (!loaded)
        uv_run(&e->loop, UV_RUN_ONCE);
    refuse_batches = 0;
    n_pend = 0;
}

static void on_closed(void *data)
{
    (*(int *)data)++;
}

static void env_stop(env_t *e)
{
    int closed = 0;
    runtime_close(e->rt, on_closed, &closed);
    while (n_pend > 0) /* the store delivers what it still holds */
        store_answer(0, NULL, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void submit_in(env_t *e, const runtime_turn_in_t *in, rec_t *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(runtime_turn(e->rt, in, on_turn, r, NULL), 0);
}

static void submit(env_t *e, const char *key, brain_event_t ev, const char *text, rec_t *r)
{
    runtime_turn_in_t in = {.key = key, .event = ev, .text = text, .len = strlen(text)};
    submit_in(e, &in, r);
}

/* Runs the loop until the store holds n requests. */
static void until_pending(env_t *e, int n)
{
    while (n_pend < n)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void spin(env_t *e, int times)
{
    for (int i = 0; i < times; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* A new key: answers the store's read with "nothing saved". */
static void first_turn(env_t *e, const char *key, const char *text, rec_t *r)
{
    submit(e, key, BRAIN_EV_MESSAGE, text, r);
    until_pending(e, 1);
    store_answer(CORE_ERR_NOT_FOUND, NULL, 0);
    until_pending(e, 1);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_reply_waits_for_durability_and_serialises(void **state)
{
    env_t e;
    env_start(&e);
    rec_t a, b;
    first_turn(&e, "k", "one", &a);
    submit(&e, "k", BRAIN_EV_MESSAGE, "two", &b);
    spin(&e, 5);
    assert_int_equal(a.calls, 0); /* its batch is not durable yet */
    assert_int_equal(b.calls, 0); /* and the next turn waits behind it */
    assert_int_equal(n_pend, 1);
    store_answer(0, NULL, 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.text, "echo:one #1");
    until_pending(&e, 1);
    assert_int_equal(b.calls, 0);
    store_answer(0, NULL, 0);
    assert_string_equal(b.text, "echo:two #2");
    env_stop(&e);
}

static void test_refused_batch_rolls_back(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k", "one", &r);
    store_answer(0, NULL, 0);
    assert_string_equal(r.text, "echo:one #1");
    refuse_batches = 1;
    submit(&e, "k", BRAIN_EV_MESSAGE, "two", &r);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.error, CORE_ERR_BUSY);
    refuse_batches = 0;
    /* The refused turn left no trace: the retry is turn 2 again. */
    submit(&e, "k", BRAIN_EV_MESSAGE, "two", &r);
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_int_equal(r.error, 0);
    assert_string_equal(r.text, "echo:two #2");
    env_stop(&e);
}

/* The next Idempotency-Key the HTTP stub received (it prints each); fails
 * when none comes within 10 s. sp->out is unbuffered, so poll() sees what
 * fgets() has not read. */
static void next_key(stub_proc_t *sp, char *out, size_t size)
{
    char line[256];
    struct pollfd p = {.fd = fileno(sp->out), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_non_null(fgets(line, sizeof(line), sp->out));
    assert_true(strncmp(line, "IDEMPOTENCY-KEY ", 16) == 0);
    line[strcspn(line, "\n")] = '\0';
    snprintf(out, size, "%s", line + 16);
}

/* A POST may change the backend, and a refused turn is run again by its
 * client: the call carries the same Idempotency-Key then, and on each of
 * its own retries, so the backend can tell it from a new one. */
static void test_a_call_run_again_keeps_its_idempotency_key(void **state)
{
    stub_proc_t http = {0};
    assert_int_equal(stub_proc_start(&http, "http_stub.py", NULL), 0);
    setvbuf(http.out, NULL, _IONBF, 0);
    char echo[128], fail[128], k1[256], k2[256], k3[256], k4[256];
    snprintf(echo, sizeof(echo), "post http://127.0.0.1:%d/echo", http.port);
    snprintf(fail, sizeof(fail), "post http://127.0.0.1:%d/status/500 1 10", http.port);
    env_t e;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k", "one", &r);
    store_answer(0, NULL, 0);
    refuse_batches = 1;
    submit(&e, "k", BRAIN_EV_MESSAGE, echo, &r);
    while (r.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(r.error, CORE_ERR_BUSY); /* the call was made; the turn was not kept */
    next_key(&http, k1, sizeof(k1));
    assert_true(strncmp(k1, "chorus-", 7) == 0 && strlen(k1) == 39);
    refuse_batches = 0;
    submit(&e, "k", BRAIN_EV_MESSAGE, echo, &r); /* the client's retry */
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_int_equal(r.error, 0);
    next_key(&http, k2, sizeof(k2));
    assert_string_equal(k1, k2);
    submit(&e, "k", BRAIN_EV_MESSAGE, echo, &r); /* the same words again: a new call */
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    next_key(&http, k3, sizeof(k3));
    assert_string_not_equal(k2, k3);
    submit(&e, "k", BRAIN_EV_MESSAGE, fail, &r); /* a 500, retried once */
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    next_key(&http, k3, sizeof(k3));
    next_key(&http, k4, sizeof(k4));
    assert_string_equal(k3, k4);
    env_stop(&e);
    stub_proc_stop(&http);
}

static void test_failed_write_rolls_back(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r, q;
    first_turn(&e, "k", "one", &r);
    submit(&e, "k", BRAIN_EV_MESSAGE, "queued", &q);
    store_answer(CORE_ERR_IO, NULL, 0); /* the disk failed under the batch */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, CORE_ERR_BUSY);
    /* The queued turn runs on the state from before the failed one. */
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(q.text, "echo:queued #1");
    env_stop(&e);
}

static void test_restored_conversation_resumes(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r, q;
    submit(&e, "old", BRAIN_EV_MESSAGE, "back again", &r);
    submit(&e, "old", BRAIN_EV_MESSAGE, "and again", &q);
    until_pending(&e, 1);
    spin(&e, 5);
    assert_int_equal(r.calls, 0); /* waits for the read */
    store_answer(0, "{\"v\":1,\"seq\":12,\"brain\":{\"turns\":6}}", 1);
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(r.text, "echo:back again #7");
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(q.text, "echo:and again #8");
    /* An ended conversation starts afresh. */
    submit(&e, "done", BRAIN_EV_MESSAGE, "hello", &r);
    until_pending(&e, 1);
    store_answer(0, "{\"v\":1,\"seq\":4,\"brain\":{\"turns\":2}}", 0);
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(r.text, "echo:hello #1");
    env_stop(&e);
}

static void test_failed_read_fails_queued_turns(void **state)
{
    env_t e;
    env_start(&e);
    rec_t a, b;
    submit(&e, "x", BRAIN_EV_MESSAGE, "one", &a);
    submit(&e, "x", BRAIN_EV_MESSAGE, "two", &b);
    /* While the read is out, the queue is bounded like any other (8). */
    rec_t more[6];
    for (int i = 0; i < 6; i++)
        submit(&e, "x", BRAIN_EV_MESSAGE, "more", &more[i]);
    runtime_turn_in_t in = {.key = "x", .text = "too many", .len = 8};
    assert_int_equal(runtime_turn(e.rt, &in, on_turn, &a, NULL), CORE_ERR_BUSY);
    until_pending(&e, 1);
    store_answer(CORE_ERR_IO, NULL, 0);
    assert_int_equal(a.error, CORE_ERR_BUSY);
    assert_int_equal(b.error, CORE_ERR_BUSY);
    for (int i = 0; i < 6; i++)
        assert_int_equal(more[i].error, CORE_ERR_BUSY);
    assert_int_equal(a.calls, 1);
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 0);
    env_stop(&e);
}

static void test_close_with_batch_in_flight(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k", "one", &r);
    int closed = 0;
    runtime_close(e.rt, on_closed, &closed);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, CORE_ERR_CLOSED);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(closed, 0); /* the store still owes its callback */
    store_answer(0, NULL, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

static void test_full_table_evicts_durable_idle_conversations(void **state)
{
    env_t e;
    max_conversations = 2;
    env_start(&e);
    rec_t a, b, c;
    first_turn(&e, "a", "one", &a);
    store_answer(0, NULL, 0);
    first_turn(&e, "b", "one", &b);
    /* b's batch is still out: b is not idle, a is, and a is durable. */
    submit(&e, "c", BRAIN_EV_MESSAGE, "one", &c);
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.conversations, 2);
    until_pending(&e, 2);
    store_answer(0, NULL, 0);                  /* b's batch */
    store_answer(CORE_ERR_NOT_FOUND, NULL, 0); /* c's read */
    until_pending(&e, 1);
    store_answer(0, NULL, 0); /* c's batch */
    assert_string_equal(c.text, "echo:one #1");
    /* a comes back from the store and goes on where it was. */
    submit(&e, "a", BRAIN_EV_MESSAGE, "two", &a);
    until_pending(&e, 1);
    store_answer(0, "{\"v\":1,\"seq\":2,\"brain\":{\"turns\":1}}", 1);
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(a.text, "echo:two #2");
    max_conversations = 0;
    env_stop(&e);
}

/* Sends text on key's conversation, already in memory, and makes its batch durable. */
static void durable_turn(env_t *e, const char *key, const char *text, rec_t *r)
{
    submit(e, key, BRAIN_EV_MESSAGE, text, r);
    until_pending(e, 1);
    store_answer(0, NULL, 0);
    assert_int_equal(r->error, 0);
}

/* A full table never drops a conversation holding what the store does not
 * have: a sensitive slot's value (never saved) or the escalation policy's
 * counters. It evicts another instead; with none to evict the new key is
 * refused as the table is full. An ended conversation holds nothing. */
static void test_eviction_spares_what_only_memory_holds(void **state)
{
    env_t e;
    max_conversations = 2;
    env_start(&e);
    rec_t a, b, c;
    first_turn(&e, "a", "one", &a);
    store_answer(0, NULL, 0);
    durable_turn(&e, "a", "secret 4111111111111111", &a); /* half-way through a payment */
    first_turn(&e, "b", "one", &b);
    store_answer(0, NULL, 0);
    first_turn(&e, "c", "one", &c); /* room is made: b goes, a stays */
    store_answer(0, NULL, 0);
    assert_string_equal(c.text, "echo:one #1");
    assert_non_null(rt_table_find(&e.rt->table, "a"));
    assert_null(rt_table_find(&e.rt->table, "b"));
    durable_turn(&e, "c", "fail", &c); /* an action failed: counted towards escalation */
    rec_t d;
    runtime_turn_in_t in = {.key = "d", .event = BRAIN_EV_MESSAGE, .text = "one", .len = 3};
    core_err_t err = {0};
    assert_int_equal(runtime_turn(e.rt, &in, on_turn, &d, &err), CORE_ERR_LIMIT);
    runtime_stats_t st;
    runtime_stats(e.rt, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.conversations, 2);
    durable_turn(&e, "a", "end", &a); /* paid and ended: nothing left to lose */
    first_turn(&e, "d", "one", &d);
    store_answer(0, NULL, 0);
    assert_string_equal(d.text, "echo:one #1");
    assert_null(rt_table_find(&e.rt->table, "a"));
    assert_non_null(rt_table_find(&e.rt->table, "c"));
    max_conversations = 0;
    env_stop(&e);
}

typedef struct restored_s {
    int calls;
    int status;
    size_t restored;
} restored_t;

static void on_restored(int status, size_t restored, void *data)
{
    restored_t *r = data;
    r->calls++;
    r->status = status;
    r->restored = restored;
}

/* The daemon serves while the start-up restore reads: a key that gets a
 * message, ends and is swept before the restore applies what it read must
 * not come back with the older state it read (its idle timeout would then
 * write rows the store already has). Keys nobody touched come back. */
static void test_restore_skips_keys_dropped_since_it_was_queued(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k", "one", &r);
    store_answer(0, NULL, 0);
    active_rows[0].id = "k"; /* as the restore reads it: active, after turn one */
    active_rows[0].state = "{\"v\":1,\"seq\":2,\"brain\":{\"turns\":1}}";
    active_rows[1].id = "untouched";
    active_rows[1].state = "{\"v\":1,\"seq\":4,\"brain\":{\"turns\":2}}";
    n_active_rows = 2;
    atomic_store(&hold_restore, 1);
    restored_t res = {0};
    assert_int_equal(runtime_restore_active(e.rt, "chorus.db", on_restored, &res), 0);
    durable_turn(&e, "k", "end", &r); /* meanwhile k ends... */
    runtime_sweep(e.rt, core_wall_us());
    assert_null(rt_table_find(&e.rt->table, "k")); /* ...and is swept */
    atomic_store(&hold_restore, 0);
    while (res.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.restored, 1);
    assert_null(rt_table_find(&e.rt->table, "k"));
    assert_non_null(rt_table_find(&e.rt->table, "untouched"));
    n_active_rows = 0;
    env_stop(&e);
}

/* A batch the store refuses as invalid (a constraint) would be refused
 * again: the conversation leaves memory rather than have the idle sweep
 * send the same timeout turn every tick, and its next message reads what
 * the store has. */
static void test_refused_commit_drops_the_conversation(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k", "one", &r);
    store_answer(0, NULL, 0);
    int64_t later = core_wall_us() + 2 * fake_idle_us;
    runtime_sweep(e.rt, later); /* its idle timeout is due */
    until_pending(&e, 1);
    store_answer(CORE_ERR_INVALID, NULL, 0); /* the timeout turn's rows collide */
    spin(&e, 5);
    assert_null(rt_table_find(&e.rt->table, "k"));
    runtime_sweep(e.rt, later + 1000000);
    spin(&e, 5);
    assert_int_equal(n_pend, 0); /* no timeout turn again */
    submit(&e, "k", BRAIN_EV_MESSAGE, "back", &r);
    until_pending(&e, 1);
    assert_non_null(pend[0].loaded);                                   /* read from the store */
    store_answer(0, "{\"v\":1,\"seq\":4,\"brain\":{\"turns\":2}}", 0); /* it had ended */
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(r.text, "echo:back #1");
    env_stop(&e);
}

/* Many states are applied a slice at a time, with the loop running between
 * slices, not all in one callback that would stall every connection. */
static void test_restore_applies_states_in_slices(void **state)
{
    env_t e;
    env_start(&e);
    n_generated_rows = 5000;
    generated_state = "{\"v\":1,\"seq\":2,\"brain\":{\"turns\":1}}";
    restored_t res = {0};
    assert_int_equal(runtime_restore_active(e.rt, "chorus.db", on_restored, &res), 0);
    runtime_stats_t st;
    do {
        uv_run(&e.loop, UV_RUN_ONCE);
        runtime_stats(e.rt, &st);
    } while (st.conversations == 0 && res.calls == 0);
    assert_int_equal(res.calls, 0);
    assert_true(st.conversations > 0 && st.conversations < 5000);
    while (res.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.restored, 5000);
    runtime_stats(e.rt, &st);
    assert_int_equal(st.conversations, 5000);
    n_generated_rows = 0;
    env_stop(&e);
}

/* In "promoted" mode production is rebuilt from the store, compiled on the
 * thread pool, and the daemon asks for the start-up restore after the flows
 * directory's load, which may come first: the restore waits for the
 * default environment's set rather than being refused for good. A close
 * while it waits ends it. */
static void test_restore_waits_for_the_default_environment(void **state)
{
    env_t e;
    uv_loop_init(&e.loop);
    runtime_options_t o = {
        .flows_dir = flows_dir, .store = (store_t *)&fake_store_obj, .production_promoted = 1};
    assert_int_equal(runtime_new(&e.loop, &o, &e.rt, NULL), 0);
    const char *text = "{\"name\": \"main\"}";
    runtime_flow_file_t f = {"main", NULL, text, strlen(text), 1};
    int loaded = 0;
    assert_int_equal(runtime_env_restore(e.rt, "production", &f, 1, on_loaded, &loaded), 0);
    active_rows[0].id = "k";
    active_rows[0].state = "{\"v\":1,\"seq\":2,\"brain\":{\"turns\":1}}";
    n_active_rows = 1;
    restored_t res = {0};
    assert_int_equal(runtime_restore_active(e.rt, "chorus.db", on_restored, &res), 0);
    while (res.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(loaded, 1); /* production came first */
    assert_int_equal(res.status, 0);
    assert_int_equal(res.restored, 1);
    assert_non_null(rt_table_find(&e.rt->table, "k"));
    n_active_rows = 0;
    env_stop(&e);

    uv_loop_init(&e.loop); /* production never comes: the close ends the wait */
    assert_int_equal(runtime_new(&e.loop, &o, &e.rt, NULL), 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(runtime_restore_active(e.rt, "chorus.db", on_restored, &res), 0);
    spin(&e, 5);
    assert_int_equal(res.calls, 0);
    env_stop(&e);
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, CORE_ERR_CLOSED);
}

/* A conversation read back (evicted, or after a restart) goes on in the
 * environment its state was saved in, whatever its turn names; a state
 * saved before environments were saved keeps the turn's, and one naming an
 * environment that does not exist goes to the default. The start-up
 * restore binds the same way. */
static void test_read_back_goes_to_its_saved_environment(void **state)
{
    env_t e;
    env_start(&e);
    const char *keys[] = {"staged", "legacy", "unknown"};
    const char *states[] = {
        "{\"v\":1,\"seq\":2,\"gen\":0,\"env\":\"staging\",\"brain\":{\"turns\":1}}",
        "{\"v\":1,\"seq\":2,\"brain\":{\"turns\":1}}",
        "{\"v\":1,\"seq\":2,\"env\":\"qa\",\"brain\":{\"turns\":1}}"};
    const int want[] = {0 /* staging */, 1, 1};
    rec_t r;
    for (int i = 0; i < 3; i++) {
        submit(&e, keys[i], BRAIN_EV_MESSAGE, "back", &r); /* names no environment */
        until_pending(&e, 1);
        store_answer(0, states[i], 1);
        until_pending(&e, 1);
        store_answer(0, NULL, 0);
        assert_string_equal(r.text, "echo:back #2");
        assert_int_equal(rt_table_find(&e.rt->table, keys[i])->env, want[i]);
    }
    active_rows[0].id = "restored";
    active_rows[0].state = states[0];
    n_active_rows = 1;
    restored_t res = {0};
    assert_int_equal(runtime_restore_active(e.rt, "chorus.db", on_restored, &res), 0);
    while (res.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(res.restored, 1);
    assert_int_equal(rt_table_find(&e.rt->table, "restored")->env, 0);
    n_active_rows = 0;
    env_stop(&e);
}

/* A key the caller minted for this turn (a new chat conversation) has
 * nothing in the store: the runtime does not ask, the turn runs at once and
 * the store's only request is its batch. Any other new key is read first. */
static void test_fresh_key_is_not_read_from_the_store(void **state)
{
    env_t e;
    env_start(&e);
    rec_t r;
    runtime_turn_in_t in = {
        .key = "minted", .event = BRAIN_EV_MESSAGE, .text = "one", .len = 3, .fresh = 1};
    submit_in(&e, &in, &r);
    until_pending(&e, 1);
    assert_non_null(pend[0].done); /* the batch, not a read */
    assert_null(pend[0].loaded);
    store_answer(0, NULL, 0);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.text, "echo:one #1");
    submit(&e, "returning", BRAIN_EV_MESSAGE, "one", &r);
    until_pending(&e, 1);
    assert_non_null(pend[0].loaded); /* a key not minted for the turn is read first */
    store_answer(CORE_ERR_NOT_FOUND, NULL, 0);
    until_pending(&e, 1);
    store_answer(0, NULL, 0);
    assert_string_equal(r.text, "echo:one #1");
    env_stop(&e);
}

/* The eviction scan starts where the last one ended. Wherever that is,
 * it must reach the durable idle
 * conversation, even one in a bucket behind it: the scan wraps past the
 * table's last bucket. Each round puts the scan just past the one resident
 * conversation's bucket, so only a scan that wraps all the way round finds
 * it; rounds go on until eight residents sat in the table's first half
 * (a bucket low enough to be behind every shorter scan). */
static void test_eviction_scan_wraps_past_the_last_bucket(void **state)
{
    env_t e;
    max_conversations = 1;
    env_start(&e);
    rec_t r;
    first_turn(&e, "k0", "one", &r);
    store_answer(0, NULL, 0);
    int rounds = 0, low = 0;
    for (; low < 8 && rounds < 1000; rounds++) {
        char prev[16], key[16];
        snprintf(prev, sizeof(prev), "k%d", rounds);
        snprintf(key, sizeof(key), "k%d", rounds + 1);
        rt_conv_t *resident = rt_table_find(&e.rt->table, prev);
        assert_non_null(resident);
        size_t n = e.rt->table.n_buckets, bucket = resident->hash & (n - 1);
        low += bucket < n / 2;
        e.rt->evict_cursor = bucket + 1;
        first_turn(&e, key, "one", &r); /* refused at_capacity if the scan missed it */
        store_answer(0, NULL, 0);
        assert_int_equal(r.error, 0);
        assert_string_equal(r.text, "echo:one #1");
        runtime_stats_t st;
        runtime_stats(e.rt, &st);
        assert_int_equal(st.evictions, (uint64_t)rounds + 1);
        assert_int_equal(st.conversations, 1);
        assert_null(rt_table_find(&e.rt->table, prev));
    }
    assert_int_equal(low, 8);
    max_conversations = 0;
    env_stop(&e);
}

/* Counts visits; stops the walk at the visit numbered n[1]. */
static int count_until(rt_conv_t *c, void *arg)
{
    int *n = arg;
    (void)c;
    return ++n[0] == n[1];
}

/* A walk stops at the first visit that returns nonzero and returns it (the
 * eviction scan ends at the conversation it dropped); a walk from a bucket
 * near the end wraps and sees every conversation once. */
static void test_table_walk_stops_and_wraps(void **state)
{
    rt_table_t t;
    rt_table_init(&t);
    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "w%d", i);
        assert_non_null(rt_table_add(&t, key));
    }
    int n[2] = {0, 3};
    assert_int_equal(rt_table_each(&t, count_until, n), 1);
    assert_int_equal(n[0], 3);
    n[0] = 0;
    assert_int_equal(rt_table_each_from(&t, t.n_buckets - 5, 1000, count_until, n), 1);
    assert_int_equal(n[0], 3);
    n[0] = 0;
    n[1] = -1; /* never stops */
    assert_int_equal(rt_table_each_from(&t, t.n_buckets - 5, 1000, count_until, n), 0);
    assert_int_equal(n[0], 40);
    rt_table_dispose(&t);
    (void)state;
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/chorus-rtd-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(flows_dir, sizeof(flows_dir), "%s/flows", tmpdir);
    mkdir(flows_dir, 0700);
    char path[256];
    snprintf(path, sizeof(path), "%s/main.json", flows_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs("{\"name\": \"main\"}", f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_waits_for_durability_and_serialises),
        cmocka_unit_test(test_refused_batch_rolls_back),
        cmocka_unit_test(test_a_call_run_again_keeps_its_idempotency_key),
        cmocka_unit_test(test_failed_write_rolls_back),
        cmocka_unit_test(test_restored_conversation_resumes),
        cmocka_unit_test(test_failed_read_fails_queued_turns),
        cmocka_unit_test(test_close_with_batch_in_flight),
        cmocka_unit_test(test_full_table_evicts_durable_idle_conversations),
        cmocka_unit_test(test_eviction_spares_what_only_memory_holds),
        cmocka_unit_test(test_eviction_scan_wraps_past_the_last_bucket),
        cmocka_unit_test(test_table_walk_stops_and_wraps),
        cmocka_unit_test(test_fresh_key_is_not_read_from_the_store),
        cmocka_unit_test(test_restore_skips_keys_dropped_since_it_was_queued),
        cmocka_unit_test(test_refused_commit_drops_the_conversation),
        cmocka_unit_test(test_restore_applies_states_in_slices),
        cmocka_unit_test(test_restore_waits_for_the_default_environment),
        cmocka_unit_test(test_read_back_goes_to_its_saved_environment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
