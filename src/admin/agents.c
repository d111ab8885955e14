/* The human desk: every handoff the runtime reports enters a queue; a
 * person claims it, talks on the customer's channel, releases it back to the
 * bot or closes it. State lives here on the loop (the entries list) and each
 * change is written as one row of the handoffs table (migration 5), each
 * message as one row of handoff_messages (migration 7), so a restart brings
 * the open handoffs back (agents_restore.c). The runtime tells the desk about
 * turns through its observer (runtime_set_observer): a new handoff, what the
 * customer says while waiting or talking to a person (recorded, never
 * routed to the bot: the brain stays quiet on a handed-off conversation),
 * and how a released conversation ends. docs/agents.md. */
#define LOG_MODULE "agents"
#include <stdlib.h>
#include <string.h>

#include "admin/agents_int.h"
#include "chorus/channels.h"

enum { AG_TICK_MS = 1000 };

static ag_desk_t the_desk;
static runtime_t *early_rt; /* attached before the routes were registered */

const char *ag__state_name(ag_state_t s)
{
    static const char *const names[] = {"waiting", "claimed", "released", "closed", "abandoned"};
    return names[s];
}

/* The open entry of a runtime key (waiting, claimed, or released with its
 * outcome still to come). */
static ag_entry_t *find_key(ag_desk_t *d, const char *key)
{
    return ag__index_open(d, key);
}

void ag__entry_free(ag_entry_t *e)
{
    free(e->conv_id), free(e->key), free(e->queue), free(e->reason);
    free(e->agent), free(e->disposition), free(e->release_outcome);
    json_decref(e->summary);
    json_decref(e->messages);
    free(e);
}

void ag__trim(ag_desk_t *d, const ag_entry_t *keep)
{
    if (d->n_done <= AG_MAX_DONE + AG_DONE_SLACK)
        return;
    size_t done = 0;
    for (ag_entry_t **p = &d->entries; *p != NULL;) {
        ag_entry_t *e = *p;
        if (ag__finished(e) && ++done > AG_MAX_DONE && e != keep) {
            ag__index_remove(d, e);
            *p = e->next;
            ag__entry_free(e);
            d->n_entries--;
            continue;
        }
        p = &e->next;
    }
}

size_t ag__position(ag_desk_t *d, const ag_entry_t *e)
{
    size_t pos = 1;
    for (ag_entry_t *o = d->entries; o != NULL; o = o->next)
        if (o != e && o->state == AG_WAITING && strcmp(o->queue, e->queue) == 0 &&
            o->entered_us < e->entered_us)
            pos++;
    return pos;
}

/* Words the customer's transcript numbered as entry: an event of the
 * conversation, which keeps them as long as its transcript (the handoff's
 * messages keep only the last 200, and the next handoff of the
 * conversation deletes them) and says which seq they had, for the chat
 * channel's rebuild (docs/channels.md, "Restore"). The seq, not the time
 * or the rows around them, places them: they join the live log when they
 * are said, while a turn's entries join it once its rows are durable, and
 * the queue's wait message is said before the entries of the turn that
 * handed off (the desk hears of a turn before its channel does), so they
 * can come between a turn's rows and its entries. */
static void desk_event(store_batch_t *b, const ag_entry_t *e, const json_t *m, uint64_t entry)
{
    json_t *o = json_pack("{s:O,s:O,s:I}", "from", json_object_get(m, "from"), "text",
                          json_object_get(m, "text"), "entry", (json_int_t)entry);
    json_t *agent = json_object_get(m, "agent");
    if (agent != NULL)
        json_object_set(o, "agent", agent);
    char *detail = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    store_event_t ev = {.conversation_id = e->conv_id,
                        .ts_us = json_integer_value(json_object_get(m, "ts_us")),
                        .kind = "desk",
                        .name = json_string_value(agent),
                        .status = "ok",
                        .duration_us = -1,
                        .detail = detail};
    store_batch_event(b, &ev);
    free(detail);
}

/* A message costs one row of handoff_messages, whatever the history before
 * it (the history was rewritten whole, up to 200 messages, with each). */
