/* Rollouts: a candidate version set (an environment's set with one flow
 * replaced) compiled on the thread pool, which then takes a fixed share of
 * the environment's new conversations, picked by a hash of (rollout id,
 * conversation key) in rt_conv_bind(). A load that installs a new set in the
 * environment rebuilds the candidate from it (rt_rollout_rebase), so that
 * the candidate is always the environment's current set with one flow
 * replaced. Contract: include/chorus/runtime.h. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_job.h"

void rt_rollout_free(rt_rollout_t *ro)
{
    if (ro == NULL)
        return;
    rt_diffs_free(ro->diffs, ro->cand != NULL ? ro->cand->n : 0);
    rt_files_free(ro->dbase, ro->ndbase);
    rt_ver_unref(ro->cand);
    rt_ver_unref(ro->on);
    free(ro->text);
    free(ro->id);
    free(ro->flow);
    free(ro->version);
    free(ro);
}

static int env_of(const runtime_t *rt, const char *env)
{
    return env == NULL ? rt->envs->def : rt_env_index(env);
}

static void rollout_finish(rt_job_t *j)
{
    runtime_t *rt = j->rt;
    rt_env_t *e = &rt->envs->env[j->env];
    if (e->ro != NULL && e->ro->job == j)
        e->ro->job = NULL;
    if (e->ro == NULL || j->seq != rt->envs->rollout_seq) {
        /* stopped while it compiled, or rebuilt on a newer set (that
         * compile took over the start's answer) */
        j->rc = j->dropped_rc != 0 ? j->dropped_rc : CORE_ERR_CLOSED;
        return;
    }
    if (j->rc != 0) {
        LOG_ERROR("event=rollout_rejected env=%s id=%s flow=%s problems=%zu rebuilt=%d",
                  rt_env_name(j->env), e->ro->id, e->ro->flow, j->diags.len, e->ro->rebuilds > 0);
        rt_rollout_free(e->ro);
        e->ro = NULL;
        return;
    }
    /* Kept for a promotion, which records the candidate's version with its
     * diff: computed by the worker, not by the promote request on the loop. */
    e->ro->diffs = j->diffs;
    e->ro->dbase = j->base;
    e->ro->ndbase = j->nbase;
    j->diffs = NULL;
    j->base = NULL;
    j->nbase = 0;
    e->ro->cand = rt_job_take(j);
    if (e->ro->rebuilds > 0)
        LOG_INFO("event=rollout_rebuilt env=%s id=%s flow=%s version=%s percent=%u "
                 "flowset_version=%u",
                 rt_env_name(j->env), e->ro->id, e->ro->flow, e->ro->version, e->ro->percent,
                 brain_flowset_version(e->cur ? e->cur->fs : NULL));
    else
        LOG_INFO("event=rollout_started env=%s id=%s flow=%s version=%s percent=%u",
                 rt_env_name(j->env), e->ro->id, e->ro->flow, e->ro->version, e->ro->percent);
}

/* Queues the compile of ro's candidate: env e's current set with ro's flow
 * replaced by its candidate content. CORE_ERR_NOT_FOUND when the set has no
 * such flow. */
static int queue_candidate(runtime_t *rt, int e, rt_rollout_t *ro, runtime_loaded_cb cb, void *data)
{
    rt_env_t *env = &rt->envs->env[e];
    rt_file_t *files = rt_files_copy(env->cur->files, env->cur->n);
    size_t n = env->cur->n;
    rt_file_t *f = (rt_file_t *)rt_files_find(files, n, ro->flow);
    if (f == NULL) {
        rt_files_free(files, n);
        return CORE_ERR_NOT_FOUND;
    }
    free(f->text);
    free(f->path);
    f->text = core_xstrndup(ro->text, ro->len);
    f->len = ro->len;
    f->path = core_xasprintf("candidate/%s.json", ro->flow);
    f->stored = 0;
    rt_file_hash(f);
    rt_job_t *j = rt_job_new(rt, NULL, rollout_finish, cb, data);
    j->env = e;
    j->files = files;
    j->n = n;
    j->seq = ++rt->envs->rollout_seq;
    if (rt->opts.store != NULL) /* what a promotion records, diffed with the compile */
        rt_job_want_diffs(j, env->cur->files, env->cur->n);
    int rc = rt_job_queue(rt, j);
    if (rc != 0)
        return rc;
    ro->job = j;
    rt_ver_unref(ro->on);
    ro->on = rt_ver_ref(env->cur);
    return 0;
}

static int same_set(const rt_ver_t *a, const rt_ver_t *b)
{
    if (a == b)
        return 1;
    if (a == NULL || b == NULL || a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->files[i].flow, b->files[i].flow) != 0 ||
            strcmp(a->files[i].sha, b->files[i].sha) != 0)
            return 0;
    return 1;
}

