/* The writer thread (store.h), on the model of Redis bio.c:
 *
 * DESIGN
 * - One thread owns the write connection. The loop appends jobs to a FIFO
 *   (mutex + condition variable); the queue is bounded in batches so that a
 *   slow disk turns into 503s at the edge instead of unbounded memory.
 * - The writer takes up to batch_max jobs, runs them in one transaction (one
 *   fsync for all of them: group commit), moves them to a done list and
 *   wakes the loop with uv_async_send; callbacks run on the loop in order.
 * - A batch that is itself bad (a constraint) is rolled back alone: the
 *   group is rolled back and replayed with a savepoint per batch (it runs
 *   without them otherwise: bad batches are rare). A disk failure rolls
 *   back the whole group, completes its jobs with CORE_ERR_BUSY (nothing of
 *   theirs was written, nothing was acknowledged), and marks the store
 *   unhealthy: enqueue answers BUSY while the writer probes the disk every
 *   retry_ms, and takes batches again as soon as a probe write commits.
 * - Pruning is a job like any other, one chunk at a time, re-queued at the
 *   tail while there is more, so it never holds turns up for long. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

typedef enum { JOB_BATCH, JOB_PRUNE } job_kind_t;

typedef struct job_s {
    struct job_s *next;
    job_kind_t kind;
    store_batch_t *batch; /* owned, JOB_BATCH */
    int64_t text_before_us, all_before_us;
    store_done_cb cb;
    void *data;
    int status;
} job_t;

#define READER_POOL 4
#define LOOP_HANDLES 4 /* async, retention, kick_prepare, kick_check */

struct store_s {
    uv_loop_t *loop;
    store_options_t opt; /* opt.path owned */
    const store__backend_t *be;
    void *conn; /* writer thread only after start */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    job_t *pending, *pending_tail; /* guarded by mu */
    job_t *done, *done_tail;       /* guarded by mu */
    size_t queued;                 /* batches in pending, guarded by mu */
    int stopping;                  /* guarded by mu */
    int paused;                    /* tests: hold jobs in the queue, guarded by mu */
    atomic_int healthy;
    uv_async_t async;                   /* loop handle */
    uv_prepare_t kick_prepare;          /* loop handles: wake the writer once per */
    uv_check_t kick_check;              /* loop iteration, for all it queued */
    int kick;                           /* batches queued, writer not woken (loop) */
    uv_timer_t retention;               /* daily pruning (loop handle, unreferenced) */
    int retention_text_days;            /* 0 = keep transcripts */
    int retention_rows_days;            /* 0 = keep KPI rows */
    store_stats_t stats;                /* guarded by mu */
    _Atomic(store_metrics_t *) metrics; /* borrowed, may be NULL; set while the writer runs */
    store_db_t *readers[READER_POOL];   /* idle read connections, guarded by mu */
    int n_readers;
    int inflight; /* thread-pool reads not yet completed (loop thread) */
    int closed;   /* handles closed, of LOOP_HANDLES (loop thread) */
};

static void free_store(store_t *s)
{
    for (int i = 0; i < s->n_readers; i++)
        store_db_close(s->readers[i]);
    uv_mutex_destroy(&s->mu);
    uv_cond_destroy(&s->cond);
    free((char *)s->opt.path);
    free(s);
}

static int group_slot(size_t n)
{
    int slot = 0;
    while (n > 1 && slot < 7)
        n >>= 1, slot++;
    return slot;
}

static void metrics_after_commit(store_t *s, size_t batches, double seconds)
{
    if (s->metrics == NULL)
        return;
    store_metrics_add(s->metrics, STORE_M_STORE_BATCHES, NULL, (double)batches);
    store_metrics_observe(s->metrics, STORE_M_STORE_GROUP, NULL, (double)batches);
    store_metrics_observe(s->metrics, STORE_M_STORE_COMMIT, NULL, seconds);
}

