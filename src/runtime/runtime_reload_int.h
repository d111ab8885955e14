/* runtime_reload_int.h — the hot-reload coordinator shared by
 * runtime_watch.c (the watcher, scans, ordering of loads) and
 * runtime_reload_status.c (what each attempt leaves behind: status, metrics,
 * audit row, log lines). Loop thread only. */
#ifndef CHORUS_RUNTIME_RELOAD_INT_H
#define CHORUS_RUNTIME_RELOAD_INT_H

#include <jansson.h>

#include "runtime/runtime_int.h"
#include "runtime/runtime_watch_int.h"

typedef struct rt_waiter_s {
    runtime_reload_cb cb;
    void *data;
    struct rt_waiter_s *next;
} rt_waiter_t;

typedef struct rt_reloader_s {
    struct rt_reloader_s *next; /* the list of coordinators */
    runtime_t *rt;
    uv_loop_t *loop;
    runtime_reload_options_t opts;
    char *dir; /* owned copy of the flows directory */
    uv_fs_event_t fsev;
    uv_timer_t debounce;
    uv_timer_t rescan;
    int refs; /* open handles, scans and loads in flight, +1 until stopped */
    int stopped;
    rt_wsm_t sm;
    rt_snap_t attempted; /* the scan taken for the last load (its files) */
    /* the next load: what asked for it, and who waits for its result */
    runtime_trigger_t next_trigger;
    char *next_actor;
    rt_waiter_t *next_waiters;
    /* the load running */
    struct {
        runtime_trigger_t trigger;
        char *actor;
        rt_waiter_t *waiters;
        uint64_t start_us;
        int64_t start_wall_us;
    } run;
    json_t *in_force; /* status of the version in force, NULL before the first */
    json_t *last;     /* the last attempt, NULL before the first */
    uint64_t loaded;  /* attempts by result */
    uint64_t rejected;
} rt_reloader_t;

/* The coordinator of rt, NULL when none (or stopped). */
rt_reloader_t *rt_reloader_of(const runtime_t *rt);

/* runtime_reload_status.c: records the end of the running load (status,
 * metrics, audit, logs) and answers its waiters. Once the coordinator is
 * stopped, or for CORE_ERR_CLOSED, it only answers the waiters and never
 * reads r->rt, which may have been freed meanwhile. */
void rt_reload_finish(rt_reloader_t *r, int rc, const core_diags_t *diags);
/* Calls every waiter of the list with rc and attempt, and frees the list. */
void rt_waiters_run(rt_waiter_t *w, int rc, const json_t *attempt);
void rt_reload_status_dispose(rt_reloader_t *r);

#endif
