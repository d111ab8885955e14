/* WAL checkpoints off the commit path. SQLite's automatic checkpoint runs
 * inside the COMMIT that crosses the threshold, so that group's turns (and
 * their replies) would wait for the page copy and its fsyncs. Instead a WAL
 * hook on the writer's connection pokes this thread, which runs PASSIVE
 * checkpoints on a connection of its own: they copy what no reader still
 * needs and never block the writer, which keeps committing meanwhile. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "store"
#include "store/store_int.h"

struct store__ckpt_s {
    sqlite3 *db; /* the checkpointer's own connection */
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    int frames;       /* WAL frames not yet copied that trigger a checkpoint */
    int pending;      /* poked, not yet run; guarded by mu */
    int wal_frames;   /* the WAL's size after the last commit; guarded by mu */
    int copied;       /* of those, copied to the database; guarded by mu */
    uint64_t commits; /* seen by the WAL hook; guarded by mu */
    uint64_t idle_at; /* commits at the last idle checkpoint; guarded by mu */
    int stopping;     /* guarded by mu */
    int sleeping;     /* waiting for a poke with no idle spell to time; guarded by mu */
    uint64_t runs;    /* checkpoints run; guarded by mu */
};

/* A writer idle this long gets its WAL's tail copied (then the WAL starts
 * over at the next commit instead of growing). */
#define IDLE_NS 500000000ull

/* Writer thread, after each commit: nframes is the WAL's size in frames. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int nframes)
{
    store__ckpt_t *c = arg;
    int done = -1;
    /* Under a steady load the checkpointer never catches up with the writer,
     * and the WAL starts over only after a checkpoint that did; so once it
     * has grown large the writer, between two transactions, copies the
     * frames the checkpointer has not yet (at most about frames), as
     * SQLite's own automatic checkpoint would. BUSY (the checkpointer is at
     * it) is fine. */
    if (nframes >= 4 * c->frames &&
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, &done) != SQLITE_OK)
        done = -1;
    uv_mutex_lock(&c->mu);
    if (c->copied > nframes)
        c->copied = 0; /* the WAL started over */
    if (done >= 0)
        c->copied = done;
    c->wal_frames = nframes;
    c->commits++;
    /* The checkpointer runs once frames more frames are uncopied, not after
     * every commit past that size: the hot pages (index leaves, saved
     * states) are rewritten by every group, and a checkpoint copies each
     * page once however many frames hold it, with two fsyncs whatever it
     * copies. */
    if (nframes - c->copied >= c->frames && !c->pending) {
        c->pending = 1;
        uv_cond_signal(&c->cond);
    } else if (c->sleeping && nframes > c->copied) {
        uv_cond_signal(&c->cond); /* frames below the threshold: time an idle spell for them */
    }
    uv_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

/* Waits for a poke, or for the writer to stay idle IDLE_NS with frames
 * still uncopied (once per idle spell, so a failing disk is not retried in
 * a loop: the writer's probe finds out); returns 0 when stopping. */
static int wait_for_work(store__ckpt_t *c)
{
    while (!c->pending && !c->stopping) {
        if (c->wal_frames <= c->copied || c->commits == c->idle_at) {
            c->sleeping = 1;
            uv_cond_wait(&c->cond, &c->mu);
            c->sleeping = 0;
            continue;
        }
        uint64_t seen = c->commits;
        if (uv_cond_timedwait(&c->cond, &c->mu, IDLE_NS) != 0 && c->commits == seen &&
            c->idle_at != seen && c->wal_frames > c->copied)
            c->pending = 1, c->idle_at = seen;
    }
    return !c->stopping;
}

void store__ckpt_write_failed(store__ckpt_t *c)
{
    if (c == NULL)
        return;
    uv_mutex_lock(&c->mu);
    c->idle_at = c->commits; /* this idle spell is not one */
    uv_mutex_unlock(&c->mu);
}

static void ckpt_main(void *arg)
{
    store__ckpt_t *c = arg;
    pthread_setname_np(pthread_self(), "chorus-ckpt");
    uv_mutex_lock(&c->mu);
    while (wait_for_work(c)) {
        uv_mutex_unlock(&c->mu);
        int log = 0, done = 0;
        uint64_t t0 = core_now_us();
        int rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            LOG_WARN("event=checkpoint_failed error=\"%s\"", sqlite3_errmsg(c->db));
        else
            LOG_DEBUG("event=checkpoint wal_frames=%d copied=%d us=%llu", log, done,
                      (unsigned long long)(core_now_us() - t0));
        uv_mutex_lock(&c->mu);
        c->pending = 0;
        /* BUSY or a failure: try again at the next poke or idle spell */
        if (rc == SQLITE_OK && done <= c->wal_frames)
            c->copied = done;
        else if (rc == SQLITE_OK)
            c->copied = c->wal_frames;
        c->runs++;
    }
    uv_mutex_unlock(&c->mu);
}

store__ckpt_t *store__ckpt_start(sqlite3 *writer, const char *path, int frames,
                                 int synchronous_full)
{
    if (store_path_in_memory(path))
        return NULL;
    store__ckpt_t *c = core_xcalloc(1, sizeof(*c));
    core_err_t err = {0};
    if (store__sqlite_open(path, 1, synchronous_full, &c->db, &err) != 0) {
        /* SQLite's own checkpoints (in the commit) stay on: slower, not wrong */
        LOG_WARN("event=checkpointer_unavailable error=\"%s\"", err.msg);
        free(c);
        return NULL;
    }
    c->frames = frames;
    uv_mutex_init(&c->mu);
    uv_cond_init(&c->cond);
    if (uv_thread_create(&c->thread, ckpt_main, c) != 0) {
        sqlite3_close(c->db);
        uv_mutex_destroy(&c->mu);
        uv_cond_destroy(&c->cond);
        free(c);
        return NULL;
    }
    sqlite3_wal_hook(writer, on_wal, c); /* replaces the automatic checkpoint */
    return c;
}

uint64_t store__ckpt_runs(store__ckpt_t *c)
{
    if (c == NULL)
        return 0;
    uv_mutex_lock(&c->mu);
    uint64_t n = c->runs;
    uv_mutex_unlock(&c->mu);
    return n;
}

void store__ckpt_stop(store__ckpt_t *c, sqlite3 *writer)
{
    if (c == NULL)
        return;
    sqlite3_wal_hook(writer, NULL, NULL);
    uv_mutex_lock(&c->mu);
    c->stopping = 1;
    uv_cond_signal(&c->cond);
    uv_mutex_unlock(&c->mu);
    uv_thread_join(&c->thread);
    sqlite3_close(c->db);
    uv_mutex_destroy(&c->mu);
    uv_cond_destroy(&c->cond);
    free(c);
}