void ag__note(ag_desk_t *d, ag_entry_t *e, const char *from, const char *agent, const char *text,
              size_t len, uint64_t entry)
{
    if (json_array_size(e->messages) >= AG_MAX_MESSAGES)
        json_array_remove(e->messages, 0);
    json_t *m = json_pack("{s:s,s:s%,s:I}", "from", from, "text", text, len, "ts_us",
                          (json_int_t)core_wall_us());
    if (m == NULL) /* not UTF-8: the rails passed it, so keep a marker */
        m = json_pack("{s:s,s:s,s:I}", "from", from, "text", "", "ts_us",
                      (json_int_t)core_wall_us());
    if (agent != NULL)
        json_object_set_new(m, "agent", json_string(agent));
    json_array_append_new(e->messages, m);
    e->msg_seq++;
    store_t *s = admin__store(d->admin);
    if (s == NULL)
        return;
    json_t *t = json_object_get(m, "text");
    store_handoff_message_t row = {.conversation_id = e->conv_id,
                                   .handoff_id = e->id,
                                   .seq = e->msg_seq,
                                   .from = from,
                                   .agent = agent,
                                   .text = json_string_value(t),
                                   .text_len = json_string_length(t),
                                   .ts_us = json_integer_value(json_object_get(m, "ts_us")),
                                   .keep = AG_MAX_MESSAGES};
    store_batch_t *b = store_batch_new();
    store_batch_handoff_message(b, &row);
    if (entry > 0)
        desk_event(b, e, m, entry);
    int rc = store_enqueue(s, b, NULL, NULL);
    if (rc != 0) {
        store_batch_free(b);
        LOG_WARN("event=handoff_message_not_saved handoff=%s seq=%lld reason=%s", e->id,
                 (long long)e->msg_seq, core_strerror(rc));
    }
}

json_t *ag__entry_json(const ag_entry_t *e, int with_messages)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", e->id, "conversation_id",
                          e->conv_id, "key", e->key, "queue", e->queue, "reason", e->reason,
                          "channel", brain_channel_name(e->channel), "state",
                          ag__state_name(e->state), "entered_us", (json_int_t)e->entered_us);
    json_object_set_new(o, "agent", e->agent ? json_string(e->agent) : json_null());
    json_object_set_new(o, "claimed_us", e->claimed_us ? json_integer(e->claimed_us) : json_null());
    json_object_set_new(o, "done_us", e->done_us ? json_integer(e->done_us) : json_null());
    json_object_set_new(o, "disposition",
                        e->disposition ? json_string(e->disposition) : json_null());
    json_object_set_new(o, "release_outcome",
                        e->release_outcome ? json_string(e->release_outcome) : json_null());
    json_object_set(o, "summary", e->summary ? e->summary : json_null());
    json_object_set_new(o, "overdue", json_boolean(e->overdue));
    json_object_set_new(o, "webhook_delivered", json_boolean(e->hook == AG_HOOK_DELIVERED));
    json_object_set_new(o, "webhook_given_up", json_boolean(e->hook == AG_HOOK_GIVEN_UP));
    if (with_messages)
        json_object_set(o, "messages", e->messages);
    return o;
}

/* The handoff's row: its state, without its messages (rows of their own,
 * ag__note), so that it costs the same whatever the history. */
static void persist(ag_desk_t *d, ag_entry_t *e)
{
    store_t *s = admin__store(d->admin);
    if (s == NULL)
        return;
    json_t *j = ag__entry_json(e, 0);
    char *detail = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    store_handoff_t h = {.conversation_id = e->conv_id,
                         .key = e->key,
                         .queue = e->queue,
                         .channel = brain_channel_name(e->channel),
                         .reason = e->reason,
                         .state = ag__state_name(e->state),
                         .agent = e->agent,
                         .disposition = e->disposition,
                         .release_outcome = e->release_outcome,
                         .detail = detail,
                         .entered_us = e->entered_us,
                         .claimed_us = e->claimed_us,
                         .done_us = e->done_us,
                         .updated_us = core_wall_us(),
                         .superseded = e->superseded};
    store_batch_t *b = store_batch_new();
    store_batch_handoff(b, &h);
    free(detail);
    int rc = store_enqueue(s, b, NULL, NULL);
    if (rc != 0) {
        store_batch_free(b);
        LOG_WARN("event=handoff_not_saved handoff=%s reason=%s", e->id, core_strerror(rc));
    }
}

