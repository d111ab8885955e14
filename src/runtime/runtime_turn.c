/* The turn pipeline: runtime_turn() queues a turn on its conversation, the
 * idle handle runs ready turns outside the caller's stack, brain_turn() and
 * brain_resume() advance the flow, effects go to runtime_effect.c, and the
 * done callback runs once. Also eviction and the idle sweep; construction
 * and shutdown are runtime_life.c. Contract: include/chorus/runtime.h. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime_envs.h"

/* ---- lifecycle of a turn ------------------------------------------------ */

static void on_turn_timer_closed(uv_handle_t *h)
{
    rt_turn_t *t = h->data;
    runtime_t *rt = t->rt;
    free(t);
    rt->open_handles--;
    rt_maybe_free(rt);
}

static void turn_free(rt_turn_t *t)
{
    brain_out_dispose(&t->out);
    free(t->text);
    free(t->intent);
    free(t->adapter_version);
    free(t->input_detail);
    free(t->client_id);
    free(t->start_detail);
    free(t->sender);
    free(t->jump);
    free(t->conv_id);
    if (t->has_saved)
        brain_conv_dispose(&t->saved);
    if (t->backoff_active)
        uv_close((uv_handle_t *)&t->backoff, on_turn_timer_closed);
    else
        free(t);
}

static void alive_unlink(rt_turn_t *t)
{
    runtime_t *rt = t->rt;
    if (t->aprev)
        t->aprev->anext = t->anext;
    else
        rt->alive = t->anext;
    if (t->anext)
        t->anext->aprev = t->aprev;
    t->anext = t->aprev = NULL;
    rt->stats.turns_in_flight--;
}

static void on_kick(uv_idle_t *h);
static void conv_reschedule(runtime_t *rt, rt_conv_t *conv);

static void ready_push(runtime_t *rt, rt_turn_t *t)
{
    t->next = NULL;
    if (rt->ready_tail)
        rt->ready_tail->next = t;
    else
        rt->ready_head = t;
    rt->ready_tail = t;
    if (!uv_is_active((uv_handle_t *)&rt->kick))
        uv_idle_start(&rt->kick, on_kick);
}

/* The local date and time of now_us, which entities are resolved against
 * ("tomorrow", "next friday"). The conversion to local time was a quarter
 * of the CPU of starting a turn under load, and the turns of one second
 * share its result. */
static void reference_date(runtime_t *rt, int64_t now_us, ent_ctx_t *ref)
{
    int64_t secs = now_us / 1000000;
    if (secs != rt->ref_secs) {
        time_t t = (time_t)secs;
        struct tm tm;
        localtime_r(&t, &tm);
        memset(&rt->ref_date, 0, sizeof(rt->ref_date));
        rt->ref_date.year = tm.tm_year + 1900;
        rt->ref_date.month = tm.tm_mon + 1;
        rt->ref_date.day = tm.tm_mday;
        rt->ref_date.hour = tm.tm_hour;
        rt->ref_date.minute = tm.tm_min;
        rt->ref_secs = secs;
    }
    *ref = rt->ref_date;
}

static rt_turn_t *turn_new(runtime_t *rt, rt_conv_t *conv, const runtime_turn_in_t *in,
                           brain_event_t event, runtime_done_cb done, void *data)
{
    rt_turn_t *t = core_xcalloc(1, sizeof(*t));
    t->rt = rt;
    t->conv = conv;
    t->done = done;
    t->data = data;
    t->start_us = core_now_us();
    t->in.event = event;
    t->in.now_us = (in && in->now_us) ? in->now_us : core_wall_us();
    if (in && in->text) {
        t->text = core_xstrndup(in->text, in->len);
        t->in.text = t->text;
        t->in.len = in->len;
    } else {
        t->in.text = "";
    }
    if (in && in->intent) {
        t->intent = core_xstrdup(in->intent);
        t->in.intent = t->intent;
    }
    t->channel = event == BRAIN_EV_TIMEOUT ? conv->state.channel : (uint8_t)in->channel;
    if (in && in->adapter_version)
        t->adapter_version = core_xstrdup(in->adapter_version);
    if (in && in->input_detail)
        t->input_detail = core_xstrdup(in->input_detail);
    if (in && in->sender)
        t->sender = core_xstrdup(in->sender);
    if (in && in->client_id)
        t->client_id = core_xstrdup(in->client_id);
    if (in && in->start_detail)
        t->start_detail = core_xstrdup(in->start_detail);
    rt_handoff_init(t, in);
    reference_date(rt, t->in.now_us, &t->in.ref);
    brain_out_init(&t->out);
    t->anext = rt->alive;
    if (rt->alive)
        rt->alive->aprev = t;
    rt->alive = t;
    rt->stats.turns_in_flight++;
    return t;
}

