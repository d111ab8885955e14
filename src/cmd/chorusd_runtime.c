/* chorusd's store and turn runtime: validates the flows for --check, opens
 * the store and loads the flows at start (training on the thread pool),
 * reloads them on SIGHUP, and on shutdown closes the runtime and then the
 * store. Channel routes reach the runtime through daemon_runtime(). */
#define LOG_MODULE "chorusd"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chorus/admin.h"
#include "chorus/channels.h"
#include "chorus/core.h"
#include "chorus/guard.h"
#include "chorus/store.h"
#include "cmd/chorusd_runtime.h"

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The guardrails file in force: NULL (built-in defaults) when it is missing. */
static const char *guard_file(const daemon_t *d)
{
    struct stat st;
    const char *f = d->cfg.guardrails_file;
    return f != NULL && f[0] != '\0' && stat(f, &st) == 0 ? f : NULL;
}

/* Compiles the guardrails file alone, so a bad one stops --check and start
 * with its file:line:col problems even when there are no flows. */
static int guard_check(const daemon_t *d, core_diags_t *diags)
{
    const char *f = guard_file(d);
    if (f == NULL)
        return 0;
    char *text = NULL;
    size_t len = 0;
    core_err_t err = {0};
    int rc = core_file_read(f, 16 * 1024 * 1024, &text, &len, &err);
    if (rc != 0) {
        core_diags_add(diags, f, 0, 0, "", "%s", err.msg);
        return rc;
    }
    guard_rules_t *rules = NULL;
    rc = guard_rules_load(text, len, f, &rules, diags);
    guard_rules_free(rules);
    free(text);
    return rc;
}

int daemon_runtime_check(daemon_t *d, core_diags_t *diags)
{
    if (guard_check(d, diags) != 0)
        return CORE_ERR_INVALID;
    if (admin_agents_check(d->cfg.agents.queues_file, diags) != 0)
        return CORE_ERR_INVALID;
    if (!dir_exists(d->cfg.flows_dir)) {
        fprintf(stderr, "chorusd: warning: flows directory %s does not exist; no flows to check\n",
                d->cfg.flows_dir);
        return 0;
    }
    return runtime_flows_check(d->cfg.flows_dir, guard_file(d), diags);
}

static void log_problems(const core_diags_t *diags)
{
    char line[2048], q[1100];
    for (size_t i = 0; i < diags->len; i++)
        LOG_ERROR("event=flow_problem problem=%s",
                  core_log_quote(q, sizeof(q),
                                 core_diag_format(&diags->items[i], line, sizeof(line)), (size_t)-1,
                                 1000));
}

static void on_restored(int status, size_t restored, void *data)
{
    if (status != 0)
        LOG_WARN("event=restore status=failed reason=%s", core_strerror(status));
    else
        LOG_INFO("event=restore status=done conversations=%zu", restored);
}

static void on_loaded(runtime_t *rt, int rc, runtime_trigger_t trigger, const core_diags_t *diags,
                      void *data)
{
    daemon_t *d = data;
    if (rc == CORE_ERR_CLOSED)
        return;
    if (rc != 0) {
        log_problems(diags);
        if (!d->flows_loaded && trigger == RUNTIME_TRIGGER_START) {
            LOG_ERROR("event=start_failed reason=\"the flows do not load\" problems=%zu",
                      diags->len);
            d->exit_code = 1;
            uv_kill(getpid(), SIGTERM); /* the usual drain path, then exit 1 */
        }
        return;
    }
    if (!d->flows_loaded && d->store != NULL && !store_in_memory(d->store)) {
        /* Conversations active at the last stop come back now, so their idle
         * timeouts run even if nobody writes to them again. (A ":memory:"
         * store begins empty.) */
        int rrc = runtime_restore_active(rt, store_path(d->store), on_restored, d);
        if (rrc != 0)
            LOG_WARN("event=restore status=skipped reason=%s", core_strerror(rrc));
    }
    d->flows_loaded = 1;
}

/* Creates data_dir (and its parents) if missing: the store and the router's
 * model cache live there. Blocking, start-up only. */
static int make_dirs(const char *path, core_err_t *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return core_err_set(err, CORE_ERR_INVALID, "data_dir: bad path \"%s\"", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return core_err_set(err, CORE_ERR_IO, "data_dir: cannot create %s: %s", buf,
                                strerror(errno));
        buf[i] = c;
    }
    return dir_exists(path)
               ? 0
               : core_err_set(err, CORE_ERR_IO, "data_dir: %s is not a directory", path);
}

static int open_store(daemon_t *d, core_err_t *err)
{
    int rc = make_dirs(d->cfg.data_dir, err);
    if (rc != 0)
        return rc;
    store_options_t so;
    char path[4096];
    store_options_from_config(&d->cfg, &so, path, sizeof(path));
    d->store = store_open(d->loop, &so, err);
    if (d->store == NULL)
        return err->code ? err->code : CORE_ERR_IO;
    d->metrics = store_metrics_new();
    store_set_metrics(d->store, d->metrics);
    store_retention_set(d->store, (int)d->cfg.store.retention_days,
                        (int)d->cfg.store.metrics_retention_days, 60 * 1000);
    return 0;
}

