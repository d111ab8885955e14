/* chorusd_runtime.h — wiring of the turn runtime into chorusd: flow checks
 * for --check, loading the flows at start and on SIGHUP, and shutdown.
 * Loop thread only, except daemon_runtime_check() (start-up, blocking). */
#ifndef CHORUSD_RUNTIME_H
#define CHORUSD_RUNTIME_H

#include "chorus/runtime.h"
#include "cmd/chorusd.h"

/* Validates d->cfg.flows_dir (every problem appended to diags). A flows
 * directory that does not exist is not an error: the daemon then serves
 * without flows and says so in its log. Blocking: call before the loop runs. */
int daemon_runtime_check(daemon_t *d, core_diags_t *diags);
/* Creates data_dir if missing, opens the store (blocking: before the loop
 * runs), creates the runtime on it and starts loading the flows on the
 * thread pool. If that first load fails, the daemon logs every problem and
 * stops with exit code 1. Returns 0 or a negative error with err set. */
int daemon_runtime_start(daemon_t *d, core_err_t *err);
/* SIGHUP: reloads the flows; on failure the flows in force stay. */
void daemon_runtime_reload(daemon_t *d);
/* chorusd_envs.c: the runtime's environment options from the config, and at
 * start the environments' flows as the store last recorded them (production
 * rebuilt from stored contents in "promoted" mode). Start-up only. */
void daemon_envs_options(daemon_t *d, runtime_options_t *opts);
void daemon_envs_restore(daemon_t *d);
/* Aborts pending turns (their callbacks run with CORE_ERR_CLOSED), frees the
 * runtime once its handles are closed, then lets the store commit what is
 * queued and closes it; then calls done(d) (may be NULL) once. */
void daemon_runtime_stop(daemon_t *d, void (*done)(daemon_t *d));
/* After the loop has stopped: frees the metrics registry. */
void daemon_runtime_free(daemon_t *d);
/* The runtime for channel routes; NULL before start or after stop. */
runtime_t *daemon_runtime(daemon_t *d);

#endif
