/* runtime_envs.h — private to src/runtime: flow versions, environments and
 * rollouts (runtime_envs.c, runtime_versions.c, runtime_rollout.c).
 *
 * A version set (rt_ver_t) is a compiled flowset together with the files it
 * was built from (flow name, content, short content hash). It is
 * reference-counted on the loop: an environment holds one for its current
 * set and one per rollout candidate, and every conversation holds the one it
 * started on until it ends, so a reload never changes the flows under a
 * conversation in progress. Loop thread only, except the rt_files_* helpers
 * and rt_compile(), which the thread pool runs on copies, and rt_diffs(),
 * which also reads the files of sets its job holds (a set's files never
 * change). */
#ifndef CHORUS_RUNTIME_ENVS_H
#define CHORUS_RUNTIME_ENVS_H

#include "runtime/runtime_int.h"

#define RT_ENV_STAGING 0
#define RT_ENV_PRODUCTION 1
#define RT_ENVS 2

#define RT_VARIANT_NONE 0
#define RT_VARIANT_CONTROL 1
#define RT_VARIANT_CANDIDATE 2

/* One flow file of a set. Owned strings. */
typedef struct rt_file_s {
    char *flow;       /* file name without directory and ".json" */
    char *path;       /* name in diagnostics ("flows/booking.json") */
    char *text;       /* content */
    size_t len;       /* bytes of text */
    char version[13]; /* first 12 hex digits of sha256 */
    char sha[65];     /* sha256 of text, hex */
    int stored;       /* the store has this version's row (it was read from there) */
} rt_file_t;

struct rt_ver_s {
    int refs;
    brain_flowset_t *fs; /* reference held */
    rt_file_t *files;    /* owned, sorted by flow */
    size_t n;
    /* On rt_envs_t.kept (no reference: the set leaves the list when its
     * last holder lets go) while conversations hold it but no environment
     * runs it: a pinned conversation read back from the store finds it
     * there instead of compiling it again. */
    rt_ver_t *knext;
    rt_ver_t **kprev; /* NULL when on no list */
    /* {"flow":"version",...} of files, written once: every turn's saved
     * state carries it (rt_pin_json) */
    core_buf_t pin;
};

typedef struct rt_rollout_s {
    char *id;
    char *flow;
    char *version;
    unsigned percent;
    rt_ver_t *cand;   /* NULL while the candidate compiles */
    char **diffs;     /* one per cand file, computed with it against dbase (a promotion's) */
    rt_file_t *dbase; /* the environment's files when the candidate was built */
    size_t ndbase;
    char *text;   /* the candidate flow's content: the candidate is rebuilt */
    size_t len;   /* from it when a load changes the environment's set */
    rt_ver_t *on; /* the environment's set the candidate is (being) built on */
    void *job;    /* rt_job_t compiling the candidate (NULL once finished) */
    int rebuilds; /* times the candidate was rebuilt on a new set */
} rt_rollout_t;

typedef struct rt_env_s {
    rt_ver_t *cur; /* NULL until the env has flows */
    rt_rollout_t *ro;
    unsigned changing; /* changes (runtime_env_apply) compiling: one at a time */
    uint64_t gen;      /* bumps at each install: a change built on an older set is refused */
} rt_env_t;

struct rt_envs_s {
    rt_env_t env[RT_ENVS];
    int def;            /* default environment index */
    int promoted;       /* production changes only by promote/rollback */
    int prod_restoring; /* production is being rebuilt from the store */
    rt_file_t *base;    /* staging's previously recorded files: the diffs' base */
    size_t nbase;
    char *author;         /* default author of loads */
    uint64_t rollout_seq; /* bumps when a rollout changes (stale compiles are dropped) */
    rt_ver_t *kept;       /* sets held only by conversations (rt_ver_t.knext) */
};

/* ---- files (any thread) ---- */
void rt_file_hash(rt_file_t *f); /* fills version and sha from text */
void rt_files_free(rt_file_t *f, size_t n);
rt_file_t *rt_files_copy(const rt_file_t *f, size_t n);
const rt_file_t *rt_files_find(const rt_file_t *f, size_t n, const char *flow);
/* Reads every *.json of dir into files (sorted by flow). */
int rt_files_read(const char *dir, rt_file_t **files, size_t *n, core_diags_t *diags);

/* ---- compiling (thread pool) ---- */
typedef struct rt_compile_s {
    const char *guard_file;
    int no_guard;
    uint32_t version;
    const char *const *envp;
    const char *data_dir;   /* NULL = no model cache */
    const char *cache_name; /* file under data_dir/nlu/ */
    int cache_saved;        /* out: 1 saved, 0 not needed, -1 failed */
} rt_compile_t;
int rt_compile(rt_compile_t *a, const rt_file_t *files, size_t n, brain_flowset_t **out,
               core_diags_t *diags);

/* ---- version sets (loop) ---- */
rt_ver_t *rt_ver_new(brain_flowset_t *fs, rt_file_t *files, size_t n); /* takes both */
rt_ver_t *rt_ver_ref(rt_ver_t *v);
void rt_ver_unref(rt_ver_t *v); /* accepts NULL */
/* The version of flow in v, "" when v is NULL or has no such flow. */
const char *rt_ver_flow_version(const rt_ver_t *v, const char *flow);

