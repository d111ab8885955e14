/* A runtime's construction, its stats, and its shutdown: runtime_close()
 * stops the timers, fails every turn still alive, and frees the runtime
 * once its handles, jobs, store batches and HTTP client are all done
 * (rt_maybe_free). Contract: include/chorus/runtime.h. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <time.h>

#include "runtime/runtime_envs.h"

int runtime_new(uv_loop_t *loop, const runtime_options_t *opts, runtime_t **out, core_err_t *err)
{
    runtime_t *rt = core_xcalloc(1, sizeof(*rt));
    rt->loop = loop;
    if (opts)
        rt->opts = *opts;
    rt->flows_dir = core_xstrdup(rt->opts.flows_dir ? rt->opts.flows_dir : "flows");
    rt->data_dir = core_xstrdup_opt(rt->opts.data_dir);
    rt->guard_file = core_xstrdup_opt(rt->opts.guard_file);
    if (rt->opts.max_conversations == 0)
        rt->opts.max_conversations = 100000;
    if (rt->opts.max_queued_turns == 0)
        rt->opts.max_queued_turns = 8;
    if (rt->opts.sweep_interval_ms == 0)
        rt->opts.sweep_interval_ms = 1000;
    if (rt->opts.max_effect_bytes == 0)
        rt->opts.max_effect_bytes = 1024 * 1024;
    if (rt->opts.max_backoff_ms == 0)
        rt->opts.max_backoff_ms = 30000;
    net_client_options_t nopts = {.max_transfers = rt->opts.max_transfers,
                                  .default_max_response = rt->opts.max_effect_bytes};
    int rc = net_client_new(loop, &nopts, &rt->http, err);
    if (rc != 0) {
        free(rt->flows_dir);
        free(rt->data_dir);
        free(rt->guard_file);
        free(rt);
        return rc;
    }
    rt->http_open = 1;
    tzset(); /* reads the zone file once now, not from the loop later */
    rt_table_init(&rt->table);
    rt->ref_secs = -1;
    uv_idle_init(loop, &rt->kick);
    rt->kick.data = rt;
    uv_timer_init(loop, &rt->sweep);
    rt->sweep.data = rt;
    rt->open_handles = 2;
    rt->sweep_origin_ms = uv_now(loop);
    uv_timer_start(&rt->sweep, rt_on_sweep, rt->opts.sweep_interval_ms, rt->opts.sweep_interval_ms);
    rt->next_version = 1;
    rt->envs = rt_envs_new(&rt->opts);
    *out = rt;
    return 0;
}

const brain_flowset_t *runtime_flowset(const runtime_t *rt)
{
    return rt->fs;
}

void runtime_stats(const runtime_t *rt, runtime_stats_t *out)
{
    *out = rt->stats;
    out->conversations = rt->table.len;
    out->conversation_bytes = rt->table.bytes;
}

void rt_maybe_free(runtime_t *rt)
{
    if (!rt->closing || rt->open_handles > 0 || rt->loading || rt->jobs > 0 || rt->http_open ||
        rt->store_pending > 0)
        return;
    runtime_closed_cb closed = rt->closed;
    void *data = rt->closed_data;
    free(rt->flows_dir);
    free(rt->data_dir);
    free(rt->guard_file);
    free(rt->pin_store_path);
    rt_senders_free(rt->senders);
    rt_envs_free(rt->envs);
    free(rt);
    if (closed)
        closed(data);
}

void rt_handle_closed(uv_handle_t *h)
{
    runtime_t *rt = h->data;
    rt->open_handles--;
    rt_maybe_free(rt);
}

static void on_http_closed(void *data)
{
    runtime_t *rt = data;
    rt->http_open = 0;
    rt_maybe_free(rt);
}

void runtime_close(runtime_t *rt, runtime_closed_cb closed, void *data)
{
    if (rt == NULL || rt->closing)
        return;
    rt->closing = 1;
    rt->closed = closed;
    rt->closed_data = data;
    if (rt->restore_poke != NULL) /* a restore still waiting for flows ends */
        rt->restore_poke(rt);
    uv_timer_stop(&rt->sweep);
    uv_idle_stop(&rt->kick);
    /* Effects in flight: their callbacks fail their turns with CORE_ERR_CLOSED. */
    net_client_close(rt->http, on_http_closed, rt);
    /* Turns queued, ready or waiting to retry. */
    while (rt->alive != NULL)
        rt_turn_fail(rt->alive, CORE_ERR_CLOSED, "runtime is shutting down");
    rt->ready_head = rt->ready_tail = NULL;
    LOG_INFO("event=runtime_closed conversations=%zu turns=%llu", rt->table.len,
             (unsigned long long)rt->stats.turns);
    rt_table_dispose(&rt->table);
    brain_flowset_unref(rt->fs);
    rt->fs = NULL;
    uv_close((uv_handle_t *)&rt->kick, rt_handle_closed);
    uv_close((uv_handle_t *)&rt->sweep, rt_handle_closed);
}
