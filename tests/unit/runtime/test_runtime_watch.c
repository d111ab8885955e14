/* Hot reload's coordinator without timers (runtime_watch_int.h): a burst of
 * fs events inside the debounce window makes one check; a change or request
 * during a load makes exactly one more load after it; a touch (same bytes,
 * new mtime) is no change; a same-size edit within the racy window is seen;
 * deleted and added files are changes. Time is passed in, never waited for.
 * And, with a real runtime, a stop that lands during a load's directory scan
 * (the daemon's shutdown) never reads the runtime freed meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/runtime_int.h"
#include "runtime/runtime_watch_int.h"
#include "unit/runtime/runtime_test.h"

static void test_burst_of_events_is_one_check(void **state)
{
    rt_wsm_t m = {0};
    /* temp write, rename, chmod: each pushes the deadline */
    assert_int_equal(rt_wsm_event(&m, 1000, 200), 1200);
    assert_int_equal(rt_wsm_event(&m, 1050, 200), 1250);
    assert_int_equal(rt_wsm_event(&m, 1100, 200), 1300);
    assert_int_equal(rt_wsm_due(&m, 1200), RT_WSM_NONE); /* a stale timer fire */
    assert_int_equal(rt_wsm_due(&m, 1300), RT_WSM_CHECK);
    assert_int_equal(rt_wsm_due(&m, 1400), RT_WSM_NONE); /* nothing armed any more */
    assert_int_equal(rt_wsm_check_done(&m, 1), RT_WSM_LOAD);
    assert_true(m.loading);
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_NONE);
    assert_false(m.loading);
}

/* A deploy writing several files, further apart than the rescan interval
 * but inside the debounce window: a rescan tick meanwhile must not load the
 * half-written set, nor cancel the deadline that loads the whole. */
static void test_rescan_inside_the_debounce_waits_for_it(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_event(&m, 1000, 3000), 4000); /* the first file */
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_NONE);
    assert_int_equal(m.due_ms, 4000); /* still armed */
    assert_false(m.checking);
    assert_int_equal(rt_wsm_event(&m, 2900, 3000), 5900); /* the second file */
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_NONE);
    assert_int_equal(rt_wsm_due(&m, 4000), RT_WSM_NONE);  /* the first deadline's stale fire */
    assert_int_equal(rt_wsm_due(&m, 5900), RT_WSM_CHECK); /* quiet at last: one check */
    assert_int_equal(rt_wsm_check_done(&m, 1), RT_WSM_LOAD);
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_NONE);
    /* with no deadline pending, a rescan tick checks as before */
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_CHECK);
    assert_int_equal(rt_wsm_check_done(&m, 0), RT_WSM_NONE);
}

static void test_unchanged_check_loads_nothing(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_CHECK); /* rescan tick */
    assert_int_equal(rt_wsm_check_done(&m, 0), RT_WSM_NONE);
    assert_false(m.checking);
    assert_false(m.loading);
}

static void test_changes_during_a_load_make_one_more(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_request(&m), RT_WSM_LOAD); /* start */
    /* edits keep coming while it loads: no second load in parallel */
    for (uint64_t t = 0; t < 10; t++) {
        rt_wsm_event(&m, 100 + t, 200);
        assert_int_equal(rt_wsm_due(&m, 300 + t), RT_WSM_NONE);
        assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_NONE);
    }
    /* the load ends: one check, and its change makes one load */
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_CHECK);
    assert_int_equal(rt_wsm_check_done(&m, 1), RT_WSM_LOAD);
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_NONE);
}

static void test_requests_during_a_load_coalesce(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_request(&m), RT_WSM_LOAD);
    assert_int_equal(rt_wsm_request(&m), RT_WSM_NONE); /* SIGHUP */
    assert_int_equal(rt_wsm_request(&m), RT_WSM_NONE); /* API */
    assert_int_equal(rt_wsm_request(&m), RT_WSM_NONE);
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_LOAD); /* exactly one more */
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_NONE);
    assert_false(m.loading);
}