/* One metric of e's: labels queue, channel and third (its reason when
 * NULL); observe: a histogram sample rather than a count. */
void ag__metric(ag_desk_t *d, store_metric_t f, const ag_entry_t *e, const char *third, double v)
{
    store_metrics_t *m = d->admin->host.metrics ? *d->admin->host.metrics : NULL;
    if (m == NULL)
        return;
    const char *l[] = {e->queue, brain_channel_name(e->channel), third ? third : e->reason};
    if (f == STORE_M_AGENT_WAIT || f == STORE_M_AGENT_HANDLE)
        store_metrics_observe(m, f, l, v);
    else
        store_metrics_add(m, f, l, v);
}

static void waiting_gauge(ag_desk_t *d, const char *queue)
{
    store_metrics_t *m = d->admin->host.metrics ? *d->admin->host.metrics : NULL;
    if (m == NULL)
        return;
    const char *l[] = {queue};
    store_metrics_set(m, STORE_M_AGENT_WAITING, l, (double)ag__waiting(d, queue));
}

/* Every queue's waiting gauge: the configured queues and those entries
 * are in, so that each reads what the restore brought back (0 included)
 * rather than nothing until its next change. */
static void waiting_gauges(ag_desk_t *d)
{
    for (size_t i = 0; i < d->conf.n_queues; i++)
        waiting_gauge(d, d->conf.queues[i].name);
    for (size_t i = 0; i < d->n_tally; i++)
        waiting_gauge(d, d->tally[i].queue);
}

/* The figures a state change moves (docs/agents.md, "Metrics"). */
static void count(ag_desk_t *d, ag_entry_t *e, const char *event)
{
    double handled = e->claimed_us && e->done_us ? (double)(e->done_us - e->claimed_us) / 1e6 : -1;
    if (strcmp(event, "queued") == 0) {
        ag__metric(d, STORE_M_AGENT_HANDOFFS, e, NULL, 1);
    } else if (strcmp(event, "claimed") == 0) {
        ag__metric(d, STORE_M_AGENT_WAIT, e, NULL, (double)(e->claimed_us - e->entered_us) / 1e6);
    } else if (strcmp(event, "released") == 0 || strcmp(event, "closed") == 0) {
        if (handled >= 0)
            ag__metric(d, STORE_M_AGENT_HANDLE, e, NULL, handled);
        if (event[0] == 'r')
            ag__metric(d, STORE_M_AGENT_RELEASES, e, "released", 1);
        else
            ag__metric(d, STORE_M_AGENT_DISPOSITIONS, e, ag__disposition_label(d, e->disposition),
                       1);
    } else if (strcmp(event, "release_outcome") == 0) {
        ag__metric(d, STORE_M_AGENT_RELEASES, e, e->release_outcome, 1);
    } else {
        return;
    }
    waiting_gauge(d, e->queue);
}

void ag__changed(ag_desk_t *d, ag_entry_t *e, const char *event)
{
    count(d, e, event);
    persist(d, e);
    ag__feed(d, event, ag__entry_json(e, 0));
    ag__trim(d, e);
}

void ag__audit(ag_desk_t *d, const char *actor, const char *action, const ag_entry_t *e,
               json_t *detail)
{
    if (detail == NULL)
        detail = json_object();
    json_object_set_new(detail, "conversation_id", json_string(e->conv_id));
    json_object_set_new(detail, "queue", json_string(e->queue));
    admin__audit(d->admin, actor, action, e->id, detail);
}

/* Says text (a queue message with {position} and {wait_minutes}) to the
 * customer on their channel, and records it. pos is e's position when the
 * caller knows it, 0 to count it if the text asks (a walk of the entries). */
static void say_to_customer(ag_desk_t *d, ag_entry_t *e, const json_t *msg, size_t pos)
{
    const char *tmpl = ag__variant(msg, e->channel);
    if (tmpl == NULL || *tmpl == '\0')
        return;
    core_buf_t b;
    core_buf_init(&b, 4096);
    const ag_queue_t *q = ag__queue(d, e->queue);
    long long wait_min = q && q->max_wait_us ? (long long)(q->max_wait_us / 60000000) : 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (strncmp(p, "{position}", 10) == 0) {
            pos = pos ? pos : ag__position(d, e);
            core_buf_printf(&b, "%zu", pos);
            p += 9;
        } else if (strncmp(p, "{wait_minutes}", 14) == 0) {
            core_buf_printf(&b, "%lld", wait_min > 0 ? wait_min : 1);
            p += 13;
        } else {
            core_buf_append(&b, p, 1);
        }
    }
    if (b.data != NULL)
        ag__say(d, e, NULL, b.data, NULL);
    core_buf_dispose(&b);
}

