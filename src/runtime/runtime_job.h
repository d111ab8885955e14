/* runtime_job.h — private to src/runtime: a compile on the libuv thread pool
 * (runtime_envs.c). The worker reads the flows directory when flows_dir is
 * set (else runs prepare(), when set), diffs the files against base when
 * want_diffs, and compiles; finish() runs on the loop with the result
 * unless the runtime is closing, then cb. */
#ifndef CHORUS_RUNTIME_JOB_H
#define CHORUS_RUNTIME_JOB_H

#include "runtime/runtime_envs.h"

typedef struct rt_job_s rt_job_t;
struct rt_job_s {
    uv_work_t req;
    runtime_t *rt;
    int env;          /* target environment */
    char *flows_dir;  /* set: a directory load (rt->loading), else rt->jobs counts it */
    rt_file_t *files; /* input, or what the worker read */
    size_t n;
    rt_file_t *base; /* diff base (want_diffs) */
    size_t nbase;
    int want_diffs;
    /* want_diffs: the environments' sets when queued, held so that the
     * worker may read their (immutable) files: it diffs none of their
     * versions, which the store has. References taken and dropped on the
     * loop. */
    const rt_ver_t *recorded[RT_ENVS];
    char **diffs; /* per file, from the worker */
    rt_compile_t c;
    char *guard_file, *data_dir, *cache_name; /* owned copies c points into */
    brain_flowset_t *fs;                      /* result */
    core_diags_t diags;
    int rc;
    uint64_t duration_us;
    char *actor, *action;
    uint64_t seq;   /* rollouts: the rollout generation it was started for */
    int dropped_rc; /* rollouts: the answer when its rollout ended meanwhile (0: CLOSED) */
    uint64_t gen;   /* changes: the environment's generation it was built on */
    void *ext;      /* freed with the job */
    /* Run first by the worker (thread pool), when set: fills files (a
     * pinned set's, from the store); returns 0 or an error (no compile). */
    int (*prepare)(rt_job_t *j);
    void (*finish)(rt_job_t *j);
    runtime_loaded_cb cb;
    void *data;
};

rt_job_t *rt_job_new(runtime_t *rt, const char *cache_name, void (*finish)(rt_job_t *j),
                     runtime_loaded_cb cb, void *data);
/* Asks the worker for the diffs of j's files against (a copy of) base, for
 * rt_record_set(); none for a version the store already has. */
void rt_job_want_diffs(rt_job_t *j, const rt_file_t *base, size_t nbase);
/* Queues j (owned from here); returns 0 or an error (j freed). */
int rt_job_queue(runtime_t *rt, rt_job_t *j);
/* The job's result as a version set (refcount 1), taken from j. */
rt_ver_t *rt_job_take(rt_job_t *j);

#endif
