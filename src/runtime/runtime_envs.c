/* Environments and pinned versions: every compile (the flows directory for
 * staging, an environment's new set for a promotion or rollback, the
 * production set rebuilt from the store at start) runs on the thread pool
 * as a job; its completion installs the new version set on the loop. A
 * conversation holds the set it started on until it ends. See
 * runtime_envs.h and docs/runtime.md, "Versions and environments". */
#define LOG_MODULE "runtime"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime_envs.h"
#include "runtime/runtime_job.h"

extern char **environ;

static const char *const env_names[RT_ENVS] = {RUNTIME_ENV_STAGING, RUNTIME_ENV_PRODUCTION};

/* ---- files ---------------------------------------------------------------- */

void rt_file_hash(rt_file_t *f)
{
    core_sha256_hex(f->text, f->len, f->sha);
    memcpy(f->version, f->sha, 12);
    f->version[12] = '\0';
}

void rt_files_free(rt_file_t *f, size_t n)
{
    for (size_t i = 0; f != NULL && i < n; i++) {
        free(f[i].flow);
        free(f[i].path);
        free(f[i].text);
    }
    free(f);
}

rt_file_t *rt_files_copy(const rt_file_t *f, size_t n)
{
    rt_file_t *c = core_xcalloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        c[i] = f[i];
        c[i].flow = core_xstrdup(f[i].flow);
        c[i].path = core_xstrdup(f[i].path);
        c[i].text = core_xstrndup(f[i].text, f[i].len);
    }
    return c;
}

const rt_file_t *rt_files_find(const rt_file_t *f, size_t n, const char *flow)
{
    for (size_t i = 0; f != NULL && i < n; i++)
        if (strcmp(f[i].flow, flow) == 0)
            return &f[i];
    return NULL;
}

/* ---- version sets --------------------------------------------------------- */

rt_ver_t *rt_ver_new(brain_flowset_t *fs, rt_file_t *files, size_t n)
{
    rt_ver_t *v = core_xcalloc(1, sizeof(*v));
    v->refs = 1;
    v->fs = fs;
    v->files = files;
    v->n = n;
    rt_pin_build(v);
    return v;
}

rt_ver_t *rt_ver_ref(rt_ver_t *v)
{
    if (v != NULL)
        v->refs++;
    return v;
}

void rt_ver_unref(rt_ver_t *v)
{
    if (v == NULL || --v->refs > 0)
        return;
    if (v->kprev != NULL) { /* the kept list holds no reference: it just forgets it */
        *v->kprev = v->knext;
        if (v->knext != NULL)
            v->knext->kprev = v->kprev;
    }
    brain_flowset_unref(v->fs);
    rt_files_free(v->files, v->n);
    core_buf_dispose(&v->pin);
    free(v);
}

const char *rt_ver_flow_version(const rt_ver_t *v, const char *flow)
{
    const rt_file_t *f = (v && flow) ? rt_files_find(v->files, v->n, flow) : NULL;
    return f ? f->version : "";
}

/* ---- environments --------------------------------------------------------- */

int rt_env_index(const char *name)
{
    for (int i = 0; i < RT_ENVS; i++)
        if (strcmp(name, env_names[i]) == 0)
            return i;
    return -1;
}

const char *rt_env_name(int i)
{
    return i >= 0 && i < RT_ENVS ? env_names[i] : "?";
}

rt_envs_t *rt_envs_new(const runtime_options_t *opts)
{
    rt_envs_t *e = core_xcalloc(1, sizeof(*e));
    e->def = RT_ENV_PRODUCTION;
    if (opts->default_env != NULL && rt_env_index(opts->default_env) >= 0)
        e->def = rt_env_index(opts->default_env);
    e->promoted = opts->production_promoted;
    e->author = core_xstrdup(opts->author && opts->author[0] ? opts->author : "chorusd");
    return e;
}

void rt_envs_free(rt_envs_t *e)
{
    if (e == NULL)
        return;
    while (e->kept != NULL) { /* held past the runtime (a job's copy): off the list */
        rt_ver_t *v = e->kept;
        e->kept = v->knext;
        v->knext = NULL;
        v->kprev = NULL;
    }
    for (int i = 0; i < RT_ENVS; i++) {
        rt_ver_unref(e->env[i].cur);
        rt_rollout_free(e->env[i].ro);
    }
    rt_files_free(e->base, e->nbase);
    free(e->author);
    free(e);
}