static void release_turn_done(const runtime_turn_out_t *out)
{
    chan_desk_turn_done(out); /* the channel records and delivers the bot's words */
}

/* Runs a turn on e's conversation for the desk: it goes on at flow/node,
 * or, with end set, ends. Returns 0 or the runtime's error. */
static int desk_turn(ag_desk_t *d, const ag_entry_t *e, const char *flow, const char *node, int end,
                     core_err_t *err)
{
    runtime_t *rt = admin__runtime(d->admin);
    if (rt == NULL)
        return core_err_set(err, CORE_ERR_CLOSED, "the runtime is not running");
    runtime_turn_in_t in = {.key = e->key,
                            .channel = e->channel,
                            .event = BRAIN_EV_START,
                            .adapter_version = "agent",
                            .jump_flow = flow,
                            .jump_node = node,
                            .jump_end = end};
    return runtime_turn(rt, &in, release_turn_done, NULL, err);
}

/* Hands e back to the bot at flow/node (the queue's fallback when nobody is
 * available, or a person's release). Returns 0 or the runtime's error. */
int ag__release(ag_desk_t *d, ag_entry_t *e, const char *flow, const char *node, core_err_t *err)
{
    int rc = desk_turn(d, e, flow, node, 0, err);
    if (rc != 0)
        return rc;
    ag__set_state(d, e, AG_RELEASED);
    e->done_us = core_wall_us();
    return 0;
}

/* Ends the conversation for good: the person closed it. */
int ag__close_turn(ag_desk_t *d, ag_entry_t *e, core_err_t *err)
{
    return desk_turn(d, e, NULL, NULL, 1, err);
}

/* Nobody can take it: say so, then either keep it for a callback or give
 * it back to the bot. */
static void unavailable(ag_desk_t *d, ag_entry_t *e, const ag_queue_t *q, int again, size_t pos)
{
    say_to_customer(d, e, q->closed_message, pos);
    /* again: the bot handed it straight back after the last fallback; going
     * round would never end, so it waits for a callback instead */
    if (q->unavailable_bot && q->bot_flow && q->bot_node && !again) {
        core_err_t err = {0};
        if (ag__release(d, e, q->bot_flow, q->bot_node, &err) == 0) {
            free(e->agent);
            e->agent = core_xstrdup("-");
            ag__changed(d, e, "released");
            return;
        }
        LOG_WARN("event=unavailable_release_failed handoff=%s reason=%s", e->id, err.msg);
    }
}

static void enter(ag_desk_t *d, const runtime_observed_t *o)
{
    const brain_out_t *out = o->turn->out;
    ag_entry_t *e = find_key(d, o->turn->key);
    int again = 0;
    /* back to a person after a release whose outcome is still open (an
     * outcome, once known, is final: the entry is finished and no longer
     * found by its key) */
    if (e != NULL && e->state == AG_RELEASED && e->release_outcome == NULL) {
        again = e->agent != NULL && strcmp(e->agent, "-") == 0 &&
                core_wall_us() - e->done_us < 60 * 1000000LL;
        ag__set_outcome(d, e, "escalated_again");
        count(d, e, "release_outcome");
        persist(d, e);
    }
    ag__conf_load(d, 0);
    e = core_xcalloc(1, sizeof(*e));
    core_random_hex(e->id, 16);
    e->conv_id = core_xstrdup(o->conversation_id);
    e->key = core_xstrdup(o->turn->key);
    e->reason = core_xstrdup(out->handoff_reason ? out->handoff_reason : "unknown");
    e->queue = core_xstrdup(ag__route(d, e->reason, out->handoff_queue));
    e->channel = o->channel;
    e->entered_us = core_wall_us();
    e->summary = out->handoff_summary ? json_loads(out->handoff_summary, 0, NULL) : NULL;
    e->messages = json_array();
    e->next = d->entries;
    d->entries = e;
    d->n_entries++;
    ag__index_add(d, e);
    LOG_INFO("event=handoff_queued handoff=%s queue=%s reason=%s channel=%s", e->id, e->queue,
             e->reason, brain_channel_name(e->channel));
    ag__changed(d, e, "queued");
    ag__hook_send(d, e);
    const ag_queue_t *q = ag__queue(d, e->queue);
    size_t pos = ag__waiting(d, e->queue); /* the newest waits behind all the others */
    if (q != NULL && !ag__queue_open(q, e->entered_us))
        unavailable(d, e, q, again, pos);
    else if (q != NULL)
        say_to_customer(d, e, q->wait_message, pos);
}