/* ---- environments (loop) ---- */
rt_envs_t *rt_envs_new(const runtime_options_t *opts);
void rt_envs_free(rt_envs_t *e);
int rt_env_index(const char *name); /* -1 when unknown */
const char *rt_env_name(int i);
/* Installs v (reference taken) as env i's current set; keeps rt->fs on the default env's. */
void rt_env_install(runtime_t *rt, int i, rt_ver_t *v);

/* Puts a new conversation on env's set (or the rollout's candidate). */
void rt_conv_bind(runtime_t *rt, rt_conv_t *conv, int env);
/* Puts a conversation read back from the store into env, on the rollout
 * arm it was saved on (variant): the candidate while env's rollout still
 * runs, else env's set (the arm is kept only while a rollout runs). */
void rt_conv_bind_arm(runtime_t *rt, rt_conv_t *conv, int env, int variant);
/* Puts conv on v (reference taken), keeping its environment and arm. */
void rt_conv_set_ver(rt_conv_t *conv, rt_ver_t *v);
/* RT_VARIANT_* of a saved name ("candidate", "control"); NONE otherwise. */
int rt_variant_parse(const char *name);
/* Before a turn: a conversation whose last one ended (or that will start a
 * new session) moves to its environment's current set; one in progress
 * stays pinned. */
void rt_conv_repin(runtime_t *rt, rt_conv_t *conv, int64_t now_us);
const char *rt_variant_name(int variant);

/* ---- pinned versions read back (runtime_pin_set.c, runtime_pin.c) ---- */
/* Appends v's pin, {"flow":"version",...} of every file, to b: what a
 * conversation's saved state records of the set it runs on. Made once, by
 * rt_ver_new() (rt_pin_build). */
void rt_pin_json(const rt_ver_t *v, core_buf_t *b);
void rt_pin_build(rt_ver_t *v);
/* Puts conv, read back from the store, on the set its saved pin names:
 * 0 when it is on it (its binding already was, or a set in memory -- an
 * environment's, a rollout candidate, one on the kept list -- has exactly
 * those versions), 1 when none in memory has (the binding is unchanged). A
 * pin that is not an object of strings, or is empty, counts as found. */
int rt_pin_bind(runtime_t *rt, rt_conv_t *conv, const json_t *pin);
/* Files a set that conversations still hold on the kept list (no-op when on
 * it already); rt_ver_unref() takes it off when it is freed. */
void rt_ver_keep(rt_envs_t *e, rt_ver_t *v);

/* ---- recording in the store (runtime_versions.c) ---- */
/* Records the set files that replaces before[] in the envs of envs_mask (bit
 * per env index): a flow_versions row for each file that is not the version
 * it replaces (with diffs[i], or one computed here; none for a version
 * rt_file_recorded(before, staging's base) finds, whose row the store has),
 * the env rows that changed, plus an audit row. */
void rt_record_set(runtime_t *rt, const rt_file_t *files, size_t n, char *const *diffs,
                   unsigned envs_mask, const rt_ver_t *before[RT_ENVS], const char *actor,
                   const char *action);
/* Whether the store has f's flow_versions row already: f was read from it
 * (f->stored), or f (same flow, same content) is in one of sets (NULL
 * entries allowed) or in base, as every set an environment has installed
 * and staging's base were recorded when they came in (or read back from the
 * store). Any thread, on sets the caller holds. */
int rt_file_recorded(const rt_ver_t *const sets[RT_ENVS], const rt_file_t *base, size_t nbase,
                     const rt_file_t *f);
/* Diffs of every file of files against the same flow in base: NULL for one
 * rt_file_recorded(recorded, base) finds (unchanged from base, or a version
 * the store has, e.g. a promotion's), whole-file for a new flow. Thread
 * pool. */
char **rt_diffs(const rt_file_t *base, size_t nbase, const rt_file_t *files, size_t n,
                const rt_ver_t *const recorded[RT_ENVS]);
void rt_diffs_free(char **d, size_t n);
/* Before rt_record_set(rt, files, n, d, mask, before, ...) with diffs d the
 * thread pool computed against base: drops (frees, sets NULL) each diff
 * whose flow's file in the set that call compares with is no longer base's
 * (the environment changed while the worker ran), which rt_record_set()
 * then computes again, so what is recorded never depends on the race. */
void rt_diffs_check(const runtime_t *rt, char **d, const rt_file_t *files, size_t n,
                    const rt_file_t *base, size_t nbase, unsigned mask,
                    const rt_ver_t *before[RT_ENVS]);

/* runtime_rollout.c: every rollout of the env is dropped (close, env swap). */
void rt_rollout_free(rt_rollout_t *ro);
/* After a load installed a new set in env i: a rollout running there gets
 * its candidate rebuilt from that set (the rollout's flow at its candidate
 * version), so that neither its arm nor its promotion serves the files the
 * load replaced. Until the new candidate compiles every new conversation
 * goes to the control and a promotion is refused (busy); a candidate that
 * no longer builds, or whose flow the load removed, ends the rollout. */
void rt_rollout_rebase(runtime_t *rt, int i);

#endif