void rt_env_install(runtime_t *rt, int i, rt_ver_t *v)
{
    rt_env_t *env = &rt->envs->env[i];
    rt_ver_t *old = env->cur;
    env->cur = rt_ver_ref(v);
    env->gen++;
    if (old != NULL && old != v && old->refs > 1)
        rt_ver_keep(rt->envs, old); /* found again by those read back (runtime_pin_set.c) */
    rt_ver_unref(old);              /* conversations on it keep their reference */
    if (i == rt->envs->def) {
        brain_flowset_unref(rt->fs);
        rt->fs = brain_flowset_ref(v->fs);
        if (rt->restore_poke != NULL) /* a start-up restore waiting for it */
            rt->restore_poke(rt);
    }
}

const char *rt_variant_name(int variant)
{
    return variant == RT_VARIANT_CANDIDATE ? "candidate"
           : variant == RT_VARIANT_CONTROL ? "control"
                                           : "";
}

/* Reproducible arm choice: the same (rollout, key) always lands in the same
 * bucket, on any instance and after a restart. */
static unsigned rollout_bucket(const char *id, const char *key)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, id, strlen(id));
    EVP_DigestUpdate(ctx, "\n", 1);
    EVP_DigestUpdate(ctx, key, strlen(key));
    EVP_DigestFinal_ex(ctx, h, &hl);
    EVP_MD_CTX_free(ctx);
    uint32_t x = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return x % 100;
}

void rt_conv_set_ver(rt_conv_t *conv, rt_ver_t *v)
{
    if (v != NULL && conv->ver == v)
        return; /* dropping it first could free it */
    rt_ver_unref(conv->ver);
    conv->ver = rt_ver_ref(v);
    brain_flowset_unref(conv->fs);
    conv->fs = v ? brain_flowset_ref(v->fs) : NULL;
}

void rt_conv_bind(runtime_t *rt, rt_conv_t *conv, int env)
{
    rt_env_t *e = &rt->envs->env[env];
    rt_ver_t *v = e->cur;
    conv->env = (uint8_t)env;
    conv->variant = RT_VARIANT_NONE;
    if (e->ro != NULL && e->ro->cand != NULL) {
        int cand = rollout_bucket(e->ro->id, conv->key) < e->ro->percent;
        conv->variant = cand ? RT_VARIANT_CANDIDATE : RT_VARIANT_CONTROL;
        if (cand)
            v = e->ro->cand;
    }
    rt_conv_set_ver(conv, v);
}

void rt_conv_bind_arm(runtime_t *rt, rt_conv_t *conv, int env, int variant)
{
    rt_env_t *e = &rt->envs->env[env];
    int running = e->ro != NULL && e->ro->cand != NULL;
    conv->env = (uint8_t)env;
    conv->variant = (uint8_t)(running ? variant : RT_VARIANT_NONE);
    rt_conv_set_ver(conv, running && variant == RT_VARIANT_CANDIDATE ? e->ro->cand : e->cur);
}

int rt_variant_parse(const char *name)
{
    if (name != NULL && strcmp(name, "candidate") == 0)
        return RT_VARIANT_CANDIDATE;
    if (name != NULL && strcmp(name, "control") == 0)
        return RT_VARIANT_CONTROL;
    return RT_VARIANT_NONE;
}

void rt_conv_repin(runtime_t *rt, rt_conv_t *conv, int64_t now_us)
{
    const brain_conv_t *st = &conv->state;
    int64_t idle = brain_flowset_idle_timeout_us(conv->fs);
    int next = st->status == BRAIN_ST_ENDED ||
               (st->status == BRAIN_ST_ACTIVE && st->last_us != 0 && idle > 0 &&
                now_us - st->last_us > idle) ||
               (st->turns == 0 && st->flow == BRAIN_NONE);
    if (!next)
        return; /* in progress: finishes on the version it started on */
    brain_flowset_t *from = brain_flowset_ref(conv->fs);
    rt_conv_bind(rt, conv, conv->env);
    if (conv->fs != from) {
        core_err_t err = {0};
        if (brain_conv_migrate(from, conv->fs, &conv->state, &err) != 0) {
            char q[300];
            LOG_WARN("event=migrate_failed reason=%s action=restart_conversation",
                     core_log_quote(q, sizeof(q), err.msg, (size_t)-1, 200));
            brain_channel_t ch = (brain_channel_t)conv->state.channel;
            brain_conv_dispose(&conv->state);
            brain_conv_init(&conv->state, conv->fs, ch, core_wall_us());
        }
    }
    brain_flowset_unref(from);
}