static void test_request_overtakes_a_check(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_CHECK);
    assert_int_equal(rt_wsm_request(&m), RT_WSM_LOAD);
    /* the check reports during the load: ignored, the load scans afresh */
    assert_int_equal(rt_wsm_check_done(&m, 1), RT_WSM_NONE);
    assert_int_equal(rt_wsm_load_done(&m), RT_WSM_NONE);
}

static void test_event_during_a_check_checks_again(void **state)
{
    rt_wsm_t m = {0};
    assert_int_equal(rt_wsm_due(&m, UINT64_MAX), RT_WSM_CHECK);
    rt_wsm_event(&m, 10, 5);
    assert_int_equal(rt_wsm_due(&m, 15), RT_WSM_NONE); /* one is running */
    assert_int_equal(rt_wsm_check_done(&m, 0), RT_WSM_CHECK);
    assert_int_equal(rt_wsm_check_done(&m, 0), RT_WSM_NONE);
}

static void test_reusable_hash(void **state)
{
    rt_snap_entry_t prev = {.size = 100, .mtime_ns = 1000LL * 1000000000LL};
    int64_t taken = 1100LL * 1000000000LL;
    assert_true(rt_snap_reusable(&prev, 100, prev.mtime_ns, taken));
    assert_false(rt_snap_reusable(&prev, 101, prev.mtime_ns, taken));     /* size */
    assert_false(rt_snap_reusable(&prev, 100, prev.mtime_ns + 1, taken)); /* mtime */
    assert_false(rt_snap_reusable(NULL, 100, prev.mtime_ns, taken));      /* new file */
    /* an mtime within the racy window of the scan proves nothing */
    assert_false(rt_snap_reusable(&prev, 100, prev.mtime_ns, prev.mtime_ns + 1000));
}

static char dir[64];

static void put(const char *name, const char *text)
{
    rt_test_write(dir, name, text);
}

/* Sets the file's mtime to sec seconds after the epoch. */
static void age(const char *name, long sec)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct timeval tv[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimes(path, tv), 0);
}

static void scan(const rt_snap_t *prev, rt_snap_t *out)
{
    core_err_t err = {0};
    assert_int_equal(rt_snap_scan(dir, prev, out, &err), 0);
}

