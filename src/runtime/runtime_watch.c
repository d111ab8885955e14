/* Hot reload (runtime.h, "hot reload"): the coordinator that funnels the
 * first load, SIGHUP, API requests and changes of the flows directory into
 * runtime_load(), one at a time, and the watcher (libuv fs events with a
 * debounce, plus a periodic rescan) that notices changes.
 *
 * A load here is: scan the directory (names, sizes, mtimes, hashes) on the
 * thread pool, then runtime_load(), which reads, validates the whole set and
 * retrains on the pool and swaps on the loop. The scan comes first, so the
 * hashes reported for the version in force were taken no later than the
 * load read the files; a write between the two is a change the next check
 * sees, so the status converges on what is served. A check (after the
 * debounce, or on a rescan tick) scans and compares with the last attempt's
 * scan, which keeps a broken edit from being retried on every tick.
 *
 * The coordinator is kept in a small list keyed by the runtime, so the
 * admin module needs nothing but the runtime to reach it. The status,
 * metrics, audit and log lines of each attempt are runtime_reload_status.c's. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_reload_int.h"

static rt_reloader_t *reloaders; /* loop thread only */

rt_reloader_t *rt_reloader_of(const runtime_t *rt)
{
    for (rt_reloader_t *r = reloaders; r != NULL; r = r->next)
        if (r->rt == rt && !r->stopped)
            return r;
    return NULL;
}

const char *runtime_trigger_name(runtime_trigger_t t)
{
    static const char *const names[] = {"start", "watch", "sighup", "api"};
    return (unsigned)t < 4 ? names[t] : "unknown";
}