/* Starts t on its conversation now, or queues it behind the turn in flight. */
static void conv_submit(rt_conv_t *conv, rt_turn_t *t)
{
    if (conv->running == NULL && !conv->loading) {
        conv->running = t;
        ready_push(t->rt, t);
        return;
    }
    t->next = NULL;
    if (conv->qtail)
        conv->qtail->next = t;
    else
        conv->qhead = t;
    conv->qtail = t;
    conv->queued++;
}

/* The turn in flight on conv is over: start the next one, if any. */
static void conv_advance(runtime_t *rt, rt_conv_t *conv)
{
    rt_turn_t *next = conv->qhead;
    conv->running = NULL;
    if (next == NULL || rt->closing)
        return;
    conv->qhead = next->next;
    if (conv->qhead == NULL)
        conv->qtail = NULL;
    conv->queued--;
    conv->running = next;
    ready_push(rt, next);
}

static void turn_finish(rt_turn_t *t, int error, const char *msg)
{
    runtime_t *rt = t->rt;
    rt_conv_t *conv = t->conv;
    runtime_turn_out_t o;
    memset(&o, 0, sizeof(o));
    o.error = error;
    o.error_msg = error ? msg : "";
    o.key = conv ? conv->key : "";
    if (error == 0) {
        o.out = &t->out;
        o.conv = &conv->state;
        o.flowset = conv->fs;
    }
    o.effects = t->effects;
    o.queued_us = t->run_us > t->start_us ? t->run_us - t->start_us : 0;
    o.duration_us = core_now_us() - t->start_us;
    o.data = t->data;
    alive_unlink(t);
    rt->stats.turns++;
    if (conv != NULL && !rt->closing) {
        rt_table_account(&rt->table, conv);
        conv_reschedule(rt, conv);
    }
    if (error != 0 && error != CORE_ERR_CLOSED) {
        char q[160];
        core_log_quote(q, 80, o.key, (size_t)-1, 60);
        core_log_quote(q + 80, 80, msg, (size_t)-1, 60);
        if (error == CORE_ERR_BUSY) /* the store pushed back: the client retries */
            LOG_WARN("event=turn_failed key=%s error=%s reason=%s", q, core_strerror(error),
                     q + 80);
        else
            LOG_ERROR("event=turn_failed key=%s error=%s reason=%s", q, core_strerror(error),
                      q + 80);
    }
    /* The next turn of the conversation is queued before the callback, so a
     * turn the callback submits lines up behind it rather than jumping ahead. */
    if (conv != NULL && !rt->closing && conv->running == t)
        conv_advance(rt, conv);
    if (error == 0)
        rt_handoff_observe(t, &o);
    if (t->done)
        t->done(&o);
    if (t->durable_wait) {
        /* Shutdown answered it; the store still owes its callback, which frees it. */
        t->done = NULL;
        t->conv = NULL;
        return;
    }
    turn_free(t);
}

/* Puts the conversation back as it was before t (its batch was refused). */
static void turn_rollback(rt_turn_t *t)
{
    rt_conv_t *conv = t->conv;
    if (!t->has_saved || conv == NULL)
        return;
    brain_conv_dispose(&conv->state);
    conv->state = t->saved;
    t->has_saved = 0;
    conv->seq = t->seq_before;
    if (conv->gen != t->gen_before) { /* the new conversation it began was not written */
        conv->gen = t->gen_before;
        conv->stored = 1;
    }
}