static void on_turn(const runtime_observed_t *o, void *data)
{
    ag_desk_t *d = data;
    const brain_out_t *out = o->turn->out;
    if (out->status == BRAIN_ST_HANDOFF && o->before != BRAIN_ST_HANDOFF) {
        enter(d, o);
        return;
    }
    ag_entry_t *e = find_key(d, o->turn->key);
    if (e == NULL)
        return;
    if (out->status == BRAIN_ST_HANDOFF && o->event == BRAIN_EV_MESSAGE && e->state <= AG_CLAIMED) {
        ag__note(d, e, "customer", NULL, o->text, o->len, 0); /* the one row it changes */
        json_t *p = ag__entry_json(e, 0);
        json_object_set_new(p, "text", json_stringn(o->text, o->len));
        ag__feed(d, "customer_message", p);
    } else if (e->state == AG_RELEASED && out->status == BRAIN_ST_ENDED &&
               e->release_outcome == NULL) {
        ag__set_outcome(d, e, "bot_finished");
        ag__changed(d, e, "release_outcome");
    }
}

/* Max wait: an unclaimed conversation past its queue's limit gets the
 * unavailable treatment once. Many may pass it in one sweep: positions for
 * their messages come from one sort of the waiting entries (ag_ranks_t),
 * not from a walk of every entry for each. */
static void on_tick(uv_timer_t *t)
{
    ag_desk_t *d = t->data;
    int64_t now = core_wall_us();
    ag_ranks_t ranks = {0};
    for (ag_entry_t *e = d->entries; e != NULL; e = e->next) {
        if (e->state != AG_WAITING || e->overdue)
            continue;
        const ag_queue_t *q = ag__queue(d, e->queue);
        if (q == NULL || q->max_wait_us == 0 || now - e->entered_us < q->max_wait_us)
            continue;
        e->overdue = 1;
        LOG_INFO("event=handoff_overdue handoff=%s queue=%s", e->id, e->queue);
        ag__metric(d, STORE_M_AGENT_ABANDONED, e, NULL, 1);
        ag__feed(d, "overdue", ag__entry_json(e, 0));
        const char *tmpl = ag__variant(q->closed_message, e->channel);
        size_t pos = tmpl && strstr(tmpl, "{position}") ? ag__ranks_position(&ranks, d, e) : 0;
        unavailable(d, e, q, 0, pos);
        if (e->state == AG_WAITING)
            persist(d, e);
        else
            ag__ranks_left(&ranks, e); /* handed back to the bot */
    }
    ag__ranks_dispose(&ranks);
}

/* ---- restart: the open handoffs come back from the store ---------------- */

typedef struct restore_s {
    uv_work_t work;
    char path[4096];
    ag_saved_list_t saved; /* agents_restore.c */
    ag_desk_t *d;
} restore_t;

static void restore_work(uv_work_t *w)
{
    restore_t *r = w->data;
    core_err_t err = {0};
    store_db_t *db = store_db_open(r->path, &err);
    if (db == NULL)
        return;
    if (ag__saved_read(db, &r->saved, &err) != 0)
        LOG_WARN("event=handoffs_restore_failed reason=%s", err.msg);
    store_db_close(db);
}

/* Lists the handoff s as it was saved, unless the desk knows better (the
 * entry, its key or its conversation listed since); returns it, or NULL. A
 * released one is open again to the outcome its conversation gives it
 * (on_turn): the bot finishing it, or a person again. */
