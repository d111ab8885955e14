/* The environments' public side: rebuilding production from the store at
 * start, applying a change (promotion, rollback) to an environment, and
 * describing what each runs. Contract: include/chorus/runtime.h. */
#define LOG_MODULE "runtime"
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_job.h"

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const rt_file_t *)a)->flow, ((const rt_file_t *)b)->flow);
}

static int valid_flow_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n &&
           s[0] != '.';
}

/* A file from an API change, hashed; NULL with err when its version is wrong. */
static int file_from(const char *env, const runtime_flow_file_t *c, rt_file_t *f, core_err_t *err)
{
    memset(f, 0, sizeof(*f));
    f->flow = core_xstrdup(c->flow);
    f->path = core_xasprintf("%s/%s.json", env, c->flow);
    f->text = core_xstrndup(c->content, c->len);
    f->len = c->len;
    f->stored = c->stored;
    rt_file_hash(f);
    if (c->version != NULL && c->version[0] != '\0' && strcmp(c->version, f->version) != 0)
        return core_err_set(err, CORE_ERR_INVALID, "flow %s: content hashes to version %s, not %s",
                            c->flow, f->version, c->version);
    return 0;
}

/* cur's files with the changes applied, sorted by flow. */
static int apply_changes(const char *env, const rt_ver_t *cur, const runtime_flow_file_t *ch,
                         size_t n, rt_file_t **out, size_t *out_n, core_err_t *err)
{
    size_t len = cur ? cur->n : 0;
    rt_file_t *f = rt_files_copy(cur ? cur->files : NULL, len);
    f = core_xrealloc(f, (len + n + 1) * sizeof(*f));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!valid_flow_name(ch[i].flow)) {
            rc = core_err_set(err, CORE_ERR_INVALID, "bad flow name \"%s\"",
                              ch[i].flow ? ch[i].flow : "");
            break;
        }
        rt_file_t *old = (rt_file_t *)rt_files_find(f, len, ch[i].flow);
        if (ch[i].content == NULL) {
            if (old == NULL) {
                rc = core_err_set(err, CORE_ERR_NOT_FOUND, "%s has no flow %s", env, ch[i].flow);
                break;
            }
            free(old->flow), free(old->path), free(old->text);
            *old = f[--len];
            continue;
        }
        rt_file_t nf;
        rc = file_from(env, &ch[i], &nf, err);
        if (rc != 0) {
            free(nf.flow), free(nf.path), free(nf.text);
            break;
        }
        if (old != NULL) {
            free(old->flow), free(old->path), free(old->text);
            *old = nf;
        } else {
            f[len++] = nf;
        }
    }
    if (rc != 0) {
        rt_files_free(f, len);
        return rc;
    }
    qsort(f, len, sizeof(*f), cmp_files);
    *out = f;
    *out_n = len;
    return 0;
}

static int same_files(const rt_file_t *a, size_t na, const rt_ver_t *v)
{
    if (v == NULL || v->n != na)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].flow, v->files[i].flow) != 0 || strcmp(a[i].sha, v->files[i].sha) != 0)
            return 0;
    return 1;
}

static void apply_finish(rt_job_t *j)
{
    runtime_t *rt = j->rt;
    if (j->action != NULL && rt->envs->env[j->env].changing > 0)
        rt->envs->env[j->env].changing--;
    if (j->rc != 0) {
        LOG_ERROR("event=env_change_rejected env=%s action=%s problems=%zu", rt_env_name(j->env),
                  j->action ? j->action : "-", j->diags.len);
        return;
    }
    if (j->action != NULL && rt->envs->env[j->env].gen != j->gen) {
        /* A flows load installed a new set while this compiled: the change
         * was applied to the set it replaced, and installing it would put
         * back every file that load changed. */
        j->rc = CORE_ERR_EXISTS;
        core_diags_add(&j->diags, rt_env_name(j->env), 0, 0, "",
                       "%s changed while the %s compiled (a flows load landed); nothing was "
                       "changed: retry it on the new set",
                       rt_env_name(j->env), j->action);
        LOG_WARN("event=env_change_rejected env=%s action=%s actor=%s reason=\"the environment "
                 "changed while it compiled\"",
                 rt_env_name(j->env), j->action, j->actor ? j->actor : "-");
        return;
    }
    const rt_ver_t *before[RT_ENVS] = {rt->envs->env[0].cur, rt->envs->env[1].cur};
    rt_ver_ref((rt_ver_t *)before[0]);
    rt_ver_ref((rt_ver_t *)before[1]);
    char **diffs = j->diffs; /* the worker's, against j->base */
    size_t n = j->n;
    j->diffs = NULL;
    rt_diffs_check(rt, diffs, j->files, n, j->base, j->nbase, 1u << j->env, before);
    rt_ver_t *v = rt_job_take(j);
    rt_env_install(rt, j->env, v);
    if (j->action != NULL) /* NULL: rebuilt from the store, nothing new to record */
        rt_record_set(rt, v->files, v->n, diffs, 1u << j->env, before, j->actor, j->action);
    else if (j->env == RT_ENV_PRODUCTION)
        rt->envs->prod_restoring = 0;
    rt_diffs_free(diffs, n);
    LOG_INFO("event=env_changed env=%s action=%s actor=%s flowset_version=%u flows=%zu",
             rt_env_name(j->env), j->action ? j->action : "restore", j->actor ? j->actor : "-",
             brain_flowset_version(v->fs), v->n);
    rt_ver_unref(v);
    rt_ver_unref((rt_ver_t *)before[0]);
    rt_ver_unref((rt_ver_t *)before[1]);
}