/* A finished turn: with a store its rows go out first and the channel hears
 * back once they are durable, so an acknowledged turn is never lost. */
static void turn_complete(rt_turn_t *t)
{
    runtime_t *rt = t->rt;
    if (rt->opts.store == NULL || rt->closing) {
        turn_finish(t, 0, "");
        return;
    }
    if (rt_store_commit(t) == 0) {
        t->durable_wait = 1;
        rt->store_pending++;
        return;
    }
    turn_rollback(t);
    turn_finish(t, CORE_ERR_BUSY, "the store is not accepting writes");
}

void rt_conv_drop(runtime_t *rt, rt_conv_t *conv)
{
    if (rt->restore_seen != NULL) /* see runtime_restore.c */
        json_object_set_new_nocheck(rt->restore_seen, conv->key, json_null());
    rt_table_remove(&rt->table, conv);
}

/* The store refused t's batch as invalid: a constraint, such as rows that
 * collide with rows already stored because the conversation in memory is
 * older than the store's (a stale state put back). The same batch would be
 * refused again, and the idle sweep would send the same timeout turn every
 * tick for ever: the conversation leaves memory instead, its queued turns
 * fail like t, and its next message reads the store's state. The turns no
 * longer name it, so a callback that sends the key a new turn finds it gone. */
static void conv_discard(runtime_t *rt, rt_turn_t *t)
{
    rt_conv_t *conv = t->conv;
    rt_turn_t *queued = conv->qhead;
    char q[200];
    LOG_WARN("event=conversation_dropped key=%s reason=store_refused_batch queued=%u",
             core_log_quote(q, sizeof(q), conv->key, (size_t)-1, 80), conv->queued);
    conv->qhead = conv->qtail = NULL;
    conv->queued = 0;
    conv->running = NULL;
    t->conv = NULL;
    for (rt_turn_t *x = queued; x != NULL; x = x->next)
        x->conv = NULL;
    rt_conv_drop(rt, conv);
    turn_finish(t, CORE_ERR_BUSY, "the store refused the turn");
    while (queued != NULL) {
        rt_turn_t *next = queued->next;
        turn_finish(queued, CORE_ERR_BUSY, "the store refused the turn before it");
        queued = next;
    }
}

void rt_turn_durable(rt_turn_t *t, int status)
{
    runtime_t *rt = t->rt;
    rt->store_pending--;
    t->durable_wait = 0;
    if (t->conv == NULL) { /* answered by shutdown already */
        turn_free(t);
        rt_maybe_free(rt);
        return;
    }
    if (status != 0) {
        turn_rollback(t);
        if (status == CORE_ERR_INVALID)
            conv_discard(rt, t);
        else
            turn_finish(t, CORE_ERR_BUSY, "the store could not write the turn");
        return;
    }
    t->conv->stored = 1;
    turn_finish(t, 0, "");
}

void rt_conv_loaded(runtime_t *rt, rt_conv_t *conv, int status)
{
    conv->loading = 0;
    if (status == 0) {
        rt_table_account(&rt->table, conv);
        conv_advance(rt, conv);
        return;
    }
    while (conv->qhead != NULL) {
        rt_turn_t *t = conv->qhead;
        conv->qhead = t->next;
        conv->queued--;
        turn_finish(t, CORE_ERR_BUSY, "the store could not read the conversation");
    }
    conv->qtail = NULL;
    rt_conv_drop(rt, conv);
}

/* A turn the brain stopped at its step limit answered the user, but it is a
 * failure of the flows, not of the user: recorded on the outbound row's
 * error and counted in chorus_turn_failures_total{kind="step_limit"}, as an
 * effect that failed is (an effect's failure, if any, is said first). */
static void note_step_limit(rt_turn_t *t)
{
    for (size_t i = 0; i < t->out.n_events && t->fail_kind == NULL; i++)
        if (strcmp(t->out.events[i].name, "step_limit") == 0)
            t->fail_kind = "step_limit";
}