static ag_entry_t *restore_one(ag_desk_t *d, const ag_saved_t *s)
{
    const char *id = json_string_value(json_object_get(s->handoff, "id"));
    const char *key = json_string_value(json_object_get(s->handoff, "key"));
    /* a conversation listed already was handed off since the rows were
     * read: the row read is its earlier handoff, superseded */
    const char *conv = json_string_value(json_object_get(s->handoff, "conversation_id"));
    if (id == NULL || key == NULL || ag__find(d, id) || find_key(d, key) ||
        (conv != NULL && ag__find(d, conv)))
        return NULL;
    ag_entry_t *e = ag__entry_from_saved(s);
    if (e == NULL)
        return NULL;
    e->next = d->entries;
    d->entries = e;
    d->n_entries++;
    ag__index_add(d, e);
    if (e->hook == AG_HOOK_PENDING) /* one given up stays so (docs/agents.md) */
        ag__hook_send(d, e);
    return e;
}

static void restore_done(uv_work_t *w, int status)
{
    restore_t *r = w->data;
    ag_desk_t *d = r->d;
    size_t open = 0, released = 0;
    for (size_t i = 0; status == 0 && d->started && i < r->saved.n; i++) {
        const ag_entry_t *e = restore_one(d, &r->saved.v[i]);
        if (e != NULL && e->state == AG_RELEASED)
            released++;
        else if (e != NULL)
            open++;
    }
    waiting_gauges(d);
    d->restored = 1;
    LOG_INFO("event=handoffs_restored open=%zu released=%zu", open, released);
    ag__saved_dispose(&r->saved);
    free(r);
}

static void restore_start(ag_desk_t *d)
{
    if (admin__store(d->admin) == NULL)
        return;
    restore_t *r = core_xcalloc(1, sizeof(*r));
    store_options_t so;
    store_options_from_config(d->admin->host.cfg, &so, r->path, sizeof(r->path));
    r->d = d;
    r->work.data = r;
    if (uv_queue_work(d->admin->host.loop, &r->work, restore_work, restore_done) != 0)
        free(r);
}

/* ---- lifecycle -------------------------------------------------------------- */

int admin__agents_register(admin_t *a, net_router_t *r, core_err_t *err)
{
    ag_desk_t *d = &the_desk;
    memset(d, 0, sizeof(*d));
    d->admin = a;
    int rc = ag__api_register(d, r, err);
    if (rc == 0 && early_rt != NULL)
        admin_agents_attach(early_rt);
    early_rt = NULL;
    return rc;
}

void admin_agents_attach(runtime_t *rt)
{
    ag_desk_t *d = &the_desk;
    if (d->admin == NULL) { /* the daemon starts the runtime before serving */
        early_rt = rt;
        return;
    }
    if (rt == NULL)
        return;
    runtime_set_observer(rt, on_turn, d);
    if (d->started)
        return;
    net_client_options_t co = {.max_transfers = 256};
    core_err_t err = {0};
    if (net_client_new(d->admin->host.loop, &co, &d->http, &err) != 0) {
        LOG_ERROR("event=agents_client_failed reason=%s", err.msg);
        d->http = NULL;
    }
    uv_timer_init(d->admin->host.loop, &d->tick);
    d->tick.data = d;
    uv_timer_start(&d->tick, on_tick, AG_TICK_MS, AG_TICK_MS);
    uv_unref((uv_handle_t *)&d->tick);
    d->started = 1;
    ag__conf_load(d, 0);
    restore_start(d);
}

int admin_agents_check(const char *queues_file, core_diags_t *diags)
{
    return ag__conf_check(queues_file, diags);
}

void admin_agents_reload(void)
{
    ag_desk_t *d = &the_desk;
    if (d->started)
        ag__conf_load(d, 1);
    admin__agents_tokens_changed(); /* admin.tokens may have lost a feed's token */
}

void admin_agents_stop(void)
{
    ag_desk_t *d = &the_desk;
    if (!d->started)
        return;
    d->started = 0;
    uv_timer_stop(&d->tick);
    uv_close((uv_handle_t *)&d->tick, NULL);
    ag__hook_close(d);
    if (d->http != NULL)
        net_client_close(d->http, NULL, NULL);
    d->http = NULL;
}