static void set_healthy(store_t *s, int ok, const core_err_t *err)
{
    int was = atomic_exchange(&s->healthy, ok);
    if (was && !ok)
        LOG_ERROR("event=store_write_failed path=%s error=\"%s\" action=refusing_turns",
                  s->opt.path, err->msg);
    else if (!was && ok)
        LOG_WARN("event=store_recovered path=%s", s->opt.path);
    if (s->metrics != NULL)
        store_metrics_set(s->metrics, STORE_M_STORE_HEALTHY, NULL, ok);
}

/* Runs jobs' batches in one transaction and commits it. Without isolated
 * the first bad batch stops the run (CORE_ERR_INVALID, nothing committed);
 * with it each batch has its own savepoint and a bad one is only marked. */
static int run_batches(store_t *s, job_t *jobs, int isolated, core_err_t *err)
{
    int rc = s->be->begin(s->conn, err);
    for (job_t *j = jobs; rc == 0 && j != NULL; j = j->next) {
        core_err_t jerr = {0};
        int r = s->be->apply(s->conn, j->batch, isolated, &jerr);
        j->status = r == CORE_ERR_INVALID ? r : 0;
        if (r == CORE_ERR_INVALID && !isolated)
            return r;
        if (r == CORE_ERR_INVALID)
            LOG_WARN("event=store_batch_rejected error=\"%s\"", jerr.msg);
        else if (r != 0)
            rc = r, *err = jerr;
    }
    return rc == 0 ? s->be->commit(s->conn, err) : rc;
}

/* Runs jobs (a chain of n batch jobs) in one transaction. Bad batches are
 * rare, so the group first runs without a savepoint per batch (each costs
 * two statements); only when one is bad is the group rolled back and
 * replayed with savepoints, which rolls the bad batch back alone. */
static void run_group(store_t *s, job_t *jobs, size_t n)
{
    core_err_t err = {0};
    uint64_t t0 = core_now_us();
    int rc = run_batches(s, jobs, 0, &err);
    if (rc == CORE_ERR_INVALID) {
        s->be->rollback(s->conn);
        rc = run_batches(s, jobs, 1, &err);
    }
    if (rc != 0) {
        s->be->rollback(s->conn);
        for (job_t *j = jobs; j != NULL; j = j->next)
            if (j->status == 0)
                j->status = CORE_ERR_BUSY;
        set_healthy(s, 0, &err);
        return;
    }
    metrics_after_commit(s, n, (double)(core_now_us() - t0) / 1e6);
}

/* Runs one prune chunk; returns 1 when more remains (the job is re-queued). */
static int run_prune(store_t *s, job_t *j)
{
    uv_mutex_lock(&s->mu);
    s->stats.prunes++;
    uv_mutex_unlock(&s->mu);
    core_err_t err = {0};
    int64_t pruned = 0;
    j->status = s->be->prune(s->conn, j->text_before_us, j->all_before_us, &pruned, &err);
    if (j->status != 0) {
        LOG_ERROR("event=store_prune_failed error=\"%s\"", err.msg);
        return 0;
    }
    if (pruned > 0)
        LOG_INFO("event=store_pruned conversations=%lld", (long long)pruned);
    return pruned >= 5000;
}

/* Takes up to batch_max batch jobs, or one prune job, off pending (mu held). */
static job_t *take_group(store_t *s, size_t *n)
{
    job_t *head = s->pending, *last = head;
    *n = 1;
    if (head->kind == JOB_BATCH)
        while (*n < s->opt.batch_max && last->next != NULL && last->next->kind == JOB_BATCH)
            last = last->next, (*n)++;
    s->pending = last->next;
    if (s->pending == NULL)
        s->pending_tail = NULL;
    last->next = NULL;
    if (head->kind == JOB_BATCH)
        s->queued -= *n;
    return head;
}

static void append(job_t **head, job_t **tail, job_t *chain)
{
    if (*tail != NULL)
        (*tail)->next = chain;
    else
        *head = chain;
    while (chain->next != NULL)
        chain = chain->next;
    *tail = chain;
}

