/* Restore, beyond the lazy read of one conversation's state before its turn
 * (runtime_store.c): a channel asks for a conversation's durable record (its
 * transcript rows, events and outcome) when it does not hold it in memory --
 * after a restart or an eviction the store, not memory, says whether a
 * conversation exists -- and at start the conversations the store holds as
 * active come back into memory so their idle timeouts run. Reads happen on
 * the thread pool. Kept apart from runtime_store.c so that what links the
 * turn pipeline alone (unit tests with a fake store) does not pull in the
 * store's readers. */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_envs.h"

typedef struct record_ctx_s {
    runtime_t *rt;
    runtime_record_cb cb;
    void *data;
} record_ctx_t;

static void on_record(int status, json_t *result, const char *errmsg, void *data)
{
    record_ctx_t *ctx = data;
    runtime_t *rt = ctx->rt;
    rt->store_pending--;
    if (rt->closing && status == 0) {
        json_decref(result);
        result = NULL;
        status = CORE_ERR_CLOSED;
    }
    if (status != 0 && status != CORE_ERR_NOT_FOUND && status != CORE_ERR_CLOSED)
        LOG_WARN("event=record_read_failed error=%s reason=\"%s\"", core_strerror(status),
                 errmsg ? errmsg : "");
    ctx->cb(status, status == 0 ? result : NULL, ctx->data);
    if (status != 0)
        json_decref(result);
    free(ctx);
    rt_maybe_free(rt);
}

int runtime_conversation_record(runtime_t *rt, const char *key, runtime_record_cb cb, void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    if (rt->opts.store == NULL)
        return CORE_ERR_NOT_FOUND;
    record_ctx_t *ctx = core_xmalloc(sizeof(*ctx));
    *ctx = (record_ctx_t){.rt = rt, .cb = cb, .data = data};
    int rc = store_transcript_latest_async(rt->opts.store, key, on_record, ctx);
    if (rc != 0) {
        free(ctx);
        return rc;
    }
    rt->store_pending++;
    return 0;
}

typedef struct found_ctx_s {
    runtime_t *rt;
    runtime_found_cb cb;
    void *data;
} found_ctx_t;

static void on_found(int status, int found, void *data)
{
    found_ctx_t *ctx = data;
    runtime_t *rt = ctx->rt;
    rt->store_pending--;
    if (rt->closing && status == 0)
        status = CORE_ERR_CLOSED;
    if (status != 0 && status != CORE_ERR_CLOSED)
        LOG_WARN("event=client_id_read_failed error=%s", core_strerror(status));
    ctx->cb(status, status == 0 && found, ctx->data);
    free(ctx);
    rt_maybe_free(rt);
}

int runtime_client_id_recorded(runtime_t *rt, const char *key, const char *client_id,
                               runtime_found_cb cb, void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    if (rt->opts.store == NULL)
        return CORE_ERR_NOT_FOUND;
    found_ctx_t *ctx = core_xmalloc(sizeof(*ctx));
    *ctx = (found_ctx_t){.rt = rt, .cb = cb, .data = data};
    int rc = store_client_id_recorded_async(rt->opts.store, key, client_id, on_found, ctx);
    if (rc != 0) {
        free(ctx);
        return rc;
    }
    rt->store_pending++;
    return 0;
}

/* ---- the active conversations, at start ---------------------------------- */

/* The daemon serves while the states are read and applied, so a key may be
 * reached by a turn meanwhile: loaded from the store, answered, maybe ended
 * and swept. The state this restore read can then be older than the store's,
 * and putting it back would resurrect a conversation that has moved on (its
 * timeout turn then collides with rows already stored). So from the moment
 * the restore is queued until its last state is applied, every key the
 * runtime drops from memory is noted (rt->restore_seen, rt_conv_drop), and
 * neither those nor keys in memory are restored: the runtime has the newer
 * word on them. */

/* States applied per slice; the loop runs between slices (each costs about
 * 10 us, so a slice holds the loop some 10 ms), as the idle sweep does. */
#define RESTORE_SLICE 1024

typedef struct active_s {
    char *key;
    char *state;
} active_t;

typedef struct restore_work_s {
    struct restore_work_s *later; /* rt->restore_deferred */
    uv_work_t req;
    uv_timer_t slice; /* the next slice, once the states are read */
    int timer_open;
    runtime_t *rt;
    char *path;
    size_t max;
    active_t *items; /* owned; those before next are applied (and freed) */
    size_t n, cap, next;
    size_t restored;
    int status;
    core_err_t err;
    runtime_restored_cb cb;
    void *data;
} restore_work_t;

static void collect(const char *id, const char *state_json, void *arg)
{
    restore_work_t *w = arg;
    if (w->n >= w->max)
        return;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->items = core_xrealloc(w->items, w->cap * sizeof(*w->items));
    }
    w->items[w->n++] = (active_t){core_xstrdup(id), core_xstrdup(state_json)};
}