static void unlink_reloader(rt_reloader_t *r)
{
    for (rt_reloader_t **p = &reloaders; *p != NULL; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void unref(rt_reloader_t *r)
{
    if (--r->refs > 0)
        return;
    unlink_reloader(r);
    rt_reload_status_dispose(r);
    rt_snap_dispose(&r->attempted);
    free(r->dir);
    free(r->next_actor);
    free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void act(rt_reloader_t *r, int action);

/* ---- scanning on the thread pool ------------------------------------------ */

typedef struct scan_s {
    uv_work_t req;
    rt_reloader_t *r;
    char *dir;
    rt_snap_t prev; /* a copy: the loop may replace r->attempted meanwhile */
    rt_snap_t snap;
    core_err_t err;
    int rc;
    int for_load;
} scan_t;

static void scan_work(uv_work_t *req)
{
    scan_t *s = req->data;
    s->rc = rt_snap_scan(s->dir, &s->prev, &s->snap, &s->err);
}

static void scan_free(scan_t *s)
{
    rt_snap_dispose(&s->prev);
    rt_snap_dispose(&s->snap);
    free(s->dir);
    free(s);
}

static void load_scanned(rt_reloader_t *r, scan_t *s);

static void scan_done(uv_work_t *req, int status)
{
    scan_t *s = req->data;
    rt_reloader_t *r = s->r;
    if (s->for_load) {
        load_scanned(r, s);
    } else if (!r->stopped) {
        /* An unreadable directory is "no files": deleting it is a change the
         * load then reports; it does not stop the checks. */
        int changed = !rt_snap_same(&s->snap, &r->attempted);
        if (changed)
            LOG_INFO("event=flows_changed dir=%s files=%zu hashed=%d", r->dir, s->snap.len,
                     s->snap.hashed);
        act(r, rt_wsm_check_done(&r->sm, changed));
    }
    scan_free(s);
    unref(r);
}

static void start_scan(rt_reloader_t *r, int for_load)
{
    scan_t *s = core_xcalloc(1, sizeof(*s));
    s->r = r;
    s->dir = core_xstrdup(r->dir);
    s->for_load = for_load;
    rt_snap_copy(&s->prev, &r->attempted);
    s->req.data = s;
    r->refs++;
    if (uv_queue_work(r->loop, &s->req, scan_work, scan_done) != 0) {
        /* Only when the loop is closing; nothing more will run. */
        r->refs--;
        scan_free(s);
    }
}

/* ---- loading ----------------------------------------------------------------- */

static void begin_load(rt_reloader_t *r)
{
    r->run.trigger = r->next_trigger;
    free(r->run.actor);
    r->run.actor = r->next_actor;
    r->run.waiters = r->next_waiters;
    r->run.start_us = core_now_us();
    r->run.start_wall_us = core_wall_us();
    r->next_actor = NULL;
    r->next_waiters = NULL;
    r->next_trigger = RUNTIME_TRIGGER_WATCH; /* unless a request says otherwise */
    start_scan(r, 1);
}

static void on_loaded(runtime_t *rt, int rc, const core_diags_t *diags, void *data)
{
    rt_reloader_t *r = data;
    rt_reload_finish(r, rc, diags);
    /* After a stop the owner hears nothing more (and rt may be freed). */
    if (r->opts.on_loaded != NULL && rc != CORE_ERR_CLOSED && !r->stopped)
        r->opts.on_loaded(rt, rc, r->run.trigger, diags, r->opts.data);
    if (!r->stopped)
        act(r, rt_wsm_load_done(&r->sm));
    unref(r);
}

static void load_scanned(rt_reloader_t *r, scan_t *s)
{
    rt_snap_dispose(&r->attempted);
    r->attempted = s->snap; /* moved */
    memset(&s->snap, 0, sizeof(s->snap));
    /* The author the new flow versions are recorded with: the admin token's
     * name, else what triggered it ("watch", "sighup"); the start's is the
     * user running chorusd (runtime options). */
    const char *author = r->run.actor ? r->run.actor
                         : r->run.trigger == RUNTIME_TRIGGER_START
                             ? NULL
                             : runtime_trigger_name(r->run.trigger);
    int rc = r->stopped ? CORE_ERR_CLOSED : runtime_load_by(r->rt, author, on_loaded, r);
    if (rc == 0) {
        r->refs++;
        return;
    }
    core_diags_t diags;
    core_diags_init(&diags);
    core_diags_add(&diags, r->dir, 0, 0, "", "the load could not start: %s", core_strerror(rc));
    r->refs++;
    /* Stopped: the runtime may have been freed while the scan ran. */
    on_loaded(r->stopped ? NULL : r->rt, rc, &diags, r);
    core_diags_dispose(&diags);
}

/* ---- the watcher -------------------------------------------------------------- */

static void act(rt_reloader_t *r, int action)
{
    if (action == RT_WSM_CHECK)
        start_scan(r, 0);
    else if (action == RT_WSM_LOAD)
        begin_load(r);
}

static void on_debounce(uv_timer_t *t)
{
    rt_reloader_t *r = t->data;
    act(r, rt_wsm_due(&r->sm, uv_now(r->loop)));
}

static void on_rescan(uv_timer_t *t)
{
    rt_reloader_t *r = t->data;
    act(r, rt_wsm_due(&r->sm, UINT64_MAX));
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    rt_reloader_t *r = h->data;
    if (status < 0) {
        LOG_WARN("event=flows_watch_failed dir=%s reason=%s action=rescan_only", r->dir,
                 uv_strerror(status));
        uv_fs_event_stop(h);
        return;
    }
    uint64_t now = uv_now(r->loop);
    uint64_t due = rt_wsm_event(&r->sm, now, r->opts.debounce_ms);
    LOG_DEBUG("event=flows_fs_event file=%s", filename ? filename : "-");
    uv_timer_start(&r->debounce, on_debounce, due > now ? due - now : 0, 0);
}

static void apply_watch(rt_reloader_t *r)
{
    uv_fs_event_stop(&r->fsev);
    uv_timer_stop(&r->debounce);
    uv_timer_stop(&r->rescan);
    /* The pending deadline goes with its timer, else it would hold off every
     * rescan for good; the next rescan or event sees the change. */
    r->sm.due_ms = 0;
    if (!r->opts.watch) {
        LOG_INFO("event=flows_watch status=off dir=%s", r->dir);
        return;
    }
    int rc = uv_fs_event_start(&r->fsev, on_fs_event, r->dir, 0);
    if (rc != 0)
        LOG_WARN("event=flows_watch_failed dir=%s reason=%s action=rescan_only", r->dir,
                 uv_strerror(rc));
    if (r->opts.rescan_interval_ms > 0)
        uv_timer_start(&r->rescan, on_rescan, r->opts.rescan_interval_ms,
                       r->opts.rescan_interval_ms);
    LOG_INFO("event=flows_watch status=on dir=%s fs_events=%s debounce_ms=%llu "
             "rescan_interval_ms=%llu",
             r->dir, rc == 0 ? "yes" : "no", (unsigned long long)r->opts.debounce_ms,
             (unsigned long long)r->opts.rescan_interval_ms);
}

/* ---- public entry points ------------------------------------------------------ */

int runtime_reload_start(runtime_t *rt, const runtime_reload_options_t *o, core_err_t *err)
{
    if (rt_reloader_of(rt) != NULL)
        return core_err_set(err, CORE_ERR_BUSY, "hot reload is already started");
    rt_reloader_t *r = core_xcalloc(1, sizeof(*r));
    r->rt = rt;
    r->loop = rt->loop;
    r->opts = *o;
    r->dir = core_xstrdup(rt->flows_dir);
    r->next_trigger = RUNTIME_TRIGGER_WATCH;
    uv_fs_event_init(r->loop, &r->fsev);
    uv_timer_init(r->loop, &r->debounce);
    uv_timer_init(r->loop, &r->rescan);
    r->fsev.data = r->debounce.data = r->rescan.data = r;
    r->refs = 4; /* three handles, and "not stopped" */
    r->next = reloaders;
    reloaders = r;
    apply_watch(r);
    return 0;
}

void runtime_reload_configure(runtime_t *rt, const runtime_reload_options_t *o)
{
    rt_reloader_t *r = rt_reloader_of(rt);
    if (r == NULL)
        return;
    int changed = r->opts.watch != o->watch || r->opts.debounce_ms != o->debounce_ms ||
                  r->opts.rescan_interval_ms != o->rescan_interval_ms;
    r->opts.watch = o->watch;
    r->opts.debounce_ms = o->debounce_ms;
    r->opts.rescan_interval_ms = o->rescan_interval_ms;
    if (changed)
        apply_watch(r);
}

int runtime_reload(runtime_t *rt, runtime_trigger_t trigger, const char *actor,
                   runtime_reload_cb cb, void *data)
{
    rt_reloader_t *r = rt_reloader_of(rt);
    if (r == NULL)
        return CORE_ERR_NOT_FOUND;
    /* The next load serves every request made before it starts; the last
     * request names its trigger and actor (all are logged as they come). */
    r->next_trigger = trigger;
    free(r->next_actor);
    r->next_actor = actor != NULL ? core_xstrdup(actor) : NULL;
    if (cb != NULL) {
        rt_waiter_t *w = core_xcalloc(1, sizeof(*w));
        w->cb = cb;
        w->data = data;
        w->next = r->next_waiters;
        r->next_waiters = w;
    }
    LOG_INFO("event=flows_reload_requested trigger=%s actor=%s queued=%s",
             runtime_trigger_name(trigger), actor ? actor : "-", r->sm.loading ? "yes" : "no");
    act(r, rt_wsm_request(&r->sm));
    return 0;
}

void runtime_reload_stop(runtime_t *rt)
{
    rt_reloader_t *r = rt_reloader_of(rt);
    if (r == NULL)
        return;
    r->stopped = 1;
    rt_waiters_run(r->next_waiters, CORE_ERR_CLOSED, NULL);
    r->next_waiters = NULL;
    uv_close((uv_handle_t *)&r->fsev, on_handle_closed);
    uv_close((uv_handle_t *)&r->debounce, on_handle_closed);
    uv_close((uv_handle_t *)&r->rescan, on_handle_closed);
    unref(r);
}
