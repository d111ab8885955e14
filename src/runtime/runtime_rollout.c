/* Rollouts: a candidate version set (an environment's set with one flow
 * replaced) compiled on the thread pool, which then takes a fixed share of
 * the environment's new conversations, picked by a hash of (rollout id,
 * conversation key) in rt_conv_bind(). Contract: include/chorus/runtime.h. */
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
    if (e->ro == NULL || j->seq != rt->envs->rollout_seq) {
        j->rc = CORE_ERR_CLOSED; /* stopped while it compiled */
        return;
    }
    if (j->rc != 0) {
        LOG_ERROR("event=rollout_rejected env=%s id=%s flow=%s problems=%zu", rt_env_name(j->env),
                  e->ro->id, e->ro->flow, j->diags.len);
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
    LOG_INFO("event=rollout_started env=%s id=%s flow=%s version=%s percent=%u",
             rt_env_name(j->env), e->ro->id, e->ro->flow, e->ro->version, e->ro->percent);
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
    rt_file_t *files = rt_files_copy(env->cur->files, env->cur->n);
    size_t n = env->cur->n;
    rt_file_t *f = (rt_file_t *)rt_files_find(files, n, r->flow);
    if (f == NULL) {
        rt_files_free(files, n);
        return CORE_ERR_NOT_FOUND;
    }
    free(f->text);
    free(f->path);
    f->text = core_xstrndup(r->content, r->len);
    f->len = r->len;
    f->path = core_xasprintf("candidate/%s.json", r->flow);
    rt_file_hash(f);
    rt_rollout_t *ro = core_xcalloc(1, sizeof(*ro));
    ro->id = core_xstrdup(r->id);
    ro->flow = core_xstrdup(r->flow);
    ro->version = core_xstrdup(r->version && r->version[0] ? r->version : f->version);
    ro->percent = r->percent;
    rt_job_t *j = rt_job_new(rt, NULL, rollout_finish, cb, data);
    j->env = e;
    j->files = files;
    j->n = n;
    j->seq = ++rt->envs->rollout_seq;
    if (rt->opts.store != NULL) /* what a promotion records, diffed with the compile */
        rt_job_want_diffs(j, env->cur->files, env->cur->n);
    int rc = rt_job_queue(rt, j);
    if (rc != 0) {
        rt_rollout_free(ro);
        return rc;
    }
    env->ro = ro;
    return 0;
}

int runtime_rollout_stop(runtime_t *rt, const char *env, const char *flow, int promote)
{
    int e = env_of(rt, env);
    if (e < 0)
        return CORE_ERR_INVALID;
    rt_env_t *x = &rt->envs->env[e];
    if (x->ro == NULL || (flow != NULL && strcmp(flow, x->ro->flow) != 0))
        return CORE_ERR_NOT_FOUND;
    rt_rollout_t *ro = x->ro;
    x->ro = NULL;
    rt->envs->rollout_seq++; /* a compile still running for it is dropped */
    if (promote && ro->cand == NULL) {
        rt_rollout_free(ro);
        return CORE_ERR_BUSY; /* nothing to promote yet */
    }
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