static void restore_run(uv_work_t *req)
{
    restore_work_t *w = req->data;
    store_db_t *db = store_db_open(w->path, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    w->status = store_db_active_states(db, collect, w, &w->err);
    store_db_close(db);
}

/* One saved state into the table, as a turn's lazy read would have put it,
 * unless the runtime knows the key better (in memory, or dropped since the
 * restore was queued). */
static int restore_one(runtime_t *rt, const active_t *a)
{
    if (rt_table_find(&rt->table, a->key) != NULL || rt->table.len >= rt->opts.max_conversations)
        return 0;
    if (json_object_get(rt->restore_seen, a->key) != NULL)
        return 0;
    rt_conv_t *conv = rt_table_add(&rt->table, a->key);
    rt_conv_bind(rt, conv, rt->envs->def);
    brain_conv_init(&conv->state, conv->fs, BRAIN_CH_DEFAULT, core_wall_us());
    if (rt_store_apply(rt, conv, a->state, 1) < 0) { /* 1: on its way to its pinned set */
        rt_table_remove(&rt->table, conv);           /* its next message starts afresh, as before */
        return 0;
    }
    rt_table_account(&rt->table, conv);
    return 1;
}

static void restore_free(restore_work_t *w)
{
    runtime_t *rt = w->rt;
    for (size_t i = w->next; i < w->n; i++) {
        free(w->items[i].key);
        free(w->items[i].state);
    }
    free(w->items);
    free(w->path);
    free(w);
    rt->store_pending--;
    rt_maybe_free(rt);
}

static void on_slice_closed(uv_handle_t *h)
{
    restore_free(h->data);
}

/* The restore is over (done, failed or cut short by the close): the
 * runtime stops noting keys once no other is pending, and cb hears. */
static void restore_finish(restore_work_t *w)
{
    runtime_t *rt = w->rt;
    if (--rt->restoring == 0) {
        json_decref(rt->restore_seen);
        rt->restore_seen = NULL;
    }
    if (w->status == 0)
        LOG_INFO("event=conversations_restored active=%zu restored=%zu", w->n, w->restored);
    else if (w->status != CORE_ERR_CLOSED)
        LOG_WARN("event=conversations_restore_failed error=%s reason=\"%s\"",
                 core_strerror(w->status), w->err.msg);
    if (w->cb != NULL)
        w->cb(w->status, w->restored, w->data);
    if (w->timer_open)
        uv_close((uv_handle_t *)&w->slice, on_slice_closed);
    else
        restore_free(w);
}

/* Applies the next slice; 1 when every state is applied. */
static int apply_slice(restore_work_t *w)
{
    size_t end = w->n - w->next > RESTORE_SLICE ? w->next + RESTORE_SLICE : w->n;
    for (; w->next < end; w->next++) {
        active_t *a = &w->items[w->next];
        w->restored += (size_t)restore_one(w->rt, a);
        free(a->key);
        free(a->state);
    }
    return w->next == w->n;
}

static void on_slice(uv_timer_t *h)
{
    restore_work_t *w = h->data;
    if (w->rt->closing)
        w->status = CORE_ERR_CLOSED;
    if (w->status != 0 || apply_slice(w))
        restore_finish(w);
    else
        uv_timer_start(&w->slice, on_slice, 1, 0); /* the loop's other work first */
}

static void restore_done(uv_work_t *req, int status)
{
    restore_work_t *w = req->data;
    runtime_t *rt = w->rt;
    if (status != 0 && w->status == 0)
        w->status = CORE_ERR_CLOSED; /* cancelled */
    if (rt->closing)
        w->status = CORE_ERR_CLOSED;
    if (w->status != 0 || w->n <= RESTORE_SLICE) {
        if (w->status == 0)
            apply_slice(w);
        restore_finish(w);
        return;
    }
    uv_timer_init(rt->loop, &w->slice);
    w->slice.data = w;
    w->timer_open = 1;
    on_slice(&w->slice);
}

/* Every restored conversation is bound to a set, so the read waits until
 * the default environment has one: with production rebuilt from the store
 * ("promoted" mode) its compile may still run when the daemon asks, after
 * the flows directory's load. Called when the default environment gets a
 * set, and at the close (the waiting restores end with CORE_ERR_CLOSED). */
static void restore_poke(runtime_t *rt)
{
    while (rt->restore_deferred != NULL && (rt->closing || rt->fs != NULL)) {
        restore_work_t *w = rt->restore_deferred;
        rt->restore_deferred = w->later;
        w->later = NULL;
        if (rt->closing)
            w->status = CORE_ERR_CLOSED;
        else if (uv_queue_work(rt->loop, &w->req, restore_run, restore_done) != 0)
            w->status = CORE_ERR_IO;
        else
            continue;
        restore_finish(w);
    }
}

int runtime_restore_active(runtime_t *rt, const char *store_path, runtime_restored_cb cb,
                           void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    if (rt->opts.store == NULL || store_path == NULL)
        return CORE_ERR_NOT_FOUND;
    restore_work_t *w = core_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->rt = rt;
    w->path = core_xstrdup(store_path);
    w->max = rt->opts.max_conversations;
    w->cb = cb;
    w->data = data;
    if (rt->fs == NULL) {
        LOG_INFO("event=conversations_restore_deferred reason=\"%s has no flows yet\"",
                 rt_env_name(rt->envs->def));
        w->later = rt->restore_deferred;
        rt->restore_deferred = w;
        rt->restore_poke = restore_poke;
    } else if (uv_queue_work(rt->loop, &w->req, restore_run, restore_done) != 0) {
        free(w->path);
        free(w);
        return CORE_ERR_IO;
    }
    rt->store_pending++;
    if (rt->restoring++ == 0)
        rt->restore_seen = json_object();
    return 0;
}