static void test_snapshots(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/chorus-watch-XXXXXX");
    assert_non_null(mkdtemp(dir));
    put("a.json", "{\"name\":\"a\"}");
    put("b.json", "{\"name\":\"b\"}");
    put(".a.json.swp", "x"); /* hidden and non-flow files are not flows */
    put("notes.txt", "x");
    age("a.json", 1000000);
    age("b.json", 1000000);
    rt_snap_t s1, s2, s3, s4;
    scan(NULL, &s1);
    assert_int_equal(s1.len, 2);
    assert_int_equal(s1.hashed, 2);
    assert_string_equal(s1.items[0].name, "a.json");
    assert_non_null(rt_snap_find(&s1, "flows/b.json"));

    age("a.json", 2000000); /* touch: same bytes */
    scan(&s1, &s2);
    assert_int_equal(s2.hashed, 1); /* only a.json was read again */
    assert_true(rt_snap_same(&s1, &s2));

    put("a.json", "{\"name\":\"A\"}"); /* same size, old mtime kept */
    age("a.json", 2000000);
    scan(&s2, &s3);
    /* s2's hash was taken long after mtime 2000000: reused, edit unseen;
     * that is what the racy window is for when the mtime is recent */
    assert_true(rt_snap_same(&s2, &s3));
    age("a.json", (long)(s3.taken_ns / 1000000000LL)); /* written "now" */
    rt_snap_dispose(&s3);
    scan(&s2, &s3);
    assert_false(rt_snap_same(&s2, &s3));

    char path[128];
    snprintf(path, sizeof(path), "%s/b.json", dir);
    unlink(path);
    scan(&s3, &s4);
    assert_int_equal(s4.len, 1);
    assert_false(rt_snap_same(&s3, &s4));
    rt_snap_dispose(&s4);
    put("c.json", "{}");
    scan(&s3, &s4);
    assert_int_equal(s4.len, 2);
    assert_false(rt_snap_same(&s3, &s4));

    rt_snap_t copy;
    rt_snap_copy(&copy, &s4);
    assert_true(rt_snap_same(&copy, &s4));
    rt_snap_dispose(&copy);
    rt_snap_dispose(&s1);
    rt_snap_dispose(&s2);
    rt_snap_dispose(&s3);
    rt_snap_dispose(&s4);
    const char *names[] = {"a.json", "c.json", ".a.json.swp", "notes.txt"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* ---- a stop during the load's scan ------------------------------------------ */

/* The thread pool has one thread (main), held by this work until released,
 * so the scan a reload queues runs only after the runtime is gone. */
static atomic_int pool_released;

static void hold_pool(uv_work_t *req)
{
    (void)req;
    while (!atomic_load(&pool_released))
        usleep(1000);
}

static void pool_held_done(uv_work_t *req, int status)
{
    (void)req, (void)status;
}

/* Called right after the runtime is freed: takes its memory back (the
 * allocator hands the chunk it has just freed to the next request of that
 * size, as any allocation after the close could) and fills it, so that a
 * coordinator still reading the runtime follows garbage and crashes. Under
 * ASan the read is reported instead. */
static void *reused;

static void on_closed_reuse(void *data)
{
    reused = malloc(sizeof(struct runtime_s));
    memset(reused, 0xa5, sizeof(struct runtime_s));
    (*(int *)data)++;
}

typedef struct waited_s {
    int calls;
    int rc;
} waited_t;

static void on_reload_answer(int rc, const json_t *attempt, void *data)
{
    waited_t *w = data;
    (void)attempt;
    w->calls++;
    w->rc = rc;
}

static void test_stop_during_the_scan_leaves_the_freed_runtime_alone(void **state)
{
    (void)state;
    char fdir[64];
    snprintf(fdir, sizeof(fdir), "/tmp/chorus-watch-XXXXXX");
    assert_non_null(mkdtemp(fdir));
    rt_test_write(fdir, "main.json", "{\"name\": \"main\"}");
    uv_loop_t loop;
    uv_loop_init(&loop);
    runtime_options_t o = {.flows_dir = fdir, .no_guard = 1};
    runtime_t *rt;
    assert_int_equal(runtime_new(&loop, &o, &rt, NULL), 0);
    runtime_reload_options_t ro = {.watch = 0};
    assert_int_equal(runtime_reload_start(rt, &ro, NULL), 0);
    uv_work_t hold;
    atomic_store(&pool_released, 0);
    assert_int_equal(uv_queue_work(&loop, &hold, hold_pool, pool_held_done), 0);
    waited_t w = {0};
    /* the load's scan waits behind the held pool thread */
    assert_int_equal(runtime_reload(rt, RUNTIME_TRIGGER_API, "tester", on_reload_answer, &w), 0);
    /* shutdown, as chorusd does it: the coordinator, then the runtime */
    runtime_reload_stop(rt);
    int closed = 0;
    runtime_close(rt, on_closed_reuse, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(w.calls, 0); /* its scan has not run yet */
    atomic_store(&pool_released, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.rc, CORE_ERR_CLOSED);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(reused);
    reused = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/main.json", fdir);
    unlink(path);
    assert_int_equal(rmdir(fdir), 0);
}

int main(void)
{
    /* One pool thread, so that a held one holds the pool (before first use). */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_of_events_is_one_check),
        cmocka_unit_test(test_rescan_inside_the_debounce_waits_for_it),
        cmocka_unit_test(test_unchanged_check_loads_nothing),
        cmocka_unit_test(test_changes_during_a_load_make_one_more),
        cmocka_unit_test(test_requests_during_a_load_coalesce),
        cmocka_unit_test(test_request_overtakes_a_check),
        cmocka_unit_test(test_event_during_a_check_checks_again),
        cmocka_unit_test(test_reusable_hash),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_stop_during_the_scan_leaves_the_freed_runtime_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
