/* runtime_watch_int.h — the parts of hot reload (runtime_watch.c) that hold
 * no libuv handle, so unit tests can drive them without timers or a loop:
 *
 * - rt_wsm_t, the coordinator's state machine. Inputs are fs events, the
 *   debounce deadline, rescan ticks, requests (SIGHUP, API), and the end of a
 *   check or a load; outputs say whether to start a check (scan and compare)
 *   or a load. It guarantees at most one check or load at a time, that a
 *   burst of events inside the debounce window makes one check (a rescan
 *   tick inside the window neither checks nor cancels it), and that a
 *   change or request arriving during a load makes exactly one more load
 *   after it (nothing lost, no pile-up).
 * - rt_snap_t, a snapshot of the flows directory: names, sizes, mtimes and
 *   SHA-256 of every flow file. A file whose size and mtime match the
 *   previous snapshot reuses its hash unless the mtime is too close to that
 *   snapshot's time to be trusted (a write within the filesystem's timestamp
 *   granularity leaves both unchanged), so a `touch` triggers no reload and
 *   an in-place edit of the same size is still seen.
 *
 * Threads: rt_wsm_* on the loop; rt_snap_scan() blocks on file I/O (thread
 * pool only); the rest is pure. Ownership: snapshots own their entries
 * (rt_snap_dispose). Errors: rt_snap_scan() returns 0 or CORE_ERR_IO. */
#ifndef CHORUS_RUNTIME_WATCH_INT_H
#define CHORUS_RUNTIME_WATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "chorus/core.h"

/* ---- the coordinator's state machine ------------------------------------ */

enum { RT_WSM_NONE = 0, RT_WSM_CHECK = 1, RT_WSM_LOAD = 2 };

typedef struct rt_wsm_s {
    uint64_t due_ms;  /* debounce deadline (monotonic ms), 0 when none */
    uint8_t checking; /* a check (scan + compare) is running */
    uint8_t recheck;  /* something happened during a check or load: check again after */
    uint8_t loading;  /* a load (scan + runtime_load) is running */
    uint8_t pending;  /* a request came during a load: one more load after it */
} rt_wsm_t;

/* An fs event at now_ms: (re)arms the debounce; returns the deadline. */
uint64_t rt_wsm_event(rt_wsm_t *m, uint64_t now_ms, uint64_t debounce_ms);
/* The debounce timer fired at now_ms (early fires are ignored), or a rescan
 * tick (now_ms = UINT64_MAX: due when no debounce deadline is pending; with
 * one it does nothing and leaves the deadline to check). Returns
 * RT_WSM_CHECK or RT_WSM_NONE. */
int rt_wsm_due(rt_wsm_t *m, uint64_t now_ms);
/* A check ended: changed says the directory differs from the last attempt. */
int rt_wsm_check_done(rt_wsm_t *m, int changed);
/* An explicit request (start, SIGHUP, API): RT_WSM_LOAD now, or queued. */
int rt_wsm_request(rt_wsm_t *m);
/* A load ended: RT_WSM_LOAD (a request is queued), RT_WSM_CHECK (something
 * changed meanwhile) or RT_WSM_NONE. */
int rt_wsm_load_done(rt_wsm_t *m);

/* ---- snapshots of the flows directory ------------------------------------ */

/* mtimes this close to (or after) the previous scan are not trusted. */
#define RT_SNAP_RACY_NS (2000000000LL)

typedef struct rt_snap_entry_s {
    char *name; /* owned: file name in the directory, "x.json" */
    int64_t size;
    int64_t mtime_ns;
    char sha256[65]; /* hex */
} rt_snap_entry_t;

typedef struct rt_snap_s {
    rt_snap_entry_t *items; /* owned, sorted by name */
    size_t len;
    int64_t taken_ns; /* wall clock when the scan started */
    int hashed;       /* files read and hashed by this scan (the rest reused) */
} rt_snap_t;

void rt_snap_dispose(rt_snap_t *s);
void rt_snap_copy(rt_snap_t *dst, const rt_snap_t *src);
/* 1 when prev's hash of this file may be reused for a file now of size and
 * mtime_ns; prev_taken_ns is when prev was scanned. */
int rt_snap_reusable(const rt_snap_entry_t *prev, int64_t size, int64_t mtime_ns,
                     int64_t prev_taken_ns);
/* 1 when both list the same names with the same contents. */
int rt_snap_same(const rt_snap_t *a, const rt_snap_t *b);
/* The entry named name (a file name, or a path whose last part is one). */
const rt_snap_entry_t *rt_snap_find(const rt_snap_t *s, const char *name);
/* Scans dir's flow files (*.json, regular, not hidden) into out, reusing
 * prev's hashes where rt_snap_reusable() allows (prev may be NULL). A file
 * that vanishes mid-scan is left out. Blocking. */
int rt_snap_scan(const char *dir, const rt_snap_t *prev, rt_snap_t *out, core_err_t *err);

#endif