static void turn_step(rt_turn_t *t, int rc)
{
    if (rc == BRAIN_NEED_EFFECT) {
        t->attempt = 0;
        rt_effect_start(t);
    } else if (rc == BRAIN_DONE) {
        note_step_limit(t);
        turn_complete(t);
    } else {
        char msg[96];
        snprintf(msg, sizeof(msg), "brain failed: %s", core_strerror(rc));
        turn_rollback(t); /* with a store, the conversation is as it was before */
        turn_finish(t, CORE_ERR_INTERNAL, msg);
    }
}

static void turn_run(rt_turn_t *t)
{
    rt_conv_t *conv = t->conv;
    t->run_us = core_now_us();
    if (t->in.event != BRAIN_EV_TIMEOUT) /* pinned until its conversation ends */
        rt_conv_repin(t->rt, conv, t->in.now_us);
    if (t->rt->opts.store != NULL) {
        /* The pre-turn state, to roll back to if the store refuses the turn. */
        t->saved = conv->state;
        t->saved.slots = NULL;
        t->saved.slots_cap = conv->state.slots_len;
        if (conv->state.slots_len > 0) {
            t->saved.slots = core_xmalloc(conv->state.slots_len);
            memcpy(t->saved.slots, conv->state.slots, conv->state.slots_len);
        }
        t->has_saved = 1;
    }
    t->seq_before = conv->seq;
    t->gen_before = conv->gen;
    if (t->in.event == BRAIN_EV_MESSAGE) { /* rails and policy state (guard.h, policy.h) */
        if (conv->policy == NULL)
            conv->policy = core_xcalloc(1, sizeof(*conv->policy));
        t->in.policy = conv->policy;
        t->in.conversation_bucket = &conv->bucket;
        t->in.sender_bucket = rt_senders_get(&t->rt->senders, t->sender);
        t->in.conversation = conv->key;
    }
    rt_handoff_jump(t);
    turn_step(t, brain_turn(conv->fs, &conv->state, &t->in, &t->out));
}

static void on_kick(uv_idle_t *h)
{
    runtime_t *rt = h->data;
    rt_turn_t *t = rt->ready_head;
    rt->ready_head = rt->ready_tail = NULL;
    uv_idle_stop(&rt->kick);
    while (t != NULL && !rt->closing) {
        rt_turn_t *next = t->next;
        turn_run(t);
        t = next;
    }
}

void rt_turn_resume(rt_turn_t *t, const brain_effect_result_t *res)
{
    rt_conv_t *conv = t->conv;
    turn_step(t, brain_resume(conv->fs, &conv->state, res, &t->out));
}

void rt_turn_fail(rt_turn_t *t, int error, const char *msg)
{
    turn_finish(t, error, msg);
}

/* ---- entry point -------------------------------------------------------- */

/* State the store never sees: values of sensitive slots (never written, by
 * design: brain_conv_to_json) and the escalation policy's counters. Read
 * back without them, a conversation half-way through giving a card number
 * would have lost it, and a run of fallbacks would start again from zero.
 * An ended conversation holds nothing its next session would use. */
static int holds_memory_only(const rt_conv_t *conv)
{
    if (conv->state.status == BRAIN_ST_ENDED)
        return 0;
    return brain_conv_has_sensitive(conv->fs, &conv->state) || policy_state_holds(conv->policy);
}

/* Evicts conv if it is idle and durable, and all it holds is in the store,
 * which ends the scan. */
static int evict_visit(rt_conv_t *conv, void *arg)
{
    runtime_t *rt = arg;
    if (conv->running != NULL || conv->loading || !conv->stored || holds_memory_only(conv))
        return 0;
    rt_conv_drop(rt, conv); /* durable: its next message reads it back */
    return 1;
}

/* With a store that can read state back (not ":memory:", opts.no_evict), a
 * full table makes room by dropping an idle conversation whose state is
 * already durable and that holds nothing the store lacks (holds_memory_only);
 * when none of those is found the table is full. Looks at a bounded number
 * of buckets from where the last scan ended, wrapping past the end, so a
 * full table never costs a walk and every bucket gets its turn. */
#define EVICT_SCAN_BUCKETS 256