/* ---- jobs on the thread pool ---------------------------------------------- */

static void job_work(uv_work_t *req)
{
    rt_job_t *j = req->data;
    uint64_t start = core_now_us();
    if (j->flows_dir != NULL)
        j->rc = rt_files_read(j->flows_dir, &j->files, &j->n, &j->diags);
    else if (j->prepare != NULL)
        j->rc = j->prepare(j);
    if (j->rc == 0 && j->want_diffs)
        j->diffs = rt_diffs(j->base, j->nbase, j->files, j->n, j->recorded);
    if (j->rc == 0 && j->fs == NULL) /* else another environment's compiled set is shared */
        j->rc = rt_compile(&j->c, j->files, j->n, &j->fs, &j->diags);
    j->duration_us = core_now_us() - start;
}

static void job_free(rt_job_t *j)
{
    brain_flowset_unref(j->fs);
    rt_files_free(j->files, j->n);
    rt_files_free(j->base, j->nbase);
    rt_diffs_free(j->diffs, j->n);
    for (int e = 0; e < RT_ENVS; e++)
        rt_ver_unref((rt_ver_t *)j->recorded[e]);
    core_diags_dispose(&j->diags);
    free(j->flows_dir);
    free(j->guard_file);
    free(j->data_dir);
    free(j->cache_name);
    free(j->actor);
    free(j->action);
    free(j->ext);
    free(j);
}

static void job_done(uv_work_t *req, int status)
{
    rt_job_t *j = req->data;
    runtime_t *rt = j->rt;
    if (j->flows_dir != NULL)
        rt->loading = 0;
    else
        rt->jobs--;
    if (status != 0 && j->rc == 0)
        j->rc = CORE_ERR_CLOSED;
    if (rt->closing)
        j->rc = CORE_ERR_CLOSED;
    if (j->rc != CORE_ERR_CLOSED)
        j->finish(j); /* may take j->fs and j->files */
    if (j->cb)
        j->cb(rt, j->rc, &j->diags, j->data);
    job_free(j);
    rt_maybe_free(rt);
}

rt_job_t *rt_job_new(runtime_t *rt, const char *cache_name, void (*finish)(rt_job_t *j),
                     runtime_loaded_cb cb, void *data)
{
    rt_job_t *j = core_xcalloc(1, sizeof(*j));
    j->req.data = j;
    j->rt = rt;
    j->finish = finish;
    j->cb = cb;
    j->data = data;
    j->guard_file = core_xstrdup_opt(rt->guard_file);
    j->data_dir = core_xstrdup_opt(rt->data_dir);
    j->cache_name = core_xstrdup_opt(cache_name);
    j->c.guard_file = j->guard_file;
    j->c.no_guard = rt->opts.no_guard;
    j->c.version = rt->next_version++;
    j->c.envp = rt->opts.envp ? rt->opts.envp : (const char *const *)environ;
    j->c.data_dir = j->data_dir;
    j->c.cache_name = j->cache_name;
    core_diags_init(&j->diags);
    return j;
}

void rt_job_want_diffs(rt_job_t *j, const rt_file_t *base, size_t nbase)
{
    j->want_diffs = 1;
    j->base = rt_files_copy(base, nbase);
    j->nbase = nbase;
    for (int e = 0; e < RT_ENVS; e++)
        j->recorded[e] = rt_ver_ref(j->rt->envs->env[e].cur);
}

int rt_job_queue(runtime_t *rt, rt_job_t *j)
{
    int rc = uv_queue_work(rt->loop, &j->req, job_work, job_done);
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    if (j->flows_dir != NULL)
        rt->loading = 1;
    else
        rt->jobs++;
    return 0;
}

