/* Reads on the libuv thread pool: each work item borrows a read connection
 * from the store's small pool, runs the blocking query there, and its
 * callback runs on the loop with an owned result. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

typedef enum { W_STATE, W_REPORT, W_LIST, W_SHOW, W_SHOW_LATEST, W_CLIENT_ID } work_kind_t;

typedef struct {
    uv_work_t req;
    store_t *s;
    work_kind_t kind;
    char *id; /* owned: conversation id (W_STATE, W_SHOW), or key (W_SHOW_LATEST, W_CLIENT_ID) */
    char *client_id; /* owned: W_CLIENT_ID's message id */
    store_report_query_t report;
    char *message_costs; /* owned copy of report.message_costs */
    store_list_query_t list;
    char *channel, *flow, *outcome; /* owned copies for list */
    store_state_cb state_cb;
    store_json_cb json_cb;
    store_found_cb found_cb;
    void *data;
    int status;
    char *state; /* W_STATE result, handed to the callback */
    int active;
    int found;      /* W_CLIENT_ID result */
    json_t *result; /* JSON result, handed to the callback */
    core_err_t err;
} work_t;

static void work_run(uv_work_t *req)
{
    work_t *w = req->data;
    if (store_in_memory(w->s)) {
        /* Only the writer's connection sees a :memory: database (a benchmark
         * mode): nothing is saved to restore, nothing to report on. */
        w->status =
            w->kind == W_STATE || w->kind == W_CLIENT_ID
                ? core_err_set(&w->err, CORE_ERR_NOT_FOUND, "a :memory: store keeps nothing saved")
                : core_err_set(&w->err, CORE_ERR_UNSUPPORTED, "a :memory: store cannot be queried");
        return;
    }
    store_db_t *db = store__reader_get(w->s, &w->err);
    if (db == NULL) {
        w->status = w->err.code ? w->err.code : CORE_ERR_IO;
        return;
    }
    switch (w->kind) {
    case W_STATE:
        w->status = store_db_state_load(db, w->id, &w->state, &w->active, &w->err);
        break;
    case W_REPORT:
        w->status = store_db_report(db, &w->report, &w->result, &w->err);
        break;
    case W_LIST:
        w->status = store_db_conversations(db, &w->list, &w->result, &w->err);
        break;
    case W_SHOW:
        w->status = store_db_transcript(db, w->id, &w->result, &w->err);
        break;
    case W_SHOW_LATEST:
        w->status = store_db_transcript_latest(db, w->id, &w->result, &w->err);
        break;
    case W_CLIENT_ID:
        w->status = store_db_client_id_recorded(db, w->id, w->client_id, &w->found, &w->err);
        break;
    }
    store__reader_put(w->s, db);
}

static void work_done(uv_work_t *req, int status)
{
    work_t *w = req->data;
    if (status != 0 && w->status == 0) /* cancelled */
        w->status = core_err_set(&w->err, CORE_ERR_CLOSED, "read cancelled");
    if (w->kind == W_STATE)
        w->state_cb(w->status, w->state, w->active, w->data);
    else if (w->kind == W_CLIENT_ID)
        w->found_cb(w->status, w->status == 0 && w->found, w->data);
    else
        w->json_cb(w->status, w->result, w->status ? w->err.msg : NULL, w->data);
    store_t *s = w->s;
    free(w->id), free(w->client_id), free(w->message_costs), free(w->channel), free(w->flow),
        free(w->outcome);
    free(w);
    store__inflight(s, -1);
}

static work_t *work_new(store_t *s, work_kind_t kind, void *data)
{
    work_t *w = core_xcalloc(1, sizeof(*w));
    w->req.data = w;
    w->s = s;
    w->kind = kind;
    w->data = data;
    return w;
}

static int submit(work_t *w)
{
    int rc = uv_queue_work(store__loop(w->s), &w->req, work_run, work_done);
    if (rc != 0) {
        free(w->id), free(w->client_id), free(w->message_costs), free(w->channel), free(w->flow),
            free(w->outcome);
        free(w);
        return rc;
    }
    store__inflight(w->s, 1);
    return 0;
}

int store_state_load_async(store_t *s, const char *conversation_id, store_state_cb cb, void *data)
{
    work_t *w = work_new(s, W_STATE, data);
    w->id = core_xstrdup(conversation_id);
    w->state_cb = cb;
    return submit(w);
}

int store_report_async(store_t *s, const store_report_query_t *q, store_json_cb cb, void *data)
{
    work_t *w = work_new(s, W_REPORT, data);
    w->report = *q;
    w->message_costs = core_xstrdup_opt(q->message_costs);
    w->report.message_costs = w->message_costs;
    w->json_cb = cb;
    return submit(w);
}

int store_conversations_async(store_t *s, const store_list_query_t *q, store_json_cb cb, void *data)
{
    work_t *w = work_new(s, W_LIST, data);
    w->list = *q;
    w->list.channel = w->channel = core_xstrdup_opt(q->channel);
    w->list.flow = w->flow = core_xstrdup_opt(q->flow);
    w->list.outcome = w->outcome = core_xstrdup_opt(q->outcome);
    w->json_cb = cb;
    return submit(w);
}

int store_transcript_async(store_t *s, const char *conversation_id, store_json_cb cb, void *data)
{
    work_t *w = work_new(s, W_SHOW, data);
    w->id = core_xstrdup(conversation_id);
    w->json_cb = cb;
    return submit(w);
}

int store_transcript_latest_async(store_t *s, const char *key, store_json_cb cb, void *data)
{
    work_t *w = work_new(s, W_SHOW_LATEST, data);
    w->id = core_xstrdup(key);
    w->json_cb = cb;
    return submit(w);
}

int store_client_id_recorded_async(store_t *s, const char *key, const char *client_id,
                                   store_found_cb cb, void *data)
{
    work_t *w = work_new(s, W_CLIENT_ID, data);
    w->id = core_xstrdup(key);
    w->client_id = core_xstrdup(client_id);
    w->found_cb = cb;
    return submit(w);
}