static void account(store_t *s, job_t *group, size_t n)
{
    if (group->kind != JOB_BATCH)
        return;
    int ok = 0;
    for (job_t *j = group; j != NULL; j = j->next) {
        if (j->status == 0)
            ok = 1, s->stats.batches++, s->stats.turns += store_batch_turns(j->batch);
        else
            s->stats.failed++;
    }
    if (ok) {
        s->stats.commits++;
        if (n > s->stats.max_group)
            s->stats.max_group = n;
        s->stats.group_hist[group_slot(n)]++;
    }
}

/* While unhealthy and idle, probe the disk every retry_ms (mu held). */
static void wait_for_work(store_t *s)
{
    while ((s->pending == NULL || s->paused) && !s->stopping) {
        if (atomic_load(&s->healthy)) {
            uv_cond_wait(&s->cond, &s->mu);
            continue;
        }
        if (uv_cond_timedwait(&s->cond, &s->mu, (uint64_t)s->opt.retry_ms * 1000000u) == 0)
            continue;
        uv_mutex_unlock(&s->mu);
        core_err_t err = {0};
        if (s->be->probe(s->conn, &err) == 0)
            set_healthy(s, 1, &err);
        uv_mutex_lock(&s->mu);
    }
}

/* Lowers the calling (writer) thread's priority by opt.writer_nice below
 * the process's. When every core is busy, a writer at the loop's priority
 * wakes for each loop iteration's few batches and preempts the loop or its
 * clients; lower, it runs when a core is free and commits what accumulated
 * meanwhile in one group (docs/store.md, "Writer priority"). Linux gives
 * each thread its own nice value; elsewhere this does nothing. */
static void writer_lower_priority(const store_t *s)
{
#ifdef __linux__
    if (s->opt.writer_nice <= 0)
        return;
    id_t tid = (id_t)gettid();
    errno = 0;
    int now = getpriority(PRIO_PROCESS, tid);
    int want = now + s->opt.writer_nice > 19 ? 19 : now + s->opt.writer_nice;
    if ((now == -1 && errno != 0) || setpriority(PRIO_PROCESS, tid, want) != 0)
        LOG_WARN("event=store_writer_nice_failed nice=%d error=\"%s\"", want, strerror(errno));
#else
    (void)s;
#endif
}

static void writer_main(void *arg)
{
    store_t *s = arg;
    pthread_setname_np(pthread_self(), "chorus-writer"); /* for top -H and perf */
    writer_lower_priority(s);
    uv_mutex_lock(&s->mu);
    for (;;) {
        wait_for_work(s);
        if (s->pending == NULL)
            break; /* stopping and drained */
        size_t n;
        job_t *group = take_group(s, &n);
        uv_mutex_unlock(&s->mu);
        int again = 0;
        if (group->kind == JOB_BATCH)
            run_group(s, group, n);
        else
            again = run_prune(s, group);
        uv_mutex_lock(&s->mu);
        if (again && !s->stopping)
            append(&s->pending, &s->pending_tail, group);
        else
            append(&s->done, &s->done_tail, group);
        account(s, group, n);
        if (s->metrics != NULL)
            store_metrics_set(s->metrics, STORE_M_STORE_QUEUE, NULL, (double)s->queued);
        uv_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
}

/* Runs the completed jobs' callbacks (loop thread). */
static void drain_done(store_t *s)
{
    uv_mutex_lock(&s->mu);
    job_t *j = s->done;
    s->done = s->done_tail = NULL;
    uv_mutex_unlock(&s->mu);
    while (j != NULL) {
        job_t *next = j->next;
        if (j->status != 0 && s->metrics != NULL) {
            const char *why[] = {"failed"};
            store_metrics_add(s->metrics, STORE_M_STORE_REJECTED, why, 1);
        }
        if (j->cb != NULL)
            j->cb(j->status, j->data);
        store_batch_free(j->batch);
        free(j);
        j = next;
    }
}

static void on_closed(uv_handle_t *h);

static void on_async(uv_async_t *h)
{
    drain_done(h->data);
}

/* Loop thread, at the end of a loop iteration's I/O callbacks (check) and
 * before the loop blocks (prepare): wakes the writer once for every batch
 * the iteration queued. Woken at the first enqueue, an idle writer would
 * commit that batch alone (every commit writes its B-tree pages again) while
 * the rest of the iteration's turns queue up behind it; their replies cannot
 * leave before the iteration ends anyway. */
static void kick_writer(store_t *s)
{
    if (!s->kick)
        return;
    s->kick = 0;
    uv_mutex_lock(&s->mu);
    uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->mu);
}