/* Takes the job's result as a version set. */
rt_ver_t *rt_job_take(rt_job_t *j)
{
    rt_ver_t *v = rt_ver_new(j->fs, j->files, j->n);
    j->fs = NULL;
    j->files = NULL;
    rt_diffs_free(j->diffs, j->n);
    j->diffs = NULL;
    j->n = 0;
    return v;
}

/* ---- loading the flows directory (staging) ------------------------------- */

static void load_finish(rt_job_t *j)
{
    runtime_t *rt = j->rt;
    rt_envs_t *e = rt->envs;
    if (j->rc != 0) {
        LOG_ERROR("event=flows_rejected dir=%s problems=%zu kept_version=%u", j->flows_dir,
                  j->diags.len, rt->fs ? brain_flowset_version(rt->fs) : 0);
        return;
    }
    const rt_ver_t *before[RT_ENVS] = {e->env[0].cur, e->env[1].cur};
    rt_ver_ref((rt_ver_t *)before[0]);
    rt_ver_ref((rt_ver_t *)before[1]);
    char **diffs = j->diffs;
    j->diffs = NULL;
    size_t n = j->n;
    unsigned mask = 1u << RT_ENV_STAGING;
    if (!e->promoted || (e->env[RT_ENV_PRODUCTION].cur == NULL && !e->prod_restoring))
        mask |= 1u << RT_ENV_PRODUCTION;
    /* Staging may have changed since the load was queued (a change or a
     * rollout promoted there): the diffs are then against what it ran. */
    rt_diffs_check(rt, diffs, j->files, n, j->base, j->nbase, mask, before);
    rt_ver_t *v = rt_job_take(j);
    rt_env_install(rt, RT_ENV_STAGING, v);
    if ((mask >> RT_ENV_PRODUCTION) & 1)
        rt_env_install(rt, RT_ENV_PRODUCTION, v);
    rt_record_set(rt, v->files, v->n, diffs, mask, before, j->actor, "flows_loaded");
    rt_diffs_free(diffs, n);
    rt_files_free(e->base, e->nbase);
    e->base = rt_files_copy(v->files, v->n);
    e->nbase = v->n;
    LOG_INFO("event=flows_loaded dir=%s version=%u flows=%zu nlu=%s nlu_hash=%.12s "
             "confidence_threshold=%.3f duration_ms=%llu production=%s",
             j->flows_dir, brain_flowset_version(v->fs), brain_flowset_flow_count(v->fs),
             brain_flowset_nlu_from_cache(v->fs) ? "cached" : "trained",
             brain_flowset_nlu_hash(v->fs), brain_flowset_threshold(v->fs),
             (unsigned long long)(j->duration_us / 1000),
             (mask >> RT_ENV_PRODUCTION) & 1 ? "updated" : "kept");
    if (j->c.cache_saved < 0)
        LOG_WARN("event=nlu_cache_write_failed data_dir=%s", j->data_dir);
    /* a rollout's candidate was the replaced set with its flow changed:
     * rebuilt from this one, or its arm and promotion would undo the load */
    for (int i = 0; i < RT_ENVS; i++)
        if ((mask >> i) & 1)
            rt_rollout_rebase(rt, i);
    rt_ver_unref(v);
    rt_ver_unref((rt_ver_t *)before[0]);
    rt_ver_unref((rt_ver_t *)before[1]);
}

int runtime_load_by(runtime_t *rt, const char *author, runtime_loaded_cb cb, void *data)
{
    if (rt->closing)
        return CORE_ERR_CLOSED;
    if (rt->loading)
        return CORE_ERR_BUSY;
    rt_job_t *j = rt_job_new(rt, "model.bin", load_finish, cb, data);
    j->flows_dir = core_xstrdup(rt->flows_dir);
    j->actor = core_xstrdup(author && author[0] ? author : rt->envs->author);
    /* Diffed against what rt_record_set() will compare with: staging's set
     * (which a change may have moved off its last load), else its base. */
    const rt_ver_t *st = rt->envs->env[RT_ENV_STAGING].cur;
    if (rt->opts.store != NULL)
        rt_job_want_diffs(j, st ? st->files : rt->envs->base, st ? st->n : rt->envs->nbase);
    return rt_job_queue(rt, j);
}

int runtime_load(runtime_t *rt, runtime_loaded_cb cb, void *data)
{
    return runtime_load_by(rt, NULL, cb, data);
}
