/* A channel asks for a conversation's durable record (its transcript rows,
 * events and outcome) when it does not hold the conversation in memory:
 * after a restart or an eviction the store, not memory, says whether a
 * conversation exists. Read on the thread pool by the store. Kept apart from
 * runtime_store.c so that what links the turn pipeline alone (unit tests
 * with a fake store) does not pull in the store's readers. */
#define LOG_MODULE "runtime"
#include <jansson.h>
#include <stdlib.h>

#include "runtime/runtime_int.h"

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
    int rc = store_transcript_async(rt->opts.store, key, on_record, ctx);
    if (rc != 0) {
        free(ctx);
        return rc;
    }
    rt->store_pending++;
    return 0;
}