static int evict_one(runtime_t *rt)
{
    if (rt->opts.store == NULL || rt->opts.no_evict)
        return 0;
    int done =
        rt_table_each_from(&rt->table, rt->evict_cursor, EVICT_SCAN_BUCKETS, evict_visit, rt);
    rt->evict_cursor = (rt->evict_cursor + EVICT_SCAN_BUCKETS) % rt->table.n_buckets;
    if (done)
        rt->stats.evictions++;
    return done;
}

int runtime_turn(runtime_t *rt, const runtime_turn_in_t *in, runtime_done_cb done, void *data,
                 core_err_t *err)
{
    if (rt->closing)
        return core_err_set(err, CORE_ERR_CLOSED, "runtime is shutting down");
    if (rt->fs == NULL)
        return core_err_set(err, CORE_ERR_BUSY, "flows are not loaded yet");
    if (in->key == NULL || in->key[0] == '\0' || strlen(in->key) > 512)
        return core_err_set(err, CORE_ERR_INVALID, "conversation key must be 1-512 bytes");
    if (in->event != BRAIN_EV_MESSAGE && in->event != BRAIN_EV_START)
        return core_err_set(err, CORE_ERR_INVALID, "turn event must be a message or a start");
    if ((unsigned)in->channel >= BRAIN_CH__COUNT)
        return core_err_set(err, CORE_ERR_INVALID, "unknown channel %d", (int)in->channel);
    int env = in->env ? rt_env_index(in->env) : rt->envs->def;
    if (env < 0)
        return core_err_set(err, CORE_ERR_INVALID, "unknown environment \"%.40s\"", in->env);
    if (rt->envs->env[env].cur == NULL)
        return core_err_set(err, CORE_ERR_BUSY, "%s has no flows loaded yet", rt_env_name(env));
    rt_conv_t *conv = rt_table_find(&rt->table, in->key);
    if (conv == NULL) {
        if (rt->table.len >= rt->opts.max_conversations && !evict_one(rt))
            return core_err_set(err, CORE_ERR_LIMIT, "too many live conversations (%zu)",
                                rt->table.len);
        conv = rt_table_add(&rt->table, in->key);
        rt_conv_bind(rt, conv, env);
        brain_conv_init(&conv->state, conv->fs, in->channel,
                        in->now_us ? in->now_us : core_wall_us());
        rt_table_account(&rt->table, conv);
        /* Not in memory: maybe in the store (evicted, or a restart). Even a
         * start event reads it, for the conversation number a returning key
         * goes on with; only a key minted for this turn has nothing there. */
        if (rt->opts.store != NULL && !in->fresh) {
            if (rt_store_load(rt, conv) != 0) {
                rt_conv_drop(rt, conv);
                return core_err_set(err, CORE_ERR_BUSY, "the store is not answering");
            }
            conv->loading = 1;
        }
    } else if ((conv->running != NULL || conv->loading) &&
               conv->queued >= rt->opts.max_queued_turns) {
        return core_err_set(err, CORE_ERR_BUSY,
                            "conversation has %u turns waiting; try again shortly", conv->queued);
    }
    conv_submit(conv, turn_new(rt, conv, in, in->event, done, data));
    return 0;
}

/* ---- idle sweep ---------------------------------------------------------- */

/* The sweep looks at a conversation when it may need it: the table files
 * each one under the tick of its deadline (its due lists, runtime_due.c),
 * and a tick of the sweep timer pops only what is due. A turn that moves a
 * deadline later leaves the conversation where it is, to be filed anew
 * when the sweep gets there; one that moves it earlier (an end) refiles it. */

/* At most this many conversations are looked at per timer callback; the
 * rest of a crowded tick follows a millisecond later, so the loop is never
 * held long even when many conversations fall due together. */
#define SWEEP_BATCH 2048

static uint64_t sweep_now_tick(const runtime_t *rt)
{
    return (uv_now(rt->loop) - rt->sweep_origin_ms) / rt->opts.sweep_interval_ms;
}

/* The first tick, from `from` on, at which conv's state may need the sweep:
 * its deadline, the end of its idle time when handed off, `from` when it
 * has ended; the end of the lap when nothing is ever due. */