void rt_rollout_rebase(runtime_t *rt, int i)
{
    rt_env_t *env = &rt->envs->env[i];
    rt_rollout_t *ro = env->ro;
    if (ro == NULL || env->cur == NULL || same_set(ro->on, env->cur))
        return; /* no rollout, or its candidate is (being) built on these files */
    /* The start's answer, when its compile still runs, waits for the
     * candidate that will serve. */
    rt_job_t *old = ro->job;
    runtime_loaded_cb cb = old != NULL ? old->cb : NULL;
    void *data = old != NULL ? old->data : NULL;
    rt_diffs_free(ro->diffs, ro->cand != NULL ? ro->cand->n : 0);
    ro->diffs = NULL;
    rt_files_free(ro->dbase, ro->ndbase);
    ro->dbase = NULL;
    ro->ndbase = 0;
    rt_ver_unref(ro->cand); /* conversations on it keep their reference */
    ro->cand = NULL;
    ro->job = NULL;
    ro->rebuilds++;
    int rc = queue_candidate(rt, i, ro, cb, data);
    if (rc == 0) {
        if (old != NULL)
            old->cb = NULL, old->data = NULL;
        LOG_INFO("event=rollout_rebuilding env=%s id=%s flow=%s version=%s reason=\"flows "
                 "reloaded\"",
                 rt_env_name(i), ro->id, ro->flow, ro->version);
        return;
    }
    LOG_WARN("event=rollout_rejected env=%s id=%s flow=%s reason=\"flows reloaded: %s\"",
             rt_env_name(i), ro->id, ro->flow,
             rc == CORE_ERR_NOT_FOUND ? "the flow is no longer in the set" : core_strerror(rc));
    if (old != NULL) /* its answer: the rollout ended */
        old->dropped_rc = rc == CORE_ERR_NOT_FOUND ? CORE_ERR_NOT_FOUND : CORE_ERR_INVALID;
    env->ro = NULL;
    rt->envs->rollout_seq++;
    rt_rollout_free(ro);
}

int runtime_rollout_start(runtime_t *rt, const runtime_rollout_t *r, runtime_loaded_cb cb,
                          void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    int e = env_of(rt, r->env);
    if (e < 0 || r->id == NULL || r->id[0] == '\0' || r->flow == NULL || r->content == NULL ||
        r->percent > 100)
        return CORE_ERR_INVALID;
    rt_env_t *env = &rt->envs->env[e];
    if (env->cur == NULL)
        return CORE_ERR_BUSY;
    if (env->ro != NULL || env->changing > 0) /* its candidate would undo the change */
        return CORE_ERR_EXISTS;
    const rt_file_t *f = rt_files_find(env->cur->files, env->cur->n, r->flow);
    if (f == NULL)
        return CORE_ERR_NOT_FOUND;
    rt_rollout_t *ro = core_xcalloc(1, sizeof(*ro));
    ro->id = core_xstrdup(r->id);
    ro->flow = core_xstrdup(r->flow);
    ro->text = core_xstrndup(r->content, r->len);
    ro->len = r->len;
    if (r->version && r->version[0]) {
        ro->version = core_xstrdup(r->version);
    } else {
        rt_file_t h = {.text = ro->text, .len = ro->len};
        rt_file_hash(&h);
        ro->version = core_xstrdup(h.version);
    }
    ro->percent = r->percent;
    int rc = queue_candidate(rt, e, ro, cb, data);
    if (rc != 0) {
        rt_rollout_free(ro);
        return rc;
    }
    env->ro = ro;
    return 0;
}

int runtime_rollout_state(const runtime_t *rt, const char *env, const char *id)
{
    int e = env_of(rt, env);
    if (e < 0)
        return CORE_ERR_INVALID;
    const rt_rollout_t *ro = rt->envs->env[e].ro;
    if (ro == NULL || id == NULL || strcmp(ro->id, id) != 0)
        return CORE_ERR_NOT_FOUND;
    return ro->cand != NULL;
}

int runtime_rollout_stop(runtime_t *rt, const char *env, const char *flow, int promote)
{
    int e = env_of(rt, env);
    if (e < 0)
        return CORE_ERR_INVALID;
    rt_env_t *x = &rt->envs->env[e];
    if (x->ro == NULL || (flow != NULL && strcmp(flow, x->ro->flow) != 0))
        return CORE_ERR_NOT_FOUND;
    if (promote && x->ro->cand == NULL)
        return CORE_ERR_BUSY; /* nothing to promote yet (compiling, or rebuilt after a load) */
    rt_rollout_t *ro = x->ro;
    x->ro = NULL;
    rt->envs->rollout_seq++; /* a compile still running for it is dropped */
    if (promote) {
        const rt_ver_t *before[RT_ENVS] = {rt->envs->env[0].cur, rt->envs->env[1].cur};
        rt_ver_ref((rt_ver_t *)before[0]);
        rt_ver_ref((rt_ver_t *)before[1]);
        rt_env_install(rt, e, ro->cand);
        char *actor = core_xasprintf("rollout:%s", ro->id);
        rt_diffs_check(rt, ro->diffs, ro->cand->files, ro->cand->n, ro->dbase, ro->ndbase, 1u << e,
                       before);
        rt_record_set(rt, ro->cand->files, ro->cand->n, ro->diffs, 1u << e, before, actor,
                      "rollout_promote");
        free(actor);
        rt_ver_unref((rt_ver_t *)before[0]);
        rt_ver_unref((rt_ver_t *)before[1]);
    }
    LOG_INFO("event=rollout_stopped env=%s id=%s flow=%s promote=%d", rt_env_name(e), ro->id,
             ro->flow, promote);
    rt_rollout_free(ro);
    return 0;
}
