/* GET /metrics: the Prometheus text exposition (format 0.0.4). The store's
 * registry (turns, latency, outcomes, ... by channel and flow) is rendered
 * first; then the figures the process, the runtime, the store writer and the
 * HTTP server keep in memory. Nothing here touches SQLite or the disk, so a
 * scrape costs the same whether the store is healthy or failing.
 *
 * Whether a scrape needs an admin token is admin.metrics_auth: "open",
 * "token", or "auto" (the default): open while chorusd listens on loopback
 * addresses only (listen and, when set, tls.listen: both serve /metrics), a
 * token otherwise, so a daemon exposed beyond the machine never publishes
 * its figures by accident. */
#define LOG_MODULE "admin"
#include <string.h>

#include "admin/admin_int.h"
#include "chorus/channels.h"

/* 1 if the host part of listen ("ADDR:PORT") is a loopback address. */
static int listen_is_loopback(const char *listen)
{
    char host[64];
    int port;
    if (listen == NULL || core_config_parse_listen(listen, host, sizeof(host), &port) != 0)
        return 0;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static int metrics_need_token(const core_config_t *cfg)
{
    const char *mode = cfg->admin.metrics_auth;
    if (strcmp(mode, "token") == 0)
        return 1;
    if (strcmp(mode, "open") == 0)
        return 0;
    int tls = cfg->tls.listen != NULL && cfg->tls.listen[0] != '\0';
    return !listen_is_loopback(cfg->listen) || (tls && !listen_is_loopback(cfg->tls.listen));
}

static void family(core_buf_t *b, const char *name, const char *type, const char *help,
                   double value)
{
    core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name,
                    value);
}

static void render_process(const admin_t *a, core_buf_t *b)
{
    size_t rss = 0;
    uv_rusage_t ru;
    if (uv_resident_set_memory(&rss) == 0)
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               (double)rss);
    if (uv_getrusage(&ru) == 0)
        family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent.",
               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    family(b, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.",
           (double)a->start_wall_us / 1e6);
    core_buf_printf(b,
                    "# HELP chorus_build_info The running chorusd's version.\n"
                    "# TYPE chorus_build_info gauge\nchorus_build_info{version=\"%s\"} 1\n",
                    CHORUS_VERSION);
}

static void render_runtime(runtime_t *rt, core_buf_t *b)
{
    runtime_stats_t s;
    runtime_stats(rt, &s);
    family(b, "chorus_runtime_conversations", "gauge", "Conversations live in memory.",
           (double)s.conversations);
    family(b, "chorus_runtime_conversation_bytes", "gauge",
           "Memory held by live conversations, bytes.", (double)s.conversation_bytes);
    family(b, "chorus_runtime_turns_in_flight", "gauge", "Turns started and not yet answered.",
           (double)s.turns_in_flight);
    family(b, "chorus_runtime_turns_completed_total", "counter", "Turns the runtime completed.",
           (double)s.turns);
    family(b, "chorus_runtime_effects_total", "counter",
           "HTTP and LLM requests performed, retries included.", (double)s.effects);
    family(b, "chorus_runtime_effect_errors_total", "counter",
           "Effects whose final result was an error or a 5xx.", (double)s.effect_errors);
    family(b, "chorus_runtime_effect_retries_total", "counter", "Effect attempts after the first.",
           (double)s.retries);
    family(b, "chorus_runtime_idle_timeouts_total", "counter",
           "Conversations ended by their idle timeout.", (double)s.timeouts);
    family(b, "chorus_runtime_evictions_total", "counter",
           "Idle durable conversations dropped from a full table.", (double)s.evictions);
}

static void render_store(store_t *st, core_buf_t *b)
{
    store_stats_t s;
    store_get_stats(st, &s);
    family(b, "chorus_store_turns_committed_total", "counter", "Turns committed to the store.",
           (double)s.turns);
    family(b, "chorus_store_commits_total", "counter", "Store transactions committed.",
           (double)s.commits);
    family(b, "chorus_store_max_group_batches", "gauge",
           "Most batches committed in one transaction.", (double)s.max_group);
    family(b, "chorus_store_failed_batches_total", "counter", "Batches completed with an error.",
           (double)s.failed);
    family(b, "chorus_store_prune_chunks_total", "counter", "Retention chunks run.",
           (double)s.prunes);
}

void admin__on_metrics(net_req_t *req, void *data)
{
    admin_t *a = data;
    if (metrics_need_token(a->host.cfg) && admin__authorize(a, req, ADMIN_ROLE_VIEWER, NULL) != 0)
        return;
    core_buf_t body;
    core_buf_init(&body, 16 << 20);
    store_metrics_t *m = a->host.metrics != NULL ? *a->host.metrics : NULL;
    if (m != NULL)
        store_metrics_render(m, &body);
    render_process(a, &body);
    runtime_t *rt = admin__runtime(a);
    if (rt != NULL)
        render_runtime(rt, &body);
    store_t *st = admin__store(a);
    if (st != NULL)
        render_store(st, &body);
    net_server_t *srv = a->host.server != NULL ? *a->host.server : NULL;
    if (srv != NULL)
        family(&body, "chorus_http_connections", "gauge", "Open client connections.",
               (double)net_server_connections(srv));
    chan_chat_stats_t cs;
    chan_chat_stats(&cs);
    family(&body, "chorus_chat_ws_followers_replaced_total", "counter",
           "Chat WebSockets closed for a newer follower of their conversation "
           "(chat.max_followers).",
           (double)cs.ws_followers_replaced);
    family(&body, "chorus_chat_conversations", "gauge", "Chat conversations held in memory.",
           (double)cs.conversations);
    family(&body, "chorus_chat_history_bytes", "gauge",
           "Bytes of the transcript entries chat conversations hold in memory "
           "(chat.history_bytes).",
           (double)cs.history_bytes);
    family(&body, "chorus_chat_evictions_total", "counter",
           "Idle chat conversations forgotten for chat.max_conversations or chat.history_bytes.",
           (double)cs.evictions);
    family(&body, "chorus_admin_auth_denied_total", "counter", "Admin requests refused with 401.",
           (double)a->denied);
    family(&body, "chorus_admin_forbidden_total", "counter",
           "Admin requests refused with 403 (role too low).", (double)a->forbidden);
    family(&body, "chorus_admin_audit_lost_total", "counter",
           "Audit rows the store could not take (closed or busy).", (double)a->audit_lost);
    net_resp_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", body.data ? body.data : "",
                  body.len);
    core_buf_dispose(&body);
}