static void on_kick_prepare(uv_prepare_t *h)
{
    kick_writer(h->data);
}

static void on_kick_check(uv_check_t *h)
{
    kick_writer(h->data);
}

static void close_handles(store_t *s)
{
    uv_close((uv_handle_t *)&s->async, on_closed);
    uv_close((uv_handle_t *)&s->retention, on_closed);
    uv_close((uv_handle_t *)&s->kick_prepare, on_closed);
    uv_close((uv_handle_t *)&s->kick_check, on_closed);
}

store_t *store_open(uv_loop_t *loop, const store_options_t *opt, core_err_t *err)
{
    store_t *s = core_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->opt = *opt;
    s->opt.path = core_xstrdup(opt->path);
    if (s->opt.queue_max == 0)
        s->opt.queue_max = 4096;
    if (s->opt.batch_max == 0)
        s->opt.batch_max = 256;
    if (s->opt.retry_ms <= 0)
        s->opt.retry_ms = 1000;
    s->be = &store__sqlite_backend;
    atomic_init(&s->healthy, 1);
    uv_mutex_init(&s->mu);
    uv_cond_init(&s->cond);
    if (strncmp(opt->path, "postgres", 8) == 0) {
        core_err_set(err, CORE_ERR_UNSUPPORTED, "%s: only SQLite files are supported so far",
                     opt->path);
        goto fail;
    }
    if (s->be->open(&s->opt, &s->conn, err) != 0)
        goto fail;
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    uv_timer_init(loop, &s->retention);
    uv_unref((uv_handle_t *)&s->retention);
    s->retention.data = s;
    uv_prepare_init(loop, &s->kick_prepare);
    uv_check_init(loop, &s->kick_check);
    s->kick_prepare.data = s->kick_check.data = s;
    uv_prepare_start(&s->kick_prepare, on_kick_prepare);
    uv_check_start(&s->kick_check, on_kick_check);
    uv_unref((uv_handle_t *)&s->kick_prepare);
    uv_unref((uv_handle_t *)&s->kick_check);
    if (uv_thread_create(&s->thread, writer_main, s) != 0) {
        core_err_set(err, CORE_ERR_INTERNAL, "cannot start the store writer thread");
        s->be->close(s->conn);
        s->conn = NULL;
        close_handles(s);
        return NULL; /* freed from the close callbacks */
    }
    LOG_INFO("event=store_open backend=%s path=%s schema=%d synchronous=%s", s->be->name,
             s->opt.path, STORE_SCHEMA_VERSION, s->opt.synchronous_full ? "full" : "normal");
    return s;
fail:
    free_store(s);
    return NULL;
}

static void on_closed(uv_handle_t *h)
{
    store_t *s = h->data;
    if (++s->closed == LOOP_HANDLES && s->inflight == 0)
        free_store(s);
}

void store_close(store_t *s)
{
    if (s == NULL)
        return;
    uv_mutex_lock(&s->mu);
    s->stopping = 1;
    uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&s->thread);
    drain_done(s);
    s->be->close(s->conn);
    s->conn = NULL;
    LOG_INFO("event=store_closed batches=%llu commits=%llu", (unsigned long long)s->stats.batches,
             (unsigned long long)s->stats.commits);
    close_handles(s);
}

static int enqueue_job(store_t *s, job_t *j)
{
    uv_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping)
        rc = CORE_ERR_CLOSED;
    else if (j->kind == JOB_BATCH && (s->queued >= s->opt.queue_max || !atomic_load(&s->healthy)))
        rc = CORE_ERR_BUSY, s->stats.busy++;
    if (rc == 0) {
        append(&s->pending, &s->pending_tail, j);
        if (j->kind == JOB_BATCH)
            s->queued++;
        /* a full group (or a prune) goes at once, the rest at the end of
         * the loop iteration (kick_writer) */
        if (j->kind != JOB_BATCH || s->queued >= s->opt.batch_max)
            uv_cond_signal(&s->cond);
        else
            s->kick = 1;
    }
    uv_mutex_unlock(&s->mu);
    if (rc == CORE_ERR_BUSY && s->metrics != NULL) {
        const char *why[] = {"busy"};
        store_metrics_add(s->metrics, STORE_M_STORE_REJECTED, why, 1);
    }
    return rc;
}

