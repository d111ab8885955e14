/* chorusd's turn runtime: validates the flows for --check, loads them at
 * start (training on the thread pool), reloads them on SIGHUP and closes the
 * runtime on shutdown. Channel routes reach it through daemon_runtime(). */
#define LOG_MODULE "chorusd"
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chorus/core.h"
#include "cmd/chorusd_runtime.h"

static runtime_t *the_runtime; /* one daemon per process */
static int first_load_done;
static store_t *the_store;           /* borrowed from chorusd, may be NULL */
static store_metrics_t *the_metrics; /* borrowed, may be NULL */

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int daemon_runtime_check(daemon_t *d, core_diags_t *diags)
{
    if (!dir_exists(d->cfg.flows_dir)) {
        fprintf(stderr, "chorusd: warning: flows directory %s does not exist; no flows to check\n",
                d->cfg.flows_dir);
        return 0;
    }
    return runtime_flows_check(d->cfg.flows_dir, NULL, diags);
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

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    daemon_t *d = data;
    if (rc == CORE_ERR_CLOSED)
        return;
    if (rc != 0) {
        log_problems(diags);
        if (!first_load_done) {
            LOG_ERROR("event=start_failed reason=\"the flows do not load\" problems=%zu",
                      diags->len);
            d->exit_code = 1;
            uv_kill(getpid(), SIGTERM); /* the usual drain path, then exit 1 */
        }
        return;
    }
    first_load_done = 1;
}

void daemon_runtime_use_store(daemon_t *d, store_t *store, store_metrics_t *metrics)
{
    the_store = store;
    the_metrics = metrics;
}

int daemon_runtime_start(daemon_t *d, core_err_t *err)
{
    runtime_options_t opts = {.flows_dir = d->cfg.flows_dir,
                              .data_dir = d->cfg.data_dir,
                              .store = the_store,
                              .metrics = the_metrics};
    int rc = runtime_new(d->loop, &opts, &the_runtime, err);
    if (rc != 0)
        return rc;
    if (!dir_exists(d->cfg.flows_dir)) {
        LOG_WARN("event=no_flows flows_dir=%s reason=\"directory does not exist\"",
                 d->cfg.flows_dir);
        return 0;
    }
    rc = runtime_load(the_runtime, on_loaded, d);
    if (rc != 0)
        return core_err_set(err, rc, "cannot start loading flows: %s", core_strerror(rc));
    return 0;
}

void daemon_runtime_reload(daemon_t *d)
{
    if (the_runtime == NULL || !dir_exists(d->cfg.flows_dir))
        return;
    int rc = runtime_load(the_runtime, on_loaded, d);
    if (rc != 0)
        LOG_WARN("event=flows_reload status=skipped reason=%s", core_strerror(rc));
}

void daemon_runtime_stop(daemon_t *d)
{
    runtime_close(the_runtime, NULL, NULL);
    the_runtime = NULL;
}

runtime_t *daemon_runtime(daemon_t *d)
{
    return the_runtime;
}