/* The hot-reload options (flows.*) of the config in force. */
static runtime_reload_options_t reload_options(daemon_t *d)
{
    return (runtime_reload_options_t){
        .watch = strcmp(d->cfg.flows_watch.watch, "on") == 0,
        .debounce_ms = (uint64_t)d->cfg.flows_watch.reload_debounce_ms,
        .rescan_interval_ms = (uint64_t)d->cfg.flows_watch.rescan_interval_ms,
        .on_loaded = on_loaded,
        .data = d};
}

int daemon_runtime_start(daemon_t *d, core_err_t *err)
{
    int rc = open_store(d, err);
    if (rc != 0)
        return rc;
    core_diags_t gd;
    core_diags_init(&gd);
    if (guard_check(d, &gd) != 0) {
        char line[1024];
        core_err_set(err, CORE_ERR_INVALID, "%s",
                     gd.len ? core_diag_format(&gd.items[0], line, sizeof(line)) : "guardrails");
        log_problems(&gd);
        core_diags_dispose(&gd);
        return CORE_ERR_INVALID;
    }
    core_diags_dispose(&gd);
    if (guard_file(d) == NULL)
        LOG_INFO("event=guardrails_defaults file=%s reason=\"missing: built-in rules apply\"",
                 d->cfg.guardrails_file);
    runtime_options_t opts = {.flows_dir = d->cfg.flows_dir,
                              .data_dir = d->cfg.data_dir,
                              .guard_file = guard_file(d),
                              .store = d->store,
                              .metrics = d->metrics,
                              .max_conversations = (size_t)d->cfg.runtime.max_conversations,
                              /* an evicted conversation could not be read back */
                              .no_evict = store_in_memory(d->store),
                              /* the goodbye of an idle timeout reaches the
                               * conversation's channel like any reply */
                              .on_idle_end = chan_idle_end};
    daemon_envs_options(d, &opts);
    rc = runtime_new(d->loop, &opts, &d->runtime, err);
    if (rc != 0)
        return rc;
    if (d->store != NULL && !store_in_memory(d->store)) /* pins outlive a restart */
        runtime_pins_from_store(d->runtime, store_path(d->store));
    daemon_envs_restore(d);
    admin_agents_attach(d->runtime); /* handoffs enter the human queues */
    runtime_reload_options_t ro = reload_options(d);
    rc = runtime_reload_start(d->runtime, &ro, err);
    if (rc != 0)
        return rc;
    d->flows_missing = !dir_exists(d->cfg.flows_dir);
    if (d->flows_missing) {
        LOG_WARN("event=no_flows flows_dir=%s reason=\"directory does not exist\"",
                 d->cfg.flows_dir);
        return 0;
    }
    rc = runtime_reload(d->runtime, RUNTIME_TRIGGER_START, NULL, NULL, NULL);
    if (rc != 0)
        return core_err_set(err, rc, "cannot start loading flows: %s", core_strerror(rc));
    return 0;
}

void daemon_runtime_reload(daemon_t *d)
{
    admin_agents_reload(); /* the queues file too */
    if (d->runtime == NULL)
        return;
    d->flows_missing = !dir_exists(d->cfg.flows_dir);
    if (d->flows_missing)
        return;
    if (d->store != NULL)
        store_retention_set(d->store, (int)d->cfg.store.retention_days,
                            (int)d->cfg.store.metrics_retention_days, 60 * 1000);
    runtime_reload_options_t ro = reload_options(d);
    runtime_reload_configure(d->runtime, &ro);
    int rc = runtime_reload(d->runtime, RUNTIME_TRIGGER_SIGHUP, "sighup", NULL, NULL);
    if (rc != 0)
        LOG_WARN("event=flows_reload status=skipped reason=%s", core_strerror(rc));
}

/* The runtime has delivered every pending turn (their batches included):
 * now the store can finish its queue and close. */
static void on_runtime_closed(void *data)
{
    daemon_t *d = data;
    store_close(d->store);
    d->store = NULL;
    void (*done)(daemon_t *) = d->runtime_stopped;
    d->runtime_stopped = NULL;
    if (done != NULL)
        done(d);
}

void daemon_runtime_stop(daemon_t *d, void (*done)(daemon_t *d))
{
    d->runtime_stopped = done;
    if (d->runtime == NULL) {
        on_runtime_closed(d);
        return;
    }
    runtime_t *rt = d->runtime;
    d->runtime = NULL; /* channel routes now answer 503 */
    runtime_reload_stop(rt);
    admin_agents_stop();
    chan_sms_stop();
    runtime_close(rt, on_runtime_closed, d);
}

void daemon_runtime_free(daemon_t *d)
{
    store_metrics_free(d->metrics);
    d->metrics = NULL;
}

runtime_t *daemon_runtime(daemon_t *d)
{
    return d->runtime;
}