static void restore_finish(rt_job_t *j)
{
    if (j->rc != 0) {
        LOG_ERROR("event=env_restore_failed env=%s problems=%zu", rt_env_name(j->env),
                  j->diags.len);
        j->rt->envs->prod_restoring = 0;
        return;
    }
    apply_finish(j);
}

static int queue_set(runtime_t *rt, int env, rt_file_t *files, size_t n, const char *actor,
                     const char *action, runtime_loaded_cb cb, void *data)
{
    char cache[64];
    snprintf(cache, sizeof(cache), "model-%s.bin", rt_env_name(env));
    rt_job_t *j = rt_job_new(rt, cache, action ? apply_finish : restore_finish, cb, data);
    j->env = env;
    j->gen = rt->envs->env[env].gen;
    j->files = files;
    j->n = n;
    j->actor = core_xstrdup_opt(actor);
    j->action = core_xstrdup_opt(action);
    if (action != NULL && rt->opts.store != NULL) {
        /* The version diffs rt_record_set() stores are computed by the
         * worker, against a copy of the set it will compare with (the
         * env's, else staging's last recorded): a big flow's diff takes
         * tens of milliseconds, which the loop must not spend. */
        const rt_ver_t *cur = rt->envs->env[env].cur;
        rt_job_want_diffs(j, cur != NULL ? cur->files : rt->envs->base,
                          cur != NULL ? cur->n : rt->envs->nbase);
    }
    /* The same files as another environment: share its compiled set. */
    for (int i = 0; i < RT_ENVS; i++)
        if (j->fs == NULL && same_files(files, n, rt->envs->env[i].cur))
            j->fs = brain_flowset_ref(rt->envs->env[i].cur->fs);
    return rt_job_queue(rt, j);
}

int runtime_env_restore(runtime_t *rt, const char *env, const runtime_flow_file_t *files, size_t n,
                        runtime_loaded_cb cb, void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    int e = env ? rt_env_index(env) : -1;
    if (e < 0)
        return CORE_ERR_INVALID;
    rt_file_t *f = NULL;
    size_t len = 0;
    core_err_t err = {0};
    int rc = apply_changes(env, NULL, files, n, &f, &len, &err);
    if (rc != 0) {
        LOG_WARN("event=env_restore_failed env=%s reason=\"%s\"", env, err.msg);
        return rc;
    }
    if (e == RT_ENV_STAGING) {
        rt_files_free(rt->envs->base, rt->envs->nbase);
        rt->envs->base = f;
        rt->envs->nbase = len;
        return 0;
    }
    rc = queue_set(rt, e, f, len, NULL, NULL, cb, data);
    if (rc == 0)
        rt->envs->prod_restoring = 1;
    return rc;
}

int runtime_env_apply(runtime_t *rt, const char *env, const runtime_flow_file_t *changes, size_t n,
                      const char *actor, const char *action, runtime_loaded_cb cb, void *data,
                      core_err_t *err)
{
    if (rt->closing)
        return core_err_set(err, CORE_ERR_CLOSED, "runtime is shutting down");
    int e = env ? rt_env_index(env) : -1;
    if (e < 0)
        return core_err_set(err, CORE_ERR_INVALID, "unknown environment \"%s\"", env ? env : "");
    /* A change is made to the set in force when it was asked for; a second
     * one while the first compiles, or a rollout's candidate (built from
     * the set the rollout began with) promoted after it, would put back
     * what the other replaced. So an environment takes one change at a
     * time, and none while a rollout runs in it. */
    const rt_env_t *x = &rt->envs->env[e];
    if (x->changing > 0)
        return core_err_set(err, CORE_ERR_EXISTS,
                            "another change to %s is still being compiled; retry once it is in "
                            "force",
                            env);
    if (x->ro != NULL)
        return core_err_set(err, CORE_ERR_EXISTS,
                            "rollout %s of flow %s is running in %s; promote or abort it first",
                            x->ro->id, x->ro->flow, env);
    rt_file_t *f = NULL;
    size_t len = 0;
    int rc = apply_changes(env, rt->envs->env[e].cur, changes, n, &f, &len, err);
    if (rc != 0)
        return rc;
    rc = queue_set(rt, e, f, len, actor ? actor : rt->envs->author, action ? action : "change", cb,
                   data);
    if (rc == 0)
        rt->envs->env[e].changing++;
    return rc == 0 ? 0 : core_err_set(err, rc, "cannot queue the compile: %s", core_strerror(rc));
}