int store_enqueue(store_t *s, store_batch_t *b, store_done_cb cb, void *data)
{
    job_t *j = core_xcalloc(1, sizeof(*j));
    j->kind = JOB_BATCH;
    j->batch = b;
    j->cb = cb;
    j->data = data;
    int rc = enqueue_job(s, j);
    if (rc != 0)
        free(j);
    return rc;
}

int store_prune_async(store_t *s, int64_t text_before_us, int64_t rows_before_us, store_done_cb cb,
                      void *data)
{
    job_t *j = core_xcalloc(1, sizeof(*j));
    j->kind = JOB_PRUNE;
    j->text_before_us = text_before_us;
    j->all_before_us = rows_before_us;
    j->cb = cb;
    j->data = data;
    int rc = enqueue_job(s, j);
    if (rc != 0)
        free(j);
    return rc;
}

int store_ready(const store_t *s)
{
    return s != NULL && atomic_load(&((store_t *)s)->healthy);
}

void store_get_stats(const store_t *s, store_stats_t *out)
{
    store_t *m = (store_t *)s;
    uv_mutex_lock(&m->mu);
    *out = m->stats;
    out->queued = m->queued;
    uv_mutex_unlock(&m->mu);
    out->healthy = atomic_load(&m->healthy);
}

const char *store_path(const store_t *s)
{
    return s->opt.path;
}

int store_in_memory(const store_t *s)
{
    return store_path_in_memory(s->opt.path);
}

void store_set_metrics(store_t *s, store_metrics_t *m)
{
    s->metrics = m;
    store_metrics_set(m, STORE_M_STORE_HEALTHY, NULL, atomic_load(&s->healthy));
}

static void on_retention(uv_timer_t *t)
{
    store_t *s = t->data;
    int64_t now = core_wall_us(), day = 86400LL * 1000000;
    int64_t text = s->retention_text_days ? now - s->retention_text_days * day : 0;
    int64_t rows = s->retention_rows_days ? now - s->retention_rows_days * day : 0;
    if (text == 0 && rows == 0)
        return;
    int rc = store_prune_async(s, text, rows, NULL, NULL);
    if (rc != 0)
        LOG_WARN("event=store_prune_skipped error=%s", core_strerror(rc));
}

void store_retention_set(store_t *s, int text_days, int rows_days, uint64_t first_delay_ms)
{
    s->retention_text_days = text_days;
    s->retention_rows_days = rows_days;
    uv_timer_start(&s->retention, on_retention, first_delay_ms, 24ULL * 3600 * 1000);
}

void store__pause(store_t *s, int paused)
{
    uv_mutex_lock(&s->mu);
    s->paused = paused;
    uv_cond_signal(&s->cond);
    uv_mutex_unlock(&s->mu);
}

uv_loop_t *store__loop(store_t *s)
{
    return s->loop;
}

store_db_t *store__reader_get(store_t *s, core_err_t *err)
{
    store_db_t *db = NULL;
    uv_mutex_lock(&s->mu);
    if (s->n_readers > 0)
        db = s->readers[--s->n_readers];
    uv_mutex_unlock(&s->mu);
    return db != NULL ? db : store_db_open(s->opt.path, err);
}

void store__reader_put(store_t *s, store_db_t *db)
{
    uv_mutex_lock(&s->mu);
    if (s->n_readers < READER_POOL)
        s->readers[s->n_readers++] = db, db = NULL;
    uv_mutex_unlock(&s->mu);
    store_db_close(db);
}

void store__inflight(store_t *s, int delta)
{
    s->inflight += delta;
    if (s->inflight == 0 && s->closed == LOOP_HANDLES)
        free_store(s);
}