static uint64_t state_tick(const runtime_t *rt, const rt_conv_t *conv, uint64_t from)
{
    const brain_conv_t *st = &conv->state;
    if (st->status == BRAIN_ST_ENDED)
        return from;
    int64_t due = brain_conv_deadline(conv->fs, st);
    if (due == 0) {
        int64_t idle = brain_flowset_idle_timeout_us(conv->fs);
        if (idle <= 0)
            return UINT64_MAX; /* rt_due_set clamps it to the lap's end */
        due = st->last_us + idle;
    }
    int64_t wait_us = due - core_wall_us();
    if (wait_us <= 0)
        return from;
    /* Deadlines are wall time, ticks the loop's monotonic clock. */
    uint64_t due_ms = uv_now(rt->loop) + (uint64_t)(wait_us + 999) / 1000;
    uint64_t interval = rt->opts.sweep_interval_ms;
    uint64_t tick = (due_ms - rt->sweep_origin_ms + interval - 1) / interval;
    return tick > from ? tick : from;
}

/* After a turn: refiles conv if its state fell due earlier than it is filed. */
static void conv_reschedule(runtime_t *rt, rt_conv_t *conv)
{
    uint64_t tick = state_tick(rt, conv, sweep_now_tick(rt));
    if (conv->dpprev == NULL || tick < conv->due_tick)
        rt_due_set(&rt->table, conv, tick);
}

typedef struct sweep_ctx_s {
    runtime_t *rt;
    int64_t now_us;
    uint64_t next_tick; /* the tick after the one being swept */
} sweep_ctx_t;

/* Ends, frees or refiles one conversation; never leaves it unfiled. */
static int sweep_one(rt_conv_t *conv, void *arg)
{
    sweep_ctx_t *s = arg;
    runtime_t *rt = s->rt;
    if (conv->running != NULL || conv->loading) {
        rt_due_set(&rt->table, conv, s->next_tick); /* looked at again when idle */
        return 0;
    }
    const brain_conv_t *st = &conv->state;
    if (st->status == BRAIN_ST_ENDED) {
        rt_conv_drop(rt, conv);
        return 0;
    }
    int64_t deadline = brain_conv_deadline(conv->fs, st);
    if (deadline > 0 && deadline <= s->now_us) {
        /* An internal turn: the flow says goodbye and the conversation ends;
         * the next sweep frees it. */
        runtime_turn_in_t in = {.now_us = s->now_us};
        rt->stats.timeouts++;
        conv_submit(conv, turn_new(rt, conv, &in, BRAIN_EV_TIMEOUT, rt->opts.on_idle_end,
                                   rt->opts.idle_data));
        rt_due_set(&rt->table, conv, s->next_tick);
        return 0;
    }
    int64_t idle = brain_flowset_idle_timeout_us(conv->fs);
    if (deadline == 0 && idle > 0 && st->last_us + idle <= s->now_us) {
        rt_conv_drop(rt, conv); /* handed off or idle with no flow */
        return 0;
    }
    rt_due_set(&rt->table, conv, state_tick(rt, conv, s->next_tick));
    return 0;
}

void runtime_sweep(runtime_t *rt, int64_t now_us)
{
    if (rt->closing)
        return;
    sweep_ctx_t s = {rt, now_us, sweep_now_tick(rt) + 1};
    rt_table_each(&rt->table, sweep_one, &s);
}

void rt_on_sweep(uv_timer_t *h)
{
    runtime_t *rt = h->data;
    uint64_t now_tick = sweep_now_tick(rt);
    sweep_ctx_t s = {rt, core_wall_us(), now_tick + 1};
    rt_conv_t *conv;
    for (int n = 0; n < SWEEP_BATCH; n++) {
        if ((conv = rt_due_pop(&rt->table, now_tick)) == NULL)
            return;
        sweep_one(conv, &s);
    }
    /* More may be due: the rest after a pause for the loop's other work. */
    uv_timer_start(h, rt_on_sweep, 1, rt->opts.sweep_interval_ms);
}