int runtime_env_promote(runtime_t *rt, const char *const *flows, const char *const *versions,
                        size_t n, const char *to, const char *actor, runtime_loaded_cb cb,
                        void *data, core_err_t *err)
{
    const rt_ver_t *st = rt->envs->env[RT_ENV_STAGING].cur;
    int e = to ? rt_env_index(to) : -1;
    if (e < 0 || e == RT_ENV_STAGING)
        return core_err_set(err, CORE_ERR_INVALID, "cannot promote to \"%s\"", to ? to : "");
    if (st == NULL)
        return core_err_set(err, CORE_ERR_BUSY, "staging has no flows loaded");
    const rt_ver_t *cur = rt->envs->env[e].cur;
    size_t cap = n ? n : st->n + (cur ? cur->n : 0);
    runtime_flow_file_t *ch = core_xcalloc(cap ? cap : 1, sizeof(*ch));
    size_t k = 0;
    for (size_t i = 0; i < (n ? n : st->n); i++) {
        const rt_file_t *f = n ? rt_files_find(st->files, st->n, flows[i]) : &st->files[i];
        if (f == NULL) {
            free(ch);
            return core_err_set(err, CORE_ERR_NOT_FOUND, "staging has no flow %s", flows[i]);
        }
        if (n && versions && versions[i] && strcmp(versions[i], f->version) != 0) {
            free(ch);
            return core_err_set(err, CORE_ERR_EXISTS,
                                "staging now runs %s %s, not the tested %s: test again", f->flow,
                                f->version, versions[i]);
        }
        ch[k++] = (runtime_flow_file_t){f->flow, f->version, f->text, f->len, f->stored};
    }
    for (size_t i = 0; n == 0 && cur && i < cur->n; i++) /* exactly staging's set */
        if (rt_files_find(st->files, st->n, cur->files[i].flow) == NULL)
            ch[k++] = (runtime_flow_file_t){cur->files[i].flow, NULL, NULL, 0, 0};
    int rc = runtime_env_apply(rt, to, ch, k, actor, "promote", cb, data, err);
    free(ch);
    return rc;
}

json_t *runtime_env_json(const runtime_t *rt, const char *env)
{
    int e = env ? rt_env_index(env) : -1;
    if (e < 0)
        return NULL;
    const rt_env_t *x = &rt->envs->env[e];
    json_t *flows = json_array();
    for (size_t i = 0; x->cur && i < x->cur->n; i++) {
        const rt_file_t *f = &x->cur->files[i];
        json_array_append_new(flows, json_pack("{s:s, s:s, s:s}", "flow", f->flow, "version",
                                               f->version, "sha256", f->sha));
    }
    json_t *ro = json_null();
    if (x->ro != NULL)
        ro =
            json_pack("{s:s, s:s, s:s, s:i, s:b}", "id", x->ro->id, "flow", x->ro->flow, "version",
                      x->ro->version, "percent", (int)x->ro->percent, "ready", x->ro->cand != NULL);
    return json_pack("{s:s, s:b, s:b, s:I, s:o, s:o}", "env", rt_env_name(e), "default",
                     e == rt->envs->def, "promoted_only",
                     e == RT_ENV_PRODUCTION && rt->envs->promoted, "flowset_version",
                     (json_int_t)(x->cur ? brain_flowset_version(x->cur->fs) : 0), "flows", flows,
                     "rollout", ro);
}

int runtime_env_file(const runtime_t *rt, const char *env, const char *flow,
                     runtime_flow_file_t *out)
{
    int e = env ? rt_env_index(env) : -1;
    const rt_ver_t *v = e >= 0 ? rt->envs->env[e].cur : NULL;
    const rt_file_t *f = v && flow ? rt_files_find(v->files, v->n, flow) : NULL;
    if (f == NULL)
        return CORE_ERR_NOT_FOUND;
    *out = (runtime_flow_file_t){f->flow, f->version, f->text, f->len, f->stored};
    return 0;
}

const brain_flowset_t *runtime_env_flowset(const runtime_t *rt, const char *env)
{
    int e = env ? rt_env_index(env) : -1;
    const rt_ver_t *v = e >= 0 ? rt->envs->env[e].cur : NULL;
    return v ? v->fs : NULL;
}

const char *runtime_default_env(const runtime_t *rt)
{
    return rt_env_name(rt->envs->def);
}
